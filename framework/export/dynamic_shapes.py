"""torch.export.Dim, Dim.AUTO/STATIC/DYNAMIC and the checking of `dynamic_shapes=`
(torch.export.dynamic_shapes)."""
import enum
import inspect

__all__ = ["Dim", "DimHint", "UserError", "ConstraintViolationError", "resolve", "dims",
           "ShapesCollection", "AdditionalInputs"]

int_oo = float("inf")


class UserError(RuntimeError):
    """torch._dynamo.exc.UserError: an export call whose arguments are inconsistent."""


class ConstraintViolationError(RuntimeError):
    """torch.fx.experimental.symbolic_shapes.ConstraintViolationError."""


class DimHint(enum.Enum):
    AUTO = "AUTO"
    STATIC = "STATIC"
    DYNAMIC = "DYNAMIC"

    def __repr__(self):
        return f"DimHint({self.value})"

    __str__ = __repr__

    def __call__(self, min=None, max=None):
        return self


class _Dim:
    def __init__(self, name, min=0, max=int_oo):
        self.__name__ = name
        self.min, self.max = min, max

    def __repr__(self):
        s = f"Dim('{self.__name__}'" + (f", min={self.min}" if self.min != 2 else "")
        if self.max != int_oo:
            s += f", max={self.max}"
        return s + ")"


class _DimMeta(type):
    AUTO = DimHint.AUTO
    STATIC = DimHint.STATIC
    DYNAMIC = DimHint.DYNAMIC


class Dim(metaclass=_DimMeta):
    """Dim("batch", min=1, max=64): a named dynamic size; the same Dim on two inputs means
    equal sizes. Dim.AUTO / Dim.DYNAMIC: dynamic without a name; Dim.STATIC: fixed."""

    def __new__(cls, name, *, min=None, max=None):
        lo = 0 if min is None else min
        hi = int_oo if max is None else max
        if hi < lo:
            raise AssertionError(f"Cannot create Dim with inconsistent min={min}, max={max}")
        if not name.isidentifier():
            raise AssertionError(f"Dim name must be a valid identifier, got {name}")
        return _Dim(name, lo, hi)


def dims(*names, min=None, max=None):
    """torch.export.dims("a", "b", min=, max=): one Dim per name, the same range."""
    return tuple(Dim(name, min=min, max=max) for name in names)


def _combine_args(m, args, kwargs):
    """forward's arguments as {name: value} (torch's _combine_args)."""
    sig = inspect.signature(m.forward)
    return dict(sig.bind(*args, **(kwargs or {})).arguments)


class ShapesCollection:
    """dynamic_shapes keyed by the input tensors themselves: `sc[x] = {0: Dim("n")}`, then
    `sc.dynamic_shapes(m, args, kwargs)` (or export(..., dynamic_shapes=sc)) lays them out
    in the inputs' structure."""

    def __init__(self):
        self._shapes = {}

    def __setitem__(self, t, shape):
        import framework
        if not isinstance(t, framework.Tensor):
            raise AssertionError(f"Cannot assign shape to non-tensor or non-_IntWrapper type "
                                 f"{type(t)}")
        if id(t) in self._shapes:
            if shape != self._shapes[id(t)]:
                raise AssertionError(f"Shapes assigned to input do not match: expected "
                                     f"{self._shapes[id(t)]}, got {shape}")
        else:
            self._shapes[id(t)] = shape

    def __getitem__(self, t):
        return self._shapes.setdefault(id(t), {})

    def __len__(self):
        return len(self._shapes)

    def dynamic_shapes(self, m, args, kwargs=None):
        from framework.utils import _pytree as pytree
        found = set()

        def find(t):
            if id(t) in self._shapes:
                found.add(id(t))
                return self._shapes[id(t)]
            return None
        out = pytree.tree_map(find, _combine_args(m, args, kwargs))
        if any(k not in found for k in self._shapes):
            raise ValueError("Some tensors that were assigned shapes were not found in args. "
                             "Maybe such tensors were copied when passing them as args? Maybe "
                             "such tensors are contained in classes that were not registered "
                             "with pytree?")
        return out


class AdditionalInputs:
    """dynamic_shapes inferred from more example inputs: a dim whose size differs between
    them is Dim.DYNAMIC, one that never changes is static."""

    def __init__(self):
        self._examples = []

    def add(self, args, kwargs=None):
        if type(args) is not tuple:
            raise AssertionError(f"Representative args {args} must be a tuple")
        if kwargs is not None and type(kwargs) is not dict:
            raise AssertionError(f"Representative kwargs {kwargs} must be None or a dict")
        self._examples.append((args, kwargs))

    def dynamic_shapes(self, m, args, kwargs=None):
        import framework
        from framework.utils import _pytree as pytree
        first, *others = [pytree.tree_map(
            lambda t: tuple(t.shape) if isinstance(t, framework.Tensor) else t,
            _combine_args(m, a, k)) for a, k in [(args, kwargs), *self._examples]]

        def mark(v, *vs):
            if not all(type(v) is type(o) for o in vs):
                raise ValueError("The following inputs were found to have differing types, "
                                 f"so they cannot be marked as dynamic: {(v,) + vs}.")
            if isinstance(v, int) and not isinstance(v, bool):
                return None if all(o == v for o in vs) else DimHint.DYNAMIC
            if not all(o == v for o in vs):
                raise ValueError("The following inputs were found to have differing values, "
                                 f"but they cannot be marked as dynamic: {(v,) + vs}.")
            return None
        return pytree.tree_map(mark, first, *others, is_leaf=lambda i: type(i) is int)

    def verify(self, ep):
        """Each additional input passes the exported program's input checks."""
        g = ep._guards
        for args, kwargs in self._examples:
            kw = kwargs or {}
            if g is not None:
                g(*(list(args) + [kw[n] for n in g._names[len(args):] if n in kw]))


def _dims_of(spec, name, ndim):
    """One input's spec ({dim: Dim}, [Dim or None], None) -> {dim: Dim or DimHint}."""
    if spec is None:
        return {}
    if isinstance(spec, dict):
        items = spec.items()
    elif isinstance(spec, (list, tuple)):
        items = enumerate(spec)
    else:
        raise UserError(f"Unexpected dynamic_shape {spec} of Tensor, try None instead")
    out = {}
    for d, v in items:
        if not isinstance(d, int) or not -ndim <= d < ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[{-ndim}, {ndim - 1}], but got {d}) for input '{name}'")
        if v is None or v is DimHint.STATIC:
            continue
        if not isinstance(v, (_Dim, DimHint, int)):
            raise UserError(f"Unexpected dimension mapped to index {d} in input tensor shape "
                            f"{spec} specified at dynamic_shapes['{name}'] (expected None, an "
                            f"int, a Dim, Dim.AUTO, Dim.STATIC, or Dim.DYNAMIC, but got {v} "
                            "instead)")
        if isinstance(v, int):
            continue
        out[d % ndim] = v
    return out


def resolve(dynamic_shapes, names, values):
    """Check dynamic_shapes against the inputs (names/values in forward's order) ->
    {input name: {dim: (symbol name, min, max, Dim or hint)}}; torch's errors otherwise."""
    if dynamic_shapes is None:
        return {}
    if isinstance(dynamic_shapes, dict):
        if set(dynamic_shapes) != set(names):
            raise UserError(
                f"When `dynamic_shapes` is specified as a dict, its top-level keys must be the "
                f"arg names {list(names)} of `inputs`, but here they are "
                f"{list(dynamic_shapes)}. Alternatively, you could also ignore arg names "
                "entirely and specify `dynamic_shapes` as a list/tuple matching `inputs`.")
        specs = [dynamic_shapes[n] for n in names]
    elif isinstance(dynamic_shapes, (list, tuple)):
        if len(dynamic_shapes) != len(names):
            raise UserError(f"When `dynamic_shapes` is specified as a {type(dynamic_shapes)}, "
                            f"it must have the same length as the inputs ({len(names)}), but "
                            f"got {len(dynamic_shapes)}.")
        specs = list(dynamic_shapes)
    else:
        raise UserError(f"dynamic_shapes must be a dict, tuple or list, got "
                        f"{type(dynamic_shapes).__name__}")
    import framework
    symbols, out, count = {}, {}, [0]
    for name, spec, v in zip(names, specs, values):
        if not isinstance(v, framework.Tensor):
            continue
        for d, dim in _dims_of(spec, name, v.dim()).items():
            size = v.shape[d]
            key = id(dim) if isinstance(dim, _Dim) else (name, d)
            if key not in symbols:
                symbols[key] = (f"s{count[0]}", dim, size)
                count[0] += 1
            sym, _, first = symbols[key]
            if isinstance(dim, _Dim):
                if not dim.min <= size <= dim.max:
                    hi = "int_oo" if dim.max == int_oo else dim.max
                    raise ConstraintViolationError(f"{size} not in range [{dim.min}, {hi}]")
                if size != first:
                    raise ConstraintViolationError(
                        f"Constraints violated ({dim.__name__})! {name}.size()[{d}] = {size} "
                        f"is not equal to the size {first} given before for the same Dim")
                lo, hi = dim.min, dim.max
            else:
                lo, hi = 2, int_oo
            out.setdefault(name, {})[d] = (sym, lo, hi, dim)
    return out


def forward_arg_names(mod, args, kwargs):
    """The names of forward's arguments that args/kwargs fill, in order."""
    sig = inspect.signature(mod.forward)
    bound = sig.bind(*args, **(kwargs or {}))
    names, values = [], []
    for k, v in bound.arguments.items():
        p = sig.parameters[k]
        if p.kind == p.VAR_POSITIONAL:
            for i, e in enumerate(v):
                names.append(f"{k}_{i}")
                values.append(e)
        elif p.kind == p.VAR_KEYWORD:
            for kk, e in v.items():
                names.append(kk)
                values.append(e)
        else:
            names.append(k)
            values.append(v)
    return names, values
