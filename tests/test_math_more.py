"""The rest of torch's pointwise API: inverse hyperbolics, erfc, copysign, fmax/fmin, frexp,
ldexp, gcd/lcm, heaviside, logaddexp(2), nextafter, signbit, rsub, fill, the in-place forms and
torch.<op>_ functions. Values against NumPy/SciPy in float64; edges (NaN, inf, -0.0, ties)
against values PyTorch 2.13 printed; dtypes, out=, errors and gradients as PyTorch's."""
import math

import numpy as np
import pytest
import scipy.special as sps

import framework as torch
from framework.autograd import gradcheck
from conftest import assert_close

nan, inf = math.nan, math.inf
F64 = torch.float64


def bits(t):
    """(value, sign bit) pairs: tells -0.0 from 0.0 and -nan from nan."""
    a = t.detach().cpu().numpy().astype(np.float64)
    return [(None if np.isnan(v) else float(v), bool(np.signbit(v))) for v in a.reshape(-1)]


# ---- values -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name,ref,lo,hi", [
    ("asinh", np.arcsinh, -50, 50), ("arcsinh", np.arcsinh, -3, 3),
    ("acosh", np.arccosh, 1, 50), ("arccosh", np.arccosh, 1, 3),
    ("atanh", np.arctanh, -0.999, 0.999), ("arctanh", np.arctanh, -0.5, 0.5),
    ("erfc", sps.erfc, -6, 26)])
def test_unary_values_match_numpy(name, ref, lo, hi):
    x = np.random.default_rng(0).uniform(lo, hi, 64)
    fn = getattr(torch, name)
    assert_close(fn(torch.tensor(x, dtype=F64)), ref(x), rtol=1e-12, atol=0)
    r32 = getattr(torch.tensor(x, dtype=torch.float32), name)()
    assert r32.dtype == torch.float32
    assert_close(r32, ref(x.astype(np.float32).astype(np.float64)), rtol=2e-6, atol=1e-37)


def test_small_arguments_keep_relative_accuracy():
    x = np.array([1e-300, -3e-20, 1e-8, 2.5e-5])
    for name, ref in (("asinh", np.arcsinh), ("atanh", np.arctanh)):
        assert_close(getattr(torch, name)(torch.tensor(x, dtype=F64)), ref(x), rtol=1e-15, atol=0)
    t = np.array([1e-12, 1e-6, 3e-3])                       # acosh just above 1
    assert_close(torch.acosh(torch.tensor(1 + t, dtype=F64)), np.arccosh(1 + t), rtol=1e-12,
                 atol=0)
    # erfc's tail: no 1 - erf cancellation (torch printed these)
    r = torch.erfc(torch.tensor([5., 10., 26.], dtype=F64)).tolist()
    assert r[0] == pytest.approx(1.5374597944280349e-12, rel=1e-14)
    assert r[1] == pytest.approx(2.0884875837625446e-45, rel=1e-14)
    assert r[2] == pytest.approx(5.663192408856143e-296, rel=1e-13)
    assert torch.erfc(torch.tensor([10.0])).item() == pytest.approx(1.4013e-45, rel=1e-3)


def test_binary_values_match_numpy(rng):
    a, b = rng.standard_normal((4, 5)) * 3, rng.standard_normal((5,)) * 3
    a[0] = b
    ta, tb = torch.tensor(a, dtype=F64), torch.tensor(b, dtype=F64)
    assert_close(torch.copysign(ta, tb), np.copysign(a, b), rtol=0, atol=0)
    assert_close(torch.fmax(ta, tb), np.fmax(a, b), rtol=0, atol=0)
    assert_close(ta.fmin(tb), np.fmin(a, b), rtol=0, atol=0)
    assert_close(torch.nextafter(ta, tb), np.nextafter(a, b), rtol=0, atol=0)
    assert_close(torch.logaddexp(ta, tb), np.logaddexp(a, b), rtol=1e-14, atol=1e-14)
    assert_close(ta.logaddexp2(tb), np.logaddexp2(a, b), rtol=1e-14, atol=1e-14)
    e = rng.integers(-5, 6, (5,))
    assert_close(torch.ldexp(ta, torch.tensor(e)), np.ldexp(a, e), rtol=0, atol=0)
    i, j = rng.integers(-60, 60, (4, 5)), rng.integers(-60, 60, (5,))
    assert_close(torch.gcd(torch.tensor(i), torch.tensor(j)), np.gcd(i, j), rtol=0, atol=0)
    assert_close(torch.tensor(i).lcm(torch.tensor(j)), np.lcm(i, j), rtol=0, atol=0)
    # stable where exp overflows
    big = torch.tensor([1000., -1000.], dtype=F64)
    assert_close(torch.logaddexp(big, big), [1000 + math.log(2), -1000 + math.log(2)],
                 rtol=1e-15, atol=0)


# ---- edges against values torch 2.13 printed ----------------------------------------------

def test_edges_match_torch():
    s = torch.signbit(torch.tensor([0., -0., nan, -nan, -1., -inf]))
    assert s.tolist() == [False, True, False, True, True, True]
    assert torch.signbit(torch.tensor([-1, 0, 3])).tolist() == [True, False, False]
    assert torch.signbit(torch.tensor([True])).tolist() == [False]
    c = torch.copysign(torch.tensor([1., 2., 0., nan, -3.]), torch.tensor([-0., -nan, -1., -1., 0.]))
    assert bits(c) == [(-1., True), (-2., True), (-0., True), (None, True), (3., False)]
    assert torch.copysign(torch.tensor([1., 2.]), -0.0).tolist() == [-1., -2.]
    x, y = torch.tensor([1., nan, nan, 2., -0.]), torch.tensor([nan, 3., nan, 2., 0.])
    assert bits(torch.fmax(x, y)) == [(1., False), (3., False), (None, False), (2., False),
                                      (-0., True)]
    assert bits(torch.fmin(x, y)) == [(1., False), (3., False), (None, False), (2., False),
                                      (-0., True)]
    n = torch.nextafter(torch.tensor([1., 0., 0., 1., nan, inf, -0.0]),
                        torch.tensor([2., 1., -1., 1., 0., 0., 0.0]))
    assert bits(n) == [(1.0000001192092896, False), (1.401298464324817e-45, False),
                       (-1.401298464324817e-45, True), (1., False), (None, False),
                       (3.4028234663852886e+38, False), (0., False)]
    assert torch.nextafter(torch.tensor([0.], dtype=F64), torch.tensor([-1.], dtype=F64)).item() \
        == -4.9406564584124654e-324
    assert torch.gcd(torch.tensor([0, 12, -12, 7, 0, -9]),
                     torch.tensor([0, 18, 18, 0, -5, -6])).tolist() == [0, 6, 6, 7, 5, 3]
    assert torch.lcm(torch.tensor([0, 12, -12, 7, 0, -4]),
                     torch.tensor([0, 18, 18, 0, -5, -6])).tolist() == [0, 36, 36, 0, 0, 12]
    assert torch.heaviside(torch.tensor([-1., 0., 2., nan, -0.]),
                           torch.tensor([0.5])).tolist() == [0., .5, 1., 0., .5]
    assert torch.heaviside(torch.tensor([-1, 0, 2]), torch.tensor([7])).tolist() == [0, 7, 1]
    la = torch.tensor([inf, -inf, inf, 1000., -1000., nan, 0.])
    lb = torch.tensor([inf, -inf, -inf, 1000., -1000., 1., 0.])
    assert_close(torch.logaddexp(la, lb), [inf, -inf, inf, 1000.6931, -999.3069, nan, 0.6931],
                 rtol=1e-6, atol=1e-4)
    assert_close(torch.logaddexp2(la, lb), [inf, -inf, inf, 1001., -999., nan, 1.],
                 rtol=1e-6, atol=1e-4)
    assert bits(torch.asinh(torch.tensor([-0., -inf, 1e30]))) == \
        [(-0., True), (-inf, True), (pytest.approx(69.77068), False)]
    assert torch.acosh(torch.tensor([1., 0.5, inf])).tolist()[::2] == [0., inf]
    assert math.isnan(torch.acosh(torch.tensor([0.5])).item())
    at = torch.atanh(torch.tensor([1., -1., 2., -0.]))
    assert bits(at)[:2] == [(inf, False), (-inf, True)] and bits(at)[3] == (-0., True)
    assert torch.erfc(torch.tensor([-inf, inf, 0.])).tolist() == [2., 0., 1.]


def test_frexp():
    m, e = torch.frexp(torch.tensor([0., -0., 1., 0.5, 3., -5., inf, nan, 1e-40, -1e-45]))
    assert e.dtype == torch.int32
    assert e.tolist() == [0, 0, 1, 0, 2, 3, 0, 0, -132, -148]
    assert bits(m)[:8] == [(0., False), (-0., True), (.5, False), (.5, False), (.75, False),
                           (-.625, True), (inf, False), (None, False)]
    assert m[8].item() == pytest.approx(0.5444, abs=1e-4) and m[9].item() == -0.5
    r = torch.frexp(torch.tensor([0., 1e-310, 6.0, 2.0 ** 1023 * 1.5], dtype=F64))
    assert r.exponent.tolist() == [0, -1029, 3, 1024]
    assert r.mantissa.tolist()[2:] == [0.75, 0.75]
    x = np.random.default_rng(1).standard_normal(50) * 10.0 ** np.arange(-25, 25)
    mm, ee = np.frexp(x)
    r = torch.tensor(x).frexp()
    assert r.mantissa.tolist() == mm.tolist() and r.exponent.tolist() == ee.tolist()
    h = torch.frexp(torch.tensor([1., 6.0], dtype=torch.float16))
    assert h.mantissa.dtype == torch.float16 and h.exponent.tolist() == [1, 3]
    assert repr(h).startswith("torch.return_types.frexp(\nmantissa=tensor([0.5000, 0.7500]")


# ---- dtypes and errors --------------------------------------------------------------------

def test_result_dtypes():
    i, b = torch.tensor([1, 2]), torch.tensor([True, False])
    for fn in (torch.acosh, torch.asinh, torch.atanh, torch.erfc):
        assert fn(i).dtype == torch.float32 and fn(b).dtype == torch.float32
        assert fn(torch.ones(2, dtype=torch.float16)).dtype == torch.float16
    assert torch.signbit(i).dtype == torch.bool
    assert torch.copysign(i, i).dtype == torch.float32
    assert torch.copysign(i, -2.5).dtype == torch.float32
    assert torch.copysign(torch.ones(2), torch.ones(2, dtype=F64)).dtype == F64
    assert torch.fmax(i, i).dtype == torch.int64 and torch.fmin(b, b).dtype == torch.bool
    assert torch.fmax(torch.tensor([1, 5], dtype=torch.int8),
                      torch.tensor([3, 2], dtype=torch.uint8)).tolist() == [3, 5]
    assert torch.fmax(torch.tensor([1, 5], dtype=torch.int8),
                      torch.tensor([3, 2], dtype=torch.uint8)).dtype == torch.int16
    assert torch.fmax(torch.tensor([True, False]), torch.tensor([False, False])).tolist() == \
        [True, False]
    assert torch.nextafter(torch.ones(2), i).dtype == torch.float32
    assert torch.gcd(torch.tensor([4], dtype=torch.int8), torch.tensor([6, 3])).dtype == torch.int64
    assert torch.gcd(torch.tensor([12], dtype=torch.uint8),
                     torch.tensor([18], dtype=torch.uint8)).tolist() == [6]
    assert torch.ldexp(i, i).dtype == torch.float32
    assert torch.ldexp(torch.ones(2, dtype=F64), i).dtype == F64
    assert torch.logaddexp(torch.ones(1), i).dtype == torch.float32
    assert torch.logaddexp(torch.ones(1, dtype=torch.float16), torch.ones(1, dtype=torch.float16)
                           ).dtype == torch.float16
    # a bool side joins in the float dtype (the max/abs-difference form must not subtract bools)
    f = torch.tensor([0.5, -1.0], requires_grad=True)
    bb = torch.tensor([True, False])
    assert_close(torch.logaddexp(f, bb), np.logaddexp([0.5, -1.0], [1.0, 0.0]), rtol=1e-6, atol=1e-6)
    assert_close(torch.logaddexp2(bb, f), np.logaddexp2([1.0, 0.0], [0.5, -1.0]), rtol=1e-6, atol=1e-6)
    assert type(torch.logaddexp(f, bb).grad_fn).__name__ == "LogaddexpBackward0"
    assert type(torch.logaddexp2(f, bb).grad_fn).__name__ == "Logaddexp2Backward0"
    assert torch.rsub(i, 2.5).tolist() == [1.5, 0.5]
    assert torch.rsub(torch.tensor([1., 2.]), 3, alpha=2).tolist() == [1., -1.]
    assert torch.rsub(i, torch.tensor([5, 5])).tolist() == [4, 3]
    assert torch.positive(i) is i
    f = torch.fill(i, 2.5)
    assert f.tolist() == [2, 2] and f.dtype == torch.int64
    assert torch.fill(torch.tensor([1., 2.]), torch.tensor(3.)).tolist() == [3., 3.]


def test_errors():
    f, i, b = torch.ones(2), torch.tensor([1, 2]), torch.tensor([True])
    with pytest.raises(NotImplementedError, match="\"gcd_cpu\" not implemented for 'Float'"):
        torch.gcd(f, i)
    with pytest.raises(NotImplementedError, match="\"gcd_cpu\" not implemented for 'Bool'"):
        torch.gcd(b, b)
    with pytest.raises(NotImplementedError, match="\"lcm_cpu\" not implemented for 'Double'"):
        torch.lcm(f.double(), f.double())
    with pytest.raises(TypeError, match=r"gcd\(\): argument 'other' \(position 2\) must be Tensor"):
        torch.gcd(i, 2)
    with pytest.raises(TypeError, match="fmax"):
        torch.fmax(f, 2.0)
    with pytest.raises(NotImplementedError, match="\"nextafter_cpu\" not implemented for 'Long'"):
        torch.nextafter(i, i)
    with pytest.raises(NotImplementedError, match="\"logaddexp_cpu\" not implemented for 'Long'"):
        torch.logaddexp(i, i)
    with pytest.raises(NotImplementedError, match="\"logaddexp2_cpu\" not implemented for 'Bool'"):
        torch.logaddexp2(b, b)
    with pytest.raises(NotImplementedError, match="\"copysign_cpu\" not implemented for 'ComplexFloat'"):
        torch.copysign(f.to(torch.complex64), f)
    with pytest.raises(RuntimeError, match="fmax not implemented for complex tensors."):
        torch.fmax(f.to(torch.complex64), f.to(torch.complex64))
    with pytest.raises(NotImplementedError, match="\"erfc_vml_cpu\" not implemented for 'ComplexFloat'"):
        torch.erfc(f.to(torch.complex64))
    with pytest.raises(NotImplementedError, match="signbit is not implemented for complex tensors."):
        torch.signbit(f.to(torch.complex64))
    with pytest.raises(RuntimeError, match="signbit does not support non-boolean outputs."):
        torch.signbit(f, out=torch.empty(2))
    with pytest.raises(RuntimeError, match="heaviside is not yet implemented for tensors with "
                                           "different dtypes."):
        torch.heaviside(f, i)
    with pytest.raises(TypeError, match="heaviside\\(\\): argument 'values'"):
        torch.heaviside(f, 0.5)
    with pytest.raises(RuntimeError, match="only supports floating-point dtypes"):
        torch.frexp(i)
    with pytest.raises(RuntimeError, match="expects exponent to have int dtype but got long int"):
        torch.frexp(f, out=(torch.empty(2), torch.empty(2, dtype=torch.int64)))
    with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with two bool tensors"):
        torch.rsub(b, b)
    with pytest.raises(RuntimeError, match="alpha must not be a floating point number"):
        torch.rsub(i, 2, alpha=1.5)
    with pytest.raises(RuntimeError, match="The size of tensor a|broadcast|shapes"):
        torch.fmax(torch.ones(2), torch.ones(3))
    with pytest.raises(RuntimeError, match="fill only supports 0-dimension value tensor"):
        torch.fill(f, torch.ones(2))
    with pytest.raises(RuntimeError, match="derivative for aten::heaviside is not implemented"):
        torch.heaviside(torch.ones(2, requires_grad=True), torch.ones(1))


# ---- in-place forms, torch.<op>_ functions, out= ----------------------------------------------

def test_inplace_methods():
    x = torch.tensor([1.5, 2.0])
    assert x.acosh_() is x and and_close(x, np.arccosh([1.5, 2.0]))
    x = torch.tensor([0.5, -1.0])
    x.arcsinh_()
    and_close(x, np.arcsinh([0.5, -1.0]))
    x.arctanh_()
    and_close(x, np.arctanh(np.arcsinh([0.5, -1.0])))
    x = torch.tensor([0.5, 3.0]).erfc_()
    and_close(x, sps.erfc([0.5, 3.0]))
    x = torch.tensor([1., 2.]).copysign_(-1)
    assert x.tolist() == [-1., -2.]
    i = torch.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
        i.copysign_(-1)
    with pytest.raises(RuntimeError, match="can't be cast"):
        i.acosh_()
    with pytest.raises(RuntimeError, match="can't be cast"):
        i.ldexp_(torch.tensor([2]))
    with pytest.raises(RuntimeError, match="can't be cast"):
        i.deg2rad_()
    assert i.tolist() == [1, 2]                       # failed in-place ops leave data alone
    assert torch.tensor([1, 2]).gcd_(torch.tensor([4])).tolist() == [1, 2]
    assert torch.tensor([1, 2]).lcm_(torch.tensor([4])).tolist() == [4, 4]
    assert torch.tensor([1., 2.]).ldexp_(torch.tensor([2])).tolist() == [4., 8.]
    assert torch.tensor([0., 2.]).heaviside_(torch.tensor([2.])).tolist() == [2., 1.]
    assert torch.tensor([1., 2.]).nextafter_(torch.tensor([2.])).tolist()[1] == 2.0
    assert torch.tensor([1., 2.], dtype=F64).float_power_(2).tolist() == [1., 4.]
    with pytest.raises(RuntimeError, match="the base given to float_power_ has dtype Float but "
                                           "the operation's result requires dtype Double"):
        torch.tensor([1., 2.]).float_power_(2)
    with pytest.raises(RuntimeError, match="has dtype Long"):
        torch.tensor([1, 2]).float_power_(torch.tensor([2.]))
    assert torch.tensor([1., 2.]).greater_(1.5).tolist() == [0., 1.]
    assert torch.tensor([1, 2]).less_(1.5).tolist() == [1, 0]
    assert torch.tensor([1, 2]).not_equal_(torch.tensor([2])).tolist() == [1, 0]
    assert torch.tensor([1, 2]).greater_equal_(2).tolist() == [0, 1]
    assert torch.tensor([1, 2]).less_equal_(1).tolist() == [1, 0]
    assert torch.tensor([0.5, -2., 0.]).sgn_().tolist() == [1., -1., 0.]
    and_close(torch.tensor([1., 2.]).deg2rad_(), np.deg2rad([1., 2.]))
    and_close(torch.tensor([1., 2.]).rad2deg_(), np.rad2deg([1., 2.]))
    and_close(torch.tensor([1., 2.]).arctan2_(torch.tensor([2.])), np.arctan2([1., 2.], 2.))
    and_close(torch.tensor([1., 2.]).xlogy_(2), np.array([1., 2.]) * math.log(2))
    and_close(torch.tensor([0.25, 0.5], dtype=F64).logit_(), [math.log(1 / 3), 0.])
    and_close(torch.tensor([1., 2.]).igamma_(torch.tensor([2.])), sps.gammainc([1., 2.], 2.))
    and_close(torch.tensor([1., 2.]).igammac_(torch.tensor([2.])), sps.gammaincc([1., 2.], 2.))
    assert torch.tensor([nan, inf]).nan_to_num_().tolist() == [0., 3.4028234663852886e+38]


def and_close(t, ref):
    assert_close(t, np.asarray(ref, dtype=np.float64), rtol=1e-6, atol=1e-7)
    return True


@pytest.mark.parametrize("name,args,ref", [
    ("acos_", (), np.arccos), ("exp_", (), np.exp), ("sqrt_", (), np.sqrt),
    ("clamp_", (0.3, 0.6), lambda v: np.clip(v, 0.3, 0.6)), ("clip_", (None, 0.5), None),
    ("clamp_min_", (0.5,), lambda v: np.maximum(v, 0.5)), ("sigmoid_", (), sps.expit),
    ("sinc_", (), np.sinc), ("erfc_", (), sps.erfc), ("acosh_", (), None), ("frac_", (), None),
    ("logit_", (), sps.logit), ("xlogy_", (2.0,), lambda v: v * math.log(2)),
    ("nan_to_num_", (), lambda v: v), ("square_", (), np.square), ("fix_", (), np.trunc),
    ("relu_", (), lambda v: v), ("round_", (), np.round), ("i0_", (), sps.i0)])
def test_torch_level_inplace_functions(name, args, ref):
    v = np.array([0.25, 0.5, 0.75])
    x = torch.tensor(v, dtype=F64)
    r = getattr(torch, name)(x, *args)
    assert r is x
    expect = getattr(torch.tensor(v, dtype=F64), name[:-1])(*args)
    np.testing.assert_array_equal(x.cpu().numpy(), expect.cpu().numpy())   # NaN == NaN here
    if ref is not None:
        assert_close(x, ref(v), rtol=1e-12, atol=1e-12)


def test_torch_level_inplace_set_and_special_forms():
    for n in ("acos_ asin_ atan_ ceil_ clamp_max_ cos_ cosh_ erf_ exp2_ expm1_ floor_ log_ log10_ "
              "log1p_ log2_ neg_ negative_ reciprocal_ rsqrt_ sin_ sinh_ tan_ tanh_ trunc_ "
              "conj_physical_ detach_ gcd_ lcm_ ldexp_ deg2rad_ rad2deg_ arccosh_ arcsinh_ "
              "arctanh_ fill_ zero_ abs_").split():
        assert callable(getattr(torch, n)), n
    x = torch.tensor([1., 2.], requires_grad=True)
    y = x * 2
    assert torch.detach_(y) is y and not y.requires_grad
    i = torch.tensor([4, 6])
    assert torch.gcd_(i, torch.tensor([6])) is i and i.tolist() == [2, 6]
    assert torch.fill_(i, 3).tolist() == [3, 3]


def test_out_argument():
    o = torch.empty(1, dtype=torch.int64)
    assert torch.gcd(torch.tensor([4]), torch.tensor([6]), out=o) is o and o.tolist() == [2]
    ob = torch.empty(3, dtype=torch.bool)
    torch.signbit(torch.tensor([-1., 0., -0.]), out=ob)
    assert ob.tolist() == [True, False, True]
    m, e = torch.empty(1), torch.empty(1, dtype=torch.int32)
    r = torch.frexp(torch.tensor([4.]), out=(m, e))
    assert r.mantissa is m and m.tolist() == [0.5] and e.tolist() == [3]
    o = torch.empty(2)
    for fn in (torch.acosh, torch.asinh, torch.atanh, torch.erfc):
        assert fn(torch.tensor([1.0, 0.5]), out=o) is o
    for fn in (torch.copysign, torch.fmax, torch.fmin, torch.nextafter, torch.logaddexp,
               torch.logaddexp2, torch.ldexp, torch.heaviside):
        assert fn(torch.tensor([1.0, 0.0]), torch.tensor([2.0, -1.0]), out=o) is o
    torch.logaddexp(torch.tensor([0., 0.]), torch.tensor([0., 1.]), out=o)
    assert_close(o, np.logaddexp([0., 0.], [0., 1.]), rtol=1e-6, atol=0)


# ---- gradients --------------------------------------------------------------------------------

def _grads(fn, a, b):
    a = torch.tensor(a, dtype=F64, requires_grad=True)
    b = torch.tensor(b, dtype=F64, requires_grad=True)
    fn(a, b).sum().backward()
    return a.grad.tolist(), b.grad.tolist()


A = [1., 2., 3., nan, 1., 0., -0., 0.]
B = [2., 2., 1., 1., nan, -1., 1., 0.]


def _eq(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (math.isnan(g) and math.isnan(w)) or g == pytest.approx(w, rel=1e-12, abs=1e-15)


def test_gradients_at_ties_and_nans_match_torch():
    # printed by torch 2.13 for these inputs: fmax/fmin give the whole gradient to input at
    # ties (maximum splits it), NaN loses; copysign's input gradient is 0 at +-0
    ga, gb = _grads(torch.fmax, A, B)
    _eq(ga, [0., 1., 1., 0., 1., 1., 0., 1.]), _eq(gb, [1., 0., 0., 1., 0., 0., 1., 0.])
    ga, gb = _grads(torch.fmin, A, B)
    _eq(ga, [1., 1., 0., 0., 1., 0., 1., 1.]), _eq(gb, [0., 0., 1., 1., 0., 1., 0., 0.])
    ga, gb = _grads(torch.copysign, A, B)
    _eq(ga, [1., 1., 1., nan, 1., 0., 0., 0.]), _eq(gb, [0.] * 8)
    ga, gb = _grads(torch.logaddexp, A[:3] + A[5:], B[:3] + B[5:])
    _eq(ga, [0.2689414213699951, 0.5, 0.8807970779778823, 0.7310585786300049,
             0.2689414213699951, 0.5])
    _eq(gb, [0.7310585786300049, 0.5, 0.11920292202211755, 0.2689414213699951,
             0.7310585786300049, 0.5])
    ga, gb = _grads(torch.logaddexp2, [1., 2., 3.], [2., 2., 1.])
    _eq(ga, [1 / 3, 0.5, 0.8]), _eq(gb, [2 / 3, 0.5, 0.2])
    ga, gb = _grads(torch.ldexp, [1., 2., 3.], [1., -1., 0.5])
    _eq(ga, [2.0, 0.5, 1.4142135623730951])
    _eq(gb, [1.3862943611198906, 0.6931471805599453, 2.940774430405642])
    x = torch.tensor([1.5, -3., 0.], dtype=F64, requires_grad=True)
    m, e = torch.frexp(x)
    assert not e.requires_grad and type(m.grad_fn).__name__ == "FrexpBackward0"
    m.sum().backward()
    assert x.grad.tolist() == [0.5, 0.25, 1.0]
    assert type(torch.fmax(x, x.detach()).grad_fn).__name__ == "FmaxBackward0"
    assert not torch.signbit(x).requires_grad and not torch.nextafter(x, x).requires_grad


@pytest.mark.parametrize("fn,lo,hi", [
    (torch.asinh, -3, 3), (torch.acosh, 1.2, 4), (torch.atanh, -0.9, 0.9), (torch.erfc, -3, 4),
    (lambda a, b: torch.logaddexp(a, b), -3, 3), (lambda a, b: torch.logaddexp2(a, b), -3, 3),
    (lambda a, b: torch.ldexp(a, b), -2, 2), (lambda a: torch.frexp(a).mantissa, 0.3, 5),
    (lambda a, b: torch.copysign(a, b), 0.2, 2), (lambda a, b: torch.fmax(a, b), -3, 3),
    (lambda a: torch.rsub(a, 2.0, alpha=3), -1, 1)])
def test_gradcheck(fn, lo, hi):
    n = fn.__code__.co_argcount if fn.__name__ == "<lambda>" else 1
    r = np.random.default_rng(3)
    xs = [torch.tensor(r.uniform(lo, hi, (3, 4)), dtype=F64, requires_grad=True) for _ in range(n)]
    assert gradcheck(fn, tuple(xs))


# ---- compile() equals eager -------------------------------------------------------------------

def test_compile_matches_eager(rng):
    def f(a, b, i, j):
        return (torch.asinh(a) + torch.acosh(b.abs() + 1) + torch.atanh(a.clamp(-0.9, 0.9))
                + torch.erfc(a) + torch.copysign(a, b) + torch.fmax(a, b) - torch.fmin(a, b)
                + torch.logaddexp(a, b) + torch.logaddexp2(a, b) + torch.ldexp(a, i)
                + torch.signbit(b) + torch.heaviside(a, b) + torch.frexp(a).mantissa
                + torch.nextafter(a, b), torch.gcd(i, j) + torch.lcm(i, j))
    a = torch.tensor(rng.standard_normal((4, 6)), dtype=torch.float32)
    b = torch.tensor(rng.standard_normal((6,)), dtype=torch.float32)
    a[0, :3] = b[:3]
    i = torch.tensor(rng.integers(-6, 6, (4, 6)))
    j = torch.tensor(rng.integers(-20, 20, (6,)))
    e1, e2 = f(a, b, i, j)
    c1, c2 = torch.compile(f)(a, b, i, j)
    assert_close(c1, e1.cpu().numpy(), rtol=1e-6, atol=1e-6)
    assert c2.tolist() == e2.tolist()


def test_isclose_rejects_negative_tolerances():
    a = torch.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="rtol must be greater than or equal to zero, but got -1"):
        torch.isclose(a, a, rtol=-1)
    with pytest.raises(RuntimeError, match="atol must be greater than or equal to zero, but got "
                                           "-0.5"):
        torch.isclose(a, a, atol=-0.5)
    # zero tolerances are allowed: closeness is then equality
    np.testing.assert_array_equal(torch.isclose(a, torch.tensor([1.0, 2.5]), rtol=0, atol=0)
                                  .numpy(), [True, False])
