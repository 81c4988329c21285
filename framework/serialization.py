"""framework.save / framework.load: a safe checkpoint format.

A checkpoint is a zip archive (stored, not compressed) holding
    kiln.json    the object tree as tagged JSON (dicts, OrderedDicts, Counters, lists, tuples,
                 sets, scalars, strings, bytes, dtypes, devices, layouts, torch.Size, tensors by
                 reference)
    data/<i>     each tensor's raw little-endian bytes, C order
Loading parses JSON and copies bytes; it never unpickles, so nothing in the file can run code.
The zip's CRC-32 per member turns corruption into a clear error.

Objects the tree cannot express (a whole Module, arbitrary classes) are pickled into the
archive instead, with a warning; loading those needs weights_only=False, as in PyTorch.
Writes go to a temporary file in the target directory and are renamed into place (atomic).
"""
import base64
import collections
import io
import json
import math
import os
import pickle
import sys
import tempfile
import warnings
import zipfile

import numpy as np

from runtime import dtypes as dt
from runtime.device import Device, canonical
from .tensor import Tensor, Size

FORMAT = "kiln-checkpoint"
VERSION = 2             # 2: tensor records that view a storage (shared memory, strides)
_HEADER = "kiln.json"
_PICKLE = "pickle.bin"


class _Unsupported(Exception):
    pass


# ---- encoding --------------------------------------------------------------------------------

def _le_bytes(arr):
    if not isinstance(arr, np.ndarray):      # device memory (CuPy): copied to the host first
        from .tensor import _host
        arr = _host(arr)
    a = np.asarray(arr, order="C")
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and sys.byteorder == "big"):
        a = a.byteswap()
    return a.tobytes()


class _Encoder:
    def __init__(self):
        self.blobs = []          # raw bytes per data/<i>
        self.seen = {}           # id(tensor) -> its record: one copy for a tensor saved twice
        self.storage = {}        # id(root tensor) -> data/<i> holding the root's memory
        self.keep = []           # (the tensors whose ids are keys above stay alive)
        self.views = 0           # records that are views of a storage (format version 2)

    def tensor(self, t):
        if getattr(t, "_compressed", False):    # its index arrays and values
            self.keep.append(t)
            return {"$sparse_compressed": [self.tensor(t._idx(0, t._idx_names()[0])),
                                           self.tensor(t._idx(1, t._idx_names()[1])),
                                           self.tensor(t._vals)],
                    "layout": t.layout.name, "size": list(t.shape),
                    "requires_grad": bool(t.requires_grad)}
        if t.is_sparse:         # its indices and values, as two ordinary tensors
            self.keep.append(t)
            return {"$sparse_coo": [self.tensor(t._ix), self.tensor(t._vals)],
                    "size": list(t.shape), "coalesced": t.is_coalesced(),
                    "requires_grad": bool(t.requires_grad)}
        key = id(t)
        if key not in self.seen:
            self.keep.append(t)
            self.seen[key] = self._record(t)
        from .nn.parameter import Parameter
        r = dict(self.seen[key], dtype=t.dtype.name, shape=list(t.shape),
                 requires_grad=bool(t.requires_grad), param=isinstance(t, Parameter),
                 device=str(t.device))
        if t._dtype.category == 4:      # a quantized tensor's scale and zero point
            from .ao._qtensor import qparams_record
            r["qparams"] = qparams_record(t)
        return r

    def _record(self, t):
        """A plain record (data/<i> = t's values, C order), or for a view of another tensor's
        memory or a strided tensor, a view record {storage, offset, stride} so that tensors
        sharing memory share it again after load (as torch.save/torch.load)."""
        a = t._data
        root = t._base if t._base is not None else t
        plain = t._base is None and (not isinstance(a, np.ndarray) or a.flags.c_contiguous)
        if plain and id(t) not in self.storage:
            self.storage[id(t)] = len(self.blobs)
            self.blobs.append(_le_bytes(a))
            return {"$tensor": self.storage[id(t)]}
        span = _span(a)
        r = root._data
        if span is None:                         # (negative strides, device memory): a copy
            from .tensor import _host
            return {"$tensor": self._blob(np.ascontiguousarray(
                a if isinstance(a, np.ndarray) else _host(a)))}
        if (root is t or not isinstance(r, np.ndarray) or not r.flags.c_contiguous or
                r.dtype != a.dtype or not (_ptr(r) <= _ptr(a) and
                                           _ptr(a) + span * a.itemsize <= _ptr(r) + r.nbytes)):
            root, r = t, np.lib.stride_tricks.as_strided(a, (span,), (a.itemsize,))
            if a.size == 0:
                r = np.zeros(0, a.dtype)
        if id(root) not in self.storage:
            self.keep.append(root)
            self.storage[id(root)] = self._blob(r)
        self.views += 1
        return {"$tensor": f"v{self.views}", "storage": self.storage[id(root)],
                "offset": (_ptr(a) - _ptr(r)) // a.itemsize if a.size else 0,
                "stride": [s // a.itemsize for s in a.strides]}

    def _blob(self, a):
        self.blobs.append(_le_bytes(a))
        return len(self.blobs) - 1

    def enc(self, o):
        if o is None or isinstance(o, (bool, str)):
            return o
        if isinstance(o, int):
            return o
        if isinstance(o, float):
            return o if math.isfinite(o) else {"$float": repr(o)}
        if isinstance(o, Tensor):
            return self.tensor(o)
        if isinstance(o, complex):
            return {"$complex": [self.enc(o.real), self.enc(o.imag)]}
        if isinstance(o, Size):
            return {"$size": list(o)}
        if isinstance(o, dt.DType):
            return {"$dtype": o.name}
        if isinstance(o, Device):
            return {"$device": str(o)}
        if isinstance(o, bytes):
            return {"$bytes": base64.b64encode(o).decode()}
        # (bytearray, Counter and layouts: torch.load(weights_only=True) takes them too)
        if type(o) is bytearray:
            return {"$bytearray": base64.b64encode(bytes(o)).decode()}
        from . import _Layout
        if isinstance(o, _Layout):
            return {"$layout": o.name}
        if type(o) is collections.Counter:
            return {"$counter": [[self.enc(k), self.enc(v)] for k, v in o.items()]}
        if isinstance(o, np.ndarray) and o.dtype.kind in "biufc" and o.dtype != object:
            i = len(self.blobs)
            self.blobs.append(_le_bytes(o))
            return {"$ndarray": i, "dtype": o.dtype.str.lstrip("<>|="), "shape": list(o.shape)}
        if isinstance(o, np.generic) and o.dtype.kind in "biufc":
            return {"$npscalar": self.enc(np.asarray(o))}
        if isinstance(o, collections.OrderedDict):
            r = {"$odict": [[self.enc(k), self.enc(v)] for k, v in o.items()]}
            meta = getattr(o, "_metadata", None)
            if meta is not None:
                r["metadata"] = self.enc(meta)
            return r
        if type(o) is dict or type(o) is collections.defaultdict:
            return {"$dict": [[self.enc(k), self.enc(v)] for k, v in o.items()]}
        if type(o) is list:
            return [self.enc(v) for v in o]
        if type(o) is tuple:
            return {"$tuple": [self.enc(v) for v in o]}
        if type(o) in (set, frozenset):
            return {"$set": [self.enc(v) for v in o], "frozen": type(o) is frozenset}
        raise _Unsupported(type(o).__name__)


def _ptr(a):
    return a.__array_interface__["data"][0]


def _span(a):
    """Elements of memory an ndarray's view covers from its first element (None when a stride
    is negative or not whole elements, or a is not a NumPy array)."""
    if not isinstance(a, np.ndarray) or any(s < 0 or s % a.itemsize for s in a.strides):
        return None
    if a.size == 0:
        return 0
    return 1 + sum((n - 1) * s // a.itemsize for n, s in zip(a.shape, a.strides))


# ---- decoding --------------------------------------------------------------------------------

def place(t, saved, ml):
    """A loaded cpu tensor on the device map_location names for its saved device `saved`
    (a device, a {saved: target} dict, or a callable(tensor, saved) as in torch.load)."""
    if callable(ml) and not isinstance(ml, (str, Device, dict)):
        r = ml(t, saved)
        return r if isinstance(r, Tensor) else t
    target = saved if ml is None else str(ml) if isinstance(ml, (str, Device)) else \
        ml.get(saved, saved) if isinstance(ml, dict) else saved
    dev = canonical(target)            # a missing device errors here
    return t.to(dev) if dev.type != "cpu" else t


class _Decoder:
    def __init__(self, zf, name, map_location):
        self.zf, self.name, self.map_location = zf, name, map_location
        self.cache = {}
        self.storages = {}       # data/<i> -> (flat array, cpu tensor its views are views of)

    def fail(self, msg):
        raise RuntimeError(f"framework.load: {self.name}: {msg}")

    def _bytes(self, i, nbytes):
        try:
            b = self.zf.read(f"data/{i}")
        except KeyError:
            self.fail(f"missing tensor data record data/{i} (file truncated or corrupted)")
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            self.fail(f"file is truncated or corrupted ({e})")
        if len(b) != nbytes:
            self.fail(f"tensor record data/{i} holds {len(b)} bytes, expected {nbytes}")
        return b

    def _array(self, i, npdt, shape):
        n = 1
        for s in shape:
            if not isinstance(s, int) or s < 0:
                self.fail(f"bad tensor shape {shape}")
            n *= s
        npdt = npdt.newbyteorder("<") if npdt.itemsize > 1 and npdt.kind in "iufc" else npdt
        arr = np.frombuffer(self._bytes(i, n * npdt.itemsize), dtype=npdt).reshape(shape)
        return arr.astype(arr.dtype.newbyteorder("=")) if arr.dtype.byteorder == ">" \
            else arr.copy()

    def tensor(self, d):
        key = d["$tensor"]
        if key in self.cache:
            return self.cache[key]
        try:
            dtype = dt._dtype_by_name(d["dtype"])
        except KeyError:
            self.fail(f"unknown dtype {d.get('dtype')!r}")
        from ._dispatch import wrap
        if "storage" in d:
            t = self._view(d, dtype)
        else:
            t = wrap(self._array(key, dtype.np, d["shape"]), dtype)
            self.storages.setdefault(key, (t._data.reshape(-1), t))
        if "qparams" in d:
            from .ao._qtensor import from_qparams_record
            t = from_qparams_record(t, d["qparams"])
        t = place(t, d.get("device", "cpu"), self.map_location)
        if d.get("param"):
            from .nn.parameter import Parameter
            t = Parameter(t, requires_grad=bool(d.get("requires_grad")))
        elif d.get("requires_grad"):
            t.requires_grad_(True)
        self.cache[key] = t
        return t

    def _view(self, d, dtype):
        from ._dispatch import wrap
        j, off, stride, shape = d["storage"], d.get("offset"), d.get("stride"), d["shape"]
        if j not in self.storages:
            try:
                n = self.zf.getinfo(f"data/{j}").file_size // dtype.np.itemsize
            except KeyError:
                self.fail(f"missing tensor data record data/{j} (file truncated or corrupted)")
            base = wrap(self._array(j, dtype.np, [n]), dtype)
            self.storages[j] = (base._data, base)
        flat, base = self.storages[j]
        if flat.dtype != dtype.np:
            self.fail(f"tensor record of dtype {dtype} views storage data/{j} of another dtype")
        if not (isinstance(off, int) and isinstance(stride, list) and len(stride) == len(shape)
                and all(isinstance(v, int) and v >= 0 for v in stride + shape) and off >= 0):
            self.fail(f"bad view record {d!r:.120}")
        if 0 in shape:
            return wrap(np.zeros(shape, flat.dtype), dtype)
        if off + 1 + sum((n - 1) * s for n, s in zip(shape, stride)) > flat.size:
            self.fail(f"view of shape {shape} and stride {stride} at offset {off} exceeds its "
                      f"storage data/{j} of {flat.size} elements")
        t = wrap(np.lib.stride_tricks.as_strided(flat[off:], shape,
                                                 [s * flat.itemsize for s in stride]), dtype)
        t._base = base
        return t

    def dec(self, o):
        if o is None or isinstance(o, (bool, int, float, str)):
            return o
        if isinstance(o, list):
            return [self.dec(v) for v in o]
        if not isinstance(o, dict) or len(o) == 0:
            self.fail(f"malformed object record {o!r:.80}")
        tag = next(iter(o))
        if tag == "$tensor":
            return self.tensor(o)
        if tag == "$sparse_coo":
            return self._sparse(o)
        if tag == "$sparse_compressed":
            return self._sparse_compressed(o)
        if tag == "$dict":
            return {self._key(k): self.dec(v) for k, v in o[tag]}
        if tag == "$odict":
            r = collections.OrderedDict((self._key(k), self.dec(v)) for k, v in o[tag])
            if "metadata" in o:
                r._metadata = self.dec(o["metadata"])
            return r
        if tag == "$tuple":
            return tuple(self.dec(v) for v in o[tag])
        if tag == "$float":
            return float(o[tag])
        if tag == "$complex":
            return complex(self.dec(o[tag][0]), self.dec(o[tag][1]))
        if tag == "$size":
            return Size(o[tag])
        if tag == "$dtype":
            return dt._dtype_by_name(o[tag])
        if tag == "$device":
            return Device(o[tag])
        if tag == "$bytes":
            return base64.b64decode(o[tag])
        if tag == "$bytearray":
            return bytearray(base64.b64decode(o[tag]))
        if tag == "$layout":
            import framework
            lay = getattr(framework, str(o[tag]), None)
            if not isinstance(lay, framework._Layout):
                self.fail(f"unknown layout {o[tag]!r:.40}")
            return lay
        if tag == "$counter":
            return collections.Counter({self._key(k): self.dec(v) for k, v in o[tag]})
        if tag == "$ndarray":
            try:
                npdt = np.dtype(o["dtype"])
            except TypeError:
                self.fail(f"unknown array dtype {o['dtype']!r}")
            if npdt.kind not in "biufc":
                self.fail(f"refusing array dtype {o['dtype']!r}")
            return self._array(o[tag], npdt, o["shape"])
        if tag == "$npscalar":
            return self.dec(o[tag])[()]
        if tag == "$set":
            vals = [self.dec(v) for v in o[tag]]
            return frozenset(vals) if o.get("frozen") else set(vals)
        self.fail(f"unknown record tag {tag!r}")

    def _sparse_compressed(self, o):
        import framework
        from .sparse_compressed import sparse_compressed_tensor
        parts, size, lay = o["$sparse_compressed"], o.get("size"), o.get("layout")
        if not (isinstance(parts, list) and len(parts) == 3 and isinstance(size, list) and
                lay in ("sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc")):
            self.fail(f"bad sparse compressed tensor record {o!r:.120}")
        ci, pi, vals = (self.dec(x) for x in parts)
        try:        # (the invariants are checked: a file cannot make out-of-range indices)
            return sparse_compressed_tensor(ci.detach(), pi.detach(), vals.detach(), size,
                                            layout=getattr(framework, lay),
                                            check_invariants=True,
                                            requires_grad=bool(o.get("requires_grad")))
        except (RuntimeError, TypeError, AttributeError) as e:
            self.fail(f"bad sparse compressed tensor record: {e}")

    def _sparse(self, o):
        from .sparse import sparse_coo_tensor
        parts, size = o["$sparse_coo"], o.get("size")
        if not (isinstance(parts, list) and len(parts) == 2 and isinstance(size, list)):
            self.fail(f"bad sparse tensor record {o!r:.120}")
        key = ("sparse",) + tuple(str(x.get("$tensor")) if isinstance(x, dict) else None
                                  for x in parts)
        if key in self.cache:           # (saved twice: one tensor again)
            return self.cache[key]
        ix, vals = (self.dec(x) for x in parts)
        try:        # (the indices' range is checked: a file cannot make out-of-range ones)
            t = sparse_coo_tensor(ix.detach(), vals.detach(), size, check_invariants=True,
                                  is_coalesced=bool(o.get("coalesced")),
                                  requires_grad=bool(o.get("requires_grad")))
        except (RuntimeError, TypeError, AttributeError) as e:
            self.fail(f"bad sparse tensor record: {e}")
        self.cache[key] = t
        return t

    def _key(self, k):
        k = self.dec(k)
        if isinstance(k, list):
            k = tuple(k)
        return k


# ---- public API ------------------------------------------------------------------------------

def _name(f):
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    return getattr(f, "name", None) or f"<{type(f).__name__}>"


def _build_archive(obj, pickle_protocol):
    enc = _Encoder()
    header = {"format": FORMAT, "version": 1, "byteorder": "little"}
    buf = io.BytesIO()
    try:
        header["root"] = enc.enc(obj)
        pickled = None
        if enc.views:                  # view records: readers older than version 2 refuse it
            header["version"] = VERSION
    except _Unsupported as e:
        warnings.warn(f"framework.save: {e} objects cannot be stored in the safe format; "
                      "pickling the object instead. Loading it will need weights_only=False, "
                      "which runs code from the file, or its classes allowlisted with "
                      "torch.serialization.add_safe_globals; prefer saving state_dict()s.",
                      UserWarning, stacklevel=3)
        header["root"] = None
        header["pickled"] = True
        pickled = pickle.dumps(obj, protocol=pickle_protocol)
        enc.blobs = []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(_HEADER, json.dumps(header, allow_nan=False))
        for i, b in enumerate(enc.blobs):
            zf.writestr(f"data/{i}", b)
        if pickled is not None:
            zf.writestr(_PICKLE, pickled)
    return buf.getvalue()


def save(obj, f, pickle_module=None, pickle_protocol=2, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False):
    """Save obj to a path (atomically: temp file in the same directory, then os.replace) or to
    a writable binary file object."""
    data = _build_archive(obj, pickle_protocol)
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        d = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(d):
            raise RuntimeError(f"framework.save: Parent directory {d} does not exist.")
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=d)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    else:
        if not hasattr(f, "write"):       # (PyTorch's class for it)
            raise AttributeError(f"framework.save: expected 'f' to be string, path, or a "
                                 f"file-like object with a 'write' attribute, got "
                                 f"{type(f).__name__}")
        f.write(data)
        if hasattr(f, "flush"):
            f.flush()


def _read_all(f, name):
    if isinstance(f, (str, os.PathLike)):
        try:
            with open(f, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"[Errno 2] No such file or directory: '{name}'") from None
    if not hasattr(f, "read"):           # (PyTorch's class for it)
        raise AttributeError(f"framework.load: expected 'f' to be string, path, or a "
                             f"file-like object with a 'read' attribute, got {type(f).__name__}")
    return f.read()


def load(f, map_location=None, pickle_module=None, *, weights_only=True, mmap=None,
         **pickle_load_args):
    """Load an object saved by framework.save. With weights_only=True (the default) only the
    safe tree is read; a file that needs unpickling is refused and nothing in it runs."""
    name = _name(f)
    if mmap and not isinstance(f, (str, os.PathLike)):       # (as torch.load)
        raise ValueError("f must be a file path in order to use the mmap argument")
    raw = _read_all(f, name)
    if raw[:4] != b"PK\x03\x04":
        from . import _torch_checkpoint
        if _torch_checkpoint.is_torch_legacy(raw):
            # torch.save(..., _use_new_zipfile_serialization=False): its safe subset, whatever
            # weights_only says (Kiln cannot rebuild torch's other classes anyway)
            if mmap:
                raise RuntimeError(f"mmap can only be used with files saved with `torch.save("
                                   f"{name}, _use_new_zipfile_serialization=True), please "
                                   f"torch.save your checkpoint with this option in order to "
                                   f"use mmap.")
            return _torch_checkpoint.load_legacy(raw, name, map_location)
        if raw[:1] == b"\x80" or raw[:1] in (b"(", b"]", b"}", b"c"):
            return _load_pickle(raw, name, weights_only, "the file is a raw pickle")
        if not raw:
            raise RuntimeError(f"framework.load: {name} is empty (truncated write?)")
        raise RuntimeError(f"framework.load: {name} is not a Kiln checkpoint or is corrupted "
                           f"(unrecognized leading bytes {raw[:8]!r})")
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise RuntimeError(f"framework.load: {name} is truncated or corrupted ({e})") from None
    if _HEADER not in names:
        from . import _torch_checkpoint
        pkl = _torch_checkpoint.is_torch_zip(names)
        if pkl is not None:                    # torch.save's format: its safe subset
            return _torch_checkpoint.load(zf, pkl, name, map_location)
        raise RuntimeError(f"framework.load: {name} is a zip archive without a {_HEADER} record "
                           "or a data.pkl record: neither a Kiln nor a PyTorch checkpoint")
    try:
        header = json.loads(zf.read(_HEADER).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, UnicodeDecodeError) as e:
        raise RuntimeError(f"framework.load: {name}: header is corrupted ({e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RuntimeError(f"framework.load: {name}: not a Kiln checkpoint header")
    if header.get("version", 0) > VERSION:
        raise RuntimeError(f"framework.load: {name} was written by a newer format version "
                           f"{header.get('version')}")
    if header.get("pickled"):
        try:
            blob = zf.read(_PICKLE)
        except (KeyError, zipfile.BadZipFile, OSError) as e:
            raise RuntimeError(f"framework.load: {name}: pickled record missing or corrupted "
                               f"({e})") from None
        return _load_pickle(blob, name, weights_only, "the checkpoint holds a pickled object "
                            "(saved from something other than tensors/containers/state_dicts)")
    return _Decoder(zf, name, map_location).dec(header["root"])


# ---- weights_only=True on a pickled record: an allowlist of globals --------------------------
# Kiln's own rebuild functions and the containers/numpy pieces its tensors pickle into are
# allowed; everything else (a Module class, any user class) only once the user allowlists it
# with add_safe_globals / safe_globals, as torch.load(weights_only=True) requires.

_user_safe_globals = []          # what add_safe_globals got: objects or (object, "name") pairs

_WO_HEAD = ("Weights only load failed. This file can still be loaded, to do so you have two "
            "options, \x1b[1mdo those steps only if you trust the source of the checkpoint"
            "\x1b[0m. \n\t(1) In PyTorch 2.6, we changed the default value of the `weights_only` "
            "argument in `torch.load` from `False` to `True`. Re-running `torch.load` with "
            "`weights_only` set to `False` will likely succeed, but it can result in arbitrary "
            "code execution. Do it only if you got the file from a trusted source.\n\t(2) "
            "Alternatively, to load with `weights_only=True` please check the recommended steps "
            "in the following error message.\n\tWeightsUnpickler error: ")
_WO_TAIL = ("\n\nCheck the documentation of torch.load to learn more about types accepted by "
            "default with weights_only https://pytorch.org/docs/stable/generated/torch.load.html.")


def _global_name(obj):
    return f"{obj.__module__}.{obj.__qualname__}"


def add_safe_globals(safe_globals):
    """Allow these classes/functions (or (object, "module.name") pairs) in checkpoints loaded
    with weights_only=True."""
    _user_safe_globals.extend(safe_globals)


def get_safe_globals():
    return list(_user_safe_globals)


def clear_safe_globals():
    _user_safe_globals.clear()


class safe_globals:
    """Context manager: add_safe_globals for the duration of the block."""

    def __init__(self, safe_globals):
        self.safe_globals = list(safe_globals)

    def __enter__(self):
        add_safe_globals(self.safe_globals)

    def __exit__(self, *exc):
        for g in self.safe_globals:
            if g in _user_safe_globals:
                _user_safe_globals.remove(g)


def _user_allowed():
    out = {}
    for g in _user_safe_globals:
        if isinstance(g, tuple):
            if len(g) != 2 or not isinstance(g[1], str):
                raise ValueError(f"Expected tuple of (object, str) in safe_globals, got {g}")
            out[g[1]] = g[0]
        else:
            out[_global_name(g)] = g
    return out


def _default_allowed():
    import codecs
    from .nn.parameter import _rebuild_parameter
    from .nn.modules.module import _HookDict
    from . import _Layout
    a = {"framework.serialization._rebuild_tensor": _rebuild_tensor,
         "framework.nn.parameter._rebuild_parameter": _rebuild_parameter,
         "framework.nn.modules.module._HookDict": _HookDict,
         "framework._Layout": _Layout, "framework.tensor.Size": Size,
         "runtime.dtypes._dtype_by_name": dt._dtype_by_name, "runtime.device.Device": Device,
         "collections.OrderedDict": collections.OrderedDict,
         "collections.Counter": collections.Counter, "_codecs.encode": codecs.encode,
         "builtins.set": set, "builtins.frozenset": frozenset, "builtins.complex": complex,
         "builtins.bytearray": bytearray, "numpy.ndarray": np.ndarray, "numpy.dtype": np.dtype}
    for m in ("numpy._core.multiarray", "numpy.core.multiarray"):
        a[m + "._reconstruct"] = np._core.multiarray._reconstruct
        a[m + ".scalar"] = np._core.multiarray.scalar
    return a


def _ml_dtype(key):
    """ml_dtypes' scalar types (the numpy dtypes of bfloat16/float8 data), else None."""
    module, _, name = key.rpartition(".")
    if module != "ml_dtypes":
        return None
    import ml_dtypes
    t = getattr(ml_dtypes, name, None)
    return t if isinstance(t, type) and issubclass(t, np.generic) else None


def _normalize_global(module, name):
    import _compat_pickle           # (protocol 2 writes Python 2 names: __builtin__.set)
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class _NotAllowed(Exception):
    pass


def _safe_build(self):
    # BUILD (an object's state): on the allowlisted classes' instances only, never on a class
    # or a function (which would rewrite it for the whole process)
    state = self.stack.pop()
    inst = self.stack[-1]
    allowed = tuple(v for v in self.allowed.values() if isinstance(v, type))
    if isinstance(inst, type) or not isinstance(inst, allowed + (np.dtype,)):
        raise _NotAllowed(f"Can only build Tensor, Parameter, OrderedDict or types allowlisted "
                          f"via `add_safe_globals`, but got {type(inst)}")
    setstate = getattr(inst, "__setstate__", None)
    if setstate is not None and not (isinstance(inst, collections.OrderedDict) and
                                     isinstance(state, dict)):
        setstate(state)
        return
    slotstate = None
    if isinstance(state, tuple) and len(state) == 2:
        state, slotstate = state
    if state:
        inst.__dict__.update(state)
    if slotstate:
        for k, v in slotstate.items():
            setattr(inst, k, v)


class _SafeUnpickler(pickle._Unpickler):
    """The pure-Python unpickler (BUILD can be restricted) with find_class on an allowlist."""
    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = _safe_build

    def __init__(self, f):
        super().__init__(f)
        self.allowed = {**_default_allowed(), **_user_allowed()}

    def find_class(self, module, name):
        module, name = _normalize_global(module, name)
        key = f"{module}.{name}"
        f = self.allowed.get(key)
        if f is None:
            f = _ml_dtype(key)
        if f is None:
            raise _NotAllowed(f"Unsupported global: GLOBAL {key} was not an allowed global by "
                              f"default. Please use `torch.serialization.add_safe_globals("
                              f"[{key}])` or the `torch.serialization.safe_globals([{key}])` "
                              f"context manager to allowlist this global if you trust this "
                              f"class/function.")
        return f

    def persistent_load(self, pid):
        raise _NotAllowed(f"Unsupported persistent id {pid!r:.80}")


def _globals_in_pickle(blob):
    """Every global a pickle names (GLOBAL, STACK_GLOBAL), as "module.name"."""
    import pickletools
    found, strings = set(), []
    for op, arg, _ in pickletools.genops(blob):
        if op.name in ("GLOBAL", "INST"):
            found.add(".".join(_normalize_global(*arg.split(" ", 1))))
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            found.add(".".join(_normalize_global(strings[-2], strings[-1])))
        elif isinstance(arg, str) and "UNICODE" in op.name:
            strings.append(arg)
    return found


def get_unsafe_globals_in_checkpoint(f):
    """The globals a checkpoint's pickled record names that weights_only=True would refuse
    (neither Kiln's own nor allowlisted with add_safe_globals)."""
    raw = _read_all(f, _name(f))
    if raw[:4] != b"PK\x03\x04":
        raise ValueError("Expected input to be a checkpoint returned by torch.save")
    zf = zipfile.ZipFile(io.BytesIO(raw))
    names = set(zf.namelist())
    if _HEADER in names:
        if _PICKLE not in names:
            return []
        blob = zf.read(_PICKLE)
        safe = set(_default_allowed())
    else:
        from . import _torch_checkpoint
        pkl = _torch_checkpoint.is_torch_zip(names)
        if pkl is None:
            raise ValueError("Expected input to be a checkpoint returned by torch.save")
        blob = zf.read(pkl)
        safe = {f"{m}.{n}" for m, n in _torch_checkpoint._allowed(None)}
    safe |= set(_user_allowed())
    return sorted(g for g in _globals_in_pickle(blob) - safe if _ml_dtype(g) is None)


def _load_pickle(blob, name, weights_only, why):
    if weights_only:
        try:
            return _SafeUnpickler(io.BytesIO(blob)).load()
        except _NotAllowed as e:
            raise pickle.UnpicklingError(_WO_HEAD + str(e) + _WO_TAIL) from None
        except Exception as e:       # (as torch: anything the restricted load hit, one error)
            raise pickle.UnpicklingError(
                _WO_HEAD + f"{type(e).__name__}: {e} (in {name}: {why})" + _WO_TAIL) from None
    warnings.warn(f"framework.load({name}, weights_only=False) unpickles the file, which can "
                  "execute arbitrary code; only load files you trust.", UserWarning, stacklevel=3)
    try:
        return pickle.loads(blob)
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise RuntimeError(f"framework.load: {name}: pickled data is truncated or corrupted "
                           f"({e})") from None


def _rebuild_tensor(arr, dtype_name, requires_grad):
    """Unpickling hook for Tensor.__reduce_ex__ (copy.deepcopy, multiprocessing, and
    weights_only=False checkpoints)."""
    from ._dispatch import wrap
    t = wrap(arr, dt._dtype_by_name(dtype_name))
    if requires_grad:
        t.requires_grad_(True)
    return t
