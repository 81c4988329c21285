"""Complex tensors as PyTorch 2.13 has them: abs/angle/real/imag/conj/sgn/polar/complex/
view_as_real/view_as_complex (values vs NumPy complex128, dtypes, views that write through),
random draws, printing, promotion, gradients in PyTorch's convention (.grad = dL/dx + i dL/dy
for a real loss of z = x + iy), PyTorch's errors for ops without complex kernels, compile()
== eager, and the interpret device == cpu."""
import math

import numpy as np
import pytest

import framework as torch
from conftest import assert_close, to_np

Z = np.array([1 + 2j, 3 - 4j, 0j, -0.5 + 0.25j])


def _z(dtype=torch.complex128):
    return torch.tensor(Z, dtype=dtype)


# ---- values and dtypes --------------------------------------------------------------------

@pytest.mark.parametrize("dtype,real", [(torch.complex64, torch.float32),
                                        (torch.complex128, torch.float64)])
def test_real_valued_ops_return_the_real_dtype(dtype, real):
    z = _z(dtype)
    for f, ref in ((torch.abs, np.abs), (torch.absolute, np.abs), (torch.angle, np.angle),
                   (torch.real, np.real), (torch.imag, np.imag)):
        r = f(z)
        assert r.dtype == real, f
        assert_close(r, ref(Z), rtol=1e-6, atol=1e-6)
    assert z.abs().dtype == real and z.real.dtype == real and z.imag.dtype == real
    assert torch.view_as_real(z).dtype == real


def test_conj_sgn_polar_complex_values():
    z = _z()
    assert_close(torch.view_as_real(z.conj()), np.stack([Z.real, -Z.imag], -1), rtol=0, atol=0)
    assert_close(torch.view_as_real(torch.conj_physical(z)), np.stack([Z.real, -Z.imag], -1))
    s = np.where(Z == 0, 0, Z / np.where(Z == 0, 1, np.abs(Z)))
    assert_close(torch.view_as_real(torch.sgn(z)), np.stack([s.real, s.imag], -1), atol=1e-15)
    assert torch.sgn(torch.tensor([-2.0, 0.0, 3.0])).tolist() == [-1.0, 0.0, 1.0]
    r, th = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    p = torch.polar(torch.tensor(r), torch.tensor(th))
    assert p.dtype == torch.complex128
    a = torch.tensor(r, requires_grad=True)
    assert torch.polar(a, torch.tensor(th)).grad_fn.name() == "PolarBackward0"
    assert_close(torch.view_as_real(p), np.stack([r * np.cos(th), r * np.sin(th)], -1),
                 atol=1e-15)
    c = torch.complex(torch.tensor([[1.0], [2.0]]), torch.tensor([3.0, 4.0, 5.0]))
    assert c.dtype == torch.complex64 and c.shape == (2, 3)     # broadcast like torch
    assert_close(torch.view_as_real(c)[1, 2], [2.0, 5.0])


def test_real_tensors_pass_through_and_flags():
    x = torch.tensor([1.0, -2.0])
    assert x.real is x and torch.real(x) is x            # torch returns the tensor itself
    assert x.conj() is x and x.resolve_conj() is x and torch.conj_physical(x) is x
    z = _z()
    # Kiln materialises the conjugate: no lazy conj bit (torch: z.conj().is_conj() is True)
    assert not z.conj().is_conj() and not z.is_neg()
    assert torch.is_complex(z) and z.is_complex() and not torch.is_complex(x)
    # angle of reals: pi for negatives, 0 otherwise (also -0.0), NaN stays; ints -> float
    a = torch.angle(torch.tensor([-1.0, -0.0, 0.0, float("nan"), 2.0]))
    assert_close(a, [math.pi, 0, 0, np.nan, 0])
    assert torch.angle(torch.tensor([-1, 2])).dtype == torch.float32


def test_complex_views_write_through():
    a = torch.tensor([1 + 1j, 2 + 2j])
    a.real.mul_(2)
    assert to_np(a).tolist() == [2 + 1j, 4 + 2j]
    a.imag.add_(1)
    assert to_np(a).tolist() == [2 + 2j, 4 + 3j]
    torch.view_as_real(a)[0, 1] = 7
    assert to_np(a).tolist() == [2 + 7j, 4 + 3j]
    a.imag = torch.tensor([0.5, -0.5])              # the property setter copies into the view
    assert to_np(a).tolist() == [2 + 0.5j, 4 - 0.5j]
    r = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    v = torch.view_as_complex(r)
    v.mul_(1j)                                       # view_as_complex shares memory too
    assert to_np(r).tolist() == [[-2.0, 1.0], [-4.0, 3.0]]
    # a strided view of a complex tensor: the real view keeps its strides
    m = torch.tensor(np.arange(6).reshape(2, 3) * (1 + 1j))
    m.t()[1].real.zero_()
    assert to_np(m)[:, 1].tolist() == [1j, 4j]


def test_view_as_complex_errors_like_torch():
    with pytest.raises(RuntimeError, match="last dimension of size 2"):
        torch.view_as_complex(torch.randn(3, 4))
    with pytest.raises(RuntimeError, match="last dimension with stride 1"):
        torch.view_as_complex(torch.randn(2, 4).t())
    with pytest.raises(RuntimeError, match="storage_offset divisible by 2"):
        torch.view_as_complex(torch.randn(3, 6)[:, 1:3])
    with pytest.raises(RuntimeError, match="only supported for half, float and double"):
        torch.view_as_complex(torch.arange(4).reshape(2, 2))
    with pytest.raises(RuntimeError, match="only supported for complex tensors"):
        torch.view_as_real(torch.randn(3))
    with pytest.raises(RuntimeError, match="imag is not implemented for tensors with non-complex"):
        torch.randn(3).imag
    with pytest.raises(RuntimeError, match="Expected object of scalar type Float but got scalar "
                                           "type Double"):
        torch.complex(torch.ones(2), torch.ones(2, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="Half, Float or Double"):
        torch.complex(torch.ones(2, dtype=torch.int64), torch.ones(2, dtype=torch.int64))


def test_promotion_with_complex():
    c64 = torch.tensor([1 + 1j], dtype=torch.complex64)
    assert (c64 + torch.tensor([1.0], dtype=torch.float64)).dtype == torch.complex128
    assert (c64 + torch.tensor(1.0, dtype=torch.float64)).dtype == torch.complex64   # 0-d
    assert (torch.tensor(1 + 1j, dtype=torch.complex64)
            + torch.tensor([1.0], dtype=torch.float64)).dtype == torch.complex128
    assert (torch.tensor([1], dtype=torch.int32) + 1j).dtype == torch.complex64
    assert (torch.tensor([1.0], dtype=torch.float64) * 1j).dtype == torch.complex128
    assert torch.promote_types(torch.complex64, torch.float64) == torch.complex128


def test_random_complex_draws_follow_torch():
    # hard-coded from torch 2.13: manual_seed(0), then each draw
    torch.manual_seed(0)
    r = torch.randn(4, dtype=torch.complex64, device="cpu")
    assert r.dtype == torch.complex64
    assert_close(torch.view_as_real(r), [[1.0896, -0.2075], [-1.5406, 0.4019],
                                         [-0.7669, -0.9890], [0.2852, 0.5926]], atol=1e-4)
    torch.manual_seed(0)
    u = torch.rand(3, dtype=torch.complex64, device="cpu")
    assert_close(torch.view_as_real(u), [[0.4963, 0.7682], [0.0885, 0.1320], [0.3074, 0.6341]],
                 atol=1e-4)
    torch.manual_seed(0)
    n = torch.empty(3, dtype=torch.complex128, device="cpu").normal_(1, 2)
    assert_close(torch.view_as_real(n), [[3.1793, 0.5850], [-2.0813, 1.8039], [-0.5337, -0.9779]],
                 atol=1e-4)
    # randn: each part has variance 1/2 (E|z|^2 = 1)
    big = torch.randn(20000, dtype=torch.complex128)
    assert abs(float(torch.view_as_real(big).var()) - 0.5) < 0.03


def test_printing_matches_torch():
    # cpu tensors: torch's cpu printing (a device adds its device='...' suffix)
    def t(v, **k):
        return torch.tensor(v, device="cpu", **k)
    assert repr(t([1 + 2j, 3 - 1j]) + t([0.5, 2.0])) == "tensor([1.5000+2.j, 5.0000-1.j])"
    assert repr(t([[1e-5 + 2j, 3]], dtype=torch.complex128)) == \
        "tensor([[1.0000e-05+2.j, 3.0000e+00+0.j]], dtype=torch.complex128)"
    assert repr(t(2 + 3j)) == "tensor(2.+3.j)"
    assert repr(t([1 + 2j]).abs()) == "tensor([2.2361])"


def test_var_of_complex_is_real():
    z = _z()
    v = z.var()
    assert v.dtype == torch.float64
    assert_close(v, np.var(Z, ddof=1), rtol=1e-12)


# ---- errors for ops without complex kernels -------------------------------------------------

_ERRORS = [
    (lambda z: z < z, NotImplementedError, "\"lt_cpu\" not implemented for 'ComplexDouble'"),
    (lambda z: z >= 1, NotImplementedError, "\"ge_cpu\" not implemented"),
    (lambda z: torch.gt(z, z), NotImplementedError, "gt_cpu"),
    (lambda z: z.le(z), NotImplementedError, "le_cpu"),
    (lambda z: z.max(), NotImplementedError, "\"max_all\" not implemented"),
    (lambda z: torch.min(z), NotImplementedError, "\"min_all\" not implemented"),
    (lambda z: z.amax(), NotImplementedError, "max_values_cpu"),
    (lambda z: z.amin(0), NotImplementedError, "min_values_cpu"),
    (lambda z: z.max(0), RuntimeError, "max\\(\\): does not support complex input"),
    (lambda z: z.argmax(), RuntimeError, "argmax\\(\\): does not support complex input"),
    (lambda z: torch.maximum(z, z), RuntimeError, "maximum not implemented for complex"),
    (lambda z: torch.minimum(z, z), RuntimeError, "minimum not implemented for complex"),
    (lambda z: z.clamp(0, 1), NotImplementedError, "clamp is not supported for complex types"),
    (lambda z: z.clamp(min=0), NotImplementedError, "clamp is not supported for complex types"),
    (lambda z: torch.relu(z), NotImplementedError, "clamp is not supported for complex types"),
    (lambda z: torch.sort(z), RuntimeError, "Sort does not support complex dtypes"),
    (lambda z: z.argsort(), RuntimeError, "Sort does not support complex dtypes"),
    (lambda z: z.topk(1), RuntimeError, "topk does not support complex dtypes"),
    (lambda z: z.floor(), NotImplementedError, "floor is not supported for complex inputs"),
    (lambda z: z.sign(), NotImplementedError, "Please use torch.sgn instead"),
    (lambda z: z % 2, NotImplementedError, "remainder_cpu"),
    (lambda z: torch.atan2(z, z), NotImplementedError, "atan2_cpu"),
    (lambda z: z.erf(), NotImplementedError, "erf_vml_cpu"),
    (lambda z: torch.softmax(z, 0), NotImplementedError, "softmax_lastdim_kernel_impl"),
]


@pytest.mark.parametrize("i", range(len(_ERRORS)))
def test_ops_without_complex_kernels_raise_torch_errors(i):
    f, cls, msg = _ERRORS[i]
    with pytest.raises(cls, match=msg):
        f(_z())


def test_ops_with_complex_kernels_agree_with_numpy():
    z = _z()
    zz = Z[:2]
    t = z[:2]
    for f, ref in ((torch.exp, np.exp), (torch.sqrt, np.sqrt), (torch.log, np.log),
                   (torch.sin, np.sin), (torch.tanh, np.tanh), (lambda x: x * x, lambda x: x * x),
                   (lambda x: 1 / x, lambda x: 1 / x), (lambda x: x ** 2.5, lambda x: x ** 2.5)):
        assert_close(torch.view_as_real(f(t)), np.stack([ref(zz).real, ref(zz).imag], -1),
                     rtol=1e-12, atol=1e-12)
    assert (z == z).all() and not (z != z).any()
    assert_close(torch.view_as_real(z.sum()), [Z.sum().real, Z.sum().imag])
    assert_close(torch.view_as_real(z.mean()), [Z.mean().real, Z.mean().imag])


# ---- gradients (PyTorch's convention) -------------------------------------------------------

def _fd_grad(loss, z0, eps=1e-6):
    """dL/dx + i dL/dy by central differences in complex128 (what torch puts in .grad)."""
    z0 = np.asarray(z0, np.complex128)
    g = np.zeros_like(z0)
    for k in range(z0.size):
        for unit in (1, 1j):
            zp, zm = z0.copy(), z0.copy()
            zp.flat[k] += eps * unit
            zm.flat[k] -= eps * unit
            d = (float(loss(torch.tensor(zp))) - float(loss(torch.tensor(zm)))) / (2 * eps)
            g.flat[k] += d * unit
    return g


_LOSSES = {
    "mul_abs": lambda z: (z * torch.tensor([0.5 - 1j, 2 + 0.5j, 1j], dtype=torch.complex128))
    .abs().sum(),
    "div_real": lambda z: (z / (z * z + 2)).real.sum(),
    "exp_imag": lambda z: torch.exp(z).imag.sum(),
    "abs": lambda z: z.abs().sum(),
    "angle": lambda z: z.angle().sum(),
    "view_as_real": lambda z: (torch.view_as_real(z * z) * torch.tensor([1.0, -2.0],
                                                                        dtype=torch.float64)).sum(),
    "sum_conj": lambda z: (z.sum() * z.conj().sum()).real,
    "sgn": lambda z: (torch.sgn(z) * torch.tensor([1 - 2j, 0.5 + 1j, 2j],
                                                  dtype=torch.complex128)).real.sum(),
    "polar_complex": lambda z: torch.polar(z.abs(), z.angle() * 2).imag.sum()
    + torch.complex(z.real * z.imag, z.imag).abs().sum(),
    "sqrt_log_pow": lambda z: (z.sqrt() + z.log() + z ** 3 + 1 / z).abs().sum(),
}


@pytest.mark.parametrize("name", sorted(_LOSSES))
def test_gradient_convention_matches_finite_differences(name):
    z0 = np.array([1 + 2j, 3 - 1j, -0.4 + 0.7j])
    loss = _LOSSES[name]
    z = torch.tensor(z0, requires_grad=True)
    loss(z).backward()
    assert z.grad.dtype == torch.complex128
    np.testing.assert_allclose(to_np(z.grad), _fd_grad(loss, z0), rtol=1e-6, atol=1e-6)


def test_gradients_equal_torch_printed_values():
    # from torch 2.13 (complex128), the same expression
    x = torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex128, requires_grad=True)
    y = torch.tensor([0.5 - 1j, 2 + 0.5j], dtype=torch.complex128, requires_grad=True)
    (x * y).abs().sum().add((x / y).real.sum()).add(torch.exp(x).imag.sum()) \
        .add(x.angle().sum()).backward()
    np.testing.assert_allclose(to_np(x.grad), [2.9717266720048188 - 0.7312043837568136j,
                                               -14.375047578295183 + 10.617988732501223j],
                               rtol=1e-12)
    np.testing.assert_allclose(to_np(y.grad), [2.76 - 2.32j,
                                               2.555749228745883 + 0.22717260130411787j],
                               rtol=1e-12)
    z = torch.tensor([0.3 + 0.4j, -1.2 + 0.7j], dtype=torch.complex128, requires_grad=True)
    (torch.sgn(z) * torch.tensor([1 - 2j, 0.5 + 1j], dtype=torch.complex128)).real.sum().backward()
    np.testing.assert_allclose(to_np(z.grad), [-0.64 + 0.48j,
                                               -0.2219121096867738 - 0.38042075946304066j],
                               rtol=1e-12)


def test_real_leaf_gets_real_gradient_from_complex_graph():
    w = torch.tensor([1.5, -0.5], dtype=torch.float64, requires_grad=True)
    c = torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex128)
    (w * c).abs().sum().backward()
    assert w.grad.dtype == torch.float64
    assert_close(w.grad, np.sign([1.5, -0.5]) * np.abs([1 + 2j, 3 - 1j]), rtol=1e-12)
    # through complex(re, im) and view_as_complex: gradients reach the real parts
    re = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    im = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    torch.complex(re, im).abs().sum().backward()
    m = np.abs(np.array([1 + 0.5j, 2 - 1j]))
    assert_close(re.grad, [1 / m[0], 2 / m[1]], rtol=1e-12)
    assert_close(im.grad, [0.5 / m[0], -1 / m[1]], rtol=1e-12)


def test_inplace_write_through_real_view_keeps_history():
    # z.real.mul_(w) on a non-leaf: gradients flow through the written part (CopySlices)
    x = torch.tensor([1 + 2j, -1 + 0.5j], dtype=torch.complex128, requires_grad=True)
    w = torch.tensor([3.0, -2.0], dtype=torch.float64, requires_grad=True)
    z = x * 1
    z.real.mul_(w)
    assert z.grad_fn.name() == "torch::autograd::CopySlices"
    (z * z.conj()).real.sum().backward()
    zr = np.array([1 * 3.0, -1 * -2.0])
    zi = np.array([2.0, 0.5])
    np.testing.assert_allclose(to_np(x.grad), 2 * zr * np.array([3.0, -2.0]) + 2j * zi,
                               rtol=1e-12)
    assert_close(w.grad, 2 * zr * np.array([1.0, -1.0]), rtol=1e-12)


# ---- compile and the interpret device -----------------------------------------------------------

def _cfn(z, x):
    y = torch.view_as_real(z * z.conj() + z.exp()) * x.unsqueeze(-1)
    return y.sum(-1) + z.abs() * x.sin() + z.angle() + z.imag


def test_compile_equals_eager_with_gradients():
    z0 = np.array([1 + 2j, 3 - 1j, -0.4 + 0.7j])
    x0 = np.array([0.3, -1.0, 2.0])
    z1 = torch.tensor(z0, requires_grad=True)
    x1 = torch.tensor(x0, requires_grad=True)
    e = _cfn(z1, x1)
    e.sum().backward()
    z2 = torch.tensor(z0, requires_grad=True)
    x2 = torch.tensor(x0, requires_grad=True)
    c = torch.compile(_cfn)(z2, x2)
    c.sum().backward()
    assert c.dtype == e.dtype == torch.float64
    assert_close(c, to_np(e), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(to_np(z2.grad), to_np(z1.grad), rtol=1e-12, atol=1e-12)
    assert_close(x2.grad, to_np(x1.grad), rtol=1e-12, atol=1e-12)


def test_interpret_device_equals_cpu():
    z0 = np.array([1 + 2j, 3 - 1j, -0.4 + 0.7j])
    x0 = np.array([0.3, -1.0, 2.0], dtype=np.float32)
    zc, xc = torch.tensor(z0, dtype=torch.complex64, device="cpu"), torch.tensor(x0, device="cpu")
    zi, xi = zc.to("interpret"), xc.to("interpret")
    for f in (_cfn, lambda z, x: torch.sgn(z) * x, lambda z, x: torch.polar(x, x * 2),
              lambda z, x: torch.complex(x, x.cos()).conj(), lambda z, x: z.real * z.imag):
        want, got = f(zc, xc), f(zi, xi)
        assert got.device.type == "interpret" and got.dtype == want.dtype
        np.testing.assert_allclose(to_np(got), to_np(want), rtol=1e-5, atol=1e-6)
    c = torch.compile(_cfn)(zi, xi)
    assert c.device.type == "interpret"
    np.testing.assert_allclose(to_np(c), to_np(_cfn(zc, xc)), rtol=1e-5, atol=1e-5)
    v = zi.clone()
    v.real.mul_(2)             # views of device memory write through too
    assert to_np(v).tolist() == (to_np(zc) + to_np(zc).real).tolist()


def test_nan_to_num_complex_and_complex_setitem_into_real():
    # nan_to_num replaces in the real and imaginary parts separately (it used to pass a
    # complex tensor through unchanged)
    inf, nan = math.inf, math.nan
    c = torch.tensor([complex(nan, inf), complex(-inf, nan), 1 - 2j], dtype=torch.complex64)
    r = torch.nan_to_num(c)
    assert r.dtype == torch.complex64
    big = float(np.finfo(np.float32).max)
    np.testing.assert_array_equal(r.numpy(), np.array([complex(0, big), complex(-big, 0), 1 - 2j],
                                                      np.complex64))
    r = c.nan_to_num(nan=1.0, posinf=2.0, neginf=-3.0)
    np.testing.assert_array_equal(r.numpy(), np.array([1 + 2j, -3 + 1j, 1 - 2j], np.complex64))
    with pytest.raises(RuntimeError, match="complex dtype"):
        torch.nan_to_num(c.clone().requires_grad_())
    # a complex Python value written into a real tensor: PyTorch's RuntimeError (NumPy's would
    # be a TypeError); with no imaginary part it is written as a real number
    x = torch.zeros(3)
    with pytest.raises(RuntimeError, match="cannot be converted to type float"):
        x[0] = 5j
    x[1] = 2 + 0j
    assert x.tolist() == [0.0, 2.0, 0.0]
    with pytest.raises(RuntimeError, match="cannot be converted to type double"):
        torch.zeros(2, dtype=torch.float64)[:1] = 1 + 1j
