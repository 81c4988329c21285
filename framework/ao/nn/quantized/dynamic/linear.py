"""Dynamic quantized Linear (torch.ao.nn.quantized.dynamic.Linear), as PyTorch's x86/fbgemm
engine computes it: the weight is stored quantized (qint8, per tensor); at each call the input's
range chooses quint8 parameters over [0, 127] (reduce_range), the input is quantized, the
integer product is accumulated exactly, and the result is acc * (x_scale * w_scale) + bias in
float32. float16 keeps a float16 copy of the weight and computes in float32."""
import numpy as np

from runtime import dtypes as dt
from .... import _qtensor as Q
from ..... import nn
from ....._dispatch import wrap, values
from .....tensor import Tensor


class LinearPackedParams(nn.Module):
    """Holds the (quantized weight, bias) pair; saved as `_packed_params.dtype` and
    `_packed_params._packed_params` as PyTorch saves them."""
    _version = 3

    def __init__(self, dtype=dt.qint8):
        super().__init__()
        self.dtype = dtype
        self._weight = self._bias = None

    def set_weight_bias(self, weight, bias):
        self._weight, self._bias = weight, bias

    def _weight_bias(self):
        return self._weight, self._bias

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "dtype"] = self.dtype
        destination[prefix + "_packed_params"] = self._weight_bias()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        self.dtype = state_dict.pop(prefix + "dtype", self.dtype)
        wb = state_dict.pop(prefix + "_packed_params", None)
        if wb is not None:
            self.set_weight_bias(*wb)
        elif strict:
            missing_keys.append(prefix + "_packed_params")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, False, missing_keys,
                                      unexpected_keys, error_msgs)

    def __repr__(self):
        return repr(self._weight_bias())


class Linear(nn.Module):
    """A Linear layer whose weight is quantized; the input is quantized dynamically per call."""
    _version = 4

    def __init__(self, in_features, out_features, bias_=True, dtype=dt.qint8):
        super().__init__()
        if dtype not in (dt.qint8, dt.float16):
            raise RuntimeError("Unsupported dtype specified for quantized Linear!")
        self.in_features, self.out_features = in_features, out_features
        from .....creation import zeros, tensor
        b = zeros(out_features) if bias_ else None
        if dtype is dt.qint8:
            w = Q.quantize_per_tensor(zeros(out_features, in_features), 1.0, 0, dt.qint8)
        else:
            w = zeros(out_features, in_features)
        self._packed_params = LinearPackedParams(dtype)
        self._packed_params.set_weight_bias(w, b)
        self.scale = 1.0
        self.zero_point = 0
        self._scale_t, self._zp_t = tensor(1.0), tensor(0)

    def _get_name(self):
        return "DynamicQuantizedLinear"

    def __repr__(self):     # (PyTorch hides the _packed_params child)
        return f"{self._get_name()}({self.extra_repr()})"

    def extra_repr(self):
        s = f"in_features={self.in_features}, out_features={self.out_features}, " \
            f"dtype={self._packed_params.dtype}"
        if self._packed_params.dtype is dt.qint8:
            s += f", qscheme={self.weight().qscheme()}"
        return s

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        from .....creation import tensor
        destination[prefix + "scale"] = tensor(float(self.scale))
        destination[prefix + "zero_point"] = tensor(int(self.zero_point))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        for k, attr in (("scale", "scale"), ("zero_point", "zero_point")):
            v = state_dict.pop(prefix + k, None)
            if v is not None:
                setattr(self, attr, v.item())
        super()._load_from_state_dict(state_dict, prefix, local_metadata, False, missing_keys,
                                      unexpected_keys, error_msgs)

    def weight(self):
        return self._packed_params._weight_bias()[0]

    def bias(self):
        return self._packed_params._weight_bias()[1]

    def set_weight_bias(self, w, b):
        self._packed_params.set_weight_bias(w, b)

    def forward(self, x):
        w, b = self._packed_params._weight_bias()
        a = np.asarray(values(x.detach()), np.float32)
        if a.shape[-1] != self.in_features:
            rows = int(np.prod(a.shape[:-1]))
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{a.shape[-1]} "
                               f"and {self.in_features}x{self.out_features})")
        bias = None if b is None else np.asarray(values(b.detach()), np.float32)
        if self._packed_params.dtype is dt.float16:
            wf = np.asarray(values(w), np.float32).astype(np.float16).astype(np.float32)
            out = a @ wf.T if bias is None else a @ wf.T + bias
        else:
            out = _dynamic_int8_matmul(a, w, bias)
        return wrap(np.ascontiguousarray(out.astype(np.float32)), dt.float32)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The dynamic module of a float nn.Linear whose `qconfig` names the weight observer."""
        from ....quantization.qconfig import default_dynamic_qconfig
        qconfig = getattr(mod, "qconfig", None) or default_dynamic_qconfig
        wobs = qconfig.weight()
        dtype = wobs.dtype
        if dtype not in (dt.qint8, dt.float16):
            raise RuntimeError(f"Unsupported dtype specified for dynamic quantized Linear! {dtype}")
        new = cls(mod.in_features, mod.out_features, bias_=mod.bias is not None, dtype=dtype)
        wf = mod.weight.detach().float()
        if dtype is dt.qint8:
            wobs(wf)
            s, z = wobs.calculate_qparams()
            if wobs.qscheme in (Q.per_channel_affine, Q.per_channel_symmetric):
                qw = Q.quantize_per_channel(wf, s.double(), z, wobs.ch_axis, dt.qint8)
            else:
                qw = Q.quantize_per_tensor(wf, float(s.item()), int(z.item()), dt.qint8)
        else:
            qw = wf.to(dt.float16).float()
        b = None if mod.bias is None else mod.bias.detach().float()
        new.set_weight_bias(qw, b)
        return new


def _dynamic_int8_matmul(a, w, bias, reduce_range=True):
    """x @ w.T through quint8 activations (fbgemm's dynamic path)."""
    mn = float(a.min()) if a.size else 0.0
    mx = float(a.max()) if a.size else 0.0
    xs, xz = Q.choose_qparams(mn, mx, 0, 255, reduce_range=reduce_range)
    xq = Q._q_tensor_affine(a, xs, xz, dt.quint8).astype(np.int64) - xz
    wi = np.asarray(w._data, np.int64)
    if w._q[3] is None:
        wq = wi - w._q[2]
        ws = np.float32(w._q[1])
    else:               # per output channel
        wq = wi - w._q[2].reshape(-1, 1)
        ws = w._q[1].astype(np.float32)
    acc = xq @ wq.T     # exact in int64
    # fbgemm's epilogue: one fused multiply-add acc * (x_scale * w_scale) + bias in float32
    m = (acc.astype(np.float32).astype(np.float64)
         * (np.float32(xs) * ws).astype(np.float32).astype(np.float64))
    if bias is not None:
        m = m + bias.astype(np.float64)
    return m.astype(np.float32)
