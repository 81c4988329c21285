"""Fuser structure: softmax/log_softmax/layer_norm/cross_entropy forward are one group each, an
MLP forward is one group per linear layer, and refused merges carry their reasons."""
import numpy as np
import pytest

import framework as torch
from framework import nn
import framework.nn.functional as F
from compiler import passes
from compiler.backend import compile_graph
from compiler.fusion import partition, CYCLE, EXTERN, PERMUTED, SIZE, SPACE
from compiler.ir.graph import Graph
from runtime import dtypes as dt


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "kiln"))


def _traced(fn, *args):
    c = torch.compile(fn)
    c(*args)
    g = c.graphs()[-1]
    return passes.run_all(g)[0]


def _compute_groups(part):
    return [gr for gr in part.groups if gr.kind != "view"]


X = torch.randn(8, 10)
Y = torch.tensor(np.arange(8) % 10)


@pytest.mark.parametrize("name,fn", [
    ("softmax", lambda x: F.softmax(x, dim=-1)),
    ("log_softmax", lambda x: F.log_softmax(x, dim=-1)),
    ("layer_norm", lambda x: F.layer_norm(x, (10,))),
    ("layer_norm_affine", lambda x: F.layer_norm(x, (10,), torch.ones(10), torch.zeros(10))),
    ("cross_entropy", lambda x: F.cross_entropy(x, Y)),
])
def test_row_ops_are_one_group(name, fn):
    g = _traced(fn, X)
    part = partition(g)
    assert len(part.groups) == 1, part.describe()
    gr = part.groups[0]
    assert gr.kind == "reduction"
    assert gr.space == (8, 10) and gr.rdims == (1,)
    assert len(gr.nodes) == len(g.nodes)
    if name == "cross_entropy":       # the mean over rows closes the group
        assert gr.final == ((8,), (0,))
    # and the compiled program agrees with the reference interpreter
    prog, _ = compile_graph(g)
    ins = [np.asarray(X._data)] + [np.asarray(a) for a in _inputs_after_first(g)]
    np.testing.assert_array_equal(prog.run(ins, g.float_consts())[0],
                                  g.run(*ins)[0])


def _inputs_after_first(g):
    out = []
    for v in g.inputs[1:]:
        if v.dtype is dt.int64:
            out.append((np.arange(int(np.prod(v.shape))) % 10).reshape(v.shape))
        else:
            out.append(np.ones(v.shape, v.dtype.np))
    return out


def test_mlp_forward_one_group_per_linear():
    m = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4))
    c = torch.compile(m)
    with torch.no_grad():
        c(torch.randn(5, 32))
    g = passes.run_all(c._compiled.graphs()[-1])[0]
    part = partition(g)
    comp = _compute_groups(part)
    assert len(comp) == 2, part.describe()
    for gr in comp:
        assert gr.kind == "matmul"
        assert [n.op for n in gr.nodes].count("matmul") == 1
    # bias add and ReLU (one primitive) are the first layer's epilogue
    ops0 = [n.op for n in comp[0].nodes]
    assert ops0[ops0.index("matmul") + 1:] == ["add", "relu"]
    assert comp[0].name.startswith("fused_matmul_add_relu_")
    assert any(r.reason.startswith("matmul") for r in part.refusals)


def test_merge_that_would_create_cycle_is_refused():
    g = Graph("cyc")
    x = g.add_input("x", (4, 4), dt.float32)
    w = g.add_input("w", (4, 4), dt.float32)
    a = g.call("exp", x)
    m = g.call("matmul", a, w)
    c = g.call("add", a, m)              # a -> m -> c and a -> c
    g.set_outputs([c])
    part = partition(g)
    reasons = {(r.producer, r.consumer): r.reason for r in part.refusals}
    assert reasons[(f"{a.name}:exp", f"{c.name}:add")] == CYCLE
    ops = [[n.op for n in gr.nodes] for gr in part.groups]
    assert ops == [["exp"], ["matmul", "add"]]


def test_extern_ops_stay_alone():
    g = Graph("ext")
    x = g.add_input("x", (4, 6), dt.float32)
    a = g.call("exp", x)
    s = g.call("cumsum", a, dim=1)
    b = g.call("mul", s, 2.0)
    g.set_outputs([b])
    part = partition(g)
    assert [[n.op for n in gr.nodes] for gr in part.groups] == [["exp"], ["cumsum"], ["mul"]]
    assert {r.reason for r in part.refusals} == {EXTERN}
    assert part.groups[1].kind == "extern"


def test_size_cap_and_space_refusals():
    g = Graph("chain")
    x = g.add_input("x", (3, 5), dt.float32)
    v = x
    for k in range(100):
        v = g.call("add", v, 1.0) if k % 2 else g.call("mul", v, 0.5)
    col = g.add_input("col", (3, 1), dt.float32)
    e = g.call("exp", col)                # [3, 1]
    out = g.call("add", v, e)             # [3, 5]: e's group has another space
    g.set_outputs([out])
    part = partition(g, size_cap=64)
    sizes = sorted(len(gr.nodes) for gr in part.groups)
    assert sizes == [1, 37, 64]
    reasons = [r.reason for r in part.refusals]
    assert SIZE in reasons and SPACE in reasons
    text = part.describe()
    assert "refused:" in text and "size cap" in text and "iteration space differs" in text


def test_views_fold_into_their_consumer():
    g = Graph("views")
    x = g.add_input("x", (4, 6), dt.float32)
    t = g.call("permute", x, dims=(1, 0))
    r = g.call("reshape", t, shape=(24,))
    y = g.call("exp", r)
    z = g.call("mul", y, 3.0)
    g.set_outputs([z])
    part = partition(g)
    assert len(part.groups) == 1
    assert [n.op for n in part.groups[0].nodes] == ["permute", "reshape", "exp", "mul"]
    assert part.groups[0].name == "fused_exp_mul_0"


def test_permute_of_a_computed_value_does_not_fuse_into_a_pointwise_group():
    # a + b.T where b is computed: in one kernel b.T's elements would meet a's in the wrong
    # order, so b is materialised and the permute folds into the reading load
    g = Graph("tied")
    a = g.add_input("a", (4, 4), dt.float32)
    b = g.call("exp", g.add_input("w", (4, 4), dt.float32))
    y = g.call("add", g.call("mul", a, 2.0), g.call("permute", b, dims=(1, 0)))
    g.set_outputs([y])
    part = partition(g, one_order=True)          # (Triton's kernels visit one index order)
    assert [[n.op for n in gr.nodes] for gr in part.groups] == [["exp"],
                                                               ["mul", "permute", "add"]]
    assert any(r.reason == PERMUTED for r in part.refusals)
    assert len(partition(g).groups) == 1           # NumPy programs permute arrays: one group


def test_flip_of_a_computed_value_does_not_fuse_for_triton():
    # (a * 2 + flip(exp(w))).sum(): the flipped value would meet a's elements reversed, in a
    # pointwise or a reduction group alike; a flip of size-1 dims reorders nothing and fuses
    g = Graph("flipped")
    a = g.add_input("a", (6, 1), dt.float32)
    b = g.call("exp", g.add_input("w", (6, 1), dt.float32))
    y = g.call("add", g.call("mul", a, 2.0), g.call("flip", b, dims=(0,)))
    g.set_outputs([g.call("sum", y, dims=(0, 1), keepdim=False)])
    part = partition(g, one_order=True)
    assert [[n.op for n in gr.nodes] for gr in part.groups] == [["exp"],
                                                               ["mul", "flip", "add", "sum"]]
    assert [r.reason for r in part.refusals].count(PERMUTED) == 1
    assert len(partition(g).groups) == 1           # NumPy programs flip arrays: one group
    g2 = Graph("flip_of_ones")
    c = g2.call("exp", g2.add_input("w", (6, 1), dt.float32))
    g2.set_outputs([g2.call("add", g2.call("flip", c, dims=(1,)), 1.0)])
    assert len(partition(g2, one_order=True).groups) == 1


def test_prologue_into_reduction_and_epilogue_after():
    g = Graph("mse")
    a = g.add_input("a", (6, 8), dt.float32)
    b = g.add_input("b", (6, 8), dt.float32)
    d = g.call("sub", a, b)
    sq = g.call("mul", d, d)
    s = g.call("sum", sq, dims=(0, 1), keepdim=False)
    m = g.call("div", s, 48)
    g.set_outputs([m])
    part = partition(g)
    assert len(part.groups) == 1 and part.groups[0].kind == "reduction"
    notes = " ".join(part.groups[0].notes)
    assert "pointwise prologue" in notes and "pointwise epilogue" in notes


def test_reductions_over_different_rows_do_not_fuse():
    g = Graph("rows")
    x = g.add_input("x", (5, 7), dt.float32)
    s0 = g.call("sum", x, dims=(0,), keepdim=True)     # [1, 7]
    s1 = g.call("sum", x, dims=(1,), keepdim=True)     # [5, 1]
    out = g.call("add", s0, s1)                        # [5, 7]
    g.set_outputs([out])
    part = partition(g)
    # the add runs over [5, 7], so it is an epilogue of the first sum it meets (s0); s1
    # reduces other rows and is refused
    assert [[o.name for n in gr.nodes for o in n.outputs] for gr in part.groups] == \
        [[s1.name], [s0.name, out.name]]
    assert [(r.producer, r.consumer, r.reason) for r in part.refusals] == \
        [(f"{s1.name}:sum", f"{out.name}:add", SPACE)]
