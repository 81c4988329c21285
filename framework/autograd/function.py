"""Custom differentiable ops: autograd.Function with a ctx, as in PyTorch. Its node takes part
in the eager graph like any primitive's; its backward is the user's Python."""
import numpy as np

from .. import _dispatch
from .._dispatch import STATE, Node, wrap
from ..tensor import Tensor
from .grad_mode import no_grad


class FunctionCtx:
    def __init__(self):
        self.saved_tensors_ = ()
        self.needs_input_grad = ()
        self.non_differentiable = set()
        self.materialize_grads = True
        self._versions = ()

    def save_for_backward(self, *tensors):
        self.saved_tensors_ = tensors
        self._versions = tuple(t._version if isinstance(t, Tensor) else None for t in tensors)

    @property
    def saved_tensors(self):
        if self.saved_tensors_ is None:
            raise RuntimeError("Trying to backward through the graph a second time (or directly "
                               "access saved tensors after they have already been freed).")
        for t, v in zip(self.saved_tensors_, self._versions):
            if v is not None and t._version != v:
                raise RuntimeError("one of the variables needed for gradient computation has been "
                                   "modified by an inplace operation")
        return self.saved_tensors_

    def mark_non_differentiable(self, *tensors):
        self.non_differentiable.update(id(t) for t in tensors)

    def mark_dirty(self, *tensors):
        pass

    def set_materialize_grads(self, value):
        self.materialize_grads = value


class _FnPrim:
    """Stands in for a registry primitive on custom-Function nodes."""
    kind = "custom"

    def __init__(self, cls, nout):
        self.name = cls.__name__
        self.nout = nout
        self.differentiable = True


class Function:
    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for your "
                                  "custom autograd.Function to use it with backward mode AD.")

    vjp = backward

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with no_grad():
            out = cls.forward(ctx, *args, **kwargs)
        outs = out if isinstance(out, tuple) else (out,)
        if not (STATE.grad_enabled and any(ctx.needs_input_grad)):
            return out
        edges = []
        for a in args:
            if isinstance(a, Tensor) and a.requires_grad:
                edges.append((a._node, a._oi) if a._node is not None else (None, a))
            else:
                edges.append(None)
        from compiler.ir.registry import AVal
        node = Node(_FnPrim(cls, len(outs)), {}, [], [], edges, None,
                    [AVal(o._data.shape, o._dtype) for o in outs if isinstance(o, Tensor)],
                    f"{cls.__name__}Backward")
        node.ctx = ctx
        node.fn = cls
        new_outs = []
        for i, o in enumerate(outs):
            if isinstance(o, Tensor):
                if any(o is a for a in args):      # returned an input: give it a fresh identity
                    o = wrap(o._data, o._dtype)
                if id(o) not in ctx.non_differentiable and o._dtype.is_floating_point:
                    o._node, o._oi = node, i
            new_outs.append(o)
        return tuple(new_outs) if isinstance(out, tuple) else new_outs[0]

    @classmethod
    def _backward_from_engine(cls, node, gs):
        ctx = node.ctx
        if ctx.materialize_grads:
            gs = [g if g is not None else wrap(np.zeros(a.shape, a.dtype.np), a.dtype)
                  for g, a in zip(gs, node.outs)]
        r = cls.backward(ctx, *gs)
        if not isinstance(r, tuple):
            r = (r,)
        if len(r) < len(node.edges):
            r = r + (None,) * (len(node.edges) - len(r))
        return r


def once_differentiable(fn):
    return fn
