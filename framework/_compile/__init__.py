"""framework.compile: torch.compile's API over Kiln's tracer and compiler.

    fast = torch.compile(model)            # module: shares parameters with `model`
    @torch.compile                         # function decorator
    def step(x, y): ...
    torch.compile(fn, backend="numpy", fullgraph=False, dynamic=None, mode=None)

Every call traces the function lazily (see lazy.py) and looks its regions up in the compiled
program cache, keyed by graph structure, input shapes/dtypes, requires_grad and grad mode, so a
change of any of those compiles anew ("recompile", logged with its reason) while a change of
values does not. After `cache_size_limit` (8) different compilations a function falls back to
eager execution with a warning.
"""
import functools
import warnings

from .._dispatch import STATE
from ..tensor import Tensor
from . import log
from .lazy import Tracer, GraphBreakError, SymArray  # noqa: F401

cache_size_limit = 8
_BACKENDS = ("numpy", "eager", "triton", "interpret")


class CompiledFunction:
    def __init__(self, fn, backend=None, fullgraph=False, dynamic=None, mode=None, name=None,
                 module=None):
        if backend is None or backend == "inductor":
            backend = "numpy"
        if backend not in _BACKENDS:
            raise ValueError(f"compile: unknown backend {backend!r}; expected one of {_BACKENDS}")
        if backend in ("triton", "interpret"):
            raise RuntimeError(f"compile(backend={backend!r}): the Triton backend arrives with the "
                               "Triton issue; use backend='numpy'")
        self.fn = fn
        self.backend = backend
        self.fullgraph = fullgraph
        self.dynamic = dynamic
        self.mode = mode
        self.module = module
        self.name = name or getattr(fn, "__name__", "fn")
        self.stats = {"calls": 0, "compiles": 0, "graph_breaks": [], "recompiles": [],
                      "regions": []}
        self._keys = []          # distinct compiled region keys seen
        self._last_guards = None
        self._eager = False
        functools.update_wrapper(self, fn)

    # guards are what a recompile reason names
    def _guards(self, args, kwargs):
        g = {}
        for i, a in enumerate(list(args) + list(kwargs.values())):
            if isinstance(a, Tensor):
                g[f"arg{i}"] = (tuple(a.shape), a.dtype.name, a.requires_grad)
        g["grad_mode"] = STATE.grad_enabled
        if self.module is not None:
            g["training"] = self.module.training
        return g

    def note_region(self, plan, fresh, graph):
        key = id(plan)
        if key not in self._keys:
            self._keys.append(key)
            self.stats["compiles"] += 1
            self.stats["regions"].append(plan)
            if len(self._keys) > 1 and self.stats["calls"] > 1:
                reason = self._diff()
                self.stats["recompiles"].append(reason)
                log.emit("recompiles", f"[{self.name}] recompile #{len(self.stats['recompiles'])}: "
                                       f"{reason}")

    def _diff(self):
        prev, cur = self._prev_guards, self._last_guards
        if prev is None:
            return "new region"
        diffs = []
        for k in sorted(set(prev) | set(cur)):
            if prev.get(k) != cur.get(k):
                diffs.append(f"{k}: {prev.get(k)} -> {cur.get(k)}")
        return "; ".join(diffs) if diffs else "graph changed (Python control flow or constants)"

    def __call__(self, *args, **kwargs):
        if self._eager or STATE.tracer is not None:     # nested compiled calls inline
            return self.fn(*args, **kwargs)
        self.stats["calls"] += 1
        self._prev_guards, self._last_guards = self._last_guards, self._guards(args, kwargs)
        n_before = len(self._keys)
        tracer = Tracer(self, self.fullgraph)
        STATE.tracer = tracer
        try:
            out = self.fn(*args, **kwargs)
            tracer.flush()
        except BaseException:
            STATE.tracer = None
            raise
        finally:
            STATE.tracer = None
        if len(self._keys) > cache_size_limit and len(self._keys) > n_before:
            warnings.warn(f"compile: {self.name} was recompiled {len(self._keys)} times (limit "
                          f"{cache_size_limit}); falling back to eager. Last reason: "
                          f"{self.stats['recompiles'][-1] if self.stats['recompiles'] else '?'}")
            self._eager = True
        return out

    # introspection (used by `kiln dump` / explain) -------------------------------------------
    def graphs(self):
        return [p.fwd.graph for p in self.stats["regions"]]

    def backward_graphs(self):
        return [p.bwd.graph for p in self.stats["regions"] if p.bwd is not None]

    def sources(self):
        return [p.fwd.source for p in self.stats["regions"]] + \
            [p.bwd.source for p in self.stats["regions"] if p.bwd is not None]


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
        buffers and state are the original module's (shared, not copied)."""

        def __init__(self, mod, **kw):
            super().__init__()
            self._orig_mod = mod
            object.__setattr__(self, "_compiled", CompiledFunction(
                mod.__call__, name=type(mod).__name__, module=mod, **kw))

        def forward(self, *args, **kwargs):
            return self._compiled(*args, **kwargs)

        def __call__(self, *args, **kwargs):
            return self._compiled(*args, **kwargs)

        def __getattr__(self, name):
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self._modules["_orig_mod"], name)

        def train(self, mode=True):
            self._orig_mod.train(mode)
            return super().train(mode)

        def __repr__(self):
            return f"OptimizedModule(\n  (_orig_mod): " + \
                repr(self._orig_mod).replace("\n", "\n  ") + "\n)"

    return OptimizedModule


class _Lazy:
    cls = None


def OptimizedModule(mod, **kw):
    if _Lazy.cls is None:
        _Lazy.cls = _optimized_module_class()
    return _Lazy.cls(mod, **kw)


def is_compiling():
    return STATE.tracer is not None
