"""compile(fn) replays: once two consecutive traces of a compiled function with the same guards
are identical and the trace changed nothing it can reach except through the region (in-place
writes, .grad, the return value), later calls run the recorded plan without running the
Python. A replayed training step must equal eager step for step, or not replay at all."""
import numpy as np
import pytest

import framework as torch
from framework import nn, optim
import framework.nn.functional as F


def _mlp():
    return nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(),
                         nn.Linear(16, 3))


def _cnn(p=0.0):
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(p), nn.Linear(64, 3))


def _eq(got, want, err_msg="", tol=1.0):
    # float32 rounding relative to the array's scale: an element that cancels (a momentum
    # of -0.21 summed from terms of ~15) keeps the absolute error of its terms, and kernels
    # may sum in another order than eager (Triton's dot on the interpret device; BLAS kernels
    # differ between CPUs)
    want = np.asarray(want)
    scale = float(np.max(np.abs(want), initial=1.0)) if want.dtype.kind == "f" else 1.0
    np.testing.assert_allclose(got, want, rtol=1e-5 * tol, atol=1e-6 * scale * tol,
                               err_msg=err_msg)


def _batch(s, cnn=False):
    # the default device's generator (the interpret suite runs this file on a device,
    # where a draw takes only that device's generator, as in PyTorch)
    g = torch.Generator(torch.get_default_device()).manual_seed(s)
    x = torch.randn(8, 1, 8, 8, generator=g) if cnn else torch.randn(8, 10, generator=g)
    return x, torch.randint(0, 3, (8,), generator=g)


def _setup(make, opt_cls=optim.AdamW, **kw):
    torch.manual_seed(0)
    m = make()
    return m, opt_cls(m.parameters(), **kw)


def _same(m1, o1, m2, o2, what="", tol=1.0):
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        _eq(b.cpu().numpy(), a.cpu().numpy(), err_msg=f"{what} {k}", tol=tol)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert (p1.grad is None) == (p2.grad is None), what
        if p1.grad is not None:
            _eq(p2.grad.cpu().numpy(), p1.grad.cpu().numpy(), err_msg=f"{what} grad", tol=tol)
    for s1, s2 in zip(o1.state.values(), o2.state.values()):
        for k in s1:
            _eq(np.asarray(s2[k].cpu().numpy()), np.asarray(s1[k].cpu().numpy()),
                err_msg=f"{what} {k}", tol=tol)


def _run_both(make, step_fn, steps=7, cnn=False, opt_cls=optim.AdamW, **kw):
    """step_fn(model, opt, x, y) run eagerly and compiled side by side; states compared after
    every step. Returns the compiled function."""
    m1, o1 = _setup(make, opt_cls, **kw)
    m2, o2 = _setup(make, opt_cls, **kw)
    cstep = torch.compile(lambda x, y: step_fn(m2, o2, x, y))
    for s in range(steps):
        x, y = _batch(s, cnn)
        torch.manual_seed(100 + s)          # (dropout: both draw the same masks)
        l1 = step_fn(m1, o1, x, y)
        torch.manual_seed(100 + s)
        l2 = cstep(x, y)
        _eq(l2.item(), l1.item(), err_msg=f"loss at step {s}")
        _same(m1, o1, m2, o2, f"step {s}")
    return cstep


def _train_step(model, opt, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


def test_whole_training_step_replays_and_equals_eager():
    c = _run_both(_mlp, _train_step, lr=1e-2)
    # call 1 creates the optimizer state (not replayable), calls 2 and 3 trace identically
    assert c.stats["replays"] == 4, c.stats["replay_notes"]
    assert any("replay enabled" in n for n in c.stats["replay_notes"])
    assert c.run_counts() and sum(c.run_counts().values()) == 7


def test_cnn_step_with_batchnorm_buffers_replays_and_equals_eager():
    c = _run_both(_cnn, _train_step, cnn=True, lr=1e-2)
    assert c.stats["replays"] == 4, c.stats["replay_notes"]


@pytest.mark.parametrize("opt_cls,kw", [(optim.SGD, dict(lr=0.1, momentum=0.9)),
                                        (optim.Adam, dict(lr=1e-2, weight_decay=0.1)),
                                        (optim.RMSprop, dict(lr=1e-2)),
                                        (optim.NAdam, dict(lr=1e-2, weight_decay=0.1)),
                                        (optim.NAdam, dict(lr=1e-2, weight_decay=0.1,
                                                           decoupled_weight_decay=True))])
def test_other_optimizers(opt_cls, kw):
    c = _run_both(_mlp, _train_step, opt_cls=opt_cls, **kw)
    assert c.stats["replays"] >= 3, c.stats["replay_notes"]


def test_gradient_accumulation_reads_the_previous_grads():
    def step(model, opt, x, y):              # no zero_grad: .grad is a region input
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss
    c = _run_both(_mlp, step)
    assert c.stats["replays"] == 4, c.stats["replay_notes"]


def test_zero_grad_without_set_to_none_writes_grads_in_place():
    def step(model, opt, x, y):
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    c = _run_both(_mlp, step, lr=1e-2)
    assert c.stats["replays"] >= 3, c.stats["replay_notes"]


def test_replayed_grads_are_new_tensors_each_step():
    m, o = _setup(_mlp, lr=1e-2)
    c = torch.compile(lambda x, y: _train_step(m, o, x, y))
    kept = []
    for s in range(6):
        c(*_batch(s))
        kept.append((m[0].weight.grad, m[0].weight.grad.cpu().numpy().copy()))
    assert c.stats["replays"] == 3
    assert len({id(g) for g, _ in kept}) == 6
    for g, v in kept:                 # a later step never writes into an earlier .grad
        np.testing.assert_array_equal(g.cpu().numpy(), v)


def test_loss_returned_by_a_replay_looks_like_eager():
    m, o = _setup(_mlp, lr=1e-2)
    c = torch.compile(lambda x, y: _train_step(m, o, x, y))
    for s in range(5):
        loss = c(*_batch(s))
    assert c.stats["replays"] == 2
    assert loss.requires_grad and type(loss.grad_fn).__name__ == "NllLossBackward0"
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_changing_the_learning_rate_keeps_replaying():
    m1, o1 = _setup(_mlp, lr=1e-2)
    m2, o2 = _setup(_mlp, lr=1e-2)
    c = torch.compile(lambda x, y: _train_step(m2, o2, x, y))
    for s in range(10):
        if s == 6:
            for o in (o1, o2):
                o.param_groups[0]["lr"] = 3e-3
        x, y = _batch(s)
        _train_step(m1, o1, x, y)
        c(x, y)
        _same(m1, o1, m2, o2, f"step {s}")
    # lr (and betas) are run-time inputs of the traced update: no new trace for a new value
    assert c.stats["replays"] == 7, c.stats["replay_notes"]


@pytest.mark.parametrize("opt_cls,kw,sched", [
    (optim.AdamW, dict(lr=1e-2), lambda o: optim.lr_scheduler.OneCycleLR(
        o, max_lr=0.05, total_steps=12)),                  # cycles lr and betas[0] every step
    (optim.SGD, dict(lr=0.1, momentum=0.9), lambda o: optim.lr_scheduler.StepLR(o, 2, 0.5)),
    (optim.Adam, dict(lr=1e-2), lambda o: optim.lr_scheduler.LambdaLR(o, lambda e: 1 / (e + 1))),
    (optim.RMSprop, dict(lr=1e-2, momentum=0.5), lambda o: optim.lr_scheduler.ExponentialLR(
        o, 0.9)),
    (optim.RMSprop, dict(lr=1e-2, centered=True), lambda o: optim.lr_scheduler.StepLR(o, 3)),
    (optim.Adagrad, dict(lr=0.1, lr_decay=0.01), lambda o: optim.lr_scheduler.CosineAnnealingLR(
        o, 10)),
    (optim.Adamax, dict(lr=1e-2), lambda o: optim.lr_scheduler.OneCycleLR(
        o, max_lr=0.05, total_steps=12)),
])
def test_lr_schedules_replay_and_equal_eager(opt_cls, kw, sched):
    m1, o1 = _setup(_mlp, opt_cls, **kw)
    m2, o2 = _setup(_mlp, opt_cls, **kw)
    s1, s2 = sched(o1), sched(o2)
    c = torch.compile(lambda x, y: _train_step(m2, o2, x, y))
    # RMSprop divides by the root of a running mean of squared gradients, which starts near
    # zero for some elements: a rounding difference between two summation orders (the
    # kernels' and eager's BLAS, which differs between CPUs) grows by that factor
    tol = 10.0 if opt_cls is optim.RMSprop else 1.0
    for s in range(10):
        x, y = _batch(s)
        _eq(c(x, y).item(), _train_step(m1, o1, x, y).item(), err_msg=f"step {s}", tol=tol)
        s1.step()
        s2.step()
        _same(m1, o1, m2, o2, f"step {s}", tol=tol)
    assert c.stats["replays"] == 7, c.stats["replay_notes"]


def test_a_beta_crossing_the_lerp_branch_retraces():
    # Adam's lerp uses one of two formulas depending on 1 - beta1 < 0.5: a recorded guard
    m1, o1 = _setup(_mlp, lr=1e-2)
    m2, o2 = _setup(_mlp, lr=1e-2)
    c = torch.compile(lambda x, y: _train_step(m2, o2, x, y))
    for s in range(9):
        if s == 5:
            for o in (o1, o2):
                o.param_groups[0]["betas"] = (0.3, 0.999)
        x, y = _batch(s)
        _train_step(m1, o1, x, y)
        c(x, y)
        _same(m1, o1, m2, o2, f"step {s}")
    assert any("replay disabled" in n for n in c.stats["replay_notes"])
    assert c.stats["replays"] == 2 + 2, c.stats["replay_notes"]


def test_a_hyperparameter_python_reads_directly_is_not_replayed():
    m, o = _setup(_mlp, lr=0.0125)
    m2, o2 = _setup(_mlp, lr=0.0125)

    def step(model, opt, x, y):
        loss = _train_step(model, opt, x, y)
        return loss * opt.param_groups[0]["lr"]      # the value baked into the graph
    c = torch.compile(lambda x, y: step(m, o, x, y))
    for s in range(6):
        if s == 4:
            o.param_groups[0]["lr"] = o2.param_groups[0]["lr"] = 0.5
        x, y = _batch(s)
        _eq(c(x, y).item(), step(m2, o2, x, y).item(), err_msg=f"step {s}")
    assert c.stats["replays"] == 0
    assert any("baked into the graph" in n for n in c.stats["replay_notes"]), \
        c.stats["replay_notes"]


def test_replacing_a_parameter_or_its_data_retraces():
    m1, o1 = _setup(_mlp, optim.SGD, lr=0.1)
    m2, o2 = _setup(_mlp, optim.SGD, lr=0.1)
    c = torch.compile(lambda x, y: _train_step(m2, o2, x, y))
    for s in range(9):
        if s == 5:
            for m in (m1, m2):
                with torch.no_grad():
                    m[0].weight.data = torch.full_like(m[0].weight, 0.01)
        x, y = _batch(s)
        _train_step(m1, o1, x, y)
        c(x, y)
        _same(m1, o1, m2, o2, f"step {s}")
    assert any("replay disabled" in n for n in c.stats["replay_notes"])


def test_new_batch_data_is_read_by_replays():
    m, o = _setup(_mlp, lr=1e-2)
    c = torch.compile(lambda x, y: F.cross_entropy(m(x), y))
    with torch.no_grad():
        for s in range(6):
            x, y = _batch(s)
            _eq(c(x, y).item(), F.cross_entropy(m(x), y).item())
    assert c.stats["replays"] == 4


def test_closure_tensors_are_read_when_replayed():
    m, o = _setup(_mlp, lr=1e-2)
    x, y = _batch(0)

    def step():
        return _train_step(m, o, x, y)
    c = torch.compile(step)
    for s in range(6):
        c()
        if s == 4:
            x.mul_(2.0)                 # written outside: the replay reads the new values
    assert c.stats["replays"] >= 2
    m2, o2 = _setup(_mlp, lr=1e-2)
    x2, y2 = _batch(0)
    for s in range(6):
        _train_step(m2, o2, x2, y2)
        if s == 4:
            x2.mul_(2.0)
    _same(m2, o2, m, o)


LOG = []


def test_python_side_effects_disable_replay():
    m, o = _setup(_mlp, lr=1e-2)

    def logs(x, y):
        loss = _train_step(m, o, x, y)
        LOG.append(loss)                    # a reached list grows: traced every call
        return loss
    LOG.clear()
    c = torch.compile(logs)
    for s in range(5):
        c(*_batch(s))
    assert len(LOG) == 5 and c.stats["replays"] == 0
    assert any("changed Python state" in n for n in c.stats["replay_notes"])

    printed = []

    def prints(x, y):
        loss = _train_step(m, o, x, y)
        print("step done")
        return loss
    c = torch.compile(prints)
    import builtins
    orig = builtins.print
    builtins.print = lambda *a, **k: printed.append(a)
    try:
        for s in range(4):
            c(*_batch(s))
    finally:
        builtins.print = orig
    assert len(printed) == 4 and c.stats["replays"] == 0
    assert any("calls print" in n for n in c.stats["replay_notes"]), c.stats["replay_notes"]


class Counter:
    n = 0


def test_attribute_counter_disables_replay():
    m, o = _setup(_mlp, lr=1e-2)
    ctr = Counter()

    def step(x, y):
        ctr.n += 1
        return _train_step(m, o, x, y)
    c = torch.compile(step)
    for s in range(5):
        c(*_batch(s))
    assert ctr.n == 5 and c.stats["replays"] == 0


def test_dropout_masks_are_drawn_again_by_replays_as_eager_draws_them():
    c = _run_both(lambda: _cnn(0.3), _train_step, cnn=True, lr=1e-2)
    assert c.stats["replays"] == 4, c.stats["replay_notes"]
    # without reseeding: the replays advance the global generator exactly as eager steps do
    m1, o1 = _setup(lambda: _cnn(0.5), lr=1e-2)
    m2, o2 = _setup(lambda: _cnn(0.5), lr=1e-2)
    c = torch.compile(lambda x, y: _train_step(m2, o2, x, y))
    torch.manual_seed(5)
    for s in range(6):
        c(*_batch(s, True))
    after_compiled = torch.rand(3)
    torch.manual_seed(5)
    for s in range(6):
        _train_step(m1, o1, *_batch(s, True))
    _eq(after_compiled.cpu().numpy(), torch.rand(3).cpu().numpy())
    _same(m1, o1, m2, o2)
    assert c.stats["replays"] == 3


@pytest.mark.parametrize("draw, replays", [
    (lambda x: torch.randn(x.shape), 2),             # drawn again by each replay
    (lambda x: torch.randn_like(x), 2),
    (lambda x: torch.empty(x.shape).normal_(), 0)])   # other draws: traced every call
def test_random_draws_in_a_replayed_step(draw, replays):
    m, o = _setup(_mlp, lr=1e-2)

    def noisy(x, y):
        return _train_step(m, o, x + 0.01 * draw(x), y)
    c = torch.compile(noisy)
    m2, o2 = _setup(_mlp, lr=1e-2)
    for s in range(5):
        x, y = _batch(s)
        torch.manual_seed(s)
        c(x, y)
        torch.manual_seed(s)
        _train_step(m2, o2, x + 0.01 * draw(x), y)
    _same(m2, o2, m, o)
    assert c.stats["replays"] == replays, c.stats["replay_notes"]
    if replays:
        return
    assert any("random numbers drawn other than dropout" in n
               for n in c.stats["replay_notes"]), c.stats["replay_notes"]


def test_value_read_is_not_replayed():
    m, o = _setup(_mlp, lr=1e-2)

    def step(x, y):
        loss = _train_step(m, o, x, y)
        return loss.item()
    c = torch.compile(step)
    vals = [c(*_batch(s)) for s in range(5)]
    assert c.stats["replays"] == 0 and isinstance(vals[-1], float)


def test_helper_function_state_is_watched():
    m, o = _setup(_mlp, lr=1e-2)
    m2, o2 = _setup(_mlp, lr=1e-2)

    def helper(x, y):               # the model and optimizer reached only through a helper
        return _train_step(m, o, x, y)

    def step(x, y):
        return helper(x, y)
    c = torch.compile(step)
    for s in range(7):
        if s == 5:
            o.param_groups[0]["lr"] = o2.param_groups[0]["lr"] = 0.5
        x, y = _batch(s)
        c(x, y)
        _train_step(m2, o2, x, y)
    _same(m2, o2, m, o)
    assert c.stats["replays"] >= 2


def test_report_counts_replays():
    m, o = _setup(_mlp, lr=1e-2)
    c = torch.compile(lambda x, y: _train_step(m, o, x, y))
    for s in range(5):
        c(*_batch(s))
    assert "replays=2" in c.report()


def test_replays_can_be_switched_off(monkeypatch):
    from framework import _compile
    monkeypatch.setattr(_compile, "replays", False)
    m, o = _setup(_mlp, lr=1e-2)
    c = torch.compile(lambda x, y: _train_step(m, o, x, y))
    for s in range(5):
        c(*_batch(s))
    assert c.stats["replays"] == 0 and c.stats["replay_notes"] == []


def test_nan_and_signed_zero_constants_replay():
    # a float('nan') constant is a fresh object every trace and never equals itself: the
    # consecutive-trace comparison reads constants by bit pattern, so such a function still
    # replays (and a -0.0 constant is not taken for 0.0)
    def f(x):
        return torch.where(x > 0, x * 2, float("nan")), x * -0.0
    c = torch.compile(f)
    x = torch.tensor([1.0, -1.0])
    for _ in range(4):
        a, b = c(x)
    assert c.stats["replays"] >= 1, c.stats["replay_notes"]
    np.testing.assert_array_equal(a.cpu().numpy(), [2.0, np.nan])
    assert np.signbit(b.cpu().numpy()).tolist() == [True, False]
    from compiler.ir.graph import consts_key
    assert consts_key([float("nan"), -0.0]) == consts_key([float("nan"), -0.0])
    assert consts_key([-0.0]) != consts_key([0.0])


def test_a_global_optimizer_hook_stops_replays_while_registered():
    # a replay skips the Python step, so it would skip optimizer hooks: registering a global
    # step hook (torch.optim.optimizer.register_optimizer_step_post_hook) stops the replays
    # until it is removed, and the hook sees every step
    torch.manual_seed(0)
    m = nn.Linear(4, 3)
    opt = optim.SGD(m.parameters(), lr=0.1)
    y = torch.tensor([0, 1])

    def step(x):
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return loss
    c = torch.compile(step)
    x = torch.randn(2, 4)
    for _ in range(4):
        c(x)
    assert c.stats["replays"] >= 1, c.stats["replay_notes"]
    seen = []
    h = optim.optimizer.register_optimizer_step_post_hook(lambda o, a, k: seen.append(o))
    n = c.stats["replays"]
    for _ in range(3):
        c(x)
    assert seen == [opt] * 3 and c.stats["replays"] == n
    h.remove()
    for _ in range(4):
        c(x)
    assert c.stats["replays"] > n
