"""ShapeProp: run a GraphModule and record each node's result shape and dtype in
node.meta['tensor_meta'] (torch.fx.passes.shape_prop)."""
from typing import NamedTuple, Any

from ..interpreter import Interpreter
from ..node import map_aggregate

__all__ = ["TensorMetadata", "ShapeProp"]


class TensorMetadata(NamedTuple):
    shape: Any
    dtype: Any
    requires_grad: bool
    stride: tuple
    memory_format: Any
    is_quantized: bool
    qparams: dict


def _extract_tensor_metadata(result):
    import framework
    memory_format = None
    for fmt in (framework.contiguous_format, framework.channels_last,
                framework.channels_last_3d):
        try:
            if result.is_contiguous(memory_format=fmt):
                memory_format = fmt
                break
        except (RuntimeError, ValueError):
            continue
    return TensorMetadata(result.shape, result.dtype, result.requires_grad, result.stride(),
                          memory_format, False, {})


class ShapeProp(Interpreter):
    """ShapeProp(gm).propagate(*example_inputs) fills node.meta['tensor_meta'] (a
    TensorMetadata, or a structure of them for a node that returns several tensors) and
    node.meta['type']."""

    def __init__(self, gm, fake_mode=None):
        super().__init__(gm)

    def run_node(self, n):
        import framework
        result = super().run_node(n)
        found = [False]

        def extract(obj):
            if isinstance(obj, framework.Tensor):
                found[0] = True
                return _extract_tensor_metadata(obj)
            return obj
        meta = map_aggregate(result, extract)
        if found[0]:
            n.meta["tensor_meta"] = meta
        n.meta["type"] = type(result)
        return result

    def propagate(self, *args):
        return super().run(*args)
