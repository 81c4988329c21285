"""compile(): API, guards and recompiles, graph breaks, random ops, buffer mutation, compiled
training (forward + outside backward, whole steps with optimizers), introspection and logs."""
import warnings

import numpy as np
import pytest

import framework as torch
from framework import nn, optim
import framework.nn.functional as F
from framework import _compile
from framework._compile import log, GraphBreakError, is_compiling
from framework._dispatch import STATE


@pytest.fixture
def logs():
    """Switch KILN_LOGS topics on for one test (and off again)."""
    on = []

    def enable(*topics):
        on.extend(topics)
        log.enable(*topics)
    yield enable
    log.disable(*on)


def arr(t):
    return t.detach().numpy().copy()


def close(a, b, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(arr(a), arr(b), rtol=rtol, atol=atol)


# ---- API ---------------------------------------------------------------------------------------

def test_function_matches_eager_and_returns_concrete_tensors():
    def f(x, y):
        return (x * y).sin().sum(1) + x.mean()
    cf = torch.compile(f)
    x, y = torch.randn(4, 5), torch.randn(4, 5)
    out = cf(x, y)
    assert isinstance(out._data, np.ndarray)
    np.testing.assert_allclose(out.numpy(), np.sin(x.numpy() * y.numpy()).sum(1) + x.numpy().mean(),
                               rtol=1e-5)
    assert cf.stats["calls"] == 1 and cf.stats["compiles"] == 1
    assert cf.__name__ == "f"
    assert not is_compiling()


def test_decorator_with_and_without_arguments():
    @torch.compile
    def f(x):
        return x.relu() * 2

    @torch.compile(backend="numpy", fullgraph=True, mode="reduce-overhead")
    def g(x):
        return x.exp() - 1

    x = torch.tensor([-1.0, 0.5, 2.0])
    np.testing.assert_allclose(f(x).numpy(), [0.0, 1.0, 4.0])
    np.testing.assert_allclose(g(x).numpy(), np.expm1(x.numpy()), rtol=1e-6)
    assert g.fullgraph and g.mode == "reduce-overhead"
    assert torch.compile(f, disable=True) is f


def test_backend_and_mode_errors():
    f = lambda x: x + 1  # noqa: E731
    # the Triton backends exist (tests/test_compile_triton.py); 'triton' needs a GPU at run time
    assert torch.compile(f, backend="interpret").backend == "interpret"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            torch.compile(f, backend="triton")(torch.ones(2))
    # torch raises torch._dynamo.exc.InvalidBackend, a RuntimeError
    with pytest.raises(RuntimeError, match="unknown backend 'tvm'") as e:
        torch.compile(f, backend="tvm")
    assert isinstance(e.value, torch._dynamo.exc.InvalidBackend)
    with pytest.raises(RuntimeError, match="Either mode or options"):
        torch.compile(f, mode="max-autotune", options={"trace.enabled": True})
    with pytest.raises(RuntimeError, match="unrecognized mode"):
        torch.compile(f, mode="fastest")
    with pytest.raises(TypeError, match="callable or nn.Module"):
        torch.compile(3)


def test_eager_backend_runs_the_traced_graph_without_codegen():
    def f(x):
        return (x * 3).tanh().sum(0)
    cf = torch.compile(f, backend="eager")
    x = torch.randn(3, 4)
    close(cf(x), f(x))
    prog = cf.programs()[0]
    assert prog.backend == "eager" and "tanh" in prog.source and prog.runs >= 1


def test_module_shares_parameters_and_state_dict_prefix():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    cm = torch.compile(m)
    assert type(cm).__name__ == "OptimizedModule"
    assert cm._orig_mod is m
    assert [id(p) for p in cm.parameters()] == [id(p) for p in m.parameters()]
    keys = list(cm.state_dict().keys())
    assert keys == ["_orig_mod." + k for k in m.state_dict().keys()]
    x = torch.randn(3, 4)
    close(cm(x), m(x))
    with torch.no_grad():                    # an update of the original is seen, no recompile
        m[0].weight.mul_(2)
    close(cm(x), m(x))
    assert cm._compiled.stats["recompiles"] == []
    assert getattr(cm, "0") is m[0]          # attribute access reaches the original
    assert "(_orig_mod): Sequential(" in repr(cm)


def test_exception_inside_traced_function_leaves_eager_mode():
    def f(x):
        y = x + 1
        return y @ torch.ones(7, 2)          # shape error from the meta rule
    with pytest.raises(RuntimeError, match="matmul"):
        torch.compile(f)(torch.ones(2, 3))
    assert STATE.tracer is None
    np.testing.assert_allclose((torch.ones(2) + 1).numpy(), [2.0, 2.0])


def test_nested_compiled_calls_inline():
    inner = torch.compile(lambda x: x * 2)
    outer = torch.compile(lambda x: inner(x) + 1)
    x = torch.randn(3)
    close(outer(x), x * 2 + 1)
    assert inner.stats["calls"] == 0 and outer.stats["compiles"] == 1


def test_inplace_write_to_input_is_written_back():
    def f(x, buf):
        buf.add_(x)
        buf.mul_(2)
        return buf.sum()
    x = torch.tensor([1.0, 2.0])
    buf = torch.tensor([10.0, 20.0])
    ref = torch.tensor([10.0, 20.0])
    cf = torch.compile(f)
    r = cf(x, buf)
    f(x, ref)
    np.testing.assert_array_equal(buf.numpy(), [22.0, 44.0])
    np.testing.assert_array_equal(buf.numpy(), ref.numpy())
    assert r.item() == 66.0
    cf(x, buf)
    np.testing.assert_array_equal(buf.numpy(), [46.0, 92.0])


def test_inplace_writes_go_straight_into_donated_inputs():
    def f(x, buf, other):
        buf.add_(x)
        buf.mul_(2)
        other.copy_(buf * 3)        # other is never read: no input, written back by a copy
        return buf.sum()
    x, buf, other = torch.tensor([1.0, 2.0]), torch.tensor([10.0, 20.0]), torch.zeros(2)
    arr = buf._data
    cf = torch.compile(f)
    for k in range(3):
        ref_b, ref_o = buf.clone(), other.clone()
        r = cf(x, buf, other)
        r_ref = f(x, ref_b, ref_o)
        assert buf._data is arr
        np.testing.assert_array_equal(buf.numpy(), ref_b.numpy())
        np.testing.assert_array_equal(other.numpy(), ref_o.numpy())
        assert r.item() == r_ref.item()
    prog = cf.stats["regions"][0].fwd
    assert prog.memory.donated and "out=in0)" in prog.source    # buf's array is the output


def test_no_donation_into_an_input_another_input_aliases():
    def f(w, v):
        w.add_(1)
        return v * 2                # v shares w's memory: reads the value before the write
    base = np.arange(6, dtype=np.float32)
    w, v = torch.from_numpy(base), torch.from_numpy(base[:3])
    cf = torch.compile(f)
    r = cf(w, v)
    np.testing.assert_array_equal(base, np.arange(6, dtype=np.float32) + 1)
    np.testing.assert_array_equal(r.numpy(), np.arange(3, dtype=np.float32) * 2)
    assert not cf.stats["regions"][0].fwd.memory.donated


def test_no_donation_into_an_input_sharing_a_buffer_with_another():
    """Two tensors over one Python buffer (torch.frombuffer twice): their arrays have different
    bases (each its own memoryview) yet one memory, so the update is not donated; before, the
    alias test walked .base and failed on the memoryview at the end of the chain. (As in
    torch.compile, which sees two storages, v is read as it was on entry.)"""
    def f(w, v):
        w.mul_(2)
        return v + 1
    buf = bytearray(np.arange(4, dtype=np.float32).tobytes())
    w = torch.frombuffer(buf, dtype=torch.float32)
    v = torch.frombuffer(buf, dtype=torch.float32)
    r = torch.compile(f)(w, v)
    np.testing.assert_array_equal(r.numpy(), np.arange(4, dtype=np.float32) + 1)
    np.testing.assert_array_equal(w.numpy(), np.arange(4, dtype=np.float32) * 2)
    # one tensor over a buffer of its own is donated as usual
    w2 = torch.frombuffer(bytearray(np.ones(3, np.float32).tobytes()), dtype=torch.float32)
    cf = torch.compile(lambda w: w.add_(1).sum())
    assert cf(w2).item() == 6.0 and cf.stats["regions"][0].fwd.memory.donated


def test_no_donation_while_the_input_memory_is_read_later():
    def f(w):
        t = w.t()                   # a view of the input's memory, read after the update
        w.add_(1)
        return t * 3
    w = torch.arange(6.0).reshape(2, 3)
    cf = torch.compile(f)
    r = cf(w)
    np.testing.assert_array_equal(w.numpy(), np.arange(6.0).reshape(2, 3) + 1)
    # the view shares w's memory as in eager mode, so it reads the written value
    np.testing.assert_array_equal(r.numpy(), (np.arange(6.0).reshape(2, 3) + 1).T * 3)


# ---- guards and recompiles -----------------------------------------------------------------------

def test_value_changes_do_not_recompile_guard_changes_do(logs, capsys):
    logs("recompiles")

    def f(x, n):
        return (x * 2).sum(0) + n
    cf = torch.compile(f)
    cf(torch.randn(3, 4), 1)
    cf(torch.randn(3, 4), 1)                       # new values
    cf(torch.randn(3, 4) * 100, 1)
    assert cf.stats["compiles"] == 1 and cf.stats["recompiles"] == []
    cf(torch.randn(5, 4), 1)                       # shape
    cf(torch.randn(5, 4, dtype=torch.float64), 1)  # dtype
    cf(torch.randn(5, 4, dtype=torch.float64), 1)  # same again: cached
    assert cf.stats["compiles"] == 3
    r = cf.recompile_reasons()
    assert r == ["arg0: float32[3, 4] on cpu -> float32[5, 4] on cpu (automatic dynamic: dim 0 "
                 "of tensor arguments unguarded from now)",
                 "arg0: float32['*', 4] on cpu -> float64['*', 4] on cpu"]
    err = capsys.readouterr().err
    assert "[kiln:recompiles] [f] recompile #1: arg0: float32[3, 4] on cpu -> float32[5, 4]" in err
    assert "recompile #2" in err and "recompile #3" not in err


def test_automatic_dynamic_batch_dim_like_torch_compile():
    # dynamic=None: the first batch-size recompile unguards dim 0, so a run through many batch
    # sizes neither recompiles again nor reaches cache_size_limit's eager fallback (torch's
    # automatic dynamic shapes); dynamic=False recompiles per size and falls back after 8
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    sizes = (3, 5, 3, 7, 9, 11, 13, 15, 17, 19, 21, 5)
    for dynamic in (None, False):
        cm = torch.compile(m, dynamic=dynamic)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for n in sizes:
                x = torch.randn(n, 4)
                np.testing.assert_allclose(cm(x).detach().numpy(), m(x).detach().numpy(),
                                           rtol=1e-6, atol=1e-7)
        limit = [w for w in caught if "cache_size_limit" in str(w.message)]
        stats = cm._compiled.stats
        if dynamic is None:
            assert len(stats["recompiles"]) == 1 and not limit
            assert stats["specializations"] >= 8                 # one program per new size
        else:
            assert len(stats["recompiles"]) == 7 and limit       # then the limit: eager
    f = torch.compile(lambda x: x.sum(1))
    f(torch.randn(3, 4))
    f(torch.randn(3, 5))                     # a change beyond dim 0 keeps every dim guarded
    f(torch.randn(6, 5))
    assert len(f.recompile_reasons()) == 2 and "automatic" not in f.recompile_reasons()[0]
    assert "automatic dynamic" in f.recompile_reasons()[1]


def test_requires_grad_and_grad_mode_and_train_eval_are_guards():
    def f(x):
        return (x * x).sum()
    cf = torch.compile(f)
    x = torch.randn(3)
    cf(x)
    cf(x.clone().requires_grad_())
    with torch.no_grad():
        cf(x.clone().requires_grad_())
    assert cf.stats["compiles"] == 3
    r = cf.recompile_reasons()
    assert "requires_grad" in r[0]
    assert r[1] == "grad_mode: True -> False"

    m = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    cm = torch.compile(m)
    cm(torch.randn(2, 3))
    cm.eval()
    assert not m.training and not m[1].training
    cm(torch.randn(2, 3))
    assert cm._compiled.recompile_reasons()[-1] == "training: True -> False"


def test_python_int_arguments_are_guards_floats_are_not():
    def f(x, k, scale):
        for _ in range(k):
            x = x * scale
        return x
    cf = torch.compile(f)
    x = torch.ones(2)
    np.testing.assert_allclose(cf(x, 2, 3.0).numpy(), [9.0, 9.0])
    np.testing.assert_allclose(cf(x, 2, 0.5).numpy(), [0.25, 0.25])   # float: same program
    assert cf.stats["compiles"] == 1
    np.testing.assert_allclose(cf(x, 3, 2.0).numpy(), [8.0, 8.0])
    assert cf.recompile_reasons() == ["arg1: 2 -> 3"]


def test_nested_list_arguments_are_guarded():
    cf = torch.compile(lambda xs: xs[0] + xs[1])
    cf([torch.ones(2), torch.ones(2)])
    cf([torch.ones(2), torch.ones(1)])
    assert cf.recompile_reasons()[0].startswith("arg0[1]: float32[2] on cpu -> float32[1] on cpu")


def test_cache_size_limit_falls_back_to_eager_with_warning(monkeypatch):
    monkeypatch.setattr(_compile, "cache_size_limit", 3)
    cf = torch.compile(lambda x: x.sum(0) * 2, dynamic=False)   # (every batch size a guard)
    for n in range(1, 4):
        cf(torch.ones(n, 2))
    assert cf.stats["compiles"] == 3
    with pytest.warns(UserWarning, match=r"hit cache_size_limit \(3\).*arg0"):
        r = cf(torch.ones(4, 2))
    np.testing.assert_allclose(r.numpy(), [8.0, 8.0])
    assert cf.stats["eager_calls"] == 1 and cf.stats["compiles"] == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # warned once; known guards still compiled
        cf(torch.ones(5, 2))
        np.testing.assert_allclose(cf(torch.ones(2, 2)).numpy(), [4.0, 4.0])
    assert cf.stats["eager_calls"] == 2 and cf.stats["compiles"] == 3


def test_default_cache_size_limit_is_8():
    assert _compile.cache_size_limit == 8
    cf = torch.compile(lambda x: x + 1, dynamic=False)
    with pytest.warns(UserWarning, match="cache_size_limit"):
        for n in range(1, 10):
            cf(torch.ones(n))
    assert cf.stats["compiles"] == 8 and cf.stats["eager_calls"] == 1


def test_dynamic_batch_dimension_is_not_a_guard(logs, capsys):
    logs("recompiles")
    m = nn.Linear(4, 3)
    cm = torch.compile(m, dynamic=True)
    for b in (2, 5, 7, 5, 2):
        close(cm(torch.ones(b, 4)), m(torch.ones(b, 4)))
    st = cm._compiled.stats
    assert st["recompiles"] == [] and st["specializations"] == 2 and st["compiles"] == 3
    assert "dynamic=True: new program for shapes [[5, 4]]" in capsys.readouterr().err
    cf = torch.compile(lambda x: x * 2, dynamic=True)
    cf(torch.ones(3, 4))
    cf(torch.ones(5, 4, dtype=torch.float64))         # other guards still recompile
    assert cf.recompile_reasons() == ["arg0: float32['*', 4] on cpu -> float64['*', 4] on cpu"]


# ---- graph breaks --------------------------------------------------------------------------------

class Halve(nn.Module):
    def forward(self, X):
        while X.abs().sum() > 1:
            X /= 2
        return X


def test_while_loop_module_matches_eager(logs, capsys):
    logs("graph_breaks")
    m = Halve()
    cm = torch.compile(m)
    for seed in range(3):
        torch.manual_seed(seed)
        X = torch.randn(4, 4) * 10
        ref = m(X.clone())
        out = cm(X.clone())
        np.testing.assert_array_equal(out.numpy(), ref.numpy())
        assert ref.abs().sum().item() <= 1
    st = cm._compiled.stats
    assert st["graph_breaks"] and st["recompiles"] == []
    reason, where = st["graph_breaks"][0]
    assert reason == "bool(tensor): Tensor.__bool__ needs a value"
    assert where.endswith(f"test_compile.py:{Halve.forward.__code__.co_firstlineno + 1}")
    assert "graph break: bool(tensor): Tensor.__bool__ needs a value at" in capsys.readouterr().err


@pytest.mark.parametrize("kind, reason", [
    ("item", "Tensor.item() needs a value"),
    ("tolist", "Tensor.tolist() needs values"),
    ("numpy", "Tensor.numpy() needs values"),
    ("float", "float(tensor) needs a value"),
    ("print", "printing a tensor needs its values"),
    ("mask", "indexing with a tensor (boolean mask or indices) needs its values"),
    ("nonzero", "nonzero: output shape depends on the input's values"),
    ("unique", "unique: output shape depends on the input's values"),
])
def test_graph_break_kinds_give_eager_results_and_reasons(kind, reason, capsys):
    def f(x):
        y = x * 2 + 1
        if kind == "item":
            z = y * y.sum().item()
        elif kind == "tolist":
            z = y + len([v for v in y.flatten().tolist() if v > 0])
        elif kind == "numpy":
            z = y + float(y.numpy().max())
        elif kind == "float":
            z = y * float(y.max())
        elif kind == "print":
            print(y)
            z = y * 3
        elif kind == "mask":
            z = y[y > 0].exp().sum() + y
        elif kind == "nonzero":
            z = torch.nonzero(y > 0).sum() + y
        else:
            z = torch.unique((y > 0).float()).sum() + y
        return z.sin()
    torch.manual_seed(1)
    x = torch.randn(3, 4)
    ref = f(x)
    eager_print = capsys.readouterr().out
    cf = torch.compile(f)
    out = cf(x)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-6)
    assert capsys.readouterr().out == eager_print
    reasons = [r for r, _ in cf.stats["graph_breaks"]]
    assert reasons == [reason]
    assert cf.stats["graph_breaks"][0][1].split(" ")[0].split(":")[0].endswith("test_compile.py")
    with pytest.raises(GraphBreakError, match=r"fullgraph=True.*" + reason.replace("(", r"\(")
                       .replace(")", r"\)").replace(".", r"\.")[:30]):
        torch.compile(f, fullgraph=True)(x)
    assert issubclass(GraphBreakError, RuntimeError)


def test_graph_break_inside_library_code_names_the_kiln_caller():
    def f(x):
        return torch.full((3,), x.sum()) * x    # full() reads a tensor fill value with .item()
    x = torch.arange(3.0)
    cf = torch.compile(f)
    np.testing.assert_array_equal(cf(x).numpy(), f(x).numpy())
    reason, where = cf.stats["graph_breaks"][0]
    assert reason == "Tensor.item() needs a value"
    assert where.split(" ")[0].split(":")[0].endswith("test_compile.py")
    assert "(via framework/creation.py:" in where and "in full)" in where


def test_radam_step_compiles_to_one_graph_and_replays():
    # RAdam's step count is a float64 tensor under compile and its rectification a where, so
    # the whole step is one graph that replays through the switch at step 6 (rho_t > 5)
    def make():
        torch.manual_seed(0)
        m = torch.nn.Linear(4, 3)
        opt = optim.RAdam(m.parameters(), lr=0.05, weight_decay=0.1,
                          decoupled_weight_decay=True)
        x, y = torch.randn(8, 4), torch.randn(8, 3)

        def step():
            opt.zero_grad()
            loss = ((m(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            return loss
        return m, step
    m1, s1 = make()
    m2, s2 = make()
    cf = torch.compile(s2)
    for _ in range(9):
        assert s1().item() == cf().item()
    for a, b in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    assert cf.stats["graph_breaks"] == [] and cf.stats["replays"] >= 5


def test_graph_break_region_backward_matches_eager():
    def f(x, w):
        h = (x @ w).tanh()
        if h.sum() > 0:                       # break between two differentiable regions
            h = h * 2
        return (h * h).mean()
    torch.manual_seed(0)
    x = torch.randn(4, 3)
    w1 = torch.randn(3, 5, requires_grad=True)
    w2 = w1.detach().clone().requires_grad_()
    f(x, w1).backward()
    cf = torch.compile(f)
    loss = cf(x, w2)
    loss.backward()
    assert len(cf.stats["graph_breaks"]) == 1
    close(w2.grad, w1.grad)


def _np_median_dim(a, d, ignore_nan):
    """NumPy reference of median/nanmedian(dim): the lower median of each row and its index,
    the position in a stable ascending sort (NaNs last) PyTorch reports; a NaN row's answer is
    its first NaN (median), or the median of the non-NaN values (nanmedian)."""
    order = np.argsort(a, axis=d, kind="stable")
    n = a.shape[d]
    nans = np.isnan(a).sum(axis=d, keepdims=True) if a.dtype.kind == "f" else \
        np.zeros(np.take(a, [0], axis=d).shape, np.int64)
    m = n - nans
    k = np.where(m > 0, (m - 1) // 2, n // 2) if ignore_nan else \
        np.where(nans > 0, m, (n - 1) // 2)
    idx = np.take_along_axis(order, k, axis=d)
    return np.take_along_axis(a, idx, axis=d), idx


@pytest.mark.parametrize("name, dtype", [("median", np.float32), ("median", np.float64),
                                         ("median", np.int64), ("nanmedian", np.float32),
                                         ("nanmedian", np.float64)])
def test_median_with_dim_traces_into_one_graph(name, dtype):
    # the median's position comes from graph ops (argsort, NaN count, gather), not from a value
    # read: no graph break, and ties (values from a small range) give eager's and PyTorch's index
    rng = np.random.default_rng(3)
    for trial, (shape, d, keepdim) in enumerate([((4, 7), 1, False), ((6, 5), 0, True),
                                                 ((3, 4, 6), -1, False), ((2, 8, 3), 1, True),
                                                 ((5,), 0, False), ((3, 1), 1, False)]):
        def f(x):
            v, i = getattr(torch, name)(x * 1, d, keepdim=keepdim)
            return v + 0, i
        a = rng.integers(-2, 3, shape).astype(dtype)
        if a.dtype.kind == "f" and trial % 2:
            a[rng.random(shape) < 0.25] = np.nan
        x = torch.from_numpy(a)
        cf = torch.compile(f, fullgraph=True)
        v, i = cf(x)
        ev, ei = f(x)
        rv, ri = _np_median_dim(a, d % a.ndim, name == "nanmedian")
        if not keepdim:
            rv, ri = rv.squeeze(d), ri.squeeze(d)
        np.testing.assert_array_equal(v.numpy(), rv)
        np.testing.assert_array_equal(i.numpy(), ri)
        np.testing.assert_array_equal(v.numpy(), ev.numpy())
        np.testing.assert_array_equal(i.numpy(), ei.numpy())
        assert v.dtype is ev.dtype and i.dtype is torch.int64
        assert cf.stats["graph_breaks"] == [] and len(cf.stats["regions"]) == 1
        cf(torch.from_numpy(a.copy()))                 # the same trace serves another call
        assert cf.stats["compiles"] == 1


def test_median_with_dim_backward_under_compile_matches_eager():
    a = np.array([[2.0, 3.0, 2.0, 2.0], [5.0, 5.0, 5.0, 1.0], [0.5, -1.0, 4.0, 2.0]])
    w = torch.tensor([2.0, 3.0, 5.0], dtype=torch.float64)

    def f(x):
        return (x.median(1).values * w).sum()
    x1 = torch.tensor(a, requires_grad=True)
    x2 = torch.tensor(a, requires_grad=True)
    f(x1).backward()
    cf = torch.compile(f)
    loss = cf(x2)
    close(loss, f(x1.detach()))
    loss.backward()
    # the gradient goes to the element at the median index only: of tied values, the one at
    # the median's position in a stable sort (row 0: sorted order 0, 2, 3, 1, position 1)
    want = np.zeros_like(a)
    want[0, 2], want[1, 0], want[2, 0] = 2.0, 3.0, 5.0
    np.testing.assert_array_equal(arr(x1.grad), want)
    np.testing.assert_array_equal(arr(x2.grad), want)
    assert cf.stats["graph_breaks"] == []


def test_one_hot_with_num_classes_traces_into_one_graph():
    def f(x):
        t = (x * 5).long()                  # class values computed inside the graph
        return F.one_hot(t, 6) * 2

    def g(t):
        return F.one_hot(t, 4)
    cf, cg = torch.compile(f, fullgraph=True), torch.compile(g, fullgraph=True)
    rng = np.random.default_rng(0)
    for _ in range(3):
        a = rng.random((3, 5)).astype(np.float32)
        out = cf(torch.from_numpy(a))
        assert out.dtype is torch.int64 and tuple(out.shape) == (3, 5, 6)
        np.testing.assert_array_equal(out.numpy(),
                                      2 * np.eye(6, dtype=np.int64)[(a * 5).astype(np.int64)])
        t = rng.integers(0, 4, (7,))
        np.testing.assert_array_equal(cg(torch.from_numpy(t)).numpy(),
                                      np.eye(4, dtype=np.int64)[t])
    for c in (cf, cg):
        assert c.stats["graph_breaks"] == [] and c.stats["compiles"] == 1
    assert cg.stats["replays"] >= 1                 # reading no value, the trace replays


@pytest.mark.parametrize("bad, msg", [([1, 4, 2], "smaller than num_classes"),
                                      ([3, -1, 9], "non-negative"),
                                      ([-2, 0, 0], "non-negative")])
def test_one_hot_out_of_range_classes_raise_as_eager_under_compile(bad, msg):
    # a negative class is reported before a too large one, as PyTorch checks min before max
    def g(t):
        return F.one_hot(t, 4) + 1

    def f(x):
        return F.one_hot(x.long() - 2, 4) + 1      # the class values are made in the graph
    cg = torch.compile(g)
    cg(torch.tensor([0, 3, 1]))                    # compiled for this shape, then the bad call
    t = torch.tensor(bad)
    for fn in (g, cg):
        with pytest.raises(RuntimeError, match=msg):
            fn(t)
    assert t.tolist() == bad
    x = torch.tensor([b + 2.0 for b in bad])
    for fn in (f, torch.compile(f)):
        with pytest.raises(RuntimeError, match=msg):
            fn(x)


def test_one_hot_inferring_num_classes_is_a_reported_graph_break():
    # num_classes=-1: the output's shape is the largest class + 1, known only from the values
    def f(x):
        return F.one_hot((x * 5).long()) * 2
    x = torch.tensor([0.1, 0.5, 0.3])
    cf = torch.compile(f)
    np.testing.assert_array_equal(cf(x).numpy(), f(x).numpy())
    reason, where = cf.stats["graph_breaks"][0]
    assert reason == "one_hot(num_classes=-1): output shape depends on the input's values"
    assert where.split(":")[0].endswith("test_compile.py")
    with pytest.raises(GraphBreakError, match=r"one_hot\(num_classes=-1\)"):
        torch.compile(f, fullgraph=True)(x)


# ---- random ops ----------------------------------------------------------------------------------

def test_dropout_compiled_equals_eager_under_same_seed():
    m = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4))
    cm = torch.compile(m)
    x = torch.randn(8, 16)
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        ref = m(x)
        after_eager = torch.rand(3)
        torch.manual_seed(seed)
        out = cm(x)
        after_compiled = torch.rand(3)
        np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
        # the generator advanced by the same amount
        np.testing.assert_array_equal(after_compiled.numpy(), after_eager.numpy())
    torch.manual_seed(0)
    a = cm(x)
    b = cm(x)                                      # a fresh mask each call, as in eager
    assert not np.array_equal(a.detach().numpy(), b.detach().numpy())
    assert cm._compiled.stats["recompiles"] == []


def test_functional_dropout_and_rand_in_compiled_function():
    def f(x):
        return F.dropout(x, 0.3) + torch.rand(x.shape) * 0.1
    x = torch.ones(5, 5)
    torch.manual_seed(7)
    ref = f(x)
    torch.manual_seed(7)
    out = torch.compile(f)(x)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())


# ---- buffer mutation -----------------------------------------------------------------------------

def test_batchnorm_running_stats_written_back_and_eval_recompiles():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    b = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    b.load_state_dict(a.state_dict())
    cb = torch.compile(b)
    for step in range(4):
        x = torch.randn(3, 2, 6, 6) + step
        close(cb(x), a(x), rtol=1e-5, atol=1e-5)
    for k, v in a.state_dict().items():
        np.testing.assert_allclose(b.state_dict()[k].numpy(), v.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=k)
    assert b[1].num_batches_tracked.item() == 4
    assert cb._compiled.stats["compiles"] == 1
    cb.eval()
    a.eval()
    x = torch.randn(3, 2, 6, 6)
    close(cb(x), a(x), rtol=1e-5, atol=1e-5)
    assert cb._compiled.recompile_reasons() == ["training: True -> False"]
    rm = b[1].running_mean.numpy().copy()
    cb(x)
    np.testing.assert_array_equal(b[1].running_mean.numpy(), rm)     # eval: no update


# ---- training ------------------------------------------------------------------------------------

def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(),
                         nn.Linear(16, 3))


def test_compiled_forward_eager_backward_runs_compiled_backward():
    m1, m2 = _mlp(), _mlp()
    cm = torch.compile(m2)
    x = torch.randn(6, 10)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    F.cross_entropy(m1(x), y).backward()
    out = cm(x)
    assert type(out.grad_fn).__name__ == "CompiledFunctionBackward"
    F.cross_entropy(out, y).backward()
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        close(p2.grad, p1.grad)
    assert len(cm._compiled.backward_graphs()) == 1
    assert cm._compiled.programs()[1].runs >= 1
    with pytest.raises(RuntimeError, match="second time"):
        out2 = cm(x)
        l2 = out2.sum()
        l2.backward()
        l2.backward()


@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.Adam(ps, lr=1e-2),
    lambda ps: optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    lambda ps: optim.Adam(ps, lr=1e-2, amsgrad=True, weight_decay=0.01),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda ps: optim.SGD(ps, lr=0.1),
    lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01),
    lambda ps: optim.Adamax(ps, lr=0.01),
    lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5),
], ids=["adam", "adamw", "adam-amsgrad", "sgd-nesterov", "sgd", "adagrad", "adamax", "rmsprop"])
def test_whole_training_step_compiles_to_one_region_and_equals_eager(make_opt):
    x = torch.randn(12, 10)
    y = torch.randint(0, 3, (12,))
    runs = []
    for compiled in (False, True):
        m = _mlp()
        opt = make_opt(list(m.parameters()))

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            return loss
        f = torch.compile(step) if compiled else step
        losses = [f(x, y).item() for _ in range(5)]
        runs.append((losses, [arr(p) for p in m.parameters()],
                     [arr(v) for s in opt.state.values() for v in s.values()
                      if isinstance(v, torch.Tensor)]))
    (l0, p0, s0), (l1, p1, s1) = runs
    assert l0 == l1
    for a, b in zip(p0 + s0, p1 + s1):
        np.testing.assert_array_equal(a, b)
    assert f.stats["graph_breaks"] == []
    if isinstance(opt, optim.SGD) and opt.defaults["momentum"]:
        # the first step creates the momentum buffer from the gradient: a different graph
        assert f.recompile_reasons() == ["graph changed (Python control flow or constants)"]
        assert list(f.run_counts().values()) == [1, 4]
    else:
        assert f.stats["compiles"] == 1 and f.run_counts() == {"step_0#0": 5}


def test_training_step_with_lr_scheduler_reuses_program():
    m = _mlp()
    opt = optim.AdamW(m.parameters(), lr=1e-2)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    x, y = torch.randn(4, 10), torch.tensor([0, 1, 2, 0])

    @torch.compile
    def step():
        opt.zero_grad()
        F.cross_entropy(m(x), y).backward()
        opt.step()
    for _ in range(4):
        step()
        sched.step()
    assert step.stats["compiles"] == 1          # lr is a float constant: a program parameter


# ---- introspection and logs ----------------------------------------------------------------------

def test_introspection_api():
    m = _mlp()
    cm = torch.compile(m)
    x = torch.randn(4, 10)
    cm(x).sum().backward()
    cm(x)
    cf = cm._compiled
    (g,) = cf.graphs()
    assert "matmul" in str(g) and str(g).startswith("def ")
    (bg,) = cf.backward_graphs()
    assert bg.name.endswith("_backward") and len(bg.outputs) == 6   # one grad per parameter
    srcs = cf.sources()
    assert len(srcs) == 2 and all("def " in s for s in srcs)
    groups = cf.groups()
    assert [gr["program"] for gr in groups] == [p.graph.name for p in cf.programs()]
    for gr in groups:                # filled from Program.partition when the fuser provides it
        for name, kind, ops, notes in gr["groups"]:
            assert ops and isinstance(name, str)
    assert list(cf.run_counts().values()) == [2]
    rep = cf.report()
    assert "compiled Sequential" in rep and "recompile: requires_grad" not in rep
    assert "source of" in rep


def test_logs_print_graphs_and_fusion_as_they_happen(logs, capfd):
    logs("graphs", "fusion", "graph_breaks", "recompiles")

    def f(x):
        y = x.softmax(-1)
        if y.max() > 2:
            y = y * 0
        return y.sum(0)
    cf = torch.compile(f)
    cf(torch.randn(3, 4))
    cf(torch.randn(2, 4))
    err = capfd.readouterr().err
    assert "[kiln:graphs] [f] forward graph:\ndef f_0(" in err
    assert "[kiln:graph_breaks] [f] graph break: bool(tensor)" in err
    assert "[kiln:recompiles] [f] recompile #1: arg0: float32[3, 4] on cpu -> float32[2, 4]" in err
    if getattr(cf.programs()[0], "partition", None) is not None:
        assert "[kiln:fusion]" in err


def test_log_env_variable_is_read(monkeypatch):
    monkeypatch.setenv("KILN_LOGS", "graphs,+recompiles")
    saved = set(log._on)
    try:
        log._on.clear()
        log._read_env()
        assert log.enabled("graphs") and log.enabled("recompiles")
        assert not log.enabled("fusion")
        monkeypatch.setenv("KILN_LOGS", "all")
        log._read_env()
        assert all(log.enabled(t) for t in log.TOPICS)
    finally:
        log._on.clear()
        log._on.update(saved)


def test_views_read_a_later_in_place_write_of_their_base_like_eager():
    """y[0][1:] taken before y.mul_(2) sees the doubled values (eager views share memory),
    also through a chain of views, and the gradient flows through the write as in PyTorch
    (hand-derived: vv = 2 * x[0, 1:], loss = sum(vv^2), dloss/dx = 8 * x there), equal to
    eager mode, which re-derives the view's history after the write."""
    def f(x):
        y = x * 1
        v = y[0]
        vv = v[1:]
        y.mul_(2)
        return (vv * vv).sum()
    x1 = torch.arange(6.0).reshape(2, 3).requires_grad_()
    x2 = torch.arange(6.0).reshape(2, 3).requires_grad_()
    a, b = f(x1), torch.compile(f)(x2)
    assert a.item() == b.item() == (2.0 ** 2 + 4.0 ** 2)
    a.backward()
    b.backward()
    np.testing.assert_array_equal(x2.grad.numpy(), [[0.0, 8.0, 16.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(x1.grad.numpy(), x2.grad.numpy())


def test_leaf_written_in_place_under_no_grad_then_used_gets_its_gradient():
    # the in-place write's snapshot is the first to read the leaf's memory; the region input
    # must still stand for the leaf (its gradient once went nowhere and backward failed)
    def f(w, x):
        with torch.no_grad():
            w.mul_(0.9)
        return (w * x).sum()
    grads = []
    for fn in (f, torch.compile(f)):
        w = torch.ones(3, requires_grad=True)
        fn(w, torch.arange(3.0)).backward()
        np.testing.assert_allclose(w.detach().numpy(), [0.9, 0.9, 0.9], rtol=1e-6)
        grads.append(w.grad.numpy())
    np.testing.assert_array_equal(grads[1], grads[0])
    np.testing.assert_array_equal(grads[0], [0.0, 1.0, 2.0])


@pytest.mark.parametrize("inplace", [False, True])
def test_backward_with_a_graph_break_reads_values_the_user_dropped(inplace):
    # a hook reading a gradient's values breaks the graph in the middle of backward(); the
    # rest of the backward reads what the traced nodes saved -- an output the user deleted
    # (exp saves its result), a snapshot before an in-place write -- so the region before
    # the break must have computed them (they once stayed symbolic: KeyError in a later region)
    w = torch.tensor([0.5, -1.0, 2.0, 0.25])
    v = torch.tensor([1.0, 2.0, -3.0, 0.5])
    seen = []

    def f(x):
        a = x * 2
        if inplace:
            a.mul_(w)
        b = a.exp()
        b.register_hook(lambda g: seen.append(g.numpy().copy()) and None)
        loss = b.sum() + (a * v).sum()
        del b
        loss.backward()
        return x.grad
    out = []
    for fn in (f, torch.compile(f)):
        x = torch.tensor([0.1, -0.2, 0.3, 0.05], requires_grad=True)
        out.append(fn(x).numpy())
    np.testing.assert_allclose(out[1], out[0], rtol=1e-6)
    np.testing.assert_allclose(seen[1], seen[0])


def test_compiled_cross_entropy_with_a_bad_target_raises_pytorchs_index_error():
    # the class-target check is a primitive (class_index), so a compiled training step raises
    # eager's IndexError before its program writes any parameter
    torch.manual_seed(0)
    m = nn.Linear(4, 3)
    opt = optim.AdamW(m.parameters(), lr=0.1)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return loss
    c = torch.compile(step)
    x = torch.randn(5, 4)
    for _ in range(4):                                   # traced, then replayed
        c(x, torch.tensor([0, 1, 2, -100, 1]))
    before = [p.detach().clone() for p in m.parameters()]
    with pytest.raises(IndexError, match="Target 3 is out of bounds"):
        c(x, torch.tensor([0, 1, 3, -100, 1]))
    for p, q in zip(m.parameters(), before):
        np.testing.assert_array_equal(p.detach().numpy(), q.numpy())
    with pytest.raises(IndexError, match="Target -2 is out of bounds"):
        F.cross_entropy(torch.randn(2, 3), torch.tensor([-2, 0]))


def _set_rows(x, i):
    y = x * 1
    y[i] = -1
    return y


def _floats(r):
    return torch.tensor(r.random((4, 5)).astype(np.float32) * 1.8 - 0.9)


# functions whose result depends on the values of an index/mask argument that Python reads
# (positions, output lengths) or that a traced op reads (index tensors): (fn, argument maker)
_VALUE_CASES = {
    "bool mask": (lambda x, m: x[m] * 2, lambda r: torch.tensor(r.random((4, 5)) > 0.5)),
    "uint8 mask": (lambda x, m: x[m] * 2,
                   lambda r: torch.tensor((r.random((4, 5)) > 0.5).astype(np.uint8))),
    "row mask": (lambda x, m: x[m] * 2, lambda r: torch.tensor(r.random(4) > 0.5)),
    "int32 index": (lambda x, i: x[i] * 2,
                    lambda r: torch.tensor(r.integers(0, 4, 3), dtype=torch.int32)),
    "int16 index": (lambda x, i: x[:, i] * 2,
                    lambda r: torch.tensor(r.integers(0, 5, 3), dtype=torch.int16)),
    "0-d index": (lambda x, i: x[i] * 2, lambda r: torch.tensor(int(r.integers(0, 4)))),
    "two index tensors": (lambda x, i: x[i, i + 1] * 2, lambda r: torch.tensor(r.integers(0, 4, 3))),
    "setitem by index": (_set_rows, lambda r: torch.tensor(r.integers(0, 4, 2))),
    "setitem by mask": (_set_rows, lambda r: torch.tensor(r.random((4, 5)) > 0.5)),
    "index_select int32": (lambda x, i: torch.index_select(x, 1, i) + 1,
                           lambda r: torch.tensor(r.integers(0, 5, 3), dtype=torch.int32)),
    "index_add int32": (lambda x, i: x.index_add(0, i, torch.ones(3, 5)),
                        lambda r: torch.tensor(r.integers(0, 4, 3), dtype=torch.int32)),
    "take": (lambda x, i: torch.take(x, i) * 2, lambda r: torch.tensor(r.integers(0, 20, 4))),
    "masked_select": (lambda x, m: torch.masked_select(x, m) * 2,
                      lambda r: torch.tensor(r.random((4, 5)) > 0.5)),
    "nonzero": (lambda x, m: torch.nonzero(m) * 2, lambda r: torch.tensor(r.random((4, 5)) > 0.5)),
    "embedding int32": (lambda x, i: torch.nn.functional.embedding(i, x) * 2,
                        lambda r: torch.tensor(r.integers(0, 4, 3), dtype=torch.int32)),
    "scatter_add": (lambda x, i: torch.zeros(4, 5).scatter_add(1, i, x[:, :2]),
                    lambda r: torch.tensor(r.integers(0, 5, (4, 2)))),
    "repeat_interleave": (lambda x, i: torch.repeat_interleave(x[0], i),
                          lambda r: torch.tensor(r.integers(0, 3, 5))),
    "tensor of tensors": (lambda x, i: torch.tensor([i[0], i[1]]) * 2,
                          lambda r: torch.tensor(r.integers(0, 9, 2))),
    # ops computed in NumPy from their input's values, and ops whose index step copies
    "tensor of a tensor": (lambda x, t: torch.tensor(t) * 2, _floats),
    "erfinv": (lambda x, t: torch.erfinv(t) * 1, _floats),
    "median": (lambda x, t: t.median() + t.median(1).values.sum(), _floats),
    "nanmedian": (lambda x, t: t.nanmedian() * 2, _floats),
    "kthvalue": (lambda x, t: t.kthvalue(2, 1).values * 2, _floats),
    "topk": (lambda x, t: t.topk(2).indices * 2, _floats),
}


@pytest.mark.parametrize("name", sorted(_VALUE_CASES))
def test_index_values_are_read_each_call(name):
    """A compiled function fed new index/mask values gives eager's result: the values are
    either a traced op's input (replays read them) or read by Python, which keeps that trace
    from being replayed. (Masks, int32 indices, 0-d indices, setitem, torch.tensor(t) and
    erfinv once replayed the values seen while tracing; median and kthvalue raised.)"""
    fn, make = _VALUE_CASES[name]
    x = torch.arange(20.).reshape(4, 5)
    r = np.random.default_rng(0)
    a, b = make(r), make(r)
    assert not np.array_equal(a.numpy(), b.numpy())
    cf = torch.compile(fn)
    for arg in (a, a, a, b, a, b):          # traced, traced, (replayed), then new values
        want, got = fn(x, arg), cf(x, arg)
        assert got.shape == want.shape, (name, got.shape, want.shape)
        np.testing.assert_array_equal(got.numpy(), want.numpy())


_NONNEG_INDEX = {   # op -> (fn(x, i, src), bad index, error class torch raises)
    "index_select": (lambda x, i, s: torch.index_select(x, 0, i) * 2, [-1, 0], IndexError),
    "index_add": (lambda x, i, s: x.index_add(0, i, s[:, :3]), [-1, 0], RuntimeError),
    "index_copy dim 1": (lambda x, i, s: x.index_copy(1, i, s), [0, -2], IndexError),
}


@pytest.mark.parametrize("device", ["cpu", "interpret"])
@pytest.mark.parametrize("name", sorted(_NONNEG_INDEX))
def test_replayed_index_ops_refuse_negative_indices(name, device):
    """index_select / index_add / index_copy take indices in [0, size) (a negative one raises,
    unlike x[i]); eager checks the values in Python, which a replayed compiled program never
    runs, so the index node carries the check (NumPy lowering; on Triton the range-check
    kernel). A replay once wrapped -1 to the last row."""
    fn, bad, err = _NONNEG_INDEX[name]
    x = torch.arange(12.).reshape(4, 3).to(device)
    s = torch.ones(4, 2).to(device) if "copy" in name else torch.ones(2, 4).to(device)
    cf = torch.compile(fn)
    for good in ([0, 1], [2, 1], [1, 0], [0, 2]):
        i = torch.tensor(good, device=device)
        np.testing.assert_array_equal(cf(x, i, s).cpu().numpy(), fn(x, i, s).cpu().numpy())
    assert cf.stats["replays"] >= 1
    i = torch.tensor(bad, device=device)
    with pytest.raises(err, match=r"index -?\d+ is out of bounds for dimension \d with size \d"):
        fn(x, i, s)                                                # eager
    before = x.cpu().numpy().copy()
    with pytest.raises(err, match=r"\(\): index -?\d+ is out of bounds for dimension \d"):
        cf(x, i, s)                                                # replayed
    np.testing.assert_array_equal(x.cpu().numpy(), before)


# ---- in-place writes through views -------------------------------------------------------------

def _scale_row(x):
    x[0].mul_(2)                        # a view of an argument, written in place
    return x.sum()


def _through_chain(x):
    y = x * 1
    y.t()[1].add_(y[2])                 # transpose -> select, reading another view
    y.view(-1)[4:8].sub_(1)             # flatten -> slice
    a, b = y.chunk(2)
    a.copy_(b * 0.5)
    y.unsqueeze(0).squeeze_(0)[3].fill_(7)   # an in-place view op on a view, then a write
    return y


def _diag_zero(x):
    y = x.clone()
    y.diagonal().zero_()
    return y * 2


@pytest.mark.parametrize("fn", [_scale_row, _through_chain, _diag_zero])
def test_in_place_writes_through_views_reach_their_base(fn):
    """A write through a view changes the tensor it views (shared memory): compiled, the
    root's new value is an index_put of the view's elements (an arange viewed the same way
    gives their positions, in the graph), so results, argument mutation and replays agree
    with eager. (The writes used to be lost: the view changed, its base did not.)"""
    cf = torch.compile(fn)
    a = torch.arange(16.).reshape(4, 4)
    b = a.clone()
    for _ in range(4):
        want, got = fn(a), cf(b)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
        np.testing.assert_array_equal(b.numpy(), a.numpy())       # the argument, as eager
    assert cf.stats["replays"] >= 1 and not cf.stats["graph_breaks"]


def test_gradients_flow_through_in_place_view_writes():
    def loss(x, w):
        y = x * w
        y[0].mul_(3)
        y.t()[1].add_(y[2])
        y.view(-1)[4:8].sub_(1)
        return (y ** 2).sum()
    cf = torch.compile(loss)
    for k in range(3):
        x0 = torch.randn(4, 4, generator=torch.Generator().manual_seed(k))
        xa, xb = x0.clone().requires_grad_(), x0.clone().requires_grad_()
        wa, wb = torch.ones(4, requires_grad=True), torch.ones(4, requires_grad=True)
        la, lb = loss(xa, wa), cf(xb, wb)
        la.backward()
        lb.backward()
        assert abs(la.item() - lb.item()) <= 1e-5 * abs(la.item())
        np.testing.assert_allclose(xb.grad.numpy(), xa.grad.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(wb.grad.numpy(), wa.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_compiled_embedding_models_replay():
    """nn.Embedding under compile() does not read its indices in Python (a read keeps a trace
    from replaying): the index op checks the range, the padding row's gradient mask is in the
    graph. Values and gradients equal eager; new index values are seen on replays."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Embedding(10, 4, padding_idx=0), nn.Linear(4, 2))
    cm = torch.compile(m)
    rng = np.random.default_rng(0)
    for _ in range(5):
        i = torch.tensor(rng.integers(0, 10, (2, 3)))
        want = m(i)
        want.sum().backward()
        g_want = m[0].weight.grad.numpy().copy()
        m[0].weight.grad = None
        got = cm(i)
        got.sum().backward()
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(m[0].weight.grad.numpy(), g_want, rtol=1e-6)
        assert not m[0].weight.grad.numpy()[0].any()            # the padding row
        m[0].weight.grad = None
    assert cm._compiled.stats["replays"] >= 2
    with pytest.raises(IndexError, match="index 12 is out of bounds"):
        cm(torch.tensor([[1, 12]]))


def test_in_place_composite_writes_across_graph_breaks_keep_earlier_history():
    # out.index_copy_ in two regions split by a data-dependent break (AdaptiveLogSoftmax's
    # loop): the second write must not cut the first region's gradient off (l1 got none)
    torch.manual_seed(0)
    l1 = torch.nn.Linear(4, 3, bias=False).double()
    l2 = torch.nn.Linear(4, 3, bias=False).double()

    def f(x, t):
        out = x.new_zeros(5)
        for lo, hi, lin in ((3, 6, l1), (6, 10, l2)):
            rows = ((t >= lo) & (t < hi)).nonzero().squeeze()
            out.index_copy_(0, rows, lin(x.index_select(0, rows)).sum(-1).reshape(-1))
        return out * 2
    got = []
    for fn in (f, torch.compile(f)):
        l1.zero_grad(set_to_none=True)
        l2.zero_grad(set_to_none=True)
        x = torch.tensor(np.random.default_rng(0).standard_normal((5, 4)), requires_grad=True)
        o = fn(x, torch.tensor([0, 4, 9, 5, 7]))
        (o * torch.tensor(np.linspace(-1, 1, 5))).sum().backward()
        got.append([o.detach().numpy(), x.grad.numpy(), l1.weight.grad.numpy(),
                    l2.weight.grad.numpy()])
    for a, b in zip(*got):
        np.testing.assert_allclose(b, a, rtol=1e-12)


# ---- differential checks against eager (compile fuzzing fixes) -------------------------------

def _eager_vs_compiled(f, make, calls=3):
    """Run f eagerly and compiled on equal fresh inputs `calls` times: outputs, the inputs f
    mutates, and the gradients of the float inputs that require grad must agree."""
    cf = torch.compile(f)
    for k in range(calls):
        ins = make(k)
        runs = []
        for fn in (f, cf):
            xs = [t.detach().clone().requires_grad_(t.requires_grad) for t in ins]
            out = fn(*xs)
            outs = out if isinstance(out, tuple) else (out,)
            assert all(o.requires_grad == outs[0].requires_grad for o in outs[:1])
            if outs[0].requires_grad:
                sum((o * (1.0 + torch.arange(o.numel()).reshape(o.shape))).sum()
                    for o in outs).backward()
            runs.append(([arr(o) for o in outs], [o.requires_grad for o in outs],
                         [arr(t) for t in xs], [None if t.grad is None else arr(t.grad)
                                                for t in xs], [tuple(t.shape) for t in xs]))
        (eo, erg, ex, eg, es), (co, crg, cx, cg, cs) = runs
        assert erg == crg and es == cs
        for a, b in zip(eo + ex, co + cx):
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
        for a, b in zip(eg, cg):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
    return cf


def test_in_place_op_whose_index_check_breaks_the_graph():
    # index_fill_ reads its (traced) index's values: a graph break between the snapshot of y
    # the in-place op computes from and its use; the snapshot must become concrete too
    # (it once referenced a value of the finished region's graph: KeyError)
    idx = torch.tensor([[0, 1], [2, 2], [2, 0]])

    def f(x, i):
        y = x * 2
        y.index_fill_(0, i[:, 0], -1.0)
        return y

    def g(x, i, s):
        x.add_(1)
        x.index_reduce_(0, i[:, 0], s, "prod")
        return x * 1
    _eager_vs_compiled(f, lambda k: [torch.randn(3, 2, requires_grad=True), idx])
    _eager_vs_compiled(g, lambda k: [torch.randn(3, 2), idx, torch.randn(3, 2)])


def test_traced_index_of_index_select_add_copy_needs_no_graph_break():
    # their index nodes check [0, size) when the program runs, so a traced index (unfold's
    # windows, a column of an index tensor) is no graph break and fullgraph=True compiles
    idx = torch.tensor([[0, 1], [2, 2], [2, 0]])

    def f(x, i, s):
        y = x * 1
        y.index_add_(1, i[:, 0], s)
        return y.index_select(0, i[1]), y.index_copy(0, i[0, :1], s[:1] * 3), x.unfold(1, 2, 1)
    cf = _eager_vs_compiled(f, lambda k: [torch.randn(3, 3, requires_grad=True), idx,
                                          torch.randn(3, 3, requires_grad=True)])
    assert cf.stats["graph_breaks"] == []
    x = torch.randn(3, 5, requires_grad=True)
    np.testing.assert_allclose(arr(torch.compile(lambda x: x.unfold(1, 2, 1) * 2,
                                                 fullgraph=True)(x)),
                               arr(x.unfold(1, 2, 1) * 2))
    # values out of range still raise the eager error class, from the program
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0"):
        torch.compile(lambda x, i: x.index_select(0, i[1] * 5))(torch.randn(3), idx[0])


def test_copy_from_a_leaf_that_requires_grad_gives_history():
    # eagerly out.copy_(x) makes out require grad through x; traced, out took x's (absent)
    # node and came back without requires_grad
    def f(x):
        out = torch.zeros(3, 4)
        out.copy_(x)
        return out

    def g(x):
        out = torch.zeros(3, 4, dtype=torch.float64)
        out.copy_(x[0])
        return out.exp()
    cf = _eager_vs_compiled(f, lambda k: [torch.randn(3, 4, requires_grad=True)])
    assert cf(torch.randn(3, 4, requires_grad=True)).requires_grad
    _eager_vs_compiled(g, lambda k: [torch.randn(3, 4, requires_grad=True)])


def test_in_place_view_ops_on_arguments_and_traced_tensors():
    # t_/unsqueeze_/squeeze_/transpose_ rebind a tensor to a view: on an argument the caller
    # sees the new shape (it came back symbolic and unreadable), on a traced tensor the region
    # computes it
    def f(x):
        x.t_()
        return x * 1

    def g(x):
        x.unsqueeze_(0)
        x.squeeze_()
        x.transpose_(0, 1)
        return x.sum(0)

    def h(x):
        y = x * 2
        y.t_()
        y.unsqueeze_(0)
        return y + 1, y

    def k(x):
        x.add_(1)
        x.t_()
        x.mul_(2)
        return x.sum()
    _eager_vs_compiled(f, lambda k: [torch.randn(3, 4)])
    _eager_vs_compiled(g, lambda k: [torch.randn(3, 4)])
    _eager_vs_compiled(h, lambda k: [torch.randn(3, 4, requires_grad=True)])
    _eager_vs_compiled(k, lambda k: [torch.randn(3, 4)])


def test_nan_constant_in_a_region_with_backward_does_not_recompile():
    # nll_loss with ignore_index puts a nan constant (the all-ignored result) into the graph;
    # a region with a backward keys its plan on its float constants, and nan != nan made
    # every call a recompile (and a whole compiled training step never replayed)
    cf = torch.compile(lambda x, y: F.nll_loss(x, y, ignore_index=1))
    t = torch.tensor([0, 2, 1, 1, 2])
    for _ in range(4):
        x = torch.randn(5, 3, requires_grad=True)
        got = cf(x, t)
        got.backward()
        g = arr(x.grad)
        x.grad = None
        want = F.nll_loss(x, t, ignore_index=1)
        want.backward()
        close(got, want)
        np.testing.assert_allclose(g, arr(x.grad), rtol=1e-6)
    assert cf.stats["compiles"] == 1 and cf.stats["recompiles"] == []
    assert cf.stats["replays"] >= 1


def test_compiled_module_training_mirrors_the_original():
    # torch's OptimizedModule.training is the wrapped module's: model.eval() shows through
    # and compiled.train() reaches the model
    m = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5))
    cm = torch.compile(m)
    m.eval()
    assert cm.training is False
    x = torch.randn(5, 3)
    close(cm(x), m(x))
    cm.train()
    assert m.training and m[1].training and cm.training


def test_bad_target_in_a_compiled_training_step_raises_before_backward_and_step():
    # as in eager, cross_entropy raises before backward() and opt.step() run: .grad stays None
    # and the optimizer holds no state (the target is checked when the trace reaches it, not
    # when the whole traced step runs); a good call afterwards trains as eager does
    def make():
        torch.manual_seed(0)
        m = nn.Linear(4, 3)
        return m, optim.Adam(m.parameters(), lr=0.1)

    def stepper(m, opt):
        def step(x, t):
            opt.zero_grad()
            loss = F.cross_entropy(m(x), t)
            loss.backward()
            opt.step()
            return loss.detach()
        return step
    x = torch.tensor(np.random.default_rng(0).standard_normal((5, 4)), dtype=torch.float32)
    bad, good = torch.tensor([0, 1, 7, 0, 1]), torch.tensor([0, 1, 2, 0, 1])
    m, opt = make()
    w0 = m.weight.detach().clone()
    cs = torch.compile(stepper(m, opt))
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        cs(x, bad)
    assert m.weight.grad is None and m.bias.grad is None and len(opt.state) == 0
    np.testing.assert_array_equal(m.weight.detach().numpy(), w0.numpy())
    me, opte = make()
    eager = stepper(me, opte)
    for _ in range(2):
        np.testing.assert_allclose(cs(x, good).numpy(), eager(x, good).numpy(), rtol=1e-6)
    np.testing.assert_allclose(m.weight.detach().numpy(), me.weight.detach().numpy(), rtol=1e-5,
                               atol=1e-7)


def test_transformer_encoder_with_a_causal_mask_compiles_without_graph_breaks():
    # the encoder's is_causal detection reads the mask's values (a graph break on every call);
    # under compile() it is skipped, as the mask gives the same attention
    torch.manual_seed(0)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2,
                                enable_nested_tensor=False)
    mask = nn.Transformer.generate_square_subsequent_mask(5)
    x = torch.randn(5, 3, 8)
    cm = torch.compile(enc)
    for _ in range(3):
        np.testing.assert_allclose(cm(x, mask).detach().numpy(), enc(x, mask).detach().numpy(),
                                   rtol=1e-5, atol=1e-6)
    st = cm._compiled.stats
    assert st["graph_breaks"] == [] and st["compiles"] == 1
    # eager detection still sees the causal mask (a non-causal one is not taken for it)
    from framework.nn.modules.transformer import _detect_is_causal_mask
    assert _detect_is_causal_mask(mask) is True
    assert _detect_is_causal_mask(torch.zeros(5, 5)) is False
