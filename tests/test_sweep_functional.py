"""Regression tests from the nn.functional argument sweep (Kiln vs PyTorch 2.13): each test pins
one divergence that was fixed, with float64 references computed here in NumPy or derived by
hand. An optional cross-check against the real PyTorch runs only where it is installed."""
import math
import warnings

import numpy as np
import pytest

import framework as torch
import framework.nn.functional as F


def T(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def N(t):
    return t.detach().numpy()


# ---- class losses: every target ignored ---------------------------------------------------------

@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_cross_entropy_all_ignored_mean_is_nan_with_zero_grad(ls):
    x = T(np.random.RandomState(0).randn(3, 4), grad=True)
    loss = F.cross_entropy(x, torch.tensor([1, 1, 1]), ignore_index=1, label_smoothing=ls)
    assert math.isnan(loss.item())
    loss.backward()
    np.testing.assert_array_equal(N(x.grad), np.zeros((3, 4)))     # not 0 * inf = NaN


def test_nll_loss_all_ignored_mean_grad_zero_and_partial_ignore_exact():
    x = T(np.random.RandomState(1).randn(3, 4), grad=True)
    loss = F.nll_loss(x, torch.tensor([2, 2, 2]), ignore_index=2)
    assert math.isnan(loss.item())
    loss.backward()
    np.testing.assert_array_equal(N(x.grad), np.zeros((3, 4)))
    # one target kept: mean over the kept one only, gradient -1 at its class
    x2 = T(np.arange(12.0).reshape(3, 4), grad=True)
    l2 = F.nll_loss(x2, torch.tensor([2, 3, 2]), ignore_index=2)
    assert l2.item() == -7.0
    l2.backward()
    g = np.zeros((3, 4))
    g[1, 3] = -1.0
    np.testing.assert_array_equal(N(x2.grad), g)


def test_class_loss_error_classes():
    x = T(np.zeros((3, 4)))
    with pytest.raises(RuntimeError, match="label_smoothing"):
        F.cross_entropy(x, torch.tensor([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(RuntimeError, match="target out of range"):
        F.multi_margin_loss(x, torch.tensor([0, 4, 1]))
    a = T(np.ones((2, 3)))
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        F.triplet_margin_loss(a, a, a, margin=-1.0)
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        F.triplet_margin_with_distance_loss(a, a, a, margin=0.0)


# ---- cosine_similarity / norms at and below eps -------------------------------------------------

def _cos_ref(a, b, eps, w):
    """value and gradients of sum(w * cos(a, b)) along dim 1, PyTorch's straight-through clamp:
    the norms' values are max(|v|, eps) but their gradient is that of |v|."""
    na, nb = np.linalg.norm(a, axis=1, keepdims=True), np.linalg.norm(b, axis=1, keepdims=True)
    ca, cb = np.maximum(na, eps), np.maximum(nb, eps)
    y = (a * b).sum(1, keepdims=True) / (ca * cb)
    ga = w[:, None] * (b / (ca * cb) - y / ca * a / na)
    gb = w[:, None] * (a / (ca * cb) - y / cb * b / nb)
    return y[:, 0], ga, gb


@pytest.mark.parametrize("eps,scale", [(0.5, 0.01), (10.0, 1.0), (1e-8, 1.0)])
def test_cosine_similarity_eps_gradient_is_straight_through(eps, scale):
    rs = np.random.RandomState(3)
    a0, b0, w = rs.randn(3, 4) * scale, rs.randn(3, 4), rs.randn(3)
    a, b = T(a0, grad=True), T(b0, grad=True)
    y = F.cosine_similarity(a, b, eps=eps)
    (y * T(w)).sum().backward()
    ry, ga, gb = _cos_ref(a0, b0, eps, w)
    np.testing.assert_allclose(N(y), ry, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(N(a.grad), ga, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(N(b.grad), gb, rtol=1e-10, atol=1e-12)


def test_zero_norm_gradient_is_zero_not_nan():
    x = T(np.zeros((2, 3)), grad=True)
    torch.norm(x, 2, 1).sum().backward()
    np.testing.assert_array_equal(N(x.grad), np.zeros((2, 3)))
    x3 = T(np.zeros((2, 3)), grad=True)
    torch.linalg.vector_norm(x3, 3, dim=1).sum().backward()
    np.testing.assert_array_equal(N(x3.grad), np.zeros((2, 3)))
    # values: NaN and inf still propagate, a zero norm is 0
    v = N(torch.norm(T([[np.nan, 1.0], [np.inf, 1.0], [0.0, 0.0], [3.0, 4.0]]), 2, 1))
    assert np.isnan(v[0]) and v[1] == np.inf and v[2] == 0.0 and v[3] == 5.0
    # pdist with two equal rows: the equal pair contributes no gradient
    p = T([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0]], grad=True)
    F.pdist(p).sum().backward()
    r = 1.0 / math.sqrt(2.0)
    np.testing.assert_allclose(N(p.grad), [[r, r], [r, r], [-2 * r, -2 * r]], rtol=1e-14)
    # cosine_similarity of a zero vector: finite gradients
    z = T(np.zeros((2, 3)), grad=True)
    F.cosine_similarity(z, T(np.ones((2, 3)))).sum().backward()
    assert np.isfinite(N(z.grad)).all()


def test_cdist_compute_mode_and_negative_p():
    a0, b0 = np.random.RandomState(4).randn(5, 3), np.random.RandomState(5).randn(4, 3)
    ref = np.sqrt(((a0[:, None, :] - b0[None, :, :]) ** 2).sum(-1))
    for mode in ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                 "donot_use_mm_for_euclid_dist"):
        np.testing.assert_allclose(N(torch.cdist(T(a0), T(b0), compute_mode=mode)), ref,
                                   rtol=1e-12)
    with pytest.raises(RuntimeError, match="non-negative p"):
        torch.cdist(T(a0), T(b0), p=-1.0)
    with pytest.raises(ValueError, match="compute_mode"):
        torch.cdist(T(a0), T(b0), compute_mode="fast")


# ---- activations ---------------------------------------------------------------------------------

def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize("name,dref", [
    ("silu", lambda x: _sig(x) * (1 + x * (1 - _sig(x)))),
    ("hardswish", lambda x: np.where(x < -3, 0.0, np.where(x > 3, 1.0, (2 * x + 3) / 6))),
    ("hardsigmoid", lambda x: np.where((x > -3) & (x < 3), 1 / 6, 0.0)),
    ("leaky_relu", lambda x: np.where(x > 0, 1.0, 0.01)),
    ("mish", None),
])
def test_inplace_activation_backward_uses_original_input(name, dref):
    x0 = np.array([-4.0, -2.5, -1.0, -0.2, 0.3, 1.7, 2.9, 5.0])
    x = T(x0, grad=True)
    y = getattr(F, name)(x * 1.0, inplace=True)         # a non-leaf, written in place
    y.sum().backward()
    if dref is None:                                     # mish: d/dx x tanh(softplus(x))
        sp = np.log1p(np.exp(x0))
        t = np.tanh(sp)
        dref = lambda x: t + x * (1 - t * t) * _sig(x)   # noqa: E731
    np.testing.assert_allclose(N(x.grad), dref(x0), rtol=1e-12, atol=1e-15)


def test_rrelu_eval_gradient_at_zero_is_the_slope_and_bounds_checked():
    x = T([-1.0, 0.0, 2.0], grad=True)
    y = F.rrelu(x, 0.1, 0.3, training=False)
    np.testing.assert_allclose(N(y), [-0.2, 0.0, 2.0], rtol=1e-15)
    y.sum().backward()
    np.testing.assert_allclose(N(x.grad), [0.2, 0.2, 1.0], rtol=1e-15)
    with pytest.raises(RuntimeError, match="Lower bound"):
        F.rrelu(x, 0.5, 0.1)


def test_dropout2d_3d_inputs_follow_pytorch():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # a 3-D input to dropout2d is (N, C, L): whole rows of L are kept or dropped
        y = N(F.dropout2d(torch.ones(8, 16, 5), 0.5))
        assert (y.min(-1) == y.max(-1)).all() and set(np.unique(y)) <= {0.0, 2.0}
        assert 0 < (y[:, :, 0] == 0).sum() < 128
        # other ranks only warn (eval passes through, training is feature dropout)
        np.testing.assert_array_equal(N(F.dropout2d(T(np.ones((4, 6))), training=False)),
                                      np.ones((4, 6)))
        assert F.dropout3d(torch.ones(3, 2, 2, 2), 0.5).shape == (3, 2, 2, 2)
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout3d"):
        F.dropout3d(torch.ones(4, 6), training=False)
    with pytest.raises(RuntimeError, match="at least 2 dimensions"), \
            pytest.warns(UserWarning, match="Received a 1-D input"):
        F.dropout2d(torch.ones(2), 0.5)
    with pytest.raises(RuntimeError, match="Expected 2D or 3D input"):
        F.dropout1d(torch.ones(2, 2, 2, 2), 0.5)


# ---- interpolate antialias -------------------------------------------------------------------------

def test_interpolate_bilinear_antialias_hand_weights():
    # width 4 -> 2 (scale 2, support 2): the PIL triangle filter stretched by 2 gives
    # weights (3, 3, 1)/7 and (1, 3, 3)/7; height 1 -> 1 is the identity
    row = np.array([1.0, 2.0, 5.0, -3.0])
    x = T(row.reshape(1, 1, 1, 4), grad=True)
    y = F.interpolate(x, size=(1, 2), mode="bilinear", antialias=True)
    exp = [(3 * row[0] + 3 * row[1] + row[2]) / 7, (row[1] + 3 * row[2] + 3 * row[3]) / 7]
    np.testing.assert_allclose(N(y).ravel(), exp, rtol=1e-14)
    assert y.grad_fn.name() == "UpsampleBilinear2DAaBackward0"
    y.sum().backward()
    np.testing.assert_allclose(N(x.grad).ravel(), [3 / 7, 4 / 7, 4 / 7, 3 / 7], rtol=1e-14)


def test_interpolate_bicubic_antialias_rows_sum_to_one_and_errors():
    x = T(np.ones((1, 2, 9, 7)))
    for size in [(3, 2), (4, 5), (12, 11)]:
        y = F.interpolate(x, size=size, mode="bicubic", antialias=True)
        np.testing.assert_allclose(N(y), np.ones((1, 2) + size), rtol=1e-14)
    for mode, shape in [("trilinear", (1, 1, 2, 2, 2)), ("area", (1, 1, 4, 4)),
                        ("nearest", (1, 1, 4, 4))]:
        with pytest.raises(ValueError, match="Anti-alias option"):
            F.interpolate(torch.ones(*shape), size=2, mode=mode, antialias=True)


# ---- grid_sample bicubic / 3-D, affine_grid 3-D ----------------------------------------------------

_C_HALF = ((-0.75 * 1.5 + 3.75) * 1.5 - 6) * 1.5 + 3      # cubic weight at distance 1.5: -0.09375
_C_NEAR = (1.25 * 0.5 - 2.25) * 0.25 + 1                  # at distance 0.5: 0.59375


def test_grid_sample_bicubic_hand_weights():
    assert (_C_HALF, _C_NEAR) == (-0.09375, 0.59375)
    v = np.array([1.0, 4.0, -2.0, 3.0])
    x = T(v.reshape(1, 1, 1, 4))
    # align_corners=True: x = 0 is halfway between pixels 1 and 2; the single row is exact
    g = T([[[[0.0, -1.0]]]])
    y = F.grid_sample(x, g, mode="bicubic", align_corners=True).item()
    assert abs(y - (_C_HALF * v[0] + _C_NEAR * v[1] + _C_NEAR * v[2] + _C_HALF * v[3])) < 1e-14
    # halfway between pixels 0 and 1 with border padding: the tap at -1 reads pixel 0
    g2 = T([[[[-1.0 + 1.0 / 3.0, -1.0]]]])
    y2 = F.grid_sample(x, g2, mode="bicubic", padding_mode="border", align_corners=True).item()
    exp = (_C_HALF + _C_NEAR) * v[0] + _C_NEAR * v[1] + _C_HALF * v[2]
    assert abs(y2 - exp) < 1e-14
    # with zeros padding the tap at -1 is 0
    y3 = F.grid_sample(x, g2, mode="bicubic", padding_mode="zeros", align_corners=True).item()
    assert abs(y3 - (_C_NEAR * v[0] + _C_NEAR * v[1] + _C_HALF * v[2])) < 1e-14
    with pytest.raises(RuntimeError, match="bicubic interpolation only supports 4D"):
        F.grid_sample(torch.ones(1, 1, 2, 2, 2), torch.zeros(1, 1, 1, 1, 3), mode="bicubic",
                      align_corners=False)


def test_grid_sample_3d_trilinear_and_nearest():
    x = T(np.arange(8.0).reshape(1, 1, 2, 2, 2), grad=True)
    # grid (x, y, z) indexes (W, H, D): corners pick single voxels, the centre averages all
    pts = [[-1, -1, -1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1], [0, 0, 0], [1, 1, 0.5]]
    g = T(np.array(pts, dtype=np.float64).reshape(1, 1, 1, 6, 3))
    y = F.grid_sample(x, g, mode="bilinear", align_corners=True)
    assert y.shape == (1, 1, 1, 1, 6)
    np.testing.assert_allclose(N(y).ravel(), [0, 1, 2, 4, 3.5, 3 + 4 * 0.75], rtol=1e-14)
    y.sum().backward()
    assert abs(N(x.grad).sum() - 6.0) < 1e-14          # each sample's weights sum to 1
    yn = F.grid_sample(x, g, mode="nearest", align_corners=True)
    np.testing.assert_array_equal(N(yn).ravel()[:4], [0, 1, 2, 4])


def test_affine_grid_3d_identity():
    th = T(np.concatenate([np.eye(3), np.zeros((3, 1))], 1)[None])
    g = N(F.affine_grid(th, (1, 1, 2, 3, 4), align_corners=True))
    assert g.shape == (1, 2, 3, 4, 3)
    np.testing.assert_allclose(g[0, 1, 2, 3], [1, 1, 1], rtol=1e-15)
    np.testing.assert_allclose(g[0, 0, 1, 0], [-1, 0, -1], rtol=1e-15)
    gf = N(F.affine_grid(th, (1, 1, 2, 3, 4), align_corners=False))
    np.testing.assert_allclose(gf[0, 0, 0, 0], [-0.75, -2 / 3, -0.5], rtol=1e-14)
    with pytest.raises(ValueError, match="Nx3x4"):
        F.affine_grid(T(np.zeros((1, 2, 3))), (1, 1, 2, 3, 4), align_corners=False)
    with pytest.raises(NotImplementedError, match="4D and 5D"):
        F.affine_grid(T(np.zeros((1, 2, 3))), (1, 1, 2), align_corners=False)


# ---- conv / pad / adaptive pool argument errors -------------------------------------------------

def test_conv_argument_errors():
    x, w = T(np.ones((1, 2, 6))), T(np.ones((2, 3, 3)))
    with pytest.raises(RuntimeError, match="negative padding"):
        F.conv_transpose1d(x, w, padding=-1)
    with pytest.raises(RuntimeError, match="negative output_padding"):
        F.conv_transpose1d(x, w, output_padding=-1)
    with pytest.raises(TypeError, match="tuple of ints"):
        F.conv2d(T(np.ones((1, 2, 5, 5))), T(np.ones((3, 2, 3, 3))), padding=(1, "same"))


def test_pad_negative_past_the_input():
    x = T(np.arange(6.0).reshape(1, 1, 6))
    for mode in ("reflect", "replicate"):
        with pytest.raises(RuntimeError, match="too small"):
            F.pad(x, (-3, -3), mode=mode)
    with pytest.raises(RuntimeError, match="empty dimension"):
        F.pad(x, (-4, -3), mode="circular")
    assert F.pad(x, (-3, -3), mode="circular").shape == (1, 1, 0)
    np.testing.assert_array_equal(N(F.pad(x, (-2, -2), mode="replicate")), [[[2.0, 3.0]]])


def test_adaptive_pool_output_size_zero_and_negative():
    x = T(np.ones((2, 3, 6, 5)))
    assert F.adaptive_avg_pool2d(x, (0, 2)).shape == (2, 3, 0, 2)
    v, i = F.adaptive_max_pool2d(x, (2, 0), return_indices=True)
    assert v.shape == (2, 3, 2, 0) and i.shape == (2, 3, 2, 0) and i.dtype == torch.int64
    for f in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d):
        with pytest.raises(RuntimeError, match="greater than or equal to 0"):
            f(x, (2, -1))


# ---- optional cross-check against the real PyTorch ----------------------------------------------

def test_cross_check_against_torch():
    real = pytest.importorskip("torch", reason="optional cross-check against PyTorch")
    if real is torch:
        pytest.skip("framework is aliased as torch")
    rs = np.random.RandomState(7)
    x0 = rs.randn(2, 3, 7, 6)
    g0 = rs.randn(2, 4, 5, 2) * 1.2
    cases = [
        lambda m, x, g: m.nn.functional.interpolate(x, size=(3, 4), mode="bicubic",
                                                    antialias=True),
        lambda m, x, g: m.nn.functional.interpolate(x, scale_factor=0.6, mode="bilinear",
                                                    antialias=True, align_corners=True),
        lambda m, x, g: m.nn.functional.grid_sample(x, g, mode="bicubic",
                                                    padding_mode="reflection",
                                                    align_corners=False),
    ]
    for f in cases:
        outs = []
        for m in (real, torch):
            x = m.tensor(x0, requires_grad=True)
            g = m.tensor(g0, requires_grad=True)
            y = f(m, x, g)
            y.sum().backward()
            outs.append((y.detach().numpy(), x.grad.numpy(),
                         None if g.grad is None else g.grad.numpy()))
        for a, b in zip(*outs):
            if a is not None and b is not None:
                np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-10)


def test_softmax_family_on_a_scalar():
    x = T(2.5, grad=True)
    assert F.softmax(x, 0).item() == 1.0 and F.log_softmax(x, -1).item() == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert F.softmin(x).item() == 1.0
    F.log_softmax(x, 0).backward()
    assert x.grad.item() == 0.0


# ---- resampling keeps NaN / inf local; lp_pool edge norms ------------------------------------------

@pytest.mark.parametrize("mode,kw", [("linear", {}), ("linear", {"align_corners": True}),
                                     ("area", {})])
def test_interpolate_nan_reaches_only_its_neighbours(mode, kw):
    v = np.array([1.0, 2.0, 3.0, 4.0, 5.0, np.nan, 7.0])
    y = N(F.interpolate(T(v.reshape(1, 1, 7)), size=3, mode=mode, **kw)).ravel()
    if mode == "area":                    # windows [0, 3), [2, 5), [4, 7)
        exp = [2.0, 4.0, np.nan]
    elif kw:                              # align_corners: sources 0, 3, 6 exactly
        exp = [1.0, 4.0, 7.0]
    else:                                 # sources 7/3 (o + 1/2) - 1/2 = 2/3, 3, 16/3
        exp = [1 + 2 / 3, 4.0, np.nan]
    np.testing.assert_allclose(y, exp, rtol=1e-14)


def test_adaptive_avg_pool_unequal_windows_inf_stays_local():
    v = np.array([1.0, np.inf, 3.0, 4.0, 5.0, 6.0, 7.0])
    y = N(F.adaptive_avg_pool1d(T(v.reshape(1, 1, 7)), 3)).ravel()    # [0,3) [2,5) [4,7)
    np.testing.assert_allclose(y, [np.inf, 4.0, 6.0], rtol=1e-15)
    img = np.arange(25.0).reshape(1, 1, 5, 5)
    img[0, 0, 4, 4] = np.nan
    y2 = N(F.interpolate(T(img), size=(3, 3), mode="bilinear", antialias=True))
    assert np.isnan(y2[0, 0, 2, 2]) and np.isfinite(y2[0, 0, :2]).all()


def test_lp_pool_zero_window_gradient_and_infinite_norm():
    x = T([[[0.0, 0.0, 3.0, -4.0]]], grad=True)
    y = F.lp_pool1d(x, 2, 2)
    np.testing.assert_allclose(N(y).ravel(), [0.0, 5.0], rtol=1e-15)
    y.sum().backward()
    np.testing.assert_allclose(N(x.grad).ravel(), [0.0, 0.0, 0.6, -0.8], rtol=1e-15)
    v = T(np.array([0.5, -2.0, 0.3, 0.2]).reshape(1, 1, 4))
    np.testing.assert_array_equal(N(F.lp_pool1d(v, float("inf"), 2)).ravel(), [2.0, 0.3])
    np.testing.assert_array_equal(N(F.lp_pool1d(v, -float("inf"), 2)).ravel(), [0.5, 0.2])
    w = T(np.array([0.5, -2.0, 0.3, 0.2, 1.0, -1.5, 0.1, 0.0]).reshape(1, 1, 2, 2, 2))
    assert F.lp_pool3d(w, float("inf"), 2).item() == 2.0
