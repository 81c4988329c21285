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
