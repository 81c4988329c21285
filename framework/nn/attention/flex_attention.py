"""torch.nn.attention.flex_attention: attention whose scores a user function modifies
(score_mod) and whose pattern a mask function selects (mask_mod, kept block-sparse in a
BlockMask). PyTorch runs score_mod/mask_mod under vmap over (batch, head, q_idx, kv_idx);
here they are called once on broadcast index tensors of shapes (B,1,1,1), (1,H,1,1),
(1,1,Q,1), (1,1,1,KV), which gives the same result for the element-wise functions flex
attention allows (indexing a captured tensor with them gathers per element). The math is
PyTorch's eager reference (float32/float64 scores, fully masked rows give 0 and lse -inf);
under compile() the ops fuse like any others."""
import math
import warnings
from typing import NamedTuple

from runtime import dtypes as dt
from ... import creation as C
from ... import ops_math as M
from ..._dispatch import STATE
from ...tensor import Tensor

__all__ = ["BlockMask", "flex_attention", "create_block_mask", "create_mask", "or_masks",
           "and_masks", "noop_mask", "AuxRequest", "AuxOutput"]

_DEFAULT_SPARSE_BLOCK_SIZE = 128
_FLEX_ATTENTION_DISABLE_COMPILE_DEBUG = False
_WARNED = set()


class AuxRequest(NamedTuple):
    """Which auxiliary outputs flex_attention returns (return_aux=)."""
    lse: bool = False
    max_scores: bool = False


class AuxOutput(NamedTuple):
    lse: "Tensor | None" = None
    max_scores: "Tensor | None" = None


def _warn_once(key, msg, cls):
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(msg, cls, stacklevel=3)


def noop_mask(b, h, q_idx, kv_idx):
    """A mask_mod that keeps every position."""
    return C.ones((), dtype=dt.bool_, device=b.device)


def _index_grids(B, H, Q, KV, device):
    return (C.arange(B, device=device).reshape(B, 1, 1, 1),
            C.arange(H, device=device).reshape(1, H, 1, 1),
            C.arange(Q, device=device).reshape(1, 1, Q, 1),
            C.arange(KV, device=device).reshape(1, 1, 1, KV))


def _is_score_mod(fn):
    import inspect
    try:
        n = len([p for p in inspect.signature(fn).parameters.values()
                 if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY,
                                                                       p.POSITIONAL_OR_KEYWORD)])
    except (TypeError, ValueError):
        return False
    return n == 5


def or_masks(*mask_mods):
    """The mask_mod that keeps a position when any of mask_mods does."""
    if not all(callable(m) for m in mask_mods):
        raise RuntimeError(f"All inputs should be callable mask_mods: {mask_mods}")

    def or_mask(b, h, q_idx, kv_idx):
        r = C.zeros((), dtype=dt.bool_, device=b.device)
        for m in mask_mods:
            r = r | m(b, h, q_idx, kv_idx)
        return r
    return or_mask


def and_masks(*mask_mods):
    """The mask_mod that keeps a position when all of mask_mods do."""
    if not all(callable(m) for m in mask_mods):
        raise RuntimeError(f"All inputs should be callable mask_mods: {mask_mods}")

    def and_mask(b, h, q_idx, kv_idx):
        r = C.ones((), dtype=dt.bool_, device=b.device)
        for m in mask_mods:
            r = r & m(b, h, q_idx, kv_idx)
        return r
    return and_mask


def create_mask(mod_fn, B, H, Q_LEN, KV_LEN, device=None):
    """The dense (B, H, Q_LEN, KV_LEN) bool mask of a mask_mod, or of a score_mod (True where
    it does not give -inf)."""
    B, H = B or 1, H or 1
    device = device or "cpu"
    b, h, m, n = _index_grids(B, H, Q_LEN, KV_LEN, device)
    if _is_score_mod(mod_fn):
        out = mod_fn(C.zeros(B, H, Q_LEN, KV_LEN, device=device), b, h, m, n)
        return M.logical_not(M.isneginf(out)).expand(B, H, Q_LEN, KV_LEN).contiguous()
    r = mod_fn(b, h, m, n)
    if not isinstance(r, Tensor):
        r = C.full((), bool(r), dtype=dt.bool_, device=device)
    return r.to(dt.bool_).expand(B, H, Q_LEN, KV_LEN).contiguous()


def _dense_to_ordered(dense):
    """(count per row, column indices with the set ones first, each group ascending), int32:
    PyTorch's block lists."""
    dense = dense.to(dt.int32)
    return dense.sum(-1).to(dt.int32), dense.argsort(-1, descending=True, stable=True).to(dt.int32)


def _ordered_to_dense(num, idx, ncols):
    pos = C.arange(idx.shape[-1], device=idx.device)
    keep = (pos < num.unsqueeze(-1)).to(dt.int32)
    out = C.zeros(tuple(idx.shape[:-1]) + (ncols,), dtype=dt.int32, device=idx.device)
    return out.scatter_add(-1, idx.long(), keep) > 0


class BlockMask:
    """A block-sparse attention mask (PyTorch's format): per (batch, head, query block) the
    key blocks partly masked (kv_num_blocks / kv_indices) and wholly kept (full_kv_*), the
    transposed lists for the backward (q_*), the BLOCK_SIZE, and the mask_mod applied inside
    the partial blocks."""

    def __init__(self, seq_lengths, kv_num_blocks, kv_indices, full_kv_num_blocks,
                 full_kv_indices, q_num_blocks, q_indices, full_q_num_blocks, full_q_indices,
                 BLOCK_SIZE, mask_mod):
        self.seq_lengths = tuple(seq_lengths)
        self.kv_num_blocks, self.kv_indices = kv_num_blocks, kv_indices
        self.full_kv_num_blocks, self.full_kv_indices = full_kv_num_blocks, full_kv_indices
        self.q_num_blocks, self.q_indices = q_num_blocks, q_indices
        self.full_q_num_blocks, self.full_q_indices = full_q_num_blocks, full_q_indices
        self.BLOCK_SIZE = BLOCK_SIZE
        self.mask_mod = mask_mod if mask_mod is not None else noop_mask

    @classmethod
    def from_kv_blocks(cls, kv_num_blocks, kv_indices, full_kv_num_blocks=None,
                       full_kv_indices=None, BLOCK_SIZE=_DEFAULT_SPARSE_BLOCK_SIZE,
                       mask_mod=None, seq_lengths=None, compute_q_blocks=True):
        if kv_indices.ndim < 2:
            raise RuntimeError("BlockMask must have at least 2 dimensions")
        if (full_kv_num_blocks is None) != (full_kv_indices is None):
            raise RuntimeError("full_kv_num_blocks and full_kv_indices must be both provided "
                               "or omitted")
        if isinstance(BLOCK_SIZE, int):
            BLOCK_SIZE = (BLOCK_SIZE, BLOCK_SIZE)
        rows, cols = kv_indices.shape[-2], kv_indices.shape[-1]
        if seq_lengths is None:
            seq_lengths = (rows * BLOCK_SIZE[0], cols * BLOCK_SIZE[1])
        q = (None,) * 4
        if compute_q_blocks:
            q = _dense_to_ordered(_ordered_to_dense(kv_num_blocks, kv_indices, cols)
                                  .transpose(-2, -1))
            fq = (_dense_to_ordered(_ordered_to_dense(full_kv_num_blocks, full_kv_indices, cols)
                                    .transpose(-2, -1)) if full_kv_num_blocks is not None
                  else (None, None))
            q = q + fq
        return cls(seq_lengths, kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices,
                   q[0], q[1], q[2], q[3], BLOCK_SIZE, mask_mod)

    def as_tuple(self, flatten=True):
        t = (self.kv_num_blocks, self.kv_indices, self.full_kv_num_blocks, self.full_kv_indices,
             self.q_num_blocks, self.q_indices, self.full_q_num_blocks, self.full_q_indices,
             self.BLOCK_SIZE, self.mask_mod)
        return (self.seq_lengths[0], self.seq_lengths[1], *t[:8], self.BLOCK_SIZE[0],
                self.BLOCK_SIZE[1], self.mask_mod) if flatten else (self.seq_lengths, *t)

    @property
    def shape(self):
        return tuple(self.kv_indices.shape[:-2]) + self.seq_lengths

    def numel(self):
        return math.prod(self.shape)

    def sparsity(self):
        """The percentage of blocks not computed."""
        blocks = self.kv_num_blocks.sum().item()
        if self.full_kv_num_blocks is not None:
            blocks += self.full_kv_num_blocks.sum().item()
        return 100 * (1 - blocks * self.BLOCK_SIZE[0] * self.BLOCK_SIZE[1] / self.numel())

    def to_dense(self):
        """The (B, H, query blocks, key blocks) int32 map of computed blocks."""
        d = _ordered_to_dense(self.kv_num_blocks, self.kv_indices, self.kv_indices.shape[-1])
        if self.full_kv_num_blocks is not None:
            d = d | _ordered_to_dense(self.full_kv_num_blocks, self.full_kv_indices,
                                      self.full_kv_indices.shape[-1])
        return d.to(dt.int32)

    def to_string(self, grid_size=(20, 20), limit=4):
        dense = self.to_dense()
        *batch, rows, cols = dense.shape
        if grid_size == -1:
            mr, mc = rows, cols
        elif isinstance(grid_size, int):
            mr = mc = grid_size
        else:
            mr, mc = grid_size
        rs, cs = max(1, -(-rows // mr)), max(1, -(-cols // mc))
        import itertools
        import numpy as np
        d = np.asarray(dense.cpu().numpy(), np.float64)
        out = []
        for i, bi in enumerate(itertools.product(*[range(n) for n in batch])):
            if i == limit:
                out += ["...", "To print out more, set BlockMask.to_string(limit=N)",
                        "You can also index (BlockMask[batch, head]) to choose a specific batch "
                        "or head"]
                break
            cur = d[bi]
            vis = f"{bi}\n"
            for r in range(0, rows, rs):
                for c in range(0, cols, cs):
                    p = cur[r:r + rs, c:c + cs].mean()
                    vis += ("█" if p == 1 else " " if p == 0 else "░") * 2
                vis += "\n"
            out.append(vis)
        return "\n".join(out)

    def __str__(self):
        return (f"BlockMask(shape={self.shape}, sparsity={self.sparsity():.2f}%, \n"
                + self.to_string().strip() + "\n)")

    def __repr__(self):
        def sh(x):
            return x.shape if x is not None else None
        name = getattr(self.mask_mod, "__name__", self.mask_mod)
        return (f"BlockMask(\n    kv_num_blocks={self.kv_num_blocks.shape},\n"
                f"    kv_indices={self.kv_indices.shape},\n"
                f"    full_kv_num_blocks={sh(self.full_kv_num_blocks)},\n"
                f"    full_kv_indices={sh(self.full_kv_indices)},\n"
                f"    q_num_blocks={sh(self.q_num_blocks)},\n    q_indices={sh(self.q_indices)},\n"
                f"    full_q_num_blocks={sh(self.full_q_num_blocks)},\n"
                f"    full_q_indices={sh(self.full_q_indices)},\n"
                f"    BLOCK_SIZE={self.BLOCK_SIZE},\n    shape={self.shape},\n"
                f"    sparsity={self.sparsity():.2f}%,\n    mask_mod={name}\n)")

    def __getitem__(self, index):
        f = (lambda t: None if t is None else t[index])
        return BlockMask(self.seq_lengths, f(self.kv_num_blocks), f(self.kv_indices),
                         f(self.full_kv_num_blocks), f(self.full_kv_indices),
                         f(self.q_num_blocks), f(self.q_indices), f(self.full_q_num_blocks),
                         f(self.full_q_indices), self.BLOCK_SIZE, self.mask_mod)

    def to(self, device):
        f = (lambda t: None if t is None else t.to(device))
        return BlockMask(self.seq_lengths, f(self.kv_num_blocks), f(self.kv_indices),
                         f(self.full_kv_num_blocks), f(self.full_kv_indices),
                         f(self.q_num_blocks), f(self.q_indices), f(self.full_q_num_blocks),
                         f(self.full_q_indices), self.BLOCK_SIZE, self.mask_mod)


def create_block_mask(mask_mod, B, H, Q_LEN, KV_LEN, device=None,
                      BLOCK_SIZE=_DEFAULT_SPARSE_BLOCK_SIZE, _compile=False,
                      separate_full_blocks=True, **_):
    """The BlockMask of mask_mod over (B, H, Q_LEN, KV_LEN): blocks with some kept positions
    are partial, blocks with all kept are full (when separate_full_blocks)."""
    if _is_score_mod(mask_mod):
        raise AssertionError(f"create-block_mask requires a mask_mod function! Got {mask_mod}")
    qb, kb = (BLOCK_SIZE, BLOCK_SIZE) if isinstance(BLOCK_SIZE, int) else tuple(BLOCK_SIZE)
    B, H = B or 1, H or 1
    mask = create_mask(mask_mod, B, H, Q_LEN, KV_LEN, device)
    rows, cols = -(-Q_LEN // qb), -(-KV_LEN // kb)
    if rows * qb != Q_LEN or cols * kb != KV_LEN:      # (padding positions count as masked)
        mask = _pad_false(mask, rows * qb, cols * kb)
    blocks = mask.reshape(B, H, rows, qb, cols, kb)
    anyb, allb = blocks.any(-1).any(-2), blocks.all(-1).all(-2)
    partial = (anyb & ~allb) if separate_full_blocks else anyb
    kv = _dense_to_ordered(partial)
    full = _dense_to_ordered(allb) if separate_full_blocks else (None, None)
    q = _dense_to_ordered(partial.transpose(-2, -1))
    fq = _dense_to_ordered(allb.transpose(-2, -1)) if separate_full_blocks else (None, None)
    return BlockMask((Q_LEN, KV_LEN), kv[0], kv[1], full[0], full[1], q[0], q[1], fq[0], fq[1],
                     (qb, kb), mask_mod)


def _pad_false(mask, rows, cols):
    out = C.zeros(tuple(mask.shape[:2]) + (rows, cols), dtype=dt.bool_, device=mask.device)
    out[:, :, :mask.shape[2], :mask.shape[3]] = mask
    return out


def flex_attention(query, key, value, score_mod=None, block_mask=None, scale=None,
                   enable_gqa=False, return_lse=False, kernel_options=None, *, return_aux=None):
    """softmax(score_mod(q k^T * scale) masked by block_mask's mask_mod) v over (B, H, L, E)
    query and (B, Hkv, S, E) key/value. return_lse / return_aux add the log-sum-exp (and the
    row maxima) of the modified scores, in natural log, as PyTorch returns them."""
    if query.ndim != 4 or key.ndim != 4 or value.ndim != 4:
        raise NotImplementedError("NYI: query, key, and value must be 4D tensors")
    if query.dtype is not key.dtype or query.dtype is not value.dtype:
        raise ValueError(f"Expected query, key, and value to have the same dtype, but got "
                         f"query.dtype: {query.dtype}, key.dtype: {key.dtype}, and "
                         f"value.dtype: {value.dtype} instead.")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"Expect query and key/value to have the same embedding dimension but "
                         f"got E={query.shape[-1]} and E={key.shape[-1]}.")
    Hq, Hkv = query.shape[1], key.shape[1]
    if (not enable_gqa and Hq != Hkv) or (enable_gqa and Hq % Hkv):
        raise ValueError(f"Expect query and key/value to have the same number of heads but got "
                         f"Hq={Hq} and Hkv={Hkv}. Try setting enable_gqa=True for GQA."
                         if not enable_gqa else
                         f"Expect number of query heads to be a multiple of kv heads for GQA but "
                         f"got Hq={Hq} and Hkv={Hkv}.")
    if return_aux is not None and return_aux.max_scores and query.device.type == "cpu":
        raise NotImplementedError("Returning max scores is not supported on CPU/MPS.")
    if return_lse:
        _warn_once("lse", "return_lse is deprecated and will be removed in v2.10. Please use "
                          "return_aux=AuxRequest(lse=True) instead.", FutureWarning)
    if STATE.tracer is None and not _FLEX_ATTENTION_DISABLE_COMPILE_DEBUG:
        _warn_once("eager", "flex_attention called without torch.compile() - this will use an "
                   "unfused implementation that materializes the full scores matrix instead of "
                   "generating a fused kernel.\n\nSOLUTION: Use torch.compile(flex_attention)(...)"
                   "\n\nIf you want to debug your score_mod/mask_mod, you can set:\n"
                   "torch.nn.attention.flex_attention._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG = "
                   "True\n\nThis will allow you to use print statements or breakpoints. Note: "
                   "This doesn't work with the backwards pass and may produce incorrect "
                   "results.", UserWarning)
    B, L, S = query.shape[0], query.shape[2], key.shape[2]
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    if Hq != Hkv:
        g = Hq // Hkv
        key, value = key.repeat_interleave(g, dim=1), value.repeat_interleave(g, dim=1)
    work = dt.float64 if query.dtype is dt.float64 else dt.float32
    scores = (query.to(work) @ key.to(work).transpose(-2, -1)) * scale
    b, h, m, n = _index_grids(B, Hq, L, S, query.device)
    if score_mod is not None:
        scores = score_mod(scores, b, h, m, n).to(work).expand(B, Hq, L, S)
    if block_mask is not None:
        keep = block_mask.mask_mod(b, h, m, n)
        if isinstance(keep, Tensor):
            scores = M.where(keep, scores, float("-inf"))
    lse = scores.logsumexp(-1)
    dead = (scores == float("-inf")).all(-1)
    lse = M.where(dead, float("-inf"), lse)
    p = M.where(dead.unsqueeze(-1), 0.0, (scores - M.where(dead, 0.0, lse).unsqueeze(-1)).exp())
    out = p.to(query.dtype) @ value.to(query.dtype)
    if return_aux is not None:
        aux = AuxOutput(lse=lse if return_aux.lse else None,
                        max_scores=scores.amax(-1) if return_aux.max_scores else None)
        return out, aux
    if return_lse:
        return out, lse
    return out
