"""Graph passes, each a small module; run_all applies them in a fixed order and returns a log.

    views     shorten layout chains (permute∘permute, ...); select as slice+reshape views.py
    layout    permute(matmul) as a matmul of transposes; copies of fresh values  layout.py
    simplify  exact algebraic identities (x * 1, neg(neg(x)), lossless cast chains)  simplify.py
    fold      constant folding; no-op casts/reshapes/permutes                       fold.py
    cse       merge equal nodes                                                     cse.py
    dce       drop nodes no output needs                                            dce.py

A pass maps a Graph to a Graph with the same semantics: the same input Values in the same
order, outputs replaced by equivalent Values; the input graph is not modified. Float constants
that are FloatParams (run-time parameters of the compiled program) are never folded.
"""
from ..ir.graph import Value
from .rewrite import Rewriter
from .views import views, views_count
from .layout import layout, layout_count
from .simplify import simplify, simplify_count
from .fold import fold, fold_count
from .cse import cse, cse_count
from .dce import dce

MAX_ROUNDS = 4
# bumped whenever a pass rewrites differently: compiled programs cached on disk were generated
# from the graph these passes produced, so a program cache key should include it
VERSION = 3


def _dce_count(graph):
    g = dce(graph)
    return g, len(graph.nodes) - len(g.nodes)


PASSES = (("views", views_count), ("layout", layout_count), ("simplify", simplify_count),
          ("fold", fold_count),
          ("cse", cse_count), ("dce", _dce_count))


def run_all(graph):
    """Apply every pass in order until none changes anything (at most MAX_ROUNDS rounds).
    Returns (graph, log) with log = [(pass name, nodes it removed or rewrote in total)]."""
    totals = {name: 0 for name, _ in PASSES}
    g = graph
    for _ in range(MAX_ROUNDS):
        changed = 0
        for name, fn in PASSES:
            g, k = fn(g)
            totals[name] += k
            changed += k
        if not changed:
            break
    g = _keep_outputs_distinct(graph, g)
    return g, [(name, totals[name]) for name, _ in PASSES]


def _roots(graph):
    """For each output Value: the Value whose memory it may share (through view ops)."""
    prod = {id(o): n for n in graph.nodes for o in n.outputs}
    out = []
    for v in graph.outputs:
        while isinstance(v, Value):
            n = prod.get(id(v))
            if n is None or n.prim.kind != "view" or not n.inputs or \
                    not isinstance(n.inputs[0], Value):
                break
            v = n.inputs[0]
        out.append(v)
    return out


def _keep_outputs_distinct(before, after):
    """Rewrites can make an output that was a fresh array into a graph input (x * 1 -> x) or into
    another output (CSE), and a caller that writes to one of them in place would then change the
    other. Such outputs get a copy, so outputs alias exactly as much as before the passes."""
    old, new = _roots(before), _roots(after)
    inputs = {id(v) for v in before.inputs}
    need, first = [], {}       # first: id(new root) -> the old root of its first output
    for i, (o, r) in enumerate(zip(old, new)):
        if not isinstance(r, Value):
            continue
        if id(r) in inputs and id(o) not in inputs:
            need.append(i)
        elif first.setdefault(id(r), o) is not o:
            need.append(i)
    if not need:
        return after
    rw = Rewriter(after)
    g = rw.run(lambda rw, n, ins: None)
    for i in need:
        g.outputs[i] = rw.emit("copy", [g.outputs[i]], {})
    return g
