"""IEEE special values (signed zero, NaN, inf) in Kiln's pointwise, ordering and reduction ops,
and gradients at the special points, against hand-derived values and NumPy float64 references.
(Found by a differential sweep against PyTorch 2.13 CPU; the expected values here are PyTorch's
where its result does not depend on its vectorised path.)"""
import math

import numpy as np
import pytest

import framework as torch
from framework import nn

F = nn.functional
NAN, INF = float("nan"), float("inf")
DTYPES = [torch.float32, torch.float64]


def bits(t):
    """(isnan, signbit, value with NaN as 0) of a tensor: a bitwise-enough comparison key."""
    a = t.detach().numpy()
    return np.isnan(a), np.signbit(a), np.where(np.isnan(a), 0, a)


def assert_same(t, expected, dtype=None):
    e = np.asarray(expected, dtype=np.float64)
    a = t.detach().numpy().astype(np.float64)
    assert a.shape == e.shape, (a.shape, e.shape)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e))
    num = ~np.isnan(e)
    np.testing.assert_array_equal(np.signbit(a[num]), np.signbit(e[num]), err_msg=f"signs: {a}")
    np.testing.assert_array_equal(np.where(np.isnan(a), 0, a), np.where(np.isnan(e), 0, e))


def grad_of(f, x, dtype):
    t = torch.tensor(x, dtype=dtype, requires_grad=True)
    y = f(t)
    y.sum().backward()
    return y, t.grad


# ---- clamp family: a Python bound keeps x at a tie, NaN propagates ----------------------------

X = [-0.0, 0.0, NAN, INF, -INF, -1.0, 2.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_keeps_negative_zero_eager_grad_and_compiled(dtype):
    x = torch.tensor(X, dtype=dtype)
    expected = [-0.0, 0.0, NAN, INF, 0.0, 0.0, 2.0]
    assert_same(torch.relu(x), expected)
    assert_same(F.relu(x), expected)
    assert_same(nn.ReLU()(x), expected)
    assert_same(x.clone().relu_(), expected)
    assert_same(torch.compile(lambda t: torch.relu(t))(x), expected)
    y, g = grad_of(torch.relu, X, dtype)
    assert_same(y, expected)
    # threshold_backward: 0 at x <= 0 (both zeros), g at NaN and above 0
    assert_same(g, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_clamp_scalar_bounds_signed_zero_and_nan(dtype):
    x = torch.tensor(X, dtype=dtype)
    assert_same(torch.clamp(x, min=0.0), [-0.0, 0.0, NAN, INF, 0.0, 0.0, 2.0])
    assert_same(torch.clamp(x, min=-0.0), [-0.0, 0.0, NAN, INF, -0.0, -0.0, 2.0])
    assert_same(torch.clamp(x, max=-0.0), [-0.0, 0.0, NAN, -0.0, -INF, -1.0, -0.0])
    assert_same(torch.clamp_min(x, 0.0), [-0.0, 0.0, NAN, INF, 0.0, 0.0, 2.0])
    assert_same(torch.clamp_max(x, 0.0), [-0.0, 0.0, NAN, 0.0, -INF, -1.0, 0.0])
    assert_same(torch.clamp(x, 2.0, 1.0), [1.0, 1.0, NAN, 1.0, 1.0, 1.0, 1.0])   # min > max: max
    assert_same(torch.clamp(x, min=NAN), [NAN] * 7)
    assert_same(torch.clamp(x, max=NAN), [NAN] * 7)
    assert_same(x.clone().clamp_(min=0.0), [-0.0, 0.0, NAN, INF, 0.0, 0.0, 2.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_clamp_tensor_bound_nan_propagates_and_compiled_matches(dtype):
    x = torch.tensor([1.0, -2.0, 0.5, NAN], dtype=dtype)
    lo = torch.tensor([NAN, 0.0, 0.0, 0.0], dtype=dtype)
    hi = torch.tensor([2.0, 1.0, NAN, 1.0], dtype=dtype)
    expected = [NAN, 0.0, NAN, NAN]
    assert_same(torch.clamp(x, lo, hi), expected)
    assert_same(torch.compile(lambda a, b, c: torch.clamp(a, b, c))(x, lo, hi), expected)
    for f in (lambda t: torch.clamp(t, min=NAN), lambda t: torch.clamp(t, min=0.0),
              lambda t: torch.clamp(t, -1.0, 1.0)):
        xs = torch.tensor(X, dtype=dtype)
        eager, comp = f(xs), torch.compile(f)(xs)
        for a, b in zip(bits(eager), bits(comp)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_clamp_gradient_at_bound_nan_and_nan_bound(dtype):
    # gradient where min <= x <= max: passes at the bound, 0 at NaN
    y, g = grad_of(lambda t: torch.clamp(t, -1.0, 1.0), [-1.0, 1.0, 0.5, NAN, 3.0, -3.0], dtype)
    assert_same(y, [-1.0, 1.0, 0.5, NAN, 1.0, -1.0])
    assert_same(g, [1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    y, g = grad_of(lambda t: torch.clamp(t, min=NAN), [1.0, -1.0], dtype)
    assert_same(y, [NAN, NAN])
    assert_same(g, [0.0, 0.0])
    y, g = grad_of(lambda t: torch.clamp(t, min=0.0), [-0.0, 0.0, -1.0], dtype)
    assert_same(y, [-0.0, 0.0, 0.0])
    assert_same(g, [1.0, 1.0, 0.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu6_hardtanh_values_and_gradients(dtype):
    x = torch.tensor([-0.0, 0.0, NAN, 6.0, 7.0, -INF], dtype=dtype)
    assert_same(F.relu6(x), [-0.0, 0.0, NAN, 6.0, 6.0, 0.0])
    assert_same(nn.ReLU6()(x), [-0.0, 0.0, NAN, 6.0, 6.0, 0.0])
    assert_same(F.hardtanh(x, 0.0, 1.0), [-0.0, 0.0, NAN, 1.0, 1.0, 0.0])
    y, g = grad_of(F.relu6, [-0.0, 0.0, 3.0, 6.0, NAN, -1.0], dtype)
    assert_same(y, [-0.0, 0.0, 3.0, 6.0, NAN, 0.0])
    assert_same(g, [0.0, 0.0, 1.0, 0.0, 0.0, 0.0])    # 0 at the limits and at NaN
    y, g = grad_of(F.hardtanh, [-0.0, -1.0, 1.0, 0.5], dtype)
    assert_same(g, [1.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_threshold_and_shrink_ops_propagate_nan(dtype):
    x = torch.tensor([NAN, -0.0, 0.0, 1.0, -2.0, -0.25], dtype=dtype)
    assert_same(F.threshold(x, 0.0, 5.0), [NAN, 5.0, 5.0, 1.0, 5.0, 5.0])
    assert_same(F.hardshrink(x), [NAN, 0.0, 0.0, 1.0, -2.0, 0.0])
    assert_same(F.softshrink(x), [NAN, 0.0, 0.0, 0.5, -1.5, 0.0])
    y, g = grad_of(lambda t: F.threshold(t, 0.0, 5.0), [NAN, 0.0, 1.0], dtype)
    assert_same(g, [1.0, 0.0, 1.0])
    y, g = grad_of(F.softshrink, [NAN, 0.25, 2.0], dtype)
    assert_same(g, [0.0, 0.0, 1.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_hardswish_hardsigmoid_edges(dtype):
    x = torch.tensor([-INF, -3.7, -3.0, NAN, 4.0], dtype=dtype)
    # x * relu6(x + 3) / 6: -inf * 0 is NaN, -3.7 * 0 is -0.0
    assert_same(F.hardswish(x), [NAN, -0.0, -0.0, NAN, 4.0])
    y, g = grad_of(F.hardsigmoid, [NAN, 0.0, 3.0, -3.0], dtype)
    assert_same(y, [NAN, 0.5, 1.0, 0.0])
    np.testing.assert_allclose(g.numpy(), [0.0, 1 / 6, 0.0, 0.0], rtol=1e-6)


# ---- binary ops ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_maximum_minimum_gradients_ties_and_nan(dtype):
    a = torch.tensor([1.0, 2.0, NAN, 3.0], dtype=dtype, requires_grad=True)
    b = torch.tensor([1.0, 1.0, 1.0, NAN], dtype=dtype, requires_grad=True)
    torch.maximum(a, b).sum().backward()
    # ties split g/2; the loser gets 0; with a NaN no comparison holds: both get g
    assert_same(a.grad, [0.5, 1.0, 1.0, 1.0])
    assert_same(b.grad, [0.5, 0.0, 1.0, 1.0])
    a.grad = b.grad = None
    torch.minimum(a, b).sum().backward()
    assert_same(a.grad, [0.5, 0.0, 1.0, 1.0])
    assert_same(b.grad, [0.5, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_atan2_and_pow_gradients_at_zero(dtype):
    y = torch.tensor([0.0, 0.0, 1.0], dtype=dtype, requires_grad=True)
    x = torch.tensor([0.0, -0.0, 1.0], dtype=dtype, requires_grad=True)
    torch.atan2(y, x).sum().backward()
    assert_same(y.grad, [0.0, -0.0, 0.5])          # g * x / (x^2 + y^2), 1/0 taken as 0
    assert_same(x.grad, [-0.0, -0.0, -0.5])
    b = torch.tensor([0.0, -0.0, 2.0], dtype=dtype, requires_grad=True)
    e = torch.tensor([0.0, 0.0, 3.0], dtype=dtype, requires_grad=True)
    r = torch.pow(b, e)
    assert_same(r, [1.0, 1.0, 8.0])
    r.sum().backward()
    assert_same(b.grad, [0.0, 0.0, 12.0])            # 0 where the exponent is 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_remainder_zero_results_keep_dividend_sign(dtype):
    a = torch.tensor([-0.0, 0.0, 4.0, -4.0, -0.0, 5.5, -5.5, 1.0, -1.0], dtype=dtype)
    b = torch.tensor([1.0, -1.0, -2.0, 2.0, INF, -2.0, 2.0, INF, INF], dtype=dtype)
    # fmod, then + b where the signs differ; zero results keep fmod's (the dividend's) sign
    assert_same(torch.remainder(a, b), [-0.0, 0.0, 0.0, -0.0, -0.0, -0.5, 0.5, 1.0, INF])
    assert_same(a % b, [-0.0, 0.0, 0.0, -0.0, -0.0, -0.5, 0.5, 1.0, INF])
    assert_same(torch.remainder(torch.tensor([5, -5]), 3), [2, 1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_hypot_inf_beats_nan_and_no_overflow(dtype):
    a = torch.tensor([INF, NAN, -INF, NAN, 3.0, 0.0, -0.0], dtype=dtype)
    b = torch.tensor([NAN, INF, NAN, 1.0, -4.0, 0.0, -0.0], dtype=dtype)
    assert_same(torch.hypot(a, b), [INF, INF, INF, NAN, 5.0, 0.0, 0.0])
    big = 1e30 if dtype is torch.float32 else 1e300
    r = torch.hypot(torch.tensor([big, 1 / big], dtype=dtype), torch.tensor([big, 1 / big], dtype=dtype))
    ref = np.array([big * math.sqrt(2), math.sqrt(2) / big])
    np.testing.assert_allclose(r.numpy().astype(np.float64), ref, rtol=4e-7)
    rs = np.random.RandomState(0)
    xs, ys = rs.randn(200) * 10.0 ** rs.randint(-3, 4, 200), rs.randn(200)
    r = torch.hypot(torch.tensor(xs, dtype=dtype), torch.tensor(ys, dtype=dtype)).numpy()
    np.testing.assert_allclose(r, np.hypot(xs, ys), rtol=4e-7 if dtype is torch.float32 else 1e-15)


# ---- ordering and reductions -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_unique_counts_each_nan_separately(dtype):
    x = torch.tensor([NAN, 1.0, NAN, 1.0, -INF], dtype=dtype)
    u, inv, cnt = torch.unique(x, return_inverse=True, return_counts=True)
    assert_same(u, [-INF, 1.0, NAN, NAN])
    assert inv.tolist() == [2, 1, 3, 1, 0]
    assert cnt.tolist() == [1, 2, 1, 1]


@pytest.mark.parametrize("dtype", DTYPES)
def test_mode_with_nans(dtype):
    v, i = torch.mode(torch.tensor([3.0, NAN, NAN, 1.0], dtype=dtype))
    assert float(v) == 1.0 and int(i) == 3         # NaNs count once each: smallest value wins
    v, i = torch.mode(torch.tensor([[NAN, NAN], [2.0, 2.0]], dtype=dtype), 1)
    assert math.isnan(float(v[0])) and float(v[1]) == 2.0
    assert i.tolist() == [0, 1]


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_rows_with_infinities(dtype):
    x = torch.tensor([[INF, 0.0, 1.0], [-INF, -INF, -INF], [-INF, 0.0, 1.0]], dtype=dtype)
    r = torch.log_softmax(x, 1)
    assert_same(r[0], [NAN, NAN, NAN])                # max is +inf: inf - inf
    assert_same(r[1], [NAN, NAN, NAN])                # max is -inf: -inf - -inf
    ref = np.array([-INF, 0.0, 1.0]) - np.log(np.exp(0.0) + np.exp(1.0))
    np.testing.assert_allclose(r[2].numpy(), ref, rtol=1e-6)
    assert_same(F.log_softmax(x, 1)[1], [NAN, NAN, NAN])
    g = torch.tensor([[0.0, 1.0], [0.0, -INF]], dtype=dtype, requires_grad=True)
    torch.log_softmax(g, 1)[:, 0].sum().backward()
    p1 = math.exp(1.0) / (1 + math.exp(1.0))      # softmax of [0, 1] at 1; at -inf it is 0
    np.testing.assert_allclose(g.grad.numpy(), [[p1, -p1], [0.0, 0.0]], rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_std_of_constant_has_zero_gradient(dtype):
    x = torch.tensor([2.0, 2.0, 2.0], dtype=dtype, requires_grad=True)
    s = torch.std(x)
    assert float(s.detach()) == 0.0
    s.backward()
    assert_same(x.grad, [0.0, 0.0, 0.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_min_dim_value_is_the_element_at_the_index(dtype):
    x = torch.tensor([0.0, -0.0, 1.0, 1.0], dtype=dtype)
    v, i = torch.min(x[:2], 0)
    assert int(i) == 0
    assert_same(v, 0.0)
    v, i = torch.max(torch.tensor([-0.0, 0.0], dtype=dtype), 0)
    assert int(i) == 0
    assert_same(v, -0.0)
    v, i = torch.max(torch.tensor([[1.0, NAN, 3.0, NAN]], dtype=dtype), 1)
    assert int(i[0]) == 1 and math.isnan(float(v[0]))          # first NaN


@pytest.mark.parametrize("op", ["floor", "ceil", "trunc", "round", "sign"])
def test_piecewise_constant_ops_have_zero_gradient_under_inf_upstream(op):
    # torch's backward of floor/ceil/trunc/round/sign is zeros_like(grad): 0 even where the
    # incoming gradient is inf or NaN (g * 0 would be NaN); eager and compiled alike
    def f(x):
        return (getattr(torch, op)(x) * torch.tensor([math.inf, math.nan, 1.0])).sum()
    for run in (f, torch.compile(f)):
        x = torch.tensor([1.5, -2.5, 0.25], requires_grad=True)
        run(x).backward()
        assert x.grad.numpy().tolist() == [0.0, 0.0, 0.0]


def test_optional_cross_check_against_torch():
    pt = pytest.importorskip("torch", reason="PyTorch is an optional reference")
    if pt is torch:
        pytest.skip("the reference is Kiln itself")
    F_ = pt.nn.functional
    xs = [-0.0, 0.0, NAN, INF, -INF, -1.0, 2.0, -3.7, 0.25]
    cases = [(lambda m, t: m.relu(t)), (lambda m, t: m.clamp(t, min=0.0)),
             (lambda m, t: m.clamp(t, max=-0.0)), (lambda m, t: m.clamp(t, min=NAN)),
             (lambda m, t: m.nn.functional.threshold(t, 0.0, 5.0)),
             (lambda m, t: m.nn.functional.hardshrink(t)),
             (lambda m, t: m.remainder(t, 2.0)), (lambda m, t: m.hypot(t, m.full_like(t, NAN)))]
    for f in cases:
        a = f(torch, torch.tensor(xs)).numpy()
        b = f(pt, pt.tensor(xs)).numpy()
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b))
        np.testing.assert_array_equal(np.nan_to_num(a), np.nan_to_num(b))
    del F_
