"""Max pooling's two primitives as generated Triton kernels (compiler/codegen/triton_group.py):
window_max (values and PyTorch's indices) and plane_scatter (its backward).

Under Triton's interpreter, in a child process (this file with --worker; TRITON_INTERPRET=1,
PyTorch blocked), against the NumPy lowerings of compiler/ops/conv.py:
  * window_max: values and indices bit for bit over 1-3 spatial dims, padding, ceil_mode
    (as extra high padding), dilation, ties, NaN, -inf, integer and half dtypes, inputs with
    non-contiguous strides and a channels-last input whose permute folds into the strides;
  * plane_scatter: bit for bit for disjoint windows (a store of 0 + g; -0.0 included),
    allclose for overlapping windows (atomic adds), non-contiguous gradients;
  * a DigitsCNN-like model (disjoint and overlapping pooling) compiled with
    backend='interpret' on interpret tensors, forward + backward, equal to cpu eager, with
    both primitives run as kernels (no fallback), and the eager interpret device running
    plane_scatter as a kernel;
then every kernel the worker wrote to the kernel cache (the model's included) compiles ahead
of time to PTX for sm_90, and so do the kernels of every configuration here.
"""
import glob
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pads(size, k, s, p, d, ceil):
    """PyTorch's max-pool geometry as window_max's (lo, hi) padding per dim (ceil_mode's
    extra last window is more high padding)."""
    out = []
    for n, kk, ss, pp, dd in zip(size, k, s, p, d):
        num = n + 2 * pp - dd * (kk - 1) - 1
        o = (-(-num // ss) if ceil else num // ss) + 1
        if ceil and (o - 1) * ss >= n + pp:
            o -= 1
        hi = (o - 1) * ss + dd * (kk - 1) + 1 - n - pp
        out.append((pp, max(hi, 0)))
    return tuple(out)


# kernel, stride, padding, dilation, ceil_mode, input shape
CONFIGS = [
    ((2,), (2,), (0,), (1,), False, (2, 3, 9)),
    ((3,), (2,), (1,), (2,), True, (2, 2, 10)),
    ((2, 2), (2, 2), (0, 0), (1, 1), False, (2, 3, 8, 8)),
    ((2, 2), (2, 2), (1, 1), (1, 1), True, (2, 2, 7, 5)),
    ((3, 3), (2, 2), (1, 1), (1, 1), True, (2, 2, 8, 7)),
    ((3, 2), (2, 1), (1, 0), (1, 2), True, (1, 2, 8, 7)),
    ((3, 3), (1, 1), (1, 1), (1, 1), False, (1, 2, 5, 6)),
    ((2, 2, 2), (2, 2, 2), (0, 1, 0), (1, 1, 1), True, (1, 2, 5, 4, 5)),
    ((3, 2, 2), (1, 2, 1), (1, 0, 1), (1, 1, 1), False, (1, 1, 4, 4, 3)),
]
KINDS = ["normal", "ties", "special", "neginf"]


def _data(r, shape, kind, dtype):
    if kind == "normal":
        a = r.standard_normal(shape)
    else:
        a = r.integers(-2, 2, size=shape).astype(np.float64)        # many ties
        if kind == "special":
            a.reshape(-1)[r.choice(a.size, a.size // 5, replace=False)] = np.nan
            a.reshape(-1)[r.choice(a.size, a.size // 5, replace=False)] = -np.inf
            a.reshape(-1)[r.choice(a.size, a.size // 6, replace=False)] = -0.0
        if kind == "neginf":
            a[:] = -np.inf
    if np.dtype(dtype).kind != "f":
        a = np.nan_to_num(a, nan=0, neginf=-3)
        if np.dtype(dtype).kind == "u":
            a = a + 3
    return a.astype(dtype)


def _strided(a, r):
    """The same values in a buffer with non-contiguous strides (reversed dim order in memory,
    or every other element of a bigger buffer)."""
    if r.integers(2):
        return np.ascontiguousarray(a.transpose()).transpose()
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[..., ::2] = a
    return big[..., ::2]


def _group(graph, gid=0):
    from compiler.ir.group import Group
    return Group(gid, "extern", graph.nodes, list(graph.inputs), list(graph.outputs))


def _window_max_graph(shape, dtype, k, s, p, d, ceil, perm=None):
    """window_max over x (or over x.permute(perm): a channels-last input whose view folds)."""
    from compiler.ir.graph import Graph
    from runtime import dtypes as dt
    g = Graph("pool")
    D = dt._BY_NAME[np.dtype(dtype).name]
    if perm is None:
        x = g.add_input("x", shape, D)
        v = x
    else:
        inv = tuple(int(i) for i in np.argsort(perm))
        x = g.add_input("x", tuple(shape[i] for i in inv), D)
        v = g.call("permute", x, dims=perm)
    pads = _pads(shape[len(shape) - len(k):], k, s, p, d, ceil)
    vals, idx = g.call("window_max", v, kernel=k, stride=s, dilation=d, padding=pads)
    g.set_outputs([vals, idx])
    return g


def _scatter_graph(gshape, size, unique, dtype):
    from compiler.ir.graph import Graph
    from runtime import dtypes as dt
    g = Graph("pool_backward")
    gv = g.add_input("g", gshape, dt._BY_NAME[np.dtype(dtype).name])
    ix = g.add_input("idx", gshape, dt.int64)
    g.set_outputs([g.call("plane_scatter", gv, ix, size=size, unique=unique)])
    return g


def _launch(graph, arrays):
    from compiler.codegen.triton_group import generate, GroupKernel
    from runtime.interpret import HostTensor
    k = generate(_group(graph), graph, interpret=True)
    assert isinstance(k, GroupKernel), k
    outs = [np.full(o.shape, 77, o.dtype.np) for o in graph.outputs]
    k.launch([HostTensor(a) for a in arrays], [HostTensor(o) for o in outs], interpret=True)
    return k, outs


def _bits_equal(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(
        np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8))


def _pool_cases(r):
    """(name, window_max graph, input array) per configuration, data kind and dtype."""
    for c, (k, s, p, d, ceil, shape) in enumerate(CONFIGS):
        for kind in KINDS:
            yield f"{c}-{kind}-float32", (k, s, p, d, ceil, shape), "float32", kind, None
        yield f"{c}-ties-float16", (k, s, p, d, ceil, shape), "float16", "special", None
    for dtype in ("float64", "int32", "int64", "uint8", "int8"):
        yield f"2d-{dtype}", CONFIGS[4], dtype, "ties", None
    # no leading dims; a 1x1 output plane (every coordinate a literal 0)
    yield "no-lead-float32", ((3,), (2,), (1,), (1,), True, (9,)), "float32", "special", None
    yield "one-window-float32", ((2, 2), (2, 2), (0, 0), (1, 1), False, (1, 1, 2, 2)), \
        "float32", "ties", None
    yield "channels-last", CONFIGS[4], "float32", "special", (0, 3, 1, 2)
    yield "channels-last-3d", CONFIGS[7], "float32", "ties", (0, 4, 1, 2, 3)


def worker():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _interp import become_interpreter_worker
    become_interpreter_worker(ROOT)
    np.seterr(all="ignore")
    import compiler.ops  # noqa: F401
    from compiler.ops.conv import windows_disjoint
    r = np.random.default_rng(11)

    def emit(rec):
        print(json.dumps(rec), flush=True)

    # ---- window_max and plane_scatter against the NumPy lowerings
    for name, (k, s, p, d, ceil, shape), dtype, kind, perm in _pool_cases(r):
        rec = {"case": "window_max/" + name}
        try:
            g = _window_max_graph(shape, dtype, k, s, p, d, ceil, perm)
            x = _data(r, g.inputs[0].shape, kind, dtype)
            want = [np.asarray(a) for a in g.run(x)]
            xs = _strided(x, r) if perm is None and name.endswith("float32") and \
                kind != "normal" else x
            kern, got = _launch(g, [xs])
            ok = all(_bits_equal(a, b) for a, b in zip(got, want))
            rec.update(ok=ok, kernel=kern.name, source=kern.source if name == "4-special-float32"
                       else None, strided=xs is not x,
                       msg="" if ok else f"got {got} want {want}"[:3000])
            # its backward: disjoint windows bit for bit, overlapping ones allclose
            if ok and np.dtype(dtype).kind == "f" and kind != "neginf":
                size = tuple(g.inputs[0].shape[len(g.inputs[0].shape) - len(k):]) \
                    if perm is None else tuple(shape[len(shape) - len(k):])
                pads = _pads(size, k, s, p, d, ceil)
                unique = windows_disjoint(size, k, s, d, pads)
                gg = _data(r, want[0].shape, "normal", dtype)
                gg.reshape(-1)[::7] = -0.0
                sg = _scatter_graph(want[0].shape, size, unique, dtype)
                ref = np.asarray(sg.run(gg, want[1])[0])
                gs = _strided(gg, r) if kind == "ties" else gg
                kern2, (out,) = _launch(sg, [gs, want[1]])
                if unique:
                    ok2 = _bits_equal(out, ref)
                else:
                    tol = 2e-3 if dtype == "float16" else 1e-6
                    ok2 = bool(np.allclose(out, ref, rtol=tol, atol=tol))
                rec.update(ok=ok2, unique=unique, scatter_kernel=kern2.name,
                           scatter_source=kern2.source if name in ("4-special-float32",
                                                                   "2-normal-float32") else None,
                           msg="" if ok2 else f"plane_scatter: got {out} want {ref}"[:3000])
        except Exception as e:
            import traceback
            rec.update(ok=False, msg=f"{type(e).__name__}: {e}\n{traceback.format_exc()[-2000:]}")
        emit(rec)

    # ---- a pooled CNN compiled for the interpreter on interpret tensors vs cpu eager
    import framework as torch
    import framework.nn.functional as F
    from framework import nn
    from framework import _device_ops as D

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 4, 3, padding=1)
            self.c2 = nn.Conv2d(4, 6, 3, padding=1)
            self.fc = nn.Linear(6 * 2 * 2, 5)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.c1(x)), 2)                 # disjoint windows
            x = F.max_pool2d(F.relu(self.c2(x)), 3, 2, 1)           # overlapping windows
            return self.fc(x.flatten(1))

    rec = {"case": "cnn_compiled"}
    try:
        x0 = r.standard_normal((3, 1, 8, 8)).astype(np.float32)
        t0 = r.integers(0, 5, 3)
        res = []
        for dev, backend in (("cpu", None), ("interpret", "interpret")):
            torch.manual_seed(0)
            m = Net().to(dev)
            f = m if backend is None else torch.compile(m, backend=backend)
            x = torch.tensor(x0).to(dev)
            out = f(x)
            F.cross_entropy(out, torch.tensor(t0).to(dev)).backward()
            res.append([out.detach().cpu().numpy()] +
                       [p.grad.cpu().numpy() for p in m.parameters()])
            if backend is not None:
                cf = f._compiled
                progs = cf.programs()
                kernels = sorted(k.name for p in progs for k in p.kernels.values())
                fallbacks = {k: v for p in progs for k, v in p.fallbacks.items()}
                rec.update(kernels=kernels, fallbacks=fallbacks,
                           backends=sorted({p.backend for p in progs}),
                           device=str(out.device))
        errs = [float(np.max(np.abs(a - b) / (2e-5 + 2e-4 * np.abs(b)))) for a, b in zip(*res)]
        rec.update(ok=max(errs) <= 1.0, err=max(errs))
    except Exception as e:
        import traceback
        rec.update(ok=False, msg=f"{type(e).__name__}: {e}\n{traceback.format_exc()[-2000:]}")
    emit(rec)

    # ---- eager interpret device: window_max and plane_scatter run their kernels
    rec = {"case": "eager_interpret"}
    try:
        D.STATS.clear()
        x0 = r.standard_normal((2, 3, 7, 6)).astype(np.float32)
        res = []
        for dev in ("cpu", "interpret"):
            x = torch.tensor(x0).to(dev).requires_grad_(True)
            y1, i1 = F.max_pool2d(x, 2, 2, return_indices=True)
            y2 = F.max_pool2d(x, 3, 1, 1)
            ((y1 * y1).sum() + y2.sum()).backward()
            res.append([y1.detach().cpu().numpy(), i1.cpu().numpy(), y2.detach().cpu().numpy(),
                        x.grad.cpu().numpy()])
        ok = all(np.allclose(a, b, rtol=1e-6, atol=1e-6) for a, b in zip(*res))
        stats = {f"{a}:{b}": n for (a, b), n in D.STATS.items()
                 if "plane_scatter" in str(b) or "window_max" in str(b)}
        rec.update(ok=ok, stats=stats)
    except Exception as e:
        import traceback
        rec.update(ok=False, msg=f"{type(e).__name__}: {e}\n{traceback.format_exc()[-2000:]}")
    emit(rec)
    emit({"done": True, "torch_imported": "torch" in sys.modules})


# ----------------------------------------------------------------------------- tests

@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("kiln_cache"))


@pytest.fixture(scope="module")
def results(cache_dir):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _interp import run_worker
    recs = run_worker(__file__, ROOT, cache_dir)
    by = {r["case"]: r for r in recs[:-1]}
    by["__done__"] = recs[-1]
    return by


def test_window_max_and_plane_scatter_match_numpy(results):
    pool = {k: v for k, v in results.items() if k.startswith("window_max/")}
    assert len(pool) == len(CONFIGS) * (len(KINDS) + 1) + 9
    bad = [f"{k}: {v['msg']}" for k, v in pool.items() if not v["ok"]]
    assert not bad, "\n".join(bad)
    # both scatter flavours and non-contiguous inputs were exercised
    assert {v.get("unique") for v in pool.values()} >= {True, False}
    assert sum(bool(v.get("strided")) for v in pool.values()) >= 10


def test_kernel_sources_are_readable(results):
    r = results["window_max/4-special-float32"]
    src = r["source"]
    assert r["kernel"].startswith("window_max_") and f"def {r['kernel']}(" in src
    assert "= window_max(x, kernel=(3, 3)" in src           # the IR node it implements
    assert "for k0 in range(3):" in src and "for k1 in range(3):" in src
    assert "take = ok1 & ((v > best) | (v != v) | (arg < 0))" in src
    over = r["scatter_source"]
    assert "= plane_scatter(g, idx" in over and "tl.atomic_add(" in over
    assert "tl.debug_barrier()" in over
    disj = results["window_max/2-normal-float32"]["scatter_source"]
    assert "tl.atomic_add(" not in disj and "v + 0.0, mask=ok)" in disj


def test_compiled_cnn_runs_pooling_kernels_and_matches_cpu_eager(results):
    r = results["cnn_compiled"]
    assert r["ok"], r.get("msg") or f"max err/tol {r['err']}"
    assert r["backends"] == ["interpret"] and r["device"].startswith("interpret")
    names = r["kernels"]
    assert sum(n.startswith("window_max_") for n in names) == 2, names
    assert sum(n.startswith("plane_scatter_") for n in names) == 2, names
    assert not any("window_max" in why or "plane_scatter" in why
                   for why in r["fallbacks"].values()), r["fallbacks"]


def test_eager_interpret_device_runs_the_pooling_kernels(results):
    r = results["eager_interpret"]
    assert r["ok"], r.get("msg")
    st = r["stats"]
    assert any(k.startswith("kernel:plane_scatter_") for k in st), st
    assert "fallback:plane_scatter" not in st, st
    # window_max (two outputs: values and indices) runs its kernel eagerly too
    assert any(k.startswith("kernel:window_max_") for k in st), st
    assert "fallback:window_max" not in st, st


def test_worker_never_imported_torch(results):
    assert results["__done__"]["torch_imported"] is False


def _aot_or_skip():
    pytest.importorskip("triton")
    sys.path.insert(0, ROOT)
    from compiler import aot
    if aot.tool("ptxas") is None:
        pytest.skip("triton wheel ships no ptxas")
    return aot


def test_cached_pooling_kernels_compile_to_sm90_ptx(results, cache_dir):
    """The kernel cache the compiled CNN wrote holds the pooling kernels with their AOT
    sidecars; every kernel in it compiles to PTX for sm_90."""
    _aot_or_skip()
    from compiler.triton_backend import compile_cached_kernel
    files = sorted(glob.glob(os.path.join(cache_dir, "triton", "*.py")))
    with_sig = [f for f in files if os.path.exists(f + ".aot.json")]
    names = [json.load(open(f + ".aot.json"))["name"] for f in with_sig]
    assert any(n.startswith("window_max_") for n in names), names
    assert any(n.startswith("plane_scatter_") for n in names), names
    bad = []
    for f, n in zip(with_sig, names):
        if not n.startswith(("window_max_", "plane_scatter_")):
            continue
        try:
            art = compile_cached_kernel(f, arch=90)
            if ".target sm_90" not in art.ptx or not art.cubin:
                bad.append(f"{n}: empty PTX/cubin")
        except Exception as e:
            bad.append(f"{n}: {type(e).__name__}: {e}"[:600])
    assert not bad, "\n".join(bad)


def test_pooling_kernels_compile_to_sm90_ptx():
    """1-3 spatial dims, half/double/integer dtypes, both scatter flavours: PTX for sm_90 with
    the atomic add (red/atom) only where windows overlap."""
    aot = _aot_or_skip()
    import compiler.ops  # noqa: F401
    from compiler.codegen.triton_group import generate
    from compiler.ops.conv import windows_disjoint
    bad, n = [], 0
    for c, dtype in ((0, "float32"), (4, "float16"), (7, "float32"), (8, "float64"),
                     (5, "int64"), (2, "uint8")):
        k, s, p, d, ceil, shape = CONFIGS[c]
        g = _window_max_graph(shape, dtype, k, s, p, d, ceil)
        kern = generate(_group(g), g)
        size = tuple(shape[len(shape) - len(k):])
        unique = windows_disjoint(size, k, s, d, _pads(size, k, s, p, d, ceil))
        ks = [kern]
        if np.dtype(dtype).kind == "f":
            sg = _scatter_graph(tuple(g.outputs[0].shape), size, unique, dtype)
            ks.append(generate(_group(sg), sg))
        for kk in ks:
            try:
                art = aot.compile_kernel(kk, arch=90)
            except Exception as e:
                bad.append(f"{c}/{dtype}/{kk.name}: {e}"[:800])
                continue
            n += 1
            if ".target sm_90" not in art.ptx or not art.cubin:
                bad.append(f"{kk.name}: no sm_90 ptx/cubin")
            atomic = "red.global" in art.ptx or "atom.global" in art.ptx
            if kk.name.startswith("plane_scatter_") and atomic == unique:
                bad.append(f"{c}/{dtype}/{kk.name}: unique={unique} but atomics={atomic}")
    assert not bad, "\n".join(bad)
    assert n == 10


if __name__ == "__main__" and "--worker" in sys.argv:
    worker()
