"""Regression tests from the nn layer-module sweep (Kiln vs PyTorch 2.13): RNNs on
PackedSequence inputs, RNN/RNNCell argument errors, scaled_dot_product_attention with an explicit
mask plus is_causal, MultiheadAttention weight-shape checks, EmbeddingBag.from_pretrained and
embedding_bag argument errors, CircularPad/ChannelShuffle input checks. References are float64
NumPy computed here; an optional cross-check against the real PyTorch runs where installed."""
import numpy as np
import pytest

import framework as torch
import framework.nn as nn
import framework.nn.functional as F
from framework.nn.utils import rnn as rnn_utils


def T(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def N(t):
    return t.detach().numpy()


# ---- NumPy reference RNNs -------------------------------------------------------------------

def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _ref_rnn(mod, x, h0=None, c0=None):
    """One unbatched sequence x (L, I) through mod's weights in NumPy; returns (out, h_n, c_n)."""
    mode = {nn.LSTM: "LSTM", nn.GRU: "GRU", nn.RNN: "RNN"}[type(mod)]
    D = 2 if mod.bidirectional else 1
    H = mod.hidden_size
    Hr = mod.proj_size or H
    P = {k: N(v) for k, v in mod.named_parameters()}
    hn, cn = [], []
    for layer in range(mod.num_layers):
        outs = []
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            wi, wh = P["weight_ih" + sfx], P["weight_hh" + sfx]
            bi = P.get("bias_ih" + sfx, np.zeros(wi.shape[0]))
            bh = P.get("bias_hh" + sfx, np.zeros(wi.shape[0]))
            k = layer * D + d
            h = np.zeros(Hr) if h0 is None else h0[k].copy()
            c = np.zeros(H) if c0 is None else c0[k].copy()
            ys = [None] * len(x)
            for t in (range(len(x) - 1, -1, -1) if d else range(len(x))):
                gi, gh = wi @ x[t] + bi, wh @ h + bh
                if mode == "RNN":
                    h = np.tanh(gi + gh)
                elif mode == "GRU":
                    r = _sig(gi[:H] + gh[:H])
                    z = _sig(gi[H:2 * H] + gh[H:2 * H])
                    n = np.tanh(gi[2 * H:] + r * gh[2 * H:])
                    h = (1 - z) * n + z * h
                else:
                    g = gi + gh
                    c = _sig(g[H:2 * H]) * c + _sig(g[:H]) * np.tanh(g[2 * H:3 * H])
                    h = _sig(g[3 * H:]) * np.tanh(c)
                    if mod.proj_size:
                        h = P["weight_hr" + sfx] @ h
                ys[t] = h
            outs.append(np.stack(ys))
            hn.append(h)
            cn.append(c)
        x = np.concatenate(outs, axis=1)
    return x, np.stack(hn), np.stack(cn)


@pytest.mark.parametrize("cls,kw", [
    (nn.GRU, dict(num_layers=2, bidirectional=True)),
    (nn.LSTM, dict(num_layers=1, bidirectional=True)),
    (nn.LSTM, dict(num_layers=2, proj_size=2)),
    (nn.RNN, dict(num_layers=2, bidirectional=True, bias=False)),
])
@pytest.mark.parametrize("batch_first", [False, True])
def test_rnn_packed_unsorted_matches_per_sequence_reference(cls, kw, batch_first):
    torch.manual_seed(0)
    mod = cls(3, 4, batch_first=batch_first, **kw).double()
    rs = np.random.RandomState(0)
    lens = [3, 5, 2]                                    # unsorted: enforce_sorted=False
    xs = [rs.randn(n, 3) for n in lens]
    padded = np.zeros((3, 5, 3) if batch_first else (5, 3, 3))
    for b, x in enumerate(xs):
        if batch_first:
            padded[b, :len(x)] = x
        else:
            padded[:len(x), b] = x
    D = 2 if mod.bidirectional else 1
    Hr = mod.proj_size or 4
    h0 = rs.randn(mod.num_layers * D, 3, Hr)
    c0 = rs.randn(mod.num_layers * D, 3, 4)
    xin = T(padded, grad=True)
    packed = rnn_utils.pack_padded_sequence(xin, lens, batch_first=batch_first,
                                            enforce_sorted=False)
    hx = (T(h0), T(c0)) if cls is nn.LSTM else T(h0)
    out, hn = mod(packed, hx)
    assert isinstance(out, rnn_utils.PackedSequence)
    np.testing.assert_array_equal(N(out.batch_sizes), [3, 3, 2, 1, 1])
    np.testing.assert_array_equal(N(out.unsorted_indices), N(packed.unsorted_indices))
    o, olens = rnn_utils.pad_packed_sequence(out, batch_first=batch_first, total_length=6,
                                            padding_value=-7.0)
    np.testing.assert_array_equal(N(olens), lens)
    o = N(o) if batch_first else N(o).transpose(1, 0, 2)
    assert o.shape == (3, 6, D * Hr)
    hn, cn = (hn if cls is nn.LSTM else (hn, None))
    for b, x in enumerate(xs):
        ref, rh, rc = _ref_rnn(mod, x, h0[:, b], c0[:, b])
        np.testing.assert_allclose(o[b, :len(x)], ref, rtol=1e-10, atol=1e-12)
        assert (o[b, len(x):] == -7.0).all()
        np.testing.assert_allclose(N(hn)[:, b], rh, rtol=1e-10, atol=1e-12)
        if cn is not None:
            np.testing.assert_allclose(N(cn)[:, b], rc, rtol=1e-10, atol=1e-12)
    # gradients: padding positions of the input get exactly zero
    (out.data * T(rs.randn(*out.data.shape))).sum().backward()
    g = N(xin.grad) if batch_first else N(xin.grad).transpose(1, 0, 2)
    for b, n in enumerate(lens):
        assert (g[b, n:] == 0).all() and np.abs(g[b, :n]).sum() > 0


def test_pack_sequence_through_lstm_without_state():
    torch.manual_seed(1)
    mod = nn.LSTM(2, 3).double()
    rs = np.random.RandomState(1)
    xs = [rs.randn(n, 2) for n in (2, 4)]
    out, (h, c) = mod(rnn_utils.pack_sequence([T(x) for x in xs], enforce_sorted=False))
    np.testing.assert_array_equal(N(out.batch_sizes), [2, 2, 1, 1])
    np.testing.assert_array_equal(N(out.sorted_indices), [1, 0])
    for b, x in enumerate(xs):
        _, rh, rc = _ref_rnn(mod, x)
        np.testing.assert_allclose(N(h)[:, b], rh, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(N(c)[:, b], rc, rtol=1e-10, atol=1e-12)


def test_rnn_packed_bad_hidden_shape_raises():
    mod = nn.GRU(3, 4).double()
    p = rnn_utils.pack_sequence([T(np.ones((2, 3)))])
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        mod(p, T(np.zeros((1, 2, 4))))
    with pytest.raises(RuntimeError, match="input_size"):
        mod(rnn_utils.pack_sequence([T(np.ones((2, 5)))]))


def test_rnn_input_dtype_mismatch_is_value_error():
    mod = nn.RNN(3, 4)                                  # float32 weights
    with pytest.raises(ValueError, match="does not match weight dtype"):
        mod(torch.zeros(2, 1, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="does not match weight dtype"):
        mod(torch.ones(2, 1, 3, dtype=torch.int64))


def test_rnn_cell_hidden_errors():
    cell = nn.RNNCell(3, 4).double()
    x = T(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="batch size"):       # 1-D hidden for batched input
        cell(x, T(np.zeros(4)))
    with pytest.raises(ValueError, match="1D or 2D"):
        cell(x, T(np.zeros((1, 2, 4))))
    with pytest.raises(RuntimeError, match="hidden_size"):
        nn.LSTMCell(3, 4).double()(x, (T(np.zeros((2, 5))), T(np.zeros((2, 4)))))
    with pytest.raises(ValueError, match=r"hx\[1\]"):
        nn.LSTMCell(3, 4).double()(x, (T(np.zeros((2, 4))), T(1.0)))


def test_pad_sequence_bad_padding_side_is_runtime_error():
    with pytest.raises(RuntimeError, match="padding_side"):
        rnn_utils.pad_sequence([T([1.0, 2.0])], padding_side="middle")


# ---- attention ------------------------------------------------------------------------------

def _ref_sdpa(q, k, v, keep):
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    s = np.where(keep, s, -np.inf)
    w = np.exp(s - s.max(-1, keepdims=True))
    return (w / w.sum(-1, keepdims=True)) @ v


def test_sdpa_explicit_mask_with_is_causal_raises_on_the_math_path_and_combines_on_flash():
    """PyTorch 2.13 on the CPU: a mask together with is_causal raises where the math kernel
    runs (3-D inputs, unequal head dims) and both apply where the flash kernel runs (4-D,
    equal head dims, no dropout)."""
    rs = np.random.RandomState(2)
    q, k, v = rs.randn(2, 3, 4), rs.randn(2, 4, 4), rs.randn(2, 4, 5)
    m = np.array([[True, False, True, True], [True, True, False, True], [False, True, True, True]])
    with pytest.raises(RuntimeError, match="Explicit attn_mask should not be set when is_causal"):
        F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=torch.tensor(m),
                                       is_causal=True)
    v4 = rs.randn(2, 1, 4, 4)
    out = F.scaled_dot_product_attention(T(q[:, None]), T(k[:, None]), T(v4),
                                         attn_mask=torch.tensor(m), is_causal=True)
    causal = np.tril(np.ones((3, 4), dtype=bool))
    np.testing.assert_allclose(N(out), _ref_sdpa(q[:, None], k[:, None], v4, m & causal),
                               rtol=1e-12, atol=1e-12)
    fm = rs.randn(3, 4)                                 # float mask: added, then causal
    out = F.scaled_dot_product_attention(T(q[:, None]), T(k[:, None]), T(v4), attn_mask=T(fm),
                                         is_causal=True)
    s = q[:, None] @ np.swapaxes(k[:, None], -1, -2) / 2.0 + fm
    s = np.where(causal, s, -np.inf)
    w = np.exp(s - s.max(-1, keepdims=True))
    np.testing.assert_allclose(N(out), (w / w.sum(-1, keepdims=True)) @ v4, rtol=1e-12,
                               atol=1e-12)


def test_mha_separate_proj_weight_shape_is_assertion_error():
    mha = nn.MultiheadAttention(8, 2, kdim=5, vdim=5).double()
    q = T(np.zeros((3, 2, 8)))
    with pytest.raises(AssertionError, match="key weights shape"):
        mha(q, T(np.zeros((4, 2, 6))), T(np.zeros((4, 2, 5))))
    with pytest.raises(AssertionError, match="value weights shape"):
        mha(q, T(np.zeros((4, 2, 5))), T(np.zeros((4, 2, 7))))


# ---- embeddings -----------------------------------------------------------------------------

def test_embedding_bag_from_pretrained():
    w = np.arange(15.0).reshape(5, 3)
    bag = nn.EmbeddingBag.from_pretrained(T(w), mode="max")
    assert bag.weight.requires_grad is False and bag.mode == "max"
    out = bag(torch.tensor([[0, 4], [3, 1]]))
    np.testing.assert_array_equal(N(out), [w[4], w[3]])
    bag = nn.EmbeddingBag.from_pretrained(T(w), freeze=False, mode="sum", padding_idx=1,
                                          include_last_offset=True)
    assert bag.weight.requires_grad is True and bag.padding_idx == 1
    out = bag(torch.tensor([1, 2, 2, 0]), torch.tensor([0, 2, 4]))
    np.testing.assert_array_equal(N(out), [w[2], w[2] + w[0]])
    assert out.grad_fn.name() == "EmbeddingBagBackward0"      # (PyTorch's, every mode)
    out.sum().backward()
    np.testing.assert_array_equal(N(bag.weight.grad)[:, 0], [1.0, 0.0, 2.0, 0.0, 0.0])
    with pytest.raises(AssertionError, match="2-dimensional"):
        nn.EmbeddingBag.from_pretrained(T(np.ones(3)))
    with pytest.raises(AssertionError, match="Shape of weight"):
        nn.EmbeddingBag(5, 3, _weight=T(np.ones((4, 3))))


def test_embedding_bag_argument_errors_leave_weight_unchanged():
    w = T(np.arange(15.0).reshape(5, 3))
    before = N(w).copy()
    with pytest.raises(ValueError, match="per_sample_weights"):
        F.embedding_bag(torch.tensor([1, 2, 3]), w, torch.tensor([0]), mode="sum",
                        per_sample_weights=T(np.ones(2)))
    with pytest.raises(RuntimeError, match="idx to be 5"):
        F.embedding_bag(torch.tensor([[1, 5]]), w, max_norm=1.0)
    with pytest.raises(ValueError, match="max mode does not support scaling"):
        F.embedding_bag(torch.tensor([[1, 2]]), w, mode="max", scale_grad_by_freq=True)
    np.testing.assert_array_equal(N(w), before)


# ---- padding / shuffles ---------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 3])
def test_circular_pad_rejects_wrong_rank_with_value_error(n):
    pad = getattr(nn, f"CircularPad{n}d")(1)
    with pytest.raises(ValueError, match=f"expected {n + 1}D or {n + 2}D input"):
        pad(T(np.zeros((1,) * (n + 3))))
    x = np.arange(3.0 ** n).reshape((1,) * 2 + (3,) * n)
    np.testing.assert_array_equal(N(pad(T(x))), np.pad(x, [(0, 0)] * 2 + [(1, 1)] * n,
                                                       mode="wrap"))


def test_channel_shuffle_input_checks():
    with pytest.raises(RuntimeError, match="> 2 dims"):
        nn.ChannelShuffle(2)(T(np.zeros((2, 4))))
    with pytest.raises(RuntimeError, match="must be positive"):
        nn.ChannelShuffle(0)(T(np.zeros((2, 4, 1))))
    x = np.arange(6.0).reshape(1, 6, 1)
    np.testing.assert_array_equal(N(nn.ChannelShuffle(2)(T(x))).ravel(), [0, 3, 1, 4, 2, 5])


# ---- optional cross-check against PyTorch ---------------------------------------------------

def test_packed_gru_cross_check_torch():
    pt = pytest.importorskip("torch", reason="optional cross-check against PyTorch")
    if pt is torch:
        pytest.skip("framework shadows torch")
    pt.manual_seed(0)
    ref = pt.nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True).double()
    mod = nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True).double()
    mod.load_state_dict({k: T(v.detach().numpy()) for k, v in ref.state_dict().items()})
    x = np.random.RandomState(3).randn(3, 5, 3)
    lens = [2, 5, 4]
    ro, rh = ref(pt.nn.utils.rnn.pack_padded_sequence(pt.tensor(x), lens, batch_first=True,
                                                      enforce_sorted=False))
    ko, kh = mod(rnn_utils.pack_padded_sequence(T(x), lens, batch_first=True,
                                                enforce_sorted=False))
    np.testing.assert_allclose(N(ko.data), ro.data.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(N(kh), rh.detach().numpy(), rtol=1e-10, atol=1e-12)
