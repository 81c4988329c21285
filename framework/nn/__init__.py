"""torch.nn: Module, layers, containers, functional, init, utils."""
from .parameter import Parameter, UninitializedParameter, UninitializedBuffer, Buffer  # noqa: F401
from .modules import *  # noqa: F401,F403
from . import functional, init, utils  # noqa: F401
from . import parallel  # noqa: F401
from . import attention  # noqa: F401
from ._linear_cross_entropy import LinearCrossEntropyOptions  # noqa: F401
from .parallel import DataParallel  # noqa: F401
# torch.nn.modules.utils (_pair, ...): imported after the star import above, whose export would
# otherwise shadow nn.utils
from .modules import utils as _modules_utils  # noqa: F401,E402
