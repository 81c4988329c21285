"""How apply() runs a primitive on tensors that live off the cpu ('interpret' or 'cuda').

Storage: an 'interpret' tensor's _data is a runtime.interpret.InterpretArray (host memory the
Triton interpreter works on in place); a 'cuda' tensor's _data is a cupy.ndarray from CuPy's
caching pool. The device of a buffer is a property of its type (array_device), so every place
that wraps an array into a tensor keeps the device without being told.

Per primitive call, in this order:
  kernel    a Triton kernel from compiler.codegen.triton_eager (generated once per call
            structure, cached): the interpreter runs it on 'interpret', the GPU on 'cuda'.
            Pointwise primitives, reductions, matmul, cat, window_max, plane_scatter,
            indexing (gather, index) and scatters (index_put, scatter, slice_scatter,
            diagonal_scatter) have one (all but pointwise: the compiled path's group kernel
            for a one-node graph); index values are checked on the device before the launch
            and raise the cpu path's error, as a kernel cannot.
  view      view primitives change metadata only: a new array over the same buffer.
  library   library ops (sorting, scans, linear algebra: primitives with an array-module
            lowering, Prim.xp) run on the device's own arrays: CuPy on 'cuda' (no host copy),
            NumPy on 'interpret' (its buffers are host memory).
  fallback  everything else (data-dependent shapes, creation other than full, scatter with
            reduce multiply/prod, atomic scatters of dtypes without Triton atomics):
            inputs copied to the host, the NumPy lowering, the result copied back.
            Every fallback is counted in STATS and printed under KILN_LOGS=kernels.
"""
import collections

import numpy as np

from compiler.codegen import triton_eager
from compiler.codegen.triton_pointwise import TritonCodegenError
from compiler.ops.linalg import LinAlgError
from runtime import dtypes as dt
from runtime import cuda as _cuda
from runtime.device import cpu, Device
from runtime.interpret import InterpretArray, HostTensor, as_interpret, to_interpret
from runtime.meta import MetaArray, meta_empty, to_meta
from . import _dispatch
from ._compile import log

INTERPRET = Device("interpret")
META = Device("meta")
NO_DATA = "Cannot copy out of meta tensor; no data!"
# ("kernel", name) | ("view", prim) | ("library", prim) | ("made", prim) | ("fallback", prim):
# calls per path, so tests and users can see what ran where
STATS = collections.Counter()


def array_device(a):
    """The device a buffer lives on, from its type alone."""
    if isinstance(a, InterpretArray):
        return INTERPRET
    if isinstance(a, MetaArray):
        return META
    if _cuda.is_device_array(a):
        return Device("cuda", _cuda.array_index(a))
    return cpu


def to_device(a, dev):
    """Copy of buffer `a` (any device) on `dev`; `a` itself when it already lives there."""
    src = array_device(a)
    if src is dev:
        return a
    if src is META:
        raise NotImplementedError(NO_DATA)
    if dev is META:
        _dispatch.NONCPU = True
        return to_meta(a)
    if src.type == "cuda":
        if dev.type == "cuda":
            return _cuda.copy(a, dev.index)
        a = _cuda.to_host(a)
    if dev.type == "cuda":
        _dispatch.NONCPU = True
        _cuda.hook_triton_stream()
        return _cuda.from_host(np.asarray(a), dev.index)
    if dev.type == "interpret":
        _dispatch.NONCPU = True
        return to_interpret(a)
    return np.array(a, copy=True)


def note_device(dev):
    """A buffer on `dev` is about to exist without a transfer (made there): from now on apply()
    looks at devices, and Triton launches on CuPy's stream."""
    _dispatch.NONCPU = True
    if dev.type == "cuda":
        _cuda.hook_triton_stream()


def host(a):
    """A NumPy view or copy of a buffer, for code that reads values (printing, item())."""
    if isinstance(a, MetaArray):
        raise NotImplementedError(NO_DATA)
    if isinstance(a, np.ndarray):
        return a.view(np.ndarray) if type(a) is not np.ndarray else a
    if _cuda.is_device_array(a):
        return _cuda.to_host(a)
    return np.asarray(a)


def common_device(args):
    """The device every tensor argument is on. 0-dim cpu tensors go along with any device
    (PyTorch treats them as scalars); any other mix is an error."""
    Tensor = _dispatch.Tensor
    dev = None
    for a in args:
        if isinstance(a, Tensor):
            d = a._device
            if dev is None or dev is d:
                dev = d
            elif d is cpu and a._data.ndim == 0:
                continue
            elif dev is cpu and _only_scalars_before(args, a):
                dev = d
            elif META in (dev, d):      # (PyTorch's meta kernels word it so)
                raise RuntimeError(f"Tensor on device {d} is not on the "
                                   f"expected device {dev}!")
            else:
                raise RuntimeError(f"Expected all tensors to be on the same device, but found at "
                                   f"least two devices, {dev} and {d}! (shapes "
                                   + ", ".join(str(list(x._data.shape)) for x in args
                                               if isinstance(x, Tensor)) + ")")
    return dev if dev is not None else cpu


def _only_scalars_before(args, stop):
    Tensor = _dispatch.Tensor
    for a in args:
        if a is stop:
            return True
        if isinstance(a, Tensor) and (a._device is not cpu or a._data.ndim != 0):
            return False
    return True


def _empty(shape, dtype, dev):
    if dev.type == "cuda":
        return _cuda.empty(shape, dtype.np, dev.index)
    return np.empty(shape, dtype.np).view(InterpretArray)


def _arg(a, dtype, interpret):
    return HostTensor(a, dtype) if interpret else _cuda.DeviceArg(a, dtype)


def run(p, meta, args, attrs, dev):
    """Run primitive `p` (meta already checked) on `dev`; returns the output tensor(s)."""
    if dev is META:
        return run_meta(p, meta, args, attrs)
    Tensor = _dispatch.Tensor
    # 0-dim cpu tensors mixed in (PyTorch's cpu scalars) move to the device first
    args = [_dispatch.wrap(to_device(a._data, dev), a._dtype)
            if isinstance(a, Tensor) and a._device is not dev else a for a in args]
    m0 = meta[0] if isinstance(meta, tuple) else meta
    if m0.dtype in dt.FLOAT8 and p.kind != "view":    # (generated kernels would not round)
        return fallback(p, meta, args, attrs, dev, f"{m0.dtype.name} results are rounded on "
                        "the host")
    build = triton_eager.builder_for(p)
    if build is not None:
        try:
            return _run_kernel(build, p, meta, args, attrs, dev)
        except TritonCodegenError as e:
            reason = str(e)
    elif p.kind == "view":
        return _view(p, meta, args, attrs, dev)
    elif p.xp is not None:
        try:
            return library(p, meta, args, attrs, dev)
        except LinAlgError:           # the op's own error (a singular matrix), as on the cpu
            raise
        except Exception as e:      # a form CuPy does not take (a batch, a dtype): the host
            reason = f"CuPy: {type(e).__name__}: {e}"
    else:
        reason = f"no Triton eager kernel for {p.kind} primitives yet"
    return fallback(p, meta, args, attrs, dev, reason)


def run_meta(p, meta, args, attrs):
    """A primitive on meta tensors: only its meta rule's shape and dtype (already computed),
    as fresh MetaArrays; views take the NumPy view lowering's shape and strides."""
    Tensor = _dispatch.Tensor
    metas = meta if isinstance(meta, tuple) else (meta,)
    for m in metas:
        if any(s < 0 for s in m.shape):     # (nonzero, unique: the size is in the values)
            raise NotImplementedError(f"{p.name}: the output size of this operator depends on "
                                      "the input's values, which meta tensors do not have")
    if p.kind == "view":
        x = args[0]
        rest = [to_meta(a._data) if isinstance(a, Tensor) else a for a in args[1:]]
        if p.name == "reshape":     # (its lowering's view test, without ever copying)
            try:
                r = np.reshape(x._data, meta.shape, copy=False)
            except ValueError:
                return _dispatch.wrap(meta_empty(meta.shape, meta.dtype.np), meta.dtype, META)
            return _wrap_view(r, meta, x, META)
        r = p.numpy(meta, to_meta(x._data), *rest, **attrs)
        if r.base is None:          # the lowering copied (a row-major result, as on the cpu)
            return _dispatch.wrap(meta_empty(meta.shape, meta.dtype.np), meta.dtype, META)
        return _wrap_view(to_meta(r), meta, x, META)
    st = None
    # (copy's NumPy lowering is row-major, as contiguous() needs)
    if p.kind == "pointwise" and p.nout == 1 and len(meta.shape) > 1 and p.name != "copy":
        arrs = [a._data for a in args if isinstance(a, Tensor)]
        if any(not a.flags.c_contiguous for a in arrs):       # TensorIterator's layout
            from ._memory_format import elementwise_strides
            st = elementwise_strides(arrs, meta.shape, meta.dtype.np.itemsize)
    outs = tuple(_dispatch.wrap(meta_empty(m.shape, m.dtype.np, st), m.dtype, META)
                 for m in metas)
    return outs if isinstance(meta, tuple) else outs[0]


def library(p, meta, args, attrs, dev):
    """A library op through its array-module lowering on the device's arrays."""
    Tensor = _dispatch.Tensor
    xp = _cuda._cupy() if dev.type == "cuda" else np
    arrs = [a._data for a in args if isinstance(a, Tensor)]
    if dev.type != "cuda":
        arrs = [a.view(np.ndarray) for a in arrs]
    it = iter(arrs)
    r = p.xp(xp, meta, *[next(it) if isinstance(a, Tensor) else a for a in args], **attrs)
    STATS["library", p.name] += 1
    if p.nout == 1:
        return _dispatch.wrap(_placed(r, meta, dev, xp), meta.dtype, dev)
    return tuple(_dispatch.wrap(_placed(x, m, dev, xp), m.dtype, dev) for x, m in zip(r, meta))


def _placed(r, m, dev, xp):
    """A library result as the device's storage: the output dtype, contiguous, its own
    memory (a lowering may hand back a view of an input)."""
    r = _owned(xp.asarray(r, dtype=m.dtype.np))
    if m.dtype is dt.complex32 and xp is np:        # (rounded as on the cpu: _dispatch.apply)
        r = dt.chalf_round(r)
    return r if dev.type == "cuda" else as_interpret(r)


def _owned(r):
    return r.copy() if r.base is not None or not r.flags.c_contiguous else r


def _run_kernel(build, p, meta, args, attrs, dev):
    Tensor = _dispatch.Tensor
    interpret = dev.type == "interpret"
    operands, ins, scalars = [], [], []
    for a in args:
        if isinstance(a, Tensor):
            b = _arg(a._data, a._dtype, interpret)
            operands.append(b)
            ins.append(b)
        else:
            operands.append(a)
            scalars.append(a)
    k = build(p, operands, attrs, meta)
    metas = meta if isinstance(meta, tuple) else (meta,)     # (window_max: two outputs)
    outs = [_empty(m.shape, m.dtype, dev) for m in metas]
    k.launch(ins, [_arg(o, m.dtype, interpret) for o, m in zip(outs, metas)], interpret,
             tuple(metas[0].shape), scalars)
    STATS["kernel", k.name] += 1
    if log.enabled("kernels"):
        log.emit("kernels", f"{dev}: {p.name} -> Triton kernel {k.name} "
                 f"{list(metas[0].shape)} {metas[0].dtype}")
    res = tuple(_dispatch.wrap(o, m.dtype, dev) for o, m in zip(outs, metas))
    return res if isinstance(meta, tuple) else res[0]


def _view(p, meta, args, attrs, dev):
    """View primitives: the NumPy lowering computes the new shape/strides/offset; on 'cuda'
    it runs on a host stand-in with the tensor's strides (never read) and the result becomes
    a CuPy array over the same device memory."""
    Tensor = _dispatch.Tensor
    x = args[0]
    rest = [a._data if isinstance(a, Tensor) else a for a in args[1:]]
    if dev.type == "interpret":
        r = p.numpy(meta, x._data, *rest, **attrs)
        if r.base is None:           # the lowering had to copy (flip, unviewable reshape)
            if p.name == "reshape":  # contiguous copy by a Triton kernel, then a view of it
                c = _dispatch.apply(_dispatch.REGISTRY["copy"], x)
                return _view(p, meta, [c] + list(args[1:]), attrs, dev)
            STATS["fallback", p.name] += 1
            _log_fallback(p, dev, "the view needs a copy; NumPy made it on the host")
            return _dispatch.wrap(as_interpret(r), meta.dtype, dev)
        if type(r) is not InterpretArray:
            r = r.view(InterpretArray)
        STATS["view", p.name] += 1
        return _wrap_view(r, meta, x, dev)
    a = x._data
    isz = a.itemsize
    if any(s < 0 for s in a.strides):
        return fallback(p, meta, args, attrs, dev, "negative strides")
    span = 1 + sum((n - 1) * s for n, s in zip(a.shape, a.strides) if n > 0) // isz \
        if all(a.shape) else 1
    buf = np.empty(span, a.dtype)
    stand = np.lib.stride_tricks.as_strided(buf, a.shape, a.strides)
    r = p.numpy(meta, stand, *rest, **attrs)
    lo = buf.__array_interface__["data"][0]
    ptr = r.__array_interface__["data"][0]
    if r.base is None or not lo <= ptr < lo + buf.nbytes + isz:
        if p.name == "reshape":      # unviewable: contiguous copy by a Triton kernel, then view
            c = _dispatch.apply(_dispatch.REGISTRY["copy"], x)
            return _view(p, meta, [c] + list(args[1:]), attrs, dev)
        return fallback(p, meta, args, attrs, dev, "the view needs a copy")
    STATS["view", p.name] += 1
    v = _cuda.view(a, r.shape, r.strides, ptr - lo)
    return _wrap_view(v, meta, x, dev)


def _wrap_view(r, meta, x, dev):
    out = _dispatch.wrap(r, meta.dtype, dev)
    if r.base is not None:
        out._base = x._base if x._base is not None else x
    return out


def _log_fallback(p, dev, reason):
    if log.enabled("kernels"):
        log.emit("kernels", f"{dev}: {p.name} -> host fallback (NumPy lowering): {reason}")


def fallback(p, meta, args, attrs, dev, reason):
    """The named host fallback: copy inputs to the host, run the NumPy lowering, copy back."""
    Tensor = _dispatch.Tensor
    STATS["fallback", p.name] += 1
    _log_fallback(p, dev, reason)
    hs = [host(a._data) if isinstance(a, Tensor) else a for a in args]
    r = p.numpy(meta, *hs, **attrs)
    if p.nout == 1:
        return _dispatch.wrap(_back(r, dev, meta), meta.dtype, dev)
    return tuple(_dispatch.wrap(_back(x, dev, m), m.dtype, dev) for x, m in zip(r, meta))


def _back(r, dev, m=None):
    r = np.asarray(r)
    if m is not None and m.dtype.round is not None:  # (rounded as on the cpu: _dispatch.apply)
        r = m.dtype.round(r)
    if dev.type == "interpret":
        return as_interpret(r)        # already host memory: no copy needed
    return to_device(r, dev)


def create(p, dev, *args, **attrs):
    """A creation primitive (full, arange) placed on `dev` (VJP rules build zeros this way):
    `full` is allocated and filled on the device (CuPy's fill on cuda); arange runs the
    compiled path's arange kernel; anything else is made on the host and copied (a counted
    fallback)."""
    meta = p.meta(*args, **attrs)
    if dev is META:
        return _dispatch.wrap(meta_empty(meta.shape, meta.dtype.np), meta.dtype, META)
    if p.name == "full" and meta.dtype.name != "bfloat16":
        note_device(dev)
        a = _empty(meta.shape, meta.dtype, dev)
        a.fill(attrs["value"] if "value" in attrs else args[1])
        STATS["made", p.name] += 1
        return _dispatch.wrap(a, meta.dtype, dev)
    if p.name == "arange" and not args and meta.dtype.name != "bfloat16":
        from compiler.codegen.triton_eager import creation_kernel
        from compiler.codegen.triton_pointwise import TritonCodegenError
        note_device(dev)
        interpret = dev.type == "interpret"
        try:
            k = creation_kernel(p, attrs, interpret)
        except TritonCodegenError as e:
            _log_fallback(p, dev, str(e))
        else:
            a = _empty(meta.shape, meta.dtype, dev)
            if a.size:
                k.launch([], [_arg(a, meta.dtype, interpret)], interpret, tuple(meta.shape), [])
            STATS["kernel", k.name] += 1
            return _dispatch.wrap(a, meta.dtype, dev)
    STATS["fallback", p.name] += 1
    _log_fallback(p, dev, "creation runs on the host")
    return _dispatch.wrap(_back(p.numpy(meta, *args, **attrs), dev), meta.dtype, dev)
