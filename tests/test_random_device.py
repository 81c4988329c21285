"""Random numbers on devices: Philox4x32-10 fill kernels (compiler/codegen/triton_random.py)
and per-device generators (framework/_device_random.py).

The NumPy twin of the kernels is checked against Random123's published known-answer vectors
and for its distributions; the kernels are checked bit for bit against the twin in Triton's
interpreter (a child process, torch blocked) and compiled to PTX for sm_90; the generators for
PyTorch's seeding semantics on the interpret device, and dropout for compiled == eager there.
"""
import json
import math
import os

import numpy as np
import pytest

from tests._interp import run_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------------ the NumPy twin

def test_philox_matches_random123_known_answers():
    from compiler.codegen.triton_random import philox_numpy
    # Random123 kat_vectors, philox4x32 10 rounds: counter words, key words -> output words
    kats = [((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
            ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
            ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
             (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]
    for (c0, c1, c2, c3), (k0, k1), want in kats:
        got = philox_numpy(k0 | k1 << 32, np.array([c0 | c1 << 32], np.uint64), c2, c3)
        assert tuple(int(w[0]) for w in got) == want


def _draw(kind, n, dtype, params, seed=1234, offset=0):
    from compiler.codegen.triton_random import draw_numpy
    return draw_numpy(kind, (n,), dtype, seed, offset, params)


def test_distributions_have_their_moments():
    from runtime import dtypes as dt
    n = 400_000
    se = 5 / math.sqrt(n)                     # five standard errors (unit variance)
    u = _draw("uniform", n, dt.float32, (0.0, 1.0)).astype(np.float64)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < se * math.sqrt(1 / 12) and abs(u.var() - 1 / 12) < 0.002
    u2 = _draw("uniform", n, dt.float64, (-2.0, 6.0))
    assert u2.min() >= -2 and u2.max() < 4 and abs(u2.mean() - 1) < se * 6 / math.sqrt(12)
    # float64 draws carry 53 random bits, not float32's 24
    frac = (u2 + 2) / 6 * 2 ** 24
    assert np.mean(frac != np.floor(frac)) > 0.99
    z = _draw("normal", n, dt.float32, (0.0, 1.0)).astype(np.float64)
    assert abs(z.mean()) < se and abs(z.var() - 1) < 0.01
    assert abs(np.mean(np.abs(z) < 1) - 0.6826894921) < 0.005           # the normal's mass
    z64 = _draw("normal", n, dt.float64, (3.0, 0.5))
    assert abs(z64.mean() - 3) < se * 0.5 and abs(z64.std() - 0.5) < 0.005
    b = _draw("bernoulli", n, dt.float32, (0.3,))
    assert set(np.unique(b)) <= {0.0, 1.0} and abs(b.mean() - 0.3) < se * math.sqrt(0.21)
    assert _draw("bernoulli", 1000, dt.float32, (0.0,)).sum() == 0
    assert _draw("bernoulli", 1000, dt.float32, (1.0,)).sum() == 1000
    e = _draw("exponential", n, dt.float64, (2.0,))
    assert e.min() >= 0 and abs(e.mean() - 0.5) < se * 0.5
    k = _draw("integers", n, dt.int64, (-3, 7))                        # [-3, 4)
    counts = np.bincount(k + 3, minlength=7)
    assert k.min() == -3 and k.max() == 3 and len(counts) == 7
    chi2 = ((counts - n / 7) ** 2 / (n / 7)).sum()
    assert chi2 < 30, chi2                                             # 6 dof: p < 1e-4


def test_a_draw_is_a_function_of_the_counter():
    from runtime import dtypes as dt
    whole = _draw("uniform", 16, dt.float32, (0.0, 1.0), offset=100)
    a = _draw("uniform", 9, dt.float32, (0.0, 1.0), offset=100)
    b = _draw("uniform", 7, dt.float32, (0.0, 1.0), offset=109)
    np.testing.assert_array_equal(np.concatenate([a, b]), whole)
    other = _draw("uniform", 16, dt.float32, (0.0, 1.0), seed=1235, offset=100)
    assert not np.array_equal(other, whole)


def test_bernoulli_threshold_is_the_float32_comparison():
    from compiler.codegen.triton_random import bernoulli_threshold
    for p in (0.0, 1e-9, 0.25, 0.3, 0.5, 0.7, 1 - 1e-9, 1.0):
        t = bernoulli_threshold(p)
        ks = np.arange(max(0, t - 3), min(2 ** 24, t + 3))
        u = ks * 2.0 ** -24
        assert np.array_equal(ks < t, u < p), p


def test_kernels_compile_to_ptx_for_sm90():
    pytest.importorskip("triton", reason="the Triton wheel (with ptxas) compiles the kernels")
    from compiler import aot
    from compiler.codegen import triton_random
    from runtime import dtypes as dt
    for kind, d in [("uniform", dt.float32), ("uniform", dt.float64), ("normal", dt.float16),
                    ("bernoulli", dt.bool_), ("bernoulli", dt.float32), ("integers", dt.int64),
                    ("exponential", dt.bfloat16)]:
        a = aot.compile_kernel(triton_random.kernel(kind, d), arch=90)
        assert ".target sm_90" in a.ptx and "mul.hi.u32" in a.ptx, kind   # Philox's rounds
        assert a.cubin


def test_kernel_refuses_what_it_cannot_draw():
    from compiler.codegen import triton_random
    from compiler.codegen.triton_pointwise import TritonCodegenError
    from runtime import dtypes as dt
    with pytest.raises(TritonCodegenError, match="floating dtype"):
        triton_random.kernel("normal", dt.int32)
    with pytest.raises(TritonCodegenError, match="unknown draw kind"):
        triton_random.kernel("gamma", dt.float32)


# ------------------------------------------------------------------------ the interpreter

_WORKER = r"""
import json, sys
sys.path.insert(0, %(root)r)
from tests._interp import become_interpreter_worker
become_interpreter_worker(%(root)r)
import numpy as np
import framework as torch
from framework import _device_ops as D
from compiler.codegen import triton_random as R
from runtime import dtypes as dt
from runtime.interpret import HostTensor
out = {}

# 1. every kernel equals the NumPy twin
exact = {}
for kind, d, params in [("uniform", dt.float32, (0.0, 1.0)), ("uniform", dt.float64, (-0.1, 0.2)),
                        ("uniform", dt.float16, (1.0, 2.0)), ("normal", dt.float32, (1.0, 2.0)),
                        ("normal", dt.float64, (0.0, 1.0)), ("bernoulli", dt.float32, (0.3,)),
                        ("bernoulli", dt.bool_, (0.5,)), ("exponential", dt.float32, (2.0,)),
                        ("integers", dt.int64, (-5, 11)), ("integers", dt.int32, (0, 2 ** 40))]:
    seed, offset = 2 ** 63 + 12345, 77
    a = np.empty(777, d.np)
    R.kernel(kind, d).draw(HostTensor(a, d), 777, seed, offset, params, True)
    ref = R.draw_numpy(kind, (777,), d, seed, offset, params)
    if kind in ("normal", "exponential"):
        ok = bool(np.allclose(a.astype(np.float64), ref.astype(np.float64), rtol=1e-6, atol=1e-6))
    else:
        ok = bool(np.array_equal(a, ref))
    exact[f"{kind}/{d}"] = ok
out["exact"] = exact

# 2. generators: seeding, offsets, state, errors
torch.manual_seed(3)
x = torch.rand(5, device="interpret")
torch.manual_seed(3)
y = torch.rand(5, device="interpret")
z = torch.rand(5, device="interpret")
out["reseed_same"] = bool(np.array_equal(x.cpu().numpy(), y.cpu().numpy()))
out["next_differs"] = not np.array_equal(y.cpu().numpy(), z.cpu().numpy())
g = torch.cuda.default_generators[0]              # KILN_DEVICE=interpret: cuda is the interpreter
out["default_gen_device"] = str(g.device)
torch.manual_seed(3)
both = torch.rand(10, device="interpret").cpu().numpy()
out["split_equals_whole"] = bool(np.array_equal(np.concatenate([y.cpu().numpy(), z.cpu().numpy()]), both))
out["twin"] = bool(np.array_equal(both, R.draw_numpy("uniform", (10,), dt.float32, 3, 0, (0.0, 1.0))))
st = torch.cuda.get_rng_state()
a1 = torch.randn(4, 3, device="cuda").cpu().numpy()
torch.cuda.set_rng_state(st)
a2 = torch.randn(4, 3, device="cuda").cpu().numpy()
out["state_roundtrip"] = bool(np.array_equal(a1, a2)) and st.numel() == 16
torch.cuda.manual_seed(11)
c1 = torch.rand(3, device="cuda").cpu().numpy()
cpu_before = torch.get_rng_state()
torch.cuda.manual_seed(11)
c2 = torch.rand(3, device="cuda").cpu().numpy()
out["cuda_seed"] = bool(np.array_equal(c1, c2)) and torch.cuda.initial_seed() == 11
out["cuda_seed_leaves_cpu"] = bool(np.array_equal(cpu_before.numpy(), torch.get_rng_state().numpy()))
gi = torch.Generator("interpret").manual_seed(5)
out["gen_arg"] = bool(np.array_equal(torch.rand(4, device="interpret", generator=gi).cpu().numpy(),
                                     R.draw_numpy("uniform", (4,), dt.float32, 5, 0, (0.0, 1.0))))
errs = []
for f in (lambda: torch.rand(3, device="interpret", generator=torch.Generator()),
          lambda: torch.rand(3, generator=torch.Generator("interpret"))):
    try:
        f()
        errs.append(None)
    except RuntimeError as e:
        errs.append(str(e))
out["gen_errors"] = errs
try:
    torch.rand(3, dtype=torch.int32, device="interpret")
    out["int_rand"] = None
except NotImplementedError as e:
    out["int_rand"] = type(e).__name__

# 3. the fills: in place, views, dtypes, requires_grad
torch.manual_seed(0)
w = torch.zeros(6, 4, device="interpret")
v = w[:, 1]                                       # a strided view: only its column changes
v.uniform_(-1, 1)
wn = w.cpu().numpy()
out["view_fill"] = bool(np.all(wn[:, [0, 2, 3]] == 0) and np.all(np.abs(wn[:, 1]) <= 1)
                        and np.all(wn[:, 1] != 0))
m = torch.empty(1000, device="interpret").bernoulli_(0.8)
out["bern_mean"] = float(m.cpu().numpy().mean())
bt = torch.full((4000,), 0.25, device="interpret")
out["bern_tensor_mean"] = float(torch.bernoulli(bt).cpu().numpy().mean())
ri = torch.randint(3, 9, (2000,), device="interpret").cpu().numpy()
out["randint"] = [int(ri.min()), int(ri.max()), str(ri.dtype)]
r16 = torch.randn(100, dtype=torch.float16, device="interpret", requires_grad=True)
out["randn16"] = [str(r16.dtype), r16.requires_grad, r16.device.type]
lin = torch.nn.Linear(300, 200).to("interpret")
torch.nn.init.kaiming_uniform_(lin.weight, a=5 ** 0.5)
bound = 1 / 300 ** 0.5
lw = lin.weight.detach().cpu().numpy()
out["init"] = [float(np.abs(lw).max()) <= bound, float(lw.std()), bound / 3 ** 0.5]
nm = torch.normal(torch.zeros(3000, device="interpret"), torch.full((3000,), 2.0, device="interpret"))
out["normal_tensors"] = [nm.device.type, float(nm.cpu().numpy().std())]
ex = torch.empty(5000, device="interpret").exponential_(4.0).cpu().numpy()
out["exp_mean"] = float(ex.mean())
o = torch.empty(2, device="interpret")
same = torch.rand(5, out=o) is o                  # out= resized: new storage on out's device
out["out_resize"] = [same, o.device.type, type(o._data).__name__, list(o.shape)]
pm = torch.randperm(50, device="interpret")
pmg = torch.randperm(50, device="interpret", generator=torch.Generator("interpret").manual_seed(2))
keys = R.draw_numpy("uniform", (50,), dt.float64, 2, 0, (0.0, 1.0))
mn = torch.multinomial(torch.tensor([0.0, 1.0, 3.0], device="interpret"), 2)
ps = torch.poisson(torch.full((400,), 3.0, device="interpret"))
out["host_samplers"] = [pm.device.type, sorted(pm.cpu().numpy().tolist()) == list(range(50)),
                        pmg.cpu().numpy().tolist() == np.argsort(keys, kind="stable").tolist(),
                        mn.device.type, sorted(mn.cpu().numpy().tolist()) == [1, 2],
                        ps.device.type, abs(float(ps.cpu().numpy().mean()) - 3.0) < 0.4]

# 4. dropout: masks from the device stream; a compiled step equals eager under the same seed
def make():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                              torch.nn.Linear(16, 3)).to("interpret")
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    def step(x, y):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss
    return net, step
rng = np.random.default_rng(0)
xs = [torch.tensor(rng.standard_normal((4, 8)).astype(np.float32)).to("interpret") for _ in range(4)]
ys = [torch.tensor(rng.integers(0, 3, 4)).to("interpret") for _ in range(4)]
n0 = D.STATS["kernel", "philox_bernoulli_fp32"]
net_e, step_e = make()
le = [float(step_e(x, y).item()) for x, y in zip(xs, ys)]
net_c, step_c = make()
cs = torch.compile(step_c)
lc = [float(cs(x, y).item()) for x, y in zip(xs, ys)]
out["dropout_losses"] = [le, lc]
out["dropout_params_equal"] = all(
    bool(np.allclose(a.detach().cpu().numpy(), b.detach().cpu().numpy(), rtol=1e-5, atol=1e-6))
    for a, b in zip(net_e.parameters(), net_c.parameters()))
out["dropout_kernel_runs"] = D.STATS["kernel", "philox_bernoulli_fp32"] - n0
out["program_draws"] = sorted(name for p in cs.programs() for name in getattr(p, "kernels", {})
                              if name.startswith("philox"))
gens = torch.cuda.default_generators[0]
out["offset_after"] = gens._offset
out["fallbacks"] = sorted(k[1] for k in D.STATS if k[0] == "fallback" and k[1].startswith("philox"))
out["torch_blocked"] = "torch" not in sys.modules
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def worker():
    pytest.importorskip("triton", reason="the interpreter path needs Triton installed")
    code = ("import os; os.environ['KILN_DEVICE'] = 'interpret'\n"
            + _WORKER % {"root": ROOT})
    return json.loads(run_script(code, ROOT, timeout=600)[-1])


def test_kernels_equal_the_numpy_twin_in_the_interpreter(worker):
    assert worker["exact"] and all(worker["exact"].values()), worker["exact"]
    assert worker["torch_blocked"]


def test_generators_seed_and_advance_like_pytorchs(worker):
    assert worker["reseed_same"] and worker["next_differs"]
    assert worker["split_equals_whole"] and worker["twin"]
    assert worker["default_gen_device"] == "interpret"
    assert worker["state_roundtrip"]
    assert worker["cuda_seed"] and worker["cuda_seed_leaves_cpu"]
    assert worker["gen_arg"]
    e_dev, e_cpu = worker["gen_errors"]
    assert e_dev == "Expected a 'interpret' device type for generator but found 'cpu'"
    assert e_cpu == "Expected a 'cpu' device type for generator but found 'interpret'"
    assert worker["int_rand"] == "NotImplementedError"


def test_fills_write_the_tensors_own_storage(worker):
    assert worker["view_fill"]
    assert abs(worker["bern_mean"] - 0.8) < 0.07
    assert abs(worker["bern_tensor_mean"] - 0.25) < 0.04
    assert worker["randint"] == [3, 8, "int64"]
    assert worker["randn16"] == ["torch.float16", True, "interpret"]
    ok, std, want = worker["init"]
    assert ok and abs(std - want) < 0.05 * want
    dev, std = worker["normal_tensors"]
    assert dev == "interpret" and abs(std - 2.0) < 0.15
    assert abs(worker["exp_mean"] - 0.25) < 0.03
    assert worker["out_resize"] == [True, "interpret", "InterpretArray", [5]]
    # randperm orders device-drawn keys; multinomial and poisson sample on the host and
    # return on the input's device
    assert worker["host_samplers"] == ["interpret", True, True, "interpret", True, "interpret",
                                       True]
    assert worker["fallbacks"] == []              # every draw ran the Philox kernels


def test_compiled_dropout_step_equals_eager_on_the_device(worker):
    le, lc = worker["dropout_losses"]
    np.testing.assert_allclose(lc, le, rtol=1e-5)
    assert worker["dropout_params_equal"]
    # eager steps draw with the fill kernel; the compiled program draws inside itself (a
    # philox group whose [seed, offset] is a program input), advancing the same generator
    assert worker["dropout_kernel_runs"] == 4
    assert worker["program_draws"] and all(k.startswith("philox_") for k in
                                           worker["program_draws"])
    assert worker["offset_after"] == 4 * 64       # 4 steps, a (4, 16) mask each


def test_without_an_interpretable_triton_the_twin_draws_the_same_numbers():
    pytest.importorskip("triton", reason="the fallback is the interpret device's without Triton's library")
    code = ("import sys, json; sys.path.insert(0, %r)\n"
            "import triton\n"                    # imported first: no TRITON_INTERPRET
            "import numpy as np, framework as torch\n"
            "from framework import _device_ops as D\n"
            "from compiler.codegen import triton_random as R\n"
            "from runtime import dtypes as dt\n"
            "torch.manual_seed(9)\n"
            "x = torch.rand(50, device='interpret').cpu().numpy()\n"
            "ref = R.draw_numpy('uniform', (50,), dt.float32, 9, 0, (0.0, 1.0))\n"
            "print(json.dumps([bool(np.array_equal(x, ref)), D.STATS['fallback', 'philox_uniform']]))\n"
            % ROOT)
    same, fallbacks = json.loads(run_script(code, ROOT)[-1])
    assert same and fallbacks == 1


# ------------------------------------------------------------------------ compiled draws

def test_philox_primitive_is_the_twin_and_checks_its_state():
    from compiler.ir.registry import REGISTRY, AVal
    from compiler.codegen.triton_random import draw_numpy
    from runtime import dtypes as dt
    p = REGISTRY["philox"]
    state = np.array([-7, 300], np.int64)            # a seed >= 2**63 travels as negative
    meta = p.meta(AVal((2,), dt.int64), kind="normal", shape=(3, 4), dtype=dt.float64,
                  params=(1.0, 2.0))
    assert meta.shape == (3, 4) and meta.dtype is dt.float64
    got = p.numpy(meta, state, kind="normal", shape=(3, 4), dtype=dt.float64, params=(1.0, 2.0))
    np.testing.assert_array_equal(got, draw_numpy("normal", (3, 4), dt.float64, 2 ** 64 - 7,
                                                  300, (1.0, 2.0)))
    with pytest.raises(RuntimeError, match=r"philox: state must be an int64 \[seed, offset\] "
                                           r"vector, got torch.int32 of shape \[2\]"):
        p.meta(AVal((2,), dt.int32), kind="uniform", shape=(3,), dtype=dt.float32,
               params=(0.0, 1.0))
    with pytest.raises(RuntimeError, match="unknown draw kind 'gamma'"):
        p.meta(AVal((2,), dt.int64), kind="gamma", shape=(3,), dtype=dt.float32, params=())
    assert not p.differentiable


def test_program_draw_kernel_compiles_to_ptx_for_sm90():
    pytest.importorskip("triton", reason="the Triton wheel (with ptxas) compiles the kernel")
    from compiler import aot
    from compiler.codegen.triton_group import generate
    from compiler.fusion import partition
    from compiler.ir.graph import Graph
    from runtime import dtypes as dt
    g = Graph("drop")
    st = g.add_input("state", (2,), dt.int64)
    x = g.add_input("x", (64, 32), dt.float16)
    m = g.call("philox", st, kind="bernoulli", shape=(64, 32), dtype=dt.float16, params=(0.9,))
    g.set_outputs([g.call("mul", x, m)])
    groups = [gr for gr in partition(g).groups if [n.op for n in gr.nodes] == ["philox"]]
    assert len(groups) == 1                         # the draw is its own group
    k = generate(groups[0], g)
    assert "tl.randint4x(seed, offset + offs)" in k.source
    a = aot.compile_kernel(k, arch=90)
    assert ".target sm_90" in a.ptx and "mul.hi.u32" in a.ptx and a.cubin


def test_cuda_rng_calls_without_a_device():
    # as PyTorch: seeding is a no-op when no device exists; reading a device state is an error
    import framework as torch
    from runtime.device import interpret_selected
    if torch.cuda.is_available() or interpret_selected():
        pytest.skip("a device is available here (this checks the no-device behaviour)")
    torch.cuda.manual_seed(3)
    torch.cuda.manual_seed_all(3)
    torch.cuda.seed()
    assert len(torch.cuda.default_generators) == 0
    # (PyTorch's CPU build: AssertionError "Torch not compiled with CUDA enabled")
    with pytest.raises(AssertionError, match="^Torch not compiled with CUDA enabled: no CUDA GPU"):
        torch.cuda.get_rng_state()
    with pytest.raises(AssertionError, match="^Torch not compiled with CUDA enabled: no CUDA GPU"):
        torch.cuda.initial_seed()
    g = torch.manual_seed(5)                      # the cpu generator is still seeded
    assert g.initial_seed() == 5 and torch.initial_seed() == 5
