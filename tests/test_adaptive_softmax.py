"""nn.AdaptiveLogSoftmaxWithLoss: torch 2.13's parameter layout and seeded initial weights
(values printed by torch, hard-coded), forward/log_prob/predict against a NumPy float64
reference built from the module's own weights, gradients by finite differences, errors."""
import numpy as np
import pytest

import framework as torch
from framework import nn
from framework.autograd import gradcheck
from conftest import to_np


def _ref_log_prob(m, x):
    """Full log-distribution in float64: shortlist from the head, cluster classes as
    log p(cluster) + log p(class | cluster)."""
    def lsm(a):
        a = a - a.max(1, keepdims=True)
        return a - np.log(np.exp(a).sum(1, keepdims=True))
    W = lambda lin: to_np(lin.weight).astype(np.float64)           # noqa: E731
    h = x @ W(m.head).T
    if m.head.bias is not None:
        h = h + to_np(m.head.bias)
    hl = lsm(h)
    parts = [hl[:, :m.shortlist_size]]
    for i, (i2h, h2o) in enumerate(m.tail):
        parts.append(lsm(x @ W(i2h).T @ W(h2o).T) + hl[:, m.shortlist_size + i:][:, :1])
    return np.concatenate(parts, 1)


def test_layout_and_seeded_weights_equal_torch():
    torch.manual_seed(0)
    m = nn.AdaptiveLogSoftmaxWithLoss(8, 10, [3, 6], div_value=2.0)
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == [
        ("head.weight", (5, 8)), ("tail.0.0.weight", (4, 8)), ("tail.0.1.weight", (3, 4)),
        ("tail.1.0.weight", (2, 8)), ("tail.1.1.weight", (4, 2))]
    assert m.cutoffs == [3, 6, 10] and m.shortlist_size == 3 and m.n_clusters == 2
    assert m.head_size == 5
    assert repr(m).splitlines()[:5] == [
        "AdaptiveLogSoftmaxWithLoss(",
        "  (head): Linear(in_features=8, out_features=5, bias=False)",
        "  (tail): ModuleList(",
        "    (0): Sequential(",
        "      (0): Linear(in_features=8, out_features=4, bias=False)"]
    # torch.manual_seed(0); the same constructor in torch 2.13
    np.testing.assert_allclose(
        to_np(m.head.weight[0]),
        [-0.0026469905860722065, 0.18966144323349, -0.2909903824329376, -0.26019373536109924,
         -0.13617262244224548, 0.0948079451918602, -0.007005016785115004, 0.28032875061035156],
        rtol=0, atol=1e-7)
    np.testing.assert_allclose(
        to_np(m.tail[1][1].weight),
        [[0.6652101874351501, 0.47646117210388184], [-0.30831632018089294, -0.17796801030635834],
         [-0.6735885739326477, -0.012709634378552437], [-0.5324930548667908, -0.5454315543174744]],
        rtol=0, atol=1e-7)
    # forward on torch's x (torch.randn(5, 8, generator=Generator().manual_seed(1)))
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(1))
    o = m(x, torch.tensor([0, 4, 9, 2, 7]))
    assert type(o).__name__ == "_ASMoutput" and o._fields == ("output", "loss")
    np.testing.assert_allclose(to_np(o.output), [-1.8149893283843994, -3.422614574432373,
                                                 -2.7071428298950195, -2.7656991481781006,
                                                 -3.4121556282043457], atol=1e-5)
    np.testing.assert_allclose(o.loss.item(), 2.8245203495025635, atol=1e-5)
    o.loss.backward()
    np.testing.assert_allclose(
        to_np(m.tail[0][0].weight.grad[0]),
        [0.02060331031680107, -0.00878708902746439, 0.022488757967948914, 0.00727494154125452,
         0.00643058679997921, -0.048810478299856186, -0.006608650088310242,
         -0.013529329560697079], atol=1e-6)
    assert to_np(m.predict(x)).tolist() == [1, 2, 2, 5, 2]
    # head_bias adds head.bias; div_value shrinks tail projections down to zero width
    m2 = nn.AdaptiveLogSoftmaxWithLoss(8, 10, [3, 6], head_bias=True)
    assert [(k, tuple(v.shape)) for k, v in m2.state_dict().items()] == [
        ("head.weight", (5, 8)), ("head.bias", (5,)), ("tail.0.0.weight", (2, 8)),
        ("tail.0.1.weight", (3, 2)), ("tail.1.0.weight", (0, 8)), ("tail.1.1.weight", (4, 0))]
    m3 = nn.AdaptiveLogSoftmaxWithLoss(4, 6, (2,), dtype=torch.float64)
    assert m3.head.weight.dtype == torch.float64


def test_forward_log_prob_predict_match_numpy():
    torch.manual_seed(3)
    m = nn.AdaptiveLogSoftmaxWithLoss(16, 20, [4, 9, 15], div_value=2.0, head_bias=True,
                                      dtype=torch.float64)
    xn = np.random.default_rng(0).standard_normal((12, 16)) * 3
    x = torch.tensor(xn)
    ref = _ref_log_prob(m, xn)
    lp = m.log_prob(x)
    assert lp.shape == (12, 20)
    np.testing.assert_allclose(to_np(lp), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.exp(ref).sum(1), 1.0, rtol=1e-12)
    t = np.array([0, 3, 4, 8, 9, 14, 15, 19, 2, 11, 17, 5])          # every cluster
    o = m(x, torch.tensor(t))
    np.testing.assert_allclose(to_np(o.output), ref[np.arange(12), t], rtol=1e-12)
    np.testing.assert_allclose(o.loss.item(), -ref[np.arange(12), t].mean(), rtol=1e-12)
    assert to_np(m.predict(x)).tolist() == ref.argmax(1).tolist()
    # rows only in the shortlist, and rows all outside it, take predict's other two branches
    for rows in (np.where(ref.argmax(1) < 4)[0], np.where(ref.argmax(1) >= 4)[0]):
        if rows.size:
            assert to_np(m.predict(x[torch.tensor(rows)])).tolist() == \
                ref[rows].argmax(1).tolist()
    # unbatched: 1-D input with a 0-D target; a batch of one (row index squeezes to 0-D)
    o1 = m(x[5], torch.tensor(14))
    assert o1.output.shape == () and abs(o1.output.item() - ref[5, 14]) < 1e-12
    ob = m(x[5:6], torch.tensor([14]))
    assert ob.output.shape == (1,) and abs(ob.loss.item() + ref[5, 14]) < 1e-12


def test_gradients_by_finite_differences():
    torch.manual_seed(1)
    m = nn.AdaptiveLogSoftmaxWithLoss(6, 9, [2, 5], div_value=1.5, head_bias=True,
                                      dtype=torch.float64)
    t = torch.tensor([0, 3, 8, 1, 6, 4])
    names = [n for n, _ in m.named_parameters()]

    def f(x, *params):
        saved = {n: p for n, p in m.named_parameters()}
        try:
            for n, p in zip(names, params):      # swap the parameters for gradcheck's inputs
                mod, attr = m.get_submodule(n.rsplit(".", 1)[0]), n.rsplit(".", 1)[1]
                mod._parameters[attr] = p
            o = m(x, t)
            return o.loss, o.output, m.log_prob(x)
        finally:
            for n, p in saved.items():
                mod, attr = m.get_submodule(n.rsplit(".", 1)[0]), n.rsplit(".", 1)[1]
                mod._parameters[attr] = p
    x = torch.tensor(np.random.default_rng(2).standard_normal((6, 6)), requires_grad=True)
    ps = [p.detach().clone().requires_grad_(True) for p in m.parameters()]
    assert gradcheck(f, [x] + ps)


def test_errors_like_torch():
    with pytest.raises(ValueError, match="cutoffs should be a sequence of length larger than 0"):
        nn.AdaptiveLogSoftmaxWithLoss(4, 10, [])
    msg = ("cutoffs should be a sequence of unique, positive integers sorted in an increasing "
           "order, where each value is between 1 and n_classes-1")
    for bad in ([5, 3], [0, 3], [3, 10], [3, 3], [2.5, 4]):
        with pytest.raises(ValueError) as e:
            nn.AdaptiveLogSoftmaxWithLoss(4, 10, bad)
        assert str(e.value) == msg
    m = nn.AdaptiveLogSoftmaxWithLoss(4, 10, [3, 6])
    x = torch.randn(3, 4)
    with pytest.raises(RuntimeError) as e:
        m(x, torch.tensor([0, 10, -1]))
    assert str(e.value) == ("Target values should be in [0, 9], but values in range [-1, 10] "
                            "were found. ")
    cases = [
        (lambda: m(x, torch.tensor([0, 1])),
         "Input and target should have the same size in the batch dimension."),
        (lambda: m(torch.randn(3, 4, 2), torch.tensor([0, 1, 2])),
         "1D target tensor expects 2D input tensors, but found inputs with size "
         "torch.Size([3, 4, 2])"),
        (lambda: m(x, torch.tensor(1)),
         "0D target tensor expects 1D input tensors, but found inputs with size "
         "torch.Size([3, 4])"),
        (lambda: m(x, torch.zeros(3, 1, dtype=torch.int64)),
         "0D or 1D target tensor expected, multi-target not supported"),
    ]
    for f, want in cases:
        with pytest.raises(RuntimeError) as e:
            f()
        assert str(e.value) == want
