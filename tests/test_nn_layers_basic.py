"""Basic layers and activations against NumPy float64 references; gradcheck; reprs; errors."""
import math

import numpy as np
import pytest

import framework as torch
from framework import nn
import framework.nn.functional as F
from framework.autograd import gradcheck
from conftest import assert_close, to_np

X = np.array([[-3.5, -1.0, -0.2, 0.0], [0.3, 1.0, 2.5, 7.0]])


def _erf(a):
    return np.vectorize(math.erf)(a)


def _sig(a):
    return 1 / (1 + np.exp(-a))


SELU_A, SELU_S = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
REFS = [
    (nn.ReLU(), lambda a: np.maximum(a, 0)),
    (nn.ReLU6(), lambda a: np.clip(a, 0, 6)),
    (nn.LeakyReLU(0.1), lambda a: np.where(a > 0, a, 0.1 * a)),
    (nn.ELU(alpha=0.5), lambda a: np.where(a > 0, a, 0.5 * np.expm1(a))),
    (nn.SELU(), lambda a: SELU_S * np.where(a > 0, a, SELU_A * np.expm1(a))),
    (nn.CELU(2.0), lambda a: np.where(a > 0, a, 2.0 * np.expm1(a / 2.0))),
    (nn.GELU(), lambda a: 0.5 * a * (1 + _erf(a / np.sqrt(2)))),
    (nn.GELU("tanh"), lambda a: 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a ** 3)))),
    (nn.SiLU(), lambda a: a * _sig(a)),
    (nn.Mish(), lambda a: a * np.tanh(np.log1p(np.exp(a)))),
    (nn.Sigmoid(), _sig),
    (nn.Tanh(), np.tanh),
    (nn.Hardtanh(-2.0, 2.0), lambda a: np.clip(a, -2, 2)),
    (nn.Hardsigmoid(), lambda a: np.clip(a / 6 + 0.5, 0, 1)),
    (nn.Hardswish(), lambda a: a * np.clip(a + 3, 0, 6) / 6),
    (nn.Softplus(beta=2.0, threshold=5.0), lambda a: np.where(2 * a > 5, a, np.log1p(np.exp(2 * a)) / 2)),
    (nn.Softsign(), lambda a: a / (1 + np.abs(a))),
    (nn.Threshold(0.1, 20.0), lambda a: np.where(a > 0.1, a, 20.0)),
    (nn.LogSigmoid(), lambda a: -np.log1p(np.exp(-a))),
    (nn.Tanhshrink(), lambda a: a - np.tanh(a)),
    (nn.Softshrink(0.5), lambda a: np.where(a > 0.5, a - 0.5, np.where(a < -0.5, a + 0.5, 0))),
    (nn.Hardshrink(0.5), lambda a: np.where(np.abs(a) > 0.5, a, 0)),
    (nn.PReLU(), lambda a: np.where(a > 0, a, 0.25 * a)),
    (nn.RReLU(0.1, 0.3).eval(), lambda a: np.where(a >= 0, a, 0.2 * a)),
    (nn.Softmax(dim=1), lambda a: np.exp(a) / np.exp(a).sum(1, keepdims=True)),
    (nn.Softmin(dim=1), lambda a: np.exp(-a) / np.exp(-a).sum(1, keepdims=True)),
    (nn.LogSoftmax(dim=1), lambda a: a - np.log(np.exp(a).sum(1, keepdims=True))),
    (nn.GLU(), lambda a: a[:, :2] * _sig(a[:, 2:])),
]


@pytest.mark.parametrize("mod,ref", REFS, ids=[type(m).__name__ + str(i) for i, (m, _) in enumerate(REFS)])
def test_activation_values_and_grads(mod, ref):
    x = torch.tensor(X, dtype=torch.float64)
    assert_close(mod.double()(x), ref(X), rtol=1e-10, atol=1e-12)
    xs = torch.tensor(X + 0.013, dtype=torch.float64, requires_grad=True)   # away from kinks
    assert gradcheck(lambda t: mod(t), (xs,))


def test_activation_reprs():
    got = [repr(m) for m in (nn.ReLU(), nn.ReLU(inplace=True), nn.LeakyReLU(), nn.Softmax(dim=1),
                             nn.ELU(), nn.GELU(), nn.GELU("tanh"), nn.Hardtanh(), nn.ReLU6(),
                             nn.PReLU(), nn.Softplus(), nn.Threshold(0.1, 20), nn.Sigmoid(),
                             nn.GLU(), nn.RReLU(), nn.Hardshrink(), nn.CELU(), nn.SiLU())]
    assert got == ["ReLU()", "ReLU(inplace=True)", "LeakyReLU(negative_slope=0.01)",
                   "Softmax(dim=1)", "ELU(alpha=1.0)", "GELU(approximate='none')",
                   "GELU(approximate='tanh')", "Hardtanh(min_val=-1.0, max_val=1.0)", "ReLU6()",
                   "PReLU(num_parameters=1)", "Softplus(beta=1.0, threshold=20.0)",
                   "Threshold(threshold=0.1, value=20)", "Sigmoid()", "GLU(dim=-1)",
                   "RReLU(lower=0.125, upper=0.3333333333333333)", "Hardshrink(0.5)",
                   "CELU(alpha=1.0)", "SiLU()"]


def test_softmax_seed_example():
    m = nn.Softmax(dim=0)
    out = m(torch.tensor([[2., 2., 2., 2.], [3., 3., 3., 3.]]))
    assert str(out) == "tensor([[0.2689, 0.2689, 0.2689, 0.2689],\n        [0.7311, 0.7311, 0.7311, 0.7311]])"


def test_inplace_activations_and_errors():
    x = torch.tensor([-1.0, 2.0])
    r = nn.ReLU(inplace=True)(x)
    assert r is x and x.tolist() == [0.0, 2.0]
    y = torch.tensor([-2.0, 0.5])
    F.leaky_relu_(y, 0.5)
    assert y.tolist() == [-1.0, 0.5]
    leaf = torch.tensor([-1.0, 1.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        F.relu(leaf, inplace=True)
    assert leaf.tolist() == [-1.0, 1.0]
    with pytest.raises(RuntimeError):
        F.glu(torch.ones(2, 3))
    with pytest.raises(RuntimeError):
        F.gelu(torch.ones(2), approximate="fast")
    with pytest.raises(RuntimeError):
        nn.PReLU(3)(torch.ones(2, 4))


def test_float_only_activations_reject_integer_inputs():
    # PyTorch's CPU kernels for these exist only for floating dtypes: NotImplementedError
    ints = torch.tensor([-1, 2, 3, 4])
    for f in (F.gelu, F.leaky_relu, F.elu, F.selu, F.celu, F.silu, F.softplus, F.mish,
              F.hardswish, F.hardsigmoid, F.hardshrink, F.softshrink, F.logsigmoid, F.glu,
              F.rrelu):
        with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
            f(ints)
    with pytest.raises(NotImplementedError, match="'Bool'"):
        F.gelu(torch.tensor([True, False]))
    with pytest.raises(NotImplementedError):
        nn.Hardswish()(ints)
    # these are defined for integers and keep the dtype
    assert F.relu(ints).tolist() == [0, 2, 3, 4] and F.relu(ints).dtype == torch.int64
    assert F.hardtanh(ints).tolist() == [-1, 1, 1, 1]
    assert F.relu6(ints).tolist() == [0, 2, 3, 4]
    assert F.threshold(ints, 0, 1).tolist() == [1, 2, 3, 4]
    assert_close(F.softsign(ints), np.array([-0.5, 2 / 3, 0.75, 0.8]))
    assert F.softsign(ints).dtype == torch.float32


def test_prelu_channels_gradcheck():
    m = nn.PReLU(3).double()
    with torch.no_grad():
        m.weight.copy_(torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64))
    x = np.array([[[-1.0, 2.0], [-3.0, 0.5], [1.0, -2.0]]])
    assert_close(m(torch.tensor(x)), np.where(x > 0, x, np.array([0.1, 0.2, 0.3])[:, None] * x))
    xt = torch.tensor(x + 0.01, requires_grad=True)
    assert gradcheck(lambda t, w: F.prelu(t, w), (xt, m.weight))


def test_linear_fixed_weights_and_gradcheck():
    lin = nn.Linear(3, 2).double()
    W = np.array([[1., -2., 0.5], [0.25, 3., -1.]])
    b = np.array([0.1, -0.2])
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(W))
        lin.bias.copy_(torch.tensor(b))
    x = np.arange(12.0).reshape(2, 2, 3) / 7
    assert_close(lin(torch.tensor(x)), x @ W.T + b, rtol=1e-12)
    assert_close(lin(torch.tensor(x[0, 0])), x[0, 0] @ W.T + b, rtol=1e-12)
    xt = torch.tensor(x[0], requires_grad=True)
    assert gradcheck(lambda t, w, bb: F.linear(t, w, bb), (xt, lin.weight, lin.bias))
    assert gradcheck(lambda t, w: F.linear(t, w), (torch.tensor(x, requires_grad=True), lin.weight))
    nb = nn.Linear(3, 2, bias=False)
    assert nb.bias is None and repr(nb) == "Linear(in_features=3, out_features=2, bias=False)"


def test_linear_wrong_feature_size():
    lin = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        lin(torch.ones(4, 5))
    with pytest.raises(RuntimeError):
        lin(torch.ones(4, 3, dtype=torch.float64))


def test_linear_default_init_bounds():
    torch.manual_seed(3)
    lin = nn.Linear(50, 40)
    w, b = to_np(lin.weight), to_np(lin.bias)
    bound = 1 / np.sqrt(50)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.9 * bound           # actually spread over the range
    assert abs(w.std() - bound / np.sqrt(3)) < 0.01 # U(-b, b) has std b/sqrt(3)


def test_bilinear():
    m = nn.Bilinear(2, 3, 2).double()
    a = np.array([[1.0, -2.0], [0.5, 0.25]])
    c = np.array([[0.3, 1.0, -1.0], [2.0, 0.0, 1.0]])
    W, b = to_np(m.weight), to_np(m.bias)
    assert_close(m(torch.tensor(a), torch.tensor(c)), np.einsum("ni,oij,nj->no", a, W, c) + b,
                 rtol=1e-12)
    assert gradcheck(lambda x, y, w, bb: F.bilinear(x, y, w, bb),
                     (torch.tensor(a, requires_grad=True), torch.tensor(c, requires_grad=True),
                      m.weight, m.bias))
    assert repr(m) == "Bilinear(in1_features=2, in2_features=3, out_features=2, bias=True)"
    with pytest.raises(RuntimeError):
        m(torch.ones(2, 3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64))


def test_identity_flatten_unflatten():
    x = torch.arange(24.).reshape(2, 3, 4)
    assert nn.Identity(54, unused="x")(x) is x
    assert nn.Flatten()(x).shape == torch.Size([2, 12])
    assert nn.Flatten(0, 1)(x).shape == torch.Size([6, 4])
    u = nn.Unflatten(1, (2, 6))(nn.Flatten()(x))
    assert u.shape == torch.Size([2, 2, 6]) and u.tolist() == to_np(x).reshape(2, 2, 6).tolist()
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(nn.Unflatten(1, (2, 6))) == "Unflatten(dim=1, unflattened_size=(2, 6))"


def test_dropout_train_eval_scaling():
    torch.manual_seed(0)
    d = nn.Dropout(p=0.25)
    x = torch.ones(2000)
    y = to_np(d(x))
    assert set(np.unique(y).tolist()) <= {0.0, float(np.float32(1 / 0.75))}
    assert abs((y == 0).mean() - 0.25) < 0.04
    d.eval()
    assert d(x) is x
    assert repr(d) == "Dropout(p=0.25, inplace=False)"
    with pytest.raises(ValueError):
        nn.Dropout(1.5)
    xt = torch.ones(10, requires_grad=True)
    out = nn.Dropout(0.5)(xt)
    out.sum().backward()
    np.testing.assert_array_equal(to_np(xt.grad), to_np(out.detach()))   # grad == mask/(1-p)
    assert (to_np(nn.Dropout(1.0)(torch.ones(5))) == 0).all()


def test_dropout2d_channels_and_alpha():
    torch.manual_seed(1)
    y = to_np(nn.Dropout2d(0.5)(torch.ones(4, 8, 3, 3)))
    per_channel = y.reshape(4, 8, 9)
    assert (per_channel.min(-1) == per_channel.max(-1)).all()       # whole channels
    assert set(np.unique(y).tolist()) <= {0.0, 2.0}
    with pytest.raises(RuntimeError):
        F.dropout2d(torch.ones(2), 0.5)
    torch.manual_seed(2)
    z = to_np(nn.AlphaDropout(0.2)(torch.randn(20000)))
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05        # keeps self-normalisation
    assert nn.AlphaDropout(0.2).eval()(torch.ones(3)).tolist() == [1.0, 1.0, 1.0]


def test_embedding_padding_and_max_norm():
    torch.manual_seed(0)
    e = nn.Embedding(10, 3, padding_idx=0)
    assert repr(e) == "Embedding(10, 3, padding_idx=0)"
    assert (to_np(e.weight)[0] == 0).all()
    x = torch.tensor([[0, 2, 2], [1, 0, 9]])
    y = e(x)
    assert y.shape == torch.Size([2, 3, 3]) and y.grad_fn.name() == "EmbeddingBackward0"
    np.testing.assert_array_equal(to_np(y), to_np(e.weight)[to_np(x)])
    y.sum().backward()
    g = to_np(e.weight.grad)
    expect = np.zeros((10, 3))
    expect[1] = 1
    expect[2] = 2
    expect[9] = 1
    np.testing.assert_array_equal(g, expect)
    w = np.array([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]])
    e2 = nn.Embedding.from_pretrained(torch.tensor(w), max_norm=1.0)
    assert not e2.weight.requires_grad
    out = e2(torch.tensor([0, 1]))
    assert_close(out, [[0.6, 0.8], [0.3, 0.4]], rtol=1e-6)
    assert_close(e2.weight, [[0.6, 0.8], [0.3, 0.4], [6.0, 8.0]], rtol=1e-6)   # row 2 untouched
    with pytest.raises(IndexError):
        e(torch.tensor([10]))
    with pytest.raises(RuntimeError):
        e(torch.tensor([1.0]))
    with pytest.raises(AssertionError):
        nn.Embedding(3, 2, padding_idx=5)


def test_embedding_gradcheck():
    w = torch.tensor(np.random.default_rng(0).normal(size=(5, 2)), requires_grad=True)
    idx = torch.tensor([[1, 3], [3, 4]])
    assert gradcheck(lambda ww: F.embedding(idx, ww), (w,))   # padding_idx breaks it by design


def test_one_hot_normalize_distances():
    oh = F.one_hot(torch.tensor([0, 2, 1]))
    assert oh.dtype is torch.int64 and oh.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert F.one_hot(torch.tensor([1]), 4).tolist() == [[0, 1, 0, 0]]
    with pytest.raises(RuntimeError):
        F.one_hot(torch.tensor([3]), 2)
    with pytest.raises(RuntimeError):
        F.one_hot(torch.tensor([-1]))
    a = np.array([[3.0, 4.0], [1.0, 0.0]])
    b = np.array([[1.0, 1.0], [0.0, 2.0]])
    assert_close(F.normalize(torch.tensor(a)), a / np.linalg.norm(a, axis=1, keepdims=True))
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert_close(nn.CosineSimilarity()(torch.tensor(a), torch.tensor(b)), cos, rtol=1e-12)
    pd = np.linalg.norm(a - b + 1e-6, axis=1)
    assert_close(nn.PairwiseDistance()(torch.tensor(a), torch.tensor(b)), pd, rtol=1e-12)
    assert_close(nn.PairwiseDistance(p=1, keepdim=True)(torch.tensor(a), torch.tensor(b)),
                 np.abs(a - b + 1e-6).sum(1, keepdims=True), rtol=1e-12)
    assert gradcheck(lambda x, y: F.cosine_similarity(x, y),
                     (torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)))


def test_against_torch_activations():
    real = pytest.importorskip("torch")
    x = np.linspace(-4, 4, 17)
    for name in ("gelu", "silu", "mish", "hardswish", "hardsigmoid", "softplus", "elu", "selu",
                 "logsigmoid"):
        ours = getattr(F, name)(torch.tensor(x))
        theirs = getattr(real.nn.functional, name)(real.tensor(x)).numpy()
        np.testing.assert_allclose(to_np(ours), theirs, rtol=1e-12, atol=1e-14)
