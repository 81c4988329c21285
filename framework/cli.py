"""The `kiln` command.

    kiln --version
    kiln --help
    kiln run -n N [-f HOSTFILE] script.py [args]   N data-parallel ranks through mpiexec
    kiln dump [options] SCRIPT [args]       every compiled graph, fusion decision, kernel
                                            source, wrapper and (--asm) PTX/SASS of a script
    kiln explain SCRIPT [args]              graph breaks and recompiles, with their reasons

The subcommands hand off to compiler (dump writes the folders: compiler/dump.py) and runtime
(run). Both dump and explain run the script in this process with every compile() call
captured (capture() below), so they see exactly what the script compiled.
"""
import argparse
import contextlib
import os
import runpy
import sys

_DUMP = "run a script and write every compiled graph, fusion decision, kernel source, " \
        "a standalone wrapper and (with --asm) TTIR/TTGIR/LLIR/PTX/SASS"
_EXPLAIN = "run a script and print its graph breaks and recompiles, with their reasons"
_DUMP_EPILOG = """examples:
  kiln dump examples/train_digits.py --compile --epochs 1
  kiln dump --asm --target sm_90 --out /tmp/kd examples/train_digits.py --compile
  kiln dump --backend interpret --only softmax examples/compile_tour.py
  python -m compiler.dump --out /tmp/kd examples/compile_tour.py

Folder per compiled graph: graph.py, backward_graph.py, fusion.txt, kernels/<name>.py,
wrapper.py (python wrapper.py reruns the graph on random inputs), and with --asm
kernels/<name>.{ttir,ttgir,llir,ptx,cubin,sass}. Options go before SCRIPT; everything after
SCRIPT is passed to it."""
_RUN = "run a script on N data-parallel ranks through mpiexec (kiln run -n N script.py)"


def _version():
    from framework import __version__
    return __version__


def build_parser():
    p = argparse.ArgumentParser(
        prog="kiln",
        description="Kiln: PyTorch's eager API over one IR, with a compiler you can read.",
        epilog="kiln dump --help shows examples. Also: python -m compiler.dump SCRIPT.")
    p.add_argument("--version", action="store_true", help="print Kiln's version and exit")
    sub = p.add_subparsers(dest="command", metavar="{dump,explain,run}")
    dp = sub.add_parser("dump", help=_DUMP, description=_DUMP + ".", epilog=_DUMP_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    dp.add_argument("--out", default="kiln_dump", help="output folder (default ./kiln_dump)")
    dp.add_argument("--backend", default=None, choices=["numpy", "interpret", "triton", "eager"],
                    help="compile every compile() call of the script with this backend "
                         "(default: what the script asked for)")
    dp.add_argument("--asm", action="store_true",
                    help="also compile each kernel ahead of time: TTIR, TTGIR, LLIR, PTX, "
                         "cubin, SASS and register/shared-memory usage (no GPU needed)")
    dp.add_argument("--target", default="sm_90", help="GPU target for --asm (sm_90, sm_80)")
    dp.add_argument("--only", default=None, metavar="NAME",
                    help="only kernels/groups whose name contains NAME")
    dp.add_argument("--max-asm", type=int, default=None, metavar="N",
                    help="compile at most N kernels with --asm (they take ~1 s each)")
    dp.add_argument("script", help="Python script to run")
    dp.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    ep = sub.add_parser("explain", help=_EXPLAIN, description=_EXPLAIN + ".",
                        epilog="example: kiln explain examples/compile_tour.py")
    ep.add_argument("script", help="Python script to run")
    ep.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    rp = sub.add_parser("run", help=_RUN, description=_RUN + "; also fine: mpiexec -n N python "
                        "script.py. When a rank fails, mpiexec stops the others.")
    rp.add_argument("-n", "--nproc", "-np", type=int, default=1, help="number of ranks")
    rp.add_argument("-f", "--hostfile", default=None,
                    help="MPI host file for several machines (passed to mpiexec -f)")
    rp.add_argument("script", help="Python script to run on every rank")
    rp.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    return p


def main(argv=None):
    p = build_parser()
    ns = p.parse_args(argv)
    if ns.version:
        print(f"kiln {_version()}")
        return 0
    if ns.command is None:
        p.print_help()
        return 0
    if ns.command == "run":
        from runtime.distributed import launcher
        try:
            rc = launcher.launch(ns.nproc, ns.script, ns.args, ns.hostfile)
        except (FileNotFoundError, ValueError) as e:
            print(e, file=sys.stderr)
            return 2
        if rc != 0:
            print(f"kiln run: {ns.nproc} rank(s) of {ns.script} failed; mpiexec exited with "
                  f"status {rc}", file=sys.stderr)
        return rc
    if ns.command == "dump":
        return _dump(ns)
    if ns.command == "explain":
        return _explain(ns)
    return 2


@contextlib.contextmanager
def capture(backend=None):
    """Every CompiledFunction created inside (compile() of functions and modules) is appended
    to the yielded list; backend= overrides the backend each one asked for."""
    from ._compile import CompiledFunction
    made = []
    orig = CompiledFunction.__init__

    def init(self, fn, *args, **kw):
        if backend is not None:
            if args:
                args = (backend,) + tuple(args[1:])
            else:
                kw["backend"] = backend
        orig(self, fn, *args, **kw)
        made.append(self)
    CompiledFunction.__init__ = init
    try:
        yield made
    finally:
        CompiledFunction.__init__ = orig


def run_script(script, args):
    """Run SCRIPT as __main__ with sys.argv = [SCRIPT] + args; returns its exit status."""
    if not os.path.exists(script):
        print(f"kiln: no such script: {script}", file=sys.stderr)
        return 2
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [script] + list(args)
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name="__main__")
        return 0
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv, sys.path[:] = old_argv, old_path


def _arch(target):
    t = str(target).lower().replace("sm_", "").replace("sm", "")
    if not t.isdigit():
        raise SystemExit(f"kiln dump: --target {target!r}: expected sm_90 / sm_80")
    return int(t)


# dump's own options may also follow the script (`kiln dump train.py --asm`); everything
# else goes to the script, and after `--` everything does
_DUMP_FLAGS = {"--asm": 0, "--out": 1, "--backend": 1, "--target": 1, "--only": 1, "--max-asm": 1}


def _dump_options_after_script(ns):
    rest, i, args = [], 0, list(ns.args)
    while i < len(args):
        a = args[i]
        if a == "--":
            rest.extend(args[i + 1:])
            break
        name, eq, val = a.partition("=")
        if name in _DUMP_FLAGS:
            if _DUMP_FLAGS[name] == 0:
                ns.asm = True
            else:
                if not eq:
                    i += 1
                    if i >= len(args):
                        raise SystemExit(f"kiln dump: {name} needs a value")
                    val = args[i]
                attr = name[2:].replace("-", "_")
                setattr(ns, attr, int(val) if attr == "max_asm" else val)
        else:
            rest.append(a)
        i += 1
    ns.args = rest


def _dump(ns):
    _dump_options_after_script(ns)
    arch = _arch(ns.target)
    if ns.backend == "interpret":
        os.environ.setdefault("TRITON_INTERPRET", "1")
    with capture(ns.backend) as made:
        rc = run_script(ns.script, ns.args)
    from compiler import dump
    used = [cf for cf in made if cf.stats["regions"]]
    folders, rows = dump.dump_functions(used, ns.out, asm=ns.asm, arch=arch, only=ns.only,
                                        max_asm=ns.max_asm)
    on_gpu = any(cf.backend == "triton" for cf in used)
    print(f"\nkiln dump: {len(used)} compiled callable(s), {len(folders)} graph folder(s) "
          f"under {ns.out}" + (f" (script exited with status {rc})" if rc else ""))
    for cf in used:
        for r in cf.graph_break_reasons():
            print(f"  graph break in {cf.name}: {r}")
        for r in cf.recompile_reasons():
            print(f"  recompile of {cf.name}: {r}")
    print(dump.summary_table(rows, gpu=on_gpu))
    return rc


def _explain(ns):
    with capture() as made:
        rc = run_script(ns.script, ns.args)
    print(f"\nkiln explain: {len(made)} compiled callable(s)")
    for cf in made:
        s = cf.stats
        print(f"\n{cf.name}: backend={cf.backend} calls={s['calls']} compiles={s['compiles']} "
              f"graph breaks={len(s['graph_breaks'])} recompiles={len(s['recompiles'])} "
              f"eager calls={s['eager_calls']} replays={s['replays']}")
        seen = {}
        for r in cf.graph_break_reasons():
            seen[r] = seen.get(r, 0) + 1
        for r, n in seen.items():
            print(f"  graph break: {r}" + (f"  ({n}x)" if n > 1 else ""))
        for r in cf.recompile_reasons():
            print(f"  recompile: {r}")
        if not seen and not s["recompiles"]:
            print("  no graph breaks, no recompiles")
        for r in dict.fromkeys(s["replay_notes"]):      # why calls replay or keep tracing
            print(f"  replay: {r}")
        groups = cf.groups()
        ng = sum(len(g["groups"]) for g in groups)
        nr = sum(len(g["refusals"]) for g in groups)
        if groups:
            print(f"  {len(groups)} program(s), {ng} fused groups, {nr} refused fusions "
                  f"(kiln dump writes each with its reason)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
