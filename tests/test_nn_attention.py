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
    # 3-D inputs are PyTorch's MATH backend's, which refuses an attn_mask with is_causal
    # (test_sdpa_attn_mask_with_is_causal below: the 4-D inputs its CPU flash kernel takes)
    with pytest.raises(RuntimeError, match="Explicit attn_mask should not be set when "
                                           "is_causal=True"):
        F.scaled_dot_product_attention(*(C(to_np(t)) for t in (q, k, v)),
                                       attn_mask=C(np.ones((3, 5), bool)), is_causal=True)
    with pytest.raises(RuntimeError):
        F.scaled_dot_product_attention(q, T(r.standard_normal((2, 5, 3))), v)


def test_sdpa_dropout_draws_f_dropouts_mask(r):
    # PyTorch's math attention calls at::dropout on the weights: the same draws as F.dropout,
    # a keep mask from bernoulli_(1 - p), masked or not
    q, k, v = (T(r.standard_normal(s)) for s in [(2, 3, 4), (2, 5, 4), (2, 5, 3)])
    mask = T(np.where(r.random((3, 5)) < 0.3, -np.inf, r.standard_normal((3, 5))))
    for m in (None, mask):
        torch.manual_seed(7)
        got = F.scaled_dot_product_attention(q, k, v, attn_mask=m, dropout_p=0.4)
        torch.manual_seed(7)
        keep = to_np(torch.empty(2, 3, 5, dtype=torch.float64).bernoulli_(0.6))
        s = to_np(q) @ to_np(k).transpose(0, 2, 1) / 2.0 + (0 if m is None else to_np(m))
        w = np.exp(s - s.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        np.testing.assert_allclose(to_np(got), (w * keep / 0.6) @ to_np(v), rtol=1e-12)


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


# ---- torch.nn.attention: SDPBackend, sdpa_kernel, the backend set's effect, bias ------------

import warnings  # noqa: E402

from framework.nn.attention import (SDPBackend, sdpa_kernel,  # noqa: E402
                                    _cur_sdpa_kernel_backends as cur_backends)

ALL_BACKENDS = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION,
                SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH, SDPBackend.OVERRIDEABLE]
NO_VIABLE = "No viable backend for scaled_dot_product_attention was found"
NO_KERNEL = "No available kernel.  Aborting execution."


def C(a, rg=False):
    """A cpu tensor (the backend rules below are PyTorch's CPU rules)."""
    return torch.tensor(np.asarray(a), device="cpu", requires_grad=rg)


def qkv(r, *shapes, dtype=np.float32):
    return [C(r.standard_normal(s).astype(dtype)) for s in shapes]


def test_sdp_backend_members():
    assert {m.name: m.value for m in SDPBackend} == {
        "ERROR": -1, "MATH": 0, "FLASH_ATTENTION": 1, "EFFICIENT_ATTENTION": 2,
        "CUDNN_ATTENTION": 3, "OVERRIDEABLE": 4}
    assert int(SDPBackend.FLASH_ATTENTION) == 1 and [7, 8, 9][SDPBackend.EFFICIENT_ATTENTION] == 9
    assert SDPBackend.MATH != 0                       # (PyTorch's pybind enum: not an int)
    assert SDPBackend(3) is SDPBackend.CUDNN_ATTENTION
    assert repr(SDPBackend.MATH) == "<SDPBackend.MATH: 0>" and str(SDPBackend.MATH) == \
        "SDPBackend.MATH"
    assert torch.nn.attention.SDPBackend is SDPBackend


def test_sdpa_kernel_selects_nests_and_restores():
    assert cur_backends() == ALL_BACKENDS
    with sdpa_kernel(SDPBackend.MATH) as ctx:
        assert ctx == {} and cur_backends() == [SDPBackend.MATH]
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                          SDPBackend.FLASH_ATTENTION]):
            assert cur_backends() == [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]
            with sdpa_kernel([]):
                assert cur_backends() == []
            assert cur_backends() == [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]
        assert cur_backends() == [SDPBackend.MATH]
    assert cur_backends() == ALL_BACKENDS
    with pytest.raises(KeyError):                     # restored when the block raises
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            raise KeyError("x")
    assert cur_backends() == ALL_BACKENDS
    with sdpa_kernel(SDPBackend.ERROR):               # ERROR is no switchable backend
        assert cur_backends() == []
    # set_priority: the list's order first, then the rest in the previous order; restored
    default_order = cur_backends(with_priority=True)
    assert [int(b) for b in default_order] == [1, 2, 0, 3, 4]
    with sdpa_kernel([SDPBackend.MATH, SDPBackend.FLASH_ATTENTION], set_priority=True):
        assert cur_backends(with_priority=True) == [SDPBackend.MATH, SDPBackend.FLASH_ATTENTION]
        assert cur_backends() == [SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]
    assert cur_backends(with_priority=True) == default_order

    @sdpa_kernel(SDPBackend.MATH)                     # (a contextmanager is a decorator too)
    def inside():
        return cur_backends()
    assert inside() == [SDPBackend.MATH] and cur_backends() == ALL_BACKENDS


def test_sdpa_kernel_argument_errors():
    for bad in [(SDPBackend.MATH,), "math", 0]:
        with pytest.raises(AssertionError, match="Backend must be an instance of SDPBackend or "
                                                 f"a list of SDPBackend instances, got "
                                                 f"{type(bad).__name__}"):
            with sdpa_kernel(bad):
                pass
    assert cur_backends() == ALL_BACKENDS


@pytest.mark.parametrize("backends", [SDPBackend.EFFICIENT_ATTENTION,
                                      SDPBackend.CUDNN_ATTENTION, SDPBackend.OVERRIDEABLE,
                                      [SDPBackend.EFFICIENT_ATTENTION,
                                       SDPBackend.CUDNN_ATTENTION], []])
def test_no_cpu_backend_enabled_raises(r, backends):
    q, k, v = qkv(r, (2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 8))
    with sdpa_kernel(backends):
        with pytest.raises(RuntimeError, match=NO_VIABLE):
            F.scaled_dot_product_attention(q, k, v)
        # inputs without elements are answered before a backend is chosen
        e = F.scaled_dot_product_attention(C(np.zeros((2, 3, 0, 8), np.float32)), k, v)
        assert e.shape == (2, 3, 0, 8)
    y = F.scaled_dot_product_attention(q, k, v)       # the old set is back
    assert y.shape == (2, 3, 4, 8)


def test_math_and_fallback_sets_equal_the_default(r):
    q, k, v = (C(r.standard_normal(s), rg=True)
               for s in [(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8)])
    mask = C(r.standard_normal((4, 6)))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    gref = torch.autograd.grad(ref.sum(), (q, k, v))
    np.testing.assert_allclose(to_np(ref), np_attention(to_np(q), to_np(k), to_np(v), to_np(mask)),
                               rtol=1e-12, atol=1e-12)
    for backends in [SDPBackend.MATH, [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH],
                     SDPBackend.FLASH_ATTENTION, ALL_BACKENDS]:
        with sdpa_kernel(backends):
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            g = torch.autograd.grad(y.sum(), (q, k, v))
        np.testing.assert_array_equal(to_np(y), to_np(ref))
        for a, b in zip(g, gref):
            np.testing.assert_array_equal(to_np(a), to_np(b))
    # MATH takes what the CPU flash kernel refuses (3-D inputs, dropout, unequal head dims)
    q3, k3, v3 = qkv(r, (3, 4, 8), (3, 5, 8), (3, 5, 6))
    with sdpa_kernel(SDPBackend.MATH):
        y = F.scaled_dot_product_attention(q3, k3, v3)
    np.testing.assert_allclose(to_np(y), np_attention(*(to_np(t).astype(np.float64)
                                                        for t in (q3, k3, v3))), rtol=1e-5,
                               atol=1e-6)


def _flash_only(q, k, v, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            try:
                return F.scaled_dot_product_attention(q, k, v, **kw), [str(m.message) for m in w]
            except RuntimeError as e:
                return e, [str(m.message) for m in w]


FLASH_REFUSALS = [   # (name, shapes, kwargs, the reason PyTorch 2.13 warns, or None)
    ("3-D", [(3, 4, 8)] * 3, {}, "All fused kernels requires query, key and value to be 4 "
     "dimensional, but got Query dim: 3, Key dim: 3, Value dim: 3 instead."),
    ("dropout", [(2, 3, 4, 8)] * 3, {"dropout_p": 0.2},
     "Both fused kernels do not support non-zero dropout."),
    ("batch", [(2, 3, 4, 8), (1, 3, 4, 8), (1, 3, 4, 8)], {},
     "For dense inputs, both fused kernels require query, key and value to have the same "
     "batch_size. Query.sizes(): [2, 3, 4, 8], Key.sizes(): [1, 3, 4, 8], Value.sizes(): "
     "[1, 3, 4, 8] instead. To broadcast dense inputs, try using unsqueeze and expand_to "
     "before passing them into the kernel."),
    ("heads", [(2, 3, 4, 8), (2, 1, 4, 8), (2, 1, 4, 8)], {},
     "For dense input, both fused kernels require query, key and value to have the same "
     "num_heads. Query.sizes(): [2, 3, 4, 8], Key sizes(): [2, 1, 4, 8], Value sizes(): "
     "[2, 1, 4, 8] instead. To broadcast dense inputs, try using unsqueeze and expand_to "
     "before passing them into the kernel."),
    ("gqa", [(2, 3, 4, 8), (2, 2, 4, 8), (2, 2, 4, 8)], {"enable_gqa": True},
     "The number of heads in key/value must divide number of heads in query.Got input Key "
     "sizes(): 2, Value sizes(): 2, Query sizes(): 3 instead."),
    ("head dim", [(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 5)], {},
     "Flash attention requires q,k,v to have the same last dimension. Got Query.size(-1): 8, "
     "Key.size(-1): 8, Value.size(-1): 5 instead."),
    ("mask 3-D", [(2, 3, 4, 8)] * 3, {"attn_mask": (3, 4, 4)},
     "Please use the following attn mask shapes: 2d - ({Q_seq_len, 1}  x {KV_seq_len, 1}); "
     "4d - ({Batch, 1} x {Num_heads, 1} x {Q_seq_len, 1}  x {KV_seq_len, 1})"),
    ("mask wrong size", [(2, 3, 4, 8)] * 3, {"attn_mask": (2, 4)}, None),
]


@pytest.mark.parametrize("name,shapes,kw,reason", FLASH_REFUSALS,
                         ids=[c[0] for c in FLASH_REFUSALS])
def test_flash_only_refuses_what_the_cpu_flash_kernel_cannot_run(r, name, shapes, kw, reason):
    q, k, v = qkv(r, *shapes)
    kw = {key: C(r.standard_normal(val).astype(np.float32)) if key == "attn_mask" else val
          for key, val in kw.items()}
    err, msgs = _flash_only(q, k, v, **kw)
    assert isinstance(err, RuntimeError) and str(err) == NO_KERNEL
    assert msgs == ["Flash attention kernel not used because:"] + ([reason] if reason else [])


def test_flash_only_runs_supported_inputs_and_checks_stride_and_dtype(r):
    q, k, v = qkv(r, (2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8))
    for kw in [{}, {"is_causal": True},
               {"attn_mask": C(r.standard_normal((1, 6)).astype(np.float32))},
               {"attn_mask": C(r.random((1, 3, 4, 6)) > 0.3)}, {"scale": 0.3}]:
        y, msgs = _flash_only(q, k, v, **kw)
        assert msgs == [] and isinstance(y, torch.Tensor)
        np.testing.assert_array_equal(to_np(y), to_np(F.scaled_dot_product_attention(q, k, v,
                                                                                     **kw)))
    g = qkv(r, (2, 4, 4, 8), (2, 2, 6, 8), (2, 2, 6, 8))          # GQA is supported
    y, msgs = _flash_only(*g, enable_gqa=True)
    assert msgs == [] and y.shape == (2, 4, 4, 8)
    qt = C(r.standard_normal((2, 3, 8, 6)).astype(np.float32)).transpose(-1, -2)
    err, msgs = _flash_only(qt, k, v, attn_mask=C(np.zeros((6, 6), np.float32)))
    assert str(err) == NO_KERNEL and msgs[1] == (
        "All fused kernels require the last dimension of the input to have stride 1. Got "
        "Query.stride(-1): 6, Key.stride(-1): 1, Value.stride(-1): 1, Attn_mask.stride(-1): 1 "
        "(GPU backends require attn_mask's last dimension to have stride 1 while the CPU does "
        "not).")
    qi = C(np.ones((2, 3, 4, 8), np.int32))
    err, msgs = _flash_only(qi, qi, qi)
    assert str(err) == NO_KERNEL and msgs[1] == (
        "Expected query, key and value to all be of dtype: {Float, Double, BFloat16, Half}. "
        "Got Query dtype: int, Key dtype: int, and Value dtype: int instead.")
    err, msgs = _flash_only(q, k.double(), v)
    assert msgs == [] and str(err) == (
        "Expected query, key, and value to have the same dtype, but got query.dtype: float "
        "key.dtype: double and value.dtype: float instead.")
    with warnings.catch_warnings(record=True) as w:   # the warnings name the caller's line
        warnings.simplefilter("always")
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            with pytest.raises(RuntimeError, match=NO_KERNEL):
                F.scaled_dot_product_attention(q[0], k[0], v[0])
    assert len(w) == 2 and all(m.filename == __file__ and m.category is UserWarning for m in w)


def test_causal_bias(r):
    from framework.nn.attention.bias import (CausalBias, CausalVariant, causal_lower_right,
                                             causal_upper_left)
    import framework.nn.attention.bias as bias_mod
    assert bias_mod.__all__ == ["causal_upper_left", "causal_lower_right", "CausalVariant",
                                "CausalBias"]
    assert torch.nn.attention.bias is bias_mod
    ul, lr = causal_upper_left(3, 5), causal_lower_right(3, 5)
    assert isinstance(lr, CausalBias) and isinstance(lr, torch.Tensor)
    assert (lr.variant, lr.seq_len_q, lr.seq_len_kv) == (CausalVariant.LOWER_RIGHT, 3, 5)
    assert int(CausalVariant.UPPER_LEFT) == 1 and int(CausalVariant.LOWER_RIGHT) == 2
    np.testing.assert_array_equal(to_np(ul._materialize()), np.tril(np.ones((3, 5), bool)))
    np.testing.assert_array_equal(to_np(lr._materialize()), np.tril(np.ones((3, 5), bool), 2))
    assert repr(lr) == ("tensor([[ True,  True,  True, False, False],\n"
                        "        [ True,  True,  True,  True, False],\n"
                        "        [ True,  True,  True,  True,  True]])")
    q, k, v = (C(r.standard_normal(s)) for s in [(2, 2, 3, 8), (2, 2, 5, 8), (2, 2, 5, 8)])
    y = F.scaled_dot_product_attention(q, k, v, lr)
    keep = np.tril(np.ones((3, 5), bool), 2)
    np.testing.assert_allclose(to_np(y), np_attention(to_np(q), to_np(k), to_np(v),
                                                      np.where(keep, 0.0, -np.inf)),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(to_np(F.scaled_dot_product_attention(q, k, v, attn_mask=ul)),
                                  to_np(F.scaled_dot_product_attention(q, k, v, is_causal=True)))
    with pytest.raises(ValueError, match="CausalBias should not be used with causal=True"):
        F.scaled_dot_product_attention(q, k, v, lr, is_causal=True)
    with pytest.raises(AssertionError, match="causal_upper_left only supports 2D tensors"):
        causal_upper_left(3)
    with pytest.raises(AssertionError, match="variant must be a CausalVariant, got int"):
        CausalBias(1, 2, 3)
    with pytest.warns(UserWarning, match="Lower right causal bias will produce NaNs in the "
                                         "output when seq_len_q > seq_len_kv!"):
        causal_lower_right(5, 3)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):    # a 2-D mask: the flash rules accept it
        np.testing.assert_array_equal(to_np(F.scaled_dot_product_attention(q, k, v, lr)),
                                      to_np(y))


def test_backends_against_torch(r):
    real = pytest.importorskip("torch")
    from torch.nn.attention import SDPBackend as RB, sdpa_kernel as rk
    from torch.nn.attention.bias import causal_lower_right as real_lr
    assert {k: v.value for k, v in RB.__members__.items()} == \
        {m.name: m.value for m in SDPBackend}
    for name, shapes, kw, _ in FLASH_REFUSALS[:6]:
        arrs = [r.standard_normal(s).astype(np.float32) for s in shapes]
        ours = _flash_only(*(C(a) for a in arrs), **kw)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            with rk(RB.FLASH_ATTENTION):
                with pytest.raises(RuntimeError) as e:
                    real.nn.functional.scaled_dot_product_attention(
                        *(real.tensor(a) for a in arrs), **kw)
        assert str(e.value) == str(ours[0]), name
        assert [str(m.message).split(" (Triggered internally")[0] for m in w] == ours[1], name
        with rk(RB.EFFICIENT_ATTENTION):
            with pytest.raises(RuntimeError) as e:
                real.nn.functional.scaled_dot_product_attention(*(real.tensor(a) for a in arrs))
        assert str(e.value).startswith(NO_VIABLE)
    q, k, v = (r.standard_normal(s) for s in [(2, 2, 3, 8), (2, 2, 5, 8), (2, 2, 5, 8)])
    from framework.nn.attention.bias import causal_lower_right
    for backends, rbackends in [(SDPBackend.FLASH_ATTENTION, RB.FLASH_ATTENTION),
                                (SDPBackend.MATH, RB.MATH)]:
        with sdpa_kernel(backends):
            ours = F.scaled_dot_product_attention(C(q), C(k), C(v), causal_lower_right(3, 5))
        with rk(rbackends):
            theirs = real.nn.functional.scaled_dot_product_attention(
                real.tensor(q), real.tensor(k), real.tensor(v), real_lr(3, 5))
        assert_close(ours, theirs.numpy(), rtol=1e-10, atol=1e-12)


def test_sdpa_fully_masked_query_rows_give_zeros_not_nan():
    """PyTorch's math backend uses a safe softmax: a query whose every key is masked attends to
    nothing (a zero row) and passes no gradient; the other rows are the ordinary attention."""
    import numpy as np
    import framework as torch
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    qa, ka, va = (rng.standard_normal(s).astype(np.float32)
                  for s in ((1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 4)))
    mask = np.ones((3, 5), bool)
    mask[1] = False
    for m in (torch.from_numpy(mask), torch.from_numpy(np.where(mask, 0.0, -np.inf)
                                                     .astype(np.float32))):
        q, k, v = (torch.from_numpy(a.copy()).requires_grad_() for a in (qa, ka, va))
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
        on = o.detach().numpy()
        np.testing.assert_array_equal(on[:, :, 1], 0.0)
        # the other rows: softmax(q k^T / 2) v by hand in float64
        s = qa.astype(np.float64) @ ka.transpose(0, 1, 3, 2) / 2.0
        w = np.exp(s - s.max(-1, keepdims=True))
        ref = (w / w.sum(-1, keepdims=True)) @ va
        np.testing.assert_allclose(on[:, :, [0, 2]], ref[:, :, [0, 2]], rtol=1e-5, atol=1e-6)
        o.sum().backward()
        for t in (q, k, v):
            assert np.isfinite(t.grad.numpy()).all()
        np.testing.assert_array_equal(q.grad.numpy()[:, :, 1], 0.0)
    # causal with more queries than keys, lower-right aligned: the first L - S rows see nothing
    from framework.nn.attention.bias import causal_lower_right
    q = torch.from_numpy(rng.standard_normal((1, 1, 4, 4)).astype(np.float32))
    kv = torch.from_numpy(rng.standard_normal((1, 1, 2, 4)).astype(np.float32))
    o = F.scaled_dot_product_attention(q, kv, kv, attn_mask=causal_lower_right(4, 2))
    np.testing.assert_array_equal(o.numpy()[0, 0, :2], 0.0)
    assert np.isfinite(o.numpy()).all()


# ---- empty sequences, GQA head counts, attn_mask with is_causal (PyTorch 2.13 on the CPU) -----

import re  # noqa: E402

CAUSAL_WITH_MASK = ("_scaled_dot_product_attention: Explicit attn_mask should not be set when "
                    "is_causal=True")
GQA_HEADS = "Number of heads in key and value must divide the number of heads in "
SAME_DTYPE = "Expected query, key, and value to have the same dtype"
MASK_DTYPE = ("Expected attn_mask dtype to be bool or float or to match query dtype, but got "
              "attn_mask.dtype: long int and  query.dtype: double instead.")


def _leaves(r, *shapes, dtype=np.float64):
    arrs = [r.standard_normal(s).astype(dtype) for s in shapes]
    return arrs, [C(a, True) for a in arrs]


def _raises_unchanged(exc, match, arrs, ts, **kw):
    """The call raises exc (message matching) and leaves its inputs' data as they were."""
    with pytest.raises(exc, match=match):
        F.scaled_dot_product_attention(*ts, **kw)
    for a, t in zip(arrs, ts):
        np.testing.assert_array_equal(to_np(t), a)
        assert t.grad is None


def _mask(kind, L, S, dtype=np.float64):
    if kind == "bool":
        return torch.ones(L, S, dtype=torch.bool, device="cpu")
    return C(np.zeros((L, S), dtype))


EMPTY_KW = [{}, {"is_causal": True}, {"attn_mask": "bool"}, {"attn_mask": "float"},
            {"attn_mask": "bool", "is_causal": True}, {"attn_mask": "float", "is_causal": True},
            {"dropout_p": 0.5}, {"scale": 0.3}]


@pytest.mark.parametrize("L,S", [(3, 0), (0, 4), (0, 0)])
@pytest.mark.parametrize("kw", EMPTY_KW, ids=lambda kw: "-".join(f"{k}={v}" for k, v in
                                                                 kw.items()) or "plain")
def test_sdpa_empty_sequences_give_zeros_and_zero_gradients(r, L, S, kw):
    """PyTorch answers L == 0 or S == 0 before any backend: zeros of shape (..., L, Ev) (no NaN
    from a softmax over no keys), and zero gradients of q/k/v's own shapes; a mask or is_causal
    (also both together) changes nothing, whatever the backend set."""
    kw = {k: _mask(v, L, S) if k == "attn_mask" else v for k, v in kw.items()}
    for backends in (None, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION):
        _, (q, k, v) = _leaves(r, (2, 3, L, 4), (2, 3, S, 4), (2, 3, S, 5))
        with sdpa_kernel(backends or ALL_BACKENDS):
            out = F.scaled_dot_product_attention(q, k, v, **kw)
        assert out.shape == (2, 3, L, 5) and out.dtype == torch.float64
        np.testing.assert_array_equal(to_np(out), np.zeros((2, 3, L, 5)))
        out.sum().backward()
        for t in (q, k, v):
            assert t.grad.shape == t.shape
            np.testing.assert_array_equal(to_np(t.grad), 0.0)


def test_sdpa_empty_inputs_are_answered_before_shape_checks_but_after_dtype_checks(r):
    Z = F.scaled_dot_product_attention

    def zeros(out, shape):
        assert out.shape == shape
        np.testing.assert_array_equal(to_np(out), 0.0)

    q, k0, v0 = (C(r.standard_normal(s)) for s in [(2, 4, 3, 8), (2, 2, 0, 8), (2, 2, 0, 5)])
    zeros(Z(q, k0, v0, attn_mask=C(np.ones((3, 7), bool))), (2, 4, 3, 5))      # bad mask
    zeros(Z(q, k0, v0), (2, 4, 3, 5))                               # 4 heads vs 2, no GQA
    zeros(Z(q, C(np.zeros((2, 3, 0, 8))), C(np.zeros((2, 3, 0, 5))), enable_gqa=True),
          (2, 4, 3, 5))                                             # 3 does not divide 4
    zeros(Z(q, C(np.zeros((2, 2, 0, 6))), v0), (2, 4, 3, 5))        # key's head dim 6, not 8
    zeros(Z(q, C(np.zeros((2, 2, 1, 8))), v0), (2, 4, 3, 5))        # value's S == 0, key's 1
    zeros(Z(C(np.zeros((2, 1, 3, 8))), k0, v0), (2, 1, 3, 5))       # query's batch dims
    zeros(Z(C(np.zeros((3, 8))), C(np.zeros((0, 8))), C(np.zeros((0, 5))), is_causal=True),
          (3, 5))
    zeros(Z(q, C(np.zeros((2, 4, 6, 8))), C(np.zeros((2, 4, 6, 0)))), (2, 4, 3, 0))  # Ev == 0
    zeros(Z(C(np.zeros((0, 4, 3, 8))), C(np.zeros((0, 4, 6, 8))), C(np.zeros((0, 4, 6, 5)))),
          (0, 4, 3, 5))
    ints = [C(np.ones(s, np.int64)) for s in [(2, 3, 4), (2, 0, 4), (2, 0, 5)]]
    out = Z(*ints)
    assert out.dtype == torch.int64 and out.shape == (2, 3, 5) and not to_np(out).any()
    # the inputs stay in the graph as sum * 0: an inf or a NaN makes the output NaN
    for bad in (np.inf, np.nan):
        qa = np.zeros((2, 3, 4))
        qa[1, 2, 3] = bad
        qb = C(qa, True)
        out = Z(qb, C(np.zeros((2, 0, 4))), C(np.zeros((2, 0, 5))))
        assert np.isnan(to_np(out)).all()
        out.sum().backward()
        np.testing.assert_array_equal(to_np(qb.grad), 0.0)
    # PyTorch's input checks come first: dtypes, dimensions, the mask's dtype
    arrs, ts = _leaves(r, (2, 3, 4), (2, 0, 4), (2, 0, 5), dtype=np.float32)
    ts[1] = C(arrs[1].astype(np.float64), True)
    arrs[1] = arrs[1].astype(np.float64)
    _raises_unchanged(RuntimeError, SAME_DTYPE + ", but got query.dtype: float key.dtype: double "
                      "and value.dtype: float instead.", arrs, ts)
    arrs, ts = _leaves(r, (2, 3, 4), (2, 0, 4), (2, 0, 5))
    _raises_unchanged(RuntimeError, re.escape(MASK_DTYPE), arrs, ts,
                      attn_mask=torch.zeros(3, 0, dtype=torch.int64, device="cpu"))
    arrs, ts = _leaves(r, (4,), (0, 4), (0, 5))
    _raises_unchanged(RuntimeError, "Expected query, key, and value to all be  at least 2 "
                      "dimensional, but got query.dim: 1 key.dim: 2 and value.dim: 2 instead.",
                      arrs, ts)


def test_sdpa_head_dim_zero_and_empty_batch_go_through_the_backend_choice(r):
    """Not the empty answer: a head dim of 0 scores every key 0 (whatever the scale: no
    1/sqrt(0)), so each query averages the values; the CPU flash kernel refuses it."""
    v = r.standard_normal((2, 5, 3))
    for scale in (None, 2.0):
        q, k = C(np.zeros((2, 4, 0)), True), C(np.zeros((2, 5, 0)), True)
        vt = C(v, True)
        out = F.scaled_dot_product_attention(q, k, vt, scale=scale)
        assert_close(out, np.broadcast_to(v.mean(1, keepdims=True), (2, 4, 3)), atol=1e-12)
        out.sum().backward()
        np.testing.assert_allclose(to_np(vt.grad), np.full((2, 5, 3), 4 / 5), atol=1e-12)
    q, k, vt = (C(r.standard_normal(s).astype(np.float32)) for s in
                [(1, 2, 4, 0), (1, 2, 5, 0), (1, 2, 5, 3)])
    err, msgs = _flash_only(q, k, vt)
    assert str(err) == NO_KERNEL and msgs[1].startswith("Flash attention requires q,k,v to "
                                                        "have the same last dimension")
    q0 = C(np.zeros((0, 2, 4, 8), np.float32))
    kv = C(np.zeros((1, 2, 5, 8), np.float32))
    assert F.scaled_dot_product_attention(q0, kv, kv).shape == (0, 2, 4, 8)
    err, msgs = _flash_only(q0, kv, kv)
    assert str(err) == NO_KERNEL and msgs[1].startswith("For dense inputs, both fused kernels "
                                                        "require query, key and value to have "
                                                        "the same batch_size")


GQA_OK = [(4, 2, 2), (4, 2, 1), (4, 1, 2), (4, 2, 4), (4, 4, 2), (6, 3, 2), (6, 2, 3), (4, 4, 4),
          (4, 1, 1)]
GQA_BAD = [(4, 3, 3), (2, 4, 4), (4, 8, 8), (4, 2, 3), (6, 4, 2)]


@pytest.mark.parametrize("hq,hk,hv", GQA_OK)
def test_sdpa_gqa_key_and_value_heads_each_divide_query_heads(r, hq, hk, hv):
    """enable_gqa repeats key and value (each by its own factor hq/hk, hq/hv) along dim -3."""
    (qa, ka, va), (q, k, v) = _leaves(r, (2, hq, 3, 4), (2, hk, 5, 4), (2, hv, 5, 6))
    out = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    ref = np_attention(qa, np.repeat(ka, hq // hk, axis=-3), np.repeat(va, hq // hv, axis=-3))
    assert_close(out, ref, atol=1e-12)
    if (hq, hk, hv) in [(4, 2, 1), (6, 2, 3)]:
        assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
                         (q, k, v))


def test_sdpa_gqa_head_count_errors_and_shapes(r):
    for hq, hk, hv in GQA_BAD + [(4, 0, 2)]:
        arrs, ts = _leaves(r, (2, hq, 3, 4), (2, hk, 5, 4), (2, hv, 5, 6))
        _raises_unchanged(RuntimeError, re.escape(GQA_HEADS), arrs, ts, enable_gqa=True)
    # the heads are dim -3: 3-D inputs are (heads, L, E); 2-D ones have none
    (qa, ka, va), (q, k, v) = _leaves(r, (4, 3, 4), (2, 5, 4), (1, 5, 6))
    assert_close(F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
                 np_attention(qa, np.repeat(ka, 2, 0), np.repeat(va, 4, 0)), atol=1e-12)
    for shapes in [[(3, 4), (5, 4), (5, 6)], [(2, 3, 4), (5, 4), (5, 6)]]:
        arrs, ts = _leaves(r, *shapes)
        _raises_unchanged(IndexError, re.escape("Dimension out of range (expected to be in range "
                                                "of [-2, 1], but got -3)"), arrs, ts,
                          enable_gqa=True)
    # batch dims broadcast as usual; no query heads give an empty output
    (qa, ka, va), (q, k, v) = _leaves(r, (2, 4, 3, 4), (1, 2, 5, 4), (2, 1, 5, 6))
    assert_close(F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
                 np_attention(qa, np.repeat(ka, 2, 1), np.repeat(va, 4, 1)), atol=1e-12)
    _, (q, k, v) = _leaves(r, (2, 0, 3, 4), (2, 2, 5, 4), (2, 2, 5, 6))
    assert F.scaled_dot_product_attention(q, k, v, enable_gqa=True).shape == (2, 0, 3, 6)
    # without enable_gqa unequal heads must broadcast
    arrs, ts = _leaves(r, (2, 4, 3, 4), (2, 2, 5, 4), (2, 2, 5, 6))
    _raises_unchanged(RuntimeError, "must match the size of tensor b", arrs, ts)
    # with the flash backend alone, key and value heads must be equal
    q, k, v = qkv(r, (2, 4, 3, 8), (2, 2, 5, 8), (2, 1, 5, 8))
    err, msgs = _flash_only(q, k, v, enable_gqa=True)
    assert str(err) == NO_KERNEL and msgs[1].startswith(
        "Both fused kernels require key and value to have the same num_heads and batch_size")


def test_sdpa_attn_mask_with_is_causal(r):
    """PyTorch's CPU flash kernel (4-D inputs, equal head dims, no dropout, a 2-D/4-D mask that
    needs no grad, ...) applies an attn_mask on top of is_causal; its MATH backend, which serves
    every other call, raises."""
    tril = np.tril(np.ones((4, 6), bool))
    bm = r.random((4, 6)) > 0.4
    bm[1] = False                                        # a dead row: zeros, not NaN
    fm = r.standard_normal((4, 6))
    for dtype in (np.float32, np.float64):
        (qa, ka, va), (q, k, v) = _leaves(r, (2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 8),
                                          dtype=dtype)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=C(bm), is_causal=True)
        keep = bm & tril
        ref = np_attention(*(a.astype(np.float64) for a in (qa, ka, va)),
                           np.where(keep, 0, -np.inf))
        ref[:, :, 1] = 0.0
        assert_close(out, ref, rtol=tol, atol=tol)
        out.sum().backward()
        assert all(np.isfinite(to_np(t.grad)).all() for t in (q, k, v))
        np.testing.assert_array_equal(to_np(q.grad)[:, :, 1], 0.0)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=C(fm.astype(dtype)),
                                             is_causal=True)
        assert_close(out, np_attention(*(a.astype(np.float64) for a in (qa, ka, va)),
                                       np.where(tril, fm, -np.inf)), rtol=tol, atol=tol)
    m4 = r.random((2, 1, 4, 6)) > 0.3
    m4[..., 0] = True
    assert_close(F.scaled_dot_product_attention(q, k, v, attn_mask=C(m4),
                                                is_causal=True),
                 np_attention(qa, ka, va, np.where(m4 & tril, 0, -np.inf)), atol=1e-12)
    (qa, ka, va), (qg, kg, vg) = _leaves(r, (1, 4, 4, 8), (1, 2, 6, 8), (1, 2, 6, 8))
    fm0 = np.where(bm | ~tril, fm, -np.inf)
    fm0[:, 0] = 0.0                                       # every row keeps a key
    assert_close(F.scaled_dot_product_attention(qg, kg, vg, attn_mask=C(fm0),
                                                is_causal=True, enable_gqa=True),
                 np_attention(qa, np.repeat(ka, 2, 1), np.repeat(va, 2, 1),
                              np.where(tril, fm0, -np.inf)), atol=1e-12)
    # with MATH alone, and wherever MATH serves the call, the pair is an error
    mask = torch.ones(4, 6, dtype=torch.bool, device="cpu")
    arrs, ts = _leaves(r, (2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 8))
    with sdpa_kernel(SDPBackend.MATH):
        _raises_unchanged(RuntimeError, re.escape(CAUSAL_WITH_MASK), arrs, ts, attn_mask=mask,
                          is_causal=True)
    refused = [  # (shapes, kwargs): what the CPU flash kernel cannot run
        ([(2, 4, 8), (2, 6, 8), (2, 6, 8)], {}),                          # 3-D
        ([(4, 8), (6, 8), (6, 8)], {}),                                   # 2-D
        ([(2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 8)], {"dropout_p": 0.3}),
        ([(2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 5)], {}),                 # head dims 8, 5
        ([(2, 2, 4, 8), (1, 2, 6, 8), (1, 2, 6, 8)], {}),                 # batch broadcast
        ([(2, 4, 4, 8), (2, 2, 6, 8), (2, 1, 6, 8)], {"enable_gqa": True}),
        ([(2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 8)],
         {"attn_mask": C(np.ones((2, 4, 6), bool))}),                     # a 3-D mask
        ([(2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 8)],
         {"attn_mask": torch.zeros(4, 6, dtype=torch.float64, device="cpu",
                     requires_grad=True)}),
    ]
    for shapes, kw in refused:
        arrs, ts = _leaves(r, *shapes)
        _raises_unchanged(RuntimeError, re.escape(CAUSAL_WITH_MASK), arrs, ts,
                          **{"attn_mask": mask, **kw}, is_causal=True)
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _raises_unchanged(RuntimeError, NO_KERNEL, arrs, ts, **{"attn_mask": mask, **kw},
                              is_causal=True)
    with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
        _raises_unchanged(RuntimeError, NO_VIABLE, arrs, ts, attn_mask=mask, is_causal=True)
    from framework.nn.attention.bias import causal_upper_left
    _raises_unchanged(ValueError, "CausalBias should not be used with causal=True", arrs, ts,
                      attn_mask=causal_upper_left(4, 6), is_causal=True)


# the cases compared with PyTorch 2.13: (name, shapes, kwargs, backend names or None)
TORCH_CASES = [
    *[(f"empty L={L} S={S} {'-'.join(kw) or 'plain'}", [(2, 3, L, 4), (2, 3, S, 4), (2, 3, S, 5)],
       {k: ("bool" if v == "bool" else "float") if k == "attn_mask" else v
        for k, v in kw.items()}, None)
      for L, S in [(3, 0), (0, 4), (0, 0)] for kw in EMPTY_KW if "dropout_p" not in kw],
    ("empty mask bad shape", [(2, 4, 3, 8), (2, 2, 0, 8), (2, 2, 0, 5)],
     {"attn_mask": ("bool", (3, 7))}, None),
    ("empty gqa 4/3", [(2, 4, 3, 8), (2, 3, 0, 8), (2, 3, 0, 5)], {"enable_gqa": True}, None),
    ("empty key S=1", [(2, 4, 3, 8), (2, 2, 1, 8), (2, 2, 0, 5)], {}, None),
    ("empty bcast", [(2, 1, 3, 8), (1, 2, 0, 8), (1, 2, 0, 5)], {}, None),
    ("empty 2-D", [(3, 8), (0, 8), (0, 5)], {"is_causal": True}, None),
    ("empty Ev=0", [(2, 3, 8), (2, 6, 8), (2, 6, 0)], {}, None),
    ("empty flash only", [(2, 2, 3, 8), (2, 2, 0, 8), (2, 2, 0, 5)], {}, ["FLASH_ATTENTION"]),
    ("empty efficient only", [(2, 2, 0, 8), (2, 2, 4, 8), (2, 2, 4, 5)], {},
     ["EFFICIENT_ATTENTION"]),
    ("empty mask dtype", [(2, 3, 4), (2, 0, 4), (2, 0, 5)], {"attn_mask": ("int64", (3, 0))},
     None),
    ("head dim 0", [(2, 4, 0), (2, 5, 0), (2, 5, 3)], {}, None),
    ("head dim 0 flash", [(1, 2, 4, 0), (1, 2, 5, 0), (1, 2, 5, 3)], {}, ["FLASH_ATTENTION"]),
    ("query batch 0", [(0, 2, 4, 8), (1, 2, 5, 8), (1, 2, 5, 8)], {}, None),
    *[(f"gqa {h}", [(2, h[0], 3, 8), (2, h[1], 5, 8), (2, h[2], 5, 6)], {"enable_gqa": True},
       None) for h in GQA_OK + GQA_BAD],
    ("gqa flash 4/2/2", [(2, 4, 3, 8), (2, 2, 5, 8), (2, 2, 5, 8)], {"enable_gqa": True},
     ["FLASH_ATTENTION"]),
    ("gqa 3-D", [(4, 3, 8), (2, 5, 8), (1, 5, 6)], {"enable_gqa": True}, None),
    ("gqa 2-D", [(3, 8), (5, 8), (5, 6)], {"enable_gqa": True}, None),
    ("gqa bcast", [(2, 4, 3, 8), (1, 2, 5, 8), (2, 1, 5, 6)], {"enable_gqa": True}, None),
    ("gqa no query heads", [(2, 0, 3, 8), (2, 2, 5, 8), (2, 2, 5, 6)], {"enable_gqa": True},
     None),
    ("causal+bool mask", [(2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 8)],
     {"attn_mask": "bool", "is_causal": True}, None),
    ("causal+float mask", [(2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 8)],
     {"attn_mask": "float", "is_causal": True}, None),
    ("causal+4-D mask", [(2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 8)],
     {"attn_mask": ("bool", (2, 1, 4, 6)), "is_causal": True}, None),
    ("causal+mask gqa", [(1, 4, 4, 8), (1, 2, 6, 8), (1, 2, 6, 8)],
     {"attn_mask": "float", "is_causal": True, "enable_gqa": True}, None),
    ("causal+mask L>S", [(1, 2, 6, 8), (1, 2, 3, 8), (1, 2, 3, 8)],
     {"attn_mask": "bool", "is_causal": True}, None),
    ("causal+mask flash only", [(2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 8)],
     {"attn_mask": "bool", "is_causal": True}, ["FLASH_ATTENTION"]),
    ("causal+mask math only", [(2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 8)],
     {"attn_mask": "bool", "is_causal": True}, ["MATH"]),
    ("causal+mask 3-D", [(2, 4, 8), (2, 6, 8), (2, 6, 8)],
     {"attn_mask": "bool", "is_causal": True}, None),
    ("causal+mask head dims", [(2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 5)],
     {"attn_mask": "float", "is_causal": True}, None),
    ("causal+mask dropout", [(2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 8)],
     {"attn_mask": "bool", "is_causal": True, "dropout_p": 0.5}, None),
    ("causal+mask needing grad", [(2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 8)],
     {"attn_mask": ("grad", (4, 6)), "is_causal": True}, None),
    ("causal+3-D mask", [(2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 8)],
     {"attn_mask": ("bool", (2, 4, 6)), "is_causal": True}, None),
    ("bool mask, a dead row", [(2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 5)], {"attn_mask": "dead"},
     None),
    ("plain", [(2, 2, 4, 8), (2, 2, 6, 8), (2, 2, 6, 5)], {}, None),
]


def _run_case(lib, SB, kernel, arrs, kw, backends):
    """F.scaled_dot_product_attention of lib (Kiln or PyTorch) on arrs: (output, q/k/v
    gradients of a fixed weighting of it) as arrays, or the exception raised."""
    dtype = arrs[0].dtype
    ts = [lib.tensor(a, requires_grad=True) for a in arrs]
    L, S = arrs[0].shape[-2], arrs[1].shape[-2]
    out_kw = {}
    for key, val in kw.items():
        if key == "attn_mask":
            kind, shape = val if isinstance(val, tuple) else (val, (L, S))
            rs = np.random.default_rng(7)
            if kind == "bool":
                m = rs.random(shape) > 0.4
                m[..., :1] = True
                val = lib.tensor(m)
            elif kind == "dead":
                m = rs.random(shape) > 0.4
                m[..., :1] = True
                m[1] = False
                val = lib.tensor(m)
            elif kind == "int64":
                val = lib.tensor(np.zeros(shape, np.int64))
            else:
                val = lib.tensor(rs.standard_normal(shape).astype(dtype),
                                 requires_grad=kind == "grad")
        out_kw[key] = val
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with kernel([getattr(SB, b) for b in backends] if backends else
                    [getattr(SB, b.name) for b in ALL_BACKENDS]):
            try:
                out = lib.nn.functional.scaled_dot_product_attention(*ts, **out_kw)
            except Exception as e:   # noqa: BLE001 - compared by class and text
                return e
    w = np.random.default_rng(3).standard_normal(tuple(out.shape)).astype(dtype)
    (out * lib.tensor(w)).sum().backward()
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sdpa_empty_gqa_and_causal_mask_against_torch(r, dtype):
    real = pytest.importorskip("torch", reason="optional cross-check against PyTorch 2.13")
    from torch.nn.attention import SDPBackend as RB, sdpa_kernel as rk
    for name, shapes, kw, backends in TORCH_CASES:
        arrs = [r.standard_normal(s).astype(dtype) for s in shapes]
        theirs = _run_case(real, RB, rk, arrs, kw, backends)
        ours = _run_case(torch, SDPBackend, sdpa_kernel, arrs, kw, backends)
        if isinstance(theirs, Exception):
            assert type(ours) is type(theirs) and str(ours) == str(theirs), (name, ours, theirs)
            continue
        assert not isinstance(ours, Exception), (name, ours)
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-5, err_msg=name)
        assert ours[0].dtype == theirs[0].dtype, name
        for a, b in zip(ours[1], theirs[1]):
            assert a.shape == b.shape, name
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=name)
    # an inf in the query: PyTorch's empty answer is NaN too (its sum * 0)
    q = np.zeros((2, 3, 4), dtype)
    q[0, 0, 0] = np.inf
    kv = np.zeros((2, 0, 4), dtype)
    np.testing.assert_array_equal(
        to_np(F.scaled_dot_product_attention(C(q), C(kv), C(kv))),
        real.nn.functional.scaled_dot_product_attention(*map(real.tensor, (q, kv, kv))).numpy())


def test_mha_need_weights_false_fully_padded_query_gives_zeros(r):
    # PyTorch's need_weights=False path is SDPA, whose safe softmax zeroes a query whose every
    # key is padded (the weights path keeps softmax's NaN)
    m = nn.MultiheadAttention(4, 2).double()
    x = r.standard_normal((3, 2, 4))
    kpm = np.zeros((2, 3), bool)
    kpm[1] = True
    xt = T(x, True)
    out, w = m(xt, xt, xt, key_padding_mask=torch.tensor(kpm), need_weights=False)
    assert w is None
    ro, _ = np_mha(x[:, :1], x[:, :1], x[:, :1], m)
    assert_close(out[:, 0], ro[:, 0], atol=1e-12)
    # batch 1 attends to nothing: zeros through out_proj leave its bias
    assert_close(out[:, 1], np.broadcast_to(to_np(m.out_proj.bias), (3, 4)), atol=0)
    out.sum().backward()
    assert np.all(np.isfinite(to_np(xt.grad)))
    out_w, _ = m(T(x), T(x), T(x), key_padding_mask=torch.tensor(kpm))
    assert np.all(np.isnan(to_np(out_w)[:, 1]))


def test_mha_is_causal_hint_replaces_the_mask_without_weights(r):
    m = nn.MultiheadAttention(4, 2).double()
    x = r.standard_normal((3, 2, 4))
    causal = np.triu(np.full((3, 3), -np.inf), 1)
    ro, _ = np_mha(x, x, x, m, causal)
    # need_weights=False and no padding mask: the hint is used and the mask's values are not
    junk = T(np.zeros((3, 3)), True)
    out, _ = m(T(x), T(x), T(x), attn_mask=junk, is_causal=True, need_weights=False)
    assert_close(out, ro, atol=1e-12)
    out.sum().backward()
    assert junk.grad is None
    # with weights the mask itself is applied
    out, w = m(T(x), T(x), T(x), attn_mask=T(causal), is_causal=True)
    assert_close(out, ro, atol=1e-12)
    assert np.all(to_np(w)[:, 0, 1:] == 0)


def test_mha_mask_rank_errors_are_assertion_errors(r):
    m = nn.MultiheadAttention(4, 2).double()
    x = T(r.standard_normal((3, 2, 4)))
    with pytest.raises(AssertionError, match="expected `attn_mask` to be `None`, 2-D or 3-D"):
        m(x, x, x, attn_mask=T(np.zeros((1, 2, 3, 3))))
    with pytest.raises(AssertionError, match="expected `key_padding_mask` to be `None` or 2-D"):
        m(x, x, x, key_padding_mask=torch.zeros(2, 3, 1, dtype=torch.bool))
    with pytest.raises(AssertionError, match="expected `key` and `value` to be 3-D"):
        m(x, x[0], x[0])
    u = T(r.standard_normal((3, 4)))
    with pytest.raises(AssertionError, match=r"Expected `attn_mask` shape to be \(2, 3, 3\)"):
        m(u, u, u, attn_mask=T(np.zeros((4, 3, 3))))
    with pytest.raises(AssertionError, match="expected `key_padding_mask` to be `None` or 1-D"):
        m(u, u, u, key_padding_mask=torch.zeros(1, 3, dtype=torch.bool))


def test_transformer_encoder_decoder_detect_causal_mask(r):
    from framework.nn.modules.transformer import _detect_is_causal_mask
    sq = nn.Transformer.generate_square_subsequent_mask(3)
    assert _detect_is_causal_mask(sq) is True
    assert _detect_is_causal_mask(sq, is_causal=False) is False
    assert _detect_is_causal_mask(T(np.zeros((3, 3)))) is False
    assert _detect_is_causal_mask(torch.tensor(np.triu(np.ones((3, 3), bool), 1))) is True
    assert _detect_is_causal_mask(sq, size=4) is False
    assert _detect_is_causal_mask(None) is False
    # the stacks pass the detected hint on: the (exactly causal) mask's values are not used,
    # so it gets no gradient, while the output is the masked one
    layer = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0).double()
    enc = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
    x = r.standard_normal((3, 2, 4))
    mask = T(np.triu(np.full((3, 3), -np.inf), 1), True)
    y = enc(T(x), mask=mask)
    sub = enc.layers[0]
    z = sub.norm1(T(x) + sub.self_attn(T(x), T(x), T(x), attn_mask=mask.detach())[0])
    assert_close(y, to_np(sub.norm2(z + sub.linear2(F.relu(sub.linear1(z))))), atol=1e-12)
    y.sum().backward()
    assert mask.grad is None
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(4, 2, 8, dropout=0.0).double(), 1)
    tmask = T(np.triu(np.full((3, 3), -np.inf), 1), True)
    dec(T(x), T(x), tgt_mask=tmask).sum().backward()
    assert tmask.grad is None


def test_transformer_encoder_says_why_it_takes_no_nested_fast_path():
    # PyTorch's flags and warning (its checks, in its order); the math path runs either way
    def build(**kw):
        return nn.TransformerEncoderLayer(8, 2, 16, **kw)
    with pytest.warns(UserWarning, match=r"use_nested_tensor is False because encoder_layer\."
                                         r"self_attn\.batch_first was not True"):
        e = nn.TransformerEncoder(build(), 2)
    assert e.enable_nested_tensor and not e.use_nested_tensor
    for kw, why in ((dict(norm_first=True), "norm_first was True"),
                    (dict(activation=lambda x: x), "activation_relu_or_gelu was not True"),
                    (dict(bias=False), "self_attn was passed bias=False")):
        with pytest.warns(UserWarning, match=why):
            nn.TransformerEncoder(build(batch_first=True, **kw), 1)
    with pytest.warns(UserWarning, match="num_heads is odd"):
        nn.TransformerEncoder(nn.TransformerEncoderLayer(6, 3, 16, batch_first=True), 1)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = nn.TransformerEncoder(build(batch_first=True, activation=F.gelu), 1)
        nn.TransformerEncoder(build(), 1, enable_nested_tensor=False)
    assert ok.use_nested_tensor and ok.layers[0].activation_relu_or_gelu == 2
