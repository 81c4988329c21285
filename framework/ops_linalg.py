"""Matrix products and linear algebra: matmul (every rank combination), mm, bmm, mv, dot,
outer, addmm, baddbmm, einsum, and torch.linalg."""
from compiler.ir.registry import REGISTRY
from runtime import dtypes as dt
from ._dispatch import apply, rename, values, wrap_like
from . import ops_shape as S

P = REGISTRY


def matmul(input, other, *, out=None):
    from .ops_math import write_out
    a, b = input, other
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"matmul: both arguments to matmul need to be at least 1D, but they are "
                           f"{a.ndim}D and {b.ndim}D")
    if a.ndim == 1 and b.ndim == 1:
        r = dot(a, b)
    elif a.ndim == 1:
        r = S.squeeze(apply(P["matmul"], S.unsqueeze(a, 0), b), -2)
        r = rename(r, "MvBackward0" if b.ndim == 2 else "UnsafeViewBackward0")
    elif b.ndim == 1:
        if a.shape[-1] != b.shape[0]:
            raise RuntimeError(f"matmul: size mismatch, got input ({list(a.shape)}), vec "
                               f"({b.shape[0]})")
        r = rename(S.squeeze(apply(P["matmul"], a, S.unsqueeze(b, 1)), -1), "MvBackward0")
    else:
        r = apply(P["matmul"], a, b)
        if a.ndim > 2 or b.ndim > 2:
            rename(r, "BmmBackward0" if a.ndim == b.ndim == 3 else "UnsafeViewBackward0")
    return write_out(r, out)


def mm(input, mat2, *, out=None):
    from .ops_math import write_out
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm: self must be a matrix (got shapes {list(input.shape)} and "
                           f"{list(mat2.shape)})")
    return write_out(apply(P["matmul"], input, mat2), out)


def bmm(input, mat2, *, out=None):
    from .ops_math import write_out
    if input.ndim != 3 or mat2.ndim != 3:
        raise RuntimeError(f"bmm: batch1 must be a 3D tensor (got shapes {list(input.shape)} and "
                           f"{list(mat2.shape)})")
    if input.shape[0] != mat2.shape[0]:
        raise RuntimeError(f"bmm: batch1 and batch2 must have same number of batches, got "
                           f"{input.shape[0]} and {mat2.shape[0]}")
    return write_out(rename(apply(P["matmul"], input, mat2), "BmmBackward0"), out)


def mv(input, vec):
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"mv: vector + matrix @ vector expected, got {input.ndim}, {vec.ndim}")
    return matmul(input, vec)


def dot(input, other):
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    if input.shape[0] != other.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{input.shape[0]}] and src "
                           f"[{other.shape[0]}] to have the same number of elements, but got "
                           f"{input.shape[0]} and {other.shape[0]} elements respectively")
    if input.dtype is not other.dtype:
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                           f"{input.dtype.name.capitalize()} and {other.dtype.name.capitalize()}")
    r = apply(P["matmul"], S.unsqueeze(input, 0), S.unsqueeze(other, 1))
    return rename(S.reshape(r, ()), "DotBackward0")


def inner(input, other, *, out=None):
    """Sum over the last dims: out[i..., j...] = sum_k input[i..., k] * other[j..., k]."""
    from .ops_math import write_out, mul
    if input.ndim == 0 or other.ndim == 0:
        return write_out(mul(input, other), out)
    if input.shape[-1] != other.shape[-1]:
        raise RuntimeError(f"inner() the last dimension must match on both input tensors but got "
                           f"shapes {list(input.shape)} and {list(other.shape)}")
    if input.ndim == 1 and other.ndim == 1:
        return write_out(dot(input, other), out)
    _same_dtype("inner", input, other)
    letters = "abcdefghijklmnopqrstuvwxy"
    la, lb = letters[:input.ndim - 1], letters[input.ndim - 1:input.ndim + other.ndim - 2]
    return write_out(einsum(f"{la}z,{lb}z->{la}{lb}", input, other), out)


def _same_dtype(op, *ts):
    d = ts[0].dtype
    for t in ts[1:]:
        if t.dtype is not d:
            raise RuntimeError(f"{op}: expected all operands to have the same dtype, but got "
                               + ", ".join(x.dtype.name for x in ts))


def vdot(input, other):
    return dot(input, other)


def outer(input, vec2):
    return rename(apply(P["mul"], S.unsqueeze(input, 1), S.unsqueeze(vec2, 0)), "OuterBackward0")


ger = outer


def addmm(input, mat1, mat2, *, beta=1, alpha=1, out=None):
    from .ops_math import write_out
    r = apply(P["matmul"], mat1, mat2)
    if alpha != 1:
        r = apply(P["mul"], r, alpha)
    inp = input if beta == 1 else apply(P["mul"], input, beta)
    return write_out(rename(apply(P["add"], inp, r), "AddmmBackward0"), out)


def addmv(input, mat, vec, *, beta=1, alpha=1):
    r = matmul(mat, vec)
    if alpha != 1:
        r = apply(P["mul"], r, alpha)
    return apply(P["add"], input if beta == 1 else apply(P["mul"], input, beta), r)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    r = bmm(batch1, batch2)
    if alpha != 1:
        r = apply(P["mul"], r, alpha)
    inp = input if beta == 1 else apply(P["mul"], input, beta)
    return rename(apply(P["add"], inp, r), "BaddbmmBackward0")


def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    from .ops_math import sum
    r = sum(bmm(batch1, batch2), 0)
    if alpha != 1:
        r = apply(P["mul"], r, alpha)
    return apply(P["add"], input if beta == 1 else apply(P["mul"], input, beta), r)


def einsum(equation, *operands):
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise RuntimeError("einsum(): must provide at least one operand")
    _same_dtype(f"einsum({equation!r})", *operands)
    return rename(apply(P["einsum"], *operands, equation=equation), "EinsumBackward0")


def tensordot(a, b, dims=2):
    if isinstance(dims, int):
        da = list(range(a.ndim - dims, a.ndim))
        db = list(range(dims))
    else:
        da, db = [list(d) if isinstance(d, (list, tuple)) else [d] for d in dims]
    letters = "abcdefghijklmnopqrstuvwxyz"
    sa = list(letters[:a.ndim])
    sb = list(letters[a.ndim:a.ndim + b.ndim])
    for i, j in zip(da, db):
        sb[j] = sa[i]
    out = [c for k, c in enumerate(sa) if k not in da] + [c for k, c in enumerate(sb) if k not in db]
    return einsum(f"{''.join(sa)},{''.join(sb)}->{''.join(out)}", a, b)


def kron(a, b):
    n = max(a.ndim, b.ndim)                 # the one with fewer dims gains leading 1s
    sa, sb = (1,) * (n - a.ndim) + tuple(a.shape), (1,) * (n - b.ndim) + tuple(b.shape)
    r = apply(P["mul"], S.reshape(a, tuple(x for s in sa for x in (s, 1))),
              S.reshape(b, tuple(x for s in sb for x in (1, s))))
    return S.reshape(r, tuple(x * y for x, y in zip(sa, sb)))


def cross(input, other, dim=None):
    if dim is None:
        dim = next((i for i, s in enumerate(input.shape) if s == 3), None)
        if dim is None:
            raise RuntimeError(f"cross: no dimension of size 3 in input (shape {list(input.shape)})")
    _same_dtype("linalg.cross", input, other)
    if input.ndim != other.ndim:
        raise RuntimeError(f"linalg.cross: inputs must have the same number of dimensions (got "
                           f"shapes {list(input.shape)} and {list(other.shape)})")
    if input.shape[dim] != 3 or other.shape[dim] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got "
                           f"{input.shape[dim]} and {other.shape[dim]}")
    input, other = S.broadcast_tensors(input, other)
    a = [S.select(input, dim, i) for i in range(3)]
    b = [S.select(other, dim, i) for i in range(3)]
    from .ops_math import sub, mul
    c = [sub(mul(a[1], b[2]), mul(a[2], b[1])), sub(mul(a[2], b[0]), mul(a[0], b[2])),
         sub(mul(a[0], b[1]), mul(a[1], b[0]))]
    return rename(S.stack(c, dim), "LinalgCrossBackward0")


def cdist(x1, x2, p=2.0):
    from .ops_math import norm, sub
    d = sub(S.unsqueeze(x1, -2), S.unsqueeze(x2, -3))
    return norm(d, p, -1)


# torch.linalg ----------------------------------------------------------------------------------

class _Linalg:
    """torch.linalg namespace."""

    from compiler.ops.linalg import LinAlgError

    @staticmethod
    def inv(A):
        return apply(P["inv"], A)

    @staticmethod
    def det(A):
        return apply(P["det"], A)

    @staticmethod
    def slogdet(A):
        import collections
        from .ops_math import sign, log, abs
        d = apply(P["det"], A)
        r = collections.namedtuple("slogdet", ["sign", "logabsdet"])
        return r(sign(d), log(abs(d)))

    @staticmethod
    def solve(A, B, *, left=True):
        if A.dtype is not B.dtype:
            raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found A "
                               f"of type {A.dtype.name} and B of type {B.dtype.name} instead")
        if not left:     # X A = B  <=>  A^T X^T = B^T
            return S.transpose(_Linalg.solve(S.transpose(A, -2, -1), S.transpose(B, -2, -1)), -2, -1)
        # B is a (batch of) vector(s) when 1-D or when its shape is A's without the last dim
        if B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1])):
            if B.shape[-1] != A.shape[-1] if A.ndim >= 2 else True:
                raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation "
                                   f"AX = B (A {list(A.shape)}, B {list(B.shape)})")
            return S.squeeze(apply(P["solve"], A, S.unsqueeze(B, -1)), -1)
        return apply(P["solve"], A, B)

    @staticmethod
    def eig(A):
        import collections
        w, v = apply(P["eig"], A)
        return collections.namedtuple("eig", ["eigenvalues", "eigenvectors"])(w, v)

    @staticmethod
    def eigvals(A):
        return apply(P["eig"], A)[0]

    @staticmethod
    def vecdot(x, y, *, dim=-1):
        from .ops_math import sum, mul
        if x.dtype.is_complex:
            raise NotImplementedError("linalg.vecdot: complex inputs need a conj primitive, which "
                                      "Kiln does not have yet")
        _same_dtype("linalg.vecdot", x, y)
        return rename(sum(mul(x, y), dim), "LinalgVecdotBackward0")

    @staticmethod
    def multi_dot(tensors):
        ts = list(tensors)
        if len(ts) < 2:
            raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(ts)}")
        for k, t in enumerate(ts):
            if t.ndim != 2 and not (t.ndim == 1 and k in (0, len(ts) - 1)):
                raise RuntimeError(f"multi_dot(): tensor {k} must be 2D (only the first and last "
                                   f"may be 1D) but got {t.ndim}D")
        r = ts[0]
        for t in ts[1:]:
            r = matmul(r, t)
        return r

    @staticmethod
    def qr(A, mode="reduced"):
        import collections
        if mode == "r":    # R only; torch returns an empty Q
            from .creation import empty
            return collections.namedtuple("qr", ["Q", "R"])(empty(0, dtype=A.dtype),
                                                            apply(P["qr"], A, mode="reduced")[1])
        q, r = apply(P["qr"], A, mode=mode)
        return collections.namedtuple("qr", ["Q", "R"])(q, r)

    @staticmethod
    def svd(A, full_matrices=True):
        import collections
        u, s, vh = apply(P["svd"], A, full_matrices=full_matrices)
        return collections.namedtuple("svd", ["U", "S", "Vh"])(u, s, vh)

    @staticmethod
    def svdvals(A):
        return apply(P["svd"], A, full_matrices=False)[1]

    @staticmethod
    def cholesky(A, *, upper=False, out=None):
        from .ops_math import write_out
        return write_out(apply(P["cholesky"], A, upper=upper)[0], out)

    @staticmethod
    def cholesky_ex(A, *, upper=False, check_errors=False, out=None):
        """(L, info): info (int32, one per matrix) is 0 where the factorization completed and
        otherwise the order of the first leading minor that is not positive-definite; raises
        instead only when check_errors."""
        from .ops_math import write_out
        attrs = dict(check_errors=True, name="linalg.cholesky_ex") if check_errors else \
            dict(check_errors=False)
        L, info = apply(P["cholesky"], A, upper=upper, **attrs)
        return write_out(_CholeskyEx(L, info), out)

    @staticmethod
    def solve_triangular(A, B, *, upper, left=True, unitriangular=False, out=None):
        from .ops_math import write_out
        return write_out(_solve_triangular(A, B, upper, left, unitriangular), out)

    @staticmethod
    def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None, out=None):
        from .ops_math import write_out
        if isinstance(dim, int):
            dim = (dim,)
        if dim is not None:
            dim = tuple(dim)
        if ord is None:
            if dim is not None and len(dim) == 2:
                r = _Linalg.matrix_norm(A, "fro", dim, keepdim, dtype=dtype)
            else:
                r = _Linalg.vector_norm(A, 2, dim, keepdim, dtype=dtype)
            return write_out(r, out)
        if dim is None:
            if A.ndim not in (1, 2):
                raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must "
                                   f"be 1D or 2D. Got {A.ndim}D.")
            dim = tuple(range(A.ndim))
        if len(dim) == 2:
            r = _Linalg.matrix_norm(A, ord, dim, keepdim, dtype=dtype)
        elif len(dim) == 1:
            if isinstance(ord, str):
                raise RuntimeError(f"linalg.norm: order {ord} is not supported for vectors "
                                   f"(dim {list(dim)})")
            r = _Linalg.vector_norm(A, ord, dim, keepdim, dtype=dtype)
        else:
            raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. Got "
                               f"{list(dim)}")
        return write_out(r, out)

    @staticmethod
    def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):
        from .ops_math import norm as _norm
        if isinstance(ord, str) or isinstance(ord, bool):
            raise TypeError(f"linalg_vector_norm(): argument 'ord' must be Number, not "
                            f"{type(ord).__name__}")
        return _norm(x, ord, dim, keepdim, dtype=dtype, out=out)

    @staticmethod
    def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None, out=None):
        from .ops_math import write_out
        if A.ndim < 2:
            raise RuntimeError(f"linalg.matrix_norm: The input tensor A must have at least 2 "
                               f"dimensions (got shape {list(A.shape)}).")
        if isinstance(dim, int) or len(tuple(dim)) != 2:
            raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {dim}")
        from compiler.ir.registry import norm_dims
        dim = norm_dims("linalg.matrix_norm", tuple(dim), A.ndim)
        if dtype is not None:
            from .ops_math import cast
            A = cast(A, dtype)
        return write_out(_matrix_norm(A, ord, dim, keepdim), out)
    @staticmethod
    def matrix_rank(A):
        import numpy as np
        if not (A._dtype.is_floating_point or A._dtype.is_complex):
            raise RuntimeError("This function doesn't handle types other than float and double")
        return wrap_like(np.asarray(np.linalg.matrix_rank(_host_values(A)), np.int64), dt.int64, A)

    @staticmethod
    def eigh(A, UPLO="L"):
        import collections
        import numpy as np
        if not (A._dtype.is_floating_point or A._dtype.is_complex):
            raise NotImplementedError(f"\"linalg_eigh_cpu\" not implemented for "
                                      f"'{dt.tname(A._dtype)}'")
        w, v = np.linalg.eigh(_host_values(A), UPLO=UPLO)
        return collections.namedtuple("eigh", ["eigenvalues", "eigenvectors"])(
            wrap_like(w.astype(A._dtype.np), A._dtype, A),
            wrap_like(v.astype(A._dtype.np), A._dtype, A))

    @staticmethod
    def eigvalsh(A, UPLO="L"):
        return _Linalg.eigh(A, UPLO)[0]

    @staticmethod
    def pinv(A):
        import numpy as np
        if A.ndim < 2 or not (A._dtype.is_floating_point or A._dtype.is_complex):
            raise RuntimeError(f"linalg.pinv({dt.tname(A._dtype)}{{{list(A.shape)}}}): expected a "
                               f"tensor with 2 or more dimensions of float, double, cfloat or "
                               f"cdouble types")
        return wrap_like(np.linalg.pinv(_host_values(A)).astype(A._dtype.np), A._dtype, A)

    @staticmethod
    def matrix_power(A, n):
        if n == 0:
            from .creation import eye
            return eye(A.shape[-1], dtype=A.dtype).expand(A.shape)
        if n < 0:
            A, n = _Linalg.inv(A), -n
        r = A
        for _ in range(n - 1):
            r = matmul(r, A)
        return r

    @staticmethod
    def cross(input, other, dim=-1):
        return cross(input, other, dim)

    @staticmethod
    def matmul(a, b):
        return matmul(a, b)


def _matrix_norm(A, ord, dim, keepdim):
    """Matrix norms over the dim pair `dim` (already normalized, distinct)."""
    from .ops_math import sum, abs, amax, amin, norm
    if not (A.dtype.is_floating_point or A.dtype.is_complex):
        raise RuntimeError(f"linalg.matrix_norm: Expected a floating point or complex tensor as "
                           f"input. Got {dt.tname(A._dtype)}")
    d0, d1 = dim
    if ord == "fro":
        return norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        # singular values of the matrices spanned by (d0, d1), moved to the last two dims
        sv = _Linalg.svdvals(S.movedim(A, (d0, d1), (-2, -1)))
        r = sum(sv, -1) if ord == "nuc" else (amax if ord == 2 else amin)(sv, -1)
        if keepdim:
            for d in sorted((d0, d1)):
                r = S.unsqueeze(r, d)
        return r
    if ord in (1, -1):
        s = sum(abs(A), d0, keepdim=True)
        r = (amax if ord == 1 else amin)(s, d1, keepdim=True)
    elif ord in (float("inf"), float("-inf")):
        s = sum(abs(A), d1, keepdim=True)
        r = (amax if ord > 0 else amin)(s, d0, keepdim=True)
    else:
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    if not keepdim:
        r = S.squeeze(r, (d0, d1))
    return r


linalg = _Linalg()


def _host_values(A):
    """A's values as a host array (NumPy's linalg; under compile() a value read)."""
    from ._device_ops import host
    return host(values(A))


def svdvals(A):
    return _Linalg.svdvals(A)


def det(A):
    return _Linalg.det(A)


def inverse(A):
    return _Linalg.inv(A)


def svd(A, some=True, compute_uv=True):
    import collections
    u, s, vh = apply(P["svd"], A, full_matrices=not some)
    return collections.namedtuple("svd", ["U", "S", "V"])(u, s, S.transpose(vh, -2, -1))


def qr(A, some=True):
    return _Linalg.qr(A, "reduced" if some else "complete")


def cholesky(A, upper=False, *, out=None):
    from .ops_math import write_out
    r = apply(P["cholesky"], A, upper=upper, name="cholesky")[0]
    return write_out(rename(r, "CholeskyBackward0"), out)


def _named(name, fields):
    import collections
    return collections.namedtuple(name, fields)


_CholeskyEx = _named("linalg_cholesky_ex", ["L", "info"])
_TriangularSolve = _named("triangular_solve", ["solution", "cloned_coefficient"])


def _solve_triangular(A, B, upper, left, unitriangular):
    """A X = B (left) or X A = B with A triangular: one primitive (left, A's triangle read);
    X A = B is A^T X^T = B^T. The result has A's dtype, as PyTorch's."""
    from .ops_math import cast
    if B.ndim < 2:
        raise RuntimeError("linalg.solve_triangular: The input tensor B must have at least 2 "
                           "dimensions.")
    if B.dtype is not A.dtype and (A.dtype.is_floating_point or A.dtype.is_complex):
        B = cast(B, A.dtype)
    if left:
        return apply(P["solve_triangular"], A, B, upper=bool(upper),
                     unitriangular=bool(unitriangular))
    if A.ndim >= 2 and A.shape[-1] == A.shape[-2] and B.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"linalg.solve_triangular: Incompatible shapes of A and B for the "
                           f"equation XA = B ({A.shape[-2]}x{A.shape[-1]} and "
                           f"{B.shape[-2]}x{B.shape[-1]})")
    At = S.transpose(A, -2, -1) if A.ndim >= 2 else A
    X = apply(P["solve_triangular"], At, S.transpose(B, -2, -1), upper=not upper,
              unitriangular=bool(unitriangular))
    return rename(S.transpose(X, -2, -1), "LinalgSolveTriangularBackward0")


def triangular_solve(b, A, upper=True, transpose=False, unitriangular=False, *, out=None):
    """Legacy torch.triangular_solve: (solution of op(A) X = b, a copy of A), op(A) = A^T when
    transpose; batch dims broadcast."""
    from .ops_math import write_out, clone
    if b.ndim < 2:
        raise RuntimeError(f"torch.triangular_solve: Expected b to have at least 2 dimensions, "
                           f"but it has {b.ndim} dimensions instead")
    if A.ndim < 2:
        raise RuntimeError(f"torch.triangular_solve: Expected A to have at least 2 dimensions, "
                           f"but it has {A.ndim} dimensions instead")
    if b.dtype is not A.dtype:
        raise RuntimeError(f"Expected b and A to have the same dtype, but found b of type "
                           f"{dt.tname(b.dtype)} and A of type {dt.tname(A.dtype)} instead.")
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"A must be batches of square matrices, but they are {A.shape[-2]} by "
                           f"{A.shape[-1]} matrices")
    if A.shape[-1] != b.shape[-2]:
        raise RuntimeError(f"Incompatible matrix sizes for triangular_solve: each A matrix is "
                           f"{A.shape[-2]} by {A.shape[-1]} but each b matrix is {b.shape[-2]} by "
                           f"{b.shape[-1]}")
    x = apply(P["solve_triangular"], S.transpose(A, -2, -1) if transpose else A, b,
              upper=bool(upper) != bool(transpose), unitriangular=bool(unitriangular))
    batch = tuple(x.shape[:-2])
    Ac = clone(S.expand(A, batch + tuple(A.shape[-2:])) if tuple(A.shape[:-2]) != batch else A)
    r = _TriangularSolve(rename(x, "TriangularSolveBackward0"),
                         rename(Ac, "TriangularSolveBackward0"))
    return write_out(r, out)


def cholesky_inverse(L, upper=False, *, out=None):
    """(L L^T)^-1 from a Cholesky factor (U^T U with upper): L^-1 by a triangular solve, then
    L^-T L^-1. Only L's triangle is read, so only it gets a gradient."""
    from .ops_math import write_out
    from .creation import eye
    if L.ndim < 2:
        raise RuntimeError("cholesky_inverse: The input tensor A must have at least 2 dimensions.")
    if L.shape[-1] != L.shape[-2]:
        raise RuntimeError(f"cholesky_inverse: A must be batches of square matrices, but they are "
                           f"{L.shape[-2]} by {L.shape[-1]} matrices")
    if not (L.dtype.is_floating_point or L.dtype.is_complex) or L.dtype in (dt.float16,
                                                                            dt.bfloat16):
        raise NotImplementedError(f"\"cholesky_inverse_out_cpu\" not implemented for "
                                  f"'{dt.tname(L.dtype)}'")
    Id = eye(L.shape[-1], dtype=L.dtype, device=L.device)
    Linv = apply(P["solve_triangular"], L, Id, upper=bool(upper), unitriangular=False)
    LinvT = S.transpose(Linv, -2, -1)
    r = matmul(Linv, LinvT) if upper else matmul(LinvT, Linv)
    return write_out(rename(r, "CholeskyInverseBackward0"), out)
