"""Fusion: partition a graph's nodes into fused Groups (compiler/ir/group.py).

    partition(graph, size_cap=64, closing_cap=None, one_order=False) -> Partition

Decisions are made on a networkx DiGraph of the graph's nodes, condensed as groups merge:

  * views (reshape/permute/expand/slice/flip/...) join the one group that reads them: they
    are index arithmetic there; a view read by several groups (or returned) stays a view group;
  * vertical pointwise chains over one iteration space fuse (casts, where and comparisons are
    pointwise too);
  * pointwise producers fuse into the reduction that reads them (prologue); pointwise
    consumers over the same rows fuse after it (epilogue), and further reductions over the
    same rows join, so softmax / log_softmax / layer_norm / cross_entropy are one group. A
    gather that picks one element per row along the reduced axis (cross_entropy's target
    pick) is a row reduction, and one last reduction of the per-row results (the loss mean)
    may close the group;
  * a matmul takes a pointwise epilogue over its output (bias, activation, residual);
  * extern/scatter/gather/concat/scan ops stay alone; a merge that would create a cycle
    between groups, exceed the size cap, or mix iteration spaces is refused; for Triton
    (one_order) a computed value does not fuse through a transposing permute into a
    pointwise group, or through a flip into any group, where its elements would meet the
    others in another order.

Every refused candidate is recorded as a Refusal(producer, consumer, reason).
"""
import networkx as nx

from .ir.graph import Value
from .ir.group import Group, Refusal, Partition

SIZE_CAP = 64

EXTERN = "extern op"
CYCLE = "would create cycle"
SIZE = "size cap"
SPACE = "iteration space differs"
CLOSING = "closing reduction over more rows than one program holds"
PERMUTED = "permute or flip of a computed value (its elements meet the group's in another order)"

# The Triton backend closes a row group in one program (every row in one tile), so it caps the
# iteration space a closing reduction may join; the NumPy backend has no such limit (None).
TRITON_CLOSING_CAP = 1 << 13


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _row_select(n):
    """gather(x, index, dim) with one index per row along `dim`: a reduction over `dim`."""
    if n.op != "gather" or len(n.inputs) < 2:
        return False
    x, idx = n.inputs[0], n.inputs[1]
    if not isinstance(x, Value) or not isinstance(idx, Value) or not x.shape:
        return False
    d = n.attrs.get("dim", 0) % len(x.shape)
    want = tuple(1 if i == d else s for i, s in enumerate(x.shape))
    return tuple(idx.shape) == want


def _transposes(n):
    """A permute that reorders dims of size > 1 (not only moving 1s around)."""
    if n.op != "permute":
        return False
    x = n.inputs[0]
    big = [d for d in n.attrs["dims"] if x.shape[d] != 1]
    return big != sorted(big)


def _flips(n):
    """A flip that reverses a dim of size > 1."""
    return n.op == "flip" and any(n.inputs[0].shape[d] != 1 for d in n.attrs["dims"])


def role(n):
    """How the fuser treats a node: pointwise, view, reduction, matmul or extern."""
    k = n.prim.kind
    if k in ("pointwise", "creation"):
        return "pointwise"
    if k in ("view", "reduction", "matmul"):
        return k
    if k == "gather" and _row_select(n):
        return "reduction"
    return "extern"


def reduction_space(n):
    """(shape read, reduced axes) of a reduction node."""
    x = n.inputs[0]
    nd = len(x.shape)
    if n.op == "gather":
        return tuple(x.shape), (n.attrs.get("dim", 0) % nd,)
    dims = n.attrs.get("dims", n.attrs.get("dim"))
    if dims is None:
        dims = tuple(range(nd))
    elif isinstance(dims, int):
        dims = (dims,)
    return tuple(x.shape), tuple(sorted(d % max(nd, 1) for d in dims)) if nd else ()


def _row_shapes(space, rdims):
    keep = tuple(1 if i in rdims else s for i, s in enumerate(space))
    drop = tuple(s for i, s in enumerate(space) if i not in rdims)
    return {keep, drop}


class _G:
    """A group while the fuser works: members (node indices) and its iteration space."""
    __slots__ = ("id", "members", "kind", "space", "rdims", "final", "notes")

    def __init__(self, id, kind, members, space=None, rdims=None):
        self.id, self.kind, self.members = id, kind, members
        self.space, self.rdims, self.final = space, rdims, None
        self.notes = []

    def shapes(self):
        """Output shapes a pointwise node may have to join this reduction group."""
        s = {self.space} | _row_shapes(self.space, self.rdims)
        if self.final is not None:
            s |= _row_shapes(*self.final)
        return s


def _combine(p, c, closing_cap=None):
    """Merged descriptor (kind, space, rdims, final, note) for producer p and consumer c, or a
    refusal reason string."""
    kinds = (p.kind, c.kind)
    if "extern" in kinds:
        return EXTERN
    if p.kind == "view":
        return (c.kind, c.space, c.rdims, c.final, "view folded into index arithmetic")
    if c.kind == "view":
        return (p.kind, p.space, p.rdims, p.final, "view folded into index arithmetic")
    if kinds == ("pointwise", "pointwise"):
        if p.space == c.space:
            return ("pointwise", c.space, None, None, "vertical pointwise chain")
        return SPACE
    if "matmul" in kinds:
        if kinds == ("matmul", "pointwise"):
            if c.space == p.space:
                return ("matmul", p.space, None, None, "matmul epilogue")
            return SPACE
        if kinds == ("pointwise", "matmul"):
            return "matmul operands are read from memory (no prologue)"
        return "matmul does not fuse with a " + (p.kind if c.kind == "matmul" else c.kind)
    # reductions
    if "pointwise" in kinds:
        r, q = (p, c) if p.kind == "reduction" else (c, p)
        if q.space in r.shapes():
            return ("reduction", r.space, r.rdims, r.final,
                    "pointwise epilogue" if r is p else "pointwise prologue")
        return SPACE
    # both reductions
    if (p.space, p.rdims) == (c.space, c.rdims):
        if p.final is not None and c.final is not None and p.final != c.final:
            return SPACE
        return ("reduction", p.space, p.rdims, p.final or c.final, "same rows")
    for a, b in ((p, c), (c, p)):
        # b reduces all of a's per-row results: the closing reduction (a loss mean)
        fin = (b.space, b.rdims)
        full = b.rdims == tuple(range(len(b.space)))
        if b.final is None and full and b.space in _row_shapes(a.space, a.rdims) and \
                (a.final is None or a.final == fin):
            if closing_cap is not None and _numel(a.space) > closing_cap:
                return CLOSING
            return ("reduction", a.space, a.rdims, fin, "closing reduction over the rows")
    return SPACE


def partition(graph, size_cap=SIZE_CAP, closing_cap=None, one_order=False):
    """one_order: the backend's kernels visit every value of a group in one index order
    (Triton), so a permuted computed value cannot meet unpermuted ones inside a group; NumPy
    programs permute arrays and need no such split."""
    nodes = graph.nodes
    # producers by value (a Value's .node may be a pre-pass copy of the node)
    index = {id(o): i for i, n in enumerate(nodes) for o in n.outputs}
    roles = [role(n) for n in nodes]
    g = nx.DiGraph()
    g.add_nodes_from(range(len(nodes)))
    readers = [[] for _ in nodes]       # node -> nodes reading any of its outputs
    vreaders = {}                         # id(Value) -> nodes reading it
    for i, n in enumerate(nodes):
        for a in n.inputs:
            if isinstance(a, Value) and id(a) in index:
                j = index[id(a)]
                vreaders.setdefault(id(a), []).append(i)
                if j != i:
                    g.add_edge(j, i)
                    if i not in readers[j]:
                        readers[j].append(i)
    returned = {id(o) for o in graph.outputs if isinstance(o, Value)}

    groups = {}
    gid = list(range(len(nodes)))
    for i, n in enumerate(nodes):
        r = roles[i]
        if r == "reduction":
            sp, rd = reduction_space(n)
            groups[i] = _G(i, r, [i], sp, rd)
        elif r in ("pointwise", "matmul"):
            groups[i] = _G(i, r, [i], tuple(n.outputs[0].shape))
        else:
            groups[i] = _G(i, r, [i])
    h = g.copy()                       # condensed graph: one vertex per group id
    refusals, seen = [], set()

    def name(i):
        n = nodes[i]
        return f"{n.outputs[0].name}:{n.op}" if n.outputs else n.op

    def refuse(pi, ci, reason):
        k = (pi, ci, reason)
        if k not in seen:
            seen.add(k)
            refusals.append(Refusal(name(pi), name(ci), reason))

    def creates_cycle(a, b):
        for s in h.successors(a):
            if s != b and nx.has_path(h, s, b):
                return True
        for s in h.successors(b):
            if s != a and nx.has_path(h, s, a):
                return True
        return False

    def try_merge(pi, ci):
        """Merge the groups of node pi (producer side) and ci; False with a refusal if not."""
        a, b = groups[gid[pi]], groups[gid[ci]]
        if a is b:
            return True
        res = _combine(a, b, closing_cap)
        if isinstance(res, str):
            refuse(pi, ci, res)
            return False
        if len(a.members) + len(b.members) > size_cap:
            refuse(pi, ci, SIZE)
            return False
        if creates_cycle(a.id, b.id):
            refuse(pi, ci, CYCLE)
            return False
        kind, space, rdims, final, note = res
        # b's members move into a
        for m in b.members:
            gid[m] = a.id
        a.members += b.members
        a.kind, a.space, a.rdims, a.final = kind, space, rdims, final
        a.notes += b.notes
        a.notes.append(f"{name(pi)} -> {name(ci)}: {note}")
        for s in list(h.successors(b.id)):
            if s != a.id:
                h.add_edge(a.id, s)
        for p in list(h.predecessors(b.id)):
            if p != a.id:
                h.add_edge(p, a.id)
        h.remove_node(b.id)
        del groups[b.id]
        return True

    # 1. views join their single reading group (latest first, so view chains collapse)
    for i in reversed(range(len(nodes))):
        if roles[i] != "view":
            continue
        outs = nodes[i].outputs
        rgroups = {gid[j] for j in readers[i]}
        if any(id(o) in returned for o in outs) or not rgroups:
            continue
        if len(rgroups) > 1:
            refuse(i, readers[i][0], "view read by several groups (kept as a view group)")
            continue
        try_merge(i, readers[i][0])

    # 2. producer -> consumer merges in topological order
    for i in range(len(nodes)):
        for a in nodes[i].inputs:
            if not isinstance(a, Value) or id(a) not in index:
                continue
            j = index[id(a)]
            if gid[j] == gid[i] or j == i:
                continue
            if groups[gid[j]].kind == "view" or groups[gid[i]].kind == "view":
                continue            # a shared or returned view stays a view group
            if one_order and roles[j] != "view" and (
                    _flips(nodes[i]) or
                    _transposes(nodes[i]) and groups[gid[i]].kind == "pointwise"):
                # the permuted (or flipped) value would meet the group's other values element
                # by element in another order: read it from memory instead (the view folds
                # into the load)
                refuse(j, i, PERMUTED)
                continue
            try_merge(j, i)

    # groups in a valid order: topological, ties by earliest node
    first = {k: min(gr.members) for k, gr in groups.items()}
    order = list(nx.lexicographical_topological_sort(h, key=lambda k: first[k]))
    out_groups = []
    for pos, k in enumerate(order):
        gr = groups[k]
        members = sorted(gr.members)
        mem = set(members)
        ins, outs, seen_in = [], [], set()
        for m in members:
            for a in nodes[m].inputs:
                if isinstance(a, Value) and id(a) not in seen_in and index.get(id(a)) not in mem:
                    seen_in.add(id(a))
                    ins.append(a)
        for m in members:
            for o in nodes[m].outputs:
                if id(o) in returned or any(gid[r] != k for r in vreaders.get(id(o), ())):
                    outs.append(o)
        grp = Group(pos, gr.kind, [nodes[m] for m in members], ins, outs,
                    space=gr.space, rdims=gr.rdims, final=gr.final)
        grp.notes = list(gr.notes)
        out_groups.append(grp)
    return Partition(graph, out_groups, refusals)
