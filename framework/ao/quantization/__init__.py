"""torch.ao.quantization (also torch.quantization): eager-mode static quantization (prepare /
convert / quantize, QAT with prepare_qat and FakeQuantize, fuse_modules), dynamic quantization
(quantize_dynamic of Linear, LSTM, GRU), observers and QConfigs."""
from .observer import (ObserverBase, MinMaxObserver, PerChannelMinMaxObserver,  # noqa: F401
                       PlaceholderObserver, MovingAverageMinMaxObserver,
                       MovingAveragePerChannelMinMaxObserver, HistogramObserver,
                       default_observer, default_weight_observer,
                       default_dynamic_quant_observer, default_per_channel_weight_observer,
                       default_float_qparams_observer, default_histogram_observer)
from .fake_quantize import (FakeQuantizeBase, FakeQuantize,  # noqa: F401
                            FusedMovingAvgObsFakeQuantize, default_fake_quant,
                            default_weight_fake_quant, default_per_channel_weight_fake_quant,
                            default_fused_act_fake_quant, default_fused_wt_fake_quant,
                            default_fused_per_channel_wt_fake_quant, disable_fake_quant,
                            enable_fake_quant, disable_observer, enable_observer)
from .qconfig import (QConfig, QConfigDynamic, default_qconfig,  # noqa: F401
                      default_dynamic_qconfig, default_per_channel_qconfig,
                      default_qat_qconfig, get_default_qconfig,
                      float_qparams_weight_only_qconfig, get_default_qat_qconfig,
                      per_channel_dynamic_qconfig, float16_dynamic_qconfig)
from .stubs import QuantStub, DeQuantStub, QuantWrapper  # noqa: F401
from .fuse_modules import fuse_modules, fuse_modules_qat, fuse_known_modules  # noqa: F401
from .quantize import (quantize_dynamic, prepare, prepare_qat, convert,  # noqa: F401
                       quantize, quantize_qat, propagate_qconfig_, swap_module,
                       get_default_static_quant_module_mappings,
                       get_default_qat_module_mappings, get_default_qconfig_propagation_list)
from .._fake_quant import (fake_quantize_per_tensor_affine,  # noqa: F401
                           fake_quantize_per_channel_affine)
