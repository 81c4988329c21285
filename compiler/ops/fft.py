"""Discrete Fourier transforms (torch.fft) as extern primitives: one lowering written against
an array module (numpy.fft on the host, cupy.fft on a GPU through Prim.xp), results cast to the
torch dtype (numpy.fft computes in complex128).

    fft_c2c  complex -> complex over `dims`, forward or inverse
    fft_r2c  real -> complex, one-sided over the last of `dims` (rfftn)
    fft_c2r  one-sided complex -> real; the last of `dims` becomes `n` long (irfftn)

`norm` is torch's ("backward", "ortho", "forward"). The primitives do no resizing: torch's `n`
and `s` (trim or zero-pad) are slice/cat in framework/fft.py, so their gradients come for free.
VJPs follow PyTorch's complex convention (.grad = A^H g for a linear map A): the adjoint of a
transform normalised by `norm` is the opposite transform with the dual norm."""
from runtime import dtypes as dt
from ..ir.registry import AVal, Prim, register

_DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _complex_of(d):
    return dt.complex128 if d in (dt.float64, dt.complex128) else dt.complex64


def _real_of(d):
    return dt.float64 if d in (dt.float64, dt.complex128) else dt.float32


def _check(op, x, dims, norm):
    if norm not in _DUAL:
        raise RuntimeError(f"Invalid normalization mode: \"{norm}\" ({op})")
    n = len(x.shape)
    for d in dims:
        if not 0 <= d < n:
            raise IndexError(f"{op}: Dimension out of range (dims {list(dims)} for a tensor of "
                             f"shape {list(x.shape)})")


# complex -> complex ---------------------------------------------------------------------------

def _c2c_meta(x, dims, forward, norm):
    _check("fft_c2c", x, dims, norm)
    if not x.dtype.is_complex:
        raise RuntimeError(f"fft_c2c: expected a complex input, got {x.dtype}")
    return AVal(x.shape, x.dtype)


def _c2c_xp(xp, out, x, dims, forward, norm):
    if not dims:
        return x.astype(out.dtype.np)
    f = xp.fft.fftn if forward else xp.fft.ifftn
    return f(x, axes=dims, norm=norm).astype(out.dtype.np, copy=False)


def _vjp_c2c(b, g, x, out=None, dims=(), forward=True, norm="backward"):
    return (b.fft_c2c(g, dims=dims, forward=not forward, norm=_DUAL[norm]),)


register(Prim("fft_c2c", "extern", _c2c_meta, None, _vjp_c2c, saves=(), xp=_c2c_xp,
              grad_name="FftC2CBackward0"))


# real -> one-sided complex ---------------------------------------------------------------------

def _r2c_meta(x, dims, norm):
    _check("fft_r2c", x, dims, norm)
    if not x.dtype.is_floating_point or not dims:
        raise RuntimeError(f"fft_r2c: expected a real floating input and at least one dim, got "
                           f"{x.dtype} and dims {list(dims)}")
    shape = list(x.shape)
    shape[dims[-1]] = shape[dims[-1]] // 2 + 1
    return AVal(tuple(shape), _complex_of(x.dtype))


def _r2c_xp(xp, out, x, dims, norm):
    return xp.fft.rfftn(x, axes=dims, norm=norm).astype(out.dtype.np, copy=False)


def _vjp_r2c(b, g, x, out=None, dims=(), norm="backward"):
    # A^H g with A = the first n//2+1 rows of the full transform: zero-pad g to the full
    # length, inverse transform with the dual norm, real part (x is real)
    last = dims[-1]
    n, h = x.shape[last], g.shape[last]
    if n > h:
        zshape = tuple(n - h if i == last else s for i, s in enumerate(g.shape))
        g = b.cat(g, b.full(shape=zshape, value=0, dtype=g.dtype), dim=last)
    return (b.real(b.fft_c2c(g, dims=dims, forward=False, norm=_DUAL[norm])),)


register(Prim("fft_r2c", "extern", _r2c_meta, None, _vjp_r2c, saves=(), xp=_r2c_xp,
              grad_name="FftR2CBackward0"))


# one-sided complex -> real ---------------------------------------------------------------------

def _c2r_meta(x, dims, n, norm):
    _check("fft_c2r", x, dims, norm)
    if not x.dtype.is_complex or not dims:
        raise RuntimeError(f"fft_c2r: expected a complex input and at least one dim, got "
                           f"{x.dtype} and dims {list(dims)}")
    if n < 1:
        raise RuntimeError(f"Invalid number of data points ({n}) specified")
    if x.shape[dims[-1]] != n // 2 + 1:
        raise RuntimeError(f"fft_c2r: the last transformed dim has {x.shape[dims[-1]]} entries, "
                           f"expected n // 2 + 1 = {n // 2 + 1} for n = {n}")
    shape = list(x.shape)
    shape[dims[-1]] = n
    return AVal(tuple(shape), _real_of(x.dtype))


def _c2r_xp(xp, out, x, dims, n, norm):
    s = tuple(out.shape[d] for d in dims)
    return xp.fft.irfftn(x, s=s, axes=dims, norm=norm).astype(out.dtype.np, copy=False)


def _vjp_c2r(b, g, x, out=None, dims=(), n=1, norm="backward"):
    # PyTorch's fft_c2r_backward: the one-sided transform of g, with the entries that stand
    # for two conjugate bins of the full spectrum (all but DC and, for even n, Nyquist) doubled
    last = dims[-1]
    gi = b.fft_r2c(g, dims=dims, norm=_DUAL[norm])
    h = gi.shape[last]
    dbl = n - h
    if dbl > 0:
        mid = b.mul(b.slice(gi, dim=last, start=1, stop=1 + dbl, step=1), 2.0)
        parts = [b.slice(gi, dim=last, start=0, stop=1, step=1), mid]
        if 1 + dbl < h:
            parts.append(b.slice(gi, dim=last, start=1 + dbl, stop=h, step=1))
        gi = b.cat(*parts, dim=last)
    return (gi,)


register(Prim("fft_c2r", "extern", _c2r_meta, None, _vjp_c2r, saves=(), xp=_c2r_xp,
              grad_name="FftC2RBackward0"))
