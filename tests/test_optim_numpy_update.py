"""The eager in-place NumPy path of Adam/AdamW and SGD (framework/optim/_numpy_update.py) gives
the tensor-op path's results bit for bit (parameters, moments, momentum buffers, step counts,
version counters) in every configuration it takes, and is not taken where it would not be
exact."""
import numpy as np
import pytest

import framework as torch
from framework.optim import _numpy_update


def _run(make_opt, dtype, fast, monkeypatch, steps=4, shapes=((7, 5), (5,), (3, 4, 2))):
    if not fast:
        monkeypatch.setattr(_numpy_update, "eligible", lambda *a: False)
        monkeypatch.setattr(_numpy_update, "sgd_eligible", lambda *a: False)
    rng = np.random.default_rng(0)
    ps = [torch.tensor(rng.standard_normal(s), dtype=dtype, requires_grad=True)
          for s in shapes]
    opt = make_opt(ps)
    for k in range(steps):
        for p in ps:
            g = rng.standard_normal(p.shape)
            g.flat[::5] = 0.0
            if k == 2:
                g.flat[1] = 1e30                        # a huge gradient
            p.grad = torch.tensor(g, dtype=dtype)
        opt.step()
    out = [p.detach().numpy().copy() for p in ps]
    versions = [p._version for p in ps]
    for p in ps:
        st = opt.state.get(p, {})
        for k in sorted(st):
            if isinstance(st[k], torch.Tensor):
                out.append(st[k].numpy().copy())
                versions.append((k, st[k]._version))
    return out, versions


CONFIGS = {
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2),
    "adam-l2": lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=0.1),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=3e-3, weight_decay=0.05),
    "adamw-int-lr": lambda ps: torch.optim.AdamW(ps, lr=1, betas=(0.5, 0.9)),
    "adam-beta1-small": lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.3, 0.99)),  # w >= .5
    "adam-maximize": lambda ps: torch.optim.Adam(ps, lr=1e-2, maximize=True, eps=1e-3),
    "adam-beta2-zero": lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.9, 0.0)),   # value 1
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "sgd-momentum": lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9),
    "sgd-dampening-wd": lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.5, dampening=0.25,
                                                   weight_decay=1e-2),
    "sgd-nesterov-maximize": lambda ps: torch.optim.SGD(ps, lr=0.02, momentum=0.9,
                                                        nesterov=True, maximize=True),
    "sgd-int": lambda ps: torch.optim.SGD(ps, lr=1, momentum=1),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_numpy_path_equals_tensor_ops_bit_for_bit(name, dtype, monkeypatch):
    seen = []
    fn = "sgd" if name.startswith("sgd") else "adam"
    real = getattr(_numpy_update, fn)
    monkeypatch.setattr(_numpy_update, fn, lambda *a: seen.append(1) or real(*a))
    fast, fv = _run(CONFIGS[name], dtype, True, monkeypatch)
    assert seen, "the NumPy path was not taken"
    monkeypatch.setattr(_numpy_update, fn, real)
    slow, sv = _run(CONFIGS[name], dtype, False, monkeypatch)
    assert fv == sv
    for a, b in zip(fast, slow):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["adam", "adamw", "adam-beta1-small"])
def test_large_parameters_update_in_chunks_on_threads_bit_for_bit(name, monkeypatch):
    """A parameter of >= parallel.MIN_ELEMENTS elements runs Adam's ops in chunks on several
    threads: still the tensor ops' results bit for bit."""
    from compiler.codegen import parallel
    monkeypatch.setattr(parallel, "threads", 3)
    shapes = ((parallel.MIN_ELEMENTS // 100 + 7, 100), (9,))
    fast, fv = _run(CONFIGS[name], torch.float32, True, monkeypatch, steps=3, shapes=shapes)
    slow, sv = _run(CONFIGS[name], torch.float32, False, monkeypatch, steps=3, shapes=shapes)
    assert fv == sv
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("why", ["amsgrad", "float16", "tensor-lr", "view"])
def test_numpy_path_is_not_taken_where_it_would_not_be_exact(why, monkeypatch):
    taken = []
    monkeypatch.setattr(_numpy_update, "adam", lambda *a: taken.append(1))
    dtype = torch.float16 if why == "float16" else torch.float32
    base = torch.randn(4, 6, dtype=dtype)
    p = base[:, :3].clone().requires_grad_() if why != "view" else None
    if why == "view":
        leaf = torch.randn(6, 4, requires_grad=True)
        p = leaf
    kw = dict(amsgrad=True) if why == "amsgrad" else {}
    lr = torch.tensor(0.01) if why == "tensor-lr" else 0.01
    opt = torch.optim.Adam([p], lr=lr, **kw)
    p.grad = torch.ones_like(p)
    if why == "view":          # a parameter whose array is another tensor's view
        opt.state[p]           # (state made on first step)
        p._base = torch.zeros(1)
        try:
            opt.step()
        finally:
            p._base = None
    else:
        opt.step()
    assert not taken
    assert np.isfinite(p.detach().float().numpy()).all()


def test_compiled_step_still_traces_the_tensor_ops():
    """Under compile() the update is traced (the NumPy path would hide it from the graph): the
    compiled step equals the eager one, which takes the NumPy path."""
    results = []
    for compiled in (False, True):
        torch.manual_seed(0)
        m = torch.nn.Linear(6, 3)
        opt = torch.optim.AdamW(m.parameters(), lr=1e-2)

        def step(x):
            opt.zero_grad()
            m(x).pow(2).sum().backward()
            opt.step()
        f = torch.compile(step) if compiled else step
        for k in range(3):
            f(torch.ones(4, 6) * (k + 1))
        results.append([p.detach().numpy().copy() for p in m.parameters()])
        if compiled:
            assert f.stats["graph_breaks"] == [] and f.stats["compiles"] >= 1
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
