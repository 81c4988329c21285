"""float8 formats (float8_e4m3fn, float8_e5m2, their fnuz variants, float8_e8m0fnu).

NumPy has no float8: a float8 tensor's storage is a float32 array whose values always lie on
the format's grid (dispatch rounds every result with `round_to`, as complex32 rounds to
float16 parts); `encode`/`decode` convert to and from the 1-byte patterns PyTorch stores
(bitwise views, checkpoints). Rounding follows PyTorch 2.13's CPU casts: round to nearest
even, subnormals kept; out of range, e4m3fn saturates to +-448 (inf too), e5m2 goes to inf,
the fnuz formats to their single NaN (and have no -0); e8m0fnu (a power of two, no sign)
rounds a mantissa >= 0.5 up and maps nan/inf/overflow to NaN. NaN payloads are not kept.
"""
import numpy as np


class Format:
    """One float8 layout: `mbits` mantissa bits, exponent `bias`; `fnuz`: no inf, no -0, the one
    NaN is 0x80; `sat`: overflow saturates to +-max (else inf, or NaN without inf)."""

    def __init__(self, name, ebits, mbits, bias, fnuz=False, inf=False, sat=False):
        self.name, self.ebits, self.mbits, self.bias = name, ebits, mbits, bias
        self.fnuz, self.inf, self.sat = fnuz, inf, sat
        self.table = _decode_table(ebits, mbits, bias, fnuz, inf)     # byte -> float32
        pos = self.table[:128] if ebits < 8 else self.table[:255]
        self.pos = pos[np.isfinite(pos)]         # ascending magnitudes of codes 0, 1, ...
        self.max = float(self.pos[-1])
        self.emin = -bias if ebits == 8 else 1 - bias     # exponent of the smallest normal

    def round(self, a):
        return round_to(self, a)

    def encode(self, a):
        return encode(self, a)

    def decode(self, b):
        return decode(self, b)


def _decode_table(ebits, mbits, bias, fnuz, inf):
    """The value of every byte, from its sign, exponent and mantissa fields."""
    b = np.arange(256)
    if ebits == 8:                       # e8m0fnu: all 8 bits are the exponent
        v = np.ldexp(1.0, b - bias)
        v[255] = np.nan
        return v.astype(np.float32)
    s = b >> 7
    e = (b >> mbits) & ((1 << ebits) - 1)
    m = b & ((1 << mbits) - 1)
    mag = np.where(e == 0, np.ldexp(m / 2.0 ** mbits, 1 - bias),
                   np.ldexp(1 + m / 2.0 ** mbits, e - bias))
    v = np.where(s == 1, -mag, mag)
    nan = np.where(s == 1, -np.nan, np.nan)             # (a NaN keeps its sign)
    top = e == (1 << ebits) - 1
    if fnuz:
        v[0x80] = np.nan
    elif inf:                             # IEEE-like (e5m2): top exponent is inf / NaN
        v[top & (m == 0)] = np.where(s[top & (m == 0)] == 1, -np.inf, np.inf)
        v[top & (m != 0)] = nan[top & (m != 0)]
    else:                                 # e4m3fn: only S.1111.111 is NaN
        v[top & (m == (1 << mbits) - 1)] = nan[top & (m == (1 << mbits) - 1)]
    return v.astype(np.float32)


E4M3FN = Format("float8_e4m3fn", 4, 3, 7, sat=True)
E5M2 = Format("float8_e5m2", 5, 2, 15, inf=True)
E4M3FNUZ = Format("float8_e4m3fnuz", 4, 3, 8, fnuz=True)
E5M2FNUZ = Format("float8_e5m2fnuz", 5, 2, 16, fnuz=True)
E8M0FNU = Format("float8_e8m0fnu", 8, 0, 127)


def round_to(f, a):
    """Values of `a` (any real array or number) as format f holds them: a new float32 array
    (PyTorch casts float64 to float first, so it rounds twice too)."""
    x = np.array(a, np.float32)
    if np.iscomplexobj(a):
        x = np.array(np.real(a), np.float32)
    if f.ebits == 8:
        return _round_e8m0(x)
    with np.errstate(invalid="ignore", over="ignore"):
        d = x.astype(np.float64)
        _, e = np.frexp(d)                      # |d| = m * 2**e, 0.5 <= m < 1
        q = np.ldexp(1.0, np.maximum(e - 1, f.emin) - f.mbits)   # the grid step at |d|
        r = np.rint(d / q) * q                  # (rint: ties to even; exact in float64)
        over = np.abs(r) > f.max                # (inf too)
        if f.sat:
            r = np.where(over, np.copysign(f.max, d), r)
        elif f.inf:
            r = np.where(over, np.copysign(np.inf, d), r)
        else:
            r = np.where(over, np.nan, r)
        if f.fnuz:
            r = np.where(np.isnan(d), np.nan, r + 0.0)    # (+ 0.0: no -0)
    return r.astype(np.float32)


def _round_e8m0(x):
    """PyTorch's fp8e8m0fnu_from_fp32_value on the float32 bits: the biased exponent, plus one
    when the mantissa's top bit is set (a subnormal: when it is above 2**-127); sign ignored."""
    bits = np.ascontiguousarray(x).view(np.uint32) & np.uint32(0x7FFFFFFF)
    e = (bits >> np.uint32(23)).astype(np.int64)
    m = bits & np.uint32(0x7FFFFF)
    up = np.where(e == 0, m > 0x400000, m >= 0x400000)
    code = np.where(e == 255, 255, np.minimum(e + up, 255))
    return E8M0FNU.table[code].reshape(np.shape(x))


def encode(f, a):
    """The bytes (uint8, same shape) of values `a` already on format f's grid."""
    x = np.asarray(a, np.float32)
    if f.ebits == 8:
        c = np.searchsorted(f.pos, x)
        return np.where(np.isnan(x), 255, np.minimum(c, 254)).astype(np.uint8)
    c = np.searchsorted(f.pos, np.abs(x)).astype(np.int64)     # (codes ascend with magnitude)
    if f.inf:
        c = np.where(np.isinf(x), 0x7C, c)
    neg = np.signbit(x)
    if f.fnuz:
        return np.where(np.isnan(x), 0x80, c | np.where(neg & (x != 0), 0x80, 0)).astype(np.uint8)
    c = np.where(np.isnan(x), 0x7F, c)                 # (a NaN keeps its sign, as in PyTorch)
    return (c | np.where(neg, 0x80, 0)).astype(np.uint8)


def decode(f, b):
    """float32 values of float8 bytes `b` (a uint8 array)."""
    return f.table[np.asarray(b, np.uint8)]
