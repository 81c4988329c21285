"""Ordering ops: sort, argsort, topk, kthvalue, median, mode, unique, bincount, ... Index
computations are extern primitives; values come from `gather`, so gradients flow through it."""

import numbers

import numpy as np

from compiler.ir.registry import REGISTRY, norm_dim
from compiler.ops.stl_order import all_equal_nth
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
    if input._dtype.category == 4 and out is None:     # quantized (framework/ao/_qtensor.py)
        from .ao._qtensor import on_int_order
        return on_int_order(input, lambda t: sort(t, dim, descending, stable))
    _no_complex(input, "Sort")
    if input.ndim == 0:
        return _named("sort")(input, wrap_like(np.zeros((), np.int64), dt.int64, input))
    d = norm_dim("sort", dim, input.ndim)
    idx = apply(P["argsort"], input, dim=d, descending=descending, stable=stable)
    v = rename(apply(P["gather"], input, idx, dim=d), "SortBackward0")
    return _named("sort")(v, idx)


def argsort(input, dim=-1, descending=False, stable=False):
    if input._dtype.category == 4:
        return sort(input, dim, descending, stable)[1]
    _no_complex(input, "Sort")
    if input.ndim == 0:
        return wrap_like(np.zeros((), np.int64), dt.int64, input)
    return apply(P["argsort"], input, dim=norm_dim("argsort", dim, input.ndim), descending=descending,
                 stable=stable)


def msort(input):
    return sort(input, 0)[0]


def topk(input, k, dim=-1, largest=True, sorted=True, *, out=None):
    if input._dtype.category == 4 and out is None:     # quantized (framework/ao/_qtensor.py)
        from .ao._qtensor import on_int_order
        return on_int_order(input, lambda t: topk(t, k, dim, largest, sorted),
                            "Top-K is only supported on per-tensor quantization")
    _no_complex(input, "topk")
    if input._dtype is dt.bool_:
        raise RuntimeError("topk does not support bool dtypes on CPU")
    dt.refuse_barebones("topk_cpu", input._dtype)
    d = norm_dim("topk", dim, max(input.ndim, 1))
    n = input.shape[d] if input.ndim else 1
    if k < 0 or k > n:
        raise RuntimeError(f"topk(): selected index k out of range (k={k}, size {n} at dim {d})")
    if input.ndim == 0:
        return _named("topk")(input, wrap_like(np.zeros((), np.int64), dt.int64, input))
    idx = apply(P["topk_index"], input, k, dim=d, largest=largest, sorted=sorted)
    v = rename(apply(P["gather"], input, idx, dim=d), "TopkBackward0")
    return _named("topk")(v, idx)


def kthvalue(input, k, dim=-1, keepdim=False, *, out=None):
    if input._dtype is dt.bool_ or input._dtype.is_complex or input._dtype.barebones:
        raise NotImplementedError(f"\"kthvalue_cpu\" not implemented for "
                                  f"'{dt.tname(input._dtype)}'")
    d = norm_dim("kthvalue", dim, max(input.ndim, 1))
    n = input.shape[d] if input.ndim else 1
    if n == 0:
        raise IndexError(f"kthvalue(): Expected reduction dim {d} to have non-zero size (input "
                         f"shape {list(input.shape)})")
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d} "
                           f"(k={k}, size {n})")
    if input.ndim == 0:
        return _named("kthvalue")(rename(apply(P["copy"], input), "KthvalueBackward0"),
                                  wrap_like(np.zeros((), np.int64), dt.int64, input))
    idx = apply(P["kthvalue_index"], input, k, dim=d)
    v, i = _select_along(input, idx, d, keepdim)
    return _named("kthvalue")(rename(v, "KthvalueBackward0"), i)


def _median_pos_ops(input, d, ignore_nan):
    """_median_pos from recorded ops only (no value read): for vmap and compile() traces."""
    from . import ops_math as M
    n = input._data.shape[d]
    order = apply(P["argsort"], input, dim=d, descending=False, stable=True)
    if input._dtype.is_floating_point:
        nans = M.sum(M.isnan(input), d, keepdim=True)
    else:
        nans = M.mul(M.sum(M.isnan(input), d, keepdim=True), 0)
    m = M.sub(n, nans)
    if ignore_nan:
        k = M.where(M.gt(m, 0), M.floor_divide(M.sub(m, 1), 2), all_equal_nth(n, 0))
    else:
        k = M.where(M.gt(nans, 0), m, (n - 1) // 2)
    from .ops_index import gather
    return gather(order, d, k)


def _median_pos(input, d, ignore_nan):
    """Index (keepdim layout along d) of the lower median of each row: NaN propagates (first
    NaN in the row) unless ignore_nan, where the median is taken over the non-NaN values."""
    from .func.vmap import batched_level
    from ._dispatch import STATE
    # under vmap or compile(): recorded ops, so the trace needs no value (no graph break)
    if STATE.tracer is not None or batched_level(input) is not None:
        return _median_pos_ops(input, d, ignore_nan)
    n = input._data.shape[d]
    # eager: the position is computed in NumPy from the values
    order_t = apply(P["argsort"], input, dim=d, descending=False, stable=True)
    order = values(order_t)
    if input._dtype.is_floating_point:
        nans = np.isnan(values(input)).sum(axis=d, keepdims=True)     # NaNs sort last
    else:
        nans = np.zeros([1 if k == d else s for k, s in enumerate(input._data.shape)], np.int64)
    m = n - nans
    if ignore_nan:
        # an all-NaN row answers NaN, at the index std::nth_element leaves first among n
        # equivalent keys (torch's cpu kernel)
        k = np.where(m > 0, (m - 1) // 2, all_equal_nth(n, 0))
    else:
        k = np.where(nans > 0, m, (n - 1) // 2)
    return wrap(np.take_along_axis(order, k.astype(np.int64), axis=d), dt.int64)


def _median(input, dim, keepdim, ignore_nan, name):
    if input._dtype is dt.bool_ or input._dtype.is_complex or input._dtype.barebones:
        # no kernel in PyTorch
        raise NotImplementedError(f"\"{'median_cpu' if dim is None else 'median_out'}\" not "
                                  f"implemented for '{dt.tname(input._dtype)}' ({name} of a "
                                  f"tensor of shape {list(input.shape)})")
    if dim is None:
        flat = S.reshape(input, (-1,))
        if flat.shape[0] == 0:
            if input._dtype.category < 2:
                raise RuntimeError(f"{name}() input tensor cannot be empty")
            return wrap(np.asarray(np.nan, input._dtype.np), input._dtype)
        from .func.vmap import batched_level
        if batched_level(flat) is not None:        # under vmap: no value read
            v, _ = _select_along(flat, _median_pos(flat, 0, ignore_nan), 0, False)
            return rename(v, "NanmedianBackward0" if ignore_nan else "MedianBackward0")
        pos = _median_pos(flat, 0, ignore_nan)      # (kept alive: a graph break computes it)
        k = int(values(pos)[0])
        r = S.select(flat, 0, k)
        a = values(flat)
        if input.requires_grad and input._dtype.is_floating_point:
            # torch: the whole-tensor median's gradient is split evenly between the elements
            # equal to it (all the NaNs for a NaN median): amax (mean for NaN) of those copies
            # is the value itself, with that gradient
            from .ops_index import index_select
            from .ops_math import amax, mean
            tie = np.isnan(a) if np.isnan(a[k]) else a == a[k]
            if tie.sum() > 1:
                sub = index_select(flat, 0, wrap_like(np.flatnonzero(tie), dt.int64, flat))
                r = mean(sub) if np.isnan(a[k]) else amax(sub)
        return rename(r, "NanmedianBackward0" if ignore_nan else "MedianBackward0")
    if input.ndim == 0:
        norm_dim(name, dim, 0)      # a 0-d input still takes only dim 0 / -1
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
    if input._dtype.is_complex or input._dtype.barebones:
        raise NotImplementedError(f"\"mode_cpu\" not implemented for '{dt.tname(input._dtype)}'")
    d = norm_dim("mode", dim, max(input.ndim, 1))
    idx = apply(P["mode_index"], input, dim=d, keepdim=True)
    v, i = _select_along(input, idx, d, keepdim)
    return _named("mode")(rename(v, "ModeBackward0"), i)


def _unique_dim(input, dim):
    """dim normalised for unique(dim=): a 0-d input has no dim, and the other dims must be
    non-empty (torch's checks)."""
    if input.ndim == 0:
        raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
    d = norm_dim("unique", dim, input.ndim)
    if any(s == 0 for i, s in enumerate(input.shape) if i != d):
        raise RuntimeError(f"There are 0 sized dimensions, and they aren't selected, so unique "
                           f"cannot be applied (input shape {list(input.shape)}, dim {dim})")
    return d


def _no_complex_unique(input, dim):
    if input._dtype.is_complex:
        raise NotImplementedError(f"\"{'unique' if dim is None else 'unique_dim'}\" not "
                                  f"implemented for '{dt.tname(input._dtype)}'")


def _no_unique_derivative(input, u, aten):
    """PyTorch gives unique's values a grad_fn (Unique2Backward0) whose backward raises."""
    if not input.requires_grad:
        return u
    from .nn._torch_internal import _no_derivative
    node = {"_unique2": "Unique2Backward0", "unique_dim": "UniqueDimBackward0",
            "unique_consecutive": "UniqueConsecutiveBackward0"}[aten]
    return _no_derivative(aten, (input,), (u,), node, (
        NotImplementedError, f"the derivative for '{aten}' is not implemented."))[0]


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    _no_complex_unique(input, dim)
    if dim is not None:
        dim = _unique_dim(input, dim)
    u, inv, cnt = apply(P["unique"], input, sorted=sorted, dim=dim)
    u = _no_unique_derivative(input, u, "_unique2" if dim is None else "unique_dim")
    if not return_inverse and not return_counts:
        return u
    r = (u,)
    if return_inverse:
        r += (inv,)
    if return_counts:
        r += (cnt,)
    return r


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    _no_complex_unique(input, None)
    d = 0 if dim is None else _unique_dim(input, dim)
    a = _host_values(input).reshape(-1) if dim is None else np.moveaxis(_host_values(input), d, 0)
    n = a.shape[0]
    if n == 0:
        keep = np.zeros(0, bool)
    else:       # a slice along dim starts a new group where any element differs from the last
        ne = (a[1:] != a[:-1]).reshape(n - 1, -1).any(axis=1) if n > 1 else np.zeros(0, bool)
        keep = np.concatenate([[True], ne])
    u = wrap_like(a[keep] if dim is None else np.moveaxis(a[keep], 0, d), input._dtype, input)
    r = (_no_unique_derivative(input, u, "unique_consecutive"),)
    if return_inverse:
        inv = (np.cumsum(keep) - 1).astype(np.int64)
        r += (wrap_like(inv.reshape(input._data.shape) if dim is None else inv, dt.int64, input),)
    if return_counts:
        starts = np.flatnonzero(keep)
        r += (wrap_like(np.diff(np.append(starts, n)).astype(np.int64), dt.int64, input),)
    return r[0] if len(r) == 1 else r


def bincount(input, weights=None, minlength=0):
    return apply(P["bincount"], input, weights, minlength=minlength)


def histc(input, bins=100, min=0, max=0):
    dt.refuse_barebones("aminmax_cpu", input._dtype)
    if not input._dtype.is_floating_point:
        raise NotImplementedError(f"\"histogram_cpu\" not implemented for "
                                  f"'{dt.tname(input._dtype)}'")
    if bins <= 0:
        raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {bins} for dimension 0")
    if min > max:
        raise RuntimeError("torch.histc: max must be larger than min")
    a = _host_values(input)
    lo, hi = float(min), float(max)
    if lo == hi and a.size:           # torch: an empty range (min == max) is the data's range
        lo, hi = float(a.min()), float(a.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise RuntimeError(f"torch.histc: range of [{lo:g}, {hi:g}] is not finite")
    h, _ = np.histogram(a[~np.isnan(a)], bins=bins, range=(lo, hi))
    return wrap_like(h.astype(input._dtype.np), input._dtype, input)


def searchsorted(sorted_sequence, values, *, out_int32=False, right=False, side=None, sorter=None):
    # computed on the host from the values (under compile() a value read); the result goes to
    # the sequence's device
    if side is not None and side not in ("left", "right"):
        raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but got "
                           f"{side}")
    if side is not None and right and side == "left":
        raise RuntimeError("torch.searchsorted(): side and right can't be set to opposites, got "
                           "side of left while right was True")
    side = side or ("right" if right else "left")
    if isinstance(values, Tensor):      # (the two compare in their promoted dtype)
        dt.refuse_barebones("searchsorted_out_cpu",
                            dt.promote_types(sorted_sequence._dtype, values._dtype))
    s = _host_values(sorted_sequence)
    v = _host_values(values) if isinstance(values, Tensor) else np.asarray(values)
    if s.ndim != 1 and (v.ndim != s.ndim or v.shape[:-1] != s.shape[:-1]):
        raise RuntimeError(f"torch.searchsorted(): boundaries tensor should be 1 dimension or the "
                           f"first N-1 dimensions of boundaries tensor and input value tensor must "
                           f"match, but we got boundaries tensor {list(s.shape)} and input value "
                           f"tensor {list(v.shape)}")
    if sorter is not None:
        so = _host_values(sorter)
        if so.shape != s.shape:
            raise RuntimeError(f"torch.searchsorted(): boundary and sorter must have the same size, "
                               f"but got boundary tensor {list(s.shape)}and got sorter tensor "
                               f"{list(so.shape)}")
        if so.size and (so.min() < 0 or so.max() >= s.shape[-1]):
            raise RuntimeError("torch.searchsorted(): sorter index out of range")
        s = np.take_along_axis(s, so.astype(np.int64), axis=-1)
    if s.ndim == 1:
        r = np.searchsorted(s, v, side=side)
    else:
        s2, v2 = s.reshape(-1, s.shape[-1]), v.reshape(-1, v.shape[-1])
        r = np.stack([np.searchsorted(s2[i], v2[i], side=side) for i in range(s2.shape[0])])
        r = r.reshape(v.shape)
    d = dt.int32 if out_int32 else dt.int64
    return wrap_like(np.asarray(r).astype(d.np), d, sorted_sequence)


def bucketize(input, boundaries, *, out_int32=False, right=False):
    if boundaries.ndim != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim({boundaries.ndim})")
    return searchsorted(boundaries, input, out_int32=out_int32, side="left" if not right else "right")


def _host_values(t):
    """t's values as a NumPy array on the host (under compile() a value read)."""
    from ._device_ops import host
    return host(values(t))


# ---- running extrema ---------------------------------------------------------------------------

def _cum_extreme(input, dim, largest, name):
    if input.ndim == 0:
        norm_dim(name, dim, 1)
        return _named(name)(rename(input * 1 if input._dtype is not dt.bool_ else
                                   apply(P["copy"], input), "CummaxBackward0"),
                            wrap_like(np.zeros((), np.int64), dt.int64, input))
    d = norm_dim(name, dim, input.ndim)
    dt.refuse_barebones(name + "_cpu", input._dtype)
    idx = apply(P["cum_extreme_index"], input, dim=d, largest=largest)
    v = rename(apply(P["gather"], input, idx, dim=d),
               "CummaxBackward0" if largest else "CumminBackward0")
    return _named(name)(v, idx)


def cummax(input, dim, *, out=None):
    """(values, indices) of the running maximum along dim: the gradient goes to the index."""
    from .ops_math import write_out
    return write_out(_cum_extreme(input, dim, True, "cummax"), out)


def cummin(input, dim, *, out=None):
    from .ops_math import write_out
    return write_out(_cum_extreme(input, dim, False, "cummin"), out)


# ---- quantiles ---------------------------------------------------------------------------------

_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(input, q, dim, keepdim, interpolation, ignore_nan, name):
    """Sorted values gathered at the rank q * (n - 1) (n: the count of non-NaN values for
    nanquantile) and interpolated: a composite, so it differentiates through gather."""
    from .ops_math import floor, ceil, round as _round, clamp, where, isnan, logical_not, cast
    from .ops_math import sum as _sum, any as _any
    from .creation import tensor as _tensor, full
    if not input._dtype.is_floating_point or input._dtype in (dt.float16, dt.bfloat16):
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype")
    if isinstance(q, Tensor):
        if q._dtype is not input._dtype:
            raise RuntimeError(f"{name}() q tensor must be same dtype as the input tensor")
        if q.ndim > 1:
            raise RuntimeError(f"{name}() q must be a scalar or 1D tensor")
        qv = _host_values(q)
        qt = q
    else:
        if isinstance(q, (list, tuple)):
            raise TypeError(f"{name}(): argument 'q' must be Tensor or float, not "
                            f"{type(q).__name__}")
        qv = np.asarray(float(q))
        qt = _tensor(float(q), dtype=input._dtype, device=input.device)
    if input.numel() == 0:
        raise RuntimeError(f"{name}() input tensor must be non-empty")
    if np.any(~((qv >= 0) & (qv <= 1))):
        # PyTorch's shared check says quantile() for nanquantile too; a float q is named
        if qt is q:
            raise RuntimeError("quantile() q values must be in the range [0, 1]")
        raise RuntimeError(f"quantile() q must be in the range [0, 1] but got {float(q)}")
    if interpolation not in _INTERPOLATIONS:
        raise RuntimeError(f"{name}() interpolation must be one of linear, lower, higher, "
                           f"midpoint or nearest. Got {interpolation}")
    if dim is None:
        x, d = S.reshape(input, (-1,)), 0
    else:
        d = norm_dim(name, dim, max(input.ndim, 1))
        x = input if input.ndim else S.reshape(input, (1,))
    xs = S.movedim(sort(x, d)[0], d, -1)                       # (R..., n), NaN last
    n = xs.shape[-1]
    nan = isnan(xs)
    if ignore_nan:
        cnt = cast(_sum(logical_not(nan), -1, keepdim=True), input._dtype)
    else:
        cnt = full(tuple(xs.shape[:-1]) + (1,), float(n), dtype=input._dtype, device=input.device)
    qr = S.reshape(qt, tuple(qt.shape) + (1,) * xs.ndim)       # (Q?, 1..., 1)
    rank = qr * (cnt - 1)                                       # (Q?, R..., 1)
    if interpolation == "nearest":
        rank = _round(rank)
    lo = clamp(floor(rank), 0, n - 1)
    hi = clamp(ceil(rank), 0, n - 1)
    lead = tuple(rank.shape[:-1])
    xe = S.expand(xs, lead + (n,))

    def at(r):
        return S.squeeze(apply(P["gather"], xe, cast(r, dt.int64), dim=xe.ndim - 1), -1)
    vlo = at(lo)
    if interpolation in ("lower", "nearest"):
        v = vlo
    elif interpolation == "higher":
        v = at(hi)
    else:
        vhi = at(hi)
        w = S.squeeze(rank - lo, -1) if interpolation == "linear" else 0.5
        from .ops_math import lerp
        v = lerp(vlo, vhi, w)         # torch's lerp formula (its rounding and inf/NaN results)
    bad = (S.squeeze(cnt, -1) == 0) if ignore_nan else _any(nan, -1)
    v = where(bad, float("nan"), v)
    if keepdim:
        if dim is None:
            v = S.reshape(v, tuple(qt.shape) + (1,) * input.ndim)
        else:
            v = S.unsqueeze(v, d + qt.ndim) if input.ndim else v
    elif dim is not None and input.ndim == 0:
        v = S.reshape(v, tuple(qt.shape))
    return v


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear", out=None):
    from .ops_math import write_out
    return write_out(rename(_quantile(input, q, dim, keepdim, interpolation, False, "quantile"),
                            "QuantileBackward0"), out)


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear", out=None):
    from .ops_math import write_out
    return write_out(rename(_quantile(input, q, dim, keepdim, interpolation, True, "nanquantile"),
                            "NanquantileBackward0"), out)


# ---- covariance ---------------------------------------------------------------------------------

def cov(input, *, correction=1, fweights=None, aweights=None):
    """torch.cov: rows are variables, columns observations (a 1-D input is one variable)."""
    from .ops_math import sum as _sum, where
    if input.ndim > 2:
        raise RuntimeError(f"cov(): expected input to have two or fewer dimensions but got an "
                           f"input with {input.ndim} dimensions")
    x = input if input.ndim == 2 else S.reshape(input, (1, -1))
    nobs = x.shape[1]
    w = None
    if fweights is not None:
        if fweights.ndim > 1:
            raise RuntimeError(f"cov(): expected fweights to have one or fewer dimensions but got "
                               f"fweights with {fweights.ndim} dimensions")
        if fweights._dtype.category != 1:
            raise RuntimeError(f"cov(): expected fweights to have integral dtype but got fweights "
                               f"with {dt.tname(fweights._dtype)} dtype")
        if fweights.numel() != nobs:
            raise RuntimeError(f"cov(): expected fweights to have the same numel as there are "
                               f"observations in the input but got {fweights.numel()} != {nobs}")
        if fweights.numel() and bool(_host_values(fweights).min() < 0):
            raise RuntimeError("cov(): fweights cannot be negative")
        w = fweights
    if aweights is not None:
        if aweights.ndim > 1:
            raise RuntimeError(f"cov(): expected aweights to have one or fewer dimensions but got "
                               f"aweights with {aweights.ndim} dimensions")
        if not aweights._dtype.is_floating_point:
            raise RuntimeError(f"cov(): expected aweights to have floating point dtype but got "
                               f"aweights with {dt.tname(aweights._dtype)} dtype")
        if aweights.numel() != nobs:
            raise RuntimeError(f"cov(): expected aweights to have the same numel as there are "
                               f"observations in the input but got {aweights.numel()} != {nobs}")
        if aweights.numel() and bool(_host_values(aweights).min() < 0):
            raise RuntimeError("cov(): aweights cannot be negative")
        w = aweights if w is None else w * aweights
    if w is None:
        wsum = float(nobs)
        avg = _sum(x, 1) / wsum
    else:
        wsum = _sum(w)
        avg = _sum(x * w, 1) / wsum
    if w is not None and aweights is not None and correction != 0:
        nf = wsum - correction * _sum(w * aweights) / wsum
    else:
        nf = wsum - correction
    if isinstance(nf, Tensor):
        nf = where(nf <= 0, 0.0, nf)
    elif nf <= 0:
        import warnings
        from ._misc_api import user_stacklevel
        warnings.warn("cov(): degrees of freedom is <= 0. Correction should be strictly less than "
                      "the number of observations.", stacklevel=user_stacklevel())
        nf = 0.0
    xc = x - S.unsqueeze(avg, 1)
    c = xc @ S.transpose(xc if w is None else xc * w, 0, 1)
    r = c / nf if not isinstance(nf, float) or nf != 0 else c / _zero_like(c)
    return S.squeeze(r)


def _zero_like(c):
    from .creation import zeros
    return zeros((), dtype=c._dtype, device=c.device)


def corrcoef(input):
    from .ops_math import sqrt, clamp, div
    c = cov(input)
    if c.ndim == 0:
        return div(c, c)
    sd = sqrt(S.diagonal(c))
    c = c / S.unsqueeze(sd, 1)
    c = c / S.unsqueeze(sd, 0)
    return clamp(c, -1, 1) if not c._dtype.is_complex else c


# ---- histograms ----------------------------------------------------------------------------------

def _hist_types():
    from .return_types import named
    return named("histogram", ("hist", "bin_edges")), named("histogramdd", ("hist", "bin_edges"))


def _edges_for(a, d, nb, rng, dtype, name):
    if nb <= 0:
        raise RuntimeError(f"{name}: bins must be > 0, but got {nb} for dimension {d}")
    if rng is not None:
        lo, hi = float(rng[0]), float(rng[1])
    elif a.shape[0]:
        lo, hi = float(a[:, d].min()), float(a[:, d].max())
    else:
        lo, hi = 0.0, 0.0
    if lo > hi:
        raise RuntimeError(f"torch.histogramdd: min should not exceed max, but got min "
                           f"{lo:g} max {hi:g} for dimension {d}")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise RuntimeError(f"torch.histogramdd: range of [{lo}, {hi}] is not finite")
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, nb + 1).astype(dtype.np)


def _histdd(input, bins, range, weight, density, name):
    """Counts on the host (NumPy's histogramdd: the last bin holds its right edge)."""
    if not input._dtype.is_floating_point or input._dtype in (dt.float16, dt.bfloat16):
        raise NotImplementedError(f"\"histogramdd\" not implemented for '{dt.tname(input._dtype)}'")
    D = input.shape[-1] if input.ndim else 1
    a = _host_values(input).reshape(-1, D)
    if isinstance(bins, int):
        bins = [bins] * D
    if len(bins) != D:
        raise RuntimeError(f"{name}: expected {D} sequences of bin edges for each dimension, but "
                           f"got {len(bins)}")
    if range is not None and len(range) != 2 * D:
        raise RuntimeError(f"{name}: for a {D}-dimensional histogram range should have "
                           f"{2 * D} elements, but got {len(range)}")
    edges = []
    for d, bd in enumerate(bins):
        if isinstance(bd, Tensor):
            if bd._dtype is not input._dtype:
                raise RuntimeError(f"{name}: input tensor and bins tensors should have the same "
                                   f"dtype, but got input {dt.tname(input._dtype)} and bins "
                                   f"{dt.tname(bd._dtype)}")
            e = _host_values(bd)
            if e.ndim != 1 or e.shape[0] < 1:
                raise RuntimeError(f"{name}: bins tensor should have one dimension and at least 1 "
                                   f"element, but got {e.ndim} dimensions")
            if np.any(np.diff(e) < 0):
                raise RuntimeError(f"{name}: bin edges must be non-decreasing")
        else:
            e = _edges_for(a, d, int(bd), None if range is None else range[2 * d:2 * d + 2],
                           input._dtype, name)
        edges.append(e)
    w = None
    if weight is not None:
        if weight._dtype is not input._dtype or tuple(weight.shape) != tuple(input.shape[:-1]):
            raise RuntimeError(f"{name}: if weight tensor is provided it should have the same "
                               f"shape as the input tensor excluding its innermost dimension "
                               f"and the same dtype (got weight {list(weight.shape)}, "
                               f"{dt.tname(weight._dtype)})")
        w = _host_values(weight).reshape(-1).astype(np.float64)
    h, _ = np.histogramdd(a.astype(np.float64), bins=[e.astype(np.float64) for e in edges],
                          weights=w, density=bool(density))
    ref = input
    return (wrap_like(h.astype(input._dtype.np), input._dtype, ref),
            [wrap_like(np.ascontiguousarray(e), input._dtype, ref) for e in edges])


def histogram(input, bins=100, *, range=None, weight=None, density=False, out=None):
    """(hist, bin_edges) of a tensor's values (flattened): bins an int or the edges."""
    from .ops_math import write_out
    H, _ = _hist_types()
    x = S.reshape(input, (-1, 1))
    w = None if weight is None else S.reshape(weight, (-1,))
    if weight is not None and tuple(weight.shape) != tuple(input.shape):
        raise RuntimeError(f"torch.histogram: if weight tensor is provided it should have the same "
                           f"shape as the input tensor (got {list(weight.shape)} and "
                           f"{list(input.shape)})")
    if isinstance(bins, int) and bins <= 0:
        raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {bins} for dimension 0")
    h, e = _histdd(x, [bins], None if range is None else tuple(range), w, density,
                   "torch.histogram")
    return write_out(H(h, e[0]), out)


def histogramdd(input, bins=10, *, range=None, weight=None, density=False):
    _, HD = _hist_types()
    h, e = _histdd(input, bins, range, weight, density, "torch.histogramdd")
    return HD(h, tuple(e))


# ---- membership, combinations, indices -------------------------------------------------------

def isin(elements, test_elements, *, assume_unique=False, invert=False):
    """Computed on the host (under compile() a value read); the result goes to elements' device."""
    if not (isinstance(elements, Tensor) and isinstance(test_elements, (Tensor, numbers.Number))
            or isinstance(elements, numbers.Number) and isinstance(test_elements, Tensor)):
        # PyTorch's overloads: (Tensor, Tensor), (Number, Tensor), (Tensor, Number); no lists
        got = ", ".join("Tensor" if isinstance(v, Tensor) else type(v).__name__
                        for v in (elements, test_elements))
        tail = ", *, bool assume_unique = False, bool invert = False, Tensor out = None)\n"
        raise TypeError(f"isin() received an invalid combination of arguments - got ({got}), "
                        f"but expected one of:\n * (Tensor elements, Tensor test_elements{tail}"
                        f" * (Number element, Tensor test_elements{tail}"
                        f" * (Tensor elements, Number test_element{tail}")
    ref = elements if isinstance(elements, Tensor) else test_elements
    if isinstance(test_elements, Tensor):     # (a Python test element is compared with eq)
        dt.refuse_barebones("isin_default_cpu", test_elements._dtype if ref is test_elements
                            else dt.promote_types(elements._dtype, test_elements._dtype))
    a = _host_values(elements) if isinstance(elements, Tensor) else np.asarray(elements)
    b = _host_values(test_elements) if isinstance(test_elements, Tensor) else \
        np.asarray(test_elements)
    r = np.isin(a, b, assume_unique=assume_unique, invert=invert)
    return wrap_like(np.asarray(r, bool), dt.bool_, ref)


def combinations(input, r=2, with_replacement=False):
    """Rows of index tuples (itertools' order) taken with index_select: differentiable."""
    import itertools
    if input.ndim != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    if r == 0:
        return wrap_like(np.zeros((0,), input._dtype.np), input._dtype, input)
    n = input.shape[0]
    f = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    idx = np.asarray(list(f(range(n), r)), np.int64).reshape(-1, r)
    from .ops_index import index_select
    sel = index_select(input, 0, wrap_like(idx.reshape(-1), dt.int64, input))
    return S.reshape(sel, (idx.shape[0], r))


def unravel_index(indices, shape):
    from .creation import tensor as _tensor
    if not isinstance(indices, Tensor):
        indices = _tensor(indices)
    if indices._dtype.category != 1:
        raise TypeError(f"expected 'indices' to be integer dtype, but got {indices._dtype}")
    shape = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"'shape' cannot have negative values, but got {shape}")
    total = int(np.prod(shape, dtype=np.int64))
    v = _host_values(indices)
    if v.size and (v.min() < -total or v.max() >= total):
        raise RuntimeError(f"index {int(v.max()) if v.max() >= total else int(v.min())} is out of "
                           f"bounds for shape {total}")
    x = indices.long()
    x = (x + total) % total if total else x
    res = []
    for s in reversed(shape):
        res.append(x % s if s else x * 0)
        x = x // s if s else x
    return tuple(reversed(res))


# ---- integration and differences --------------------------------------------------------------

def _trap_parts(y, x, dx, dim, name):
    d = norm_dim(name, dim, y.ndim)
    n = y.shape[d]
    if x is not None:
        if x.ndim == 1:
            if x.shape[0] != n:
                raise RuntimeError(f"{name}: There must be one `x` value for each sample point")
            dxs = S.reshape(x[1:] - x[:-1], tuple(n - 1 if k == d else 1 for k in range(y.ndim)))
        else:
            xb = S.narrow(x, norm_dim(name, dim, x.ndim), 1, max(n - 1, 0))
            xa = S.narrow(x, norm_dim(name, dim, x.ndim), 0, max(n - 1, 0))
            dxs = xb - xa
    else:
        dxs = 1 if dx is None else dx
    if n == 0:
        return None, d, dxs
    s = S.narrow(y, d, 1, n - 1) + S.narrow(y, d, 0, n - 1)
    return s, d, dxs


def trapezoid(y, x=None, *, dx=None, dim=-1):
    from .ops_math import sum as _sum
    from .creation import zeros
    if x is not None and not isinstance(x, Tensor):
        dx, x = x, None
    s, d, dxs = _trap_parts(y, x, dx, dim, "trapezoid")
    if s is None:
        shape = tuple(k for i, k in enumerate(y.shape) if i != d)
        od = y._dtype if y._dtype.is_floating_point else dt.get_default_dtype()
        return zeros(shape, dtype=od, device=y.device)
    if isinstance(dxs, Tensor):
        return _sum(s * dxs, d) / 2.0
    return _sum(s, d) * (dxs / 2.0)


def trapz(y, x=None, *, dx=None, dim=-1):
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    from .ops_math import cumsum
    if x is not None and not isinstance(x, Tensor):
        dx, x = x, None
    s, d, dxs = _trap_parts(y, x, dx, dim, "cumulative_trapezoid")
    if s is None:
        return y * 1.0
    return cumsum(s * dxs / 2.0 if isinstance(dxs, Tensor) else s * (dxs / 2.0), d)


def gradient(input, *, spacing=1, dim=None, edge_order=1):
    """numpy.gradient's second-order central differences inside, first- or second-order one-sided
    differences at the edges; spacing a number, one number per dim or one coordinate tensor per
    dim. A composite of slices: differentiable."""
    if edge_order not in (1, 2):
        raise RuntimeError("torch.gradient only supports edge_order=1 and edge_order=2.")
    if dim is None:
        dims = list(range(input.ndim))
    elif isinstance(dim, int):
        dims = [norm_dim("gradient", dim, input.ndim)]
    else:
        dims = [norm_dim("gradient", k, input.ndim) for k in dim]
    if isinstance(spacing, (int, float)) or (isinstance(spacing, Tensor) and spacing.ndim == 0):
        sp = [spacing] * len(dims)
    else:
        sp = list(spacing)
        if len(sp) == 1 and len(dims) > 1 and not isinstance(sp[0], Tensor):
            sp = sp * len(dims)
        if len(sp) != len(dims):
            raise RuntimeError(f"torch.gradient expected spacing to be unspecified, a scalar or "
                               f"it's spacing and dim arguments to have the same length, but got "
                               f"a spacing argument of length {len(sp)} and a dim argument of "
                               f"length {len(dims)}.")
    x = input if input._dtype.is_floating_point or input._dtype.is_complex else \
        input.to(dt.get_default_dtype())
    out = []
    for d, h in zip(dims, sp):
        n = x.shape[d]
        if n < edge_order + 1:
            raise RuntimeError("torch.gradient expected each dimension size to be at least "
                               "edge_order+1")
        f = lambda a, L: S.narrow(x, d, a, L)                        # noqa: E731
        if isinstance(h, Tensor) and h.ndim == 1:
            if h.shape[0] != n:
                raise RuntimeError(f"torch.gradient expected each tensor to be on the same "
                                   f"device and to have as many elements as the input's dimension "
                                   f"{d} ({h.shape[0]} != {n})")
            shp = tuple(-1 if k == d else 1 for k in range(x.ndim))
            c = S.reshape(h.to(x._dtype), shp)
            dc = lambda a, L: S.narrow(c, d, a + 1, L) - S.narrow(c, d, a, L)   # noqa: E731
            dx1, dx2 = dc(0, n - 2), dc(1, n - 2)
            mid = (f(0, n - 2) * (-dx2 / (dx1 * (dx1 + dx2))) +
                   f(1, n - 2) * ((dx2 - dx1) / (dx1 * dx2)) + f(2, n - 2) * (dx1 / (dx2 * (dx1 + dx2))))
            if edge_order == 1:
                first = (f(1, 1) - f(0, 1)) / dc(0, 1)
                last = (f(n - 1, 1) - f(n - 2, 1)) / dc(n - 2, 1)
            else:
                a1, a2 = dc(0, 1), dc(1, 1)
                first = (f(0, 1) * (-(2 * a1 + a2) / (a1 * (a1 + a2))) +
                         f(1, 1) * ((a1 + a2) / (a1 * a2)) + f(2, 1) * (-a1 / (a2 * (a1 + a2))))
                b1, b2 = dc(n - 3, 1), dc(n - 2, 1)
                last = (f(n - 3, 1) * (b2 / (b1 * (b1 + b2))) +
                        f(n - 2, 1) * (-(b2 + b1) / (b1 * b2)) +
                        f(n - 1, 1) * ((2 * b2 + b1) / (b2 * (b1 + b2))))
        else:
            hv = float(h) if not isinstance(h, Tensor) else float(h.item())
            mid = (f(2, n - 2) - f(0, n - 2)) / (2 * hv)
            if edge_order == 1:
                first = (f(1, 1) - f(0, 1)) / hv
                last = (f(n - 1, 1) - f(n - 2, 1)) / hv
            else:
                first = (f(0, 1) * -1.5 + f(1, 1) * 2.0 - f(2, 1) * 0.5) / hv
                last = (f(n - 3, 1) * 0.5 - f(n - 2, 1) * 2.0 + f(n - 1, 1) * 1.5) / hv
        out.append(S.cat([first, mid, last], d) if n > 2 else S.cat([first, last], d))
    return tuple(out)


def renorm(input, p, dim, maxnorm, *, out=None):
    """Each slice along dim whose p-norm exceeds maxnorm is scaled to norm maxnorm (PyTorch's
    factor maxnorm / (norm + 1e-7)); differentiable through the norm as PyTorch's backward."""
    from .ops_math import write_out, norm, where
    if p <= 0:
        raise RuntimeError("renorm: non-positive-norm not supported")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    if not (input._dtype.is_floating_point or input._dtype.is_complex):
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as "
                           f"input. Got {dt.tname(input._dtype)}")
    d = norm_dim("renorm", dim, max(input.ndim, 1))
    red = tuple(k for k in range(input.ndim) if k != d)
    nr = norm(input, p, red, keepdim=True) if red else input.abs()
    factor = where(nr > maxnorm, maxnorm / (nr + 1e-7), 1.0)
    return write_out(rename(input * factor, "RenormBackward0"), out)


def vander(x, N=None, increasing=False):
    """Columns x^0 .. x^(N-1) (decreasing unless increasing) by a cumulative product, as
    PyTorch: differentiable; integer and bool inputs give int64."""
    from .ops_math import cumprod
    from .creation import ones
    if x.ndim != 1:
        raise RuntimeError("x must be a one-dimensional tensor.")
    if N is None:
        N = x.shape[0]
    if N < 0:
        raise RuntimeError("N must be non-negative.")
    xd = x if x._dtype.category >= 2 else x.to(dt.int64)
    n = x.shape[0]
    if N == 0:
        return wrap_like(np.zeros((n, 0), xd._dtype.np), xd._dtype, x)
    one = ones((n, 1), dtype=xd._dtype, device=x.device)
    if N == 1:
        return one
    r = cumprod(S.cat([one, S.expand(S.unsqueeze(xd, 1), (n, N - 1))], 1), 1)
    # (torch writes the columns into a new tensor in place when increasing)
    return rename(r, "CopySlices") if increasing else S.flip(r, (1,))
