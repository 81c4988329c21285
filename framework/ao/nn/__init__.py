"""torch.ao.nn: quantized modules (static and dynamic), QAT modules and fused modules."""
from . import quantized, qat, intrinsic  # noqa: F401
