"""torch.ao: quantized tensors (_qtensor), fake quantization, eager-mode static and dynamic
quantization with observers and QAT (quantization), quantized / QAT / fused modules (nn)."""
import sys as _sys

from ..tensor import Tensor as _Tensor
from . import _qtensor
from . import quantization, nn  # noqa: F401

for _name, _fn in (("dequantize", _qtensor.dequantize), ("int_repr", _qtensor.int_repr),
                   ("q_scale", _qtensor.q_scale), ("q_zero_point", _qtensor.q_zero_point),
                   ("q_per_channel_scales", _qtensor.q_per_channel_scales),
                   ("q_per_channel_zero_points", _qtensor.q_per_channel_zero_points),
                   ("q_per_channel_axis", _qtensor.q_per_channel_axis),
                   ("qscheme", _qtensor.qscheme_of)):
    setattr(_Tensor, _name, _fn)

# `import torch.quantization` names the same module as torch.ao.quantization
_sys.modules.setdefault(__name__.rsplit(".", 1)[0] + ".quantization", quantization)
