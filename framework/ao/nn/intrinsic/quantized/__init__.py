"""torch.ao.nn.intrinsic.quantized: quantized conv / linear with a fused ReLU (the output
clamped below at its zero point)."""
from ...quantized import modules as _q


class ConvReLU1d(_q.Conv1d):
    _NAME, _RELU = "QuantizedConvReLU1d", True


class ConvReLU2d(_q.Conv2d):
    _NAME, _RELU = "QuantizedConvReLU2d", True

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        return super().from_float(mod, use_precomputed_fake_quant)


class ConvReLU3d(_q.Conv3d):
    _NAME, _RELU = "QuantizedConvReLU3d", True


class LinearReLU(_q.Linear):
    _NAME, _RELU = "QuantizedLinearReLU", True


class BNReLU2d(_q.BatchNorm2d):
    _NAME, _RELU = "QuantizedBNReLU2d", True
