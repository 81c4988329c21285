"""optim.Rprop and optim.ASGD: trajectories equal PyTorch 2.13's (values printed from torch
and hard-coded), NumPy float64 references for the CASES table of test_optim.py, state_dict
layout and round trips, validation errors, LR schedulers, and compiled training steps that
equal eager ones."""
import math

import numpy as np
import pytest

import framework as torch
from framework import nn, optim
import framework.nn.functional as F
from conftest import to_np

P0 = np.array([[0.5, -1.2, 2.0], [0.1, -0.3, 1.5]])


# ---- NumPy float64 references (also used by test_optim.py's CASES) ---------------------------

def ref_rprop(p, g, st, lr, etas=(0.5, 1.2), step_sizes=(1e-6, 50), maximize=False):
    g = -g if maximize else g
    prev = st.get("prev", np.zeros_like(p))
    size = st.get("size", np.full_like(p, lr))
    s = np.sign(g * prev)
    size = np.clip(size * np.where(s > 0, etas[1], np.where(s < 0, etas[0], 1.0)), *step_sizes)
    g = np.where(s < 0, 0.0, g)
    st["prev"], st["size"] = g, size
    return p - np.sign(g) * size


def ref_asgd(p, g, st, lr, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, maximize=False):
    g = -g if maximize else g
    t = st["t"] = st.get("t", 0) + 1
    eta, mu = st.get("eta", float(np.float32(lr))), st.get("mu", 1.0)
    if weight_decay:
        g = g + weight_decay * p
    p = p * (1 - lambd * eta) - eta * g
    st["ax"] = p.copy() if mu == 1 else st["ax"] + (p - st["ax"]) * mu
    # PyTorch keeps eta and mu as float32 tensors
    st["eta"] = float(np.float32(lr / (1 + lambd * lr * t) ** alpha))
    st["mu"] = float(np.float32(1 / max(1, t - t0)))
    return p


def _run(cls, kw, steps, dtype=torch.float32):
    p = torch.tensor(P0, dtype=dtype, requires_grad=True)
    opt = cls([p], **kw)
    for _ in range(steps):
        opt.zero_grad()
        (p ** 4 / 4 + p.sin()).sum().backward()
        opt.step()
    return p, opt


# ---- trajectories: PyTorch 2.13's float32 values -----------------------------------------------

RPROP_4 = [[-0.03680002689361572, -0.8360000252723694, 1.4631998538970947],
           [-0.4368000030517578, -0.8367999792098999, 0.9631999135017395]]


def test_rprop_trajectory_and_state_equal_torch():
    p, opt = _run(optim.Rprop, dict(lr=0.1), 4)
    np.testing.assert_allclose(to_np(p.detach()), RPROP_4, rtol=1e-6, atol=1e-7)
    st = opt.state_dict()["state"][0]
    assert list(st) == ["step", "prev", "step_size"]
    assert st["step"].item() == 4.0 and st["step"].dtype is torch.float32 and st["step"].dim() == 0
    # element [0, 1] flipped sign at step 4: its gradient is forgotten, its step size shrank
    np.testing.assert_allclose(to_np(st["prev"]), [[0.9932816624641418, 0.0, 4.313589572906494],
                                                   [0.9469541311264038, 0.4947785437107086,
                                                    1.8872289657592773]], rtol=1e-5)
    np.testing.assert_allclose(to_np(st["step_size"]), [[0.1728, 0.072, 0.1728],
                                                        [0.1728, 0.1728, 0.1728]], rtol=1e-6)


def test_rprop_maximize_clamps_step_sizes_like_torch():
    p, opt = _run(optim.Rprop, dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2),
                                    maximize=True), 4)
    np.testing.assert_allclose(to_np(p.detach()), [[0.90625, -1.6062500476837158, 2.40625],
                                                   [0.5062500238418579, 0.10625001043081284,
                                                    1.90625]], rtol=1e-6)
    # 0.05 * 1.5**3 = 0.16875 (one more factor would pass step_sizes[1] = 0.2)
    np.testing.assert_allclose(to_np(opt.state[p]["step_size"]), np.full((2, 3), 0.16875),
                               rtol=1e-6)


def test_asgd_trajectory_averaging_and_state_equal_torch():
    # t0=2: from step 4 on mu = 1 / (step - t0) < 1 and ax becomes a running average
    p, opt = _run(optim.ASGD, dict(lr=0.05, lambd=0.01, alpha=0.5, t0=2, weight_decay=0.1), 6)
    np.testing.assert_allclose(to_np(p.detach()),
                               [[0.19157660007476807, -0.9437146186828613, 0.9397062063217163],
                                [-0.19763799011707306, -0.5395787358283997, 0.8310933113098145]],
                               rtol=1e-6, atol=1e-7)
    st = opt.state_dict()["state"][0]
    assert list(st) == ["step", "eta", "mu", "ax"]
    for k in ("step", "eta", "mu"):
        assert st[k].dtype is torch.float32 and st[k].dim() == 0, k
    assert st["step"].item() == 6.0 and st["mu"].item() == 0.25
    assert st["eta"].item() == pytest.approx(0.04992516711354256, rel=1e-7)
    np.testing.assert_allclose(to_np(st["ax"]),
                               [[0.24215202033519745, -0.9672768712043762, 1.0294768810272217],
                                [-0.14900703728199005, -0.5042918920516968, 0.9064820408821106]],
                               rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("cls,ref,kw", [
    (optim.Rprop, ref_rprop, dict(lr=0.1)),
    (optim.Rprop, ref_rprop, dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2),
                                  maximize=True)),
    (optim.ASGD, ref_asgd, dict(lr=0.05, lambd=0.01, alpha=0.5, t0=2, weight_decay=0.1)),
])
def test_float64_trajectory_matches_numpy(cls, ref, kw):
    p, opt = _run(cls, kw, 0, dtype=torch.float64)
    q, st = P0.copy(), {}
    for t in range(8):
        opt.zero_grad()
        (p ** 4 / 4 + p.sin()).sum().backward()
        opt.step()
        q = ref(q, q ** 3 + np.cos(q), st, **kw)
        np.testing.assert_allclose(to_np(p.detach()), q, rtol=1e-12, atol=1e-14,
                                   err_msg=f"step {t + 1}")


def _model():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    return m, torch.randn(5, 3), torch.randn(5, 2)


@pytest.mark.parametrize("cls,kw,losses,w", [
    (optim.Rprop, dict(lr=0.01), [1.3438559770584106, 1.3144422769546509, 1.281020998954773],
     [[0.16126759350299835, 0.26361140608787537, -0.30257055163383484, -0.25413140654563904],
      [0.14520855247974396, 0.37879398465156555, -0.13930009305477142, 0.4105558693408966]]),
    (optim.ASGD, dict(lr=0.1, t0=1), [1.3438559770584106, 1.2907335758209229, 1.2448773384094238],
     [[0.12313590198755264, 0.2626321017742157, -0.3258194327354431, -0.2519029974937439],
      [0.16083380579948425, 0.38942837715148926, -0.12123249471187592, 0.3922725021839142]]),
])
def test_small_model_equals_torch(cls, kw, losses, w):
    m, x, y = _model()
    opt = cls(m.parameters(), **kw)
    got = []
    for _ in range(3):
        opt.zero_grad()
        loss = ((m(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        got.append(loss.item())
    np.testing.assert_allclose(got, losses, rtol=1e-6)
    np.testing.assert_allclose(to_np(m[2].weight.detach()), w, rtol=1e-6, atol=1e-7)


# ---- state_dict, repr, validation ---------------------------------------------------------------

@pytest.mark.parametrize("cls,kw", [(optim.Rprop, dict(lr=0.1)),
                                    (optim.ASGD, dict(lr=0.05, t0=2))])
def test_state_dict_round_trip_resumes_identically(cls, kw):
    p, opt = _run(cls, kw, 3)
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0]
    q = torch.tensor(to_np(p.detach()), requires_grad=True)
    opt2 = cls([q], lr=123.0)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == kw["lr"]
    # the loaded state is a copy: stepping the original leaves it alone
    for o, t in ((opt, p), (opt2, q)):
        for _ in range(3):
            o.zero_grad()
            (t ** 4 / 4 + t.sin()).sum().backward()
            o.step()
    np.testing.assert_array_equal(to_np(q.detach()), to_np(p.detach()))
    for k, v in opt.state[p].items():
        np.testing.assert_array_equal(to_np(opt2.state[q][k]), to_np(v), err_msg=k)
    assert opt2.state[q]["step"].item() == 6.0 and opt2.state[q]["step"] is not opt.state[p]["step"]


def test_reprs_equal_torch():
    w = [torch.zeros(1, requires_grad=True)]
    assert repr(optim.Rprop(w, lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2),
                            maximize=True)) == (
        "Rprop (\nParameter Group 0\n    capturable: False\n    differentiable: False\n"
        "    etas: (0.3, 1.5)\n    foreach: None\n    lr: 0.05\n    maximize: True\n"
        "    step_sizes: (0.001, 0.2)\n)")
    assert repr(optim.ASGD(w, lr=0.05, lambd=0.01, alpha=0.5, t0=2, weight_decay=0.1)) == (
        "ASGD (\nParameter Group 0\n    alpha: 0.5\n    capturable: False\n"
        "    differentiable: False\n    foreach: None\n    lambd: 0.01\n    lr: 0.05\n"
        "    maximize: False\n    t0: 2\n    weight_decay: 0.1\n)")


@pytest.mark.parametrize("cls,kw,msg", [
    (optim.Rprop, dict(lr=-1), "Invalid learning rate: -1"),
    (optim.Rprop, dict(etas=(1.0, 1.2)), "Invalid eta values: 1.0, 1.2"),
    (optim.Rprop, dict(etas=(0.5, 0.9)), "Invalid eta values: 0.5, 0.9"),
    (optim.Rprop, dict(etas=(0.0, 1.2)), "Invalid eta values: 0.0, 1.2"),
    (optim.ASGD, dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (optim.ASGD, dict(weight_decay=-1), "Invalid weight_decay value: -1"),
])
def test_bad_hyperparameters_raise_like_torch(cls, kw, msg):
    with pytest.raises(ValueError, match="^" + msg.replace(".", r"\.") + "$"):
        cls([torch.zeros(1, requires_grad=True)], **kw)


# ---- LR schedulers ------------------------------------------------------------------------------

def test_asgd_follows_step_lr():
    p = torch.tensor(P0, dtype=torch.float32, requires_grad=True)
    opt = optim.ASGD([p], lr=0.05, t0=1)
    sched = optim.lr_scheduler.StepLR(opt, 1, 0.5)
    for _ in range(4):
        opt.zero_grad()
        (p ** 4 / 4 + p.sin()).sum().backward()
        opt.step()
        sched.step()
    # torch 2.13: eta is recomputed from the group's lr after every step
    np.testing.assert_allclose(to_np(p.detach()),
                               [[0.36336928606033325, -1.0519063472747803, 1.3035308122634888],
                                [-0.0372399277985096, -0.42354297637939453, 1.1225084066390991]],
                               rtol=1e-6, atol=1e-7)
    assert opt.state[p]["eta"].item() == pytest.approx(0.006249988451600075, rel=1e-7)
    assert opt.param_groups[0]["lr"] == 0.003125


def test_rprop_lr_only_seeds_the_step_sizes():
    # as in PyTorch, a scheduler changes group["lr"] but the per-element step sizes (state)
    # were seeded from it at the first step and then evolve by themselves
    p = torch.tensor(P0, dtype=torch.float32, requires_grad=True)
    opt = optim.Rprop([p], lr=0.1)
    sched = optim.lr_scheduler.ExponentialLR(opt, 0.5)
    for _ in range(4):
        opt.zero_grad()
        (p ** 4 / 4 + p.sin()).sum().backward()
        opt.step()
        sched.step()
    np.testing.assert_allclose(to_np(p.detach()), RPROP_4, rtol=1e-6, atol=1e-7)
    assert opt.param_groups[0]["lr"] == 0.00625


# ---- compiled training steps --------------------------------------------------------------------

def _mlp():
    return nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))


@pytest.mark.parametrize("make_opt,sched", [
    (lambda ps: optim.Rprop(ps, lr=0.01), None),
    (lambda ps: optim.Rprop(ps, lr=0.02, etas=(0.4, 1.3), step_sizes=(1e-4, 0.05),
                            maximize=True), None),
    (lambda ps: optim.ASGD(ps, lr=0.05, t0=3, weight_decay=0.01), None),
    (lambda ps: optim.ASGD(ps, lr=0.05, lambd=0.1, t0=2),
     lambda o: optim.lr_scheduler.StepLR(o, 2, 0.5)),
], ids=["rprop", "rprop-maximize", "asgd", "asgd-steplr"])
def test_compiled_training_step_equals_eager(make_opt, sched):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 10, generator=g), torch.randint(0, 3, (12,), generator=g)
    runs = []
    for compiled in (False, True):
        torch.manual_seed(1)
        m = _mlp()
        opt = make_opt(list(m.parameters()))
        s = sched(opt) if sched else None

        def step():
            opt.zero_grad()
            loss = F.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            return loss
        f = torch.compile(step) if compiled else step
        losses = []
        for _ in range(7):
            losses.append(f().item())
            if s:
                s.step()
        runs.append((losses, [to_np(p.detach()) for p in m.parameters()],
                     [to_np(v) for st in opt.state.values() for v in st.values()]))
    (l0, p0, s0), (l1, p1, s1) = runs
    assert l0 == l1
    assert len(s0) == len(s1) > 0
    for a, b in zip(p0 + s0, p1 + s1):
        np.testing.assert_array_equal(a, b)
    assert f.stats["graph_breaks"] == []
    assert f.stats["replays"] >= 3, f.stats["replay_notes"]
    # the steps trained: the loss went down (up when maximizing)
    assert not math.isnan(l1[-1]) and (l1[-1] > l1[0]) == opt.defaults["maximize"]
