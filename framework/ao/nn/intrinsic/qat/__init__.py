"""torch.ao.nn.intrinsic.qat: fused modules for quantization-aware training. ConvBn folds the
BatchNorm scale into the fake-quantized weight and divides it back out of the conv output
before the (training or frozen) BatchNorm, as PyTorch's approximate path does."""
import math

from ..... import nn
from .....nn import functional as F
from .....nn.parameter import Parameter
from ....nn import qat as nnqat


class _ConvBnNd:
    _IS_FUSED = True
    _RELU = False

    def _setup(self, out_channels, bias, eps, momentum, freeze_bn, qconfig, bn_cls):
        from .....creation import empty
        if not qconfig:
            raise AssertionError("qconfig must be provided for QAT module")
        self.qconfig = qconfig
        self.freeze_bn = freeze_bn if self.training else True
        self.bn = bn_cls(out_channels, eps, momentum, True, True)
        self.weight_fake_quant = qconfig.weight()
        if bias:
            self.bias = Parameter(empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_bn_parameters()
        if self.training and not freeze_bn:
            self.update_bn_stats()
        else:
            self.freeze_bn_stats()

    def reset_running_stats(self):
        self.bn.reset_running_stats()

    def reset_bn_parameters(self):
        from .....nn import init
        self.bn.reset_running_stats()
        init.uniform_(self.bn.weight)
        init.zeros_(self.bn.bias)
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def update_bn_stats(self):
        self.freeze_bn = False
        self.bn.training = self.training
        return self

    def freeze_bn_stats(self):
        self.freeze_bn = True
        self.bn.training = False
        return self

    def _forward(self, input):
        from .....creation import zeros
        running_std = (self.bn.running_var + self.bn.eps).sqrt()
        scale_factor = self.bn.weight / running_std
        nd = self.weight.ndim
        wshape, bshape = [-1] + [1] * (nd - 1), [1, -1] + [1] * (nd - 2)
        scaled_weight = self.weight_fake_quant(self.weight * scale_factor.reshape(wshape))
        zero_bias = zeros(self.out_channels, dtype=input.dtype)
        conv = self._conv_forward(input, scaled_weight, zero_bias)
        conv_orig = conv / scale_factor.reshape(bshape)
        if self.bias is not None:
            conv_orig = conv_orig + self.bias.reshape(bshape)
        return self.bn(conv_orig)

    def forward(self, input):
        out = self._forward(input)
        return F.relu(out) if self._RELU else out

    def train(self, mode=True):
        self.training = mode
        if not self.freeze_bn:
            for m in self.children():
                m.train(mode)
        return self

    def extra_repr(self):
        return self._CONV.extra_repr(self)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        if not getattr(mod, "qconfig", None):
            raise AssertionError("Input float module must have a valid qconfig")
        conv, bn = mod[0], mod[1]
        q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                conv.padding, conv.dilation, conv.groups, conv.bias is not None,
                conv.padding_mode, bn.eps, bn.momentum, False, mod.qconfig)
        q.weight = conv.weight
        q.bias = conv.bias
        q.bn.weight = bn.weight
        q.bn.bias = bn.bias
        q.bn.running_mean = bn.running_mean
        q.bn.running_var = bn.running_var
        q.bn.num_batches_tracked = bn.num_batches_tracked
        return q


def _convbn(name, conv_cls, bn_cls, relu):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=None, padding_mode="zeros", eps=1e-05, momentum=0.1,
                 freeze_bn=False, qconfig=None):
        conv_cls.__init__(self, in_channels, out_channels, kernel_size, stride=stride,
                          padding=padding, dilation=dilation, groups=groups, bias=False,
                          padding_mode=padding_mode)
        self._setup(out_channels, bias, eps, momentum, freeze_bn, qconfig, bn_cls)
    return type(name, (_ConvBnNd, conv_cls),
                {"__init__": __init__, "_RELU": relu, "_CONV": conv_cls, "__module__": __name__})


ConvBn1d = _convbn("ConvBn1d", nn.Conv1d, nn.BatchNorm1d, False)
ConvBn2d = _convbn("ConvBn2d", nn.Conv2d, nn.BatchNorm2d, False)
ConvBn3d = _convbn("ConvBn3d", nn.Conv3d, nn.BatchNorm3d, False)
ConvBnReLU1d = _convbn("ConvBnReLU1d", nn.Conv1d, nn.BatchNorm1d, True)
ConvBnReLU2d = _convbn("ConvBnReLU2d", nn.Conv2d, nn.BatchNorm2d, True)
ConvBnReLU3d = _convbn("ConvBnReLU3d", nn.Conv3d, nn.BatchNorm3d, True)


def _relu_qat(base, name):
    def forward(self, input):
        return F.relu(base.forward(self, input))
    return type(name, (base,), {"forward": forward, "_IS_FUSED": True, "__module__": __name__})


ConvReLU1d = _relu_qat(nnqat.Conv1d, "ConvReLU1d")
ConvReLU2d = _relu_qat(nnqat.Conv2d, "ConvReLU2d")
ConvReLU3d = _relu_qat(nnqat.Conv3d, "ConvReLU3d")
LinearReLU = _relu_qat(nnqat.Linear, "LinearReLU")


class LinearBn1d(nn.Linear):
    """Linear + BatchNorm1d for QAT (the BatchNorm scale folded into the fake-quantized
    weight)."""
    _IS_FUSED = True

    def __init__(self, in_features, out_features, bias=True, eps=1e-05, momentum=0.1,
                 freeze_bn=False, qconfig=None):
        super().__init__(in_features, out_features, bias)
        self.qconfig = qconfig
        self.freeze_bn = freeze_bn if self.training else True
        self.bn = nn.BatchNorm1d(out_features, eps, momentum, True, True)
        self.weight_fake_quant = qconfig.weight()
        if self.training and not freeze_bn:
            _ConvBnNd.update_bn_stats(self)
        else:
            _ConvBnNd.freeze_bn_stats(self)

    train = _ConvBnNd.train

    def forward(self, input):
        running_std = (self.bn.running_var + self.bn.eps).sqrt()
        scale_factor = self.bn.weight / running_std
        scaled_weight = self.weight_fake_quant(self.weight * scale_factor.reshape(-1, 1))
        out = F.linear(input, scaled_weight)
        out = out / scale_factor.reshape(1, -1)
        if self.bias is not None:
            out = out + self.bias.reshape(1, -1)
        return self.bn(out)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        linear, bn = mod[0], mod[1]
        q = cls(linear.in_features, linear.out_features, linear.bias is not None, bn.eps,
                bn.momentum, False, mod.qconfig)
        q.weight, q.bias = linear.weight, linear.bias
        q.bn.weight, q.bn.bias = bn.weight, bn.bias
        q.bn.running_mean, q.bn.running_var = bn.running_mean, bn.running_var
        q.bn.num_batches_tracked = bn.num_batches_tracked
        return q


_BN_MODULES = (_ConvBnNd, LinearBn1d)


def freeze_bn_stats(mod):
    """model.apply(freeze_bn_stats): BatchNorms of fused QAT modules use running stats."""
    if isinstance(mod, _BN_MODULES):
        _ConvBnNd.freeze_bn_stats(mod)


def update_bn_stats(mod):
    if isinstance(mod, _BN_MODULES):
        _ConvBnNd.update_bn_stats(mod)
