"""torch.ao.nn.quantized: static quantized modules and the dynamic ones (dynamic)."""
from . import dynamic  # noqa: F401
from .modules import (Quantize, DeQuantize, Conv1d, Conv2d, Conv3d, Linear,  # noqa: F401
                      ReLU6, Hardswish, Embedding, LayerNorm, BatchNorm2d, Dropout, FloatFunctional,
                      QFunctional, LeakyReLU, ELU, Sigmoid, Softmax,
                      ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, PReLU,
                      BatchNorm3d, GroupNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d,
                      EmbeddingBag)
