"""Vision workflow details found by running image-model scripts under PyTorch and Kiln and
diffing the output: grad_fn names of pools, pads, losses, norms and samplers, interpolate's
dtype refusals and messages, cross_entropy's probability-target rules, half-precision input
to float32 norm layers (as under autocast). References are NumPy float64 or hand-derived."""
import warnings

import numpy as np
import pytest

import framework as torch
import framework.nn.functional as F
from framework import nn
from conftest import to_np


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_1d_pools_are_squeezed_2d_pools():
    a = _x(2, 3, 8)
    x = torch.tensor(a, dtype=torch.float32, requires_grad=True)
    outs = [F.avg_pool1d(x, 2), F.max_pool1d(x, 2), F.max_pool1d(x, 2, return_indices=True)[0],
            F.adaptive_avg_pool1d(x, 4), F.adaptive_max_pool1d(x, 4)]
    assert [o.grad_fn.name() for o in outs] == ["SqueezeBackward1"] * 5
    w = a.reshape(2, 3, 4, 2)
    for o, ref in zip(outs, [w.mean(-1), w.max(-1), w.max(-1), w.mean(-1), w.max(-1)]):
        np.testing.assert_allclose(to_np(o), ref, rtol=1e-6, atol=1e-6)
    assert F.max_pool2d(x[None], 2).grad_fn.name() == "MaxPool2DWithIndicesBackward0"


def test_interpolate_dtype_refusals_and_messages():
    xi = torch.arange(24).reshape(1, 2, 3, 4)
    with pytest.raises(NotImplementedError,
                       match="\"upsample_nearest2d_channels_last\" not implemented for 'Long'"):
        F.interpolate(xi, scale_factor=2)
    with pytest.raises(NotImplementedError,
                       match="\"compute_indices_weights_linear\" not implemented for 'Int'"):
        F.interpolate(xi[0].int(), scale_factor=2, mode="linear")
    with pytest.raises(NotImplementedError, match="\"adaptive_avg_pool2d\" not implemented"):
        F.interpolate(xi, size=2, mode="area")
    with pytest.raises(NotImplementedError, match="compute_index_ranges_weights.*'Half'"):
        F.interpolate(xi.half(), scale_factor=2, mode="bilinear", antialias=True)
    # uint8 nearest is a kernel PyTorch has: a copy of the nearest source pixels
    u = F.interpolate(xi.to(torch.uint8), scale_factor=2)
    assert u.dtype == torch.uint8
    np.testing.assert_array_equal(to_np(u)[0, 0, 0], [0, 0, 1, 1, 2, 2, 3, 3])
    x = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError) as e:
        F.interpolate(x, scale_factor=2, antialias=True)
    assert str(e.value) == ("Anti-alias option is restricted to bilinear, bicubic, and lanczos "
                            "modes and requires a 4-D tensor as input")
    with pytest.raises(ValueError, match="Anti-alias"):   # checked before the rank/mode pair
        F.interpolate(x, scale_factor=2, mode="linear", antialias=True)
    with pytest.raises(ValueError, match=r"and output size of \(2, 3, 4\)\. Please"):
        F.interpolate(x, size=(2, 3, 4))
    with pytest.raises(NotImplementedError, match=r"Only 3D, 4D and 5D input.*\(got bicubic\)"):
        F.interpolate(x[0], scale_factor=2, mode="bicubic")


def test_cross_entropy_probability_targets_by_shape():
    a = _x(3, 4, seed=1)
    x = torch.tensor(a, requires_grad=True)
    p = np.abs(_x(3, 4, seed=2))
    p /= p.sum(1, keepdims=True)
    logp = a - np.log(np.exp(a).sum(1, keepdims=True))
    m = F.cross_entropy(x, torch.tensor(p))
    assert m.grad_fn.name() == "DivBackward1"
    np.testing.assert_allclose(m.item(), -(logp * p).sum() / 3, rtol=1e-12)
    s = F.cross_entropy(x, torch.tensor(p), reduction="sum")
    assert s.grad_fn.name() == "NegBackward0"
    np.testing.assert_allclose(s.item(), -(logp * p).sum(), rtol=1e-12)
    with pytest.raises(RuntimeError, match="Expected floating point type for target with class "
                                           "probabilities, got Long"):
        F.cross_entropy(x, torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(RuntimeError, match="ignore_index is not supported for floating point"):
        F.cross_entropy(x, torch.tensor(p), ignore_index=0)
    # a float target of another shape is a class-index target: the dtype check refuses it
    with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte"):
        F.cross_entropy(x, torch.tensor([0.0, 1.0, 2.0]))


def test_spatial_nll_grad_fn_names():
    a = _x(2, 3, 2, 2, seed=3)
    x = torch.tensor(a, requires_grad=True)
    t = np.array([[[0, 1], [2, 0]], [[1, 1], [2, 2]]])
    tt = torch.tensor(t)
    logp = a - np.log(np.exp(a).sum(1, keepdims=True))
    picked = np.take_along_axis(logp, t[:, None], 1)[:, 0]
    for red, ref in (("mean", -picked.mean()), ("sum", -picked.sum()), ("none", -picked)):
        r = F.cross_entropy(x, tt, reduction=red)
        assert r.grad_fn.name() == "NllLoss2DBackward0"
        np.testing.assert_allclose(to_np(r), ref, rtol=1e-12)
    x3 = torch.tensor(a.reshape(2, 3, 4), requires_grad=True)
    t3 = tt.reshape(2, 4)
    assert F.cross_entropy(x3, t3).grad_fn.name() == "NllLoss2DBackward0"
    assert F.cross_entropy(x3, t3, reduction="none").grad_fn.name() == "ViewBackward0"
    assert F.cross_entropy(x[:, :, 0], tt[:, 0]).grad_fn.name() == "NllLoss2DBackward0"
    assert F.cross_entropy(x[:, :, 0, 0], tt[:, 0, 0]).grad_fn.name() == "NllLossBackward0"


def test_loss_grad_fn_names():
    a, b = _x(3, 4, seed=4), _x(3, 4, seed=5)
    x, y = torch.tensor(a, requires_grad=True), torch.tensor(b)
    for red, name, ref in (("mean", "MeanBackward0", np.abs(a - b).mean()),
                           ("sum", "SumBackward0", np.abs(a - b).sum()),
                           ("none", "AbsBackward0", np.abs(a - b))):
        r = F.smooth_l1_loss(x, y, beta=0.0, reduction=red)      # PyTorch's l1_loss then
        assert r.grad_fn.name() == name
        np.testing.assert_allclose(to_np(r), ref, rtol=1e-12)
    s = np.sign(b)
    for red in ("mean", "sum", "none"):
        r = F.soft_margin_loss(x, torch.tensor(s), reduction=red)
        assert r.grad_fn.name() == "SoftMarginLossBackward0"
    np.testing.assert_allclose(F.soft_margin_loss(x, torch.tensor(s)).item(),
                               np.log1p(np.exp(-s * a)).mean(), rtol=1e-12)


def test_pad_and_dropout_grad_fn_names():
    x = torch.randn(2, 3, 4, 5, requires_grad=True)
    assert F.pad(x, (1, 1, 1, 1), mode="reflect").grad_fn.name() == "ReflectionPad2DBackward0"
    assert F.pad(x[0], (1, 1), mode="replicate").grad_fn.name() == "ReplicationPad1DBackward0"
    c = F.pad(x[0], (1, 2), mode="circular")
    assert c.grad_fn.name() == "torch::autograd::CopySlices"
    np.testing.assert_array_equal(to_np(c)[..., 0], to_np(x)[0, ..., -1])
    torch.manual_seed(0)
    d = F.dropout(x, 0.5)
    assert d.grad_fn.name() == "MulBackward0"
    v, xv = to_np(d), to_np(x)
    assert np.all((v == 0) | np.isclose(v, 2 * xv))


def test_instance_and_group_norm_names():
    a = _x(2, 3, 4, 4, seed=6)
    x = torch.tensor(a, requires_grad=True)
    y = F.instance_norm(x)
    assert y.grad_fn.name() == "ViewBackward0"
    m, v = a.mean((2, 3), keepdims=True), a.var((2, 3), keepdims=True)
    np.testing.assert_allclose(to_np(y), (a - m) / np.sqrt(v + 1e-5), rtol=1e-10)
    with pytest.raises(ValueError) as e:
        nn.GroupNorm(4, 6)
    assert str(e.value) == "num_channels (6) must be divisible by num_groups (4)"


def _bf16(a):
    """Round float64 values to bfloat16 (nearest even), as float64."""
    b = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16 << 16).astype(np.uint32)
    return b.view(np.float32).astype(np.float64)


def test_half_input_to_float32_norms_stays_half():
    a = _bf16(_x(4, 6, 3, 3, seed=7))
    xb = torch.tensor(a, dtype=torch.float32).to(torch.bfloat16)
    w, b = np.linspace(0.5, 1.5, 6), np.linspace(-0.2, 0.3, 6)
    wt, bt = torch.tensor(w, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)
    m, v = a.mean((0, 2, 3), keepdims=True), a.var((0, 2, 3), keepdims=True)
    ref = (a - m) / np.sqrt(v + 1e-5) * w[:, None, None] + b[:, None, None]
    rm, rv = torch.zeros(6), torch.ones(6)
    y = F.batch_norm(xb, rm, rv, wt, bt, training=True)
    assert y.dtype == torch.bfloat16 and rm.dtype == torch.float32
    # float32 arithmetic, one rounding to bfloat16 at the end
    np.testing.assert_allclose(to_np(y.float()), _bf16(ref), atol=1e-6, rtol=0)
    np.testing.assert_allclose(to_np(rm), 0.1 * m.reshape(6), rtol=1e-5, atol=1e-7)
    ye = F.batch_norm(xb, torch.zeros(6), torch.ones(6), wt, bt)
    np.testing.assert_allclose(to_np(ye.float()),
                               _bf16(a / np.sqrt(1 + 1e-5) * w[:, None, None] + b[:, None, None]),
                               atol=1e-6, rtol=0)
    ml, vl = a.mean(-1, keepdims=True), a.var(-1, keepdims=True)
    yl = F.layer_norm(xb, (3,), torch.ones(3), torch.zeros(3))
    assert yl.dtype == torch.bfloat16
    np.testing.assert_allclose(to_np(yl.float()), _bf16((a - ml) / np.sqrt(vl + 1e-5)),
                               atol=1e-6, rtol=0)
    assert F.group_norm(xb, 2, wt, bt).dtype == torch.bfloat16
    assert F.instance_norm(xb, weight=wt, bias=bt).dtype == torch.bfloat16
    bn = nn.BatchNorm2d(6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert bn(nn.Conv2d(6, 6, 1)(torch.randn(2, 6, 3, 3))).dtype == torch.bfloat16
    with pytest.raises(RuntimeError, match=r"mixed dtype \(CPU\): expect parameter to have "
                                           r"scalar type of Float"):
        F.batch_norm(torch.randn(2, 6, 3), None, None, wt.to(torch.bfloat16), training=True)


def test_grid_sample_names_and_nearest_grid_gradient():
    x = torch.arange(16.0).reshape(1, 1, 4, 4).requires_grad_()
    theta = torch.tensor([[[0.9, 0.1, 0.05], [-0.1, 1.1, 0.0]]], requires_grad=True)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        g = F.affine_grid(theta, (1, 1, 3, 3))
        F.grid_sample(x, g)
    assert sum("align_corners=False since 1.3.0" in str(m.message) for m in w) == 2
    assert g.grad_fn.name() == "AffineGridGeneratorBackward0"
    for mode in ("bilinear", "nearest", "bicubic"):
        assert F.grid_sample(x, g, mode=mode, align_corners=False).grad_fn.name() == \
            "GridSampler2DBackward0"
    # nearest: the grid gets a zero gradient (not none); out-of-range samples are +0.0
    far = torch.tensor([[[[-5.0, -5.0], [0.0, 0.0]]]], requires_grad=True)
    y = F.grid_sample(-x - 1, far, mode="nearest", align_corners=True)
    gx, gg = torch.autograd.grad(y.sum(), [x, far])
    assert np.signbit(to_np(y)[0, 0, 0, 0]) == np.False_ and to_np(y)[0, 0, 0, 0] == 0.0
    assert to_np(y)[0, 0, 0, 1] == -(2 * 4 + 2) - 1        # centre rounds to pixel (2, 2)
    np.testing.assert_array_equal(to_np(gg), np.zeros((1, 1, 2, 2)))
    assert to_np(gx).sum() == -1.0


def test_global_average_pool_is_a_mean():
    a = _x(2, 3, 4, 5, seed=8)
    x = torch.tensor(a, requires_grad=True)
    g = F.adaptive_avg_pool2d(x, 1)
    assert g.grad_fn.name() == "MeanBackward1"
    np.testing.assert_allclose(to_np(g), a.mean((2, 3), keepdims=True), rtol=1e-12)
    cl = F.adaptive_avg_pool2d(x.contiguous(memory_format=torch.channels_last), 1)
    assert cl.grad_fn.name() == "AsStridedBackward1" and cl.stride() == (3, 1, 3, 3)
    assert F.adaptive_avg_pool2d(x, (1, 2)).grad_fn.name() == "AdaptiveAvgPool2DBackward0"
    assert F.adaptive_avg_pool3d(x[None], 1).grad_fn.name() == "MeanBackward1"


def test_max_unpool_output_size_message_shows_it_as_passed():
    o, i = F.max_pool2d(torch.randn(1, 1, 4, 4), 2, return_indices=True)
    with pytest.raises(ValueError, match=r'invalid output_size "\(9, 4\)" \(dim 0 must be '
                                         r'between 2 and 6\)'):
        F.max_unpool2d(o, i, 2, output_size=(9, 4))
    with pytest.raises(ValueError, match=r'invalid output_size "\[9, 4\]"'):
        F.max_unpool2d(o, i, 2, output_size=[1, 1, 9, 4])


def test_inplace_activation_grad_fn_names():
    a = _x(2, 5, seed=9)
    x = torch.tensor(a, requires_grad=True)
    cases = [(lambda t: F.leaky_relu(t, 0.2, inplace=True), "LeakyReluBackward1"),
             (lambda t: nn.LeakyReLU(0.2)(t), "LeakyReluBackward0"),
             (lambda t: F.elu_(t), "EluBackward1"), (lambda t: F.selu(t, True), "EluBackward1"),
             (lambda t: F.celu(t, 0.5), "CeluBackward0"),
             (lambda t: F.celu(t, 0.5, inplace=True), "CeluBackward1"),
             (lambda t: F.rrelu(t, inplace=True), "RreluWithNoiseBackward1"),
             (lambda t: F.threshold_(t, 0.1, 2.0), "ThresholdBackward1"),
             (lambda t: F.threshold(t, 0.1, 2.0), "ThresholdBackward0")]
    for f, name in cases:
        assert f(x * 1).grad_fn.name() == name
    y = F.celu(x * 1, 0.5, inplace=True)
    np.testing.assert_allclose(to_np(y), np.where(a > 0, a, 0.5 * np.expm1(a / 0.5)),
                               rtol=1e-12)
    assert F.channel_shuffle(x.reshape(2, 5, 1), 1).grad_fn.name() == "ChannelShuffleBackward0"
    assert F.pairwise_distance(x[0], x[1]).grad_fn.name() == "NormBackward1"
    assert F.pdist(x).grad_fn.name() == "PdistBackward0"
    o, i = F.max_pool1d(x[None], 1, return_indices=True)
    assert F.max_unpool1d(o, i, 1).grad_fn.name() == "SqueezeBackward1"


def test_rrelu_training_draws_one_uniform_per_non_positive_element():
    a = np.array([[0.5, -1.0, 0.0, 2.0], [-3.0, np.nan, -0.25, 1.0]])
    # reference: the mt19937 stream of seed 7, one 53-bit float64 uniform (two 32-bit
    # words) per element <= 0 in order, scaled to [lower, upper)
    bg = np.random.MT19937(0)
    bg._legacy_seeding(7)
    w = bg.random_raw(8).astype(np.uint64).reshape(4, 2)
    u = (((w[:, 0] << np.uint64(32)) | w[:, 1]) & np.uint64(2 ** 53 - 1)) * 2.0 ** -53
    lo, hi = 0.1, 0.3
    slopes = np.ones(a.shape)
    slopes[a <= 0] = u * (hi - lo) + lo
    for dtype in (torch.float64, torch.float32):
        torch.manual_seed(7)
        y = F.rrelu(torch.tensor(a, dtype=dtype), lo, hi, training=True)
        ref = np.where(a > 0, a, a * slopes.astype(np.float32 if dtype == torch.float32
                                                   else np.float64))
        np.testing.assert_allclose(to_np(y), ref, rtol=1e-7 if dtype == torch.float32 else 1e-15)
    w2 = bg.random_raw(1)[0] & 0xFFFFFF                  # the stream continues after 4 draws
    assert torch.rand(1).item() == np.float32(w2 * 2.0 ** -24)


def test_upsample_aliases_warn_and_same_padding_even_kernel_warns():
    x = torch.arange(4.0).reshape(1, 1, 2, 2)
    for f, name in ((F.upsample, "upsample"), (F.upsample_nearest, "upsample_nearest"),
                    (F.upsample_bilinear, "upsample_bilinear")):
        with pytest.warns(UserWarning, match=f"`nn.functional.{name}` is deprecated"):
            y = f(x, scale_factor=2)
        assert tuple(y.shape) == (1, 1, 4, 4)
    with pytest.warns(UserWarning, match="padding='same' with even kernel lengths"):
        y = F.conv2d(x, torch.ones(1, 1, 2, 2), padding="same")
    # total padding 1: none on the left/top, one on the right/bottom
    np.testing.assert_array_equal(to_np(y)[0, 0], [[6, 4], [5, 3]])


def test_local_response_norm_autocast_dtype_and_empty_input():
    a = _x(2, 5, 3, 2, seed=10)
    x = torch.tensor(a, dtype=torch.float32)
    y = F.local_response_norm(x, 3, alpha=1e-2, beta=0.6, k=2.0)
    sq = np.pad(a * a, ((0, 0), (1, 1), (0, 0), (0, 0)))
    avg = (sq[:, :-2] + sq[:, 1:-1] + sq[:, 2:]) / 3
    np.testing.assert_allclose(to_np(y), a / (2.0 + 1e-2 * avg) ** 0.6, rtol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        # 4-D and up: PyTorch averages with avg_pool3d, a float32 op under cpu autocast
        assert F.local_response_norm(x.bfloat16(), 3).dtype == torch.float32
        assert F.local_response_norm(x[:, :, 0].bfloat16(), 3).dtype == torch.bfloat16
    e = torch.zeros(1, 5, 0, 3)
    assert F.local_response_norm(e, 3) is e


def test_spatial_class_targets_must_be_int64_and_multi_margin_name():
    a = _x(3, 4, 2, seed=11)
    t = np.array([[0, 3], [1, 2], [2, 2]])
    x = torch.tensor(a, requires_grad=True)
    with pytest.raises(RuntimeError, match="expected scalar type Long but found Byte"):
        F.cross_entropy(x, torch.tensor(t).to(torch.uint8))
    # 2-d input takes uint8 class indices
    r = F.nll_loss(x[:, :, 0], torch.tensor(t[:, 0]).to(torch.uint8))
    np.testing.assert_allclose(r.item(), -a[[0, 1, 2], t[:, 0], 0].mean(), rtol=1e-12)
    y = F.multi_margin_loss(x[:, :, 0], torch.tensor(t[:, 0]))
    assert y.grad_fn.name() == "MultiMarginLossBackward0"
    xs, ts = a[:, :, 0], t[:, 0]
    ref = np.mean([sum(max(0.0, 1 - xs[i, ts[i]] + xs[i, j]) for j in range(4) if j != ts[i]) / 4
                   for i in range(3)])
    np.testing.assert_allclose(y.item(), ref, rtol=1e-12)


def test_reshape_grad_fn_names_follow_the_copy_decision():
    a = np.arange(12.0).reshape(3, 4)
    x = torch.tensor(a, requires_grad=True)
    # contiguous: a view; non-contiguous but viewable: _reshape_alias; else copy + _unsafe_view
    cases = [(x.reshape(-1), "ViewBackward0", a.reshape(-1)),
             (x[:, ::2].reshape(-1), "ReshapeAliasBackward0", a[:, ::2].reshape(-1)),
             (x.t().reshape(-1), "UnsafeViewBackward0", a.T.reshape(-1)),
             (x.t().reshape(4, 3), "ReshapeAliasBackward0", a.T),
             (x.t().flatten(), "UnsafeViewBackward0", a.T.reshape(-1))]
    for y, name, ref in cases:
        assert y.grad_fn.name() == name
        np.testing.assert_array_equal(to_np(y), ref)
    # patchify: (B, C, H, W) -> (B, C, h, w, p, p) -> (B, h*w, C*p*p)
    img = np.arange(2 * 3 * 4 * 4.0).reshape(2, 3, 4, 4)
    t = torch.tensor(img, requires_grad=True)
    p = t.unfold(2, 2, 2).unfold(3, 2, 2).permute(0, 2, 3, 1, 4, 5).reshape(2, 4, -1)
    assert p.grad_fn.name() == "UnsafeViewBackward0"
    ref = img.reshape(2, 3, 2, 2, 2, 2).transpose(0, 2, 4, 1, 3, 5).reshape(2, 4, 12)
    np.testing.assert_array_equal(to_np(p), ref)
    g, = torch.autograd.grad(p.sum(), t)
    np.testing.assert_array_equal(to_np(g), np.ones_like(img))
