"""torch.ao.quantization observers: record a tensor's range and choose quantization parameters
(MinMaxObserver, PerChannelMinMaxObserver, PlaceholderObserver), as quantize_dynamic needs."""
import functools
import warnings

import numpy as np

from runtime import dtypes as dt
from ... import nn
from ..._dispatch import wrap, values
from .._qtensor import per_tensor_affine, per_tensor_symmetric, per_channel_affine, \
    per_channel_symmetric, per_channel_affine_float_qparams
from ...ops_math import _t

_EPS = float(np.finfo(np.float32).eps)


class _PartialWrapper:
    """What Observer.with_args returns: a factory of observers with those arguments."""

    def __init__(self, p):
        self.p = p

    def __call__(self, *args, **kwargs):
        return self.p(*args, **kwargs)

    def with_args(self, **kwargs):
        return _PartialWrapper(functools.partial(self.p, **kwargs))

    def __repr__(self):     # (PyTorch's prints its callable_args dict too)
        return _partial_repr(self.p) + "{}"


def _partial_repr(p):
    """functools.partial's repr with the class named by PyTorch's module path."""
    name = _arg_repr(p.func)
    args = [repr(a) for a in p.args] + [f"{k}={_arg_repr(v)}" for k, v in p.keywords.items()]
    return f"functools.partial({', '.join([name] + args)})"


def _arg_repr(v):
    """repr(v), a class named by PyTorch's module path (framework.X -> torch.X)."""
    if isinstance(v, type):
        mod = v.__module__
        mod = "torch" + mod[len("framework"):] if mod.startswith("framework.") else mod
        return f"<class '{mod}.{v.__name__}'>"
    return repr(v)


class ObserverBase(nn.Module):
    def __init__(self, dtype=dt.quint8, is_dynamic=False):
        super().__init__()
        self.dtype = dtype
        self.is_dynamic = is_dynamic

    @classmethod
    def with_args(cls, **kwargs):
        return _PartialWrapper(functools.partial(cls, **kwargs))


def _qrange(dtype, quant_min, quant_max, reduce_range):
    if quant_min is not None and quant_max is not None:
        # (PyTorch halves a custom range too with reduce_range)
        return (quant_min // 2, quant_max // 2) if reduce_range else (quant_min, quant_max)
    lo, hi = {dt.qint8: (-128, 127), dt.quint8: (0, 255), dt.qint32: (-2 ** 31, 2 ** 31 - 1),
              dt.int8: (-128, 127), dt.uint8: (0, 255), dt.quint4x2: (0, 15)}.get(dtype, (0, 255))
    if reduce_range and dtype in (dt.qint8, dt.quint8):
        lo, hi = lo // 2, hi // 2
    return lo, hi


class UniformQuantizationObserverBase(ObserverBase):
    def __init__(self, dtype=dt.quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=_EPS, is_dynamic=False):
        super().__init__(dtype, is_dynamic)
        self.qscheme = qscheme
        self.reduce_range = reduce_range
        if reduce_range and dtype is dt.quint8 and qscheme in (per_tensor_symmetric,
                                                               per_channel_symmetric):
            raise NotImplementedError("Cannot reduce range for symmetric                       "
                                      "                 quantization for quint8")
        if reduce_range:
            warnings.warn("Please use quant_min and quant_max to specify the range for observers."
                          "                     reduce_range will be deprecated in a future "
                          "release of PyTorch.", UserWarning, stacklevel=3)
        self.quant_min, self.quant_max = _qrange(dtype, quant_min, quant_max, reduce_range)
        self._custom = quant_min is not None and quant_max is not None
        self.register_buffer("eps", wrap(np.array([eps], np.float32), dt.float32))

    def _calculate_qparams(self, mn, mx):
        """PyTorch's rule, in float32 as its tensors: the range widened to include 0; symmetric
        schemes center it; the zero point rounds half to even."""
        f = np.float32
        qmin, qmax = self.quant_min, self.quant_max
        eps = f(self.eps.item())
        mn_neg, mx_pos = np.minimum(mn, f(0)), np.maximum(mx, f(0))
        if self.qscheme in (per_tensor_symmetric, per_channel_symmetric):
            mx_pos = np.maximum(-mn_neg, mx_pos)
            scale = np.maximum((mx_pos / f((qmax - qmin) / 2)).astype(f), eps)
            zp = np.full(scale.shape, 0 if self.dtype not in (dt.quint8, dt.uint8) else
                         (qmax + qmin) // 2 if self._custom else 128, np.int64)
        elif self.qscheme is per_channel_affine_float_qparams:
            scale = ((mx - mn) / f(qmax - qmin)).astype(f)
            scale = np.where(scale > eps, scale, f(1))
            return scale, (-mn / scale).astype(f)
        else:
            scale = np.maximum(((mx_pos - mn_neg) / f(qmax - qmin)).astype(f), eps)
            zp = np.clip(qmin - np.rint(mn_neg / scale).astype(np.int64), qmin, qmax)
            return scale.astype(f), zp.astype(np.int32)     # (PyTorch: int32 here, else int64)
        return scale.astype(f), zp


class MinMaxObserver(UniformQuantizationObserverBase):
    """Running min and max of every tensor it sees (one pair for the whole tensor)."""

    def __init__(self, dtype=dt.quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=_EPS, is_dynamic=False,
                 **kwargs):
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs, eps,
                         is_dynamic)
        from ...creation import tensor
        self.register_buffer("min_val", tensor(float("inf")))
        self.register_buffer("max_val", tensor(float("-inf")))

    def forward(self, x_orig):
        a = np.asarray(values(_t(x_orig).detach()), np.float32)
        if a.size == 0:
            return x_orig
        mn = np.minimum(np.float32(self.min_val.item()), a.min())
        mx = np.maximum(np.float32(self.max_val.item()), a.max())
        self.min_val = wrap(np.array(mn, np.float32), dt.float32)
        self.max_val = wrap(np.array(mx, np.float32), dt.float32)
        return x_orig

    def calculate_qparams(self):
        s, z = self._calculate_qparams(np.float32(self.min_val.item()),
                                       np.float32(self.max_val.item()))
        return (wrap(np.reshape(s, (1,)), dt.float32),
                wrap(np.reshape(z, (1,)), dt.from_numpy(z.dtype)))

    def extra_repr(self):
        return f"min_val={self.min_val.item()}, max_val={self.max_val.item()}"


class PerChannelMinMaxObserver(UniformQuantizationObserverBase):
    """Running min and max per index of dim `ch_axis`."""

    def __init__(self, ch_axis=0, dtype=dt.quint8, qscheme=per_channel_affine,
                 reduce_range=False, quant_min=None, quant_max=None, factory_kwargs=None,
                 eps=_EPS, is_dynamic=False, **kwargs):
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs, eps,
                         is_dynamic)
        self.ch_axis = ch_axis
        self.register_buffer("min_val", wrap(np.zeros(0, np.float32), dt.float32))
        self.register_buffer("max_val", wrap(np.zeros(0, np.float32), dt.float32))

    def forward(self, x_orig):
        a = np.asarray(values(_t(x_orig).detach()), np.float32)
        if a.size == 0:
            return x_orig
        a = np.moveaxis(a, self.ch_axis, 0).reshape(a.shape[self.ch_axis], -1)
        mn, mx = a.min(axis=1), a.max(axis=1)
        if self.min_val.numel():
            mn, mx = self._combine(np.asarray(values(self.min_val)),
                                   np.asarray(values(self.max_val)), mn, mx)
        self.min_val = wrap(mn.astype(np.float32), dt.float32)
        self.max_val = wrap(mx.astype(np.float32), dt.float32)
        return x_orig

    def _combine(self, m0, x0, mn, mx):
        """The running per-channel range from the old one and this batch's."""
        return np.minimum(m0, mn), np.maximum(x0, mx)

    def calculate_qparams(self):
        s, z = self._calculate_qparams(np.asarray(values(self.min_val)),
                                       np.asarray(values(self.max_val)))
        return wrap(s, dt.float32), wrap(z, dt.from_numpy(z.dtype))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # the buffers start empty: take the checkpoint's shape (PyTorch resizes them)
        for name in ("min_val", "max_val"):
            v = state_dict.get(prefix + name)
            if v is not None and tuple(v.shape) != tuple(getattr(self, name).shape):
                setattr(self, name, wrap(np.zeros(tuple(v.shape), np.float32), dt.float32))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"


class PlaceholderObserver(ObserverBase):
    """Records nothing: it carries the dtype (and range) for dynamic activations."""

    def __init__(self, dtype=dt.float32, custom_op_name="", compute_dtype=None,
                 quant_min=None, quant_max=None, qscheme=None, eps=None, is_dynamic=False):
        super().__init__(dtype, is_dynamic)
        self.quant_min, self.quant_max = quant_min, quant_max
        self.qscheme = per_tensor_affine if qscheme is None else qscheme
        self.eps = eps

    def forward(self, x):
        return x

    def calculate_qparams(self):
        raise Exception("calculate_qparams should not be called for PlaceholderObserver")

    def extra_repr(self):
        return f"dtype={self.dtype}, is_dynamic={self.is_dynamic}"


class FixedQParamsObserver(ObserverBase):
    """Records nothing: its scale and zero point are fixed (ops of known output range, such
    as sigmoid and tanh)."""

    def __init__(self, scale, zero_point, dtype=dt.quint8, qscheme=per_tensor_affine,
                 quant_min=0, quant_max=255, is_dynamic=False, **kwargs):
        if is_dynamic:
            raise NotImplementedError("FixedQParamsObserver doesn't support dynamic quantization")
        super().__init__(dtype, is_dynamic)
        self.quant_min, self.quant_max = quant_min, quant_max
        self.register_buffer("scale", wrap(np.array([scale], np.float32), dt.float32))
        self.register_buffer("zero_point", wrap(np.array([zero_point], np.int32), dt.int32))
        self.qscheme = qscheme

    def forward(self, X):
        return X

    def calculate_qparams(self):
        return self.scale, self.zero_point


class RecordingObserver(ObserverBase):
    """Debugging: keeps a copy of every tensor it sees in tensor_val."""

    def __init__(self, dtype=dt.quint8):
        super().__init__(dtype, False)
        self.tensor_val = []

    def forward(self, x):
        self.tensor_val.append(x.clone())
        return x

    def calculate_qparams(self):
        raise Exception("calculate_qparams should not be called for RecordingObserver")

    def get_tensor_value(self):
        return self.tensor_val


class NoopObserver(ObserverBase):
    """Records nothing: it carries the dtype to the quantized module's from_float."""

    def __init__(self, dtype=dt.float16, custom_op_name=""):
        super().__init__(dtype, False)
        self.custom_op = custom_op_name

    def forward(self, x):
        return x

    def calculate_qparams(self):
        raise Exception("calculate_qparams should not be called for NoopObserver")


class ReuseInputObserver(ObserverBase):
    """Records nothing: the op (reshape, ...) reuses its input's observer."""

    def __init__(self):
        super().__init__(dt.quint8, False)

    def forward(self, x):
        return x

    def calculate_qparams(self):
        raise Exception("calculate_qparams should not be called for ReuseInputObserver")


def _is_activation_post_process(m):
    from .fake_quantize import FakeQuantizeBase
    return isinstance(m, (ObserverBase, FakeQuantizeBase))


def get_observer_state_dict(mod):
    """The entries of mod.state_dict() that belong to observers (activation_post_process)."""
    from collections import OrderedDict
    sd = mod.state_dict()
    od = OrderedDict((k, v) for k, v in sd.items() if "activation_post_process" in k)
    od._metadata = sd._metadata
    return od


def load_observer_state_dict(mod, obs_dict):
    """Load observer statistics saved by get_observer_state_dict into mod's observers."""
    missing, unexpected = [], []
    for name, m in mod.named_modules():
        if _is_activation_post_process(m):
            m._load_from_state_dict(obs_dict, name + ".", {}, False, missing, unexpected, [])
    for k in missing:
        if "observer" in k or "activation_post_process" in k:
            raise Exception(f"Missing keys for observer {k} in state_dict")
    for k in unexpected:
        if "observer" in k or "activation_post_process" in k:
            raise Exception(f"Unexpected keys for observer {k} in state_dict")


default_observer = MinMaxObserver.with_args(quant_min=0, quant_max=127)
default_placeholder_observer = PlaceholderObserver
default_debug_observer = RecordingObserver
default_reuse_input_observer = ReuseInputObserver
default_weight_observer = MinMaxObserver.with_args(dtype=dt.qint8, qscheme=per_tensor_symmetric)
weight_observer_range_neg_127_to_127 = MinMaxObserver.with_args(
    dtype=dt.qint8, qscheme=per_tensor_symmetric, quant_min=-127, quant_max=127, eps=2 ** -12)
per_channel_weight_observer_range_neg_127_to_127 = PerChannelMinMaxObserver.with_args(
    dtype=dt.qint8, qscheme=per_channel_symmetric, quant_min=-127, quant_max=127, eps=2 ** -12)
default_fixed_qparams_range_neg1to1_observer = FixedQParamsObserver.with_args(
    scale=2.0 / 256.0, zero_point=128, dtype=dt.quint8, quant_min=0, quant_max=255)
default_fixed_qparams_range_0to1_observer = FixedQParamsObserver.with_args(
    scale=1.0 / 256.0, zero_point=0, dtype=dt.quint8, quant_min=0, quant_max=255)
default_symmetric_fixed_qparams_observer = default_fixed_qparams_range_neg1to1_observer
default_affine_fixed_qparams_observer = default_fixed_qparams_range_0to1_observer
default_dynamic_quant_observer = PlaceholderObserver.with_args(
    dtype=dt.quint8, quant_min=0, quant_max=255, is_dynamic=True)
default_per_channel_weight_observer = PerChannelMinMaxObserver.with_args(
    dtype=dt.qint8, qscheme=per_channel_symmetric)
default_float_qparams_observer = PerChannelMinMaxObserver.with_args(
    dtype=dt.quint8, qscheme=per_channel_affine_float_qparams, ch_axis=0)
default_float_qparams_observer_4bit = PerChannelMinMaxObserver.with_args(
    dtype=dt.quint4x2, qscheme=per_channel_affine_float_qparams, ch_axis=0)


def _f32(t):
    return np.float32(t.item())


class MovingAverageMinMaxObserver(MinMaxObserver):
    """Running min and max as moving averages: m + averaging_constant * (batch_m - m)."""

    def __init__(self, averaging_constant=0.01, dtype=dt.quint8, qscheme=per_tensor_affine,
                 reduce_range=False, quant_min=None, quant_max=None, eps=_EPS, is_dynamic=False,
                 **kwargs):
        if is_dynamic and averaging_constant != 1:
            raise NotImplementedError("MovingAverageMinMaxObserver doesn't support dynamic "
                                      "quantization for averaging constant of "
                                      f"{averaging_constant}")
        self.averaging_constant = averaging_constant
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max, eps=eps,
                         is_dynamic=is_dynamic, **kwargs)

    def forward(self, x_orig):
        a = np.asarray(values(_t(x_orig).detach()), np.float32)
        if a.size == 0:
            return x_orig
        mn, mx = _f32(self.min_val), _f32(self.max_val)
        c = np.float32(self.averaging_constant)
        if mn == np.inf and mx == -np.inf:
            mn, mx = a.min(), a.max()
        else:
            mn = np.float32(mn + np.float32(c * np.float32(a.min() - mn)))
            mx = np.float32(mx + np.float32(c * np.float32(a.max() - mx)))
        self.min_val = wrap(np.array(mn, np.float32), dt.float32)
        self.max_val = wrap(np.array(mx, np.float32), dt.float32)
        return x_orig


class MovingAveragePerChannelMinMaxObserver(PerChannelMinMaxObserver):
    """Per-channel running min and max as moving averages."""

    def __init__(self, averaging_constant=0.01, ch_axis=0, dtype=dt.quint8,
                 qscheme=per_channel_affine, reduce_range=False, quant_min=None, quant_max=None,
                 eps=_EPS, is_dynamic=False, **kwargs):
        super().__init__(ch_axis=ch_axis, dtype=dtype, qscheme=qscheme,
                         reduce_range=reduce_range, quant_min=quant_min, quant_max=quant_max,
                         eps=eps, is_dynamic=is_dynamic, **kwargs)
        self.averaging_constant = averaging_constant

    def _combine(self, m0, x0, mn, mx):
        c = np.float32(self.averaging_constant)
        return ((m0 + (c * (mn - m0)).astype(np.float32)).astype(np.float32),
                (x0 + (c * (mx - x0)).astype(np.float32)).astype(np.float32))


def _histc(a, bins, lo, hi):
    """torch.histc in float32: bin (x - lo) * bins / (hi - lo), truncated; hi goes in the last
    bin; values outside [lo, hi] are dropped."""
    lo, hi = np.float32(lo), np.float32(hi)
    if lo == hi:
        lo, hi = np.float32(lo - 1), np.float32(hi + 1)
    a = a[(a >= lo) & (a <= hi)]
    pos = ((a - lo) * np.float32(bins) / np.float32(hi - lo)).astype(np.float32).astype(np.int64)
    pos = np.minimum(pos, bins - 1)
    return np.bincount(pos, minlength=bins).astype(np.float32)


def _linspace32(start, end, steps):
    """torch.linspace in float32: from start for the first half, back from end for the rest."""
    start, end = np.float32(start), np.float32(end)
    step = np.float32(np.float32(end - start) / np.float32(steps - 1))
    i = np.arange(steps)
    half = steps // 2
    s64 = np.float64(step)     # (the kernel's fused multiply-add: one rounding)
    return np.where(i < half, np.float64(start) + s64 * i,
                    np.float64(end) - s64 * (steps - i - 1)).astype(np.float32)


def _div_floor32(a, b):
    """torch.div(a, b, rounding_mode='floor') in float32 (PyTorch's fmod-based rule)."""
    b = np.float32(b)
    with np.errstate(all="ignore"):
        mod = np.fmod(a, b).astype(np.float32)
        div = ((a - mod) / b).astype(np.float32)
        div = np.where((mod != 0) & ((b < 0) != (mod < 0)), div - np.float32(1), div)
        fl = np.floor(div)
        fl = np.where(div - fl > np.float32(0.5), fl + np.float32(1), fl)
        return np.where(div == 0, np.copysign(np.float32(0), a / b), fl).astype(np.float32)


class HistogramObserver(UniformQuantizationObserverBase):
    """A running histogram of the values seen (bins over [min, max], re-binned as the range
    grows); calculate_qparams searches the histogram for the [min, max] of least L2
    quantization error (PyTorch's threshold search), then computes as MinMaxObserver."""

    def __init__(self, bins=2048, dtype=dt.quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=_EPS, is_dynamic=False,
                 **kwargs):
        if qscheme not in (per_tensor_affine, per_tensor_symmetric):
            raise NotImplementedError("HistogramObserver's qscheme only support "
                                      "torch.per_tensor_symmetric                     and "
                                      "torch.per_tensor_affine.")
        if is_dynamic:
            raise NotImplementedError("HistogramObserver doesn't support dynamic quantization")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs, eps,
                         is_dynamic)
        from ...creation import tensor
        self.bins = bins
        self.register_buffer("histogram", wrap(np.zeros(bins, np.float32), dt.float32))
        self.register_buffer("min_val", tensor(float("inf")))
        self.register_buffer("max_val", tensor(float("-inf")))
        self.dst_nbins = 2 ** (8 if dtype in (dt.qint8, dt.quint8, dt.int8, dt.uint8) else 32)
        self.upsample_rate = 16

    def _set(self, hist, mn, mx):
        self.histogram = wrap(np.asarray(hist, np.float32), dt.float32)
        self.min_val = wrap(np.array(mn, np.float32), dt.float32)
        self.max_val = wrap(np.array(mx, np.float32), dt.float32)

    def forward(self, x_orig):
        a = np.asarray(values(_t(x_orig).detach()), np.float32).reshape(-1)
        if a.size == 0:
            return x_orig
        if np.isinf(a.min()) or np.isinf(a.max()):
            warnings.warn("torch.inf detected in input tensor, ignoring input", stacklevel=2)
            a = a[np.abs(a) != np.inf]
            if a.size == 0:
                return x_orig
        x_min, x_max = a.min(), a.max()
        cur_min, cur_max = _f32(self.min_val), _f32(self.max_val)
        hist = np.asarray(values(self.histogram), np.float32)
        if cur_min == np.inf or cur_max == -np.inf:
            self._set(_histc(a, self.bins, x_min, x_max), x_min, x_max)
            return x_orig
        new_min, new_max = min(cur_min, x_min), max(cur_max, x_max)
        upd = _histc(a, self.bins, new_min, new_max)
        if new_min == cur_min and new_max == cur_max:
            self._set((hist + upd).astype(np.float32), cur_min, cur_max)
        else:
            self._set(self._combine(hist, cur_min, cur_max, upd, new_min, new_max),
                      new_min, new_max)
        return x_orig

    def _combine(self, orig, omin, omax, upd, nmin, nmax):
        if omin == omax:
            return (_histc(np.array([omin], np.float32), self.bins, nmin, nmax)
                    * np.float32(orig.sum()) + upd).astype(np.float32)
        r, n = self.upsample_rate, self.bins
        h = (np.repeat(orig, r) / np.float32(r)).astype(np.float32)
        size = np.float32(np.float32(omax - omin) / np.float32(n * r))
        mids = (_linspace32(omin, omax, n * r + 1)[:-1] + np.float32(0.5) * size).astype(
            np.float32)
        bounds = _linspace32(nmin, nmax, n + 1)
        idx = np.clip(np.searchsorted(bounds, mids, side="right") - 1, 0, n - 1)
        moved = np.zeros(n, np.float32)
        np.add.at(moved, idx, h)    # (bincount adds in order in float32)
        return (upd + moved).astype(np.float32)

    def _quant_error(self, start, end):
        f = np.float32
        mn, mx = float(_f32(self.min_val)), float(_f32(self.max_val))
        bw = (mx - mn) / self.bins
        dbw = bw * (end - start + 1) / self.dst_nbins
        if dbw == 0.0:
            return 0.0
        fbw, fdbw = f(bw), f(dbw)
        src = np.arange(self.bins)
        begin = ((src - start).astype(f) * fbw).astype(f)
        endv = (begin + fbw).astype(f)
        hi = self.dst_nbins - 1
        db = np.clip(_div_floor32(begin, fdbw), 0, hi).astype(f)
        dbc = ((db + f(0.5)) * fdbw).astype(f)
        de = np.clip(_div_floor32(endv, fdbw), 0, hi).astype(f)
        dens = (np.asarray(values(self.histogram), f) / fbw).astype(f)

        def norm(b, e):
            return (dens * (((e * e * e).astype(f) - (b * b * b).astype(f)).astype(f)
                            / f(3)).astype(f)).astype(f)
        half = f(dbw / 2)
        tot = norm((begin - dbc).astype(f), np.full(self.bins, half, f))
        tot = (tot + ((de - db - f(1)).astype(f) * norm(np.full(self.bins, -half, f),
                                                        np.full(self.bins, half, f))).astype(f))
        dec = ((de * fdbw).astype(f) + half).astype(f)
        tot = (tot + norm(np.full(self.bins, -half, f), (endv - dec).astype(f))).astype(f)
        return float(tot.sum(dtype=f))

    def _search(self):
        hist = np.asarray(values(self.histogram), np.float32)
        mn, mx = _f32(self.min_val), _f32(self.max_val)
        bw = np.float32(np.float32(mx - mn) / np.float32(self.bins))
        total = float(hist.sum(dtype=np.float32))
        csum = np.cumsum(hist, dtype=np.float32)
        alpha, beta, start, end, norm_min = 0.0, 1.0, 0, self.bins - 1, float("inf")
        while alpha < beta:
            na, nb = alpha + 1e-5, beta - 1e-5
            lo, hi = start, end
            ta, tb = np.float32(na * total), np.float32(nb * total)
            while lo < end and csum[lo] < ta:
                lo += 1
            while hi > start and csum[hi] > tb:
                hi -= 1
            ns, ne = start, end
            if lo - start > end - hi:
                ns, alpha = lo, na
            else:
                ne, beta = hi, nb
            if ns == start and ne == end:
                continue
            norm = self._quant_error(ns, ne)
            if norm > norm_min:
                break
            norm_min, start, end = norm, ns, ne
        return (np.float32(mn + np.float32(bw * np.float32(start))),
                np.float32(mn + np.float32(bw * np.float32(end + 1))))

    def calculate_qparams(self):
        if _f32(self.min_val) == np.inf and _f32(self.max_val) == -np.inf:
            warnings.warn("must run observer before calling calculate_qparams.                    "
                          "                Returning default scale and zero point ", stacklevel=2)
            return wrap(np.array([1.0], np.float32), dt.float32), \
                wrap(np.array([0], np.int64), dt.int64)
        mn, mx = self._search()
        s, z = self._calculate_qparams(mn, mx)
        return (wrap(np.reshape(s, (1,)), dt.float32),
                wrap(np.reshape(z, (1,)), dt.from_numpy(z.dtype)))

    def extra_repr(self):
        return f"min_val={self.min_val.item()}, max_val={self.max_val.item()}"


default_histogram_observer = HistogramObserver.with_args(quant_min=0, quant_max=127)
