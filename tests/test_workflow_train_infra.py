"""Training-loop infrastructure found different from PyTorch 2.13 by workflow differential
scripts (optimizers, schedulers, data loading, checkpointing): the regressions, each against
hand-derived values or constants PyTorch printed."""
import math
import multiprocessing as mp
import warnings

import numpy as np
import pytest

import framework as torch
from framework import nn, optim
from framework.optim import lr_scheduler as L
from framework.utils import data as D
from framework.utils.checkpoint import checkpoint, checkpoint_sequential


# ---- optimizers -------------------------------------------------------------------------------

@pytest.mark.parametrize("cls,kw,names,xla", [
    (optim.Adam, {}, "params and state_steps", True),
    (optim.Adam, dict(foreach=True), "params and state_steps", False),
    (optim.AdamW, {}, "params and state_steps", True),
    (optim.RMSprop, {}, "params and state_steps", True),
    (optim.Adadelta, {}, "params and state_steps", False),
    (optim.NAdam, {}, "params, mu_products and state_steps", True),
    (optim.NAdam, dict(foreach=True), "params, mu_products, and state_steps", False),
    (optim.ASGD, {}, "params, mus, etas, and state_steps", True),
])
def test_capturable_on_cpu_raises_and_leaves_params(cls, kw, names, xla):
    p, q = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(3))
    opt = cls([p, q], capturable=True, **kw)
    p.grad, q.grad = torch.ones(2), torch.ones(3)
    devs = "['cuda', 'xpu', 'hpu', 'privateuseone'" + (", 'xla'" if xla else "") + "]"
    with pytest.raises(AssertionError) as e:
        opt.step()
    assert str(e.value) == f"If capturable=True, {names} must be on supported devices: {devs}."
    np.testing.assert_array_equal(p.detach().numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(q.detach().numpy(), [1.0, 1.0, 1.0])


def test_scalar_state_dtype_follows_float64_default():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        w = nn.Parameter(torch.tensor([1.0, -2.0]))
        w.grad = torch.tensor([0.5, 0.25])
        adam, fused = optim.Adam([w], lr=0.1), optim.Adam([w], lr=0.1, fused=True)
        asgd, nadam = optim.ASGD([w], lr=0.1, lambd=0.01), optim.NAdam([w])
        for o in (adam, fused, asgd, nadam):
            o.step()
        assert adam.state[w]["step"].dtype == torch.float64
        assert fused.state[w]["step"].dtype == torch.float32     # fused keeps float32
        st = asgd.state[w]
        assert st["eta"].dtype == st["mu"].dtype == st["step"].dtype == torch.float64
        # eta after one step: lr / (1 + lambd * lr * step) ** alpha, unrounded to float32
        assert st["eta"].item() == 0.1 / (1 + 0.01 * 0.1 * 1) ** 0.75
        mp_ = nadam.state[w]["mu_product"]
        assert mp_.dtype == torch.float64
        assert mp_.item() == 0.9 * (1.0 - 0.5 * 0.96 ** (1 * 0.004))
    finally:
        torch.set_default_dtype(old)
    w = nn.Parameter(torch.ones(1))
    w.grad = torch.ones(1)
    o = optim.NAdam([w])
    o.step()
    assert o.state[w]["step"].dtype == o.state[w]["mu_product"].dtype == torch.float32


def test_differentiable_step_is_recorded_by_autograd():
    # p = 2 w0 (not a leaf); SGD with weight decay: p' = p (1 - lr wd) - lr g for a constant g
    lr, wd = 0.1, 0.5
    w0 = torch.tensor([1.0, -2.0], requires_grad=True)
    p = w0 * 2
    p.grad = torch.tensor([0.5, 0.25])
    optim.SGD([p], lr=lr, weight_decay=wd, differentiable=True).step()
    p0 = np.array([2.0, -4.0])
    want = p0 * (1 - lr * wd) - lr * np.array([0.5, 0.25])
    np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-6)
    (p ** 2).sum().backward()
    # d/dw0 of sum(p'^2) = 2 p' (1 - lr wd) * 2: the decay term is differentiated too
    np.testing.assert_allclose(w0.grad.numpy(), 2 * want * (1 - lr * wd) * 2, rtol=1e-6)
    # a leaf that requires grad cannot be updated in place while autograd records
    leaf = nn.Parameter(torch.ones(2))
    leaf.grad = torch.ones(2)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used "
                                           "in an in-place operation"):
        optim.Adam([leaf], differentiable=True).step()
    np.testing.assert_array_equal(leaf.detach().numpy(), [1.0, 1.0])


# ---- lr_scheduler -----------------------------------------------------------------------------

def test_epoch_argument_deprecation_warning_text():
    o = optim.SGD([nn.Parameter(torch.ones(1))], lr=0.1)
    s = L.StepLR(o, 2)
    o.step()
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        s.step(5)
    msg = [str(w.message) for w in ws if issubclass(w.category, UserWarning)]
    assert len(msg) == 1 and msg[0].endswith(
        "where available. Please open an issue if you are unable to replicate your use case: "
        "https://github.com/pytorch/pytorch/issues/new/choose.")
    assert o.param_groups[0]["lr"] == pytest.approx(0.1 * 0.1 ** 2)     # closed form, epoch 5


def test_schedulers_fill_a_tensor_lr_in_place():
    p = nn.Parameter(torch.ones(2))
    lr = torch.tensor(0.1)
    o = optim.SGD([p], lr=lr)
    s = L.StepLR(o, 1, gamma=0.5)
    for k in range(1, 4):
        o.step()
        s.step()
        assert o.param_groups[0]["lr"] is lr and lr.item() == pytest.approx(0.1 * 0.5 ** k)
    # initial_lr, base_lrs and get_last_lr() are copies, not the filled tensor
    assert o.param_groups[0]["initial_lr"].item() == pytest.approx(0.1)
    assert s.base_lrs[0].item() == pytest.approx(0.1)
    last = s.get_last_lr()[0]
    assert last is not lr and last.item() == pytest.approx(0.0125)
    o2 = optim.SGD([p], lr=torch.tensor(0.2))
    t = o2.param_groups[0]["lr"]
    pl = L.ReduceLROnPlateau(o2, patience=0, factor=0.1)
    for v in (1.0, 2.0):
        pl.step(v)
    assert o2.param_groups[0]["lr"] is t and t.item() == pytest.approx(0.02)
    o3 = optim.SGD([p], lr=torch.tensor(0.2), momentum=0.9)
    t = o3.param_groups[0]["lr"]
    cyc = L.CyclicLR(o3, base_lr=0.1, max_lr=1.0, step_size_up=2)
    assert t.item() == pytest.approx(0.1)
    o3.step()
    cyc.step()
    assert o3.param_groups[0]["lr"] is t and t.item() == pytest.approx(0.55)


# ---- utils.data -------------------------------------------------------------------------------

def test_shuffle_seed_is_drawn_over_the_whole_int64_range():
    # PyTorch draws the sampler's and the loader's seeds with int64 random_(), [0, 2**63):
    # seed 1's first draw is 7692698082559361259 (> 2**62); orders PyTorch 2.13 printed
    g = torch.Generator().manual_seed(1)
    seed = D.DataLoader(range(4), generator=g)._base_seed()
    assert seed == 7692698082559361259 and seed > 2 ** 62
    torch.manual_seed(1)
    assert list(D.RandomSampler(range(8))) == [6, 5, 4, 7, 3, 1, 0, 2]
    torch.manual_seed(1)
    b = next(iter(D.DataLoader(torch.arange(8), batch_size=8, shuffle=True)))
    assert b.tolist() == [6, 1, 0, 3, 4, 5, 7, 2]


def test_pin_memory_without_accelerator_warns_at_each_iterator():
    if torch.accelerator.is_available():
        pytest.skip("pinning is used when an accelerator is present")
    dl = D.DataLoader(torch.arange(4.0), batch_size=2, pin_memory=True)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        assert [b.tolist() for b in dl] == [[0.0, 1.0], [2.0, 3.0]]
        list(dl)
    msg = [str(w.message) for w in ws]
    assert msg == ["'pin_memory' argument is set as true but no accelerator is found, then "
                   "device pinned memory won't be used."] * 2


class _Lying(D.IterableDataset):
    def __len__(self):
        return 3

    def __iter__(self):
        return iter(range(5))


def test_iterable_dataset_longer_than_its_len_warns_once_len_was_asked():
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        assert list(D.DataLoader(_Lying(), batch_size=None)) == [0, 1, 2, 3, 4]
    assert not ws                           # len(loader) never asked: no warning
    dl = D.DataLoader(_Lying(), batch_size=None)
    assert len(dl) == 3
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        assert [int(b) for b in dl] == [0, 1, 2, 3, 4]
    msg = [str(w.message) for w in ws]
    assert len(msg) == 2                    # the 4th and the 5th item
    assert msg[0].startswith("Length of IterableDataset ") and msg[0].endswith(
        " was reported to be 3(when accessing len(dataloader)), but 4 samples have been "
        "fetched. ")


def test_multiprocessing_context_string_becomes_a_context():
    dl = D.DataLoader(range(4), num_workers=1, multiprocessing_context="spawn")
    assert isinstance(dl.multiprocessing_context, mp.context.BaseContext)
    assert dl.multiprocessing_context.get_start_method() == "spawn"
    with pytest.raises(ValueError, match="should specify a valid start method in"):
        D.DataLoader(range(4), num_workers=1, multiprocessing_context="nope")
    with pytest.raises(TypeError, match="should be a valid context object or a string"):
        D.DataLoader(range(4), num_workers=1, multiprocessing_context=3)


def test_more_workers_than_cpus_warns_and_timeout_needs_workers():
    import os
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        D.DataLoader(range(4), num_workers=n)
        assert not ws
        D.DataLoader(range(4), num_workers=n + 1)       # (no iteration: nothing is spawned)
    (w,) = ws
    assert str(w.message).startswith(f"This DataLoader will create {n + 1} worker processes in "
                                      f"total. Our suggested max number of worker in current "
                                      f"system is {n}")
    with pytest.raises(AssertionError, match="_SingleProcessDataLoaderIter requires timeout == 0"):
        iter(D.DataLoader(range(4), timeout=5))


# ---- utils.checkpoint -------------------------------------------------------------------------

def test_checkpoint_use_reentrant_warnings_match_pytorch():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 2), nn.Tanh())
    x = torch.ones(1, 2, requires_grad=True)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        y = checkpoint(lin, x)
        z = checkpoint_sequential(seq, 2, x)
    msg = [str(w.message) for w in ws]
    assert len(msg) == 2        # checkpoint_sequential warns once, not again per segment
    assert msg[0].startswith("torch.utils.checkpoint: the use_reentrant parameter should be "
                             "passed explicitly. Starting in PyTorch 2.9")
    assert msg[1].startswith("torch.utils.checkpoint.checkpoint_sequential: the use_reentrant "
                             "parameter should be passed explicitly. In version 2.9")
    # the default is the reentrant variant, as in PyTorch
    assert type(y.grad_fn).__name__ == "CheckpointFunctionBackward"
    with torch.no_grad():
        ref = seq(x)
    np.testing.assert_allclose(z.detach().numpy(), ref.numpy(), rtol=1e-6)


class _Batched(D.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return i * 10

    def __getitems__(self, idx):
        return [i * 100 for i in idx]


def test_stack_dataset_getitems_uses_each_datasets_batched_fetch():
    sd = D.StackDataset(_Batched(), range(4))
    assert sd.__getitems__([1, 3]) == [(100, 1), (300, 3)]
    assert sd[1] == (10, 1)
    named = D.StackDataset(a=_Batched(), b=range(4))
    assert named.__getitems__([0, 2]) == [{"a": 0, "b": 0}, {"a": 200, "b": 2}]
    (b,) = list(D.DataLoader(named, batch_size=4))[:1]
    assert b["a"].tolist() == [0, 100, 200, 300] and b["b"].tolist() == [0, 1, 2, 3]
    assert len(named.datasets) == 2


@pytest.mark.parametrize("w,msg", [
    ([-1.0, 2.0], "invalid multinomial distribution (encountering probability entry < 0)"),
    ([float("nan"), 1.0], "invalid multinomial distribution (encountering probability entry < 0)"),
    ([float("inf"), 1.0],
     "invalid multinomial distribution (encountering probability entry = infinity or NaN)"),
])
def test_multinomial_with_replacement_reports_the_first_bad_entry(w, msg):
    t = torch.tensor(w, dtype=torch.float64)
    with pytest.raises(RuntimeError) as e:
        torch.multinomial(t, 2, True)
    assert str(e.value) == msg
    # one sample, or without replacement: the other kernel's message
    for n, rep in ((1, True), (2, False)):
        with pytest.raises(RuntimeError, match="probability tensor contains either `inf`, `nan` "
                                               "or element < 0"):
            torch.multinomial(t, n, rep)
    with pytest.raises(RuntimeError, match=r"encountering probability entry < 0"):
        list(D.WeightedRandomSampler([-1.0, 2.0], 3))


def test_checkpoint_sequential_kwargs_and_recompute_metadata_check():
    seq = nn.Sequential(nn.Identity(), nn.Identity())
    x = torch.ones(4, requires_grad=True)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: foo"):
        checkpoint_sequential(seq, 1, x, use_reentrant=False, foo=1)
    calls = []

    def f(t):            # a different shape when recomputed in backward
        calls.append(1)
        return (t * 2)[:3 if len(calls) == 1 else 2].sin()
    y = checkpoint(f, x, use_reentrant=False)
    with pytest.raises(torch.utils.checkpoint.CheckpointError) as e:
        y.sum().backward()
    assert str(e.value).startswith(
        "torch.utils.checkpoint: Recomputed values for the following tensors have different "
        "metadata than during the forward pass.\ntensor at position 0:\nsaved metadata: "
        "{'shape': torch.Size([3]),")
    with pytest.raises(ValueError, match=r"determinism_check should be one of \['default', "
                                         r"'none'\], but got foo"):
        checkpoint(f, x, use_reentrant=False, determinism_check="foo")
    # determinism_check="none" skips the check; the gradient is right when shapes agree
    calls.clear()
    y = checkpoint(lambda t: (t * 2).sin(), x, use_reentrant=False, determinism_check="none")
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.cos(2.0) * np.ones(4), rtol=1e-6)


def test_reentrant_checkpoint_refuses_grad_and_backward_inputs():
    lin = nn.Linear(3, 3)
    msg = "When use_reentrant=True, torch.utils.checkpoint is incompatible with .grad()"
    x = torch.ones(2, 3, requires_grad=True)
    y = checkpoint(lambda t: lin(t).tanh(), x, use_reentrant=True)
    with pytest.raises(RuntimeError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        torch.autograd.grad(y.sum(), x)
    y = checkpoint(lambda t: lin(t).tanh(), x, use_reentrant=True)
    with pytest.raises(RuntimeError, match="or passing an `inputs` parameter to .backward"):
        y.sum().backward(inputs=[x])
    assert x.grad is None
    # a plain backward() works: d/dx sum(tanh(x W^T + b)) = (1 - tanh^2) @ W
    y = checkpoint(lambda t: lin(t).tanh(), x, use_reentrant=True)
    y.sum().backward()
    W, b = lin.weight.detach().numpy().astype(np.float64), lin.bias.detach().numpy()
    t = np.tanh(np.ones((2, 3)) @ W.T + b)
    np.testing.assert_allclose(x.grad.numpy(), (1 - t ** 2) @ W, rtol=1e-5)
