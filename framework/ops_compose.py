"""Ops PyTorch offers that are compositions of Kiln's: meshgrid, cartesian_prod, block_diag,
rot90, diff, Tensor.unfold, and the torch.special namespace. Built from existing ops only, so
autograd, devices and compile() handle them with no rules of their own."""
import types

from compiler.ir.registry import norm_dim
from . import ops_math as M
from ._dispatch import rename
from . import ops_shape as S
from .tensor import Tensor


def meshgrid(*tensors, indexing=None):
    """Coordinate grids; indexing 'ij' (matrix: grid k varies along dim k) or 'xy' (Cartesian:
    the first two inputs swapped, then their grids swapped back). PyTorch's default is 'ij'."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        import warnings
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the "
                      "indexing argument.", UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f"torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but "
                           f"received: {indexing}")
    if not tensors:
        raise RuntimeError("meshgrid expects a non-empty TensorList")
    for t in tensors[1:]:
        if t.dtype != tensors[0].dtype:
            raise RuntimeError(f"meshgrid expects all tensors to have the same dtype (got "
                               f"{tensors[0].dtype} and {t.dtype})")
        if t.device != tensors[0].device:
            raise RuntimeError(f"meshgrid expects all tensors to have the same device (got "
                               f"{tensors[0].device} and {t.device})")
    for t in tensors:
        if t.ndim > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but "
                               f"got: {t.ndim}D (shape {list(t.shape)})")
    ts = [S.reshape(t, (-1,)) for t in tensors]
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    shape = tuple(t.shape[0] for t in ts)
    n = len(ts)
    out = [S.expand(S.reshape(t, tuple(-1 if i == k else 1 for i in range(n))), shape)
           for k, t in enumerate(ts)]
    if swap:                       # grids of the swapped inputs, handed back in input order
        out[0], out[1] = out[1], out[0]
    return tuple(out)


def cartesian_prod(*tensors):
    for t in tensors:
        if t.ndim != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(t.shape)}")
    if len(tensors) == 1:
        return tensors[0]
    grids = meshgrid(*tensors, indexing="ij")
    return S.stack([S.reshape(g, (-1,)) for g in grids], 1)


def block_diag(*tensors):
    mats = [S.reshape(t, (1, -1)) if t.ndim == 1 else S.reshape(t, (1, 1)) if t.ndim == 0
            else t for t in tensors]
    for t in mats:
        if t.ndim != 2:
            raise RuntimeError(f"torch.block_diag: Input tensors must have 2 or fewer "
                               f"dimensions. Input has {t.ndim} dimensions")
    if not mats:
        from .creation import empty
        return empty(1, 0)
    from runtime import dtypes as dt
    from .nn.functional import pad
    d = mats[0].dtype
    for t in mats[1:]:
        d = dt.promote_types(d, t.dtype)
    cols = sum(t.shape[1] for t in mats)
    parts, c = [], 0
    for t in mats:
        t = M.cast(t, d) if t.dtype is not d else t
        parts.append(pad(t, (c, cols - c - t.shape[1])))     # its columns, zeros around
        c += t.shape[1]
    return rename(S.cat(parts, 0), "BlockDiagBackward0")


def rot90(input, k=1, dims=(0, 1)):
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {input.ndim}")
    d0, d1 = (norm_dim("rot90", d, input.ndim) for d in dims)
    if d0 == d1:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {d0} and "
                           f"dim1 = {d1}")
    k %= 4
    # as torch: flip, then transpose the flipped copy in place (a new tensor, not a view)
    if k == 1:
        r = S._swapaxes_(S.flip(input, (d1,)), d0, d1)
    elif k == 2:
        r = S.flip(input, (d0, d1))
    elif k == 3:
        r = S._swapaxes_(S.flip(input, (d0,)), d0, d1)
    else:
        r = S._copy_contig(input)
    return rename(r, "Rot90Backward0")


def diff(input, n=1, dim=-1, prepend=None, append=None):
    d = norm_dim("diff", dim, max(input.ndim, 1))
    if input.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    x = input
    if prepend is not None or append is not None:
        x = S.cat([t for t in (prepend, x, append) if t is not None], d)
    for _ in range(n):
        m = x.shape[d]
        if m == 0:
            break
        a, b = S.narrow(x, d, 1, m - 1), S.narrow(x, d, 0, m - 1)
        x = M.logical_xor(a, b) if x.dtype.name == "bool" else M.sub(a, b)
    return x


def unfold(self, dimension, size, step):
    """Tensor.unfold: the windows of `size` elements every `step` along `dimension`, as a new
    last dim. A view (as_strided over the tensor's memory, with its strides, as PyTorch's) for
    a cpu tensor outside compile(); otherwise a copy with the same values and gradients."""
    d = norm_dim("unfold", dimension, max(self.ndim, 1))
    length = self.shape[d] if self.ndim else 1
    if size > length:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {length} but size is "
                           f"{size}")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if size < 0:
        raise RuntimeError(f"size is {size} but must be >= 0")
    if self.ndim == 0:       # torch: shape [size] (no window dim of its own)
        return S.rename(S.narrow(S.reshape(self, (1,)), 0, 0, size), "UnfoldBackward0")
    from .creation import arange
    from .ops_index import index_select
    from ._dispatch import STATE
    import numpy as np
    n = (length - size) // step + 1
    # (an input whose elements share memory, as an expanded one, would give as_strided's
    # gradient, which counts each memory location once per view element: the copy instead)
    overlaps = any(s == 0 and n > 1 for s, n in zip(self.stride(), self.shape))
    if STATE.tracer is None and type(self._data) is np.ndarray and \
            not (overlaps and STATE.grad_enabled and self.requires_grad):
        st = self.stride()
        shape = tuple(self.shape[:d]) + (n,) + tuple(self.shape[d + 1:]) + (size,)
        stride = st[:d] + (st[d] * step,) + st[d + 1:] + (st[d],)
        return S.rename(S.as_strided(self, shape, stride), "UnfoldBackward0")
    idx = S.reshape(S.reshape(arange(n, device=self.device), (n, 1)) * step +
                    S.reshape(arange(size, device=self.device), (1, size)), (-1,))
    w = index_select(self, d, idx)                       # dim d: n * size picks
    w = S.reshape(w, tuple(self.shape[:d]) + (n, size) + tuple(self.shape[d + 1:]))
    return S.rename(S.movedim(w, d + 1, -1), "UnfoldBackward0")


def _special():
    from . import nn
    F = nn.functional
    ns = types.ModuleType("framework.special")      # (a module, as torch.special: hashable)
    vars(ns).update(
        erf=M.erf, erfinv=M.erfinv, expit=M.sigmoid, logit=M.logit, exp2=M.exp2,
        expm1=M.expm1, log1p=M.log1p, xlogy=M.xlogy, logsumexp=M.logsumexp,
        softmax=F.softmax, log_softmax=F.log_softmax, round=M.round,
        # NaN stays NaN (the last where passes x through)
        entr=lambda x: M.where(x > 0, -x * M.log(x), M.where(x == 0, 0.0, M.where(
            x < 0, float("-inf"), x))),
        gammaln=M.lgamma, digamma=M.digamma, psi=M.digamma, polygamma=M.polygamma,
        multigammaln=M.mvlgamma, i0=M.i0, i0e=M._i0e, i1=M._i1, i1e=M._i1e, erfcx=M._erfcx,
        ndtr=M._ndtr, ndtri=M._ndtri, log_ndtr=M._log_ndtr, xlog1py=M._xlog1py, sinc=M.sinc)
    ns.erfc = M.erfc            # the primitive: no 1 - erf(x) cancellation (erfc(10) = 2.1e-45)
    for n in _SPECIAL_UNARY:
        setattr(ns, n, _special_unary(n))
    for n in _SPECIAL_BINARY:
        setattr(ns, n, _special_binary(n))
    return ns


# primitives of their own (compiler/ops/pointwise.py): Bessel, Airy, zeta and the polynomials
_SPECIAL_UNARY = ("airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1",
                  "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0",
                  "modified_bessel_k1", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
                  "spherical_bessel_j0")
_SPECIAL_BINARY = ("zeta",) + tuple(
    f"{s}chebyshev_polynomial_{k}" for s in ("", "shifted_") for k in "tuvw") + (
    "hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l",
    "legendre_polynomial_p")


def _special_unary(name):
    from ._dispatch import apply
    from compiler.ir.registry import REGISTRY

    def f(input, *, out=None):
        if not isinstance(input, Tensor):
            raise TypeError(f"special_{name}(): argument 'input' (position 1) must be Tensor, "
                            f"not {type(input).__name__}")
        return M.write_out(apply(REGISTRY[name], input), out)
    f.__name__ = f"special_{name}"
    return f


def _special_binary(name):
    from ._dispatch import apply
    from compiler.ir.registry import REGISTRY
    second = "other" if name == "zeta" else "n"

    def f(input, other, *, out=None):
        if not isinstance(input, Tensor) and not isinstance(other, Tensor):
            raise TypeError(f"special_{name}() received an invalid combination of arguments - "
                            f"got ({type(input).__name__}, {type(other).__name__}), but expected "
                            f"one of:\n * (Tensor input, Tensor {second}, *, Tensor out)\n"
                            f" * (Number self, Tensor {second}, *, Tensor out)\n"
                            f" * (Tensor input, Number {second}, *, Tensor out)")
        for v in (input, other):
            if not isinstance(v, (Tensor, bool, int, float)):
                raise TypeError(f"special_{name}(): expected Tensor or Number, got "
                                f"{type(v).__name__}")
        return M.write_out(apply(REGISTRY[name], input, other), out)
    f.__name__ = f"special_{name}"
    if second == "n":                 # torch's keyword: n=
        def g(input, n, *, out=None):
            return f(input, n, out=out)
        g.__name__ = f.__name__
        return g
    return f


def tensor_methods():
    Tensor.unfold = unfold
    Tensor.diff = lambda self, n=1, dim=-1, prepend=None, append=None: diff(self, n, dim,
                                                                           prepend, append)
    Tensor.rot90 = lambda self, k=1, dims=(0, 1): rot90(self, k, dims)

