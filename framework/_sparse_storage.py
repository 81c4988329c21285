"""What a sparse COO tensor holds in place of a strided array (framework.sparse).

A sparse tensor is a Tensor whose `_data` is a `NoStrided`: it answers shape, ndim and size
(so shape, size(), dim(), numel() and len() work as for any tensor) and raises
SparseLayoutError -- PyTorch's NotImplementedError for a kernel without a SparseCPU
implementation -- as soon as a dense kernel reads it. Dense ops therefore need no sparse
check of their own; the few that accept a sparse operand (add, mm, matmul, add_) catch
SparseLayoutError and hand over to framework.sparse, at no cost on the dense path.
"""
import math
import sys


class SparseLayoutError(NotImplementedError):
    """A dense kernel was given a sparse COO tensor."""


def _op_name():
    # the primitive being run: the `p` of the innermost _dispatch.apply frame (error path only)
    from . import _dispatch
    code = getattr(_dispatch.apply, "__code__", None)
    f = sys._getframe(2)
    while f is not None:
        if f.f_code is code:
            return getattr(f.f_locals.get("p"), "name", None)
        f = f.f_back
    return None


def unsupported(name=None, backend="SparseCPU"):
    name = name or _op_name() or "<dense op>"
    kind = "COO" if backend == "SparseCPU" else "compressed"
    return SparseLayoutError(
        f"Could not run 'aten::{name}' with arguments from the '{backend}' backend. Kiln "
        f"supports a subset of operations on sparse {kind} tensors (see torch.sparse); convert "
        f"with .to_dense() first.")


class NoStrided:
    __slots__ = ("shape", "ndim", "size")
    backend = "SparseCPU"

    def __init__(self, shape):
        self.shape = tuple(shape)
        self.ndim = len(self.shape)
        self.size = math.prod(self.shape)

    def __getattr__(self, name):
        if name.startswith("__"):       # Python's and NumPy's protocol probes
            raise AttributeError(name)
        raise unsupported(backend=self.backend)

    def __array__(self, *args, **kwargs):
        raise unsupported(backend=self.backend)

    def __repr__(self):
        return f"<sparse COO storage of shape {self.shape}>"


class NoStridedCompressed(NoStrided):
    """What a sparse compressed tensor (framework.sparse_compressed) holds."""
    __slots__ = ()
    backend = "SparseCsrCPU"


def _refuse(self, *args, **kwargs):
    raise unsupported(backend=self.backend)


# operators are looked up on the type (not through __getattr__): they refuse too
for _n in ("getitem", "setitem", "iter", "add", "radd", "sub", "rsub", "mul", "rmul", "truediv",
           "rtruediv", "matmul", "rmatmul", "neg", "lt", "le", "gt", "ge", "float", "int",
           "index"):
    setattr(NoStrided, f"__{_n}__", _refuse)
