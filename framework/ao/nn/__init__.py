"""torch.ao.nn: quantized modules (dynamic Linear)."""
from . import quantized  # noqa: F401
