"""torch.fx.passes: graph passes over GraphModules."""
from . import shape_prop  # noqa: F401
