"""Read and write the safetensors format (huggingface/safetensors) for state_dicts:
8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}} plus an
optional "__metadata__" of strings, then the raw little-endian tensor bytes."""
import json
import os
import struct
import tempfile

import numpy as np

from runtime import dtypes as dt
from ..tensor import Tensor

_TO_ST = {"bool": "BOOL", "uint8": "U8", "int8": "I8", "int16": "I16", "int32": "I32",
          "int64": "I64", "float16": "F16", "bfloat16": "BF16", "float32": "F32",
          "float64": "F64", "complex64": "C64", "uint16": "U16", "uint32": "U32", "uint64": "U64"}
_FROM_ST = {v: k for k, v in _TO_ST.items()}
_MAX_HEADER = 100 * 1024 * 1024


def save(tensors, metadata=None):
    """bytes of a safetensors file holding the dict {name: Tensor}."""
    from ..serialization import _le_bytes
    if not isinstance(tensors, dict):
        raise TypeError(f"safetensors.save: expected a dict of tensors, got {type(tensors).__name__}")
    header, blobs, off = {}, [], 0
    for k, t in tensors.items():
        if not isinstance(k, str):
            raise TypeError(f"safetensors.save: keys must be str, got {type(k).__name__}")
        if not isinstance(t, Tensor):
            raise TypeError(f"safetensors.save: value for {k!r} is {type(t).__name__}, not a "
                            "Tensor")
    # largest alignment first, then by name, like the reference writer
    items = sorted(tensors.items(), key=lambda kv: (-kv[1].element_size(), kv[0]))
    for k, t in items:
        if t.dtype.name not in _TO_ST:
            raise TypeError(f"safetensors.save: dtype {t.dtype} of {k!r} is not supported")
        b = _le_bytes(t._data)
        header[k] = {"dtype": _TO_ST[t.dtype.name], "shape": list(t.shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ValueError("safetensors.save: metadata must map str to str")
        header["__metadata__"] = dict(metadata)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def save_file(tensors, filename, metadata=None):
    data = save(tensors, metadata)
    path = os.fspath(filename)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _parse(data, name):
    def fail(msg):
        raise RuntimeError(f"safetensors: {name}: {msg}")
    if len(data) < 8:
        fail("file too short for a header length (truncated?)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or 8 + n > len(data):
        fail(f"header length {n} exceeds the file size {len(data)} (truncated or corrupted)")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        fail(f"header is not valid JSON ({e})")
    if not isinstance(header, dict):
        fail("header is not a JSON object")
    meta = header.pop("__metadata__", None)
    body = memoryview(data)[8 + n:]
    spans = []
    for k, info in header.items():
        try:
            dtype = dt._dtype_by_name(_FROM_ST[info["dtype"]])
            shape = [int(s) for s in info["shape"]]
            b, e = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            fail(f"bad entry for {k!r}: {info!r:.100}")
        count = int(np.prod(shape)) if shape else 1
        if e - b != count * dtype.itemsize or b < 0 or e > len(body):
            fail(f"tensor {k!r}: data_offsets {[b, e]} do not match dtype {info['dtype']} shape "
                 f"{shape} within {len(body)} data bytes")
        spans.append((b, e))
    spans.sort()
    pos = 0
    for b, e in spans:
        if b != pos:
            fail("tensor data is not contiguous / overlaps")
        pos = e
    if pos != len(body):
        fail(f"{len(body) - pos} trailing bytes after the tensor data")
    return header, meta, body


def load(data, device="cpu"):
    return _load(bytes(data), "<bytes>", device)


def _load(data, name, device):
    from .._dispatch import wrap
    header, _, body = _parse(data, name)
    out = {}
    for k, info in header.items():
        dtype = dt._dtype_by_name(_FROM_ST[info["dtype"]])
        b, e = info["data_offsets"]
        npdt = dtype.np.newbyteorder("<") if dtype.itemsize > 1 and dtype is not dt.bfloat16 \
            else dtype.np
        arr = np.frombuffer(body[b:e], dtype=npdt).reshape(info["shape"])
        arr = arr.astype(dtype.np) if arr.dtype != dtype.np else arr.copy()
        t = wrap(arr, dtype)
        out[k] = t if str(device) == "cpu" else t.to(device)
    return out


def load_file(filename, device="cpu"):
    with open(filename, "rb") as f:
        data = f.read()
    return _load(data, os.fspath(filename), device)


def load_metadata(filename):
    with open(filename, "rb") as f:
        data = f.read()
    return _parse(data, os.fspath(filename))[1]
