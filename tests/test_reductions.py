"""Reductions and scans against float64 NumPy references, the seed oracles (T6, T8), named
(values, indices) results and the errors PyTorch raises."""
import math

import numpy as np
import pytest

import framework as torch
from conftest import assert_close, to_np

DIMS = [None, 0, 1, -1, (0, 2), (0, 1, 2)]


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_mean_prod_amax_amin_against_numpy(rng, dim, keepdim):
    x = rng.standard_normal((2, 3, 4))
    t = torch.tensor(x, dtype=torch.float64)
    ax = dim if dim is None or isinstance(dim, int) else tuple(dim)
    for f, ref in ((torch.sum, np.sum), (torch.mean, np.mean), (torch.amax, np.max),
                   (torch.amin, np.min)):
        r = f(t, dim, keepdim=keepdim) if dim is not None else (
            f(t) if not keepdim else None)
        if r is None:
            continue
        assert_close(r, ref(x, axis=ax, keepdims=keepdim if dim is not None else False),
                     rtol=1e-12, atol=1e-12)
    if dim is None or isinstance(dim, int):
        r = torch.prod(t, dim, keepdim) if dim is not None else torch.prod(t)
        assert_close(r, np.prod(x, axis=ax, keepdims=keepdim and dim is not None), rtol=1e-12)


def test_reduction_dtypes():
    i = torch.tensor([[1, 2], [3, 4]], dtype=torch.int32)
    assert torch.sum(i).dtype == torch.int64 and torch.sum(i).item() == 10
    assert torch.prod(i).dtype == torch.int64 and torch.prod(i).item() == 24
    assert torch.sum(torch.tensor([True, True, False])).item() == 2
    assert torch.sum(i, 1, dtype=torch.float64).dtype == torch.float64
    assert torch.mean(i, dtype=torch.float64).item() == 2.5
    assert torch.amax(i).dtype == torch.int32
    assert torch.cumsum(i, 0).dtype == torch.int64
    h = torch.full((4096,), 0.1, dtype=torch.float16)
    assert torch.sum(h).dtype == torch.float16
    assert abs(torch.sum(h).item() - 409.6) < 0.5      # accumulated in float32, not float16


def test_max_min_with_dim_return_named_values_indices():
    a = torch.tensor([[1., 5., 5.], [7., 0., -1.]])
    r = torch.max(a, 1)
    assert type(r).__name__ == "max"
    assert r.values.tolist() == [5., 7.] and r.indices.tolist() == [1, 0]   # first of ties
    v, i = a.max(dim=1, keepdim=True)
    assert v.shape == (2, 1) and i.tolist() == [[1], [0]] and i.dtype == torch.int64
    r = torch.min(a, dim=0)
    assert r.values.tolist() == [1., 0., -1.] and r.indices.tolist() == [0, 1, 1]
    assert repr(torch.max(torch.tensor([1, 3, 2]), 0)) == (
        "torch.return_types.max(\nvalues=tensor(3),\nindices=tensor(1))")
    assert torch.max(a).item() == 7. and torch.min(a).item() == -1.
    b = torch.tensor([True, False])
    assert torch.max(b, 0).values.item() is True and torch.max(b, 0).indices.item() == 0


def test_nan_propagates_through_max_and_argmax():
    x = torch.tensor([1., math.nan, 3.])
    assert math.isnan(torch.max(x).item()) and math.isnan(torch.amax(x).item())
    assert torch.argmax(x).item() == 1 and torch.argmin(x).item() == 1
    assert torch.max(x, 0).indices.item() == 1


def test_argmax_argmin_seed_T8():
    a1 = torch.tensor([[1.3398, 0.2663, -0.2686, 0.2450], [-0.7401, -0.8805, -0.3402, -1.1936],
                       [0.4907, -1.3948, -1.0691, -0.3132], [-1.6092, 0.5419, -0.2993, 0.3195]])
    assert str(torch.argmax(a1)) == "tensor(0)"
    assert str(torch.argmax(a1, dim=1)) == "tensor([0, 2, 0, 1])"
    assert torch.argmin(a1, dim=1).tolist() == [2, 3, 1, 0]
    assert torch.argmax(a1, dim=1, keepdim=True).shape == (4, 1)
    assert torch.argmax(torch.tensor([2, 7, 7])).item() == 1


def test_var_std_seed_T8_and_corrections(rng):
    a3 = torch.tensor([[-0.3567, 1.7385, -1.3042, 0.7423], [1.3436, -0.1015, -0.9834, -0.8438],
                       [0.6056, 0.1089, -0.3112, -1.4085], [-0.7700, 0.6074, -0.1469, 0.7777]])
    assert_close(torch.var(a3, 1), [1.7444, 1.1363, 0.7356, 0.5112], atol=2e-4)
    assert_close(torch.var(a3, 1, unbiased=False), np.array([1.7444, 1.1363, 0.7356, 0.5112]) * 3 / 4,
                 atol=2e-4)
    x = rng.standard_normal((3, 5))
    t = torch.tensor(x, dtype=torch.float64)
    for c in (0, 1, 2):
        assert_close(torch.var(t, 1, correction=c), np.var(x, 1, ddof=c), rtol=1e-12)
        assert_close(torch.std(t, (0, 1), correction=c), np.std(x, ddof=c), rtol=1e-12)
    assert_close(torch.std(t), np.std(x, ddof=1), rtol=1e-12)
    assert_close(torch.var(t, 0, keepdim=True), np.var(x, 0, ddof=1, keepdims=True), rtol=1e-12)
    assert math.isnan(torch.var(torch.tensor([1.0])).item())          # n - 1 == 0
    v, m = torch.var_mean(t, 1)
    assert_close(v, np.var(x, 1, ddof=1), rtol=1e-12)
    assert_close(m, np.mean(x, 1), rtol=1e-12)
    with pytest.raises(RuntimeError):
        torch.var(torch.tensor([1, 2, 3]))


def test_norm_seed_T6():
    a = torch.arange(9, dtype=torch.float) - 4
    b = a.reshape(3, 3)
    c = torch.tensor([[1, 2, 3], [-1, 1, 4]], dtype=torch.float)
    assert str(a) == "tensor([-4., -3., -2., -1.,  0.,  1.,  2.,  3.,  4.])"
    assert str(b) == "tensor([[-4., -3., -2.],\n        [-1.,  0.,  1.],\n        [ 2.,  3.,  4.]])"
    assert str(torch.norm(a)) == "tensor(7.7460)"
    assert str(torch.norm(b)) == "tensor(7.7460)"
    assert str(torch.norm(a, float("inf"))) == "tensor(4.)"
    assert str(torch.norm(b, float("inf"))) == "tensor(4.)"
    assert str(torch.norm(c, dim=0)) == "tensor([1.4142, 2.2361, 5.0000])"
    assert torch.norm(c, dim=0).size() == torch.Size([3])
    assert str(torch.norm(c, dim=1)) == "tensor([3.7417, 4.2426])"
    assert str(torch.norm(c, p=1, dim=1)) == "tensor([6., 6.])"


@pytest.mark.parametrize("p", [1, 2, 3, 0.5, 0, math.inf, -math.inf, -1])
def test_norm_p_against_numpy(rng, p):
    x = rng.standard_normal((3, 4))
    x[0, 0] = 0.0
    t = torch.tensor(x, dtype=torch.float64)
    ax = np.abs(x)
    if p == 0:
        ref = np.count_nonzero(x, axis=1).astype(float)
    elif p == math.inf:
        ref = ax.max(1)
    elif p == -math.inf:
        ref = ax.min(1)
    else:
        ref = (ax ** p).sum(1) ** (1 / p)
    assert_close(torch.norm(t, p=p, dim=1), ref, rtol=1e-10)
    assert_close(torch.norm(t, p=p, dim=1, keepdim=True), ref[:, None], rtol=1e-10)


def test_norm_fro_and_nuc():
    x = torch.tensor([[3., 0.], [0., 4.]], dtype=torch.float64)
    assert torch.norm(x, "fro").item() == pytest.approx(5.0)
    assert torch.norm(x, "nuc").item() == pytest.approx(7.0)
    with pytest.raises(RuntimeError):
        torch.norm(torch.tensor([1, 2]))                  # integer input


def test_logsumexp_against_numpy(rng):
    x = rng.standard_normal((3, 4)) * 50
    t = torch.tensor(x, dtype=torch.float64)
    m = x.max(1, keepdims=True)
    ref = (np.log(np.exp(x - m).sum(1, keepdims=True)) + m)
    assert_close(torch.logsumexp(t, 1), ref[:, 0], rtol=1e-12)
    assert_close(torch.logsumexp(t, 1, keepdim=True), ref, rtol=1e-12)
    assert torch.logsumexp(torch.tensor([-math.inf, -math.inf]), 0).item() == -math.inf
    r = torch.logsumexp(torch.tensor([1, 2]), 0)
    assert r.dtype == torch.float32 and r.item() == pytest.approx(math.log(math.e + math.e ** 2))
    assert torch.logsumexp(torch.zeros(0), 0).item() == -math.inf


def test_all_any_count_nonzero():
    x = torch.tensor([[1, 0, 2], [3, 4, 5]])
    assert torch.all(x).item() is False and torch.any(x).item() is True
    assert torch.all(x, 1).tolist() == [False, True]
    assert torch.any(x == 0, dim=0, keepdim=True).tolist() == [[False, True, False]]
    assert torch.all(torch.tensor([], dtype=torch.bool)).item() is True
    assert torch.count_nonzero(x).item() == 5
    assert torch.count_nonzero(x, 0).tolist() == [2, 1, 2]
    u = torch.tensor([2, 0], dtype=torch.uint8)
    assert torch.all(u).dtype == torch.uint8


def test_cumsum_cumprod(rng):
    x = rng.standard_normal((3, 4))
    t = torch.tensor(x, dtype=torch.float64)
    for d in (0, 1, -1):
        assert_close(torch.cumsum(t, d), np.cumsum(x, d), rtol=1e-12)
        assert_close(torch.cumprod(t, dim=d), np.cumprod(x, d), rtol=1e-12)
    assert torch.cumsum(torch.tensor([1, 2, 3], dtype=torch.int8), 0).dtype == torch.int64
    assert torch.cumsum(torch.tensor([1, 2]), 0, dtype=torch.float32).dtype == torch.float32
    y = torch.tensor([1., 2., 3.])
    assert y.cumsum_(0) is y and y.tolist() == [1., 3., 6.]


def test_seed_method_forms():
    a = torch.tensor([[1., 2., 3.], [4., 5., 6.]])
    assert a.mean().item() == 3.5
    assert a.mean(dim=1, keepdim=True).tolist() == [[2.], [5.]]
    assert a.sum().item() == 21. and a.sum(dim=1).tolist() == [6., 15.]
    values, indices = a.max(dim=1, keepdim=True)
    assert values.tolist() == [[3.], [6.]] and indices.tolist() == [[2], [2]]
    assert a.argmin().item() == 0 and a.argmax(dim=1, keepdim=True).tolist() == [[2], [2]]
    assert a.std().item() == pytest.approx(np.std([1, 2, 3, 4, 5, 6], ddof=1))
    assert ((torch.tensor([1, 2, 3]) == torch.tensor([1, 0, 3])).sum()).item() == 2


def test_reduction_errors():
    x = torch.ones(2, 3)
    with pytest.raises(IndexError, match="Dimension out of range"):
        torch.sum(x, 2)
    with pytest.raises(RuntimeError, match="multiple times"):
        torch.sum(x, (1, 1))
    with pytest.raises(RuntimeError, match="mean"):
        torch.mean(torch.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="numel\\(\\) == 0"):
        torch.max(torch.zeros(0))
    with pytest.raises(IndexError, match="non-zero size"):
        torch.amax(torch.zeros(2, 0), 1)
    assert torch.amax(torch.zeros(2, 0), 0).shape == (0,)
    with pytest.raises(RuntimeError, match="bool"):
        torch.argmax(torch.tensor([True, False]))
    with pytest.raises(RuntimeError, match="nanmean"):
        torch.nanmean(torch.tensor([1, 2]))


def test_nan_reductions():
    x = torch.tensor([1., math.nan, 3.])
    assert torch.nansum(x).item() == 4.0
    assert torch.nanmean(x).item() == 2.0
    assert math.isnan(torch.sum(x).item())


def test_torch_cross_check_of_reductions(rng):
    T = pytest.importorskip("torch")
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    k, t = torch.tensor(x), T.tensor(x)
    for name, args in (("sum", (1,)), ("mean", ((0, 2),)), ("var", (2,)), ("std", (0,)),
                       ("amax", (1,)), ("logsumexp", (2,)), ("norm", ()), ("prod", (1,)),
                       ("cumsum", (2,)), ("argmax", (1,)), ("count_nonzero", (0,))):
        rk, rt = getattr(torch, name)(k, *args), getattr(T, name)(t, *args)
        assert str(rk.dtype) == str(rt.dtype) and tuple(rk.shape) == tuple(rt.shape), name
        np.testing.assert_allclose(to_np(rk).astype(np.float64), rt.double().numpy(), rtol=1e-5,
                                   atol=1e-5)


# ---- parity fixes: dtype refusals, 0-d dims, out=, non-int dims ------------------------------

def test_argmax_argmin_refuse_bool():
    # torch has no bool argmax/argmin kernel (max/min over bools do work)
    b = torch.tensor([True, False, True])
    for f in (torch.argmax, torch.argmin):
        with pytest.raises(RuntimeError, match="bool"):
            f(b)
        with pytest.raises(RuntimeError, match="bool"):
            f(b, 0)
    assert torch.max(b, 0).values.item() is True


@pytest.mark.parametrize("op", ["max", "min", "median", "nanmedian"])
def test_dim_reductions_of_0d_check_dim(op):
    x = torch.tensor(2.5)
    r = getattr(torch, op)(x, -1)
    assert r.values.item() == 2.5 and r.indices.item() == 0
    with pytest.raises(IndexError):
        getattr(torch, op)(x, 5)
    with pytest.raises(IndexError):
        getattr(torch, op)(x, 1)


def test_nanmean_refuses_integer_input_even_with_float_dtype():
    with pytest.raises(RuntimeError, match="nanmean"):
        torch.nanmean(torch.tensor([1, 2]), dtype=torch.float32)
    r = torch.nanmean(torch.tensor([1.0, float("nan"), 2.0]), dtype=torch.float64)
    assert r.dtype == torch.float64 and r.item() == 1.5


def test_float_dim_refused_after_int_dim_was_used():
    # the dims memo must not answer 1.0 (which hashes like 1) with the entry for 1
    x = torch.tensor([[1.0, 5.0, 2.0], [4.0, 0.0, 7.0]])
    assert to_np(torch.sum(x, 1)).tolist() == [8.0, 11.0]
    for bad in (1.0, (1.0,)):
        with pytest.raises(TypeError):
            torch.sum(x, bad)
        with pytest.raises(TypeError):
            torch.mean(x, bad)


def test_prod_logsumexp_argmax_out():
    a = np.array([[1.0, 5.0, 2.0], [4.0, 0.5, 7.0]], np.float32)
    x = torch.tensor(a)
    o = torch.empty(2)
    assert torch.prod(x, 1, out=o) is o
    np.testing.assert_allclose(to_np(o), a.prod(1), rtol=1e-6)
    o = torch.empty(2)
    assert torch.logsumexp(x, 1, out=o) is o
    ref = np.log(np.exp(a.astype(np.float64)).sum(1))
    np.testing.assert_allclose(to_np(o), ref, rtol=1e-6)
    oi = torch.empty(3, dtype=torch.int64)
    assert torch.argmax(x, 0, out=oi) is oi and to_np(oi).tolist() == [1, 0, 1]
    assert torch.argmin(x, 0, out=oi) is oi and to_np(oi).tolist() == [0, 1, 0]


def test_trace_refuses_bool():
    with pytest.raises(NotImplementedError):
        torch.trace(torch.tensor([[True, False], [False, True]]))
    assert torch.trace(torch.tensor([[1, 2], [3, 4]], dtype=torch.int32)).dtype == torch.int64
