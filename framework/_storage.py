"""Tensor.untyped_storage() / Tensor.storage(): torch.UntypedStorage and torch.TypedStorage
(and the legacy torch.FloatStorage & co.), as views of the memory Kiln's tensors hold.

A tensor's storage is the memory of its root tensor: the tensor itself, or for a view its
`_base` (the tensor whose array the view's array looks into) -- the same root that
Tensor.storage_offset() measures from, so as in PyTorch
    x.untyped_storage().data_ptr() == x.data_ptr() - x.storage_offset() * x.element_size()
and all views of one base report one storage (the same Python object while it is alive, as in
PyTorch; nbytes() covers the whole base). An UntypedStorage is a flat uint8 NumPy view of that
memory, so writes through it (and through a TypedStorage) are seen by the tensor and its views
at once; like PyTorch's, such writes do not bump the tensor's version counter.

Kiln tensors live in NumPy arrays ('cpu', and 'interpret', whose buffers are host memory) or CuPy
arrays ('cuda'; C-contiguous ones only). What differs from PyTorch 2.13:
  * share_memory_() is Tensor.share_memory_() of the root tensor (which moves the base and its
    views; the storage follows its root's memory), and raises NotImplementedError if that left
    the tensor unshared; is_shared() is the root tensor's is_shared().
  * resize_() works on storages made by the UntypedStorage/TypedStorage constructors only; a
    tensor's storage cannot be resized (PyTorch's FSDP-style `storage().resize_(0)`).
  * Tensor.set_(storage[, storage_offset, size, stride]) shares the storage's memory (host
    memory only); where the window needs more memory than the storage has, PyTorch grows the
    storage: Kiln grows only a storage made by a constructor (resizable()), and for a tensor's
    storage raises PyTorch's error for a storage that is not resizable. A storage grown (or
    resized) later no longer shares memory with the tensors set to it.
  * no _cdata, from_buffer/from_file, pin_memory, casts (storage.float() & co.), and no
    torch.storage module (the classes are attributes of framework).
  * a storage made by a constructor is zero-filled (PyTorch's is uninitialized memory).
"""
import collections.abc
import operator
import sys
import warnings
import weakref

import numpy as np

from runtime import dtypes as dt
from runtime.device import canonical
from . import _dispatch
from .tensor import Tensor, _ptr

__all__ = ["UntypedStorage", "TypedStorage"]


# ---- the deprecation warning of TypedStorage (torch.storage._warn_typed_storage_removal) ----

_always_warn = False
_has_warned = False


def _get_always_warn_typed_storage_removal():
    return _always_warn


def _set_always_warn_typed_storage_removal(always_warn):
    global _always_warn
    if not isinstance(always_warn, bool):
        raise AssertionError(f"always_warn must be bool, got {type(always_warn).__name__}")
    _always_warn = always_warn


def _reset_warn_typed_storage_removal():
    global _has_warned
    _has_warned = False


def _warn_typed_storage_removal(stacklevel=2):
    """PyTorch's UserWarning, once per process (every time after
    _set_always_warn_typed_storage_removal(True))."""
    global _has_warned
    if _always_warn or not _has_warned:
        warnings.warn("TypedStorage is deprecated. It will be removed in the future and "
                      "UntypedStorage will be the only storage class. This should only matter "
                      "to you if you are using storages directly.  To access UntypedStorage "
                      "directly, use tensor.untyped_storage() instead of tensor.storage()",
                      UserWarning, stacklevel=stacklevel + 1)
        _has_warned = True


# ---- memory ----------------------------------------------------------------------------------

def _is_host(a):
    return isinstance(a, np.ndarray)


def _byte_view(a):
    """A flat uint8 array over the memory array `a` covers, from its lowest address, sharing it
    (a plain ndarray for host memory)."""
    if _is_host(a):
        a = a.view(np.ndarray)              # (interpret buffers are host memory)
        if a.size == 0 or a.flags.c_contiguous:
            return a.reshape(-1).view(np.uint8)
        first = a[tuple(slice(n - 1, n) if s < 0 else slice(0, 1)
                        for n, s in zip(a.shape, a.strides))].reshape(1).view(np.uint8)
        span = sum(abs(s) * (n - 1) for n, s in zip(a.shape, a.strides)) + a.itemsize
        return np.lib.stride_tricks.as_strided(first, (span,), (1,))
    if not a.flags.c_contiguous:
        raise NotImplementedError("storage of a non-contiguous device tensor root is not "
                                  "supported in Kiln")
    return a.reshape(-1).view("u1")         # CuPy: a view when C-contiguous


def _host(b):
    if _is_host(b):
        return b
    from ._device_ops import host
    return host(b)


def _like(b, target):
    """Bytes `b` (any device) as an array that can be assigned into `target`'s memory."""
    if _is_host(target):
        return _host(b)
    from ._device_ops import array_device, to_device
    return to_device(b, array_device(target))


def _root(t):
    return t._base if t._base is not None else t


def _index_type(idx):
    return type(idx).__name__


def _as_int_index(idx):
    """A Python/NumPy integer as int (bools and everything else: None)."""
    if isinstance(idx, (bool, np.bool_)) or not isinstance(idx, (int, np.integer)):
        return None
    return int(idx)


def _slice_bounds(sl, n):
    if sl.step is not None and sl.step != 1:
        raise RuntimeError(f"Trying to slice with a step of {sl.step}, but only a step of 1 is "
                           f"supported")
    start, stop, _ = sl.indices(n)
    return start, max(start, stop)


# ---- UntypedStorage --------------------------------------------------------------------------

_cache = weakref.WeakValueDictionary()     # id(root tensor) -> its UntypedStorage


class UntypedStorage:
    """torch.UntypedStorage: the bytes of a tensor's memory (or of a storage made here).

    UntypedStorage()                 an empty storage
    UntypedStorage(nbytes)           nbytes zero bytes
    UntypedStorage(sequence)         the bytes of a sequence of ints (each taken mod 256)
    (each with device=...)"""
    is_sparse = False
    is_sparse_csr = False

    def __init__(self, *args, device=None):
        from .creation import zeros, tensor
        if len(args) > 1:
            raise TypeError(f"torch.UntypedStorage() received an invalid combination of "
                            f"arguments - got ({', '.join(type(a).__name__ for a in args)}), but "
                            f"expected one of:\n * (*, int allocator = None, torch.device device "
                            f"= None)\n * (int size, *, int allocator = None, torch.device device "
                            f"= None)\n * (object sequence, *, int allocator = None, "
                            f"torch.device device = None)\n")
        dev = canonical(device if device is not None else "cpu")
        if not args:
            root = zeros(0, dtype=dt.uint8, device=dev)
        elif _as_int_index(args[0]) is not None:
            n = int(args[0])
            if n < 0:
                raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
            root = zeros(n, dtype=dt.uint8, device=dev)
        elif isinstance(args[0], collections.abc.Sequence) and not isinstance(args[0], str):
            vals = []
            for v in args[0]:
                if _as_int_index(v) is None and not isinstance(v, (bool, np.bool_)):
                    raise RuntimeError(f"torch.UntypedStorage(): tried to construct a storage "
                                       f"from a sequence ({type(args[0]).__name__}), but one of "
                                       f"the items was of type {type(v).__name__} instead of int")
                vals.append(int(v) & 0xFF)
            root = tensor(vals, dtype=dt.uint8, device=dev) if vals else \
                zeros(0, dtype=dt.uint8, device=dev)
        else:
            raise RuntimeError(f"torch.UntypedStorage(): Expected a sequence type, but got "
                               f"{type(args[0]).__name__}")
        self._attach(root, 0, None, standalone=True)

    @classmethod
    def _of_tensor(cls, t):
        root = _root(t)
        s = root.__dict__.get("_set_storage")    # Tensor.set_(storage) made this root for it
        if s is not None:
            return s
        s = _cache.get(id(root))
        if s is not None and s._root is root:
            return s
        s = cls.__new__(cls)
        s._attach(root, 0, None, standalone=False)
        _cache[id(root)] = s
        return s

    def _attach(self, root, off, length, standalone):
        """This storage is bytes [off, off + length) (length None: to the end) of root's
        memory."""
        self._root, self._off, self._length, self._standalone = root, off, length, standalone
        self._refresh()

    def _refresh(self):
        self._arr = self._root._data
        d = self._root._dtype
        if d.round is not None:
            # its bytes as PyTorch lays them out (complex32: float16 pairs; float8: one byte):
            # a read-only snapshot, as these are held in wider arrays (runtime.dtypes);
            # re-read at each access
            b = (dt.chalf_pairs(_host(self._arr)).reshape(-1).view(np.uint8) if d is dt.complex32
                 else dt.FLOAT8[d].encode(_host(self._arr)).reshape(-1))
            b.setflags(write=False)
        else:
            b = _byte_view(self._arr)
        if self._off or self._length is not None:
            b = b[self._off: None if self._length is None else self._off + self._length]
        self._bv = b

    @property
    def _b(self):
        """The bytes, following the root tensor when its memory moved (share_memory_() moves
        a tensor's memory, and the storage moves with it, as in PyTorch)."""
        if self._arr is not self._root._data or self._root._dtype.round is not None:
            self._refresh()
        return self._bv

    # -- metadata ---------------------------------------------------------------------------
    def nbytes(self):
        return self._b.size

    size = nbytes

    def __len__(self):
        return self._b.size

    def element_size(self):
        return 1

    def data_ptr(self):
        if self._root._dtype.round is not None:    # (the tensor's memory, not the snapshot)
            return _ptr(_byte_view(self._root._data))
        return _ptr(self._b)

    @property
    def device(self):
        return self._root._device

    @property
    def is_cuda(self):
        return self.device.type == "cuda"

    @property
    def is_hpu(self):
        return False

    def get_device(self):
        return self.device.index

    def type(self, dtype=None, non_blocking=False):
        if dtype is None:
            return "torch.storage.UntypedStorage"
        raise NotImplementedError("UntypedStorage.type(dtype) (a cast) is not supported in Kiln")

    def is_pinned(self, device="cuda"):
        return False

    def resizable(self):
        return self._standalone and self._off == 0 and self._length is None

    def untyped(self):
        return self

    @property
    def filename(self):
        return None

    # -- elements ---------------------------------------------------------------------------
    def __getitem__(self, idx):
        n = self._b.size
        if isinstance(idx, slice):
            start, stop = _slice_bounds(idx, n)
            s = UntypedStorage.__new__(UntypedStorage)
            s._attach(self._root, self._off + start, stop - start, standalone=False)
            return s
        i = _as_int_index(idx)
        if i is None:
            raise TypeError(f"can't index a torch.UntypedStorage with {_index_type(idx)}")
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for storage of size {n}")
        return int(self._b[i])

    def __setitem__(self, idx, value):
        v = _as_int_index(value)
        if v is None and not isinstance(value, (bool, np.bool_)):
            raise RuntimeError(f"can only set storage content with a int types, but got "
                               f"{type(value).__name__} instead")
        v = int(value) & 0xFF
        n = self._b.size
        if isinstance(idx, slice):
            start, stop = _slice_bounds(idx, n)
            self._b[start:stop] = v
            return
        i = _as_int_index(idx)
        if i is None:
            raise RuntimeError(f"can't index a torch.UntypedStorage with {_index_type(idx)}")
        if not 0 <= i < n:                 # (PyTorch does not wrap negative indices here)
            raise RuntimeError("out of bounds")
        self._b[i] = v

    def __iter__(self):
        return iter(self.tolist())

    def tolist(self):
        return _host(self._b).tolist()

    def fill_(self, value):
        if _as_int_index(value) is None and not isinstance(value, (bool, np.bool_)):
            raise RuntimeError(f"fill_ expects int, but got {type(value).__name__}")
        self._b[...] = int(value) & 0xFF
        return self

    def copy_(self, source, non_blocking=None):
        if isinstance(source, TypedStorage):
            source = source._untyped_storage
        if not isinstance(source, UntypedStorage):
            raise TypeError(f"copy_(): argument 'src' (position 1) must be torch.Storage, not "
                            f"{type(source).__name__}")
        if source.nbytes() != self.nbytes():
            raise RuntimeError(f"size does not match, self was {self.nbytes()} bytes but src "
                               f"was {source.nbytes()} bytes")
        if source._b is not self._b and self._b.size:
            self._b[...] = _like(source._b, self._b)
        return self

    def clone(self):
        return UntypedStorage(self.nbytes(), device=self.device).copy_(self)

    def __copy__(self):
        return self.clone()

    def __deepcopy__(self, memo):
        memo = memo.setdefault("torch", {})
        key = ("UntypedStorage", self.data_ptr(), self.nbytes(), str(self.device))
        if key not in memo:
            memo[key] = self.clone()
        return memo[key]

    def __reduce__(self):
        return (_rebuild_untyped, (bytes(_host(self._b).tobytes()), str(self.device)))

    def to(self, *, device, non_blocking=False):
        dev = canonical(device)
        if dev == self.device:
            return self
        return UntypedStorage(self.nbytes(), device=dev).copy_(self)

    def cpu(self):
        return self.to(device="cpu")

    def cuda(self, device=None, non_blocking=False):
        return self.to(device="cuda" if device is None else
                       device if not isinstance(device, int) else f"cuda:{device}")

    # -- sharing and size -------------------------------------------------------------------
    def is_shared(self):
        return bool(self._root.is_shared())

    def share_memory_(self):
        """Moves the memory to shared memory through Tensor.share_memory_() of the tensor that
        owns it; NotImplementedError while Kiln's tensors cannot be shared."""
        if self.device.type == "cuda" or self.is_shared():
            return self
        self._root.share_memory_()
        if not self._root.is_shared():
            raise NotImplementedError(
                "share_memory_(): Kiln cannot move this storage to shared memory (Tensor."
                "share_memory_() left its tensor unshared)")
        return self

    def resize_(self, size):
        size = operator.index(size)
        if not self.resizable():
            raise NotImplementedError(
                "resize_(): Kiln resizes only storages made by the UntypedStorage/TypedStorage "
                "constructors, not the storage of a tensor (its views would have to move)")
        if size < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {size}: [{size}]")
        from .creation import zeros
        new = zeros(size, dtype=dt.uint8, device=self.device)._data
        k = min(size, self._b.size)
        if k:
            new[:k] = self._b[:k]
        self._root._data = new
        self._refresh()
        return self

    def __repr__(self):
        info = f"[torch.storage.UntypedStorage(device={self.device}) of size {len(self)}]"
        return " " + "\n ".join(str(v) for v in self.tolist()) + "\n" + info

    __str__ = __repr__


def _rebuild_untyped(data, device):
    s = UntypedStorage(len(data), device="cpu")
    if data:
        s._b[...] = np.frombuffer(data, np.uint8)
    return s.to(device=device)


# ---- TypedStorage ----------------------------------------------------------------------------

_TYPED = "<class 'torch.storage.TypedStorage'>"


class TypedStorage:
    """torch.TypedStorage (deprecated in PyTorch, and it warns so): an UntypedStorage read as
    elements of one dtype."""
    is_sparse = False

    def __new__(cls, *args, wrap_storage=None, dtype=None, device=None, _internal=False):
        if not _internal:
            _warn_typed_storage_removal()
        if cls is _LegacyStorage:
            raise RuntimeError("Only child classes of _LegacyStorage can be instantiated")
        if cls is TypedStorage:
            return super().__new__(cls)
        msg = (f"<class 'torch.{cls.__name__}'>.__new__ received an invalid combination of "
               f"arguments. Expected one of:\n * no arguments\n * (int size)\n"
               f" * (Sequence data)\n * (*, UntypedStorage wrap_storage)")
        if device is not None:
            raise RuntimeError(msg + "\nKeyword argument 'device' cannot be specified")
        if dtype is not None:
            raise RuntimeError(msg + "\nKeyword argument 'dtype' cannot be specified")
        if wrap_storage is None:
            if len(args) > 1:
                raise RuntimeError(msg + "\nToo many positional arguments")
            if len(args) == 1 and _as_int_index(args[0]) is None and \
                    not isinstance(args[0], collections.abc.Sequence):
                raise TypeError(msg + f"\nArgument type not recognized: {type(args[0])}")
            return TypedStorage(*args, dtype=cls.dtype, device="cpu", _internal=True)
        if args:
            raise RuntimeError(msg + "\nNo positional arguments should be given when using "
                                     "'wrap_storage'")
        if not isinstance(wrap_storage, UntypedStorage):
            raise TypeError(msg + f"\nArgument 'wrap_storage' must be UntypedStorage, but got "
                                  f"{type(wrap_storage)}")
        if wrap_storage.device.type != "cpu":
            raise RuntimeError(msg + f"\nDevice of 'wrap_storage' must be cpu, but got "
                                     f"{wrap_storage.device.type}")
        return TypedStorage(wrap_storage=wrap_storage, dtype=cls.dtype, _internal=True)

    def __init__(self, *args, device=None, dtype=None, wrap_storage=None, _internal=False):
        if type(self) is not TypedStorage:     # a legacy class's __new__ built it already
            return
        if not _internal:
            _warn_typed_storage_removal()
        msg = ("TypedStorage.__init__ received an invalid combination of arguments. Expected "
               "one of:\n * (*, torch.device device, torch.dtype dtype)\n"
               " * (int size, *, torch.device device, torch.dtype dtype)\n"
               " * (Sequence data, *, torch.device device, torch.dtype dtype)\n"
               " * (*, UntypedStorage wrap_storage, torch.dtype dtype)")
        if wrap_storage is not None:
            if args:
                raise RuntimeError(msg + "\nNo positional arguments should be given when using "
                                         "'wrap_storage'")
            if dtype is None:
                raise RuntimeError(msg + "\nArgument 'dtype' must be specified")
            if not isinstance(dtype, dt.DType):
                raise TypeError(msg + f"\nArgument 'dtype' must be torch.dtype, not "
                                      f"{type(dtype)}")
            if device is not None:
                raise RuntimeError(msg + "\nArgument 'device' should not be specified when "
                                         "'wrap_storage' is given")
            if not isinstance(wrap_storage, UntypedStorage):
                raise TypeError(msg + f"\nArgument 'wrap_storage' must be UntypedStorage, but "
                                      f"got {type(wrap_storage)}")
            self.dtype = dtype
            self._untyped_storage = wrap_storage
            return
        self.dtype = dt.get_default_dtype() if dtype is None else dtype
        dev = canonical("cpu" if device is None else device)
        if not args:
            self._untyped_storage = UntypedStorage(device=dev)
        elif len(args) > 1:
            raise RuntimeError(msg + "\nToo many positional arguments")
        elif _as_int_index(args[0]) is not None:
            self._untyped_storage = UntypedStorage(int(args[0]) * self.dtype.itemsize,
                                                   device=dev)
        elif isinstance(args[0], collections.abc.Sequence):
            from .creation import tensor
            u = UntypedStorage.__new__(UntypedStorage)
            u._attach(tensor(list(args[0]), dtype=self.dtype, device=dev), 0, None,
                      standalone=True)
            self._untyped_storage = u
        else:
            raise TypeError(msg + f"\nArgument type not recognized: {type(args[0])}")

    # -- internal (no warning) --------------------------------------------------------------
    def _size(self):
        return self._untyped_storage.nbytes() // self.dtype.itemsize

    def _nbytes(self):
        return self._untyped_storage.nbytes()

    def _element_size(self):
        return self.dtype.itemsize

    def _data_ptr(self):
        return self._untyped_storage.data_ptr()

    def _typed_tensor(self):
        """A 1-D tensor of this storage's elements, sharing its memory."""
        b = self._untyped_storage._b
        n = self._size() * self.dtype.itemsize
        a = b[:n].view(self.dtype.np if _is_host(b) else self.dtype.np.str)
        return _dispatch.wrap(a, self.dtype)     # (host memory: a cpu tensor; CuPy: 'cuda')

    def _new_wrapped_storage(self, untyped):
        return TypedStorage(wrap_storage=untyped, dtype=self.dtype, _internal=True)

    def _getitem(self, idx):
        if isinstance(idx, slice):
            raise RuntimeError("slices are only supported in UntypedStorage.__getitem__")
        if not isinstance(idx, int):
            raise RuntimeError(f"can't index a {_TYPED} with {type(idx)}")
        if type(idx) is not int:             # (a bool)
            raise TypeError(f"can't index a {_TYPED} with {type(idx)}")
        n = self._size()
        if idx >= n or idx < -n:
            raise IndexError(f"index {idx} out of range for storage of size {n}")
        return self._typed_tensor()[idx % n].item()

    def _setitem(self, idx, value):
        if not isinstance(idx, (int, slice)):
            raise RuntimeError(f"can't index a {_TYPED} with {type(idx)}")
        if isinstance(value, (UntypedStorage, TypedStorage)):
            raise RuntimeError(f"cannot set item with value type <class 'torch.storage."
                               f"{type(value).__name__}'>")
        self._typed_tensor()[idx] = value

    # -- the public API (each warns like PyTorch's) -----------------------------------------
    @property
    def _dtype(self):
        return self.dtype

    @property
    def device(self):
        _warn_typed_storage_removal()
        return self._untyped_storage.device

    @property
    def is_cuda(self):
        _warn_typed_storage_removal()
        return self._untyped_storage.device.type == "cuda"

    @property
    def is_hpu(self):
        _warn_typed_storage_removal()
        return False

    @property
    def filename(self):
        return None

    def untyped(self):
        _warn_typed_storage_removal()
        return self._untyped_storage

    def size(self):
        _warn_typed_storage_removal()
        return self._size()

    def __len__(self):
        _warn_typed_storage_removal()
        return self._size()

    def nbytes(self):
        _warn_typed_storage_removal()
        return self._nbytes()

    def element_size(self):
        _warn_typed_storage_removal()
        return self._element_size()

    def data_ptr(self):
        _warn_typed_storage_removal()
        return self._data_ptr()

    def get_device(self):
        _warn_typed_storage_removal()
        return self._untyped_storage.get_device()

    def type(self, dtype=None, non_blocking=False):
        _warn_typed_storage_removal()
        if dtype is None:
            name = _LEGACY_NAME.get(self.dtype)
            return f"torch.{name}" if name and self._untyped_storage.device.type == "cpu" else \
                "torch.storage.TypedStorage"
        raise NotImplementedError("TypedStorage.type(dtype) (a cast) is not supported in Kiln")

    def pickle_storage_type(self):
        _warn_typed_storage_removal()
        try:
            return _LEGACY_NAME[self.dtype]
        except KeyError:
            raise KeyError(f"dtype {self.dtype} is not recognized") from None

    def __getitem__(self, idx):
        _warn_typed_storage_removal()
        return self._getitem(idx)

    def __setitem__(self, idx, value):
        _warn_typed_storage_removal()
        self._setitem(idx, value)

    def __iter__(self):
        _warn_typed_storage_removal()
        return iter(self._typed_tensor().tolist())

    def tolist(self):
        _warn_typed_storage_removal()
        return self._typed_tensor().tolist()

    def fill_(self, value):
        _warn_typed_storage_removal()
        self._setitem(slice(0, self._size()), value)
        return self

    def copy_(self, source, non_blocking=None):
        """Copies the bytes of `source` (a storage of the same byte size), as PyTorch does."""
        _warn_typed_storage_removal()
        self._untyped_storage.copy_(source._untyped_storage if isinstance(source, TypedStorage)
                                    else source, non_blocking)
        return self

    def clone(self):
        _warn_typed_storage_removal()
        return self._new_wrapped_storage(self._untyped_storage.clone())

    def __copy__(self):
        _warn_typed_storage_removal()
        return self._new_wrapped_storage(self._untyped_storage.clone())

    def __deepcopy__(self, memo):
        _warn_typed_storage_removal()
        return self._new_wrapped_storage(self._untyped_storage.__deepcopy__(memo))

    def __reduce__(self):
        return (_rebuild_typed, (self._untyped_storage, self.dtype.name))

    def to(self, *, device, non_blocking=False):
        _warn_typed_storage_removal()
        return self._new_wrapped_storage(self._untyped_storage.to(device=device))

    def cpu(self):
        _warn_typed_storage_removal()
        return self._new_wrapped_storage(self._untyped_storage.cpu())

    def cuda(self, device=None, non_blocking=False):
        _warn_typed_storage_removal()
        return self._new_wrapped_storage(self._untyped_storage.cuda(device))

    def is_pinned(self, device="cuda"):
        _warn_typed_storage_removal()
        return False

    def is_shared(self):
        _warn_typed_storage_removal()
        return self._untyped_storage.is_shared()

    def share_memory_(self):
        _warn_typed_storage_removal()
        self._untyped_storage.share_memory_()
        return self

    def resizable(self):
        _warn_typed_storage_removal()
        return self._untyped_storage.resizable()

    def resize_(self, size):
        """(Returns None, as PyTorch's does.)"""
        _warn_typed_storage_removal()
        self._untyped_storage.resize_(operator.index(size) * self.dtype.itemsize)

    def __str__(self):
        _warn_typed_storage_removal()
        info = (f"[torch.storage.TypedStorage(dtype={self.dtype!r}, "
                f"device={self._untyped_storage.device}) of size {self._size()}]")
        return " " + "\n ".join(str(v) for v in self._typed_tensor().tolist()) + "\n" + info

    __repr__ = __str__


def _rebuild_typed(untyped, dtype_name):
    return TypedStorage(wrap_storage=untyped, dtype=dt._dtype_by_name(dtype_name),
                        _internal=True)


# ---- torch.FloatStorage & co. ----------------------------------------------------------------

class _LegacyStorageMeta(type):
    def __instancecheck__(cls, instance):
        # a TypedStorage of the class's dtype on the cpu is an instance (PyTorch's rule)
        return type(instance) is TypedStorage and cls is not _LegacyStorage and \
            instance._untyped_storage.device.type == "cpu" and instance.dtype is cls.dtype


class _LegacyStorage(TypedStorage, metaclass=_LegacyStorageMeta):
    pass


_LEGACY_NAME = {d: f"{dt.tname(d)}Storage" for d in dt.ALL if not d.barebones}
_LEGACY = {name: _LegacyStorageMeta(name, (_LegacyStorage,),
                                    {"dtype": d, "__module__": __name__,
                                     "__doc__": f"torch.{name}: a TypedStorage of {d}."})
           for d, name in _LEGACY_NAME.items()}


# ---- Tensor methods and the framework attributes ---------------------------------------------

def _untyped_storage(self):
    """The UntypedStorage of this tensor's memory (shared with every view of its base)."""
    return UntypedStorage._of_tensor(self)


def _typed_storage(self):
    return TypedStorage(wrap_storage=UntypedStorage._of_tensor(self), dtype=self._dtype,
                        _internal=True)


def _storage(self):
    """The TypedStorage of this tensor's memory (deprecated in PyTorch; warns once)."""
    _warn_typed_storage_removal(stacklevel=2)
    return _typed_storage(self)


def is_storage(obj):
    return isinstance(obj, (UntypedStorage, TypedStorage))


Tensor.untyped_storage = _untyped_storage
Tensor.storage = _storage
Tensor._typed_storage = _typed_storage

# framework/__init__.py imports this module (after tensor.py), so the package is in sys.modules,
# partly initialised: the names are set on it here rather than imported there. Names the
# package already defines are left alone.
_pkg = sys.modules[__name__.rpartition(".")[0]]
for _name, _obj in [("UntypedStorage", UntypedStorage), ("TypedStorage", TypedStorage),
                    ("is_storage", is_storage)] + sorted(_LEGACY.items()):
    if not hasattr(_pkg, _name):
        setattr(_pkg, _name, _obj)
del _pkg, _name, _obj
