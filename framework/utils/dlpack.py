"""torch.utils.dlpack: the legacy capsule interface (framework/creation.py holds from_dlpack
and Tensor.__dlpack__, which this reuses)."""
import enum

from ..creation import from_dlpack as _from_dlpack  # (torch.from_dlpack is this one)
from ..tensor import Tensor

__all__ = ["DLDeviceType", "from_dlpack", "to_dlpack"]


class DLDeviceType(enum.IntEnum):
    kDLCPU = 1
    kDLCUDA = 2
    kDLCUDAHost = 3
    kDLOpenCL = 4
    kDLVulkan = 7
    kDLMetal = 8
    kDLVPI = 9
    kDLROCM = 10
    kDLROCMHost = 11
    kDLExtDev = 12
    kDLCUDAManaged = 13
    kDLOneAPI = 14
    kDLWebGPU = 15
    kDLHexagon = 16
    kDLMAIA = 17


def to_dlpack(tensor):
    """A DLPack capsule ("dltensor") over the tensor's memory, for from_dlpack to consume
    once. As in PyTorch this legacy form also exports tensors that require grad."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dlpack(): argument 'data' (position 1) must be Tensor, not "
                        f"{type(tensor).__name__}")
    return tensor._data.__dlpack__()


from_dlpack = _from_dlpack
