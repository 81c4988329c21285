"""Complex tensors, torch.fft and torch.special: regressions found by a differential sweep
against PyTorch 2.13 CPU (complex arithmetic/promotion/views, every torch.fft transform with
n/s/dim/norm and its gradient, stft/istft, window functions, every torch.special function on
edge values in float32/float64). Expected values here are hand-derived or NumPy / math float64
references; PyTorch's complex gradient convention is .grad = g * conj(f'(z)) for holomorphic f
(A^H g for a linear map)."""
import cmath
import math

import numpy as np
import pytest

import framework as torch

NAN, INF = float("nan"), float("inf")
CDTYPES = [torch.complex64, torch.complex128]


def _rng():
    return np.random.default_rng(7)


def _c(r, *shape):
    return r.standard_normal(shape) + 1j * r.standard_normal(shape)


def _tol(dtype):
    return 1e-12 if dtype in (torch.float64, torch.complex128) else 1e-5


def _close(t, expected, dtype):
    np.testing.assert_allclose(t.detach().cpu().cpu().numpy(), expected, rtol=_tol(dtype), atol=_tol(dtype))


def _parts(z):
    """(real, imag) of complex values as float64, NaN kept: an exact comparison key."""
    z = np.asarray(z, dtype=np.complex128)
    return np.stack([z.real, z.imag])


def _same(t, expected):
    """Exact agreement, NaN positions included, with expected rounded to t's dtype."""
    a = t.detach().cpu().cpu().numpy()
    a, e = _parts(a), _parts(np.asarray(expected).astype(a.dtype))
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e))
    np.testing.assert_array_equal(np.where(np.isnan(a), 0, a), np.where(np.isnan(e), 0, e))


# ---- complex gradients of matmul, einsum, prod, cumprod: conj(other operand) -------------------

@pytest.mark.parametrize("dtype", CDTYPES)
def test_complex_matmul_family_gradients_are_conjugate_transposes(dtype):
    r = _rng()
    a_np, c_np, g_np = _c(r, 3, 4), _c(r, 4, 2), _c(r, 3, 2)
    for f in (lambda a, c: a @ c, lambda a, c: torch.einsum("ij,jk->ik", a, c),
              lambda a, c: torch.matmul(a, c)):
        a = torch.tensor(a_np, dtype=dtype, requires_grad=True)
        c = torch.tensor(c_np, dtype=dtype, requires_grad=True)
        f(a, c).backward(torch.tensor(g_np, dtype=dtype))
        _close(a.grad, g_np @ c_np.conj().T, dtype)           # g c^H
        _close(c.grad, a_np.conj().T @ g_np, dtype)           # a^H g
    # vector forms: dot(x, y) = sum x y -> x.grad = g conj(y)
    x = torch.tensor(a_np[0], dtype=dtype, requires_grad=True)
    y = torch.tensor(c_np[:, 0], dtype=dtype, requires_grad=True)
    torch.dot(x, y).backward(torch.tensor(1 + 2j, dtype=dtype))
    _close(x.grad, (1 + 2j) * c_np[:, 0].conj(), dtype)
    _close(y.grad, (1 + 2j) * a_np[0].conj(), dtype)


@pytest.mark.parametrize("dtype", CDTYPES)
def test_complex_matmul_real_operand_gets_real_part(dtype):
    r = _rng()
    a_np, c_np, g_np = _c(r, 2, 3), r.standard_normal((3, 2)), _c(r, 2, 2)
    rd = torch.float64 if dtype is torch.complex128 else torch.float32
    a = torch.tensor(a_np, dtype=dtype, requires_grad=True)
    c = torch.tensor(c_np, dtype=rd, requires_grad=True)
    (a @ c.to(dtype)).backward(torch.tensor(g_np, dtype=dtype))
    assert c.grad.dtype is rd
    _close(c.grad, (a_np.conj().T @ g_np).real, rd)
    _close(a.grad, g_np @ c_np.T, dtype)


@pytest.mark.parametrize("dtype", CDTYPES)
def test_complex_prod_and_cumprod_gradients(dtype):
    z = np.array([1 + 2j, -0.5 + 1j, 2 - 1j])
    x = torch.tensor(z, dtype=dtype, requires_grad=True)
    torch.prod(x).backward(torch.tensor(1 + 0j, dtype=dtype))
    # d prod / d z_i = product of the others; .grad = its conjugate
    others = np.array([z[1] * z[2], z[0] * z[2], z[0] * z[1]])
    _close(x.grad, others.conj(), dtype)
    x = torch.tensor(z, dtype=dtype, requires_grad=True)
    torch.cumprod(x, 0).backward(torch.ones(3, dtype=dtype))
    # sum_k>=i prod_{j<=k, j!=i} z_j
    exp = np.array([1 + z[1] + z[1] * z[2], z[0] + z[0] * z[2], z[0] * z[1]])
    _close(x.grad, exp.conj(), dtype)


# ---- complex pointwise: sigmoid, acosh's gradient, sgn, pow and reciprocal at 0 / inf ----------

@pytest.mark.parametrize("dtype", CDTYPES)
def test_complex_sigmoid_is_one_over_one_plus_exp(dtype):
    z = np.array([1 + 2j, 3 - 1j, -0.5 + 0.25j, 0j])
    _close(torch.sigmoid(torch.tensor(z, dtype=dtype)), 1 / (1 + np.exp(-z)), dtype)
    x = torch.tensor(z, dtype=dtype, requires_grad=True)
    torch.sigmoid(x).backward(torch.ones(4, dtype=dtype))
    s = 1 / (1 + np.exp(-z))
    _close(x.grad, (s * (1 - s)).conj(), dtype)


@pytest.mark.parametrize("dtype", CDTYPES)
def test_complex_acosh_gradient_off_the_real_axis(dtype):
    # 1/(sqrt(z-1) sqrt(z+1)) differs from 1/sqrt(z^2-1) by sign left of the imaginary axis
    z = np.array([1 + 2j, -0.5 + 0.3j, 0.2 - 1j, -3 - 0.5j])
    x = torch.tensor(z, dtype=dtype, requires_grad=True)
    torch.acosh(x).backward(torch.ones(4, dtype=dtype))
    d = np.array([1 / (cmath.sqrt(w - 1) * cmath.sqrt(w + 1)) for w in z])
    _close(x.grad, d.conj(), dtype)
    assert abs(x.grad.cpu().cpu().numpy()[1] - (-0.18071 + 1.04326j)) < 1e-4      # not 0.1807 - 1.0433j


def test_real_acosh_gradient_does_not_overflow():
    x = torch.tensor([2.0, 1e200], dtype=torch.float64, requires_grad=True)
    torch.acosh(x).sum().backward()
    _close(x.grad, [1 / math.sqrt(3.0), 1e-200], torch.float64)


@pytest.mark.parametrize("dtype", CDTYPES)
def test_complex_sgn_divides_each_part_by_abs(dtype):
    z = [complex(0, INF), complex(0, -INF), complex(INF, 0), complex(INF, INF), 0j, 3 + 4j]
    # (inf+0j): inf/inf = NaN in the real part, 0/inf = 0 in the imaginary one
    _same(torch.sgn(torch.tensor(z, dtype=dtype)),
          [complex(0, NAN), complex(0, NAN), complex(NAN, 0), complex(NAN, NAN), 0j, 0.6 + 0.8j])


@pytest.mark.parametrize("dtype", CDTYPES)
def test_complex_pow_special_exponents_and_reciprocal(dtype):
    z = [complex(INF, 0), complex(-INF, 0), complex(0, INF), 0j, 2j, complex(-4, 0)]
    t = torch.tensor(z, dtype=dtype)
    # x ** 0.5 is sqrt: inf ** 0.5 = inf+0j (exp(0.5 log x) gives inf+nanj)
    _same(t ** 0.5, [complex(INF, 0), complex(0, INF), complex(INF, INF), 0j, 1 + 1j, 2j])
    _close(torch.tensor([1 + 1j, -3 - 4j], dtype=dtype) ** 0.5, [cmath.sqrt(1 + 1j), 1 - 2j],
           dtype)
    _same(t ** 0.5, torch.sqrt(t).cpu().numpy())
    # x ** -1 and reciprocal are 1 / x: 1 / 0j = inf+nanj, 1 / inf = 0
    recip = [0j, 0j, 0j, complex(INF, NAN), -0.5j, -0.25 + 0j]
    _same(torch.reciprocal(t), recip)
    _same(t ** -1, recip)
    _same(t ** -2, [complex(NAN, NAN)] * 3 + [complex(INF, NAN), -0.25 + 0j, 0.0625 + 0j])
    _same(t ** 2, np.power(np.array(z, dtype=np.complex128), 2.0))


# ---- isclose: no dtype promotion, like torch -----------------------------------------------------

def test_isclose_mixed_dtypes_raise():
    a = torch.tensor([1 + 1j, 2 + 0j])
    with pytest.raises(RuntimeError, match="ComplexFloat did not match Double"):
        torch.isclose(a, torch.tensor([1.0, 2.0], dtype=torch.float64))
    with pytest.raises(RuntimeError, match="Float did not match Double"):
        torch.allclose(torch.tensor([1.0]), torch.tensor([1.0], dtype=torch.float64))
    assert torch.isclose(a, a.clone()).tolist() == [True, True]


# ---- torch.fft ------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", [torch.fft.fftfreq, torch.fft.rfftfreq])
def test_fftfreq_dtype_errors(fn):
    for d in (torch.int64, torch.bool):
        with pytest.raises(RuntimeError, match="requires a floating point or complex dtype"):
            fn(4, dtype=d)
    with pytest.raises(NotImplementedError, match="arange_cpu"):
        fn(4, dtype=torch.complex64)
    np.testing.assert_array_equal(torch.fft.fftfreq(4, 0.5, dtype=torch.float64).cpu().numpy(),
                                  [0.0, 0.5, -1.0, -0.5])
    np.testing.assert_array_equal(torch.fft.rfftfreq(5, dtype=torch.float16).cpu().numpy(),
                                  np.array([0.0, 0.2, 0.4], dtype=np.float16))


@pytest.mark.parametrize("norm", [None, "forward", "ortho"])
def test_fft_with_n_gradient_is_adjoint(norm):
    # a linear map's .grad is A^H g: check <A x, g> = <x, A^H g> through padding/truncation
    r = _rng()
    for n in (3, 5, 11):
        x_np, g_np = _c(r, 5), _c(r, n)
        x = torch.tensor(x_np, requires_grad=True)
        y = torch.fft.fft(x, n=n, norm=norm)
        ref = np.fft.fft(x_np, n=n, norm=norm or "backward")
        _close(y, ref, torch.complex128)
        y.backward(torch.tensor(g_np))
        lhs = np.vdot(g_np, ref)                        # <g, A x>
        rhs = np.vdot(x.grad.cpu().cpu().numpy(), x_np)             # <A^H g, x>
        assert abs(lhs - rhs) < 1e-10 * max(1, abs(lhs))


# ---- torch.special ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_special_erfc_has_no_cancellation(dtype):
    x = [10.0, 5.5, 3.5, -1.0, 0.0, INF, -INF]
    r = torch.special.erfc(torch.tensor(x, dtype=dtype)).cpu().numpy().astype(np.float64)
    ref = np.array([math.erfc(v) for v in x], dtype=np.float64)
    if dtype is torch.float32:
        ref = ref.astype(np.float32).astype(np.float64)     # 2.1e-45 is a float32 subnormal
    np.testing.assert_allclose(r, ref, rtol=_tol(dtype) * 10, atol=0)
    assert r[0] > 0                                         # 1 - erf(10) would be 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_special_entr_nan_stays_nan(dtype):
    r = torch.special.entr(torch.tensor([NAN, 0.0, -1.0, 0.5, INF], dtype=dtype)).cpu().numpy()
    assert math.isnan(r[0])
    assert r[1] == 0 and r[2] == -INF and r[4] == -INF
    assert abs(r[3] - 0.5 * math.log(2)) < _tol(dtype)


def _ndtr(x):
    return 0.5 * math.erfc(-x / math.sqrt(2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_special_ndtri_tails(dtype):
    p = [1e-300, 1e-100, 1e-20, 1e-10, 1e-3, 0.1, 0.3, 0.5, 0.8, 0.95, 1 - 1e-10]
    if dtype is torch.float32:
        p = [v for v in p if 1e-37 < v < 1 - 1e-7]
    r = torch.special.ndtri(torch.tensor(p, dtype=dtype)).cpu().numpy().astype(np.float64)
    assert np.isfinite(r).all()             # sqrt(2) erfinv(2p - 1) gave -inf at the tiny ones
    pr = np.array(p, dtype=dtype.np if hasattr(dtype, "np") else None).astype(np.float64)
    back = np.array([_ndtr(v) if v < 0 else 1 - _ndtr(-v) for v in r])
    lo = pr < 0.5
    # round trip ndtr(ndtri(p)) = p: relative in the lower tail (ndtr is accurate there)
    np.testing.assert_allclose(back[lo], pr[lo], rtol=1e-12 if dtype is torch.float64 else 2e-5)
    if dtype is torch.float64:
        assert abs(r[0] - (-37.0470962993612)) < 1e-12
        assert abs(r[3] - (-6.361340902404056)) < 1e-13
    edge = torch.special.ndtri(torch.tensor([0.0, 1.0, -0.1, 1.1, NAN], dtype=dtype)).cpu().numpy()
    assert edge[0] == -INF and edge[1] == INF and np.isnan(edge[2:]).all()
    x = torch.tensor([0.02, 0.5, 0.9], dtype=dtype, requires_grad=True)
    v = torch.special.ndtri(x)
    v.sum().backward()
    # d ndtri / dp = sqrt(2 pi) exp(x^2 / 2)
    d = np.sqrt(2 * np.pi) * np.exp(v.detach().cpu().cpu().numpy().astype(np.float64) ** 2 / 2)
    np.testing.assert_allclose(x.grad.cpu().cpu().numpy(), d, rtol=1e-9 if dtype is torch.float64 else 1e-4)


@pytest.mark.parametrize("f", ["xlogy", "xlog1py"])
def test_special_xlogy_gradient_at_zero(f):
    log = math.log if f == "xlogy" else math.log1p
    pole = 0.0 if f == "xlogy" else -1.0
    x = torch.tensor([0.0, 0.0, -0.0, 2.0, 0.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.5, pole, 3.0, 0.5, NAN], dtype=torch.float64, requires_grad=True)
    out = getattr(torch.special, f)(x, y)
    v = out.detach().cpu().cpu().numpy()
    assert v[0] == 0 and v[1] == 0 and v[2] == 0 and not np.signbit(v[:3]).any()
    assert abs(v[3] - 2 * log(0.5)) < 1e-15 and math.isnan(v[4])
    out.sum().backward()
    gx = x.grad.cpu().cpu().numpy()
    # torch: d/dx = log(y) also at x == 0; 0 where log(y) is -inf
    np.testing.assert_allclose(gx[[0, 2, 3]], [log(0.5), log(3.0), log(0.5)], rtol=1e-15)
    assert gx[1] == 0 and math.isnan(gx[4])
    gy = y.grad.cpu().cpu().numpy()
    assert gy[0] == 0 and gy[2] == 0
    assert abs(gy[3] - 2 / (0.5 if f == "xlogy" else 1.5)) < 1e-15
    # a Python number for y
    x = torch.tensor([0.0, 1.5], requires_grad=True)
    getattr(torch.special, f)(x, 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.cpu().cpu().numpy(), [log(2.0)] * 2, rtol=1e-6)


def test_backward_casts_the_seed_gradient_to_the_output_dtype():
    # torch.tensor([[1+0j]]) is complex64; the complex128 matmul's gradient must still flow
    a = torch.tensor([[1 + 2j, 3 - 1j]], dtype=torch.complex128, requires_grad=True)
    c = torch.tensor([[2 - 1j], [1 + 1j]], dtype=torch.complex128, requires_grad=True)
    (a @ c).backward(torch.tensor([[1 + 0j]]))
    assert a.grad.dtype is torch.complex128
    _close(a.grad, [[2 + 1j, 1 - 1j]], torch.complex128)       # conj(c)^T
    _close(c.grad, [[1 - 2j], [3 + 1j]], torch.complex128)     # conj(a)^T
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    (x * x).backward(torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert x.grad.dtype is torch.float32
    _close(x.grad, [2.0, 8.0], torch.float32)


def test_bessel_and_polygamma_at_the_infinities_as_torch():
    # PyTorch 2.13's values: i0/i1 at +-inf are nan (exp(x) * i0e(x) = inf * 0), trigamma is
    # 0 at +inf and nan at -inf, higher polygammas nan at +inf and the pole sign at -inf
    x = torch.tensor([math.inf, -math.inf, 3.0], dtype=torch.float64)
    want = {
        "i0": [math.nan, math.nan, 4.880792585865024],
        "i1": [math.nan, math.nan, 3.953370217402609],
        "pg1": [0.0, math.nan, 0.39493406684822646],
        "pg2": [math.nan, -math.inf, -0.15411380631918858],
        "pg3": [math.nan, math.inf, 6 * (math.pi ** 4 / 90 - 1 - 1 / 16)],
    }
    got = {"i0": torch.special.i0(x), "i1": torch.special.i1(x),
           "pg1": torch.polygamma(1, x), "pg2": torch.polygamma(2, x),
           "pg3": torch.polygamma(3, x)}
    for k, w in want.items():
        np.testing.assert_allclose(got[k].cpu().numpy(), w, rtol=1e-12, err_msg=k)
