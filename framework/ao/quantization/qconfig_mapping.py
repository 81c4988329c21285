"""QConfigMapping: which QConfig applies to each op (global, by object type, by module name
regex, by module name, by module name + object type + call index), and PyTorch's default
mappings for post-training quantization and QAT."""
from collections import OrderedDict

from ... import nn
from ...nn import functional as F
from ... import ops_math as _om
from .fake_quantize import default_weight_fake_quant, FixedQParamsFakeQuantize
from .observer import (default_fixed_qparams_range_0to1_observer,
                       default_fixed_qparams_range_neg1to1_observer,
                       default_placeholder_observer, default_weight_observer)
from .qconfig import (default_quint8_weight_qconfig, default_reuse_input_qconfig,
                      default_symmetric_qnnpack_qat_qconfig, default_symmetric_qnnpack_qconfig,
                      get_default_qat_qconfig, get_default_qconfig, QConfig)

_GLOBAL_DICT_KEY = ""
_OBJECT_TYPE_DICT_KEY = "object_type"
_MODULE_NAME_REGEX_DICT_KEY = "module_name_regex"
_MODULE_NAME_DICT_KEY = "module_name"
_MODULE_NAME_OBJECT_TYPE_ORDER_DICT_KEY = "module_name_object_type_order"

_FIXED_QPARAMS_OP_TO_OBSERVER = {
    nn.Hardsigmoid: default_fixed_qparams_range_0to1_observer,
    F.hardsigmoid: default_fixed_qparams_range_0to1_observer,
    "hardsigmoid": default_fixed_qparams_range_0to1_observer,
    "hardsigmoid_": default_fixed_qparams_range_0to1_observer,
    nn.Sigmoid: default_fixed_qparams_range_0to1_observer,
    _om.sigmoid: default_fixed_qparams_range_0to1_observer,
    "sigmoid": default_fixed_qparams_range_0to1_observer,
    "sigmoid_": default_fixed_qparams_range_0to1_observer,
    nn.Softmax: default_fixed_qparams_range_0to1_observer,
    nn.Tanh: default_fixed_qparams_range_neg1to1_observer,
    _om.tanh: default_fixed_qparams_range_neg1to1_observer,
    "tanh": default_fixed_qparams_range_neg1to1_observer,
    "tanh_": default_fixed_qparams_range_neg1to1_observer,
}


def _get_default_qconfig_mapping(is_qat, backend, version):
    qconfig = get_default_qat_qconfig(backend, version) if is_qat else \
        get_default_qconfig(backend, version)
    default_weight = default_weight_fake_quant if is_qat else default_weight_observer
    # (per-channel weights are not supported for ConvTranspose on fbgemm / x86)
    qconfig_transpose = QConfig(activation=qconfig.activation, weight=default_weight) \
        if backend in ("fbgemm", "x86") else qconfig
    # layer norm has float weights only
    qconfig_layernorm = QConfig(activation=qconfig.activation, weight=default_placeholder_observer)
    m = (QConfigMapping().set_global(qconfig)
         .set_object_type("reshape", default_reuse_input_qconfig)
         .set_object_type(nn.ConvTranspose1d, qconfig_transpose)
         .set_object_type(nn.ConvTranspose2d, qconfig_transpose)
         .set_object_type(nn.ConvTranspose3d, qconfig_transpose)
         .set_object_type(F.conv_transpose1d, qconfig_transpose)
         .set_object_type(F.conv_transpose2d, qconfig_transpose)
         .set_object_type(F.conv_transpose3d, qconfig_transpose)
         .set_object_type(F.layer_norm, qconfig_layernorm)
         .set_object_type(nn.LayerNorm, qconfig_layernorm)
         .set_object_type(nn.PReLU, default_quint8_weight_qconfig))
    by_observer = {}
    for op, observer in _FIXED_QPARAMS_OP_TO_OBSERVER.items():
        if observer not in by_observer:
            act = FixedQParamsFakeQuantize.with_args(observer=observer) if is_qat else observer
            by_observer[observer] = QConfig(activation=act, weight=default_weight)
        m.set_object_type(op, by_observer[observer])
    return m


def get_default_qconfig_mapping(backend="x86", version=0):
    """The default QConfigMapping for post-training quantization on `backend`."""
    return _get_default_qconfig_mapping(False, backend, version)


def get_default_qat_qconfig_mapping(backend="x86", version=1):
    """The default QConfigMapping for quantization-aware training on `backend`."""
    return _get_default_qconfig_mapping(True, backend, version)


def _get_default_qconfig_mapping_with_default_qconfig(is_qat, backend, default_qconfig):
    m = get_default_qat_qconfig_mapping(backend) if is_qat else \
        get_default_qconfig_mapping(backend)
    m.set_global(default_qconfig)
    for pattern in m.object_type_qconfigs:
        if pattern not in _FIXED_QPARAMS_OP_TO_OBSERVER:
            m.set_object_type(pattern, default_qconfig)
    return m


def _get_symmetric_qnnpack_qconfig_mapping():
    return _get_default_qconfig_mapping_with_default_qconfig(
        False, "qnnpack", default_symmetric_qnnpack_qconfig)


def _get_symmetric_qnnpack_qat_qconfig_mapping():
    return _get_default_qconfig_mapping_with_default_qconfig(
        True, "qnnpack", default_symmetric_qnnpack_qat_qconfig)


_QCONFIG_STYLE_ORDER = ["global_qconfig", "object_type_qconfigs", "module_name_regex_qconfigs",
                        "module_name_qconfigs", "module_name_object_type_order_qconfigs"]


def _key_repr(k):
    from .observer import _arg_repr
    if isinstance(k, tuple):
        return "(" + ", ".join(_key_repr(x) if isinstance(x, type) else repr(x)
                               for x in k) + ")"
    return _arg_repr(k) if isinstance(k, type) else str(k)


class QConfigMapping:
    """Mapping from model ops to QConfigs, set by (in increasing match priority) set_global,
    set_object_type, set_module_name_regex, set_module_name,
    set_module_name_object_type_order; each setter returns the mapping."""

    def __init__(self):
        self.global_qconfig = None
        self.object_type_qconfigs = OrderedDict()
        self.module_name_regex_qconfigs = OrderedDict()
        self.module_name_qconfigs = OrderedDict()
        self.module_name_object_type_order_qconfigs = OrderedDict()

    def set_global(self, global_qconfig):
        self.global_qconfig = global_qconfig
        return self

    def set_object_type(self, object_type, qconfig):
        self.object_type_qconfigs[object_type] = qconfig
        return self

    def set_module_name_regex(self, module_name_regex, qconfig):
        """Regexes match in the order first registered (a re-set keeps its place)."""
        self.module_name_regex_qconfigs[module_name_regex] = qconfig
        return self

    def set_module_name(self, module_name, qconfig):
        self.module_name_qconfigs[module_name] = qconfig
        return self

    def set_module_name_object_type_order(self, module_name, object_type, index, qconfig):
        self.module_name_object_type_order_qconfigs[(module_name, object_type, index)] = qconfig
        return self

    def __repr__(self):
        out = self.__class__.__name__ + " ("
        for style in _QCONFIG_STYLE_ORDER:
            out += f"\n {style}"
            qconfigs = getattr(self, style)
            if isinstance(qconfigs, OrderedDict) and len(qconfigs) > 0:
                for key, qconfig in qconfigs.items():
                    out += f"\n  {_key_repr(key)}: {qconfig}"
            else:
                out += f"\n  {qconfigs}"
        return out + "\n)"

    def to_dict(self):
        """{"": global, "object_type": [(type, qconfig)], "module_name_regex": [...],
        "module_name": [...], "module_name_object_type_order": [(name, type, index, qconfig)]}."""
        return {
            _GLOBAL_DICT_KEY: self.global_qconfig,
            _OBJECT_TYPE_DICT_KEY: list(self.object_type_qconfigs.items()),
            _MODULE_NAME_REGEX_DICT_KEY: list(self.module_name_regex_qconfigs.items()),
            _MODULE_NAME_DICT_KEY: list(self.module_name_qconfigs.items()),
            _MODULE_NAME_OBJECT_TYPE_ORDER_DICT_KEY: [
                (*k, v) for k, v in self.module_name_object_type_order_qconfigs.items()],
        }

    @classmethod
    def from_dict(cls, qconfig_dict):
        conf = cls()
        if _GLOBAL_DICT_KEY in qconfig_dict:
            conf.set_global(qconfig_dict[_GLOBAL_DICT_KEY])
        for object_type, qconfig in qconfig_dict.get(_OBJECT_TYPE_DICT_KEY, []):
            conf.set_object_type(object_type, qconfig)
        for regex, qconfig in qconfig_dict.get(_MODULE_NAME_REGEX_DICT_KEY, []):
            conf.set_module_name_regex(regex, qconfig)
        for name, qconfig in qconfig_dict.get(_MODULE_NAME_DICT_KEY, []):
            conf.set_module_name(name, qconfig)
        for name, object_type, index, qconfig in qconfig_dict.get(
                _MODULE_NAME_OBJECT_TYPE_ORDER_DICT_KEY, []):
            conf.set_module_name_object_type_order(name, object_type, index, qconfig)
        return conf


def _deprecated_dict(fn, name, backend, version):
    import warnings
    warnings.warn(f"`torch.ao.quantization.{name}` is deprecated and will be removed in a future "
                  f"version. Please use `torch.ao.quantization.{name[:-5]}_mapping` instead.",
                  FutureWarning, stacklevel=3)
    return fn(backend, version).to_dict()


def get_default_qconfig_dict(backend="x86", version=0):
    return _deprecated_dict(get_default_qconfig_mapping, "get_default_qconfig_dict", backend,
                            version)


def get_default_qat_qconfig_dict(backend="x86", version=1):
    return _deprecated_dict(get_default_qat_qconfig_mapping, "get_default_qat_qconfig_dict",
                            backend, version)
