"""The Tensor: a buffer (NumPy array on cpu), a dtype, and autograd state.

Math methods are bound at the end of framework/__init__ from the functional ops, so each op
has one definition (framework/ops_*.py) shared by torch.f(x) and x.f().
"""
import sys
import warnings

import numpy as np

from runtime import dtypes as dt
from runtime.device import cpu, canonical
from . import _dispatch
from ._dispatch import STATE
from . import _memory_format as _mf


def _size_elems(t):
    """torch.Size's elements are ints: a NumPy int or a 0-d integer tensor becomes its int
    (through __index__), anything else is a TypeError, as PyTorch's."""
    import operator
    out = []
    for i, s in enumerate(t):
        try:
            out.append(operator.index(s))
        except TypeError:
            raise TypeError(f"torch.Size() takes an iterable of 'int' (item {i} is "
                            f"'{type(s).__name__}')") from None
    return out


class Size(tuple):
    """torch.Size: a tuple that prints as torch.Size([2, 3])."""

    def __new__(cls, sizes=()):
        t = tuple.__new__(cls, sizes)
        for s in t:
            if type(s) is not int:      # (the common case costs one type check per dim)
                return tuple.__new__(cls, _size_elems(t))
        return t

    def __repr__(self):
        return f"torch.Size({list(self)})"

    __str__ = __repr__

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, k):
        r = tuple.__getitem__(self, k)
        return _shape(r) if isinstance(k, slice) else r

    def __add__(self, o):
        return Size(tuple(self) + tuple(o))

    def __radd__(self, o):
        return Size(tuple(o) + tuple(self))

    def __mul__(self, n):
        return Size(tuple(self) * n)

    __rmul__ = __mul__


# a Size from a buffer's shape, whose elements are ints already: tuple's own constructor,
# without Size.__new__'s check (Tensor.shape is read on every op)
def _shape(dims):
    return tuple.__new__(Size, dims)



def _to_args(args, kwargs):
    """Tensor.to's arguments, in PyTorch's forms (to(device, dtype, non_blocking, copy),
    to(dtype, non_blocking, copy), to(other), keywords): (dtype, device, copy, memory_format)."""
    dtype, device = kwargs.pop("dtype", None), kwargs.pop("device", None)
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    fmt = kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {list(kwargs)}")
    flags = []
    for a in args:
        if isinstance(a, bool):
            # trailing positional flags (non_blocking, copy), not a device
            flags.append(a)
        elif isinstance(a, dt.DType):
            dtype = a
        elif isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif a is not None:
            device = a
    if len(flags) > 1:
        copy = flags[1]
    return dtype, device, copy, fmt

class Tensor:
    # defaults live on the class so creating a tensor sets only _data and _dtype
    _node = None        # autograd Node that produced this tensor (grad_fn), None for leaves
    _oi = 0             # which output of _node
    _rg = False         # leaf requires_grad flag
    _grad = None
    _base = None        # tensor whose memory this view shares
    _vcount = 0         # version counter (kept on the base)
    _view_src = None    # (source, prim, attrs, base version) of a view that records history
    _device = cpu
    _hooks = None       # leaf tensor hooks
    _retain = False
    _is_param = False
    _inf = False        # made under inference_mode (see is_inference)
    _const = False      # a composite op's constant, saved as no tensor (_dispatch.const)
    __array_priority__ = 1000

    def __init__(self, *args, dtype=None, device=None):
        if "_data" in self.__dict__:
            return      # a subclass's __new__ built it (Tensor._make_subclass)
        # legacy constructor torch.Tensor(data) / torch.Tensor(2, 3): always the default dtype
        t = _legacy_new(args, dtype or dt.get_default_dtype(), device)
        self._data = t._data
        self._dtype = t._dtype
        if t._base is not None or len(args) == 1 and isinstance(args[0], Tensor):
            self._base = t._base if t._base is not None else t   # Tensor(t) aliases t

    # ---- metadata -------------------------------------------------------------------------
    @property
    def shape(self):
        return _shape(self._data.shape)

    def size(self, dim=None):
        if dim is None:
            return _shape(self._data.shape)
        from compiler.ir.registry import norm_dim
        return self._data.shape[norm_dim("size", dim, self._data.ndim)]

    @property
    def dtype(self):
        return self._dtype

    @property
    def device(self):
        return self._device

    @property
    def is_cpu(self):
        return self._device.type == "cpu"

    @property
    def is_cuda(self):
        # the interpret device runs the GPU code path (it is what 'cuda' maps to under
        # KILN_DEVICE=interpret), so code that asks is_cuda takes its GPU branch there too
        return self._device.type in ("cuda", "interpret")

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    ndimension = dim

    def numel(self):
        return self._data.size

    nelement = numel

    def element_size(self):
        return self._dtype.itemsize

    @property
    def itemsize(self):
        return self._dtype.itemsize

    @property
    def nbytes(self):
        return self._data.size * self._dtype.itemsize

    def stride(self, dim=None):
        isz = self._data.itemsize
        st = tuple(s // isz for s in self._data.strides)
        if self._data.size == 0 and 0 in st:
            # NumPy zeroes an empty array's strides; PyTorch keeps contiguous ones
            # (zeros(0, 3).stride() == (3, 1), zeros(2, 0).stride() == (1, 1))
            acc, out = 1, []
            for s in reversed(self._data.shape):
                out.append(acc)
                acc *= s if s > 1 else 1
            st = tuple(reversed(out))
        if dim is None:
            return st
        from compiler.ir.registry import norm_dim
        return st[norm_dim("stride", dim, self._data.ndim)]

    def storage_offset(self):
        base = self._base
        if base is None:
            return 0
        return (_ptr(self._data) - _ptr(base._data)) // self._data.itemsize

    def is_contiguous(self, memory_format=None):
        if memory_format is not None and _mf.is_channels_last(memory_format):
            return _mf.follows(self._data.shape, self.stride(), memory_format)
        _mf.check("is_contiguous", memory_format)
        if self._data.size == 0:      # torch: a tensor with no elements is contiguous
            return True
        expect = 1
        for size, st in zip(reversed(self._data.shape), reversed(self.stride())):
            if size != 1 and st != expect:
                return False
            expect *= size
        return True

    def data_ptr(self):
        if self._device.type == "meta":
            return 0
        if self._dtype.round is not None:   # (complex32, float8: elements as PyTorch's sizes)
            base = self._base if self._base is not None else self
            return _ptr(base._data) + self.storage_offset() * self._dtype.itemsize
        return _ptr(self._data)

    const_data_ptr = data_ptr

    @property
    def is_leaf(self):
        return self._node is None

    @property
    def requires_grad(self):
        return self._rg or self._node is not None

    @requires_grad.setter
    def requires_grad(self, flag):
        self._set_requires_grad(flag, "only Tensors of floating point and complex dtype can "
                                      "require gradients")

    def requires_grad_(self, requires_grad=True):
        # (PyTorch words each path's refusal differently: the method, the setter, a factory)
        return self._set_requires_grad(requires_grad, "only Tensors of floating point dtype can "
                                                      "require gradients")

    def _set_requires_grad(self, requires_grad=True, msg="Only Tensors of floating point and "
                                                         "complex dtype can require gradients"):
        if self._node is not None:
            if not requires_grad:
                raise RuntimeError("you can only change requires_grad flags of leaf variables. If "
                                   "you want to use a computed variable in a subgraph that doesn't "
                                   "require differentiation use var_no_grad = var.detach().")
            return self
        if requires_grad and not (self._dtype.is_floating_point or self._dtype.is_complex):
            raise RuntimeError(f"{msg} (got {self._dtype})")
        if requires_grad and not STATE.inference and self.is_inference():
            raise RuntimeError("Setting requires_grad=True on inference tensor outside "
                               "InferenceMode is not allowed.")
        if "_vrg" in self.__dict__:      # a no_grad view: requires grad through its base
            if not requires_grad:
                return self
            del self._vrg               # now a leaf of its own
        self._rg = bool(requires_grad)
        return self

    def is_inference(self):
        """Made under inference_mode (or a view of such a tensor): outside that mode it cannot
        be written in place, require grad, or be saved for backward."""
        b = self._base
        return self._inf or (b is not None and b._inf)

    @property
    def grad(self):
        g = self._grad
        if g is None and self._node is not None and not self._retain:
            import warnings
            warnings.warn("The .grad attribute of a Tensor that is not a leaf Tensor is being "
                          "accessed. Its .grad attribute won't be populated during "
                          "autograd.backward(). If you indeed want the .grad field to be populated "
                          "for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. If "
                          "you access the non-leaf Tensor by mistake, make sure you access the "
                          "leaf Tensor instead. See github.com/pytorch/pytorch/pull/30531 for "
                          "more information.", UserWarning, stacklevel=2)
        return g

    @grad.setter
    def grad(self, g):
        if g is not None:
            if not isinstance(g, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of "
                                f"type {type(g).__name__}")
            want = self.__dict__.get("_grad_dtype", self._dtype)    # (Tensor.grad_dtype)
            if want is not None and g._dtype is not want:
                from ._torch_extras import type_meta_name
                raise RuntimeError(f"attempting to assign a gradient with dtype "
                                   f"'{type_meta_name(g._dtype)}' to a tensor with grad_dtype "
                                   f"'{dt.tname(want)}'. The gradient must match the tensor's "
                                   f"grad_dtype (defaults to the tensor's dtype). You can set the "
                                   f"tensor's grad_dtype attribute with a specific dtype, or None "
                                   f"to allow any dtype. Set grad_dtype with caution. Diverging "
                                   f"the dtypes of a tensor and its gradient may break downstream "
                                   f"systems that assume they match.")
            if g.shape != self.shape:
                raise RuntimeError(f"assigned grad has data of a different size: grad "
                                   f"{list(g.shape)} vs tensor {list(self.shape)}")
        self._grad = g

    @grad.deleter
    def grad(self):
        self._grad = None

    @property
    def grad_fn(self):
        if self._view_src is not None and STATE.tracer is None:
            _dispatch.rebase_view(self)     # (its base was written in place since)
        return self._node

    @property
    def _version(self):
        b = self._base if self._base is not None else self
        return b._vcount

    def _bump(self):
        b = self._base if self._base is not None else self
        b._vcount += 1
        vs = self._view_src
        if vs is not None and not self.__dict__.pop("_propagated", False):
            self._view_src = vs[:3] + (b._vcount,)     # its own new history stays (no rebase)
        # (written through, with the base's history rewritten: PyTorch regenerates this view's
        # grad_fn from the base's, so the view is left to rebase_view)
        if self._dtype is dt.float16 and "_chalf_part" in b.__dict__:
            _chalf_write_back(b)

    @property
    def data(self):
        # same storage, no history, and (unlike detach) its own version counter, so writes
        # through .data do not trip the saved-tensor checks (PyTorch's semantics)
        t = _dispatch.wrap(self._data, self._dtype, self._device)
        if self._dtype.category == 4:       # (a quantized tensor's parameters)
            t._q = self._q
        return t

    @data.setter
    def data(self, other):
        self._data = other._data
        self._dtype = other._dtype

    def detach(self):
        t = _dispatch.wrap(self._data, self._dtype, self._device)
        t._base = self._base if self._base is not None else self
        if self._dtype.category == 4:
            t._q = self._q
        return t

    def detach_(self):
        if self._base is not None and self._base.requires_grad and self._node is not None:
            raise RuntimeError("Can't detach views in-place. Use detach() instead. If you are "
                               "using DistributedDataParallel (DDP) for training, and "
                               "gradient_as_bucket_view is set as True, gradients are views of "
                               "DDP buckets, and hence detach_() cannot be called on these "
                               "gradients. To fix this error, please refer to the "
                               "Optimizer.zero_grad() function in torch/optim/optimizer.py as "
                               "the solution.")
        self._node = None
        self._rg = False
        return self

    def retain_grad(self):
        if self._node is None:
            if not self._rg:
                raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
            return
        import weakref
        n = self._node
        if n.retain is None:
            n.retain = {}
        n.retain[self._oi] = weakref.ref(self)
        self._retain = True

    @property
    def retains_grad(self):
        return self._retain and self._node is not None

    def register_hook(self, hook):
        """hook(grad) -> Tensor or None, run when this tensor's gradient is computed; a returned
        tensor replaces the gradient. Hooks run in registration order."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._node is None:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)        # (one list: every handle removes from it)
            return _dispatch._Handle(self._hooks, hook)
        n = self._node
        if n.hooks is None:
            n.hooks = {}
        lst = n.hooks.setdefault(self._oi, [])
        lst.append(hook)
        return _dispatch._Handle(lst, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """hook(tensor) after a backward has accumulated into this leaf's .grad."""
        if self._node is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                               "tensors")
        if not self._rg:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.__dict__.get("_post_acc_hooks") is None:
            self._post_acc_hooks = []
        self._post_acc_hooks.append(hook)
        return _dispatch._Handle(self._post_acc_hooks, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        from .autograd import backward
        backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    # ---- conversion -------------------------------------------------------------------------
    def numpy(self, *, force=False):
        if _dispatch.STATE.tracer is not None:
            _dispatch.STATE.tracer.read_value(self)
        if self._device is not cpu:
            if not force:
                raise TypeError(f"can't convert {self._device} device type tensor to numpy. Use "
                                "Tensor.cpu() to copy the tensor to host memory first.")
            return _host(self._data)
        if self.requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        if self._dtype.round is not None or self._dtype.category == 4:   # (complex32, float8,
            # quantized: NumPy has none of them)
            raise TypeError(f"Got unsupported ScalarType {dt.tname(self._dtype)}")
        d = self._data
        # under compile() a traced tensor's data stands in for an array: ask for its value now
        return d if isinstance(d, np.ndarray) else np.asarray(d)

    def item(self):
        if _dispatch.STATE.tracer is not None:
            _dispatch.STATE.tracer.read_value(self)
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to "
                               "Scalar")
        if self._dtype.category == 4:       # a quantized tensor's value
            return self.dequantize().item()
        if self._device.type == "meta":
            raise RuntimeError("Tensor.item() cannot be called on meta tensors")
        a = self._data if self._device is cpu else _host(self._data)
        return a.reshape(()).item() if self._dtype is not dt.bfloat16 else \
            float(a.reshape(()).astype(np.float32))

    def tolist(self):
        if _dispatch.STATE.tracer is not None:
            _dispatch.STATE.tracer.read_value(self)
        if self._dtype.category == 4:
            raise RuntimeError("load_scalar: invalid type")
        a = self._data if self._device is cpu else _host(self._data)
        if self._dtype is dt.bfloat16:
            return a.astype(np.float32).tolist()
        return a.tolist()

    def __array__(self, dtype=None, copy=None):
        # np.asarray(t) is t.numpy() (shares memory, refuses a tensor that requires grad);
        # dtype= converts only when it differs; np.array(t) (copy=True) copies. As PyTorch's
        # __array__ (which takes no copy argument), copy=False is refused by NumPy's rule.
        if _dispatch.STATE.tracer is not None:
            _dispatch.STATE.tracer.read_value(self)
        if copy is False:
            raise ValueError("Unable to avoid copy while creating an array as requested.\nIf "
                             "using `np.array(obj, copy=False)` replace it with "
                             "`np.asarray(obj)` to allow a copy when needed (no behavior change "
                             "in NumPy 1.x).")
        if self._device.type == "meta":
            return self.numpy()         # (raises)
        if self._device is cpu:
            if self.requires_grad:
                raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                                   "tensor.detach().numpy() instead.")
            if self._dtype.round is not None:     # (complex32, float8)
                raise TypeError(f"Got unsupported ScalarType {dt.tname(self._dtype)}")
            a = self._data if isinstance(self._data, np.ndarray) else np.asarray(self._data)
        else:
            a = _host(self._data)
        r = a if dtype is None else a.astype(dtype, copy=False)
        return r.copy() if copy and r is a and self._device is cpu else r   # (_host copied)

    def __array_wrap__(self, array, context=None, return_scalar=False):
        # a NumPy ufunc applied to a tensor (np.exp(t), np.add(t, a)) gives a tensor over the
        # result, as PyTorch: a bool result as uint8, a 0-d result as a 0-d tensor
        if array.dtype == np.bool_:
            array = array.astype(np.uint8)
        from .creation import from_numpy
        return from_numpy(np.asarray(array))

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __bool__(self):
        if _dispatch.STATE.tracer is not None:
            _dispatch.STATE.tracer.read_value(self)
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with more than one value is ambiguous "
                               f"(shape {list(self._data.shape)})")
        if self._dtype.category == 4 or self._device.type == "meta":    # (item() says why)
            return bool(self.item())
        return bool(self._data.reshape(()))

    def _py_scalar(self, ctype):
        """The one value of self for int()/float(): PyTorch refuses more than one element
        (ValueError) and a complex value with an imaginary part (RuntimeError)."""
        if self._data.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        v = self.item()
        if isinstance(v, complex):
            if v.imag != 0:
                raise RuntimeError(f"value cannot be converted to type {ctype} without overflow")
            v = v.real
        return v

    def __int__(self):
        return int(self._py_scalar("int64_t"))

    def __float__(self):
        if self.requires_grad and STATE.grad_enabled:   # as PyTorch 2.13 (not item(), int())
            warnings.warn("Converting a tensor with requires_grad=True to a scalar may lead to "
                          "unexpected behavior.\nConsider using tensor.detach() first.",
                          UserWarning, stacklevel=2)
        return float(self._py_scalar("double"))

    def __index__(self):
        if _dispatch.STATE.tracer is not None:
            _dispatch.STATE.tracer.read_value(self)
        if self._dtype.category > 1 or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        if self._device.type == "meta":
            return self.item()      # (raises)
        return int(self._data.reshape(()))

    def __complex__(self):
        if self._data.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return complex(self.item())

    def __copy__(self):
        # copy.copy shares the storage (PyTorch rebuilds the tensor over the same storage): a
        # leaf with self's requires_grad, without its .grad or hooks
        t = type(self).__new__(type(self))
        t.__dict__.update({k: v for k, v in self.__dict__.items()
                           if k not in ("_grad", "_hooks", "_node", "_oi", "_view_src", "_retain",
                                        "_post_acc_hooks")})
        t._rg = self.requires_grad
        return t

    def __hash__(self):
        return id(self)

    def __reduce_ex__(self, proto):
        if self._dtype.category == 4:
            from .ao._qtensor import rebuild_q, qparams_record
            return (rebuild_q, (np.array(self._data), self._dtype.name, qparams_record(self)))
        from .serialization import _rebuild_tensor
        return (_rebuild_tensor, (np.array(_host(self._data)), self._dtype.name,
                                  self.requires_grad))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        if self._node is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support "
                               "the deepcopy protocol at the moment.  If you were attempting to "
                               "deepcopy a module, this may be because of a torch.nn.utils."
                               "weight_norm usage, see https://github.com/pytorch/pytorch/pull/"
                               "103001")
        t = type(self).__new__(type(self))
        t.__dict__.update({k: v for k, v in self.__dict__.items() if k not in ("_data", "_base",
                                                                            "_grad", "_vcount")})
        t._data = _deepcopy_view(self, memo)
        if t._data is None:
            t._data = self._data.copy(order="K")     # (a dense layout keeps its strides)
        else:
            t._base = memo[id(self._base)]
        t._dtype = self._dtype
        if self._grad is not None:
            import copy
            t._grad = copy.deepcopy(self._grad, memo)
        memo[id(self)] = t
        return t

    def __repr__(self, *, tensor_contents=None):
        from ._printing import tensor_repr
        t = type(self)      # (a user's subclass prints its name, as PyTorch: MyTensor([1.]))
        return tensor_repr(self) if t is Tensor or getattr(t, "_tf_plain", False) else \
            tensor_repr(self, t.__name__ + "(")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        from .overrides import new_subclass
        new_subclass(cls)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        from .overrides import default_torch_function
        return default_torch_function(cls, func, types, args, kwargs)

    @staticmethod
    def _make_subclass(cls, data, require_grad=False, **kwargs):
        from ._misc_api import make_subclass
        return make_subclass(cls, data, require_grad, **kwargs)

    def __format__(self, spec):
        if self._data.ndim == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    def type(self, dtype=None, non_blocking=False, **kwargs):
        if dtype is None:       # torch.FloatTensor, torch.cuda.FloatTensor: the type's name
            return f"torch.{'cuda.' if self.is_cuda else ''}{dt.tname(self._dtype)}Tensor"
        if isinstance(dtype, str):      # x.type("torch.cuda.HalfTensor")
            cls = _TYPED.get(dtype)
            if cls is None:
                raise ValueError(f"invalid type: '{dtype}'")
            dtype = cls
        if isinstance(dtype, _TypedMeta):   # x.type(torch.FloatTensor): dtype and device
            want_cuda = dtype.is_cuda
            dtype = dtype.dtype
            if want_cuda != self.is_cuda:     # (to() says why when there is no GPU)
                return self.to("cuda" if want_cuda else "cpu", dtype)
        return self.to(dtype)

    def type_as(self, other):
        return self.to(other._dtype)

    def to(self, *args, **kwargs):
        from .ops_math import cast
        dtype, device, copy, fmt = _to_args(args, kwargs)
        _mf.check("to", fmt)
        dev = canonical(device) if device is not None else self._device
        t = self
        if dtype is not None and dtype is not self._dtype:
            t = cast(self, dtype)
        elif copy and dev is self._device:
            t = self.clone()
        if dev is not self._device:
            t = _to_device(t, dev)
        if fmt is not None and fmt is not _mf.preserve_format:
            # PyTorch's to() aliases only when self's suggested format is fmt; else its copy
            # has empty_like(fmt)'s strides (so an ambiguous (8, 3, 1, 1) gets (3, 1, 3, 3))
            if _mf.is_channels_last(fmt):
                _mf.check_rank("to", t.ndim, fmt)
            if t is self and _mf.suggest_of(self._data) is not fmt:
                from compiler.ir.registry import REGISTRY
                t = _dispatch.rename(_dispatch.apply(REGISTRY["copy"], self), "ToCopyBackward0")
            if t is not self:
                t = _mf.lay_out(t, fmt)
        return t

    def cpu(self, memory_format=None):
        return self if self._device is cpu else _to_device(self, cpu)

    def cuda(self, device=None, non_blocking=False, memory_format=None):
        dev = canonical("cuda" if device is None else
                        f"cuda:{device}" if isinstance(device, int) else device)
        return self if dev is self._device else _to_device(self, dev)

    def float(self):
        return self.to(dt.float32)

    def double(self):
        return self.to(dt.float64)

    def half(self):
        return self.to(dt.float16)

    def bfloat16(self):
        return self.to(dt.bfloat16)

    def long(self):
        return self.to(dt.int64)

    def int(self):
        return self.to(dt.int32)

    def short(self):
        return self.to(dt.int16)

    def char(self):
        return self.to(dt.int8)

    def byte(self):
        return self.to(dt.uint8)

    def bool(self):
        return self.to(dt.bool_)

    def is_floating_point(self):
        return self._dtype.is_floating_point

    def is_complex(self):
        return self._dtype.is_complex

    def get_device(self):
        return -1 if self._device.type == "cpu" else (self._device.index or 0)

    def pin_memory(self):
        return self

    def is_pinned(self):
        return False

    def share_memory_(self):
        """Moves the storage to shared memory (see framework.multiprocessing) that forked
        children share and that can be sent to other processes; values, dtype and layout are
        kept. The storage is all the base tensor's memory: the base and every view or alias of
        it that is alive move together and keep sharing one memory, as PyTorch moves the
        storage. A no-op when already shared, and for cuda/interpret tensors (as for CUDA
        tensors in PyTorch). The gradient is not moved (Module.share_memory() moves it)."""
        dev = self._device
        if dev is not cpu:
            if dev.type == "meta":
                raise RuntimeError("_share_fd_: only available on CPU")
            return self
        if type(self._data) is np.ndarray and not self.is_shared():
            _share_storage(self)
        return self

    def is_shared(self):
        """True when the storage is in shared memory (always for cuda/interpret tensors, as
        PyTorch says of CUDA tensors)."""
        dev = self._device
        if dev is not cpu:
            return dev.type != "meta"
        a = self._data
        if type(a) is not np.ndarray:
            return False
        from .multiprocessing import _SharedMap
        return type(_mem_owner(a)[1]) is _SharedMap

    @property
    def layout(self):
        from . import strided
        return strided

    @property
    def is_sparse(self):
        return False

    @property
    def is_nested(self):
        return False

    @property
    def is_quantized(self):
        return self._dtype.category == 4      # (framework/ao/_qtensor.py)

    @property
    def is_meta(self):
        return self._device.type == "meta"

    @property
    def names(self):
        return (None,) * self.ndim

    @property
    def output_nr(self):
        return self._oi


def _deepcopy_view(t, memo):
    """deepcopy of a view of a leaf tensor's memory: the same view of the deep copy of that
    tensor (as PyTorch deep-copies storages once: views copied together share again), or None."""
    base, a = t._base, t._data
    if base is None or base._node is not None or not isinstance(a, np.ndarray) or \
            not isinstance(base._data, np.ndarray) or not base._data.flags.c_contiguous or \
            a.dtype != base._data.dtype or any(s < 0 for s in a.strides) or a.size == 0:
        return None
    off = _ptr(a) - _ptr(base._data)
    end = off + sum((n - 1) * s for n, s in zip(a.shape, a.strides)) + a.itemsize
    if off < 0 or off % a.itemsize or end > base._data.nbytes:
        return None
    import copy
    nb = copy.deepcopy(base, memo)
    if not isinstance(nb._data, np.ndarray) or not nb._data.flags.c_contiguous:
        return None
    return np.lib.stride_tricks.as_strided(nb._data.reshape(-1)[off // a.itemsize:], a.shape,
                                           a.strides)


def _mem_owner(a):
    """(array, owner) for ndarray a: the last ndarray of its .base chain, and the object that
    owns the memory -- that array when numpy allocated it, else the buffer it was made from
    (a shared tensor's mmap, behind numpy's memoryview)."""
    b = a.base
    while isinstance(b, np.ndarray):
        a, b = b, b.base
    if b is None:
        return a, a
    if isinstance(b, memoryview) and b.obj is not None:
        return a, b.obj
    return a, b


def _refcount(a):
    return sys.getrefcount(a)


def _calibrate_refcount():
    box = [np.empty(1)]     # one reference from a container; the locals as in _aliases
    arr, owner = _mem_owner(box[0])
    return _refcount(arr) - 1


_RC_OVERHEAD = _calibrate_refcount()


def _aliases(t):
    """(t and its base, the other tensors alive whose memory has the same owner: views and
    aliases of the base -- detach, .data, views of numpy views). Those are found by a scan of
    the objects the garbage collector tracks, made only when something beyond t and its base
    holds the memory's owner array (one reference count), or when numpy does not own it."""
    base = t._base if t._base is not None else t
    arr, owner = _mem_owner(base._data)
    if base is not t and (type(base._data) is not np.ndarray or _mem_owner(t._data)[1] is not
                          owner):
        base = t                # (memory of its own: not a view of its base's)
        arr, owner = _mem_owner(base._data)
    group = [base] if base is t else [base, t]
    if owner is arr:
        known = sum(1 for x in group if x._data is arr)
        known += len({id(x._data) for x in group if x._data is not arr and x._data.base is arr})
        if _refcount(arr) - _RC_OVERHEAD <= known:
            return group, []
    import gc
    seen = {id(x) for x in group}
    others = []
    for o in gc.get_objects():
        if issubclass(type(o), Tensor) and id(o) not in seen:
            d = o.__dict__.get("_data")
            if type(d) is np.ndarray and _mem_owner(d)[1] is owner:
                others.append(o)
                seen.add(id(o))
    return group, others


def _extent(a):
    """[lo, hi) bytes of ndarray a's elements (None for an empty array)."""
    if a.size == 0:
        return None
    lo = hi = _ptr(a)
    for n, st in zip(a.shape, a.strides):
        if st < 0:
            lo += (n - 1) * st
        else:
            hi += (n - 1) * st
    return lo, hi + a.itemsize


def _share_storage(t):
    """Move t's storage into one new shared mapping: the bytes of its base and of every tensor
    alive whose memory overlaps them (views, aliases; tensors over other parts of a foreign
    buffer are other storages, as in PyTorch), each tensor pointed at its same place there."""
    import ctypes
    from . import multiprocessing as _mp
    with _mp._lock:
        if t.is_shared():       # (another thread moved it meanwhile)
            return
        members, rest = _aliases(t)
        ext = {id(x._data): _extent(x._data) for x in members + rest}
        own = [e for e in (ext[id(x._data)] for x in members) if e is not None]
        lo = min((e[0] for e in own), default=None)
        hi = max((e[1] for e in own), default=None)
        grew = lo is not None
        while grew:             # (the overlap is transitive: add until nothing more overlaps)
            grew, left = False, []
            for x in rest:
                e = ext[id(x._data)]
                if e is None:
                    left.append(x)
                elif e[0] < hi and e[1] > lo:
                    members.append(x)
                    lo, hi, grew = min(lo, e[0]), max(hi, e[1]), True
                else:
                    left.append(x)
            rest = left
        if lo is None:
            lo = hi = 0
        else:                   # empty views inside the range go along
            members += [x for x in rest if ext[id(x._data)] is None and
                        lo <= _ptr(x._data) <= hi]
        pad = lo % 64           # (the arrays keep their alignment)
        mm = _mp._alloc(pad + hi - lo)
        u8 = np.frombuffer(mm, np.uint8)
        if hi > lo:
            ctypes.memmove(mm._addr + pad, lo, hi - lo)
        moved = {}
        for x in members:
            a = x._data
            if id(a) not in moved:
                off = pad + _ptr(a) - lo if a.size else 0
                n = np.ndarray(a.shape, a.dtype, buffer=u8, offset=off, strides=a.strides)
                if not a.flags.writeable:
                    n.flags.writeable = False
                moved[id(a)] = n
        for x in members:
            x._data = moved[id(x._data)]


def _ptr(a):
    if isinstance(a, np.ndarray):
        return a.__array_interface__["data"][0]
    return a.data.ptr                 # cupy.ndarray


def _host(a):
    from ._device_ops import host
    return host(a)


def _to_device(t, dev):
    """t's values on `dev`: a copy that autograd sees as ToCopyBackward0 (the gradient goes
    back to t's device)."""
    from ._device_ops import to_device
    out = _dispatch.wrap(to_device(t._data, dev), t._dtype)
    if STATE.grad_enabled and t.requires_grad:
        from .autograd.function import Function

        class ToCopy(Function):
            @staticmethod
            def forward(ctx, x):
                return out

            @staticmethod
            def backward(ctx, g):
                return _to_device(g, t._device)
        from .autograd.forward_ad import _fw_off
        with _fw_off():     # (the tangent is copied below; the Function has no jvp)
            out = _dispatch.rename(ToCopy.apply(t), "ToCopyBackward0")
    if t._fwt is not None:      # a dual tensor's copy carries its tangent, copied too
        from .autograd.forward_ad import _set_tangent
        _set_tangent(out, _to_device(t._fwt, dev))
    return out


# ---- legacy constructors: torch.Tensor(...), torch.FloatTensor(...), ... -----------------------

def _legacy_new(args, d, device):
    """Tensor(sizes...) is uninitialised memory, Tensor(data) copies data into dtype d,
    Tensor(tensor) aliases the tensor, Tensor() is empty."""
    from .creation import tensor as _tensor, empty
    if not args:
        return empty(0, dtype=d, device=device)
    if len(args) == 1:
        a = args[0]
        if isinstance(a, Tensor):
            return a
        if isinstance(a, Size):
            return empty(*a, dtype=d, device=device)
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            return _tensor(a, dtype=d, device=device)
    return empty(*args, dtype=d, device=device)


class _TypedMeta(type):
    # isinstance(x, torch.FloatTensor) asks for a cpu tensor of that dtype, and
    # isinstance(x, torch.cuda.FloatTensor) for a cuda one
    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj._dtype is cls.dtype and obj.is_cuda == cls.is_cuda

    def __call__(cls, *args, device=None):
        if cls.is_cuda:
            _need_cuda_type(f"{cls.__module__}.{cls.__name__}")
            device = "cuda" if device is None else device
        t = _legacy_new(args, cls.dtype, device)
        if t._dtype is not cls.dtype:
            raise TypeError(f"expected {cls.dtype} (got {t._dtype})")
        if cls.is_cuda and not t.is_cuda:      # Tensor(tensor) aliases; a cpu one is refused
            raise TypeError(f"expected {cls.__module__}.{cls.__name__} (got {t.type()})")
        return t


def _need_cuda_type(name):
    """PyTorch's CPU build: the torch.cuda.*Tensor types exist but cannot be used."""
    from . import cuda
    if not cuda.is_available():
        raise TypeError(f"type {name} not available. Torch not compiled with CUDA enabled.")


_TYPED = {}     # "torch.FloatTensor" / "torch.cuda.FloatTensor" -> the legacy type


def _typed(name, d, cuda=False):
    cls = _TypedMeta(name, (), {"dtype": d, "is_cuda": cuda,
                                "__module__": "torch.cuda" if cuda else "torch"})
    _TYPED[f"{cls.__module__}.{name}"] = cls
    return cls


FloatTensor = _typed("FloatTensor", dt.float32)
DoubleTensor = _typed("DoubleTensor", dt.float64)
HalfTensor = _typed("HalfTensor", dt.float16)
BFloat16Tensor = _typed("BFloat16Tensor", dt.bfloat16)
ByteTensor = _typed("ByteTensor", dt.uint8)
CharTensor = _typed("CharTensor", dt.int8)
ShortTensor = _typed("ShortTensor", dt.int16)
IntTensor = _typed("IntTensor", dt.int32)
LongTensor = _typed("LongTensor", dt.int64)
BoolTensor = _typed("BoolTensor", dt.bool_)
for _d in dt.ALL:      # x.type("torch.ComplexFloatTensor"): every dtype has a cpu type name
    if f"torch.{dt.tname(_d)}Tensor" not in _TYPED:
        _typed(f"{dt.tname(_d)}Tensor", _d)
# torch.cuda.FloatTensor & co, in this order (framework.cuda exports them)
CUDA_TYPES = tuple(_typed(c.__name__, c.dtype, cuda=True) for c in (
    FloatTensor, DoubleTensor, HalfTensor, BFloat16Tensor, ByteTensor, CharTensor, ShortTensor,
    IntTensor, LongTensor, BoolTensor))


def _chalf_write_back(b):
    """b is a complex32 tensor's real/imag/view_as_real: a float16 copy, as complex32 is held in
    complex64 arrays (runtime.dtypes). A write into it (or into a view of it) is written back
    into that tensor, as PyTorch's views write through; b does not follow later writes to it."""
    src, part = b.__dict__["_chalf_part"]
    a, dst = b._data, src._data
    if part == "pairs":
        dst.real[...] = a[..., 0]
        dst.imag[...] = a[..., 1]
    else:
        getattr(dst, part)[...] = a
    src._bump()
