"""Automatic mixed precision: torch.autocast's op policy per device type (cpu -> bfloat16,
cuda/interpret -> float16), its API, compile() guards, and GradScaler. Expected dtypes follow
torch 2.13's autocast (cpu values checked against torch's cpu autocast); the GradScaler loop's
numbers were printed by torch 2.13."""
import threading
import warnings

import ml_dtypes
import numpy as np
import pytest

import framework as torch
import framework.nn.functional as F
from framework import nn
from framework.amp import autocast_mode

bf16, f16, f32 = torch.bfloat16, torch.float16, torch.float32


def arr(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def interp_ok():
    from runtime import backends
    return backends.interpret_available()


# ---- which dtype each op runs in --------------------------------------------------------------

def _dtypes(dev, ac_dev):
    x = torch.tensor(arr(4, 4)).to(dev)
    y = torch.tensor(arr(4, 4, seed=1)).to(dev)
    t = torch.tensor([0, 1, 2, 3]).to(dev)
    with torch.autocast(ac_dev):
        return {
            "matmul": (x @ y).dtype, "mm": torch.mm(x, y).dtype,
            "linear": F.linear(x, y, y[0]).dtype,
            "bmm": torch.bmm(x[None], y[None]).dtype, "addmm": torch.addmm(x, x, y).dtype,
            "conv2d": F.conv2d(x.reshape(1, 1, 4, 4), y.reshape(1, 1, 4, 4)[..., :2, :2]).dtype,
            "sdpa": F.scaled_dot_product_attention(x[None], y[None], y[None]).dtype,
            "softmax": F.softmax(x, -1).dtype, "log_softmax": F.log_softmax(x, -1).dtype,
            "exp": x.exp().dtype, "sum": x.sum().dtype,
            "cross_entropy": F.cross_entropy(x, t).dtype,
            "mse_loss": F.mse_loss(x, y).dtype, "layer_norm": F.layer_norm(x, (4,)).dtype,
            "relu": F.relu(x).dtype, "add": (x + y).dtype, "mv": torch.mv(x, y[0]).dtype,
            "cat_mixed": torch.cat([x.to(ac_low(ac_dev)), y]).dtype,
            "cat_low": torch.cat([x.to(ac_low(ac_dev)), y.to(ac_low(ac_dev))]).dtype,
            "mm_f64": (x.double() @ y.double()).dtype,
            "low_softmax": F.softmax(x.to(ac_low(ac_dev)), -1).dtype,
            "low_exp": x.to(ac_low(ac_dev)).exp().dtype,
            "low_mse": F.mse_loss(x.to(ac_low(ac_dev)), y.to(ac_low(ac_dev))).dtype,
        }


def ac_low(ac_dev):
    return bf16 if ac_dev == "cpu" else f16


def test_cpu_op_dtypes():
    d = _dtypes("cpu", "cpu")
    for op in ("matmul", "mm", "linear", "bmm", "addmm", "conv2d", "sdpa"):
        assert d[op] is bf16, op
    # cpu's float32 list has the losses; softmax/exp/sum keep their input's dtype on cpu
    for op in ("softmax", "log_softmax", "exp", "sum", "cross_entropy", "mse_loss", "layer_norm",
               "relu", "add", "mv", "cat_mixed", "low_mse"):
        assert d[op] is f32, op
    assert d["mm_f64"] is torch.float64          # float64 is never autocast
    assert d["cat_low"] is bf16 and d["low_softmax"] is bf16 and d["low_exp"] is bf16


@pytest.mark.skipif(not interp_ok(), reason="Triton interpreter not available")
def test_cuda_op_dtypes_on_interpret_device():
    d = _dtypes("interpret", "interpret")
    for op in ("matmul", "mm", "linear", "bmm", "addmm", "conv2d", "sdpa", "mv"):
        assert d[op] is f16, op
    for op in ("softmax", "log_softmax", "exp", "sum", "cross_entropy", "mse_loss", "layer_norm",
               "low_softmax", "low_exp", "low_mse", "add", "relu", "cat_mixed"):
        assert d[op] is f32, op
    assert d["cat_low"] is f16 and d["mm_f64"] is torch.float64


@pytest.mark.skipif(not interp_ok(), reason="Triton interpreter not available")
def test_cuda_banned_binary_cross_entropy():
    p = torch.rand(4).to("interpret")
    with torch.autocast("interpret"):
        with pytest.raises(RuntimeError, match="unsafe to autocast"):
            F.binary_cross_entropy(p, p)
    with torch.autocast("cpu"):                   # on cpu it runs in float32
        assert F.binary_cross_entropy(p.cpu(), p.cpu()).dtype is f32


def _round(a, dt):
    return a.astype(dt).astype(np.float32)


def test_linear_values_match_low_precision_reference():
    x, w, b = arr(5, 8), arr(3, 8, seed=1), arr(3, seed=2)
    with torch.autocast("cpu"):
        y = F.linear(torch.tensor(x), torch.tensor(w), torch.tensor(b))
    bf = ml_dtypes.bfloat16
    ref = _round(_round(x, bf) @ _round(w, bf).T, bf) + _round(b, bf)
    got = y.float().numpy()
    np.testing.assert_allclose(got, _round(ref, bf), rtol=1e-2, atol=1e-2)
    # and it really ran in bf16: the float32 answer differs by more than rounding noise allows
    assert np.abs(got - (x @ w.T + b)).max() > 1e-4


@pytest.mark.skipif(not interp_ok(), reason="Triton interpreter not available")
def test_fp16_matmul_values_on_interpret_device():
    a, b = arr(4, 8), arr(8, 3, seed=1)
    with torch.autocast("interpret"):
        y = torch.tensor(a).to("interpret") @ torch.tensor(b).to("interpret")
    assert y.dtype is f16
    ref = _round(a, np.float16) @ _round(b, np.float16)
    np.testing.assert_allclose(y.cpu().float().numpy(), ref, rtol=2e-3, atol=2e-3)


# ---- gradients ----------------------------------------------------------------------------------

def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def test_gradients_reach_float32_parameters():
    m = _mlp()
    x = torch.tensor(arr(6, 8))
    with torch.autocast("cpu"):
        out = m(x)
        assert out.dtype is bf16
    out.float().sum().backward()
    for p in m.parameters():
        assert p.dtype is f32 and p.grad is not None and p.grad.dtype is f32
    # the gradient is the float32 one up to bf16 rounding
    m2 = _mlp()
    m2(x).sum().backward()
    for p, q in zip(m.parameters(), m2.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=5e-2, atol=5e-2)


def test_weight_cast_is_cached_within_autocast():
    w = torch.randn(4, 4, requires_grad=True)
    x = torch.randn(2, 4)
    with torch.autocast("cpu"):
        y = (x @ w) + (x @ w)
    # one cast node feeds both products (torch's cast cache), gradient still exact sum
    y.float().sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * np.repeat(
        x.numpy().astype(ml_dtypes.bfloat16).astype(np.float32).sum(0)[:, None], 4, 1),
        rtol=1e-2)
    assert autocast_mode._tls.cache == {}            # dropped on leaving autocast
    with torch.autocast("cpu", cache_enabled=False):
        x @ w
        assert autocast_mode._tls.cache == {}


# ---- API: nesting, decorator, threads, state ----------------------------------------------------

def test_nesting_disabled_and_decorator():
    a = torch.randn(3, 3)
    assert not torch.is_autocast_enabled("cpu")
    with torch.autocast("cpu"):
        assert torch.is_autocast_enabled("cpu") and (a @ a).dtype is bf16
        with torch.autocast("cpu", enabled=False):
            assert not torch.is_autocast_enabled("cpu") and (a @ a).dtype is f32
        with torch.autocast("cpu", dtype=f16):
            assert torch.get_autocast_dtype("cpu") is f16 and (a @ a).dtype is f16
        assert torch.get_autocast_dtype("cpu") is bf16 and (a @ a).dtype is bf16
    assert not torch.is_autocast_enabled("cpu") and (a @ a).dtype is f32

    @torch.autocast("cpu")
    def f(x):
        return x @ x
    assert f(a).dtype is bf16 and (a @ a).dtype is f32
    assert f.__name__ == "f"

    @torch.amp.autocast(device_type="cpu", enabled=False)
    def g(x):
        return x @ x
    with torch.autocast("cpu"):
        assert g(a).dtype is f32


def test_hooks_unbound_outside_autocast():
    # outside autocast the original functions are bound: no per-op cost
    orig = torch.matmul
    with torch.autocast("cpu"):
        assert torch.matmul is not orig and torch.matmul.__wrapped__ is orig
    assert torch.matmul is orig and torch._dispatch.AUTOCAST is None


def test_autocast_state_is_thread_local():
    seen = {}
    a = torch.randn(3, 3)

    def worker():
        seen["enabled"] = torch.is_autocast_enabled("cpu")
        seen["dtype"] = (a @ a).dtype

    with torch.autocast("cpu"):
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert (a @ a).dtype is bf16
    assert seen == {"enabled": False, "dtype": f32}


def test_state_functions():
    assert torch.get_autocast_dtype("cpu") is bf16
    assert torch.get_autocast_dtype("cuda") is f16
    assert torch.get_autocast_dtype("interpret") is f16       # the cuda state
    assert torch.amp.is_autocast_available("cpu") and torch.amp.is_autocast_available("cuda")
    assert not torch.amp.is_autocast_available("mps")
    assert torch.is_autocast_enabled() is False               # legacy form: cuda
    torch.set_autocast_enabled("cpu", True)
    try:
        assert torch.is_autocast_enabled("cpu")
        a = torch.randn(2, 2)
        assert (a @ a).dtype is bf16
    finally:
        torch.set_autocast_enabled("cpu", False)
    assert not torch.is_autocast_enabled("cpu")


def test_bad_arguments():
    with pytest.raises(ValueError, match="device_type"):
        torch.autocast(0)
    with pytest.raises(RuntimeError, match="device type at start of device string: xyz"):
        torch.autocast("xyz")
    with pytest.raises(RuntimeError, match="unsupported autocast device_type 'mps'"):
        torch.autocast("mps")
    with pytest.raises(RuntimeError, match="device type"):
        torch.is_autocast_enabled("xyz")
    with pytest.raises(TypeError, match="must be torch.dtype"):
        torch.autocast("cpu", dtype="bfloat16")
    with pytest.raises(TypeError, match="must be bool"):
        torch.autocast("cpu", enabled="yes")
    with pytest.raises(TypeError, match="requires a callable"):
        torch.autocast("cpu")(3)
    # an unsupported dtype warns and disables, as torch
    with pytest.warns(UserWarning, match="CPU Autocast only supports dtypes of torch.bfloat16, "
                                         "torch.float16"):
        ctx = torch.autocast("cpu", dtype=torch.float64)
    with ctx:
        assert not torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") is torch.float64


def test_deprecated_aliases():
    with pytest.warns(FutureWarning, match=r"torch.cpu.amp.autocast\(args...\)` is deprecated"):
        ctx = torch.cpu.amp.autocast()
    a = torch.randn(2, 2)
    with ctx:
        assert (a @ a).dtype is bf16
    with pytest.warns(FutureWarning, match=r"torch.cuda.amp.autocast\(args...\)` is deprecated"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)     # no CUDA here: disabled
            torch.cuda.amp.autocast()
    with pytest.warns(FutureWarning, match=r"torch.cpu.amp.GradScaler\(args...\)"):
        s = torch.cpu.amp.GradScaler(init_scale=8.0)
    assert s.is_enabled() and s.get_scale() == 8.0
    with pytest.warns(FutureWarning, match=r"torch.cuda.amp.GradScaler\(args...\)"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            torch.cuda.amp.GradScaler()
    # their objects print as torch's do (<torch.cuda.amp.grad_scaler.GradScaler object at ..>)
    assert repr(s).startswith("<framework.cpu.amp.grad_scaler.GradScaler object at ")
    assert torch.cuda.amp.GradScaler.__qualname__ == "GradScaler"
    assert torch.cuda.amp.autocast.__module__ == "framework.cuda.amp.autocast_mode"


# ---- compile ------------------------------------------------------------------------------------

def test_compile_guards_on_autocast_and_matches_eager():
    m = _mlp()
    x = torch.tensor(arr(6, 8))
    cf = torch.compile(m)
    y0 = cf(x)
    assert y0.dtype is f32
    with torch.autocast("cpu"):
        y1 = cf(x)
        eager = m(x)
    assert y1.dtype is bf16 and eager.dtype is bf16
    np.testing.assert_array_equal(y1.detach().float().numpy(), eager.detach().float().numpy())
    r = cf._compiled.recompile_reasons() if hasattr(cf, "_compiled") else cf.recompile_reasons()
    assert any("autocast" in s for s in r), r
    # leaving autocast replays the float32 program, not the bf16 one
    y2 = cf(x)
    assert y2.dtype is f32
    np.testing.assert_allclose(y2.detach().numpy(), y0.detach().numpy(), rtol=1e-6)


def test_compiled_training_under_autocast_gives_float32_grads():
    m = _mlp()
    x = torch.tensor(arr(6, 8))

    def loss_fn(x):
        return m(x).float().pow(2).mean()
    cf = torch.compile(loss_fn)
    with torch.autocast("cpu"):
        loss = cf(x)
    loss.backward()
    g_compiled = [p.grad.numpy().copy() for p in m.parameters()]
    for p in m.parameters():
        assert p.grad.dtype is f32
        p.grad = None
    with torch.autocast("cpu"):
        loss_e = loss_fn(x)
    loss_e.backward()
    np.testing.assert_allclose(loss.item(), loss_e.item(), rtol=1e-5)
    for a, p in zip(g_compiled, m.parameters()):
        np.testing.assert_allclose(a, p.grad.numpy(), rtol=1e-2, atol=1e-3)


# ---- GradScaler ---------------------------------------------------------------------------------

# torch 2.13: the loop in test_grad_scaler_training_loop (init_scale=2**10, growth_interval=2,
# backoff 0.25, SGD lr=0.1, inf injected at step 2, nan at step 4)
TORCH_SCALES = [1024.0, 2048.0, 512.0, 512.0, 128.0, 128.0]
TORCH_PARAMS = [
    [[0.1257299929857254, -0.1321049928665161, 0.6404229998588562],
     [0.08009500056505203, -0.6179580092430115, 0.32644200325012207],
     [1.2504479885101318, 0.845067024230957, -0.6177300214767456],
     [-1.2709230184555054, -0.6300950050354004, 0.03793900087475777]],
    [-2.325031042098999, -0.09199199825525284, -1.3142189979553223, -0.7248679995536804],
    [[-0.5442590117454529, -0.296985000371933, 0.3632490038871765, 1.0347249507904053],
     [-0.12853500247001648, 1.3775670528411865, -0.4744180142879486, 0.3893139958381653]],
    [0.8651890158653259, 0.40224599838256836],
]


def _scaler_setup(device="cpu"):
    rng = np.random.default_rng(0)
    vals = [rng.standard_normal(s).astype(np.float32) for s in ((4, 3), (4,), (2, 4), (2,))]
    X = rng.standard_normal((5, 3)).astype(np.float32)
    Y = rng.standard_normal((5, 2)).astype(np.float32)
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        for p, a in zip(m.parameters(), vals):
            p.copy_(torch.tensor(a))
    m = m.to(device)
    return m, torch.tensor(X).to(device), torch.tensor(Y).to(device)


def _scaler_loop(device, sc_device):
    m, X, Y = _scaler_setup(device)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    sc = torch.amp.GradScaler(sc_device, init_scale=2. ** 10, growth_factor=2.0,
                              backoff_factor=0.25, growth_interval=2)
    scales, stepped = [], []
    for step in range(6):
        opt.zero_grad()
        loss = F.mse_loss(m(X), Y)
        sc.scale(loss).backward()
        if step == 2:
            m[0].weight.grad[0, 0] = float("inf")
        if step == 4:
            m[2].bias.grad[1] = float("nan")
        before = m[2].bias.detach().cpu().numpy().copy()
        sc.step(opt)
        stepped.append(not np.array_equal(before, m[2].bias.detach().cpu().numpy()))
        sc.update()
        scales.append(sc.get_scale())
    return m, sc, scales, stepped


def test_grad_scaler_training_loop():
    m, sc, scales, stepped = _scaler_loop("cpu", "cpu")
    assert scales == TORCH_SCALES
    assert stepped == [True, True, False, True, False, True]
    for p, want in zip(m.parameters(), TORCH_PARAMS):
        np.testing.assert_allclose(p.detach().numpy(), np.array(want), rtol=1e-5, atol=1e-6)
    assert sc.state_dict() == {"scale": 128.0, "growth_factor": 2.0, "backoff_factor": 0.25,
                               "growth_interval": 2, "_growth_tracker": 1}


@pytest.mark.skipif(not interp_ok(), reason="Triton interpreter not available")
def test_grad_scaler_on_interpret_device():
    m, sc, scales, stepped = _scaler_loop("interpret", "interpret")
    assert scales == TORCH_SCALES and stepped == [True, True, False, True, False, True]
    for p, want in zip(m.parameters(), TORCH_PARAMS):
        np.testing.assert_allclose(p.detach().cpu().numpy(), np.array(want), rtol=1e-5, atol=1e-6)


def test_grad_scaler_with_autocast_and_unscale_for_clipping():
    m = _mlp()
    x, y = torch.tensor(arr(6, 8)), torch.tensor(arr(6, 4, seed=3))
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    sc = torch.amp.GradScaler("cpu", init_scale=256.0)
    with torch.autocast("cpu"):
        loss = F.mse_loss(m(x), y)
    assert loss.dtype is f32
    scaled = sc.scale(loss)
    assert scaled.dtype is f32
    np.testing.assert_allclose(scaled.item(), 256.0 * loss.item(), rtol=1e-6)
    scaled.backward()
    ref = [p.grad.numpy() / 256.0 for p in m.parameters()]
    sc.unscale_(opt)
    for p, r in zip(m.parameters(), ref):
        np.testing.assert_allclose(p.grad.numpy(), r, rtol=1e-6)
    with pytest.raises(RuntimeError, match="unscale_\\(\\) has already been called"):
        sc.unscale_(opt)
    nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    sc.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        sc.step(opt)
    with pytest.raises(RuntimeError, match="unscale_\\(\\) is being called after step"):
        sc.unscale_(opt)
    sc.update()
    assert sc.get_scale() == 256.0 and sc._get_growth_tracker() == 1


def test_grad_scaler_scale_nested_and_misc():
    sc = torch.amp.GradScaler("cpu", init_scale=4.0)
    a, b = torch.ones(2), torch.ones(3)
    out = sc.scale([a, (b, a)])
    assert isinstance(out, list) and isinstance(out[1], tuple)
    np.testing.assert_array_equal(out[1][0].numpy(), [4.0] * 3)
    with pytest.raises(ValueError, match="must be a Tensor or an iterable"):
        sc.scale([a, 3])
    sc.update(new_scale=2.0)
    assert sc.get_scale() == 2.0
    sc.update(new_scale=torch.tensor(8.0))
    assert sc.get_scale() == 8.0
    with pytest.raises(AssertionError, match="new_scale should be a float"):
        sc.update(new_scale=torch.tensor([1.0, 2.0]))
    with pytest.raises(AssertionError, match="No inf checks were recorded prior to update"):
        sc.update()
    sc.set_growth_factor(3.0)
    sc.set_backoff_factor(0.1)
    sc.set_growth_interval(7)
    assert (sc.get_growth_factor(), sc.get_backoff_factor(), sc.get_growth_interval()) == \
        (3.0, 0.1, 7)


def test_grad_scaler_errors_and_state_dict_round_trip():
    with pytest.raises(AssertionError, match="growth factor must be > 1.0"):
        torch.amp.GradScaler("cpu", growth_factor=1.0)
    with pytest.raises(AssertionError, match="backoff factor must be < 1.0"):
        torch.amp.GradScaler("cpu", backoff_factor=1.0)
    m, X, Y = _scaler_setup()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    sc = torch.amp.GradScaler("cpu")
    with pytest.raises(AssertionError, match="Attempted step but _scale is None"):
        sc.step(opt)
    with pytest.raises(RuntimeError, match="Closure use is not currently supported"):
        sc.step(opt, closure=lambda: 0)
    _, sc1, _, _ = _scaler_loop("cpu", "cpu")
    sd = sc1.state_dict()
    sc2 = torch.amp.GradScaler("cpu")
    sc2.load_state_dict(sd)
    assert sc2.state_dict() == sd and sc2.get_scale() == 128.0
    with pytest.raises(RuntimeError, match="source state dict is empty"):
        sc2.load_state_dict({})
    # fp16 gradients are refused by unscale_, as torch
    p = nn.Parameter(torch.ones(2, dtype=f16))
    p.grad = torch.ones(2, dtype=f16)
    o = torch.optim.SGD([p], lr=0.1)
    sc3 = torch.amp.GradScaler("cpu")
    sc3.scale(torch.ones(1))
    with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients"):
        sc3.unscale_(o)


def test_grad_scaler_disabled_is_pass_through():
    sc = torch.amp.GradScaler("cpu", enabled=False)
    t = torch.ones(2)
    assert sc.scale(t) is t and sc.get_scale() == 1.0 and sc.state_dict() == {}
    m, X, Y = _scaler_setup()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    F.mse_loss(m(X), Y).backward()
    w = m[2].bias.detach().numpy().copy()
    sc.step(opt)
    sc.update()
    sc.unscale_(opt)
    assert not np.array_equal(w, m[2].bias.detach().numpy())
    # cuda without a GPU (and without KILN_DEVICE=interpret): torch's warning, then disabled
    from framework import cuda
    if not cuda.is_available():
        with pytest.warns(UserWarning, match="CUDA is not available.  Disabling"):
            assert not torch.amp.GradScaler("cuda").is_enabled()
