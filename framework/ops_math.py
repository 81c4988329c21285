"""torch-named math: pointwise ops, in-place forms, reductions and the composites built from
primitives (mean, var, std, logsumexp, norm, clamp, lerp, ...)."""
import builtins
import math
import warnings

import numpy as np

from compiler.ir.registry import REGISTRY, norm_dims, norm_dim
from compiler.ops.pointwise import half_scalar
from runtime import dtypes as dt
from runtime.meta import MetaArray, meta_empty
from . import _dispatch
from ._dispatch import apply, STATE, rename, keep_saved, saved_extra
from .tensor import Tensor
from .return_types import named
from . import _memory_format as _mf
from ._sparse_storage import SparseLayoutError
from .nested._storage import NestedLayoutError

P = REGISTRY


def as_tensor_arg(x):
    """Operands: tensors stay, Python numbers stay scalars, NumPy/lists become tensors."""
    if isinstance(x, Tensor) or isinstance(x, (bool, int, float, complex)):
        return x
    if isinstance(x, np.bool_):
        return float(x)      # (PyTorch reads a NumPy bool as a float: int_t + np.True_ is float)
    if isinstance(x, np.generic):
        return x.item()
    from .creation import tensor
    return tensor(x)


def _t(x):
    if isinstance(x, Tensor):
        return x
    from .creation import tensor
    return tensor(x)


def store(t, src):
    """Write src (an array or a number) into tensor t's memory, cast to its dtype (complex32:
    rounded to float16 parts, as its values are held)."""
    if type(t._data) is MetaArray or type(src) is MetaArray:
        if type(t._data) is not MetaArray:
            raise NotImplementedError("Cannot copy out of meta tensor; no data!")
        return          # (a meta tensor holds no values to write)
    np.copyto(t._data, src, casting="unsafe")
    if t._dtype.round is not None and isinstance(t._data, np.ndarray):     # (host memory)
        r = t._dtype.round(t._data)
        if r is not t._data:        # (float8 rounds into a new array)
            t._data[...] = r


def write_out(res, out):
    """out= support: copy res into out (resizing like PyTorch) and return out."""
    if out is None:
        return res
    if isinstance(out, (tuple, list)):
        for r, o in zip(res, out):
            write_out(r, o)
        return out
    # (the cast check comes first: a refused out= keeps its shape and data, as PyTorch's)
    if res._dtype.category > out._dtype.category:
        raise RuntimeError(f"result type {dt.tname(res._dtype)} can't be cast to the desired "
                           f"output type {dt.tname(out._dtype)}")
    if _dispatch.BEFORE_WRITE is not None:
        _dispatch.BEFORE_WRITE(out)
    if out._data.shape != res._data.shape:
        # a new buffer on out's own device (np.empty would move a device tensor to the host)
        from .creation import empty
        r = res._data
        if type(r) is np.ndarray and type(out._data) is np.ndarray and not r.flags.c_contiguous:
            # a resized out takes the result's layout (TensorIterator restrides it)
            out._data = np.empty_like(r, dtype=out._data.dtype, order="K")
        else:
            out._data = empty(r.shape, dtype=out._dtype, device=out.device)._data
    store(out, res._data)
    out._bump()
    return out


# ---- in-place machinery ---------------------------------------------------------------------

def _cast_ok(src, dst):
    return src.category <= dst.category


def inplace(self, name, *args, **attrs):
    """self.<name>_(*args): compute out of place, check shape and dtype, write into self.
    Under autograd the node sees a snapshot of self, and self takes over the result's history."""
    p = P[name]
    if self._dtype.category == 4:       # quantized (framework/ao/_qtensor.py)
        from .ao._qtensor import inplace_q
        return inplace_q(self, p, args, attrs)
    try:
        meta = p.meta(self, *args, **attrs)
    except (NotImplementedError, RuntimeError):
        # PyTorch checks that the operands' result type casts into self before the kernel's
        # dtype support: int.__iand__(float) is the cast error, not "bitwise_and not implemented"
        from compiler.ir.registry import promote
        d = promote(self, *args) if args else self._dtype
        if not _cast_ok(d, self._dtype):
            raise RuntimeError(f"result type {dt.tname(d)} can't be cast to the desired output "
                               f"type {dt.tname(self._dtype)} ({name}_ on a tensor of shape "
                               f"{list(self._data.shape)})") from None
        raise
    if tuple(meta.shape) != self._data.shape:
        raise RuntimeError(f"{name}_: output with shape {list(self._data.shape)} doesn't match the "
                           f"broadcast shape {list(meta.shape)}")
    if not _cast_ok(meta.dtype, self._dtype):
        raise RuntimeError(f"result type {dt.tname(meta.dtype)} can't be cast to the desired output "
                           f"type {dt.tname(self._dtype)} ({name}_ on a tensor of shape "
                           f"{list(self._data.shape)})")
    return _commit(self, p, args, attrs)


def check_writable(t, op):
    """In-place writes into an expanded tensor (stride 0: several elements share one memory
    location) are refused as PyTorch refuses them, before anything is written."""
    if not STATE.inference and t.is_inference():
        raise RuntimeError("Inplace update to inference tensor outside InferenceMode is not "
                           "allowed.You can make a clone to get a normal tensor before doing "
                           "inplace update.See https://github.com/pytorch/rfcs/pull/17 for more "
                           "details.")
    if STATE.grad_enabled and "_nograd_view" in t.__dict__ and t._base.requires_grad:
        raise RuntimeError("A view was created in no_grad mode and is being modified inplace "
                           "with grad mode enabled. Given that this use case is ambiguous and "
                           "error-prone, it is forbidden. You can clarify your code by moving "
                           "both the view and the inplace either both inside the no_grad block "
                           "(if you don't want the inplace to be tracked) or both outside (if you "
                           "want the inplace to be tracked).")
    d = t._data
    if isinstance(d, np.ndarray) and not d.flags.writeable:     # cpu and interpret buffers
        raise RuntimeError(f"{op}: unsupported operation: more than one element of the written-to "
                           f"tensor refers to a single memory location. Please clone() the tensor "
                           f"before performing the operation. (shape {list(d.shape)}, stride "
                           f"{list(t.stride())})")
    if _dispatch.BEFORE_WRITE is not None:
        _dispatch.BEFORE_WRITE(t)


def _commit(self, p, args, attrs):
    if _dispatch.FWAD is not None:       # a dual level: self also takes the result's tangent
        from .autograd.forward_ad import inplace_commit
        return inplace_commit(self, p, args, attrs, _commit)
    if _dispatch.VMAP is not None:       # a batched self (or argument): vmap writes it back
        from .func.vmap import batched_level, inplace_commit
        # (builtins: this module's any() is torch.any)
        if [t for t in (self,) + tuple(args) if batched_level(t) is not None]:
            return inplace_commit(self, p, args, attrs)
    check_writable(self, p.name + "_")
    tr = STATE.tracer
    if tr is not None:              # traced: functional op, then rebind self (lazy.Tracer.assign)
        if STATE.grad_enabled and (self.requires_grad or _dispatch._needs_grad(args)):
            check_inplace_leaf(self)
        return tr.assign(self, apply(p, tr.snapshot(self), *args, **attrs))
    if STATE.grad_enabled and (self.requires_grad or _dispatch._needs_grad(args)):
        check_inplace_leaf(self)
        d = self._data
        if p.saves == "all" or 0 in p.saves:     # (a meta tensor's copy: new untouched storage)
            d = meta_empty(d.shape, d.dtype, d.strides) if type(d) is MetaArray else d.copy()
        old = _dispatch.wrap(d, self._dtype)
        old._node, old._oi, old._rg = self._node, self._oi, self._rg and self._node is None
        r = apply(p, old, *args, **attrs)
        store(self, r._data)
        if r._node is not None:
            self._node, self._oi = r._node, r._oi
            propagate_view_write(self)
    else:
        if self._device.type != "cpu":      # the device's kernel, not NumPy, computes it
            r = apply(p, self, *args, **attrs)._data
        else:
            if self._dtype is dt.complex32 and p.kind == "pointwise":
                args = _dispatch._chalf_operands(args)
            arrs = [a._data if isinstance(a, Tensor) else a for a in args]
            r = p.numpy(p.meta(self, *args, **attrs), self._data, *arrs, **attrs)
        store(self, r)
    self._bump()
    return self


def propagate_view_write(t):
    """PyTorch's CopySlices: after an in-place write through the view `t`, its base's history
    becomes "old base with t's elements replaced by t's new history" (an index_put at the
    positions t views), so gradients reach what was written. Positions come from applying the
    recorded view chain to an arange over the base."""
    base = t._base
    if base is None or t._view_src is None:
        return
    chain, cur = [], t
    while cur is not base:
        vs = cur._view_src
        if vs is None:          # a link made without grad recording: nothing to follow
            return
        chain.append(vs[1:3])
        cur = vs[0]
    if base._dtype.is_complex or t._dtype.is_complex:
        return _propagate_complex_view_write(t, base, chain)
    from compiler.ir.registry import AVal
    pos = np.arange(base._data.size, dtype=np.int64).reshape(base._data.shape)
    for prim, attrs in reversed(chain):
        pos = np.asarray(prim.numpy(prim.meta(AVal(pos.shape, dt.int64), **attrs), pos, **attrs))
    old = _dispatch.wrap(base._data, base._dtype)
    old._node, old._oi = base._node, base._oi
    new = _dispatch.wrap(t._data, t._dtype)
    new._node, new._oi = t._node, t._oi
    flat = apply(P["reshape"], old, shape=(base._data.size,))
    vals = apply(P["reshape"], new, shape=(t._data.size,))
    idx = _dispatch.wrap(np.ascontiguousarray(pos.reshape(-1)), dt.int64)
    if base._device is not _dispatch.cpu:
        idx = idx.to(base._device)
    rb = apply(P["reshape"], apply(P["index_put"], flat, vals, idx, pos=(0,), accumulate=False),
               shape=base._data.shape)
    base._node, base._oi = rb._node, rb._oi
    rename(base, "CopySlices")
    t._propagated = True     # (its grad_fn becomes a view of the base's new history: _bump)


def _propagate_complex_view_write(t, base, chain):
    """propagate_view_write where the view chain crosses between complex and real (z.real,
    view_as_real, view_as_complex): positions count real scalars (a complex element is two),
    carried through the chain as complex numbers 2k + (2k+1)i for a complex base."""
    from compiler.ir.registry import AVal
    n = base._data.size * (2 if base._dtype.is_complex else 1)
    flat_pos = np.arange(n, dtype=np.float64)
    if base._dtype.is_complex:
        pos = (flat_pos[0::2] + 1j * flat_pos[1::2]).reshape(base._data.shape)
        pd = dt.complex128
    else:
        pos, pd = flat_pos.reshape(base._data.shape), dt.float64
    for prim, attrs in reversed(chain):
        pos = np.asarray(prim.numpy(prim.meta(AVal(pos.shape, pd), **attrs), pos, **attrs))
        pd = dt.complex128 if pos.dtype.kind == "c" else dt.float64

    def as_reals(x):       # a complex tensor as its real scalars (graph op: keeps history)
        return apply(P["view_as_real"], x) if x._dtype.is_complex else x
    old = _dispatch.wrap(base._data, base._dtype)
    old._node, old._oi = base._node, base._oi
    new = _dispatch.wrap(t._data, t._dtype)
    new._node, new._oi = t._node, t._oi
    ro, rn = as_reals(old), as_reals(new)
    if pos.dtype.kind == "c":
        pos = np.stack([pos.real, pos.imag], -1)
    flat = apply(P["reshape"], ro, shape=(n,))
    vals = apply(P["reshape"], rn, shape=(rn._data.size,))
    idx = _dispatch.wrap(np.ascontiguousarray(pos.reshape(-1).astype(np.int64)), dt.int64)
    if base._device is not _dispatch.cpu:
        idx = idx.to(base._device)
    rb = apply(P["reshape"], apply(P["index_put"], flat, vals, idx, pos=(0,), accumulate=False),
               shape=ro._data.shape)
    if base._dtype.is_complex:
        rb = apply(P["view_as_complex"], rb)
    base._node, base._oi = rb._node, rb._oi
    rename(base, "CopySlices")
    t._propagated = True     # (its grad_fn becomes a view of the base's new history: _bump)


def check_inplace_leaf(t):
    mv = t.__dict__.get("_multi_view")
    if mv is not None and len(mv) > 2:      # a view made by (or returned as-is from) a Function
        if _dispatch.STATE.grad_enabled:
            raise RuntimeError(
                f"Output {mv[0]} of {mv[1]} is a view and is being modified inplace. This view was "
                "created inside a custom Function (or because an input was returned as-is) and the "
                "autograd logic to handle view+inplace would override the custom backward "
                "associated with the custom Function, leading to incorrect gradients. This "
                "behavior is forbidden. You can fix this by cloning the output of the custom "
                "Function.")
    elif mv is not None:
        raise RuntimeError(f"Output {mv[0]} of {mv[1]} is a view and is being modified inplace. "
                           "This view is the output of a function that returns multiple views. "
                           "Such functions do not allow the output views to be modified inplace. "
                           "You should replace the inplace operation by an out-of-place one.")
    if t._node is None and t._rg:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place "
                           "operation.")
    b = t._base
    if b is not None and b._node is None and b._rg:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an "
                           "in-place operation.")


def copy_(self, src, non_blocking=False):
    src = as_tensor_arg(src)
    if self._dtype.category == 4 or getattr(src, "_dtype", dt.float32).category == 4:
        from .ao._qtensor import copy_q         # (quantized: framework/ao/_qtensor.py)
        return copy_q(self, src)
    if _dispatch.VMAP is not None:
        from .func.vmap import batched_level, copy_into
        if batched_level(self) is not None or batched_level(src) is not None:
            return copy_into(self, src)
    check_writable(self, "copy_")
    if isinstance(src, Tensor) and src._data.shape != self._data.shape:
        from compiler.ir.registry import broadcast_shapes
        b = broadcast_shapes("copy_", tuple(self._data.shape), tuple(src._data.shape))
        if b != tuple(self._data.shape):
            raise RuntimeError(f"copy_: output with shape {list(self.shape)} doesn't match the "
                               f"broadcast shape {list(b)}")
    if _dispatch.FWAD is not None:       # forward AD: self takes src's tangent
        from .autograd.forward_ad import copy_tangent
        copy_tangent(self, src)
    tr = STATE.tracer
    if tr is not None:
        if STATE.grad_enabled and self.requires_grad:
            check_inplace_leaf(self)
        r = src if isinstance(src, Tensor) else apply(P["full"], shape=tuple(self._data.shape),
                                                        value=src, dtype=self._dtype)
        if STATE.grad_enabled and r.requires_grad:
            # as eagerly: self takes the history of an op on src (a leaf src has no node
            # of its own, so assigning it bare would leave self without requires_grad)
            r = apply(P["expand"], apply(P["cast"], r, dtype=self._dtype),
                      shape=tuple(self._data.shape))
        return tr.assign(self, r)
    if STATE.grad_enabled and (self.requires_grad or (isinstance(src, Tensor) and src.requires_grad)):
        check_inplace_leaf(self)
        s = src if isinstance(src, Tensor) else src
        r = apply(P["expand"], apply(P["cast"], s, dtype=self._dtype), shape=self._data.shape) \
            if isinstance(s, Tensor) else None
        if r is None:
            store(self, s)
            self._node = None
        else:
            store(self, r._data)
            self._node, self._oi = r._node, r._oi
        propagate_view_write(self)      # a view's base takes the write into its history
    else:
        store(self, src._data if isinstance(src, Tensor) else src)
    self._bump()
    return self


def fill_(self, value, _grad_name="FillBackward2"):
    if self._dtype.category == 4:       # quantized (framework/ao/_qtensor.py)
        from .ao._qtensor import fill_q
        return fill_q(self, value, _grad_name)
    if isinstance(value, Tensor) and value.ndim:
        raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with "
                           f"{value.ndim} dimensions.")
    if _dispatch.VMAP is not None:
        from .func.vmap import batched_level, copy_into
        if batched_level(self) is not None or batched_level(value) is not None:
            return copy_into(self, value)
    # (an expanded tensor with autograd history keeps the refusal: PyTorch refuses its backward)
    target = _expanded_alias(self) if STATE.tracer is None and not (
        STATE.grad_enabled and self.requires_grad) else None
    if target is None:
        check_writable(self, "fill_")
    if isinstance(value, Tensor):
        value = value.item()
    from .creation import int_fill
    value = int_fill(value, self._dtype)
    if self._dtype.round is not None:       # (the value as complex32 / float8 holds it)
        value = self._dtype.round(np.array(value, self._dtype.np)).item()
    if _dispatch.FWAD is not None and self._fwt is not None:    # a constant: zero tangent
        from .autograd.forward_ad import copy_tangent
        copy_tangent(self, value)
    needs = STATE.grad_enabled and self.requires_grad
    if needs:           # (then target is None: expanded tensors with history are refused)
        check_inplace_leaf(self)
        # PyTorch keeps the history (ZeroBackward0 / FillBackward2: a zero gradient to what
        # self was), so a later backward through self still reaches its inputs:
        # where(False, self, value) has that gradient exactly, NaN upstream included
        mask = _dispatch.wrap_like(np.zeros(self._data.shape, np.bool_), dt.bool_, self)
        r = rename(apply(P["where"], mask, self, value), _grad_name)
        if STATE.tracer is not None:
            STATE.tracer.assign(self, r)
            return self
        self._data.fill(value)
        self._node, self._oi = r._node, r._oi
        propagate_view_write(self)
        self._bump()
        return self
    tr = STATE.tracer
    if tr is not None:
        node = self._node
        tr.assign(self, apply(P["full"], shape=tuple(self._data.shape), value=value,
                              dtype=self._dtype))
        self._node = None if node is None or STATE.grad_enabled else node
        return self
    (self._data if target is None else target).fill(value)
    self._bump()
    return self


def _expanded_alias(t):
    """A writable alias of an expanded (read-only, stride-0) cpu tensor's memory, or None.
    PyTorch's fill_ and zero_ write such tensors (every element gets the same value, so the
    shared locations are no conflict), where other in-place ops refuse them."""
    d = t._data
    if type(d) is not np.ndarray or d.flags.writeable or 0 not in d.strides or not d.size \
            or t.is_inference():
        return None
    root = d
    while isinstance(root.base, np.ndarray):
        root = root.base
    if not root.flags.writeable or not root.flags.c_contiguous:
        return None     # (a read-only NumPy array under from_numpy: refused as before)
    off = d.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    return np.ndarray(d.shape, d.dtype, buffer=root, offset=off, strides=d.strides)


def zero_(self):
    return fill_(self, 0, "ZeroBackward0")


# ---- pointwise --------------------------------------------------------------------------------

def _check_same_out(name, input, out):
    """PyTorch's dtype-keeping unary ops (neg, abs, floor, ...) write out= only of input's own
    dtype (TensorIterator's unary_op: check_all_same_dtype), before the kernel's dtype check."""
    if out is not None and isinstance(input, Tensor) and out._dtype is not input._dtype:
        raise RuntimeError(f"Found dtype {dt.tname(out._dtype)} but expected "
                           f"{dt.tname(input._dtype)} ({name} with out= of dtype {out._dtype})")


_SAME_OUT = ("neg", "abs", "sign", "floor", "ceil", "trunc", "bitwise_not")


def _unary(name, torch_name=None):
    p = P[name]
    same_out = name in _SAME_OUT

    def f(input, *, out=None):
        if same_out:
            _check_same_out(name, input, out)
        r = apply(p, input)
        return write_out(r, out) if out is not None else r
    f.__name__ = torch_name or name
    return f


for _n in ("neg", "abs", "sign", "exp", "exp2", "log", "log2", "log10", "log1p", "expm1", "sqrt",
           "rsqrt", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "sigmoid",
           "erf", "floor", "ceil", "trunc", "reciprocal", "logical_not", "bitwise_not", "isnan",
           "isinf", "isfinite"):
    globals()[_n] = _unary(_n)
negative = neg
absolute = abs
arcsin, arccos, arctan = asin, acos, atan
fix = trunc


def sgn(input, *, out=None):
    """sign for real tensors; z/|z| (0 at 0) for complex ones."""
    _check_same_out("sgn", input, out)
    r = rename(apply(P["sgn" if input._dtype.is_complex else "sign"], input), "SgnBackward0")
    return write_out(r, out) if out is not None else r


def angle(input, *, out=None):
    r = apply(P["angle"], input)
    return write_out(r, out) if out is not None else r


def conj_physical(input, *, out=None):
    # Kiln materialises the conjugate (torch's lazy conj bit is not modelled): real tensors
    # come back as they are, complex ones as a new tensor
    if not input._dtype.is_complex:
        return input if out is None else write_out(input.clone(), out)
    r = apply(P["conj"], input)
    return write_out(r, out) if out is not None else r


def conj(input):
    return conj_physical(input)


def resolve_conj(input):
    return input          # nothing lazy to resolve: conj() already made the values


def resolve_neg(input):
    return input


def is_conj(input):
    return False


def is_neg(input):
    return False


def polar(abs, angle, *, out=None):
    """abs * (cos(angle) + i sin(angle)), differentiable in both."""
    from .creation import complex as _complex
    fl = (dt.float16, dt.float32, dt.float64)
    if abs._dtype is dt.float16 and angle._dtype is dt.float16:
        raise NotImplementedError("\"polar_cpu\" not implemented for 'Half'")
    if abs._dtype not in fl or angle._dtype not in fl:
        raise RuntimeError(f"Expected both inputs to be Half, Float or Double tensors but got "
                           f"{dt.tname(abs._dtype)} and {dt.tname(angle._dtype)}")
    if abs._dtype is not angle._dtype:
        raise RuntimeError(f"Expected object of scalar type {dt.tname(abs._dtype)} but got scalar "
                           f"type {dt.tname(angle._dtype)} for second argument")
    re = apply(P["mul"], abs, apply(P["cos"], angle))
    im = apply(P["mul"], abs, apply(P["sin"], angle))
    r = rename(_complex(re, im), "PolarBackward0")
    return write_out(r, out) if out is not None else r


def _binary(name):
    p = P[name]
    # which operands PyTorch's signature types as Tensor (a Python number there is a TypeError)
    both = name in _TENSOR_BOTH
    first = both or name in _TENSOR_FIRST

    def f(input, other, *, out=None):
        if first and not isinstance(input, Tensor):
            raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                            f"{type(input).__name__}")
        if both and not isinstance(other, Tensor):
            raise TypeError(f"{name}(): argument 'other' (position 2) must be Tensor, not "
                            f"{type(other).__name__}")
        a, b = as_tensor_arg(input), as_tensor_arg(other)
        if out is None:
            return apply(p, a, b)
        try:
            r = apply(p, a, b)
        except NotImplementedError:
            from compiler.ir.registry import promote
            _check_out_cast(promote(a, b), out)     # PyTorch checks the cast into out first
            raise
        return write_out(r, out)
    f.__name__ = name
    return f


def _check_out_cast(d, out):
    if d.category > out._dtype.category:
        raise RuntimeError(f"result type {dt.tname(d)} can't be cast to the desired output type "
                           f"{dt.tname(out._dtype)} (out= of shape {list(out.shape)})")


_TENSOR_BOTH = ("maximum", "minimum", "atan2", "logical_and", "logical_or", "logical_xor",
                "fmax", "fmin", "nextafter", "gcd")
_TENSOR_FIRST = ("eq", "ne", "lt", "le", "gt", "ge", "fmod", "copysign")


for _n in ("mul", "floor_divide", "remainder", "fmod", "maximum", "minimum", "atan2", "eq", "ne",
           "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor", "bitwise_and",
           "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift"):
    globals()[_n] = _binary(_n)
multiply = mul
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne
arctan2 = atan2


def _scaled(name, a, b, alpha):
    """a (+|-) alpha * b in a's and b's promoted dtype (alpha never widens it, as in PyTorch)."""
    p = P[name]
    d = p.meta(a, b).dtype            # checks shapes and dtypes first
    if isinstance(alpha, float) and d.category < 2:
        raise RuntimeError(f"For integral input tensors, argument alpha must not be a floating "
                           f"point number ({name} with result dtype {d}, alpha={alpha}).")
    if isinstance(alpha, bool) and d.category > 0 or not isinstance(alpha, (bool, int, float)):
        raise TypeError(f"{name}(): alpha must be a Python number matching the input dtype "
                        f"{d}, got {alpha!r}")
    # (PyTorch's Add/SubBackward0 keep alpha as a scalar: no saved tensor to free)
    alpha0 = alpha
    if isinstance(b, Tensor) and isinstance(a, Tensor) and a._dtype is b._dtype:
        # (float16/bfloat16: a + alpha * b in float32, rounded once, alpha taken in the half
        # dtype as PyTorch's kernel takes it; its gradient, grad * alpha, reads alpha unrounded)
        ar = half_scalar(alpha, d.np) if d is dt.float16 or d is dt.bfloat16 else alpha

        def f(a, b):
            bs = apply(P["mul"], b, alpha)
            if ar != alpha:      # value b * ar: exact in float32, as is the difference
                bs = apply(P["add"], bs, apply(P["sub"], apply(P["mul"], b.detach(), ar),
                                               bs.detach()))
            return apply(p, a, keep_saved(bs))
        r = half_opmath(f, a, b)
    else:
        r = apply(p, a, keep_saved(apply(P["mul"], b, alpha0)) if isinstance(b, Tensor)
                  else b * alpha0)
    saved_extra(r, alpha=alpha0)
    return r if r._dtype is d else apply(P["cast"], r, dtype=d)


def add(input, other, *, alpha=1, out=None):
    a, b = as_tensor_arg(input), as_tensor_arg(other)
    try:
        r = apply(P["add"], a, b) if alpha == 1 else _scaled("add", a, b, alpha)
    except SparseLayoutError:          # a sparse operand (framework.sparse)
        from .sparse import add as sparse_add
        r = sparse_add(a, b, alpha)
    return write_out(r, out) if out is not None else r


def sub(input, other, *, alpha=1, out=None):
    a, b = as_tensor_arg(input), as_tensor_arg(other)
    try:
        r = apply(P["sub"], a, b) if alpha == 1 else _scaled("sub", a, b, alpha)
    except SparseLayoutError:
        from . import sparse_compressed as SC
        for t in (a, b):        # (PyTorch subtracts COO tensors, not compressed ones)
            if SC.is_compressed(t):
                raise RuntimeError(f"unsupported tensor layout: {SC._tag(t)}") from None
        from .sparse import add as sparse_add
        r = sparse_add(a, b, -alpha)
    return write_out(r, out) if out is not None else r


subtract = sub


def div(input, other, *, rounding_mode=None, out=None):
    a, b = as_tensor_arg(input), as_tensor_arg(other)
    if rounding_mode is None:
        r = apply(P["div"], a, b)
    elif rounding_mode == "floor":
        r = apply(P["floor_divide"], a, b)
    elif rounding_mode == "trunc":
        from compiler.ir.registry import promote
        d = promote(a, b)
        if d.category < 2:
            dt.refuse_barebones("div_trunc_cpu", d)
            # exact integer quotient: a - fmod(a, b) is a multiple of b (fmod rejects b == 0)
            if d is not dt.bool_:
                # (a Python bool dividend counts as 0/1: sub refuses bool operands)
                a = apply(P["cast"], a, dtype=d) if isinstance(a, Tensor) else int(a)
            r = apply(P["floor_divide"], apply(P["sub"], a, apply(P["fmod"], a, b)), b)
        else:
            r = apply(P["trunc"], apply(P["div"], a, b))
    else:
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but "
                           f"found '{rounding_mode}'")
    if rounding_mode is not None:
        rename(r, "DivBackward2")           # PyTorch's node for a rounding div (zero gradients)
    return write_out(r, out)


divide = true_divide = div


def check_int_pow(a, e):
    """PyTorch refuses an integer tensor to a negative Python-int power (x.pow(-1), x **= -1);
    a tensor exponent is computed (PyTorch's 2 ** -1 is 0 there)."""
    if isinstance(a, Tensor) and a._dtype.category < 2 and isinstance(e, int) and e < 0:
        raise RuntimeError("pow: Integers to negative integer powers are not allowed "
                           f"(base {a._dtype}, exponent {e}).")


def pow(input, exponent, *, out=None):
    a, e = as_tensor_arg(input), as_tensor_arg(exponent)
    check_int_pow(a, e)
    return write_out(apply(P["pow"], a, e), out)


def square(input, *, out=None):
    return write_out(apply(P["pow"], input, 2), out)


def float_power(input, exponent):
    a = as_tensor_arg(input)
    e = as_tensor_arg(exponent)
    a = apply(P["cast"], a, dtype=dt.float64) if isinstance(a, Tensor) else float(a)
    e = apply(P["cast"], e, dtype=dt.float64) if isinstance(e, Tensor) else e
    return apply(P["pow"], a, e)


def where(condition, input=None, other=None, *, out=None):
    if input is None and other is None:
        from .ops_index import nonzero
        return nonzero(condition, as_tuple=True)
    return write_out(apply(P["where"], _t(condition), as_tensor_arg(input), as_tensor_arg(other)),
                     out)


def cast(x, dtype):
    return apply(P["cast"], x, dtype=dtype)


def half_opmath(fn, *args):
    """fn(*args) as PyTorch's one-kernel cpu ops (gelu, lerp, layer_norm, ...) compute
    float16/bfloat16: the tensors of the first argument's half dtype cast to float32, numbers
    read as float32, the result (each float32 one of a tuple) rounded once at the end (fn's
    own primitives would round after each). Other dtypes: fn(*args)."""
    d = getattr(args[0], "_dtype", None)
    if d is not dt.float16 and d is not dt.bfloat16 or builtins.any(
            isinstance(a, Tensor) and a._dtype is not d and a._dtype.is_floating_point
            for a in args):      # (a wider float operand: the op's own promotion)
        return fn(*args)
    r = fn(*(apply(P["cast"], a, dtype=dt.float32) if isinstance(a, Tensor) and a._dtype is d
             else a for a in args))
    if isinstance(r, tuple):
        return tuple(apply(P["cast"], t, dtype=d) if isinstance(t, Tensor) and
                     t._dtype is dt.float32 else t for t in r)
    return apply(P["cast"], r, dtype=d)


def clone(input, *, memory_format=None):
    if memory_format is not None and memory_format is not _mf.preserve_format:
        _mf.check("clone", memory_format)
        if _mf.is_channels_last(memory_format):
            _mf.check_rank("clone", input.ndim, memory_format)
        r = apply(P["copy"], input)
        if type(r._data) is np.ndarray:
            r._data = _mf.laid_out(r._data, memory_format) if \
                _mf.is_channels_last(memory_format) else np.asarray(r._data, order="C")
        return r
    r = apply(P["copy"], input)
    d = r._data
    if type(d) is np.ndarray and not d.flags.c_contiguous and builtins.any(
            s == 0 and n > 1 for s, n in zip(input._data.strides, input._data.shape)):
        # an expanded input (stride 0) clones contiguous in torch; np.copy's 'K' order does not
        r._data = np.asarray(d, order="C")
    elif type(d) is np.ndarray and d.strides != input._data.strides and d.size > 0 and \
            builtins.all(a == b or n == 1 for a, b, n in
                         zip(d.strides, input._data.strides, d.shape)):
        # np.copy re-strides size-1 dims; preserve_format keeps a dense input's strides exactly
        # (an (8, 3, 1, 1) channels_last weight stays (3, 1, 3, 3))
        r._data = np.lib.stride_tricks.as_strided(d, strides=input._data.strides)
    return r


def round(input, *, decimals=0, out=None):
    _check_same_out("round", input, out)
    if decimals == 0:
        return write_out(apply(P["round"], input), out)
    if input._dtype.category < 2:
        raise NotImplementedError(f"\"round_cpu\" not implemented for '{dt.tname(input._dtype)}' "
                                  f"(round with decimals={decimals} needs a floating point tensor)")
    s = 10.0 ** decimals
    return write_out(apply(P["div"], apply(P["round"], apply(P["mul"], input, s)), s), out)


def positive(input):
    if input._dtype is dt.bool_:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return input


def frac(input, *, out=None):
    _check_same_out("frac", input, out)
    if input._dtype.category != 2:
        raise NotImplementedError(f"\"frac_cpu\" not implemented for '{dt.tname(input._dtype)}' "
                                  f"(frac needs a floating point tensor)")
    return write_out(rename(apply(P["sub"], input, apply(P["trunc"], input)), "FracBackward0"),
                     out)


def _no_complex(input, cls, msg):
    """PyTorch has no complex kernel here (ordering ops): raise its error, never a wrong value."""
    if isinstance(input, Tensor) and input._dtype.is_complex:
        raise cls(msg.format(dt.tname(input._dtype)))


_CLAMP_MSG = "clamp is not supported for complex types"


def relu(input):
    _no_complex(input, NotImplementedError, _CLAMP_MSG)
    if input._dtype is dt.bool_:
        raise RuntimeError(f"Boolean inputs not supported for relu (input of shape "
                           f"{list(input.shape)})")
    # one primitive (compiler/ops/pointwise.py): clamp_min(x, 0) values (-0.0 stays -0.0, NaN
    # propagates) with threshold_backward's gradient
    return apply(P["relu"], input)


def _no_grad_eager(*args):
    return STATE.tracer is None and not (STATE.grad_enabled and _dispatch._needs_grad(args))


def clamp(input, min=None, max=None, *, out=None):
    b = [x for x in (min, max) if x is not None]
    if builtins.any(isinstance(x, Tensor) and x.ndim for x in b) and \
            not builtins.all(isinstance(x, Tensor) for x in b):
        # torch's overloads take Tensor bounds or Number bounds (a 0-d tensor passes as a
        # Number), never a tensor with a Python number
        raise TypeError(
            "clamp() received an invalid combination of arguments - got (Tensor, "
            + ", ".join(f"{k}={type(x).__name__}" for k, x in (("min", min), ("max", max))
                        if x is not None) + "), but expected one of:\n"
            " * (Tensor input, Tensor min = None, Tensor max = None, *, Tensor out = None)\n"
            " * (Tensor input, Number min = None, Number max = None, *, Tensor out = None)\n")
    return _clamp(input, min, max, out, "ClampBackward1")


def _clamp(input, min, max, out, grad_name):
    from compiler.ir.registry import promote
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(input, Tensor) and input._dtype.category == 4:     # quantized
        from .ao._qtensor import clamp_q, clamp_refusal
        if grad_name != "ClampBackward1" or out is not None:   # (PyTorch's clamp_min/max fail)
            op = {"ClampMinBackward0": "clamp_min", "ClampMaxBackward0": "clamp_max"}
            raise clamp_refusal(input, op.get(grad_name, "clamp"), (min, max))
        return clamp_q(input, min, max)
    for b in (input, min, max):
        _no_complex(b, NotImplementedError, _CLAMP_MSG)
    mn = None if min is None else as_tensor_arg(min)
    mx = None if max is None else as_tensor_arg(max)
    bounds = [b for b in (mn, mx) if b is not None]
    d = promote(input, *bounds)       # PyTorch: the result type of input, min and max
    if d.barebones or d in dt.FLOAT8:
        # PyTorch's kernels: a 0-d tensor bound counts as a Python one
        tb = [b for b in bounds if isinstance(b, Tensor)]
        k = ("clamp" if builtins.any(b.ndim for b in tb) else "clamp_scalar") \
            if len(bounds) == 2 else ("maximum" if mn is not None else "minimum") if tb else \
            "clamp_min_scalar" if mn is not None else "clamp_max_scalar"
        dt.refuse_barebones(k + "_cpu", d)
    if d is dt.bool_:
        # PyTorch: one tensor bound runs clamp_min/clamp_max (maximum/minimum, which take bool);
        # two bounds with a tensor among them run clamp_cpu, Python bounds clamp*_scalar_cpu
        tb = builtins.any(isinstance(b, Tensor) for b in bounds)
        if len(bounds) == 2 or not tb:
            k = "clamp" if tb else "clamp_scalar" if len(bounds) == 2 else \
                "clamp_min_scalar" if mn is not None else "clamp_max_scalar"
            raise NotImplementedError(f"\"{k}_cpu\" not implemented for 'Bool' (clamp with bool "
                                      f"bounds on a bool tensor of shape {list(input.shape)})")
    r = input if input._dtype is d else apply(P["cast"], input, dtype=d)
    if _no_grad_eager(input, mn, mx):
        r = _clamp_value(r, mn, mx)
        return write_out(r if r._dtype is d else apply(P["cast"], r, dtype=d), out)
    # gradient to x where min <= x <= max (so at a bound too, and 0 at NaN), as torch; the
    # value elsewhere is the clamp of the detached x (the bounds keep their gradients)
    keep = None
    for b, cmp in ((mn, "ge"), (mx, "le")):
        if b is not None:
            k = apply(P[cmp], r, b)
            keep = k if keep is None else apply(P["logical_and"], keep, k)
    r = apply(P["where"], keep, r, _clamp_value(r.detach(), mn, mx))
    if r._dtype is not d:
        r = apply(P["cast"], r, dtype=d)
    rename(r, grad_name if not builtins.any(isinstance(b, Tensor) for b in bounds)
           else "ClampBackward0")
    return write_out(r, out)


clip = clamp


def _clamp_value(r, mn, mx):
    """torch's clamp values: below min -> min, then above max -> max (max wins when min > max);
    NaN in x or in a bound gives NaN. At a tie x is kept: clamp(-0.0, min=0.0) is -0.0 (with a
    tensor bound torch's -0.0/0.0 tie depends on its vectorised path; Kiln keeps x there too)."""
    for b, cmp in ((mn, "lt"), (mx, "gt")):
        if b is None:
            continue
        if isinstance(b, Tensor):
            c = apply(P[cmp], r, b)
            if b._dtype.is_floating_point:
                c = apply(P["logical_or"], c, apply(P["isnan"], b))
        else:
            # x != NaN holds everywhere (only a plain float is looked at: a traced optimizer
            # hyperparameter must not be read)
            c = apply(P["ne" if type(b) is float and math.isnan(b) else cmp], r, b)
        r = apply(P["where"], c, b, r)
    return r


def clamp_min(input, min, *, out=None):
    return _clamp(input, min, None, out, "ClampMinBackward0")


def clamp_max(input, max, *, out=None):
    return _clamp(input, None, max, out, "ClampMaxBackward0")


def _need_float(name, *xs):
    for x in xs:
        if isinstance(x, Tensor) and x._dtype.category < 2:
            raise NotImplementedError(f"\"{name}\" not implemented for '{dt.tname(x._dtype)}' "
                                      f"({name.split('_')[0]} needs floating point tensors, got "
                                      f"shape {list(x.shape)})")


def lerp(input, end, weight, *, out=None):
    _tensors("lerp", input, end, "end")
    dt.refuse_chalf("lerp_kernel_tensor" if isinstance(weight, Tensor) else "lerp_kernel_scalar",
                    input._dtype)
    # PyTorch's lerp takes end (and a weight tensor with dims) only in input's own dtype
    for n, v in (("end", end), ("weight", weight if isinstance(weight, Tensor) and weight.ndim
                                else None)):
        if v is not None and v._dtype is not input._dtype:
            raise RuntimeError(f"expected dtype {dt.CPP_NAME[input._dtype.name]} for `{n}` but got "
                               f"dtype {dt.CPP_NAME[v._dtype.name]} (lerp of shapes "
                               f"{list(input.shape)} and {list(v.shape)})")
    w = as_tensor_arg(weight)
    _need_float("lerp_kernel_tensor" if isinstance(w, Tensor) else "lerp_kernel_scalar", input, end)
    # torch's formula: start + w (end - start) for |w| < 0.5, else end - (end - start)(1 - w)
    # (exact at w == 1, and its own NaN/inf results: lerp(-inf, 1, 0.5) is -inf)
    r = half_opmath(_lerp, input, end, w)
    if isinstance(w, Tensor):
        ops = (input, end, w)
        if type(r._data) is np.ndarray and not builtins.all(
                x._data.flags.c_contiguous for x in ops):
            # TensorIterator's operands are input, end, weight (where's would put weight first)
            r._data = _mf.elementwise([x._data for x in ops], r._data)
    return write_out(rename(r, "LerpBackward1" if isinstance(w, Tensor) else "LerpBackward0"), out)


def _lerp(input, end, w):
    d = apply(P["sub"], end, input)
    lo = lambda: apply(P["add"], input, keep_saved(apply(P["mul"], w, d)))       # noqa: E731
    hi = lambda: apply(P["add"], end, keep_saved(apply(P["mul"], d, apply(     # noqa: E731
        P["sub"], w, 1) if isinstance(w, Tensor) else w - 1)))
    if isinstance(w, Tensor):
        return where(apply(P["lt"], apply(P["abs"], w), 0.5), lo(), hi())
    return lo() if builtins.abs(w) < 0.5 else hi()



def addcmul(input, tensor1, tensor2, *, value=1, out=None):
    """input + value * tensor1 * tensor2, in the dtype the three promote to (an integer result
    takes int(value), as PyTorch casts the scalar to it)."""
    r = half_opmath(lambda i, a, b: _addc(i, apply(P["mul"], a, b), value, a, b),
                    input, tensor1, tensor2)
    return write_out(rename(r, "AddcmulBackward0"), out)


def addcdiv(input, tensor1, tensor2, *, value=1, out=None):
    """input + value * tensor1 / tensor2 (true division; integer tensor1 and tensor2 raise as
    PyTorch's, which dropped their old floor division)."""
    dt.refuse_chalf("addcdiv_cpu_out", input._dtype)
    if tensor1._dtype.category < 2 and tensor2._dtype.category < 2:
        raise RuntimeError("Integer division with addcdiv is no longer supported, and in a future "
                           " release addcdiv will perform a true division of tensor1 and tensor2. "
                           "The historic addcdiv behavior can be implemented as (input + value * "
                           "torch.trunc(tensor1 / tensor2)).to(input.dtype) for integer inputs and "
                           "as (input + value * tensor1 / tensor2) for float inputs. The future "
                           "addcdiv behavior is just the latter implementation: (input + value * "
                           "tensor1 / tensor2), for all dtypes.")
    r = half_opmath(lambda i, a, b: _addc(i, apply(P["div"], a, b), value, a, b),
                    input, tensor1, tensor2)
    return write_out(rename(r, "AddcdivBackward0"), out)


def _addc(input, prod, value, tensor1, tensor2):
    d = dt.promote_types(dt.promote_types(input._dtype, tensor1._dtype), tensor2._dtype)
    if d.category < 2:
        value = int(value)
    if prod._dtype is not d:
        prod = apply(P["cast"], prod, dtype=d)
    if value != 1:
        prod = apply(P["mul"], prod, value)
    r = apply(P["add"], input, prod)
    return r if r._dtype is d else apply(P["cast"], r, dtype=d)

def xlogy(input, other, *, out=None):
    """x * log(y), 0 where x == 0 (unless y is NaN); either may be a Python number."""
    a, b = as_tensor_arg(input), as_tensor_arg(other)
    from compiler.ir.registry import promote
    d = promote(a, b)       # computed in the operands' result type (default float for integers)
    dt.refuse_chalf("xlogy_cpu", d)
    if not (d.is_floating_point or d.is_complex):
        d = dt.get_default_dtype()
    a = cast(a, d) if isinstance(a, Tensor) and a._dtype is not d else a
    b = cast(b, d) if isinstance(b, Tensor) and b._dtype is not d else b
    if not isinstance(b, Tensor):
        b = float(b)
        lb = math.log(b) if b > 0 else -math.inf if b == 0 else math.nan
        zero = b != b
    else:
        lb, zero = apply(P["log"], b if b._dtype.is_floating_point else
                         cast(b, dt.get_default_dtype())), apply(P["isnan"], b)
    prod = apply(P["mul"], a, lb)
    if not isinstance(a, Tensor):
        return write_out(rename(prod if a != 0 else apply(P["where"], zero, math.nan,
                                                          apply(P["mul"], prod, 0)),
                                "XlogyBackward1"), out)
    keep = apply(P["ne"], a, 0) if zero is False else apply(P["logical_or"], apply(P["ne"], a, 0), zero)
    return write_out(rename(_x_log_at_zero(a, lb, keep),
                            "XlogyBackward0" if isinstance(other, Tensor) else "XlogyBackward2"),
                     out)


def _x_log_at_zero(a, lb, keep):
    """where(keep, x * l, 0) with PyTorch's gradient: d/dx is l (log(y) or log1p(y)) also where
    x == 0, masked to 0 only where l is not finite (torch: xlogy(grad, y).masked_fill(...)). The
    x == 0 branch is x * l (l's infinities zeroed) + 0.0, whose value is +0."""
    if isinstance(lb, Tensor):
        lb = apply(P["where"], apply(P["logical_or"], keep, apply(P["isfinite"], lb)), lb, 0.0)
    elif not math.isfinite(lb):
        lb = apply(P["where"], keep, lb, 0.0)
    prod = apply(P["mul"], a, lb)
    return apply(P["where"], keep, prod, apply(P["add"], prod, 0.0))


def logit(input, eps=None):
    if not input._dtype.is_floating_point:          # integers and bools: as default floats
        input = cast(input, dt.get_default_dtype())
    x = input if eps is None else clamp(input, eps, 1 - eps)
    # log(x / (1 - x)) as PyTorch computes it; at x = 0 and 1 its gradient would be inf * 0 =
    # NaN, PyTorch's is 1 / (x (1 - x)) = inf, which log(x) - log1p(-x) gives there
    edge = apply(P["logical_or"], apply(P["eq"], x, 0.0), apply(P["eq"], x, 1.0))
    xs = apply(P["where"], edge, 0.5, x)
    xe = apply(P["where"], edge, x, 0.5)
    return rename(apply(P["where"], edge,
                        apply(P["sub"], apply(P["log"], xe), apply(P["log1p"], apply(P["neg"], xe))),
                        apply(P["log"], apply(P["div"], xs, apply(P["sub"], 1, xs)))),
                  "LogitBackward0")


def hypot(input, other, *, out=None):
    _tensors("hypot", input, other)
    from compiler.ir.registry import promote
    d = promote(input, other)       # result_type: a 0-dim operand does not widen a float one
    if d.category >= 2:
        input = input if input._dtype is d else cast(input, d)     # hypot(float, int) promotes
        other = other if other._dtype is d else cast(other, d)
    if out is not None:
        _check_out_cast(d, out)
    _need_float("hypot_cpu", input, other)
    return write_out(rename(half_opmath(_hypot, input, other), "HypotBackward0"), out)


def _hypot(input, other):
    # C's hypot: no overflow or underflow in x*x + y*y (big * sqrt(1 + (small/big)^2)), and
    # an infinite operand gives inf even beside a NaN
    ax, ay = abs(input), abs(other)
    big, small = maximum(ax, ay), minimum(ax, ay)      # (NaN propagates)
    zero = eq(big, 0)
    q = div(small, where(zero, 1.0, big))
    r = where(zero, big, mul(big, sqrt(add(mul(q, q), 1.0))))
    return where(logical_or(isinf(input), isinf(other)), math.inf, r)


def deg2rad(input):
    if input._dtype.is_complex:
        raise RuntimeError("deg2rad is not supported for complex tensors.")
    return rename(mul(input, math.pi / 180), "Deg2RadBackward0")


def rad2deg(input):
    if input._dtype.is_complex:
        raise RuntimeError("rad2deg is not supported for complex tensors.")
    return rename(mul(input, 180 / math.pi), "Rad2DegBackward0")


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    a, b = _t(input), as_tensor_arg(other)
    if isinstance(b, Tensor) and b._dtype is not a._dtype:     # torch: no promotion here
        raise RuntimeError(f"{dt.tname(a._dtype)} did not match {dt.tname(b._dtype)}")
    for name, v in (("rtol", rtol), ("atol", atol)):
        if v < 0:
            raise RuntimeError(f"{name} must be greater than or equal to zero, but got {v:g}")
    if a._dtype is dt.bool_ and (not isinstance(b, Tensor) or b._dtype is dt.bool_):
        return eq(a, b)               # no distance between bools: close means equal
    close = eq(a, b)
    if a._dtype.category == 1:        # integers: distances in the default float dtype (PyTorch's)
        a = cast(a, dt.get_default_dtype())
        b = cast(b, a._dtype) if isinstance(b, Tensor) else b
    diff = abs(sub(a, b))
    tol = add(mul(abs(b) if isinstance(b, Tensor) else builtins.abs(b), rtol), atol)
    r = logical_or(close, logical_and(isfinite(diff), le(diff, tol)))
    if equal_nan:
        r = logical_or(r, logical_and(isnan(a), isnan(b) if isinstance(b, Tensor) else False))
    return r


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(all(isclose(input, other, rtol, atol, equal_nan)))


def equal(input, other):
    # (a tensor against itself takes PyTorch's NaN-aware kernel, which float8 lacks)
    dt.refuse_chalf("equal_notnan_cpu" if other is input and input._dtype in dt.FLOAT8 else
                    "equal_cpu", input._dtype)
    return input.shape == other.shape and bool(all(eq(input, other)))


def full_on(ref, shape, value, dtype):
    """P["full"] on tensor `ref`'s device: a creation primitive has no tensor input for apply()
    to take the device from, so ops that build constants for an input put them beside it."""
    if ref._device is _dispatch.cpu or STATE.tracer is not None:
        return apply(P["full"], shape=tuple(shape), value=value, dtype=dtype)
    from . import _device_ops
    return _device_ops.create(P["full"], ref._device, shape=tuple(shape), value=value,
                              dtype=dtype)


def isneginf(input):
    if input._dtype.is_complex:
        raise RuntimeError("isneginf does not support complex inputs.")
    if input._dtype.category < 2:       # an integer is never infinite (no comparison kernel)
        return full_on(input, input.shape, False, dt.bool_)
    return logical_and(isinf(input), lt(input, 0))


def isposinf(input):
    if input._dtype.is_complex:
        raise RuntimeError("isposinf does not support complex inputs.")
    if input._dtype.category < 2:
        return full_on(input, input.shape, False, dt.bool_)
    return logical_and(isinf(input), gt(input, 0))


def isreal(input):
    if input._dtype.is_complex:         # real where the imaginary part is zero
        from .ops_shape import imag
        return eq(imag(input), 0)
    return full_on(input, input.shape, True, dt.bool_)


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    dt.refuse_chalf("nan_to_num", input._dtype)
    if input._dtype.is_complex:
        # PyTorch replaces in the real and the imaginary part separately (limits of the part's
        # float dtype); its autograd refuses complex outputs
        if STATE.grad_enabled and input.requires_grad:
            raise RuntimeError("nan_to_num does not support automatic differentiation for "
                               "outputs with complex dtype.")
        from .ops_shape import real, imag
        from .creation import complex as _complex
        return _complex(nan_to_num(real(input), nan, posinf, neginf),
                        nan_to_num(imag(input), nan, posinf, neginf))
    fi = dt.finfo(input._dtype) if input._dtype.is_floating_point else None
    if fi is None:
        return clone(input)
    r = where(isnan(input), nan, input)
    r = where(isposinf(r), fi.max if posinf is None else posinf, r)
    return rename(where(isneginf(r), fi.min if neginf is None else neginf, r), "NanToNumBackward0")


# ---- more pointwise: inverse hyperbolics, erfc, copysign, fmax/fmin, gcd/lcm, ... ----------------
# primitives (compiler/ops/pointwise.py): acosh asinh atanh erfc signbit copysign fmax fmin
# nextafter gcd; composites of primitives: lcm ldexp frexp heaviside logaddexp logaddexp2 rsub fill

for _n in ("acosh", "asinh", "atanh", "erfc"):
    globals()[_n] = _unary(_n)
arccosh, arcsinh, arctanh = acosh, asinh, atanh
for _n in ("copysign", "fmax", "fmin", "nextafter", "gcd"):
    globals()[_n] = _binary(_n)


def signbit(input, *, out=None):
    if out is not None and out._dtype is not dt.bool_:
        raise RuntimeError("signbit does not support non-boolean outputs.")
    return write_out(apply(P["signbit"], input), out)


def _tensors(name, input, other, other_name="other"):
    for pos, (n, v) in enumerate((("input", input), (other_name, other)), 1):
        if not isinstance(v, Tensor):
            raise TypeError(f"{name}(): argument '{n}' (position {pos}) must be Tensor, not "
                            f"{type(v).__name__}")


def lcm(input, other, *, out=None):
    """|a / gcd(a, b) * b|, 0 where gcd is 0 (PyTorch's kernel; gcd checks the dtypes)."""
    _tensors("lcm", input, other)
    try:
        g = apply(P["gcd"], input, other)
    except NotImplementedError as e:
        raise NotImplementedError(str(e).replace("gcd", "lcm")) from None
    z = apply(P["eq"], g, 0)
    q = apply(P["floor_divide"], input, apply(P["where"], z, 1, g))   # exact: g divides a
    r = apply(P["where"], z, 0, apply(P["abs"], apply(P["mul"], q, other)))
    return write_out(apply(P["cast"], r, dtype=g._dtype) if r._dtype is not g._dtype else r, out)


def ldexp(input, other, *, out=None):
    """input * 2**other (PyTorch's definition: integer inputs give the default float dtype)."""
    _tensors("ldexp", input, other)
    d = input._dtype
    if d.is_floating_point and other._dtype.category < 2:
        # PyTorch's ldexp kernel: the result keeps input's dtype, the exponent must be an integer
        if other._dtype is dt.bool_:
            raise NotImplementedError(f"\"ldexp_cpu_exp\" not implemented for 'Bool' (ldexp: "
                                      f"exponent of shape {list(other.shape)} is torch.bool)")
        # 2**other is exact in float64 and so is the product: one rounding to d
        x = input if d is dt.float64 else cast(input, dt.float64)
        r = apply(P["mul"], x, apply(P["pow"], 2.0, cast(other, dt.float64)))
        return write_out(r if d is dt.float64 else cast(r, d), out)
    return write_out(apply(P["mul"], input, apply(P["pow"], 2.0, other)), out)


FrexpResult = named("frexp", ("mantissa", "exponent"))


def frexp(input, *, out=None):
    """(mantissa, exponent): input = mantissa * 2**exponent, 0.5 <= |mantissa| < 1, exponent
    int32; 0, inf and NaN give themselves and exponent 0. The mantissa's gradient is
    grad / 2**exponent (the exponent path contributes exact zeros: floor, finite logs)."""
    if not input._dtype.is_floating_point:
        raise RuntimeError("torch.frexp() only supports floating-point dtypes")
    if out is not None and out[1]._dtype is not dt.int32:
        raise RuntimeError(f"torch.frexp() expects exponent to have int dtype but got "
                           f"{dt.tname(out[1]._dtype).lower()} int")
    x = input
    a = apply(P["abs"], x)
    fin = apply(P["logical_and"], apply(P["isfinite"], x), apply(P["ne"], x, 0))
    e = apply(P["add"], apply(P["floor"], apply(P["log2"], apply(P["where"], fin, a, 1.0))), 1)
    e = apply(P["where"], fin, e, 0.0)
    h = apply(P["floor"], apply(P["mul"], e, 0.5))      # 2**-e in two halves: no overflow
    m = apply(P["mul"], apply(P["mul"], x, apply(P["exp2"], apply(P["neg"], h))),
              apply(P["exp2"], apply(P["neg"], apply(P["sub"], e, h))))
    am = apply(P["abs"], m)                            # log2 may round across a power of 2
    big = apply(P["logical_and"], fin, apply(P["ge"], am, 1.0))
    small = apply(P["logical_and"], fin, apply(P["lt"], am, 0.5))
    m = apply(P["where"], big, apply(P["mul"], m, 0.5), apply(P["where"], small, apply(P["mul"], m, 2.0), m))
    e = apply(P["sub"], apply(P["add"], e, apply(P["cast"], big, dtype=e._dtype)),
              apply(P["cast"], small, dtype=e._dtype))
    res = FrexpResult(rename(m, "FrexpBackward0"), apply(P["cast"], e, dtype=dt.int32))
    if out is not None:
        write_out(tuple(res), out)
        return FrexpResult(*out)
    return res


def heaviside(input, values, *, out=None):
    """0 where input < 0, values where input == 0, 1 where input > 0 (NaN gives 0)."""
    _tensors("heaviside", input, values, "values")
    if input._dtype.is_complex or values._dtype.is_complex:
        raise RuntimeError("heaviside is not yet implemented for complex tensors.")
    if input._dtype is not values._dtype:
        raise RuntimeError("heaviside is not yet implemented for tensors with different dtypes.")
    dt.refuse_barebones("heaviside_cpu", input._dtype)
    if STATE.grad_enabled and _dispatch._needs_grad((input, values)):
        raise RuntimeError("derivative for aten::heaviside is not implemented")
    r = apply(P["where"], apply(P["eq"], input, 0), values,
              apply(P["cast"], apply(P["gt"], input, 0), dtype=input._dtype))
    return write_out(r, out)


def _logaddexp(name, input, other, out, base2):
    _tensors(name, input, other)
    from compiler.ir.registry import promote
    d = promote(input, other)
    if not d.is_floating_point:
        raise NotImplementedError(f"\"{name}_cpu\" not implemented for '{dt.tname(d)}' ({name} "
                                  f"needs floating point tensors; dtypes {input._dtype} and "
                                  f"{other._dtype})")
    # a bool or integer side joins in the floating dtype (sub refuses bool)
    input, other = (x if x._dtype is d else apply(P["cast"], x, dtype=d) for x in (input, other))
    # max(a, b) + log(1 + exp(-|a - b|)): no overflow; at a == b each side gets half the
    # gradient (maximum splits ties, |.| has slope 0 at 0), as PyTorch's 1 / (1 + exp(b - a))
    m = apply(P["maximum"], input, other)
    t = apply(P["neg"], apply(P["abs"], apply(P["sub"], input, other)))
    if base2:
        r = apply(P["add"], m, apply(P["mul"], apply(P["log1p"], apply(P["exp2"], t)), 1 / math.log(2)))
    else:
        r = apply(P["add"], m, apply(P["log1p"], apply(P["exp"], t)))
    same_inf = apply(P["logical_and"], apply(P["isinf"], input), apply(P["eq"], input, other))
    r = apply(P["where"], same_inf, m, r)             # inf - inf would be NaN
    return write_out(rename(r, "Logaddexp2Backward0" if base2 else "LogaddexpBackward0"), out)


def logaddexp(input, other, *, out=None):
    return _logaddexp("logaddexp", input, other, out, False)


def logaddexp2(input, other, *, out=None):
    return _logaddexp("logaddexp2", input, other, out, True)


def rsub(input, other, *, alpha=1):
    """other - alpha * input."""
    if not isinstance(input, Tensor):
        raise TypeError(f"rsub(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    return rename(sub(other, input, alpha=alpha),
                  "RsubBackward0" if isinstance(other, Tensor) else "RsubBackward1")


def fill(input, value):
    """A new tensor shaped and typed like input, every element value (a number or a 0-dim
    tensor, whose gradient is the sum of the incoming one)."""
    d = input._dtype
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"fill only supports 0-dimension value tensor but got tensor with "
                               f"{value.ndim} dimensions.")
        r = apply(P["where"], full_on(input, input.shape, True, dt.bool_), value, input)
        return rename(r if r._dtype is d else apply(P["cast"], r, dtype=d), "FillBackward1")
    if isinstance(value, complex) and not d.is_complex:
        raise RuntimeError(f"value cannot be converted to type {dt.tname(d).lower()} without "
                           f"overflow")
    return full_on(input, input.shape, value, d)


# ---- special functions ------------------------------------------------------------------------
# lgamma, digamma, polygamma, erfinv, i0, i0e, i1, i1e are primitives (compiler/ops/pointwise.py);
# the rest are composites of primitives, so they differentiate and compile like any graph.

for _n in ("lgamma", "digamma", "erfinv", "i0"):
    globals()[_n] = _unary(_n)
# torch.special only (not torch.*): underscored so `from ops_math import *` leaves them out
_i0e, _i1, _i1e = _unary("i0e"), _unary("i1"), _unary("i1e")


def polygamma(n, input, *, out=None):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"polygamma(): argument 'n' (position 1) must be int, not "
                        f"{type(n).__name__}")
    return write_out(apply(P["polygamma"], input, n=int(n)), out)


def _check_p(p):
    if p < 1:
        raise RuntimeError("p has to be greater than or equal to 1")


def mvlgamma(input, p, *, out=None):
    """log of the multivariate gamma function: sum_j lgamma(x - j/2) + p(p-1)/4 log(pi).
    (PyTorch 2.x no longer rejects x <= (p-1)/2: those give lgamma's values, inf at poles.)"""
    _check_p(p)
    r = apply(P["lgamma"], input)
    for j in range(1, p):
        r = apply(P["add"], r, apply(P["lgamma"], apply(P["sub"], input, 0.5 * j)))
    return write_out(apply(P["add"], r, p * (p - 1) / 4 * math.log(math.pi)), out)


def _float(x):
    x = _t(x)
    return x if x._dtype.is_floating_point else cast(x, dt.get_default_dtype())


_CF_TERMS = 32          # continued fraction of erfc: rel. error < 1e-13 for x >= 2.5


def _erfcx_cf(xc):
    """erfc's continued fraction 1 / (sqrt(pi) (x + (1/2) / (x + 1 / (x + ...)))), x >= 2.5."""
    t = xc
    for k in range(_CF_TERMS, 0, -1):
        t = apply(P["add"], xc, apply(P["div"], k / 2, t))
    return apply(P["div"], 1 / math.sqrt(math.pi), t)


def _erfcx(input, *, out=None):
    """exp(x^2) erfc(x): the product itself on (-2.5, 2.5), erfc's continued fraction above
    2.5, and 2 exp(x^2) - erfcx(-x) below -2.5 (as PyTorch's Faddeeva code), where the product
    would give the gradient inf * 0 = NaN once exp(x^2) overflows (erfcx'(-30) is -inf). Each
    branch sees only inputs it is meant for, so an unused branch cannot put a NaN into the
    gradient."""
    x = _float(input)
    far = apply(P["ge"], x, 2.5)
    neg = apply(P["le"], x, -2.5)
    cf = _erfcx_cf(apply(P["where"], far, x, 2.5))
    xm = apply(P["where"], neg, x, -2.5)
    left = apply(P["sub"], apply(P["mul"], apply(P["exp"], apply(P["mul"], xm, xm)), 2.0),
                 _erfcx_cf(apply(P["neg"], xm)))
    xn = apply(P["where"], apply(P["logical_or"], far, neg), 0.0, x)
    # erfc, not 1 - erf: the subtraction loses digits in float32 as x nears 2.5
    near = apply(P["mul"], apply(P["exp"], apply(P["mul"], xn, xn)), apply(P["erfc"], xn))
    return write_out(rename(apply(P["where"], far, cf, apply(P["where"], neg, left, near)),
                            "SpecialErfcxBackward0"), out)


_SQRT1_2 = math.sqrt(0.5)


def _ndtr_lower(x):
    """ndtr(x) = erfc(-x/sqrt(2))/2, the tail through erfcx (no 1 - erf underflow)."""
    z = apply(P["mul"], x, -_SQRT1_2)
    # the tail only for z > 1; other z would overflow erfcx there (0 * inf = NaN, which the
    # where's zero gradient does not clear: ndtr'(50) came out NaN)
    zt = apply(P["where"], apply(P["gt"], z, 1.0), z, 1.0)
    tail = apply(P["mul"], apply(P["exp"], apply(P["neg"], apply(P["mul"], zt, zt))),
                 apply(P["mul"], _erfcx(zt), 0.5))
    body = apply(P["mul"], apply(P["add"], apply(P["erf"], apply(P["neg"], z)), 1), 0.5)
    return apply(P["where"], apply(P["gt"], z, 1.0), tail, body)


def _ndtr(input, *, out=None):
    return write_out(_ndtr_lower(_float(input)), out)


def _log_ndtr(input, *, out=None):
    """log(ndtr(x)): log(erfcx(z)/2) - z^2 in the lower tail, log1p(-ndtr(-x)) above 0."""
    x = _float(input)
    z = apply(P["mul"], x, -_SQRT1_2)
    zl = apply(P["where"], apply(P["lt"], x, -1.0), z, 1.0)
    low = apply(P["sub"], apply(P["log"], apply(P["mul"], _erfcx(zl), 0.5)), apply(P["mul"], zl, zl))
    # the upper branch only for x >= -1: at x = -10 log1p(-ndtr(10)) = log1p(-1) is -inf and
    # its gradient would turn log_ndtr'(-10) into NaN through the where
    xh = apply(P["where"], apply(P["lt"], x, -1.0), 0.0, x)
    high = apply(P["log1p"], apply(P["neg"], _ndtr_lower(apply(P["neg"], xh))))
    return write_out(rename(apply(P["where"], apply(P["lt"], x, -1.0), low, high),
                            "SpecialLogNdtrBackward0"), out)


# Cephes ndtri (PyTorch's calc_ndtri): a rational function of p - 1/2 in the middle, of
# 1/sqrt(-2 log p) in the tails (two fits, split at z = 8). sqrt(2) erfinv(2p - 1) would lose
# the tail to the rounding of 2p - 1 (-inf at p = 1e-10 in float32, at 1e-300 in float64).
_NDTRI_P0 = (-5.99633501014107895267E1, 9.80010754185999661536E1, -5.66762857469070293439E1,
             1.39312609387279679503E1, -1.23916583867381258016E0)
_NDTRI_Q0 = (1.0, 1.95448858338141759834E0, 4.67627912898881538453E0, 8.63602421390890590575E1,
             -2.25462687854119370527E2, 2.00260212380060660359E2, -8.20372256168333339912E1,
             1.59056225126211695515E1, -1.18331621121330003142E0)
_NDTRI_P1 = (4.05544892305962419923E0, 3.15251094599893866154E1, 5.71628192246421288162E1,
             4.40805073893200834700E1, 1.46849561928858024014E1, 2.18663306850790267539E0,
             -1.40256079171354495875E-1, -3.50424626827848203418E-2, -8.57456785154685413611E-4)
_NDTRI_Q1 = (1.0, 1.57799883256466749731E1, 4.53907635128879210584E1, 4.13172038254672030440E1,
             1.50425385692907503408E1, 2.50464946208309415979E0, -1.42182922854787788574E-1,
             -3.80806407691578277194E-2, -9.33259480895457427372E-4)
_NDTRI_P2 = (3.23774891776946035970E0, 6.91522889068984211695E0, 3.93881025292474443415E0,
             1.33303460815807542389E0, 2.01485389549179081538E-1, 1.23716634817820021358E-2,
             3.01581553508235416007E-4, 2.65806974686737550832E-6, 6.23974539184983293730E-9)
_NDTRI_Q2 = (1.0, 6.02427039364742014255E0, 3.67983563856160859403E0, 1.37702099489081330271E0,
             2.16236993594496635890E-1, 1.34204006088543189037E-2, 3.28014464682127739104E-4,
             2.89247864745380683936E-6, 6.79019408009981274425E-9)
_EXP_M2 = 0.13533528323661269189        # exp(-2)


def _polevl(x, coeffs):
    r = apply(P["add"], apply(P["mul"], x, coeffs[0]), coeffs[1])
    for c in coeffs[2:]:
        r = apply(P["add"], apply(P["mul"], r, x), c)
    return r


def _ndtri(input, *, out=None):
    """Inverse of ndtr, Cephes' algorithm as PyTorch runs it (see _NDTRI_P0)."""
    y0 = _float(input)
    upper = apply(P["gt"], y0, 1 - _EXP_M2)
    y = apply(P["where"], upper, apply(P["sub"], 1, y0), y0)
    mid = apply(P["gt"], y, _EXP_M2)
    ym = apply(P["sub"], apply(P["where"], mid, y, 0.5), 0.5)
    y2 = apply(P["mul"], ym, ym)
    rat = apply(P["div"], apply(P["mul"], y2, _polevl(y2, _NDTRI_P0)), _polevl(y2, _NDTRI_Q0))
    xm = apply(P["mul"], apply(P["add"], ym, apply(P["mul"], ym, rat)), math.sqrt(2 * math.pi))
    # tails (the middle's entries get a harmless 0.5 here)
    t = apply(P["sqrt"], apply(P["mul"], apply(P["log"], apply(P["where"], mid, 0.5, y)), -2.0))
    x0 = apply(P["sub"], t, apply(P["div"], apply(P["log"], t), t))
    z = apply(P["div"], 1, t)
    near = apply(P["div"], apply(P["mul"], z, _polevl(z, _NDTRI_P1)), _polevl(z, _NDTRI_Q1))
    far = apply(P["div"], apply(P["mul"], z, _polevl(z, _NDTRI_P2)), _polevl(z, _NDTRI_Q2))
    xt = apply(P["sub"], x0, apply(P["where"], apply(P["lt"], t, 8.0), near, far))
    xt = apply(P["where"], upper, xt, apply(P["neg"], xt))
    r = apply(P["where"], mid, xm, xt)
    r = apply(P["where"], apply(P["eq"], y0, 0), -math.inf, r)
    r = apply(P["where"], apply(P["eq"], y0, 1), math.inf, r)
    bad = apply(P["logical_or"], apply(P["lt"], y0, 0), apply(P["gt"], y0, 1))
    return write_out(apply(P["where"], bad, math.nan, r), out)


def _xlog1py(input, other, *, out=None):
    """x * log1p(y), 0 where x == 0 (unless y is NaN); either may be a Python number."""
    a, b = as_tensor_arg(input), as_tensor_arg(other)
    if not isinstance(b, Tensor):
        b = float(b)
        lb = math.log1p(b) if b > -1 else -math.inf if b == -1 else math.nan
        zero = b != b
    else:
        lb, zero = apply(P["log1p"], b), apply(P["isnan"], b)
    prod = apply(P["mul"], a, lb)
    if not isinstance(a, Tensor):
        if a != 0:
            return write_out(prod, out)
        # 0 * log1p(y) is 0 even where log1p(y) is infinite; NaN only where y is NaN
        r = apply(P["cast"], apply(P["where"], zero, math.nan, 0.0), dtype=prod._dtype)
        return write_out(r, out)
    keep = apply(P["ne"], a, 0) if zero is False else \
        apply(P["logical_or"], apply(P["ne"], a, 0), zero)
    return write_out(_x_log_at_zero(a, lb, keep), out)


def sinc(input, *, out=None):
    """sin(pi x) / (pi x), 1 at 0 (with gradient 0 there, like torch)."""
    dt.refuse_chalf("sinc_cpu", input._dtype)
    x = _float(input)
    low = x._dtype if x._dtype in (dt.float16, dt.bfloat16) else None
    if low is not None:         # PyTorch computes half types in float32, rounded once
        x = cast(x, dt.float32)
    zero = apply(P["eq"], x, 0)
    px = apply(P["mul"], apply(P["where"], zero, 1.0, x), math.pi)
    r = rename(apply(P["where"], zero, 1.0, apply(P["div"], apply(P["sin"], px), px)),
               "SincBackward0")
    return write_out(r if low is None else cast(r, low), out)


# ---- reductions -----------------------------------------------------------------------------

_named = named       # (values, indices) return types, by name


def _dims(dim):
    if dim is None:
        return None
    if isinstance(dim, (list, tuple)):
        return tuple(dim) if len(dim) else None
    return (dim,)


def sum(input, dim=None, keepdim=False, *, dtype=None, out=None):
    try:
        input = _t(input)
        dims = norm_dims("sum", _dims(dim), input.ndim)
        if out is not None:
            # PyTorch sums in out's dtype (sum(float, out=bool) is an any); with dtype= they must agree
            if dtype is None:
                dtype = out._dtype
            elif dtype is not out._dtype:
                raise RuntimeError(f"Expected out tensor to have dtype {dtype.name}, but got "
                                   f"{out._dtype.name} instead (sum)")
        r = apply(P["sum"], input, dims=dims, keepdim=keepdim, dtype=dtype)
        if dim is None:
            rename(r, "SumBackward0")
        elif r._node is not None:
            saved_extra(r, dim=_dims(dim))
        return write_out(r, out)
    except NestedLayoutError:          # a nested operand: framework.nested
        from .nested import _ops as N
        return N.sum(input, dim, keepdim, dtype)


def nansum(input, dim=None, keepdim=False, *, dtype=None):
    if input._dtype.is_complex:
        raise RuntimeError("nansum on CPU does not support complex inputs")
    return rename(sum(where(isnan(input), 0, input), dim, keepdim, dtype=dtype), "NansumBackward0")


def prod(input, dim=None, keepdim=False, *, dtype=None, out=None):
    dims = norm_dims("prod", None if dim is None else (dim,), input.ndim)
    r = apply(P["prod"], input, dims=dims, keepdim=keepdim, dtype=dtype)
    if dim is None:
        rename(r, "ProdBackward0")
    return write_out(r, out)


def _masked_method(name, input, out, *args, **kw):
    """torch.<name>(mt) for a MaskedTensor: its method, as PyTorch's __torch_function__ routes
    these reductions and softmax (None for any other input)."""
    if type(input) is not _dispatch.MASKED_TYPE or _dispatch.MASKED_TYPE is None:
        return None
    if out is not None:
        raise TypeError(f"{name}(): 'out' is not supported for a MaskedTensor input")
    return getattr(input, name)(*args, **kw)


def mean(input, dim=None, keepdim=False, *, dtype=None, out=None):
    r = _masked_method("mean", input, out, dim, keepdim, dtype=dtype)
    if r is not None:
        return r
    if isinstance(input, Tensor) and input._dtype.category == 4 and out is None:    # quantized
        from .ao._qtensor import mean_q
        return mean_q(input, dim, keepdim, dtype)
    try:
        d = dtype or input._dtype
        if not (d.is_floating_point or d.is_complex):
            raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a "
                               f"floating point or complex dtype. Got: {dt.tname(input._dtype)}")
        x = input if dtype is None else cast(input, dtype)
        dims = norm_dims("mean", _dims(dim), x.ndim)
        n = 1
        for k in dims:
            n *= x._data.shape[k]
        low = x._dtype in (dt.float16, dt.bfloat16)     # float32 inside, rounded once (PyTorch's)
        xs = apply(P["cast"], x, dtype=dt.float32) if low else x
        r = apply(P["div"], apply(P["sum"], xs, dims=dims, keepdim=keepdim), n if n else float("nan"))
        if low:
            r = apply(P["cast"], r, dtype=x._dtype)
        rename(r, "MeanBackward0" if dim is None else "MeanBackward1")
        if dim is not None and r._node is not None:
            saved_extra(r, dim=_dims(dim), keepdim=keepdim)
        return write_out(r, out)
    except NestedLayoutError:          # a nested operand: framework.nested
        from .nested import _ops as N
        return N.mean(input, dim, keepdim, dtype)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    # torch checks the input's own dtype: an integer input is refused even with dtype=float
    if not input._dtype.is_floating_point or not (dtype or input._dtype).is_floating_point:
        raise RuntimeError(f"nanmean(): expected input to have floating point or complex dtype but "
                           f"got {dt.tname(input._dtype)}")
    if dtype is not None:
        input = cast(input, dtype)
    m = logical_not(isnan(input))
    return div(sum(where(m, input, 0), dim, keepdim), sum(m, dim, keepdim))


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None, out=None):
    r = _masked_method("var", input, out, dim, unbiased, keepdim, correction=correction)
    if r is not None:
        return r
    return _var("var", input, dim, unbiased, keepdim, correction, out)


def _var(name, input, dim, unbiased, keepdim, correction, out=None):
    """var(); `name` (std, std_mean, var_mean) is the op its degrees-of-freedom warning names."""
    if isinstance(dim, bool):            # legacy var(x, unbiased)
        dim, unbiased = None, dim
    if input._dtype is dt.complex32:     # PyTorch accumulates ComplexHalf in complex64
        r = cast(_var(name, cast(input, dt.complex64), dim, unbiased, keepdim, correction),
                 dt.float16)
        return write_out(r, out)
    c = _correction(unbiased, correction)
    if not (input._dtype.is_floating_point or input._dtype.is_complex):
        raise RuntimeError(f"std and var only support floating point and complex dtypes "
                           f"(got {input._dtype})")
    dims = norm_dims("var", _dims(dim), input.ndim)
    n = 1
    for k in dims:
        n *= input._data.shape[k]
    if n - c <= 0:
        from ._misc_api import user_stacklevel      # (the user's line, as PyTorch's C++ warning)
        warnings.warn(f"{name}(): degrees of freedom is <= 0. Correction should be strictly less "
                      f"than the reduction factor (input numel divided by output numel).",
                      UserWarning, stacklevel=user_stacklevel())

    def f(input):
        mu = apply(P["div"], apply(P["sum"], input, dims=dims, keepdim=True), n)
        d = apply(P["sub"], input, mu)
        # complex: the mean of |x - mu|^2 (a real result, as torch)
        sq = apply(P["mul"], d, d) if not d._dtype.is_complex else \
            apply(P["real"], apply(P["mul"], d, apply(P["conj"], d)))
        ss = apply(P["sum"], sq, dims=dims, keepdim=keepdim)
        return apply(P["div"], ss, builtins.max(n - c, 0))  # n <= correction: nan, like torch
    r = half_opmath(f, input)
    rename(r, "VarBackward0")
    return write_out(r, out)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None, out=None):
    r = _masked_method("std", input, out, dim, unbiased, keepdim, correction=correction)
    if r is not None:
        return r
    return _std("std", input, dim, unbiased, keepdim, correction, out)


def _std(name, input, dim, unbiased, keepdim, correction, out=None):
    r = half_opmath(lambda x: _sqrt_zero_grad(_var(name, x, dim, unbiased, keepdim, correction)),
                    input)      # (float16/bfloat16: one rounding, after the sqrt)
    rename(r, "StdBackward0")
    return write_out(r, out)


def _sqrt_zero_grad(v):
    """sqrt(v) whose gradient is 0 (not inf * 0 = NaN) where v == 0, as torch's std and norm
    backward mask it."""
    if _no_grad_eager(v):
        return apply(P["sqrt"], v)
    z = apply(P["eq"], v, 0)
    return apply(P["where"], z, v, apply(P["sqrt"], apply(P["where"], z, 1.0, v)))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, bool):            # legacy var_mean(x, unbiased)
        dim, unbiased = None, dim
    # (one node in torch, for both outputs)
    return (rename(_var("var_mean", input, dim, unbiased, keepdim, correction), "VarMeanBackward0"),
            rename(mean(input, dim, keepdim), "VarMeanBackward0"))


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, bool):            # legacy std_mean(x, unbiased)
        dim, unbiased = None, dim
    return (rename(_std("std_mean", input, dim, unbiased, keepdim, correction), "StdMeanBackward0"),
            rename(mean(input, dim, keepdim), "StdMeanBackward0"))


def _no_dim_empty(name, input):
    if input._data.size == 0:
        raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
                           f"Specify the reduction dim with the 'dim' argument (shape "
                           f"{list(input.shape)}).")


def amax(input, dim=(), keepdim=False, *, out=None):
    r = _masked_method("amax", input, out, None if dim in ((), []) else dim, keepdim)
    if r is not None:
        return r
    _no_complex(input, NotImplementedError, "\"max_values_cpu\" not implemented for '{}'")
    dt.refuse_barebones("max_values_cpu", input._dtype)
    if dim == () or dim == []:
        _no_dim_empty("amax", input)
    dims = norm_dims("amax", _dims(dim) if dim != () else None, input.ndim)
    return write_out(apply(P["amax"], input, dims=dims, keepdim=keepdim), out)


def amin(input, dim=(), keepdim=False, *, out=None):
    r = _masked_method("amin", input, out, None if dim in ((), []) else dim, keepdim)
    if r is not None:
        return r
    _no_complex(input, NotImplementedError, "\"min_values_cpu\" not implemented for '{}'")
    dt.refuse_barebones("min_values_cpu", input._dtype)
    if dim == () or dim == []:
        _no_dim_empty("amin", input)
    dims = norm_dims("amin", _dims(dim) if dim != () else None, input.ndim)
    return write_out(apply(P["amin"], input, dims=dims, keepdim=keepdim), out)


def _select_along(input, idx, dim, keepdim):
    """values at indices idx (keepdim layout) along dim, differentiable through gather."""
    from .ops_shape import squeeze
    v = apply(P["gather"], input, idx, dim=dim)
    if not keepdim:
        v = squeeze(v, dim)
        idx = squeeze(idx, dim)
    return v, idx


def max(input, dim=None, keepdim=False, *, out=None):
    try:
        if isinstance(dim, Tensor):
            return maximum(input, dim)
        if input._dtype.category == 4 and out is None:     # quantized (framework/ao/_qtensor.py)
            from .ao._qtensor import max_min
            return max_min(input, "max", lambda t: max(t, dim, keepdim), dim is None)
        if dim is None:
            _no_complex(input, NotImplementedError, "\"max_all\" not implemented for '{}'")
            dt.refuse_barebones("max_all", input._dtype)
            _no_dim_empty("max", input)
            r = rename(apply(P["amax"], input, dims=tuple(range(input.ndim)), keepdim=False,
                             nan_ties=True), "MaxBackward1")
            return write_out(r, out)
        if input.ndim == 0:
            norm_dim("max", dim, 0)      # a 0-d input still takes only dim 0 / -1
            return _named("max")(input, full_on(input, (), 0, dt.int64))
        _no_complex(input, RuntimeError, "max(): does not support complex input")
        dt.refuse_barebones("max_cpu", input._dtype)
        d = norm_dim("max", dim, input.ndim)
        # the value is the element at the index (not a reduction's: -0.0 and 0.0 tie there)
        idx = _nan_aware_arg(input, d, True)
        v, i = _select_along(input, idx, d, keepdim)
        rename(v, "MaxBackward0")
        return write_out(_named("max")(v, i), out)
    except NestedLayoutError:          # a nested operand: framework.nested
        from .nested import _ops as N
        return N.select_reduce("max", input, dim, keepdim, out)


def min(input, dim=None, keepdim=False, *, out=None):
    try:
        if isinstance(dim, Tensor):
            return minimum(input, dim)
        if input._dtype.category == 4 and out is None:     # quantized (framework/ao/_qtensor.py)
            from .ao._qtensor import max_min
            return max_min(input, "min", lambda t: min(t, dim, keepdim), dim is None)
        if dim is None:
            _no_complex(input, NotImplementedError, "\"min_all\" not implemented for '{}'")
            dt.refuse_barebones("min_all", input._dtype)
            _no_dim_empty("min", input)
            return write_out(rename(apply(P["amin"], input, dims=tuple(range(input.ndim)),
                                          keepdim=False, nan_ties=True), "MinBackward1"), out)
        if input.ndim == 0:
            norm_dim("min", dim, 0)      # a 0-d input still takes only dim 0 / -1
            return _named("min")(input, full_on(input, (), 0, dt.int64))
        _no_complex(input, RuntimeError, "min(): does not support complex input")
        dt.refuse_barebones("min_cpu", input._dtype)
        d = norm_dim("min", dim, input.ndim)
        # the value is the element at the index (not a reduction's: -0.0 and 0.0 tie there)
        idx = _nan_aware_arg(input, d, False)
        v, i = _select_along(input, idx, d, keepdim)
        rename(v, "MinBackward0")
        return write_out(_named("min")(v, i), out)
    except NestedLayoutError:          # a nested operand: framework.nested
        from .nested import _ops as N
        return N.select_reduce("min", input, dim, keepdim, out)


def _nan_aware_arg(input, d, is_max, keepdim=True):
    if input._dtype is dt.bool_:      # max/min over bools is fine; the argmax primitive is not
        input = apply(P["cast"], input, dtype=dt.uint8)
    return apply(P["argmax" if is_max else "argmin"], input, dim=d, keepdim=keepdim)


def _arg_of_scalar(name, input, dim):
    """argmax/argmin of a 0-d tensor: 0 (dim, when given, must be 0 or -1)."""
    if dim is not None:
        norm_dim(name, dim, 1)
    return _dispatch.wrap_like(np.zeros((), np.int64), dt.int64, input)


def argmax(input, dim=None, keepdim=False, *, out=None):
    try:
        _no_complex(input, RuntimeError, "argmax(): does not support complex input")
        if input._dtype is dt.bool_:      # torch has no argmax kernel for bool (max/min have one)
            raise RuntimeError(f"argmax(): does not support bool input (shape {list(input.shape)})")
        dt.refuse_barebones("argmax_cpu", input._dtype)
        if input.ndim == 0:
            return write_out(_arg_of_scalar("argmax", input, dim), out)
        return write_out(apply(P["argmax"], input, dim=dim, keepdim=keepdim), out)
    except NestedLayoutError:          # a nested operand: framework.nested
        from .nested import _ops as N
        return N.select_reduce("argmax", input, dim, keepdim, out)


def argmin(input, dim=None, keepdim=False, *, out=None):
    try:
        _no_complex(input, RuntimeError, "argmin(): does not support complex input")
        if input._dtype is dt.bool_:      # torch has no argmin kernel for bool (max/min have one)
            raise RuntimeError(f"argmin(): does not support bool input (shape {list(input.shape)})")
        dt.refuse_barebones("argmin_cpu", input._dtype)
        if input.ndim == 0:
            return write_out(_arg_of_scalar("argmin", input, dim), out)
        return write_out(apply(P["argmin"], input, dim=dim, keepdim=keepdim), out)
    except NestedLayoutError:          # a nested operand: framework.nested
        from .nested import _ops as N
        return N.select_reduce("argmin", input, dim, keepdim, out)


_Aminmax = named("aminmax", ("min", "max"))


def aminmax(input, *, dim=None, keepdim=False):
    if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool)):
        raise TypeError(f"aminmax(): argument 'dim' must be int, not {type(dim).__name__}")
    dt.refuse_barebones("aminmax_cpu", input._dtype)
    return _Aminmax(rename(amin(input, dim if dim is not None else (), keepdim), "AminmaxBackward0"),
                    rename(amax(input, dim if dim is not None else (), keepdim), "AminmaxBackward0"))


def all(input, dim=None, keepdim=False):
    input = _t(input)
    if isinstance(dim, (list, tuple)) and not len(dim):   # PyTorch: dim=[] reduces nothing
        r = apply(P["ne"], input, 0)
        return r if input._dtype is not dt.uint8 else apply(P["cast"], r, dtype=dt.uint8)
    return apply(P["all"], input, dims=norm_dims("all", _dims(dim), input.ndim), keepdim=keepdim)


def _is_all_true(input):
    """torch._is_all_true: a 0-dim bool, True if every element of input is. Under vmap it
    looks at every sample at once (the real tensor behind the batched one), so the
    distributions' argument validation (`if not torch._is_all_true(valid)`) runs inside vmap
    as in PyTorch instead of refusing bool() of a batched tensor."""
    from .func._batched import BatchedArray
    while type(input._data) is BatchedArray:
        input = input._data.value
    if input._dtype is not dt.bool_:
        raise RuntimeError(f"_is_all_true: expected a bool tensor, got {dt.tname(input._dtype)}")
    return all(input)


def any(input, dim=None, keepdim=False):
    input = _t(input)
    if isinstance(dim, (list, tuple)) and not len(dim):
        r = apply(P["ne"], input, 0)
        return r if input._dtype is not dt.uint8 else apply(P["cast"], r, dtype=dt.uint8)
    return apply(P["any"], input, dims=norm_dims("any", _dims(dim), input.ndim), keepdim=keepdim)


def count_nonzero(input, dim=None):
    if dim is None:
        dt.refuse_barebones("nonzero_count_cpu", input._dtype)
    return sum(ne(input, 0), dim)


def cumsum(input, dim, *, dtype=None, out=None):
    d = norm_dim("cumsum", dim, input.ndim)
    return write_out(apply(P["cumsum"], input, dim=d, dtype=dtype), out)


def cumprod(input, dim, *, dtype=None, out=None):
    d = norm_dim("cumprod", dim, input.ndim)
    return write_out(apply(P["cumprod"], input, dim=d, dtype=dtype), out)


def logcumsumexp(input, dim, *, out=None):
    if input._dtype.category < 2:
        raise NotImplementedError(f"\"logcumsumexp_out_cpu\" not implemented for "
                                  f"'{dt.tname(input._dtype)}'")
    d = norm_dim("logcumsumexp", dim, builtins.max(input.ndim, 1))
    return write_out(apply(P["logcumsumexp"], input, dim=d if input.ndim else 0), out)


def logsumexp(input, dim, keepdim=False, *, out=None):
    if out is not None:
        return write_out(logsumexp(input, dim, keepdim), out)
    if input._dtype.category < 2:      # integers and bools are summed as the default float
        input = cast(input, dt.get_default_dtype())
    dims = norm_dims("logsumexp", _dims(dim), input.ndim)
    if builtins.any(input._data.shape[k] == 0 for k in dims):   # empty sum: log(0) = -inf
        return apply(P["log"], apply(P["sum"], apply(P["exp"], input), dims=dims, keepdim=keepdim))
    m = apply(P["amax"], input.detach(), dims=dims, keepdim=True)
    m = apply(P["where"], apply(P["isinf"], m), 0.0, m)
    s = apply(P["sum"], apply(P["exp"], apply(P["sub"], input, m)), dims=dims, keepdim=keepdim)
    if not keepdim:
        from .ops_shape import reshape
        m = reshape(m, s.shape)
    return rename(apply(P["add"], apply(P["log"], s), m), "LogsumexpBackward0")


def norm(input, p="fro", dim=None, keepdim=False, dtype=None, out=None):
    if dtype is not None and dtype is not input._dtype and \
            dt.promote_types(input._dtype, dtype) is not dtype:
        raise RuntimeError(f"linalg.vector_norm: the dtype of the input ({dt.tname(input._dtype)}) "
                           f"should be convertible without narrowing to the specified dtype "
                           f"({dt.tname(dtype)})")
    x = input if dtype is None else cast(input, dtype)
    if not (x._dtype.is_floating_point or x._dtype.is_complex):
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as "
                           f"input. Got {dt.tname(x._dtype)}")
    if not (isinstance(p, (int, float, str)) or p is None) or isinstance(p, bool):
        raise TypeError(f"linalg_vector_norm(): argument 'ord' (position 2) must be Number, not "
                        f"{type(p).__name__}")
    if isinstance(p, str) and p not in ("fro", "nuc"):
        raise RuntimeError(f"norm: p must be a number, 'fro' or 'nuc', got {p!r}")
    if p == "nuc" or (p == "fro" and isinstance(dim, (list, tuple)) and len(dim) > 2):
        # torch.norm: 'nuc' (and 'fro' over more than 2 dims) is linalg.matrix_norm over dim
        # (all dims when None): anything but a dim pair raises there
        if x._dtype in (dt.float16, dt.bfloat16):
            raise RuntimeError(f"linalg.matrix_norm: Low precision dtypes not supported. Got "
                               f"{dt.tname(x._dtype)}")
        from .ops_linalg import linalg
        d = list(range(x.ndim)) if dim is None else [dim] if isinstance(dim, int) else list(dim)
        return linalg.matrix_norm(x, p, d, keepdim, out=out)
    if p == "fro" or p is None:
        p = 2
    dims = norm_dims("norm", _dims(dim), x.ndim)
    low = x._dtype in (dt.float16, dt.bfloat16, dt.complex32)
    if low and p not in (float("inf"), float("-inf")):     # float32 inside, rounded once
        r = norm(apply(P["cast"], x, dtype=dt.promote_types(x._dtype, dt.float32)), p, dim,
                 keepdim)
        r = apply(P["cast"], r, dtype=x._dtype.to_real())
        rename(r, "LinalgVectorNormBackward0")      # PyTorch 2.x: norm is linalg.vector_norm
        return write_out(r, out)
    if (p < 0 or p == float("inf")) and builtins.any(x._data.shape[k] == 0 for k in dims):
        raise RuntimeError(f"linalg.vector_norm cannot compute the {p:g} norm on an empty tensor "
                           f"because the operation does not have an identity")
    a = apply(P["abs"], x)
    if p == float("inf"):
        r = apply(P["amax"], a, dims=dims, keepdim=keepdim)
    elif p == float("-inf"):
        r = apply(P["amin"], a, dims=dims, keepdim=keepdim)
    elif p == 0:
        # the count of nonzeros; x * 0 where x == 0 keeps it differentiable (gradient 0, as
        # torch's) without 0 * inf = NaN
        nz = apply(P["where"], apply(P["ne"], x, 0), 1.0, apply(P["mul"], a, 0.0))
        r = apply(P["sum"], nz, dims=dims, keepdim=keepdim)
    elif p == 1:
        r = apply(P["sum"], a, dims=dims, keepdim=keepdim)
    else:
        # sum(|x|^p)^(1/p); a zero norm gets gradient 0 (PyTorch masks it), not 0 * inf = NaN
        if p == 2 and not x._dtype.is_complex:
            s = apply(P["sum"], apply(P["mul"], x, x), dims=dims, keepdim=keepdim)
        elif p == 2:        # complex: |x|^2, a real sum
            s = apply(P["sum"], apply(P["mul"], a, a), dims=dims, keepdim=keepdim)
        elif p < 1 and not _no_grad_eager(a):
            # |x|^p at x == 0 is 0 (p > 0) or inf (p < 0) with gradient 0 there, as torch
            # masks it (the plain power's derivative is inf * 0 = NaN)
            z = apply(P["eq"], a, 0)
            ap = apply(P["pow"], apply(P["where"], z, 1.0, a), p)
            s = apply(P["sum"], apply(P["where"], z, 0.0 if p > 0 else float("inf"), ap),
                      dims=dims, keepdim=keepdim)
        else:
            s = apply(P["sum"], apply(P["pow"], a, p), dims=dims, keepdim=keepdim)
        zero = apply(P["eq"], s, 0)                   # (NaN and inf norms stay as they are)
        safe = apply(P["where"], zero, 1.0, s)
        root = apply(P["sqrt"], safe) if p == 2 else apply(P["pow"], safe, 1.0 / p)
        r = apply(P["where"], zero, 0.0, root) if p > 0 else apply(P["pow"], s, 1.0 / p)
    rename(r, "LinalgVectorNormBackward0")
    return write_out(r, out)


def dist(input, other, p=2):
    return rename(norm(sub(input, other), p), "DistBackward0")


def _softmax_kernel_check(name, x, d):
    """PyTorch's softmax kernels are floating point only: integer and bool inputs (without a
    dtype= to cast them) raise, naming the kernel (lastdim or not)."""
    if x._dtype.category != 2:
        k = f"{name}_lastdim_kernel_impl" if d == x.ndim - 1 or x.ndim == 0 else f"{name}_kernel_impl"
        raise NotImplementedError(f"\"{k}\" not implemented for '{dt.tname(x._dtype)}' ({name} "
                                  f"over dim {d} of a tensor of shape {list(x.shape)})")


def _in_float32(f, x, d, name):
    """f(x, d) of a float16/bfloat16 x computed in float32 and rounded once, as PyTorch's
    softmax kernels accumulate (rounding every step differs in the 3rd digit in bfloat16)."""
    r = cast(f(cast(x, dt.float32), d), x._dtype)
    return rename(r, name)


def _log_softmax_lastdim_half(x, dh):
    """PyTorch's last-dim log_softmax kernel of a half type h (x: float32) keeps log(sum(exp))
    in h: z - h(log(h(s))) in float32 (exact: the rounded value differs from log(s) by less
    than a factor 2), differentiated as z - log(s)."""
    d, h = dh
    z = apply(P["sub"], x, apply(P["amax"], x.detach(), dims=(d,), keepdim=True))
    s = apply(P["sum"], apply(P["exp"], z), dims=(d,), keepdim=True)
    ls = apply(P["log"], s)
    lr = cast(apply(P["log"], cast(cast(s.detach(), h), dt.float32)), h)
    diff = apply(P["sub"], cast(lr, dt.float32), ls.detach())      # (detached: no gradient)
    r = apply(P["sub"], z, apply(P["add"], ls, diff))
    return _mf.lay_out(r, _mf.contiguous_format)


def softmax(input, dim, dtype=None):
    r = _masked_method("softmax", input, None, dim, dtype)
    if r is not None:
        return r
    try:
        x = input if dtype is None else cast(input, dtype)
        d = norm_dim("softmax", dim, x.ndim)
        _softmax_kernel_check("softmax", x, d)
        if x._dtype is dt.float16 or x._dtype is dt.bfloat16:
            return _in_float32(softmax, x, d, "SoftmaxBackward0")
        if x.ndim == 0:                     # a scalar is a one-element softmax dim (PyTorch: 1.)
            from .ops_shape import reshape
            return reshape(softmax(reshape(x, (1,)), 0), ())
        m = apply(P["amax"], x.detach(), dims=(d,), keepdim=True)
        e = apply(P["exp"], apply(P["sub"], x, m))
        r = apply(P["div"], e, apply(P["sum"], e, dims=(d,), keepdim=True))
        # (PyTorch's softmax kernels write a contiguous result whatever the input's layout)
        r = rename(_mf.lay_out(r, _mf.contiguous_format), "SoftmaxBackward0")
        return saved_extra(r, dim=dim, result=r._data)
    except NestedLayoutError:          # a nested operand: framework.nested
        from .nested import _ops as N
        return N.softmax(input, dim, dtype)


def log_softmax(input, dim, dtype=None):
    try:
        x = input if dtype is None else cast(input, dtype)
        d = norm_dim("log_softmax", dim, x.ndim)
        _softmax_kernel_check("log_softmax", x, d)
        if x._dtype is dt.float16 or x._dtype is dt.bfloat16:
            if d == x.ndim - 1 and x._data.shape[d]:
                return _in_float32(_log_softmax_lastdim_half, x, (d, x._dtype),
                                   "LogSoftmaxBackward0")
            return _in_float32(log_softmax, x, d, "LogSoftmaxBackward0")
        if x.ndim == 0:                     # a scalar is a one-element softmax dim (PyTorch: 0.)
            from .ops_shape import reshape
            return reshape(log_softmax(reshape(x, (1,)), 0), ())
        if x._data.shape[d] == 0:
            return rename(apply(P["sub"], x, logsumexp(x, d, keepdim=True)), "LogSoftmaxBackward0")
        # torch's (x - max) - log(sum(exp(x - max))) with the max not zeroed where infinite: a row
        # holding +inf (or only -inf) is all NaN, as in torch
        z = apply(P["sub"], x, apply(P["amax"], x.detach(), dims=(d,), keepdim=True))
        s = apply(P["sum"], apply(P["exp"], z), dims=(d,), keepdim=True)
        r = apply(P["sub"], z, apply(P["log"], s))
        r = rename(_mf.lay_out(r, _mf.contiguous_format), "LogSoftmaxBackward0")
        return saved_extra(r, dim=dim, result=r._data)
    except NestedLayoutError:          # a nested operand: framework.nested
        from .nested import _ops as N
        return N.softmax(input, dim, dtype, log=True)
