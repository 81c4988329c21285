"""Regression tests from the nn.Module / optimizer / LR-scheduler API sweep (Kiln vs PyTorch
2.13): each test pins one divergence that was fixed, with references derived by hand or computed
here in NumPy float64. Optional cross-checks against the real PyTorch run only where it is
installed."""
import copy
import warnings

import numpy as np
import pytest

import framework as torch
import framework.nn as nn
from framework.optim import lr_scheduler as S


def P(a):
    return nn.Parameter(torch.tensor(np.asarray(a, dtype=np.float64)))


# ---- optimizer state and parameter groups -------------------------------------------------------

def test_sgd_without_momentum_keeps_no_state():
    p, q = P([1.0, 2.0]), P([3.0])
    opt = torch.optim.SGD([p, q], lr=0.1)
    p.grad = torch.tensor([2.0, -1.0], dtype=torch.float64)
    q.grad = torch.tensor([4.0], dtype=torch.float64)
    opt.step()
    np.testing.assert_array_equal(p.detach().numpy(), [0.8, 2.1])
    np.testing.assert_array_equal(q.detach().numpy(), [2.6])
    assert len(opt.state) == 0
    assert opt.state_dict()["state"] == {}
    # with momentum the buffer is the first gradient
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    opt.step()
    assert list(opt.state_dict()["state"]) == [0]
    np.testing.assert_array_equal(opt.state[p]["momentum_buffer"].numpy(), [2.0, -1.0])


def test_optimizer_accepts_named_parameters():
    lin = nn.Linear(2, 3)
    opt = torch.optim.SGD(lin.named_parameters(), lr=0.1, momentum=0.9)
    g = opt.param_groups[0]
    assert g["param_names"] == ["weight", "bias"]
    assert g["params"][0] is lin.weight and g["params"][1] is lin.bias
    sd = opt.state_dict()
    assert sd["param_groups"][0]["param_names"] == ["weight", "bias"]
    assert sd["param_groups"][0]["params"] == [0, 1]
    assert list(sd["param_groups"][0])[0] == "param_names"      # PyTorch's key order
    # a state_dict with names loads into an optimizer built from plain parameters
    opt2 = torch.optim.SGD(lin.parameters(), lr=0.5)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt2.param_groups[0]["lr"] == 0.1


def test_named_and_unnamed_parameters_cannot_mix():
    lin = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="all optimizer params should be with/without names. "
                                         "Some param names are missing"):
        torch.optim.Adam([("w", lin.weight), lin.bias])
    opt = torch.optim.Adam([("w", lin.weight)])
    with pytest.raises(ValueError, match="cannot add param group without names to the optimizer"):
        opt.add_param_group({"params": [lin.bias]})
    assert len(opt.param_groups) == 1


def test_optimizer_param_errors_match_pytorch_text():
    p = P([1.0])
    with pytest.raises(TypeError, match=r"^param_group must be a dict, but got <class 'list'>$"):
        torch.optim.SGD([p], lr=0.1).add_param_group([p])
    with pytest.raises(TypeError, match=r"one of the params is numpy\.ndarray$"):
        torch.optim.SGD([{"params": [np.ones(2)]}], lr=0.1)
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        torch.optim.SGD([p * 2], lr=0.1)
    # a non-leaf that retains its gradient may be optimized
    x = torch.ones(2, requires_grad=True) * 2
    x.retain_grad()
    assert torch.optim.SGD([x], lr=0.1).param_groups[0]["params"][0] is x
    with pytest.warns(UserWarning, match="see github.com/pytorch/pytorch/issues/40967"):
        torch.optim.SGD([p, p], lr=0.1)


def test_typename_is_module_qualified():
    assert torch.typename(np.ones(2)) == "numpy.ndarray"
    assert torch.typename(3.0) == "float"
    assert torch.typename(np.float64(1)) == "numpy.float64"
    assert torch.typename(torch.zeros(1)) == "torch.FloatTensor"
    assert torch.typename(nn.Linear).endswith("nn.modules.linear.Linear")


def test_load_state_dict_fills_options_missing_from_an_old_checkpoint():
    p = P([1.0, 2.0])
    opt = torch.optim.Adam([p], lr=0.1, amsgrad=True)
    sd = copy.deepcopy(opt.state_dict())
    del sd["param_groups"][0]["amsgrad"]
    del sd["param_groups"][0]["maximize"]
    opt2 = torch.optim.Adam([p], lr=0.2)
    opt2.load_state_dict(sd)
    g = opt2.param_groups[0]
    assert g["amsgrad"] is False and g["maximize"] is False and g["lr"] == 0.1
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt2.load_state_dict({"state": {}, "param_groups": []})


def test_addcdiv_rounds_like_pytorch():
    # PyTorch's addcdiv_ computes t + (value * a) / b; Adagrad's first step is exactly
    # p + (-lr * g) / (sqrt(g * g) + eps), with (g / std) * -lr differing in the last bit
    rs = np.random.RandomState(0)
    p0, g = rs.randn(1000), rs.randn(1000)
    lr = 0.1
    std = np.sqrt(g * g) + 1e-10
    ref = p0 + ((-lr) * g) / std
    assert (ref != p0 + (g / std) * (-lr)).any()      # the two orders differ here
    p = P(p0)
    opt = torch.optim.Adagrad([p], lr=lr)
    p.grad = torch.tensor(g)
    opt.step()
    np.testing.assert_array_equal(p.detach().numpy(), ref)


# ---- LR schedulers ------------------------------------------------------------------------------

def _opt(lr=0.1):
    return torch.optim.SGD([P([0.0])], lr=lr)


def test_scheduler_step_before_optimizer_step_warning_text():
    opt = _opt()
    sched = S.StepLR(opt, 2)
    with pytest.warns(UserWarning) as rec:
        sched.step()
    msg = str(rec[0].message)
    assert msg.startswith("Detected call of `lr_scheduler.step()` before `optimizer.step()`. "
                          "In PyTorch 1.1.0 and later, you should call them in the opposite order")
    assert "will result in PyTorch skipping the first value of the learning rate schedule" in msg
    # in the right order: no warning
    opt = _opt()
    sched = S.StepLR(opt, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
        sched.step()


def test_scheduler_warns_when_optimizer_step_overridden():
    opt = _opt()
    sched = S.StepLR(opt, 2)
    opt.step = lambda *a, **k: None
    with pytest.warns(UserWarning, match="Seems like `optimizer.step\\(\\)` has been overridden"):
        sched.step()


def test_get_lr_outside_step_warns_and_get_last_lr_does_not():
    opt = _opt()
    sched = S.ExponentialLR(opt, 0.5)
    with pytest.warns(UserWarning, match="please use `get_last_lr\\(\\)`"):
        assert sched.get_lr() == [0.05]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
        sched.step()          # get_lr() called from step(): no warning
        assert sched.get_last_lr() == [0.05]


def test_resume_without_initial_lr_keyerror_text():
    with pytest.raises(KeyError, match="when resuming scheduler with last_epoch >= 0"):
        S.StepLR(_opt(), 2, last_epoch=3)


# ---- nn.Module ----------------------------------------------------------------------------------

class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU())


def test_set_submodule():
    m = _Net()
    tanh = nn.Tanh()
    m.set_submodule("seq.0", tanh)
    assert m.seq[0] is tanh
    m.set_submodule("seq.extra", nn.ReLU())          # a new child of an existing parent
    assert [n for n, _ in m.seq.named_children()] == ["0", "1", "extra"]
    with pytest.raises(AttributeError, match="^Sequential has no attribute `new`$"):
        m.set_submodule("seq.new", nn.ReLU(), strict=True)
    with pytest.raises(ValueError, match="Cannot set the submodule without a target name!"):
        m.set_submodule("", nn.ReLU())
    with pytest.raises(ValueError, match="`module` is not an nn.Module, found <class 'int'>"):
        m.set_submodule("fc", 3)
    with pytest.raises(AttributeError, match="^`weight` is not an nn.Module$"):
        m.set_submodule("fc.weight", nn.ReLU())
    with pytest.raises(AttributeError, match="^_Net has no attribute `nope`$"):
        m.set_submodule("nope.x", nn.ReLU())
    assert isinstance(m.fc.weight, nn.Parameter)


def test_to_empty_keeps_parameters_shapes_and_dtypes():
    m = nn.BatchNorm1d(3)
    w = m.weight
    assert m.to_empty(device="cpu") is m
    assert m.weight is w and isinstance(m.weight, nn.Parameter)
    sd = m.state_dict()
    assert [(k, tuple(v.shape), v.dtype) for k, v in sd.items()] == [
        ("weight", (3,), torch.float32), ("bias", (3,), torch.float32),
        ("running_mean", (3,), torch.float32), ("running_var", (3,), torch.float32),
        ("num_batches_tracked", (), torch.int64)]


# ---- optional cross-checks against PyTorch ------------------------------------------------------

_CASES = [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)),
          ("Adam", dict(lr=0.1, amsgrad=True, weight_decay=0.1)),
          ("AdamW", dict(lr=0.1, maximize=True)),
          ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
          ("Adagrad", dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.2)),
          ("Adadelta", dict(lr=0.5, rho=0.5, weight_decay=0.1)),
          ("Adamax", dict(lr=0.1, weight_decay=0.1)),
          ("NAdam", dict(lr=0.1, momentum_decay=0.01, weight_decay=0.1,
                         decoupled_weight_decay=True)),
          ("RAdam", dict(lr=0.1, weight_decay=0.1, decoupled_weight_decay=True))]


@pytest.mark.parametrize("name,kw", _CASES, ids=[c[0] for c in _CASES])
def test_trajectory_and_state_dict_match_pytorch(name, kw):
    T = pytest.importorskip("torch", reason="cross-check against PyTorch only where installed")
    init = np.linspace(-1.5, 2.0, 6).reshape(2, 3)

    def run(lib):
        p = lib.nn.Parameter(lib.tensor(init.copy(), dtype=lib.float64))
        opt = getattr(lib.optim, name)([p], **kw)
        for _ in range(10):
            a = p.detach().numpy()
            p.grad = lib.tensor(2.0 * (a - 0.5) + 0.1 * a ** 3, dtype=lib.float64)
            opt.step()
        sd = opt.state_dict()
        return p.detach().numpy().copy(), sd

    pk, sdk = run(torch)
    pt, sdt = run(T)
    np.testing.assert_allclose(pk, pt, rtol=1e-12, atol=0)
    assert list(sdk["param_groups"][0]) == list(sdt["param_groups"][0])
    assert list(sdk["state"]) == list(sdt["state"])
    assert sorted(sdk["state"][0]) == sorted(sdt["state"][0])


# ---- optimizer hooks ----------------------------------------------------------------------------

def test_optimizer_step_hooks_see_args_and_run_once():
    p = P([1.0])
    opt = torch.optim.SGD([p], lr=0.5)
    seen = []
    h1 = opt.register_step_pre_hook(lambda o, a, k: seen.append(("pre", a[0] is o, sorted(k))))
    h2 = opt.register_step_post_hook(lambda o, a, k: seen.append(("post", len(a), sorted(k))))
    p.grad = torch.tensor([2.0], dtype=torch.float64)
    assert opt.step(closure=lambda: 3.0) == 3.0
    assert seen == [("pre", True, ["closure"]), ("post", 1, ["closure"])]
    np.testing.assert_array_equal(p.detach().numpy(), [0.0])
    h1.remove()
    h2.remove()
    opt.step()
    assert len(seen) == 2
    # a pre-hook may replace the arguments; anything else than None or a pair is an error
    opt.register_step_pre_hook(lambda o, a, k: (a, {"closure": lambda: 7.0}))
    assert opt.step() == 7.0
    opt.register_step_pre_hook(lambda o, a, k: 5)
    with pytest.raises(RuntimeError, match="must return None or a tuple of \\(new_args, "
                                           "new_kwargs\\), but got 5."):
        opt.step()


def test_step_hooks_wrap_overriding_steps_once():
    seen = []

    class My(torch.optim.SGD):
        def step(self, closure=None):
            seen.append("step")
            return super().step(closure)

    p = P([1.0])
    opt = My([p], lr=0.1)
    opt.register_step_post_hook(lambda o, a, k: seen.append("post"))
    lb = torch.optim.LBFGS([P([1.0])], max_iter=1)
    lb.register_step_post_hook(lambda o, a, k: seen.append("lbfgs"))
    p.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    x = lb.param_groups[0]["params"][0]

    def closure():
        lb.zero_grad()
        x.grad = x.detach() * 2
        return float((x.detach() ** 2).sum())
    lb.step(closure)
    assert seen == ["step", "post", "lbfgs"]


def test_global_optimizer_step_hooks():
    from framework.optim.optimizer import (register_optimizer_step_pre_hook,
                                           register_optimizer_step_post_hook)
    seen = []
    h1 = register_optimizer_step_pre_hook(lambda o, a, k: seen.append("gpre"))
    h2 = register_optimizer_step_post_hook(lambda o, a, k: seen.append("gpost"))
    try:
        opt = torch.optim.Adam([P([1.0])])
        opt.register_step_post_hook(lambda o, a, k: seen.append("post"))
        opt.step()
    finally:
        h1.remove()
        h2.remove()
    opt.step()          # the global hooks are gone, the optimizer's own stays
    assert seen == ["gpre", "post", "gpost", "post"]


def test_optimizer_state_dict_hooks():
    p = P([1.0])
    opt = torch.optim.SGD([p], lr=0.1)
    seen = []
    opt.register_state_dict_pre_hook(lambda o: seen.append(1))
    opt.register_state_dict_pre_hook(lambda o: seen.append(0), prepend=True)
    opt.register_state_dict_post_hook(lambda o, sd: dict(sd, extra=5))
    sd = opt.state_dict()
    assert seen == [0, 1] and sd["extra"] == 5
    replacement = copy.deepcopy(sd)
    replacement["param_groups"][0]["lr"] = 0.7
    opt.register_load_state_dict_pre_hook(lambda o, s: replacement)
    opt.register_load_state_dict_post_hook(lambda o: seen.append("loaded"))
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.7 and seen[-1] == "loaded"
    # a deep copy starts without hooks, as in PyTorch
    assert not copy.deepcopy(opt)._state_dict_pre_hooks


def test_module_compile_in_place_keeps_state_dict_keys():
    m = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 1.0, 1.0]]))
        m[0].bias.copy_(torch.tensor([0.25, -4.0]))
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 2.0]])
    assert m.compile() is None
    assert "_compiled_call_impl" in m.__dict__
    # [1-4+1.5+0.25, 0+2+3-4] and [-1+0+1+0.25, 0+0+2-4] through ReLU
    np.testing.assert_array_equal(m(x).detach().numpy(), [[0.0, 1.0], [0.25, 0.0]])
    assert list(m.state_dict()) == ["0.weight", "0.bias"]
    c = copy.deepcopy(m)            # the compiled call is neither copied nor pickled
    assert "_compiled_call_impl" not in c.__dict__
    np.testing.assert_array_equal(c(x).detach().numpy(), [[0.0, 1.0], [0.25, 0.0]])


def test_fused_and_tensor_lr_argument_errors():
    p = P([1.0])
    with pytest.raises(RuntimeError, match="^`fused` and `foreach` cannot be `True` together.$"):
        torch.optim.Adam([p], fused=True, foreach=True)
    with pytest.raises(RuntimeError, match="^`fused` does not support `differentiable`$"):
        torch.optim.SGD([p], lr=0.1, fused=True, differentiable=True)
    with pytest.raises(RuntimeError, match="cannot be `True` together"):
        torch.optim.Adagrad([p], fused=True, foreach=True)
    with pytest.raises(ValueError, match="^Tensor lr must be 1-element$"):
        torch.optim.SGD([p], lr=torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match="lr as a Tensor is not supported for capturable=False "
                                         "and foreach=True"):
        torch.optim.AdamW([p], lr=torch.tensor(0.1), foreach=True)
    with pytest.raises(ValueError, match="betas must be either both floats or both Tensors"):
        torch.optim.Adam([p], betas=(torch.tensor(0.9), 0.999))
    # a 1-element tensor lr is accepted: one step of SGD, 1 - 0.5 * 2
    opt = torch.optim.SGD([p], lr=torch.tensor(0.5, dtype=torch.float64))
    p.grad = torch.tensor([2.0], dtype=torch.float64)
    opt.step()
    np.testing.assert_array_equal(p.detach().numpy(), [0.0])
