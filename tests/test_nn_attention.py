"""scaled_dot_product_attention, MultiheadAttention and Transformer layers against a NumPy
softmax(Q K^T / sqrt(d)) V reference."""
import math

import numpy as np
import pytest

import framework as torch
from framework import nn
import framework.nn.functional as F
from framework.autograd import gradcheck
from conftest import assert_close, to_np


def T(a, rg=False):
    return torch.tensor(np.asarray(a, np.float64), requires_grad=rg)


@pytest.fixture
def r():
    return np.random.default_rng(5)


def np_softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_attention(q, k, v, mask=None, scale=None):
    s = q @ np.swapaxes(k, -1, -2) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if mask is not None:
        s = s + mask
    return np_softmax(s) @ v


def np_mha(q, k, v, m, mask=None):
    """Seq-first (L, N, E) MultiheadAttention reference with m's weights."""
    E, H = m.embed_dim, m.num_heads
    wi, bi = to_np(m.in_proj_weight), to_np(m.in_proj_bias)
    Q, K, V = q @ wi[:E].T + bi[:E], k @ wi[E:2 * E].T + bi[E:2 * E], v @ wi[2 * E:].T + bi[2 * E:]
    L, N, _ = q.shape
    S = k.shape[0]
    hd = E // H
    sp = lambda x, n: x.reshape(n, N, H, hd).transpose(1, 2, 0, 3)  # noqa: E731   N,H,n,hd
    s = sp(Q, L) @ sp(K, S).transpose(0, 1, 3, 2) / math.sqrt(hd)
    if mask is not None:
        s = s + mask
    w = np_softmax(s)
    o = (w @ sp(V, S)).transpose(2, 0, 1, 3).reshape(L, N, E)
    return o @ to_np(m.out_proj.weight).T + to_np(m.out_proj.bias), w


def test_sdpa_values_and_masks(r):
    q, k, v = r.standard_normal((2, 3, 4, 5)), r.standard_normal((2, 3, 6, 5)), \
        r.standard_normal((2, 3, 6, 7))
    assert_close(F.scaled_dot_product_attention(T(q), T(k), T(v)), np_attention(q, k, v),
                 atol=1e-12)
    assert_close(F.scaled_dot_product_attention(T(q), T(k), T(v), scale=0.3),
                 np_attention(q, k, v, scale=0.3), atol=1e-12)
    # bool mask: True takes part; float mask is added
    bm = r.random((4, 6)) > 0.4
    bm[:, 0] = True
    assert_close(F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=torch.tensor(bm)),
                 np_attention(q, k, v, np.where(bm, 0, -np.inf)), atol=1e-12)
    fm = r.standard_normal((4, 6))
    assert_close(F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=T(fm)),
                 np_attention(q, k, v, fm), atol=1e-12)
    causal = np.where(np.tril(np.ones((4, 6), bool)), 0, -np.inf)
    assert_close(F.scaled_dot_product_attention(T(q), T(k), T(v), is_causal=True),
                 np_attention(q, k, v, causal), atol=1e-12)


def test_sdpa_hand_values():
    # one query that matches key 0 strongly: output ~ value 0
    q = torch.tensor([[[10., 0.]]])
    k = torch.tensor([[[10., 0.], [0., 10.]]])
    v = torch.tensor([[[1., 2.], [3., 4.]]])
    out = F.scaled_dot_product_attention(q, k, v)
    p = 1 / (1 + math.exp(-100 / math.sqrt(2)))
    assert_close(out, [[[p * 1 + (1 - p) * 3, p * 2 + (1 - p) * 4]]], atol=1e-6)
    # equal scores average the values
    out = F.scaled_dot_product_attention(torch.zeros(1, 1, 2), torch.zeros(1, 2, 2), v)
    assert out.tolist() == [[[2.0, 3.0]]]


def test_sdpa_dropout_and_gradcheck(r):
    q, k, v = (T(r.standard_normal(s), True) for s in [(2, 3, 4), (2, 5, 4), (2, 5, 3)])
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                     (q, k, v))
    torch.manual_seed(0)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    assert not np.allclose(to_np(a), to_np(b))
    # PyTorch 2.13 applies an explicit attn_mask together with is_causal (no error)
    both = F.scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(3, 5, dtype=torch.bool),
                                          is_causal=True)
    np.testing.assert_allclose(to_np(both), to_np(F.scaled_dot_product_attention(
        q, k, v, is_causal=True)), rtol=1e-12, atol=1e-12)
    with pytest.raises(RuntimeError):
        F.scaled_dot_product_attention(q, T(r.standard_normal((2, 5, 3))), v)


def test_multihead_attention_matches_numpy(r):
    torch.manual_seed(0)
    m = nn.MultiheadAttention(8, 2).double()
    assert repr(m) == ("MultiheadAttention(\n  (out_proj): NonDynamicallyQuantizableLinear("
                       "in_features=8, out_features=8, bias=True)\n)")
    assert [n for n, _ in m.named_parameters()] == \
        ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    assert np.all(to_np(m.in_proj_bias) == 0) and np.all(to_np(m.out_proj.bias) == 0)
    bound = math.sqrt(6 / (8 + 24))             # xavier_uniform_ on the (24, 8) in_proj_weight
    assert np.abs(to_np(m.in_proj_weight)).max() <= bound
    with torch.no_grad():
        m.in_proj_bias.copy_(T(r.standard_normal(24)))
        m.out_proj.bias.copy_(T(r.standard_normal(8)))
    q, k, v = r.standard_normal((3, 2, 8)), r.standard_normal((5, 2, 8)), r.standard_normal((5, 2, 8))
    out, w = m(T(q), T(k), T(v))
    ro, rw = np_mha(q, k, v, m)
    assert out.shape == (3, 2, 8) and w.shape == (2, 3, 5)
    assert_close(out, ro, atol=1e-12)
    assert_close(w, rw.mean(1), atol=1e-12)
    out2, w2 = m(T(q), T(k), T(v), average_attn_weights=False)
    assert_close(w2, rw, atol=1e-12)
    assert m(T(q), T(k), T(v), need_weights=False)[1] is None
    # masks: key_padding_mask True = ignore that key; bool attn_mask True = not allowed
    kpm = np.zeros((2, 5), bool)
    kpm[1, 3:] = True
    am = np.zeros((3, 5), bool)
    am[0, 1] = True
    out, w = m(T(q), T(k), T(v), key_padding_mask=torch.tensor(kpm), attn_mask=torch.tensor(am),
               average_attn_weights=False)
    add = np.where(am, -np.inf, 0)[None, None] + np.where(kpm, -np.inf, 0)[:, None, None, :]
    ro, rw = np_mha(q, k, v, m, add)
    assert_close(out, ro, atol=1e-12)
    assert_close(w, rw, atol=1e-12)
    assert np.all(to_np(w)[1, :, :, 3:] == 0)


def test_multihead_attention_batch_first_kdim_unbatched(r):
    m = nn.MultiheadAttention(6, 3, batch_first=True).double()
    q = r.standard_normal((2, 4, 6))
    out_bf, _ = m(T(q), T(q), T(q))
    m.batch_first = False
    out_sf, _ = m(T(q.transpose(1, 0, 2)), T(q.transpose(1, 0, 2)), T(q.transpose(1, 0, 2)))
    assert_close(out_bf, to_np(out_sf).transpose(1, 0, 2), atol=1e-12)
    # unbatched (L, E)
    o1, w1 = m(T(q[0]), T(q[0]), T(q[0]))
    assert o1.shape == (4, 6) and w1.shape == (4, 4)
    assert_close(o1, to_np(out_bf)[0], atol=1e-12)
    kv = nn.MultiheadAttention(8, 2, kdim=3, vdim=5)
    assert [n for n, _ in kv.named_parameters()] == \
        ["q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "out_proj.weight",
         "out_proj.bias"]
    assert kv.in_proj_weight is None and kv.k_proj_weight.shape == (8, 3)
    o, _ = kv(torch.randn(4, 2, 8), torch.randn(6, 2, 3), torch.randn(6, 2, 5))
    assert o.shape == (4, 2, 8)


def test_multihead_attention_gradcheck_and_errors(r):
    m = nn.MultiheadAttention(4, 2).double()
    q = T(r.standard_normal((2, 1, 4)), True)
    k = T(r.standard_normal((3, 1, 4)), True)
    assert gradcheck(lambda q, k: m(q, k, k)[0], (q, k))
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        nn.MultiheadAttention(6, 4)
    with pytest.raises(AssertionError):
        m(torch.randn(2, 1, 3, 4).double(), k, k)
    out, _ = m(q, k, k)
    out.sum().backward()
    assert m.in_proj_weight.grad.shape == (12, 4) and np.abs(to_np(m.in_proj_weight.grad)).sum() > 0


def np_layer_norm(x, w, b, eps=1e-5):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * w + b


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_layer_matches_numpy(r, norm_first):
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, norm_first=norm_first).double()
    layer.eval()
    x = r.standard_normal((5, 2, 8))
    y = layer(T(x))
    sa = lambda z: np_mha(z, z, z, layer.self_attn)[0]  # noqa: E731
    ff = lambda z: (np.maximum(z @ to_np(layer.linear1.weight).T + to_np(layer.linear1.bias), 0)  # noqa: E731
                    @ to_np(layer.linear2.weight).T + to_np(layer.linear2.bias))
    n1 = lambda z: np_layer_norm(z, to_np(layer.norm1.weight), to_np(layer.norm1.bias))  # noqa: E731
    n2 = lambda z: np_layer_norm(z, to_np(layer.norm2.weight), to_np(layer.norm2.bias))  # noqa: E731
    if norm_first:
        z = x + sa(n1(x))
        ref = z + ff(n2(z))
    else:
        z = n1(x + sa(x))
        ref = n2(z + ff(z))
    assert_close(y, ref, atol=1e-12)


def test_transformer_encoder_stack_and_repr(r):
    layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True,
                                       activation="gelu")
    enc = nn.TransformerEncoder(layer, num_layers=2)
    assert len(enc.layers) == 2 and enc.layers[0] is not enc.layers[1]
    assert enc.layers[0].self_attn.in_proj_weight is not layer.self_attn.in_proj_weight
    np.testing.assert_array_equal(to_np(enc.layers[0].linear1.weight), to_np(layer.linear1.weight))
    enc.eval()
    x = torch.randn(3, 5, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(5)
    assert mask[0].tolist() == [0.0] + [-math.inf] * 4
    y = enc(x, mask=mask)
    assert y.shape == (3, 5, 8)
    # causal: the first position only sees itself, so changing later tokens leaves it alone
    x2 = x.clone()
    x2[:, 1:] = torch.randn(3, 4, 8)
    assert_close(enc(x2, mask=mask)[:, 0], to_np(y)[:, 0], atol=1e-5)
    text = repr(nn.TransformerEncoderLayer(8, 2, 16))
    assert text.splitlines()[:4] == [
        "TransformerEncoderLayer(",
        "  (self_attn): MultiheadAttention(",
        "    (out_proj): NonDynamicallyQuantizableLinear(in_features=8, out_features=8, bias=True)",
        "  )"]
    assert "  (norm1): LayerNorm((8,), eps=1e-05, elementwise_affine=True, bias=True)" in text
    assert "  (dropout1): Dropout(p=0.1, inplace=False)" in text
    with pytest.raises(RuntimeError, match="activation should be relu/gelu"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")


def test_self_attn_seed_module_is_identity_at_init(r):
    # seed catalog-000 11.5: SAGAN Self_Attn with gamma = 0 returns its input exactly
    class Self_Attn(nn.Module):
        def __init__(self, in_dim):
            super().__init__()
            self.query_conv = nn.Conv2d(in_channels=in_dim, out_channels=in_dim // 8, kernel_size=1)
            self.key_conv = nn.Conv2d(in_channels=in_dim, out_channels=in_dim // 8, kernel_size=1)
            self.value_conv = nn.Conv2d(in_channels=in_dim, out_channels=in_dim, kernel_size=1)
            self.gamma = nn.Parameter(torch.zeros(1))
            self.softmax = nn.Softmax(dim=-1)

        def forward(self, x):
            B, C, W, H = x.size()
            proj_query = self.query_conv(x).view(B, -1, W * H).permute(0, 2, 1)
            proj_key = self.key_conv(x).view(B, -1, W * H)
            energy = torch.bmm(proj_query, proj_key)
            attention = self.softmax(energy)
            proj_value = self.value_conv(x).view(B, -1, W * H)
            out = torch.bmm(proj_value, attention.permute(0, 2, 1))
            out = out.view(B, C, W, H)
            return self.gamma * out + x

    m = Self_Attn(64)
    x = torch.randn(2, 64, 4, 5)
    y = m(x)
    assert y.shape == (2, 64, 4, 5)
    np.testing.assert_array_equal(to_np(y), to_np(x))
    y.sum().backward()
    assert m.gamma.grad is not None and m.query_conv.weight.grad is not None


def test_against_torch(r):
    real = pytest.importorskip("torch")
    ours, theirs = nn.MultiheadAttention(8, 4).double(), real.nn.MultiheadAttention(8, 4).double()
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters()):
            p.copy_(torch.tensor(q.detach().numpy()))
    q = r.standard_normal((3, 2, 8))
    k = r.standard_normal((4, 2, 8))
    kpm = np.array([[False] * 4, [False, False, True, True]])
    a = ours(T(q), T(k), T(k), key_padding_mask=torch.tensor(kpm))
    b = theirs(real.tensor(q), real.tensor(k), real.tensor(k), key_padding_mask=real.tensor(kpm))
    assert_close(a[0], b[0].detach().numpy(), atol=1e-12)
    assert_close(a[1], b[1].detach().numpy(), atol=1e-12)
