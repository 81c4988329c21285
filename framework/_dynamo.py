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
    backend._CACHE.clear()
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


def __getattr__(name):
    # torch._dynamo.exc: the exception classes compile() raises (imported lazily: _compile
    # imports this module)
    if name == "exc":
        import types
        from ._compile import InvalidBackend, GraphBreakError
        return types.SimpleNamespace(InvalidBackend=InvalidBackend, Unsupported=GraphBreakError,
                                     TorchDynamoException=RuntimeError)
    raise AttributeError(f"module 'torch._dynamo' has no attribute {name!r}")
