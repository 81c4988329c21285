"""The recorded autograd graph as data: next_functions, and graph_of(t), which builds the
backward of t as a printable compiler Graph by running the same VJP rules with a graph
emitter instead of the eager one."""
import numpy as np

from compiler.ir.graph import Graph, GraphEmitter
from compiler.ir.registry import AVal
from ..tensor import Tensor

__all__ = ["graph_of", "recorded_nodes", "next_functions", "AccumulateGrad", "Node"]


class AccumulateGrad:
    """The grad_fn-graph node standing for a leaf: its gradient accumulates into .grad."""

    def __init__(self, variable):
        self.variable = variable

    def name(self):
        return "torch::autograd::AccumulateGrad"

    def __repr__(self):
        return f"<AccumulateGrad object at {hex(id(self))}>"

    next_functions = ()


def next_functions(node):
    """((producer node, output index) | (AccumulateGrad, 0) | (None, 0)) per input, as PyTorch."""
    out = []
    for e in node.edges:
        if e is None:
            out.append((None, 0))
        elif e[0] is None:
            leaf = e[1]
            acc = leaf.__dict__.get("_accumulate_grad")
            if acc is None:     # one per leaf, so identity comparisons work like PyTorch's
                acc = leaf._accumulate_grad = AccumulateGrad(leaf)
            out.append((acc, 0))
        else:
            out.append((e[0], e[1]))
    return tuple(out)


def recorded_nodes(t):
    """Every node t's grad_fn reaches, in recording (forward) order."""
    if t._node is None:
        return []
    seen = {t._node}
    order, stack = [], [t._node]
    while stack:
        n = stack.pop()
        order.append(n)
        for e in n.edges:
            if e is not None and e[0] is not None and e[0] not in seen:
                seen.add(e[0])
                stack.append(e[0])
    order.sort(key=lambda n: n.seq)
    return order


def graph_of(t, name="backward"):
    """The backward of `t` (a tensor with a grad_fn) as a compiler Graph, built by the same VJP
    rules backward() runs, with a graph emitter instead of the eager one.

    Graph inputs: `grad_out` (the cotangent of t), then the saved forward values the rules
    read. Outputs: the gradient of every leaf that requires grad. Besides the usual Graph API
    the result carries `example_inputs` (the arrays of those inputs, grad_out = ones, so
    `g.run(*g.example_inputs)` reproduces backward()) and `leaves` (tensor of each output).
    """
    if t._node is None:
        raise RuntimeError("graph_of: tensor has no grad_fn (it is a leaf or does not require "
                           "grad)")
    order = recorded_nodes(t)
    g = Graph(name)
    b = GraphEmitter(g)
    arrays = []
    vals = {}
    counter = [0]

    def val_of(x, prefix):
        if not isinstance(x, Tensor):
            return x   # Python scalars and shape-only metadata (AVal) stay as they are
        k = id(x._data)
        v = vals.get(k)
        if v is None:
            v = vals[k] = g.add_input(f"{prefix}{counter[0]}", tuple(x.shape), x.dtype)
            counter[0] += 1
            arrays.append(np.asarray(x._data))
        return v

    cot = {(t._node, t._oi): g.add_input("grad_out", tuple(t.shape), t.dtype)}
    arrays.append(np.ones(t._data.shape, t._dtype.np))
    leaf_grad = {}
    leaves = {}
    for n in reversed(order):
        gs = [cot.pop((n, i), None) for i in range(len(n.outs))]
        if all(x is None for x in gs):
            continue
        if n.fn is not None:
            raise RuntimeError(f"graph_of: {n._name} is a custom autograd.Function; its backward "
                               "is Python code, not IR")
        if n.freed:
            raise RuntimeError(f"graph_of: the saved values of {n._name} were freed by an earlier "
                               "backward (use retain_graph=True)")
        saved = [val_of(s, "saved") for s in n.saved]
        out = None
        if n.out is not None:
            from .._dispatch import wrap
            outs = [val_of(wrap(a, n.outs[i].dtype), "out") for i, a in enumerate(n.out)]
            out = outs[0] if len(outs) == 1 else tuple(outs)
        p = n.prim
        if p.nout == 1:
            r = p.vjp(b, gs[0], *saved, out=out, **n.attrs)
        else:
            r = p.vjp(b, tuple(gs), *saved, out=out, **n.attrs)
        for e, gi in zip(n.edges, r):
            if e is None or gi is None:
                continue
            if e[0] is None:
                k = id(e[1])
                leaves[k] = e[1]
                leaf_grad[k] = gi if k not in leaf_grad else g.call("add", leaf_grad[k], gi)
            else:
                k = (e[0], e[1])
                cot[k] = gi if k not in cot else g.call("add", cot[k], gi)
    g.set_outputs(list(leaf_grad.values()))
    # grad_out first: it is the input a reader looks for
    gi = g.inputs.index(next(v for v in g.inputs if v.name == "grad_out"))
    g.inputs.insert(0, g.inputs.pop(gi))
    arrays.insert(0, arrays.pop(gi))
    g.example_inputs = arrays
    g.leaves = [leaves[k] for k in leaf_grad]
    return g


from .._dispatch import Node  # noqa: E402,F401  (torch.autograd.graph.Node)
