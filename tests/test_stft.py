"""torch.stft / torch.istft and the window functions: values against a NumPy float64 reference
(reflect padding, framing, windowing, rfft), torch 2.13's shapes, dtypes, warnings and error
messages (printed by torch and hard-coded here), gradients by finite differences of real-valued
functions, istft(stft(x)) == x, and the interpret device against cpu."""
import warnings

import numpy as np
import pytest

import framework as torch
from framework import fft as kfft
from framework.autograd import gradcheck
from conftest import to_np

F64 = torch.float64


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _np_stft(x, n_fft, hop, win, window=None, center=True, mode="reflect", normalized=False,
             onesided=True):
    """Reference: pad, frame, window (zero-padded to n_fft, centred), transform; (.., F, T)."""
    x = np.atleast_2d(x)
    if center:
        p = n_fft // 2
        x = np.pad(x, ((0, 0), (p, p)), mode={"constant": "constant", "reflect": "reflect",
                                              "replicate": "edge", "circular": "wrap"}[mode])
    w = np.ones(win) if window is None else np.asarray(window)
    left = (n_fft - win) // 2
    w = np.concatenate([np.zeros(left), w, np.zeros(n_fft - win - left)])
    n = 1 + (x.shape[1] - n_fft) // hop
    fr = np.stack([x[:, i * hop:i * hop + n_fft] for i in range(n)], 1) * w
    norm = "ortho" if normalized else "backward"
    s = np.fft.rfft(fr, axis=-1, norm=norm) if onesided else np.fft.fft(fr, axis=-1, norm=norm)
    return np.swapaxes(s, 1, 2)


def _close(t, ref, tol=1e-12):
    np.testing.assert_allclose(to_np(t), ref, rtol=tol, atol=tol)


@pytest.fixture(autouse=True)
def _fresh_warnings():
    # torch warns once per process; each test here sees the first warning again
    kfft._WARNED.clear()
    yield


# ---- windows -------------------------------------------------------------------------------------

def test_window_functions_equal_torch_printed_values():
    # torch 2.13, float64 (periodic and symmetric) and float32 (torch's float32 rounding)
    f = F64
    cases = [
        (torch.hann_window(5, dtype=f), [0.0, 0.3454915028125263, 0.9045084971874737,
                                         0.9045084971874737, 0.3454915028125264]),
        (torch.hann_window(5, periodic=False, dtype=f), [0.0, 0.5, 1.0, 0.5, 0.0]),
        (torch.hamming_window(5, dtype=f), [0.08, 0.3978521825875242, 0.9121478174124757,
                                            0.912147817412476, 0.3978521825875243]),
        (torch.hamming_window(6, True, 0.6, 0.3, dtype=f), [0.3, 0.45, 0.75, 0.9, 0.75, 0.45]),
        (torch.blackman_window(5, dtype=f), [0.0, 0.20077014326253045, 0.8492298567374694,
                                             0.8492298567374696, 0.20077014326253056]),
        (torch.blackman_window(5, False, dtype=f), [0.0, 0.34, 1.0, 0.34, 0.0]),
        (torch.bartlett_window(5, dtype=f), [0.0, 0.4, 0.8, 0.8, 0.4]),
        (torch.bartlett_window(5, False, dtype=f), [0.0, 0.5, 1.0, 0.5, 0.0]),
        (torch.kaiser_window(6, True, 5.0, dtype=f), [0.036710892271286676, 0.3282019573723212,
                                                      0.7753221044454067, 1.0,
                                                      0.7753221044454067, 0.3282019573723212]),
        (torch.kaiser_window(5, False, dtype=f), [5.2773441320097665e-05, 0.2156727447589671,
                                                  1.0, 0.2156727447589671,
                                                  5.2773441320097665e-05]),
    ]
    for t, want in cases:
        assert t.dtype == F64
        _close(t, want, 1e-14)
    h = torch.hann_window(8)
    assert h.dtype == torch.float32
    assert to_np(h).tolist() == np.array([0.0, 0.1464466154575348, 0.5, 0.8535534143447876, 1.0,
                                          0.853553295135498, 0.5, 0.14644649624824524],
                                         np.float32).tolist()
    for fn in (torch.hann_window, torch.hamming_window, torch.blackman_window,
               torch.bartlett_window, torch.kaiser_window):
        assert fn(0).shape == (0,) and to_np(fn(1)).tolist() == [1.0]
        assert to_np(fn(1, periodic=False)).tolist() == [1.0]
        assert fn(4, requires_grad=True).requires_grad
        assert fn(4, dtype=torch.float16).dtype == torch.float16
    _close(torch.hann_window(2, False), [0.0, 0.0])
    np.testing.assert_allclose(to_np(torch.hamming_window(2, False)), [0.08, 0.08], atol=1e-7)


def test_window_function_errors():
    with pytest.raises(RuntimeError, match="hann_window requires non-negative window_length, "
                                           "got window_length=-1"):
        torch.hann_window(-1)
    with pytest.raises(RuntimeError, match=r"kaiser_window expects floating point dtypes, got: "
                                           r"TensorOptions\(dtype=long int, device=cpu"):
        torch.kaiser_window(3, dtype=torch.int64)
    with pytest.raises(NotImplementedError, match="\"arange_cpu\" not implemented for "
                                                  "'ComplexFloat'"):
        torch.blackman_window(3, dtype=torch.complex64)


# ---- stft values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [
    dict(n_fft=8),
    dict(n_fft=8, hop_length=3, normalized=True, pad_mode="constant"),
    dict(n_fft=9, win_length=5, hop_length=2, pad_mode="replicate"),
    dict(n_fft=10, win_length=7, center=False, onesided=False),
    dict(n_fft=6, hop_length=1, pad_mode="circular"),
])
def test_stft_matches_numpy(kw):
    x = _x((3, 23))
    n_fft = kw["n_fft"]
    win = kw.get("win_length", n_fft)
    w = _x(win, 1)
    hop = kw.get("hop_length", n_fft // 4)
    ref = _np_stft(x, n_fft, hop, win, w, kw.get("center", True), kw.get("pad_mode", "reflect"),
                   kw.get("normalized", False), kw.get("onesided", True))
    got = torch.stft(torch.tensor(x), window=torch.tensor(w), return_complex=True, **kw)
    assert got.dtype == torch.complex128 and got.shape == ref.shape
    _close(got, ref)
    # 1-D input: the batch dim dropped; the method form is the same function
    got1 = torch.tensor(x[1]).stft(window=torch.tensor(w), return_complex=True, **kw)
    _close(got1, ref[1])


def test_stft_shapes_dtypes_and_options():
    x = torch.tensor(_x(20), dtype=torch.float32)
    with pytest.warns(UserWarning, match="A window was not provided. A rectangular window will "
                                         "be applied,which is known to cause spectral leakage"):
        s = torch.stft(x, 8, return_complex=True)
    assert s.shape == (5, 11) and s.dtype == torch.complex64
    _close(s, _np_stft(to_np(x).astype(np.float64), 8, 2, 8)[0], 1e-5)
    with pytest.warns(UserWarning, match="stft with return_complex=False is deprecated"):
        r = torch.stft(x, 8, window=torch.ones(8), return_complex=False)
    assert r.shape == (5, 11, 2) and r.dtype == torch.float32
    _close(r, torch.view_as_real(s), 0)
    # a float64 window promotes the result, as torch's frames * window does
    assert torch.stft(x, 8, window=torch.ones(8, dtype=F64), return_complex=True).dtype == \
        torch.complex128
    # complex input: two-sided by default and complex output without return_complex
    xc = torch.complex(torch.tensor(_x(20)), torch.tensor(_x(20, 1)))
    sc = torch.stft(xc, 8, window=torch.hann_window(8, dtype=F64))
    assert sc.shape == (8, 11) and sc.dtype == torch.complex128
    xn = to_np(xc)
    ref = _np_stft(np.pad(xn, 4, mode="reflect"), 8, 2, 8, to_np(torch.hann_window(8, dtype=F64)),
                   center=False, onesided=False)[0]
    _close(sc, ref)
    # a complex window also makes the transform two-sided
    assert torch.stft(x, 8, window=torch.ones(8, dtype=torch.complex64)).shape == (8, 11)
    # align_to_window (center=False): frames start where the shorter window starts
    xa = torch.arange(20.0, dtype=F64)
    a = torch.stft(xa, 8, win_length=4, center=False, align_to_window=True, return_complex=True,
                   window=torch.ones(4, dtype=F64))
    assert a.shape == (5, 9)
    _close(a, _np_stft(np.pad(np.arange(20.0), 2), 8, 2, 4, np.ones(4), center=False)[0])
    # n_fft // 2 == 0: no padding; torch's rectangular window with win_length == n_fft
    assert torch.stft(x, 1, hop_length=1, return_complex=True).shape == (1, 20)


def test_stft_errors_like_torch():
    x = torch.randn(20)
    head = ("stft(torch.FloatTensor[{}], n_fft={}, hop_length={}, win_length={}, window={}, "
            "normalized=0, onesided={}, return_complex={}, align_to_window=None) : ")
    cases = [
        (dict(n_fft=8, return_complex=None), RuntimeError,
         "stft requires the return_complex parameter be given for real inputs, and will further require that return_complex=True in a future PyTorch "
         "release."),
        (dict(n_fft=30, center=False), RuntimeError, head.format(20, 30, 7, 30, "None", "None", 1)
         + "expected 0 < n_fft < 20, but got n_fft=30"),
        # torch prints win_length where it means n_fft
        (dict(n_fft=30, win_length=5, center=False, onesided=True), RuntimeError,
         head.format(20, 30, 7, 5, "None", 1, 1) + "expected 0 < n_fft < 20, but got n_fft=5"),
        (dict(n_fft=8, hop_length=0), RuntimeError, head.format(28, 8, 0, 8, "None", "None", 1)
         + "expected hop_length > 0, but got hop_length=0"),
        (dict(n_fft=8, win_length=9), RuntimeError, head.format(28, 8, 2, 9, "None", "None", 1)
         + "expected 0 < win_length <= n_fft, but got win_length=9"),
        (dict(n_fft=8, window=torch.ones(5, dtype=F64)), RuntimeError,
         head.format(28, 8, 2, 8, "torch.DoubleTensor{[5]}", "None", 1)
         + "expected a 1D window tensor of size equal to win_length=8, but got window with "
         "size [5]"),
        (dict(n_fft=8, align_to_window=True), RuntimeError,
         "stft align_to_window should only be set when center = false"),
        (dict(n_fft=8, pad_mode="bad"), NotImplementedError, "Unrecognised padding mode bad"),
        (dict(n_fft=40), RuntimeError, "Argument #4: Padding size should be less than the "
         "corresponding input dimension, but got: padding (20, 20) at dimension 2 of input "
         "[1, 1, 20]"),
    ]
    for kw, exc, msg in cases:
        kw.setdefault("return_complex", True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(exc) as e:
                torch.stft(x, **kw)
        assert str(e.value) == msg, (kw, str(e.value))
    with pytest.raises(RuntimeError, match=r"stft\(torch.FloatTensor\[2, 3, 28\], .*: expected a "
                                           r"1D or 2D tensor"):
        torch.stft(torch.randn(2, 3, 20), 8, window=torch.ones(8), return_complex=True)
    with pytest.raises(RuntimeError, match=r"stft\(torch.IntTensor\[28\].*: expected a tensor of "
                                           r"floating point or complex values"):
        torch.stft(torch.arange(20, dtype=torch.int32), 8, window=torch.ones(8),
                   return_complex=True)
    with pytest.raises(RuntimeError, match="Cannot have onesided output if window or input is "
                                           "complex"):
        torch.stft(x.to(torch.complex64), 8, window=torch.ones(8), onesided=True)


# ---- istft ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [
    dict(n_fft=8),
    dict(n_fft=8, normalized=True, center=False, hop_length=4),
    dict(n_fft=10, win_length=7, hop_length=3),
    dict(n_fft=12, hop_length=5, onesided=False),
])
def test_istft_inverts_stft(kw):
    x = torch.tensor(_x((2, 40)))
    win = kw.get("win_length", kw["n_fft"])
    w = torch.hann_window(win, dtype=F64) + 0.1        # + 0.1: no zero in the envelope
    s = torch.stft(x, window=w, return_complex=True, **kw)
    n = 40 if kw.get("center", True) else s.shape[-1] * kw.get("hop_length", 2) - \
        kw.get("hop_length", 2) + kw["n_fft"]
    y = torch.istft(s, window=w, length=n, **kw)
    assert y.shape == (2, n) and y.dtype == F64
    _close(y, to_np(x)[:, :n], 1e-12)
    # 2-D spectrogram (one signal), the method form, a float32 round trip
    y1 = s[0].istft(window=w, **kw)
    _close(y1, to_np(x)[0, :y1.shape[0]], 1e-12)
    s32 = torch.stft(x.float(), window=w.float(), return_complex=True, **kw)
    y32 = torch.istft(s32, window=w.float(), length=n, **kw)
    assert y32.dtype == torch.float32
    np.testing.assert_allclose(to_np(y32), to_np(x)[:, :n], atol=1e-5)


def test_istft_options_match_numpy_overlap_add():
    # return_complex=True: c2c inverse of a two-sided spectrogram, overlap-add by hand
    rng = np.random.default_rng(3)
    spec = rng.standard_normal((6, 5)) + 1j * rng.standard_normal((6, 5))
    w = np.hanning(8)[1:7] + 0.2
    y = torch.istft(torch.tensor(spec), 6, hop_length=2, window=torch.tensor(w), center=False,
                    return_complex=True)
    fr = np.fft.ifft(spec.T, axis=-1) * w
    n = 6 + 2 * 4
    num, env = np.zeros(n, complex), np.zeros(n)
    for i in range(5):
        num[2 * i:2 * i + 6] += fr[i]
        env[2 * i:2 * i + 6] += w ** 2
    _close(y, num / env)
    # length longer than the signal: zero padding and torch's warning
    s = torch.stft(torch.tensor(_x(20)), 8, window=torch.hann_window(8, dtype=F64),
                   return_complex=True)
    with pytest.warns(UserWarning, match="The length of signal is shorter than the length "
                                         "parameter. Result is being padded with zeros"):
        y = torch.istft(s, 8, window=torch.hann_window(8, dtype=F64), length=30)
    assert y.shape == (30,) and to_np(y)[24:].tolist() == [0.0] * 6     # 28 - 4 samples, then 0
    _close(y[:20], _x(20))
    with pytest.warns(UserWarning, match="A window was not provided. A rectangular window will "
                                         "be applied.Please provide the same window"):
        torch.istft(s, 8)
    # the window's dtype promotes the result
    assert torch.istft(s.to(torch.complex64), 8, window=torch.ones(8, dtype=F64)).dtype == F64


def test_istft_errors_like_torch():
    x = torch.randn(20)
    w = torch.hann_window(8)
    s = torch.stft(x, 8, window=w, return_complex=True)

    def head(**o):
        v = dict(shape="[5, 11]", n_fft=8, hop=2, win=8, window="torch.FloatTensor{[8]}",
                 center=1, onesided="None", length="None", rc=0)
        v.update(o)
        return (f"istft(CPUComplexFloatType{v['shape']}, n_fft={v['n_fft']}, "
                f"hop_length={v['hop']}, win_length={v['win']}, window={v['window']}, "
                f"center={v['center']}, normalized=0, onesided={v['onesided']}, "
                f"length={v['length']}, return_complex={v['rc']}) ")
    cases = [
        (lambda: torch.istft(s.real, 8, window=w), RuntimeError,
         "istft requires a complex-valued input tensor matching the output from stft with "
         "return_complex=True."),
        (lambda: torch.istft(s, 8, window=w, center=False), RuntimeError,
         head(center=0) + "window overlap add min: 1\n[ CPUBoolType{} ]"),
        (lambda: torch.istft(s, 10, window=w), RuntimeError,
         head(n_fft=10, win=10) + ": expected the frequency dimension (3rd to the last) of the "
         "input tensor to match n_fft / 2 + 1 when onesided=True, but got 5"),
        (lambda: torch.istft(s, 8, window=w, onesided=False), RuntimeError,
         head(onesided=0) + ": expected the frequency dimension (3rd to the last) of the input "
         "tensor to match n_fft when onesided=False, but got 5"),
        (lambda: torch.istft(s, 8, window=w, hop_length=9), RuntimeError,
         head(hop=9) + ": expected 0 < hop_length <= win_length"),
        (lambda: torch.istft(s, 8, win_length=9, window=None), RuntimeError,
         head(win=9, window="None") + ": expected 0 < win_length <= n_fft"),
        (lambda: torch.istft(s, 8, window=torch.ones(6)), RuntimeError,
         head(window="torch.FloatTensor{[6]}") + ": Invalid window shape. window has to be 1D "
         "and length of `win_length`"),
        (lambda: torch.istft(s[:, :0], 8, window=w), RuntimeError,
         head(shape="[5, 0]") + ": input tensor cannot be empty."),
        (lambda: torch.istft(s[None, None], 8, window=w), RuntimeError,
         head(shape="[1, 1, 5, 11]") + ": expected a tensor with 3 or 4 dimensions, but got 5"),
        (lambda: torch.istft(s[0], 8, window=w), IndexError,
         "Dimension out of range (expected to be in range of [-2, 1], but got -3)"),
        (lambda: torch.istft(s, 8, window=w, return_complex=True), RuntimeError,
         "Cannot have onesided output if window or input is complex"),
    ]
    for f, exc, msg in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(exc) as e:
                f()
        assert str(e.value) == msg


# ---- gradients -----------------------------------------------------------------------------------

def test_gradcheck_stft_input_and_window():
    def f(x, w):
        return torch.view_as_real(torch.stft(x, 6, hop_length=2, window=w, return_complex=True))

    def g(x, w):     # two-sided, win_length < n_fft, constant padding, normalized
        return torch.stft(x, 7, hop_length=3, win_length=4, window=w, pad_mode="constant",
                          normalized=True, onesided=False, return_complex=True).abs()
    x = torch.tensor(_x((2, 11)), requires_grad=True)
    assert gradcheck(f, [x, torch.tensor(_x(6, 1), requires_grad=True)])
    assert gradcheck(g, [x, torch.tensor(_x(4, 2), requires_grad=True)])


def test_gradcheck_istft():
    def f(re, im, w):
        return torch.istft(torch.complex(re, im), 6, hop_length=2, window=w, length=9)

    def g(re, im):   # complex output, no window
        return torch.view_as_real(torch.istft(torch.complex(re, im), 4, hop_length=1,
                                              onesided=False, return_complex=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert gradcheck(f, [torch.tensor(_x((4, 5)), requires_grad=True),
                             torch.tensor(_x((4, 5), 1), requires_grad=True),
                             torch.tensor(_x(6, 2) + 3.0, requires_grad=True)])
        assert gradcheck(g, [torch.tensor(_x((4, 5)), requires_grad=True),
                             torch.tensor(_x((4, 5), 1), requires_grad=True)])


def test_round_trip_gradient_is_identity():
    # istft(stft(x)) == x, so d(sum(c * y))/dx == c
    x = torch.tensor(_x(30), requires_grad=True)
    w = torch.hann_window(8, dtype=F64)
    y = torch.istft(torch.stft(x, 8, window=w, return_complex=True), 8, window=w, length=30)
    c = _x(30, 5)
    (y * torch.tensor(c)).sum().backward()
    _close(x.grad, c, 1e-12)


# ---- the interpret device --------------------------------------------------------------------------

def test_interpret_device_equals_cpu():
    xc = torch.tensor(_x((2, 24)), dtype=torch.float32)
    wc = torch.hann_window(8)
    xi, wi = xc.to("interpret"), torch.hann_window(8, device="interpret")
    assert wi.device.type == "interpret"
    np.testing.assert_array_equal(to_np(wi), to_np(wc))
    want = torch.stft(xc, 8, window=wc, return_complex=True)
    got = torch.stft(xi, 8, window=wi, return_complex=True)
    assert got.device.type == "interpret" and got.dtype == want.dtype
    np.testing.assert_allclose(to_np(got), to_np(want), rtol=1e-5, atol=1e-5)
    back = torch.istft(got, 8, window=wi, length=24)
    assert back.device.type == "interpret"
    np.testing.assert_allclose(to_np(back), to_np(xc), atol=1e-5)
