"""All primitives, grouped by kind; importing this package fills the registry."""
from . import pointwise, reduction, layout, indexing, linalg, extern, random  # noqa: F401
from . import conv  # noqa: F401   sliding windows and their adjoint (conv, pooling, unfold)
from . import ctc  # noqa: F401    connectionist temporal classification loss and its gradient
from . import fft  # noqa: F401    discrete Fourier transforms (torch.fft)
from ..ir.registry import REGISTRY  # noqa: F401
