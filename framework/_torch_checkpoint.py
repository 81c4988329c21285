"""Reading checkpoints that PyTorch's torch.save wrote (its zip format), safely.

A PyTorch checkpoint is a zip archive `<name>/data.pkl` + `<name>/data/<key>` (+ version and
byteorder records). data.pkl is a pickle whose tensors are calls of
torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks) on
storages named by persistent ids ('storage', torch.FloatStorage, key, location, numel); the raw
bytes of storage `key` are the record data/<key>. Dtypes without a typed storage class (uint16,
uint32, uint64) are saved as _rebuild_tensor_v3(storage, ..., hooks, dtype) on a
torch.storage.UntypedStorage, read in the dtype the rebuild names. Like
torch.load(weights_only=True) (the default since PyTorch 2.6), only an allowlist of globals may
be named: the tensor rebuilders (v2, v3, and _rebuild_from_type_v2 for a tensor with Python
attributes) and the parameter ones, the typed and untyped storages, dtypes, layouts,
torch.Size, torch.device, OrderedDict, Counter and a few builtins.
Any other global (a pickled Module, an arbitrary class) refuses the file; nothing in it runs.
As in torch's weights_only unpickler, BUILD (setting an object's state) is allowed on
OrderedDicts only (a state_dict's _metadata): on an allowlisted global it would rewrite
Kiln's own classes and dtypes for the whole process.

torch.save(..., _use_new_zipfile_serialization=False) writes the legacy format instead: pickles
one after another (magic number, protocol version, sys_info, the object whose storages are
persistent ids ('storage', type, key, location, numel, view_metadata), the list of storage
keys), then per key an 8-byte element count and the raw bytes (load_legacy).
"""
import collections
import io
import pickle
import struct

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


def _apply_metadata(t, metadata):
    """torch saves a conjugate or negative view (x.conj(), x.conj().imag) as its storage plus
    {'conj': True} / {'neg': True}; Kiln has no lazy conj/neg bits, so the values are
    resolved here (a copy: such a tensor no longer shares its storage)."""
    if not metadata:
        return t
    if not isinstance(metadata, dict):
        raise pickle.UnpicklingError(f"tensor metadata {metadata!r:.80} is not a dict "
                                     f"(corrupted checkpoint)")
    from ._dispatch import wrap
    a = t._data
    if metadata.get("conj"):
        a = np.conj(a)
    if metadata.get("neg"):
        a = np.negative(a)
    return wrap(np.ascontiguousarray(a), t.dtype) if a is not t._data else t


def _set_state(obj, state):
    """A saved tensor's or parameter's Python attributes (its __dict__, or (__dict__, slots)),
    as torch._utils._set_obj_state; names Kiln's Tensor already has (its data, grad, methods)
    are refused so that a file cannot replace a tensor's internals."""
    if isinstance(state, tuple) and len(state) == 2:
        d, slots = state
        state = dict(d or {}, **(slots or {}))
    if not state:
        return obj
    if not isinstance(state, dict):
        raise pickle.UnpicklingError(f"tensor state {state!r:.80} is not a dict")
    for k, v in state.items():
        if not isinstance(k, str) or k.startswith("__") or hasattr(obj, k):
            raise pickle.UnpicklingError(f"the checkpoint sets the tensor attribute {k!r}, "
                                         f"which Kiln's Tensor defines itself")
        setattr(obj, k, v)
    return obj


def _grad(t, requires_grad):
    if requires_grad:
        t.requires_grad_(True)
    return t


def _rebuild_parameter(data, requires_grad, hooks=None, state=None):
    from .nn.parameter import Parameter
    return _set_state(Parameter(data, requires_grad=requires_grad), state)


class _Type:
    """What torch.Tensor / torch.nn.parameter.Parameter stand for while unpickling: only a
    _rebuild_from_type_v2 argument (calling it or building it refuses)."""

    def __init__(self, name):
        self.name = name


def _allowed(map_location):
    import framework as torch
    from .serialization import place

    def rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None,
                       metadata=None):   # (torch._utils._rebuild_tensor_v2's arguments)
        if isinstance(storage, _Untyped):
            raise pickle.UnpicklingError("an untyped storage rebuilt without a dtype "
                                         "(corrupted checkpoint)")
        t = _apply_metadata(_tensor(storage, offset, size, stride, False), metadata)
        return place(_grad(t, requires_grad), storage[2], map_location)

    def rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype,
                          metadata=None):
        if not isinstance(storage, _Untyped) or not isinstance(dtype, dt.DType):
            raise pickle.UnpicklingError("_rebuild_tensor_v3 of a typed storage or without a "
                                         "dtype (corrupted checkpoint)")
        return rebuild_tensor(storage.typed(dtype), offset, size, stride, requires_grad,
                              hooks, metadata)

    def rebuild_from_type_v2(func, new_type, args, state):
        # a tensor with Python attributes (x.note = ...): rebuilt, then its attributes set
        if func not in (rebuild_tensor, rebuild_tensor_v3, _rebuild_parameter) or \
                not isinstance(new_type, _Type) or not isinstance(args, tuple):
            raise pickle.UnpicklingError("_rebuild_from_type_v2 of something other than a "
                                         "tensor or a Parameter is not allowed")
        return _set_state(func(*args), state)

    def get_layout(name):                 # torch.serialization._get_layout('torch.strided')
        lay = getattr(torch, str(name).rpartition(".")[2], None) if \
            str(name) in ("torch.strided", "torch.sparse_coo") else None
        if lay is None:
            raise pickle.UnpicklingError(f"layout {name!r:.40} is not supported by Kiln")
        return lay
    import codecs
    a = {("collections", "OrderedDict"): collections.OrderedDict,
         ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
         ("torch._utils", "_rebuild_tensor_v3"): rebuild_tensor_v3,
         ("torch.storage", "UntypedStorage"): _StorageType(None),
         ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
         ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
         ("torch._tensor", "_rebuild_from_type_v2"): rebuild_from_type_v2,
         ("torch.serialization", "_get_layout"): get_layout,
         ("torch", "Tensor"): _Type("Tensor"),
         ("torch.nn.parameter", "Parameter"): _Type("Parameter"),
         ("torch", "Size"): torch.Size, ("torch", "device"): torch.device,
         ("collections", "Counter"): collections.Counter, ("_codecs", "encode"): codecs.encode}
    for m in ("builtins", "__builtin__"):      # (protocol 2 names the builtins __builtin__)
        a.update({(m, "complex"): complex, (m, "set"): set, (m, "bytearray"): bytearray})
    for k, d in _STORAGES.items():
        a["torch", k] = _StorageType(d)
    for d in dt.ALL:
        a["torch", d.name] = d
    return a


def _load_build(self):
    # BUILD: only an OrderedDict's attributes (a state_dict's _metadata), as torch's
    # weights_only unpickler; on anything else (an allowlisted class, a dtype) refused
    state = self.stack.pop()
    inst = self.stack[-1]
    if type(inst) is not collections.OrderedDict or not isinstance(state, dict) or \
            not all(isinstance(k, str) and not k.startswith("__") for k in state):
        raise pickle.UnpicklingError(f"the checkpoint sets the state of a "
                                     f"{type(inst).__name__}; only OrderedDicts may have one")
    inst.__dict__.update(state)


class _Unpickler(pickle._Unpickler):
    """The pure-Python unpickler (its opcodes can be overridden: BUILD is restricted); the
    pickles it reads are small, the tensor bytes are records of their own."""
    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = _load_build

    def __init__(self, f, read_storage, map_location):
        super().__init__(f if hasattr(f, "read") else io.BytesIO(f))
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
        # zip format: ('storage', type, key, location, numel); legacy format: the same and
        # view_metadata (None, or (view key, offset, size) of a storage view, pre-2018 files)
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage" and
                isinstance(pid[1], _StorageType) and isinstance(pid[4], int)):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80} in a PyTorch "
                                         f"checkpoint")
        numel = pid[4] if len(pid) == 6 else None
        if pid[1].dtype is None:
            return _Untyped(lambda d, k: self.read_storage(d, k, numel, True), str(pid[2]),
                            str(pid[3]))
        arr, dtype, base = self.read_storage(pid[1].dtype, str(pid[2]), numel)
        view = pid[5] if len(pid) == 6 else None
        if view is not None:
            if not (isinstance(view, tuple) and len(view) == 3 and
                    all(isinstance(v, int) and v >= 0 for v in view[1:]) and
                    view[1] + view[2] <= arr.size):
                raise pickle.UnpicklingError(f"bad storage view {view!r:.80} (corrupted "
                                             f"checkpoint)")
            from ._dispatch import wrap
            arr = arr[view[1]:view[1] + view[2]]
            base = wrap(arr, dtype)
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

    def read_storage(dtype, key, numel=None, untyped=False):
        if key not in storages:
            try:
                raw = zf.read(f"{prefix}data/{key}")
            except KeyError:
                raise RuntimeError(f"framework.load: {name}: storage record data/{key} is "
                                   f"missing (file truncated or corrupted)") from None
            if len(raw) % dtype.itemsize:
                raise RuntimeError(f"framework.load: {name}: storage record data/{key} holds "
                                   f"{len(raw)} bytes, not a whole number of {dtype} elements")
            storages[key] = _storage(raw, dtype, little)
        return storages[key]

    try:
        return _Unpickler(zf.read(pkl), read_storage, map_location).load()
    except pickle.UnpicklingError:
        raise
    except _CORRUPT as e:
        raise RuntimeError(f"framework.load: {name}: PyTorch checkpoint data.pkl is corrupted "
                           f"({type(e).__name__}: {e})") from None


_CORRUPT = (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            struct.error)


def _storage(raw, dtype, little):
    """(flat array, dtype, base tensor) of a storage's raw bytes, in native byte order."""
    from ._dispatch import wrap
    if dtype is dt.complex32:       # (float16 pairs on disk, complex64 arrays in Kiln)
        h = np.frombuffer(raw, np.dtype(np.float16).newbyteorder("<" if little else ">"))
        arr = dt.chalf_from_pairs(h.reshape(-1, 2))
        return arr, dtype, wrap(arr, dtype)
    if dtype in dt.FLOAT8:          # (bytes on disk, float32 arrays in Kiln)
        arr = dt.FLOAT8[dtype].decode(np.frombuffer(raw, np.uint8))
        return arr, dtype, wrap(arr, dtype)
    npd = np.dtype(dtype.np)
    if npd.itemsize > 1 and npd.kind in "iufc":
        npd = npd.newbyteorder("<" if little else ">")
    arr = np.frombuffer(raw, npd).astype(np.dtype(dtype.np), copy=True)
    return arr, dtype, wrap(arr, dtype)


MAGIC_NUMBER = 0x1950A86A20F9469CFC6C        # (torch.serialization's, legacy format)
PROTOCOL_VERSION = 1001


def is_torch_legacy(raw):
    """Whether raw bytes begin as torch.save's legacy format does: a pickle of MAGIC_NUMBER.
    (Read with the restricted unpickler: a pickle of anything else runs nothing either.)"""
    if raw[:1] != b"\x80":
        return False
    try:
        return _Unpickler(raw[:64], None, None).load() == MAGIC_NUMBER
    except Exception:
        return False


def load_legacy(raw, name, map_location):
    """The object a legacy-format PyTorch checkpoint holds (see the module docstring). Its
    storages' bytes follow the object's pickle, so that pickle is read twice: first over
    stand-in storages of the sizes its persistent ids name (which tells each key's element
    size), then over the storages read from the tail of the file."""
    f = io.BytesIO(raw)
    try:
        if _Unpickler(f, None, None).load() != MAGIC_NUMBER:
            raise RuntimeError(f"framework.load: {name}: Invalid magic number; corrupt file?")
        version = _Unpickler(f, None, None).load()
        if version != PROTOCOL_VERSION:
            raise RuntimeError(f"framework.load: {name}: Invalid protocol version: {version}")
        info = _Unpickler(f, None, None).load()
        little = not isinstance(info, dict) or info.get("little_endian", True)
        start = f.tell()
        sizes = {}                       # key -> (dtype of its records, element count)

        def stand_in(dtype, key, numel, untyped=False):
            # (an untyped storage's numel counts bytes; its tensor names the dtype)
            if not isinstance(numel, int) or numel < 0:
                raise pickle.UnpicklingError(f"storage {key} of {numel!r:.20} elements")
            rec = (dt.uint8 if untyped else dtype, numel)
            if sizes.setdefault(key, rec) != rec:
                raise pickle.UnpicklingError(f"storage {key} named with two dtypes or sizes "
                                             f"(corrupted checkpoint)")
            from ._dispatch import wrap
            n = numel // dtype.itemsize if untyped else numel
            arr = np.broadcast_to(np.zeros((), np.dtype(dtype.np)), (n,))
            return arr, dtype, wrap(arr, dtype)
        _Unpickler(f, stand_in, "cpu").load()
        keys = _Unpickler(f, None, None).load()
        if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(sizes):
            raise RuntimeError(f"framework.load: {name}: storage keys {keys!r:.80} do not "
                               f"match the storages the object names (corrupted checkpoint)")
        storages = {}
        for key in keys:
            dtype, numel = sizes[str(key)]
            count = struct.unpack("<q" if little else ">q", f.read(8))[0]
            nbytes = numel * dtype.itemsize
            data = f.read(nbytes)
            if count != numel or len(data) != nbytes:
                raise RuntimeError(f"framework.load: {name}: storage {key} is truncated or "
                                   f"corrupted ({len(data)} of {nbytes} bytes, {count} "
                                   f"elements recorded for {numel})")
            storages[str(key)] = _storage(data, dtype, little)

        def read_storage(dtype, key, numel, untyped=False):
            arr, d, base = storages[key]
            if d is not dtype:           # an untyped storage (uint16 & co.) read as its dtype
                storages[key] = _storage(arr.tobytes(), dtype, little)
            return storages[key]
        f.seek(start)
        return _Unpickler(f, read_storage, map_location).load()
    except pickle.UnpicklingError:
        raise
    except _CORRUPT as e:
        raise RuntimeError(f"framework.load: {name}: legacy PyTorch checkpoint is truncated or "
                           f"corrupted ({type(e).__name__}: {e})") from None
