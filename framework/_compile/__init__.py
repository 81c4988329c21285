"""framework.compile: torch.compile's API over Kiln's tracer and compiler.

    fast = torch.compile(model)            # module: shares parameters with `model`
    @torch.compile                         # function decorator
    def step(x, y): ...
    torch.compile(fn, backend="numpy", fullgraph=False, dynamic=None, mode=None)

Every call traces the function lazily (see lazy.py) and looks its regions up in the compiled
program cache, keyed by graph structure, input shapes/dtypes, requires_grad and grad mode, so
a change of any of those compiles anew ("recompile", logged with the guard that changed) while
a change of values does not. Once two consecutive traces with the same guards agree, later
calls may replay the recorded program without running the Python at all (replay.py says when:
compiled modules and whole training-step functions; stats['replays'], stats['replay_notes']).

Guards: per tensor argument (nested lists/tuples/dicts included) its shape, dtype, device and
requires_grad; int/bool/str/None arguments by value (Python control flow may read them; float
arguments are not guarded: float constants are run-time parameters of the programs); the grad
mode; the module's train/eval state. `cache_size_limit` (8) distinct guard sets are compiled;
a call with a further new guard set runs eagerly, with a warning (torch's behaviour).

dynamic=True: dim 0 of every tensor argument (the batch dimension) is left out of the guards.
dynamic=None (the default) starts with every dimension guarded and, as torch.compile's
automatic dynamic shapes do, switches to dynamic=True at the first recompile that only a change
of dim 0 caused (that recompile is counted and logged; later batch sizes are not).
A new batch size is then no guard failure: it is not reported as a recompile and does not count
toward cache_size_limit. Kiln's programs are still specialised to concrete shapes (their
metadata and buffers are planned at compile time), so each new batch size generates one more
program (stats['specializations'] counts them), cached by graph key: a batch size seen before
costs nothing, which is what a data loader's last short batch needs. dynamic=False guards
every dimension, always.

mode ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs') is accepted
and recorded. 'reduce-overhead' replays programs of the Triton backends through one CUDA graph
each (compiler/cuda_graphs.py: one launch per step instead of one per kernel); the NumPy
backend has one mode, so the others do not change its generated code.
backend: by default chosen per trace from the device of the tensors involved (cuda ->
'triton', interpret -> 'interpret', cpu -> 'numpy'); 'numpy' (generated NumPy programs),
'eager' (the traced graphs run through each primitive's NumPy lowering, no passes or code
generation: for debugging the tracer), 'interpret' (every fused group as a generated Triton
kernel run by Triton's interpreter on the CPU) and 'triton' (the same kernels launched on a
GPU through CuPy; needs one).
"""
import functools
import warnings

from .._dispatch import wrap as _dispatch_wrap

from .. import _dispatch, _dynamo
from .._dispatch import STATE
from ..tensor import Tensor
from . import log
from .lazy import Tracer, GraphBreakError, SymArray  # noqa: F401
from .region import register_compiled_grad_ready  # noqa: F401
from ..amp.autocast_mode import guard_state as _autocast_state
from .replay import (_MISS, _NotReplayable, _Entry, _Record, _module_state,
                     _before_trace, _output_leaves, _build, check_trace, leaf_info,
                     FunctionReplay)
from compiler.ir.graph import consts_key

cache_size_limit = 8
automatic_dynamic_shapes = True     # dynamic=None: unguard dim 0 after a batch-size recompile
replays = True          # False: every call traces (debugging, or to time the traced path)
_BACKENDS = ("numpy", "eager", "triton", "interpret")
_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class InvalidBackend(RuntimeError):
    """An unknown backend name (torch._dynamo.exc.InvalidBackend, a RuntimeError)."""


class CompiledFunction:
    """A compiled callable. Introspection: graphs(), backward_graphs(), groups(), sources(),
    recompile_reasons(), graph_break_reasons(), run_counts(), report()."""
    trace_device = None     # the device a default-backend trace runs on (None: the cpu)

    def __init__(self, fn, backend=None, fullgraph=False, dynamic=None, mode=None, name=None,
                 module=None):
        # None / 'inductor': chosen per trace by the device of the tensors (see _pick_backend)
        self._auto = backend is None or backend == "inductor"
        if self._auto:
            backend = "numpy"
        if backend not in _BACKENDS:
            raise InvalidBackend(f"compile: unknown backend {backend!r}; expected one of "
                                 f"{_BACKENDS}")
        if mode not in _MODES:
            raise RuntimeError(f"compile: unrecognized mode={mode!r}; expected one of "
                               f"{[m for m in _MODES if m]}")
        self.fn = fn
        self.backend = backend
        self.fullgraph = fullgraph
        self.dynamic = self._dynamic0 = dynamic
        self.mode = mode
        self.module = module
        self.name = name or getattr(fn, "__name__", "fn")
        self.stats = {"calls": 0, "compiles": 0, "graph_breaks": [], "recompiles": [],
                      "regions": [], "specializations": 0, "eager_calls": 0,
                      "replays": 0, "replay_notes": []}
        self._replays = {}       # replay key -> _Entry
        self._freplay = FunctionReplay(fn) if module is None else None
        self._runs = {}          # id(plan) -> region runs by this function
        self._guard_sets = set()
        self._last_guards = None
        self._new_guards = False
        self._shape_sig = self._prev_shape_sig = None
        self._warned = False
        self._marked = False     # a tensor argument has dims mark_dynamic left unguarded
        self._ran_eager = False  # set_stance("eager_then_compile"): the eager first call ran
        functools.update_wrapper(self, fn)
        _dynamo._compiled.add(self)

    def reset(self):
        """Forget guards, traces and replay records (torch.compiler.reset): the next call
        compiles anew."""
        self._replays.clear()
        self._runs.clear()
        self._guard_sets.clear()
        self._last_guards = None
        self._shape_sig = self._prev_shape_sig = None
        self.dynamic = self._dynamic0
        self._warned = False
        if self.module is None:
            self._freplay = FunctionReplay(self.fn)

    # guards -----------------------------------------------------------------------------------
    def _guards(self, args, kwargs, argt=None):
        """{name: guarded metadata} of this call; what a recompile reason names. `argt`, when
        given, receives {name: tensor argument}."""
        g = {}
        self._marked = False

        def visit(name, a):
            if isinstance(a, Tensor):
                if argt is not None:
                    argt[name] = a
                shape = tuple(a.shape)
                if self.dynamic:
                    shape = ("*",) + shape[1:] if shape else shape
                marked = a.__dict__.get("_dynamic_dims")       # torch._dynamo.mark_dynamic
                if marked:
                    self._marked = True
                    shape = tuple("*" if i in marked else s for i, s in enumerate(shape))
                g[name] = (shape, a.dtype.name, str(a.device), a.requires_grad)
            elif isinstance(a, (list, tuple)):
                for i, x in enumerate(a):
                    visit(f"{name}[{i}]", x)
            elif isinstance(a, dict):
                for k, x in a.items():
                    visit(f"{name}[{k!r}]", x)
            elif a is None or isinstance(a, (bool, int, str)):
                g[name] = a

        for i, a in enumerate(args):
            visit(f"arg{i}", a)
        for k, a in kwargs.items():
            visit(k, a)
        g["grad_mode"] = STATE.grad_enabled
        ac = _autocast_state()
        if ac is not None:      # autocast changes the traced graph (its casts): guard it
            g["autocast"] = ac
        if self.module is not None:
            g["training"] = self.module.training
        return g

    def note_region(self, plan, fresh, graph):
        """Called by region.run_region for every region run."""
        key = id(plan)
        runs = self._runs.get(key)
        if runs is None:
            runs = 0
            self.stats["compiles"] += 1
            self.stats["regions"].append(plan)
            if self.stats["calls"] > 1 and not self._new_guards:
                # a new program although no guard changed
                if (self.dynamic or self._marked) and self._shape_sig != self._prev_shape_sig:
                    self.stats["specializations"] += 1
                    log.emit("recompiles", f"[{self.name}] dynamic=True: new program for "
                                           f"shapes {list(map(list, self._shape_sig))}")
                else:
                    self._recompiled("graph changed (Python control flow or constants)")
        self._runs[key] = runs + 1

    def _recompiled(self, reason):
        self.stats["recompiles"].append(reason)
        log.emit("recompiles", f"[{self.name}] recompile #{len(self.stats['recompiles'])}: "
                               f"{reason}")

    def _diff(self, prev, cur):
        diffs = []
        for k in sorted(set(prev) | set(cur)):
            if prev.get(k) != cur.get(k):
                diffs.append(f"{k}: {_fmt_guard(prev.get(k))} -> {_fmt_guard(cur.get(k))}")
        return "; ".join(diffs)

    def __call__(self, *args, **kwargs):
        if STATE.tracer is not None:         # nested compiled calls inline into the outer trace
            return self.fn(*args, **kwargs)
        stance = _dynamo.current_stance()       # torch.compiler.set_stance
        if stance.stance == "force_eager":
            return self.fn(*args, **kwargs)
        if stance.stance.endswith("eager_then_compile") and not self._ran_eager:
            self._ran_eager = True              # the first call runs eagerly, later ones compile
            return self.fn(*args, **kwargs)
        self.stats["calls"] += 1
        if STATE.saved_hooks is not None and STATE.grad_enabled:
            return self._hooks_eager_call(args, kwargs)
        argt = {}
        guards = self._guards(args, kwargs, argt)
        gkey = _freeze(guards)
        self._new_guards = gkey not in self._guard_sets
        if self._new_guards and stance.stance in ("eager_on_recompile", "fail_on_recompile"):
            if stance.stance == "eager_on_recompile":
                self.stats["eager_calls"] += 1
                return self.fn(*args, **kwargs)
            self.stats["calls"] -= 1            # (nothing of this call stays behind)
            why = self._diff(self._last_guards, guards) if self._last_guards is not None else \
                "no compiled program yet"
            fn = self.module.forward if self.module is not None else self.fn   # (its forward)
            co = getattr(getattr(fn, "__func__", fn), "__code__", None)
            where = (f"filename: '{co.co_filename}', function name: '{co.co_name}', line number: "
                     f"{co.co_firstlineno}") if co is not None else f"function name: '{self.name}'"
            raise RuntimeError(f"Detected recompile when torch.compile stance is "
                               f"'fail_on_recompile'. {where}\n    "
                               f"triggered by the following guard failure(s):\n    - {why}")
        if self._new_guards:
            # a guard failed: torch's recompile (programs may still be shared through the cache)
            if len(self._guard_sets) >= cache_size_limit:
                return self._eager_call(guards, args, kwargs)
            self._guard_sets.add(gkey)
            if self._last_guards is not None:
                reason = self._diff(self._last_guards, guards)
                if self.dynamic is None and automatic_dynamic_shapes and \
                        _only_dim0_changed(self._last_guards, guards):
                    # torch's automatic dynamic shapes: after a batch-size recompile, dim 0
                    # is no longer guarded (each new size is a specialization, not a recompile)
                    self.dynamic = "auto"
                    reason += " (automatic dynamic: dim 0 of tensor arguments unguarded from now)"
                    guards = self._guards(args, kwargs, argt)
                    gkey = _freeze(guards)
                    self._guard_sets.add(gkey)
                self._recompiled(reason)
        self._last_guards = guards
        unguarded = self.dynamic or self._marked
        if unguarded:
            self._prev_shape_sig = self._shape_sig
            self._shape_sig = tuple(tuple(a.shape) for a in args if isinstance(a, Tensor))
        pre = fpre = None
        forced = stance.backend                 # set_stance(force_backend=...): no replays
        if forced is not None and forced not in _BACKENDS:
            raise InvalidBackend(f"set_stance: unknown force_backend {forced!r}; expected one "
                                 f"of {_BACKENDS}")
        if _dispatch.PROFILE is None and replays and forced is None:
            # (a record replays only on the shapes it was made for)
            rkey = gkey if not unguarded else \
                (gkey, tuple(tuple(t.shape) for t in argt.values()))
            e = self._replays.get(rkey)
            if e is not None and e.rec is not None and e.enabled:
                out = self._replay(rkey, e, argt) if self.module is not None else \
                    self._replay_fn(rkey, e, argt, args, kwargs)
                if out is not _MISS:
                    return out
            if self.module is not None:
                pre = _before_trace(self.module)
            else:
                try:
                    fpre = self._freplay.before(args, kwargs)
                except _NotReplayable as r:
                    fpre = r
        if self._auto:
            self.backend = self._pick_backend(args, kwargs, fpre)
        own_backend = self.backend
        if forced is not None:
            self.backend = forced
        tracer = Tracer(self, self.fullgraph)
        STATE.tracer = tracer
        n_breaks = len(self.stats["graph_breaks"])
        try:
            out = self.fn(*args, **kwargs)
            if pre is not None or fpre is not None:
                try:
                    leaves = _output_leaves(tracer, out)
                except _NotReplayable as r:
                    leaves = r
            tracer.flush(final=True)
        finally:
            STATE.tracer = None
            tracer.unwatch()
            self.backend = own_backend
        broke = len(self.stats["graph_breaks"]) != n_breaks
        if pre is not None:
            self._note_trace(rkey, lambda: _replay_record(tracer, pre, argt, leaves, broke))
        elif fpre is not None:
            def record():
                if isinstance(fpre, _NotReplayable):
                    raise fpre
                return self._freplay.record(tracer, fpre, argt, leaves, broke, args, kwargs)
            self._note_trace(rkey, record)
        return out

    def _pick_backend(self, args, kwargs, fpre):
        """The default backend for this trace, by device: the first non-cpu tensor among the
        arguments, the module's parameters/buffers, or (a function) the tensors its state
        reaches decides -- 'triton' for cuda, 'interpret' for the interpret device -- else
        'numpy'."""
        def first(ts):
            for t in ts:
                if isinstance(t, Tensor) and t._device.type != "cpu":
                    return t._device
            return None

        def flat(a):
            if isinstance(a, (list, tuple)):
                for x in a:
                    yield from flat(x)
            elif isinstance(a, dict):
                for x in a.values():
                    yield from flat(x)
            else:
                yield a
        dev = first(flat((args, kwargs)))
        if dev is None and self.module is not None:
            dev = first(self.module.parameters()) or first(self.module.buffers())
        if dev is None and isinstance(fpre, dict):
            dev = first(fpre["tensors"])
        self.trace_device = dev         # where random draws made while tracing belong
        return {"cuda": "triton", "interpret": "interpret"}.get(dev and dev.type, "numpy")

    # replays (compiled modules) ---------------------------------------------------------------
    def _note(self, rkey, msg):
        g = dict(rkey if not self.dynamic else rkey[0])
        msg = f"{msg} (training={g.get('training')}, grad_mode={g.get('grad_mode')})" \
            if self.module is not None else f"{msg} (grad_mode={g.get('grad_mode')})"
        self.stats["replay_notes"].append(msg)
        log.emit("recompiles", f"[{self.name}] {msg}")

    def _note_trace(self, rkey, record):
        """After a trace: can the next calls with these guards replay its plan instead of
        tracing? Only after two consecutive identical traces. record() makes the replay record
        or raises _NotReplayable."""
        try:
            rec = record()
            reason = None
        except _NotReplayable as r:
            rec, reason = None, str(r)
        prev = self._replays.get(rkey)
        if rec is None:
            if prev is None or prev.reason != reason:
                self._note(rkey, f"not replayable: {reason}")
            self._replays[rkey] = _Entry(None, reason)
            return
        e = _Entry(rec, None)
        e.enabled = prev is not None and prev.rec is not None and prev.rec.sig == rec.sig \
            and (getattr(rec, "walk", None) is None or rec.walk.same(prev.rec.walk))
        if e.enabled:
            self._note(rkey, "replay enabled: two identical traces")
        self._replays[rkey] = e

    def _replay(self, rkey, e, argt):
        """Run the recorded plan on this call's arguments and the module's current tensors,
        as region.run_region does after a trace, without running the Python forward."""
        from .region import run_plan, region_node
        rec = e.rec
        if _module_state(rec.mods, rec.tensors) != rec.state:
            e.enabled = False
            self._note(rkey, "replay disabled: the module changed since its trace (a parameter, "
                             "buffer, .data, attribute, submodule or hook)")
            return _MISS
        ts = rec.tensors
        drawn = [_dispatch_wrap(rc(), dtype) for rc, dtype in rec.recipes]  # in trace order
        in_tensors = [argt[k] if is_arg is True else ts[k] if is_arg is False else
                      drawn[k] if is_arg == "r" else
                      _dispatch_wrap(rec.made[k]._data.copy(), rec.made[k]._dtype)
                      for is_arg, k in rec.in_src]
        plan = rec.plan
        res = run_plan(plan, [t._data for t in in_tensors], rec.consts,
                       [ts[j]._data for j in rec.ov])
        for j, d in rec.bumps:
            for _ in range(d):
                ts[j]._bump()
        node = region_node(plan, res, in_tensors, list(rec.outs_meta), rec.bwd_consts) \
            if rec.outs_meta is not None else None
        outs = []
        for k, slot, dtype, vc in rec.leaves:
            t = _dispatch_wrap(res[k], dtype)       # the device follows the buffer's type
            if slot is not None:
                t._node, t._oi = node, slot
            if vc:
                t._vcount = vc
            outs.append(t)
        self.stats["replays"] += 1
        self._runs[id(plan)] = self._runs.get(id(plan), 0) + 1
        return _build(rec.template, outs)

    def _replay_fn(self, rkey, e, argt, args, kwargs):
        out = self._freplay.replay(e.rec, argt, args, kwargs)
        if out is _MISS:
            e.enabled = False
            self._note(rkey, "replay disabled: state the function reaches changed since its "
                             "trace")
            return out
        self.stats["replays"] += 1
        plan = e.rec.plan
        self._runs[id(plan)] = self._runs.get(id(plan), 0) + 1
        return out

    def _hooks_eager_call(self, args, kwargs):
        """A call under autograd.graph.saved_tensors_hooks (or save_on_cpu) runs eagerly: the
        hooks then see every tensor the ops save, as they would without compile (a compiled
        region saves other values, and a replay would skip the hooks)."""
        self.stats["eager_calls"] += 1
        log.emit("graph_breaks", f"[{self.name}] saved_tensors_hooks are active: the call runs "
                                 "eagerly so the tensors its ops save go through the hooks")
        return self.fn(*args, **kwargs)

    def _eager_call(self, guards, args, kwargs):
        self.stats["eager_calls"] += 1
        if not self._warned:
            self._warned = True
            why = self._diff(self._last_guards or {}, guards)
            warnings.warn(f"compile: {self.name} hit cache_size_limit ({cache_size_limit}) "
                          f"distinct guard sets; calls with new guards run eagerly "
                          f"(last change: {why or '?'})")
        log.emit("recompiles", f"[{self.name}] cache_size_limit ({cache_size_limit}) reached: "
                               "running eagerly")
        return self.fn(*args, **kwargs)

    # introspection (used by `kiln dump` / explain) -------------------------------------------
    def graphs(self):
        """The traced forward graph of every compiled region (before passes)."""
        return [p.fwd_graph for p in self.stats["regions"]]

    def backward_graphs(self):
        return [p.bwd_graph for p in self.stats["regions"] if p.bwd_graph is not None]

    def programs(self):
        """Every compiled Program: each region's forward, then its backward when it has one."""
        out = []
        for p in self.stats["regions"]:
            out.append(p.fwd)
            if p.bwd is not None:
                out.append(p.bwd)
        return out

    def groups(self):
        """Per program: [(group name, kind, member ops, notes)] and the refusal reasons, from the
        fuser's Program.partition (empty where a program has none)."""
        res = []
        for prog in self.programs():
            part = getattr(prog, "partition", None)
            groups = [(g.name, g.kind, [n.op for n in g.nodes], list(g.notes))
                      for g in getattr(part, "groups", ())]
            refusals = [str(r) for r in getattr(part, "refusals", ())]
            res.append({"program": prog.graph.name, "groups": groups, "refusals": refusals})
        return res

    def n_groups(self):
        return sum(len(g["groups"]) for g in self.groups())

    def sources(self):
        return [prog.source for prog in self.programs()]

    def recompile_reasons(self):
        return list(self.stats["recompiles"])

    def graph_break_reasons(self):
        return [f"{r} at {w}" for r, w in self.stats["graph_breaks"]]

    def run_counts(self):
        """{region forward graph name: how many times this function ran it}."""
        return {p.fwd_graph.name + f"#{i}": self._runs.get(id(p), 0)
                for i, p in enumerate(self.stats["regions"])}

    def report(self):
        """Everything above as text (what `kiln dump` prints for a compiled callable)."""
        s = self.stats
        lines = [f"compiled {self.name}: backend={self.backend} calls={s['calls']} "
                 f"compiles={s['compiles']} recompiles={len(s['recompiles'])} "
                 f"graph breaks={len(s['graph_breaks'])} eager calls={s['eager_calls']}"
                 + f" replays={s['replays']}"]
        for r in s["replay_notes"]:
            lines.append(f"replay: {r}")
        for r in self.recompile_reasons():
            lines.append(f"recompile: {r}")
        for r in dict.fromkeys(self.graph_break_reasons()):
            lines.append(f"graph break: {r}")
        counts = self.run_counts()
        for (name, n), p in zip(counts.items(), s["regions"]):
            lines.append(f"\nregion {name} (ran {n}x)\n{p.fwd_graph}")
            if p.bwd_graph is not None:
                lines.append(f"{p.bwd_graph}")
        for prog in self.programs():
            part = getattr(prog, "partition", None)
            if part is not None:
                lines.append(f"\nfusion of {prog.graph.name}:\n{part.describe()}")
            lines.append(f"\nsource of {prog.graph.name}:\n{prog.source}")
        return "\n".join(lines)


def _replay_record(tracer, pre, argt, leaves, broke):
    """The replay record of a finished trace, or _NotReplayable with the reason."""
    if pre["hooks"]:
        raise _NotReplayable("forward hooks present")
    check_trace(tracer, pre, leaves, broke)
    mods, tensors = pre["mods"], pre["tensors"]
    if _module_state(mods, tensors) != pre["state"]:
        what = "a parameter, buffer or submodule"
        for name, before in pre["attrs"]:
            m = tracer.owner.module.get_submodule(name) if name else tracer.owner.module
            for k in set(before) | set(m.__dict__):
                if before.get(k, _MISS) is not m.__dict__.get(k, _MISS):
                    what = f"attribute {(name + '.' if name else '') + k}"
        raise _NotReplayable(f"forward changed the module's state ({what})")
    plan, consts, in_tensors, in_arrays, index, ov, grad_outs, node = tracer.last_run
    argpos = {id(t): k for k, t in argt.items()}
    tpos = {id(t): j for j, t in enumerate(tensors)}
    arrpos = {id(t._data): (True, k, t) for k, t in argt.items()}
    arrpos.update((id(t._data), (False, j, t)) for j, t in enumerate(tensors))
    grad_in = set(plan.grad_inputs)
    drawn = {id(a): k for k, (a, _, _) in enumerate(tracer.draws)}
    in_src, made = [], []
    for i, (t, a) in enumerate(zip(in_tensors, in_arrays)):
        k = argpos.get(id(t))
        if k is not None and t._data is a:
            in_src.append((True, k))
            continue
        j = tpos.get(id(t))
        if j is not None and t._data is a:
            in_src.append((False, j))
            continue
        # an alias without gradient (`.data`, a detached view of the same array, the one an
        # in-place op writes through) reads the same memory; the region uses it for its array
        # and dtype only, so the argument/module tensor it aliases stands in for it
        e = arrpos.get(id(a))
        if e is not None and not t.requires_grad and i not in grad_in and \
                e[2]._dtype is t._dtype:
            in_src.append(e[:2])
            continue
        k = drawn.get(id(a))
        if k is not None and i not in grad_in:        # a dropout mask: drawn again
            in_src.append(("r", k))
            continue
        if id(a) in tracer.made and t._node is None and i not in grad_in:
            # made by a factory in forward from constants and shapes (an RNN's zero initial
            # state), which the same guards make the same: a replay passes a copy of it
            in_src.append(("c", len(made)))
            made.append(t)
            continue
        raise _NotReplayable("a traced input is neither an argument nor a parameter/buffer (a "
                             "tensor made in forward from other values, a random draw, a "
                             ".data alias)")
    bufpos = {id(t._data): j for j, t in enumerate(tensors) if pre["is_buf"][j]}
    ov_js = []
    for arr, _ in ov:
        j = bufpos.get(id(arr))
        if j is None:
            raise _NotReplayable("an in-place write to an argument or parameter")
        if tensors[j]._node is not None:
            raise _NotReplayable("a buffer written in place carries autograd history")
        ov_js.append(j)
    bumps = []
    for j, (t, v0) in enumerate(zip(tensors, pre["versions"])):
        d = t._version - v0
        if d and j not in ov_js:
            raise _NotReplayable("a parameter or buffer was written outside the traced graph")
        if d:
            bumps.append((j, d))
    tpl, outs = leaves
    info = leaf_info(outs, index, node)
    if len({k for k, _, _, _ in info}) != len(info) or len(index) != len(info):
        raise _NotReplayable("a traced tensor other than the outputs stays alive (stored by "
                             "forward?) or two outputs share a value")
    if node is not None and sorted(s for _, s, _, _ in info if s is not None) != \
            list(range(len(grad_outs))):
        raise _NotReplayable("gradient outputs do not match the returned tensors")
    r = _Record()
    r.plan, r.consts, r.in_src, r.ov, r.bumps = plan, consts, in_src, ov_js, bumps
    r.template, r.leaves = tpl, info
    r.outs_meta = list(node.outs) if node is not None else None
    r.bwd_consts = node.ctx.bwd_consts if node is not None else None
    r.mods, r.tensors, r.state = mods, tensors, pre["state"]
    r.recipes = [(rc, dtype) for _, dtype, rc in tracer.draws]
    r.made = made
    r.sig = (id(plan), consts_key(consts), consts_key(r.bwd_consts or ()), tuple(in_src), tuple(ov_js), tuple(bumps), tpl,
             tuple(info), tuple(pre["state"]),
             tuple((a.shape, dtype) for a, dtype, _ in tracer.draws))
    return r


def _only_dim0_changed(prev, cur):
    """Whether two guard sets differ only in dim 0 of tensor arguments' shapes."""
    if set(prev) != set(cur):
        return False
    changed = False
    for k, a in prev.items():
        b = cur[k]
        if a == b:
            continue
        if not (type(a) is tuple and type(b) is tuple and len(a) == len(b) == 4 and
                type(a[0]) is tuple and type(b[0]) is tuple and len(a[0]) == len(b[0]) >= 1 and
                a[0][1:] == b[0][1:] and a[1:] == b[1:]):
            return False
        changed = True
    return changed


def _fmt_guard(v):
    if isinstance(v, tuple) and len(v) == 4:
        shape, dtype, dev, rg = v
        return f"{dtype}{list(shape)} on {dev}" + (" requires_grad" if rg else "")
    return repr(v)


def _freeze(g):
    return tuple(sorted(g.items(), key=lambda kv: kv[0]))


_DEFAULT_BACKEND = ["inductor"]     # (torch.compiler.set_default_backend)


def compile(model=None, *, fullgraph=False, dynamic=None, backend=None, mode=None, options=None,
            disable=False):
    """torch.compile: as a function, a decorator (with or without arguments), or on a Module."""
    if backend is None:             # torch.compiler.set_default_backend's choice
        backend = _DEFAULT_BACKEND[0]
    if model is None:
        return lambda m: compile(m, fullgraph=fullgraph, dynamic=dynamic, backend=backend,
                                 mode=mode, options=options, disable=disable)
    if mode is not None and options is not None:
        raise RuntimeError("Either mode or options can be specified, but both can't be "
                           "specified at the same time.")
    if disable:
        return model
    from ..nn import Module
    if isinstance(model, Module):
        return OptimizedModule(model, backend=backend, fullgraph=fullgraph, dynamic=dynamic,
                               mode=mode)
    if not callable(model):
        raise TypeError(f"compile: expected a callable or nn.Module, got {type(model).__name__}")
    return CompiledFunction(model, backend, fullgraph, dynamic, mode)


def _optimized_module_class():
    from ..nn import Module

    class OptimizedModule(Module):
        """What compile(module) returns: calls go through the compiled forward; parameters,
        buffers and state are the original module's (shared, not copied), so state_dict keys
        carry torch's `_orig_mod.` prefix.

        Replays: a call normally re-runs forward under the tracer. Once two consecutive traces
        with the same guards (argument shapes/dtypes/devices/requires_grad, grad mode, train
        mode; with dynamic=True also the exact shapes) are identical, and the trace was
        replayable -- one region and no graph break; every graph input an argument tensor, a
        parameter/buffer of the module or a dropout mask; in-place writes only to buffers
        (BatchNorm statistics); outputs tensors (in tuples/lists/dicts) computed by the region
        and nothing else of the region kept alive; the default generator advanced only by
        dropout masks (a replay draws them again, in order, so it advances it as eager does); no
        forward/backward hooks; Python read no tensor value (item(), bool(), ...); no module
        attribute, parameter, buffer or submodule changed by forward -- later calls with those
        guards run the recorded program directly (stats['replays'], notes in
        stats['replay_notes'] and KILN_LOGS=recompiles). A replay checks, besides the guards,
        the identity of every submodule's attribute values, parameters, buffers and children,
        the hook counts, and each parameter/buffer's array identity, shape, dtype and
        requires_grad; any change (p.data = ..., a new Parameter, m.scale = 3.0, a hook) traces
        again. Python side effects those checks cannot see (appending to a list, a global
        counter, printing) happen on traced calls only, not on replays -- as with
        torch.compile, which also skips such side effects of a compiled forward."""

        def __init__(self, mod, **kw):
            super().__init__()
            self._orig_mod = mod
            object.__setattr__(self, "_compiled", CompiledFunction(
                mod.__call__, name=type(mod).__name__, module=mod, **kw))

        # the original module's mode, as torch's OptimizedModule mirrors it: model.eval() on
        # the wrapped module shows through, and compiled.train() reaches it
        @property
        def training(self):
            m = self.__dict__.get("_modules", {}).get("_orig_mod")
            return m.training if m is not None else True

        @training.setter
        def training(self, value):
            m = self.__dict__.get("_modules", {}).get("_orig_mod")
            if m is not None:       # (Module.__init__ sets the default before _orig_mod)
                m.training = value

        def forward(self, *args, **kwargs):
            return self._compiled(*args, **kwargs)

        def __call__(self, *args, **kwargs):
            return self._compiled(*args, **kwargs)

        def __getattr__(self, name):
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self._modules["_orig_mod"], name)

        def __repr__(self):
            return "OptimizedModule(\n  (_orig_mod): " + \
                repr(self._orig_mod).replace("\n", "\n  ") + "\n)"

    return OptimizedModule


class _Lazy:
    cls = None


def OptimizedModule(mod, **kw):
    if _Lazy.cls is None:
        _Lazy.cls = _optimized_module_class()
    return _Lazy.cls(mod, **kw)


def is_compiling():
    """True while compile() traces (torch.compiler.is_compiling): code may pick traceable forms."""
    return STATE.tracer is not None
