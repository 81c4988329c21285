"""torch.testing: assert_close, make_tensor and the deprecated assert_allclose, after PyTorch
2.13's torch/testing/_comparison.py and _creation.py: the same pairing of (nested) inputs, the
same checks in the same order, the same error types and messages.

Values are compared on the host as NumPy arrays with torch.isclose's arithmetic (the allowed
error is computed in the inputs' dtype, half and bfloat16 ops in float32 rounded back), so
inputs right at a tolerance boundary pass or fail exactly as they do in PyTorch.
"""
import cmath
import collections.abc
import contextlib
import math
import warnings

import numpy as np

from runtime import dtypes as dt
from .tensor import Tensor

__all__ = ["assert_close", "make_tensor", "assert_allclose"]

# {dtype: (rtol, atol)}; every other dtype (integers, bool) compares exactly
_DTYPE_PRECISIONS = {
    dt.float16: (0.001, 1e-5),
    dt.bfloat16: (0.016, 1e-5),
    dt.float32: (1.3e-6, 1e-5),
    dt.float64: (1e-7, 1e-7),
    dt.complex32: (0.001, 1e-5),
    dt.complex64: (1.3e-6, 1e-5),
    dt.complex128: (1e-7, 1e-7),
}
_LOW = (dt.float16, dt.bfloat16)   # PyTorch computes these in float32 and rounds each result

_ISSUE = ("If you are a user and see this message during normal operation please file an issue "
          "at https://github.com/pytorch/pytorch/issues. If you are a developer and working on "
          "the comparison functions, please except the previous error and raise an expressive "
          "`ErrorMeta` instead.")


class _ErrorMeta(Exception):
    """An error found while pairing or comparing, raised to the user only at the end so that
    `msg` can replace it and the failing item's id can be appended."""

    def __init__(self, type, msg, *, id=()):
        super().__init__(msg)
        self.type, self.msg, self.id = type, msg, id

    def to_error(self, msg=None):
        if not isinstance(msg, str):
            generated = self.msg
            if self.id:
                generated += ("\n\nThe failure occurred for item "
                              f"{''.join(str([item]) for item in self.id)}")
            msg = msg(generated) if callable(msg) else generated
        return self.type(msg)


class _Unsupported(Exception):
    """A pair type cannot handle these inputs: the next one is tried."""


def _default_tolerances(*dtypes, precisions=_DTYPE_PRECISIONS):
    """The loosest tolerances of the dtypes (so a float32/float64 pair gets float32's)."""
    rtols, atols = zip(*[precisions.get(d, (0.0, 0.0)) for d in dtypes])
    return max(rtols), max(atols)


def _get_tolerances(*dtypes, rtol, atol, id):
    # both or neither: atol=0.0 alone would still pass values within the default rtol
    if (rtol is None) ^ (atol is None):
        raise _ErrorMeta(ValueError, "Both 'rtol' and 'atol' must be either specified or "
                         f"omitted, but got no {'rtol' if rtol is None else 'atol'}.", id=id)
    if rtol is not None:
        return rtol, atol
    return _default_tolerances(*dtypes)


# ---- messages ---------------------------------------------------------------------------------

def _mismatch_msg(default_identifier, extra, abs_diff, abs_idx, atol, rel_diff, rel_idx, rtol):
    equality = rtol == 0 and atol == 0

    def diff_msg(kind, diff, idx, tol):
        m = (f"{kind.title()} difference: {diff}" if idx is None else
             f"Greatest {kind} difference: {diff} at index {idx}")
        return m + ("" if equality else f" (up to {tol} allowed)") + "\n"

    msg = f"{default_identifier} are not {'equal' if equality else 'close'}!\n\n"
    if extra:
        msg += f"{extra.strip()}\n"
    msg += diff_msg("absolute", abs_diff, abs_idx, atol)
    msg += diff_msg("relative", rel_diff, rel_idx, rtol)
    return msg.strip()


def _scalar_mismatch_msg(actual, expected, *, rtol, atol):
    abs_diff = abs(actual - expected)
    rel_diff = float("inf") if expected == 0 else abs_diff / abs(expected)
    return _mismatch_msg("Scalars", f"Expected {expected} but got {actual}.", abs_diff, None,
                         atol, rel_diff, None, rtol)


# ---- values -----------------------------------------------------------------------------------

def _rounder(d):
    """Rounds a float32 result to half/bfloat16 as PyTorch's kernels do (complex32: each part,
    and its real results, to half); others are exact."""
    if d in _LOW:
        return lambda x: x.astype(d.np).astype(np.float32)
    if d is dt.complex32:
        return lambda x: dt.chalf_round(x) if np.iscomplexobj(x) else \
            x.astype(np.float16).astype(np.float32)
    return lambda x: x


def _work(a, d):
    """Array a ready for arithmetic in dtype d (half/bfloat16 values held exactly in float32,
    complex32 ones in complex64)."""
    return a.astype(np.float32) if d in _LOW else a.astype(np.complex64) if d is dt.complex32 \
        else a


def _isclose(a, e, d, rtol, atol, equal_nan):
    """torch.isclose(a, e, rtol, atol, equal_nan) for host arrays of dtype d."""
    if rtol < 0:
        raise RuntimeError(f"rtol must be greater than or equal to zero, but got {rtol:g}")
    if atol < 0:
        raise RuntimeError(f"atol must be greater than or equal to zero, but got {atol:g}")
    close = a == e
    if equal_nan and (d.is_floating_point or d.is_complex):
        close |= np.isnan(a) & np.isnan(e)
    if rtol == 0 and atol == 0:
        return close
    # rtol * other makes integers (and bool) the default float dtype, and the allowed error
    # keeps that dtype: float32 inputs get a float32 tolerance, not a float64 one
    fd = d if d.is_floating_point or d.is_complex else dt.get_default_dtype()
    rnd, w = _rounder(fd), (np.float32 if fd in _LOW or fd is dt.complex32 else
                            fd.to_real().np.type)
    if d is dt.bool_:
        a, e, d = a.astype(fd.np), e.astype(fd.np), fd
    a, e = _work(a, d), _work(e, d)
    allowed = rnd(w(atol) + _abs(rnd(w(rtol) * _work(e.astype(fd.np), fd))))
    actual = _abs(_rounder(d)(a - e))         # integers wrap as in PyTorch
    actual = rnd(actual.astype(allowed.dtype))
    return close | (np.isfinite(actual) & (actual <= allowed))


def _abs(x):
    """|x|; complex as hypot, which rounds as PyTorch's complex abs does (NumPy's complex64
    abs is an ulp off for about a third of values)."""
    return np.hypot(x.real, x.imag) if np.iscomplexobj(x) else np.abs(x)


def _item(x, d):
    """The Python number Tensor.item() gives for element x of dtype d."""
    if d.is_complex:
        return complex(x)
    if d.is_floating_point:
        return float(x)
    return bool(x) if d is dt.bool_ else int(x)


def _tensor_mismatch_msg(a, e, d, matches, *, rtol, atol):
    n = matches.size
    total = n - int(np.count_nonzero(matches))
    extra = f"Mismatched elements: {total} / {n} ({total / n:.1%})"
    af, ef, mf = a.ravel(), e.ravel(), matches.ravel()
    if not (d.is_floating_point or d.is_complex):
        af, ef, d = af.astype(np.int64), ef.astype(np.int64), dt.int64
    rnd = _rounder(d)
    af, ef = _work(af, d), _work(ef, d)
    abs_diff = _abs(rnd(af - ef))           # (complex: a real array)
    abs_diff[mf] = 0                          # only mismatches count
    if d is dt.int64:                         # int / int is true division in the default dtype
        fd = dt.get_default_dtype()
        rel_diff = _rounder(fd)(_work(abs_diff.astype(fd.np), fd) /
                                _work(np.abs(ef).astype(fd.np), fd))
    else:
        rel_diff = rnd(abs_diff / rnd(_abs(ef)))      # (|complex32| is half too)
    rel_diff[mf] = 0
    # argmax: the first greatest, or the first NaN, as torch.max(t, 0) picks
    ia, ir = int(np.argmax(abs_diff)), int(np.argmax(rel_diff))

    def index(flat):
        return tuple(int(i) for i in np.unravel_index(flat, matches.shape))

    abs_val = int(abs_diff[ia]) if d is dt.int64 else float(abs_diff[ia])
    return _mismatch_msg("Tensor-likes", extra, abs_val, index(ia), atol, float(rel_diff[ir]),
                         index(ir), rtol)


# ---- pairs: one leaf comparison each ------------------------------------------------------------

class _Pair:
    """PyTorch's Pair: built from a leaf of the inputs (raising _Unsupported when it cannot
    handle them), then compare() raises an _ErrorMeta on mismatch."""
    extra_repr = ()

    def __init__(self, actual, expected, *, id=(), **unknown):
        self.actual, self.expected, self.id = actual, expected, id

    def _fail(self, type, msg):
        raise _ErrorMeta(type, msg, id=self.id)

    def __repr__(self):
        items = [("id", self.id), ("actual", self.actual), ("expected", self.expected),
                 *[(name, getattr(self, name)) for name in self.extra_repr]]
        return "\n".join((f"{type(self).__name__}(", *[f"    {k}={v!s}," for k, v in items], ")"))


class NonePair(_Pair):
    def __init__(self, actual, expected, **options):
        if not (actual is None or expected is None):
            raise _Unsupported
        super().__init__(actual, expected, **options)

    def compare(self):
        if not (self.actual is None and self.expected is None):
            self._fail(AssertionError, f"None mismatch: {self.actual} is not {self.expected}")


class BooleanPair(_Pair):
    def __init__(self, actual, expected, **options):
        if not all(isinstance(x, (bool, np.bool_)) for x in (actual, expected)):
            raise _Unsupported
        super().__init__(bool(actual), bool(expected), **options)

    def compare(self):
        if self.actual is not self.expected:
            self._fail(AssertionError, f"Booleans mismatch: {self.actual} is not {self.expected}")


class NumberPair(_Pair):
    """Python numbers (and NumPy scalars, as their .item()): int as int64, float as float64,
    complex as complex128 for the default tolerances."""
    _TYPE_TO_DTYPE = {int: dt.int64, float: dt.float64, complex: dt.complex128}
    extra_repr = ("rtol", "atol", "equal_nan", "check_dtype")

    def __init__(self, actual, expected, *, id=(), rtol=None, atol=None, equal_nan=False,
                 check_dtype=False, **options):
        if not all(isinstance(x, (int, float, complex, np.number)) for x in (actual, expected)):
            raise _Unsupported
        actual, expected = (x.item() if isinstance(x, np.number) else x
                            for x in (actual, expected))
        super().__init__(actual, expected, id=id, **options)
        # (a bool against an int has no entry here: a KeyError, reported as PyTorch does)
        self.rtol, self.atol = _get_tolerances(*[self._TYPE_TO_DTYPE[type(x)] for x in
                                                 (actual, expected)], rtol=rtol, atol=atol, id=id)
        self.equal_nan, self.check_dtype = equal_nan, check_dtype

    def compare(self):
        a, e = self.actual, self.expected
        if self.check_dtype and type(a) is not type(e):
            self._fail(AssertionError, f"The (d)types do not match: {type(a)} != {type(e)}.")
        if a == e or self.equal_nan and cmath.isnan(a) and cmath.isnan(e):
            return
        abs_diff = abs(a - e)
        if cmath.isfinite(abs_diff) and abs_diff <= self.atol + self.rtol * abs(e):
            return
        self._fail(AssertionError, _scalar_mismatch_msg(a, e, rtol=self.rtol, atol=self.atol))


class TensorLikePair(_Pair):
    """Tensors, or two inputs of related types that as_tensor accepts (e.g. NumPy arrays)."""
    extra_repr = ("rtol", "atol", "equal_nan", "check_device", "check_dtype", "check_layout",
                  "check_stride")

    def __init__(self, actual, expected, *, id=(), allow_subclasses=True, rtol=None, atol=None,
                 equal_nan=False, check_device=True, check_dtype=True, check_layout=True,
                 check_stride=False, **options):
        if not (isinstance(actual, type(expected)) or isinstance(expected, type(actual))):
            raise _Unsupported
        if not allow_subclasses and type(actual) is not type(expected):
            raise _Unsupported
        actual, expected = self._to_tensor(actual), self._to_tensor(expected)
        super().__init__(actual, expected, id=id, **options)
        self.rtol, self.atol = _get_tolerances(actual.dtype, expected.dtype, rtol=rtol,
                                               atol=atol, id=id)
        self.equal_nan, self.check_device, self.check_dtype = equal_nan, check_device, check_dtype
        self.check_layout, self.check_stride = check_layout, check_stride

    @staticmethod
    def _to_tensor(x):
        if isinstance(x, Tensor):
            return x
        from .creation import as_tensor
        try:
            return as_tensor(x)
        except Exception:
            raise _Unsupported from None

    def compare(self):
        a, e = self.actual, self.expected

        def mismatch(name, x, y):
            self._fail(AssertionError, f"The values for attribute '{name}' do not match: "
                                       f"{x} != {y}.")

        if a.shape != e.shape:
            mismatch("shape", a.shape, e.shape)
        if a.layout != e.layout:
            if self.check_layout:
                mismatch("layout", a.layout, e.layout)
        elif self.check_stride and a.stride() != e.stride():
            mismatch("stride()", a.stride(), e.stride())
        if self.check_device and a.device != e.device:
            mismatch("device", a.device, e.device)
        if self.check_dtype and a.dtype != e.dtype:
            mismatch("dtype", a.dtype, e.dtype)
        if "meta" in (a.device.type, e.device.type):
            return                                  # meta tensors have no values

        # the values: on the host (as PyTorch moves tensors of different devices to cpu),
        # promoted to a common dtype when check_dtype=False let different ones through
        d = a.dtype if a.dtype is e.dtype else dt.promote_types(a.dtype, e.dtype)
        if d is dt.complex32:     # (no NumPy complex32: its values are exact in complex64)
            a, e = a.to(dt.complex64), e.to(dt.complex64)
        av, ev = (np.asarray(t.detach().cpu().numpy()).astype(d.np, copy=False) for t in (a, e))
        with np.errstate(all="ignore"):
            matches = _isclose(av, ev, d, self.rtol, self.atol, self.equal_nan)
            if matches.all():
                return
            if av.ndim == 0:
                msg = _scalar_mismatch_msg(_item(av[()], d), _item(ev[()], d), rtol=self.rtol,
                                           atol=self.atol)
            else:
                msg = _tensor_mismatch_msg(av, ev, d, matches, rtol=self.rtol, atol=self.atol)
        self._fail(AssertionError, msg)


_PAIR_TYPES = (NonePair, BooleanPair, NumberPair, TensorLikePair)


def _originate(actual, expected, id, options):
    """The leaf pairs of two (possibly nested) sequences / mappings, checking their structure."""
    seq = collections.abc.Sequence
    if (isinstance(actual, seq) and not isinstance(actual, str) and isinstance(expected, seq)
            and not isinstance(expected, str)):        # (a str's items are strs: no recursion)
        if len(actual) != len(expected):
            raise _ErrorMeta(AssertionError, "The length of the sequences mismatch: "
                             f"{len(actual)} != {len(expected)}", id=id)
        return [p for i in range(len(actual))
                for p in _originate(actual[i], expected[i], (*id, i), options)]
    if isinstance(actual, collections.abc.Mapping) and isinstance(expected,
                                                                  collections.abc.Mapping):
        actual_keys, expected_keys = set(actual.keys()), set(expected.keys())
        if actual_keys != expected_keys:
            raise _ErrorMeta(AssertionError, (
                "The keys of the mappings do not match:\n"
                f"Missing keys in the actual mapping: {sorted(expected_keys - actual_keys)}\n"
                f"Additional keys in the actual mapping: {sorted(actual_keys - expected_keys)}"),
                id=id)
        keys = actual_keys
        with contextlib.suppress(Exception):     # sorted when sortable: the first failure is stable
            keys = sorted(keys)
        return [p for k in keys for p in _originate(actual[k], expected[k], (*id, k), options)]

    for pair_type in _PAIR_TYPES:
        try:
            return [pair_type(actual, expected, id=id, **options)]
        except _Unsupported:
            continue
        except _ErrorMeta:
            raise
        except Exception as error:
            raise RuntimeError(
                f"Originating a {pair_type.__name__}() at item {''.join(str([i]) for i in id)} "
                f"with\n\n{type(actual).__name__}(): {actual}\n\nand\n\n"
                f"{type(expected).__name__}(): {expected}\n\nresulted in the unexpected "
                f"exception above. {_ISSUE}") from error
    raise _ErrorMeta(TypeError, "No comparison pair was able to handle inputs of type "
                     f"{type(actual)} and {type(expected)}.", id=id)


def assert_close(actual, expected, *, allow_subclasses=True, rtol=None, atol=None,
                 equal_nan=False, check_device=True, check_dtype=True, check_layout=True,
                 check_stride=False, msg=None):
    """Asserts |actual - expected| <= atol + rtol * |expected| element-wise (inf only equal to
    itself, NaN equal to NaN only with equal_nan), after checking shape, device, dtype, layout
    and (with check_stride) strides. Inputs: tensors, Python or NumPy scalars, NumPy arrays, or
    nested sequences / mappings of them. `msg` (a str, or a callable given the generated
    message) replaces the message of a mismatch, not of a structure or type error."""
    __tracebackhide__ = True
    options = dict(allow_subclasses=allow_subclasses, rtol=rtol, atol=atol, equal_nan=equal_nan,
                   check_device=check_device, check_dtype=check_dtype,
                   check_layout=check_layout, check_stride=check_stride)
    try:
        pairs = _originate(actual, expected, (), options)
    except _ErrorMeta as meta:
        raise meta.to_error() from None

    # every pair is compared (an unexpected error in a later one wins); the first mismatch raises
    metas = []
    for pair in pairs:
        try:
            pair.compare()
        except _ErrorMeta as meta:
            metas.append(meta)
        except Exception as error:
            raise RuntimeError(f"Comparing\n\n{pair}\n\nresulted in the unexpected exception "
                               f"above. {_ISSUE}") from error
    if metas:
        raise metas[0].to_error(msg)


def assert_allclose(actual, expected, rtol=None, atol=None, equal_nan=True, msg=""):
    """Deprecated since PyTorch 1.12: assert_close with check_dtype=False, equal_nan=True and
    looser float tolerances."""
    warnings.warn("`torch.testing.assert_allclose()` is deprecated since 1.12 and will be "
                  "removed in a future release. Please use `torch.testing.assert_close()` "
                  "instead. You can find detailed upgrade instructions in "
                  "https://github.com/pytorch/pytorch/issues/61844.", FutureWarning, stacklevel=2)
    from .creation import tensor
    if not isinstance(actual, Tensor):
        actual = tensor(actual)
    if not isinstance(expected, Tensor):
        expected = tensor(expected, dtype=actual.dtype)
    if rtol is None and atol is None:
        rtol, atol = _default_tolerances(actual.dtype, expected.dtype, precisions={
            dt.float16: (1e-3, 1e-3), dt.float32: (1e-4, 1e-5), dt.float64: (1e-5, 1e-8)})
    assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan, check_device=True,
                 check_dtype=False, check_stride=False, msg=msg or None)


# ---- make_tensor --------------------------------------------------------------------------------

_INTEGRAL = tuple(d for d in dt.ALL if d.category == 1)     # (uint16/32/64 too)
_BOOL_OR_INTEGRAL = (dt.bool_, *_INTEGRAL)
_FLOATING_OR_COMPLEX = (dt.float16, dt.bfloat16, dt.float32, dt.float64, dt.complex64,
                        dt.complex128)


def make_tensor(*shape, dtype, device, low=None, high=None, requires_grad=False,
                noncontiguous=False, exclude_zero=False, memory_format=None):
    """A tensor of `shape` with values uniform in [low, high) from Kiln's generator (so
    torch.manual_seed reproduces it). Defaults: bool [0, 2), uint8 [0, 10), other integers
    [-9, 10), floating and complex [-9, 9) (both parts); bounds are clamped to the dtype's
    range. noncontiguous: every other element of a tensor twice as wide in the last dim.
    exclude_zero: zeros become 1 (bool, integers) or finfo(dtype).tiny."""
    from .creation import empty, randint

    def modify_low_high(low, high, *, lowest_inclusive, highest_exclusive, default_low,
                        default_high):
        low = low if low is not None else default_low
        high = high if high is not None else default_high
        if any(isinstance(v, float) and math.isnan(v) for v in (low, high)):
            raise ValueError(f"`low` and `high` cannot be NaN, but got {low=} and {high=}")
        elif low == high and dtype in _FLOATING_OR_COMPLEX:
            warnings.warn("Passing `low==high` to `torch.testing.make_tensor` for floating or "
                          "complex types is deprecated since 2.1 and will be removed in 2.3. "
                          "Use `torch.full(...)` instead.", FutureWarning, stacklevel=3)
        elif low >= high:
            raise ValueError(f"`low` must be less than `high`, but got {low} >= {high}")
        elif high < lowest_inclusive or low >= highest_exclusive:
            raise ValueError(f"The value interval specified by `low` and `high` is [{low}, "
                             f"{high}), but {dtype} only supports [{lowest_inclusive}, "
                             f"{highest_exclusive})")
        low = min(max(low, lowest_inclusive), highest_exclusive)
        high = min(max(high, lowest_inclusive), highest_exclusive)
        if dtype in _BOOL_OR_INTEGRAL:
            # ceil both: low so no value falls below it, high because randint excludes it
            return math.ceil(low), math.ceil(high)
        return low, high

    if len(shape) == 1 and isinstance(shape[0], collections.abc.Sequence):
        shape = shape[0]
    shape = tuple(shape)
    if noncontiguous and memory_format is not None:
        raise ValueError("The parameters `noncontiguous` and `memory_format` are mutually "
                         f"exclusive, but got {noncontiguous=} and {memory_format=}")
    if requires_grad and dtype in _BOOL_OR_INTEGRAL:
        raise ValueError("`requires_grad=True` is not supported for boolean and integral "
                         f"dtypes, but got {dtype=}")

    noncontiguous = noncontiguous and math.prod(shape) > 1
    if noncontiguous:
        # twice as wide, so the every-other-element view holds distinct drawn values
        shape = (*shape[:-1], 2 * shape[-1])

    if dtype is dt.bool_:
        low, high = modify_low_high(low, high, lowest_inclusive=0, highest_exclusive=2,
                                    default_low=0, default_high=2)
        result = randint(low, high, shape, device=device, dtype=dtype)
    elif dtype in _INTEGRAL:
        info = dt.iinfo(dtype)
        # randint takes int64 bounds, so int64's maximum itself cannot be drawn
        low, high = modify_low_high(low, high, lowest_inclusive=info.min,
                                    highest_exclusive=info.max + (dtype is not dt.int64),
                                    default_low=-9, default_high=10)
        result = randint(low, high, shape, device=device, dtype=dtype)
    elif dtype in _FLOATING_OR_COMPLEX:
        info = dt.finfo(dtype)
        low, high = modify_low_high(low, high, lowest_inclusive=info.min,
                                    highest_exclusive=info.max, default_low=-9, default_high=9)
        result = empty(shape, device=device, dtype=dtype)
        # uniform_ needs high - low to be finite in the dtype: draw half the range, then double
        if high - low >= info.max:
            result.uniform_(low / 2, high / 2).mul_(2)
        else:
            result.uniform_(low, high)      # (complex: both parts from [low, high))
    else:
        raise TypeError(f"The requested dtype '{dtype}' is not supported by "
                        "torch.testing.make_tensor(). To request support, file an issue at: "
                        "https://github.com/pytorch/pytorch/issues")

    if noncontiguous:
        result = result[..., 1::2]          # offset by one, to catch offset bugs too
    elif memory_format is not None:
        result = result.clone(memory_format=memory_format)
    if exclude_zero:
        result[result == 0] = 1 if dtype in _BOOL_OR_INTEGRAL else dt.finfo(dtype).tiny
    if dtype in _FLOATING_OR_COMPLEX:
        result.requires_grad = requires_grad
    return result
