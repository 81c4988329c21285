"""Eager dispatch: every framework op goes through `apply(prim, *args, **attrs)`.

    meta rule (errors here) -> run the NumPy lowering now -> wrap -> record an autograd Node
                                                                    when a grad is needed
Tracing (compile) is a mode of this same function: when a tracer is active, ops record into
its graph instead of running. The path is kept short: every eager op pays for it.
"""
import itertools

import numpy as np

from compiler.ir.registry import REGISTRY, AVal
from runtime import dtypes as dt
from runtime.device import cpu


class _State:
    grad_enabled = True
    inference = False
    tracer = None          # set by compile() while tracing


STATE = _State()
_seq = itertools.count()
Tensor = None              # set by framework.tensor (import cycle breaker)


class Node:
    """One recorded primitive application in the eager autograd graph (grad_fn)."""
    __slots__ = ("prim", "attrs", "saved", "versions", "edges", "out", "outs", "seq", "_name",
                 "freed", "hooks", "retain", "pre_hooks", "post_hooks", "__weakref__", "ctx", "fn")

    def __init__(self, prim, attrs, saved, versions, edges, out, outs, name):
        self.prim, self.attrs, self.saved, self.versions = prim, attrs, saved, versions
        self.edges, self.out, self.outs, self._name = edges, out, outs, name
        self.seq = next(_seq)
        self.freed = False
        self.hooks = None       # {out index: [hook]} for tensor hooks of non-leaf outputs
        self.retain = None      # {out index: weakref to tensor} for retain_grad()
        self.pre_hooks = None
        self.post_hooks = None
        self.ctx = None
        self.fn = None          # custom autograd.Function class, when this node is one

    def __repr__(self):
        return f"<{self._name} object at {hex(id(self))}>"

    def name(self):
        return self._name

    @property
    def next_functions(self):
        from .autograd.graph import next_functions
        return next_functions(self)

    def register_hook(self, fn):
        self.post_hooks = (self.post_hooks or []) + [fn]
        return _Handle(self.post_hooks, fn)

    def register_prehook(self, fn):
        self.pre_hooks = (self.pre_hooks or []) + [fn]
        return _Handle(self.pre_hooks, fn)


class _Handle:
    def __init__(self, lst, fn):
        self.lst, self.fn = lst, fn

    def remove(self):
        if self.fn in self.lst:
            self.lst.remove(self.fn)


def _needs_grad(args):
    for a in args:
        if isinstance(a, Tensor) and (a._node is not None or a._rg):
            return True
    return False


def wrap(arr, dtype, device=cpu):
    t = Tensor.__new__(Tensor)
    t._data = arr
    t._dtype = dtype
    if device is not cpu:
        t._device = device
    return t


def apply(p, *args, **attrs):
    """Run primitive `p` on tensors/scalars `args` eagerly (or record it when tracing)."""
    meta = p.meta(*args, **attrs)
    if STATE.tracer is not None:
        return STATE.tracer.record(p, args, attrs, meta)
    arrs = [a._data if isinstance(a, Tensor) else a for a in args]
    r = p.numpy(meta, *arrs, **attrs)
    if p.nout == 1:
        if type(r) is not np.ndarray:
            r = np.asarray(r)
        out = Tensor.__new__(Tensor)
        out._data = r
        out._dtype = meta.dtype
        if p.kind == "view" and r.base is not None:
            src = args[0]
            out._base = src._base if src._base is not None else src
        outs = (out,)
    else:
        outs = tuple(wrap(np.asarray(x), m.dtype) for x, m in zip(r, meta))
        out = outs
    if STATE.grad_enabled and p.differentiable and _needs_grad(args):
        record(p, args, attrs, outs)
    return out


def record(p, args, attrs, outs, name=None):
    saves = p.saves
    saved, versions, edges = [], [], []
    for i, a in enumerate(args):
        if isinstance(a, Tensor):
            if saves == "all" or i in saves:
                saved.append(a)
                versions.append(a._version)
            else:
                saved.append(AVal(a._data.shape, a._dtype))
                versions.append(None)
            if a._node is not None:
                edges.append((a._node, a._oi))
            elif a._rg:
                edges.append((None, a))     # leaf: gradient accumulates into a.grad
            else:
                edges.append(None)
        else:
            saved.append(a)
            versions.append(None)
            edges.append(None)
    fl = [o for o in outs if o._dtype.is_floating_point or o._dtype.is_complex]
    if not fl:
        return
    out_saved = None
    if p.saves_output:
        out_saved = outs[0] if len(outs) == 1 else outs
    node = Node(p, attrs, saved, versions, edges, out_saved,
                [AVal(o._data.shape, o._dtype) for o in outs], name or p.grad_name)
    for i, o in enumerate(outs):
        if o._dtype.is_floating_point or o._dtype.is_complex:
            o._node = node
            o._oi = i
    return node


def call(name, *args, **attrs):
    return apply(REGISTRY[name], *args, **attrs)


class EagerEmitter:
    """VJP rules call b.mul(...), b.sum(...): here each call runs eagerly through apply()."""

    def __getattr__(self, op):
        p = REGISTRY.get(op)
        if p is None:
            raise AttributeError(op)
        f = lambda *a, **k: apply(p, *a, **k)  # noqa: E731
        object.__setattr__(self, op, f)
        return f


EMIT = EagerEmitter()


def rename(t, name):
    """Give t's grad_fn PyTorch's name for the composite op that produced it."""
    n = t._node
    if n is not None:
        n._name = name
    return t


def default_float():
    return dt.default.value
