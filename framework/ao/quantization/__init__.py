"""torch.ao.quantization (also torch.quantization): eager-mode static quantization (prepare /
convert / quantize, QAT with prepare_qat and FakeQuantize, fuse_modules), dynamic quantization
(quantize_dynamic of Linear, LSTM, GRU), observers, QConfigs and QConfigMapping."""
from .observer import (ObserverBase, UniformQuantizationObserverBase,  # noqa: F401
                       MinMaxObserver, PerChannelMinMaxObserver,
                       PlaceholderObserver, MovingAverageMinMaxObserver,
                       MovingAveragePerChannelMinMaxObserver, HistogramObserver,
                       FixedQParamsObserver, RecordingObserver, NoopObserver, ReuseInputObserver,
                       default_observer, default_weight_observer,
                       default_dynamic_quant_observer, default_per_channel_weight_observer,
                       default_float_qparams_observer, default_float_qparams_observer_4bit,
                       default_histogram_observer, default_placeholder_observer,
                       default_debug_observer, default_reuse_input_observer,
                       weight_observer_range_neg_127_to_127,
                       per_channel_weight_observer_range_neg_127_to_127,
                       default_fixed_qparams_range_0to1_observer,
                       default_fixed_qparams_range_neg1to1_observer,
                       default_symmetric_fixed_qparams_observer,
                       default_affine_fixed_qparams_observer,
                       get_observer_state_dict, load_observer_state_dict)
from .fake_quantize import (FakeQuantizeBase, FakeQuantize,  # noqa: F401
                            FusedMovingAvgObsFakeQuantize, FixedQParamsFakeQuantize,
                            default_fake_quant, default_weight_fake_quant,
                            default_per_channel_weight_fake_quant, default_dynamic_fake_quant,
                            default_fused_act_fake_quant, default_fused_wt_fake_quant,
                            default_fused_per_channel_wt_fake_quant,
                            default_fixed_qparams_range_0to1_fake_quant,
                            default_fixed_qparams_range_neg1to1_fake_quant,
                            default_symmetric_fixed_qparams_fake_quant,
                            default_affine_fixed_qparams_fake_quant,
                            default_embedding_fake_quant, default_embedding_fake_quant_4bit,
                            default_histogram_fake_quant,
                            fused_wt_fake_quant_range_neg_127_to_127,
                            fused_per_channel_wt_fake_quant_range_neg_127_to_127,
                            disable_fake_quant, enable_fake_quant, disable_observer,
                            enable_observer)
from .qconfig import (QConfig, QConfigDynamic, default_qconfig,  # noqa: F401
                      default_dynamic_qconfig, default_per_channel_qconfig,
                      default_qat_qconfig, get_default_qconfig,
                      float_qparams_weight_only_qconfig, float_qparams_weight_only_qconfig_4bit,
                      get_default_qat_qconfig, per_channel_dynamic_qconfig,
                      float16_dynamic_qconfig, float16_static_qconfig, default_debug_qconfig,
                      default_dynamic_qat_qconfig, default_weight_only_qconfig,
                      default_activation_only_qconfig, default_qat_qconfig_v2,
                      default_reuse_input_qconfig, default_symmetric_qnnpack_qconfig,
                      default_per_channel_symmetric_qnnpack_qconfig,
                      default_embedding_qat_qconfig, default_embedding_qat_qconfig_4bit,
                      default_quint8_weight_qconfig, default_symmetric_qnnpack_qat_qconfig,
                      default_per_channel_symmetric_qnnpack_qat_qconfig, qconfig_equals)
from .qconfig_mapping import (QConfigMapping, get_default_qconfig_mapping,  # noqa: F401
                              get_default_qat_qconfig_mapping, get_default_qconfig_dict,
                              get_default_qat_qconfig_dict)
from .quant_type import QuantType  # noqa: F401
from .stubs import QuantStub, DeQuantStub, QuantWrapper  # noqa: F401
from .fuser_method_mappings import (fuse_conv_bn, fuse_conv_bn_relu,  # noqa: F401
                                    fuse_linear_bn, fuse_convtranspose_bn, get_fuser_method)
from .fuse_modules import fuse_modules, fuse_modules_qat, fuse_known_modules  # noqa: F401
from .quantization_mappings import (  # noqa: F401
    DEFAULT_STATIC_QUANT_MODULE_MAPPINGS, DEFAULT_QAT_MODULE_MAPPINGS,
    DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS, DEFAULT_MODULE_TO_ACT_POST_PROCESS, no_observer_set,
    get_default_static_quant_module_mappings, get_default_qat_module_mappings,
    get_default_dynamic_quant_module_mappings, get_static_quant_module_class,
    get_dynamic_quant_module_class, get_default_qconfig_propagation_list,
    get_default_compare_output_module_list)
from .quantize import (quantize_dynamic, prepare, prepare_qat, convert,  # noqa: F401
                       quantize, quantize_qat, propagate_qconfig_, swap_module,
                       add_quant_dequant)
from .._fake_quant import (fake_quantize_per_tensor_affine,  # noqa: F401
                           fake_quantize_per_channel_affine)
from . import (observer, fake_quantize, qconfig, qconfig_mapping, quant_type,  # noqa: F401
               quantization_mappings, fuser_method_mappings, stubs)


def default_eval_fn(model, calib_data):
    """Calibration: run model on the data of each (data, target) in calib_data."""
    for data, _target in calib_data:
        model(data)
