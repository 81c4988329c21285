"""torch.ao.nn.intrinsic: fused float modules (a Sequential of the modules fuse_modules joined),
which prepare observes and convert swaps as one unit."""
from .... import nn


class _FusedModule(nn.Sequential):
    pass


def _fused(name, *kinds):
    def __init__(self, *mods):
        if len(mods) != len(kinds) or not all(
                any(type(m) is getattr(nn, k) for k in ks) for m, ks in zip(mods, kinds)):
            names = "".join(type(m).__name__ for m in mods)
            raise AssertionError(f"Incorrect types for input modules{names}")
        _FusedModule.__init__(self, *mods)
    return type(name, (_FusedModule,), {"__init__": __init__, "__module__": __name__})


_C = {1: ("Conv1d",), 2: ("Conv2d",), 3: ("Conv3d",)}
_B = {1: ("BatchNorm1d",), 2: ("BatchNorm2d",), 3: ("BatchNorm3d",)}
ConvReLU1d = _fused("ConvReLU1d", _C[1], ("ReLU",))
ConvReLU2d = _fused("ConvReLU2d", _C[2], ("ReLU",))
ConvReLU3d = _fused("ConvReLU3d", _C[3], ("ReLU",))
ConvBn1d = _fused("ConvBn1d", _C[1], _B[1])
ConvBn2d = _fused("ConvBn2d", _C[2], _B[2])
ConvBn3d = _fused("ConvBn3d", _C[3], _B[3])
ConvBnReLU1d = _fused("ConvBnReLU1d", _C[1], _B[1], ("ReLU",))
ConvBnReLU2d = _fused("ConvBnReLU2d", _C[2], _B[2], ("ReLU",))
ConvBnReLU3d = _fused("ConvBnReLU3d", _C[3], _B[3], ("ReLU",))
LinearReLU = _fused("LinearReLU", ("Linear",), ("ReLU",))
LinearBn1d = _fused("LinearBn1d", ("Linear",), ("BatchNorm1d",))
BNReLU2d = _fused("BNReLU2d", _B[2], ("ReLU",))
BNReLU3d = _fused("BNReLU3d", _B[3], ("ReLU",))

from . import qat, quantized  # noqa: E402,F401
