"""framework.compile: torch.compile's API over Kiln's tracer and compiler.

    fast = torch.compile(model)            # module: shares parameters with `model`
    @torch.compile                         # function decorator
    def step(x, y): ...
    torch.compile(fn, backend="numpy", fullgraph=False, dynamic=None, mode=None)

Every call traces the function lazily (see lazy.py) and looks its regions up in the compiled
program cache, keyed by graph structure, input shapes/dtypes, requires_grad and grad mode, so
a change of any of those compiles anew ("recompile", logged with the guard that changed) while
a change of values does not.

Guards: per tensor argument (nested lists/tuples/dicts included) its shape, dtype, device and
requires_grad; int/bool/str/None arguments by value (Python control flow may read them; float
arguments are not guarded: float constants are run-time parameters of the programs); the grad
mode; the module's train/eval state. `cache_size_limit` (8) distinct guard sets are compiled;
a call with a further new guard set runs eagerly, with a warning (torch's behaviour).

dynamic=True: dim 0 of every tensor argument (the batch dimension) is left out of the guards.
A new batch size is then no guard failure: it is not reported as a recompile and does not count
toward cache_size_limit. Kiln's programs are still specialised to concrete shapes (their
metadata and buffers are planned at compile time), so each new batch size generates one more
program (stats['specializations'] counts them), cached by graph key: a batch size seen before
costs nothing, which is what a data loader's last short batch needs. dynamic=False/None guard
every dimension.

mode ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs') is accepted
and recorded; the NumPy backend has one mode, so it does not change the generated code.
backend: 'numpy' (generated NumPy programs, the default), 'eager' (the traced graphs run
through each primitive's NumPy lowering, no passes or code generation: for debugging the
tracer), 'triton'/'interpret' (raise until the Triton backend lands).
"""
import functools
import warnings

from .._dispatch import STATE
from ..tensor import Tensor
from . import log
from .lazy import Tracer, GraphBreakError, SymArray  # noqa: F401

cache_size_limit = 8
_BACKENDS = ("numpy", "eager", "triton", "interpret")
_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class CompiledFunction:
    """A compiled callable. Introspection: graphs(), backward_graphs(), groups(), sources(),
    recompile_reasons(), graph_break_reasons(), run_counts(), report()."""

    def __init__(self, fn, backend=None, fullgraph=False, dynamic=None, mode=None, name=None,
                 module=None):
        if backend is None or backend == "inductor":
            backend = "numpy"
        if backend not in _BACKENDS:
            raise ValueError(f"compile: unknown backend {backend!r}; expected one of {_BACKENDS}")
        if mode not in _MODES:
            raise RuntimeError(f"compile: unrecognized mode={mode!r}; expected one of "
                               f"{[m for m in _MODES if m]}")
        self.fn = fn
        self.backend = backend
        self.fullgraph = fullgraph
        self.dynamic = dynamic
        self.mode = mode
        self.module = module
        self.name = name or getattr(fn, "__name__", "fn")
        self.stats = {"calls": 0, "compiles": 0, "graph_breaks": [], "recompiles": [],
                      "regions": [], "specializations": 0, "eager_calls": 0}
        self._runs = {}          # id(plan) -> region runs by this function
        self._guard_sets = set()
        self._last_guards = None
        self._new_guards = False
        self._shape_sig = self._prev_shape_sig = None
        self._warned = False
        functools.update_wrapper(self, fn)

    # guards -----------------------------------------------------------------------------------
    def _guards(self, args, kwargs):
        """{name: guarded metadata} of this call; what a recompile reason names."""
        g = {}

        def visit(name, a):
            if isinstance(a, Tensor):
                shape = tuple(a.shape)
                if self.dynamic:
                    shape = ("*",) + shape[1:] if shape else shape
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
                if self.dynamic and self._shape_sig != self._prev_shape_sig:
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
        self.stats["calls"] += 1
        guards = self._guards(args, kwargs)
        gkey = _freeze(guards)
        self._new_guards = gkey not in self._guard_sets
        if self._new_guards:
            # a guard failed: torch's recompile (programs may still be shared through the cache)
            if len(self._guard_sets) >= cache_size_limit:
                return self._eager_call(guards, args, kwargs)
            self._guard_sets.add(gkey)
            if self._last_guards is not None:
                self._recompiled(self._diff(self._last_guards, guards))
        self._last_guards = guards
        if self.dynamic:
            self._prev_shape_sig = self._shape_sig
            self._shape_sig = tuple(tuple(a.shape) for a in args if isinstance(a, Tensor))
        tracer = Tracer(self, self.fullgraph)
        STATE.tracer = tracer
        try:
            out = self.fn(*args, **kwargs)
            tracer.flush(final=True)
        finally:
            STATE.tracer = None
        return out

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
                 f"graph breaks={len(s['graph_breaks'])} eager calls={s['eager_calls']}"]
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


def _fmt_guard(v):
    if isinstance(v, tuple) and len(v) == 4:
        shape, dtype, dev, rg = v
        return f"{dtype}{list(shape)} on {dev}" + (" requires_grad" if rg else "")
    return repr(v)


def _freeze(g):
    return tuple(sorted(g.items(), key=lambda kv: kv[0]))


def compile(model=None, *, fullgraph=False, dynamic=None, backend=None, mode=None, options=None,
            disable=False):
    """torch.compile: as a function, a decorator (with or without arguments), or on a Module."""
    if model is None:
        return lambda m: compile(m, fullgraph=fullgraph, dynamic=dynamic, backend=backend,
                                 mode=mode, options=options, disable=disable)
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
        carry torch's `_orig_mod.` prefix."""

        def __init__(self, mod, **kw):
            super().__init__()
            self._orig_mod = mod
            object.__setattr__(self, "_compiled", CompiledFunction(
                mod.__call__, name=type(mod).__name__, module=mod, **kw))
            self.training = mod.training

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
