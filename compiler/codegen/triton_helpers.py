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

HELPER_DEPS = {"kiln_tanh": ("kiln_expm1",), "kiln_sinh": ("kiln_expm1",)}
