"""Training-recipe details found by running contrastive (SimCLR), distillation, mixture-of-
experts, WGAN-GP, style-transfer and super-resolution scripts under PyTorch and Kiln and
diffing the output: inference tensors refused by the loss nodes that save them, the
scatter(reduce=) deprecation warning pointing at the user's line, and the recipes' losses
and compiled training steps checked against NumPy float64 or hand-derived values."""
import warnings

import numpy as np
import pytest

import framework as torch
import framework.nn.functional as F
from framework import nn
from conftest import to_np


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("loss", ["mse_loss", "smooth_l1_loss", "huber_loss"])
def test_pointwise_losses_refuse_an_inference_target(loss):
    # PyTorch's MseLoss/SmoothL1Loss/HuberLoss nodes save the target even when it needs no
    # gradient (a teacher's features computed under inference_mode, as in distillation)
    a, b = _x(3), _x(3, seed=1)
    w = torch.tensor(a, requires_grad=True)
    with torch.inference_mode():
        t = torch.tensor(b)
    fn = getattr(F, loss)
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        fn(w, t)
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        fn(w, t.view(3))         # a view of one as well
    assert w.grad is None and np.array_equal(to_np(t), b)
    d = np.abs(a - b)
    ref = {"mse_loss": d ** 2, "smooth_l1_loss": np.where(d < 1, 0.5 * d ** 2, d - 0.5),
           "huber_loss": np.where(d < 1, 0.5 * d ** 2, d - 0.5)}[loss].mean()
    with torch.no_grad():       # no node is recorded: nothing is saved
        np.testing.assert_allclose(fn(w, t).item(), ref, rtol=1e-12)
    r = fn(w, t.clone())        # the documented workaround
    r.backward()
    np.testing.assert_allclose(r.item(), ref, rtol=1e-12)
    # l1_loss is a composite in PyTorch too (abs, mean): its nodes do not save the target
    assert F.l1_loss(w, t).grad_fn.name() == "MeanBackward0"


def test_scatter_reduce_warning_points_at_the_user_line():
    from framework import ops_index
    for call in (lambda x, i, s: x.scatter_(0, i, s, reduce="add"),
                 lambda x, i, s: torch.scatter(x, 0, i, s, reduce="multiply"),
                 lambda x, i, s: x.scatter(0, i, s, reduce="add")):
        ops_index._WARNED_SCATTER_REDUCE = False
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            call(torch.ones(3), torch.tensor([0, 2]), torch.tensor([2., 3.]))
        assert len(w) == 1 and "reduce argument of torch.scatter" in str(w[0].message)
        assert w[0].filename == __file__, w[0].filename


def _nt_xent_np(z, t):
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    s = z @ z.T / t
    np.fill_diagonal(s, -np.inf)
    n = len(z) // 2
    tgt = np.r_[np.arange(n, 2 * n), np.arange(n)]
    m = s.max(1, keepdims=True)
    lse = (m + np.log(np.exp(s - m).sum(1, keepdims=True)))[:, 0]
    return (lse - s[np.arange(2 * n), tgt]).mean()


def _nt_xent(z1, z2, t=0.5):
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)
    sim = (z @ z.T / t).masked_fill(torch.eye(z.shape[0], dtype=torch.bool), float("-inf"))
    n = z1.shape[0]
    return F.cross_entropy(sim, torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]))


def test_nt_xent_value_and_gradcheck():
    a = _x(6, 4)
    z1 = torch.tensor(a[:3], requires_grad=True)
    z2 = torch.tensor(a[3:], requires_grad=True)
    loss = _nt_xent(z1, z2)
    assert loss.grad_fn.name() == "NllLossBackward0"
    np.testing.assert_allclose(loss.item(), _nt_xent_np(a, 0.5), rtol=1e-12)
    assert torch.autograd.gradcheck(_nt_xent, (z1, z2))


def test_distillation_loss_and_inference_teacher():
    s, t, y = _x(4, 5), _x(4, 5, seed=1), np.array([0, 3, 1, 4])
    T = 3.0
    st = torch.tensor(s, requires_grad=True)
    with torch.inference_mode():
        tt = torch.tensor(t) * 1.0
    kd = F.kl_div(F.log_softmax(st / T, dim=1), F.softmax(tt / T, dim=1),
                  reduction="batchmean") * T * T
    loss = 0.7 * kd + 0.3 * F.cross_entropy(st, torch.tensor(y))

    def lsm(v):
        v = v - v.max(1, keepdims=True)
        return v - np.log(np.exp(v).sum(1, keepdims=True))
    p = np.exp(lsm(t / T))
    ref_kd = (p * (np.log(p) - lsm(s / T))).sum() / 4 * T * T
    ref = 0.7 * ref_kd - 0.3 * lsm(s)[np.arange(4), y].mean()
    np.testing.assert_allclose(kd.item(), ref_kd, rtol=1e-12)
    np.testing.assert_allclose(loss.item(), ref, rtol=1e-12)
    loss.backward()
    ref_g = 0.7 * T * (np.exp(lsm(s / T)) - p) / 4 + 0.3 * (np.exp(lsm(s)) - np.eye(5)[y]) / 4
    np.testing.assert_allclose(to_np(st.grad), ref_g, rtol=1e-10, atol=1e-14)


def test_moe_top_k_dispatch_matches_dense_reference():
    rng = np.random.default_rng(3)
    xs, gw = rng.standard_normal((10, 4)), rng.standard_normal((3, 4))
    ew, cap = rng.standard_normal((3, 4, 4)), 3
    x, g, w = torch.tensor(xs), torch.tensor(gw, requires_grad=True), torch.tensor(ew)
    probs = (x @ g.T).softmax(-1)
    v, e = probs.topk(2, dim=-1)
    fe, tok = e.reshape(-1), torch.arange(10).repeat_interleave(2)
    order = torch.argsort(fe, stable=True)
    se, stok, sw = fe[order], tok[order], v.reshape(-1)[order]
    counts = torch.bincount(se, minlength=3)
    pos = torch.arange(20) - (torch.cumsum(counts, 0) - counts)[se]
    keep = pos < cap                                    # capacity dropping
    se, stok, sw, pos = se[keep], stok[keep], sw[keep], pos[keep]
    buf = x.new_zeros(3, cap, 4)
    buf[se, pos] = x[stok]
    y = torch.bmm(buf, w)[se, pos] * sw[:, None]
    out = torch.zeros(10, 4, dtype=torch.float64).index_add(0, stok, y)
    out.sum().backward()
    assert out.grad_fn.name() == "IndexAddBackward0"
    # reference: the same routing, token by token, first come first served per expert
    z = xs @ gw.T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    top = np.argsort(-p, axis=1, kind="stable")[:, :2]
    ref, used = np.zeros((10, 4)), {}
    for ex in range(3):
        for i, k in sorted((i, k) for i in range(10) for k in range(2) if top[i, k] == ex):
            used[ex] = used.get(ex, 0) + 1
            if used[ex] <= cap:
                ref[i] += p[i, ex] * xs[i] @ ew[ex]
    np.testing.assert_allclose(to_np(out), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(to_np(counts), np.bincount(top.ravel(), minlength=3))
    assert g.grad is not None and np.isfinite(to_np(g.grad)).all()


def test_wgan_gradient_penalty_of_a_linear_critic():
    # D(x) = x @ w + b has input gradient w everywhere: penalty (|w| - 1)^2, and its
    # gradient with respect to w is 2 (|w| - 1) w / |w| (a double backward through grad)
    wv = np.array([0.3, -1.2, 2.0])
    D = nn.Linear(3, 1).double()
    with torch.no_grad():
        D.weight.copy_(torch.tensor(wv[None]))
    real, fake = torch.tensor(_x(5, 3)), torch.tensor(_x(5, 3, seed=1))
    a = torch.rand(5, 1, dtype=torch.float64)
    inter = (a * real + (1 - a) * fake).requires_grad_(True)
    d = D(inter)
    g, = torch.autograd.grad(d, inter, grad_outputs=torch.ones_like(d), create_graph=True)
    gp = ((g.view(5, -1).norm(2, dim=1) - 1) ** 2).mean()
    nw = np.linalg.norm(wv)
    np.testing.assert_allclose(to_np(g), np.tile(wv, (5, 1)), rtol=1e-15)
    np.testing.assert_allclose(gp.item(), (nw - 1) ** 2, rtol=1e-12)
    gp.backward()
    np.testing.assert_allclose(to_np(D.weight.grad)[0], 2 * (nw - 1) * wv / nw, rtol=1e-12)
    assert D.bias.grad is None or float(D.bias.grad.abs().sum()) == 0.0


def test_gram_matrix_psnr_and_pixel_shuffle_round_trip():
    a = _x(2, 3, 2, 4)
    x = torch.tensor(a, requires_grad=True)
    f = x.reshape(2, 3, 8)
    G = torch.bmm(f, f.transpose(1, 2)).div(3 * 8)
    f64 = a.reshape(2, 3, 8)
    np.testing.assert_allclose(to_np(G), f64 @ f64.transpose(0, 2, 1) / 24, rtol=1e-12)
    assert torch.autograd.gradcheck(lambda t: torch.bmm(t.reshape(2, 3, 8), t.reshape(2, 3, 8)
                                                        .transpose(1, 2)).div(24), (x,))
    sr, hr = torch.full((1, 1, 2, 2), 0.5), torch.tensor([[[[0.5, 0.6], [0.4, 0.5]]]])
    psnr = 10 * torch.log10(1.0 / F.mse_loss(sr, hr))
    np.testing.assert_allclose(psnr.item(), 10 * np.log10(1 / 0.005), rtol=1e-6)
    y = F.pixel_shuffle(x.reshape(1, 8, 2, 3), 2)
    assert y.shape == (1, 2, 4, 6) and y.grad_fn.name() == "PixelShuffleBackward0"
    # out[c, 2h + i, 2w + j] = in[4c + 2i + j, h, w]
    ref = a.reshape(2, 2, 2, 2, 3).transpose(0, 3, 1, 4, 2).reshape(1, 2, 4, 6)
    np.testing.assert_array_equal(to_np(y), ref)
    np.testing.assert_array_equal(to_np(F.pixel_unshuffle(y, 2)), a.reshape(1, 8, 2, 3))


def test_compiled_training_steps_equal_eager():
    # one recipe's step each, compiled whole (forward, backward, optimizer) against eager
    def wgan(D, opt, data):
        real, fake = data
        a = torch.rand(6, 1)
        inter = (a * real + (1 - a) * fake).requires_grad_(True)
        d = D(inter)
        g, = torch.autograd.grad(d, inter, torch.ones_like(d), create_graph=True)
        loss = D(fake).mean() - D(real).mean() + 10 * ((g.norm(2, dim=1) - 1) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(D.parameters(), 1.0)
        opt.step()
        return loss

    def sr(m, opt, data):
        lo, hi = data
        out = m(lo) + F.interpolate(lo, scale_factor=2, mode="bicubic", align_corners=False)
        loss = F.l1_loss(out, hi)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    def mk_wgan():
        D = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
        return D, torch.optim.Adam(D.parameters(), lr=1e-2, betas=(0., 0.9)), (
            torch.randn(6, 2), torch.randn(6, 2))

    def mk_sr():
        m = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.PReLU(), nn.PixelShuffle(2))
        return m, torch.optim.Adam(m.parameters(), lr=1e-2), (torch.rand(1, 3, 4, 4),
                                                               torch.rand(1, 3, 8, 8))
    for mk, step in ((mk_wgan, wgan), (mk_sr, sr)):
        torch.manual_seed(0)
        m1, o1, data = mk()
        torch.manual_seed(0)
        m2, o2, _ = mk()
        init = [p.detach().clone() for p in m1.parameters()]
        cstep = torch.compile(step)
        for i in range(2):
            torch.manual_seed(10 + i)
            l1 = step(m1, o1, data)
            torch.manual_seed(10 + i)
            l2 = cstep(m2, o2, data)
            np.testing.assert_allclose(l2.item(), l1.item(), rtol=1e-5, atol=1e-6)
        for p, q in zip(m1.parameters(), m2.parameters()):
            np.testing.assert_allclose(to_np(q), to_np(p), rtol=1e-5, atol=1e-6)
        assert any(float((p.detach() - p0).abs().max()) > 0 for p, p0 in zip(m1.parameters(), init))


def test_inference_mode_false_turns_grad_mode_on():
    # PyTorch's InferenceMode(false) guard sets grad mode on, whatever encloses it (a student
    # trained inside a helper that a caller wrapped in no_grad)
    w = torch.tensor([1.5, -2.0], requires_grad=True)
    with torch.no_grad():
        with torch.inference_mode(False):
            assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
            y = (w * w).sum()
        assert not torch.is_grad_enabled()
    assert y.requires_grad and y.grad_fn.name() == "SumBackward0"
    y.backward()
    np.testing.assert_array_equal(to_np(w.grad), [3.0, -4.0])
    with torch.inference_mode():
        with torch.no_grad():
            with torch.inference_mode(mode=False) as m:
                assert m is None and torch.is_grad_enabled()
                assert not torch.is_inference_mode_enabled()
                assert not torch.ones(1).is_inference()
            assert not torch.is_grad_enabled() and torch.is_inference_mode_enabled()

    @torch.inference_mode(False)
    def f():
        return torch.is_grad_enabled()
    prev = torch.set_grad_enabled(False)
    try:
        assert f() is True and not torch.is_grad_enabled()
    finally:
        torch.set_grad_enabled(True)
    assert torch.inference_mode().mode is True and torch.inference_mode(False).mode is False
    assert prev.mode is False and prev.prev is True
    assert repr(prev).endswith("grad_mode.set_grad_enabled(mode=False)")


def test_unique_of_a_tensor_that_requires_grad_has_a_node_that_refuses_backward():
    x = torch.tensor([2.0, 1.0, 2.0, 2.0], requires_grad=True)
    cases = [(lambda: torch.unique(x), "Unique2Backward0", "_unique2", [1.0, 2.0]),
             (lambda: x.unique(dim=0), "UniqueDimBackward0", "unique_dim", [1.0, 2.0]),
             (lambda: torch.unique_consecutive(x), "UniqueConsecutiveBackward0",
              "unique_consecutive", [2.0, 1.0, 2.0])]
    for f, node, aten, ref in cases:
        u = f()
        assert u.requires_grad and u.grad_fn.name() == node
        np.testing.assert_array_equal(to_np(u), ref)
        with pytest.raises(NotImplementedError,
                           match=f"^the derivative for '{aten}' is not implemented.$"):
            u.sum().backward()
    u, inv, cnt = torch.unique(x, return_inverse=True, return_counts=True)
    assert not inv.requires_grad and not cnt.requires_grad
    np.testing.assert_array_equal(to_np(inv), [1, 0, 1, 1])
    np.testing.assert_array_equal(to_np(cnt), [1, 3])
    with torch.no_grad():
        assert torch.unique(x).grad_fn is None
    assert x.grad is None
