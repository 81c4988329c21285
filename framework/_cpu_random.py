"""The cpu generator: PyTorch's CPU random stream, number for number.

PyTorch's CPU generator is a 32-bit Mersenne Twister (mt19937) seeded by init_genrand with the
seed's low 32 bits; every distribution is a fixed transformation of its 32-bit outputs
(`random()`) or of two of them as one 64-bit value (`random64()`, the first as the high half).
NumPy's MT19937 with its legacy seeding produces the same 32-bit stream, so Kiln applies the
same transformations (aten/src/ATen/core/TransformationHelper.h and DistributionsHelper.h,
aten/src/ATen/native/cpu/DistributionTemplates.h) and `manual_seed(s)` then gives PyTorch's
values:

    uniform  float32 (and float16/bfloat16, rounded from it): (random() & (2**24 - 1)) * 2**-24;
             float64: (random64() & (2**53 - 1)) * 2**-53; then fma(x, to - from, from): in
             float64 for float64, else in float32 with float32 bounds
    integers [low, high): low + random() % range (random64() when range >= 2**28)
    random_  (no bounds, int64): random64() % 2**63
    randperm Fisher-Yates: for i in 0..n-2, swap r[i] and r[i + random() % (n - i)]
    bernoulli_(p): float64 uniform < p;  bernoulli(p tensor): float32 uniform < p (float64
             for float64 probabilities)
    exponential: (-1 / lambda) * log1p(-u) with a float64 uniform
    normal   16 or more contiguous values: all uniforms first, then Box-Muller on blocks of 16
             (u1 = 1 - d[j], u2 = d[j + 8] for j < 8), the last block recomputed from 16 fresh
             uniforms when the size is not a multiple of 16; fewer (or a non-contiguous
             tensor): one float64 Box-Muller pair per two values, the second kept for the next
             draw (the generator's cache); then fma(z, std, mean)

Exact to the bit: float64 arithmetic takes the C library's log/cos/sin/tan/exp/log1p (_libm)
and PyTorch's fused multiply-adds (fma64/fma32, emulated exactly); the vectorised float32
normal is avx_mathfun's log/sincos ported operation for operation (_log256_ps,
_sincos256_ps). get_rng_state/set_rng_state use PyTorch's 5056-byte state layout
(torch_state_bytes / load_torch_state). The rejection samplers at the end (standard_gamma,
dirichlet, poisson, binomial, cauchy) port PyTorch's cpu kernels and give its numbers too
(used by framework.distributions). Other distributions PyTorch computes by other algorithms
(orthogonal and other nn.init helpers that need them) take
NumPy's samplers on a NumPy generator seeded from the same seed.
"""
import math

import numpy as np

from runtime import dtypes as dt

_M32 = np.uint64(0xFFFFFFFF)
_DIGITS = {"float32": 24, "float16": 11, "bfloat16": 8, "float64": 53}   # (random_'s range)


class TorchStream:
    """One cpu generator's state: the mt19937 stream plus the float64 normal cache."""

    def __init__(self, seed):
        self.seed(seed)

    def seed(self, seed):
        self._bg = np.random.MT19937(0)
        self._bg._legacy_seeding(int(seed) & 0xFFFFFFFF)
        self.normal_cache = None
        self.np = np.random.Generator(np.random.PCG64(int(seed) & 0xFFFFFFFFFFFFFFFF))

    # raw words ------------------------------------------------------------------------------
    def random(self, n):
        """n 32-bit outputs (as uint64)."""
        return self._bg.random_raw(int(n)).astype(np.uint64) & _M32

    def random64(self, n):
        r = self.random(2 * int(n)).reshape(-1, 2)
        return (r[:, 0] << np.uint64(32)) | r[:, 1]

    # distributions ----------------------------------------------------------------------------
    def uniform(self, shape, d, lo=0.0, hi=1.0):
        """Uniform [lo, hi) values of dtype d (float32 arithmetic below float64)."""
        n = _numel(shape)
        if d is dt.float64:
            x = (self.random64(n) & np.uint64((1 << 53) - 1)).astype(np.float64) * 2.0 ** -53
        else:       # float32 (and the reduced floats, drawn as float32 and rounded)
            x = (self.random(n) & np.uint64((1 << 24) - 1)).astype(np.float64) * 2.0 ** -24
        if lo == 0.0 and hi == 1.0:
            r = x
        elif d is dt.float64:      # x * (to - from) + from, one fused multiply-add
            f, t = float(lo), float(hi)
            r = fma64(x, t - f, f)
        else:   # float32 bounds and arithmetic (dist_acctype; float16 too, measured)
            f, t = np.float32(lo), np.float32(hi)
            r = fma32(x, np.float32(t - f), f)
        r = np.asarray(r.astype(d.np))
        if d is not dt.float64:     # a value the cast rounded up to `to` becomes `from`
            top = r == np.array(hi, np.float32).astype(d.np)
            if top.any():
                r[top] = np.array(lo, np.float32).astype(d.np)
        return r.reshape(shape)

    def integers(self, shape, low, high):
        """[low, high) as int64 values: low + word % range, the word a 64-bit one from a range
        of 2**28 up (PyTorch 2.13's threshold, measured: randint(0, 2**28 - 1) takes random(),
        randint(0, 2**28) random64())."""
        n, rng = _numel(shape), int(high) - int(low)
        r = self.random64(n) if rng >= 2 ** 28 else self.random(n)
        return ((r % np.uint64(rng)).astype(np.int64) + int(low)).reshape(shape)

    def full_range(self, shape, d):
        """random_() without bounds: bool random() & 1; floats random() % (2**digits + 1)
        (float64: random64()); int64 random64() % 2**63; other integers random() % (max + 1)."""
        n = _numel(shape)
        if d is dt.bool_:
            return (self.random(n) & np.uint64(1)).astype(np.bool_).reshape(shape)
        if d.is_floating_point:
            r = self.random64(n) if d is dt.float64 else self.random(n)
            return (r % np.uint64(2 ** _DIGITS.get(d.name, 24) + 1)).astype(d.np).reshape(shape)
        top = int(np.iinfo(d.np).max) + 1
        r = self.random64(n) if d.name == "int64" else self.random(n)
        return (r % np.uint64(top)).astype(d.np).reshape(shape)

    def randperm(self, n):
        r = np.arange(n, dtype=np.int64)
        if n > 1:
            z = self.random(n - 1) if n < 2 ** 32 // 20 else self.random64(n - 1)
            z = (z % np.arange(n, 1, -1, dtype=np.uint64)).astype(np.int64).tolist()
            for i, k in enumerate(z):          # Fisher-Yates, in PyTorch's order
                j = i + k
                r[i], r[j] = r[j], r[i]
        return r

    def bernoulli(self, shape, p):
        """bernoulli_(p) with a Python float p: float64 uniforms below p."""
        return self.uniform(shape, dt.float64) < float(p)

    def bernoulli_per_element(self, p):
        """bernoulli(p tensor): uniforms below each probability, float64 ones for float64
        probabilities (bernoulli_distribution<double>), else float32."""
        d = dt.float64 if np.asarray(p).dtype == np.float64 else dt.float32
        return self.uniform(np.shape(p), d) < p

    def exponential(self, shape, lambd):
        u = self.uniform(shape, dt.float64)
        return (-1.0 / float(lambd)) * _libm("log1p", -u)       # PyTorch's form

    def normal(self, shape, d, mean=0.0, std=1.0, serial=False):
        """serial: one float64 Box-Muller value at a time whatever the size (PyTorch's path
        for a non-contiguous tensor)."""
        n = _numel(shape)
        if n >= 16 and not serial:
            return self._normal_fill(n, d, mean, std).reshape(shape)
        out = np.empty(n, np.float64)
        for i in range(n):
            out[i] = self._normal_scalar()
        return fma64(out, float(std), float(mean)).astype(d.np).reshape(shape)

    def _normal_scalar(self):
        """One float64 standard normal (Box-Muller, the pair's second value cached)."""
        if self.normal_cache is not None:
            z, self.normal_cache = self.normal_cache, None
            return z
        u1, u2 = self.uniform((2,), dt.float64)
        r = math.sqrt(-2.0 * math.log1p(-float(u2)))
        theta = 2.0 * math.pi * float(u1)
        self.normal_cache = r * math.sin(theta)
        return r * math.cos(theta)

    def _normal_fill(self, n, d, mean, std):
        wide = d is dt.float64
        ud = dt.float64 if wide else dt.float32
        ft = np.float64 if wide else np.float32
        if d not in (dt.float32, dt.float64):
            # float16/bfloat16: each block of 16 (and the recomputed last 16) from 16 fresh
            # float32 uniforms in a float32 buffer, then rounded (PyTorch's normal_fill)
            nb = -(-n // 16)
            buf = self.uniform((nb * 16,), ud).reshape(nb, 16)
            _box_muller_16(buf, ft, mean, std)
            buf = buf.reshape(-1)
            out = buf[:n].copy()
            if n % 16:
                out[n - 16:] = buf[(nb - 1) * 16:]
            return out.astype(d.np)
        data = self.uniform((n,), ud)
        blocks = n // 16
        if blocks:
            _box_muller_16(data[:blocks * 16].reshape(blocks, 16), ft, mean, std)
        if n % 16:
            tail = self.uniform((16,), ud).reshape(1, 16)
            _box_muller_16(tail, ft, mean, std)
            data[n - 16:] = tail.reshape(16)
        return data.astype(d.np, copy=False)

    # state ----------------------------------------------------------------------------------
    def get_state(self):
        st = self._bg.state["state"]
        cache = self.normal_cache
        head = np.array([st["pos"], cache is not None], np.int64)
        c = np.array([0.0 if cache is None else cache], np.float64)
        return np.concatenate([head.view(np.uint8), st["key"].astype(np.uint32).view(np.uint8),
                               c.view(np.uint8)])

    def set_state(self, blob):
        blob = np.ascontiguousarray(np.asarray(blob, np.uint8))
        if blob.size != 16 + 624 * 4 + 8:
            raise RuntimeError(f"set_rng_state: expected a {16 + 624 * 4 + 8}-byte cpu state, "
                               f"got {blob.size} bytes")
        pos, has = blob[:16].view(np.int64)
        key = blob[16:16 + 2496].view(np.uint32).copy()
        self._bg.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": int(pos)}}
        self.normal_cache = float(blob[16 + 2496:].view(np.float64)[0]) if has else None


# PyTorch's serialised cpu generator state (CPUGeneratorImplState: the legacy THGeneratorState
# then the float normal cache), 5056 bytes: the initial seed (uint64), left and seeded (int32),
# next (uint64), the 624 mt19937 words (as uint64), normal_x / normal_y / normal_rho (double),
# normal_is_valid (int32, padded to 8), the float normal sample (float32) and its flag (bool).
# mt19937's `left` counts down to the next twist: left = 625 - NumPy's pos (pos 624: twist next).
TORCH_STATE_SIZE = 5056


def torch_state_bytes(stream, seed):
    """The stream's state in PyTorch's get_rng_state() layout (uint8 array)."""
    st = stream._bg.state["state"]
    pos = int(st["pos"])
    blob = np.zeros(TORCH_STATE_SIZE, np.uint8)
    blob[0:8] = np.array([seed & 0xFFFFFFFFFFFFFFFF], np.uint64).view(np.uint8)
    if pos >= 624:      # twist next: fresh from seeding (next 0) or a block used up (624)
        k0, k1 = int(st["key"][0]), int(st["key"][1])
        fresh = k1 == (1812433253 * (k0 ^ (k0 >> 30)) + 1) & 0xFFFFFFFF   # init_genrand
        left, nxt = 1, 0 if fresh else 624
    else:
        left, nxt = 625 - pos, pos
    blob[8:16] = np.array([left, 1], np.int32).view(np.uint8)
    blob[16:24] = np.array([nxt], np.uint64).view(np.uint8)
    blob[24:5016] = st["key"].astype(np.uint64).view(np.uint8)
    if stream.normal_cache is not None:
        blob[5024:5032] = np.array([stream.normal_cache], np.float64).view(np.uint8)
        blob[5040:5044] = np.array([1], np.int32).view(np.uint8)
    return blob


def load_torch_state(stream, blob):
    """set_rng_state: load a PyTorch-layout state into the stream; returns its initial seed."""
    if blob.size != TORCH_STATE_SIZE:
        raise RuntimeError(f"Expected a CPUGeneratorImplState of size {TORCH_STATE_SIZE} but "
                           f"found the input RNG state size to be {blob.size}")
    seed = int(blob[0:8].view(np.uint64)[0])
    left = int(blob[8:12].view(np.int32)[0])
    key = (blob[24:5016].view(np.uint64) & _M32).astype(np.uint32)
    pos = 624 if left <= 1 else max(0, 625 - left)
    stream._bg.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": pos}}
    valid = int(blob[5040:5044].view(np.int32)[0])
    stream.normal_cache = float(blob[5024:5032].view(np.float64)[0]) if valid else None
    return seed


def _box_muller_16(d, ft, mean, std):
    """PyTorch's normal_fill_16 on each row of 16 uniforms, in place (float64: the C
    library's log/cos/sin and a fused `* std + mean`)."""
    u1 = ft(1) - d[:, :8]
    u2 = d[:, 8:].copy()
    if ft is np.float64:
        radius = np.sqrt(-2.0 * _libm("log", u1))
        theta = (2.0 * math.pi) * u2
        d[:, :8] = fma64(radius * _libm("cos", theta), std, mean)
        d[:, 8:] = fma64(radius * _libm("sin", theta), std, mean)
        return
    if ft is np.float32:        # normal_fill_16_AVX2: avx_mathfun's log and sincos
        step = 8192         # (rows at a time: the temporaries stay in cache)
        for i in range(0, d.shape[0], step):
            radius = np.sqrt(ft(-2) * _log256_ps(u1[i:i + step]))
            s, c = _sincos256_ps(ft(2.0 * math.pi) * u2[i:i + step])
            d[i:i + step, :8] = _fma32n(radius * c, ft(std), ft(mean))
            d[i:i + step, 8:] = _fma32n(radius * s, ft(std), ft(mean))
        return
    radius = np.sqrt(ft(-2) * np.log(u1))
    theta = ft(2.0 * math.pi) * u2
    d[:, :8] = radius * np.cos(theta) * ft(std) + ft(mean)
    d[:, 8:] = radius * np.sin(theta) * ft(std) + ft(mean)


# PyTorch's float32 normal fill (normal_fill_16_AVX2) takes log and sin/cos from avx_mathfun.h
# (Julien Pommier's Cephes-based AVX functions), compiled with FMA contraction: each multiply
# feeding an add is fused (the first in source order when both operands are products). These
# are those functions in float32 NumPy, operation for operation, so the draws are PyTorch's to
# the bit.

_F = np.float32


def _log256_ps(x):
    x = np.asarray(x, _F)
    invalid = x <= 0
    x = np.maximum(x, _F(1.17549435e-38))
    bits = x.view(np.int32)
    e = ((bits >> 23) - 0x7f).astype(_F) + _F(1)
    x = ((bits & ~0x7f800000) | _F(0.5).view(np.int32)).view(_F)
    mask = x < _F(0.707106781186547524)
    tmp = np.where(mask, x, _F(0))
    x = x - _F(1)
    e = e - np.where(mask, _F(1), _F(0))
    x = x + tmp
    z = x * x
    y = np.full_like(x, _F(7.0376836292E-2))
    for c in (-1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1, 1.4249322787E-1,
              -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1):
        y = _fma32n(y, x, _F(c))
    y = _fma32n(y * x, z, e * _F(-2.12194440e-4))
    y = _fma32n(z, _F(-0.5), y)
    x = _fma32n(e, _F(0.693359375), x + y)
    return np.where(invalid, _F(np.nan), x)


def _sincos256_ps(x):
    x = np.asarray(x, _F)
    sign_sin = np.signbit(x)
    x = np.abs(x)
    j = ((x * _F(1.27323954473516)).astype(np.int32) + 1) & ~1
    y = j.astype(_F)
    swap_sin = (j & 4) != 0
    poly = (j & 2) == 0
    x = _fma32n(y, _F(-0.78515625), x)        # extended precision modular arithmetic
    x = _fma32n(y, _F(-2.4187564849853515625e-4), x)
    x = _fma32n(y, _F(-3.77489497744594108e-8), x)
    sign_cos = (~(j - 2) & 4) != 0
    sign_sin = sign_sin ^ swap_sin
    z = x * x
    yc = _fma32n(np.full_like(x, _F(2.443315711809948E-005)), z, _F(-1.388731625493765E-003))
    yc = _fma32n(yc, z, _F(4.166664568298827E-002))
    yc = _fma32n(yc * z, z, -(z * _F(0.5))) + _F(1)
    ys = _fma32n(np.full_like(x, _F(-1.9515295891E-4)), z, _F(8.3321608736E-3))
    ys = _fma32n(ys, z, _F(-1.6666654611E-1))
    ys = _fma32n(ys * z, x, x)
    s = np.where(poly, ys, yc)
    c = np.where(poly, yc, ys)
    return np.where(sign_sin, -s, s), np.where(sign_cos, -c, c)


# ---- PyTorch's arithmetic: the C library's double functions and fused multiply-adds -------
# PyTorch's cpu kernels call std::log/cos/sin/... (glibc, correctly rounded in practice; NumPy's
# SIMD versions differ in the last bit for a few percent of arguments) and are compiled with
# FMA contraction, so `x * y + z` rounds once. Both are reproduced here.

_LIBM = {}


def _libm(name, x):
    """math.<name> (the C library's function) on each element of a float64 array."""
    f = _LIBM.get(name)
    if f is None:
        f = _LIBM[name] = np.frompyfunc(getattr(math, name), 1, 1)
    x = np.asarray(x, np.float64)
    return np.asarray(f(x), np.float64) if x.size else x.copy()


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _round_odd(s, e):
    """s + e (s = RN(s + e), e its exact error) rounded to odd: s, or its neighbour towards e
    when e is nonzero and s's last mantissa bit is even."""
    bits = np.asarray(s).view(np.int64 if s.dtype == np.float64 else np.int32)
    step = (e != 0) & ((bits & 1) == 0)
    return np.where(step, np.nextafter(s, np.where(e > 0, np.inf, -np.inf).astype(s.dtype)), s)


def fma64(a, b, c):
    """a * b + c rounded once, float64 (Boldo and Melquiond's emulation: the exact product
    by Dekker's split, the low parts summed rounding to odd)."""
    a, b, c = (np.asarray(v, np.float64) for v in (a, b, c))
    with np.errstate(all="ignore"):
        ph = a * b
        k = 134217729.0
        ta, tb = k * a, k * b
        ah, bh = ta - (ta - a), tb - (tb - b)
        al, bl = a - ah, b - bh
        pl = ((ah * bh - ph) + ah * bl + al * bh) + al * bl
        th, tl = _two_sum(c, ph)
        v = _round_odd(*_two_sum(tl, pl))
        r = th + v
    # (non-finite or zero products: the plain expression)
    return np.where(np.isfinite(r) & (ph != 0), r, a * b + c)


def fma32(a, b, c):
    """a * b + c rounded once to float32, for float32 a, b, c: the product is exact in float64
    and the float64 sum rounds correctly on to float32 unless it landed exactly on a float32
    midpoint (or below float32's normal range), where the sum is redone rounding to odd."""
    a, b, c = (np.asarray(v, np.float32).astype(np.float64) for v in (a, b, c))
    with np.errstate(all="ignore"):
        p = a * b
        p, c = np.broadcast_arrays(p, c)
        r = p + c
        low = r.view(np.int64) & 0x1FFFFFFF
        redo = (low == 0x10000000) | (np.abs(r) < 2.0 ** -125)
        if redo.any():
            r = np.array(r)
            r[redo] = _round_odd(*_two_sum(p[redo], c[redo]))
    return r.astype(np.float32)


def _fma32n(a, b, c):
    """fma32 for a float32 array `a` and float32 b, c whose results stay in float32's normal
    range (the avx_mathfun ports): fewer passes than fma32."""
    r = a.astype(np.float64) * b + c
    redo = (r.view(np.int64) & 0x1FFFFFFF) == 0x10000000
    if redo.any():
        a, b, c = (np.broadcast_to(np.asarray(v, np.float64), r.shape) for v in (a, b, c))
        r[redo] = _round_odd(*_two_sum(a[redo] * b[redo], c[redo]))
    return r.astype(np.float32)


def _numel(shape):
    n = 1
    for s in shape:
        n *= int(s)
    return n


# ---- rejection samplers: gamma, dirichlet, poisson, binomial (PyTorch's CPU kernels) --------
#
# PyTorch draws these one element at a time in C order (cpu_serial_kernel), each element
# taking as many float64 uniforms / normals from the generator as its rejection loop needs
# (aten/src/ATen/native/Distributions.h: sample_gamma, sample_binomial; Distributions.cpp:
# sample_poisson). The ports below keep PyTorch's float/double mix (its `1.0f / 3.0f`, `0.0331f`
# and scalar_t arithmetic), so seeded draws equal PyTorch's.

_THIRD_F = float(np.float32(1.0) / np.float32(3.0))     # PyTorch's 1.0f / 3.0f
_C0331_F = float(np.float32(0.0331))                      # 0.0331f
_TAIL = (0.0810614667953272, 0.0413406959554092, 0.0276779256849983, 0.02079067210376509,
         0.0166446911898211, 0.0138761288230707, 0.0118967099458917, 0.0104112652619720,
         0.00925546218271273, 0.00833056343336287)


class _Scalars:
    """Scalar float64 uniforms (uniform_real_distribution<double>: random64()'s low 53 bits)
    and normals (normal_distribution<double>: Box-Muller with the stream's normal cache) for
    the rejection loops. Words are fetched in blocks for speed; close() winds the mt19937 state
    back to exactly the words used, so the stream continues as PyTorch's does."""

    def __init__(self, stream):
        self.s = stream
        self.saved = stream._bg.state
        self.buf, self.i, self.used = [], 0, 0

    def uniform(self):
        if self.i + 2 > len(self.buf):
            self.buf = self.buf[self.i:] + self.s._bg.random_raw(1024).tolist()
            self.i = 0
        hi, lo = self.buf[self.i] & 0xFFFFFFFF, self.buf[self.i + 1] & 0xFFFFFFFF
        self.i += 2
        self.used += 2
        return (((hi << 32) | lo) & ((1 << 53) - 1)) * 2.0 ** -53

    def normal(self):
        s = self.s
        if s.normal_cache is not None:
            z, s.normal_cache = s.normal_cache, None
            return z
        u1 = self.uniform()
        u2 = self.uniform()
        r = math.sqrt(-2.0 * math.log1p(-u2))
        theta = 2.0 * math.pi * u1
        s.normal_cache = r * math.sin(theta)
        return r * math.cos(theta)

    def close(self):
        self.s._bg.state = self.saved
        if self.used:
            self.s._bg.random_raw(self.used)


def _gamma_one(alpha, g, f32):
    """sample_gamma<scalar_t, double>: Marsaglia-Tsang, boosted for alpha < 1; `alpha` holds a
    value of scalar_t (float32 when f32), whose own arithmetic is float32 where PyTorch's is."""
    scale = 1.0
    if alpha < 1.0:
        if alpha == 0.0:
            return 0.0
        if f32:
            scale *= (1.0 - g.uniform()) ** float(np.float32(1.0) / np.float32(alpha))
            alpha = float(np.float32(alpha) + np.float32(1.0))
        else:
            scale *= (1.0 - g.uniform()) ** (1.0 / alpha)
            alpha += 1.0
    d = float(np.float32(alpha) - np.float32(_THIRD_F)) if f32 else alpha - _THIRD_F
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        while True:
            x = g.normal()
            y = 1.0 + c * x
            if y > 0:
                break
        v = y * y * y
        u = 1.0 - g.uniform()
        xx = x * x
        if u < 1.0 - _C0331_F * xx * xx:
            return scale * d * v
        if math.log(u) < 0.5 * xx + d * (1.0 - v + math.log(v)):
            return scale * d * v


def _poisson_one(lam, g):
    """sample_poisson: transformed rejection (Hoermann 1993) for lambda >= 10, else the
    product of uniforms."""
    if lam >= 10:
        slam = math.sqrt(lam)
        loglam = math.log(lam)
        b = 0.931 + 2.53 * slam
        a = -0.059 + 0.02483 * b
        invalpha = 1.1239 + 1.1328 / (b - 3.4)
        vr = 0.9277 - 3.6224 / (b - 2)
        while True:
            U = g.uniform() - 0.5
            V = g.uniform()
            us = 0.5 - abs(U)
            k = math.floor((2 * a / us + b) * U + lam + 0.43)
            if us >= 0.07 and V <= vr:
                return k
            if k < 0 or (us < 0.013 and V > us):
                continue
            # (math.lgamma for std::lgamma: they may differ in the last bit, which moves this
            # boundary by about 1e-16)
            if (math.log(V) + math.log(invalpha) - math.log(a / (us * us) + b)) <= \
                    (-lam + k * loglam - math.lgamma(k + 1.0)):
                return k
    if lam == 0:
        return 0
    enlam = math.exp(-lam)
    X, prod = 0, 1.0
    while True:
        prod *= g.uniform()
        if prod > enlam:
            X += 1
        else:
            return X


def _stirling_tail(k):
    if k < 10:
        return _TAIL[int(k)]
    kp1sq = (k + 1) * (k + 1)
    return (1.0 / 12 - (1.0 / 360 - 1.0 / 1260 / kp1sq) / kp1sq) / (k + 1)


def _binomial_inversion(count, prob, g, S):
    logprob = float(np.log1p(S(-prob)))          # compat_log1p on scalar_t
    geom_sum, num = 0.0, 0.0
    while True:
        geom_sum += math.ceil(math.log(g.uniform()) / logprob)
        if geom_sum > count:
            return num
        num += 1.0


def _btrs(count, prob, g, S):
    """BTRS (Hoermann 1993, as TensorFlow's random_binomial_op), scalar_t products rounded."""
    stddev = float(np.sqrt(S(S(S(count) * S(prob)) * S(S(1) - S(prob)))))
    b = 1.15 + 2.53 * stddev
    a = -0.0873 + 0.0248 * b + 0.01 * prob
    c = float(S(S(count) * S(prob))) + 0.5
    v_r = 0.92 - 4.2 / b
    r = float(S(S(prob) / S(S(1) - S(prob))))
    alpha = (2.83 + 5.1 / b) * stddev
    m = math.floor(float(S(S(count + 1) * S(prob))))
    while True:
        U = g.uniform() - 0.5
        V = g.uniform()
        us = 0.5 - abs(U)
        k = float(math.floor((2 * a / us + b) * U + c))
        if k < 0 or k > count:
            continue
        if us >= 0.07 and V <= v_r:
            return k
        V = math.log(V * alpha / (a / (us * us) + b))
        upper = ((m + 0.5) * math.log((m + 1) / (r * (count - m + 1))) +
                 (count + 1) * math.log((count - m + 1) / (count - k + 1)) +
                 (k + 0.5) * math.log(r * (count - k + 1) / (k + 1)) +
                 _stirling_tail(m) + _stirling_tail(count - m) -
                 _stirling_tail(k) - _stirling_tail(count - k))
        if V <= upper:
            return k


def _binomial_one(count, prob, g, S):
    """sample_binomial<scalar_t, double>; count and prob hold scalar_t values."""
    if count <= 0.0 or prob <= 0.0:
        return 0.0
    if prob >= 1.0:
        return count
    if prob <= 0.5:
        if float(S(S(count) * S(prob))) >= 10.0:
            return _btrs(count, prob, g, S)
        return _binomial_inversion(count, prob, g, S)
    if prob > 0.5:
        q = float(S(1.0 - prob))
        if float(S(S(count) * S(q))) >= 10.0:
            return float(S(count) - S(_btrs(count, q, g, S)))
        return float(S(count) - S(_binomial_inversion(count, q, g, S)))
    return math.nan


def _serial(stream, fn, *arrays):
    """fn(*element values, scalars) over the arrays' elements in C order, as a float64 array."""
    flat = [np.ascontiguousarray(a).reshape(-1).tolist() for a in arrays]
    g = _Scalars(stream)
    try:
        out = [fn(*vals, g) for vals in zip(*flat)]
    finally:
        g.close()
    return np.asarray(out, np.float64).reshape(np.shape(arrays[0]))


# the samplers, on a TorchStream `stream`


def standard_gamma(stream, alpha, d):
    """_standard_gamma(alpha): float32/float64 array `alpha` (dtype d), PyTorch's
    _s_gamma_cpu: the sample clamped below at the type's smallest normal."""
    f32 = d is not dt.float64
    a = np.asarray(alpha, d.np if d.np in (np.float32, np.float64) else np.float32)
    r = _serial(stream, lambda x, g: _gamma_one(x, g, f32), a)
    r = r.astype(np.float32 if f32 else np.float64)
    return np.maximum(r, np.finfo(r.dtype).tiny).astype(d.np)


def dirichlet(stream, alpha, d):
    """_sample_dirichlet: float64 gammas of the alphas (as doubles), normalised over the
    last dim, cast and clamped into [tiny, nextafter(1, 0)]."""
    a = np.asarray(alpha, np.float64)
    gam = _serial(stream, lambda x, g: _gamma_one(x, g, False), a)
    gam = np.maximum(gam, np.finfo(np.float64).tiny)
    ft = np.float64 if d is dt.float64 else np.float32
    r = (gam / gam.sum(-1, keepdims=True)).astype(ft)
    r = np.minimum(np.nextafter(ft(1), ft(0)), np.maximum(np.finfo(ft).tiny, r))
    return r.astype(d.np)


def poisson(stream, lam, d):
    """torch.poisson(lam): one sample_poisson per element (the rate as a double)."""
    lam = np.asarray(lam, np.float64)
    if np.any(lam < 0) or np.any(np.isnan(lam)):
        raise RuntimeError("invalid Poisson rate, expected rate to be non-negative")
    return _serial(stream, _poisson_one, lam).astype(d.np)


def binomial(stream, count, prob, d):
    """torch.binomial(count, prob), count and prob of one float dtype d."""
    S = np.float64 if d is dt.float64 else np.float32
    c = np.asarray(count, S)
    p = np.asarray(prob, S)
    c, p = np.broadcast_arrays(c, p)
    return _serial(stream, lambda n, q, g: _binomial_one(n, q, g, S), c, p).astype(d.np)


def cauchy(stream, shape, d, median=0.0, sigma=1.0):
    """cauchy_: median + sigma * tan(pi * (u - 0.5)) on float64 uniforms."""
    u = stream.uniform(shape, dt.float64).astype(np.float64)
    return fma64(sigma, _libm("tan", math.pi * (u - 0.5)), median).astype(d.np)


def von_mises(stream, loc, concentration, proposal_r, shape):
    """VonMises._rejection_sample (Best and Fisher's algorithm, PyTorch's form): rounds of
    torch.rand((3,) + shape, float64) until every element has been accepted once; each round
    rewrites every element it accepts (as PyTorch's where does). loc, concentration and
    proposal_r are float64 arrays broadcastable to shape."""
    loc, kappa, r = (np.asarray(a, np.float64) for a in (loc, concentration, proposal_r))
    x = np.zeros(shape, np.float64)
    done = np.zeros(shape, np.bool_)
    with np.errstate(all="ignore"):
        while not done.all():
            u1, u2, u3 = stream.uniform((3,) + tuple(shape), dt.float64).astype(np.float64)
            z = np.cos(math.pi * u1)
            f = (1 + r * z) / (r + z)
            c = kappa * (r - f)
            accept = ((c * (2 - c) - u2) > 0) | (np.log(c / u2) + 1 - c >= 0)
            if accept.any():
                x = np.where(accept, np.sign(u3 - 0.5) * np.arccos(f), x)
                done = done | accept
        return (x + math.pi + loc) % (2 * math.pi) - math.pi


def geometric(stream, shape, d, p):
    """geometric_: ceil(log(u) / log1p(-p)) on float64 uniforms (PyTorch's
    transformation::geometric)."""
    u = stream.uniform(shape, dt.float64).astype(np.float64)
    return np.ceil(_libm("log", u) / math.log1p(-float(p))).astype(d.np)


def log_normal(stream, shape, d, mean=1.0, std=2.0):
    """log_normal_: exp of float64 normals drawn one at a time (the cached Box-Muller pair), as
    PyTorch's serial lognormal_distribution<double>."""
    n = _numel(shape)
    z = np.empty(n, np.float64)
    for i in range(n):
        z[i] = stream._normal_scalar()
    return _libm("exp", fma64(z, float(std), float(mean))).astype(d.np).reshape(shape)
