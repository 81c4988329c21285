"""Autograd semantics: tensor API, engine, grad modes, custom Functions, functional helpers,
graph_of and memory. Expected values are hand-derived or NumPy float64."""
import gc
import tracemalloc
import warnings

import numpy as np
import pytest

import framework as torch
from framework import autograd
from framework._dispatch import Node
from tests.conftest import assert_close, to_np


def leaf(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype, requires_grad=True)


# ---- tensor API -----------------------------------------------------------------------------

def test_requires_grad_flags_and_is_leaf():
    x = torch.ones(2, 2)
    assert not x.requires_grad and x.is_leaf and x.grad_fn is None
    x.requires_grad = True
    assert x.requires_grad and x.is_leaf
    y = x + 2
    assert y.requires_grad and not y.is_leaf
    assert torch.zeros(3).requires_grad_() .requires_grad
    z = torch.zeros(3).requires_grad_().requires_grad_(False)
    assert not z.requires_grad
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf"):
        y.requires_grad_(False)
    # a constant-only computation is not tracked
    assert not (torch.ones(2) * 3).requires_grad


def test_integer_tensors_cannot_require_grad():
    t = torch.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match="floating point"):
        t.requires_grad_()
    with pytest.raises(RuntimeError, match="floating point"):
        t.requires_grad = True
    assert not t.requires_grad
    with pytest.raises(RuntimeError, match="floating point"):
        torch.tensor([1, 2], requires_grad=True)


def test_grad_fn_names_match_pytorch():
    x = leaf([1.0, 2.0])
    w = leaf([[1.0, 2.0], [3.0, 4.0]])
    cases = {
        "AddBackward0": x + 2, "SubBackward0": x - 1, "MulBackward0": x * x,
        "DivBackward0": x / 3, "PowBackward0": x ** 2, "PowBackward1": x ** x,
        "MeanBackward0": x.mean(), "MeanBackward1": w.mean(0), "SumBackward0": x.sum(),
        "SumBackward1": w.sum(1), "ExpBackward0": x.exp(), "NegBackward0": -x,
        "AddmmBackward0": torch.addmm(x, w, w), "MmBackward0": w @ w,
        "ReluBackward0": torch.relu(x), "TBackward0": w.t(), "ViewBackward0": w.view(4),
        "TanhBackward0": x.tanh(), "SigmoidBackward0": x.sigmoid(), "CatBackward0": torch.cat([x, x]),
        "CloneBackward0": x.clone(), "ExpandBackward0": x.expand(3, 2),
        "UnsqueezeBackward0": x.unsqueeze(0), "MaxBackward1": x.max(),
        "LogSoftmaxBackward0": torch.log_softmax(x, 0), "SoftmaxBackward0": torch.softmax(x, 0),
        "ToCopyBackward0": x.float(), "IndexBackward0": x[[0, 1]],
    }
    for name, t in cases.items():
        assert t.grad_fn.name() == name, (name, t.grad_fn.name())
        assert type(t.grad_fn).__name__ == name
        assert repr(t.grad_fn).startswith(f"<{name} object at 0x")
    assert "grad_fn=<MulBackward0>" in repr(x * x)


def test_grad_fn_names_of_composite_ops_match_pytorch():
    # ops Kiln builds from several primitives, named after PyTorch's single node
    x = leaf([[0.5, -1.5, 2.0], [1.0, 3.0, -0.25]])
    p = leaf([[1.5, 0.5, 2.0], [1.0, 3.0, 0.25]])
    m = leaf([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]])
    v = leaf([1.0, 2.0, 3.0])
    idx = torch.tensor([[0], [2]])
    cases = [
        ("FracBackward0", x.frac()), ("HypotBackward0", torch.hypot(x, p)),
        ("XlogyBackward0", torch.xlogy(p, p)), ("XlogyBackward1", torch.xlogy(2., p)),
        ("XlogyBackward2", torch.xlogy(p, 2.)), ("SincBackward0", torch.sinc(x)),
        ("SgnBackward0", x.sgn()), ("NansumBackward0", x.nansum()),
        ("VarMeanBackward0", torch.var_mean(x, 1)[0]), ("VarMeanBackward0", torch.var_mean(x)[1]),
        ("StdMeanBackward0", torch.std_mean(x)[0]), ("AminmaxBackward0", torch.aminmax(x)[1]),
        ("DistBackward0", torch.dist(x, p)), ("Rot90Backward0", x.rot90()),
        ("Rot90Backward0", x.rot90(2)), ("UnsafeViewBackward0", torch.kron(x, p)),
        ("BlockDiagBackward0", torch.block_diag(x, p)),
        ("DiagonalBackward0_copy", torch.diag(m)), ("ScatterBackward1", x.scatter(1, idx, 2.)),
        ("ScatterBackward0", x.scatter(1, idx, p)), ("UnsqueezeBackward0", torch.atleast_2d(v)),
        ("UnsqueezeBackward0", torch.atleast_3d(v)), ("CatBackward0", torch.linalg.vander(v)),
        ("CopySlices", torch.vander(v, increasing=True)), ("FlipBackward0", torch.vander(v)),
        ("LinalgSolveExBackward0", torch.linalg.solve(m, v)),
        ("VdotBackward0", torch.linalg.vecdot(v, v)), ("SumBackward1", torch.linalg.vecdot(x, p)),
        ("MmBackward0", torch.linalg.matrix_power(m, 3)),
        ("CloneBackward0", torch.linalg.matrix_power(m, 1)),
        ("CopyBackwards", torch.linalg.matrix_power(m, 0)),
    ]
    for name, t in cases:
        assert type(t.grad_fn).__name__ == name, (name, type(t.grad_fn).__name__)
    # (the names change no value: rot90's gradient is the cotangent rotated back)
    g = np.arange(6.).reshape(3, 2)
    (gx,) = autograd.grad(x.rot90(), x, torch.tensor(g))
    assert_close(gx, np.rot90(g, -1))


def test_next_functions_walk_to_accumulate_grad():
    a, b = leaf([1.0]), leaf([2.0])
    c = a * b
    d = c + 1.0
    (fn, i), (none, j) = d.grad_fn.next_functions
    assert fn is c.grad_fn and i == 0 and none is None and j == 0
    acc_a, acc_b = c.grad_fn.next_functions
    assert acc_a[0].name() == "torch::autograd::AccumulateGrad"
    assert acc_a[0].variable is a and acc_b[0].variable is b
    assert c.grad_fn.next_functions[0][0] is acc_a[0]    # one AccumulateGrad per leaf


def test_backward_values_and_accumulation_then_zeroing():
    x = leaf([1.0, 2.0, 3.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    assert_close(x.grad, [2.0, 4.0, 6.0])
    y.backward()
    assert_close(x.grad, [4.0, 8.0, 12.0])          # accumulates
    g = x.grad
    (x * 3).sum().backward()
    assert x.grad is g                               # accumulated in place, same tensor
    assert_close(x.grad, [7.0, 11.0, 15.0])
    x.grad.zero_()
    assert_close(x.grad, [0.0, 0.0, 0.0])
    x.grad = None
    (x ** 3).sum().backward()
    assert_close(x.grad, 3 * np.array([1.0, 4.0, 9.0]))


def test_only_leaves_get_grad_unless_retained():
    x = leaf([1.0, -2.0])
    y = x * 3
    z = y.sum()
    y.retain_grad()
    w = x * 2
    z2 = z + w.sum()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z2.backward()
        assert w.grad is None
    assert y.retains_grad and not w.retains_grad
    assert_close(y.grad, [1.0, 1.0])
    assert_close(x.grad, [5.0, 5.0])
    with pytest.warns(UserWarning, match="not a leaf"):
        assert z.grad is None


def test_backward_with_gradient_argument_on_non_scalar():
    x = leaf([[0.0, 0.0], [1.0, 2.0]])
    y = x * x - 2 * x + 1
    y.backward(gradient=torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64))
    assert_close(x.grad, (2 * np.array([[0.0, 0.0], [1.0, 2.0]]) - 2) * [[1, 2], [3, 4]])


def test_backward_errors_leave_grads_untouched():
    x = leaf([1.0, 2.0])
    y = x * 2
    with pytest.raises(RuntimeError, match="implicitly created only for scalar outputs"):
        y.backward()
    assert x.grad is None
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        y.backward(torch.ones(3, dtype=torch.float64))
    assert x.grad is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        torch.ones(2).sum().backward()
    # y's graph is still intact after the failed calls
    y.sum().backward()
    assert_close(x.grad, [2.0, 2.0])


def test_second_backward_raises_and_retain_graph_fixes_it():
    x = leaf([1.0, 2.0])
    z = (x ** 2) * 4
    z.mean().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        z.sum().backward()
    x2 = leaf([1.0, 2.0])
    z2 = (x2 ** 2) * 4
    z2.mean().backward(retain_graph=True)
    z2.sum().backward()
    assert_close(x2.grad, 12 * np.array([1.0, 2.0]))     # 8x/2 from the mean, 8x from the sum
    # a graph that saved no tensors may run again, as in PyTorch
    x3 = leaf([1.0, 2.0])
    s = (x3 + 1).sum()
    s.backward()
    s.backward()
    assert_close(x3.grad, [2.0, 2.0])


def test_inplace_on_saved_tensor_raises_at_backward():
    x = leaf([1.0, 2.0, 3.0])
    a = x * 1
    b = a * a               # mul saves a
    a.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        b.sum().backward()
    # add does not save its inputs: modifying them afterwards is fine
    x2 = leaf([1.0, 2.0, 3.0])
    a2 = x2 * 1
    c = a2 + 5
    a2.mul_(3)
    c.sum().backward()
    assert_close(x2.grad, [1.0, 1.0, 1.0])      # c was computed from a2 before the mul_
    # outputs a rule reads (exp saves its result) are checked too
    x3 = leaf([0.5, 1.0])
    e = x3.exp()
    e.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        e.sum().backward()
    # writes through .data are not tracked (separate version counter)
    x4 = leaf([1.0, 2.0])
    a4 = x4 * 1
    b4 = a4 * a4
    a4.data.mul_(10)
    b4.sum().backward()
    assert_close(x4.grad, [20.0, 40.0])


def test_inplace_on_leaf_requiring_grad_raises_and_keeps_data():
    x = leaf([1.0, 2.0])
    for op in (lambda: x.add_(1), lambda: x.mul_(2), lambda: x.exp_(), lambda: x.zero_()):
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            op()
        assert_close(x.detach(), [1.0, 2.0])
        assert x._version == 0
    v = x[0:1]
    with pytest.raises(RuntimeError, match="view of a leaf Variable"):
        v.add_(1)
    assert_close(x.detach(), [1.0, 2.0])
    with torch.no_grad():          # what an optimizer does
        x.sub_(0.5)
    assert_close(x.detach(), [0.5, 1.5])
    assert x.requires_grad and x.is_leaf


def test_inplace_on_non_leaf_gives_correct_gradient():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.mul_(x)            # y = 2x^2 (mul_ saves the value y had before)
    y.add_(x)            # + x
    assert y.grad_fn.name() == "AddBackward0"
    y.sum().backward()
    assert_close(x.grad, 4 * np.array([1.0, 2.0]) + 1)
    # y.mul_(y) overwrites a tensor its own node saved: PyTorch raises too
    z = x * 2
    z.mul_(z)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_detach_and_data_share_storage_and_are_not_tracked():
    x = leaf([1.0, 2.0])
    d = x.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    d[0:1] = 7.0
    assert_close(x.detach(), [7.0, 2.0])
    assert x._version == d._version        # detach shares the version counter
    dd = x.data
    dd.mul_(2)
    assert_close(x.detach(), [14.0, 4.0])
    assert not dd.requires_grad
    y = x * 2
    y.detach_()
    assert not y.requires_grad and y.is_leaf
    x.data = torch.tensor([5.0, 6.0], dtype=torch.float64)
    assert x.requires_grad
    (x * x).sum().backward()
    assert_close(x.grad, [10.0, 12.0])


def test_grad_setter_checks():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="different size"):
        x.grad = torch.ones(3, dtype=torch.float64)
    with pytest.raises(TypeError):
        x.grad = [1.0, 2.0]
    assert x.grad is None
    x.grad = torch.ones(2, dtype=torch.float64)
    assert_close(x.grad, [1.0, 1.0])
    del x.grad
    assert x.grad is None


# ---- hooks ----------------------------------------------------------------------------------

def test_tensor_hooks_order_replacement_and_removal():
    x = leaf([1.0, 2.0])
    log = []
    y = x * 3
    y.register_hook(lambda g: log.append(("y1", to_np(g).tolist())))
    y.register_hook(lambda g: g * 10)               # replaces the gradient for what follows
    y.register_hook(lambda g: log.append(("y3", to_np(g).tolist())))
    h = x.register_hook(lambda g: log.append(("x", to_np(g).tolist())))
    y.sum().backward()
    assert log == [("y1", [1.0, 1.0]), ("y3", [10.0, 10.0]), ("x", [30.0, 30.0])]
    assert_close(x.grad, [30.0, 30.0])
    h.remove()
    log.clear()
    x.grad = None
    (x * 1).sum().backward()
    assert log == [] and x.grad is not None


def test_removing_an_earlier_leaf_hook_after_a_later_registration():
    """Each handle removes its own hook from the leaf's one hook list (the list was rebuilt
    on every registration, so an earlier handle removed from a stale copy and did nothing)."""
    x = leaf([1.0, 2.0])
    log = []
    h1 = x.register_hook(lambda g: log.append("h1"))
    h2 = x.register_hook(lambda g: log.append("h2"))
    h1.remove()
    (x * 2).sum().backward()
    assert log == ["h2"]
    h2.remove()
    log.clear()
    (x * 2).sum().backward()
    assert log == []
    assert_close(x.grad, [4.0, 4.0])


def test_leaf_hook_fires_when_its_gradient_is_complete():
    x = leaf([1.0])
    order = []
    x.register_hook(lambda g: order.append("x"))
    a = x * 2
    a.register_hook(lambda g: order.append("a"))
    b = a * 3
    c = b + x                       # x gets gradient from two paths
    c.register_hook(lambda g: order.append("c"))
    c.sum().backward()
    assert order == ["c", "a", "x"]
    assert_close(x.grad, [7.0])


def test_register_hook_needs_requires_grad_and_node_hooks():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        torch.ones(2).register_hook(lambda g: g)
    x = leaf([1.0, 2.0])
    y = x * x
    seen = []
    y.grad_fn.register_prehook(lambda gout: seen.append(("pre", to_np(gout[0]).tolist())))
    y.grad_fn.register_hook(lambda gin, gout: seen.append(("post", to_np(gin[0]).tolist())))
    y.sum().backward()
    # each input's gradient is g * (the other input) = x; the two add up in x.grad
    assert seen == [("pre", [1.0, 1.0]), ("post", [1.0, 2.0])]
    assert_close(x.grad, [2.0, 4.0])


def test_post_accumulate_grad_hook():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_post_accumulate_grad_hook(lambda t: seen.append(to_np(t.grad).tolist()))
    (x * 2).sum().backward()
    assert seen == [[2.0, 2.0]]


# ---- autograd.grad / backward(inputs=) ------------------------------------------------------

def test_autograd_grad_basic_and_multiple_outputs():
    x1, x2 = leaf(1.0), leaf(2.0)
    y1, y2 = x1 * x2, x1 + x2
    g1, g2 = autograd.grad(y1, [x1, x2], retain_graph=True)
    assert (g1.item(), g2.item()) == (2.0, 1.0)
    g1, g2 = autograd.grad([y1, y2], [x1, x2])
    assert (g1.item(), g2.item()) == (3.0, 2.0)
    assert x1.grad is None and x2.grad is None       # grad() leaves .grad alone


def test_autograd_grad_allow_unused_and_grad_outputs():
    x, z = leaf([1.0, 2.0]), leaf([3.0])
    y = x * x
    with pytest.raises(RuntimeError, match="not have been used"):
        autograd.grad(y.sum(), [x, z], retain_graph=True)
    gx, gz = autograd.grad(y.sum(), [x, z], allow_unused=True, retain_graph=True)
    assert gz is None
    assert_close(gx, [2.0, 4.0])
    (gy,) = autograd.grad(y, x, grad_outputs=torch.tensor([1.0, -1.0], dtype=torch.float64),
                          retain_graph=True)
    assert_close(gy, [2.0, -4.0])
    gx, gz = autograd.grad(y.sum(), [x, z], materialize_grads=True)
    assert_close(gz, [0.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        autograd.grad(y.sum(), torch.ones(2))


def test_grad_wrt_intermediate_and_pruning():
    x = leaf([1.0, 2.0])
    h = x * x
    out = (h * 3).sum()
    (gh,) = autograd.grad(out, h)
    assert_close(gh, [3.0, 3.0])
    assert x.grad is None


def test_higher_order_with_create_graph():
    x = leaf(2.0)
    y = x ** 3
    (dy,) = autograd.grad(y, x, create_graph=True)
    assert dy.item() == 12.0 and dy.requires_grad
    (d2y,) = autograd.grad(dy, x, create_graph=True)
    assert d2y.item() == 12.0            # 6x
    (d3y,) = autograd.grad(d2y, x)
    assert d3y.item() == 6.0
    # backward(create_graph=True) leaves a differentiable .grad
    z = leaf([1.0, 2.0])
    (z ** 3).sum().backward(create_graph=True)
    assert z.grad.requires_grad
    g = z.grad.clone()
    z.grad = None
    g.sum().backward()
    assert_close(z.grad, 6 * np.array([1.0, 2.0]))


_F = torch.nn.functional
_LINKED = {   # op, and which entries of its input get the gradient (hand-derived masks)
    "relu": (_F.relu, lambda x: x > 0),
    "leaky_relu": (lambda x: _F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, 1.0, 0.2)),
    "hardtanh": (_F.hardtanh, lambda x: (x > -1) & (x < 1)),
    "threshold": (lambda x: _F.threshold(x, 0.1, 2.0), lambda x: x > 0.1),
    "prelu": (lambda x: _F.prelu(x, torch.tensor([0.25], dtype=torch.float64)),
              lambda x: np.where(x > 0, 1.0, 0.25)),
    "softshrink": (_F.softshrink, lambda x: np.abs(x) > 0.5),
    "hardshrink": (_F.hardshrink, lambda x: np.abs(x) > 0.5),
}


@pytest.mark.parametrize("name", sorted(_LINKED))
def test_double_backward_through_masked_gradients_gives_zeros_not_none(name):
    # PyTorch's backward ops for these read their input, so the create_graph gradient depends
    # on it with a zero derivative: a gradient penalty gives upstream biases 0, not None (and
    # an optimizer then steps them: Adam moves a parameter with a zero gradient)
    op, mask = _LINKED[name]
    base = np.array([[-1.5, -0.3, 0.2], [0.7, 1.6, -0.8]])
    bias = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    x = torch.tensor(base, dtype=torch.float64) + bias
    w = np.arange(1.0, 7.0).reshape(2, 3)
    (g,) = autograd.grad((op(x) * torch.tensor(w)).sum(), x, create_graph=True)
    expect = w * mask(base + 0.05)
    assert_close(g, expect)
    assert g.requires_grad
    r = g.pow(2).sum()
    (gb,) = autograd.grad(r, bias)
    assert gb is not None and to_np(gb) == 0.0
    # without create_graph nothing is connected
    (g1,) = autograd.grad((op(x) * torch.tensor(w)).sum(), x)
    assert not g1.requires_grad
    assert_close(g1, expect)


def test_double_backward_through_pools_and_nll_gives_zeros():
    F = torch.nn.functional
    tg = torch.tensor([1, 0])
    ops = [lambda x: F.max_pool2d(x, 2), lambda x: F.avg_pool2d(x, 2),
           lambda x: F.adaptive_max_pool2d(x, 1), lambda x: F.adaptive_avg_pool2d(x, 3),
           lambda x: F.pad(x, (1, 1, 1, 1), mode="reflect"),
           lambda x: F.nll_loss(x.flatten(1)[:, :4], tg)]
    rng = np.random.default_rng(0)
    base = rng.standard_normal((2, 1, 4, 4))
    for op in ops:
        bias = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
        x = torch.tensor(base) + bias
        y = op(x)
        (g,) = autograd.grad((y * (torch.arange(y.numel(), dtype=torch.float64) + 1).reshape(
            y.shape)).sum(), x, create_graph=True)
        (gb,) = autograd.grad(g.pow(2).sum(), bias)
        assert to_np(gb) == 0.0
    # the first-order gradient names PyTorch's backward op, as its grad_fn does
    x = torch.tensor(base, requires_grad=True)
    (g,) = autograd.grad(F.relu(x).sum(), x, create_graph=True)
    assert g.grad_fn.name() == "ThresholdBackwardBackward0"


_CW = np.random.default_rng(5)


@pytest.mark.parametrize("op, xs, cs", [
    (lambda x, c: torch.nn.functional.conv1d(x, c), (1, 2, 5), (3, 2, 3)),
    (lambda x, c: torch.nn.functional.conv2d(x, c, padding=1), (1, 2, 4, 4), (3, 2, 3, 3)),
    (lambda x, c: torch.nn.functional.conv2d(x, c), (2, 4, 4), (3, 2, 2, 2)),       # unbatched
    (lambda x, c: torch.nn.functional.conv3d(x, c), (1, 2, 3, 3, 3), (2, 2, 2, 2, 2)),
    (lambda x, c: torch.nn.functional.conv_transpose1d(x, c), (1, 2, 4), (2, 3, 3)),
    (lambda x, c: torch.nn.functional.conv_transpose2d(x, c, stride=2), (1, 2, 3, 3),
     (2, 3, 2, 2)),
    (lambda x, c: torch.nn.functional.conv_transpose3d(x, c), (1, 2, 2, 2, 2), (2, 1, 2, 2, 2)),
    (lambda x, c: torch.nn.functional.grid_sample(x, c.tanh(), align_corners=False),
     (1, 2, 4, 4), (1, 3, 3, 2)),
    (lambda x, c: torch.nn.functional.grid_sample(x, c.tanh(), mode="bicubic",
                                                  align_corners=True), (1, 2, 4, 4), (1, 2, 3, 2)),
    (lambda x, c: torch.nn.functional.grid_sample(x, c.tanh(), mode="nearest",
                                                  align_corners=False), (1, 2, 4, 4), (1, 2, 2, 2)),
    (lambda x, c: torch.nn.functional.grid_sample(x, c.tanh(), align_corners=False),
     (1, 1, 3, 3, 3), (1, 2, 2, 2, 3)),
    (lambda x, c: torch.nn.functional.grid_sample(c, x * 0.5, mode="nearest",
                                                  align_corners=False), (1, 2, 2, 2), (1, 2, 4, 4)),
    (lambda x, c: torch.nn.functional.batch_norm(x, c[0], c[1].abs() + 0.5, c[2], c[3]),
     (3, 2, 4), (4, 2)),
    (lambda x, c: torch.nn.functional.batch_norm(x, c[0], c[1].abs() + 0.5), (3, 2), (2, 2)),
])
def test_double_backward_with_constant_weight_gives_none(op, xs, cs):
    # PyTorch's convolution / grid_sampler / batch_norm double backward reads the input, so the
    # first gradient requires grad even where it does not depend on x; x's own second gradient
    # is then undefined: None, zeros with materialize_grads, an error without allow_unused
    x = torch.tensor(_CW.standard_normal(xs), requires_grad=True)
    c = torch.tensor(_CW.standard_normal(cs))
    y = op(x, c)
    u = torch.tensor(_CW.standard_normal(tuple(y.shape)))
    (g,) = autograd.grad((y * u).sum(), x, create_graph=True)
    (ref,) = autograd.grad((op(x, c) * u).sum(), x)
    assert g.requires_grad and g.grad_fn is not None
    assert_close(g.detach(), to_np(ref), rtol=0, atol=0)
    v = torch.tensor(_CW.standard_normal(xs))
    assert autograd.grad((g * v).sum(), x, allow_unused=True, retain_graph=True) == (None,)
    (z,) = autograd.grad((g * v).sum(), x, materialize_grads=True, retain_graph=True)
    assert z.shape == x.shape and not np.any(to_np(z))
    with pytest.raises(RuntimeError, match="index 0 appears to not have been used in the graph"):
        autograd.grad((g * v).sum(), x)


def test_double_backward_conv_weight_still_differentiable():
    # with both x and w requiring grad, d(gx)/dw is the real mixed derivative and d(gx)/dx None
    F = torch.nn.functional
    x = torch.tensor(_CW.standard_normal((1, 1, 4)), requires_grad=True)
    w = torch.tensor(_CW.standard_normal((1, 1, 2)), requires_grad=True)
    (gx,) = autograd.grad(F.conv1d(x, w).sum(), x, create_graph=True)
    # sum_o y_o = sum_o (w0 x_o + w1 x_o+1): gx = [w0, w0 + w1, w0 + w1, w1]
    wn = to_np(w).ravel()
    assert_close(gx.detach(), np.array([wn[0], wn.sum(), wn.sum(), wn[1]]).reshape(1, 1, 4))
    hx, hw = autograd.grad((gx * torch.tensor([[[1., 2., 3., 4.]]], dtype=torch.float64)).sum(),
                           [x, w], allow_unused=True)
    assert hx is None
    assert_close(hw, [[[1. + 2. + 3., 2. + 3. + 4.]]])
    assert autograd.gradgradcheck(lambda a: F.conv1d(a, w.detach()), (x,))


def test_r1_penalty_reaches_first_layer_bias_with_zeros():
    # StyleGAN's R1: |d D(x) / dx|^2 through conv + leaky_relu; D's first bias gets a zero
    # gradient (PyTorch), so Adam updates it from its moments like every other parameter
    torch.manual_seed(0)
    c1 = torch.nn.Conv2d(1, 2, 3, padding=1).double()
    fc = torch.nn.Linear(2 * 16, 1).double()
    real = torch.randn(3, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    out = fc(torch.nn.functional.leaky_relu(c1(real), 0.2).flatten(1))
    (g,) = autograd.grad(out.sum(), real, create_graph=True)
    g.pow(2).sum().backward()
    assert c1.bias.grad is not None and to_np(c1.bias.grad).tolist() == [0.0, 0.0]
    assert c1.weight.grad is not None and np.abs(to_np(c1.weight.grad)).sum() > 0


def test_backward_inputs_argument():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    h = a * b
    out = (h * h).sum()
    out.backward(inputs=[a], retain_graph=True)
    assert_close(a.grad, 2 * (np.array([3.0, 8.0])) * np.array([3.0, 4.0]))
    assert b.grad is None
    out.backward(inputs=[h])
    assert_close(h.grad, 2 * np.array([3.0, 8.0]))
    assert b.grad is None
    with pytest.raises(RuntimeError, match="cannot be empty"):
        (a * 1).sum().backward(inputs=[])


def test_grad_of_leaf_itself_and_multi_output_node():
    x = leaf([1.0, 2.0])
    (g,) = autograd.grad(x, x, grad_outputs=torch.tensor([5.0, 6.0], dtype=torch.float64))
    assert_close(g, [5.0, 6.0])
    a = leaf([[2.0, 1.0], [1.0, 3.0]])
    q, r = torch.linalg.qr(a)
    (r.sum() + q[0, 0]).backward()
    assert a.grad.shape == (2, 2) and np.all(np.isfinite(to_np(a.grad)))


def test_mixed_precision_gradients_take_input_dtype():
    x = torch.tensor([1.0, 2.0], requires_grad=True)             # float32
    w = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    y = (x * w).sum()
    assert y.dtype == torch.float64
    y.backward()
    assert x.grad.dtype == torch.float32 and w.grad.dtype == torch.float64
    assert_close(x.grad, [3.0, 4.0])


# ---- grad modes -----------------------------------------------------------------------------

def test_no_grad_enable_grad_nesting_and_decorators():
    x = leaf([1.0])
    with torch.no_grad():
        assert not torch.is_grad_enabled()
        assert not (x * 2).requires_grad
        with torch.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    assert torch.is_grad_enabled() and (x * 2).requires_grad

    @torch.no_grad()
    def f(t):
        return t * 2

    @torch.no_grad
    def g(t):
        return t * 2

    @torch.enable_grad()
    def h(t):
        return t * 2

    assert not f(x).requires_grad and not g(x).requires_grad
    with torch.no_grad():
        assert h(x).requires_grad
    assert f.__name__ == "f"


def test_set_grad_enabled_forms():
    x = leaf([1.0])
    torch.set_grad_enabled(False)
    try:
        assert not torch.is_grad_enabled() and not (x * 2).requires_grad
    finally:
        torch.set_grad_enabled(True)
    with torch.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert torch.is_grad_enabled()

    @torch.set_grad_enabled(False)
    def f(t):
        return t * 2
    assert torch.is_grad_enabled()           # decorating does not switch the mode
    assert not f(x).requires_grad
    with pytest.raises(TypeError):
        torch.set_grad_enabled("yes")


def test_inference_mode():
    x = leaf([1.0])
    with torch.inference_mode():
        assert not torch.is_grad_enabled()
        assert autograd.is_inference_mode_enabled()
        assert not (x * 2).requires_grad
    assert torch.is_grad_enabled() and not autograd.is_inference_mode_enabled()
    with torch.inference_mode(False):
        assert (x * 2).requires_grad

    @torch.inference_mode()
    def f(t):
        return t * 2

    @torch.inference_mode
    def g(t):
        return t * 2
    assert not f(x).requires_grad and not g(x).requires_grad


def test_modes_restore_after_exceptions():
    with pytest.raises(ValueError):
        with torch.no_grad():
            raise ValueError
    assert torch.is_grad_enabled()

    @torch.no_grad()
    def bad():
        raise KeyError
    with pytest.raises(KeyError):
        bad()
    assert torch.is_grad_enabled()


# ---- custom Function ------------------------------------------------------------------------

class Cube(autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return x ** 3 * k

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x ** 2 * ctx.k, None


def test_function_forward_backward_and_ctx():
    x = leaf([1.0, 2.0])
    seen = {}

    class Probe(autograd.Function):
        @staticmethod
        def forward(ctx, a, b, c):
            seen["needs"] = ctx.needs_input_grad
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2, None, None

    Probe.apply(x, torch.ones(2), 3)
    assert seen["needs"] == (True, False, False)
    y = Cube.apply(x, 2.0)
    assert type(y.grad_fn).__name__ == "CubeBackward"
    assert repr(y.grad_fn).startswith("<torch.autograd.function.CubeBackward object at 0x")
    y.sum().backward()
    assert_close(x.grad, 6 * np.array([1.0, 4.0]))
    with pytest.raises(RuntimeError, match="second time"):
        y.sum().backward()


def test_function_double_backward_and_gradcheck():
    x = leaf([0.5, -1.5])
    y = Cube.apply(x, 1.0).sum()
    (g,) = autograd.grad(y, x, create_graph=True)
    (gg,) = autograd.grad(g.sum(), x)
    assert_close(gg, 6 * np.array([0.5, -1.5]))
    assert autograd.gradcheck(lambda t: Cube.apply(t, 1.5), (leaf([0.3, 0.7]),))
    assert autograd.gradgradcheck(lambda t: Cube.apply(t, 1.5), (leaf([0.3, 0.7]),))


def test_function_mark_non_differentiable_and_errors():
    class SortF(autograd.Function):
        @staticmethod
        def forward(ctx, x):
            v, i = torch.sort(x)
            ctx.mark_non_differentiable(i)
            ctx.save_for_backward(i)
            return v, i

        @staticmethod
        def backward(ctx, gv, gi):
            (i,) = ctx.saved_tensors
            out = torch.zeros_like(gv)
            out[i] = gv
            return out

    x = leaf([3.0, 1.0, 2.0])
    v, i = SortF.apply(x)
    assert v.requires_grad and not i.requires_grad
    (v * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
    assert_close(x.grad, [3.0, 1.0, 2.0])

    class TooFew(autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RuntimeError, match="incorrect number of gradients"):
        TooFew.apply(leaf([1.0]), leaf([2.0])).sum().backward()

    class Modified(autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * 2

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return g * a

    a = leaf([1.0]) * 1
    out = Modified.apply(a)
    a.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_function_returning_input_and_setup_context_style():
    class Ident(autograd.Function):
        @staticmethod
        def forward(x):
            return x

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.scale = 4.0

        @staticmethod
        def backward(ctx, g):
            return g * ctx.scale

    x = leaf([1.0, 2.0])
    y = Ident.apply(x)
    assert y is not x and y.grad_fn is not None
    y.sum().backward()
    assert_close(x.grad, [4.0, 4.0])


def test_once_differentiable_and_no_grad_inputs():
    class Sq(autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @autograd.function.once_differentiable
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    x = leaf([3.0])
    (g,) = autograd.grad(Sq.apply(x).sum(), x, create_graph=True)
    assert g.item() == 6.0 and not g.requires_grad
    y = Sq.apply(torch.ones(2))
    assert not y.requires_grad and y.grad_fn is None


def test_variable_legacy_alias():
    from framework.autograd import Variable
    t = torch.ones(2)
    v = Variable(t)
    assert v is t and isinstance(t, Variable)
    v2 = Variable(torch.ones(2), requires_grad=True)
    assert v2.requires_grad


# ---- functional -----------------------------------------------------------------------------

def test_functional_jacobian_hessian_vjp_jvp():
    F = autograd.functional
    a = np.array([0.5, -1.0, 2.0])

    def f(x):
        return x ** 2 * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)

    x = torch.tensor(a, dtype=torch.float64)
    J = F.jacobian(f, x)
    assert_close(J, np.diag(2 * a * [1, 2, 3]))
    assert not J.requires_grad and x.grad is None
    H = F.hessian(lambda t: (t ** 3).sum(), x)
    assert_close(H, np.diag(6 * a))
    v = torch.tensor([1.0, 0.5, -1.0], dtype=torch.float64)
    out, vj = F.vjp(f, x, v)
    assert_close(out, a ** 2 * [1, 2, 3])
    assert_close(vj, 2 * a * [1, 2, 3] * [1.0, 0.5, -1.0])
    out, jv = F.jvp(f, x, v)
    assert_close(jv, 2 * a * [1, 2, 3] * [1.0, 0.5, -1.0])
    _, hv = F.hvp(lambda t: (t ** 3).sum(), x, v)
    assert_close(hv, 6 * a * [1.0, 0.5, -1.0])
    # two inputs, two outputs
    Jt = F.jacobian(lambda p, q: (p * q, p.sum() + q), (x, x * 2))
    assert len(Jt) == 2 and len(Jt[0]) == 2
    assert_close(Jt[0][1], np.diag(a))
    assert_close(Jt[1][0], np.ones((3, 3)))
    # an output that does not depend on the input: zeros
    Jz = F.jacobian(lambda t: torch.ones(2, dtype=torch.float64), x)
    assert_close(Jz, np.zeros((2, 3)))
    Hl = F.hessian(lambda t: (t * 3).sum(), x)
    assert_close(Hl, np.zeros((3, 3)))


# ---- graph_of -------------------------------------------------------------------------------

def _mlp(seed=0):
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.standard_normal((4, 3)), dtype=torch.float32)
    W1 = torch.tensor(rng.standard_normal((3, 5)), dtype=torch.float32, requires_grad=True)
    b1 = torch.tensor(rng.standard_normal(5), dtype=torch.float32, requires_grad=True)
    W2 = torch.tensor(rng.standard_normal((5, 2)), dtype=torch.float32, requires_grad=True)
    b2 = torch.tensor(rng.standard_normal(2), dtype=torch.float32, requires_grad=True)
    h = torch.relu(x @ W1 + b1)
    out = h @ W2 + b2
    loss = (out * out).mean()
    return loss, (W1, b1, W2, b2)


def test_graph_of_mlp_prints_expected_ops_and_runs():
    loss, params = _mlp()
    g = autograd.graph_of(loss)
    text = str(g)
    assert text.startswith("def backward(grad_out: f32[], ")
    for op in ("matmul(", "permute(", "sum(", "where(", "mul(", "div("):
        assert op in text, (op, text)
    assert "f32[4, 5]" in text and "f32[3, 5]" in text and "f32[5, 2]" in text
    assert text.rstrip().splitlines()[-1].startswith("    return ")
    # every line is `name: type = op(args)` and names are defined before use
    defined = {v.name for v in g.inputs}
    for node in g.nodes:
        for a in node.inputs:
            if hasattr(a, "name"):
                assert a.name in defined
        defined.update(o.name for o in node.outputs)
    # running the printed graph gives what backward() gives
    results = g.run(*g.example_inputs)
    assert len(results) == 4 and {id(t) for t in g.leaves} == {id(p) for p in params}
    loss.backward()
    for t, r in zip(g.leaves, results):
        np.testing.assert_allclose(r, to_np(t.grad), rtol=1e-5, atol=1e-6)


def test_graph_of_shapes_and_errors():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = (x.exp() * x).sum(1)
    g = autograd.graph_of(y)
    assert "grad_out: f64[2]" in str(g) and "out" in str(g)     # exp saves its output
    (r,) = g.run(*g.example_inputs)
    y.backward(torch.ones(2, dtype=torch.float64))
    assert_close(x.grad, r)
    with pytest.raises(RuntimeError, match="no grad_fn"):
        autograd.graph_of(x)
    z = (x * x).sum()
    z.backward()
    with pytest.raises(RuntimeError, match="freed"):
        autograd.graph_of(z)


# ---- memory ---------------------------------------------------------------------------------

def _live_nodes():
    gc.collect()
    return sum(1 for o in gc.get_objects() if issubclass(type(o), Node))


def test_graph_freed_after_backward_no_growth():
    rng = np.random.default_rng(0)
    w = torch.tensor(rng.standard_normal((16, 16)), requires_grad=True)
    x = torch.tensor(rng.standard_normal((8, 16)))

    def step():
        h = torch.tanh(x @ w).exp()
        loss = (h * h).mean()
        loss.backward()
        w.grad = None

    for _ in range(20):
        step()
    base_nodes = _live_nodes()
    tracemalloc.start()
    for _ in range(200):
        step()
    gc.collect()
    mid = tracemalloc.get_traced_memory()[0]
    for _ in range(800):
        step()
    gc.collect()
    end = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert _live_nodes() <= base_nodes
    assert end - mid < 64 * 1024, (mid, end)


def test_outputs_and_nodes_freed_without_gc():
    # no reference cycle between a node and the output it saved: refcounting frees them
    import weakref
    x = leaf([1.0, 2.0])
    gc.disable()
    try:
        y = x.exp()
        r = weakref.ref(y.grad_fn)
        del y
        assert r() is None
    finally:
        gc.enable()


def test_view_history_follows_an_in_place_write_to_its_base():
    """Values of a view follow its base (shared memory); PyTorch also regenerates the view's
    grad_fn, so the gradient flows through the in-place write: vv = (2 * x)[0, 1:],
    loss = sum(vv^2), dloss/dx = 8 * x there (PyTorch gives [[0, 8, 16], [0, 0, 0]])."""
    x = torch.arange(6.0).reshape(2, 3).requires_grad_()
    y = x * 1
    v = y[0]
    vv = v[1:]
    y.mul_(2)
    loss = (vv * vv).sum()
    assert loss.item() == 20.0
    loss.backward()
    assert x.grad.tolist() == [[0.0, 8.0, 16.0], [0.0, 0.0, 0.0]]
    # a view written in place itself keeps its own new history
    a = torch.ones(3, requires_grad=True)
    b = a * 1
    c = b[1:]
    c.mul_(3)
    c.sum().backward()
    assert a.grad.tolist() == [0.0, 3.0, 3.0]


def test_in_place_write_through_a_view_reaches_the_base_history():
    """PyTorch's CopySlices: y[0].mul_(2) changes y's history too (values from PyTorch 2.13):
    d/dx sum(y * c) with y[0] doubled is c with row 0 doubled; and a view of y taken before
    the write (w = y[0]) follows it as well."""
    c = torch.tensor([[1., 2, 3], [4, 5, 6]])
    x = torch.ones(2, 3, requires_grad=True)
    y = x * 1
    y[0].mul_(2)
    assert type(y.grad_fn).__name__ == "CopySlices"
    (y * c).sum().backward()
    assert x.grad.tolist() == [[2.0, 4.0, 6.0], [4.0, 5.0, 6.0]]
    x = torch.ones(2, 3, requires_grad=True)
    y = x * 1
    v, w = y[:, 1], y[0]
    v.mul_(3)
    loss = (w * w).sum()
    loss.backward()
    assert loss.item() == 11.0
    assert x.grad.tolist() == [[2.0, 18.0, 2.0], [0.0, 0.0, 0.0]]
    # setitem through a view
    x = torch.ones(2, 3, requires_grad=True)
    y = x * 2
    y[1][0] = x[0, 0] * 5
    y.sum().backward()
    assert x.grad.tolist() == [[7.0, 2.0, 2.0], [0.0, 2.0, 2.0]]


def test_fill_copy_zero_through_a_view_reach_the_base_history():
    """fill_/zero_/copy_ on a view of a non-leaf: the overwritten elements get no gradient
    from the old history and copy_'s source gets theirs (PyTorch: grad_fn CopySlices)."""
    for write in (lambda v: v.fill_(0.5), lambda v: v.zero_(),
                  lambda v: v.copy_(torch.zeros(2, 2))):
        x = torch.arange(6.).reshape(2, 3).requires_grad_()
        y = x.clone()
        write(y[:, 1:])
        assert type(y.grad_fn).__name__ == "CopySlices"
        y.sum().backward()
        assert x.grad.tolist() == [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    x = torch.arange(6.).reshape(2, 3).requires_grad_()
    w = torch.ones(2, 2, requires_grad=True)
    y = x.clone()
    y[:, 1:].copy_(w * 2)
    (y * y).sum().backward()
    assert x.grad.tolist() == [[0.0, 0.0, 0.0], [6.0, 0.0, 0.0]]
    assert w.grad.tolist() == [[8.0, 8.0], [8.0, 8.0]]


def test_in_place_on_multi_output_views_is_refused_as_pytorch():
    x = torch.ones(4, 3, requires_grad=True) * 1
    for write, who in ((lambda: x.chunk(2)[1].mul_(2), "Output 1 of Split"),
                       (lambda: x.split([1, 3])[0].zero_(), "Output 0 of SplitWithSizes"),
                       (lambda: x.unbind()[2].add_(1), "Output 2 of Unbind"),
                       (lambda: x.chunk(2)[0].copy_(torch.zeros(2, 3)), "Output 0 of Split"),
                       (lambda: x.chunk(2)[1][0].add_(2), "is a view and is being modified")):
        with pytest.raises(RuntimeError, match=who):
            write()
    assert x.tolist() == [[1.0] * 3] * 4                      # nothing written
    with torch.no_grad():                                     # allowed without autograd
        x.chunk(2)[0].mul_(2)
    y = torch.ones(4, 3)
    y.chunk(2)[1].add_(1)                                     # and on tensors without grad
    assert y.sum().item() == 18.0 and x.sum().item() == 18.0


def test_linear_weight_gradient_is_row_major_and_never_aliases_a_kept_gradient():
    """A linear layer's weight gradient arrives row-major (the matmul VJP computes (g^T x)^T
    for the transposed weight, as PyTorch's mm_mat2_backward) and becomes .grad without a
    copy; a gradient someone else keeps (a hook on w.t()) is copied, so accumulating into
    .grad never changes it."""
    rng = np.random.default_rng(0)
    xa, wa = rng.standard_normal((6, 4)), rng.standard_normal((3, 4))
    x = torch.tensor(xa)
    w = torch.tensor(wa, requires_grad=True)
    torch.nn.functional.linear(x, w).pow(2).sum().backward()
    want = 2 * ((xa @ wa.T).T @ xa)                     # d/dw sum((x w^T)^2)
    np.testing.assert_allclose(to_np(w.grad), want, rtol=1e-12)
    assert w.grad.is_contiguous() and w.grad.stride() == (4, 1)

    w2 = torch.tensor(wa, requires_grad=True)
    kept = []
    wt = w2.t()
    wt.register_hook(lambda g: kept.append(g))
    (x @ wt).pow(2).sum().backward()
    first = to_np(kept[0]).copy()
    (x @ wt).pow(2).sum().backward()                  # accumulates into w2.grad in place
    np.testing.assert_array_equal(to_np(kept[0]), first)
    np.testing.assert_allclose(to_np(w2.grad), 2 * want, rtol=1e-12)


# ---- gradient conventions at special points (PyTorch's values, derived by hand) -------------

def test_zero_scalar_base_pow_gradient_wrt_the_exponent():
    # d/dy 0**y = 0**y * log(0): 0 for y >= 0 (PyTorch's convention, not 0 * -inf = NaN),
    # inf * -inf = -inf for y < 0
    y = leaf([1.0, 2.0, 0.5, 0.0, -1.0])
    (0.0 ** y).sum().backward()
    np.testing.assert_array_equal(to_np(y.grad), [0.0, 0.0, 0.0, 0.0, -np.inf])
    y = leaf([1.0, 0.0])
    (0 ** y).sum().backward()                          # an int base 0 as well
    np.testing.assert_array_equal(to_np(y.grad), [0.0, 0.0])


def test_max_min_without_dim_share_the_gradient_among_nans():
    # max()/min() of a tensor holding NaN is NaN; the NaNs are the ties that get g / count
    for f in (torch.max, torch.min):
        x = leaf([1.0, float("nan"), float("nan"), 2.0])
        f(x).backward()
        np.testing.assert_array_equal(to_np(x.grad), [0.0, 0.5, 0.5, 0.0])
        x = leaf([3.0, 1.0, 3.0, 1.0])                 # plain ties: split evenly
        (f(x) * 4).backward()
        np.testing.assert_array_equal(to_np(x.grad), [2.0, 0.0, 2.0, 0.0] if f is torch.max
                                      else [0.0, 2.0, 0.0, 2.0])
    x = leaf([1.0, float("nan"), 2.0])                 # amax keeps its == mask: all NaN
    torch.amax(x).backward()
    assert np.isnan(to_np(x.grad)).all()


def test_det_gradient_at_a_singular_matrix_is_zero_not_an_error():
    # det * A^-T: 0 where det is 0 (PyTorch's first-order value), the usual elsewhere
    a = leaf([[[1.0, 2.0], [2.0, 4.0]], [[1.0, 0.0], [0.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]]])
    torch.linalg.det(a).sum().backward()
    np.testing.assert_allclose(to_np(a.grad), [[[0, 0], [0, 0]], [[2, 0], [0, 1]],
                                               [[0, 0], [0, 0]]], atol=1e-15)


def test_mul_and_div_save_only_what_the_requested_gradients_read():
    # x * 2 reads nothing of x for its gradient (PyTorch saves nothing): changing x in place
    # afterwards is no error
    x = leaf([1.0, 2.0])
    a = x * 1
    y = a * 2
    a.add_(1)
    y.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [2.0, 2.0])
    # y = a * c with only a needing a gradient saves c, not a
    c = torch.tensor([3.0, 4.0], dtype=torch.float64)
    x = leaf([1.0, 2.0])
    a = x * 1
    y = a * c
    a.add_(1)
    y.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [3.0, 4.0])
    x = leaf([1.0, 2.0])
    y = (x * 1) * c
    c.add_(1)                                          # c was saved: the check still fires
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    # a / c saves c only; c / a reads both
    c = torch.tensor([2.0, 4.0], dtype=torch.float64)
    x = leaf([1.0, 2.0])
    a = x * 1
    y = a / c
    a.add_(1)
    y.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [0.5, 0.25])
    a = x * 1
    y = c / a
    a.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    # writing a row from another row of the same tensor
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = x.clone()
    y[0] = y[1] * 2
    y.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [[0.0, 0.0], [3.0, 3.0]])


def test_rounding_div_is_recorded_with_zero_gradients():
    # div(rounding_mode=...) of float tensors requires grad (DivBackward2) with zero gradients
    a = leaf([1.5, -2.5, 3.0])
    b = leaf([0.5, 2.0, -1.0])
    for mode, want in (("floor", [3.0, -2.0, -3.0]), ("trunc", [3.0, -1.0, -3.0])):
        r = torch.div(a, b, rounding_mode=mode)
        assert r.requires_grad and type(r.grad_fn).__name__ == "DivBackward2"
        np.testing.assert_array_equal(to_np(r), want)
        r.sum().backward()
    np.testing.assert_array_equal(to_np(a.grad), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(to_np(b.grad), [0.0, 0.0, 0.0])
    assert not (torch.tensor([3, 4]) // 2).requires_grad


def test_function_non_differentiable_returned_input_and_post_hook_grads():
    class Through(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.mark_non_differentiable(a)
            return a

        @staticmethod
        def backward(ctx, g):
            return g
    a = torch.ones(2, requires_grad=True)
    y = Through.apply(a)            # an input returned as-is and marked: no history
    assert not y.requires_grad and y.grad_fn is None

    class Mul(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g * 5, g * 7
    b = torch.ones(2)
    seen = []
    y = Mul.apply(a, b)
    y.grad_fn.register_hook(lambda gi, go: seen.append(gi))
    y.sum().backward()
    # the post-hook sees what backward returned, also for b (needs no grad); b gets nothing
    assert seen[0][0].tolist() == [5., 5.] and seen[0][1].tolist() == [7., 7.]
    assert a.grad.tolist() == [5., 5.] and b.grad is None


def test_grad_fn_metadata_is_a_dict():
    # PyTorch's Node.metadata: an empty dict to start with, kept across accesses
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    fn = (x * 3).grad_fn
    assert fn.metadata == {}
    fn.metadata["tag"] = 7
    assert fn.metadata == {"tag": 7}
