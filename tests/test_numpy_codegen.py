"""NumPy code generation: generated programs equal the reference interpreter (Graph.run, which
calls each primitive's NumPy lowering) bit for bit, on hand-written graphs over many dtypes and
on random graphs from a hypothesis fuzzer; memory planning reuses buffers without changing
results or clobbering returned arrays."""
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st

from compiler.backend import compile_graph
from compiler.ir.graph import Graph
from runtime import dtypes as dt

ROOT = __file__.rsplit("/tests/", 1)[0]


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "kiln"))


def _rand(rng, v):
    d = v.dtype
    if d is dt.bool_:
        return rng.integers(0, 2, v.shape).astype(bool)
    if d.category == 1:
        lo = 0 if d is dt.uint8 else -5
        return rng.integers(lo, 6, v.shape).astype(d.np)
    x = rng.standard_normal(v.shape) * 2
    x.flat[::7] = 0.0
    return x.astype(d.np)


def check(g, seed=0, runs=2, donate=()):
    """Compile g and compare with Graph.run on `runs` random inputs; returns the Program.
    donate: (output, input) pairs the program may write into the input arrays (the reference
    runs on copies; a donated output must come back as its input array)."""
    prog, _ = compile_graph(g, donate=donate)
    reassociated = any(n.op == "matmul" for n in g.nodes)
    rng = np.random.default_rng(seed)
    consts = g.float_consts()
    for _ in range(runs):
        ins = [_rand(rng, v) for v in g.inputs]
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                ref = g.run(*[a.copy() for a in ins])
            except Exception as e:
                # a data error (int ** negative) raises the same class, unless DCE removed
                # the failing node (Graph.run runs dead nodes too)
                try:
                    prog.run(ins, consts)
                except type(e):
                    pass
                continue
            got = prog.run(ins, consts)
        assert len(got) == len(ref)
        pg = prog.graph                     # (the graph the memory plan was made for)
        for j, k in donate:
            if id(pg.outputs[j]) in prog.memory.donated:
                assert got[j] is ins[k]
        for a, b in zip(ref, got):
            a, b = np.asarray(a), np.asarray(b)
            assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
            if a.dtype == dt.bfloat16.np:          # exact widening; NumPy's NaN check needs it
                a, b = a.astype(np.float32), b.astype(np.float32)
            if reassociated and a.dtype.kind == "f":
                # the layout pass may compute matmul(a, b).T as matmul(b.T, a.T): the same
                # sums, possibly in another BLAS order, so equal to rounding, not to the bit
                tol = {8: 1e-12, 4: 1e-5}.get(a.dtype.itemsize, 1e-2)
                np.testing.assert_allclose(b, a, rtol=tol, atol=tol * (1 + np.nanmax(
                    np.abs(a), initial=0)), equal_nan=True)
            else:
                np.testing.assert_array_equal(a, b)
    return prog


def _g(*specs):
    g = Graph("t")
    return g, [g.add_input(f"x{k}", s, d) for k, (s, d) in enumerate(specs)]


@pytest.mark.parametrize("d", [dt.float32, dt.float64, dt.float16, dt.bfloat16, dt.int32,
                               dt.int64, dt.uint8, dt.bool_])
def test_pointwise_chain_dtypes(d):
    g, (x, y) = _g(((4, 5), d), ((5,), d))
    ops = []
    if d is dt.bool_:
        a = g.call("logical_xor", x, y)
        b = g.call("logical_not", a)
        c = g.call("add", b, 1)               # bool + int -> int64
        ops = [a, b, c]
    else:
        a = g.call("add", x, y)
        b = g.call("mul", a, 3)
        c = g.call("maximum", b, x)
        e = g.call("gt", c, 0)
        f = g.call("where", e, c, 0)
        h = g.call("exp", f)                  # ints promote to float32
        k = g.call("cast", h, dtype=dt.float64)
        ops = [a, b, c, e, f, h, k]
        if d.category == 1:
            ops.append(g.call("floor_divide", x, 3))
            ops.append(g.call("bitwise_and", x, y))
            ops.append(g.call("remainder", x, 4))
            ops.append(g.call("add", x, -3))   # wraps for uint8
            ops.append(g.call("lt", x, 300))
        else:
            ops.append(g.call("rsqrt", g.call("abs", x)))
            ops.append(g.call("div", x, y))
            ops.append(g.call("pow", x, 2))
            ops.append(g.call("sigmoid", x))
    g.set_outputs(ops)
    check(g)


def test_mixed_dtypes_and_scalars():
    g, (i, f, h, b) = _g(((3, 4), dt.int32), ((3, 4), dt.float32), ((4,), dt.float16),
                         ((3, 1), dt.bool_))
    outs = [g.call("mul", i, 2.5),            # int tensor * float scalar -> float32
            g.call("add", i, f),              # int32 + float32 -> float32 (cast operand)
            g.call("add", h, f),              # float16 + float32
            g.call("sub", h, 1.5),            # stays float16
            g.call("where", b, f, 7),
            g.call("where", b, 1.25, i),      # -> float32
            g.call("eq", i, f),               # compare in float32
            g.call("neg", i),
            g.call("exp", i),                 # int -> float32
            g.call("isnan", f),
            g.call("cast", f, dtype=dt.int64),
            g.call("cast", i, dtype=dt.bool_),
            g.call("copy", h)]
    g.set_outputs(outs)
    check(g)


def test_reductions_and_views():
    g, (x, w) = _g(((6, 8), dt.float32), ((8, 3), dt.float32))
    s = g.call("sum", x, dims=(1,), keepdim=True)
    m = g.call("amax", x, dims=(0,), keepdim=False)
    p = g.call("prod", x, dims=(1,), keepdim=False)
    am = g.call("argmax", x, dim=1, keepdim=False)
    t = g.call("permute", x, dims=(1, 0))
    r = g.call("reshape", t, shape=(4, 12))
    sl = g.call("slice", x, dim=1, start=1, stop=7, step=2)
    fl = g.call("flip", x, dims=(0,))
    e = g.call("expand", s, shape=(6, 8))
    mm = g.call("matmul", x, w)
    mm2 = g.call("add", mm, 1.0)
    hs = g.call("sum", g.call("cast", x, dtype=dt.float16), dims=(0,), keepdim=False)
    isum = g.call("sum", g.call("cast", x, dtype=dt.int32), dims=None, keepdim=False)
    tot = g.call("sum", x, dims=(0, 1), keepdim=False)
    g.set_outputs([s, m, p, am, r, sl, fl, e, mm2, hs, isum, tot, t])
    check(g)


def test_extern_and_multi_output_ops():
    g, (x, i) = _g(((4, 5), dt.float32), ((4, 2), dt.int64))
    c = g.call("cumsum", g.call("exp", x), dim=1)
    ga = g.call("gather", x, g.call("remainder", i, 5), dim=1)
    cat = g.call("cat", x, c, dim=0)
    q = g.call("argsort", x, dim=1, descending=False)
    g.set_outputs([c, ga, cat, q])
    check(g)


def test_memory_plan_reuses_and_outputs_survive_next_call():
    g, (x,) = _g(((64, 64), dt.float32))
    v = x
    for k in range(12):
        v = g.call("exp" if k % 3 == 0 else ("mul" if k % 3 == 1 else "add"),
                   *((v,) if k % 3 == 0 else (v, 0.5)))
    s = g.call("sum", v, dims=(1,), keepdim=True)
    out = g.call("div", v, s)
    g.set_outputs([out, s])
    prog = check(g)
    assert prog.planned_bytes < prog.naive_bytes
    # the whole chain runs in place in one buffer (plus the row sums)
    assert prog.planned_bytes == 64 * 64 * 4 + 64 * 4
    assert len(prog.memory.inplace) >= 12
    a = np.ones((64, 64), np.float32)
    r1 = prog.run([a], g.float_consts())
    keep = [np.array(r) for r in r1]
    r2 = prog.run([a * 2], g.float_consts())
    for k, (x1, x2) in enumerate(zip(r1, keep)):
        np.testing.assert_array_equal(x1, x2)     # not overwritten by the second call
        assert not np.shares_memory(r1[k], r2[k])
    assert prog.runs == 4 and set(prog.group_runs().values()) == {4}


def test_inputs_are_never_written():
    g, (x, y) = _g(((8, 8), dt.float32), ((8, 8), dt.float32))
    a = g.call("add", x, y)
    b = g.call("exp", g.call("permute", a, dims=(1, 0)))
    c = g.call("add", b, a)                # reads a through two layouts: no in-place on a
    g.set_outputs([c, g.call("reshape", x, shape=(64,))])
    prog = check(g)
    xs = np.arange(64, dtype=np.float32).reshape(8, 8)
    ys = xs.copy()
    out = prog.run([xs, ys], [])
    np.testing.assert_array_equal(xs, ys)
    np.testing.assert_array_equal(out[0], np.exp((xs + xs).T) + (xs + xs))
    assert np.shares_memory(out[1], xs)     # a view of an input stays a view, like Graph.run


def test_source_is_self_contained_and_readable():
    g, (x, w, b) = _g(((4, 8), dt.float32), ((8, 3), dt.float32), ((3,), dt.float32))
    y = g.call("where", g.call("gt", g.call("add", g.call("matmul", x, w), b), 0.0),
               g.call("add", g.call("matmul", x, w), b), 0.0)
    g.set_outputs([y])
    prog = check(g)
    src = prog.source
    assert "np.matmul(" in src and "out=" in src and "# fused_matmul_add" in src
    code = textwrap.dedent(f"""
        import numpy as np, sys
        sys.path.insert(0, {ROOT!r})
        ns = {{}}
        exec(compile({src!r}, "gen", "exec"), ns)
        prog = ns["make"]()
        x = np.ones((4, 8), np.float32); w = np.full((8, 3), 0.5, np.float32)
        b = np.array([-5., 0., 1.], np.float32)
        print(prog([x, w, b], [0.0, 0.0])[0].tolist())
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str([[0.0, 4.0, 5.0]] * 4)


def test_program_introspection():
    g, (x,) = _g(((4, 6), dt.float32))
    m = g.call("amax", x, dims=(1,), keepdim=True)
    e = g.call("exp", g.call("sub", x, m))
    out = g.call("div", e, g.call("sum", e, dims=(1,), keepdim=True))
    g.set_outputs([out])
    prog = check(g)
    assert len(prog.groups) == 1 and prog.groups[0].kind == "reduction"
    assert "fused_amax_sub_exp_sum_0 [reduction" in prog.partition.describe()
    assert prog.passes_log and prog.graph is not None
    assert prog.origin in ("cold", "disk")
    assert "memory: planned" in prog.memory.describe()


# ---- fuzzer -----------------------------------------------------------------------------------

_UNARY = ["exp", "neg", "abs", "tanh", "sqrt", "log", "sigmoid", "floor", "rsqrt", "cast64",
          "cast16", "casti"]
_BINARY = ["add", "sub", "mul", "div", "maximum", "minimum", "pow"]
_CMP = ["gt", "le", "eq"]


def _apply(g, kind, vals, a, b, p, q):
    """One random op over values vals[a], vals[b] with parameters p, q; None if it does not
    type-check (the meta rule refuses it)."""
    x, y = vals[a % len(vals)], vals[b % len(vals)]
    try:
        if kind == "unary":
            op = _UNARY[p % len(_UNARY)]
            if op.startswith("cast"):
                d = {"cast64": dt.float64, "cast16": dt.float16, "casti": dt.int32}[op]
                return g.call("cast", x, dtype=d)
            return g.call(op, x)
        if kind == "binary":
            op = _BINARY[p % len(_BINARY)]
            other = y if q % 3 else [2, 0.5, -1.5][q % 3]
            return g.call(op, x, other) if q % 2 else g.call(op, other, x) \
                if not isinstance(other, (int, float)) else g.call(op, x, other)
        if kind == "where":
            c = g.call(_CMP[p % len(_CMP)], x, 0.0 if q % 2 else y)
            return g.call("where", c, x, y if q % 3 else 1.0)
        if kind == "reduce":
            if not x.shape:
                return None
            op = ["sum", "amax", "amin", "prod"][p % 4]
            dims = (q % len(x.shape),)
            return g.call(op, x, dims=dims, keepdim=bool(p % 2))
        if kind == "view":
            if len(x.shape) < 2:
                return g.call("reshape", x, shape=tuple(x.shape) + (1,))
            if p % 3 == 0:
                return g.call("permute", x, dims=tuple(reversed(range(len(x.shape)))))
            if p % 3 == 1:
                return g.call("reshape", x, shape=(-1,))
            return g.call("slice", x, dim=q % len(x.shape), start=0, stop=None, step=2)
        if kind == "matmul":
            if len(x.shape) != 2 or len(y.shape) != 2:
                return None
            if x.shape[1] != y.shape[0]:
                y = g.call("permute", y, dims=(1, 0))
            if x.dtype is not y.dtype:
                y = g.call("cast", y, dtype=x.dtype)
            return g.call("matmul", x, y)
    except (RuntimeError, NotImplementedError, ValueError, IndexError, TypeError):
        return None
    return None


_step = st.tuples(st.sampled_from(["unary", "binary", "binary", "where", "reduce", "view",
                                   "matmul"]),
                  st.integers(0, 50), st.integers(0, 50), st.integers(0, 50), st.integers(0, 50))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from([(3, 4), (4, 4), (2, 3)]),
       st.sampled_from([dt.float32, dt.float64, dt.int64]),
       st.lists(_step, min_size=1, max_size=14), st.integers(0, 3), st.integers(0, 2 ** 31))
def test_fuzz_random_graphs_match_reference(shape, d, steps, nout, seed):
    g = Graph("fuzz")
    vals = [g.add_input("a", shape, d), g.add_input("b", shape, dt.float32),
            g.add_input("c", (shape[1],), d), g.add_input("w", (shape[1], shape[0]), dt.float32)]
    for kind, a, b, p, q in steps:
        v = _apply(g, kind, vals, a, b, p, q)
        if v is not None:
            vals.append(v)
    made = vals[4:] or vals[:1]
    outs = [made[-1]] + [made[(seed >> k) % len(made)] for k in range(nout)]
    g.set_outputs(outs)
    check(g, seed=seed % 1000)


# ---- donation: outputs written straight into the input arrays they replace ------------------------

def test_donated_output_is_written_into_its_input_only_when_safe():
    F32 = dt.float32
    # y = x + 1 replaces x; z = x * 2 reads x after y's node: no donation (z would read y)
    g = Graph("don1")
    x = g.add_input("x", (4,), F32)
    y = g.call("add", x, 1.0)
    z = g.call("mul", x, 2.0)
    g.set_outputs([z, y])
    prog, _ = compile_graph(g, donate=((1, 0),))
    a = np.arange(4, dtype=np.float32)
    res = prog.run([a], [1.0, 2.0])
    if prog.memory.donated:                 # only if the schedule put z first
        assert prog.source.index("np.multiply(in0") < prog.source.index("out=in0)")
    np.testing.assert_array_equal(res[0], np.arange(4, dtype=np.float32) * 2)
    np.testing.assert_array_equal(res[1], np.arange(4, dtype=np.float32) + 1)
    # a matmul reading x cannot write into x; its elementwise epilogue can
    g = Graph("don2")
    x = g.add_input("x", (3, 3), F32)
    w = g.add_input("w", (3, 3), F32)
    m = g.call("matmul", x, w)
    out = g.call("add", m, x)
    g.set_outputs([out])
    prog, _ = compile_graph(g, donate=((0, 0),))
    xa = np.arange(9, dtype=np.float32).reshape(3, 3)
    wa = np.eye(3, dtype=np.float32)[::-1].copy()
    ref = xa @ wa + xa
    res = prog.run([xa, wa], [])
    assert res[0] is xa and "out=in0)" in prog.source
    np.testing.assert_array_equal(xa, ref)
    # without donation the same graph returns a fresh array and leaves x alone
    prog2, _ = compile_graph(g)
    xb = np.arange(9, dtype=np.float32).reshape(3, 3)
    r2 = prog2.run([xb, wa], [])
    assert r2[0] is not xb and not prog2.memory.donated
    np.testing.assert_array_equal(r2[0], ref)


def test_intermediates_of_a_donated_update_live_in_the_input_array():
    """AdamW's p * (1 - lr * wd) + update: the caller replaces p's array anyway, so the decayed
    p is written into it in place (no buffer the size of p) and the final add reads it there;
    a chain that the donated output cannot read in place still gives the right values."""
    F32 = dt.float32
    g, (p, gr) = _g(((64, 32), F32), ((64, 32), F32))
    decayed = g.call("mul", p, 0.99)
    step = g.call("div", g.call("mul", gr, -0.01), g.call("add", g.call("sqrt", g.call(
        "mul", gr, gr)), 1e-8))
    g.set_outputs([g.call("add", decayed, step)])
    prog = check(g, donate=((0, 0),))
    assert len(prog.memory.donated) == 2                        # the decayed p and the result
    assert re.search(r"np\.multiply\(in0, consts\[\d+\], out=in0\)", prog.source)
    without = check(g)
    assert without.memory.planned_bytes - prog.memory.planned_bytes == 64 * 32 * 4  # p's size
    # the intermediate takes p's array, but the donated output is a matmul reading it: the
    # output goes to a buffer of its own (the caller copies it back) and reads the right values
    g, (p, w) = _g(((8, 8), F32), ((8, 8), F32))
    half = g.call("mul", p, 0.5)
    g.set_outputs([g.call("matmul", half, w)])
    prog = check(g, donate=((0, 0),))
    assert len(prog.memory.donated) == 1
    assert re.search(r"np\.multiply\(in0, consts\[\d+\], out=in0\)", prog.source)
    assert id(prog.graph.outputs[0]) not in prog.memory.donated
    # a value that is returned never lives in the input array
    g, (p,) = _g(((4, 4), F32))
    t = g.call("mul", p, 3.0)
    g.set_outputs([g.call("add", t, 1.0), t])
    prog = check(g, donate=((0, 0),))
    assert [id(prog.graph.outputs[0])] == list(prog.memory.donated)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from([(3, 4), (4, 4)]), st.lists(_step, min_size=1, max_size=14),
       st.integers(0, 3), st.integers(0, 2 ** 31))
def test_fuzz_donated_outputs_match_reference(shape, steps, nout, seed):
    """Random graphs whose outputs of an input's shape replace that input (as captured in-place
    updates do): intermediates may live in the donated arrays; every output equals the
    reference computed on copies."""
    g = Graph("fuzzd")
    vals = [g.add_input("a", shape, dt.float32), g.add_input("b", shape, dt.float32),
            g.add_input("c", (shape[1],), dt.float32),
            g.add_input("w", (shape[1], shape[0]), dt.float32)]
    for kind, a, b, p, q in steps:
        v = _apply(g, kind, vals, a, b, p, q)
        if v is not None:
            vals.append(v)
    made = vals[4:] or vals[:1]
    outs = list(dict.fromkeys([made[-1]] + [made[(seed >> k) % len(made)]
                                             for k in range(nout)]))
    g.set_outputs(outs)
    donate, used = [], set()
    for j, o in enumerate(outs):
        for k in (0, 1):
            x = g.inputs[k]
            if k not in used and o is not x and o.shape == x.shape and o.dtype is x.dtype:
                donate.append((j, k))
                used.add(k)
                break
    check(g, seed=seed % 1000, donate=tuple(donate))


def test_donated_input_is_not_scratch_under_a_transposed_view_of_it():
    # hypothesis found it: where(a.T > a, a.T, 1.0) over a donated input a was written into a's
    # array (its last reader) while a.T, another layout of that memory, was still to be read,
    # so the fill of 1.0 clobbered the values a.T then copied
    g = Graph("donate_view")
    a = g.add_input("a", (4, 4), dt.float32)
    at = g.call("permute", a, dims=(1, 0))
    r = g.call("exp", g.call("where", g.call("gt", at, a), at, 1.0))
    g.set_outputs([r])
    prog = check(g, seed=0, donate=((0, 0),))
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    want = np.exp(np.where(x.T > x, x.T, 1.0)).astype(np.float32)
    got = prog.run([x.copy(), np.zeros((4, 4), np.float32)][:1], g.float_consts())[0]
    np.testing.assert_array_equal(got, want)


def _special(rng, shape, d):
    """Random floats with NaN, +-inf, +-0.0 sprinkled in (bit-level where must keep them)."""
    x = (rng.standard_normal(shape) * 3).astype(d)
    flat = x.reshape(-1)
    for k, v in enumerate([np.nan, np.inf, -np.inf, 0.0, -0.0]):
        flat[k::11] = v
    return x


@pytest.mark.parametrize("d", [dt.float32, dt.float64])
def test_large_where_is_bitwise_exact(d):
    """where over large float arrays runs as integer bit operations (numpy_gen
    _bitwise_where): every form (array/scalar/FloatParam operands, +-0.0 constants, a
    broadcast condition, in place over either operand) equals np.where bit for bit."""
    shape = (8, 16, 64)             # >= numpy_gen._BITWISE_WHERE_MIN elements
    g, (x, y, c, cb) = _g((shape, d), (shape, d), (shape, dt.bool_), ((16, 1), dt.bool_))
    outs = [g.call("where", c, x, y),
            g.call("where", c, 0.0, y),           # relu backward form: y & (c - 1)
            g.call("where", c, x, 0.0),           # x & -c
            g.call("where", c, -0.0, y),          # -0.0 is not all-zero bits
            g.call("where", c, x, 2.5),           # a FloatParam read at run time
            g.call("where", cb, x, y),            # broadcast condition
            g.call("where", g.call("le", x, 0.0), 0.0, x),              # relu, in place
            g.call("where", c, g.call("exp", x), g.call("neg", y))]    # over fresh operands
    g.set_outputs(outs)
    prog, _ = compile_graph(g)
    assert "np.bitwise_and(" in prog.source and "np.bitwise_xor(" in prog.source
    rng = np.random.default_rng(0)
    for _ in range(2):
        ins = [_special(rng, shape, d.np), _special(rng, shape, d.np),
               rng.integers(0, 2, shape).astype(bool), rng.integers(0, 2, (16, 1)).astype(bool)]
        with np.errstate(all="ignore"):
            ref = g.run(*ins)
            got = prog.run([a.copy() for a in ins], g.float_consts())
        ib = np.int32 if d is dt.float32 else np.int64
        for a, b in zip(ref, got):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(np.asarray(a).view(ib), np.asarray(b).view(ib))


def test_zero_dim_float_arithmetic_is_scalar_code_with_ufunc_results():
    """0-d float add/sub/mul/div/neg/cast (an optimizer's scalar math) become NumPy scalar
    expressions; values equal the reference interpreter bit for bit, including division by
    zero, -0.0, NaN and float32 rounding; returned values stay 0-d arrays."""
    g = Graph("scalars")
    a = g.add_input("a", (), dt.float64)
    b = g.add_input("b", (), dt.float64)
    c = g.add_input("c", (), dt.float32)
    x = g.add_input("x", (5,), dt.float32)
    q = g.call("div", g.call("sub", 1, g.call("mul", a, 0.9)), b)        # b may be 0
    r = g.call("neg", g.call("add", q, a))
    h = g.call("cast", r, dtype=dt.float32)
    k = g.call("mul", g.call("div", h, c), 3)                          # float32 scalar math
    y = g.call("mul", x, k)
    g.set_outputs([y, k, q])
    prog, _ = compile_graph(g)
    src = prog.source
    assert " / " in src and " * " in src and "np.float32(" in src, src
    vals = [(0.3, 0.7, 1.5), (0.3, 0.0, 2.0), (-0.0, -0.0, -1.0), (np.nan, 1.0, 0.0),
            (1e308, 1e-308, 3.0), (2.0, -3.0, 0.0)]
    xs = np.linspace(-2, 2, 5).astype(np.float32)
    for va, vb, vc in vals:
        ins = [np.array(va), np.array(vb), np.array(vc, np.float32), xs]
        with np.errstate(all="ignore"):
            got = prog.run(ins, g.float_consts())
            want = g.run(*ins)
        for gv, wv in zip(got, want):
            assert isinstance(gv, np.ndarray) and gv.dtype == wv.dtype, (type(gv), wv.dtype)
            np.testing.assert_array_equal(gv.reshape(-1).view(np.uint8),
                                          np.asarray(wv).reshape(-1).view(np.uint8))


def test_large_elementwise_runs_go_to_threads_with_identical_results(monkeypatch):
    """An optimizer-like chain over >= parallel.MIN_ELEMENTS elements runs as chunks on
    several threads (compiler/codegen/parallel.py): results equal the reference interpreter
    bit for bit, with the parallel path taken, with one thread, and through the serial
    fallback when the donated (written) input is not contiguous."""
    from compiler.codegen import parallel
    monkeypatch.setattr(parallel, "threads", 3)     # (uneven chunks on any machine)
    n = parallel.MIN_ELEMENTS + 1000
    shape = (n // 100, 100) if n % 100 == 0 else (n,)
    g = Graph("adamish")
    p = g.add_input("p", shape, dt.float32)
    m = g.add_input("m", shape, dt.float32)
    gr = g.add_input("g", shape, dt.float32)
    s = g.add_input("s", (), dt.float32)
    m2 = g.call("add", m, g.call("mul", g.call("sub", gr, m), 0.1))
    den = g.call("add", g.call("sqrt", g.call("mul", gr, gr)), 1e-8)
    p2 = g.call("add", g.call("mul", p, s), g.call("mul", g.call("div", m2, den), -0.01))
    h = g.call("cast", p2, dtype=dt.float64)
    g.set_outputs([p2, m2, h])
    prog, _ = compile_graph(g, donate=((0, 0),))
    assert "_par(" in prog.source and "def _pg" in prog.source, prog.source
    rng = np.random.default_rng(0)
    base = [rng.standard_normal(shape).astype(np.float32) for _ in range(3)]
    base[2][..., :3] = [np.nan, np.inf, -0.0]
    sc = np.array(0.999, np.float32)
    want = g.run(*[b.copy() for b in base], sc)

    def check(res):
        for r, w_ in zip(res, want):
            np.testing.assert_array_equal(r, w_)
    for th in (3, 1):
        monkeypatch.setattr(parallel, "threads", th)
        arrs = [b.copy() for b in base]
        check(prog.run(arrs + [sc], g.float_consts()))
    # a non-contiguous array written in place: the serial statements run instead
    monkeypatch.setattr(parallel, "threads", 3)
    big = np.zeros(shape[:-1] + (shape[-1] * 2,), np.float32) if len(shape) > 1 else \
        np.zeros(n * 2, np.float32)
    pv = big[..., ::2]
    pv[...] = base[0]
    assert not pv.flags.c_contiguous
    res = prog.run([pv, base[1].copy(), base[2].copy(), sc], g.float_consts())
    check(res)


def test_parallel_run_covers_every_element_once_and_raises_errors():
    from compiler.codegen import parallel
    seen = np.zeros(parallel.MIN_ELEMENTS * 3 + 17, np.int64)

    def fn(lo, hi):
        seen[lo:hi] += 1
    old = parallel.threads
    try:
        parallel.threads = 4
        parallel.run(fn, len(seen))
        assert (seen == 1).all()

        def bad(lo, hi):
            if lo > 0:
                raise ValueError("chunk failed")
        with pytest.raises(ValueError, match="chunk failed"):
            parallel.run(bad, len(seen))
    finally:
        parallel.threads = old


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork (POSIX)")
def test_parallel_pool_works_in_a_forked_child():
    """A DataLoader worker forked after a compiled program ran keeps a working chunk pool."""
    import os
    from compiler.codegen import parallel
    old = parallel.threads
    parallel.threads = 2
    try:
        n = parallel.MIN_ELEMENTS * 2
        seen = np.zeros(n, np.int8)

        def fn(lo, hi):
            seen[lo:hi] += 1
        parallel.run(fn, n)                   # the parent's pool now exists
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:                          # child: must not hang on the parent's pool
            try:
                seen[:] = 0
                parallel.run(fn, n)
                os.write(w, b"ok" if (seen == 1).all() else b"bad")
            finally:
                os._exit(0)
        os.close(w)
        import select
        ready, _, _ = select.select([r], [], [], 60)    # a hung child must fail, not hang CI
        got = os.read(r, 8) if ready else b"hung"
        if not ready:
            os.kill(pid, 9)
        os.waitpid(pid, 0)
        assert got == b"ok"
    finally:
        parallel.threads = old


def test_sign_and_remainder_keep_torch_special_values_in_programs():
    # NumPy's sign(NaN) is NaN and remainder(-0.0, 1) is +0.0; PyTorch gives 0 and -0.0. The
    # programs call the primitives' lowerings for these, so compiled equals eager bit for bit
    import framework as torch
    for d in (np.float32, np.float64):
        x = np.array([np.nan, -0.0, 0.0, -2.5, 3.0, -np.inf, 4.0, -4.0], d)
        y = np.array([1.0, 1.0, -1.0, 2.0, -2.0, 3.0, -2.0, 2.0], d)

        def fn(a, b):
            return torch.sign(a) * 1, torch.remainder(a, b) * 1, torch.remainder(b, 1.5)
        got = torch.compile(fn, backend="numpy")(torch.from_numpy(x), torch.from_numpy(y))
        want = [np.array([0, 0, 0, -1, 1, -1, 1, -1], d),
                np.array([np.nan, -0.0, 0.0, 1.5, -1.0, np.nan, 0.0, -0.0], d),
                np.array([1.0, 1.0, 0.5, 0.5, 1.0, 0.0, 1.0, 0.5], d)]
        for g, w in zip(got, want):
            g = g.numpy()
            np.testing.assert_array_equal(g, w)
            num = ~np.isnan(w)
            assert (np.signbit(g[num]) == np.signbit(w[num])).all(), (g, w)


# ---- persistent buffers in one arena on huge pages (runtime/hostmem.py) ----------------------------

def test_hostmem_arena_is_aligned_writable_and_falls_back(monkeypatch):
    from runtime import hostmem
    big = hostmem.arena(hostmem.HUGE + 12345)
    assert big.dtype == np.uint8 and big.shape == (hostmem.HUGE + 12345,)
    big[:] = 7                      # writable end to end
    assert int(big[-1]) == 7 and int(big[0]) == 7
    if hostmem.ENABLED:             # anonymous memory, aligned to a huge page
        assert big.ctypes.data % hostmem.HUGE == 0
    small = hostmem.arena(1000)
    assert small.shape == (1000,) and small.base is None         # plain np.empty
    monkeypatch.setattr(hostmem, "ENABLED", False)
    off = hostmem.arena(hostmem.HUGE * 2)
    assert off.base is None and off.shape == (hostmem.HUGE * 2,)


def test_large_programs_carve_their_buffers_from_one_arena():
    """A program whose persistent buffers span a huge page allocates them as aligned pieces of
    one arena (small ones keep np.empty); values equal the reference either way."""
    F32 = dt.float32
    g, (x, y) = _g(((1024, 1024), F32), ((1024, 1024), F32))
    a = g.call("exp", g.call("mul", x, y))
    b = g.call("matmul", a, y)
    g.set_outputs([g.call("sum", g.call("add", b, a), dims=(1,), keepdim=False)])
    prog = check(g)
    assert prog.memory.persistent_bytes >= 2 << 20 and "_a = _arena(" in prog.source
    slot_lines = [ln for ln in prog.source.splitlines() if re.match(r" {4}_s\d+ = ", ln)]
    assert slot_lines and all("_a[" in ln for ln in slot_lines)
    offsets = [int(re.search(r"_a\[(\d+):", ln).group(1)) for ln in slot_lines]
    assert all(o % 64 == 0 for o in offsets)
    g, (x,) = _g(((4, 4), F32))
    g.set_outputs([g.call("sum", g.call("exp", x), dims=(1,), keepdim=False)])
    assert "_arena" not in check(g).source
