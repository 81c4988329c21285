"""torch.autograd.variable: the legacy Variable class (torch.autograd.variable itself, the
attribute, is PyTorch's deprecated function, defined in autograd/__init__.py)."""
from ..tensor import Tensor
from .engine import _ExecutionEngine

__all__ = ["Variable"]


class _VariableMeta(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor)


class Variable(metaclass=_VariableMeta):
    """Legacy alias: Variable(t) is t itself (optionally marked as requiring grad), and every
    tensor is an instance of Variable."""

    _execution_engine = _ExecutionEngine()

    def __new__(cls, data=None, requires_grad=False, volatile=False):
        if data is None:
            from ..creation import tensor
            data = tensor([])
        t = data if isinstance(data, Tensor) else Tensor(data)
        if requires_grad:
            t.requires_grad_(True)
        return t
