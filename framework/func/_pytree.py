"""torch.func's view of the one pytree (framework.utils._pytree): registered nodes work in
vmap's in_dims/out_dims and in torch.func's arguments as in torch."""
from ..utils._pytree import (tree_flatten as flatten, tree_unflatten as unflatten,  # noqa: F401
                             tree_map, _broadcast_to_and_flatten as broadcast_prefix)
