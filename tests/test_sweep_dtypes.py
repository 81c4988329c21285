"""Regressions from the dtype-promotion / integer-semantics sweep against PyTorch 2.13: result
dtypes (category-based promotion with 0-dim tensors and Python scalars), integer wrap-around,
shifts, in-place and out= cast rules, and the exception classes PyTorch raises. Expected values
are derived by hand (or from NumPy/math in float64), never from torch."""
import math

import numpy as np
import pytest

import framework as torch


def _t(v, d):
    return torch.tensor(v, dtype=d)


def _eq(t, values, dtype):
    assert t.dtype is dtype, (t.dtype, dtype)
    np.testing.assert_array_equal(t.numpy(), np.asarray(values, dtype=t.numpy().dtype))


# ---- binary pointwise: promotion and scalar operands ------------------------------------------

def test_div_trunc_with_python_bool_dividend():
    # True is 1 in the integer tensor's dtype: trunc(1 / [2, -1, 1]) = [0, -1, 1]
    _eq(torch.div(True, _t([2, -1, 1], torch.int8), rounding_mode="trunc"), [0, -1, 1], torch.int8)
    _eq(torch.div(False, _t([3, -4], torch.int32), rounding_mode="trunc"), [0, 0], torch.int32)


def test_pow_python_bool_base_with_negative_integer_exponents():
    # 1 ** n is 1 for every integer n (NumPy refuses negative integer powers)
    _eq(torch.pow(True, _t([-1, 2, -3], torch.int8)), [1, 1, 1], torch.int8)
    _eq(True ** _t([-5, 0], torch.int64), [1, 1], torch.int64)


def test_hypot_promotes_by_category_and_takes_tensors_only():
    # a 0-dim float32 does not widen a float16 tensor; sqrt(41) rounded to float16
    r = torch.hypot(_t([3.0, 5.0], torch.float16), _t(4.0, torch.float32))
    _eq(r, [5.0, np.float16(math.sqrt(41.0))], torch.float16)
    # a 0-dim float64 lifts an int tensor's category to float64 (result_type)
    r = torch.hypot(_t([3, 6], torch.int64), _t(4.0, torch.float64))
    assert r.dtype is torch.float64
    np.testing.assert_allclose(r.numpy(), [5.0, math.sqrt(52.0)], rtol=4e-16)
    with pytest.raises(TypeError, match="hypot"):
        torch.hypot(_t([3.0], torch.float32), 4.0)
    with pytest.raises(NotImplementedError, match="hypot"):
        torch.hypot(_t([3], torch.int64), _t([4], torch.int64))
    o = torch.zeros(2, dtype=torch.float64)
    assert torch.hypot(_t([3.0, 0.0], torch.float32), _t([4.0, 1.0], torch.float32), out=o) is o
    _eq(o, [5.0, 1.0], torch.float64)


def test_ldexp_keeps_the_floating_input_dtype():
    _eq(torch.ldexp(_t([1.0, 2.0], torch.float16), _t([1, 3], torch.int64)), [2.0, 16.0],
        torch.float16)
    _eq(torch.ldexp(_t([1.0, 2.0], torch.bfloat16), _t([1, 3], torch.int8)), [2.0, 16.0],
        torch.bfloat16)
    # 0-dim float64 input with an int exponent tensor: float64, broadcast shape
    _eq(torch.ldexp(_t(2.0, torch.float64), _t([1, 3], torch.int32)), [4.0, 16.0], torch.float64)
    # 2**-200 underflows float32 but the exact product 2**100 * 2**-200 = 2**-100 does not
    _eq(torch.ldexp(_t([2.0 ** 100], torch.float32), _t([-200], torch.int64)), [2.0 ** -100],
        torch.float32)
    # integer inputs: default float dtype
    _eq(torch.ldexp(_t([1, 3], torch.int64), _t([1, 3], torch.int64)), [2.0, 24.0], torch.float32)
    with pytest.raises(NotImplementedError, match="Bool"):
        torch.ldexp(_t([1.0], torch.float32), _t([True], torch.bool))


def test_xlogy_computes_in_the_result_type():
    r = torch.xlogy(_t([2.0, 0.0], torch.float16), _t([3, 0], torch.int64))
    _eq(r, [np.float16(2 * math.log(3.0)), 0.0], torch.float16)
    # float64 x with uint8 y: log(200) in float64, not float32
    r = torch.xlogy(_t([1.5], torch.float64), _t([200], torch.uint8))
    assert r.dtype is torch.float64
    assert r.item() == 1.5 * math.log(200.0)
    o = torch.zeros(1, dtype=torch.float32)
    assert torch.xlogy(_t([1.0], torch.float32), _t([math.e], torch.float32), out=o) is o
    np.testing.assert_allclose(o.numpy(), [1.0], rtol=1e-6)


def test_python_int_scalars_past_int64():
    # bfloat16 has no NumPy conversion from a Python int past int64: read it as a float
    r = _t([1.0, 2.0], torch.bfloat16) + 2 ** 63
    _eq(r, [2.0 ** 63, 2.0 ** 63], torch.bfloat16)
    with pytest.raises(OverflowError):
        _t([1, 2], torch.int64) + 2 ** 64
    with pytest.raises(OverflowError):
        torch.mul(_t([1.0], torch.float32), -2 ** 63 - 1)


def test_promotion_table_hand_derived():
    f16, i64 = torch.float16, torch.int64
    cases = [
        (_t([1], torch.int8) + _t([1], torch.uint8), torch.int16),
        (_t([1.0], f16) + _t([1.0], torch.bfloat16), torch.float32),
        (_t([1.0], f16) + _t(1.0, torch.float64), f16),            # 0-dim of same category
        (_t([1], torch.int32) + _t(1.0, torch.float64), torch.float64),   # 0-dim lifts category
        (_t([1], torch.uint8) + _t(1, i64), torch.uint8),
        (_t([True], torch.bool) + 1, i64),
        (_t([1], torch.int8) + 2.5, torch.float32),
        (_t([1.0], f16) + 2.5, f16),
        (_t(True, torch.bool) + _t(1, torch.int8), torch.int8),
    ]
    for t, d in cases:
        assert t.dtype is d, (t.dtype, d)


# ---- integer semantics -----------------------------------------------------------------------

def test_integer_division_rounding_and_zero_division():
    a = _t([-7, 7, -6], torch.int32)
    _eq(torch.floor_divide(a, 2), [-4, 3, -3], torch.int32)
    _eq(torch.remainder(a, 3), [2, 1, 0], torch.int32)
    _eq(torch.fmod(a, 3), [-1, 1, 0], torch.int32)
    _eq(torch.div(a, -2, rounding_mode="trunc"), [3, -3, 3], torch.int32)
    for f in (lambda: a // 0, lambda: a % 0, lambda: torch.fmod(a, _t(0, torch.int32)),
              lambda: torch.div(a, 0, rounding_mode="floor")):
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            f()
    _eq(torch.div(a, 0), [-math.inf, math.inf, -math.inf], torch.float32)


def test_integer_wraparound_shifts_and_negation():
    _eq(_t([100], torch.int8) * _t([3], torch.int8), [44], torch.int8)        # 300 - 256
    _eq(_t([200], torch.uint8) + _t([100], torch.uint8), [44], torch.uint8)
    _eq(-_t([0, 1, 200], torch.uint8), [0, 255, 56], torch.uint8)
    _eq(torch.abs(_t([-128, -1], torch.int8)), [-128, 1], torch.int8)
    a = _t([1, -1, 5], torch.int32)
    _eq(a << 32, [0, 0, 0], torch.int32)                  # shift >= width: 0
    _eq(a << 31, [-2 ** 31] * 3, torch.int32)
    _eq(a >> 40, [0, -1, 0], torch.int32)                 # arithmetic: sign fill
    _eq(_t([255, 1], torch.uint8) << 8, [0, 0], torch.uint8)
    with pytest.raises(RuntimeError, match="Integers to negative integer powers"):
        torch.pow(_t([2], torch.int64), -1)


# ---- unary ops -------------------------------------------------------------------------------

def test_sign_of_nan_and_negative_zero():
    for d in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        r = torch.sign(_t([math.nan, -0.0, 2.5, -3.0], d))
        assert r.dtype is d
        v = r.float().numpy()
        np.testing.assert_array_equal(v, [0.0, 0.0, 1.0, -1.0])     # NaN -> 0 (torch)
        assert not np.signbit(v[1])                                 # -0.0 -> +0.0
        np.testing.assert_array_equal(torch.sgn(_t([math.nan], d)).float().numpy(), [0.0])


def test_signbit_bfloat16():
    r = torch.signbit(_t([-1.0, -0.0, 0.0, 2.0, -math.inf], torch.bfloat16))
    _eq(r, [True, True, False, False, True], torch.bool)


def test_invert_float_is_a_type_error_and_relu_refuses_bool():
    with pytest.raises(TypeError, match="invert"):
        ~_t([1.0], torch.float32)
    _eq(~_t([0, -1], torch.int8), [-1, 0], torch.int8)
    _eq(~_t([True, False], torch.bool), [False, True], torch.bool)
    with pytest.raises(RuntimeError, match="Boolean inputs not supported for relu"):
        torch.relu(_t([True, False], torch.bool))


def test_sinc_half_computes_in_float32():
    r = torch.sinc(_t([-1.0, 0.5, 0.0], torch.float16))
    # sin(pi * -1) in float32 is -8.7e-8 * ... : |sinc(-1)| < 3e-8 rounds to a float16 zero
    _eq(r, [0.0, np.float16(2 / math.pi), 1.0], torch.float16)


def test_unary_out_must_match_the_dtype_kept_ops():
    a = _t([1, -2], torch.int64)
    for f in (torch.neg, torch.abs, torch.sign, torch.floor, torch.trunc):
        with pytest.raises(RuntimeError, match="Found dtype Int but expected Long"):
            f(a, out=torch.empty(2, dtype=torch.int32))
    with pytest.raises(RuntimeError, match="Found dtype Int but expected Bool"):
        torch.abs(_t([True], torch.bool), out=torch.empty(1, dtype=torch.int32))
    o = torch.empty(2, dtype=torch.float64)
    torch.sqrt(_t([4, 9], torch.int64), out=o)                    # promoting ops cast into out
    _eq(o, [2.0, 3.0], torch.float64)


# ---- in-place and out= -----------------------------------------------------------------------

def test_inplace_cast_error_comes_before_the_kernel_dtype_error():
    a = _t([3, 5], torch.int64)
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired "
                                           "output type Long"):
        a &= _t([1.0, 2.0], torch.float32)
    with pytest.raises(RuntimeError, match="result type Double can't be cast"):
        a.bitwise_or_(_t(1.0, torch.float64))
    with pytest.raises(RuntimeError, match="result type Long can't be cast to the desired "
                                           "output type Bool"):
        _t([True], torch.bool).hypot_(_t([1], torch.int64))
    _eq(a, [3, 5], torch.int64)                     # unchanged by the failed writes
    with pytest.raises(RuntimeError, match="result type Float can't be cast"):
        torch.bitwise_and(_t([1.0], torch.float32), _t([1.0], torch.float32),
                          out=torch.empty(1, dtype=torch.int64))


def test_inplace_tensor_only_ops_refuse_python_numbers():
    x = _t([1.0, 2.0], torch.float32)
    for f in (lambda: x.atan2_(1.0), lambda: x.logical_and_(True), lambda: x.hypot_(2)):
        with pytest.raises(TypeError, match="must be Tensor"):
            f()
    _eq(x, [1.0, 2.0], torch.float32)


def test_clamp_on_bool_tensors():
    b = _t([True, False], torch.bool)
    _eq(torch.clamp(b, min=_t([False, True], torch.bool)), [True, True], torch.bool)
    _eq(torch.clamp(b, max=_t([False, True], torch.bool)), [False, False], torch.bool)
    _eq(torch.clamp(b, min=1), [1, 1], torch.int64)
    for kw, kernel in ((dict(min=True), "clamp_min_scalar_cpu"),
                       (dict(max=False), "clamp_max_scalar_cpu"),
                       (dict(min=True, max=True), "clamp_scalar_cpu"),
                       (dict(min=b, max=b), "clamp_cpu")):
        with pytest.raises(NotImplementedError, match=kernel):
            torch.clamp(b, **kw)


def test_lerp_requires_matching_dtypes():
    f = _t([1.0, 3.0], torch.float32)
    with pytest.raises(RuntimeError, match="expected dtype float for `end` but got dtype double"):
        torch.lerp(f, _t([1.0, 2.0], torch.float64), 0.5)
    with pytest.raises(RuntimeError, match="for `weight`"):
        torch.lerp(f, f * 2, _t([0.5, 0.5], torch.float64))
    with pytest.raises(TypeError, match="end"):
        torch.lerp(f, 2.0, 0.5)
    # a 0-dim weight of another dtype is accepted (a scalar)
    _eq(torch.lerp(f, f * 3, _t(0.5, torch.float64)), [2.0, 6.0], torch.float32)


# ---- reductions ------------------------------------------------------------------------------

def test_sum_out_dtype_is_the_accumulation_dtype():
    x = _t([1.5, 2.5, -1.0], torch.float32)
    o = torch.empty((), dtype=torch.int64)
    assert torch.sum(x, 0, out=o) is o
    assert o.item() == 2                                   # 1 + 2 + (-1): each cast first
    ob = torch.empty((), dtype=torch.bool)
    torch.sum(x, 0, out=ob)
    assert ob.item() is True
    with pytest.raises(RuntimeError, match="Expected out tensor to have dtype"):
        torch.sum(x, 0, dtype=torch.float64, out=torch.empty((), dtype=torch.int64))


def test_reduction_result_dtypes():
    b = _t([True, True, False], torch.bool)
    assert b.sum().dtype is torch.int64 and b.sum().item() == 2
    assert b.cumsum(0).dtype is torch.int64
    assert _t([2, 3], torch.int8).prod().dtype is torch.int64
    assert b.max().dtype is torch.bool and b.max().item() is True
    assert b.amax().dtype is torch.bool
    with pytest.raises(RuntimeError, match="argmax"):
        b.argmax()
    with pytest.raises(RuntimeError, match="mean"):
        _t([1, 2], torch.int64).mean()
    assert _t([1, 2], torch.int64).mean(dtype=torch.float64).item() == 1.5
    with pytest.raises(NotImplementedError, match="median"):
        b.median()
    with pytest.raises(NotImplementedError, match="median"):
        b.reshape(1, 3).median(1)


def test_softmax_of_integers_raises_unless_a_dtype_is_given():
    i = torch.ones(2, 3, dtype=torch.int64)
    with pytest.raises(NotImplementedError, match="softmax_lastdim_kernel_impl.*Long"):
        torch.softmax(i, 1)
    with pytest.raises(NotImplementedError, match="softmax_kernel_impl.*Long"):
        torch.softmax(i, 0)
    with pytest.raises(NotImplementedError, match="log_softmax_lastdim_kernel_impl.*Bool"):
        torch.log_softmax(torch.ones(3, dtype=torch.bool), 0)
    r = torch.softmax(i, 1, dtype=torch.float64)
    _eq(r, np.full((2, 3), 1 / 3), torch.float64)


def test_matches_torch_where_available():
    torch_ref = pytest.importorskip("torch", reason="optional cross-check against PyTorch")
    if torch_ref is torch:      # pragma: no cover - the real torch is not importable here
        pytest.skip("torch resolves to Kiln")
    for f in (lambda L: L.ldexp(L.tensor([1.0, 2.0], dtype=L.float16), L.tensor([1, 3])),
              lambda L: L.hypot(L.tensor([3.0, 5.0], dtype=L.float16), L.tensor(4.0)),
              lambda L: L.sign(L.tensor([float("nan"), -0.0, 2.0]))):
        a, b = f(torch_ref), f(torch)
        assert str(a.dtype) == str(b.dtype)
        np.testing.assert_array_equal(a.float().numpy(), b.float().numpy())


def test_half_types_meet_python_numbers_in_float32():
    # PyTorch's opmath: float16/bfloat16 arithmetic runs in float32, so 0.7 stays 0.7f (NumPy
    # would round it to half first: 1 / 0.7002 = 1.4277 instead of 1.4287); eager and compiled
    a = torch.tensor([1.0, 2.0, 3.0]).half()
    b = torch.ones(2, dtype=torch.bfloat16)
    assert (a / 0.7).float().numpy().tolist() == [1.4287109375, 2.857421875, 4.28515625]
    assert (a * 0.1).float().numpy().tolist() == [0.0999755859375, 0.199951171875,
                                                  0.300048828125]
    assert (0.3 - a).float().numpy().tolist() == [-0.7001953125, -1.7001953125, -2.69921875]
    assert (b / 0.7).float().numpy().tolist() == [1.4296875] * 2
    assert (b - 0.3).float().numpy().tolist() == [0.69921875] * 2
    c = torch.compile(lambda x: x / 0.7 + 0.1)
    assert c(torch.ones(3).half()).float().numpy().tolist() == [1.5283203125] * 3
