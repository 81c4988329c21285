"""Memory planning: which buffer each computed value is written into.

    plan(nodes, graph, modes, inplace) -> MemoryPlan

`nodes` is the scheduled node order. The code generator says how each node produces its value:

  "out"    written into a planned buffer (np.add(a, b, out=buf)): gets a slot here
  "view"   a view of its input (shares its storage)
  "fresh"  a new array made by a library call (no slot)
  "alias"  a library call whose result may share its inputs' storage (conservative)

and `inplace[node]`: input positions an "out" node may overwrite (pointwise reads each element
once, at the position it writes). Slots are flat buffers; values are views of a slot's prefix.
A slot is reused when its value (and every view of it) is dead: in place when a dying input of a
pointwise node has the output's shape, dtype and layout (`transposed`: 2-D values the code
generator holds transposed) and owns its storage (not a graph input or a view), else a free
slot of the same dtype that is big enough. Slots holding a graph output are
"fresh": allocated again on every call, so arrays returned to the caller are never overwritten
by the next call; the others are allocated once per program and persist.

Donation (`donate`: {id(output Value): input position}): an output that replaces an input
array's contents anyway (a captured in-place write, see backend.compile_graph) is written
straight into that input array when it is safe: its producer is an "out" node, no node after
it reads the input's storage (through any view or alias), the input is not returned, and at
the producer itself the input is read only as a whole-array operand at an in-place position
(an elementwise op reading each element before writing it). MemoryPlan.donated maps such
values to their input position; they get no slot. Anything else falls back to a buffer.

A donated input's array is also scratch space once its own value is dead: the caller replaces
its contents anyway (written directly, or copied back from the output's buffer). So an
intermediate computed element-wise in place over a donated input at that input's last read
(AdamW's p * (1 - lr * wd), which p + update then reads) is written into the input array, and
the chain may continue in place there; the donated output itself then reads the last link in
place. Such values are in MemoryPlan.donated too, never returned, and spare a buffer the size
of the parameter (less memory traffic per optimizer step).
"""
from .ir.graph import Value


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


class Slot:
    __slots__ = ("id", "dtype", "size", "fresh", "values")

    def __init__(self, id, dtype, size):
        self.id, self.dtype, self.size = id, dtype, size     # dtype: runtime DType
        self.fresh = False
        self.values = []            # Values stored here over time, in order

    @property
    def nbytes(self):
        return self.size * self.dtype.itemsize


class MemoryPlan:
    def __init__(self, slots, slot_of, inplace, naive_bytes, donated=None,
                 transposed=frozenset()):
        self.slots = slots
        self.transposed = transposed        # ids of 2-D values held transposed (numpy_gen)
        self.donated = donated or {}        # id(Value) -> input position it is written into
        self.slot_of = slot_of      # id(Value) -> Slot
        self.inplace = inplace      # [(output Value, input Value)] written in place
        self.naive_bytes = naive_bytes      # one buffer per "out" value
        self.planned_bytes = sum(s.nbytes for s in slots)
        self.persistent_bytes = sum(s.nbytes for s in slots if not s.fresh)
        self.stable_outputs = set()     # id(returned Value): storage final once produced

    def describe(self):
        lines = [f"memory: planned {self.planned_bytes} bytes (persistent "
                 f"{self.persistent_bytes}) vs naive {self.naive_bytes} bytes, "
                 f"{len(self.slots)} buffers, {len(self.inplace)} in place, "
                 f"{len(self.donated)} into donated inputs"]
        for s in self.slots:
            lines.append(f"  buf{s.id} {s.dtype.name}[{s.size}]{' fresh' if s.fresh else ''}: "
                         + ", ".join(v.name for v in s.values))
        return "\n".join(lines)


def _donatable(n, i, w, k, graph, roots, last, inplace, occupant=None):
    """May node n (at i) write its output w into input k's array? occupant: the intermediate
    now held in that array (see _into_input), if any."""
    r = ("in", k)
    if last.get(r, -1) > i:
        return False
    x = graph.inputs[k]
    if x.shape != w.shape or x.dtype is not w.dtype:
        return False
    held = {r}
    if occupant is not None:
        ro = ("v", id(occupant))
        if last.get(ro, -1) > i:
            return False            # the intermediate there is read after n
        held.add(ro)
    ok = inplace.get(id(n), ())
    for p, a in enumerate(n.inputs):
        if isinstance(a, Value) and held & roots.get(id(a), frozenset()):
            if (a is not x and a is not occupant) or p not in ok:
                return False
    return True


def _into_input(n, i, w, targets, occupant, roots, last, inplace, end, graph_inputs):
    """The donated input position whose array node n (at i) may write its intermediate output w
    into, in place over an operand that dies there (the input itself, or the intermediate
    already held in that array), or None."""
    if last.get(("v", id(w))) == end:
        return None                 # returned: the donated output overwrites that array later
    for p in inplace.get(id(n), ()):
        v = n.inputs[p]
        if not isinstance(v, Value) or v.shape != w.shape or v.dtype is not w.dtype:
            continue
        rs = roots.get(id(v))
        k = next(iter(rs))[1] if rs and len(rs) == 1 and next(iter(rs))[0] == "in" else None
        if k is not None:
            if k not in targets or k in occupant or v is not graph_inputs[k]:
                continue            # (a view of the input: another layout, not in place)
            r = ("in", k)
        else:
            k = next((j for j, o in occupant.items() if o is v), None)
            r = ("v", id(v))
            if k is None or rs != {r}:
                continue
        if last.get(r, -1) != i:
            continue
        if any(isinstance(a, Value) and a is not v and r in roots.get(id(a), ())
               for a in n.inputs):
            continue                # read through another layout too
        return k
    return None


def plan(nodes, graph, modes, inplace, donate=None, transposed=frozenset()):
    pos_of = {}
    roots = {}                      # id(Value) -> frozenset of storage keys it may alias
    for k, v in enumerate(graph.inputs):
        roots[id(v)] = frozenset([("in", k)])
    for i, n in enumerate(nodes):
        m = modes[id(n)]
        ins = frozenset().union(*[roots.get(id(a), frozenset()) for a in n.inputs
                                  if isinstance(a, Value)])
        for o in n.outputs:
            pos_of[id(o)] = i
            if m == "view":
                roots[id(o)] = ins
            elif m == "alias":
                roots[id(o)] = ins | {("v", id(o))}
            else:
                roots[id(o)] = frozenset([("v", id(o))])
    end = len(nodes)
    last = {}
    for i, n in enumerate(nodes):
        for o in n.outputs:
            for r in roots[id(o)]:
                last[r] = max(last.get(r, i), i)
        for a in n.inputs:
            if isinstance(a, Value):
                for r in roots.get(id(a), ()):
                    last[r] = i
    returned = [o for o in graph.outputs if isinstance(o, Value)]
    for o in returned:
        for r in roots.get(id(o), ()):
            last[r] = end

    slots, slot_of, owner, free, done = [], {}, {}, [], []
    donated = {}
    targets = set(donate.values()) if donate else set()
    occupant = {}                   # donated input position -> intermediate held in its array
    naive = 0
    for i, n in enumerate(nodes):
        w = n.outputs[0] if n.outputs else None
        k = donate.get(id(w)) if donate and modes[id(n)] == "out" else None
        j = None
        if k is not None and _donatable(n, i, w, k, graph, roots, last, inplace,
                                        occupant.get(k)):
            donated[id(w)] = k
            naive += _numel(w.shape) * w.dtype.itemsize
        elif targets and modes[id(n)] == "out" and k is None and \
                (j := _into_input(n, i, w, targets, occupant, roots, last, inplace,
                                  end, graph.inputs)) is not None:
            prev = occupant.get(j)
            done.append((w, prev if prev is not None else graph.inputs[j]))
            occupant[j] = w
            donated[id(w)] = j
            naive += _numel(w.shape) * w.dtype.itemsize
        elif modes[id(n)] == "out":
            need = _numel(w.shape)
            naive += need * w.dtype.itemsize
            chosen = None
            for k in inplace.get(id(n), ()):
                v = n.inputs[k]
                if not isinstance(v, Value) or id(v) not in slot_of:
                    continue
                r = ("v", id(v))
                if roots[id(v)] != {r} or last.get(r) != i or v.shape != w.shape or \
                        v.dtype is not w.dtype or (id(v) in transposed) != (id(w) in transposed):
                    continue
                # no other operand may read the same storage through another layout
                if any(isinstance(a, Value) and a is not v and r in roots.get(id(a), ())
                       for a in n.inputs):
                    continue
                chosen = slot_of[id(v)]
                done.append((w, v))
                break
            if chosen is None:
                fits = [s for s in free if s.dtype is w.dtype and s.size >= need]
                if fits:
                    chosen = min(fits, key=lambda s: s.size)
                    free.remove(chosen)
                else:
                    chosen = Slot(len(slots), w.dtype, need)
                    slots.append(chosen)
            chosen.values.append(w)
            slot_of[id(w)] = chosen
            owner[chosen.id] = ("v", id(w))
        # slots whose value and every alias of it are dead after this node
        for s in slots:
            r = owner.get(s.id)
            if r is not None and last.get(r, -1) <= i and s not in free:
                free.append(s)
                owner[s.id] = None
    for o in returned:
        for r in roots.get(id(o), ()):
            if r[0] == "v" and r[1] in slot_of:
                slot_of[r[1]].fresh = True
    plan_ = MemoryPlan(slots, slot_of, done, naive, donated, frozenset(transposed))
    # returned values whose storage nothing writes once they exist: every storage they may
    # alias is a slot whose last occupant is that storage's own value (a returned value's
    # storage is live to the end, so no later value takes its slot) or an input array that is
    # not donated (written into). The code generator hands these to on_output early.
    into = set(donated.values())
    for o in returned:
        ok = True
        for r in roots.get(id(o), ()):
            if r[0] == "in":
                ok = r[1] not in into
            elif r[1] in slot_of:
                ok = id(slot_of[r[1]].values[-1]) == r[1]
            if not ok:
                break
        if ok:
            plan_.stable_outputs.add(id(o))
    return plan_
