"""MaskedTensor: a Tensor subclass holding data and a bool mask (True = specified). Its data is
an ordinary framework tensor, so autograd runs on it unchanged; ops reach MaskedTensor rules
either through methods defined here or, for primitives called on it (torch.exp(mt), mt + 1,
torch.where, views), through framework._dispatch's MaskedOperand path (see _rules.py)."""
import warnings

import framework as torch
from framework.tensor import Tensor
from framework._dispatch import MaskedOperand
from . import _ops

__all__ = ["MaskedTensor", "is_masked_tensor", "masked_tensor", "as_masked_tensor"]

_PROTOTYPE = ("The PyTorch API of MaskedTensors is in prototype stage and will change in the "
              "near future. Please open a Github issue for features requests and see our "
              "documentation on the torch.masked module for further information about the "
              "project.")
_OK_DTYPES = None


def is_masked_tensor(obj, /):
    return isinstance(obj, MaskedTensor)


def _no_data(self):
    # (reached by framework code that reads a tensor's array directly: not defined here)
    raise MaskedOperand("this operation is not supported for MaskedTensor; use get_data(), "
                        "to_tensor(value) or a torch.masked function")


def _validate(data, mask):
    global _OK_DTYPES
    if _OK_DTYPES is None:
        _OK_DTYPES = {torch.float16, torch.float32, torch.float64, torch.bool, torch.int8,
                      torch.int16, torch.int32, torch.int64}
    if mask.dtype is not torch.bool:
        raise TypeError("mask must have dtype bool.")
    if data.dtype not in _OK_DTYPES:
        raise TypeError(f"{data.dtype} is not supported in MaskedTensor.")
    if data.dim() != mask.dim():
        raise ValueError("data.dim() must equal mask.dim()")
    if data.size() != mask.size():
        raise ValueError("data.size() must equal mask.size()")


def _make(data, mask):
    """A MaskedTensor over `data` itself (no copy: its autograd history is kept)."""
    warnings.warn(_PROTOTYPE, UserWarning, stacklevel=3)
    _validate(data, mask)
    t = Tensor.__new__(MaskedTensor)
    t._masked_data = data
    t._masked_mask = mask
    t._dtype = data._dtype
    t._device = data._device
    return t


def _check_types(data, mask):
    if is_masked_tensor(data) or not isinstance(data, Tensor):
        raise TypeError("data must be a Tensor")
    if is_masked_tensor(mask) or not isinstance(mask, Tensor):
        raise TypeError("mask must be a Tensor")


def _fmt(v):
    return "{0:8.4f}".format(v) if isinstance(v, float) else str(v)


def _str(data, mask):
    if len(data.shape) == 1:
        els = [_fmt(v) for v in data.tolist()]
        ms = mask.tolist()
        width = max([8 if not m else len(e) for e, m in zip(els, ms)], default=0)
        return "[" + ", ".join(e if m else "--".rjust(width) for e, m in zip(els, ms)) + "]"
    subs = [_str(data[i], mask[i]) for i in range(data.shape[0])]
    subs = ["\n".join("  " + s for s in sub.split("\n")) for sub in subs]
    return "[\n" + ",\n".join(subs) + "\n]"


class MaskedTensor(Tensor):
    _data = property(_no_data)

    def __new__(cls, data, mask, requires_grad=False):
        _check_types(data, mask)
        warnings.warn(_PROTOTYPE, UserWarning, stacklevel=2)
        if data.requires_grad:
            warnings.warn("It is not recommended to create a MaskedTensor with a tensor that "
                          "requires_grad. To avoid this, you can use data.detach().clone()",
                          UserWarning, stacklevel=2)
        _validate(data, mask)
        t = Tensor.__new__(cls)
        t._masked_data = data.detach().clone().requires_grad_(requires_grad)
        t._masked_mask = mask.clone()
        t._dtype = data._dtype
        t._device = data._device
        return t

    def __init__(self, data, mask, requires_grad=False):
        pass

    # ---- metadata and autograd: those of the data ---------------------------------------
    @property
    def shape(self):
        return self._masked_data.shape

    def size(self, dim=None):
        return self._masked_data.size(dim)

    @property
    def ndim(self):
        return self._masked_data.ndim

    def dim(self):
        return self._masked_data.dim()

    def numel(self):
        return self._masked_data.numel()

    def __len__(self):
        return len(self._masked_data)

    @property
    def requires_grad(self):
        return self._masked_data.requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        self._masked_data.requires_grad_(flag)

    def requires_grad_(self, requires_grad=True):
        self._masked_data.requires_grad_(requires_grad)
        return self

    @property
    def is_leaf(self):
        return self._masked_data.is_leaf

    @property
    def grad_fn(self):
        return self._masked_data.grad_fn

    @property
    def grad(self):
        # the gradient with this tensor's mask (MaskedTensor Overview: x.grad is masked too)
        g = self._masked_data.grad
        return None if g is None else _make(g, self._masked_mask)

    @grad.setter
    def grad(self, g):
        self._masked_data.grad = g._masked_data if is_masked_tensor(g) else g

    def retain_grad(self):
        self._masked_data.retain_grad()

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        if is_masked_tensor(gradient):
            gradient = gradient._masked_data
        self._masked_data.backward(gradient, retain_graph, create_graph, inputs)

    def detach(self):
        return _make(self._masked_data.detach(), self._masked_mask)

    def clone(self, *, memory_format=None):
        return _make(self._masked_data.clone(), self._masked_mask.clone())

    def contiguous(self, memory_format=None):
        return _make(self._masked_data.contiguous(), self._masked_mask.contiguous())

    # ---- the MaskedTensor API -----------------------------------------------------------
    def get_data(self):
        return self._masked_data

    def get_mask(self):
        return self._masked_mask

    def to_tensor(self, value):
        return self._masked_data.masked_fill(~self._masked_mask, value)

    def is_sparse_coo(self):
        return False

    def is_sparse_csr(self):
        return False

    @property
    def is_sparse(self):
        return False

    def __repr__(self, *, tensor_contents=None):
        data, mask = self._masked_data.detach(), self._masked_mask
        if data.dim() == 0:
            s = _fmt(data.item()) if mask.item() else "--"
            return f"MaskedTensor({s}, {mask.item()})"
        s = _str(data, mask)
        return "MaskedTensor(\n" + "\n".join("  " + x for x in s.split("\n")) + "\n)"

    __str__ = __repr__

    def __format__(self, spec):
        return object.__format__(self, spec)

    def __lt__(self, other):
        # (PyTorch's own: keeps this tensor's mask, other's mask is not checked)
        o = other._masked_data if is_masked_tensor(other) else other
        return _make(self._masked_data < o, self._masked_mask)

    def __getitem__(self, idx):
        return _make(self._masked_data[idx], self._masked_mask[idx])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        raise TypeError("bool() of a MaskedTensor is not defined; use to_tensor(value)")

    def item(self):
        return self._masked_data.item()

    def tolist(self):
        return self._masked_data.tolist()

    def numpy(self, *, force=False):
        raise TypeError("MaskedTensor has no numpy(); use to_tensor(value).numpy()")

    def where(self, condition, other):
        return torch.where(condition, self, other)

    # ---- reductions and normalisations --------------------------------------------------
    def _reduce(self, fn, dim, keepdim, dtype, **kw):
        mask = self._masked_mask
        if dim is None:
            r = getattr(_ops, fn)(self, mask=mask, **kw)
            return _make(r, mask.any())
        r = getattr(_ops, fn)(self, dim=dim, keepdim=keepdim, dtype=dtype, mask=mask, **kw)
        out = mask
        for d in sorted((dim,) if isinstance(dim, int) else dim, reverse=True):
            out = out.any(dim=d, keepdim=keepdim)
        return _make(r, out)

    def sum(self, dim=None, keepdim=False, dtype=None):
        return self._reduce("sum", dim, keepdim, dtype)

    def mean(self, dim=None, keepdim=False, dtype=None):
        return self._reduce("mean", dim, keepdim, dtype)

    def prod(self, dim=None, keepdim=False, dtype=None):
        return self._reduce("prod", dim, keepdim, dtype)

    def amax(self, dim=None, keepdim=False):
        return self._reduce("amax", dim, keepdim, None)

    def amin(self, dim=None, keepdim=False):
        return self._reduce("amin", dim, keepdim, None)

    def argmax(self, dim=None, keepdim=False):
        return self._reduce("argmax", dim, keepdim, None)

    def argmin(self, dim=None, keepdim=False):
        return self._reduce("argmin", dim, keepdim, None)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return self._reduce("var", dim, keepdim, None, unbiased=unbiased, correction=correction)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return self._reduce("std", dim, keepdim, None, unbiased=unbiased, correction=correction)

    def _logical(self, fn, dim, keepdim):
        # masked-out elements count as True for all (PyTorch's), as False for any
        data, mask = self._masked_data, self._masked_mask
        filled = data.masked_fill(~mask, fn == "all")
        if dim is None:
            return _make(getattr(filled, fn)(), mask.any())
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        return _make(getattr(filled, fn)(dim=dims, keepdim=keepdim), mask.any(dims, keepdim))

    def all(self, dim=None, keepdim=False):
        return self._logical("all", dim, keepdim)

    def any(self, dim=None, keepdim=False):
        return self._logical("any", dim, keepdim)

    def softmax(self, dim, dtype=None):
        # PyTorch's masked softmax: 0 where masked out, NaN along a fully masked-out row (a
        # constant there, so no NaN flows back to the data's gradient)
        mask = self._masked_mask
        r = _ops.softmax(self._masked_data, dim, dtype=dtype, mask=mask)
        r = torch.where(mask, r, 0)
        return _make(torch.where(mask.any(dim, keepdim=True), r, float("nan")), mask)

    def log_softmax(self, dim, dtype=None):
        r = _ops.log_softmax(self._masked_data, dim, dtype=dtype, mask=self._masked_mask)
        return _make(r, self._masked_mask)


def _passthrough(name):
    # views and reshapes: the same op on data and mask (PyTorch's passthrough functions)
    def f(self, *args, **kwargs):
        d = getattr(self._masked_data, name)(*args, **kwargs)
        m = getattr(self._masked_mask, name)(*args, **kwargs)
        if isinstance(d, (tuple, list)):
            return type(d)(_make(a, b) for a, b in zip(d, m))
        return _make(d, m)
    f.__name__ = name
    return f


for _n in ("view", "reshape", "t", "transpose", "permute", "unsqueeze", "squeeze", "flatten",
           "expand", "expand_as", "select", "narrow", "split", "unbind", "movedim"):
    setattr(MaskedTensor, _n, _passthrough(_n))


def masked_tensor(data, mask, requires_grad=False):
    return MaskedTensor(data, mask, requires_grad)


_FROM_VALUES = None


def _from_values():
    # data -> MaskedTensor's data; the gradient leaves as a MaskedTensor with the mask, so the
    # ops before it differentiate masked too (PyTorch's Constructor: no NaN from the masked-out
    # elements of x / 0, MaskedTensor tutorial "Distinguishing between 0 and NaN gradient")
    global _FROM_VALUES
    if _FROM_VALUES is None:
        from framework.autograd import Function

        class Constructor(Function):
            @staticmethod
            def forward(ctx, data, mask):
                ctx.mask = mask
                return data.clone()

            @staticmethod
            def backward(ctx, g):
                return (g if is_masked_tensor(g) else _make(g, ctx.mask)), None
        _FROM_VALUES = Constructor
    return _FROM_VALUES


def as_masked_tensor(data, mask):
    """A MaskedTensor differentiable with respect to data (its gradient is masked)."""
    _check_types(data, mask)
    mask = mask.clone()
    if data.requires_grad:
        data = _from_values().apply(data, mask)
    else:
        data = data.clone()
    return _make(data, mask)
