"""Reduction and scan primitives (sum, prod, amax, amin, argmax, argmin, all, any, cumsum,
cumprod). `dims` is a normalised tuple of axes; the front end normalises user dims."""
import numpy as np

from runtime import dtypes as dt
from ..ir.registry import AVal, Prim, register, norm_dims, norm_dim
from .vjp_util import unreduce
from .pointwise import holomorphic


def _red_shape(op, x, dims, keepdim):
    dims = norm_dims(op, dims, len(x.shape))
    if keepdim:
        return tuple(1 if i in dims else s for i, s in enumerate(x.shape))
    return tuple(s for i, s in enumerate(x.shape) if i not in dims)


# PyTorch's kernels of the accumulating reductions and scans (they refuse to accumulate in a
# barebones unsigned dtype; integer inputs are accumulated in int64 by default)
_ACC_KERNEL = {"sum": "sum_cpu", "prod": "prod_out_cpu", "cumsum": "cumsum_out_cpu",
               "cumprod": "cumprod_out_cpu"}


def _acc_dtype(name, x, dtype):
    if dtype is not None:
        dt.refuse_barebones(_ACC_KERNEL[name], dtype)
        return dtype
    return dt.int64 if x.dtype.category < 2 else x.dtype


def _acc_meta(name):
    def meta(x, dims=None, keepdim=False, dtype=None):
        return AVal(_red_shape(name, x, dims, keepdim), _acc_dtype(name, x, dtype))
    return meta


_HALF = (dt.float16.np, dt.bfloat16.np)
_HALF_DT = frozenset((dt.float16, dt.bfloat16))     # (a set of DTypes: no NumPy dtype compares)


def axis0_first(dims, ndim):
    """Does a sum over `dims` reduce axis 0 first, then the rest (np.add.reduce(x, axis=0,
    keepdims=True), then over dims)? For dims holding axis 0 and another axis with a kept axis
    between them -- BatchNorm's (0, 2, 3) -- NumPy's multi-axis reduction walks short strided
    rows; adding whole rows along axis 0 first is ~3x faster. The NumPy lowering and the
    generated code both use this order, so eager and compiled sums stay identical."""
    if not dims or dims[0] != 0 or len(dims) < 2 or dims[-1] < 2:    # (no axis in between)
        return False
    return any(i not in dims for i in range(1, dims[-1]))


def _np_red(f, first0=False):
    def impl(out, x, dims=None, keepdim=False, dtype=None):
        npd = out.dtype.np
        if out.dtype in _HALF_DT:     # accumulate half precision in float32, as PyTorch does
            x = x.astype(np.float32)
        elif x.dtype is not npd and x.dtype != npd:
            x = x.astype(npd)
        if first0 and dims is not None and axis0_first(tuple(dims), x.ndim):
            x = f(x, axis=0, keepdims=True)
        r = f(x, axis=dims, keepdims=keepdim)
        if type(r) is not np.ndarray:
            r = np.asarray(r)
        return r if r.dtype is npd or r.dtype == npd else r.astype(npd)
    return impl


def _vjp_sum(b, g, x, out=None, dims=None, keepdim=False, dtype=None):
    dims = norm_dims("sum", dims, len(x.shape))
    g = unreduce(b, g, x.shape, dims, keepdim)
    if g.dtype is not x.dtype and x.dtype.is_floating_point:
        g = b.cast(g, dtype=x.dtype)
    return (g,)


register(Prim("sum", "reduction", _acc_meta("sum"), _np_red(np.add.reduce, first0=True), _vjp_sum,
              triton="tl.sum", saves=()))


def _vjp_prod(b, g, x, out, dims=None, keepdim=False, dtype=None):
    # Product of the other elements, also right when x holds zeros: with one zero in a slice
    # only that element gets the product of the rest; with two or more, everything is 0.
    # The zero-valued terms below are written with the zeros themselves (zs, the slice's sum of
    # its zero elements, is 0 but depends on them) so that double backward sees that the
    # product of the others still depends on a zero: with one zero z, d/dz of the gradient at
    # a nonzero x_i is prod_nz / x_i; with two zeros, d/dz2 of the gradient at z1 is prod_nz.
    dims = norm_dims("prod", dims, len(x.shape))
    gk = unreduce(b, g, x.shape, dims, keepdim)
    iszero = b.eq(x, 0)
    nz = b.sum(b.cast(iszero, dtype=dt.int64), dims=dims, keepdim=True)
    safe = b.where(iszero, 1.0, x)
    prod_nz = b.expand(b.prod(safe, dims=dims, keepdim=True), shape=x.shape)
    zs = b.expand(b.sum(b.where(iszero, x, 0.0), dims=dims, keepdim=True), shape=x.shape)
    outk = unreduce(b, out, x.shape, dims, keepdim)
    one = b.where(iszero, prod_nz, b.div(b.mul(zs, prod_nz), safe))
    two = b.where(iszero, b.mul(b.sub(zs, x), prod_nz), 0.0)
    others = b.where(b.eq(nz, 0), b.div(outk, safe),
                     b.where(b.eq(nz, 1), one, b.where(b.eq(nz, 2), two, 0.0)))
    return (b.mul(gk, others),)


register(Prim("prod", "reduction", _acc_meta("prod"), _np_red(np.multiply.reduce),
              holomorphic(_vjp_prod), saves_output=True, grad_name="ProdBackward1"))


def _minmax_meta(name):
    def meta(x, dims=None, keepdim=False, nan_ties=False):
        if len(x.shape) and 0 in x.shape:
            if dims is None:
                raise RuntimeError(f"{name}(): Expected reduction dim to be specified for "
                                   f"input.numel() == 0. Specify the reduction dim with the 'dim' "
                                   f"argument (shape {list(x.shape)}).")
            # the front end raises the no-dim RuntimeError before passing all dims here
            for d in norm_dims(name, dims, len(x.shape)):
                if x.shape[d] == 0:
                    raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size "
                                     f"(shape {list(x.shape)}).")
        return AVal(_red_shape(name, x, dims, keepdim), x.dtype)
    return meta


def _vjp_minmax(b, g, x, out, dims=None, keepdim=False, nan_ties=False):
    # gradient shared evenly between tied extrema, as torch.amax/amin do. With nan_ties
    # (torch.max()/min() with no dim: PyTorch's evenly_distribute_backward) a NaN result also
    # ties with the input's NaNs; amax's plain == mask finds no tie there and gives NaN.
    dims = norm_dims("amax", dims, len(x.shape))
    outk = unreduce(b, out, x.shape, dims, keepdim)
    hit = b.eq(x, outk)
    if nan_ties:
        hit = b.logical_or(hit, b.logical_and(b.ne(x, x), b.ne(outk, outk)))
    mask = b.cast(hit, dtype=g.dtype)
    cnt = b.sum(mask, dims=dims, keepdim=True)
    gk = unreduce(b, g, x.shape, dims, keepdim)
    if nan_ties:     # PyTorch fills the ties (masked_fill): a NaN/inf g leaves the others 0
        return (b.where(hit, b.div(gk, cnt), 0.0),)
    return (b.div(b.mul(gk, mask), cnt),)


def _np_minmax(f):
    def impl(out, x, dims=None, keepdim=False, nan_ties=False):
        r = f(x, axis=dims, keepdims=keepdim)
        return r if type(r) is np.ndarray else np.asarray(r)
    return impl


register(Prim("amax", "reduction", _minmax_meta("amax"), _np_minmax(np.max), _vjp_minmax,
              triton="tl.max", saves_output=True))
register(Prim("amin", "reduction", _minmax_meta("amin"), _np_minmax(np.min), _vjp_minmax,
              triton="tl.min", saves_output=True))


def _arg_meta(name):
    def meta(x, dim=None, keepdim=False):
        if x.dtype is dt.bool_:
            raise RuntimeError(f"{name}(): does not support bool input (shape {list(x.shape)})")
        if dim is None:
            if x.shape and 0 in x.shape:
                raise IndexError(f"{name}(): Expected reduction dim to be specified for "
                                 f"input.numel() == 0 (shape {list(x.shape)}).")
            return AVal((1,) * len(x.shape) if keepdim else (), dt.int64)
        d = norm_dim(name, dim, len(x.shape))
        if x.shape and x.shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size "
                             f"(shape {list(x.shape)}).")
        return AVal(_red_shape(name, x, (d,), keepdim) if x.shape else (), dt.int64)
    return meta


def _short_arg(x, dim, keepdim, better, extreme):
    """argmax/argmin along a short dim of many rows, as K - 1 whole-array steps over the slices
    along dim (NumPy's own argmax loops once per row, which dominates for pooling windows).
    A strict comparison keeps the first extreme, as np.argmax does; None when x holds NaN (NumPy
    returns the first NaN, which these steps would not)."""
    if np.isnan(x).any():
        return None
    K = x.shape[dim]
    xs = np.moveaxis(x, dim, -1)
    best = xs[..., 0].copy()
    idx = np.zeros(best.shape, np.int64)
    u = np.empty(best.shape, bool)
    t = np.empty(best.shape, np.int64)
    for k in range(1, K):
        s = xs[..., k]
        better(s, best, out=u)
        np.multiply(u, k, out=t)
        np.maximum(idx, t, out=idx)     # k exceeds every earlier index: idx becomes k where u
        if k < K - 1:
            extreme(best, s, out=best)  # no NaN here, so max/min is the running extreme
    return np.expand_dims(idx, dim) if keepdim else idx


def _np_arg(f):
    better, extreme = (np.greater, np.maximum) if f is np.argmax else (np.less, np.minimum)

    def impl(out, x, dim=None, keepdim=False):
        if x.ndim == 0:
            return np.zeros((), np.int64)
        if dim is None:
            r = f(x.reshape(-1))
            return np.asarray(r, np.int64).reshape(out.shape)
        if x.dtype.kind == "f" and x.shape[dim] <= 16 and x.size >= 64 * x.shape[dim] and \
                x.dtype.itemsize >= 4:
            r = _short_arg(x, dim % x.ndim, keepdim, better, extreme)
            if r is not None:
                return r
        r = f(x, axis=dim, keepdims=keepdim)
        return np.asarray(r, np.int64)
    return impl


register(Prim("argmax", "reduction", _arg_meta("argmax"), _np_arg(np.argmax), differentiable=False))
register(Prim("argmin", "reduction", _arg_meta("argmin"), _np_arg(np.argmin), differentiable=False))


def _bool_red_meta(x, dims=None, keepdim=False):
    return AVal(_red_shape("all", x, dims, keepdim), dt.uint8 if x.dtype is dt.uint8 else dt.bool_)


register(Prim("all", "reduction", _bool_red_meta,
              lambda out, x, dims=None, keepdim=False: np.asarray(
                  np.all(x, axis=dims, keepdims=keepdim)).astype(out.dtype.np),
              differentiable=False))
register(Prim("any", "reduction", _bool_red_meta,
              lambda out, x, dims=None, keepdim=False: np.asarray(
                  np.any(x, axis=dims, keepdims=keepdim)).astype(out.dtype.np),
              differentiable=False))


# scans ---------------------------------------------------------------------------------------

def _scan_meta(name):
    def meta(x, dim, dtype=None):
        norm_dim(name, dim, len(x.shape))
        return AVal(x.shape, _acc_dtype(name, x, dtype))
    return meta


def _xp_scan(name):
    """cumsum / cumprod over an array module (NumPy, or CuPy on a GPU)."""
    def impl(xp, out, x, dim, dtype=None):
        npd = out.dtype.np
        if x.ndim == 0:
            return x.astype(npd).copy()
        if npd in _HALF:     # half precision accumulates in float32, as PyTorch's scans
            return getattr(xp, name)(x.astype(np.float32), axis=dim).astype(npd)
        return getattr(xp, name)(x.astype(npd, copy=False), axis=dim)
    return impl


def _vjp_cumsum(b, g, x, out=None, dim=0, dtype=None):
    if len(x.shape) == 0:
        return (g,)
    return (b.flip(b.cumsum(b.flip(g, dims=(dim,)), dim=dim), dims=(dim,)),)


def _vjp_cumprod(b, g, x, out, dim=0, dtype=None):
    # d out_k / d x_i = out_k / x_i for k >= i (x without zeros; zeros handled by a
    # masked product below)
    if len(x.shape) == 0:
        return (g,)
    rev = b.flip(b.cumsum(b.flip(b.mul(g, out), dims=(dim,)), dim=dim), dims=(dim,))
    # (the division by x is kept finite where x is 0: double backward through the unselected
    # branch would give 0 * inf = NaN there)
    z = b.eq(x, 0)
    return (b.where(z, _cumprod_zero_grad(b, g, x, dim), b.div(rev, b.where(z, 1.0, x))),)


def _cumprod_zero_grad(b, g, x, dim):
    # exact for elements that are 0: sum_k>=i g_k * prod_{j<=k, j!=i} x_j
    n = x.shape[dim]
    parts = []
    for i in range(n):
        xi1 = b.slice(x, dim=dim, start=i, stop=i + 1, step=1)
        prefix = b.cumprod(b.slice_scatter(x, b.full(shape=xi1.shape, value=1.0, dtype=x.dtype),
                                           dim=dim, start=i, stop=i + 1, step=1), dim=dim)
        term = b.sum(b.slice(b.mul(g, prefix), dim=dim, start=i, stop=n, step=1), dims=(dim,),
                     keepdim=True)
        parts.append(term)
    return b.cat(*parts, dim=dim) if len(parts) > 1 else parts[0]


register(Prim("cumsum", "scan", _scan_meta("cumsum"), None, _vjp_cumsum, saves=(),
              xp=_xp_scan("cumsum")))
register(Prim("cumprod", "scan", _scan_meta("cumprod"), None, holomorphic(_vjp_cumprod),
              saves_output=True,
              xp=_xp_scan("cumprod")))


def _logcumsumexp_meta(x, dim):
    norm_dim("logcumsumexp", dim, len(x.shape))
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"logcumsumexp(): expected input to have floating point dtype but got "
                           f"{dt.tname(x.dtype)}" if not x.dtype.is_complex else
                           "logcumsumexp(): complex input is not supported here")
    return AVal(x.shape, x.dtype)


def _logcumsumexp_xp(xp, out, x, dim):
    """log(cumsum(exp(x))) by running log-add-exp: no overflow, no underflow to -inf of a small
    prefix (np.logaddexp is itself stable)."""
    npd = out.dtype.np
    cd = np.float32 if npd in _HALF else npd
    xx = x.astype(cd, copy=False)
    if xx.ndim == 0:
        return xx.copy().astype(npd)
    if xp is np:
        with np.errstate(invalid="ignore"):
            return np.logaddexp.accumulate(xx, axis=dim).astype(npd, copy=False)
    xm = xp.moveaxis(xx, dim, 0)
    r = xp.empty_like(xm)
    if xm.shape[0]:
        r[0] = xm[0]
        for k in range(1, xm.shape[0]):
            r[k] = xp.logaddexp(r[k - 1], xm[k])
    return xp.moveaxis(r, 0, dim).astype(npd, copy=False)


def _vjp_logcumsumexp(b, g, x, out, dim=0):
    # d out_k / d x_i = exp(x_i - out_k) for k >= i, so x_bar_i = sum_{k>=i} g_k exp(x_i - out_k).
    # Summed in log space, split by the sign of g: x_bar = exp(x + rlcse(log g+ - out)) -
    # exp(x + rlcse(log g- - out)), rlcse a reversed logcumsumexp (stable for any range of x).
    # Where g has the other sign its log is the dtype's lowest finite value, as in PyTorch, not
    # log(0) = -inf: double backward through rlcse of -inf meets -inf - -inf = NaN, and the
    # where() above it then drops the whole gradient that reaches `out`.
    if len(x.shape) == 0:
        return (g,)
    res = None
    low = dt.finfo(g.dtype).min
    for pos in (True, False):
        lg = b.sub(b.where(b.gt(g, 0.0) if pos else b.lt(g, 0.0), b.log(b.abs(g)), low), out)
        r = b.flip(b.logcumsumexp(b.flip(lg, dims=(dim,)), dim=dim), dims=(dim,))
        t = b.exp(b.add(x, r))
        res = t if res is None else b.sub(res, t)
    return (res,)


register(Prim("logcumsumexp", "scan", _logcumsumexp_meta, None, _vjp_logcumsumexp,
              saves_output=True, grad_name="LogcumsumexpBackward0", xp=_logcumsumexp_xp))
