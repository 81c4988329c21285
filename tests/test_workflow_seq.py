"""Workflow checks from sequence-model / NLP scripts (RNN classifiers, seq2seq with attention,
Transformer LMs): dropout draws on transposed activations, PyTorch's grad_fn names along those
models, PackedSequence conversions, and the errors such scripts hit. References are NumPy
float64 or hand-derived values."""
import warnings

import numpy as np
import pytest

import framework as torch
from framework import nn
from framework.nn import functional as F
from framework.nn.utils import rnn as U
from conftest import assert_close, to_np


def _name(t):
    return type(t.grad_fn).__name__


# ---- dropout on a transposed activation (batch_first MHA output, then dropout1) ----------

def test_dropout_mask_is_drawn_in_the_inputs_memory_order():
    # PyTorch's CPU dropout fills empty_like(input) with bernoulli_: a transposed input's mask
    # takes the stream in storage order, so dropping x.t() drops what dropping x would, transposed
    torch.manual_seed(3)
    ref = to_np(F.dropout(torch.ones(3, 4, dtype=torch.float64), 0.5))
    torch.manual_seed(3)
    got = to_np(F.dropout(torch.ones(3, 4, dtype=torch.float64).t(), 0.5))
    np.testing.assert_array_equal(got.T, ref)
    assert set(np.unique(ref)) <= {0.0, 2.0} and 0 < (ref == 0).sum() < 12
    # the values dropped are the input's own, scaled by 1 / (1 - p)
    x = np.arange(12.0).reshape(4, 3)
    torch.manual_seed(3)
    got = to_np(F.dropout(torch.tensor(x.T.copy()).t(), 0.5))
    np.testing.assert_array_equal(got, x * ref.T)


# ---- grad_fn names --------------------------------------------------------------------------

def test_squeeze_grad_fn_names_follow_the_overload():
    x = torch.randn(2, 1, 3, requires_grad=True)
    assert _name(x.squeeze()) == "SqueezeBackward0"
    assert _name(x.squeeze(1)) == "SqueezeBackward1"
    assert _name(torch.squeeze(x, -2)) == "SqueezeBackward1"
    assert _name(x.squeeze((1,))) == "SqueezeBackward2"
    assert _name(x.squeeze([0, 1])) == "SqueezeBackward2"


@pytest.mark.parametrize("a,b,ga,name", [
    ((3,), (3, 2), True, "SqueezeBackward4"),
    ((2, 3), (3,), True, "MvBackward0"),
    ((5, 2, 3), (3,), True, "UnsafeViewBackward0"),
    ((5, 2, 3), (5, 3, 4), True, "UnsafeViewBackward0"),
    ((2, 3), (5, 3, 4), True, "CloneBackward0"),       # folded, transposed back, copied
    ((2, 3), (5, 3, 4), False, "UnsafeViewBackward0"),  # (not folded without a grad)
    ((1, 3), (5, 3, 4), True, "TransposeBackward0"),    # (a 1-row result is already contiguous)
    ((1, 2, 3), (5, 3, 4), True, "CloneBackward0"),     # matmul(a.squeeze(0), b)
    ((5, 2, 3), (1, 3, 4), False, "UnsafeViewBackward0"),
])
def test_matmul_grad_fn_names(a, b, ga, name):
    x = torch.randn(*a, requires_grad=ga)
    y = torch.randn(*b, requires_grad=not ga)
    r = x @ y
    assert _name(r) == name
    ref = np.matmul(to_np(x).astype(np.float64), to_np(y).astype(np.float64))
    assert_close(r, ref, rtol=1e-5, atol=1e-5)


def test_linear_grad_fn_names_by_rank_bias_and_layout():
    w = torch.randn(4, 3, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    x3 = torch.randn(5, 2, 3)
    assert _name(F.linear(torch.randn(3), w)) == "SqueezeBackward4"
    assert _name(F.linear(x3, w)) == "UnsafeViewBackward0"
    assert _name(F.linear(x3, w, b)) == "ViewBackward0"
    xt = torch.randn(3, 2, 5).permute(2, 1, 0)         # non-contiguous: matmul, then add_
    y = F.linear(xt, w, b)
    assert _name(y) == "AddBackward0"
    ref = to_np(xt).astype(np.float64) @ to_np(w).astype(np.float64).T + to_np(b)
    assert_close(y, ref, rtol=1e-5, atol=1e-5)


def test_rnn_output_and_state_grad_fn_names():
    x = torch.randn(4, 2, 3)
    for cls in (nn.RNN, nn.GRU, nn.LSTM):
        out, h = cls(3, 5, num_layers=2)(x)
        h = h[0] if isinstance(h, tuple) else h
        assert _name(h) == "StackBackward0"
        if cls is not nn.LSTM:          # (PyTorch's LSTM output comes from its oneDNN kernel)
            assert _name(out) == "StackBackward0"
            out, _ = cls(3, 5, batch_first=True)(x)
            assert _name(out) == "TransposeBackward1"
        out, h = cls(3, 5, bidirectional=True)(x)
        assert _name(out) == "CatBackward0"
        out, h = cls(3, 5)(x[:, 0])                    # unbatched: squeeze(dim)
        assert _name(out) == "SqueezeBackward1"


def test_sdpa_and_mha_grad_fn_names():
    q = torch.randn(2, 4, 5, 8, requires_grad=True)
    flash = "ScaledDotProductFlashAttentionForCpuBackward0"
    assert _name(F.scaled_dot_product_attention(q, q, q)) == flash
    assert _name(F.scaled_dot_product_attention(q, q, q, is_causal=True)) == flash
    assert _name(F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)) == "UnsafeViewBackward0"
    assert _name(F.scaled_dot_product_attention(q[0], q[0], q[0])) == "UnsafeViewBackward0"
    assert _name(F.scaled_dot_product_attention(q, q, q[..., :3])) == "UnsafeViewBackward0"
    # 2-d operands: the math path's closing matmul is an mm (w3)
    q2 = q[0, 0]
    assert _name(F.scaled_dot_product_attention(q2, q2, q2)) == "MmBackward0"
    assert _name(F.scaled_dot_product_attention(q2, q2, q2, is_causal=True)) == "MmBackward0"
    # at::dropout's check inside SDPA is a RuntimeError (F.dropout's is a ValueError)
    with pytest.raises(RuntimeError, match="dropout probability has to be between 0 and 1"):
        F.scaled_dot_product_attention(q, q, q, dropout_p=1.5)
    m = nn.MultiheadAttention(8, 2)
    x = torch.randn(3, 2, 8)
    o, w = m(x, x, x)
    assert (_name(o), _name(w)) == ("ViewBackward0", "MeanBackward1")
    o, w = m(x[:, 0], x[:, 0], x[:, 0])
    assert (_name(o), _name(w)) == ("SqueezeBackward1", "SqueezeBackward1")
    # the averaged weights are the per-head weights' mean
    _, wh = m(x, x, x, average_attn_weights=False)
    _, wa = m(x, x, x)
    assert_close(wa, to_np(wh).astype(np.float64).mean(1), rtol=1e-5, atol=1e-6)


# ---- PackedSequence conversions -------------------------------------------------------------

def test_packed_sequence_dtype_and_device_methods():
    seqs = [torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([[4.0]]),
            torch.tensor([[5.0], [6.0]])]
    p = U.pack_sequence(seqs, enforce_sorted=False)
    d = p.double()
    assert d.data.dtype == torch.float64 and d.sorted_indices.dtype == torch.int64
    np.testing.assert_array_equal(to_np(d.data).ravel(), [1.0, 5.0, 4.0, 2.0, 6.0, 3.0])
    np.testing.assert_array_equal(to_np(d.batch_sizes), [3, 2, 1])
    np.testing.assert_array_equal(to_np(d.unsorted_indices), [0, 2, 1])
    assert p.long().data.dtype == torch.int64 and p.half().data.dtype == torch.float16
    assert p.int().data.dtype == torch.int32 and p.byte().data.dtype == torch.uint8
    assert p.cpu() is p and p.float() is p and not p.is_pinned()


def test_pack_padded_sequence_takes_float_lengths_and_refuses_2d():
    x = torch.arange(6.0).reshape(3, 2, 1)
    p = U.pack_padded_sequence(x, torch.tensor([3.0, 2.9]))      # truncated to [3, 2]
    np.testing.assert_array_equal(to_np(p.batch_sizes), [2, 2, 1])
    np.testing.assert_array_equal(to_np(p.data).ravel(), [0, 1, 2, 3, 4])
    with pytest.raises(RuntimeError, match="should be a 1D CPU int64 tensor, but got 2D cpu Long"):
        U.pack_padded_sequence(x, torch.tensor([[3, 2]]))


def test_pad_sequence_broadcasts_like_copy_and_names_a_mismatch():
    out = U.pad_sequence([torch.ones(2, 3), torch.full((1, 1), 7.0)], batch_first=True)
    np.testing.assert_array_equal(to_np(out), [[[1, 1, 1], [1, 1, 1]], [[7, 7, 7], [0, 0, 0]]])
    with pytest.raises(RuntimeError, match=r"size of tensor a \(3\) must match the size of "
                                           r"tensor b \(4\) at non-singleton dimension 1"):
        U.pad_sequence([torch.randn(2, 3), torch.randn(2, 4)])
    with pytest.raises(RuntimeError, match="invalid slice"):
        U.pad_sequence([torch.tensor(1.0), torch.tensor(2.0)])


# ---- errors and warnings --------------------------------------------------------------------

def test_rnn_and_cell_dtype_errors_use_pytorchs_texts():
    x = torch.ones(2, 1, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^RNN input dtype \(torch.float64\) does not match "
                                         r"weight dtype \(torch.float32\)\. Convert input: "
                                         r"input.to\(torch.float32\), or convert model: "
                                         r"model.to\(torch.float64\)$"):
        nn.LSTM(3, 4)(x)                       # (the dtype check comes before the size check)
    with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0"):
        nn.GRU(3, 4)(torch.randn(0, 2, 3))
    cell = nn.GRUCell(3, 4)
    with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype, but got "
                                           "Double and Float"):
        cell(torch.randn(2, 3, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype, but got "
                                           "Double and Float"):
        cell(torch.randn(2, 3), torch.randn(2, 4, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="same dtype, but got: double != float"):
        F.linear(torch.randn(2, 3, dtype=torch.float64), torch.randn(4, 3))
    with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype, but got "
                                           "Half and Float"):
        F.linear(torch.randn(2, 3).half(), torch.randn(4, 3), torch.randn(4))


def test_mha_mask_and_shape_messages():
    m = nn.MultiheadAttention(4, 2)
    x = torch.randn(3, 2, 4)
    kpm = torch.zeros(2, 3, dtype=torch.bool)
    with pytest.warns(UserWarning, match="Support for mismatched key_padding_mask and "
                                         "attn_mask is deprecated"):
        m(x, x, x, key_padding_mask=kpm, attn_mask=torch.zeros(3, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m(x, x, x, key_padding_mask=kpm, attn_mask=torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(RuntimeError, match=r"2D attn_mask is torch.Size\(\[2, 2\]\), but should "
                                           r"be \(3, 3\)"):
        m(x, x, x, attn_mask=torch.zeros(2, 2))
    with pytest.raises(AssertionError, match=r"key shape torch.Size\(\[3, 2, 4\]\) does not "
                                             r"match value shape torch.Size\(\[2, 2, 4\]\)"):
        m(x, x, x[:2])
    with pytest.raises(AssertionError, match=r"Expected key_padded_mask.shape\[1\] to be 3, "
                                             r"but got 2"):
        m(x, x, x, key_padding_mask=torch.zeros(2, 2, dtype=torch.bool))


def test_sdpa_math_path_refuses_a_mask_that_widens_the_scores():
    q = torch.randn(4, 5, 2)
    with pytest.raises(RuntimeError, match=r"output with shape \[4, 5, 5\] doesn't match the "
                                           r"broadcast shape \[2, 4, 5, 5\]"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=torch.zeros(2, 1, 5, 5))


def test_encoder_nested_tensor_warning_points_at_the_caller():
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 8), 1)
    assert [w.filename for w in rec if "enable_nested_tensor" in str(w.message)] == [__file__]


def test_embedding_bag_2d_input_with_offsets_names_the_offsets_type():
    bag = nn.EmbeddingBag(5, 2)
    with pytest.raises(ValueError, match="However, found offsets of type"):
        bag(torch.tensor([[1, 2]]), torch.tensor([0]))
    with pytest.raises(RuntimeError, match=r"offsets\[0\] has to be 0, i.e., the first sequence "
                                           r"in the mini-batch has to start from position 0. "
                                           r"However, got 1"):
        bag(torch.tensor([1, 2, 3]), torch.tensor([1, 2]))
    with pytest.raises(RuntimeError, match=r"offsets\[-1\] can not be greater than input's "
                                           r"length 3 but got offsets\[-1\] of 4"):
        bag(torch.tensor([1, 2, 3]), torch.tensor([0, 4]))


def test_compiled_dropout_of_a_transposed_activation_draws_eagers_mask():
    def f(x):
        return F.dropout((x * 1).transpose(0, 1), 0.5)
    x = torch.tensor(np.arange(1.0, 13.0).reshape(4, 3))
    torch.manual_seed(5)
    eager = to_np(f(x))
    cf = torch.compile(f)
    for _ in range(2):                  # the trace, then a replay
        torch.manual_seed(5)
        np.testing.assert_array_equal(to_np(cf(x)), eager)
    kept = eager != 0
    np.testing.assert_array_equal(eager[kept], 2 * np.arange(1.0, 13.0).reshape(4, 3).T[kept])


def test_encoder_inference_with_padding_mask_zeroes_padded_positions_like_nested_fast_path():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True).double().eval()
    enc = nn.TransformerEncoder(layer, 2)
    ref = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    ref.load_state_dict(enc.state_dict())
    x = torch.randn(2, 4, 8, dtype=torch.float64)
    kpm = torch.tensor([[False] * 4, [False, False, True, True]])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, want = to_np(enc(x, src_key_padding_mask=kpm)), to_np(ref(x, src_key_padding_mask=kpm))
        np.testing.assert_array_equal(got[1, 2:], 0.0)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
        np.testing.assert_allclose(got[1, :2], want[1, :2], rtol=1e-12)
        assert np.abs(want[1, 2:]).min() > 0         # (the math path's own padded rows)
        # not left aligned (padding first): no fast path, PyTorch's mask check
        kl = torch.tensor([[False] * 4, [True, True, False, False]])
        assert np.abs(to_np(enc(x, src_key_padding_mask=kl))[1, :2]).min() > 0
    # with grad enabled (parameters require grad) PyTorch takes the padded math path
    out = to_np(enc(x, src_key_padding_mask=kpm))
    np.testing.assert_allclose(out, want, rtol=1e-12)
