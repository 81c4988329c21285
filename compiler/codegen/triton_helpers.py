"""Triton device functions that registry expressions may call by name (`kiln_expm1({0})`).

They stand in for libdevice (log1p, expm1, tanh, ...), which Triton's interpreter cannot run,
and for ops whose integer and float forms differ (floor_divide, pow). Each is source text; the
generator copies the ones a kernel uses into that kernel's file, so the file is self-contained
and runs the same under the JIT and the interpreter.
"""

HELPERS = {
    "kiln_expm1": '''
@triton.jit
def kiln_expm1(x):
    u = tl.exp(x)
    # Kahan: (u - 1) * x / log(u) cancels the rounding error of u when |x| is small
    return tl.where(u == 1.0, x, tl.where(tl.abs(x) < 1.0, (u - 1.0) * x / tl.log(u), u - 1.0))
''',
    "kiln_log1p": '''
@triton.jit
def kiln_log1p(x):
    u = 1.0 + x
    # Kahan: the same correction for the rounding of 1 + x
    return tl.where(u == 1.0, x, tl.where(tl.abs(x) < 1.0, tl.log(u) * x / (u - 1.0), tl.log(u)))
''',
    "kiln_tanh": '''
@triton.jit
def kiln_tanh(x):
    # tanh|x| = -expm1(-2|x|) / (2 + expm1(-2|x|)): no cancellation near 0, no overflow
    e = kiln_expm1(-2.0 * tl.abs(x))
    t = -e / (e + 2.0)
    return tl.where(x < 0, -t, tl.where(x > 0, t, x))     # +-0 and NaN as they come
''',
    "kiln_sinh": '''
@triton.jit
def kiln_sinh(x):
    a = tl.abs(x)
    u = kiln_expm1(a)
    e = tl.exp(a)
    # small |x|: (u + u / (u + 1)) / 2 avoids e - 1/e cancelling
    s = tl.where(a < 1.0, 0.5 * (u + u / (u + 1.0)), 0.5 * (e - 1.0 / e))
    return tl.where(x < 0, -s, tl.where(x > 0, s, x))     # sinh(-0) = -0, as tanh's
''',
    "kiln_round": '''
@triton.jit
def kiln_round(x):
    # round half to even, like torch.round and np.round
    f = tl.floor(x)
    d = x - f
    odd = (f - 2.0 * tl.floor(f * 0.5)) != 0.0
    return tl.where(d > 0.5, f + 1.0, tl.where(d < 0.5, f, tl.where(odd, f + 1.0, f)))
''',
    "kiln_remainder": '''
@triton.jit
def kiln_remainder(a, b):
    # Python's modulo takes the divisor's sign; Triton's % truncates like C's fmod
    r = a % b
    return tl.where((r != 0) & ((r < 0) != (b < 0)), r + b, r)
''',
    "kiln_floor_divide": '''
@triton.jit
def kiln_floor_divide(a, b):
    if a.dtype.is_floating():
        # NumPy's and PyTorch's float floor division: (a - fmod(a, b)) / b, corrected, rounded
        m = a % b
        d = (a - m) / b
        d = tl.where((m != 0) & ((b < 0) != (m < 0)), d - 1.0, d)
        f = tl.floor(d)
        f = tl.where(d - f > 0.5, f + 1.0, f)
        return tl.where(b == 0, a / b, f)
    else:
        q = a // b
        return tl.where(((a % b) != 0) & (((a % b) < 0) != (b < 0)), q - 1, q)
''',
    "kiln_pow": '''
@triton.jit
def kiln_pow(a, b):
    if a.dtype.is_floating():
        # C pow's special values: an odd integer exponent keeps the sign of a negative base,
        # -0 and -inf included (pow(-0, -1) = -inf); +-inf exponents are even and never NaN
        # (pow(-2, inf) = inf, pow(-1, +-inf) = 1); a finite negative base to a non-integer is NaN
        m = tl.exp2(b * tl.log2(tl.abs(a)))
        b_inf = (b == b) & ((b - b) != 0.0)
        a_inf = (a == a) & ((a - a) != 0.0)
        b_int = (tl.floor(b) == b) & ~b_inf
        b_odd = b_int & ((b - 2.0 * tl.floor(b * 0.5)) != 0.0)
        neg = (a < 0) | ((a == 0) & ((1.0 / a) < 0))
        nan = m - m + (a - a) / (a - a)
        # (m * -1.0, not -m: Triton 3.6 lowers -m as 0 - m, which is +0 for m = 0)
        r = tl.where(b_odd & neg, m * -1.0, tl.where((a < 0) & ~a_inf & ~b_int & ~b_inf, nan, m))
        return tl.where((b == 0) | (a == 1) | ((a == -1) & b_inf), 1.0, r)
    else:
        # square and multiply over the exponent's bits; a negative exponent gives 0 or +-1
        r = a * 0 + 1
        base = a
        e = b
        for _ in tl.static_range(63):
            r = tl.where((e & 1) != 0, r * base, r)
            base = base * base
            e = e >> 1
        if a.dtype.is_int_unsigned():
            return r          # (no negative exponents, no base -1; `a == -1` does not compile)
        else:
            sign = tl.where((b & 1) != 0, -1, 1)
            return tl.where(b < 0, tl.where(a == 1, 1, tl.where(a == -1, sign, 0)), r)
''',
    "kiln_pow_scalar": '''
@triton.jit
def kiln_pow_scalar(a, b):
    # a float tensor ** a Python float: PyTorch runs x ** 0.5 as sqrt and x ** -0.5 as rsqrt,
    # which differ from pow at -0 and -inf (sqrt(-inf) = nan, rsqrt(-0) = -inf)
    s = tl.sqrt(a)
    return tl.where(b == 0.5, s, tl.where(b == -0.5, 1.0 / s, kiln_pow(a, b)))
''',
    "kiln_asinh": '''
@triton.jit
def kiln_asinh(x):
    # asinh|x| = log1p(|x| + x^2 / (1 + sqrt(1 + x^2))): exact to an ulp near 0;
    # log(2|x|) once x^2 would overflow (its error 1/(4x^2) is below rounding there)
    a = tl.abs(x)
    big = a > 1e8
    s = tl.where(big, 1.0, a)
    r = tl.where(big, tl.log(a) + 0.6931471805599453, kiln_log1p(s + s * s / (1.0 + tl.sqrt(1.0 + s * s))))
    return tl.where(x < 0, -r, tl.where(x > 0, r, x))     # +-0 and NaN as they come
''',
    "kiln_acosh": '''
@triton.jit
def kiln_acosh(x):
    # acosh(1 + t) = log1p(t + sqrt(2t + t^2)): no cancellation near 1; NaN below 1
    big = x > 1e8
    t = tl.where(big, 0.0, x - 1.0)
    return tl.where(big, tl.log(x) + 0.6931471805599453, kiln_log1p(t + tl.sqrt(2.0 * t + t * t)))
''',
    "kiln_atanh": '''
@triton.jit
def kiln_atanh(x):
    # atanh|x| = log1p(2|x| / (1 - |x|)) / 2: relative accuracy near 0, +-inf at +-1
    a = tl.abs(x)
    r = 0.5 * kiln_log1p(2.0 * a / (1.0 - a))
    return tl.where(x < 0, -r, tl.where(x > 0, r, x))
''',
    "kiln_erfc": '''
@triton.jit
def kiln_erfc(x):
    # float64 in. Below 2.5: 1 - erf(x) (erfc >= 4e-4 there, so relative error < 3e-13).
    # Above: exp(-x^2) / sqrt(pi) over erfc's continued fraction x + (1/2)/(x + 1/(x + ...)),
    # 32 terms; exp(-x^2) from x = m + f with m a multiple of 1/128, so m^2 is exact and the
    # tail keeps full relative accuracy down to erfc(27) = 5e-319.
    far = x >= 2.5
    xc = tl.where(far & (x < 1e300), x, 2.5)
    t = xc
    for k in tl.static_range(32):
        t = xc + (0.5 * (32 - k)) / t
    m = tl.floor(xc * 128.0 + 0.5) * 0.0078125
    f = xc - m
    tail = tl.exp(-(m * m)) * tl.exp(-(2.0 * m * f + f * f)) / (t * 1.7724538509055160273)
    return tl.where(far, tl.where(x < 1e300, tail, 0.0), 1.0 - tl.erf(x))
''',
    "kiln_fmax": '''
@triton.jit
def kiln_fmax(a, b):
    # PyTorch's kernel: a where a >= b or b is NaN, else b (a NaN loses to a number)
    if a.dtype.is_int1():
        return a | b              # (i1 is signed in Triton: True < False)
    else:
        return tl.where((a >= b) | (b != b), a, b)
''',
    "kiln_fmin": '''
@triton.jit
def kiln_fmin(a, b):
    if a.dtype.is_int1():
        return a & b
    else:
        return tl.where((a <= b) | (b != b), a, b)
''',
    "kiln_signbit": '''
@triton.jit
def kiln_signbit(x):
    # the sign bit itself: True for -0.0 and -NaN as well
    if x.dtype.is_floating():
        if x.dtype.primitive_bitwidth == 64:
            return x.to(tl.int64, bitcast=True) < 0
        elif x.dtype.primitive_bitwidth == 32:
            return x.to(tl.int32, bitcast=True) < 0
        else:
            return x.to(tl.int16, bitcast=True) < 0
    elif x.dtype.is_int_signed():
        return x < 0
    else:
        return x != x
''',
    "kiln_nextafter": '''
@triton.jit
def kiln_nextafter_bits(a, b, bits):
    # one step of the integer image of a toward b: up in magnitude when b lies further from 0
    up = (a > 0) == (a < b)
    return bits + tl.where(up, 1, -1).to(bits.dtype)


@triton.jit
def kiln_nextafter(a, b):
    # C's nextafter: b when a == b; the smallest subnormal (sign of b) from 0; NaN in, NaN out
    if a.dtype.primitive_bitwidth == 64:
        bits = a.to(tl.int64, bitcast=True)
        r = kiln_nextafter_bits(a, b, bits).to(a.dtype, bitcast=True)
        tiny = (bits * 0 + 1).to(a.dtype, bitcast=True)
    elif a.dtype.primitive_bitwidth == 32:
        bits = a.to(tl.int32, bitcast=True)
        r = kiln_nextafter_bits(a, b, bits).to(a.dtype, bitcast=True)
        tiny = (bits * 0 + 1).to(a.dtype, bitcast=True)
    else:
        bits = a.to(tl.int16, bitcast=True)
        r = kiln_nextafter_bits(a, b, bits).to(a.dtype, bitcast=True)
        tiny = (bits * 0 + 1).to(a.dtype, bitcast=True)
    r = tl.where(a == 0, tl.where(b < 0, -tiny, tiny), r)
    r = tl.where(a == b, b, r)
    return tl.where((a != a) | (b != b), a + b, r)
''',
    "kiln_gcd": '''
@triton.jit
def kiln_gcd(a, b):
    # Euclid on |a|, |b|; a k-bit integer needs at most about 1.44 k + 2 steps (Fibonacci)
    if a.dtype.is_int_signed():
        a = tl.abs(a)
        b = tl.abs(b)
    for _ in range(a.dtype.primitive_bitwidth * 3 // 2 + 2):
        nz = b != 0
        t = a % tl.where(nz, b, 1)
        a = tl.where(nz, b, a)
        b = tl.where(nz, t, 0)
    return a
''',
    "kiln_welford_combine": '''
@triton.jit
def kiln_welford_combine(mean_a, m2_a, n_a, mean_b, m2_b, n_b):
    # Chan et al.: two partial (mean, sum of squared deviations, count) merged exactly
    n = n_a + n_b
    f = tl.where(n == 0.0, 0.0, n_b / tl.where(n == 0.0, 1.0, n))
    d = mean_b - mean_a
    return mean_a + d * f, m2_a + m2_b + d * d * n_a * f, n
''',
}

HELPER_DEPS = {"kiln_pow_scalar": ("kiln_pow",), "kiln_tanh": ("kiln_expm1",), "kiln_sinh": ("kiln_expm1",),
               "kiln_asinh": ("kiln_log1p",), "kiln_acosh": ("kiln_log1p",),
               "kiln_atanh": ("kiln_log1p",)}


# ---- special functions (lgamma, digamma, polygamma, erfinv, modified Bessel i0/i1) ------------
# One source for both backends: the text below is Triton, and host_special() runs the same text
# under NumPy (a `tl` shim), so the cpu lowering and the kernels share every constant and step.
# Callers pass float64 operands (16/32-bit inputs are widened; special functions are rarely
# bandwidth-bound, and float64 keeps float32 results within an ulp of the rounded truth).
# Algorithms: Cephes (lgam, psi, zeta, i0, i1; 3-clause BSD, Stephen L. Moshier) and Giles,
# "Approximating the erfinv function" (GPU Computing Gems, 2011), double-precision branch.
from fractions import Fraction as _Fr
from math import factorial as _fact


def _horner(var, coeffs, name="p"):
    lines = [f"    {name} = {var} * 0.0 + {coeffs[0]!r}"]
    lines += [f"    {name} = {name} * {var} + {c!r}" for c in coeffs[1:]]
    return "\n".join(lines)


def _chbevl(fname, coeffs):
    # Cephes chbevl: Clenshaw recurrence for a Chebyshev series in y over [-2, 2]
    body = [f"    b0 = y * 0.0 + {coeffs[0]!r}", "    b1 = y * 0.0", "    b2 = y * 0.0"]
    for c in coeffs[1:]:
        body += ["    b2 = b1", "    b1 = b0", f"    b0 = y * b1 - b2 + {c!r}"]
    return f"\n@triton.jit\ndef {fname}(y):\n" + "\n".join(body) + "\n    return 0.5 * (b0 - b2)\n"


_LG_A = [8.11614167470508450300E-4, -5.95061904284301438324E-4, 7.93650340457716943945E-4,
         -2.77777777730099687205E-3, 8.33333333333331927722E-2]
_LG_B = [-1.37825152569120859100E3, -3.88016315134637840924E4, -3.31612992738871184744E5,
         -1.16237097492762307383E6, -1.72173700820839662146E6, -8.53555664245765465627E5]
_LG_C = [1.0, -3.51815701436523470549E2, -1.70642106651881159223E4, -2.20528590553854454839E5,
         -1.13933444367982507207E6, -2.53252307177582951285E6, -2.01889141433532773231E6]
_PSI_A = [8.33333333333333333333E-2, -2.10927960927960927961E-2, 7.57575757575757575758E-3,
          -4.16666666666666666667E-3, 3.96825396825396825397E-3, -8.33333333333333333333E-3,
          8.33333333333333333333E-2]
# Euler-Maclaurin tail of the Hurwitz zeta: (2k)! / B_2k, k = 1..12
_BERN = [_Fr(1, 6), _Fr(-1, 30), _Fr(1, 42), _Fr(-1, 30), _Fr(5, 66), _Fr(-691, 2730),
         _Fr(7, 6), _Fr(-3617, 510), _Fr(43867, 798), _Fr(-174611, 330), _Fr(854513, 138),
         _Fr(-236364091, 2730)]
_ZETA_A = [float(_fact(2 * k + 2) / b) for k, b in enumerate(_BERN)]
_I0_A = [-4.41534164647933937950E-18, 3.33079451882223809783E-17, -2.43127984654795469359E-16,
         1.71539128555513303061E-15, -1.16853328779934516808E-14, 7.67618549860493561688E-14,
         -4.85644678311192946090E-13, 2.95505266312963983461E-12, -1.72682629144155570723E-11,
         9.67580903537323691224E-11, -5.18979560163526290666E-10, 2.65982372468238665035E-9,
         -1.30002500998624804212E-8, 6.04699502254191894932E-8, -2.67079385394061173391E-7,
         1.11738753912010371815E-6, -4.41673835845875056359E-6, 1.64484480707288970893E-5,
         -5.75419501008210370398E-5, 1.88502885095841655729E-4, -5.76375574538582365885E-4,
         1.63947561694133579842E-3, -4.32430999505057594430E-3, 1.05464603945949983183E-2,
         -2.37374148058994688156E-2, 4.93052842396707084878E-2, -9.49010970480476444210E-2,
         1.71620901522208775349E-1, -3.04682672343198398683E-1, 6.76795274409476084995E-1]
_I0_B = [-7.23318048787475395456E-18, -4.83050448594418207126E-18, 4.46562142029675999901E-17,
         3.46122286769746109310E-17, -2.82762398051658348494E-16, -3.42548561967721913462E-16,
         1.77256013305652638360E-15, 3.81168066935262242075E-15, -9.55484669882830764870E-15,
         -4.15056934728722208663E-14, 1.54008621752140982691E-14, 3.85277838274214270114E-13,
         7.18012445138366623367E-13, -1.79417853150680611778E-12, -1.32158118404477131188E-11,
         -3.14991652796324136454E-11, 1.18891471078464383424E-11, 4.94060238822496958910E-10,
         3.39623202570838634515E-9, 2.26666899049817806459E-8, 2.04891858946906374183E-7,
         2.89137052083475648297E-6, 6.88975834691682398426E-5, 3.36911647825569408990E-3,
         8.04490411014108831608E-1]
_I1_A = [2.77791411276104639959E-18, -2.11142121435816608115E-17, 1.55363195773620046921E-16,
         -1.10559694773538630805E-15, 7.60068429473540693410E-15, -5.04218550472791168711E-14,
         3.22379336594557470981E-13, -1.98397439776494371520E-12, 1.17361862988909016308E-11,
         -6.66348972350202774223E-11, 3.62559028155211703701E-10, -1.88724975172282928790E-9,
         9.38153738649577178388E-9, -4.44505912879632808065E-8, 2.00329475355213526229E-7,
         -8.56872026469545474066E-7, 3.47025130813767847674E-6, -1.32731636560394358279E-5,
         4.78156510755005422638E-5, -1.61760815825896745588E-4, 5.12285956168575772895E-4,
         -1.51357245063125314899E-3, 4.15642294431288815669E-3, -1.05640848946261981558E-2,
         2.47264490306265168283E-2, -5.29459812080949914269E-2, 1.02643658689847095384E-1,
         -1.76416518357834055153E-1, 2.52587186443633654823E-1]
_I1_B = [7.51729631084210481353E-18, 4.41434832307170791151E-18, -4.65030536848935832153E-17,
         -3.20952592199342395980E-17, 2.96262899764595013876E-16, 3.30820231092092828324E-16,
         -1.88035477551078244854E-15, -3.81440307243700780478E-15, 1.04202769841288027642E-14,
         4.27244001671195135429E-14, -2.10154184277266431302E-14, -4.08355111109219731823E-13,
         -7.19855177624590851209E-13, 2.03562854414708950722E-12, 1.41258074366137813316E-11,
         3.25260358301548823856E-11, -1.89749581235054123450E-11, -5.58974346219658380687E-10,
         -3.83538038596423702205E-9, -2.63146884688951950684E-8, -2.51223623787020892529E-7,
         -3.88256480887769039346E-6, -1.10588938762623716291E-4, -9.76109749136146840777E-3,
         7.78576235018280120474E-1]
_ERFINV_1 = [-3.6444120640178196996e-21, -1.685059138182016589e-19, 1.2858480715256400167e-18,
             1.115787767802518096e-17, -1.333171662854620906e-16, 2.0972767875968561637e-17,
             6.6376381343583238325e-15, -4.0545662729752068639e-14, -8.1519341976054721522e-14,
             2.6335093153082322977e-12, -1.2975133253453532498e-11, -5.4154120542946279317e-11,
             1.051212273321532285e-09, -4.1126339803469836976e-09, -2.9070369957882005086e-08,
             4.2347877827932403518e-07, -1.3654692000834678645e-06, -1.3882523362786468719e-05,
             0.0001867342080340571352, -0.00074070253416626697512, -0.0060336708714301490533,
             0.24015818242558961693, 1.6536545626831027356]
_ERFINV_2 = [2.2137376921775787049e-09, 9.0756561938885390979e-08, -2.7517406297064545428e-07,
             1.8239629214389227755e-08, 1.5027403968909827627e-06, -4.013867526981545969e-06,
             2.9234449089955446044e-06, 1.2475304481671778723e-05, -4.7318229009055733981e-05,
             6.8284851459573175448e-05, 2.4031110387097893999e-05, -0.0003550375203628474796,
             0.00095328937973738049703, -0.0016882755560235047313, 0.0024914420961078508066,
             -0.003751208507569241643, 0.005370914553590063617, 1.0052589676941592334,
             3.0838856104922207635]
_ERFINV_3 = [-2.7109920616438573243e-11, -2.5556418169965252055e-10, 1.5076572693500548083e-09,
             -3.7894654401267369937e-09, 7.6157012080783393804e-09, -1.4960026627149240478e-08,
             2.9147953450901080826e-08, -6.7711997758452339498e-08, 2.2900482228026654717e-07,
             -9.9298272942317002539e-07, 4.5260625972231537039e-06, -1.9681778105531670567e-05,
             7.5995277030017761139e-05, -0.00021503011930044477347, -0.00013871931833623122026,
             1.0103004648645343977, 4.8499064014085844221]

_ZETA_TAIL = "\n".join(
    ["    a = q * 0.0 + 1.0", "    k = 0.0"]
    + [line for c in _ZETA_A for line in (
        "    a = a * (s + k)", "    b = b / w", f"    acc = acc + a * b / {c!r}",
        "    k = k + 1.0", "    a = a * (s + k)", "    b = b / w", "    k = k + 1.0")])

SPECIAL = {
    "kiln_lgamma_pos": f'''
@triton.jit
def kiln_lgamma_pos(z):
    # Cephes lgam for z > 0: recurrence into [2, 3) and a rational fit there; Stirling >= 13
    small = z < 13.0
    zs = tl.where(small, z, 2.5)
    lo1 = zs < 1.0
    lo2 = zs < 2.0
    u = tl.where(lo1, zs + 2.0, tl.where(lo2, zs + 1.0, zs))
    ldiv = tl.where(lo1, -tl.log(zs * (zs + 1.0)), tl.where(lo2, -tl.log(zs), 0.0))
    prod = zs * 0.0 + 1.0
    for _k in tl.static_range(10):
        down = u >= 3.0
        u = tl.where(down, u - 1.0, u)
        prod = tl.where(down, prod * u, prod)
    t = u - 2.0
{_horner("t", _LG_B, "pb")}
{_horner("t", _LG_C, "pc")}
    r_small = ldiv + tl.log(prod) + t * pb / pc
    zl = tl.where(small, 13.0, z)
    q = (zl - 0.5) * tl.log(zl) - zl + 0.91893853320467274178
    p = 1.0 / (zl * zl)
{_horner("p", _LG_A, "pa")}
    q = tl.where(zl > 1.0e8, q, q + pa / zl)
    r = tl.where(small, r_small, q)
    return tl.where(z == float("inf"), z, r)
''',
    "kiln_lgamma": '''
@triton.jit
def kiln_lgamma(x):
    neg = x < 0.0
    r = kiln_lgamma_pos(tl.where(neg, 1.0 - x, x))
    # reflection: lgamma(x) = log(pi / |sin(pi x)|) - lgamma(1 - x); f = x - round(x) is exact
    f = x - tl.floor(x + 0.5)
    sf = tl.abs(tl.sin(3.14159265358979323846 * f))
    r = tl.where(neg, 1.14472988584940017414 - tl.log(sf) - r, r)
    # |x| < 2^-30: -log|x| - gamma*x (no 1/x overflow for subnormals, no rounding of 1 - x)
    r = tl.where(tl.abs(x) < 9.313225746154785e-10, -tl.log(tl.abs(x)) - 0.5772156649015329 * x, r)
    # poles (0 and negative integers) and -inf give +inf, like torch
    return tl.where((neg & (f == 0.0)) | (x == 0.0) | (x == -float("inf")), float("inf"), r)
''',
    "kiln_digamma_pos": f'''
@triton.jit
def kiln_digamma_pos(x):
    # Cephes psi for x > 0: psi(x) = psi(x + n) - sum 1/(x + k), asymptotic series at >= 10
    s = x
    w = x * 0.0
    for _k in tl.static_range(10):
        up = s < 10.0
        w = tl.where(up, w + 1.0 / s, w)
        s = tl.where(up, s + 1.0, s)
    sl = tl.where(s < 1.0e17, s, 1.0e17)
    z = 1.0 / (sl * sl)
{_horner("z", _PSI_A, "pz")}
    y = tl.where(s < 1.0e17, z * pz, 0.0)
    return tl.where(s == float("inf"), s, tl.log(s) - 0.5 / s - y - w)
''',
    "kiln_digamma": '''
@triton.jit
def kiln_digamma(x):
    neg = x < 0.0
    r = kiln_digamma_pos(tl.where(neg, 1.0 - x, x))
    # reflection: psi(x) = psi(1 - x) - pi / tan(pi x), with pi x reduced to (-pi/2, pi/2]
    f = x - tl.floor(x + 0.5)
    pf = 3.14159265358979323846 * f
    r = tl.where(neg, r - 3.14159265358979323846 * tl.cos(pf) / tl.sin(pf), r)
    # torch: -inf at +0, +inf at -0, nan at negative integers and -inf
    r = tl.where(neg & (f == 0.0), float("nan"), r)
    r = tl.where(x == -float("inf"), float("nan"), r)
    zero = x == 0.0
    return tl.where(zero, tl.where(1.0 / tl.where(zero, x, 1.0) > 0.0, -float("inf"), float("inf")), r)
''',
    "kiln_zeta_pos": f'''
@triton.jit
def kiln_zeta_pos(s, q):
    # Cephes zeta(s, q) for q > 0: ten terms, then Euler-Maclaurin with 12 Bernoulli terms
    acc = q * 0.0
    for _k in tl.static_range(10):
        acc = acc + tl.exp(-s * tl.log(q + _k))
    w = q + 9.0
    b = tl.exp(-s * tl.log(w))
    acc = acc + w * b / (s - 1.0) - 0.5 * b
{_ZETA_TAIL}
    # q > 1e8: DLMF 25.11.43 (no underflow of the tail terms' q^-s)
    big = (1.0 / (s - 1.0) + 0.5 / q) * tl.exp((1.0 - s) * tl.log(q))
    return tl.where(q > 1.0e8, big, acc)
''',
    "kiln_polygamma": '''
@triton.jit
def kiln_polygamma(x, n: tl.constexpr):
    if n == 0:
        return kiln_digamma(x)
    else:
        # psi_n(x) = (-1)^(n+1) n! zeta(n+1, x); for x < 0 the series splits into the terms
        # below 0 and above: zeta(s, x) = zeta(s, p) + (-1)^s (zeta(s, b) - zeta(s, 1 - x))
        s: tl.constexpr = n + 1.0
        sign: tl.constexpr = 1.0 - 2.0 * ((n + 1) % 2)
        fact = 1.0
        for k in tl.static_range(2, n + 1):
            fact = fact * k
        neg = x < 0.0
        xn = tl.where(neg, x, -0.5)
        p = xn - tl.floor(xn)
        b = tl.ceil(xn) - xn
        zn = kiln_zeta_pos(s, p) + sign * (kiln_zeta_pos(s, b) - kiln_zeta_pos(s, 1.0 - xn))
        zp = kiln_zeta_pos(s, tl.where(neg | (x == 0.0), 1.0, x))
        r = sign * fact * tl.where(neg, zn, zp)
        # poles at 0 and the negative integers: the sign of the dominant 1/x^s term near 0
        pole = (x == 0.0) | (neg & (p == 0.0))
        r = tl.where(pole, sign * float("inf"), r)
        # at the infinities PyTorch gives trigamma (n = 1) 0 and nan, the others nan and
        # the sign of the pole series
        r = tl.where(x == float("inf"), 0.0 if n == 1 else float("nan"), r)
        return tl.where(x == -float("inf"), float("nan") if n == 1 else sign * float("inf"), r)
''',
    "kiln_erfinv": f'''
@triton.jit
def kiln_erfinv(x):
    # Giles: w = -log(1 - x^2), three polynomial branches in w (1 - x and 1 + x are exact)
    w = -tl.log((1.0 - x) * (1.0 + x))
    w1 = w - 3.125
{_horner("w1", _ERFINV_1, "p1")}
    w2 = tl.sqrt(tl.where(w < 16.0, w, 16.0)) - 3.25
{_horner("w2", _ERFINV_2, "p2")}
    w3 = tl.sqrt(tl.where(w < 16.0, 16.0, w)) - 5.0
{_horner("w3", _ERFINV_3, "p3")}
    r = tl.where(w < 6.25, p1, tl.where(w < 16.0, p2, p3)) * x
    r = tl.where(x == 1.0, float("inf"), tl.where(x == -1.0, -float("inf"), r))
    return tl.where(tl.abs(x) > 1.0, float("nan"), r)
''',
    "kiln_i0e": '''
@triton.jit
def kiln_i0e(x):
    # Cephes i0e: exp(-|x|) I0(x) as Chebyshev series on [0, 8] and in 32/|x| beyond
    a = tl.abs(x)
    lo = a <= 8.0
    r_lo = kiln_chb_i0a(tl.where(lo, a, 0.0) * 0.5 - 2.0)
    ah = tl.where(lo, 8.0, a)
    r_hi = kiln_chb_i0b(32.0 / ah - 2.0) / tl.sqrt(ah)
    return tl.where(lo, r_lo, r_hi)
''',
    "kiln_i0": '''
@triton.jit
def kiln_i0(x):
    a = tl.abs(x)
    e = tl.exp(0.5 * a)          # exp(a) in two halves: no early overflow near |x| = 709
    # (at +-inf: inf * 0 = nan, as PyTorch's i0 gives)
    return e * kiln_i0e(x) * e
''',
    "kiln_i1e": '''
@triton.jit
def kiln_i1e(x):
    # Cephes i1e: exp(-|x|) I1(x), odd in x
    a = tl.abs(x)
    lo = a <= 8.0
    al = tl.where(lo, a, 0.0)
    r_lo = kiln_chb_i1a(al * 0.5 - 2.0) * al
    ah = tl.where(lo, 8.0, a)
    r_hi = kiln_chb_i1b(32.0 / ah - 2.0) / tl.sqrt(ah)
    r = tl.where(lo, r_lo, r_hi)
    return tl.where(x < 0.0, -r, r)
''',
    "kiln_i1": '''
@triton.jit
def kiln_i1(x):
    a = tl.abs(x)
    e = tl.exp(0.5 * a)
    return e * kiln_i1e(x) * e        # (nan at +-inf, as PyTorch's i1)
''',
    "kiln_chb_i0a": _chbevl("kiln_chb_i0a", _I0_A),
    "kiln_chb_i0b": _chbevl("kiln_chb_i0b", _I0_B),
    "kiln_chb_i1a": _chbevl("kiln_chb_i1a", _I1_A),
    "kiln_chb_i1b": _chbevl("kiln_chb_i1b", _I1_B),
}
SPECIAL_DEPS = {
    "kiln_lgamma": ("kiln_lgamma_pos",), "kiln_digamma": ("kiln_digamma_pos",),
    "kiln_polygamma": ("kiln_digamma", "kiln_zeta_pos"),
    "kiln_i0e": ("kiln_chb_i0a", "kiln_chb_i0b"), "kiln_i0": ("kiln_i0e",),
    "kiln_i1e": ("kiln_chb_i1a", "kiln_chb_i1b"), "kiln_i1": ("kiln_i1e",),
}
HELPERS.update(SPECIAL)
HELPER_DEPS.update(SPECIAL_DEPS)


class _NumpyTL:
    """The few `tl` names the special-function source uses, on NumPy arrays."""
    constexpr = None

    def __init__(self, np):
        for n in ("where", "exp", "log", "sqrt", "abs", "floor", "ceil", "sin", "cos",
                  "zeros_like"):
            setattr(self, n, getattr(np, n))
        self.static_range = range


_HOST = None


def host_special():
    """The SPECIAL helpers as NumPy functions (name -> function over float64 arrays)."""
    global _HOST
    if _HOST is None:
        import types
        import numpy as np
        ns = {"tl": _NumpyTL(np), "triton": types.SimpleNamespace(jit=lambda f: f)}
        for src in SPECIAL.values():
            exec(compile(src, "<kiln special>", "exec"), ns)
        _HOST = {k: ns[k] for k in SPECIAL if k in ns}
    return _HOST


# ---- the rest of torch.special: Airy Ai, Bessel J0/J1/Y0/Y1, modified Bessel I/K, spherical j0,
# Hurwitz zeta and the orthogonal polynomials ----------------------------------------------------
# PyTorch's own algorithms (aten/src/ATen/native/Math.h: Cephes airy, j0, j1, y0, y1, k0, k1 and
# the polynomials' three-term recurrences with its special cases), here in float64. Loops are
# bounded: recurrences run a fixed number of masked steps; the Chebyshev kinds switch to their
# closed forms (cosh / sinh of n acosh|x|) past _CHEB_STEPS steps where PyTorch recurs on.
_AI_AN = [3.46538101525629032477e-01, 1.20075952739645805542e+01, 7.62796053615234516538e+01,
          1.68089224934630576269e+02, 1.59756391350164413639e+02, 7.05360906840444183113e+01,
          1.40264691163389668864e+01, 9.99999999999999995305e-01]
_AI_AD = [5.67594532638770212846e-01, 1.47562562584847203173e+01, 8.45138970141474626562e+01,
          1.77318088145400459522e+02, 1.64234692871529701831e+02, 7.14778400825575695274e+01,
          1.40959135607834029598e+01, 1.00000000000000000470e+00]
_AI_AFN = [-1.31696323418331795333e-01, -6.26456544431912369773e-01, -6.93158036036933542233e-01,
           -2.79779981545119124951e-01, -4.91900132609500318020e-02, -4.06265923594885404393e-03,
           -1.59276496239262096340e-04, -2.77649108155232920844e-06, -1.67787698489114633780e-08]
_AI_AFD = [1.33560420706553243746e+01, 3.26825032795224613948e+01, 2.67367040941499554804e+01,
           9.18707402907259625840e+00, 1.47529146771666414581e+00, 1.15687173795188044134e-01,
           4.40291641615211203805e-03, 7.54720348287414296618e-05, 4.51850092970580378464e-07]
_AI_AGN = [1.97339932091685679179e-02, 3.91103029615688277255e-01, 1.06579897599595591108e+00,
           9.39169229816650230044e-01, 3.51465656105547619242e-01, 6.33888919628925490927e-02,
           5.85804113048388458567e-03, 2.82851600836737019778e-04, 6.98793669997260967291e-06,
           8.11789239554389293311e-08, 3.41551784765923618484e-10]
_AI_AGD = [9.30892908077441974853e+00, 1.98352928718312140417e+01, 1.55646628932864612953e+01,
           5.47686069422975497931e+00, 9.54293611618961883998e-01, 8.64580826352392193095e-02,
           4.12656523824222607191e-03, 1.01259085116509135510e-04, 1.17166733214413521882e-06,
           4.91834570062930015649e-09]
_J0_PP = [7.96936729297347051624e-04, 8.28352392107440799803e-02, 1.23953371646414299388e+00,
          5.44725003058768775090e+00, 8.74716500199817011941e+00, 5.30324038235394892183e+00,
          9.99999999999999997821e-01]
_J0_PQ = [9.24408810558863637013e-04, 8.56288474354474431428e-02, 1.25352743901058953537e+00,
          5.47097740330417105182e+00, 8.76190883237069594232e+00, 5.30605288235394617618e+00,
          1.00000000000000000218e+00]
_J0_QP = [-1.13663838898469149931e-02, -1.28252718670509318512e+00, -1.95539544257735972385e+01,
          -9.32060152123768231369e+01, -1.77681167980488050595e+02, -1.47077505154951170175e+02,
          -5.14105326766599330220e+01, -6.05014350600728481186e+00]
_J0_QQ = [6.43178256118178023184e+01, 8.56430025976980587198e+02, 3.88240183605401609683e+03,
          7.24046774195652478189e+03, 5.93072701187316984827e+03, 2.06209331660327847417e+03,
          2.42005740240291393179e+02]
_J0_RP = [-4.79443220978201773821e+09, 1.95617491946556577543e+12, -2.49248344360967716204e+14,
          9.70862251047306323952e+15]
_J0_RQ = [4.99563147152651017219e+02, 1.73785401676374683123e+05, 4.84409658339962045305e+07,
          1.11855537045356834862e+10, 2.11277520115489217587e+12, 3.10518229857422583814e+14,
          3.18121955943204943306e+16, 1.71086294081043136091e+18]
_J1_PP = [7.62125616208173112003e-04, 7.31397056940917570436e-02, 1.12719608129684925192e+00,
          5.11207951146807644818e+00, 8.42404590141772420927e+00, 5.21451598682361504063e+00,
          1.00000000000000000254e+00]
_J1_PQ = [5.71323128072548699714e-04, 6.88455908754495404082e-02, 1.10514232634061696926e+00,
          5.07386386128601488557e+00, 8.39985554327604159757e+00, 5.20982848682361821619e+00,
          9.99999999999999997461e-01]
_J1_QP = [5.10862594750176621635e-02, 4.98213872951233449420e+00, 7.58238284132545283818e+01,
          3.66779609360150777800e+02, 7.10856304998926107277e+02, 5.97489612400613639965e+02,
          2.11688757100572135698e+02, 2.52070205858023719784e+01]
_J1_QQ = [7.42373277035675149943e+01, 1.05644886038262816351e+03, 4.98641058337653607651e+03,
          9.56231892404756170795e+03, 7.99704160447350683650e+03, 2.82619278517639096600e+03,
          3.36093607810698293419e+02]
_J1_RP = [-8.99971225705559398224e+08, 4.52228297998194034323e+11, -7.27494245221818276015e+13,
          3.68295732863852883286e+15]
_J1_RQ = [6.20836478118054335476e+02, 2.56987256757748830383e+05, 8.35146791431949253037e+07,
          2.21511595479792499675e+10, 4.74914122079991414898e+12, 7.84369607876235854894e+14,
          8.95222336184627338078e+16, 5.32278620332680085395e+18]
_Y0_YP = [1.55924367855235737965e+04, -1.46639295903971606143e+07, 5.43526477051876500413e+09,
          -9.82136065717911466409e+11, 8.75906394395366999549e+13, -3.46628303384729719441e+15,
          4.42733268572569800351e+16, -1.84950800436986690637e+16]
_Y0_YQ = [1.04128353664259848412e+03, 6.26107330137134956842e+05, 2.68919633393814121987e+08,
          8.64002487103935000337e+10, 2.02979612750105546709e+13, 3.17157752842975028269e+15,
          2.50596256172653059228e+17]
_Y1_YP = [1.26320474790178026440e+09, -6.47355876379160291031e+11, 1.14509511541823727583e+14,
          -8.12770255501325109621e+15, 2.02439475713594898196e+17, -7.78877196265950026825e+17]
_Y1_YQ = [5.94301592346128195359e+02, 2.35564092943068577943e+05, 7.34811944459721705660e+07,
          1.87601316108706159478e+10, 3.88231277496238566008e+12, 6.20557727146953693363e+14,
          6.87141087355300489866e+16, 3.97270608116560655612e+18]
_K0_A = [1.37446543561352307156e-16, 4.25981614279661018399e-14, 1.03496952576338420167e-11,
         1.90451637722020886025e-09, 2.53479107902614945675e-07, 2.28621210311945178607e-05,
         1.26461541144692592338e-03, 3.59799365153615016266e-02, 3.44289899924628486886e-01,
         -5.35327393233902768720e-01]
_K0_B = [5.30043377268626276149e-18, -1.64758043015242134646e-17, 5.21039150503902756861e-17,
         -1.67823109680541210385e-16, 5.51205597852431940784e-16, -1.84859337734377901440e-15,
         6.34007647740507060557e-15, -2.22751332699166985548e-14, 8.03289077536357521100e-14,
         -2.98009692317273043925e-13, 1.14034058820847496303e-12, -4.51459788337394416547e-12,
         1.85594911495471785253e-11, -7.95748924447710747776e-11, 3.57739728140030116597e-10,
         -1.69753450938905987466e-09, 8.57403401741422608519e-09, -4.66048989768794782956e-08,
         2.76681363944501510342e-07, -1.83175552271911948767e-06, 1.39498137188764993662e-05,
         -1.28495495816278026384e-04, 1.56988388573005337491e-03, -3.14481013119645005427e-02,
         2.44030308206595545468e+00]
_K1_A = [-7.02386347938628759343e-18, -2.42744985051936593393e-15, -6.66690169419932900609e-13,
         -1.41148839263352776110e-10, -2.21338763073472585583e-08, -2.43340614156596823496e-06,
         -1.73028895751305206302e-04, -6.97572385963986435018e-03, -1.22611180822657148235e-01,
         -3.53155960776544875667e-01, 1.52530022733894777053e+00]
_K1_B = [-5.75674448366501715755e-18, 1.79405087314755922667e-17, -5.68946255844285935196e-17,
         1.83809354436663880070e-16, -6.05704724837331885336e-16, 2.03870316562433424052e-15,
         -7.01983709041831346144e-15, 2.47715442448130437068e-14, -8.97670518232499435011e-14,
         3.34841966607842919884e-13, -1.28917396095102890680e-12, 5.13963967348173025100e-12,
         -2.12996783842756842877e-11, 9.21831518760500529508e-11, -4.19035475934189648750e-10,
         2.01504975519703286596e-09, -1.03457624656780970260e-08, 5.74108412545004946722e-08,
         -3.50196060308781257119e-07, 2.40648494783721712015e-06, -1.93619797416608296024e-05,
         1.95215518471351631108e-04, -2.85781685962277938680e-03, 1.03923736576817238437e-01,
         2.72062619048444266945e+00]
# Cephes atan (reduction to |x| <= 0.66 and a rational fit): acos for the Chebyshev closed forms
_ATAN_P = [-8.750608600031904122785E-1, -1.615753718733365076637E1, -7.500855792314704667340E1,
           -1.228866684490136173410E2, -6.485021904942025371773E1]
_ATAN_Q = [1.0, 2.485846490142306297962E1, 1.650270098316988542046E2, 4.328810604912902668951E2,
           4.853903996359136964868E2, 1.945506571482613964425E2]
_CHEB_STEPS = 64          # Chebyshev recurrences; beyond, closed forms
POLY_STEPS = 1024         # Legendre and Laguerre recurrences: n above this gives NaN


def _bessel_asym(fname, pp, pq, qp, qq, phase, sin_first):
    # Cephes j0/j1/y0/y1 for x > 5: modulus and phase rational fits in 25 / x^2
    sc = ("tl.sin", "tl.cos") if sin_first else ("tl.cos", "tl.sin")
    sgn = "+" if sin_first else "-"
    return f'''
@triton.jit
def {fname}(x):
    z = 25.0 / (x * x)
{_horner("z", pp, "pp")}
{_horner("z", pq, "pq")}
{_horner("z", qp, "qp")}
{_horner("z", qq, "qq")}
    xp = x - {phase!r}
    return (pp / pq * {sc[0]}(xp) {sgn} 5.0 / x * (qp / qq) * {sc[1]}(xp)) * 0.797884560802865355879892119868763737 / tl.sqrt(x)
'''


_CLOSED = '''
@triton.jit
def kiln_sp_expm1(x):
    u = tl.exp(x)
    return tl.where(u == 1.0, x, tl.where(tl.abs(x) < 1.0, (u - 1.0) * x / tl.log(u), u - 1.0))


@triton.jit
def kiln_sp_log1p(x):
    u = 1.0 + x
    return tl.where(u == 1.0, x, tl.where(tl.abs(x) < 1.0, tl.log(u) * x / (u - 1.0), tl.log(u)))


@triton.jit
def kiln_sp_sinh(z):
    # z >= 0: relative accuracy near 0 (expm1), no overflow before sinh itself overflows
    u = kiln_sp_expm1(tl.where(z < 1.0, z, 0.0))
    big = tl.exp(z - 0.6931471805599453) - 0.5 * tl.exp(-z)
    return tl.where(z < 1.0, 0.5 * (u + u / (u + 1.0)), big)


@triton.jit
def kiln_sp_cosh(z):
    return tl.exp(z - 0.6931471805599453) + 0.5 * tl.exp(-z)


@triton.jit
def kiln_sp_acosh1(t):
    # acosh(1 + t), t >= 0, without cancellation near 1
    return kiln_sp_log1p(t + tl.sqrt(2.0 * t + t * t))
'''


def _cheb_closed(kind):
    # value at index m of kind T/U/V/W for |x| > 1 (y = |x| = cosh a, neg: x < -1)
    if kind == "t":
        return "kiln_sp_cosh(m * a)"
    if kind == "u":
        return "kiln_sp_sinh((m + 1.0) * a) / kiln_sp_sinh(a)"
    vform = "kiln_sp_cosh((m + 0.5) * a) / kiln_sp_cosh(0.5 * a)"
    wform = "kiln_sp_sinh((m + 0.5) * a) / kiln_sp_sinh(0.5 * a)"
    # V_n(-y) = (-1)^n W_n(y) and W_n(-y) = (-1)^n V_n(y)
    return f"tl.where(neg, {wform}, {vform})" if kind == "v" else f"tl.where(neg, {vform}, {wform})"


def _cheb(kind, shifted):
    """PyTorch's [shifted_]chebyshev_polynomial_{kind}_forward on float64 (x, n)."""
    name = f"kiln_{'shifted_' if shifted else ''}chebyshev_{kind}"
    trig_n = {("t", False): 6, ("u", False): 8, ("v", False): 8, ("w", False): 8,
              ("t", True): 6, ("u", True): 6, ("v", True): 6, ("w", True): 4}[kind, shifted]
    first = {"t": "y1", "u": "y1 + y1", "v": "y1 + y1 - 1.0", "w": "y1 + y1 + 1.0"}[kind]
    # values at x' = +1 and x' = -1 (x = 1 and x = 0 for the shifted kinds)
    at1 = {"t": "1.0", "u": "nn + 1.0", "v": "1.0", "w": "nn + nn + 1.0"}[kind]
    atm1 = {"t": "1.0", "u": "nn + 1.0", "v": "nn + nn + 1.0", "w": "1.0"}[kind]
    if kind == "t":
        trig = "tl.cos(nn * ac)"
    elif kind == "u":
        trig = ("tl.where(tl.sin(ac) != 0.0, tl.sin((nn + 1.0) * ac) / tl.sin(ac), "
                "(nn + 1.0) * tl.cos((nn + 1.0) * ac) / y1)")
    elif kind == "v":
        trig = ("tl.where(tl.sin(ac / 2.0) != 1.0, tl.cos((nn + 0.5) * ac) / tl.cos(ac / 2.0), "
                "odd_sign * (nn + nn + 1.0))")
    else:
        trig = ("tl.where(tl.cos(ac / 2.0) != 1.0, tl.sin((nn + 0.5) * ac) / tl.sin(ac / 2.0), "
                "tl.where(y1 > 0.0, nn + nn + 1.0, odd_sign))")
    y1 = "x + x - 1.0" if shifted else "x"
    return f'''
@triton.jit
def {name}(x, n, steps):
    x, n = kiln_poly_bcast(x, n)
    nn = kiln_poly_n(n)
    y1 = {y1}
    odd_sign = 1.0 - 2.0 * (nn - 2.0 * tl.floor(nn * 0.5))
    # the recurrence, masked to its first n - 1 steps
    p = tl.zeros_like(y1) + 1.0
    q = {first}
    for k in range(2, steps):
        r = (y1 + y1) * q - p
        go = nn >= k * 1.0
        p = tl.where(go, q, p)
        q = tl.where(go, r, q)
    r = tl.where(nn == 0.0, 1.0, q)
    # |x'| < 1 and n past PyTorch's threshold: its trigonometric form
    inside = tl.abs(y1) < 1.0
    ac = kiln_acos(tl.where(inside, y1, 0.0))
    r = tl.where(inside & (nn > {trig_n}.0), {trig}, r)
    # |x'| > 1 past the recurrence steps: closed form, NaN where the recurrence overflowed a step
    # earlier (inf - inf), as PyTorch's loop gives
    yy = tl.abs(y1)
    neg = y1 < 0.0
    a = kiln_sp_acosh1(tl.where(yy > 1.0, yy, 2.0) - 1.0)
    m = nn
    cur = {_cheb_closed(kind)}
    m = nn - 1.0
    prev = {_cheb_closed(kind)}
    sg = tl.where(neg, odd_sign, 1.0)
    closed = tl.where(prev == float("inf"), float("nan"), sg * cur)
    r = tl.where((yy > 1.0) & (nn >= {_CHEB_STEPS}.0), closed, r)
    r = tl.where(y1 == 1.0, {at1}, tl.where(y1 == -1.0, odd_sign * ({atm1}), r))
    return tl.where(nn < 0.0, 0.0, r)
'''


SPECIAL_MORE = {
    "kiln_poly_n": '''
@triton.jit
def kiln_poly_n(n):
    # PyTorch's static_cast<int64_t>(n): truncation; NaN, +-inf and |n| >= 2^63 become negative
    t = tl.where(n < 0.0, tl.ceil(n), tl.floor(n))
    return tl.where((n != n) | (tl.abs(n) >= 9.223372036854775807e18), -1.0, t)
''',
    "kiln_poly_bcast": '''
@triton.jit
def kiln_poly_bcast(x, n):
    # both operands at their common shape (a scalar x or n would change shape in the loops)
    return tl.where(n == n, x, x), tl.where(x == x, n, n)
''',
    "kiln_atan": f'''
@triton.jit
def kiln_atan(x):
    # Cephes atan: |x| > tan(3 pi / 8): pi/2 - atan(1/|x|); |x| > 0.66: pi/4 + atan((|x|-1)/(|x|+1))
    a = tl.abs(x)
    hi = a > 2.41421356237309504880
    mid = (a > 0.66) & (~hi)
    z = tl.where(hi, -1.0 / tl.where(hi, a, 1.0), tl.where(mid, (a - 1.0) / (a + 1.0), a))
    zero = z * 0.0             # (float64: two constant branches of tl.where would be float32)
    y0 = tl.where(hi, zero + 1.57079632679489661923, tl.where(mid, zero + 0.78539816339744830962, zero))
    zz = z * z
{_horner("zz", _ATAN_P, "pn")}
{_horner("zz", _ATAN_Q, "pd")}
    w = z * (zz * pn / pd) + z
    w = w + tl.where(hi, zero + 6.123233995736765886130E-17, tl.where(mid, zero + 3.061616997868382943065E-17, zero))
    r = tl.where(a == float("inf"), 1.57079632679489661923, y0 + w)
    return tl.where(x < 0.0, -r, r)
''',
    "kiln_acos": '''
@triton.jit
def kiln_acos(x):
    # |x| <= 1: 2 atan(sqrt((1 - x) / (1 + x))); 1 - x and 1 + x are exact where they matter
    return 2.0 * kiln_atan(tl.sqrt((1.0 - x) / (1.0 + x)))
''',
    "kiln_sp_closed": _CLOSED,
    "kiln_airy_ai": f'''
@triton.jit
def kiln_airy_ai(x):
    # Cephes airy (Ai only): asymptotic fits for x < -2.09 and x >= 2.09, Maclaurin series between
    ng = x < -2.09
    xn = tl.where(ng, x, -3.0)
    sn = tl.sqrt(-xn)
    zt = -2.0 * xn * sn / 3.0
    z = 1.0 / zt
    zz = z * z
{_horner("zz", _AI_AFN, "afn")}
{_horner("zz", _AI_AFD, "afd")}
{_horner("zz", _AI_AGN, "agn")}
{_horner("zz", _AI_AGD, "agd")}
    t = zt + 0.25 * 3.14159265358979323846
    r_neg = 5.64189583547756286948e-01 / tl.sqrt(sn) * (tl.sin(t) * (1.0 + zz * afn / afd) - tl.cos(t) * (z * agn / agd))
    ps = x >= 2.09
    xp = tl.where(ps, x, 3.0)
    zp = 2.0 * xp * tl.sqrt(xp) / 3.0
    iz = 1.0 / zp
{_horner("iz", _AI_AN, "an")}
{_horner("iz", _AI_AD, "ad")}
    r_pos = 5.64189583547756286948e-01 * (an / ad) / (2.0 * tl.sqrt(tl.sqrt(xp)) * tl.exp(zp))
    # |x| < 2.09: Ai = c1 f - c2 g (the series' terms fall below 2^-52 within 16 steps)
    xs = tl.where(ng | ps, 0.0, x)
    f = xs * 0.0 + 1.0
    g = xs
    k = xs * 0.0 + 1.0
    m = xs * 0.0 + 1.0
    nn = xs
    z3 = xs * xs * xs
    for _i in tl.static_range(16):
        m = m * z3
        k = k + 1.0
        m = m / k
        nn = nn * z3
        k = k + 1.0
        nn = nn / k
        m = m / k
        f = f + m
        k = k + 1.0
        nn = nn / k
        g = g + nn
    r_mid = 0.355028053887817239260 * f - 0.258819403792806798405 * g
    r = tl.where(ng, r_neg, tl.where(ps, r_pos, r_mid))
    r = tl.where(x > 103.892, 0.0, r)
    return tl.where(tl.abs(x) == float("inf"), float("nan"), r)
''',
    "kiln_bessel_j0_far": _bessel_asym("kiln_bessel_j0_far", _J0_PP, _J0_PQ, _J0_QP, _J0_QQ,
                                       0.785398163397448309615660845819875721, False),
    "kiln_bessel_j1_far": _bessel_asym("kiln_bessel_j1_far", _J1_PP, _J1_PQ, _J1_QP, _J1_QQ,
                                       2.356194490192344928846982537459627163, False),
    "kiln_bessel_y0_far": _bessel_asym("kiln_bessel_y0_far", _J0_PP, _J0_PQ, _J0_QP, _J0_QQ,
                                       0.785398163397448309615660845819875721, True),
    "kiln_bessel_y1_far": _bessel_asym("kiln_bessel_y1_far", _J1_PP, _J1_PQ, _J1_QP, _J1_QQ,
                                       2.356194490192344928846982537459627163, True),
    "kiln_bessel_j0": f'''
@triton.jit
def kiln_bessel_j0(x):
    a = tl.abs(x)
    near = a <= 5.0
    an = tl.where(near, a, 1.0)
    w = an * an
{_horner("w", _J0_RP, "rp")}
{_horner("w", _J0_RQ, "rq")}
    r_near = (w - 5.78318596294678452118e+00) * (w - 3.04712623436620863991e+01) * rp / rq
    r_near = tl.where(a < 0.00001, 1.0 - a * a / 4.0, r_near)
    return tl.where(near, r_near, kiln_bessel_j0_far(tl.where(near, 6.0, a)))
''',
    "kiln_bessel_j1": f'''
@triton.jit
def kiln_bessel_j1(x):
    a = tl.abs(x)
    near = a <= 5.0
    an = tl.where(near, a, 1.0)
    w = an * an
{_horner("w", _J1_RP, "rp")}
{_horner("w", _J1_RQ, "rq")}
    r_near = rp / rq * an * (w - 1.46819706421238932572e+01) * (w - 4.92184563216946036703e+01)
    r = tl.where(near, r_near, kiln_bessel_j1_far(tl.where(near, 6.0, a)))
    return tl.where(x < 0.0, -r, r)
''',
    "kiln_bessel_y0": f'''
@triton.jit
def kiln_bessel_y0(x):
    near = x <= 5.0
    xn = tl.where(near & (x > 0.0), x, 1.0)
    w = xn * xn
{_horner("w", _Y0_YP, "yp")}
{_horner("w", _Y0_YQ, "yq")}
    r_near = yp / yq + 0.636619772367581343075535053490057448 * tl.log(xn) * kiln_bessel_j0(xn)
    r_near = tl.where(x == 0.0, -float("inf"), tl.where(x < 0.0, float("nan"), r_near))
    return tl.where(near, r_near, kiln_bessel_y0_far(tl.where(near, 6.0, x)))
''',
    "kiln_bessel_y1": f'''
@triton.jit
def kiln_bessel_y1(x):
    near = x <= 5.0
    xn = tl.where(near & (x > 0.0), x, 1.0)
    w = xn * xn
{_horner("w", _Y1_YP, "yp")}
{_horner("w", _Y1_YQ, "yq")}
    r_near = xn * (yp / yq) + 0.636619772367581343075535053490057448 * (kiln_bessel_j1(xn) * tl.log(xn) - 1.0 / xn)
    r_near = tl.where(x == 0.0, -float("inf"), tl.where(x < 0.0, float("nan"), r_near))
    return tl.where(near, r_near, kiln_bessel_y1_far(tl.where(near, 6.0, x)))
''',
    "kiln_modified_bessel_i0": '''
@triton.jit
def kiln_modified_bessel_i0(x):
    # PyTorch's form: exp(|x|) times the series (overflows where exp(|x|) does; NaN at +-inf)
    return tl.exp(tl.abs(x)) * kiln_i0e(x)
''',
    "kiln_modified_bessel_i1": '''
@triton.jit
def kiln_modified_bessel_i1(x):
    return tl.exp(tl.abs(x)) * kiln_i1e(x)
''',
    "kiln_chb_k0a": _chbevl("kiln_chb_k0a", _K0_A),
    "kiln_chb_k0b": _chbevl("kiln_chb_k0b", _K0_B),
    "kiln_chb_k1a": _chbevl("kiln_chb_k1a", _K1_A),
    "kiln_chb_k1b": _chbevl("kiln_chb_k1b", _K1_B),
    "kiln_bessel_k": '''
@triton.jit
def kiln_bessel_k(x, order: tl.constexpr, scaled: tl.constexpr):
    # Cephes k0/k1 (k0e/k1e when scaled): inf at 0, NaN below
    near = x <= 2.0
    xn = tl.where(near & (x > 0.0), x, 1.0)
    xf = tl.where(near, 3.0, x)
    if order == 0:
        r_near = kiln_chb_k0a(xn * xn - 2.0) - tl.log(0.5 * xn) * kiln_modified_bessel_i0(xn)
        far = kiln_chb_k0b(8.0 / xf - 2.0) / tl.sqrt(xf)
    else:
        r_near = tl.log(0.5 * xn) * kiln_modified_bessel_i1(xn) + kiln_chb_k1a(xn * xn - 2.0) / xn
        far = kiln_chb_k1b(8.0 / xf - 2.0) / tl.sqrt(xf)
    if scaled:
        r_near = r_near * tl.exp(xn)
    else:
        far = tl.exp(-xf) * far
    r = tl.where(near, r_near, far)
    return tl.where(x == 0.0, float("inf"), tl.where(x < 0.0, float("nan"), r))
''',
    "kiln_spherical_bessel_j0": '''
@triton.jit
def kiln_spherical_bessel_j0(x):
    small = tl.abs(x) < 0.5
    w = x * x
    s = 1.0 + w * (-1.0 / 6.0 + w * (1.0 / 120.0 + w * (-1.0 / 5040.0 + w * (1.0 / 362880.0 + w * (-1.0 / 39916800.0 + w * (1.0 / 6227020800.0))))))
    xb = tl.where(small, 1.0, x)
    r = tl.where(small, s, tl.sin(xb) / xb)
    return tl.where(tl.abs(x) == float("inf"), 0.0, r)
''',
    "kiln_zeta": '''
@triton.jit
def kiln_zeta(x, q):
    # Hurwitz zeta as PyTorch (Cephes): inf at x == 1, NaN for x < 1; q <= 0: inf at integers,
    # NaN unless x is an integer, where the sum splits at 0 into two Hurwitz zetas
    xint = tl.floor(x) == x
    ok = x > 1.0
    s = tl.where(ok & (x < 1.0e12), x, 2.0)
    qpos = q > 0.0
    qn = tl.where(qpos, -0.5, q)
    p = qn - tl.floor(qn)
    b = tl.ceil(qn) - qn
    sign = 1.0 - 2.0 * (s - 2.0 * tl.floor(s * 0.5))
    zn = kiln_zeta_pos(s, tl.where(p == 0.0, 1.0, p)) + sign * (kiln_zeta_pos(s, tl.where(b == 0.0, 1.0, b)) - kiln_zeta_pos(s, 1.0 - qn))
    zp = kiln_zeta_pos(s, tl.where(qpos, q, 1.0))
    r = tl.where(qpos, zp, zn)
    # x >= 1e12: only the terms below 1 matter (inf), or q^-x itself at q == 1 (and 0 above)
    r = tl.where(x >= 1.0e12, tl.where(q < 1.0, float("inf"), tl.where(q == 1.0, 1.0, 0.0)), r)
    r = tl.where((q == float("inf")) | ((x == float("inf")) & (q > 1.0)), float("nan"), r)
    r = tl.where(qpos, r, tl.where(tl.floor(q) == q, float("inf"), tl.where(xint, r, float("nan"))))
    r = tl.where(q != q, q, r)
    r = tl.where(x == 1.0, float("inf"), tl.where(x < 1.0, float("nan"), r))
    return tl.where(x != x, tl.where((q <= 0.0) & (tl.floor(q) == q), float("inf"), x), r)
''',
    "kiln_hermite_h": '''
@triton.jit
def kiln_hermite_h(x, n, lim, steps):
    x, n = kiln_poly_bcast(x, n)
    # H_{k+1} = 2x H_k - 2k H_{k-1}; NaN past PyTorch's limit (128 float32, 512 float64)
    nn = kiln_poly_n(n)
    p = tl.zeros_like(x) + 1.0
    q = x + x
    for k in range(2, steps):
        r = (x + x) * q - (2.0 * (k - 1.0)) * p
        go = nn >= k * 1.0
        p = tl.where(go, q, p)
        q = tl.where(go, r, q)
    r = tl.where(nn == 0.0, 1.0, q)
    r = tl.where(nn > lim, float("nan"), r)
    return tl.where(nn < 0.0, 0.0, r)
''',
    "kiln_hermite_he": '''
@triton.jit
def kiln_hermite_he(x, n, lim, steps):
    x, n = kiln_poly_bcast(x, n)
    # He_{k+1} = x He_k - k He_{k-1}
    nn = kiln_poly_n(n)
    p = tl.zeros_like(x) + 1.0
    q = x
    for k in range(2, steps):
        r = x * q - (k - 1.0) * p
        go = nn >= k * 1.0
        p = tl.where(go, q, p)
        q = tl.where(go, r, q)
    r = tl.where(nn == 0.0, 1.0, q)
    r = tl.where(nn > lim, float("nan"), r)
    return tl.where(nn < 0.0, 0.0, r)
''',
    "kiln_laguerre_l": '''
@triton.jit
def kiln_laguerre_l(x, n, steps):
    x, n = kiln_poly_bcast(x, n)
    # (k + 1) L_{k+1} = (2k + 1 - x) L_k - k L_{k-1}; 1 at x == 0; NaN past the step bound
    nn = kiln_poly_n(n)
    p = tl.zeros_like(x) + 1.0
    q = 1.0 - x
    for k in range(2, steps):
        kf = k - 1.0
        r = (((kf + kf) + (1.0 - x)) * q - kf * p) / (kf + 1.0)
        go = nn >= k * 1.0
        p = tl.where(go, q, p)
        q = tl.where(go, r, q)
    r = tl.where(nn == 0.0, 1.0, q)
    r = tl.where(nn >= 1024.0, float("nan"), r)      # POLY_STEPS
    r = tl.where(tl.abs(x) == 0.0, 1.0, r)
    return tl.where(nn < 0.0, 0.0, r)
''',
    "kiln_legendre_p": '''
@triton.jit
def kiln_legendre_p(x, n, steps):
    x, n = kiln_poly_bcast(x, n)
    # (k + 1) P_{k+1} = (2k + 1) x P_k - k P_{k-1}; +-1 at |x| == 1; NaN past the step bound
    nn = kiln_poly_n(n)
    odd_sign = 1.0 - 2.0 * (nn - 2.0 * tl.floor(nn * 0.5))
    p = tl.zeros_like(x) + 1.0
    q = x
    for k in range(2, steps):
        kf = k - 1.0
        r = ((kf + kf + 1.0) * x * q - kf * p) / (kf + 1.0)
        go = nn >= k * 1.0
        p = tl.where(go, q, p)
        q = tl.where(go, r, q)
    r = tl.where(nn == 0.0, 1.0, q)
    r = tl.where(nn >= 1024.0, float("nan"), r)      # POLY_STEPS
    r = tl.where(x == 1.0, 1.0, tl.where(x == -1.0, odd_sign, r))
    return tl.where(nn < 0.0, 0.0, r)
''',
}
for _k in "tuvw":
    SPECIAL_MORE[f"kiln_chebyshev_{_k}"] = _cheb(_k, False)
    SPECIAL_MORE[f"kiln_shifted_chebyshev_{_k}"] = _cheb(_k, True)
_CHEB_DEPS = ("kiln_poly_n", "kiln_poly_bcast", "kiln_acos", "kiln_sp_closed")
SPECIAL_MORE_DEPS = {
    "kiln_acos": ("kiln_atan",),
    "kiln_bessel_j0": ("kiln_bessel_j0_far",), "kiln_bessel_j1": ("kiln_bessel_j1_far",),
    "kiln_bessel_y0": ("kiln_bessel_y0_far", "kiln_bessel_j0"),
    "kiln_bessel_y1": ("kiln_bessel_y1_far", "kiln_bessel_j1"),
    "kiln_modified_bessel_i0": ("kiln_i0e",), "kiln_modified_bessel_i1": ("kiln_i1e",),
    "kiln_bessel_k": ("kiln_chb_k0a", "kiln_chb_k0b", "kiln_chb_k1a", "kiln_chb_k1b",
                      "kiln_modified_bessel_i0", "kiln_modified_bessel_i1"),
    "kiln_zeta": ("kiln_zeta_pos",),
    "kiln_hermite_h": ("kiln_poly_n", "kiln_poly_bcast"), "kiln_hermite_he": ("kiln_poly_n", "kiln_poly_bcast"),
    "kiln_laguerre_l": ("kiln_poly_n", "kiln_poly_bcast"), "kiln_legendre_p": ("kiln_poly_n", "kiln_poly_bcast"),
}
for _k in "tuvw":
    SPECIAL_MORE_DEPS[f"kiln_chebyshev_{_k}"] = _CHEB_DEPS
    SPECIAL_MORE_DEPS[f"kiln_shifted_chebyshev_{_k}"] = _CHEB_DEPS
SPECIAL.update(SPECIAL_MORE)
# kernels only (the NumPy lowering passes the limit itself): PyTorch's Hermite degree limit
HELPERS["kiln_hermite_lim"] = '''
@triton.jit
def kiln_hermite_lim(v):
    # 512 for float64 results, 128 for float32 (getHermitianLimit)
    if v.dtype.primitive_bitwidth == 64:
        return 512.0
    else:
        return 128.0
'''
SPECIAL_DEPS.update(SPECIAL_MORE_DEPS)
HELPERS.update(SPECIAL_MORE)
HELPER_DEPS.update(SPECIAL_MORE_DEPS)
