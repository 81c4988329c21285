"""LR schedulers: learning-rate histories against hand-derived closed forms, seed oracles,
state_dict resume, and (when installed) real torch."""
import math
import warnings

import numpy as np
import pytest

import framework as torch
from framework import optim
from framework.optim import lr_scheduler as L


def make_opt(lr=0.1, cls=optim.SGD, groups=1, **kw):
    ps = [torch.zeros(2, requires_grad=True) for _ in range(groups)]
    if groups == 1:
        return cls(ps, lr=lr, **kw)
    return cls([{"params": [p], "lr": lr * (i + 1)} for i, p in enumerate(ps)], lr=lr, **kw)


def history(opt, sched, n, metric=None):
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(n):
            opt.step()
            sched.step() if metric is None else sched.step(metric(i))
            out.append(sched.get_last_lr()[0] if metric is None else opt.param_groups[0]["lr"])
    return out


def test_exponential_seed_oracle():
    # catalog-001-004 sec. 7.2: lr_history[i] == 0.1 * 0.96 ** (i + 1)
    opt = make_opt(0.1, optim.Adam)
    s = L.ExponentialLR(opt, gamma=0.96)
    hist = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(100):
            s.step()
            hist.append(opt.state_dict()["param_groups"][0]["lr"])
    np.testing.assert_allclose(hist, [0.1 * 0.96 ** (i + 1) for i in range(100)], rtol=1e-12)
    assert abs(hist[0] - 0.096) < 1e-15 and abs(hist[99] - 0.0016870) < 1e-7


def test_steplr_seed_oracle_and_initial_lr():
    opt = make_opt(0.1, optim.Adam)
    s = L.StepLR(opt, step_size=20, gamma=0.5)
    assert opt.param_groups[0]["initial_lr"] == 0.1 and s.get_last_lr() == [0.1]
    hist = history(opt, s, 100)
    np.testing.assert_allclose(hist, [0.1 * 0.5 ** ((i + 1) // 20) for i in range(100)], rtol=1e-12)


def test_scheduler_before_optimizer_warns():
    opt = make_opt()
    s = L.StepLR(opt, 2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        s.step()


def test_multistep_linear_constant():
    opt = make_opt(1.0)
    h = history(opt, L.MultiStepLR(opt, milestones=[2, 5, 5], gamma=0.5), 7)
    np.testing.assert_allclose(h, [1, 0.5, 0.5, 0.5, 0.125, 0.125, 0.125])
    opt = make_opt(1.0)
    s = L.LinearLR(opt, start_factor=0.5, end_factor=1.0, total_iters=4)
    assert s.get_last_lr() == [0.5]
    np.testing.assert_allclose(history(opt, s, 6), [0.625, 0.75, 0.875, 1.0, 1.0, 1.0])
    opt = make_opt(0.9)
    s = L.ConstantLR(opt, factor=1 / 3, total_iters=2)
    np.testing.assert_allclose(s.get_last_lr(), [0.3])
    np.testing.assert_allclose(history(opt, s, 4), [0.3, 0.9, 0.9, 0.9])


def test_lambda_and_multiplicative():
    opt = make_opt(0.5, groups=2)
    s = L.LambdaLR(opt, [lambda e: 1 / (e + 1), lambda e: 0.9 ** e])
    history(opt, s, 3)
    assert s.get_last_lr() == [0.5 / 4, 1.0 * 0.9 ** 3]
    opt = make_opt(1.0)
    s = L.MultiplicativeLR(opt, lambda e: 0.5)
    np.testing.assert_allclose(history(opt, s, 3), [0.5, 0.25, 0.125])
    with pytest.raises(ValueError, match="Expected 1 lr_lambdas"):
        L.LambdaLR(make_opt(), [lambda e: 1, lambda e: 1])


def test_cosine_annealing_matches_closed_form_in_first_period():
    opt = make_opt(0.1)
    s = L.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
    h = history(opt, s, 10)
    ref = [0.001 + 0.099 * (1 + math.cos(math.pi * (i + 1) / 10)) / 2 for i in range(10)]
    np.testing.assert_allclose(h, ref, rtol=1e-10)
    # the recursive form continues past T_max, climbing back (period 2*T_max)
    h2 = history(opt, s, 10)
    ref2 = [0.001 + 0.099 * (1 + math.cos(math.pi * (i + 11) / 10)) / 2 for i in range(10)]
    np.testing.assert_allclose(h2, ref2, rtol=1e-9, atol=1e-12)


def test_warm_restarts():
    opt = make_opt(1.0)
    s = L.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2)
    h = history(opt, s, 7)
    c = lambda t, T: (1 + math.cos(math.pi * t / T)) / 2  # noqa: E731
    np.testing.assert_allclose(h, [c(1, 2), 1.0, c(1, 4), c(2, 4), c(3, 4), 1.0, c(1, 8)],
                               atol=1e-12)


def test_onecycle_cos_and_momentum():
    opt = make_opt(0.1, optim.SGD, momentum=0.9)
    s = L.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    g = opt.param_groups[0]
    assert g["lr"] == pytest.approx(0.04) and g["momentum"] == 0.95
    lrs, moms = [g["lr"]], [g["momentum"]]
    for _ in range(9):
        opt.step()
        s.step()
        lrs.append(g["lr"])
        moms.append(g["momentum"])
    # warm-up ends at step pct_start*10 - 1 = 2: cos from 0.04 to 1.0 over 2 steps
    assert lrs[1] == pytest.approx(1.0 + (0.04 - 1.0) / 2 * (math.cos(math.pi / 2) + 1))
    assert lrs[2] == pytest.approx(1.0) and moms[2] == pytest.approx(0.85)
    assert lrs[9] == pytest.approx(0.04 / 1e4)
    assert moms[9] == pytest.approx(0.95)
    opt.step()
    s.step()
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        opt.step()
        s.step()


def test_onecycle_linear_three_phase_adam_betas():
    opt = make_opt(0.1, optim.Adam)
    s = L.OneCycleLR(opt, max_lr=1.0, total_steps=10, anneal_strategy="linear",
                     three_phase=True, pct_start=0.3)
    h = [opt.param_groups[0]["lr"]] + history(opt, s, 9)
    # phases end at steps 2, 4, 9: 0.04 -> 1 -> 0.04 -> 4e-6, linearly
    ref = [0.04, 0.52, 1.0, 0.52, 0.04] + [0.04 + (4e-6 - 0.04) * k / 5 for k in range(1, 6)]
    np.testing.assert_allclose(h, ref, rtol=1e-10)
    assert opt.param_groups[0]["betas"][0] == pytest.approx(0.95)


def test_cyclic_modes():
    opt = make_opt(0.1, optim.SGD, momentum=0.9)
    s = L.CyclicLR(opt, base_lr=0.1, max_lr=0.5, step_size_up=2, mode="triangular2")
    h = [s.get_last_lr()[0]] + history(opt, s, 8)
    np.testing.assert_allclose(h, [0.1, 0.3, 0.5, 0.3, 0.1, 0.2, 0.3, 0.2, 0.1], rtol=1e-12)
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.9)
    opt = make_opt(0.1, optim.SGD, momentum=0.9)
    s = L.CyclicLR(opt, 0.1, 0.5, step_size_up=2, mode="exp_range", gamma=0.5)
    h = [s.get_last_lr()[0]] + history(opt, s, 3)
    np.testing.assert_allclose(h, [0.1, 0.1 + 0.2 * 0.5, 0.1 + 0.4 * 0.25, 0.1 + 0.2 * 0.125])
    with pytest.raises(ValueError, match="momentum"):
        L.CyclicLR(make_opt(0.1, optim.Adagrad), 0.1, 0.5)


def test_reduce_on_plateau_seed_config():
    opt = make_opt(1.0, optim.Adam)
    s = L.ReduceLROnPlateau(optimizer=opt, mode="min", factor=0.5, patience=2,
                            threshold=1e-4, threshold_mode="abs", cooldown=1, min_lr=0.2,
                            eps=1e-8)
    losses = [5, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]
    h = []
    for v in losses:
        s.step(v)
        h.append(opt.param_groups[0]["lr"])
    # bad epochs 1,2,3 (3 > patience) -> halve at epoch 5; cooldown 1 eats one epoch,
    # then 3 more bad epochs -> halve at 9; then clamp at min_lr 0.2 (and no change within eps)
    assert h == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25]
    for _ in range(8):
        s.step(4)
    assert opt.param_groups[0]["lr"] == 0.2
    assert s.get_last_lr() == [0.2]


def test_reduce_on_plateau_max_rel_and_errors():
    opt = make_opt(1.0)
    s = L.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=0, threshold=0.1)
    s.step(1.0)
    s.step(1.05)     # not better by 10% -> bad epoch > patience 0 -> reduce
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    s.step(1.2)      # better than 1.1
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        L.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode avg is unknown"):
        L.ReduceLROnPlateau(opt, mode="avg")
    with pytest.raises(TypeError, match="is not an Optimizer"):
        L.StepLR(object(), 1)


def test_sequential_and_chained():
    opt = make_opt(1.0)
    s1 = L.ConstantLR(opt, factor=0.1, total_iters=2)
    s2 = L.ExponentialLR(opt, gamma=0.9)
    s = L.SequentialLR(opt, [s1, s2], milestones=[2])
    h = [s.get_last_lr()[0]] + history(opt, s, 5)
    np.testing.assert_allclose(h, [0.1, 0.1, 1.0, 0.9, 0.81, 0.729])
    opt = make_opt(1.0)
    s = L.ChainedScheduler([L.ConstantLR(opt, factor=0.1, total_iters=2),
                            L.ExponentialLR(opt, gamma=0.9)])
    h = [opt.param_groups[0]["lr"]] + history(opt, s, 4)
    # ExponentialLR's construction step does not decay (PyTorch 2.x), ConstantLR's does
    np.testing.assert_allclose(h, [0.1, 0.09, 0.81, 0.729, 0.6561])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        L.ChainedScheduler([L.ReduceLROnPlateau(opt)])


def test_state_dict_resume_continues_history():
    opt = make_opt(0.1)
    s = L.CosineAnnealingLR(opt, T_max=8)
    history(opt, s, 3)
    sd, osd = s.state_dict(), opt.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 3
    rest = history(opt, s, 4)
    opt2 = make_opt(0.5)
    opt2.load_state_dict(osd)
    s2 = L.CosineAnnealingLR(opt2, T_max=8)
    s2.load_state_dict(sd)
    opt2.param_groups[0]["lr"] = sd["_last_lr"][0]
    assert history(opt2, s2, 4) == rest


@pytest.mark.parametrize("name,kw", [
    ("StepLR", dict(step_size=3, gamma=0.3)),
    ("MultiStepLR", dict(milestones=[2, 4, 4, 9], gamma=0.5)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=5, eta_min=0.01)),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=2, eta_min=0.001)),
    ("LinearLR", dict(start_factor=0.2, total_iters=6)),
    ("ConstantLR", dict(factor=0.25, total_iters=4)),
    ("PolynomialLR", dict(total_iters=6, power=2.0)),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=25)),
    ("OneCycleLR", dict(max_lr=[1.0, 2.0], total_steps=25, three_phase=True,
                        anneal_strategy="linear")),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=3, step_size_down=5,
                      mode="triangular2")),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=4, mode="exp_range",
                      gamma=0.9)),
])
def test_against_torch(name, kw):
    torch_ = pytest.importorskip("torch")
    ours = make_opt(0.1, optim.SGD, groups=2, momentum=0.9)
    tp = [torch_.zeros(2, requires_grad=True) for _ in range(2)]
    theirs = torch_.optim.SGD([{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(tp)],
                              lr=0.1, momentum=0.9)
    a = getattr(L, name)(ours, **kw)
    b = getattr(torch_.optim.lr_scheduler, name)(theirs, **kw)
    for _ in range(24):
        ours.step()
        theirs.step()
        a.step()
        b.step()
        np.testing.assert_allclose(a.get_last_lr(), b.get_last_lr(), rtol=1e-12, atol=1e-15)
        assert [g["momentum"] for g in ours.param_groups] == \
            pytest.approx([g["momentum"] for g in theirs.param_groups])


def test_plateau_against_torch():
    torch_ = pytest.importorskip("torch")
    metrics = [1.0, 0.9, 0.95, 0.91, 0.9, 0.9, 0.89999, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85]
    for kw in (dict(patience=1, cooldown=2), dict(mode="max", threshold_mode="abs", patience=0),
               dict(patience=2, min_lr=0.05, factor=0.3)):
        ours = make_opt(1.0)
        theirs = torch_.optim.SGD([torch_.zeros(2, requires_grad=True)], lr=1.0)
        a = L.ReduceLROnPlateau(ours, **kw)
        b = torch_.optim.lr_scheduler.ReduceLROnPlateau(theirs, **kw)
        for m in metrics:
            a.step(m)
            b.step(m)
            assert a.get_last_lr() == b.get_last_lr()


def test_old_lrscheduler_name_is_a_subclass_not_an_alias():
    from framework.optim.lr_scheduler import LRScheduler, _LRScheduler, StepLR
    assert _LRScheduler is not LRScheduler and issubclass(_LRScheduler, LRScheduler)
    assert not issubclass(StepLR, _LRScheduler)

    class Halving(_LRScheduler):
        def get_lr(self):
            return [b * 0.5 ** self.last_epoch for b in self.base_lrs]

    w = torch.nn.Parameter(torch.ones(1))
    opt = torch.optim.SGD([w], lr=0.8)
    s = Halving(opt)
    lrs = []
    for _ in range(3):
        opt.step()
        s.step()
        lrs.append(s.get_last_lr()[0])
    assert lrs == [0.4, 0.2, 0.1]
