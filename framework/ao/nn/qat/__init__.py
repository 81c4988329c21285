"""torch.ao.nn.qat: Linear and Conv whose weight passes through weight_fake_quant in forward
(quantization-aware training); convert turns them into quantized modules."""
from .... import nn
from ....nn import functional as F


def _check(qconfig):
    if not qconfig:
        raise AssertionError("qconfig must be provided for QAT module")


class Linear(nn.Linear):
    _FLOAT_MODULE = nn.Linear

    def __init__(self, in_features, out_features, bias=True, qconfig=None, device=None,
                 dtype=None):
        super().__init__(in_features, out_features, bias)
        _check(qconfig)
        self.qconfig = qconfig
        self.weight_fake_quant = qconfig.weight(factory_kwargs={})

    def forward(self, input):
        return F.linear(input, self.weight_fake_quant(self.weight), self.bias)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        from ..intrinsic import _FusedModule
        if isinstance(mod, _FusedModule):
            mod = mod[0]
        if not getattr(mod, "qconfig", None):
            raise AssertionError("Input float module must have a valid qconfig")
        q = cls(mod.in_features, mod.out_features, bias=mod.bias is not None,
                qconfig=mod.qconfig)
        q.weight = mod.weight
        q.bias = mod.bias
        return q


def _qat_conv(base):
    class Conv(base):
        _FLOAT_MODULE = base

        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                     dilation=1, groups=1, bias=True, padding_mode="zeros", qconfig=None,
                     device=None, dtype=None):
            base.__init__(self, in_channels, out_channels, kernel_size, stride=stride,
                          padding=padding, dilation=dilation, groups=groups, bias=bias,
                          padding_mode=padding_mode)
            _check(qconfig)
            self.qconfig = qconfig
            self.weight_fake_quant = qconfig.weight(factory_kwargs={})

        def forward(self, input):
            return self._conv_forward(input, self.weight_fake_quant(self.weight), self.bias)

        @classmethod
        def from_float(cls, mod, use_precomputed_fake_quant=False):
            from ..intrinsic import _FusedModule
            if isinstance(mod, _FusedModule):
                mod = mod[0]
            if not getattr(mod, "qconfig", None):
                raise AssertionError("Input float module must have a valid qconfig")
            q = cls(mod.in_channels, mod.out_channels, mod.kernel_size, stride=mod.stride,
                    padding=mod.padding, dilation=mod.dilation, groups=mod.groups,
                    bias=mod.bias is not None, padding_mode=mod.padding_mode,
                    qconfig=mod.qconfig)
            q.weight = mod.weight
            q.bias = mod.bias
            return q
    Conv.__name__ = Conv.__qualname__ = base.__name__
    Conv.__module__ = __name__
    return Conv


Conv1d = _qat_conv(nn.Conv1d)
Conv2d = _qat_conv(nn.Conv2d)
Conv3d = _qat_conv(nn.Conv3d)
