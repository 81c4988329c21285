"""nn.functional: convolution, pooling, padding, normalisation, interpolation, attention.

Everything here is a decomposition into primitives, so autograd and graph capture come for free:
  convolution        pad (cat) -> windows (strided view) -> im2col reshape -> matmul
  transposed conv    matmul -> fold_windows (col2im) -> crop
  max pooling        window_max (max + flat index) -> plane_scatter (gradient to the max)
  avg pooling        windows -> sum -> div
  interpolation      separable: index (nearest) or a small weight matrix per spatial dim
  norms / attention  sum, mul, rsqrt, matmul, softmax
"""
import builtins
import math
import numbers
import warnings
import warnings

import numpy as np

from compiler.ir.registry import REGISTRY as P
from compiler.ops.conv import window_count
from runtime import dtypes as dt
from .. import _dispatch
from .. import _memory_format as _mf
from .. import ops_math as M
from .._dispatch import STATE, apply, rename, wrap_like, const
from ..tensor import Tensor
from ..ops_linalg import _half_gemm, _f32
from ..nested._storage import NestedLayoutError

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "conv_tbc", "unfold", "fold", "pad",
           "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices",
           "max_pool2d_with_indices", "max_pool3d_with_indices",
           "avg_pool1d", "avg_pool2d", "avg_pool3d",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
           "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
           "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices",
           "adaptive_max_pool3d_with_indices", "lp_pool1d", "lp_pool2d",
           "batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm",
           "local_response_norm",
           "interpolate", "upsample", "upsample_nearest", "upsample_bilinear",
           "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
           "scaled_dot_product_attention", "multi_head_attention_forward"]


# ---- small helpers --------------------------------------------------------------------------

def _ntuple(v, n, what="kernel_size", op="conv"):
    if isinstance(v, Tensor):
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        v = tuple(v)
        if len(v) == 1 and n > 1:
            v = v * n
        if len(v) != n:
            raise RuntimeError(f"{op}: expected {what} to be a single integer value or a list of {n} "
                               f"values to match the convolution dimensions, but got "
                               f"{what}={list(v)}")
        for k, e in enumerate(v):
            if not isinstance(e, numbers.Integral):
                raise TypeError(f"{op}(): argument '{what}' failed to unpack the object at pos "
                                f"{k + 1} with error \"type must be tuple of ints, but got "
                                f"{type(e).__name__}\" ({what}={list(v)})")
        return tuple(int(e) for e in v)
    return (int(v),) * n


def _reshape(x, shape):
    return apply(P["reshape"], x, shape=tuple(shape))


def _permute(x, dims):
    return apply(P["permute"], x, dims=tuple(dims))


def _slice(x, dim, start, stop):
    return apply(P["slice"], x, dim=dim, start=start, stop=stop, step=1)


def _full(shape, value, dtype, like=None):
    """P["full"]; on `like`'s device when given (padding beside a device tensor)."""
    if like is not None:
        from ..ops_math import full_on
        return full_on(like, shape, value, dtype)
    return apply(P["full"], shape=tuple(shape), value=value, dtype=dtype)


def _const(arr, dtype, like):
    """A constant computed on the host, on `like`'s device."""
    return wrap_like(np.asarray(arr, dtype=dtype.np, order="C"), dtype, like)


def _prod(xs):
    r = 1
    for x in xs:
        r *= x
    return r


def _check_float(op, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")
    if not x._dtype.is_floating_point:
        raise RuntimeError(f"{op}: \"{op}\" not implemented for '{x._dtype.name.capitalize()}' "
                           f"(input of shape {list(x.shape)}); use a floating point tensor")


def _batched(op, x, nd, msg=None):
    """Accept (C, *spatial) or (N, C, *spatial); return the batched tensor and whether it was."""
    if x.ndim == nd + 1:
        return _reshape(x, (1,) + tuple(x.shape)), True
    if x.ndim == nd + 2:
        return x, False
    raise RuntimeError(msg or f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to "
                              f"{op}, but got input of size: {list(x.shape)}")


def _unbatch(x, was):
    return _reshape(x, tuple(x.shape[1:])) if was else x


def _fmt(x):
    """x's suggested memory format: the one PyTorch's cpu kernels make a spatial op's result in
    (conv, pooling, interpolation, padding, group_norm, pixel/channel shuffle)."""
    return _mf.suggest_of(x._data)


def _fresh(out, input):
    """out, or a copy of it where it is input or a view of input's memory (a pad that pads
    nothing, a shuffle by 1): PyTorch's kernels always make a new tensor."""
    b = input._base if input._base is not None else input
    if out is input or out._base is b:
        return apply(P["copy"], out)
    return out


# ---- padding ---------------------------------------------------------------------------------

def _pad_dims(x, pads, value=0.0):
    """Constant padding of the trailing len(pads) dims; pads[i] = (lo, hi), negative crops."""
    nd = len(pads)
    for i, (lo, hi) in enumerate(pads):
        d = x.ndim - nd + i
        size = x.shape[d]
        if lo < 0 or hi < 0:
            x = _slice(x, d, builtins.max(-lo, 0), size - builtins.max(-hi, 0))
        parts = []
        if lo > 0:
            parts.append(_full(tuple(x.shape[:d]) + (lo,) + tuple(x.shape[d + 1:]), value, x._dtype,
                               x))
        parts.append(x)
        if hi > 0:
            parts.append(_full(tuple(x.shape[:d]) + (hi,) + tuple(x.shape[d + 1:]), value, x._dtype,
                               x))
        if len(parts) > 1:
            x = apply(P["cat"], *parts, dim=d)
    return x


def _pad_mode(x, pads, mode):
    """reflect / replicate / circular padding built from slices, flips and expands."""
    nd = len(pads)
    if mode != "circular":
        dt.refuse_chalf(f"{'reflection' if mode == 'reflect' else 'replication'}_pad{nd}d",
                        x._dtype)
    for i, (lo, hi) in enumerate(pads):
        d = x.ndim - nd + i
        size = x.shape[d]
        if mode == "circular" and (lo > size or hi > size):
            raise RuntimeError("Padding value causes wrapping around more than once.")
        if size + lo + hi < (0 if mode == "circular" else 1):
            name = "DHW"[3 - nd + i]
            if mode == "circular":
                raise RuntimeError(f"Negative padding value is resulting in an empty dimension "
                                   f"(padding ({lo}, {hi}) at dimension {d} of input "
                                   f"{list(x.shape)})")
            raise RuntimeError(f"input ({name}: {size}) is too small. Calculated output {name}: "
                               f"{size + lo + hi} (padding ({lo}, {hi}) at dimension {d})")
        if mode == "reflect" and (lo >= size or hi >= size):
            raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding "
                               f"input dimension, but got: padding ({lo}, {hi}) at dimension {d} "
                               f"of input {list(x.shape)}")
        crop = lo < 0 or hi < 0
        # PyTorch reflects about the *uncropped* input (out[i] = in[reflect(i - lo)]), so
        # reflect pads first and crops after; replicate/circular crop first.
        if crop and mode != "reflect":
            x = _slice(x, d, builtins.max(-lo, 0), size - builtins.max(-hi, 0))
            size = x.shape[d]
        parts = []
        if lo > 0:
            if mode == "reflect":
                parts.append(apply(P["flip"], _slice(x, d, 1, lo + 1), dims=(d,)))
            elif mode == "replicate":
                e = _slice(x, d, 0, 1)
                parts.append(apply(P["expand"], e, shape=tuple(x.shape[:d]) + (lo,) + tuple(x.shape[d + 1:])))
            else:
                parts.append(_slice(x, d, size - lo, size))
        parts.append(x)
        if hi > 0:
            if mode == "reflect":
                parts.append(apply(P["flip"], _slice(x, d, size - hi - 1, size - 1), dims=(d,)))
            elif mode == "replicate":
                e = _slice(x, d, size - 1, size)
                parts.append(apply(P["expand"], e, shape=tuple(x.shape[:d]) + (hi,) + tuple(x.shape[d + 1:])))
            else:
                parts.append(_slice(x, d, 0, hi))
        if len(parts) > 1:
            x = apply(P["cat"], *parts, dim=d)
        if crop and mode == "reflect":
            n_out = x.shape[d]
            x = _slice(x, d, builtins.max(-lo, 0), n_out - builtins.max(-hi, 0))
    return x


# (PyTorch's circular pad writes into slices of an empty tensor: CopySlices)
_PAD_NAMES = {"constant": "ConstantPadNdBackward0", "reflect": "ReflectionPad{}DBackward0",
              "replicate": "ReplicationPad{}DBackward0", "circular": "CopySlices"}


def pad(input, pad, mode="constant", value=None):
    """F.pad: `pad` lists (left, right) pairs starting from the last dimension."""
    if not isinstance(input, Tensor):
        raise TypeError(f"pad(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    pad = [int(p) for p in pad]
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    n = len(pad) // 2
    if n > input.ndim:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input "
                           f"dimension but got padding length {len(pad)} and input of dimension "
                           f"{input.ndim}")
    pads = [(pad[2 * (n - 1 - i)], pad[2 * (n - 1 - i) + 1]) for i in range(n)]
    if mode == "constant":
        out = _pad_dims(input, pads, 0.0 if value is None else value)
        for (lo, hi), s in zip(pads, input.shape[input.ndim - n:]):
            if s + lo + hi < 0:
                raise RuntimeError(f"The input size {s}, plus negative padding {lo} and {hi} "
                                   f"resulted in a negative output size, which is invalid. Check "
                                   f"dimension {input.ndim - n} of your input.")
        if all(lo <= 0 and hi <= 0 for lo, hi in pads):
            out = apply(P["copy"], out)     # PyTorch: narrow, then clone (preserve_format)
        else:
            out = _mf.lay_out(out, _fmt(input))
        return rename(out, "ConstantPadNdBackward0")
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if value is not None and value != 0:
        raise RuntimeError(f"Padding mode \"{mode}\" doesn't take in value argument")
    if n not in (1, 2, 3) or input.ndim not in (n + 1, n + 2):
        raise NotImplementedError(
            f"Padding size {len(pad)} is not supported for {input.ndim}D input tensor.\n"
            "Supported combinations for non-constant padding:\n"
            "  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
            "  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
            "  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)")
    out = _fresh(_pad_mode(input, pads, mode), input)
    out = _mf.lay_out(out, _fmt(input) if mode != "circular" else _mf.contiguous_format)
    return rename(out, _PAD_NAMES[mode].format(n), link=input if mode != "circular" else None)


# ---- convolution -------------------------------------------------------------------------------

def _conv_padding(op, padding, nd, kernel, stride, dilation):
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            pads = []
            if any(d % 2 and not k % 2 for k, d in zip(kernel, dilation)):
                warnings.warn("Using padding='same' with even kernel lengths and odd dilation may "
                              "require a zero-padded copy of the input be created (Triggered "
                              "internally at /__w/pytorch/pytorch/aten/src/ATen/native/"
                              "Convolution.cpp:1101.)", stacklevel=4)
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))   # extra on the right, as PyTorch
            return pads
        raise RuntimeError(f"Invalid padding string: '{padding}'")
    p = _ntuple(padding, nd, "padding", op)
    if any(e < 0 for e in p):
        raise RuntimeError(f"{op}: negative padding is not supported (got padding={list(p)})")
    return [(e, e) for e in p]


def _conv_nd(nd, op, input, weight, bias, stride, padding, dilation, groups):
    _check_float(op, input)
    x, unb = _batched(op, input, nd)
    if not isinstance(weight, Tensor) or weight.ndim != nd + 2:
        raise RuntimeError(f"{op}: expected weight to be a {nd + 2}D tensor, but got weight of "
                           f"size {list(getattr(weight, 'shape', []))}")
    if weight._dtype is not x._dtype:
        raise RuntimeError(f"{op}: Input type ({x._dtype.name}) and weight type "
                           f"({weight._dtype.name}) should be the same")
    groups = int(groups)
    if groups <= 0:
        raise RuntimeError(f"{op}: non-positive groups is not supported (got groups={groups})")
    stride = _ntuple(stride, nd, "stride", op)
    dilation = _ntuple(dilation, nd, "dilation", op)
    if any(s <= 0 for s in stride):
        raise RuntimeError(f"{op}: non-positive stride is not supported (got stride={list(stride)})")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"{op}: dilation should be greater than zero (got {list(dilation)})")
    cout, cin_g = weight.shape[0], weight.shape[1]
    kernel = tuple(weight.shape[2:])
    if cout % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at "
                           f"dimension 0, but got weight of size [{list(weight.shape)}] instead")
    N, C = x.shape[0], x.shape[1]
    if C != cin_g * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected "
                           f"input{list(x.shape)} to have {cin_g * groups} channels, but got {C} "
                           f"channels instead")
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != cout):
        raise RuntimeError(f"Given weight of size {list(weight.shape)}, expected bias to be 1-dimensional "
                           f"with {cout} elements, but got bias of size {list(bias.shape)} instead")
    pads = _conv_padding(op, padding, nd, kernel, stride, dilation)
    fmt = _conv_format(nd, input, weight, groups)
    padded = [s + lo + hi for s, (lo, hi) in zip(x.shape[2:], pads)]
    eff = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if any(e > p for e, p in zip(eff, padded)):
        raise RuntimeError(f"Calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
                           f"Kernel size: ({' x '.join(map(str, eff))}). Kernel size can't be greater "
                           f"than actual input size")
    if any(lo or hi for lo, hi in pads):
        x = _pad_dims(x, pads)
    cols = apply(P["windows"], x, kernel=kernel, stride=stride, dilation=dilation)  # N,C,O..,K..
    outs = tuple(cols.shape[2:2 + nd])
    L = _prod(outs)
    # im2col: (N, C, K.., O..) -> (N, G, Cg*K, L); one batched matmul per group
    cols = _permute(cols, (0, 1) + tuple(range(2 + nd, 2 + 2 * nd)) + tuple(range(2, 2 + nd)))
    cols = _reshape(cols, (N, groups, cin_g * _prod(kernel), L))
    w = _reshape(weight, (groups, cout // groups, cin_g * _prod(kernel)))
    half = _half_gemm(cols, w, bias) if bias is not None else None
    if half:            # (the bias joins the float32 sum before the one rounding, as addmm)
        cols, w, bias = _f32(cols, w, bias)
    out = _reshape(apply(P["matmul"], w, cols), (N, cout) + outs)
    if bias is not None:
        out = apply(P["add"], out, _reshape(bias, (cout,) + (1,) * nd))
    if half:
        out = apply(P["cast"], out, dtype=half)
    r = rename(_unbatch(_mf.lay_out(out, fmt), unb), "ConvolutionBackward0",
               link=(input, weight), unused=True)
    if r._node is not None and not unb and all(lo == hi for lo, hi in pads):
        _dispatch.saved_extra(
            r, input=input, weight=weight, stride=stride, padding=tuple(lo for lo, _ in pads),
            dilation=dilation, transposed=False, output_padding=(0,) * nd, groups=groups,
            bias_sym_sizes_opt=tuple(bias.shape) if bias is not None else (0,))
    return r


def conv_tbc(input, weight, bias, pad=0):
    """torch.conv_tbc: 1-d convolution of a (time, batch, channel) input with a (kernel width,
    in_channels, out_channels) weight; out[t] = bias + sum_k x[t - pad + k] @ weight[k], a
    negative pad cropping. One matmul over the K shifted slices laid side by side."""
    for name, t in (("self", input), ("weight", weight), ("bias", bias)):
        if not isinstance(t, Tensor):
            raise TypeError(f"conv_tbc(): argument '{name}' must be Tensor, not {type(t).__name__}")
    if isinstance(pad, bool) or not isinstance(pad, (numbers.Integral, Tensor)):
        raise TypeError(f"conv_tbc(): argument 'pad' (position 4) must be int, not "
                        f"{type(pad).__name__}")
    pad = int(pad)
    if input.ndim != 3:
        raise RuntimeError("Input must have 3 dims: time, batch, in_channel")
    if weight.ndim != 3:
        raise RuntimeError("Weight tensor must have 3 dims: kernel_width, in_channels, "
                           "out_channels.")
    if bias.ndim != 1:
        raise RuntimeError("Bias must be 1-D")
    T, B, cin = input.shape
    K, _, cout = weight.shape
    olen = T - K + 1 + 2 * pad
    if cin != weight.shape[1]:
        raise RuntimeError("Input dim 2 (input channels) is not == dim 1 in the weight tensor")
    if cout != bias.shape[0]:
        raise RuntimeError("Bias size must equal dim 2 in the weight tensor (output channels).")
    if olen < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {olen}: "
                           f"[{olen}, {B}, {cout}]")
    if weight._dtype is not input._dtype:
        raise RuntimeError(f"self and mat2 must have the same dtype, but got "
                           f"{dt.tname(input._dtype)} and {dt.tname(weight._dtype)}")
    if input._dtype is dt.bool_:
        raise NotImplementedError("\"addmm_impl_cpu_\" not implemented for 'Bool'")
    # the output starts as bias (in input's dtype) and gathers each tap's product
    out = apply(P["expand"], M.cast(bias, input._dtype), shape=(olen, B, cout))
    if K:
        x = _pad_dims(input, ((pad, pad), (0, 0), (0, 0)))
        x = apply(P["cat"], *[_slice(x, 0, k, k + olen) for k in range(K)], dim=2)
    else:       # no taps: a (olen, B, 0) operand still ties input and weight in (zero gradients)
        x = _pad_dims(_slice(input, 2, 0, 0), ((0, olen - T), (0, 0), (0, 0)))
    out = apply(P["add"], apply(P["matmul"], x, _reshape(weight, (K * cin, cout))), out)
    return rename(out, "ConvTbcBackward0")


def _conv_format(nd, input, weight, groups):
    """The format of PyTorch's cpu convolution result: channels_last(_3d) when the input (an
    unbatched one as unsqueeze(0) strides it) or the weight suggests it; 1-d is contiguous. 3-d
    only where it takes its mkldnn path (float32, and not a small single-image ungrouped
    convolution, whose kernel is contiguous only; PyTorch run with more than one thread)."""
    a = input._data
    if nd == 1 or type(a) is not np.ndarray:
        return _mf.contiguous_format
    shape, st = a.shape, [s // a.itemsize for s in a.strides]
    if len(shape) == nd + 1:
        shape, st = (1,) + shape, [shape[0] * st[0]] + st
    if nd == 3 and (weight._dtype is not dt.float32 or not (
            groups > 1 or shape[0] > 1 or shape[0] * shape[1] * shape[2] * shape[3] > 20480 or
            (weight.shape[-1] > 3 and weight.shape[-2] > 3))):
        return _mf.contiguous_format
    f = _mf.suggest(shape, st)
    return f if f is not _mf.contiguous_format else _fmt(weight)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv_nd(1, "conv1d", input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv_nd(2, "conv2d", input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv_nd(3, "conv3d", input, weight, bias, stride, padding, dilation, groups)


def conv_transpose_output_size(nd, in_sizes, kernel, stride, padding, dilation, output_padding):
    return tuple((i - 1) * s - 2 * p + d * (k - 1) + op + 1 for i, k, s, p, d, op in
                 zip(in_sizes, kernel, stride, padding, dilation, output_padding))


def _conv_transpose_nd(nd, op, input, weight, bias, stride, padding, output_padding, groups,
                       dilation):
    _check_float(op, input)
    x, unb = _batched(op, input, nd)
    if not isinstance(weight, Tensor) or weight.ndim != nd + 2:
        raise RuntimeError(f"{op}: expected weight to be a {nd + 2}D tensor, but got weight of "
                           f"size {list(getattr(weight, 'shape', []))}")
    if weight._dtype is not x._dtype:
        raise RuntimeError(f"{op}: Input type ({x._dtype.name}) and weight type "
                           f"({weight._dtype.name}) should be the same")
    groups = int(groups)
    stride = _ntuple(stride, nd, "stride", op)
    dilation = _ntuple(dilation, nd, "dilation", op)
    padding = _ntuple(padding, nd, "padding", op)
    output_padding = _ntuple(output_padding, nd, "output_padding", op)
    if any(e < 0 for e in padding):
        raise RuntimeError(f"{op}: negative padding is not supported (got padding={list(padding)})")
    if any(e < 0 for e in output_padding):
        raise RuntimeError(f"{op}: negative output_padding is not supported (got "
                           f"output_padding={list(output_padding)})")
    cin, cout_g = weight.shape[0], weight.shape[1]
    kernel = tuple(weight.shape[2:])
    N, C = x.shape[0], x.shape[1]
    if cin % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at "
                           f"dimension 0, but got weight of size [{list(weight.shape)}] instead")
    if C != cin:
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected "
                           f"input{list(x.shape)} to have {cin} channels, but got {C} channels instead")
    if any(o >= s and o >= d for o, s, d in zip(output_padding, stride, dilation)):
        names = ["depth", "height", "width"][3 - nd:]
        msg = " ".join(f"output_padding_{n}: {o}" for n, o in zip(names, output_padding))
        msg += " " + " ".join(f"stride_{n}: {s}" for n, s in zip(names, stride))
        msg += " " + " ".join(f"dilation_{n}: {d}" for n, d in zip(names, dilation))
        raise RuntimeError(f"output padding must be smaller than either stride or dilation, but "
                           f"got {msg}")
    cout = cout_g * groups
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != cout):
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected bias "
                           f"to be 1-dimensional with {cout} elements, but got bias of size "
                           f"{list(bias.shape)} instead")
    ins = tuple(x.shape[2:])
    out_sizes = conv_transpose_output_size(nd, ins, kernel, stride, padding, dilation,
                                           output_padding)
    if any(o <= 0 for o in out_sizes):
        raise RuntimeError(f"Given input size per channel: ({' x '.join(map(str, ins))}). Calculated "
                           f"output size per channel: ({' x '.join(map(str, out_sizes))}). Output "
                           f"size is too small")
    fmt = _conv_format(nd, input, weight, groups)
    L = _prod(ins)
    K = _prod(kernel)
    cin_g = cin // groups
    xg = _reshape(x, (N, groups, cin_g, L))
    w = _reshape(weight, (groups, cin_g, cout_g * K))
    half = _half_gemm(xg, w, bias) if bias is not None else None
    if half:            # (the bias joins the float32 sums before the one rounding, as addmm)
        xg, w, bias = _f32(xg, w, bias)
    cols = apply(P["matmul"], _permute(w, (0, 2, 1)), xg)            # N, G, Cout_g*K, L
    cols = _reshape(cols, (N, cout) + kernel + ins)
    cols = _permute(cols, (0, 1) + tuple(range(2 + nd, 2 + 2 * nd)) + tuple(range(2, 2 + nd)))
    full = tuple((i - 1) * s + d * (k - 1) + 1 for i, k, s, d in zip(ins, kernel, stride, dilation))
    out = apply(P["fold_windows"], cols, size=full, kernel=kernel, stride=stride, dilation=dilation)
    # padding crops both ends; output_padding adds zeros at the end
    crop = [(-p, op - p) for p, op in zip(padding, output_padding)]
    if any(lo or hi for lo, hi in crop):
        out = _pad_dims(out, crop)
    if bias is not None:
        out = apply(P["add"], out, _reshape(bias, (cout,) + (1,) * nd))
    if half:
        out = apply(P["cast"], out, dtype=half)
    return rename(_unbatch(_mf.lay_out(out, fmt), unb), "ConvolutionBackward0",
                  link=(input, weight), unused=True)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    return _conv_transpose_nd(1, "conv_transpose1d", input, weight, bias, stride, padding,
                              output_padding, groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    return _conv_transpose_nd(2, "conv_transpose2d", input, weight, bias, stride, padding,
                              output_padding, groups, dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    return _conv_transpose_nd(3, "conv_transpose3d", input, weight, bias, stride, padding,
                              output_padding, groups, dilation)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """im2col: (N, C, H, W) -> (N, C*kH*kW, L)."""
    if input.ndim not in (3, 4):
        raise RuntimeError(f"Expected 3D or 4D (batch mode) tensor with possibly 0 batch size "
                           f"and other non-zero dimensions for input, but got: "
                           f"{list(input.shape)}")
    x, unb = _batched("unfold", input, 2)
    k = _ntuple(kernel_size, 2, "kernel_size", "unfold")
    d = _ntuple(dilation, 2, "dilation", "unfold")
    p = _ntuple(padding, 2, "padding", "unfold")
    s = _ntuple(stride, 2, "stride", "unfold")
    padded = [n + 2 * q for n, q in zip(x.shape[2:], p)]
    outs = [window_count("unfold", n, kk, ss, dd) for n, kk, ss, dd in zip(padded, k, s, d)]
    if any(o < 1 for o in outs):
        raise RuntimeError(f"Given input with spatial size ({x.shape[2]}, {x.shape[3]}), "
                           f"kernel_size=({k[0]}, {k[1]}), dilation=({d[0]}, {d[1]}), "
                           f"padding=({p[0]}, {p[1]}), calculated shape of the array of sliding "
                           f"blocks as ({outs[0]}, {outs[1]}), but its components must be at least one.")
    if any(p):
        x = _pad_dims(x, [(q, q) for q in p])
    cols = apply(P["windows"], x, kernel=k, stride=s, dilation=d)      # N,C,OH,OW,kH,kW
    cols = _permute(cols, (0, 1, 4, 5, 2, 3))
    out = _reshape(cols, (x.shape[0], x.shape[1] * k[0] * k[1], outs[0] * outs[1]))
    return rename(_unbatch(out, unb), "Im2ColBackward0")


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """col2im: (N, C*kH*kW, L) -> (N, C, H, W), summing overlapping values."""
    if input.ndim not in (2, 3):
        raise RuntimeError(f"Expected 2D or 3D (batch mode) tensor for input with possibly 0 "
                           f"batch size and non-zero dimensions for input, but got: "
                           f"{list(input.shape)}")
    x, unb = (_reshape(input, (1,) + tuple(input.shape)), True) if input.ndim == 2 else (input, False)
    osz = _ntuple(output_size, 2, "output_size", "fold")
    k = _ntuple(kernel_size, 2, "kernel_size", "fold")
    d = _ntuple(dilation, 2, "dilation", "fold")
    p = _ntuple(padding, 2, "padding", "fold")
    s = _ntuple(stride, 2, "stride", "fold")
    N, CK, L = x.shape
    K = k[0] * k[1]
    if CK % K:
        raise RuntimeError(f"Expected size of input's dimension 1 to be divisible by the product of "
                           f"kernel_size, but got input.size(1)={CK} and kernel_size=({k[0]}, {k[1]}).")
    padded = [n + 2 * q for n, q in zip(osz, p)]
    outs = [window_count("fold", n, kk, ss, dd) for n, kk, ss, dd in zip(padded, k, s, d)]
    if outs[0] * outs[1] != L:
        raise RuntimeError(f"Given output_size=({osz[0]}, {osz[1]}), kernel_size=({k[0]}, {k[1]}), "
                           f"dilation=({d[0]}, {d[1]}), padding=({p[0]}, {p[1]}), "
                           f"stride=({s[0]}, {s[1]}), expected size of input's dimension 2 to match "
                           f"the calculated number of sliding blocks {outs[0]} * {outs[1]} = "
                           f"{outs[0] * outs[1]}, but got input.size(2)={L}.")
    C = CK // K
    cols = _permute(_reshape(x, (N, C, k[0], k[1], outs[0], outs[1])), (0, 1, 4, 5, 2, 3))
    out = apply(P["fold_windows"], cols, size=tuple(padded), kernel=k, stride=s, dilation=d)
    if any(p):
        out = _pad_dims(out, [(-q, -q) for q in p])
    return rename(_unbatch(out, unb), "Col2ImBackward0")


# ---- pooling --------------------------------------------------------------------------------------

def _pool_out(size, k, s, p, d, ceil_mode):
    num = size + 2 * p - d * (k - 1) - 1
    o = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (o - 1) * s >= size + p:   # last window must start inside the input
        o -= 1
    return o


def _pool_setup(nd, op, input, kernel_size, stride, padding, dilation, ceil_mode):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    if input.ndim not in (nd + 1, nd + 2) or input.numel() == 0:
        raise RuntimeError(f"{op}: non-empty {nd + 1}D or {nd + 2}D (batch mode) tensor expected "
                           f"for input, but got input of size: {list(input.shape)}")
    k = _ntuple(kernel_size, nd, "kernel_size", op)
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) \
        else _ntuple(stride, nd, "stride", op)
    p = _ntuple(padding, nd, "padding", op)
    d = _ntuple(dilation, nd, "dilation", op)
    if any(e <= 0 for e in k):
        raise RuntimeError(f"{op}: kernel_size must be greater than zero, but got {list(k)}")
    if any(e <= 0 for e in s):
        raise RuntimeError(f"{op}: stride must be greater than zero, but got {list(s)}")
    if any(e <= 0 for e in d):
        raise RuntimeError(f"{op}: dilation must be greater than zero, but got {list(d)}")
    for kk, pp, dd in zip(k, p, d):
        if pp < 0 or pp > ((kk - 1) * dd + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got "
                               f"pad={pp}, kernel_size={kk} and dilation={dd}")
    x, unb = _batched(op, input, nd)
    sizes = tuple(x.shape[2:])
    outs = tuple(_pool_out(n, kk, ss, pp, dd, ceil_mode) for n, kk, ss, pp, dd in zip(sizes, k, s, p, d))
    if any(o < 1 for o in outs):
        C = x.shape[1]
        raise RuntimeError(f"Given input size: ({'x'.join(map(str, (C,) + sizes))}). Calculated "
                           f"output size: ({'x'.join(map(str, (C,) + outs))}). Output size is too small")
    # right padding: p, plus whatever the last (ceil_mode) window needs beyond it
    pads = []
    for n, kk, ss, pp, dd, o in zip(sizes, k, s, p, d, outs):
        need = (o - 1) * ss + dd * (kk - 1) + 1
        pads.append((pp, builtins.max(need - n - pp, 0)))
    return x, unb, k, s, p, d, outs, pads


def _is_q(x):
    return isinstance(x, Tensor) and x._dtype.category == 4


def _q_pool(x, fn, average):
    """A pool of a quantized tensor (PyTorch's QuantizedCPU kernels): fn on its integers,
    averages rounded half to even; the quantization parameters stay."""
    from ..ao import _qtensor as Q
    return Q.on_ints(x, fn, average)


def _max_pool(nd, op, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    if _is_q(input) and not return_indices:
        return _q_pool(input, lambda t: _max_pool(nd, op, t, kernel_size, stride, padding,
                                                  dilation, ceil_mode, False), False)
    x, unb, k, s, p, d, outs, pads = _pool_setup(nd, op, input, kernel_size, stride, padding,
                                                 dilation, ceil_mode)
    if not (x._dtype.is_floating_point or x._dtype.category == 1):
        raise RuntimeError(f"{op}: \"max_pool\" not implemented for '{x._dtype.name}'")
    # one primitive: max and PyTorch's flat index of each window (padding implicit, never
    # taken); its gradient adds into the input plane at those indices
    val, ind = apply(P["window_max"], x, kernel=k, stride=s, dilation=d, padding=tuple(pads))
    fmt = _mf.contiguous_format if unb else _fmt(x)
    # PyTorch's 1-d pools run the 2-d kernel on an unsqueezed input and squeeze it back
    name = f"MaxPool{nd}DWithIndicesBackward0" if nd > 1 else "SqueezeBackward1"
    val = rename(_unbatch(_mf.lay_out(val, fmt), unb), name, link=x)
    if nd == 2 and not unb and val._node is not None:
        _dispatch.saved_extra(
            val, self=input, kernel_size=_ntuple(kernel_size, 2, "kernel_size", op),
            stride=() if stride is None or stride == [] else _ntuple(stride, 2, "stride", op),
            padding=_ntuple(padding, 2, "padding", op),
            dilation=_ntuple(dilation, 2, "dilation", op), ceil_mode=bool(ceil_mode),
            result1=ind)
    if not return_indices:
        return val
    return val, _unbatch(_mf.lay_out(ind, fmt), unb)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_pool(1, "max_pool1d", input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_pool(2, "max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_pool(3, "max_pool3d", input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def _avg_pool(nd, op, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    if _is_q(input):
        return _q_pool(input, lambda t: _avg_pool(nd, op, t, kernel_size, stride, padding,
                                                  ceil_mode, count_include_pad,
                                                  divisor_override), True)
    if nd == 3 and isinstance(input, Tensor) and input.ndim in (4, 5):
        # PyTorch's avg_pool3d (and so lp_pool3d) checks the unpadded input against the
        # kernel before the output size
        sz, kk = tuple(input.shape[-3:]), _ntuple(kernel_size, 3, "kernel_size", op)
        if any(n < q for n, q in zip(sz, kk)):
            raise RuntimeError(f"{op}: input image (T: {sz[0]} H: {sz[1]} W: {sz[2]}) smaller "
                               f"than kernel size (kT: {kk[0]} kH: {kk[1]} kW: {kk[2]})")
    x, unb, k, s, p, d, outs, pads = _pool_setup(nd, op, input, kernel_size, stride, padding, 1,
                                                 ceil_mode)
    _check_float(op, x)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    sizes = tuple(x.shape[2:])
    xp = _pad_dims(x, pads, 0.0) if any(a or b for a, b in pads) else x
    win = apply(P["windows"], xp, kernel=k, stride=s, dilation=d)
    tot = apply(P["sum"], win, dims=tuple(range(2 + nd, 2 + 2 * nd)), keepdim=False)
    if divisor_override is not None:
        div = divisor_override
    else:
        # per-dim window sizes, as PyTorch counts them: clipped to the padded input (and to
        # the input itself when count_include_pad is False); the divisor is their product
        div_arr = np.ones(outs, np.float64)
        for i in range(nd):
            st = np.arange(outs[i]) * s[i] - p[i]
            en = np.minimum(st + k[i], sizes[i] + p[i])
            cnt = en - st
            if not count_include_pad:
                cnt = np.minimum(en, sizes[i]) - np.maximum(st, 0)
            div_arr = div_arr * cnt.reshape((-1,) + (1,) * (nd - 1 - i))
        div = float(div_arr.flat[0]) if np.all(div_arr == div_arr.flat[0]) else \
            _const(div_arr, x._dtype, x)
    out = apply(P["div"], tot, div)
    if nd > 1:
        # PyTorch's avg_pool3d kernel is contiguous only; avg_pool1d is avg_pool2d of an
        # unsqueezed input there, left as it is
        out = _mf.lay_out(out, _fmt(x) if nd == 2 and not unb else _mf.contiguous_format)
    return rename(_unbatch(out, unb), f"AvgPool{nd}DBackward0" if nd > 1 else "SqueezeBackward1",
                  link=x)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    return _avg_pool(1, "avg_pool1d", input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _avg_pool(2, "avg_pool2d", input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _avg_pool(3, "avg_pool3d", input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _lp_pool(1, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _lp_pool(2, input, norm_type, kernel_size, stride, ceil_mode)


def _lp_pool(nd, input, norm_type, kernel_size, stride, ceil_mode):
    """lp_pool1d/2d/3d: (sum over the window of x^p)^(1/p), PyTorch's composition."""
    k = _ntuple(kernel_size, nd)
    if norm_type in (float("inf"), -float("inf")):
        # PyTorch: the max (or min) of |x| over the window, a max pool
        mp = (max_pool1d, max_pool2d, max_pool3d)[nd - 1]
        a = M.abs(input)
        if norm_type > 0:
            return mp(a, k, stride, 0, 1, ceil_mode)
        return M.neg(mp(M.neg(a), k, stride, 0, 1, ceil_mode))
    fn = (avg_pool1d, avg_pool2d, avg_pool3d)[nd - 1]
    out = fn(apply(P["pow"], input, norm_type), k, stride, 0, ceil_mode)
    # sign(out) * relu(abs(out)), as PyTorch: the same value, but relu's backward zeroes the
    # gradient of a window whose power sum is 0 (else 0^(1/p - 1) = inf gives NaN); sign has
    # no gradient (detached: its g * 0 would turn that inf into NaN)
    out = M.mul(M.sign(out).detach(), M.relu(M.abs(out)))
    return apply(P["pow"], apply(P["mul"], out, _prod(k)), 1.0 / norm_type)


def _adaptive_bounds(size, out):
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    return start, end


def _adaptive_sizes(op, x, nd, output_size):
    osz = output_size if isinstance(output_size, (list, tuple)) else (output_size,) * nd
    if len(osz) != nd:
        raise RuntimeError(f"{op}: output_size must be {nd}, but got {len(osz)} values")
    osz = tuple(x.shape[x.ndim - nd + i] if o is None else int(o) for i, o in enumerate(osz))
    if any(o < 0 for o in osz):
        raise RuntimeError(f"{op}: elements of output_size must be greater than or equal to 0 but "
                           f"received {list(osz)} (input {list(x.shape)})")
    return osz


def _adaptive_empty(x, osz, nd, return_indices=None):
    """An output_size with a 0 gives an empty result (PyTorch's shape)."""
    shape = tuple(x.shape[:x.ndim - nd]) + tuple(osz)
    val = _full(shape, 0.0, x._dtype, x)
    if return_indices is None or not return_indices:
        return val
    return val, _full(shape, 0, dt.int64, x)


def _adaptive_check(op, input, nd):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{op}(): Expected {nd + 1}D or {nd + 2}D tensor, but got "
                           f"{list(input.shape)}")
    for i in range(1, input.ndim):
        if input.shape[i] == 0:
            raise RuntimeError(f"{op}(): Expected input to have non-zero size for non-batch "
                               f"dimensions, but input has sizes {list(input.shape)} with "
                               f"dimension {i} being empty")


def _adaptive_avg(nd, op, input, output_size):
    if _is_q(input):
        return _q_pool(input, lambda t: _adaptive_avg(nd, op, t, output_size), True)
    _adaptive_check(op, input, nd)
    _check_float(op, input)
    osz = _adaptive_sizes(op, input, nd, output_size)
    if 0 in osz:
        return _adaptive_empty(input, osz, nd)
    x, unb = _batched(op, input, nd)
    sizes = tuple(x.shape[2:])

    def f(x):     # (float16/bfloat16: summed and divided in float32, rounded once)
        if all(n % o == 0 for n, o in zip(sizes, osz)):
            # equal windows: a plain average pool (global pooling is the common case)
            k = tuple(n // o for n, o in zip(sizes, osz))
            win = apply(P["windows"], x, kernel=k, stride=k, dilation=(1,) * nd)
            out = apply(P["div"], apply(P["sum"], win, dims=tuple(range(2 + nd, 2 + 2 * nd)),
                                        keepdim=False), float(_prod(k)))
        else:
            # unequal windows: per spatial dim, the sum over each window's taps over its length
            # (gathered taps, not a dense matrix: a NaN or inf reaches only its own windows)
            out = x
            for i in range(nd):
                n, o = sizes[i], osz[i]
                st, en = _adaptive_bounds(n, o)
                km = int((en - st).max())
                k = np.arange(km)[None, :]
                idx = np.minimum(st[:, None] + k, en[:, None] - 1)
                out = _apply_taps(out, 2 + i, idx, None, k < (en - st)[:, None])
                cnt = (en - st).astype(np.float64).reshape((o,) + (1,) * (nd - 1 - i))
                out = apply(P["div"], out, _const(cnt, x._dtype, x))
        return out
    out = M.half_opmath(f, x)
    if nd > 1:
        # 3-d keeps channels_last_3d only for a global pool (PyTorch takes a mean there)
        keep = not unb and (nd == 2 or all(o == 1 for o in osz))
        out = _mf.lay_out(out, _fmt(x) if keep else _mf.contiguous_format)
    name = f"AdaptiveAvgPool{nd}DBackward0" if nd > 1 else "SqueezeBackward1"
    if nd > 1 and all(o == 1 for o in osz):
        # PyTorch takes a mean for a global pool (restrided when channels-last)
        channels_last = not unb and _fmt(x) is not _mf.contiguous_format
        name = "AsStridedBackward1" if channels_last else "MeanBackward1"
    # (PyTorch's adaptive_avg_pool backward reads the input; a mean's does not)
    return rename(_unbatch(out, unb), name, link=None if all(o == 1 for o in osz) else x)


def adaptive_avg_pool1d(input, output_size):
    return _adaptive_avg(1, "adaptive_avg_pool1d", input, output_size)


def adaptive_avg_pool2d(input, output_size):
    return _adaptive_avg(2, "adaptive_avg_pool2d", input, output_size)


def adaptive_avg_pool3d(input, output_size):
    return _adaptive_avg(3, "adaptive_avg_pool3d", input, output_size)


def _adaptive_max(nd, op, input, output_size, return_indices):
    _adaptive_check(op, input, nd)
    osz = _adaptive_sizes(op, input, nd, output_size)
    if 0 in osz:
        return _adaptive_empty(input, osz, nd, return_indices)
    x, unb = _batched(op, input, nd)
    sizes = tuple(x.shape[2:])
    # per dim: (O, Kmax) input indices of each window, short windows repeat their last index
    # (a repeated element cannot change a max)
    idxs = []
    for i in range(nd):
        st, en = _adaptive_bounds(sizes[i], osz[i])
        km = int((en - st).max())
        ii = np.minimum(st[:, None] + np.arange(km)[None, :], en[:, None] - 1)
        idxs.append(ii)
    ks = tuple(ii.shape[1] for ii in idxs)
    index_tensors = []
    for i, ii in enumerate(idxs):
        shape = [1] * (2 * nd)
        shape[i] = osz[i]
        shape[nd + i] = ks[i]
        index_tensors.append(wrap_like(ii.reshape(shape), dt.int64, x))
    win = apply(P["index"], x, *index_tensors, pos=tuple(range(2, 2 + nd)))   # N,C,O..,K..
    flat = _reshape(win, tuple(win.shape[:2 + nd]) + (_prod(ks),))
    am = apply(P["argmax"], flat, dim=2 + nd, keepdim=True)
    val = _reshape(apply(P["gather"], flat, am, dim=2 + nd), tuple(win.shape[:2 + nd]))
    fmt = _fmt(x) if nd == 2 and not unb else _mf.contiguous_format
    if nd > 1:
        val = _mf.lay_out(val, fmt)
    val = rename(_unbatch(val, unb),
                 f"AdaptiveMaxPool{nd}DBackward0" if nd > 1 else "SqueezeBackward1", link=x)
    if not return_indices:
        return val
    from .._device_ops import host
    kidx = np.unravel_index(host(am._data)[..., 0], ks)
    flat_in = np.zeros(am._data.shape[:-1], np.int64)
    for i in range(nd):
        o = np.arange(osz[i]).reshape((-1,) + (1,) * (nd - 1 - i))
        coord = idxs[i][o, kidx[i]]
        flat_in = flat_in * sizes[i] + coord
    return val, _unbatch(_mf.lay_out(wrap_like(flat_in, dt.int64, x), fmt), unb)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    return _adaptive_max(1, "adaptive_max_pool1d", input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    return _adaptive_max(2, "adaptive_max_pool2d", input, output_size, return_indices)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    return _adaptive_max(3, "adaptive_max_pool3d", input, output_size, return_indices)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=True):
    return adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=True):
    return adaptive_max_pool2d(input, output_size, True)


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=True):
    return adaptive_max_pool3d(input, output_size, True)


# ---- normalisation -----------------------------------------------------------------------------

def _normalize(x, dims, eps):
    """(x - mean) / sqrt(var + eps) over `dims` (biased variance); also returns mean, var."""
    n = _prod(x.shape[d] for d in dims)
    mean = apply(P["div"], apply(P["sum"], x, dims=dims, keepdim=True), n)
    xc = apply(P["sub"], x, mean)
    var = apply(P["div"], apply(P["sum"], apply(P["mul"], xc, xc), dims=dims, keepdim=True), n)
    return apply(P["mul"], xc, apply(P["rsqrt"], apply(P["add"], var, eps))), mean, var


def _opmath(input, *params):
    """PyTorch's CPU norm kernels on float16/bfloat16 input compute in float32 (with float32
    or input-typed parameters) and round once at the end: the float32 input and parameters,
    and the dtype to cast the result back to (None for other inputs)."""
    if input._dtype not in (dt.float16, dt.bfloat16):
        return input, params, None
    f32 = [t if t is None or t._dtype is dt.float32 else apply(P["cast"], t, dtype=dt.float32)
           for t in (input,) + params]
    return f32[0], tuple(f32[1:]), input._dtype


def _rounded(t, low):
    """float32 t with the value of t rounded to `low` and t's own gradient (the difference,
    exact where it matters by Sterbenz's lemma, is detached)."""
    r = apply(P["cast"], apply(P["cast"], t.detach(), dtype=low), dtype=dt.float32)
    return apply(P["add"], t, apply(P["sub"], r, t.detach()))


def _round_back(y, low):
    return y if low is None else apply(P["cast"], y, dtype=low)


def _affine(y, weight, bias, shape):
    if weight is not None:
        y = apply(P["mul"], y, _reshape(weight, shape))
    if bias is not None:
        y = apply(P["add"], y, _reshape(bias, shape))
    return y


def _update_running(buf, new, momentum):
    """buf <- (1 - momentum) * buf + momentum * new, in place and outside autograd."""
    arr = buf._data
    # (array operators and setitem: the same code on NumPy and on a device's CuPy arrays)
    arr[...] = ((1 - momentum) * arr + momentum * new.astype(arr.dtype)).astype(arr.dtype)
    buf._bump()


def _update_running_traced(running_mean, running_var, mean, var, C, n, m):
    """_update_running's arithmetic, in the same order, as tensor ops outside autograd."""
    from ..autograd import no_grad
    with no_grad():
        if running_mean is not None:
            running_mean.copy_(running_mean * (1 - m) +
                               mean.reshape(C).to(running_mean.dtype) * m)
        if running_var is not None:
            running_var.copy_(running_var * (1 - m) +
                              (var.reshape(C) * n / (n - 1)).to(running_var.dtype) * m)


def _vmap_batched_stats(input, running_mean, running_var):
    """Under vmap, training batch_norm updates running stats in place: whether input is
    batched, after PyTorch's refusal of running stats that are not batched at its level."""
    from ..func._batched import level_of
    lv = level_of(input)
    if not lv:
        return False
    if any(t is not None and level_of(t) < lv for t in (running_mean, running_var)):
        raise RuntimeError(
            "Batch norm got a batched tensor as input while the running_mean or running_var, "
            "which will be updated in place, were not batched.\nIf you are using a module and "
            "do not need eval mode, please set `track_running_stats` to be False.If you are "
            "using a prebuilt module and do not need eval mode, please see the functorch website "
            "for resources on how to patch your module to work with vmap")
    return True


def _check_norm_dtypes(input, *params):
    """PyTorch's norm kernels take parameters of the input's dtype, or float32 ones for a
    float16/bfloat16 input; any other mix is refused (not promoted)."""
    low = input._dtype in (dt.float16, dt.bfloat16)
    for t in params:
        if t is not None and t._dtype is not input._dtype and not (low and t._dtype is dt.float32):
            if input._dtype is dt.float64 and t._dtype is dt.float32:
                raise RuntimeError("mixed dtype (CPU): all inputs must share same datatype.")
            raise RuntimeError("mixed dtype (CPU): expect parameter to have scalar type of Float")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-05):
    _check_float("batch_norm", input)
    if input.ndim < 2:
        # F.batch_norm reads input.size(1): IndexError, as PyTorch (the BatchNorm modules check
        # the rank first and raise ValueError themselves)
        if not training and (running_mean is None or running_var is None):
            raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[{-builtins.max(input.ndim, 1)}, {builtins.max(input.ndim, 1) - 1}], "
                         f"but got 1) (batch_norm: input of shape {list(input.shape)} has no "
                         f"channel dimension)")
    C = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and t.numel() != C:
            raise RuntimeError(f"{name} should contain {C} elements not {t.numel()}")
    _check_norm_dtypes(input, weight, bias, running_mean, running_var)
    dims = (0,) + tuple(range(2, input.ndim))
    shape = (C,) + (1,) * (input.ndim - 2)
    x0, w0 = input, weight
    input, (weight, bias), low = _opmath(input, weight, bias)
    if training:
        n = _prod(input.shape[d] for d in dims)
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input "
                             f"size {input.size()}")
        batched = _dispatch.VMAP is not None and _vmap_batched_stats(input, running_mean,
                                                                       running_var)
        y, mean, var = _normalize(input, dims, eps)
        if low is not None and not any(t is not None and t._dtype is dt.float32 for t in
                                       (w0, bias, running_mean, running_var)):
            # PyTorch's half batch_norm keeps the batch mean and 1/std in the half dtype (its
            # saved statistics), then normalizes in float32; with float32 parameters or running
            # statistics (its mixed-type kernel) they stay float32
            rs = _rounded(apply(P["rsqrt"], apply(P["add"], var, eps)), low)
            y = apply(P["mul"], apply(P["sub"], input, _rounded(mean, low)), rs)
        if running_mean is not None or running_var is not None:
            m = 0.0 if momentum is None else momentum
            if STATE.tracer is not None or batched:   # compile(), vmap: tensor ops (the trace
                # captures them; vmap writes each sample's statistics into its stacked buffer)
                _update_running_traced(running_mean, running_var, mean, var, C, n, m)
            elif running_mean is not None:
                _update_running(running_mean, mean._data.reshape(C), m)
            if running_var is not None and STATE.tracer is None and not batched:
                _update_running(running_var, var._data.reshape(C) * n / (n - 1), m)  # unbiased
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
        _, (rm, rv), _ = _opmath(running_mean if low else input, running_mean, running_var)
        rm = _reshape(rm, shape)
        rv = _reshape(rv, shape)
        y = apply(P["mul"], apply(P["sub"], input, rm), apply(P["rsqrt"], apply(P["add"], rv, eps)))
    y = _round_back(_affine(y, weight, bias, shape), low)
    y = rename(y, "NativeBatchNormBackward0", link=(x0, w0), unused=True)
    if y._node is not None:     # (save_mean / save_invstd: made from mean, var when read)
        _dispatch.saved_extra(y, input=x0, weight=w0, running_mean=running_mean,
                              running_var=running_var, training=bool(training), eps=float(eps),
                              mean=mean._data if training else None,
                              var=var._data if training else None)
    return y


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05):
    _check_float("layer_norm", input)
    ns = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else \
        tuple(int(s) for s in normalized_shape)
    k = len(ns)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != ns:
        raise RuntimeError(f"Given normalized_shape={list(ns)}, expected input with shape "
                           f"[*, {', '.join(map(str, ns))}], but got input of size"
                           f"{list(input.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != ns:
            raise RuntimeError(f"layer_norm: expected {name} of shape {list(ns)}, but got "
                               f"{list(t.shape)}")
    _check_norm_dtypes(input, weight, bias)
    w0, b0 = weight, bias
    x, (weight, bias), low = _opmath(input, weight, bias)
    y, mean, var = _normalize(x, tuple(range(input.ndim - k, input.ndim)), eps)
    y = _round_back(_affine(y, weight, bias, ns), low)
    # contiguous whatever the input's layout, as PyTorch's kernel
    y = rename(_mf.lay_out(y, _mf.contiguous_format), "NativeLayerNormBackward0")
    if y._node is not None:     # (mean / rstd: made from mean, var when read)
        _dispatch.saved_extra(y, input=input, weight=w0, bias=b0, normalized_shape=ns,
                              eps=float(eps), mean=mean._data, var=var._data)
    return y


def rms_norm(input, normalized_shape, weight=None, eps=None):
    ns = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else \
        tuple(int(s) for s in normalized_shape)
    k = len(ns)
    if input.ndim < k:              # (torch's rms_norm texts, unlike layer_norm's)
        raise RuntimeError(f"Input tensor must have at least {k} dimensions, but got "
                           f"{input.ndim}")
    if tuple(input.shape[input.ndim - k:]) != ns:
        raise RuntimeError(f"Given normalized_shape={list(ns)}, expected input with shape "
                           f"[*{', '.join(map(str, ns))}], but got input of size"
                           f"{list(input.shape)}")
    # half types compute in float32 (weight too) and round once, with float32's eps by default
    # (PyTorch's opmath type)
    x, (weight,), low = _opmath(input, weight)
    if eps is None:
        eps = dt.finfo(x._dtype).eps
    dims = tuple(range(input.ndim - k, input.ndim))
    ms = apply(P["div"], apply(P["sum"], apply(P["mul"], x, x), dims=dims, keepdim=True),
               _prod(ns))
    y = apply(P["mul"], x, apply(P["rsqrt"], apply(P["add"], ms, eps)))
    return _round_back(_affine(y, weight, None, ns), low)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-05):
    _check_float("group_norm", input)
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received "
                           f"{input.ndim}")
    N, C = input.shape[0], input.shape[1]
    if num_groups <= 0 or C % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, "
                           f"but got input of shape {list(input.shape)} and num_groups={num_groups}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and (t.ndim != 1 or t.shape[0] != C):
            raise RuntimeError(f"Expected {name} to be a vector of size equal to the number of "
                               f"channels in input, but got {name} of shape {list(t.shape)} and "
                               f"input of shape {list(input.shape)}")
    _check_norm_dtypes(input, weight, bias)
    x, (weight, bias), low = _opmath(input, weight, bias)
    g = _reshape(x, (N, num_groups, -1) if input.numel() else (N, num_groups, 0))
    y, _, _ = _normalize(g, (2,), eps)
    y = _reshape(y, tuple(input.shape))
    y = _round_back(_affine(y, weight, bias, (C,) + (1,) * (input.ndim - 2)), low)
    return rename(_mf.lay_out(y, _fmt(input)), "NativeGroupNormBackward0")


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-05):
    _check_float("instance_norm", input)
    if input.ndim < 3:
        raise ValueError(f"instance_norm: expected input with at least 3 dims (N, C, *), got "
                         f"{input.ndim}D input")
    C = input.shape[1]
    dims = tuple(range(2, input.ndim))
    shape = (C,) + (1,) * (input.ndim - 2)
    _check_norm_dtypes(input, weight, bias)     # (the running statistics may differ)
    x, (weight, bias), low = _opmath(input, weight, bias)
    if use_input_stats:
        n = _prod(input.shape[2:])
        if n <= 1:
            raise ValueError(f"Expected more than 1 spatial element when training, got input "
                             f"size {input.size()}")
        y, mean, var = _normalize(x, dims, eps)
        m = 0.0 if momentum is None else momentum
        if running_mean is not None:
            _update_running(running_mean, mean._data.reshape(input.shape[0], C).mean(0), m)
        if running_var is not None:
            _update_running(running_var,
                            (var._data.reshape(input.shape[0], C) * n / (n - 1)).mean(0), m)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("Expected running_mean and running_var to be defined when "
                               "use_input_stats is false")
        _, (rm, rv), _ = _opmath(running_mean if low else input, running_mean, running_var)
        y = apply(P["mul"], apply(P["sub"], x, _reshape(rm, shape)),
                  apply(P["rsqrt"], apply(P["add"], _reshape(rv, shape), eps)))
    y = _round_back(_affine(y, weight, bias, shape), low)
    # contiguous, as PyTorch's (a batch_norm of the input reshaped to (1, N * C, ...), viewed
    # back: ViewBackward0)
    return rename(_mf.lay_out(y, _mf.contiguous_format), "ViewBackward0")


def local_response_norm(input, size, alpha=0.0001, beta=0.75, k=1.0):
    if input.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {input.ndim} dimensions)")
    if input.numel() == 0:
        return input            # (PyTorch returns an empty input itself)
    sq = apply(P["mul"], input, input)
    # average of squares over a channel window of `size`, zero padded: (size//2, (size-1)//2)
    if input.ndim >= 4:
        # through avg_pool3d, as PyTorch: so autocast runs it (and what follows) in float32
        s = _reshape(sq, (input.shape[0], 1, input.shape[1], input.shape[2], -1))
        s = _pad_dims(s, [(size // 2, (size - 1) // 2), (0, 0), (0, 0)])
        avg = _reshape(avg_pool3d(s, (size, 1, 1), stride=1), tuple(input.shape))
    else:
        s = _reshape(sq, (input.shape[0], 1, input.shape[1], -1))
        s = _pad_dims(s, [(size // 2, (size - 1) // 2), (0, 0)])
        win = apply(P["windows"], s, kernel=(size, 1), stride=(1, 1), dilation=(1, 1))
        avg = apply(P["div"], apply(P["sum"], win, dims=(4, 5), keepdim=False), size)
        avg = _reshape(avg, tuple(input.shape))
    den = apply(P["pow"], apply(P["add"], apply(P["mul"], avg, alpha), k), beta)
    out = apply(P["div"], input, den)
    fmt = _fmt(input)           # (other layouts: the element-wise division's)
    return out if fmt is _mf.contiguous_format else _mf.lay_out(out, fmt)


# ---- interpolation -------------------------------------------------------------------------------

_INTERP_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def _src_scale(n_in, n_out, align_corners, scale):
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return 1.0 / scale if scale is not None and scale > 0 else n_in / n_out


def _nearest_index(n_in, n_out, scale, exact):
    # PyTorch computes these in float32
    sc = np.float32(1.0 / scale) if scale is not None and scale > 0 else \
        np.float32(n_in) / np.float32(n_out)
    dst = np.arange(n_out, dtype=np.float32)
    src = np.floor((dst + np.float32(0.5)) * sc) if exact else np.floor(dst * sc)
    return np.minimum(src.astype(np.int64), n_in - 1)


def _apply_taps(x, d, idx, w, mask=None):
    """Resample dim d of x: out[.., o, ..] = sum_k w[o, k] * x[.., idx[o, k], ..] over the taps
    where mask[o, k] (all when None); w None means weights 1. Gathered taps rather than a
    dense (out x in) matrix, so a NaN or inf input reaches only the outputs that read it, as
    in PyTorch's kernels (a matrix product would spread it through 0 * inf = NaN)."""
    o, k = idx.shape
    # (taps, weights and mask are constants: PyTorch's upsample nodes save only sizes)
    i = const(wrap_like(np.ascontiguousarray(idx, dtype=np.int64), dt.int64, x))
    g = apply(P["index"], x, i, pos=(d,))                             # .., O, K, ..
    tail = (1,) * (x.ndim - d - 1)
    if w is not None:
        g = apply(P["mul"], g, const(_const(np.asarray(w).reshape((o, k) + tail), x._dtype, x)))
    if mask is not None and not np.all(mask):
        m = wrap_like(np.ascontiguousarray(np.asarray(mask).reshape((o, k) + tail)), dt.bool_, x)
        g = apply(P["where"], const(m), g, 0.0)
    return apply(P["sum"], g, dims=(d + 1,), keepdim=False)


def _linear_taps(n_in, n_out, align_corners, scale):
    """(idx, weights), each (n_out, 2): PyTorch's linear interpolation taps."""
    sc = _src_scale(n_in, n_out, align_corners, scale)
    dst = np.arange(n_out, dtype=np.float64)
    src = dst * sc if align_corners else np.maximum(sc * (dst + 0.5) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    l1 = src - i0
    return np.stack([i0, i1], 1), np.stack([1.0 - l1, l1], 1)


def _cubic_taps(n_in, n_out, align_corners, scale):
    """(idx, weights), each (n_out, 4): PyTorch's bicubic taps (A = -0.75, clamped indices)."""
    a = -0.75
    sc = _src_scale(n_in, n_out, align_corners, scale)
    dst = np.arange(n_out, dtype=np.float64)
    src = dst * sc if align_corners else sc * (dst + 0.5) - 0.5
    f = np.floor(src)
    t = src - f
    f = f.astype(np.int64)

    def c1(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def c2(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    ws = [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)]
    idx = np.stack([np.clip(f - 1 + j, 0, n_in - 1) for j in range(4)], 1)
    return idx, np.stack(ws, 1)


def _aa_taps(n_in, n_out, align_corners, scale, mode):
    """(idx, weights, mask), each (n_out, K): taps of PyTorch's antialiased bilinear/bicubic/
    lanczos resampling (the PIL filters, UpSampleKernel.cpp _compute_indices_min_size_weights_aa):
    the filter is stretched by the downscale factor so every input pixel under the output pixel
    contributes, and each row is normalised to sum to 1."""
    sc = _src_scale(n_in, n_out, align_corners, scale)
    interp_size = {"bilinear": 2, "bicubic": 4, "lanczos": 6}[mode]
    support = interp_size * 0.5 * sc if sc >= 1.0 else interp_size * 0.5
    invscale = 1.0 / sc if sc >= 1.0 else 1.0

    def filt(x):
        x = np.abs(x)
        if mode == "lanczos":           # Lanczos-3: sinc(x) sinc(x / 3) on |x| < 3
            return np.where(x < 3.0, np.sinc(x) * np.sinc(x / 3.0), 0.0)
        if mode == "bicubic":           # Keys' cubic with a = -0.5, as PIL
            a = -0.5
            return np.where(x < 1.0, ((a + 2) * x - (a + 3)) * x * x + 1,
                            np.where(x < 2.0, (((x - 5) * x + 8) * x - 4) * a, 0.0))
        return np.where(x < 1.0, 1.0 - x, 0.0)

    rows = []
    for i in range(n_out):
        center = sc * (i + 0.5)
        xmin = builtins.max(int(center - support + 0.5), 0)     # int(): truncation, as C++
        xmax = builtins.min(int(center + support + 0.5), n_in)
        j = np.arange(xmin, xmax)
        w = filt((j - center + 0.5) * invscale)
        tot = w.sum()
        rows.append((j, w / tot if tot != 0.0 else w))
    k = builtins.max(len(j) for j, _ in rows)
    idx = np.zeros((n_out, k), np.int64)
    wts = np.zeros((n_out, k))
    mask = np.zeros((n_out, k), bool)
    for i, (j, w) in enumerate(rows):
        idx[i, :len(j)], wts[i, :len(j)], mask[i, :len(j)] = j, w, True
    return idx, wts, mask


def _u8_taps(n_in, n_out, align_corners, scale, mode, antialias):
    """(idx, weights, precision) of PyTorch's uint8 bilinear/bicubic/lanczos resampling
    (UpSampleKernel.cpp _compute_index_ranges_int16_weights): the float kernels' taps (a
    clamped index's weights summed into one tap, as its index ranges hold each pixel once),
    scaled by 2**precision (the largest that keeps 2 * the largest weight under 2**15) and
    rounded half away from zero to integers."""
    if antialias:
        idx, wts, mask = _aa_taps(n_in, n_out, align_corners, scale, mode)
        wts = np.where(mask, wts, 0.0)
    else:
        idx4, w4 = (_cubic_taps if mode == "bicubic" else _linear_taps)(n_in, n_out,
                                                                         align_corners, scale)
        idx = np.repeat(idx4[:, :1], idx4.shape[1], axis=1)
        wts = np.zeros(idx4.shape)
        for i in range(n_out):
            for j, k in enumerate(np.unique(idx4[i])):
                idx[i, j] = k
                wts[i, j] = w4[i][idx4[i] == k].sum()
    wmax = builtins.max(float(wts.max()) if wts.size else 0.0, 0.0)
    prec = 0
    while prec < 22 and int(0.5 + wmax * (1 << (prec + 1))) < (1 << 15):
        prec += 1
    v = wts * (1 << prec)
    return idx, np.trunc(np.where(v < 0, v - 0.5, v + 0.5)).astype(np.int32), prec


def _interpolate_uint8(input, sizes_in, out_sizes, scales, mode, align_corners, antialias):
    """PyTorch's uint8 bilinear/bicubic/lanczos: separable fixed-point passes, width then height
    (a dimension whose size does not change is not resampled), each pass summing uint8 * int16
    weights in int32, rounding by + 2**(precision - 1), shifting right and clamping to 0..255."""
    x = input
    for d in (3, 2):
        n, o = sizes_in[d - 2], out_sizes[d - 2]
        if n == o:
            continue
        idx, w, prec = _u8_taps(n, o, align_corners, None if scales is None else scales[d - 2],
                                mode, antialias)
        if d == 2 and out_sizes[1] == 1 and input.shape[1] > 4 and \
                _fmt(input) is _mf.contiguous_format:
            # PyTorch's generic kernel (more than 4 channels, contiguous) gives every output row
            # the taps of row 0 when the output is 1 pixel wide; matched so results are equal
            idx, w = np.repeat(idx[:1], o, 0), np.repeat(w[:1], o, 0)
        k = idx.shape[1]
        g = apply(P["index"], x, wrap_like(np.ascontiguousarray(idx), dt.int64, x), pos=(d,))
        g = apply(P["cast"], g, dtype=dt.int32)
        tail = (1,) * (3 - d)
        g = apply(P["mul"], g, _const(w.reshape((o, k) + tail), dt.int32, x))
        acc = apply(P["sum"], g, dims=(d + 1,), keepdim=False, dtype=dt.int32)
        acc = apply(P["bitwise_right_shift"], apply(P["add"], acc, 1 << (prec - 1)), prec)
        acc = apply(P["minimum"], apply(P["maximum"], acc, _full((), 0, dt.int32, x)),
                    _full((), 255, dt.int32, x))
        x = apply(P["cast"], acc, dtype=dt.uint8)
    if x is input:
        x = apply(P["copy"], input)
    return _mf.lay_out(x, _fmt(input))


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    if not isinstance(input, Tensor):
        raise TypeError(f"interpolate(): argument 'input' must be Tensor, not {type(input).__name__}")
    modes = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "lanczos", "area",
             "nearest-exact")
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating modes: "
                             "linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    nd = input.ndim - 2
    # PyTorch checks antialias first; bicubic in the wrong rank gets the generic message
    if antialias and not (mode in ("bilinear", "bicubic", "lanczos") and input.ndim == 4):
        raise ValueError("Anti-alias option is restricted to bilinear, bicubic, and lanczos modes "
                         "and requires a 4-D tensor as input")
    if mode not in modes or nd not in (1, 2, 3) or (mode in ("bicubic", "lanczos") and nd != 2):
        raise NotImplementedError(
            f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) for the "
            f"modes: nearest | linear | bilinear | bicubic | trilinear | lanczos | area | "
            f"nearest-exact (got {mode})")
    if mode == "lanczos":
        if align_corners:
            raise ValueError("Lanczos mode does not support align_corners=True")
        if not antialias:
            raise ValueError("Lanczos mode requires antialias=True")
    if mode in _INTERP_DIMS and _INTERP_DIMS[mode] != nd:
        raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs "
                                  f"{_INTERP_DIMS[mode] + 2}D input")
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    sizes_in = tuple(input.shape[2:])
    scales = None
    if size is not None:
        if isinstance(size, (list, tuple)):
            if len(size) != nd:
                raise ValueError(f"Input and output must have the same number of spatial "
                                 f"dimensions, but got input with spatial dimensions of "
                                 f"{list(sizes_in)} and output size of {size}. Please "
                                 f"provide input tensor in (N, C, d1, d2, ...,dK) format and "
                                 f"output size in (o1, o2, ...,oK) format.")
            out_sizes = tuple(int(s) for s in size)
        else:
            out_sizes = (int(size),) * nd
    elif scale_factor is not None:
        if isinstance(scale_factor, (list, tuple)):
            if len(scale_factor) != nd:
                raise ValueError(f"Input and scale_factor must have the same number of spatial "
                                 f"dimensions, but got input with spatial dimensions of "
                                 f"{list(sizes_in)} and scale_factor of shape "
                                 f"{scale_factor}. Please provide input tensor in (N, C, "
                                 f"d1, d2, ...,dK) format and scale_factor in (s1, s2, ...,sK) "
                                 f"format.")
            sf = tuple(float(s) for s in scale_factor)
        else:
            sf = (float(scale_factor),) * nd
        out_sizes = tuple(int(math.floor(n * s)) for n, s in zip(sizes_in, sf))
        scales = None if recompute_scale_factor else sf
    else:
        raise ValueError("either size or scale_factor should be defined")
    if mode != "area" and any(n <= 0 for n in sizes_in + out_sizes):
        names = "DHW"[3 - nd:]
        fi = ", ".join(f"{c}: {n}" for c, n in zip(names, sizes_in))
        fo = ", ".join(f"{c}: {n}" for c, n in zip(names, out_sizes))
        raise RuntimeError(f"Input and output sizes should be greater than 0, but got input ({fi})"
                           f"{' and' if nd == 1 else ''} output ({fo})")
    if any(o < 0 for o in out_sizes):
        raise RuntimeError(f"interpolate: output size {list(out_sizes)} must not be negative "
                           f"(input size {list(sizes_in)})")
    if input._dtype.category == 4 and mode != "area":    # quantized (framework/ao/_qtensor.py)
        from ..ao import _qtensor as Q
        q_ok = nd == 2 and mode == "bilinear" and not antialias or \
            nd in (2, 3) and mode in ("nearest", "nearest-exact")
        if not q_ok:
            raise Q._backend_error(f"aten::{'_' if mode == 'nearest-exact' else ''}upsample_"
                                   f"{mode.replace('-', '_')}{nd}d"
                                   f"{'_aa' if antialias else ''}.out", input)
        Q._per_tensor(input)
        if mode == "bilinear":
            return Q.upsample_bilinear_q(input, out_sizes, align_corners, scales)
    # PyTorch's upsample kernels take floats (and uint8 for some); its refusals, by kernel
    kern = None
    if antialias and input._dtype not in (dt.float32, dt.float64, dt.uint8):
        kern = "compute_index_ranges_weights"
    elif mode == "area" and not input._dtype.is_floating_point:
        kern = f"adaptive_avg_pool{builtins.max(nd, 2)}d"
    elif not input._dtype.is_floating_point and input._dtype.category != 4 and \
            not (input._dtype == dt.uint8 and (mode.startswith("nearest") or nd == 2)):
        kern = {"nearest": "compute_indices_weights_nearest", "linear":
                "compute_indices_weights_linear", "bicubic": "compute_indices_weights_cubic"}
        kern = {"nearest-exact": kern["nearest"], "trilinear": kern["linear"], **kern}
        if nd == 2 and mode in ("nearest", "nearest-exact", "bilinear"):
            kern[mode] = f"upsample_{mode.split('-')[0]}2d_channels_last"
        kern = kern[mode]
    if kern is not None:
        raise NotImplementedError(f"\"{kern}\" not implemented for '{dt.tname(input._dtype)}'")
    if mode != "area" and input.shape[1] == 0:     # (PyTorch's upsample kernels' check)
        raise RuntimeError(f"Non-empty {input.ndim}D data tensor expected but got a tensor with "
                           f"sizes {list(input.shape)}")
    if mode == "area":
        return adaptive_avg_pool1d(input, out_sizes) if nd == 1 else \
            adaptive_avg_pool2d(input, out_sizes) if nd == 2 else adaptive_avg_pool3d(input, out_sizes)
    x = input
    if mode in ("nearest", "nearest-exact"):
        if not (x._dtype.is_floating_point or x._dtype.category in (1, 4)):
            raise RuntimeError(f"interpolate: unsupported dtype {x._dtype}")
        for i in range(nd):
            n, o = sizes_in[i], out_sizes[i]
            # (quantized: the scales apply to an unchanged dim too, unless none changes)
            if n == o and (scales is None or x._dtype.category != 4 or sizes_in == out_sizes):
                continue
            ii = _nearest_index(n, o, None if scales is None else scales[i], mode == "nearest-exact")
            x = apply(P["index"], x, const(wrap_like(ii, dt.int64, x)), pos=(2 + i,))
        if x is input:
            x = apply(P["copy"], input)
        name = {"nearest": "UpsampleNearest{}DBackward0",
                "nearest-exact": "UpsampleNearestExact{}DBackward0"}[mode].format(nd)
        return rename(_mf.lay_out(x, _fmt(input)), name)
    if x._dtype is dt.uint8:        # (the checks above let only 2-d bilinear/bicubic/lanczos by)
        return _interpolate_uint8(input, sizes_in, out_sizes, scales, mode, align_corners,
                                  antialias)
    _check_float("interpolate", x)

    def f(x):     # (float16/bfloat16: every dim's taps in float32, rounded once)
        for i in range(nd):
            n, o = sizes_in[i], out_sizes[i]
            sc = None if scales is None else scales[i]
            if antialias:
                taps = _aa_taps(n, o, align_corners, sc, mode)
            else:
                taps = (_cubic_taps if mode == "bicubic" else _linear_taps)(n, o, align_corners,
                                                                            sc)
            x = _apply_taps(x, 2 + i, *taps)
        return x
    x = M.half_opmath(f, x)
    name = {"linear": "UpsampleLinear1DBackward0", "bilinear": "UpsampleBilinear2DBackward0",
            "bicubic": "UpsampleBicubic2DBackward0", "trilinear": "UpsampleTrilinear3DBackward0",
            "lanczos": "UpsampleLanczos2DBackward0"}[mode]
    if antialias:
        name = name.replace("2DBackward0", "2DAaBackward0")
    return rename(_mf.lay_out(x, _fmt(input)), name)


def _deprecated(name):
    warnings.warn(f"`nn.functional.{name}` is deprecated. Use `nn.functional.interpolate` "
                  f"instead.", stacklevel=3)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    _deprecated("upsample")
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    _deprecated("upsample_nearest")
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    _deprecated("upsample_bilinear")
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ---- pixel shuffle ------------------------------------------------------------------------------

def _shuffle_fmt(input):
    # PyTorch's pixel (un)shuffle kernels know channels_last only (4-d)
    return _fmt(input) if input.ndim == 4 else _mf.contiguous_format


def pixel_shuffle(input, upscale_factor):
    r = int(upscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_shuffle expects input to have at least 3 dimensions, but got "
                           f"input with {input.ndim} dimension(s)")
    if r <= 0:
        raise RuntimeError(f"pixel_shuffle expects a positive upscale_factor, but got {r}")
    c, h, w = input.shape[-3:]
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible "
                           f"by the square of upscale_factor, but input.size(-3)={c} is not "
                           f"divisible by {r * r}")
    lead = tuple(input.shape[:-3])
    n = len(lead)
    x = _reshape(input, lead + (c // (r * r), r, r, h, w))
    x = _permute(x, tuple(range(n)) + (n, n + 3, n + 1, n + 4, n + 2))
    x = _fresh(_reshape(x, lead + (c // (r * r), h * r, w * r)), input)
    return rename(_mf.lay_out(x, _shuffle_fmt(input)), "PixelShuffleBackward0")


def pixel_unshuffle(input, downscale_factor):
    r = int(downscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_unshuffle expects input to have at least 3 dimensions, but got "
                           f"input with {input.ndim} dimension(s)")
    if r <= 0:
        raise RuntimeError(f"pixel_unshuffle expects a positive downscale_factor, but got {r}")
    c, h, w = input.shape[-3:]
    if h % r:
        raise RuntimeError(f"pixel_unshuffle expects height to be divisible by downscale_factor, "
                           f"but input.size(-2)={h} is not divisible by {r}")
    if w % r:
        raise RuntimeError(f"pixel_unshuffle expects width to be divisible by downscale_factor, "
                           f"but input.size(-1)={w} is not divisible by {r}")
    lead = tuple(input.shape[:-3])
    n = len(lead)
    x = _reshape(input, lead + (c, h // r, r, w // r, r))
    x = _permute(x, tuple(range(n)) + (n, n + 2, n + 4, n + 1, n + 3))
    x = _fresh(_reshape(x, lead + (c * r * r, h // r, w // r)), input)
    return rename(_mf.lay_out(x, _shuffle_fmt(input)), "PixelUnshuffleBackward0")


def channel_shuffle(input, groups):
    if input.ndim <= 2:
        raise RuntimeError(f"channel_shuffle expects input with > 2 dims, but got input with "
                           f"sizes {list(input.shape)}")
    if groups <= 0:
        raise RuntimeError(f"Number of groups to divide channels in must be positive. Value of "
                           f"groups:{groups}")
    N, C = input.shape[0], input.shape[1]
    if C % groups:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {C} channels and "
                           f"{groups} groups.")
    rest = tuple(input.shape[2:])
    x = _reshape(input, (N, groups, C // groups) + rest)
    x = _permute(x, (0, 2, 1) + tuple(range(3, 3 + len(rest))))
    return rename(_mf.lay_out(_fresh(_reshape(x, (N, C) + rest), input), _fmt(input)),
                  "ChannelShuffleBackward0")


# ---- attention ------------------------------------------------------------------------------------

def _dropout(x, p, training=True):
    # F.dropout itself (PyTorch's math attention calls at::dropout): the same draws and values
    from ._functional_basic import dropout
    return dropout(x, p, training)


def _softmax_last(x):
    from ..ops_math import softmax
    return softmax(x, -1)


def _mT(x):
    n = x.ndim
    return _permute(x, tuple(range(n - 2)) + (n - 1, n - 2))


def _sdpa_empty(query, key, value):
    """PyTorch's answer for an empty query sequence or an empty value, given before any backend
    or shape check: zeros of query's shape with value's last dim, plus the inputs' sums times 0
    (which keeps them in the graph, so their gradients are zeros, and makes the output NaN
    where an input holds an inf or a NaN, as PyTorch's does)."""
    tie = apply(P["add"], apply(P["add"], M.sum(query), M.sum(key)), M.sum(value))
    zeros = _full(tuple(query.shape[:-1]) + (value.shape[-1],), 0, query._dtype, query)
    return apply(P["add"], zeros, apply(P["mul"], tie, 0))


def _gqa_heads(query, key, value):
    """PyTorch's pre_process_group_query_attention_input: key and value repeated (each by its
    own factor) along dim -3 to query's number of heads."""
    for t in (query, key, value):
        if t.ndim < 3:
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[{-t.ndim}, {t.ndim - 1}], but got -3)")
    hq, hk, hv = query.shape[-3], key.shape[-3], value.shape[-3]
    if hq == hk == hv:
        return key, value
    # (PyTorch divides by zero key heads and dies of SIGFPE; Kiln refuses them as not dividing;
    # its message ends at "in ", as PyTorch's does)
    if hk == 0 or hv == 0 or hq % hk or hq % hv:
        raise RuntimeError("Number of heads in key and value must divide the number of heads in ")
    from ..ops_shape import repeat_interleave
    return repeat_interleave(key, hq // hk, dim=-3), repeat_interleave(value, hq // hv, dim=-3)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    """softmax(Q K^T * scale + mask) V; a bool mask marks the positions that take part."""
    try:
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor):
                raise TypeError(f"scaled_dot_product_attention(): argument '{name}' must be Tensor, "
                                f"not {type(t).__name__}")
        # torch.nn.attention: the dtype checks, CausalBias masks, the backend set
        from .attention import _sdpa_validate, _sdpa_check
        attn_mask = _sdpa_validate(query, key, value, attn_mask, is_causal)
        if query.shape[-2] == 0 or value.numel() == 0:
            # PyTorch answers these before its other checks (no mask shape, head count or
            # is_causal-with-mask error), even a key of another length than value's S == 0
            return _sdpa_empty(query, key, value)
        if query.shape[-1] != key.shape[-1]:
            raise RuntimeError(f"scaled_dot_product_attention: query and key must have the same last "
                               f"dimension (embedding), got query {list(query.shape)} and key "
                               f"{list(key.shape)}")
        if key.shape[-2] != value.shape[-2]:
            raise RuntimeError(f"scaled_dot_product_attention: key and value must have the same "
                               f"sequence length, got key {list(key.shape)} and value "
                               f"{list(value.shape)}")
        _sdpa_check(query, key, value, attn_mask, dropout_p, is_causal, enable_gqa)
        key0, value0 = key, value
        if enable_gqa:
            key, value = _gqa_heads(query, key, value)
        L, S = query.shape[-2], key.shape[-2]
        low = _half_gemm(query, key, value)
        if low and attn_mask is None and not is_causal and dropout_p == 0.0 and S <= 512 and \
                query.shape[-1]:
            # PyTorch's cpu flash kernel (one key block): float32 scores and exponentials, these
            # rounded to the half dtype for the product with V, the float32 sum divided after
            q, k, v = _f32(query, key, value)
            s = apply(P["mul"], apply(P["matmul"], q, _mT(k)),
                      1.0 / math.sqrt(query.shape[-1]) if scale is None else scale)
            e = apply(P["exp"], apply(P["sub"], s, apply(P["amax"], s.detach(), dims=(s.ndim - 1,),
                                                         keepdim=True)))
            tot = apply(P["sum"], e, dims=(s.ndim - 1,), keepdim=True)
            out = apply(P["div"], apply(P["matmul"], _rounded(e, low), v), tot)
            return rename(apply(P["cast"], out, dtype=low),
                          _sdpa_grad_name(query, key0, value0, attn_mask, dropout_p, enable_gqa))
        s = apply(P["matmul"], query, _mT(key))
        if query.shape[-1]:       # (a head dim of 0: the scores are 0 whatever the scale, 1/sqrt(0))
            s = apply(P["mul"], s, 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale)
        if is_causal:             # (with an attn_mask: the CPU flash kernel's, which applies both)
            causal = wrap_like(np.tril(np.ones((L, S), dtype=bool)), dt.bool_, s)
            s = apply(P["where"], causal, s, -math.inf)
        if attn_mask is not None:
            try:
                full = np.broadcast_shapes(tuple(s.shape), tuple(attn_mask.shape))
            except ValueError:
                full = tuple(s.shape)           # (the add below names the mismatch)
            if full != tuple(s.shape):          # PyTorch's math path adds the mask in place
                raise RuntimeError(f"output with shape {list(s.shape)} doesn't match the "
                                   f"broadcast shape {list(full)}")
            if attn_mask._dtype is dt.bool_:
                s = apply(P["where"], attn_mask, s, -math.inf)
            else:
                s = apply(P["add"], s, attn_mask)
        if is_causal or attn_mask is not None:
            # PyTorch's _safe_softmax: a query whose every key is masked (-inf) attends to nothing,
            # giving zeros and no gradient, not the NaN of softmax over -inf (its scores are zeroed
            # first so that no NaN reaches the softmax's backward either)
            # (a row's max is -inf exactly when all of it is: amax, which Triton reductions have)
            dead = apply(P["eq"], apply(P["amax"], s, dims=(s.ndim - 1,), keepdim=True), -math.inf)
            w = apply(P["where"], dead, 0.0, _softmax_last(apply(P["where"], dead, 0.0, s)))
        else:
            w = _softmax_last(s)
        if dropout_p > 1.0:         # (at::dropout's check: a RuntimeError, not F.dropout's)
            raise RuntimeError(f"dropout probability has to be between 0 and 1, but got "
                               f"{dropout_p}")
        if dropout_p > 0.0:
            w = _dropout(w, dropout_p, True)
        out = apply(P["matmul"], w, value)   # (a nested operand has left by now)
        return rename(out, _sdpa_grad_name(query, key0, value0, attn_mask, dropout_p, enable_gqa))
    except NestedLayoutError:          # a nested operand: framework.nested
        from ..nested import _ops as N
        return N.scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal,
                                              scale, enable_gqa)


def _sdpa_grad_name(query, key, value, attn_mask, dropout_p, enable_gqa):
    """The grad_fn name of PyTorch's CPU SDPA: its flash kernel's when that backend takes the
    inputs, else the math path's closing matmul (UnsafeViewBackward0, or MmBackward0)."""
    from . import attention as A
    if STATE.tracer is None and query.device.type == "cpu" and \
            A.SDPBackend.FLASH_ATTENTION in A._enabled and \
            A._flash_cpu_ok(query, key, value, attn_mask, dropout_p, enable_gqa, False):
        return "ScaledDotProductFlashAttentionForCpuBackward0"
    # (2-d operands: the closing matmul is an mm)
    return "MmBackward0" if max(query.ndim, key.ndim, value.ndim) == 2 else "UnsafeViewBackward0"


def _linear(x, w, b):
    if b is not None and x._dtype is not w._dtype:       # (F.linear's addmm text, as torch)
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got "
                           f"{dt.tname(x._dtype)} and {dt.tname(w._dtype)}")
    y = apply(P["matmul"], x, _mT(w))
    return y if b is None else apply(P["add"], y, b)


def _mask_to_float(mask, dtype, name):
    if mask is None:
        return None
    if mask._dtype is dt.bool_:
        # tensor ops, not the mask's values: under compile the mask stays a graph input
        return apply(P["cast"], M.where(mask, float("-inf"), 0.0), dtype=dtype)
    if not mask._dtype.is_floating_point:
        raise AssertionError(f"only bool and floating types of {name} are supported")
    return mask


def _mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads):
    """PyTorch's _mha_shape_check: the ranks MHA accepts (AssertionError); True if batched."""
    if query.ndim == 3:
        if key.ndim != 3 or value.ndim != 3:
            raise AssertionError(f"For batched (3-D) `query`, expected `key` and `value` to be 3-D "
                                 f"but found {key.ndim}-D and {value.ndim}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.ndim != 2:
            raise AssertionError(f"For batched (3-D) `query`, expected `key_padding_mask` to be "
                                 f"`None` or 2-D but found {key_padding_mask.ndim}-D tensor instead")
        if attn_mask is not None and attn_mask.ndim not in (2, 3):
            raise AssertionError(f"For batched (3-D) `query`, expected `attn_mask` to be `None`, "
                                 f"2-D or 3-D but found {attn_mask.ndim}-D tensor instead")
        return True
    if query.ndim == 2:
        if key.ndim != 2 or value.ndim != 2:
            raise AssertionError(f"For unbatched (2-D) `query`, expected `key` and `value` to be "
                                 f"2-D but found {key.ndim}-D and {value.ndim}-D tensors "
                                 f"respectively")
        if key_padding_mask is not None and key_padding_mask.ndim != 1:
            raise AssertionError(f"For unbatched (2-D) `query`, expected `key_padding_mask` to be "
                                 f"`None` or 1-D but found {key_padding_mask.ndim}-D tensor instead")
        if attn_mask is not None:
            if attn_mask.ndim not in (2, 3):
                raise AssertionError(f"For unbatched (2-D) `query`, expected `attn_mask` to be "
                                     f"`None`, 2-D or 3-D but found {attn_mask.ndim}-D tensor "
                                     f"instead")
            expected = (num_heads, query.shape[0], key.shape[0])
            if attn_mask.ndim == 3 and tuple(attn_mask.shape) != expected:
                raise AssertionError(f"Expected `attn_mask` shape to be {expected} but got "
                                     f"{tuple(attn_mask.shape)}")
        return False
    raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received "
                         f"{query.ndim}-D query tensor")


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight,
                                 in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p,
                                 out_proj_weight, out_proj_bias, training=True,
                                 key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights=True, is_causal=False):
    """PyTorch's MHA forward on (L, N, E) inputs (or unbatched (L, E)); returns
    (output, weights or None)."""
    batched = _mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads)
    if (key_padding_mask is not None and attn_mask is not None
            and key_padding_mask._dtype is not attn_mask._dtype):
        warnings.warn("Support for mismatched key_padding_mask and attn_mask is deprecated. Use "
                      "same type for both instead.")
    if not batched:
        query, key, value = (_reshape(t, (t.shape[0], 1, t.shape[1])) for t in (query, key, value))
        if key_padding_mask is not None:
            key_padding_mask = _reshape(key_padding_mask, (1,) + tuple(key_padding_mask.shape))
    tgt_len, bsz, embed_dim = query.shape
    if embed_dim != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got "
                             f"{embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if key.shape[:2] != value.shape[:2]:
            raise AssertionError(f"key's sequence and batch dims {key.shape[:2]} do not match "
                                 f"value's {value.shape[:2]}")
    elif key.shape != value.shape:
        raise AssertionError(f"key shape {key.shape} does not match value shape {value.shape}")
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the "
                           "Transformer module method `generate_square_subsequent_mask` to create "
                           "this mask.")
    if is_causal and key_padding_mask is None and not need_weights:
        # PyTorch: with no weights wanted and no padding mask, the is_causal hint replaces
        # attn_mask (whose values are then unused) and goes to SDPA as is_causal
        attn_mask = None
    elif key_padding_mask is not None:
        is_causal = False          # the mask merged with the padding mask is no longer causal
    # input projections
    if not use_separate_proj_weight:
        E = embed_dim
        wq, wk, wv = (_slice(in_proj_weight, 0, i * E, (i + 1) * E) for i in range(3))
    else:
        wq, wk, wv = q_proj_weight, k_proj_weight, v_proj_weight
        for what, w, x in (("query", wq, query), ("key", wk, key), ("value", wv, value)):
            if tuple(w.shape) != (embed_dim, x.shape[-1]):
                raise AssertionError(f"expecting {what} weights shape of "
                                     f"{(embed_dim, x.shape[-1])}, but got {tuple(w.shape)}")
    bq = bk = bv = None
    if in_proj_bias is not None:
        E = embed_dim
        bq, bk, bv = (_slice(in_proj_bias, 0, i * E, (i + 1) * E) for i in range(3))
    q = _linear(query, wq, bq)
    k = _linear(key, wk, bk)
    v = _linear(value, wv, bv)
    attn_mask = _mask_to_float(attn_mask, q._dtype, "attn_mask")
    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (tgt_len, key.shape[0]):
                raise RuntimeError(f"The shape of the 2D attn_mask is {attn_mask.shape}, but "
                                   f"should be {(tgt_len, key.shape[0])}.")
            attn_mask = _reshape(attn_mask, (1,) + tuple(attn_mask.shape))
        elif attn_mask.ndim == 3:
            if tuple(attn_mask.shape) != (bsz * num_heads, tgt_len, key.shape[0]):
                raise RuntimeError(f"The shape of the 3D attn_mask is {attn_mask.shape}, but "
                                   f"should be {(bsz * num_heads, tgt_len, key.shape[0])}.")
        else:
            raise RuntimeError(f"attn_mask's dimension {attn_mask.ndim} is not supported")
    if bias_k is not None and bias_v is not None:
        k = apply(P["cat"], k, apply(P["expand"], _reshape(bias_k, (1, 1, embed_dim)),
                                     shape=(1, bsz, embed_dim)), dim=0)
        v = apply(P["cat"], v, apply(P["expand"], _reshape(bias_v, (1, 1, embed_dim)),
                                     shape=(1, bsz, embed_dim)), dim=0)
        if attn_mask is not None:
            attn_mask = _pad_dims(attn_mask, [(0, 1)])
        if key_padding_mask is not None:
            key_padding_mask = _pad_dims(key_padding_mask, [(0, 1)], False)
    # (L, N, E) -> (N*H, L, hd)
    q = _permute(_reshape(q, (tgt_len, bsz * num_heads, head_dim)), (1, 0, 2))
    if static_k is None:
        k = _permute(_reshape(k, (k.shape[0], bsz * num_heads, head_dim)), (1, 0, 2))
    else:
        k = static_k
    if static_v is None:
        v = _permute(_reshape(v, (v.shape[0], bsz * num_heads, head_dim)), (1, 0, 2))
    else:
        v = static_v
    if add_zero_attn:
        k = apply(P["cat"], k, _full((bsz * num_heads, 1, head_dim), 0.0, k._dtype, k), dim=1)
        v = apply(P["cat"], v, _full((bsz * num_heads, 1, head_dim), 0.0, v._dtype, v), dim=1)
        if attn_mask is not None:
            attn_mask = _pad_dims(attn_mask, [(0, 1)])
        if key_padding_mask is not None:
            key_padding_mask = _pad_dims(key_padding_mask, [(0, 1)], False)
    src_len = k.shape[1]
    if not training:
        dropout_p = 0.0
    if key_padding_mask is not None:
        for i, want in enumerate((bsz, src_len)):
            if key_padding_mask.shape[i] != want:
                raise AssertionError(f"Expected key_padded_mask.shape[{i}] to be {want}, but got "
                                     f"{key_padding_mask.shape[i]}")
        kpm = _mask_to_float(key_padding_mask, q._dtype, "key_padding_mask")
        kpm = _reshape(apply(P["expand"], _reshape(kpm, (bsz, 1, 1, src_len)),
                             shape=(bsz, num_heads, 1, src_len)), (bsz * num_heads, 1, src_len))
        attn_mask = kpm if attn_mask is None else apply(P["add"], attn_mask, kpm)
    if not need_weights:
        # PyTorch's need_weights=False path is SDPA on (N, H, L, hd): unlike the softmax below,
        # its safe softmax gives a query whose every key is masked zeros, not NaN
        if attn_mask is not None:
            rows = attn_mask.shape[1]      # L, or 1 for a padding mask alone
            attn_mask = _reshape(attn_mask, (1, 1, rows, src_len) if attn_mask.shape[0] == 1
                                 else (bsz, num_heads, rows, src_len))
        q, k, v = (_reshape(t, (bsz, num_heads, t.shape[1], head_dim)) for t in (q, k, v))
        o = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
        o = _reshape(_permute(o, (2, 0, 1, 3)), (tgt_len * bsz, embed_dim))
        o = _reshape(_linear(o, out_proj_weight, out_proj_bias), (tgt_len, bsz, embed_dim))
        return (o if batched else _squeezed(o, (tgt_len, embed_dim))), None
    s = apply(P["matmul"], apply(P["mul"], q, 1.0 / math.sqrt(head_dim)), _mT(k))
    if attn_mask is not None:
        s = apply(P["add"], s, attn_mask)
    w = _softmax_last(s)
    if dropout_p > 0.0:
        w = _dropout(w, dropout_p, True)
    o = apply(P["matmul"], w, v)                                   # N*H, L, hd
    o = _reshape(_permute(o, (1, 0, 2)), (tgt_len * bsz, embed_dim))
    o = _reshape(_linear(o, out_proj_weight, out_proj_bias), (tgt_len, bsz, embed_dim))
    if not batched:
        o = _squeezed(o, (tgt_len, embed_dim))
    if not need_weights:
        return o, None
    w = _reshape(w, (bsz, num_heads, tgt_len, src_len))
    if average_attn_weights:
        w = rename(apply(P["div"], apply(P["sum"], w, dims=(1,), keepdim=False), num_heads),
                   "MeanBackward1")
    if not batched:
        w = _squeezed(w, tuple(w.shape[1:]))
    return o, w


def _squeezed(x, shape):
    """PyTorch's MHA drops the unbatched input's batch dim with squeeze(dim)."""
    return rename(_reshape(x, shape), "SqueezeBackward1")
