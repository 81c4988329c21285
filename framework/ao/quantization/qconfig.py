"""QConfig: which observers make a module's activation and weight quantization parameters."""
import copy
from collections import namedtuple

from runtime import dtypes as dt
from ... import nn
from .observer import (default_dynamic_quant_observer, default_weight_observer,
                       default_per_channel_weight_observer, PlaceholderObserver,
                       default_observer, HistogramObserver, MovingAverageMinMaxObserver,
                       default_float_qparams_observer, default_float_qparams_observer_4bit,
                       default_debug_observer, default_placeholder_observer,
                       default_reuse_input_observer, NoopObserver, MinMaxObserver,
                       weight_observer_range_neg_127_to_127,
                       per_channel_weight_observer_range_neg_127_to_127, _arg_repr,
                       _PartialWrapper)
from . import fake_quantize as _fq


def _qc_repr(self):
    return f"{type(self).__name__}(activation={_arg_repr(self.activation)}, " \
        f"weight={_arg_repr(self.weight)})"


class QConfig(namedtuple("QConfig", ["activation", "weight"])):
    """Which observer classes (or with_args factories) make a module's activation and weight
    observers."""
    __slots__ = ()

    def __new__(cls, activation, weight):
        if isinstance(activation, nn.Module) or isinstance(weight, nn.Module):
            raise ValueError("QConfig received observer instance, please pass observer class "
                             "instead. Use MyObserver.with_args(x=1) to override arguments to "
                             "constructor if needed")
        return super().__new__(cls, activation, weight)

    __repr__ = _qc_repr


class QConfigDynamic(namedtuple("QConfigDynamic", ["activation", "weight"])):
    __slots__ = ()

    def __new__(cls, activation=nn.Identity, weight=nn.Identity):
        if isinstance(weight, nn.Module):
            raise ValueError("QConfigDynamic received observer instance, please pass observer "
                             "class instead. Use MyObserver.with_args(x=1) to override arguments "
                             "to constructor if needed")
        return super().__new__(cls, activation, weight)

    __repr__ = _qc_repr


default_qconfig = QConfig(activation=default_observer, weight=default_weight_observer)
default_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer,
                                  weight=default_weight_observer)
per_channel_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer,
                                      weight=default_per_channel_weight_observer)
float16_dynamic_qconfig = QConfig(
    activation=PlaceholderObserver.with_args(dtype=dt.float16, is_dynamic=True),
    weight=PlaceholderObserver.with_args(dtype=dt.float16))
default_per_channel_qconfig = QConfig(activation=default_observer,
                                      weight=default_per_channel_weight_observer)
default_qat_qconfig = QConfig(activation=_fq.default_fake_quant,
                              weight=_fq.default_weight_fake_quant)
default_debug_qconfig = QConfig(weight=default_weight_observer,
                                activation=default_debug_observer)
float16_static_qconfig = QConfig(activation=PlaceholderObserver.with_args(dtype=dt.float16),
                                 weight=PlaceholderObserver.with_args(dtype=dt.float16))
default_dynamic_qat_qconfig = QConfig(activation=_fq.default_dynamic_fake_quant,
                                      weight=_fq.default_weight_fake_quant)
default_weight_only_qconfig = QConfig(activation=nn.Identity,
                                      weight=_fq.default_weight_fake_quant)
default_activation_only_qconfig = QConfig(activation=_fq.default_fake_quant, weight=nn.Identity)
default_qat_qconfig_v2 = QConfig(activation=_fq.default_fused_act_fake_quant,
                                 weight=_fq.default_fused_wt_fake_quant)
default_reuse_input_qconfig = QConfig(activation=default_reuse_input_observer,
                                      weight=NoopObserver)
# (eps 2**-12 keeps xnnpack's requantization scale above its lower threshold)
default_symmetric_qnnpack_qconfig = QConfig(
    activation=HistogramObserver.with_args(dtype=dt.qint8, reduce_range=False, eps=2 ** -12),
    weight=weight_observer_range_neg_127_to_127)
default_per_channel_symmetric_qnnpack_qconfig = QConfig(
    activation=HistogramObserver.with_args(dtype=dt.qint8, reduce_range=False, eps=2 ** -12),
    weight=per_channel_weight_observer_range_neg_127_to_127)
default_embedding_qat_qconfig = QConfig(activation=NoopObserver.with_args(dtype=dt.float32),
                                        weight=_fq.default_embedding_fake_quant)
default_embedding_qat_qconfig_4bit = QConfig(
    activation=NoopObserver.with_args(dtype=dt.float32),
    weight=_fq.default_embedding_fake_quant_4bit)
default_quint8_weight_qconfig = QConfig(activation=HistogramObserver, weight=MinMaxObserver)
default_symmetric_qnnpack_qat_qconfig = QConfig(
    activation=_fq.FusedMovingAvgObsFakeQuantize.with_args(
        observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=dt.qint8,
        reduce_range=False, eps=2 ** -12),
    weight=_fq.fused_wt_fake_quant_range_neg_127_to_127)
default_per_channel_symmetric_qnnpack_qat_qconfig = QConfig(
    activation=_fq.FusedMovingAvgObsFakeQuantize.with_args(
        observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=dt.qint8,
        reduce_range=False, eps=2 ** -12),
    weight=_fq.fused_per_channel_wt_fake_quant_range_neg_127_to_127)

_BACKENDS = ["fbgemm", "x86", "qnnpack", "onednn"]


def _check_backend(backend):
    if backend not in _BACKENDS:
        raise AssertionError(f"backend: {backend} not supported. backend must be one of "
                             f"{_BACKENDS}")


def get_default_qconfig(backend="x86", version=0):
    """The post-training QConfig PyTorch picks for a backend: a histogram observer (7-bit on
    x86/fbgemm) and per-channel symmetric qint8 weights (per tensor on qnnpack)."""
    _check_backend(backend)
    if version != 0:
        raise AssertionError(f"Version number: {version} in get_default_qconfig is not "
                             "supported. Version number must be 0")
    if backend == "qnnpack":
        return QConfig(activation=HistogramObserver.with_args(reduce_range=False),
                       weight=default_weight_observer)
    return QConfig(activation=HistogramObserver.with_args(reduce_range=backend != "onednn"),
                   weight=default_per_channel_weight_observer)


def get_default_qat_qconfig(backend="x86", version=1):
    """The QAT QConfig PyTorch picks for a backend (version 1: fused moving-average fake
    quantization; version 0: FakeQuantize)."""
    _check_backend(backend)
    rr = {} if backend == "onednn" else {"reduce_range": backend != "qnnpack"}
    if version == 0:
        w = _fq.default_weight_fake_quant if backend == "qnnpack" else \
            _fq.default_per_channel_weight_fake_quant
        return QConfig(activation=_fq.FakeQuantize.with_args(
            observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, **rr),
            weight=w)
    if version == 1:
        w = _fq.default_fused_wt_fake_quant if backend == "qnnpack" else \
            _fq.default_fused_per_channel_wt_fake_quant
        return QConfig(activation=_fq.FusedMovingAvgObsFakeQuantize.with_args(
            observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, **rr),
            weight=w)
    raise AssertionError(f"Version number: {version}in get_default_qat_qconfig is not "
                         "supported. Version number must be 0 or 1")
float_qparams_weight_only_qconfig = QConfig(activation=default_placeholder_observer,
                                            weight=default_float_qparams_observer)
float_qparams_weight_only_qconfig_4bit = QConfig(activation=default_placeholder_observer,
                                                 weight=default_float_qparams_observer_4bit)


def _obs_or_fq_ctr_equals(a, b):
    if isinstance(a, _PartialWrapper) and isinstance(b, _PartialWrapper):
        ka, kb = copy.copy(a.p.keywords), copy.copy(b.p.keywords)
        same = True
        if "observer" in ka and "observer" in kb:    # (nested factories compare the same way)
            same = _obs_or_fq_ctr_equals(ka.pop("observer"), kb.pop("observer"))
        return a.p.func == b.p.func and a.p.args == b.p.args and same and ka == kb
    return a == b


def qconfig_equals(q1, q2):
    """Whether two QConfigs make the same observers (with_args factories compared by their
    class and arguments, as functools.partial has no ==)."""
    if q1 is None or q2 is None:
        return q1 == q2
    try:
        return _obs_or_fq_ctr_equals(q1.activation, q2.activation) and \
            _obs_or_fq_ctr_equals(q1.weight, q2.weight)
    except AttributeError:
        return q1 == q2
