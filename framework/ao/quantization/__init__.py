"""torch.ao.quantization (also torch.quantization): dynamic quantization (quantize_dynamic of
Linear, LSTM, GRU), observers and QConfigs. Static quantization (prepare/convert) is not
built."""
from .observer import (ObserverBase, MinMaxObserver, PerChannelMinMaxObserver,  # noqa: F401
                       PlaceholderObserver, default_observer, default_weight_observer,
                       default_dynamic_quant_observer, default_per_channel_weight_observer,
                       default_float_qparams_observer)
from .qconfig import (QConfig, QConfigDynamic, default_qconfig,  # noqa: F401
                      default_dynamic_qconfig,
                      per_channel_dynamic_qconfig, float16_dynamic_qconfig)
from .quantize import quantize_dynamic  # noqa: F401
from .._fake_quant import (fake_quantize_per_tensor_affine,  # noqa: F401
                           fake_quantize_per_channel_affine)
