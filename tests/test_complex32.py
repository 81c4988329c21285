"""torch.complex32 / torch.chalf (ComplexHalf) as PyTorch 2.13's CPU build has it: complex
numbers with float16 real and imaginary parts; creation, copies, casts, views, add/sub/mul,
equality, abs/sgn/conj work, most other kernels refuse it."""
import io

import numpy as np
import pytest

import framework as torch

C = torch.complex32


def h(z):
    """z (NumPy complex array or number) rounded as complex32 holds it: float16 parts."""
    z = np.asarray(z, np.complex128)
    r = np.empty(z.shape, np.complex128)        # (not re + 1j * im: inf * 1j is nan + inf j)
    r.real = np.asarray(z.real, np.float16)
    r.imag = np.asarray(z.imag, np.float16)
    return r


def vals(t):
    return np.asarray(t.tolist(), np.complex128)


X = [1 + 2j, 3.5 - 1j, 0.1 + 0.3j, -2 + 0j]
Y = [0.5 + 0.25j, -1.5 + 0.1j, 2 - 2j, 0.3 + 0.7j]


def test_dtype_object():
    assert torch.chalf is torch.complex32
    assert repr(torch.complex32) == "torch.complex32"
    assert torch.complex32.is_complex and not torch.complex32.is_floating_point
    assert torch.complex32.itemsize == 4
    assert torch.float16.to_complex() is torch.complex32
    assert torch.complex32.to_real() is torch.float16
    f, g = torch.finfo(torch.chalf), torch.finfo(torch.float16)
    assert (f.eps, f.max, f.tiny, f.resolution, f.dtype) == (g.eps, g.max, g.tiny, g.resolution,
                                                             "float16")
    x = torch.zeros(2, 3, dtype=C)
    assert x.element_size() == 4 and x.itemsize == 4 and x.nbytes == 24
    # the storage's bytes are PyTorch's: (real, imag) float16 pairs, little endian
    y = torch.tensor([1 + 2j, 3.5 - 1j], dtype=C)
    s = y.untyped_storage()
    assert s.nbytes() == 8 and x.untyped_storage().nbytes() == 24
    assert list(s) == list(np.array([1, 2, 3.5, -1], "<f2").view(np.uint8))
    assert y[1:].untyped_storage().data_ptr() == s.data_ptr()
    assert x.is_complex() and not x.is_floating_point()
    # a complex64 NumPy array is still a complex64 tensor
    assert torch.from_numpy(np.zeros(2, np.complex64)).dtype is torch.complex64
    assert torch.as_tensor(np.zeros(2, np.complex64), dtype=C).dtype is C


def test_creation_rounds_to_half_parts():
    x = torch.tensor([0.1 + 0.2j, 70000 + 1j, 1e-8 + 0.3j], dtype=C)
    assert x.dtype is C
    want = [complex(np.float16(0.1), np.float16(0.2)), complex(np.inf, 1.0),
            complex(0.0, np.float16(0.3))]
    assert x.tolist() == want
    assert isinstance(x[0].item(), complex) and x[0].item() == want[0]
    assert torch.zeros(2, dtype=C).tolist() == [0j, 0j]
    assert torch.ones(2, dtype=C).tolist() == [1 + 0j, 1 + 0j]
    assert torch.full((2,), 0.1 + 1j, dtype=C).tolist() == [complex(np.float16(0.1), 1.0)] * 2
    assert torch.zeros_like(x).dtype is C and torch.ones_like(x).tolist() == [1 + 0j] * 3
    assert torch.empty(3, dtype=C).dtype is C
    for f in (torch.rand, torch.randn):
        r = f(1000, dtype=C)
        assert r.dtype is C
        v = vals(r)
        assert np.array_equal(v, h(v)) and len(set(v.tolist())) > 900
    assert torch.tensor([1.5, 2.0], dtype=torch.float16).chalf().tolist() == [1.5 + 0j, 2 + 0j]
    assert torch.tensor(1 + 1j, dtype=C).shape == ()


def test_casts_both_ways():
    x = torch.tensor(X, dtype=C)
    assert np.array_equal(vals(x.to(torch.complex64)), h(X))
    assert x.to(torch.complex64).dtype is torch.complex64
    assert x.to(torch.complex128).dtype is torch.complex128
    r = torch.tensor([0.1 + 0.2j]).to(C)        # complex64 -> complex32 rounds each part
    assert r.tolist() == [complex(np.float16(0.1), np.float16(0.2))]
    assert torch.tensor([1.5, 3.0], dtype=torch.float16).to(C).tolist() == [1.5 + 0j, 3 + 0j]
    assert torch.tensor([1, 2]).to(C).tolist() == [1 + 0j, 2 + 0j]
    assert torch.tensor([True, False]).to(C).tolist() == [1 + 0j, 0j]


def test_add_sub_mul_values_match_numpy():
    x, y = torch.tensor(X, dtype=C), torch.tensor(Y, dtype=C)
    a, b = h(X), h(Y)
    for got, want in ((x + y, a + b), (x - y, a - b), (x * y, a * b), (x * 2, a * 2),
                      (x + 1.5, a + 1.5), (x * (1 + 1j), a * (1 + 1j)), (1 - x, 1 - a), (-x, -a),
                      (x.conj(), np.conj(a)), (torch.add(x, y, alpha=2), a + 2 * b)):
        assert got.dtype is C
        assert np.array_equal(vals(got), h(want))
    # overflow: to inf, as float16
    big = x * 40000
    assert np.array_equal(vals(big), h(a * 40000)) and np.isinf(vals(big).real[1])
    assert torch.isfinite(big).tolist() == list(np.isfinite(h(a * 40000)))


def test_operands_rounded_to_complex32_first():
    # PyTorch casts every operand to complex32 before the op: 1000.3 is used as float16's
    # 1000.5, so 3.334 * 1000.3 is h(3.333984375 * 1000.5) = 3336, not h(3334.98) = 3334
    x = torch.tensor([3.3333 + 0j], dtype=C)
    a = h([3.3333])
    s = complex(h(1000.3))
    assert s == 1000.5
    want_mul, want_add = h(a * s), h(a + s)
    assert want_mul[0] == 3336
    for got in (x * 1000.3, x * torch.tensor(1000.3), x * torch.tensor(1000.3, dtype=torch.float64),
                x.clone().mul_(1000.3), x.clone().mul_(torch.tensor(1000.3))):
        assert got.dtype is C and np.array_equal(vals(got), want_mul)
    for got in (x + 1000.3, x.clone().add_(1000.3), 1000.3 + x):
        assert got.dtype is C and np.array_equal(vals(got), want_add)
    i = torch.tensor([2051], dtype=torch.int64)       # ints too: 2051 is float16's 2052
    assert np.array_equal(vals(x + i), h(a + 2052))
    # comparisons whose common dtype is complex32 too: 3.3333 == h(3.3333) there, but a
    # float32 tensor promotes to complex64, where 3.3333 != 3.333984375
    assert (x == 3.3333).tolist() == [True] and (x != 3.3333).tolist() == [False]
    assert (3.3333 == x).tolist() == [True] and (x == torch.tensor(3.3333)).tolist() == [True]
    assert (x == torch.tensor([3.3333])).tolist() == [False]


def test_abs_real_imag_sgn_are_half():
    x = torch.tensor(X, dtype=C)
    a = h(X)
    for t, want in ((x.real, a.real), (x.imag, a.imag), (x.abs(), np.abs(a))):
        assert t.dtype is torch.float16
        assert np.array_equal(np.asarray(t.tolist()), np.asarray(want, np.float16).astype(float))
    s = x.sgn()
    assert s.dtype is C and np.array_equal(vals(s), h(a / np.abs(a)))
    r = torch.view_as_real(x)
    assert r.dtype is torch.float16 and r.shape == (4, 2)
    z = torch.view_as_complex(torch.tensor([[1., 2.], [3., 4.]], dtype=torch.float16))
    assert z.dtype is C and z.tolist() == [1 + 2j, 3 + 4j]
    c = torch.complex(torch.tensor([1.5], dtype=torch.float16), torch.tensor([0.1],
                                                                              dtype=torch.float16))
    assert c.dtype is C and c.tolist() == [complex(1.5, np.float16(0.1))]


def test_promotion():
    P = torch.promote_types
    assert P(C, torch.float16) is C
    assert P(C, torch.float32) is torch.complex64
    assert P(C, torch.bfloat16) is torch.complex64
    assert P(C, torch.float64) is torch.complex128
    assert P(C, torch.complex64) is torch.complex64
    assert P(C, torch.int64) is C and P(C, torch.bool) is C
    hf = torch.tensor([1.5, 2.0], dtype=torch.float16)
    x = torch.tensor([1 + 1j, 2j], dtype=C)
    assert (hf + x).dtype is C and (hf * x).dtype is C
    assert (hf.float() + x).dtype is torch.complex64
    assert (x + x.to(torch.complex64)).dtype is torch.complex64
    assert (hf + 1j).dtype is C and torch.result_type(hf, 1j) is C
    assert (hf * torch.tensor(1j)).dtype is C                 # a 0-d complex64 lifts the kind
    assert (torch.ones(2) + torch.tensor(1j, dtype=C)).dtype is torch.complex64
    assert (x + torch.tensor(1j)).dtype is C                   # same kind: the dims win
    assert (x + 2).dtype is C and (x + 1.5).dtype is C
    assert np.array_equal(vals(hf + x), h(np.array([1.5, 2.0]) + h([1 + 1j, 2j])))


def test_printing_matches_torch():
    # strings from PyTorch 2.13
    assert repr(torch.tensor([1 + 2j, 3.5 - 1j], dtype=C)) == \
        "tensor([1.0000+2.j, 3.5000-1.j], dtype=torch.complex32)"
    assert repr(torch.tensor([70000 + 1j, 1e-8 + 0.1j], dtype=C)) == \
        "tensor([inf+1.0000j, 0.+0.1000j], dtype=torch.complex32)"
    assert repr(torch.tensor(1.5 - 2j, dtype=C)) == "tensor(1.5000-2.j, dtype=torch.complex32)"
    assert repr(torch.tensor([1 + 0j, 2j], dtype=C)) == \
        "tensor([1.+0.j, 0.+2.j], dtype=torch.complex32)"
    assert repr(torch.zeros(0, 2, dtype=C)) == \
        "tensor([], size=(0, 2), dtype=torch.complex32)"
    assert repr(torch.tensor([1e-3 + 1j, 1000 + 2j, 60000j], dtype=C)) == \
        ("tensor([1.0004e-03+1.0000e+00j, 1.0000e+03+2.0000e+00j, 0.0000e+00+6.0000e+04j],\n"
         "       dtype=torch.complex32)")
    assert repr(torch.tensor([[1 + 1j, 2.25 - 3j], [100 + 0.5j, -1j]], dtype=C)) == \
        ("tensor([[  1.0000+1.0000j,   2.2500-3.0000j],\n"
         "        [100.0000+0.5000j,  -0.0000-1.0000j]], dtype=torch.complex32)")


def test_bitwise_views():
    x = torch.tensor([1 + 2j, 3.5 - 1j, 0.25 + 0.5j], dtype=C)
    pairs = np.array([[1, 2], [3.5, -1], [0.25, 0.5]], np.float16)
    bits = pairs.view(np.uint16).astype(np.uint32)
    want = (bits[:, 0] | (bits[:, 1] << 16)).view(np.int32)       # little endian: real first
    i = x.view(torch.int32)
    assert i.dtype is torch.int32 and i.tolist() == want.tolist()
    assert x.view(torch.float32).tolist() == want.view(np.float32).tolist()
    f = x.view(torch.float16)
    assert f.shape == (6,) and f.tolist() == pairs.reshape(-1).astype(float).tolist()
    assert x.view(torch.uint8).shape == (12,)
    assert i.view(C).tolist() == x.tolist() and f.view(C).tolist() == x.tolist()
    assert torch.tensor(1 + 1j, dtype=C).view(torch.float32).item() == \
        np.array([1, 1], np.float16).view(np.float32)[0]
    with pytest.raises(RuntimeError, match="must be divisible by 2"):
        torch.zeros(3, dtype=torch.int16).view(C)
    with pytest.raises(RuntimeError, match="must be divisible by 2"):
        x.view(torch.complex64)


def test_shape_ops_and_writes():
    x = torch.tensor([[1 + 2j, 3.5 - 1j, 0.25 + 0.5j], [-2 + 0j, 0.1 + 0.3j, 1 - 1j]], dtype=C)
    a = h(np.array([[1 + 2j, 3.5 - 1j, 0.25 + 0.5j], [-2 + 0j, 0.1 + 0.3j, 1 - 1j]]))
    for got, want in ((torch.cat([x, x]), np.concatenate([a, a])), (torch.stack([x, x]),
                                                                   np.stack([a, a])),
                      (x.reshape(3, 2), a.reshape(3, 2)), (x[:, 1], a[:, 1]), (x.t(), a.T),
                      (x[torch.tensor([1, 0])], a[[1, 0]]), (x.clone(), a),
                      (torch.where(x.real > 0, x, 0.), np.where(a.real > 0, a, 0)),
                      (torch.flip(x, [0]), a[::-1])):
        assert got.dtype is C and np.array_equal(vals(got), want)
    assert (x == x).all().item() and not (x != x).any().item()
    assert torch.allclose(x, x) and not torch.allclose(x, x * 2)
    y = torch.zeros(3, dtype=C)
    y[0] = 0.1 + 0.2j                         # writes round, as the tensor holds its values
    y[1:] = torch.tensor([0.3j, 1e5 + 0j])
    assert y.tolist() == [complex(np.float16(0.1), np.float16(0.2)), complex(0, np.float16(0.3)),
                          complex(np.inf, 0)]
    y.fill_(0.1 + 0.1j)
    assert y.tolist() == [complex(np.float16(0.1), np.float16(0.1))] * 3
    y.zero_()
    assert y.tolist() == [0j] * 3
    y.copy_(torch.tensor([0.1j, 1, 2]))
    assert y.tolist() == [complex(0, np.float16(0.1)), 1, 2]
    z = torch.tensor(X, dtype=C)
    z.add_(torch.tensor(Y, dtype=C))
    assert np.array_equal(vals(z), h(h(X) + h(Y)))
    z.mul_(torch.tensor(Y, dtype=C))
    assert np.array_equal(vals(z), h(h(h(X) + h(Y)) * h(Y)))


# (op, PyTorch 2.13's kernel name in its NotImplementedError)
REFUSED = [
    (lambda x: x.sum(), "sum_cpu"), (lambda x: x.mean(), "sum_cpu"),
    (lambda x: x.sum(0), "sum_cpu"), (lambda x: x.prod(), "prod_out_cpu"),
    (torch.exp, "exp_vml_cpu"), (torch.sqrt, "sqrt_vml_cpu"), (torch.sin, "sin_vml_cpu"),
    (torch.tanh, "tanh_vml_cpu"), (torch.reciprocal, "reciprocal_cpu"),
    (torch.angle, "angle_cpu"), (torch.log, "log_vml_cpu"), (torch.sigmoid, "sigmoid_cpu"),
    (lambda x: x ** 2, "pow"), (torch.square, "pow"), (lambda x: x / 2, "div_cpu"),
    (lambda x: x / x, "div_cpu"), (lambda x: torch.flip(x, [1]), "flip_cpu"),
    (torch.fliplr, "flip_cpu"), (lambda x: torch.dot(x[0], x[0]), "dot"),
    (lambda x: torch.vdot(x[0], x[0]), "vdot"), (lambda x: x @ x.t(), "addmm_impl_cpu_"),
    (lambda x: x @ x[0], "addmv_impl_cpu"), (lambda x: torch.bmm(x[None], x.t()[None]), "bmm"),
    (lambda x: torch.equal(x, x), "equal_cpu"), (lambda x: torch.cumsum(x, 0), "cumsum_out_cpu"),
    (lambda x: torch.gather(x, 1, torch.tensor([[0], [1]])), "scatter_gather_tensor_cpu"),
    (lambda x: torch.lerp(x, x, 0.5), "lerp_kernel_scalar"), (torch.sinc, "sinc_cpu"),
    (torch.frac, "frac_cpu"), (torch.nan_to_num, "nan_to_num"), (torch.unique, "unique"),
]


@pytest.mark.parametrize("i", range(len(REFUSED)))
def test_refused_kernels(i):
    f, kernel = REFUSED[i]
    x = torch.tensor([[1 + 2j, 3.5 - 1j, 0.25 + 0.5j], [-2 + 0j, 0.1 + 0.3j, 1 - 1j]], dtype=C)
    before = x.tolist()
    with pytest.raises(NotImplementedError) as e:
        f(x)
    assert str(e.value).startswith(f"\"{kernel}\" not implemented for 'ComplexHalf'")
    assert x.tolist() == before
    # the same op on complex64 runs (the refusal is complex32's own)
    if kernel not in ("frac_cpu", "unique"):     # (no complex kernel at all)
        f(x.to(torch.complex64))


def test_refused_inplace_leaves_data():
    x = torch.tensor(X, dtype=C)
    with pytest.raises(NotImplementedError, match="exp_vml_cpu"):
        x.exp_()
    with pytest.raises(NotImplementedError, match="div_cpu"):
        x.div_(2)
    assert x.tolist() == h(X).tolist()


def test_numpy_refused():
    x = torch.tensor(X, dtype=C)
    with pytest.raises(TypeError, match="Got unsupported ScalarType ComplexHalf"):
        x.numpy()
    with pytest.raises(TypeError, match="ComplexHalf"):
        np.asarray(x)
    assert np.array_equal(x.to(torch.complex64).numpy(), h(X).astype(np.complex64))


def test_save_load_round_trip():
    x = torch.tensor([[0.1 + 0.2j, 70000j], [-1.5 + 3j, 0j]], dtype=C)
    b = io.BytesIO()
    torch.save({"x": x}, b)
    b.seek(0)
    y = torch.load(b)["x"]
    assert y.dtype is C and y.shape == (2, 2) and y.tolist() == x.tolist()


def test_autograd_smoke():
    x = torch.tensor([1 + 1j, 2 + 0j], dtype=C, requires_grad=True)
    (x * 2).real.sum().backward()       # (sum of the float16 real part: allowed)
    assert x.grad.dtype is C and x.grad.tolist() == [2 + 0j, 2 + 0j]
    r = torch.zeros(2, dtype=C, requires_grad=True)
    assert r.requires_grad and r.dtype is C


def test_compile_equals_eager():
    # complex32 ops run eagerly inside a compiled function (each result rounded, as eager)
    x = torch.tensor(X, dtype=C)
    y = torch.tensor(Y, dtype=C)

    def f(a, b):
        return (a * b + a * 3 - b, (a * 0.1).real)

    e, c = f(x, y), torch.compile(f)(x, y)
    for u, v in zip(e, c):
        assert u.dtype is v.dtype and u.tolist() == v.tolist()
    assert np.array_equal(vals(c[0]), h(h(h(h(X) * h(Y)) + h(h(X) * 3)) - h(Y)))
    with pytest.raises(NotImplementedError, match="exp_vml_cpu"):
        torch.compile(lambda a: a.exp())(x)


_INTERP = r"""
import json, sys
sys.path.insert(0, %(root)r)
from tests._interp import become_interpreter_worker
become_interpreter_worker(%(root)r)
import framework as torch
C = torch.complex32
def grad(x):
    r = x.clone().requires_grad_()
    (r * 2).real.sum().backward()
    return r.grad
out = {}
for dev in ("cpu", "interpret"):
    x = torch.tensor([1 + 2j, 3.5 - 1j, 0.1 + 0.3j], dtype=C, device=dev)
    y = torch.tensor([0.5 + 0.25j, -1.5 + 0.1j, 2 - 2j], dtype=C, device=dev)
    hf = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float16, device=dev)
    cases = {"add": lambda: x + y, "mul": lambda: x * y, "scalar": lambda: x * 0.1,
             "neg": lambda: -x, "conj": lambda: x.conj(), "real": lambda: x.real,
             "abs": lambda: x.abs(), "sgn": lambda: x.sgn(), "eq": lambda: x == y,
             "cat": lambda: torch.cat([x, y]), "to64": lambda: x.to(torch.complex64),
             "from64": lambda: (x.to(torch.complex64) * 0.1).to(C), "half": lambda: hf + x,
             "where": lambda: torch.where(x.real > 0, x, y), "bits": lambda: x.view(torch.int32),
             "pairs": lambda: torch.view_as_real(x), "index": lambda: x[torch.tensor([2, 0])],
             "exp": lambda: x.exp(), "sum": lambda: x.sum(), "grad": lambda: grad(x)}
    res = {}
    for k, f in cases.items():
        try:
            r = f()
            res[k] = [str(r.dtype), r.device.type, [str(v) for v in r.cpu().tolist()]]
        except Exception as e:
            res[k] = [type(e).__name__, str(e)]
    out[dev] = res
out["torch_blocked"] = "torch" not in sys.modules
print(json.dumps(out))
"""


def test_interpret_device_matches_cpu():
    import importlib.util
    import json
    import os
    # (triton is not imported here: an import before TRITON_INTERPRET is set would break the
    # in-process interpret tests that run later; the child process selects the interpreter)
    if importlib.util.find_spec("triton") is None:
        pytest.skip("the interpreter path needs Triton installed")
    from tests._interp import run_script
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = json.loads(run_script(_INTERP % {"root": root}, root, timeout=600)[-1])
    assert out["torch_blocked"]
    cpu, dev = out["cpu"], out["interpret"]
    for k in cpu:
        want, got = cpu[k], dev[k]
        if len(want) == 3:          # (dtype, device, values): same values, on the device
            assert want[1] == "cpu" and got[1] == "interpret", (k, got)
            assert [want[0], want[2]] == [got[0], got[2]], (k, want, got)
        else:                       # the same refusal
            assert want == got, (k, want, got)
    assert cpu["exp"] == ["NotImplementedError",
                          "\"exp_vml_cpu\" not implemented for 'ComplexHalf'"]
    assert cpu["bits"][0] == "torch.int32" and cpu["pairs"][0] == "torch.float16"


def test_assert_close_uses_half_tolerances():
    x = torch.tensor([1 + 2j, 3.5 - 1j, 0.1 + 0.3j, 100 - 7j], dtype=C)
    torch.testing.assert_close(x, x.clone())
    torch.testing.assert_close(x, x + 1e-4j)          # rtol 1e-3, atol 1e-5 (PyTorch's)
    y = x + 0.001
    with pytest.raises(AssertionError) as e:
        torch.testing.assert_close(x, y)
    # only 0.1+0.3j moves by more than 1e-3 relative; the difference is a half, as |z| is
    d = h(h(X[2]) + 0.001) - h(X[2])
    want = float(np.float16(abs(d)))
    assert "Mismatched elements: 1 / 4 (25.0%)" in str(e.value)
    assert f"Greatest absolute difference: {want} at index (2,)" in str(e.value)


def test_loads_pytorch_complexhalf_storage():
    # a torch.save zip holding a ComplexHalfStorage: float16 (real, imag) pairs on disk; a
    # (3,) view at offset 1 and a transposed (2, 2) view of one storage of 4 elements
    from tests.test_serialization import _op_rebuild, _zip_bytes
    pairs = np.array([[1, 2], [3.5, -1], [0.25, 0.5], [-2, 0]], "<f2")
    pkl = (b"\x80\x02(" + _op_rebuild("ComplexHalfStorage", "0", 4, 1, (3,), (1,)) +
           _op_rebuild("ComplexHalfStorage", "0", 4, 0, (2, 2), (1, 2)) + b"t.")
    v, t = torch.load(_zip_bytes(pkl, [("0", pairs)]))
    z = pairs[:, 0].astype(float) + 1j * pairs[:, 1].astype(float)
    assert v.dtype is C and v.tolist() == z[1:].tolist()
    assert t.dtype is C and t.tolist() == z.reshape(2, 2).T.tolist()


def test_parts_write_back():
    # real/imag/view_as_real of complex32 are float16 copies that write back (PyTorch: views)
    x = torch.tensor([1 + 2j, 3 - 1j, 0.5j], dtype=C)
    x.real[0] = 5
    assert x.tolist() == [5 + 2j, 3 - 1j, 0.5j]
    x.real = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float16)
    assert np.array_equal(vals(x), h([0.1 + 2j, 0.2 - 1j, 0.3 + 0.5j]))
    x.imag.mul_(2)
    assert np.array_equal(vals(x).imag, [4, -2, 1])
    y = torch.tensor([[1 + 2j, 3 - 1j], [4j, 1]], dtype=C)
    r = torch.view_as_real(y)
    r[0, 1, 1] = 7
    y[1].real.add_(1)                                 # through a view of y
    assert y.tolist() == [[1 + 2j, 3 + 7j], [1 + 4j, 2 + 0j]]
    v = y._version
    y.imag.zero_()
    assert y.tolist() == [[1, 3], [1, 2]] and y._version > v
