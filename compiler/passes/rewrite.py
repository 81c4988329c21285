"""The one-sweep rewriter every pass is built on.

A pass is a rule `rule(rw, node, ins) -> None | list of Values`, called once per node in
topological order with the node's inputs already mapped to the new graph (`ins`). Returning
None keeps the node (reused as is when its inputs did not change, else re-emitted with the new
inputs); returning a list replaces the node's outputs with those Values, which must have the
same shapes and dtypes. Rules may emit new nodes with `rw.emit`. The input graph is never
mutated: graph inputs keep their Value objects and order, and untouched nodes are shared.
"""
import copy

from ..ir.graph import Node, Value

_FP = []


def is_param(a):
    """A float constant lifted to a run-time parameter (compiler.backend.FloatParam): its value
    may change between runs of one compiled program, so no pass may depend on it."""
    if not _FP:
        from ..backend import FloatParam     # lazy: backend imports this package
        _FP.append(FloatParam)
    return isinstance(a, _FP[0])


def is_const_scalar(a):
    """A Python scalar whose value is fixed in the graph (not a Value, not a FloatParam)."""
    return isinstance(a, (bool, int, float, complex)) and not is_param(a)


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def same_aval(a, b):
    return isinstance(a, Value) and isinstance(b, Value) and a.shape == b.shape \
        and a.dtype is b.dtype


class Kept(list):
    """Outputs of a node the rule kept through Rewriter.keep."""


class Rewriter:
    def __init__(self, graph):
        self.old = graph
        g = copy.copy(graph)
        g.inputs = list(graph.inputs)
        g.nodes = []
        g.outputs = []
        self.g = g
        self.env = {}          # id(old Value) -> new Value
        self.producer = {}     # id(new Value) -> the new graph's Node that computes it
        self.count = 0         # nodes replaced by rules

    def map(self, a):
        return self.env.get(id(a), a) if isinstance(a, Value) else a

    def node_of(self, v):
        """The node computing `v` in the new graph (None for graph inputs and scalars)."""
        return self.producer.get(id(v)) if isinstance(v, Value) else None

    def keep(self, n, ins):
        """Keep node `n` (with its mapped inputs `ins`) and return its outputs in the new graph;
        for rules that need to know those Values. Not counted as a rewrite."""
        if all(x is y for x, y in zip(ins, n.inputs)):
            self.g.nodes.append(n)
            for o in n.outputs:
                self.producer[id(o)] = n
            return Kept(n.outputs)
        new = self._append(n.op, ins, n.attrs, n.outputs)
        new = new if isinstance(new, tuple) else (new,)
        for o, v in zip(n.outputs, new):
            self.env[id(o)] = v
        return Kept(new)

    def emit(self, op, inputs, attrs):
        """Append a new node; its meta rule checks the call and gives the output avals."""
        return self._append(op, list(inputs), dict(attrs), None)

    def _append(self, op, inputs, attrs, avals):
        g = self.g
        node = Node(op, inputs, attrs, [], len(g.nodes))
        if avals is None:
            meta = node.prim.meta(*inputs, **attrs)
            avals = meta if isinstance(meta, tuple) else (meta,)
        for i, m in enumerate(avals):
            node.outputs.append(Value(g, g._fresh(), m.shape, m.dtype, node, i))
        g.nodes.append(node)
        for o in node.outputs:
            self.producer[id(o)] = node
        return node.outputs[0] if len(node.outputs) == 1 else tuple(node.outputs)

    def run(self, rule):
        old = self.old
        for n in old.nodes:
            ins = [self.map(a) for a in n.inputs]
            r = rule(self, n, ins)
            if r is None:
                self.keep(n, ins)
                continue
            if type(r) is Kept:
                continue
            self.count += 1
            for o, v in zip(n.outputs, r):
                if not same_aval(o, v):
                    raise AssertionError(f"pass rewrote {n.op} output {o.name} "
                                         f"{o.shape}/{o.dtype} into {v!r} of another type")
                self.env[id(o)] = v
        self.g.outputs = [self.map(o) for o in old.outputs]
        return self.g


def sweep(graph, rule):
    """Apply `rule` once over the graph: (new graph, number of rewritten nodes). An unchanged
    graph is returned as the same object."""
    rw = Rewriter(graph)
    g = rw.run(rule)
    if rw.count == 0 and len(g.nodes) == len(graph.nodes) and \
            all(a is b for a, b in zip(g.nodes, graph.nodes)):
        return graph, 0
    return g, rw.count
