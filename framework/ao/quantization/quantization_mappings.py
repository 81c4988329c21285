"""Which quantized (static, dynamic) or QAT module replaces each float module in convert /
prepare_qat / quantize_dynamic. Only the modules Kiln implements are listed: PyTorch's
tables also name quantized RNN cells and reference / sparse modules, which Kiln has not
built."""
import copy

from ... import nn
from ..nn import quantized as nnq, qat as nnqat, intrinsic as nni
from ..nn.quantized import dynamic as nnqd
from ..nn.intrinsic import quantized as nniq, qat as nniqat
from .stubs import QuantStub, DeQuantStub
from .fake_quantize import (default_fixed_qparams_range_0to1_fake_quant,
                            default_fixed_qparams_range_neg1to1_fake_quant)

DEFAULT_STATIC_QUANT_MODULE_MAPPINGS = {
    QuantStub: nnq.Quantize, DeQuantStub: nnq.DeQuantize, nn.BatchNorm2d: nnq.BatchNorm2d,
    nn.Dropout: nnq.Dropout, nn.Conv1d: nnq.Conv1d, nn.Conv2d: nnq.Conv2d,
    nn.Conv3d: nnq.Conv3d, nn.Embedding: nnq.Embedding, nn.Hardswish: nnq.Hardswish,
    nn.LayerNorm: nnq.LayerNorm, nn.Linear: nnq.Linear, nn.ReLU6: nnq.ReLU6,
    nn.LeakyReLU: nnq.LeakyReLU, nn.ELU: nnq.ELU, nn.ConvTranspose1d: nnq.ConvTranspose1d,
    nn.ConvTranspose2d: nnq.ConvTranspose2d, nn.ConvTranspose3d: nnq.ConvTranspose3d,
    nn.PReLU: nnq.PReLU, nn.BatchNorm3d: nnq.BatchNorm3d, nn.GroupNorm: nnq.GroupNorm,
    nn.InstanceNorm1d: nnq.InstanceNorm1d, nn.InstanceNorm2d: nnq.InstanceNorm2d,
    nn.InstanceNorm3d: nnq.InstanceNorm3d, nn.EmbeddingBag: nnq.EmbeddingBag,
    nnq.FloatFunctional: nnq.QFunctional,
    nni.BNReLU2d: nniq.BNReLU2d, nni.ConvReLU1d: nniq.ConvReLU1d,
    nni.ConvReLU2d: nniq.ConvReLU2d, nni.ConvReLU3d: nniq.ConvReLU3d,
    nni.LinearReLU: nniq.LinearReLU,
    nniqat.ConvBn1d: nnq.Conv1d, nniqat.ConvBn2d: nnq.Conv2d, nniqat.ConvBn3d: nnq.Conv3d,
    nniqat.ConvBnReLU1d: nniq.ConvReLU1d, nniqat.ConvBnReLU2d: nniq.ConvReLU2d,
    nniqat.ConvBnReLU3d: nniq.ConvReLU3d, nniqat.ConvReLU2d: nniq.ConvReLU2d,
    nniqat.ConvReLU3d: nniq.ConvReLU3d, nniqat.LinearReLU: nniq.LinearReLU,
    nniqat.LinearBn1d: nnq.Linear, nnqat.Linear: nnq.Linear, nnqat.Conv2d: nnq.Conv2d,
    nnqat.Conv3d: nnq.Conv3d,
}

DEFAULT_QAT_MODULE_MAPPINGS = {
    nn.Conv2d: nnqat.Conv2d, nn.Conv3d: nnqat.Conv3d, nn.Linear: nnqat.Linear,
    nni.ConvBn1d: nniqat.ConvBn1d, nni.ConvBn2d: nniqat.ConvBn2d, nni.ConvBn3d: nniqat.ConvBn3d,
    nni.ConvBnReLU1d: nniqat.ConvBnReLU1d, nni.ConvBnReLU2d: nniqat.ConvBnReLU2d,
    nni.ConvBnReLU3d: nniqat.ConvBnReLU3d, nni.ConvReLU2d: nniqat.ConvReLU2d,
    nni.ConvReLU3d: nniqat.ConvReLU3d, nni.LinearReLU: nniqat.LinearReLU,
    nni.LinearBn1d: nniqat.LinearBn1d,
}

DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS = {
    nn.Linear: nnqd.Linear, nn.LSTM: nnqd.LSTM, nn.GRU: nnqd.GRU,
    nn.Embedding: nnq.Embedding,        # (weight-only: float_qparams_weight_only_qconfig)
}

# the fixed-range outputs: their observers ignore the qconfig in QAT
DEFAULT_MODULE_TO_ACT_POST_PROCESS = {
    nn.Hardsigmoid: default_fixed_qparams_range_0to1_fake_quant,
    nn.Sigmoid: default_fixed_qparams_range_0to1_fake_quant,
    nn.Softmax: default_fixed_qparams_range_0to1_fake_quant,
    nn.Tanh: default_fixed_qparams_range_neg1to1_fake_quant,
}

_INCLUDE_QCONFIG_PROPAGATE_LIST = {nn.Sequential}


def no_observer_set():
    """Module types prepare never gives observers: PyTorch's nn.quantizable LSTM and
    MultiheadAttention, which Kiln does not have, so none."""
    return set()


def get_default_static_quant_module_mappings():
    return copy.deepcopy(DEFAULT_STATIC_QUANT_MODULE_MAPPINGS)


def get_default_qat_module_mappings():
    return copy.deepcopy(DEFAULT_QAT_MODULE_MAPPINGS)


def get_default_dynamic_quant_module_mappings():
    return DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS     # (PyTorch returns the table itself)


def _lookup(table, cls, extra):
    m = dict(table)
    m.update(extra or {})
    q = m.get(cls)
    if q is None:
        from .observer import _arg_repr
        raise AssertionError(f"Floating point module class {_arg_repr(cls)} does not have a "
                             "corresponding quantized module class")
    return copy.deepcopy(q)


def get_static_quant_module_class(float_module_class, additional_static_quant_mapping=None,
                                  is_reference=False):
    """The statically quantized class that replaces float_module_class."""
    if is_reference:
        raise NotImplementedError("reference quantized modules are not built in Kiln")
    return _lookup(DEFAULT_STATIC_QUANT_MODULE_MAPPINGS, float_module_class,
                   additional_static_quant_mapping)


def get_dynamic_quant_module_class(float_module_class, additional_dynamic_quant_mapping=None):
    """The dynamically quantized class that replaces float_module_class."""
    return _lookup(DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS, float_module_class,
                   additional_dynamic_quant_mapping)


def get_default_qconfig_propagation_list():
    """Module types prepare gives a qconfig (and an observer) by default."""
    return set(DEFAULT_STATIC_QUANT_MODULE_MAPPINGS) | set(DEFAULT_QAT_MODULE_MAPPINGS) | \
        set(DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS) | _INCLUDE_QCONFIG_PROPAGATE_LIST | \
        {nn.LSTMCell, nn.GRUCell, nn.RNNCell}   # (keys of PyTorch's dynamic table)


def get_default_compare_output_module_list():
    """Module types whose outputs the numeric suite records."""
    return set(DEFAULT_STATIC_QUANT_MODULE_MAPPINGS.values()) | \
        set(DEFAULT_QAT_MODULE_MAPPINGS.values()) | \
        set(DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS.values()) | \
        get_default_qconfig_propagation_list()
