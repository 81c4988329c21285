"""torch.uint16 / uint32 / uint64: PyTorch 2.13's "limited support" for its barebones unsigned
dtypes. They are created, cast, printed, compared for equality, multiplied, and'ed/or'ed/xor'ed,
summed (in int64), sorted, indexed, reshaped and serialized; most other CPU kernels raise
NotImplementedError naming the kernel and the dtype, and promotion with any non-floating dtype
raises RuntimeError. Expected values are derived by hand; the last test optionally runs the probe
list against torch itself (skipped without it)."""
import io
import math
import re

import numpy as np
import pytest

import framework as torch

UINTS = [torch.uint16, torch.uint32, torch.uint64]
BITS = {torch.uint16: 16, torch.uint32: 32, torch.uint64: 64}
NAME = {torch.uint16: "UInt16", torch.uint32: "UInt32", torch.uint64: "UInt64"}


def _t(v, d):
    return torch.tensor(v, dtype=d)


def _eq(t, values, dtype):
    assert t.dtype is dtype, (t.dtype, dtype)
    assert t.tolist() == values


def _refused(kernel, d, fn):
    """fn raises PyTorch's NotImplementedError for `kernel` on dtype d."""
    with pytest.raises(NotImplementedError, match=f"\"{re.escape(kernel)}\" not implemented for "
                                                  f"'{NAME[d]}'"):
        fn()


def _no_promotion(a, b, fn):
    with pytest.raises(RuntimeError, match=f"Promotion for uint16, uint32, uint64 types is not "
                                           f"supported, attempted to promote {a} and {b}"):
        fn()


# ---- the dtype objects --------------------------------------------------------------------------

@pytest.mark.parametrize("d", UINTS)
def test_dtype_attributes_and_iinfo(d):
    n = BITS[d]
    assert repr(d) == str(d) == f"torch.uint{n}"
    assert d.is_signed is False and d.is_floating_point is False and d.is_complex is False
    assert d.itemsize == n // 8 and _t([1], d).element_size() == n // 8
    i = torch.iinfo(d)
    assert (i.bits, i.min, i.max, i.dtype) == (n, 0, 2 ** n - 1, f"uint{n}")
    with pytest.raises(TypeError):
        torch.finfo(d)
    assert _t([1], d).type() == f"torch.{NAME[d]}Tensor"
    assert _t([1, 2], torch.int64).type(f"torch.{NAME[d]}Tensor").dtype is d


def test_iinfo_repr():
    assert repr(torch.iinfo(torch.uint16)) == "iinfo(min=0, max=65535, dtype=uint16)"
    assert repr(torch.iinfo(torch.uint32)) == "iinfo(min=0, max=4.29497e+09, dtype=uint32)"
    assert repr(torch.iinfo(torch.uint64)) == "iinfo(min=0, max=1.84467e+19, dtype=uint64)"


# ---- creation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("d", UINTS)
def test_tensor_from_python_values(d):
    n = BITS[d]
    _eq(_t([0, 1, 65535], d), [0, 1, 65535], d)
    _eq(_t(5, d), 5, d)
    _eq(_t([True, False], d), [1, 0], d)
    if d is torch.uint64:
        # unpacked as unsigned 64-bit Python ints: the whole range, no negatives, no floats
        _eq(_t([2 ** 63, 2 ** 64 - 1], d), [2 ** 63, 2 ** 64 - 1], d)
        with pytest.raises(OverflowError, match="can't convert negative int to unsigned"):
            _t([-1], d)
        with pytest.raises(OverflowError, match="int too big to convert"):
            _t([2 ** 64], d)
        with pytest.raises(TypeError, match="an integer is required"):
            _t([1.5], d)
        with pytest.raises(TypeError, match="an integer is required"):
            _t([np.int64(3)], d)
    else:
        _eq(_t([-1, -2], d), [2 ** n - 1, 2 ** n - 2], d)      # negatives wrap (down to -max)
        _eq(_t([1.7, 2.2], d), [1, 2], d)                       # floats truncate
        with pytest.raises(RuntimeError, match=f"value cannot be converted to type uint{n} "
                                               f"without overflow"):
            _t([2 ** n], d)
        with pytest.raises(ValueError, match="Overflow when unpacking long long"):
            _t([2 ** 63], d)


@pytest.mark.parametrize("d", UINTS)
def test_factories(d):
    n = BITS[d]
    _eq(torch.zeros(2, 3, dtype=d), [[0] * 3] * 2, d)
    _eq(torch.ones(3, dtype=d), [1, 1, 1], d)
    _eq(torch.full((2,), 7, dtype=d), [7, 7], d)
    _eq(torch.full((2,), -1, dtype=d), [2 ** n - 1] * 2, d)       # -1 wraps, as a C cast
    assert torch.empty(2, 2, dtype=d).dtype is d
    x = _t([1, 2, 3], d)
    _eq(torch.zeros_like(x), [0, 0, 0], d)
    _eq(torch.ones_like(x), [1, 1, 1], d)
    _eq(torch.full_like(x, 9), [9, 9, 9], d)
    _eq(x.new_full((2,), 3), [3, 3], d)
    _eq(torch.full((1,), 2 ** n - 1, dtype=d), [2 ** n - 1], d)
    if d is not torch.uint64:
        with pytest.raises(RuntimeError, match=f"value cannot be converted to type uint{n}_t "
                                               f"without overflow"):
            torch.full((1,), 2 ** n, dtype=d)


@pytest.mark.parametrize("d", UINTS)
def test_numpy_interop_shares_memory(d):
    n = BITS[d]
    a = np.array([1, 2, 2 ** n - 1], dtype=d.np)
    t = torch.from_numpy(a)
    _eq(t, [1, 2, 2 ** n - 1], d)
    a[0] = 7
    assert t.tolist()[0] == 7
    _eq(torch.as_tensor(np.array([3, 4], d.np)), [3, 4], d)
    _eq(torch.tensor(np.array([3, 4], d.np)), [3, 4], d)
    _eq(torch.tensor(np.array([-1]), dtype=d), [2 ** n - 1], d)    # an array is cast (wraps)
    r = t.numpy()
    assert r.dtype == np.dtype(f"uint{n}") and r.tolist() == [7, 2, 2 ** n - 1]


@pytest.mark.parametrize("d", UINTS)
def test_randint_draws_as_the_other_integer_dtypes(d):
    torch.manual_seed(5)
    r = torch.randint(0, 10, (20,), dtype=d)
    torch.manual_seed(5)
    ref = torch.randint(0, 10, (20,))
    _eq(r, ref.tolist(), d)
    torch.manual_seed(5)
    _eq(torch.randint_like(r, 10), ref.tolist(), d)


@pytest.mark.parametrize("d", UINTS)
def test_refused_factories(d):
    _refused("arange_cpu", d, lambda: torch.arange(5, dtype=d))
    _refused("linspace_cpu", d, lambda: torch.linspace(0, 10, 5, dtype=d))
    _refused("eye", d, lambda: torch.eye(2, dtype=d))
    _refused("randperm", d, lambda: torch.randperm(4, dtype=d))
    _refused("check_uniform_bounds", d, lambda: torch.rand(2, dtype=d))
    _refused("normal_kernel_cpu", d, lambda: torch.randn(2, dtype=d))
    _refused("random_kernel_cpu", d, lambda: torch.zeros(2, dtype=d).random_())
    _eq(torch.zeros(3, dtype=d).random_(1, 2), [1, 1, 1], d)     # (a range draws)


# ---- casts --------------------------------------------------------------------------------------

OTHERS = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
          torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64,
          torch.complex128]


@pytest.mark.parametrize("d", UINTS)
@pytest.mark.parametrize("o", OTHERS + UINTS)
def test_casts_both_ways(d, o):
    vals = [False, True, True] if o is torch.bool else [0, 1, 100]
    r = _t(vals, o).to(d)
    assert r.dtype is d and r.tolist() == [0, 1, 1 if o is torch.bool else 100]
    back = _t([0, 1, 100], d).to(o)
    assert back.dtype is o
    assert back.tolist() == ([False, True, True] if o is torch.bool else [0, 1, 100])


@pytest.mark.parametrize("d", UINTS)
def test_cast_wraparound(d):
    n = BITS[d]
    _eq(_t([-1, -2], torch.int64).to(d), [2 ** n - 1, 2 ** n - 2], d)
    _eq(_t([3.9, 0.2], torch.float64).to(d), [3, 0], d)
    _eq(_t([2 ** n - 1], d).to(torch.int64), [2 ** n - 1 if n < 64 else -1], torch.int64)
    _eq(_t([2 ** n - 1, 255], d).to(torch.int8), [-1, -1], torch.int8)
    _eq(_t([65535], d).to(torch.uint16).to(torch.uint64), [65535], torch.uint64)
    _eq(_t([2 ** 63 + 2 ** 20], torch.uint64).to(torch.float64), [float(2 ** 63 + 2 ** 20)],
        torch.float64)
    _eq(_t([5, 6], d).float(), [5.0, 6.0], torch.float32)
    _eq(_t([5, 6], d).long(), [5, 6], torch.int64)


# ---- printing -----------------------------------------------------------------------------------

def test_repr():
    assert repr(_t([0, 1, 65535], torch.uint16)) == \
        "tensor([    0,     1, 65535], dtype=torch.uint16)"
    assert repr(_t(7, torch.uint32)) == "tensor(7, dtype=torch.uint32)"
    assert repr(_t([2 ** 64 - 1, 3], torch.uint64)) == \
        "tensor([18446744073709551615,                    3], dtype=torch.uint64)"
    assert str(_t([[1, 2], [3, 4]], torch.uint32)) == \
        "tensor([[1, 2],\n        [3, 4]], dtype=torch.uint32)"
    assert repr(_t([], torch.uint16)) == "tensor([], dtype=torch.uint16)"


# ---- promotion ----------------------------------------------------------------------------------

@pytest.mark.parametrize("d", UINTS)
def test_promote_types(d):
    for f in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        assert torch.promote_types(d, f) is f and torch.promote_types(f, d) is f
    assert torch.promote_types(d, d) is d
    for o, oname in ((torch.bool, "Bool"), (torch.uint8, "Byte"), (torch.int8, "Char"),
                     (torch.int64, "Long"), (torch.complex64, "ComplexFloat")):
        _no_promotion(NAME[d], oname, lambda: torch.promote_types(d, o))
        _no_promotion(oname, NAME[d], lambda: torch.promote_types(o, d))
    for o in UINTS:
        if o is not d:
            _no_promotion(NAME[d], NAME[o], lambda: torch.promote_types(d, o))


@pytest.mark.parametrize("d", UINTS)
def test_result_type(d):
    x = _t([1, 2], d)
    assert torch.result_type(x, 1) is d
    assert torch.result_type(x, True) is d
    assert torch.result_type(x, 1.5) is torch.float32
    assert torch.result_type(x, 1j) is torch.complex64          # (a scalar lifts the category)
    assert torch.result_type(x, _t(1, torch.int64)) is d        # a 0-d int does not widen
    assert torch.result_type(_t(1, d), _t([1], torch.int64)) is torch.int64
    assert torch.result_type(x, _t(1.0, torch.float64)) is torch.float64
    assert torch.result_type(x, _t([1.0], torch.float32)) is torch.float32
    _no_promotion(NAME[d], "Long", lambda: torch.result_type(x, _t([1], torch.int64)))
    _no_promotion(NAME[d], "Bool", lambda: torch.result_type(x, _t([True], torch.bool)))
    _no_promotion("Bool", NAME[d], lambda: torch.result_type(_t([True], torch.bool), _t(1, d)))
    _no_promotion(NAME[d], "Long", lambda: torch.result_type(_t(1, d), _t(1, torch.int64)))


# ---- arithmetic and comparisons -----------------------------------------------------------------

@pytest.mark.parametrize("d", UINTS)
def test_supported_arithmetic(d):
    n = BITS[d]
    a, b = _t([7, 2, 9], d), _t([2, 2, 4], d)
    _eq(a * b, [14, 4, 36], d)
    _eq(a * 3, [21, 6, 27], d)
    _eq(3 * a, [21, 6, 27], d)
    _eq(a * _t(3, torch.int64), [21, 6, 27], d)                   # 0-d int64: a's dtype
    _eq(_t([2 ** (n - 1)], d) * 2, [0], d)                        # wraps at 2**n
    _eq(a * -1, [2 ** n - 7, 2 ** n - 2, 2 ** n - 9], d)          # -1 is 2**n - 1
    _eq(a * (2 ** 64 - 1), [(7 * (2 ** 64 - 1)) % 2 ** n, (2 * (2 ** 64 - 1)) % 2 ** n,
                            (9 * (2 ** 64 - 1)) % 2 ** n], d)
    _eq(a & b, [2, 2, 0], d)
    _eq(a | 3, [7, 3, 11], d)
    _eq(a ^ b, [5, 0, 13], d)
    _eq(a & -1, [7, 2, 9], d)
    _eq(a ** 1, [7, 2, 9], d)                                     # x ** 1 copies, x ** 0 fills
    _eq(a ** 0, [1, 1, 1], d)
    assert (a / b).dtype is torch.float32 and (a / b).tolist() == [3.5, 1.0, 2.25]
    _eq(a * 1.5, [10.5, 3.0, 13.5], torch.float32)
    _eq(a + _t([1.0, 2.0, 3.0], torch.float32), [8.0, 4.0, 12.0], torch.float32)
    r = a.sqrt()                                                  # computed in float32
    assert r.dtype is torch.float32 and r.tolist()[2] == 3.0
    assert r.tolist()[0] == float(np.float32(math.sqrt(7)))
    x = a.clone()
    x *= 2
    _eq(x, [14, 4, 18], d)
    with pytest.raises(OverflowError):
        a * 2 ** 64


@pytest.mark.parametrize("d", UINTS)
def test_comparisons(d):
    a, b = _t([7, 2, 9], d), _t([2, 2, 4], d)
    _eq(a == b, [False, True, False], torch.bool)
    _eq(a != 2, [True, False, True], torch.bool)
    if d is not torch.uint64:
        _eq(a == 2 ** BITS[d] + 2, [False, True, False], torch.bool)  # the scalar wraps
    _eq(a == -1, [False, False, False], torch.bool)
    _eq(a.eq(2), [False, True, False], torch.bool)
    _eq(a < _t([8.0, 1.0, 9.0], torch.float32), [True, False, False], torch.bool)
    _eq(a >= 1.5, [True, True, True], torch.bool)
    assert torch.equal(a, a.clone()) and not torch.equal(a, b)
    assert torch.allclose(a, a.clone())
    _eq(torch.isclose(_t([10, 0], d), _t([11, 2 ** BITS[d] - 1], d), rtol=0.1, atol=0),
        [True, False], torch.bool)                                # no wrapped distance
    _eq(a.isnan(), [False] * 3, torch.bool)
    _eq(a.isfinite(), [True] * 3, torch.bool)
    _eq(a.isneginf(), [False] * 3, torch.bool)
    for k, f in (("lt_cpu", lambda: a < b), ("le_cpu", lambda: a <= 2), ("gt_cpu", lambda: a > b),
                 ("ge_cpu", lambda: a >= _t(2, torch.int64)), ("gt_cpu", lambda: 3 < a)):
        _refused(k, d, f)
    _no_promotion(NAME[d], "Long", lambda: a == _t([1, 2, 3], torch.int64))
    _no_promotion(NAME[d], "Bool", lambda: a == _t([True, False, True], torch.bool))


@pytest.mark.parametrize("d", UINTS)
def test_refused_arithmetic(d):
    a, b = _t([7, 2, 9], d), _t([2, 2, 4], d)
    for k, f in (("add_stub", lambda: a + b), ("add_stub", lambda: a + 1), ("add_stub", lambda: a - b),
                 ("add_stub", lambda: 1 - a), ("div_floor_cpu", lambda: a // b),
                 ("remainder_cpu", lambda: a % 2), ("pow", lambda: a ** 2), ("pow", lambda: a.square()),
                 ("lshift_cpu", lambda: a << 1), ("rshift_cpu", lambda: a >> b),
                 ("neg_cpu", lambda: -a), ("abs_cpu", lambda: a.abs()),
                 ("bitwise_not_cpu", lambda: ~a), ("sign_cpu", lambda: a.sign()),
                 ("maximum_cpu", lambda: torch.maximum(a, b)), ("minimum_cpu", lambda: torch.min(a, b)),
                 ("fmod_cpu", lambda: torch.fmod(a, 2)), ("div_trunc_cpu",
                                                          lambda: torch.div(a, b, rounding_mode="trunc")),
                 ("logical_and_cpu", lambda: a.logical_and(b)), ("logical_not_cpu", lambda: a.logical_not()),
                 ("clamp_scalar_cpu", lambda: a.clamp(2, 3)), ("clamp_min_scalar_cpu", lambda: a.clamp(min=2)),
                 ("clamp_min_scalar_cpu", lambda: a.relu()), ("gcd_cpu", lambda: a.gcd(b))):
        _refused(k, d, f)
    x = a.clone()
    _refused("add_stub", d, lambda: x.add_(1))
    assert x.tolist() == [7, 2, 9]                                 # nothing written
    with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with a bool tensor"):
        a - _t([True, False, True], torch.bool)


# ---- reductions and ordering --------------------------------------------------------------------

@pytest.mark.parametrize("d", UINTS)
def test_reductions(d):
    n = BITS[d]
    a = _t([[1, 2], [3, 4]], d)
    _eq(a.sum(), 10, torch.int64)
    _eq(a.sum(0), [4, 6], torch.int64)
    _eq(a.prod(), 24, torch.int64)
    _eq(a.sum(dtype=torch.float32), 10.0, torch.float32)
    _eq(a.flatten().cumsum(0), [1, 3, 6, 10], torch.int64)
    _eq(a.flatten().cumprod(0), [1, 2, 6, 24], torch.int64)
    # summed in int64: uint64's maximum is -1 there
    _eq(_t([2 ** n - 1, 2], d).sum(), 2 ** n + 1 if n < 64 else 1, torch.int64)
    _eq(a.any(), True, torch.bool)
    _eq(_t([0, 1], d).all(), False, torch.bool)
    _eq(a.count_nonzero(0), [2, 2], torch.int64)
    _refused("sum_cpu", d, lambda: a.sum(dtype=d))
    _refused("prod_out_cpu", d, lambda: a.prod(dtype=d))
    _refused("cumsum_out_cpu", d, lambda: a.cumsum(0, dtype=d))
    _refused("max_all", d, lambda: a.max())
    _refused("max_cpu", d, lambda: a.max(0))
    _refused("min_all", d, lambda: a.min())
    _refused("max_values_cpu", d, lambda: a.amax())
    _refused("argmax_cpu", d, lambda: a.argmax())
    _refused("argmin_cpu", d, lambda: a.argmin())
    _refused("aminmax_cpu", d, lambda: a.aminmax())
    _refused("nonzero_count_cpu", d, lambda: a.count_nonzero())
    with pytest.raises(RuntimeError, match="mean\\(\\): could not infer output dtype"):
        a.mean()


@pytest.mark.parametrize("d", UINTS)
def test_sorting(d):
    n = BITS[d]
    a = _t([3, 2 ** n - 1, 1, 3], d)
    v, i = a.sort()
    _eq(v, [1, 3, 3, 2 ** n - 1], d)
    _eq(i, [2, 0, 3, 1], torch.int64)
    _eq(a.sort(descending=True)[0], [2 ** n - 1, 3, 3, 1], d)
    _eq(a.argsort(), [2, 0, 3, 1], torch.int64)
    _eq(torch.unique(a), [1, 3, 2 ** n - 1], d)
    _eq(torch.isin(a, 3), [True, False, False, True], torch.bool)
    _refused("topk_cpu", d, lambda: a.topk(2))
    _refused("kthvalue_cpu", d, lambda: a.kthvalue(1))
    _refused("median_cpu", d, lambda: a.median())
    _refused("mode_cpu", d, lambda: a.mode())
    _refused("cummax_cpu", d, lambda: a.cummax(0))
    _refused("isin_default_cpu", d, lambda: torch.isin(a, a))
    _refused("bincount_cpu", d, lambda: torch.bincount(a))
    _refused("searchsorted_out_cpu", d, lambda: torch.searchsorted(a.sort()[0], a))


# ---- indexing and shapes ------------------------------------------------------------------------

@pytest.mark.parametrize("d", UINTS)
def test_indexing(d):
    n = BITS[d]
    a = _t([1, 2, 3, 4], d)
    _eq(a[1], 2, d)
    _eq(a[1::2], [2, 4], d)
    _eq(a[_t([True, False, True, False], torch.bool)], [1, 3], d)
    _eq(a[_t([2, 0], torch.int64)], [3, 1], d)
    _eq(a[[3, 0]], [4, 1], d)
    _eq(_t([10, 20, 30], torch.int64)[_t(1, d)], 20, torch.int64)   # a 0-d index is an int
    assert [10, 20, 30][_t(2, d)] == 30
    with pytest.raises(IndexError, match="tensors used as indices must be long, int, byte or bool"):
        _t([10, 20, 30], torch.int64)[_t([1], d)]
    x = a.clone()
    x[1] = 99
    x[2:] = _t([7, 8], torch.int64)                              # copy_ casts
    x[0] = -1                                                    # wraps
    _eq(x, [2 ** n - 1, 99, 7, 8], d)
    if n < 64:
        with pytest.raises(RuntimeError, match=f"uint{n}_t without overflow"):
            x[0] = 2 ** n
    _refused("index_put", d, lambda: x.__setitem__(_t([0, 1], torch.int64), 5))
    _refused("masked_fill", d, lambda: x.__setitem__(_t([True, False, True, False], torch.bool), 0))
    _eq(x, [2 ** n - 1, 99, 7, 8], d)
    x.fill_(4)
    _eq(x, [4, 4, 4, 4], d)
    x.zero_()
    _eq(x, [0, 0, 0, 0], d)
    x.copy_(_t([5.7, 6, 7, 8], torch.float32))
    _eq(x, [5, 6, 7, 8], d)
    i = _t([2, 0], torch.int64)
    _refused("scatter_gather_tensor_cpu", d, lambda: a.gather(0, i))
    _refused("scatter_gather_tensor_cpu", d, lambda: a.scatter(0, i, a[:2]))
    _refused("scatter_gather_scalar_cpu", d, lambda: a.scatter(0, i, 5))
    _refused("scatter_gather_tensor_cpu", d, lambda: a.scatter_add(0, i, a[:2]))
    _refused("index_select", d, lambda: a.index_select(0, i))
    _refused("index_add_", d, lambda: a.index_add(0, i, a[:2]))
    _refused("masked_fill", d, lambda: a.masked_fill(a.bool(), 5))
    _refused("masked_select", d, lambda: a.masked_select(a.bool()))
    _refused("take_cpu", d, lambda: a.take(i))
    _refused("nonzero_count_cpu", d, lambda: a.nonzero())
    _refused("index_put", d, lambda: a.index_put((i,), a[:2]))


@pytest.mark.parametrize("d", UINTS)
def test_shapes_and_joins(d):
    n = BITS[d]
    a = _t([1, 2, 3, 4], d)
    m = a.view(2, 2)
    _eq(m, [[1, 2], [3, 4]], d)
    _eq(a.reshape(2, 2).t(), [[1, 3], [2, 4]], d)
    _eq(m.t().contiguous(), [[1, 3], [2, 4]], d)
    _eq(torch.cat([a, _t([5], d)]), [1, 2, 3, 4, 5], d)
    _eq(torch.stack([a[:2], a[2:]]), [[1, 2], [3, 4]], d)
    _eq(torch.where(_t([True, False, True, False], torch.bool), a, 0), [1, 0, 3, 0], d)
    _eq(a[:1].expand(3), [1, 1, 1], d)
    _eq(a[:2].repeat(2), [1, 2, 1, 2], d)
    _eq(a.roll(1), [4, 1, 2, 3], d)
    _eq(a[:2].repeat_interleave(2), [1, 1, 2, 2], d)
    _eq(a.unsqueeze(0), [[1, 2, 3, 4]], d)
    assert [c.tolist() for c in a.chunk(2)] == [[1, 2], [3, 4]]
    _eq(torch.diag(a[:2]), [[1, 0], [0, 2]], d)
    _eq(torch.outer(a[:2], a[:2]), [[1, 2], [2, 4]], d)
    b = a.view(torch.uint8)                                      # the little-endian bytes
    assert b.dtype is torch.uint8 and b.shape == (4 * n // 8,)
    assert b.tolist()[:n // 8] == [1] + [0] * (n // 8 - 1)
    _eq(_t([2 ** n - 1], d).view({16: torch.int16, 32: torch.int32, 64: torch.int64}[n]), [-1],
        {16: torch.int16, 32: torch.int32, 64: torch.int64}[n])
    _no_promotion(NAME[d], "Long", lambda: torch.cat([a, _t([5], torch.int64)]))
    _refused("flip_cpu", d, lambda: a.flip(0))
    _refused("tril", d, lambda: m.tril())
    _refused("triu", d, lambda: m.triu())
    _refused("addmm_impl_cpu_", d, lambda: m @ m)
    _refused("dot", d, lambda: torch.dot(a, a))
    _refused("addmv_impl_cpu", d, lambda: m @ a[:2])
    _refused("bmm", d, lambda: torch.bmm(m[None], m[None]))


@pytest.mark.parametrize("d", UINTS)
def test_python_values(d):
    n = BITS[d]
    t = _t([2 ** n - 1, 0], d)
    assert t.tolist() == [2 ** n - 1, 0]
    assert t[0].item() == 2 ** n - 1 and isinstance(t[0].item(), int)
    assert int(_t(5, d)) == 5 and float(_t(5, d)) == 5.0 and bool(_t(5, d)) is True


# ---- serialization ------------------------------------------------------------------------------

@pytest.mark.parametrize("d", UINTS)
def test_save_load_roundtrip(d):
    n = BITS[d]
    base = _t([[1, 2, 2 ** n - 1], [4, 5, 6]], d)
    buf = io.BytesIO()
    torch.save({"x": base, "col": base[:, 1], "dtype": d}, buf)
    buf.seek(0)
    r = torch.load(buf)
    _eq(r["x"], [[1, 2, 2 ** n - 1], [4, 5, 6]], d)
    assert r["dtype"] is d
    r["x"][0, 1] = 9                                             # the view shares storage
    assert r["col"].tolist() == [9, 5]


def test_safetensors_roundtrip():
    from framework.utils import safetensors as st
    r = st.load(st.save({"a": _t([1, 65535], torch.uint16), "b": _t([2 ** 32 - 1], torch.uint32),
                         "c": _t([2 ** 64 - 1], torch.uint64)}))
    _eq(r["a"], [1, 65535], torch.uint16)
    _eq(r["b"], [2 ** 32 - 1], torch.uint32)
    _eq(r["c"], [2 ** 64 - 1], torch.uint64)


def test_load_pytorch_checkpoint_of_unsigned_tensors():
    real = pytest.importorskip("torch", reason="an optional cross-check against PyTorch itself")
    buf = io.BytesIO()
    base = real.tensor([[1, 2, 65535], [4, 5, 6]], dtype=real.uint16)
    # PyTorch saves these with _rebuild_tensor_v3 over an UntypedStorage
    real.save({"a": base, "v": base[:, 1], "u32": real.tensor([2 ** 32 - 1], dtype=real.uint32),
               "u64": real.tensor([2 ** 64 - 1, 3], dtype=real.uint64),
               "f": real.tensor([1.5])}, buf)
    buf.seek(0)
    r = torch.load(buf)
    _eq(r["a"], [[1, 2, 65535], [4, 5, 6]], torch.uint16)
    _eq(r["v"], [2, 5], torch.uint16)
    assert r["v"].stride() == (3,)
    _eq(r["u32"], [2 ** 32 - 1], torch.uint32)
    _eq(r["u64"], [2 ** 64 - 1, 3], torch.uint64)
    _eq(r["f"], [1.5], torch.float32)


# ---- rules the unsigned dtypes share with the other integers -------------------------------------

def test_setitem_converts_python_integers_as_fill():
    # c10's checked conversion: in range (unsigned: down to -max, wrapping), else RuntimeError
    x = torch.zeros(2, dtype=torch.uint8)
    x[0] = -1
    assert x.tolist() == [255, 0]
    for d, v, c in ((torch.int8, 200, "int8_t"), (torch.uint8, 256, "uint8_t"),
                    (torch.int32, float("nan"), "int")):
        with pytest.raises(RuntimeError, match=f"value cannot be converted to type {c} without"):
            torch.zeros(2, dtype=d)[0] = v


def test_isclose_of_integers_measures_in_the_default_float_dtype():
    # 2**24 + 1 and 2**24 are one float32 apart: zero, within atol=0.5 (torch's closeness)
    for d in (torch.int32, torch.int64, torch.uint32, torch.uint64):
        assert torch.isclose(_t([2 ** 24 + 1], d), _t([2 ** 24], d), rtol=0, atol=0.5).tolist() == \
            [True]
    assert torch.isclose(_t([5], torch.int64), _t([7], torch.int64), rtol=0, atol=1).tolist() == \
        [False]


# ---- torch.testing and compile --------------------------------------------------------------------

@pytest.mark.parametrize("d", UINTS)
def test_make_tensor_and_assert_close(d):
    torch.manual_seed(0)
    r = torch.testing.make_tensor((5,), dtype=d, device="cpu")
    torch.manual_seed(0)
    ref = torch.testing.make_tensor((5,), dtype=torch.uint8, device="cpu")   # same range [0, 10)
    _eq(r, ref.tolist(), d)
    torch.testing.assert_close(r, r.clone())
    with pytest.raises(AssertionError, match="Tensor-likes are not equal"):
        torch.testing.assert_close(r, _t([v + 1 for v in r.tolist()], d))


@pytest.mark.parametrize("d", UINTS)
def test_compiled_matches_eager(d):
    n = BITS[d]

    def f(x, y):
        return (x * y) & 7, x == y, x.to(torch.float64) * 2, (x * 3).sum()

    x, y = _t([1, 2, 2 ** n - 1], d), _t([3, 2, 2], d)
    g = torch.compile(f)
    for _ in range(2):
        got = g(x, y)
    for a, b in zip(got, f(x, y)):
        assert a.dtype is b.dtype and a.tolist() == b.tolist()
    _eq(got[0], [3, 4, (2 * (2 ** n - 1) % 2 ** n) & 7], d)


# ---- cross-check against PyTorch 2.13 --------------------------------------------------------------

def _probes():
    """name -> f(T, d): the same ops on either module (T) and one of its uint dtypes (d)."""
    def t(T, d, v=(7, 2, 9)):
        return T.tensor(list(v), dtype=d)

    def mx(T, d):
        return T.iinfo(d).max

    p = {
        "tensor": lambda T, d: T.tensor([0, 1, 65535], dtype=d),
        "tensor_neg": lambda T, d: T.tensor([-1], dtype=d),
        "tensor_over16": lambda T, d: T.tensor([70000], dtype=d),
        "tensor_over32": lambda T, d: T.tensor([2 ** 32 + 5], dtype=d),
        "tensor_2pow63": lambda T, d: T.tensor([2 ** 63], dtype=d),
        "tensor_max": lambda T, d: T.tensor([mx(T, d)], dtype=d),
        "tensor_float": lambda T, d: T.tensor([1.7, 2.2], dtype=d),
        "zeros": lambda T, d: T.zeros(2, 3, dtype=d),
        "ones": lambda T, d: T.ones(3, dtype=d),
        "full_neg": lambda T, d: T.full((2,), -1, dtype=d),
        "full_like": lambda T, d: T.full_like(t(T, d), 9),
        "arange": lambda T, d: T.arange(5, dtype=d),
        "linspace": lambda T, d: T.linspace(0, 10, 5, dtype=d),
        "eye": lambda T, d: T.eye(2, dtype=d),
        "randint": lambda T, d: (T.manual_seed(3), T.randint(0, 10, (6,), dtype=d))[1],
        "rand": lambda T, d: T.rand(2, dtype=d),
        "from_numpy": lambda T, d: T.from_numpy(np.array([1, 2, 40000], dtype=str(d)[6:])),
        "cast_neg_int64": lambda T, d: T.tensor([-1, -2]).to(d),
        "cast_float": lambda T, d: T.tensor([1e9, 3.9], dtype=T.float64).to(d),
        "cast_max_int64": lambda T, d: T.tensor([mx(T, d)], dtype=d).to(T.int64),
        "cast_max_f32": lambda T, d: T.tensor([mx(T, d)], dtype=d).to(T.float32),
        "cast_bool": lambda T, d: T.tensor([0, 5], dtype=d).to(T.bool),
        "cast_int8": lambda T, d: T.tensor([255, 128], dtype=d).to(T.int8),
        "repr": lambda T, d: repr(T.tensor([0, 1, 65535], dtype=d)),
        "repr_max": lambda T, d: repr(T.tensor([mx(T, d), 3], dtype=d)),
        "type": lambda T, d: t(T, d).type(),
        "iinfo": lambda T, d: repr(T.iinfo(d)),
        "eq": lambda T, d: t(T, d) == t(T, d, (2, 2, 4)),
        "eq_scalar_wrap": lambda T, d: t(T, d) == 65538,
        "ne_0d": lambda T, d: t(T, d) != T.tensor(2),
        "lt": lambda T, d: t(T, d) < t(T, d, (2, 2, 4)),
        "lt_f32": lambda T, d: t(T, d) < T.tensor([8.0, 1.0, 9.0]),
        "ge_scalar": lambda T, d: t(T, d) >= 3,
        "eq_int64": lambda T, d: t(T, d) == T.tensor([1, 2, 3]),
        "eq_bool": lambda T, d: t(T, d) == T.tensor([True, False, True]),
        "add": lambda T, d: t(T, d) + t(T, d),
        "add_scalar": lambda T, d: t(T, d) + 1,
        "sub_scalar": lambda T, d: 1 - t(T, d),
        "sub_bool": lambda T, d: t(T, d) - True,
        "mul": lambda T, d: t(T, d) * t(T, d, (2, 2, 4)),
        "mul_wrap": lambda T, d: T.tensor([mx(T, d)], dtype=d) * 3,
        "mul_neg": lambda T, d: t(T, d) * -1,
        "mul_0d_i64": lambda T, d: t(T, d) * T.tensor(3),
        "mul_float": lambda T, d: t(T, d) * 1.5,
        "mul_complex": lambda T, d: t(T, d) * 1j,
        "mul_uint8": lambda T, d: t(T, d) * T.tensor([2], dtype=T.uint8),
        "div": lambda T, d: t(T, d) / t(T, d, (2, 2, 4)),
        "floordiv": lambda T, d: t(T, d) // 2,
        "mod": lambda T, d: t(T, d) % 2,
        "pow": lambda T, d: t(T, d) ** 2,
        "pow_one": lambda T, d: t(T, d) ** 1,
        "and": lambda T, d: t(T, d) & t(T, d, (2, 2, 4)),
        "or": lambda T, d: t(T, d) | 3,
        "xor": lambda T, d: t(T, d) ^ t(T, d, (2, 2, 4)),
        "xor_float": lambda T, d: t(T, d) ^ 1.5,
        "lshift": lambda T, d: t(T, d) << 1,
        "neg": lambda T, d: -t(T, d),
        "abs": lambda T, d: t(T, d).abs(),
        "invert": lambda T, d: ~t(T, d),
        "sqrt": lambda T, d: t(T, d).sqrt(),
        "floor": lambda T, d: t(T, d).floor(),
        "maximum": lambda T, d: T.maximum(t(T, d), t(T, d)),
        "clamp": lambda T, d: t(T, d).clamp(2, 3),
        "sum": lambda T, d: t(T, d).sum(),
        "sum_max": lambda T, d: T.tensor([mx(T, d), 2], dtype=d).sum(),
        "sum_dtype": lambda T, d: t(T, d).sum(dtype=d),
        "prod": lambda T, d: t(T, d).prod(),
        "mean": lambda T, d: t(T, d).mean(),
        "max": lambda T, d: t(T, d).max(),
        "max_dim": lambda T, d: t(T, d).max(0),
        "amin": lambda T, d: t(T, d).amin(),
        "argmax": lambda T, d: t(T, d).argmax(),
        "cumsum": lambda T, d: t(T, d).cumsum(0),
        "sort": lambda T, d: t(T, d, (3, 65535, 1)).sort(),
        "argsort": lambda T, d: t(T, d, (3, 65535, 1)).argsort(descending=True),
        "unique": lambda T, d: T.unique(t(T, d, (3, 1, 3))),
        "topk": lambda T, d: t(T, d).topk(2),
        "median": lambda T, d: t(T, d).median(),
        "any": lambda T, d: t(T, d, (0, 1, 0)).any(),
        "all": lambda T, d: t(T, d, (0, 1, 0)).all(),
        "count_nonzero": lambda T, d: T.count_nonzero(t(T, d)),
        "nonzero": lambda T, d: t(T, d).nonzero(),
        "getitem_mask": lambda T, d: t(T, d)[T.tensor([True, False, True])],
        "getitem_idx": lambda T, d: t(T, d)[T.tensor([2, 0])],
        "index_with_uint": lambda T, d: T.tensor([10, 20, 30])[t(T, d, (2, 0))],
        "setitem_neg": lambda T, d: (lambda x: (x.__setitem__(0, -1), x)[1])(t(T, d)),
        "setitem_idx": lambda T, d: (lambda x: (x.__setitem__(T.tensor([0]), 1), x)[1])(t(T, d)),
        "setitem_idx_int64": lambda T, d: t(T, d).__setitem__(T.tensor([0]), T.tensor([5])),
        "setitem_mask_t": lambda T, d: t(T, d).__setitem__(T.tensor([True, False, True]),
                                                           t(T, d, (5, 6))),
        "gather": lambda T, d: T.gather(t(T, d), 0, T.tensor([2, 0])),
        "scatter": lambda T, d: T.zeros(3, dtype=d).scatter(0, T.tensor([2, 0]), t(T, d, (8, 9))),
        "index_select": lambda T, d: T.index_select(t(T, d), 0, T.tensor([2, 0])),
        "masked_fill": lambda T, d: t(T, d).masked_fill(T.tensor([True, False, True]), 5),
        "cat": lambda T, d: T.cat([t(T, d), t(T, d, (4,))]),
        "cat_int64": lambda T, d: T.cat([t(T, d), T.tensor([4])]),
        "stack": lambda T, d: T.stack([t(T, d), t(T, d)]),
        "where": lambda T, d: T.where(T.tensor([True, False, True]), t(T, d), 0),
        "view_u8": lambda T, d: t(T, d, (1, 2)).view(T.uint8),
        "flip": lambda T, d: t(T, d).flip(0),
        "roll": lambda T, d: t(T, d).roll(1),
        "tril": lambda T, d: T.tensor([[1, 2], [3, 4]], dtype=d).tril(),
        "matmul": lambda T, d: T.ones(2, 2, dtype=d) @ T.ones(2, 2, dtype=d),
        "dot": lambda T, d: T.dot(t(T, d), t(T, d)),
        "item": lambda T, d: T.tensor([mx(T, d)], dtype=d).item(),
        "tolist": lambda T, d: T.tensor([mx(T, d), 0], dtype=d).tolist(),
        "numpy": lambda T, d: t(T, d).numpy().tolist(),
        "result_type_scalar": lambda T, d: str(T.result_type(t(T, d), 1)),
        "result_type_0d": lambda T, d: str(T.result_type(T.tensor(1, dtype=d), T.tensor([1]))),
        "promote_float": lambda T, d: str(T.promote_types(d, T.bfloat16)),
        "promote_int": lambda T, d: str(T.promote_types(T.int32, d)),
        "equal": lambda T, d: T.equal(t(T, d), t(T, d)),
        "allclose": lambda T, d: T.allclose(t(T, d), t(T, d)),
        "isin": lambda T, d: T.isin(t(T, d), t(T, d)),
        "make_tensor": lambda T, d: (T.manual_seed(0), T.testing.make_tensor((4,), dtype=d,
                                                                             device="cpu"))[1],
    }
    return p


def _outcome(T, f, d):
    try:
        r = f(T, d)
    except Exception as e:          # the class, and the kernel a NotImplementedError names
        m = re.match(r'"([^"]+)" not implemented for \'(\w+)\'', str(e))
        promo = str(e).startswith("Promotion for")        # (these messages to the letter)
        return ("err", type(e).__name__, m.groups() if m else str(e) if promo else None)
    if isinstance(r, tuple):            # (torch.return_types: tuples too)
        return tuple(_value(x) for x in r)
    return _value(r)


def _value(r):
    if hasattr(r, "dtype") and hasattr(r, "tolist") and not isinstance(r, np.ndarray):
        return ("tensor", str(r.dtype), tuple(r.shape), r.tolist())
    return ("value", r)


def _close(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or abs(a - b) <= 1e-6 * max(abs(a), abs(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return all(_close(x, y) for x, y in zip(a, b))
    return a == b


def test_probes_against_pytorch():
    real = pytest.importorskip("torch", reason="an optional cross-check against PyTorch itself")
    bad = []
    for name, f in _probes().items():
        for n in (16, 32, 64):
            want = _outcome(real, f, getattr(real, f"uint{n}"))
            got = _outcome(torch, f, getattr(torch, f"uint{n}"))
            if not _close(want, got):
                bad.append(f"{name} uint{n}: torch {want!r:.200} kiln {got!r:.200}")
    assert not bad, "\n".join(bad)
