"""From a Graph to something that runs: passes, then code generation for a backend, cached.

    compile_graph(graph, backend="numpy") -> Program
    Program.run(arrays, consts) -> list of output arrays

`consts` are the graph's float constants in node order (Graph.float_consts): programs are
cached by Graph.key(), which abstracts those values, so a graph that differs only in them
reuses the compiled program.
"""
import numpy as np

import copy

from .ir.graph import Value, Node
from .ir.registry import AVal
from . import passes as _passes

_CACHE = {}


class Program:
    def __init__(self, graph, fn, source, backend, groups=None, passes_log=None):
        self.graph = graph              # the graph after passes (what the code implements)
        self.fn = fn
        self.source = source            # generated Python source (NumPy backend)
        self.backend = backend
        self.groups = groups or []      # fused groups (introspection)
        self.passes_log = passes_log or []
        self.runs = 0

    def run(self, arrays, consts):
        self.runs += 1
        return self.fn(arrays, consts)


def compile_graph(graph, backend="numpy"):
    key = (backend, graph.key())
    prog = _CACHE.get(key)
    if prog is not None:
        return prog, False
    g, plog = _passes.run_all(_lift_floats(graph))
    if backend in ("numpy", "eager"):
        fn, src = _numpy_codegen(g)
    else:
        raise ValueError(f"compile: unknown backend {backend!r} (expected 'numpy' or 'eager')")
    prog = Program(g, fn, src, backend, passes_log=plog)
    _CACHE[key] = prog
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


def _numpy_codegen(g):
    """One Python function per graph: a line per primitive calling its NumPy lowering, with
    every output's metadata precomputed at compile time. Float constants come from `consts`."""
    env = {}
    lines = ["def program(inputs, consts):"]
    names = {}
    for k, v in enumerate(g.inputs):
        names[id(v)] = f"a{k}"
    if g.inputs:
        lines.append("    " + ", ".join(f"a{k}" for k in range(len(g.inputs))) +
                     (", = inputs" if len(g.inputs) == 1 else " = inputs"))
    for j, n in enumerate(g.nodes):
        p = n.prim
        env[f"_f{j}"] = p.numpy
        metas = [AVal(o.shape, o.dtype) for o in n.outputs]
        env[f"_m{j}"] = metas[0] if len(metas) == 1 else metas
        args = []
        for a in n.inputs:
            if isinstance(a, Value):
                args.append(names[id(a)])
            elif type(a) is FloatParam:
                args.append(f"consts[{a.index}]")
            else:
                env[f"_c{j}_{len(args)}"] = a
                args.append(f"_c{j}_{len(args)}")
        for k, val in n.attrs.items():
            env[f"_k{j}_{k}"] = val
            args.append(f"{k}=_k{j}_{k}")
        outs = [f"v{j}_{k}" for k in range(len(n.outputs))]
        for o, nm in zip(n.outputs, outs):
            names[id(o)] = nm
        call = f"_f{j}(_m{j}, {', '.join(args)})"
        ops = ", ".join(o.name for o in n.outputs)
        if len(outs) == 1:
            lines.append(f"    {outs[0]} = _asarray({call})   # {ops} = {n.op}")
        else:
            lines.append(f"    {', '.join(outs)} = {call}   # {ops} = {n.op}")
    rets = []
    for o in g.outputs:
        if isinstance(o, Value):
            rets.append(names[id(o)])
        else:
            env[f"_r{len(rets)}"] = o
            rets.append(f"_r{len(rets)}")
    lines.append(f"    return [{', '.join(rets)}]")
    src = "\n".join(lines) + "\n"
    env["_asarray"] = np.asarray
    exec(compile(src, f"<kiln:{g.name}>", "exec"), env)
    return env["program"], src
