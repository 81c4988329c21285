"""torch.signal.windows, as PyTorch writes them: each window is a linspace of its sample points
mapped through framework ops, so it is made on the requested device and, with
requires_grad=True, differentiable in the points as in PyTorch. sym=False gives the periodic
window (the symmetric window of length M + 1 without its last point)."""
import math
from collections.abc import Iterable

import framework as torch

__all__ = ["bartlett", "blackman", "cosine", "exponential", "gaussian", "general_cosine",
           "general_hamming", "hamming", "hann", "kaiser", "nuttall"]


def _check(name, M, dtype, layout):
    if M < 0:
        raise ValueError(f"{name} requires non-negative window length, got M={M}")
    if layout is not torch.strided:
        raise ValueError(f"{name} is implemented for strided tensors only, got: {layout}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{name} expects float32 or float64 dtypes, got: {dtype}")


def _dtype(dtype):
    return torch.get_default_dtype() if dtype is None else dtype


def _fill(n, value, dtype, device, requires_grad):
    # the M == 0 and M == 1 windows
    return torch.full((n,), value, dtype=dtype, device=device, requires_grad=requires_grad)


def _points(start, end, M, dtype, layout, device, requires_grad):
    return torch.linspace(start=start, end=end, steps=M, dtype=dtype, layout=layout,
                          device=device, requires_grad=requires_grad)


def exponential(M, *, center=None, tau=1.0, sym=True, dtype=None, layout=torch.strided,
                device=None, requires_grad=False):
    dtype = _dtype(dtype)
    _check("exponential", M, dtype, layout)
    if tau <= 0:
        raise ValueError(f"Tau must be positive, got: {tau} instead.")
    if sym and center is not None:
        raise ValueError("Center must be None for symmetric windows")
    if M == 0:
        return _fill(0, 0.0, dtype, device, requires_grad)
    if center is None:
        center = (M if not sym and M > 1 else M - 1) / 2.0
    c = 1 / tau
    k = _points(-center * c, (-center + (M - 1)) * c, M, dtype, layout, device, requires_grad)
    return torch.exp(-torch.abs(k))


def cosine(M, *, sym=True, dtype=None, layout=torch.strided, device=None, requires_grad=False):
    dtype = _dtype(dtype)
    _check("cosine", M, dtype, layout)
    if M == 0:
        return _fill(0, 0.0, dtype, device, requires_grad)
    c = math.pi / (M + 1 if not sym and M > 1 else M)
    k = _points(0.5 * c, (0.5 + (M - 1)) * c, M, dtype, layout, device, requires_grad)
    return torch.sin(k)


def gaussian(M, *, std=1.0, sym=True, dtype=None, layout=torch.strided, device=None,
             requires_grad=False):
    dtype = _dtype(dtype)
    _check("gaussian", M, dtype, layout)
    if std <= 0:
        raise ValueError(f"Standard deviation must be positive, got: {std} instead.")
    if M == 0:
        return _fill(0, 0.0, dtype, device, requires_grad)
    start = -(M if not sym and M > 1 else M - 1) / 2.0
    c = 1 / (std * math.sqrt(2))
    k = _points(start * c, (start + (M - 1)) * c, M, dtype, layout, device, requires_grad)
    return torch.exp(-k ** 2)


def kaiser(M, *, beta=12.0, sym=True, dtype=None, layout=torch.strided, device=None,
           requires_grad=False):
    dtype = _dtype(dtype)
    _check("kaiser", M, dtype, layout)
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got: {beta} instead.")
    if M == 0:
        return _fill(0, 0.0, dtype, device, requires_grad)
    if M == 1:
        return _fill(1, 1.0, dtype, device, requires_grad)
    b = torch.tensor(beta, dtype=dtype, device=device)
    c = 2.0 * beta / (M if not sym else M - 1)
    # PyTorch clamps the last point at beta (rounding could pass it, and sqrt would give nan)
    end = min(float(b.item()), -float(b.item()) + (M - 1) * c)
    k = _points(-float(b.item()), end, M, dtype, layout, device, requires_grad)
    return torch.i0(torch.sqrt(b * b - torch.pow(k, 2))) / torch.i0(b)


def hamming(M, *, sym=True, dtype=None, layout=torch.strided, device=None, requires_grad=False):
    return general_hamming(M, sym=sym, dtype=dtype, layout=layout, device=device,
                           requires_grad=requires_grad)


def hann(M, *, sym=True, dtype=None, layout=torch.strided, device=None, requires_grad=False):
    return general_hamming(M, alpha=0.5, sym=sym, dtype=dtype, layout=layout, device=device,
                           requires_grad=requires_grad)


def blackman(M, *, sym=True, dtype=None, layout=torch.strided, device=None, requires_grad=False):
    dtype = _dtype(dtype)
    _check("blackman", M, dtype, layout)
    return general_cosine(M, a=[0.42, 0.5, 0.08], sym=sym, dtype=dtype, layout=layout,
                          device=device, requires_grad=requires_grad)


def bartlett(M, *, sym=True, dtype=None, layout=torch.strided, device=None, requires_grad=False):
    dtype = _dtype(dtype)
    _check("bartlett", M, dtype, layout)
    if M == 0:
        return _fill(0, 0.0, dtype, device, requires_grad)
    if M == 1:
        return _fill(1, 1.0, dtype, device, requires_grad)
    c = 2 / (M if not sym else M - 1)
    k = _points(-1, -1 + (M - 1) * c, M, dtype, layout, device, requires_grad)
    return 1 - torch.abs(k)


def general_cosine(M, *, a, sym=True, dtype=None, layout=torch.strided, device=None,
                   requires_grad=False):
    """sum_i (-1)^i a[i] cos(i k), k = 2 pi n / (M - 1) (M when sym=False)."""
    dtype = _dtype(dtype)
    _check("general_cosine", M, dtype, layout)
    if M == 0:
        return _fill(0, 0.0, dtype, device, requires_grad)
    if M == 1:
        return _fill(1, 1.0, dtype, device, requires_grad)
    if not isinstance(a, Iterable):
        raise TypeError("Coefficients must be a list/tuple")
    if not a:
        raise ValueError("Coefficients cannot be empty")
    c = 2 * math.pi / (M if not sym else M - 1)
    k = _points(0, (M - 1) * c, M, dtype, layout, device, requires_grad)
    a_i = torch.tensor([(-1) ** i * w for i, w in enumerate(a)], device=device, dtype=dtype,
                       requires_grad=requires_grad)
    i = torch.arange(a_i.shape[0], dtype=a_i.dtype, device=a_i.device,
                     requires_grad=a_i.requires_grad)
    return (a_i.unsqueeze(-1) * torch.cos(i.unsqueeze(-1) * k)).sum(0)


def general_hamming(M, *, alpha=0.54, sym=True, dtype=None, layout=torch.strided, device=None,
                    requires_grad=False):
    return general_cosine(M, a=[alpha, 1.0 - alpha], sym=sym, dtype=dtype, layout=layout,
                          device=device, requires_grad=requires_grad)


def nuttall(M, *, sym=True, dtype=None, layout=torch.strided, device=None, requires_grad=False):
    return general_cosine(M, a=[0.3635819, 0.4891775, 0.1365995, 0.0106411], sym=sym,
                          dtype=dtype, layout=layout, device=device, requires_grad=requires_grad)
