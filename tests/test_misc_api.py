"""Small torch APIs: torch.accelerator, the legacy top-level switches, torch.signal.windows,
torch.quasirandom.SobolEngine, nn.utils.convert_conv*d_weight_memory_format, Tensor.resize /
resize_as / as_subclass. References: SciPy, NumPy, hand-derived values."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import framework as torch
from conftest import to_np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- torch.accelerator ----------------------------------------------------------------------

def test_accelerator_follows_cuda_availability():
    A = torch.accelerator
    assert A.is_available() == torch.cuda.is_available()
    if torch.cuda.is_available():
        assert A.current_accelerator() == torch.device("cuda")
        assert A.current_accelerator().type == "cuda"
        assert A.device_count() == torch.cuda.device_count()
        assert A.current_device_index() == torch.cuda.current_device()
    else:
        assert A.current_accelerator() is None
        assert A.current_accelerator(check_available=True) is None
        assert A.device_count() == 0
        for f in (A.current_device_index, A.synchronize, A.empty_cache, A.memory_allocated,
                  A.memory_stats, lambda: A.set_device_index(0)):
            with pytest.raises(RuntimeError, match="none is available"):
                f()
        with pytest.raises(RuntimeError, match="none is available"):
            with A.device_index(0):
                pass
    with A.device_index(None):      # None switches nothing, with or without a device
        pass
    # the tutorials' first line
    dev = A.current_accelerator().type if A.is_available() else "cpu"
    assert dev == ("cuda" if torch.cuda.is_available() else "cpu")


_INTERP_SCRIPT = r"""
import gc
import warnings
import framework as torch
A = torch.accelerator
print(A.is_available(), repr(A.current_accelerator()), A.device_count(),
      A.current_device_index())
A.set_device_index(0); A.synchronize(); A.synchronize("cuda:0"); A.synchronize(0)
with A.device_index(0):
    print("inside", A.current_device_index())
x = torch.ones(3, device=A.current_accelerator()) * 2
A.synchronize(x.device)
gc.collect()        # (the temporary ones(3) can sit in a reference cycle until collected)
print(x.device.type, x.cpu().tolist(), A.memory_allocated(), A.current_stream())
for bad in (lambda: A.set_device_index(1), lambda: A.synchronize("cpu"),
            lambda: A.set_device_index("cuda")):
    try:
        bad()
    except Exception as e:
        print(type(e).__name__)
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    A.set_device_idx(0); A.current_device_idx()
print([c.category.__name__ for c in w])
"""


def test_accelerator_on_interpret_device():
    pytest.importorskip("triton")
    env = dict(os.environ, KILN_DEVICE="interpret", TRITON_INTERPRET="1")
    r = subprocess.run([sys.executable, "-c", _INTERP_SCRIPT], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    assert lines[0] == "True device(type='cuda') 1 0"
    assert lines[1] == "inside 0"
    assert lines[2] == ("interpret [2.0, 2.0, 2.0] 12 "      # x: 3 float32 on the device
                        "<torch.cuda.Stream device=cuda:0 cuda_stream=0x0>")
    assert lines[3:6] == ["RuntimeError", "ValueError", "ValueError"]
    assert lines[6] == "['FutureWarning', 'FutureWarning']"


# ---- legacy top-level switches ----------------------------------------------------------------

def test_grad_scaler_alias_and_is_inference():
    assert torch.GradScaler is torch.amp.GradScaler
    assert torch.is_inference(torch.ones(2)) is False
    with torch.inference_mode():
        t = torch.ones(2)
    assert torch.is_inference(t) is True
    assert torch.is_inference(t[:1]) is True
    with pytest.raises(TypeError, match="is_inference.*must be Tensor, not int"):
        torch.is_inference(3)


def test_set_warn_always_repeats_warn_once_warnings():
    x = torch.tensor(np.sin(np.arange(64.0)))

    def count():
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            torch.stft(x, 16, return_complex=True)     # no window: a warn-once warning
        return sum("window" in str(m.message) for m in w)

    assert torch.is_warn_always_enabled() is False
    count()
    assert count() == 0             # already given once in this process
    try:
        torch.set_warn_always(True)
        assert torch.is_warn_always_enabled() is True
        assert count() == 1 and count() == 1
    finally:
        torch.set_warn_always(False)
    assert count() == 0
    with pytest.raises(RuntimeError, match="expects a bool"):
        torch.set_warn_always(1)
    assert torch.is_warn_always_enabled() is False


def test_set_anomaly_enabled_checks_nan_in_backward():
    a = torch.tensor([0.0], requires_grad=True)
    try:
        torch.set_anomaly_enabled(True)
        assert torch.is_anomaly_enabled() and torch.is_anomaly_check_nan_enabled()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(RuntimeError, match="returned nan values"):
                (a / a).sum().backward()
        torch.set_anomaly_enabled(True, check_nan=False)
        assert torch.is_anomaly_enabled() and not torch.is_anomaly_check_nan_enabled()
        a.grad = None
        (a / a).sum().backward()        # nan gradients pass when check_nan is off
        assert np.isnan(to_np(a.grad)[0])
    finally:
        torch.set_anomaly_enabled(False)
    assert not torch.is_anomaly_enabled()
    with pytest.raises(TypeError, match="'enabled' \\(position 1\\) must be bool, not int"):
        torch.set_anomaly_enabled(1)
    assert not torch.is_anomaly_enabled()


def test_legacy_autocast_cpu_gpu_functions():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert torch.get_autocast_cpu_dtype() is torch.bfloat16
        assert torch.get_autocast_gpu_dtype() is torch.float16
        assert torch.is_autocast_cpu_enabled() is False
    assert [m.category for m in w] == [DeprecationWarning] * 3
    assert "get_autocast_dtype('cpu')" in str(w[0].message)
    a = torch.tensor(np.arange(4.0).reshape(2, 2), dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        _legacy_autocast_round_trip(a)


def _legacy_autocast_round_trip(a):
    try:
        torch.set_autocast_cpu_dtype(torch.float16)
        torch.set_autocast_cpu_enabled(True)
        assert torch.is_autocast_cpu_enabled() and torch.is_autocast_enabled("cpu")
        r = torch.mm(a, a)          # mm autocasts to the cpu autocast dtype
        assert r.dtype is torch.float16
        np.testing.assert_array_equal(to_np(r).astype(np.float64), [[2, 3], [6, 11]])
        torch.set_autocast_gpu_dtype(torch.bfloat16)
        assert torch.get_autocast_dtype("cuda") is torch.bfloat16
    finally:
        torch.set_autocast_cpu_enabled(False)
        torch.set_autocast_cpu_dtype(torch.bfloat16)
        torch.set_autocast_gpu_dtype(torch.float16)
    assert torch.mm(a, a).dtype is torch.float32
    with pytest.raises(TypeError, match="dtype must be a torch.dtype \\(got str\\)"):
        torch.set_autocast_cpu_dtype("float16")
    assert torch.get_autocast_dtype("cpu") is torch.bfloat16


@pytest.mark.filterwarnings("ignore:torch.set_default_tensor_type")
def test_set_default_tensor_type():
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            torch.set_warn_always(True)
            torch.set_default_tensor_type(torch.DoubleTensor)
        assert any("set_default_tensor_type() is deprecated" in str(m.message) for m in w)
        assert torch.get_default_dtype() is torch.float64
        assert torch.tensor([1.5]).dtype is torch.float64
        torch.set_default_tensor_type("torch.HalfTensor")
        assert torch.get_default_dtype() is torch.float16
        torch.set_default_tensor_type("torch.FloatTensor")
        assert torch.get_default_dtype() is torch.float32
        for bad in (torch.LongTensor, "torch.IntTensor"):
            with pytest.raises(TypeError, match="only floating-point types"):
                torch.set_default_tensor_type(bad)
        with pytest.raises(TypeError, match="invalid type object"):
            torch.set_default_tensor_type(torch.float64)
        with pytest.raises(TypeError, match="invalid type"):
            torch.set_default_tensor_type("torch.NoSuchTensor")
        assert torch.get_default_dtype() is torch.float32     # failures changed nothing
    finally:
        torch.set_warn_always(False)
        torch.set_default_dtype(torch.float32)


# ---- torch.signal.windows ------------------------------------------------------------------------

_WINDOWS = [("bartlett", {}, {}), ("blackman", {}, {}), ("cosine", {}, {}),
            ("exponential", {}, {}), ("exponential", {"tau": 2.5}, {"tau": 2.5}),
            ("gaussian", {"std": 1.0}, {"std": 1.0}), ("gaussian", {"std": 3.2}, {"std": 3.2}),
            ("general_cosine", {"a": [0.5, 0.3, 0.2]}, {"a": [0.5, 0.3, 0.2]}),
            ("general_hamming", {"alpha": 0.54}, {"alpha": 0.54}),
            ("general_hamming", {"alpha": 0.6}, {"alpha": 0.6}), ("hamming", {}, {}),
            ("hann", {}, {}), ("kaiser", {}, {"beta": 12.0}), ("kaiser", {"beta": 5.0},
                                                               {"beta": 5.0}),
            ("nuttall", {}, {})]


@pytest.mark.parametrize("name,kw,skw", _WINDOWS)
@pytest.mark.parametrize("sym", [True, False])
def test_windows_match_scipy(name, kw, skw, sym):
    sw = pytest.importorskip("scipy.signal.windows")
    for M in (0, 1, 2, 3, 8, 33):
        ref = getattr(sw, name)(M, sym=sym, **skw)
        w64 = getattr(torch.signal.windows, name)(M, sym=sym, dtype=torch.float64, **kw)
        assert w64.dtype is torch.float64 and tuple(w64.shape) == (M,)
        np.testing.assert_allclose(to_np(w64), ref, rtol=1e-12, atol=1e-13)
        w32 = getattr(torch.signal.windows, name)(M, sym=sym, **kw)
        assert w32.dtype is torch.float32
        np.testing.assert_allclose(to_np(w32), ref, rtol=1e-5, atol=2e-6)


def test_windows_hand_values_and_options():
    W = torch.signal.windows
    # hann(5) = 0.5 - 0.5 cos(2 pi n / 4); periodic: / 5
    np.testing.assert_allclose(to_np(W.hann(5, dtype=torch.float64)), [0, 0.5, 1, 0.5, 0])
    np.testing.assert_allclose(to_np(W.hann(4, sym=False, dtype=torch.float64)),
                               [0, 0.5, 1, 0.5], atol=1e-15)
    np.testing.assert_allclose(to_np(W.bartlett(5, dtype=torch.float64)), [0, .5, 1, .5, 0])
    # exponential with a center (periodic only): exp(-|n - center| / tau)
    np.testing.assert_allclose(to_np(W.exponential(5, center=1.0, tau=2.0, sym=False,
                                                   dtype=torch.float64)),
                               np.exp(-np.abs(np.arange(5) - 1.0) / 2.0))
    w = W.hann(6, requires_grad=True)
    assert w.requires_grad
    w.sum().backward()      # differentiable through its sample points, as in PyTorch


@pytest.mark.parametrize("call,exc,msg", [
    (lambda W: W.hann(-1), ValueError, "non-negative window length, got M=-1"),
    (lambda W: W.hann(4, dtype=torch.float16), ValueError, "expects float32 or float64"),
    (lambda W: W.cosine(4, dtype=torch.int64), ValueError, "cosine expects float32 or float64"),
    (lambda W: W.hann(4, layout=torch.sparse_coo), ValueError, "strided tensors only"),
    (lambda W: W.exponential(4, center=1.0), ValueError, "Center must be None"),
    (lambda W: W.exponential(4, tau=0), ValueError, "Tau must be positive"),
    (lambda W: W.gaussian(4, std=-1), ValueError, "Standard deviation must be positive"),
    (lambda W: W.kaiser(4, beta=-1), ValueError, "beta must be non-negative"),
    (lambda W: W.general_cosine(4, a=[]), ValueError, "Coefficients cannot be empty"),
    (lambda W: W.general_cosine(4, a=3), TypeError, "Coefficients must be a list/tuple"),
])
def test_window_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call(torch.signal.windows)


# ---- torch.quasirandom.SobolEngine -------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:The balance properties")
@pytest.mark.parametrize("dim", [1, 2, 7, 40, 1111])
def test_sobol_unscrambled_matches_scipy(dim):
    qmc = pytest.importorskip("scipy.stats.qmc")
    ref = qmc.Sobol(dim, scramble=False, bits=30).random(300)
    eng = torch.quasirandom.SobolEngine(dim)
    a = eng.draw(1, dtype=torch.float64)
    b = eng.draw(99, dtype=torch.float64)
    eng.fast_forward(100)
    c = eng.draw(100, dtype=torch.float64)
    got = np.concatenate([to_np(a), to_np(b), to_np(c)])
    np.testing.assert_array_equal(got[:100], ref[:100])
    np.testing.assert_array_equal(got[100:], ref[200:300])
    eng.reset()
    np.testing.assert_array_equal(to_np(eng.draw(16, dtype=torch.float64)), ref[:16])
    # float32: the 30-bit integers rounded to float32, then scaled
    f = torch.quasirandom.SobolEngine(dim).draw(50)
    assert f.dtype is torch.float32
    np.testing.assert_array_equal(to_np(f), ref[:50].astype(np.float32))


def test_sobol_hand_values_and_api():
    # dimension 1 is van der Corput's sequence in Gray-code order
    eng = torch.quasirandom.SobolEngine(1)
    np.testing.assert_array_equal(to_np(eng.draw(8, dtype=torch.float64))[:, 0],
                                  [0, .5, .75, .25, .375, .875, .625, .125])
    assert eng.num_generated == 8
    eng = torch.quasirandom.SobolEngine(2)
    eng.fast_forward(2)
    np.testing.assert_array_equal(to_np(eng.draw(2, dtype=torch.float64)),
                                  [[.75, .25], [.25, .75]])
    out = torch.empty(1)
    r = torch.quasirandom.SobolEngine(2).draw(4, out=out)
    assert r is out and tuple(out.shape) == (4, 2)
    np.testing.assert_array_equal(to_np(out), [[0, 0], [.5, .5], [.75, .25], [.25, .75]])
    assert tuple(torch.quasirandom.SobolEngine(3).draw_base2(3).shape) == (8, 3)
    assert repr(torch.quasirandom.SobolEngine(3)) == "SobolEngine(dimension=3)"
    assert repr(torch.quasirandom.SobolEngine(3, scramble=True, seed=7)) == \
        "SobolEngine(dimension=3, scramble=True, seed=7)"
    assert to_np(torch.quasirandom.SobolEngine(5).sobolstate)[0, 0] == 1 << 29


def test_sobol_errors():
    SE = torch.quasirandom.SobolEngine
    for d in (0, 21202):
        with pytest.raises(ValueError, match="range of dimensionality.*\\[1, 21201\\]"):
            SE(d)
    with pytest.raises(ValueError, match="direction numbers for dimensions \\[1, 1111\\]"):
        SE(1112)
    eng = SE(3)
    eng.draw(1)
    with pytest.raises(ValueError, match="power of 2.*n=1\\+2\\*\\*2=5"):
        eng.draw_base2(2)
    assert eng.num_generated == 1       # the failed call drew nothing
    with pytest.raises(NotImplementedError, match="not implemented for 'Half'"):
        SE(2).draw(3, dtype=torch.float16)


def test_sobol_scrambled_is_a_seeded_net():
    m, dim = 8, 6
    a = to_np(torch.quasirandom.SobolEngine(dim, scramble=True, seed=3).draw_base2(m,
                                                                               dtype=torch.float64))
    b = to_np(torch.quasirandom.SobolEngine(dim, scramble=True, seed=3).draw_base2(m,
                                                                               dtype=torch.float64))
    c = to_np(torch.quasirandom.SobolEngine(dim, scramble=True, seed=4).draw_base2(m,
                                                                               dtype=torch.float64))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (a >= 0).all() and (a < 1).all()
    unscrambled = to_np(torch.quasirandom.SobolEngine(dim).draw_base2(m, dtype=torch.float64))
    assert not np.array_equal(a, unscrambled)
    # each coordinate of 2^m points puts one point in each interval [i/2^m, (i+1)/2^m)
    for j in range(dim):
        np.testing.assert_array_equal(np.sort(np.floor(a[:, j] * 2 ** m)), np.arange(2 ** m))
    # and every pair of coordinates is stratified on the 2^(m/2) x 2^(m/2) grid
    k = 2 ** (m // 2)
    for i in range(dim):
        for j in range(i + 1, dim):
            cells = np.floor(a[:, i] * k) * k + np.floor(a[:, j] * k)
            assert np.bincount(cells.astype(int), minlength=k * k).max() <= 2 * (2 ** m) // (k * k)


# ---- nn.utils.convert_conv*d_weight_memory_format -------------------------------------------

def test_convert_conv_weight_memory_format():
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(),
                        nn.Sequential(nn.ConvTranspose2d(4, 2, 2)),
                        nn.Conv3d(2, 3, 2), nn.Linear(3, 3))
    w2, w3 = net[0].weight, net[3].weight
    before2, before3 = to_np(w2).copy(), to_np(w3).copy()
    assert nn.utils.convert_conv2d_weight_memory_format(net, torch.channels_last) is net
    assert net[0].weight is w2 and w2.requires_grad       # the same Parameter, new layout
    assert tuple(w2.stride()) == (27, 1, 9, 3)            # (O, I, H, W) stored as O, H, W, I
    assert tuple(net[2][0].weight.stride()) == (8, 1, 4, 2)
    np.testing.assert_array_equal(to_np(w2), before2)
    assert tuple(w3.stride()) == (16, 8, 4, 2, 1)          # conv3d untouched by the 2d pass
    nn.utils.convert_conv3d_weight_memory_format(net, torch.channels_last_3d)
    assert tuple(w3.stride()) == (16, 1, 8, 4, 2)
    np.testing.assert_array_equal(to_np(w3), before3)
    assert tuple(net[4].weight.stride()) == (3, 1)
    nn.utils.convert_conv2d_weight_memory_format(net, torch.contiguous_format)
    assert tuple(w2.stride()) == (27, 9, 3, 1)
    np.testing.assert_array_equal(to_np(w2), before2)


# ---- Tensor.resize / resize_as / as_subclass ---------------------------------------------------

def test_tensor_resize_and_resize_as():
    x = torch.arange(6.0)
    with pytest.warns(UserWarning, match="non-inplace resize is deprecated"):
        y = x.resize(2, 3)
    np.testing.assert_array_equal(to_np(y), np.arange(6.0).reshape(2, 3))
    assert y._base is x                       # a view, as in PyTorch
    with pytest.warns(UserWarning, match="non-inplace resize_as is deprecated"):
        z = x.resize_as(torch.zeros(3, 2))
    np.testing.assert_array_equal(to_np(z), np.arange(6.0).reshape(3, 2))
    t = torch.arange(6.0).reshape(2, 3).t()
    with pytest.warns(UserWarning):
        np.testing.assert_array_equal(to_np(t.resize(6)), [0, 3, 1, 4, 2, 5])
    w = torch.ones(6, requires_grad=True)
    with pytest.warns(UserWarning):
        (w.resize(2, 3) * torch.tensor([[1.0, 2, 3], [4, 5, 6]])).sum().backward()
    np.testing.assert_array_equal(to_np(w.grad), [1, 2, 3, 4, 5, 6])
    with pytest.warns(UserWarning), pytest.raises(
            RuntimeError, match="requested resize to 4 \\(4 elements in total\\).*size of 6"):
        x.resize(4)
    np.testing.assert_array_equal(to_np(x), np.arange(6.0))


def test_tensor_as_subclass():
    class MyTensor(torch.Tensor):
        pass

    x = torch.tensor([1.0, 2.0])
    s = x.as_subclass(MyTensor)
    assert type(s) is MyTensor and s.data_ptr() == x.data_ptr()
    s[0] = 5.0                                  # shares x's memory
    np.testing.assert_array_equal(to_np(x), [5.0, 2.0])
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    sw = w.as_subclass(MyTensor)
    assert sw.requires_grad and not sw.is_leaf
    (sw * torch.tensor([3.0, 4.0])).sum().backward()
    np.testing.assert_array_equal(to_np(w.grad), [3.0, 4.0])
    with pytest.raises(TypeError, match="does not inherit from Tensor"):
        x.as_subclass(int)


# ---- torch.utils.dlpack / torch.to_dlpack ------------------------------------------------------

def test_dlpack_capsule_round_trip_shares_memory():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    cap = torch.to_dlpack(x)
    assert torch.to_dlpack is torch.utils.dlpack.to_dlpack
    assert torch.from_dlpack is torch.utils.dlpack.from_dlpack
    y = torch.utils.dlpack.from_dlpack(cap)
    assert y.shape == (2, 3) and y.dtype == torch.float32
    y[0, 1] = 20.0                          # the same memory
    assert x[0, 1].item() == 20.0
    with pytest.raises(RuntimeError, match="consumed only once"):
        torch.from_dlpack(cap)
    with pytest.raises(TypeError, match="must be Tensor, not list"):
        torch.to_dlpack([1.0])
    # the legacy capsule form exports tensors that require grad (the protocol does not)
    w = torch.ones(2, requires_grad=True)
    assert torch.from_dlpack(torch.to_dlpack(w)).tolist() == [1.0, 1.0]
    assert np.from_dlpack(torch.arange(4, dtype=torch.int32)).tolist() == [0, 1, 2, 3]
    assert int(torch.utils.dlpack.DLDeviceType.kDLCUDA) == 2


# ---- torch.amp.custom_fwd / custom_bwd -------------------------------------------------------

def _mm_function(**fwd_kw):
    seen = {}

    class MM(torch.autograd.Function):
        @staticmethod
        @torch.amp.custom_fwd(device_type="cpu", **fwd_kw)
        def forward(ctx, a, b):
            seen["fwd_in"] = (a.dtype, b.dtype)
            ctx.save_for_backward(a, b)
            r = a @ b
            seen["fwd_out"] = r.dtype
            return r

        @staticmethod
        @torch.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            seen["bwd_autocast"] = torch.is_autocast_enabled("cpu")
            return g @ b.t(), a.t() @ g
    return MM, seen


def test_custom_fwd_cast_inputs_runs_forward_without_autocast():
    MM, seen = _mm_function(cast_inputs=torch.float32)
    a = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    b = torch.tensor([[1.0], [0.5], [0.25]], dtype=torch.bfloat16, requires_grad=True)
    with torch.autocast("cpu"):
        out = MM.apply(a, b)
    assert seen == {"fwd_in": (torch.float32, torch.float32), "fwd_out": torch.float32}
    assert out.item() == 2.75              # 1 + 1 + 0.75
    out.backward()
    assert seen["bwd_autocast"] is False
    np.testing.assert_array_equal(to_np(a.grad), [[1.0, 0.5, 0.25]])
    assert b.grad.dtype == torch.bfloat16
    np.testing.assert_array_equal(to_np(b.grad.float()), [[1.0], [2.0], [3.0]])
    seen.clear()
    MM.apply(a, torch.ones(3, 1))           # outside autocast: no cast, no change
    assert seen["fwd_out"] == torch.float32


def test_custom_fwd_without_cast_keeps_autocast_in_forward_and_backward():
    MM, seen = _mm_function()
    a = torch.ones(2, 3, requires_grad=True)
    with torch.autocast("cpu"):
        out = MM.apply(a, torch.ones(3, 2, requires_grad=True))
    assert seen["fwd_out"] == torch.bfloat16 and out.dtype == torch.bfloat16
    out.sum().backward()
    assert seen["bwd_autocast"] is True
    with pytest.raises(ValueError, match="Expected `device_type` of type `str`"):
        torch.amp.custom_fwd(device_type=None)
    with pytest.raises(TypeError):
        torch.amp.custom_bwd(lambda ctx, g: g)      # device_type is keyword-only, required


def test_cuda_amp_custom_fwd_is_deprecated():
    with pytest.warns(FutureWarning, match=r"torch.cuda.amp.custom_fwd\(args...\)` is deprecated"):
        dec = torch.cuda.amp.custom_fwd(cast_inputs=torch.float32)
    f = dec(lambda ctx, x: x)
    assert callable(f)
    with pytest.warns(FutureWarning, match=r"torch.amp.custom_bwd\(args..., device_type='cuda'\)"):
        torch.cuda.amp.custom_bwd(lambda ctx, g: g)
    assert not hasattr(torch.cpu.amp, "custom_fwd")


# ---- torch.sym_*, set_flush_denormal, Tensor.const_data_ptr -----------------------------------

def test_sym_helpers_plain_python_semantics():
    assert torch.sym_int(2.7) == 2 and torch.sym_int(-2.7) == -2
    assert type(torch.sym_int(torch.tensor(2.7))) is int and torch.sym_int(torch.tensor(2.7)) == 2
    assert torch.sym_float(3) == 3.0 and type(torch.sym_float(torch.tensor(3))) is float
    assert torch.sym_max(3, 2.5) == 3.0 and type(torch.sym_max(3, 2.5)) is float
    assert torch.sym_max(2, 7) == 7 and type(torch.sym_max(2, 7)) is int
    assert torch.sym_min(3, 2.5) == 2.5 and torch.sym_min(np.int64(4), 9) == 4
    with pytest.raises(AssertionError, match="expected"):
        torch.sym_max(torch.tensor(2), 5)
    assert torch.sym_not(0) is True and torch.sym_not(torch.tensor(True)) is False
    with pytest.raises(RuntimeError, match="ambiguous"):
        torch.sym_not(torch.tensor([True, False]))
    assert torch.sym_sqrt(6.25) == 2.5 and torch.sym_sqrt(torch.tensor(4.0)) == 2.0
    with pytest.raises(ValueError, match="math domain error"):
        torch.sym_sqrt(-1)
    assert torch.sym_sum([1, 2, 3]) == 6 and torch.sym_sum(1, 2.5) == 3.5
    assert torch.sym_sum([]) == 0
    assert torch.sym_sum([torch.tensor(1), torch.tensor(2)]).item() == 3
    assert torch.sym_ite(True, 1, 2) == 1 and torch.sym_ite(False, "a", "b") == "b"
    with pytest.raises(AssertionError, match="expected SymBool or bool"):
        torch.sym_ite(1, 1, 2)
    with pytest.raises(AssertionError, match="type mismatch"):
        torch.sym_ite(True, 1, 2.0)


def test_set_flush_denormal_is_unsupported_and_const_data_ptr():
    assert torch.set_flush_denormal(True) is False and torch.set_flush_denormal(False) is False
    tiny = torch.tensor([1e-40], dtype=torch.float32)       # a float32 denormal stays
    assert tiny.item() != 0.0
    with pytest.raises(RuntimeError, match="expects a bool"):
        torch.set_flush_denormal(1)
    x = torch.arange(6, dtype=torch.float32)
    assert x.const_data_ptr() == x.data_ptr()
    assert x[2:].const_data_ptr() - x.const_data_ptr() == 8


# ---- torch.utils.checkpoint extras -----------------------------------------------------------

def test_checkpoint_helpers():
    from framework.utils import checkpoint as C
    assert issubclass(C.CheckpointError, RuntimeError)
    a = torch.ones(2, requires_grad=True) * 3          # a non-leaf
    b = torch.zeros(2)
    da, db, n = C.detach_variable((a, b, 5))
    assert da.requires_grad and da.is_leaf and da.grad_fn is None and not db.requires_grad
    assert n == 5 and da.data_ptr() == a.data_ptr()
    with pytest.raises(RuntimeError, match="Only tuple of tensors is supported.*list"):
        C.detach_variable([a])
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
        C.check_backward_validity([b, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        C.check_backward_validity([b, a])
    f, r = C.noop_context_fn()
    with f, r:
        pass
    assert C.get_device_states(torch.ones(1), 3, [torch.zeros(2)]) == ([], [])
    C.set_device_states([], [])
    assert C._EARLY_STOP[0] is True and C._DEBUG[0] is None
    with C.set_checkpoint_early_stop(False), C.set_checkpoint_debug_enabled(True):
        assert C._EARLY_STOP[0] is False and C._DEBUG[0] is True
    assert C._EARLY_STOP[0] is True and C._DEBUG[0] is None


def test_checkpoint_context_fn_wraps_forward_and_recompute():
    from framework.utils import checkpoint as C
    events = []

    class Ctx:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            events.append(self.name)

        def __exit__(self, *exc):
            events.append("/" + self.name)

    def fn(x):
        events.append("run")
        return (x * x).sum()

    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    out = C.checkpoint(fn, x, use_reentrant=False,
                       context_fn=lambda: (Ctx("fwd"), Ctx("recompute")))
    assert events == ["fwd", "run", "/fwd"]
    out.backward()
    assert events[3:] == ["recompute", "run", "/recompute"]
    np.testing.assert_array_equal(to_np(x.grad), [2.0, 4.0, 6.0])
    with pytest.raises(ValueError, match="only supported when use_reentrant=False"):
        C.checkpoint(fn, x, use_reentrant=True, context_fn=lambda: (Ctx("a"), Ctx("b")))
    with pytest.raises(ValueError, match="only supported when use_reentrant=False"):
        C.checkpoint(fn, x, use_reentrant=True, debug=True)


def _sac_run(context_fn, fn=None):
    """checkpoint(fn) with context_fn; backward under the profiler: (value, x.grad, w.grad,
    matmul and sin calls during backward)."""
    from framework.utils.checkpoint import checkpoint
    rng = np.random.default_rng(0)
    X, W = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    x, w = torch.tensor(X, requires_grad=True), torch.tensor(W, requires_grad=True)
    fn = fn or (lambda x, w: (torch.sin(torch.mm(x, w)) * 2).sum())
    kw = {} if context_fn is None else {"context_fn": context_fn}
    out = checkpoint(fn, x, w, use_reentrant=False, **kw)
    with torch.profiler.profile() as prof:
        out.backward()
    names = [e.name for e in prof.events()]
    G = 2 * np.cos(X @ W)                        # d out / d (x @ w)
    np.testing.assert_allclose(to_np(x.grad), G @ W.T, rtol=1e-12)
    np.testing.assert_allclose(to_np(w.grad), X.T @ G, rtol=1e-12)
    assert out.item() == pytest.approx(2 * np.sin(X @ W).sum(), rel=1e-12)
    return names.count("kiln::matmul"), names.count("kiln::sin")


def test_selective_checkpoint_saves_listed_ops():
    import functools
    from framework.utils.checkpoint import create_selective_checkpoint_contexts as sac
    from framework.utils.checkpoint import CheckpointPolicy as P
    # plain checkpoint: backward recomputes mm and sin, then mm twice for the gradients
    assert _sac_run(None) == (3, 1)
    # mm saved (by function, or by primitive name): only the two gradient matmuls run
    assert _sac_run(functools.partial(sac, [torch.mm])) == (2, 1)
    assert _sac_run(functools.partial(sac, ["matmul"])) == (2, 1)
    calls = []

    def policy(ctx, op, *args, **kwargs):
        calls.append((ctx.is_recompute, op.name))
        return P.MUST_SAVE if op.name == "sin" else P.PREFER_RECOMPUTE
    assert _sac_run(functools.partial(sac, policy)) == (3, 0)
    assert (False, "sin") in calls and (True, "sin") in calls    # asked in both passes
    with pytest.raises(ValueError, match="Expected op in `op_list`"):
        sac([3])
    with pytest.raises(TypeError, match="function or a list"):
        sac(3)
    assert [m.value for m in P] == [0, 1, 2, 3]


def test_selective_checkpoint_errors():
    import functools
    from framework.utils.checkpoint import checkpoint, CheckpointError
    from framework.utils.checkpoint import create_selective_checkpoint_contexts as sac
    state = {"n": 0}

    def changing(x):               # the recomputation runs exp where the forward ran sin
        state["n"] += 1
        return (torch.sin(x) if state["n"] == 1 else torch.exp(x)).sum()
    x = torch.ones(3, requires_grad=True)
    out = checkpoint(changing, x, use_reentrant=False,
                     context_fn=functools.partial(sac, ["sin", "exp"]))
    with pytest.raises(CheckpointError, match="'exp' where the forward ran 'sin'"):
        out.backward()

    def mutating(x):
        h = torch.sin(x)
        h.mul_(2)                  # a saved output modified in place
        return h.sum()
    x = torch.ones(3, requires_grad=True)
    out = checkpoint(mutating, x, use_reentrant=False, context_fn=functools.partial(sac, ["sin"]))
    # (PyTorch's message)
    with pytest.raises(RuntimeError, match="^Tensor cached during selective activation "
                                           "checkpoint has been mutated"):
        out.backward()
    x = torch.ones(3, requires_grad=True)
    out = checkpoint(mutating, x, use_reentrant=False, context_fn=functools.partial(
        sac, ["sin"], allow_cache_entry_mutation=True))
    out.backward()
    np.testing.assert_allclose(to_np(x.grad), 2 * np.cos(np.ones(3)), rtol=1e-6)


def test_return_types_module_names_every_result_type():
    # one maker (framework.return_types.named): PyTorch's printing, and findable by name
    x = torch.tensor([[3.0, 1.0], [2.0, 5.0]])
    r = x.max(0)
    assert isinstance(r, torch.return_types.max) and type(r).__module__ == "torch.return_types"
    assert repr(r) == ("torch.return_types.max(\nvalues=tensor([3., 5.]),\n"
                       "indices=tensor([0, 1]))")
    assert isinstance(torch.linalg.qr(x), torch.return_types.linalg_qr)
    assert torch.frexp(torch.tensor([8.0])).exponent.tolist() == [4]
    assert repr(torch.aminmax(x)) == ("torch.return_types.aminmax(\nmin=tensor(1.),\n"
                                      "max=tensor(5.))")
    assert torch.return_types.sort is type(x.sort()) and torch.return_types.topk is \
        type(x.topk(1))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        torch.return_types.nope
