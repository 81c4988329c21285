"""The nn.functional ops PyTorch also exposes at the top level (torch.conv2d, torch.dropout,
torch.batch_norm, ...). One table: a name maps to its functional form, or to an adapter where
torch's top-level (ATen) signature differs: positional `train` flags, batch_norm's 9 positional
arguments, reductions as ints (0 none, 1 mean, 2 sum), torch.embedding(weight, indices)."""
import numpy as np

from runtime import dtypes as dt
from . import _functional_basic as FB
from . import _functional_conv as FC
from . import _functional_ctc as FT

_REDUCTIONS = ("none", "mean", "sum")


def _red(reduction):
    if isinstance(reduction, str):
        return reduction
    if reduction not in (0, 1, 2):
        raise RuntimeError(f"{reduction} is not a valid value for reduction")
    return _REDUCTIONS[reduction]


def _dropout(input, p, train):
    return FB.dropout(input, p, train)


def _dropout_(input, p, train):
    return FB.dropout(input, p, train, inplace=True)


def _feature_dropout(input, p, train):
    return FB._dropout_impl(input, p, train, False, True, False, "feature_dropout")


def _feature_dropout_(input, p, train):
    return FB._dropout_impl(input, p, train, True, True, False, "feature_dropout")


def _alpha_dropout(input, p, train):
    return FB.alpha_dropout(input, p, train)


def _alpha_dropout_(input, p, train):
    return FB.alpha_dropout(input, p, train, inplace=True)


def _feature_alpha_dropout(input, p, train):
    return FB.feature_alpha_dropout(input, p, train)


def _feature_alpha_dropout_(input, p, train):
    return FB.feature_alpha_dropout(input, p, train, inplace=True)


def _layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05, cudnn_enable=True):
    return FC.layer_norm(input, normalized_shape, weight, bias, eps)


def _group_norm(input, num_groups, weight=None, bias=None, eps=1e-05, cudnn_enabled=True):
    return FC.group_norm(input, num_groups, weight, bias, eps)


def _batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps,
                cudnn_enabled):
    return FC.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def _instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum,
                   eps, cudnn_enabled):
    return FC.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats,
                            momentum, eps)


def _embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    return FB.embedding(indices, weight, None if padding_idx < 0 else padding_idx,
                        scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


def _embedding_bag(weight, indices, offsets, scale_grad_by_freq=False, mode=0, sparse=False,
                   per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """(output, offset2bag, bag_size, max_indices) as ATen returns them (1-d indices with
    offsets; mode 0 sum, 1 mean, 2 max)."""
    from ..creation import tensor
    from .._device_ops import host
    if mode not in (0, 1, 2):
        raise RuntimeError(f"embedding_bag: mode must be 0 (sum), 1 (mean) or 2 (max), got {mode}")
    out = FB.embedding_bag(indices, weight, offsets, mode=("sum", "mean", "max")[mode],
                           scale_grad_by_freq=scale_grad_by_freq, sparse=sparse,
                           per_sample_weights=per_sample_weights,
                           include_last_offset=include_last_offset, padding_idx=padding_idx)
    idx = np.asarray(host(indices._data)).reshape(-1)
    off = np.asarray(host(offsets._data)).reshape(-1)
    n = idx.shape[0]
    starts = off[:-1] if include_last_offset else off
    ends = np.append(starts[1:], off[-1] if include_last_offset else n)
    B = starts.shape[0]
    keep = np.ones(n, bool) if padding_idx is None else idx != padding_idx
    bag = np.zeros(n, np.int64)
    sizes = np.zeros(B, np.int64)
    for b in range(B):
        bag[starts[b]:ends[b]] = b
        sizes[b] = keep[starts[b]:ends[b]].sum()
    dev = weight.device
    if mode == 0:
        return (out, tensor(np.zeros(0, np.int64), device=dev), tensor(np.zeros(B, np.int64), device=dev),
                tensor(np.zeros(B, np.int64), device=dev))
    if mode == 1:
        return (out, tensor(bag, device=dev), tensor(sizes, device=dev), tensor(sizes, device=dev))
    w = np.asarray(host(weight._data))
    mx = np.zeros((B, w.shape[1]), np.int64)
    for b in range(B):
        rows = [r for r in idx[starts[b]:ends[b]] if padding_idx is None or r != padding_idx]
        if rows:
            mx[b] = np.asarray(rows)[np.argmax(w[rows], axis=0)]
    return (out, tensor(bag, device=dev), tensor(sizes, device=dev), tensor(mx, device=dev))


def _pool_stride(stride):
    return None if stride is None or (isinstance(stride, (list, tuple)) and not stride) else stride


def _max_pool(fn):
    def f(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
        return fn(input, kernel_size, _pool_stride(stride), padding, dilation, ceil_mode)
    f.__name__ = fn.__name__
    return f


def _max_pool1d_with_indices(input, kernel_size, stride=(), padding=0, dilation=1,
                             ceil_mode=False):
    return FC.max_pool1d(input, kernel_size, _pool_stride(stride), padding, dilation, ceil_mode,
                         return_indices=True)


def _adaptive_max_pool1d(input, output_size):
    return FC.adaptive_max_pool1d(input, output_size, return_indices=True)


def _rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    return FB.rrelu(input, lower, upper, training, generator=generator)


def _rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    return FB.rrelu(input, lower, upper, training, inplace=True, generator=generator)


def _threshold(input, threshold, value):
    return FB.threshold(input, threshold, value)


def _celu(input, alpha=1.0):
    return FB.celu(input, alpha)


def _celu_(input, alpha=1.0):
    return FB.celu_(input, alpha)


def _selu(input):
    return FB.selu(input)


def _kl_div(input, target, reduction=1, *, log_target=False):
    return FB.kl_div(input, target, reduction=_red(reduction), log_target=log_target)


def _ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction=1,
              zero_infinity=False):
    return FT.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, _red(reduction),
                       zero_infinity)


def _cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=1):
    return FB.cosine_embedding_loss(input1, input2, target, margin, reduction=_red(reduction))


def _hinge_embedding_loss(input, target, margin=1.0, reduction=1):
    return FB.hinge_embedding_loss(input, target, margin, reduction=_red(reduction))


def _margin_ranking_loss(input1, input2, target, margin=0.0, reduction=1):
    return FB.margin_ranking_loss(input1, input2, target, margin, reduction=_red(reduction))


def _poisson_nll_loss(input, target, log_input, full, eps, reduction):
    return FB.poisson_nll_loss(input, target, log_input, full, eps=eps, reduction=_red(reduction))


def _triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-06, swap=False,
                         reduction=1):
    return FB.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap,
                                  reduction=_red(reduction))


def _bce_with_logits(input, target, weight=None, pos_weight=None, reduction=1):
    return FB.binary_cross_entropy_with_logits(input, target, weight, reduction=_red(reduction),
                                               pos_weight=pos_weight)


def _constant_pad_nd(input, pad, value=0):
    return FC.pad(input, list(pad), "constant", value)


# ---- the native_* ops: the output and the statistics backward would reuse, as torch's tuples ----

def _stats(x, dims, eps):
    """(mean, 1 / sqrt(var + eps)) over `dims` (biased variance), kept dims, without history."""
    from ..autograd.grad_mode import no_grad
    from .. import ops_math as M
    with no_grad():
        mean = M.mean(x, dims, keepdim=True)
        var = M.mean(M.square(M.sub(x, mean)), dims, keepdim=True)
        return mean, M.rsqrt(M.add(var, eps))


def native_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps):
    """(output, save_mean, save_invstd): the batch's per-channel mean and 1/sqrt(var + eps)
    when training, empty tensors otherwise."""
    from .. import ops_shape as S
    from .. import creation as C
    if training:
        mean, invstd = _stats(input, (0,) + tuple(range(2, input.ndim)), eps)
        mean, invstd = S.reshape(mean, (-1,)), S.reshape(invstd, (-1,))
    else:
        mean = invstd = C.empty(0, dtype=input.dtype, device=input.device)
    out = FC.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)
    return out, mean, invstd


def native_layer_norm(input, normalized_shape, weight, bias, eps):
    """(output, mean, rstd), the statistics shaped input.shape[:axis] + (1,) * len(shape)."""
    out = FC.layer_norm(input, normalized_shape, weight, bias, eps)
    k = 1 if isinstance(normalized_shape, int) else len(tuple(normalized_shape))
    mean, rstd = _stats(input, tuple(range(input.ndim - k, input.ndim)), eps)
    return out, mean, rstd


def native_group_norm(input, weight, bias, N, C, HxW, group, eps):
    """(output, mean, rstd), the statistics of shape (N, group)."""
    from .. import ops_shape as S
    if input.numel() != N * C * HxW:
        raise RuntimeError(f"Expected input to be of size N * C * HxW = {N * C * HxW} "
                           f"(N={N}, C={C}, HxW={HxW}), but got {input.numel()} elements "
                           f"(shape {list(input.shape)})")
    out = FC.group_norm(input, group, weight, bias, eps)
    mean, rstd = _stats(S.reshape(input, (N, group, -1)), (2,), eps)
    return out, S.reshape(mean, (N, group)), S.reshape(rstd, (N, group))


def native_dropout(input, p, train):
    """(output, mask): the bool keep mask and input * mask / (1 - p); the same mask F.dropout
    draws for a seed. With train False, a copy of input and an all-true mask."""
    from .. import ops_math as M
    from .. import creation as C
    FB._check_p(p)
    if train is False or input.numel() == 0:
        from runtime import dtypes as _dt
        return M.clone(input), C.ones(input.shape, dtype=_dt.bool_, device=input.device)
    if p >= 1:
        keep = C.zeros(input.shape, dtype=input.dtype, device=input.device)
        out = M.mul(input, keep)
    else:
        keep = FB._bernoulli_mask(tuple(input.shape), 1 - p, input.dtype, input.device)
        out = M.mul(input, M.div(keep, 1 - p))
    from .._dispatch import rename
    from runtime import dtypes as _dt
    return rename(out, "NativeDropoutBackward0"), M.cast(keep, _dt.bool_)


# name -> functional form (torch.<name> and F.<name> take the same arguments) or adapter
TORCH_LEVEL = {
    "conv1d": FC.conv1d, "conv2d": FC.conv2d, "conv3d": FC.conv3d,
    "conv_transpose1d": FC.conv_transpose1d, "conv_transpose2d": FC.conv_transpose2d,
    "conv_transpose3d": FC.conv_transpose3d, "conv_tbc": FC.conv_tbc,
    "dropout": _dropout, "dropout_": _dropout_, "feature_dropout": _feature_dropout,
    "feature_dropout_": _feature_dropout_, "alpha_dropout": _alpha_dropout,
    "alpha_dropout_": _alpha_dropout_, "feature_alpha_dropout": _feature_alpha_dropout,
    "feature_alpha_dropout_": _feature_alpha_dropout_,
    "layer_norm": _layer_norm, "group_norm": _group_norm, "batch_norm": _batch_norm,
    "instance_norm": _instance_norm, "rms_norm": FC.rms_norm,
    "embedding": _embedding, "embedding_bag": _embedding_bag,
    "pixel_shuffle": FC.pixel_shuffle, "pixel_unshuffle": FC.pixel_unshuffle,
    "channel_shuffle": FC.channel_shuffle, "native_channel_shuffle": FC.channel_shuffle,
    "max_pool1d": _max_pool(FC.max_pool1d), "max_pool2d": _max_pool(FC.max_pool2d),
    "max_pool3d": _max_pool(FC.max_pool3d), "max_pool1d_with_indices": _max_pool1d_with_indices,
    "avg_pool1d": FC.avg_pool1d, "adaptive_avg_pool1d": FC.adaptive_avg_pool1d,
    "adaptive_max_pool1d": _adaptive_max_pool1d,
    "prelu": FB.prelu, "selu": _selu, "selu_": FB.selu_, "celu": _celu, "celu_": _celu_,
    "rrelu": _rrelu, "rrelu_": _rrelu_, "threshold": _threshold, "threshold_": FB.threshold_,
    "hardshrink": FB.hardshrink, "bilinear": FB.bilinear,
    "cosine_similarity": FB.cosine_similarity, "pairwise_distance": FB.pairwise_distance,
    "pdist": FB.pdist, "kl_div": _kl_div, "ctc_loss": _ctc_loss,
    "cosine_embedding_loss": _cosine_embedding_loss,
    "hinge_embedding_loss": _hinge_embedding_loss, "margin_ranking_loss": _margin_ranking_loss,
    "poisson_nll_loss": _poisson_nll_loss, "triplet_margin_loss": _triplet_margin_loss,
    "binary_cross_entropy_with_logits": _bce_with_logits, "constant_pad_nd": _constant_pad_nd,
    "native_batch_norm": native_batch_norm, "native_layer_norm": native_layer_norm,
    "native_group_norm": native_group_norm, "native_dropout": native_dropout,
}

for _n, _f in TORCH_LEVEL.items():
    globals()[_n] = _f
__all__ = list(TORCH_LEVEL)
del dt
