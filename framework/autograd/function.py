"""Custom differentiable ops: autograd.Function with a ctx, as in PyTorch. Its node takes part
in the eager graph like any primitive's; its backward is the user's Python, run by the same
engine (so when that backward uses differentiable ops, double backward works too)."""
import collections
import functools
import sys

import numpy as np

from .. import _dispatch
from .._dispatch import STATE, wrap, node_class, Packed
from ..tensor import Tensor
from compiler.ir.registry import AVal


class FunctionCtx:
    """The ctx of a custom Function: what forward saves for backward."""

    def __init__(self):
        self._saved = ()
        self._versions = ()
        self._freed = False
        self._packed = None       # weakref to the node, once saved_tensors_hooks packed _saved
        self.needs_input_grad = ()
        self.non_differentiable = set()
        self.dirty = set()
        self.materialize_grads = True

    def save_for_backward(self, *tensors):
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save variables, but argument "
                                f"{i} is of type {type(t).__name__}")
        self._saved = tensors
        self._versions = tuple(t._version if t is not None else None for t in tensors)

    def save_for_forward(self, *tensors):
        """Tensors the jvp staticmethod reads through ctx.saved_tensors (forward AD)."""
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_forward expects all arguments to be tensors; you "
                                f"should save non-tensors as attributes on ctx (argument {i} is "
                                f"of type {type(t).__name__})")
        self._saved_fwd = tensors

    _fwd_active = False     # set while jvp runs: saved_tensors are save_for_forward's
    _saved_fwd = ()

    @property
    def saved_tensors(self):
        if self._fwd_active:
            return tuple(self._saved_fwd)
        if self._freed:
            from .engine import SECOND_TIME
            raise RuntimeError(SECOND_TIME)
        if self._packed is not None:     # saved under saved_tensors_hooks: unpack every time
            owner = self._packed()
            return tuple(s.get(owner) if type(s) is Packed else s for s in self._saved)
        for t, v in zip(self._saved, self._versions):
            if v is not None and t._version != v:
                from .engine import _version_error
                raise _version_error(t, t._oi, t._node, v, t._version)
        return self._saved

    saved_variables = saved_tensors

    def _free(self):
        if self._saved:
            self._saved = ()
            self._freed = True

    def mark_non_differentiable(self, *tensors):
        self.non_differentiable.update(id(t) for t in tensors)

    def mark_dirty(self, *tensors):
        self.dirty.update(id(t) for t in tensors)

    def set_materialize_grads(self, value):
        self.materialize_grads = bool(value)


class _FnPrim:
    """Stands in for a registry primitive on custom-Function nodes."""
    kind = "custom"
    differentiable = True
    vjp = None

    def __init__(self, cls, nout):
        self.name = cls.__name__
        self.nout = nout


class _FunctionMeta(type):
    def __init__(cls, name, bases, ns):
        super().__init__(name, bases, ns)
        # PyTorch names the node class <Name>Backward in module torch.autograd.function
        cls._backward_cls = node_class(f"{name}Backward", "torch.autograd.function")


class Function(metaclass=_FunctionMeta):
    """Subclass with static forward(ctx, *args) and backward(ctx, *grad_outputs); call apply."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        raise RuntimeError("Legacy autograd function with non-static forward method is "
                           "deprecated. Please use new-style autograd function with static "
                           "forward method. (Example: https://pytorch.org/docs/stable/"
                           "autograd.html#torch.autograd.Function)")

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for your "
                                  "custom autograd.Function to use it with backward mode AD.")

    @staticmethod
    def vjp(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for your "
                                  "custom autograd.Function to use it with backward mode AD.")

    @classmethod
    def apply(cls, *args, **kwargs):
        if cls.setup_context is Function.setup_context and _in_functorch() and \
                not cls.__module__.startswith("framework."):
            raise RuntimeError(
                "In order to use an autograd.Function with functorch transforms (vmap, grad, "
                "jvp, jacrev, ...), it must override the setup_context staticmethod. For more "
                "details, please see https://pytorch.org/docs/main/notes/extending.func.html")
        if _dispatch.VMAP is not None:
            r = _vmap_apply(cls, args, kwargs)
            if r is not _NOT_BATCHED:
                return r
        if _dispatch.FWAD is not None:     # a dual level: output tangents come from cls.jvp
            from .forward_ad import function_apply
            return function_apply(cls, args, kwargs, cls._apply)
        return cls._apply(FunctionCtx(), args, kwargs)

    @staticmethod
    def vmap(info, in_dims, *args):
        raise NotImplementedError("To use autograd.Function with vmap, you must either override "
                                  "the vmap staticmethod or set generate_vmap_rule=True.")

    @staticmethod
    def jvp(ctx, *grad_inputs):
        raise NotImplementedError("You must implement the jvp function for custom "
                                  "autograd.Function to use it with forward mode AD.")

    @classmethod
    def _apply(cls, ctx, args, kwargs):
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        separate = cls.setup_context is not Function.setup_context
        prev = STATE.grad_enabled
        STATE.grad_enabled = False
        try:
            if separate:                # PyTorch 2 style: forward(*args), setup_context(ctx, ...)
                out = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, out)
            else:
                out = cls.forward(ctx, *args, **kwargs)
        finally:
            STATE.grad_enabled = prev
        is_tuple = isinstance(out, tuple)
        outs = out if is_tuple else (out,)
        if not (prev and any(ctx.needs_input_grad)):
            return out
        edges = []
        for a in args:
            if isinstance(a, Tensor) and a.requires_grad:
                edges.append((a._node, a._oi) if a._node is not None else (None, a))
            else:
                edges.append(None)
        avals = [AVal(o._data.shape, o._dtype) if isinstance(o, Tensor) else None for o in outs]
        node = cls._backward_cls(_FnPrim(cls, len(outs)), {}, None, (), edges, avals,
                                 f"{cls.__name__}Backward")
        node.ctx = ctx
        node.fn = cls
        if STATE.tracer is not None:        # (compile: its saved tensors must be computed)
            STATE.tracer.traced_nodes.append(node)
        if STATE.anomaly:     # (the forward stack, for the warning if its backward fails)
            from .._dispatch import _anomaly_trace
            _anomaly_trace(node)
        for a in args:
            if isinstance(a, Tensor) and id(a) in ctx.dirty and a._node is None and a._rg:
                raise RuntimeError("a leaf Variable that requires grad has been used in an "
                                   "in-place operation.")
        new_outs = []
        for i, o in enumerate(outs):
            if isinstance(o, Tensor):
                nd = id(o) in ctx.non_differentiable   # (before a returned input is re-wrapped)
                view = False
                if id(o) in ctx.dirty:          # modified in place: it takes the new history
                    pass
                elif any(o is a for a in args):  # returned an input: a new tensor, same data
                    o = wrap(o._data, o._dtype)
                    view = True
                else:
                    view = o._base is not None
                if not nd and (o._dtype.is_floating_point or o._dtype.is_complex):
                    o._node, o._oi = node, i
                    if view:    # (as torch: an in-place op on it would bypass this backward)
                        o._multi_view = (i, cls.__name__, "custom")
            new_outs.append(o)
        hooks = STATE.saved_hooks
        if hooks is not None and ctx._saved:
            _pack_saved(ctx, node, new_outs, hooks)
        return tuple(new_outs) if is_tuple else new_outs[0]

    @classmethod
    def _backward_from_engine(cls, node, gs):
        ctx = node.ctx
        if node.freed and ctx._freed:
            from .engine import SECOND_TIME
            raise RuntimeError(SECOND_TIME)
        if ctx.materialize_grads:
            gs = [g if g is not None or a is None else
                  wrap(np.zeros(a.shape, a.dtype.np), a.dtype) for g, a in zip(gs, node.outs)]
        r = cls.backward(ctx, *gs)
        if not isinstance(r, tuple):
            r = (r,)
        n = len(node.edges)
        if len(r) > n and all(x is None for x in r[n:]):
            r = r[:n]
        if len(r) != n:
            raise RuntimeError(f"function {node._name} returned an incorrect number of gradients "
                               f"(expected {n}, got {len(r)})")
        res = []
        for i, (g, e) in enumerate(zip(r, node.edges)):
            if g is None:
                res.append(None)
                continue
            if not isinstance(g, Tensor):
                if e is None:
                    res.append(None)
                    continue
                raise RuntimeError(f"expected Variable or None (got {type(g).__name__}) as "
                                   f"gradient {i} returned by {node._name}")
            # a tensor returned for an input that needs no grad goes nowhere (the engine skips
            # edges it does not need) but, as in torch, the node's post-hooks see it
            res.append(g)
        return tuple(res)


def _pack_saved(ctx, node, outs, hooks):
    """saved_tensors_hooks: what ctx.save_for_backward kept goes through the pack hook once the
    node is built (as in PyTorch: after forward, outputs already carrying this grad_fn);
    saved_tensors unpacks on every access."""
    import weakref
    pack, unpack = hooks
    tr = STATE.tracer
    if tr is not None:        # compile: the hook needs real tensors (a graph break)
        tr.make_concrete([t for t in ctx._saved if t is not None],
                         "saved_tensors_hooks: a custom Function's saved tensors go through the "
                         "pack hook")
    prev = STATE.grad_enabled
    STATE.grad_enabled = False
    try:
        packed = []
        for t in ctx._saved:
            if t is None:
                packed.append(None)
                continue
            oi = next((i for i, o in enumerate(outs) if o is t and o._node is node), None)
            packed.append(Packed(t, pack, unpack, oi))
    finally:
        STATE.grad_enabled = prev
    ctx._saved = tuple(packed)
    ctx._versions = (None,) * len(packed)
    ctx._packed = weakref.ref(node)


_EXT = " For more details, please see https://pytorch.org/docs/main/notes/extending.func.html"
_NOT_BATCHED = object()
VmapInfo = collections.namedtuple("VmapInfo", ["batch_size", "randomness"])


def _vmap_apply(cls, args, kwargs):
    """cls.apply with an argument batched by a running vmap: PyTorch's rule for the innermost
    such level. generate_vmap_rule=True runs forward on the batched tensors (_NOT_BATCHED: the
    caller goes on) unless autograd records (_generated); an overridden vmap staticmethod is
    called with VmapInfo, the in_dims and the unbatched tensors, and its (output, out_dims) is
    batched again at that level."""
    from ..func import _batched, _pytree
    from ..func.vmap import LEVELS
    lvl = max((_batched.level_of(a) for a in args), default=0)
    if not lvl or cls.__module__.startswith("framework."):   # (Kiln's own: batched as is)
        return _NOT_BATCHED
    own = cls.vmap is not Function.vmap
    if getattr(cls, "generate_vmap_rule", False):
        if own:
            raise RuntimeError(f"You tried to vmap over {cls.__name__}, but it has both "
                               f"generate_vmap_rule=True and an overridden vmap staticmethod. "
                               f"Please set generate_vmap_rule=False or delete the overridden "
                               f"vmap staticmethod to avoid ambiguity." + _EXT)
        vals, in_dims = zip(*(_batched.unwrap(a, lvl) for a in args))
        if not (STATE.grad_enabled and any(isinstance(v, Tensor) and v.requires_grad
                                           for v in vals)):
            return _NOT_BATCHED          # no graph to record: forward on the batched tensors
        _, B, randomness = next(e for e in LEVELS if e[0] == lvl)
        return _generated(cls, lvl, B, randomness, vals, in_dims, kwargs)
    if not own:
        raise RuntimeError(f"You tried to vmap over {cls.__name__}, but it does not have vmap "
                           f"support. Please override and implement the vmap staticmethod or set "
                           f"generate_vmap_rule=True." + _EXT)
    _, B, randomness = next(e for e in LEVELS if e[0] == lvl)
    vals, in_dims = zip(*(_batched.unwrap(a, lvl) for a in args))
    r = cls.vmap(VmapInfo(B, randomness), tuple(in_dims), *vals, **kwargs)
    if not (isinstance(r, tuple) and len(r) == 2):
        got = "<class 'torch.Tensor'>" if isinstance(r, Tensor) else type(r)
        raise RuntimeError(f"Expected the vmap staticmethod to have two returns, an output and "
                           f"out_dims with pytree structure compatible with the output. Got a "
                           f"{got} instead")
    out, out_dims = r
    flat, spec = _pytree.flatten(out)
    dims = _pytree.broadcast_prefix(out_dims, spec)
    if dims is None:
        raise RuntimeError(f"The autograd.Function's vmap staticmethod returned an incompatible "
                           f"(output, out_dims) tuple. Expected out_dims={out_dims} to be "
                           f"compatible with the structure of `output`. out_dims has structure "
                           f"{_pytree.flatten(out_dims)[1]} but output has structure {spec}." +
                           _EXT)
    res = []
    for o, d in zip(flat, dims):
        if d is not None and isinstance(o, Tensor):
            o = _batched.make(o, d % max(o.dim(), 1), lvl)
        res.append(o)
    return _pytree.unflatten(res, spec)


def _generated(cls, lvl, B, randomness, vals, in_dims, kwargs):
    """generate_vmap_rule=True where autograd records: autograd sees only unbatched tensors,
    so a Function on them runs cls's forward and setup_context, then cls's backward, under a
    vmap level of their own (PyTorch's generated rule); the saved tensors keep their batch dim
    from one to the other. A gradient for an unbatched input is summed over the batch."""
    from ..func import _batched
    from ..func.vmap import _push, _pop
    from ..ops_shape import movedim
    ictx = FunctionCtx()
    saved = []
    n_out = [1]

    def phys(o, lv):
        v, bd = _batched.unwrap(o, lv)
        if bd is None:
            return o.unsqueeze(0).expand(B, *o.shape)
        return movedim(v, bd, 0)

    class Generated(Function):
        @staticmethod
        def forward(*xs):
            lv = _push(B, randomness)
            try:
                a = tuple(x if d is None else _batched.make(x, d, lv) for x, d in zip(xs, in_dims))
                ictx.needs_input_grad = tuple(isinstance(x, Tensor) and x.requires_grad
                                              for x in vals)
                out = cls.forward(*a, **kwargs)
                cls.setup_context(ictx, a, out)
                saved[:] = [_batched.unwrap(t, lv) if isinstance(t, Tensor) else (t, None)
                            for t in ictx._saved]
                if isinstance(out, tuple):
                    n_out[0] = len(out)
                    return tuple(phys(o, lv) if isinstance(o, Tensor) else o for o in out)
                return phys(out, lv)
            finally:
                _pop()

        @staticmethod
        def setup_context(ctx, inputs, output):
            pass

        @staticmethod
        def backward(ctx, *gs):
            lv = _push(B, randomness)
            try:
                ictx._saved = tuple(v if bd is None else _batched.make(v, bd, lv)
                                    for v, bd in saved)
                ictx._versions = (None,) * len(saved)
                r = cls.backward(ictx, *(None if g is None else _batched.make(g, 0, lv)
                                         for g in gs))
                r = r if isinstance(r, tuple) else (r,)
                res = []
                for g, d in zip(r, in_dims + (None,) * (len(r) - len(in_dims))):
                    if isinstance(g, Tensor):
                        g = phys(g, lv)
                        g = g.sum(0) if d is None else movedim(g, 0, d)
                    res.append(g)
                return tuple(res)
            finally:
                _pop()

    Generated.__name__ = cls.__name__
    out = Generated.apply(*vals)
    if isinstance(out, tuple):
        return tuple(_batched.make(o, 0, lvl) if isinstance(o, Tensor) else o for o in out)
    return _batched.make(out, 0, lvl)


TRANSFORMS = [0]     # depth of running torch.func grad / vjp / jvp calls (framework/func/api.py)


def _in_functorch():
    if TRANSFORMS[0]:
        return True
    vm = sys.modules.get("framework.func.vmap")      # (not imported: no vmap is running)
    return vm is not None and bool(vm.LEVELS)


class in_transform:
    """The user function of a torch.func transform runs inside this."""
    def __enter__(self):
        TRANSFORMS[0] += 1

    def __exit__(self, *exc):
        TRANSFORMS[0] -= 1


class InplaceFunction(Function):
    def __init__(self, inplace=False):
        self.inplace = inplace


class NestedIOFunction(Function):
    pass


def once_differentiable(fn):
    """The wrapped backward runs without recording, so its result has no graph of its own."""
    @functools.wraps(fn)
    def wrapper(ctx, *args):
        prev = STATE.grad_enabled
        STATE.grad_enabled = False
        try:
            return fn(ctx, *args)
        finally:
            STATE.grad_enabled = prev
    return wrapper
