"""Indexing: x[...] and x[...] = v against NumPy (PyTorch's int-as-basic-index rule derived by
hand), the gather/scatter family, masked ops, nonzero/where. Bad indices raise PyTorch's
exception class and leave the target unchanged. Seeds: catalog-000 T5, T7, 3.3-3.4."""
import numpy as np
import pytest

import framework as torch
from conftest import assert_close, to_np

A = np.arange(60).reshape(3, 4, 5)


def t(a=A, **kw):
    return torch.tensor(a, **kw)


# ---- getitem ---------------------------------------------------------------------------------

BASIC = [
    (1, 2), (slice(None, None, 2), slice(1, None, 2)), (-1, -2), (None, 1, None, slice(None), None),
    (Ellipsis, 1), (1, Ellipsis, None), (Ellipsis, 1, slice(None)), slice(5, 10), slice(-10, -1),
    (slice(1, 3), slice(None, None, 3), slice(4, 1)), (), Ellipsis, (None,),
]


@pytest.mark.parametrize("idx", BASIC, ids=[repr(i) for i in BASIC])
def test_basic_indexing_matches_numpy(idx):
    r = t()[idx]
    assert_close(r, A[idx])
    assert r._base is not None          # basic indexing is always a view


ADV = [
    [0, 2], ([0, 1], [1, 2]), (slice(None), [0, 1], [1, 2]), (slice(1, None), [0, 1], [1, 2]),
    ([[0], [1]], [1, 2]), (None, [0, 1]), ([0, 1], None), (Ellipsis, [0, 1]),
    ([0, 1], Ellipsis, [0, 1]), ([0, 1], [0, 1], [0, 1]), [-1, -3], [[0, 1], [2, 0]],
    (slice(None), [[0], [3]], slice(1, 3)),
]


@pytest.mark.parametrize("idx", ADV, ids=[repr(i) for i in ADV])
def test_advanced_indexing_without_ints_matches_numpy(idx):
    # with no plain ints in the index, PyTorch's layout rule is NumPy's
    tidx = tuple(torch.tensor(i) if isinstance(i, list) else i for i in idx) \
        if isinstance(idx, tuple) else torch.tensor(idx)
    assert_close(t()[tidx], A[idx])
    if not (isinstance(idx, list) and isinstance(idx[0], list)):
        assert_close(t()[idx], A[idx])       # Python lists work the same as tensors
    else:
        assert_close(t()[idx], A[tuple(idx)])  # torch reads a list of lists as a tuple


def test_ints_are_basic_indexing_like_torch():
    x = t()
    # NumPy would put the broadcast dim first (shape (2, 4)); torch applies the int first
    r = x[0, :, [1, 2]]
    assert r.shape == (4, 2)
    assert_close(r, A[0][:, [1, 2]])
    assert_close(x[:, 0, [1, 2]], A[:, 0][:, [1, 2]])
    assert_close(x[torch.tensor([0, 1]), 1, torch.tensor([2, 3])], A[:, 1][[0, 1], [2, 3]])
    assert_close(x[torch.tensor(1)], A[1])              # 0-d integer tensor acts as an int
    assert_close(x[torch.tensor(1), [1, 2]], A[1][[1, 2]])


def test_boolean_masks():
    x = t()
    assert_close(x[x > 30], A[A > 30])
    assert_close(x[x[:, :, 0] > 20], A[A[:, :, 0] > 20])
    m = np.array([True, False, True])
    assert_close(x[torch.tensor(m)], A[m])
    assert_close(x[[True, False, True]], A[m])
    m4 = np.array([True, False, True, False])
    assert_close(x[:, torch.tensor(m4)], A[:, m4])
    assert_close(x[torch.tensor(m), 1], A[m][:, 1])
    assert_close(x[torch.tensor(m), [1, 2]], A[m, [1, 2]])
    m5 = np.array([True, False, False, True, False])
    assert_close(x[[0, 2], :, torch.tensor(m5)], A[[0, 2], :, m5])
    assert x[True].shape == (1, 3, 4, 5) and x[False].shape == (0, 3, 4, 5)
    assert_close(x[torch.tensor([1, 0, 1]).to(torch.uint8)], A[m])   # uint8 is a mask
    with pytest.raises(IndexError, match="shape of the mask"):
        x[torch.tensor([True, False])]


def test_index_results_are_copies_and_dtypes():
    x = t()
    r = x[[0, 1]]
    r.fill_(0)
    assert_close(x, A)
    assert x[[]].shape == (0, 4, 5)
    assert x[torch.tensor([1, 0], dtype=torch.int32)].shape == (2, 4, 5)
    assert x[[[0, 1]]].shape == (2, 4, 5)        # a list holding a list is read as a tuple
    assert torch.tensor(1)[None].shape == (1,)
    assert torch.tensor(1)[...].shape == ()


@pytest.mark.parametrize("idx,exc", [
    (3, IndexError), (-4, IndexError), ([0, 3], IndexError), ([0, -4], IndexError),
    ((0, 0, 0, 0), IndexError), (1.5, IndexError), ("a", TypeError),
    ((Ellipsis, 0, Ellipsis, 0, 0, 0), IndexError), ((slice(None, None, -1),), ValueError),
])
def test_getitem_errors(idx, exc):
    with pytest.raises(exc):
        t()[idx]


def test_getitem_float_tensor_index_rejected():
    with pytest.raises(IndexError, match="long, int, byte or bool"):
        t()[torch.tensor([0.])]


# ---- setitem ---------------------------------------------------------------------------------

@pytest.mark.parametrize("idx,val", [
    (1, 7), ((slice(None), 1), -1), ((slice(None), 1), np.arange(5)),
    (([0, 2], [1, 3]), np.arange(100, 105)), ((Ellipsis, 0), 5), ((None, 0), 5),
    (slice(None, None, 2), 5), (([0, 1],), np.arange(5)), (([0, 0],), np.zeros((2, 4, 5), np.int64)),
])
def test_setitem_matches_numpy(idx, val):
    x = t()
    x[idx] = torch.tensor(val) if isinstance(val, np.ndarray) else val
    exp = A.copy()
    exp[idx] = val
    assert_close(x, exp)


def test_setitem_masks_and_torch_int_rule():
    x = t()
    x[x > 30] = 0
    exp = A.copy()
    exp[exp > 30] = 0
    assert_close(x, exp)
    x = t()
    x[x[:, :, 0] > 20] = torch.tensor([9, 8, 7, 6, 5])
    exp = A.copy()
    exp[A[:, :, 0] > 20] = [9, 8, 7, 6, 5]
    assert_close(x, exp)
    x = t()
    x[0, :, [1, 2]] = torch.arange(8).reshape(4, 2)   # the indexed shape is (4, 2) in torch
    exp = A.copy()
    exp[0][:, [1, 2]] = np.arange(8).reshape(4, 2)
    assert_close(x, exp)
    x = t()
    with pytest.raises(RuntimeError, match="shape mismatch"):
        x[0, :, [1, 2]] = torch.ones(2, 4, dtype=torch.int64)
    assert_close(x, A)


def test_setitem_casts_and_broadcasts():
    x = t()
    x[0] = 2.7                                 # cast to the tensor's dtype (truncation)
    assert to_np(x[0]).tolist() == np.full((4, 5), 2).tolist() and x.dtype == torch.int64
    x[1] = torch.tensor(2.5)
    assert (to_np(x[1]) == 2).all()
    x[2] = torch.ones(1, 1, 4, 5, dtype=torch.int64)     # leading 1s of the value are dropped
    assert (to_np(x[2]) == 1).all()
    b = torch.zeros(2, 2, dtype=torch.bool)
    b[0] = 5
    assert to_np(b).tolist() == [[True, True], [False, False]]
    s = torch.tensor(1)
    s[()] = 5
    assert s.item() == 5
    s[...] = 6
    assert s.item() == 6


def test_setitem_errors_leave_target_unchanged():
    x = t()
    with pytest.raises(IndexError):
        x[[0, 5]] = 1
    with pytest.raises(IndexError):
        x[3] = 1
    with pytest.raises(RuntimeError, match="shape mismatch"):
        x[:, 1] = torch.tensor([1, 2, 3])
    with pytest.raises(RuntimeError):
        x[0] = torch.ones(3, 5, dtype=torch.int64)
    with pytest.raises(IndexError):
        x[torch.tensor([True, False])] = 0
    assert_close(x, A)
    assert x._version == 0


def test_setitem_autograd():
    w = torch.tensor(A[0].astype(np.float64), requires_grad=True)
    v = torch.tensor([1., 2., 3., 4., 5.], dtype=torch.float64, requires_grad=True)
    x = w * 1
    x[w > 10] = 0
    x[0] = v * 3
    (x * x).sum().backward()
    W = A[0].astype(np.float64)
    X = W.copy()
    X[W > 10] = 0
    X[0] = 3 * np.arange(1, 6)
    assert_close(x.detach(), X)
    gw = 2 * X
    gw[W > 10] = 0
    gw[0] = 0
    assert_close(w.grad, gw)
    assert_close(v.grad, 2 * X[0] * 3)
    assert x.grad_fn.name() == "torch::autograd::CopySlices"


def test_getitem_autograd():
    W = A.astype(np.float64)
    w = torch.tensor(W, requires_grad=True)
    y = w[0, :, [1, 2]].sum() * 2 + w[w > 50].sum() + w[[0, 0], 1].sum()
    y.backward()
    g = np.zeros_like(W)
    g[0][:, [1, 2]] += 2
    g[W > 50] += 1
    g[0, 1] += 2                     # the repeated index accumulates
    assert_close(w.grad, g)
    assert y.item() == pytest.approx(2 * W[0][:, [1, 2]].sum() + W[W > 50].sum() + 2 * W[0, 1].sum())


# ---- index_select / masked / take / nonzero / where ------------------------------------------

def test_index_select():
    x = t()
    assert_close(torch.index_select(x, 1, torch.tensor([0, 3, 3])), A[:, [0, 3, 3]])
    assert_close(x.index_select(-1, torch.tensor([4, 0])), A[:, :, [4, 0]])
    assert_close(x.index_select(1, torch.tensor(2)), A[:, [2]])
    # torch 2.13: IndexError, except from its dim-1 kernel (and for an empty input of ndim > 1)
    with pytest.raises(IndexError, match="out of bounds"):
        x.index_select(0, torch.tensor([0, 3]))
    with pytest.raises(IndexError, match="out of bounds"):
        x.index_select(2, torch.tensor([-1]))
    with pytest.raises(RuntimeError, match="out of bounds"):
        x.index_select(1, torch.tensor([0, 4]))
    with pytest.raises(RuntimeError, match="out of bounds"):
        torch.zeros(3, 0, 5).index_select(0, torch.tensor([7]))
    with pytest.raises(IndexError, match="out of bounds"):
        torch.zeros(4).index_select(0, torch.tensor([4]))
    with pytest.raises(RuntimeError, match="int32 or int64"):
        x.index_select(1, torch.tensor([0., 1.]))
    with pytest.raises(IndexError):
        x.index_select(1, torch.tensor([[0]]))


def test_index_select_bad_index_checked_once_leaves_out_unchanged():
    # eager index_select's index node checks [0, size) (negative values too, int32 or int64)
    x = torch.tensor(np.arange(6.0).reshape(2, 3))
    o = torch.full((1, 3), 7.0, dtype=torch.float64)
    for idx, dtype in (([2], torch.int64), ([-1], torch.int32), ([0, 5], torch.int32)):
        bad = idx[-1]
        with pytest.raises(IndexError, match=rf"^index_select\(\): index {bad} is out of bounds "
                                             rf"for dimension 0 with size 2 \(input shape \[2, 3\]\)"):
            torch.index_select(x, 0, torch.tensor(idx, dtype=dtype), out=o)
        assert_close(o, np.full((1, 3), 7.0))
    with pytest.raises(RuntimeError, match=r"^index_select\(\): index -2 is out of bounds for "
                                           r"dimension 1 with size 3"):
        x.index_select(1, torch.tensor([0, -2], dtype=torch.int32))
    assert_close(x, np.arange(6.0).reshape(2, 3))
    assert_close(torch.index_select(x, 0, torch.tensor([1, 1, 0], dtype=torch.int32)),
                 np.arange(6.0).reshape(2, 3)[[1, 1, 0]])


def test_masked_select_fill():
    x = t()
    assert_close(torch.masked_select(x, x % 7 == 0), A[A % 7 == 0])
    m = np.array([True, False, True, False, True])
    assert_close(x.masked_select(torch.tensor(m)), A[np.broadcast_to(m, A.shape)])
    assert_close(x.masked_fill(x > 30, -1), np.where(A > 30, -1, A))
    r = x.masked_fill(x > 30, -1.5)
    assert r.dtype == torch.int64 and to_np(r).min() == -1
    assert_close(x.masked_fill(torch.tensor(m), 0), np.where(m, 0, A))
    f = torch.tensor(A, dtype=torch.float32)
    assert_close(f.masked_fill(f > 30, torch.tensor(2.5)), np.where(A > 30, 2.5, A))
    y = torch.zeros(5)
    with pytest.raises(RuntimeError):
        y.masked_fill_(torch.ones(2, 5, dtype=torch.bool), 1.)
    with pytest.raises(RuntimeError, match="boolean"):
        y.masked_fill_(torch.ones(5), 1.)
    assert_close(y, np.zeros(5))
    y.masked_fill_(torch.tensor([True, False, True, False, False]), 3.)
    assert_close(y, [3, 0, 3, 0, 0])


def test_take_put():
    x = t()
    assert_close(torch.take(x, torch.tensor([[0, 59], [-1, 5]])), [[0, 59], [59, 5]])
    with pytest.raises(IndexError):
        torch.take(x, torch.tensor([60]))
    z = torch.zeros(3, 4)
    z.put_(torch.tensor([0, 5, -1]), torch.tensor([1., 2., 3.]))
    exp = np.zeros(12)
    exp[[0, 5, -1]] = [1, 2, 3]
    assert_close(z, exp.reshape(3, 4))
    z.put_(torch.tensor([0, 0]), torch.tensor([1., 2.]), accumulate=True)
    exp[0] += 3
    assert_close(z, exp.reshape(3, 4))
    with pytest.raises(IndexError):
        z.put_(torch.tensor([0, 12]), torch.tensor([1., 2.]))
    assert_close(z, exp.reshape(3, 4))


def test_nonzero_seed_t7():
    r = torch.nonzero(torch.tensor([1, 1, 1, 0, 1]))
    assert r.shape == (4, 1) and r.dtype == torch.int64
    assert to_np(r).tolist() == [[0], [1], [2], [4]]
    assert repr(r) == "tensor([[0],\n        [1],\n        [2],\n        [4]])"
    d = torch.diag(torch.tensor([0.6, 0.4, 1.2, -0.4]))
    assert to_np(torch.nonzero(d)).tolist() == [[0, 0], [1, 1], [2, 2], [3, 3]]
    assert repr(torch.nonzero(torch.tensor([1, 1, 1, 0, 1]), as_tuple=True)) == \
        "(tensor([0, 1, 2, 4]),)"
    assert repr(torch.nonzero(d, as_tuple=True)) == "(tensor([0, 1, 2, 3]), tensor([0, 1, 2, 3]))"
    assert repr(torch.nonzero(torch.tensor(5), as_tuple=True)) == "(tensor([0]),)"
    assert torch.nonzero(torch.tensor(0)).shape == (0, 0)
    assert torch.nonzero(torch.tensor(5)).shape == (1, 0)
    assert_close(torch.argwhere(torch.tensor([[1, 0], [0, 2]])), [[0, 0], [1, 1]])


def test_where():
    x = t()
    assert_close(torch.where(x > 30, x, torch.tensor(0)), np.where(A > 30, A, 0))
    r = torch.where(x > 30, 1.5, 0)
    assert r.dtype == torch.float32 and to_np(r).tolist() == np.where(A > 30, 1.5, 0).tolist()
    rows, cols = torch.where(torch.tensor([[1, 0], [0, 2]]))
    assert to_np(rows).tolist() == [0, 1] and to_np(cols).tolist() == [0, 1]
    # the seed's idiom: locate an element
    lt = torch.tensor([3, 7, 7, 1])
    hit = torch.nonzero(torch.where(lt == 7, torch.tensor(7), torch.tensor(0)))
    assert to_np(hit).tolist() == [[1], [2]]


# ---- gather / scatter / index_add --------------------------------------------------------------

def test_gather():
    x = t()
    idx = np.array([[[0, 4], [1, 1], [2, 3], [4, 0]]] * 3)
    assert_close(torch.gather(x, 2, torch.tensor(idx)), np.take_along_axis(A, idx, 2))
    small = np.zeros((2, 2, 2), np.int64)
    small[1, 1, 1] = 3
    exp = np.array([[[A[i, small[i, j, k], k] for k in range(2)] for j in range(2)] for i in range(2)])
    assert_close(x.gather(1, torch.tensor(small)), exp)
    assert_close(x.gather(1, torch.tensor(small, dtype=torch.int32)), exp)
    with pytest.raises(RuntimeError, match="out of bounds"):
        x.gather(1, torch.full((2, 2, 2), 4, dtype=torch.int64))
    with pytest.raises(RuntimeError):
        x.gather(1, torch.zeros(2, 2, dtype=torch.int64))
    with pytest.raises(RuntimeError):
        x.gather(1, torch.zeros(4, 2, 2, dtype=torch.int64))


def test_scatter_seed_t5():
    x = torch.tensor([[0.3992, 0.2908, 0.9044, 0.4850, 0.6004],
                      [0.5735, 0.9006, 0.6797, 0.4152, 0.1732]])
    r = torch.zeros(3, 5).scatter_(0, torch.tensor([[0, 1, 2, 0, 0], [2, 0, 0, 1, 2]]), x)
    assert_close(r, [[0.3992, 0.9006, 0.6797, 0.4850, 0.6004],
                     [0.0000, 0.2908, 0.0000, 0.4152, 0.0000],
                     [0.5735, 0.0000, 0.9044, 0.0000, 0.1732]])
    z = torch.zeros(2, 4).scatter_(1, torch.tensor([[2], [3]]), 1.23)
    assert_close(z, [[0, 0, 1.23, 0], [0, 0, 0, 1.23]])
    assert repr(z) == "tensor([[0.0000, 0.0000, 1.2300, 0.0000],\n        [0.0000, 0.0000, 0.0000, 1.2300]])"


def test_scatter_reduce_forms():
    idx = torch.tensor([[2, 2], [3, 0]])
    three = torch.ones(2, 2) * 3
    assert_close(torch.ones(2, 4).scatter(1, idx, three, reduce="add"), [[1, 1, 7, 1], [4, 1, 1, 4]])
    assert_close(torch.ones(2, 4).scatter(1, idx, three, reduce="multiply"), [[1, 1, 9, 1], [3, 1, 1, 3]])
    assert_close(torch.ones(2, 4).scatter_(1, idx, 2., reduce="add"), [[1, 1, 5, 1], [3, 1, 1, 3]])
    assert_close(torch.ones(2, 4).scatter_(1, idx, 2., reduce="multiply"), [[1, 1, 4, 1], [2, 1, 1, 2]])
    assert_close(torch.zeros(2, 4).scatter(1, idx, value=1.23), [[0, 0, 1.23, 0], [1.23, 0, 0, 1.23]])
    with pytest.raises(RuntimeError):
        torch.ones(2, 4).scatter(1, idx, 2., reduce="max")
    y = torch.ones(2, 4)
    with pytest.raises(RuntimeError, match="out of bounds"):
        y.scatter_(1, torch.tensor([[2, 4], [3, 0]]), 2.)
    assert_close(y, np.ones((2, 4)))


def test_scatter_add_and_reduce():
    i = torch.tensor([[0, 1, 2, 0, 0], [2, 0, 0, 1, 2]])
    assert_close(torch.zeros(3, 5).scatter_add(0, i, torch.ones(2, 5)),
                 [[1, 1, 1, 1, 1], [0, 1, 0, 1, 0], [1, 0, 1, 0, 1]])
    z = torch.zeros(3, 5)
    z.scatter_add_(0, torch.tensor([[0, 0, 2, 0, 0], [0, 0, 0, 1, 2]]), torch.ones(2, 5))
    assert_close(z, [[2, 2, 1, 1, 1], [0, 0, 0, 1, 0], [0, 0, 1, 0, 1]])
    base = [1., 2., 3., 4.]
    src = [5., -1., 2., 7., 3.]
    ix = [0, 0, 2, 2, 2]
    expect = {  # hand-derived: target 0 gets {5, -1}, target 2 gets {2, 7, 3}
        ("sum", True): [5, 2, 15, 4], ("sum", False): [4, 2, 12, 4],
        ("prod", True): [-5, 2, 126, 4], ("prod", False): [-5, 2, 42, 4],
        ("mean", True): [5 / 3, 2, 15 / 4, 4], ("mean", False): [2, 2, 4, 4],
        ("amax", True): [5, 2, 7, 4], ("amax", False): [5, 2, 7, 4],
        ("amin", True): [-1, 2, 2, 4], ("amin", False): [-1, 2, 2, 4],
    }
    for (red, inc), e in expect.items():
        r = torch.tensor(base).scatter_reduce(0, torch.tensor(ix), torch.tensor(src), red,
                                              include_self=inc)
        assert_close(r, e, atol=1e-6)
    r = torch.tensor([1, 2, 3, 4]).scatter_reduce(0, torch.tensor(ix), torch.tensor([5, -1, 2, 7, 4]),
                                                  "mean")
    assert to_np(r).tolist() == [1, 2, 4, 4]        # integer mean floors: (1+5-1)//3, (3+2+7+4)//4


def test_index_add_copy_fill():
    assert_close(torch.zeros(3, 4).index_add(1, torch.tensor([0, 0, 3]), torch.ones(3, 3)),
                 [[2, 0, 0, 1]] * 3)
    assert_close(torch.zeros(3, 4).index_add(0, torch.tensor([0, 0]), torch.ones(2, 4), alpha=2),
                 [[4] * 4, [0] * 4, [0] * 4])
    z = torch.zeros(3, 4)
    z.index_add_(0, torch.tensor([0, 2]), torch.ones(2, 4))
    assert_close(z, [[1] * 4, [0] * 4, [1] * 4])
    with pytest.raises(RuntimeError, match="out of bounds"):
        z.index_add_(0, torch.tensor([0, 5]), torch.ones(2, 4))
    with pytest.raises(RuntimeError):
        z.index_add_(0, torch.tensor([0, 1]), torch.ones(2, 3))
    assert_close(z, [[1] * 4, [0] * 4, [1] * 4])
    assert_close(torch.zeros(3, 4).index_copy(1, torch.tensor([0, 2]), torch.ones(3, 2)),
                 [[1, 0, 1, 0]] * 3)
    assert_close(torch.zeros(3, 4).index_fill(1, torch.tensor([0, 2]), 5.), [[5, 0, 5, 0]] * 3)


def test_take_along_dim():
    x = t()
    i = np.zeros((1, 4, 1), np.int64)
    assert_close(torch.take_along_dim(x, torch.tensor(i), 2),
                 np.take_along_axis(A, np.broadcast_to(i, (3, 4, 1)), 2))
    assert_close(torch.take_along_dim(x, torch.tensor([0, 59])), [0, 59])
    f = torch.tensor(A, dtype=torch.float32)
    assert_close(torch.take_along_dim(f, f.argsort(1, descending=True), 1), -np.sort(-A, 1))


@pytest.mark.parametrize("fn", [
    lambda m, x: x[0, :, [1, 2]], lambda m, x: x[[0, 1], ..., [0, 1]],
    lambda m, x: x[m.tensor([True, False, True]), None, 1:, [2, 3]],
    lambda m, x: x[:, [[0], [3]], 1:3], lambda m, x: x[None, [0, 1], :, m.tensor(1)],
    lambda m, x: m.take_along_dim(x, m.tensor([[[1]], [[2]], [[0]]]), 1),
])
def test_getitem_matches_torch(fn):
    real = pytest.importorskip("torch")
    ours, ref = fn(torch, t()), fn(real, real.tensor(A))
    assert tuple(ours.shape) == tuple(ref.shape)
    np.testing.assert_array_equal(to_np(ours), ref.numpy())


def test_index_put_values_accumulate_masks_and_errors():
    # expected values and messages are PyTorch 2.13's
    x = torch.arange(12.0).reshape(3, 4)
    r = torch.index_put(x, (torch.tensor([0, 2]), torch.tensor([1, 3])), torch.tensor([10.0, 20.0]))
    want = np.arange(12.0).reshape(3, 4)
    want[0, 1], want[2, 3] = 10, 20
    np.testing.assert_array_equal(to_np(r), want)
    np.testing.assert_array_equal(to_np(x), np.arange(12.0).reshape(3, 4))    # not in place
    acc = torch.index_put(torch.zeros(4), (torch.tensor([0, 0, 2]),), torch.tensor(1.0),
                          accumulate=True)
    np.testing.assert_array_equal(to_np(acc), [2, 0, 1, 0])                     # duplicates add
    rows = torch.index_put(torch.zeros(3, 4), [torch.tensor([0])], torch.tensor(1.0))
    np.testing.assert_array_equal(to_np(rows), [[1] * 4, [0] * 4, [0] * 4])
    masked = torch.index_put(torch.zeros(3, 4), (torch.tensor([True, False, True]),),
                             torch.tensor(2.0))
    np.testing.assert_array_equal(to_np(masked), [[2] * 4, [0] * 4, [2] * 4])
    y = torch.zeros(2, 3)
    assert y.index_put_((torch.tensor([1]), torch.tensor([2])), torch.tensor(5.0)) is y
    np.testing.assert_array_equal(to_np(y), [[0, 0, 0], [0, 0, 5]])
    z = torch.zeros(3, 4)
    with pytest.raises(RuntimeError, match="Index put requires the source and destination "
                                           "dtypes match, got Float for the destination and "
                                           "Long for the source."):
        torch.index_put(z, (torch.tensor([0]),), torch.tensor([1]))
    with pytest.raises(IndexError, match=r"too many indices for tensor of dimension 2 \(got 3\)"):
        torch.index_put(z, (torch.tensor([0]),) * 3, torch.tensor(1.0))
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 3"):
        torch.index_put(z, (torch.tensor([5]),), torch.tensor(1.0))
    with pytest.raises(IndexError, match="tensors used as indices must be long, int, byte or bool"):
        torch.index_put(z, (torch.tensor([0.5]),), torch.tensor(1.0))
    with pytest.raises(TypeError, match="must be tuple of Tensors, not Tensor"):
        torch.index_put(z, torch.tensor([0]), torch.tensor(1.0))
    with pytest.raises(TypeError, match="expected Tensor as element 0 in argument 1, but got "
                                        "NoneType"):
        torch.index_put(z, (None, torch.tensor([0])), torch.tensor(1.0))
    np.testing.assert_array_equal(to_np(z), np.zeros((3, 4)))                  # untouched


def test_slice_and_diagonal_scatter():
    x = torch.zeros(3, 4)
    r = torch.slice_scatter(x, torch.ones(3, 2), dim=1, start=0, end=4, step=2)
    np.testing.assert_array_equal(to_np(r), [[1, 0, 1, 0]] * 3)
    r2 = x.slice_scatter(torch.full((1, 4), 7.0), dim=-2, start=2)
    np.testing.assert_array_equal(to_np(r2), [[0] * 4, [0] * 4, [7] * 4])
    d = torch.diagonal_scatter(torch.zeros(3, 3), torch.tensor([1.0, 2.0]), offset=1)
    np.testing.assert_array_equal(to_np(d), [[0, 1, 0], [0, 0, 2], [0, 0, 0]])
    d2 = torch.zeros(2, 3).diagonal_scatter(torch.tensor([4.0]), -1)
    np.testing.assert_array_equal(to_np(d2), [[0, 0, 0], [4, 0, 0]])
    with pytest.raises(RuntimeError, match=r"expected src to have a size equal to the slice of "
                                           r"self. src size = \[2, 2\], slice size = \[3, 2\]"):
        torch.slice_scatter(x, torch.ones(2, 2), dim=1, start=0, end=4, step=2)
    with pytest.raises(RuntimeError, match="diagonal_scatter: expected src to have a size equal "
                                           "to the diagonal"):
        torch.diagonal_scatter(torch.zeros(3, 3), torch.ones(2))
    np.testing.assert_array_equal(to_np(x), np.zeros((3, 4)))


def test_scatter_and_index_add_refuse_a_source_of_another_dtype():
    # torch never promotes a tensor src/source here (a Python number is converted)
    x = torch.zeros(3, 4)
    i = torch.tensor([[0, 1]])
    for f in (lambda: x.scatter(0, i, torch.ones(1, 2, dtype=torch.float64)),
              lambda: x.scatter_add(0, i, torch.ones(1, 2, dtype=torch.float64)),
              lambda: x.scatter_reduce(0, i, torch.ones(1, 2, dtype=torch.int64), "sum"),
              lambda: x.clone().scatter_(0, i, torch.ones(1, 2, dtype=torch.float64)),
              lambda: x.index_add(0, torch.tensor([1]), torch.ones(1, 4, dtype=torch.float64))):
        with pytest.raises(RuntimeError, match="dtype|scalar type"):
            f()
    np.testing.assert_array_equal(to_np(x), np.zeros((3, 4)))
    np.testing.assert_array_equal(to_np(x.scatter(0, i, 2)), [[2, 0, 0, 0], [0, 2, 0, 0], [0] * 4])


def test_scatter_reduce_max_min_aliases_and_bool_mean():
    x = torch.zeros(3)
    i = torch.tensor([0, 0, 1])
    s = torch.tensor([1.0, 5.0, -2.0])
    np.testing.assert_array_equal(to_np(x.scatter_reduce(0, i, s, "max")), [5, 0, 0])
    np.testing.assert_array_equal(to_np(x.scatter_reduce(0, i, s, "min")), [0, -2, 0])
    with pytest.raises(RuntimeError):
        x.scatter_reduce(0, i, s, "add")
    b = torch.zeros(3, dtype=torch.bool)
    with pytest.raises(NotImplementedError, match="Bool"):
        b.scatter_reduce(0, i, torch.ones(3, dtype=torch.bool), "mean")


def test_index_add_error_class_by_dim():
    # torch's int64 / alpha=1 kernel for the first and last dims raises RuntimeError; the
    # middle dims (and int32 indices, 1-d inputs) IndexError
    x = torch.zeros(3, 4, 5)
    with pytest.raises(RuntimeError, match="out of bounds"):
        x.index_add(0, torch.tensor([3]), torch.ones(1, 4, 5))
    with pytest.raises(RuntimeError, match="out of bounds"):
        x.index_add(2, torch.tensor([5]), torch.ones(3, 4, 1))
    with pytest.raises(IndexError, match="out of bounds"):
        x.index_add_(1, torch.tensor([-1]), torch.ones(3, 1, 5))
    with pytest.raises(IndexError, match="out of bounds"):
        x.index_add(0, torch.tensor([3], dtype=torch.int32), torch.ones(1, 4, 5))
    assert float(x.abs().sum()) == 0


def test_index_ops_along_inner_dims_are_contiguous():
    # a fresh contiguous result, as torch's (not a permuted view); size-1 dims too
    a = np.arange(60.0).reshape(3, 4, 5)
    x = torch.tensor(a)
    i = torch.tensor([2, 0])
    r = x.index_fill(1, i, -1.0)
    assert r.stride() == (20, 5, 1) and r.is_contiguous()
    e = a.copy()
    e[:, [2, 0]] = -1
    np.testing.assert_array_equal(to_np(r.view(-1)), e.reshape(-1))
    r = x.index_add(2, i, torch.ones(3, 4, 2, dtype=torch.float64))
    assert r.stride() == (20, 5, 1)
    e = a.copy()
    e[:, :, [2, 0]] += 1
    np.testing.assert_array_equal(to_np(r), e)
    r = x.index_copy(1, i, torch.zeros(3, 2, 5, dtype=torch.float64))
    assert r.stride() == (20, 5, 1)
    e = a.copy()
    e[:, [2, 0]] = 0
    np.testing.assert_array_equal(to_np(r), e)
    assert x.index_select(1, torch.tensor([3])).stride() == (5, 5, 1)
    assert x.index_select(2, torch.tensor([3])).stride() == (4, 1, 1)
    g = torch.zeros(3, 4, 5, requires_grad=True)
    assert g.index_fill(1, i, 1).grad_fn.name() == "IndexFillBackward0"
    assert g.index_add(1, i, torch.ones(3, 2, 5)).grad_fn.name() == "IndexAddBackward0"
    assert g.index_copy(1, i, torch.ones(3, 2, 5)).grad_fn.name() == "IndexCopyBackward0"


def test_fill_values_are_converted_checked():
    # torch's checked conversion: a uint8 tensor takes -1 as 255, refuses 256 and -1.5
    x = torch.zeros(3, dtype=torch.uint8)
    m = torch.tensor([True, False, True])
    i = torch.tensor([1])
    np.testing.assert_array_equal(to_np(x.masked_fill(m, -1)), [255, 0, 255])
    np.testing.assert_array_equal(to_np(x.index_fill(0, i, -1)), [0, 255, 0])
    np.testing.assert_array_equal(to_np(x.scatter(0, i, -1)), [0, 255, 0])
    for v in (256, -1.5):
        for f in (lambda: x.masked_fill(m, v), lambda: x.index_fill(0, i, v),
                  lambda: x.index_fill(0, torch.tensor([], dtype=torch.int64), v),
                  lambda: x.scatter(0, i, v)):
            with pytest.raises(RuntimeError, match="without overflow"):
                f()
    with pytest.raises(RuntimeError, match="without overflow"):
        torch.zeros(2).masked_fill(torch.tensor([True, False]), 1e300)


def test_masked_fill_broadcasts_out_of_place():
    x = torch.tensor([1.0, 2.0, 3.0])
    m = torch.tensor([[True, False, False], [False, False, True]])
    r = x.masked_fill(m, 0)
    assert r.shape == (2, 3)
    np.testing.assert_array_equal(to_np(r), [[0, 2, 3], [1, 2, 0]])
    with pytest.raises(RuntimeError):          # in place, self cannot grow
        x.masked_fill_(m, 0)
    np.testing.assert_array_equal(to_np(x), [1, 2, 3])


def test_index_select_and_index_copy_errors():
    s = torch.tensor(5.0)
    assert float(s.index_select(0, torch.tensor([0]))) == 5
    for idx in ([0, 0], []):
        with pytest.raises(RuntimeError, match="only 1 value"):
            s.index_select(0, torch.tensor(idx, dtype=torch.int64))
    x = torch.zeros(3, 4)
    with pytest.raises(IndexError):            # number of indices != source.size(dim)
        x.index_copy(0, torch.tensor([0]), torch.ones(2, 4))
    with pytest.raises(IndexError):            # dimensionality differs
        x.index_copy(0, torch.tensor([0]), torch.ones(4))
    with pytest.raises(RuntimeError):          # slice shape differs
        x.index_copy(0, torch.tensor([0]), torch.ones(1, 5))
    np.testing.assert_array_equal(to_np(x), np.zeros((3, 4)))


def test_advanced_index_layout_of_a_non_contiguous_input():
    # torch's TensorIterator lays the result out after the input's and the indices' strides
    a = np.arange(120).reshape(4, 5, 6)
    x = torch.tensor(a).permute(2, 0, 1)                    # strides (1, 30, 6)
    p = a.transpose(2, 0, 1)
    r = x[:, [0, 1], [1, 2]]
    assert r.shape == (6, 2) and r.stride() == (2, 1)
    np.testing.assert_array_equal(to_np(r.view(-1)), p[:, [0, 1], [1, 2]].reshape(-1))
    r = x[..., [0, 1]]
    assert r.shape == (6, 4, 2) and r.stride() == (2, 12, 1)
    np.testing.assert_array_equal(to_np(r), p[..., [0, 1]])
    r = x[0, :, [1, 2]]
    assert r.stride() == (2, 1)
    np.testing.assert_array_equal(to_np(r), p[0][:, [1, 2]])   # (torch: the int is basic)
    # transposed index tensor, contiguous input: the output follows the index
    i = torch.tensor([[0, 2, 1], [1, 1, 0]]).t()           # shape (3, 2), strides (1, 3)
    r = torch.tensor(a[0])[i]
    assert r.shape == (3, 2, 6) and r.stride() == (6, 18, 1)
    np.testing.assert_array_equal(to_np(r), a[0][to_np(i)])
    assert torch.tensor(a)[:, [0, 1]].stride() == (12, 6, 1)   # contiguous input: contiguous


def test_result_layouts_of_a_permuted_input():
    # torch: index_fill / index_put / put clone the input (preserve_format) and write into
    # it; index_select, take, masked_fill, repeat_interleave allocate row-major results
    a = np.arange(120.0).reshape(4, 5, 6)
    x = torch.tensor(a).permute(1, 2, 0)                # (5, 6, 4), strides (6, 1, 30)
    p = a.transpose(1, 2, 0)
    i = torch.tensor([1, 0])
    r = x.index_fill(1, i, 2.0)
    e = p.copy()
    e[:, [1, 0]] = 2
    assert r.stride() == (6, 1, 30)
    np.testing.assert_array_equal(to_np(r), e)
    r = x.index_put((i,), torch.tensor(1.0, dtype=torch.float64))
    e = p.copy()
    e[[1, 0]] = 1
    assert r.stride() == (6, 1, 30)
    np.testing.assert_array_equal(to_np(r), e)
    r = x.put(torch.tensor([0, 7]), torch.tensor([-1.0, -2.0], dtype=torch.float64))
    e = p.copy().reshape(-1)
    e[[0, 7]] = [-1, -2]
    assert r.stride() == (6, 1, 30)
    np.testing.assert_array_equal(to_np(r), e.reshape(5, 6, 4))
    assert x[:, ::2].index_fill(1, i, 2.0).stride() == (3, 1, 15)   # dense, x's order
    r = x.index_select(1, i)
    assert r.stride() == (8, 4, 1)
    np.testing.assert_array_equal(to_np(r), p[:, [1, 0]])
    assert x.masked_fill(x > 50, 0.0).stride() == (24, 4, 1)
    assert x.repeat_interleave(2, 1).stride() == (48, 4, 1)
    r = x.take(torch.tensor([[0, 7], [3, 3]]).t())
    assert r.stride() == (2, 1)
    np.testing.assert_array_equal(to_np(r), p.reshape(-1)[[[0, 3], [7, 3]]])


def test_full_slices_and_one_int_take_select():
    # x[:, i], x[:, i, :], x[i, :]: one select view, as the planner's path gives
    base = np.arange(60.0).reshape(3, 4, 5)
    for idx in [(slice(None), 1), (slice(None), -1), (slice(None), slice(None), 2),
                (2, slice(None)), (slice(None), 3, slice(None)), (slice(None), slice(None), -5)]:
        x = torch.tensor(base, requires_grad=True)
        r = x[idx]
        ref = base[idx]
        np.testing.assert_array_equal(r.detach().cpu().numpy(), ref)
        assert r.stride() == tuple(s // 8 for s in ref.strides) and r._base is x
        assert r.grad_fn.name() == "SelectBackward0"
        (r * 2).sum().backward()
        g = np.zeros_like(base)
        g[idx] = 2.0
        np.testing.assert_array_equal(x.grad.cpu().numpy(), g)
    x = torch.tensor(base)
    v = x[:, 1]
    v += 100                                    # a view: the write reaches x
    assert x[0, 1, 0].item() == 105.0 and x._version == v._version == 1
    with pytest.raises(IndexError, match="index 4 is out of bounds for dimension 1 with size 4"):
        x[:, 4]
    with pytest.raises(IndexError, match="index -6 is out of bounds for dimension 2 with size 5"):
        x[:, :, -6]
    # two ints, a step, or None go through the planner, with the same values
    np.testing.assert_array_equal(x[:, 1, 2].cpu().numpy(), x.cpu().numpy()[:, 1, 2])
    np.testing.assert_array_equal(x[::2, 1].cpu().numpy(), x.cpu().numpy()[::2, 1])
    np.testing.assert_array_equal(x[None, 1].cpu().numpy(), x.cpu().numpy()[None, 1])


def test_indexing_a_0d_tensor_raises_torchs_errors():
    # PyTorch's messages for an int (or NumPy int) and a bare slice on a 0-dim tensor; a tuple
    # is "too many indices"; True adds a dim. Nothing is written on a refused write.
    x = torch.tensor(3.0)
    for i in (0, -1, np.int64(0)):
        with pytest.raises(IndexError, match=r"^invalid index of a 0-dim tensor\. Use "
                                             r"`tensor\.item\(\)`"):
            x[i]
        with pytest.raises(IndexError, match="invalid index of a 0-dim tensor"):
            x[i] = 5.0
    with pytest.raises(IndexError, match=r"^slice\(\) cannot be applied to a 0-dim tensor\.$"):
        x[:]
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 0"):
        x[(0,)]
    assert x.item() == 3.0 and x[True].shape == (1,) and x[None].shape == (1,)


def test_setitem_on_a_leaf_names_the_view_as_torch():
    # x[basic index] = v writes through a view of the leaf (PyTorch's "a view of a leaf"
    # message); a mask, x[...] and x[:] write into the leaf itself. Data stays unchanged.
    for idx, view in ((0, True), ((slice(1, None),), True), (None, True),
                      ((0, torch.tensor([1])), True), (torch.tensor([True, False]), False),
                      (Ellipsis, False), (slice(None), False)):
        x = torch.ones(2, 3, requires_grad=True)
        want = ("^a view of a leaf Variable" if view else "^a leaf Variable") + \
            " that requires grad is being used in an in-place operation"
        with pytest.raises(RuntimeError, match=want):
            x[idx] = 2.0
        assert x.detach().tolist() == [[1.0] * 3] * 2 and x._version == 0
