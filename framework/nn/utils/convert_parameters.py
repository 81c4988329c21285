"""parameters_to_vector / vector_to_parameters."""
from ...tensor import Tensor
from ... import ops_shape as S

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters):
    return S.cat([S.reshape(p, (-1,)) for p in parameters])


def vector_to_parameters(vec, parameters):
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    # as torch: no total-size check; each parameter takes vec[pointer:pointer + n] viewed as
    # its shape (a longer vec leaves its tail unused, a shorter one fails in view_as)
    from ...autograd.grad_mode import no_grad
    pointer = 0
    for param in parameters:
        n = param.numel()
        with no_grad():
            v = vec[pointer:pointer + n].view_as(param)
        # like PyTorch (param.data = ...), the parameter's data becomes a view into vec
        param._data, param._dtype = v._data, v._dtype
        param._bump()
        pointer += n
