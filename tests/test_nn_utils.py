"""nn.utils: gradient clipping, vector conversion, rnn packing, spectral_norm, parametrizations."""
import numpy as np
import pytest

import framework as torch
from framework import nn
from framework.nn.utils import (clip_grad_norm_, clip_grad_value_, parameters_to_vector,
                                vector_to_parameters, spectral_norm, remove_spectral_norm)
from framework.nn.utils import parametrize, parametrizations
from framework.nn.utils.rnn import (pad_sequence, pack_padded_sequence, pad_packed_sequence,
                                    pack_sequence, unpack_sequence)
from conftest import assert_close, to_np


def _with_grads(g1, g2):
    a = nn.Parameter(torch.zeros(2))
    b = nn.Parameter(torch.zeros(2, 1))
    a.grad = torch.tensor(g1)
    b.grad = torch.tensor(g2)
    return a, b


def test_clip_grad_norm():
    a, b = _with_grads([3.0, 0.0], [[0.0], [4.0]])
    total = clip_grad_norm_([a, b], max_norm=1.0)
    assert_close(total, 5.0)
    coef = 1.0 / (5.0 + 1e-6)
    assert_close(a.grad, [3 * coef, 0.0])
    assert_close(b.grad, [[0.0], [4 * coef]])
    a, b = _with_grads([3.0, 0.0], [[0.0], [4.0]])
    assert_close(clip_grad_norm_([a, b], 10.0), 5.0)
    assert_close(a.grad, [3.0, 0.0])                    # under the limit: untouched
    a, b = _with_grads([3.0, -7.0], [[1.0], [4.0]])
    assert_close(clip_grad_norm_((p for p in [a, b]), 1.0, norm_type=float("inf")), 7.0)
    assert_close(a.grad, np.array([3.0, -7.0]) / (7.0 + 1e-6))
    a, b = _with_grads([float("nan"), 0.0], [[0.0], [1.0]])
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_([a, b], 1.0, error_if_nonfinite=True)
    assert to_np(b.grad)[1, 0] == 1.0                   # unchanged after the error


def test_clip_grad_value():
    a, b = _with_grads([3.0, -0.5], [[-2.0], [0.1]])
    clip_grad_value_([a, b], 1.0)
    assert a.grad.tolist() == [1.0, -0.5]
    assert_close(b.grad, [[-1.0], [0.1]])


def test_parameters_vector_roundtrip():
    m = nn.Linear(3, 2)
    v = parameters_to_vector(m.parameters())
    assert v.shape == torch.Size([8])
    np.testing.assert_array_equal(to_np(v), np.concatenate([to_np(m.weight).ravel(),
                                                            to_np(m.bias)]))
    w = m.weight
    vector_to_parameters(torch.arange(8.0), m.parameters())
    assert m.weight is w
    assert m.weight.tolist() == [[0, 1, 2], [3, 4, 5]] and m.bias.tolist() == [6, 7]
    with pytest.raises(TypeError):
        vector_to_parameters([1.0] * 8, m.parameters())
    with pytest.raises(RuntimeError):
        vector_to_parameters(torch.arange(7.0), m.parameters())


def test_pad_pack_roundtrip():
    a, b, c = torch.tensor([1., 2, 3]), torch.tensor([4., 5]), torch.tensor([6.])
    p = pad_sequence([a, b, c])
    assert p.tolist() == [[1, 4, 6], [2, 5, 0], [3, 0, 0]]
    assert pad_sequence([a, b], batch_first=True, padding_value=-1).tolist() == \
        [[1, 2, 3], [4, 5, -1]]
    pk = pack_padded_sequence(p, [3, 2, 1])
    assert pk.data.tolist() == [1, 4, 6, 2, 5, 3] and pk.batch_sizes.tolist() == [3, 2, 1]
    out, lens = pad_packed_sequence(pk, batch_first=True)
    assert out.tolist() == [[1, 2, 3], [4, 5, 0], [6, 0, 0]] and lens.tolist() == [3, 2, 1]
    with pytest.raises(RuntimeError, match="decreasing"):
        pack_padded_sequence(p, [1, 2, 3])
    pk2 = pack_sequence([b, a, c], enforce_sorted=False)
    assert pk2.sorted_indices.tolist() == [1, 0, 2]
    out, lens = pad_packed_sequence(pk2, total_length=4)
    assert out.shape == torch.Size([4, 3]) and lens.tolist() == [2, 3, 1]
    assert out[:, 0].tolist() == [4, 5, 0, 0]
    assert [s.tolist() for s in unpack_sequence(pk2)] == [[4, 5], [1, 2, 3], [6]]
    with pytest.raises(ValueError):
        pad_packed_sequence(pk2, total_length=2)
    x = torch.tensor([[1., 2.], [3., 0.]], requires_grad=True)
    packed = pack_padded_sequence(x, torch.tensor([2, 1]), batch_first=True)
    packed.data.sum().backward()
    assert x.grad.tolist() == [[1, 1], [1, 0]]          # padding gets no gradient


def test_spectral_norm_hook_version():
    torch.manual_seed(0)
    m = spectral_norm(nn.Linear(5, 4))
    assert list(m.state_dict().keys()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    for _ in range(30):
        m(torch.ones(1, 5))
    sigma = np.linalg.svd(to_np(m.weight_orig).astype(np.float64), compute_uv=False)[0]
    assert_close(m.weight, to_np(m.weight_orig) / sigma, rtol=1e-4, atol=1e-5)
    out = m(torch.ones(2, 5))
    out.sum().backward()
    assert m.weight_orig.grad is not None
    remove_spectral_norm(m)
    assert type(m.weight) is nn.Parameter and "weight_orig" not in m._parameters


def test_parametrizations_spectral_and_weight_norm():
    torch.manual_seed(0)
    m = parametrizations.spectral_norm(nn.Linear(4, 3))
    assert type(m).__name__ == "ParametrizedLinear"
    assert list(m.state_dict().keys()) == ["bias", "parametrizations.weight.original",
                                           "parametrizations.weight.0._u",
                                           "parametrizations.weight.0._v"]
    for _ in range(5):
        m(torch.ones(1, 4))
    s = np.linalg.svd(to_np(m.weight.detach()).astype(np.float64), compute_uv=False)[0]
    assert abs(s - 1.0) < 1e-4
    w = parametrizations.weight_norm(nn.Linear(4, 3))
    g, v = w.parametrizations.weight.original0, w.parametrizations.weight.original1
    assert g.shape == torch.Size([3, 1])
    ref = to_np(v) * to_np(g) / np.linalg.norm(to_np(v), axis=1, keepdims=True)
    assert_close(w.weight, ref, rtol=1e-5)
    w(torch.ones(2, 4)).sum().backward()
    assert g.grad is not None and v.grad is not None


def test_register_parametrization_custom():
    class Symmetric(nn.Module):
        def forward(self, X):
            return X.triu() + X.triu(1).transpose(-1, -2)
    layer = nn.Linear(3, 3)
    orig = layer.weight
    parametrize.register_parametrization(layer, "weight", Symmetric())
    W = to_np(layer.weight.detach())
    np.testing.assert_allclose(W, W.T)
    assert parametrize.is_parametrized(layer, "weight")
    assert layer.parametrizations.weight.original is orig
    assert str(layer) == ("ParametrizedLinear(\n  in_features=3, out_features=3, bias=True\n"
                          "  (parametrizations): ModuleDict(\n    (weight): ParametrizationList(\n"
                          "      (0): Symmetric()\n    )\n  )\n)")
    parametrize.remove_parametrizations(layer, "weight")
    assert type(layer) is nn.Linear and layer.weight is orig
    np.testing.assert_allclose(to_np(layer.weight.detach()), W)
    with pytest.raises(ValueError):
        parametrize.register_parametrization(layer, "nothing", Symmetric())


def test_hook_based_weight_norm():
    torch.manual_seed(0)
    m = nn.utils.weight_norm(nn.Linear(5, 4))
    assert [n for n, _ in m.named_parameters()] == ["bias", "weight_g", "weight_v"]
    assert tuple(m.weight_g.shape) == (4, 1)
    w = to_np(m.weight_v) * to_np(m.weight_g) / np.linalg.norm(to_np(m.weight_v), axis=1,
                                                                  keepdims=True)
    np.testing.assert_allclose(to_np(m.weight), w, rtol=1e-6)     # recomputed before forward
    x = torch.ones(2, 5)
    m(x).sum().backward()
    assert m.weight_g.grad is not None and m.weight_v.grad is not None
    with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks"):
        nn.utils.weight_norm(m)
    y = m(x)
    nn.utils.remove_weight_norm(m)
    assert [n for n, _ in m.named_parameters()] == ["bias", "weight"]
    np.testing.assert_allclose(to_np(m(x)), to_np(y), rtol=1e-6)
    assert nn.utils.weight_norm(nn.Conv2d(2, 3, 3), dim=None).weight_g.shape == ()


def test_parametrize_cached_reuses_the_tensor():
    class Double(nn.Module):
        def forward(self, x):
            return x * 2
    m = nn.Linear(3, 3)
    parametrize.register_parametrization(m, "weight", Double())
    with parametrize.cached():
        a = m.weight
        with parametrize.cached():
            assert m.weight is a
        assert m.weight is a
    assert m.weight is not m.weight
    assert torch.equal(m.weight, a)


def test_parametrize_shape_and_right_inverse_errors():
    class First(nn.Module):
        def forward(self, x):
            return x[0]
    m = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="may not change the shape"):
        parametrize.register_parametrization(m, "weight", First())
    assert not parametrize.is_parametrized(m)
    parametrize.register_parametrization(m, "weight", First(), unsafe=True)
    assert m.weight.shape == (2,)

    class Double(nn.Module):
        def forward(self, x):
            return x * 2
    m = nn.Linear(2, 2)
    parametrize.register_parametrization(m, "weight", Double())
    with pytest.raises(ValueError, match="may not change the shape"):
        parametrize.register_parametrization(m, "weight", First())
    assert len(m.parametrizations.weight) == 1
    with pytest.raises(RuntimeError, match="Double does not implement right_inverse"):
        m.weight = torch.zeros(2, 2)


def test_vector_to_parameters_slices_like_torch():
    m = nn.Linear(2, 3)
    vector_to_parameters(torch.arange(12.), m.parameters())      # a longer vec: tail unused
    assert m.weight.tolist() == [[0., 1.], [2., 3.], [4., 5.]]
    assert m.bias.tolist() == [6., 7., 8.]
    with pytest.raises(RuntimeError, match="invalid for input of size 5"):
        vector_to_parameters(torch.arange(5.), m.parameters())
    v = torch.zeros(9, dtype=torch.float64)
    vector_to_parameters(v, m.parameters())
    assert m.weight.dtype == torch.float64      # param.data = ... takes vec's dtype
    v[0] = 5.
    assert m.weight[0, 0].item() == 5.          # and is a view of vec


# ---- parametrizations.orthogonal -------------------------------------------------------------

def _np_orth_qr(w):
    """NumPy reference of the initial weight: the Q of w = QR (w tall; a wide w transposed)
    with R's diagonal made real and non-negative."""
    wide = w.shape[-2] < w.shape[-1]
    a = np.swapaxes(w, -1, -2) if wide else w
    q, r = np.linalg.qr(a)
    d = np.diagonal(r, 0, -2, -1)
    q = q * (d / np.abs(d))[..., None, :]
    return np.swapaxes(q, -1, -2) if wide else q


def _orth_err(w):
    w = np.asarray(w, np.complex128)
    if w.shape[-2] < w.shape[-1]:
        w = np.swapaxes(w, -1, -2)
    k = w.shape[-1]
    return np.abs(np.swapaxes(w, -1, -2).conj() @ w - np.eye(k)).max()


def _weighted(shape, dtype=np.float64, seed=0):
    r = np.random.default_rng(seed)
    w = r.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        w = w + 1j * r.standard_normal(shape)
    m = nn.Module()
    m.weight = nn.Parameter(torch.tensor(w.astype(dtype)))
    return m, w


@pytest.mark.parametrize("shape, dtype", [((4, 4), np.float64), ((5, 3), np.float64),
                                          ((3, 5), np.float32), ((2, 4, 3), np.float64),
                                          ((3, 3), np.complex128), ((4, 2), np.complex64)])
def test_orthogonal_default_starts_from_the_weights_qr(shape, dtype):
    # use_trivialization=True: the weight's orthogonalised QR factor is kept in `base`, the
    # original becomes -I (PyTorch's layout of the state)
    m, w = _weighted(shape, dtype, seed=len(shape) + shape[0])
    parametrizations.orthogonal(m)
    tol = 1e-5 if dtype in (np.float32, np.complex64) else 1e-12
    np.testing.assert_allclose(to_np(m.weight), _np_orth_qr(w), rtol=tol, atol=tol)
    assert _orth_err(to_np(m.weight)) < 10 * tol
    assert m.weight.dtype == m.parametrizations.weight.original.dtype
    neg_id = -np.broadcast_to(np.eye(shape[-2], shape[-1]), shape)
    np.testing.assert_array_equal(to_np(m.parametrizations.weight.original), neg_id)
    assert list(m.state_dict()) == ["parametrizations.weight.original",
                                    "parametrizations.weight.0.base"]
    # an orthogonal weight is kept as it is
    q = _np_orth_qr(w)
    m2 = nn.Module()
    m2.weight = nn.Parameter(torch.tensor(q.astype(dtype)))
    parametrizations.orthogonal(m2)
    np.testing.assert_allclose(to_np(m2.weight), q.astype(dtype), rtol=tol, atol=tol)


def _np_maps(x, omap):
    """PyTorch's maps in NumPy/SciPy on a tall x: the skew-symmetric A from x's lower
    triangle through expm or the Cayley transform, or x's Householder reflectors."""
    import scipy.linalg as sl
    n, k = x.shape
    if omap == "householder":
        q = np.eye(n)
        for i in range(k):
            v = np.tril(x, -1)[:, i].copy()
            v[i] = 1.0
            tau = 2.0 / (1.0 + np.sum(np.tril(x, -1)[:, i] ** 2))
            q = q @ (np.eye(n) - tau * np.outer(v, v))
        return q[:, :k] * np.trunc(np.diagonal(x))[None, :]
    y = np.concatenate([np.tril(x), np.zeros((n, n - k))], axis=1)
    a = y - y.conj().T
    if omap == "matrix_exp":
        return sl.expm(a)[:, :k]
    eye = np.eye(n)
    return np.linalg.solve(eye - a / 2, eye + a / 2)[:, :k]


@pytest.mark.parametrize("omap", ["matrix_exp", "cayley", "householder"])
@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5)])
def test_orthogonal_maps_match_numpy_formulas_and_gradcheck(omap, shape):
    m, w = _weighted(shape, seed=3)
    parametrizations.orthogonal(m, orthogonal_map=omap, use_trivialization=False)
    orig = to_np(m.parametrizations.weight.original).copy()
    if omap == "householder":
        # right_inverse put the weight's QR reflectors there: the weight is its Q factor
        assert_close(m.weight, _np_orth_qr(w), rtol=1e-10, atol=1e-12)
    else:
        # no right_inverse for these maps (PyTorch's): the original is the weight itself
        np.testing.assert_array_equal(orig, w)
    wide = shape[0] < shape[1]
    x = orig.T if wide else orig
    want = _np_maps(x, omap)
    assert_close(m.weight, want.T if wide else want, rtol=1e-10, atol=1e-12)
    assert _orth_err(to_np(m.weight)) < 1e-12
    assert list(m.state_dict()) == ["parametrizations.weight.original"]
    # the map's gradient (householder reads only the trunc of the diagonal, +-1: +-1.5 keeps the
    # finite differences away from trunc's jumps at +-1)
    orth = m.parametrizations.weight[0]
    if omap == "householder":
        k = min(shape)
        orig[np.arange(k), np.arange(k)] *= 1.5
    assert torch.autograd.gradcheck(orth, (torch.tensor(orig, requires_grad=True),))


@pytest.mark.parametrize("omap", [None, "cayley", "householder"])
def test_orthogonal_training_keeps_the_weight_orthogonal(omap):
    torch.manual_seed(0)
    lin = parametrizations.orthogonal(nn.Linear(3, 6), orthogonal_map=omap)
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.standard_normal((8, 3)).astype(np.float32))
    y = torch.tensor(rng.standard_normal((8, 6)).astype(np.float32))
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = ((lin(x) - y) ** 2).mean()
        loss.backward()
        g = lin.parametrizations.weight.original.grad
        assert g is not None and np.abs(to_np(g)).max() > 0
        opt.step()
        losses.append(loss.item())
        assert _orth_err(to_np(lin.weight)) < 1e-5
    assert losses[-1] < losses[0]
    assert [n for n, _ in lin.named_parameters()] == ["bias", "parametrizations.weight.original"]


def test_orthogonal_complex_weight_becomes_unitary_and_trains():
    m, w = _weighted((4, 4), np.complex128, seed=9)
    parametrizations.orthogonal(m, orthogonal_map="cayley")
    x = torch.tensor(np.random.default_rng(2).standard_normal((4, 2)) + 0j)
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        (m.weight @ x).real.sum().backward()
        opt.step()
        assert _orth_err(to_np(m.weight)) < 1e-12


def test_orthogonal_assigning_an_orthogonal_matrix():
    q = np.linalg.qr(np.random.default_rng(4).standard_normal((5, 5)))[0][:, :3]
    for omap, triv in (("matrix_exp", True), ("householder", True), ("householder", False)):
        m, _ = _weighted((5, 3), seed=5)
        parametrizations.orthogonal(m, orthogonal_map=omap, use_trivialization=triv)
        m.weight = torch.tensor(q)
        assert_close(m.weight, q, rtol=1e-12, atol=1e-12)


def test_orthogonal_bad_input_raises_as_pytorch():
    m, w = _weighted((3,))
    with pytest.raises(ValueError, match="Expected a matrix or batch of matrices. Got a tensor "
                                         "of 1 dimensions."):
        parametrizations.orthogonal(m)
    assert not parametrize.is_parametrized(m)
    np.testing.assert_array_equal(to_np(m.weight), w)
    m, _ = _weighted((3, 3))
    with pytest.raises(ValueError, match='orthogonal_map has to be one of "matrix_exp", '
                                         '"cayley", "householder". Got: qr'):
        parametrizations.orthogonal(m, orthogonal_map="qr")
    with pytest.raises(ValueError, match="has no parameter or buffer with name 'bias'"):
        parametrizations.orthogonal(m, name="bias")
    mc, _ = _weighted((3, 3), np.complex128)
    with pytest.raises(ValueError, match="householder parametrization does not support complex"):
        parametrizations.orthogonal(mc, orthogonal_map="householder")
    parametrizations.orthogonal(m)
    before = to_np(m.weight).copy()
    with pytest.raises(ValueError, match=r"Expected a matrix or batch of matrices of shape "
                                         r"torch.Size\(\[3, 3\]\). Got a tensor of shape "
                                         r"torch.Size\(\[2, 2\]\)"):
        m.weight = torch.zeros(2, 2, dtype=torch.float64)
    np.testing.assert_array_equal(to_np(m.weight), before)
    m2, _ = _weighted((3, 3))
    parametrizations.orthogonal(m2, use_trivialization=False)
    with pytest.raises(NotImplementedError, match="not possible to assign to the matrix "
                                                  "exponential or the Cayley"):
        m2.weight = torch.eye(3, dtype=torch.float64)
