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
    return tl.where(x < 0, -t, t)
''',
    "kiln_sinh": '''
@triton.jit
def kiln_sinh(x):
    a = tl.abs(x)
    u = kiln_expm1(a)
    e = tl.exp(a)
    # small |x|: (u + u / (u + 1)) / 2 avoids e - 1/e cancelling
    s = tl.where(a < 1.0, 0.5 * (u + u / (u + 1.0)), 0.5 * (e - 1.0 / e))
    return tl.where(x < 0, -s, s)
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
        m = tl.exp2(b * tl.log2(tl.abs(a)))
        b_int = tl.floor(b) == b
        b_odd = b_int & ((b - 2.0 * tl.floor(b * 0.5)) != 0.0)
        nan = m - m + (a - a) / (a - a)
        r = tl.where(a < 0, tl.where(b_int, tl.where(b_odd, -m, m), nan), m)
        return tl.where(b == 0, 1.0, tl.where(a == 1, 1.0, r))
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

HELPER_DEPS = {"kiln_tanh": ("kiln_expm1",), "kiln_sinh": ("kiln_expm1",),
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
        r = tl.where(x == float("inf"), 0.0, r)
        return tl.where(x == -float("inf"), sign * float("inf"), r)
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
    r = e * kiln_i0e(x) * e
    return tl.where(a == float("inf"), a, r)
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
    r = e * kiln_i1e(x) * e
    return tl.where(a == float("inf"), x, r)
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
        for n in ("where", "exp", "log", "sqrt", "abs", "floor", "ceil", "sin", "cos"):
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
        _HOST = {k: ns[k] for k in SPECIAL}
    return _HOST
