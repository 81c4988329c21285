"""Replays: running a traced region's compiled plan again without running the Python that
traced it, once two consecutive traces with the same guards came out identical.

  * compiled modules (OptimizedModule): the forward's plan, guarded by the module's state
    (_before_trace / _module_state below; CompiledFunction._replay_record).
  * compiled functions (FunctionReplay): typically a whole training step -- zero_grad, forward,
    loss, backward, optimizer.step() -- whose effects are the region's in-place writes
    (parameters, optimizer state, buffers), the gradients it leaves in .grad, and its return
    value. What the function can reach (its arguments, closure, the globals its code names,
    recursively through the user functions it calls) is fingerprinted before and after the
    trace; a trace that changed any of it other than through those effects, drew random
    numbers, read a value, broke the graph or calls something with outside effects (print,
    logging, file writes, timers) is never replayed.
"""
import sys
import types
from itertools import chain
from operator import attrgetter, is_

import numpy as np

from compiler.ir.graph import consts_key
from runtime import dtypes as dt
from .._dispatch import wrap as _wrap
from ..tensor import Tensor
from ..creation import rng_snapshot, rng_restore
from .lazy import SymArray

_MISS = object()


class _NotReplayable(Exception):
    """Why a trace cannot be replayed."""


class _Entry:
    """Per replay key: the last trace's replay record (or why it has none)."""

    def __init__(self, rec, reason):
        self.rec, self.reason, self.enabled = rec, reason, False


class _Record:
    pass

def _modules_of(module):
    mods = []
    for m in module.modules():
        mods.append((m.__dict__, m._parameters, m._buffers, m._modules, m._forward_hooks,
                     m._forward_pre_hooks, m._backward_hooks, m._backward_pre_hooks))
    return mods


def _module_state(mods, tensors):
    """What replay guards on besides the call's guards: per submodule the identity of every
    attribute value, parameter, buffer and child, and the number of hooks; per parameter and
    buffer the identity of its array, its shape, dtype, requires_grad and grad_fn."""
    out = []
    ext = out.extend
    for d, p, b, c, h1, h2, h3, h4 in mods:
        ext(map(id, d.values()))
        ext(map(id, p.values()))
        ext(map(id, b.values()))
        ext(map(id, c.values()))
        out.append((len(d), len(p), len(b), len(c), len(h1) + len(h2) + len(h3) + len(h4)))
    for t in tensors:
        a = t._data
        out.append((id(a), a.shape, t._dtype, t._rg, t._node))
    return out


def _before_trace(module):
    """A compiled module's state before its forward is traced (for _replay_record)."""
    from ..creation import default_generator as gen
    tensors, seen, is_buf = [], set(), []
    for kind, it in ((False, module.named_parameters(remove_duplicate=False)),
                     (True, module.named_buffers(remove_duplicate=False))):
        for _, t in it:
            if id(t) not in seen:
                seen.add(id(t))
                tensors.append(t)
                is_buf.append(kind)
    mods = _modules_of(module)
    return dict(mods=mods, tensors=tensors, is_buf=is_buf, state=_module_state(mods, tensors),
                attrs=[(name, dict(m.__dict__)) for name, m in module.named_modules()],
                versions=[t._version for t in tensors], rng=gen._rng,
                rng_state=rng_snapshot(),
                hooks=any(sum(map(len, m[4:])) for m in mods))


# what a replayed output may carry (_wrap sets _device again from the array's type)
_PLAIN = frozenset(("_data", "_dtype", "_node", "_oi", "_vcount", "_device"))


def _output_leaves(tracer, out):
    """(template, [(tensor, Value)]) of what forward returned, before the region runs."""
    leaves, pos = [], {}

    def walk(o):
        if isinstance(o, Tensor):
            i = pos.get(id(o))
            if i is None:
                d = o._data
                if type(d) is not SymArray or d.tracer is not tracer or d.real is not None:
                    raise _NotReplayable("an output is not computed by the traced graph (an "
                                         "argument, parameter, buffer or eager result)")
                if d.orig is not None:
                    raise _NotReplayable("an output is a tensor written in place")
                if o._base is not None or not _PLAIN.issuperset(vars(o)):
                    raise _NotReplayable("an output carries views, hooks or other tensor state")
                i = pos[id(o)] = len(leaves)
                leaves.append((o, d.value))
            return i
        t = type(o)
        if t is tuple or t is list:
            return (t, tuple(walk(x) for x in o))
        if t is dict:
            return (dict, tuple(o), tuple(walk(x) for x in o.values()))
        if o is None:
            return None
        raise _NotReplayable(f"forward returned a {t.__name__} (replays tensors and "
                             "tuples/lists/dicts of them)")
    tpl = walk(out)
    return tpl, leaves


def _build(tpl, outs):
    if type(tpl) is int:
        return outs[tpl]
    if tpl is None:
        return None
    if tpl[0] is dict:
        return dict(zip(tpl[1], [_build(x, outs) for x in tpl[2]]))
    return tpl[0](_build(x, outs) for x in tpl[1])



# ---- compiled functions ------------------------------------------------------------------------
# names whose call has an effect outside Python objects (terminal, files, logs, clocks, NumPy's
# global random state): a replay would skip it, so a function naming one is never replayed
_EFFECTS = frozenset((
    "print", "open", "input", "breakpoint", "exec", "eval", "write", "writelines", "flush",
    "info", "debug", "warning", "warn", "exception", "critical", "set_postfix",
    "set_description", "add_scalar", "add_scalars", "save", "savefig", "time", "perf_counter",
    "monotonic", "sleep", "shuffle", "choice", "seed"))
_ATOMS = (int, float, bool, str, bytes, complex, type(None))
_OPAQUE = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
           types.CodeType, type, np.ndarray, np.dtype)
_LIBS = ("framework", "compiler", "runtime", "numpy", "triton", "networkx")
_BIG = 256            # containers longer than this are fingerprinted by identity and length
_BUDGET = 20000       # objects visited per fingerprint at most


def _user_function(f):
    """A Python function of the user's (not Kiln's, a library's or the standard library's):
    what it reaches belongs to the state a replay must watch."""
    if type(f) is not types.FunctionType:
        return False
    mod = (getattr(f, "__module__", None) or "").split(".")[0]
    if mod in _LIBS or mod in sys.stdlib_module_names:
        return False
    return "site-packages" not in f.__code__.co_filename


def _code_names(code, acc):
    acc.update(code.co_names)
    for c in code.co_consts:
        if type(c) is types.CodeType:
            _code_names(c, acc)
    return acc


class FunctionReplay:
    """Replay support of one compiled function (see the module docstring)."""

    def __init__(self, fn):
        self.fn = fn
        self._names = {}          # id(code) -> (names the code reads, effect names it calls)

    def _names_of(self, f):
        code = f.__code__
        e = self._names.get(id(code))
        if e is None:
            names = _code_names(code, set())
            e = self._names[id(code)] = (sorted(names), sorted(names & _EFFECTS))
        return e

    def roots(self, args, kwargs):
        """Everything the function can reach: non-tensor arguments, and per user function
        (the compiled one and those it names) its closure and the globals its code names."""
        roots = [a for a in args if not isinstance(a, Tensor)]
        roots += [a for a in kwargs.values() if not isinstance(a, Tensor)]
        f = self.fn
        if type(f) is types.MethodType:
            roots.append(f.__self__)
            f = f.__func__
        if type(f) is not types.FunctionType:
            raise _NotReplayable(f"{type(f).__name__} is not a Python function")
        todo, seen = [f], {id(f)}
        while todo:
            f = todo.pop()
            names, effects = self._names_of(f)
            if effects:
                raise _NotReplayable(f"{f.__name__} calls {', '.join(effects)} (an effect outside "
                                     "Python objects that a replay would skip)")
            g = f.__globals__
            vals = [g[n] for n in names if n in g]
            for c in f.__closure__ or ():
                try:
                    vals.append(c.cell_contents)
                except ValueError:           # a cell not bound yet
                    pass
            for v in vals:
                if isinstance(v, (staticmethod, classmethod)):
                    v = v.__func__
                if type(v) is types.MethodType:
                    roots.append(v.__self__)
                    v = v.__func__
                if _user_function(v):
                    if id(v) not in seen:
                        seen.add(id(v))
                        todo.append(v)
                    roots.append(v)             # (its identity: opaque to walk)
                else:
                    roots.append(v)
        return roots

    def before(self, args, kwargs):
        """The state a trace starts from (raises _NotReplayable when it cannot be watched)."""
        from ..creation import default_generator as gen
        w = walk(self.roots(args, kwargs))
        tensors = w.tensors
        argts = [a for a in list(args) + list(kwargs.values()) if isinstance(a, Tensor)]
        return dict(walk=w, tensors=tensors,
                    grad_objs=[t._grad for t in tensors],
                    versions=[t._version for t in tensors],
                    grad_versions=[t._grad._version if t._grad is not None else 0
                                   for t in tensors],
                    arg_versions=[(a, a._version) for a in argts],
                    rng=gen._rng, rng_state=rng_snapshot())

    def record(self, tracer, pre, argt, leaves, broke, args, kwargs):
        """The replay record of a finished trace, or _NotReplayable with the reason."""
        check_trace(tracer, pre, leaves, broke)
        pairs = []
        for c, key, _, _ in tracer.hypers:
            if not any(c is c2 and key == k2 for c2, k2 in pairs):
                pairs.append((c, key))
        if tracer.hyper_read:
            raise _NotReplayable("Python read a run-time optimizer hyperparameter (lr, betas) "
                                 "directly while tracing: its value is baked into the graph")
        before = pre["walk"].masked(pairs)
        after = walk(self.roots(args, kwargs)).masked(pairs)
        tensors = pre["tensors"]
        if not _no_grads(after).same(_no_grads(before)):     # (.grad may change)
            raise _NotReplayable("the call changed Python state the function reaches (an "
                                 "attribute, a container, a global, optimizer state)")
        plan, consts, in_tensors, in_arrays, index, ov, grad_outs, node = tracer.last_run
        res = tracer.last_res
        # where each region input comes from: an argument, a reached tensor, a reached
        # tensor's (pre-trace) gradient, or memory one of those owns (an alias without grad)
        src = {}
        for k, t in argt.items():
            src.setdefault(id(t), ("a", k))
        for j, t in enumerate(tensors):
            src.setdefault(id(t), ("w", j))
        for j, g in enumerate(pre["grad_objs"]):
            if g is not None:
                src.setdefault(id(g), ("g", j))
        arrs = {}
        for k, t in argt.items():
            arrs.setdefault(id(t._data), (("a", k), t))
        for j, t in enumerate(tensors):
            arrs.setdefault(id(t._data), (("w", j), t))
        for j, g in enumerate(pre["grad_objs"]):
            if g is not None:
                arrs.setdefault(id(g._data), (("g", j), g))
        grad_in = set(plan.grad_inputs)
        drawn = {id(a): k for k, (a, _, _) in enumerate(tracer.draws)}
        hyper = {id(t._data): k for k, (_, _, _, t) in enumerate(tracer.hypers)}
        in_src, consts_in = [], []
        for i, (t, a) in enumerate(zip(in_tensors, in_arrays)):
            s = src.get(id(t))
            if s is not None and t._data is a:
                in_src.append(s)
                continue
            if i in grad_in:
                raise _NotReplayable("a traced input the region's backward differentiates is "
                                     "not an argument or a tensor the function reaches")
            # otherwise the region reads only its array: an alias of reached memory (.data, a
            # detached view, a snapshot before an in-place write) reads that memory; any other
            # is a tensor made while tracing from the reached state (a constant such as
            # torch.tensor(lr), a ones() weight), which the same state makes the same again
            e = arrs.get(id(a))
            if e is not None and e[1]._dtype is t._dtype:
                in_src.append(e[0])
                continue
            if t._node is not None:
                raise _NotReplayable("a traced input carries eager autograd history")
            k = drawn.get(id(a))
            if k is not None:
                in_src.append(("r", k))
                continue
            k = hyper.get(id(a))
            if k is not None:
                in_src.append(("h", k))
                continue
            in_src.append(("c", len(consts_in)))
            ct = _wrap(tracer.pristine.get(id(a), a), t._dtype)
            consts_in.append(ct)
            arrs[id(a)] = (in_src[-1], ct)
        ov_src = []
        for arr, _ in ov:
            e = arrs.get(id(arr))
            if e is None:
                raise _NotReplayable("an in-place write to memory the function does not reach")
            if e[1]._node is not None:
                raise _NotReplayable("a tensor written in place carries autograd history")
            ov_src.append(e[0])
        bumps = []
        for j, (t, v0) in enumerate(zip(tensors, pre["versions"])):
            d = t._version - v0
            if d:
                bumps.append((("w", j), d))
        for j, (g, v0) in enumerate(zip(pre["grad_objs"], pre["grad_versions"])):
            d = g._version - v0 if g is not None else 0
            if d:
                if tensors[j]._grad is not g:
                    raise _NotReplayable("a gradient was written in place and then replaced")
                bumps.append((("g", j), d))
        for t, v0 in pre["arg_versions"]:
            d = t._version - v0
            if d:
                k = src.get(id(t))
                if k is None or k[0] != "a":
                    raise _NotReplayable("an argument was written outside the traced graph")
                bumps.append((k, d))
        written = set(ov_src)
        if any(s not in written for s, _ in bumps):
            raise _NotReplayable("a tensor was written outside the traced graph")
        tpl, outs = leaves
        info = leaf_info(outs, index, node, freed_ok=tracer.seq_start)
        res_pos = {id(r): k for k, r in enumerate(res[:plan.n_out])}
        gassign = []
        for j, t in enumerate(tensors):
            ga, gb = t._grad, pre["grad_objs"][j]
            if ga is gb:
                continue
            if ga is None:
                gassign.append((j, None, None))
                continue
            k = res_pos.get(id(ga._data))
            if k is None or ga._node is not None or ga._base is not None or \
                    not _PLAIN.issuperset(vars(ga)):
                raise _NotReplayable("a gradient is not a plain result of the traced region")
            gassign.append((j, k, ga._dtype))
        used = {k for k, _, _, _ in info} | {k for _, k, _ in gassign if k is not None}
        if used != set(index.values()):
            raise _NotReplayable("a traced tensor other than the outputs and gradients stays "
                                 "alive (stored somewhere the function does not reach?)")
        if node is not None and sorted(s for _, s, _, _ in info if type(s) is int) != \
                list(range(len(grad_outs))):
            raise _NotReplayable("gradient outputs do not match the returned tensors")
        r = _Record()
        r.plan, r.consts, r.in_src, r.ov, r.bumps = plan, consts, in_src, ov_src, bumps
        r.template, r.leaves, r.gassign = tpl, info, gassign
        r.outs_meta = list(node.outs) if node is not None else None
        r.bwd_consts = node.ctx.bwd_consts if node is not None else None
        r.walk, r.tensors, r.consts_in = before, tensors, consts_in
        r.arr_tpl, r.arr_dyn = [], []
        # a tensor the call makes and then writes in place (zeros(n).index_add_(...)): each
        # replay reads a fresh copy of the traced constant, and nothing outside sees the write
        wconst = {k for kind, k in ov_src if kind == "c"}
        for i, (kind, k) in enumerate(in_src):
            if kind == "c" and k in wconst:
                kind = "cw"
            r.arr_tpl.append(tensors[k]._data if kind == "w" else
                             consts_in[k]._data if kind == "c" else None)
            if kind not in ("w", "c"):
                r.arr_dyn.append((i, kind, k))
        r.wbumps = [(tensors[k], d) for (kind, k), d in bumps if kind == "w"]
        r.dbumps = [(kind, k, d) for (kind, k), d in bumps if kind != "w"]
        r.hypers = [(c, key, i) for c, key, i, _ in tracer.hypers]
        r.guards = list(tracer.guards)
        r.recipes = [(rc, dtype) for _, dtype, rc in tracer.draws]
        r.sig = (id(plan), consts_key(consts), consts_key(r.bwd_consts or ()), tuple(in_src), tuple(ov_src), tuple(bumps), tpl,
                 tuple((k, (s[0], type(s[1]), s[2]) if type(s) is tuple else s, d, v)
                       for k, s, d, v in info),
                 tuple(gassign), tuple((key, i) for _, key, i in r.hypers),
                 tuple(v for _, v in r.guards),
                 tuple((a.shape, dtype) for a, dtype, _ in tracer.draws))
        return r

    def replay(self, rec, argt, args, kwargs):
        """Run the recorded plan on this call's arguments and reached tensors, then apply the
        recorded effects; _MISS when the reached state differs from the record's."""
        from .region import run_plan, region_node
        try:
            roots = self.roots(args, kwargs)
        except _NotReplayable:
            return _MISS
        if not rec.walk.holds(roots):
            return _MISS
        for fn, v in rec.guards:
            if fn() != v:
                return _MISS
        tensors = rec.tensors
        hyper = [np.array(c[key] if i is None else c[key][i], np.float64)
                 for c, key, i in rec.hypers]
        drawn = [rc() for rc, _ in rec.recipes]        # as eager would draw them, in order
        # the arrays: reached tensors' and constants' are fixed (holds() checked every reached
        # tensor's array); arguments, gradients, hyperparameters and draws are this call's
        arrays = list(rec.arr_tpl)
        for i, kind, k in rec.arr_dyn:
            arrays[i] = argt[k]._data if kind == "a" else tensors[k]._grad._data \
                if kind == "g" else hyper[k] if kind == "h" else drawn[k] if kind == "r" \
                else rec.consts_in[k]._data.copy()
        plan = rec.plan
        # (None: a write into memory this call made, a constant's copy or a draw: no write-back)
        ov = [tensors[k]._data if kind == "w" else argt[k]._data if kind == "a"
              else tensors[k]._grad._data if kind == "g" else None for kind, k in rec.ov]
        res = run_plan(plan, arrays, rec.consts, ov)
        for t, d in rec.wbumps:
            if t._view_src is None:         # (what d calls of _bump() do, at once)
                (t._base if t._base is not None else t)._vcount += d
            else:
                for _ in range(d):
                    t._bump()
        for kind, k, d in rec.dbumps:
            t = argt[k] if kind == "a" else tensors[k]._grad
            for _ in range(d):
                t._bump()
        for j, k, dtype in rec.gassign:
            tensors[j]._grad = None if k is None else _wrap(res[k], dtype)
        node = None
        if rec.outs_meta is not None:
            hyper = [_wrap(a, dt.float64) for a in hyper]
            drawn = [_wrap(a, dtype) for a, (_, dtype) in zip(drawn, rec.recipes)]

            def get(s):
                kind, k = s
                if kind == "a":
                    return argt[k]
                if kind == "c":
                    return rec.consts_in[k]
                if kind == "r":
                    return drawn[k]
                if kind == "h":
                    return hyper[k]
                t = tensors[k]
                return t if kind == "w" else t._grad
            node = region_node(plan, res, [get(s) for s in rec.in_src], list(rec.outs_meta),
                               rec.bwd_consts)
        outs = []
        for k, slot, dtype, vc in rec.leaves:
            t = _wrap(res[k], dtype)
            if type(slot) is int:
                t._node, t._oi = node, slot
            elif slot is not None:
                t._node, t._oi = slot[1], slot[2]
            if vc:
                t._vcount = vc
            outs.append(t)
        return _build(rec.template, outs)


def check_trace(tracer, pre, leaves, broke):
    """What every replay needs of a finished trace (modules and functions alike): one region,
    no graph break, no value read, outputs replayable, random draws only the noted ones."""
    if isinstance(leaves, _NotReplayable):
        raise leaves
    if broke or tracer.regions_run > 1:
        raise _NotReplayable("graph break")
    if tracer.regions_run == 0 or tracer.last_run is None:
        raise _NotReplayable("no traced region")
    if tracer.concrete_reads:
        raise _NotReplayable("Python read a tensor's value while tracing (item(), bool(), "
                             "tolist(), numpy(), a data-dependent shape)")
    _check_draws(tracer, pre)


def _spent(n, seq0):
    """Whether traced node n's backward reads no forward value: each traced node it reaches
    before a freed one saved nothing (loss.sum() after loss.backward() ran). Such a node,
    kept on a replay's output, behaves as eager's: a second backward raises or gives the same."""
    seen, stack = set(), [n]
    while stack:
        m = stack.pop()
        if id(m) in seen or m.freed:
            continue
        seen.add(id(m))
        if m.seq <= seq0 or m.fn is not None or m.out is not None or \
                any(isinstance(v, (Tensor, SymArray, np.ndarray)) for v in m.saved or ()):
            return False
        stack.extend(e[0] for e in m.edges if e is not None and e[0] is not None)
    return True


def leaf_info(outs, index, node, freed_ok=None):
    """[(region output position, autograd slot, dtype, version)] per returned tensor. The
    slot is None (no history), the output index of the region's node, or -- freed_ok (the
    tracer's seq_start), a step function whose backward already ran -- ('freed', node, output
    index)."""
    info = []
    for t, v in outs:
        k = index.get(id(v))
        if k is None:
            raise _NotReplayable("an output is not computed by the traced region")
        n = t._node
        if n is None:
            slot = None
        elif n is node:
            slot = t._oi
        elif freed_ok is not None and (n.freed or _spent(n, freed_ok)):
            slot = ("freed", n, t._oi)
        else:
            raise _NotReplayable("an output's autograd history is not the region's")
        info.append((k, slot, t._dtype, vars(t).get("_vcount", 0)))
    return info


def _no_grads(w):
    """w without its gradient pattern (a trace may set .grad: that is a recorded effect)."""
    c = Walk()
    c.objs, c.grads = w.objs, None
    return c


def _check_draws(tracer, pre):
    """The generators advanced exactly by the draws the trace noted (dropout masks), which a
    replay repeats: drawing them again from the pre-trace state (cpu and device generators)
    must reach the same state and the same arrays. Anything else drawn (torch.rand in the
    function) is not replayable."""
    from ..creation import default_generator as gen
    from .._device_ops import host
    if gen._rng is not pre["rng"]:
        raise _NotReplayable("the default generator was reseeded")
    after = rng_snapshot()
    if not tracer.draws:
        if after != pre["rng_state"]:
            raise _NotReplayable("random numbers drawn other than dropout masks")
        return
    rng_restore(pre["rng_state"])
    try:
        again = [rc() for _, _, rc in tracer.draws]
        ok = rng_snapshot() == after and all(
            np.array_equal(host(a), host(b)) for (a, _, _), b in zip(tracer.draws, again))
    finally:
        rng_restore(after)
    if not ok:
        raise _NotReplayable("random numbers drawn other than dropout masks")


_DYN = object()          # stands for a run-time hyperparameter in a masked walk
_MODULE_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                 "_backward_pre_hooks")


class Walk:
    """What `roots` reach, for replay guards. objs lists every visited object in order (atoms,
    containers, tensors); checks lists per non-empty container (container, keys or None for
    lists/tuples, values, position in objs, keys to skip), `empty` the containers that were
    empty, tchecks per tensor its identity-defining attributes; grads is each reached tensor's
    gradient as (shape, dtype) or None; tensors lists the reached tensors in order. Everything
    compares by identity, and the walk keeps the objects alive, so an id can never be reused by
    a different object meanwhile. masked() turns run-time hyperparameters (Tracer.hyper) into
    type checks."""
    __slots__ = ("roots", "objs", "checks", "empty", "tchecks", "grads", "tensors", "ranges",
                 "dyn", "flat")

    def __init__(self):
        self.flat = None

    def same(self, other):
        """Did two walks see the same objects in the same places (and gradient pattern)?"""
        a, b = self.objs, other.objs
        return len(a) == len(b) and all(map(is_, a, b)) and self.grads == other.grads

    def holds(self, roots):
        """Does the state the walk saw still hold (cheap: no new walk)? Containers are checked
        member by member, so a change anywhere in the reached structure is seen. The checks
        run as a few flat identity comparisons (C-level map/chain pipelines); see _flatten."""
        if len(roots) != len(self.roots) or not all(map(is_, roots, self.roots)):
            return False
        f = self.flat if self.flat is not None else self._flatten()
        lens, conts, seqs, seq_vals, dicts, dict_keys, dict_vals, slow, ts, t_attrs, t_lens = f
        if list(map(len, conts)) != lens:
            return False
        if not (all(map(is_, chain.from_iterable(seqs), seq_vals)) and
                all(map(is_, chain.from_iterable(dicts), dict_keys)) and
                all(map(is_, chain.from_iterable(map(dict.values, dicts)), dict_vals))):
            return False
        for c, keys, vals, skip in slow:    # dicts holding run-time hyperparameters
            if not all(v is w or k in skip for k, v, w in zip(keys, c.values(), vals)) or \
                    not all(map(is_, c, keys)):
                return False
        for c, key, n in self.dyn:          # a run-time value: only its kind is fixed
            v = c[key]
            if n is None:
                if type(v) is not float:
                    return False
            elif type(v) is not tuple or len(v) != n or \
                    not all(type(x) is float for x in v):
                return False
        if not all(map(is_, chain.from_iterable(map(_SIG, ts)), t_attrs)) or \
                list(map(len, map(vars, ts))) != t_lens:
            return False
        return _grads(self.tensors) == self.grads

    def _flatten(self):
        """The checks as flat lists: every container with its length; list/tuple members and
        dict keys and values in order; dicts with skipped (run-time) keys apart; per tensor
        its _SIG attributes and __dict__ size."""
        conts, lens, seqs, seq_vals, dicts, dict_keys, dict_vals, slow = \
            [], [], [], [], [], [], [], []
        for c in self.empty:
            conts.append(c)
            lens.append(0)
        for c, keys, vals, _, skip in self.checks:
            conts.append(c)
            lens.append(len(vals))
            if keys is None:
                seqs.append(c)
                seq_vals.extend(vals)
            elif skip is not None:
                slow.append((c, keys, vals, skip))
            else:
                dicts.append(c)
                dict_keys.extend(keys)
                dict_vals.extend(vals)
        ts = [t for t, _, _ in self.tchecks]
        t_attrs = [a for _, sig, _ in self.tchecks for a in sig[:6]]
        t_lens = [sig[6] for _, sig, _ in self.tchecks]
        self.flat = (lens, conts, seqs, seq_vals, dicts, dict_keys, dict_vals, slow, ts, t_attrs,
                     t_lens)
        return self.flat

    def masked(self, hypers):
        """This walk with the values of `hypers` ((container, key) pairs read through
        Tracer.hyper) left out: objects in their place become _DYN, checks inside them go,
        and holds() checks only that each is still a float (or a tuple of as many floats)."""
        w = Walk()
        w.roots, w.grads, w.tensors, w.empty = self.roots, self.grads, self.tensors, self.empty
        objs = list(self.objs)
        cut, dyn, skip = [], [], {}
        for c, key in hypers:
            r = self.ranges.get((id(c), key))
            if r is None:
                raise _NotReplayable("a hyperparameter the update reads is not reached")
            objs[r[0]:r[1]] = [_DYN] * (r[1] - r[0])
            cut.append(r)
            v = c[key]
            dyn.append((c, key, len(v) if type(v) is tuple else None))
            skip.setdefault(id(c), set()).add(key)
        inside = lambda pos: any(a <= pos < b for a, b in cut)      # noqa: E731
        w.objs = objs
        w.checks = [(c, k, v, pos, skip.get(id(c))) for c, k, v, pos, _ in self.checks
                    if not inside(pos)]
        w.tchecks = [e for e in self.tchecks if not inside(e[2])]
        w.dyn, w.ranges = dyn, self.ranges
        return w


_SIG = attrgetter("_data", "_dtype", "_node", "_rg", "_base", "_hooks")


def _tensor_sig(t):
    """What identifies a reached tensor's state: array, dtype, grad_fn, requires_grad, base,
    hooks (attrgetter: one C call); its __dict__'s size catches hook lists added later."""
    return _SIG(t) + (len(t.__dict__),)


def _grads(tensors):
    out = []
    for t in tensors:
        g = t._grad
        out.append(None if g is None else (g._data.shape, g._dtype))
    return out


def walk(roots):
    """Walk what `roots` reach (see Walk): atoms as leaves, lists/tuples/dicts (up to _BIG
    members) and object __dict__s to depth 8, modules whole, tensors as leaves. Modules with
    forward/backward hooks and optimizers with step hooks are not replayable (a replay would
    skip the hooks' Python)."""
    from ..nn import Module
    from ..nn.modules import module as _modmod
    from ..optim.optimizer import Optimizer
    objs, checks, tchecks, tensors = [], [], [], []
    ranges = {}                 # (id(dict), key) -> objs[start:end] its value's walk spans
    seen = set()
    budget = [_BUDGET]
    app = objs.append

    def visit(x, depth):
        app(x)
        t = type(x)
        if t in _ATOMS:
            return
        i = id(x)
        if i in seen:
            return
        seen.add(i)
        budget[0] -= 1
        if budget[0] < 0:
            raise _NotReplayable("the state the function reaches is too large to check per call")
        if isinstance(x, Tensor):
            d = x._data
            if type(d) is SymArray:
                if d.real is None:
                    raise _NotReplayable("a traced tensor is stored where the function reaches "
                                         "it")
                x._data = d.real        # an alias of a region output: concrete since it ran
            sig = _tensor_sig(x)
            dd = x.__dict__
            if sig[5] or dd.get("_post_acc_hooks") or dd.get("_compiled_grad_ready"):
                raise _NotReplayable("a tensor the function reaches has hooks")
            tensors.append(x)
            tchecks.append((x, sig, len(objs) - 1))
            return
        if t is list or t is tuple:
            if depth and len(x) <= _BIG:
                vals = list(x)
                checks.append((x, None, vals, len(objs) - 1, None))
                for y in vals:
                    visit(y, depth - 1)
            return
        if isinstance(x, dict):
            if depth and len(x) <= _BIG:
                keys, vals = list(x), list(x.values())
                checks.append((x, keys, vals, len(objs) - 1, None))
                for k, v in zip(keys, vals):
                    app(k)
                    start = len(objs)
                    visit(v, depth - 1)
                    ranges[(i, k)] = (start, len(objs))
            return
        if isinstance(x, (set, frozenset)) or isinstance(x, _OPAQUE):
            return
        d = getattr(x, "__dict__", None)
        if d is None:
            return
        if isinstance(x, Module):
            if any(d.get(h) for h in _MODULE_HOOKS):
                raise _NotReplayable("a module the function reaches has forward/backward hooks")
            # a module whole, however deep: its attributes, its parameter/buffer/child dicts
            # (and their members), its hook dicts
            keys, vals = list(d), list(d.values())
            checks.append((d, keys, vals, len(objs) - 1, None))
            for k, v in zip(keys, vals):
                app(k)
                visit(v, 2)
            return
        if isinstance(x, Optimizer) and (d.get("_step_hooks") or d.get("_post_hooks")):
            raise _NotReplayable("an optimizer the function reaches has step hooks")
        if depth:
            visit(d, depth)

    for h in ("_global_forward_hooks", "_global_forward_pre_hooks",
              "_global_backward_hooks"):
        if getattr(_modmod, h, None):
            raise _NotReplayable("global module hooks are registered")
    from ..optim import optimizer as _optmod
    for hooks in (_optmod._global_optimizer_pre_hooks, _optmod._global_optimizer_post_hooks):
        if hooks:
            raise _NotReplayable("global optimizer step hooks are registered")
        visit(hooks, 1)         # watched (empty): one registered later stops the replays
    for r in roots:
        visit(r, 8)
    w = Walk()
    w.roots, w.objs, w.tchecks, w.tensors = list(roots), objs, tchecks, tensors
    w.checks = [c for c in checks if c[2]]
    w.empty = [c[0] for c in checks if not c[2]]
    w.grads = _grads(tensors)
    w.ranges, w.dyn = ranges, []
    return w
