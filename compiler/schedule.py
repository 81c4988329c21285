"""Scheduling: the order fused groups run in, and each value's last use.

    schedule(partition) -> Schedule(order, last_use)

Groups run in a topological order of the group graph; among the groups that are ready, the one
that frees the most bytes (inputs it is the last reader of) net of the bytes it allocates runs
first, so memory peaks stay low; ties keep the fuser's order.
"""
from .ir.graph import Value


def nbytes(v):
    n = v.dtype.itemsize
    for s in v.shape:
        n *= s
    return n


class Schedule:
    __slots__ = ("order", "last_use", "end")

    def __init__(self, order, last_use, end):
        self.order = order          # list of Group, in run order
        self.last_use = last_use    # id(Value) -> position in `order` of its last reader
        self.end = end              # the position graph outputs are live until (len(order))

    def nodes(self):
        return [n for gr in self.order for n in gr.nodes]


def schedule(partition):
    groups = partition.groups
    producer = {}                   # id(Value) -> group position in partition order
    for k, gr in enumerate(groups):
        for n in gr.nodes:
            for o in n.outputs:
                producer[id(o)] = k
    deps = [set() for _ in groups]
    readers = {}                    # id(Value) -> set of group positions that read it
    for k, gr in enumerate(groups):
        for v in gr.inputs:
            p = producer.get(id(v))
            if p is not None and p != k:
                deps[k].add(p)
            readers.setdefault(id(v), set()).add(k)
    returned = {id(o) for o in partition.graph.outputs if isinstance(o, Value)}
    users = [set() for _ in groups]
    for k, d in enumerate(deps):
        for p in d:
            users[p].add(k)
    remaining = {vid: set(r) for vid, r in readers.items()}
    waiting = [len(d) for d in deps]
    ready = [k for k in range(len(groups)) if not waiting[k]]
    order = []
    while ready:
        def gain(k):
            gr = groups[k]
            freed = sum(nbytes(v) for v in gr.inputs
                        if remaining.get(id(v)) == {k} and id(v) not in returned and
                        id(v) in producer)
            return freed - sum(nbytes(v) for v in gr.outputs)
        best = max(ready, key=lambda k: (gain(k), -k))
        ready.remove(best)
        order.append(best)
        for v in groups[best].inputs:
            remaining.get(id(v), set()).discard(best)
        for u in users[best]:
            waiting[u] -= 1
            if not waiting[u]:
                ready.append(u)
    if len(order) != len(groups):
        raise RuntimeError("schedule: the group graph has a cycle (fusion bug)")
    end = len(order)
    last_use = {}
    for pos, k in enumerate(order):
        for v in groups[k].inputs:
            last_use[id(v)] = pos
    for vid in returned:
        last_use[vid] = end
    return Schedule([groups[k] for k in order], last_use, end)
