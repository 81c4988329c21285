"""Matrix primitives: batched matmul (template kernel kind), einsum and the linalg externs
(inv, det, solve, qr, svd, cholesky) with their VJP rules."""
import numpy as np

from runtime import dtypes as dt
from ..ir.registry import AVal, Prim, register, broadcast_shapes
from .vjp_util import sum_to, wants


def _mT(b, x):
    n = len(x.shape)
    dims = tuple(range(n - 2)) + (n - 1, n - 2)
    return b.permute(x, dims=dims)


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
                           f"{a.dtype.name} != {c.dtype.name}")
    if a.dtype is dt.bool_:
        raise NotImplementedError("matmul: \"addmm_impl_cpu_\" not implemented for 'Bool'")
    batch = broadcast_shapes("matmul", a.shape[:-2], c.shape[:-2])
    return AVal(batch + (a.shape[-2], c.shape[-1]), a.dtype)


def _matmul_np(out, a, c):
    return np.matmul(a, c)


def _vjp_matmul(b, g, a, c, out=None):
    return (sum_to(b, b.matmul(g, _mT(b, c)), a.shape) if wants(b, 0) else None,
            sum_to(b, b.matmul(_mT(b, a), g), c.shape) if wants(b, 1) else None)


register(Prim("matmul", "matmul", _matmul_meta, _matmul_np, _vjp_matmul, grad_name="MmBackward0"))


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
    sizes = {}
    for sub, x in zip(ins, xs):
        if "..." in sub:
            continue
        if len(sub) != len(x.shape):
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(sub)}) does "
                               f"not match the number of dimensions ({len(x.shape)}) for operand "
                               f"{ins.index(sub)} and no ellipsis was given")
        for ch, s in zip(sub, x.shape):
            if ch in sizes and sizes[ch] != s and 1 not in (sizes[ch], s):
                raise RuntimeError(f"einsum(): operands do not broadcast with remapped shapes "
                                   f"(subscript {ch}: {sizes[ch]} vs {s}; equation {equation!r})")
            sizes[ch] = max(sizes.get(ch, 1), s)
    d = xs[0].dtype
    for x in xs[1:]:
        d = dt.promote_types(d, x.dtype)
    if "..." in equation:
        shape = np.einsum(equation, *[np.empty(x.shape, np.float32) for x in xs]).shape
    else:
        shape = tuple(sizes[c] for c in rhs)
    return AVal(shape, d)


def _einsum_xp(xp, out, *xs, equation):
    return xp.asarray(xp.einsum(equation, *[x.astype(out.dtype.np, copy=False) for x in xs],
                                optimize=len(xs) > 2))


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


register(Prim("einsum", "extern", _einsum_meta, None, _vjp_einsum, xp=_einsum_xp))


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
    if len(x.shape) < 2 or x.shape[-1] != x.shape[-2]:
        raise RuntimeError(f"linalg.{op}: A must be batches of square matrices, but they are "
                           f"{x.shape[-2] if len(x.shape) > 1 else ''} by {x.shape[-1] if x.shape else ''} "
                           f"matrices (shape {list(x.shape)})")
    float_input(op, x)


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
        raise LinAlgError("linalg.inv: The diagonal element 1 is zero, the inversion could not be "
                           "completed because the input matrix is singular.") from None


def _vjp_inv(b, g, x, out):
    oT = _mT(b, out)
    return (b.neg(b.matmul(b.matmul(oT, g), oT)),)


register(Prim("inv", "extern", _inv_meta, None, _vjp_inv, saves=(), saves_output=True,
              grad_name="LinalgInvExBackward0", xp=_inv_xp))


def _det_meta(x):
    _square("det", x)
    return AVal(x.shape[:-2], x.dtype)


def _vjp_det(b, g, x, out):
    # d det / dA = det * A^{-T}
    ge = b.reshape(b.mul(g, out), shape=tuple(g.shape) + (1, 1))
    return (b.mul(ge, _mT(b, b.inv(x))),)


register(Prim("det", "extern", _det_meta, None, _vjp_det, saves_output=True,
              grad_name="LinalgDetBackward0",
              xp=lambda xp, out, x: xp.asarray(xp.linalg.det(x))))


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
        raise LinAlgError("linalg.solve: The solver failed because the input matrix is singular.") from None


def _vjp_solve(b, g, a, c, out):
    gb = b.solve(_mT(b, a), g)
    ga = b.neg(b.matmul(gb, _mT(b, out)))
    return (sum_to(b, ga, a.shape), sum_to(b, gb, c.shape))


register(Prim("solve", "extern", _solve_meta, None, _vjp_solve, saves=(0,), saves_output=True,
              grad_name="LinalgSolveExBackward0", xp=_solve_xp))


def _cholesky_meta(x, upper=False):
    _square("cholesky", x)
    return AVal(x.shape, x.dtype)


def _cholesky_xp(xp, out, x, upper=False):
    try:
        with _failures_raise(xp):
            L = xp.linalg.cholesky(x)
    except np.linalg.LinAlgError:
        raise LinAlgError("linalg.cholesky: The factorization could not be completed because the "
                           "input is not positive-definite.") from None
    return xp.swapaxes(L, -1, -2).copy() if upper else L


register(Prim("cholesky", "extern", _cholesky_meta, None, None, differentiable=False,
              xp=_cholesky_xp))


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
    M = b.sub(b.matmul(r, _mT(b, gr)), b.matmul(_mT(b, gq), q))
    # copyltu: lower triangle mirrored up
    tril = _tril(b, M, -1)
    sym = b.add(b.add(tril, _mT(b, tril)), b.diag_embed(b.diagonal(M, offset=0, dim1=-2, dim2=-1)))
    rhs = b.add(gq, b.matmul(q, sym))
    gx = _mT(b, b.solve(r, _mT(b, rhs)))  # rhs @ R^{-T}
    return (gx,)


def _tril(b, m, k):
    n1, n2 = m.shape[-2:]
    i = b.reshape(b.arange(start=0, end=n1, step=1, dtype=dt.int64), shape=(n1, 1))
    j = b.reshape(b.arange(start=0, end=n2, step=1, dtype=dt.int64), shape=(1, n2))
    return b.where(b.le(b.sub(j, i), k), m, 0.0)


register(Prim("qr", "extern", _qr_meta, None, _vjp_qr, nout=2, saves=(), saves_output=True,
              grad_name="LinalgQrBackward0", xp=_qr_xp))


def _svd_meta(x, full_matrices=True):
    if len(x.shape) < 2:
        raise RuntimeError(f"linalg.svd: The input tensor A must have at least 2 dimensions "
                           f"(shape {list(x.shape)})")
    float_input("svd", x)
    m, n = x.shape[-2:]
    k = min(m, n)
    batch = tuple(x.shape[:-2])
    if full_matrices:
        return (AVal(batch + (m, m), x.dtype), AVal(batch + (k,), x.dtype), AVal(batch + (n, n), x.dtype))
    return (AVal(batch + (m, k), x.dtype), AVal(batch + (k,), x.dtype), AVal(batch + (k, n), x.dtype))


def _svd_xp(xp, out, x, full_matrices=True):
    u, s, vh = xp.linalg.svd(x, full_matrices=full_matrices)
    return u, s, vh


register(Prim("svd", "extern", _svd_meta, None, None, nout=3, differentiable=False,
              xp=_svd_xp))


def _eig_meta(x):
    _square("eig", x)
    c = dt.complex128 if x.dtype in (dt.float64, dt.complex128) else dt.complex64
    return (AVal(tuple(x.shape[:-1]), c), AVal(tuple(x.shape), c))


def _eig_np(out, x):
    w, v = np.linalg.eig(x)
    return w.astype(out[0].dtype.np), v.astype(out[1].dtype.np)


register(Prim("eig", "extern", _eig_meta, _eig_np, None, nout=2, differentiable=False))


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
