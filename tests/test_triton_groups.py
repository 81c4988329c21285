"""Generated Triton kernels for every fused group kind (compiler/codegen/triton_group.py), run
under Triton's interpreter on host memory with PyTorch blocked, and compared with the NumPy
lowering of the same IR nodes (Graph.run) on random inputs. Groups are built by hand from
traced framework graphs (softmax, log_softmax, layer_norm, cross_entropy forward and backward)
and from small hand-written graphs (matmul epilogues, batched matmul, gather, views).

The interpreter runs in a child process (this file with --worker), as in
test_triton_pointwise.py; it prints one JSON line per case.
"""
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = {"float32": (2e-5, 2e-6), "float16": (1e-2, 1e-3), "bfloat16": (3e-2, 1e-2),
       "float64": (1e-12, 1e-14)}


# ----------------------------------------------------------------------------- graphs

def _trace(fn, args, backward):
    """Forward (and backward) graphs of `fn` traced by framework.compile."""
    import framework as torch
    c = torch.compile(fn)
    out = c(*args)
    if backward:
        (out.sum() if out.ndim else out).backward()
    return c.graphs()[0], (c.backward_graphs()[0] if backward else None)


def _live(graph):
    """Nodes that reach the graph outputs (traced backward graphs keep dead nodes)."""
    need = {id(o) for o in graph.outputs}
    keep = []
    for n in reversed(graph.nodes):
        if any(id(o) in need for o in n.outputs):
            keep.append(n)
            need |= {id(a) for a in n.inputs if hasattr(a, "shape")}
    return keep[::-1]


def _group(graph, nodes, kind, gid=0):
    """Group(nodes) with the inputs it reads from outside and the outputs read outside."""
    from compiler.ir.graph import Value
    from compiler.ir.group import Group
    mine = {id(o) for n in nodes for o in n.outputs}
    ins, outs = [], []
    for n in nodes:
        for a in n.inputs:
            if isinstance(a, Value) and id(a) not in mine and all(a is not i for i in ins):
                ins.append(a)
    readers = [a for n in graph.nodes if n not in nodes for a in n.inputs] + list(graph.outputs)
    for n in nodes:
        for o in n.outputs:
            if any(o is r for r in readers):
                outs.append(o)
    return Group(gid, kind, nodes, ins, outs)


def _split(graph, spec):
    """spec: [(kind, predicate over (index, node))] -> groups over the live nodes."""
    live = _live(graph)
    groups, taken = [], set()
    for gid, (kind, pred) in enumerate(spec):
        nodes = [n for i, n in enumerate(live) if id(n) not in taken and pred(i, n)]
        taken |= {id(n) for n in nodes}
        groups.append(_group(graph, nodes, kind, gid))
    return groups


def _is(*ops):
    return lambda i, n: n.op in ops


def _dims0(n):
    return n.op == "sum" and tuple(n.attrs.get("dims") or ()) == (0,)


def _cases(rng, interpret=True):
    """name -> (graph, input arrays, groups, generate kwargs)."""
    import framework as torch
    import framework.nn.functional as F
    from compiler.ir.graph import Graph
    from runtime import dtypes as dt
    out = {}
    N, C = 6, 40
    x = torch.tensor(rng.normal(0, 2, (N, C)).astype(np.float32), requires_grad=True)
    w = torch.tensor(rng.normal(1, 0.5, (C,)).astype(np.float32), requires_grad=True)
    b = torch.tensor(rng.normal(0, 0.5, (C,)).astype(np.float32), requires_grad=True)
    t = torch.tensor(rng.integers(0, C, (N,)))
    every = [("reduction", lambda i, n: True)]
    for name, fn, args in [("softmax", lambda x: F.softmax(x, -1), (x,)),
                           ("log_softmax", lambda x: F.log_softmax(x, -1), (x,)),
                           ("layer_norm", lambda x, w, b: F.layer_norm(x, (C,), w, b), (x, w, b)),
                           ("cross_entropy", lambda x, t: F.cross_entropy(x, t), (x, t))]:
        fg, bg = _trace(fn, args, backward=True)
        if name == "layer_norm":
            # the weight/bias reshapes are graph outputs (saved): materialised as view groups
            fspec = [("view", lambda i, n, w=fg.inputs[1]: n.op == "reshape" and n.inputs[0] is w),
                     ("view", lambda i, n, b=fg.inputs[2]: n.op == "reshape" and n.inputs[0] is b),
                     ("reduction", lambda i, n: True)]
            bspec = [("reduction", lambda i, n: _dims0(n) or (n.op == "mul" and any(
                        o.op == "sum" and _dims0(o) for o in _consumers(bg, n)))
                      or (n.op in ("reshape", "add") and len(n.outputs[0].shape) == 1)),
                     ("reduction", lambda i, n: True)]
        elif name == "cross_entropy":
            # per-row log_softmax + gather + weighting, then the batch mean (another row)
            fspec = [("reduction", lambda i, n: not (_dims0(n) or (n.op == "div" and
                                                                   n.outputs[0].shape == ()))),
                     ("reduction", lambda i, n: True)]
            # backward: scalar prologue (views of intermediates: row tiles), the target
            # pick's gradient (plane_scatter: one plane per row, its own kernel), then the row
            # reduction
            bspec = [("extern", _is("plane_scatter")),
                     ("pointwise", lambda i, n: len(n.outputs[0].shape) <= 1 or
                      (n.op == "reshape" and n.outputs[0].shape[-1] == 1)),
                     ("reduction", lambda i, n: True)]
        else:
            fspec, bspec = every, every
        out[name] = (fg, fspec)
        out[name + "_backward"] = (bg, bspec)
        if name == "cross_entropy":
            # the whole forward, batch mean included, as one group: the closing reduction
            # runs in the one program that holds every row
            out["cross_entropy_closed"] = (fg, every)
            # nll_loss of given log-probabilities: the row pick of a group input opens the
            # group (its picked dim is the reduced one), the batch mean closes it
            lp = torch.tensor(rng.normal(-3, 1, (N, C)).astype(np.float32))
            ng, _ = _trace(lambda z, y: F.nll_loss(z, y), (lp, t), backward=False)
            ng.test_ints = lambda rng, shape: rng.integers(0, C, shape)
            out["nll_of_input_closed"] = (ng, every)
            # every dim summed, the picked size-1 dim among them (it reduces nothing)
            pick = torch.tensor(rng.integers(0, C, (N, 1)))
            sg1, _ = _trace(lambda z, i: torch.gather(z, 1, i).sum(), (lp, pick), backward=False)
            sg1.test_ints = lambda rng, shape: rng.integers(0, C, shape)
            out["gather_sum_all"] = (sg1, every)
        if name == "cross_entropy":
            # as many rows as classes, some targets ignored: the per-row target mask must stay
            # on the row dim (right alignment alone would put it on the column dim)
            xs = torch.tensor(rng.normal(0, 2, (8, 8)).astype(np.float32))
            ts = torch.tensor(np.where(np.arange(8) % 3 == 0, -100, rng.integers(0, 8, 8)))
            sg, _ = _trace(fn, (xs, ts), backward=False)
            sg.test_ints = lambda rng, shape: np.where(np.arange(shape[0]) % 3 == 0, -100,
                                                       rng.integers(0, 8, shape))
            out["cross_entropy_square"] = (sg, fspec)

    # pointwise chain over a transposed (folded permute) input, a broadcast bias, a cast
    g = Graph("chain")
    xa = g.add_input("x", (C, N), dt.float32)
    ya = g.add_input("y", (C,), dt.float32)
    v = g.call("add", g.call("permute", xa, dims=(1, 0)), ya)
    v = g.call("cast", g.call("maximum", g.call("mul", v, 0.5), 0.0), dtype=dt.float16)
    g.set_outputs([v])
    out["pointwise_chain"] = (g, [("pointwise", lambda i, n: True)])

    # a view group: materialise a transposed slice
    g = Graph("view")
    xa = g.add_input("x", (N, C), dt.float32)
    v = g.call("slice", g.call("permute", xa, dims=(1, 0)), dim=0, start=3, stop=C, step=2)
    g.set_outputs([v])
    out["view_copy"] = (g, [("view", lambda i, n: True)])

    # argmax/amin/mean over the last dim; a sum over a non-last dim (permuted index map)
    g = Graph("rowstats")
    xa = g.add_input("x", (3, N, C), dt.float32)
    s = g.call("sum", xa, dims=(2,), keepdim=False)
    g.set_outputs([g.call("argmax", xa, dim=2, keepdim=False), g.call("amin", xa, dims=(2,)),
                   g.call("div", s, float(C))])
    out["argmax_amin_mean"] = (g, every)
    g = Graph("colsum")
    xa = g.add_input("x", (N, C), dt.float16)
    g.set_outputs([g.call("sum", g.call("exp", xa), dims=(0,), keepdim=True)])
    out["sum_dim0_f16"] = (g, every)

    # matmul: linear (x @ w.T + b), gelu-tanh, residual, fp32 and fp16; batched broadcast
    # bfloat16 only ahead of time: Triton's interpreter has no bfloat16 host arrays
    for d in ("float32", "float16") + (() if interpret else ("bfloat16",)):
        D = dt._BY_NAME[d]
        g = Graph("linear")
        xa = g.add_input("x", (33, 40), D)
        wa = g.add_input("w", (24, 40), D)
        ba = g.add_input("b", (24,), D)
        ra = g.add_input("res", (33, 24), D)
        h = g.call("add", g.call("matmul", xa, g.call("permute", wa, dims=(1, 0))), ba)
        inner = g.call("mul", g.call("add", h, g.call("mul", g.call("mul", g.call("mul", h, h),
                                                                         h), 0.044715)),
                       0.7978845608028654)
        gelu = g.call("mul", g.call("mul", h, 0.5), g.call("add", g.call("tanh", inner), 1.0))
        g.set_outputs([g.call("add", gelu, ra)])
        out[f"matmul_gelu_residual_{d}"] = (g, [("matmul", lambda i, n: True)])
    g = Graph("bmm")
    xa = g.add_input("a", (2, 1, 17, 20), dt.float32)
    wa = g.add_input("b", (3, 20, 19), dt.float32)
    g.set_outputs([g.call("maximum", g.call("matmul", xa, wa), 0.0)])
    out["batched_matmul_relu"] = (g, [("matmul", lambda i, n: True)])
    # cat of three along dim 1: a transposed (folded permute) float16 input cast to float32,
    # a size-1 piece, and a legacy 1-D empty tensor that adds nothing
    g = Graph("cat")
    ca = g.add_input("a", (4, 3, 5), dt.float32)
    cb = g.call("permute", g.add_input("b", (5, 2, 4), dt.float16), dims=(2, 1, 0))
    cc = g.add_input("c", (4, 1, 5), dt.float32)
    ce = g.add_input("e", (0,), dt.float32)
    g.set_outputs([g.call("cat", ca, cb, ce, cc, dim=-2)])
    out["cat"] = (g, [("extern", lambda i, n: True)])
    # a matrix-vector product (N = 1) and a row vector times a matrix (M = 1): the stores
    # broadcast the size-1 dim to the tile (an M x 1 store failed to compile)
    for name, (sa, sb) in (("matmul_n1", ((33, 20), (20, 1))), ("matmul_m1", ((1, 20), (20, 7)))):
        g = Graph(name)
        g.set_outputs([g.call("add", g.call("matmul", g.add_input("a", sa, dt.float32),
                                            g.add_input("b", sb, dt.float32)), 1.0)])
        out[name] = (g, [("matmul", lambda i, n: True)])

    # gather and index_select (negative indices)
    g = Graph("gather")
    xa = g.add_input("x", (N, C), dt.float32)
    ia = g.add_input("idx", (N, 3), dt.int64)
    g.set_outputs([g.call("gather", xa, ia, dim=1)])
    out["gather"] = (g, [("extern", lambda i, n: True)])
    g = Graph("index_select")
    xa = g.add_input("x", (N, C), dt.float32)
    ia = g.add_input("idx", (5,), dt.int64)
    g.set_outputs([g.call("index", xa, ia, pos=(0,))])
    out["index_select"] = (g, [("extern", lambda i, n: True)])

    # max pooling (tests/test_triton_max_pool.py covers every geometry): overlapping 3x3
    # windows with padding, values and indices; its backward over overlapping windows
    g = Graph("max_pool")
    xa = g.add_input("x", (2, 3, 7, 6), dt.float32)
    vals, inds = g.call("window_max", xa, kernel=(3, 3), stride=(2, 2), dilation=(1, 1),
                        padding=((1, 1), (1, 1)))
    g.set_outputs([vals, inds])
    out["window_max"] = (g, [("extern", lambda i, n: True)])
    g = Graph("max_pool_backward")
    ga = g.add_input("g", (2, 3, 4, 3), dt.float32)
    ia = g.add_input("idx", (2, 3, 4, 3), dt.int64)
    g.set_outputs([g.call("plane_scatter", ga, ia, size=(7, 6), unique=False)])
    g.test_ints = lambda rng, shape: rng.integers(0, 42, shape)
    out["plane_scatter"] = (g, [("extern", lambda i, n: True)])

    # indexing and scatters (tests/test_interpret_device.py runs them eagerly on every dtype)
    ext = [("extern", lambda i, n: True)]
    small = (lambda rng, shape: rng.integers(-4, 4, shape))    # in range of dims >= 4
    g = Graph("index_multi")        # two index tensors at dims 0 and 2 (not adjacent), an
    xa = g.add_input("x", (4, 5, 6), dt.float32)     # int32 one, broadcast (3, 1) with (2,)
    g.set_outputs([g.call("index", xa, g.add_input("i", (3, 1), dt.int64),
                          g.add_input("j", (2,), dt.int32), pos=(0, 2))])
    g.test_ints = small
    out["index_multi"] = (g, ext)
    g = Graph("index_put_accumulate")    # duplicate positions add up (atomic adds)
    xa = g.add_input("x", (6, 5), dt.float32)
    g.set_outputs([g.call("index_put", xa, g.add_input("v", (9, 5), dt.float32),
                          g.add_input("i", (9,), dt.int64), pos=(0,), accumulate=True)])
    g.test_ints = small
    out["index_put_accumulate"] = (g, ext)
    g = Graph("index_put_scalar")        # a float64 scalar value (a constexpr), two indices
    xa = g.add_input("x", (5, 4, 6), dt.float64)
    g.set_outputs([g.call("index_put", xa, 2.5, g.add_input("i", (3,), dt.int64),
                          g.add_input("j", (3,), dt.int64), pos=(1, 2))])
    g.test_ints = small
    out["index_put_scalar"] = (g, ext)
    for red, d in (("amax", dt.float64), ("amin", dt.float32), ("add", dt.int64),
                   (None, dt.float32)):
        g = Graph(f"scatter_{red}")      # duplicate targets along dim 0; src wider than index
        xa = g.add_input("x", (4, 6), d)
        rows = 5 if red else 4           # reduce None: a permutation per column (unique)
        g.set_outputs([g.call("scatter", xa, g.add_input("idx", (rows, 6), dt.int64),
                              g.add_input("src", (5, 7), d), dim=0, reduce=red)])
        g.test_ints = ((lambda rng, shape: rng.integers(0, 4, shape)) if red else
                       (lambda rng, shape: np.argsort(rng.random(shape), axis=0)))
        out[f"scatter_{red}"] = (g, ext)
    g = Graph("slice_scatter")           # step 3 along the last dim, from a negative start
    xa = g.add_input("x", (5, 9), dt.float32)
    g.set_outputs([g.call("slice_scatter", xa, g.add_input("src", (5, 3), dt.float32), dim=-1,
                          start=-8, stop=None, step=3)])
    out["slice_scatter"] = (g, ext)
    g = Graph("diagonal_scatter")        # below the diagonal of dims (2, 0)
    xa = g.add_input("x", (3, 4, 5), dt.float16)
    g.set_outputs([g.call("diagonal_scatter", xa, g.add_input("src", (4, 3), dt.float16),
                          offset=-1, dim1=2, dim2=0)])
    out["diagonal_scatter"] = (g, ext)
    if not interpret:      # ahead of time only: atomic adds of 16-bit floats
        for d in ("float16", "bfloat16"):
            g = Graph(f"index_put_{d}")
            xa = g.add_input("x", (6, 5), dt._BY_NAME[d])
            g.set_outputs([g.call("index_put", xa, g.add_input("v", (9, 5), dt._BY_NAME[d]),
                                  g.add_input("i", (9,), dt.int64), pos=(0,),
                                  accumulate=True)])
            out[f"index_put_{d}"] = (g, ext)
    return out


def _consumers(graph, n):
    return [m for m in graph.nodes if any(a is o for a in m.inputs for o in n.outputs)]


def _inputs(graph, rng):
    arrs = []
    for v in graph.inputs:
        if v.dtype.name == "int64":
            hi = 5 if v.name == "idx" and v.shape == (5,) else None
            if getattr(graph, "test_ints", None) is not None:     # (class targets)
                arrs.append(graph.test_ints(rng, v.shape).astype(np.int64))
            elif hi:
                arrs.append(rng.integers(-6, 6, v.shape).astype(np.int64))
            else:
                lim = 40
                arrs.append(rng.integers(0, lim, v.shape).astype(np.int64))
        else:
            arrs.append(rng.normal(0, 1, v.shape).astype(v.dtype.np))
    return arrs


def _env(graph, arrays):
    """Every value of the graph under the NumPy lowerings."""
    outs = graph.outputs
    vals = list(graph.inputs) + [o for n in graph.nodes for o in n.outputs]
    graph.outputs = vals
    try:
        res = graph.run(*arrays)
    finally:
        graph.outputs = outs
    return {id(v): np.asarray(r) for v, r in zip(vals, res)}


def _compare(got, ref):
    if got.shape != ref.shape or got.dtype != ref.dtype:
        return False, f"shape/dtype {got.shape} {got.dtype} vs {ref.shape} {ref.dtype}"
    tol = TOL.get(ref.dtype.name)
    if tol is None:
        bad = int(np.sum(got != ref))
        return bad == 0, f"{bad} of {ref.size} differ"
    g, r = got.astype(np.float64), ref.astype(np.float64)
    err = np.abs(g - r) / (tol[1] + tol[0] * np.abs(r))
    e = float(np.nanmax(err)) if err.size else 0.0
    return bool(e <= 1.0 and np.array_equal(np.isnan(g), np.isnan(r))), f"max err/tol {e:.3g}"


def _run_group(graph, grp, env, max_block=None):
    from compiler.codegen.triton_group import generate
    from runtime.interpret import HostTensor
    k = generate(grp, graph, max_block=max_block, interpret=True)
    ins = [HostTensor(np.ascontiguousarray(env[id(v)])) for v in grp.inputs]
    outs = [np.full(o.shape, 77, o.dtype.np) for o in grp.outputs]
    k.launch(ins, [HostTensor(o) for o in outs], interpret=True)
    res = [(o.name, *_compare(got, env[id(o)])) for o, got in zip(grp.outputs, outs)]
    return k, res


def worker():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _interp import become_interpreter_worker
    become_interpreter_worker(ROOT)
    np.seterr(all="ignore")
    import compiler.ops  # noqa: F401
    rng = np.random.default_rng(7)
    for name, (graph, spec) in _cases(rng).items():
        arrays = _inputs(graph, rng)
        env = _env(graph, arrays)
        for mb in (None, 4):     # 4: every row spans several column blocks
            rec = {"case": name, "looped": mb is not None, "kernels": []}
            try:
                groups = _split(graph, spec)
                ok, msgs = True, []
                if mb is not None and not any(g.kind == "reduction" for g in groups):
                    continue
                for grp in groups:
                    if not grp.nodes:
                        continue
                    k, res = _run_group(graph, grp, env, mb)
                    rec["kernels"].append({"name": k.name, "kind": grp.kind,
                                           "nodes": len(grp.nodes), "source": k.source})
                    for oname, good, msg in res:
                        ok &= good
                        msgs.append(f"{k.name}:{oname}: {msg}")
                rec.update(ok=ok, msg="; ".join(msgs))
            except Exception as e:
                import traceback
                rec.update(ok=False, msg=f"{type(e).__name__}: {e}\n{traceback.format_exc()[-1500:]}")
            print(json.dumps(rec), flush=True)
    print(json.dumps({"done": True, "torch_imported": "torch" in sys.modules}), flush=True)


# ----------------------------------------------------------------------------- tests

CASES = ["softmax", "softmax_backward", "log_softmax", "log_softmax_backward", "layer_norm",
         "layer_norm_backward", "cross_entropy", "cross_entropy_backward", "cross_entropy_square",
         "pointwise_chain",
         "view_copy", "argmax_amin_mean", "sum_dim0_f16", "matmul_gelu_residual_float32",
         "matmul_gelu_residual_float16", "batched_matmul_relu",
         "gather", "index_select", "window_max", "plane_scatter", "cross_entropy_closed",
         "nll_of_input_closed", "gather_sum_all", "matmul_n1", "matmul_m1", "cat"]
INDEXING = ["index_multi", "index_put_accumulate", "index_put_scalar", "scatter_amax",
            "scatter_amin", "scatter_add", "scatter_None", "slice_scatter", "diagonal_scatter"]
CASES += INDEXING


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _interp import run_worker
    recs = run_worker(__file__, ROOT, str(tmp_path_factory.mktemp("kiln_cache")))
    by = {}
    for r in recs[:-1]:
        by[(r["case"], r["looped"])] = r
    by["__done__"] = recs[-1]
    return by


@pytest.mark.parametrize("case", CASES)
def test_group_kernel_matches_numpy(results, case):
    r = results.get((case, False))
    assert r is not None, f"{case}: no result"
    assert r["ok"], r["msg"]
    assert r["kernels"]


@pytest.mark.parametrize("case", [c for c in CASES if "matmul" not in c and c not in
                                  ("pointwise_chain", "view_copy", "gather", "index_select",
                                   "window_max", "plane_scatter", "cross_entropy_closed",
                                   "nll_of_input_closed", "gather_sum_all",
                                   "cat") + tuple(INDEXING)])
def test_looped_reduction_matches_numpy(results, case):
    r = results.get((case, True))
    assert r is not None and r["ok"], r and r["msg"]
    assert any("looped over column blocks" in k.get("source", "") for k in r["kernels"])


def test_one_kernel_per_normalisation(results):
    # softmax / log_softmax / layer_norm forward and backward: the whole graph is one kernel
    for case in ("softmax", "softmax_backward", "log_softmax", "log_softmax_backward"):
        ks = results[(case, False)]["kernels"]
        assert len(ks) == 1 and ks[0]["kind"] == "reduction", (case, ks)
        assert "persistent rows" in ks[0]["source"]
    src = results[("softmax", False)]["kernels"][0]["source"]
    assert "def fused_amax_sub_exp_sum_div_0(" in src
    assert "# v4: f32[r0, c1] = div(v2: f32[r0, c1], v3: f32[r0, 1])\n    v4 = v2 / v3" in src
    ce = results[("cross_entropy", False)]["kernels"]
    assert [k["kind"] for k in ce] == ["reduction", "reduction"]   # rows, then the batch mean
    assert "tl.where(mask & (i1 == " in ce[0]["source"]             # gather of the target
    ln = results[("layer_norm", False)]["kernels"]
    assert sum(k["kind"] == "reduction" for k in ln) == 1


def test_matmul_source(results):
    src = results[("matmul_gelu_residual_float32", False)]["kernels"][0]["source"]
    assert 'tl.dot(a, b, input_precision="ieee")' in src
    assert "CONFIGS = [" in src and "# epilogue on the accumulator tile" in src
    assert "kiln_tanh(" in src
    src16 = results[("matmul_gelu_residual_float16", False)]["kernels"][0]["source"]
    assert "acc.to(tl.float16)" in src16
    bsrc = results[("batched_matmul_relu", False)]["kernels"][0]["source"]
    assert "bid = tl.program_id(1)" in bsrc


def test_worker_never_imported_torch(results):
    assert results["__done__"]["torch_imported"] is False


def test_extern_fallback_is_named():
    sys.path.insert(0, ROOT)
    import compiler.ops  # noqa: F401
    from compiler.ir.graph import Graph
    from compiler.codegen.triton_group import generate, ExternKernel
    from runtime import dtypes as dt
    g = Graph()
    x = g.add_input("x", (4, 4), dt.float32)
    g.set_outputs([g.call("inv", x)])
    k = generate(_group(g, g.nodes, "extern"), g)
    assert isinstance(k, ExternKernel)
    assert k.fallback == "inv: cupy.linalg.inv on the GPU (NumPy on the interpret device)"
    # an op without an array-module lowering goes through the host, and says so
    g = Graph()
    x = g.add_input("x", (6,), dt.float32)
    g.set_outputs([g.call("nonzero", x)])
    k = generate(_group(g, g.nodes, "extern"), g)
    assert k.fallback == "nonzero: the NumPy lowering via host copy"


# ------------------------------------------------------------- ahead-of-time compilation

def test_every_group_kernel_compiles_to_sm90_ptx():
    pytest.importorskip("triton")
    sys.path.insert(0, ROOT)
    import compiler.ops  # noqa: F401
    from compiler import aot
    from compiler.codegen.triton_group import generate, ExternKernel
    if aot.tool("ptxas") is None:
        pytest.skip("triton wheel ships no ptxas: cannot assemble")
    rng = np.random.default_rng(0)
    bad, n = [], 0
    want = {"softmax", "layer_norm_backward", "cross_entropy", "pointwise_chain", "view_copy",
            "argmax_amin_mean", "matmul_gelu_residual_float16", "matmul_gelu_residual_float32",
            "matmul_gelu_residual_bfloat16",
            "batched_matmul_relu", "gather", "index_select", "window_max", "plane_scatter",
            "index_put_float16", "index_put_bfloat16"} | set(INDEXING)
    for name, (graph, spec) in _cases(rng, interpret=False).items():
        if name not in want:
            continue
        for grp in _split(graph, spec):
            if not grp.nodes:
                continue
            k = generate(grp, graph)
            if isinstance(k, ExternKernel):
                continue
            for b in k.before:         # a scatter's first launch (the copy of x)
                try:
                    art = aot.compile_kernel(b, arch=90)
                    n += ".target sm_90" in art.ptx and bool(art.cubin)
                except Exception as e:
                    bad.append(f"{name}/{b.name}: {e}"[:800])
            try:
                art = aot.compile_kernel(k, arch=90)
            except Exception as e:
                bad.append(f"{name}/{k.name}: {e}"[:800])
                continue
            n += 1
            if ".target sm_90" not in art.ptx or not art.cubin:
                bad.append(f"{name}/{k.name}: no sm_90 ptx/cubin")
            # (the atomic's operation: Triton 3.9 emits it as red.*, 3.6 as atom.*)
            want_atomic = {"index_put_accumulate": "global.gpu.relaxed.add.f32",
                           "scatter_amax": "global.gpu.relaxed.max.s64",
                           "scatter_add": "global.gpu.relaxed.add.u64",
                           "index_put_bfloat16": "add.noftz.bf16"}.get(name)
            if want_atomic and want_atomic not in art.ptx:
                bad.append(f"{name}/{k.name}: no {want_atomic} in the PTX")
            if name.endswith("float32"):       # exact fp32 runs on FMA; tf32 on tensor cores
                art = aot.compile_kernel(generate(grp, graph, allow_tf32=True), arch=90)
            if k.kind == "matmul" and "float" in name and "mma" not in art.ptx:
                bad.append(f"{name}/{k.name}: no tensor-core mma in the PTX")
    assert not bad, "\n".join(bad)
    assert n >= 14 + 2 * len(INDEXING)


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    worker()


def test_closing_reduction_in_one_program(results):
    # cross_entropy's forward with its batch mean: one kernel, every row in one program
    ks = results[("cross_entropy_closed", False)]["kernels"]
    assert len(ks) == 1 and ks[0]["kind"] == "reduction", ks
    assert "(closing: all rows are in this program)" in ks[0]["source"]
    assert "axis=0, keep_dims=True" in ks[0]["source"]
    for case in ("nll_of_input_closed", "gather_sum_all"):    # opened by the row pick
        ks = results[(case, False)]["kernels"]
        assert len(ks) == 1 and "(closing: all rows are in this program)" in ks[0]["source"], ks
    # rows that span several column blocks cannot close in one program: a clear refusal (the
    # fuser's closing cap keeps such groups away from the Triton backend)
    r = results[("cross_entropy_closed", True)]
    assert not r["ok"] and "does not fit one program" in r["msg"], r


def test_matmul_tile_choice():
    # a large product is tuned over every config; a small one gets one tile that still gives
    # every SM a program (or the smallest tile), so a training step compiles no tuning sweep
    from compiler.codegen.triton_group import _mm_configs, _MM_CONFIGS, SM_COUNT
    from runtime import dtypes as dt
    assert _mm_configs(dt.float16, 4096, 4096, 4096, 1) == _MM_CONFIGS[2]
    assert _mm_configs(dt.float32, 4096, 4096, 4096, 1) == _MM_CONFIGS[4]
    (c,) = _mm_configs(dt.float32, 1024, 1024, 512, 1)
    assert -(-1024 // c[0]) * -(-1024 // c[1]) >= SM_COUNT and c != _MM_CONFIGS[4][-1]
    # the MLP's first layer (128x784 @ 784x512): 16x16 tiles give 256 programs; K=784 runs
    # in 13 blocks of 64 through a 3-stage pipeline (was 49 blocks of 16: ~50 us on an H200)
    assert _mm_configs(dt.float32, 128, 512, 784, 1) == [(16, 16, 64, 4, 3)]
    assert _mm_configs(dt.float16, 128, 512, 784, 1) == [(16, 16, 128, 4, 3)]
    # short K: one block of K's size (at least 16, tl.dot's minimum), no pipeline to fill
    assert _mm_configs(dt.float32, 512, 784, 128, 1) == [(32, 32, 64, 4, 2)]
    assert _mm_configs(dt.float32, 8, 8, 8, 1) == [(16, 16, 16, 4, 2)]
    (c,) = _mm_configs(dt.bfloat16, 64, 64, 64, 40)          # batched: programs per batch
    assert -(-64 // c[0]) * -(-64 // c[1]) * 40 >= SM_COUNT


def _layer_norm_group(N, C):
    sys.path.insert(0, ROOT)
    import compiler.ops  # noqa: F401
    from compiler.ir.graph import Graph
    from compiler.ir.group import Group
    from runtime import dtypes as dt
    g = Graph("layer_norm")
    x = g.add_input("x", (N, C), dt.float32)
    w = g.add_input("w", (C,), dt.float32)
    d = g.call("sub", x, g.call("div", g.call("sum", x, dims=(1,), keepdim=True), float(C)))
    var = g.call("div", g.call("sum", g.call("mul", d, d), dims=(1,), keepdim=True), float(C))
    g.set_outputs([g.call("mul", g.call("mul", d, g.call("rsqrt", g.call("add", var, 1e-5))), w)])
    return g, Group(0, "reduction", g.nodes, list(g.inputs), list(g.outputs))


def test_row_tile_choice():
    # a large row kernel is tuned on the GPU over a few tiles around the generated one (which
    # comes first: it is what AOT compiles); small kernels, closing reductions and the
    # interpreter keep the one tile
    from compiler.codegen.triton_group import generate, ROW_TUNE_ELEMENTS, _row_configs
    g, grp = _layer_norm_group(8192, 4096)
    k = generate(grp, g)
    assert k.configs[0] == ({"BLOCK_M": 1, "BLOCK_N": 4096}, {"num_warps": 8, "num_stages": 1})
    assert k.launch_config() == ({"BLOCK_M": 1, "BLOCK_N": 4096}, {"num_warps": 8})
    tiles = [(m["BLOCK_M"], o["num_warps"]) for m, o in k.configs]
    assert tiles == [(1, 8), (1, 16), (1, 4), (2, 8), (2, 16)], tiles
    assert "CONFIGS = [(1, 4096, 8), (1, 4096, 16)" in k.source
    assert k.aot_options() == {"num_warps": 8, "num_stages": 1}
    assert generate(grp, g, interpret=True).configs is None
    g, grp = _layer_norm_group(64, 4096)
    assert 64 * 4096 < ROW_TUNE_ELEMENTS and generate(grp, g).configs is None
    # rows per program never exceed the rows there are, nor warps 16; tile <= 16384 elements
    for m, o in _row_configs(1, 16384, 16, 4096, 16384):
        assert m["BLOCK_M"] * m["BLOCK_N"] <= 1 << 14 and 2 <= o["num_warps"] <= 16
    cfg = _row_configs(4, 1024, 8, 4, 1 << 20)
    assert {m["BLOCK_M"] for m, _ in cfg} == {4}
    # a looped row (1024-column blocks over 2^20 columns) also tries half-width blocks
    assert sorted({m["BLOCK_N"] for m, _ in cfg}) == [512, 1024]
    assert (({"BLOCK_M": 4, "BLOCK_N": 512}, {"num_warps": 16, "num_stages": 1}) in cfg)


def test_tuned_row_kernel_tiles_compile_to_sm90_ptx():
    # every tile the GPU may pick is a valid kernel (here: the doubled-rows, doubled-warps one)
    pytest.importorskip("triton")
    from compiler import aot
    from compiler.codegen.triton_group import generate
    if aot.tool("ptxas") is None:
        pytest.skip("triton wheel ships no ptxas: cannot assemble")
    g, grp = _layer_norm_group(8192, 4096)
    k = generate(grp, g)
    meta, opts = k.configs[-1]
    sig, consts = k.signature()
    consts.update(meta)
    art = aot.compile_fn(k.function(False), sig, consts, arch=90, name=k.name, **opts)
    assert ".target sm_90" in art.ptx and art.cubin and art.num_warps == 16


def test_tuning_picks_the_fastest_config_on_scratch_outputs(monkeypatch):
    # the sweep (GPU only) without a GPU: launches recorded, times from the config; the real
    # outputs are never written by it, a config that cannot run is skipped
    from compiler.codegen.triton_group import generate
    from runtime import cuda
    g, grp = _layer_norm_group(8192, 4096)
    k = generate(grp, g)
    calls = []

    class Fn:
        def __getitem__(self, grid):
            def run(*args, **kw):
                if kw["num_warps"] == 4:
                    raise RuntimeError("out of resources")
                calls.append((grid, args, kw))
            return run

    class Buf:
        def __init__(self, shape, tag):
            self.shape, self.tag = shape, tag
            self.dtype = g.outputs[0].dtype

        def data_ptr(self):
            return 0

        def stride(self, dim=None):
            st = (self.shape[1], 1) if len(self.shape) == 2 else (1,)
            return st if dim is None else st[dim]

    monkeypatch.setattr(cuda, "scratch_like", lambda o: Buf(o.shape, "scratch"))
    monkeypatch.setattr(cuda, "time_ms", lambda f: (f(), {(1, 8): 3.0, (1, 16): 2.0, (2, 8): 1.5,
                                                         (2, 16): 2.5}[
        (calls[-1][2]["BLOCK_M"], calls[-1][2]["num_warps"])])[1])
    real = Buf((8192, 4096), "real")
    ins = [Buf((8192, 4096), "x"), Buf((4096,), "w")]
    meta, opts = k._tune(Fn(), ins, [real])
    assert (meta["BLOCK_M"], opts["num_warps"]) == (2, 8)
    assert all(real not in args for _, args, _ in calls) and len(calls) == 4
    assert calls[0][0] == (8192,) and calls[2][0] == (4096,)      # each config's own grid
    assert len(k.tuning) == 4


def test_aot_specialises_like_a_launch():
    # Triton's JIT makes an int argument equal to 1 a constant and marks ints divisible by 16
    # and 16-byte-aligned pointers; AOT compiles with the same marks for contiguous buffers,
    # so the PTX a dump shows has the GPU's vectorised loads
    pytest.importorskip("triton")
    import re
    from compiler import aot
    from compiler.codegen.triton_group import generate
    sig, consts, attrs = aot.specialize_like_launch(
        ["p", "q", "n", "s1", "s7"], {"p": "*fp32", "q": "*fp32", "n": "i32", "s1": "i32",
                                      "s7": "i32"}, {},
        {"p": True, "q": False, "n": 4096, "s1": 1, "s7": 7})
    assert sig["s1"] == "constexpr" and consts == {"s1": 1}
    assert attrs == {(0,): [["tt.divisibility", 16]], (2,): [["tt.divisibility", 16]]}
    g, grp = _layer_norm_group(8192, 4096)
    k = generate(grp, g)
    vals = k.typical_args()
    assert vals["x_stride1"] == 1 and vals["x_stride0"] == 4096 and vals["x_ptr"] is True
    if aot.tool("ptxas") is None:
        pytest.skip("triton wheel ships no ptxas: cannot assemble")
    ptx = aot.compile_kernel(k, arch=90).ptx
    assert re.search(r"ld\.global\S*\.v4\.b32", ptx) and re.search(r"st\.global\S*\.v4\.b32", ptx)
