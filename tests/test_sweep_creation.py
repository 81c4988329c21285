"""Regression tests from the creation / conversion / Tensor-attribute sweep against PyTorch 2.13.

Expected values are derived by hand from PyTorch's documented rules (its C++ sources for
inference, checked conversions, arange lengths and linspace rounding)."""
import copy
import warnings

import numpy as np
import pytest

import framework as torch


# ---- torch.tensor: dtype inference and nested data ----------------------------------------------

def test_inference_promotes_numpy_scalars_and_0d_tensors_with_python_scalars():
    # each element's dtype (Python int -> int64, float -> default) promoted together
    assert torch.tensor([np.uint8(200), 1]).dtype is torch.int64
    assert torch.tensor([np.uint8(200), 1]).tolist() == [200, 1]
    assert torch.tensor([torch.tensor(1, dtype=torch.int8), 3]).dtype is torch.int64
    assert torch.tensor([torch.tensor(1., dtype=torch.float64), 3]).dtype is torch.float64
    assert torch.tensor([np.float16(1), 2.5]).dtype is torch.float32
    assert torch.tensor([np.float64(1.5)]).dtype is torch.float64
    assert torch.tensor([np.float32(1.5), 2]).dtype is torch.float32


def test_inference_errors():
    with pytest.raises(RuntimeError, match="Could not infer dtype of NoneType"):
        torch.tensor([1, None])
    with pytest.raises(ValueError, match="too many dimensions 'str'"):
        torch.tensor(["a"])
    with pytest.raises(TypeError, match="invalid data type 'str'"):
        torch.tensor([1, "a"])


def test_ragged_lists_error_classes():
    with pytest.raises(ValueError, match="expected sequence of length 1 at dim 1 \\(got 2\\)"):
        torch.tensor([[1], [2, 3]])
    with pytest.raises(TypeError, match="not a sequence"):
        torch.tensor([[1, 2], 3])
    with pytest.raises(TypeError, match="'list' object cannot be interpreted as an integer"):
        torch.tensor([1, [2]])


def test_lists_of_tensors():
    # one-element tensors are scalars; bigger ones are refused (torch does not stack them)
    t = torch.tensor([torch.tensor([1.]), torch.tensor([3.])])
    assert t.shape == (2,) and t.tolist() == [1.0, 3.0]
    with pytest.raises(ValueError, match="only one element tensors"):
        torch.tensor([torch.tensor([1., 2.]), torch.tensor([3., 4.])])
    with pytest.raises(TypeError, match="only integer tensors of a single element"):
        torch.tensor([torch.tensor([1, 2]), torch.tensor([3, 4])])
    # below a list, a tensor stands in for a sequence
    assert torch.tensor([[1, 2], torch.tensor([3, 4])]).tolist() == [[1, 2], [3, 4]]


def test_integer_targets_are_checked():
    assert torch.tensor([1.7, -2.7], dtype=torch.int8).tolist() == [1, -2]     # truncation
    assert torch.tensor([-1], dtype=torch.uint8).tolist() == [255]            # int wraps
    for data, d in (([300], torch.int8), ([-1.5], torch.uint8), ([float("nan")], torch.int32),
                    ([1e40], torch.int64), ([2 ** 40], torch.int32)):
        with pytest.raises(RuntimeError, match="without overflow"):
            torch.tensor(data, dtype=d)
    with pytest.raises(ValueError, match="Overflow when unpacking long long"):
        torch.tensor([2 ** 63])
    # a float target takes the big int (unpacked as a double)
    assert torch.tensor([2 ** 63], dtype=torch.float64).tolist() == [9.223372036854775808e18]


def test_complex_default_follows_default_dtype():
    torch.set_default_dtype(torch.float64)
    try:
        assert torch.tensor([1j]).dtype is torch.complex128
        assert torch.tensor([1.5]).dtype is torch.float64
    finally:
        torch.set_default_dtype(torch.float32)
    assert torch.tensor([1j]).dtype is torch.complex64


def test_tensor_of_tensor_warns_and_copies():
    src = torch.tensor([1., 2.])
    with pytest.warns(UserWarning, match="To copy construct from a tensor"):
        t = torch.tensor(src)
    t[0] = 5
    assert src.tolist() == [1.0, 2.0]


def test_empty_tensor_strides():
    assert torch.tensor([]).stride() == (1,)
    assert torch.zeros(0, 3).stride() == (3, 1)
    assert torch.zeros(2, 0).stride() == (1, 1)
    assert torch.empty(2, 0, 4).stride() == (4, 4, 1)
    assert torch.arange(0).stride() == (1,)


# ---- NumPy arrays -------------------------------------------------------------------------------

def test_numpy_negative_strides_and_byte_order_refused():
    a = np.arange(6.)[::-1]
    for f in (torch.tensor, torch.as_tensor, torch.from_numpy, torch.asarray):
        with pytest.raises(ValueError, match="negative"):
            f(a)
    with pytest.raises(ValueError, match="byte order"):
        torch.from_numpy(np.array([1, 2], dtype=">i4"))


def test_numpy_copy_layout():
    # a dense layout keeps its strides; a broadcast (overlapping) array becomes contiguous
    t = torch.tensor(np.arange(12.).reshape(3, 4).T)
    assert t.stride() == (1, 4) and t.tolist()[0] == [0.0, 4.0, 8.0]
    b = torch.tensor(np.broadcast_to(np.arange(3.), (2, 3)))
    assert b.stride() == (3, 1) and b.is_contiguous()
    assert b.tolist() == [[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]]
    s = torch.tensor(np.arange(12.).reshape(3, 4).T[::2])       # not dense: contiguous
    assert s.stride() == (3, 1) and s.tolist() == [[0.0, 4.0, 8.0], [2.0, 6.0, 10.0]]


def test_asarray_copy_semantics():
    a = np.arange(3.)
    with pytest.raises(ValueError, match="can't alias tensor with dtype 'Double' into dtype 'Float'"):
        torch.asarray(a, dtype=torch.float32, copy=False)
    with pytest.raises(ValueError, match="can't alias arbitrary sequence"):
        torch.asarray([1.0, 2.0], copy=False)
    t = torch.asarray(a, copy=False)
    a[0] = 9
    assert t.tolist() == [9.0, 1.0, 2.0]
    b = torch.tensor([1., 2.], requires_grad=True)
    c = torch.asarray(b, copy=True)            # a clone: keeps the history
    assert c.requires_grad and not c.is_leaf and c.data_ptr() != b.data_ptr()


# ---- factories ----------------------------------------------------------------------------------

def test_full_fill_values():
    assert torch.full((2,), np.float32(2)).dtype is torch.float32
    assert torch.full((2,), np.int32(2)).dtype is torch.int64
    assert torch.full((2,), 2.5, dtype=torch.int32).tolist() == [2, 2]
    assert torch.full((2,), float("inf"), dtype=torch.float16).tolist() == [float("inf")] * 2
    for v, d in ((1j, torch.float32), (1j, torch.int8), (float("nan"), torch.uint8),
                 (1e40, torch.float16), (70000, torch.float16), (1e300, torch.float32),
                 (-1.5, torch.uint8)):
        with pytest.raises(RuntimeError, match="without overflow"):
            torch.full((2,), v, dtype=d)
    with pytest.raises(TypeError, match="must be Number, not NoneType"):
        torch.full((2,), None)
    with pytest.raises(RuntimeError, match="c10::Half"):
        torch.zeros(2, dtype=torch.float16).fill_(1e10)


def test_like_factories_preserve_dense_strides():
    x = torch.ones(3, 2).t()                     # strides (1, 2)
    for f in (torch.zeros_like, torch.ones_like, torch.empty_like):
        assert f(x).stride() == (1, 2)
    z = torch.full_like(x, 7, dtype=torch.float64)
    assert z.stride() == (1, 2) and z.tolist() == [[7.0] * 3] * 2
    p = torch.zeros_like(torch.ones(2, 3, 4, 5).permute(0, 2, 3, 1))
    assert p.stride() == (60, 5, 1, 20) and not p.is_contiguous()
    assert torch.zeros_like(torch.ones(4, 3)[::2]).stride() == (3, 1)     # not dense


def test_arange_rules():
    # int64 truncates start, end and step before computing the length
    assert torch.arange(0, 5, 1.5, dtype=torch.int64).tolist() == [0, 1, 2, 3, 4]
    assert torch.arange(1.5, 5.5, 1.5, dtype=torch.int64).tolist() == [1, 2, 3, 4]
    assert torch.arange(0, 5, 1.5, dtype=torch.int32).tolist() == [0, 1, 2, 3]   # exact bounds
    assert torch.arange(np.int64(4)).dtype is torch.int64
    assert torch.arange(0, 1, 0.1).shape == (10,)
    assert torch.arange(1, 2.5, 0.5).tolist() == [1.0, 1.5, 2.0]
    with pytest.raises(NotImplementedError, match="arange_cpu"):
        torch.arange(5, dtype=torch.bool)
    with pytest.raises(RuntimeError, match="unsupported range"):
        torch.arange(float("inf"))
    with pytest.raises(ValueError, match="step must be nonzero"):
        torch.arange(0, 5, 0.5, dtype=torch.int64)


def test_range_deprecated():
    with pytest.warns(UserWarning, match="torch.range is deprecated"):
        assert torch.range(0, 1, 0.25).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="step must be nonzero"):
            torch.range(0, 5, 0)
        with pytest.raises(RuntimeError, match="inconsistent with step sign"):
            torch.range(5, 0)


def test_linspace_rounds_in_its_dtype():
    # float32 all the way: index 4 is 1 - 2 * float32(1/6)
    step = np.float32(1) / np.float32(6)
    expect4 = float(np.float32(1) - step * np.float32(2))
    assert expect4 == 0.6666666269302368
    assert torch.linspace(0, 1, 7).tolist()[4] == expect4
    # integer dtypes cast start and end first: (0, 10) over 4 gaps of 2.5, truncated
    assert torch.linspace(0.5, 10.5, 5, dtype=torch.uint8).tolist() == [0, 2, 5, 7, 10]
    z = torch.linspace(0, 1 + 1j, 3)
    assert z.dtype is torch.complex64 and z.tolist() == [0j, 0.5 + 0.5j, 1 + 1j]
    with pytest.raises(TypeError):
        torch.linspace(0, 1, 2.5)
    with pytest.raises(RuntimeError, match="can't be safely cast"):
        torch.linspace(0, 1j, 3, dtype=torch.float32)


def test_tri_indices_and_random_argument_checks():
    with pytest.raises(RuntimeError, match="row must be non-negative"):
        torch.tril_indices(-1, 3)
    with pytest.raises(NotImplementedError, match="triu_indices"):
        torch.triu_indices(3, 3, dtype=torch.float32)
    assert torch.tril_indices(3, 3, dtype=torch.int32).tolist() == [[0, 1, 1, 2, 2, 2],
                                                                    [0, 0, 1, 0, 1, 2]]
    with pytest.raises(TypeError):
        torch.randint(2.5, (3,))
    with pytest.raises(RuntimeError, match="to - 1 is out of bounds for unsigned char"):
        torch.randint(0, 300, (4,), dtype=torch.uint8)
    with pytest.raises(RuntimeError, match="negative dimension"):
        torch.randperm(-1)
    with pytest.raises(NotImplementedError):
        torch.randperm(3, dtype=torch.bool)
    assert torch.rand_like(torch.tensor(1.)).shape == ()
    assert torch.randn_like(torch.tensor(1., dtype=torch.float64)).dtype is torch.float64
    with pytest.raises(RuntimeError, match="Half, Float or Double"):
        torch.polar(torch.tensor([1]), torch.tensor([0]))


# ---- conversion and Python protocols ------------------------------------------------------------

def test_complex_to_bool_uses_both_parts():
    assert torch.tensor([1 + 2j, -3j, 0j]).to(torch.bool).tolist() == [True, True, False]


def test_type_strings_and_scalar_conversions():
    assert torch.zeros(1, dtype=torch.complex64).type() == "torch.ComplexFloatTensor"
    assert torch.zeros(1, dtype=torch.complex128).type() == "torch.ComplexDoubleTensor"
    with pytest.raises(ValueError, match="only one element tensors"):
        int(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="only one element tensors"):
        float(torch.tensor([1., 2.]))
    with pytest.raises(RuntimeError, match="a Tensor with 2 elements"):
        torch.tensor([1, 2]).item()
    with pytest.raises(RuntimeError, match="int64_t without overflow"):
        int(torch.tensor(1 + 2j))
    assert float(torch.tensor(2 + 0j)) == 2.0
    with pytest.raises(RuntimeError, match="__contains__ only supports Tensor or scalar"):
        [1] in torch.tensor([1, 2])
    assert 2 in torch.tensor([1, 2]) and 5 not in torch.tensor([1, 2])


def test_copy_shares_and_deepcopy_keeps_layout():
    a = torch.tensor([1., 2.], requires_grad=True)
    b = copy.copy(a)
    assert b is not a and b.requires_grad and b.is_leaf and b.data_ptr() == a.data_ptr()
    p = torch.nn.Parameter(torch.tensor([1., 2.]))
    q = copy.copy(p)
    assert isinstance(q, torch.nn.Parameter) and q.data_ptr() == p.data_ptr()
    d = copy.deepcopy(torch.arange(6.).reshape(2, 3).t())
    assert d.stride() == (1, 3) and d.tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]


# ---- attributes ---------------------------------------------------------------------------------

def test_H_mT_rules():
    with pytest.raises(RuntimeError, match="only supported on matrices \\(2-D tensors\\). Got 1-D"):
        torch.arange(3.).H
    with pytest.raises(RuntimeError, match="consider using tensor.mH"):
        torch.zeros(2, 3, 4).H
    z = torch.tensor([[1 + 2j, 3j]]).H
    assert z.shape == (2, 1) and z.tolist() == [[1 - 2j], [-3j]]
    with pytest.warns(UserWarning, match="mT is deprecated on 0-D"):
        assert torch.tensor(2.).mT.item() == 2.0
    with pytest.warns(UserWarning, match="x.T"):
        torch.arange(3.).T


def test_dtype_helpers_and_size_ops():
    assert torch.complex64.to_real() is torch.float32
    assert torch.complex128.to_real() is torch.float64
    assert torch.float32.to_real() is torch.float32
    assert torch.float64.to_complex() is torch.complex128
    with pytest.raises(RuntimeError, match="Unknown Complex ScalarType for Int"):
        torch.int32.to_complex()
    s = torch.Size([2, 3])
    assert type((4,) + s) is torch.Size and (4,) + s == (4, 2, 3)
    assert type(s * 2) is torch.Size and s * 2 == (2, 3, 2, 3)


def test_sweep_cross_check_with_torch():
    ref = pytest.importorskip("torch", reason="PyTorch is an optional reference")
    cases = ["tensor([np.uint8(200), 1])", "arange(0, 5, 1.5, dtype={m}.int64)",
             "linspace(0, 1, 7)", "linspace(-5.5, 3.25, 12)", "zeros(0, 3)",
             "zeros_like({m}.ones(3, 2).t())", "full((2,), 2.5, dtype={m}.int32)"]
    for c in cases:
        a = eval("ref." + c.format(m="ref"), {"ref": ref, "np": np})
        b = eval("torch." + c.format(m="torch"), {"torch": torch, "np": np})
        assert str(a.dtype) == str(b.dtype) and tuple(a.shape) == tuple(b.shape), c
        assert tuple(a.stride()) == tuple(b.stride()), c
        assert a.tolist() == b.tolist(), c


def test_float16_from_doubles_rounds_through_float32():
    # c10::Half is built from a float: -42.98437372777596 -> -42.984375 -> -43.0 (one
    # rounding of the double gives -42.96875); every way of making a half tensor agrees
    v = -42.98437372777596
    made = [torch.tensor([v], dtype=torch.float16),
            torch.tensor(np.array([v]), dtype=torch.float16),
            torch.as_tensor([v], dtype=torch.float16),
            torch.full((1,), v, dtype=torch.float16),
            torch.tensor(np.array([v]), dtype=torch.float64).half(),
            torch.tensor(np.array([v])).to(torch.float16)]
    for t in made:
        assert t.dtype is torch.float16
        assert t.numpy().tolist() == [-43.0]
