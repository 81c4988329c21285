"""torch.utils.flop_counter: FlopCounterMode counts the FLOPs of the aten ops torch counts (mm,
addmm, bmm, baddbmm, convolution and its backward, the fused attention kernels) with torch's
formulas, per module.

Every such op reaches Kiln's `matmul` primitive, so the mode hooks framework._dispatch's PROFILE
slot (the profiler's, free when unused) and, for each matmul, reads the call stack for the
public function that issued it (torch.mm, F.linear, F.conv2d, ...) to name the aten op torch
would have run; a backward matmul is named after the forward op whose node it differentiates.
Modules are tracked as torch's ModuleTracker does (forward hooks, and multi-grad hooks for the
backward), so the per-module counts are torch's, quirks included."""
import sys
import warnings
from collections import defaultdict
from math import prod

import numpy as np

from compiler.ir.registry import REGISTRY
from .. import _dispatch

__all__ = ["FlopCounterMode"]

_MATMUL = REGISTRY["matmul"]
_EINSUM = REGISTRY["einsum"]
_PACKETS = {}


def _packet(name):
    """torch.ops.aten.<name> where Kiln has it, else a key that prints as torch's does."""
    p = _PACKETS.get(name)
    if p is None:
        from ..library import ops
        from ..export._aten import _Packet
        try:
            p = getattr(ops.aten, name)
        except AttributeError:
            p = _Packet(name)
        _PACKETS[name] = p
    return p


# ------------------------------------------------------------------------ torch's formulas

def mm_flop(a_shape, b_shape):
    m, k = a_shape
    k2, n = b_shape
    return m * n * 2 * k


def bmm_flop(a_shape, b_shape):
    b, m, k = a_shape
    _, _, n = b_shape
    return b * m * n * 2 * k


def sdpa_flop_count(q, k, v):
    b, h, s_q, d_q = q
    s_k, d_v = k[2], v[3]
    return bmm_flop((b * h, s_q, d_q), (b * h, d_q, s_k)) + \
        bmm_flop((b * h, s_q, s_k), (b * h, s_k, d_v))


def sdpa_backward_flop_count(q, k, v):
    b, h, s_q, d_q = q
    s_k, d_v = k[2], v[3]
    bh = b * h
    return (bmm_flop((bh, s_q, d_q), (bh, d_q, s_k)) + bmm_flop((bh, s_q, d_v), (bh, d_v, s_k))
            + bmm_flop((bh, s_k, s_q), (bh, s_q, d_v)) + bmm_flop((bh, s_q, s_k), (bh, s_k, d_q))
            + bmm_flop((bh, d_q, s_q), (bh, s_q, s_k)))


def _matmul_prim_flops(a, b):
    """2 * batch * m * n * k of one matmul primitive (what mm/bmm count for it)."""
    sa, sb = tuple(a.shape), tuple(b.shape)
    batch = prod(np.broadcast_shapes(sa[:-2], sb[:-2])) if len(sa) > 2 or len(sb) > 2 else 1
    return batch * sa[-2] * sb[-1] * 2 * sa[-1]


def _einsum_steps(equation, shapes):
    """The FLOPs of each bmm torch's einsum runs: operands contracted left to right, a letter
    only one side still needs summed first (free), a pair with nothing to sum multiplied (not
    a bmm), else bmm(batch, m, k) x (batch, k, n): 2 * the product of all their letters."""
    from compiler.ops.linalg import _explicit_einsum
    ins, rhs = _explicit_einsum(equation, shapes)
    sizes = {}
    for sub, sh in zip(ins, shapes):
        for c, n in zip(sub, sh):
            sizes[c] = max(sizes.get(c, 1), n)
    ops, out = [set(x) for x in ins], set(rhs)
    cur = {c for c in ops[0] if c in out or any(c in o for o in ops[1:])}
    steps = []
    for j in range(1, len(ops)):
        later = out.union(*ops[j + 1:])
        nxt = {c for c in ops[j] if c in later or c in cur}
        summed = {c for c in cur & nxt if c not in later}
        steps.append(2 * prod(sizes[c] for c in cur | nxt) if summed else 0)
        cur = (cur | nxt) - summed
    return steps


# ------------------------------------------------------- which aten op torch would have run

def _foldable(shape, stride):
    """torch's should_fold: t.view(-1, t.size(-1)) needs no copy."""
    return all(stride[i] == stride[i + 1] * shape[i + 1] for i in range(len(shape) - 2))


def _matmul_kind(a, b, b_requires_grad=None):
    """aten.matmul's path: 'mm' (2-D, or folded to 2-D), 'bmm', or None (dot, mv)."""
    da, db = a.ndim, b.ndim
    if db == 1 and da <= 2:
        return None
    if da <= 2 and db <= 2:
        return "mm"
    if da >= db:        # t1 the larger operand (b transposed when it is the larger), t2 the other
        t1_shape, t1_stride, small = tuple(a.shape), tuple(a.stride()), db
        t2_rg = b.requires_grad if b_requires_grad is None else b_requires_grad
    else:
        sh, st = list(b.shape), list(b.stride())
        sh[-1], sh[-2], st[-1], st[-2] = sh[-2], sh[-1], st[-2], st[-1]
        t1_shape, t1_stride, small = tuple(sh), tuple(st), da
        t2_rg = a.requires_grad
    fold = small <= 2 and (t2_rg or (da != 2 and (0 in t1_shape or
                                                   _foldable(t1_shape, t1_stride))))
    if fold:
        return "mm" if small == 2 else None
    return "bmm"


def _k_matmul(loc, a, b):
    k = _matmul_kind(loc["input"], loc["other"])
    return k, k


def _k_linear(loc, a=None, b=None):
    x, w = loc["input"], loc["weight"]
    bias = loc.get("bias")
    if w.ndim == 1:
        return None, None
    if bias is not None and (x.ndim <= 2 or x.is_contiguous()):
        return "addmm", "mm"
    k = _matmul_kind(x, _T(w), w.requires_grad)
    return k, k


class _T:
    """w.t()'s shape and strides, without running an op inside the hook."""
    def __init__(self, w):
        self.shape = tuple(w.shape)[::-1]
        self._stride = tuple(w.stride())[::-1]
        self.ndim = 2
        self.requires_grad = w.requires_grad

    def stride(self):
        return self._stride


def _k_mha_linear(loc, a, b):
    return _k_linear({"input": loc["x"], "weight": loc["w"], "bias": loc["b"]})


def _k_rnn_proj(loc, a, b):
    # torch's cells and its unfused RNN loops run linear(x_t, W, b) per step: addmm
    return ("addmm" if loc["b"] is not None else "mm"), "mm"


def _k_rnn(loc, a, b):
    m = loc["self"]
    if m.mode == "LSTM" and m.proj_size == 0 and a.dtype.name == "float32" and \
            a.device.type == "cpu":
        return None, None        # torch's CPU LSTM is one mkldnn kernel, which nothing counts
    if m.proj_size > 0 and tuple(b.shape) == (m.hidden_size, m.proj_size):
        return "mm", "mm"        # h @ W_hr^T (no bias)
    return ("addmm" if m.bias else "mm"), "mm"


def _k_inner(loc, a, b):
    return (None, None) if loc["input"].ndim == 1 and loc["other"].ndim == 1 else ("mm", "mm")


def _fixed(fwd, bwd):
    return lambda loc, a, b: (fwd, bwd)


def _recognized():
    from .. import ops_linalg as L
    from ..nn import _functional_basic as FB, _functional_conv as FC
    from ..nn.modules import rnn as R
    table = {
        L.mm: _fixed("mm", "mm"), L.bmm: _fixed("bmm", "bmm"),
        L.addmm: _fixed("addmm", "mm"), L.baddbmm: _fixed("baddbmm", "bmm"),
        L.matmul: _k_matmul, FB.linear: _k_linear, FC._linear: _k_mha_linear,
        L.einsum: _fixed("bmm", "bmm"), L.tensordot: _fixed("mm", "mm"), L.inner: _k_inner,
        FC._conv_nd: _fixed("convolution", "conv"),
        FC._conv_transpose_nd: _fixed("convolution", "conv"),
        FC.scaled_dot_product_attention: _fixed("sdpa", "sdpa"),
        R._proj: _k_rnn_proj, R.RNNBase._run: _k_rnn,
    }
    for f in (L.mv, L.dot, L.addmv, L.addbmm, FC.conv_tbc, FB.bilinear):   # torch counts none
        table[f] = _fixed(None, None)
    from ..overrides import unwrap
    return {unwrap(f).__code__: k for f, k in table.items()}


_CODES = None
_APPLY_VJP = None


# ------------------------------------------------------------------------------ the mode

class FlopCounterMode:
    """Counts FLOPs within its context (forward and any backward run inside it), per module:
    `get_total_flops()`, `get_flop_counts()` ({'Global': {aten.mm: n, ...}, 'Net.fc': ...}),
    and torch's table printed at exit when display=True."""

    def __init__(self, mods=None, depth=2, display=True, custom_mapping=None):
        self.flop_counts = defaultdict(lambda: defaultdict(int))
        self.depth = depth
        self.display = display
        if mods is not None:
            warnings.warn("mods argument is not needed anymore, you can stop passing it",
                          stacklevel=2)
        if custom_mapping:
            raise NotImplementedError("FlopCounterMode: custom_mapping is not supported by Kiln")
        self._known = {}           # id(module) -> (module, its name); torch's ModuleTracker
        self._parents = ["Global"]
        self._tags = {}            # autograd node -> (backward kind, data)
        self._prev = None
        self._active = False

    # -- results
    def get_total_flops(self):
        return sum(self.flop_counts["Global"].values())

    def get_flop_counts(self):
        return {k: dict(v) for k, v in self.flop_counts.items()}

    def get_table(self, depth=None):
        if depth is None:
            depth = self.depth
        if depth is None:
            depth = 999999
        total = self.get_total_flops()
        suffix = _suffix(total)
        subsumed = False

        def rows_of(name, d):
            nonlocal subsumed
            t = sum(self.flop_counts[name].values())
            subsumed |= t >= total
            pad = " " * d
            out = [[pad + name, _with_suffix(t, suffix), _percent(t, total)]]
            for k, v in self.flop_counts[name].items():
                out.append([pad + " - " + str(k), _with_suffix(v, suffix), _percent(v, total)])
            return out

        values = []
        for mod in sorted(self.flop_counts):
            if mod == "Global":
                continue
            d = mod.count(".") + 1
            if d > depth:
                continue
            values.extend(rows_of(mod, d - 1))
        if "Global" in self.flop_counts and not subsumed:
            values = rows_of("Global", 0) + values
        if not values:
            values = [["Global", "0", "0%"]]
        return _tabulate(values, ["Module", "FLOP", "% Total"])

    # -- context
    def __enter__(self):
        global _CODES, _APPLY_VJP
        if _CODES is None:
            from ..autograd import engine
            _CODES, _APPLY_VJP = _recognized(), engine._apply_vjp.__code__
        from ..nn.modules.module import (register_module_forward_pre_hook,
                                         register_module_forward_hook)
        self.flop_counts.clear()
        self._parents = ["Global"]
        self._grad_hooks, self._reset_queued = [], False
        self._handles = [register_module_forward_pre_hook(self._pre),
                         register_module_forward_hook(self._post)]
        self._prev = _dispatch.PROFILE
        self._active = True
        self._sdpa = self._bw_frame = None
        _dispatch.PROFILE = self._hook
        return self

    def __exit__(self, *exc):
        self._active = False
        _dispatch.PROFILE = self._prev
        for h in self._handles + self._grad_hooks:
            h.remove()
        self._tags.clear()
        self._sdpa = self._bw_frame = None
        self._parents = ["Global"]
        if self.display:
            print(self.get_table(self.depth))
        return False

    # -- module hierarchy (torch's ModuleTracker names: root type name, then dotted children)
    def _name(self, mod):
        e = self._known.get(id(mod))
        if e is None:
            e = self._known[id(mod)] = (mod, type(mod).__name__, [False])
        if not e[2][0]:
            e[2][0] = True
            for n, sub in mod.named_children():
                self._known[id(sub)] = (sub, f"{e[1]}.{n}", [False])
                self._name(sub)
        return e[1]

    # in backward, as torch's ModuleTracker: a module is entered once the gradients of its
    # outputs are computed and left once those of its inputs are; the pass's end resets
    def _pre(self, mod, args):
        name = self._name(mod)
        self._enter(name)
        self._on_grads(args, lambda g, n=name: self._leave(n))

    def _post(self, mod, args, out):
        name = self._name(mod)
        self._leave(name)
        self._on_grads(out, lambda g, n=name: self._enter_bw(n))

    def _enter(self, name):
        if name not in self._parents:
            self._parents.append(name)

    def _leave(self, name):
        if name in self._parents:
            self._parents.remove(name)

    def _enter_bw(self, name):
        if not self._reset_queued:
            from ..autograd import engine

            def reset():
                self._parents = ["Global"]
                self._reset_queued = False
            engine._ExecutionEngine.queue_callback(reset)
            self._reset_queued = True
        self._enter(name)

    def _on_grads(self, tree, fn):
        from ..autograd.graph import register_multi_grad_hook
        from ..tensor import Tensor
        from ._pytree import tree_leaves
        ts = [t for t in tree_leaves(tree) if isinstance(t, Tensor) and t.requires_grad]
        if ts:
            self._grad_hooks.append(register_multi_grad_hook(ts, fn))

    def _add(self, parents, key, n):
        k = _packet(key)
        for p in dict.fromkeys(parents):
            self.flop_counts[p][k] += n

    # -- the dispatch hook
    def _hook(self, p, args, attrs):
        _dispatch.PROFILE = self._prev
        try:
            if (p is not _MATMUL and p is not _EINSUM) or _dispatch.STATE.tracer is not None:
                return _dispatch.apply(p, *args, **attrs)
            # under vmap torch sees the batching rules' physical ops: named by their shapes
            kind, frame = (None, None) if _dispatch.VMAP is not None else \
                self._classify(sys._getframe(1))
            out = _dispatch.apply(p, *args, **attrs)
            if p is _EINSUM:
                self._count_einsum(kind, frame, args, attrs, out)
            else:
                self._count(kind, frame, args, out)
            return out
        finally:
            if self._active:
                _dispatch.PROFILE = self._hook

    def _classify(self, f):
        best = frame = None
        while f is not None:
            code = f.f_code
            if code is _APPLY_VJP:
                return ("backward", f) if best is None else (best, frame)
            k = _CODES.get(code)
            if k is not None:
                best, frame = k, f
            f = f.f_back
        return best, frame

    def _tag(self, out, tag):
        n = getattr(out, "_node", None)
        if n is not None:
            self._tags[n] = tag

    def _count(self, kind, frame, args, out):
        a, b = args[0], args[1]
        if kind == "backward":
            return self._count_backward(frame, a, b)
        if kind is None:      # a matmul no recognised op issued: as its shapes say (folded)
            key = "mm" if b.ndim == 2 else "bmm"
            self._add(self._parents, key, _matmul_prim_flops(a, b))
            self._tag(out, (key, None))
            return
        fwd, bwd = kind(frame.f_locals, a, b)
        if fwd == "sdpa":
            return self._count_sdpa(frame, a, b, out)
        if fwd is None:
            return
        n = _matmul_prim_flops(a, b)
        self._add(self._parents, fwd, n)
        if bwd == "conv":
            self._tag(out, ("conv", (n, n * int(frame.f_locals["groups"]))))
        else:
            self._tag(out, (bwd, None))

    def _count_einsum(self, kind, frame, args, attrs, out):
        steps = _einsum_steps(attrs["equation"], [tuple(a.shape) for a in args])
        if kind == "backward":
            loc = frame.f_locals
            tag = self._tags.get(loc["node"])
            if tag is None or self._bw_frame is frame:
                return
            self._bw_frame = frame
            kind_, data = tag
            parents = self._parents
            if kind_ == "einsum":       # each bmm's backward: its inputs that need a gradient
                key, fsteps = data
                needs = loc["needs"]
                n = sum(f * (any(needs[:j + 1]) + bool(needs[j + 1]))
                        for j, f in enumerate(fsteps))
                if n:
                    self._add(parents, key, n)
            return
        fwd = "bmm" if kind is None else kind(frame.f_locals, None, None)[0]
        if fwd not in ("mm", "bmm") or not any(steps):
            return
        self._add(self._parents, fwd, sum(steps))
        self._tag(out, ("einsum", (fwd, steps)))

    def _count_sdpa(self, frame, a, b, out):
        s = self._sdpa
        if s is None or s[0] is not frame:
            s = self._sdpa = [frame, *self._sdpa_mode(frame.f_locals), 0]
        _, mode, shapes, i = s
        s[3] += 1
        if mode == "bmm":            # the math path: bmm(q, k^T) and bmm(attn, v)
            self._add(self._parents, "bmm", _matmul_prim_flops(a, b))
            self._tag(out, ("bmm", None))
        elif mode is not None:
            if i == 0:
                self._add(self._parents, mode, sdpa_flop_count(*shapes))
            else:     # attn @ v: its node's backward stands for the fused backward
                self._tag(out, ("sdpa", (mode + "_backward", sdpa_backward_flop_count(*shapes))))

    @staticmethod
    def _sdpa_mode(loc):
        """None (torch's CPU flash kernel, which nothing counts), 'bmm' (the math path) or the
        fused kernel a GPU runs, with the q, k, v shapes."""
        q, k, v = loc["query"], loc["key"], loc["value"]
        shapes = (tuple(q.shape), tuple(k.shape), tuple(v.shape))
        if q.device.type == "cpu":
            from ..nn._functional_conv import _sdpa_grad_name
            name = _sdpa_grad_name(q, loc.get("key0", k), loc.get("value0", v),
                                   loc.get("attn_mask"), loc.get("dropout_p", 0.0),
                                   loc.get("enable_gqa", False))
            return (None if name.startswith("ScaledDot") else "bmm"), shapes
        if len(shapes[0]) != 4:
            return "bmm", shapes
        half = q.dtype.itemsize == 2 and loc.get("attn_mask") is None
        return ("_scaled_dot_product_flash_attention" if half else
                "_scaled_dot_product_efficient_attention"), shapes

    def _count_backward(self, f, a, b):
        loc = f.f_locals
        tag = self._tags.get(loc["node"])
        if tag is None:
            return
        kind, data = tag
        parents = self._parents
        if kind in ("mm", "bmm"):
            self._add(parents, kind, _matmul_prim_flops(a, b))
            return
        if self._bw_frame is f:     # the fused ops: once per node
            return
        self._bw_frame = f
        if kind == "conv":
            needs = loc["needs"]      # (weight, input) of the conv's matmul
            fwd, gw = data
            n = (fwd if len(needs) > 1 and needs[1] else 0) + (gw if needs[0] else 0)
            self._add(parents, "convolution_backward", n)
        elif kind == "sdpa":
            self._add(parents, data[0], data[1])


# ------------------------------------------------------------------------- torch's table

_SUFFIXES = ["", "K", "M", "B", "T"]


def _suffix(number):
    return _SUFFIXES[max(0, min(len(_SUFFIXES) - 1, (len(str(number)) - 2) // 3))]


def _with_suffix(number, suffix):
    i = _SUFFIXES.index(suffix)
    return f"{number / 1000 ** i:.3f}" + _SUFFIXES[i]


def _percent(num, denom):
    return "0%" if denom == 0 else f"{num / denom:.2%}"


def _tabulate(rows, headers):
    """tabulate.tabulate(rows, headers, colalign=("left", "right", "right")) as torch calls it
    (the 'simple' format; tabulate >= 0.10 strips the cells' leading spaces; a column of plain
    numbers is printed as numbers: '768.000' -> '768')."""
    cols = [[str(r[i]).strip() for r in rows] for i in range(len(headers))]
    for c in cols[1:]:
        if all(_is_number(v) for v in c):
            c[:] = [v if _is_int(v) else format(float(v), "g") for v in c]
    widths = [max(len(h) + 2, max(len(v) for v in c)) for h, c in zip(headers, cols)]

    def line(cells):
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                         for i, (v, w) in enumerate(zip(cells, widths)))
    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line([c[j] for c in cols]) for j in range(len(rows))]
    return "\n".join(out)


def _is_number(s):
    try:
        float(s)
        return True
    except ValueError:
        return False


def _is_int(s):
    try:
        int(s)
        return True
    except ValueError:
        return False
