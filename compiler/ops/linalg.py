"""Matrix primitives: batched matmul (template kernel kind), einsum and the linalg externs
(inv, det, solve, solve_triangular, qr, svd, cholesky) with their VJP rules."""
import numpy as np

from runtime import dtypes as dt
from ..ir.registry import AVal, Prim, register, broadcast_shapes
from .vjp_util import sum_to, wants
from .pointwise import holomorphic


def _mT(b, x):
    n = len(x.shape)
    dims = tuple(range(n - 2)) + (n - 1, n - 2)
    return b.permute(x, dims=dims)


def _mH(b, x):
    """The conjugate transpose (the transpose of a real matrix)."""
    t = _mT(b, x)
    return b.conj(t) if x.dtype.is_complex else t


def _real_like(b, g, x):
    """A real input's part of a complex gradient (PyTorch's handle_r_to_c)."""
    return b.real(g) if g.dtype.is_complex and not x.dtype.is_complex else g


def _matmul_meta(a, c):
    if len(a.shape) < 2 or len(c.shape) < 2:
        raise RuntimeError(f"matmul: both arguments need at least 2 dimensions here (got shapes "
                           f"{list(a.shape)} and {list(c.shape)})")
    if a.shape[-1] != c.shape[-2]:
        sa = "x".join(map(str, a.shape[-2:])) if len(a.shape) == 2 else list(a.shape)
        sc = "x".join(map(str, c.shape[-2:])) if len(c.shape) == 2 else list(c.shape)
        raise RuntimeError(f"matmul: mat1 and mat2 shapes cannot be multiplied ({sa} and {sc})")
    if a.dtype is not c.dtype:
        raise RuntimeError(f"matmul: expected m1 and m2 to have the same dtype, but got: "
                           f"{dt.CPP_NAME[a.dtype.name]} != {dt.CPP_NAME[c.dtype.name]}")
    if a.dtype is dt.bool_:
        raise NotImplementedError("matmul: \"addmm_impl_cpu_\" not implemented for 'Bool'")
    dt.refuse_barebones("addmm_impl_cpu_", a.dtype)
    batch = broadcast_shapes("matmul", a.shape[:-2], c.shape[:-2])
    return AVal(batch + (a.shape[-2], c.shape[-1]), a.dtype)


def _matmul_np(out, a, c):
    if out.dtype in (dt.float16, dt.bfloat16):
        # as torch's CPU kernels: accumulate in float32 and round once to the result dtype
        # (NumPy's bfloat16 matmul answers float32 unrounded, its float16 one accumulates in
        # float16)
        r = np.matmul(a.astype(np.float32), c.astype(np.float32))
        return r.astype(out.dtype.np)
    return np.matmul(a, c)


def _vjp_matmul(b, g, a, c, out=None):
    ga = sum_to(b, b.matmul(g, _mT(b, c)), a.shape) if wants(b, 0) else None
    if not wants(b, 1):
        return ga, None
    if _transposed_2d(c) and len(a.shape) == 2:
        # c is a transposed matrix (a linear layer's w.t()): (g^T a)^T, which the transpose's
        # own VJP turns back into a row-major gradient for w, as PyTorch's mm_mat2_backward
        # does; a^T g would reach w as a transposed view, copied to row-major when accumulated
        return ga, _mT(b, b.matmul(_mT(b, g), a))
    return ga, sum_to(b, b.matmul(_mT(b, a), g), c.shape)


def _transposed_2d(c):
    """Is c an eager tensor whose array is a column-major matrix (a transposed row-major one)?
    (Traced values have no array: a graph's layout is the compiler's business.)"""
    d = getattr(c, "_data", None)
    return type(d) is np.ndarray and d.ndim == 2 and d.flags.f_contiguous and \
        not d.flags.c_contiguous


# complex operands: .grad = g @ c^H, a^H @ g (PyTorch's convention; matmul is holomorphic)
register(Prim("matmul", "matmul", _matmul_meta, _matmul_np, holomorphic(_vjp_matmul),
              grad_name="MmBackward0"))


# einsum ---------------------------------------------------------------------------------------

def _parse_einsum(eq, nops):
    eq = eq.replace(" ", "")
    if "->" in eq:
        lhs, rhs = eq.split("->")
    else:
        lhs = eq
        letters = lhs.replace(",", "").replace("...", "")
        rhs = ("..." if "..." in lhs else "") + "".join(sorted(c for c in set(letters)
                                                              if letters.count(c) == 1))
    ins = lhs.split(",")
    if len(ins) != nops:
        raise RuntimeError(f"einsum(): more operands were provided than specified in the equation "
                           f"{eq!r} ({nops} operands)")
    return ins, rhs


def _einsum_meta(*xs, equation):
    ins, rhs = _parse_einsum(equation, len(xs))
    sizes, ell = {}, {}         # ell: broadcast size of each ellipsis dim, counted from the right
    for i, (sub, x) in enumerate(zip(ins, xs)):
        shp = tuple(x.shape)
        if "..." in sub:
            pre, post = sub.split("...")
            ne = len(shp) - len(pre) - len(post)
            if ne < 0:
                raise RuntimeError(f"einsum(): the number of subscripts in the equation "
                                   f"({len(pre) + len(post)}) is more than the number of "
                                   f"dimensions ({len(shp)}) for operand {i}")
            for k in range(ne):
                s, r = shp[len(pre) + k], ne - 1 - k
                if r in ell and ell[r] != s and 1 not in (ell[r], s):
                    # (torch's message, its missing space included)
                    raise RuntimeError(f"einsum(): dimension {len(pre) + k} covered by ellipsis "
                                       f"in operand {i}has size {s} which does not broadcast with "
                                       f"previously seen ellipsis with size {ell[r]} for the "
                                       f"respective dimension")
                ell[r] = max(ell.get(r, 1), s)
            pairs = list(zip(pre, shp)) + list(zip(post, shp[len(shp) - len(post):]))
        else:
            if len(sub) != len(shp):
                raise RuntimeError(f"einsum(): the number of subscripts in the equation "
                                   f"({len(sub)}) does not match the number of dimensions "
                                   f"({len(shp)}) for operand {i} and no ellipsis was given")
            pairs = list(zip(sub, shp))
        own = {}
        for ch, s in pairs:
            if ch in own and own[ch] != s:
                raise RuntimeError(f"einsum(): subscript {ch} is repeated for operand {i} but the "
                                   f"sizes don't match, {s} != {own[ch]}")
            own[ch] = s
        for ch, s in own.items():
            if ch in sizes and sizes[ch] != s and 1 not in (sizes[ch], s):
                raise RuntimeError(f"einsum(): subscript {ch} has size {s} for operand {i} which "
                                   f"does not broadcast with previously seen size {sizes[ch]}")
            sizes[ch] = max(sizes.get(ch, 1), s)
    d = xs[0].dtype
    for x in xs[1:]:
        d = dt.promote_types(d, x.dtype)
    if len(xs) > 1:           # (products run as batched matrix products)
        dt.refuse_barebones("bmm", d)
    if d.category < 2:
        # torch sums a letter only one operand carries (and the output lacks) with sum(),
        # which gives int64 for bool/integer input; a letter several operands share is
        # contracted by bmm, which has no bool kernel
        plain = [sub.replace("...", "") for sub in ins]
        summed = {c for sub in plain for c in sub if c not in rhs}
        if d is dt.bool_ and any(sum(c in sub for sub in plain) > 1 for c in summed):
            raise NotImplementedError(f"einsum(): \"bmm\" not implemented for 'Bool' (equation "
                                      f"{equation!r}, shapes {[list(x.shape) for x in xs]})")
        if any(sum(c in sub for sub in plain) == 1 for c in summed):
            d = dt.int64
    if "..." in equation:
        shape = np.einsum(equation, *[np.empty(x.shape, np.float32) for x in xs]).shape
    else:
        shape = tuple(sizes[c] for c in rhs)
    return AVal(shape, d)


def _einsum_xp(xp, out, *xs, equation):
    # NumPy's einsum has no bfloat16 loop: accumulate in float32 and round once, as matmul does
    cd = np.float32 if out.dtype is dt.bfloat16 else out.dtype.np
    r = xp.einsum(equation, *[x.astype(cd, copy=False) for x in xs], optimize=len(xs) > 2)
    return xp.asarray(r).astype(out.dtype.np, copy=False)


def _explicit_einsum(equation, shapes):
    """Subscripts with every '...' spelled out as letters the equation does not use, aligned
    from the right as broadcasting aligns them."""
    ins, rhs = _parse_einsum(equation, len(shapes))
    if "..." not in equation.replace(" ", ""):
        return ins, rhs
    used = set(equation)
    pool = [c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in used]
    nds = [len(s) - (len(sub) - 3) if "..." in sub else 0 for sub, s in zip(ins, shapes)]
    m = max(nds, default=0)
    ell = "".join(pool[:m])
    ins = [sub.replace("...", ell[m - nd:]) if "..." in sub else sub for sub, nd in zip(ins, nds)]
    return ins, rhs.replace("...", ell)


def _vjp_einsum(b, g, *xs, out=None, equation=None):
    # d/dx_i is itself an einsum of g with the other operands; letters the forward summed out
    # of x_i alone are broadcast back, size-1 (broadcast) dims summed, and a letter repeated in
    # x_i (a diagonal, as in 'ii->') is scattered back onto that diagonal
    ins, rhs = _explicit_einsum(equation, [x.shape for x in xs])
    sizes = {}
    for sub, x in zip(ins, xs):
        for c, n in zip(sub, x.shape):
            sizes[c] = max(sizes.get(c, 1), n)
    res = []
    for i, x in enumerate(xs):
        if not wants(b, i):
            res.append(None)
            continue
        sub = ins[i]
        rep = [c for c in dict.fromkeys(sub) if sub.count(c) > 1]
        if len(rep) > 1 or any(sub.count(c) > 2 for c in rep):
            raise NotImplementedError(f"einsum: gradient for operand {i} with subscripts {sub!r} "
                                      f"(more than one repeated letter) is not supported "
                                      f"({equation!r})")
        if rep:
            d1 = sub.index(rep[0])
            d2 = sub.index(rep[0], d1 + 1)
            layout = "".join(c for j, c in enumerate(sub) if j not in (d1, d2)) + rep[0]
        else:
            layout = sub
        others = [s for k, s in enumerate(ins) if k != i]
        ops = [xs[k] for k in range(len(xs)) if k != i]
        present = set(rhs).union(*others) if others else set(rhs)
        kept = "".join(c for c in dict.fromkeys(layout) if c in present)
        gi = b.einsum(g, *ops, equation=",".join([rhs] + others) + "->" + kept)
        if kept != layout:
            gi = b.expand(b.reshape(gi, shape=tuple(sizes[c] if c in present else 1
                                                    for c in layout)),
                          shape=tuple(sizes[c] for c in layout))
        want = tuple(x.shape[sub.index(c)] for c in layout)
        red = tuple(d for d, (h, w) in enumerate(zip(gi.shape, want)) if h != w and w == 1)
        if red:
            gi = b.sum(gi, dims=red, keepdim=True)
        if tuple(gi.shape) != want:
            gi = b.expand(gi, shape=want)
        if rep:
            z = b.full(shape=tuple(x.shape), value=0, dtype=gi.dtype)
            gi = b.diagonal_scatter(z, gi, offset=0, dim1=d1, dim2=d2)
        res.append(gi)
    return tuple(res)


register(Prim("einsum", "extern", _einsum_meta, None, holomorphic(_vjp_einsum), xp=_einsum_xp))


# linalg externs -----------------------------------------------------------------------------------

class LinAlgError(RuntimeError):
    """torch.linalg.LinAlgError: a numerical failure (singular, not positive-definite)."""


def _failures_raise(xp):
    """NumPy raises numpy.linalg.LinAlgError on a singular / indefinite input; CuPy returns
    NaNs unless told to check (which synchronises, as PyTorch's GPU linalg does)."""
    if xp is np:
        import contextlib
        return contextlib.nullcontext()
    import cupyx
    return cupyx.errstate(linalg="raise")


def _square(op, x):
    _square_shape(op, x)
    float_input(op, x)


def _square_shape(op, x):
    if len(x.shape) < 2 or x.shape[-1] != x.shape[-2]:
        raise RuntimeError(f"linalg.{op}: A must be batches of square matrices, but they are "
                           f"{x.shape[-2] if len(x.shape) > 1 else ''} by {x.shape[-1] if x.shape else ''} "
                           f"matrices (shape {list(x.shape)})")


def float_input(op, x):
    """PyTorch's error for an integer or bool matrix given to linalg.{op}."""
    if not (x.dtype.is_floating_point or x.dtype.is_complex):
        raise RuntimeError(f"linalg.{op}: Expected a floating point or complex tensor as input. "
                           f"Got {dt.tname(x.dtype)}")


def _inv_meta(x):
    _square("inv", x)
    return AVal(x.shape, x.dtype)


def _inv_xp(xp, out, x):
    try:
        with _failures_raise(xp):
            return xp.linalg.inv(x)
    except np.linalg.LinAlgError:
        # name getrf's first zero pivot (1-based) and, batched, the batch element, as torch
        info = np.asarray(_host_ints(xp, _lu_xp(xp, None, x)[2])).reshape(-1)
        bad = np.flatnonzero(info)
        first = int(bad[0]) if bad.size else 0
        where = f"(Batch element {first}): " if len(x.shape) > 2 else ""
        raise LinAlgError(f"linalg.inv: {where}The diagonal element "
                          f"{int(info[first]) if bad.size else 1} is zero, the inversion could not "
                          f"be completed because the input matrix is singular.") from None


def _vjp_inv(b, g, x, out):
    oH = _mH(b, out)            # -A^-H g A^-H (a plain transpose is wrong for complex A)
    return (b.neg(b.matmul(b.matmul(oH, g), oH)),)


register(Prim("inv", "extern", _inv_meta, None, _vjp_inv, saves=(), saves_output=True,
              grad_name="LinalgInvExBackward0", xp=_inv_xp))


def _det_meta(x):
    _square("det", x)
    return AVal(x.shape[:-2], x.dtype)


def _vjp_det(b, g, x, out):
    # d det / dA = det * A^{-T}, so the gradient is g conj(det) A^{-H}. Where det is 0 the
    # inverse does not exist (inv would raise): invert the identity there instead, so the
    # gradient is det * I = 0, PyTorch's first-order value at a singular matrix (its solve
    # with an eps-perturbed LU times det = 0).
    n = x.shape[-1]
    ge = b.reshape(b.mul(g, b.conj(out) if out.dtype.is_complex else out),
                   shape=tuple(g.shape) + (1, 1))
    eye = b.cast(b.eq(b.reshape(b.arange(start=0, end=n, step=1, dtype=dt.int64), shape=(n, 1)),
                      b.arange(start=0, end=n, step=1, dtype=dt.int64)), dtype=x.dtype)
    sing = b.eq(b.reshape(out, shape=tuple(out.shape) + (1, 1)), 0)
    return (b.mul(ge, _mH(b, b.inv(b.where(sing, eye, x)))),)


def _det_xp(xp, out, x):
    r = xp.asarray(xp.linalg.det(x))
    # LAPACK's getrf can report a NaN column as a zero pivot, and NumPy then answers 0; torch's
    # product of the LU diagonal is NaN there
    nan = xp.isnan(x).any(axis=(-2, -1))
    return xp.where(nan, xp.asarray(np.nan, r.dtype), r) if x.dtype.kind in "fc" else r


register(Prim("det", "extern", _det_meta, None, _vjp_det, saves_output=True,
              grad_name="LinalgDetBackward0", xp=_det_xp))


def _solve_meta(a, c):
    _square("solve", a)
    if c.shape[-2 if len(c.shape) > 1 else 0] != a.shape[-1] and len(c.shape) > 1:
        raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation AX = B "
                           f"({'x'.join(map(str, a.shape[-2:]))} and {'x'.join(map(str, c.shape[-2:]))})")
    if len(c.shape) < 2:
        raise RuntimeError("linalg.solve: B must be at least a matrix here; the front end lifts vectors")
    batch = broadcast_shapes("solve", a.shape[:-2], c.shape[:-2])
    return AVal(batch + tuple(c.shape[-2:]), dt.promote_types(a.dtype, c.dtype))


def _solve_xp(xp, out, a, c):
    try:
        with _failures_raise(xp):
            return xp.linalg.solve(a, c)
    except np.linalg.LinAlgError:
        info = np.asarray(_host_ints(xp, _lu_xp(xp, None, a)[2])).reshape(-1)
        bad = np.flatnonzero(info)
        where = f"(Batch element {int(bad[0])}): " if len(a.shape) > 2 and bad.size else ""
        raise LinAlgError(f"torch.linalg.solve: {where}The solver failed because the input matrix "
                          f"is singular.") from None


def _vjp_solve(b, g, a, c, out):
    # gB = A^-H g, gA = -gB X^H (conjugate transposes for complex operands)
    gb = b.solve(_mH(b, a), g)
    ga = b.neg(b.matmul(gb, _mH(b, out)))
    return (_real_like(b, sum_to(b, ga, a.shape), a), _real_like(b, sum_to(b, gb, c.shape), c))


register(Prim("solve", "extern", _solve_meta, None, _vjp_solve, saves=(0,), saves_output=True,
              grad_name="LinalgSolveExBackward0", xp=_solve_xp))


def _no_half(kernel, x):
    """PyTorch's cpu linalg kernels take float32/float64/complex only."""
    if x.dtype in (dt.float16, dt.bfloat16):
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{dt.tname(x.dtype)}'")


def _cholesky_meta(x, upper=False, check_errors=True, name="linalg.cholesky"):
    _square("cholesky", x)
    _no_half("cholesky_cpu", x)
    return (AVal(x.shape, x.dtype), AVal(x.shape[:-2], dt.int32))


def _host_ints(xp, a):
    return np.asarray(a.get() if xp is not np else a)


def _cholesky_columns(xp, a):
    """Left-looking (Crout) Cholesky of the lower triangles of a batch, column by column,
    stopping per matrix at the first pivot that is not positive (or NaN): LAPACK's potrf
    semantics. Returns (L, info): info is the order of the first leading minor that is not
    positive-definite (0 where the factorization completed); where it failed, L holds the
    finished columns, the failing pivot's value on the diagonal and A's lower triangle after."""
    n = a.shape[-1]
    batch = a.shape[:-2]
    L = xp.tril(a).copy()
    info = xp.zeros(batch, dtype=np.int32)
    ok = xp.ones(batch, dtype=bool)
    with np.errstate(all="ignore"):
        for j in range(n):
            lj = L[..., j, :j]
            d = xp.real(a[..., j, j]) - xp.sum(xp.real(lj * xp.conj(lj)), axis=-1)
            bad = ok & ~(d > 0)
            info = xp.where(bad, np.int32(j + 1), info)
            ok = ok & ~bad
            s = xp.sqrt(xp.where(ok, d, 1))
            col = (a[..., j + 1:, j] - (L[..., j + 1:, :j] @ xp.conj(lj)[..., :, None])[..., 0]) \
                / s[..., None]
            L[..., j, j] = xp.where(ok, s, xp.where(bad, d, xp.real(L[..., j, j])))
            L[..., j + 1:, j] = xp.where(ok[..., None], col, L[..., j + 1:, j])
    return L, info


def _cholesky_xp(xp, out, x, upper=False, check_errors=True, name="linalg.cholesky"):
    try:
        with _failures_raise(xp):
            L = xp.linalg.cholesky(x)
        if x.shape[-1] and bool(xp.isnan(xp.diagonal(L, 0, -2, -1)).any()):
            raise np.linalg.LinAlgError     # a NaN pivot LAPACK's driver let through
        info = xp.zeros(x.shape[:-2], dtype=np.int32)
    except np.linalg.LinAlgError:
        L, info = _cholesky_columns(xp, x)
        if check_errors:
            flat = _host_ints(xp, info).reshape(-1)
            first = int(np.flatnonzero(flat)[0])
            where = f"(Batch element {first}): " if len(x.shape) > 2 else ""
            raise LinAlgError(f"{name}: {where}The factorization could not be completed because "
                              f"the input is not positive-definite (the leading minor of order "
                              f"{int(flat[first])} is not positive-definite).") from None
    if upper:
        L = xp.conj(xp.swapaxes(L, -1, -2))
    return L, info


def _vjp_cholesky(b, gs, x, out, upper=False, check_errors=True, name=None):
    # PyTorch's cholesky_backward (Iain Murray, arXiv 1602.07527):
    #   A_bar = L^-H S L^-1, S the Hermitian part of Phi = tril(L^H L_bar), diagonal halved
    gL, L = gs[0], out[0]
    if gL is None:
        return (None,)
    if upper:
        L, gL = _mH(b, L), _mH(b, gL)
    LH = _mH(b, L)
    P = _tril(b, b.matmul(LH, gL), 0)
    P = b.sub(P, b.mul(_triu(b, P, 0), 0.5))                        # (diagonal halved)
    P = b.mul(b.add(P, _mH(b, P)), 0.5)
    P = b.solve_triangular(LH, P, upper=True)                        # L^-H S
    return (_mH(b, b.solve_triangular(LH, _mH(b, P), upper=True)),)  # (L^-H (..)^H)^H = .. L^-1


register(Prim("cholesky", "extern", _cholesky_meta, None, _vjp_cholesky, nout=2, saves=(),
              saves_output=True, grad_name="LinalgCholeskyExBackward0", xp=_cholesky_xp))


# solve_triangular: A X = B with A (a batch of) triangular matrices ---------------------------

def _solve_triangular_meta(a, c, upper, unitriangular=False):
    _square_shape("solve_triangular", a)
    if not (a.dtype.is_floating_point or a.dtype.is_complex):
        raise NotImplementedError(f"\"triangular_solve_cpu\" not implemented for "
                                  f"'{dt.tname(a.dtype)}'")
    _no_half("triangular_solve_cpu", a)
    if len(c.shape) < 2:
        raise RuntimeError("linalg.solve_triangular: The input tensor B must have at least 2 "
                           "dimensions.")
    if c.shape[-2] != a.shape[-1]:
        raise RuntimeError(f"linalg.solve_triangular: Incompatible shapes of A and B for the "
                           f"equation AX = B ({'x'.join(map(str, a.shape[-2:]))} and "
                           f"{'x'.join(map(str, c.shape[-2:]))})")
    if c.dtype is not a.dtype:
        raise RuntimeError(f"linalg.solve_triangular: Expected A and B to have the same dtype, "
                           f"but found A of type {dt.tname(a.dtype)} and B of type "
                           f"{dt.tname(c.dtype)} instead")
    batch = broadcast_shapes("linalg.solve_triangular", tuple(a.shape[:-2]), tuple(c.shape[:-2]))
    return AVal(batch + tuple(c.shape[-2:]), a.dtype)


def _substitute(xp, a, c, upper, unit):
    """Row-by-row substitution: only the triangle (the diagonal too unless unit) is read."""
    n = a.shape[-1]
    x = xp.empty(c.shape, c.dtype)
    for i in (range(n - 1, -1, -1) if upper else range(n)):
        r = c[..., i, :]
        if upper and i + 1 < n:
            r = r - (a[..., i:i + 1, i + 1:] @ x[..., i + 1:, :])[..., 0, :]
        elif not upper and i > 0:
            r = r - (a[..., i:i + 1, :i] @ x[..., :i, :])[..., 0, :]
        x[..., i, :] = r if unit else r / a[..., i, i, None]
    return x


def _trsm(xp, a, c, upper, unit):
    """Triangular solve by halves (the off-diagonal block is one matmul), substitution on
    blocks of 16 rows or fewer."""
    n = a.shape[-1]
    if n <= 16:
        return _substitute(xp, a, c, upper, unit)
    h = n // 2
    if upper:
        x2 = _trsm(xp, a[..., h:, h:], c[..., h:, :], upper, unit)
        x1 = _trsm(xp, a[..., :h, :h], c[..., :h, :] - a[..., :h, h:] @ x2, upper, unit)
    else:
        x1 = _trsm(xp, a[..., :h, :h], c[..., :h, :], upper, unit)
        x2 = _trsm(xp, a[..., h:, h:], c[..., h:, :] - a[..., h:, :h] @ x1, upper, unit)
    return xp.concatenate([x1, x2], axis=-2)


def _solve_triangular_xp(xp, out, a, c, upper, unitriangular=False):
    # a substitution, not an LU solve: a zero on the diagonal gives inf/nan as LAPACK's trtrs
    # does in PyTorch, never an error; works the same on CuPy arrays (matmuls per block)
    batch = tuple(out.shape[:-2])
    n, k = a.shape[-1], c.shape[-1]
    a = xp.broadcast_to(a, batch + (n, n))
    c = xp.broadcast_to(c, batch + (n, k))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _trsm(xp, a, c, bool(upper), bool(unitriangular))


def _vjp_solve_triangular(b, g, a, c, out, upper, unitriangular=False):
    # PyTorch's linalg_solve_triangular_backward (left=True):
    #   B_bar = A^-H X_bar;  A_bar = -B_bar X^H on A's triangle (strict when unitriangular)
    gb = b.solve_triangular(_mH(b, a), g, upper=not upper, unitriangular=unitriangular)
    ga = None
    if wants(b, 0):
        ga = b.neg(b.matmul(gb, _mH(b, out)))
        k = 1 if unitriangular else 0
        ga = sum_to(b, _triu(b, ga, k) if upper else _tril(b, ga, -k), a.shape)
    return (ga, sum_to(b, gb, c.shape) if wants(b, 1) else None)


register(Prim("solve_triangular", "extern", _solve_triangular_meta, None, _vjp_solve_triangular,
              saves=(0,), saves_output=True, grad_name="LinalgSolveTriangularBackward0",
              xp=_solve_triangular_xp))


def _eigh_meta(x, UPLO="L"):
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    _square("eigh", x)
    float_input("eigh", x)
    n = x.shape[-1]
    real = dt.float32 if x.dtype is dt.complex64 else dt.float64 if x.dtype is dt.complex128 \
        else x.dtype
    return (AVal(tuple(x.shape[:-1]), real), AVal(tuple(x.shape[:-2]) + (n, n), x.dtype))


def _eigh_xp(xp, out, x, UPLO="L"):
    w, v = xp.linalg.eigh(x, UPLO=UPLO)
    return w.astype(out[0].dtype.np, copy=False), v.astype(out[1].dtype.np, copy=False)


def _vjp_eigh(b, gs, x, out, UPLO="L"):
    # PyTorch's linalg_eig_backward, Hermitian case: with E_ij = L_j - L_i (1 on the
    # diagonal), gA = V (skew(V^H gV) / E, with gL on the diagonal) V^H
    gl, gv = gs
    w, v = out
    n = x.shape[-1]
    if gv is not None:
        vg = b.matmul(_mH(b, v), gv)
        inner = b.mul(b.sub(vg, _mH(b, vg)), 0.5)
        bt = tuple(w.shape[:-1])
        e = b.sub(b.reshape(w, shape=bt + (1, n)), b.reshape(w, shape=bt + (n, 1)))
        eye = b.cast(b.eq(b.reshape(b.arange(start=0, end=n, step=1, dtype=dt.int64),
                                    shape=(n, 1)),
                          b.reshape(b.arange(start=0, end=n, step=1, dtype=dt.int64),
                                    shape=(1, n))), dtype=w.dtype)
        inner = b.div(inner, b.add(e, eye))           # (the diagonal is replaced below)
        inner = b.mul(inner, b.sub(1, eye))
        if gl is not None:
            inner = b.add(inner, b.diag_embed(gl))
    else:
        inner = b.diag_embed(gl)
    if v.dtype.is_complex and not inner.dtype.is_complex:     # (eigenvalues only: gL is real)
        inner = b.cast(inner, dtype=v.dtype)
    return (b.matmul(v, b.matmul(inner, _mH(b, v))),)


register(Prim("eigh", "extern", _eigh_meta, None, _vjp_eigh, nout=2, saves=(),
              saves_output=True, grad_name="LinalgEighBackward0", xp=_eigh_xp,
              doc="eigenvalues (ascending) and eigenvectors of a symmetric matrix"))


def _qr_meta(x, mode="reduced"):
    if mode not in ("reduced", "complete"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' "
                           f"(default), 'r', or 'complete'")
    if len(x.shape) < 2:
        raise RuntimeError(f"linalg.qr: The input tensor A must have at least 2 dimensions "
                           f"(shape {list(x.shape)})")
    float_input("qr", x)
    m, n = x.shape[-2:]
    k = min(m, n)
    batch = tuple(x.shape[:-2])
    if mode == "complete":
        return (AVal(batch + (m, m), x.dtype), AVal(batch + (m, n), x.dtype))
    return (AVal(batch + (m, k), x.dtype), AVal(batch + (k, n), x.dtype))


def _qr_xp(xp, out, x, mode="reduced"):
    q, r = xp.linalg.qr(x, mode="complete" if mode == "complete" else "reduced")
    return q, r


def _vjp_qr(b, gs, x, out, mode="reduced"):
    # Walter & Lehmann / PyTorch's linalg_qr_backward for m >= n, reduced mode
    gq, gr = gs
    q, r = out
    m, n = x.shape[-2:]
    if mode != "reduced" or m < n:
        raise NotImplementedError("linalg.qr: gradient implemented for reduced mode with m >= n")
    gq = gq if gq is not None else b.full(shape=q.shape, value=0, dtype=q.dtype)
    gr = gr if gr is not None else b.full(shape=r.shape, value=0, dtype=r.dtype)
    # gA = (gQ + Q S) R^-H with Y = triu(gR R^H - Q^H gQ), S = Y + Y^H (its diagonal the
    # real part of Y's): conjugate transposes, so complex A is right too
    Y = _triu(b, b.sub(b.matmul(gr, _mH(b, r)), b.matmul(_mH(b, q), gq)), 0)
    D = _tril(b, Y, 0)
    if D.dtype.is_complex:
        D = b.cast(b.real(D), dtype=D.dtype)
    S = b.sub(b.add(Y, _mH(b, Y)), D)
    rhs = b.add(gq, b.matmul(q, S))
    gx = _mH(b, b.solve_triangular(r, _mH(b, rhs), upper=True))   # rhs R^-H = (R^-1 rhs^H)^H
    return (gx,)


def _tril(b, m, k):
    n1, n2 = m.shape[-2:]
    i = b.reshape(b.arange(start=0, end=n1, step=1, dtype=dt.int64), shape=(n1, 1))
    j = b.reshape(b.arange(start=0, end=n2, step=1, dtype=dt.int64), shape=(1, n2))
    return b.where(b.le(b.sub(j, i), k), m, 0.0)


def _triu(b, m, k):
    n1, n2 = m.shape[-2:]
    i = b.reshape(b.arange(start=0, end=n1, step=1, dtype=dt.int64), shape=(n1, 1))
    j = b.reshape(b.arange(start=0, end=n2, step=1, dtype=dt.int64), shape=(1, n2))
    return b.where(b.ge(b.sub(j, i), k), m, 0.0)


register(Prim("qr", "extern", _qr_meta, None, _vjp_qr, nout=2, saves=(), saves_output=True,
              grad_name="LinalgQrBackward0", xp=_qr_xp))


def _geqrf_meta(x):
    if len(x.shape) < 2:
        raise RuntimeError(f"torch.geqrf: input must have at least 2 dimensions. (shape "
                           f"{list(x.shape)})")
    if not (x.dtype.is_floating_point or x.dtype.is_complex) or \
            x.dtype in (dt.float16, dt.bfloat16):
        raise NotImplementedError(f"\"geqrf_cpu\" not implemented for '{dt.tname(x.dtype)}'")
    m, n = x.shape[-2:]
    return (AVal(tuple(x.shape), x.dtype), AVal(tuple(x.shape[:-2]) + (min(m, n),), x.dtype))


def _geqrf_xp(xp, out, x):
    # LAPACK's geqrf: R on and above the diagonal, the Householder vectors below it, and their
    # scales tau (NumPy's qr(mode="raw") answers the Fortran-ordered, i.e. transposed, factor)
    if x.size == 0:
        return xp.zeros(out[0].shape, x.dtype), xp.zeros(out[1].shape, x.dtype)
    h, tau = xp.linalg.qr(x, mode="raw")
    a = xp.ascontiguousarray(xp.swapaxes(h, -1, -2))
    return a.astype(out[0].dtype.np, copy=False), tau.astype(out[1].dtype.np, copy=False)


register(Prim("geqrf", "extern", _geqrf_meta, None, nout=2, differentiable=False, xp=_geqrf_xp,
              doc="QR in LAPACK's packed form (Householder reflectors and tau)"))


def _svd_meta(x, full_matrices=True):
    if len(x.shape) < 2:
        raise RuntimeError(f"linalg.svd: The input tensor A must have at least 2 dimensions "
                           f"(shape {list(x.shape)})")
    float_input("svd", x)
    m, n = x.shape[-2:]
    k = min(m, n)
    batch = tuple(x.shape[:-2])
    sd = x.dtype.to_real()          # singular values are real, also for complex A
    if full_matrices:
        return (AVal(batch + (m, m), x.dtype), AVal(batch + (k,), sd), AVal(batch + (n, n), x.dtype))
    return (AVal(batch + (m, k), x.dtype), AVal(batch + (k,), sd), AVal(batch + (k, n), x.dtype))


def _svd_xp(xp, out, x, full_matrices=True):
    u, s, vh = xp.linalg.svd(x, full_matrices=full_matrices)
    return u, s, vh


def _vjp_svd(b, gs, x, out, full_matrices=True):
    # PyTorch's svd_backward, with k = min(m, n) (^H: conjugate transpose):
    #   A_bar = U [(skew(U^H U_bar) / E) S + S (skew(V^H V_bar) / E) + diag(S_bar)] V^H
    #   (E_ij = s_j^2 - s_i^2, 1 on the diagonal) plus the terms a tall U / wide V adds
    gU, gS, gVh = gs
    U, S, Vh = out
    m, n = x.shape[-2:]
    k = min(m, n)
    nd = len(x.shape)
    if full_matrices and m != n:
        if (gU is not None and m > n) or (gVh is not None and m < n):
            raise NotImplementedError("linalg.svd: the gradient with respect to U or Vh is only "
                                      "defined for full_matrices=False (non-square input)")
        U = b.slice(U, dim=nd - 1, start=0, stop=k, step=1)
        Vh = b.slice(Vh, dim=nd - 2, start=0, stop=k, step=1)
        gU = None if gU is None else b.slice(gU, dim=nd - 1, start=0, stop=k, step=1)
        gVh = None if gVh is None else b.slice(gVh, dim=nd - 2, start=0, stop=k, step=1)
    row = lambda v: b.reshape(v, shape=tuple(v.shape[:-1]) + (1, k))     # noqa: E731
    col = lambda v: b.reshape(v, shape=tuple(v.shape[:-1]) + (k, 1))     # noqa: E731
    if gU is None and gVh is None:
        return (b.matmul(b.mul(U, row(gS)), Vh) if gS is not None else None,)
    S2 = b.mul(S, S)
    eye = b.cast(b.eq(b.reshape(b.arange(start=0, end=k, step=1, dtype=dt.int64), shape=(k, 1)),
                      b.reshape(b.arange(start=0, end=k, step=1, dtype=dt.int64), shape=(1, k))),
                 dtype=x.dtype)
    E = b.add(b.sub(row(S2), col(S2)), eye)
    skew = lambda a: b.sub(a, _mH(b, a))                                  # noqa: E731
    V = _mH(b, Vh)
    gV = None if gVh is None else _mH(b, gVh)
    gA = None
    UhgU = None if gU is None else skew(b.matmul(_mH(b, U), gU))
    if gU is not None:
        gA = b.mul(b.div(UhgU, E), row(S))
    if gV is not None:
        t = b.mul(col(S), b.div(skew(b.matmul(Vh, gV)), E))
        gA = t if gA is None else b.add(gA, t)
    if gS is not None:
        gA = b.add(gA, b.diag_embed(gS))
    if gU is not None and UhgU.dtype.is_complex:    # PyTorch's diag(U^H gU) / (2 S) term
        gA = b.add(gA, b.diag_embed(b.div(b.diagonal(UhgU, offset=0, dim1=-2, dim2=-1),
                                          b.mul(S, 2.0))))
    if m > n and gU is not None:
        gA = b.matmul(U, gA)
        gUS = b.div(gU, row(S))
        gA = b.sub(b.add(gA, gUS), b.matmul(U, b.matmul(_mH(b, U), gUS)))
        gA = b.matmul(gA, Vh)
    elif m < n and gV is not None:
        gA = b.matmul(gA, Vh)
        gVS = b.div(gV, row(S))
        gA = b.add(gA, _mH(b, b.sub(gVS, b.matmul(V, b.matmul(Vh, gVS)))))
        gA = b.matmul(U, gA)
    else:
        gA = b.matmul(U, b.matmul(gA, Vh))
    return (gA,)


register(Prim("svd", "extern", _svd_meta, None, _vjp_svd, nout=3, saves=(), saves_output=True,
              grad_name="LinalgSvdBackward0", xp=_svd_xp))


def _eig_meta(x):
    _square("eig", x)
    c = dt.complex128 if x.dtype in (dt.float64, dt.complex128) else dt.complex64
    return (AVal(tuple(x.shape[:-1]), c), AVal(tuple(x.shape), c))


def _eig_np(out, x):
    if not np.isfinite(x).all():        # (NumPy's LinAlgError is a ValueError)
        raise RuntimeError("torch.linalg.eig: input tensor should not contain infs or NaNs.")
    w, v = np.linalg.eig(x)
    return w.astype(out[0].dtype.np), v.astype(out[1].dtype.np)


def _vjp_eig(b, gs, x, out):
    # PyTorch's linalg_eig_backward (not Hermitian; V's columns have norm 1):
    #   eigenvalues only:  gA = V^-H diag(gL) V^H
    #   else:              gA = V^-H ((P(V^H gV) / conj(E)) with gL on the diagonal) V^H,
    #   E_ij = L_j - L_i, P(X) = X - V^H V diag(re X_ii) the projection onto the tangent space
    #   of unit-norm columns; the loss must not depend on the columns' phases (eig_phase_check)
    gl, gv = gs
    w, v = out
    n = x.shape[-1]
    bt = tuple(w.shape[:-1])
    vh = _mH(b, v)
    if gv is None:
        ga = b.solve(vh, b.mul(b.reshape(gl, shape=bt + (n, 1)), vh))
    else:
        vg = b.eig_phase_check(b.matmul(vh, gv))
        re = b.real(b.diagonal(vg, offset=0, dim1=-2, dim2=-1))
        vg = b.sub(vg, b.matmul(vh, b.mul(v, b.reshape(re, shape=bt + (1, n)))))
        wc = b.conj(w)
        e = b.sub(b.reshape(wc, shape=bt + (1, n)), b.reshape(wc, shape=bt + (n, 1)))
        e = b.diagonal_scatter(e, b.full(shape=bt + (n,), value=1, dtype=e.dtype), offset=0,
                               dim1=-2, dim2=-1)
        inner = b.div(vg, e)
        if gl is not None:
            inner = b.diagonal_scatter(inner, b.cast(gl, dtype=inner.dtype), offset=0, dim1=-2,
                                       dim2=-1)
        ga = b.solve(vh, b.matmul(inner, vh))
    return (_real_like(b, ga, x),)


register(Prim("eig", "extern", _eig_meta, _eig_np, _vjp_eig, nout=2, saves=(), saves_output=True,
              grad_name="LinalgEigBackward0"))


# eig_phase_check(X) -> X, X = V^H gV in eig's backward: PyTorch refuses a loss that depends on
# the phases of the eigenvectors (each column is defined up to e^{i phi}): the diagonal of X
# must be real (its allclose(imag, 0, rtol=1e-2, atol=1e-2); a NaN fails it too)
_EIG_PHASE = ("linalg_eig_backward: The eigenvectors in the complex case are specified up to "
              "multiplication by e^{i phi}. The specified loss function depends on this "
              "quantity, so it is ill-defined.")


def _eig_phase_check_meta(x):
    _square_shape("eig_phase_check", x)
    return AVal(tuple(x.shape), x.dtype)


def _eig_phase_check_xp(xp, out, x):
    im = xp.abs(xp.imag(xp.diagonal(x, 0, -2, -1)))
    if im.size and not bool(xp.all(im <= 1e-2)):
        worst = float(xp.nanmax(im)) if bool(xp.all(im == im)) else float("nan")
        raise RuntimeError(f"{_EIG_PHASE} (largest |imag| of diag(V^H gV): {worst:.3g}, shape "
                           f"{list(x.shape)})")
    return x.copy()       # a value of its own: the memory planner treats the result as fresh


register(Prim("eig_phase_check", "extern", _eig_phase_check_meta, None, saves=(),
              differentiable=False, xp=_eig_phase_check_xp,
              doc="eig backward's check that the loss ignores the eigenvectors' phases"))


def _diag_embed_meta(x):
    n = x.shape[-1]
    return AVal(tuple(x.shape) + (n,), x.dtype)


def _diag_embed_np(out, x):
    n = x.shape[-1]
    r = np.zeros(out.shape, x.dtype)
    i = np.arange(n)
    r[..., i, i] = x
    return r


register(Prim("diag_embed", "scatter", _diag_embed_meta, _diag_embed_np,
              lambda b, g, x, out=None: (b.diagonal(g, offset=0, dim1=-2, dim2=-1),), saves=()))


# LU with partial pivoting (getrf) --------------------------------------------------------------

def _lu_meta(x, pivot=True):
    if len(x.shape) < 2:
        raise RuntimeError(f"linalg.lu_factor: The input tensor A must have at least 2 dimensions "
                           f"(shape {list(x.shape)}).")
    if not (x.dtype.is_floating_point or x.dtype.is_complex):
        raise NotImplementedError(f"\"lu_cpu\" not implemented for '{dt.tname(x.dtype)}'")
    _no_half("lu_cpu", x)
    if not pivot:
        raise RuntimeError("linalg.lu_factor: LU without pivoting is not implemented on the CPU")
    m, n = x.shape[-2:]
    batch = tuple(x.shape[:-2])
    return (AVal(tuple(x.shape), x.dtype), AVal(batch + (min(m, n),), dt.int32),
            AVal(batch, dt.int32))


def _lu_xp(xp, out, x, pivot=True):
    """Right-looking LU with partial pivoting over a batch (LAPACK getrf's results): LU packed
    (unit L strictly below the diagonal, U on and above), pivots 1-based (row j was swapped with
    row pivots[j] - 1 at step j), info the 1-based index of the first zero pivot (0 if none). A
    zero pivot column is left unscaled and the factorization goes on, as getrf does."""
    m, n = x.shape[-2:]
    k = min(m, n)
    batch = tuple(x.shape[:-2])
    LU = xp.array(x, copy=True).reshape((int(np.prod(batch, dtype=np.int64)), m, n))
    B = LU.shape[0]
    piv = xp.zeros((B, k), np.int32)
    info = xp.zeros((B,), np.int32)
    ar = xp.arange(B)
    with np.errstate(all="ignore"):
        for j in range(k):
            p = xp.argmax(xp.abs(LU[:, j:, j]), axis=-1) + j
            rj = LU[ar, j, :].copy()
            LU[ar, j, :] = LU[ar, p, :]
            LU[ar, p, :] = rj
            piv[:, j] = (p + 1).astype(np.int32)
            d = LU[:, j, j]
            zero = d == 0
            info = xp.where((info == 0) & zero, np.int32(j + 1), info)
            col = LU[:, j + 1:, j]
            col = xp.where(zero[:, None], col, col / xp.where(zero, 1, d)[:, None])
            LU[:, j + 1:, j] = col
            if j + 1 < n:
                LU[:, j + 1:, j + 1:] -= col[:, :, None] * LU[:, j, None, j + 1:]
    return LU.reshape(x.shape), piv.reshape(batch + (k,)), info.reshape(batch)


def _perm_matrix(b, pivots, m, dtype):
    """P with A = P L U from getrf's pivots: P[r, c] = 1 where perm[c] == r."""
    perm = b.lu_pivots_to_perm(pivots, m=m)
    r = b.reshape(b.arange(start=0, end=m, step=1, dtype=dt.int64), shape=(m, 1))
    pm = b.reshape(perm, shape=tuple(perm.shape[:-1]) + (1, m))
    return b.cast(b.eq(pm, r), dtype=dtype)


def _vjp_lu(b, gs, x, out, pivot=True):
    # PyTorch's linalg_lu_backward for square A = P L U (Giles, "Collected matrix derivative
    # results", and arXiv 2009.10071):  A_bar = P L^-H (tril(L^H L_bar, -1) + triu(U_bar U^H)) U^-H
    # with L_bar / U_bar the strict-lower / upper parts of the packed LU's gradient
    gLU = gs[0]
    LU, piv = out[0], out[1]
    m, n = x.shape[-2:]
    if gLU is None:
        return (None,)
    if m != n:
        raise NotImplementedError(f"linalg.lu_factor: the gradient is implemented for square "
                                  f"matrices only (got shape {list(x.shape)})")
    eye = b.cast(b.eq(b.reshape(b.arange(start=0, end=n, step=1, dtype=dt.int64), shape=(n, 1)),
                      b.reshape(b.arange(start=0, end=n, step=1, dtype=dt.int64), shape=(1, n))),
                 dtype=x.dtype)
    L = b.add(_tril(b, LU, -1), eye)
    U = _triu(b, LU, 0)
    phi = b.add(_tril(b, b.matmul(_mH(b, L), _tril(b, gLU, -1)), -1),
                _triu(b, b.matmul(_triu(b, gLU, 0), _mH(b, U)), 0))
    # L^-H phi: solve L^H Y = phi (upper, unit diagonal); then Y U^-H = (U^-1 Y^H)^H
    Y = b.solve_triangular(_mH(b, L), phi, upper=True, unitriangular=True)
    Z = _mH(b, b.solve_triangular(U, _mH(b, Y), upper=True, unitriangular=False))
    return (b.matmul(_perm_matrix(b, piv, n, x.dtype), Z),)


register(Prim("lu_factor", "extern", _lu_meta, None, _vjp_lu, nout=3, saves=(), saves_output=True,
              grad_name="LinalgLuFactorExBackward0", xp=_lu_xp))


def _pivots_perm_meta(p, m):
    return AVal(tuple(p.shape[:-1]) + (m,), dt.int64)


def _pivots_perm_xp(xp, out, p, m):
    """The row order getrf's sequential swaps produce: (P^T A)[i] = A[perm[i]]."""
    k = p.shape[-1]
    pf = p.reshape((int(np.prod(p.shape[:-1], dtype=np.int64)), k)).astype(np.int64) - 1
    B = pf.shape[0]
    perm = xp.broadcast_to(xp.arange(m, dtype=np.int64), (B, m)).copy()
    ar = xp.arange(B)
    for j in range(k):
        t = pf[:, j]
        a, c = perm[ar, j].copy(), perm[ar, t].copy()
        perm[ar, j] = c
        perm[ar, t] = a
    return perm.reshape(tuple(p.shape[:-1]) + (m,))


register(Prim("lu_pivots_to_perm", "extern", _pivots_perm_meta, None, differentiable=False,
              xp=_pivots_perm_xp))


# matrix exponential ---------------------------------------------------------------------------

_PADE13 = (64764752532480000., 32382376266240000., 7771770303897600., 1187353796428800.,
           129060195264000., 10559470521600., 670442572800., 33522128640., 1323241920.,
           40840800., 960960., 16380., 182., 1.)


def _matrix_exp_meta(x):
    _square("matrix_exp", x)
    _no_half("linalg_matrix_exp", x)
    return AVal(tuple(x.shape), x.dtype)


def _matrix_exp_xp(xp, out, x):
    """Scaling and squaring with the degree-13 Pade approximant (Higham 2005), each matrix of
    the batch scaled by its own power of two; computed in double precision."""
    n = x.shape[-1]
    if n == 0 or x.size == 0:
        return xp.zeros(x.shape, x.dtype)
    cd = np.complex128 if x.dtype.kind == "c" else np.float64
    A = x.astype(cd).reshape((-1, n, n))
    with np.errstate(all="ignore"):
        nrm = xp.abs(A).sum(axis=-2).max(axis=-1)
        s = xp.ceil(xp.log2(nrm / 5.371920351148152))
        s = xp.where(xp.isfinite(s) & (s > 0), s, 0).astype(np.int64)
        A = A / (2.0 ** s)[:, None, None]
        I = xp.broadcast_to(xp.eye(n, dtype=cd), A.shape)
        c = _PADE13
        A2 = A @ A
        A4 = A2 @ A2
        A6 = A4 @ A2
        U = A @ (A6 @ (c[13] * A6 + c[11] * A4 + c[9] * A2) + c[7] * A6 + c[5] * A4 + c[3] * A2
                 + c[1] * I)
        V = A6 @ (c[12] * A6 + c[10] * A4 + c[8] * A2) + c[6] * A6 + c[4] * A4 + c[2] * A2 + c[0] * I
        R = xp.linalg.solve(V - U, V + U)
        for i in range(int(s.max()) if s.size else 0):
            R = xp.where((i < s)[:, None, None], R @ R, R)
    return R.reshape(x.shape).astype(x.dtype, copy=False)


def _vjp_matrix_exp(b, g, x, out=None):
    # the Frechet derivative's adjoint: A_bar is the upper-right block of
    # exp([[A^H, G], [0, A^H]]) (PyTorch's backward for matrix_exp)
    n = x.shape[-1]
    At = _mH(b, x)
    z = b.full(shape=tuple(g.shape), value=0, dtype=g.dtype)
    top = b.cat(At, g, dim=len(x.shape) - 1)
    bot = b.cat(z, At, dim=len(x.shape) - 1)
    E = b.matrix_exp(b.cat(top, bot, dim=len(x.shape) - 2))
    E = b.slice(E, dim=len(x.shape) - 2, start=0, stop=n, step=1)
    return (b.slice(E, dim=len(x.shape) - 1, start=n, stop=2 * n, step=1),)


register(Prim("matrix_exp", "extern", _matrix_exp_meta, None, _vjp_matrix_exp, saves=(0,),
              grad_name="LinalgMatrixExpBackward0", xp=_matrix_exp_xp))


# pseudo-inverse ---------------------------------------------------------------------------------

def _pinv_meta(x, atol=0.0, rtol=0.0):
    if len(x.shape) < 2 or not (x.dtype.is_floating_point or x.dtype.is_complex):
        raise RuntimeError(f"linalg.pinv({dt.tname(x.dtype)}{{{list(x.shape)}}}): expected a "
                           f"tensor with 2 or more dimensions of float, double, cfloat or "
                           f"cdouble types")
    _no_half("linalg_pinv", x)
    return AVal(tuple(x.shape[:-2]) + (x.shape[-1], x.shape[-2]), x.dtype)


def _pinv_xp(xp, out, x, atol=0.0, rtol=0.0):
    """Through the SVD: singular values at or below max(atol, rtol * sigma_max) count as 0."""
    m, n = x.shape[-2:]
    if min(m, n) == 0:
        return xp.zeros(out.shape, x.dtype)
    u, s, vh = xp.linalg.svd(x, full_matrices=False)
    tol = xp.maximum(atol, rtol * s[..., :1])
    with np.errstate(divide="ignore"):
        sinv = xp.where(s > tol, 1 / xp.where(s > tol, s, 1), 0).astype(s.dtype)
    vt = xp.conj(xp.swapaxes(vh, -1, -2))
    uh = xp.conj(xp.swapaxes(u, -1, -2))
    return ((vt * sinv[..., None, :]) @ uh).astype(x.dtype, copy=False)


def _vjp_pinv(b, g, x, out, atol=0.0, rtol=0.0):
    # Golub & Pereyra's derivative of X = A^+ (constant rank), as an adjoint:
    #   A_bar = -X^H G X^H + (I - A X) G^H X X^H + X^H X G^H (I - X A)
    X, XT, gT = out, _mH(b, out), _mH(b, g)      # (conjugate transposes, named T)
    t1 = b.neg(b.matmul(b.matmul(XT, g), XT))
    AXG = b.sub(gT, b.matmul(x, b.matmul(X, gT)))              # (I - A X) G^T
    t2 = b.matmul(AXG, b.matmul(X, XT))
    GXA = b.sub(gT, b.matmul(b.matmul(gT, X), x))              # G^T (I - X A)
    t3 = b.matmul(b.matmul(XT, X), GXA)
    return (b.add(b.add(t1, t2), t3),)


register(Prim("pinv", "extern", _pinv_meta, None, _vjp_pinv, saves=(0,), saves_output=True,
              grad_name="LinalgPinvBackward0", xp=_pinv_xp))


# LDL^T / LDL^H with Bunch-Kaufman pivoting (LAPACK sytrf/hetrf, sytrs/hetrs; lower triangle) ---

_BK_ALPHA = (1.0 + 17.0 ** 0.5) / 8.0


def _ldl_meta(x, hermitian=False):
    op = "torch.linalg.ldl_factor_ex"
    if len(x.shape) < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions.")
    if x.shape[-1] != x.shape[-2]:
        raise RuntimeError(f"{op}: A must be batches of square matrices, but they are "
                           f"{x.shape[-2]} by {x.shape[-1]} matrices")
    if not (x.dtype.is_floating_point or x.dtype.is_complex):
        raise RuntimeError(f"{op}: Expected a floating point or complex tensor as input. Got "
                           f"{dt.tname(x.dtype)}")
    _no_half("ldl_factor_kernel_cpu", x)
    batch = tuple(x.shape[:-2])
    return (AVal(tuple(x.shape), x.dtype), AVal(batch + (x.shape[-1],), dt.int32),
            AVal(batch, dt.int32))


def _iamax(v):
    """LAPACK i?amax: the first index of the largest |v| that beats the first element; a NaN
    never wins (the comparisons are false) unless it is the first."""
    if v.size == 0 or np.isnan(v[0]):
        return 0
    w = np.where(np.isnan(v), -np.inf, v)
    return int(np.argmax(w))


def _sytf2(a, herm):
    """Unblocked lower Bunch-Kaufman LDL^T (sytf2) or LDL^H (hetf2) of one matrix, in place;
    returns (pivots 1-based, negative on both rows of a 2x2 block; info). A NaN pivot goes on
    as MKL's does (MAX(NaN, x) is x there, so only an exactly zero column stops a step)."""
    n = a.shape[0]
    cx = a.dtype.kind == "c"
    herm = herm and cx
    ab1 = (lambda z: np.abs(z.real) + np.abs(z.imag)) if cx else np.abs     # LAPACK's cabs1
    dabs = (lambda z: abs(z.real)) if herm else ab1
    conj = np.conj if herm else (lambda z: z)
    piv = np.zeros(n, np.int32)
    info = 0
    k = 0
    while k < n:
        kstep = 1
        absakk = float(dabs(a[k, k]))
        imax, colmax = k, 0.0
        if k < n - 1:
            imax = k + 1 + _iamax(ab1(a[k + 1:, k]))
            colmax = float(ab1(a[imax, k]))
        big = colmax if np.isnan(absakk) or np.isnan(colmax) else max(absakk, colmax)
        if big == 0.0:
            info = info or k + 1
            kp = k
            if herm:
                a[k, k] = a[k, k].real
        else:
            if absakk >= _BK_ALPHA * colmax:
                kp = k
            else:
                jmax = k + _iamax(ab1(a[imax, k:imax]))
                rowmax = float(ab1(a[imax, jmax]))
                if imax < n - 1:
                    j2 = imax + 1 + _iamax(ab1(a[imax + 1:, imax]))
                    rowmax = max(rowmax, float(ab1(a[j2, imax])))
                if absakk >= _BK_ALPHA * colmax * (colmax / rowmax):
                    kp = k
                elif float(dabs(a[imax, imax])) >= _BK_ALPHA * rowmax:
                    kp = imax
                else:
                    kp, kstep = imax, 2
            kk = k + kstep - 1
            if kp != kk:        # interchange rows and columns kk and kp of the trailing matrix
                if kp < n - 1:
                    t = a[kp + 1:, kk].copy()
                    a[kp + 1:, kk] = a[kp + 1:, kp]
                    a[kp + 1:, kp] = t
                t = a[kk + 1:kp, kk].copy()
                a[kk + 1:kp, kk] = conj(a[kp, kk + 1:kp])
                a[kp, kk + 1:kp] = conj(t)
                if herm:
                    a[kp, kk] = np.conj(a[kp, kk])
                a[kk, kk], a[kp, kp] = a[kp, kp], a[kk, kk]
                if herm:
                    a[kk, kk], a[kp, kp] = a[kk, kk].real, a[kp, kp].real
                if kstep == 2:
                    if herm:
                        a[k, k] = a[k, k].real
                    a[k + 1, k], a[kp, k] = a[kp, k], a[k + 1, k]
            elif herm:
                a[k, k] = a[k, k].real
                if kstep == 2:
                    a[k + 1, k + 1] = a[k + 1, k + 1].real
            tri = np.tri(n - k - kstep, dtype=bool)         # the trailing lower triangle
            if kstep == 1 and k < n - 1:
                x = a[k + 1:, k].copy()
                d11 = 1.0 / (a[k, k].real if herm else a[k, k])
                sub = a[k + 1:, k + 1:]
                sub -= np.where(tri, np.multiply.outer(x, d11 * conj(x)), 0)
                if herm:
                    np.fill_diagonal(sub, sub.diagonal().real)
                a[k + 1:, k] = d11 * x
            elif kstep == 2 and k < n - 2:
                c0, c1 = a[k + 2:, k].copy(), a[k + 2:, k + 1].copy()
                if herm:
                    d = np.hypot(a[k + 1, k].real, a[k + 1, k].imag)
                    d11, d22 = a[k + 1, k + 1].real / d, a[k, k].real / d
                    tt = 1.0 / (d11 * d22 - 1.0)
                    d21 = a[k + 1, k] / d
                    d = tt / d
                    wk = d * (d11 * c0 - d21 * c1)
                    wkp1 = d * (d22 * c1 - np.conj(d21) * c0)
                else:
                    d21 = a[k + 1, k]
                    d11, d22 = a[k + 1, k + 1] / d21, a[k, k] / d21
                    d21 = (1.0 / (d11 * d22 - 1.0)) / d21
                    wk = d21 * (d11 * c0 - c1)
                    wkp1 = d21 * (d22 * c1 - c0)
                sub = a[k + 2:, k + 2:]
                sub -= np.where(tri, np.multiply.outer(c0, conj(wk)) +
                                np.multiply.outer(c1, conj(wkp1)), 0)
                if herm:
                    np.fill_diagonal(sub, sub.diagonal().real)
                a[k + 2:, k], a[k + 2:, k + 1] = wk, wkp1
        if kstep == 1:
            piv[k] = kp + 1
        else:
            piv[k] = piv[k + 1] = -(kp + 1)
        k += kstep
    return piv, info


def _ldl_xp(xp, out, x, hermitian=False):
    n = x.shape[-1]
    batch = tuple(x.shape[:-2])
    a = np.array(x.get() if xp is not np else x, copy=True).reshape((int(np.prod(batch)), n, n))
    piv = np.zeros((a.shape[0], n), np.int32)
    info = np.zeros(a.shape[0], np.int32)
    with np.errstate(all="ignore"):
        for i in range(a.shape[0]):
            piv[i], info[i] = _sytf2(a[i], hermitian)
    ld = np.tril(a)               # (PyTorch zeroes the strict upper triangle LAPACK leaves)
    return (xp.asarray(ld.reshape(x.shape)), xp.asarray(piv.reshape(batch + (n,))),
            xp.asarray(info.reshape(batch)))


register(Prim("ldl_factor", "extern", _ldl_meta, None, nout=3, differentiable=False, xp=_ldl_xp,
              doc="Bunch-Kaufman LDL^T / LDL^H in LAPACK sytrf's packed form (LD, pivots, info)"))


def _ldl_solve_meta(ld, piv, b, hermitian=False):
    return AVal(tuple(b.shape), b.dtype)


def _sytrs(a, piv, b, herm):
    """sytrs / hetrs (lower): solve A X = B in place in b (n, nrhs) from sytf2's a and piv."""
    n = a.shape[0]
    herm = herm and a.dtype.kind == "c"
    conj = np.conj if herm else (lambda z: z)
    k = 0
    while k < n:                    # L D Y = P^T B
        if piv[k] > 0:
            kp = piv[k] - 1
            if kp != k:
                b[[k, kp]] = b[[kp, k]]
            b[k + 1:] -= np.multiply.outer(a[k + 1:, k], b[k])
            b[k] *= 1.0 / (a[k, k].real if herm else a[k, k])
            k += 1
        else:
            kp = -piv[k] - 1
            if kp != k + 1:
                b[[k + 1, kp]] = b[[kp, k + 1]]
            b[k + 2:] -= np.multiply.outer(a[k + 2:, k], b[k])
            b[k + 2:] -= np.multiply.outer(a[k + 2:, k + 1], b[k + 1])
            akm1k = a[k + 1, k]
            akm1 = a[k, k] / conj(akm1k)
            ak = a[k + 1, k + 1] / akm1k
            denom = akm1 * ak - 1.0
            bkm1, bk = b[k] / conj(akm1k), b[k + 1] / akm1k
            b[k], b[k + 1] = (ak * bkm1 - bk) / denom, (akm1 * bk - bkm1) / denom
            k += 2
    k = n - 1
    while k >= 0:                   # L^T X = Y (L^H when hermitian), then the interchanges
        if piv[k] > 0:
            b[k] -= conj(a[k + 1:, k]) @ b[k + 1:]
            kp = piv[k] - 1
            if kp != k:
                b[[k, kp]] = b[[kp, k]]
            k -= 1
        else:
            b[k] -= conj(a[k + 1:, k]) @ b[k + 1:]
            b[k - 1] -= conj(a[k + 1:, k - 1]) @ b[k + 1:]
            kp = -piv[k] - 1
            if kp != k:
                b[[k, kp]] = b[[kp, k]]
            k -= 2
    return b


def _ldl_solve_xp(xp, out, ld, piv, b, hermitian=False):
    """ld, piv and b share their (broadcast) batch dims."""
    n = ld.shape[-1]
    h = (lambda t: t.get()) if xp is not np else (lambda t: t)
    nb = int(np.prod(b.shape[:-2]))
    a = np.asarray(h(ld)).reshape((nb, n, n))
    p = np.asarray(h(piv)).astype(np.int64).reshape((nb, n))
    r = np.array(h(b), copy=True).reshape((nb,) + tuple(b.shape[-2:]))
    with np.errstate(all="ignore"):
        for i in range(r.shape[0]):
            _sytrs(a[i], p[i], r[i], hermitian)
    return xp.asarray(r.reshape(b.shape))


register(Prim("ldl_solve", "extern", _ldl_solve_meta, None, differentiable=False,
              xp=_ldl_solve_xp, doc="A X = B from ldl_factor's LD and pivots (sytrs / hetrs)"))
