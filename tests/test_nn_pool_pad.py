"""Pooling, padding, interpolation and pixel shuffle against NumPy float64 references."""
import itertools
import math

import numpy as np
import pytest

import framework as torch
from framework import nn
import framework.nn.functional as F
from framework.autograd import gradcheck
from conftest import assert_close, to_np


def T(a, rg=False):
    return torch.tensor(np.asarray(a, np.float64), requires_grad=rg)


@pytest.fixture
def r():
    return np.random.default_rng(2)


def out_size(n, k, s, p, d, ceil):
    num = n + 2 * p - d * (k - 1) - 1
    o = (-(-num // s) if ceil else num // s) + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1
    return o


def ref_max_pool2d(x, k, s, p, d, ceil):
    N, C, H, W = x.shape
    oh, ow = out_size(H, k[0], s[0], p[0], d[0], ceil), out_size(W, k[1], s[1], p[1], d[1], ceil)
    y = np.full((N, C, oh, ow), -np.inf)
    idx = np.zeros((N, C, oh, ow), np.int64)
    for n, c, i, j in itertools.product(range(N), range(C), range(oh), range(ow)):
        for a, b in itertools.product(range(k[0]), range(k[1])):
            h, w = i * s[0] - p[0] + a * d[0], j * s[1] - p[1] + b * d[1]
            if 0 <= h < H and 0 <= w < W and x[n, c, h, w] > y[n, c, i, j]:
                y[n, c, i, j] = x[n, c, h, w]
                idx[n, c, i, j] = h * W + w
    return y, idx


def ref_avg_pool2d(x, k, s, p, ceil, count_include_pad, divisor=None):
    N, C, H, W = x.shape
    oh, ow = out_size(H, k[0], s[0], p[0], 1, ceil), out_size(W, k[1], s[1], p[1], 1, ceil)
    y = np.zeros((N, C, oh, ow))
    for i, j in itertools.product(range(oh), range(ow)):
        h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
        h1, w1 = min(h0 + k[0], H + p[0]), min(w0 + k[1], W + p[1])
        size = (h1 - h0) * (w1 - w0)
        hs, ws, he, we = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
        tot = x[:, :, hs:he, ws:we].sum(axis=(2, 3))
        if divisor is not None:
            y[:, :, i, j] = tot / divisor
        elif count_include_pad:
            y[:, :, i, j] = tot / size
        else:
            y[:, :, i, j] = tot / ((he - hs) * (we - ws))
    return y


# ---- max pooling --------------------------------------------------------------------------------

@pytest.mark.parametrize("k,s,p,d,ceil", [
    ((2, 2), (2, 2), (0, 0), (1, 1), False),
    ((3, 3), (2, 2), (1, 1), (1, 1), True),
    ((3, 2), (2, 1), (1, 0), (1, 2), True),
    ((2, 3), (3, 2), (1, 1), (2, 1), False),
])
def test_max_pool2d_values_and_indices(r, k, s, p, d, ceil):
    x = r.standard_normal((2, 3, 8, 7))
    y, idx = F.max_pool2d(T(x), k, s, p, d, ceil_mode=ceil, return_indices=True)
    ry, ridx = ref_max_pool2d(x, k, s, p, d, ceil)
    assert_close(y, ry, rtol=0, atol=0)
    np.testing.assert_array_equal(to_np(idx), ridx)
    assert idx.dtype == torch.int64


def test_max_pool_gradient_goes_to_the_max(r):
    x = T(r.standard_normal((1, 2, 4, 4)), True)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    y.sum().backward()
    g = np.zeros(32)
    flat = (to_np(idx) + np.arange(2).reshape(1, 2, 1, 1) * 16).ravel()
    g[flat] = 1
    assert_close(x.grad, g.reshape(1, 2, 4, 4))
    # ties: PyTorch sends the whole gradient to the first maximum in the window
    z = torch.zeros(1, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    F.max_pool2d(z, 2).sum().backward()
    assert z.grad.tolist() == [[[[1.0, 0.0], [0.0, 0.0]]]]


def test_max_pool_1d_3d_and_module(r):
    x = r.standard_normal((2, 3, 9))
    y = F.max_pool1d(T(x), 3, 2, 1, ceil_mode=True)
    ry, _ = ref_max_pool2d(x[:, :, None, :], (1, 3), (1, 2), (0, 1), (1, 1), True)
    assert_close(y, ry[:, :, 0])
    x3 = r.standard_normal((1, 2, 4, 4, 4))
    y3 = F.max_pool3d(T(x3), 2)
    assert_close(y3, x3.reshape(1, 2, 2, 2, 2, 2, 2, 2).max(axis=(3, 5, 7)))
    m = nn.MaxPool2d(kernel_size=3, stride=2)
    assert repr(m) == "MaxPool2d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.MaxPool2d(2)) == \
        "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.MaxPool1d(3)) == \
        "MaxPool1d(kernel_size=3, stride=3, padding=0, dilation=1, ceil_mode=False)"
    mi = nn.MaxPool2d(2, return_indices=True)
    v, i = mi(T(r.standard_normal((1, 1, 4, 4))))
    assert v.shape == (1, 1, 2, 2) and i.shape == (1, 1, 2, 2)
    # unbatched (C, H, W)
    assert F.max_pool2d(torch.randn(3, 6, 6), 2).shape == (3, 3, 3)


def test_gradcheck_pools(r):
    x = T(r.standard_normal((1, 2, 5, 5)), True)
    assert gradcheck(lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True), (x,))
    assert gradcheck(lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
                     (x,))
    assert gradcheck(lambda x: F.adaptive_avg_pool2d(x, (3, 2)), (x,))
    assert gradcheck(lambda x: F.adaptive_max_pool2d(x, (2, 3)), (x,))
    x1 = T(r.standard_normal((2, 7)), True)
    assert gradcheck(lambda x: F.avg_pool1d(x, 2, 2, 1), (x1,))


# ---- average pooling ----------------------------------------------------------------------------

@pytest.mark.parametrize("k,s,p,ceil,cip,div", [
    ((2, 2), (2, 2), (0, 0), False, True, None),
    ((3, 3), (2, 2), (1, 1), True, True, None),
    ((3, 3), (2, 2), (1, 1), True, False, None),
    ((3, 2), (1, 2), (1, 0), False, False, None),
    ((2, 3), (2, 3), (0, 1), False, True, 5),
])
def test_avg_pool2d(r, k, s, p, ceil, cip, div):
    x = r.standard_normal((2, 2, 8, 7))
    y = F.avg_pool2d(T(x), k, s, p, ceil, cip, div)
    assert_close(y, ref_avg_pool2d(x, k, s, p, ceil, cip, div), atol=1e-12)


def test_avg_pool_1d_3d_modules(r):
    x = r.standard_normal((2, 3, 8))
    assert_close(F.avg_pool1d(T(x), 4), x.reshape(2, 3, 2, 4).mean(-1))
    x3 = r.standard_normal((1, 2, 4, 2, 6))
    assert_close(nn.AvgPool3d(2)(T(x3)), x3.reshape(1, 2, 2, 2, 1, 2, 3, 2).mean(axis=(3, 5, 7)))
    assert repr(nn.AvgPool2d(2)) == "AvgPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(nn.AvgPool1d(3)) == "AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))"
    assert repr(nn.AvgPool3d(2)) == "AvgPool3d(kernel_size=2, stride=2, padding=0)"


def test_adaptive_pools(r):
    x = r.standard_normal((2, 3, 7, 10))
    y = F.adaptive_avg_pool2d(T(x), (3, 4))
    ref = np.zeros((2, 3, 3, 4))
    for i in range(3):
        for j in range(4):
            h0, h1 = (i * 7) // 3, -(-((i + 1) * 7) // 3)
            w0, w1 = (j * 10) // 4, -(-((j + 1) * 10) // 4)
            ref[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    assert_close(y, ref, atol=1e-12)
    v, idx = F.adaptive_max_pool2d(T(x), (3, 4), return_indices=True)
    refm = np.zeros((2, 3, 3, 4))
    for i in range(3):
        for j in range(4):
            h0, h1 = (i * 7) // 3, -(-((i + 1) * 7) // 3)
            w0, w1 = (j * 10) // 4, -(-((j + 1) * 10) // 4)
            refm[:, :, i, j] = x[:, :, h0:h1, w0:w1].max(axis=(2, 3))
    assert_close(v, refm, rtol=0, atol=0)
    np.testing.assert_array_equal(np.take_along_axis(x.reshape(2, 3, -1), to_np(idx).reshape(2, 3, -1),
                                                     2).reshape(2, 3, 3, 4), refm)
    # global pooling and None in output_size
    assert_close(nn.AdaptiveAvgPool2d(1)(T(x)), x.mean(axis=(2, 3), keepdims=True), atol=1e-12)
    assert nn.AdaptiveAvgPool2d((6, None))(T(x)).shape == (2, 3, 6, 10)
    assert_close(F.adaptive_avg_pool1d(T(x[:, :, 0]), 5), x[:, :, 0].reshape(2, 3, 5, 2).mean(-1))
    assert repr(nn.AdaptiveAvgPool2d((6, 6))) == "AdaptiveAvgPool2d(output_size=(6, 6))"
    assert repr(nn.AdaptiveMaxPool2d(2)) == "AdaptiveMaxPool2d(output_size=2)"


def test_pool_bad_inputs():
    x = torch.randn(1, 3, 2, 2)
    with pytest.raises(RuntimeError, match="Output size is too small"):
        F.max_pool2d(x, 3)
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        F.max_pool2d(torch.randn(1, 3, 8, 8), 3, padding=2)
    with pytest.raises(RuntimeError, match="Output size is too small"):
        F.avg_pool2d(x, 3)
    with pytest.raises(RuntimeError):
        F.max_pool2d(torch.randn(3, 8), 3)
    with pytest.raises(RuntimeError, match="Expected 3D or 4D tensor"):
        F.adaptive_avg_pool2d(torch.randn(3, 4), 2)
    with pytest.raises(RuntimeError):
        nn.MaxPool2d(5)(x)
    assert x.shape == (1, 3, 2, 2)
    # avg_pool3d (and lp_pool3d) reject an unpadded input smaller than the kernel, even when
    # padding or ceil_mode would give a non-empty output (max_pool3d does not)
    x3 = torch.randn(1, 1, 2, 2, 8)
    with pytest.raises(RuntimeError, match="smaller than kernel size"):
        F.avg_pool3d(x3, (3, 1, 1), padding=(1, 0, 0))
    with pytest.raises(RuntimeError, match="smaller than kernel size"):
        F.avg_pool3d(x3, (1, 3, 1), ceil_mode=True, stride=1, padding=(0, 1, 0))
    with pytest.raises(RuntimeError, match="smaller than kernel size"):
        F.lp_pool3d(x3, 2, (3, 1, 1))
    assert F.max_pool3d(x3, (3, 1, 1), padding=(1, 0, 0)).shape == (1, 1, 1, 2, 8)
    assert F.avg_pool3d(x3, (2, 2, 4), padding=(1, 1, 2)).shape == (1, 1, 2, 2, 3)


# ---- padding ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode,npmode", [("constant", "constant"), ("reflect", "reflect"),
                                         ("replicate", "edge"), ("circular", "wrap")])
def test_pad_modes(r, mode, npmode):
    x = r.standard_normal((2, 3, 4, 5))
    y = F.pad(T(x), (1, 2, 3, 1), mode=mode)
    assert_close(y, np.pad(x, [(0, 0), (0, 0), (3, 1), (1, 2)], mode=npmode), rtol=0, atol=0)
    x1 = r.standard_normal((2, 6))
    assert_close(F.pad(T(x1), (2, 3), mode=mode), np.pad(x1, [(0, 0), (2, 3)], mode=npmode))
    x3 = r.standard_normal((1, 2, 3, 4, 5))
    assert_close(F.pad(T(x3), (1, 0, 2, 1, 1, 2), mode=mode),
                 np.pad(x3, [(0, 0), (0, 0), (1, 2), (2, 1), (1, 0)], mode=npmode))
    xg = T(r.standard_normal((1, 2, 4, 4)), True)
    assert gradcheck(lambda x: F.pad(x, (1, 2, 2, 1), mode=mode), (xg,))


def test_pad_constant_value_and_negative(r):
    x = r.standard_normal((2, 4, 5))
    y = F.pad(T(x), (-1, 2, 1, -2), value=3.5)
    ref = np.pad(x[:, :-2, 1:], [(0, 0), (1, 0), (0, 2)], constant_values=3.5)
    assert_close(y, ref)
    # pads on every dim, the first pair on the last dim
    assert F.pad(torch.zeros(2, 3), (1, 1, 2, 2)).shape == (6, 5)


def test_pad_reflect_negative_reflects_about_uncropped_input():
    # out[i] = in[reflect(i - left)] over the whole input: a negative pad on one side only
    # crops the output, it does not move the reflection axis.
    x = T(np.arange(5.0).reshape(1, 1, 5))
    assert F.pad(x, (3, -2), mode="reflect").tolist() == [[[3.0, 2.0, 1.0, 0.0, 1.0, 2.0]]]
    assert F.pad(x, (-2, 3), mode="reflect").tolist() == [[[2.0, 3.0, 4.0, 3.0, 2.0, 1.0]]]
    assert F.pad(x, (-4, 3), mode="reflect").tolist() == [[[4.0, 3.0, 2.0, 1.0]]]
    assert F.pad(x, (3, -6), mode="reflect").tolist() == [[[3.0, 2.0]]]
    # circular still crops first, then wraps the cropped input
    assert F.pad(x, (3, -2), mode="circular").tolist() == [[[0.0, 1.0, 2.0, 0.0, 1.0, 2.0]]]
    x2 = np.arange(30.0).reshape(1, 5, 6)
    ref = np.pad(x2, [(0, 0), (3, 0), (0, 2)], mode="reflect")[:, :-2, 1:]
    assert_close(F.pad(T(x2), (-1, 2, 3, -2), mode="reflect"), ref, rtol=0, atol=0)


def test_pad_bad_inputs():
    x = torch.randn(1, 1, 3)
    with pytest.raises(RuntimeError, match="Padding size should be less than"):
        F.pad(x, (3, 3), mode="reflect")
    with pytest.raises(RuntimeError, match="divisible by 2"):
        F.pad(x, (1,))
    with pytest.raises(RuntimeError, match="wrapping around"):
        F.pad(x, (4, 4), mode="circular")
    with pytest.raises(NotImplementedError):
        F.pad(x, (1, 1), mode="foo")
    with pytest.raises(NotImplementedError):
        F.pad(torch.randn(3), (1, 1), mode="reflect")
    with pytest.raises(RuntimeError, match="doesn't take in value"):
        F.pad(x, (1, 1), mode="reflect", value=3)


def test_padding_modules_and_seed_shapes():
    # seed 5.1 / T9: ReflectionPad2d((left, right, top, bottom))
    x = torch.randn(64, 3, 220, 220)
    assert nn.ReflectionPad2d((3, 3, 5, 5))(x).shape == (64, 3, 230, 226)
    assert nn.ReflectionPad2d(3)(x).shape == (64, 3, 226, 226)
    t = torch.arange(9.).reshape(1, 1, 3, 3)
    assert nn.ReflectionPad2d(1)(t)[0, 0].tolist() == [
        [4., 3., 4., 5., 4.], [1., 0., 1., 2., 1.], [4., 3., 4., 5., 4.],
        [7., 6., 7., 8., 7.], [4., 3., 4., 5., 4.]]
    assert nn.ReplicationPad2d((1, 0, 0, 1))(t)[0, 0].tolist() == [
        [0., 0., 1., 2.], [3., 3., 4., 5.], [6., 6., 7., 8.], [6., 6., 7., 8.]]
    assert nn.ZeroPad2d((0, 1, 1, 0))(t)[0, 0].tolist() == [
        [0., 0., 0., 0.], [0., 1., 2., 0.], [3., 4., 5., 0.], [6., 7., 8., 0.]]
    assert nn.ConstantPad2d(1, -1.)(t)[0, 0, 0].tolist() == [-1.] * 5
    assert nn.ReflectionPad1d(2)(torch.arange(4.).reshape(1, 1, 4))[0, 0].tolist() == \
        [2., 1., 0., 1., 2., 3., 2., 1.]
    assert repr(nn.ReflectionPad1d(2)) == "ReflectionPad1d((2, 2))"
    assert repr(nn.ReflectionPad2d((1, 2, 3, 4))) == "ReflectionPad2d((1, 2, 3, 4))"
    assert repr(nn.ReplicationPad2d(1)) == "ReplicationPad2d((1, 1, 1, 1))"
    assert repr(nn.ZeroPad2d(2)) == "ZeroPad2d((2, 2, 2, 2))"
    assert repr(nn.ConstantPad2d(2, 3.5)) == "ConstantPad2d(padding=(2, 2, 2, 2), value=3.5)"


# ---- interpolate --------------------------------------------------------------------------------

def ref_linear_1d(x, out, align_corners, scale=None):
    """Interpolate the last axis of x, PyTorch's source-index rule, float64."""
    n = x.shape[-1]
    y = np.zeros(x.shape[:-1] + (out,))
    for o in range(out):
        if align_corners:
            src = o * (n - 1) / (out - 1) if out > 1 else 0.0
        else:
            sc = 1.0 / scale if scale else n / out
            src = max(sc * (o + 0.5) - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n - 1)
        i1 = min(i0 + 1, n - 1)
        lam = src - i0
        y[..., o] = (1 - lam) * x[..., i0] + lam * x[..., i1]
    return y


def ref_cubic_1d(x, out, align_corners):
    a = -0.75
    n = x.shape[-1]

    def w(t):
        t = abs(t)
        if t <= 1:
            return ((a + 2) * t - (a + 3)) * t * t + 1
        if t < 2:
            return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
        return 0.0
    y = np.zeros(x.shape[:-1] + (out,))
    for o in range(out):
        src = o * (n - 1) / (out - 1) if align_corners else (n / out) * (o + 0.5) - 0.5
        f = math.floor(src)
        for j in range(-1, 3):
            y[..., o] += w(src - (f + j)) * x[..., min(max(f + j, 0), n - 1)]
    return y


@pytest.mark.parametrize("ac", [False, True])
def test_interpolate_linear_modes(r, ac):
    x = r.standard_normal((2, 3, 5))
    assert_close(F.interpolate(T(x), size=8, mode="linear", align_corners=ac),
                 ref_linear_1d(x, 8, ac), atol=1e-12)
    x2 = r.standard_normal((1, 2, 4, 5))
    ref = ref_linear_1d(ref_linear_1d(x2, 7, ac).swapaxes(-1, -2), 6, ac).swapaxes(-1, -2)
    assert_close(F.interpolate(T(x2), size=(6, 7), mode="bilinear", align_corners=ac), ref,
                 atol=1e-12)
    refc = ref_cubic_1d(ref_cubic_1d(x2, 7, ac).swapaxes(-1, -2), 6, ac).swapaxes(-1, -2)
    assert_close(F.interpolate(T(x2), size=(6, 7), mode="bicubic", align_corners=ac), refc,
                 atol=1e-12)
    x3 = r.standard_normal((1, 1, 3, 4, 2))
    y3 = F.interpolate(T(x3), scale_factor=2, mode="trilinear", align_corners=ac)
    ref3 = x3
    for ax in (2, 3, 4):
        ref3 = np.moveaxis(ref_linear_1d(np.moveaxis(ref3, ax, -1), 2 * x3.shape[ax], ac), -1, ax)
    assert_close(y3, ref3, atol=1e-12)


def test_interpolate_nearest_and_hand_values():
    x = torch.tensor([[[1., 2., 3.]]])
    assert F.interpolate(x, scale_factor=2).tolist() == [[[1., 1., 2., 2., 3., 3.]]]
    assert F.interpolate(x, size=5).tolist() == [[[1., 1., 2., 2., 3.]]]
    assert F.interpolate(x, size=5, mode="nearest-exact").tolist() == [[[1., 1., 2., 3., 3.]]]
    assert F.interpolate(x, size=5, mode="linear", align_corners=True).tolist() == \
        [[[1., 1.5, 2., 2.5, 3.]]]
    y = F.interpolate(torch.tensor([[[0., 4.]]]), scale_factor=2, mode="linear")
    assert y.tolist() == [[[0., 1., 3., 4.]]]
    z = F.interpolate(torch.arange(16.).reshape(1, 1, 4, 4), scale_factor=0.5, mode="area")
    assert z.tolist() == [[[[2.5, 4.5], [10.5, 12.5]]]]


def test_interpolate_seed_shapes_and_upsample():
    # seed 5.4 / T9
    x = torch.randn(1, 3, 64, 64)
    assert F.interpolate(x, scale_factor=0.5).shape == (1, 3, 32, 32)
    assert F.interpolate(x, size=[32, 32]).shape == (1, 3, 32, 32)
    assert F.interpolate(x, size=[128, 128], mode="bilinear").shape == (1, 3, 128, 128)
    u = nn.Upsample(scale_factor=2, mode="nearest")
    assert repr(u) == "Upsample(scale_factor=2.0, mode='nearest')"
    assert u(torch.randn(2, 3, 4, 5)).shape == (2, 3, 8, 10)
    assert repr(nn.Upsample(size=(3, 4), mode="bilinear", align_corners=True)) == \
        "Upsample(size=(3, 4), mode='bilinear')"
    ub = nn.UpsamplingBilinear2d(scale_factor=2)
    t = torch.tensor([[[[0., 3.]]]])
    assert ub(t)[0, 0, 0].tolist() == [0., 1., 2., 3.]


def ref_lanczos_aa_1d(x, out):
    """PIL's antialiased Lanczos-3 resampling of the last axis (what torch 2.13's lanczos mode
    computes): the sinc(t) sinc(t / 3) filter widened by the downscale factor, rows normalised."""
    n = x.shape[-1]
    sc = n / out
    sup, inv = (3.0 * sc, 1.0 / sc) if sc >= 1 else (3.0, 1.0)
    y = np.zeros(x.shape[:-1] + (out,))
    for o in range(out):
        c = sc * (o + 0.5)
        j = np.arange(max(int(c - sup + 0.5), 0), min(int(c + sup + 0.5), n))
        t = np.abs((j - c + 0.5) * inv)
        w = np.where(t < 3, np.sinc(t) * np.sinc(t / 3), 0.0)
        y[..., o] = (x[..., j] * (w / w.sum())).sum(-1)
    return y


def test_interpolate_lanczos_antialias(r):
    x = r.standard_normal((2, 3, 9, 11))
    for size in [(4, 5), (18, 23), (7, 20), (1, 1)]:
        ref = ref_lanczos_aa_1d(ref_lanczos_aa_1d(x, size[1]).swapaxes(-1, -2),
                                size[0]).swapaxes(-1, -2)
        y = F.interpolate(T(x), size=size, mode="lanczos", antialias=True)
        assert y.dtype == torch.float64 and tuple(y.shape) == (2, 3) + size
        assert_close(y, ref, rtol=1e-10, atol=1e-12)
    # a 1x1 output of a 2x2 image: the four pixels equally weighted (a symmetric filter)
    one = F.interpolate(T([[[[1.0, 2.0], [3.0, 5.0]]]]), size=1, mode="lanczos", antialias=True)
    assert abs(one.item() - 2.75) < 1e-12
    xg = T(r.standard_normal((1, 1, 5, 4)), True)
    y = F.interpolate(xg, size=(3, 6), mode="lanczos", antialias=True)
    assert y.grad_fn.name() == "UpsampleLanczos2DAaBackward0"
    assert torch.autograd.gradcheck(
        lambda v: F.interpolate(v, size=(3, 6), mode="lanczos", antialias=True), (xg,))
    with pytest.raises(ValueError, match="^Lanczos mode requires antialias=True$"):
        F.interpolate(T(x), size=(4, 5), mode="lanczos")
    with pytest.raises(ValueError, match="^Lanczos mode does not support align_corners=True$"):
        F.interpolate(T(x), size=(4, 5), mode="lanczos", antialias=True, align_corners=True)
    with pytest.raises(NotImplementedError, match=r"\| lanczos \|.*\(got lanczos\)"):
        F.interpolate(T(x[0]), size=4, mode="lanczos")
    with pytest.raises(NotImplementedError, match="compute_index_ranges_weights.*'Half'"):
        F.interpolate(T(x).half(), size=(4, 5), mode="lanczos", antialias=True)


def _u8_matrix(n, o, mode, ac, aa, scale=None):
    """The (o, n) float64 weights PyTorch's uint8 resampling starts from: PIL's normalised
    filter rows when antialiasing, else the float kernels' taps (bicubic A = -0.75), a clamped
    index's taps adding up in one column."""
    sc = ((n - 1) / (o - 1) if o > 1 else 0.0) if ac else (1 / scale if scale else n / o)
    W = np.zeros((o, n))
    for i in range(o):
        if aa:
            size = {"bilinear": 2, "bicubic": 4, "lanczos": 6}[mode]
            sup, inv, c = size / 2 * max(sc, 1.0), 1 / max(sc, 1.0), sc * (i + 0.5)
            j = np.arange(max(int(c - sup + 0.5), 0), min(int(c + sup + 0.5), n))
            t = np.abs((j - c + 0.5) * inv)
            w = {"bilinear": np.maximum(1 - t, 0),
                 "bicubic": np.where(t < 1, (1.5 * t - 2.5) * t * t + 1,
                                     np.where(t < 2, -0.5 * (((t - 5) * t + 8) * t - 4), 0)),
                 "lanczos": np.where(t < 3, np.sinc(t) * np.sinc(t / 3), 0)}[mode]
            W[i, j] = w / w.sum()
        elif mode == "bilinear":
            s = i * sc if ac else max(sc * (i + 0.5) - 0.5, 0)
            i0 = min(int(s), n - 1)
            W[i, i0] += 1 - (s - i0)
            W[i, min(i0 + 1, n - 1)] += s - i0
        else:
            s = i * sc if ac else sc * (i + 0.5) - 0.5
            f = math.floor(s)
            a, t = -0.75, s - f
            ws = [((a * x - 5 * a) * x + 8 * a) * x - 4 * a if x > 1 else
                  ((a + 2) * x - (a + 3)) * x * x + 1 for x in (t + 1, t, 1 - t, 2 - t)]
            for k, w in zip(range(f - 1, f + 3), ws):
                W[i, min(max(k, 0), n - 1)] += w
    return W


def ref_interpolate_uint8(x, out, mode, ac=False, aa=False, scales=(None, None)):
    """Fixed point as PyTorch's uint8 kernels: weights * 2**p rounded half away from zero (p the
    largest keeping 2 * max weight under 2**15), int sums + 2**(p - 1) shifted right by p and
    clamped; the width pass first, a dimension whose size is unchanged left alone."""
    y = x.astype(np.int64)
    for ax, o, sc in ((-1, out[1], scales[1]), (-2, out[0], scales[0])):
        n = y.shape[ax]
        if n == o:
            continue
        W = _u8_matrix(n, o, mode, ac, aa, sc)
        p = next((q for q in range(22) if int(0.5 + W.max() * 2 ** (q + 1)) >= 2 ** 15), 22)
        v = W * 2 ** p
        Wq = np.trunc(np.where(v < 0, v - 0.5, v + 0.5)).astype(np.int64)
        z = np.moveaxis(y, ax, -1) @ Wq.T
        y = np.moveaxis(np.clip((z + 2 ** (p - 1)) >> p, 0, 255), -1, ax)
    return y.astype(np.uint8)


def test_interpolate_uint8_hand_values():
    # [0, 255] to 4 pixels: taps (1), (.75, .25), (.25, .75), (1); the largest weight 1 gives
    # p = 14, so 255 * 4096 + 8192 >> 14 = 64 and 255 * 12288 + 8192 >> 14 = 191
    x = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)
    y = F.interpolate(x, size=(1, 4), mode="bilinear")
    assert y.dtype == torch.uint8 and to_np(y).tolist() == [[[[0, 64, 191, 255]]]]
    # align_corners: 0, 85, 170, 255 (thirds)
    assert to_np(F.interpolate(x, size=(1, 4), mode="bilinear", align_corners=True)).ravel() \
        .tolist() == [0, 85, 170, 255]
    # bicubic overshoots are clamped to 0..255
    y = F.interpolate(torch.tensor([[[[14, 194]]]], dtype=torch.uint8), size=(1, 3),
                      mode="bicubic")
    assert to_np(y).ravel().tolist() == [0, 104, 210]


@pytest.mark.parametrize("mode,ac,aa", [("bilinear", False, False), ("bilinear", True, False),
                                        ("bicubic", False, False), ("bicubic", True, False),
                                        ("bilinear", False, True), ("bicubic", False, True),
                                        ("lanczos", False, True)])
def test_interpolate_uint8_matches_fixed_point_reference(mode, ac, aa):
    rng = np.random.default_rng(5)
    for shape, kw in [((2, 3, 7, 9), dict(size=(12, 5))), ((1, 1, 13, 6), dict(size=(4, 17))),
                      ((1, 2, 9, 9), dict(scale_factor=(1.7, 0.45))),
                      ((1, 4, 5, 8), dict(size=(5, 3)))]:
        x = rng.integers(0, 256, shape).astype(np.uint8)
        y = F.interpolate(torch.tensor(x), mode=mode, align_corners=ac, antialias=aa, **kw)
        out = tuple(y.shape[-2:])
        sf = kw.get("scale_factor", (None, None))
        assert y.dtype == torch.uint8
        np.testing.assert_array_equal(to_np(y), ref_interpolate_uint8(x, out, mode, ac, aa, sf))
        if mode == "bilinear":      # (no overshoot: each pass's rounding is all that differs)
            f = F.interpolate(torch.tensor(x, dtype=torch.float64), mode=mode, align_corners=ac,
                              antialias=aa, **kw)
            assert np.abs(to_np(y).astype(float) - to_np(f)).max() <= 1.0


def test_interpolate_uint8_channels_last():
    rng = np.random.default_rng(6)
    x = rng.integers(0, 256, (1, 3, 6, 5)).astype(np.uint8)
    xc = torch.tensor(x).contiguous(memory_format=torch.channels_last)
    y = F.interpolate(xc, size=(4, 7), mode="bilinear")
    assert y.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(to_np(y), ref_interpolate_uint8(x, (4, 7), "bilinear"))
    # (channels_last escapes the contiguous kernel's row quirk below)
    x = rng.integers(0, 256, (1, 5, 6, 5)).astype(np.uint8)
    yc = F.interpolate(torch.tensor(x).contiguous(memory_format=torch.channels_last),
                       size=(3, 1), mode="bilinear")
    np.testing.assert_array_equal(to_np(yc), ref_interpolate_uint8(x, (3, 1), "bilinear"))


def test_interpolate_uint8_generic_kernel_rows_and_errors():
    # PyTorch's generic kernel (over 4 channels, contiguous) resamples a 1-pixel-wide result's
    # height with output row 0's taps for every row
    x = np.random.default_rng(6).integers(0, 256, (1, 5, 6, 5)).astype(np.uint8)
    y = to_np(F.interpolate(torch.tensor(x), size=(3, 1), mode="bilinear"))
    row0 = ref_interpolate_uint8(x, (3, 1), "bilinear")[:, :, :1]
    np.testing.assert_array_equal(y, np.repeat(row0, 3, axis=2))
    with pytest.raises(RuntimeError, match=r"Non-empty 4D data tensor expected .*\[1, 0, 5, 5\]"):
        F.interpolate(torch.zeros(1, 0, 5, 5, dtype=torch.uint8), size=(7, 7), mode="bilinear")
    with pytest.raises(RuntimeError, match=r"greater than 0, but got input \(H: 3, W: 3\) "
                                           r"output \(H: 0, W: 4\)"):
        F.interpolate(torch.zeros(1, 1, 3, 3), size=(0, 4), mode="bilinear")
    with pytest.raises(NotImplementedError, match="compute_indices_weights_linear.*Byte"):
        F.interpolate(torch.zeros(1, 1, 3, dtype=torch.uint8), size=5, mode="linear")


def test_interpolate_gradcheck(r):
    for mode, shape, ac in [("bilinear", (1, 1, 3, 4), False), ("bicubic", (1, 1, 3, 3), True),
                            ("nearest", (1, 2, 3), None), ("linear", (1, 2, 4), True)]:
        x = T(r.standard_normal(shape), True)
        assert gradcheck(lambda x: F.interpolate(x, scale_factor=1.5, mode=mode, align_corners=ac),
                         (x,))


def test_interpolate_bad_inputs():
    x = torch.randn(1, 3, 4, 4)
    with pytest.raises(NotImplementedError, match="linear mode needs 3D input"):
        F.interpolate(x, scale_factor=2, mode="linear")
    with pytest.raises(ValueError, match="align_corners option"):
        F.interpolate(x, scale_factor=2, mode="nearest", align_corners=True)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(x, scale_factor=2, size=3)
    with pytest.raises(ValueError, match="either size or scale_factor"):
        F.interpolate(x)
    with pytest.raises(NotImplementedError):
        F.interpolate(x, scale_factor=2, mode="foo")


# ---- pixel shuffle -----------------------------------------------------------------------------

def test_pixel_shuffle_roundtrip(r):
    x = r.standard_normal((2, 8, 3, 4))
    y = F.pixel_shuffle(T(x), 2)
    ref = x.reshape(2, 2, 2, 2, 3, 4).transpose(0, 1, 4, 2, 5, 3).reshape(2, 2, 6, 8)
    assert_close(y, ref, rtol=0, atol=0)
    assert_close(F.pixel_unshuffle(y, 2), x, rtol=0, atol=0)
    assert repr(nn.PixelShuffle(2)) == "PixelShuffle(upscale_factor=2)"
    assert repr(nn.PixelUnshuffle(3)) == "PixelUnshuffle(downscale_factor=3)"
    assert nn.PixelShuffle(3)(torch.randn(1, 9, 2, 2)).shape == (1, 1, 6, 6)
    with pytest.raises(RuntimeError, match="divisible by the square"):
        F.pixel_shuffle(torch.randn(1, 3, 4, 4), 2)
    with pytest.raises(RuntimeError, match="height to be divisible"):
        F.pixel_unshuffle(torch.randn(1, 3, 5, 4), 2)
    with pytest.raises(RuntimeError, match="positive upscale_factor, but got 0"):
        F.pixel_shuffle(torch.randn(1, 4, 2, 2), 0)
    with pytest.raises(RuntimeError, match="positive downscale_factor, but got -2"):
        F.pixel_unshuffle(torch.randn(1, 4, 2, 2), -2)


def test_against_torch(r):
    real = pytest.importorskip("torch")
    x = r.standard_normal((2, 3, 9, 8))
    for mode in ["bilinear", "bicubic", "nearest"]:
        ac = None if mode == "nearest" else False
        ours = F.interpolate(T(x), scale_factor=1.7, mode=mode, align_corners=ac)
        theirs = real.nn.functional.interpolate(real.tensor(x), scale_factor=1.7, mode=mode,
                                                align_corners=ac)
        assert_close(ours, theirs.numpy(), atol=1e-12)
    ours = F.max_pool2d(T(x), 3, 2, 1, ceil_mode=True, return_indices=True)
    theirs = real.nn.functional.max_pool2d(real.tensor(x), 3, 2, 1, ceil_mode=True,
                                           return_indices=True)
    assert_close(ours[0], theirs[0].numpy())
    np.testing.assert_array_equal(to_np(ours[1]), theirs[1].numpy())
    ours = F.avg_pool2d(T(x), 3, 2, 1, ceil_mode=True, count_include_pad=False)
    theirs = real.nn.functional.avg_pool2d(real.tensor(x), 3, 2, 1, ceil_mode=True,
                                           count_include_pad=False)
    assert_close(ours, theirs.numpy(), atol=1e-12)
