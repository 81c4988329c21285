"""nn.utils.convert_conv{2,3}d_weight_memory_format: re-lay conv weights (channels_last)."""
from ... import nn

__all__ = ["convert_conv2d_weight_memory_format", "convert_conv3d_weight_memory_format"]


def _convert(module, memory_format, kinds):
    if isinstance(module, kinds):
        # PyTorch then calls resize_(size, memory_format=...) on the clone, which only restates
        # the strides clone() already gave
        module.weight.data = module.weight.detach().clone(memory_format=memory_format)
    for child in module.children():
        _convert(child, memory_format, kinds)
    return module


def convert_conv2d_weight_memory_format(module, memory_format):
    """Every Conv2d / ConvTranspose2d weight in `module` (recursively) in memory_format."""
    return _convert(module, memory_format, (nn.Conv2d, nn.ConvTranspose2d))


def convert_conv3d_weight_memory_format(module, memory_format):
    """Every Conv3d / ConvTranspose3d weight in `module` (recursively) in memory_format."""
    return _convert(module, memory_format, (nn.Conv3d, nn.ConvTranspose3d))
