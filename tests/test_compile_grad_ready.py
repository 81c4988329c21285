"""Outputs handed back while a compiled program runs: Program.run(..., on_output) and, on top
of it, register_compiled_grad_ready (what DDP uses to all-reduce during a compiled backward;
the 2-rank checks are in tests/test_distributed.py)."""
import numpy as np
import pytest

import framework as torch
from framework import nn
from framework._compile import register_compiled_grad_ready, region
from compiler.backend import compile_graph
from compiler.codegen import numpy_gen
from compiler.ir.graph import Graph
from runtime import dtypes as dt


def _graph():
    g = Graph("early_outputs")
    x = g.add_input("x", (4, 6), dt.float32)
    w = g.add_input("w", (6, 3), dt.float32)
    a = g.call("exp", x)                               # returned, and read again below
    m = g.call("matmul", a, w)
    s = g.call("sum", g.call("mul", m, 2.5), dims=(0,), keepdim=False)
    t = g.call("tanh", m)
    g.set_outputs([t, s, a, x, a])                     # an input and a duplicate among them
    return g


def test_on_output_once_per_output_in_schedule_order_with_final_values():
    g = _graph()
    prog, _ = compile_graph(g)
    rng = np.random.default_rng(0)
    ins = [rng.standard_normal((4, 6)).astype(np.float32),
           rng.standard_normal((6, 3)).astype(np.float32)]
    plain = prog.run(ins, g.float_consts())
    calls = []
    res = prog.run(ins, g.float_consts(), lambda k, a: calls.append((k, a, a.copy())))
    # without the callback the program computes what the graph says; with it, the same
    want = g.run(*ins, consts=g.float_consts())
    for p, q, r in zip(plain, res, want):
        np.testing.assert_array_equal(p, r)
        np.testing.assert_array_equal(q, r)
    assert sorted(k for k, _, _ in calls) == [0, 1, 2, 3, 4]
    for k, arr, at_call in calls:
        assert arr is res[k]                           # the returned array itself ...
        np.testing.assert_array_equal(at_call, res[k])  # ... already final when handed over
    # schedule order: each computed output right after the group producing it; the input
    # passed through comes at the end
    group_of = {}
    for gi, gr in enumerate(prog.groups):
        for n in gr.nodes:
            for o in n.outputs:
                group_of[id(o)] = gi
    outs = prog.graph.outputs
    order = [k for k, _, _ in calls]
    assert order[-1] == 3
    pos = [group_of[id(outs[k])] for k in order[:-1]]
    assert pos == sorted(pos)
    assert order.index(2) < order.index(0)             # exp before tanh of the matmul
    # the generated source says why, and cached programs from before have another key
    assert "on_output(" in prog.source and "tell the caller" in prog.source
    assert numpy_gen.VERSION != "numpy-gen-1"         # (2 added on_output; later ones keep it)


def test_memory_plan_marks_returned_values_stable():
    g = _graph()
    prog, _ = compile_graph(g)
    plan = prog.memory
    returned = {id(o) for o in prog.graph.outputs if o not in prog.graph.inputs}
    assert returned <= plan.stable_outputs


def test_without_listeners_the_region_backward_is_unchanged():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2))
    ref = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2))
    ref.load_state_dict(m.state_dict())
    x = torch.randn(3, 5)
    torch.compile(m)(x).pow(2).sum().backward()
    ref(x).pow(2).sum().backward()
    for p, q in zip(m.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.fixture
def events():
    log = region.EVENT_LOG = []
    yield log
    region.EVENT_LOG = None


def test_grad_ready_called_during_the_compiled_backward(events):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2))
    cm = torch.compile(m)
    got = {}
    handles = []
    for name, p in m.named_parameters():
        def fn(g, name=name):
            events.append(("ready", name))
            got.setdefault(name, []).append(g.numpy().copy())
        handles.append(register_compiled_grad_ready(p, fn))
    posts = []
    for name, p in m.named_parameters():
        p.register_post_accumulate_grad_hook(lambda p, name=name: posts.append(name))
    x = torch.randn(3, 5)
    for step in range(2):                       # the second call replays the compiled module
        del events[:]
        got.clear()
        prev = {n: p.grad.numpy().copy() for n, p in m.named_parameters()} if step else None
        cm(x).pow(2).sum().backward()
        names = [e[1] for e in events if e[0] == "ready"]
        assert sorted(names) == sorted(n for n, _ in m.named_parameters())
        assert events[0][0] == "compiled_backward_start"
        assert events[-1][0] == "compiled_backward_end"
        for name, p in m.named_parameters():
            assert len(got[name]) == 1
            # this pass's gradient alone, before it is accumulated into .grad
            want = p.grad.numpy() - (prev[name] if prev else 0)
            np.testing.assert_allclose(got[name][0], want, rtol=1e-5, atol=1e-6)
    assert len(posts) == 2 * 4                  # the usual hooks still run
    for h in handles:
        h.remove()
    del events[:]
    cm(x).pow(2).sum().backward()
    assert [e for e in events if e[0] == "ready"] == []


def test_grad_ready_only_when_the_region_gives_the_whole_gradient(events):
    torch.manual_seed(0)
    lin = nn.Linear(3, 3)
    cm = torch.compile(lin)
    calls = []
    register_compiled_grad_ready(lin.weight, lambda g: calls.append("w"))
    register_compiled_grad_ready(lin.bias, lambda g: calls.append("b"))
    x = torch.randn(2, 3)
    # the weight also gets a gradient outside the region: not final there
    (cm(x).sum() + lin.weight.sum()).backward()
    assert calls == ["b"]
    # autograd.grad accumulates nothing into .grad: no early gradients
    del calls[:]
    torch.autograd.grad(cm(x).sum(), [lin.weight, lin.bias])
    assert calls == []
    # a tensor hook may change the gradient: not called for that parameter
    h = lin.bias.register_hook(lambda g: g * 2)
    cm(x).sum().backward()
    assert calls == ["w"]
    h.remove()


def test_eager_backend_hands_gradients_over_at_the_end():
    # backend='eager' interprets the graph (no schedule): it calls back once per output after
    # its program has run, as the Triton backend does (its kernels run asynchronously)
    backend = "eager"
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2))
    got = []
    for n, p in m.named_parameters():
        register_compiled_grad_ready(p, lambda g, n=n: got.append((n, g.numpy().copy())))
    torch.compile(m, backend=backend)(torch.randn(3, 5)).sum().backward()
    params = dict(m.named_parameters())
    assert sorted(n for n, _ in got) == sorted(params)
    for n, g in got:
        np.testing.assert_allclose(g, params[n].grad.numpy(), rtol=1e-6)
