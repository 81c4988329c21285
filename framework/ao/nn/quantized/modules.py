"""Static quantized modules (torch.ao.nn.quantized): quint8 activations with fixed scale and
zero point, qint8 weights, as PyTorch's x86/fbgemm engine computes them.

Conv and Linear accumulate (x - x_zp) * (w - w_zp) exactly, then requantize as fbgemm does in
float32: acc + bias / (x_scale * w_scale), times (x_scale * w_scale) / out_scale, rounded half
to even, plus the output zero point, clamped (at the zero point when a ReLU is fused). The
other modules run the float op on the dequantized values and quantize the result."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from runtime import dtypes as dt
from ... import _qtensor as Q
from .... import nn
from ...._dispatch import wrap, values


# ---- kernels ----------------------------------------------------------------------------------

def _need_quint8(x, op):
    if not Q.is_q(x):
        raise Q._backend_error(op, x)
    if x._q[3] is not None:
        raise RuntimeError(f"{op}: expected a per-tensor quantized input")


def _weight_qparams(w):
    """(raw int8 integers, zero points, float32 scales), per output channel."""
    wi = np.asarray(w._data, np.int64)
    if w._q[3] is None:
        return wi, np.full(wi.shape[0], w._q[2], np.int64), \
            np.full(wi.shape[0], np.float32(w._q[1]), np.float32)
    return wi, w._q[2].astype(np.int64), w._q[1].astype(np.float32)


def _int_matmul(cols, w, x_zp, w_zp):
    """sum_k (cols - x_zp) * (w - w_zp) for raw uint8 rows cols (R, K) and raw int8 rows w
    (O, K), as fbgemm's AVX2 kernel: the raw products are summed in pairs along k with int16
    saturation (vpmaddubsw), the zero points taken off afterwards. Pairs cannot saturate when
    2 * max(cols) * max|w| fits in int16 (7-bit activations): then the product is exact."""
    k = cols.shape[1]
    if cols.size == 0 or w.size == 0 or 2 * int(cols.max()) * int(np.abs(w).max()) <= 32767:
        acc = (cols.astype(np.float64) @ w.T.astype(np.float64)).astype(np.int64)
    else:
        if k % 2:
            cols = np.pad(cols, [(0, 0), (0, 1)])
            w = np.pad(w, [(0, 0), (0, 1)])
        acc = np.zeros((cols.shape[0], w.shape[0]), np.int64)
        for j in range(0, cols.shape[1], 2):
            acc += np.clip(np.outer(cols[:, j], w[:, j]) + np.outer(cols[:, j + 1], w[:, j + 1]),
                           -32768, 32767)
        w = w[:, :k]
        cols = cols[:, :k]
    acc -= x_zp * w.sum(1)[None, :]
    if np.any(w_zp):
        acc -= w_zp[None, :] * cols.sum(1)[:, None] - k * x_zp * w_zp[None, :]
    return acc


def _requantize(acc, x_scale, w_scales, bias, scale, zero_point, relu, dtype=dt.quint8):
    """fbgemm's float epilogue over the int accumulators acc (channels on axis 1)."""
    f = np.float32
    shape = (1, -1) + (1,) * (acc.ndim - 2)
    atws = (f(x_scale) * w_scales).astype(f)
    r = acc.astype(f)
    if bias is not None:
        r = (r + (bias.astype(f) / atws).astype(f).reshape(shape)).astype(f)
    mult = (atws / f(scale)).astype(f)
    with np.errstate(all="ignore"):
        r = np.rint((r * mult.reshape(shape)).astype(f)) + zero_point
    lo, hi = Q._RANGE[dtype.name]
    return np.clip(r, zero_point if relu else lo, hi).astype(dtype.np)


def qconv(x, w, bias, stride, padding, dilation, groups, scale, zero_point, relu=False,
          op="quantized::conv2d.new"):
    """Quantized N-d convolution (zeros padding: the input's zero point)."""
    _need_quint8(x, op)
    nd = len(stride)
    xz = x._q[2]
    a = np.asarray(x._data, np.int64)
    if a.ndim != nd + 2:
        raise ValueError(f"Input shape must be `(N, C, ...)` with {nd} spatial dims, got "
                         f"{tuple(a.shape)}")
    wi, wz, ws = _weight_qparams(w)
    a = np.pad(a, [(0, 0), (0, 0)] + [(p, p) for p in padding], constant_values=xz)
    k = wi.shape[2:]
    span = tuple(d * (kk - 1) + 1 for d, kk in zip(dilation, k))
    win = sliding_window_view(a, span, axis=tuple(range(2, 2 + nd)))
    sl = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride) + \
        tuple(slice(None, None, d) for d in dilation)
    win = win[sl]           # (N, C, *O, *K)
    n, outs = a.shape[0], win.shape[2:2 + nd]
    cg, og = a.shape[1] // groups, wi.shape[0] // groups
    res = []
    # fbgemm's im2col order: kernel positions, then channels (NHWC)
    perm = (0,) + tuple(range(2, 2 + 2 * nd)) + (1,)
    kperm = (0,) + tuple(range(2, 2 + nd)) + (1,)
    for g in range(groups):
        cols = win[:, g * cg:(g + 1) * cg].transpose(perm).reshape(n * int(np.prod(outs)), -1)
        kg = wi[g * og:(g + 1) * og].transpose(kperm).reshape(og, -1)
        acc = _int_matmul(cols, kg, xz, wz[g * og:(g + 1) * og])
        res.append(acc.reshape((n,) + outs + (og,)))
    acc = np.moveaxis(np.concatenate(res, -1), -1, 1)
    b = None if bias is None else np.asarray(values(bias.detach()), np.float32)
    out = _requantize(acc, x._q[1], ws, b, scale, zero_point, relu)
    return Q.make_q(np.ascontiguousarray(out), dt.quint8,
                    (Q.per_tensor_affine, float(scale), int(zero_point), None))


def qlinear(x, w, bias, scale, zero_point, relu=False, op="quantized::linear"):
    _need_quint8(x, op)
    a = np.asarray(x._data, np.int64)
    wi, wz, ws = _weight_qparams(w)
    if a.shape[-1] != wi.shape[1]:
        raise RuntimeError(f"The number of rows in the packB should be equal to K: "
                           f"{a.shape[-1]}")
    lead = a.shape[:-1]
    acc = _int_matmul(a.reshape(-1, a.shape[-1]), wi, x._q[2], wz)
    b = None if bias is None else np.asarray(values(bias.detach()), np.float32)
    out = _requantize(acc, x._q[1], ws, b, scale, zero_point, relu).reshape(lead + (-1,))
    return Q.make_q(out, dt.quint8, (Q.per_tensor_affine, float(scale), int(zero_point), None))


def _q_like(a, scale, zero_point, dtype=dt.quint8):
    """Float32 values a quantized with (scale, zero_point)."""
    a = np.asarray(a, np.float32)
    return Q.make_q(Q._q_tensor_affine(a, scale, zero_point, dtype), dtype,
                    (Q.per_tensor_affine, float(scale), int(zero_point), None))


def _deq(x, op):
    _need_quint8(x, op)
    return Q._dequant_array(x)


def qadd(a, b, scale, zero_point, relu=False):
    """quantized::add: dequantized sum in float32, quantized."""
    r = _deq(a, "quantized::add") + _deq(b, "quantized::add")
    return _q_like(np.maximum(r, 0) if relu else r, scale, zero_point, a._dtype)


def qmul(a, b, scale, zero_point, relu=False):
    """quantized::mul: the integer product (a - a_zp) * (b - b_zp) times
    a_scale * b_scale / scale, rounded."""
    _need_quint8(a, "quantized::mul")
    _need_quint8(b, "quantized::mul")
    p = (np.asarray(a._data, np.int64) - a._q[2]) * (np.asarray(b._data, np.int64) - b._q[2])
    m = np.float32(np.float32(a._q[1]) * np.float32(b._q[1]) / np.float32(scale))
    r = np.rint((p.astype(np.float32) * m).astype(np.float32)) + zero_point
    lo, hi = Q._RANGE[a._dtype.name]
    r = np.clip(r, zero_point if relu else lo, hi).astype(a._dtype.np)
    return Q.make_q(r, a._dtype, (Q.per_tensor_affine, float(scale), int(zero_point), None))


# ---- modules ----------------------------------------------------------------------------------

def _scalar_buffers(destination, prefix, scale, zero_point):
    destination[prefix + "scale"] = wrap(np.array(scale, np.float32), dt.float32)
    destination[prefix + "zero_point"] = wrap(np.array(zero_point, np.int64), dt.int64)


def _load_scalars(mod, state_dict, prefix):
    for k in ("scale", "zero_point"):
        v = state_dict.pop(prefix + k, None)
        if v is not None:
            setattr(mod, k, float(v.item()) if k == "scale" else int(v.item()))


class _QParamsState:
    """scale and zero_point as PyTorch's quantized modules keep them: Python numbers on the
    module, 0-d buffers in its state_dict (after its own entries)."""

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        _scalar_buffers(destination, prefix, self.scale, self.zero_point)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        _load_scalars(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, False, missing_keys,
                                      unexpected_keys, error_msgs)


def _act_qparams(mod):
    s, z = mod.activation_post_process.calculate_qparams()
    return float(s.float().item()), int(z.long().item())


def _quantize_weight(w, obs):
    """The float weight quantized with the weight observer's parameters."""
    from ...quantization.observer import per_channel_symmetric, per_channel_affine
    s, z = obs.calculate_qparams()
    wf = w.detach().float()
    if obs.qscheme is Q.per_channel_affine_float_qparams:
        return Q.quantize_per_channel(wf, s.float(), z.float(), obs.ch_axis, obs.dtype)
    if obs.qscheme in (per_channel_symmetric, per_channel_affine):
        return Q.quantize_per_channel(wf, s.double(), z.long(), obs.ch_axis, obs.dtype)
    return Q.quantize_per_tensor(wf, float(s.item()), int(z.item()), obs.dtype)


class Quantize(nn.Module):
    """Quantizes its float input with fixed scale and zero point (from QuantStub)."""

    def __init__(self, scale, zero_point, dtype, factory_kwargs=None):
        super().__init__()
        self.register_buffer("scale", wrap(np.array([scale], np.float32), dt.float32))
        self.register_buffer("zero_point", wrap(np.array([zero_point], np.int64), dt.int64))
        self.dtype = dtype

    def forward(self, X):
        return Q.quantize_per_tensor(X, float(self.scale.item()), int(self.zero_point.item()),
                                     self.dtype)

    @staticmethod
    def from_float(mod, use_precomputed_fake_quant=False):
        s, z = mod.activation_post_process.calculate_qparams()
        return Quantize(float(s.float().item()), int(z.long().item()),
                        mod.activation_post_process.dtype)

    def extra_repr(self):
        return f"scale={self.scale}, zero_point={self.zero_point}, dtype={self.dtype}"


class DeQuantize(nn.Module):
    def forward(self, Xq):
        return Xq.dequantize()

    @staticmethod
    def from_float(mod, use_precomputed_fake_quant=False):
        return DeQuantize()


def _tuple(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


class _ConvNd(nn.Module):
    _ND = 2
    _NAME = "QuantizedConv2d"
    _RELU = False
    _FLOAT_CONV = None      # (set below: nn.Conv<N>d)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        nd = self._ND
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode != "zeros":
            raise NotImplementedError("Kiln's quantized conv pads with zeros only")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _tuple(kernel_size, nd)
        self.stride, self.padding = _tuple(stride, nd), _tuple(padding, nd)
        self.dilation = _tuple(dilation, nd)
        self.transposed, self.output_padding = False, (0,) * nd
        self.groups, self.padding_mode = groups, padding_mode
        w = Q.quantize_per_tensor(wrap(np.zeros((out_channels, in_channels // groups)
                                                + self.kernel_size, np.float32), dt.float32),
                                  1.0, 0, dt.qint8)
        b = wrap(np.zeros(out_channels, np.float32), dt.float32) if bias else None
        self._wb = (w, b)
        self.scale, self.zero_point = 1.0, 0

    def _get_name(self):
        return self._NAME

    def set_weight_bias(self, w, b):
        self._wb = (w, b)

    def _weight_bias(self):
        return self._wb

    def weight(self):
        return self._wb[0]

    def bias(self):
        return self._wb[1]

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}, scale={self.scale}, zero_point={self.zero_point}")
        if self.padding != (0,) * len(self.padding):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias() is None:
            s += ", bias=False"
        return s

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        w, b = self._wb
        destination[prefix + "weight"] = w
        destination[prefix + "bias"] = None if b is None else nn.Parameter(b, False)
        _scalar_buffers(destination, prefix, self.scale, self.zero_point)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        w = state_dict.pop(prefix + "weight", None)
        b = state_dict.pop(prefix + "bias", None)
        if w is not None:
            self.set_weight_bias(w, None if b is None else b.detach())
        _load_scalars(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, False, missing_keys,
                                      unexpected_keys, error_msgs)

    def forward(self, input):
        w, b = self._wb
        return qconv(input, w, b, self.stride, self.padding, self.dilation, self.groups,
                     self.scale, self.zero_point, self._RELU,
                     op=f"quantized::conv{self._ND}d{'_relu' if self._RELU else ''}.new")

    @classmethod
    def get_qconv(cls, mod, activation_post_process, weight_post_process=None):
        if weight_post_process is None:
            weight_post_process = mod.qconfig.weight()
        weight_post_process(mod.weight)     # (updates its qparams, as PyTorch's)
        if weight_post_process.dtype is not dt.qint8:
            raise AssertionError("Weight observer must have a dtype of qint8")
        qweight = _quantize_weight(mod.weight.float(), weight_post_process)
        q = cls(mod.in_channels, mod.out_channels, mod.kernel_size, mod.stride, mod.padding,
                mod.dilation, mod.groups, mod.bias is not None, mod.padding_mode)
        q.set_weight_bias(qweight, None if mod.bias is None else mod.bias.detach().float())
        if activation_post_process is None or activation_post_process.dtype is dt.float32:
            return q
        s, z = activation_post_process.calculate_qparams()
        q.scale, q.zero_point = float(s.float().item()), int(z.long().item())
        return q

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        from ..intrinsic import qat as nniqat, _FusedModule
        if hasattr(mod, "weight_fake_quant"):
            if isinstance(mod, nniqat._ConvBnNd):
                from ....nn.utils.fusion import fuse_conv_bn_weights
                mod.weight, mod.bias = fuse_conv_bn_weights(
                    mod.weight, mod.bias, mod.bn.running_mean, mod.bn.running_var, mod.bn.eps,
                    mod.bn.weight, mod.bn.bias)
            wpp = mod.weight_fake_quant
        else:
            if not hasattr(mod, "qconfig"):
                raise AssertionError("Input float module must have qconfig defined.")
            wpp = mod.qconfig.weight()
        app = mod.activation_post_process
        if isinstance(mod, _FusedModule):
            mod = mod[0]
        return cls.get_qconv(mod, app, wpp)


class Conv1d(_ConvNd):
    _ND, _NAME = 1, "QuantizedConv1d"


class Conv2d(_ConvNd):
    _ND, _NAME = 2, "QuantizedConv2d"


class Conv3d(_ConvNd):
    _ND, _NAME = 3, "QuantizedConv3d"


class Linear(_QParamsState, nn.Module):
    """Static quantized Linear: quint8 in, quint8 out, qint8 weight (per tensor or channel)."""
    _version = 3
    _RELU = False
    _NAME = "QuantizedLinear"

    def __init__(self, in_features, out_features, bias_=True, dtype=dt.qint8):
        super().__init__()
        from .dynamic.linear import LinearPackedParams
        if dtype is not dt.qint8:
            raise RuntimeError("Unsupported dtype specified for quantized Linear!")
        self.in_features, self.out_features = in_features, out_features
        b = wrap(np.zeros(out_features, np.float32), dt.float32) if bias_ else None
        w = Q.quantize_per_tensor(wrap(np.zeros((out_features, in_features), np.float32),
                                       dt.float32), 1.0, 0, dt.qint8)
        self._packed_params = LinearPackedParams(dtype)
        self._packed_params.set_weight_bias(w, b)
        self.scale, self.zero_point = 1.0, 0

    def _get_name(self):
        return self._NAME

    def __repr__(self):     # (PyTorch hides the _packed_params child)
        return f"{self._get_name()}({self.extra_repr()})"

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"scale={self.scale}, zero_point={self.zero_point}, "
                f"qscheme={self.weight().qscheme()}")

    def weight(self):
        return self._packed_params._weight_bias()[0]

    def bias(self):
        return self._packed_params._weight_bias()[1]

    def _weight_bias(self):
        return self._packed_params._weight_bias()

    def set_weight_bias(self, w, b):
        self._packed_params.set_weight_bias(w, b)

    def forward(self, x):
        w, b = self._packed_params._weight_bias()
        return qlinear(x, w, b, self.scale, self.zero_point, self._RELU,
                       op="quantized::linear_relu" if self._RELU else "quantized::linear")

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        from ..intrinsic import _FusedModule
        from ..intrinsic import qat as nniqat
        if hasattr(mod, "weight_fake_quant"):
            if isinstance(mod, nniqat.LinearBn1d):
                from ....nn.utils.fusion import fuse_linear_bn_weights
                mod.weight, mod.bias = fuse_linear_bn_weights(
                    mod.weight, mod.bias, mod.bn.running_mean, mod.bn.running_var, mod.bn.eps,
                    mod.bn.weight, mod.bn.bias)
            wpp = mod.weight_fake_quant
            app = mod.activation_post_process
        else:
            if not hasattr(mod, "qconfig"):
                raise AssertionError("Input float module must have qconfig defined")
            app = mod.activation_post_process
            if isinstance(mod, _FusedModule):
                mod = mod[0]
            wpp = mod.qconfig.weight()
        wpp(mod.weight)
        if wpp.dtype is not dt.qint8:
            raise AssertionError("Weight observer must have dtype torch.qint8")
        s, z = app.calculate_qparams()
        qweight = _quantize_weight(mod.weight.float(), wpp)
        q = cls(mod.in_features, mod.out_features, dtype=wpp.dtype)
        q.set_weight_bias(qweight, None if mod.bias is None else mod.bias.detach().float())
        q.scale, q.zero_point = float(s.float().item()), int(z.long().item())
        return q


class EmbeddingPackedParams(nn.Module):
    """Holds the quantized weight; saved as `dtype` and `_packed_weight` as PyTorch saves it."""
    _version = 1

    def __init__(self, num_embeddings, embedding_dim, dtype=dt.quint8):
        super().__init__()
        self.dtype = dtype
        self._packed_weight = None

    def set_weight(self, weight):
        self._packed_weight = weight

    def _weight(self):
        return self._packed_weight

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "dtype"] = self.dtype
        destination[prefix + "_packed_weight"] = self._packed_weight

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        self.dtype = state_dict.pop(prefix + "dtype", self.dtype)
        w = state_dict.pop(prefix + "_packed_weight", None)
        if w is not None:
            self.set_weight(w)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, False, missing_keys,
                                      unexpected_keys, error_msgs)


class Embedding(nn.Module):
    """Embedding over a quint8 weight quantized per row with float scales and zero points;
    rows come out as q * scale + (-zero_point * scale) in one rounding (PyTorch's
    embedding_byte)."""
    _version = 1

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 dtype=dt.quint8):
        super().__init__()
        if dtype is not dt.quint8:
            raise NotImplementedError("Kiln's quantized Embedding is quint8 only")
        self.num_embeddings, self.embedding_dim, self.dtype = num_embeddings, embedding_dim, dtype
        if _weight is None:
            _weight = Q.quantize_per_channel(
                wrap(np.zeros((num_embeddings, embedding_dim), np.float32), dt.float32),
                wrap(np.ones(num_embeddings, np.float32), dt.float32),
                wrap(np.zeros(num_embeddings, np.float32), dt.float32), 0, dt.quint8)
        self._packed_params = EmbeddingPackedParams(num_embeddings, embedding_dim, dtype)
        self._packed_params.set_weight(_weight)

    def _get_name(self):
        return "QuantizedEmbedding"

    def __repr__(self):
        return f"{self._get_name()}({self.extra_repr()})"

    def extra_repr(self):
        return (f"num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim}, "
                f"dtype={self._packed_params.dtype}, qscheme={self.weight().qscheme()}")

    def set_weight(self, w):
        self._packed_params.set_weight(w)

    def weight(self):
        return self._packed_params._weight()

    def forward(self, indices):
        w = self.weight()
        idx = np.asarray(values(indices))
        if idx.dtype.kind not in "iu":
            raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the "
                               "following scalar types: Long, Int")
        s = w._q[1].astype(np.float32)
        zs = (-w._q[2].astype(np.float32) * s).astype(np.float32)
        rows = np.asarray(w._data, np.float64)[idx]
        out = rows * s[idx][..., None].astype(np.float64) + zs[idx][..., None]
        return wrap(out.astype(np.float32), dt.float32)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        if type(mod) is not nn.Embedding:
            raise AssertionError("nnq.Embedding.from_float only works for Embedding")
        if not hasattr(mod, "qconfig"):
            raise AssertionError("Embedding input float module must have qconfig defined")
        wobs = mod.qconfig.weight()
        if wobs.qscheme is not Q.per_channel_affine_float_qparams:
            raise AssertionError("Embedding quantization is only supported with "
                                 "float_qparams_weight_only_qconfig.")
        if wobs.dtype is not dt.quint8:
            raise AssertionError("The only supported dtype for nnq.Embedding is torch.quint8 and "
                                 f"torch.quint4x2, got {wobs.dtype}")
        wobs(mod.weight)
        q = cls(mod.num_embeddings, mod.embedding_dim)
        q.set_weight(_quantize_weight(mod.weight.float(), wobs))
        return q


class ReLU6(nn.ReLU):
    """relu6 on quantized values: clamped to [zero_point, q(6.0)]."""

    def __init__(self, inplace=False):
        super().__init__(inplace)

    def _get_name(self):
        return "QuantizedReLU6"

    def forward(self, input):
        _need_quint8(input, "quantized::relu6")
        six = Q._q_tensor_affine(np.array(6.0, np.float32), input._q[1], input._q[2],
                                 input._dtype)
        r = np.clip(input._data, input._dtype.np.type(input._q[2]), six)
        return Q.make_q(r.astype(input._dtype.np), input._dtype, input._q)

    @staticmethod
    def from_float(mod, use_precomputed_fake_quant=False):
        return ReLU6(mod.inplace)


class _FloatThenQuant(_QParamsState, nn.Module):
    """A float op on dequantized input, quantized with the module's scale and zero point."""
    _NAME = ""

    def __init__(self, scale=1.0, zero_point=0):
        super().__init__()
        self.scale, self.zero_point = float(scale), int(zero_point)

    def _get_name(self):
        return self._NAME

    def forward(self, input):
        xf = wrap(_deq(input, self._OP), dt.float32)
        return _q_like(values(self._float(xf)), self.scale, self.zero_point, input._dtype)


class Hardswish(_FloatThenQuant):
    _NAME, _OP = "QuantizedHardswish", "quantized::hardswish"

    def forward(self, input):
        # PyTorch's vectorized kernel: dequantize as x * s + (-zp * s) (fused), then
        # x * min(max(x + 3, 0), 6) / 6 and round(y * (1 / out_scale)) + out_zp in float32
        _need_quint8(input, self._OP)
        f = np.float32
        s, z = f(input._q[1]), input._q[2]
        x = (np.asarray(input._data, np.float64) * np.float64(s)
             + np.float64(f(-z * s))).astype(f)     # (-zp * scale: float)
        y = (x * np.minimum(np.maximum(x + f(3), f(0)), f(6)).astype(f)).astype(f) / f(6)
        q = np.rint((y.astype(f) * (f(1) / f(self.scale))).astype(f)) + self.zero_point
        lo, hi = Q._RANGE[input._dtype.name]
        return Q.make_q(np.clip(q, lo, hi).astype(input._dtype.np), input._dtype,
                        (Q.per_tensor_affine, self.scale, self.zero_point, None))

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        return cls(*_act_qparams(mod))


class LayerNorm(_FloatThenQuant):
    _NAME, _OP = "QuantizedLayerNorm", "quantized::layer_norm"

    def __init__(self, normalized_shape, weight, bias, scale, zero_point, eps=1e-5,
                 elementwise_affine=True):
        super().__init__(scale, zero_point)
        self.normalized_shape = tuple(_tuple(normalized_shape, 1))
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.weight, self.bias = weight, bias

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")

    def _float(self, x):
        return nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias,
                                        self.eps)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        s, z = _act_qparams(mod)
        return cls(mod.normalized_shape, mod.weight, mod.bias, s, z, mod.eps,
                   mod.elementwise_affine)


class BatchNorm2d(nn.BatchNorm2d):
    """Eval-mode BatchNorm on quantized input (PyTorch's kernel): (q - in_zp) * a + b with
    a = in_scale * weight / sqrt(var + eps) / scale and b = (bias - mean * weight /
    sqrt(var + eps)) / scale + zero_point in float32, rounded."""
    _RELU = False
    _NAME = "QuantizedBatchNorm2d"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, True, True)
        self.register_buffer("scale", wrap(np.array(1.0, np.float32), dt.float32))
        self.register_buffer("zero_point", wrap(np.array(0, np.int64), dt.int64))

    def _get_name(self):
        return self._NAME

    def forward(self, input):
        _need_quint8(input, "quantized::batch_norm2d")
        if input.ndim != 4:
            raise ValueError("Input shape must be `(N, C, H, W)`!")
        f = np.float32
        g = lambda t: np.asarray(values(t.detach()), f)     # noqa: E731
        alpha = (g(self.weight) / np.sqrt(g(self.running_var) + f(self.eps))).astype(f)
        beta = (g(self.bias) - g(self.running_mean) * alpha).astype(f)
        s, z = f(self.scale.item()), int(self.zero_point.item())
        a = (alpha * f(input._q[1]) / s).astype(f).reshape(1, -1, 1, 1)
        b = (beta / s + f(z)).astype(f).reshape(1, -1, 1, 1)
        r = np.rint(((np.asarray(input._data, f) - f(input._q[2])) * a).astype(f) + b)
        lo, hi = Q._RANGE[input._dtype.name]
        r = np.clip(r, z if self._RELU else lo, hi).astype(input._dtype.np)
        return Q.make_q(r, input._dtype, (Q.per_tensor_affine, float(s), z, None))

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        from ..intrinsic import _FusedModule
        app = mod.activation_post_process
        if isinstance(mod, _FusedModule):
            mod = mod[0]
        s, z = app.calculate_qparams()
        q = cls(mod.num_features, mod.eps)
        q.weight, q.bias = mod.weight, mod.bias
        q.running_mean, q.running_var = mod.running_mean, mod.running_var
        q.scale = wrap(np.asarray(values(s), np.float32).reshape(()), dt.float32)
        q.zero_point = wrap(np.asarray(values(z)).astype(np.int64).reshape(()), dt.int64)
        return q


class Dropout(nn.Dropout):
    def _get_name(self):
        return "QuantizedDropout"

    def forward(self, input):
        return input

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        return cls(mod.p, mod.inplace)


class FloatFunctional(nn.Module):
    """add / mul / cat / add_relu in float, each result passed through activation_post_process
    (an observer after prepare): what convert turns into QFunctional."""

    def __init__(self):
        super().__init__()
        self.activation_post_process = nn.Identity()

    def forward(self, x):
        raise RuntimeError("FloatFunctional is not intended to use the 'forward'. Please use "
                           "the underlying operation")

    def add(self, x, y):
        from .... import ops_math as M
        return self.activation_post_process(M.add(x, y))

    def add_scalar(self, x, y):
        from .... import ops_math as M
        return M.add(x, y)

    def mul(self, x, y):
        from .... import ops_math as M
        return self.activation_post_process(M.mul(x, y))

    def mul_scalar(self, x, y):
        from .... import ops_math as M
        return M.mul(x, y)

    def cat(self, x, dim=0):
        from .... import ops_shape as S
        return self.activation_post_process(S.cat(x, dim=dim))

    def add_relu(self, x, y):
        from .... import ops_math as M
        return self.activation_post_process(nn.functional.relu(M.add(x, y)))

    def matmul(self, x, y):
        from .... import ops_math as M
        return self.activation_post_process(M.matmul(x, y))


class QFunctional(_QParamsState, nn.Module):
    """The quantized FloatFunctional: results in its scale and zero point."""

    def __init__(self):
        super().__init__()
        self.scale, self.zero_point = 1.0, 0
        self.activation_post_process = nn.Identity()

    def _get_name(self):
        return "QFunctional"

    def extra_repr(self):
        return f"scale={self.scale}, zero_point={self.zero_point}"

    def forward(self, x):
        raise RuntimeError("Functional is not intended to use the 'forward'. Please use the "
                           "underlying operation")

    def add(self, x, y):
        return self.activation_post_process(qadd(x, y, self.scale, self.zero_point))

    def add_relu(self, x, y):
        return self.activation_post_process(qadd(x, y, self.scale, self.zero_point, True))

    def mul(self, x, y):
        return self.activation_post_process(qmul(x, y, self.scale, self.zero_point))

    def cat(self, x, dim=0):
        parts = [_deq(t, "quantized::cat") for t in x]
        return self.activation_post_process(
            _q_like(np.concatenate(parts, axis=dim), self.scale, self.zero_point, x[0]._dtype))

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        q = QFunctional()
        q.scale, q.zero_point = _act_qparams(mod)
        return q
