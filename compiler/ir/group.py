"""Fused groups: the unit of code generation. The fuser (compiler/fusion.py) partitions a
graph's nodes into groups; each backend generates one kernel (Triton) or one code block
(NumPy) per group. Both backends read only this structure.

Group kinds
  pointwise   elementwise nodes over one iteration space (views fold into index arithmetic)
  reduction   pointwise prologue -> one or more reductions over the same rows -> pointwise
              epilogue over those rows (softmax, log_softmax, layer_norm, cross_entropy)
  matmul      one matmul with a pointwise epilogue (bias, activation, residual)
  extern      a library call (sort, linalg, einsum, index ops, ...), never fused
  view        layout-only nodes whose result is materialised (a group output that is a view)

Iteration space (what the fuser checked, what a kernel loops over)
  space       pointwise: the output shape; matmul: the matmul's output shape;
              reduction: the shape the reductions read (rows x reduced extent)
  rdims       reduction: the reduced axes of `space` (every reduction in the group uses them)
  final       reduction: (shape, dims) of a last reduction over the per-row results (the mean
              of cross_entropy), or None
"""


class Group:
    __slots__ = ("id", "kind", "nodes", "inputs", "outputs", "name", "notes", "space", "rdims",
                 "final")

    def __init__(self, id, kind, nodes, inputs=(), outputs=(), name=None, space=None,
                 rdims=None, final=None):
        self.id = id
        self.kind = kind
        self.nodes = list(nodes)          # compiler.ir.graph.Node, in topological order
        self.inputs = list(inputs)        # Values read from outside the group (graph inputs or
                                          # other groups' outputs), in a fixed order
        self.outputs = list(outputs)      # Values other groups or the graph outputs read
        self.name = name or default_name(kind, self.nodes, id)
        self.notes = []                   # human-readable decisions (for kiln dump)
        self.space, self.rdims, self.final = space, rdims, final

    def __repr__(self):
        return f"Group({self.name}: {self.kind}, {[n.op for n in self.nodes]})"


def default_name(kind, nodes, id):
    ops = []
    for n in nodes:
        if n.op not in ops and n.op not in ("reshape", "permute", "expand", "slice", "flip",
                                            "cast"):
            ops.append(n.op)
    body = "_".join(ops[:4]) or (nodes[0].op if nodes else kind)
    prefix = "fused_" if len(nodes) > 1 else ""
    return f"{prefix}{body}_{id}"


class Refusal:
    """A fusion the fuser considered and refused, with the reason `kiln dump` prints."""
    __slots__ = ("producer", "consumer", "reason")

    def __init__(self, producer, consumer, reason):
        self.producer, self.consumer, self.reason = producer, consumer, reason

    def __repr__(self):
        return f"refused {self.producer} -> {self.consumer}: {self.reason}"


class Partition:
    """What the fuser returns: groups in a valid execution order and every refusal."""
    __slots__ = ("graph", "groups", "refusals")

    def __init__(self, graph, groups, refusals):
        self.graph, self.groups, self.refusals = graph, groups, refusals

    def describe(self):
        lines = []
        for gr in self.groups:
            space = "" if gr.space is None else f" space={list(gr.space)}"
            if gr.rdims is not None:
                space += f" reduce={list(gr.rdims)}"
            if gr.final is not None:
                space += f" then reduce {list(gr.final[0])} over {list(gr.final[1])}"
            lines.append(f"{gr.name} [{gr.kind}{space}] <- {[v.name for v in gr.inputs]} -> "
                         f"{[v.name for v in gr.outputs]}")
            for n in gr.nodes:
                lines.append(f"    {', '.join(o.name for o in n.outputs)} = {n.op}")
            for note in gr.notes:
                lines.append(f"    # {note}")
        for r in self.refusals:
            lines.append(f"refused: {r.producer} -> {r.consumer}: {r.reason}")
        return "\n".join(lines)
