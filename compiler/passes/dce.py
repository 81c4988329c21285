"""Dead-code elimination: drop nodes none of whose outputs reach a graph output."""
import copy

from ..ir.graph import Value


def dce(graph):
    live = set()
    for o in graph.outputs:
        if isinstance(o, Value):
            live.add(id(o))
    keep = []
    for n in reversed(graph.nodes):
        if any(id(o) in live for o in n.outputs):
            keep.append(n)
            for a in n.inputs:
                if isinstance(a, Value):
                    live.add(id(a))
    keep.reverse()
    if len(keep) == len(graph.nodes):
        return graph
    g = copy.copy(graph)
    g.nodes = keep
    return g
