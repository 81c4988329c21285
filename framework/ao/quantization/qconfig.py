"""QConfig: which observers make a module's activation and weight quantization parameters."""
from collections import namedtuple

from runtime import dtypes as dt
from .observer import (default_dynamic_quant_observer, default_weight_observer,
                       default_per_channel_weight_observer, PlaceholderObserver,
                       default_observer)


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
