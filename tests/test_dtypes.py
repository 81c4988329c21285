"""dtypes: names and aliases, PyTorch's type promotion (a table derived from its documented
rules), casts and conversions, default dtype, finfo/iinfo."""
import ml_dtypes
import numpy as np
import pytest

import framework as torch
from conftest import to_np
from runtime import dtypes as dt

B, U8, I8, I16, I32, I64 = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32,
                            torch.int64)
F16, BF16, F32, F64 = torch.float16, torch.bfloat16, torch.float32, torch.float64


def test_names_aliases_and_sizes():
    assert torch.float is F32 and torch.double is F64 and torch.half is F16
    assert torch.long is I64 and torch.int is I32 and torch.short is I16
    assert [repr(d) for d in (B, U8, I8, I16, I32, I64, F16, BF16, F32, F64)] == [
        "torch.bool", "torch.uint8", "torch.int8", "torch.int16", "torch.int32", "torch.int64",
        "torch.float16", "torch.bfloat16", "torch.float32", "torch.float64"]
    sizes = {B: 1, U8: 1, I8: 1, I16: 2, I32: 4, I64: 8, F16: 2, BF16: 2, F32: 4, F64: 8}
    for d, n in sizes.items():
        t = torch.zeros(3, dtype=d)
        assert t.element_size() == n and t.itemsize == n and t.nbytes == 3 * n
    assert F32.is_floating_point and not I64.is_floating_point and not B.is_signed
    assert not U8.is_signed and I8.is_signed


# (a, b, result) for tensors of the same kind of dimensionality: torch.promote_types
PROMOTE = [
    (U8, I8, I16), (U8, I16, I16), (U8, I64, I64), (I8, I16, I16), (I32, I64, I64),
    (B, U8, U8), (B, I32, I32), (B, F16, F16), (I64, F16, F16), (I64, F32, F32),
    (F16, BF16, F32), (F16, F32, F32), (BF16, F64, F64), (F32, F64, F64), (U8, F16, F16),
    (B, B, B), (I8, I8, I8),
]


@pytest.mark.parametrize("a,b,r", PROMOTE)
def test_promote_types_table(a, b, r):
    assert torch.promote_types(a, b) is r
    assert torch.promote_types(b, a) is r
    x, y = torch.zeros(2, dtype=a), torch.zeros(2, dtype=b)
    assert (x + y).dtype is r


# (tensor, other, result): PyTorch's three priority groups. Dimensioned tensors first, then
# 0-d tensors, then Python scalars; a lower group only counts if its category is higher.
RESULT = [
    (torch.tensor([1, 2]), 1.5, F32),                            # int tensor + float scalar
    (torch.tensor([1, 2], dtype=I32), 1, I32),                   # int scalar keeps int32
    (torch.tensor([1, 2], dtype=U8), 1000, U8),                  # scalars never widen
    (torch.tensor([True]), 1, I64),                              # bool + int scalar
    (torch.tensor([True]), 1.5, F32),
    (torch.tensor([True]), True, B),
    (torch.tensor([1, 2]), torch.tensor(1.5, dtype=F64), F64),   # int64 + f64 0-d: category up
    (torch.tensor([1., 2.], dtype=F16), torch.tensor(1.5, dtype=F64), F16),   # same category
    (torch.tensor([1., 2.]), torch.tensor(1, dtype=I64), F32),
    (torch.tensor([1, 2], dtype=I32), torch.tensor(1, dtype=I64), I32),
    (torch.tensor([1, 2], dtype=U8), torch.tensor(1, dtype=I8), U8),
    (torch.tensor(1, dtype=U8), torch.tensor(1, dtype=I8), I16),                # both 0-d
    (torch.tensor([1., 2.], dtype=F16), 2.5, F16),
    (torch.tensor([1, 2], dtype=I8), torch.tensor([1.], dtype=F16), F16),
    (torch.tensor(1), 2.5, F32),                                # 0-d int + float scalar
    (torch.tensor([1., 2.], dtype=BF16), torch.tensor([1.], dtype=F16), F32),
]


@pytest.mark.parametrize("i", range(len(RESULT)))
def test_result_type_table(i):
    t, o, r = RESULT[i]
    assert torch.result_type(t, o) is r
    assert (t * o).dtype is r
    assert (o * t).dtype is r


def test_promotion_against_torch_exhaustively():
    T = pytest.importorskip("torch")
    names = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16",
             "float32", "float64"]
    for a in names:
        for b in names:
            assert str(torch.promote_types(getattr(torch, a), getattr(torch, b))) == \
                str(T.promote_types(getattr(T, a), getattr(T, b))), (a, b)
            for sa, sb in (((2,), ()), ((), (2,)), ((), ())):
                k = torch.result_type(torch.zeros(sa, dtype=getattr(torch, a)),
                                      torch.zeros(sb, dtype=getattr(torch, b)))
                t = T.result_type(T.zeros(sa, dtype=getattr(T, a)), T.zeros(sb, dtype=getattr(T, b)))
                assert str(k) == str(t), (a, sa, b, sb)
        for s in (True, 2, 2.5):
            assert str(torch.result_type(torch.zeros(2, dtype=getattr(torch, a)), s)) == \
                str(T.result_type(T.zeros(2, dtype=getattr(T, a)), s)), (a, s)


def test_float_functions_of_ints_give_default_float():
    i = torch.tensor([1, 4])
    assert torch.sqrt(i).dtype == F32 and torch.sqrt(i).tolist() == [1.0, 2.0]
    assert (i / 2).dtype == F32
    assert (torch.tensor([1, 2], dtype=U8) / torch.tensor([2], dtype=U8)).dtype == F32
    assert torch.exp(torch.tensor([0.], dtype=F64)).dtype == F64
    assert torch.neg(torch.tensor([1], dtype=I8)).dtype == I8


def test_casts():
    x = torch.tensor([1.7, -2.2, 0.0])
    assert x.long().tolist() == [1, -2, 0] and x.long().dtype == I64
    assert x.int().dtype == I32 and x.short().dtype == I16 and x.char().dtype == I8
    assert x.bool().tolist() == [True, True, False]
    assert x.double().dtype == F64 and x.half().dtype == F16 and x.bfloat16().dtype == BF16
    assert x.byte().dtype == U8 and x.float() is x
    assert x.to(F64).dtype == F64 and x.to(dtype=I64).tolist() == [1, -2, 0]
    assert x.to("cpu", F64).dtype == F64 and x.to(torch.ones(1, dtype=I32)).dtype == I32
    assert x.to(F32) is x and x.to(F32, copy=True) is not x
    assert x.type(torch.int64).dtype == I64 and x.type("torch.DoubleTensor").dtype == F64
    assert x.type() == "torch.FloatTensor" and torch.tensor([1]).type() == "torch.LongTensor"
    i = torch.tensor(1)
    assert str(i.float()) == "tensor(1.)" and str(i.type(torch.float)) == "tensor(1.)"
    assert str(i.type_as(torch.ones(1))) == "tensor(1.)"
    h = torch.tensor([0.1], dtype=F16)
    assert h.float().item() == pytest.approx(0.0999755859375)      # exact float16 value
    with pytest.raises(ValueError):
        x.type("torch.NoSuchTensor")


def test_item_tolist_numpy():
    s = torch.tensor(1.0)
    assert s.item() == 1.0 and type(s.item()) is float
    assert type(torch.tensor(3).item()) is int and type(torch.tensor(True).item()) is bool
    assert torch.tensor([[1, 2]]).tolist() == [[1, 2]]
    t = torch.tensor([0.1]).tolist()[0]
    assert t == float(np.float32(0.1)) and t != 0.1           # full float32 -> double value
    assert torch.tensor(1.5, dtype=BF16).item() == 1.5
    assert torch.tensor(3).tolist() == 3
    assert torch.tensor([1.5], dtype=BF16).tolist() == [1.5]
    assert torch.ones(2, dtype=F64).numpy().dtype == np.float64
    assert float(torch.tensor([2.5])) == 2.5 and int(torch.tensor([7])) == 7
    assert [10, 20, 30][torch.tensor(1)] == 20
    with pytest.raises(RuntimeError, match="2 elements"):
        torch.ones(2).item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(torch.ones(2))
    with pytest.raises(RuntimeError, match="requires grad"):
        torch.ones(2, requires_grad=True).numpy()
    with pytest.raises(TypeError):
        [1, 2][torch.tensor(1.0)]


def test_requires_grad_only_on_float():
    with pytest.raises(RuntimeError, match="floating point"):
        torch.tensor([1, 2]).requires_grad_()
    t = torch.tensor([1, 2])
    with pytest.raises(RuntimeError):
        t.requires_grad = True
    assert not t.requires_grad
    assert torch.tensor([1.], dtype=F16).requires_grad_().requires_grad


def test_default_dtype():
    assert torch.get_default_dtype() is F32
    torch.set_default_dtype(F64)
    try:
        assert torch.tensor([1.5]).dtype == F64 and torch.zeros(1).dtype == F64
        assert torch.tensor([1]).dtype == I64
        assert (torch.tensor([1]) + 0.5).dtype == F64
        assert torch.sqrt(torch.tensor([4])).dtype == F64
    finally:
        torch.set_default_dtype(F32)
    with pytest.raises(TypeError):
        torch.set_default_dtype(I64)
    assert torch.get_default_dtype() is F32


def test_finfo_iinfo_and_can_cast():
    assert torch.finfo(F32).eps == pytest.approx(1.1920928955078125e-07)
    assert torch.finfo(F16).max == 65504.0
    assert torch.finfo(BF16).eps == 0.0078125
    assert torch.finfo().tiny == pytest.approx(1.1754943508222875e-38)
    assert torch.iinfo(I32).max == 2 ** 31 - 1 and torch.iinfo(U8).min == 0
    assert torch.iinfo(I64).bits == 64
    with pytest.raises(TypeError):
        torch.iinfo(F32)
    assert torch.can_cast(I32, F32) and not torch.can_cast(F32, I32)
    assert dt.tname(F32) == "Float" and dt.tname(I64) == "Long"


def test_half_types_through_einsum_rms_norm_and_nan_to_num():
    """NumPy has no bfloat16 einsum loop and no bfloat16 finfo; values printed by PyTorch 2.13."""
    a = torch.tensor([[0.5, -1.25, 2.0], [3.0, 0.1, -0.7]]).bfloat16()
    b = torch.tensor([[1.5, 2.0], [-0.5, 0.25], [1.0, -2.0]]).bfloat16()
    r = torch.einsum("ij,jk->ik", a, b)
    assert r.dtype == torch.bfloat16
    assert r.float().tolist() == [[3.375, -3.3125], [3.75, 7.4375]]
    assert torch.einsum("ij,ij->i", a, a).float().tolist() == [5.8125, 9.5]
    assert torch.tensordot(a, b, 1).dtype == torch.bfloat16
    # rms_norm computes half types in float32 with float32's eps and rounds once, as PyTorch
    y = torch.nn.functional.rms_norm(a, (3,))
    assert y.dtype == torch.bfloat16
    np.testing.assert_array_equal(y.float().numpy(), np.array(
        [[0.3594, -0.8984, 1.4375], [1.6875, 0.0562, -0.3926]], np.float32).astype(
        ml_dtypes.bfloat16).astype(np.float32))
    h = torch.nn.functional.rms_norm(a.half(), (3,), weight=torch.full((3,), 2.0).half())
    np.testing.assert_allclose(h.float().numpy(), [[0.7183, -1.7959, 2.8730],
                                                   [3.3711, 0.1125, -0.7861]], rtol=6e-4)
    n = torch.nan_to_num(torch.tensor([float("inf"), float("nan"), -float("inf")]).bfloat16())
    assert n.float().tolist() == [3.3895313892515355e+38, 0.0, -3.3895313892515355e+38]


def test_half_type_mean_and_norm_accumulate_in_float32():
    # torch 2.13 reduces bfloat16/float16 in float32 and rounds once (values printed by it)
    x = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    t = torch.tensor(x).bfloat16()
    assert t.norm(dim=1).float().tolist() == [1.6015625, 2.96875, 1.9296875, 2.15625, 1.296875]
    assert t.mean().item() == -0.1220703125 and t.norm(p=3).item() == 3.0625
    assert t.mean(0).float().tolist()[:4] == [0.1474609375, -0.40234375, -0.365234375,
                                              -0.028564453125]
    h = torch.tensor(x).half()
    assert h.mean().item() == -0.12188720703125
    assert h.norm(dim=0).float().tolist()[:3] == [2.130859375, 1.2412109375, 1.8583984375]
    assert t.mean().dtype == torch.bfloat16 and h.norm().dtype == torch.float16


def test_finfo_of_complex_names_its_real_dtype_and_bfloat16_to_complex():
    # torch.finfo(complex64) describes the float32 parts: dtype 'float32', 32 bits
    fi = torch.finfo(torch.complex64)
    assert fi.dtype == "float32" and fi.bits == 32 and fi.eps == float(np.finfo(np.float32).eps)
    assert torch.finfo(torch.complex128).dtype == "float64"
    assert torch.finfo(F32).dtype == "float32"
    assert torch.bfloat16.to_complex() is torch.complex64
    assert torch.float32.to_complex() is torch.complex64


def test_type_queries_refuse_non_tensors():
    for f in (torch.is_floating_point, torch.is_complex, torch.numel):
        with pytest.raises(TypeError, match="must be Tensor, not list"):
            f([1.0])
    assert torch.numel(torch.zeros(2, 3)) == 6 and torch.is_floating_point(torch.zeros(1))


def test_math_constants_and_newaxis():
    assert torch.pi == np.pi and torch.e == np.e and torch.inf == np.inf
    assert np.isnan(torch.nan) and torch.newaxis is None
    assert torch.arange(3)[:, torch.newaxis].shape == (3, 1)
    assert isinstance(torch.strided, torch.layout)


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_half_softmax_and_unary_ops_round_once_from_float32(name):
    # PyTorch's cpu kernels compute float16/bfloat16 in float32 and round the result once;
    # rounding after every step (exp, sum, div; sigmoid's 1 / (1 + exp(-x))) differed in
    # bfloat16's 3rd digit
    import ml_dtypes
    npd = np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(np.float16)
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32).astype(npd)
    xf = x.astype(np.float64)
    e = np.exp(xf - xf.max(-1, keepdims=True))
    want = {"softmax": e / e.sum(-1, keepdims=True), "sigmoid": 1 / (1 + np.exp(-xf)),
            "tanh": np.tanh(xf), "exp": np.exp(xf)}
    t = torch.tensor(x.astype(np.float32)).to(getattr(torch, name))
    got = {"softmax": torch.softmax(t, -1), "sigmoid": torch.sigmoid(t), "tanh": torch.tanh(t),
           "exp": torch.exp(t)}
    for k, g in got.items():
        assert g.dtype == t.dtype
        exact = want[k].astype(np.float32).astype(npd)          # one rounding of the value
        np.testing.assert_array_equal(to_np(g.float()), exact.astype(np.float32), err_msg=k)
    assert type(torch.softmax(t.requires_grad_(), -1).grad_fn).__name__ == "SoftmaxBackward0"
