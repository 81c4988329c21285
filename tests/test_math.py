"""Pointwise math: every pointwise primitive against a float64 NumPy reference, the torch-named
wrappers, operators and their in-place forms, out=, and the errors PyTorch raises."""
import math

import numpy as np
import pytest

import scipy.special as sps

import framework as torch
from compiler import REGISTRY
from conftest import assert_close, to_np

_erf = np.vectorize(math.erf, otypes=[np.float64])

# float64 reference and input domain for every pointwise primitive; a primitive added to the
# registry without an entry here fails test_every_pointwise_primitive_has_a_reference
UNARY = {
    "copy": (lambda x: x, "any"), "neg": (np.negative, "any"), "abs": (np.abs, "any"),
    "sign": (np.sign, "any"), "exp": (np.exp, "any"), "exp2": (np.exp2, "any"),
    "log": (np.log, "pos"), "log2": (np.log2, "pos"), "log10": (np.log10, "pos"),
    "log1p": (np.log1p, "pos"), "expm1": (np.expm1, "any"), "sqrt": (np.sqrt, "pos"),
    "rsqrt": (lambda x: 1 / np.sqrt(x), "pos"), "sin": (np.sin, "any"), "cos": (np.cos, "any"),
    "tan": (np.tan, "unit"), "asin": (np.arcsin, "unit"), "acos": (np.arccos, "unit"),
    "atan": (np.arctan, "any"), "sinh": (np.sinh, "any"), "cosh": (np.cosh, "any"),
    "tanh": (np.tanh, "any"), "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), "any"),
    "relu": (lambda x: np.where(x < 0, 0.0, x), "special"),
    "erf": (_erf, "any"), "floor": (np.floor, "any"), "ceil": (np.ceil, "any"),
    "trunc": (np.trunc, "any"), "round": (np.round, "any"),
    "reciprocal": (lambda x: 1 / x, "pos"), "logical_not": (np.logical_not, "any"),
    "isnan": (np.isnan, "special"), "isinf": (np.isinf, "special"),
    "isfinite": (np.isfinite, "special"), "bitwise_not": (np.invert, "int"),
    # special functions: scipy.special is the float64 reference
    "lgamma": (sps.gammaln, "any"), "digamma": (sps.psi, "any"), "erfinv": (sps.erfinv, "unit"),
    "i0": (sps.i0, "any"), "i0e": (sps.i0e, "any"), "i1": (sps.i1, "any"), "i1e": (sps.i1e, "any"),
    # complex-aware ops on real inputs (complex inputs: tests/test_complex.py)
    "sgn": (np.sign, "any"), "conj": (lambda x: x, "any"),
    "angle": (lambda x: np.where(x < 0, np.pi, 0.0), "any"),
    # inverse hyperbolics, erfc (scipy: accurate in the tail), the sign bit (-0.0, -nan too)
    "asinh": (np.arcsinh, "any"), "acosh": (np.arccosh, "ge1"), "atanh": (np.arctanh, "unit"),
    "erfc": (sps.erfc, "any"), "signbit": (np.signbit, "special"),
    # the rest of torch.special (no gradients; tests/test_special_more.py for edges)
    "airy_ai": (lambda x: sps.airy(x)[0], "pos"), "bessel_j0": (sps.j0, "any"),
    "bessel_j1": (sps.j1, "any"), "bessel_y0": (sps.y0, "pos"), "bessel_y1": (sps.y1, "pos"),
    "modified_bessel_i0": (sps.i0, "any"), "modified_bessel_i1": (sps.i1, "any"),
    "modified_bessel_k0": (sps.k0, "pos"), "modified_bessel_k1": (sps.k1, "pos"),
    "scaled_modified_bessel_k0": (sps.k0e, "pos"), "scaled_modified_bessel_k1": (sps.k1e, "pos"),
    "spherical_bessel_j0": (lambda x: sps.spherical_jn(0, x), "any"),
}


def _deg(n):
    return np.trunc(np.asarray(n, dtype=np.float64)).astype(np.int64)


def _cheb_v(n, x):
    n = _deg(n)
    return sps.eval_chebyu(n, x) - np.where(n > 0, sps.eval_chebyu(np.maximum(n - 1, 0), x), 0.0)


def _cheb_w(n, x):
    n = _deg(n)
    return sps.eval_chebyu(n, x) + np.where(n > 0, sps.eval_chebyu(np.maximum(n - 1, 0), x), 0.0)


_POLY = {"t": lambda n, x: sps.eval_chebyt(_deg(n), x),
         "u": lambda n, x: sps.eval_chebyu(_deg(n), x), "v": _cheb_v, "w": _cheb_w}
POLY_REFS = {}
for _k, _f in _POLY.items():
    POLY_REFS[f"chebyshev_polynomial_{_k}"] = (lambda f: lambda x, n: f(n, x))(_f)
    POLY_REFS[f"shifted_chebyshev_polynomial_{_k}"] = (lambda f: lambda x, n: f(n, 2 * x - 1))(_f)
POLY_REFS.update({
    "hermite_polynomial_h": lambda x, n: sps.eval_hermite(_deg(n), x),
    "hermite_polynomial_he": lambda x, n: sps.eval_hermitenorm(_deg(n), x),
    "laguerre_polynomial_l": lambda x, n: sps.eval_laguerre(_deg(n), x),
    "legendre_polynomial_p": lambda x, n: sps.eval_legendre(_deg(n), x)})
# PyTorch's own Bessel fits (kept: Kiln matches torch's values, tests/test_special_more.py)
# are good to about 1e-8 absolute against scipy's
LOOSE = {"bessel_j0": 2e-8, "bessel_j1": 2e-8, "bessel_y0": 2e-8, "bessel_y1": 2e-8}
BINARY = {
    "add": (np.add, "any"), "sub": (np.subtract, "any"), "mul": (np.multiply, "any"),
    "div": (np.divide, "nonzero"), "floor_divide": (np.floor_divide, "nonzero"),
    "remainder": (np.remainder, "nonzero"), "fmod": (np.fmod, "nonzero"),
    "pow": (np.power, "pospow"), "maximum": (np.maximum, "any"), "minimum": (np.minimum, "any"),
    "atan2": (np.arctan2, "any"), "eq": (np.equal, "ties"), "ne": (np.not_equal, "ties"),
    "lt": (np.less, "ties"), "le": (np.less_equal, "ties"), "gt": (np.greater, "ties"),
    "ge": (np.greater_equal, "ties"), "logical_and": (np.logical_and, "ties"),
    "logical_or": (np.logical_or, "ties"), "logical_xor": (np.logical_xor, "ties"),
    "bitwise_and": (np.bitwise_and, "int"), "bitwise_or": (np.bitwise_or, "int"),
    "bitwise_xor": (np.bitwise_xor, "int"), "bitwise_left_shift": (np.left_shift, "shift"),
    "bitwise_right_shift": (np.right_shift, "shift"),
    "copysign": (np.copysign, "any"), "fmax": (np.fmax, "ties"), "fmin": (np.fmin, "ties"),
    "nextafter": (np.nextafter, "ties"), "gcd": (np.gcd, "int"),
    "zeta": (sps.zeta, "zeta"),
}
BINARY.update({k: (f, "poly") for k, f in POLY_REFS.items()})
OTHER = {"where", "cast", "class_index",      # tested by hand below
         "polygamma"}                          # (n attribute) tests/test_special_math.py


def _inputs(domain, rng, shape=(4, 5)):
    if domain == "pos":
        return rng.uniform(0.1, 3.0, shape)
    if domain == "unit":
        return rng.uniform(-0.9, 0.9, shape)
    if domain == "ge1":
        return rng.uniform(1.0, 5.0, shape)
    if domain == "special":
        x = rng.standard_normal(shape)
        x.flat[:5] = [np.nan, np.inf, -np.inf, -0.0, -np.nan]
        return x
    if domain == "int":
        return rng.integers(-50, 50, shape)
    x = rng.standard_normal(shape) * 2
    x.flat[0] = 2.5          # a round-half-even case for round
    return x


def test_every_pointwise_primitive_has_a_reference():
    pointwise = {n for n, p in REGISTRY.items() if p.kind == "pointwise"}
    missing = pointwise - set(UNARY) - set(BINARY) - OTHER
    assert not missing, f"pointwise primitives without a NumPy reference: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_primitive_matches_numpy(name, rng):
    ref, domain = UNARY[name]
    x = _inputs(domain, rng)
    dtype = torch.int64 if domain == "int" else torch.float64
    r = torch._dispatch.apply(REGISTRY[name], torch.tensor(x, dtype=dtype))
    tol = LOOSE.get(name, 1e-12)
    assert_close(r, ref(x), rtol=tol, atol=tol)
    if domain != "int":      # float32 path: same values at float32 precision
        r32 = torch._dispatch.apply(REGISTRY[name], torch.tensor(x, dtype=torch.float32))
        exp_dtype = torch.bool if name in ("isnan", "isinf", "isfinite", "logical_not", "signbit") \
            else torch.float32
        assert r32.dtype == exp_dtype
        assert_close(r32, ref(x.astype(np.float32).astype(np.float64)), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_primitive_matches_numpy(name, rng):
    ref, domain = BINARY[name]
    if domain in ("int", "shift"):
        a = rng.integers(-50, 50, (4, 5))
        b = rng.integers(0, 6, (1, 5)) if domain == "shift" else rng.integers(-50, 50, (1, 5))
        if domain == "shift":
            a = np.abs(a)
        ta, tb = torch.tensor(a), torch.tensor(b)
        assert_close(torch._dispatch.apply(REGISTRY[name], ta, tb), ref(a, b), rtol=0, atol=0)
        return
    a = rng.standard_normal((4, 5)) * 3
    b = rng.standard_normal((1, 5)) * 3          # broadcasting on the way
    if domain == "nonzero":
        b = np.where(np.abs(b) < 0.5, 1.5, b)
    if domain == "pospow":
        a = np.abs(a) + 0.1
    if domain == "ties":
        a[0, :] = b[0, :]
        a[1, 0] = 0.0
    if domain == "poly":        # x in [-1.5, 1.5] (and 0.5 for the shifted kinds), n = 0..12
        a = rng.uniform(-1.5, 1.5, (4, 5))
        b = rng.integers(0, 13, (1, 5)).astype(np.float64)
    if domain == "zeta":
        a = rng.uniform(1.2, 6.0, (4, 5))
        b = rng.uniform(0.2, 4.0, (1, 5))
    r = torch._dispatch.apply(REGISTRY[name], torch.tensor(a, dtype=torch.float64),
                              torch.tensor(b, dtype=torch.float64))
    assert r.shape == (4, 5)
    assert_close(r, ref(a, b), rtol=1e-12, atol=1e-12)
    # a Python scalar operand takes the other operand's dtype
    s = 1.75
    r2 = torch._dispatch.apply(REGISTRY[name], torch.tensor(a, dtype=torch.float32), s)
    assert r2.dtype in (torch.float32, torch.bool)
    assert_close(r2, ref(a.astype(np.float32).astype(np.float64), s), rtol=3e-6, atol=3e-6)


def test_where_and_cast_primitives(rng):
    c = rng.random((3, 4)) < 0.5
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((1, 4))
    r = torch.where(torch.tensor(c), torch.tensor(a), torch.tensor(b))
    assert_close(r, np.where(c, a, b), rtol=0, atol=0)
    assert torch.where(torch.tensor(c), 1, 0).dtype == torch.int64
    assert torch.where(torch.tensor(c), 1.0, 0).dtype == torch.float32
    assert torch.where(torch.tensor(c), torch.ones(3, 4, dtype=torch.int32), 2.5).dtype == \
        torch.float32
    x = torch.tensor([1.7, -2.7, 0.0])
    assert x.to(torch.int32).tolist() == [1, -2, 0]          # casts truncate toward zero
    assert x.bool().tolist() == [True, True, False]
    with pytest.raises(RuntimeError):
        torch.where(torch.tensor([1.0, 0.0]), 1, 0)          # condition must be bool


# ---- values from the seed catalogues ---------------------------------------------------------

def test_seed_inplace_chain_add_alpha():
    t = torch.tensor([2., 2.])
    t1 = torch.tensor([3., 3.])
    r = t.mul_(0.9).add_(t1, alpha=1 - 0.9)
    assert r is t
    assert str(t) == "tensor([2.1000, 2.1000])"


def test_seed_mul_outer_broadcast():
    a = torch.tensor([[1.1207], [-0.3137], [0.0700], [0.8378]])
    b = torch.tensor([[0.5146, 0.1216, -0.5244, 2.2382]])
    r = torch.mul(a, b)
    assert r.shape == (4, 4)
    assert_close(r, [[0.5767, 0.1363, -0.5877, 2.5083], [-0.1614, -0.0382, 0.1645, -0.7021],
                     [0.0360, 0.0085, -0.0367, 0.1567], [0.4312, 0.1019, -0.4394, 1.8753]],
                 atol=2e-4)


def test_seed_bitwise_uint8():
    x1 = torch.tensor([1, 2, 3], dtype=torch.uint8)
    x2 = torch.tensor([1, 1, 1], dtype=torch.uint8)
    for r, exp in ((x1 & x2, [1, 0, 1]), (x1 | x2, [1, 3, 3]), (~x1, [254, 253, 252]),
                   (x1 ^ x2, [0, 3, 2]), (x1 << 1, [2, 4, 6]), (x1.bitwise_left_shift(1), [2, 4, 6]),
                   (x1.bitwise_or(x2), [1, 3, 3])):
        assert r.dtype == torch.uint8
        assert r.tolist() == exp


def test_seed_logical_ops_on_bool():
    x1 = torch.tensor([-0.9, 0, True, False], dtype=torch.bool)
    assert x1.tolist() == [True, False, True, False]
    x2 = torch.tensor([True, True, False, False])
    assert (x1 & x2).tolist() == [True, False, False, False]
    assert (x1 | x2).tolist() == [True, True, True, False]
    assert (x1 ^ x2).tolist() == [False, True, True, False]
    assert (~x1).tolist() == [False, True, False, True]
    assert x1.logical_xor(x2).tolist() == [False, True, True, False]
    y = x1.clone()
    assert y.logical_xor_(x2) is y and y.tolist() == [False, True, True, False]
    assert y.logical_not_().tolist() == [True, False, False, True]


def test_seed_numpy_view_sees_inplace_add():
    x = torch.ones(2)
    y = x.numpy()
    x += 1
    assert str(x) == "tensor([2., 2.])" and y.tolist() == [2.0, 2.0]
    t = torch.zeros(3)
    torch.add(t, 1, out=t)
    assert t.tolist() == [1.0, 1.0, 1.0]


# ---- operators, reflected and in-place forms ---------------------------------------------------

def test_operators_and_reflected_forms():
    a = torch.tensor([1.0, -2.0, 4.0])
    an = np.array([1.0, -2.0, 4.0])
    cases = [(a + 2, an + 2), (2 + a, 2 + an), (a - 2, an - 2), (2 - a, 2 - an), (a * 3, an * 3),
             (3 * a, 3 * an), (a / 2, an / 2), (2 / a, 2 / an), (a // 3, an // 3),
             (7 // a, 7 // an), (a % 3, an % 3), (7 % a, 7 % an), (a ** 2, an ** 2),
             (2 ** a, 2.0 ** an), (-a, -an), (abs(a), np.abs(an))]
    for r, e in cases:
        assert r.dtype == torch.float32
        assert_close(r, e, rtol=1e-6)
    m = torch.tensor([[1., 2.], [3., 4.]])
    assert (m @ m).tolist() == [[7., 10.], [15., 22.]]
    assert (a > 0).tolist() == [True, False, True] and (0 < a).tolist() == [True, False, True]
    assert (a == 4).dtype == torch.bool


@pytest.mark.parametrize("op,np_op", [("__iadd__", np.add), ("__isub__", np.subtract),
                                      ("__imul__", np.multiply), ("__itruediv__", np.divide),
                                      ("__ifloordiv__", np.floor_divide), ("__imod__", np.remainder),
                                      ("__ipow__", np.power)])
def test_inplace_operators_write_into_the_same_tensor(op, np_op):
    x = torch.tensor([1.5, 2.0, 3.0])
    before = x
    data = x.numpy()
    r = getattr(x, op)(2)
    assert r is before
    assert_close(x, np_op(np.array([1.5, 2.0, 3.0]), 2), rtol=1e-6)
    assert np.shares_memory(data, x.numpy())       # the buffer was written, not replaced


def test_inplace_int_ops_keep_dtype_and_reject_float_results():
    x = torch.tensor([1, 2, 3])
    x += 1
    x *= 2
    assert x.dtype == torch.int64 and x.tolist() == [4, 6, 8]
    for bad in (lambda: x.add_(1.5), lambda: x.div_(2), lambda: x.mul_(torch.tensor([1.0])),
                lambda: x.sqrt_(), lambda: x.sub_(0.5), lambda: x.__itruediv__(2)):
        with pytest.raises(RuntimeError, match="can't be cast"):
            bad()
        assert x.tolist() == [4, 6, 8] and x.dtype == torch.int64
    b = torch.tensor([True, False])
    with pytest.raises(RuntimeError):
        b.add_(1)
    assert b.tolist() == [True, False]
    y = torch.ones(1, 3)
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        y.add_(torch.ones(2, 3))
    assert y.tolist() == [[1.0, 1.0, 1.0]]


def test_inplace_methods_for_every_unary_primitive(rng):
    x = rng.uniform(0.1, 0.9, (2, 3))
    for name in ("exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "sigmoid", "floor", "ceil",
                 "trunc", "neg", "abs", "reciprocal", "rsqrt", "log1p", "expm1", "asin", "acos",
                 "atan", "sinh", "cosh", "erf", "log2", "log10", "exp2", "round", "sign",
                 "square", "frac", "fix"):
        t = torch.tensor(x, dtype=torch.float64)
        out_of_place = getattr(torch, name)(t)
        assert getattr(t, name + "_")() is t, name
        assert_close(t, to_np(out_of_place), rtol=0, atol=0)


# ---- torch-named wrappers ----------------------------------------------------------------------

def test_add_sub_alpha_and_dtype():
    a, b = torch.tensor([1., 2.]), torch.tensor([10., 20.])
    assert torch.add(a, b, alpha=0.5).tolist() == [6., 12.]
    assert torch.sub(a, b, alpha=2).tolist() == [-19., -38.]
    assert a.clone().sub_(b, alpha=0.1).tolist() == pytest.approx([0., 0.], abs=1e-6)
    i = torch.tensor([1, 2])
    assert torch.add(i, i, alpha=3).tolist() == [4, 8]
    with pytest.raises(RuntimeError, match="alpha"):
        torch.add(i, i, alpha=0.5)
    t16 = torch.tensor([1., 2.], dtype=torch.float16)
    assert torch.add(t16, torch.tensor([True, False]), alpha=0.5).dtype == torch.float16


def test_div_rounding_modes():
    a = torch.tensor([7, -7, 7, -7])
    b = torch.tensor([2, 2, -2, -2])
    assert torch.div(a, b).tolist() == [3.5, -3.5, -3.5, 3.5]
    assert torch.div(a, b, rounding_mode="trunc").tolist() == [3, -3, -3, 3]
    assert torch.div(a, b, rounding_mode="floor").tolist() == [3, -4, -4, 3]
    assert torch.div(a, b, rounding_mode="trunc").dtype == torch.int64
    big = torch.tensor([2 ** 53 + 1])        # exact: no detour through float
    assert torch.div(big, 1, rounding_mode="trunc").item() == 2 ** 53 + 1
    f = torch.tensor([7.5, -7.5])
    assert torch.div(f, 2, rounding_mode="trunc").tolist() == [3.0, -3.0]
    assert torch.div(f, 2, rounding_mode="floor").tolist() == [3.0, -4.0]
    assert torch.true_divide(a, 2).dtype == torch.float32
    with pytest.raises(RuntimeError, match="rounding_mode"):
        torch.div(a, b, rounding_mode="round")
    x = a.clone()
    assert x.div_(b, rounding_mode="floor") is x and x.tolist() == [3, -4, -4, 3]


def test_integer_division_by_zero_raises_and_leaves_data():
    a = torch.tensor([5, 6])
    for f in (lambda: a // 0, lambda: a % torch.tensor([1, 0]), lambda: torch.fmod(a, 0),
              lambda: torch.div(a, 0, rounding_mode="trunc"), lambda: a.floor_divide_(0)):
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            f()
    assert a.tolist() == [5, 6]
    assert torch.div(a, 0).tolist() == [math.inf, math.inf]      # true division is float


def test_remainder_fmod_signs():
    a = torch.tensor([-3., 3., -3., 3.])
    b = torch.tensor([2., 2., -2., -2.])
    assert torch.remainder(a, b).tolist() == [1., 1., -1., -1.]
    assert torch.fmod(a, b).tolist() == [-1., 1., -1., 1.]


def test_pow_rules():
    assert torch.pow(torch.tensor([2, 3]), 2).tolist() == [4, 9]
    assert torch.pow(torch.tensor([4.]), 0.5).tolist() == [2.0]
    assert torch.pow(2, torch.tensor([1, 3])).tolist() == [2, 8]
    assert torch.float_power(torch.tensor([2]), 2).dtype == torch.float64
    with pytest.raises(RuntimeError, match="negative integer powers"):
        torch.tensor([2, 3]) ** -1
    assert (torch.tensor([2.]) ** -1).tolist() == [0.5]
    x = torch.tensor([1, 2])
    with pytest.raises(RuntimeError):
        x.pow_(0.5)
    assert x.tolist() == [1, 2]


def test_round_decimals_and_frac():
    x = torch.tensor([1.2345, -2.5, 0.5, 1.5, 123.456], dtype=torch.float64)
    assert torch.round(x).tolist() == [1.0, -2.0, 0.0, 2.0, 123.0]     # half to even
    assert torch.round(x, decimals=2).tolist() == pytest.approx([1.23, -2.5, 0.5, 1.5, 123.46])
    assert torch.round(x, decimals=-1).tolist() == [0.0, -0.0, 0.0, 0.0, 120.0]
    assert torch.frac(x).tolist() == pytest.approx([0.2345, -0.5, 0.5, 0.5, 0.456])
    assert torch.fix(x).tolist() == [1.0, -2.0, 0.0, 1.0, 123.0]
    with pytest.raises(RuntimeError):
        torch.frac(torch.tensor([1, 2]))
    with pytest.raises(RuntimeError):
        torch.round(torch.tensor([1, 2]), decimals=1)


def test_clamp_family():
    x = torch.tensor([-2.0, -0.5, 0.5, 2.0, math.nan])
    r = torch.clamp(x, -1, 1)
    np.testing.assert_array_equal(to_np(r), [-1.0, -0.5, 0.5, 1.0, np.nan])
    assert torch.clip(x, min=0.4, max=0.6).tolist()[:4] == pytest.approx([0.4, 0.4, 0.5, 0.6])
    assert torch.clamp_min(x, 0).tolist()[:4] == [0.0, 0.0, 0.5, 2.0]
    assert torch.clamp_max(x, 0).tolist()[:4] == [-2.0, -0.5, 0.0, 0.0]
    assert torch.clamp(x, min=2, max=1).tolist()[:4] == [1.0] * 4       # min > max: all max
    lo, hi = torch.tensor([0., 0., 1., 1., 0.]), torch.tensor([1., 1., 1., 1., 1.])
    assert torch.clamp(x, lo, hi).tolist()[:4] == [0.0, 0.0, 1.0, 1.0]
    i = torch.tensor([-3, 0, 3])
    assert torch.clamp(i, -1, 1).dtype == torch.int64
    assert torch.clamp(i, -1.5, 1.5).dtype == torch.float32            # result_type rule
    assert torch.clamp(i, -1.5, 1.5).tolist() == [-1.5, 0.0, 1.5]
    y = i.clone()
    assert y.clamp_(min=0) is y and y.tolist() == [0, 0, 3]
    with pytest.raises(RuntimeError):
        i.clamp_(-1.5, 1.5)
    assert i.tolist() == [-3, 0, 3]
    with pytest.raises(RuntimeError, match="min' or 'max"):
        torch.clamp(x)
    assert (torch.tensor([-1., 2.]).clamp(min=0)).tolist() == [0.0, 2.0]


def test_clamp_refuses_a_tensor_bound_with_a_number_w3():
    # torch's overloads: Tensor bounds or Number bounds (a 0-d tensor passes as a Number)
    x = torch.tensor([1.5, -2.0, 0.25])
    for args in ((torch.tensor([0.0, 0.0, 0.0]), 1), (-1, torch.tensor([1.0, 1.0, 1.0]))):
        with pytest.raises(TypeError, match="invalid combination of arguments"):
            torch.clamp(x, *args)
        with pytest.raises(TypeError, match="invalid combination of arguments"):
            x.clamp_(*args)
    assert x.tolist() == [1.5, -2.0, 0.25]
    assert torch.clamp(x, min=0, max=torch.tensor(1.0)).tolist() == [1.0, 0.0, 0.25]
    assert torch.clamp(x, torch.tensor([0.0, -1.0, 0.5]), None).tolist() == [1.5, -1.0, 0.5]
    assert torch.clamp(x, torch.tensor([0.0, -1.0, 0.5]), torch.tensor(1.0)).tolist() == \
        [1.0, -1.0, 0.5]


def test_lerp_maximum_minimum_misc():
    a, b = torch.tensor([0., 10.]), torch.tensor([10., 20.])
    assert torch.lerp(a, b, 0.25).tolist() == [2.5, 12.5]
    assert torch.lerp(a, b, torch.tensor([0., 1.])).tolist() == [0., 20.]
    with pytest.raises(RuntimeError):
        torch.lerp(torch.tensor([1]), torch.tensor([2]), 0.5)
    n = torch.tensor([1., math.nan, 3.])
    m = torch.maximum(n, torch.tensor([2., 0., 2.]))
    np.testing.assert_array_equal(to_np(m), [2., np.nan, 3.])           # NaN propagates
    assert torch.max(a, b).tolist() == [10., 20.]                        # elementwise form
    assert torch.min(a, b).tolist() == [0., 10.]
    assert torch.square(torch.tensor([3])).tolist() == [9]
    assert torch.reciprocal(torch.tensor([4])).tolist() == [0.25]
    assert torch.sign(torch.tensor([-2., 0., 3.])).tolist() == [-1., 0., 1.]
    assert torch.atan2(torch.tensor([1.]), torch.tensor([-1.])).item() == pytest.approx(
        3 * math.pi / 4)
    assert torch.positive(a) is a
    with pytest.raises(TypeError):
        torch.maximum(a, 1)


def test_predicates_isclose_allclose_equal():
    x = torch.tensor([1.0, math.inf, -math.inf, math.nan])
    assert torch.isnan(x).tolist() == [False, False, False, True]
    assert torch.isinf(x).tolist() == [False, True, True, False]
    assert torch.isfinite(x).tolist() == [True, False, False, False]
    assert torch.isposinf(x).tolist() == [False, True, False, False]
    a = torch.tensor([1.0, 2.0])
    assert torch.allclose(a, a + 1e-9) and not torch.allclose(a, a + 1e-3)
    assert torch.isclose(torch.tensor([math.nan]), torch.tensor([math.nan]),
                         equal_nan=True).tolist() == [True]
    assert torch.isclose(x, x).tolist() == [True, True, True, False]
    assert torch.equal(a, a.clone()) and not torch.equal(a, torch.tensor([1.0, 2.0, 3.0]))
    assert torch.equal(torch.tensor([True]), torch.tensor([True]))


def test_comparisons_promote_before_comparing():
    u = torch.tensor([1, 200], dtype=torch.uint8)
    assert (u < -3).tolist() == [True, True]      # -3 wraps to 253 in uint8, like PyTorch
    assert (torch.tensor([1, 2]) == torch.tensor([1.0, 2.5])).tolist() == [True, False]
    assert (torch.tensor([2 ** 62 + 1]) > 2 ** 62).item()


def test_out_argument():
    a, b = torch.tensor([1., 2.]), torch.tensor([3., 4.])
    out = torch.empty(5, 3)
    r = torch.add(a, b, out=out)
    assert r is out and out.shape == (2,) and out.tolist() == [4., 6.]   # resized like torch
    o64 = torch.zeros(2, dtype=torch.float64)
    torch.mul(a, b, out=o64)
    assert o64.dtype == torch.float64 and o64.tolist() == [3., 8.]
    oi = torch.zeros(2, dtype=torch.int64)
    with pytest.raises(RuntimeError, match="can't be cast"):
        torch.add(a, b, out=oi)
    assert oi.tolist() == [0, 0]
    ob = torch.zeros(2, dtype=torch.bool)
    assert torch.eq(a, a, out=ob) is ob and ob.tolist() == [True, True]
    assert torch.exp(torch.tensor([0.]), out=torch.empty(1)).tolist() == [1.0]


# ---- errors --------------------------------------------------------------------------------------

def test_broadcast_mismatch_names_op_and_shapes():
    with pytest.raises(RuntimeError, match=r"add.*\(3\).*\(4\).*\[2, 3\].*\[4\]"):
        torch.ones(2, 3) + torch.ones(4)
    with pytest.raises(RuntimeError, match="mul"):
        torch.mul(torch.ones(2), torch.ones(3))


def test_dtype_errors():
    f = torch.tensor([1.5, 2.5])
    for bad in (lambda: f & 1, lambda: f | f, lambda: torch.bitwise_xor(f, f), lambda: f << 1,
                lambda: torch.bitwise_not(f)):
        with pytest.raises(RuntimeError, match="not implemented for 'Float'"):
            bad()
    b = torch.tensor([True, False])
    with pytest.raises(RuntimeError, match="two bool tensors"):
        b - b
    with pytest.raises(RuntimeError, match="with a bool tensor"):
        b - 1
    with pytest.raises(RuntimeError, match="Negation"):
        -b
    for bad in (lambda: torch.abs(b), lambda: torch.floor(b), lambda: b // b, lambda: b % b):
        with pytest.raises(RuntimeError, match="not implemented for 'Bool'"):
            bad()
    with pytest.raises(TypeError):
        torch.eq(1, f)


def test_scalar_wraps_into_small_integer_dtypes():
    u = torch.tensor([8, 6, 5], dtype=torch.uint8)
    assert (u + -3).tolist() == [5, 3, 2] and (u + -3).dtype == torch.uint8
    assert (u * -3).tolist() == [232, 238, 241]
    i8 = torch.ones(2, dtype=torch.int8)
    assert (i8 + 1000).tolist() == [-23, -23]


def test_torch_cross_check_of_pointwise_dtypes():
    T = pytest.importorskip("torch")
    names = ["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64"]
    for op in ("add", "mul", "div", "floor_divide", "remainder", "maximum", "eq", "pow",
               "bitwise_and", "atan2"):
        for d1 in names:
            for d2 in names:
                a = [1, 2, 3]
                try:
                    rt = getattr(T, op)(T.tensor(a, dtype=getattr(T, d1)),
                                        T.tensor(a, dtype=getattr(T, d2)))
                except Exception as e:
                    with pytest.raises(type(e) if isinstance(e, (RuntimeError, TypeError))
                                       else Exception):
                        getattr(torch, op)(torch.tensor(a, dtype=getattr(torch, d1)),
                                           torch.tensor(a, dtype=getattr(torch, d2)))
                    continue
                rk = getattr(torch, op)(torch.tensor(a, dtype=getattr(torch, d1)),
                                        torch.tensor(a, dtype=getattr(torch, d2)))
                assert str(rk.dtype) == str(rt.dtype), (op, d1, d2)
                np.testing.assert_allclose(to_np(rk).astype(np.float64),
                                           rt.double().numpy(), rtol=1e-3)


def test_class_index_passes_targets_and_rejects_out_of_range():
    p = REGISTRY["class_index"]
    t = torch.tensor([0, 4, -100, 2])
    r = torch._dispatch.apply(p, t, classes=5, ignore_index=-100)
    assert to_np(r).tolist() == [0, 4, -100, 2] and r.dtype == torch.int64
    for bad, shown in (([0, 5], 5), ([-1, 2], -1), ([-100, 7, 9], 7)):
        with pytest.raises(IndexError, match=f"Target {shown} is out of bounds"):
            torch._dispatch.apply(p, torch.tensor(bad), classes=5, ignore_index=-100)
    with pytest.raises(RuntimeError, match="class_index: expected int64"):
        torch._dispatch.apply(p, torch.tensor([0.0]), classes=5, ignore_index=-100)


def test_integer_pow_with_negative_tensor_exponents():
    # PyTorch's integer x ** -n: 1 for x = 1, +-1 for x = -1 (by the exponent's parity), else 0
    # (NumPy raises ValueError); eager, the compiled NumPy program and kernels agree
    a = torch.tensor([2, -1, -1, 1, 0, 3, 2])
    e = torch.tensor([-1, -3, -2, -2, 2, -1, 3])
    want = [0, -1, 1, 1, 0, 0, 8]
    assert torch.pow(a, e).tolist() == want
    assert (a ** e).tolist() == want
    f = torch.compile(lambda a, e: a ** e + 0)
    assert f(a, e).tolist() == want and f(a, e).tolist() == want
    with pytest.raises(RuntimeError, match="Integers to negative integer powers"):
        torch.pow(a, -1)                 # a Python exponent: PyTorch's error


def test_torch_parity_of_small_api_corners():
    # values checked against PyTorch 2.13 by hand
    assert torch.logit(torch.tensor([0, 1, 2], dtype=torch.uint8)).tolist() == \
        [-math.inf, math.inf, pytest.approx(float("nan"), nan_ok=True)]
    assert torch.logit(torch.tensor([False, True])).dtype == torch.float32
    h = torch.hypot(torch.tensor([3.0]), torch.tensor([4]))          # float with int promotes
    assert h.dtype == torch.float32 and h.tolist() == [5.0]
    with pytest.raises(NotImplementedError, match="hypot_cpu"):
        torch.hypot(torch.tensor([3]), torch.tensor([4]))
    x = torch.tensor([1.0, 2.0, 0.0])
    assert_close(torch.xlogy(x, 2), [math.log(2), 2 * math.log(2), 0.0])
    assert_close(torch.xlogy(2, x), [0.0, 2 * math.log(2), -math.inf])
    assert_close(torch.xlogy(torch.tensor([0.0, 0.0]), torch.tensor([float("nan"), 3.0])),
                 [float("nan"), 0.0])
    s, m = torch.std_mean(torch.tensor([[1.0, 2.0], [3.0, 5.0]]), True)   # legacy (x, unbiased)
    assert s.shape == () and abs(float(s) - 1.707825) < 1e-5 and float(m) == 2.75
    v, m = torch.var_mean(torch.tensor([1.0, 2.0, 4.0]), False)
    assert abs(float(v) - 14 / 9) < 1e-6 and abs(float(m) - 7 / 3) < 1e-6
    k = torch.kron(torch.ones(3, 4), torch.arange(4.0))     # b gains a leading 1
    assert k.shape == (3, 16) and k[1].tolist() == [0.0, 1.0, 2.0, 3.0] * 4
    a, b = torch.atleast_2d(torch.tensor(1.0), torch.ones(3))
    assert a.shape == (1, 1) and b.shape == (1, 3)
    assert [t.shape for t in torch.atleast_1d([torch.tensor(1), torch.ones(2, 2)])] == [(1,), (2, 2)]
    assert torch.atleast_3d(torch.ones(2)).shape == (1, 2, 1)
    u = torch.tensor([1, 2], dtype=torch.uint8)
    assert torch.full_like(u, -1).tolist() == [255, 255]                    # C-cast wrap
    assert u.fill_(-2).tolist() == [254, 254]
    assert torch.full((1,), -255, dtype=torch.uint8).tolist() == [1]
    for v, d, c in ((256, torch.uint8, "uint8_t"), (-256, torch.uint8, "uint8_t"),
                    (128, torch.int8, "int8_t"), (2 ** 33, torch.int32, "int")):
        with pytest.raises(RuntimeError, match=f"value cannot be converted to type {c} without "
                                               "overflow"):
            torch.full((1,), v, dtype=d)
    t = torch.tensor([7, 8], dtype=torch.int16)
    with pytest.raises(RuntimeError, match="int16_t without overflow"):
        t.fill_(40000)
    assert t.tolist() == [7, 8]                                    # nothing written


# ---- addcmul / addcdiv -------------------------------------------------------------------------

def test_addcmul_addcdiv_values_dtypes_and_gradients(rng):
    a, b, c = (rng.standard_normal((3, 4)) for _ in range(3))
    c = np.abs(c) + 0.5
    T = torch.tensor
    assert_close(torch.addcmul(T(a), T(b), T(c), value=0.5), a + 0.5 * b * c, rtol=1e-12)
    assert_close(torch.addcdiv(T(a), T(b), T(c), value=-2), a - 2 * b / c, rtol=1e-12)
    assert_close(T(a).addcmul(T(b[0]), T(c[:, :1])), a + b[0] * c[:, :1], rtol=1e-12)  # broadcast
    x = T(a.copy())
    assert x.addcdiv_(T(b), T(c), value=3) is x
    assert_close(x, a + 3 * b / c, rtol=1e-12)
    out = torch.empty(3, 4, dtype=torch.float64)
    torch.addcmul(T(a), T(b), T(c), out=out)
    assert_close(out, a + b * c, rtol=1e-12)
    # integer results take int(value), as PyTorch casts the scalar (printed by torch 2.13)
    one = torch.ones(2, dtype=torch.long)
    assert torch.addcmul(one, T([1, 2]), T([3, 4]), value=0.5).tolist() == [1, 1]
    r = torch.addcmul(one, T([1, 2]), T([3, 4]), value=2)
    assert r.tolist() == [7, 17] and r.dtype == torch.long
    assert torch.addcmul(one, T([1.0, 2.0]), T([3, 4]), value=2).dtype == torch.float32
    assert_close(torch.ones(2).addcdiv(T([1, 2]), T([3.0, 4.0])), [4 / 3, 1.5], rtol=1e-6)
    from framework.autograd import gradcheck
    assert gradcheck(lambda p, q, r: torch.addcmul(p, q, r, value=0.7),
                     (T(a, requires_grad=True), T(b, requires_grad=True), T(c, requires_grad=True)))
    assert gradcheck(lambda p, q, r: torch.addcdiv(p, q, r, value=-1.5),
                     (T(a, requires_grad=True), T(b, requires_grad=True), T(c, requires_grad=True)))


def test_addcmul_addcdiv_errors_leave_data_unchanged():
    x = torch.ones(2, dtype=torch.long)
    with pytest.raises(RuntimeError, match="result type Float.* can't be cast to the desired "
                                           "output type"):
        x.addcmul_(torch.tensor([1.0, 2.0]), torch.tensor([3, 4]))
    assert x.tolist() == [1, 1]
    with pytest.raises(RuntimeError, match="Integer division with addcdiv is no longer "
                                           "supported"):
        torch.addcdiv(torch.ones(2), torch.tensor([1, 2]), torch.tensor([3, 4]))
    y = torch.ones(2)
    with pytest.raises(RuntimeError, match=r"output with shape \[2\] doesn't match the broadcast "
                                           r"shape \[3, 2\]"):
        y.addcmul_(torch.ones(3, 2), torch.ones(2))
    assert y.tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="size of tensor a \\(3\\) must match the size of "
                                           "tensor b \\(2\\)"):
        torch.addcmul(torch.ones(3), torch.ones(2), torch.ones(2))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_odd_functions_keep_signed_zero_and_relative_accuracy_near_zero(dtype):
    # tanh(-0) = sinh(-0) = erf(-0) = -0 as in C and PyTorch, and small arguments keep their
    # relative accuracy (erf(1e-3) = 1.1283788e-3; 1 - erfc(x) would lose it); also run on the
    # interpret device by tests/_interp_suite.py, whose kernels and the cpu lowering must agree
    x = np.array([0.0, -0.0, 1e-30, -1e-30, 1e-3, -2e-2, 0.3, -0.49, 0.51, -1.7, 3.0])
    refs = {"tanh": math.tanh, "sinh": math.sinh, "erf": math.erf, "asinh": math.asinh,
            "atanh": math.atanh, "sin": math.sin, "atan": math.atan, "expm1": math.expm1,
            "log1p": math.log1p}
    t = torch.tensor(x, dtype=getattr(torch, dtype))
    xr = x.astype(dtype).astype(np.float64)
    for name, f in refs.items():
        ok = np.abs(xr) < 1 if name in ("atanh", "log1p") else np.ones(len(x), bool)
        want = np.array([f(v) for v in xr[ok]])
        got = to_np(getattr(torch, name)(t))[ok].astype(np.float64)
        np.testing.assert_allclose(got, want, rtol=2e-6 if dtype == "float32" else 1e-13,
                                   atol=0, err_msg=name)
        assert (np.signbit(got) == np.signbit(want)).all(), (name, got)
