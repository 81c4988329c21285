"""Welford variance in generated row kernels (compiler/codegen/triton_group.py): a group that
computes a sum and the sum of squared deviations from its mean (layer_norm, var) can do both
in one pass, persistent or looped over column blocks; large row kernels carry such forms as
variants that the first GPU launch times against the default. Kernels run through Triton's
interpreter in a child process and are compared with NumPy in float64."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _interp  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

GRAPHS = r'''
from compiler.ir.graph import Graph
from compiler.ir.group import Group
from runtime import dtypes as dt

def variance_graph(N, C, kind, dtype=dt.float32):
    g = Graph(kind)
    x = g.add_input("x", (N, C), dtype)
    w = g.add_input("w", (C,), dtype)
    d = g.call("sub", x, g.call("div", g.call("sum", x, dims=(1,), keepdim=True), float(C)))
    if kind == "layer_norm":
        var = g.call("div", g.call("sum", g.call("mul", d, d), dims=(1,), keepdim=True),
                     float(C))
        g.set_outputs([g.call("mul", g.call("mul", d, g.call("rsqrt", g.call("add", var, 1e-5))),
                              w)])
    else:      # torch.var(x, 1): unbiased, keepdim=False; the weight is unused
        g.set_outputs([g.call("div", g.call("sum", g.call("mul", d, d), dims=(1,),
                                            keepdim=False), float(C - 1))])
    return g, Group(0, "reduction", g.nodes, list(g.inputs), list(g.outputs))
'''

WORKER = r'''
import json, sys
sys.path.insert(0, "tests")
from _interp import become_interpreter_worker
become_interpreter_worker(".")
import numpy as np
import compiler.ops
from compiler.codegen.triton_group import _reduction
from runtime.interpret import HostTensor
''' + GRAPHS + r'''
rng = np.random.default_rng(0)
for kind in ("layer_norm", "var"):
    for N, C in ((6, 50), (4, 700)):
        g, grp = variance_graph(N, C, kind)
        # an offset mean: where a naive E[x^2] - E[x]^2 would lose digits
        host = [(rng.standard_normal(v.shape) * 3 + 100).astype(np.float32) for v in g.inputs]
        ref = np.asarray(g.run(*[h.astype(np.float64) for h in host])[0])
        for mb, label, hoist, unroll in ((None, "persistent", False, False),
                                         (None, "persistent", True, False),
                                         (16, "looped", False, False),
                                         (16, "looped", False, True)):
            for wf in (False, True):
                k = _reduction(grp, mb, True, welford=wf, hoist=hoist, unroll=unroll)
                out = np.empty(g.outputs[0].shape, np.float32)
                k.launch([HostTensor(h, v.dtype) for h, v in zip(host, g.inputs)],
                         [HostTensor(out, g.outputs[0].dtype)], True)
                err = float(np.max(np.abs(out - ref)) / np.max(np.abs(ref)))
                print(json.dumps({"kind": kind, "shape": [N, C], "form": label,
                                  "welford": wf, "err": err, "hoist": hoist,
                                  "unroll": unroll, "static": "tl.static_range" in k.source,
                                  "loads_first": "every operand loaded first" in k.source,
                                  "one_pass": "Welford" in k.source,
                                  "looped": "looped over column blocks" in k.source}))
'''


@pytest.fixture(scope="module")
def results():
    return [json.loads(line) for line in _interp.run_script(WORKER, ROOT)]


def test_welford_matches_numpy(results):
    assert len(results) == 32
    for r in results:
        assert r["static"] == r["unroll"] and r["loads_first"] == r["hoist"], r
        # (errors relative to the largest output, inputs offset by 100: two-pass is exact to
        # a few float32 roundings; Welford's merges round a little more, as PyTorch's and
        # Inductor's GPU layer_norm do: 5e-6 at most here)
        assert r["err"] < (2e-5 if r["welford"] else 5e-6), r
        assert r["one_pass"] == r["welford"] and r["looped"] == (r["form"] == "looped"), r


def test_large_row_kernels_carry_variants():
    sys.path.insert(0, ROOT)
    import compiler.ops  # noqa: F401
    from compiler.codegen.triton_group import generate, ROW_LOOP_BLOCK
    ns = {}
    exec(GRAPHS, ns)
    g, grp = ns["variance_graph"](8192, 4096, "layer_norm")
    k = generate(grp, g)
    names = [v.name for v in k.variants]
    assert names == [k.name + s for s in ("_welford", "_looped", "_looped_welford", "_hoisted",
                                          "_unrolled", "_unrolled_welford", "_strided")], names
    looped = k.variants[1]
    assert looped.consts["BLOCK_N"] == ROW_LOOP_BLOCK and "looped over column blocks" in \
        looped.source and "Welford" not in looped.source
    assert "kiln_welford_combine" in k.variants[0].source
    assert "every operand loaded first" in k.variants[3].source
    assert "tl.static_range(0, 4096, BLOCK_N)" in k.variants[4].source
    strided = k.variants[6].source
    # the weights are loaded once per program, before the loop over row blocks
    assert strided.index("w = tl.load(") < strided.index("for pid in tl.range(") < \
        strided.index("x = tl.load(")
    assert k.variants[6].grid(k.variants[6].consts) == (512,)     # 8192 blocks: 16 each
    assert generate(grp, g, interpret=True).variants == ()
    g, grp = ns["variance_graph"](64, 4096, "layer_norm")          # small: no variants
    assert generate(grp, g).variants == ()
    g, grp = ns["variance_graph"](8192, 1024, "var")               # fits one loop block
    k = generate(grp, g)
    assert [v.name[len(k.name):] for v in generate(grp, g).variants] == ["_welford",
                                                                          "_hoisted", "_strided"]
    g, grp = ns["variance_graph"](512, 20000, "layer_norm")        # looped rows: not strided
    assert not [v for v in generate(grp, g).variants if v.name.endswith("_strided")]


def test_variants_compile_to_sm90_ptx():
    pytest.importorskip("triton")
    sys.path.insert(0, ROOT)
    import compiler.ops  # noqa: F401
    from compiler import aot
    from compiler.codegen.triton_group import generate
    if aot.tool("ptxas") is None:
        pytest.skip("triton wheel ships no ptxas: cannot assemble")
    ns = {}
    exec(GRAPHS, ns)
    g, grp = ns["variance_graph"](8192, 4096, "layer_norm")
    for v in generate(grp, g).variants:
        art = aot.compile_kernel(v, arch=90)
        assert ".target sm_90" in art.ptx and art.cubin, v.name


def _large_layer_norm():
    """The 8192x4096 layer_norm kernel (with its variants), GroupKernel and runtime.cuda."""
    sys.path.insert(0, ROOT)
    import compiler.ops  # noqa: F401
    from compiler.codegen.triton_group import generate, GroupKernel
    from runtime import cuda
    ns = {}
    exec(GRAPHS, ns)
    g, grp = ns["variance_graph"](8192, 4096, "layer_norm")
    return generate(grp, g), GroupKernel, cuda


def test_first_launch_keeps_the_fastest_variant(monkeypatch):
    # the choice (GPU only) without a GPU: launches stubbed, times per kernel
    k, GroupKernel, cuda = _large_layer_norm()
    ran = []
    real_launch = GroupKernel.launch

    def fake_own(self, inputs, outputs, interpret):
        if self.variants and self._chosen is not self:      # the dispatch under test
            return real_launch(self, inputs, outputs, interpret)
        if self.name.endswith("_looped"):
            raise RuntimeError("out of resources")
        ran.append((self.name, outputs[0]))
        return outputs

    speed = {k.name: 3.0, k.name + "_welford": 2.5, k.name + "_looped_welford": 2.0,
             k.name + "_hoisted": 2.9, k.name + "_unrolled": 2.2,
             k.name + "_unrolled_welford": 2.1}
    # the strided form's first timing is its luckiest and the fastest: it and the looped
    # Welford form (within 5% of it) are timed again, and its median is the slower
    strided = iter([1.95, 2.2, 2.3, 1.98, 2.25])
    timings = []

    def time_ms(f):
        f()
        name = ran[-1][0]
        timings.append(name)
        return next(strided) if name.endswith("_strided") else speed[name]
    monkeypatch.setattr(GroupKernel, "launch", fake_own)
    monkeypatch.setattr(cuda, "scratch_like", lambda o: "scratch")
    monkeypatch.setattr(cuda, "time_ms", time_ms)
    k._choose = GroupKernel._choose.__get__(k)
    real_out = object()
    # first launch: every form timed on scratch, the fastest then writes the real output
    real_launch(k, ["x", "w"], [real_out], False)
    assert k._chosen.name == k.name + "_looped_welford"
    assert all(out == "scratch" for _, out in ran[:-1]) and ran[-1] == (k._chosen.name, real_out)
    assert [n for n, ms in k.choice if ms == float("inf")] == [k.name + "_looped"]
    assert dict(k.choice)[k.name + "_strided"] == 2.2          # the median of its 5 timings
    again = timings[len(k.variants):]        # (the first pass timed every form that ran once)
    assert sorted(set(again)) == [k.name + "_looped_welford", k.name + "_strided"]
    assert len(again) == 2 * 4 and again[:2] == again[2:4]  # in turn, four rounds
    ran.clear()
    real_launch(k, ["x", "w"], [real_out], False)       # later launches: no timing
    assert ran == [(k._chosen.name, real_out)]


def test_first_launch_where_no_form_runs_keeps_the_default(monkeypatch):
    # every form fails to launch (no GPU memory, say): no re-timing of failures, the default
    # form is kept, and its own launch then reports the error
    k, GroupKernel, cuda = _large_layer_norm()
    tries = []

    def fail(self, inputs, outputs, interpret):
        tries.append(self.name)
        raise RuntimeError("out of resources")
    monkeypatch.setattr(GroupKernel, "launch", fail)
    monkeypatch.setattr(cuda, "scratch_like", lambda o: "scratch")
    monkeypatch.setattr(cuda, "time_ms", lambda f: f())
    assert GroupKernel._choose(k, ["x", "w"], ["out"]) is k
    assert [ms for _, ms in k.choice] == [float("inf")] * (1 + len(k.variants))
    assert len(tries) == 1 + len(k.variants)          # each tried once, none again


CONFIG_WORKER = r'''
import json, sys
sys.path.insert(0, "tests")
from _interp import become_interpreter_worker
become_interpreter_worker(".")
import numpy as np
import compiler.ops
from compiler.codegen import triton_group as tg
from runtime.interpret import HostTensor
''' + GRAPHS + r'''
# every tuning config of a large row kernel and its variants (what the first GPU launch times:
# rows per program, warps, and for looped forms half-width column blocks) must compute the
# same rows; small shapes stand in for large ones by lowering the tuning threshold
tg.ROW_TUNE_ELEMENTS = 0
tg.SM_COUNT = tg.STRIDED_PER_SM = 1    # the strided form: one program strides over every block
rng = np.random.default_rng(1)
for N, C in ((2, 4096), (2, 3000), (5, 1000)):
    g, grp = variance_graph(N, C, "layer_norm")
    host = [(rng.standard_normal(v.shape) * 3 + 10).astype(np.float32) for v in g.inputs]
    ref = np.asarray(g.run(*[h.astype(np.float64) for h in host])[0])
    k = tg.generate(grp, g)
    for kk in (k,) + tuple(k.variants):
        if C == 1000 and not kk.name.endswith("_strided"):
            continue             # (this shape is here for the strided form's partial block)
        fn = kk.function(True)
        # the interpreter runs one program at a time and has no warps: configs that differ
        # only in num_warps are the same run
        for meta in {tuple(sorted(m.items())): m for m, _ in kk.configs}.values():
            out = np.empty(g.outputs[0].shape, np.float32)
            ins = [HostTensor(h, v.dtype) for h, v in zip(host, g.inputs)]
            args = kk.args(ins, [HostTensor(out, g.outputs[0].dtype)])
            m = dict(kk.consts, **meta)
            fn[kk.grid(m)](*args, **m)
            err = float(np.max(np.abs(out - ref)) / np.max(np.abs(ref)))
            print(json.dumps({"shape": [N, C], "kernel": kk.name[len(k.name):] or "default",
                              "meta": meta, "err": err,
                              "programs": kk.grid(m)[0], "blocks": -(-N // m["BLOCK_M"])}))
# the strided form of the row kernels without weights: softmax, and cross-entropy's row loss
# (a gather of one column per row)
from compiler.ir.graph import Graph
N, C = 5, 1000
for kind in ("softmax", "cross_entropy"):
    g = Graph(kind)
    x = g.add_input("x", (N, C), dt.float32)
    m = g.call("amax", x, dims=(1,), keepdim=True)
    if kind == "softmax":
        e = g.call("exp", g.call("sub", x, m))
        g.set_outputs([g.call("div", e, g.call("sum", e, dims=(1,), keepdim=True))])
        host = [rng.standard_normal((N, C)).astype(np.float32)]
    else:
        t = g.add_input("t", (N, 1), dt.int64)
        lse = g.call("add", g.call("log", g.call("sum", g.call("exp", g.call("sub", x, m)),
                                                  dims=(1,), keepdim=True)), m)
        g.set_outputs([g.call("neg", g.call("gather", g.call("sub", x, lse), t, dim=1))])
        host = [rng.standard_normal((N, C)).astype(np.float32),
                rng.integers(0, C, (N, 1)).astype(np.int64)]
    grp = Group(0, "reduction", g.nodes, list(g.inputs), list(g.outputs))
    ref = np.asarray(g.run(*[h.astype(np.float64) if h.dtype == np.float32 else h
                             for h in host])[0])
    kk = [v for v in tg.generate(grp, g).variants if v.name.endswith("_strided")][0]
    fn = kk.function(True)
    for meta in {tuple(sorted(m.items())): m for m, _ in kk.configs}.values():
        out = np.empty(g.outputs[0].shape, np.float32)
        ins = [HostTensor(h, v.dtype) for h, v in zip(host, g.inputs)]
        m_ = dict(kk.consts, **meta)
        fn[kk.grid(m_)](*kk.args(ins, [HostTensor(out, g.outputs[0].dtype)]), **m_)
        err = float(np.max(np.abs(out - ref)) / np.max(np.abs(ref)))
        print(json.dumps({"group": kind, "meta": meta, "err": err, "programs": kk.grid(m_)[0],
                          "blocks": -(-N // meta["BLOCK_M"])}))
'''


def test_every_tuning_config_computes_the_same_rows():
    rows = [json.loads(line) for line in _interp.run_script(CONFIG_WORKER, ROOT)]
    others = [r for r in rows if "group" in r]
    assert {r["group"] for r in others} == {"softmax", "cross_entropy"}
    for r in others:
        assert r["programs"] == 1 and r["err"] < 2e-5, r
    rows = [r for r in rows if "group" not in r]
    forms = {(tuple(r["shape"]), r["kernel"]) for r in rows}
    assert {f for _, f in forms} == {"default", "_welford", "_looped", "_looped_welford",
                                     "_hoisted", "_unrolled", "_unrolled_welford", "_strided"}
    strided = [r for r in rows if r["kernel"] == "_strided"]
    assert all(r["programs"] == 1 for r in strided)
    assert any(r["blocks"] >= 2 and r["shape"][0] % r["meta"]["BLOCK_M"] for r in strided), \
        "one program strides over several row blocks, the last one partial"
    half = [r for r in rows if r["kernel"].startswith("_looped") and r["meta"]["BLOCK_N"] == 1024]
    assert half, "looped forms tune half-width column blocks"
    for r in rows:
        assert r["err"] < 2e-5, r
