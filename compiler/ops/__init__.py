"""All primitives, grouped by kind; importing this package fills the registry."""
from . import pointwise, reduction, layout, indexing, linalg, extern  # noqa: F401
from ..ir.registry import REGISTRY  # noqa: F401
