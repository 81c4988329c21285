"""Ordering ops against NumPy / hand-derived values: sort, argsort, topk, kthvalue, median,
mode, unique, bincount, count_nonzero. Seeds: catalog-000 T8 (argmax, argsort, var, numel)."""
import numpy as np
import pytest

import framework as torch
from conftest import assert_close, to_np

NAN = float("nan")
F = np.array([[1, 4, 1, 0, 2, 4], [3, 3, 0, 1, 1, 2], [0, 0, 0, 4, 4, 1], [2, 1, 3, 2, 2, 0]],
             np.float32)


def test_seed_t8_argmax_argsort_var_numel():
    a1 = torch.tensor([[1.3398, 0.2663, -0.2686, 0.2450], [-0.7401, -0.8805, -0.3402, -1.1936],
                       [0.4907, -1.3948, -1.0691, -0.3132], [-1.6092, 0.5419, -0.2993, 0.3195]])
    assert repr(torch.argmax(a1)) == "tensor(0)"
    assert repr(torch.argmax(a1, dim=1)) == "tensor([0, 2, 0, 1])"
    a2 = torch.tensor([[0.0785, 1.5267, -0.8521, 0.4065], [0.1598, 0.0788, -0.0745, -1.2700],
                       [1.2208, 1.0722, -0.7064, 1.2564], [0.0669, -0.2318, -0.8229, -0.9280]])
    r = torch.argsort(a2, dim=1)
    assert r.dtype == torch.int64
    assert to_np(r).tolist() == [[2, 0, 3, 1], [3, 2, 1, 0], [2, 1, 0, 3], [3, 2, 1, 0]]
    a3 = torch.tensor([[-0.3567, 1.7385, -1.3042, 0.7423], [1.3436, -0.1015, -0.9834, -0.8438],
                       [0.6056, 0.1089, -0.3112, -1.4085], [-0.7700, 0.6074, -0.1469, 0.7777]])
    assert_close(torch.var(a3, 1), [1.7444, 1.1363, 0.7356, 0.5112], atol=2e-4)
    assert_close(torch.var(a3, 1, unbiased=False), np.array([1.7444, 1.1363, 0.7356, 0.5112]) * 0.75,
                 atol=2e-4)
    assert torch.numel(torch.randn(1, 2, 3, 4, 5)) == 120
    assert torch.numel(torch.zeros(4, 4)) == 16


def test_sort_stable_and_descending():
    x = torch.tensor(F)
    v, i = torch.sort(x, stable=True)
    assert_close(v, np.sort(F, 1))
    assert_close(i, np.argsort(F, 1, kind="stable"))
    v, i = torch.sort(x, descending=True, stable=True)
    # stable descending: equal keys keep their original order
    exp_i = np.array([sorted(range(6), key=lambda k: (-row[k], k)) for row in F])
    assert_close(i, exp_i)
    assert_close(v, np.take_along_axis(F, exp_i, 1))
    v, i = x.sort(dim=0, descending=True, stable=True)
    exp_i = np.array([sorted(range(4), key=lambda k: (-F[k, c], k)) for c in range(6)]).T
    assert_close(i, exp_i)
    r = x.sort(0)
    assert r.values.shape == (4, 6) and r[0] is r.values and r[1] is r.indices


def test_sort_nan_int_bool_edge():
    v, i = torch.sort(torch.tensor([3., NAN, 1., NAN, 2.]))
    assert to_np(v)[:3].tolist() == [1, 2, 3] and np.isnan(to_np(v)[3:]).all()   # NaN is largest
    assert to_np(i).tolist() == [2, 4, 0, 1, 3]
    v, i = torch.sort(torch.tensor([3., NAN, 1., NAN, 3.]), descending=True, stable=True)
    assert np.isnan(to_np(v)[:2]).all() and to_np(i).tolist() == [1, 3, 0, 4, 2]
    v, i = torch.tensor([3, 1, 2]).sort()
    assert v.dtype == torch.int64 and to_np(v).tolist() == [1, 2, 3] and to_np(i).tolist() == [1, 2, 0]
    v, _ = torch.tensor([True, False, True]).sort()
    assert to_np(v).tolist() == [False, True, True]
    v, i = torch.tensor(3.).sort()
    assert v.item() == 3 and i.item() == 0
    assert torch.zeros(0).sort().values.shape == (0,)
    with pytest.raises(IndexError):
        torch.argsort(torch.ones(3, 5), dim=2)


def test_argsort_msort():
    x = torch.tensor(F)
    assert_close(torch.argsort(x, stable=True), np.argsort(F, 1, kind="stable"))
    assert_close(torch.argsort(x, dim=0, stable=True), np.argsort(F, 0, kind="stable"))
    assert to_np(torch.argsort(torch.tensor([2, 1, 2, 1]), stable=True)).tolist() == [1, 3, 0, 2]
    assert_close(torch.msort(x), np.sort(F, 0))


def test_topk():
    g = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    x = torch.tensor(g)
    v, i = torch.topk(x, 2)
    assert_close(v, -np.sort(-g, 1)[:, :2])
    assert_close(i, np.argsort(-g, 1)[:, :2])
    v, i = torch.topk(x, 2, largest=False)
    assert_close(v, np.sort(g, 1)[:, :2])
    v, i = x.topk(3, 0)
    assert_close(v, -np.sort(-g, 0)[:3])
    assert_close(torch.gather(x, 0, i), to_np(v))
    v, i = torch.topk(torch.tensor([1., 3., 3., 2., 3.]), 3)
    assert to_np(v).tolist() == [3, 3, 3] and sorted(to_np(i).tolist()) == [1, 2, 4]
    v, _ = torch.topk(torch.tensor([1., NAN, 3., 2.]), 2)
    assert np.isnan(to_np(v)[0]) and to_np(v)[1] == 3
    assert torch.topk(x, 0).values.shape == (3, 0)
    assert torch.topk(torch.tensor([1, 5, 3, 5]), 2).values.dtype == torch.int64
    with pytest.raises(RuntimeError):
        torch.topk(x, 6)


def test_kthvalue():
    g = np.random.default_rng(1).standard_normal((3, 5))
    x = torch.tensor(g)
    v, i = torch.kthvalue(x, 2)
    assert_close(v, np.sort(g, 1)[:, 1])
    assert_close(i, np.argsort(g, 1)[:, 1])
    v, i = torch.kthvalue(x, 1, 0, True)
    assert v.shape == (1, 5) and i.shape == (1, 5)
    assert_close(v, g.min(0, keepdims=True))
    assert torch.kthvalue(torch.tensor([2., 1., 2., 1.]), 3).values.item() == 2
    with pytest.raises(RuntimeError):
        torch.kthvalue(x, 6)
    with pytest.raises(RuntimeError):
        torch.kthvalue(x, 0)


def test_median_lower_like_torch():
    x = torch.tensor(F)
    assert torch.median(x).item() == np.sort(F.ravel())[(F.size - 1) // 2]
    assert torch.median(torch.tensor([1., 4., 2., 3.])).item() == 2.0    # lower median, not 2.5
    assert torch.median(torch.tensor([5, 1, 3, 2])).item() == 2
    g = np.random.default_rng(2).standard_normal((3, 5))
    v, i = torch.median(torch.tensor(g), 1)
    assert_close(v, np.median(g, 1))            # odd length: the true median
    assert_close(i, np.argsort(g, 1)[:, 2])
    v, i = torch.median(torch.tensor(F), 1)      # even length 6: the 3rd smallest
    assert_close(v, np.sort(F, 1)[:, 2])
    assert_close(np.take_along_axis(F, to_np(i)[:, None], 1)[:, 0], np.sort(F, 1)[:, 2])
    v, i = torch.median(torch.tensor(g), 0, keepdim=True)
    assert v.shape == (1, 5) and i.shape == (1, 5)
    assert torch.median(torch.tensor(2.)).item() == 2
    assert np.isnan(torch.median(torch.zeros(0)).item())


def test_median_nan_rules():
    assert np.isnan(torch.median(torch.tensor([1., NAN, 3.])).item())
    v, i = torch.median(torch.tensor([[1., NAN, 3.], [1., 2., 3.]]), 1)
    assert np.isnan(to_np(v)[0]) and to_np(v)[1] == 2
    assert to_np(i).tolist() == [1, 1]                       # the NaN's own index
    assert torch.nanmedian(torch.tensor([1., NAN, 3., 4.])).item() == 3.0
    v, i = torch.nanmedian(torch.tensor([[1., NAN, 3., 4.], [2., 1., NAN, 5.]]), 1)
    assert to_np(v).tolist() == [3.0, 2.0] and to_np(i).tolist() == [2, 0]
    assert np.isnan(torch.nanmedian(torch.tensor([NAN, NAN])).item())


def test_mode():
    v, i = torch.mode(torch.tensor([1, 2, 2, 3, 3]))
    assert v.item() == 2                      # ties: the smallest most-frequent value
    assert i.item() == 2
    v, i = torch.mode(torch.tensor(F))
    exp = []
    for row in F:
        vals, cnt = np.unique(row, return_counts=True)
        exp.append(vals[np.argmax(cnt)])
    assert_close(v, exp)
    assert_close(np.take_along_axis(F, to_np(i)[:, None], 1)[:, 0], exp)
    v, i = torch.mode(torch.tensor([[2., 1., 2.], [1., 1., 3.]]), 1, keepdim=True)
    assert v.shape == (2, 1) and to_np(v).ravel().tolist() == [2, 1]


def test_unique():
    x = torch.tensor([3, 1, 2, 3, 1])
    assert to_np(torch.unique(x)).tolist() == [1, 2, 3]
    u, inv = torch.unique(torch.tensor([[3, 1], [2, 3]]), return_inverse=True)
    assert to_np(u).tolist() == [1, 2, 3] and to_np(inv).tolist() == [[2, 0], [1, 2]]
    u, c = torch.unique(x, return_counts=True)
    assert to_np(c).tolist() == [2, 1, 2]
    u, inv, c = x.unique(return_inverse=True, return_counts=True)
    assert to_np(inv).tolist() == [2, 0, 1, 2, 0] and to_np(c).tolist() == [2, 1, 2]
    assert_close(u[inv], to_np(x))
    u, inv, c = torch.unique(torch.tensor([[1, 2], [0, 1], [1, 2]]), dim=0, return_inverse=True,
                             return_counts=True)
    assert to_np(u).tolist() == [[0, 1], [1, 2]] and to_np(inv).tolist() == [1, 0, 1]
    assert to_np(c).tolist() == [1, 2]
    assert torch.tensor([3., 1., 3.]).unique().dtype == torch.float32
    u, c = torch.unique(torch.tensor([], dtype=torch.int64), return_counts=True)
    assert u.shape == (0,) and c.shape == (0,)
    u, inv, c = torch.unique_consecutive(torch.tensor([1, 1, 2, 2, 3, 1, 1, 2]),
                                         return_inverse=True, return_counts=True)
    assert to_np(u).tolist() == [1, 2, 3, 1, 2]
    assert to_np(inv).tolist() == [0, 0, 1, 1, 2, 3, 3, 4] and to_np(c).tolist() == [2, 2, 1, 2, 1]


def test_bincount():
    x = torch.tensor([0, 1, 1, 3])
    r = torch.bincount(x)
    assert r.dtype == torch.int64 and to_np(r).tolist() == [1, 2, 0, 1]
    assert to_np(torch.bincount(x, minlength=6)).tolist() == [1, 2, 0, 1, 0, 0]
    w = torch.bincount(x, weights=torch.tensor([0.5, 1., 1., 2.]))
    assert w.dtype == torch.float32 and to_np(w).tolist() == [0.5, 2.0, 0.0, 2.0]
    assert torch.bincount(x, weights=torch.tensor([1, 2, 3, 4])).dtype == torch.float64
    assert torch.bincount(x, weights=torch.tensor([1., 2, 3, 4], dtype=torch.float16)).dtype == \
        torch.float64
    assert torch.bincount(torch.tensor([], dtype=torch.int64)).shape == (0,)
    assert x.bincount().shape == (4,)
    with pytest.raises(RuntimeError):
        torch.bincount(torch.tensor([0, -1]))
    with pytest.raises(NotImplementedError):
        torch.bincount(torch.tensor([0., 1.]))
    with pytest.raises(RuntimeError):
        torch.bincount(torch.tensor([[0, 1]]))
    with pytest.raises(RuntimeError):
        torch.bincount(x, weights=torch.tensor([1., 2.]))
    with pytest.raises(RuntimeError):
        torch.bincount(x, minlength=-1)


def test_count_nonzero():
    x = torch.tensor(F)
    assert torch.count_nonzero(x).item() == np.count_nonzero(F)
    assert_close(torch.count_nonzero(x, 0), np.count_nonzero(F, 0))
    assert_close(x.count_nonzero(dim=1), np.count_nonzero(F, 1))
    assert torch.count_nonzero(x, (0, 1)).item() == np.count_nonzero(F)
    assert torch.count_nonzero(x).dtype == torch.int64
    assert_close(torch.count_nonzero(torch.tensor([[0, 1], [2, 0]]), -1), [1, 1])


def test_sort_gradient_flows_through_gather():
    w = torch.tensor([3., 1., 2.], requires_grad=True)
    v, i = torch.sort(w)
    (v * torch.tensor([1., 10., 100.])).sum().backward()
    assert to_np(w.grad).tolist() == [100., 1., 10.]


@pytest.mark.parametrize("fn", [
    lambda m, x: m.sort(x, dim=0, stable=True), lambda m, x: m.sort(x, descending=True, stable=True),
    lambda m, x: m.argsort(x, dim=1, stable=True), lambda m, x: m.median(x, 1),
    lambda m, x: m.median(x), lambda m, x: m.mode(x, 0), lambda m, x: m.unique(x, return_counts=True),
    lambda m, x: m.count_nonzero(x, 1), lambda m, x: m.kthvalue(x, 4, 1).values,
    lambda m, x: m.topk(x, 3, 0).values,
])
def test_matches_torch(fn):
    real = pytest.importorskip("torch")
    ours, ref = fn(torch, torch.tensor(F)), fn(real, real.tensor(F))
    ours = ours if isinstance(ours, tuple) else (ours,)
    ref = ref if isinstance(ref, tuple) else (ref,)
    for o, r in zip(ours, ref):
        assert tuple(o.shape) == tuple(r.shape) and str(o.dtype) == str(r.dtype)
        np.testing.assert_array_equal(to_np(o), r.numpy())
