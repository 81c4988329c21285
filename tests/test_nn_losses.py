"""Every loss against NumPy float64 references for each reduction/option; errors."""
import re

import numpy as np
import pytest

import framework as torch
from framework import nn
import framework.nn.functional as F
from framework.autograd import gradcheck
from conftest import assert_close, to_np

R = np.random.default_rng(0)
A = R.normal(size=(4, 3))
B = R.normal(size=(4, 3))
RED = {"none": lambda l: l, "mean": np.mean, "sum": np.sum}


def T(a, rg=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=rg)


def _logsm(x, axis=1):
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


@pytest.mark.parametrize("red", ["none", "mean", "sum"])
def test_pointwise_regression_losses(red):
    d = A - B
    assert_close(F.mse_loss(T(A), T(B), reduction=red), RED[red](d ** 2), rtol=1e-12)
    assert_close(F.l1_loss(T(A), T(B), reduction=red), RED[red](np.abs(d)), rtol=1e-12)
    for beta in (0.5, 1.0, 0.0):
        z = np.abs(d)
        ref = z if beta == 0 else np.where(z < beta, 0.5 * z ** 2 / beta, z - 0.5 * beta)
        assert_close(F.smooth_l1_loss(T(A), T(B), reduction=red, beta=beta), RED[red](ref),
                     rtol=1e-12)
    for delta in (0.3, 1.0):
        z = np.abs(d)
        ref = np.where(z < delta, 0.5 * z ** 2, delta * (z - 0.5 * delta))
        assert_close(nn.HuberLoss(reduction=red, delta=delta)(T(A), T(B)), RED[red](ref),
                     rtol=1e-12)
    assert_close(nn.MSELoss(reduction=red)(T(A), T(B)), RED[red](d ** 2), rtol=1e-12)
    assert_close(nn.L1Loss(reduction=red)(T(A), T(B)), RED[red](np.abs(d)), rtol=1e-12)


def test_regression_grads_and_names():
    x = T(A, True)
    assert F.mse_loss(x, T(B)).grad_fn.name() == "MseLossBackward0"
    for f in (F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss):
        assert gradcheck(lambda t: f(t, T(B)), (x,))


def test_shape_mismatch_errors():
    # PyTorch warns first, then broadcasting raises (naming the first mismatched dimension)
    warn = re.escape("Using a target size (torch.Size([4, 3])) that is different to the input "
                     "size (torch.Size([2, 3]))")
    for f in (F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss):
        with pytest.warns(UserWarning, match=warn):
            with pytest.raises(RuntimeError, match=re.escape(
                    f"{f.__name__}: The size of tensor a (2) must match the size of tensor b (4) "
                    "at non-singleton dimension 0")):
                f(torch.ones(2, 3), torch.ones(4, 3))
    with pytest.warns(UserWarning):
        F.mse_loss(torch.ones(3, 1), torch.ones(3))
    with pytest.raises(ValueError):
        F.mse_loss(torch.ones(3), torch.ones(3), reduction="avg")
    with pytest.raises(RuntimeError):
        F.smooth_l1_loss(torch.ones(2), torch.ones(2), beta=-1.0)


TGT = np.array([0, 2, 1, 2])
W = np.array([0.2, 1.0, 3.0])


def _ce_ref(x, t, w=None, ignore=-100, red="mean", ls=0.0):
    lp = _logsm(x)
    c = x.shape[1]
    valid = t != ignore
    ts = np.where(valid, t, 0)
    wv = (w[ts] if w is not None else np.ones(len(t))) * valid
    nll = -lp[np.arange(len(t)), ts] * wv
    wc = w if w is not None else np.ones(c)
    smooth = -(lp * wc).sum(1) * valid
    if red == "none":
        return (1 - ls) * nll + ls / c * smooth
    if red == "sum":
        return (1 - ls) * nll.sum() + ls / c * smooth.sum()
    return (1 - ls) * nll.sum() / wv.sum() + ls / c * smooth.sum() / wv.sum() \
        if w is not None else (1 - ls) * nll.sum() / wv.sum() + ls / c * smooth.sum() / valid.sum()


@pytest.mark.parametrize("red", ["none", "mean", "sum"])
@pytest.mark.parametrize("w", [None, W])
@pytest.mark.parametrize("ignore", [-100, 2])
@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_cross_entropy_options(red, w, ignore, ls):
    got = F.cross_entropy(T(A), torch.tensor(TGT), weight=None if w is None else T(w),
                          ignore_index=ignore, reduction=red, label_smoothing=ls)
    assert_close(got, _ce_ref(A, TGT, w, ignore, red, ls), rtol=1e-10)


def test_cross_entropy_module_nll_and_grad():
    crit = nn.CrossEntropyLoss(weight=T(W), ignore_index=1)
    assert repr(crit) == "CrossEntropyLoss()"
    assert list(crit.state_dict().keys()) == ["weight"]
    x = T(A, True)
    loss = crit(x, torch.tensor(TGT))
    assert loss.grad_fn.name() == "NllLossBackward0"
    assert_close(loss, _ce_ref(A, TGT, W, 1), rtol=1e-10)
    assert gradcheck(lambda t: F.cross_entropy(t, torch.tensor(TGT), weight=T(W),
                                               label_smoothing=0.1), (x,))
    lp = F.log_softmax(T(A), 1)
    assert_close(nn.NLLLoss()(lp, torch.tensor(TGT)), _ce_ref(A, TGT), rtol=1e-10)
    # uniform logits give log(C)
    assert_close(F.cross_entropy(torch.zeros(5, 7), torch.tensor([0, 1, 2, 3, 6])), np.log(7))


def test_nll_walkthrough_value():
    picked = np.array([0.4155, 1.0945, 1.5285])
    lp = -np.array([[picked[0], 5, 5], [5, 5, picked[1]], [5, picked[2], 5]])
    assert_close(F.nll_loss(T(lp), torch.tensor([0, 2, 1])), 1.01283333, rtol=1e-6)


def test_cross_entropy_spatial_and_probabilities():
    x = R.normal(size=(2, 3, 2, 2))
    t = np.array([[[0, 1], [2, 1]], [[2, 2], [0, 1]]])
    lp = _logsm(x)
    picked = np.take_along_axis(lp, t[:, None], 1)[:, 0]
    assert_close(F.cross_entropy(T(x), torch.tensor(t), reduction="none"), -picked, rtol=1e-10)
    assert_close(F.cross_entropy(T(x), torch.tensor(t)), -picked.mean(), rtol=1e-10)
    p = np.exp(_logsm(R.normal(size=(4, 3))))
    for red in ("none", "mean", "sum"):
        ref = -(_logsm(A) * p).sum(1)
        assert_close(F.cross_entropy(T(A), T(p), reduction=red), RED[red](ref), rtol=1e-10)
    ps = p * 0.8 + 0.2 / 3
    assert_close(F.cross_entropy(T(A), T(p), label_smoothing=0.2, weight=T(W)),
                 (-(_logsm(A) * ps * W).sum(1)).mean(), rtol=1e-10)
    assert_close(F.cross_entropy(T(A[0]), torch.tensor(2)), -_logsm(A[:1])[0, 2], rtol=1e-10)


def test_cross_entropy_errors():
    x = torch.randn(3, 4)
    with pytest.raises(IndexError):
        F.cross_entropy(x, torch.tensor([0, 1, 5]))
    with pytest.raises(IndexError):
        F.nll_loss(x, torch.tensor([0, -3, 1]))
    with pytest.raises(ValueError):
        F.cross_entropy(x, torch.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="only batches of spatial targets"):
        F.cross_entropy(torch.randn(2, 3, 4, 4), torch.zeros(2, 1, 4, 4, dtype=torch.long))
    with pytest.raises(RuntimeError):
        F.nll_loss(x, torch.tensor([0., 1., 2.]))


def test_class_target_dtype_must_be_long_or_byte():
    # nll_loss/cross_entropy index targets: int64 or uint8 only, as PyTorch
    x = T(A)
    ref = F.cross_entropy(x, torch.tensor([0, 2, 1, 1]))
    lp = _logsm(A)
    assert_close(ref, -np.mean(lp[np.arange(4), [0, 2, 1, 1]]))
    assert_close(F.cross_entropy(x, torch.tensor([0, 2, 1, 1], dtype=torch.uint8)), to_np(ref))
    for d in (torch.int32, torch.int16, torch.int8, torch.bool):
        with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte"):
            F.cross_entropy(x, torch.tensor([0, 1, 1, 0], dtype=d))
        with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte"):
            F.nll_loss(x, torch.tensor([0, 1, 1, 0], dtype=d))


def test_pointwise_losses_integer_inputs():
    a, b = torch.tensor([1, 2]), torch.tensor([2.0, 4.0])
    # one floating operand: computed in the promoted float dtype
    assert_close(F.mse_loss(a, b), np.array(2.5))
    assert_close(F.mse_loss(b, a), np.array(2.5))
    assert_close(F.smooth_l1_loss(a, b), np.array(1.0))
    assert_close(F.huber_loss(b, a), np.array(1.0))
    # integer-only: no kernel (NotImplementedError); an integer input cannot hold a float loss
    for f in (F.mse_loss, F.smooth_l1_loss, F.huber_loss):
        with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
            f(a, a)
    with pytest.raises(RuntimeError, match="can't be cast"):
        F.huber_loss(a, b)
    with pytest.raises(RuntimeError, match="can't be cast"):
        F.soft_margin_loss(a, b)
    # l1 on integers is defined for 'none'/'sum' (abs of a difference)
    assert F.l1_loss(a, torch.tensor([2, 4]), reduction="sum").item() == 3


def test_nll_1d_input_with_one_element_target():
    # a (1,)-shaped target for a 1-D input is the scalar class; the loss is 0-d
    x = np.array([-1.0, -2.0, -3.0, -4.0])
    for red in ("none", "mean", "sum"):
        out = F.nll_loss(T(x), torch.tensor([1]), reduction=red)
        assert out.shape == () and out.item() == 2.0
    assert F.nll_loss(T(x), torch.tensor([1]), weight=T([1.0, 2.0, 3.0, 4.0]),
                      reduction="sum").item() == 4.0
    ce = F.cross_entropy(T(x), torch.tensor([1]), label_smoothing=0.1, reduction="none")
    lp = _logsm(x[None])[0]
    assert ce.shape == ()
    assert_close(ce, 0.9 * -lp[1] + 0.1 * -lp.mean())
    assert np.isnan(F.nll_loss(T(x), torch.tensor([-100])).item())
    with pytest.raises(ValueError, match="1D target must have size 1, but got target size: 2"):
        F.nll_loss(T(x), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="target size: 0"):
        F.cross_entropy(T(x), torch.zeros(0, dtype=torch.long))
    with pytest.raises(RuntimeError, match="multi-target not supported"):
        F.nll_loss(T(x), torch.tensor([[1]]))


def test_gaussian_nll_var_broadcasts_along_one_dim():
    # PyTorch accepts var of the input's rank with exactly one mismatched dim, of size 1
    rg = np.random.default_rng(3)
    a, b = rg.standard_normal((4, 3, 5)), rg.standard_normal((4, 3, 5))
    for vs in ((4, 3, 5), (4, 3), (4, 3, 1), (1, 3, 5), (4, 1, 5)):
        v = np.abs(rg.standard_normal(vs)) + 0.1
        vb = v[..., None] if len(vs) == 2 else v
        ref = np.mean(0.5 * (np.log(vb) + (a - b) ** 2 / vb))
        assert_close(F.gaussian_nll_loss(T(a), T(b), T(v)), ref)
    for vs in ((2, 3, 5), (1, 1, 5), (4, 3, 5, 1), (5,)):
        with pytest.raises(ValueError, match="var is of incorrect size"):
            F.gaussian_nll_loss(T(a), T(b), T(np.ones(vs)))


def test_multi_margin_and_pdist_argument_errors():
    x = T(A)   # (4, 3)
    t = torch.tensor([0, 2, 1, 1])
    with pytest.raises(RuntimeError, match="inconsistent weight size, expected 3 but got \\[2\\]"):
        F.multi_margin_loss(x, t, weight=T([1.0, 2.0]))
    with pytest.raises(ValueError, match="weight must be one-dimensional"):
        F.multi_margin_loss(x, t, weight=T(np.ones((3, 1))))
    with pytest.raises(RuntimeError, match="expected scalar type Long but found Int"):
        F.multi_margin_loss(x, t.to(torch.int32))
    w = np.array([0.5, 2.0, 1.0])
    ti = np.array([0, 2, 1, 1])
    z = np.maximum(0, 1.0 - A[np.arange(4), ti][:, None] + A)
    z[np.arange(4), ti] = 0
    assert_close(F.multi_margin_loss(x, t, weight=T(w)), np.mean((z * w[ti][:, None]).sum(1) / 3))
    with pytest.raises(RuntimeError, match="non-negative p"):
        F.pdist(T(A), p=-1)


def test_triplet_with_distance_default_is_pairwise_module():
    m = nn.TripletMarginWithDistanceLoss()
    assert repr(m) == "TripletMarginWithDistanceLoss(\n  (distance_function): PairwiseDistance()\n)"
    assert isinstance(m.distance_function, nn.PairwiseDistance)
    assert list(m.state_dict()) == []
    a, p, n = A, B, B[::-1].copy()
    d = lambda u, v: np.sqrt(((u - v + 1e-6) ** 2).sum(1))
    assert_close(m(T(a), T(p), T(n)), np.mean(np.maximum(d(a, p) - d(a, n) + 1.0, 0)))
    assert repr(nn.TripletMarginWithDistanceLoss(distance_function=F.l1_loss)) == \
        "TripletMarginWithDistanceLoss()"


P_IN = np.array([[0.1, 0.9, 0.5], [0.0, 1.0, 0.3]])
P_T = np.array([[0.0, 1.0, 1.0], [0.0, 1.0, 0.5]])


@pytest.mark.parametrize("red", ["none", "mean", "sum"])
def test_bce_and_logits(red):
    lx = np.maximum(np.log(P_IN), -100)
    l1x = np.maximum(np.log(1 - P_IN), -100)
    w = np.array([1.0, 2.0, 0.5])
    ref = -w * (P_T * lx + (1 - P_T) * l1x)
    assert_close(F.binary_cross_entropy(T(P_IN), T(P_T), weight=T(w), reduction=red),
                 RED[red](ref), rtol=1e-12)
    x = np.array([[-30.0, -1.0, 0.0], [0.5, 2.0, 40.0]])
    pw = np.array([1.0, 3.0, 0.5])
    sp = np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0)      # -log(sigmoid(x))
    ref = w * ((1 - P_T) * x + (1 + (pw - 1) * P_T) * sp)
    assert_close(F.binary_cross_entropy_with_logits(T(x), T(P_T), T(w), reduction=red,
                                                    pos_weight=T(pw)), RED[red](ref), rtol=1e-9)
    assert_close(nn.BCEWithLogitsLoss(reduction=red)(T(x), T(P_T)),
                 RED[red]((1 - P_T) * x + sp), rtol=1e-9)


def test_bce_errors_grads():
    x = torch.tensor([0.5, 1.5])
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(x, torch.tensor([0., 1.]))
    assert x.tolist() == [0.5, 1.5]
    with pytest.raises(ValueError):
        nn.BCELoss()(torch.tensor([0.5, 0.5]), torch.tensor([0., 1., 1.]))
    with pytest.raises(ValueError):
        F.binary_cross_entropy_with_logits(torch.ones(2), torch.ones(3))
    z = torch.tensor([0.0, 1.0], requires_grad=True)
    l = F.binary_cross_entropy(z, torch.tensor([0., 1.]))
    assert l.item() == 0.0 and l.grad_fn.name() == "BinaryCrossEntropyBackward0"
    l.backward()
    assert np.isfinite(to_np(z.grad)).all()
    # at logit 0 the gradient is sigmoid(0) - t
    q = torch.zeros(2, requires_grad=True)
    F.binary_cross_entropy_with_logits(q, torch.tensor([0., 1.]), reduction="sum").backward()
    assert_close(q.grad, [0.5, -0.5])
    assert gradcheck(lambda t: F.binary_cross_entropy(t, T(P_T)), (T(np.clip(P_IN, .05, .95), True),))
    assert gradcheck(lambda t: F.binary_cross_entropy_with_logits(t, T(P_T), pos_weight=T([1., 2., 3.])),
                     (T(A[:2], True),))


def test_kl_poisson_gaussian():
    inp = _logsm(A)
    tp = np.exp(_logsm(B))
    full = tp * (np.log(tp) - inp)
    assert_close(F.kl_div(T(inp), T(tp), reduction="sum"), full.sum(), rtol=1e-12)
    assert_close(F.kl_div(T(inp), T(tp), reduction="batchmean"), full.sum() / 4, rtol=1e-12)
    assert_close(F.kl_div(T(inp), T(np.log(tp)), reduction="none", log_target=True), full,
                 rtol=1e-12)
    assert_close(F.kl_div(T(inp), T(np.array([[0.0, 0.5, 0.5]] * 4)), reduction="sum"),
                 (0.5 * (np.log(0.5) - inp[:, 1:])).sum(), rtol=1e-12)   # 0 * log 0 = 0
    tgt = np.array([[0.0, 2.0, 5.0]] * 4)
    assert_close(F.poisson_nll_loss(T(A), T(tgt)), (np.exp(A) - tgt * A).mean(), rtol=1e-12)
    pos = np.abs(A) + 0.1
    st = np.where(tgt > 1, tgt * np.log(np.maximum(tgt, 1)) - tgt + 0.5 * np.log(2 * np.pi * np.maximum(tgt, 1)), 0)
    assert_close(F.poisson_nll_loss(T(pos), T(tgt), log_input=False, full=True, reduction="sum"),
                 (pos - tgt * np.log(pos + 1e-8) + st).sum(), rtol=1e-12)
    var = np.abs(B) + 0.5
    assert_close(F.gaussian_nll_loss(T(A), T(B), T(var)),
                 (0.5 * (np.log(var) + (A - B) ** 2 / var)).mean(), rtol=1e-12)


@pytest.mark.parametrize("red", ["none", "mean", "sum"])
def test_margin_family(red):
    y = np.array([1.0, -1.0, 1.0, -1.0])
    cos = (A * B).sum(1) / np.sqrt(((A ** 2).sum(1) + 1e-12) * ((B ** 2).sum(1) + 1e-12))
    ref = np.where(y == 1, 1 - cos, np.maximum(0, cos - 0.1))
    assert_close(F.cosine_embedding_loss(T(A), T(B), T(y), margin=0.1, reduction=red),
                 RED[red](ref), rtol=1e-12)
    a, b = A[:, 0], B[:, 0]
    assert_close(nn.MarginRankingLoss(0.2, reduction=red)(T(a), T(b), T(y)),
                 RED[red](np.maximum(0, -y * (a - b) + 0.2)), rtol=1e-12)
    yy = np.where(A > 0, 1.0, -1.0)
    assert_close(F.hinge_embedding_loss(T(B), T(yy), margin=0.5, reduction=red),
                 RED[red](np.where(yy == 1, B, np.maximum(0, 0.5 - B))), rtol=1e-12)
    N = R.normal(size=(4, 3))
    dp = np.linalg.norm(A - B + 1e-6, axis=1)
    dn = np.linalg.norm(A - N + 1e-6, axis=1)
    dpn = np.linalg.norm(B - N + 1e-6, axis=1)
    assert_close(F.triplet_margin_loss(T(A), T(B), T(N), margin=1.0, reduction=red),
                 RED[red](np.maximum(dp - dn + 1, 0)), rtol=1e-12)
    assert_close(F.triplet_margin_loss(T(A), T(B), T(N), swap=True, reduction=red),
                 RED[red](np.maximum(dp - np.minimum(dn, dpn) + 1, 0)), rtol=1e-12)
    assert_close(nn.SoftMarginLoss(reduction=red)(T(A), T(yy)),
                 RED[red](np.log1p(np.exp(-yy * A))), rtol=1e-12)
    t01 = (yy + 1) / 2
    w = np.array([1.0, 0.5, 2.0])
    ml = -(t01 * np.log(1 / (1 + np.exp(-A))) + (1 - t01) * np.log(1 / (1 + np.exp(A)))) * w
    assert_close(F.multilabel_soft_margin_loss(T(A), T(t01), weight=T(w), reduction=red),
                 RED[red](ml.mean(1)), rtol=1e-12)
    for p in (1, 2):
        z = np.maximum(0, 1.0 - A[np.arange(4), TGT][:, None] + A)
        z = z ** p * W[TGT][:, None]
        z[np.arange(4), TGT] = 0
        assert_close(F.multi_margin_loss(T(A), torch.tensor(TGT), p=p, weight=T(W), reduction=red),
                     RED[red](z.sum(1) / 3), rtol=1e-12)



def _multilabel_margin_ref(x, y):
    """Element by element, as PyTorch's definition reads: targets up to the first -1."""
    out = []
    for xs, ys in zip(x, y):
        tg = []
        for v in ys:
            if v < 0:
                break
            tg.append(v)
        s = sum(max(0.0, 1 - (xs[j] - xs[i])) for j in tg for i in range(len(xs)) if i not in tg)
        out.append(s / len(xs))
    return np.array(out)


@pytest.mark.parametrize("red", ["none", "mean", "sum"])
def test_multilabel_margin_loss(red):
    y = np.array([[2, 0, -1], [1, 1, -1], [-1, 2, 0], [0, 1, 2]])   # a repeat; none; all
    x = np.concatenate([A, A[:, :1] * 0.5], 1)[:, :3]
    assert_close(F.multilabel_margin_loss(T(x), torch.tensor(y), reduction=red),
                 RED[red](_multilabel_margin_ref(x, y)), rtol=1e-12)
    assert_close(nn.MultiLabelMarginLoss(reduction=red)(T(x[1]), torch.tensor(y[1])),
                 _multilabel_margin_ref(x[1:2], y[1:2])[0], rtol=1e-12)
    # PyTorch 2.13's printed values and gradient
    xt = torch.tensor([[0.1, 0.2, 0.4, 0.8], [0.3, -0.5, 0.9, 0.0]], requires_grad=True)
    yt = torch.tensor([[3, 0, -1, 1], [1, 1, 2, -1]])
    loss = F.multilabel_margin_loss(xt, yt)
    assert_close(loss, 1.3125, rtol=1e-6)
    assert loss.grad_fn.name() == "MultilabelMarginLossBackward0"
    loss.backward()
    assert_close(xt.grad, [[-0.25, 0.25, 0.25, -0.25], [0.375, -0.5, -0.25, 0.375]])
    assert gradcheck(lambda a: F.multilabel_margin_loss(a, torch.tensor(y)), (T(x, True),))


def test_multilabel_margin_loss_errors():
    x = torch.zeros(2, 4)
    for bad in ([[4, -1, 0, 0], [0, -1, 0, 0]], [[0, -1, -5, 0], [0, 0, 0, 0]]):
        with pytest.raises(RuntimeError, match="argument #2 'target' is out of range"):
            F.multilabel_margin_loss(x, torch.tensor(bad))
    with pytest.raises(RuntimeError, match=r"inconsistent target size: \[2, 3\] for input of "
                                           r"size: \[2, 4\]"):
        F.multilabel_margin_loss(x, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(RuntimeError, match="expected scalar type Long but found Float"):
        F.multilabel_margin_loss(x, torch.zeros(2, 4))
    with pytest.raises(RuntimeError, match="non-empty vector or matrix"):
        F.multilabel_margin_loss(x[None], torch.zeros(1, 2, 4, dtype=torch.long))

def test_margin_gradchecks_and_reprs():
    y = T([1.0, -1.0, 1.0, -1.0])
    assert gradcheck(lambda a, b: F.cosine_embedding_loss(a, b, y), (T(A, True), T(B, True)))
    assert gradcheck(lambda a: F.triplet_margin_loss(a, T(B), T(B[::-1].copy())), (T(A, True),))
    assert gradcheck(lambda a: F.multilabel_soft_margin_loss(a, T((A > 0) * 1.0)), (T(A, True),))
    assert [repr(c) for c in (nn.MSELoss(), nn.TripletMarginLoss(), nn.KLDivLoss(),
                              nn.BCEWithLogitsLoss(pos_weight=torch.ones(2)))] == \
        ["MSELoss()", "TripletMarginLoss()", "KLDivLoss()", "BCEWithLogitsLoss()"]
    assert list(nn.BCEWithLogitsLoss(pos_weight=torch.ones(2)).state_dict().keys()) == ["pos_weight"]
    with pytest.warns(UserWarning):
        assert nn.MSELoss(size_average=False).reduction == "sum"
    with pytest.raises(ValueError):
        nn.TripletMarginLoss(margin=0)


def test_against_torch_losses():
    real = pytest.importorskip("torch")
    rf = real.nn.functional
    x, t = real.tensor(A), real.tensor(TGT)
    ours = F.cross_entropy(T(A), torch.tensor(TGT), weight=T(W), label_smoothing=0.3,
                           ignore_index=1)
    theirs = rf.cross_entropy(x, t, weight=real.tensor(W), label_smoothing=0.3, ignore_index=1)
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-12)
