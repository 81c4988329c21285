"""nn.EmbeddingBag / F.embedding_bag: bags from offsets or rows, sum/mean/max, padding_idx,
per_sample_weights, include_last_offset; values derived by hand from the weight, gradients
(the max's to the first entry attaining it), and PyTorch's when it is installed."""
import re
import numpy as np
import pytest

import framework as torch
import framework.nn.functional as F
from conftest import to_np

W = np.arange(30, dtype=np.float32).reshape(10, 3) / 10
INP = np.array([1, 2, 4, 5, 4, 3, 2, 9, 0, 0])
OFF = np.array([0, 4, 4, 8])                 # bags [1 2 4 5], [], [4 3 2 9], [0 0]


def _bags(fn, pad=None):
    out = []
    for a, b in zip(OFF, list(OFF[1:]) + [len(INP)]):
        ids = [i for i in INP[a:b] if i != pad]
        out.append(fn(W[ids]) if ids else np.zeros(3, np.float32))
    return np.stack(out)


@pytest.mark.parametrize("pad", [None, 4])
def test_values_by_hand(pad):
    w = torch.tensor(W)
    for mode, fn in (("sum", lambda r: r.sum(0)), ("mean", lambda r: r.mean(0)),
                     ("max", lambda r: r.max(0))):
        got = F.embedding_bag(torch.tensor(INP), w, torch.tensor(OFF), mode=mode,
                              padding_idx=pad)
        np.testing.assert_allclose(to_np(got), _bags(fn, pad), rtol=1e-6, atol=1e-7)
    psw = np.linspace(0.5, 2, 10).astype(np.float32)
    got = F.embedding_bag(torch.tensor(INP), w, torch.tensor(OFF), mode="sum",
                          per_sample_weights=torch.tensor(psw))
    want = np.stack([(W[INP[a:b]] * psw[a:b, None]).sum(0) for a, b in
                     zip(OFF, list(OFF[1:]) + [10])])
    np.testing.assert_allclose(to_np(got), want, rtol=1e-6)
    two_d = F.embedding_bag(torch.tensor(INP.reshape(2, 5)), w, mode="mean")
    np.testing.assert_allclose(to_np(two_d), W[INP.reshape(2, 5)].mean(1), rtol=1e-6)
    last = F.embedding_bag(torch.tensor(INP), w, torch.tensor(np.append(OFF, 10)), mode="sum",
                           include_last_offset=True)
    np.testing.assert_allclose(to_np(last), _bags(lambda r: r.sum(0)), rtol=1e-6)


def test_max_gradient_goes_to_one_entry():
    w = torch.tensor(W, requires_grad=True)
    F.embedding_bag(torch.tensor(INP), w, torch.tensor(OFF), mode="max").sum().backward()
    g = to_np(w.grad)
    assert g[0].tolist() == [1, 1, 1]        # bag [0, 0]: the tie's first entry only
    assert g[5].tolist() == [1, 1, 1] and g[9].tolist() == [1, 1, 1]
    assert g.sum() == 9                      # three non-empty bags x three dims


def test_module_and_errors():
    torch.manual_seed(0)
    m = torch.nn.EmbeddingBag(10, 3, mode="sum", padding_idx=0)
    assert repr(m) == "EmbeddingBag(10, 3, mode='sum', padding_idx=0)"
    assert not to_np(m.weight)[0].any()
    with pytest.raises(ValueError, match="offsets has to be None"):
        m(torch.tensor([[1, 2]]), torch.tensor([0]))
    with pytest.raises(NotImplementedError, match="only supported for mode='sum'"):
        F.embedding_bag(torch.tensor(INP), m.weight, torch.tensor(OFF), mode="max",
                        per_sample_weights=torch.ones(10))
    with pytest.raises(ValueError, match="max mode does not support sparse weights"):
        F.embedding_bag(torch.tensor([[1, 2]]), m.weight, mode="max", sparse=True)
    with pytest.raises(ValueError, match=re.escape(
            "embedding_bag: If per_sample_weights (torch.Size([3])) is not None, then it must "
            "have the same shape as the input (torch.Size([4]))")):
        F.embedding_bag(torch.tensor([1, 2, 3, 4]), m.weight, torch.tensor([0, 2]), mode="sum",
                        per_sample_weights=torch.rand(3))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("pad", [None, 0, 4])
def test_against_pytorch(mode, pad):
    real = pytest.importorskip("torch", reason="an optional cross-check against PyTorch itself")
    res = []
    for lib in (real, torch):
        lib.manual_seed(0)
        m = lib.nn.EmbeddingBag(10, 3, mode=mode, padding_idx=pad)
        out = m(lib.tensor(INP), lib.tensor(OFF))
        (out * lib.arange(out.numel()).reshape(out.shape).float()).sum().backward()
        res.append((out.detach().cpu().numpy(), m.weight.grad.detach().cpu().numpy()))
    for want, got in zip(*res):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
