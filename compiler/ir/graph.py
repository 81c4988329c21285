"""Graph, Node and Value: Kiln's IR. A graph prints as a readable, runnable Python function
(like a jaxpr), one primitive call per line with the output's dtype and shape:

    def graph(x: f32[4, 8], w: f32[8, 3]):
        v0: f32[4, 3] = matmul(x, w)
        v1: f32[4, 3] = maximum(v0, 0.0)
        return v1
"""
import numpy as np

from runtime import dtypes as dt
from .registry import AVal, REGISTRY, is_scalar

_SHORT = {"bool": "b8", "uint8": "u8", "int8": "i8", "int16": "i16", "int32": "i32",
          "int64": "i64", "float16": "f16", "bfloat16": "bf16", "float32": "f32",
          "float64": "f64", "complex32": "c32", "complex64": "c64", "complex128": "c128",
          "uint16": "u16", "uint32": "u32", "uint64": "u64"}


def consts_key(values):
    """Float constants as comparable, hashable values: their bit patterns, so that a NaN (a
    fresh float('nan') per trace, never == itself) matches across calls and -0.0 stays apart
    from 0.0. For keys that decide whether a recorded program or graph still fits."""
    return tuple(float(c).hex() if isinstance(c, float) else c for c in values)


def type_str(a):
    return f"{_SHORT[a.dtype.name]}{list(a.shape)}"


class Value:
    """A graph value: an input, or output `index` of `node`."""
    __slots__ = ("graph", "name", "shape", "dtype", "node", "index")

    def __init__(self, graph, name, shape, dtype, node=None, index=0):
        self.graph, self.name, self.shape, self.dtype = graph, name, tuple(shape), dtype
        self.node, self.index = node, index

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return self.name


class Node:
    __slots__ = ("op", "inputs", "attrs", "outputs", "id")

    def __init__(self, op, inputs, attrs, outputs, id):
        self.op, self.inputs, self.attrs, self.outputs, self.id = op, inputs, attrs, outputs, id

    @property
    def prim(self):
        return REGISTRY[self.op]

    def __repr__(self):
        return f"Node({self.op}, {self.inputs})"


def _fmt_attr(v):
    if isinstance(v, dt.DType):
        return "torch." + v.name
    if isinstance(v, float):
        return repr(v)
    return repr(v)


class Graph:
    def __init__(self, name="graph"):
        self.name = name
        self.inputs = []
        self.nodes = []
        self.outputs = []
        self._n = 0

    def _fresh(self, prefix="v"):
        self._n += 1
        return f"{prefix}{self._n - 1}"

    def add_input(self, name, shape, dtype):
        v = Value(self, name, shape, dtype)
        self.inputs.append(v)
        return v

    def call(self, op, *args, _meta=None, **attrs):
        """Record one primitive application; shapes and errors come from its meta rule
        (`_meta`: already computed by the caller, as the tracer does)."""
        p = REGISTRY[op]
        meta = p.meta(*args, **attrs) if _meta is None else _meta
        node = Node(op, list(args), attrs, [], len(self.nodes))
        metas = meta if isinstance(meta, tuple) else (meta,)
        for i, m in enumerate(metas):
            node.outputs.append(Value(self, self._fresh(), m.shape, m.dtype, node, i))
        self.nodes.append(node)
        return tuple(node.outputs) if isinstance(meta, tuple) else node.outputs[0]

    def set_outputs(self, outs):
        self.outputs = list(outs)

    # ---- printing ------------------------------------------------------------------------
    def __str__(self):
        args = ", ".join(f"{v.name}: {type_str(v)}" for v in self.inputs)
        lines = [f"def {self.name}({args}):"]
        for n in self.nodes:
            outs = ", ".join(f"{o.name}: {type_str(o)}" for o in n.outputs)
            ins = [(a.name if isinstance(a, Value) else _fmt_attr(a)) for a in n.inputs]
            ins += [f"{k}={_fmt_attr(v)}" for k, v in n.attrs.items()]
            lines.append(f"    {outs} = {n.op}({', '.join(ins)})")
        rets = ", ".join(o.name if isinstance(o, Value) else repr(o) for o in self.outputs)
        lines.append(f"    return {rets}" if rets else "    return None")
        return "\n".join(lines)

    __repr__ = __str__

    # ---- structure ---------------------------------------------------------------------------
    def float_consts(self):
        """The Python float constants of the graph in node order. A compiled graph takes them as
        parameters, so graphs that differ only in these values share one compiled program
        (an optimizer's bias correction changes every step)."""
        return [a for n in self.nodes for a in n.inputs if type(a) is float]

    def key(self):
        """Structural key: ops, attributes, wiring, input types, outputs; float constants are
        abstracted to their position (see float_consts)."""
        ids = {id(v): f"i{k}" for k, v in enumerate(self.inputs)}
        parts = [";".join(type_str(v) for v in self.inputs)]
        for j, n in enumerate(self.nodes):
            for k, o in enumerate(n.outputs):
                ids[id(o)] = f"n{j}.{k}"
            args = ",".join(ids[id(a)] if isinstance(a, Value) else
                            ("f" if type(a) is float else repr(a)) for a in n.inputs)
            attrs = ",".join(f"{k}={_fmt_attr(v)}" for k, v in n.attrs.items())
            parts.append(f"{n.op}({args}|{attrs})->" + ",".join(type_str(o) for o in n.outputs))
        parts.append("out:" + ",".join(ids.get(id(o), repr(o)) if isinstance(o, Value) else repr(o)
                                       for o in self.outputs))
        return "\n".join(parts)

    # ---- execution with the NumPy lowerings (reference interpreter) ------------------------
    def run(self, *arrays, consts=None):
        """Execute with each primitive's NumPy lowering; `consts` replaces float_consts()."""
        env = {id(v): a for v, a in zip(self.inputs, arrays)}
        it = iter(consts) if consts is not None else None
        for n in self.nodes:
            args = [env[id(a)] if isinstance(a, Value) else
                    (next(it) if it is not None and type(a) is float else a) for a in n.inputs]
            metas = [AVal(o.shape, o.dtype) for o in n.outputs]
            r = n.prim.numpy(metas[0] if len(metas) == 1 else metas, *args, **n.attrs)
            rs = r if isinstance(r, tuple) else (r,)
            for o, x in zip(n.outputs, rs):
                env[id(o)] = np.asarray(x)
        return [env[id(o)] if isinstance(o, Value) else o for o in self.outputs]


class GraphEmitter:
    """The emitter VJP rules write to when the result should be a graph: b.mul(x, y) records."""

    def __init__(self, graph):
        self.graph = graph

    def __getattr__(self, op):
        if op not in REGISTRY:
            raise AttributeError(op)
        g = self.graph
        return lambda *a, **k: g.call(op, *a, **k)


def is_value(x):
    return isinstance(x, Value)


__all__ = ["Graph", "Node", "Value", "GraphEmitter", "type_str", "is_scalar"]
