"""Parameter, UninitializedParameter, UninitializedBuffer, Buffer: tensors a Module registers.

A Parameter shares its data with the tensor it is built from (like PyTorch) and is a leaf
that requires grad by default. Every op accepts it because it is a Tensor; results of ops are
plain Tensors.
"""
import numpy as np

from runtime import dtypes as dt
from ..tensor import Tensor


def _adopt(self, data, requires_grad):
    if data is None:
        data = np.empty((0,), dt.get_default_dtype().np)
        self._data, self._dtype = data, dt.get_default_dtype()
    elif isinstance(data, Tensor):
        self._data, self._dtype = data._data, data._dtype
        if data._device is not Tensor._device:
            self._device = data._device
    else:
        from ..creation import tensor
        t = tensor(data)
        self._data, self._dtype = t._data, t._dtype
    if requires_grad:
        self.requires_grad_(True)


def _rebuild_parameter(arr, dtype_name, requires_grad):
    from .._dispatch import wrap
    return Parameter(wrap(arr, dt._dtype_by_name(dtype_name)), requires_grad)


class Parameter(Tensor):
    _is_param = True

    def __new__(cls, data=None, requires_grad=True):
        self = Tensor.__new__(cls)
        _adopt(self, data, requires_grad)
        return self

    def __init__(self, data=None, requires_grad=True):
        pass    # everything happens in __new__; Tensor.__init__ would rebuild the data

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, proto):
        return (_rebuild_parameter, (np.array(self._data), self._dtype.name, self.requires_grad))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        # as torch's Parameter.__deepcopy__: data and requires_grad only, .grad is not copied
        r = type(self)(_clone_data(self), self.requires_grad)
        memo[id(self)] = r
        return r


from .. import _dispatch  # noqa: E402
_dispatch.Parameter = Parameter     # (its meta rules are memoised as a Tensor's)


def _clone_data(t):
    from .._dispatch import wrap
    return wrap(t._data.copy(), t._dtype, t._device)


class UninitializedParameter(Parameter):
    """A parameter whose shape is not known yet (lazy modules). Any use other than
    materialize() is an error, as in PyTorch."""
    cls_to_become = Parameter

    def __new__(cls, requires_grad=True, device=None, dtype=None):
        from runtime.device import canonical
        self = Tensor.__new__(cls)
        d = dtype or dt.get_default_dtype()
        self._data, self._dtype = np.empty((0,), d.np), d
        self._rg = bool(requires_grad)
        self._lazy_device = canonical(device)     # (the default device when None)
        return self

    def __init__(self, requires_grad=True, device=None, dtype=None):
        pass

    def materialize(self, shape, device=None, dtype=None):
        """Storage of `shape` on the device given at construction (or `device`)."""
        from runtime.device import canonical
        from ..creation import empty
        if isinstance(shape, int):
            shape = (shape,)
        d = dtype or self._dtype
        dev = canonical(device) if device is not None else self._lazy_device
        t = empty(tuple(shape), dtype=d, device=dev)
        self._data, self._dtype = t._data, d
        if dev.type != "cpu":
            self._device = dev
        self.__class__ = self.cls_to_become

    def __repr__(self):
        return "<UninitializedParameter>"

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        r = type(self)(self.requires_grad, self._lazy_device, self._dtype)
        memo[id(self)] = r
        return r

    def __reduce_ex__(self, proto):
        return (self.__class__, (self.requires_grad,))

    def numel(self):
        # (a parameter count over a lazy module must not read 0; torch refuses the same way)
        raise ValueError(f"Attempted to use an uninitialized parameter in <method 'numel' of "
                         f"'torch._C.TensorBase' objects>. This error happens when you are using "
                         f"a `LazyModule` or explicitly manipulating `torch.nn.parameter."
                         f"{type(self).__name__}` objects. When using LazyModules Call `forward` "
                         f"with a dummy batch to initialize the parameters before calling torch "
                         f"functions")

    @property
    def shape(self):
        raise RuntimeError("Can't access the shape of an uninitialized parameter or buffer. This "
                           "error usually happens in `load_state_dict` when trying to load an "
                           "uninitialized parameter into an initialized one. Call `forward` to "
                           "initialize the parameters before accessing their attributes.")


class _BufferMeta(type):
    def __instancecheck__(cls, inst):
        return isinstance(inst, Tensor) and getattr(inst, "_is_buffer", False)


class Buffer(Tensor, metaclass=_BufferMeta):
    """nn.Buffer(data, persistent=True): assigning one to a Module attribute registers it as a
    buffer. As in PyTorch, the object is a plain Tensor marked as a buffer."""

    def __new__(cls, data=None, *, persistent=True):
        t = Tensor.__new__(Tensor)
        _adopt(t, data, False)
        t._is_buffer = True
        t.persistent = persistent
        return t


class UninitializedBuffer(Tensor):
    """A buffer whose shape is not known yet (lazy modules' running statistics); materialize()
    turns it into a plain Tensor."""
    cls_to_become = Tensor

    def __new__(cls, requires_grad=False, device=None, dtype=None, persistent=True):
        from runtime.device import canonical
        self = Tensor.__new__(cls)
        d = dtype or dt.get_default_dtype()
        self._data, self._dtype = np.empty((0,), d.np), d
        self._rg = bool(requires_grad)
        self._lazy_device = canonical(device)
        self.persistent = persistent
        return self

    def __init__(self, requires_grad=False, device=None, dtype=None, persistent=True):
        pass

    materialize = UninitializedParameter.materialize
    shape = UninitializedParameter.shape
    numel = UninitializedParameter.numel

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        r = type(self)(self.requires_grad, self._lazy_device, self._dtype, self.persistent)
        memo[id(self)] = r
        return r

    def __reduce_ex__(self, proto):
        return (self.__class__, (self.requires_grad,))

    def __repr__(self):
        return "<UninitializedBuffer>"


def is_lazy(param):
    return isinstance(param, (UninitializedParameter, UninitializedBuffer))
