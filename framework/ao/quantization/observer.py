"""torch.ao.quantization observers: record a tensor's range and choose quantization parameters
(MinMaxObserver, PerChannelMinMaxObserver, PlaceholderObserver), as quantize_dynamic needs."""
import functools

import numpy as np

from runtime import dtypes as dt
from ... import nn
from ..._dispatch import wrap, values
from .._qtensor import per_tensor_affine, per_tensor_symmetric, per_channel_affine, \
    per_channel_symmetric, per_channel_affine_float_qparams
from ...ops_math import _t

_EPS = float(np.finfo(np.float32).eps)


class _PartialWrapper:
    """What Observer.with_args returns: a factory of observers with those arguments."""

    def __init__(self, p):
        self.p = p

    def __call__(self, *args, **kwargs):
        return self.p(*args, **kwargs)

    def with_args(self, **kwargs):
        return _PartialWrapper(functools.partial(self.p, **kwargs))

    def __repr__(self):     # (PyTorch's prints its callable_args dict too)
        return repr(self.p) + "{}"


class ObserverBase(nn.Module):
    def __init__(self, dtype=dt.quint8, is_dynamic=False):
        super().__init__()
        self.dtype = dtype
        self.is_dynamic = is_dynamic

    @classmethod
    def with_args(cls, **kwargs):
        return _PartialWrapper(functools.partial(cls, **kwargs))


def _qrange(dtype, quant_min, quant_max, reduce_range):
    if quant_min is not None and quant_max is not None:
        return quant_min, quant_max
    lo, hi = {dt.qint8: (-128, 127), dt.quint8: (0, 255), dt.qint32: (-2 ** 31, 2 ** 31 - 1),
              dt.int8: (-128, 127), dt.uint8: (0, 255)}.get(dtype, (0, 255))
    if reduce_range and dtype in (dt.qint8, dt.quint8):
        lo, hi = lo // 2, hi // 2
    return lo, hi


class UniformQuantizationObserverBase(ObserverBase):
    def __init__(self, dtype=dt.quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=_EPS, is_dynamic=False):
        super().__init__(dtype, is_dynamic)
        self.qscheme = qscheme
        self.reduce_range = reduce_range
        if reduce_range and dtype is dt.quint8 and qscheme in (per_tensor_symmetric,
                                                               per_channel_symmetric):
            raise NotImplementedError("Cannot reduce range for symmetric                       "
                                      "                 quantization for quint8")
        self.quant_min, self.quant_max = _qrange(dtype, quant_min, quant_max, reduce_range)
        self._custom = quant_min is not None and quant_max is not None
        self.eps = eps

    def _calculate_qparams(self, mn, mx):
        """PyTorch's rule, in float32 as its tensors: the range widened to include 0; symmetric
        schemes center it; the zero point rounds half to even."""
        f = np.float32
        qmin, qmax = self.quant_min, self.quant_max
        mn_neg, mx_pos = np.minimum(mn, f(0)), np.maximum(mx, f(0))
        if self.qscheme in (per_tensor_symmetric, per_channel_symmetric):
            mx_pos = np.maximum(-mn_neg, mx_pos)
            scale = np.maximum((mx_pos / f((qmax - qmin) / 2)).astype(f), f(self.eps))
            zp = np.full(scale.shape, 0 if self.dtype not in (dt.quint8, dt.uint8) else
                         (qmax + qmin) // 2 if self._custom else 128, np.int64)
        elif self.qscheme is per_channel_affine_float_qparams:
            scale = ((mx - mn) / f(qmax - qmin)).astype(f)
            scale = np.where(scale > self.eps, scale, f(1))
            return scale, (-mn / scale).astype(f)
        else:
            scale = np.maximum(((mx_pos - mn_neg) / f(qmax - qmin)).astype(f), f(self.eps))
            zp = np.clip(qmin - np.rint(mn_neg / scale).astype(np.int64), qmin, qmax)
            return scale.astype(f), zp.astype(np.int32)     # (PyTorch: int32 here, else int64)
        return scale.astype(f), zp


class MinMaxObserver(UniformQuantizationObserverBase):
    """Running min and max of every tensor it sees (one pair for the whole tensor)."""

    def __init__(self, dtype=dt.quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=_EPS, is_dynamic=False,
                 **kwargs):
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs, eps,
                         is_dynamic)
        from ...creation import tensor
        self.register_buffer("min_val", tensor(float("inf")))
        self.register_buffer("max_val", tensor(float("-inf")))

    def forward(self, x_orig):
        a = np.asarray(values(_t(x_orig).detach()), np.float32)
        if a.size == 0:
            return x_orig
        mn = np.minimum(np.float32(self.min_val.item()), a.min())
        mx = np.maximum(np.float32(self.max_val.item()), a.max())
        self.min_val = wrap(np.array(mn, np.float32), dt.float32)
        self.max_val = wrap(np.array(mx, np.float32), dt.float32)
        return x_orig

    def calculate_qparams(self):
        s, z = self._calculate_qparams(np.float32(self.min_val.item()),
                                       np.float32(self.max_val.item()))
        return (wrap(np.reshape(s, (1,)), dt.float32),
                wrap(np.reshape(z, (1,)), dt.from_numpy(z.dtype)))

    def extra_repr(self):
        return f"min_val={self.min_val.item()}, max_val={self.max_val.item()}"


class PerChannelMinMaxObserver(UniformQuantizationObserverBase):
    """Running min and max per index of dim `ch_axis`."""

    def __init__(self, ch_axis=0, dtype=dt.quint8, qscheme=per_channel_affine,
                 reduce_range=False, quant_min=None, quant_max=None, factory_kwargs=None,
                 eps=_EPS, is_dynamic=False, **kwargs):
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs, eps,
                         is_dynamic)
        self.ch_axis = ch_axis
        self.register_buffer("min_val", wrap(np.zeros(0, np.float32), dt.float32))
        self.register_buffer("max_val", wrap(np.zeros(0, np.float32), dt.float32))

    def forward(self, x_orig):
        a = np.asarray(values(_t(x_orig).detach()), np.float32)
        if a.size == 0:
            return x_orig
        a = np.moveaxis(a, self.ch_axis, 0).reshape(a.shape[self.ch_axis], -1)
        mn, mx = a.min(axis=1), a.max(axis=1)
        if self.min_val.numel():
            mn = np.minimum(np.asarray(values(self.min_val)), mn)
            mx = np.maximum(np.asarray(values(self.max_val)), mx)
        self.min_val = wrap(mn.astype(np.float32), dt.float32)
        self.max_val = wrap(mx.astype(np.float32), dt.float32)
        return x_orig

    def calculate_qparams(self):
        s, z = self._calculate_qparams(np.asarray(values(self.min_val)),
                                       np.asarray(values(self.max_val)))
        return wrap(s, dt.float32), wrap(z, dt.from_numpy(z.dtype))

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"


class PlaceholderObserver(ObserverBase):
    """Records nothing: it carries the dtype (and range) for dynamic activations."""

    def __init__(self, dtype=dt.float32, custom_op_name="", compute_dtype=None,
                 quant_min=None, quant_max=None, qscheme=None, eps=None, is_dynamic=False):
        super().__init__(dtype, is_dynamic)
        self.quant_min, self.quant_max = quant_min, quant_max
        self.qscheme = per_tensor_affine if qscheme is None else qscheme
        self.eps = eps

    def forward(self, x):
        return x

    def calculate_qparams(self):
        raise Exception("calculate_qparams should not be called for PlaceholderObserver")


default_observer = MinMaxObserver.with_args(quant_min=0, quant_max=127)
default_weight_observer = MinMaxObserver.with_args(dtype=dt.qint8, qscheme=per_tensor_symmetric)
default_dynamic_quant_observer = PlaceholderObserver.with_args(
    dtype=dt.quint8, quant_min=0, quant_max=255, is_dynamic=True)
default_per_channel_weight_observer = PerChannelMinMaxObserver.with_args(
    dtype=dt.qint8, qscheme=per_channel_symmetric)
default_float_qparams_observer = PerChannelMinMaxObserver.with_args(
    dtype=dt.quint8, qscheme=per_channel_affine_float_qparams, ch_axis=0)
