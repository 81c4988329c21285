"""The cpu generator: PyTorch's CPU random stream, number for number.

PyTorch's CPU generator is a 32-bit Mersenne Twister (mt19937) seeded by init_genrand with the
seed's low 32 bits; every distribution is a fixed transformation of its 32-bit outputs
(`random()`) or of two of them as one 64-bit value (`random64()`, the first as the high half).
NumPy's MT19937 with its legacy seeding produces the same 32-bit stream, so Kiln applies the
same transformations (aten/src/ATen/core/TransformationHelper.h and DistributionsHelper.h,
aten/src/ATen/native/cpu/DistributionTemplates.h) and `manual_seed(s)` then gives PyTorch's
values:

    uniform  float32 (and float16/bfloat16, rounded from it): (random() & (2**24 - 1)) * 2**-24;
             float64: (random64() & (2**53 - 1)) * 2**-53; then * (to - from) + from in
             float64 with the bounds in the tensor's type
    integers [low, high): low + random() % range (random64() when range >= 2**32)
    random_  (no bounds, int64): random64() % 2**63
    randperm Fisher-Yates: for i in 0..n-2, swap r[i] and r[i + random() % (n - i)]
    bernoulli_(p): float64 uniform < p;  bernoulli(p tensor): float32 uniform < p
    exponential: -log1p(-u) / lambda with a float64 uniform
    normal   16 or more contiguous values: all uniforms first, then Box-Muller on blocks of 16
             (u1 = 1 - d[j], u2 = d[j + 8] for j < 8), the last block recomputed from 16 fresh
             uniforms when the size is not a multiple of 16; fewer: one float64 Box-Muller pair
             per two values, the second kept for the next draw (the generator's cache)

Exact to the bit except where PyTorch's vectorised float32 normal uses its own log/sin/cos
(within one ulp). The rejection samplers at the end (standard_gamma, dirichlet, poisson,
binomial, cauchy) port PyTorch's cpu kernels and give its numbers too (used by
framework.distributions). Other distributions PyTorch computes by other algorithms
(multinomial, torch.poisson, orthogonal and other nn.init helpers that need them) take
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
        else:       # the bounds in the tensor's type, the arithmetic in float64
            f, t = float(_as(lo, d)), float(_as(hi, d))
            r = x * (t - f) + f
        return r.astype(d.np).reshape(shape)

    def integers(self, shape, low, high):
        """[low, high) as int64 values."""
        n, rng = _numel(shape), int(high) - int(low)
        r = self.random64(n) if rng >= 2 ** 32 else self.random(n)
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
        """bernoulli(p tensor): float32 uniforms below each probability."""
        return self.uniform(p.shape, dt.float32) < p

    def exponential(self, shape, lambd):
        u = self.uniform(shape, dt.float64)
        return -np.log1p(-u) / float(lambd)

    def normal(self, shape, d, mean=0.0, std=1.0):
        n = _numel(shape)
        if n >= 16:
            return self._normal_fill(n, d, mean, std).reshape(shape)
        out = np.empty(n, np.float64)
        for i in range(n):
            out[i] = self._normal_scalar() * std + mean
        return out.astype(d.np).reshape(shape)

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


def _box_muller_16(d, ft, mean, std):
    """PyTorch's normal_fill_16 on each row of 16 uniforms, in place."""
    u1 = ft(1) - d[:, :8]
    u2 = d[:, 8:].copy()
    radius = np.sqrt(ft(-2) * np.log(u1))
    theta = ft(2.0 * math.pi) * u2
    d[:, :8] = radius * np.cos(theta) * ft(std) + ft(mean)
    d[:, 8:] = radius * np.sin(theta) * ft(std) + ft(mean)


def _as(x, d):
    """A bound in the tensor's type (PyTorch stores the bounds so), as a NumPy scalar."""
    if d is dt.float64:
        return np.float64(x)
    return np.float16(x) if d is dt.float16 else np.float32(x)


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
    return (median + sigma * np.tan(math.pi * (u - 0.5))).astype(d.np)


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
    return np.ceil(np.log(u) / math.log1p(-float(p))).astype(d.np)


def log_normal(stream, shape, d, mean=1.0, std=2.0):
    """log_normal_: exp of float64 normals drawn one at a time (the cached Box-Muller pair), as
    PyTorch's serial lognormal_distribution<double>."""
    n = _numel(shape)
    z = np.empty(n, np.float64)
    for i in range(n):
        z[i] = stream._normal_scalar() * std + mean
    return np.exp(z).astype(d.np).reshape(shape)
