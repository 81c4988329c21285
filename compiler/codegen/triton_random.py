"""Random fills on devices: Philox4x32-10 counter-based kernels (Triton's tl.randint4x).

Element i of a draw made at generator state (seed, offset) is a function of the counter
offset + i alone: counter (lo, hi, 0, 0), key (seed lo, seed hi), ten Philox rounds, four
32-bit words c0..c3. The generator then advances its offset by the element count, so a draw
is reproducible from (seed, offset) and independent of launch geometry. The words become:

    uniform     float32: (c0 >> 8) * 2**-24            (exact: every value k / 2**24)
                float64: ((c0 >> 5) * 2**26 + (c1 >> 6)) * 2**-53
                then lo + u * span
    normal      Box-Muller on u1 in (0, 1] and u2 in [0, 1): sqrt(-2 ln u1) cos(2 pi u2),
                then mean + std * n (float64 takes u1, u2 from (c0, c1) and (c2, c3))
    bernoulli   (c0 >> 8) < ceil(p * 2**24): the float32 uniform below p, as an integer test
    exponential -ln(1 - u) / lambd
    integers    low + (c0 | c1 << 32) mod range

`philox_numpy` and `draw_numpy` are the same functions on NumPy: the reference the tests hold
the kernels to (bit for bit, except normal/exponential, whose transcendentals differ in the
last place), and the host path of the interpret device when Triton's library cannot run in
its interpreter. Float parameters travel as float64 bit patterns (int64), so a float64 fill
keeps its bounds exact (Triton passes Python floats as fp32).
"""
import math

import numpy as np

from runtime import dtypes as dt
from .triton_pointwise import SIG, Param, PointwiseKernel, TritonCodegenError

KINDS = ("uniform", "normal", "bernoulli", "exponential", "integers")
_PHILOX_A, _PHILOX_B = 0xD2511F53, 0xCD9E8D57
_KEY_A, _KEY_B = 0x9E3779B9, 0xBB67AE85
_M32 = np.uint64(0xFFFFFFFF)


# ------------------------------------------------------------------------------ NumPy twin

def philox_numpy(seed, counters, c2=0, c3=0, rounds=10):
    """Philox4x32 of counters (uint64 array: words c0 = lo, c1 = hi; c2, c3 as given, 0 in
    every draw) under a 64-bit seed (key words lo, hi): the four uint32 words as arrays of
    the counters' shape."""
    ctr = np.asarray(counters, np.uint64)
    c0, c1 = ctr & _M32, ctr >> np.uint64(32)
    c2 = np.full_like(c0, c2)
    c3 = np.full_like(c0, c3)
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    k0, k1 = seed & 0xFFFFFFFF, seed >> 32
    A, B = np.uint64(_PHILOX_A), np.uint64(_PHILOX_B)
    for _ in range(rounds):
        pa, pb = A * c0, B * c2                        # 32 x 32 -> 64 bits, no overflow
        c0, c1, c2, c3 = ((pb >> np.uint64(32)) ^ c1 ^ np.uint64(k0), pb & _M32,
                          (pa >> np.uint64(32)) ^ c3 ^ np.uint64(k1), pa & _M32)
        k0, k1 = (k0 + _KEY_A) & 0xFFFFFFFF, (k1 + _KEY_B) & 0xFFFFFFFF
    return tuple(c.astype(np.uint32) for c in (c0, c1, c2, c3))


def _u53(a, b):
    return ((a >> 5).astype(np.float64) * 67108864.0 + (b >> 6).astype(np.float64)) * 2.0 ** -53


def bernoulli_threshold(p):
    """The integer t with (c0 >> 8) < t exactly when the float32 uniform is below p."""
    return int(min(max(math.ceil(float(p) * 2 ** 24), 0), 2 ** 24))


def draw_numpy(kind, shape, dtype, seed, offset, params):
    """The values the kernel for (kind, dtype) writes for a draw at (seed, offset)."""
    n = int(np.prod(shape, dtype=np.int64))
    c0, c1, c2, c3 = philox_numpy(seed, np.arange(n, dtype=np.uint64) + np.uint64(offset))
    f64 = dtype is dt.float64
    if kind == "integers":
        low, rng = params
        r = (c0.astype(np.uint64) | (c1.astype(np.uint64) << np.uint64(32))) % np.uint64(rng)
        v = r.astype(np.int64) + low
    elif kind == "bernoulli":
        v = (c0 >> 8) < bernoulli_threshold(params[0])
    else:
        if f64:
            u = _u53(c0, c1)
        else:
            u = (c0 >> 8).astype(np.float32) * np.float32(2.0 ** -24)
        if kind == "uniform":
            lo, span = params
            v = (u * (span if f64 else np.float32(span))) + (lo if f64 else np.float32(lo))
        elif kind == "exponential":
            lam = params[0] if f64 else np.float32(params[0])
            v = -np.log(1 - u) / lam
        elif kind == "normal":
            mean, std = params
            if f64:
                u1, u2 = 1.0 - u, _u53(c2, c3)
            else:
                u1 = ((c0 >> 8) + 1).astype(np.float32) * np.float32(2.0 ** -24)
                u2 = (c1 >> 8).astype(np.float32) * np.float32(2.0 ** -24)
            ft = np.float64 if f64 else np.float32
            z = np.sqrt(ft(-2.0) * np.log(u1)) * np.cos(ft(2 * math.pi) * u2)
            v = z * ft(std) + ft(mean)
        else:
            raise ValueError(f"draw_numpy: unknown kind {kind!r}")
    return np.asarray(v).astype(dtype.np).reshape(shape)


# ------------------------------------------------------------------------------ kernels

def _bits(x):
    """A float parameter as its float64 bit pattern (an int64 launch argument)."""
    return int(np.array(float(x), np.float64).view(np.int64))


PARAM_NAMES = {"uniform": ("lo", "span"), "normal": ("mean", "std"), "bernoulli": ("thr",),
               "exponential": ("lambd",), "integers": ("low", "rng")}


def check_kind(kind, dtype):
    """TritonCodegenError unless a (kind, dtype) draw has a kernel."""
    if kind not in KINDS:
        raise TritonCodegenError(f"philox: unknown draw kind {kind!r}")
    if dtype.is_complex or dtype.name not in _TL:
        raise TritonCodegenError(f"philox: no {kind} kernel for {dtype}")
    if kind in ("uniform", "normal", "exponential") and not dtype.is_floating_point:
        raise TritonCodegenError(f"philox: {kind} needs a floating dtype, got {dtype}")


def launch_params(kind, params):
    """A draw's parameters as the kernels' int64 arguments (PARAM_NAMES order): float
    parameters as float64 bit patterns, bernoulli's p as its integer threshold."""
    if kind == "bernoulli":
        return [bernoulli_threshold(params[0])]
    if kind == "integers":
        if not 0 < int(params[1]) < 2 ** 63:
            raise TritonCodegenError(f"philox: integer range {params[1]} outside (0, 2**63)")
        return [int(params[0]), int(params[1])]
    return [_bits(p) for p in params]


def draw_lines(kind, dtype, i="i"):
    """Kernel lines computing `v` (the drawn values) for element counters `offset + {i}`, from
    int64 arguments named as PARAM_NAMES[kind] and the scalars `seed`, `offset`: the one
    definition every Philox kernel (eager fills, compiled programs' draws) shares."""
    f64 = dtype is dt.float64
    ft = "tl.float64" if f64 else "tl.float32"
    L = [f"    c0, c1, c2, c3 = tl.randint4x(seed, offset + {i})"]
    if kind in ("uniform", "normal", "exponential"):
        if f64:
            L.append("    u = ((c0 >> 5).to(tl.float64) * 67108864.0 + (c1 >> 6).to(tl.float64))"
                     " * 1.1102230246251565e-16")
        else:
            L.append("    u = (c0 >> 8).to(tl.float32) * 5.960464477539063e-08")
        for p in PARAM_NAMES[kind]:
            L.append(f"    {p}_ = {p}.to(tl.int64).to(tl.float64, bitcast=True).to({ft})")
    if kind == "uniform":
        L.append("    v = u * span_ + lo_")
    elif kind == "exponential":
        L.append("    v = -tl.log(1.0 - u) / lambd_")
    elif kind == "normal":
        if f64:
            L += ["    u1 = 1.0 - u",
                  "    u2 = ((c2 >> 5).to(tl.float64) * 67108864.0 + (c3 >> 6).to(tl.float64))"
                  " * 1.1102230246251565e-16"]
        else:
            L += ["    u1 = ((c0 >> 8) + 1).to(tl.float32) * 5.960464477539063e-08",
                  "    u2 = (c1 >> 8).to(tl.float32) * 5.960464477539063e-08"]
        L += [f"    z = tl.sqrt(-2.0 * tl.log(u1)) * tl.cos({2 * math.pi!r} * u2)",
              "    v = z * std_ + mean_"]
    elif kind == "bernoulli":
        L.append("    v = (c0 >> 8).to(tl.int64) < thr")
    else:
        L += ["    r = c0.to(tl.uint64) | (c1.to(tl.uint64) << 32)",
              "    v = (r % rng.to(tl.uint64)).to(tl.int64) + low"]
    return L


class RandomKernel(PointwiseKernel):
    """One Philox fill kernel: (kind, output dtype) -> generated source; launched per draw."""

    def __init__(self, kind, dtype):
        check_kind(kind, dtype)
        self.kind, self.dtype = kind, dtype
        name = f"philox_{kind}_{SIG[dtype.name]}"
        names = PARAM_NAMES[kind]
        L = ["import triton", "import triton.language as tl", "", "",
             "@triton.jit",
             f"def {name}(out_ptr, numel, seed, offset, {', '.join(names)}, BLOCK: tl.constexpr):",
             f"    # {kind} draw into a {dtype} buffer: element i from Philox counter offset + i",
             "    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)",
             "    mask = i < numel"] + draw_lines(kind, dtype)
        L.append(f"    tl.store(out_ptr + i, v.to(tl.{_TL[dtype.name]}), mask=mask)")
        params = [Param("out_ptr", "*" + SIG[dtype.name], ("out", 0)),
                  Param("numel", "i64", ("numel",)), Param("seed", "i64", ("value", 0)),
                  Param("offset", "i64", ("value", 0))] + \
                 [Param(p, "i64", ("value", 0)) for p in names]
        super().__init__(name, "\n".join(L) + "\n", params, None, (), True)

    def args_for(self, out, numel, seed, offset, params):
        """Launch arguments of one draw (params as draw_numpy takes them)."""
        seed = int(seed) & 0xFFFFFFFFFFFFFFFF
        if seed >= 2 ** 63:                      # the same 64 bits as a signed argument
            seed -= 2 ** 64
        return [out, int(numel), seed, int(offset)] + launch_params(self.kind, params)

    def draw(self, out, numel, seed, offset, params, interpret):
        """Fill `out` (a contiguous buffer of numel elements: HostTensor or DeviceArg)."""
        if numel == 0:
            return
        vals = self.args_for(out, numel, seed, offset, params)
        fn = self.function(interpret)
        if interpret:
            block = 1 << max(4, min(16, (numel - 1).bit_length()))
            fn[((numel + block - 1) // block,)](*vals, BLOCK=block)
        else:
            block = 1024
            self.relauncher.launch(fn, ((numel + block - 1) // block,), vals,
                                   {"BLOCK": block}, {"num_warps": 4})


_TL = {"float32": "float32", "float64": "float64", "float16": "float16", "bfloat16": "bfloat16",
       "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64", "uint8": "uint8",
       "bool": "int1"}
_CACHE = {}


def kernel(kind, dtype):
    """The cached fill kernel for (kind, dtype)."""
    k = _CACHE.get((kind, dtype))
    if k is None:
        k = _CACHE[(kind, dtype)] = RandomKernel(kind, dtype)
        from ..triton_backend import _write_aot_sidecar   # (the kernel-cache walk compiles it)
        _write_aot_sidecar(k)
    return k
