"""torch.utils.swap_tensors and torch.__future__'s module conversion switches (behaviour probed
on torch 2.13)."""
import weakref

import numpy as np
import pytest

import framework as torch
from framework import nn


def test_swap_tensors_swaps_everything():
    a = torch.tensor([1., 2., 3.], requires_grad=True)
    b = torch.tensor([[4., 5.], [6., 7.]], dtype=torch.float64)
    a.foo, b.bar = 1, 2
    (a * 2).sum().backward()
    ida, idb = id(a), id(b)
    torch.utils.swap_tensors(a, b)
    assert (id(a), id(b)) == (ida, idb)
    assert a.shape == (2, 2) and b.shape == (3,)
    assert a.dtype == torch.float64 and b.dtype == torch.float32
    np.testing.assert_array_equal(a.numpy(), [[4., 5.], [6., 7.]])
    assert not a.requires_grad and b.requires_grad
    assert a.grad is None
    np.testing.assert_array_equal(b.grad.numpy(), [2., 2., 2.])
    assert a.bar == 2 and b.foo == 1 and not hasattr(a, "foo") and not hasattr(b, "bar")


def test_swap_tensors_class_and_errors():
    class S(torch.Tensor):
        pass
    s, t = torch.randn(2).as_subclass(S), torch.randn(2)
    torch.utils.swap_tensors(s, t)
    assert type(s) is torch.Tensor and type(t) is S
    p, q = nn.Parameter(torch.randn(2)), torch.randn(2)
    torch.utils.swap_tensors(p, q)
    assert type(p) is torch.Tensor and type(q) is nn.Parameter and q.requires_grad
    x, y = torch.randn(2), torch.randn(2)
    before = x.numpy().copy()
    r = weakref.ref(x)
    with pytest.raises(RuntimeError, match="Cannot swap t1 because it has weakref associated "
                                           "with it"):
        torch.utils.swap_tensors(x, y)
    with pytest.raises(RuntimeError, match="Cannot swap t2 because it has weakref"):
        torch.utils.swap_tensors(y, x)
    np.testing.assert_array_equal(x.numpy(), before)          # nothing changed
    del r
    with pytest.raises(AttributeError, match="'int' object has no attribute '_use_count'"):
        torch.utils.swap_tensors(x, 1)


def _linear_with_grad():
    torch.manual_seed(0)
    m = nn.Linear(2, 3)
    m(torch.randn(1, 2)).sum().backward()
    return m


@pytest.fixture
def swap_on():
    torch.__future__.set_swap_module_params_on_conversion(True)
    yield
    torch.__future__.set_swap_module_params_on_conversion(False)


def test_swap_module_params_on_conversion(swap_on):
    assert torch.__future__.get_swap_module_params_on_conversion()
    m = _linear_with_grad()
    w, g, wd = m.weight, m.weight.grad, m.weight.data
    ref, gref = w.detach().numpy().astype(np.float64), g.numpy().astype(np.float64)
    w.foo = 1
    m.double()
    # the Parameter and its .grad keep their identity; what was set on the old one is gone
    assert m.weight is w and w.grad is g and type(w) is nn.Parameter and w.requires_grad
    assert w.dtype == torch.float64 and g.dtype == torch.float64 and not hasattr(w, "foo")
    np.testing.assert_array_equal(w.detach().numpy(), ref)
    np.testing.assert_array_equal(g.numpy(), gref)
    assert wd.dtype == torch.float32        # an earlier .data is a tensor of its own
    m.to(torch.float32)
    assert m.weight is w and w.dtype == torch.float32 and w.grad.dtype == torch.float32
    r = weakref.ref(m.bias)
    with pytest.raises(RuntimeError, match=r"_apply\(\): Couldn't swap Linear.bias"):
        m.double()
    assert m.bias.grad is not None and m.bias.grad.dtype == torch.float32    # grad restored
    del r


def test_default_and_overwrite_conversion():
    assert not torch.__future__.get_swap_module_params_on_conversion()
    m = _linear_with_grad()
    w, g = m.weight, m.weight.grad
    m.double()
    assert m.weight is w and w.dtype == torch.float64 and m.weight.grad is g
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    try:
        m = _linear_with_grad()
        w, g = m.weight, m.weight.grad
        m.double()
        assert m.weight is not w and type(m.weight) is nn.Parameter
        assert m.weight.dtype == torch.float64 and w.dtype == torch.float32
        assert m.weight.grad is not g and m.weight.grad.dtype == torch.float64
        np.testing.assert_array_equal(m.weight.detach().numpy(), w.detach().numpy())
    finally:
        torch.__future__.set_overwrite_module_params_on_conversion(False)
