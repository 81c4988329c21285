"""Workflow checks from generative-model / RL scripts: torch._foreach_* (EMA and soft target
updates), transform shape helpers. References are NumPy float64 or hand-derived values."""
import numpy as np
import pytest

import framework as torch
from framework.distributions import transforms as T


def _lists():
    rng = np.random.default_rng(0)
    a = [rng.standard_normal(3), rng.standard_normal((2, 2))]
    b = [rng.standard_normal(3), rng.standard_normal((2, 2))]
    return a, b, [torch.tensor(x) for x in a], [torch.tensor(x) for x in b]


def test_foreach_soft_target_update_in_place_returns_self_list():
    a, b, ta, tb = _lists()
    tau = 0.05
    r = torch._foreach_lerp_(ta, tb, tau)
    assert r is ta
    for x, y, t in zip(a, b, ta):
        np.testing.assert_allclose(t.numpy(), x + tau * (y - x), rtol=1e-12)
    # the mul_/add_ form of the same update
    a, b, ta, tb = _lists()
    torch._foreach_mul_(ta, 1 - tau)
    torch._foreach_add_(ta, tb, alpha=tau)
    for x, y, t in zip(a, b, ta):
        np.testing.assert_allclose(t.numpy(), (1 - tau) * x + tau * y, rtol=1e-12)


def test_foreach_out_of_place_scalar_lists_tensors_and_norms():
    a, b, ta, tb = _lists()
    out = torch._foreach_sub(ta, tb, alpha=2)
    assert isinstance(out, tuple) and len(out) == 2
    for x, y, t in zip(a, b, out):
        np.testing.assert_allclose(t.numpy(), x - 2 * y, rtol=1e-12)
    np.testing.assert_allclose(torch._foreach_mul(ta, [2.0, -3.0])[1].numpy(), -3 * a[1])
    np.testing.assert_allclose(torch._foreach_div(ta, torch.tensor(4.0))[0].numpy(), a[0] / 4)
    np.testing.assert_allclose(torch._foreach_addcmul(ta, tb, tb, [0.5, 2.0])[1].numpy(),
                               a[1] + 2.0 * b[1] * b[1], rtol=1e-12)
    np.testing.assert_allclose(torch._foreach_addcdiv(ta, tb, ta, torch.tensor([1.0, 3.0]))[1]
                               .numpy(), a[1] + 3.0 * b[1] / a[1], rtol=1e-12)
    np.testing.assert_allclose(torch._foreach_pow(2.0, ta)[0].numpy(), 2.0 ** a[0], rtol=1e-12)
    np.testing.assert_allclose(torch._foreach_maximum(ta, 0.1)[1].numpy(), np.maximum(a[1], 0.1))
    np.testing.assert_allclose(torch._foreach_sqrt(torch._foreach_abs(ta))[0].numpy(),
                               np.sqrt(np.abs(a[0])), rtol=1e-12)
    norms = torch._foreach_norm(ta)
    np.testing.assert_allclose([n.item() for n in norms],
                               [np.linalg.norm(a[0]), np.linalg.norm(a[1].ravel())], rtol=1e-12)
    assert norms[0].shape == ()
    np.testing.assert_allclose([n.item() for n in torch._foreach_norm(ta, float("inf"))],
                               [np.abs(a[0]).max(), np.abs(a[1]).max()])
    # ops on a grad-requiring list record autograd like the single-tensor ops
    x = torch.ones(2, requires_grad=True)
    (y,) = torch._foreach_mul([x], 3.0)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_foreach_bad_inputs_raise_and_leave_data():
    _, _, ta, tb = _lists()
    before = [t.numpy().copy() for t in ta]
    with pytest.raises(RuntimeError, match="same number of tensors, got 2 and 1"):
        torch._foreach_add_(ta, tb[:1])
    with pytest.raises(RuntimeError, match="same number of elements as scalar list"):
        torch._foreach_mul_(ta, [1.0])
    with pytest.raises(RuntimeError, match="0 dim but it has 1 dimensions and 2 elements"):
        torch._foreach_add_(ta, torch.tensor([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="at least one tensor"):
        torch._foreach_add([], 1.0)
    with pytest.raises(TypeError):
        torch._foreach_add(ta[0], 1.0)
    with pytest.raises(TypeError):
        torch._foreach_add(ta, 1.0, alpha=2)
    for t, b in zip(ta, before):
        np.testing.assert_array_equal(t.numpy(), b)
    with pytest.raises(RuntimeError, match="can't be cast"):
        torch._foreach_sqrt_([torch.tensor([1, 4])])
    w = torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        torch._foreach_mul_([w], 2.0)
    with torch.no_grad():
        torch._foreach_mul_([w], 2.0)
    np.testing.assert_array_equal(w.detach().numpy(), [2.0, 2.0])


def test_transform_shape_helpers_keep_the_input_shape_type():
    # PyTorch slices and concatenates the given shape: a tuple stays a tuple
    assert type(T.StickBreakingTransform().forward_shape((2, 3))) is tuple
    assert T.CorrCholeskyTransform().forward_shape((2, 6)) == (2, 4, 4)
    assert type(T.CorrCholeskyTransform().inverse_shape((4, 4))) is tuple
    assert T.ReshapeTransform((3,), (3, 1)).forward_shape((5, 3)) == (5, 3, 1)
    with pytest.raises(ValueError, match=r"expected \(2, 3\) but got torch.Size\(\[3, 1\]\)"):
        T.ReshapeTransform((3,), (3, 1)).inverse_shape((2, 3))


def test_parametrized_spectral_norm_power_step_updates_u_then_v():
    # parametrizations.spectral_norm: u = W v / |W v|, then v = W^T u / |W^T u| (the older
    # nn.utils.spectral_norm goes v first); the order decides every GAN discriminator's output
    nn = torch.nn
    lin = nn.utils.parametrizations.spectral_norm(nn.Linear(4, 3))
    sn = lin.parametrizations.weight[0]
    W = lin.parametrizations.weight.original.detach().numpy().astype(np.float64)
    u0, v0 = np.array([1.0, 0.0, 0.0]), np.array([0.5, -0.5, 0.5, 0.5])
    with torch.no_grad():
        sn._u.copy_(torch.tensor(u0, dtype=torch.float32))
        sn._v.copy_(torch.tensor(v0, dtype=torch.float32))
    w_sn = lin.weight.detach().numpy()
    u = W @ v0
    u /= np.linalg.norm(u)
    v = W.T @ u
    v /= np.linalg.norm(v)
    np.testing.assert_allclose(sn._u.numpy(), u, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sn._v.numpy(), v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w_sn, W / (u @ W @ v), rtol=1e-5, atol=1e-6)


def test_gan_bce_losses_dtype_rules_and_target_range():
    F = torch.nn.functional
    p = np.array([0.3, 0.6])
    y = np.array([1.0, 0.0])
    x64 = torch.tensor(p)
    with pytest.raises(RuntimeError, match="Found dtype Float but expected Double"):
        F.binary_cross_entropy(x64, torch.tensor(y, dtype=torch.float32))
    with pytest.raises(RuntimeError, match="Found dtype Long but expected Float"):
        F.binary_cross_entropy(x64.float(), torch.tensor([1, 0]))
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        F.binary_cross_entropy(torch.tensor([1]), torch.tensor([1]))
    with pytest.raises(RuntimeError, match="all elements of target should be between 0 and 1"):
        F.binary_cross_entropy(x64, torch.tensor([0.5, 1.5], dtype=torch.float64))
    # a weight of another dtype is allowed; the loss keeps input's dtype
    r = F.binary_cross_entropy(x64.float(), torch.tensor(y, dtype=torch.float32),
                               weight=torch.tensor([2.0, 1.0], dtype=torch.float64))
    assert r.dtype == torch.float32
    want = np.mean(-np.array([2.0, 1.0]) * (y * np.log(p) + (1 - y) * np.log(1 - p)))
    np.testing.assert_allclose(r.item(), want, rtol=1e-6)
    # with logits the loss has target's dtype (PyTorch: (1 - target).mul_(input) ...)
    z = torch.tensor([0.3, -1.2], dtype=torch.float64, requires_grad=True)
    r = F.binary_cross_entropy_with_logits(z, torch.tensor(y, dtype=torch.float32))
    assert r.dtype == torch.float32
    zz = np.array([0.3, -1.2])
    want = np.mean(np.log1p(np.exp(-zz)) + (1 - y) * zz)
    np.testing.assert_allclose(r.item(), want, rtol=1e-6)
    r.backward()
    assert z.grad.dtype == torch.float64
    np.testing.assert_allclose(z.grad.numpy(), (1 / (1 + np.exp(-zz)) - y) / 2, rtol=1e-6)
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
        F.binary_cross_entropy_with_logits(z, torch.tensor([1, 0]))
    with pytest.raises(RuntimeError, match="with two bool tensors is not supported"):
        F.binary_cross_entropy_with_logits(z, torch.tensor([True, False]))
    with pytest.raises(RuntimeError, match="expected scalar type Double but found Float"):
        F.nll_loss(torch.zeros(2, 3, dtype=torch.float64), torch.tensor([0, 1]),
                   weight=torch.ones(3))


def test_sampling_with_a_non_generator_object_raises_type_error():
    with pytest.raises(TypeError, match="Generator"):
        torch.randn(2, generator=1)
    x = torch.zeros(3)
    with pytest.raises(TypeError, match="Generator"):
        x.normal_(generator="g")
    np.testing.assert_array_equal(x.numpy(), np.zeros(3))


def test_student_t_mean_and_variance_masks_and_grad_fn_names():
    df = torch.tensor([0.5, 1.5, 4.0])
    loc = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    scale = torch.tensor([2.0, 2.0, 2.0], requires_grad=True)
    d = torch.distributions.StudentT(df, loc, scale)
    m, v = d.mean, d.variance
    assert m.grad_fn.name() == "IndexPutBackward0" and v.grad_fn.name() == "IndexPutBackward0"
    np.testing.assert_array_equal(np.isnan(m.detach().numpy()), [True, False, False])
    np.testing.assert_allclose(m.detach().numpy()[1:], [2.0, 3.0])
    vv = v.detach().numpy()
    assert np.isnan(vv[0]) and np.isinf(vv[1])
    np.testing.assert_allclose(vv[2], 4.0 * 4.0 / 2.0)
    (m[1:].sum() + v[2]).backward()
    np.testing.assert_allclose(loc.grad.numpy(), [0.0, 1.0, 1.0])
    np.testing.assert_allclose(scale.grad.numpy(), [0.0, 0.0, 2 * 2.0 * 4.0 / 2.0])
