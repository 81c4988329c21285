"""Ordering ops: sort, argsort, topk, kthvalue, median, mode, unique, bincount, ... Index
computations are extern primitives; values come from `gather`, so gradients flow through it."""

import numpy as np

from compiler.ir.registry import REGISTRY, norm_dim
from runtime import dtypes as dt
from ._dispatch import apply, rename, values, wrap, wrap_like
from .tensor import Tensor
from .ops_math import _named, _select_along
from . import ops_shape as S

P = REGISTRY


def _no_complex(input, op):
    # complex numbers have no order: PyTorch refuses them (NumPy would sort lexicographically)
    if input._dtype.is_complex:
        raise RuntimeError(f" {op} does not support complex dtypes on CPU")


def sort(input, dim=-1, descending=False, stable=False, *, out=None):
    _no_complex(input, "Sort")
    if input.ndim == 0:
        return _named("sort")(input, wrap_like(np.zeros((), np.int64), dt.int64, input))
    d = norm_dim("sort", dim, input.ndim)
    idx = apply(P["argsort"], input, dim=d, descending=descending, stable=stable)
    v = rename(apply(P["gather"], input, idx, dim=d), "SortBackward0")
    return _named("sort")(v, idx)


def argsort(input, dim=-1, descending=False, stable=False):
    _no_complex(input, "Sort")
    if input.ndim == 0:
        return wrap_like(np.zeros((), np.int64), dt.int64, input)
    return apply(P["argsort"], input, dim=norm_dim("argsort", dim, input.ndim), descending=descending,
                 stable=stable)


def msort(input):
    return sort(input, 0)[0]


def topk(input, k, dim=-1, largest=True, sorted=True, *, out=None):
    _no_complex(input, "topk")
    d = norm_dim("topk", dim, max(input.ndim, 1))
    n = input.shape[d] if input.ndim else 1
    if k < 0 or k > n:
        raise RuntimeError(f"topk(): selected index k out of range (k={k}, size {n} at dim {d})")
    if input.ndim == 0:
        return _named("topk")(input, wrap_like(np.zeros((), np.int64), dt.int64, input))
    idx = apply(P["argsort"], input, dim=d, descending=largest, stable=True)
    idx = apply(P["copy"], apply(P["slice"], idx, dim=d, start=0, stop=k, step=1))  # own buffer
    v = rename(apply(P["gather"], input, idx, dim=d), "TopkBackward0")
    return _named("topk")(v, idx)


def kthvalue(input, k, dim=-1, keepdim=False, *, out=None):
    d = norm_dim("kthvalue", dim, max(input.ndim, 1))
    n = input.shape[d] if input.ndim else 1
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d} "
                           f"(k={k}, size {n})")
    idx = apply(P["argsort"], input, dim=d, descending=False, stable=True)
    idx = apply(P["copy"], apply(P["slice"], idx, dim=d, start=k - 1, stop=k, step=1))
    v, i = _select_along(input, idx, d, keepdim)
    return _named("kthvalue")(rename(v, "KthvalueBackward0"), i)


def _median_pos(input, d, ignore_nan):
    """Index (keepdim layout along d) of the lower median of each row: NaN propagates (first
    NaN in the row) unless ignore_nan, where the median is taken over the non-NaN values."""
    n = input._data.shape[d]
    # the position is computed in NumPy from the values (under compile() a value read: the
    # sorted order is materialised, or the trace is specialised to a concrete input's values)
    order_t = apply(P["argsort"], input, dim=d, descending=False, stable=True)
    order = values(order_t)
    if input._dtype.is_floating_point:
        nans = np.isnan(values(input)).sum(axis=d, keepdims=True)     # NaNs sort last
    else:
        nans = np.zeros([1 if k == d else s for k, s in enumerate(input._data.shape)], np.int64)
    m = n - nans
    if ignore_nan:
        # an all-NaN row answers NaN; position n // 2 is the index torch's CPU kernel reports
        k = np.where(m > 0, (m - 1) // 2, n // 2)
    else:
        k = np.where(nans > 0, m, (n - 1) // 2)
    return wrap(np.take_along_axis(order, k.astype(np.int64), axis=d), dt.int64)


def _median(input, dim, keepdim, ignore_nan, name):
    if dim is None:
        flat = S.reshape(input, (-1,))
        if flat.shape[0] == 0:
            if input._dtype.category < 2:
                raise RuntimeError(f"{name}() input tensor cannot be empty")
            return wrap(np.asarray(np.nan, input._dtype.np), input._dtype)
        k = int(_median_pos(flat, 0, ignore_nan)._data[0])
        return rename(S.select(flat, 0, k), "NanmedianBackward0" if ignore_nan else "MedianBackward0")
    if input.ndim == 0:
        return _named(name)(input, wrap_like(np.zeros((), np.int64), dt.int64, input))
    d = norm_dim(name, dim, input.ndim)
    if input._data.shape[d] == 0:
        raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size (input shape "
                         f"{list(input.shape)})")
    v, i = _select_along(input, _median_pos(input, d, ignore_nan), d, keepdim)
    return _named(name)(rename(v, "NanmedianBackward1" if ignore_nan else "MedianBackward1"), i)


def median(input, dim=None, keepdim=False, *, out=None):
    from .ops_math import write_out
    return write_out(_median(input, dim, keepdim, False, "median"), out)


def nanmedian(input, dim=None, keepdim=False, *, out=None):
    from .ops_math import write_out
    return write_out(_median(input, dim, keepdim, True, "nanmedian"), out)


def mode(input, dim=-1, keepdim=False):
    d = norm_dim("mode", dim, max(input.ndim, 1))
    idx = apply(P["mode_index"], input, dim=d, keepdim=True)
    v, i = _select_along(input, idx, d, keepdim)
    return _named("mode")(rename(v, "ModeBackward0"), i)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    u, inv, cnt = apply(P["unique"], input, sorted=sorted, dim=dim)
    if not return_inverse and not return_counts:
        return u
    r = (u,)
    if return_inverse:
        r += (inv,)
    if return_counts:
        r += (cnt,)
    return r


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    a = input._data.reshape(-1) if dim is None else input._data
    if dim is not None:
        raise NotImplementedError("unique_consecutive: dim= is not supported yet")
    if a.size == 0:
        keep = np.zeros(0, bool)
    else:
        keep = np.concatenate([[True], a[1:] != a[:-1]])
    u = wrap(a[keep], input._dtype)
    r = (u,)
    if return_inverse:
        r += (wrap((np.cumsum(keep) - 1).reshape(input._data.shape).astype(np.int64), dt.int64),)
    if return_counts:
        starts = np.flatnonzero(keep)
        r += (wrap(np.diff(np.append(starts, a.size)).astype(np.int64), dt.int64),)
    return r[0] if len(r) == 1 else r


def bincount(input, weights=None, minlength=0):
    return apply(P["bincount"], input, weights, minlength=minlength)


def histc(input, bins=100, min=0, max=0):
    a = input._data
    lo, hi = (a.min(), a.max()) if min == 0 and max == 0 else (min, max)
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    h, _ = np.histogram(a, bins=bins, range=(lo, hi))
    return wrap(h.astype(input._dtype.np), input._dtype)


def searchsorted(sorted_sequence, values, *, out_int32=False, right=False, side=None, sorter=None):
    # computed on the host from the values (under compile() a value read); the result goes to
    # the sequence's device
    side = side or ("right" if right else "left")
    s = _host_values(sorted_sequence)
    v = _host_values(values) if isinstance(values, Tensor) else np.asarray(values)
    if s.ndim == 1:
        r = np.searchsorted(s, v, side=side)
    else:
        r = np.stack([np.searchsorted(s[i], v[i], side=side) for i in range(s.shape[0])])
    d = dt.int32 if out_int32 else dt.int64
    return wrap_like(np.asarray(r).astype(d.np), d, sorted_sequence)


def bucketize(input, boundaries, *, out_int32=False, right=False):
    return searchsorted(boundaries, input, out_int32=out_int32, side="left" if not right else "right")


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    qa = _host_values(q) if isinstance(q, Tensor) else np.asarray(q)
    r = np.quantile(_host_values(input), qa, axis=dim, keepdims=keepdim, method=interpolation)
    return wrap_like(np.asarray(r).astype(input._dtype.np), input._dtype, input)


def _host_values(t):
    """t's values as a NumPy array on the host (under compile() a value read)."""
    from ._device_ops import host
    return host(values(t))
