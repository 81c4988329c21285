"""quantize_dynamic: replace float modules by their dynamically quantized versions."""
import copy
import warnings

from runtime import dtypes as dt
from ... import nn
from .qconfig import default_dynamic_qconfig, float16_dynamic_qconfig


def _dynamic_mapping():
    from ..nn.quantized import dynamic as nnqd
    return {nn.Linear: nnqd.Linear, nn.LSTM: nnqd.LSTM, nn.GRU: nnqd.GRU}


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
    from ..nn import quantized as nnq, qat as nnqat, intrinsic as nni
    from ..nn.intrinsic import quantized as nniq, qat as nniqat
    from .stubs import QuantStub, DeQuantStub
    return {QuantStub: nnq.Quantize, DeQuantStub: nnq.DeQuantize,
            nn.BatchNorm2d: nnq.BatchNorm2d, nn.Dropout: nnq.Dropout, nn.Conv1d: nnq.Conv1d,
            nn.Conv2d: nnq.Conv2d, nn.Conv3d: nnq.Conv3d, nn.Hardswish: nnq.Hardswish,
            nn.LayerNorm: nnq.LayerNorm, nn.Linear: nnq.Linear, nn.Embedding: nnq.Embedding,
            nn.ReLU6: nnq.ReLU6,
            nnq.FloatFunctional: nnq.QFunctional,
            nni.ConvReLU1d: nniq.ConvReLU1d, nni.ConvReLU2d: nniq.ConvReLU2d,
            nni.ConvReLU3d: nniq.ConvReLU3d, nni.LinearReLU: nniq.LinearReLU,
            nni.BNReLU2d: nniq.BNReLU2d,
            nniqat.ConvBn1d: nnq.Conv1d, nniqat.ConvBn2d: nnq.Conv2d, nniqat.ConvBn3d: nnq.Conv3d,
            nniqat.ConvBnReLU1d: nniq.ConvReLU1d, nniqat.ConvBnReLU2d: nniq.ConvReLU2d,
            nniqat.ConvBnReLU3d: nniq.ConvReLU3d, nniqat.ConvReLU2d: nniq.ConvReLU2d,
            nniqat.ConvReLU3d: nniq.ConvReLU3d, nniqat.LinearReLU: nniq.LinearReLU,
            nniqat.LinearBn1d: nnq.Linear, nnqat.Linear: nnq.Linear, nnqat.Conv2d: nnq.Conv2d,
            nnqat.Conv3d: nnq.Conv3d}


def _qat_mapping():
    from ..nn import qat as nnqat, intrinsic as nni
    from ..nn.intrinsic import qat as nniqat
    return {nn.Conv2d: nnqat.Conv2d, nn.Conv3d: nnqat.Conv3d, nn.Linear: nnqat.Linear,
            nni.ConvBn1d: nniqat.ConvBn1d, nni.ConvBn2d: nniqat.ConvBn2d,
            nni.ConvBn3d: nniqat.ConvBn3d, nni.ConvBnReLU1d: nniqat.ConvBnReLU1d,
            nni.ConvBnReLU2d: nniqat.ConvBnReLU2d, nni.ConvBnReLU3d: nniqat.ConvBnReLU3d,
            nni.ConvReLU2d: nniqat.ConvReLU2d, nni.ConvReLU3d: nniqat.ConvReLU3d,
            nni.LinearReLU: nniqat.LinearReLU, nni.LinearBn1d: nniqat.LinearBn1d}


get_default_static_quant_module_mappings = _static_mapping
get_default_qat_module_mappings = _qat_mapping


def get_default_qconfig_propagation_list():
    return set(_static_mapping()) | set(_qat_mapping()) | set(_dynamic_mapping()) | \
        {nn.Sequential, nn.LSTMCell, nn.GRUCell, nn.RNNCell}


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
    module.qconfig = qc
    for name, child in module.named_children():
        _propagate_helper(child, qd, module.qconfig, prefix + "." + name if prefix else name)


def _observer_forward_hook(self, input, output):
    return self.activation_post_process(output)


def _insert_obs(m):
    from .stubs import DeQuantStub
    if getattr(m, "qconfig", None) is not None and not isinstance(m, DeQuantStub):
        m.add_module("activation_post_process", m.qconfig.activation())
        m.register_forward_hook(_observer_forward_hook)


def _add_observer_(module, propagation_list, non_leaf):
    from ..nn.quantized import FloatFunctional, QFunctional
    for _, child in module.named_children():
        if type(child) is nn.Dropout:
            continue
        if isinstance(child, (FloatFunctional, QFunctional)):
            if getattr(child, "qconfig", None) is not None:
                child.activation_post_process = child.qconfig.activation()
        elif _is_fused(child) or (non_leaf and type(child) in non_leaf):
            _insert_obs(child)
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
