"""torch.library custom ops (the "Python custom operators" tutorial with NumPy kernels) and
torch.ops; references are NumPy float64 values and finite differences."""
from typing import Optional

import numpy as np
import pytest

import framework as torch
from framework import Tensor
from framework.autograd import gradcheck


@torch.library.custom_op("kiln_test::numpy_sin", mutates_args=())
def numpy_sin(x: Tensor) -> Tensor:
    return torch.from_numpy(np.sin(x.numpy()))


@numpy_sin.register_fake
def _(x):
    return torch.empty_like(x)


def _setup(ctx, inputs, output):
    x, = inputs
    ctx.save_for_backward(x)


def _backward(ctx, grad):
    x, = ctx.saved_tensors
    return grad * x.cos()


numpy_sin.register_autograd(_backward, setup_context=_setup)


@torch.library.custom_op("kiln_test::numpy_sin_", mutates_args=("out",))
def numpy_sin_(x: Tensor, out: Tensor) -> None:
    out.copy_(torch.from_numpy(np.sin(x.numpy())))


@numpy_sin_.register_fake
def _(x, out):
    return None


@torch.library.custom_op("kiln_test::no_grad_rule", mutates_args=())
def no_grad_rule(x: Tensor) -> Tensor:
    return torch.from_numpy(np.exp(x.numpy()))


def test_custom_op_values_and_ops_namespace():
    a = np.random.default_rng(0).standard_normal((3, 4))
    x = torch.tensor(a)
    np.testing.assert_allclose(numpy_sin(x).numpy(), np.sin(a))
    np.testing.assert_allclose(torch.ops.kiln_test.numpy_sin(x).numpy(), np.sin(a))
    np.testing.assert_allclose(torch.ops.kiln_test.numpy_sin.default(x).numpy(), np.sin(a))
    assert repr(torch.ops.kiln_test.numpy_sin.default) == "kiln_test.numpy_sin.default"
    assert repr(numpy_sin._opoverload) == "kiln_test.numpy_sin.default"
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        torch.ops.kiln_test.nope


def test_custom_op_autograd_gradcheck():
    x = torch.tensor(np.linspace(-2, 2, 5), requires_grad=True)
    assert gradcheck(numpy_sin, (x,))
    numpy_sin(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.cos(np.linspace(-2, 2, 5)))


def test_custom_op_without_autograd_raises_on_backward():
    x = torch.ones(3, requires_grad=True)
    y = no_grad_rule(x)
    np.testing.assert_allclose(y.detach().numpy(), np.full(3, np.e), rtol=1e-6)
    with pytest.raises(RuntimeError, match="kiln_test.no_grad_rule.default but no autograd "
                                           "formula was registered"):
        y.sum().backward()


def test_mutating_custom_op():
    x = torch.tensor([0.0, 0.5, 1.0])
    out = torch.zeros(3)
    v = out._version
    assert numpy_sin_(x, out) is None
    np.testing.assert_allclose(out.numpy(), np.sin([0.0, 0.5, 1.0]), rtol=1e-6)
    assert out._version > v
    np.testing.assert_array_equal(x.numpy(), [0.0, 0.5, 1.0])


def test_opcheck():
    r = torch.library.opcheck(numpy_sin, (torch.randn(4, requires_grad=True),))
    assert r == {t: "SUCCESS" for t in torch.library.DEFAULT_TEST_UTILS}
    torch.library.opcheck(numpy_sin_, (torch.randn(3), torch.zeros(3)))

    @torch.library.custom_op("kiln_test::undeclared", mutates_args=())
    def undeclared(x: Tensor) -> Tensor:
        x.add_(1)
        return x.clone()
    undeclared.register_fake(lambda x: torch.empty_like(x))
    with pytest.raises(torch.library.OpCheckError, match="not defined as mutable"):
        torch.library.opcheck(undeclared, (torch.zeros(2),), test_utils="test_schema")

    @torch.library.custom_op("kiln_test::bad_grad", mutates_args=())
    def bad_grad(x: Tensor) -> Tensor:
        return torch.from_numpy(x.numpy() ** 2)
    bad_grad.register_fake(lambda x: torch.empty_like(x))
    bad_grad.register_autograd(lambda ctx, g: g * 3.0)    # wrong: d(x^2)/dx = 2x
    with pytest.raises(torch.library.OpCheckError, match="test_autograd_registration"):
        torch.library.opcheck(bad_grad, (torch.randn(3, requires_grad=True),))

    @torch.library.custom_op("kiln_test::bad_fake", mutates_args=())
    def bad_fake(x: Tensor) -> Tensor:
        return x.sum(0)
    with pytest.raises(torch.library.OpCheckError, match="no fake impl registered"):
        torch.library.opcheck(bad_fake, (torch.randn(3, 2),))
    bad_fake.register_fake(lambda x: torch.empty_like(x))
    with pytest.raises(torch.library.OpCheckError, match=r"shape \(2,\)"):
        torch.library.opcheck(bad_fake, (torch.randn(3, 2),), test_utils=("test_faketensor",))


def test_compile_equals_eager():
    a = np.random.default_rng(1).standard_normal(6)

    def f(x):
        y = numpy_sin(x * 2.0) + 1.0
        out = torch.empty_like(y)
        numpy_sin_(y, out)
        return out * 3.0
    cf = torch.compile(f)
    got = cf(torch.tensor(a)).numpy()
    np.testing.assert_allclose(got, np.sin(np.sin(2 * a) + 1) * 3, rtol=1e-12)
    np.testing.assert_allclose(got, f(torch.tensor(a)).numpy())
    x = torch.tensor(a, requires_grad=True)
    torch.compile(lambda x: numpy_sin(x).sum())(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), np.cos(a), rtol=1e-12)


def test_infer_schema():
    def m(x: Tensor, y: Optional[Tensor], z: list[Tensor], a: float, b: int = 2,
          c: bool = True, s: str = "a") -> tuple[Tensor, Tensor]:
        pass
    assert torch.library.infer_schema(m, mutates_args=()) == \
        '(Tensor x, Tensor? y, Tensor[] z, float a, SymInt b=2, bool c=True, str s="a") -> ' \
        '(Tensor, Tensor)'

    def mm(x: Tensor, out: Tensor) -> None:
        pass
    assert torch.library.infer_schema(mm, mutates_args=("out",)) == \
        "(Tensor x, Tensor(a1!) out) -> ()"
    assert torch.library.infer_schema(mm, mutates_args="unknown") == \
        "(Tensor(a0!) x, Tensor(a1!) out) -> ()"


def test_bad_definitions_and_calls():
    def nohint(x):
        return x
    with pytest.raises(ValueError, match="Parameter x must have a type annotation"):
        torch.library.custom_op("kiln_test::a", mutates_args=())(nohint)

    def noret(x: Tensor):
        return x
    with pytest.raises(ValueError, match="No return type annotation"):
        torch.library.custom_op("kiln_test::b", mutates_args=())(noret)

    def ok(x: Tensor) -> Tensor:
        return x.clone()
    with pytest.raises(ValueError):
        torch.library.custom_op("no_namespace", mutates_args=())(ok)
    with pytest.raises(TypeError, match="mutates_args"):
        torch.library.custom_op("kiln_test::c")(ok)
    with pytest.raises(ValueError, match="mutates_args must either be a sequence"):
        torch.library.custom_op("kiln_test::d", mutates_args="unknwn")(ok)
    with pytest.raises(ValueError, match="not found in the custom op's signature"):
        torch.library.custom_op("kiln_test::d", mutates_args=("zz",))(ok)

    def arr(x: np.ndarray) -> Tensor:
        return x
    with pytest.raises(ValueError, match="unsupported type"):
        torch.library.custom_op("kiln_test::e", mutates_args=())(arr)

    with pytest.raises(RuntimeError, match=r"expected at most 1 argument\(s\) but received 2"):
        numpy_sin(torch.ones(2), 3)
    with pytest.raises(RuntimeError, match="Expected a value of type 'Tensor' for argument 'x'"):
        numpy_sin(3.0)

    @torch.library.custom_op("kiln_test::ret_in", mutates_args=())
    def ret_in(x: Tensor) -> Tensor:
        return x
    with pytest.raises(RuntimeError, match="must not also be an input"):
        ret_in(torch.ones(2))


def test_register_kernel_by_device():
    @torch.library.custom_op("kiln_test::dev", mutates_args=(), device_types="cuda")
    def dev(x: Tensor) -> Tensor:
        return x + 1
    with pytest.raises(NotImplementedError, match="kiln_test::dev.*'cpu'"):
        dev(torch.zeros(2))

    @dev.register_kernel("cpu")
    def _(x):
        return torch.from_numpy(x.numpy() - 1.0)
    np.testing.assert_array_equal(dev(torch.zeros(2)).numpy(), [-1.0, -1.0])
