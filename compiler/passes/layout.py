"""Layout rewrites that save whole passes over memory.

    permute(matmul(a, b), (1, 0))  -> matmul(permute(b), permute(a))      (2-D, sole reader)
    copy(x)                        -> x     (x computed by a pointwise/reduction/matmul node of
                                             this graph, read only by the copy, not returned)

The first makes a transposed matmul result (a weight gradient: matmul(x^T, g)^T) come out
contiguous, so the copy that makes it a contiguous `.grad` no longer transposes 1.6 MB through
the cache; the second then drops that copy (x's buffer belongs to nobody else). Both compute
the same bits: BLAS computes every output element as the same dot product over k in the same
order whichever operand is transposed (OpenBLAS blocks k independently of the transpose flags;
tests/test_passes.py checks the identity on odd shapes), and copy is an exact copy.
"""
from ..ir.graph import Value
from .rewrite import sweep

_MATERIAL = ("pointwise", "reduction", "matmul")


def _readers(graph):
    cnt = {}
    for n in graph.nodes:
        for a in n.inputs:
            if isinstance(a, Value):
                cnt[id(a)] = cnt.get(id(a), 0) + 1
    for o in graph.outputs:
        if isinstance(o, Value):
            cnt[id(o)] = cnt.get(id(o), 0) + 2          # returned: never rewritten away
    return cnt


def _t(rw, v):
    """v transposed (2-D): the input of a (1, 0) permute when v is one, else a new permute."""
    p = rw.node_of(v)
    if p is not None and p.op == "permute" and len(p.inputs) == 1 and \
            tuple(d % 2 for d in p.attrs.get("dims", ())) == (1, 0):
        return p.inputs[0]
    return rw.emit("permute", [v], {"dims": (1, 0)})


def layout_count(graph):
    readers = _readers(graph)

    def rule(rw, n, ins):
        if len(ins) != 1 or not isinstance(ins[0], Value) or len(n.outputs) != 1:
            return None
        x, out = ins[0], n.outputs[0]
        if readers.get(id(n.inputs[0]), 0) != 1:
            return None
        p = rw.node_of(x)
        if p is None or len(p.outputs) != 1:
            return None
        if n.op == "permute" and p.op == "matmul" and len(x.shape) == 2 and \
                tuple(d % 2 for d in n.attrs.get("dims", ())) == (1, 0) and not p.attrs:
            a, b = p.inputs
            if not (isinstance(a, Value) and isinstance(b, Value) and len(a.shape) == 2
                    and len(b.shape) == 2):
                return None
            return [rw.emit("matmul", [_t(rw, b), _t(rw, a)], {})]
        if n.op == "copy" and not n.attrs and p.prim.kind in _MATERIAL and \
                x.shape == out.shape and x.dtype is out.dtype:
            return [x]
        return None

    return sweep(graph, rule)


def layout(graph):
    return layout_count(graph)[0]
