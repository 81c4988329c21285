"""torch.fake_quantize_per_tensor_affine / fake_quantize_per_channel_affine: quantize and
dequantize in the input's float dtype; the gradient passes straight through where the rounded
value fell inside [quant_min, quant_max] and is zero outside (PyTorch's cachemask kernels)."""
import numpy as np

from runtime import dtypes as dt
from .._dispatch import wrap, rename, values
from ..autograd.function import Function
from ..tensor import Tensor


def _fq(a, scale, zp, qmin, qmax, float_zp=False, f32=True):
    """(fake-quantized values, mask) of array a; scale/zp broadcast against a. f32 (PyTorch's
    per-tensor kernel): a * float32(1 / scale) in a's dtype decides the rounding, the result is
    computed in float32; else everything is in a's dtype (its per-channel kernel)."""
    dtype = a.dtype
    scale, zp = (np.asarray(v, np.float32 if f32 else dtype) for v in (scale, zp))
    with np.errstate(all="ignore"):
        inv = (scale.dtype.type(1) / scale).astype(dtype)
        if float_zp:
            r = np.rint(a * inv + zp)
        else:
            r = np.rint(a * inv) + zp
        mask = (r >= qmin) & (r <= qmax)
        out = (np.clip(r, qmin, qmax) - zp).astype(scale.dtype) * scale
    return out.astype(dtype), mask


class _FakeQuant(Function):
    @staticmethod
    def forward(ctx, x, scale, zp, qmin, qmax, float_zp, f32=True):
        out, mask = _fq(np.asarray(values(x)), scale, zp, qmin, qmax, float_zp, f32)
        ctx.mask = mask
        return wrap(out, x._dtype)

    @staticmethod
    def backward(ctx, g):
        return (g * wrap(ctx.mask.astype(g._dtype.np), g._dtype),) + (None,) * 6


def _check_range(quant_min, quant_max, zp_ok):
    if quant_min > quant_max:
        raise RuntimeError("`quant_min` should be less than or         equal to `quant_max`.")
    if not zp_ok:
        raise RuntimeError("`zero_point` must be between `quant_min` and `quant_max`.")


def fake_quantize_per_tensor_affine(input, scale, zero_point, quant_min, quant_max):
    """(clamp(round(input / scale) + zero_point, quant_min, quant_max) - zero_point) * scale."""
    tensor_qparams = isinstance(scale, Tensor)
    s = float(scale.item()) if tensor_qparams else float(scale)
    z = int(zero_point.item()) if isinstance(zero_point, Tensor) else int(zero_point)
    _check_range(quant_min, quant_max, quant_min <= z <= quant_max)
    r = _FakeQuant.apply(input, s, z, quant_min, quant_max, False)
    name = "FakeQuantizePerTensorAffineCachemask" + ("TensorQparams" if tensor_qparams else "")
    return rename(r, name + "Backward0") if r._node is not None else r


def fake_quantize_per_channel_affine(input, scale, zero_point, axis, quant_min, quant_max):
    """Per-channel fake quantization along `axis` (int32 zero points: added after rounding;
    float/half zero points: added before, as the float-qparams scheme does)."""
    from compiler.ir.registry import norm_dim
    if zero_point._dtype not in (dt.int32, dt.float32, dt.float16):
        raise RuntimeError(f"Zero-point must be Int32, Float or Half, found "
                           f"{dt.tname(zero_point._dtype)}")
    if scale._dtype not in (dt.float32, dt.bfloat16):
        raise RuntimeError(f"Scale must be Float or BFloat16, found {dt.tname(scale._dtype)}")
    axis = norm_dim("fake_quantize_per_channel_affine", axis, input.ndim)
    s, z = np.asarray(values(scale)), np.asarray(values(zero_point))
    if s.ndim != 1 or z.ndim != 1 or s.size != z.size or s.size != input.shape[axis]:
        raise RuntimeError("dimensions of scale and zero-point are not consistent with input "
                           "tensor")
    float_zp = zero_point._dtype.is_floating_point
    _check_range(quant_min, quant_max,
                 float_zp or bool(np.all((z >= quant_min) & (z <= quant_max))))
    shape = [1] * input.ndim
    shape[axis] = -1
    r = _FakeQuant.apply(input, s.reshape(shape), z.reshape(shape),
                         quant_min, quant_max, float_zp, False)
    return rename(r, "FakeQuantizePerChannelAffineCachemaskBackward0") if r._node is not None \
        else r
