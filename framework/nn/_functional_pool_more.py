"""max_unpool1d/2d/3d, lp_pool3d, fractional_max_pool2d/3d, gumbel_softmax,
native_channel_shuffle: decompositions into scatter/gather/window primitives."""
import numpy as np

from compiler.ir.registry import REGISTRY as P
from runtime import dtypes as dt
from .._dispatch import apply, rename, values, wrap_like
from .._device_ops import host
from ..tensor import Tensor
from .. import ops_math as M
from .. import creation as C
from ._functional_conv import _ntuple, _reshape, _lp_pool, channel_shuffle, _prod

__all__ = ["max_unpool1d", "max_unpool2d", "max_unpool3d", "lp_pool3d",
           "fractional_max_pool2d", "fractional_max_pool3d", "fractional_max_pool2d_with_indices",
           "fractional_max_pool3d_with_indices", "gumbel_softmax", "native_channel_shuffle"]


def native_channel_shuffle(input, groups):
    return channel_shuffle(input, groups)


# ---- max_unpool -------------------------------------------------------------------------------

def _unpool_size(nd, op, x, kernel_size, stride, padding, output_size):
    k = _ntuple(kernel_size, nd, "kernel_size", op)
    s = k if stride is None else _ntuple(stride, nd, "stride", op)
    p = _ntuple(padding, nd, "padding", op)
    ins = tuple(x.shape[-nd:])
    default = tuple((i - 1) * ss - 2 * pp + kk for i, kk, ss, pp in zip(ins, k, s, p))
    if output_size is None:
        return default
    out = tuple(int(v) for v in output_size)
    given = output_size         # PyTorch prints it as passed (less its leading dims)
    if len(out) == nd + 2:
        out, given = out[2:], output_size[2:]
    elif len(out) == nd + 1 and x.ndim == nd + 1:
        out, given = out[1:], output_size[1:]
    if len(out) != nd:
        raise ValueError(f"output_size should be a sequence containing {nd} or {nd + 2} elements, "
                         f"but it has a length of '{len(output_size)}'")
    for d in range(nd):
        lo, hi = default[d] - s[d], default[d] + s[d]
        if not lo < out[d] < hi:
            raise ValueError(f'invalid output_size "{given}" (dim {d} must be between {lo} '
                             f'and {hi})')
    return out


def _max_unpool(nd, op, input, indices, kernel_size, stride, padding, output_size):
    if not isinstance(indices, Tensor) or indices._dtype is not dt.int64:
        raise RuntimeError(f"{op}(): elements in indices should be type int64 but got: "
                           f"{getattr(indices, 'dtype', type(indices).__name__)}")
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{op}(): Expected {nd + 1}D or {nd + 2}D tensor, but got "
                           f"{list(input.shape)}")
    if tuple(indices.shape) != tuple(input.shape):
        raise RuntimeError(f"Expected shape of indices to be same as that of the input tensor "
                           f"({list(input.shape)}) but got indices tensor with shape: "
                           f"{list(indices.shape)}")
    out = _unpool_size(nd, op, input, kernel_size, stride, padding, output_size)
    lead = tuple(input.shape[:-nd])
    planes = _prod(lead)
    n_out = _prod(out)
    iv = host(values(indices))
    if iv.size and (iv.min() < 0 or iv.max() >= n_out):
        bad = iv.max() if iv.max() >= n_out else iv.min()
        raise RuntimeError(f"Found an invalid max index: {bad} (output volumes are of size "
                           f"{'x'.join(map(str, out))}")
    x = _reshape(input, (planes, -1))
    i = _reshape(indices, (planes, -1))
    z = M.full_on(input, (planes, n_out), 0, input._dtype)
    r = apply(P["scatter"], z, i, x, dim=1, reduce=None)
    # (PyTorch's max_unpool1d is max_unpool2d of an unsqueezed input, squeezed back)
    return rename(_reshape(r, lead + out),
                  f"MaxUnpool{nd}DBackward0" if nd > 1 else "SqueezeBackward1")


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool(1, "max_unpool1d", input, indices, kernel_size, stride, padding,
                       output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool(2, "max_unpool2d", input, indices, kernel_size, stride, padding,
                       output_size)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool(3, "max_unpool3d", input, indices, kernel_size, stride, padding,
                       output_size)


# ---- lp_pool3d ---------------------------------------------------------------------------------

def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _lp_pool(3, input, norm_type, kernel_size, stride, ceil_mode)


# ---- fractional max pooling --------------------------------------------------------------------

def _intervals(sample, n_in, n_out, pool, npd):
    """ATen's generate_intervals, in the input's float type: window starts along one dim."""
    seq = np.empty(n_out, np.int64)
    if n_out > 1:
        alpha = npd(n_in - pool) / npd(n_out - 1)
        i = np.arange(n_out - 1).astype(npd)
        seq[:-1] = ((i + sample) * alpha).astype(np.int64) - np.int64(npd(sample * alpha))
    if n_out > 0:
        seq[-1] = n_in - pool
    return seq


def _fractional(nd, op, input, kernel_size, output_size, output_ratio, return_indices,
                _random_samples):
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{op}(): Expected {nd + 1}D or {nd + 2}D tensor, but got: "
                           f"{list(input.shape)}")
    if not input._dtype.is_floating_point:
        raise RuntimeError(f"\"{op}\" not implemented for '{dt.tname(input._dtype)}'")
    if output_size is None and output_ratio is None:
        raise ValueError(f"{op} requires specifying either an output_size or an output_ratio")
    k = _ntuple(kernel_size, nd, "kernel_size", op)
    ins = tuple(input.shape[-nd:])
    if output_size is None:
        ratio = tuple(output_ratio) if isinstance(output_ratio, (tuple, list)) else \
            (float(output_ratio),) * nd
        if any(not 0 < r < 1 for r in ratio):
            raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")
        out = tuple(int(i * r) for i, r in zip(ins, ratio))
    else:
        out = _ntuple(output_size, nd, "output_size", op)
    for d in range(nd):
        if out[d] + k[d] - 1 > ins[d]:
            raise RuntimeError(f"{op}(): pool size {k[d]} too large relative to input size "
                               f"{ins[d]} and output size {out[d]} (dim {d})")
    batched = input.ndim == nd + 2
    N = input.shape[0] if batched else 1
    Cn = input.shape[-nd - 1]
    if _random_samples is None:
        _random_samples = C.rand(N, Cn, nd, dtype=input._dtype, device=input.device)
    elif tuple(_random_samples.shape) != (N, Cn, nd):
        raise RuntimeError(f"{op}(): expected _random_samples of shape {[N, Cn, nd]}, got "
                           f"{list(_random_samples.shape)}")
    smp = host(values(_random_samples)).reshape(N * Cn, nd)
    npd = input._dtype.np.type
    # per plane: flat input positions of every (output position, window offset)
    grids = np.meshgrid(*[np.arange(o) for o in out], *[np.arange(kk) for kk in k], indexing="ij")
    in_st = [int(np.prod(ins[d + 1:])) for d in range(nd)]
    pos = np.empty((N * Cn,) + tuple(out) + tuple(k), np.int64)
    for pl in range(N * Cn):
        # 2d samples are (w, h); 3d samples are (t, h, w)
        order = list(range(nd)) if nd == 3 else [1, 0]
        flat = 0
        for d in range(nd):
            starts = _intervals(npd(smp[pl, order[d]]), ins[d], out[d], k[d], npd)
            flat = flat + (starts[grids[d]] + grids[nd + d]) * in_st[d]
        pos[pl] = flat
    K = _prod(k)
    O = _prod(out)
    x = _reshape(input, (N * Cn, _prod(ins)))
    idx = wrap_like(pos.reshape(N * Cn, O * K), dt.int64, input)
    win = _reshape(apply(P["gather"], x, idx, dim=1), (N * Cn, O, K))
    # the first maximum of each window (NaN wins, as ATen's `val > max || isnan(val)`)
    nan = apply(P["isnan"], win)
    key = apply(P["where"], nan, float("inf"), win)
    am = apply(P["argmax"], key, dim=2, keepdim=True)
    chosen = apply(P["gather"], _reshape(idx, (N * Cn, O, K)), am, dim=2)
    chosen = _reshape(chosen, (N * Cn, O))
    val = apply(P["gather"], x, chosen, dim=1)
    shape = tuple(input.shape[:-nd]) + tuple(out)
    val = rename(_reshape(val, shape), f"FractionalMaxPool{nd}DBackward0", link=input)
    if return_indices:
        return val, _reshape(chosen, shape)
    return val


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):
    return _fractional(2, "fractional_max_pool2d", input, kernel_size, output_size, output_ratio,
                       return_indices, _random_samples)


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):
    return _fractional(3, "fractional_max_pool3d", input, kernel_size, output_size, output_ratio,
                       return_indices, _random_samples)


def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=True, _random_samples=None):
    return fractional_max_pool2d(input, kernel_size, output_size, output_ratio, True,
                                 _random_samples)


def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=True, _random_samples=None):
    return fractional_max_pool3d(input, kernel_size, output_size, output_ratio, True,
                                 _random_samples)


# ---- gumbel_softmax ----------------------------------------------------------------------------

def gumbel_softmax(logits, tau=1, hard=False, eps=1e-10, dim=-1):
    """Samples from the Gumbel-softmax distribution; hard=True returns one-hot vectors whose
    gradient is the soft sample's (straight-through)."""
    from ._functional_basic import softmax
    e = C.empty_like(logits)
    e.exponential_()
    gumbels = M.neg(M.log(e))
    y_soft = softmax(M.div(M.add(logits, gumbels), tau), dim)
    if not hard:
        return y_soft
    index = M.max(y_soft, dim, keepdim=True)[1]
    y_hard = C.zeros_like(logits).scatter_(dim, index, 1.0)
    return M.add(M.sub(y_hard, y_soft.detach()), y_soft)
