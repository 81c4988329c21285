"""Bind the functional ops as Tensor methods and operators (x.add(y), x + y, x.add_(y), x[i]).
Each op keeps its single definition in ops_*.py; this file only wires names."""
import numpy as _np

from compiler.ir.registry import REGISTRY
from . import ops_math as M, ops_shape as S, ops_index as I, ops_linalg as L, ops_sort as O
from . import creation as C
from .tensor import Tensor
from ._dispatch import apply
from . import _dispatch
from ._sparse_storage import SparseLayoutError

P = REGISTRY

_METHODS = {
    M: """neg negative abs absolute sign sgn exp exp2 log log2 log10 log1p expm1 sqrt rsqrt sin cos tan
          asin acos atan arcsin arccos arctan sinh cosh tanh sigmoid erf erfinv floor ceil trunc fix
          reciprocal logical_not bitwise_not isnan isinf isfinite mul multiply floor_divide
          remainder fmod maximum minimum atan2 arctan2 eq ne lt le gt ge greater greater_equal less
          less_equal not_equal logical_and logical_or logical_xor bitwise_and bitwise_or bitwise_xor
          bitwise_left_shift bitwise_right_shift add sub subtract div divide true_divide pow square
          float_power clone round frac relu clamp clip clamp_min clamp_max lerp xlogy logit hypot
          addcmul addcdiv
          isclose allclose equal nan_to_num sum nansum prod mean nanmean var std amax amin max min
          argmax argmin aminmax all any count_nonzero cumsum cumprod logcumsumexp logsumexp norm dist softmax
          log_softmax isneginf isposinf deg2rad rad2deg lgamma digamma i0 sinc
          acosh arccosh asinh arcsinh atanh arctanh erfc copysign fmax fmin frexp ldexp gcd lcm
          heaviside logaddexp logaddexp2 nextafter signbit positive""",
    S: """view reshape view_as reshape_as flatten ravel unflatten squeeze unsqueeze permute transpose
          swapaxes swapdims t movedim moveaxis expand expand_as broadcast_to contiguous narrow select
          unbind split chunk tensor_split hsplit vsplit flip fliplr flipud roll repeat tile
          repeat_interleave tril triu diagonal diag diag_embed diagflat trace adjoint
          diagonal_scatter slice_scatter""",
    I: """index_select masked_fill masked_select gather scatter scatter_add scatter_reduce index_add
          index_copy index_fill index_put take take_along_dim nonzero argwhere put_""",
    L: """matmul mm bmm mv dot inner vdot outer ger addmm addmv baddbmm addbmm kron cross
          slogdet logdet matrix_power matrix_exp pinverse cholesky_solve lu lu_solve orgqr geqrf
          ormqr""",
    O: """sort argsort msort topk kthvalue median nanmedian mode unique unique_consecutive bincount
          histc quantile cummax cummin nanquantile cov corrcoef histogram renorm""",
}

for mod, names in _METHODS.items():
    for n in names.split():
        setattr(Tensor, n, getattr(mod, n))

# (the method's keyword is split_size, torch.split's is split_size_or_sections)
Tensor.split = lambda self, split_size, dim=0: S.split(self, split_size, dim)
Tensor.T = property(S._T)
Tensor.mT = property(S._mT)


def _H(self):
    if self.ndim == 0:
        import warnings
        warnings.warn("Tensor.H is deprecated on 0-D tensors. Consider using x.conj().",
                      UserWarning, stacklevel=2)
        return M.conj(self)
    if self.ndim != 2:
        raise RuntimeError(f"tensor.H is only supported on matrices (2-D tensors). Got "
                           f"{self.ndim}-D tensor." + (" For batches of matrices, consider using "
                                                      "tensor.mH" if self.ndim > 2 else ""))
    return S.adjoint(self)


Tensor.H = property(_H)
Tensor.mH = property(S._mH)


# complex: .real/.imag are writable views (z.real = x writes into z, as torch)
def _set_part(name):
    def setter(self, value):
        getattr(S, name)(self).copy_(value)
    return setter


Tensor.real = property(S.real, _set_part("real"))
Tensor.imag = property(S.imag, _set_part("imag"))
for _n in ("angle", "conj", "conj_physical", "resolve_conj", "resolve_neg", "is_conj", "is_neg"):
    setattr(Tensor, _n, getattr(M, _n))
Tensor.conj_physical_ = lambda self: M.inplace(self, "conj") if self._dtype.is_complex else self
Tensor.cast = M.cast
Tensor.copy_ = M.copy_
Tensor.fill_ = M.fill_
Tensor.zero_ = M.zero_
Tensor.det = lambda self: L.det(self)
Tensor.inverse = lambda self: L.inverse(self)
Tensor.cholesky = lambda self, upper=False: L.cholesky(self, upper)
Tensor.cholesky_inverse = lambda self, upper=False: L.cholesky_inverse(self, upper)
Tensor.triangular_solve = lambda self, A, upper=True, transpose=False, unitriangular=False: \
    L.triangular_solve(self, A, upper, transpose, unitriangular)


def _new(make):
    """Tensor.new_*: dtype and device default to self's; requires_grad is honoured."""
    def f(self, *args, dtype=None, device=None, requires_grad=False, layout=None,
          pin_memory=False):
        return make(*args, dtype=dtype or self.dtype,
                    device=self.device if device is None else device,
                    requires_grad=requires_grad)
    f.__name__ = "new_" + make.__name__
    return f


def _zeros(*size, dtype=None, device=None, requires_grad=False):
    # (new_zeros is empty + zero_ in PyTorch: the factories' negative-size message, not zeros')
    return C._filled(C._sizes("new_zeros", size, None), 0, dtype, device, requires_grad, None)


_zeros.__name__ = "zeros"
Tensor.new_zeros, Tensor.new_ones, Tensor.new_empty = _new(_zeros), _new(C.ones), _new(C.empty)
Tensor.new_full = _new(C.full)


def _new_tensor(self, data, dtype=None, device=None, requires_grad=False, layout=None,
                pin_memory=False):
    if isinstance(data, Tensor):
        import warnings
        warnings.warn("To copy construct from a tensor, it is recommended to use sourceTensor."
                      "detach().clone() or sourceTensor.detach().clone().requires_grad_(True), "
                      "rather than tensor.new_tensor(sourceTensor).", UserWarning, stacklevel=2)
        return data.detach().to(device=self.device if device is None else device,
                                dtype=dtype or self.dtype, copy=True).requires_grad_(requires_grad)
    return C.tensor(data, dtype=dtype or self.dtype,
                    device=self.device if device is None else device,
                    requires_grad=requires_grad)


Tensor.new_tensor = _new_tensor
Tensor.uniform_ = lambda self, a=0.0, b=1.0, *, generator=None: C.uniform_(self, a, b, generator)
Tensor.normal_ = lambda self, mean=0.0, std=1.0, *, generator=None: C.normal_(self, mean, std, generator)
Tensor.bernoulli_ = lambda self, p=0.5, *, generator=None: C.bernoulli_(self, p, generator)
Tensor.bernoulli = lambda self, p=None, *, generator=None: C.bernoulli(self, p, generator=generator)


def _random_(self, *args, generator=None, **kw):
    """random_(from, to) / random_(to) (one positional bound is `to`: [0, to)) / random_()."""
    if "from" in kw:
        kw["from_"] = kw.pop("from")
    if len(args) == 1 and "to" not in kw:
        return C.random_(self, 0, args[0], generator)
    return C.random_(self, *args, generator=generator, **kw)


Tensor.random_ = _random_
Tensor.exponential_ = lambda self, lambd=1.0, *, generator=None: C.exponential_(self, lambd, generator)
Tensor.multinomial = lambda self, n, replacement=False, *, generator=None: C.multinomial(
    self, n, replacement, generator=generator)
Tensor.size = Tensor.size
Tensor.__getitem__ = I.getitem
Tensor.__setitem__ = I.setitem


# in-place forms: x.add_(y) ----------------------------------------------------------------------

def _inplace_prim(name, prim=None):
    prim = prim or name

    def f(self, *args, **kw):
        if prim in M._TENSOR_BOTH and args and not isinstance(args[0], Tensor):
            raise TypeError(f"{name}_(): argument 'other' (position 1) must be Tensor, not "
                            f"{type(args[0]).__name__}")
        args = tuple(M.as_tensor_arg(a) for a in args)
        if prim == "pow" and args:          # x.pow_(-1), x **= -1 on integers: as x.pow(-1)
            M.check_int_pow(self, args[0])
        return M.inplace(self, prim, *args, **kw)
    f.__name__ = name + "_"
    return f


for _n in ("neg abs sign exp exp2 log log2 log10 log1p expm1 sqrt rsqrt sin cos tan asin acos atan "
           "sinh cosh tanh sigmoid erf floor ceil trunc reciprocal logical_not bitwise_not mul "
           "floor_divide remainder fmod atan2 eq ne lt le gt ge logical_and logical_or logical_xor "
           "bitwise_and bitwise_or bitwise_xor bitwise_left_shift bitwise_right_shift pow").split():
    setattr(Tensor, _n + "_", _inplace_prim(_n))
Tensor.arctan_, Tensor.arcsin_, Tensor.arccos_ = Tensor.atan_, Tensor.asin_, Tensor.acos_
for _n in ("lgamma", "digamma", "erfinv", "i0"):
    setattr(Tensor, _n + "_", _inplace_prim(_n))
Tensor.polygamma = lambda self, n: M.polygamma(n, self)


Tensor.polygamma_ = lambda self, n: M.inplace(self, "polygamma", n=n)   # meta checks n
Tensor.mvlgamma = lambda self, p: M.mvlgamma(self, p)
Tensor.multiply_ = Tensor.mul_
Tensor.fix_ = Tensor.trunc_
Tensor.negative_ = Tensor.neg_


def _abs_(self):
    # torch refuses before anything else: |z| is real, so it can't be written back into z
    if self._dtype.is_complex:
        raise RuntimeError("In-place abs is not supported for complex tensors.")
    return M.inplace(self, "abs")


_abs_.__name__ = "abs_"
Tensor.abs_ = _abs_
Tensor.absolute_ = Tensor.abs_


def _via(fn_out_of_place):
    """In-place form of a composite op: compute, check, then write with history."""
    def f(self, *args, **kw):
        src = self
        if _dispatch.STATE.tracer is not None:
            # traced: compute from a snapshot, so the region input keeps self's history from
            # before the write (self takes the result's); as _commit does for primitives
            src = _dispatch.STATE.tracer.snapshot(self)
        elif _dispatch.VMAP is not None:        # (see framework.func.vmap.snapshot)
            from .func.vmap import snapshot
            src = snapshot(self)
        try:
            r = fn_out_of_place(src, *args, **kw)
        except NotImplementedError:
            # binary ops: PyTorch checks that the result type casts into self before the
            # kernel's dtype support (bool.hypot_(long) is the cast error)
            if fn_out_of_place.__name__ in _VIA_BINARY and args and isinstance(args[0], Tensor):
                from compiler.ir.registry import promote
                _cast_check(self, promote(self, args[0]), fn_out_of_place.__name__)
            raise
        return _assign(self, r, fn_out_of_place.__name__)
    f.__name__ = fn_out_of_place.__name__ + "_"
    return f


_VIA_BINARY = ("hypot", "xlogy", "ldexp", "lcm", "heaviside")


def _cast_check(self, d, name):
    from runtime import dtypes as dt
    if d.category > self.dtype.category:
        raise RuntimeError(f"result type {dt.tname(d)} can't be cast to the desired output type "
                           f"{dt.tname(self.dtype)} ({name}_ on a tensor of shape "
                           f"{list(self.shape)})")


def _assign(self, r, name):
    if _dispatch.VMAP is not None:      # a batched self or result: vmap writes it back
        from .func.vmap import batched_level, write_back
        if batched_level(self) is not None or batched_level(r) is not None:
            return write_back(self, r)
    M.check_writable(self, name + "_")
    if r.shape != self.shape:
        raise RuntimeError(f"{name}_: output with shape {list(self.shape)} doesn't match the "
                           f"broadcast shape {list(r.shape)}")
    _cast_check(self, r.dtype, name)
    if _dispatch.FWAD is not None:       # a dual level: self takes r's tangent
        from .autograd.forward_ad import assign
        assign(self, r)
    import numpy as np
    from ._dispatch import STATE
    if STATE.tracer is not None:
        if STATE.grad_enabled and r.requires_grad:
            M.check_inplace_leaf(self)
        return STATE.tracer.assign(self, r)
    if STATE.grad_enabled and r.requires_grad:
        M.check_inplace_leaf(self)
        M.store(self, r._data)
        self._node, self._oi = r._node, r._oi
        M.propagate_view_write(self)
    else:
        M.store(self, r._data)
    self._bump()
    return self


def _add_(self, other, *, alpha=1):
    try:
        if alpha != 1:
            other = M.mul(other, alpha) if isinstance(other, Tensor) else other * alpha
        return M.inplace(self, "add", M.as_tensor_arg(other))
    except SparseLayoutError:          # dense.add_(sparse): framework.sparse (nothing written)
        from .sparse import add_
        return add_(self, other, alpha)


def _sub_(self, other, *, alpha=1):
    try:
        if alpha != 1:
            other = M.mul(other, alpha) if isinstance(other, Tensor) else other * alpha
        return M.inplace(self, "sub", M.as_tensor_arg(other))
    except SparseLayoutError:
        from .sparse import add_
        return add_(self, other, -alpha)


def _div_(self, other, *, rounding_mode=None):
    if rounding_mode is None:
        return M.inplace(self, "div", M.as_tensor_arg(other))
    return _assign(self, M.div(self, other, rounding_mode=rounding_mode), "div")


Tensor.add_ = _add_
Tensor.sub_ = Tensor.subtract_ = _sub_
Tensor.div_ = Tensor.divide_ = Tensor.true_divide_ = _div_
for _f in (M.clamp, M.clamp_min, M.clamp_max, M.lerp, M.round, M.frac, M.relu, M.square,
           M.maximum, M.minimum, M.nan_to_num, M.cumsum, M.cumprod, M.logit, S.tril, S.triu,
           I.masked_fill, I.scatter, I.scatter_add, I.scatter_reduce, I.index_add, I.index_copy,
           I.index_fill, I.index_put, L.addmm, L.baddbmm, M.xlogy, M.hypot, M.addcmul, M.addcdiv, M.mvlgamma, M.sinc):
    setattr(Tensor, _f.__name__ + "_", _via(_f))
_clamp_via = Tensor.clamp_


def _clamp_(self, min=None, max=None):
    if self._dtype.category == 4:      # (PyTorch's quantized clamp has no in-place form)
        from .ao._qtensor import clamp_refusal
        raise clamp_refusal(self, "clamp", (min, max))
    return _clamp_via(self, min, max)


Tensor.clamp_ = Tensor.clip_ = _clamp_

# in-place forms of the inverse hyperbolics, erfc, copysign, ... and torch's aliases
for _n in ("acosh", "asinh", "atanh", "erfc", "copysign", "nextafter", "gcd"):
    setattr(Tensor, _n + "_", _inplace_prim(_n))
Tensor.arccosh_, Tensor.arcsinh_, Tensor.arctanh_ = Tensor.acosh_, Tensor.asinh_, Tensor.atanh_
for _f in (M.lcm, M.ldexp, M.heaviside, M.deg2rad, M.rad2deg):
    setattr(Tensor, _f.__name__ + "_", _via(_f))
Tensor.arctan2_ = Tensor.atan2_
Tensor.greater_, Tensor.greater_equal_, Tensor.less_, Tensor.less_equal_, Tensor.not_equal_ = (
    Tensor.gt_, Tensor.ge_, Tensor.lt_, Tensor.le_, Tensor.ne_)
Tensor.sgn_ = lambda self: M.inplace(self, "sgn" if self._dtype.is_complex else "sign")


def _float_power_(self, exponent):
    # the result is float64 (complex128 with a complex operand): only such a base can take it
    from runtime import dtypes as dt
    cx = self._dtype.is_complex or isinstance(exponent, complex) or (
        isinstance(exponent, Tensor) and exponent._dtype.is_complex)
    want = dt.complex128 if cx else dt.float64
    if self._dtype is not want:
        raise RuntimeError(f"the base given to float_power_ has dtype {dt.tname(self._dtype)} but "
                           f"the operation's result requires dtype {dt.tname(want)}")
    return _assign(self, M.float_power(self, exponent), "float_power")


Tensor.float_power_ = _float_power_


def _become(self, view):
    """An in-place view op (squeeze_, t_, ...): self takes the view r of its own memory, with
    r's history (under compile() r is traced, so no value is read)."""
    if _dispatch.STATE.grad_enabled:     # torch refuses these on a leaf that requires grad
        M.check_inplace_leaf(self)
    tr = _dispatch.STATE.tracer
    if tr is not None:
        from ._compile.lazy import is_sym
        import weakref
    if tr is not None and not is_sym(self):
        # traced, on a concrete tensor (an argument, a buffer): its metadata changes for the
        # caller too, so take the view of its real memory now (no value is read); a replay
        # would skip this, so the trace is not replayed
        tr.concrete_reads += 1
        _dispatch.STATE.tracer = None
        try:
            r = view()
        finally:
            _dispatch.STATE.tracer = tr
    else:
        r = view()
        if tr is not None and not any(w() is self for w in tr.tracked):
            # self now holds the view's symbolic value: the region must compute it
            tr.tracked.append(weakref.ref(self))
    self._data, self._node, self._oi = r._data, r._node, r._oi
    return self


def _squeeze_(self, dim=None, *more):
    return _become(self, lambda: S.squeeze(self, dim, *more))


def _unsqueeze_(self, dim):
    return _become(self, lambda: S.unsqueeze(self, dim))


def _t_(self):
    if self.ndim > 2:
        raise RuntimeError(f"t_() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
    return _become(self, lambda: S.t(self))


def _transpose_(self, d0, d1):
    return _become(self, lambda: S.transpose(self, d0, d1))


Tensor.squeeze_ = _squeeze_
Tensor.unsqueeze_ = _unsqueeze_
Tensor.t_ = _t_
Tensor.transpose_ = _transpose_
Tensor.resize_ = S._resize_         # (torch's storage semantics: ops_shape._resize_)
Tensor.resize_as_ = S.resize_as_
from ._misc_api import resize as _resize, resize_as as _resize_as, as_subclass as _as_subclass  # noqa: E402,E501
Tensor.resize, Tensor.resize_as, Tensor.as_subclass = _resize, _resize_as, _as_subclass


# operators ------------------------------------------------------------------------------------

def _operand(other):
    """Python operators take a tensor, a Python number or a NumPy scalar; anything else (None,
    str, list, tuple, object) is NotImplemented, as in PyTorch: t + [1] and t < None are
    TypeErrors, while t == None is False and t != 'a' is True (Python's identity fallback)."""
    return isinstance(other, (Tensor, bool, int, float, complex, _np.generic))


_PY_NUMBERS = frozenset((bool, int, float, complex))


def _binop(prim):
    p = P[prim]
    defer = prim not in ("eq", "ne")

    def f(self, other):
        if isinstance(other, Tensor) or type(other) in _PY_NUMBERS:   # (as_tensor_arg keeps them)
            return apply(p, self, other)
        if defer and isinstance(other, _np.ndarray):
            # PyTorch's operators take no ndarray: NumPy's reflected operator computes it
            # (t + a is np.add(t, a), wrapped back by Tensor.__array_wrap__; a + t and t < a
            # are TypeErrors)
            return NotImplemented
        if not (_operand(other) or isinstance(other, _np.ndarray)):   # (t == a: a tensor)
            return NotImplemented
        return apply(p, self, M.as_tensor_arg(other))
    return f


# grad_fn names of the reflected operators whose PyTorch form is another op (1 - x is rsub,
# 1 / x is reciprocal(x) * 1)
_RNAME = {"sub": lambda o: "RsubBackward0" if isinstance(o, Tensor) else "RsubBackward1",
          "div": lambda o: "MulBackward0"}


def _rbinop(prim):
    p = P[prim]
    name = _RNAME.get(prim)

    def f(self, other):
        if isinstance(other, _np.ndarray):
            # (PyTorch's a / t is t.reciprocal() * a: NumPy's multiply, wrapped back)
            return _np.multiply(M.reciprocal(self), other) if prim == "div" else NotImplemented
        if not _operand(other):
            return NotImplemented
        o = M.as_tensor_arg(other)
        if prim == "div" and not isinstance(o, Tensor):
            # PyTorch computes scalar / t as t.reciprocal() * scalar, so its values round
            # through the reciprocal (2.5 / t at float32 is 0.83333337 for t = 3, not 0.8333333)
            return apply(P["mul"], M.reciprocal(self), o)
        r = apply(p, o, self)
        return r if name is None else _dispatch.rename(r, name(o))
    return f


def _iop(method):
    def f(self, other):
        if isinstance(other, _np.ndarray) or not _operand(other):   # t += a is t = t + a
            return NotImplemented
        return getattr(self, method)(other)
    return f


for _op, _prim in (("add", "add"), ("sub", "sub"), ("mul", "mul"), ("truediv", "div"),
                   ("floordiv", "floor_divide"), ("mod", "remainder"), ("pow", "pow"),
                   ("and", "bitwise_and"), ("or", "bitwise_or"), ("xor", "bitwise_xor"),
                   ("lshift", "bitwise_left_shift"), ("rshift", "bitwise_right_shift")):
    setattr(Tensor, f"__{_op}__", _binop(_prim))
    setattr(Tensor, f"__r{_op}__", _rbinop(_prim))
for _op, _m in (("add", "add_"), ("sub", "sub_"), ("mul", "mul_"), ("truediv", "div_"),
                ("floordiv", "floor_divide_"), ("mod", "remainder_"), ("pow", "pow_"),
                ("and", "bitwise_and_"), ("or", "bitwise_or_"), ("xor", "bitwise_xor_"),
                ("lshift", "bitwise_left_shift_"), ("rshift", "bitwise_right_shift_")):
    setattr(Tensor, f"__i{_op}__", _iop(_m))
for _op, _prim in (("eq", "eq"), ("ne", "ne"), ("lt", "lt"), ("le", "le"), ("gt", "gt"),
                   ("ge", "ge")):
    setattr(Tensor, f"__{_op}__", _binop(_prim))


def _pow(self, other):
    if isinstance(other, _np.ndarray) or not _operand(other):
        return NotImplemented
    return M.pow(self, other)


def _rpow(self, other):
    if isinstance(other, _np.ndarray) or not _operand(other):
        return NotImplemented
    return M.pow(other, self)


Tensor.__pow__ = _pow
Tensor.__rpow__ = _rpow
Tensor.__neg__ = lambda self: apply(P["neg"], self)
Tensor.__pos__ = lambda self: self
Tensor.__abs__ = lambda self: apply(P["abs"], self)


def _invert(self):
    if self._dtype.category >= 2:       # Python's operator is refused before any kernel
        raise TypeError(f"~ (operator.invert) is only implemented on integer and Boolean-type "
                        f"tensors (got {self._dtype} of shape {list(self.shape)})")
    return apply(P["bitwise_not"], self)


Tensor.__invert__ = _invert
Tensor.__matmul__ = lambda self, other: NotImplemented if not isinstance(other, Tensor) \
    else L.matmul(self, other)
Tensor.__rmatmul__ = lambda self, other: NotImplemented if not isinstance(other, Tensor) \
    else L.matmul(other, self)
Tensor.__imatmul__ = lambda self, other: NotImplemented if not isinstance(other, Tensor) \
    else _assign(self, L.matmul(self, other), "matmul")
Tensor.__hash__ = lambda self: id(self)


def _contains(self, el):
    if not isinstance(el, (Tensor, bool, int, float, complex)):
        raise RuntimeError(f"Tensor.__contains__ only supports Tensor or scalar, but you passed in "
                           f"a {type(el)}.")
    return bool(M.any(M.eq(self, el)))


Tensor.__contains__ = _contains

# views/scatters of slices, masked/index scatters and small queries (ops_shape, ops_index)
for _n in ("split_with_sizes", "dsplit", "as_strided", "as_strided_scatter", "select_scatter",
           "is_nonzero", "is_same_size", "is_signed"):
    setattr(Tensor, _n, getattr(S, _n))
Tensor.dim_order, Tensor.new_empty_strided = S._dim_order, S._new_empty_strided
Tensor.cdouble, Tensor.cfloat, Tensor.chalf = S._cdouble, S._cfloat, S._chalf
for _n in ("masked_scatter", "masked_scatter_", "index_reduce", "index_reduce_", "fill_diagonal_",
           "put"):
    setattr(Tensor, _n, getattr(I, _n))
Tensor.positive = M.positive

# the remaining torch Tensor methods: storage-level ops (ops_shape), random fills and the legacy
# constructor (creation), legacy linalg method forms (ops_linalg), Python-callable maps (ops_index)
Tensor.set_, Tensor.as_strided_, Tensor.sum_to_size = S._set_, S.as_strided_, S._sum_to_size
Tensor.swapaxes_ = Tensor.swapdims_ = S._swapaxes_
for _n in ("unsafe_chunk", "unsafe_split", "unsafe_split_with_sizes", "narrow_copy"):
    setattr(Tensor, _n, getattr(S, _n))
Tensor.nonzero_static, Tensor.where = I.nonzero_static, I._where_method
Tensor.apply_, Tensor.map_, Tensor.map2_ = I.apply_, I.map_, I.map2_
Tensor.isreal = M.isreal
Tensor.addr = lambda self, vec1, vec2, *, beta=1, alpha=1: L.addr(self, vec1, vec2, beta=beta,
                                                                  alpha=alpha)
for _f in (L.addr, L.addbmm, O.renorm):
    setattr(Tensor, _f.__name__ + "_", _via(_f))
Tensor.addmv_ = L._addmv_
Tensor.qr = lambda self, some=True: L.qr(self, some)
Tensor.svd = lambda self, some=True, compute_uv=True: L.svd(self, some, compute_uv)
Tensor.lstsq, Tensor.eig = L.lstsq, L.eig
Tensor.cauchy_ = lambda self, median=0.0, sigma=1.0, *, generator=None: C.cauchy_(
    self, median, sigma, generator)
Tensor.geometric_ = lambda self, p, *, generator=None: C.geometric_(self, p, generator)
Tensor.log_normal_ = lambda self, mean=1.0, std=2.0, *, generator=None: C.log_normal_(
    self, mean, std, generator)
Tensor.new = C.legacy_new
Tensor.__dlpack__, Tensor.__dlpack_device__ = C._dlpack_, C._dlpack_device_


def _nn_method(name):
    def f(self, *args, **kwargs):
        from .nn import functional as F
        return getattr(F, name)(self, *args, **kwargs)
    f.__name__ = name
    return f


Tensor.hardshrink, Tensor.prelu = _nn_method("hardshrink"), _nn_method("prelu")
