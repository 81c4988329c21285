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
    assert lines[2] == "interpret [2.0, 2.0, 2.0] 0 None"
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
