"""torch.cond / torch.while_loop: eager values against NumPy, gradients by finite differences,
compile() equal to eager, and torch's errors for bad inputs."""
import numpy as np
import pytest

import framework as torch
from framework.autograd import gradcheck

A = np.array([0.3, -1.2, 2.0])


def test_cond_values():
    x = torch.tensor(A)
    for pred in (True, torch.tensor(True), torch.tensor([True])):
        np.testing.assert_allclose(torch.cond(pred, lambda x: x.sin(), lambda x: x.cos(),
                                              (x,)).numpy(), np.sin(A))
    for pred in (False, torch.tensor(False), torch.tensor(0)):
        np.testing.assert_allclose(torch.cond(pred, lambda x: x.sin(), lambda x: x.cos(),
                                              [x]).numpy(), np.cos(A))
    out = torch.cond(torch.tensor(True), lambda x, y: [x * y, {"a": x + y}],
                     lambda x, y: [x - y, {"a": x / y}], (x, x))
    np.testing.assert_allclose(out[0].numpy(), A * A)
    np.testing.assert_allclose(out[1]["a"].numpy(), A + A)


def test_cond_grad():
    for pred in (True, False):
        x = torch.tensor(A, requires_grad=True)
        p = torch.tensor(pred)
        assert gradcheck(lambda x: torch.cond(p, lambda x: x.sin() * x,
                                              lambda x: x.exp(), (x,)), (x,))
    x = torch.tensor(A, requires_grad=True)
    torch.cond(torch.tensor(True), lambda x: (x * x).sum(), lambda x: x.sum(), (x,)).backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * A)


def test_cond_compile_no_graph_break():
    def f(x):
        return torch.cond(x.sum() > 0, lambda x: x.sin() + 1, lambda x: x.cos() * 2, (x,))
    cf = torch.compile(f, fullgraph=True)    # a traced predicate selects: no graph break
    for a in (A, -A):
        np.testing.assert_allclose(cf(torch.tensor(a)).numpy(),
                                   np.sin(a) + 1 if a.sum() > 0 else np.cos(a) * 2)
    x = torch.tensor(A, requires_grad=True)
    cf(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.cos(A))


def test_cond_bad_inputs():
    x = torch.tensor(A)
    br = (lambda x: x.sin(), lambda x: x.cos())
    with pytest.raises(RuntimeError, match="Expected pred to be bool or single-element tensor"):
        torch.cond(torch.tensor([True, False]), *br, (x,))
    with pytest.raises(RuntimeError, match="Expected pred to be bool or tensor, but got a"):
        torch.cond("a", *br, (x,))
    with pytest.raises(RuntimeError, match="Expect operands to be a tuple"):
        torch.cond(torch.tensor(True), *br, x)
    t = torch.tensor(True)
    with pytest.raises(RuntimeError,
                       match="expected same dtype but got torch.float64 and torch.int32"):
        torch.cond(t, lambda x: x.sin(), lambda x: x.int(), (x,))
    with pytest.raises(RuntimeError, match="Unmatched output spec"):
        torch.cond(t, lambda x: x.sin(), lambda x: (x + 1, x + 1), (x,))
    with pytest.raises(RuntimeError, match="aliasing"):
        torch.cond(t, lambda x: x, lambda x: x.cos(), (x,))
    with pytest.raises(RuntimeError, match="mutates one of its inputs"):
        torch.cond(t, lambda x: x.add_(1), lambda x: x.cos(), (x,))
    np.testing.assert_array_equal(x.numpy(), A)        # left unchanged


def test_while_loop_values_and_grad():
    i, y = torch.while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, x * 2),
                            (torch.tensor(0), torch.tensor(A)))
    assert i.item() == 3
    np.testing.assert_allclose(y.numpy(), A * 8)
    assert torch.while_loop(lambda i: i < 5, lambda i: i + 2, (torch.tensor(0),)).item() == 6
    x = torch.tensor(A, requires_grad=True)
    assert gradcheck(lambda x: torch.while_loop(lambda i, v: i < 2,
                                                lambda i, v: (i + 1, v.sin()),
                                                (torch.tensor(0), x))[1], (x,))


def test_while_loop_compile_equals_eager():
    def f(x):
        return torch.while_loop(lambda v: v.abs().sum() > 1, lambda v: (v / 2,), (x,))[0]
    a = np.array([3.0, -4.0])
    expect = a.copy()
    while np.abs(expect).sum() > 1:
        expect = expect / 2
    np.testing.assert_allclose(torch.compile(f)(torch.tensor(a)).numpy(), expect)
    np.testing.assert_allclose(f(torch.tensor(a)).numpy(), expect)


def test_while_loop_bad_inputs():
    x = torch.tensor(A)
    z = torch.tensor(0)
    with pytest.raises(RuntimeError, match=r"pair\[1\] differ in 'shape"):
        torch.while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, x.sum(0, keepdim=True)),
                         (z, x))
    with pytest.raises(RuntimeError, match=r"pair\[1\] differ in 'dtype"):
        torch.while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, x.int()), (z, x))
    with pytest.raises(RuntimeError, match="same number of outputs"):
        torch.while_loop(lambda i, x: i < 3, lambda i, x: (i + 1,), (z, x))
    with pytest.raises(RuntimeError, match="Expected cond_fn to return a scalar tensor"):
        torch.while_loop(lambda i, x: (i < 3).repeat(2), lambda i, x: (i + 1, x + 1), (z, x))
    with pytest.raises(RuntimeError, match="infinite loop detected"):
        torch.while_loop(lambda i, x: True, lambda i, x: (i + 1, x + 1), (z, x))
    with pytest.raises(RuntimeError, match="aliasing"):
        torch.while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, x), (z, x))
    with pytest.raises(RuntimeError, match="mutates one of its inputs"):
        torch.while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, x.add_(1)), (z, x))
    np.testing.assert_array_equal(x.numpy(), A)
    assert z.item() == 0


def test_compiled_cond_gradient_ignores_the_untaken_branch():
    # the untaken branch's gradient is NaN (sqrt and log of negatives): the operands' gradient
    # must be the taken branch's alone, as in eager
    def f(x):
        return torch.cond(x.sum() > 0, lambda x: x.sqrt() + x.log(), lambda x: -x * 3, (x,))
    cf = torch.compile(f, fullgraph=True)
    for a in (-np.abs(A), np.abs(A)):
        x = torch.tensor(a, requires_grad=True)
        cf(x).sum().backward()
        want = 0.5 / np.sqrt(a) + 1 / a if a.sum() > 0 else np.full(3, -3.0)
        np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-12)
