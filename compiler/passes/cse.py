"""Common-subexpression elimination: a node with the same op, the same inputs and equal
attributes as an earlier one is replaced by that one's outputs.

Every primitive is pure: creation nodes ("full", "arange") depend on their attributes only, and
random ops take their seed and offset as inputs, so equal nodes compute equal values and may
merge. Constants compare by type and exact value (1, 1.0 and True promote differently; -0.0 is
not 0.0); FloatParams compare by their parameter index, never by value, since two parameters
that hold the same number now may differ on the next run.
"""
from ..ir.graph import Value
from runtime import dtypes as dt
from .rewrite import sweep, is_param


def _canon(a):
    if isinstance(a, Value):
        return ("v", id(a))
    if is_param(a):
        return ("param", a.index)
    if isinstance(a, (tuple, list)):
        return (type(a).__name__,) + tuple(_canon(x) for x in a)
    if isinstance(a, dict):
        return ("dict",) + tuple((k, _canon(v)) for k, v in sorted(a.items()))
    if isinstance(a, dt.DType):
        return ("dtype", a.name)
    if isinstance(a, (slice, type(None), bool, int, float, complex, str)):
        return (type(a).__name__, repr(a))
    return ("obj", id(a))          # unknown objects merge only when they are the same object


class _CSE:
    def __init__(self):
        self.seen = {}

    def __call__(self, rw, n, ins):
        key = (n.op, tuple(_canon(a) for a in ins), _canon(n.attrs))
        prev = self.seen.get(key)
        if prev is not None:
            return list(prev)
        self.seen[key] = rw.keep(n, ins)
        return self.seen[key]


def cse_count(graph):
    return sweep(graph, _CSE())


def cse(graph):
    return cse_count(graph)[0]
