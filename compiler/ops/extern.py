"""Extern primitives: ops that call a library routine instead of a generated kernel
(sorting, data-dependent shapes). None but grad_link is differentiable by itself:
sort/topk/max-with-indices get their gradient through `gather` on the indices these return."""
import numpy as np

from runtime import dtypes as dt
from ..ir.registry import AVal, Prim, register, norm_dim
from . import stl_order


def _argsort_meta(x, dim=-1, descending=False, stable=False):
    norm_dim("sort", dim, len(x.shape))
    return AVal(x.shape, dt.int64)


def _argsort_xp(xp, out, x, dim=-1, descending=False, stable=False):
    if x.ndim == 0:
        return xp.zeros((), np.int64)
    if xp is np and not stable and not (
            x.ndim == 1 and x.size >= 32768 and x.dtype.kind in "iu" and not descending):
        # PyTorch's cpu sort is std::sort: its own order among ties (a 1-d integer input of
        # 32768 or more ascending takes fbgemm's radix sort, which is stable)
        return stl_order.sort_indices(x, dim, descending, _stable_argsort)
    return _stable_argsort(x, dim, descending, xp)


def _stable_argsort(x, dim, descending, xp=np):
    kind = "stable" if xp is np else None       # (CuPy's sort is always stable: kind=None)
    if descending:
        # stable descending: sort the reversed array ascending by negated key order
        n = x.shape[dim]
        r = xp.flip(x, dim)
        idx = xp.argsort(r, axis=dim, kind=kind)
        idx = xp.flip(idx, dim)
        idx = (n - 1) - idx
        # NaN sorts as largest in torch: np puts NaN last in ascending, so first here (good)
        return idx.astype(np.int64)
    return xp.argsort(x, axis=dim, kind=kind).astype(np.int64)


register(Prim("argsort", "extern", _argsort_meta, None, differentiable=False, xp=_argsort_xp))


def _topk_meta(x, k, dim=-1, largest=True, sorted=True):
    d = norm_dim("topk", dim, len(x.shape))
    return AVal(tuple(k if i == d else s for i, s in enumerate(x.shape)), dt.int64)


def _topk_np(out, x, k, dim=-1, largest=True, sorted=True):
    """Indices of torch.topk's cpu kernel: which of equal values it picks, and their order
    with sorted=False (stl_order)."""
    return stl_order.topk_indices(x, k, dim, largest, sorted)


register(Prim("topk_index", "extern", _topk_meta, _topk_np, differentiable=False))


def _kthvalue_meta(x, k, dim=-1):
    d = norm_dim("kthvalue", dim, len(x.shape))
    return AVal(tuple(1 if i == d else s for i, s in enumerate(x.shape)), dt.int64)


def _kthvalue_np(out, x, k, dim=-1):
    """Index (keepdim) of torch.kthvalue's cpu kernel: quick_select's pick among ties."""
    return stl_order.kth_indices(x, k, dim)


register(Prim("kthvalue_index", "extern", _kthvalue_meta, _kthvalue_np, differentiable=False))


def _nonzero_meta(x):
    return AVal((-1, len(x.shape)), dt.int64)      # row count known only at run time


register(Prim("nonzero", "extern", _nonzero_meta,
              lambda out, x: np.argwhere(x).astype(np.int64), differentiable=False))


def _unique_meta(x, sorted=True, return_inverse=False, return_counts=False, dim=None):
    return (AVal((-1,), x.dtype), AVal(x.shape, dt.int64), AVal((-1,), dt.int64))


def _unique_np(out, x, sorted=True, return_inverse=False, return_counts=False, dim=None):
    if dim is None:
        # each NaN is its own value, as in torch (NumPy's default folds them into one)
        u, inv, cnt = np.unique(x, return_inverse=True, return_counts=True, equal_nan=False)
        return u, inv.reshape(x.shape).astype(np.int64), cnt.astype(np.int64)
    u, inv, cnt = np.unique(x, return_inverse=True, return_counts=True, axis=dim)
    return u, inv.reshape(-1).astype(np.int64), cnt.astype(np.int64)


register(Prim("unique", "extern", _unique_meta, _unique_np, nout=3, differentiable=False))


def _bincount_meta(x, weights=None, *, minlength=0):
    if x.dtype.category != 1 or x.dtype.barebones:
        raise NotImplementedError(f"\"bincount_cpu\" not implemented for "
                                  f"'{dt.tname(x.dtype)}' (bincount needs an integer input)")
    if len(x.shape) != 1:
        raise RuntimeError(f"bincount only supports 1-d non-negative integral inputs (got shape "
                           f"{list(x.shape)}, dtype {x.dtype})")
    if weights is not None and not hasattr(weights, "shape"):
        raise TypeError(f"bincount: weights must be a Tensor, got {type(weights).__name__}")
    if minlength < 0:
        raise RuntimeError(f"bincount: minlength should be >= 0 (got {minlength})")
    if weights is not None and (len(weights.shape) != 1 or weights.shape[0] != x.shape[0]):
        raise RuntimeError(f"bincount: weights should be 1-d and have the same length as input "
                           f"(input shape {list(x.shape)}, weights shape {list(weights.shape)})")
    # torch: float32 weights give float32 counts, every other weight dtype gives float64
    d = dt.int64 if weights is None else (dt.float32 if weights.dtype is dt.float32 else dt.float64)
    return AVal((-1,), d)


def _bincount_np(out, x, weights=None, *, minlength=0):
    if x.size and x.min() < 0:
        raise RuntimeError(f"bincount only supports 1-d non-negative integral inputs (got minimum "
                           f"{x.min()})")
    w = None if weights is None else np.asarray(weights, np.float64)
    return np.bincount(x, weights=w, minlength=minlength).astype(out.dtype.np)


register(Prim("bincount", "extern", _bincount_meta, _bincount_np, differentiable=False))


def _mode_meta(x, dim=-1, keepdim=False):
    d = norm_dim("mode", dim, len(x.shape))
    if len(x.shape) and x.shape[d] == 0:
        raise IndexError(f"mode(): Expected reduction dim {d} to have non-zero size (input shape "
                         f"{list(x.shape)})")
    shape = tuple(1 if (i == d and keepdim) else s for i, s in enumerate(x.shape) if i != d or keepdim)
    return AVal(shape, dt.int64)


def _mode_np(out, x, dim=-1, keepdim=False):
    # index of the most frequent value (smallest value on ties) where torch's cpu kernel's
    # std::sort leaves the end of its run (stl_order)
    if x.ndim == 0:
        return np.zeros((), np.int64)
    res = stl_order.mode_indices(x, dim)
    return res if keepdim else np.squeeze(res, dim)


register(Prim("mode_index", "extern", _mode_meta, _mode_np, differentiable=False))


def _cum_extreme_meta(x, dim, largest=True):
    norm_dim("cummax" if largest else "cummin", dim, len(x.shape))
    if x.dtype.is_complex:
        raise NotImplementedError(f"\"{'cummax' if largest else 'cummin'}_cpu\" not implemented "
                                  f"for '{dt.tname(x.dtype)}'")
    return AVal(x.shape, dt.int64)


def _cum_extreme_xp(xp, out, x, dim, largest=True):
    """Index of the running maximum (minimum) along dim, as PyTorch's cpu kernel: a tie moves
    the index to the later element, and a NaN takes over (and keeps propagating) once seen."""
    if x.ndim == 0:
        return xp.zeros((), np.int64)
    xm = xp.moveaxis(x, dim, 0)
    idx = xp.zeros(xm.shape, np.int64)
    if xm.shape[0] == 0:
        return xp.moveaxis(idx, 0, dim)
    best = xm[0].copy()
    bi = xp.zeros(best.shape, np.int64)
    floating = x.dtype.kind in "fc" or x.dtype == dt.bfloat16.np
    cmp = xp.greater_equal if largest else xp.less_equal
    for k in range(1, xm.shape[0]):
        v = xm[k]
        if floating:
            upd = xp.isnan(v) | (~xp.isnan(best) & cmp(v, best))
        else:
            upd = cmp(v, best)
        best = xp.where(upd, v, best)
        bi = xp.where(upd, k, bi)
        idx[k] = bi
    return xp.moveaxis(idx, 0, dim)


register(Prim("cum_extreme_index", "extern", _cum_extreme_meta, None, differentiable=False,
              xp=_cum_extreme_xp))


# grad_link(g, x) is g, and its gradient gives x zeros of x's `shape`/`dtype`. The backward
# engine wraps a create_graph gradient in it where PyTorch's backward op reads x (relu's
# threshold_backward, the pools, leaky_relu...): Kiln's rules read only a mask, so without it
# a second backward would give x's producers None where PyTorch gives zeros (an R1 penalty's
# biases get grad 0 and an optimizer steps them). x's data is never read. unused=True gives
# x no gradient (None) instead: PyTorch's convolution double backward for a constant weight.
def _grad_link_meta(g, x, shape=(), dtype=None, unused=False):
    return AVal(g.shape, g.dtype)


register(Prim("grad_link", "extern", _grad_link_meta, None, saves=(), cache_meta=True,
              vjp=lambda b, g, a, x, out=None, shape=(), dtype=None, unused=False:
              (g, None if unused else b.full(shape=tuple(shape), value=0, dtype=dtype)),
              xp=lambda xp, out, g, x, shape=(), dtype=None, unused=False: g.copy()))
