"""parameters_to_vector / vector_to_parameters."""
from ...tensor import Tensor
from ... import ops_shape as S

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters):
    return S.cat([S.reshape(p, (-1,)) for p in parameters])


def vector_to_parameters(vec, parameters):
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != total:
        raise RuntimeError(f"vector_to_parameters: vec has shape {list(vec.shape)} but the "
                           f"parameters hold {total} elements")
    pointer = 0
    for param in params:
        n = param.numel()
        # like PyTorch, the parameter's data becomes a view into vec
        param._data = vec._data[pointer:pointer + n].reshape(param._data.shape)
        param._bump()
        pointer += n
