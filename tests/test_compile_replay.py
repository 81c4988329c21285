"""compile(module) replays: once two consecutive traces of a compiled module's forward with the
same guards are identical (one region, no graph break, inputs = arguments/parameters/buffers,
no random draws, no hooks, no change of module state), later calls run the recorded plan
without re-running the Python forward. Replays must equal fresh traces (and eager) bit for bit,
or not happen."""
import os
import sys

import numpy as np

import framework as torch
from framework import nn, optim
import framework.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "examples"))
from train_digits import DigitsCNN  # noqa: E402


def _mlp():
    return nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(),
                         nn.Linear(16, 3))


def _pair(make, seed=0):
    torch.manual_seed(seed)
    m1 = make()
    torch.manual_seed(seed)
    m2 = make()
    return m1, m2


def _x(m, n=8, seed=0):
    # the default device's generator (the interpret suite runs this file on a device,
    # where a draw takes only that device's generator, as in PyTorch)
    g = torch.Generator(torch.get_default_device()).manual_seed(seed)
    if isinstance(m, DigitsCNN):
        return torch.randn(n, 1, 8, 8, generator=g)
    return torch.randn(n, 10, generator=g)


# Equal to float32 rounding: the compiled programs may order BLAS sums differently (the layout
# pass computes matmul(a, b).T as matmul(b.T, a.T)); a stale or skipped replay input shows up
# as a difference many orders of magnitude larger.
def _eq(got, want, err_msg=""):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=err_msg)


def _same_state(m1, m2):
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        _eq(b.cpu().numpy(), a.cpu().numpy(), err_msg=k)


def _train(make, steps=6, seed_each=True):
    """Eager vs compiled forward + eager loss/backward/AdamW: equal throughout."""
    m1, m2 = _pair(make)
    cm = torch.compile(m2)
    o1, o2 = optim.AdamW(m1.parameters(), lr=1e-2), optim.AdamW(m2.parameters(), lr=1e-2)
    for s in range(steps):
        x = _x(m1, seed=s)
        y = torch.randint(0, 3, (8,), generator=torch.Generator(torch.get_default_device()).manual_seed(s))
        torch.manual_seed(10 + s)
        a = m1(x)
        torch.manual_seed(10 + s)
        b = cm(x)
        _eq(b.detach().cpu().numpy(), a.detach().cpu().numpy())
        for o, out in ((o1, a), (o2, b)):
            o.zero_grad()
            F.cross_entropy(out, y).backward()
        for (k, p1), p2 in zip(m1.named_parameters(), m2.parameters()):
            _eq(p2.grad.cpu().numpy(), p1.grad.cpu().numpy(), err_msg=k)
        o1.step()
        o2.step()                   # parameters change in place: replays read the new values
        _same_state(m1, m2)
    return m1, m2, cm


def test_mlp_train_mode_replays_and_equals_eager():
    m1, m2, cm = _train(_mlp)
    st = cm._compiled.stats
    assert st["replays"] == 4 and st["compiles"] == 1      # traces 1 and 2, then replays
    assert st["replay_notes"] == ["replay enabled: two identical traces (training=True, "
                                  "grad_mode=True)"]
    assert type(cm(_x(m1)).grad_fn).__name__ == "CompiledFunctionBackward"
    assert cm._compiled.run_counts() == {"Sequential_0#0": 7}


def test_digits_cnn_without_dropout_replays_with_batchnorm_stats_equal_eager():
    m1, m2, cm = _train(lambda: DigitsCNN(dropout=0.0), steps=7)
    assert cm._compiled.stats["replays"] == 5
    assert m2.features[1].num_batches_tracked.item() == 7
    assert m2.features[1].running_mean._version == m1.features[1].running_mean._version
    # eval mode: its own entry (traced twice, then replayed); train mode's entry still replays
    for m in (m1, m2):
        m.eval()
    for s in range(4):
        x = _x(m1, seed=20 + s)
        np.testing.assert_array_equal(cm(x).detach().cpu().numpy(), m1(x).detach().cpu().numpy())
        with torch.no_grad():
            np.testing.assert_array_equal(cm(x).cpu().numpy(), m1(x).cpu().numpy())
    assert cm._compiled.stats["replays"] == 5 + 2 + 2
    for m in (m1, m2):
        m.train()
    r = cm._compiled.stats["replays"]
    x = _x(m1, seed=30)
    np.testing.assert_array_equal(cm(x).detach().cpu().numpy(), m1(x).detach().cpu().numpy())
    assert cm._compiled.stats["replays"] == r + 1
    _same_state(m1, m2)


def test_dropout_in_train_mode_replays_drawing_masks_as_eager():
    m1, m2, cm = _train(DigitsCNN, steps=6)
    st = cm._compiled.stats
    assert st["replays"] == 4, st["replay_notes"]       # masks drawn again, equal to eager's
    assert st["replay_notes"] == ["replay enabled: two identical traces (training=True, "
                                  "grad_mode=True)"]
    for m in (m1, m2):
        m.eval()                  # eval: dropout is the identity, its own entry
    x = _x(m1)
    for _ in range(3):
        np.testing.assert_array_equal(cm(x).detach().cpu().numpy(), m1(x).detach().cpu().numpy())
    assert st["replays"] == 5


def test_randn_in_forward_is_drawn_again_by_replays():
    class Noisy(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(10, 3)

        def forward(self, x):
            return self.lin(x + torch.randn(x.shape))
    m1, m2 = _pair(Noisy)
    cm = torch.compile(m2)
    for s in range(4):
        x = _x(m1, seed=s)
        torch.manual_seed(s)
        a = m1(x)
        torch.manual_seed(s)
        _eq(cm(x).detach().cpu().numpy(), a.detach().cpu().numpy())
    st = cm._compiled.stats
    assert st["replays"] == 2     # (each draws from the reseeded generator, as eager)
    assert st["replay_notes"] == ["replay enabled: two identical traces (training=True, "
                                  "grad_mode=True)"]


def test_other_random_draws_in_forward_are_traced_every_call():
    class Noisy(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(10, 3)

        def forward(self, x):
            return self.lin(x + torch.empty(x.shape).normal_())
    m1, m2 = _pair(Noisy)
    cm = torch.compile(m2)
    for s in range(4):
        x = _x(m1, seed=s)
        torch.manual_seed(s)
        a = m1(x)
        torch.manual_seed(s)
        _eq(cm(x).detach().cpu().numpy(), a.detach().cpu().numpy())
    st = cm._compiled.stats
    assert st["replays"] == 0
    assert st["replay_notes"] == ["not replayable: random numbers drawn other than dropout "
                                  "masks (training=True, grad_mode=True)"]


def test_shape_change_uses_its_own_entry():
    m1, m2 = _pair(_mlp)
    cm = torch.compile(m2, dynamic=False)     # (None would unguard dim 0 at the first change)
    for n in (4, 4, 6, 4, 6, 6, 4):
        x = _x(m1, n=n, seed=n)
        np.testing.assert_array_equal(cm(x).detach().cpu().numpy(), m1(x).detach().cpu().numpy())
    assert cm._compiled.stats["replays"] == 3      # 4: third call on; 6: the last one


def _enable(cm, x, n=3):
    for _ in range(n):
        cm(x)


def test_replacing_data_or_a_parameter_forces_a_retrace():
    m1, m2 = _pair(_mlp)
    cm = torch.compile(m2)
    x = _x(m1)
    _enable(cm, x)
    st = cm._compiled.stats
    assert st["replays"] == 1
    for m in (m1, m2):                                    # p.data = new tensor
        m[0].weight.data = m[0].weight.data * 2
    np.testing.assert_array_equal(cm(x).detach().cpu().numpy(), m1(x).detach().cpu().numpy())
    assert st["replays"] == 1 and "replay disabled" in st["replay_notes"][-1]
    _enable(cm, x, 2)
    assert st["replays"] == 2
    for m in (m1, m2):                                    # a new Parameter object
        m[2].bias = nn.Parameter(m[2].bias.detach() + 1)
    np.testing.assert_array_equal(cm(x).detach().cpu().numpy(), m1(x).detach().cpu().numpy())
    assert st["replays"] == 2
    _enable(cm, x, 2)
    assert st["replays"] == 3
    for m in (m1, m2):                                    # a parameter-free submodule swapped
        m[1] = nn.GELU()
    np.testing.assert_array_equal(cm(x).detach().cpu().numpy(), m1(x).detach().cpu().numpy())
    assert st["replays"] == 3
    m2[0].weight.requires_grad_(False)                    # requires_grad of a parameter
    m1[0].weight.requires_grad_(False)
    np.testing.assert_array_equal(cm(x).detach().cpu().numpy(), m1(x).detach().cpu().numpy())
    assert st["replays"] == 3


def test_forward_hook_disables_replay():
    m1, m2 = _pair(_mlp)
    cm = torch.compile(m2)
    x = _x(m1)
    _enable(cm, x)
    st = cm._compiled.stats
    assert st["replays"] == 1
    seen = []
    h = m2[2].register_forward_hook(lambda mod, inp, out: seen.append(1))
    for _ in range(3):
        cm(x)
    assert st["replays"] == 1 and seen == [1, 1, 1]
    assert st["replay_notes"][-1].startswith("not replayable: forward hooks present")
    h.remove()
    _enable(cm, x)
    assert st["replays"] == 2


class Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 3)
        self.calls = 0                 # a module attribute: its change is seen
        self.log = []                  # a list's contents are not

    def forward(self, x):
        self.calls += 1
        self.log.append(1)
        return self.fc(x) * 2.0


def test_python_side_effects():
    """A module attribute that forward reassigns (self.calls += 1) is part of the module state
    that replays guard on: such a forward is traced every call. A side effect replays cannot
    see (appending to a list, a global) runs on traced calls only, as with torch.compile:
    replays start after two identical traces and skip the Python forward."""
    m = Counter()
    cm = torch.compile(m)
    x = torch.randn(4, 10)
    for _ in range(4):
        cm(x)
    st = cm._compiled.stats
    assert m.calls == 4 and st["replays"] == 0
    assert st["replay_notes"] == ["not replayable: forward changed the module's state "
                                  "(attribute calls) (training=True, grad_mode=True)"]
    m2 = Counter()
    m2.forward = lambda x: (m2.log.append(1), m2.fc(x) * 2.0)[1]
    cm2 = torch.compile(m2)
    for _ in range(4):
        np.testing.assert_array_equal(cm2(x).detach().cpu().numpy(), (m2.fc(x) * 2.0).detach().cpu().numpy())
    assert cm2._compiled.stats["replays"] == 2 and len(m2.log) == 2    # skipped on replays


def test_float_attribute_change_is_seen():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(10, 3)
            self.scale = 2.0

        def forward(self, x):
            return self.fc(x) * self.scale
    m = Scale()
    cm = torch.compile(m)
    x = torch.randn(4, 10)
    _enable(cm, x)
    assert cm._compiled.stats["replays"] == 1
    m.scale = 3.0
    np.testing.assert_array_equal(cm(x).detach().cpu().numpy(), (m.fc(x) * 3.0).detach().cpu().numpy())
    assert cm._compiled.stats["replays"] == 1


def test_value_reads_and_unmapped_inputs_are_not_replayed():
    class Branch(nn.Module):           # Python control flow on a concrete argument's value
        def forward(self, x, flag):
            return x * 2 if flag.item() > 0 else x * 3

    class Made(nn.Module):             # a factory's tensor made in forward from other values
        def forward(self, x):
            return x + torch.tensor(x.tolist())
    cm = torch.compile(Branch())
    x = torch.ones(3)
    for f in (1, 1, 1, -1):
        np.testing.assert_array_equal(cm(x, torch.tensor(f)).cpu().numpy(), x.cpu().numpy() * (2 if f > 0 else 3))
    assert cm._compiled.stats["replays"] == 0
    assert "read a tensor's value" in cm._compiled.stats["replay_notes"][0]
    cm = torch.compile(Made())
    for _ in range(3):
        cm(x)
    assert cm._compiled.stats["replays"] == 0


def test_tensors_factories_make_in_forward_are_replayed_as_constants():
    # an RNN's zero initial state, an arange: made from shapes and constants, which the guards
    # fix, so a replay passes a copy of the traced one
    class Made(nn.Module):
        def forward(self, x):
            return x + torch.arange(x.shape[-1]).float()
    torch.manual_seed(0)
    gru = nn.GRU(3, 4, num_layers=2, batch_first=True)
    for m, make in ((Made(), lambda: torch.randn(2, 5)), (gru, lambda: torch.randn(2, 6, 3))):
        cm = torch.compile(m)
        for _ in range(4):
            x = make()
            a, b = cm(x), m(x)
            for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
                np.testing.assert_allclose(u.detach().cpu().numpy(), v.detach().cpu().numpy(),
                                           rtol=1e-5, atol=1e-6)
        assert cm._compiled.stats["replays"] >= 2, cm._compiled.stats["replay_notes"]
