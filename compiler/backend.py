"""From a Graph to something that runs: passes, fusion, scheduling, memory planning and code
generation for a backend, cached in memory and on disk.

    compile_graph(graph, backend="numpy", donate=(), cuda_graphs=False)
        -> (Program, compiled_now)       (cuda_graphs: the Triton backends' CUDA graph replay)
    Program.run(arrays, consts, on_output=None) -> list of output arrays

`on_output(k, array)`: called once per output as soon as the program has produced it (the
NumPy code generator emits the call right after the producing group; see numpy_gen), e.g. to
start communicating a gradient while the rest of a backward program runs.

`donate`: ((output position, input position), ...) pairs, where the caller replaces that input
array's contents by that output anyway (a captured in-place write): the program may then write
the output straight into the input array and return the input array itself in that position
(the caller skips its copy when `result is array`). The memory planner decides per pair
whether it is safe (compiler/memory.py); the pairs are part of the cache keys.

`consts` are the graph's float constants in node order (Graph.float_consts): programs are
cached by Graph.key(), which abstracts those values, so a graph that differs only in them
reuses the compiled program. Lookup order: this process's memory cache, then the disk cache
(compiler/cache.py), then a cold compile (passes -> fusion -> schedule -> codegen), whose
source is written to disk for the next process. Program.origin says which one it came from.
"""
import copy
import logging
import time

from .ir.graph import Node
from . import passes as _passes
from . import cache as _cache
from .schedule import schedule as _schedule
from .codegen import numpy_gen

log = logging.getLogger("kiln.compile")

_CACHE = {}
_BACKENDS = ("numpy", "eager")


class Program:
    """A compiled graph. Introspection: graph (after passes), partition (groups + refusals;
    partition.describe()), groups, source, passes_log, memory (MemoryPlan, cold compiles),
    planned_bytes / naive_bytes, runs, group_runs(), origin ('cold' | 'disk'), compile_s.
    For a program loaded from disk, graph/partition/passes_log/memory are rebuilt on first
    access (the passes and the fuser are deterministic)."""

    def __init__(self, source, make, meta, backend, origin, lifted, compile_s, donate=()):
        self.source = source
        self.fn = make()
        self.backend = backend
        self.origin = origin
        self.compile_s = compile_s
        self.planned_bytes = meta["planned_bytes"]
        self.naive_bytes = meta["naive_bytes"]
        self.persistent_bytes = meta["persistent_bytes"]
        self.group_names = list(meta["groups"])
        self.runs = 0
        self._lifted = lifted
        self.donate = donate
        self._analysis = None

    def run(self, arrays, consts, on_output=None):
        self.runs += 1
        if on_output is None:
            return self.fn(arrays, consts)
        return self.fn(arrays, consts, on_output)

    def group_runs(self):
        """Runs per fused group (every group runs once per program run)."""
        return {name: self.runs for name in self.group_names}

    def _analysed(self):
        if self._analysis is None:
            self._analysis = _analyse(self._lifted, self.donate)
        return self._analysis

    @property
    def graph(self):
        return self._analysed()[0]

    @property
    def passes_log(self):
        return self._analysed()[1]

    @property
    def partition(self):
        return self._analysed()[2]

    @property
    def groups(self):
        return self._analysed()[3].order

    @property
    def memory(self):
        return self._analysed()[4]


def _partition(g):
    # imported on first use: the fuser needs networkx (~0.15 s to import), which a process that
    # only loads programs from the disk cache never needs
    from .fusion import partition
    return partition(g)


def _analyse(lifted, donate=()):
    g, plog = _passes.run_all(lifted)
    part = _partition(g)
    sched = _schedule(part)
    source, plan, meta = numpy_gen.generate(g, part, sched, donate)
    return g, plog, part, sched, plan, source, meta


def compile_graph(graph, backend="numpy", donate=(), cuda_graphs=False):
    if backend in ("triton", "interpret"):          # generated Triton kernels per group
        from . import triton_backend
        return triton_backend.compile_graph(graph, backend, cuda_graphs)
    if backend not in _BACKENDS:
        raise ValueError(f"compile: unknown backend {backend!r} (expected 'numpy' or 'eager')")
    gkey = graph.key()
    donate = tuple(donate)
    gen = numpy_gen.version()
    mkey = (backend, gen, gkey, donate) if donate else (backend, gen, gkey)
    prog = _CACHE.get(mkey)
    if prog is not None:
        return prog, False
    t0 = time.perf_counter()
    lifted = _lift_floats(graph)
    # the eager backend runs the same generated NumPy code (there is nothing else to run)
    dkey = _cache.program_key(gkey + (f"\ndonate:{donate}" if donate else ""), "numpy", gen)
    hit = _cache.load_program(dkey, "numpy")
    prog = None
    if hit is not None:
        source, code = hit
        try:
            make, meta = numpy_gen.load(code)
            prog = Program(source, make, meta, backend, "disk", lifted,
                           time.perf_counter() - t0, donate)
        except Exception as e:          # a valid-looking entry that does not run: regenerate
            log.warning("kiln cache: entry for %s failed to load (%s: %s); regenerating",
                        graph.name, type(e).__name__, e)
            prog = None
    if prog is None:
        analysis = _analyse(lifted, donate)
        source, meta = analysis[5], analysis[6]
        make, meta = numpy_gen.load(source, f"<kiln:{graph.name}>")
        prog = Program(source, make, meta, backend, "cold", lifted, 0.0, donate)
        prog._analysis = analysis
        _cache.store_program(dkey, "numpy", source)
        prog.compile_s = time.perf_counter() - t0
    log.info("compiled %s (%s, %.1f ms): %d groups, %d bytes planned vs %d naive",
             graph.name, prog.origin, prog.compile_s * 1e3, len(prog.group_names),
             prog.planned_bytes, prog.naive_bytes)
    _CACHE[mkey] = prog
    return prog, True


class FloatParam(float):
    """A float constant of the traced graph, read at run time from consts[index]."""
    def __new__(cls, value, index):
        f = float.__new__(cls, value)
        f.index = index
        return f


def _lift_floats(graph):
    g = copy.copy(graph)
    k = 0
    nodes = []
    for n in graph.nodes:
        ins = []
        for a in n.inputs:
            if type(a) is float:
                a = FloatParam(a, k)
                k += 1
            ins.append(a)
        nodes.append(Node(n.op, ins, n.attrs, n.outputs, n.id))
    g.nodes = nodes
    return g
