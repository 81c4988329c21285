"""Indices among equal values, as PyTorch's cpu kernels return them: sort(stable=False) is
libstdc++'s std::sort (introsort, then insertion sort), topk its nth_element / partial_sort,
kthvalue ATen's quick_select, mode the end of a std::sort run. The expected indices below
are traced by hand through those algorithms (comments give the steps)."""
import numpy as np
import pytest

import framework as torch


def test_sort_ties_up_to_16_are_stable():
    # 16 or fewer elements: std::sort is one insertion sort, which never passes an equal key
    x = torch.tensor([2., 1., 2., 1., 0., 2., 1., 0., 0., 2., 1., 2., 0., 1., 2., 0.])
    np.testing.assert_array_equal(x.sort().indices.numpy(),
                                  np.argsort(x.numpy(), kind="stable"))


@pytest.mark.parametrize("descending", [False, True])
def test_sort_17_equal_keys_follow_introsort(descending):
    # n = 17 > 16: median of (1, 8, 16) is swapped to the front (8 <-> 0), the unguarded
    # partition then swaps (1,16), (2,15), ..., (8,9) and cuts at 9; insertion sort moves nothing
    r = torch.zeros(17).sort(descending=descending)
    np.testing.assert_array_equal(r.indices.numpy(),
                                  [8, 16, 15, 14, 13, 12, 11, 10, 9, 0, 7, 6, 5, 4, 3, 2, 1])
    np.testing.assert_array_equal(torch.zeros(17).argsort().numpy(), r.indices.numpy())
    # stable=True keeps the input order
    np.testing.assert_array_equal(torch.zeros(17).sort(stable=True).indices.numpy(),
                                  np.arange(17))


def test_sort_ties_random_rows_are_valid_orders():
    rs = np.random.RandomState(0)
    a = rs.randint(0, 4, (6, 40)).astype(np.float32)
    a[rs.rand(6, 40) < .1] = np.nan
    for dim, desc in ((1, False), (1, True), (0, False)):
        i = torch.from_numpy(a).sort(dim, descending=desc).indices.numpy()
        assert (np.sort(i, axis=dim) == np.expand_dims(np.arange(a.shape[dim]), 1 - dim)).all()
        v = np.take_along_axis(a, i, axis=dim)
        key = np.where(np.isnan(v), 10., v)              # NaN sorts as the largest
        d = np.diff(key, axis=dim)
        assert (d <= 0).all() if desc else (d >= 0).all()
        si = torch.from_numpy(a).sort(dim, descending=desc, stable=True).indices.numpy()
        ka = np.where(np.isnan(a), 10., a)
        ref = np.argsort(-ka if desc else ka, axis=dim, kind="stable")
        np.testing.assert_array_equal(si, ref)


def test_sort_long_1d_integers_take_the_stable_radix_sort():
    # 32768 or more integers, 1-d, ascending: fbgemm's radix sort (stable)
    a = np.random.RandomState(1).randint(0, 3, 40000)
    np.testing.assert_array_equal(torch.from_numpy(a).sort().indices.numpy(),
                                  np.argsort(a, kind="stable"))


@pytest.mark.parametrize("sorted_", [True, False])
def test_topk_ties_follow_nth_element(sorted_):
    # k * 64 > n: nth_element(k - 1): median of (1, 2, 4) -> front (2 <-> 0), partition swaps
    # (1,4), (2,3) and cuts at 3 > 2; insertion sort of [0, 3) and the sort of the first k - 1
    # move nothing
    r = torch.zeros(5).topk(3, sorted=sorted_)
    np.testing.assert_array_equal(r.indices.numpy(), [2, 4, 3])
    np.testing.assert_array_equal(r.values.numpy(), np.zeros(3))


def test_topk_nan_is_largest_and_values_match():
    x = torch.tensor([1., float("nan"), 3., 3., -1., float("nan"), 0.])
    r = x.topk(3)
    assert np.isnan(r.values.numpy()[:2]).all() and r.values.numpy()[2] == 3.
    assert sorted(r.indices.numpy()[:2].tolist()) == [1, 5] and r.indices.numpy()[2] in (2, 3)
    r = x.topk(2, largest=False)
    np.testing.assert_array_equal(r.indices.numpy(), [4, 6])


def test_kthvalue_ties_follow_quick_select():
    # quick_select(k - 1 = 0) on 5 equal keys: swap(2, 1), partition swaps (2, 3) and stops
    # at j = 2, swap(0, 2): order [3, 2, 0, 1, 4]; R = 1 leaves two keys, not swapped
    r = torch.zeros(5).kthvalue(1)
    assert r.indices.item() == 3 and r.values.item() == 0.


def test_mode_ties_follow_std_sort():
    # 17 equal values: the std::sort order ends with index 1 (see the sort test above)
    assert torch.zeros(17).mode().indices.item() == 1
    # 16 values: insertion sort keeps the input order, the run of 0 ends at its last index;
    # 0 and 1 both appear 8 times: the smaller value wins
    x = torch.tensor([1., 0.] * 8)
    assert x.mode().values.item() == 0. and x.mode().indices.item() == 15


@pytest.mark.parametrize("n, idx", [(2, 0), (5, 2), (17, 10)])
def test_nanmedian_all_nan_index(n, idx):
    # nth_element(first) over n equivalent keys: insertion sort for n <= 3; for 5 the first
    # partition cuts at 3 (order [2, 4, 3, 0, 1]); for 17 cuts at 9, 5 and 3 leave index 10 first
    r = torch.full((1, n), float("nan")).nanmedian(1)
    assert np.isnan(r.values.item()) and r.indices.item() == idx
