"""Small torch.* functions with no op of their own: torch.slice_inverse, torch.hash_tensor (and
Tensor.hash_tensor), torch.from_file, torch.get_device_module, torch.is_distributed."""
import os

import numpy as np

from runtime import dtypes as dt
from ._dispatch import rename
from .tensor import Tensor

__all__ = ["slice_inverse", "hash_tensor", "from_file", "get_device_module", "is_distributed"]


def _need(op, name, pos, v, kind="Tensor"):
    ok = isinstance(v, Tensor) if kind == "Tensor" else isinstance(v, str)
    if not ok:
        got = "Tensor" if isinstance(v, Tensor) else type(v).__name__
        raise TypeError(f"{op}(): argument '{name}' (position {pos}) must be {kind}, not {got}")


def slice_inverse(input, src, dim=0, start=None, end=None, step=1):
    """ATen's slice_inverse (what functionalization records for the base of a slice): a view of
    input's storage with src's sizes, strides and offset; dim/start/end/step are not read."""
    _need("slice_inverse", "input", 1, input)
    _need("slice_inverse", "src", 2, src)
    out = input.as_strided(tuple(src.shape), tuple(src.stride()), src.storage_offset())
    return rename(out, "SliceInverseBackward0")


def _norm_dims(dim, ndim):
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if not dims:
        return tuple(range(ndim))
    n = max(ndim, 1)
    out = []
    for d in dims:
        if not -n <= d < n:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, "
                             f"{n - 1}], but got {d})")
        out.append(d % n)
    return tuple(out)


def hash_tensor(input, dim=None, *, keepdim=False, mode=0):
    """XOR of the elements' 64-bit patterns (floats as float64, integers and bools as int64),
    as uint64, over `dim` (all dims when None or empty)."""
    _need("hash_tensor", "input", 1, input)
    if mode != 0:
        raise RuntimeError(f"Unknown hash_tensor mode: {mode}")
    d = input.dtype
    if d.is_complex or d in (dt.uint16, dt.uint32, dt.uint64):
        raise NotImplementedError(f"\"xor_sum_cpu\" not implemented for '{dt.tname(d)}'")
    dims = _norm_dims(dim, input.ndim)
    if dim is None or (not isinstance(dim, int) and not tuple(dim)):
        if input.numel() == 0:
            raise RuntimeError("hash_tensor: Expected reduction dim to be specified for "
                               "input.numel() == 0. Specify the reduction dim with the 'dim' "
                               "argument.")
    for k in dims:
        if input.ndim and input.shape[k] == 0:
            raise IndexError(f"hash_tensor: Expected reduction dim {k} to have non-zero size.")
    from ._device_ops import host
    a = np.asarray(host(input.detach()._data))
    a = a.astype(np.float64 if d.is_floating_point else np.int64).view(np.uint64)
    axes = dims if input.ndim else ()
    r = np.bitwise_xor.reduce(a, axis=axes, keepdims=keepdim) if axes else a.copy()
    from .creation import from_numpy
    return from_numpy(np.array(r, dtype=np.uint64, order="C")).to(input.device)


Tensor.hash_tensor = lambda self, dim=None, *, keepdim=False, mode=0: \
    hash_tensor(self, dim, keepdim=keepdim, mode=mode)


def from_file(filename, shared=None, size=0, *, dtype=None, layout=None, device=None,
              pin_memory=False, requires_grad=False):
    """`size` elements of dtype read from a file through a memory map. shared=True: writes to
    the tensor reach the file (created, or grown with zeros, to fit); else copy-on-write."""
    _need("from_file", "filename", 1, filename, "str")
    from .creation import empty, from_numpy
    dtype = dt.get_default_dtype() if dtype is None else dtype
    size = int(size or 0)
    nbytes = size * dtype.itemsize
    if size == 0:
        t = empty(0, dtype=dtype)
    else:
        if shared:
            if nbytes < 0:
                raise RuntimeError(f"unable to mmap {nbytes} bytes from file <{filename}>: "
                                   f"Cannot allocate memory (12)")
            with open(filename, "ab") as f:          # create it, or grow it to fit
                have = f.seek(0, os.SEEK_END)
                if have < nbytes:
                    f.truncate(nbytes)
        elif not os.path.exists(filename):
            raise RuntimeError(f"unable to open file <{filename}> in read-only mode: No such "
                               f"file or directory (2)")
        have = os.path.getsize(filename)
        if nbytes < 0:
            raise RuntimeError(f"unable to mmap {nbytes} bytes from file <{filename}>: Cannot "
                               f"allocate memory (12)")
        if have < nbytes:
            raise RuntimeError(f"file <{filename}> size <{have}> is smaller than the required "
                               f"mapping size <{nbytes}>")
        if dtype.round is not None:
            # float8 / complex32 are held in wider arrays: their bytes are decoded into a copy,
            # which a shared mapping cannot write back
            if shared:
                raise NotImplementedError(f"from_file: Kiln cannot map torch.{dtype.name} "
                                          f"shared (its tensors hold wider values); use "
                                          f"shared=False")
            from .creation import frombuffer
            t = frombuffer(bytearray(np.fromfile(filename, np.uint8, nbytes).tobytes()),
                           dtype=dtype)
        else:
            mm = np.memmap(filename, dtype=dtype.np, mode="r+" if shared else "c",
                           shape=(size,))
            t = from_numpy(mm.view(np.ndarray))
    if device is not None:
        t = t.to(device)
    return t.requires_grad_(requires_grad) if requires_grad else t


def get_device_module(device=None):
    """The framework module of a device type (framework.cuda for 'cuda'); None: the current
    accelerator's, else framework.cpu."""
    import sys
    from runtime.device import Device
    if isinstance(device, Device):
        name = device.type
    elif isinstance(device, str):
        name = Device(device).type
    elif device is None:
        from . import accelerator
        acc = accelerator.current_accelerator()
        name = acc.type if acc is not None else "cpu"
    else:
        raise RuntimeError(f"Invalid value of device '{device}', expect torch.device, str, or "
                           f"None")
    pkg = __name__.rsplit(".", 1)[0]
    mod = sys.modules.get(f"{pkg}.{name}")
    if mod is None:
        raise RuntimeError(f"Device '{name}' does not have a corresponding module registered as "
                           f"'torch.{name}'.")
    return mod


def is_distributed(input):
    _need("is_distributed", "input", 1, input)
    return False



# ---- Tensor methods ------------------------------------------------------------------------------

_TYPE_META = {"float32": "float", "float64": "double", "float16": "c10::Half",
              "bfloat16": "c10::BFloat16", "int64": "long int", "int32": "int",
              "int16": "short int", "int8": "signed char", "uint8": "unsigned char",
              "bool": "bool", "complex64": "c10::complex<float>",
              "complex128": "c10::complex<double>"}


def type_meta_name(d):
    """A dtype as ATen's TypeMeta prints it in autograd's messages ('float', 'double')."""
    return _TYPE_META.get(d.name, d.name)


def _is_set_to(self, tensor):
    """True when both tensors view the same storage with the same offset, sizes and strides."""
    _need("is_set_to", "tensor", 1, tensor)
    from ._storage import UntypedStorage
    return (UntypedStorage._of_tensor(self) is UntypedStorage._of_tensor(tensor) and
            self.storage_offset() == tensor.storage_offset() and
            tuple(self.shape) == tuple(tensor.shape) and self.stride() == tensor.stride())


def _storage_type(self):
    """The legacy storage class of this tensor's dtype (torch.FloatStorage), None if it has
    none; warns, as TypedStorage is deprecated."""
    from . import _storage as st
    st._warn_typed_storage_removal(stacklevel=2)
    if self.device.type != "cpu":
        from . import cuda
        return getattr(cuda, st._LEGACY_NAME.get(self._dtype, ""), None) or None
    name = st._LEGACY_NAME.get(self._dtype)
    return st._LEGACY.get(name) if name in _LEGACY_WITH_TORCH else None


# the legacy classes torch 2.13 defines (none for float8, uint16/32/64)
_LEGACY_WITH_TORCH = {f"{n}Storage" for n in (
    "Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
    "ComplexFloat", "ComplexDouble", "QInt8", "QUInt8", "QInt32", "QUInt4x2", "QUInt2x4")}


def _module_load(self, other, assign=False):
    """How load_state_dict maps a state-dict value onto this parameter or buffer when
    swapping: other detached (assign), else self filled with other, detached."""
    if assign:
        return other.detach()
    return self.copy_(other).detach()


def _record_stream(self, stream):
    """Keeps the stream's queued work ahead of this memory's reuse: when the tensor's memory
    is freed, the stream is synchronized first. cpu tensors have no such kernel in torch."""
    from ._streams import Stream
    from ._storage import _root
    if not isinstance(stream, Stream):
        raise RuntimeError("unknown parameter type")
    if self.device.type == "cpu":
        raise NotImplementedError("Could not run 'aten::record_stream' with arguments from the "
                                  "'CPU' backend. This could be because the operator doesn't "
                                  "exist for this backend, or was omitted during the "
                                  "selective/custom build process (if using custom build).")
    import weakref
    weakref.finalize(_root(self), stream.synchronize)


def _grad_dtype_get(self):
    if self._node is not None:
        raise RuntimeError("grad_dtype can only be accessed on leaf tensors.")
    return self.__dict__.get("_grad_dtype", self._dtype)


def _grad_dtype_set(self, value):
    if self._node is not None:
        raise RuntimeError("grad_dtype can only be set on leaf tensors.")
    if value is not None and not isinstance(value, dt.DType):
        raise RuntimeError(f"grad_dtype must be a torch.dtype or None, but got "
                           f"{type(value).__name__}")
    g = self._grad
    if g is not None and value is not None and g._dtype is not value:
        raise RuntimeError(f"Cannot set grad_dtype to '{dt.tname(value)}' because there is "
                           f"already a gradient with dtype '{type_meta_name(g._dtype)}'. Please "
                           f"clear the gradient (.grad = None) before changing grad_dtype, or "
                           f"ensure the new grad_dtype matches the existing gradient's dtype.")
    self.__dict__["_grad_dtype"] = value


def _to_padded_tensor(self, padding, output_size=None):
    from .nested import _api
    if not getattr(self, "is_nested", False):
        raise NotImplementedError("Could not run 'aten::to_padded_tensor' with arguments from "
                                  "the 'CPU' backend. This could be because the operator "
                                  "doesn't exist for this backend, or was omitted during the "
                                  "selective/custom build process (if using custom build).")
    return _api.to_padded_tensor(self, padding, output_size)


Tensor.is_set_to = _is_set_to
Tensor.storage_type = _storage_type
Tensor.module_load = _module_load
Tensor.record_stream = _record_stream
Tensor.grad_dtype = property(_grad_dtype_get, _grad_dtype_set)
def _name_set(self, value):
    raise AttributeError("attribute 'name' of 'torch._C.TensorBase' objects is not writable")


Tensor.name = property(lambda self: None, _name_set, doc="None, as torch's.")
if not hasattr(Tensor, "to_padded_tensor"):       # (framework.nested may bind its own)
    Tensor.to_padded_tensor = _to_padded_tensor
