"""View-chain folding: two stacked layout ops of one kind become one, so code generation sees
short view chains (views themselves cost nothing there: the fuser turns them into index
arithmetic).

    permute(permute(x, p), q)        -> permute(x, [p[i] for i in q])
    reshape(reshape(x, a), b)        -> reshape(x, b)
    expand(expand(x, a), b)          -> expand(x, b)
    slice(slice(x, d, ...), d, ...)  -> one slice on d (starts, stops, steps composed)
    select(x, d, i)                  -> reshape(slice(x, d, i, i + 1, 1)) (a single eager
                                        dispatch; downstream only knows slice and reshape)

The inner op stays while something else reads it (DCE drops it otherwise). Ops that become
identities (permute to the same order, reshape to the same shape) are removed by fold.py.
"""
from ..ir.graph import Value
from .rewrite import sweep


# the attributes each rule reads; a node that passed them positionally is left alone
_ATTRS = {"permute": ("dims",), "reshape": ("shape",), "expand": ("shape",),
          "slice": ("dim", "start", "stop", "step")}


def _permute(rw, n, inner):
    p = inner.attrs["dims"]
    q = n.attrs["dims"]
    k = len(p)
    dims = tuple(p[q[i] % k] % k for i in range(k))
    return rw.emit("permute", [inner.inputs[0]], {"dims": dims})


def _slice(rw, n, x, inner):
    a, b = inner.attrs, n.attrs
    src = inner.inputs[0]
    d = a["dim"] % len(src.shape)
    if b["dim"] % len(src.shape) != d:
        return None
    s1, _, t1 = slice(a["start"], a["stop"], a["step"]).indices(src.shape[d])
    s2, _, t2 = slice(b["start"], b["stop"], b["step"]).indices(x.shape[d])
    n2 = n.outputs[0].shape[d]
    start, step = s1 + s2 * t1, t1 * t2
    stop = start + (n2 - 1) * step + 1 if n2 else start
    return rw.emit("slice", [src], {"dim": d, "start": start, "stop": stop, "step": step})


def _select(rw, n, x):
    d = n.attrs["dim"] % len(x.shape)
    i = n.attrs["index"] % x.shape[d]
    s = rw.emit("slice", [x], {"dim": d, "start": i, "stop": i + 1, "step": 1})
    return rw.emit("reshape", [s], {"shape": n.outputs[0].shape})


def _rule(rw, n, ins):
    if n.op == "select":
        if len(ins) != 1 or not isinstance(ins[0], Value) or \
                any(k not in n.attrs for k in ("dim", "index")):
            return None
        return [_select(rw, n, ins[0])]
    keys = _ATTRS.get(n.op)
    if keys is None or len(ins) != 1 or not isinstance(ins[0], Value) or \
            any(k not in n.attrs for k in keys):
        return None
    x = ins[0]
    inner = rw.node_of(x)
    if inner is None or inner.op != n.op or len(inner.inputs) != 1 or \
            any(k not in inner.attrs for k in keys):
        return None
    if n.op == "permute":
        v = _permute(rw, n, inner)
    elif n.op == "slice":
        v = _slice(rw, n, x, inner)
    else:
        # the final shape, resolved (no -1), replaces both
        v = rw.emit(n.op, [inner.inputs[0]], {"shape": n.outputs[0].shape})
    return None if v is None else [v]


def views_count(graph):
    return sweep(graph, _rule)


def views(graph):
    return views_count(graph)[0]
