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


# ---- torch.library.Library / define / impl: operators from schema strings ----

def test_parse_schema_prints_torchs_form():
    from framework._op_schema import parse_schema
    s = parse_schema("foo.out(Tensor x, int[2] k=[1, 2], float eps=1e-05, float a=0.5, "
                     "float b=2.0, bool c=True, str d='x', int? e=None, Scalar s=1, *, "
                     "Tensor(a!) out) -> Tensor(a!)")
    # PyTorch 2.13's torch._C.parse_schema printing of the same string
    assert str(s) == ("foo.out(Tensor x, int[2] k=[1, 2], float eps=1.0000000000000001e-05, "
                      "float a=0.5, float b=2., bool c=True, str d=\"x\", int? e=None, "
                      "Scalar s=1, *, Tensor(a!) out) -> Tensor(a!)")
    assert (s.name, s.overload_name) == ("foo", "out")
    assert [a.name for a in s.arguments if a.kwarg_only] == ["out"]
    assert [a.is_write for a in s.arguments][-2:] == [False, True]
    assert s.arguments[1].default_value == [1, 2] and s.arguments[2].default_value == 1e-05
    assert str(parse_schema("f(Tensor x) -> (Tensor a, Tensor b)")) == \
        "f(Tensor x) -> (Tensor a, Tensor b)"
    assert str(parse_schema("f(Tensor(a1!)[] x) -> ()")) == "f(Tensor(a1!)[] x) -> ()"
    with pytest.raises(RuntimeError, match="schema"):
        parse_schema("f(Tensor x -> ()")


def test_library_define_impl_overloads_and_argument_errors():
    lib = torch.library.Library("kiln_lib1", "DEF")
    assert repr(lib) == "Library(kind=DEF, ns=kiln_lib1, dispatch_key=)>"
    assert lib.define("foo(Tensor x, int n=2, *, float alpha=1.0) -> Tensor") == "foo"
    assert lib.define("foo.out(Tensor x, int n=2, *, float alpha=1.0, Tensor(a!) out) -> "
                      "Tensor(a!)") == "foo"

    def foo(x, n=2, alpha=1.0):
        return torch.from_numpy(x.numpy() * n + alpha)

    def foo_out(x, n=2, *, alpha=1.0, out):
        return out.copy_(foo(x, n, alpha))
    lib.impl("foo", foo, "CPU")
    lib.impl("foo.out", foo_out, "CPU")
    a = np.array([1.0, -2.0, 0.5])
    x = torch.tensor(a)
    op = torch.ops.kiln_lib1.foo
    np.testing.assert_array_equal(op(x).numpy(), a * 2 + 1)
    np.testing.assert_array_equal(op(x, 3, alpha=0.5).numpy(), a * 3 + 0.5)
    np.testing.assert_array_equal(op.default(x, n=4).numpy(), a * 4 + 1)
    out = torch.zeros(3, dtype=torch.float64)
    v = out._version
    r = op(x, 5, out=out)                       # resolves to the .out overload
    assert r is out and out._version == v + 1
    np.testing.assert_array_equal(out.numpy(), a * 5 + 1)
    assert op.overloads() == ["default", "out"] and repr(op.out) == "kiln_lib1.foo.out"
    assert str(op.default._schema) == \
        "kiln_lib1::foo(Tensor x, int n=2, *, float alpha=1.) -> Tensor"
    assert (op.default.name(), op.out.name(), op.default.__name__) == \
        ("kiln_lib1::foo", "kiln_lib1::foo.out", "foo.default")
    with pytest.raises(RuntimeError, match="failed to match any schema:\nkiln_lib1::foo\\(\\) "
                                           "Expected a value of type 'Tensor' for argument 'x'"):
        op(1.0)
    with pytest.raises(RuntimeError, match=r"takes 2 positional argument\(s\) but 3 was/were"):
        op.default(x, 1, 2)
    with pytest.raises(RuntimeError, match="Expected a value of type 'int' for argument 'n' "
                                           "but instead found type 'float'"):
        op.default(x, n=1.5)
    with pytest.raises(RuntimeError, match="Unknown keyword argument 'm'"):
        op.default(x, m=1)
    with pytest.raises(RuntimeError, match="is missing value for argument 'x'"):
        op.default()
    lib._destroy()


def test_library_registration_errors_and_lifetime():
    import gc
    with pytest.raises(ValueError, match="Unsupported kind: BAD"):
        torch.library.Library("kiln_lib2", "BAD")
    with pytest.raises(RuntimeError, match="Cannot define an operator inside of a "
                                           "TORCH_LIBRARY_IMPL block"):
        torch.library.Library("kiln_lib2", "IMPL").define("f(Tensor x) -> Tensor")
    lib = torch.library.Library("kiln_lib2", "DEF")
    with pytest.raises(RuntimeError, match="Only a single TORCH_LIBRARY can be used to register "
                                           "the namespace kiln_lib2"):
        torch.library.Library("kiln_lib2", "DEF")
    lib.define("f(Tensor x) -> Tensor")
    with pytest.raises(RuntimeError, match="same name and overload name multiple times"):
        lib.define("f(Tensor x) -> Tensor")
    with pytest.raises(RuntimeError, match="could not parse dispatch key: NoSuchKey"):
        lib.impl("f", lambda x: x, "NoSuchKey")
    with pytest.raises(NotImplementedError, match="Could not run 'kiln_lib2::f' with arguments "
                                                  "from the 'CPU' backend"):
        torch.ops.kiln_lib2.f(torch.ones(2))
    lib.impl("f", lambda x: x + 1, "CPU")
    with pytest.warns(UserWarning, match="Overriding a previously registered kernel"):
        lib.impl("f", lambda x: x + 2, "CPU")
    np.testing.assert_array_equal(torch.ops.kiln_lib2.f(torch.ones(2)).numpy(), [3.0, 3.0])
    # the registrations go with the library, and the namespace can be defined again
    del lib
    gc.collect()
    with pytest.raises(AttributeError, match="has no attribute 'f'"):
        torch.ops.kiln_lib2.f
    torch.library.Library("kiln_lib2", "DEF")._destroy()


def test_library_dispatch_keys_and_autograd():
    lib = torch.library.Library("kiln_lib3", "DEF")
    a = np.linspace(-1.5, 1.5, 5)
    # CompositeImplicitAutograd (the default key): autograd sees the kernel's own ops
    lib.define("sin2(Tensor x) -> Tensor")
    lib.impl("sin2", lambda x: x.sin() * 2)
    x = torch.tensor(a, requires_grad=True)
    assert gradcheck(torch.ops.kiln_lib3.sin2, (x,))
    torch.ops.kiln_lib3.sin2(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.cos(a))

    # an Autograd kernel (an autograd.Function that calls the op below autograd)
    class Triple(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return torch.ops.kiln_lib3.triple(x)

        @staticmethod
        def backward(ctx, g):
            return g * 30           # deliberately not 3: proves this backward ran
    lib.define("triple(Tensor x) -> Tensor")
    lib.impl("triple", lambda x: torch.from_numpy(x.numpy() * 3), "CPU")
    lib.impl("triple", Triple.apply, "Autograd")
    x = torch.tensor(a, requires_grad=True)
    y = torch.ops.kiln_lib3.triple(x)
    np.testing.assert_array_equal(y.detach().numpy(), a * 3)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(5, 30.0))

    # a CPU kernel and no autograd rule: its ops are recorded, backward warns (as torch's
    # autograd-not-implemented fallback does)
    lib.define("scale(Tensor x, Scalar s) -> Tensor")
    lib.impl("scale", lambda x, s: x * s, "CompositeExplicitAutograd")
    x = torch.tensor(a, requires_grad=True)
    y = torch.ops.kiln_lib3.scale(x, 2.5)
    with pytest.warns(UserWarning, match="kiln_lib3::scale: an autograd kernel was not "
                                         "registered"):
        y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(5, 2.5))
    with pytest.raises(RuntimeError, match="Expected a value of type 'number' for argument 's'"):
        torch.ops.kiln_lib3.scale(x, "a")

    # fallthrough to Autograd: not differentiable, no graph
    lib.define("sign(Tensor x) -> Tensor")
    lib.impl("sign", lambda x: torch.from_numpy(np.sign(x.numpy())), "CPU")
    lib.impl("sign", torch.library.fallthrough_kernel, "Autograd")
    assert not torch.ops.kiln_lib3.sign(torch.tensor(a, requires_grad=True)).requires_grad
    lib._destroy()


def test_library_functions_define_impl_register_autograd_and_fake():
    torch.library.define("kiln_lib4::h", "(Tensor x, int[2] k, Tensor? w=None) -> Tensor")

    @torch.library.impl("kiln_lib4::h", ["cpu", "cuda"])
    def h(x, k, w=None):
        assert k == [3, 3] or k == [1, 2]           # int[2] given one int: both elements
        return torch.from_numpy(x.numpy() * k[0] * k[1])
    torch.library.register_autograd("kiln_lib4::h",
                                    lambda ctx, g: (g * ctx.k[0] * ctx.k[1], None, None),
                                    setup_context=lambda ctx, inputs, output:
                                    setattr(ctx, "k", inputs[1]))
    with pytest.warns(FutureWarning, match="impl_abstract` was renamed"):
        torch.library.impl_abstract("kiln_lib4::h", lambda x, k, w=None: torch.empty_like(x))
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    y = torch.ops.kiln_lib4.h(x, 3)
    np.testing.assert_array_equal(y.detach().numpy(), [9.0, 18.0])
    assert type(y.grad_fn).__name__ == "GeneratedBackwardFor_kiln_lib4_h_defaultBackward"
    assert gradcheck(lambda t: torch.ops.kiln_lib4.h(t, [1, 2]), (x,))
    assert torch.library.opcheck(torch.ops.kiln_lib4.h.default, (x, 3)) == \
        {t: "SUCCESS" for t in torch.library.DEFAULT_TEST_UTILS}

    # impl may come before define (an IMPL library); a mutated argument's version moves once
    impl_lib = torch.library.Library("kiln_lib5", "IMPL")
    def inc(t):
        t.add_(1)
    impl_lib.impl("inc", inc, "CPU")
    lib = torch.library.Library("kiln_lib5", "DEF")
    lib.define("inc(Tensor(a!) t) -> ()")
    z = torch.zeros(2)
    v = z._version
    assert torch.ops.kiln_lib5.inc(z) is None
    np.testing.assert_array_equal(z.numpy(), [1.0, 1.0])
    assert z._version == v + 1

    # under compile() an operator is a graph break: the result equals eager
    f = torch.compile(lambda t: torch.ops.kiln_lib4.h(t.exp(), 3).sum() * 2)
    t = torch.tensor([0.5, -1.0])
    np.testing.assert_allclose(f(t).item(), 18 * np.exp([0.5, -1.0]).sum(), rtol=1e-6)
    lib._destroy()
    impl_lib._destroy()


def test_register_autocast_casts_inputs_and_runs_with_autocast_off():
    seen = []

    @torch.library.custom_op("kiln_test::ac_mul", mutates_args=())
    def ac_mul(x: Tensor, y: Tensor) -> Tensor:
        seen.append((x.dtype, y.dtype, torch.is_autocast_enabled("cpu")))
        return x * y

    X, Y = np.array([1.5, -2.0, 0.25]), np.array([2.0, 3.0, -4.0])
    x, y = torch.tensor(X, dtype=torch.float32), torch.tensor(Y)       # float32, float64
    torch.library.register_autocast("kiln_test::ac_mul", "cpu", torch.float16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        r = ac_mul(x, y)
    # float32 became float16; float64 is never cast; the kernel ran with autocast off
    assert seen == [(torch.float16, torch.float64, False)] and r.dtype == torch.float64
    np.testing.assert_array_equal(r.numpy(), X * Y)     # (exact in float16)
    assert ac_mul(x, y).dtype == torch.float64 and seen[-1][0] == torch.float32
    with pytest.raises(ValueError, match="got unexpected type for op: <class 'int'>"):
        torch.library.register_autocast(123, "cpu", torch.float16)
    with pytest.raises(ValueError, match="Device type 'xla' does not support autocast."):
        torch.library.register_autocast(ac_mul, "xla", torch.float16)


def test_register_vmap_rules():
    @torch.library.custom_op("kiln_test::np_mul", mutates_args=())
    def np_mul(x: Tensor, y: Tensor) -> Tensor:
        return torch.tensor(x.numpy() * y.numpy())

    infos = []

    @torch.library.register_vmap("kiln_test::np_mul")
    def _(info, in_dims, x, y):
        infos.append((info.batch_size, info.randomness, in_dims))
        xb, yb = in_dims
        x = x.movedim(xb, -1) if xb is not None else x.unsqueeze(-1)
        y = y.movedim(yb, -1) if yb is not None else y.unsqueeze(-1)
        return (x * y).movedim(-1, 0), 0

    A, B = np.array([1., 2., 3.]), np.array([-1., 0.5, 4.])
    a, b = torch.tensor(A), torch.tensor(B)
    np.testing.assert_array_equal(torch.vmap(np_mul)(a, b).numpy(), A * B)
    np.testing.assert_array_equal(torch.vmap(np_mul, in_dims=(0, None))(a, b).numpy(),
                                  np.outer(A, B))
    assert infos == [(3, "error", (0, 0)), (3, "error", (0, None))]
    M, N = np.arange(6.).reshape(2, 3), np.arange(6., 12.).reshape(2, 3)
    np.testing.assert_array_equal(
        torch.vmap(torch.vmap(np_mul))(torch.tensor(M), torch.tensor(N)).numpy(), M * N)
    np.testing.assert_array_equal(np_mul(a, b).numpy(), A * B)      # (no vmap: the kernel)

    @torch.library.custom_op("kiln_test::np_cube", mutates_args=())
    def np_cube(x: Tensor) -> tuple[Tensor, Tensor]:
        return torch.tensor(x.numpy() ** 3), torch.tensor(3 * x.numpy() ** 2)

    np_cube.register_vmap(lambda info, in_dims, x: (np_cube(x), (in_dims[0], in_dims[0])))
    c, d = torch.vmap(np_cube, in_dims=1)(torch.tensor(M))      # out_dims=0: batch first
    np.testing.assert_array_equal(c.numpy(), (M ** 3).T)
    np.testing.assert_array_equal(d.numpy(), (3 * M ** 2).T)
    with pytest.raises(ValueError, match="got unexpected type for op: <class 'int'>"):
        torch.library.register_vmap(5, lambda *a: None)


def _add_kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def add_kernel(in_ptr0, in_ptr1, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
        offsets = tl.program_id(axis=0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offsets < n_elements
        x = tl.load(in_ptr0 + offsets, mask=mask)
        y = tl.load(in_ptr1 + offsets, mask=mask)
        tl.store(out_ptr + offsets, x + y, mask=mask)
    return add_kernel, triton.cdiv


@pytest.mark.parametrize("device", ["cpu", "interpret"])
def test_triton_op_with_wrap_triton(device):
    kernel, cdiv = _add_kernel()
    name = f"kiln_test::tadd_{device}"

    @torch.library.triton_op(name, mutates_args={})
    def tadd(x: Tensor, y: Tensor) -> Tensor:
        out = torch.empty_like(x)
        n = out.numel()
        torch.library.wrap_triton(kernel)[lambda meta: (cdiv(n, meta["BLOCK_SIZE"]),)](
            x, y, out, n, 16)
        return out

    tadd.register_autograd(lambda ctx, g: (g, g))
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal(37), rng.standard_normal(37)
    x, y = torch.tensor(X, device=device), torch.tensor(Y, device=device)
    r = tadd(x, y)
    assert r.device.type == device and r.dtype == torch.float64
    np.testing.assert_array_equal(r.cpu().numpy(), X + Y)       # 3 programs of 16, masked
    ns, op = name.split("::")
    np.testing.assert_array_equal(getattr(getattr(torch.ops, ns), op)(x, y).cpu().numpy(), X + Y)
    assert torch.library.opcheck(tadd, (x, y)) == {t: "SUCCESS" for t in
                                                   torch.library.DEFAULT_TEST_UTILS}
    f = torch.compile(lambda p, q: tadd(p, q) * 2)
    np.testing.assert_array_equal(f(x, y).cpu().numpy(), 2 * (X + Y))
    a = torch.tensor(X[:5], device=device, requires_grad=True)
    assert gradcheck(lambda t: tadd(t, t * 3), (a,))
    with pytest.raises(RuntimeError, match="wrap_triton only works on functions annotated with "
                                           "triton.jit or triton.autotune"):
        torch.library.wrap_triton(lambda: 0)


def test_triton_op_autotuned_kernel_with_scalar_argument():
    import triton
    import triton.language as tl

    @triton.autotune(configs=[triton.Config({"BLOCK_SIZE": 8}),
                              triton.Config({"BLOCK_SIZE": 32})], key=["n"])
    @triton.jit
    def scale_kernel(x_ptr, out_ptr, n, s, BLOCK_SIZE: tl.constexpr):
        o = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        m = o < n
        tl.store(out_ptr + o, tl.load(x_ptr + o, mask=m) * s, mask=m)

    @torch.library.triton_op("kiln_test::tscale", mutates_args=())
    def tscale(x: Tensor, s: float) -> Tensor:
        out = torch.empty_like(x)
        n = x.numel()
        torch.library.wrap_triton(scale_kernel)[
            lambda meta: (triton.cdiv(n, meta["BLOCK_SIZE"]),)](x, out, n, s)
        return out

    X = np.linspace(-3, 3, 21, dtype=np.float32)
    np.testing.assert_array_equal(tscale(torch.tensor(X), 2.5).numpy(), X * np.float32(2.5))
