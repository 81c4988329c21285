"""Quantized tensors (torch.qint8 / quint8 / qint32): creation, accessors, and the ops PyTorch's
QuantizedCPU backend runs on them.

A quantized tensor is a Tensor whose `_dtype` is a quantized dtype (runtime.dtypes.QUANTIZED),
whose `_data` is the integer representation (int8 / uint8 / int32 array) and whose `_q` is
(qscheme, scale, zero_point, axis): a float and an int per tensor, or a float64 and an int64
(float32 for per_channel_affine_float_qparams) NumPy array per channel along `axis`.
The first quantized tensor installs _dispatch.QUANT: shape ops and copies run on the integer
representation and keep the parameters; the ops PyTorch refuses raise its error.

Rounding follows PyTorch's CPU kernels (checked against them): 8-bit per tensor is fbgemm's
nearbyint(fma(x, 1/scale, zero_point)) in float32, qint32 nearbyint(zero_point + x * (1/scale)),
per channel nearbyint(x * (1/scale)) + zero_point; dequantize is (q - zero_point) * scale in
float32.
"""
import warnings

import numpy as np

from runtime import dtypes as dt
from .. import _dispatch
from .._dispatch import wrap
from ..tensor import Tensor


class qscheme:
    """torch.qscheme: how a quantized tensor's parameters are laid out."""
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "torch." + self.name

    def __reduce__(self):
        return (getattr, (_SCHEMES_MOD, self.name))

    def __copy__(self):     # (a singleton, as torch's: deepcopy of a QConfig keeps it)
        return self

    def __deepcopy__(self, memo):
        return self


per_tensor_affine = qscheme("per_tensor_affine")
per_channel_affine = qscheme("per_channel_affine")
per_tensor_symmetric = qscheme("per_tensor_symmetric")
per_channel_symmetric = qscheme("per_channel_symmetric")
per_channel_affine_float_qparams = qscheme("per_channel_affine_float_qparams")

import sys as _sys  # noqa: E402
_SCHEMES_MOD = _sys.modules[__name__]

_RANGE = {"qint8": (-128, 127), "quint8": (0, 255), "qint32": (-2 ** 31, 2 ** 31 - 1),
          "quint4x2": (0, 15)}
_INT = {"qint8": dt.int8, "quint8": dt.uint8, "qint32": dt.int32, "quint4x2": dt.uint8}
_warned = []


def is_q(t):
    return isinstance(t, Tensor) and t._dtype.category == 4


def _deprecation():
    if not _warned:     # (PyTorch 2.13 warns once per process)
        _warned.append(True)
        warnings.warn("torch.quantize_per_tensor, torch.quantize_per_channel and other quantized "
                      "tensor creation functions that produce tensors with dtype torch.quint8, "
                      "torch.qint8, and torch.qint32 are deprecated and will be removed in a "
                      "future PyTorch release. Please see "
                      "https://github.com/pytorch/pytorch/issues/184982 for more information.",
                      UserWarning, stacklevel=3)


def make_q(ints, dtype, q):
    """A quantized tensor over the integer array `ints` with parameters q."""
    if _dispatch.QUANT is None:
        _dispatch.QUANT = _hook
    t = Tensor.__new__(Tensor)
    t._data = ints
    t._dtype = dtype
    t._q = q
    return t


def _check_dtype(dtype):
    if not isinstance(dtype, dt.DType) or dtype.category != 4:
        name = dt.TORCH_NAME.get(getattr(dtype, "name", None), dtype)
        raise RuntimeError(f"ScalarType {name} is not supported in new_qtensor.")
    if dtype is dt.quint4x2:
        raise NotImplementedError("Kiln does not quantize to torch.quint4x2 (packed 4-bit) yet")


def _float_input(x, op="Quantize"):
    from ..ops_math import _t
    x = _t(x)
    if x._dtype is not dt.float32:
        raise RuntimeError(f"{op} only works on Float Tensor, got {dt.tname(x._dtype)}")
    return np.asarray(_dispatch.values(x), np.float32)


def _q_tensor_affine(a, scale, zp, dtype):
    """Integers of the float32 array a, per tensor (PyTorch's CPU rounding)."""
    lo, hi = _RANGE[dtype.name]
    s = np.float32(scale)
    with np.errstate(all="ignore"):
        inv = np.float32(1.0) / s
        if dtype is dt.qint32:
            v = np.rint(np.float32(zp) + a * inv)
        else:     # fbgemm's fused multiply-add: one rounding of the exact a * inv + zp
            v = np.rint((a.astype(np.float64) * np.float64(inv) + zp).astype(np.float32))
        # (float64: int32's top does not fit a float32)
        return np.clip(np.nan_to_num(v, nan=0.0).astype(np.float64), lo, hi).astype(dtype.np)


def _q_channel(a, scales, zps, axis, dtype, float_qparams=False):
    lo, hi = _RANGE[dtype.name]
    shape = [1] * a.ndim
    shape[axis] = -1
    s = scales.astype(np.float32).reshape(shape)
    with np.errstate(all="ignore"):
        if float_qparams:
            inv = np.where(s == 0, np.float32(1), np.float32(1) / s)
            v = np.rint(a * inv + zps.astype(np.float32).reshape(shape))
        else:
            v = np.rint(a * (np.float32(1) / s) + zps.astype(np.float32).reshape(shape))
        return np.clip(np.nan_to_num(v, nan=0.0), lo, hi).astype(dtype.np)


def _as_float(v):
    return float(v.item()) if isinstance(v, Tensor) else float(v)


def _as_int(v):
    return int(v.item()) if isinstance(v, Tensor) else int(v)


def quantize_per_tensor(input, scale, zero_point, dtype):
    """torch.quantize_per_tensor: round(input / scale) + zero_point clamped to dtype's range;
    a list of tensors takes tensors of scales and zero points, one each."""
    if isinstance(input, (list, tuple)):
        sc = np.asarray(_dispatch.values(scale), np.float64).reshape(-1)
        zp = np.asarray(_dispatch.values(zero_point)).reshape(-1)
        return tuple(quantize_per_tensor(x, float(np.float32(s)), int(z), dtype)
                     for x, s, z in zip(input, sc, zp))
    _check_dtype(dtype)
    a = _float_input(input)
    scale, zero_point = _as_float(scale), _as_int(zero_point)
    lo, hi = _RANGE[dtype.name]
    if zero_point > hi:
        raise RuntimeError(f"quantize_tensor_per_tensor_affine zero_point {zero_point} is above "
                           "upper bound.")
    if zero_point < lo:
        raise RuntimeError(f"quantize_tensor_per_tensor_affine zero_point {zero_point} is below "
                           "lower bound.")
    _deprecation()
    return make_q(_q_tensor_affine(a, scale, zero_point, dtype), dtype,
                  (per_tensor_affine, scale, zero_point, None))


def quantize_per_channel(input, scales, zero_points, axis, dtype):
    """torch.quantize_per_channel: one scale and zero point per index of dim `axis`."""
    for name, pos, v in (("scales", 2, scales), ("zero_points", 3, zero_points)):
        if not isinstance(v, Tensor):
            raise TypeError(f"quantize_per_channel(): argument '{name}' (position {pos}) must be "
                            f"Tensor, not {type(v).__name__}")
    _check_dtype(dtype)
    a = _float_input(input)
    s = np.asarray(_dispatch.values(scales))
    z = np.asarray(_dispatch.values(zero_points))
    if s.size != z.size:
        raise RuntimeError("number of elements in scales and zero_points must match")
    if not 0 <= axis < a.ndim:
        raise RuntimeError(f"Channel axis out of range in per channel affine quantization. "
                           f"Got: {axis}Expected: [0, {a.ndim})")
    if s.size != a.shape[axis]:
        raise RuntimeError(f"length of scales must equal to channel, expected {a.shape[axis]} "
                           f"got, {s.size}")
    _deprecation()
    if z.dtype.kind == "f":     # float zero points: the embedding-bag scheme
        s32, z32 = s.astype(np.float32).reshape(-1), z.astype(np.float32).reshape(-1)
        return make_q(_q_channel(a, s32, z32, axis, dtype, True), dtype,
                      (per_channel_affine_float_qparams, s32, z32, axis))
    s64, z64 = s.astype(np.float64).reshape(-1), z.astype(np.int64).reshape(-1)
    return make_q(_q_channel(a, s64, z64, axis, dtype), dtype,
                  (per_channel_affine, s64, z64, axis))


def choose_qparams(mn, mx, qmin, qmax, reduce_range=False, preserve_sparsity=False):
    """PyTorch's ChooseQuantizationParams (quantize_per_tensor_dynamic, dynamic linear, the fused
    moving-average fake quantization): the range [min(mn, 0), max(mx, 0)] onto [qmin, qmax]
    (halved with reduce_range; made symmetric with preserve_sparsity); scale is a double, cut
    below at 6.1e-5, the zero point the nearer-error candidate, rounded and clamped."""
    f32 = np.float32
    mn, mx = float(f32(mn)), float(f32(mx))
    if reduce_range:
        qmin, qmax = qmin // 2, qmax // 2
    sym = preserve_sparsity and mn < 0 < mx
    if sym:
        sqmin, sqmax = -((qmax - qmin) // 2 + 1), (qmax - qmin) // 2
        ms = max(abs(mn / sqmin), abs(mx / sqmax))
        mn, mx = float(f32(ms * sqmin)), float(f32(ms * sqmax))     # (C++ floats)
    mn, mx = min(mn, 0.0), max(mx, 0.0)
    scale = (mx - mn) / (qmax - qmin)
    with np.errstate(all="ignore"):
        if np.float32(scale) == 0 or np.isinf(np.float32(1) / np.float32(scale)):
            scale = 0.1
    small = float(f32(6.1e-5))
    if scale < small:
        amp = float(f32(small / f32(scale)))
        if mn == 0.0:
            mx = float(f32(small * (qmax - qmin)))
        elif mx == 0.0:
            mn = float(f32(-small * (qmax - qmin)))
        else:
            mn, mx = float(f32(mn * amp)), float(f32(mx * amp))
        scale = small
    zp_min, zp_max = qmin - mn / scale, qmax - mx / scale
    err_min, err_max = abs(qmin) - abs(mn / scale), abs(qmax) - abs(mx / scale)
    zp = zp_min if err_min < err_max else zp_max
    if sym:
        zp = (qmin + qmax) / 2
    zp = qmin if zp < qmin else qmax if zp > qmax else int(np.rint(zp))
    return scale, zp


def quantize_per_tensor_dynamic(input, dtype, reduce_range):
    """torch.quantize_per_tensor_dynamic: scale and zero point from input's min and max."""
    if dtype not in (dt.qint8, dt.quint8):
        raise RuntimeError(f"Expected dtype to be quint8 or qint8 but got {dtype}")
    a = _float_input(input)
    lo, hi = _RANGE[dtype.name]
    mn = float(a.min()) if a.size else 0.0
    mx = float(a.max()) if a.size else 0.0
    scale, zp = choose_qparams(mn, mx, lo, hi, reduce_range)
    return quantize_per_tensor(input, scale, zp, dtype)


def _dequant_array(t):
    scheme, scale, zp, axis = t._q
    a = np.asarray(t._data)
    if axis is None:
        return ((a.astype(np.float32) - np.float32(zp)) * np.float32(scale)).astype(np.float32)
    shape = [1] * a.ndim
    shape[axis] = -1
    return ((a.astype(np.float32) - zp.astype(np.float32).reshape(shape))
            * scale.astype(np.float32).reshape(shape)).astype(np.float32)


def dequantize(tensor):
    """torch.dequantize / Tensor.dequantize: (int_repr - zero_point) * scale as float32; a
    float tensor is returned as it is; a list gives a tuple."""
    if isinstance(tensor, (list, tuple)):
        return tuple(dequantize(t) for t in tensor)
    if not is_q(tensor):
        return tensor
    return wrap(_dequant_array(tensor), dt.float32)


def _backend_error(op, t):
    return NotImplementedError(
        f"Could not run '{op}' with arguments from the '{'QuantizedCPU' if is_q(t) else 'CPU'}' "
        "backend. This could be because the operator doesn't exist for this backend, or was "
        "omitted during the selective/custom build process (if using custom build).")


def _need_q(t, op):
    if not is_q(t):
        raise _backend_error(f"aten::{op}", t)


def int_repr(self):
    """The integers a quantized tensor holds (int8 / uint8 / int32), as a new tensor."""
    _need_q(self, "int_repr")
    return wrap(np.array(self._data), _INT[self._dtype.name])


def _per_tensor(self):
    if self._q[3] is not None:
        raise RuntimeError("Expected quantizer->qscheme() == kPerTensorAffine to be true, but got "
                           "false.  (Could this error message be improved?  If so, please report "
                           "an enhancement request to PyTorch.)")


def _per_channel(self):
    if self._q[3] is None:
        raise RuntimeError("Expected quantizer->qscheme() == kPerChannelAffine || "
                           "quantizer->qscheme() == kPerChannelAffineFloatQParams to be true, but "
                           "got false.  (Could this error message be improved?  If so, please "
                           "report an enhancement request to PyTorch.)")


def q_scale(self):
    _need_q(self, "q_scale")
    _per_tensor(self)
    return self._q[1]


def q_zero_point(self):
    _need_q(self, "q_zero_point")
    _per_tensor(self)
    return self._q[2]


def q_per_channel_scales(self):
    _need_q(self, "q_per_channel_scales")
    _per_channel(self)
    s = self._q[1]
    return wrap(s.copy(), dt.float32 if s.dtype == np.float32 else dt.float64)


def q_per_channel_zero_points(self):
    _need_q(self, "q_per_channel_zero_points")
    _per_channel(self)
    z = self._q[2]
    return wrap(z.copy(), dt.float32 if z.dtype == np.float32 else dt.int64)


def q_per_channel_axis(self):
    _need_q(self, "q_per_channel_axis")
    _per_channel(self)
    return self._q[3]


def qscheme_of(self):
    _need_q(self, "qscheme")
    return self._q[0]


def q_repr(t, prefix="tensor("):
    """PyTorch's repr of a quantized tensor: the dequantized values, then size, dtype and the
    quantization parameters."""
    from .._printing import tensor_str, _add_suffixes
    a = _dequant_array(t)
    indent = len(prefix)
    body = tensor_str(a, dt.float32, indent) if a.size else "[]"
    scheme, scale, zp, axis = t._q
    suffixes = [f"size={tuple(a.shape)}", f"dtype={t._dtype!r}",
                f"quantization_scheme={scheme!r}"]
    if axis is None:
        suffixes += [f"scale={scale!r}", f"zero_point={zp!r}"]
    else:
        sd = dt.float32 if scale.dtype == np.float32 else dt.float64
        zd = dt.float32 if zp.dtype == np.float32 else dt.int64
        suffixes += [f"scale={wrap(scale, sd)!r}", f"zero_point={wrap(zp, zd)!r}",
                     f"axis={axis}"]
    if t._node is None and t._rg:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, indent)


def qparams_record(t):
    """t's quantization parameters as plain data (saved by torch.save and pickle)."""
    scheme, scale, zp, axis = t._q
    if axis is None:
        return [scheme.name, scale, zp, None]
    return [scheme.name, scale.tolist(), zp.tolist(), axis, str(scale.dtype), str(zp.dtype)]


def from_qparams_record(t, rec):
    """The quantized tensor over t's integers with the parameters of a qparams_record."""
    if rec[3] is None:
        q = (globals()[rec[0]], float(rec[1]), int(rec[2]), None)
    else:
        q = (globals()[rec[0]], np.array(rec[1], rec[4]), np.array(rec[2], rec[5]), int(rec[3]))
    return make_q(t._data, t._dtype, q)


def rebuild_q(arr, dtype_name, rec):
    return from_qparams_record(wrap(arr, dt._dtype_by_name(dtype_name)), rec)


# ---- dispatch ---------------------------------------------------------------------------------

# primitives PyTorch runs on per-tensor quantized tensors by moving their integers
_MOVES = frozenset(("as_strided", "diagonal", "expand", "flip", "permute", "reshape", "select",
                    "slice", "windows", "copy", "index", "gather"))
_COMPARE = frozenset(("eq", "ne", "lt", "le", "gt", "ge"))
# PyTorch's out-variant names where they are not "<prim>.out"
_ATEN = {"sum": "sum.IntList_out", "matmul": "mm.out", "add": "add.out", "sub": "sub.out",
         "prod": "prod.int_out", "amax": "amax.out", "amin": "amin.out",
         "kthvalue_index": "kthvalue.values"}


def _ints(a):
    """A quantized argument as a plain tensor over its integers (sharing them)."""
    return wrap(a._data, _INT[a._dtype.name])


def _requant(a, like):
    """a's values in like's parameters (cat of tensors quantized differently)."""
    if a._q[3] is None and like._q[3] is None and a._q[1:3] == like._q[1:3] and \
            a._dtype is like._dtype:
        return a._data
    return _q_tensor_affine(_dequant_array(a), like._q[1], like._q[2], like._dtype)


def _hook(p, args, attrs):
    for a in args:      # (every op pays for this loop once a quantized tensor exists)
        if isinstance(a, Tensor) and a._dtype.category == 4:
            break
    else:
        return _dispatch._Q_PASS
    qs = [a for a in args if isinstance(a, Tensor) and a._dtype.category == 4]
    q0 = qs[0]
    name = p.name
    if name in _COMPARE:    # compared by value
        other = [dequantize(a) if is_q(a) else a for a in args]
        if len(qs) == 1 and all(isinstance(a, Tensor) for a in args):
            raise RuntimeError("promoteTypes with quantized numbers is not handled yet; figure out"
                               " what the correct rules should be, offending types: "
                               + " ".join(dt.tname(a._dtype) for a in args))
        return _dispatch.apply(p, *other, **attrs)
    if name == "cast":
        raise RuntimeError("Creation of quantized tensor requires quantized dtype like "
                           "torch.quint8")
    if p.kind == "pointwise" and len(qs) < len(args):
        if not any(type(a) is int for a in args):     # (an int operand fails earlier)
            raise RuntimeError("promoteTypes with quantized numbers is not handled yet; figure out"
                               " what the correct rules should be, offending types: "
                               + " ".join(dt.tname(a._dtype) if isinstance(a, Tensor) else
                                          "Float" for a in args))
        raise RuntimeError("empty_strided not supported on quantized tensors yet see "
                           "https://github.com/pytorch/pytorch/issues/74540")
    if name in ("sigmoid", "tanh") and len(args) == 1:
        return unary_fixed(q0, name)
    if name == "relu" and q0._q[3] is None:
        return make_q(np.maximum(q0._data, q0._dtype.np.type(q0._q[2])), q0._dtype, q0._q)
    if name == "cat" and all(is_q(a) for a in args) and q0._q[3] is None:
        ints = [wrap(_requant(a, q0), _INT[q0._dtype.name]) for a in args]
        r = _dispatch.apply(p, *ints, **attrs)
        return make_q(r._data, q0._dtype, q0._q)
    if name in _MOVES and (q0._q[3] is None or name == "copy") and len(qs) == 1 and \
            args[0] is q0:
        r = _dispatch.apply(p, _ints(q0), *args[1:], **attrs)
        out = make_q(r._data, q0._dtype, q0._q)
        if r._base is not None:      # a view shares q0's memory
            out._base = q0._base if q0._base is not None else q0
        return out
    if name == "select" and q0._q[3] is not None and len(qs) == 1 and args[0] is q0:
        return _select_channel(p, q0, attrs)
    if name in _MOVES:
        raise RuntimeError("Setting strides is possible only on uniformly quantized tensor")
    raise _backend_error("aten::" + _ATEN.get(name, name + ".out"), q0)


def _select_channel(p, q0, attrs):
    """select() of a per-channel tensor: along its axis, that channel's parameters per tensor;
    along another dim, the axis shifts down past it."""
    scheme, scale, zp, axis = q0._q
    r = _dispatch.apply(p, _ints(q0), **attrs)
    dim = attrs.get("dim", 0) % q0.ndim
    if dim == axis:
        i = attrs.get("index", 0) % q0.shape[dim]
        q = (per_tensor_affine, float(scale[i]), int(zp[i]), None)
    else:
        q = (scheme, scale, zp, axis - (dim < axis))
    out = make_q(r._data, q0._dtype, q)
    out._base = q0._base if q0._base is not None else q0
    return out


# ---- writes into quantized tensors (ops_math.copy_ / fill_ / inplace, ops_index.setitem) ------

def _quantize_like(t, v):
    """The integers of float values v (broadcast to t's shape) in t's parameters."""
    a = np.broadcast_to(np.asarray(v, np.float32), t._data.shape)
    scheme, scale, zp, axis = t._q
    if axis is None:
        return _q_tensor_affine(a, scale, zp, t._dtype)
    return _q_channel(a, scale, zp, axis, t._dtype,
                      scheme is per_channel_affine_float_qparams)


def copy_q(self, src):
    """Tensor.copy_ where self or src is quantized: a float source is quantized in self's
    parameters; a quantized one gives self its integers and parameters (same scheme and dtype)."""
    if not is_q(self):
        raise RuntimeError("Copying from quantized Tensor to non-quantized Tensor is not allowed, "
                           "please use dequantize to get a float Tensor from a quantized Tensor")
    if is_q(src):
        if src._q[0] is not self._q[0]:
            raise RuntimeError("Quantized Copy only works with kPerTensorAffine and "
                               "kPerChannelAffine, and the same qscheme on both sides")
        if src._dtype is not self._dtype:
            raise RuntimeError("Expected self.scalar_type() == src.scalar_type() to be true, but "
                               "got false.  (Could this error message be improved?  If so, please "
                               "report an enhancement request to PyTorch.)")
        np.copyto(self._data, np.broadcast_to(src._data, self._data.shape))
        self._q = src._q
    else:
        from ..ops_math import _t
        np.copyto(self._data, _quantize_like(self, _dispatch.values(_t(src))))
    self._bump()
    return self


def fill_q(self, value, grad_name):
    if grad_name == "ZeroBackward0":
        raise _backend_error("aten::zero_", self)
    v = value.item() if isinstance(value, Tensor) else value
    np.copyto(self._data, _quantize_like(self, float(v)))
    self._bump()
    return self


def setitem_q(x, idx, value):
    """x[idx] = value: the value quantized in x's parameters (per tensor)."""
    if x._q[3] is not None:
        raise RuntimeError("Setting strides is possible only on uniformly quantized tensor")
    v = dequantize(value) if is_q(value) else value
    v = np.asarray(_dispatch.values(v) if isinstance(v, Tensor) else v, np.float32)
    ints = _ints(x)
    if not ints[idx].is_contiguous():
        raise RuntimeError("Quantized copy only works with contiguous and NHWC Tensors")
    ints[idx] = wrap(np.asarray(_q_tensor_affine(v, x._q[1], x._q[2], x._dtype)),
                     ints._dtype)
    x._bump()


def inplace_q(self, p, args, attrs):
    """self.<op>_(...) of a quantized tensor: PyTorch's out-of-place rule (its error, or the
    result), written back into self."""
    r = _dispatch.apply(p, self, *args, **attrs)
    if not is_q(r) or r._q != self._q or r.shape != self.shape:
        raise _backend_error(f"aten::{p.name}_", self)
    np.copyto(self._data, r._data)
    self._bump()
    return self


def on_ints(x, fn, round_result):
    """fn (a pool) run on a per-tensor quantized x's integers as float32; the result rounded
    half to even (averages) and quantized with x's parameters."""
    _per_tensor(x)
    zp = x._q[2] if round_result else 0     # (average padding counts as the zero point)
    r = np.asarray(_dispatch.values(fn(wrap(np.asarray(x._data, np.float32) - np.float32(zp),
                                            dt.float32))))
    if round_result:
        lo, hi = _RANGE[x._dtype.name]
        r = np.clip(np.rint(r) + zp, lo, hi)
    return make_q(np.ascontiguousarray(r.astype(x._dtype.np)), x._dtype, x._q)


# ---- QuantizedCPU kernels called from the ops' single definitions (max, sort, mean, ...) -----

def _promote_error(x, *others):
    return RuntimeError("promoteTypes with quantized numbers is not handled yet; figure out what "
                        "the correct rules should be, offending types: "
                        + " ".join([dt.tname(x._dtype)] + list(others)))


def on_int_order(x, fn, per_channel_msg=None):
    """fn (max, min, sort, topk, msort) run on a per-tensor quantized x's integers, whose order
    is its values' (scale > 0); the values it returns keep x's parameters, indices stay int64."""
    if x._q[3] is not None:
        if per_channel_msg:
            raise RuntimeError(per_channel_msg)
        _per_tensor(x)
    r = fn(_ints(x))

    def back(t):
        return make_q(np.array(t._data), x._dtype, x._q)
    if isinstance(r, Tensor):
        return back(r)
    return type(r)(back(r[0]), r[1])


def max_min(x, name, fn, no_dim):
    """torch.max / torch.min of a quantized x (per tensor only, as PyTorch)."""
    if no_dim and x._data.size == 0:
        raise IndexError(f"{name}(): Expected reduction dim 0 to have non-zero size.")
    return on_int_order(x, fn, f"{name.capitalize()} operator for quantized tensors only works "
                               "for per tensor quantized tensors. Please open an issue on "
                               "https://github.com/pytorch/pytorch/issues if you need per channel"
                               " quantized tensor support.")


def mean_q(x, dim, keepdim, dtype):
    """PyTorch's mean_out_quantized_cpu: over the innermost dims of a contiguous x, the integer
    sum / count in float32, rounded half to even (qmean_inner_dim_kernel); else the float mean
    of the dequantized values, quantized in x's parameters."""
    from ..ops_math import mean
    from compiler.ir.registry import norm_dims
    if dtype is not None and dtype is not x._dtype:
        raise RuntimeError(f"ScalarType {dt.tname(dtype)} is not supported in new_qtensor.")
    _per_tensor(x)
    dims = sorted(norm_dims("mean", None if dim is None else
                            (dim,) if isinstance(dim, int) else tuple(dim), x.ndim))
    if x.is_contiguous() and dims == list(range(x.ndim - len(dims), x.ndim)):
        a = np.asarray(x._data)
        lead = a.shape[:a.ndim - len(dims)]
        n = int(np.prod(a.shape[a.ndim - len(dims):]))
        tot = a.reshape(lead + (n,)).astype(np.int64).sum(-1)
        with np.errstate(all="ignore"):
            r = np.rint(tot.astype(np.float32) / np.float32(n))
        if keepdim:
            r = r.reshape(lead + (1,) * len(dims))
        lo, hi = _RANGE[x._dtype.name]
        return make_q(np.clip(np.nan_to_num(r), lo, hi).astype(x._dtype.np), x._dtype,
                      (per_tensor_affine, x._q[1], x._q[2], None))
    r = mean(wrap(_dequant_array(x), dt.float32), dim, keepdim)
    a = np.asarray(_dispatch.values(r), np.float32)
    return make_q(_q_tensor_affine(a, x._q[1], x._q[2], x._dtype), x._dtype,
                  (per_tensor_affine, x._q[1], x._q[2], None))


# the fixed output parameters of PyTorch's sigmoid, hardsigmoid (range [0, 1]) and tanh
# ([-1, 1]): the dtype's whole range
_FIXED = {"sigmoid": {"quint8": (1 / 256, 0), "qint8": (1 / 256, -128), "qint32": (2. ** -32, 0)},
          "tanh": {"quint8": (2 / 256, 128), "qint8": (2 / 256, 0), "qint32": (2. ** -31, 0)}}


def _fused_dequant(x):
    """PyTorch's vectorized dequantize: fma(q, scale, -zero_point * scale) in float32."""
    s = np.float32(x._q[1])
    return (np.asarray(x._data, np.float64) * np.float64(s)
            + np.float64(np.float32(-x._q[2] * s))).astype(np.float32)


# elements per step of cpu_kernel_vec's vector loop (two AVX2 vectors of the quantized type)
_LANES = {"quint8": 64, "qint8": 64, "qint32": 16}


def _vector_mask(n, lanes):
    """Which of n elements PyTorch's cpu_kernel_vec runs on its vector path: at::parallel_for
    splits over 32768 into one chunk per thread (ceil(n / tasks) each), and each chunk runs
    whole vector steps, then a scalar tail."""
    from runtime import threads
    tasks = 1 if n <= 32768 else min(threads.get(), -(-n // 32768))
    cs = -(-n // tasks) if n else 0
    pos = np.arange(n)
    start = pos - pos % cs if cs else pos
    size = np.minimum(start + cs, n) - start
    return pos - start < size - size % lanes


def kernel_vec(x, fn, scale, zp, fused=True):
    """A quantized pointwise op as PyTorch's cpu_kernel_vec runs it over contiguous x: the
    vector path (_vector_mask) dequantizes by fma (fused) or as (q - zero_point) * scale, and
    requantizes as rint(y * (1 / scale)) + zp; the scalar tail dequantizes as
    (q - zero_point) * scale and requantizes as rint(zp + y * (1 / scale)) (the zero point
    joins before rounding: 148.5 -> 148). fn(a, vector) gives float32 y."""
    _per_tensor(x)
    f = np.float32
    a = np.asarray(x._data).reshape(-1)
    vec = _vector_mask(a.size, _LANES[x._dtype.name])
    plain = ((a.astype(f) - f(x._q[2])) * f(x._q[1])).astype(f)
    inv = f(1) / f(scale)
    with np.errstate(all="ignore"):
        yv = fn(_fused_dequant(x).reshape(-1) if fused else plain, True)
        ys = fn(plain, False)
        tv, ts = (yv * inv).astype(f), (ys * inv).astype(f)
        if x._dtype is dt.qint32:      # (its vector quantize is the scalar one)
            rv = np.rint((tv + f(zp)).astype(f)).astype(np.float64)
        else:
            rv = np.rint(tv).astype(np.float64) + zp
        rs = np.rint((ts + f(zp)).astype(f)).astype(np.float64)
    lo, hi = _RANGE[x._dtype.name]
    r = np.clip(np.nan_to_num(np.where(vec, rv, rs)), lo, hi).astype(x._dtype.np)
    return make_q(r.reshape(x._data.shape), x._dtype,
                  (per_tensor_affine, float(scale), int(zp), None))


def _sigmoid(a, vector):
    # exp correctly rounded to float32 (PyTorch's Sleef one is within an ulp: only qint32's
    # 2^-32 scale shows it); the scalar path divides in double
    e = np.exp(-a.astype(np.float64)).astype(np.float32)
    if vector:
        return (np.float32(1) / (np.float32(1) + e)).astype(np.float32)
    return (1.0 / (1.0 + e.astype(np.float64))).astype(np.float32)


def _tanh(a, vector):
    # (the scalar path's tanhf is NumPy's float32 tanh, not correctly rounded)
    return np.tanh(a.astype(np.float64)).astype(np.float32) if vector else np.tanh(a)


def _hardsigmoid(a, vector):
    f = np.float32
    return (np.minimum(np.maximum((a + f(3)).astype(f), f(0)), f(6)) / f(6)).astype(f)


def unary_fixed(x, name, scale=None, zp=None):
    """quantized sigmoid / tanh / hardsigmoid: the float function of the dequantized values,
    quantized with the fixed parameters of its range (or the given ones: nnq.Sigmoid)."""
    _per_tensor(x)
    if scale is None:
        scale, zp = _FIXED["tanh" if name == "tanh" else "sigmoid"][x._dtype.name]
    fn = {"sigmoid": _sigmoid, "tanh": _tanh, "hardsigmoid": _hardsigmoid}[name]
    return kernel_vec(x, fn, scale, zp, fused=name != "sigmoid")


def leaky_relu_q(x, slope, scale, zp):
    """quantized::leaky_relu: x if x > 0 else x * slope, requantized with (scale, zp)."""
    f = np.float32
    return kernel_vec(x, lambda a, v: (a * np.where(a > 0, f(1), f(slope))).astype(f),
                      scale, zp)


def elu_q(x, alpha, scale, zp):
    """quantized::elu: x if x > 0 else (exp(x) - 1) * alpha in float32 (exp correctly
    rounded), requantized with (scale, zp)."""
    f = np.float32

    def fn(a, vector):
        e = np.exp(a.astype(np.float64)).astype(f)
        return np.where(a > 0, a, ((e - f(1)).astype(f) * f(alpha)).astype(f))
    return kernel_vec(x, fn, scale, zp)


def _quantize_val(v, scale, zp, dtype):
    """PyTorch's scalar quantize_val: round(v * (1 / scale)) + zero_point, clamped."""
    lo, hi = _RANGE[dtype.name]
    r = np.rint(np.float32(v) * (np.float32(1) / np.float32(scale)))
    return int(np.clip(float(r) + zp, lo, hi))


def clamp_refusal(x, op, bounds):
    """PyTorch's error for the clamps it has no quantized kernel for (clamp_min, clamp_max,
    clamp_, tensor bounds): a float bound fails type promotion first."""
    bs = [b for b in bounds if b is not None]
    if any(isinstance(b, float) or isinstance(b, Tensor) and b._dtype.is_floating_point
           for b in bs):
        return _promote_error(x, "Float")
    if any(isinstance(b, Tensor) for b in bs):
        return RuntimeError("empty_strided not supported on quantized tensors yet see "
                            "https://github.com/pytorch/pytorch/issues/74540")
    return _backend_error(f"aten::{op}.out", x)


def clamp_q(x, mn, mx):
    """clamp of a per-tensor quantized x by numbers: the bounds quantized in x's parameters,
    the integers clamped (min first, then max)."""
    if isinstance(mn, Tensor) or isinstance(mx, Tensor):
        raise clamp_refusal(x, "clamp", (mn, mx))
    _per_tensor(x)
    r = np.asarray(x._data)
    if mn is not None:
        r = np.maximum(r, _quantize_val(mn, x._q[1], x._q[2], x._dtype))
    if mx is not None:
        r = np.minimum(r, _quantize_val(mx, x._q[1], x._q[2], x._dtype))
    return make_q(r.astype(x._dtype.np), x._dtype, x._q)


_C10 = {"float32": "float", "float64": "double", "int64": "long int", "int32": "int",
        "int16": "short int", "int8": "signed char", "uint8": "unsigned char", "bool": "bool",
        "float16": "c10::Half", "bfloat16": "c10::BFloat16", "complex64": "c10::complex<float>",
        "complex128": "c10::complex<double>", "qint8": "c10::qint8", "quint8": "c10::quint8",
        "qint32": "c10::qint32", "quint4x2": "c10::quint4x2"}


def like_q(x, fill, dtype, zero=False):
    """zeros_like / ones_like / full_like / empty_like (fill None) of a quantized x: x's
    parameters, the value quantized in them; PyTorch zeroes with zero_, which it refuses."""
    if dtype is not None and dtype is not x._dtype:
        raise RuntimeError("It is currently not supported to specify a dtype that doesn't match "
                           "the input tensor's dtype via empty_like.  Specified: "
                           f"{_C10.get(dtype.name, dtype.name)} Input tensor's dtype: "
                           f"{_C10[x._dtype.name]}")
    if zero:
        raise _backend_error("aten::zero_", x)
    t = make_q(np.zeros(x._data.shape, x._dtype.np), x._dtype, x._q)
    if fill is not None:
        np.copyto(t._data, _quantize_like(t, float(fill)))
    return t


def _quantized_max_pool(nd):
    def f(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
        from ..nn import functional as F
        if not is_q(input):
            raise _backend_error(f"aten::quantized_max_pool{nd}d", input)
        return getattr(F, f"max_pool{nd}d")(input, kernel_size, stride or None, padding,
                                            dilation, ceil_mode)
    f.__name__ = f"quantized_max_pool{nd}d"
    f.__doc__ = f"torch.quantized_max_pool{nd}d: max_pool{nd}d of a quantized tensor."
    return f


quantized_max_pool1d = _quantized_max_pool(1)
quantized_max_pool2d = _quantized_max_pool(2)


def _bilinear_taps(n, o, align_corners, scale):
    """PyTorch's area_pixel_compute_source_index in float32: first taps, +1 offsets, weights."""
    f = np.float32
    if align_corners:
        r = f(n - 1) / f(o - 1) if o > 1 else f(0)
        src = (r * np.arange(o).astype(f)).astype(f)
    else:
        r = f(1.0 / scale) if scale is not None and scale > 0 else f(f(n) / f(o))
        src = ((r * (np.arange(o).astype(f) + f(0.5))).astype(f) - f(0.5)).astype(f)
        src = np.maximum(src, f(0))
    i0 = src.astype(np.int64)
    l1 = (src - i0.astype(f)).astype(f)
    return i0, (i0 < n - 1).astype(np.int64), (f(1) - l1).astype(f), l1


def upsample_bilinear_q(x, out_sizes, align_corners, scales):
    """Quantized 2-d bilinear upsampling (PyTorch's kernel): the four raw integers weighted in
    float32, rounded half to even (as PyTorch 2.13: the zero point never enters); the
    parameters stay."""
    _per_tensor(x)
    a = np.asarray(x._data)
    n_h, n_w = a.shape[2:]
    (oh, ow) = out_sizes
    if (oh, ow) == (n_h, n_w):
        return make_q(np.array(a), x._dtype, x._q)
    hi0, hp, h0, h1 = _bilinear_taps(n_h, oh, align_corners, None if scales is None else scales[0])
    wi0, wp, w0, w1 = _bilinear_taps(n_w, ow, align_corners, None if scales is None else scales[1])
    af = a.astype(np.float32)
    r0, r1 = af[:, :, hi0], af[:, :, hi0 + hp]         # (N, C, oh, W)

    def row(r):
        return (w0 * r[..., wi0]).astype(np.float32) + (w1 * r[..., wi0 + wp]).astype(np.float32)
    hh0, hh1 = h0[:, None], h1[:, None]
    res = ((hh0 * row(r0)).astype(np.float32) + (hh1 * row(r1)).astype(np.float32)).astype(
        np.float32)
    lo, hi = _RANGE[x._dtype.name]
    return make_q(np.clip(np.rint(res), lo, hi).astype(x._dtype.np), x._dtype, x._q)
