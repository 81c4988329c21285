"""Compiled == eager for a library of models: forward, gradients and 5 optimizer steps (compiled
forward with eager backward/step, and the whole step compiled), within float32 tolerance."""
import os
import sys

import numpy as np
import pytest

import framework as torch
from framework import nn, optim
import framework.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "examples"))
from train_digits import DigitsCNN  # noqa: E402


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(12, 32), nn.GELU(), nn.Linear(32, 32), nn.ReLU(),
                                 nn.LayerNorm(32), nn.Linear(32, 4))

    def forward(self, x):
        return self.net(x)


class LSTMHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 10, num_layers=2, batch_first=True)
        self.fc = nn.Linear(10, 4)

    def forward(self, x):
        out, (h, c) = self.lstm(x)
        return self.fc(out[:, -1]) + h[-1].sum(-1, keepdim=True) * 0.1


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32,
                                                dropout=0.1, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(self.layer(x).mean(1))


class DynamicNet(nn.Module):
    """The PyTorch tutorial's dynamic net: one middle layer reused a random number of times
    (parameter sharing plus Python control flow on a random draw)."""

    def __init__(self):
        super().__init__()
        self.input_linear = nn.Linear(12, 16)
        self.middle_linear = nn.Linear(16, 16)
        self.output_linear = nn.Linear(16, 4)

    def forward(self, x):
        h = self.input_linear(x).clamp(min=0)
        for _ in range(int(torch.randint(0, 3, ()).item()) + 1):
            h = self.middle_linear(h).clamp(min=0)
        return self.output_linear(h)


class TiedAutoencoder(nn.Module):
    """Weight tying: the decoder uses the encoder's weight transposed."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(12, 6)
        self.bias = nn.Parameter(torch.zeros(12))
        self.head = nn.Linear(12, 4)

    def forward(self, x):
        z = torch.tanh(self.enc(x))
        return self.head(F.linear(z, self.enc.weight.t(), self.bias))


class DataAndControlFlow(nn.Module):
    """`.data` reads and writes (a weight-norm-like rescale outside autograd), a data-dependent
    branch and a Python-side counter."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 16)
        self.fc2 = nn.Linear(16, 4)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        w = self.fc1.weight
        w.data.mul_(1.0 / max(1.0, float(w.data.norm())))
        h = self.fc1(x)
        if h.mean() > 0:
            h = h.relu()
        else:
            h = h.sigmoid()
        return self.fc2(h)


def _inputs(name, seed):
    # the default device's generator (the interpret suite runs this file on a device,
    # where a draw takes only that device's generator, as in PyTorch)
    g = torch.Generator(torch.get_default_device()).manual_seed(seed)
    if name == "DigitsCNN":
        return torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)
    if name in ("LSTMHead", "Encoder"):
        return torch.randn(4, 5, 6 if name == "LSTMHead" else 16, generator=g), \
            torch.randint(0, 4, (4,), generator=g)
    return torch.randn(8, 12, generator=g), torch.randint(0, 4, (8,), generator=g)


MODELS = [MLP, DigitsCNN, LSTMHead, Encoder, DynamicNet, TiedAutoencoder, DataAndControlFlow]
TOL = dict(rtol=2e-4, atol=2e-5)


def _make(cls):
    torch.manual_seed(0)
    return cls()


def _check_params(m1, m2):
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        np.testing.assert_allclose(b.cpu().numpy(), a.cpu().numpy(), err_msg=k, **TOL)


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_compiled_forward_gradients_and_five_steps_equal_eager(cls):
    m1, m2 = _make(cls), _make(cls)
    cm = torch.compile(m2)
    o1 = optim.Adam(m1.parameters(), lr=1e-2)
    o2 = optim.Adam(m2.parameters(), lr=1e-2)
    for step in range(5):
        x, y = _inputs(cls.__name__, step)
        torch.manual_seed(100 + step)          # dropout masks / random control flow
        out1 = m1(x)
        torch.manual_seed(100 + step)
        out2 = cm(x)
        np.testing.assert_allclose(out2.detach().cpu().numpy(), out1.detach().cpu().numpy(), **TOL)
        o1.zero_grad()
        o2.zero_grad()
        F.cross_entropy(out1, y).backward()
        F.cross_entropy(out2, y).backward()
        for (k, p1), p2 in zip(m1.named_parameters(), m2.parameters()):
            assert (p1.grad is None) == (p2.grad is None), k
            if p1.grad is not None:
                np.testing.assert_allclose(p2.grad.cpu().numpy(), p1.grad.cpu().numpy(), err_msg=k, **TOL)
        o1.step()
        o2.step()
    _check_params(m1, m2)
    st = cm._compiled.stats
    assert st["calls"] == 5 and st["eager_calls"] == 0
    if cls is DataAndControlFlow:
        assert m2.calls == 5 and st["graph_breaks"]
    if cls in (MLP, DigitsCNN, Encoder, TiedAutoencoder):
        assert st["graph_breaks"] == [] and st["compiles"] == 1
    # eval mode: a recompile, and still the eager result
    m1.eval()
    cm.eval()
    x, _ = _inputs(cls.__name__, 9)
    torch.manual_seed(5)
    r1 = m1(x)
    torch.manual_seed(5)
    np.testing.assert_allclose(cm(x).detach().cpu().numpy(), r1.detach().cpu().numpy(), **TOL)
    assert "training: True -> False" in cm._compiled.recompile_reasons()


@pytest.mark.parametrize("cls", [MLP, DigitsCNN, LSTMHead, Encoder, TiedAutoencoder],
                         ids=lambda c: c.__name__)
def test_whole_compiled_training_step_equals_eager(cls):
    results = []
    for compiled in (False, True):
        m = _make(cls)
        opt = optim.AdamW(m.parameters(), lr=1e-2)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            return loss
        f = torch.compile(step) if compiled else step
        losses = []
        for s in range(5):
            x, y = _inputs(cls.__name__, s)
            torch.manual_seed(200 + s)
            losses.append(f(x, y).item())
        results.append((m, losses))
        if compiled:
            assert f.stats["graph_breaks"] == [], f.graph_break_reasons()
            assert f.stats["compiles"] == 1
    (m1, l1), (m2, l2) = results
    np.testing.assert_allclose(l2, l1, **TOL)
    _check_params(m1, m2)


def test_digits_cnn_compiled_step_has_batchnorm_stats_equal_eager():
    m1, m2 = _make(DigitsCNN), _make(DigitsCNN)
    cm = torch.compile(m2)
    for s in range(3):
        x, _ = _inputs("DigitsCNN", s)
        torch.manual_seed(s)
        m1(x)
        torch.manual_seed(s)
        cm(x)
    for k in ("features.1.running_mean", "features.1.running_var", "features.5.running_var"):
        np.testing.assert_allclose(m2.state_dict()[k].cpu().numpy(), m1.state_dict()[k].cpu().numpy(), **TOL)
    assert m2.state_dict()["features.1.num_batches_tracked"].item() == 3
