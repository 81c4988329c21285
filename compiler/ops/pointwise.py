"""Pointwise primitives: one row per op with its meta rule, NumPy lowering, Triton
expression and VJP rule. Broadcasting and type promotion follow PyTorch."""
import cmath
import math

import numpy as np

from runtime import dtypes as dt
from ..ir.registry import AVal, Prim, register, broadcast_shapes, promote, is_scalar
from .vjp_util import sum_to, wants

# ---------------------------------------------------------------- meta rules

_FLOAT_ONLY = "float"      # ints promote to the default float dtype (exp, sin, ...)
_SAME = "same"             # dtype kept (neg, abs, floor on ints, ...)
_BOOL = "bool"             # predicate (isnan, ...)
_INT = "int"               # integer/bool only (bitwise)


_NOBOOL = "nobool"         # dtype kept, but bool has no kernel (abs, floor, ...)

# PyTorch's kernel names, used in its "not implemented for 'Float'" messages (others: <op>_cpu)
_KERNEL = {"bitwise_left_shift": "lshift_cpu", "bitwise_right_shift": "rshift_cpu",
           "floor_divide": "div_floor_cpu", "floor": "floor_vml_cpu", "ceil": "ceil_vml_cpu",
           "trunc": "trunc_vml_cpu", "round": "round_vml_cpu", "pow": "pow", "add": "add_stub",
           "sub": "add_stub", "sgn": "sign_cpu", "relu": "clamp_min_scalar_cpu",
           "fmax": "maximum_cpu", "fmin": "minimum_cpu"}

# the pointwise ops whose PyTorch kernels handle the barebones unsigned dtypes (uint16/32/64);
# ops that compute integers in floating point (div, exp, ...) take them too
_BAREBONES_OK = ("copy", "conj", "floor", "ceil", "trunc", "round", "isnan", "isinf",
                 "isfinite", "signbit", "mul", "eq", "ne", "bitwise_and", "bitwise_or",
                 "bitwise_xor")


def _not_impl(name, d, detail):
    k = _KERNEL.get(name, name + "_cpu")
    return NotImplementedError(f"\"{k}\" not implemented for '{dt.tname(d)}' ({name}: {detail})")


# ops PyTorch has no complex kernel for: the error it raises (class, message)
_NO_COMPLEX = {
    "floor": (NotImplementedError, "floor is not supported for complex inputs"),
    "ceil": (NotImplementedError, "ceil is not supported for complex inputs"),
    "trunc": (NotImplementedError, "trunc is not supported for complex inputs"),
    "sign": (NotImplementedError, "Unlike NumPy, torch.sign is not intended to support complex "
                                  "numbers. Please use torch.sgn instead."),
    "maximum": (RuntimeError, "maximum not implemented for complex tensors."),
    "minimum": (RuntimeError, "minimum not implemented for complex tensors."),
    "fmax": (RuntimeError, "fmax not implemented for complex tensors."),
    "fmin": (RuntimeError, "fmin not implemented for complex tensors."),
    "signbit": (NotImplementedError, "signbit is not implemented for complex tensors."),
}
_NO_COMPLEX_KERNEL = {"round": "round_vml", "erf": "erf_vml", "erfinv": "erfinv", "lgamma": "lgamma_vml",
                      "digamma": "digamma", "i0": "i0", "i0e": "i0e", "i1": "i1", "i1e": "i1e",
                      "polygamma": "polygamma", "remainder": "remainder", "fmod": "fmod",
                      "floor_divide": "div_floor", "atan2": "atan2", "lt": "lt", "le": "le",
                      "gt": "gt", "ge": "ge", "erfc": "erfc_vml", "copysign": "copysign",
                      "nextafter": "nextafter"}


def check_no_complex(name, *xs):
    """Raise PyTorch's error when `name` (which has no complex kernel) meets a complex operand."""
    for x in xs:
        c = isinstance(x, complex) if is_scalar(x) else x.dtype.is_complex
        if not c:
            continue
        d = x.dtype if not is_scalar(x) else dt.complex64
        if name in _NO_COMPLEX:
            cls, msg = _NO_COMPLEX[name]
            raise cls(msg)
        raise NotImplementedError(f"\"{_NO_COMPLEX_KERNEL.get(name, name)}_cpu\" not implemented "
                                  f"for '{dt.tname(d)}'")


def to_real(d):
    """complex32 -> float16, complex64 -> float32, complex128 -> float64; others unchanged."""
    return d.to_real()


def _unary_meta(name, rule):
    nc = name in _NO_COMPLEX or name in _NO_COMPLEX_KERNEL

    def meta(x):
        d = x.dtype
        if nc and d.is_complex:
            check_no_complex(name, x)
        if rule == _FLOAT_ONLY:
            if not (d.is_floating_point or d.is_complex):
                d = dt.get_default_dtype()
        elif rule == _BOOL:
            d = dt.bool_
        elif rule == _INT:
            if d.is_floating_point or d.is_complex:
                raise _not_impl(name, d, f"bitwise ops need integer or bool tensors, got {d} "
                                         f"of shape {list(x.shape)}")
        elif rule == _NOBOOL:
            if d is dt.bool_:
                raise _not_impl(name, d, f"input of shape {list(x.shape)} is torch.bool")
        elif rule == "tofloat":     # real result: |z|, angle(z)
            if d is dt.bool_ and name == "abs":
                raise _not_impl(name, d, f"input of shape {list(x.shape)} is torch.bool")
            d = to_real(d) if d.is_complex else d if (d.is_floating_point or name == "abs") \
                else dt.get_default_dtype()
        elif rule == "notbool" and d is dt.bool_:
            raise RuntimeError(f"{name}: Negation, the `-` operator, on a bool tensor is not supported. "
                               "If you are trying to invert a mask, use the `~` or `logical_not()` "
                               "operator instead.")
        if x.dtype.barebones and (d.barebones or rule == _BOOL) and name not in _BAREBONES_OK:
            # (an op that computes integers in floating point takes them)
            raise _not_impl(name, x.dtype, f"input of shape {list(x.shape)}")
        return AVal(x.shape, d)
    return meta


def _isbool(x):
    return x is True or x is False or (not is_scalar(x) and x.dtype is dt.bool_)


def _binary_meta(name, rule):
    nc = name in _NO_COMPLEX or name in _NO_COMPLEX_KERNEL

    def meta(a, b):
        if nc:
            check_no_complex(name, a, b)
        if type(a) is int or type(b) is int:
            _check_int_scalar(a, b)
        sa = a.shape if not is_scalar(a) else ()
        sb = b.shape if not is_scalar(b) else ()
        shape = sa if sa == sb else broadcast_shapes(name, sa, sb)
        if name == "sub" and (_isbool(a) or _isbool(b)):   # (before promotion, as PyTorch)
            if _isbool(a) and _isbool(b) and not is_scalar(a) and not is_scalar(b):
                raise RuntimeError("sub: Subtraction, the `-` operator, with two bool tensors is "
                                   "not supported. Use the `^` or `logical_xor()` operator "
                                   "instead.")
            raise RuntimeError("sub: Subtraction, the `-` operator, with a bool tensor is not "
                               "supported. If you are trying to invert a mask, use the `~` or "
                               f"`logical_not()` operator instead (dtypes {_dn(a)} and {_dn(b)}).")
        # two tensors of one dtype promote to it (the common eager case; promote() is slow)
        d = d0 = a.dtype if (not is_scalar(a) and not is_scalar(b) and a.dtype is b.dtype) \
            else promote(a, b)
        if rule == _FLOAT_ONLY:
            if not (d.is_floating_point or d.is_complex):
                d = dt.get_default_dtype()
        elif rule == _BOOL:
            d = dt.bool_
        elif rule == _REAL_FLOAT:     # float kernels only: integer operands are refused
            if not d.is_floating_point:
                raise _not_impl(name, d, f"needs floating point tensors; shapes {list(sa)} and "
                                         f"{list(sb)}, dtypes {_dn(a)} and {_dn(b)}")
        elif rule == _INT:
            if d.is_floating_point or d.is_complex or (d is dt.bool_ and name in _NO_BOOL_INT):
                raise _not_impl(name, d, f"bitwise ops need integer or bool tensors; shapes "
                                         f"{list(sa)} and {list(sb)}, dtypes {_dn(a)} and {_dn(b)}")
        elif d is dt.bool_ and name in _NO_BOOL_BINARY and not (name == "pow" and is_scalar(b)):
            raise _not_impl(name, d, f"both operands are bool (shapes {list(sa)} and {list(sb)})")
        if d0.barebones and rule != _FLOAT_ONLY and name not in _BAREBONES_OK and \
                not (name == "pow" and is_scalar(b) and b in (0, 1)):   # (x ** 1 copies x)
            raise _not_impl(name, d0, f"shapes {list(sa)} and {list(sb)}, dtypes {_dn(a)} and "
                                      f"{_dn(b)}")
        return AVal(shape, d)
    return meta


def _check_int_scalar(*xs):
    """PyTorch reads a Python int operand as int64 (or uint64 up to 2**64 - 1, which wraps):
    anything outside raises Python's OverflowError, as its argument parser does."""
    for x in xs:
        if type(x) is int and not -2 ** 63 <= x < 2 ** 64:
            raise OverflowError("int too big to convert" if x > 0 else
                                "can't convert negative int to unsigned")


_SHIFTS = ("bitwise_left_shift", "bitwise_right_shift")
_NO_BOOL_INT = _SHIFTS + ("gcd",)
_REAL_FLOAT = "realfloat"  # floating point only, no promotion of integers (nextafter)
_NO_BOOL_BINARY = ("floor_divide", "remainder", "fmod", "pow")


def _dn(x):
    return type(x).__name__ if is_scalar(x) else str(x.dtype)


# ---------------------------------------------------------------- NumPy lowerings

def _unary_np(f):
    def impl(out, x):
        npd = out.dtype.np
        if x.dtype is npd and out.dtype not in _HALF_DT:     # (the common case, no cast)
            r = f(x)
            return r if r.dtype is npd or r.dtype == npd else r.astype(npd)
        # (a complex input of a real-valued op (abs, angle) is read as complex, not cast)
        if x.dtype != npd and out.dtype.category >= 2 and x.dtype.kind != "c":
            x = x.astype(npd)
        if x.dtype in _HALF_NP:
            # float16/bfloat16 are computed in float32 and rounded once, as PyTorch's cpu
            # kernels do (a lowering of several NumPy calls, sigmoid's, would round each)
            x = x.astype(np.float32)
        r = f(x)
        return r if r.dtype == npd else r.astype(npd)
    return impl


def _wrap_scalar(x, cd):
    # PyTorch casts an out-of-range Python int to the computation dtype with wrap-around
    # (uint8 tensor + -3 adds 253); NumPy 2 refuses such scalars, so cast them here.
    if isinstance(x, int) and not isinstance(x, bool):
        return np.array(x).astype(cd)[()]
    return x


_HALF_NP = (np.dtype(dt.float16.np), np.dtype(dt.bfloat16.np))
_HALF_DT = frozenset((dt.float16, dt.bfloat16))
# PyTorch's cpu kernels of these read a Python number as float32 with a half tensor
# (original_scalar_value); every other op first converts it to the tensor's half dtype
# (x + 0.1 adds bfloat16's 0.10009765625), then computes in float32
SCALAR_OPMATH = frozenset(("mul", "div", "floor_divide"))


def half_scalar(x, npd):
    """Python number x as a half dtype `npd` rounds it, as a float (bools, complex: as they are)."""
    if type(x) is not float and type(x) is not int:
        return x
    with np.errstate(over="ignore"):
        try:
            r = float(np.array(x, np.float64).astype(np.float32).astype(npd))
        except OverflowError:
            return x
    return x if r == x else r       # (an exact int stays an int: pow's rule reads its type)


def _binary_np(f, compute_promoted=False, int_divisor=False, scalar_opmath=False):
    plain = not (compute_promoted or int_divisor)

    def impl(out, a, b):
        npd = out.dtype.np
        if plain and type(a) is np.ndarray and type(b) is np.ndarray and a.dtype is npd and \
                b.dtype is npd:     # two arrays of the result dtype: nothing to cast or wrap
            r = f(a, b)
            if type(r) is not np.ndarray:
                r = np.asarray(r)
            return r if r.dtype is npd or r.dtype == npd else r.astype(npd)
        cd = _compute_dtype(a, b) if compute_promoted else npd
        if cd in _HALF_NP and (type(a) is not np.ndarray or type(b) is not np.ndarray):
            # opmath: PyTorch computes half types in float32; mul/div read a Python number as
            # float32 (float16 x / 0.7 divides by 0.7f, not by 0.7002), other ops round it to
            # half first; with two half arrays float32 arithmetic rounds as half arithmetic
            if not scalar_opmath:
                a, b = half_scalar(a, cd), half_scalar(b, cd)
            cd = np.dtype(np.float32)
        if type(a) is np.ndarray:
            if a.dtype != cd:
                a = a.astype(cd)
        if type(b) is np.ndarray:
            if b.dtype != cd:
                b = b.astype(cd)
        if compute_promoted and cd.kind in "iu":   # comparisons: no OverflowError to catch
            a, b = _wrap_scalar(a, cd), _wrap_scalar(b, cd)
        if int_divisor and cd.kind in "iub" and np.any(np.equal(b, 0)):
            raise RuntimeError("ZeroDivisionError")
        try:
            r = f(a, b)
        except (OverflowError, TypeError):
            if cd.kind in "iub":
                r = f(_wrap_scalar(a, cd), _wrap_scalar(b, cd))
            else:   # a Python int past int64 with a float operand (bfloat16 refuses it): as float
                r = f(float(a) if type(a) is int else a, float(b) if type(b) is int else b)
        if type(r) is not np.ndarray:
            r = np.asarray(r)
        return r if r.dtype == npd else r.astype(npd)
    return impl


class _A:  # tiny aval view of a NumPy array for promotion inside lowerings
    __slots__ = ("shape", "dtype")

    def __init__(self, x):
        self.shape = x.shape
        self.dtype = dt.from_numpy(x.dtype)


def _compute_dtype(a, b):
    aa = _A(a) if type(a) is np.ndarray else (a.item() if isinstance(a, np.generic) else a)
    bb = _A(b) if type(b) is np.ndarray else (b.item() if isinstance(b, np.generic) else b)
    return promote(aa, bb).np


# ---------------------------------------------------------------- definitions

# erf's Maclaurin coefficients 2/sqrt(pi) (-1)^n / (n! (2n + 1)), n = 0..6: on |x| < 0.5 the
# first omitted term is < 1e-9 relative, below float32 rounding
_ERF_SERIES = [2 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1))
               for n in range(7)]


def _erf_np(x):
    if x.dtype == np.float64:   # exact, element by element (float64 is the reference dtype)
        return np.vectorize(math.erf, otypes=[np.float64])(x) if x.size else x.copy()
    # Numerical Recipes' Chebyshev fit of erfc: fractional error < 1.2e-7 (float32 rounding),
    # so 1 - erfc is as good where erf >= 0.5; below |x| = 0.5, where 1 - erfc loses the
    # relative accuracy the kernels' erf and PyTorch's keep (erf(1e-3) = 1.1283788e-3), the
    # series, on those elements only (GELU's cost stays that of the fit)
    z = np.abs(x.astype(np.float32))
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    r = 1.0 - t * np.exp(poly)
    small = z < 0.5
    if small.any():
        s = z[small]
        s2 = s * s
        acc = np.float32(_ERF_SERIES[-1])
        for c in reversed(_ERF_SERIES[:-1]):
            acc = acc * s2 + np.float32(c)
        r[small] = acc * s
    # +-0 and NaN as they come (erf(-0) = -0)
    return np.where(x > 0, r, np.where(x < 0, -r, x)).astype(x.dtype)


LN2 = math.log(2.0)
LN10 = math.log(10.0)


def _cx(x):
    """x is a complex value the rule can read (AVal: metadata only, nothing to conjugate)."""
    if is_scalar(x):
        return isinstance(x, complex)
    return x is not None and not isinstance(x, AVal) and x.dtype.is_complex


def holomorphic(vjp):
    """PyTorch's complex gradient convention: .grad is twice the conjugate Wirtinger
    derivative, so a holomorphic f passes back g * conj(f'(z)). The functions here have real
    Taylor coefficients, where conj(f'(z)) = f'(conj(z)): the real rule runs on conjugated
    inputs and output. Real inputs that get a complex gradient keep its real part (the
    engine casts gradients to their input's dtype)."""
    if vjp is None:
        return None

    def rule(b, g, *xs, out=None, **attrs):
        if not any(_cx(x) for x in xs) and not _cx(out):
            return vjp(b, g, *xs, out=out, **attrs)
        cs = tuple(x.conjugate() if isinstance(x, complex) else b.conj(x) if _cx(x) else x
                   for x in xs)
        r = vjp(b, g, *cs, out=b.conj(out) if _cx(out) else out, **attrs)
        # a real input's gradient is the real part (taken here: a complex -> real cast warns)
        return tuple(b.real(gi) if gi is not None and gi.dtype.is_complex and
                     not is_scalar(x) and not x.dtype.is_complex else gi
                     for gi, x in zip(r, xs))
    rule.__name__ = getattr(vjp, "__name__", "vjp")
    return rule


# not holomorphic: their rules handle complex inputs themselves
_NOT_HOLOMORPHIC = ("abs", "sgn", "angle", "conj", "where", "cast")


def unary(name, f, rule, vjp=None, triton=None, saves="all", saves_output=False,
          differentiable=True, grad_name=None):
    if name not in _NOT_HOLOMORPHIC and (saves != () or saves_output):
        vjp = holomorphic(vjp)
    register(Prim(name, "pointwise", meta=_unary_meta(name, rule), numpy=_unary_np(f), vjp=vjp,
                  triton=triton, saves=saves, saves_output=saves_output,
                  differentiable=differentiable, grad_name=grad_name))


def binary(name, f, rule, vjp=None, triton=None, saves="all", differentiable=True,
           compute_promoted=False, grad_name=None, int_divisor=False, saves_for=None):
    if saves != ():
        vjp = holomorphic(vjp)
    register(Prim(name, "pointwise", meta=_binary_meta(name, rule),
                  numpy=_binary_np(f, compute_promoted, int_divisor, name in SCALAR_OPMATH),
                  vjp=vjp, triton=triton,
                  saves=saves, saves_for=saves_for,
                  differentiable=differentiable, grad_name=grad_name))


def _sign_np(x):
    if x.dtype == np.bool_:
        return x.copy()
    # PyTorch's (0 < x) - (x < 0): NaN gives 0 (NumPy: NaN) and -0.0 gives +0.0
    return (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)


def _zero_grad(b, g, x, out=None):
    # zeros, as torch's zeros_like(grad): not g * 0, which is NaN where g is inf or NaN
    return (b.full(shape=tuple(g.shape), value=0, dtype=g.dtype),)


# unary float functions ------------------------------------------------------------------
unary("copy", np.copy, _SAME, lambda b, g, x, out=None: (g,), "{0}", saves=(),
      grad_name="CloneBackward0")
unary("neg", np.negative, "notbool", lambda b, g, x, out=None: (b.neg(g),), "-{0}", saves=())
def _vjp_abs(b, g, x, out=None):
    # complex: d|z| is z/|z| (sgn) in PyTorch's convention; real: sign
    return (b.mul(g, b.sgn(x) if x.dtype.is_complex else b.sign(x)),)


unary("abs", np.abs, "tofloat", _vjp_abs, "tl.abs({0})")
unary("sign", _sign_np, _SAME, _zero_grad, "tl.where({0} > 0, 1, tl.where({0} < 0, -1, 0)).to({0}.dtype)",
      saves=())


def _sgn_np(x):
    if x.dtype.kind != "c":
        return _sign_np(x)
    a = np.abs(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        # each part over |x| (torch's complex / real): sgn(inf j) = 0+nanj, not nan+nanj
        d = np.where(a == 0, 1, a)
        q = np.empty_like(x)
        q.real, q.imag = x.real / d, x.imag / d
        return np.where(a == 0, 0, q).astype(x.dtype)


def _vjp_sgn(b, g, x, out):
    if not x.dtype.is_complex:
        return (b.mul(g, 0),)
    # s = z/|z|: the gradient is i s Im(conj(s) g) / |z| (0 at z = 0, as PyTorch)
    a = b.abs(x)
    t = b.div(b.imag(b.mul(b.conj(out), g)), b.where(b.eq(a, 0), 1.0, a))
    return (b.where(b.eq(a, 0), 0.0, b.mul(b.mul(out, 1j), t)),)


def _angle_np(x):
    if x.dtype.kind == "c":
        return np.angle(x)
    # torch: pi for negatives, 0 for zeros (also -0.0) and positives, NaN stays
    return np.where(np.isnan(x), x, np.where(x < 0, np.pi, 0.0)).astype(x.dtype)


def _vjp_angle(b, g, x, out=None):
    if not x.dtype.is_complex:
        return (b.mul(g, 0),)
    # angle = atan2(y, x): the gradient is g * i z / |z|^2 (0 at z = 0)
    a2 = b.real(b.mul(x, b.conj(x)))
    r = b.mul(b.div(b.cast(g, dtype=x.dtype), b.where(b.eq(a2, 0), 1.0, a2)), b.mul(x, 1j))
    return (b.where(b.eq(x, 0), 0.0, r),)


# sgn: sign for real inputs, z/|z| for complex ones; conj: complex conjugate (the framework
# returns real tensors themselves, so only complex inputs reach it)
unary("sgn", _sgn_np, _SAME, _vjp_sgn, None, saves_output=True, grad_name="SgnBackward0")
unary("conj", np.conj, _SAME, lambda b, g, x, out=None: (b.conj(g),), None, saves=(),
      grad_name="ConjBackward0")
unary("angle", _angle_np, "tofloat", _vjp_angle, None)
unary("exp", np.exp, _FLOAT_ONLY, lambda b, g, x, out: (b.mul(g, out),), "tl.exp({0})",
      saves=(), saves_output=True)
unary("exp2", np.exp2, _FLOAT_ONLY, lambda b, g, x, out: (b.mul(g, b.mul(out, LN2)),),
      "tl.exp2({0})", saves=(), saves_output=True)
unary("log", np.log, _FLOAT_ONLY, lambda b, g, x, out=None: (b.div(g, x),), "tl.log({0})")
unary("log2", np.log2, _FLOAT_ONLY, lambda b, g, x, out=None: (b.div(g, b.mul(x, LN2)),),
      "tl.log2({0})")
unary("log10", np.log10, _FLOAT_ONLY, lambda b, g, x, out=None: (b.div(g, b.mul(x, LN10)),),
      "tl.log({0}) * 0.4342944819032518")
unary("log1p", np.log1p, _FLOAT_ONLY, lambda b, g, x, out=None: (b.div(g, b.add(x, 1)),),
      "kiln_log1p({0})", grad_name="Log1PBackward0")
unary("expm1", np.expm1, _FLOAT_ONLY, lambda b, g, x, out: (b.mul(g, b.add(out, 1)),),
      "kiln_expm1({0})", saves=(), saves_output=True)
unary("sqrt", np.sqrt, _FLOAT_ONLY, lambda b, g, x, out: (b.div(g, b.mul(out, 2)),),
      "tl.sqrt({0})", saves=(), saves_output=True)
unary("rsqrt", lambda x: 1.0 / np.sqrt(x), _FLOAT_ONLY,
      lambda b, g, x, out: (b.mul(g, b.mul(b.mul(out, b.mul(out, out)), -0.5)),),
      "tl.rsqrt({0})", saves=(), saves_output=True)
unary("sin", np.sin, _FLOAT_ONLY, lambda b, g, x, out=None: (b.mul(g, b.cos(x)),), "tl.sin({0})")
unary("cos", np.cos, _FLOAT_ONLY, lambda b, g, x, out=None: (b.mul(g, b.neg(b.sin(x))),),
      "tl.cos({0})")
unary("tan", np.tan, _FLOAT_ONLY, lambda b, g, x, out: (b.mul(g, b.add(b.mul(out, out), 1)),),
      "(tl.sin({0}) / tl.cos({0}))", saves=(), saves_output=True)
unary("asin", np.arcsin, _FLOAT_ONLY,
      lambda b, g, x, out=None: (b.mul(g, b.rsqrt(b.sub(1, b.mul(x, x)))),), None)
unary("acos", np.arccos, _FLOAT_ONLY,
      lambda b, g, x, out=None: (b.neg(b.mul(g, b.rsqrt(b.sub(1, b.mul(x, x))))),), None)
unary("atan", np.arctan, _FLOAT_ONLY,
      lambda b, g, x, out=None: (b.div(g, b.add(b.mul(x, x), 1)),), None)
unary("sinh", np.sinh, _FLOAT_ONLY, lambda b, g, x, out=None: (b.mul(g, b.cosh(x)),),
      "kiln_sinh({0})")
unary("cosh", np.cosh, _FLOAT_ONLY, lambda b, g, x, out=None: (b.mul(g, b.sinh(x)),),
      "((tl.exp({0}) + tl.exp(-{0})) * 0.5)")
unary("tanh", np.tanh, _FLOAT_ONLY,
      lambda b, g, x, out: (b.mul(g, b.sub(1, b.mul(out, out))),),
      "kiln_tanh({0})", saves=(), saves_output=True)


def _sigmoid_np(x):
    # stable: exp of a non-positive number only
    if np.iscomplexobj(x):      # |x| is the modulus there: torch's 1 / (1 + exp(-x))
        with np.errstate(all="ignore"):
            return (1 / (1 + np.exp(-x))).astype(x.dtype)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


unary("sigmoid", _sigmoid_np, _FLOAT_ONLY,
      # (tl.sigmoid's own formula, written out: a library call would need Triton imported in
      # interpret mode to run on the interpret device)
      lambda b, g, x, out: (b.mul(g, b.mul(out, b.sub(1, out))),), "1 / (1 + tl.exp(-{0}))",
      saves=(), saves_output=True)
# relu: torch.relu is clamp_min(x, 0): x < 0 gives +0.0, -0.0 stays -0.0, NaN propagates. Its
# gradient is threshold_backward on the result: 0 where it is <= 0, g elsewhere and at NaN.
def _maximum_keeping_x(npd):
    """How np.maximum(0, x) of this float dtype keeps x at a -0.0/+0.0 tie: 'zero_first' when
    the second operand wins ties (x86 SIMD max, for every length), 'x_first' when the first
    does, None when neither holds for every length (then relu is a where)."""
    zero = npd.type(0)
    try:
        runs = [np.full(n, -0.0, npd) for n in (*range(1, 40), 257, 4099)]
        if all(np.signbit(np.maximum(zero, a)).all() for a in runs):
            return "zero_first"
        if all(np.signbit(np.maximum(a, zero)).all() for a in runs):
            return "x_first"
    except TypeError:
        pass
    return None


RELU_ORDER = {np.dtype(d.np): _maximum_keeping_x(np.dtype(d.np))
              for d in (dt.float16, dt.bfloat16, dt.float32, dt.float64)}


def _relu_np(x):
    # (integers have no signed zero: any order)
    order = RELU_ORDER.get(x.dtype, "x_first")
    zero = x.dtype.type(0)
    if order == "zero_first":
        return np.maximum(zero, x)
    if order == "x_first":
        return np.maximum(x, zero)
    return np.where(x < 0, zero, x)


unary("relu", _relu_np, _NOBOOL, lambda b, g, x, out: (b.where(b.le(out, 0), 0, g),),
      "tl.where({0} < 0, 0, {0})", saves=(), saves_output=True, grad_name="ReluBackward0")
unary("erf", _erf_np, _FLOAT_ONLY,
      lambda b, g, x, out=None: (b.mul(g, b.mul(b.exp(b.neg(b.mul(x, x))), 2 / math.sqrt(math.pi))),),
      "tl.erf({0})")
unary("floor", np.floor, _NOBOOL, _zero_grad, "tl.floor({0})", saves=())
unary("ceil", np.ceil, _NOBOOL, _zero_grad, "tl.ceil({0})", saves=())
unary("trunc", np.trunc, _NOBOOL, _zero_grad, "tl.where({0} < 0, tl.ceil({0}), tl.floor({0}))", saves=())
unary("round", np.round, _NOBOOL, _zero_grad, "kiln_round({0})", saves=())   # half to even, like torch
# complex: 1 / x (torch's value at 0 and infinities: 1 / 0j = inf+nanj; np.reciprocal: nan+nanj)
unary("reciprocal", lambda x: 1 / x if np.iscomplexobj(x) else np.reciprocal(x), _FLOAT_ONLY,
      lambda b, g, x, out: (b.neg(b.mul(g, b.mul(out, out))),), "(1.0 / {0})",
      saves=(), saves_output=True)
unary("logical_not", np.logical_not, _BOOL, None, "({0} == 0)", differentiable=False)
unary("bitwise_not", np.invert, _INT, None, "~{0}", differentiable=False)
unary("isnan", np.isnan, _BOOL, None, "({0} != {0})", differentiable=False)
unary("isinf", np.isinf, _BOOL, None, "(({0} == {0}) & (({0} - {0}) != ({0} - {0})))",
      differentiable=False)   # x - x is NaN only for +-inf and NaN
unary("isfinite", np.isfinite, _BOOL, None, "(({0} - {0}) == 0)", differentiable=False)


# binary arithmetic ----------------------------------------------------------------------

def _vjp_add(b, g, x, y, out=None):
    return (None if is_scalar(x) else sum_to(b, g, x.shape),
            None if is_scalar(y) else sum_to(b, g, y.shape))


def _vjp_sub(b, g, x, y, out=None):
    return (None if is_scalar(x) else sum_to(b, g, x.shape),
            None if is_scalar(y) else sum_to(b, b.neg(g), y.shape))


def _vjp_mul(b, g, x, y, out=None):
    return (None if is_scalar(x) or not wants(b, 0) else sum_to(b, b.mul(g, y), x.shape),
            None if is_scalar(y) or not wants(b, 1) else sum_to(b, b.mul(g, x), y.shape))


def _vjp_div(b, g, x, y, out=None):
    gx = None if is_scalar(x) or not wants(b, 0) else sum_to(b, b.div(g, y), x.shape)
    gy = None
    if not is_scalar(y) and wants(b, 1):
        gy = sum_to(b, b.neg(b.div(b.mul(g, x), b.mul(y, y))), y.shape)
    return gx, gy


def _vjp_pow(b, g, x, y, out=None):
    gx = gy = None
    if not is_scalar(x) and wants(b, 0):
        if is_scalar(y):
            gx = b.mul(g, b.mul(b.pow(x, y - 1), y)) if y != 0 else b.mul(g, 0)
        else:
            # 0 where the exponent is 0 (PyTorch's where(y == 0, 0, ...): 0 * inf at x = 0)
            gx = b.where(b.eq(y, 0), 0.0, b.mul(g, b.mul(b.pow(x, b.sub(y, 1)), y)))
            gx = sum_to(b, gx, x.shape)
    if not is_scalar(y) and wants(b, 1):
        lx = b.log(x) if not is_scalar(x) else cmath.log(x) if isinstance(x, complex) and x \
            else math.log(x) if not isinstance(x, complex) and x > 0 \
            else float("-inf") if x == 0 else float("nan")
        # pow does not save its output (most uses have a scalar exponent): recompute it
        t = b.mul(g, b.mul(b.pow(x, y) if out is None else out, lx))
        # d/dy 0**y is 0 for y >= 0 (PyTorch's convention; also for a Python-scalar base 0,
        # as in 0.0 ** y, where out * log(0) would be 0 * -inf = nan)
        yr = b.real(y) if y.dtype.is_complex else y
        if not is_scalar(x):
            t = b.where(b.logical_and(b.eq(x, 0), b.ge(yr, 0)), 0.0, t)
        elif x == 0:
            t = b.where(b.ge(yr, 0), 0.0, t)
        gy = sum_to(b, t, y.shape)
    return gx, gy


def _vjp_maxmin(is_max):
    def vjp(b, g, x, y, out=None):
        # PyTorch: g/2 each at ties, 0 to the operand that lost, and the whole g to both where
        # either is NaN (no comparison holds there)
        eqm = b.eq(x, y)
        lose_x = b.lt(x, y) if is_max else b.gt(x, y)
        lose_y = b.gt(x, y) if is_max else b.lt(x, y)
        wx = b.where(eqm, 0.5, b.where(lose_x, 0.0, 1.0))
        wy = b.where(eqm, 0.5, b.where(lose_y, 0.0, 1.0))
        return (sum_to(b, b.mul(g, wx), x.shape) if not is_scalar(x) else None,
                sum_to(b, b.mul(g, wy), y.shape) if not is_scalar(y) else None)
    return vjp


def _vjp_atan2(b, g, x, y, out=None):
    # PyTorch: 1 / (x^2 + y^2) taken as 0 where it is infinite, so the gradient at (0, 0) is 0
    den = b.add(b.mul(x, x), b.mul(y, y))
    recip = b.where(b.eq(den, 0), 0.0, b.reciprocal(den))
    return (sum_to(b, b.mul(b.mul(g, y), recip), x.shape),
            sum_to(b, b.mul(b.mul(g, b.neg(x)), recip), y.shape))


def _vjp_remainder(b, g, x, y, out=None):
    gy = None if is_scalar(y) or not wants(b, 1) else \
        sum_to(b, b.neg(b.mul(g, b.floor_divide(x, y))), y.shape)
    return (sum_to(b, g, x.shape) if not is_scalar(x) else None, gy)


def _vjp_fmod(b, g, x, y, out=None):
    gy = None if is_scalar(y) or not wants(b, 1) else \
        sum_to(b, b.neg(b.mul(g, b.trunc(b.div(x, y)))), y.shape)
    return (sum_to(b, g, x.shape) if not is_scalar(x) else None, gy)


def _floor_divide_np(a, b):
    return np.floor_divide(a, b)


def _div_np(a, b):
    return np.true_divide(a, b)


binary("add", np.add, "arith", _vjp_add, "{0} + {1}", saves=())
binary("sub", np.subtract, "arith", _vjp_sub, "{0} - {1}", saves=())
# d(x*y)/dx reads y and d/dy reads x; d(x/y)/dx reads y, d/dy both (PyTorch saves the same)
binary("mul", np.multiply, "arith", _vjp_mul, "{0} * {1}", saves_for={0: (1,), 1: (0,)})
binary("div", _div_np, _FLOAT_ONLY, _vjp_div, "{0} / {1}", saves_for={0: (1,), 1: (0, 1)})
def _vjp_floor_divide(b, g, x, y, out=None):
    # piecewise constant: zeros, as PyTorch's div(rounding_mode='floor') (DivBackward2) gives;
    # recorded, so the result of float operands requires grad as in PyTorch
    z = b.full(shape=tuple(g.shape), value=0, dtype=g.dtype)
    return (None if is_scalar(x) else sum_to(b, z, x.shape),
            None if is_scalar(y) else sum_to(b, z, y.shape))


binary("floor_divide", _floor_divide_np, "arith", _vjp_floor_divide,
       "kiln_floor_divide({0}, {1})", saves=(), int_divisor=True)
def _remainder_np(a, b):
    """PyTorch's (and kiln_remainder's) float remainder: fmod, moved by b where its sign differs
    from b's; a zero result keeps fmod's sign, the dividend's (NumPy gives it b's sign)."""
    if np.result_type(a, b).kind != "f":
        return np.remainder(a, b)
    r = np.fmod(a, b)
    return np.where((r != 0) & ((r < 0) != (b < 0)), r + b, r)


# d/dx is g: only d/dy reads the operands (PyTorch saves them only when y requires grad)
binary("remainder", _remainder_np, "arith", _vjp_remainder, "kiln_remainder({0}, {1})",
       int_divisor=True, saves_for={0: (), 1: (0, 1)})
binary("fmod", np.fmod, "arith", _vjp_fmod, "{0} % {1}", int_divisor=True,  # Triton %: C fmod
       saves_for={0: (), 1: (0, 1)})
# (2 and 3 are left to np.power, which already agrees with torch's products there)
_CPOW_SPECIAL = {0.5: np.sqrt, -0.5: lambda x: 1.0 / np.sqrt(x), -1.0: lambda x: 1.0 / x,
                 -2.0: lambda x: 1.0 / (x * x)}


def _pow_np(a, b):
    """np.power, with PyTorch's integer x ** -n (1 for x = 1, +-1 for x = -1, else 0; NumPy
    raises ValueError), as kiln_pow computes it in kernels."""
    bb = np.asarray(b)
    if np.iscomplexobj(a) and isinstance(b, (int, float, complex)) and b.imag == 0 and \
            float(b.real) in _CPOW_SPECIAL:       # a Python scalar exponent (torch: not a tensor)
        # PyTorch's complex x ** scalar runs these exponents as sqrt / products / reciprocals,
        # which differ from exp(b log x) at infinities: inf ** 0.5 = inf+0j, not inf+nanj
        with np.errstate(all="ignore"):
            return _CPOW_SPECIAL[float(b.real)](a)
    if type(b) is float and b == -0.5 and np.asarray(a).dtype.kind == "f":
        # PyTorch's x ** -0.5 is rsqrt (rsqrt(-0) = -inf, rsqrt(-inf) = nan, where pow gives
        # inf and 0); x ** 0.5 is sqrt, as np.power's own scalar fast path already computes
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.reciprocal(np.sqrt(a))
    if bb.dtype.kind != "i" or np.asarray(a).dtype.kind not in "iub" or not (bb < 0).any():
        return np.power(a, b)
    neg = bb < 0
    r = np.power(a, np.where(neg, 0, bb).astype(bb.dtype))
    small = np.where(np.equal(a, 1), 1, np.where(np.equal(a, -1), np.where(bb & 1, -1, 1), 0))
    return np.where(neg, small, r).astype(r.dtype)


def _pow_triton(ins, work):
    # a Python float exponent takes PyTorch's sqrt/rsqrt cases (x ** 0.5, x ** -0.5), as
    # _pow_np does; a tensor exponent is always pow
    if work.is_floating_point and type(ins[1]) is float:
        return "kiln_pow_scalar({0}, {1})"
    return "kiln_pow({0}, {1})"


binary("pow", _pow_np, "arith", _vjp_pow, _pow_triton)
binary("maximum", np.maximum, "arith", _vjp_maxmin(True), "tl.maximum({0}, {1}, propagate_nan=tl.PropagateNan.ALL)")
binary("minimum", np.minimum, "arith", _vjp_maxmin(False), "tl.minimum({0}, {1}, propagate_nan=tl.PropagateNan.ALL)")
binary("atan2", np.arctan2, _FLOAT_ONLY, _vjp_atan2, None)


# inverse hyperbolic functions, erfc, sign bit ------------------------------------------------
# Triton: log1p-based forms that keep full relative accuracy near 0 (asinh, atanh) and near 1
# (acosh), with log(2|x|) where x^2 would overflow (codegen.triton_helpers)
unary("asinh", np.arcsinh, _FLOAT_ONLY,
      lambda b, g, x, out=None: (b.mul(g, b.rsqrt(b.add(b.mul(x, x), 1))),), "kiln_asinh({0})")
unary("acosh", np.arccosh, _FLOAT_ONLY,
      # 1 / (sqrt(x - 1) sqrt(x + 1)), not rsqrt(x^2 - 1): the same for real x >= 1 (and no
      # x^2 overflow), the true derivative off the real axis (torch's, e.g. at -0.5+0.3j)
      lambda b, g, x, out=None: (b.mul(g, b.mul(b.rsqrt(b.sub(x, 1)), b.rsqrt(b.add(x, 1)))),),
      "kiln_acosh({0})")
unary("atanh", np.arctanh, _FLOAT_ONLY,
      lambda b, g, x, out=None: (b.div(g, b.sub(1, b.mul(x, x))),), "kiln_atanh({0})")

_ERFC64 = np.vectorize(math.erfc, otypes=[np.float64])


def _erfc_np(x):
    # exact in float64 (no 1 - erf cancellation: erfc(10) = 2.1e-45), rounded once
    y = np.asarray(x, dtype=np.float64)
    return _ERFC64(y) if y.size else y.copy()


unary("erfc", _erfc_np, _FLOAT_ONLY,
      lambda b, g, x, out=None: (b.mul(g, b.mul(b.exp(b.neg(b.mul(x, x))),
                                                -2 / math.sqrt(math.pi))),),
      "kiln_erfc({0}.to(tl.float64))")


def _signbit_np(x):
    if x.dtype == dt.bfloat16.np:       # ml_dtypes' bfloat16 (kind "V"): NumPy's ufunc via float32
        return np.signbit(x.astype(np.float32))
    if x.dtype.kind == "f":
        return np.signbit(x)
    return x < 0 if x.dtype.kind == "i" else np.zeros(x.shape, np.bool_)


unary("signbit", _signbit_np, _BOOL, None, "kiln_signbit({0})", differentiable=False)


def _vjp_copysign(b, g, x, y, out=None):
    # PyTorch: d/dx = out / x (+-1; 0 at x == 0, NaN at NaN); y gets a zero gradient
    gx = gy = None
    if not is_scalar(x) and wants(b, 0):
        o = out if out is not None else b.copysign(x, y)
        gx = sum_to(b, b.mul(g, b.where(b.eq(x, 0), 0.0, b.div(o, x))), x.shape)
    if not is_scalar(y) and wants(b, 1):
        gy = sum_to(b, b.mul(g, 0.0), y.shape)
    return gx, gy


def _fmaxmin_np(is_max):
    # PyTorch's kernel: a where a >= b (a <= b for fmin) or b is NaN, else b; so NaN loses
    # against a number and -0.0 vs 0.0 keeps the first operand
    def f(a, b):
        return np.where(((a >= b) if is_max else (a <= b)) | (b != b), a, b)
    return f


def _vjp_fmaxmin(is_max):
    # PyTorch: the whole gradient to the operand picked, to x at ties (no 0.5 split)
    def vjp(b, g, x, y, out=None):
        sel = b.logical_or(b.ge(x, y) if is_max else b.le(x, y),
                           b.isnan(y) if not is_scalar(y) else y != y)
        return (None if is_scalar(x) or not wants(b, 0) else
                sum_to(b, b.where(sel, g, 0.0), x.shape),
                None if is_scalar(y) or not wants(b, 1) else
                sum_to(b, b.where(sel, 0.0, g), y.shape))
    return vjp


binary("copysign", np.copysign, _FLOAT_ONLY, _vjp_copysign,
       "tl.where(kiln_signbit({1}), -tl.abs({0}), tl.abs({0}))")
binary("fmax", _fmaxmin_np(True), "arith", _vjp_fmaxmin(True),
       "kiln_fmax({0}, {1})")
binary("fmin", _fmaxmin_np(False), "arith", _vjp_fmaxmin(False),
       "kiln_fmin({0}, {1})")
binary("nextafter", np.nextafter, _REAL_FLOAT, None, "kiln_nextafter({0}, {1})",
       differentiable=False)
binary("gcd", np.gcd, _INT, None, "kiln_gcd({0}, {1})", differentiable=False)

# comparisons and logic compute in the promoted dtype and return bool
for _n, _f, _t in (("eq", np.equal, "{0} == {1}"), ("ne", np.not_equal, "{0} != {1}"),
                   ("lt", np.less, "{0} < {1}"), ("le", np.less_equal, "{0} <= {1}"),
                   ("gt", np.greater, "{0} > {1}"), ("ge", np.greater_equal, "{0} >= {1}"),
                   ("logical_and", np.logical_and, "({0} != 0) & ({1} != 0)"),
                   ("logical_or", np.logical_or, "({0} != 0) | ({1} != 0)"),
                   ("logical_xor", np.logical_xor, "({0} != 0) ^ ({1} != 0)")):
    binary(_n, _f, _BOOL, None, _t, differentiable=False, compute_promoted=True)

for _n, _f, _t in (("bitwise_and", np.bitwise_and, "{0} & {1}"),
                   ("bitwise_or", np.bitwise_or, "{0} | {1}"),
                   ("bitwise_xor", np.bitwise_xor, "{0} ^ {1}"),
                   ("bitwise_left_shift", np.left_shift, "{0} << {1}"),
                   ("bitwise_right_shift", np.right_shift, "{0} >> {1}")):
    binary(_n, _f, _INT, None, _t, differentiable=False)


# where and cast ---------------------------------------------------------------------------

def _where_meta(c, x, y):
    shapes = [a.shape for a in (c, x, y) if not is_scalar(a)]
    shape = broadcast_shapes("where", *shapes) if len(set(shapes)) > 1 else shapes[0]
    if not is_scalar(c) and c.dtype is not dt.bool_ and c.dtype is not dt.uint8:
        raise RuntimeError(f"where: expected condition to be a boolean tensor, but got a tensor "
                           f"with dtype {dt.tname(c.dtype)}")
    if is_scalar(x) and is_scalar(y):
        d = dt.result_type([], [], [x, y])
        if d.category == 2:
            d = dt.get_default_dtype()
    else:
        d = promote(x, y)
    return AVal(shape, d)


def _where_np(out, c, x, y):
    npd = out.dtype.np
    # typed operands: np.where with a Python scalar promotes through int64/float64 (2x slower)
    x = x.astype(npd) if type(x) is np.ndarray and x.dtype != npd else _typed(x, npd)
    y = y.astype(npd) if type(y) is np.ndarray and y.dtype != npd else _typed(y, npd)
    r = np.where(c, x, y)
    return r if r.dtype == npd else r.astype(npd)


def _typed(v, npd):
    if type(v) is np.ndarray:
        return v
    try:
        return npd.type(v)
    except (OverflowError, ValueError, TypeError):
        return v


def _vjp_where(b, g, c, x, y, out=None):
    return (None,
            None if is_scalar(x) else sum_to(b, b.where(c, g, 0.0), x.shape),
            None if is_scalar(y) else sum_to(b, b.where(c, 0.0, g), y.shape))


register(Prim("where", "pointwise", meta=_where_meta, numpy=_where_np, vjp=_vjp_where,
              triton="tl.where({0}, {1}, {2})", saves=(0,), grad_name="WhereBackward0"))


def _cast_meta(x, dtype):
    return AVal(x.shape, dtype)


def _cast_np(out, x, dtype):
    if x.dtype.kind == "c" and not dtype.is_complex:
        if dtype.category == 0:
            return x != 0   # to bool: nonzero when either part is (1e-3j is True)
        x = x.real      # PyTorch drops the imaginary part (NumPy would warn)
    if x.dtype == np.float64 and dtype.np == np.float16:
        x = x.astype(np.float32)    # c10::Half is built from a float: double -> float -> half
    return x.astype(dtype.np)


def _vjp_cast(b, g, x, out=None, dtype=None):
    if not (x.dtype.is_floating_point or x.dtype.is_complex):
        return (None,)
    return (b.cast(g, dtype=x.dtype),)


register(Prim("cast", "pointwise", meta=_cast_meta, numpy=_cast_np, vjp=_vjp_cast,
              triton="{0}.to({dtype})", saves=(), grad_name="ToCopyBackward0"))


# special functions ---------------------------------------------------------------------------
# The NumPy lowering runs the Triton helper's own source (codegen.triton_helpers.SPECIAL) under
# a NumPy shim, so both backends share one algorithm; both compute in float64 and round once.
from ..codegen.triton_helpers import host_special  # noqa: E402


def _special_np(helper, **fixed):
    def f(x):
        with np.errstate(all="ignore"):
            r = host_special()[helper](np.asarray(x, dtype=np.float64), **fixed)
        return np.asarray(r, dtype=np.float64)
    return f


def _tri(helper):
    return helper + "({0}.to(tl.float64))"


_SQRT_PI_2 = math.sqrt(math.pi) / 2


def _vjp_i1(b, g, x, out):
    # I1' = I0 - I1 / x, 1/2 at 0
    safe = b.where(b.eq(x, 0), 1.0, x)
    return (b.mul(g, b.where(b.eq(x, 0), 0.5, b.sub(b.i0(x), b.div(out, safe)))),)


def _vjp_i1e(b, g, x, out):
    # (e^-|x| I1)' = e^-|x| I0 - I1e (sign(x) + 1/x), 1/2 at 0
    safe = b.where(b.eq(x, 0), 1.0, x)
    d = b.sub(b.i0e(x), b.mul(out, b.add(b.sign(x), b.reciprocal(safe))))
    return (b.mul(g, b.where(b.eq(x, 0), 0.5, d)),)


unary("lgamma", _special_np("kiln_lgamma"), _FLOAT_ONLY,
      lambda b, g, x, out=None: (b.mul(g, b.digamma(x)),), _tri("kiln_lgamma"))
unary("digamma", _special_np("kiln_digamma"), _FLOAT_ONLY,
      lambda b, g, x, out=None: (b.mul(g, b.polygamma(x, n=1)),), _tri("kiln_digamma"))
unary("erfinv", _special_np("kiln_erfinv"), _FLOAT_ONLY,
      lambda b, g, x, out: (b.mul(g, b.mul(b.exp(b.mul(out, out)), _SQRT_PI_2)),),
      _tri("kiln_erfinv"), saves=(), saves_output=True)
unary("i0", _special_np("kiln_i0"), _FLOAT_ONLY,
      lambda b, g, x, out=None: (b.mul(g, b.i1(x)),), _tri("kiln_i0"))
unary("i0e", _special_np("kiln_i0e"), _FLOAT_ONLY,
      lambda b, g, x, out: (b.mul(g, b.sub(b.i1e(x), b.mul(b.sign(x), out))),),
      _tri("kiln_i0e"), saves_output=True)
unary("i1", _special_np("kiln_i1"), _FLOAT_ONLY, _vjp_i1, _tri("kiln_i1"), saves_output=True)
unary("i1e", _special_np("kiln_i1e"), _FLOAT_ONLY, _vjp_i1e, _tri("kiln_i1e"),
      saves_output=True)


def _polygamma_meta(x, n):
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"polygamma(): argument 'n' (position 1) must be int, not "
                        f"{type(n).__name__}")
    if n < 0:
        raise RuntimeError("polygamma(n, x) does not support negative n.")
    return _unary_meta("polygamma", _FLOAT_ONLY)(x)


def _polygamma_np(out, x, n):
    return _unary_np(_special_np("kiln_polygamma", n=n))(out, x)


register(Prim("polygamma", "pointwise", meta=_polygamma_meta, numpy=_polygamma_np,
              vjp=lambda b, g, x, out=None, n=0: (b.mul(g, b.polygamma(x, n=n + 1)),),
              triton="kiln_polygamma({0}.to(tl.float64), {n})", grad_name="PolygammaBackward0"))


# the rest of torch.special ---------------------------------------------------------------------
# PyTorch's algorithms (Cephes Bessel/Airy, the polynomials' recurrences with its special cases)
# as float64 helpers in codegen.triton_helpers, shared by both lowerings. Float32/float64 only,
# as PyTorch (no Half, BFloat16 or complex kernels; integers and bool compute in the default
# float dtype). PyTorch gives none of them a gradient except zeta's with respect to q.
from ..codegen.triton_helpers import POLY_STEPS, _CHEB_STEPS  # noqa: E402


def _f32_f64_only(name, d):
    if d in (dt.float16, dt.bfloat16) or d.is_complex:
        raise NotImplementedError(f"\"{name}_cpu\" not implemented for '{dt.tname(d)}'")


def _sp_unary_meta(name):
    base = _unary_meta(name, _FLOAT_ONLY)

    def meta(x):
        _f32_f64_only(name, x.dtype)
        return base(x)
    return meta


def _sp_binary_meta(name):
    def meta(a, b):
        for v in (a, b):
            if is_scalar(v) and isinstance(v, complex):
                _f32_f64_only(name, dt.complex64)
        sa = a.shape if not is_scalar(a) else ()
        sb = b.shape if not is_scalar(b) else ()
        shape = sa if sa == sb else broadcast_shapes(name, sa, sb)
        d = promote(a, b)
        _f32_f64_only(name, d)
        if not d.is_floating_point:
            d = dt.get_default_dtype()
        return AVal(shape, d)
    return meta


def _sp_unary(name, helper, **fixed):
    register(Prim(name, "pointwise", meta=_sp_unary_meta(name),
                  numpy=_unary_np(_special_np(helper, **fixed)),
                  triton=(f"{helper}({{0}}.to(tl.float64)" +
                          "".join(f", {v}" for v in fixed.values()) + ")"),
                  differentiable=False))


for _n in ("airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "modified_bessel_i0",
           "modified_bessel_i1", "spherical_bessel_j0"):
    _sp_unary(_n, "kiln_" + _n)
for _n, _o, _s in (("modified_bessel_k0", 0, False), ("modified_bessel_k1", 1, False),
                   ("scaled_modified_bessel_k0", 0, True), ("scaled_modified_bessel_k1", 1, True)):
    _sp_unary(_n, "kiln_bessel_k", order=_o, scaled=_s)


def _poly_np(helper, cap, hermite=False):
    """NumPy lowering of a polynomial (x, n): operands in the result dtype (as PyTorch casts
    them), then the float64 helper; its loop runs only as far as the largest n needs."""
    def impl(out, a, b):
        npd = out.dtype.np
        x = np.asarray(np.asarray(a).astype(npd), dtype=np.float64)
        n = np.asarray(np.asarray(b).astype(npd), dtype=np.float64)
        fin = n[np.isfinite(n)] if n.size else n
        top = int(min(cap, max(0.0, float(fin.max())))) if fin.size else 0
        steps = min(cap, top + 1)
        with np.errstate(all="ignore"):
            if hermite:
                lim = 512.0 if npd == np.float64 else 128.0
                r = host_special()[helper](x, n, lim, steps)
            else:
                r = host_special()[helper](x, n, steps)
        return np.asarray(r, dtype=np.float64).astype(npd)
    return impl


def _sp_binary(name, helper, cap, hermite=False, vjp=None, grad_name=None):
    if hermite:
        tri = (f"{helper}({{0}}.to(tl.float64), {{1}}.to(tl.float64), kiln_hermite_lim({{0}}), "
               f"{cap})")
    else:
        tri = f"{helper}({{0}}.to(tl.float64), {{1}}.to(tl.float64), {cap})"
    register(Prim(name, "pointwise", meta=_sp_binary_meta(name),
                  numpy=_poly_np(helper, cap, hermite), triton=tri,
                  differentiable=False))


for _k in "tuvw":
    _sp_binary(f"chebyshev_polynomial_{_k}", f"kiln_chebyshev_{_k}", _CHEB_STEPS)
    _sp_binary(f"shifted_chebyshev_polynomial_{_k}", f"kiln_shifted_chebyshev_{_k}", _CHEB_STEPS)
_sp_binary("hermite_polynomial_h", "kiln_hermite_h", 513, hermite=True)
_sp_binary("hermite_polynomial_he", "kiln_hermite_he", 513, hermite=True)
_sp_binary("laguerre_polynomial_l", "kiln_laguerre_l", POLY_STEPS)
_sp_binary("legendre_polynomial_p", "kiln_legendre_p", POLY_STEPS)


def _zeta_np(out, a, b):
    npd = out.dtype.np
    x = np.asarray(np.asarray(a).astype(npd), dtype=np.float64)
    q = np.asarray(np.asarray(b).astype(npd), dtype=np.float64)
    with np.errstate(all="ignore"):
        r = host_special()["kiln_zeta"](*np.broadcast_arrays(x, q))
    return np.asarray(r, dtype=np.float64).astype(npd)


def _vjp_zeta(b, g, x, q, out=None):
    # PyTorch: d/dq zeta(x, q) = -x zeta(x + 1, q); no derivative with respect to x
    if not is_scalar(x) and wants(b, 0):
        raise NotImplementedError("the derivative for 'zeta' is not implemented.")
    gq = None
    if not is_scalar(q) and wants(b, 1):
        x1 = x + 1 if is_scalar(x) else b.add(x, 1)
        gq = sum_to(b, b.mul(g, b.mul(b.zeta(x1, q), -x if is_scalar(x) else b.neg(x))),
                    q.shape)
    return None, gq


register(Prim("zeta", "pointwise", meta=_sp_binary_meta("zeta"), numpy=_zeta_np, vjp=_vjp_zeta,
              triton="kiln_zeta({0}.to(tl.float64), {1}.to(tl.float64))",
              grad_name="SpecialZetaBackward0"))
