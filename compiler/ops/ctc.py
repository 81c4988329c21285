"""Connectionist temporal classification (CTC): the negative log-likelihood of each target
sequence under per-frame class log-probabilities, summed over every alignment (Graves et al.
2006), and its gradient. Extern primitives: the alpha/beta recursions run frame by frame,
vectorised over the batch and the extended label positions, in float64.

The extended label sequence of a target l is l' = (blank, l1, blank, l2, ..., blank): 2S+1
positions. alpha[t, s] is the log-probability of the alignments of frames 0..t ending at
position s; a step may stay, move one position, or skip a blank between two different labels.
"""
import numpy as np

from runtime import dtypes as dt
from ..ir.registry import AVal, Prim, register

_CHECK = "(while checking arguments for ctc_loss_allocate_outputs)"


def _ctc_meta(log_probs, targets, input_lengths, target_lengths, blank=0, zero_infinity=False):
    if not log_probs.dtype.is_floating_point:
        raise RuntimeError(f"ctc_loss: log_probs must be a floating point tensor, got "
                           f"{log_probs.dtype.name} of shape {list(log_probs.shape)}")
    if log_probs.dtype in (dt.float16, dt.bfloat16):
        raise NotImplementedError(f"\"ctc_loss_cpu\" not implemented for "
                                  f"'{dt.tname(log_probs.dtype)}'")
    if len(log_probs.shape) != 3:
        raise RuntimeError(f"ctc_loss: expected log_probs of shape (T, N, C), got "
                           f"{list(log_probs.shape)}")
    t, n, c = log_probs.shape
    if not 0 <= blank < c:
        raise RuntimeError("blank must be in label range")
    for name, x in (("input_lengths", input_lengths), ("target_lengths", target_lengths)):
        if x.dtype.category != 1:
            raise RuntimeError(f"{name} must be integral")
        if tuple(x.shape) != (n,):
            raise RuntimeError(f"{name} must be of size batch_size")
    if len(targets.shape) == 2 and targets.shape[0] != n:
        raise RuntimeError(f"Expected tensor to have size {n} at dimension 0, but got size "
                           f"{targets.shape[0]} for argument #2 'targets' {_CHECK}")
    if len(targets.shape) not in (1, 2):
        raise RuntimeError(f"ctc_loss: expected targets of shape (N, S) or (sum(target_lengths),),"
                           f" got {list(targets.shape)}")
    return AVal((n,), log_probs.dtype)


def _padded_targets(targets, il, tl, t_max):
    """(N, S) targets whatever their layout, after PyTorch's argument checks."""
    n = tl.shape[0]
    if il.size and il.max() > t_max:
        raise RuntimeError(f"Expected input_lengths to have value at most {t_max}, but got value "
                           f"{il.max()} {_CHECK}")
    if (il < 0).any() or (tl < 0).any():
        raise RuntimeError(f"ctc_loss: lengths must be non-negative (input_lengths {il.tolist()}, "
                           f"target_lengths {tl.tolist()})")
    if targets.ndim == 2:
        if tl.size and tl.max() > targets.shape[1]:
            raise RuntimeError(f"Expected tensor to have size at least {tl.max()} at dimension 1, "
                               f"but got size {targets.shape[1]} for argument #2 'targets' {_CHECK}")
        return targets.astype(np.int64)
    total = int(tl.sum())
    if targets.shape[0] != total:
        raise RuntimeError(f"Expected tensor to have size {total} at dimension 0, but got size "
                           f"{targets.shape[0]} for argument #2 'targets' {_CHECK}")
    out = np.zeros((n, int(tl.max()) if n else 0), np.int64)
    starts = np.concatenate([[0], np.cumsum(tl)[:-1]]).astype(np.int64)
    for b in range(n):                              # (batch-sized loop over target slices)
        out[b, :tl[b]] = targets[starts[b]:starts[b] + tl[b]]
    return out


def _lse(*xs):
    """log(sum(exp(x))) elementwise over several arrays, -inf where all are -inf."""
    m = np.maximum.reduce(xs)
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(np.isneginf(m), -np.inf, safe + np.log(sum(np.exp(x - safe) for x in xs)))


class _Lattice:
    """The extended labels, allowed moves and per-frame emissions of one batch."""

    def __init__(self, log_probs, targets, il, tl, blank):
        self.T, self.N, self.C = log_probs.shape
        self.il, self.tl = il.astype(np.int64), tl.astype(np.int64)
        tgt = _padded_targets(targets, self.il, self.tl, self.T)
        if tgt.size and self.tl.max() > 0:
            used = np.arange(tgt.shape[1])[None, :] < self.tl[:, None]
            bad = used & ((tgt < 0) | (tgt >= self.C))
            if bad.any():
                raise IndexError(f"ctc_loss: target {tgt[bad][0]} is out of range for "
                                 f"{self.C} classes")
        L = 2 * tgt.shape[1] + 1
        ext = np.full((self.N, L), blank, np.int64)
        ext[:, 1::2] = np.where(np.arange(tgt.shape[1])[None, :] < self.tl[:, None], tgt, blank)
        self.ext, self.L = ext, L
        self.valid = np.arange(L)[None, :] < 2 * self.tl[:, None] + 1
        prev2 = np.concatenate([np.full((self.N, 2), -1, np.int64), ext[:, :-2]], 1)[:, :L]
        # a skip lands on a label position (odd s >= 3) that differs from the label before it;
        # PyTorch decides by position, so a target equal to the blank class behaves the same
        s = np.arange(L)[None, :]
        self.skip = (s % 2 == 1) & (s >= 3) & (ext != prev2)
        lp = np.asarray(log_probs, np.float64).transpose(1, 0, 2)         # (N, T, C)
        self.lp = lp
        self.emit = np.take_along_axis(lp, ext[:, None, :], axis=2)       # (N, T, L)
        self.emit = np.where(self.valid[:, None, :], self.emit, -np.inf)

    def alpha(self):
        a = np.full((self.N, self.T, self.L), -np.inf)
        if self.T == 0:
            return a
        a[:, 0, 0] = self.emit[:, 0, 0]
        if self.L > 1:
            a[:, 0, 1] = np.where(self.tl > 0, self.emit[:, 0, 1], -np.inf)
        ninf = np.full((self.N, 2), -np.inf)
        for t in range(1, self.T):
            p = a[:, t - 1]
            p1 = np.concatenate([ninf[:, :1], p[:, :-1]], 1)
            p2 = np.where(self.skip, np.concatenate([ninf, p[:, :-2]], 1)[:, :self.L], -np.inf)
            a[:, t] = _lse(p, p1, p2) + self.emit[:, t]
        return a

    def beta(self):
        """beta[t, s]: log-probability of frames t..T_b-1 from position s (emission at t
        included), so alpha + beta counts frame t's emission twice."""
        b = np.full((self.N, self.T, self.L), -np.inf)
        rows = np.arange(self.N)
        last, end = self.il - 1, 2 * self.tl
        ninf = np.full((self.N, 2), -np.inf)
        nxt_skip = np.concatenate([self.skip[:, 2:], np.zeros((self.N, 2), bool)], 1)
        for t in range(self.T - 1, -1, -1):
            if t < self.T - 1:
                q = b[:, t + 1]
                q1 = np.concatenate([q[:, 1:], ninf[:, :1]], 1)
                q2 = np.where(nxt_skip, np.concatenate([q[:, 2:], ninf], 1), -np.inf)
                b[:, t] = _lse(q, q1, q2) + self.emit[:, t]
            start = rows[last == t]
            if start.size:                          # frame T_b - 1: end on the last blank or label
                b[start, t] = -np.inf
                b[start, t, end[start]] = self.emit[start, t, end[start]]
                has = start[self.tl[start] > 0]
                b[has, t, end[has] - 1] = self.emit[has, t, end[has] - 1]
        return b

    def nll(self, a):
        rows = np.arange(self.N)
        last, end = np.maximum(self.il - 1, 0), 2 * self.tl
        final = a[rows, last, end]
        prev = np.where(self.tl > 0, a[rows, last, np.maximum(end - 1, 0)], -np.inf)
        ll = _lse(final, prev)
        # no frames: the empty target has probability one, any other none
        ll = np.where(self.il == 0, np.where(self.tl == 0, 0.0, -np.inf), ll)
        return -ll


def _ctc_np(out, log_probs, targets, input_lengths, target_lengths, blank=0,
            zero_infinity=False):
    lat = _Lattice(log_probs, targets, input_lengths, target_lengths, blank)
    nll = lat.nll(lat.alpha())
    if zero_infinity:
        nll = np.where(np.isinf(nll), 0.0, nll)
    return nll.astype(log_probs.dtype)


def _vjp_ctc(b, g, log_probs, targets, input_lengths, target_lengths, out=None, blank=0,
             zero_infinity=False):
    return (b.ctc_loss_backward(g, log_probs, targets, input_lengths, target_lengths,
                                blank=blank, zero_infinity=zero_infinity), None, None, None)


register(Prim("ctc_loss", "extern", _ctc_meta, _ctc_np, _vjp_ctc, grad_name="CtcLossBackward0",
              doc="per-sequence CTC negative log-likelihood"))


def _ctc_backward_meta(g, log_probs, targets, input_lengths, target_lengths, blank=0,
                       zero_infinity=False):
    return AVal(log_probs.shape, log_probs.dtype)


def _ctc_backward_np(out, g, log_probs, targets, input_lengths, target_lengths, blank=0,
                     zero_infinity=False):
    """PyTorch's gradient (ctc_loss_backward_cpu): exp(lp) - exp(lse_{s: l'_s = c}(alpha + beta)
    + nll - lp). Its first term assumes log_probs came from a log_softmax, whose backward then
    cancels it; like PyTorch's, it is the gradient through log_softmax, not of the raw input."""
    lat = _Lattice(log_probs, targets, input_lengths, target_lengths, blank)
    a = lat.alpha()
    nll = lat.nll(a)
    ab = a + lat.beta()                                                 # (N, T, L)
    m = ab.max(axis=2, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    onehot = (lat.ext[:, :, None] == np.arange(lat.C)[None, None, :]).astype(np.float64)
    acc = np.matmul(np.exp(ab - m), onehot)                             # (N, T, C)
    with np.errstate(divide="ignore", invalid="ignore"):
        lcab = np.log(acc) + m
        grad = np.exp(lat.lp) - np.exp(lcab + nll[:, None, None] - lat.lp)
    live = np.arange(lat.T)[None, :, None] < lat.il[:, None, None]
    grad = np.where(live, grad, 0.0)
    if zero_infinity:
        grad = np.where(np.isinf(nll)[:, None, None], 0.0, grad)
    grad = grad * np.asarray(g, np.float64)[:, None, None]
    return grad.transpose(1, 0, 2).astype(log_probs.dtype)


register(Prim("ctc_loss_backward", "extern", _ctc_backward_meta, _ctc_backward_np,
              differentiable=False, doc="gradient of ctc_loss with respect to log_probs"))
