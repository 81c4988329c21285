"""Reading checkpoints that PyTorch's torch.save wrote (its zip format), safely.

A PyTorch checkpoint is a zip archive `<name>/data.pkl` + `<name>/data/<key>` (+ version and
byteorder records). data.pkl is a pickle whose tensors are calls of
torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks) on
storages named by persistent ids ('storage', torch.FloatStorage, key, location, numel); the raw
bytes of storage `key` are the record data/<key>. Dtypes without a typed storage class (uint16,
uint32, uint64) are saved as _rebuild_tensor_v3(storage, ..., hooks, dtype) on a
torch.storage.UntypedStorage, read in the dtype the rebuild names. Like
torch.load(weights_only=True) (the default since PyTorch 2.6), only an allowlist of globals may
be named: the tensor rebuilders (v2, v3) and the parameter ones, the typed and untyped storages,
dtypes, torch.Size, torch.device and OrderedDict.
Any other global (a pickled Module, an arbitrary class) refuses the file; nothing in it runs.
"""
import collections
import io
import pickle

import numpy as np

from runtime import dtypes as dt

# torch.FloatStorage & co.: one typed storage class per dtype, named by its scalar type
_STORAGES = {f"{dt.tname(d)}Storage": d for d in dt.ALL if not d.barebones}


class _StorageType:
    """What `torch.FloatStorage` & co. stand for while unpickling: the element dtype (None for
    torch.storage.UntypedStorage, whose tensors name their dtype)."""

    def __init__(self, dtype):
        self.dtype = dtype


class _Untyped:
    """An untyped storage's record, read once a rebuild names its dtype."""

    def __init__(self, read, key, location):
        self.read, self.key, self.location = read, key, location

    def typed(self, dtype):
        arr, dtype, base = self.read(dtype, self.key)
        return arr, dtype, self.location, base


def _tensor(storage, offset, size, stride, requires_grad):
    """The tensor a rebuild call names: `size`/`stride` elements of `storage` from `offset`.
    Tensors rebuilt from one storage are views of one base tensor (as torch.load: writes through
    one show in the others, and strides and storage_offset() are those that were saved)."""
    from ._dispatch import wrap
    arr, dtype, base = storage[0], storage[1], storage[3]
    n = 1
    for s in size:
        n *= s
    if n == 0:
        return _grad(wrap(np.zeros(tuple(size), arr.dtype), dtype), requires_grad)
    end = offset + 1 + sum((s - 1) * st for s, st in zip(size, stride))
    if offset < 0 or end > arr.size or any(st < 0 for st in stride):
        raise pickle.UnpicklingError(f"tensor of size {list(size)} and stride {list(stride)} "
                                     f"at offset {offset} exceeds its storage of {arr.size} "
                                     f"elements (corrupted checkpoint)")
    a = np.lib.stride_tricks.as_strided(arr[offset:], tuple(size),
                                        tuple(st * arr.itemsize for st in stride))
    t = wrap(a, dtype)
    t._base = base
    return _grad(t, requires_grad)


def _grad(t, requires_grad):
    if requires_grad:
        t.requires_grad_(True)
    return t


def _rebuild_parameter(data, requires_grad, hooks=None, state=None):
    from .nn.parameter import Parameter
    p = Parameter(data, requires_grad=requires_grad)
    for k, v in (state or {}).items():
        setattr(p, k, v)
    return p


def _allowed(map_location):
    import framework as torch
    from .serialization import place

    def rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None,
                       metadata=None):   # (torch._utils._rebuild_tensor_v2's arguments)
        if isinstance(storage, _Untyped):
            raise pickle.UnpicklingError("an untyped storage rebuilt without a dtype "
                                         "(corrupted checkpoint)")
        return place(_tensor(storage, offset, size, stride, requires_grad), storage[2],
                     map_location)

    def rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype,
                          metadata=None):
        if not isinstance(storage, _Untyped) or not isinstance(dtype, dt.DType):
            raise pickle.UnpicklingError("_rebuild_tensor_v3 of a typed storage or without a "
                                         "dtype (corrupted checkpoint)")
        return rebuild_tensor(storage.typed(dtype), offset, size, stride, requires_grad)
    import codecs
    a = {("collections", "OrderedDict"): collections.OrderedDict,
         ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
         ("torch._utils", "_rebuild_tensor_v3"): rebuild_tensor_v3,
         ("torch.storage", "UntypedStorage"): _StorageType(None),
         ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
         ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
         ("torch", "Size"): torch.Size, ("torch", "device"): torch.device,
         ("collections", "Counter"): collections.Counter, ("_codecs", "encode"): codecs.encode}
    for m in ("builtins", "__builtin__"):      # (protocol 2 names the builtins __builtin__)
        a.update({(m, "complex"): complex, (m, "set"): set, (m, "bytearray"): bytearray})
    for k, d in _STORAGES.items():
        a["torch", k] = _StorageType(d)
    for d in dt.ALL:
        a["torch", d.name] = d
    return a


class _Unpickler(pickle.Unpickler):
    def __init__(self, data, read_storage, map_location):
        super().__init__(io.BytesIO(data))
        self.read_storage = read_storage
        self.allowed = _allowed(map_location)

    def find_class(self, module, name):
        f = self.allowed.get((module, name))
        if f is None:
            raise pickle.UnpicklingError(
                f"Weights only load failed: the checkpoint names the global {module}.{name}, "
                f"which is not allowed (Kiln reads PyTorch checkpoints of tensors, containers "
                f"and state_dicts, as torch.load(weights_only=True); nothing in the file ran)")
        return f

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and
                isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80} in a PyTorch "
                                         f"checkpoint")
        if pid[1].dtype is None:
            return _Untyped(self.read_storage, str(pid[2]), str(pid[3]))
        arr, dtype, base = self.read_storage(pid[1].dtype, str(pid[2]))
        return arr, dtype, str(pid[3]), base


def is_torch_zip(names):
    """The data.pkl record of a PyTorch zip checkpoint, or None."""
    pk = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    return pk[0] if len(pk) == 1 else None


def load(zf, pkl, name, map_location):
    """The object a PyTorch zip checkpoint holds, its tensors placed by map_location (on the
    device they were saved from when it is None, as torch.load)."""
    prefix = pkl[:-len("data.pkl")]
    little = True
    if prefix + "byteorder" in zf.namelist():
        little = zf.read(prefix + "byteorder").strip() != b"big"
    storages = {}

    def read_storage(dtype, key):
        if key not in storages:
            try:
                raw = zf.read(f"{prefix}data/{key}")
            except KeyError:
                raise RuntimeError(f"framework.load: {name}: storage record data/{key} is "
                                   f"missing (file truncated or corrupted)") from None
            npd = np.dtype(dtype.np)
            if npd.itemsize > 1 and npd.kind in "iufc":
                npd = npd.newbyteorder("<" if little else ">")
            if len(raw) % npd.itemsize:
                raise RuntimeError(f"framework.load: {name}: storage record data/{key} holds "
                                   f"{len(raw)} bytes, not a whole number of {dtype} elements")
            from ._dispatch import wrap
            arr = np.frombuffer(raw, npd).astype(np.dtype(dtype.np), copy=True)
            storages[key] = (arr, dtype, wrap(arr, dtype))
        return storages[key]

    try:
        return _Unpickler(zf.read(pkl), read_storage, map_location).load()
    except pickle.UnpicklingError:
        raise
    except (EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise RuntimeError(f"framework.load: {name}: PyTorch checkpoint data.pkl is corrupted "
                           f"({type(e).__name__}: {e})") from None
