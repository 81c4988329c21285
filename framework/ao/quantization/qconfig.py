"""QConfig: which observers make a module's activation and weight quantization parameters."""
from collections import namedtuple

from runtime import dtypes as dt
from .observer import (default_dynamic_quant_observer, default_weight_observer,
                       default_per_channel_weight_observer, PlaceholderObserver,
                       default_observer, HistogramObserver, MovingAverageMinMaxObserver,
                       default_float_qparams_observer)
from . import fake_quantize as _fq


class QConfig(namedtuple("QConfig", ["activation", "weight"])):
    __slots__ = ()


class QConfigDynamic(namedtuple("QConfigDynamic", ["activation", "weight"])):
    __slots__ = ()


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
float_qparams_weight_only_qconfig = QConfig(activation=PlaceholderObserver,
                                            weight=default_float_qparams_observer)
