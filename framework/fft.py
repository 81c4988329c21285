"""torch.fft: fft, ifft, fft2, ifft2, fftn, ifftn, rfft, irfft, rfft2, irfft2, rfftn, irfftn,
hfft, ihfft, hfft2, ihfft2, hfftn, ihfftn, fftfreq, rfftfreq, fftshift, ifftshift, with PyTorch
2.13's arguments (n/s, dim, norm) and dtypes (float32 -> complex64; integers promote to the
default float's complex). Also torch.stft / torch.istft (exported from framework/__init__.py),
composed from F.pad, the `windows` / `fold_windows` primitives and the transforms here.

The transforms are the fft_c2c / fft_r2c / fft_c2r primitives (compiler/ops/fft.py); `n` and
`s` trim or zero-pad the input first, by slice and cat, as torch does."""

import numpy as np

from compiler.ir.registry import REGISTRY, norm_dim
from runtime import dtypes as dt
from ._dispatch import apply, rename
from .ops_math import full_on, write_out

P = REGISTRY
__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2",
           "rfftn", "irfftn", "hfft", "ihfft", "hfft2", "ihfft2", "hfftn", "ihfftn",
           "fftfreq", "rfftfreq", "fftshift", "ifftshift"]


def _norm(norm):
    n = "backward" if norm is None else norm
    if n not in ("backward", "ortho", "forward"):
        raise RuntimeError(f"Invalid normalization mode: \"{norm}\"")
    return n


_DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _as_float(x):
    """Integer and bool inputs promote to the default float dtype (torch's promotion)."""
    if x._dtype.is_floating_point or x._dtype.is_complex:
        if x._dtype is dt.complex32:
            raise RuntimeError("MKL FFT doesn't support tensors of type: Half")
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
    r = _c2c("fft", input, _n(n), _one(dim), norm, True, out=out)
    if out is None and not input.dtype.is_complex and r.grad_fn is not None:
        rename(r, "FftR2CBackward0")        # (PyTorch's real-input path: a two-sided r2c)
    return r


def ifft(input, n=None, dim=-1, norm=None, *, out=None):
    if out is None and not input.dtype.is_complex:
        # PyTorch: a real input's inverse is the conjugate of the forward transform with the
        # dual norm (so its real bins print -0 imaginary parts; grad_fn ConjBackward0)
        from .ops_math import conj
        return conj(_c2c("ifft", input, _n(n), _one(dim), _DUAL[_norm(norm)], True))
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


def _hfftn(op, input, s, dim, norm, default_all, out):
    """torch's fft_hfftn: forward c2c over all but the last dim, conj, then the Hermitian c2r
    over the last dim (a forward transform: numpy's inverse with the dual norm)."""
    x = _as_complex(input)
    dims, sizes = _dims_sizes(x, s, dim, op, default_all)
    if not dims:
        raise RuntimeError(f"{op} must transform at least one axis")
    last = dims[-1]
    n = sizes[-1] if sizes[-1] is not None else _points(2 * (x.shape[last] - 1))
    for d, m in zip(dims[:-1], sizes[:-1]):
        if m is not None:
            x = _resize(x, d, m)
    x = _resize(x, last, n // 2 + 1)
    nm = _norm(norm)
    if len(dims) > 1:
        for d in dims[:-1]:
            _points(x.shape[d])
        x = apply(P["fft_c2c"], x, dims=dims[:-1], forward=True, norm=nm)
    r = apply(P["fft_c2r"], apply(P["conj"], x), dims=(last,), n=n, norm=_DUAL[nm])
    return write_out(r, out) if out is not None else r


def _ihfftn(op, input, s, dim, norm, default_all, out):
    """torch's fft_ihfftn: one-sided r2c over the last dim (an inverse transform: numpy's
    forward with the dual norm), conj, then inverse c2c over the other dims."""
    x = _as_float(input)
    if x._dtype.is_complex:
        raise RuntimeError(f"Only supports floating-point dtypes, but found: {dt.tname(x._dtype)}")
    dims, sizes = _dims_sizes(x, s, dim, op, default_all)
    if not dims:
        raise RuntimeError(f"{op} must transform at least one axis")
    for d, n in zip(dims, sizes):
        if n is not None:
            x = _resize(x, d, n)
    for d in dims:
        _points(x.shape[d])
    nm = _norm(norm)
    r = apply(P["conj"], apply(P["fft_r2c"], x, dims=(dims[-1],), norm=_DUAL[nm]))
    if len(dims) > 1:
        r = apply(P["fft_c2c"], r, dims=dims[:-1], forward=False, norm=nm)
    return write_out(r, out) if out is not None else r


def hfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    return _hfftn("hfft2", input, s, dim, norm, False, out)


def hfftn(input, s=None, dim=None, norm=None, *, out=None):
    return _hfftn("hfftn", input, s, dim, norm, True, out)


def ihfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None):
    return _ihfftn("ihfft2", input, s, dim, norm, False, out)


def ihfftn(input, s=None, dim=None, norm=None, *, out=None):
    return _ihfftn("ihfftn", input, s, dim, norm, True, out)


def _freq_tensor(vals, dtype, device, requires_grad):
    from .creation import tensor
    d = dtype or dt.get_default_dtype()
    t = tensor(np.asarray(vals, dtype=np.float64).astype(d.np), dtype=d, device=device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _freq_dtype(op, dtype):
    """torch's checks: integer and bool dtypes refused; complex ones pass that check but the
    CPU arange behind it has no complex kernel."""
    d = dtype or dt.get_default_dtype()
    if not (d.is_floating_point or d.is_complex):
        raise RuntimeError(f"{op} requires a floating point or complex dtype")
    if d.is_complex:
        raise NotImplementedError(f"\"arange_cpu\" not implemented for '{dt.tname(d)}' ({op})")
    return d


def fftfreq(n, d=1.0, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    """Sample frequencies [0, 1, ..., n//2 - 1 (or (n-1)//2), -n//2, ..., -1] / (d n)."""
    _freq_dtype("fftfreq", dtype)
    k = np.concatenate([np.arange(0, (n - 1) // 2 + 1), np.arange(-(n // 2), 0)])
    # torch computes arange in the output dtype, then divides by n * d
    dd = dtype or dt.get_default_dtype()
    r = _freq_tensor(k.astype(dd.np) / np.asarray(n * d, dtype=dd.np) if dd.is_floating_point
                     else k / (n * d), dtype, device, requires_grad)
    return write_out(r, out) if out is not None else r


def rfftfreq(n, d=1.0, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    _freq_dtype("rfftfreq", dtype)
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




# ---- torch.stft / torch.istft ------------------------------------------------------------------
# PyTorch's SpectralOps.cpp, step by step, from differentiable pieces: F.pad for `center`, the
# `windows` primitive for the frames (its VJP is fold_windows), the r2c/c2r/c2c transforms, and
# fold_windows for istft's overlap-add (whose VJP is windows again).

_WARNED = set()


def _warn_once(key, msg):
    from ._misc_api import warn_once     # TORCH_WARN_ONCE (torch.set_warn_always)
    warn_once(key, msg, stacklevel=3, seen=_WARNED)


def _tstr(t):
    """at::Tensor::toString as torch's stft/istft messages print it."""
    if t._dtype.is_complex:
        return f"{'CPU' if t.device.type == 'cpu' else 'CUDA'}{dt.tname(t._dtype)}Type"
    return t.type()


def _opt(v):
    return "None" if v is None else str(int(v))


def _win_str(window):
    return "None" if window is None else f"{_tstr(window)}{{{list(window.shape)}}}"


_NO_WINDOW = ("A window was not provided. A rectangular window will be applied,which is known to "
              "cause spectral leakage. Other windows such as torch.hann_window or "
              "torch.hamming_window are recommended to reduce spectral leakage.To suppress this "
              "warning and use a rectangular window, explicitly set "
              "`window=torch.ones(n_fft, device=<device>)`.")
_NO_WINDOW_I = ("A window was not provided. A rectangular window will be applied.Please provide "
                "the same window used by stft to make the inversion lossless.To suppress this "
                "warning and use a rectangular window, explicitly set "
                "`window=torch.ones(n_fft, device=<device>)`.")


def _centre_window(window, n_fft, win_length, ref):
    """The window zero-padded on both sides to n_fft (left (n_fft - win_length) // 2); ones of
    ref's dtype when none was given."""
    from .creation import ones
    from .nn import functional as F
    if window is None:
        if win_length == n_fft:
            return None
        window = ones(win_length, dtype=ref._dtype, device=ref.device)
    if win_length == n_fft:
        return window
    left = (n_fft - win_length) // 2
    return F.pad(window, (left, n_fft - win_length - left))


def stft(input, n_fft, hop_length=None, win_length=None, window=None, center=True,
         pad_mode="reflect", normalized=False, onesided=None, return_complex=None,
         align_to_window=None):
    """Short-time Fourier transform: (n_fft // 2 + 1 or n_fft, n_frames) per signal."""
    from .nn import functional as F
    from . import ops_shape as S
    if center and align_to_window is not None:
        raise RuntimeError("stft align_to_window should only be set when center = false")
    if center:          # torch/functional.py pads before the checks (so messages show it)
        sd = input.ndim
        ext = [1] * max(3 - sd, 0) + list(input.shape)
        pad = int(n_fft // 2)
        input = F.pad(S.reshape(input, tuple(ext)), [pad, pad], pad_mode)
        input = S.reshape(input, tuple(input.shape[len(input.shape) - sd:]) if sd else
                          tuple(input.shape))
    hop = n_fft >> 2 if hop_length is None else hop_length
    win = n_fft if win_length is None else win_length
    if window is None:
        _warn_once("stft_window", _NO_WINDOW)
    rc = return_complex if return_complex is not None else (
        input._dtype.is_complex or (window is not None and window._dtype.is_complex))
    if not rc:
        if return_complex is None:
            raise RuntimeError("stft requires the return_complex parameter be given for real "
                               "inputs, and will further require that return_complex=True in a "
                               "future PyTorch release.")
        _warn_once("stft_real", "stft with return_complex=False is deprecated. In a future "
                   "pytorch release, stft will return complex tensors for all inputs, and "
                   "return_complex=False will raise an error.\nNote: you can still call "
                   "torch.view_as_real on the complex output to recover the old return format.")

    def fail(msg):
        raise RuntimeError(
            f"stft({_tstr(input)}{list(input.shape)}, n_fft={n_fft}, hop_length={hop}, "
            f"win_length={win}, window={_win_str(window)}, normalized={int(bool(normalized))}, "
            f"onesided={_opt(onesided)}, return_complex={_opt(return_complex)}, "
            f"align_to_window={_opt(align_to_window)}) : {msg}")

    if not (input._dtype.is_floating_point or input._dtype.is_complex):
        fail("expected a tensor of floating point or complex values")
    if input.ndim not in (1, 2):
        fail("expected a 1D or 2D tensor")
    if input._dtype in (dt.float16, dt.bfloat16):
        raise RuntimeError(f"MKL FFT doesn't support tensors of type: {dt.tname(input._dtype)}")
    x = input if input.ndim == 2 else S.reshape(input, (1,) + tuple(input.shape))
    length = x.shape[1]
    if n_fft <= 0 or n_fft > length:
        fail(f"expected 0 < n_fft < {length}, but got n_fft={win}")   # sic: torch prints win_length
    if hop <= 0:
        fail(f"expected hop_length > 0, but got hop_length={hop}")
    if win <= 0 or win > n_fft:
        fail(f"expected 0 < win_length <= n_fft, but got win_length={win}")
    if window is not None and (window.ndim != 1 or window.shape[0] != win):
        fail(f"expected a 1D window tensor of size equal to win_length={win}, but got window "
             f"with size {list(window.shape)}")
    w = _centre_window(window, n_fft, win, x)
    if align_to_window and win < n_fft:
        # frames start where the window (not the n_fft span) starts: pad by the window's offset
        left = (n_fft - win) // 2
        x = F.pad(x, (left, left))
        n_frames = 1 + (length - win) // hop
        b, ln, isz = x.shape[0], x.shape[1], x._dtype.itemsize
        need = (b - 1) * ln + (n_frames - 1) * hop + n_fft
        if need > b * ln:       # torch's as_strided of the frames reads past the input
            raise RuntimeError(f"setStorage: sizes [{b}, {n_frames}, {n_fft}], strides [{ln}, "
                               f"{hop}, 1], storage offset 0, and itemsize {isz} requiring a "
                               f"storage size of {need * isz} are out of bounds for storage of "
                               f"size {b * ln * isz}")
        x = S.narrow(x, 1, 0, (n_frames - 1) * hop + n_fft)
    frames = apply(P["windows"], x, kernel=(n_fft,), stride=(hop,), dilation=(1,))
    if w is not None:
        frames = frames * w
    norm = "ortho" if normalized else "backward"
    cplx = frames._dtype.is_complex
    side = (not cplx) if onesided is None else onesided
    if cplx:
        if side:
            raise RuntimeError("Cannot have onesided output if window or input is complex")
        out = apply(P["fft_c2c"], frames, dims=(2,), forward=True, norm=norm)
    elif side:
        out = apply(P["fft_r2c"], frames, dims=(2,), norm=norm)
    else:
        out = apply(P["fft_c2c"], _as_complex(frames), dims=(2,), forward=True, norm=norm)
    out = S.transpose(out, 1, 2)
    if input.ndim == 1:
        out = S.squeeze(out, 0)
    return out if rc else S.view_as_real(out)


def istft(input, n_fft, hop_length=None, win_length=None, window=None, center=True,
          normalized=False, onesided=None, length=None, return_complex=False):
    """Inverse of stft: inverse transforms of the frames, windowed, overlap-added and divided by
    the overlap-added squared window."""
    from .nn import functional as F
    from . import ops_shape as S
    from .creation import ones
    if window is None:
        _warn_once("istft_window", _NO_WINDOW_I)
    hop = n_fft >> 2 if hop_length is None else hop_length
    win = n_fft if win_length is None else win_length
    if not input._dtype.is_complex:
        raise RuntimeError("istft requires a complex-valued input tensor matching the output "
                           "from stft with return_complex=True.")
    rd = input.ndim + 1                         # dims of torch's view_as_real(input)
    for k in (2, 3):
        if rd < k:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-rd}, "
                             f"{rd - 1}], but got {-k})")
    n_frames, fft_size = input.shape[-1], input.shape[-2]
    expected = n_fft + hop * (n_frames - 1)

    def fail(msg, sep=": "):
        raise RuntimeError(
            f"istft({_tstr(input)}{list(input.shape)}, n_fft={n_fft}, hop_length={hop}, "
            f"win_length={win}, window={_win_str(window)}, center={int(bool(center))}, "
            f"normalized={int(bool(normalized))}, onesided={_opt(onesided)}, "
            f"length={'None' if length is None else length}, "
            f"return_complex={int(bool(return_complex))}) {sep}{msg}")

    if input.numel() == 0:
        fail("input tensor cannot be empty.")
    if rd not in (3, 4):
        fail(f"expected a tensor with 3 or 4 dimensions, but got {rd}")
    side = (fft_size != n_fft) if onesided is None else onesided
    if side and n_fft // 2 + 1 != fft_size:
        fail("expected the frequency dimension (3rd to the last) of the input tensor to match "
             f"n_fft / 2 + 1 when onesided=True, but got {fft_size}")
    if not side and n_fft != fft_size:
        fail("expected the frequency dimension (3rd to the last) of the input tensor to match "
             f"n_fft when onesided=False, but got {fft_size}")
    if not 0 < hop <= win:
        fail("expected 0 < hop_length <= win_length")
    if not 0 < win <= n_fft:
        fail("expected 0 < win_length <= n_fft")
    if window is not None and (window.ndim != 1 or window.shape[0] != win):
        fail("Invalid window shape. window has to be 1D and length of `win_length`")
    real_dt = dt.float64 if input._dtype is dt.complex128 else dt.float32
    w = window if window is not None else ones(win, dtype=real_dt, device=input.device)
    if win != n_fft:
        left = (n_fft - win) // 2
        w = F.pad(w, (left, n_fft - win - left))
    x = input if rd == 4 else S.reshape(input, (1,) + tuple(input.shape))
    x = S.transpose(x, 1, 2)                                     # (channel, n_frames, fft_size)
    norm = "ortho" if normalized else "backward"
    if return_complex:
        if side:
            raise RuntimeError("Cannot have onesided output if window or input is complex")
        x = apply(P["fft_c2c"], x, dims=(2,), forward=False, norm=norm)
    else:
        if window is not None and window._dtype.is_complex:
            raise RuntimeError("Complex windows are incompatible with return_complex=False")
        if not side:
            x = S.narrow(x, -1, 0, n_fft // 2 + 1)
        x = apply(P["fft_c2r"], x, dims=(2,), n=n_fft, norm=norm)
    y = x * S.reshape(w, (1, 1, n_fft))
    y = apply(P["fold_windows"], y, size=(expected,), kernel=(n_fft,), stride=(hop,),
              dilation=(1,))
    w2 = S.expand(S.reshape(w * w, (1, 1, n_fft)), (1, n_frames, n_fft))
    env = apply(P["fold_windows"], w2, size=(expected,), kernel=(n_fft,), stride=(hop,),
                dilation=(1,))
    start = n_fft // 2 if center else 0
    if length is not None:
        end = start + length
    elif center:
        end = -(n_fft // 2)
    else:
        end = expected
    y, env = y[:, start:end], env[:, start:end]
    low = bool((env.abs().min() < 1e-11).item())
    if low:
        fail(f"window overlap add min: 1\n[ {'CPU' if input.device.type == 'cpu' else 'CUDA'}"
             "BoolType{} ]", sep="")
    y = y / env
    if rd == 3:
        y = S.squeeze(y, 0)
    if end > expected:
        _warn_once("istft_length", "The length of signal is shorter than the length parameter. "
                   "Result is being padded with zeros in the tail. Please check your center and "
                   "hop_length settings.")
        y = F.pad(y, (0, end - expected))
    return y
