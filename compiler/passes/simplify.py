"""Algebraic simplification with exact semantics: a node is replaced by one of its operands only
when the result is bit for bit that operand, including its shape and dtype (so x * 1.0 with an
integer x, or x + 0 where 0 broadcasts x to a larger shape, stay).

    x * 1, 1 * x, x / 1, x ** 1        -> x
    x - 0 (+0), x + -0.0, -0.0 + x     -> x     (floats: x + 0.0 is not x when x is -0.0)
    x + 0, 0 + x                       -> x     (bool/integer x: no signed zero)
    neg(neg(x))                        -> x
    where(c, x, x)                     -> x
    cast(cast(x, a), b)                -> cast(x, b) when x -> a is lossless (b == x.dtype: x)

The constant may be a Python scalar or a "full" node's value; FloatParams (run-time
parameters) never count, whatever their current value. Layout chains are views.py's work and
ops that became identities (cast to the same dtype, ...) fold.py's.
"""
import math

import numpy as np

from ..ir.graph import Value
from .rewrite import sweep, is_const_scalar

# dtype -> the dtypes it converts to without losing any value (NaN stays NaN, -0.0 stays -0.0)
_LOSSLESS = {
    "bool": ("uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
             "float64", "complex64", "complex128", "uint16", "uint32", "uint64"),
    "uint8": ("int16", "int32", "int64", "float16", "bfloat16", "float32", "float64",
              "complex64", "complex128", "uint16", "uint32", "uint64"),
    "int8": ("int16", "int32", "int64", "float16", "bfloat16", "float32", "float64",
             "complex64", "complex128"),
    "int16": ("int32", "int64", "float32", "float64", "complex64", "complex128"),
    "int32": ("int64", "float64", "complex128"),
    "int64": (),
    "float16": ("float32", "float64", "complex64", "complex128"),
    "bfloat16": ("float32", "float64", "complex64", "complex128"),
    "float32": ("float64", "complex64", "complex128"),
    "float64": ("complex128",),
    "complex32": ("complex64", "complex128"),
    "complex64": ("complex128",),
    "complex128": (),
    "uint16": ("int32", "int64", "float32", "float64", "complex64", "complex128", "uint32",
               "uint64"),
    "uint32": ("int64", "float64", "complex128", "uint64"),
    "uint64": (),
}


def lossless(a, b):
    """Whether casting dtype a to dtype b keeps every value exactly."""
    return a is b or b.name in _LOSSLESS[a.name]


def _const(rw, a):
    """The fixed scalar value of operand a (a Python scalar, or a "full" node's value in that
    node's dtype: full(-0.0, dtype=int64) holds +0), else None."""
    if isinstance(a, Value):
        n = rw.node_of(a)
        if n is None or n.op != "full" or not is_const_scalar(n.attrs.get("value")):
            return None
        try:
            return np.full((), n.attrs["value"], dtype=a.dtype.np).item()
        except (OverflowError, ValueError, TypeError):
            return None
    return a if is_const_scalar(a) else None


def _is(c, want):
    """c equals want (1 or 0), with the sign of zero: want = -0.0 asks for a negative zero."""
    if c is None or isinstance(c, complex):
        return False
    if want == 0:
        return c == 0 and math.copysign(1.0, c) == math.copysign(1.0, want)
    return c == want


def _pick(n, x):
    """[x] when x can stand for n's output (same shape and dtype), else None."""
    out = n.outputs[0]
    if isinstance(x, Value) and x.shape == out.shape and x.dtype is out.dtype:
        return [x]
    return None


def _add_identity(x, c):
    """x + c == x exactly: c is a zero, and for floats a negative one (-0.0 + 0.0 is 0.0)."""
    if not isinstance(x, Value):
        return False
    if x.dtype.is_floating_point or x.dtype.is_complex:
        return _is(c, -0.0)
    return _is(c, 0)


_ARITH = ("mul", "div", "pow", "add", "sub")


def _rule(rw, n, ins):
    op = n.op
    if op in _ARITH and n.outputs[0].dtype.is_complex:
        return None          # complex arithmetic with 1 or 0 is not exact: inf * (1+0j) has a NaN
    if op == "mul":
        a, b = ins
        if _is(_const(rw, b), 1):
            return _pick(n, a)
        if _is(_const(rw, a), 1):
            return _pick(n, b)
    elif op in ("div", "pow"):
        if _is(_const(rw, ins[1]), 1):
            return _pick(n, ins[0])
    elif op == "add":
        a, b = ins
        if _add_identity(a, _const(rw, b)):
            return _pick(n, a)
        if _add_identity(b, _const(rw, a)):
            return _pick(n, b)
    elif op == "sub":
        if _is(_const(rw, ins[1]), 0.0):          # x - (+0) is x, also for x = -0.0
            return _pick(n, ins[0])
    elif op == "neg":
        inner = rw.node_of(ins[0])
        if inner is not None and inner.op == "neg":
            return _pick(n, inner.inputs[0])
    elif op == "where":
        c, a, b = ins
        if isinstance(a, Value) and a is b:
            return _pick(n, a)
    elif op == "cast":
        inner = rw.node_of(ins[0])
        if inner is not None and inner.op == "cast" and "dtype" in n.attrs:
            x = inner.inputs[0]
            if isinstance(x, Value) and lossless(x.dtype, inner.outputs[0].dtype):
                want = n.attrs["dtype"]
                if want is x.dtype:
                    return _pick(n, x)
                return [rw.emit("cast", [x], {"dtype": want})] \
                    if lossless(inner.outputs[0].dtype, want) else None
    return None


def simplify_count(graph):
    return sweep(graph, _rule)


def simplify(graph):
    return simplify_count(graph)[0]
