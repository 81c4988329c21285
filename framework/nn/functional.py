"""torch.nn.functional: the functional forms of every layer and loss (decompositions into
primitives live in the _functional_* modules, grouped by kind)."""
from ._functional_basic import *  # noqa: F401,F403   activations, dropout, linear, embedding, losses
from ._functional_conv import *  # noqa: F401,F403    conv, pooling, padding, interpolate, norms
from ._functional_sampling import *  # noqa: F401,F403  affine_grid, grid_sample
from ._functional_ctc import *  # noqa: F401,F403    ctc_loss
from ._functional_pool_more import *  # noqa: F401,F403  max_unpool, lp_pool3d, fractional pools
from ._linear_cross_entropy import linear_cross_entropy  # noqa: F401  (torch 2.13)
from ._functional_grouped_mm import (grouped_mm, scaled_mm, scaled_grouped_mm,  # noqa: F401
                                     ScalingType, SwizzleType)  # (torch 2.13)
from ..overrides import (handle_torch_function, has_torch_function,  # noqa: F401,E402
                         has_torch_function_unary, has_torch_function_variadic)
