"""Parameter: a leaf tensor that a Module registers (placeholder until the nn issue lands)."""
from ..tensor import Tensor


class Parameter(Tensor):
    pass


class UninitializedParameter(Parameter):
    pass


class Buffer(Tensor):
    pass
