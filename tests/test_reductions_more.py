"""Scans and statistics added for PyTorch parity: cummax/cummin, logcumsumexp, quantile and
nanquantile, cov/corrcoef, histogram(dd), isin, combinations, unravel_index, trapezoid,
cumulative_trapezoid, gradient, renorm, vander. References: NumPy/SciPy float64 and values
printed by PyTorch 2.13."""
import itertools

import numpy as np
import pytest

import framework as torch
from framework.autograd import gradcheck
from tests.conftest import assert_close, to_np

F64 = torch.float64
rng = np.random.default_rng(0)


def T(a, grad=False):
    return torch.tensor(np.asarray(a, np.float64), dtype=F64, requires_grad=grad)


def test_cummax_cummin_values_indices_ties_nan():
    r = torch.cummax(torch.tensor([1., 3., 3., 2., 5., float("nan"), 1.]), 0)
    assert to_np(r.indices).tolist() == [0, 1, 2, 2, 4, 5, 5]          # torch-printed
    np.testing.assert_array_equal(to_np(r.values)[:5], [1, 3, 3, 3, 5])
    assert np.isnan(to_np(r.values)[5:]).all()
    m = torch.tensor([2., 1., 1., 3.]).cummin(0)
    assert to_np(m.indices).tolist() == [0, 1, 2, 2] and to_np(m.values).tolist() == [2, 1, 1, 1]
    a = rng.standard_normal((3, 5))
    assert_close(torch.cummax(T(a), 1).values, np.maximum.accumulate(a, 1))
    assert_close(torch.cummin(T(a), 0)[0], np.minimum.accumulate(a, 0))
    ints = torch.cummax(torch.tensor([1, 1, 2]), 0)
    assert ints.values.dtype == torch.int64 and to_np(ints.indices).tolist() == [0, 1, 2]
    v, i = torch.empty(0), torch.empty(0, dtype=torch.int64)
    torch.cummax(torch.tensor([2., 1.]), 0, out=(v, i))
    assert to_np(v).tolist() == [2, 2] and to_np(i).tolist() == [0, 0]
    with pytest.raises(IndexError):
        torch.cummax(torch.ones(2), 1)
    assert gradcheck(lambda x: torch.cummax(x, 1).values, (T(a, True),))
    assert gradcheck(lambda x: torch.cummin(x, 0)[0], (T(a, True),))


def test_logcumsumexp_stable_and_gradient():
    a = rng.standard_normal((3, 4)) * 5
    assert_close(torch.logcumsumexp(T(a), 1), np.logaddexp.accumulate(a, 1), rtol=1e-12)
    assert_close(T(a).logcumsumexp(0), np.logaddexp.accumulate(a, 0), rtol=1e-12)
    r = torch.logcumsumexp(torch.tensor([-1000., 0., 1000.], dtype=F64), 0)
    assert_close(r, [-1000., 0., 1000.], rtol=1e-12)
    r32 = torch.logcumsumexp(torch.tensor([1., 2.]), 0)
    assert r32.dtype == torch.float32
    assert_close(r32, [1., 2.3132616875182226])
    with pytest.raises(NotImplementedError, match="logcumsumexp_out_cpu"):
        torch.logcumsumexp(torch.tensor([1, 2]), 0)
    assert gradcheck(lambda x: torch.logcumsumexp(x, -1), (T(a / 5, True),))
    assert gradcheck(lambda x: torch.logcumsumexp(x, 0) * torch.tensor([1., -2., 3.], dtype=F64)
                     .unsqueeze(1), (T(a[:, :2] * 3, True),))


@pytest.mark.parametrize("interp", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_quantile_nanquantile_vs_numpy(interp):
    a = rng.standard_normal((4, 7))
    q = np.array([0., 0.3, 0.5, 0.9, 1.])
    assert_close(torch.quantile(T(a), T(q), dim=1, interpolation=interp),
                 np.quantile(a, q, axis=1, method=interp), rtol=1e-12)
    assert_close(torch.quantile(T(a), 0.4, interpolation=interp),
                 np.quantile(a, 0.4, method=interp), rtol=1e-12)
    an = a.copy()
    an[0, 2] = an[2, :] = np.nan
    with np.errstate(all="ignore"):
        want = np.nanquantile(an, q, axis=0, keepdims=True, method=interp)
    assert_close(torch.nanquantile(T(an), T(q), dim=0, keepdim=True, interpolation=interp), want,
                 rtol=1e-12)
    with np.errstate(all="ignore"):
        want = np.nanquantile(an, 0.7, axis=1, method=interp)
    assert_close(torch.nanquantile(T(an), 0.7, 1, interpolation=interp), want, rtol=1e-12)
    # quantile propagates NaN
    assert np.isnan(to_np(torch.quantile(T(an), 0.5, 1))[[0, 2]]).all()


def test_quantile_errors_and_gradient():
    x = torch.tensor([1., 2., 3.])
    # PyTorch names a float q; its shared check says quantile() for nanquantile too
    for f in (torch.quantile, torch.nanquantile):
        with pytest.raises(RuntimeError, match=r"^quantile\(\) q must be in the range \[0, 1\] "
                                               r"but got 1.5$"):
            f(x, 1.5)
        with pytest.raises(RuntimeError, match=r"^quantile\(\) q values must be in the range "
                                               r"\[0, 1\]$"):
            f(x, torch.tensor([0.5, -0.25]))
    with pytest.raises(RuntimeError, match="input tensor must be either float or double"):
        torch.quantile(torch.tensor([1, 2]), 0.5)
    with pytest.raises(RuntimeError, match="q tensor must be same dtype"):
        torch.quantile(x, torch.tensor([0.5], dtype=F64))
    with pytest.raises(RuntimeError, match="nanquantile\\(\\) input tensor must be non-empty"):
        torch.nanquantile(torch.tensor([]), 0.5)
    with pytest.raises(RuntimeError, match="interpolation must be one of"):
        torch.quantile(x, 0.5, interpolation="cubic")
    assert x.nanquantile(0.5).item() == 2.0
    a = rng.standard_normal((3, 5))
    assert gradcheck(lambda t: torch.quantile(t, T([0.2, 0.75]), dim=1), (T(a, True),))
    assert gradcheck(lambda t: torch.nanquantile(t, 0.4), (T(a, True),))


def test_cov_corrcoef_vs_numpy():
    a = rng.standard_normal((3, 6))
    fw = np.array([1, 2, 0, 3, 1, 1])
    aw = rng.uniform(0.1, 1, 6)
    assert_close(torch.cov(T(a)), np.cov(a), rtol=1e-12)
    assert_close(T(a).cov(correction=0), np.cov(a, ddof=0), rtol=1e-12)
    assert_close(torch.cov(T(a), fweights=torch.tensor(fw)), np.cov(a, fweights=fw), rtol=1e-12)
    assert_close(torch.cov(T(a), aweights=T(aw)), np.cov(a, aweights=aw), rtol=1e-12)
    assert_close(torch.cov(T(a), correction=2, fweights=torch.tensor(fw), aweights=T(aw)),
                 np.cov(a, ddof=2, fweights=fw, aweights=aw), rtol=1e-12)
    assert_close(torch.cov(T(a[0])), np.cov(a[0]), rtol=1e-12)
    ci = torch.cov(torch.tensor([[1, 2, 4], [3, 1, 0]]))               # torch-printed
    assert ci.dtype == torch.float32
    assert_close(ci, [[2.3333, -2.1667], [-2.1667, 2.3333]], rtol=1e-4)
    with pytest.warns(UserWarning, match=r"cov\(\): degrees of freedom is <= 0") as rec:
        assert torch.cov(torch.tensor([1., 2.]), correction=3).item() == float("inf")
    assert rec[0].filename == __file__                  # the caller's line, as PyTorch's
    assert_close(torch.corrcoef(T(a)), np.corrcoef(a), rtol=1e-12)
    with pytest.raises(RuntimeError, match="expected input to have two or fewer dimensions"):
        torch.cov(torch.ones(2, 2, 2))
    with pytest.raises(RuntimeError, match="fweights to have integral dtype"):
        torch.cov(torch.ones(2, 3), fweights=torch.tensor([1., 2, 3]))
    with pytest.raises(RuntimeError, match="fweights cannot be negative"):
        torch.cov(torch.ones(2, 3), fweights=torch.tensor([1, -2, 3]))
    with pytest.raises(RuntimeError, match="same numel as there are observations in the input "
                                           "but got 2 != 3"):
        torch.cov(torch.ones(2, 3), aweights=torch.tensor([1., 2]))
    assert gradcheck(lambda t: torch.cov(t, aweights=T(aw)), (T(a, True),))
    assert gradcheck(torch.corrcoef, (T(a, True),))


def test_histogram_and_histogramdd():
    a = rng.standard_normal(50)
    w = rng.uniform(0, 1, 50)
    h = torch.histogram(T(a), 7)
    nh, ne = np.histogram(a, 7)
    assert_close(h.hist, nh)
    assert_close(h.bin_edges, ne, rtol=1e-12)
    h = T(a).histogram(T([-1, 0, 0.5, 2]), weight=T(w), density=True)
    assert_close(h.hist, np.histogram(a, [-1, 0, 0.5, 2], weights=w, density=True)[0], rtol=1e-12)
    h = torch.histogram(T(a), 4, range=(-1., 1.))
    assert_close(h.hist, np.histogram(a, 4, range=(-1, 1))[0])
    h = torch.histogram(torch.tensor([1., 1.]), 2)                      # torch-printed
    assert to_np(h.hist).tolist() == [0, 2] and to_np(h.bin_edges).tolist() == [0.5, 1, 1.5]
    assert h.hist.dtype == torch.float32
    with pytest.raises(NotImplementedError, match="histogramdd"):
        torch.histogram(torch.tensor([1, 2]), 3)
    with pytest.raises(RuntimeError, match="bins must be > 0"):
        torch.histogram(torch.tensor([1.]), 0)
    with pytest.raises(RuntimeError, match="min should not exceed max"):
        torch.histogram(torch.tensor([1.]), 2, range=(3., 1.))
    r = torch.histogramdd(torch.tensor([[0., 1], [1, 0], [2, 0], [2, 2]]), bins=[3, 3],
                          weight=torch.tensor([1., 2, 4, 8]))
    assert to_np(r.hist).tolist() == [[0, 1, 0], [2, 0, 0], [4, 0, 8]]
    assert_close(r.bin_edges[1], [0, 2 / 3, 4 / 3, 2])
    p = rng.standard_normal((20, 2))
    r = torch.histogramdd(T(p), [T([-2, 0, 2]), T([-1, 1])])
    assert_close(r.hist, np.histogramdd(p, [[-2, 0, 2], [-1, 1]])[0])


def test_isin_combinations_unravel_index():
    e = torch.tensor([[1, 5, 3], [4, 2, 2]])
    assert to_np(torch.isin(e, torch.tensor([2, 3]))).tolist() == \
        np.isin(to_np(e), [2, 3]).tolist()
    assert to_np(torch.isin(e, torch.tensor([2, 3]), invert=True)).tolist() == \
        np.isin(to_np(e), [2, 3], invert=True).tolist()
    assert to_np(torch.isin(torch.tensor([1, 2, 3]), 2)).tolist() == [False, True, False]
    assert torch.isin(3, torch.tensor([1, 2, 3])).item() is True
    # a list is neither Tensor nor Number: PyTorch's overload TypeError
    for a, b, got in ((e, [2, 3], "Tensor, list"), ([2], e, "list, Tensor"), (1, 2, "int, int")):
        with pytest.raises(TypeError, match=rf"isin\(\) received an invalid combination of "
                                            rf"arguments - got \({got}\), but expected one of"):
            torch.isin(a, b)
    x = torch.tensor([1, 2, 3, 4])
    for r, rep in ((2, False), (3, False), (2, True), (1, False)):
        f = itertools.combinations_with_replacement if rep else itertools.combinations
        assert to_np(torch.combinations(x, r, rep)).tolist() == \
            [list(c) for c in f([1, 2, 3, 4], r)]
    assert tuple(torch.combinations(torch.tensor([1, 2, 3]), 4).shape) == (0, 4)
    assert tuple(torch.combinations(torch.tensor([1, 2, 3]), 0).shape) == (0,)
    with pytest.raises(RuntimeError, match=r"Expect a 1D vector, but got shape \[2, 2\]"):
        torch.combinations(torch.ones(2, 2))
    with pytest.raises(RuntimeError, match="Expect a non-negative number, but got -1"):
        torch.combinations(x, -1)
    assert gradcheck(lambda t: torch.combinations(t, 2) ** 2, (T([0.5, -1., 2.], True),))
    idx = np.array([0, 5, 17, 23])
    got = torch.unravel_index(torch.tensor(idx), (2, 3, 4))
    for g, w in zip(got, np.unravel_index(idx, (2, 3, 4))):
        assert to_np(g).tolist() == w.tolist()
    assert [to_np(t).tolist() for t in torch.unravel_index(torch.tensor([4, -1]), (2, 3))] == \
        [[1, 1], [1, 2]]                                                # torch-printed
    with pytest.raises(TypeError, match="expected 'indices' to be integer dtype"):
        torch.unravel_index(torch.tensor(1.), (2, 3))
    with pytest.raises(RuntimeError, match="out of bounds"):
        torch.unravel_index(torch.tensor(6), (2, 3))
    with pytest.raises(ValueError, match="cannot have negative values"):
        torch.unravel_index(torch.tensor(3), (2, -3))


def test_trapezoid_cumulative_trapezoid():
    from scipy.integrate import trapezoid as sp_trap, cumulative_trapezoid as sp_ctrap
    y = rng.standard_normal((3, 6))
    x = np.sort(rng.uniform(0, 5, 6))
    assert_close(torch.trapezoid(T(y)), sp_trap(y), rtol=1e-12)
    assert_close(torch.trapezoid(T(y), T(x)), sp_trap(y, x), rtol=1e-12)
    assert_close(torch.trapezoid(T(y), dx=0.5, dim=0), sp_trap(y, dx=0.5, axis=0), rtol=1e-12)
    assert_close(torch.trapz(T(y), T(x)), sp_trap(y, x), rtol=1e-12)
    assert_close(torch.trapz(T(y), dx=2.), sp_trap(y, dx=2.), rtol=1e-12)
    assert_close(torch.cumulative_trapezoid(T(y), T(x)), sp_ctrap(y, x), rtol=1e-12)
    assert_close(torch.cumulative_trapezoid(T(y), dx=3., dim=0), sp_ctrap(y, dx=3., axis=0),
                 rtol=1e-12)
    r = torch.trapezoid(torch.tensor([1, 2, 3]))                          # torch-printed
    assert r.item() == 4.0
    assert to_np(torch.trapezoid(torch.ones(2, 0))).tolist() == [0., 0.]
    with pytest.raises(RuntimeError, match="There must be one `x` value for each sample point"):
        torch.trapezoid(torch.ones(3), torch.ones(4))
    assert gradcheck(lambda a, b: torch.trapezoid(a, b), (T(y, True), T(x, True)))
    assert gradcheck(lambda a: torch.cumulative_trapezoid(a, dx=0.3), (T(y, True),))


@pytest.mark.parametrize("edge_order", [1, 2])
def test_gradient_vs_numpy(edge_order):
    f = rng.standard_normal((5, 6))
    for g, w in zip(torch.gradient(T(f), edge_order=edge_order),
                    np.gradient(f, edge_order=edge_order)):
        assert_close(g, w, rtol=1e-12)
    (g,) = torch.gradient(T(f), spacing=2.0, dim=1, edge_order=edge_order)
    assert_close(g, np.gradient(f, 2.0, axis=1, edge_order=edge_order), rtol=1e-12)
    c0, c1 = np.sort(rng.uniform(0, 4, 5)), np.sort(rng.uniform(0, 4, 6))
    got = torch.gradient(T(f), spacing=(T(c0), T(c1)), edge_order=edge_order)
    for g, w in zip(got, np.gradient(f, c0, c1, edge_order=edge_order)):
        assert_close(g, w, rtol=1e-10)
    assert gradcheck(lambda t: torch.gradient(t, spacing=(T(c0), T(c1)), edge_order=edge_order),
                     (T(f, True),))


def test_gradient_torch_cases_and_errors():
    (g,) = torch.gradient(torch.tensor([1, 2, 4, 7]))                      # torch-printed
    assert g.dtype == torch.float32 and to_np(g).tolist() == [1.0, 1.5, 2.5, 3.0]
    (g,) = torch.gradient(torch.tensor([1., 2, 4, 7]), spacing=(torch.tensor([0., 1, 3, 4]),),
                          edge_order=2)
    assert_close(g, [1.0, 1.0, 2.3333, 3.6667], rtol=1e-4)
    with pytest.raises(RuntimeError, match="only supports edge_order=1 and edge_order=2"):
        torch.gradient(torch.tensor([1., 2, 4, 7]), edge_order=3)
    with pytest.raises(RuntimeError, match="at least edge_order\\+1"):
        torch.gradient(torch.tensor([1., 2]), edge_order=2)


def test_renorm():
    a = rng.standard_normal((3, 4)) * 2
    for p, dim, mx in ((2, 0, 1.0), (1, 1, 1.5), (3, 0, 10.0)):
        ax = tuple(k for k in range(2) if k != dim)
        nrm = (np.abs(a) ** p).sum(axis=ax, keepdims=True) ** (1 / p)
        want = a * np.where(nrm > mx, mx / (nrm + 1e-7), 1.0)
        assert_close(torch.renorm(T(a), p, dim, mx), want, rtol=1e-12)
        assert_close(T(a).renorm(p, dim, mx), want, rtol=1e-12)
    with pytest.raises(RuntimeError, match="expected maxnorm to be >= 0 but got -1"):
        torch.renorm(torch.ones(2, 2), 2, 0, -1)
    with pytest.raises(RuntimeError, match="non-positive-norm not supported"):
        torch.renorm(torch.ones(2, 2), 0, 0, 1)
    assert gradcheck(lambda t: torch.renorm(t, 2, 0, 1.0), (T(a, True),))


def test_vander():
    x = np.array([1.5, -2., 0.5, 3.])
    assert_close(torch.vander(T(x)), np.vander(x), rtol=1e-12)
    assert_close(torch.vander(T(x), 3, increasing=True), np.vander(x, 3, increasing=True))
    vi = torch.vander(torch.tensor([1, 2, 3]), 0)
    assert tuple(vi.shape) == (3, 0) and vi.dtype == torch.int64
    assert torch.vander(torch.tensor([True, False])).dtype == torch.int64
    assert to_np(torch.vander(torch.tensor([True, False]))).tolist() == [[1, 1], [0, 1]]
    xb = rng.standard_normal((2, 3))
    want = np.stack([np.vander(r, 4, increasing=True) for r in xb])
    assert_close(torch.linalg.vander(T(xb), N=4), want, rtol=1e-12)
    with pytest.raises(RuntimeError, match="x must be a one-dimensional tensor"):
        torch.vander(torch.ones(2, 2))
    with pytest.raises(RuntimeError, match="N must be non-negative"):
        torch.vander(torch.tensor([1., 2]), -1)
    with pytest.raises(RuntimeError, match="N must be greater than 1"):
        torch.linalg.vander(torch.tensor([1, 2, 3]), N=1)
    assert gradcheck(lambda t: torch.vander(t, 4), (T([0.5, 0., -1.2], True),))


def _fns():
    return [lambda x: torch.logcumsumexp(x, 1), lambda x: torch.cummax(x, 0).values * 2,
            lambda x: torch.cov(x), lambda x: torch.linalg.vander(x, N=3),
            lambda x: torch.quantile(x, 0.3, dim=1)]


def test_compile_matches_eager():
    a = rng.standard_normal((3, 4))
    for f in _fns():
        e = f(T(a))
        c = torch.compile(f)(T(a))
        assert_close(c, to_np(e), rtol=1e-12)
    x1, x2 = T(a, True), T(a, True)
    torch.logcumsumexp(x1, 1).sum().backward()
    torch.compile(lambda x: torch.logcumsumexp(x, 1).sum())(x2).backward()
    assert_close(x2.grad, to_np(x1.grad), rtol=1e-12)


def test_interpret_device_matches_cpu():
    a = rng.standard_normal((3, 4)).astype(np.float32)
    for f in _fns()[:4]:
        c = f(torch.tensor(a))
        i = f(torch.tensor(a, device="interpret"))
        assert i.device.type == "interpret"
        np.testing.assert_allclose(to_np(i), to_np(c), rtol=1e-6, atol=1e-6)


def test_quantile_interpolates_with_lerp_formula_at_infinities():
    # torch interpolates with lerp: a + w (b - a) for w < 0.5, else b - (b - a)(1 - w); so
    # between -inf and 1 at w = 0.5 the answer is -inf, and between 1 and inf at w = 0.5 NaN
    inf, nan = float("inf"), float("nan")
    x = torch.tensor([-inf, 1.0, inf])
    q = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    r = to_np(torch.quantile(x, q))
    np.testing.assert_array_equal(r, np.array([nan, -inf, 1.0, nan, nan], np.float32))
    r = to_np(torch.quantile(x, q, interpolation="midpoint"))
    np.testing.assert_array_equal(r, np.array([nan, -inf, 1.0, nan, nan], np.float32))
    r = to_np(torch.quantile(x, q, interpolation="lower"))
    np.testing.assert_array_equal(r, np.array([-inf, -inf, 1.0, 1.0, inf], np.float32))
    # finite data: still NumPy's linear quantile
    a = rng.standard_normal((4, 9))
    np.testing.assert_allclose(to_np(torch.quantile(T(a), T([0.1, 0.5, 0.9]), dim=1)),
                               np.quantile(a, [0.1, 0.5, 0.9], axis=1), rtol=1e-12)


def test_lerp_infinities_follow_torch_formula():
    inf = float("inf")
    s = torch.tensor([-inf, 1.0, 1.0, 2.0])
    e = torch.tensor([1.0, inf, 2.0, 4.0])
    r = to_np(torch.lerp(s, e, 0.5))
    np.testing.assert_array_equal(r, np.array([-inf, np.nan, 1.5, 3.0], np.float32))
    r = to_np(torch.lerp(s, e, torch.tensor([0.75, 0.75, 1.0, 0.0])))
    np.testing.assert_array_equal(r, np.array([-inf, np.nan, 2.0, 2.0], np.float32))
