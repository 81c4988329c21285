"""The recorded autograd graph as data: next_functions, and graph_of(t), which builds the
backward of t as a printable compiler Graph by running the same VJP rules with a graph
emitter instead of the eager one."""
from compiler.ir.graph import Graph, GraphEmitter, Value
from compiler.ir.registry import AVal


class AccumulateGrad:
    def __init__(self, variable):
        self.variable = variable

    def name(self):
        return "torch::autograd::AccumulateGrad"

    def __repr__(self):
        return f"<AccumulateGrad object at {hex(id(self))}>"

    next_functions = ()


def next_functions(node):
    out = []
    for e in node.edges:
        if e is None:
            out.append((None, 0))
        elif e[0] is None:
            out.append((AccumulateGrad(e[1]), 0))
        else:
            out.append((e[0], e[1]))
    return tuple(out)


def forward_graph(t):
    """The recorded forward graph of tensor t (leaves and constants become graph inputs)."""
    g = Graph("forward")
    env = {}
    order = []
    seen = set()
    stack = [t._node]
    while stack:
        n = stack.pop()
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        order.append(n)
        for e in n.edges:
            if e is not None and e[0] is not None:
                stack.append(e[0])
    order.sort(key=lambda n: n.seq)
    return g, order


def graph_of(t, name="backward"):
    """Backward graph of `t` (a tensor with a grad_fn) as a compiler Graph:
    inputs are the saved forward values and the output cotangent, outputs the gradients of
    every leaf that requires grad."""
    if t._node is None:
        raise RuntimeError("graph_of: tensor has no grad_fn (it is a leaf or does not require grad)")
    _, order = forward_graph(t)
    g = Graph(name)
    b = GraphEmitter(g)
    vals = {}
    counter = [0]

    def val_of(x, hint):
        if not hasattr(x, "shape") or isinstance(x, (int, float, bool, AVal)):
            return x   # scalars and shape-only metadata stay as they are
        k = id(x)
        if k not in vals:
            counter[0] += 1
            vals[k] = g.add_input(f"{hint}{counter[0]}", tuple(x.shape), x.dtype)
        return vals[k]

    cot = {}
    tn = t._node
    cot[(id(tn), t._oi)] = g.add_input("grad_out", tuple(t.shape), t.dtype)
    leaf_out = {}
    for n in reversed(order):
        gs = [cot.get((id(n), i)) for i in range(len(n.outs))]
        if all(x is None for x in gs):
            continue
        if n.fn is not None or n.saved is None:
            raise RuntimeError(f"graph_of: node {n._name} has no VJP rule in the registry "
                               "(custom Function or freed graph)")
        saved = [val_of(s, "saved") for s in n.saved]
        out = n.out
        if out is not None:
            out = tuple(val_of(o, "out") for o in out) if isinstance(out, tuple) else val_of(out, "out")
        p = n.prim
        if p.nout == 1:
            if gs[0] is None:
                continue
            r = p.vjp(b, gs[0], *saved, out=out, **n.attrs)
        else:
            r = p.vjp(b, tuple(gs), *saved, out=out, **n.attrs)
        for e, gi in zip(n.edges, r):
            if e is None or gi is None:
                continue
            if e[0] is None:
                k = id(e[1])
                leaf_out[k] = gi if k not in leaf_out else g.call("add", leaf_out[k], gi)
            else:
                k = (id(e[0]), e[1])
                cot[k] = gi if k not in cot else g.call("add", cot[k], gi)
    g.set_outputs(list(leaf_out.values()))
    return g
