"""select_scatter, split_with_sizes, dsplit, as_strided(+_scatter), empty_strided, scalar_tensor,
frombuffer, the *_copy views, masked_scatter, index_reduce, fill_diagonal_, put and the small
Tensor queries: values vs NumPy / torch-printed values, gradients, errors, compile() == eager."""
import warnings

import numpy as np
import pytest

import framework as torch
from framework.autograd import gradcheck


def _np(t):
    return t.detach().numpy()


def test_select_scatter_and_split_with_sizes():
    r = torch.select_scatter(torch.zeros(2, 2), torch.ones(2), 0, 0)
    np.testing.assert_array_equal(_np(r), [[1, 1], [0, 0]])
    with pytest.raises(RuntimeError, match="slice size = \\[2\\]"):
        torch.select_scatter(torch.zeros(2, 2), torch.ones(3), 0, 0)
    a, b = torch.split_with_sizes(torch.arange(5), [2, 3])
    assert a.tolist() == [0, 1] and b.tolist() == [2, 3, 4]
    assert [t.tolist() for t in torch.arange(5).split_with_sizes([4, 1])] == [[0, 1, 2, 3], [4]]
    with pytest.raises(RuntimeError, match="sum exactly to 5"):
        torch.split_with_sizes(torch.arange(5), [2, 2])
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    s = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda a, b: torch.select_scatter(a, b, 0, -1), (x, s))


def test_dsplit():
    x = torch.arange(16.).reshape(2, 2, 4)
    a, b = torch.dsplit(x, [3])
    np.testing.assert_array_equal(_np(b).ravel(), [3, 7, 11, 15])
    assert a.shape == (2, 2, 3)
    assert [t.shape for t in x.dsplit(2)] == [(2, 2, 2), (2, 2, 2)]
    with pytest.raises(RuntimeError, match="at least 3 dimension"):
        torch.dsplit(torch.zeros(2, 2), 2)
    with pytest.raises(RuntimeError, match="not divisible by the split_size 4"):
        torch.dsplit(torch.zeros(1, 2, 6), 4)


def test_as_strided_values_views_and_errors():
    x = torch.arange(12.).reshape(3, 4)
    np.testing.assert_array_equal(_np(torch.as_strided(x, (2, 2), (1, 2), 1)), [[1, 3], [2, 4]])
    # a non-contiguous view reads the same storage
    np.testing.assert_array_equal(_np(x.t().as_strided((2, 2), (1, 2), 1)), [[1, 3], [2, 4]])
    z = torch.zeros(6)
    w = z[1:].as_strided((2,), (2,))          # default offset: the view's own (1)
    w.fill_(7)
    np.testing.assert_array_equal(_np(z), [0, 7, 0, 7, 0, 0])
    assert w.storage_offset() == 1 and w.stride() == (2,)
    with pytest.raises(RuntimeError, match="out of bounds for storage of size 48"):
        torch.as_strided(x, (3, 3), (4, 1), 5)
    with pytest.raises(RuntimeError, match="Negative strides"):
        x.as_strided((2,), (-1,))


def test_as_strided_gradients_and_scatter():
    a = torch.arange(6.).requires_grad_()
    torch.as_strided(a, (3, 3), (1, 1)).sum().backward()
    np.testing.assert_array_equal(_np(a.grad), [1, 2, 3, 2, 1, 0])
    x = torch.randn(10, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: torch.as_strided(t, (3, 2), (2, 3), 1), (x,))
    np.testing.assert_array_equal(
        _np(torch.as_strided_scatter(torch.zeros(6), torch.ones(2, 2), (2, 2), (1, 2), 1)),
        [0, 1, 1, 1, 1, 0])
    src = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t, s: torch.as_strided_scatter(t, s, (2, 2), (3, 1), 2), (x, src))


def test_empty_strided_scalar_tensor_frombuffer():
    e = torch.empty_strided((2, 3), (1, 2))
    assert e.shape == (2, 3) and e.stride() == (1, 2) and not e.is_contiguous()
    assert torch.zeros(2, dtype=torch.float64).new_empty_strided((2, 2), (2, 1)).dtype is \
        torch.float64
    s = torch.scalar_tensor(3)
    assert s.dtype is torch.float32 and s.shape == () and s.item() == 3.0
    assert torch.scalar_tensor(2, dtype=torch.int64).dtype is torch.int64
    buf = bytearray(b"\x01\x02\x03\x04")
    t = torch.frombuffer(buf, dtype=torch.int16)
    assert t.tolist() == [513, 1027]
    t[0] = 0                                   # shares the buffer's memory
    assert bytes(buf[:2]) == b"\x00\x00"
    assert torch.frombuffer(bytearray(8), dtype=torch.float32, count=1, offset=4).tolist() == [0.0]
    with pytest.raises(ValueError, match="multiple of element size"):
        torch.frombuffer(bytearray(6), dtype=torch.float32)
    with pytest.raises(ValueError, match="must not be greater"):
        torch.frombuffer(bytearray(4), dtype=torch.float32, count=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.frombuffer(b"\x00\x00\x80\x3f", dtype=torch.float32).tolist() == [1.0]


def test_copy_variants_are_fresh_contiguous_copies():
    x = torch.arange(6.).reshape(2, 3)
    for name, args in [("view_copy", ((3, 2),)), ("permute_copy", ((1, 0),)),
                       ("transpose_copy", (0, 1)), ("t_copy", ()), ("expand_copy", ((2, 2, 3),)),
                       ("squeeze_copy", ()), ("unsqueeze_copy", (0,)), ("select_copy", (1, 2)),
                       ("slice_copy", (1, 0, 3, 2)), ("diagonal_copy", ()),
                       ("alias_copy", ()), ("detach_copy", ()), ("narrow_copy", (1, 1, 2)),
                       ("unfold_copy", (1, 2, 1)), ("as_strided_copy", ((2, 2), (1, 2)))]:
        fn = getattr(torch, name)
        r = fn(x, *args)
        base = {"view_copy": lambda: x.view(3, 2), "permute_copy": lambda: x.permute(1, 0),
                "transpose_copy": lambda: x.transpose(0, 1), "t_copy": lambda: x.t(),
                "expand_copy": lambda: x.expand(2, 2, 3), "squeeze_copy": lambda: x.squeeze(),
                "unsqueeze_copy": lambda: x.unsqueeze(0), "select_copy": lambda: x.select(1, 2),
                "slice_copy": lambda: x[:, 0:3:2], "diagonal_copy": lambda: x.diagonal(),
                "alias_copy": lambda: x, "detach_copy": lambda: x,
                "narrow_copy": lambda: x.narrow(1, 1, 2), "unfold_copy": lambda: x.unfold(1, 2, 1),
                "as_strided_copy": lambda: x.as_strided((2, 2), (1, 2))}[name]()
        np.testing.assert_array_equal(_np(r), _np(base), err_msg=name)
        assert r.is_contiguous() and r.data_ptr() != x.data_ptr(), name
    assert [t.tolist() for t in torch.unbind_copy(torch.eye(2))] == [[1, 0], [0, 1]]
    assert [t.tolist() for t in torch.split_copy(torch.arange(5), 2)] == [[0, 1], [2, 3], [4]]
    assert [t.tolist() for t in torch.split_with_sizes_copy(torch.arange(5), [1, 4])][0] == [0]
    assert torch.view_copy(torch.arange(4), torch.int32).tolist() == [0, 0, 1, 0, 2, 0, 3, 0]
    z = torch.tensor([1 + 2j, 3 - 1j])
    np.testing.assert_array_equal(_np(torch.view_as_real_copy(z)), [[1, 2], [3, -1]])
    assert torch.view_as_complex_copy(torch.view_as_real_copy(z)).tolist() == z.tolist()
    g = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: torch.transpose_copy(t, 0, 1) * 2, (g,))
    o = torch.empty(3, 2)
    torch.t_copy(x, out=o)
    np.testing.assert_array_equal(_np(o), _np(x).T)


def test_masked_scatter():
    m = torch.tensor([[True, False], [False, True]])
    r = torch.zeros(2, 2).masked_scatter(m, torch.tensor([1., 2, 3]))
    np.testing.assert_array_equal(_np(r), [[1, 0], [0, 2]])
    with pytest.raises(RuntimeError, match="Number of elements of source < number of ones"):
        torch.zeros(2, 2).masked_scatter(m, torch.tensor([1.]))
    with pytest.raises(RuntimeError, match="boolean masks"):
        torch.zeros(2).masked_scatter(torch.tensor([1, 0]), torch.ones(2))
    y = torch.zeros(2, 3)
    y.masked_scatter_(torch.tensor([True, False, True]), torch.arange(6.))
    np.testing.assert_array_equal(_np(y), [[0, 0, 1], [2, 0, 3]])
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    s = torch.randn(5, dtype=torch.float64, requires_grad=True)
    mm = torch.tensor([[True, False, True], [False, True, True]])
    assert gradcheck(lambda a, b: torch.masked_scatter(a, mm, b), (x, s))


def test_index_reduce_vs_torch_printed():
    x = torch.ones(3, 2)
    i = torch.tensor([0, 2, 0])
    s = torch.tensor([[2., 3], [4, 5], [6, 7]])
    np.testing.assert_array_equal(_np(x.index_reduce(0, i, s, "prod")), [[12, 21], [1, 1], [4, 5]])
    np.testing.assert_array_equal(_np(x.index_reduce(0, i, s, "mean", include_self=False)),
                                  [[4, 5], [1, 1], [4, 5]])
    np.testing.assert_array_equal(_np(x.index_reduce(0, i, s, "amax")), [[6, 7], [1, 1], [4, 5]])
    np.testing.assert_array_equal(_np(x.index_reduce(0, i, s, "amin", include_self=False)),
                                  [[2, 3], [1, 1], [4, 5]])
    assert torch.tensor([1, 2]).index_reduce(0, torch.tensor([0, 0]), torch.tensor([3, 4]),
                                             "mean").tolist() == [2, 2]
    y = torch.ones(2, 3)
    y.index_reduce_(1, torch.tensor([2, 2]), torch.tensor([[2., 3], [4, 5]]), "prod")
    with pytest.raises(IndexError):     # torch 2.13 refuses a negative index here
        y.index_reduce_(1, torch.tensor([2, -1]), torch.tensor([[2., 3], [4, 5]]), "prod")
    np.testing.assert_array_equal(_np(y), [[1, 1, 6], [1, 1, 20]])
    with pytest.raises(RuntimeError, match="prod, mean, amax or amin but got sum"):
        x.index_reduce(0, i, s, "sum")
    a = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    for red in ("prod", "mean", "amax"):
        assert gradcheck(lambda p, q: torch.index_reduce(p, 0, i, q, red), (a, b)), red


def test_fill_diagonal_and_put():
    x = torch.zeros(3, 3)
    assert x.fill_diagonal_(5) is x
    np.testing.assert_array_equal(_np(x), np.eye(3) * 5)
    t = torch.zeros(7, 3).fill_diagonal_(5, wrap=True)
    ref = np.zeros((7, 3))
    for r, c in [(0, 0), (1, 1), (2, 2), (4, 0), (5, 1), (6, 2)]:
        ref[r, c] = 5
    np.testing.assert_array_equal(_np(t), ref)
    np.testing.assert_array_equal(_np(torch.zeros(7, 3).fill_diagonal_(1)), np.eye(7, 3))
    c = torch.zeros(2, 2, 2).fill_diagonal_(1)
    assert c.sum().item() == 2 and c[1, 1, 1].item() == 1
    with pytest.raises(RuntimeError, match="equal length"):
        torch.zeros(2, 3, 4).fill_diagonal_(1)
    p = torch.zeros(2, 2)
    r = torch.put(p, torch.tensor([3, 0]), torch.tensor([9., 8]))
    np.testing.assert_array_equal(_np(r), [[8, 0], [0, 9]])
    assert p.sum().item() == 0
    np.testing.assert_array_equal(_np(p.put(torch.tensor([1, 1]), torch.tensor([1., 2]),
                                            accumulate=True)), [[0, 3], [0, 0]])


def test_tensor_queries():
    assert torch.tensor(0.).is_nonzero() is False and torch.tensor([3]).is_nonzero() is True
    assert torch.is_nonzero(torch.tensor([1])) is True
    with pytest.raises(RuntimeError, match="more than one value"):
        torch.tensor([1., 2]).is_nonzero()
    with pytest.raises(RuntimeError, match="no values"):
        torch.tensor([]).is_nonzero()
    assert torch.zeros(2, 3).is_same_size(torch.ones(2, 3))
    assert not torch.zeros(2, 3).is_same_size(torch.ones(3, 2))
    assert torch.tensor([1]).is_signed() and not torch.tensor([True]).is_signed()
    assert not torch.tensor([1], dtype=torch.uint8).is_signed()
    assert torch.empty(2, 3, 4).permute(2, 0, 1).dim_order() == (1, 2, 0)
    assert torch.tensor([1, 2]).dim_order() == (0,)
    assert torch.tensor([1, 2.]).cfloat().dtype is torch.complex64
    assert torch.tensor([1, 2.]).cdouble().dtype is torch.complex128
    assert torch.tensor([1, 2.]).chalf().dtype is torch.complex32
    assert torch.tensor([1, 2]).positive().tolist() == [1, 2]
    with pytest.raises(RuntimeError, match="bool tensor"):
        torch.tensor([True]).positive()


def test_compile_matches_eager():
    def f(x, s):
        a = torch.select_scatter(x, s, 1, 0)
        b = torch.as_strided_scatter(a, s * 2, (3,), (2,), 1)
        return torch.permute_copy(b, (1, 0)).sin()
    x, s = torch.randn(3, 4), torch.randn(3)
    np.testing.assert_allclose(_np(torch.compile(f)(x, s)), _np(f(x, s)), rtol=1e-6)
