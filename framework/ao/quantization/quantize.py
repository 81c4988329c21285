"""quantize_dynamic: replace float modules by their dynamically quantized versions."""
import copy
import warnings

from runtime import dtypes as dt
from ... import nn
from .qconfig import default_dynamic_qconfig, float16_dynamic_qconfig


def _dynamic_mapping():
    from .quantization_mappings import get_default_dynamic_quant_module_mappings
    return get_default_dynamic_quant_module_mappings()


def _spec(qconfig_spec, dtype):
    if dtype is dt.qint8:
        default = default_dynamic_qconfig
    elif dtype is dt.float16:
        default = float16_dynamic_qconfig
    else:
        raise ValueError(f"Don't know how to quantize with default settings for {dtype}. Provide "
                         "full qconfig please")
    if qconfig_spec is None:
        # (PyTorch also lists the RNN cells: not built here, they stay float)
        return {nn.Linear: default, nn.LSTM: default, nn.GRU: default}
    if isinstance(qconfig_spec, dict):
        return qconfig_spec
    return {k: default for k in qconfig_spec}


def _propagate(module, spec, parent_qconfig=None, prefix=""):
    qc = spec.get(type(module), parent_qconfig)
    qc = spec.get(prefix, qc)
    module.qconfig = qc
    for name, child in module.named_children():
        _propagate(child, spec, qc, prefix + ("." if prefix else "") + name)


def _swap(module, mapping):
    for name, child in list(module.named_children()):
        if type(child) in mapping and getattr(child, "qconfig", None) is not None:
            setattr(module, name, mapping[type(child)].from_float(child))
        else:
            _swap(child, mapping)
    return module


def _strip(module):
    if "qconfig" in module.__dict__:
        del module.qconfig
    for child in module.children():
        _strip(child)


def quantize_dynamic(model, qconfig_spec=None, dtype=dt.qint8, mapping=None, inplace=False):
    """Copy of `model` (or `model` itself with inplace=True) whose modules chosen by
    qconfig_spec (a set of types or names, or a dict to QConfig) are dynamic quantized."""
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    spec = _spec(qconfig_spec, dtype)
    _propagate(model, spec)
    _swap(model, mapping or _dynamic_mapping())     # (children only: as PyTorch, a bare
    #                                                  nn.Linear passed in stays float)
    _strip(model)
    return model


# ---- static quantization (eager mode): prepare / convert, QAT -----------------------------------

def _static_mapping():
    from .quantization_mappings import get_default_static_quant_module_mappings
    return get_default_static_quant_module_mappings()


def _qat_mapping():
    from .quantization_mappings import get_default_qat_module_mappings
    return get_default_qat_module_mappings()


def get_default_qconfig_propagation_list():
    from .quantization_mappings import get_default_qconfig_propagation_list as f
    return f()


def _is_fused(m):
    from ..nn.intrinsic import _FusedModule
    return isinstance(m, _FusedModule) or getattr(type(m), "_IS_FUSED", False)


def propagate_qconfig_(module, qconfig_dict=None, prepare_custom_config_dict=None):
    """Give every submodule a `qconfig`: its own, else one qconfig_dict names by type or by
    qualified name, else its parent's."""
    _propagate_helper(module, qconfig_dict or {}, None, "")


def _propagate_helper(module, qd, parent, prefix):
    qc = qd.get(type(module), parent)
    qc = qd.get(prefix, qc)
    qc = getattr(module, "qconfig", qc)
    _assert_valid_qconfig(qc, module)
    module.qconfig = qc
    for name, child in module.named_children():
        _propagate_helper(child, qd, module.qconfig, prefix + "." + name if prefix else name)


def _assert_valid_qconfig(qconfig, mod):
    """PyTorch's check: quantized ConvTranspose takes per-tensor weights only."""
    from .observer import PerChannelMinMaxObserver
    if qconfig is None or getattr(qconfig, "weight", None) is None or not isinstance(
            mod, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        return
    if isinstance(qconfig.weight(), PerChannelMinMaxObserver):   # (and its moving average)
        raise AssertionError("Per channel weight observer is not supported yet for "
                             "ConvTranspose{n}d.")


def add_quant_dequant(module):
    """Wrap each leaf submodule that has a qconfig in a QuantWrapper (in place); a leaf
    module passed in itself comes back wrapped."""
    from .stubs import QuantWrapper
    if not module._modules and getattr(module, "qconfig", None):
        return QuantWrapper(module)
    for name, child in module.named_children():
        module._modules[name] = add_quant_dequant(child)
    return module


def _observer_forward_hook(self, input, output):
    return self.activation_post_process(output)


def _insert_obs(m, special=None):
    """special: the fixed-range fake quant of a training Sigmoid / Tanh / ... (instead of the
    qconfig's activation observer)."""
    from .stubs import DeQuantStub
    if getattr(m, "qconfig", None) is not None and not isinstance(m, DeQuantStub):
        m.add_module("activation_post_process", (special or m.qconfig.activation)())
        m.register_forward_hook(_observer_forward_hook)


def _add_observer_(module, propagation_list, non_leaf):
    from ..nn.quantized import FloatFunctional, QFunctional
    from .quantization_mappings import DEFAULT_MODULE_TO_ACT_POST_PROCESS
    for _, child in module.named_children():
        if type(child) is nn.Dropout:
            continue
        if isinstance(child, (FloatFunctional, QFunctional)):
            if getattr(child, "qconfig", None) is not None:
                child.activation_post_process = child.qconfig.activation()
        elif _is_fused(child) or (non_leaf and type(child) in non_leaf):
            _insert_obs(child)
        elif child.training and type(child) in DEFAULT_MODULE_TO_ACT_POST_PROCESS:
            _insert_obs(child, DEFAULT_MODULE_TO_ACT_POST_PROCESS[type(child)])
        else:
            _add_observer_(child, propagation_list, non_leaf)
    if not module._modules and not isinstance(module, nn.Sequential) and \
            type(module) in propagation_list:
        _insert_obs(module)


def prepare(model, inplace=False, allow_list=None, observer_non_leaf_module_list=None,
            prepare_custom_config_dict=None):
    """Attach observers (the qconfig's activation) to the quantizable leaf modules, the fused
    modules and QuantStubs; their forward hooks observe each output."""
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model)
    if not any(getattr(m, "qconfig", None) for m in model.modules()):
        warnings.warn("None of the submodule got qconfig applied. Make sure you passed correct "
                      "configuration through `qconfig_dict` or by assigning the `.qconfig` "
                      "attribute directly on submodules", stacklevel=2)
    _add_observer_(model, allow_list or get_default_qconfig_propagation_list(),
                   observer_non_leaf_module_list)
    return model


def prepare_qat(model, mapping=None, inplace=False):
    """Swap the float modules for their QAT versions (fake-quantized weights), then attach
    FakeQuantize activation observers; the model must be in training mode."""
    if not model.training:
        raise AssertionError("prepare_qat only works on models in training mode")
    mapping = mapping or _qat_mapping()
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model)
    convert(model, mapping=mapping, inplace=True, remove_qconfig=False)
    prepare(model, observer_non_leaf_module_list=set(mapping.values()), inplace=True)
    return model


def _remove_qconfig(module):
    for child in module.children():
        _remove_qconfig(child)
    if "qconfig" in module.__dict__:
        del module.qconfig
    _remove_hooks(module)


def _remove_hooks(module):
    """Drop observers left on modules convert did not swap, with their hooks."""
    from .observer import ObserverBase
    from .fake_quantize import FakeQuantizeBase
    app = module._modules.get("activation_post_process")
    if isinstance(app, (ObserverBase, FakeQuantizeBase)):
        del module.activation_post_process
    for k, h in list(module._forward_hooks.items()):
        if h is _observer_forward_hook:
            del module._forward_hooks[k]


def swap_module(mod, mapping, custom_module_class_mapping=None,
                use_precomputed_fake_quant=False):
    """mod's quantized (or QAT) counterpart when it has a qconfig and its type is mapped;
    its non-observer hooks carry over."""
    if getattr(mod, "qconfig", None) is None or type(mod) not in mapping:
        return mod
    new = mapping[type(mod)].from_float(mod, use_precomputed_fake_quant=use_precomputed_fake_quant)
    for h in mod._forward_pre_hooks.values():
        new.register_forward_pre_hook(h)
    for h in mod._forward_hooks.values():
        if h is not _observer_forward_hook:
            new.register_forward_hook(h)
    return new


def _convert(module, mapping, use_precomputed_fake_quant=False):
    reassign = {}
    for name, mod in module.named_children():
        if not _is_fused(mod):
            _convert(mod, mapping, use_precomputed_fake_quant)
        reassign[name] = swap_module(mod, mapping, None, use_precomputed_fake_quant)
    for k, v in reassign.items():
        module._modules[k] = v


def convert(module, mapping=None, inplace=False, remove_qconfig=True, is_reference=False,
            convert_custom_config_dict=None, use_precomputed_fake_quant=False):
    """Swap each observed module for its quantized version (weights quantized with the
    weight observer, output scale and zero point from the activation observer)."""
    if not inplace:
        module = copy.deepcopy(module)
    _convert(module, mapping or _static_mapping(), use_precomputed_fake_quant)
    if remove_qconfig:
        _remove_qconfig(module)
    return module


def quantize(model, run_fn, run_args, mapping=None, inplace=False):
    """Post-training static quantization: prepare, run_fn(model, *run_args) to calibrate,
    convert."""
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    prepare(model, inplace=True)
    run_fn(model, *run_args)
    convert(model, mapping, inplace=True)
    return model


def quantize_qat(model, run_fn, run_args, inplace=False):
    """Quantization-aware training: prepare_qat, run_fn(model, *run_args) to train, convert."""
    if not inplace:
        model = copy.deepcopy(model)
    model.train()
    prepare_qat(model, inplace=True)
    run_fn(model, *run_args)
    convert(model, inplace=True)
    return model
