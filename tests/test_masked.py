"""torch.masked: masked reductions/normalisations against numpy.ma in float64, identities of
fully masked-out rows, gradients by finite differences, and the prototype MaskedTensor
(printing, pointwise/where/view rules, reductions, masked gradients, errors)."""
import warnings

import numpy as np
import pytest

import framework as torch
from framework.autograd import gradcheck
from framework.masked import masked_tensor, as_masked_tensor, MaskedTensor

RNG = np.random.default_rng(7)
X = RNG.standard_normal((3, 5))
M = np.array([[1, 0, 1, 1, 0], [0, 1, 1, 1, 1], [1, 1, 0, 0, 1]], bool)


def _ma(x=X, m=M):
    return np.ma.masked_array(x, mask=~m)


def _t(a):
    return torch.tensor(a)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


@pytest.mark.parametrize("name,ref", [
    ("sum", lambda a, d: a.sum(d)), ("prod", lambda a, d: a.prod(d)),
    ("amax", lambda a, d: a.max(d)), ("amin", lambda a, d: a.min(d)),
    ("mean", lambda a, d: a.mean(d)), ("var", lambda a, d: a.var(d, ddof=1)),
    ("std", lambda a, d: a.std(d, ddof=1)),
    ("logsumexp", lambda a, d: np.log(np.exp(a).sum(d))),
    ("norm", lambda a, d: np.sqrt((a * a).sum(d)))])
def test_reductions_match_numpy_ma(name, ref):
    f = getattr(torch.masked, name)
    for d in (0, 1, None):
        got = f(_t(X), *((2.0,) if name == "norm" else ()), d, mask=_t(M))
        np.testing.assert_allclose(got.numpy(), np.ma.filled(ref(_ma(), d)), rtol=1e-12)
        assert got.dtype == torch.float64


def test_arg_cum_median_and_options():
    x, m = _t(X), _t(M)
    np.testing.assert_array_equal(torch.masked.argmax(x, 1, mask=m).numpy(), _ma().argmax(1))
    np.testing.assert_array_equal(torch.masked.argmin(x, 0, mask=m).numpy(), _ma().argmin(0))
    # PyTorch returns the index in input's dtype unless dtype= is given
    assert torch.masked.argmax(x, 1, mask=m).dtype == torch.float64
    np.testing.assert_allclose(torch.masked.cumsum(x, 1, mask=m).numpy(),
                               np.cumsum(np.where(M, X, 0), 1), rtol=1e-12)
    np.testing.assert_allclose(torch.masked.cumprod(x, 1, mask=m).numpy(),
                               np.cumprod(np.where(M, X, 1), 1), rtol=1e-12)
    # (PyTorch's median of an even count is the lower of the two middle values)
    lower = [np.sort(r.compressed())[(r.count() - 1) // 2] for r in _ma()]
    np.testing.assert_allclose(torch.masked.median(x, 1, mask=m).numpy(), lower, rtol=1e-12)
    np.testing.assert_allclose(torch.masked.var(x, 1, unbiased=False, mask=m).numpy(),
                               _ma().var(1), rtol=1e-12)
    np.testing.assert_allclose(torch.masked.std(x, 0, correction=0, keepdim=True, mask=m)
                               .numpy(), _ma().std(0, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(torch.masked.norm(x, 1, 1, mask=m).numpy(),
                               np.abs(_ma()).sum(1), rtol=1e-12)
    np.testing.assert_allclose(torch.masked.norm(x, float("inf"), 1, mask=m).numpy(),
                               np.abs(_ma()).max(1), rtol=1e-12)
    r = torch.masked.sum(x, (0, 1), keepdim=True, mask=m)
    assert r.shape == (1, 1) and np.isclose(r.item(), _ma().sum())


def test_normalisations_match_numpy():
    x, m = _t(X), _t(M)
    e = np.where(M, np.exp(X - np.where(M, X, -np.inf).max(1, keepdims=True)), 0)
    sm = e / e.sum(1, keepdims=True)
    np.testing.assert_allclose(torch.masked.softmax(x, 1, mask=m).numpy(), sm, atol=1e-15)
    lsm = torch.masked.log_softmax(x, 1, mask=m).numpy()
    np.testing.assert_allclose(lsm[M], np.log(sm[M]), rtol=1e-12)
    assert np.all(lsm[~M] == -np.inf)
    e = np.where(M, np.exp(-X), 0)
    np.testing.assert_allclose(torch.masked.softmin(x, 1, mask=m).numpy(),
                               e / e.sum(1, keepdims=True), rtol=1e-12)
    nrm = np.sqrt((np.where(M, X, 0) ** 2).sum(1, keepdims=True))
    np.testing.assert_allclose(torch.masked.normalize(x, 2.0, 1, mask=m).numpy(),
                               np.where(M, X, 0) / nrm, rtol=1e-12)


def test_mask_broadcasts_and_ints():
    x = _t(X)
    row = np.array([True, False, True, False, True])
    np.testing.assert_allclose(torch.masked.sum(x, 1, mask=_t(row)).numpy(),
                               np.where(row, X, 0).sum(1), rtol=1e-12)
    xi = torch.tensor([[1, 5, 3], [4, 2, 6]], dtype=torch.int32)
    mi = torch.tensor([[True, False, True], [False, False, False]])
    s = torch.masked.sum(xi, 1, mask=mi)
    assert s.dtype == torch.int64 and s.tolist() == [4, 0]
    a = torch.masked.amax(xi, 1, mask=mi)
    assert a.dtype == torch.int32 and a.tolist() == [3, -2147483648]
    assert torch.masked.amin(xi, 1, mask=mi).tolist() == [1, 2147483647]
    assert torch.masked.prod(xi, 1, mask=mi).tolist() == [3, 1]


def test_fully_masked_rows_identities():
    x = _t(X)
    m = _t(np.array([[True] * 5, [False] * 5, [True, False] * 2 + [True]]))
    assert torch.masked.sum(x, 1, mask=m)[1].item() == 0.0
    assert torch.masked.prod(x, 1, mask=m)[1].item() == 1.0
    assert torch.masked.amax(x, 1, mask=m)[1].item() == -np.inf
    assert torch.masked.amin(x, 1, mask=m)[1].item() == np.inf
    assert torch.masked.norm(x, 2.0, 1, mask=m)[1].item() == 0.0
    assert torch.masked.logsumexp(x, 1, mask=m)[1].item() == -np.inf
    for f in (torch.masked.mean, torch.masked.var, torch.masked.std, torch.masked.median):
        r = f(x, 1, mask=m)
        assert np.isnan(r[1].item()) and not np.isnan(r[0].item()), f.__name__
    for f in (torch.masked.softmax, torch.masked.log_softmax, torch.masked.softmin):
        assert np.isnan(f(x, 1, mask=m)[1].numpy()).all()


def test_errors():
    x = _t(X)
    with pytest.raises(IndexError, match="broadcastable mask"):
        torch.masked.sum(x, 0, mask=torch.ones(1, 3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="mean\\(\\): Could not infer output dtype"):
        torch.masked.mean(torch.tensor([1, 2]), mask=torch.tensor([True, False]))
    with pytest.raises(IndexError, match="Dimension out of range"):
        torch.masked.sum(x, 2, mask=_t(M))
    with pytest.raises(RuntimeError, match="dim=1 appears multiple times"):
        torch.masked.sum(x, (1, 1), mask=_t(M))
    with pytest.raises(ValueError, match="no fully masked out rows"):
        torch.masked.median(torch.tensor([[1, 2]]), 1, mask=torch.tensor([[False, False]]))


@pytest.mark.parametrize("name,args", [
    ("sum", (1,)), ("prod", (1,)), ("cumsum", (1,)), ("cumprod", (1,)), ("amax", (1,)),
    ("amin", (0,)), ("mean", (1,)), ("var", (1,)), ("std", (0,)), ("logsumexp", (1,)),
    ("norm", (2.0, 1)), ("softmax", (1,)), ("log_softmax", (1,)), ("softmin", (0,)),
    ("normalize", (2.0, 1))])
def test_gradcheck(name, args):
    f = getattr(torch.masked, name)
    m = _t(M)
    x = torch.tensor(X, requires_grad=True)

    def fn(x):
        r = f(x, *args, mask=m)
        return torch.where(torch.isfinite(r), r, 0)    # (log_softmax's masked -inf)
    assert gradcheck(fn, (x,))


def test_gradient_is_zero_where_masked_out():
    x = torch.tensor(X, requires_grad=True)
    torch.masked.mean(x, 1, mask=_t(M)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), M / M.sum(1, keepdims=True), rtol=1e-12)


# ---- MaskedTensor ---------------------------------------------------------------------------
D = torch.tensor([[0., 1, 2], [3, 4, 5]])
DM = torch.tensor([[True, False, True], [False, False, False]])


def test_prototype_warning_and_construction_errors():
    with pytest.warns(UserWarning, match="MaskedTensors is in prototype stage"):
        masked_tensor(D, DM)
    with pytest.raises(TypeError, match="mask must have dtype bool."):
        masked_tensor(D, DM.int())
    with pytest.raises(ValueError, match="data.dim\\(\\) must equal mask.dim\\(\\)"):
        masked_tensor(D[0], DM)
    with pytest.raises(ValueError, match="data.size\\(\\) must equal mask.size\\(\\)"):
        masked_tensor(D, DM[:, :2])
    with pytest.raises(TypeError, match="torch.complex64 is not supported in MaskedTensor."):
        masked_tensor(D.to(torch.complex64), DM)
    with pytest.raises(TypeError, match="data must be a Tensor"):
        masked_tensor([1.0], DM)
    with pytest.raises(TypeError, match="mask must be a Tensor"):
        masked_tensor(D, [True])


def test_printing():
    mt = masked_tensor(D, DM)
    assert repr(mt) == ("MaskedTensor(\n  [\n    [  0.0000,       --,   2.0000],\n"
                        "    [      --,       --,       --]\n  ]\n)")
    assert repr(masked_tensor(torch.tensor(2.), torch.tensor(True))) == \
        "MaskedTensor(  2.0000, True)"
    assert repr(masked_tensor(torch.tensor(2.), torch.tensor(False))) == \
        "MaskedTensor(--, False)"
    assert repr(masked_tensor(torch.tensor([1, 2, 3]), torch.tensor([True, False, True]))) == \
        "MaskedTensor(\n  [1,       --, 3]\n)"
    assert str(mt == mt) == ("MaskedTensor(\n  [\n    [True,       --, True],\n"
                             "    [      --,       --,       --]\n  ]\n)")


def _check(mt, data, mask):
    assert isinstance(mt, MaskedTensor)
    np.testing.assert_array_equal(mt.get_mask().numpy(), mask)
    np.testing.assert_allclose(mt.get_data().detach().numpy()[mask], np.asarray(data)[mask],
                               rtol=1e-6)


def test_pointwise_where_and_views():
    mt, d, m = masked_tensor(D, DM), D.numpy(), DM.numpy()
    _check(torch.exp(mt), np.exp(d), m)
    _check(mt.sin(), np.sin(d), m)
    _check(mt + 1, d + 1, m)
    _check(2 * mt, 2 * d, m)
    _check(mt * mt, d * d, m)
    _check(mt + D, d + d, m)
    _check(mt < masked_tensor(D, ~DM), d < d, m)     # (PyTorch keeps the lhs mask here)
    with pytest.raises(ValueError, match="Input masks must match"):
        mt + masked_tensor(D, ~DM)
    _check(mt.t(), d.T, m.T)
    _check(mt.transpose(0, 1), d.T, m.T)
    _check(mt.view(3, 2), d.reshape(3, 2), m.reshape(3, 2))
    _check(mt.reshape(-1), d.reshape(-1), m.reshape(-1))
    _check(mt[0], d[0], m[0])
    _check(mt[:, 1], d[:, 1], m[:, 1])
    w = torch.where(DM, mt, 0)           # the unmasked operand counts as specified everywhere
    _check(w, np.where(m, d, 0), np.where(m, m, True))
    np.testing.assert_array_equal(mt.to_tensor(-1).numpy(), np.where(m, d, -1))


def test_reductions_of_masked_tensor():
    mt = masked_tensor(D, DM)
    assert repr(mt.sum()) == "MaskedTensor(  2.0000, True)"
    assert repr(mt.mean()) == "MaskedTensor(  1.0000, True)"
    assert repr(mt.amax()) == "MaskedTensor(  2.0000, True)"
    assert repr(mt.amin()) == "MaskedTensor(  0.0000, True)"
    assert repr(mt.argmax()) == "MaskedTensor(  2.0000, True)"
    assert repr(mt.var()) == "MaskedTensor(  2.0000, True)"
    assert repr(mt.all()) == "MaskedTensor(False, True)"
    assert repr(mt.sum(1)) == "MaskedTensor(\n  [  2.0000,       --]\n)"
    assert repr(mt.prod(1)) == "MaskedTensor(\n  [  0.0000,       --]\n)"
    assert repr(mt.std(1)) == "MaskedTensor(\n  [  1.4142,       --]\n)"
    assert repr(mt.sum(1, keepdim=True)) == \
        "MaskedTensor(\n  [\n    [  2.0000],\n    [      --]\n  ]\n)"
    sm = mt.softmax(1)
    assert repr(sm) == ("MaskedTensor(\n  [\n    [  0.1192,       --,   0.8808],\n"
                        "    [      --,       --,       --]\n  ]\n)")
    np.testing.assert_allclose(sm.get_data()[0, [0, 2]].numpy(),
                               np.exp([0, 2]) / np.exp([0, 2]).sum(), rtol=1e-6)
    _check(mt.log_softmax(1), np.log(sm.get_data().numpy()), DM.numpy())


def test_grad_of_masked_leaf():
    # MaskedTensor Overview: where(mask, exp(x), y) with masked operands has no NaN gradient
    data = torch.tensor([-10., -5, 0, 5, 10, 50, 60, 70, 80, 90, 100])
    mask = data < 0
    x = torch.tensor(data.numpy(), requires_grad=True)
    torch.where(x < 0, torch.exp(x), torch.ones_like(x)).sum().backward()
    assert np.isnan(x.grad.numpy()).any()                 # the dense version's NaN
    mx = masked_tensor(data, mask, requires_grad=True)
    my = masked_tensor(torch.ones_like(data), ~mask, requires_grad=True)
    y = torch.where(mask, torch.exp(mx), my)
    s = y.sum()
    assert isinstance(s, MaskedTensor) and np.isclose(s.get_data().item(),
                                                       np.exp(-10) + np.exp(-5) + 9)
    s.backward()
    assert isinstance(mx.grad, MaskedTensor) and isinstance(my.grad, MaskedTensor)
    m = mask.numpy()
    np.testing.assert_array_equal(mx.grad.get_mask().numpy(), m)
    np.testing.assert_allclose(mx.grad.get_data().numpy()[m], np.exp([-10., -5]), rtol=1e-6)
    np.testing.assert_allclose(my.grad.to_tensor(0).numpy(), (~m).astype(float))
    assert repr(mx.grad).startswith("MaskedTensor(\n  [  0.0000,   0.0067,       --,")


def test_masked_tensor_mean_grad_and_gradcheck():
    mt = masked_tensor(D, DM, requires_grad=True)
    assert mt.is_leaf and mt.requires_grad
    mt.mean().backward()
    np.testing.assert_allclose(mt.grad.get_data().numpy()[DM.numpy()], [0.5, 0.5])
    # softmax's VJP over the specified elements of each row: s * (w - sum(s * w))
    w = RNG.standard_normal(X.shape)
    mx = masked_tensor(torch.tensor(X), torch.tensor(M), requires_grad=True)
    (mx.softmax(1).get_data() * torch.tensor(w)).sum().backward()
    e = np.where(M, np.exp(X), 0)
    sm = e / e.sum(1, keepdims=True)
    ref = sm * (w - (sm * w).sum(1, keepdims=True))
    np.testing.assert_allclose(mx.grad.get_data().numpy()[M], ref[M], rtol=1e-10)


def test_module_reductions_and_nan_free_gradient_through_dense_ops():
    mt = masked_tensor(D, DM)
    assert repr(torch.sum(mt)) == "MaskedTensor(  2.0000, True)"
    assert repr(torch.sum(mt, 1)) == "MaskedTensor(\n  [  2.0000,       --]\n)"
    assert repr(torch.amin(mt, 1)) == "MaskedTensor(\n  [  0.0000,       --]\n)"
    assert repr(torch.argmax(mt, 1)) == "MaskedTensor(\n  [  2.0000,       --]\n)"
    assert repr(torch.all(mt > 0, 1)) == "MaskedTensor(\n  [False,       --]\n)"
    # MaskedTensor tutorial: y = x / div is inf where div == 0; masking y keeps x.grad NaN-free
    x = torch.tensor([1., 1.], requires_grad=True)
    div = torch.tensor([0., 1.])
    y = x / div
    torch.where(div != 0, y, 0).sum().backward()
    assert np.isnan(x.grad[0].item())                       # the dense way: 0 * inf
    x.grad = None
    as_masked_tensor(x / div, div != 0).sum().backward()
    assert isinstance(x.grad, MaskedTensor)
    assert repr(x.grad) == "MaskedTensor(\n  [      --,   1.0000]\n)"
    as_masked_tensor(x / div, div != 0).sum().backward()   # accumulates, still masked
    assert x.grad.to_tensor(0).tolist() == [0.0, 2.0]


def test_unsupported_dense_paths_raise():
    mt = masked_tensor(D, DM)
    for f in (torch.max, lambda t: torch.log_softmax(t, 1), lambda t: t.numpy()):
        with pytest.raises(TypeError, match="MaskedTensor"):
            f(mt)
    for f in (lambda t: torch.cumsum(t, 0), lambda t: t @ t.t()):
        with pytest.raises(TypeError, match="MaskedTensor"):
            f(mt)


def test_torch_function_forms_of_masked_tensor():
    # torch.mean(mt), torch.amax(mt), torch.softmax(mt, d), ... are the methods (numpy.ma refs)
    mt, ma = masked_tensor(_t(X), _t(M)), _ma()

    def check(r, ref, mask):
        assert isinstance(r, MaskedTensor)
        np.testing.assert_array_equal(r.get_mask().numpy(), mask)
        np.testing.assert_allclose(r.to_tensor(0).numpy(), np.where(mask, ref, 0), rtol=1e-12)

    for f, ref in [(torch.mean, ma.mean()), (torch.amax, ma.max()), (torch.amin, ma.min()),
                   (torch.var, ma.var(ddof=1)), (torch.std, ma.std(ddof=1)),
                   (torch.sum, ma.sum()), (torch.prod, ma.prod())]:
        check(f(mt), ref, np.array(True))
    any1 = M.any(1)
    check(torch.mean(mt, 1), ma.mean(1).filled(0), any1)
    check(torch.mean(mt, dim=1, keepdim=True), ma.mean(1).filled(0)[:, None], any1[:, None])
    check(torch.mean(mt, (0, 1)), ma.mean(), np.array(True))
    check(torch.amax(mt, dim=0), ma.max(0).filled(0), M.any(0))
    check(torch.var(mt, 1, correction=0), ma.var(1, ddof=0).filled(0), any1)
    check(torch.std(mt, 1, keepdim=True), ma.std(1, ddof=1).filled(0)[:, None], any1[:, None])
    e = np.where(M, np.exp(X - X.max(1, keepdims=True)), 0)
    for sm in (torch.softmax(mt, 1), torch.nn.functional.softmax(mt, -1), mt.softmax(1)):
        check(sm, e / e.sum(1, keepdims=True), M)
    with pytest.raises(IndexError, match="Dimension out of range"):
        torch.mean(mt, 2)
    with pytest.raises(TypeError, match="out"):
        torch.mean(mt, 1, out=torch.zeros(3))


def test_masked_softmax_of_fully_masked_row_is_nan_without_nan_gradient():
    m = np.array([[True, False, True], [False, False, False]])
    x = np.array([[1.0, 2.0, 0.5], [3.0, -1.0, 0.0]])
    mt = masked_tensor(_t(x), _t(m), requires_grad=True)
    sm = torch.softmax(mt, 1)
    d = sm.get_data().detach().numpy()
    assert np.isnan(d[1]).all() and d[0, 1] == 0.0       # as PyTorch's data
    e = np.exp(x[0, [0, 2]])
    np.testing.assert_allclose(d[0, [0, 2]], e / e.sum(), rtol=1e-12)
    (sm.get_data()[0] * _t([1.0, 5.0, 3.0])).sum().backward()
    g = mt.grad.get_data().numpy()
    s = e / e.sum()
    np.testing.assert_allclose(g[0, [0, 2]], s * (np.array([1.0, 3.0]) - (s * [1.0, 3.0]).sum()),
                               rtol=1e-12)
    assert not np.isnan(g).any()
