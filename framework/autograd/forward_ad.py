"""torch.autograd.forward_ad: dual tensors (primal + tangent) and forward-mode JVPs.

Mechanism (the only one): while a dual level is active, `_dispatch.apply` calls the FWAD hook
(`_hook` below; `_dispatch.FWAD` is None otherwise, so eager ops pay one global test). When
an argument of a primitive carries a tangent, the hook runs the primitive on the primals, then
computes the output tangent J t from the primitive's own VJP rule by transposition: the rule
is applied to a symbolic cotangent leaf u (zeros that require grad) and reverse mode
differentiates <vjp(u), t> with respect to u, which is exactly J t because every VJP is linear
in its cotangent. No JVP rules exist; each primitive's single VJP definition serves both
modes. View primitives are linear, so a view's tangent is the same view of the tangent (it
shares the tangent's memory, so in-place updates of a dual tensor reach its views' tangents).

Supported: one level at a time (PyTorch refuses nesting too); real and complex dtypes
(complex: the VJP is the adjoint for the real pairing Re(sum(a * conj(b)))); tangents
computed under no_grad as well; tangents are differentiable by reverse mode (with grad on, the
transposed VJP is built with create_graph, so autograd.grad through a tangent reaches primals
and input tangents); in-place primitive and composite ops on a dual tensor update its tangent
(in place, so views taken from it stay coherent); autograd.Function with a `jvp` staticmethod
(`ctx.save_for_forward`). Leaving the level drops every tangent made inside it.
A dual value written into a view of a tensor that is not dual makes the base dual (zero tangent
elsewhere), as in PyTorch (cpu tensors). Not supported (clear errors): dual tensors inside
compile().
"""
import weakref
from typing import NamedTuple, Optional

from .. import _dispatch
from .._dispatch import STATE
from ..tensor import Tensor

__all__ = ["UnpackedDualTensor", "enter_dual_level", "exit_dual_level", "make_dual",
           "unpack_dual", "dual_level"]

Tensor._fwt = None          # a tensor's tangent at the active level (None: not dual)
_current_level = -1
_DUALS = []                 # weak references to the tensors given a tangent in this level
_prune_at = 1024


def _set_tangent(t, tan):
    global _prune_at
    t._fwt = tan
    _DUALS.append(weakref.ref(t))
    if len(_DUALS) > _prune_at:      # drop references to dead tensors (long loops in a level)
        _DUALS[:] = [r for r in _DUALS if r() is not None]
        _prune_at = max(1024, 2 * len(_DUALS))


def enter_dual_level():
    """Enter a new forward grad level (only one may be active, as in PyTorch)."""
    global _current_level
    if _current_level >= 0:
        raise RuntimeError("Nested forward mode AD is not supported at the moment")
    _current_level = 0
    _dispatch.FWAD = _hook
    return _current_level


def exit_dual_level(*, level=None):
    """Exit the level: every tangent associated with it is deleted."""
    global _current_level
    if level is None:
        level = _current_level
    if level < 0:
        raise RuntimeError("Dual level must be a positive number.")
    if level != _current_level:
        raise RuntimeError("Trying to exit a forward AD level that was not the last one that was "
                           "created. This is not supported.")
    _dispatch.FWAD = None
    for r in _DUALS:
        t = r()
        if t is not None and "_fwt" in t.__dict__:
            del t._fwt
    _DUALS.clear()
    _current_level = level - 1


class dual_level:
    """Context manager (and decorator) for forward AD: `with dual_level(): ...`."""

    def __enter__(self):
        return enter_dual_level()

    def __exit__(self, *exc):
        exit_dual_level()

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*a, **k):
            with dual_level():
                return fn(*a, **k)
        return wrapper


class UnpackedDualTensor(NamedTuple):
    """What unpack_dual returns: the primal (a view of the tensor) and its tangent or None."""
    primal: Tensor
    tangent: Optional[Tensor]


class _fw_off:
    """Runs framework ops without the hook (the hook's own work, custom Function bodies)."""
    __slots__ = ("prev",)

    def __enter__(self):
        self.prev = _dispatch.FWAD
        _dispatch.FWAD = None

    def __exit__(self, *exc):
        _dispatch.FWAD = self.prev


def _alias(t):
    """A view of t sharing its memory and its reverse-mode history (PyTorch's make_dual and
    unpack_dual results are views of the primal)."""
    with _fw_off():
        return t.view_as(t)


def make_dual(tensor, tangent, *, level=None):
    """A new tensor aliased to `tensor` whose tangent is `tangent` (kept as it is)."""
    if level is None:
        level = _current_level
    if level < 0:
        raise RuntimeError("Trying to create a dual Tensor for forward AD but no level exists, "
                           "make sure to enter_dual_level() first.")
    if level != _current_level:
        raise RuntimeError(f"make_dual: level {level} is not the active forward AD level "
                           f"{_current_level}")
    if not isinstance(tensor, Tensor) or not isinstance(tangent, Tensor):
        raise TypeError(f"make_dual(): expected Tensor arguments, got "
                        f"{type(tensor).__name__} and {type(tangent).__name__}")
    if not (tensor.is_floating_point() or tensor.is_complex()):
        raise ValueError(f"Expected primal to be floating point or complex, but got: "
                         f"{tensor.dtype}")
    if not (tangent.is_floating_point() or tangent.is_complex()):
        raise ValueError(f"Expected tangent to be floating point or complex, but got: "
                         f"{tangent.dtype}")
    if tensor._fwt is not None:
        raise RuntimeError(f"Making a dual Tensor based on a Tensor that already has a forward "
                           f"gradient at the same level {level} is not supported.")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise RuntimeError(f"Trying to set a forward gradient that has a different size than "
                           f"that of the original Tensor, this is not supported. Tensor is of "
                           f"size {list(tensor.shape)} while the given forward gradient is of "
                           f"size {list(tangent.shape)}.")
    if tangent.device != tensor.device:
        raise RuntimeError(f"Trying to set a forward gradient that is on a different device "
                           f"({tangent.device}) than the original Tensor ({tensor.device}), this "
                           f"is not supported.")
    if tangent.is_complex() != tensor.is_complex():
        raise RuntimeError(f"Trying to set a forward gradient of dtype {tangent.dtype} on a "
                           f"Tensor of dtype {tensor.dtype}: both must be real or both complex.")
    d = _alias(tensor)
    _set_tangent(d, tangent)
    return d


def unpack_dual(tensor, *, level=None):
    """(primal, tangent): primal is a view of tensor without tangent; tangent is tensor's tangent
    as it is, or None (outside a level, or for a tensor that is not dual)."""
    if level is None:
        level = _current_level
    if level < 0:
        return UnpackedDualTensor(tensor, None)
    tan = tensor._fwt if level == _current_level else None
    if tan is None and not isinstance(tensor, Tensor):
        raise TypeError(f"unpack_dual(): argument 'tensor' must be Tensor, not "
                        f"{type(tensor).__name__}")
    return UnpackedDualTensor(_alias(tensor), tan)


# ---- the hook: tangents of primitive outputs -----------------------------------------------------

def _hook(p, args, attrs):
    """_dispatch.apply's FWAD hook: None when no argument is dual (apply goes on), else the
    primitive's outputs with their tangents."""
    tans = None
    for i, a in enumerate(args):
        if isinstance(a, Tensor) and a._fwt is not None:
            if tans is None:
                tans = [None] * len(args)
            tans[i] = a._fwt
    if tans is None:
        return None
    if STATE.tracer is not None:
        raise RuntimeError(f"forward AD: dual tensors inside torch.compile are not supported by "
                           f"Kiln (op {p.name}); call the function eagerly")
    with _fw_off():
        out = _dispatch.apply(p, *args, **attrs)
        if p.differentiable:
            outs = (out,) if p.nout == 1 else out
            for o, t in zip(outs, _tangents(p, args, attrs, outs, tans)):
                if t is not None:
                    _set_tangent(o, t)
    return out


def _floating(t):
    return t._dtype.is_floating_point or t._dtype.is_complex


def _tangents(p, args, attrs, outs, tans):
    """The tangent of each output (None for integer outputs)."""
    from . import grad as _grad
    if p.kind == "view" and p.nout == 1 and tans[0] is not None:   # linear: same view of t
        t = tans[0]
        if t._dtype is not args[0]._dtype:
            t = t.to(args[0]._dtype)
        return [_dispatch.apply(p, t, *args[1:], **attrs)]
    fl = [_floating(o) for o in outs]
    if not any(fl):
        return [None] * len(outs)
    outer_grad = STATE.grad_enabled
    # with grad on and anything requiring grad, keep the graph: tangents are then
    # differentiable by reverse mode with respect to primals and input tangents
    keep = outer_grad and any(isinstance(a, Tensor) and a.requires_grad for a in args) or \
        outer_grad and any(t is not None and t.requires_grad for t in tans)
    from ..creation import zeros
    prev_grad = STATE.grad_enabled
    prev_needs, prev_dev = _dispatch.EMIT.needs, _dispatch.EMIT.device
    STATE.grad_enabled = True
    try:
        us = [zeros(o.shape, dtype=o.dtype, device=o.device).requires_grad_(True) if f else None
              for o, f in zip(outs, fl)]
        g = us[0] if p.nout == 1 else tuple(us)
        saved_out = None
        if p.saves_output:
            saved_out = outs[0] if p.nout == 1 else tuple(outs)
            if not keep:
                saved_out = saved_out.detach() if p.nout == 1 else \
                    tuple(o.detach() for o in saved_out)
        prims = args if keep else tuple(a.detach() if isinstance(a, Tensor) else a for a in args)
        _dispatch.EMIT.needs = [t is not None for t in tans]
        _dispatch.EMIT.device = outs[0].device
        gin = p.vjp(_dispatch.EMIT, g, *prims, out=saved_out, **attrs)
        _dispatch.EMIT.needs, _dispatch.EMIT.device = prev_needs, prev_dev
        if not isinstance(gin, (tuple, list)):
            gin = (gin,)
        s = None
        for gi, t in zip(gin, tans):
            if gi is None or t is None or not isinstance(gi, Tensor):
                continue
            if t._dtype is not gi._dtype:
                t = t.to(gi._dtype)
            if gi._dtype.is_complex:     # the real pairing Re(sum(gi * conj(t)))
                t = t.conj()
            term = (gi * t).sum()
            if term._dtype.is_complex:
                term = term.real
            s = term if s is None else s + term
        live = [u for u in us if u is not None]
        if s is None or not s.requires_grad:
            res = [None] * len(live)
        else:
            res = list(_grad(s, live, create_graph=keep, allow_unused=True))
    finally:
        STATE.grad_enabled = prev_grad
        _dispatch.EMIT.needs, _dispatch.EMIT.device = prev_needs, prev_dev
    it = iter(res)
    out = []
    for o, f in zip(outs, fl):
        if not f:
            out.append(None)
            continue
        r = next(it)
        if r is None:
            from ..creation import zeros_like
            r = zeros_like(o)
        if not keep and r.requires_grad:
            r = r.detach()
        out.append(r)
    return out


# ---- in-place writes -----------------------------------------------------------------------------

def _check_view_write(self):
    """Called before a dual value is written into self, a view of a base that is not dual: as in
    PyTorch the base becomes dual with a zero tangent, and self's tangent is the same view of it
    (so the write reaches the base's tangent, and later views of the base see it)."""
    b = self._base
    if b is None or b._fwt is not None or self._fwt is not None:
        return
    if b._device.type != "cpu":     # (device tangents are not written through views in place)
        raise RuntimeError(f"forward AD: an in-place write of a dual value into a view (shape "
                           f"{list(self.shape)}) of a {b._device.type} tensor that is not dual "
                           f"is not supported by Kiln; make the base dual first (make_dual)")
    from ..creation import empty_strided
    with _fw_off():
        bt = empty_strided(b.shape, b.stride(), dtype=b._dtype).zero_()
        vt = bt.as_strided(self.shape, self.stride(), self.storage_offset() - b.storage_offset())
    _set_tangent(b, bt)
    _set_tangent(self, vt)


def _take(self, tan):
    """self (about to be written in place) takes the tangent `tan` of the value written: into
    its existing tangent's memory when it has one (views of self share it), else as a new
    tangent. Called before the write, so a refusal leaves self unchanged."""
    if tan is not None:
        _check_view_write(self)
    if tan is None:
        if self._fwt is None:
            return
        from ..creation import zeros_like
        with _fw_off():
            tan = zeros_like(self._fwt)      # (the written value does not depend on t)
    cur = self._fwt
    import numpy as np
    if cur is not None and not (tan.requires_grad or cur.requires_grad) and \
            type(cur._data) is np.ndarray and cur._data.flags.writeable:
        np.copyto(cur._data, tan.to(cur._dtype)._data, casting="unsafe")
        cur._bump()
    else:
        _set_tangent(self, tan)


def copy_tangent(self, src):
    """copy_ / fill_ under a dual level: self's tangent becomes src's (cast and broadcast to
    self), or zeros when src is not dual."""
    tan = src._fwt if isinstance(src, Tensor) else None
    if tan is not None:
        with _fw_off():
            if tan._dtype is not self._dtype:
                tan = tan.to(self._dtype)
            if tuple(tan.shape) != tuple(self.shape):
                tan = tan.expand(self.shape).clone()
    _take(self, tan)


def inplace_commit(self, p, args, attrs, commit):
    """ops_math._commit under a dual level: the primitive's tangent at the old value of self,
    then the write (by `commit`, without the hook), then self takes that tangent."""
    tan = None
    if self._fwt is not None or any(isinstance(a, Tensor) and a._fwt is not None for a in args):
        _check_view_write(self)
        with _fw_off():
            old = self.clone()           # (the tangent is taken at self's value before the write)
        old._fwt = self._fwt
        try:
            tan = _hook(p, (old,) + tuple(args), attrs)._fwt
        finally:
            old.__dict__.pop("_fwt", None)
    with _fw_off():
        commit(self, p, args, attrs)
    _take(self, tan)
    return self


def assign(self, r):
    """_tensor_methods._assign under a dual level: self was overwritten by r's values."""
    if r._fwt is not None or self._fwt is not None:
        _take(self, r._fwt)


# ---- custom autograd.Function with a jvp staticmethod --------------------------------------------

def function_apply(cls, args, kwargs, run):
    """Function.apply under a dual level: forward runs without forward AD; when an input is
    dual, cls.jvp(ctx, *input tangents) gives the outputs' tangents (PyTorch's rule)."""
    from .function import Function, FunctionCtx
    tans = [a._fwt if isinstance(a, Tensor) else None for a in args]
    ctx = FunctionCtx()
    dual = any(t is not None for t in tans)
    if dual and cls.jvp is Function.jvp:
        raise NotImplementedError("You must implement the jvp function for custom "
                                  "autograd.Function to use it with forward mode AD.")
    with _fw_off():
        out = run(ctx, args, kwargs)
        if not dual:
            return out
        ctx._fwd_active = True
        try:
            r = cls.jvp(ctx, *tans)
        finally:
            ctx._fwd_active = False
            ctx._saved_fwd = ()
    outs = out if isinstance(out, tuple) else (out,)
    rs = r if isinstance(r, tuple) else (r,)
    if len(rs) != len(outs):
        raise RuntimeError(f"{cls.__name__}.jvp returned {len(rs)} tangents but forward returned "
                           f"{len(outs)} outputs")
    for o, t in zip(outs, rs):
        if isinstance(o, Tensor) and t is not None:
            if not isinstance(t, Tensor) or tuple(t.shape) != tuple(o.shape):
                got = list(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise RuntimeError(f"{cls.__name__}.jvp: the tangent of an output of shape "
                                   f"{list(o.shape)} must be a Tensor of the same shape, got "
                                   f"{got}")
            _set_tangent(o, t)
    return out
