"""Regression tests from the random-sampling / data-loading sweep against PyTorch 2.13.

References are NumPy's own MT19937 stream (the legacy seeding PyTorch's mt19937 shares) with
the transformations written out here, exact rationals (fractions.Fraction) for the rounding of
fused multiply-adds, Python's math (the C library PyTorch's kernels call) for float64
transcendental functions, and a few literal values printed by torch 2.13.0 (CPU wheel)."""
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest

import framework as torch
from framework import _cpu_random as cr


def _words(seed, n):
    """The first n 32-bit outputs of PyTorch's generator after manual_seed(seed)."""
    bg = np.random.MT19937(0)
    bg._legacy_seeding(seed)
    return bg.random_raw(n).astype(np.uint64)


def _words64(seed, n):
    w = _words(seed, 2 * n).reshape(-1, 2)
    return (w[:, 0] << np.uint64(32)) | w[:, 1]


def _u64(seed, n):
    """float64 uniforms: random64()'s low 53 bits * 2**-53."""
    return (_words64(seed, n) & np.uint64(2 ** 53 - 1)).astype(np.float64) * 2.0 ** -53


def _round_f32(fr):
    """A Fraction correctly rounded to float32 (ties to even)."""
    c = np.float32(float(fr))
    best = None
    for v in (np.nextafter(c, np.float32(-np.inf)), c, np.nextafter(c, np.float32(np.inf))):
        d = abs(Fraction(float(v)) - fr)
        key = (d, int(np.array(v).view(np.int32)) & 1)
        if best is None or key < best[0]:
            best = (key, v)
    return best[1]


# ---- random_: bounds forms, ranges, checks ----------------------------------------------------

def test_random_one_positional_bound_is_to():
    torch.manual_seed(0)
    x = torch.empty(10).random_(10)
    assert x.tolist() == [4.0, 9.0, 3.0, 0.0, 3.0, 9.0, 7.0, 3.0, 7.0, 3.0]    # torch 2.13
    assert x.tolist() == (_words(0, 10) % np.uint64(10)).astype(float).tolist()
    torch.manual_seed(0)
    assert torch.empty(5).random_(to=7).tolist() == \
        (_words(0, 5) % np.uint64(7)).astype(float).tolist()


def test_random_from_without_to_includes_the_top():
    # [from, 2**digits] for floats, [from, max] for integers: range = top - from + 1
    torch.manual_seed(0)
    assert torch.empty(5).random_(5, None).tolist() == \
        [8326369.0, 12889232.0, 1485142.0, 2215973.0, 5158320.0]            # torch 2.13
    torch.manual_seed(0)
    assert torch.empty(5, dtype=torch.int8).random_(5, None).tolist() == \
        (5 + _words(0, 5) % np.uint64(123)).astype(int).tolist() == [88, 29, 22, 14, 72]
    # int32 from 0: range 2**31 takes 64-bit words; random_() (no bounds) takes 32-bit ones
    torch.manual_seed(0)
    assert torch.empty(3, dtype=torch.int32).random_(0, None).tolist() == \
        [398764591, 1478610112, 1537364731]
    torch.manual_seed(0)
    assert torch.empty(3, dtype=torch.int32).random_().tolist() == \
        (_words(0, 3) % np.uint64(2 ** 31)).astype(int).tolist()


def test_integer_draws_take_64_bit_words_from_a_range_of_2_pow_28():
    torch.manual_seed(3)
    assert torch.randint(0, 2 ** 28 - 1, (4,)).tolist() == \
        (_words(3, 4) % np.uint64(2 ** 28 - 1)).astype(int).tolist()
    torch.manual_seed(3)
    assert torch.randint(0, 2 ** 28, (4,)).tolist() == \
        (_words64(3, 4) % np.uint64(2 ** 28)).astype(int).tolist()
    torch.manual_seed(3)
    assert torch.randint(-2 ** 30, 0, (4,)).tolist() == \
        ((_words64(3, 4) % np.uint64(2 ** 30)).astype(np.int64) - 2 ** 30).tolist()


def test_random_bounds_must_fit_the_dtype():
    x = torch.full((4,), 7, dtype=torch.int8)
    with pytest.raises(RuntimeError, match="to - 1 is out of bounds for signed char"):
        x.random_(0, 1000)
    with pytest.raises(RuntimeError, match="from is out of bounds for unsigned char"):
        torch.zeros(2, dtype=torch.uint8).random_(-1, 5)
    with pytest.raises(RuntimeError, match="expects 'from' to be less than 'to'"):
        x.random_(5, 2)
    assert x.tolist() == [7, 7, 7, 7]


# ---- float arithmetic as PyTorch's kernels do it -------------------------------------------

def test_fma_emulations_round_once():
    rng = np.random.default_rng(1)
    a, b, c = rng.standard_normal(3000), rng.standard_normal(3000), rng.standard_normal(3000)
    # hard cases: products cancelling the addend, ties, huge/tiny mixes
    a[:3], b[:3], c[:3] = [1 + 2 ** -30, 3.0, 1e200], [1 - 2 ** -30, 1 / 3, 1e-200], \
        [-1.0, -1.0, 1e-300]
    got = cr.fma64(a, b, c)
    want = [float(Fraction(x) * Fraction(y) + Fraction(z)) for x, y, z in zip(a, b, c)]
    assert got.tolist() == want
    a32, b32, c32 = (v.astype(np.float32) for v in (a, b, c))
    a32[:3], b32[:3], c32[:3] = [1 + 2 ** -12, 3, 1.5], [1 - 2 ** -12, 1 / 3, 2 ** -24], \
        [-1, -1, 2 ** -48]
    got32 = cr.fma32(a32, b32, c32)
    want32 = [_round_f32(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)))
              for x, y, z in zip(a32, b32, c32)]
    assert got32.dtype == np.float32 and got32.tolist() == [float(v) for v in want32]


def test_float64_uniform_with_bounds_is_one_fused_multiply_add():
    torch.manual_seed(0)
    x = torch.empty(200, dtype=torch.float64).uniform_(-2, 3)
    assert x[:3].tolist() == [2.8502650090327655, 1.5390993219989397, 0.29691471563725436]
    want = [float(Fraction(u) * 5 - 2) for u in _u64(0, 200)]
    assert x.tolist() == want


def test_float32_uniform_bounds_in_float32():
    torch.manual_seed(4)
    x = torch.empty(300).uniform_(0.1, 0.7)
    u = (_words(4, 300) & np.uint64(2 ** 24 - 1)).astype(np.float64) * 2.0 ** -24
    lo, hi = np.float32(0.1), np.float32(0.7)
    rng = Fraction(float(np.float32(hi - lo)))          # to - from rounded in float32 first
    want = [float(_round_f32(Fraction(v) * rng + Fraction(float(lo)))) for v in u]
    assert x.tolist() == want
    # float16 draws round that float32 value (bounds not rounded to half first)
    torch.manual_seed(4)
    h = torch.empty(300, dtype=torch.float16).uniform_(0.1, 0.7)
    assert h.tolist() == np.array(want, np.float32).astype(np.float16).astype(float).tolist()


def test_float64_normal_uses_the_c_library_and_fma():
    n, mean, std = 160, 0.3, 0.7
    torch.manual_seed(2)
    got = torch.empty(n, dtype=torch.float64).normal_(mean, std).tolist()
    u = _u64(2, n)
    want = list(u)
    for i in range(0, n, 16):
        for j in range(8):
            r = math.sqrt(-2.0 * math.log(1 - u[i + j]))
            th = 2.0 * math.pi * u[i + j + 8]
            for k, z in ((i + j, r * math.cos(th)), (i + j + 8, r * math.sin(th))):
                want[k] = float(Fraction(z) * Fraction(std) + Fraction(mean))
    assert got == want


def test_float32_randn_equals_pytorchs_vectorised_fill():
    # PyTorch's normal_fill_16_AVX2 (avx_mathfun log/sincos, fused multiply-adds): NumPy's
    # float32 log/cos/sin differ from it in the last place (value 3 below was -0.43387884)
    torch.manual_seed(0)
    r = torch.randn(48).numpy()
    assert r.view(np.uint32)[:16].tolist() == [
        3213892485, 3214114954, 3196079062, 3202229597, 1062814997, 1060185987, 3198274669,
        3221708737, 1051001144, 3215045876, 1051930879, 1050526651, 1039495031, 1067346835,
        1066332814, 3195876988]
    # the ports are sin/cos/log to a few float32 ulps (theta in [-8, 8], u in (0, 1])
    x = np.linspace(-8, 8, 4001, dtype=np.float32)
    s, c = cr._sincos256_ps(x)
    np.testing.assert_allclose(s, np.sin(x.astype(np.float64)), rtol=0, atol=3e-7)
    np.testing.assert_allclose(c, np.cos(x.astype(np.float64)), rtol=0, atol=3e-7)
    u = np.linspace(1e-6, 1, 5000, dtype=np.float32)
    np.testing.assert_allclose(cr._log256_ps(u), np.log(u.astype(np.float64)), rtol=3e-7,
                               atol=1e-7)
    assert np.isnan(cr._log256_ps(np.float32([0.0, -1.0]))).all()


def test_half_randn_blocks_draw_fresh_uniforms_per_block():
    # float16/bfloat16: each block of 16 from 16 fresh float32 uniforms, the last 16 values
    # recomputed from the next 16 (not all uniforms first, as float32 does): 32 words for 20
    # values, the tail equal to float32 Box-Muller on uniforms 16..31
    torch.manual_seed(0)
    h = torch.randn(20, dtype=torch.float16)
    torch.manual_seed(0)
    full = torch.randn(32)                  # blocks on uniforms 0..15 and 16..31
    want = np.concatenate([full.numpy()[:4], full.numpy()[16:]]).astype(np.float16)
    assert h.numpy().tolist() == want.tolist()
    assert h[4:8].tolist() == [-1.3525390625, -1.6962890625, 0.56689453125, 0.79345703125]
    torch.manual_seed(0)
    torch.randn(20, dtype=torch.bfloat16)
    assert torch.rand(1).item() == float((_words(0, 33)[32] & np.uint64(2 ** 24 - 1))) * 2 ** -24


def test_half_uniform_rounding_up_to_the_top_gives_the_bottom():
    torch.manual_seed(0)
    h = torch.rand(4000, dtype=torch.float16).numpy()
    u = (_words(0, 4000) & np.uint64(2 ** 24 - 1)).astype(np.float64) * 2.0 ** -24
    up = np.nonzero(u.astype(np.float32).astype(np.float16) == 1)[0]
    assert up.tolist() == [337, 385, 2885]                  # rounded to 1.0: PyTorch gives 0
    assert h[up].tolist() == [0.0, 0.0, 0.0] and h.max() < 1
    keep = np.ones(4000, bool)
    keep[up] = False
    assert np.array_equal(h[keep], u[keep].astype(np.float32).astype(np.float16))


def test_exponential_is_minus_inverse_lambda_times_log1p():
    torch.manual_seed(0)
    x = torch.empty(64, dtype=torch.float64).exponential_(3.0)
    assert x[:2].tolist() == [1.1694420622358805, 0.4101282547265589]           # torch 2.13
    assert x.tolist() == [(-1.0 / 3.0) * math.log1p(-u) for u in _u64(0, 64)]


# ---- bernoulli with float64 probabilities -----------------------------------------------------

def test_bernoulli_float64_probabilities_take_float64_uniforms():
    p = torch.full((8,), 0.5, dtype=torch.float64)
    torch.manual_seed(0)
    b = torch.bernoulli(p)
    assert b.dtype == torch.float64
    assert b.tolist() == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0]               # torch 2.13
    assert b.tolist() == (_u64(0, 8) < 0.5).astype(float).tolist()
    torch.manual_seed(0)             # float32 probabilities: float32 uniforms
    assert torch.bernoulli(p.float()).tolist() == [1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0]
    torch.manual_seed(0)
    assert torch.empty(8).bernoulli_(p).tolist() == b.tolist()
    torch.manual_seed(0)
    d = torch.distributions.Bernoulli(probs=p).sample()
    assert d.tolist() == b.tolist()


# ---- non-contiguous fills ---------------------------------------------------------------------

def test_non_contiguous_fills_draw_in_memory_order():
    for fill in (lambda x: x.uniform_(-1, 2), lambda x: x.exponential_(2.0),
                 lambda x: x.random_(0, 9), lambda x: x.bernoulli_(0.4),
                 lambda x: x.cauchy_(0.0, 1.0), lambda x: x.geometric_(0.3)):
        torch.manual_seed(5)
        base = torch.zeros(8, 6, dtype=torch.float64)
        fill(base.t())
        torch.manual_seed(5)
        flat = torch.zeros(48, dtype=torch.float64)
        fill(flat)
        assert base.reshape(-1).tolist() == flat.tolist()
    # normal_ on a non-contiguous tensor: PyTorch's serial path, one Box-Muller value at a
    # time (as 48 draws of randn(1)), not the 16-wide blocks
    torch.manual_seed(0)
    base = torch.zeros(8, 6)
    base.t().normal_()
    assert base[0, 0].item() == 1.5409960746765137
    torch.manual_seed(0)
    ones = [torch.randn(1).item() for _ in range(48)]
    assert base.reshape(-1).tolist() == ones


# ---- generator state in PyTorch's layout, torch.random ----------------------------------------

def test_rng_state_has_pytorchs_layout():
    torch.manual_seed(0)
    st = torch.get_rng_state().numpy()
    assert st.dtype == np.uint8 and st.size == 5056
    assert st[0:8].view(np.uint64)[0] == 0                       # initial seed
    assert st[8:16].view(np.int32).tolist() == [1, 1]           # left, seeded
    assert st[16:24].view(np.uint64)[0] == 0                     # next
    bg = np.random.MT19937(0)
    bg._legacy_seeding(0)
    assert st[24:5016].view(np.uint64).tolist() == bg.state["state"]["key"].tolist()
    assert st[5000:5004].tolist() == [47, 48, 180, 181]          # torch 2.13's bytes
    torch.rand(624)                                              # a whole block used up
    st2 = torch.get_rng_state().numpy()
    assert st2[8:16].view(np.int32).tolist() == [1, 1] and st2[16:24].view(np.uint64)[0] == 624
    torch.manual_seed(0)
    a = torch.randn(1).item()                                    # 4 words, one normal cached
    st = torch.get_rng_state().numpy()
    assert st[8:12].view(np.int32)[0] == 621 and st[16:24].view(np.uint64)[0] == 4
    assert st[5040:5044].view(np.int32)[0] == 1
    cached = st[5024:5032].view(np.float64)[0]
    assert torch.randn(1, dtype=torch.float64).item() == cached
    torch.set_rng_state(torch.from_numpy(st.copy()))
    assert torch.randn(1, dtype=torch.float64).item() == cached
    assert a == 1.5409960746765137


def test_rng_state_round_trip_and_errors():
    torch.manual_seed(123)
    torch.rand(700)
    st = torch.get_rng_state()
    a = torch.rand(900).tolist()
    torch.manual_seed(5)
    torch.set_rng_state(st)
    assert torch.rand(900).tolist() == a
    assert torch.initial_seed() == 123
    with pytest.raises(RuntimeError, match="CPUGeneratorImplState of size 5056 but found"):
        torch.set_rng_state(torch.zeros(10, dtype=torch.uint8))
    with pytest.raises(TypeError, match="RNG state must be a torch.ByteTensor"):
        torch.set_rng_state(torch.zeros(5056))
    g = torch.Generator().manual_seed(9)
    gs = g.get_state()
    b = torch.rand(3, generator=g).tolist()
    g.set_state(gs)
    assert torch.rand(3, generator=g).tolist() == b


def test_manual_seed_range():
    torch.manual_seed(2 ** 64 - 1)
    assert torch.initial_seed() == 2 ** 64 - 1
    torch.manual_seed(-2 ** 63)
    assert torch.initial_seed() == 2 ** 63
    for bad in (2 ** 64, -2 ** 63 - 1):
        with pytest.raises(ValueError, match="Overflow"):
            torch.manual_seed(bad)
    with pytest.raises(ValueError, match="Overflow"):
        torch.Generator().manual_seed(2 ** 64)


def test_torch_random_module_and_fork_rng():
    assert torch.random.manual_seed is torch.manual_seed
    torch.random.manual_seed(1)
    a = torch.rand(2).tolist()
    torch.manual_seed(1)
    torch.rand(2)
    with torch.random.fork_rng():
        torch.manual_seed(99)
        inside = torch.rand(3).tolist()
    after = torch.rand(2).tolist()
    assert torch.initial_seed() == 1
    torch.manual_seed(1)
    assert torch.rand(2).tolist() == a and torch.rand(2).tolist() == after
    torch.manual_seed(99)
    assert torch.rand(3).tolist() == inside
    torch.manual_seed(1)
    with torch.random.fork_rng(enabled=False):
        torch.rand(2)
    assert torch.rand(2).tolist() == after          # not forked: the draws went on
    assert torch.random.get_rng_state().shape == (5056,)


# ---- nn.init: PyTorch's order of operations ---------------------------------------------------

def test_kaiming_uniform_bound_is_sqrt3_times_std():
    # bound = sqrt(3) * (gain / sqrt(fan)), in that order; (sqrt(3) * gain) / sqrt(fan) differs
    # in the last bit for some fans, which a float64 tensor shows
    w = torch.empty(40, 30, dtype=torch.float64)
    torch.manual_seed(0)
    torch.nn.init.kaiming_uniform_(w, a=0.1, mode="fan_in", nonlinearity="leaky_relu")
    gain = math.sqrt(2.0 / (1 + 0.1 ** 2))
    bound = math.sqrt(3.0) * (gain / math.sqrt(30))
    want = [float(Fraction(u) * Fraction(2 * bound) - Fraction(bound))
            for u in _u64(0, 1200)]
    assert w.reshape(-1).tolist() == want


def test_zero_element_init_warns():
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        torch.nn.init.kaiming_uniform_(torch.empty(0, 3))
    assert any("zero-element" in str(r.message) for r in rec)


def test_against_torch_when_installed():
    T = pytest.importorskip("torch", reason="optional cross-check against PyTorch")
    for fn in (lambda L: L.randn(100), lambda L: L.randn(37, dtype=L.float64),
               lambda L: L.empty(50, dtype=L.float64).uniform_(0.1, 0.7),
               lambda L: L.empty(9, 7).t().normal_(0.2, 0.3),
               lambda L: L.randint(0, 2 ** 29, (5,)),
               lambda L: L.bernoulli(L.full((20,), 0.3, dtype=L.float64)),
               lambda L: L.empty(30, dtype=L.float64).log_normal_(0.3, 0.7),
               lambda L: L.empty(30, dtype=L.float64).cauchy_(0.3, 0.7)):
        T.manual_seed(0)
        want = fn(T).numpy()
        torch.manual_seed(0)
        assert np.array_equal(fn(torch).numpy(), want)
    T.manual_seed(0)
    T.rand(10)
    torch.set_rng_state(torch.from_numpy(T.get_rng_state().numpy()))
    assert np.array_equal(torch.rand(700).numpy(), T.rand(700).numpy())


# ---- torch.utils.data argument checks ---------------------------------------------------------

def test_data_loader_attributes_are_frozen_after_init():
    from framework.utils.data import DataLoader, StackDataset
    dl = DataLoader(list(range(10)), batch_size=4, drop_last=True)
    for attr, val in (("batch_size", 3), ("sampler", None), ("drop_last", False),
                      ("dataset", []), ("batch_sampler", None), ("persistent_workers", True)):
        with pytest.raises(ValueError, match=f"{attr} attribute should not be set after "
                                             "DataLoader is initialized"):
            setattr(dl, attr, val)
    assert len(dl) == 2 and [b.tolist() for b in dl] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    dl.collate_fn = lambda b: sum(b)        # other attributes stay settable
    assert list(dl) == [6, 22]
    with pytest.raises(ValueError, match="multiprocessing_context can only be used with "
                                         "multi-process loading .*num_workers=0"):
        DataLoader([1], multiprocessing_context="spawn")
    with pytest.raises(ValueError, match="At least one dataset should be passed"):
        StackDataset()
