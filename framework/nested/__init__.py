"""torch.nested: nested tensors (layouts torch.strided and torch.jagged), cpu.

Built as in PyTorch's "Getting Started with Nested Tensors": nested_tensor, as_nested_tensor,
nested_tensor_from_jagged, narrow, to_padded_tensor, masked_select. The tensor itself is
framework.nested._tensor.NestedTensor; its ops (framework.nested._ops) run Kiln's ordinary ops
on its values buffer or its components, so they are differentiable as those are.
"""
from ._storage import NestedLayoutError  # noqa: F401  (light: dense modules import it)

__all__ = ["nested_tensor", "as_nested_tensor", "nested_tensor_from_jagged", "narrow",
           "to_padded_tensor", "masked_select"]


def __getattr__(name):
    # (lazy: framework's dense modules import NestedLayoutError before Tensor exists)
    if name in __all__ or name == "NestedTensor":
        from . import _api
        return getattr(_api, name)
    raise AttributeError(f"module 'torch.nested' has no attribute '{name}'")


def __dir__():
    return sorted(list(globals()) + __all__)
