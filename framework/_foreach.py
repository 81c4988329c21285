"""torch._foreach_*: the multi-tensor list ops that EMA and soft target-network updates call
(`torch._foreach_lerp_(target, online, tau)`). Each applies the ordinary op to every list
element, so values, dtype promotion, autograd and in-place checks are those ops' own.
Out-of-place forms return a tuple; in-place forms return the `self` list itself, as PyTorch's do."""
import math

from .tensor import Tensor

__all__ = []


def _tensors(name, xs, arg="self"):
    if isinstance(xs, Tensor) or not isinstance(xs, (list, tuple)) or \
            not all(isinstance(x, Tensor) for x in xs):
        got = type(xs).__name__ if not isinstance(xs, (list, tuple)) else \
            "list of " + ", ".join(sorted({type(x).__name__ for x in xs}))
        raise TypeError(f"{name}(): argument '{arg}' must be tuple of Tensors, not {got}")
    if not xs:
        raise RuntimeError("Tensor list must have at least one tensor.")
    return xs


def _same_len(xs, ys):
    if len(xs) != len(ys):
        raise RuntimeError(f"Tensor lists must have the same number of tensors, got {len(xs)} "
                           f"and {len(ys)}")


def _per_item(name, xs, other):
    """The second operand as one entry per tensor of xs: a number, a list of numbers, a 0-dim
    tensor, or a list of tensors."""
    n = len(xs)
    if isinstance(other, Tensor):
        if other.dim() != 0:
            raise RuntimeError(f"scalar tensor expected to be 0 dim but it has {other.dim()} "
                               f"dimensions and {other.numel()} elements.")
        return [other] * n, True
    if isinstance(other, (list, tuple)):
        kinds = {isinstance(o, Tensor) for o in other}
        if len(kinds) > 1:
            k = next(i for i, o in enumerate(other) if not isinstance(o, Tensor))
            raise TypeError(f"{name}(): expected Tensor as element {k} in argument 1, but got "
                            f"{type(other[k]).__name__}")
        if kinds == {True}:
            _same_len(xs, other)
            return list(other), True
        if len(other) != n:
            raise RuntimeError("Tensor list must have same number of elements as scalar list.")
        return list(other), False
    return [other] * n, False


def _export(fn):
    __all__.append(fn.__name__)
    globals()[fn.__name__] = fn
    return fn


def _make_unary(op):
    def out_of_place(self):
        return tuple(getattr(x, op)() for x in _tensors(f"_foreach_{op}", self))

    def in_place(self):
        for x in _tensors(f"_foreach_{op}_", self):
            getattr(x, op + "_")()
        return self
    out_of_place.__name__, in_place.__name__ = f"_foreach_{op}", f"_foreach_{op}_"
    _export(out_of_place)
    _export(in_place)


for _op in ("abs", "acos", "asin", "atan", "ceil", "cos", "cosh", "erf", "erfc", "exp", "expm1",
            "floor", "frac", "lgamma", "log", "log10", "log1p", "log2", "neg", "reciprocal",
            "round", "rsqrt", "sigmoid", "sign", "sin", "sinh", "sqrt", "tan", "tanh", "trunc"):
    _make_unary(_op)


def _make_binary(op, method, has_alpha):
    name = f"_foreach_{op}"

    def _alpha_kw(alpha, is_tensor):
        if alpha is None:
            return {}
        if not is_tensor:
            raise TypeError(f"{name}(): 'alpha' is only accepted with a tensor or a list of "
                            f"tensors as 'other', not with scalars")
        return {"alpha": alpha}

    def out_of_place(self, other=None, *, alpha=None, scalar=None, scalars=None):
        other = next(o for o in (other, scalar, scalars) if o is not None)
        ys, is_t = _per_item(name, _tensors(name, self), other)
        kw = _alpha_kw(alpha, is_t) if has_alpha else {}
        return tuple(getattr(x, method)(y, **kw) for x, y in zip(self, ys))

    def in_place(self, other=None, *, alpha=None, scalar=None, scalars=None):
        other = next(o for o in (other, scalar, scalars) if o is not None)
        ys, is_t = _per_item(name + "_", _tensors(name + "_", self), other)
        kw = _alpha_kw(alpha, is_t) if has_alpha else {}
        for x, y in zip(self, ys):
            getattr(x, method + "_")(y, **kw)
        return self
    out_of_place.__name__, in_place.__name__ = name, name + "_"
    _export(out_of_place)
    _export(in_place)


for _op, _m, _a in (("add", "add", True), ("sub", "sub", True), ("mul", "mul", False),
                    ("div", "div", False), ("clamp_min", "clamp_min", False),
                    ("clamp_max", "clamp_max", False),
                    # maximum/minimum with a scalar or a tensor is clamp_min/clamp_max
                    ("maximum", "clamp_min", False), ("minimum", "clamp_max", False)):
    _make_binary(_op, _m, _a)


@_export
def _foreach_pow(self, exponent):
    if isinstance(self, (int, float, bool)):      # scalar base, list of exponents
        from . import ops_math
        return tuple(ops_math.pow(self, e) for e in _tensors("_foreach_pow", exponent, "exponent"))
    ys, _ = _per_item("_foreach_pow", _tensors("_foreach_pow", self), exponent)
    return tuple(x.pow(y) for x, y in zip(self, ys))


@_export
def _foreach_pow_(self, exponent):
    ys, _ = _per_item("_foreach_pow_", _tensors("_foreach_pow_", self), exponent)
    for x, y in zip(self, ys):
        x.pow_(y)
    return self


def _lerp_weights(name, self, tensors1, weight):
    _same_len(_tensors(name, self), _tensors(name, tensors1, "tensors1"))
    ws, _ = _per_item(name, self, weight)
    return ws


@_export
def _foreach_lerp(self, tensors1, weight):
    ws = _lerp_weights("_foreach_lerp", self, tensors1, weight)
    return tuple(x.lerp(e, w) for x, e, w in zip(self, tensors1, ws))


@_export
def _foreach_lerp_(self, tensors1, weight):
    ws = _lerp_weights("_foreach_lerp_", self, tensors1, weight)
    for x, e, w in zip(self, tensors1, ws):
        x.lerp_(e, w)
    return self


def _addc_values(name, self, tensor1, tensor2, value):
    _tensors(name, self)
    _same_len(self, _tensors(name, tensor1, "tensor1"))
    _same_len(self, _tensors(name, tensor2, "tensor2"))
    if isinstance(value, Tensor):                 # a 1-D tensor holds one scalar per entry
        if value.dim() != 1:
            raise RuntimeError(f"Expected packed scalar Tensor to be of dimension 1. Got "
                               f"{value.dim()} instead.")
        if value.numel() != len(self):
            raise RuntimeError(f"Expected length of scalars to match input of length {len(self)} "
                               f"but got {value.numel()} instead.")
        value = value.tolist()
    vs, is_t = _per_item(name, self, value)
    if is_t:
        raise TypeError(f"{name}(): 'value' must be a number, a list of numbers or a 1-D tensor")
    return vs


def _make_addc(op):
    name = f"_foreach_{op}"

    def out_of_place(self, tensor1, tensor2, value=1):
        vs = _addc_values(name, self, tensor1, tensor2, value)
        return tuple(getattr(x, op)(a, b, value=v) for x, a, b, v in zip(self, tensor1, tensor2, vs))

    def in_place(self, tensor1, tensor2, value=1):
        vs = _addc_values(name + "_", self, tensor1, tensor2, value)
        for x, a, b, v in zip(self, tensor1, tensor2, vs):
            getattr(x, op + "_")(a, b, value=v)
        return self
    out_of_place.__name__, in_place.__name__ = name, name + "_"
    _export(out_of_place)
    _export(in_place)


_make_addc("addcmul")
_make_addc("addcdiv")


@_export
def _foreach_norm(self, ord=2, dtype=None):
    from . import linalg
    return tuple(linalg.vector_norm(x, ord, dtype=dtype) for x in _tensors("_foreach_norm", self))


@_export
def _foreach_max(self):
    return tuple(x.max() for x in _tensors("_foreach_max", self))


@_export
def _foreach_powsum(self, ord=2, dtype=None):
    if ord == math.inf or ord == -math.inf:
        raise RuntimeError("_foreach_powsum: ord must be finite")
    return tuple((x.abs() ** ord).sum(dtype=dtype) for x in _tensors("_foreach_powsum", self))


@_export
def _foreach_clone(self, *, memory_format=None):
    kw = {} if memory_format is None else {"memory_format": memory_format}
    return tuple(x.clone(**kw) for x in _tensors("_foreach_clone", self))


@_export
def _foreach_copy_(self, src, non_blocking=False):
    _same_len(_tensors("_foreach_copy_", self), _tensors("_foreach_copy_", src, "src"))
    for x, s in zip(self, src):
        x.copy_(s, non_blocking=non_blocking)
    return self


@_export
def _foreach_zero_(self):
    for x in _tensors("_foreach_zero_", self):
        x.zero_()
    return self
