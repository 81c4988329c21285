"""RNN / LSTM / GRU and their cells against hand-written NumPy float64 recurrences."""
import math

import numpy as np
import pytest

import framework as torch
from framework import nn
from framework.autograd import gradcheck
from conftest import assert_close, to_np


def T(a, rg=False):
    return torch.tensor(np.asarray(a, np.float64), requires_grad=rg)


def sig(x):
    return 1 / (1 + np.exp(-x))


def W(m, name):
    return to_np(getattr(m, name)).astype(np.float64)


def np_lstm_dir(x, h, c, wih, whh, bih, bhh):
    """x (L, N, I); gate order i, f, g, o."""
    outs = []
    H = h.shape[-1]
    for t in range(x.shape[0]):
        g = x[t] @ wih.T + bih + h @ whh.T + bhh
        i, f, gg, o = sig(g[:, :H]), sig(g[:, H:2 * H]), np.tanh(g[:, 2 * H:3 * H]), sig(g[:, 3 * H:])
        c = f * c + i * gg
        h = o * np.tanh(c)
        outs.append(h)
    return np.stack(outs), h, c


def np_gru_dir(x, h, wih, whh, bih, bhh):
    """gate order r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn))."""
    outs = []
    H = h.shape[-1]
    for t in range(x.shape[0]):
        gi = x[t] @ wih.T + bih
        gh = h @ whh.T + bhh
        r = sig(gi[:, :H] + gh[:, :H])
        z = sig(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        h = (1 - z) * n + z * h
        outs.append(h)
    return np.stack(outs), h


def np_rnn_dir(x, h, wih, whh, bih, bhh, act):
    outs = []
    for t in range(x.shape[0]):
        h = act(x[t] @ wih.T + bih + h @ whh.T + bhh)
        outs.append(h)
    return np.stack(outs), h


@pytest.fixture
def r():
    return np.random.default_rng(4)


def test_lstm_two_layers_matches_numpy(r):
    torch.manual_seed(0)
    m = nn.LSTM(3, 4, num_layers=2).double()
    assert repr(m) == "LSTM(3, 4, num_layers=2)"
    x = r.standard_normal((5, 2, 3))
    h0, c0 = r.standard_normal((2, 2, 4)), r.standard_normal((2, 2, 4))
    out, (hn, cn) = m(T(x), (T(h0), T(c0)))
    y, hs, cs = x, [], []
    for layer in range(2):
        sfx = f"_l{layer}"
        y, h, c = np_lstm_dir(y, h0[layer], c0[layer], W(m, "weight_ih" + sfx),
                              W(m, "weight_hh" + sfx), W(m, "bias_ih" + sfx), W(m, "bias_hh" + sfx))
        hs.append(h)
        cs.append(c)
    assert out.shape == (5, 2, 4) and hn.shape == (2, 2, 4) and cn.shape == (2, 2, 4)
    assert_close(out, y, atol=1e-12)
    assert_close(hn, np.stack(hs), atol=1e-12)
    assert_close(cn, np.stack(cs), atol=1e-12)


def test_gru_bidirectional_batch_first(r):
    m = nn.GRU(3, 4, bidirectional=True, batch_first=True).double()
    x = r.standard_normal((2, 6, 3))                 # (N, L, I)
    out, hn = m(T(x))
    xt = x.transpose(1, 0, 2)
    z = np.zeros((2, 4))
    yf, hf = np_gru_dir(xt, z, W(m, "weight_ih_l0"), W(m, "weight_hh_l0"), W(m, "bias_ih_l0"),
                        W(m, "bias_hh_l0"))
    yb, hb = np_gru_dir(xt[::-1], z, W(m, "weight_ih_l0_reverse"), W(m, "weight_hh_l0_reverse"),
                        W(m, "bias_ih_l0_reverse"), W(m, "bias_hh_l0_reverse"))
    ref = np.concatenate([yf, yb[::-1]], axis=2).transpose(1, 0, 2)
    assert out.shape == (2, 6, 8)
    assert_close(out, ref, atol=1e-12)
    assert_close(hn, np.stack([hf, hb]), atol=1e-12)


@pytest.mark.parametrize("nl,act", [("tanh", np.tanh), ("relu", lambda v: np.maximum(v, 0))])
def test_rnn_nonlinearity_and_unbatched(r, nl, act):
    m = nn.RNN(3, 5, nonlinearity=nl, bias=False).double()
    assert m.bias is False and not hasattr(m, "bias_ih_l0")
    assert [n for n, _ in m.named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    x = r.standard_normal((4, 3))                    # unbatched (L, I)
    h0 = r.standard_normal((1, 5))
    out, hn = m(T(x), T(h0))
    y, h = np_rnn_dir(x[:, None], h0, W(m, "weight_ih_l0"), W(m, "weight_hh_l0"), 0, 0, act)
    assert out.shape == (4, 5) and hn.shape == (1, 5)
    assert_close(out, y[:, 0], atol=1e-12)
    assert_close(hn, h, atol=1e-12)


def test_cells_match_numpy(r):
    x, h, c = r.standard_normal((3, 4)), r.standard_normal((3, 5)), r.standard_normal((3, 5))
    lc = nn.LSTMCell(4, 5).double()
    h1, c1 = lc(T(x), (T(h), T(c)))
    _, rh, rc = np_lstm_dir(x[None], h, c, W(lc, "weight_ih"), W(lc, "weight_hh"),
                            W(lc, "bias_ih"), W(lc, "bias_hh"))
    assert_close(h1, rh, atol=1e-12)
    assert_close(c1, rc, atol=1e-12)
    gc = nn.GRUCell(4, 5).double()
    _, rg = np_gru_dir(x[None], h, W(gc, "weight_ih"), W(gc, "weight_hh"), W(gc, "bias_ih"),
                       W(gc, "bias_hh"))
    assert_close(gc(T(x), T(h)), rg, atol=1e-12)
    rc_ = nn.RNNCell(4, 5, nonlinearity="relu").double()
    ref = np.maximum(x @ W(rc_, "weight_ih").T + W(rc_, "bias_ih") + h @ W(rc_, "weight_hh").T +
                     W(rc_, "bias_hh"), 0)
    assert_close(rc_(T(x), T(h)), ref, atol=1e-12)
    # no hidden state given: zeros; unbatched input gives unbatched output
    assert_close(gc(T(x[0])), np_gru_dir(x[None, :1], np.zeros((1, 5)), W(gc, "weight_ih"),
                                         W(gc, "weight_hh"), W(gc, "bias_ih"),
                                         W(gc, "bias_hh"))[1][0], atol=1e-12)
    assert repr(rc_) == "RNNCell(4, 5, nonlinearity=relu)"
    assert repr(nn.LSTMCell(3, 4, bias=False)) == "LSTMCell(3, 4, bias=False)"


def test_parameter_names_shapes_and_init():
    torch.manual_seed(0)
    m = nn.GRU(3, 4, 2, bidirectional=True)
    names = [n for n, _ in m.named_parameters()]
    assert names == [f"{w}_l{k}{s}" for k in range(2) for s in ("", "_reverse")
                     for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert m.weight_ih_l0.shape == (12, 3) and m.weight_ih_l1.shape == (12, 8)
    assert m.weight_hh_l1_reverse.shape == (12, 4)
    bound = 1 / math.sqrt(4)
    for p in m.parameters():
        assert np.abs(to_np(p)).max() <= bound
    assert to_np(m.weight_ih_l0).std() > bound / 4
    assert repr(m) == "GRU(3, 4, num_layers=2, bidirectional=True)"
    assert repr(nn.GRU(3, 4, 2, batch_first=True, dropout=0.5, bidirectional=True, bias=False)) == \
        "GRU(3, 4, num_layers=2, bias=False, batch_first=True, dropout=0.5, bidirectional=True)"
    assert repr(nn.LSTM(10, 20, num_layers=2)) == "LSTM(10, 20, num_layers=2)"
    assert repr(nn.RNN(3, 4, nonlinearity="relu")) == "RNN(3, 4)"
    lp = nn.LSTM(5, 4, proj_size=2)
    assert lp.weight_hr_l0.shape == (2, 4) and lp.weight_hh_l0.shape == (16, 2)
    out, (h, c) = lp(torch.randn(3, 2, 5))
    assert out.shape == (3, 2, 2) and h.shape == (1, 2, 2) and c.shape == (1, 2, 4)


def test_gradcheck_lstm_and_gru(r):
    m = nn.LSTM(2, 3).double()
    x = T(r.standard_normal((3, 2, 2)), True)
    names = [n for n, _ in m.named_parameters()]
    ps = [T(to_np(p), True) for p in m.parameters()]

    def f(x, *ws):
        for n, w in zip(names, ws):
            m._parameters[n] = w
        return m(x)[0]
    # through the Triton interpreter a full Jacobian takes a minute (108 inputs, each two
    # LSTM runs); there fast mode checks random projections of it, the cpu run checks it all
    fast = torch.get_default_device().type == "interpret"
    assert gradcheck(f, (x,) + tuple(ps), fast_mode=fast)
    g = nn.GRUCell(2, 3).double()
    h = T(r.standard_normal((2, 3)), True)
    assert gradcheck(lambda x, h: g(x, h), (T(r.standard_normal((2, 2)), True), h),
                     fast_mode=fast)


def test_backward_accumulates_into_parameters(r):
    m = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    out, _ = m(torch.randn(5, 2, 3))
    out.sum().backward()
    for n, p in m.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, n
        assert np.abs(to_np(p.grad)).sum() > 0, n


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    m = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = torch.randn(4, 2, 3)
    m.eval()
    a, b = m(x)[0], m(x)[0]
    np.testing.assert_array_equal(to_np(a), to_np(b))
    m.train()
    c, d = m(x)[0], m(x)[0]
    assert not np.allclose(to_np(c), to_np(d))


def test_rnn_bad_inputs():
    m = nn.LSTM(3, 4)
    x = torch.randn(5, 2, 3)
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size"):
        m(torch.randn(5, 2, 6))
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D, got 4D"):
        m(torch.randn(5, 2, 3, 3))
    with pytest.raises(RuntimeError, match="Expected hidden\\[0\\] size \\(1, 2, 4\\), got \\[1, 3, 4\\]"):
        m(x, (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)))
    with pytest.raises(RuntimeError, match="Expected hidden size \\(1, 2, 4\\), got \\[1, 3, 4\\]"):
        nn.GRU(3, 4)(x, torch.zeros(1, 3, 4))
    with pytest.raises(ValueError, match="dropout should be a number in range"):
        nn.LSTM(3, 4, dropout=2)
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        nn.RNN(3, 0)
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="Expected input to be 1D or 2D"):
        nn.LSTMCell(3, 4)(torch.randn(2, 2, 3))
    with pytest.raises(RuntimeError):
        nn.GRUCell(3, 4)(torch.randn(2, 5))


def test_against_torch(r):
    real = pytest.importorskip("torch")
    for name, kw in [("LSTM", dict(num_layers=2, bidirectional=True)),
                     ("GRU", dict(num_layers=2, batch_first=True)), ("RNN", dict(bias=False))]:
        ours, theirs = getattr(nn, name)(3, 4, **kw).double(), getattr(real.nn, name)(3, 4, **kw).double()
        with torch.no_grad():
            for p, q in zip(ours.parameters(), theirs.parameters()):
                p.copy_(torch.tensor(q.detach().numpy()))
        x = r.standard_normal((2, 5, 3))
        a, b = ours(T(x))[0], theirs(real.tensor(x))[0]
        assert_close(a, b.detach().numpy(), atol=1e-12)


def test_cell_hidden_shape_errors_use_atens_texts():
    # PyTorch's messages, with no class-name prefix; checked batch first, then hidden_size
    with pytest.raises(RuntimeError, match=r"^Input batch size 2 doesn't match hidden1 batch "
                                           r"size 3$"):
        nn.LSTMCell(3, 4)(torch.zeros(2, 3), (torch.zeros(2, 4), torch.zeros(3, 4)))
    with pytest.raises(RuntimeError, match=r"^hidden1 has inconsistent hidden_size: got 5, "
                                           r"expected 4$"):
        nn.LSTMCell(3, 4)(torch.zeros(2, 3), (torch.zeros(2, 4), torch.zeros(2, 5)))
    # unbatched input with a 2-D state: the state gains a batch dim of 1, so its rows show up
    # as the hidden size
    with pytest.raises(RuntimeError, match=r"^hidden0 has inconsistent hidden_size: got 2, "
                                           r"expected 4$"):
        nn.GRUCell(3, 4)(torch.zeros(3), torch.zeros(2, 4))
