"""Regressions from a differential sweep of indexing against PyTorch 2.13 (getitem/setitem,
the index_* family, take_along_dim, put_, scatter_reduce gradients). Expected values are
hand-derived or NumPy float64; the optional cross-check at the end imports torch."""
import numpy as np
import pytest

import framework as torch
from conftest import assert_close, to_np

A = np.arange(24, dtype=np.float64).reshape(2, 3, 4)


def t(a=A, **kw):
    return torch.tensor(a, **kw)


def I(v, dtype=None):
    return torch.tensor(v, dtype=dtype or torch.int64)


# ---- getitem: error order and classes, empty results, several Ellipsis items -------------------

def test_index_tensors_that_do_not_broadcast_raise_index_error():
    x = t()
    with pytest.raises(IndexError, match="could not be broadcast"):
        x[I([0, 1]), I([0, 1, 2])]
    with pytest.raises(IndexError, match="could not be broadcast"):
        x[I([0, 1]), []]
    with pytest.raises(IndexError, match="could not be broadcast"):
        x[False, I([0, 1])]               # False is an index of shape [0]
    with pytest.raises(IndexError, match="could not be broadcast"):
        torch.index_put(x, (I([0, 1]), I([0, 1, 2])), torch.tensor(1.0, dtype=torch.float64))


def test_out_of_range_index_is_not_read_when_the_result_is_empty():
    x = t()
    r = x[2:1, I([0, 5])]                 # dim 0 empty: torch reads no index value
    assert r.shape == (0, 2, 4)
    assert x[I([2]), []].shape == (0, 4)  # broadcast with an empty index: no positions
    assert x[False, I([2])].shape == (0, 3, 4)
    with pytest.raises(IndexError):
        x[1:, I([0, 5])]                  # a non-empty result reads it
    z = torch.zeros(3, 0, 2)
    with pytest.raises(IndexError):       # an index into a dim of size 0 is refused ...
        z[2:1, I([0])]
    assert z[I([]), I([1])].shape == (0, 2)   # ... unless it names no positions
    y = t()
    y[2:1, I([0, 5])] = 7.0               # setitem: nothing written, no error
    assert_close(y, A)


def test_negative_step_is_reported_before_a_bad_index():
    x = t()
    with pytest.raises(ValueError, match="step"):
        x[I([5]), ::-1]
    with pytest.raises(ValueError, match="step"):
        x[torch.tensor([True, False, True]), ::-1]   # (the mask's shape is wrong too)


def test_several_ellipsis_items_like_torch():
    x = t()
    assert x[..., ...].shape == (2, 3, 4)
    assert_close(x[..., 0, ...], A[..., 0])          # the first one takes the free dims
    assert x[..., None, ...].shape == (2, 3, 4, 1)
    with pytest.raises(IndexError):
        x[..., ..., 0]


# ---- setitem ----------------------------------------------------------------------------------

def test_setitem_false_writes_nothing():
    x = t()
    x[False] = torch.ones(5, dtype=torch.float64)    # any value shape: torch returns at once
    assert_close(x, A)
    v = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    w = t(requires_grad=True)
    y = w * 1
    y[False] = v
    (y * 1).sum().backward()
    assert v.grad is None
    assert_close(w.grad, np.ones_like(A))


def test_setitem_advanced_index_needs_the_same_dtype():
    x = t()
    with pytest.raises(RuntimeError, match="dtypes match"):
        x[[0, 1]] = torch.tensor(2.5)                 # float32 into float64 via index_put_
    with pytest.raises(RuntimeError, match="dtypes match"):
        x[0, I([0, 1])] = torch.ones(4)
    with pytest.raises(RuntimeError, match="dtypes match"):
        x[[True, False]] = torch.ones(4)              # a mask, but a 4-element value
    assert_close(x, A)
    assert x._version == 0
    x[0, 1] = torch.ones(4)                           # basic indexing casts (copy_)
    x[True] = torch.zeros(4)                          # so does a bare True
    e = np.zeros_like(A)
    assert_close(x, e)


def test_setitem_lone_mask_with_one_element_value_casts():
    x = t()
    m = x > 20
    # (torch takes this path for a value on the cpu only; on a device it is index_put_)
    x[m] = torch.tensor(-1.0, device="cpu")            # float32 0-d: masked_fill_, casts
    x[0, m[0]] = torch.tensor([-2.0], device="cpu")    # one element, any shape
    e = A.copy()
    e[A > 20] = -1
    e[0][A[0] > 20] = -2
    assert_close(x, e)
    x = t()
    with pytest.raises(RuntimeError, match="boolean masks"):
        x[torch.tensor([1, 0], dtype=torch.uint8)] = 7.5     # masked_fill_ refuses uint8
    x[torch.tensor([1, 0], dtype=torch.uint8)] = torch.full((3, 4), 7.5, dtype=torch.float64)
    e = A.copy()
    e[0] = 7.5
    assert_close(x, e)                                 # (index_put_ takes a uint8 mask)


def test_setitem_value_shape_is_checked_before_the_index_values():
    x = t()
    with pytest.raises(RuntimeError, match="shape mismatch"):
        x[0, I([0, 5])] = torch.ones(3, 1, dtype=torch.float64)
    with pytest.raises(IndexError):
        x[0, I([0, 5])] = torch.ones(4, dtype=torch.float64)
    assert_close(x, A)


# ---- index_select / index_add / index_copy / index_fill / index_reduce --------------------------

X = np.arange(12, dtype=np.float64).reshape(3, 4)


def test_index_family_refuses_negative_indices_like_torch():
    x = t(X)
    s = torch.ones(2, 4, dtype=torch.float64)
    with pytest.raises(IndexError):
        x.index_select(0, I([-1, 0]))
    with pytest.raises(IndexError):
        x.index_select(0, I([3]))
    with pytest.raises(RuntimeError):                  # int64, alpha=1: torch's RuntimeError
        x.index_add_(0, I([-1, 0]), s)
    with pytest.raises(IndexError):                    # int32 or alpha != 1: IndexError
        x.index_add_(0, I([-1, 0], torch.int32), s)
    with pytest.raises(IndexError):
        x.index_add_(0, I([3, 0]), s, alpha=2)
    with pytest.raises(IndexError):
        torch.ones(3, dtype=torch.float64).index_add_(0, I([3]), torch.ones(1, dtype=torch.float64))
    with pytest.raises(IndexError):
        x.index_copy_(0, I([-1, 0]), s)
    with pytest.raises(IndexError):
        x.index_reduce_(0, I([-1, 0]), s, "prod")
    with pytest.raises(IndexError):
        x.index_fill_(0, I([3]), 1.0)
    assert_close(x, X)
    assert x._version == 0
    e = X.copy()
    e[-1] = 5.0
    assert_close(x.index_fill(0, I([-1]), 5.0), e)     # index_fill alone wraps negatives


def test_index_family_dtype_and_dim_checks():
    x = t(X)
    s = torch.ones(2, 4, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="int64"):
        x.index_copy(0, I([0, 1], torch.int32), s)
    e = X.copy()
    e[[0, 1]] += 1
    assert_close(x.index_add(0, I([0, 1], torch.int32), s), e)   # int32 is fine there
    with pytest.raises(IndexError, match="int64"):
        x.index_fill(0, I([0], torch.int32), 1.0)
    with pytest.raises(IndexError, match="int64"):
        x.index_fill(0, torch.tensor([[0.0]]), 1.0)    # dtype before dims for index_fill
    with pytest.raises(RuntimeError, match="vector"):
        x.index_fill(0, I([[0]]), 1.0)
    with pytest.raises(IndexError, match="vector"):
        x.index_select(0, torch.tensor([[0.0]]))       # dims before dtype for the others
    with pytest.raises(IndexError, match="vector"):
        x.index_add(0, torch.tensor([[0.0]]), s)
    with pytest.raises(RuntimeError, match="int32 or int64"):
        x.index_select(0, torch.tensor([0.0]))


# ---- take_along_dim / put_ --------------------------------------------------------------------

def test_take_along_dim_takes_indices_modulo_the_size():
    x = t(X)
    r = torch.take_along_dim(x, I([[5, -1, 100, -5]]), 1)
    assert_close(r, X[:, [1, 3, 0, 3]])
    with pytest.raises(RuntimeError, match="Long"):
        torch.take_along_dim(x, I([[0]], torch.int32), 1)
    with pytest.raises(RuntimeError):                  # without dim: gather's range check
        torch.take_along_dim(x, I([12]))
    w = t(X, requires_grad=True)
    torch.take_along_dim(w, I([[5, -1]]), 1).sum().backward()
    assert_close(w.grad, [[0, 1, 0, 1]] * 3)


def test_put_source_count_mismatch_is_index_error():
    x = t(X)
    with pytest.raises(IndexError, match="same number of elements"):
        x.put_(I([1, 2]), torch.ones(3, dtype=torch.float64))
    assert_close(x, X)


# ---- scatter_reduce gradients (prod / amax / amin) ----------------------------------------------

def _sr_grads(x, idx, s, reduce, include_self, g, dim=1, inplace=False):
    xv = torch.tensor(x, requires_grad=True)
    sv = torch.tensor(s, requires_grad=True)
    if inplace:
        y = xv * 1
        y.scatter_reduce_(dim, I(idx), sv, reduce, include_self=include_self)
    else:
        y = xv.scatter_reduce(dim, I(idx), sv, reduce, include_self=include_self)
    y.backward(torch.tensor(g))
    return to_np(y), to_np(xv.grad), to_np(sv.grad)


def test_scatter_reduce_prod_gradient_with_zeros():
    x = np.array([[2.0, 0.0, 5.0]])
    s = np.array([[3.0, 0.0, 4.0, 0.0]])
    idx = [[0, 0, 1, 1]]
    g = np.array([[1.0, 10.0, 100.0]])
    y, gx, gs = _sr_grads(x, idx, s, "prod", True, g)
    assert_close(y, [[0.0, 0.0, 5.0]])
    # col 0 = 2*3*0: d/dx = 3*0, d/ds0 = 2*0, d/ds1 = 2*3 (the lone zero: product of the others)
    # col 1 = 0*4*0 (two zeros): every gradient is 0; col 2 untouched: 1 (checked with torch)
    assert_close(gx, [[0.0, 0.0, 100.0]])
    assert_close(gs, [[0.0, 6.0, 0.0, 0.0]])
    y, gx, gs = _sr_grads(x, idx, s, "prod", False, g)
    assert_close(y, [[0.0, 0.0, 5.0]])
    assert_close(gx, [[0.0, 0.0, 100.0]])             # scattered-to positions: no self share
    # without self: col 0 = 3*0 (d/ds1 = 3), col 1 = 4*0 (d/ds3 = 4, times 10)
    assert_close(gs, [[0.0, 3.0, 0.0, 40.0]])
    y, gx, gs = _sr_grads(np.array([[2.0, 1.0, 5.0]]), [[0, 0]], np.array([[3.0, 4.0]]),
                          "prod", True, g)
    assert_close(y, [[24.0, 1.0, 5.0]])
    assert_close(gx, [[12.0, 10.0, 100.0]])
    assert_close(gs, [[8.0, 6.0]])


def test_scatter_reduce_amax_amin_gradient_splits_ties():
    x = np.array([[1.0, 0.0, 7.0]])
    s = np.array([[1.0, 0.5, 1.0, 0.0, 3.0]])
    idx = [[0, 0, 0, 1, 1]]
    g = np.array([[6.0, 4.0, 1.0]])
    y, gx, gs = _sr_grads(x, idx, s, "amax", True, g)
    assert_close(y, [[1.0, 3.0, 7.0]])
    assert_close(gx, [[2.0, 0.0, 1.0]])       # col 0: x and s0, s2 tie at 1 -> 6/3 each
    assert_close(gs, [[2.0, 0.0, 2.0, 0.0, 4.0]])
    # amin without self: col 1 = min(0, 3) = 0 = x too; torch counts x in the split (N = 2)
    # but gives x no share
    y, gx, gs = _sr_grads(x, idx, s, "amin", False, g)
    assert_close(y, [[0.5, 0.0, 7.0]])
    assert_close(gx, [[0.0, 0.0, 1.0]])
    assert_close(gs, [[0.0, 6.0, 0.0, 2.0, 0.0]])
    y2, gx2, gs2 = _sr_grads(x, idx, s, "amin", False, g, inplace=True)   # in place too
    assert_close(y2, y)
    assert_close(gx2, gx)
    assert_close(gs2, gs)


def test_scatter_reduce_grads_match_finite_differences():
    rng = np.random.RandomState(0)
    x = rng.randn(3, 4)
    s = rng.randn(3, 4)
    idx = [[0, 1, 0, 3], [2, 2, 2, 0], [1, 1, 3, 3]]
    g = rng.randn(3, 4)
    for red in ("prod", "amax", "amin"):
        for inc in (True, False):
            _, gx, gs = _sr_grads(x, idx, s, red, inc, g)

            def f(xa, sa):
                with torch.no_grad():
                    return float((to_np(torch.tensor(xa).scatter_reduce(
                        1, I(idx), torch.tensor(sa), red, include_self=inc)) * g).sum())
            eps = 1e-6
            for a, gr, which in ((x, gx, 0), (s, gs, 1)):
                num = np.zeros_like(a)
                for k in np.ndindex(*a.shape):
                    d = np.zeros_like(a)
                    d[k] = eps
                    args_p = (x + d, s) if which == 0 else (x, s + d)
                    args_m = (x - d, s) if which == 0 else (x, s - d)
                    num[k] = (f(*args_p) - f(*args_m)) / (2 * eps)
                np.testing.assert_allclose(gr, num, rtol=1e-5, atol=1e-6, err_msg=f"{red} {inc}")


# ---- optional cross-check against PyTorch -------------------------------------------------------

def test_getitem_setitem_cross_check_with_torch():
    T = pytest.importorskip("torch", reason="optional cross-check against PyTorch")
    if T is torch:
        pytest.skip("the reference torch is not installed")
    keys = [(2, 1), (Ellipsis, Ellipsis), (slice(2, 1), [0, 5]), ([0, 1], [0, 1, 2]),
            (False, [0, 1]), ([2], []), (0, [True, False, True, False])]
    for k in keys:
        r = []
        for lib in (T, torch):
            x = lib.tensor(A)
            kk = tuple(lib.tensor(c) if isinstance(c, list) else c for c in k)
            try:
                r.append(tuple(x[kk].shape))
            except Exception as e:
                r.append(type(e).__name__)
        assert r[0] == r[1], (k, r)
