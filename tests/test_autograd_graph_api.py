"""torch.autograd.graph's gradient edges, increment_version and
allow_mutation_on_saved_tensors; autograd's multithreading / view-replay switches and the
legacy variable module. Expected values are hand-derived."""
import numpy as np
import pytest

import framework as torch
from framework import autograd
from framework.autograd import graph as G


def _x():
    return torch.tensor([1., 2., 3.], dtype=torch.float64, requires_grad=True)


def test_gradient_edges_as_grad_inputs_and_outputs():
    x = _x()
    y = x * x
    z = (y * 3).sum()
    ex, ey = G.get_gradient_edge(x), G.get_gradient_edge(y)
    assert isinstance(ex, tuple) and ex._fields == ("node", "output_nr", "ownership_token")
    assert ex.node is y.grad_fn.next_functions[0][0] and ex.output_nr == 0
    assert ey.node is y.grad_fn and ey.output_nr == 0
    # z = 3 sum x^2: dz/dx = 6x, dz/dy = 3
    (g,) = autograd.grad(z, ex, retain_graph=True)
    np.testing.assert_array_equal(g.numpy(), [6., 12., 18.])
    gy, gx = autograd.grad(z, [ey, x], retain_graph=True)
    np.testing.assert_array_equal(gy.numpy(), [3., 3., 3.])
    np.testing.assert_array_equal(gx.numpy(), [6., 12., 18.])
    # an edge as the output: y's gradient edge with a cotangent gives 2x * cotangent
    (g,) = autograd.grad(ey, x, grad_outputs=torch.tensor([1., 2., 3.], dtype=torch.float64),
                         retain_graph=True)
    np.testing.assert_array_equal(g.numpy(), [2., 8., 18.])
    (g,) = autograd.grad(G.get_gradient_edge(z), ey, grad_outputs=torch.tensor(2., dtype=torch.float64),
                         retain_graph=True)
    np.testing.assert_array_equal(g.numpy(), [6., 6., 6.])
    with pytest.raises(RuntimeError, match="implicitly created only for scalar outputs"):
        autograd.grad(ey, x, retain_graph=True)
    # an unused edge: None with allow_unused; materialize_grads refuses edges
    other = G.get_gradient_edge(torch.ones(2, requires_grad=True))
    assert autograd.grad(z, [other], retain_graph=True, allow_unused=True) == (None,)
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        autograd.grad(z, [other], retain_graph=True)
    with pytest.raises(RuntimeError, match="materialize_grads cannot be used when the given "
                                           "input is a GradientEdge"):
        autograd.grad(z, [other], retain_graph=True, materialize_grads=True)
    with pytest.raises(RuntimeError, match="all inputs have to be Tensors or GradientEdges, but "
                                           "got int"):
        autograd.grad(z, [1], retain_graph=True)
    # backward(inputs=[edge of a leaf]) fills that leaf's .grad only
    w = torch.tensor([2.], dtype=torch.float64, requires_grad=True)
    (x * w).sum().backward(inputs=[G.get_gradient_edge(x)])
    np.testing.assert_array_equal(x.grad.numpy(), [2., 2., 2.])
    assert w.grad is None
    with pytest.raises(RuntimeError, match="not possible to get the gradient edge for a Tensor "
                                           "that does not require gradients"):
        G.get_gradient_edge(torch.ones(2))


def test_gradient_edge_of_multi_output_node():
    a = torch.tensor(np.arange(12.).reshape(3, 4), requires_grad=True)
    u, v = a.split(2, dim=1)
    (g,) = autograd.grad(u.sum() + 2 * v.sum(), G.get_gradient_edge(v))
    np.testing.assert_array_equal(g.numpy(), np.full((3, 2), 2.))


def test_increment_version():
    x = _x()
    y = x.clone()
    z = (y * y).sum()
    assert y._version == 0
    G.increment_version(y)
    assert y._version == 1
    with pytest.raises(RuntimeError, match="output 0 of Clone, is at version 1; "
                                           "expected version 0 instead"):
        z.backward()
    G.increment_version([y, y])
    assert y._version == 3
    with pytest.raises(RuntimeError, match="expect a Iterable\\[Tensor\\] as input"):
        G.increment_version(3)
    t = torch.zeros(2)
    with pytest.raises(RuntimeError, match="expects each element of the iterable to be a tensor"):
        G.increment_version((t, 2))
    assert t._version == 1           # (the tensors before the bad element are bumped)
    with torch.inference_mode():
        inf = torch.ones(2)
    G.increment_version(inf)         # no version counter: left alone
    assert not inf.requires_grad


def test_allow_mutation_on_saved_tensors():
    ones = np.ones((2, 3))
    with G.allow_mutation_on_saved_tensors() as ctx:
        assert sorted(vars(ctx)) == ["cloned", "original", "sid_to_tid", "tid_to_weakhandle"]
        a = torch.ones(2, 3, dtype=torch.float64, requires_grad=True)
        b = a.clone()
        out = (b ** 2).sum()
        b.sin_()
        np.testing.assert_allclose(b.detach().numpy(), np.sin(ones))
        out.backward()                       # d/da sum(a^2) at a = 1, not at sin(1)
        np.testing.assert_array_equal(a.grad.numpy(), 2 * ones)
        a.grad = None
        b = a.clone()
        out = (b * b * 2).sum()
        b[0].mul_(3)                         # a view at the saved tensor's memory
        b.copy_(torch.full((2, 3), 5., dtype=torch.float64))
        out.backward(retain_graph=True)
        out.backward()
        np.testing.assert_array_equal(a.grad.numpy(), 8 * ones)
        a.grad = None
        e = a.clone().exp()                  # exp saves its result
        out = e.sum()
        e.mul_(0)
        out.backward()
        np.testing.assert_allclose(a.grad.numpy(), np.e * ones, rtol=1e-15)
        assert len(ctx.cloned) == 0 and len(ctx.original) == 0      # (freed by backward)
        b = a.clone()
        out = (b * b).sum()
        with pytest.raises(RuntimeError, match="cannot be nested"):
            with G.allow_mutation_on_saved_tensors():
                pass
    assert len(ctx.sid_to_tid) == 0
    with pytest.raises(AssertionError, match="Trying to backward outside of the "
                                             "'allow_mutation_on_saved_tensors' context"):
        out.backward()
    b = a.clone()
    out = (b * b).sum()
    b.sin_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()


def test_multithreading_switch():
    A = autograd
    assert A.is_multithreading_enabled()
    with A.set_multithreading_enabled(False):
        assert not A.is_multithreading_enabled()
    assert A.is_multithreading_enabled()
    m = A.set_multithreading_enabled(False)     # takes effect when called
    assert not A.is_multithreading_enabled() and type(m.clone()).__name__ == \
        "set_multithreading_enabled"
    A.set_multithreading_enabled(True)
    x = torch.tensor([2.], requires_grad=True)
    with A.set_multithreading_enabled(False):
        (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.])


def test_view_replay_switch_names_regenerated_views():
    A = autograd

    @A._force_original_view_tracking(True)
    def replaying():
        return A.is_view_replay_enabled()
    assert not A.is_view_replay_enabled() and replaying() and not A.is_view_replay_enabled()
    a = torch.ones(2, 3, requires_grad=True)

    def views(b):
        return [b[0], b.t()[1:], b.transpose(0, 1), b.unsqueeze(0), b.diagonal()]
    with A._force_original_view_tracking(True):
        b = a.clone()
        vs = views(b)
        b.mul_(2)
        assert [type(v.grad_fn).__name__ for v in vs] == [
            "SelectBackward0", "SliceBackward0", "TransposeBackward0", "UnsqueezeBackward0",
            "DiagonalBackward0"]
        sum(v.sum() for v in vs).backward()
    # 2 per read: b[0] (row 0), t()[1:] (columns 1, 2), all, all, (0,0) and (1,1)
    np.testing.assert_array_equal(a.grad.numpy(), [[8., 8., 8.], [4., 8., 6.]])
    b = a.clone()
    vs = views(b)
    b.mul_(2)
    assert {type(v.grad_fn).__name__ for v in vs} == {"AsStridedBackward0"}


def test_legacy_variable_module():
    import importlib
    mod = importlib.import_module("framework.autograd.variable")
    assert mod.Variable is autograd.Variable
    with pytest.raises(RuntimeError, match="autograd.variable\\(...\\) is deprecated"):
        autograd.variable(torch.ones(1))
