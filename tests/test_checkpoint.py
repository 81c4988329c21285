"""torch.utils.checkpoint: recomputation in backward gives an unchecked run's loss and
gradients, dropout included (the random state is restored for the recomputation)."""
import warnings

import numpy as np
import pytest

import framework as torch
from framework import nn
from framework.utils.checkpoint import checkpoint, checkpoint_sequential
from conftest import to_np


def _grads(params):
    return [to_np(p.grad).copy() for p in params]


def test_checkpoint_equals_an_unchecked_run_with_dropout():
    torch.manual_seed(0)
    block = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 4))
    x = torch.randn(5, 4, requires_grad=True)
    params = list(block.parameters()) + [x]
    calls = []

    def counted(t):
        calls.append(1)
        return block(t)

    def run(ckpt):
        torch.manual_seed(1)
        for p in params:
            p.grad = None
        h = checkpoint(counted, x, use_reentrant=False) if ckpt else counted(x)
        loss = h.pow(2).sum()
        loss.backward()
        return loss.item(), _grads(params)
    plain, checked = run(False), run(True)
    assert plain[0] == checked[0]
    for a, b in zip(plain[1], checked[1]):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    assert len(calls) == 3                   # plain once; checkpointed forward + recompute
    h = checkpoint(block, x, use_reentrant=True)
    assert type(h.grad_fn).__name__ == "CheckpointFunctionBackward"
    with pytest.warns(UserWarning, match="use_reentrant parameter should be passed"):
        checkpoint(block, x)


def test_checkpoint_sequential():
    torch.manual_seed(0)
    seq = nn.Sequential(*[nn.Linear(4, 4) for _ in range(6)])
    x = torch.randn(3, 4, requires_grad=True)
    y = seq(x)
    y.sum().backward()
    want = _grads([x] + list(seq.parameters()))
    for p in [x] + list(seq.parameters()):
        p.grad = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y2 = checkpoint_sequential(seq, 3, x, use_reentrant=False)
    np.testing.assert_allclose(to_np(y2), to_np(y), rtol=1e-6)
    y2.sum().backward()
    for a, b in zip(want, _grads([x] + list(seq.parameters()))):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)


def test_non_reentrant_output_shows_the_functions_grad_fn_w3():
    # torch keeps the function's own graph (saved-tensor hooks), so the checkpointed output
    # prints its last op's grad_fn (timm's checkpointed blocks), and the gradient is unchanged
    a = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    x = torch.tensor(a, requires_grad=True)
    y = checkpoint(lambda t, s: t.sin() * s, x, 2.0, use_reentrant=False)
    assert y.grad_fn.name() == "MulBackward0" and type(y.grad_fn).__name__ == "MulBackward0"
    assert "grad_fn=<MulBackward0>" in repr(y)
    assert checkpoint(torch.sin, x, use_reentrant=False).grad_fn.name() == "SinBackward0"
    y.sum().backward()
    np.testing.assert_allclose(to_np(x.grad), 2.0 * np.cos(a), rtol=1e-12)
    assert checkpoint(torch.sin, x, use_reentrant=True).grad_fn.name() == \
        "CheckpointFunctionBackward"
    with torch.no_grad():
        assert checkpoint(torch.sin, x, use_reentrant=False).grad_fn is None


@pytest.mark.parametrize("reentrant", [False, True])
def test_recompute_runs_under_the_forwards_autocast_w3(reentrant):
    # backward runs outside the autocast block; the recomputation must cast as the forward did
    # (torch records the autocast state in forward), else a bf16 activation meets fp32 weights
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 3)).astype(np.float32)
    block = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))

    def run(ckpt):
        x = torch.tensor(a, requires_grad=True)
        for p in block.parameters():
            p.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = checkpoint(block, x, use_reentrant=reentrant) if ckpt else block(x)
        assert y.dtype == torch.bfloat16
        assert not torch.is_autocast_enabled("cpu")
        y.float().sum().backward()
        assert not torch.is_autocast_enabled("cpu")
        return [to_np(t.grad).copy() for t in [x] + list(block.parameters())]
    plain, checked = run(False), run(True)
    for p, c in zip(plain, checked):
        np.testing.assert_array_equal(c, p)
    # d sum / d bias of the last layer: the batch size, whatever the rounding
    np.testing.assert_array_equal(checked[-1], [4.0, 4.0])
