"""The 'meta' device: tensors with shape, dtype and strides but no data.

A meta tensor's _data is a MetaArray: a NumPy array with the tensor's real shape and strides
over an untouched zero-filled allocation (calloc'd large blocks are mapped lazily, so they
cost address space, not memory). Ops on meta tensors run only the primitive's meta rule
(framework._device_ops.run_meta); the buffer is never computed on, and a stray read sees
zeros instead of faulting. The device follows the array type, as for InterpretArray.
"""
import numpy as np


class MetaArray(np.ndarray):
    """Storage of a 'meta' tensor (see the module docstring); NumPy keeps the subclass through
    views, so views of meta tensors stay meta."""


def meta_empty(shape, npdtype, strides=None):
    """A MetaArray of `shape` and NumPy dtype, row-major unless byte `strides` are given."""
    shape = tuple(shape)
    npdtype = np.dtype(npdtype)
    isz = npdtype.itemsize
    if strides is None:
        return np.zeros(shape, npdtype).view(MetaArray)
    span = 1 + sum((n - 1) * s for n, s in zip(shape, strides) if n > 0) // isz \
        if all(shape) else 1
    buf = np.zeros(max(span, 1), npdtype)
    return np.lib.stride_tricks.as_strided(buf, shape, tuple(strides)).view(MetaArray)


def to_meta(a):
    """A MetaArray with `a`'s shape, dtype and strides (nonnegative; others row-major)."""
    if isinstance(a, MetaArray):
        return a
    st = a.strides if all(s >= 0 for s in a.strides) else None
    return meta_empty(a.shape, a.dtype, st)
