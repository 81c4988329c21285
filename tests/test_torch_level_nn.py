"""The nn-internal torch.* entry points (torch.lstm, torch.gru_cell, ...) against NumPy float64
references, gradcheck, and the errors PyTorch raises for bad input."""
import numpy as np
import pytest

import framework as torch
from framework.autograd import gradcheck
from conftest import assert_close, to_np


def sig(x):
    return 1 / (1 + np.exp(-x))


def T(a, rg=False):
    return torch.tensor(np.asarray(a, np.float64), requires_grad=rg)


def np_cell(mode, x, h, c, wih, whh, bih, bhh):
    gi = x @ wih.T + (0 if bih is None else bih)
    gh = h @ whh.T + (0 if bhh is None else bhh)
    H = h.shape[-1]
    if mode == "LSTM":
        g = gi + gh
        i, f, gg, o = sig(g[:, :H]), sig(g[:, H:2 * H]), np.tanh(g[:, 2 * H:3 * H]), sig(g[:, 3 * H:])
        c = f * c + i * gg
        return o * np.tanh(c), c
    if mode == "GRU":
        r = sig(gi[:, :H] + gh[:, :H])
        z = sig(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        return (1 - z) * n + z * h, None
    pre = gi + gh
    return (np.tanh(pre) if mode == "RNN_TANH" else np.maximum(pre, 0)), None


def np_stack(mode, x, h0, c0, params, has_biases, num_layers, D):
    """x (L, N, I); params grouped per layer and direction as torch's _flat_weights."""
    per = 4 if has_biases else 2
    hn, cn = [], []
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            k = layer * D + d
            p = params[k * per:(k + 1) * per]
            wih, whh = p[0], p[1]
            bih, bhh = (p[2], p[3]) if has_biases else (None, None)
            h, c = h0[k], (c0[k] if c0 is not None else None)
            seq = [None] * x.shape[0]
            for t in (range(x.shape[0] - 1, -1, -1) if d else range(x.shape[0])):
                h, c = np_cell(mode, x[t], h, c, wih, whh, bih, bhh)
                seq[t] = h
            outs.append(np.stack(seq))
            hn.append(h)
            cn.append(c)
        x = np.concatenate(outs, -1)
    return x, np.stack(hn), (np.stack(cn) if c0 is not None else None)


def _params(rng, mode, I, H, num_layers, D, has_biases):
    g = {"LSTM": 4, "GRU": 3}.get(mode, 1)
    ps = []
    for layer in range(num_layers):
        for _ in range(D):
            inp = I if layer == 0 else H * D
            ps += [rng.standard_normal((g * H, inp)) * 0.5, rng.standard_normal((g * H, H)) * 0.5]
            if has_biases:
                ps += [rng.standard_normal(g * H) * 0.5, rng.standard_normal(g * H) * 0.5]
    return ps


FNS = {"LSTM": torch.lstm, "GRU": torch.gru, "RNN_TANH": torch.rnn_tanh,
       "RNN_RELU": torch.rnn_relu}


@pytest.mark.parametrize("mode", list(FNS))
@pytest.mark.parametrize("bidir,has_biases,batch_first", [(False, True, False),
                                                          (True, True, True),
                                                          (False, False, True)])
def test_rnn_functional_matches_numpy(mode, bidir, has_biases, batch_first):
    rng = np.random.default_rng(0)
    L, N, I, H, nl, D = 4, 3, 2, 3, 2, 2 if bidir else 1
    x = rng.standard_normal((L, N, I))
    h0 = rng.standard_normal((nl * D, N, H))
    c0 = rng.standard_normal((nl * D, N, H))
    ps = _params(rng, mode, I, H, nl, D, has_biases)
    ref = np_stack(mode, x, h0, c0 if mode == "LSTM" else None, ps, has_biases, nl, D)
    xin = T(x.transpose(1, 0, 2) if batch_first else x, True)
    hx = (T(h0), T(c0)) if mode == "LSTM" else T(h0)
    res = FNS[mode](xin, hx, [T(p) for p in ps], has_biases, nl, 0.0, False, bidir, batch_first)
    assert len(res) == (3 if mode == "LSTM" else 2)
    out = ref[0].transpose(1, 0, 2) if batch_first else ref[0]
    assert_close(res[0], out, rtol=1e-10, atol=1e-12)
    assert_close(res[1], ref[1], rtol=1e-10, atol=1e-12)
    if mode == "LSTM":
        assert_close(res[2], ref[2], rtol=1e-10, atol=1e-12)
    if batch_first:      # ATen transposes gru/rnn outputs in place, lstm's out of place
        assert type(res[0].grad_fn).__name__ == ("TransposeBackward0" if mode == "LSTM" else
                                                 "TransposeBackward1")


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_rnn_functional_equals_module(mode):
    torch.manual_seed(0)
    m = (torch.nn.LSTM if mode == "LSTM" else torch.nn.GRU)(3, 4, num_layers=2,
                                                            bidirectional=True).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    h = torch.randn(4, 2, 4, dtype=torch.float64)
    c = torch.randn(4, 2, 4, dtype=torch.float64)
    mo = m(x, (h, c)) if mode == "LSTM" else m(x, h)
    fo = FNS[mode](x, (h, c) if mode == "LSTM" else h, m._flat_weights, True, 2, 0.0, False,
                   True, False)
    assert_close(fo[0], to_np(mo[0]), rtol=0, atol=0)
    assert_close(fo[1], to_np(mo[1][0] if mode == "LSTM" else mo[1]), rtol=0, atol=0)


def test_lstm_functional_projection_and_dropout():
    torch.manual_seed(0)
    m = torch.nn.LSTM(3, 4, proj_size=2).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    h, c = torch.zeros(1, 2, 2, dtype=torch.float64), torch.zeros(1, 2, 4, dtype=torch.float64)
    out, hn, cn = torch.lstm(x, (h, c), m._flat_weights, True, 1, 0.0, False, False, False)
    mo, (mh, mc) = m(x)
    assert tuple(out.shape) == (5, 2, 2) and tuple(cn.shape) == (1, 2, 4)
    assert_close(out, to_np(mo), rtol=0, atol=0)
    assert_close(cn, to_np(mc), rtol=0, atol=0)
    # train=True drops between layers with the module's RNG draws
    g = torch.nn.GRU(3, 4, num_layers=2, dropout=0.5).double()
    h0 = torch.zeros(2, 2, 4, dtype=torch.float64)
    torch.manual_seed(3)
    fo = torch.gru(x, h0, g._flat_weights, True, 2, 0.5, True, False, False)[0]
    torch.manual_seed(3)
    assert_close(fo, to_np(g(x, h0)[0]), rtol=0, atol=0)
    torch.manual_seed(3)
    fe = torch.gru(x, h0, g._flat_weights, True, 2, 0.5, False, False, False)[0]
    assert not np.allclose(to_np(fe), to_np(fo))


def test_rnn_functional_packed():
    """The .data overload: rows of the packed data run while batch_sizes[t] covers them."""
    rng = np.random.default_rng(1)
    ps = _params(rng, "GRU", 2, 3, 1, 1, True)
    seqs = [rng.standard_normal((3, 2)), rng.standard_normal((2, 2)), rng.standard_normal((1, 2))]
    h0 = rng.standard_normal((1, 3, 3))
    data = np.concatenate([np.stack([s[t] for s in seqs if len(s) > t]) for t in range(3)])
    out, hn = torch.gru(T(data), torch.tensor([3, 2, 1]), T(h0), [T(p) for p in ps], True, 1,
                        0.0, False, False)
    rows, finals = [], []
    for b, s in enumerate(seqs):
        o, h, _ = np_stack("GRU", s[:, None], h0[:, b:b + 1], None, ps, True, 1, 1)
        rows.append(o[:, 0])
        finals.append(h[0, 0])
    want = np.concatenate([np.stack([r[t] for r in rows if len(r) > t]) for t in range(3)])
    assert_close(out, want, rtol=1e-10, atol=1e-12)
    assert_close(hn, np.stack(finals)[None], rtol=1e-10, atol=1e-12)
    with pytest.raises(RuntimeError, match="expected scalar type Long but found Float"):
        torch.gru(T(data), torch.tensor([3., 2, 1]), T(h0), [T(p) for p in ps], True, 1, 0.0,
                  False, False)
    with pytest.raises(RuntimeError, match=r"start \(5\) \+ length \(1\) exceeds dimension "
                                           r"size \(5\)"):
        torch.gru(T(data[:5]), torch.tensor([3, 2, 1]), T(h0), [T(p) for p in ps], True, 1,
                  0.0, False, False)


def test_rnn_functional_gradcheck():
    rng = np.random.default_rng(2)
    ps = [T(p, True) for p in _params(rng, "LSTM", 2, 2, 1, 2, True)]
    x, h, c = T(rng.standard_normal((1, 2, 2)), True), T(rng.standard_normal((2, 1, 2)), True), \
        T(rng.standard_normal((2, 1, 2)), True)

    def f(x, h, c, *ps):
        return torch.lstm(x, (h, c), list(ps), True, 1, 0.0, False, True, True)

    assert gradcheck(f, (x, h, c, *ps))
    gps = [T(p, True) for p in _params(rng, "GRU", 2, 2, 1, 1, False)]
    assert gradcheck(lambda x, h, *p: torch.gru(x, h, list(p), False, 1, 0.0, False, False,
                                                False),
                     (x, T(rng.standard_normal((1, 2, 2)), True), *gps))


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"])
def test_rnn_cells_match_numpy_and_gradcheck(mode):
    rng = np.random.default_rng(3)
    g = {"LSTM": 4, "GRU": 3}.get(mode, 1)
    x, h, c = (rng.standard_normal(s) for s in ((2, 3), (2, 4), (2, 4)))
    wih, whh, bih, bhh = (rng.standard_normal(s) * 0.5 for s in
                          ((g * 4, 3), (g * 4, 4), (g * 4,), (g * 4,)))
    fn = {"LSTM": torch.lstm_cell, "GRU": torch.gru_cell, "RNN_TANH": torch.rnn_tanh_cell,
          "RNN_RELU": torch.rnn_relu_cell}[mode]
    hx = (T(h), T(c)) if mode == "LSTM" else T(h)
    for b in ((bih, bhh), (None, None)):
        got = fn(T(x), hx, T(wih), T(whh), *(None if v is None else T(v) for v in b))
        want = np_cell(mode, x, h, c, wih, whh, *b)
        if mode == "LSTM":
            assert_close(got[0], want[0], rtol=1e-10, atol=1e-12)
            assert_close(got[1], want[1], rtol=1e-10, atol=1e-12)
        else:
            assert_close(got, want[0], rtol=1e-10, atol=1e-12)
    args = [T(v, True) for v in (x, h, c, wih, whh, bih, bhh)]
    if mode == "LSTM":
        assert gradcheck(lambda x, h, c, *w: fn(x, (h, c), *w), args)
        assert [type(t.grad_fn).__name__ for t in fn(*args[:1], tuple(args[1:3]), *args[3:])] \
            == ["MulBackward0", "AddBackward0"]
    else:
        assert gradcheck(lambda x, h, c, *w: fn(x, h, *w), args)
        name = {"GRU": "AddBackward0", "RNN_TANH": "TanhBackward0", "RNN_RELU": "ReluBackward0"}
        assert type(fn(args[0], args[1], *args[3:]).grad_fn).__name__ == name[mode]


def test_rnn_functional_errors():
    x = torch.randn(5, 2, 3)
    h = torch.randn(1, 2, 4)
    ps = [torch.randn(16, 3), torch.randn(16, 4), torch.randn(16), torch.randn(16)]
    with pytest.raises(RuntimeError, match="^lstm expects two hidden states$"):
        torch.lstm(x, (h,), ps, True, 1, 0.0, False, False, False)
    with pytest.raises(RuntimeError, match="MatrixRef: ArrayRef size 3 not divisible by stride 4"):
        torch.lstm(x, (h, h), ps[:3], True, 1, 0.0, False, False, False)
    with pytest.raises(RuntimeError, match="got an incorrect number of RNN parameters"):
        torch.gru(x, h, ps[:3], True, 1, 0.0, False, False, False)
    with pytest.raises(IndexError, match=r"expected to be in range of \[-2, 1\], but got 2"):
        torch.lstm(x[:, 0], (h, h), ps, True, 1, 0.0, False, False, False)
    with pytest.raises(RuntimeError, match="Expected more hidden states in stacked_rnn"):
        torch.gru(x, h[0], ps[:2] + ps[2:], True, 1, 0.0, False, False, False)
    with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0"):
        torch.rnn_tanh(x[:0], h, [torch.randn(4, 3), torch.randn(4, 4)], False, 1, 0.0, False,
                       False, False)
    with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype, but got "
                                           "Double and Float"):
        torch.lstm(x.double(), (h, h), ps, True, 1, 0.0, False, False, False)
    with pytest.raises(TypeError, match=r"gru\(\) received an invalid combination of arguments "
                                        r"- got \(Tensor, Tensor, list, bool, int, float, bool, "
                                        r"bool\)"):
        torch.gru(x, h, ps, True, 1, 0.0, False, False)


def test_rnn_cell_errors():
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    with pytest.raises(RuntimeError, match="^lstm_cell expects two hidden states$"):
        torch.lstm_cell(x, (h,), torch.randn(16, 3), torch.randn(16, 4))
    with pytest.raises(TypeError, match=r"gru_cell\(\): argument 'hx' \(position 2\) must be "
                                        r"Tensor, not int"):
        torch.gru_cell(x, 1, torch.randn(12, 3), torch.randn(12, 4))
    with pytest.raises(RuntimeError, match="input has inconsistent input_size: got 3 expected 2"):
        torch.gru_cell(x, h, torch.randn(12, 2), torch.randn(12, 4))
    with pytest.raises(RuntimeError, match="Input batch size 2 doesn't match hidden1 batch size 1"):
        torch.lstm_cell(x, (h, h[:1]), torch.randn(16, 3), torch.randn(16, 4))
    with pytest.raises(RuntimeError, match="weight_ih first dim must be 1 \\* hidden_size = 5, "
                                           "but got 4"):
        torch.rnn_tanh_cell(x, h, torch.randn(4, 3), torch.randn(4, 5))      # weights first
    with pytest.raises(RuntimeError, match="hidden0 has inconsistent hidden_size: got 4, "
                                           "expected 5"):
        torch.gru_cell(x, h, torch.randn(12, 3), torch.randn(12, 5))         # hidden first
    with pytest.raises(RuntimeError, match=r"The expanded size of the tensor \(16\) must match "
                                           r"the existing size \(15\) at non-singleton "
                                           r"dimension 1.  Target sizes: \[2, 16\]"):
        torch.lstm_cell(x, (h, h), torch.randn(16, 3), torch.randn(16, 4), torch.randn(15))
    with pytest.raises(IndexError, match=r"range of \[-1, 0\], but got 1"):
        torch.rnn_relu_cell(x[0], h[0], torch.randn(4, 3), torch.randn(4, 4))


# ---- torch.convolution, grid_sampler, affine_grid_generator ----------------------------------

def np_conv2d(x, w, b, stride, pad, dil, groups):
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    Ho = (H + 2 * pad[0] - dil[0] * (KH - 1) - 1) // stride[0] + 1
    Wo = (W + 2 * pad[1] - dil[1] * (KW - 1) - 1) // stride[1] + 1
    out = np.zeros((N, O, Ho, Wo))
    og = O // groups
    for o in range(O):
        g = o // og
        for i in range(Ho):
            for j in range(Wo):
                patch = xp[:, g * Cg:(g + 1) * Cg,
                           i * stride[0]:i * stride[0] + dil[0] * (KH - 1) + 1:dil[0],
                           j * stride[1]:j * stride[1] + dil[1] * (KW - 1) + 1:dil[1]]
                out[:, o, i, j] = (patch * w[o]).sum((1, 2, 3))
    return out + (0 if b is None else b[None, :, None, None])


def np_conv_transpose2d(x, w, stride, pad, out_pad, dil, groups):
    N, C, H, W = x.shape
    _, og, KH, KW = w.shape
    Ho = (H - 1) * stride[0] - 2 * pad[0] + dil[0] * (KH - 1) + out_pad[0] + 1
    Wo = (W - 1) * stride[1] - 2 * pad[1] + dil[1] * (KW - 1) + out_pad[1] + 1
    full = np.zeros((N, og * groups, Ho + 2 * pad[0] + 1 + KH * dil[0],
                     Wo + 2 * pad[1] + 1 + KW * dil[1]))
    cg = C // groups
    for c in range(C):
        g = c // cg
        for i in range(H):
            for j in range(W):
                for a in range(KH):
                    for bb in range(KW):
                        full[:, g * og:(g + 1) * og, i * stride[0] + a * dil[0],
                             j * stride[1] + bb * dil[1]] += x[:, c, i, j, None] * w[c, :, a, bb]
    return full[:, :, pad[0]:pad[0] + Ho, pad[1]:pad[1] + Wo]


def test_convolution_matches_numpy():
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 4, 5, 6)), rng.standard_normal((6, 2, 3, 2)), \
        rng.standard_normal(6)
    got = torch.convolution(T(x), T(w), T(b), [2, 1], [1, 0], [1, 2], False, [0, 0], 2)
    assert_close(got, np_conv2d(x, w, b, (2, 1), (1, 0), (1, 2), 2), rtol=1e-10, atol=1e-12)
    # one-element lists stand for every dim; output_padding is ignored when not transposed
    got = torch.convolution(T(x), T(w), None, [1], [1], [1], False, [5, 5], 2)
    assert_close(got, np_conv2d(x, w, None, (1, 1), (1, 1), (1, 1), 2), rtol=1e-10, atol=1e-12)
    wt = rng.standard_normal((4, 3, 3, 3))
    got = torch.convolution(T(x), T(wt), None, [2, 2], [1, 1], [1, 1], True, [1, 0], 2)
    assert_close(got, np_conv_transpose2d(x, wt, (2, 2), (1, 1), (1, 0), (1, 1), 2),
                 rtol=1e-10, atol=1e-12)
    assert type(got.grad_fn).__name__ == "NoneType"
    xs, ws = T(x[:1, :2, :3, :3], True), T(w[:2, :1, :2, :2], True)
    y = torch.convolution(xs, ws, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 2)
    assert type(y.grad_fn).__name__ == "ConvolutionBackward0"
    assert gradcheck(lambda a, k: torch.convolution(a, k, None, [1, 1], [1, 1], [1, 1], False,
                                                    [0, 0], 2), (xs, ws))
    assert gradcheck(lambda a, k: torch.convolution(a, k, None, [2, 1], [0, 1], [1, 1], True,
                                                    [1, 0], 1),
                     (T(x[:1, :2, :2, :2], True), T(wt[:2, :2, :2, :2], True)))


def test_convolution_errors():
    x, w = torch.randn(2, 4, 5, 6), torch.randn(6, 2, 3, 3)
    with pytest.raises(TypeError, match=r"convolution\(\): argument 'stride' \(position 4\) "
                                        r"must be tuple of ints, not int"):
        torch.convolution(x, w, None, 1, [0, 0], [1, 1], False, [0, 0], 2)
    with pytest.raises(RuntimeError, match=r"Expected 4-dimensional input for 4-dimensional "
                                           r"weight \[6, 2, 3, 3\], but got 3-dimensional input "
                                           r"of size \[4, 5, 6\] instead"):
        torch.convolution(x[0], w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 2)
    with pytest.raises(RuntimeError, match="list of 2 values to match the convolution "
                                           r"dimensions, but got stride=\[1, 1, 1\]"):
        torch.convolution(x, w, None, [1, 1, 1], [0, 0], [1, 1], False, [0, 0], 2)
    with pytest.raises(RuntimeError, match="negative padding is not supported"):
        torch.convolution(x, w, None, [1, 1], [-1, 0], [1, 1], False, [0, 0], 2)
    with pytest.raises(RuntimeError, match=r"Given groups=3, weight of size \[6, 2, 3, 3\], "
                                           r"expected input\[2, 4, 5, 6\] to have 6 channels"):
        torch.convolution(x, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 3)


def test_grid_sampler_modes_hand_values():
    img = T([[[[1., 2.], [3., 4.]]]])

    def at(x, y, im, pm, ac):
        g = T([[[[x, y]]]])
        return float(torch.grid_sampler(img, g, im, pm, ac).reshape(()))

    assert at(0, 0, 0, 0, True) == pytest.approx(2.5)           # bilinear: the centre
    assert at(1, -1, 0, 0, True) == pytest.approx(2.0)          # top-right corner
    assert at(2, 0, 0, 0, True) == pytest.approx(1.5)           # zeros: half outside
    assert at(2, 0, 0, 1, True) == pytest.approx(3.0)           # border: clamped to col 1
    assert at(0.4, -0.6, 1, 0, True) == pytest.approx(2.0)      # nearest
    assert at(0, 0, 0, 0, False) == pytest.approx(2.5)
    assert at(-0.5, -0.5, 0, 0, False) == pytest.approx(1.0)    # align_corners=False: pixel 0
    assert at(0, 0, 2, 1, True) == pytest.approx(2.5)           # bicubic, border: symmetric
    g3 = T(np.zeros((1, 1, 1, 1, 3)))
    vol = T(np.arange(8.).reshape(1, 1, 2, 2, 2))
    assert float(torch.grid_sampler_3d(vol, g3, 0, 0, True).reshape(())) == pytest.approx(3.5)
    a, gg = T(np.random.default_rng(5).standard_normal((1, 2, 3, 3)), True), \
        T(np.random.default_rng(6).uniform(-0.9, 0.9, (1, 2, 2, 2)), True)
    out = torch.grid_sampler_2d(a, gg, 0, 2, False)
    assert type(out.grad_fn).__name__ == "GridSampler2DBackward0"
    assert gradcheck(lambda a, g: torch.grid_sampler_2d(a, g, 0, 2, False), (a, gg))


def test_grid_sampler_errors():
    x, g = torch.randn(2, 3, 4, 5), torch.rand(2, 3, 2, 2)
    with pytest.raises(RuntimeError, match=r"grid_sampler\(\): expected 5D input and grid"):
        torch.grid_sampler_3d(x, g, 0, 0, False)
    with pytest.raises(RuntimeError, match="bicubic interpolation only supports 4D input"):
        torch.grid_sampler_3d(torch.randn(1, 1, 2, 2, 2), torch.rand(1, 1, 1, 1, 3), 2, 0, False)
    with pytest.raises(TypeError, match=r"argument 'interpolation_mode' \(position 3\) must be "
                                        r"int, not str"):
        torch.grid_sampler(x, g, "bilinear", 0, False)
    with pytest.raises(RuntimeError, match="interpolation_mode must be 0"):
        torch.grid_sampler(x, g, 3, 0, False)
    with pytest.raises(RuntimeError, match="expected grid and input to have same batch size"):
        torch.grid_sampler(x, g[:1], 0, 0, False)
    with pytest.raises(RuntimeError, match="expected scalar type Float but found Double"):
        torch.grid_sampler(x, g.double(), 0, 0, False)


def test_affine_grid_generator():
    eye = T([[[1., 0., 0.], [0., 1., 0.]]], True)
    grid = torch.affine_grid_generator(eye, [1, 1, 2, 3], True)
    want = np.stack(np.meshgrid([-1., 0., 1.], [-1., 1.]), -1)[None]
    assert_close(grid, want, rtol=0, atol=1e-15)
    assert type(grid.grad_fn).__name__ == "AffineGridGeneratorBackward0"
    th = T([[[0., 2., 1.], [1., 0., -1.]]])          # x' = 2y + 1, y' = x - 1
    g = torch.affine_grid_generator(th, (1, 1, 2, 3), True)
    assert_close(g, np.stack([2 * want[..., 1] + 1, want[..., 0] - 1], -1), rtol=0, atol=1e-15)
    assert tuple(torch.affine_grid_generator(T(np.zeros((1, 3, 4))), [1, 1, 2, 3, 4],
                                             False).shape) == (1, 2, 3, 4, 3)
    with pytest.raises(RuntimeError, match="AffineGridGenerator needs 4d"):
        torch.affine_grid_generator(th, [1, 1, 2], False)
    with pytest.raises(RuntimeError, match=r"Expected size for first two dimensions of batch2 "
                                           r"tensor to be: \[3, 3\] but got: \[1, 3\]\."):
        torch.affine_grid_generator(th, [3, 1, 2, 3], False)
    with pytest.raises(TypeError, match="argument 'align_corners' \\(position 3\\) must be bool, "
                                        "not NoneType"):
        torch.affine_grid_generator(th, [1, 1, 2, 3], None)


# ---- embedding_renorm_, norm_except_dim -------------------------------------------------------

def test_embedding_renorm_():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((5, 3))
    for p, idx, mx in ((2.0, [0, 2, 2, 4], 1.0), (1.0, [1, 3], 0.5), (float("inf"), [1, 3], 0.5),
                       (0.0, [1, -4], 0.5), (3.0, [4, 0], 1e-3)):
        t = T(w)
        r = torch.embedding_renorm_(t, torch.tensor(idx), mx, p)
        assert r is t
        want = w.copy()
        for i in sorted(set(k % 5 for k in idx)):
            n = (np.abs(w[i]).max() if p == float("inf") else (w[i] != 0).sum() if p == 0 else
                 (np.abs(w[i]) ** p).sum() ** (1 / p))
            if n > mx:
                want[i] = w[i] * mx / (n + 1e-7)
        assert_close(t, want, rtol=1e-12, atol=1e-14)
    t = T(w)
    with pytest.raises(IndexError, match=r"select\(\): index 7 out of range for tensor of size "
                                         r"\[5, 3\] at dimension 0"):
        torch.embedding_renorm_(t, torch.tensor([1, 7]), 0.5, 2.0)
    assert_close(t, w, rtol=0, atol=0)                    # unchanged
    with pytest.raises(RuntimeError, match="'indices' to have one of the following scalar "
                                           "types: Long, Int; but got torch.FloatTensor"):
        torch.embedding_renorm_(t, torch.tensor([1.]), 0.5, 2.0)
    with pytest.raises(RuntimeError, match="Expected 2-dimensional tensor, but got "
                                           "1-dimensional tensor for argument #1 'self'"):
        torch.embedding_renorm_(T(w[0]), torch.tensor([1]), 0.5, 2.0)
    leaf = T(w, True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        torch.embedding_renorm_(leaf, torch.tensor([1]), 0.5, 2.0)
    y = leaf * 1
    torch.embedding_renorm_(y, torch.tensor([1]), 0.5, 2.0)
    assert type(y.grad_fn).__name__ == "EmbeddingRenormBackward0"
    with pytest.raises(NotImplementedError, match="the derivative for 'embedding_renorm' is not "
                                                  "implemented"):
        y.sum().backward()


def test_norm_except_dim():
    rng = np.random.default_rng(8)
    v = rng.standard_normal((3, 4, 2))
    cases = {0: ((1, 2), "ViewBackward0"), 1: ((0, 2), "TransposeBackward0"),
             2: ((0, 1), "ViewBackward0")}
    for dim, (axes, name) in cases.items():
        for p in (2, 3):
            got = torch.norm_except_dim(T(v, True), p, dim)
            want = (np.abs(v) ** p).sum(axes, keepdims=True) ** (1 / p)
            assert_close(got, want, rtol=1e-12, atol=1e-14)
            assert type(got.grad_fn).__name__ == name
    assert_close(torch.norm_except_dim(T(v), 2, -1), np.sqrt((v ** 2).sum()), rtol=1e-12)
    assert tuple(torch.norm_except_dim(T(v)).shape) == (3, 1, 1)
    assert gradcheck(lambda a: torch.norm_except_dim(a, 2, 1), (T(v, True),))
    with pytest.raises(TypeError, match=r"argument 'pow' \(position 2\) must be int, not float"):
        torch.norm_except_dim(T(v), 1.5, 0)
    with pytest.raises(IndexError, match=r"range of \[-3, 2\], but got 3"):
        torch.norm_except_dim(T(v), 2, 3)
    with pytest.raises(RuntimeError, match="norm\\(\\): input dtype should be either floating "
                                           "point or complex. Got Long instead."):
        torch.norm_except_dim(torch.arange(6).reshape(2, 3), 2, 0)


# ---- SyncBatchNorm's building blocks ----------------------------------------------------------

def test_sync_batch_norm_blocks_match_numpy():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((6, 3, 4))
    eps, mom = 1e-5, 0.1
    mean, invstd = torch.batch_norm_stats(T(x), eps)
    assert_close(mean, x.mean((0, 2)), rtol=1e-12, atol=1e-14)
    assert_close(invstd, 1 / np.sqrt(x.var((0, 2)) + eps), rtol=1e-12)
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    y = torch.batch_norm_elemt(T(x), T(w), T(b), mean, invstd, eps)
    xhat = (x - x.mean((0, 2), keepdims=True)) / np.sqrt(x.var((0, 2), keepdims=True) + eps)
    assert_close(y, xhat * w[:, None] + b[:, None], rtol=1e-10, atol=1e-12)
    # two replicas of 4 and 2 images: the gathered statistics are the whole batch's
    parts = [x[:4], x[4:]]
    stats = [torch.batch_norm_stats(T(p), eps) for p in parts]
    rm, rv = T(np.zeros(3)), T(np.ones(3))
    gm, gi = torch.batch_norm_gather_stats_with_counts(
        T(x), torch.stack([s[0] for s in stats]), torch.stack([s[1] for s in stats]), rm, rv,
        mom, eps, T([16., 8.]))
    assert_close(gm, x.mean((0, 2)), rtol=1e-10, atol=1e-12)
    assert_close(gi, 1 / np.sqrt(x.var((0, 2)) + eps), rtol=1e-8)
    assert_close(rm, mom * x.mean((0, 2)), rtol=1e-10, atol=1e-12)
    assert_close(rv, (1 - mom) + mom * x.var((0, 2), ddof=1), rtol=1e-8)
    same = [torch.batch_norm_stats(T(p), eps) for p in (x[:3], x[3:])]
    gm2, _ = torch.batch_norm_gather_stats(T(x), torch.stack([s[0] for s in same]),
                                           torch.stack([s[1] for s in same]), None, None, mom,
                                           eps, 12)
    assert_close(gm2, x.mean((0, 2)), rtol=1e-10, atol=1e-12)
    # backward: the reduced sums, then the input gradient of training-mode batch norm
    dy = rng.standard_normal(x.shape)
    sdy, sdyx, gw, gb = torch.batch_norm_backward_reduce(T(dy), T(x), mean, invstd, T(w),
                                                         True, True, True)
    mu = x.mean((0, 2), keepdims=True)
    assert_close(sdy, dy.sum((0, 2)), rtol=1e-10, atol=1e-12)
    assert_close(sdyx, (dy * (x - mu)).sum((0, 2)), rtol=1e-10, atol=1e-12)
    assert_close(gw, (dy * xhat).sum((0, 2)), rtol=1e-8, atol=1e-10)
    assert_close(gb, dy.sum((0, 2)), rtol=1e-10, atol=1e-12)
    r = torch.batch_norm_backward_reduce(T(dy), T(x), mean, invstd, T(w), False, True, False)
    assert r[0] is None and r[1] is None and r[3] is None
    assert_close(r[2], (dy * xhat).sum((0, 2)), rtol=1e-8, atol=1e-10)
    gx = torch.batch_norm_backward_elemt(T(dy), T(x), mean, invstd, T(w), sdy, sdyx,
                                         torch.tensor([24], dtype=torch.int32))
    n = 24
    want = w[:, None] / np.sqrt(x.var((0, 2), keepdims=True) + eps) * (
        dy - dy.mean((0, 2), keepdims=True) - xhat * (dy * xhat).sum((0, 2), keepdims=True) / n)
    assert_close(gx, want, rtol=1e-8, atol=1e-10)


def test_batch_norm_update_stats():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, 3, 2))
    rm, rv = T(np.zeros(3)), T(np.ones(3))
    m, v = torch.batch_norm_update_stats(T(x, True), rm, rv, 0.1)
    assert_close(m, x.mean((0, 2)), rtol=1e-12, atol=1e-14)
    assert_close(v, x.var((0, 2)), rtol=1e-12)
    assert_close(rm, 0.1 * x.mean((0, 2)), rtol=1e-12, atol=1e-14)
    assert_close(rv, 0.9 + 0.1 * x.var((0, 2), ddof=1), rtol=1e-12)
    assert type(m.grad_fn).__name__ == "NotImplemented"
    with pytest.raises(RuntimeError, match="derivative for aten::batch_norm_update_stats is "
                                           "not implemented"):
        m.sum().backward()
    with pytest.raises(RuntimeError, match=r"mixed dtype \(CPU\): all inputs must share same "
                                           r"datatype."):
        torch.batch_norm_update_stats(T(x).float(), rm, rv, 0.1)
    with pytest.raises(IndexError, match=r"range of \[-1, 0\], but got 1"):
        torch.batch_norm_update_stats(T(x[0, 0]), None, None, 0.1)


# ---- slice_inverse, hash_tensor, from_file, get_device_module, is_distributed, masked -----------

def test_slice_inverse_views_base_geometry():
    base = torch.arange(12., requires_grad=True)
    b2 = base.reshape(3, 4) * 1
    y = torch.slice_inverse(b2[:, 1:3], b2, 1, 1, 3, 1)
    assert type(y.grad_fn).__name__ == "SliceInverseBackward0"
    assert_close(y, np.arange(12.).reshape(3, 4), rtol=0, atol=0)
    (y * torch.arange(12.).reshape(3, 4)).sum().backward()
    assert_close(base.grad, np.arange(12.), rtol=0, atol=0)
    x = torch.arange(12.).reshape(3, 4)
    v = torch.slice_inverse(x, torch.zeros(3, 2), 1, 1, 3, 1)     # src's sizes and strides
    assert_close(v, np.arange(6.).reshape(3, 2), rtol=0, atol=0)
    v[2, 1] = 99.
    assert float(x[1, 1]) == 99.                                   # a view of x
    with pytest.raises(TypeError, match=r"slice_inverse\(\): argument 'src' \(position 2\) must "
                                        r"be Tensor, not int"):
        torch.slice_inverse(x, 3)


def _np_hash(a, axis=None, keepdims=False):
    a = np.asarray(a)
    bits = a.astype(np.float64 if a.dtype.kind == "f" else np.int64).view(np.uint64)
    return np.bitwise_xor.reduce(bits.reshape(-1) if axis is None else bits, axis=axis or 0,
                                 keepdims=keepdims)


def test_hash_tensor_xor_of_64bit_patterns():
    rng = np.random.default_rng(11)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    t = torch.tensor(a)
    r = torch.hash_tensor(t)
    assert r.dtype == torch.uint64 and r.shape == ()
    assert int(r) == int(_np_hash(a))
    assert int(t.hash_tensor()) == int(_np_hash(a))
    assert to_np(torch.hash_tensor(t, 1)).tolist() == _np_hash(a, 1).tolist()
    assert to_np(torch.hash_tensor(t, 0, keepdim=True)).tolist() == \
        _np_hash(a, 0, True).tolist()
    assert int(torch.hash_tensor(t, [0, 1])) == int(_np_hash(a))
    assert int(torch.hash_tensor(t.T)) == int(_np_hash(a))          # order-free (xor)
    assert int(torch.hash_tensor(torch.tensor([1, 2, 3]))) == 0     # 1 ^ 2 ^ 3
    assert int(torch.hash_tensor(torch.tensor([-1, 2], dtype=torch.int8))) == 2 ** 64 - 3
    assert int(torch.hash_tensor(torch.tensor([-0.0]))) == 2 ** 63  # the sign bit
    assert int(torch.hash_tensor(torch.tensor([True, False, True]))) == 0
    assert tuple(torch.hash_tensor(torch.zeros(0, 3), 1).shape) == (0,)
    with pytest.raises(RuntimeError, match="Expected reduction dim to be specified for "
                                           r"input.numel\(\) == 0"):
        torch.hash_tensor(torch.zeros(0, 3))
    with pytest.raises(IndexError, match="Expected reduction dim 0 to have non-zero size"):
        torch.hash_tensor(torch.zeros(0, 3), 0)
    with pytest.raises(RuntimeError, match="Unknown hash_tensor mode: 1"):
        torch.hash_tensor(t, mode=1)
    with pytest.raises(NotImplementedError, match="\"xor_sum_cpu\" not implemented for "
                                                  "'ComplexFloat'"):
        torch.hash_tensor(torch.tensor([1 + 2j]))


def test_from_file(tmp_path):
    p = str(tmp_path / "data.bin")
    np.arange(10, dtype=np.float32).tofile(p)
    assert_close(torch.from_file(p, size=4), np.arange(4.), rtol=0, atol=0)
    assert torch.from_file(p, size=4).dtype == torch.float32
    got = torch.from_file(p, size=3, dtype=torch.int32)
    assert to_np(got).tolist() == np.arange(3, dtype=np.float32).view(np.int32).tolist()
    assert tuple(torch.from_file(p).shape) == (0,)
    f8 = str(tmp_path / "f8.bin")
    np.array([0x38, 0x40, 0xc0], np.uint8).tofile(f8)          # e4m3fn bytes of 1, 2, -2
    assert to_np(torch.from_file(f8, size=3, dtype=torch.float8_e4m3fn).float()).tolist() == \
        [1., 2., -2.]
    priv = torch.from_file(p, False, 3)
    priv[1] = 200.
    assert np.fromfile(p, dtype=np.float32)[1] == 1.               # copy-on-write
    shared = torch.from_file(p, True, 3)
    shared[0] = 100.
    shared.add_(1)
    assert np.fromfile(p, dtype=np.float32)[:3].tolist() == [101., 2., 3.]
    q = str(tmp_path / "new.bin")
    z = torch.from_file(q, True, 3)
    assert to_np(z).tolist() == [0., 0., 0.]
    assert (tmp_path / "new.bin").stat().st_size == 12
    assert torch.from_file(p, size=2, requires_grad=True).requires_grad
    with pytest.raises(RuntimeError, match=r"size <40> is smaller than the required mapping "
                                           r"size <44>"):
        torch.from_file(p, size=11)
    with pytest.raises(RuntimeError, match="unable to open file .* in read-only mode: No such "
                                           "file or directory"):
        torch.from_file(str(tmp_path / "missing.bin"), size=2)
    with pytest.raises(TypeError, match=r"from_file\(\): argument 'filename' \(position 1\) "
                                        r"must be str, not int"):
        torch.from_file(3, size=2)


def test_get_device_module_and_is_distributed():
    assert torch.get_device_module("cpu") is torch.cpu
    assert torch.get_device_module(torch.device("cuda")) is torch.cuda
    assert torch.get_device_module() is (torch.cuda if torch.cuda.is_available() else torch.cpu)
    with pytest.raises(RuntimeError, match="does not have a corresponding module registered as "
                                           "'torch.meta'"):
        torch.get_device_module("meta")
    with pytest.raises(RuntimeError, match="Invalid value of device '0', expect torch.device, "
                                           "str, or None"):
        torch.get_device_module(0)
    assert torch.is_distributed(torch.ones(2)) is False
    with pytest.raises(TypeError, match=r"is_distributed\(\): argument 'input' \(position 1\) "
                                        r"must be Tensor, not int"):
        torch.is_distributed(3)


def test_masked_logaddexp():
    a, b = np.array([1., 2., 3., 0.5]), np.array([0.5, -1., 4., 2.])
    ma, mb = np.array([True, False, True, False]), np.array([True, True, False, False])
    got = torch.masked.logaddexp(T(a), T(b), input_mask=torch.tensor(ma),
                                 other_mask=torch.tensor(mb))
    want = np.logaddexp(np.where(ma, a, -np.inf), np.where(mb, b, -np.inf))
    assert_close(got, want, rtol=1e-12, atol=0)
    assert to_np(got)[3] == -np.inf
    assert_close(torch.masked.logaddexp(T(a), T(b)), np.logaddexp(a, b), rtol=1e-12)
    r = torch.masked.logaddexp(T(a).float(), T(b).float(), dtype=torch.float64)
    assert r.dtype == torch.float64
    x = T(a, True)
    y = torch.masked.logaddexp(x, T(b), input_mask=torch.tensor([1, 0, 1, 0]))  # int mask
    assert type(y.grad_fn).__name__ == "LogaddexpBackward0"
    y.sum().backward()
    e = np.exp(a - np.logaddexp(a, b)) * ma
    assert_close(x.grad, e, rtol=1e-12, atol=1e-15)
    with pytest.raises(NotImplementedError, match="\"logaddexp_cpu\" not implemented for 'Long'"):
        torch.masked.logaddexp(torch.tensor([1, 2]), torch.tensor([1, 2]))


# ---- Tensor.is_set_to, storage_type, module_load, record_stream, grad_dtype, name ---------------

def test_is_set_to_storage_type_name():
    x = torch.arange(6.).reshape(2, 3)
    assert x.is_set_to(x) and x.is_set_to(x.view(2, 3)) and x.is_set_to(x.detach())
    assert x[1].is_set_to(x[1])
    assert not x.is_set_to(x.view(6)) and not x.is_set_to(x.T)
    assert not x.is_set_to(x.clone()) and not x[0].is_set_to(x[1])
    assert not torch.empty(0).is_set_to(torch.empty(0))
    y = torch.empty(0)
    y.set_(x)
    assert y.is_set_to(x)
    with pytest.raises(TypeError, match=r"is_set_to\(\): argument 'tensor' \(position 1\) must "
                                        r"be Tensor, not int"):
        x.is_set_to(3)
    with pytest.warns(UserWarning, match="TypedStorage is deprecated"):
        assert x.storage_type() is torch.FloatStorage
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.tensor([1]).storage_type() is torch.LongStorage
        assert torch.tensor([True]).storage_type() is torch.BoolStorage
        assert torch.tensor([1.]).bfloat16().storage_type() is torch.BFloat16Storage
        assert torch.tensor([1], dtype=torch.uint16).storage_type() is None
    assert x.name is None and torch.nn.Parameter(x).name is None
    with pytest.raises(AttributeError, match="attribute 'name' of 'torch._C.TensorBase' objects "
                                             "is not writable"):
        x.name = "a"


def test_module_load_and_record_stream():
    x = torch.arange(6.).reshape(2, 3)
    w = torch.zeros(2, 3)
    r = w.module_load(x)
    assert r is not x and r is not w and not r.requires_grad
    assert_close(w, np.arange(6.).reshape(2, 3), rtol=0, atol=0)       # copied into self
    w.module_load(3)
    assert_close(w, np.full((2, 3), 3.), rtol=0, atol=0)
    p = torch.nn.Parameter(torch.zeros(2, 3))
    a = p.module_load(x, assign=True)
    assert type(a) is torch.Tensor and not a.requires_grad
    assert_close(a, np.arange(6.).reshape(2, 3), rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        p.module_load(x)
    with pytest.raises(NotImplementedError, match="Could not run 'aten::record_stream' with "
                                                  "arguments from the 'CPU' backend"):
        x.record_stream(torch.Stream("cpu"))
    with pytest.raises(RuntimeError, match="unknown parameter type"):
        x.record_stream(None)


def test_grad_dtype():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    assert a.grad_dtype == torch.float32 and torch.tensor([1.]).grad_dtype == torch.float32
    with pytest.raises(RuntimeError, match="grad_dtype can only be accessed on leaf tensors."):
        (a * 2).grad_dtype
    a.grad_dtype = torch.float16
    (a * 3).sum().backward()
    assert a.grad.dtype == torch.float16 and a.grad_dtype == torch.float16
    assert to_np(a.grad).tolist() == [3., 3.]
    (a * 3).sum().backward()                                        # accumulates as float16
    assert a.grad.dtype == torch.float16 and to_np(a.grad).tolist() == [6., 6.]
    with pytest.raises(RuntimeError, match="Cannot set grad_dtype to 'Double' because there is "
                                           "already a gradient with dtype 'c10::Half'"):
        a.grad_dtype = torch.float64
    assert a.grad_dtype == torch.float16                            # unchanged
    b = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="attempting to assign a gradient with dtype 'double' "
                                           "to a tensor with grad_dtype 'Float'"):
        b.grad = torch.ones(2, dtype=torch.float64)
    b.grad_dtype = None                                             # any dtype
    b.grad = torch.ones(2, dtype=torch.float64)
    assert b.grad.dtype == torch.float64 and b.grad_dtype is None
    with pytest.raises(RuntimeError, match="grad_dtype can only be set on leaf tensors."):
        (b * 2).grad_dtype = torch.float16
    with pytest.raises(RuntimeError, match="grad_dtype must be a torch.dtype or None, but got "
                                           "str"):
        b.grad_dtype = "float16"
    assert b.detach().grad_dtype == torch.float32                  # not inherited
    c = torch.tensor([1.0, 2.0], requires_grad=True)
    c.grad_dtype = torch.int64
    with pytest.raises(RuntimeError, match="cannot be cast to the leaf's grad_dtype"):
        (c * 2).sum().backward()


# ---- the sub-byte and bits dtypes (dtype objects only) ------------------------------------------

def test_sub_byte_and_bits_dtypes():
    import pickle
    for i in range(1, 8):
        u, s = getattr(torch, f"uint{i}"), getattr(torch, f"int{i}")
        assert repr(u) == str(u) == f"torch.uint{i}" and repr(s) == f"torch.int{i}"
        assert (u.itemsize, u.is_floating_point, u.is_signed, u.is_complex) == (1, False, False,
                                                                                False)
        assert (s.itemsize, s.is_floating_point, s.is_signed) == (1, False, True)
        assert isinstance(u, torch.dtype) and u.to_real() is u and u != torch.uint8
        assert pickle.loads(pickle.dumps(s)) is s
    for n in ("bits1x8", "bits2x4", "bits4x2", "bits8", "bits16"):
        d = getattr(torch, n)
        assert repr(d) == f"torch.{n}" and d.itemsize == (2 if n == "bits16" else 1)
        assert not d.is_floating_point
        with pytest.raises(RuntimeError, match="Bits types are undefined"):
            d.is_signed
    f4 = torch.float4_e2m1fn_x2
    assert (f4.itemsize, f4.is_floating_point, f4.is_signed) == (1, True, True)
    with pytest.raises(RuntimeError, match="isSignedType not supported for quantized types"):
        torch.quint2x4.is_signed
    with pytest.raises(RuntimeError, match="Unknown Complex ScalarType for UInt4"):
        torch.uint4.to_complex()
    assert torch.promote_types(torch.int3, torch.int3) is torch.int3
    assert torch.promote_types(torch.uint1, torch.float32) is torch.float32
    with pytest.raises(RuntimeError, match="Promotion for uint16, uint32, uint64 types is not "
                                           "supported, attempted to promote UInt1 and Byte"):
        torch.promote_types(torch.uint1, torch.uint8)
    with pytest.raises(RuntimeError, match="Promotion from Bits8 and Byte is unsupported."):
        torch.promote_types(torch.bits8, torch.uint8)
    with pytest.raises(TypeError, match=r"torch.iinfo\(\) requires an integer input type"):
        torch.iinfo(torch.int4)
    with pytest.raises(TypeError, match=r"torch.finfo\(\) requires a floating point input type"):
        torch.finfo(torch.uint4)
    # Kiln has no tensors of them: every tensor path refuses (not silently another dtype)
    for make in (lambda: torch.empty(2, dtype=torch.uint4),
                 lambda: torch.zeros(2, dtype=torch.bits8),
                 lambda: torch.zeros(4, dtype=torch.uint8).view(torch.int4),
                 lambda: torch.ones(2).to(torch.float4_e2m1fn_x2)):
        with pytest.raises(NotImplementedError, match="Kiln has no tensors of dtype"):
            make()


def test_tensor_to_padded_tensor():
    nt = torch.nested.nested_tensor([torch.tensor([1., 2.]), torch.tensor([3., 4., 5.])])
    assert to_np(nt.to_padded_tensor(-1.0)).tolist() == [[1., 2., -1.], [3., 4., 5.]]
    assert to_np(nt.to_padded_tensor(0.0, (2, 4))).tolist() == [[1., 2., 0., 0.],
                                                                 [3., 4., 5., 0.]]
    with pytest.raises(NotImplementedError, match="Could not run 'aten::to_padded_tensor'"):
        torch.ones(2).to_padded_tensor(0.0)
