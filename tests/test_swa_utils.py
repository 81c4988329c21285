"""torch.optim.swa_utils: AveragedModel (SWA / EMA, buffers), update_bn and SWALR against
hand-derived values and NumPy, plus an optional cross-check against PyTorch where installed."""
import copy
import math
import warnings

import numpy as np
import pytest

import framework as torch
from framework import nn, optim
from framework.optim import swa_utils
from framework.optim.swa_utils import (AveragedModel, SWALR, get_ema_avg_fn, get_ema_multi_avg_fn,
                                       get_swa_avg_fn, get_swa_multi_avg_fn, update_bn)
from conftest import to_np


class Scalar(nn.Module):
    """One parameter w and one float buffer b: y = w * x + b."""

    def __init__(self, w=0.0, b=0.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([w]))
        self.register_buffer("b", torch.tensor([b]))

    def forward(self, x):
        return self.w * x + self.b


def _set(model, w=None, b=None):
    with torch.no_grad():
        if w is not None:
            model.w.fill_(w)
        if b is not None:
            model.b.fill_(b)


def _averages(values, **kw):
    """AveragedModel of a Scalar after one update per value of w; the w history after each."""
    model = Scalar()
    avg = AveragedModel(model, **kw)
    hist = []
    for v in values:
        _set(model, w=v)
        avg.update_parameters(model)
        hist.append(avg.module.w.item())
    return avg, hist


# ---- AveragedModel: the averages ----------------------------------------------------------------

def test_default_is_running_mean():
    # 1 | (1 + 2) / 2 = 1.5 | (1 + 2 + 6) / 3 = 3 | (1 + 2 + 6 + 11) / 4 = 5
    avg, hist = _averages([1.0, 2.0, 6.0, 11.0])
    assert hist == [1.0, 1.5, 3.0, 5.0]
    assert avg.n_averaged.item() == 4 and avg.n_averaged.dtype == torch.int64


@pytest.mark.parametrize("kw", [dict(avg_fn=get_swa_avg_fn()),
                                dict(multi_avg_fn=get_swa_multi_avg_fn())],
                         ids=["avg_fn", "multi_avg_fn"])
def test_explicit_swa_fns_give_the_mean(kw):
    _, hist = _averages([1.0, 2.0, 6.0, 11.0], **kw)
    assert hist == pytest.approx([1.0, 1.5, 3.0, 5.0], abs=1e-6)


@pytest.mark.parametrize("make", [get_ema_avg_fn, get_ema_multi_avg_fn])
def test_ema_decay_half(make):
    # first call copies: 1; then 0.5 * 1 + 0.5 * 3 = 2; 0.5 * 2 + 0.5 * 7 = 4.5
    key = "avg_fn" if make is get_ema_avg_fn else "multi_avg_fn"
    avg, hist = _averages([1.0, 3.0, 7.0], **{key: make(0.5)})
    assert hist == [1.0, 2.0, 4.5]
    assert avg.n_averaged.item() == 3


@pytest.mark.parametrize("make", [get_ema_avg_fn, get_ema_multi_avg_fn])
def test_ema_decay_09(make):
    # 1; 0.9 * 1 + 0.1 * 4 = 1.3; 0.9 * 1.3 + 0.1 * 10 = 2.17
    key = "avg_fn" if make is get_ema_avg_fn else "multi_avg_fn"
    _, hist = _averages([1.0, 4.0, 10.0], **{key: make(0.9)})
    assert hist == pytest.approx([1.0, 1.3, 2.17], abs=1e-6)


def test_avg_fns_directly():
    a, c = torch.tensor([2.0, 4.0]), torch.tensor([6.0, 0.0])
    # swa: a + (c - a) / (n + 1) with n = 3
    assert to_np(get_swa_avg_fn()(a, c, 3)).tolist() == [3.0, 3.0]
    assert to_np(get_swa_avg_fn()(a, c, torch.tensor(3))).tolist() == [3.0, 3.0]
    # ema: 0.75 * a + 0.25 * c
    assert to_np(get_ema_avg_fn(0.75)(a, c, 5)).tolist() == [3.0, 3.0]
    # the multi versions update the first list in place
    xs, ys = [a.clone(), torch.tensor([1.0])], [c, torch.tensor([5.0])]
    get_swa_multi_avg_fn()(xs, ys, torch.tensor(1))
    assert to_np(xs[0]).tolist() == [4.0, 2.0] and to_np(xs[1]).tolist() == [3.0]
    xs = [a.clone()]
    get_ema_multi_avg_fn(0.75)(xs, [c], 0)
    assert to_np(xs[0]).tolist() == [3.0, 3.0]


def test_integer_tensors_in_ema_multi_truncate():
    # the non-float branch: copy_(ema * decay + cur * (1 - decay)) truncates 0.5*3 + 0.5*6 = 4.5
    xs = [torch.tensor([3, 10], dtype=torch.int64)]
    get_ema_multi_avg_fn(0.5)(xs, [torch.tensor([6, 11], dtype=torch.int64)], 1)
    assert xs[0].dtype == torch.int64 and to_np(xs[0]).tolist() == [4, 10]


def test_n_averaged_counts_and_copy_is_independent():
    model = nn.Linear(3, 2)
    avg = AveragedModel(model)
    assert isinstance(avg, nn.Module) and avg.module is not model
    assert avg.n_averaged.item() == 0 and "n_averaged" in dict(avg.named_buffers())
    for i in range(1, 4):
        avg.update_parameters(model)
        assert avg.n_averaged.item() == i
    # the copy does not alias the source model
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not torch.equal(avg.module.weight, model.weight)
    sd = avg.state_dict()
    assert set(sd) == {"n_averaged", "module.weight", "module.bias"}
    on_cpu = AveragedModel(model, device="cpu")
    assert on_cpu.n_averaged.device.type == "cpu" and on_cpu.module.weight.device.type == "cpu"


def test_first_update_copies_even_with_custom_fn():
    calls = []

    def avg_fn(a, c, n):
        calls.append(int(n))
        return a + c

    avg, hist = _averages([2.0, 3.0, 4.0], avg_fn=avg_fn)
    # call 1 copies (2); call 2: 2 + 3 = 5 with n=1; call 3: 5 + 4 = 9 with n=2
    assert hist == [2.0, 5.0, 9.0] and calls == [1, 2]


def test_forward_delegates_to_module():
    model = nn.Linear(2, 1)
    avg = AveragedModel(model)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
        model.bias.fill_(0.0)
    avg.update_parameters(model)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 4.0]]))
        model.bias.fill_(2.0)
    avg.update_parameters(model)
    # averaged weight [2, 3], bias 1: [1, 1] -> 2 + 3 + 1 = 6
    x = torch.tensor([[1.0, 1.0]])
    assert to_np(avg(x)).tolist() == [[6.0]]
    assert to_np(avg(x)).tolist() == to_np(avg.module(x)).tolist()


def test_both_fns_rejected_and_bad_decay():
    with pytest.raises(AssertionError, match="Only one of avg_fn and multi_avg_fn"):
        AveragedModel(Scalar(), avg_fn=get_swa_avg_fn(), multi_avg_fn=get_swa_multi_avg_fn())
    for make in (get_ema_avg_fn, get_ema_multi_avg_fn):
        for bad in (-0.1, 1.5):
            with pytest.raises(ValueError, match=r"Invalid decay value .* \[0,1\] range"):
                make(bad)
        make(0.0), make(1.0)                    # the ends of the range are allowed


# ---- AveragedModel: buffers ---------------------------------------------------------------------

def test_buffers_follow_the_model_without_use_buffers():
    model = Scalar()
    avg = AveragedModel(model)
    for w, b in [(1.0, 10.0), (3.0, 20.0), (5.0, 60.0)]:
        _set(model, w, b)
        avg.update_parameters(model)
        assert avg.module.b.item() == b       # copied, not averaged
    assert avg.module.w.item() == 3.0          # (1 + 3 + 5) / 3


def test_buffers_averaged_with_use_buffers():
    model = Scalar()
    avg = AveragedModel(model, use_buffers=True)
    for w, b in [(1.0, 10.0), (3.0, 20.0), (5.0, 60.0)]:
        _set(model, w, b)
        avg.update_parameters(model)
    assert avg.module.w.item() == 3.0 and avg.module.b.item() == 30.0   # (10 + 20 + 60) / 3


def test_use_buffers_ema_on_batchnorm():
    model = nn.BatchNorm1d(2)
    avg = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.5), use_buffers=True)
    for mean, nbt in [([1.0, 2.0], 3), ([3.0, 6.0], 6)]:
        with torch.no_grad():
            model.running_mean.copy_(torch.tensor(mean))
            model.num_batches_tracked.fill_(nbt)
        avg.update_parameters(model)
    bn = avg.module
    assert to_np(bn.running_mean).tolist() == [2.0, 4.0]
    # int64 buffer: copy_(3 * 0.5 + 6 * 0.5 = 4.5) truncates to 4
    assert bn.num_batches_tracked.dtype == torch.int64 and bn.num_batches_tracked.item() == 4


def test_use_buffers_default_swa_truncates_integer_buffers():
    model = nn.BatchNorm1d(1)
    avg = AveragedModel(model, use_buffers=True)
    for nbt in (2, 5):
        with torch.no_grad():
            model.num_batches_tracked.fill_(nbt)
        avg.update_parameters(model)
    # 2 + (5 - 2) / 2 = 3.5 -> 3, as PyTorch's copy_ into int64
    assert avg.module.num_batches_tracked.item() == 3


def test_swa_multi_avg_fn_rejects_integer_buffers():
    # PyTorch's foreach addcdiv_ refuses integer tensors; so does this path
    model = nn.BatchNorm1d(1)
    avg = AveragedModel(model, multi_avg_fn=get_swa_multi_avg_fn(), use_buffers=True)
    avg.update_parameters(model)
    with pytest.raises(RuntimeError, match="Integer division with addcdiv"):
        avg.update_parameters(model)


# ---- update_bn ----------------------------------------------------------------------------------

def _bn_loader(rng, sizes, nf=3, tuples=True):
    batches = [rng.normal(size=(n, nf)).astype(np.float32) * (i + 1) + i
               for i, n in enumerate(sizes)]
    loader = []
    for i, b in enumerate(batches):
        x = torch.tensor(b)
        # alternate plain tensors and (input, target) pairs / lists
        loader.append(x if not tuples or i % 3 == 0 else
                      (x, torch.zeros(len(b))) if i % 3 == 1 else [x, 0])
    return batches, loader


def test_update_bn_matches_numpy_cumulative_average():
    rng = np.random.default_rng(0)
    batches, loader = _bn_loader(rng, [4, 7, 5, 9, 3])
    model = nn.Sequential(nn.Identity(), nn.BatchNorm1d(3, momentum=0.3))
    bn = model[1]
    with torch.no_grad():                     # stale stats that update_bn must reset
        bn.running_mean.fill_(100.0)
        bn.running_var.fill_(50.0)
        bn.num_batches_tracked.fill_(17)
    model.eval()
    update_bn(loader, model)
    # momentum=None: running = mean over batches of the batch mean / unbiased batch variance
    exp_mean = np.mean([b.astype(np.float64).mean(0) for b in batches], axis=0)
    exp_var = np.mean([b.astype(np.float64).var(0, ddof=1) for b in batches], axis=0)
    np.testing.assert_allclose(to_np(bn.running_mean), exp_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_np(bn.running_var), exp_var, rtol=1e-5, atol=1e-6)
    assert bn.num_batches_tracked.item() == len(batches)
    assert bn.momentum == 0.3                 # restored
    assert model.training is False and bn.training is False


def test_update_bn_restores_train_mode_and_nested_bns():
    rng = np.random.default_rng(1)
    x = [rng.normal(size=(2, 2, 3, 3)).astype(np.float32) for _ in range(3)]
    model = nn.Sequential(nn.Sequential(nn.BatchNorm2d(2, momentum=None)),
                          nn.BatchNorm2d(2))
    model.train()
    update_bn([torch.tensor(a) for a in x], model)
    assert model.training and model[0][0].momentum is None and model[1].momentum == 0.1
    exp = np.mean([a.astype(np.float64).mean(axis=(0, 2, 3)) for a in x], axis=0)
    np.testing.assert_allclose(to_np(model[0][0].running_mean), exp, rtol=1e-5, atol=1e-6)
    # the second BN sees the first one's (normalised) output: mean ~0 per batch
    np.testing.assert_allclose(to_np(model[1].running_mean), [0.0, 0.0], atol=1e-6)


def test_update_bn_on_averaged_model():
    rng = np.random.default_rng(2)
    batches, loader = _bn_loader(rng, [6, 6], nf=2, tuples=False)
    avg = AveragedModel(nn.Sequential(nn.BatchNorm1d(2)))
    update_bn(loader, avg)
    exp = np.mean([b.astype(np.float64).mean(0) for b in batches], axis=0)
    np.testing.assert_allclose(to_np(avg.module[0].running_mean), exp, rtol=1e-5, atol=1e-6)


def test_update_bn_without_batchnorm_does_nothing():
    def loader():
        raise AssertionError("the loader must not be read")
        yield

    model = nn.Linear(2, 2).eval()
    update_bn(loader(), model)
    assert model.training is False


# ---- SWALR --------------------------------------------------------------------------------------

def _opt(lr=1.0, groups=1):
    ps = [nn.Parameter(torch.zeros(1)) for _ in range(groups)]
    return optim.SGD([{"params": [p]} for p in ps], lr=lr)


def _lrs(sched, steps):
    """lr after construction and after each of `steps` steps (group 0 unless a list is kept)."""
    out = [sched.get_last_lr()]
    for _ in range(steps):
        sched.optimizer.step()
        sched.step()
        out.append(sched.get_last_lr())
    return out


def _closed_form(lr0, swa, epochs, steps, cos):
    """lr_s = swa + (lr0 - swa) * (1 - alpha(min(1, s / E))): the recursion unrolled by hand."""
    out = []
    for s in range(steps + 1):
        t = min(1.0, s / max(1, epochs)) if epochs else 1.0
        alpha = (1 - math.cos(math.pi * t)) / 2 if cos else t
        out.append(swa + (lr0 - swa) * (1 - alpha))
    return out


def test_swalr_linear_hand_values():
    sched = SWALR(_opt(1.0), swa_lr=0.2, anneal_epochs=4, anneal_strategy="linear")
    got = [lr[0] for lr in _lrs(sched, 15)]
    assert got == pytest.approx([1.0, 0.8, 0.6, 0.4] + [0.2] * 12, abs=1e-12)


def test_swalr_cos_hand_values():
    sched = SWALR(_opt(1.0), swa_lr=0.1, anneal_epochs=5)
    got = [lr[0] for lr in _lrs(sched, 15)]
    # step 1: 0.1 + 0.9 * (1 + cos(pi / 5)) / 2 = 0.1 + 0.9 * 0.9045084971874737
    assert got[1] == pytest.approx(0.9140576474687264, abs=1e-12)
    assert got[5:] == pytest.approx([0.1] * 11, abs=1e-12)
    assert got == pytest.approx(_closed_form(1.0, 0.1, 5, 15, cos=True), abs=1e-12)
    assert all(a > b for a, b in zip(got[:5], got[1:6]))    # strictly decreasing while annealing


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_swalr_per_group_swa_lrs(strategy):
    opt = _opt(0.5, groups=2)
    opt.param_groups[1]["lr"] = 0.05
    sched = SWALR(opt, swa_lr=[0.1, 0.2], anneal_epochs=6, anneal_strategy=strategy)
    hist = _lrs(sched, 14)
    assert [g["swa_lr"] for g in opt.param_groups] == [0.1, 0.2]
    for k, (lr0, swa) in enumerate([(0.5, 0.1), (0.05, 0.2)]):   # (an lr may anneal upwards)
        assert [h[k] for h in hist] == pytest.approx(
            _closed_form(lr0, swa, 6, 14, strategy == "cos"), abs=1e-12)


def test_swalr_zero_anneal_epochs_jumps_at_construction():
    sched = SWALR(_opt(1.0), swa_lr=0.3, anneal_epochs=0)
    assert [lr[0] for lr in _lrs(sched, 3)] == [0.3] * 4


def test_swalr_state_dict_round_trip():
    sched = SWALR(_opt(1.0), swa_lr=0.1, anneal_epochs=6, anneal_strategy="linear")
    _lrs(sched, 2)
    sd = sched.state_dict()
    assert "anneal_func" not in sd and "optimizer" not in sd
    assert sd["_anneal_strategy"] == "linear" and sd["anneal_epochs"] == 6
    ref = [lr[0] for lr in _lrs(copy.deepcopy(sched), 6)]
    # a fresh cos scheduler on a fresh optimizer, loaded: continues linearly from step 2
    opt2 = _opt(1.0)
    sched2 = SWALR(opt2, swa_lr=0.1, anneal_epochs=6)
    sched2.load_state_dict(sd)
    opt2.param_groups[0]["lr"] = sd["_last_lr"][0]
    assert sched2.anneal_func is SWALR._linear_anneal
    assert [lr[0] for lr in _lrs(sched2, 6)] == pytest.approx(ref, abs=1e-12)
    assert ref[-1] == pytest.approx(0.1, abs=1e-12)


def test_swalr_get_lr_outside_step_warns():
    sched = SWALR(_opt(1.0), swa_lr=0.1)
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.optimizer.step()
        sched.step()                          # no warning from inside step()


def test_swalr_errors():
    with pytest.raises(ValueError, match="anneal_strategy must be one of 'cos' or 'linear', "
                                         "instead got exp"):
        SWALR(_opt(), swa_lr=0.1, anneal_strategy="exp")
    for bad in (-1, 2.5, "3"):
        with pytest.raises(ValueError, match="anneal_epochs must be equal or greater than 0"):
            SWALR(_opt(), swa_lr=0.1, anneal_epochs=bad)
    with pytest.raises(ValueError, match="swa_lr must have the same length as "
                                         "optimizer.param_groups"):
        SWALR(_opt(groups=2), swa_lr=[0.1, 0.2, 0.3])


def test_module_exports():
    assert torch.optim.swa_utils is swa_utils
    assert set(swa_utils.__all__) == {"AveragedModel", "update_bn", "SWALR",
                                      "get_ema_multi_avg_fn", "get_swa_multi_avg_fn",
                                      "get_ema_avg_fn", "get_swa_avg_fn"}
    assert issubclass(SWALR, optim.lr_scheduler.LRScheduler)


# ---- optional cross-check against PyTorch -------------------------------------------------------

def _real():
    return pytest.importorskip("torch", reason="optional cross-check against PyTorch 2.13")


def _pair(T):
    """The same small model (Linear -> BatchNorm1d) in Kiln and in PyTorch."""
    k = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    t = T.nn.Sequential(T.nn.Linear(3, 2), T.nn.BatchNorm1d(2))
    _load(T, k, t, np.random.default_rng(10), 0)
    return k, t


def _load(T, k, t, rng, step):
    """Fresh random weights and running stats, identical in both models."""
    sd = {}
    for name, v in k.state_dict().items():
        if name.endswith("num_batches_tracked"):
            sd[name] = np.array(3 * step + 1, dtype=np.int64)
        elif name.endswith("running_var"):
            sd[name] = rng.uniform(0.5, 2.0, size=tuple(v.shape)).astype(np.float32)
        else:
            sd[name] = rng.normal(size=tuple(v.shape)).astype(np.float32)
    k.load_state_dict({n: torch.tensor(a) for n, a in sd.items()})
    t.load_state_dict({n: T.tensor(a) for n, a in sd.items()})


CONFIGS = {
    "default": lambda m: {},      # (on cpu PyTorch loops get_swa_avg_fn, not its foreach lerp)
    "swa_avg_fn": lambda m: dict(avg_fn=m.get_swa_avg_fn()),
    "swa_multi": lambda m: dict(multi_avg_fn=m.get_swa_multi_avg_fn()),
    "ema_avg_fn": lambda m: dict(avg_fn=m.get_ema_avg_fn(0.9)),
    "ema_multi": lambda m: dict(multi_avg_fn=m.get_ema_multi_avg_fn(0.9)),
}


@pytest.mark.parametrize("use_buffers", [False, True])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_averaged_model_matches_torch(config, use_buffers):
    T = _real()
    from torch.optim import swa_utils as tswa
    k, t = _pair(T)
    k_avg = AveragedModel(k, use_buffers=use_buffers, **CONFIGS[config](swa_utils))
    t_avg = tswa.AveragedModel(t, use_buffers=use_buffers, **CONFIGS[config](tswa))
    rng = np.random.default_rng(11)
    if config == "swa_multi" and use_buffers:
        # both refuse the int64 num_batches_tracked on the second update
        k_avg.update_parameters(k)
        t_avg.update_parameters(t)
        with pytest.raises(RuntimeError):
            k_avg.update_parameters(k)
        with pytest.raises(RuntimeError):
            t_avg.update_parameters(t)
        return
    for step in range(5):
        _load(T, k, t, rng, step)
        k_avg.update_parameters(k)
        t_avg.update_parameters(t)
    ks, ts = k_avg.state_dict(), t_avg.state_dict()
    assert list(ks) == list(ts)
    for name in ks:
        a, b = to_np(ks[name]), ts[name].numpy()
        assert a.dtype == b.dtype, name
        if config.endswith("multi") and a.dtype == np.float32:
            # PyTorch's CPU lerp kernel rounds once (a fused multiply-add); Kiln's lerp rounds the
            # product and the sum: within a few float32 ulps
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f"{config} {name}")
        else:
            # the same operations in the same order: equal to the last bit
            np.testing.assert_array_equal(a, b, err_msg=f"{config} {name}")
    x = rng.normal(size=(4, 3)).astype(np.float32)
    k_avg.eval(), t_avg.eval()
    np.testing.assert_allclose(to_np(k_avg(torch.tensor(x))), t_avg(T.tensor(x)).detach().numpy(),
                               rtol=1e-6, atol=1e-6)


def test_update_bn_matches_torch():
    T = _real()
    from torch.optim import swa_utils as tswa
    k, t = _pair(T)
    rng = np.random.default_rng(12)
    data = [rng.normal(size=(n, 3)).astype(np.float32) for n in (5, 8, 3, 6)]
    update_bn([(torch.tensor(a), 0) for a in data], k)
    tswa.update_bn([(T.tensor(a), 0) for a in data], t)
    for name in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        np.testing.assert_allclose(to_np(k.state_dict()[name]), t.state_dict()[name].numpy(),
                                   rtol=1e-6, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("epochs", [0, 1, 3, 10])
def test_swalr_matches_torch(strategy, epochs):
    T = _real()
    from torch.optim import swa_utils as tswa
    kopt = _opt(0.5, groups=2)
    topt = T.optim.SGD([{"params": [T.nn.Parameter(T.zeros(1))]} for _ in range(2)], lr=0.5)
    kopt.param_groups[1]["lr"] = topt.param_groups[1]["lr"] = 0.03
    ks = SWALR(kopt, swa_lr=[0.05, 0.2], anneal_epochs=epochs, anneal_strategy=strategy)
    ts = tswa.SWALR(topt, swa_lr=[0.05, 0.2], anneal_epochs=epochs, anneal_strategy=strategy)
    for i in range(15):
        np.testing.assert_allclose(ks.get_last_lr(), ts.get_last_lr(), rtol=0, atol=1e-12,
                                   err_msg=f"step {i}")
        kopt.step(), topt.step()
        ks.step(), ts.step()
    assert ks.get_last_lr() == pytest.approx(ts.get_last_lr(), abs=1e-12)
    assert sorted(ks.state_dict()) == sorted(ts.state_dict())
