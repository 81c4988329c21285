"""Constant folding, and removal of layout ops and casts that do nothing.

No-ops (the input Value replaces the output):
    cast(x, dtype=x.dtype), reshape/expand to x's own shape, permute in the identity order,
    slice over a whole dim with step 1.

Constants are the outputs of creation nodes ("full", "arange") and of pure ops whose inputs
are all constants; Python scalars count as constants, FloatParams (run-time parameters) never.
A node over constants is evaluated at compile time with its primitive's NumPy lowering, so the
result is bit for bit what the program would compute:
  - uniform inputs through a pointwise or view op give a uniform result, computed on one
    element and emitted as a "full" node of any size (but never larger than the largest input
    or 4096 elements, so an expand of a scalar does not become an allocation);
  - otherwise, when every input and output has at most 4096 elements, the node is evaluated
    whole: a uniform result becomes a "full" node; a non-uniform one keeps its node (a "full"
    cannot hold it, and embedding arrays in the graph would bloat its key and printing), and
    its value stays known so consumers can fold (arange(4) * 0 -> full).
Evaluation errors (an integer division by zero, ...) leave the node alone, so they surface at
run time as they would without the pass. Extern ops are never evaluated.
"""
import warnings

import numpy as np

from ..ir.graph import Value
from ..ir.registry import AVal
from .rewrite import sweep, is_const_scalar, numel

LIMIT = 4096


def _noop(n, x):
    """Whether node n (single input Value x) returns x unchanged."""
    op, a, out = n.op, n.attrs, n.outputs[0]
    if out.shape != x.shape or out.dtype is not x.dtype:
        return False
    if op in ("reshape", "expand"):
        return True
    if op == "cast":
        return a.get("dtype") is x.dtype
    if op == "permute":
        dims = a.get("dims")
        return dims is not None and all(d % len(dims) == i for i, d in enumerate(dims))
    if op == "slice":
        return a.get("step", 0) == 1      # same length with step 1: the whole dim
    return False


def _uniform_value(r):
    """The element of an array whose elements are all bitwise equal, as a Python scalar; None
    when they differ (signed zeros and NaN payloads count as different)."""
    if r.size == 0:
        return 0
    first = r.reshape(-1)[:1]
    if r.tobytes() != np.broadcast_to(first.reshape(()), r.shape).tobytes():
        return None
    return first[0].item()


def _full(rw, out, value):
    return rw.emit("full", [], {"shape": out.shape, "value": value, "dtype": out.dtype})


def _evaluate(n, args, metas):
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = n.prim.numpy(metas[0] if len(metas) == 1 else metas, *args, **n.attrs)
    except Exception:
        return None
    rs = r if isinstance(r, tuple) else (r,)
    rs = [np.array(x) for x in rs]       # a fresh array: lowerings may return views
    for x, m in zip(rs, metas):
        if x.shape != m.shape or x.dtype != m.dtype.np:
            return None
    return rs


class _Folder:
    def __init__(self):
        self.sample = {}    # id(Value) -> one element of a uniform value, shaped (1,) * ndim
        self.array = {}     # id(Value) -> the whole value, for small constants

    def materialise(self, v):
        a = self.array.get(id(v))
        if a is None and id(v) in self.sample and numel(v.shape) <= LIMIT:
            a = np.array(np.broadcast_to(self.sample[id(v)], v.shape))
        return a

    def note(self, v, r):
        """Remember constant value r of v: its sample when uniform, the array when small."""
        if r.size and _uniform_value(r) is not None:
            self.sample[id(v)] = r.reshape(-1)[:1].reshape((1,) * r.ndim)
        if r.size <= LIMIT:
            self.array[id(v)] = r

    def __call__(self, rw, n, ins):
        if len(ins) == 1 and isinstance(ins[0], Value) and len(n.outputs) == 1 \
                and _noop(n, ins[0]):
            return [ins[0]]
        kind = n.prim.kind
        if n.op == "full":
            out = rw.keep(n, ins)
            r = _evaluate(n, [], [AVal((1,) * len(out[0].shape), out[0].dtype)])
            if r is not None:
                self.sample[id(out[0])] = r[0]
            return out
        if kind == "extern":
            return None
        vals = [a for a in ins if isinstance(a, Value)]
        if not all(isinstance(a, Value) or is_const_scalar(a) for a in ins) or \
                not all(id(v) in self.sample or id(v) in self.array for v in vals):
            return None
        outs = n.outputs
        # uniform in, uniform out: one element suffices, whatever the size
        if vals and kind in ("pointwise", "view") and len(outs) == 1 and \
                all(id(v) in self.sample for v in vals):
            out = outs[0]
            if numel(out.shape) <= max([LIMIT] + [numel(v.shape) for v in vals]):
                if kind == "view":
                    r = [self.sample[id(vals[0])].reshape(-1)]
                else:
                    args = [self.sample[id(a)] if isinstance(a, Value) else a for a in ins]
                    r = _evaluate(n, args, [AVal((1,) * len(out.shape), out.dtype)])
                if r is not None:
                    v = _full(rw, out, r[0].reshape(-1)[0].item())
                    self.sample[id(v)] = r[0].reshape((1,) * len(out.shape))
                    return [v]
        if sum(numel(o.shape) for o in outs) > LIMIT:
            return None
        args = []
        for a in ins:
            if isinstance(a, Value):
                a = self.materialise(a)
                if a is None:
                    return None
            args.append(a)
        rs = _evaluate(n, args, [AVal(o.shape, o.dtype) for o in outs])
        if rs is None:
            return None
        values = [_uniform_value(r) for r in rs]
        if all(u is not None for u in values):
            new = [_full(rw, o, u) for o, u in zip(outs, values)]
        else:
            new = rw.keep(n, ins)
        for v, r in zip(new, rs):
            self.note(v, r)
        return new


def fold_count(graph):
    return sweep(graph, _Folder())


def fold(graph):
    return fold_count(graph)[0]
