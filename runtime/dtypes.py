"""Kiln's dtypes: one object per element type, its NumPy storage type and PyTorch's promotion.

Lives in runtime (the bottom layer) because buffers need element types; compiler and
framework import from here.
"""
import numpy as np

from . import float8 as _f8

try:  # bfloat16 has no NumPy dtype of its own
    import ml_dtypes
    _BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - ml_dtypes is a declared dependency
    _BF16 = None


class DType:
    __slots__ = ("name", "np", "itemsize", "is_floating_point", "is_complex", "is_signed",
                 "category", "rank", "barebones", "round", "__weakref__")

    def __init__(self, name, npdt, category, rank):
        self.name = name
        self.np = np.dtype(npdt) if npdt is not None else None
        self.itemsize = self.np.itemsize if self.np is not None else 0
        self.category = category          # 0 bool, 1 int, 2 float, 3 complex
        self.rank = rank                  # order inside the category for promotion
        self.is_floating_point = category == 2
        self.is_complex = category == 3
        self.is_signed = name != "bool" and not name.startswith("uint")
        # PyTorch's "barebones" unsigned types (uint16/32/64): limited support, see
        # refuse_barebones
        self.barebones = name in ("uint16", "uint32", "uint64")
        # dtypes held in a wider NumPy type (complex32, float8): array -> its values as this
        # dtype holds them (dispatch rounds every result); None: the storage type is exact
        self.round = None

    def __repr__(self):
        return "torch." + self.name

    def __reduce__(self):  # pickles as a reference to the singleton
        return (_dtype_by_name, (self.name,))

    def to_real(self):
        """The real dtype of a complex one (complex64 -> float32); others are their own."""
        return {"complex32": float16, "complex64": float32,
                "complex128": float64}.get(self.name, self)

    def to_complex(self):
        """The complex dtype of a floating one (float32 -> complex64)."""
        if self.category == 3:
            return self
        if self.name in ("float32", "bfloat16"):    # (PyTorch: bfloat16 -> complex64)
            return complex64
        if self.name == "float64":
            return complex128
        if self.name == "float16":
            return complex32
        raise RuntimeError(f"Unknown Complex ScalarType for {TORCH_NAME[self.name]}")

    @property
    def is_bool(self):
        return self.category == 0


bool_ = DType("bool", np.bool_, 0, 0)
uint8 = DType("uint8", np.uint8, 1, 1)
int8 = DType("int8", np.int8, 1, 1)
int16 = DType("int16", np.int16, 1, 2)
int32 = DType("int32", np.int32, 1, 3)
int64 = DType("int64", np.int64, 1, 4)
float16 = DType("float16", np.float16, 2, 1)
bfloat16 = DType("bfloat16", _BF16, 2, 1)
float32 = DType("float32", np.float32, 2, 2)
float64 = DType("float64", np.float64, 2, 3)
# complex32 (ComplexHalf): NumPy has no complex32, so its storage is a complex64 array whose
# real and imaginary parts always hold float16 values (dispatch rounds each result, as float16
# results are rounded); itemsize, nbytes and bitwise views report/convert the 4-byte layout
# (two float16s). PyTorch's CPU kernels refuse most math on it: CHALF_MISSING.
complex32 = DType("complex32", np.complex64, 3, 1)
complex32.itemsize = 4
complex32.round = lambda a: chalf_round(a)      # (defined below)
# float8 (runtime.float8): float32 storage rounded to the format's grid; 1-byte elements.
# PyTorch promotes them with nothing else and has few CPU kernels for them (F8_KERNELS).
float8_e4m3fn = DType("float8_e4m3fn", np.float32, 2, 0)
float8_e5m2 = DType("float8_e5m2", np.float32, 2, 0)
float8_e4m3fnuz = DType("float8_e4m3fnuz", np.float32, 2, 0)
float8_e5m2fnuz = DType("float8_e5m2fnuz", np.float32, 2, 0)
float8_e8m0fnu = DType("float8_e8m0fnu", np.float32, 2, 0)
FLOAT8 = {float8_e4m3fn: _f8.E4M3FN, float8_e5m2: _f8.E5M2, float8_e4m3fnuz: _f8.E4M3FNUZ,
          float8_e5m2fnuz: _f8.E5M2FNUZ, float8_e8m0fnu: _f8.E8M0FNU}
for _d, _f in FLOAT8.items():
    _d.itemsize = 1
    _d.round = _f.round
float8_e8m0fnu.is_signed = False
complex64 = DType("complex64", np.complex64, 3, 2)
complex128 = DType("complex128", np.complex128, 3, 3)
uint16 = DType("uint16", np.uint16, 1, 2)
uint32 = DType("uint32", np.uint32, 1, 3)
uint64 = DType("uint64", np.uint64, 1, 4)

ALL = (bool_, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64,
       complex32, complex64, complex128, uint16, uint32, uint64) + tuple(FLOAT8)
_BY_NAME = {d.name: d for d in ALL}
# (complex32 shares complex64's NumPy storage: a complex64 array is a complex64 tensor)
_BY_NP = {d.np: d for d in ALL if d.np is not None and d.round is None}
for _d in ALL:
    if _d.np is not None and _d.round is None:
        _BY_NP[_d.np.type] = _d


# the names PyTorch's error messages use ("not implemented for 'Float'")
TORCH_NAME = {"bool": "Bool", "uint8": "Byte", "int8": "Char", "int16": "Short", "int32": "Int",
              "int64": "Long", "float16": "Half", "bfloat16": "BFloat16", "float32": "Float",
              "float64": "Double", "complex32": "ComplexHalf", "complex64": "ComplexFloat",
              "complex128": "ComplexDouble",
              "uint16": "UInt16", "uint32": "UInt32", "uint64": "UInt64",
              "float8_e4m3fn": "Float8_e4m3fn", "float8_e5m2": "Float8_e5m2",
              "float8_e4m3fnuz": "Float8_e4m3fnuz", "float8_e5m2fnuz": "Float8_e5m2fnuz",
              "float8_e8m0fnu": "Float8_e8m0fnu"}

# quantized element types: storage is the integer representation (quint4x2: one 4-bit value a
# byte); scale and zero point live on the tensor (framework/ao/_qtensor.py). Category 4 and
# kept out of ALL: they take part in no promotion and no NumPy dtype maps to them.
qint8 = DType("qint8", np.int8, 4, 0)
quint8 = DType("quint8", np.uint8, 4, 0)
qint32 = DType("qint32", np.int32, 4, 0)
quint4x2 = DType("quint4x2", np.uint8, 4, 0)
QUANTIZED = (qint8, quint8, qint32, quint4x2)
for _d in QUANTIZED:
    _BY_NAME[_d.name] = _d
TORCH_NAME.update(qint8="QInt8", quint8="QUInt8", qint32="QInt32", quint4x2="QUInt4x2")


class _NoTensorDType(DType):
    """PyTorch's sub-byte and bit-container dtypes (uint1..7, int1..7, bits1x8..bits16,
    float4_e2m1fn_x2, quint2x4): dtype objects with torch's attributes; Kiln makes no tensors of
    them (they are outside ALL, so nothing promotes to or computes in them)."""
    __slots__ = ("_signed",)

    def __init__(self, name, itemsize, category, signed):
        self.name, self.itemsize, self.category, self.rank = name, itemsize, category, 0
        self.is_floating_point = category == 2
        self.is_complex = False
        self._signed = signed      # True/False, or the RuntimeError text torch raises
        self.barebones = name.startswith("uint")
        self.round = None

    @property
    def is_signed(self):
        if isinstance(self._signed, str):
            raise RuntimeError(self._signed)
        return self._signed

    @is_signed.setter
    def is_signed(self, value):     # (DType.__init__ assigns it; the value here is fixed)
        pass

    @property
    def np(self):
        """Every tensor path asks for the storage type first: refused here, once for all."""
        raise NotImplementedError(f"Kiln has no tensors of dtype torch.{self.name}: it exists "
                                  f"as a dtype object only (PyTorch offers little more than "
                                  f"empty tensors and byte views of it)")

    @np.setter
    def np(self, value):
        pass


_BITS = "Bits types are undefined"
NO_TENSOR = tuple([_NoTensorDType(f"uint{i}", 1, 1, False) for i in range(1, 8)] +
                  [_NoTensorDType(f"int{i}", 1, 1, True) for i in range(1, 8)] +
                  [_NoTensorDType(n, 2 if n == "bits16" else 1, 1, _BITS)
                   for n in ("bits1x8", "bits2x4", "bits4x2", "bits8", "bits16")] +
                  [_NoTensorDType("float4_e2m1fn_x2", 1, 2, True),
                   _NoTensorDType("quint2x4", 1, 4,
                                  "isSignedType not supported for quantized types")])
for _d in NO_TENSOR:
    _BY_NAME[_d.name] = _d
    TORCH_NAME[_d.name] = {"float4_e2m1fn_x2": "Float4_e2m1fn_x2", "quint2x4": "QUInt2x4"}.get(
        _d.name, _d.name.capitalize().replace("Uint", "UInt"))


# the C++ element type names other PyTorch messages use ("expected dtype float for `end` but
# got dtype short unsigned int", "from is out of bounds for long int")
CPP_NAME = {"bool": "bool", "uint8": "unsigned char", "int8": "signed char", "int16": "short int",
            "int32": "int", "int64": "long int", "float16": "c10::Half",
            "bfloat16": "c10::BFloat16", "float32": "float", "float64": "double",
            "complex32": "c10::complex<c10::Half>",
            "complex64": "c10::complex<float>", "complex128": "c10::complex<double>",
            "uint16": "short unsigned int", "uint32": "unsigned int", "uint64": "long unsigned int",
            **{d.name: "c10::F" + d.name[1:] for d in FLOAT8}}


def tname(d):
    """PyTorch's scalar-type name of d, as in "result type Float can't be cast to ... Long"."""
    return TORCH_NAME[d.name]


# PyTorch 2.13's CPU kernels that have no ComplexHalf (complex32) case: its creation, copies,
# casts, views, indexing, add/sub/mul, comparisons for equality, abs/sgn/conj/neg, cat/where
# work; these raise '"<kernel>" not implemented for 'ComplexHalf''. The one table of them:
# refuse_chalf consults it, for primitives (compiler.ir.registry maps a primitive to its
# kernel) and for the framework functions that name their kernel (refuse_barebones).
CHALF_MISSING = frozenset((
    "acos_vml_cpu", "acosh_cpu", "angle_cpu", "asin_vml_cpu", "asinh_cpu", "atan_vml_cpu",
    "atanh_cpu", "cos_vml_cpu", "cosh_cpu", "exp_vml_cpu", "exp2", "expm1_vml_cpu",
    "log_vml_cpu", "log10_vml_cpu", "log1p_vml_cpu", "log2_vml_cpu", "logical_not_cpu",
    "reciprocal_cpu", "rsqrt_cpu", "sigmoid_cpu", "sin_vml_cpu", "sinh_cpu", "sqrt_vml_cpu",
    "tan_vml_cpu", "tanh_vml_cpu", "sinc_cpu", "nan_to_num", "xlogy_cpu",
    "lerp_kernel_scalar", "lerp_kernel_tensor", "addcdiv_cpu_out", "div_cpu", "div_floor_cpu",
    "remainder_cpu", "pow", "sum_cpu", "prod_out_cpu", "cumsum_out_cpu", "cumprod_out_cpu",
    "max_values_cpu", "min_values_cpu", "trace", "equal_cpu", "unique", "flip_cpu", "dot",
    "vdot", "addmv_impl_cpu", "addmm_impl_cpu_", "bmm", "baddbmm", "cross",
    "scatter_gather_tensor_cpu", "take_cpu", "take_put_cpu", "masked_scatter",
    "isin_default_cpu", "kthvalue_cpu", "aminmax_cpu", "linspace_cpu", "logspace_cpu", "eye",
    "arange_cpu", "bernoulli_tensor_cpu_self_", "bernoulli_scalar_cpu_", "random_kernel_cpu",
    "random_from_to_kernel_cpu", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d",
    "replication_pad1d", "replication_pad2d", "replication_pad3d"))


# PyTorch 2.13's CPU kernels that do have float8 cases (the rest raise as refuse_chalf): copies,
# casts, views, indexing, cat, where, fill, tensor * tensor (not times one element), abs,
# eq/ne, isnan, any/all, torch.equal and 2-d matmul; float8_e8m0fnu lacks abs and matmul.
F8_KERNELS = frozenset(("mul_cpu", "abs_cpu", "eq_cpu", "ne_cpu", "equal_cpu",
                        "addmm_impl_cpu_", "masked_select", "index_put", "eye", "index_select"))
_E8M0_MISSING = frozenset(("abs_cpu", "addmm_impl_cpu_"))


def refuse_chalf(kernel, d):
    """PyTorch's error where its CPU kernel `kernel` has no case for d: complex32 (ComplexHalf)
    lacks CHALF_MISSING, float8 has only F8_KERNELS."""
    if (d is complex32 and kernel in CHALF_MISSING or d in FLOAT8 and (
            kernel not in F8_KERNELS or d is float8_e8m0fnu and kernel in _E8M0_MISSING)):
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{tname(d)}'")


def refuse_barebones(kernel, d):
    """PyTorch's error where its kernel `kernel` has no case for the barebones unsigned dtype d
    (uint16/32/64 have "limited support": creation, casts, comparisons for equality, mul,
    bitwise and/or/xor, sum/prod/cumsum, sort, unique, copies, indexing, views), or for
    complex32 (refuse_chalf)."""
    if d.barebones:
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{tname(d)}'")
    if d.round is not None:
        refuse_chalf(kernel, d)


def chalf_round(a):
    """Values of a as complex32 holds them: complex64 storage whose real and imaginary parts are
    rounded to float16 (overflow to inf, as float16 does). Rounds in place when a is a
    writable complex64 array (its layout kept), else returns a new one."""
    if not isinstance(a, np.ndarray) or a.dtype != np.complex64 or not a.flags.writeable:
        a = np.array(a, np.complex64)
    with np.errstate(over="ignore", invalid="ignore"):
        for part in (a.real, a.imag):
            part[...] = part.astype(np.float16)
    return a


def chalf_pairs(a):
    """complex32 values (complex64 storage) as their float16 (real, imag) pairs: shape (..., 2),
    the bytes PyTorch stores for them."""
    h = np.empty(np.shape(a) + (2,), np.float16)
    h[..., 0] = np.real(a)
    h[..., 1] = np.imag(a)
    return h


def chalf_from_pairs(h):
    """The complex64 storage of complex32 values given as float16 pairs (shape (..., 2))."""
    r = np.empty(h.shape[:-1], np.complex64)
    r.real = h[..., 0]
    r.imag = h[..., 1]
    return r


def _dtype_by_name(name):
    return _BY_NAME[name]


def from_numpy(npdt):
    """Kiln dtype of a NumPy dtype (TypeError for ones PyTorch has no equivalent of)."""
    d = _BY_NP.get(npdt)
    if d is None:
        d = _BY_NP.get(np.dtype(npdt))
        if d is None:
            # (named by its NumPy scalar type, as torch: numpy.str_, numpy.object_)
            raise TypeError(f"can't convert np.ndarray of type numpy."
                            f"{np.dtype(npdt).type.__name__}. The only supported types are: "
                            "float64, float32, float16, complex64, complex128, int64, int32, "
                            "int16, int8, uint64, uint32, uint16, uint8, and bool.")
    return d


# PyTorch's promotion lattice for two dtypes (torch.promote_types); None: refused
def _promote_pair(a, b):
    if a is b:
        return a
    if a in FLOAT8 or b in FLOAT8:
        return None
    if a.barebones or b.barebones:     # these promote only to a floating point type
        return a if a.is_floating_point else b if b.is_floating_point else None
    if a.category != b.category:
        hi, lo = (a, b) if a.category > b.category else (b, a)
        if hi.category == 3 and lo.category == 2:     # complex of the wider real part
            return _promote_pair(hi.to_real(), lo).to_complex()
        return hi
    if a.category == 1:
        if {a, b} == {uint8, int8}:
            return int16
        if uint8 in (a, b):
            other = b if a is uint8 else a
            return other
        return a if a.rank > b.rank else b
    if a.category == 2 and {a, b} == {float16, bfloat16}:
        return float32
    return a if a.rank > b.rank else b


_PROMOTE = {(a, b): _promote_pair(a, b) for a in ALL for b in ALL}


def promote_types(a, b):
    if isinstance(a, _NoTensorDType) or isinstance(b, _NoTensorDType):
        return _promote_no_tensor(a, b)
    r = _PROMOTE[(a, b)]
    if r is None:
        if a in FLOAT8 or b in FLOAT8:
            raise RuntimeError(f"Promotion for Float8 Types is not supported, attempted to "
                               f"promote {tname(a)} and {tname(b)}")
        raise RuntimeError(f"Promotion for uint16, uint32, uint64 types is not supported, "
                           f"attempted to promote {tname(a)} and {tname(b)}")
    return r


def _promote_no_tensor(a, b):
    """torch.promote_types with a sub-byte / bits dtype: itself with itself; uint1..7 as the
    barebones unsigned types; the rest refused (torch: an internal assert for int1..7 and
    float4_e2m1fn_x2)."""
    if a is b:
        return a
    if a.category == 4 or b.category == 4:
        raise RuntimeError(f"promoteTypes with quantized numbers is not handled yet; figure out "
                           f"what the correct rules should be, offending types: {tname(a)} "
                           f"{tname(b)}")
    if a.barebones and b.barebones or a.barebones and b in ALL or b.barebones and a in ALL:
        if a.is_floating_point and a in ALL or b.is_floating_point and b in ALL:
            return a if a.is_floating_point else b
        raise RuntimeError(f"Promotion for uint16, uint32, uint64 types is not supported, "
                           f"attempted to promote {tname(a)} and {tname(b)}")
    raise RuntimeError(f"Promotion from {tname(a)} and {tname(b)} is unsupported.")


class _DefaultDtype:
    value = float32


default = _DefaultDtype()


def get_default_dtype():
    return default.value


def set_default_dtype(d):
    if d not in (float16, bfloat16, float32, float64):
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    default.value = d


def scalar_category(x):
    if isinstance(x, bool):
        return 0
    if isinstance(x, int):
        return 1
    if isinstance(x, float):
        return 2
    if isinstance(x, complex):
        return 3
    raise TypeError(f"unsupported scalar type {type(x).__name__}")


def scalar_dtype(x):
    """dtype PyTorch gives a tensor built from the Python scalar x."""
    c = scalar_category(x)
    return (bool_, int64, default.value, default.value.to_complex())[c]


def result_type(dims, zero_dims, scalars):
    """torch.result_type: dims / zero_dims are dtypes of tensors with ndim>0 / ndim==0,
    scalars are Python numbers. A lower-priority group only matters if its category is higher."""
    out = None
    for d in dims:
        out = d if out is None else promote_types(out, d)
    z = None
    for d in zero_dims:
        z = d if z is None else promote_types(z, d)
    if z is not None:
        if out is None:
            out = z
        elif z.category > out.category:
            # a 0-d tensor lifts only the category; the dimensioned operand keeps its width
            if z.category == 3 and out.category == 2:
                out = out.to_complex()      # (float16 -> complex32)
            else:      # (bool dims meet a 0-d integer through the lattice: uint16 is refused)
                out = promote_types(out, z) if out is bool_ else z
    if scalars:
        cat = max(scalar_category(s) for s in scalars)
        if out is None:
            out = (bool_, int64, default.value, default.value.to_complex())[cat]
        elif cat > out.category:
            if cat == 1:
                out = int64
            elif cat == 2:
                out = default.value
            else:
                out = (out if out.category == 2 else default.value).to_complex()
    return out


class finfo:
    """torch.finfo: machine limits of a floating point dtype."""

    def __init__(self, type=None):
        d = type or default.value
        if isinstance(d, _NoTensorDType):     # (torch's texts for these)
            if d.is_floating_point:
                raise TypeError("bad argument type for built-in operation")
            raise TypeError("torch.finfo() requires a floating point input type. Use "
                            "torch.iinfo to handle 'torch.finfo'")
        if not (d.is_floating_point or d.is_complex):
            raise TypeError(f"torch.finfo() requires a floating point input type, got {d}")
        if d in FLOAT8:
            f = FLOAT8[d]
            self.bits, self.max, self.resolution, self.dtype = 8, f.max, 1.0, d.name
            self.tiny = self.smallest_normal = 2.0 ** f.emin
            self.min = self.tiny if f.ebits == 8 else -f.max      # (e8m0fnu: no sign)
            # (PyTorch 2.13 reports 0.125 for e5m2fnuz, not its 2 mantissa bits' 0.25)
            self.eps = 0.125 if d is float8_e5m2fnuz else 2.0 ** -f.mbits
            return
        if d is bfloat16:
            f = ml_dtypes.finfo(ml_dtypes.bfloat16)     # NumPy's finfo does not know it
        else:
            f = np.finfo(d.to_real().np)
        self.bits = f.bits
        self.eps = float(f.eps)
        self.max = float(f.max)
        self.min = float(f.min)
        self.tiny = self.smallest_normal = float(f.smallest_normal)
        self.resolution = 10.0 ** -int(f.precision)    # torch: exactly 1e-06, not float32's
        self.dtype = d.to_real().name      # (PyTorch: finfo(complex64).dtype is 'float32')

    def __repr__(self):
        return (f"finfo(resolution={self.resolution:.6g}, min={self.min:.6g}, max={self.max:.6g}, "
                f"eps={self.eps:.6g}, smallest_normal={self.tiny:.6g}, tiny={self.tiny:.6g}, "
                f"dtype={self.dtype})")


class iinfo:
    """torch.iinfo: machine limits of an integer dtype."""

    def __init__(self, type):
        if isinstance(type, _NoTensorDType):
            if type.category == 4:
                raise NotImplementedError(f"\"dtype\" not implemented for '{tname(type)}'")
            raise TypeError("torch.iinfo() requires an integer input type. Use torch.finfo to "
                            "handle 'torch.iinfo'")
        if type.category != 1:
            raise TypeError(f"torch.iinfo() requires an integer input type, got {type}")
        i = np.iinfo(type.np)
        self.bits, self.max, self.min, self.dtype = i.bits, int(i.max), int(i.min), type.name

    def __repr__(self):
        return f"iinfo(min={self.min:.6g}, max={self.max:.6g}, dtype={self.dtype})"
