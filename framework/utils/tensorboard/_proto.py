"""A minimal protocol-buffer encoder and the TensorBoard messages SummaryWriter writes.

Each function returns a message's wire bytes. Field numbers follow tensorboard/compat/proto
(event.proto, summary.proto, tensor.proto, graph.proto, node_def.proto, attr_value.proto) and
the hparams plugin's api.proto / plugin_data.proto. proto3 rules: a plain scalar field equal
to its default is left out; members of a oneof (Summary.Value.simple_value, Event.summary,
AttrValue.*, google.protobuf.Value.*) are written even when zero, since their presence is
what the reader dispatches on.
"""
import struct

import numpy as np

# ---- wire format ----------------------------------------------------------------------------


def varint(n):
    n = int(n)
    if n < 0:
        n &= (1 << 64) - 1          # int64 negatives: ten-byte two's complement
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _key(field, wire):
    return varint(field << 3 | wire)


def f_int(field, n, force=False):
    """int32/int64/uint/enum/bool field (wire type 0)."""
    if not n and not force:
        return b""
    return _key(field, 0) + varint(int(n))


def f_double(field, x, force=False):
    if x == 0 and not force:
        return b""
    return _key(field, 1) + struct.pack("<d", float(x))


def f_float(field, x, force=False):
    if x == 0 and not force:
        return b""
    return _key(field, 5) + struct.pack("<f", float(x))


def f_bytes(field, b, force=False):
    """bytes / string / embedded message (wire type 2)."""
    if isinstance(b, str):
        b = b.encode("utf-8")
    if not b and not force:
        return b""
    return _key(field, 2) + varint(len(b)) + bytes(b)


def f_packed_doubles(field, xs):
    xs = np.asarray(xs, dtype="<f8").reshape(-1)
    return f_bytes(field, xs.tobytes()) if xs.size else b""


def f_packed_ints(field, xs):
    return f_bytes(field, b"".join(varint(x) for x in xs))


# ---- event.proto / summary.proto --------------------------------------------------------------

def event(wall_time, step=0, file_version=None, graph_def=None, summary=None, session_log=None):
    return (f_double(1, wall_time) + f_int(2, step) +
            (f_bytes(3, file_version, True) if file_version is not None else b"") +
            (f_bytes(4, graph_def, True) if graph_def is not None else b"") +
            (f_bytes(5, summary, True) if summary is not None else b"") +
            (f_bytes(7, session_log, True) if session_log is not None else b""))


SESSION_START = 1


def session_log(status):
    return f_int(1, status)


def summary(*values):
    return b"".join(f_bytes(1, v, True) for v in values)


def summary_value(tag, simple_value=None, image=None, histo=None, tensor=None, metadata=None):
    return (f_bytes(1, tag) +
            (f_float(2, simple_value, True) if simple_value is not None else b"") +
            (f_bytes(4, image, True) if image is not None else b"") +
            (f_bytes(5, histo, True) if histo is not None else b"") +
            (f_bytes(8, tensor, True) if tensor is not None else b"") +
            (f_bytes(9, metadata, True) if metadata is not None else b""))


def summary_metadata(plugin_name, content=b""):
    plugin_data = f_bytes(1, plugin_name) + f_bytes(2, content)
    return f_bytes(1, plugin_data, True)


def image(height, width, colorspace, encoded):
    return f_int(1, height) + f_int(2, width) + f_int(3, colorspace) + f_bytes(4, encoded)


def histogram(min, max, num, sum, sum_squares, bucket_limit, bucket):
    return (f_double(1, min) + f_double(2, max) + f_double(3, num) + f_double(4, sum) +
            f_double(5, sum_squares) + f_packed_doubles(6, bucket_limit) +
            f_packed_doubles(7, bucket))


# ---- tensor.proto / tensor_shape.proto / types.proto ----------------------------------------

DT_FLOAT, DT_DOUBLE, DT_INT32, DT_UINT8, DT_INT16, DT_INT8, DT_STRING = 1, 2, 3, 4, 5, 6, 7
DT_INT64, DT_BOOL, DT_BFLOAT16, DT_COMPLEX128, DT_HALF, DT_COMPLEX64 = 9, 10, 14, 18, 19, 8
DTYPES = {"float32": DT_FLOAT, "float64": DT_DOUBLE, "int32": DT_INT32, "uint8": DT_UINT8,
          "int16": DT_INT16, "int8": DT_INT8, "int64": DT_INT64, "bool": DT_BOOL,
          "bfloat16": DT_BFLOAT16, "float16": DT_HALF, "complex64": DT_COMPLEX64,
          "complex128": DT_COMPLEX128}


def tensor_shape(dims):
    return b"".join(f_bytes(2, f_int(1, d), True) for d in dims)


def string_tensor(strings):
    return (f_int(1, DT_STRING) + f_bytes(2, tensor_shape([len(strings)]), True) +
            b"".join(f_bytes(8, s, True) for s in strings))


# ---- graph.proto / node_def.proto / attr_value.proto ----------------------------------------

def attr_s(s):
    return f_bytes(2, s, True)


def attr_type(dtype_enum):
    return f_int(6, dtype_enum, True)


def attr_shapes(shapes):
    """AttrValue{list: ListValue{shape: [...]}}: the `_output_shapes` TensorBoard displays."""
    lst = b"".join(f_bytes(7, tensor_shape(s), True) for s in shapes)
    return f_bytes(1, lst, True)


def node_def(name, op, inputs=(), attrs=None, device=""):
    out = f_bytes(1, name) + f_bytes(2, op)
    out += b"".join(f_bytes(3, i, True) for i in inputs)
    out += f_bytes(4, device)
    for k, v in (attrs or {}).items():          # map<string, AttrValue>: entries {1: key, 2: value}
        out += f_bytes(5, f_bytes(1, k) + f_bytes(2, v, True), True)
    return out


def graph_def(nodes, producer=22):
    # producer 22: what torch writes (a GraphDef version TensorBoard's importer accepts)
    return b"".join(f_bytes(1, n, True) for n in nodes) + f_bytes(4, f_int(1, producer), True)


# ---- google/protobuf/struct.proto and the hparams plugin --------------------------------------

def pb_value(v):
    """google.protobuf.Value for a hyperparameter (a oneof: always written)."""
    if isinstance(v, bool):
        return f_int(4, v, True)
    if isinstance(v, str):
        return f_bytes(3, v, True)
    return f_double(2, v, True)


def pb_list_value(vs):
    return b"".join(f_bytes(1, pb_value(v), True) for v in vs)


DATA_TYPE_STRING, DATA_TYPE_BOOL, DATA_TYPE_FLOAT64 = 1, 2, 3
STATUS_SUCCESS = 1


def hparam_info(name, type_, domain_discrete=None):
    return (f_bytes(1, name) + f_int(4, type_) +
            (f_bytes(5, pb_list_value(domain_discrete), True) if domain_discrete is not None
             else b""))


def metric_info(tag):
    return f_bytes(1, f_bytes(2, tag), True)          # MetricName{group: 1, tag: 2}


def experiment(hparam_infos, metric_infos):
    return (b"".join(f_bytes(4, h, True) for h in hparam_infos) +
            b"".join(f_bytes(5, m, True) for m in metric_infos))


def session_start_info(hparams):
    return b"".join(f_bytes(1, f_bytes(1, k) + f_bytes(2, pb_value(v), True), True)
                    for k, v in hparams.items())


def session_end_info(status):
    return f_int(1, status)


def hparams_plugin_data(experiment=None, session_start_info=None, session_end_info=None,
                        version=0):
    return (f_int(1, version) +
            (f_bytes(2, experiment, True) if experiment is not None else b"") +
            (f_bytes(3, session_start_info, True) if session_start_info is not None else b"") +
            (f_bytes(4, session_end_info, True) if session_end_info is not None else b""))
