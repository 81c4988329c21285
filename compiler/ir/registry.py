"""The primitive op registry: each primitive is defined once with everything that needs it.

A primitive carries
  meta     (*avals, **attrs) -> AVal | tuple[AVal]   shape/dtype inference; rejects bad input
  numpy    (out_aval, *arrays, **attrs) -> ndarray | tuple[ndarray]
  vjp      (b, g, *inputs, out=..., **attrs) -> tuple of input cotangents (None = no gradient);
           written with the emitter `b`, so the same rule builds eager tensors or graph nodes
  triton   format string over operand expressions ({0}, {1}, {attr}) -> Triton expression
           (pointwise ops), or a function (operands, compute dtype) -> such a string, or None
  xp       (module, out_aval, *arrays, **attrs): the lowering written against an array module
           (NumPy's API), for library ops (sorting, scans, linear algebra): with NumPy it is
           the `numpy` lowering, with CuPy it runs the op on a GPU without a host copy
  saves    which inputs the VJP reads ("all", "none", or a tuple of indices); the rest are
           kept as metadata only, so in-place edits of them do not invalidate backward
  saves_output  whether the VJP reads the forward output
  cache_meta    whether eager dispatch may memoise the meta rule: true when the rule reads only
           operand shapes and dtypes, Python scalars (type and value), attrs and the default
           dtype (default: pointwise, reduction, matmul, view and gather prims)
An "aval" is anything with .shape (tuple) and .dtype (runtime.dtypes.DType): eager tensors,
graph values and AVal itself. Python scalars may stand in for pointwise operands.
"""
import functools

import numpy as np

from runtime import dtypes as dt


class AVal:
    """Abstract value: shape and dtype only."""
    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape = tuple(shape)
        self.dtype = dtype

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"{self.dtype.name}{list(self.shape)}"

    def __eq__(self, o):
        return isinstance(o, AVal) and o.shape == self.shape and o.dtype is self.dtype

    def __hash__(self):
        return hash((self.shape, self.dtype))


class Prim:
    __slots__ = ("name", "kind", "meta", "numpy", "vjp", "triton", "saves", "saves_output",
                 "nout", "differentiable", "grad_name", "doc", "xp", "cache_meta", "__dict__")

    def __init__(self, name, kind, meta, numpy, vjp=None, triton=None, saves="all",
                 saves_output=False, nout=1, differentiable=True, grad_name=None, doc="",
                 xp=None, saves_for=None, cache_meta=None):
        self.name = name
        self.kind = kind
        self.meta = meta
        self.xp = xp
        self.numpy = numpy if numpy is not None else functools.partial(xp, np)
        self.vjp = vjp
        self.triton = triton
        self.saves = saves
        self.saves_output = saves_output
        # {input i: inputs its gradient reads}: the eager recorder saves only what the inputs
        # that need a gradient read (PyTorch's x * 2 saves nothing, so a later in-place
        # change to x is no error); None: `saves` as it is
        self.saves_for = saves_for
        self.nout = nout
        self.differentiable = differentiable
        self.grad_name = grad_name or _torch_grad_name(name)
        self.doc = doc
        self.cache_meta = kind in _PURE_META_KINDS if cache_meta is None else cache_meta

    def __repr__(self):
        return f"<prim {self.name} ({self.kind})>"


# kinds whose meta rules are pure functions of operand metadata (see cache_meta)
_PURE_META_KINDS = ("pointwise", "reduction", "matmul", "view", "gather")

REGISTRY = {}

_GRAD_NAMES = {"add": "AddBackward0", "sub": "SubBackward0", "mul": "MulBackward0",
               "div": "DivBackward0", "pow": "PowBackward0", "matmul": "MmBackward0",
               "sum": "SumBackward1", "reshape": "ViewBackward0", "permute": "PermuteBackward0",
               "expand": "ExpandBackward0", "cast": "ToCopyBackward0", "where": "WhereBackward0",
               "maximum": "MaximumBackward0", "minimum": "MinimumBackward0",
               "amax": "AmaxBackward0", "amin": "AminBackward0", "slice": "SliceBackward0",
               "neg": "NegBackward0", "abs": "AbsBackward0"}


def _torch_grad_name(name):
    if name in _GRAD_NAMES:
        return _GRAD_NAMES[name]
    return "".join(p.capitalize() for p in name.split("_")) + "Backward0"


def _matmul_kernel(a, b, **_):
    na, nb = len(a.shape), len(b.shape)
    if nb == 1:
        return "dot" if na == 1 else "addmv_impl_cpu"
    return "addmm_impl_cpu_" if nb == 2 else "bmm"     # (a batch times a matrix folds)


def _flip_kernel(x, dims=(), **_):
    # PyTorch's flip kernel runs only when the last dim is flipped (else an index copy)
    n = len(x.shape)
    return "flip_cpu" if n and any(d % n == n - 1 for d in dims) else None


def _mul_kernel(a, b, **_):
    # PyTorch multiplies by one element (a number, a 0-d tensor) in a kernel float8 lacks
    one = is_scalar(a) or is_scalar(b) or not any(d != 1 for d in shape_of(b))
    return "mul_cpu_reduced_float" if one else "mul_cpu"


def _sigmoid_kernel(x, **_):
    return "sigmoid_cpu_reduced_float" if x.dtype in dt.FLOAT8 else "sigmoid_cpu"


# primitive -> the PyTorch CPU kernel it stands for, for the dtypes PyTorch has few kernels for
# (dt.refuse_chalf: complex32 lacks dt.CHALF_MISSING, float8 has only dt.F8_KERNELS); a function
# of the operands where the kernel depends on them. Float8 also refuses, as "<prim>_cpu", the
# primitives in neither this table nor _F8_PRIMS.
_CHALF_KERNEL = {
    "acos": "acos_vml_cpu", "acosh": "acosh_cpu", "angle": "angle_cpu", "asin": "asin_vml_cpu",
    "asinh": "asinh_cpu", "atan": "atan_vml_cpu", "atanh": "atanh_cpu", "cos": "cos_vml_cpu",
    "cosh": "cosh_cpu", "exp": "exp_vml_cpu", "exp2": "exp2", "expm1": "expm1_vml_cpu",
    "log": "log_vml_cpu", "log10": "log10_vml_cpu", "log1p": "log1p_vml_cpu",
    "log2": "log2_vml_cpu", "logical_not": "logical_not_cpu", "reciprocal": "reciprocal_cpu",
    "rsqrt": "rsqrt_cpu", "sigmoid": "sigmoid_cpu", "sin": "sin_vml_cpu", "sinh": "sinh_cpu",
    "sqrt": "sqrt_vml_cpu", "tan": "tan_vml_cpu", "tanh": "tanh_vml_cpu", "sum": "sum_cpu",
    "prod": "prod_out_cpu", "div": "div_cpu", "pow": "pow", "cumsum": "cumsum_out_cpu",
    "cumprod": "cumprod_out_cpu", "gather": "scatter_gather_tensor_cpu",
    "scatter": "scatter_gather_tensor_cpu", "unique": "unique", "einsum": "bmm",
    "floor_divide": "div_floor_cpu", "remainder": "remainder_cpu", "amax": "max_values_cpu",
    "amin": "min_values_cpu", "matmul": _matmul_kernel, "flip": _flip_kernel,
    "add": "add_stub", "sub": "add_stub", "neg": "neg_cpu", "maximum": "maximum_cpu",
    "minimum": "minimum_cpu", "lt": "lt_cpu", "le": "le_cpu", "gt": "gt_cpu", "ge": "ge_cpu",
    "sign": "sign_cpu", "sgn": "sign_cpu", "floor": "floor_vml_cpu", "ceil": "ceil_vml_cpu",
    "trunc": "trunc_vml_cpu", "round": "round_vml_cpu", "relu": "clamp_min_scalar_cpu",
    "isinf": "isinf", "isfinite": "isfinite", "argmax": "argmax_cpu", "argmin": "argmin_cpu",
    "nonzero": "nonzero_count_cpu", "argsort": "sorting_kernel_method_name", "abs": "abs_cpu",
    "eq": "eq_cpu", "ne": "ne_cpu", "mul": _mul_kernel, "sigmoid": _sigmoid_kernel,
}
# primitives that run on float8 without a kernel check: copies, casts, views, indexing, cat
_F8_PRIMS = frozenset(("cast", "copy", "where", "isnan", "any", "all", "cat", "full", "index",
                       "index_put", "slice_scatter", "as_strided_scatter", "diagonal_scatter",
                       "as_strided", "diagonal", "expand", "permute", "reshape", "select",
                       "slice", "windows", "real", "imag", "view_as_real", "view_as_complex"))


def _refusing_chalf(kernel, meta):
    def checked(*args, **attrs):
        d = attrs.get("dtype")
        if d is not None and getattr(d, "round", None) is None:
            return meta(*args, **attrs)       # (sum(dtype=...) & co. compute in that dtype)
        for a in args:
            d = getattr(a, "dtype", None)        # (a NumPy scalar's is NumPy's)
            if isinstance(d, dt.DType) and d.round is not None:     # (complex32, float8)
                if d in dt.FLOAT8:      # (PyTorch's promotion error comes first)
                    promote(*[b for b in args if isinstance(getattr(b, "dtype", None), dt.DType)])
                k = kernel if isinstance(kernel, str) else kernel(*args, **attrs)
                if k is not None:
                    dt.refuse_chalf(k, d)
                break
        return meta(*args, **attrs)
    return checked


def register(p):
    if p.name in REGISTRY:
        raise ValueError(f"primitive {p.name!r} defined twice")
    if p.name in _CHALF_KERNEL:     # (the check runs before the rule, as PyTorch's dispatch)
        p.meta = _refusing_chalf(_CHALF_KERNEL[p.name], p.meta)
    elif p.name not in _F8_PRIMS:
        p.meta = _refusing_chalf(lambda *a, _k=p.name + "_cpu", **kw: _k if any(
            isinstance(x, dt.DType) and x in dt.FLOAT8 for x in (getattr(
                y, "dtype", None) for y in a)) else None, p.meta)
    REGISTRY[p.name] = p
    return p


def prim(name, kind, **kw):
    """Decorator form: the decorated function is the numpy lowering; the rest come as keywords."""
    def deco(fn):
        p = Prim(name, kind, numpy=fn, **kw)
        register(p)
        return p
    return deco


def get(name):
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no primitive named {name!r}") from None


# ---- shared meta helpers (errors name the op and the shapes) -------------------------------

def shape_of(x):
    return x.shape if hasattr(x, "shape") else ()


def is_scalar(x):
    return isinstance(x, (bool, int, float, complex))


_BCAST = {}


def broadcast_shapes(op, *shapes):
    key = shapes
    r = _BCAST.get(key)
    if r is not None:
        return r
    nd = max(len(s) for s in shapes)
    out = []
    for i in range(-nd, 0):
        size = 1
        for k, s in enumerate(shapes):
            if -i <= len(s):
                d = s[i]
                if d != 1:
                    if size != 1 and d != size:
                        a = shapes[0][i] if -i <= len(shapes[0]) else 1
                        raise RuntimeError(
                            f"{op}: The size of tensor a ({a}) must match the size of tensor b "
                            f"({d}) at non-singleton dimension {nd + i} (shapes "
                            + ", ".join(str(list(x)) for x in shapes) + ")")
                    size = d
        out.append(size)
    r = tuple(out)
    if len(_BCAST) < 100000:
        _BCAST[key] = r
    return r


_SCALAR_CAT = {bool: 0, int: 1, float: 2, complex: 3}
_NUMBER = (bool, int, float, complex)


def promote(*xs):
    """torch.result_type over tensors/avals and Python scalars."""
    if len(xs) == 2:        # the common cases first: every binary op's meta rule comes here
        a, b = xs
        if not isinstance(a, _NUMBER):
            da = a.dtype
            cb = _SCALAR_CAT.get(type(b))
            if cb is not None:
                if cb <= da.category:
                    return da
            elif not isinstance(b, _NUMBER) and b.dtype is da:
                return da
        elif not isinstance(b, _NUMBER):
            ca = _SCALAR_CAT.get(type(a))
            if ca is not None and ca <= b.dtype.category:
                return b.dtype
    dims, zdims, scal = [], [], []
    for x in xs:
        if is_scalar(x):
            scal.append(x)
        elif len(x.shape):
            dims.append(x.dtype)
        else:
            zdims.append(x.dtype)
    return dt.result_type(dims, zdims, scal)


def norm_dim(op, dim, ndim):
    n = max(ndim, 1)
    if type(dim) is not int:
        # NumPy integers (e.g. from np.argsort) are ints to torch; bools and floats are not
        if isinstance(dim, bool) or not hasattr(type(dim), "__index__") or \
                type(dim).__module__ != "numpy":
            raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
        dim = int(dim)
    if dim < -n or dim >= n:
        raise IndexError(f"{op}: Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return dim % n if ndim else 0


_DIMS = {}


def norm_dims(op, dims, ndim):
    """dims (None, int or sequence) as a tuple of non-negative axes; valid results are memoised
    (every reduction calls this twice: front end and meta rule)."""
    # only plain ints are memoised or looked up: 1.0 and True hash equal to 1 but are refused
    plain = dims is None or type(dims) is int or (
        type(dims) in (tuple, list) and all(type(d) is int for d in dims))
    key = (dims if type(dims) is not list else tuple(dims), ndim) if plain else None
    r = _DIMS.get(key) if plain else None
    if r is not None:
        return r
    if dims is None:
        out = tuple(range(ndim))
    else:
        out = tuple(norm_dim(op, d, ndim) for d in ((dims,) if isinstance(dims, int) else dims))
        if len(set(out)) != len(out):
            raise RuntimeError(f"{op}: dim {out} appears multiple times in the list of dims")
        if ndim == 0:      # a 0-d input's dim 0 / -1 names no axis: reduce nothing (torch's)
            out = ()
    if key is not None and len(_DIMS) < 4096:
        _DIMS[key] = out
    return out
