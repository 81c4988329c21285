"""Eager dispatch: every framework op goes through `apply(prim, *args, **attrs)`.

    meta rule (errors here) -> run the NumPy lowering now -> wrap -> record an autograd Node
                                                                    when a grad is needed
Tracing (compile) is a mode of this same function: when a tracer is active, ops record into
its graph instead of running. The path is kept short: every eager op pays for it.
"""
import itertools
from weakref import ref as _weakref

import numpy as np

from compiler.ir.registry import REGISTRY, AVal
from runtime import dtypes as dt
from runtime.device import cpu
from . import _memory_format as _mf
from .nested._storage import NestedLayoutError

_ndarray = np.ndarray
_C32 = dt.complex32
_BOOL = dt.bool_


class _State:
    grad_enabled = True
    inference = False
    tracer = None          # set by compile() while tracing
    anomaly = False        # autograd.detect_anomaly: nodes keep their forward traceback
    anomaly_check_nan = True
    saved_hooks = None     # (pack, unpack) of the innermost autograd.graph.saved_tensors_hooks


STATE = _State()
_seq = itertools.count()
Tensor = None              # set by framework.tensor (import cycle breaker)


class Node:
    """One recorded primitive application in the eager autograd graph (a tensor's grad_fn).

    saved     the primitive's inputs as its VJP sees them: tensors it reads (`Prim.saves`),
              AVal (shape/dtype only) for the others, Python scalars as they are
    versions  version counter of each saved tensor when recorded (None: not checked)
    edges     per input: (producer node, output index), (None, leaf tensor), or None
    out       saved output arrays (only when Prim.saves_output), with `oref` weak references
              to the output tensors, so a node and its outputs form no reference cycle
    link      (producer node | None, output index | leaf, unused) of the tensor PyTorch's
              backward op for this node reads (rename(link=)): under create_graph its
              gradient stays connected to it (engine._link); False: it needs no gradient
    outs      AVal of each output (shapes and dtypes the gradients must have)
    Each PyTorch-style name gets its own subclass, so type(t.grad_fn).__name__ is the name.
    """
    __slots__ = ("prim", "attrs", "saved", "versions", "edges", "out", "oref", "outs", "seq",
                 "_name", "freed", "hooks", "retain", "pre_hooks", "post_hooks", "ctx", "fn",
                 "_meta", "link", "_sv", "__weakref__")

    def __init__(self, prim, attrs, saved, versions, edges, outs, name):
        self.prim, self.attrs, self.saved, self.versions = prim, attrs, saved, versions
        self.edges, self.outs, self._name = edges, outs, name
        self.seq = next(_seq)
        self.out = self.oref = None
        self.freed = False
        self.hooks = None       # {output index: [hook]}: tensor hooks of non-leaf outputs
        self.retain = None      # {output index: weakref to tensor}: retain_grad()
        self.pre_hooks = self.post_hooks = None
        self.ctx = self.fn = None     # custom autograd.Function: its ctx and class
        self._meta = self.link = None

    @property
    def metadata(self):
        # a dict made on first use, as PyTorch's (nodes are many; most never need one)
        if self._meta is None:
            self._meta = {}
        return self._meta

    @metadata.setter
    def metadata(self, value):
        self._meta = value

    def __repr__(self):
        return f"<{self._name} object at {hex(id(self))}>"

    def __getattr__(self, name):
        # only for names no slot has: torch's `_saved_*` / `_raw_saved_*` (autograd._saved);
        # `_sv` (unset unless a composite op kept torch's saved values in it) reads None
        if name == "_sv":
            return None
        if name.startswith(("_saved_", "_raw_saved_")):
            from .autograd._saved import get
            return get(self, name)
        raise AttributeError(f"'{self._name}' object has no attribute '{name}'")

    def __dir__(self):
        from .autograd._saved import names
        return sorted(set(super().__dir__()) | set(names(self)))

    def name(self):
        # (PyTorch's hand-written node is named by its C++ class)
        return "torch::autograd::CopySlices" if self._name == "CopySlices" else self._name

    @property
    def next_functions(self):
        from .autograd.graph import next_functions
        return next_functions(self)

    @property
    def requires_grad(self):
        return True

    def register_hook(self, fn):
        """fn(grad_inputs, grad_outputs) after this node ran; may return new grad_inputs."""
        if self.post_hooks is None:
            self.post_hooks = []
        self.post_hooks.append(fn)
        return _Handle(self.post_hooks, fn)

    def register_prehook(self, fn):
        """fn(grad_outputs) before this node runs; may return new grad_outputs."""
        if self.pre_hooks is None:
            self.pre_hooks = []
        self.pre_hooks.append(fn)
        return _Handle(self.pre_hooks, fn)


_NODE_CLASSES = {}


def node_class(name, module=None):
    """The Node subclass named `name` (one per PyTorch grad_fn name, made on first use)."""
    c = _NODE_CLASSES.get((name, module))
    if c is None:
        c = type(name, (Node,), {"__slots__": ()})
        if module is not None:    # custom Functions print as torch.autograd.function.XBackward
            c.__module__ = module
            c.__repr__ = lambda self: f"<{module}.{self._name} object at {hex(id(self))}>"
        _NODE_CLASSES[(name, module)] = c
    return c


class _Handle:
    """What register_hook returns: .remove() takes the hook out again."""
    __slots__ = ("lst", "fn")

    def __init__(self, lst, fn):
        self.lst, self.fn = lst, fn

    def remove(self):
        for i, f in enumerate(self.lst):
            if f is self.fn:
                del self.lst[i]
                return

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _needs_grad(args):
    for a in args:
        if isinstance(a, Tensor) and (a._node is not None or a._rg):
            return True
    return False


# True once any tensor has lived off the cpu: until then apply() skips the device check, so
# cpu-only programs pay one global lookup for device support
NONCPU = False

# framework.nested._ops once framework is imported: apply hands it the primitives that met a
# nested tensor (on its error path only)
NESTED = None
_devops = None      # framework._device_ops once a device is used (it imports this module)


def _device_ops_module():
    global _devops
    from . import _device_ops
    _devops = _device_ops
    return _devops


def wrap(arr, dtype, device=None):
    if VMAP is not None and type(arr) is not np.ndarray:
        from .func._batched import wrap_special    # a batched value (detach) or vmap draw
        r = wrap_special(arr, dtype)
        if r is not None:
            return r
    t = Tensor.__new__(Tensor)
    t._data = arr
    t._dtype = dtype
    if type(arr) is not np.ndarray:
        # interpret/cuda buffers have their own array types: the device follows the buffer
        device = (_devops or _device_ops_module()).array_device(arr)
    if device is not None and device is not cpu:
        t._device = device
    if STATE.inference:
        t._inf = True
    return t


def wrap_like(arr, dtype, like):
    """A host array the framework computed (an index map, an averaging matrix, a mask) as a
    tensor on `like`'s device, so it meets `like` in an op."""
    from .creation import _finish          # (creation's host-to-device placement)
    return _finish(np.asarray(arr, order="C"), dtype, like._device, False)


def values(t):
    """t's array, for framework code that needs a tensor's values in Python/NumPy (bounds
    checks, value-dependent constants). While compile() traces, reading a symbolic tensor's
    values breaks the graph (its SymArray materialises when used), and reading a concrete one
    is recorded so that the trace, specialised to those values, is never replayed."""
    tr = STATE.tracer
    if tr is not None:
        tr.read_value(t)
    if t._device.type == "meta":
        raise NotImplementedError(f"a meta tensor has no values to read (shape "
                                  f"{list(t._data.shape)}); this op needs them")
    return t._data


# memoised meta results of the prims whose rule is pure (Prim.cache_meta), keyed by everything
# such a rule may read: operand shapes and dtypes, Python scalars' types and values, attrs
# and the default dtype. A rule that raises stores nothing, so the error repeats each call.
_META = {}
_SCALAR_TYPES = frozenset((bool, int, float, complex))
_ATTR_TYPES = frozenset((type(None), bool, int, float, complex, str, dt.DType))
Parameter = None           # set by framework.nn.parameter: keyed like Tensor (same metadata)


def _meta(p, args, attrs):
    key = None
    if args and not attrs:      # (unary and binary ops: the same key as below, built faster)
        a = args[0]
        ta = type(a)
        if ta is Tensor or ta is Parameter:
            if len(args) == 1:
                key = (p, dt.default.value, a._data.shape, a._dtype)
            elif len(args) == 2:
                b = args[1]
                tb = type(b)
                if tb is Tensor or tb is Parameter:
                    key = (p, dt.default.value, a._data.shape, a._dtype, b._data.shape, b._dtype)
                elif tb in _SCALAR_TYPES:
                    key = (p, dt.default.value, a._data.shape, a._dtype, tb, b)
    if key is None:
        key = [p, dt.default.value]
        for a in args:
            t = type(a)
            if t is Tensor or t is Parameter:
                key.append(a._data.shape)
                key.append(a._dtype)
            elif t in _SCALAR_TYPES:     # (1, 1.0 and True hash alike: the type tells them apart)
                key.append(t)
                key.append(a)
            else:                        # subclasses, NumPy scalars, lists: the rule itself
                if t is MASKED_TYPE:
                    raise MaskedOperand
                return p.meta(*args, **attrs)
        for k, v in attrs.items():
            t = type(v)
            if t is tuple:
                for e in v:         # (dims, shapes, index_select's check names)
                    if type(e) is not int and type(e) is not str:
                        return p.meta(*args, **attrs)
            elif t not in _ATTR_TYPES:
                return p.meta(*args, **attrs)
            key.append(k)
            key.append(t)
            key.append(v)
        key = tuple(key)
    m = _META.get(key)
    if m is None:
        m = p.meta(*args, **attrs)
        if len(_META) >= 8192:       # (a loop over ever new scalars must not grow it forever)
            _META.clear()
        _META[key] = m
    return m


PROFILE = None     # framework.profiler sets a hook (p, args, attrs) while a profile records
AUTOCAST = None    # framework.amp sets a hook (p, args) -> args while a thread has autocast on
VMAP = None        # framework.func sets a hook (p, args, attrs) while a vmap runs (batching rules)
_VMAP_PASS = object()    # what the hook returns for arguments no running vmap batches
FWAD = None        # autograd.forward_ad sets a hook (p, args, attrs) while a dual level is active
VIEW_REPLAY = False   # autograd._force_original_view_tracking: rebase_view keeps the view's name
BEFORE_WRITE = None   # autograd.graph.allow_mutation_on_saved_tensors: hook (tensor) run by
#                       ops_math.check_writable before an in-place write
MASKED_TYPE = None    # framework.masked sets MaskedTensor and its rules (MASKED_APPLY); an
MASKED_APPLY = None   # operand of that type is found on _meta's slow path, never on the dense one


class MaskedOperand(TypeError):
    """Raised by _meta for a MaskedTensor operand (apply then runs MASKED_APPLY instead), and by
    code that reads a MaskedTensor's array directly (such code has no masked meaning)."""


QUANT = None       # framework.ao sets a hook (p, args, attrs) once a quantized tensor exists
_Q_PASS = object()    # what it returns when no argument is quantized


def _chalf_operands(args):
    """PyTorch casts every operand of an op whose result is complex32 to complex32 first
    (x * 1000.3 multiplies by 1000.5): numbers and host tensors without history are rounded."""
    out = []
    for a in args:
        if type(a) in (int, float, complex):
            a = complex(dt.chalf_round(np.array(a, np.complex64)))
        elif (isinstance(a, Tensor) and a._dtype is not _C32 and a._dtype is not dt.bool_
              and a._node is None and not a._rg and type(a._data) is _ndarray):
            a = wrap(dt.chalf_round(a._data.astype(np.complex64)), _C32)
        out.append(a)
    return tuple(out)


def _f8_operands(args):
    """PyTorch casts the numbers an op meets a float8 tensor with to its float8 first
    (x == 0.1 compares with 0.1015625); float8 promotes with no other tensor."""
    d = args[0]._dtype
    if d is _C32:
        return args
    return tuple(float(d.round(a)) if type(a) in (int, float) else a for a in args)


def _compares_chalf(args):
    """A comparison of a complex32 tensor whose operands' common dtype is complex32
    (x == 3.3333 compares with float16's 3.334)."""
    from compiler.ir.registry import promote
    return promote(*args) is _C32


def apply(p, *args, **attrs):
    """Run primitive `p` on tensors/scalars `args` eagerly (or record it when tracing)."""
    if VMAP is not None:
        r = VMAP(p, args, attrs)
        if r is not _VMAP_PASS:
            return r
    if AUTOCAST is not None:
        args = AUTOCAST(p, args)
    if FWAD is not None:     # forward AD: outputs with tangents when an argument is dual
        r = FWAD(p, args, attrs)
        if r is not None:
            return r
    if QUANT is not None:    # quantized tensors: the few ops PyTorch runs on them, or its error
        r = QUANT(p, args, attrs)
        if r is not _Q_PASS:
            return r
    if PROFILE is not None:
        return PROFILE(p, args, attrs)
    if STATE.tracer is not None:
        return STATE.tracer.record(p, args, attrs, p.meta(*args, **attrs))
    try:
        meta = _meta(p, args, attrs) if p.cache_meta else p.meta(*args, **attrs)
    except MaskedOperand:      # (a try costs nothing until it catches)
        return MASKED_APPLY(p, args, attrs)
    except Exception:
        if NESTED is not None and NESTED.owns(args):     # a nested operand: framework.nested
            return NESTED.apply_prim(p, args, attrs)
        raise
    if p.nout == 1 and (meta.dtype is _C32 or meta.dtype is _BOOL and args and getattr(
            args[0], "_dtype", None) is _C32 and _compares_chalf(args)) and p.kind == "pointwise":
        args = _chalf_operands(args)
    elif p.kind == "pointwise" and args and getattr(args[0], "_dtype", _BOOL).round is not None:
        args = _f8_operands(args)       # (float8; complex32 returned above)
    if NONCPU:
        _device_ops = _devops or _device_ops_module()
        dev = _device_ops.common_device(args)
        if dev is not cpu:
            out = _device_ops.run(p, meta, args, attrs, dev)
            if not STATE.grad_enabled and p.kind == "view" and out._base is not None:
                _nograd_view(out, args[0])
            if STATE.grad_enabled and p.differentiable and _needs_grad(args):
                record(p, args, attrs, (out,) if p.nout == 1 else out)
                if p.nout == 1 and out._base is not None:     # as on cpu, below
                    out._view_src = (args[0], p, attrs, out._base._vcount)
                    if "_multi_view" in args[0].__dict__:
                        out._multi_view = ((0, p.grad_name.replace("Backward0", "")) +
                                           args[0]._multi_view[2:])
            return out
    try:
        if len(args) == 1:      # (unary ops and views: no list to build)
            a = args[0]
            r = p.numpy(meta, a._data if isinstance(a, Tensor) else a, **attrs)
        else:
            ds = [a._data if isinstance(a, Tensor) else a for a in args]
            r = p.numpy(meta, *ds, **attrs)
            if p.kind == "pointwise":
                # TensorIterator's output layout: the first operand decides every pair of dims when
                # it is row-major and not broadcast (NumPy's result is row-major then too); else
                # NumPy's order='K' result may differ (operands of several layouts)
                try:
                    done = ds[0].flags.c_contiguous and ds[0].size == r.size
                except AttributeError:       # a Python number first
                    done = False
                for d in () if done else ds:
                    if type(d) is _ndarray and not d.flags.c_contiguous:
                        r = _mf.elementwise([x for x in ds if type(x) is _ndarray], np.asarray(r))
                        break
    except NestedLayoutError:     # (its storage refuses dense kernels)
        return NESTED.apply_prim(p, args, attrs)
    if p.nout == 1:
        if type(r) is not np.ndarray:
            r = np.asarray(r)
        if meta.dtype.round is not None and p.kind != "view":   # (complex32, float8; views
            r = meta.dtype.round(r)                             # share rounded values)
        out = Tensor.__new__(Tensor)
        out._data = r
        out._dtype = meta.dtype
        if p.kind == "view" and r.base is not None:
            src = args[0]
            out._base = src._base if src._base is not None else src
            if not STATE.grad_enabled:
                _nograd_view(out, src)
            if "_multi_view" in src.__dict__:     # a view of split()'s output: same rule
                out._multi_view = (0, p.grad_name.replace("Backward0", "")) + src._multi_view[2:]
        if STATE.grad_enabled:
            if p.differentiable:
                for a in args:       # (_needs_grad, inline: every eager op asks)
                    if isinstance(a, Tensor) and (a._node is not None or a._rg):
                        record(p, args, attrs, (out,))
                        if out._base is not None:
                            # how to re-derive this view's history if its base is written
                            # in place later
                            out._view_src = (args[0], p, attrs, out._base._vcount)
                        break
        elif STATE.inference:
            out._inf = True
        return out
    outs = tuple(wrap(m.dtype.round(x) if m.dtype.round is not None and p.kind != "view" else
                      np.asarray(x), m.dtype) for x, m in zip(r, meta))   # (wrap marks _inf)
    if STATE.grad_enabled and p.differentiable and _needs_grad(args):
        record(p, args, attrs, outs)
    return outs


def _nograd_view(out, src):
    """A view taken under no_grad (or inference_mode) of a tensor that requires grad."""
    if not STATE.inference and out._base.requires_grad:
        out._nograd_view = True     # (written in place later with grad on: refused)
    if src._rg or src._node is not None:
        # PyTorch's view requires grad through its base even so: a leaf whose gradients are
        # dropped (it has no AccumulateGrad)
        out._rg = out._vrg = True


def rebase_view(t):
    """PyTorch regenerates a view's grad_fn when its base was modified in place after the view
    was taken (the memory is shared, so the values already agree): record the view op again
    on the (rebased) source, so gradients flow through the in-place write."""
    src, p, attrs, vc = t._view_src
    base = t._base
    if base._vcount == vc:
        return
    if src._view_src is not None:
        rebase_view(src)
    t._view_src = (src, p, attrs, base._vcount)
    if STATE.grad_enabled and _needs_grad((src,)):
        old = t._node
        record(p, (src,), attrs, (t,))
        if not VIEW_REPLAY:     # PyTorch's regenerated view: as_strided of the base
            rename(t, "AsStridedBackward0")
        elif old is not None:   # replayed: the view op's own name (TransposeBackward0)
            rename(t, old._name)


# primitives whose PyTorch grad_fn name depends on the arguments
_NAME_BY_ARGS = {
    "pow": lambda args, attrs: ("PowBackward1" if isinstance(args[0], Tensor) else "PowBackward2")
    if isinstance(args[1], Tensor) else "PowBackward0",
    "scatter": lambda args, attrs: "ScatterAddBackward0" if attrs.get("reduce") in ("add", "sum")
    else "ScatterBackward0",
}


def _anomaly_trace(node):
    """Anomaly mode: the forward call's stack, shown if this node's backward fails."""
    import os
    import traceback
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    inside = tuple(os.path.join(root, d) + os.sep for d in ("framework", "compiler", "runtime"))
    frames = [f for f in traceback.extract_stack() if not f.filename.startswith(inside)]
    node.metadata = {"traceback_": traceback.format_list(frames)}


_INF_SAVED = ("Inference tensors cannot be saved for backward. Please do not use Tensors "
              "created in inference mode in computation tracked by autograd. To work around "
              "this, you can make a clone to get a normal tensor and use it in autograd, or use "
              "`torch.no_grad()` instead of `torch.inference_mode()`.")
WRAPPED = -1          # node.versions entry of a saved Python number: freed, never checked
_NUMBER = frozenset((int, float, complex, bool))


def record(p, args, attrs, outs, name=None):
    """Attach a grad_fn Node to the floating outputs `outs` of primitive `p` applied to `args`.
    Runs on every eager op that needs a gradient, so it does only list appends (and, under
    saved_tensors_hooks, packs what the node saved once it is built)."""
    hooks = STATE.saved_hooks
    saves = p.saves
    if p.saves_for is not None and STATE.tracer is None:
        # eager: only what the gradients that will be asked for read (a traced region's
        # backward graph asks its rules for every gradient, so it keeps `saves`)
        req = [isinstance(a, Tensor) and (a._node is not None or a._rg) for a in args]
        saves = {j for i, js in p.saves_for.items() if req[i] for j in js}
    every = saves == "all"
    saved, versions, edges = [], [], []
    for i, a in enumerate(args):
        if isinstance(a, Tensor):
            if a._view_src is not None and STATE.tracer is None:
                rebase_view(a)
            if (every or i in saves) and a._const:
                saved.append(a)
                versions.append(None)
            elif every or i in saves:
                b = a._base
                if a._inf or b is not None and b._inf:
                    raise RuntimeError(_INF_SAVED)
                saved.append(a)
                versions.append(a._vcount if b is None else b._vcount)
            else:
                saved.append(AVal(a._data.shape, a._dtype))
                versions.append(None)
            n = a._node
            if n is not None:
                edges.append((n, a._oi))
            elif a._rg:
                edges.append((None, a))     # leaf: the gradient accumulates into a.grad
            else:
                edges.append(None)
        else:
            saved.append(a)
            # a number the rule reads: PyTorch saves it as a wrapped-number tensor (x * 2's
            # MulBackward0), freed by backward like any saved tensor (engine._release)
            versions.append(WRAPPED if (every or i in saves) and type(a) in _NUMBER else None)
            edges.append(None)
    nm = name or (p.grad_name if p.name not in _NAME_BY_ARGS else _NAME_BY_ARGS[p.name](args, attrs))
    cls = _NODE_CLASSES.get((nm, None)) or node_class(nm)
    if len(outs) == 1:
        o = outs[0]
        if not (o._dtype.is_floating_point or o._dtype.is_complex):
            return None
        node = cls(p, attrs, saved, versions, edges, [AVal(o._data.shape, o._dtype)], nm)
        if STATE.anomaly:
            _anomaly_trace(node)
        if p.saves_output:
            node.out = [o._data]
            node.oref = [_weakref(o)]
        o._node = node
        if hooks is not None:
            pack_node(node, hooks)
        return node
    fl = [o._dtype.is_floating_point or o._dtype.is_complex for o in outs]
    if not any(fl):
        return None
    node = cls(p, attrs, saved, versions, edges, [AVal(o._data.shape, o._dtype) for o in outs], nm)
    if STATE.anomaly:
        _anomaly_trace(node)
    if p.saves_output:
        node.out = [o._data for o in outs]
        node.oref = [_weakref(o) for o in outs]
    for i, o in enumerate(outs):
        if fl[i]:
            o._node = node
            o._oi = i
    if hooks is not None:
        pack_node(node, hooks)
    return node


# ---- saved_tensors_hooks (autograd.graph): what a node saves goes through the pack hook ----

PACK_INPLACE = ("A saved tensor pack hook is modifying its input in place. Tensors provided as "
                "input to pack hook cannot be modified by in-place operations as this can lead "
                "to unexpected side-effects. Please open an issue if you need to perform in-place "
                "operations on the input to a pack hook.")


class Packed:
    """A saved tensor as a pack hook left it: what the hook returned, the unpack hook to call
    on it, and where the original tensor sat in the graph (its producer node and output index,
    or a weak reference to it when it is a leaf that requires grad; `out`: it is output `oi` of
    the node that saved it), so that the unpacked value has the same history for double
    backward, as PyTorch's SavedVariable rebuilds it."""
    __slots__ = ("value", "unpack", "node", "oi", "leaf", "out")

    def __init__(self, t, pack, unpack, out=None):
        v = t._version
        self.value = pack(t)
        if t._version != v:
            raise RuntimeError(PACK_INPLACE)
        self.unpack = unpack
        self.out = out is not None
        if out is not None:             # the node's own output: linked to it when unpacked
            self.oi, self.node, self.leaf = out, None, None
        else:
            self.oi, self.node = t._oi, t._node
            self.leaf = _weakref(t) if t._node is None and t._rg else None

    def get(self, owner=None):
        """The unpacked tensor: unpack_hook's value with the original tensor's history (owner:
        the node whose output it is), so it requires grad when the original did, and with grad
        on (create_graph, or enable_grad in a custom backward) its gradient reaches the
        original's producer or leaf. PyTorch checks only that the hook returned a tensor; a
        wrong shape or dtype shows up (or not) in the backward formula that reads it."""
        r = self.unpack(self.value)
        if not isinstance(r, Tensor):
            raise TypeError("Output of saved tensor unpack_hook expected to be a Tensor but got "
                            f"result of type {type(r).__name__}")
        t = wrap(r._data, r._dtype)
        if not (r._dtype.is_floating_point or r._dtype.is_complex):
            return t
        if self.out:
            if owner is not None:
                t._node, t._oi = owner, self.oi
        elif self.node is not None:
            t._node, t._oi = self.node, self.oi
        elif self.leaf is not None:
            leaf = self.leaf() if STATE.grad_enabled else None
            if leaf is not None:          # gradients of the unpacked value reach the leaf
                record(REGISTRY["copy"], (leaf,), {}, (t,))
            else:                         # (PyTorch: a leaf sharing the original's accumulator)
                t._rg = True
        return t


class PackedList(list):
    """node.saved / node.out of a node recorded under saved_tensors_hooks (Packed entries in
    place of tensors); the engine unpacks it when the node's backward runs."""
    __slots__ = ()

    def unpacked(self, owner=None):
        return [s.get(owner) if type(s) is Packed else s for s in self]


def pack_node(node, hooks):
    """Replace what `node` saved (input tensors, then saved outputs) by pack_hook's values.
    The hook runs without grad, once per saved tensor, on the tensor itself; the version
    check of those tensors is dropped (PyTorch cannot see through the hooks either)."""
    pack, unpack = hooks
    saved = node.saved
    prev = STATE.grad_enabled
    STATE.grad_enabled = False
    try:
        if any(isinstance(s, Tensor) and not s._const for s in saved):
            versions = node.versions
            saved = PackedList(saved)
            for i, s in enumerate(saved):
                if isinstance(s, Tensor) and not s._const:
                    saved[i] = Packed(s, pack, unpack)
                    versions[i] = None
            node.saved = saved
        if node.oref is not None:
            node.out = PackedList(Packed(r(), pack, unpack, i) for i, r in enumerate(node.oref))
    finally:
        STATE.grad_enabled = prev


def const(t):
    """Mark t, a tensor a composite op built from scalars (tril's mask, interpolate's taps), as
    no saved tensor of PyTorch's node for the op (TrilBackward0 saves only `diagonal`): a node
    that saves it keeps it after backward, without version check or saved_tensors_hooks."""
    t._const = True
    return t


def saved_extra(t, **values):
    """Keep on t's node (a composite op's renamed node) what PyTorch's node for the op saves
    and Kiln's does not (softmax's dim, add's alpha): its grad_fn._saved_* attributes. Not
    while tracing: a traced tensor kept here would stay alive and keep a region from replaying
    (a compiled function's grad_fn is the region's node, which has no such attributes)."""
    n = t._node
    if n is not None and STATE.tracer is None:
        n._sv = values
    return t


def keep_saved(t):
    """The Python numbers t's node saved are no saved tensors of PyTorch's node for the
    composite op it is part of (LerpBackward0 keeps a scalar weight as a scalar): t's node
    keeps them after backward (engine._release frees a WRAPPED number)."""
    n = t._node
    if n is not None and type(n.saved) is list:
        for i, v in enumerate(n.versions):
            if v == WRAPPED:
                n.versions[i] = None
    return t


def call(name, *args, **attrs):
    return apply(REGISTRY[name], *args, **attrs)


class EagerEmitter:
    """VJP rules call b.mul(...), b.sum(...): here each call runs eagerly through apply().
    `needs` (set by the backward engine around each rule) says which inputs want a gradient,
    so a rule can skip work nobody reads (vjp_util.wants)."""
    needs = None
    device = cpu      # device of the gradients of the rule being run (set by the engine)

    def __getattr__(self, op):
        p = REGISTRY.get(op)
        if p is None:
            raise AttributeError(op)
        if p.kind == "creation":     # zeros etc. made by a rule belong on the gradient's device
            def f(*a, **k):
                if self.device is cpu:
                    return apply(p, *a, **k)
                from ._device_ops import create
                return create(p, self.device, *a, **k)
            object.__setattr__(self, op, f)
            return f
        f = lambda *a, **k: apply(p, *a, **k)  # noqa: E731
        object.__setattr__(self, op, f)
        return f


EMIT = EagerEmitter()


def rename(t, name, link=None, unused=False, saves=()):
    """Give t's grad_fn PyTorch's name for the composite op that produced it. `link`: the
    tensor PyTorch's backward op for it reads (threshold_backward reads relu's input), to
    which a create_graph gradient stays connected with a zero derivative (engine._link); a
    tuple: the first of them that requires grad. unused=True: the derivative is undefined
    instead of zero (convolution's double backward gives a constant-weight conv's input None).
    A node given a link saves it in PyTorch, so retain_graph=False frees it (engine._release);
    False: none of the tensors requires grad. `saves`: the tensors PyTorch's node saves
    whether or not they need a gradient (an inference tensor among them is refused)."""
    n = t._node
    if n is not None:
        for x in saves:
            if isinstance(x, Tensor) and (x._inf or x._base is not None and x._base._inf):
                raise RuntimeError(_INF_SAVED)
        n._name = name
        n.__class__ = _NODE_CLASSES.get((name, None)) or node_class(name)
        for x in (link if type(link) is tuple else (link,)):
            if x is None:
                continue
            n.link = False
            if x._node is not None:
                n.link = (x._node, x._oi, unused)
                break
            if x._rg:
                n.link = (None, x, unused)
                break
    return t


def default_float():
    return dt.default.value
