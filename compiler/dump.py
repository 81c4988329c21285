"""`kiln dump`: write every compiled graph of a script, its fusion decisions and its kernels.

    kiln dump SCRIPT [args]                 (or: python -m compiler.dump SCRIPT [args])

One folder per compiled graph (a region of a compiled callable) under --out:

    <function>_<graph>/
        graph.py            the traced forward graph (readable IR), then the graph after passes
        backward_graph.py   the traced backward graph (when the region has one)
        fusion.txt          groups with member ops, refusal reasons, passes, fallbacks
        kernels/<name>.py   the Triton source of every group (and <graph>_numpy.py, the
                            generated NumPy program, on the numpy backend)
        kernels/<name>.{ttir,ttgir,llir,ptx,cubin,sass}   with --asm (--target sm_90 default)
        wrapper.py          a standalone program: rebuilds the graph, compiles it on a backend,
                            runs it on random inputs of the input shapes/dtypes, prints the
                            output shapes and the difference from the NumPy reference

then prints one summary row per kernel: ops fused, bytes read/written, FLOPs, registers (with
--asm), run count, and time when the kernels ran on a GPU.

This module works on compiled-callable objects by their introspection API (graphs(),
programs(), stats) and never imports framework: running the script and capturing the
callables it compiles is framework/cli.py's job (`main` hands over to it).
"""
import os
import re
import subprocess

import numpy as np

from .ir.graph import Value

STAGES = ("ttir", "ttgir", "llir", "ptx")


def _safe(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_") or "graph"


def _nbytes(v):
    n = v.dtype.itemsize
    for s in v.shape:
        n *= s
    return n


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def flops(group):
    """Floating-point operations of one group: 2*M*N*K per matmul, one per output element of
    every other arithmetic node, one per input element of a reduction; views cost nothing."""
    total = 0
    for n in group.nodes:
        kind = n.prim.kind
        if kind == "view" or n.op in ("cast", "copy", "full", "reshape"):
            continue
        if n.op == "matmul":
            a, b = n.inputs[0], n.inputs[1]
            k = a.shape[-1] if a.shape else 1
            total += 2 * _numel(n.outputs[0].shape) * k
        elif kind == "reduction":
            total += max(_numel(a.shape) for a in n.inputs if isinstance(a, Value))
        else:
            total += sum(_numel(o.shape) for o in n.outputs)
    return total


# ------------------------------------------------------------------------ wrapper.py

def _lit(v):
    from .codegen.numpy_gen import lit
    return lit(v)


def builder_source(graph, backend, repo_root):
    """A standalone script that rebuilds `graph` with Graph.call, compiles it on `backend`, runs
    it on random inputs and prints the output shapes and the largest difference from the
    NumPy reference (Graph.run)."""
    names = {}
    body = []
    for k, v in enumerate(graph.inputs):
        names[id(v)] = f"a{k}"
        body.append(f"a{k} = g.add_input({v.name!r}, {_lit(tuple(v.shape))}, {_lit(v.dtype)})")
    for j, n in enumerate(graph.nodes):
        ins = [names[id(a)] if isinstance(a, Value) else _lit(a) for a in n.inputs]
        ins += [f"{k}={_lit(x)}" for k, x in n.attrs.items()]
        outs = []
        for i, o in enumerate(n.outputs):
            names[id(o)] = f"n{j}_{i}"
            outs.append(f"n{j}_{i}")
        lhs = ", ".join(outs) + ("," if len(outs) == 1 and n.prim.nout != 1 else "")
        body.append(f"{lhs} = g.call({n.op!r}, {', '.join(ins)})    # {n.outputs[0].name}")
    rets = ", ".join(names[id(o)] if isinstance(o, Value) else _lit(o) for o in graph.outputs)
    body.append(f"g.set_outputs([{rets}])")
    src = f'''"""Standalone reproduction of compiled graph {graph.name!r} (written by `kiln dump`).

    python wrapper.py [--backend numpy|interpret|triton|eager] [--seed N]

Rebuilds the graph primitive by primitive, compiles it with Kiln's compiler on the chosen
backend, runs the generated program on random inputs of the graph's input shapes and dtypes,
and prints each output's shape and dtype and its largest difference from the NumPy reference.
"""
import argparse
import os
import sys
import warnings

sys.path.insert(0, {repo_root!r})
import numpy as np

import compiler.ops  # noqa: F401  (registers the primitives)
from compiler.ir.graph import Graph
from runtime import dtypes as _dt


def build():
    g = Graph({graph.name!r})
    {(chr(10) + "    ").join(body)}
    return g


def random_inputs(g, seed):
    rng = np.random.default_rng(seed)
    arrays = []
    for v in g.inputs:
        npd = v.dtype.np
        if v.dtype.name == "bool":
            arrays.append(rng.random(v.shape) < 0.5)
        elif np.dtype(npd).kind in "iu":
            arrays.append(np.zeros(v.shape, npd))        # 0 is a valid index of any dim
        else:      # positive: sqrt/log of optimizer state and variances stay finite
            arrays.append(rng.uniform(0.1, 1.1, v.shape).astype(npd))
    return arrays


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default={backend!r})
    p.add_argument("--seed", type=int, default=0)
    ns = p.parse_args()
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    if ns.backend == "interpret":
        os.environ.setdefault("TRITON_INTERPRET", "1")
    from compiler.backend import compile_graph
    g = build()
    arrays = random_inputs(g, ns.seed)
    consts = g.float_consts()
    if ns.backend == "eager":
        outs = g.run(*arrays)
    else:
        prog, _ = compile_graph(g, ns.backend)
        outs = prog.run(arrays, consts)
    ref = g.run(*arrays)
    with np.errstate(all="ignore"):
        for k, (o, r) in enumerate(zip(outs, ref)):
            o = np.asarray(o.get() if hasattr(o, "get") else o)
            r = np.asarray(r, np.float64)
            d = float(np.nanmax(np.abs(o.astype(np.float64) - r))) \\
                if o.size and o.dtype.kind in "biuf" else 0.0
            scale = float(np.nanmax(np.abs(r), initial=0.0)) if r.size else 0.0
            print(f"output {{k}}: shape {{list(o.shape)}} {{o.dtype}}  max |diff| vs NumPy "
                  f"reference {{d:.3g}} (relative to its largest value "
                  f"{{d / max(scale, 1e-30):.3g}})")


if __name__ == "__main__":
    main()
'''
    return src


# ------------------------------------------------------------------------ folders

class Row:
    __slots__ = ("kernel", "folder", "kind", "ops", "read", "written", "flops", "registers",
                 "runs", "time_s", "fallback")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))


def _group_kernels(prog):
    """[(group, kernel or None, fallback reason or None)] of a program: its own kernels on a
    Triton backend, else kernels generated now (non-interpreted) from its fused groups."""
    from .codegen.triton_group import generate, ExternKernel
    fallbacks = getattr(prog, "fallbacks", {}) or {}
    own = getattr(prog, "kernels", None)
    out = []
    part = getattr(prog, "partition", None)
    groups = getattr(prog, "groups", None) or (part.groups if part is not None else [])
    for gr in groups:
        k, why = (own or {}).get(gr.name), fallbacks.get(gr.name)
        if own is None or k is None and why is None:
            try:
                k = generate(gr, prog.graph)
            except Exception as e:
                k, why = None, f"no kernel: {e}"
        if isinstance(k, ExternKernel):
            why = why or f"extern: {k.fallback}"
        out.append((gr, k, why))
    return out


def write_region(folder, fname, plan, backend, repo_root, asm=False, arch=90, only=None,
                 max_asm=None, asm_count=None, asm_jobs=None):
    """Write one region's folder; returns summary Rows."""
    os.makedirs(os.path.join(folder, "kernels"), exist_ok=True)
    fg, bg = plan.fwd_graph, plan.bwd_graph
    progs = [("forward", plan.fwd)] + ([("backward", plan.bwd)] if plan.bwd is not None else [])
    with open(os.path.join(folder, "graph.py"), "w") as f:
        f.write(f"# {fname}: traced forward graph (compiled on backend={backend!r})\n{fg}\n")
        g2 = getattr(plan.fwd, "graph", None)
        if g2 is not None and g2 is not fg:
            f.write(f"\n\n# after passes (what was fused and compiled)\n{g2}\n")
    with open(os.path.join(folder, "backward_graph.py"), "w") as f:
        if bg is None:
            f.write("# this region has no backward graph (no outputs required grad)\n")
        else:
            f.write(f"# {fname}: traced backward graph\n{bg}\n")
            g2 = getattr(plan.bwd, "graph", None)
            if g2 is not None and g2 is not bg:
                f.write(f"\n\n# after passes\n{g2}\n")
    rows = []
    fusion = []
    for which, prog in progs:
        part = getattr(prog, "partition", None)
        fusion.append(f"== {which} program {getattr(prog, 'graph', fg).name} "
                      f"(backend {prog.backend}, {len(getattr(prog, 'group_names', []) or [])} "
                      f"groups, ran {prog.runs}x)")
        if part is None:
            fusion.append("(no fusion: the eager backend runs the traced graph op by op)")
            continue
        fusion.append(part.describe())
        plog = getattr(prog, "passes_log", None)
        if plog:
            fusion.append("\npasses:\n" + (plog if isinstance(plog, str) else
                                            "\n".join(map(str, plog))))
        kernels = _group_kernels(prog)
        fb = [f"  {gr.name}: {why}" for gr, _, why in kernels if why]
        if fb:
            fusion.append("\ngroups without a generated kernel (run by their fallback):\n"
                          + "\n".join(fb))
        fusion.append("")
        if prog.backend in ("numpy", "eager") and getattr(prog, "source", None):
            with open(os.path.join(folder, "kernels",
                                   f"{_safe(prog.graph.name)}_numpy.py"), "w") as f:
                f.write(prog.source)
        runs = prog.group_runs() if hasattr(prog, "group_runs") else {}
        times = prog.group_times() if prog.backend == "triton" and \
            hasattr(prog, "group_times") else {}
        for gr, k, why in kernels:
            kname = k.name if k is not None else gr.name
            if only and only not in kname and only not in gr.name:
                continue
            row = Row(kernel=kname, folder=os.path.basename(folder), kind=gr.kind,
                      ops=len(gr.nodes), read=sum(_nbytes(v) for v in gr.inputs),
                      written=sum(_nbytes(v) for v in gr.outputs), flops=flops(gr),
                      runs=runs.get(gr.name, prog.runs), time_s=times.get(gr.name),
                      fallback=why)
            if k is not None:
                with open(os.path.join(folder, "kernels", f"{_safe(kname)}.py"), "w") as f:
                    f.write(k.source)
                for b in getattr(k, "before", ()):      # launched first (a scatter's copy)
                    with open(os.path.join(folder, "kernels", f"{_safe(b.name)}.py"), "w") as f:
                        f.write(b.source)
                for v in getattr(k, "variants", ()):    # timed against k on its first launch
                    with open(os.path.join(folder, "kernels", f"{_safe(v.name)}.py"), "w") as f:
                        f.write(f"# variant of {kname}, timed against it on the first GPU "
                                f"launch; the faster runs"
                                + (f" (chosen: {k._chosen.name}; {k.choice})" if k._chosen
                                   else "") + "\n" + v.source)
            if asm and k is not None and not (why or "").startswith("extern") and \
                    hasattr(k, "signature") and \
                    (max_asm is None or asm_count[0] < max_asm):
                asm_count[0] += 1
                row.registers = _write_asm(folder, k, arch, prog, row, asm_jobs)
            rows.append(row)
    with open(os.path.join(folder, "fusion.txt"), "w") as f:
        f.write("\n".join(fusion) + "\n")
    with open(os.path.join(folder, "wrapper.py"), "w") as f:
        try:
            f.write(builder_source(fg, backend if backend != "eager" else "numpy", repo_root))
        except Exception as e:
            f.write(f"# wrapper not written: {type(e).__name__}: {e}\n")
    return rows


def _write_asm(folder, k, arch, prog, row=None, jobs=None):
    """The kernel's IR stages, PTX, cubin, SASS and resource use under kernels/; its register
    count (or "err", the reason in <name>.asm_error.txt). In a process whose Triton runs in
    interpreter mode (imported with TRITON_INTERPRET=1: tl.sum, tl.cdiv and the other library
    functions are interpreter objects, which a real compile cannot call), the compile is
    queued in `jobs` for one child process (_compile_jobs) and None is returned for now."""
    from . import aot
    from .codegen.triton_group import generate
    from runtime.interpret import library_interpretable
    base = os.path.join(folder, "kernels", _safe(k.name))
    try:
        if getattr(prog, "interpret", False):           # interpreter block sizes: regenerate
            k = generate(k.group, prog.graph)
        if jobs is not None and library_interpretable():
            from .triton_backend import _write_aot_sidecar
            _write_aot_sidecar(k)
            jobs.append((base, k.path, row))
            return None
        art = aot.compile_kernel(k, arch=arch)
    except Exception as e:
        with open(base + ".asm_error.txt", "w") as f:
            f.write(f"{type(e).__name__}: {e}\n")
        return "err"
    return _write_artifact(base, art)


def _compile_jobs(jobs, arch, repo_root):
    """AOT-compile queued kernels (kernel files with .aot.json sidecars) in one child process
    whose Triton is not in interpreter mode; fills each row's register count."""
    import json
    import sys
    code = ("import json, sys\n"
            f"sys.path.insert(0, {repo_root!r})\n"
            "from compiler.dump import _write_artifact\n"
            "from compiler.triton_backend import compile_cached_kernel\n"
            "regs = []\n"
            "for base, path in json.loads(sys.stdin.read()):\n"
            "    try:\n"
            f"        regs.append(_write_artifact(base, compile_cached_kernel(path, {arch})))\n"
            "    except Exception as e:\n"
            "        with open(base + '.asm_error.txt', 'w') as f:\n"
            "            f.write(f'{type(e).__name__}: {e}\\n')\n"
            "        regs.append('err')\n"
            "print(json.dumps(regs))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "KILN_DEVICE")}
    r = subprocess.run([sys.executable, "-c", code], input=json.dumps([[b, p] for b, p, _ in
                                                                        jobs]),
                       capture_output=True, text=True, env=env, timeout=1800)
    try:
        regs = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        regs = ["err"] * len(jobs)
        for base, _, _ in jobs:
            with open(base + ".asm_error.txt", "w") as f:
                f.write(f"AOT child process failed (rc {r.returncode}):\n{r.stderr[-3000:]}\n")
    for (_, _, row), reg in zip(jobs, regs):
        if row is not None:
            row.registers = reg


def _write_artifact(base, art):
    """Write an aot.Artifact's stages next to `base`; its register count."""
    from . import aot
    for st in STAGES:
        with open(f"{base}.{st}", "w") as f:
            f.write(art.asm.get(st, ""))
    if art.cubin:
        with open(base + ".cubin", "wb") as f:
            f.write(art.cubin)
        s = aot.sass(art.cubin) or _cuobjdump_sass(art.cubin)
        if s:
            with open(base + ".sass", "w") as f:
                f.write(s)
    with open(base + ".resources.txt", "w") as f:
        f.write(art.summary() + "\n")
    return art.registers


def _cuobjdump_sass(cubin):
    from . import aot
    exe = aot.tool("cuobjdump")
    if exe is None:
        return ""
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(cubin)
        path = f.name
    try:
        return subprocess.run([exe, "-sass", path], capture_output=True, text=True,
                              timeout=60).stdout
    finally:
        os.unlink(path)


def dump_functions(functions, out, backend=None, asm=False, arch=90, only=None, max_asm=None,
                   repo_root=None):
    """Write every region of every compiled callable; returns (folders, rows)."""
    repo_root = repo_root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.makedirs(out, exist_ok=True)
    folders, rows, used = [], [], set()
    asm_count = [0]
    asm_jobs = []                 # compiles a child process runs (interpreter-mode Triton)
    for cf in functions:
        for i, plan in enumerate(cf.stats["regions"]):
            name = _safe(f"{cf.name}_{plan.fwd_graph.name}")
            base, k = name, 1
            while name in used:
                name = f"{base}_{k}"
                k += 1
            used.add(name)
            folder = os.path.join(out, name)
            rows += write_region(folder, name, plan, backend or cf.backend, repo_root, asm,
                                 arch, only, max_asm, asm_count, asm_jobs)
            folders.append(folder)
    if asm_jobs:
        _compile_jobs(asm_jobs, arch, repo_root)
    return folders, rows


def _fmt_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _fmt_count(n):
    if n >= 1e9:
        return f"{n / 1e9:.2f}G"
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}K"
    return str(n)


def summary_table(rows, gpu=False):
    head = ["kernel", "kind", "ops", "read", "written", "FLOPs", "regs", "runs",
            "time" if gpu else "time (GPU only)"]
    body = []
    for r in rows:
        t = "-" if r.time_s is None or not gpu else f"{r.time_s * 1e3:.3f} ms"
        body.append([r.kernel + (" (fallback)" if r.fallback else ""), r.kind, str(r.ops),
                     _fmt_bytes(r.read), _fmt_bytes(r.written), _fmt_count(r.flops),
                     "-" if r.registers is None else str(r.registers), str(r.runs), t])
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(head)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in
                     enumerate(zip(head, widths))), line]
    for b in body:
        out.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in
                             enumerate(zip(b, widths))))
    out.append(line)
    out.append(f"{len(rows)} kernels; total read {_fmt_bytes(sum(r.read for r in rows))}, "
               f"written {_fmt_bytes(sum(r.written for r in rows))}, "
               f"{_fmt_count(sum(r.flops for r in rows))} FLOPs per run")
    return "\n".join(out)


def main(argv=None):
    """`python -m compiler.dump SCRIPT [args]`: the same as `kiln dump` (the command lives in
    framework/cli.py, which runs the script; loaded by name so compiler stays import-free of
    framework)."""
    import importlib
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    return importlib.import_module("framework.cli").main(["dump"] + argv)


if __name__ == "__main__":
    import sys
    sys.exit(main())
