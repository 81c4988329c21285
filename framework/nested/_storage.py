"""What a nested tensor holds in place of a strided array, and its symbolic ragged size.

A NestedTensor's `_data` is NestedStorage: any dense kernel that reads it raises
NestedLayoutError (PyTorch's NotImplementedError for an op without a NestedTensor kernel).
framework._dispatch.apply catches that error on its error path only and hands the primitive
to framework.nested._ops, so dense ops carry no nested check of their own.
"""
import itertools

from .._sparse_storage import _op_name     # (the primitive being run, on an error path)


class NestedLayoutError(NotImplementedError):
    """A dense kernel was given a nested tensor (or a nested op is not supported)."""


def no_sizes():
    # (PyTorch's RuntimeError; as a NestedLayoutError, a dense front-end that asked hands over)
    return NestedLayoutError("Internal error: NestedTensorImpl doesn't support sizes. Please "
                             "file an issue.")


def unsupported(name=None):
    name = name or _op_name() or "<dense op>"
    return NestedLayoutError(
        f"Could not run 'aten::{name}' with arguments from the 'NestedTensorCPU' backend. Kiln "
        f"supports a subset of operations on nested tensors (see torch.nested).")


class NestedStorage:
    __slots__ = ()

    def __getattr__(self, name):
        if name.startswith("__"):       # Python's and NumPy's protocol probes
            raise AttributeError(name)
        raise unsupported()

    def __array__(self, *args, **kwargs):
        raise unsupported()

    def __repr__(self):
        return "<nested tensor storage>"


def _refuse(self, *args, **kwargs):
    raise unsupported()


for _n in ("getitem", "setitem", "iter", "len", "add", "radd", "sub", "rsub", "mul", "rmul",
           "truediv", "rtruediv", "matmul", "rmatmul", "neg", "lt", "le", "gt", "ge", "float",
           "int", "index", "bool"):
    setattr(NestedStorage, f"__{_n}__", _refuse)

STORAGE = NestedStorage()

_ids = itertools.count(1)


class NestedInt:
    """The ragged size j1, j2, ... of a jagged tensor's shape: equal only to itself (the same
    offsets), and no number, so shape arithmetic on it raises NestedLayoutError."""
    __slots__ = ("id",)

    def __init__(self):
        self.id = next(_ids)

    def __repr__(self):
        return f"j{self.id}"

    def __eq__(self, o):
        return self is o

    def __ne__(self, o):
        return self is not o

    def __hash__(self):
        return hash(("j", self.id))


for _n in ("add", "radd", "sub", "rsub", "mul", "rmul", "floordiv", "rfloordiv", "truediv",
           "mod", "index", "int", "lt", "le", "gt", "ge", "bool"):
    setattr(NestedInt, f"__{_n}__", _refuse)
