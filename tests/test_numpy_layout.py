"""Transposed layouts in generated NumPy programs (numpy_gen._transposed): a linear layer's
product x @ w.T over a batch smaller than half its width is written into a C-contiguous
(width, batch) buffer viewed back as (batch, width), and the element-wise ops over it keep that
layout. Programs still equal the reference interpreter (to rounding: a product reading a
transposed operand, or a sum over one, adds in another order), KILN_TRANSPOSE=0 turns the layout
off (and gives bit-exact results), and no element-wise op reads one layout and writes the other."""
import re

import numpy as np
import pytest

from compiler.backend import compile_graph
from compiler.codegen import numpy_gen
from compiler.ir.graph import Graph, Value
from runtime import dtypes as dt

F32 = dt.float32


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "kiln"))


def _linear_graph(batch=32, d_in=48, width=256, classes=10):
    """Forward and backward of linear -> relu -> linear with a bias-gradient reduction, the
    shapes of a small MLP training step."""
    g = Graph("mlp_like")
    x = g.add_input("x", (batch, d_in), F32)
    w1 = g.add_input("w1", (width, d_in), F32)
    b1 = g.add_input("b1", (width,), F32)
    w2 = g.add_input("w2", (classes, width), F32)
    gy = g.add_input("gy", (batch, classes), F32)
    h = g.call("add", g.call("matmul", x, g.call("permute", w1, dims=(1, 0))), b1)
    a = g.call("relu", h)
    y = g.call("matmul", a, g.call("permute", w2, dims=(1, 0)))
    mask = g.call("le", a, 0.0)
    ga = g.call("matmul", gy, w2)                            # (batch, width): transposed too
    gh = g.call("where", mask, 0.0, ga)
    gb1 = g.call("sum", gh, dims=(0,))                       # reads a transposed value
    gw1 = g.call("matmul", g.call("permute", gh, dims=(1, 0)), x)
    g.set_outputs([y, gb1, gw1])
    return g


def _inputs(g, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(v.shape).astype(np.float32) for v in g.inputs]


def test_linear_activations_are_held_transposed_and_equal_the_reference():
    g = _linear_graph()
    prog, _ = compile_graph(g)
    src = prog.source
    # the products' and the element-wise values' buffers: (width, batch) viewed back with .T
    assert ".reshape((256, 32, )).T" in src, src
    assert "np.empty((256, 32, ), np.int32).T" in src      # the where's bit scratch follows
    assert "np.matmul(_ones32_float32, " in src            # the bias gradient: a gemv
    tr = prog.memory.transposed
    names = {v.name for n in prog.graph.nodes for v in n.outputs if id(v) in tr}
    ops = {n.op for n in prog.graph.nodes for v in n.outputs if id(v) in tr}
    assert {"matmul", "add", "relu", "le", "where"} <= ops, (names, ops)
    # returned values are never transposed: the caller gets C-contiguous arrays
    assert not {id(o) for o in prog.graph.outputs} & tr
    for seed in range(2):
        ins = _inputs(g, seed)
        ref = g.run(*[a.copy() for a in ins])
        got = prog.run([a.copy() for a in ins], g.float_consts())
        for r, o in zip(ref, got):
            # (a product reading a transposed operand, or a sum over one, adds in another
            # order: equal to rounding)
            assert o.flags.c_contiguous and o.dtype == r.dtype and o.shape == r.shape
            np.testing.assert_allclose(o, r, rtol=1e-5, atol=1e-4)


def test_kiln_transpose_0_keeps_c_order_and_bit_exact_results(monkeypatch):
    g = _linear_graph()
    monkeypatch.setattr(numpy_gen, "TRANSPOSE", False)
    assert numpy_gen.version() != numpy_gen.VERSION        # its own cache entries
    prog, _ = compile_graph(g)
    assert ".T" not in prog.source.replace(".T)", "") and not prog.memory.transposed
    ins = _inputs(g)
    ref = g.run(*[a.copy() for a in ins])
    got = prog.run([a.copy() for a in ins], g.float_consts())
    for r, o in zip(ref, got):
        np.testing.assert_array_equal(o, r)
    monkeypatch.setattr(numpy_gen, "TRANSPOSE", True)
    prog2, _ = compile_graph(g)                 # (a separate program, from its own entry)
    assert prog2 is not prog and prog2.memory.transposed


@pytest.mark.parametrize("shape,expect", [((32, 256), True), ((8, 10), False),
                                           ((64, 100), False), ((200, 64), False)])
def test_only_wide_products_of_some_size_are_transposed(shape, expect):
    m, n = shape
    g = Graph("one_product")
    x = g.add_input("x", (m, 16), F32)
    w = g.add_input("w", (n, 16), F32)
    y = g.call("relu", g.call("matmul", x, g.call("permute", w, dims=(1, 0))))
    g.set_outputs([g.call("sum", y, dims=(1,))])
    prog, _ = compile_graph(g)
    assert bool(prog.memory.transposed) == expect, prog.source
    ins = _inputs(g)
    np.testing.assert_allclose(prog.run(ins, [])[0], g.run(*ins)[0], rtol=1e-5, atol=1e-5)


def test_a_value_read_by_a_reshape_or_an_extern_op_stays_c_order():
    g = Graph("reshaped")
    x = g.add_input("x", (32, 16), F32)
    w = g.add_input("w", (256, 16), F32)
    y = g.call("matmul", x, g.call("permute", w, dims=(1, 0)))
    z = g.call("reshape", g.call("exp", y), shape=(32, 16, 16))
    g.set_outputs([g.call("sum", z, dims=(2,))])
    prog, _ = compile_graph(g)
    assert not prog.memory.transposed, prog.source
    ins = _inputs(g)
    np.testing.assert_allclose(prog.run(ins, [])[0], g.run(*ins)[0], rtol=1e-5)


def _wide(mixed):
    b, width = 256, 1024                        # 262144 elements >= parallel.MIN_ELEMENTS
    g = Graph("wide")
    x = g.add_input("x", (b, 32), F32)
    w = g.add_input("w", (width, 32), F32)
    r = g.add_input("r", (b, width), F32)
    y = g.call("matmul", x, g.call("permute", w, dims=(1, 0)))
    t = g.call("tanh", g.call("mul", g.call("exp", g.call("neg", y)), 0.5))
    if mixed:
        t = g.call("add", t, r)                 # a C-order operand of the same shape
    g.set_outputs([g.call("sum", t, dims=(1,))])
    return g


@pytest.mark.parametrize("mixed", [False, True])
def test_chunked_runs_over_transposed_values_flatten_in_memory_order(monkeypatch, mixed):
    """An element-wise run over transposed values of >= parallel.MIN_ELEMENTS elements runs in
    chunks over flat views taken through .T (memory order). A chain that meets a C-order
    array of its shape is not transposed at all (no op converts layouts on the way), and runs
    in chunks in C order."""
    from compiler.codegen import parallel
    monkeypatch.setattr(parallel, "threads", 2)
    g = _wide(mixed)
    prog, _ = compile_graph(g)
    src = prog.source
    assert _layouts_never_mix(prog) is None
    if mixed:
        assert not prog.memory.transposed and ".T" not in src.replace(".T)", ""), src
        assert "_par(" in src, src
    else:
        assert prog.memory.transposed
        assert ".T.reshape(-1)" in src and "_par(" in src, src
    ins = _inputs(g)
    ref = g.run(*[a.copy() for a in ins])
    for th in (2, 1):
        monkeypatch.setattr(parallel, "threads", th)
        got = prog.run([a.copy() for a in ins], g.float_consts())
        np.testing.assert_allclose(got[0], ref[0], rtol=1e-5, atol=1e-4)


def _train_eager_and_compiled(make_model, d_in, batch, steps):
    """(losses, parameters) of `steps` AdamW cross-entropy steps eagerly and with the whole
    step compiled, from one seed and one batch stream; and the compiled step's program."""
    import framework as torch
    import framework.nn.functional as F
    from framework import optim
    results, prog = [], None
    for compiled in (False, True):
        torch.manual_seed(0)
        m = make_model()
        opt = optim.AdamW(m.parameters(), lr=1e-3)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            return loss
        f = torch.compile(step) if compiled else step
        g = torch.Generator().manual_seed(1)
        losses = []
        for k in range(steps):
            x = torch.randn(batch, d_in, generator=g)
            y = torch.randint(0, 10, (batch,), generator=g)
            torch.manual_seed(100 + k)                     # (dropout draws)
            losses.append(f(x, y).item())
        results.append((losses, [p.detach().numpy().copy() for p in m.parameters()]))
        if compiled:
            prog = f.programs()[0]
    (l0, p0), (l1, p1) = results
    np.testing.assert_allclose(l1, l0, rtol=1e-5)
    for a, b in zip(p0, p1):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    return prog


def test_wide_mlp_training_step_compiled_equals_eager_with_transposed_activations():
    """A whole compiled training step (forward, cross-entropy, backward, AdamW) of an MLP whose
    activations are held transposed equals eager to float32 rounding over 5 steps."""
    from framework import nn
    prog = _train_eager_and_compiled(
        lambda: nn.Sequential(nn.Linear(48, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                              nn.Linear(128, 10)), 48, 32, 5)
    assert prog.memory.transposed


@pytest.mark.parametrize("dims,keep", [((0,), False), ((0,), True), ((1,), False), ((1,), True)])
def test_sums_over_one_axis_of_a_transposed_value_are_products_with_ones(dims, keep):
    """A sum over one axis of a transposed value runs as a product with a ones vector (one
    BLAS pass instead of a short pairwise sum per output element): equal to the reference to
    float rounding, inf and NaN included."""
    g = Graph("sums")
    x = g.add_input("x", (32, 16), F32)
    w = g.add_input("w", (256, 16), F32)
    y = g.call("exp", g.call("matmul", x, g.call("permute", w, dims=(1, 0))))
    g.set_outputs([g.call("sum", y, dims=dims, keepdim=keep)])
    prog, _ = compile_graph(g)
    assert prog.memory.transposed and re.search(r"np\.matmul\([^\n]*_ones", prog.source), \
        prog.source
    ins = _inputs(g)
    ins[0][3, 0] = np.inf                                   # an inf row and a NaN row
    ins[0][5, 1] = np.nan
    with np.errstate(all="ignore"):
        ref = g.run(*[a.copy() for a in ins])[0]
        got = prog.run([a.copy() for a in ins], g.float_consts())[0]
    assert got.shape == ref.shape and got.dtype == ref.dtype
    np.testing.assert_allclose(got, ref, rtol=1e-5, equal_nan=True)


def _layouts_never_mix(prog):
    """No element-wise node of the program reads an operand of its shape in one layout and
    writes the other (a strided pass)."""
    tr = prog.memory.transposed
    for n in prog.graph.nodes:
        if len(n.outputs) != 1 or n.prim.kind != "pointwise":
            continue
        v = n.outputs[0]
        if id(v) in prog.memory.donated:
            continue
        full = [a for a in n.inputs if isinstance(a, Value) and a.shape == v.shape]
        if any((id(a) in tr) != (id(v) in tr) for a in full):
            return n
    return None


def test_element_wise_ops_never_mix_layouts_in_a_training_step():
    """A training step whose GELU (an erf lowering: C order) and dropout mask meet the
    backward products: the transposed layout stops at those ops instead of converting on
    the way, and the step equals eager to rounding."""
    from framework import nn
    prog = _train_eager_and_compiled(
        lambda: nn.Sequential(nn.Linear(100, 512), nn.LayerNorm(512), nn.GELU(),
                              nn.Dropout(0.1), nn.Linear(512, 256), nn.Tanh(),
                              nn.Linear(256, 10)), 100, 64, 3)
    assert prog.memory.transposed                       # (the tanh layer's chain)
    assert _layouts_never_mix(prog) is None, _layouts_never_mix(prog)
