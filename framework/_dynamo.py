"""torch._dynamo's user-facing knobs over Kiln's compile(): reset, disable, is_compiling,
mark_dynamic / maybe_mark_dynamic / mark_static, explain, and config (cache_size_limit /
recompile_limit, automatic_dynamic_shapes). torch.compiler (framework/compiler.py) re-exports
the public subset."""
import functools
import weakref

from ._dispatch import STATE
from .tensor import Tensor

_compiled = weakref.WeakSet()       # every CompiledFunction (reset() forgets their state)


def is_compiling():
    """True while compile() traces a function (Python runs with symbolic tensors)."""
    return STATE.tracer is not None


is_dynamo_compiling = is_compiling


def reset():
    """Forget every compiled program and every compiled function's guards, traces and replay
    records: the next call of each compiles anew (torch.compiler.reset)."""
    from compiler import backend
    from ._compile import region
    backend._CACHE.clear()
    region._PLANS.clear()       # (a plan holds its programs: it must not outlive them)
    try:
        from compiler import triton_backend
        triton_backend._CACHE.clear()
    except ImportError:         # (triton not installed: nothing cached there)
        pass
    for cf in list(_compiled):
        cf.reset()


def disable(fn=None, recursive=True, *, reason=None):
    """fn runs eagerly when a compiled function calls it: the graph breaks before the call
    (the region so far runs), the call sees concrete tensors, and tracing resumes after it.
    With fullgraph=True the break is an error, as in PyTorch. Usable as a decorator."""
    if fn is None:
        return functools.partial(disable, recursive=recursive, reason=reason)
    name = getattr(fn, "__qualname__", type(fn).__name__)

    @functools.wraps(fn)
    def eager(*args, **kwargs):
        tracer = STATE.tracer
        if tracer is None:
            return fn(*args, **kwargs)
        tracer.graph_break(f"call to torch.compiler.disable'd {name}" +
                           (f" ({reason})" if reason else ""), None)
        tracer.concrete_reads += 1          # Python outside the graph ran: no replays
        _materialize((args, kwargs))
        STATE.tracer = None
        try:
            return fn(*args, **kwargs)
        finally:
            STATE.tracer = tracer
    eager._kiln_disabled = True
    return eager


def graph_break(msg=""):
    """End the compiled region here (torch._dynamo.graph_break): the ops so far run as one
    region and tracing goes on in a new one. With fullgraph=True it raises, as in PyTorch."""
    tracer = STATE.tracer
    if tracer is not None:
        tracer.graph_break("call to torch._dynamo.graph_break()" + (f": {msg}" if msg else ""),
                           None)


# ---- torch.compiler.set_stance -----------------------------------------------------------------

_STANCES = ("default", "force_eager", "eager_on_recompile", "fail_on_recompile",
            "eager_then_compile", "aot_eager_then_compile")


class DynamoStance:
    __slots__ = ("stance", "skip_guard_eval_unsafe", "backend")

    def __init__(self, stance="default", skip_guard_eval_unsafe=False, backend=None):
        self.stance, self.skip_guard_eval_unsafe, self.backend = \
            stance, skip_guard_eval_unsafe, backend

    def __repr__(self):
        return (f"DynamoStance(stance={self.stance!r}, skip_guard_eval_unsafe="
                f"{self.skip_guard_eval_unsafe}, backend={self.backend!r})")


_STANCE = [DynamoStance()]


def _set_stance(stance):
    if STATE.tracer is not None:
        raise RuntimeError("attempted to set_stance in a torch.compile region")
    prev, _STANCE[0] = _STANCE[0], stance
    return prev


def current_stance():
    """The stance compiled calls consult (framework/_compile: CompiledFunction.__call__). An
    unknown name raises there, at the next compiled call, as in PyTorch."""
    st = _STANCE[0]
    if st.stance not in _STANCES:
        raise RuntimeError(f"invalid torch.compile stance '{st}'")
    return st


class set_stance:
    """torch.compiler.set_stance(stance="default", *, skip_guard_eval_unsafe=False,
    force_backend=None): how compiled functions behave from now on (a call), inside a `with`
    block, or during calls of a decorated function; the previous stance comes back when the
    block or call ends, by an exception too.

    "default": compile as usual (force_backend: trace with that backend instead);
    "force_eager": compiled functions run their Python eagerly;
    "eager_on_recompile": a call whose guards match no compiled program runs eagerly (and
    compiles nothing); calls that match one still run it;
    "fail_on_recompile": such a call raises RuntimeError instead, and leaves no guard behind;
    "eager_then_compile" / "aot_eager_then_compile": a function's first call runs eagerly,
    later calls compile. skip_guard_eval_unsafe is accepted; Kiln always checks its guards."""

    def __init__(self, stance="default", *, skip_guard_eval_unsafe=False, force_backend=None):
        if force_backend is not None and stance != "default":
            raise RuntimeError("non-default stance cannot have force_backend set")
        self.stance = DynamoStance(stance, skip_guard_eval_unsafe, force_backend)
        self.prev = _set_stance(self.stance)

    def __call__(self, fn):
        _set_stance(self.prev)       # as a decorator: only during calls of fn
        stance = self.stance

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = _set_stance(stance)
            try:
                return fn(*args, **kwargs)
            finally:
                _set_stance(prev)
        return wrapper

    def __enter__(self):
        _set_stance(self.stance)

    def __exit__(self, *exc):
        _set_stance(self.prev)
        return False

    def clone(self):
        return type(self)(self.stance.stance, force_backend=self.stance.backend)


def _materialize(x):
    """Concrete arrays for the symbolic tensors in (nested) arguments."""
    from ._compile.lazy import SymArray
    if isinstance(x, Tensor):
        if type(x._data) is SymArray:
            x._data = x._data._materialize("call to a disabled function")
    elif isinstance(x, (list, tuple)):
        for a in x:
            _materialize(a)
    elif isinstance(x, dict):
        for a in x.values():
            _materialize(a)


def _dims(t, index):
    if not isinstance(t, Tensor):
        raise TypeError(f"mark_dynamic: expected a Tensor, got {type(t).__name__}")
    dims = [index] if isinstance(index, int) else list(index)
    for d in dims:
        if not -t.ndim <= d < t.ndim:
            raise IndexError(f"mark_dynamic: dim {d} out of range for a tensor of shape "
                             f"{list(t.shape)}")
    return {d % t.ndim for d in dims}


def mark_dynamic(t, index, *, min=None, max=None):   # noqa: A002  (torch's names)
    """Leave dim(s) `index` of tensor t out of compile()'s shape guards: a new size there is
    no recompile (Kiln still generates one program per concrete size, cached)."""
    t._dynamic_dims = getattr(t, "_dynamic_dims", set()) | _dims(t, index)


maybe_mark_dynamic = mark_dynamic


def mark_static(t, index=None):
    """Guard dim(s) `index` of t again (all dims when index is None)."""
    if index is None:
        t.__dict__.pop("_dynamic_dims", None)
    else:
        t._dynamic_dims = getattr(t, "_dynamic_dims", set()) - _dims(t, index)


class ExplainOutput:
    """What explain() found: graphs, graph breaks with their reasons, ops per graph."""

    def __init__(self, cf):
        regions = cf.stats["regions"]
        self.graphs = [p.fwd.graph if hasattr(p.fwd, "graph") else p for p in regions]
        self.graph_count = len(regions)
        self.break_reasons = [f"{r} at {w}" for r, w in cf.stats["graph_breaks"]]
        self.graph_break_count = len(self.break_reasons)
        self.ops_per_graph = [[n.op for n in g.nodes] if hasattr(g, "nodes") else []
                              for g in self.graphs]
        self.op_count = sum(map(len, self.ops_per_graph))

    def __str__(self):
        lines = [f"Graph Count: {self.graph_count}",
                 f"Graph Break Count: {self.graph_break_count}",
                 f"Op Count: {self.op_count}", "Break Reasons:"]
        lines += [f"  Break Reason {k + 1}: {r}" for k, r in enumerate(self.break_reasons)]
        return "\n".join(lines) + "\n"


def explain(fn, *extra_args, **extra_kwargs):
    """explain(fn)(*args, **kwargs) -> ExplainOutput: compile fn afresh, call it once, report
    its graphs and graph breaks (torch._dynamo.explain)."""
    from ._compile import compile as _compile

    def run(*args, **kwargs):
        cf = _compile(fn, backend="eager")
        cf(*args, **kwargs)
        return ExplainOutput(cf)
    if extra_args or extra_kwargs:          # (the deprecated explain(fn, *args) form)
        return run(*extra_args, **extra_kwargs)
    return run


class _Config:
    """torch._dynamo.config: the knobs Kiln's compile() has. Unknown names raise, as
    PyTorch's config module does."""
    _KNOWN = ("cache_size_limit", "recompile_limit", "automatic_dynamic_shapes")

    def __getattr__(self, name):
        from . import _compile
        if name in ("cache_size_limit", "recompile_limit"):
            return _compile.cache_size_limit
        if name == "automatic_dynamic_shapes":
            return _compile.automatic_dynamic_shapes
        raise AttributeError(f"torch._dynamo.config has no attribute {name!r}")

    def __setattr__(self, name, value):
        from . import _compile
        if name in ("cache_size_limit", "recompile_limit"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
            _compile.cache_size_limit = value
        elif name == "automatic_dynamic_shapes":
            _compile.automatic_dynamic_shapes = bool(value)
        else:
            raise AttributeError(f"torch._dynamo.config has no attribute {name!r}")

    def __dir__(self):
        return list(self._KNOWN)


config = _Config()


def optimize(backend="inductor", *, nopython=False, disable=False, dynamic=None, **kwargs):
    """The old spelling of compile: optimize(backend)(fn) is compile(fn, backend=backend,
    fullgraph=nopython, dynamic=dynamic)."""
    from ._compile import compile as _compile
    if disable:
        return lambda fn: fn
    return lambda fn: _compile(fn, backend=backend, fullgraph=nopython, dynamic=dynamic)


def disallow_in_graph(fn):
    """Calls of the returned function break the graph and run eagerly (as disable(fn)).
    Kiln cannot reroute calls that name the original function (torch.sub in user code): use
    the returned function."""
    return disable(fn, reason="disallow_in_graph")


def _optimized_module_type():
    from ._compile import _Lazy, _optimized_module_class
    if _Lazy.cls is None:
        _Lazy.cls = _optimized_module_class()
    return _Lazy.cls


def __getattr__(name):
    if name in ("allow_in_graph", "list_backends", "set_stance", "assume_constant_result"):
        from . import compiler
        return getattr(compiler, name)
    if name == "OptimizedModule":       # the class compile(module) returns
        return _optimized_module_type()
    if name == "eval_frame":
        import types
        return types.SimpleNamespace(OptimizedModule=_optimized_module_type())
    # torch._dynamo.exc: the exception classes compile() raises (imported lazily: _compile
    # imports this module)
    if name == "exc":
        import types
        from ._compile import InvalidBackend, GraphBreakError
        return types.SimpleNamespace(InvalidBackend=InvalidBackend, Unsupported=GraphBreakError,
                                     TorchDynamoException=RuntimeError)
    raise AttributeError(f"module 'torch._dynamo' has no attribute {name!r}")
