"""F.linear_cross_entropy, nn.LinearCrossEntropyLoss and nn.LinearCrossEntropyOptions (torch
2.13): the reference and the chunked paths against NumPy float64 (losses and their gradients
written out by hand), PyTorch's option checks, chunk sizes and errors."""
import warnings

import numpy as np
import pytest

import framework as torch
import framework.nn as nn
import framework.nn.functional as F
from tests.conftest import to_np

N, D, C = 7, 4, 5


def _data(seed=0):
    r = np.random.default_rng(seed)
    return (r.standard_normal((N, D)), r.standard_normal((C, D)), r.standard_normal(C),
            np.array([1, 0, 4, -100, 2, 2, 3]), r.uniform(0.5, 2.0, C))


def _reference(x, w, b, t, cw, reduction):
    """Per-row loss cw[t] (logsumexp(z) - z[t]) of z = x w^T + b, ignored rows 0; and the
    gradients of sum(loss * k) (k = 1, 2, ... per row for 'none', 1 otherwise)."""
    z = x @ w.T + b
    lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    valid = t != -100
    ts = np.where(valid, t, 0)
    wt = cw[ts] * valid
    rows = wt * (lse - z[np.arange(N), ts])
    k = np.arange(1.0, N + 1)
    if reduction == "mean":
        loss, scale = rows.sum() / wt.sum(), wt / wt.sum()
    elif reduction == "sum":
        loss, scale = rows.sum(), wt
    else:
        loss, scale = rows, wt * k
    dz = np.exp(z - lse[:, None])
    dz[np.arange(N), ts] -= 1.0
    dz *= scale[:, None]
    return loss, dz @ w, dz.T @ x, dz.sum(0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("chunk", [None, 1, 3, 7])
def test_reference_and_chunked_paths_equal_numpy(reduction, chunk):
    x, w, b, t, cw = _data()
    opts = None if chunk is None else nn.LinearCrossEntropyOptions(batch_chunk_size=chunk,
                                                                   chunking_method=None)
    xt, wt_, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    loss = F.linear_cross_entropy(xt, wt_, torch.tensor(t), linear_bias=bt,
                                  weight=torch.tensor(cw), reduction=reduction, options=opts)
    ref, gx, gw, gb = _reference(x, w, b, t, cw, reduction)
    np.testing.assert_allclose(to_np(loss), ref, rtol=1e-12, atol=1e-14)
    k = torch.arange(1.0, N + 1, dtype=torch.float64) if reduction == "none" else 1.0
    (loss * k).sum().backward()
    for got, want in ((xt.grad, gx), (wt_.grad, gw), (bt.grad, gb)):
        np.testing.assert_allclose(to_np(got), want, rtol=1e-11, atol=1e-13)
    if chunk is not None:
        op = "_no_reduction" if reduction == "none" else ""
        assert type(loss.grad_fn).__name__ == (f"GeneratedBackwardFor_torch_nn__linear_cross_"
                                               f"entropy_batch_chunked{op}_defaultBackward")


def test_chunked_backward_twice_and_allow_retain_graph():
    x, w, b, t, _ = _data(1)
    t = np.where(t < 0, 0, t)
    for allow in (False, True):
        xt = torch.tensor(x, requires_grad=True)
        opts = nn.LinearCrossEntropyOptions(allow_retain_graph=allow)
        loss = F.linear_cross_entropy(xt, torch.tensor(w), torch.tensor(t), options=opts)
        loss.backward(retain_graph=True)
        g1 = to_np(xt.grad).copy()
        if allow:
            loss.backward()
            np.testing.assert_allclose(to_np(xt.grad), 2 * g1, rtol=1e-12)
        else:
            with pytest.raises(RuntimeError, match="chunked backward called twice"):
                loss.backward()
    # an unbatched input is one row
    one = F.linear_cross_entropy(torch.tensor(x[0]), torch.tensor(w), torch.tensor(t[0]),
                                 options=nn.LinearCrossEntropyOptions())
    z = w @ x[0]
    assert one.shape == () and abs(one.item() - (np.log(np.exp(z).sum()) - z[t[0]])) < 1e-12


def test_options_checks_and_chunk_sizes():
    o = nn.LinearCrossEntropyOptions()
    assert repr(o) == ("LinearCrossEntropyOptions(allow_retain_graph=False, batch_chunk_size=None, "
                       "chunking_method='auto', acc_policy='auto', acc_dtype=None)")
    cpu = torch.device("cpu")
    # aspect_ratio: next power of two >= ceil(600 / ceil(50 / 8)) = 86 -> 128; ":2" halves it
    a = o._adjust(num_batches=600, in_features=8, num_classes=50, dtype=torch.bfloat16,
                  device=cpu)
    assert (a.batch_chunk_size, a.chunking_method, a.acc_policy, a.acc_dtype) == \
        (128, "aspect_ratio", "accurate", torch.float32)
    a = o._adjust(num_batches=600, in_features=8, num_classes=50, dtype=torch.float32,
                  device=cpu)
    assert (a.batch_chunk_size, a.chunking_method, a.acc_policy, a.acc_dtype) == \
        (64, "aspect_ratio:2", "compact", torch.float32)
    a = nn.LinearCrossEntropyOptions(batch_chunk_size=1000)._adjust(
        num_batches=6, in_features=8, num_classes=5, dtype=torch.float64, device=cpu)
    assert (a.batch_chunk_size, a.chunking_method) == (6, None)
    with pytest.raises(ValueError, match=r"batch_chunk_size \(=3\) and chunking_method "
                                         r"\('aspect_ratio'\) give different chunk sizes "
                                         r"\(3 vs 128\); pass only one\."):
        nn.LinearCrossEntropyOptions(batch_chunk_size=3, chunking_method="aspect_ratio")._adjust(
            num_batches=600, in_features=8, num_classes=50, dtype=torch.float32, device=cpu)
    for kw, msg in (({"acc_policy": "x"}, "invalid acc_policy: 'x'"),
                    ({"chunking_method": "aspect_ratio:0"}, "invalid chunking_method"),
                    ({"chunking_method": "ratio"}, "invalid chunking_method"),
                    ({"batch_chunk_size": 0}, "batch_chunk_size must be positive int or None"),
                    ({"acc_dtype": torch.int32}, "acc_dtype must be one of")):
        with pytest.raises(ValueError, match=msg):
            nn.LinearCrossEntropyOptions(**kw)


def test_errors_fallback_warning_and_module():
    x, w = torch.randn(6, 8), torch.randn(5, 8)
    t = torch.randint(0, 5, (6,))
    for args, msg in (((x[None], w, t), "expected input with dimensionality 1 or 2, got 3"),
                      ((x, torch.randn(5), t), "linear_weight with dimensionality at least 2"),
                      ((x, torch.randn(5, 7), t), r"in_features\), got 8 and 7, respectively"),
                      ((x[0], torch.randn(5, 3, 8), t[:3]), "requires batched input")):
        with pytest.raises(RuntimeError, match=msg):
            F.linear_cross_entropy(*args)
    with pytest.raises(RuntimeError, match=r"expected linear_bias shape \(5,\), got \(4,\)"):
        F.linear_cross_entropy(x, w, t, linear_bias=torch.randn(4))
    probs = torch.softmax(torch.randn(6, 5), 1)
    with pytest.raises(RuntimeError, match="ignore_index cannot be specified"):
        F.linear_cross_entropy(x, w, probs, ignore_index=1)
    # label smoothing is not chunked: the reference path, with PyTorch's warning
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        got = F.linear_cross_entropy(x, w, t, label_smoothing=0.1,
                                     options=nn.LinearCrossEntropyOptions())
    assert any("``options`` ignored" in str(r.message) for r in rec)
    ref = F.cross_entropy(x @ w.t(), t, label_smoothing=0.1)
    assert abs(got.item() - ref.item()) < 1e-6
    torch.manual_seed(0)
    m = nn.LinearCrossEntropyLoss(8, 5, out_features=(3,), bias=True)
    assert list(m.state_dict()) == ["linear.weight", "linear.bias"]
    assert tuple(m.linear.weight.shape) == (15, 8)
    assert repr(m).splitlines()[1] == (
        "  in_features=8, num_classes=5, out_features=(3,), bias=True, reduction=mean, "
        "ignore_index=None, label_smoothing=0.0, options=None")
    tk = torch.randint(0, 5, (6, 3))
    z = to_np(x) @ to_np(m.linear.weight).T + to_np(m.linear.bias)     # (6, 15) = (6, 5, 3)
    z = z.reshape(6, 5, 3)
    lse = np.log(np.exp(z).sum(1))
    picked = np.take_along_axis(z, to_np(tk)[:, None, :], 1)[:, 0]
    assert abs(m(x, tk).item() - (lse - picked).mean()) < 1e-5
    with pytest.raises(RuntimeError, match=r"expected weight shape to be \(5,\), got \(4,\)"):
        nn.LinearCrossEntropyLoss(8, 5, weight=torch.ones(4))
    # half inputs: the loss keeps their dtype (chunks accumulate in float32)
    lb = F.linear_cross_entropy(x.bfloat16(), w.bfloat16(), t,
                                options=nn.LinearCrossEntropyOptions())
    assert lb.dtype == torch.bfloat16
    assert abs(lb.float().item() - F.cross_entropy(x @ w.t(), t).item()) < 0.05
