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
          op="quantized::conv2d.new", flip_taps=False):
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
    # (a transposed conv's flipped kernel walks its taps backwards: fbgemm's pairs follow the
    # original order)
    rev = (slice(None, None, -1) if flip_taps else slice(None),) * nd
    for g in range(groups):
        cols = win[:, g * cg:(g + 1) * cg].transpose(perm)[(slice(None),) * (1 + nd) + rev]
        cols = cols.reshape(n * int(np.prod(outs)), -1)
        kg = wi[g * og:(g + 1) * og].transpose(kperm)[(slice(None),) + rev].reshape(og, -1)
        acc = _int_matmul(cols, kg, xz, wz[g * og:(g + 1) * og])
        res.append(acc.reshape((n,) + outs + (og,)))
    acc = np.moveaxis(np.concatenate(res, -1), -1, 1)
    b = None if bias is None else np.asarray(values(bias.detach()), np.float32)
    out = _requantize(acc, x._q[1], ws, b, scale, zero_point, relu)
    return Q.make_q(np.ascontiguousarray(out), dt.quint8,
                    (Q.per_tensor_affine, float(scale), int(zero_point), None))


def qconv_transpose(x, w, bias, stride, padding, output_padding, dilation, groups, scale,
                    zero_point, op="quantized::conv_transpose2d"):
    """Quantized transposed convolution: the convolution of x spread out by the stride (the
    gaps and the borders hold x's zero point, i.e. 0) with the spatially flipped weight
    (in, out / groups, *k) regrouped to (out, in / groups, *k), requantized as qconv."""
    _need_quint8(x, op)
    nd = len(stride)
    a = np.asarray(x._data)
    if a.ndim != nd + 2:
        raise ValueError(f"Input shape must be `(N, C, ...)` with {nd} spatial dims, got "
                         f"{tuple(a.shape)}")
    xz = x._q[2]
    k = w.shape[2:]
    up = np.full(a.shape[:2] + tuple((n - 1) * s + 1 for n, s in zip(a.shape[2:], stride)), xz,
                 a.dtype)
    up[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)] = a
    pads, crop = [], []
    for kk, d, p, op_ in zip(k, dilation, padding, output_padding):
        lo, hi = d * (kk - 1) - p, d * (kk - 1) - p + op_
        pads.append((max(lo, 0), max(hi, 0)))
        crop.append(slice(max(-lo, 0), None if hi >= 0 else hi))
    up = np.pad(up, [(0, 0), (0, 0)] + pads, constant_values=xz)[(slice(None), slice(None))
                                                                   + tuple(crop)]
    wi = np.asarray(w._data)
    cg, og = wi.shape[0] // groups, wi.shape[1]
    wc = wi.reshape((groups, cg, og) + tuple(k)).swapaxes(1, 2).reshape(
        (groups * og, cg) + tuple(k))
    wc = np.ascontiguousarray(wc[(slice(None), slice(None)) + (slice(None, None, -1),) * nd])
    wq = Q.make_q(wc, w._dtype, w._q)
    xq = Q.make_q(np.ascontiguousarray(up), x._dtype, x._q)
    return qconv(xq, wq, bias, (1,) * nd, (0,) * nd, dilation, groups, scale, zero_point,
                 op=op, flip_taps=True)


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


def qbatch_norm(x, weight, bias, mean, var, eps, scale, zero_point, relu=False):
    """Eval-mode batch norm of quantized x (PyTorch's kernel), channels on dim 1:
    (q - in_zp) * a + b with a = in_scale * weight / sqrt(var + eps) / scale and
    b = (bias - mean * weight / sqrt(var + eps)) / scale + zero_point in float32, rounded."""
    f = np.float32
    g = lambda t: np.asarray(values(t.detach()), f)     # noqa: E731
    alpha = (g(weight) / np.sqrt(g(var) + f(eps))).astype(f)
    beta = (g(bias) - g(mean) * alpha).astype(f)
    s, z = f(scale), int(zero_point)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    a = (alpha * f(x._q[1]) / s).astype(f).reshape(shape)
    b = (beta / s + f(z)).astype(f).reshape(shape)
    r = np.rint(((np.asarray(x._data, f) - f(x._q[2])) * a).astype(f) + b)
    lo, hi = Q._RANGE[x._dtype.name]
    r = np.clip(r, z if relu else lo, hi).astype(x._dtype.np)
    return Q.make_q(r, x._dtype, (Q.per_tensor_affine, float(scale), z, None))


def quantized_batch_norm(input, weight, bias, mean, var, eps, output_scale, output_zero_point):
    """torch.quantized_batch_norm: 2-d to 5-d per-tensor quantized input, channels on dim 1."""
    if not Q.is_q(input):
        raise Q._backend_error("aten::quantized_batch_norm", input)
    Q._per_tensor(input)
    if weight is None:
        raise RuntimeError("Weight must be provided")
    if bias is None:
        raise RuntimeError("Bias must be provided")
    if input.ndim < 2 or input.ndim > 5:
        raise RuntimeError(f"quantized_batch_norm: expected a 2-d to 5-d input, got "
                           f"{tuple(input.shape)}")
    c = input.shape[1]
    if weight.numel() != c:
        raise RuntimeError("Expect weight size to match C")
    if bias.numel() != c:
        raise RuntimeError("Expect bias size to match C")
    return qbatch_norm(input, weight, bias, mean, var, eps, output_scale, output_zero_point)


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
        if padding_mode not in ("zeros", "reflect"):
            raise ValueError(f"'padding_mode' {padding_mode} is not supported by quantized "
                             "convolution")
        if padding_mode == "reflect" and nd == 3:
            raise AssertionError("Conv3d does not support reflection padding")
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
        padding = self.padding
        if self.padding_mode == "reflect":     # (PyTorch pads first, then convolves unpadded)
            pads = tuple(p for p in reversed(self.padding) for _ in range(2))
            input, padding = nn.functional.pad(input, pads, mode="reflect"), (0,) * self._ND
        return qconv(input, w, b, self.stride, padding, self.dilation, self.groups,
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


class _ConvTransposeNd(_ConvNd):
    """Static quantized ConvTranspose: weight (in, out / groups, *k), qint8 per tensor."""
    _FLOAT = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode)
        nd = self._ND
        self.transposed, self.output_padding = True, _tuple(output_padding, nd)
        w = Q.quantize_per_tensor(wrap(np.zeros((in_channels, out_channels // groups)
                                                + self.kernel_size, np.float32), dt.float32),
                                  1.0, 0, dt.qint8)
        self._wb = (w, self._wb[1])

    def extra_repr(self):
        s = super().extra_repr()
        if self.output_padding != (0,) * len(self.output_padding):
            # (PyTorch prints it after padding / dilation, before groups / bias)
            head, sep, tail = s.partition(", groups=") if ", groups=" in s else \
                s.partition(", bias=")
            s = head + f", output_padding={self.output_padding}" + sep + tail
        return s

    def set_weight_bias(self, w, b):
        if w._q[3] is not None:     # (PyTorch's prepack refuses it)
            raise RuntimeError("Per Channel Quantization is currently disabled for transposed "
                               "conv")
        self._wb = (w, b)

    def forward(self, input):
        w, b = self._wb
        return qconv_transpose(input, w, b, self.stride, self.padding, self.output_padding,
                               self.dilation, self.groups, self.scale, self.zero_point,
                               op=f"quantized::conv_transpose{self._ND}d")

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        if type(mod) is not cls._FLOAT:
            raise AssertionError(f" nnq.{cls.__name__}.from_float only works for "
                                 f"{cls._FLOAT.__name__}")
        if not hasattr(mod, "qconfig"):
            raise AssertionError("Input float module must have qconfig defined.")
        wpp = mod.qconfig.weight()
        wpp(mod.weight)
        if wpp.dtype is not dt.qint8:
            raise AssertionError("Weight observer must have a dtype of qint8")
        qweight = _quantize_weight(mod.weight.float(), wpp)
        q = cls(mod.in_channels, mod.out_channels, mod.kernel_size, mod.stride, mod.padding,
                mod.output_padding, mod.groups, mod.bias is not None, mod.dilation,
                mod.padding_mode)
        q.set_weight_bias(qweight, None if mod.bias is None else mod.bias.detach().float())
        app = getattr(mod, "activation_post_process", None)
        if app is not None and app.dtype is not dt.float32:
            q.scale, q.zero_point = _act_qparams(mod)
        return q


class ConvTranspose1d(_ConvTransposeNd):
    _ND, _NAME = 1, "QuantizedConvTranspose1d"


class ConvTranspose2d(_ConvTransposeNd):
    _ND, _NAME = 2, "QuantizedConvTranspose2d"


class ConvTranspose3d(_ConvTransposeNd):
    _ND, _NAME = 3, "QuantizedConvTranspose3d"


ConvTranspose1d._FLOAT = nn.ConvTranspose1d
ConvTranspose2d._FLOAT = nn.ConvTranspose2d
ConvTranspose3d._FLOAT = nn.ConvTranspose3d


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


def qembedding_bag(w, indices, offsets, per_sample_weights, include_last_offset):
    """quantized::embedding_bag_byte (fbgemm's kernel, always a sum): per bag, for each row
    r (times its sample weight w), buf = fma(scale_r * w, q_r, buf + bias_r * w) in float32,
    bias_r = -zero_point_r * scale_r; empty bags give zeros."""
    f = np.float32
    idx = np.asarray(values(indices))
    if idx.dtype not in (np.int32, np.int64):
        raise RuntimeError(f"Expect 32 or 64 bit indices, but found "
                           f"{dt.tname(indices._dtype)} instead.")
    if idx.ndim == 1:
        if offsets is None:
            raise RuntimeError("embedding_bag_byte expects offsets to be set for 1D indices.")
        off = np.asarray(values(offsets)).astype(np.int64).reshape(-1)
    elif idx.ndim == 2:
        if offsets is not None:
            raise RuntimeError("embedding_bag_byte operator: input is 2D, then offsets has to be "
                               "None, as input is treated is a mini-batch of fixed length "
                               "sequences.")
        off = np.arange(0, idx.size, max(idx.shape[1], 1), dtype=np.int64)
        idx = idx.reshape(-1)
    else:
        raise RuntimeError(f"qembedding/qembedding_bag operator supports 1 or 2d indices, got "
                           f"{idx.ndim}")
    idx = idx.astype(np.int64)
    n = idx.size
    starts = off[:-1] if include_last_offset else off
    ends = off[1:] if include_last_offset else np.r_[off[1:], n].astype(np.int64)
    psw = None
    if per_sample_weights is not None:
        psw = np.asarray(values(per_sample_weights), f).reshape(-1)
        if psw.size != n:
            raise RuntimeError(f"embedding_bag_byte: expected per_sample_weights of "
                               f"{n} elements (one per index), got {psw.size}")
    q = np.asarray(w._data, np.float64)
    sc = w._q[1].astype(f)
    bias = (-w._q[2].astype(f) * sc).astype(f)
    buf = np.zeros((starts.size, q.shape[1]), f)
    for k in range(int((ends - starts).max()) if starts.size else 0):
        pos = starts + k
        act = pos < ends
        r = idx[pos[act]]
        s_, b_ = sc[r], bias[r]
        if psw is not None:
            s_, b_ = (s_ * psw[pos[act]]).astype(f), (b_ * psw[pos[act]]).astype(f)
        buf[act] = (s_.astype(np.float64)[:, None] * q[r]
                    + (buf[act] + b_[:, None]).astype(f)).astype(f)
    return wrap(buf, dt.float32)


class EmbeddingBag(Embedding):
    """Quantized EmbeddingBag over a quint8 weight with per-row float scales and zero points;
    PyTorch's forward always sums (its mode is kept, not used)."""
    _version = 1

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, mode="sum", sparse=False, _weight=None,
                 include_last_offset=False, dtype=dt.quint8):
        super().__init__(num_embeddings, embedding_dim, _weight=_weight, dtype=dtype)
        self.mode, self.pruned_weights = mode, False
        self.include_last_offset, self.dtype = include_last_offset, dtype

    def _get_name(self):
        return "QuantizedEmbeddingBag"

    def forward(self, indices, offsets=None, per_sample_weights=None,
                compressed_indices_mapping=None):
        return qembedding_bag(self.weight(), indices, offsets, per_sample_weights,
                              self.include_last_offset)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        from ...quantization.qconfig import float_qparams_weight_only_qconfig
        if hasattr(mod, "weight_fake_quant"):
            wobs = mod.weight_fake_quant
        else:
            if type(mod) is not nn.EmbeddingBag:
                raise AssertionError("nnq.EmbeddingBag.from_float only works for EmbeddingBag")
            if not hasattr(mod, "qconfig"):
                raise AssertionError("EmbeddingBag input float module must have qconfig "
                                     "defined")
            wobs = (mod.qconfig.weight() if mod.qconfig is not None and
                    mod.qconfig.weight is not None else float_qparams_weight_only_qconfig.weight())
        if wobs.qscheme is not Q.per_channel_affine_float_qparams:
            raise AssertionError("EmbeddingBag quantization is only supported with "
                                 "float_qparams_weight_only_qconfig.")
        if wobs.dtype is not dt.quint8:
            raise AssertionError("The only supported dtype for nnq.EmbeddingBag is torch.quint8 "
                                 f"and torch.quint4x2, got {wobs.dtype}")
        wobs(mod.weight)
        q = cls(mod.num_embeddings, mod.embedding_dim, max_norm=mod.max_norm,
                norm_type=mod.norm_type, scale_grad_by_freq=mod.scale_grad_by_freq,
                mode=mod.mode, sparse=mod.sparse, include_last_offset=mod.include_last_offset)
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


class LeakyReLU(nn.LeakyReLU):
    """quantized::leaky_relu with the output's scale and zero point (0-d buffers, as
    PyTorch's)."""

    def __init__(self, scale, zero_point, negative_slope=1e-2, inplace=False, device=None,
                 dtype=None):
        super().__init__(negative_slope, inplace)
        self.register_buffer("scale", wrap(np.array(scale, np.float32), dt.float32))
        self.register_buffer("zero_point", wrap(np.array(zero_point, np.int64), dt.int64))

    def _get_name(self):
        return "QuantizedLeakyReLU"

    def forward(self, input):
        _need_quint8(input, "quantized::leaky_relu")
        if self.inplace:    # (PyTorch writes into the input, in its own parameters)
            r = Q.leaky_relu_q(input, self.negative_slope, input._q[1], input._q[2])
            np.copyto(input._data, r._data)
            return input
        return Q.leaky_relu_q(input, self.negative_slope, float(self.scale.item()),
                              int(self.zero_point.item()))

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        s, z = _act_qparams(mod)
        return cls(s, z, mod.negative_slope, mod.inplace)


class ELU(nn.ELU):
    """quantized::elu with the output's scale and zero point (plain attributes)."""

    def __init__(self, scale, zero_point, alpha=1.0):
        super().__init__(alpha)
        self.scale, self.zero_point = scale, zero_point

    def _get_name(self):
        return "QuantizedELU"

    def forward(self, input):
        _need_quint8(input, "quantized::elu")
        return Q.elu_q(input, self.alpha, self.scale, self.zero_point)

    @staticmethod
    def from_float(mod, use_precomputed_fake_quant=False):
        return ELU(*_act_qparams(mod), mod.alpha)


class Sigmoid(nn.Sigmoid):
    """quantized::sigmoid with chosen output parameters."""

    def __init__(self, output_scale, output_zero_point):
        super().__init__()
        self.output_scale, self.output_zero_point = output_scale, output_zero_point

    def forward(self, input):
        _need_quint8(input, "quantized::sigmoid")
        return Q.unary_fixed(input, "sigmoid", float(self.output_scale),
                             int(self.output_zero_point))

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        return cls(*_act_qparams(mod))


class Softmax(nn.Softmax):
    """quantized::softmax (PyTorch's x86 path): the float softmax of the dequantized values,
    quantized with the module's scale and zero point."""

    def __init__(self, dim=None, scale=1.0, zero_point=0):
        super().__init__()
        self.dim, self.scale, self.zero_point = dim, scale, zero_point

    def _get_name(self):
        return "QuantizedSoftmax"

    def forward(self, input):
        xf = wrap(_deq(input, "quantized::softmax"), dt.float32)
        return _q_like(values(nn.functional.softmax(xf, self.dim)), self.scale,
                       self.zero_point, input._dtype)

    @staticmethod
    def from_float(mod, use_precomputed_fake_quant=False):
        s, z = _act_qparams(mod)
        return Softmax(mod.dim, s, z)


def qprelu(x, w, scale, zero_point):
    """quantized::prelu (PyTorch's kernel, in integers): (max(q, zp) - zp) * (q(1.0) - w_zp) +
    (min(q, zp) - zp) * (w - w_zp), the weight along dim 1, requantized as
    rint(acc * (x_scale * w_scale / scale)) + zero_point."""
    _need_quint8(x, "quantized::prelu")
    f = np.float32
    a = np.asarray(x._data, np.int64)
    if a.ndim == 0:     # (PyTorch's 0-d input falls to the float prelu)
        raise RuntimeError(f"prelu: Type promoting not supported. Got Float and "
                           f"{dt.tname(x._dtype)}")
    wz = w._q[2]
    wi = np.asarray(w._data, np.int64).reshape(-1)
    if a.ndim > 1:
        wi = wi.reshape((1, -1) + (1,) * (a.ndim - 2))
    one = Q._quantize_val(1.0, w._q[1], wz, w._dtype) - wz
    acc = (np.maximum(a, x._q[2]) - x._q[2]) * one + (np.minimum(a, x._q[2]) - x._q[2]) * (wi - wz)
    mult = f(f(f(x._q[1]) * f(w._q[1])) * (f(1) / f(scale)))
    lo, hi = Q._RANGE[x._dtype.name]
    r = np.clip(np.rint((acc.astype(f) * mult).astype(f)) + zero_point, lo, hi)
    return Q.make_q(r.astype(x._dtype.np), x._dtype,
                    (Q.per_tensor_affine, float(scale), int(zero_point), None))


class PReLU(nn.Module):
    """Quantized PReLU: a quint8 weight per channel (or one), output scale and zero point."""

    def __init__(self, output_scale, output_zero_point, num_parameters=1):
        super().__init__()
        from .... import randn
        self.num_parameters = num_parameters
        self.scale, self.zero_point = output_scale, output_zero_point
        self.set_weight(Q.quantize_per_tensor(randn(num_parameters), 1.0, 0, dt.quint8))

    def set_weight(self, w):
        self.weight = w

    def _get_name(self):
        return "QuantizedPReLU"

    def forward(self, input):
        return qprelu(input, self.weight, self.scale, self.zero_point)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        import warnings
        s, z = _act_qparams(mod)
        q = cls(s, z, mod.num_parameters)
        wf = mod.weight.detach().float()
        obs = mod.qconfig.weight()
        obs(wf)
        if obs.dtype is not dt.quint8:      # (PyTorch warns and quantizes to quint8 anyway)
            warnings.warn(f"PReLU's weight observer should have dtype quint8 but got "
                          f"{obs.dtype}", stacklevel=2)
        ws, wz = obs.calculate_qparams()
        q.set_weight(Q.quantize_per_tensor(wf, float(ws.item()), int(wz.item()), dt.quint8))
        return q


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
        # (PyTorch keeps the scale in a float32 buffer: the output's is that float)
        return _q_like(values(self._float(xf)), float(np.float32(self.scale)), self.zero_point,
                       input._dtype)


class Hardswish(_FloatThenQuant):
    _NAME, _OP = "QuantizedHardswish", "quantized::hardswish"

    def forward(self, input):
        # PyTorch's kernel (Q.kernel_vec: vector and tail requantize differently):
        # x * min(max(x + 3, 0), 6) / 6 in float32
        _need_quint8(input, self._OP)
        f = np.float32

        def fn(x, vector):
            return ((x * np.minimum(np.maximum(x + f(3), f(0)), f(6)).astype(f)).astype(f)
                    / f(6)).astype(f)
        return Q.kernel_vec(input, fn, self.scale, self.zero_point)

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


class GroupNorm(_FloatThenQuant):
    """quantized::group_norm: the float group norm of the dequantized values, quantized."""
    _NAME, _OP = "QuantizedGroupNorm", "quantized::group_norm"

    def __init__(self, num_groups, num_channels, weight, bias, scale, zero_point, eps=1e-5,
                 affine=True, device=None, dtype=None):
        super().__init__(scale, zero_point)
        if num_channels % num_groups != 0:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps, self.affine = eps, affine
        self.weight, self.bias = weight, bias

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")

    def _float(self, x):
        return nn.functional.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        s, z = _act_qparams(mod)
        return cls(mod.num_groups, mod.num_channels, mod.weight, mod.bias, s, z, mod.eps,
                   mod.affine)


class _InstanceNorm(_FloatThenQuant):
    """quantized::instance_norm: the float instance norm of the dequantized values, quantized."""
    _OP = "quantized::instance_norm"

    def __init__(self, num_features, weight, bias, scale, zero_point, eps=1e-5, momentum=0.1,
                 affine=False, track_running_stats=False, device=None, dtype=None):
        super().__init__(scale, zero_point)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight, self.bias = weight, bias

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")

    def _float(self, x):
        return nn.functional.instance_norm(x, None, None, self.weight, self.bias, True, 0.0,
                                           self.eps)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        s, z = _act_qparams(mod)
        # (as PyTorch's: affine lands in the momentum slot, so affine reads False)
        return cls(mod.num_features, mod.weight, mod.bias, s, z, mod.eps, mod.affine)


class InstanceNorm1d(_InstanceNorm):
    _NAME = "QuantizedInstanceNorm1d"


class InstanceNorm2d(_InstanceNorm):
    _NAME = "QuantizedInstanceNorm2d"


class InstanceNorm3d(_InstanceNorm):
    _NAME = "QuantizedInstanceNorm3d"


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
        return qbatch_norm(input, self.weight, self.bias, self.running_mean, self.running_var,
                           self.eps, self.scale.item(), int(self.zero_point.item()), self._RELU)

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


class BatchNorm3d(BatchNorm2d):
    """quantized::batch_norm3d: BatchNorm2d's kernel over (N, C, D, H, W)."""
    _NAME = "QuantizedBatchNorm3d"

    def forward(self, input):
        _need_quint8(input, "quantized::batch_norm3d")
        if input.ndim != 5:
            raise RuntimeError("Expecting the input tensor of rank 5.")
        return qbatch_norm(input, self.weight, self.bias, self.running_mean, self.running_var,
                           self.eps, self.scale.item(), int(self.zero_point.item()), self._RELU)


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
