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
(within one ulp). Distributions PyTorch computes by other algorithms (multinomial, poisson,
orthogonal and other nn.init helpers that need them) take NumPy's samplers on a NumPy
generator seeded from the same seed.
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
