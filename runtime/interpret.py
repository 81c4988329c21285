"""Host buffers for Triton's interpreter (TRITON_INTERPRET=1), without PyTorch.

Triton's interpreter runs a kernel's Python body on NumPy, reading and writing memory through
raw addresses. What it asks of a tensor argument (triton/runtime/interpreter.py,
GridExecutor._init_args_hst / _restore_args_dev and _implicit_cvt) is:

    arg.data_ptr(), arg.dtype (str() -> "torch.float32"-style name, hashable),
    arg.untyped_storage() -> storage with data_ptr(), cpu(), copy_(other),
    arg.new_empty(0, device='cpu').set_(storage, offset, size, stride),
    arg.storage_offset(), arg.size(), arg.stride()

It copies device storages to the host, runs, and copies back. Here the memory already is host
memory, so cpu() is the storage itself and copy_ between identical storages does nothing.
Kiln's DType prints as "torch.float32", which is the spelling Triton's dtype table reads.
"""
import dataclasses
import inspect
import weakref

import numpy as np

from . import dtypes as dt
from .memstats import device_stats


def _addr(a):
    return a.__array_interface__["data"][0]


class HostStorage:
    """The memory of a NumPy array's root base, addressed like a torch storage."""
    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def data_ptr(self):
        return _addr(self.array)

    def nbytes(self):
        return self.array.nbytes

    def cpu(self):
        return self

    def copy_(self, other):
        if other.data_ptr() != self.data_ptr():
            raise RuntimeError("HostStorage.copy_: host storages are never copied between "
                               "distinct memory blocks (the interpreter works in place)")
        return self


class HostTensor:
    """A NumPy array (any strides, a view or not) seen by Triton as a tensor argument."""
    __slots__ = ("array", "dtype")

    def __init__(self, array, dtype=None):
        if not isinstance(array, np.ndarray):
            raise TypeError(f"HostTensor: expected a numpy.ndarray, got {type(array).__name__}")
        self.array = array
        self.dtype = dtype if dtype is not None else dt.from_numpy(array.dtype)

    def __repr__(self):
        return f"HostTensor({self.dtype}, shape={list(self.array.shape)})"

    # --- what kernel launches read
    def data_ptr(self):
        return _addr(self.array)

    @property
    def shape(self):
        return self.array.shape

    def size(self, dim=None):
        return self.array.shape if dim is None else self.array.shape[dim]

    def stride(self, dim=None):
        st = tuple(s // self.array.itemsize for s in self.array.strides)
        return st if dim is None else st[dim]

    def element_size(self):
        return self.array.itemsize

    def numel(self):
        return self.array.size

    # --- what the interpreter's host/device shuffle reads
    def _root(self):
        a = self.array
        while isinstance(a.base, np.ndarray):
            a = a.base
        return a

    def untyped_storage(self):
        return HostStorage(self._root())

    def storage_offset(self):
        return (self.data_ptr() - _addr(self._root())) // self.array.itemsize

    def new_empty(self, *size, device=None, **kw):
        # The interpreter asks for an empty host tensor and then set_()s it to the host copy
        # of this storage; the memory already is on the host, so alias this array.
        return HostTensor(self.array, self.dtype)

    def set_(self, storage, offset, size, stride):
        if (storage.data_ptr() + offset * self.array.itemsize != self.data_ptr()
                or tuple(size) != self.array.shape or tuple(stride) != self.stride()):
            raise RuntimeError("HostTensor.set_: only aliasing its own memory is supported "
                               f"(offset {offset}, size {list(size)}, stride {list(stride)})")
        return self

    def cpu(self):
        return self

    def copy_(self, other):
        if other.data_ptr() != self.data_ptr():
            np.copyto(self.array, other.array)
        return self


def host(x):
    """Wrap an array (or pass through something that already has data_ptr())."""
    return x if hasattr(x, "data_ptr") else HostTensor(np.asarray(x))


class InterpretArray(np.ndarray):
    """Storage of an 'interpret' device tensor: host memory that Triton's interpreter reads and
    writes in place. A distinct type (not a flag) so that every place that wraps an array
    into a tensor can tell the device from the array alone; NumPy keeps the subclass through
    views, ufuncs and copies, so views of interpret tensors stay on the device."""

    def __array_finalize__(self, obj):
        _track(self)

    def __array_function__(self, func, types, args, kwargs):
        # np.where, np.concatenate, ... return plain arrays even for subclass inputs: keep
        # their results on the device, as torch.where of device tensors would be
        return _keep(super().__array_function__(func, types, args, kwargs))


_LIVE = {}      # id(root array) -> weak reference: the buffers counted as device memory
_STATS = device_stats("interpret", 0)


def _track(a):
    """Count the memory under interpret array `a` once, until its root array dies: this is
    what torch.cuda.memory_allocated() reports on the interpret device. Host memory is not
    cached, so each buffer is also its own reserved segment."""
    r, b = a, a.base
    while isinstance(b, np.ndarray):
        r, b = b, b.base
    k = id(r)
    if k in _LIVE:
        return
    n = r.nbytes
    _LIVE[k] = weakref.ref(r, lambda _, k=k, n=n: _untrack(k, n))
    _STATS.malloc(n)


def _untrack(k, n):
    if _LIVE.pop(k, None) is not None:
        _STATS.free(n)


def _keep(r):
    if type(r) is np.ndarray:
        return r.view(InterpretArray)
    if type(r) in (tuple, list):
        return type(r)(_keep(x) for x in r)
    return r


def to_interpret(a):
    """A fresh interpret buffer holding a copy of host array `a` (a device transfer copies)."""
    return np.array(a, copy=True, order="C").view(InterpretArray)


def as_interpret(a):
    """`a` seen as interpret storage without copying (for results computed on the host)."""
    a = np.asarray(a)
    return a.view(InterpretArray)


def to_host(a):
    """A plain NumPy copy of interpret storage (what .cpu() returns)."""
    return np.array(a, copy=True)


_PATCHED = []


def fix_interpreter():
    """Make Triton's interpreter type comparison results as the GPU compiler does (int1).

    Triton 3.x's interpreter tags the result of every comparison (create_icmp*/create_fcmp*)
    with the *operand's* element type; its NumPy data is bool, so nothing shows until the
    value is broadcast: create_splat then rebuilds it with the tagged type, and a 0-dim
    comparison like `tl.full([], s, tl.float32) != 0` becomes float data, on which `&` fails
    (logical_and(x, 1.75) raised TypeError). Idempotent; called before a kernel file is
    imported for the interpreter."""
    if _PATCHED:
        return
    _PATCHED.append(True)
    try:
        import triton.language as tl
        from triton.runtime import interpreter as ti
    except ImportError:      # pragma: no cover - triton is a dependency
        return
    B = ti.InterpreterBuilder

    def bool_result(f):
        def cmp(self, lhs, rhs):
            r = f(self, lhs, rhs)
            return ti.TensorHandle(r.data, tl.int1)
        return cmp

    for name in list(vars(B)):
        if name.startswith(("create_icmp", "create_fcmp")):
            setattr(B, name, bool_result(getattr(B, name)))

    # The interpreter holds bfloat16 as its uint16 bit patterns, and tl.dot multiplied those
    # integers (a bfloat16 matmul of [256, 1] . [1, 1] gave 5.4e8): widen them to float32 first
    # (exact: bfloat16 is float32's top half), as the GPU's bf16 dot reads values.
    dot = getattr(B, "create_dot", None)
    if dot is not None:
        def create_dot(self, a, b, d, *args, _orig=dot):
            if tl.bfloat16 in (a.dtype.scalar, b.dtype.scalar):
                def widen(h):
                    if h.dtype.scalar != tl.bfloat16:
                        return h
                    f = (h.data.astype(np.uint32) << 16).view(np.float32)
                    return ti.TensorHandle(f, tl.float32)
                a, b = widen(a), widen(b)
            return _orig(self, a, b, d, *args)
        B.create_dot = create_dot

    # ... and cast float32 to bfloat16 by dropping the low half (round toward zero), where the
    # GPU's conversion rounds to nearest even: a quarter to half of every bfloat16 result was one
    # unit off. Round to nearest even (NaN stays a quiet NaN).
    cast = getattr(B, "cast_impl", None)
    if cast is not None:
        def cast_impl(self, src, dst_type, _orig=cast):
            if src.dtype.scalar == tl.float32 and dst_type.scalar == tl.bfloat16:
                u = np.ascontiguousarray(src.data, np.float32).view(np.uint32)
                r = ((u + (((u >> 16) & 1) + 0x7FFF)) >> 16).astype(np.uint16)
                nan = (u & 0x7FFFFFFF) > 0x7F800000
                if nan.any():
                    r = np.where(nan, ((u >> 16) | 0x40).astype(np.uint16), r)
                return ti.TensorHandle(r, tl.bfloat16)
            return _orig(self, src, dst_type)
        B.cast_impl = cast_impl
        B.create_fp_trunc = lambda self, src, dst_type: self.cast_impl(src, dst_type)

    # Triton 3.6 turns a scalar kernel argument (a 1-element array in its interpreter) into
    # an int with int(array), which NumPy 2.4 refuses for arrays of one dimension: every
    # `range(0, K, BLOCK_K)` over a run-time size failed (matmul, looped rows). Triton 3.9
    # squeezes first; do the same everywhere.
    plt = getattr(ti, "_patch_lang_tensor", None)
    if plt is not None:
        def patch_lang_tensor(tensor, scope, _orig=plt):
            _orig(tensor, scope)
            scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.squeeze()))
        ti._patch_lang_tensor = patch_lang_tensor
    # Triton 3.6's interpreter builds an unsigned all-ones value (`~x` on uint8) as
    # np.full(1, -1, uint8), which NumPy 2 refuses; Triton 3.9 uses the type's maximum.
    ones = getattr(B, "get_all_ones_value", None)
    if ones is not None:
        def get_all_ones_value(self, type, _orig=ones):
            npt = ti._get_np_dtype(type)
            if np.issubdtype(npt, np.unsignedinteger):
                return ti.TensorHandle(np.full(1, np.iinfo(npt).max, dtype=npt), type.scalar)
            return _orig(self, type)
        B.get_all_ones_value = get_all_ones_value

    # Triton 3.6's tl.full(shape, value, dtype) takes a Python value equal to 0 as the null
    # constant, so a float argument of -0.0 (interpreted kernels get Python floats; compiled
    # ones a run-time register) became +0.0: relu(-0.0 * x) lost its signed zeros. A float
    # argument becomes a float64 scalar tensor there, as the compiled kernel's is a register.
    import triton
    if tuple(int(p) for p in triton.__version__.split(".")[:2]) < (3, 9) and \
            hasattr(ti, "_implicit_cvt"):
        def implicit_cvt(arg, _orig=ti._implicit_cvt):
            if type(arg) is float:
                return tl.tensor(ti.TensorHandle(np.array([arg], np.float64), tl.float64),
                                 tl.float64)
            return _orig(arg)
        ti._implicit_cvt = implicit_cvt

    # Every integer add/sub/mul in an interpreted kernel (its index arithmetic) first redoes
    # the operation in int64 and compares it with the type's bounds (sanitize_overflow, on by
    # default), then hands the result to device_assert, which drops it unless debug is on,
    # and the interpreter's options never turn debug on: 40% of an interpreted LSTM training
    # step went to checks that could not fire. Computed only where they can fire.
    bld = getattr(ti, "interpreter_builder", None)
    opts = getattr(bld, "options", None)
    if opts is not None and dataclasses.is_dataclass(opts) and \
            not getattr(opts, "debug", True) and getattr(opts, "sanitize_overflow", False):
        bld.options = dataclasses.replace(opts, sanitize_overflow=False)

    # Each launch, and each call of a library helper inside it (tl.sum, tl.max), patches
    # triton.language for the interpreter, finding the builtins to wrap with
    # inspect.getmembers over tl, tl.tensor, tl.math and tl.core every time: a fifth of an
    # interpreted training step. Those modules' builtins never change: list them once. A
    # package that an earlier interpreted call left patched (some members are the
    # interpreter's own functions) is not listed: it keeps the original path, which sees
    # what it saw before.
    pb, pa = getattr(ti, "_patch_builtin", None), getattr(ti, "_patch_attr", None)
    if pb is not None and pa is not None:
        def clean(members):
            fns = (getattr(m, "func", m) for _, m in members)    # (a partial: its function)
            return not any(inspect.isfunction(f) and f.__module__ == ti.__name__ for f in fns)
        pkgs = [tl, tl.core, tl.tensor, tl.math,
                getattr(tl.core, "tensor_descriptor_base", None)]
        members = {pkg: inspect.getmembers(pkg) for pkg in pkgs if pkg is not None}
        listed = {pkg: [(n, m) for n, m in ms if tl.core.is_builtin(m)]
                  for pkg, ms in members.items() if clean(ms)}

        def patch_builtin(pkg, builder, *scope, _orig=pb):
            names = listed.get(pkg)
            if names is None:
                return _orig(pkg, builder, *scope)
            for name, member in names:
                ti._patch_attr(pkg, name, member, builder, *scope)
        patch_builtin.listed = listed
        ti._patch_builtin = patch_builtin

    # A @triton.jit helper called inside an interpreted kernel (tl.max, tl.randint4x, Kiln's
    # helpers) patches its module's triton.language functions for the interpreter and never
    # restores them (InterpretedFunction.__call__ drops the patch scope that kernel launches
    # restore), so a later real compile in the process (kiln dump --asm, AOT) failed with
    # "'value' object has no attribute 'dtype'". Restore the scope after each helper call.
    IF = getattr(ti, "InterpretedFunction", None)
    if IF is None or not hasattr(ti, "_patch_lang"):
        return
    orig_call = IF.__call__

    def call(self, *args, **kwargs):
        scope = ti._patch_lang(self.fn)
        if not hasattr(scope, "restore"):        # (a Triton without patch scopes)
            return orig_call(self, *args, **kwargs)
        try:
            fn = self.rewrite()
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                raise ti.InterpreterError(repr(e)) from e
        finally:
            scope.restore()
    IF.__call__ = call


def library_interpretable():
    """Can Triton's interpreter run kernels that call the language's library functions (tl.sum,
    tl.max, tl.argmax, tl.cdiv: @triton.jit functions themselves)? Only when TRITON_INTERPRET
    was set when Triton was imported; otherwise they are compiled-JIT functions the interpreter
    refuses to call (pointwise kernels, which call none, run either way)."""
    import triton.language as tl
    return type(tl.sum).__name__ == "InterpretedFunction"
