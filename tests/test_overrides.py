"""torch.overrides: TorchFunctionMode / BaseTorchFunctionMode, the disable switches, the
Python-level protocol (has_torch_function*, handle_torch_function, wrap_torch_function) and the
function tables (resolve_name, get_ignored_functions, get_testing_overrides). References are
NumPy values and PyTorch's documented call order."""
import inspect

import numpy as np
import pytest

import framework as torch
from framework.autograd import gradcheck

F = torch.nn.functional
O = torch.overrides


@pytest.fixture(autouse=True)
def dispatch_cleanup():
    yield
    assert O._get_current_function_mode_stack() == []     # every mode was popped again
    O._uninstall()          # (the wrappers would stay for the rest of the process)


def to_np(t):
    return t.detach().numpy()


class Log(O.TorchFunctionMode):
    def __init__(self, tag="", out=None):
        super().__init__()
        self.tag, self.seen = tag, ([] if out is None else out)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.seen.append((self.tag, O.resolve_name(func), tuple(t.__name__ for t in types)))
        return func(*args, **(kwargs or {}))


def test_mode_sees_functions_methods_operators_and_factories():
    X, Y = np.array([1.5, -2., 3.]), np.array([0.5, 4., -1.])
    x, y = torch.tensor(X), torch.tensor(Y)
    with Log() as m:
        assert O._get_current_function_mode() is m
        z = x + y
        w = torch.add(x, y, alpha=2)
        v = x.mul(y)
        r = F.relu(x)
        o = torch.ones(2)
        s = float(x.sum())
        e = x[0]
        n = -x
    names = [n for _, n, _ in m.seen]
    assert names == ["torch.Tensor.add", "torch.add", "torch.Tensor.mul",
                     "torch.nn.functional.relu", "torch.ones", "torch.Tensor.sum",
                     "torch.Tensor.__float__", "torch.Tensor.__getitem__", "torch.Tensor.neg"]
    # a native function passes the subclass types only; a Python-level one (F.relu) Tensor too
    assert m.seen[0][2] == () and m.seen[3][2] == ("Tensor",)
    np.testing.assert_array_equal(to_np(z), X + Y)
    np.testing.assert_array_equal(to_np(w), X + 2 * Y)
    np.testing.assert_array_equal(to_np(v), X * Y)
    np.testing.assert_array_equal(to_np(r), np.maximum(X, 0))
    np.testing.assert_array_equal(to_np(o), [1., 1.])
    np.testing.assert_array_equal(to_np(n), -X)
    assert s == X.sum() and e.item() == 1.5
    assert O._get_current_function_mode() is None
    # outside the mode nothing is recorded
    x + y
    assert len(m.seen) == 9


def test_kwargs_as_pytorch_passes_them():
    got = []

    class K(O.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            got.append(kwargs)
            return func(*args, **(kwargs or {}))

    x = torch.tensor([[1., -2.], [3., 4.]])
    with K():
        torch.sum(x)            # a native function without keywords: None
        a = torch.sum(x, dim=0)
        x.T                     # a property getter: None
        F.relu(x)               # a Python-level function: a dict
    assert got == [None, {"dim": 0}, None, {}]
    np.testing.assert_array_equal(to_np(a), [4., 2.])


def test_operators_reach_the_methods_pytorch_names():
    x, i, m = torch.tensor([1., 2.]), torch.tensor([1, 2]), torch.ones(2, 2)
    cases = [(lambda: 1 + x, "add"), (lambda: 1 - x, "__rsub__"), (lambda: x ** 2, "__pow__"),
             (lambda: 2 / x, "__rtruediv__"), (lambda: x % 2, "remainder"),
             (lambda: m @ m, "matmul"), (lambda: 1 & i, "bitwise_and"), (lambda: i & 1, "__and__"),
             (lambda: +x, "positive"), (lambda: abs(x), "abs"), (lambda: x != 1, "ne"),
             (lambda: x == 1, "__eq__"), (lambda: x >= 1, "ge"), (lambda: len(x), "__len__")]
    for f, want in cases:
        with Log() as lg:
            f()
        assert [n for _, n, _ in lg.seen] == ["torch.Tensor." + want]
    y = x.clone()
    with Log() as lg:
        y += 1
        y **= 2
        y[0] = 5.
    assert [n for _, n, _ in lg.seen] == ["torch.Tensor.add_", "torch.Tensor.__ipow__",
                                         "torch.Tensor.__setitem__"]
    np.testing.assert_array_equal(to_np(y), [5., 9.])
    with Log() as lg:       # PyTorch ignores these: no dispatch, and no thread count either
        hash(x)
        torch.get_num_threads()
        torch.is_tensor(x)
    assert lg.seen == []


def test_nested_modes_and_handler_runs_with_itself_popped():
    seen = []
    x = torch.tensor([0.5, 1.])
    inner_stack = []

    class Inner(Log):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            inner_stack.append(O._get_current_function_mode())
            return super().__torch_function__(func, types, args, kwargs)

    with Log("outer", seen) as outer:
        with Inner("inner", seen):
            r = torch.sin(x)
            assert O._len_torch_function_stack() == 2 and torch._C._len_torch_function_stack() == 2
    assert [t for t, _, _ in seen] == ["inner", "outer"]
    assert inner_stack == [outer]           # the inner handler ran with itself popped
    # a mode entered inside a handler sees the handler's own calls
    got = []

    class Outer(O.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            with Log("in-handler", got):
                return func(*args, **(kwargs or {})) * 2

    with Outer():
        r2 = torch.cos(x)
    assert got == [("in-handler", "torch.cos", ()), ("in-handler", "torch.Tensor.mul", ())]
    np.testing.assert_allclose(to_np(r2), 2 * np.cos([0.5, 1.]))
    np.testing.assert_allclose(to_np(r), np.sin([0.5, 1.]))
    # the same mode entered twice sees the call twice; an exception pops it
    m = Log("r", [])
    with m:
        with m:
            torch.neg(x)
    assert [n for _, n, _ in m.seen] == ["torch.neg", "torch.neg"]
    with pytest.raises(ValueError, match="boom"):
        with Log():
            raise ValueError("boom")
    assert O._get_current_function_mode() is None
    with pytest.raises(RuntimeError, match="trying to pop from empty mode stack"):
        O._pop_mode()


def test_mode_replaces_results_and_not_implemented_errors():
    x, y = torch.tensor([1., 2.]), torch.tensor([3., 4.])

    class Zero(O.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func is torch.add:
                return torch.zeros_like(args[0])
            return func(*args, **(kwargs or {}))

    with Zero():
        np.testing.assert_array_equal(to_np(torch.add(x, y)), [0., 0.])
        np.testing.assert_array_equal(to_np(x + y), [4., 6.])      # (Tensor.add: not torch.add)

    class NI(O.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return NotImplemented

    with NI() as ni:
        with pytest.raises(TypeError) as e:
            torch.sin(x)
        assert str(e.value) == (
            "Multiple dispatch failed for 'torch.sin'; all __torch_function__ handlers returned "
            f"NotImplemented:\n\n  - mode object {ni}\n\nFor more information, try re-running "
            "with TORCH_LOGS=not_implemented")
        with pytest.raises(TypeError, match=r"unsupported operand type\(s\) for \+: 'Tensor' "
                                            "and 'int'"):
            x + 1
        with pytest.raises(TypeError, match=r"unsupported operand type\(s\) for -: 'int' and "
                                            "'Tensor'"):
            1 - x
        with pytest.raises(TypeError, match=r"no implementation found for "
                                            r"'torch.nn.functional.relu' on types that implement "
                                            r"__torch_function__: \[\] nor in mode"):
            F.relu(x)
    np.testing.assert_array_equal(to_np(x), [1., 2.])
    with pytest.raises(NotImplementedError):
        with O.TorchFunctionMode():
            torch.sin(x)
    with pytest.warns(UserWarning, match=r"`Mode.push\(\)` is no longer necessary"):
        assert isinstance(Log.push("t"), Log)


def test_disable_switches_and_subclass_order():
    x = torch.tensor([1., 2.])
    with Log() as m:
        with torch._C.DisableTorchFunctionSubclass():
            torch.sin(x)                    # modes still run
        with torch._C.DisableTorchFunction():
            torch.cos(x)                    # nothing runs
            assert not O._is_torch_function_mode_enabled()
        assert torch.DisableTorchFunction is torch._C.DisableTorchFunction
    assert [n for _, n, _ in m.seen] == ["torch.sin"]
    order = []

    class Sub(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            order.append(("sub", func.__name__))
            return super().__torch_function__(func, types, args, kwargs)

    s = x.as_subclass(Sub)
    with Log("mode", order) as m:
        r = torch.exp(s)
    assert order == [("mode", "torch.exp", ("Sub",)), ("sub", "exp")]      # mode first
    assert type(r) is Sub
    np.testing.assert_allclose(to_np(r.as_subclass(torch.Tensor)), np.exp([1., 2.]))


def test_base_mode_keeps_values_and_gradients():
    X = np.array([0.3, -1.2, 2.0])
    x = torch.tensor(X, requires_grad=True)
    with O.BaseTorchFunctionMode():
        loss = (x.sin() * x).sum()
        loss.backward()
        assert gradcheck(lambda a: (a.sin() * a).sum(), (torch.tensor(X, requires_grad=True),))
    np.testing.assert_allclose(to_np(x.grad), np.cos(X) * X + np.sin(X))
    assert type(loss.grad_fn).__name__ == "SumBackward0"


def test_python_level_protocol():
    x = torch.tensor([1., 2.])

    class Sub(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return NotImplemented

    s = x.as_subclass(Sub)
    assert (O.has_torch_function((x,)), O.has_torch_function_unary(x),
            O.has_torch_function_variadic(x, 1)) == (False, False, False)
    assert O.has_torch_function((s,)) and O.has_torch_function_variadic(x, s)
    with O.BaseTorchFunctionMode():
        assert O.has_torch_function((x,)) and not O.has_torch_function(())
        with torch._C.DisableTorchFunction():
            assert not O.has_torch_function((s,))
    with torch._C.DisableTorchFunctionSubclass():
        assert not O.has_torch_function((s,))
    assert F.has_torch_function is O.has_torch_function
    assert F.handle_torch_function is O.handle_torch_function
    assert F.has_torch_function_unary is O.has_torch_function_unary
    assert F.has_torch_function_variadic is O.has_torch_function_variadic

    def scale(a, b=1):
        if O.has_torch_function_unary(a):
            return O.handle_torch_function(scale, (a,), a, b=b)
        return a * b

    with Log() as m:
        r = scale(x, b=3)
    assert m.seen[0] == ("", None, ("Tensor",))
    np.testing.assert_array_equal(to_np(r), [3., 6.])
    # a plain tensor's default __torch_function__ runs the function with dispatch off
    np.testing.assert_array_equal(to_np(O.handle_torch_function(scale, (x,), x, b=2)), [2., 4.])
    with pytest.raises(TypeError, match="no implementation found for '.*scale' on types that "
                                        "implement __torch_function__: .*Sub"):
        O.handle_torch_function(scale, (s,), s, b=2)

    @O.wrap_torch_function(lambda a, b=1: (a,))
    def g(a, b=1):
        return a + b

    assert g.__name__ == "g"
    np.testing.assert_array_equal(to_np(g(x)), [2., 3.])
    seen = []
    with Log("w", seen):
        r = g(x, b=5)
    np.testing.assert_array_equal(to_np(r), [6., 7.])
    assert seen == [("w", None, ("Tensor",))]
    with pytest.raises(RuntimeError, match="outside of '__torch_dispatch__'"):
        with O.enable_reentrant_dispatch():
            pass


def test_function_tables():
    Tensor = torch.Tensor
    assert O.resolve_name(torch.add) == "torch.add"
    assert O.resolve_name(Tensor.add) == "torch.Tensor.add"
    assert O.resolve_name(F.relu) == "torch.nn.functional.relu"
    assert O.resolve_name(torch.linalg.norm) == "torch.linalg.norm"
    assert O.resolve_name(Tensor.T.__get__) == "torch.Tensor.T.__get__"
    assert O.resolve_name(torch.neg) == "torch.neg" and O.resolve_name(len) is None
    assert O.is_tensor_method_or_property(Tensor.add)
    assert O.is_tensor_method_or_property(Tensor.T.__get__)
    assert not O.is_tensor_method_or_property(torch.add)
    ign = O.get_ignored_functions()
    assert torch.is_tensor in ign and torch.ones in ign and torch.add not in ign
    ov = O.get_overridable_functions()
    assert torch.add in ov[torch] and Tensor.add in ov[Tensor] and torch.ones not in ov[torch]
    assert F.relu in ov[F] and torch.fft.fft in ov[torch.fft]
    t = O.get_testing_overrides()
    assert torch.add in t and Tensor.add in t and torch.ones not in t
    assert torch.nn.init.uniform_ in t
    assert t[torch.add](1, 2) == -1
    assert str(inspect.signature(t[F.relu])) == "(input, inplace=False)"
    assert str(inspect.signature(t[Tensor.T.__get__])) == "(self)"
    # every key is a function a mode sees
    a, b = torch.tensor([2.]), torch.tensor([1.])
    with Log() as m:
        torch.linalg.norm(a)
        torch.special.zeta(a, b)
    assert [n for _, n, _ in m.seen] == ["torch.linalg.norm", "torch.special.zeta"]


def test_mode_entered_inside_autocast_keeps_both():
    X = np.arange(16., dtype=np.float32).reshape(4, 4) / 8
    x, w = torch.tensor(X), torch.tensor(X.T.copy())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with Log() as m:        # (the wrappers go in while autocast's bindings are on)
            y = F.linear(x, w)
    assert [n for _, n, _ in m.seen] == ["torch.nn.functional.linear"]
    assert y.dtype == torch.bfloat16
    np.testing.assert_allclose(to_np(y.float()), X @ X, rtol=1e-2)
    with Log() as m:
        z = F.linear(x, w)
    assert [n for _, n, _ in m.seen] == ["torch.nn.functional.linear"]
    assert z.dtype == torch.float32
    np.testing.assert_allclose(to_np(z), X @ X, rtol=1e-6)
