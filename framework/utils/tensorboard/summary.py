"""Summary builders (torch.utils.tensorboard.summary's, minus TensorFlow/protobuf): each
returns a serialized Summary message."""
import numpy as np

from . import _proto as pb
from ._png import encode_png


def make_np(x):
    """A NumPy array from a Kiln tensor, array, Python number or list."""
    from ...tensor import Tensor
    if isinstance(x, Tensor):
        return np.asarray(x.detach().cpu().numpy())
    if isinstance(x, np.ndarray):
        return x
    if np.isscalar(x):
        return np.array([x])
    return np.asarray(x)


def _float_array(x):
    a = make_np(x)
    # bfloat16/float16 (ml_dtypes) and ints: histogram and image arithmetic in float
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float32)


def scalar(tag, value):
    v = make_np(value)
    if v.squeeze().ndim != 0:
        raise ValueError(f"scalar {tag!r}: expected a single value, got shape {v.shape}")
    return pb.summary(pb.summary_value(tag, simple_value=float(v.reshape(-1)[0])))


def default_bins():
    """torch's bins='tensorflow': +-1e-12 * 1.1**k up to 1e20, and 0 (TensorFlow's layout)."""
    v, pos, neg = 1e-12, [], []
    while v < 1e20:
        pos.append(v)
        neg.append(-v)
        v *= 1.1
    return neg[::-1] + [0] + pos


_DEFAULT_BINS = None


def make_histogram(values, bins, max_bins=None):
    """The HistogramProto torch writes: np.histogram over `bins`, optionally merged down to
    max_bins, trimmed to the support (plus one empty bucket on the left, since TensorBoard
    keeps only right bucket limits)."""
    global _DEFAULT_BINS
    if isinstance(bins, str) and bins == "tensorflow":
        if _DEFAULT_BINS is None:
            _DEFAULT_BINS = np.array(default_bins())
        bins = _DEFAULT_BINS
    values = np.asarray(values).reshape(-1)
    if values.size == 0:
        raise ValueError("add_histogram: the input has no element")
    counts, limits = np.histogram(values, bins=bins)
    num_bins = len(counts)
    if max_bins is not None and num_bins > max_bins:
        sub = num_bins // max_bins
        if num_bins % sub:
            counts = np.pad(counts, [[0, sub - num_bins % sub]])
        counts = counts.reshape(-1, sub).sum(axis=-1)
        new_limits = np.empty(counts.size + 1, limits.dtype)
        new_limits[:-1] = limits[:-1:sub]
        new_limits[-1] = limits[-1]
        limits = new_limits
    cum = np.cumsum(np.greater(counts, 0))
    start, end = np.searchsorted(cum, [0, cum[-1] - 1], side="right")
    start, end = int(start), int(end) + 1
    counts = counts[start - 1:end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start:end + 1]
    if counts.size == 0 or limits.size == 0:
        raise ValueError("add_histogram: no value falls inside the bins")
    return pb.histogram(min=values.min(), max=values.max(), num=values.size,
                        sum=values.sum(), sum_squares=values.dot(values),
                        bucket_limit=limits, bucket=counts)


def histogram(tag, values, bins="tensorflow", max_bins=None):
    return pb.summary(pb.summary_value(
        tag, histo=make_histogram(_float_array(values).astype(np.float64), bins, max_bins)))


def histogram_raw(tag, min, max, num, sum, sum_squares, bucket_limits, bucket_counts):
    return pb.summary(pb.summary_value(tag, histo=pb.histogram(
        min, max, num, sum, sum_squares, bucket_limits, bucket_counts)))


def make_grid(imgs, ncols=8):
    """N x C x H x W -> 3 x (H*rows) x (W*cols), row-major, as torch's summary does."""
    if imgs.shape[1] == 1:
        imgs = np.concatenate([imgs] * 3, 1)
    n, c, h, w = imgs.shape
    ncols = min(n, ncols)
    nrows = -(-n // ncols)
    canvas = np.zeros((c, h * nrows, w * ncols), imgs.dtype)
    for i in range(n):
        y, x = divmod(i, ncols)
        canvas[:, y * h:(y + 1) * h, x * w:(x + 1) * w] = imgs[i]
    return canvas


def convert_to_HWC(a, dataformats):
    fmt = dataformats.upper()
    if len(set(fmt)) != len(fmt) or len(fmt) != a.ndim:
        raise ValueError(f"image of shape {a.shape} does not match dataformats {dataformats!r}")
    if len(fmt) == 4:
        a = a.transpose([fmt.find(c) for c in "NCHW"])
        return make_grid(a).transpose(1, 2, 0)
    if len(fmt) == 3:
        a = a.transpose([fmt.find(c) for c in "HWC"])
        return np.concatenate([a] * 3, 2) if a.shape[2] == 1 else a
    if len(fmt) == 2:
        a = a.transpose([fmt.find(c) for c in "HW"])
        return np.stack([a] * 3, 2)
    raise ValueError(f"unsupported dataformats {dataformats!r}")


def image(tag, img, rescale=1, dataformats="CHW"):
    a = make_np(img)
    hwc = convert_to_HWC(a, dataformats)
    # float images are in [0, 1], uint8 ones in [0, 255] (torch's _calc_scale_factor)
    scale = 1 if a.dtype == np.uint8 else 255
    hwc = (hwc.astype(np.float32) * scale).clip(0, 255).astype(np.uint8)
    if rescale != 1:
        # nearest-neighbour resize (torch uses PIL's antialiasing filter)
        h, w = hwc.shape[:2]
        nh, nw = max(1, int(h * rescale)), max(1, int(w * rescale))
        hwc = hwc[(np.arange(nh) * h // nh)[:, None], (np.arange(nw) * w // nw)[None, :]]
    h, w, c = hwc.shape
    return pb.summary(pb.summary_value(tag, image=pb.image(h, w, c, encode_png(hwc))))


def text(tag, text_string):
    # the text plugin reads a DT_STRING tensor of shape [1]; its plugin content
    # (TextPluginData{version: 0}) serializes to nothing
    return pb.summary(pb.summary_value(tag + "/text_summary",
                                       metadata=pb.summary_metadata("text"),
                                       tensor=pb.string_tensor([text_string.encode("utf-8")])))


EXPERIMENT_TAG = "_hparams_/experiment"
SESSION_START_INFO_TAG = "_hparams_/session_start_info"
SESSION_END_INFO_TAG = "_hparams_/session_end_info"


def hparams(hparam_dict, metric_dict, hparam_domain_discrete=None):
    """The three summaries of the hparams plugin: (experiment, session start, session end)."""
    from ...tensor import Tensor
    if not isinstance(hparam_dict, dict) or not isinstance(metric_dict, dict):
        raise TypeError("hparam_dict and metric_dict should be dictionaries")
    domains = hparam_domain_discrete or {}
    if not isinstance(domains, dict):
        raise TypeError("hparam_domain_discrete should be a dictionary")
    for k, v in domains.items():
        if k not in hparam_dict or not isinstance(v, list) or \
                not all(isinstance(d, type(hparam_dict[k])) for d in v):
            raise TypeError(f"hparam_domain_discrete[{k!r}] should be a list of the type of "
                            f"hparam_dict[{k!r}]")
    infos, values = [], {}
    for k, v in hparam_dict.items():
        if v is None:
            continue
        if isinstance(v, Tensor):
            v = float(make_np(v).reshape(-1)[0])
        # bool before int (bool is an int): the plugin then shows True/False, not 1.0/0.0
        if isinstance(v, bool):
            t = pb.DATA_TYPE_BOOL
        elif isinstance(v, (int, float, np.integer, np.floating)):
            v, t = float(v), pb.DATA_TYPE_FLOAT64
        elif isinstance(v, str):
            t = pb.DATA_TYPE_STRING
        else:
            raise ValueError("value should be one of int, float, str, bool, or Tensor")
        values[k] = v
        infos.append(pb.hparam_info(k, t, domains.get(k)))

    def wrap(tag, **content):
        md = pb.summary_metadata("hparams", pb.hparams_plugin_data(**content))
        return pb.summary(pb.summary_value(tag, metadata=md))

    exp = wrap(EXPERIMENT_TAG, experiment=pb.experiment(
        infos, [pb.metric_info(k) for k in metric_dict]))
    ssi = wrap(SESSION_START_INFO_TAG, session_start_info=pb.session_start_info(values))
    sei = wrap(SESSION_END_INFO_TAG, session_end_info=pb.session_end_info(pb.STATUS_SUCCESS))
    return exp, ssi, sei
