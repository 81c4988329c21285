"""Optimizers: trajectories against NumPy float64 re-implementations of PyTorch's documented
algorithms, the Optimizer API (groups, state_dict, zero_grad, closures) and seed oracles."""
import copy
import math

import numpy as np
import pytest

import framework as torch
from framework import optim
from conftest import assert_close, to_np
from test_optim_rprop_asgd import ref_rprop, ref_asgd

# ---- NumPy float64 references (PyTorch docs pseudo-code) ---------------------------------------


def ref_sgd(p, g, st, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False,
            maximize=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    if momentum:
        if "b" not in st:
            st["b"] = g.copy()
        else:
            st["b"] = momentum * st["b"] + (1 - dampening) * g
        g = g + momentum * st["b"] if nesterov else st["b"]
    return p - lr * g


def ref_adam(p, g, st, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
             maximize=False, decoupled=False):
    b1, b2 = betas
    g = -g if maximize else g
    t = st["t"] = st.get("t", 0) + 1
    m, v = st.get("m", np.zeros_like(p)), st.get("v", np.zeros_like(p))
    if weight_decay:
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    st["m"], st["v"] = m, v
    if amsgrad:
        st["vmax"] = np.maximum(st.get("vmax", np.zeros_like(p)), v)
        v = st["vmax"]
    denom = np.sqrt(v) / math.sqrt(1 - b2 ** t) + eps
    return p - lr / (1 - b1 ** t) * m / denom


def ref_rmsprop(p, g, st, lr, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                maximize=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    sq = st["sq"] = alpha * st.get("sq", 0) + (1 - alpha) * g * g
    if centered:
        ga = st["ga"] = alpha * st.get("ga", 0) + (1 - alpha) * g
        avg = np.sqrt(sq - ga * ga) + eps
    else:
        avg = np.sqrt(sq) + eps
    if momentum > 0:
        st["buf"] = momentum * st.get("buf", 0) + g / avg
        return p - lr * st["buf"]
    return p - lr * g / avg


def ref_adagrad(p, g, st, lr, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                eps=1e-10, maximize=False):
    g = -g if maximize else g
    t = st["t"] = st.get("t", 0) + 1
    if weight_decay:
        g = g + weight_decay * p
    clr = lr / (1 + (t - 1) * lr_decay)
    s = st["s"] = st.get("s", initial_accumulator_value) + g * g
    return p - clr * g / (np.sqrt(s) + eps)


def ref_adadelta(p, g, st, lr, rho=0.9, eps=1e-6, weight_decay=0, maximize=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    sq = st["sq"] = rho * st.get("sq", 0) + (1 - rho) * g * g
    delta = np.sqrt(st.get("acc", 0) + eps) / np.sqrt(sq + eps) * g
    st["acc"] = rho * st.get("acc", 0) + (1 - rho) * delta * delta
    return p - lr * delta


def ref_adamax(p, g, st, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, maximize=False):
    b1, b2 = betas
    g = -g if maximize else g
    t = st["t"] = st.get("t", 0) + 1
    if weight_decay:
        g = g + weight_decay * p
    m = st["m"] = b1 * st.get("m", 0) + (1 - b1) * g
    u = st["u"] = np.maximum(b2 * st.get("u", 0), np.abs(g) + eps)
    return p - lr / (1 - b1 ** t) * m / u


def ref_nadam(p, g, st, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
              decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas
    g = -g if maximize else g
    t = st["t"] = st.get("t", 0) + 1
    if weight_decay:
        if decoupled_weight_decay:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    # PyTorch keeps mu_product as a float32 tensor
    prod = st["prod"] = float(np.float32(st.get("prod", 1.0)) * np.float32(mu))
    m = st["m"] = b1 * st.get("m", 0) + (1 - b1) * g
    v = st["v"] = b2 * st.get("v", 0) + (1 - b2) * g * g
    denom = np.sqrt(v / (1 - b2 ** t)) + eps
    return p - lr * (1 - mu) / (1 - prod) * g / denom - lr * mu_next / (1 - prod * mu_next) * m / denom


def ref_radam(p, g, st, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
              decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas
    g = -g if maximize else g
    t = st["t"] = st.get("t", 0) + 1
    if weight_decay:
        if decoupled_weight_decay:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    m = st["m"] = b1 * st.get("m", 0) + (1 - b1) * g
    v = st["v"] = b2 * st.get("v", 0) + (1 - b2) * g * g
    mhat = m / (1 - b1 ** t)
    rho_inf = 2 / (1 - b2) - 1
    rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
    if rho_t > 5:
        rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return p - lr * mhat * rect * math.sqrt(1 - b2 ** t) / (np.sqrt(v) + eps)
    return p - lr * mhat


def grad_fn(p):
    """A non-trivial loss gradient: d/dp of sum(p**4/4 + sin(p)) = p**3 + cos(p)."""
    return p ** 3 + np.cos(p)


def ref_adamw(p, g, st, lr, weight_decay=1e-2, **kw):
    return ref_adam(p, g, st, lr, weight_decay=weight_decay, decoupled=True, **kw)


CASES = [
    (optim.SGD, ref_sgd, dict(lr=0.1)),
    (optim.SGD, ref_sgd, dict(lr=0.1, momentum=0.9)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.1)),
    (optim.SGD, ref_sgd, dict(lr=0.01, momentum=0.8, nesterov=True, maximize=True)),
    (optim.Adam, ref_adam, dict(lr=0.01)),
    (optim.Adam, ref_adam, dict(lr=0.02, betas=(0.8, 0.9), weight_decay=0.1, amsgrad=True)),
    (optim.Adam, ref_adam, dict(lr=0.02, maximize=True, eps=1e-3)),
    (optim.AdamW, ref_adamw, dict(lr=0.01)),
    (optim.AdamW, ref_adamw, dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01)),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.1)),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01, alpha=0.9, momentum=0.5, maximize=True)),
    (optim.Adagrad, ref_adagrad, dict(lr=0.1)),
    (optim.Adagrad, ref_adagrad, dict(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.5,
                                      weight_decay=0.05)),
    (optim.Adadelta, ref_adadelta, dict(lr=1.0)),
    (optim.Adadelta, ref_adadelta, dict(lr=0.5, rho=0.8, weight_decay=0.1, maximize=True)),
    (optim.Adamax, ref_adamax, dict(lr=0.02)),
    (optim.Adamax, ref_adamax, dict(lr=0.02, betas=(0.7, 0.9), weight_decay=0.1)),
    (optim.NAdam, ref_nadam, dict(lr=0.02)),
    (optim.NAdam, ref_nadam, dict(lr=0.02, weight_decay=0.1, momentum_decay=0.01)),
    (optim.NAdam, ref_nadam, dict(lr=0.02, weight_decay=0.1, decoupled_weight_decay=True)),
    (optim.RAdam, ref_radam, dict(lr=0.02)),
    (optim.RAdam, ref_radam, dict(lr=0.02, weight_decay=0.1, decoupled_weight_decay=True)),
    (optim.Rprop, ref_rprop, dict(lr=0.02)),
    (optim.Rprop, ref_rprop, dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2),
                                  maximize=True)),
    (optim.ASGD, ref_asgd, dict(lr=0.02)),
    (optim.ASGD, ref_asgd, dict(lr=0.05, lambd=0.01, alpha=0.5, t0=2, weight_decay=0.1)),
]
IDS = [f"{c.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for c, _, kw in CASES]
P0 = np.array([[0.5, -1.2, 2.0], [0.1, -0.3, 1.5]])


def run_kiln(cls, kw, steps, dtype=torch.float64):
    p = torch.tensor(P0, dtype=dtype, requires_grad=True)
    opt = cls([p], **kw)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss = (p ** 4 / 4 + p.sin()).sum()
        loss.backward()
        opt.step()
        out.append(to_np(p.detach()).copy())
    return out, opt, p


@pytest.mark.parametrize("cls,ref,kw", CASES, ids=IDS)
def test_trajectory_matches_numpy(cls, ref, kw):
    traj, _, _ = run_kiln(cls, kw, 8)
    p, st = P0.copy(), {}
    for t in range(8):
        p = ref(p, grad_fn(p), st, **kw)
        np.testing.assert_allclose(traj[t], p, rtol=1e-10, atol=1e-12, err_msg=f"step {t + 1}")


@pytest.mark.parametrize("cls,ref,kw", CASES, ids=IDS)
def test_trajectory_matches_torch_float32(cls, ref, kw):
    torch_ = pytest.importorskip("torch")
    traj, _, _ = run_kiln(cls, kw, 6, dtype=torch.float32)
    p = torch_.tensor(P0, dtype=torch_.float32, requires_grad=True)
    opt = getattr(torch_.optim, cls.__name__)([p], **kw)
    for t in range(6):
        opt.zero_grad()
        (p ** 4 / 4 + p.sin()).sum().backward()
        opt.step()
        np.testing.assert_allclose(traj[t], p.detach().numpy(), rtol=2e-6, atol=2e-6)


def test_radam_switches_to_rectified_after_step_5():
    # rho_t > 5 first happens at step 6 with beta2 = 0.999: steps 1..5 are plain momentum SGD
    b2 = 0.999
    rho_inf = 2 / (1 - b2) - 1
    rhos = [rho_inf - 2 * t * b2 ** t / (1 - b2 ** t) for t in range(1, 8)]
    assert [r > 5 for r in rhos] == [False] * 5 + [True] * 2
    p = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = optim.RAdam([p], lr=0.1)
    p.grad = torch.tensor([2.0], dtype=torch.float64)
    opt.step()
    # step 1: m_hat = g = 2, un-rectified update p - lr * m_hat
    assert_close(p.detach(), [0.8], rtol=0, atol=1e-12)


# ---- hand-derived single steps ---------------------------------------------------------------

def test_adam_first_step_is_lr_times_sign():
    # seed T3: Adam's first step moves each weight by lr * sign(g) (up to eps)
    w = torch.tensor([[2., 2.], [2., 2.]], requires_grad=True)
    opt = optim.Adam([w], 0.001)
    w.grad = torch.tensor([[3., -7.], [0.5, 1e-3]])
    opt.step()
    assert_close(w.detach(), [[1.999, 2.001], [1.999, 1.999]], rtol=0, atol=2e-7)
    st = opt.state[w]
    assert st["step"].item() == 1.0 and st["step"].dtype == torch.float32
    assert_close(st["exp_avg"], 0.1 * np.array([[3., -7.], [0.5, 1e-3]]), rtol=1e-6)


def test_sgd_quadratic_seed_oracle():
    # catalog-001-004 sec. 4.9 / 13.1: 500 SGD steps on (x-1)^2 end at x = 1.0000, y = 0.
    x = torch.tensor(0.0, requires_grad=True)
    a, b, c = torch.tensor(1.0), torch.tensor(-2.0), torch.tensor(1.0)
    opt = torch.optim.SGD(params=[x], lr=0.01)

    def f(x):
        return a * torch.pow(x, 2) + b * x + c
    for _ in range(500):
        opt.zero_grad()
        y = f(x)
        y.backward()
        opt.step()
    assert abs(x.item() - 0.999959) < 2e-6
    assert repr(f(x).data) == "tensor(0.)"
    assert repr(x.data) == "tensor(1.0000)"


def test_positional_betas_list_and_per_group_options():
    w1 = torch.ones(2, requires_grad=True)
    w2 = torch.ones(3, requires_grad=True)
    opt = optim.Adam([w1], 0.01, [0, 0.999])
    assert opt.param_groups[0]["betas"] == (0, 0.999)
    opt = optim.SGD([{"params": [w1]}, {"params": [w2], "lr": 1e-3}], lr=1e-2, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [1e-2, 1e-3]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.9]
    w1.grad, w2.grad = torch.ones(2), torch.ones(3)
    opt.step()
    assert_close(w1.detach(), [0.99, 0.99])
    assert_close(w2.detach(), [0.999] * 3)


def test_add_param_group_and_frozen_params():
    w1 = torch.ones(2, requires_grad=True)
    w2 = torch.ones(2, requires_grad=True)
    frozen = torch.ones(2)        # no grad ever: never updated
    opt = optim.SGD([w1, frozen], lr=0.5)
    opt.add_param_group({"params": w2, "lr": 0.1})
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["momentum"] == 0
    (w1.sum() + w2.sum() * 2).backward()
    opt.step()
    assert_close(w1.detach(), [0.5, 0.5])
    assert_close(w2.detach(), [0.8, 0.8])
    assert_close(frozen, [1.0, 1.0])
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [w1]})
    assert len(opt.param_groups) == 2


def test_bad_arguments():
    w = torch.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.SGD([w], lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        optim.Adam([w], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.Adam(w)
    with pytest.raises(TypeError, match="ordered collections"):
        optim.Adam([{"params": {w}}])
    with pytest.raises(ValueError, match="non-leaf"):
        optim.Adam([w * 2])
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        optim.Adam([w, 3.0])


def test_zero_grad_modes():
    w = torch.ones(2, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * 3).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert_close(w.grad, [0.0, 0.0])
    opt.zero_grad()
    assert w.grad is None


def test_closure_is_called_with_grad_and_returns_loss():
    w = torch.tensor([3.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.25)
    calls = []

    def closure():
        opt.zero_grad()
        loss = (w ** 2).sum()
        loss.backward()
        calls.append(loss.item())
        return loss
    with torch.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 9.0 and calls == [9.0]
    assert_close(w.detach(), [1.5])     # 3 - 0.25 * 6


def test_state_dict_layout_and_round_trip():
    w1 = torch.tensor([1.0, 2.0], requires_grad=True)
    w2 = torch.tensor([[0.5]], requires_grad=True)
    w3 = torch.tensor([0.0], requires_grad=True)        # never gets a grad: no state
    opt = optim.Adam([{"params": [w1, w3]}, {"params": [w2], "lr": 0.5}], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        ((w1 ** 2).sum() + (w2 ** 3).sum()).backward()
        opt.step()
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert sorted(sd["state"]) == [0, 2]
    assert sd["param_groups"][0]["params"] == [0, 1]
    assert sd["param_groups"][1]["params"] == [2]
    assert sd["param_groups"][1]["lr"] == 0.5
    assert sd["state"][0]["step"].item() == 3.0
    assert set(sd["state"][2]) == {"step", "exp_avg", "exp_avg_sq"}

    # continue from a copy: identical trajectories
    v1, v2, v3 = (torch.tensor(to_np(t.detach()).copy(), requires_grad=True) for t in (w1, w2, w3))
    opt2 = optim.Adam([{"params": [v1, v3]}, {"params": [v2]}], lr=0.3)
    sd2 = copy.deepcopy(sd)
    opt2.load_state_dict(sd2)
    assert opt2.param_groups[1]["lr"] == 0.5 and opt2.param_groups[0]["lr"] == 0.1
    assert opt2.param_groups[0]["params"][0] is v1
    for o, (a, b) in ((opt, (w1, w2)), (opt2, (v1, v2))):
        for _ in range(2):
            o.zero_grad()
            ((a ** 2).sum() + (b ** 3).sum()).backward()
            o.step()
    assert_close(v1.detach(), to_np(w1.detach()), rtol=0, atol=0)
    assert_close(v2.detach(), to_np(w2.detach()), rtol=0, atol=0)
    # load_state_dict copies: stepping opt2 leaves the dict it loaded from unchanged
    assert sd2["state"][0]["step"].item() == 3.0
    assert opt2.state[v1]["step"].item() == 5.0


def test_load_state_dict_mismatch_raises_and_keeps_state():
    w = torch.ones(2, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    w.grad = torch.ones(2)
    opt.step()
    before = opt.state_dict()
    other = optim.SGD([torch.ones(1, requires_grad=True), torch.ones(1, requires_grad=True)], lr=1)
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict(other.state_dict())
    two = optim.SGD([{"params": [torch.ones(1, requires_grad=True)]},
                     {"params": [torch.ones(1, requires_grad=True)]}], lr=1)
    with pytest.raises(ValueError, match="number of parameter groups"):
        opt.load_state_dict(two.state_dict())
    assert opt.param_groups[0]["lr"] == 0.1
    assert_close(opt.state[w]["momentum_buffer"], to_np(before["state"][0]["momentum_buffer"]))


def test_state_dict_matches_torch_layout():
    torch_ = pytest.importorskip("torch")
    w = torch.ones(3, requires_grad=True)
    tw = torch_.ones(3, requires_grad=True)
    for cls in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam",
                "RAdam", "Rprop", "ASGD"):
        kw = {"lr": 0.1, "momentum": 0.9} if cls in ("SGD", "RMSprop") else {"lr": 0.1}
        o, to = getattr(optim, cls)([w], **kw), getattr(torch_.optim, cls)([tw], **kw)
        w.grad, tw.grad = torch.ones(3), torch_.ones(3)
        o.step()
        to.step()
        a, b = o.state_dict(), to.state_dict()
        assert a["param_groups"][0].keys() == b["param_groups"][0].keys(), cls
        assert a["param_groups"][0]["params"] == b["param_groups"][0]["params"]
        assert a["state"][0].keys() == b["state"][0].keys(), cls
        for k, v in b["state"][0].items():
            np.testing.assert_allclose(to_np(a["state"][0][k]), v.numpy(), rtol=1e-6)


def test_eval_does_not_block_updates_T3():
    # seed T3 without nn: two "modules" as bare weights; out = W2 @ (W1 @ t), mean
    w1 = torch.tensor([[2., 2.], [2., 2.]], requires_grad=True)
    w2 = torch.tensor([[2., 2.], [2., 2.]], requires_grad=True)
    frozen = torch.tensor([[2., 2.], [2., 2.]])
    op1, op2 = optim.Adam([w1], 0.001), optim.Adam([w2], 0.001)
    op1.zero_grad()
    op2.zero_grad()
    t = torch.tensor([[1., 2.], [3, 4]])
    out = w2.matmul(w1.matmul(t)).mean()
    assert repr(out) == "tensor(40., grad_fn=<MeanBackward0>)"
    out.backward()
    assert_close(w1.grad, [[3, 7], [3, 7]])
    assert_close(w2.grad, [[5, 5], [5, 5]])
    op1.step()
    op2.step()
    assert_close(w1.detach(), np.full((2, 2), 1.999), rtol=0, atol=1e-7)
    assert_close(w2.detach(), np.full((2, 2), 1.999), rtol=0, atol=1e-7)
    assert_close(frozen, np.full((2, 2), 2.0))


def test_T4_variant_adam_betas_zero():
    # catalog-000 T4 variant: E.grad [[6,8],[9,12]], D.grad all 3.5; Adam(lr=0.01, betas=[0,.999])
    e = torch.full((2, 2), 1.5, requires_grad=True)
    d = torch.full((2, 2), 3.5, requires_grad=True)
    opt = optim.Adam([e, d], lr=0.01, betas=[0, 0.999])
    e.grad = torch.tensor([[6., 8.], [9., 12.]])
    d.grad = torch.full((2, 2), 3.5)
    opt.step()
    assert abs(e.detach().mean().item() - 1.49) < 1e-6
    assert abs(d.detach().mean().item() - 3.49) < 1e-6


def test_step_keeps_dtype_and_does_not_record_graph():
    w = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = optim.Adam([w], lr=0.1)
    (w * 2).sum().backward()
    opt.step()
    assert w.dtype == torch.float64 and w.is_leaf and w.grad_fn is None
    assert opt.state[w]["exp_avg"].dtype == torch.float64
    assert not opt.state[w]["exp_avg"].requires_grad


def test_repr():
    w = torch.ones(1, requires_grad=True)
    r = repr(optim.SGD([w], lr=0.1))
    assert r.startswith("SGD (\nParameter Group 0\n") and "    lr: 0.1\n" in r


def _foreach_run(cls, kw, foreach, steps=6, skip=None):
    rng = np.random.default_rng(5)
    shapes = [(7, 3), (3,), (2, 2, 5), (1,), (4, 6)]
    ps = [torch.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
          for s in shapes]
    opt = cls(ps, foreach=foreach, **kw)
    for k in range(steps):
        for i, p in enumerate(ps):
            if skip is not None and skip(k, i):
                p.grad = None             # this parameter sits the step out: its step count lags
            else:
                p.grad = torch.tensor(rng.standard_normal(p.shape).astype(np.float32))
        opt.step()
    return ps, opt


@pytest.mark.parametrize("cls,kw", [
    (optim.Adam, dict(lr=0.01)),
    (optim.Adam, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    (optim.AdamW, dict(lr=0.02, betas=(0.3, 0.9))),           # the other lerp formula
    (optim.AdamW, dict(lr=0.01, maximize=True, amsgrad=True)),
])
@pytest.mark.parametrize("skip", [None, lambda k, i: i == 1 and k % 2 == 0])
def test_foreach_path_equals_the_per_parameter_loop_bit_for_bit(cls, kw, skip):
    a, oa = _foreach_run(cls, kw, True, skip=skip)
    b, ob = _foreach_run(cls, kw, False, skip=skip)
    assert oa._use_foreach(oa.param_groups[0], a) and not ob._use_foreach(ob.param_groups[0], b)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.detach().cpu().numpy(), q.detach().cpu().numpy())
    for sa, sb in zip(oa.state.values(), ob.state.values()):
        assert set(sa) == set(sb)
        for key in sa:
            np.testing.assert_array_equal(sa[key].cpu().numpy(), sb[key].cpu().numpy(), err_msg=key)


def test_foreach_flag_selects_the_multi_tensor_path():
    small = [torch.zeros(10, requires_grad=True) for _ in range(3)]
    mixed = [torch.zeros(4, requires_grad=True), torch.zeros(4, dtype=torch.float64,
                                                              requires_grad=True)]
    assert not optim.Adam(small)._use_foreach({"foreach": None}, small)      # the default
    assert optim.Adam(small)._use_foreach({"foreach": True}, small)
    assert not optim.Adam(mixed)._use_foreach({"foreach": True}, mixed)      # dtypes differ
    assert not optim.SGD(small, lr=0.1)._use_foreach({"foreach": True}, small)  # no foreach path


def test_foreach_step_compiles_and_replays_equal_to_eager():
    import framework.nn as nn
    import framework.nn.functional as F

    def setup():
        torch.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
        return m, optim.AdamW(m.parameters(), lr=0.01, foreach=True)
    (m1, o1), (m2, o2) = setup(), setup()

    def step(m, o, x, y):
        o.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        o.step()
        return loss
    c = torch.compile(lambda x, y: step(m2, o2, x, y))
    # the default device's generator (the interpret suite runs this file on a device,
    # where a draw takes only that device's generator, as in PyTorch)
    g = torch.Generator(torch.get_default_device()).manual_seed(1)
    for _ in range(6):
        x, y = torch.randn(5, 6, generator=g), torch.randint(0, 3, (5,), generator=g)
        assert_close(c(x, y), step(m1, o1, x, y), rtol=1e-5, atol=1e-6)
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert_close(q, p, rtol=1e-5, atol=1e-6)
    assert c.stats["replays"] == 3, c.stats["replay_notes"]


def _rosenbrock_lbfgs(lib, line_search_fn, steps=5):
    lib.manual_seed(0)
    x = lib.randn(6, dtype=lib.float64).requires_grad_()
    opt = lib.optim.LBFGS([x], lr=1, max_iter=20, history_size=10, line_search_fn=line_search_fn)

    def closure():
        opt.zero_grad()
        loss = ((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2).sum()
        loss.backward()
        return loss
    losses = [opt.step(closure).item() for _ in range(steps)]
    return losses, x.detach(), opt.state[x]


@pytest.mark.parametrize("ls,evals,iters", [(None, 64, 64), ("strong_wolfe", 56, 47)])
def test_lbfgs_minimises_rosenbrock_as_pytorch(ls, evals, iters):
    # PyTorch 2.13 takes the same numbers of evaluations and iterations from the same start
    # (torch.manual_seed(0); the cpu generator is PyTorch's)
    losses, x, st = _rosenbrock_lbfgs(torch, ls)
    assert losses[-1] < 1e-9 and losses == sorted(losses, reverse=True)
    np.testing.assert_allclose(x.cpu().numpy(), np.ones(6), atol=1e-4)
    assert (st["func_evals"], st["n_iter"]) == (evals, iters)
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        _rosenbrock_lbfgs(torch, "backtracking")
    with pytest.raises(ValueError, match="per-parameter options"):
        torch.optim.LBFGS([{"params": [torch.zeros(1, requires_grad=True)]},
                           {"params": [torch.zeros(1, requires_grad=True)]}])


@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
def test_lbfgs_against_pytorch(ls):
    real = pytest.importorskip("torch", reason="an optional cross-check against PyTorch itself")
    a, b = _rosenbrock_lbfgs(real, ls), _rosenbrock_lbfgs(torch, ls)
    np.testing.assert_allclose(b[0], a[0], rtol=1e-6)
    np.testing.assert_allclose(b[1].numpy(), a[1].numpy(), rtol=1e-6, atol=1e-9)
