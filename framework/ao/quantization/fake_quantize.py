"""torch.ao.quantization FakeQuantize modules: an observer plus fake quantization in the
forward pass (quantization-aware training)."""
import functools

import numpy as np

from runtime import dtypes as dt
from ... import nn
from ..._dispatch import wrap, values
from .. import _qtensor as Q
from .._fake_quant import fake_quantize_per_tensor_affine, fake_quantize_per_channel_affine
from .observer import (MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver,
                       _PartialWrapper, FixedQParamsObserver, HistogramObserver,
                       default_fixed_qparams_range_0to1_observer,
                       default_fixed_qparams_range_neg1to1_observer)

_RANGE = {dt.qint8: (-128, 127), dt.quint8: (0, 255), dt.qint32: (-2 ** 31, 2 ** 31 - 1)}


def _is_per_channel(qs):
    return qs in (Q.per_channel_affine, Q.per_channel_symmetric, Q.per_channel_affine_float_qparams)


class FakeQuantizeBase(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("fake_quant_enabled", wrap(np.array([1], np.uint8), dt.uint8))
        self.register_buffer("observer_enabled", wrap(np.array([1], np.uint8), dt.uint8))

    @classmethod
    def with_args(cls, **kwargs):
        return _PartialWrapper(functools.partial(cls, **kwargs))

    def enable_fake_quant(self, enabled=True):
        self.fake_quant_enabled[0] = 1 if enabled else 0
        return self

    def disable_fake_quant(self):
        return self.enable_fake_quant(False)

    def enable_observer(self, enabled=True):
        self.observer_enabled[0] = 1 if enabled else 0
        return self

    def disable_observer(self):
        return self.enable_observer(False)


class FakeQuantize(FakeQuantizeBase):
    """Observes X (while observer_enabled), takes the observer's scale and zero point, and
    returns X fake-quantized with them (while fake_quant_enabled)."""

    def __init__(self, observer=MovingAverageMinMaxObserver, quant_min=None, quant_max=None,
                 is_dynamic=False, **observer_kwargs):
        super().__init__()
        if quant_min is not None and quant_max is not None:
            if quant_min > quant_max:
                raise AssertionError("quant_min must be less than or equal to quant_max")
            dtype = observer_kwargs.get("dtype", dt.quint8)
            p = getattr(observer, "p", None)
            if p is not None:
                dtype = p.keywords.get("dtype", dtype)
            lo, hi = _RANGE.get(dtype, (0, 255))
            if lo > quant_min:
                raise AssertionError("quant_min out of bound")
            if quant_max > hi:
                raise AssertionError("quant_max out of bound")
            observer_kwargs.update({"quant_min": quant_min, "quant_max": quant_max})
        observer_kwargs["is_dynamic"] = is_dynamic
        self.activation_post_process = observer(**observer_kwargs)
        app = self.activation_post_process
        self.quant_min, self.quant_max = app.quant_min, app.quant_max
        self.is_dynamic = app.is_dynamic
        zd = dt.float32 if app.qscheme is Q.per_channel_affine_float_qparams else dt.int32
        self.register_buffer("scale", wrap(np.array([1.0], np.float32), dt.float32))
        self.register_buffer("zero_point", wrap(np.array([0], zd.np), zd))
        self.dtype = app.dtype
        self.qscheme = app.qscheme
        self.ch_axis = getattr(app, "ch_axis", -1)
        self.is_per_channel = _is_per_channel(self.qscheme)

    def calculate_qparams(self):
        return self.activation_post_process.calculate_qparams()

    def _set_qparams(self, s, z):
        self.scale = wrap(np.asarray(values(s), np.float32).reshape(-1).copy(), dt.float32)
        zd = self.zero_point._dtype
        self.zero_point = wrap(np.asarray(values(z)).reshape(-1).astype(zd.np), zd)

    def forward(self, X):
        if int(self.observer_enabled[0].item()) == 1:
            self.activation_post_process(X.detach())
            self._set_qparams(*self.calculate_qparams())
        if int(self.fake_quant_enabled[0].item()) == 1:
            X = self._fake_quant(X, self.scale, self.zero_point)
        return X

    def _fake_quant(self, X, scale, zp):
        app = self.activation_post_process
        if self.is_per_channel:
            return fake_quantize_per_channel_affine(X, scale, zp, self.ch_axis, app.quant_min,
                                                    app.quant_max)
        return fake_quantize_per_tensor_affine(X, scale, zp, app.quant_min, app.quant_max)

    def extra_repr(self):
        app = self.activation_post_process
        return (f"fake_quant_enabled={self.fake_quant_enabled}, "
                f"observer_enabled={self.observer_enabled}, quant_min={app.quant_min}, "
                f"quant_max={app.quant_max}, dtype={self.dtype}, qscheme={self.qscheme}, "
                f"ch_axis={self.ch_axis}, scale={self.scale}, zero_point={self.zero_point}")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # per-channel qparams outgrow the initial [1] buffers: take the checkpoint's shape
        for name in ("scale", "zero_point"):
            v = state_dict.get(prefix + name)
            cur = getattr(self, name)
            if v is not None and tuple(v.shape) != tuple(cur.shape):
                setattr(self, name, wrap(np.zeros(tuple(v.shape), cur._dtype.np), cur._dtype))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


class FixedQParamsFakeQuantize(FakeQuantize):
    """Fake quantization with the fixed scale and zero point of a FixedQParamsObserver."""

    def __init__(self, observer):
        super().__init__(observer=observer)
        if type(self.activation_post_process) is not FixedQParamsObserver:
            raise AssertionError(f"{self.__class__.__name__}'s observer must be a "
                                 f"{FixedQParamsObserver.__name__}")
        self._observer_ctr = observer
        self.scale = self.activation_post_process.scale
        self.zero_point = self.activation_post_process.zero_point
        if self.qscheme not in (Q.per_tensor_affine, Q.per_tensor_symmetric):
            raise AssertionError("Only per tensor quantization is supported "
                                 f"FixedQParamsFakeQuantize module, got qscheme:{self.qscheme}")

    def calculate_qparams(self):
        return self.scale, self.zero_point

    def extra_repr(self):
        app = self.activation_post_process
        return (f"fake_quant_enabled={self.fake_quant_enabled}, "
                f"observer_enabled={self.observer_enabled}, scale={self.scale}, "
                f"zero_point={self.zero_point}, dtype={self.dtype}, quant_min={app.quant_min}, "
                f"quant_max={app.quant_max}, qscheme={self.qscheme}")


class FusedMovingAvgObsFakeQuantize(FakeQuantize):
    """FakeQuantize over a moving-average observer as PyTorch's fused kernel runs it: the scale
    and zero point used in training come from ChooseQuantizationParams (symmetric schemes
    preserve sparsity), not from the observer's calculate_qparams."""

    def __init__(self, observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                 **observer_kwargs):
        super().__init__(observer, quant_min, quant_max, **observer_kwargs)
        if not isinstance(self.activation_post_process, (MovingAverageMinMaxObserver,
                                                         MovingAveragePerChannelMinMaxObserver)):
            raise AssertionError("Fused observer+fake_quant module only works with "
                                 "MovingAverageMinMaxObserver")
        self.register_buffer("fake_quant_enabled", wrap(np.array([1], np.int64), dt.int64))
        self.register_buffer("observer_enabled", wrap(np.array([1], np.int64), dt.int64))
        self.is_symmetric_quant = self.activation_post_process.qscheme in (
            Q.per_tensor_symmetric, Q.per_channel_symmetric)

    def calculate_qparams(self):
        return self.activation_post_process.calculate_qparams()

    def forward(self, X):
        app = self.activation_post_process
        if int(self.observer_enabled[0].item()) == 1:
            app(X.detach())
            mn = np.atleast_1d(np.asarray(values(app.min_val), np.float32))
            mx = np.atleast_1d(np.asarray(values(app.max_val), np.float32))
            qp = [Q.choose_qparams(a, b, app.quant_min, app.quant_max,
                                   preserve_sparsity=self.is_symmetric_quant)
                  for a, b in zip(mn, mx)]
            self.scale = wrap(np.array([s for s, _ in qp], np.float32), dt.float32)
            self.zero_point = wrap(np.array([z for _, z in qp], np.int32), dt.int32)
        if int(self.fake_quant_enabled[0].item()) == 1:
            X = self._fake_quant(X, self.scale, self.zero_point)
        return X

    def extra_repr(self):
        app = self.activation_post_process
        return (f"fake_quant_enabled={self.fake_quant_enabled}, "
                f"observer_enabled={self.observer_enabled}, scale={self.scale}, "
                f"zero_point={self.zero_point}, dtype={self.dtype}, quant_min={app.quant_min}, "
                f"quant_max={app.quant_max}, qscheme={self.qscheme}, "
                f"reduce_range={app.reduce_range}")


def disable_fake_quant(mod):
    if isinstance(mod, FakeQuantizeBase):
        mod.disable_fake_quant()


def enable_fake_quant(mod):
    if isinstance(mod, FakeQuantizeBase):
        mod.enable_fake_quant()


def disable_observer(mod):
    if isinstance(mod, FakeQuantizeBase):
        mod.disable_observer()


def enable_observer(mod):
    if isinstance(mod, FakeQuantizeBase):
        mod.enable_observer()


default_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=dt.quint8,
    qscheme=Q.per_tensor_affine, reduce_range=True)
default_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=dt.qint8,
    qscheme=Q.per_tensor_symmetric, reduce_range=False)
default_per_channel_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
    dtype=dt.qint8, qscheme=Q.per_channel_symmetric, reduce_range=False, ch_axis=0)
default_fused_act_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=dt.quint8)
default_fused_wt_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=dt.qint8,
    qscheme=Q.per_tensor_symmetric)
default_fused_per_channel_wt_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
    dtype=dt.qint8, qscheme=Q.per_channel_symmetric)
default_dynamic_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, is_dynamic=True,
    dtype=dt.quint8, averaging_constant=1)
default_fixed_qparams_range_neg1to1_fake_quant = FixedQParamsFakeQuantize.with_args(
    observer=default_fixed_qparams_range_neg1to1_observer)
default_fixed_qparams_range_0to1_fake_quant = FixedQParamsFakeQuantize.with_args(
    observer=default_fixed_qparams_range_0to1_observer)
default_symmetric_fixed_qparams_fake_quant = default_fixed_qparams_range_neg1to1_fake_quant
default_affine_fixed_qparams_fake_quant = default_fixed_qparams_range_0to1_fake_quant
default_embedding_fake_quant = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, qscheme=Q.per_channel_affine_float_qparams,
    dtype=dt.quint8, quant_min=0, quant_max=255, ch_axis=0, averaging_constant=1)
default_embedding_fake_quant_4bit = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, qscheme=Q.per_channel_affine_float_qparams,
    ch_axis=0, dtype=dt.quint4x2, averaging_constant=1)
default_histogram_fake_quant = FakeQuantize.with_args(
    observer=HistogramObserver, quant_min=0, quant_max=255, dtype=dt.quint8,
    qscheme=Q.per_tensor_affine, reduce_range=True)
fused_wt_fake_quant_range_neg_127_to_127 = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-127, quant_max=127, dtype=dt.qint8,
    qscheme=Q.per_tensor_symmetric, eps=2 ** -12)
fused_per_channel_wt_fake_quant_range_neg_127_to_127 = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-127, quant_max=127,
    dtype=dt.qint8, qscheme=Q.per_channel_symmetric, eps=2 ** -12)
