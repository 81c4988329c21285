"""quantize_dynamic: replace float modules by their dynamically quantized versions."""
import copy

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
