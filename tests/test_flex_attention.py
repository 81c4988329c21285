"""torch.nn.attention.flex_attention against NumPy float64: score_mod/mask_mod attention, the
log-sum-exp, fully masked rows, GQA, gradients by finite differences, and BlockMask's block
lists, sparsity and printing (hand-derived for a causal and a sliding-window mask)."""
import warnings

import numpy as np
import pytest

import framework as torch
from framework.nn.attention import flex_attention as fa
from tests.conftest import to_np


def _ref(q, k, v, bias=None, keep=None):
    s = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
    if bias is not None:
        s = s + bias
    if keep is not None:
        s = np.where(keep, s, -np.inf)
    mx = s.max(-1, keepdims=True)
    dead = ~np.isfinite(mx)
    e = np.where(dead, 0.0, np.exp(s - np.where(dead, 0.0, mx)))
    tot = e.sum(-1, keepdims=True)
    p = np.where(dead, 0.0, e / np.where(dead, 1.0, tot))
    lse = np.where(dead[..., 0], -np.inf, np.log(np.where(dead, 1.0, tot))[..., 0]
                   + np.where(dead, 0.0, mx)[..., 0])
    return p @ v, lse


def _qkv(B=2, H=2, L=40, S=40, E=8, seed=0):
    r = np.random.default_rng(seed)
    return r.standard_normal((B, H, L, E)), r.standard_normal((B, H, S, E)), \
        r.standard_normal((B, H, S, E))


def _causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_score_mod_and_block_mask_equal_numpy():
    q, k, v = _qkv()
    T = [torch.tensor(a) for a in (q, k, v)]
    i = np.arange(40)
    keep = i[:, None] >= i[None, :]
    bm = fa.create_block_mask(_causal, None, None, 40, 40, device="cpu", BLOCK_SIZE=16)
    out, lse = fa.flex_attention(*T, block_mask=bm, return_lse=True)
    ro, rl = _ref(q, k, v, keep=keep)
    np.testing.assert_allclose(to_np(out), ro, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_np(lse), rl, rtol=1e-10)
    slopes = torch.tensor([0.5, 0.25], dtype=torch.float64)

    def alibi(score, b, h, q_idx, kv_idx):       # a captured tensor indexed per head
        return score + slopes[h] * (kv_idx - q_idx)
    out = fa.flex_attention(*T, score_mod=alibi)
    bias = np.array([0.5, 0.25])[None, :, None, None] * (i[None, :] - i[:, None])
    np.testing.assert_allclose(to_np(out), _ref(q, k, v, bias=bias)[0], rtol=1e-10, atol=1e-12)


def test_fully_masked_rows_gqa_and_errors():
    q, k, v = _qkv(B=1, H=1, L=8, S=8)
    T = [torch.tensor(a) for a in (q, k, v)]
    none = fa.create_block_mask(lambda b, h, q_idx, kv_idx: q_idx < 0, 1, 1, 8, 8, device="cpu")
    out, aux = fa.flex_attention(*T, block_mask=none, return_aux=fa.AuxRequest(lse=True))
    assert to_np(out).tolist() == np.zeros((1, 1, 8, 8)).tolist()
    assert np.isneginf(to_np(aux.lse)).all() and aux.max_scores is None
    qg = np.random.default_rng(1).standard_normal((1, 4, 8, 8))
    out = fa.flex_attention(torch.tensor(qg), T[1].repeat(1, 2, 1, 1), T[2].repeat(1, 2, 1, 1),
                            enable_gqa=True)
    kk, vv = np.repeat(np.repeat(k, 2, 1), 2, 1), np.repeat(np.repeat(v, 2, 1), 2, 1)
    np.testing.assert_allclose(to_np(out), _ref(qg, kk, vv)[0], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="Try setting enable_gqa=True"):
        fa.flex_attention(torch.tensor(qg), T[1], T[2])
    with pytest.raises(NotImplementedError, match="must be 4D tensors"):
        fa.flex_attention(T[0][0], T[1][0], T[2][0])
    with pytest.raises(NotImplementedError, match="max scores is not supported on CPU"):
        fa.flex_attention(*T, return_aux=fa.AuxRequest(max_scores=True))
    with pytest.raises(AssertionError, match="requires a mask_mod function"):
        fa.create_block_mask(lambda s, b, h, q_idx, kv_idx: s, 1, 1, 8, 8, device="cpu")


def test_gradients_by_finite_differences():
    q, k, v = _qkv(B=1, H=1, L=5, S=5, E=3, seed=2)
    bm = fa.create_block_mask(_causal, 1, 1, 5, 5, device="cpu", BLOCK_SIZE=4)
    T = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    assert torch.autograd.gradcheck(
        lambda a, b, c: fa.flex_attention(a, b, c, block_mask=bm,
                                          score_mod=lambda s, *_: s * 0.5), T)


def test_block_mask_lists_sparsity_and_printing():
    def sliding(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (q_idx - kv_idx < 200)
    bm = fa.create_block_mask(sliding, 2, 1, 512, 384, device="cpu")
    # 128-blocks: query block r keeps key blocks r-1..r (r-2..r where the window reaches);
    # no block is wholly kept; indices list the kept blocks first, then the rest, ascending
    assert bm.kv_num_blocks.dtype == torch.int32 and bm.shape == (2, 1, 512, 384)
    assert bm.kv_num_blocks[1, 0].tolist() == [1, 2, 3, 2]
    assert bm.kv_indices[1, 0].tolist() == [[0, 1, 2], [0, 1, 2], [0, 1, 2], [1, 2, 0]]
    assert bm.full_kv_num_blocks[1, 0].tolist() == [0, 0, 0, 0]
    assert bm.q_num_blocks[1, 0].tolist() == [3, 3, 2]
    assert bm.q_indices[1, 0].tolist() == [[0, 1, 2, 3], [1, 2, 3, 0], [2, 3, 0, 1]]
    assert bm.to_dense()[0, 0].tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1], [0, 1, 1]]
    assert abs(bm.sparsity() - 100 * (1 - 8 / 12)) < 1e-9
    causal = fa.create_block_mask(_causal, None, None, 256, 256, device="cpu")
    assert causal.full_kv_num_blocks[0, 0].tolist() == [0, 1]        # block (1, 0) is whole
    assert str(causal) == "BlockMask(shape=(1, 1, 256, 256), sparsity=25.00%, \n(0, 0)\n" \
                          "██  \n████\n)"
    assert repr(causal).startswith("BlockMask(\n    kv_num_blocks=torch.Size([1, 1, 2]),")
    assert fa.create_mask(fa.or_masks(_causal, lambda b, h, q_idx, kv_idx: kv_idx == 3),
                          1, 1, 4, 4).int().tolist() == \
        [[[[1, 0, 0, 1], [1, 1, 0, 1], [1, 1, 1, 1], [1, 1, 1, 1]]]]
    assert fa.create_mask(fa.and_masks(_causal, fa.noop_mask), 1, 1, 2, 2).tolist() == \
        [[[[True, False], [True, True]]]]
