"""Tensor creation and random sampling (torch.tensor, zeros, arange, rand, Generator, ...)."""
import builtins
import math
import warnings

import numpy as np

from runtime import dtypes as dt
from runtime.device import canonical, cpu
from compiler.ir.registry import REGISTRY
from . import _cpu_random
from ._cpu_random import TorchStream
from . import _dispatch
from ._dispatch import STATE, values, wrap
from .tensor import Tensor
from . import _memory_format as _mf


# ---- dtype inference for Python data ---------------------------------------------------------

def _complex_default():
    d = dt.get_default_dtype()
    if d is dt.float64:
        return dt.complex128
    if d is dt.float32:
        return dt.complex64
    if d is dt.float16:
        return dt.complex32
    raise RuntimeError("invalid default scalar type for complex")


def _infer(data):
    """dtype PyTorch infers for nested Python data (its infer_scalar_type): each element's
    type -- bool, int64, the default float, its complex, a tensor's or a NumPy value's own
    dtype -- promoted together; an empty sequence is the default float dtype."""
    out = None
    stack = [data]
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple)):
            stack.extend(reversed(x))      # (in order: a refused promotion names the pair so)
            continue
        if isinstance(x, Tensor):
            d = x._dtype
        elif isinstance(x, (np.ndarray, np.generic)):
            d = dt.from_numpy(x.dtype)
        elif isinstance(x, bool):
            d = dt.bool_
        elif isinstance(x, int):
            d = dt.int64
        elif isinstance(x, float):
            d = dt.get_default_dtype()
        elif isinstance(x, builtins.complex):
            d = _complex_default()
        elif isinstance(x, (str, bytes)):
            _nested_sizes(data)          # a str on the first elements' path: too many dims
            raise TypeError(f"new(): invalid data type '{type(x).__name__}'")
        else:
            raise RuntimeError(f"Could not infer dtype of {type(x).__name__}")
        out = d if out is None else dt.promote_types(out, d)
    return dt.get_default_dtype() if out is None else out


def _nested_sizes(data):
    """The shape PyTorch reads off nested data: the lengths along the first elements (a tensor
    or array ends the walk with its own shape)."""
    sizes = []
    x = data
    while True:
        if isinstance(x, Tensor):         # (not a sequence to PyTorch: a leaf here)
            return sizes
        if isinstance(x, np.ndarray):
            if x.ndim == 0 and sizes:
                raise TypeError("len() of unsized object")
            return sizes + list(x.shape)
        if isinstance(x, str):
            raise ValueError("too many dimensions 'str'")
        if not isinstance(x, (list, tuple)):
            return sizes
        sizes.append(len(x))
        if not x:
            return sizes
        x = x[0]


def _nested_list(data, d):
    """data as nested lists of Python scalars, checked as PyTorch stores it: every sequence has
    the length the first elements gave (ValueError), a scalar where a sequence belongs is a
    TypeError, and a tensor in a scalar's place must hold one element."""
    sizes = _nested_sizes(data)
    exact = d.category < 2

    def walk(x, dim):
        if dim == len(sizes):
            if isinstance(x, (Tensor, np.ndarray)):
                if x.size != 1 if isinstance(x, np.ndarray) else x.numel() != 1:
                    if exact:
                        raise TypeError("only integer tensors of a single element can be "
                                        "converted to an index")
                    raise ValueError("only one element tensors can be converted to Python "
                                     "scalars")
                return x.item()
            if isinstance(x, (list, tuple)):
                raise TypeError(f"'{type(x).__name__}' object cannot be interpreted as an integer"
                                if exact else f"must be real number, not {type(x).__name__}")
            if isinstance(x, (str, bytes)):
                raise TypeError(f"new(): invalid data type '{type(x).__name__}'")
            return x
        if isinstance(x, Tensor):
            x = [x[i] for i in range(len(x))] if x.ndim else x
        elif isinstance(x, np.ndarray) and x.ndim:
            x = list(x)
        if not isinstance(x, (list, tuple, str)):
            raise TypeError("not a sequence")
        if len(x) != sizes[dim]:
            raise ValueError(f"expected sequence of length {sizes[dim]} at dim {dim} "
                             f"(got {len(x)})")
        return [walk(y, dim + 1) for y in x]
    return walk(data, 0)


_PY_OVERFLOW = "Overflow when unpacking long long"


def _checked_ints(a, d):
    """PyTorch's checked conversion of Python numbers into an integer dtype: an integer in
    range (uint8 also takes -255..-1, wrapping), a finite float in range (truncated); else
    RuntimeError. Python ints beyond int64 overflow while unpacking (ValueError)."""
    if a.dtype.kind == "b":
        return a.astype(d.np)
    if a.dtype.kind == "c":
        raise TypeError("'complex' object cannot be interpreted as an integer")
    if a.dtype == object or a.dtype.kind == "u" and np.any(a > np.iinfo(np.int64).max):
        raise ValueError(_PY_OVERFLOW)
    info = np.iinfo(d.np)
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (a < int(info.min)) | (a > int(info.max))
    else:
        lo = -int(info.max) if info.min == 0 else int(info.min)
        bad = (a < lo) | (a > int(info.max))
    if np.any(bad):
        raise RuntimeError(f"value cannot be converted to type {d.name} without overflow")
    return a.astype(d.np)


def _cast(a, d):
    """A new array of a's values in dtype d, converted as the cast primitive converts (double
    -> float -> half, as c10::Half is built: torch rounds such values twice)."""
    from compiler.ir.registry import REGISTRY
    return np.array(REGISTRY["cast"].numpy(None, a, dtype=d), copy=True)


def _uint64_ints(data):
    """data for a uint64 tensor: PyTorch unpacks each element as an unsigned 64-bit Python int
    (no float, NumPy scalar or tensor element; no wrap-around of negatives)."""
    for x in _flat(data):
        if not isinstance(x, int):
            raise TypeError("an integer is required")
        if not 0 <= x < 2 ** 64:
            raise OverflowError("can't convert negative int to unsigned" if x < 0 else
                                "int too big to convert")
    _nested_list(data, dt.uint64)        # (PyTorch's error for ragged data)
    return np.array(data, np.uint64)


def _to_numpy(data, d):
    if isinstance(data, Tensor):     # (values(): under compile() a trace reading them is not replayed)
        return _cast(values(data), d)
    if d is dt.uint64:
        return _uint64_ints(data)
    if isinstance(data, (list, tuple)) and any(isinstance(x, (Tensor, np.ndarray))
                                               for x in _flat(data)):
        if any(isinstance(x, np.ndarray) for x in _flat(data)):
            from ._misc_api import warn_once, user_stacklevel
            warn_once("list_of_ndarrays", "Creating a tensor from a list of numpy.ndarrays is "
                      "extremely slow. Please consider converting the list to a single "
                      "numpy.ndarray with numpy.array() before converting to a tensor.",
                      stacklevel=user_stacklevel())
        data = _nested_list(data, d)
    try:
        if d.category == 1:
            return _checked_ints(np.array(data), d)
        a = np.array(data)
        if a.dtype == object:
            raise ValueError("inhomogeneous")
        if a.dtype.kind == "c" and d.category == 2:
            raise TypeError("must be real number, not complex")
        return _cast(a, d)
    except OverflowError:
        raise ValueError(_PY_OVERFLOW) from None
    except ValueError as e:
        if str(e) == _PY_OVERFLOW:
            raise
        _nested_list(data, d)       # raises PyTorch's error for ragged data
        raise ValueError(f"tensor(): could not build a tensor from "
                         f"{type(data).__name__}: {e}") from None


def _flat(x):
    if isinstance(x, (list, tuple)):
        for y in x:
            yield from _flat(y)
    else:
        yield x


def _finish(arr, d, device, requires_grad):
    if d.round is not None:     # (complex32, float8: the values as the dtype holds them)
        arr = d.round(arr)
    dev = canonical(device)
    if dev.type != "cpu":       # built on the host, then one copy to the device
        from ._device_ops import to_device
        arr = to_device(arr, dev)
    if STATE.tracer is not None:    # (a constant a module replay may keep: _compile)
        STATE.tracer.made.add(id(arr))
    t = wrap(arr, d)
    if requires_grad:
        t._set_requires_grad(True)
    return t


def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False):
    if isinstance(data, range):
        data = list(data)
    if isinstance(data, (str, bytes)):
        raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
    if data is None or isinstance(data, (dict, set)):
        raise RuntimeError(f"Could not infer dtype of {type(data).__name__}")
    if isinstance(data, np.ndarray):
        d = dtype or _numpy_dtype(data)
        arr = _numpy_copy(data, d.np)
    else:
        if isinstance(data, Tensor):
            warnings.warn("To copy construct from a tensor, it is recommended to use "
                          "sourceTensor.detach().clone() or sourceTensor.detach().clone()."
                          "requires_grad_(True), rather than torch.tensor(sourceTensor).",
                          UserWarning, stacklevel=2)
        d = dtype or _infer(data)
        arr = _to_numpy(data, d)
    return _finish(arr, d, device, requires_grad)


def _numpy_dtype(a):
    """The dtype of a tensor over NumPy array a; PyTorch refuses arrays it cannot view."""
    if not a.dtype.isnative:
        raise ValueError("given numpy array has byte order different from the native byte "
                         "order. Conversion between byte orders is currently not supported.")
    if any(s < 0 for s in a.strides):
        raise ValueError("At least one stride in the given numpy array is negative, and tensors "
                         "with negative strides are not currently supported. (You can probably "
                         "work around this by making a copy of your array  with array.copy().) ")
    return dt.from_numpy(a.dtype)


def _numpy_copy(a, npdt):
    """A copy of array a in npdt laid out as PyTorch copies (preserve_format): the same element
    strides when a is non-overlapping and dense, else C-contiguous."""
    if a.dtype == np.float64 and np.dtype(npdt) == np.float16:
        a = a.astype(np.float32)        # (double -> float -> half, as torch rounds)
    el = _dense_strides(a)
    if el is None or el == _contiguous_strides(a.shape):
        return np.array(a, dtype=npdt, order="C")
    out = np.lib.stride_tricks.as_strided(np.empty(a.size, npdt), a.shape,
                                          tuple(e * np.dtype(npdt).itemsize for e in el))
    out[...] = a
    return out


def _dense_strides(a):
    """The element strides of array a if it is non-overlapping and dense (a permutation of a
    contiguous layout), else None."""
    if a.size == 0 or not a.itemsize or any(s % a.itemsize for s in a.strides):
        return None
    el = [s // a.itemsize for s in a.strides]
    expect = 1
    for i in sorted((i for i in range(a.ndim) if a.shape[i] != 1), key=lambda i: el[i]):
        if el[i] != expect:
            return None
        expect *= a.shape[i]
    return el


def _contiguous_strides(shape):
    """PyTorch's contiguous element strides of shape (a size-0 dim counts as 1)."""
    st, acc = [], 1
    for s in reversed(shape):
        st.append(acc)
        acc *= s if s > 1 else 1
    return st[::-1]


def as_tensor(data, dtype=None, device=None):
    if isinstance(data, Tensor):
        if device is not None:
            return data.to(device=device, dtype=dtype)
        return data if dtype is None or dtype is data._dtype else data.to(dtype)
    if (isinstance(data, np.ndarray) and (dtype is None or dtype.np == data.dtype
                                          and dtype.round is None)
            and canonical(device) is cpu):
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False):
    if copy is False:       # sharing is required: a tensor or an array of that very dtype
        src = (obj._dtype if isinstance(obj, Tensor) else
               _numpy_dtype(obj) if isinstance(obj, np.ndarray) else None)
        if src is None:
            raise ValueError("can't alias arbitrary sequence into a tensor.")
        if dtype is not None and dtype is not src:
            raise ValueError(f"can't alias tensor with dtype '{dt.tname(src)}' into dtype "
                             f"'{dt.tname(dtype)}'.")
    if copy and isinstance(obj, Tensor):      # a copy that keeps the autograd history
        t = obj.clone() if dtype is None or dtype is obj._dtype else obj.to(dtype)
        if device is not None:
            t = t.to(device)
    else:
        t = as_tensor(obj, dtype, device) if not copy else tensor(obj, dtype=dtype,
                                                                     device=device)
    if requires_grad:
        t._set_requires_grad(True)
    return t


_WARNED_READONLY = False


def from_numpy(ndarray):
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    d = _numpy_dtype(ndarray)
    global _WARNED_READONLY
    if not ndarray.flags.writeable and not _WARNED_READONLY:
        _WARNED_READONLY = True
        warnings.warn("The given NumPy array is not writable, and PyTorch does not support "
                      "non-writable tensors. This means writing to this tensor will result in "
                      "undefined behavior. You may want to copy the array to protect its data or "
                      "make it writable before converting it to a tensor. This type of warning "
                      "will be suppressed for the rest of this program.", UserWarning,
                      stacklevel=2)
    return wrap(ndarray, d)


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    elif len(size) == 1 and isinstance(size[0], Tensor) and size[0].ndim == 1:
        size = tuple(size[0].tolist())
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = int(s)
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise TypeError(f"expected a sequence of integers or a single integer as size, got "
                            f"{type(s).__name__}")
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(size)}")
        out.append(int(s))
    return tuple(out)


def _sizes(name, size, kw):
    """Factories take sizes as varargs, one tuple/list, or size=...; at least one is required."""
    if kw is not None:
        if size:
            raise TypeError(f"{name}() got multiple values for argument 'size'")
        size = (kw,)
    if not size:
        raise TypeError(f'{name}() missing 1 required positional arguments: "size"')
    try:
        return _shape(size)
    except RuntimeError:
        if name == "zeros":     # (PyTorch's zeros checks sizes itself, with its own message)
            raise RuntimeError("zeros: Dimension size must be non-negative.") from None
        raise


def _into(out, t):
    """out= on a factory: out is resized to the result and takes its values (its dtype stays,
    unless dtype= asked for another one, which PyTorch rejects)."""
    if out is None:
        return t
    if t._dtype is not out._dtype:
        raise RuntimeError(f"dtype {t._dtype} does not match dtype of out parameter "
                           f"({out._dtype})")
    if out._data.shape != t._data.shape:       # resized: new storage on out's device
        out._data = _made(t._data.shape, None, out._dtype, out._device, False)._data
    out._data[...] = t._data
    out._bump()
    return out


_CTYPE = {"uint8": "uint8_t", "int8": "int8_t", "int16": "int16_t", "int32": "int",
          "int64": "int64_t", "float16": "c10::Half", "bfloat16": "c10::BFloat16",
          "float32": "float", "float64": "double", "complex64": "c10::complex<float>",
          "complex128": "c10::complex<double>", "uint16": "uint16_t", "uint32": "uint32_t",
          "uint64": "uint64_t"}


def int_fill(value, d):
    """A fill value converted to dtype d as PyTorch checks it (c10::checked_convert): an
    integer dtype takes an in-range integer (uint8 also -255..-1, wrapping as a C cast does:
    full_like(uint8 tensor, -1) is 255; NumPy refuses it) or a finite in-range float
    (truncated); a floating dtype a value within its finite range (or an infinity/NaN); a
    complex value with an imaginary part only a complex or bool dtype. Anything else raises
    PyTorch's overflow error."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or d.category == 0 or value is None:
        return value
    if isinstance(value, builtins.complex):
        if d.category == 3:
            return value
        if value.imag != 0:
            raise _overflow(d)
        value = value.real
    if d.category == 1:
        info = np.iinfo(d.np)
        if isinstance(value, int):
            lo = -int(info.max) if info.min == 0 else int(info.min)
            if not lo <= value <= int(info.max):
                raise _overflow(d)
            return value & int(info.max) if info.min == 0 else value    # (-1 is 255 in uint8)
        if isinstance(value, float) and not int(info.min) <= value <= int(info.max):
            raise _overflow(d)       # (NaN fails the comparison too)
        return value
    if d.category == 2 and isinstance(value, (int, float)) and math.isfinite(value):
        big = 65504.0 if d is dt.float16 else 3.3895313892515355e38 if d is dt.bfloat16 else \
            3.4028234663852886e38 if d is dt.float32 else None
        if big is not None and abs(value) > big:
            raise _overflow(d)
    return value


def _overflow(d):
    return RuntimeError(f"value cannot be converted to type {_CTYPE.get(d.name, d.name)} "
                        f"without overflow")


def _number(op, value):
    """The fill value of full/full_like as PyTorch's argument parser takes it: a Python number
    (a NumPy scalar or a one-element tensor gives its value)."""
    if isinstance(value, Tensor):
        return value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, (bool, int, float, builtins.complex)):
        raise TypeError(f"{op}(): argument 'fill_value' (position 2) must be Number, not "
                        f"{type(value).__name__}")
    return value


def _made(shape, value, d, device, requires_grad):
    """A new tensor filled with `value` (None: uninitialised), made where it lives: a device
    tensor gets device memory filled there (CuPy's fill kernel on cuda), never a host buffer
    and an upload. bfloat16 takes the host path, whose upload names what cuda lacks."""
    dev = canonical(device)
    value = int_fill(value, d)
    if d is dt.float16 and type(value) is float:
        value = float(np.float32(value))     # (double -> float -> half, as torch rounds)
    if dev.type == "meta":      # no host buffer to make and copy
        from runtime.meta import meta_empty
        from ._device_ops import note_device
        note_device(dev)
        t = wrap(meta_empty(tuple(shape), d.np), d)
        if requires_grad:
            t._set_requires_grad(True)
        return t
    if dev.type not in ("cuda", "interpret") or d is dt.bfloat16:
        arr = np.empty(shape, d.np) if value is None else np.full(shape, value, dtype=d.np)
        return _finish(arr, d, dev, requires_grad)
    from ._device_ops import _empty, note_device
    note_device(dev)
    a = _empty(tuple(shape), d, dev)
    if value is not None:
        a.fill(value)
    if STATE.tracer is not None:
        STATE.tracer.made.add(id(a))
    t = wrap(a, d)
    if requires_grad:
        t._set_requires_grad(True)
    return t


def _filled(shape, value, dtype, device, requires_grad, out=None):
    d = dtype or (out._dtype if out is not None else dt.get_default_dtype())
    return _into(out, _made(shape, value, d, device, requires_grad))


def zeros(*size, out=None, dtype=None, layout=None, device=None, requires_grad=False,
          **kw):
    return _filled(_sizes("zeros", size, kw.pop("size", None)), 0, dtype, device, requires_grad,
                   out)


def ones(*size, out=None, dtype=None, layout=None, device=None, requires_grad=False, **kw):
    return _filled(_sizes("ones", size, kw.pop("size", None)), 1, dtype, device, requires_grad,
                   out)


def empty(*size, out=None, dtype=None, layout=None, device=None, requires_grad=False,
          pin_memory=False, memory_format=None, **kw):
    shape = _sizes("empty", size, kw.pop("size", None))
    d = dtype or (out._dtype if out is not None else dt.get_default_dtype())
    t = _into(out, _made(shape, None, d, device, requires_grad))
    return _in_format("empty", t, memory_format) if out is None else t


def full(size, fill_value, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"full(): argument 'size' (position 1) must be tuple of ints, not "
                        f"{type(size).__name__}")
    fill_value = _number("full", fill_value)
    d = dtype or (out._dtype if out is not None else dt.scalar_dtype(fill_value))
    return _into(out, _made(_shape(tuple(size)), fill_value, d, device, requires_grad))


def _like(input, dtype):
    return dtype or input._dtype


def _like_dev(input, device):
    return input._device if device is None else device


def _in_format(op, t, memory_format):
    """t (a fresh cpu result) laid out in memory_format: channels-last formats relayout, the
    contiguous and preserve formats leave it as made (contiguous)."""
    _mf.check(op, memory_format)
    if memory_format is not None and _mf.is_channels_last(memory_format):
        _mf.check_rank(op, t.ndim, memory_format)
        if type(t._data) is np.ndarray:
            t._data = _mf.laid_out(t._data, memory_format)
    return t


def _preserve(t, input, memory_format):
    """PyTorch's preserve_format for a *_like result on the cpu: a non-overlapping, dense
    input's strides (zeros_like(x.t()) is laid out as x.t()); anything else stays contiguous.
    Another memory_format lays the result out in that format."""
    if memory_format is not None and memory_format is not _mf.preserve_format:
        return _in_format("empty_like", t, memory_format)
    a, src = t._data, input._data
    meta = t._device.type == "meta"
    if type(a) is not np.ndarray and not meta or \
            not isinstance(src, np.ndarray) or src.ndim < 2 or src.size == 0:
        return t
    el = _dense_strides(src)
    if el is None or el == _contiguous_strides(src.shape):
        return t
    if meta:
        from runtime.meta import meta_empty
        t._data = meta_empty(a.shape, a.dtype, tuple(e * a.itemsize for e in el))
        return t
    out = np.lib.stride_tricks.as_strided(np.empty(a.size, a.dtype), a.shape,
                                          tuple(e * a.itemsize for e in el))
    out[...] = a
    t._data = out
    return t


def zeros_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
               memory_format=None):
    if input.is_nested:       # framework.nested: over the values buffer
        return input._on_values(lambda v: zeros_like(v, dtype=dtype, device=device,
                                                      requires_grad=requires_grad))
    if input._dtype.category == 4:      # quantized (framework/ao/_qtensor.py)
        from .ao._qtensor import like_q
        return like_q(input, 0, dtype, zero=True)
    return _preserve(_filled(input._data.shape, 0, _like(input, dtype),
                             _like_dev(input, device), requires_grad), input, memory_format)


def ones_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None):
    if input.is_nested:       # framework.nested: over the values buffer
        return input._on_values(lambda v: ones_like(v, dtype=dtype, device=device,
                                                     requires_grad=requires_grad))
    if input._dtype.category == 4:      # quantized (framework/ao/_qtensor.py)
        from .ao._qtensor import like_q
        return like_q(input, 1, dtype)
    return _preserve(_filled(input._data.shape, 1, _like(input, dtype),
                             _like_dev(input, device), requires_grad), input, memory_format)


def empty_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
               memory_format=None):
    if input.is_nested:       # framework.nested: over the values buffer
        return input._on_values(lambda v: empty_like(v, dtype=dtype, device=device,
                                                      requires_grad=requires_grad))
    if input._dtype.category == 4:      # quantized (framework/ao/_qtensor.py)
        from .ao._qtensor import like_q
        return like_q(input, None, dtype)
    d = _like(input, dtype)
    return _preserve(_made(input._data.shape, None, d, _like_dev(input, device), requires_grad),
                     input, memory_format)


def full_like(input, fill_value, *, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None):
    fill_value = _number("full_like", fill_value)
    if input.is_nested:       # framework.nested: over the values buffer
        return input._on_values(lambda v: full_like(v, fill_value, dtype=dtype, device=device,
                                                     requires_grad=requires_grad))
    if input._dtype.category == 4:
        from .ao._qtensor import like_q
        return like_q(input, fill_value, dtype)
    return _preserve(_filled(input._data.shape, fill_value, _like(input, dtype),
                             _like_dev(input, device), requires_grad), input, memory_format)


def eye(n, m=None, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    d = dtype or dt.get_default_dtype()
    dt.refuse_barebones("eye", d)
    for name, v in (("n", n), ("m", m)):
        if v is not None and v < 0:
            raise RuntimeError(f"eye: {name} must be greater or equal to 0, got {v}")
    return _finish(np.eye(n, n if m is None else m, dtype=d.np), d, device, requires_grad)


def arange(start=0, end=None, step=1, *, out=None, dtype=None, layout=None, device=None,
           requires_grad=False):
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, (Tensor, np.generic)) else v for v in (start, end, step)]
    start, end, step = vals
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    for v in (start, end):
        if not math.isfinite(v):
            raise RuntimeError(f"unsupported range: {start} -> {end}")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and lower bound inconsistent with step sign "
                           f"(start={start}, end={end}, step={step})")
    if dtype is None and out is not None:
        dtype = out._dtype
    if dtype is None:
        dtype = dt.int64 if all(isinstance(v, int) for v in vals) else dt.get_default_dtype()
    if dtype is dt.bool_ or dtype.is_complex or dtype.barebones or dtype in dt.FLOAT8:
        raise NotImplementedError(f"\"arange_cpu\" not implemented for '{dt.tname(dtype)}'")
    if dtype is dt.int64:
        # PyTorch's int64 arange truncates start, end and step first, length included
        start, end, step = int(start), int(end), int(step)
        if step == 0:
            raise ValueError("step must be nonzero")
        if (end - start) * step < 0:
            raise RuntimeError("upper bound and lower bound inconsistent with step sign")
        n = -((start - end) // step)
    else:
        n = math.ceil((end - start) / step)     # the length comes from the exact bounds
    if n > 2 ** 62:
        raise RuntimeError("invalid size, possible overflow?")
    dev = canonical(device)
    if dev.type in ("cuda", "interpret") and STATE.tracer is None and \
            (dtype.is_floating_point or all(isinstance(v, int) for v in (start, step))):
        # filled on the device by the compiled path's arange kernel (start + i * step)
        from ._device_ops import create
        t = create(REGISTRY["arange"], dev, start=start, end=end, step=step, dtype=dtype)
        if requires_grad:
            t._set_requires_grad(True)
        return _into(out, t)
    if dtype.is_floating_point:
        arr = (start + np.arange(n, dtype=np.float64) * step).astype(dtype.np)
    else:     # integer dtypes: PyTorch casts start and step to the dtype first (truncation)
        arr = (int(start) + np.arange(n, dtype=np.int64) * int(step)).astype(dtype.np)
    return _into(out, _finish(arr, dtype, device, requires_grad))


def range_(start=0, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    warnings.warn("torch.range is deprecated and will be removed in a future release because its "
                  "behavior is inconsistent with Python's range builtin. Instead, use "
                  "torch.arange, which produces values in [start, end).", UserWarning,
                  stacklevel=2)
    d = dtype or dt.get_default_dtype()
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    n = int(math.floor((end - start) / step)) + 1
    return _finish((start + np.arange(n) * step).astype(d.np), d, device, requires_grad)


def linspace(start, end, steps, *, out=None, dtype=None, layout=None, device=None,
             requires_grad=False):
    start, end = (v.item() if isinstance(v, (Tensor, np.generic)) else v for v in (start, end))
    if isinstance(steps, Tensor):
        steps = steps.item()
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool):
        raise TypeError(f"linspace() received an invalid combination of arguments - got "
                        f"({type(start).__name__}, {type(end).__name__}, "
                        f"{type(steps).__name__}), but expected (Number start, Number end, int "
                        f"steps)")
    cx = isinstance(start, builtins.complex) or isinstance(end, builtins.complex)
    d = dtype or (_complex_default() if cx else dt.get_default_dtype())
    if cx and not d.is_complex:
        raise RuntimeError(f"torch.linspace(): inferred dtype {_CTYPE[_complex_default().name]} "
                           f"can't be safely cast to passed dtype {dt.tname(d)}")
    if steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative (got {steps})")
    dt.refuse_barebones("linspace_cpu", d)
    if steps == 1:
        return _finish(np.array([start]).astype(d.np), d, device, requires_grad)
    # PyTorch computes the two halves from both ends (symmetric rounding): in double for
    # integer dtypes (then truncated), else in the dtype itself, rounding after each operation
    cd = np.dtype(np.float64) if d.category < 2 else d.np
    k = np.arange(steps)
    s, e = (np.array(v).astype(d.np).astype(cd) for v in (start, end))   # start, end in d first
    step = (e - s) / np.array(max(steps - 1, 1)).astype(cd)
    if d is dt.float32 or d is dt.float64 or d.category < 2:
        # their kernel rounds s + step * k once (a fused multiply-add): exact in a wider type
        w = np.float64 if d is dt.float32 else np.longdouble
        arr = np.where(k < steps // 2, (w(s) + w(step) * k).astype(cd),
                       (w(e) - w(step) * (steps - 1 - k)).astype(cd))
    else:
        arr = np.where(k < steps // 2, s + step * k.astype(cd),
                       e - step * (steps - 1 - k).astype(cd))
    if d.category < 2:
        arr = np.trunc(arr)
    return _finish(arr.astype(d.np), d, device, requires_grad)


def logspace(start, end, steps, base=10.0, *, out=None, dtype=None, layout=None, device=None,
             requires_grad=False):
    d = dtype or dt.get_default_dtype()
    dt.refuse_barebones("logspace_cpu", d)
    lin = linspace(start, end, steps, dtype=dt.float64)._data
    return _finish(np.power(float(base), lin).astype(d.np), d, device, requires_grad)


def _tri_check(name, row, col, dtype):
    for k, v in (("row", row), ("col", col)):
        if v < 0:
            raise RuntimeError(f"{k} must be non-negative, got{v}")
    if dtype is not None and dtype not in (dt.int32, dt.int64):
        raise NotImplementedError(f"\"{name}\" not implemented for '{dt.tname(dtype)}'")


def tril_indices(row, col, offset=0, *, dtype=None, device=None):
    _tri_check("tril_indices", row, col, dtype)
    r, c = np.tril_indices(row, offset, col)
    return tensor(np.stack([r, c]).astype(np.int64), dtype=dtype or dt.int64, device=device)


def triu_indices(row, col, offset=0, *, dtype=None, device=None):
    _tri_check("triu_indices", row, col, dtype)
    r, c = np.triu_indices(row, offset, col)
    return tensor(np.stack([r, c]).astype(np.int64), dtype=dtype or dt.int64, device=device)


def complex(real, imag, *, out=None):
    """real + i imag as torch.complex: both float32 or both float64 (broadcast), and
    differentiable (stacked pairs read as complex by view_as_complex)."""
    from ._dispatch import apply
    from compiler.ir.registry import REGISTRY, broadcast_shapes
    a, b = real._dtype, imag._dtype
    if a not in (dt.float32, dt.float64, dt.float16) or b not in (dt.float32, dt.float64,
                                                                 dt.float16):
        raise RuntimeError(f"Expected both inputs to be Half, Float or Double tensors but got "
                           f"{dt.tname(a)} and {dt.tname(b)}")
    if a is not b:
        raise RuntimeError(f"Expected object of scalar type {dt.tname(a)} but got scalar type "
                           f"{dt.tname(b)} for second argument")
    shape = broadcast_shapes("complex", tuple(real.shape), tuple(imag.shape))
    parts = [apply(REGISTRY["reshape"], apply(REGISTRY["expand"], x, shape=shape),
                   shape=shape + (1,)) for x in (real, imag)]
    z = apply(REGISTRY["view_as_complex"], apply(REGISTRY["cat"], *parts, dim=-1))
    if out is not None:
        from .ops_math import write_out
        return write_out(z, out)
    return z


# ---- random numbers ----------------------------------------------------------------------------

_DEFAULT_SEED = 67280421310721


class Generator:
    """torch.Generator: a seeded source of random numbers. On the cpu PyTorch's mt19937 stream
    and transformations (_cpu_random: manual_seed(s) gives PyTorch's numbers); on a device a
    Philox (seed, offset) pair that device kernels draw from (_device_random)."""

    def __init__(self, device="cpu"):
        self.device = canonical(device)
        self._offset = 0
        self.manual_seed(_DEFAULT_SEED)

    def manual_seed(self, seed):
        seed = int(seed)
        if not -2 ** 63 <= seed < 2 ** 64:
            raise ValueError("Overflow when unpacking long long")
        if seed < 0:
            seed &= 0xFFFFFFFFFFFFFFFF
        self._seed = seed
        self._offset = 0
        self._rng = TorchStream(seed) if self.device.type == "cpu" else None
        return self

    def seed(self):
        s = int(np.random.SeedSequence().entropy) & 0xFFFFFFFFFFFFFFFF
        self.manual_seed(s)
        return s

    def initial_seed(self):
        return self._seed

    def get_state(self):
        """The state as a uint8 tensor; on the cpu PyTorch's own 5056-byte layout
        (CPUGeneratorImplState), so states move between Kiln and PyTorch."""
        if self._rng is None:
            from ._device_random import state_bytes
            return wrap(state_bytes(self), dt.uint8)
        return wrap(_cpu_random.torch_state_bytes(self._rng, self._seed), dt.uint8)

    def set_state(self, state):
        if not isinstance(state, Tensor) or state._dtype is not dt.uint8:
            raise TypeError("RNG state must be a torch.ByteTensor")
        if self._rng is None:
            from ._device_random import load_state
            load_state(self, state._data)
            return self
        from ._device_ops import host
        blob = np.ascontiguousarray(host(state._data), dtype=np.uint8).reshape(-1)
        self._seed = _cpu_random.load_torch_state(self._rng, blob)
        return self


default_generator = Generator()


def _gen(generator):
    """The cpu stream of a draw (_cpu_random.TorchStream; a device generator cannot serve
    one)."""
    g = default_generator if generator is None else generator
    if not isinstance(g, Generator):
        raise TypeError(f"expected a torch.Generator as 'generator', but got "
                        f"{type(generator).__name__}")
    if g._rng is None:
        raise RuntimeError(f"Expected a 'cpu' device type for generator but found "
                           f"'{g.device.type}'")
    if _dispatch.VMAP is not None:      # inside vmap: its randomness mode decides
        from .func.vmap import random_stream
        return random_stream(g._rng)
    return g._rng


def manual_seed(seed):
    default_generator.manual_seed(seed)
    from ._device_random import seed_all
    seed_all(default_generator.initial_seed())
    return default_generator


def seed():
    s = default_generator.seed()
    from ._device_random import seed_all
    seed_all(s)
    return s


def initial_seed():
    return default_generator.initial_seed()


def rng_snapshot():
    """Every generator's state (cpu and devices), for code that must draw again exactly as
    before (compiled replays re-drawing dropout masks)."""
    from ._device_random import generators
    return (default_generator._rng, default_generator._rng.get_state().tobytes(),
            tuple((d, g._seed, g._offset) for d, g in generators().items()))


def rng_restore(snap):
    from ._device_random import generators
    default_generator._rng.set_state(np.frombuffer(snap[1], np.uint8))
    gens = generators()
    for d, seed_, offset in snap[2]:
        gens[d]._seed, gens[d]._offset = seed_, offset


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(new_state):
    default_generator.set_state(new_state)


_KERNELS = {"rand": "check_uniform_bounds", "randn": "normal_kernel_cpu"}


def _float_dtype(dtype, op):
    d = dtype or dt.get_default_dtype()
    if not d.is_floating_point:
        raise NotImplementedError(f"\"{_KERNELS[op]}\" not implemented for '{dt.tname(d)}' "
                                  f"({op} needs a floating point dtype)")
    dt.refuse_chalf(_KERNELS[op], d)        # (float8 has no random kernels)
    return d


def _draw_device(device, out):
    """The device a factory draws on (out='s device wins), or None for the cpu."""
    from ._device_random import on_device
    return on_device(out._device if out is not None else device)


def _drawn(spec, shape, d, dev, generator, requires_grad):
    """A device draw of spec = (kind, params) as a new tensor."""
    from ._device_random import draw
    if dev.type == "meta":        # nothing drawn: the generator does not advance
        return _made(shape, None, d, dev, requires_grad)
    t = wrap(draw(spec[0], shape, d, dev, spec[1], generator), d)
    if requires_grad:
        t._set_requires_grad(True)
    return t


def _complex_draw(fill, size, generator, out, dtype, device, requires_grad, kw, *params):
    """rand/randn of a complex dtype as torch draws it: the real and imaginary parts are
    consecutive draws of the real dtype (randn scaled by 1/sqrt(2): E|z|^2 = 1)."""
    d = dtype or out._dtype
    shape = _sizes("randn", size, kw.pop("size", None))
    r = empty(*(tuple(shape) + (2,)), dtype=d.to_real(),
              device=out._device if out is not None else device)
    fill(r, *params, generator)
    from .ops_shape import view_as_complex
    z = view_as_complex(r)
    if requires_grad:
        z._set_requires_grad(True)
    return _into(out, z)


def _is_complex_request(dtype, out):
    d = dtype or (out._dtype if out is not None else None)
    return d is not None and d.is_complex


def rand(*size, generator=None, out=None, dtype=None, layout=None, device=None,
         requires_grad=False, pin_memory=False, **kw):
    if _is_complex_request(dtype, out):
        return _complex_draw(uniform_, size, generator, out, dtype, device, requires_grad, kw,
                             0.0, 1.0)
    d = _float_dtype(dtype or (out._dtype if out is not None else None), "rand")
    shape = _sizes("rand", size, kw.pop("size", None))
    dev = _draw_device(device, out)
    if dev is not None:
        t = _drawn(("uniform", (0.0, 1.0)), shape, d, dev, generator, requires_grad)
    else:
        t = _finish(_gen(generator).uniform(shape, d), d, device, requires_grad)
    if out is None and generator is None:
        _replayable_draw(t, lambda: rand(shape, dtype=d, device=device))
    return _into(out, t)


def randn(*size, generator=None, out=None, dtype=None, layout=None, device=None,
          requires_grad=False, pin_memory=False, **kw):
    if _is_complex_request(dtype, out):
        return _complex_draw(normal_, size, generator, out, dtype, device, requires_grad, kw,
                             0.0, 1.0 / math.sqrt(2.0))
    d = _float_dtype(dtype or (out._dtype if out is not None else None), "randn")
    shape = _sizes("randn", size, kw.pop("size", None))
    dev = _draw_device(device, out)
    if dev is not None:
        t = _drawn(("normal", (0.0, 1.0)), shape, d, dev, generator, requires_grad)
    else:
        t = _finish(_gen(generator).normal(shape, d), d, device, requires_grad)
    if out is None and generator is None:
        _replayable_draw(t, lambda: randn(shape, dtype=d, device=device))
    return _into(out, t)


def _replayable_draw(t, again):
    """Under compile(): t, just drawn from the default generator, is a draw a replay repeats
    by calling again() in trace order (as dropout masks are); a replay is allowed only when
    again() from the generator's state before the trace gives the same values
    (_compile.replay._check_draws)."""
    tr = STATE.tracer
    if tr is not None:
        tr.note_draw(t._data, t._dtype, lambda: again()._data)


def randint(low=0, high=None, size=None, *, generator=None, out=None, dtype=None, layout=None,
            device=None, requires_grad=False):
    if size is None:          # randint(high, size) or randint(high, size=...)
        if high is None or isinstance(high, int):
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    elif high is None:        # randint(high, size=...)
        low, high = 0, low
    if high is None:
        raise TypeError("randint() missing required argument 'high'")
    low, high = (v.item() if isinstance(v, Tensor) and v.ndim == 0 else v for v in (low, high))
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (low, high)) \
            or not isinstance(size, (tuple, list)):
        # PyTorch's overload error (size must be a sequence: randint(0, 10, 3) is refused)
        tail = ("Tensor out = None, torch.dtype dtype = None, torch.layout layout = None, "
                "torch.device device = None, bool pin_memory = False, bool requires_grad = False)")
        forms = "".join(f" * ({h}, tuple of ints size, *, {g}{tail}\n"
                        for h in ("int high", "int low, int high")
                        for g in ("torch.Generator generator, ", ""))
        raise TypeError(f"randint() received an invalid combination of arguments - got "
                        f"({type(low).__name__}, {type(high).__name__}, "
                        f"{type(size).__name__}), but expected one of:\n{forms}")
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= "
                           f"to={high}")
    d = dtype or dt.int64
    _check_from_to(d, low, high)
    dev = _draw_device(device, None)
    if dev is not None:
        return _drawn(("integers", (low, high - low)), _shape(tuple(size)), d, dev, generator,
                      requires_grad)
    arr = _gen(generator).integers(_shape(tuple(size)), low, high)
    return _finish(arr.astype(d.np), d, device, requires_grad)


def _check_from_to(d, low, high):
    """PyTorch's check_from_to_in_range for an integer dtype: both ends must fit it."""
    if d.is_complex:
        raise RuntimeError("check_random_bounds handles only integral, floating-point and boolean "
                           f"types (got {d})")
    if d.category < 2:
        lo, hi = (0, 1) if d is dt.bool_ else (int(np.iinfo(d.np).min), int(np.iinfo(d.np).max))
        if not lo <= low <= hi:
            raise RuntimeError(f"from is out of bounds for {dt.CPP_NAME[d.name]}")
        if not lo <= high - 1 <= hi:
            raise RuntimeError(f"to - 1 is out of bounds for {dt.CPP_NAME[d.name]}")


def randperm(n, *, generator=None, out=None, dtype=None, layout=None, device=None,
             requires_grad=False):
    d = dtype or dt.int64
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise TypeError(f"randperm(): argument 'n' (position 1) must be int, not "
                        f"{type(n).__name__}")
    if n < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
    if d is dt.bool_ or d.is_complex or d.barebones:
        raise NotImplementedError(f"\"randperm\" not implemented for '{dt.tname(d)}'")
    if n > 0:
        int_fill(n - 1, d)      # the largest value must fit the dtype
    dev = _draw_device(device, None)
    if dev is not None:     # the order of n uniform float64 keys drawn on the device
        from .ops_sort import argsort
        keys = _drawn(("uniform", (0.0, 1.0)), (n,), dt.float64, dev, generator, False)
        r = argsort(keys).to(d)
        return r._set_requires_grad(True) if requires_grad else r
    return _finish(_gen(generator).randperm(n).astype(d.np), d, device, requires_grad)


_LIKE_TAIL = ("torch.memory_format memory_format = None, torch.dtype dtype = None, "
              "torch.layout layout = None, torch.device device = None, bool pin_memory = False, "
              "bool requires_grad = False)")


def _random_like_error(op, given, heads):
    """PyTorch's TypeError for a random *_like call no overload takes: `given` names the
    arguments passed (types, then name=type), `heads` the forms' arguments after input (each
    form with and without a generator)."""
    forms = "".join(f" * (Tensor input{h}, *, {g}{_LIKE_TAIL}\n" for h in heads
                    for g in ("torch.Generator generator, ", ""))
    return TypeError(f"{op}() received an invalid combination of arguments - got "
                     f"({', '.join(['Tensor'] + given)}), but expected one of:\n{forms}")


def _arg_type(v):
    return "Tensor" if isinstance(v, Tensor) else "torch.dtype" if isinstance(v, dt.DType) \
        else type(v).__name__


def _check_like_format(op, memory_format, pos, heads):
    if memory_format is not None and not isinstance(memory_format, _mf.memory_format):
        raise _random_like_error(op, [_arg_type(a) for a in pos] +
                                 [f"memory_format={_arg_type(memory_format)}"], heads)


def _random_like(input, dtype, device, memory_format):
    """An uninitialised result laid out as empty_like lays it out (preserve_format: a dense
    input's strides; or memory_format's layout) for an in-place draw, which walks it in memory
    order as PyTorch's does (and refuses a dtype its kernel lacks, as PyTorch's does)."""
    return empty_like(input, dtype=_like(input, dtype), device=_like_dev(input, device),
                      memory_format=memory_format)


def rand_like(input, *, generator=None, dtype=None, layout=None, device=None,
              requires_grad=False, pin_memory=False, memory_format=None):
    if input.is_nested:       # framework.nested: the values buffer's draws
        return input._on_values(lambda v: rand_like(v, generator=generator, dtype=dtype,
                                                    device=device, requires_grad=requires_grad))
    _check_like_format("rand_like", memory_format, (), ("",))
    t = uniform_(_random_like(input, dtype, device, memory_format), generator=generator)
    if generator is None:
        _replayable_draw(t, lambda: uniform_(empty_like(t)))
    return t._set_requires_grad(True) if requires_grad else t


def randn_like(input, *, generator=None, dtype=None, layout=None, device=None,
               requires_grad=False, pin_memory=False, memory_format=None):
    if input.is_nested:       # framework.nested: the values buffer's draws
        return input._on_values(lambda v: randn_like(v, generator=generator, dtype=dtype,
                                                     device=device, requires_grad=requires_grad))
    _check_like_format("randn_like", memory_format, (), ("",))
    t = normal_(_random_like(input, dtype, device, memory_format), generator=generator)
    if generator is None:
        _replayable_draw(t, lambda: normal_(empty_like(t)))
    return t._set_requires_grad(True) if requires_grad else t


_RANDINT_LIKE = (", int low, int high", ", Tensor high", ", int high")


def randint_like(input, low=0, high=None, *, generator=None, dtype=None, layout=None,
                 device=None, requires_grad=False, pin_memory=False, memory_format=None):
    pos = (low,) if high is None else (low, high)
    _check_like_format("randint_like", memory_format, pos, _RANDINT_LIKE)
    if high is None:
        low, high = 0, low
    if isinstance(high, Tensor) and high.ndim != 0:
        raise RuntimeError("high must be a scalar tensor and on CPU")
    low, high = (v.item() if isinstance(v, Tensor) and v.ndim == 0 else v for v in (low, high))
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (low, high)):
        raise _random_like_error("randint_like", [_arg_type(a) for a in pos], _RANDINT_LIKE)
    t = random_(_random_like(input, dtype, device, memory_format),
                int(low), int(high), generator)
    return t._set_requires_grad(True) if requires_grad else t


def normal(mean=0.0, std=1.0, size=None, *, generator=None, out=None, dtype=None, device=None,
           requires_grad=False):
    tens = [x for x in (mean, std) if isinstance(x, Tensor)]
    m = mean._data if isinstance(mean, Tensor) else mean
    s = std._data if isinstance(std, Tensor) else std
    if size is not None:
        shape = _shape(tuple(size))
    else:
        shape = tuple(np.broadcast_shapes(tuple(np.shape(m)), tuple(np.shape(s))))
    if size is None and not tens:
        raise TypeError("normal(): with a float mean and a float std the size argument is required")
    from ._device_ops import host
    sh = host(s) if isinstance(std, Tensor) else s
    if np.any(np.asarray(sh) < 0):
        if isinstance(std, Tensor):
            raise RuntimeError("normal expects all elements of std >= 0.0")
        check_std(sh)
    d = dtype or (mean._dtype if isinstance(mean, Tensor) else std._dtype if isinstance(std, Tensor)
                  else dt.get_default_dtype())
    # PyTorch fills an output of dtype d with normal_: integer and bool outputs are refused
    dt.refuse_barebones("normal_kernel_cpu", d)
    if not (d.is_floating_point or d.is_complex):
        raise NotImplementedError(f"\"normal_kernel_cpu\" not implemented for '{dt.tname(d)}'")
    dev = _draw_device(tens[0].device if tens else device, None)
    if dev is not None:
        if tens:            # a standard normal on the device, then mean + std * z there
            from .autograd import no_grad
            with no_grad():     # in the output's dtype (not promoted by std's), no history,
                # as PyTorch's output.mul_(std).add_(mean) and the cpu path
                r = _drawn(("normal", (0.0, 1.0)), shape, d, dev, generator, False)
                r = r.mul_(std).add_(mean)
        else:
            r = _drawn(("normal", (float(mean), float(std))), shape, d, dev, generator, False)
        return r._set_requires_grad(True) if requires_grad else r
    # PyTorch's order: N(mean, std) for two floats, N(0, std) + mean for a tensor mean and a
    # float std, else N(0, 1) * std + mean, in the output's dtype
    g = _gen(generator)
    if not tens:
        arr = g.normal(shape, d, float(mean), float(std))
    elif not isinstance(std, Tensor):
        arr = g.normal(shape, d, 0.0, float(std)) + np.asarray(m, d.np)
    else:
        arr = g.normal(shape, d) * np.asarray(s, d.np) + np.asarray(m, d.np)
    return _finish(np.asarray(arr).astype(d.np), d, device, requires_grad)


def bernoulli(input, p=None, *, generator=None, out=None):
    dt.refuse_barebones("bernoulli_tensor_cpu_self_", input._dtype)
    if not input._dtype.is_floating_point:
        raise NotImplementedError(f"\"bernoulli_tensor_cpu_p_\" not implemented for "
                                  f"'{dt.tname(input._dtype)}' (bernoulli needs probabilities as a "
                                  f"floating point tensor)")
    if input._device.type == "meta":      # (no probabilities to check or draw from)
        return _into(out, empty_like(input))
    from ._device_ops import host
    probs = host(input._data) if p is None else np.full(input._data.shape, p)
    if np.any((probs < 0) | (probs > 1)):
        raise RuntimeError("bernoulli: Expected p_in >= 0 && p_in <= 1 to be true, but got false.")
    if input._device.type != "cpu":       # the device's uniform draw below the probabilities
        return empty_like(input).bernoulli_(input if p is None else p, generator=generator)
    g = _gen(generator)     # (PyTorch: float32 uniforms per element, float64 for a float p)
    arr = g.bernoulli_per_element(probs) if p is None else g.bernoulli(input._data.shape, p)
    return wrap(arr.astype(input._dtype.np), input._dtype)


# poisson and multinomial draw on the host from the cpu generator for any device (their
# samplers are NumPy's); a device input's result goes back to its device


def poisson(input, generator=None):
    """PyTorch's sample_poisson element by element (equal to its draws for a seed on cpu)."""
    from .distributions._samplers import poisson as _poisson
    return _poisson(input, generator)


def multinomial(input, num_samples, replacement=False, *, generator=None, out=None):
    """PyTorch's cpu algorithm on its stream, so a seed gives torch's indices: without
    replacement (or one sample) the top-k of p / Exp(1) draws (an exponential race); with
    replacement a binary search of one float64 uniform per sample in the row's normalised
    cumulative sums (accumulated in the input's float type)."""
    from ._device_ops import host
    if not input._dtype.is_floating_point:
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: "
                           f"{dt.tname(input._dtype)}")
    p = np.asarray(host(input._data))
    if p.ndim not in (1, 2):
        raise RuntimeError(f"prob_dist must be 1 or 2 dim (multinomial got shape "
                           f"{list(input.shape)})")
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    rows = p.reshape(-1, p.shape[-1])
    if not replacement and num_samples > rows.shape[1]:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without "
                           "replacement")
    bad = (rows < 0) | ~np.isfinite(rows)
    if np.any(bad):
        if replacement and num_samples > 1:
            # PyTorch's with-replacement kernel checks entry by entry: val >= 0 (NaN fails
            # it too), then finiteness
            v = rows.reshape(-1)[np.argmax(bad.reshape(-1))]
            raise RuntimeError("invalid multinomial distribution (encountering probability "
                               + ("entry = infinity or NaN)" if v == np.inf else "entry < 0)"))
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    if np.any(rows.astype(np.float64).sum(-1) <= 0):
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    cd = np.float64 if input._dtype is dt.float64 else np.float32
    rows = rows.astype(cd)
    stream = _gen(generator)
    if not replacement or num_samples == 1:
        q = stream.exponential(rows.shape, 1.0).astype(cd)
        q = (rows / q).astype(cd)
        if num_samples == 1:
            res = np.argmax(q, axis=1)[:, None]
        else:       # topk: largest first (ties: the lower index first)
            res = np.argsort(-q, axis=1, kind="stable")[:, :num_samples]
    else:
        res = np.empty((rows.shape[0], num_samples), np.int64)
        for i, row in enumerate(rows):       # one row at a time: the stream's order
            cum = np.cumsum(row, dtype=cd)
            total = cum[-1]
            if total > 0:
                cum = (cum / total).astype(cd)
            cum[-1] = 1
            u = (stream.random64(num_samples) & np.uint64((1 << 53) - 1)).astype(
                np.float64) * 2.0 ** -53
            res[i] = np.searchsorted(cum.astype(np.float64), u, side="left")
    res = res.astype(np.int64).reshape(p.shape[:-1] + (num_samples,))
    r = _finish(res, dt.int64, input._device, False)
    if out is not None:
        from .ops_math import write_out
        return write_out(r, out)
    return r


# in-place random fills used by nn.init and Tensor methods: on the cpu drawn from the NumPy
# generator; on a device by the device's Philox kernels into the tensor's own storage
def _fill(t, values):
    if getattr(type(values), "vmap_levels", None) is not None:    # vmap randomness="different"
        from .func.vmap import fill_draw
        return fill_draw(t, values)
    a = t._data
    if type(a) is not np.ndarray:
        from ._device_ops import array_device, to_device
        dev = array_device(a)
        if dev.type == "cuda":            # CuPy takes no host arrays in setitem: upload first
            values = to_device(np.asarray(values, dtype=a.dtype), dev)
    a[...] = values
    t._bump()
    return t


def _drawn_in_memory_order(t, draw):
    """draw(shape) for a cpu tensor's elements in PyTorch's order: TensorIterator walks a
    non-contiguous output in memory order (dims by decreasing stride), so a transposed tensor
    gets the values a contiguous one would, in storage order. Laid out logically."""
    a = t._data
    if (type(a) is not np.ndarray or a.ndim < 2 or a.flags.c_contiguous or
            _dispatch.VMAP is not None):
        return draw(tuple(a.shape))
    perm = sorted(range(a.ndim), key=lambda i: -abs(a.strides[i]) if a.shape[i] > 1 else 0)
    vals = np.asarray(draw(tuple(a.shape[i] for i in perm)))
    return np.transpose(vals, np.argsort(perm))


def _cpu_contiguous(t):
    a = t._data
    return type(a) is not np.ndarray or a.flags.c_contiguous


def _device_fill(t, kind, params, generator):
    from ._device_random import fill_
    return fill_(t, kind, params, generator)


def _complex_fill(t, fill, p0, p1, generator):
    from ._dispatch import STATE
    from .ops_shape import view_as_complex, view_as_real
    from .autograd import no_grad
    if STATE.tracer is None and _dispatch.VMAP is None and type(t._data) is np.ndarray and \
            not t._data.flags.c_contiguous:
        # PyTorch draws into view_as_real(t): a non-contiguous tensor's parts in memory order
        # (randn: one value at a time, as for any non-contiguous tensor)
        with no_grad():
            fill(view_as_real(t), p0, p1, generator)
        return t
    r = empty(*(tuple(t.shape) + (2,)), dtype=t._dtype.to_real(), device=t._device)
    fill(r, p0, p1, generator)
    with no_grad():
        if STATE.tracer is None:
            t._data[...] = view_as_complex(r)._data
            t._bump()
        else:
            t.copy_(view_as_complex(r))
    return t


def _g(x):
    """A number as PyTorch's messages print a double (C++ stream: 6 significant digits, no
    trailing .0)."""
    return f"{x:g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


def check_uniform(a, b):
    if a > b:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found "
                           f"from={_g(a)} > to={_g(b)}")


def check_std(std):
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {_g(std)}")


def _float_kernel(kernel, t):
    """PyTorch's error for a floating-point sampling kernel on an integer or bool tensor."""
    dt.refuse_barebones(kernel, t._dtype)
    if not (t._dtype.is_floating_point or t._dtype.is_complex):
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{dt.tname(t._dtype)}'")


def uniform_(t, a=0.0, b=1.0, generator=None):
    _float_kernel("check_uniform_bounds", t)        # (PyTorch: the dtype before the bounds)
    check_uniform(a, b)
    if t._dtype.is_complex:     # torch: both parts drawn from [a, b), interleaved
        return _complex_fill(t, uniform_, a, b, generator)
    if t._device.type != "cpu":
        return _device_fill(t, "uniform", (float(a), float(b) - float(a)), generator)
    g = _gen(generator)
    return _fill(t, _drawn_in_memory_order(t, lambda sh: g.uniform(sh, t._dtype, a, b)))


def normal_(t, mean=0.0, std=1.0, generator=None):
    check_std(std)                                  # (PyTorch: std before the dtype)
    _float_kernel("normal_kernel_cpu", t)
    if t._dtype.is_complex:     # torch: each part N(mean, std^2 / 2)
        return _complex_fill(t, normal_, mean, std / math.sqrt(2.0), generator)  # (torch's)
    if t._device.type != "cpu":
        return _device_fill(t, "normal", (float(mean), float(std)), generator)
    g = _gen(generator)     # (PyTorch: one value at a time on a non-contiguous tensor)
    kw = {} if _cpu_contiguous(t) or _dispatch.VMAP is not None else {"serial": True}
    return _fill(t, _drawn_in_memory_order(t, lambda sh: g.normal(sh, t._dtype, mean, std, **kw)))


def bernoulli_(t, p=0.5, generator=None):
    if not isinstance(p, Tensor) and not 0 <= p <= 1:
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={_g(p)}")
    dt.refuse_barebones("bernoulli_tensor_cpu_self_" if isinstance(p, Tensor) else
                        "bernoulli_scalar_cpu_", t._dtype)
    if t._device.type != "cpu":
        if not isinstance(p, Tensor):
            return _device_fill(t, "bernoulli", (float(p),), generator)
        # probabilities per element: the same float32 uniform the scalar form compares, then
        # u < p by an eager kernel on the device
        from ._device_random import draw
        u = wrap(draw("uniform", t._data.shape, dt.float32, t._device, (0.0, 1.0), generator),
                 dt.float32)
        t._data[...] = (u < p.to(t._device)).to(t._dtype)._data
        t._bump()
        return t
    if isinstance(p, Tensor):
        from ._device_ops import host
        pv = np.broadcast_to(host(p._data), t._data.shape)
        return _fill(t, _gen(generator).bernoulli_per_element(pv))
    g = _gen(generator)
    return _fill(t, _drawn_in_memory_order(t, lambda sh: g.bernoulli(sh, p)))


_DIGITS = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}


def random_(t, from_=None, to=None, generator=None):
    if to is None and from_ is None:
        dt.refuse_barebones("random_kernel_cpu", t._dtype)
        if t._dtype.is_complex:
            raise NotImplementedError(f"\"random_kernel_cpu\" not implemented for "
                                      f"'{dt.tname(t._dtype)}'")
    elif t._dtype.is_complex:
        raise RuntimeError("check_random_bounds handles only integral, floating-point and "
                           "boolean types")
    if to is None and from_ is None and t._device.type == "cpu":     # random_(): full range
        g = _gen(generator)
        return _fill(t, _drawn_in_memory_order(t, lambda sh: g.full_range(sh, t._dtype)))
    from_ = 0 if from_ is None else from_
    if to is None:      # PyTorch: [from, 2**digits] for floats, [from, max] for integers
        d = t._dtype
        to = (2 ** _DIGITS.get(d.name, 24) if d.is_floating_point else
              1 if d is dt.bool_ else int(np.iinfo(d.np).max)) + 1
    if from_ >= to:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got "
                           f"from={from_} >= to={to}")
    _check_from_to(t._dtype, from_, to)
    if t._device.type != "cpu":
        return _device_fill(t, "integers", (int(from_), int(to) - int(from_)), generator)
    g = _gen(generator)
    return _fill(t, _drawn_in_memory_order(t, lambda sh: g.integers(sh, from_, to)))


def exponential_(t, lambd=1.0, generator=None):
    if not lambd > 0:
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={_g(lambd)}")
    if not t._dtype.is_floating_point:
        raise RuntimeError(f"Exponential distribution is a continuous probability distribution. "
                           f"dtype must be a floating point but you specified "
                           f"{dt.tname(t._dtype)}")
    if t._device.type != "cpu" and t._dtype.is_floating_point:
        return _device_fill(t, "exponential", (float(lambd),), generator)
    g = _gen(generator)
    return _fill(t, _drawn_in_memory_order(t, lambda sh: g.exponential(sh, lambd)))


# ---- window functions (torch.hann_window, ...) -------------------------------------------------
# PyTorch's TensorFactories.cpp: periodic windows are the symmetric window of length N + 1
# without its last point; N == 0 is empty and N == 1 is [1.]. Values are computed in the
# window's dtype with torch's operation order (float32 windows round as torch's do).

def _window(name, window_length, periodic, dtype, device, requires_grad, body):
    d = dtype or dt.get_default_dtype()
    if d.is_complex:
        raise NotImplementedError(f"\"arange_cpu\" not implemented for '{dt.tname(d)}'")
    if not d.is_floating_point:
        raise RuntimeError(
            f"{name} expects floating point dtypes, got: TensorOptions("
            f"dtype={dt.CPP_NAME[d.name]}, "
            f"device={canonical(device) if device is not None else 'cpu'}, layout=Strided "
            f"(default), requires_grad=false (default), pinned_memory=false, "
            f"memory_format=(nullopt))")
    n = int(window_length)
    if n < 0:
        raise RuntimeError(f"{name} requires non-negative window_length, got window_length={n}")
    if n <= 1:
        arr = np.ones(n, dtype=np.float64)
    else:
        m = n + 1 if periodic else n
        # numpy has no bfloat16 arithmetic: such windows compute in float32, then round
        cd = d.np if d.name in ("float16", "float32", "float64") else np.dtype(np.float32)
        arr = body(m, cd)[:n]
    return _finish(np.asarray(arr).astype(d.np), d, device, requires_grad)


def _hamming_body(alpha, beta):
    def body(m, cd):
        k = np.arange(m, dtype=cd) * cd.type(2.0 * math.pi / (m - 1))
        return np.cos(k) * cd.type(-beta) + cd.type(alpha)
    return body


def hann_window(window_length, periodic=True, *, dtype=None, layout=None, device=None,
                requires_grad=False):
    return _window("hann_window", window_length, periodic, dtype, device, requires_grad,
                   _hamming_body(0.5, 0.5))


def hamming_window(window_length, periodic=True, alpha=0.54, beta=0.46, *, dtype=None,
                   layout=None, device=None, requires_grad=False):
    return _window("hamming_window", window_length, periodic, dtype, device, requires_grad,
                   _hamming_body(alpha, beta))


def blackman_window(window_length, periodic=True, *, dtype=None, layout=None, device=None,
                    requires_grad=False):
    def body(m, cd):
        k = np.arange(m, dtype=cd) * cd.type(math.pi / (m - 1))
        return (np.cos(k * cd.type(4)) * cd.type(0.08) - np.cos(k * cd.type(2)) * cd.type(0.5)
                + cd.type(0.42))
    return _window("blackman_window", window_length, periodic, dtype, device, requires_grad,
                   body)


def bartlett_window(window_length, periodic=True, *, dtype=None, layout=None, device=None,
                    requires_grad=False):
    def body(m, cd):
        k = np.arange(m, dtype=cd) * cd.type(2.0 / (m - 1))
        h = ((m - 1) >> 1) + 1                  # the falling half: 2 - k
        k[h:] = cd.type(2) - k[h:]
        return k
    return _window("bartlett_window", window_length, periodic, dtype, device, requires_grad,
                   body)


def kaiser_window(window_length, periodic=True, beta=12.0, *, dtype=None, layout=None,
                  device=None, requires_grad=False):
    def body(m, cd):
        # I0(beta sqrt(1 - ((k - a) / a)^2)) / I0(beta), a = (m - 1) / 2, in float64
        a = (m - 1) / 2.0
        k = np.arange(m, dtype=np.float64)
        r = np.i0(beta * np.sqrt(np.abs(1 - ((k - a) / a) ** 2))) / np.i0(beta)
        return r.astype(cd)
    return _window("kaiser_window", window_length, periodic, dtype, device, requires_grad,
                   body)


def empty_strided(size, stride, *, dtype=None, layout=None, device=None, requires_grad=False,
                  pin_memory=False):
    """An uninitialised tensor with the given size and element strides over a storage of just
    the extent they need (stride 0 and gaps allowed, as torch)."""
    from compiler.ops.layout import _as_strided_check, as_strided_extent
    size, stride = tuple(_shape((size,))), tuple(_shape((stride,)))
    _as_strided_check("empty_strided", size, stride, 0)
    d = dtype or dt.get_default_dtype()
    dev = canonical(device)
    if dev.type != "cpu":          # device memory is allocated contiguous (a limit of Kiln)
        return _made(size, None, d, dev, requires_grad)
    store = np.empty(_max2(as_strided_extent(size, stride, 0), 1), d.np)
    arr = np.lib.stride_tricks.as_strided(store, size, tuple(s * d.np.itemsize for s in stride))
    return _finish(arr, d, dev, requires_grad)


def _max2(a, b):
    return a if a >= b else b


def scalar_tensor(s, *, dtype=None, layout=None, device=None, requires_grad=False,
                  pin_memory=False):
    """A 0-d tensor holding s, of the default float dtype unless dtype says otherwise."""
    if isinstance(s, Tensor):
        s = s.item()
    import builtins
    cx = isinstance(s, builtins.complex)
    d = dtype or (dt.complex128 if cx and dt.get_default_dtype() is dt.float64 else
                  dt.complex64 if cx else dt.get_default_dtype())
    return _finish(np.array(s, dtype=d.np), d, device, requires_grad)


def frombuffer(buffer, *, dtype, count=-1, offset=0, requires_grad=False):
    """A 1-d tensor over the memory of a Python buffer object (it shares the memory)."""
    mv = memoryview(buffer)
    n = mv.nbytes
    isz = dtype.itemsize
    if n == 0 or count == 0:
        raise ValueError(f"both buffer length ({n}) and count ({count}) must not be 0")
    if offset < 0 or offset >= n:
        raise ValueError(f"offset ({offset} bytes) must be non-negative and no greater than buffer "
                         f"length ({n} bytes) minus 1")
    if count < 0:
        if (n - offset) % isz:
            raise ValueError(f"buffer length ({n - offset} bytes) after offset ({offset} bytes) "
                             f"must be a multiple of element size ({isz})")
        count = (n - offset) // isz
    elif offset + count * isz > n:
        raise ValueError(f"requested buffer length ({count} * {isz} bytes) after offset ({offset} "
                         f"bytes) must not be greater than actual buffer length ({n} bytes)")
    if mv.readonly:
        import warnings
        warnings.warn("The given buffer is not writable, and PyTorch does not support non-writable "
                      "tensors. This means you can write to the underlying (supposedly "
                      "non-writable) buffer using the tensor. You may want to copy the buffer to "
                      "protect its data or make it writable before converting it to a tensor.",
                      UserWarning, stacklevel=2)
    if dtype is dt.complex32:       # float16 pairs, read into complex64 storage (not shared)
        arr = dt.chalf_from_pairs(np.frombuffer(buffer, np.float16, 2 * count,
                                                offset).reshape(-1, 2))
    elif dtype in dt.FLOAT8:        # bytes decoded into float32 storage (not shared)
        arr = dt.FLOAT8[dtype].decode(np.frombuffer(buffer, np.uint8, count, offset))
    else:
        arr = np.frombuffer(buffer, dtype=dtype.np, count=count, offset=offset)
    t = wrap(arr, dtype)
    if requires_grad:
        t._set_requires_grad(True)
    return t


# ---- cauchy_, geometric_, log_normal_ (cpu: PyTorch's numbers for a seed) ------------------------

def _device_transform(t, draw, fn):
    """A device tensor: draw on its generator, then transform with eager ops on the device."""
    from .autograd import no_grad
    draw(t)
    with no_grad():
        t.copy_(fn(t))
    return t


def cauchy_(t, median=0.0, sigma=1.0, generator=None):
    if not t._dtype.is_floating_point:
        raise RuntimeError(f"Cauchy distribution is a continuous probability distribution. dtype "
                           f"must be a floating point but you specified "
                           f"{dt.CPP_NAME[t._dtype.name]}")
    if not sigma > 0:
        raise RuntimeError(f"cauchy_ expects sigma > 0.0, but found sigma={_g(sigma)}")
    if t._device.type != "cpu":
        return _device_transform(t, lambda x: uniform_(x, 0.0, 1.0, generator),
                                 lambda u: ((u - 0.5) * math.pi).tan() * sigma + median)
    from ._cpu_random import cauchy
    g = _gen(generator)
    return _fill(t, _drawn_in_memory_order(t, lambda sh: cauchy(g, sh, t._dtype, median, sigma)))


def geometric_(t, p, generator=None):
    if not 0 < p < 1:                               # (PyTorch: p before the dtype)
        raise RuntimeError(f"geometric_ expects p to be in (0, 1), but got p={_g(p)}")
    if t._dtype is dt.bool_ or t._dtype.is_complex or t._dtype.barebones:
        raise NotImplementedError(f"\"geometric_cpu\" not implemented for '{dt.tname(t._dtype)}'")
    if t._device.type != "cpu":
        scratch = empty(t.shape, dtype=dt.float64 if t._dtype is dt.float64 else dt.float32,
                        device=t._device)
        uniform_(scratch, 0.0, 1.0, generator)
        from .autograd import no_grad
        with no_grad():
            t.copy_((scratch.log() / math.log1p(-p)).ceil())
        return t
    from ._cpu_random import geometric
    g = _gen(generator)
    return _fill(t, _drawn_in_memory_order(t, lambda sh: geometric(g, sh, t._dtype, p)))


def log_normal_(t, mean=1.0, std=2.0, generator=None):
    if not t._dtype.is_floating_point:
        raise NotImplementedError(f"\"log_normal_cpu\" not implemented for '{dt.tname(t._dtype)}'")
    if not std > 0:
        raise RuntimeError(f"log_normal_ expects std > 0.0, but found std={_g(std)}")
    if t._device.type != "cpu":
        return _device_transform(t, lambda x: normal_(x, mean, std, generator), lambda z: z.exp())
    from ._cpu_random import log_normal
    g = _gen(generator)
    return _fill(t, _drawn_in_memory_order(
        t, lambda sh: log_normal(g, sh, t._dtype, mean, std)))


# ---- empty_permuted, DLPack, the legacy Tensor.new ---------------------------------------------

def empty_permuted(size, physical_layout, *, dtype=None, layout=None, device=None,
                   requires_grad=False, pin_memory=False):
    """Uninitialised memory laid out in the order physical_layout (outermost first), viewed with
    the logical dims `size`: empty_permuted((2, 3, 4), (2, 0, 1)).stride() == (3, 1, 6)."""
    size = tuple(int(s) for s in size)
    perm = tuple(int(p) for p in physical_layout)
    if len(perm) != len(size):
        raise RuntimeError(f"Number of dimensions in size does not match the length of the "
                           f"physical_layout; i.e. len(size) = {len(size)} is not equal to "
                           f"len(physical_layout) = {len(perm)}")
    if sorted(perm) != list(range(len(size))):
        raise RuntimeError(f"Dimension out of range or repeated in physical_layout "
                           f"{list(perm)} for a tensor of {len(size)} dimensions")
    d = dtype or dt.get_default_dtype()
    phys = np.zeros(tuple(size[p] for p in perm), d.np)
    inv = tuple(perm.index(k) for k in range(len(size)))
    return _finish(phys.transpose(inv), d, device, requires_grad)


class _Capsule:
    """A bare DLPack capsule given the producer protocol NumPy's from_dlpack asks for."""

    def __init__(self, capsule):
        self.capsule = capsule

    def __dlpack__(self, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        return (1, 0)


def from_dlpack(ext_tensor):
    """A tensor sharing the memory of any DLPack producer (an object with __dlpack__, or a
    DLPack capsule): cpu producers through NumPy, CUDA ones through CuPy."""
    if isinstance(ext_tensor, Tensor):
        t = wrap(ext_tensor._data.view(), ext_tensor._dtype)
        t._base = ext_tensor._base if ext_tensor._base is not None else ext_tensor
        return t
    src = ext_tensor if hasattr(ext_tensor, "__dlpack__") else _Capsule(ext_tensor)
    dev = src.__dlpack_device__()[0] if hasattr(src, "__dlpack_device__") else 1
    if int(dev) == 2:       # kDLCUDA
        from runtime import cuda as _cuda
        arr = _cuda._cupy().from_dlpack(src)
        return wrap(arr, dt.from_numpy(arr.dtype))
    if int(dev) != 1:
        raise RuntimeError(f"from_dlpack: unsupported DLPack device type {int(dev)} (Kiln takes "
                           "cpu and CUDA producers)")
    try:
        arr = np.from_dlpack(src)
    except ValueError as e:      # NumPy renames a capsule it consumed ("used_dltensor")
        if "incorrect name" not in str(e):
            raise
        raise RuntimeError("from_dlpack received an invalid capsule. Note that DLTensor "
                           "capsules can be consumed only once, so you might have already "
                           "constructed a tensor from it once.") from None
    if not arr.flags.writeable and isinstance(src, _Capsule):
        arr = np.asarray(_WritableView(arr))    # (as torch: a legacy capsule's memory is writable)
    return wrap(arr, dt.from_numpy(arr.dtype))


class _WritableView:
    """NumPy imports a legacy (unversioned) DLPack capsule read-only, as that format has no
    read-only flag; this re-exposes the same memory writable, keeping the import alive."""

    def __init__(self, arr):
        self.arr = arr
        self.__array_interface__ = dict(arr.__array_interface__,
                                        data=(arr.__array_interface__["data"][0], False))


def _dlpack_(self, *, stream=None, max_version=None, dl_device=None, copy=None):
    if self.requires_grad:
        raise BufferError("Can't export tensors that require gradient, use tensor.detach()")
    kw = {}
    if max_version is not None:
        kw["max_version"] = max_version
    if dl_device is not None:
        kw["dl_device"] = dl_device
    if copy is not None:
        kw["copy"] = copy
    if stream is not None and self._device.type == "cuda":
        kw["stream"] = stream
    return self._data.__dlpack__(**kw)


def _dlpack_device_(self):
    if self._device.type == "cuda":
        return (2, self._device.index or 0)
    return (1, 0)


def legacy_new(self, *args, device=None, **kwargs):
    """Tensor.new(...): the legacy constructor with self's dtype (and device unless given):
    sizes give uninitialised memory, a sequence gives a copy, a tensor of that dtype is aliased."""
    if kwargs:
        raise TypeError(f"new() received an invalid combination of arguments - got "
                        f"{', '.join(f'{k}={type(v).__name__}' for k, v in kwargs.items())}, "
                        f"but expected (*size, *, Device device) or (object data, *, Device "
                        f"device) (Tensor.new takes no dtype: use new_tensor/new_empty)")
    dev = device if device is not None else self.device
    if len(args) == 1 and isinstance(args[0], Tensor):
        a = args[0]
        if a._dtype is not self._dtype:
            raise TypeError(f"expected {self._dtype} (got {a._dtype})")
        return from_dlpack(a)
    import builtins
    if len(args) == 1 and isinstance(args[0], (builtins.float, builtins.complex)):
        raise TypeError(f"new(): data must be a sequence (got {type(args[0]).__name__})")
    from .tensor import _legacy_new
    return _legacy_new(args, self._dtype, dev)
