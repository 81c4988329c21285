"""torch.fft: fft, ifft, fft2, ifft2, fftn, ifftn, rfft, irfft, rfft2, irfft2, rfftn, irfftn,
hfft, ihfft, fftfreq, rfftfreq, fftshift, ifftshift, with PyTorch 2.13's arguments (n/s, dim,
norm) and dtypes (float32 -> complex64; integers promote to the default float's complex).

The transforms are the fft_c2c / fft_r2c / fft_c2r primitives (compiler/ops/fft.py); `n` and
`s` trim or zero-pad the input first, by slice and cat, as torch does."""
import numpy as np

from compiler.ir.registry import REGISTRY, norm_dim
from runtime import dtypes as dt
from ._dispatch import apply
from .ops_math import full_on, write_out

P = REGISTRY
__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2",
           "rfftn", "irfftn", "hfft", "ihfft", "fftfreq", "rfftfreq", "fftshift", "ifftshift"]


def _norm(norm):
    n = "backward" if norm is None else norm
    if n not in ("backward", "ortho", "forward"):
        raise RuntimeError(f"Invalid normalization mode: \"{norm}\"")
    return n


_DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _as_float(x):
    """Integer and bool inputs promote to the default float dtype (torch's promotion)."""
    if x._dtype.is_floating_point or x._dtype.is_complex:
        if x._dtype in (dt.float16, dt.bfloat16):
            raise RuntimeError(f"Unsupported dtype {dt.tname(x._dtype)} (torch.fft runs half "
                               f"precision only on CUDA)")
        return x
    return apply(P["cast"], x, dtype=dt.get_default_dtype())


def _as_complex(x):
    x = _as_float(x)
    if x._dtype.is_complex:
        return x
    return apply(P["cast"], x, dtype=dt.complex128 if x._dtype is dt.float64 else dt.complex64)


def _as_real(x, op):
    x = _as_float(x)
    if x._dtype.is_complex:
        raise RuntimeError(f"{op} expects a real input tensor, but got {dt.tname(x._dtype)}")
    return x


def _resize(x, dim, n):
    """x trimmed or zero-padded to n entries along dim (torch's n / s)."""
    cur = x.shape[dim]
    if n == cur:
        return x
    if n < cur:
        return apply(P["slice"], x, dim=dim, start=0, stop=n, step=1)
    zshape = tuple(n - cur if i == dim else s for i, s in enumerate(x.shape))
    return apply(P["cat"], x, full_on(x, zshape, 0, x._dtype), dim=dim)


def _points(n):
    if n < 1:
        raise RuntimeError(f"Invalid number of data points ({n}) specified")
    return n


def _dims_sizes(x, s, dim, op, default_all):
    """(dims, sizes) of an n-dimensional transform: torch's rules for s and dim."""
    nd = x.ndim
    if dim is not None:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        dims = tuple(norm_dim(op, d, nd) for d in dims)
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"{op}: FFT dims must be unique (got {list(dim)})")
        if s is not None and len(s) != len(dims):
            raise RuntimeError("When given, dim and shape arguments must have the same length")
    elif s is not None:
        if len(s) > nd:
            raise RuntimeError(f"Got shape with {len(s)} values but input tensor only has {nd} "
                               "dimensions.")
        dims = tuple(range(nd - len(s), nd))
    else:
        dims = tuple(range(nd)) if default_all else tuple(norm_dim(op, d, nd) for d in (-2, -1))
    if s is None:
        sizes = [None] * len(dims)
    else:
        sizes = [None if v == -1 else _points(int(v)) for v in s]
    return dims, sizes


def _c2c(op, input, s, dim, norm, forward, default_all=True, out=None):
    x = _as_complex(input)
    dims, sizes = _dims_sizes(x, s, dim, op, default_all)
    for d, n in zip(dims, sizes):
        if n is not None:
            x = _resize(x, d, n)
    for d in dims:
        _points(x.shape[d])
    r = apply(P["fft_c2c"], x, dims=dims, forward=forward, norm=_norm(norm))
    return write_out(r, out) if out is not None else r


def _r2c(op, input, s, dim, norm, default_all=True, out=None):
    x = _as_real(input, op)
    dims, sizes = _dims_sizes(x, s, dim, op, default_all)
    for d, n in zip(dims, sizes):
        if n is not None:
            x = _resize(x, d, n)
    for d in dims:
        _points(x.shape[d])
    r = apply(P["fft_r2c"], x, dims=dims, norm=_norm(norm))
    return write_out(r, out) if out is not None else r


def _c2r(op, input, s, dim, norm, default_all=True, out=None):
    x = _as_complex(input)
    dims, sizes = _dims_sizes(x, s, dim, op, default_all)
    last = dims[-1]
    n = sizes[-1] if sizes[-1] is not None else _points(2 * (x.shape[last] - 1))
    for d, m in zip(dims[:-1], sizes[:-1]):
        if m is not None:
            x = _resize(x, d, m)
    x = _resize(x, last, n // 2 + 1)
    r = apply(P["fft_c2r"], x, dims=dims, n=n, norm=_norm(norm))
    return write_out(r, out) if out is not None else r


def _one(dim):
    return (dim,)


def _n(n):
    return None if n is None else (n,)


def fft(input, n=None, dim=-1, norm=None, *, out=None):
    return _c2c("fft", input, _n(n), _one(dim), norm, True, out=out)


def ifft(input, n=None, dim=-1, norm=None, *, out=None):
    return _c2c("ifft", input, _n(n), _one(dim), norm, False, out=out)


def fft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    return _c2c("fft2", input, s, dim, norm, True, out=out)


def ifft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    return _c2c("ifft2", input, s, dim, norm, False, out=out)


def fftn(input, s=None, dim=None, norm=None, *, out=None):
    return _c2c("fftn", input, s, dim, norm, True, out=out)


def ifftn(input, s=None, dim=None, norm=None, *, out=None):
    return _c2c("ifftn", input, s, dim, norm, False, out=out)


def rfft(input, n=None, dim=-1, norm=None, *, out=None):
    return _r2c("rfft", input, _n(n), _one(dim), norm, out=out)


def irfft(input, n=None, dim=-1, norm=None, *, out=None):
    return _c2r("irfft", input, _n(n), _one(dim), norm, out=out)


def rfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    return _r2c("rfft2", input, s, dim, norm, out=out)


def irfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    return _c2r("irfft2", input, s, dim, norm, out=out)


def rfftn(input, s=None, dim=None, norm=None, *, out=None):
    return _r2c("rfftn", input, s, dim, norm, out=out)


def irfftn(input, s=None, dim=None, norm=None, *, out=None):
    return _c2r("irfftn", input, s, dim, norm, out=out)


def hfft(input, n=None, dim=-1, norm=None, *, out=None):
    """The forward transform of a Hermitian-symmetric signal given by its first half: irfft of
    the conjugate with the dual normalisation (a real result)."""
    x = _as_complex(input)
    x = apply(P["conj"], x)
    r = _c2r("hfft", x, _n(n), _one(dim), _DUAL[_norm(norm)])
    return write_out(r, out) if out is not None else r


def ihfft(input, n=None, dim=-1, norm=None, *, out=None):
    """The inverse of hfft: the conjugate of rfft with the dual normalisation."""
    r = apply(P["conj"], _r2c("ihfft", input, _n(n), _one(dim), _DUAL[_norm(norm)]))
    return write_out(r, out) if out is not None else r


def _freq_tensor(vals, dtype, device, requires_grad):
    from .creation import tensor
    d = dtype or dt.get_default_dtype()
    t = tensor(np.asarray(vals, dtype=np.float64).astype(d.np), dtype=d, device=device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def fftfreq(n, d=1.0, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    """Sample frequencies [0, 1, ..., n//2 - 1 (or (n-1)//2), -n//2, ..., -1] / (d n)."""
    k = np.concatenate([np.arange(0, (n - 1) // 2 + 1), np.arange(-(n // 2), 0)])
    # torch computes arange in the output dtype, then divides by n * d
    dd = dtype or dt.get_default_dtype()
    r = _freq_tensor(k.astype(dd.np) / np.asarray(n * d, dtype=dd.np) if dd.is_floating_point
                     else k / (n * d), dtype, device, requires_grad)
    return write_out(r, out) if out is not None else r


def rfftfreq(n, d=1.0, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    k = np.arange(0, n // 2 + 1)
    dd = dtype or dt.get_default_dtype()
    r = _freq_tensor(k.astype(dd.np) / np.asarray(n * d, dtype=dd.np) if dd.is_floating_point
                     else k / (n * d), dtype, device, requires_grad)
    return write_out(r, out) if out is not None else r


def _shift(input, dim, sign):
    from .ops_shape import roll
    if dim is None:
        dims = tuple(range(input.ndim))
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        dims = tuple(norm_dim("fftshift", d, input.ndim) for d in dims)
    if not dims:
        return input
    shifts = tuple((input.shape[d] // 2) * sign if sign > 0 else -(input.shape[d] // 2)
                   for d in dims)
    return roll(input, shifts, dims)


def fftshift(input, dim=None):
    return _shift(input, dim, 1)


def ifftshift(input, dim=None):
    return _shift(input, dim, -1)


