"""What backward frees (retain_graph=False), as PyTorch: a node that saved tensors refuses a
second backward, one that saved only shapes and scalars runs again. Which is which follows
PyTorch's nodes, not Kiln's decompositions (tril's mask, x * 2's wrapped number)."""
import numpy as np
import pytest

import framework as torch
from framework import autograd
import framework.nn.functional as F

A = np.array([[0.3, -1.2, 0.7, 2.0], [1.5, 0.4, -0.6, 0.9], [-0.8, 1.1, 0.25, -1.7]])


def _x():
    return torch.tensor(A, requires_grad=True)


def _twice(f):
    """Gradient of f(x).sum() after one backward, and after a second one (None if refused)."""
    x = _x()
    loss = f(x).sum()
    loss.backward()
    g1 = x.grad.numpy().copy()
    try:
        loss.backward()
    except RuntimeError as e:
        assert "backward through the graph a second time" in str(e)
        return g1, None
    return g1, x.grad.numpy().copy()


@pytest.mark.parametrize("f, ref", [
    (lambda x: x.tril(), np.tril(np.ones((3, 4)))),
    (lambda x: x.triu(1), np.triu(np.ones((3, 4)), 1)),
    (lambda x: torch.tril(x.float(), -1), np.tril(np.ones((3, 4)), -1)),
    (lambda x: x + 2, np.ones((3, 4))),
    (lambda x: 2 - x, -np.ones((3, 4))),
    (lambda x: torch.deg2rad(x), np.full((3, 4), np.pi / 180)),
    (lambda x: x.add(x, alpha=2), np.full((3, 4), 3.)),
    (lambda x: torch.rsub(x, 1., alpha=2), np.full((3, 4), -2.)),
    (lambda x: torch.lerp(x, torch.zeros(3, 4, dtype=torch.float64), 0.25), np.full((3, 4), .75)),
    (lambda x: torch.lerp(x, torch.zeros(3, 4, dtype=torch.float64), 0.75), np.full((3, 4), .25)),
    (lambda x: torch.fmod(x, 0.5), np.ones((3, 4))),
    (lambda x: torch.remainder(x, 0.5), np.ones((3, 4))),
    (lambda x: F.interpolate(x.reshape(1, 1, 3, 4), scale_factor=2), np.full((3, 4), 4.)),
    (lambda x: F.interpolate(x.reshape(1, 1, 3, 4), size=(3, 8), mode="bilinear"),
     np.full((3, 4), 2.)),
    (lambda x: F.adaptive_avg_pool1d(x.reshape(1, 3, 4), 1), np.full((3, 4), .25)),   # a mean
])
def test_second_backward_runs_where_pytorch_saved_no_tensor(f, ref):
    g1, g2 = _twice(f)
    np.testing.assert_allclose(g1, ref, rtol=1e-12, atol=1e-15)
    assert g2 is not None, "second backward refused"
    np.testing.assert_allclose(g2, 2 * ref, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("f, ref", [
    (lambda x: x * 2, np.full((3, 4), 2.)),
    (lambda x: 3 * x, np.full((3, 4), 3.)),
    (lambda x: x.mul(2.5), np.full((3, 4), 2.5)),
    (lambda x: x / 4, np.full((3, 4), .25)),
    (lambda x: torch.div(x, 2, rounding_mode="floor"), np.zeros((3, 4))),
    (lambda x: torch.addcdiv(x, torch.ones(3, 4, dtype=torch.float64),
                             torch.ones(3, 4, dtype=torch.float64)), np.ones((3, 4))),
    (lambda x: F.avg_pool2d(x.reshape(1, 1, 3, 4), 2),
     np.pad(np.full((2, 4), .25), ((0, 1), (0, 0)))),
    (lambda x: x.median(), (A == np.sort(A.ravel())[5]).astype(float)),
    (lambda x: x * x, 2 * A),
    # 1-d pools are PyTorch's 2-d ones of an unsqueezed input: their node saves it
    (lambda x: F.avg_pool1d(x.reshape(1, 3, 4), 2), np.full((3, 4), .5)),
    (lambda x: F.avg_pool1d(x, 3, 1, padding=1), np.tile([2 / 3, 1., 1., 2 / 3], (3, 1))),
    (lambda x: F.adaptive_avg_pool1d(x.reshape(1, 3, 4), 3), np.tile([.5, 1., 1., .5], (3, 1))),
    (lambda x: F.adaptive_avg_pool1d(x, 2), np.full((3, 4), .5)),
    # convolution and batch_norm save input and weight whatever requires grad
    (lambda x: F.conv1d(torch.ones(1, 1, 4, dtype=torch.float64),
                        torch.ones(1, 1, 2, dtype=torch.float64), x[0, :1]),
     np.pad([[3.]], ((0, 2), (0, 3)))),
    (lambda x: F.batch_norm(torch.ones(2, 4, dtype=torch.float64),
                            torch.zeros(4, dtype=torch.float64),
                            torch.ones(4, dtype=torch.float64), None, x[0]),
     np.pad([[2.] * 4], ((0, 2), (0, 0)))),
])
def test_second_backward_refused_where_pytorch_saved_a_tensor(f, ref):
    g1, g2 = _twice(f)
    np.testing.assert_allclose(g1, ref, rtol=1e-12, atol=1e-15)
    assert g2 is None, "second backward ran; PyTorch's node freed its saved tensor"


def test_retain_graph_keeps_wrapped_number():
    x = _x()
    loss = (x * 2).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 4), 4.))


def test_wrapped_number_is_not_version_checked():
    # x * 2 saves 2, not x: writing x in place after it does not break its backward
    x = _x()
    y = x.clone()
    z = (y * 2).sum()
    y.add_(1)
    z.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 4), 2.))


def test_tril_mask_survives_inplace_and_double_backward():
    x = _x()
    y = x.clone()
    t = y.tril()
    y.mul_(3)                     # tril saved no input: no version error
    (g,) = autograd.grad((t * t).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), np.tril(2 * A), rtol=1e-12)
    (gg,) = autograd.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), np.tril(np.full((3, 4), 2.)), rtol=1e-12)
    x2 = torch.tensor(A[:3, :3], requires_grad=True)
    assert autograd.gradcheck(lambda a: a.triu(-1) ** 2, (x2,))
    assert autograd.gradgradcheck(lambda a: a.tril(1) ** 2, (x2,))


def test_saved_tensors_hooks_see_only_what_pytorch_saves():
    x = _x()
    packed = []

    def pack(t):
        packed.append(tuple(t.shape))
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        x.tril()                  # TrilBackward0: diagonal only
        x * 2                     # the wrapped 2 is no tensor a hook sees
        torch.lerp(x, torch.zeros(3, 4, dtype=torch.float64), 0.5)
        F.interpolate(x.reshape(1, 1, 3, 4), scale_factor=2)
        assert packed == []
        x * x                     # MulBackward0 saves self and other
    assert packed == [(3, 4), (3, 4)]
