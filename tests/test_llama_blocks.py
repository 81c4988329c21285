"""Llama-style blocks as nanoGPT/llama code writes them: RMSNorm (module, functional and the
hand-written rsqrt/mean form) and rotary embeddings through complex numbers (polar,
view_as_complex, view_as_real, flatten) against the real rotate-half form, vs NumPy float64."""
import numpy as np
import pytest

import framework as torch
from framework import nn
import framework.nn.functional as F
from conftest import assert_close

RNG = np.random.default_rng(3)
X = RNG.standard_normal((2, 3, 4))
W = RNG.standard_normal(4)


def _rms_ref(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def test_rms_norm_forms_agree_with_numpy():
    x, w = torch.tensor(X, dtype=torch.float32), torch.tensor(W, dtype=torch.float32)
    want = _rms_ref(X, W, 1e-6)
    assert_close(F.rms_norm(x, (4,), w, 1e-6), want, rtol=1e-5, atol=1e-6)
    m = nn.RMSNorm(4, eps=1e-6)
    with torch.no_grad():
        m.weight.copy_(w)
    assert_close(m(x), want, rtol=1e-5, atol=1e-6)
    hand = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w     # llama's own
    assert_close(hand, want, rtol=1e-5, atol=1e-6)
    # eps=None: the input dtype's machine epsilon
    assert_close(F.rms_norm(x, (3, 4)), X / np.sqrt((X * X).mean((1, 2), keepdims=True)
                                                   + np.finfo(np.float32).eps),
                 rtol=1e-5, atol=1e-6)
    xd = torch.tensor(X, requires_grad=True)
    wd = torch.tensor(W, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: F.rms_norm(a, (4,), b, 1e-3), (xd, wd))


def test_rms_norm_shape_errors_use_torchs_texts():
    x = torch.ones(2, 3)
    with pytest.raises(RuntimeError, match=r"expected input with shape \[\*2\], but got input "
                                           r"of size\[2, 3\]"):
        F.rms_norm(x, (2,))
    with pytest.raises(RuntimeError, match=r"shape \[\*4, 5\]"):
        F.rms_norm(x, (4, 5))
    with pytest.raises(RuntimeError, match="Input tensor must have at least 2 dimensions, but "
                                           "got 1"):
        F.rms_norm(torch.ones(3), (2, 3))


def test_rotary_complex_form_equals_rotate_half_form_and_numpy():
    B, T, H, D = 1, 5, 2, 4
    q = RNG.standard_normal((B, T, H, D)).astype(np.float32)
    inv = 1.0 / (10000.0 ** (np.arange(0, D, 2) / D))
    ang = np.outer(np.arange(T), inv)                                   # (T, D/2)
    # reference: pairs (q[2i], q[2i+1]) rotated by ang[t, i]
    qc = q[..., 0::2] + 1j * q[..., 1::2]
    rot = qc * np.exp(1j * ang)[None, :, None, :]
    want = np.stack([rot.real, rot.imag], -1).reshape(B, T, H, D)
    freqs = torch.outer(torch.arange(T), torch.tensor(inv, dtype=torch.float32))
    fc = torch.polar(torch.ones_like(freqs), freqs)
    assert fc.dtype == torch.complex64 and fc.shape == (T, D // 2)
    xq = torch.tensor(q, requires_grad=True)
    xc = torch.view_as_complex(xq.float().reshape(B, T, H, -1, 2))
    out = torch.view_as_real(xc * fc.view(1, T, 1, D // 2)).flatten(3)
    assert out.shape == (B, T, H, D) and out.grad_fn.name() == "ViewBackward0"
    assert_close(out, want, rtol=1e-5, atol=1e-5)
    # the rotation is orthogonal: the gradient of sum(out**2) is 2*q
    out.pow(2).sum().backward()
    assert_close(xq.grad, 2 * q, rtol=1e-5, atol=1e-5)
    # the real-valued rotate-half form rotates (q[i], q[i + D/2]) pairs instead
    qh = q[..., :D // 2] + 1j * q[..., D // 2:]
    roth = qh * np.exp(1j * ang)[None, :, None, :]
    want_h = np.concatenate([roth.real, roth.imag], -1)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None, :, None, :], emb.sin()[None, :, None, :]
    x = torch.tensor(q)
    half = torch.cat((-x[..., D // 2:], x[..., :D // 2]), dim=-1)
    assert_close(x * cos + half * sin, want_h, rtol=1e-5, atol=1e-5)
