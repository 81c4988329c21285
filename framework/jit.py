"""framework.jit: the parts of torch.jit that PyTorch users and library code call.

    traced = torch.jit.trace(model, example)   # records Kiln's IR graph (compile's tracer)
    traced(x)                                  # runs the graph: compiled region, autograd
    traced.save("m.pt"); m = torch.jit.load("m.pt")   # graph + tensors, no Python class needed
    torch.jit.script(model)                    # eager wrapper: Kiln has no TorchScript compiler

trace() runs the function once under a subclass of compile()'s Tracer that keeps one graph:
Python reading a traced value (item(), bool(), ...) gets it from the graph so far (the value
is baked into the trace, with a TracerWarning, as in PyTorch) instead of breaking the graph.
A call replays the graph's primitives through a compile()d function, so it runs as generated
programs on the inputs' device and gradients flow through the region backward. Parameters and
buffers are graph inputs read from the module at every call (in-place changes are seen).
"""
import builtins
import contextlib
import io
import os
import typing
import warnings
import zipfile

import numpy as np

from compiler.ir.graph import Graph, Value, type_str, _fmt_attr
from compiler.ir.registry import REGISTRY
from runtime import dtypes as dt
from . import _dispatch
from ._dispatch import STATE, wrap
from .tensor import Tensor
from ._compile.lazy import Tracer, SymArray, _where

_builtins_isinstance = builtins.isinstance     # (this module defines jit.isinstance)
_FORMAT = "kiln-traced-module"
_VERSION = 1


class Error(RuntimeError):
    """torch.jit.Error."""


class ScriptWarning(Warning):
    pass


class TracingCheckError(Exception):
    pass


def script_method(fn):
    return fn


@contextlib.contextmanager
def optimized_execution(should_optimize):
    yield


@contextlib.contextmanager
def fuser(name):
    yield


class strict_fusion:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class TracerWarning(Warning):
    """A trace may not generalise (a traced value was read by Python)."""

    @staticmethod
    def ignore_lib_warnings():
        warnings.filterwarnings("ignore", category=TracerWarning, module="framework")


# ---- annotations and predicates -------------------------------------------------------------
Final = typing.Final


def is_scripting():
    """False: Kiln runs scripted code as eager Python."""
    return False


def is_tracing():
    """True while jit.trace records."""
    return _builtins_isinstance(STATE.tracer, _JitTracer)


def annotate(the_type, the_value):
    return the_value


def Attribute(value, type=None):        # noqa: A002  (torch's argument name)
    return value


def _mark(fn, attr):
    setattr(fn, attr, True)
    return fn


def ignore(drop=False, **kwargs):
    """@ignore or @ignore(drop=True): the function stays Python (which all of Kiln's is)."""
    if callable(drop):
        return _mark(drop, "_jit_ignore")
    return lambda fn: _mark(fn, "_jit_ignore")


def unused(fn):
    return _mark(fn, "_jit_unused")


def export(fn):
    return _mark(fn, "_jit_export")


def interface(obj):
    return obj


def _overload(func):
    return func


def _overload_method(func):
    return func


def script_if_tracing(fn):
    return fn


def isinstance(obj, target_type):       # noqa: A001  (torch.jit.isinstance)
    origin = typing.get_origin(target_type)
    if origin is None:
        return builtins.isinstance(obj, target_type)
    args = typing.get_args(target_type)
    if origin in (list, tuple, dict) and not builtins.isinstance(obj, origin):
        return False
    if origin is list:
        return all(isinstance(x, args[0]) for x in obj)
    if origin is tuple:
        return len(obj) == len(args) and all(isinstance(x, a) for x, a in zip(obj, args))
    if origin is dict:
        return all(isinstance(k, args[0]) and isinstance(v, args[1]) for k, v in obj.items())
    if origin is typing.Union:
        return any(isinstance(obj, a) for a in args)
    return builtins.isinstance(obj, origin)


_fusion_strategy = [("STATIC", 2), ("DYNAMIC", 10)]


def set_fusion_strategy(strategy):
    global _fusion_strategy
    old, _fusion_strategy = _fusion_strategy, list(strategy)
    return old


_onednn = False


def enable_onednn_fusion(enabled):
    global _onednn
    _onednn = bool(enabled)


def onednn_fusion_enabled():
    return _onednn


from .futures import Future  # noqa: E402  (torch.jit.Future is torch.futures.Future's base)


def fork(func, *args, **kwargs):
    """A torch.futures.Future of func(*args, **kwargs), computed at once (Kiln runs fork
    synchronously); an error is raised by wait(), as PyTorch's."""
    fut = Future()
    try:
        fut.set_result(func(*args, **kwargs))
    except Exception as e:
        fut.set_exception(e)
    return fut


def wait(future):
    return future.wait()


def _require_script(mod, what):
    _init_classes()
    if not _builtins_isinstance(mod, ScriptModule):
        raise RuntimeError(f"{what} expects a ScriptModule as input. Please use torch.jit.script "
                           "or torch.jit.trace to script your 'nn.Module'.")


def freeze(mod, preserved_attrs=None, optimize_numerics=True):
    """PyTorch's freezing: a module whose graph holds the parameters and buffers as constants
    (it has no parameters; as in PyTorch the constants share the tensors' memory, so in-place
    updates reach them, re-assigned attributes do not). Attributes the graph writes in place,
    and `preserved_attrs`, stay live reads of the original's."""
    _require_script(mod, "Freezing")
    if mod.training:
        raise RuntimeError("Freezing is currently only implemented for modules in eval mode. "
                           "Please call .eval() on your module before freezing.")
    spec = getattr(mod, "_spec", None)
    if spec is None:            # a jit.script module runs eagerly: there is no graph to freeze
        return mod
    keep = set(preserved_attrs or ())
    keep |= {spec.srcs[i][1] for i, _ in spec.writes if spec.srcs[i][0] == "state"}
    srcs, consts = [], list(spec.consts)
    for kind, k in spec.srcs:
        if kind == "state" and k not in keep:
            srcs.append(("const", len(consts)))
            consts.append(mod._state(k).detach())
        else:
            srcs.append((kind, k))
    frozen = _Spec(spec.graph, srcs, consts, spec.writes, spec.template, spec.n_out,
                   spec.recipes)
    frozen.n_args = getattr(spec, "n_args", None)
    out = RecursiveScriptModule(frozen, mod._fn_name)
    object.__setattr__(out, "_state", mod._state)       # the preserved/written attributes
    out.training = False
    return out


def optimize_for_inference(mod, other_methods=None):
    """The frozen module (PyTorch puts `mod` in eval mode first)."""
    _require_script(mod, "optimize_for_inference")
    return freeze(mod.eval(), preserved_attrs=other_methods)


# ---- the tracer --------------------------------------------------------------------------------
class _Owner:
    """What Tracer expects of its owner (compile's CompiledFunction), for a jit trace."""
    trace_device = None
    backend = "numpy"
    mode = None

    def __init__(self, name):
        self.name = name
        self.stats = {"graph_breaks": []}

    def note_region(self, *a):
        pass


class _JitTracer(Tracer):
    """compile()'s tracer keeping one graph: a Python read of a traced value computes it from
    the graph so far (and warns) instead of breaking the graph."""

    def __init__(self, name):
        super().__init__(_Owner(name))
        self.peeked = []            # SymArrays whose .real is set only until the next traced op

    def _unpeek(self):
        for s in self.peeked:
            s.real = None
        self.peeked.clear()

    def _warn(self, what):
        reason, where = _where(what)
        file, _, line = where.split(" (via")[0].rpartition(":")
        warnings.warn_explicit(
            f"{reason}: converting a tensor to a Python value might cause the trace to be "
            "incorrect. We can't record the data flow of Python values, so this value will be "
            "treated as a constant in the future. This means that the trace might not "
            "generalize to other inputs!", TracerWarning, file or "?",
            int(line) if line.isdigit() else 0)

    def graph_break(self, what, sym):
        if sym is None or sym.tracer is not self:
            raise RuntimeError(f"jit.trace: {what}: Kiln cannot trace this (a data-dependent "
                               "output shape or saved-tensor hooks); trace a function without "
                               "it or use torch.compile")
        self._warn(what)
        g = self.graph
        keep = g.outputs
        g.outputs = [sym.value]
        try:
            sym.real = np.asarray(g.run(*[a for _, _, a in self.inputs.values()])[0])
        finally:
            g.outputs = keep
        self.peeked.append(sym)

    def read_value(self, t):
        if type(t._data) is not SymArray:       # an argument or a parameter: also baked in
            self._warn("value read")

    def make_concrete(self, tensors, reason):
        self.graph_break(reason, None)

    def value_of(self, a):
        if self.peeked:
            self._unpeek()
        return super().value_of(a)

    def record(self, p, args, attrs, meta):
        if self.peeked:
            self._unpeek()
        return super().record(p, args, attrs, meta)

    def assign(self, target, r):
        if self.peeked:
            self._unpeek()
        return super().assign(target, r)

    def snapshot(self, t):
        if self.peeked:
            self._unpeek()
        return super().snapshot(t)

    def flush(self, final=False):
        raise AssertionError("jit tracer never runs regions")


def _flatten(o, leaves):
    """A picklable-free template of a nested output: tensors replaced by ("t", k)."""
    if _builtins_isinstance(o, Tensor):
        leaves.append(o)
        return ("t", len(leaves) - 1)
    if type(o) is tuple or type(o) is list:
        return (type(o).__name__, [_flatten(x, leaves) for x in o])
    if type(o) is dict:
        return ("dict", [[k, _flatten(v, leaves)] for k, v in o.items()])
    if o is None or type(o) in (int, float, bool, str):
        return ("c", o)
    raise RuntimeError(f"jit.trace: only tensors and (nested) tuples, lists and dicts of them "
                       f"can be traced outputs, got {type(o).__name__}")


def _build(tpl, vals):
    kind, x = tpl
    if kind == "t":
        return vals[x]
    if kind == "c":
        return x
    if kind == "tuple":
        return tuple(_build(e, vals) for e in x)
    if kind == "list":
        return [_build(e, vals) for e in x]
    return {k: _build(v, vals) for k, v in x}


def _has_mutable(tpl):
    kind, x = tpl
    if kind in ("list", "dict"):
        return kind
    if kind == "tuple":
        for e in x:
            k = _has_mutable(e)
            if k:
                return k
    return None


def _has_const(tpl):
    kind, x = tpl
    if kind == "c":
        return True
    if kind == "dict":
        return any(_has_const(v) for _, v in x)
    return kind != "t" and any(_has_const(e) for e in x)


def _type_str(o):
    """TorchScript's name of an example input's type, for trace's error."""
    if _builtins_isinstance(o, Tensor):
        return "Tensor"
    if type(o) in (tuple, list):
        return f"{type(o).__name__.capitalize()}[{', '.join(_type_str(e) for e in o)}]"
    if type(o) is dict:
        return f"Dict[{', '.join(_type_str(v) for v in o.values())}]"
    return "NoneType" if o is None else type(o).__name__


class _Spec:
    """A recorded graph and where its inputs come from: ("arg", k), ("state", dotted name of a
    parameter/buffer), ("const", k), ("draw", k); `writes`: (source, value) in-place updates."""

    def __init__(self, graph, srcs, consts, writes, template, n_out, recipes=()):
        self.graph, self.srcs, self.consts, self.writes = graph, srcs, consts, writes
        self.template, self.n_out, self.recipes = template, n_out, list(recipes)
        args = [(v, s[1]) for v, s in zip(graph.inputs, srcs) if s[0] == "arg"]
        self.batch = args[0][0].shape[0] if args and args[0][0].shape else None
        self.batch_attrs = self._batch_attrs(args)

    def _batch_attrs(self, args):
        """{node index: attribute names} of shape attributes that carry the batch dim (dim 0 of
        the first argument): rewritten when a call has another batch size. Only where every
        value computed from the batched arguments keeps the batch as its dim 0 (`batch_ok`):
        a reduction over the batch (mean, BatchNorm statistics) bakes the batch size into
        constants, so such a graph is not rewritten."""
        b = self.batch
        self.batch_ok = b is not None and b > 1
        if not self.batch_ok:
            return {}
        carry = {id(v) for v, _ in args if v.shape and v.shape[0] == b}
        out = {}
        for j, n in enumerate(self.graph.nodes):
            made = not any(_builtins_isinstance(a, Value) for a in n.inputs)
            if not made and not any(_builtins_isinstance(a, Value) and id(a) in carry
                                    for a in n.inputs):
                continue
            if made:        # a tensor made in forward: zeros(x.size(0), ...), padding
                names = [k for k, x in n.attrs.items() if k in _SHAPE_ATTRS and
                         type(x) is tuple and x and x[0] == b]
                if names and n.outputs[0].shape[:1] == (b,):
                    out[j] = names
                    carry.update(id(o) for o in n.outputs)
                continue
            if any(o.shape[:1] != (b,) for o in n.outputs):
                self.batch_ok = False
                return {}
            names = [k for k, x in n.attrs.items() if k in _SHAPE_ATTRS and type(x) is tuple
                     and x and x[0] == b]
            if names:
                out[j] = names
            carry.update(id(o) for o in n.outputs)
        return out


_SHAPE_ATTRS = ("shape",)      # the attributes that are a tensor's shape (not kernel sizes)


def _run_graph(spec, batch, *tensors):
    """Replay the graph's primitives on `tensors` (inside compile(): one traced region)."""
    g = spec.graph
    env = {id(v): t for v, t in zip(g.inputs, tensors)}
    rewrite = batch != spec.batch
    apply = _dispatch.apply
    for j, n in enumerate(g.nodes):
        args = [env[id(a)] if _builtins_isinstance(a, Value) else a for a in n.inputs]
        attrs = n.attrs
        names = spec.batch_attrs.get(j) if rewrite else None
        if names:
            attrs = dict(attrs)
            for k in names:
                attrs[k] = (batch,) + attrs[k][1:]
        r = apply(REGISTRY[n.op], *args, **attrs)
        rs = r if type(r) is tuple else (r,)
        for o, t in zip(n.outputs, rs):
            env[id(o)] = t
    outs = [env[id(v)] if _builtins_isinstance(v, Value) else v for v in g.outputs]
    from .autograd import no_grad
    with no_grad():
        for (src, _), t in zip(spec.writes, outs[spec.n_out:]):
            tensors[src].copy_(t)          # a buffer updated in place (BatchNorm statistics)
    return tuple(outs[:spec.n_out])


def _trace_fn(fn, args, kwargs, name, module, strict, commit=True):
    from .autograd import no_grad
    flat = []
    if _has_const(_flatten((tuple(args), dict(kwargs)), flat)):
        raise RuntimeError(f"Type '{_type_str(tuple(args) + tuple(kwargs.values()))}' cannot "
                           "be traced. Only Tensors and (possibly nested) Lists, Dicts, and "
                           "Tuples of Tensors can be traced")
    if STATE.tracer is not None:
        raise RuntimeError("jit.trace: cannot trace inside another trace or torch.compile")
    tracer = _JitTracer(name)
    state = {}
    if module is not None:
        for k, t in list(module.named_parameters()) + list(module.named_buffers()):
            state.setdefault(id(t._data), k)
    STATE.tracer = tracer
    try:
        with no_grad():         # the graph is what matters; autograd comes from the replay
            out = fn(*args, **kwargs)
        tracer._unpeek()
        leaves = []
        template = _flatten(out, leaves)
        if out is None:
            raise RuntimeError("The traced function didn't return any values! Side-effects are "
                               "not captured in traces, so it would be a no-op.")
        if _has_const(template):
            raise RuntimeError("Only tensors, lists, tuples of tensors, or dictionary of tensors "
                               "can be output from traced functions")
        if strict:
            k = _has_mutable(template)
            if k:
                raise RuntimeError(
                    f"Encountering a {k} at the output of the tracer might cause the trace to "
                    "be incorrect, this is only valid if the container structure does not "
                    "change based on the module's inputs. Consider using a constant container "
                    "instead (e.g. for `list`, use a `tuple` instead. for `dict`, use a "
                    "`NamedTuple` instead). If you absolutely need this and know the side "
                    "effects, pass strict=False to trace() to allow this behavior.")
        out_vals = [tracer.value_of(t) for t in leaves]
    finally:
        STATE.tracer = None
    g = tracer.graph
    argpos = {id(t): k for k, t in enumerate(flat)}
    argarr = {}
    for k, t in enumerate(flat):
        # an argument written in place holds a SymArray now; its array is the one read
        d = t._data.orig if type(t._data) is SymArray else t._data
        if d is not None:
            argarr.setdefault(id(d), k)
    drawn = {id(a): k for k, (a, _, _) in enumerate(tracer.draws)}
    srcs, consts = [], []
    in_arrays = []
    for t, v, a in tracer.inputs.values():
        in_arrays.append(a)
        k = argpos.get(id(t), argarr.get(id(a)))
        if k is not None:
            srcs.append(("arg", k))
        elif id(a) in state:
            srcs.append(("state", state[id(a)]))
        elif id(a) in drawn:
            srcs.append(("draw", drawn[id(a)]))
        else:
            srcs.append(("const", len(consts)))
            consts.append(wrap(np.array(a, copy=True), t._dtype, t._device))
    writes, ov_vals, ov_arrays = [], [], []
    inpos = {id(a): i for i, a in enumerate(in_arrays)}
    for arr, v in tracer.overrides.values():
        i = inpos.get(id(arr))
        if i is None:
            if id(arr) not in state:
                raise RuntimeError("jit.trace: the traced function writes in place to a tensor "
                                   "that is neither an input nor a parameter/buffer")
            i = len(g.inputs)       # a buffer written before it was read: make it an input
            t = next(t for k, t in (list(module.named_parameters()) +
                                    list(module.named_buffers())) if t._data is arr)
            g.add_input(f"in{i}", arr.shape, t._dtype)
            srcs.append(("state", state[id(arr)]))
            in_arrays.append(arr)
        writes.append((i, v))
        ov_vals.append(v)
        ov_arrays.append(arr)
    # the trace's own run (PyTorch's trace runs the function): in-place updates land, and
    # tensors the function kept (on the module, in a list) become concrete
    alive = []
    for r in tracer.tracked:
        t = r()
        if t is not None and type(t._data) is SymArray and t._data.tracer is tracer:
            alive.append(t)
    g.outputs = [t._data.value for t in alive] + ov_vals
    res = g.run(*in_arrays)
    for t, r in zip(alive, res):
        orig = t._data.orig
        t._data = orig if orig is not None else np.asarray(r)
    if commit:          # (a re-trace for new shapes leaves the state to the run that follows)
        for arr, r in zip(ov_arrays, res[len(alive):]):
            np.copyto(arr, r, casting="unsafe")
    g.outputs = out_vals + ov_vals
    spec = _Spec(g, srcs, consts, writes, template, len(out_vals),
                 [(rc, dtype) for _, dtype, rc in tracer.draws])
    spec.n_args = len(args) + len(kwargs)       # a call with more raises, as TorchScript's
    return spec


# ---- traced callables -------------------------------------------------------------------------
def _script_module_base():
    from .nn import Module
    return Module


class _Runner:
    """Runs a _Spec through compile(): one compiled function per spec (its cache holds one
    program per input shape)."""

    def __init__(self, spec, name):
        from ._compile import CompiledFunction
        self.spec = spec
        self.cf = CompiledFunction(lambda batch, *ts: _run_graph(spec, batch, *ts), name=name)

    def __call__(self, flat, state):
        spec = self.spec
        ts = []
        for s in spec.srcs:
            kind, k = s
            if kind == "arg":
                ts.append(flat[k])
            elif kind == "state":
                ts.append(state(k))
            elif kind == "const":
                ts.append(spec.consts[k])
            else:
                rc, dtype = spec.recipes[k]
                ts.append(wrap(rc(), dtype))
        batch = spec.batch
        if batch is not None and flat and flat[0].dim() > 0:
            batch = flat[0].shape[0]
        return self.cf(batch, *ts)


def _tensors_of(args, kwargs):
    flat = []
    _flatten((tuple(args), dict(kwargs)), flat)
    return flat


class _TracedMixin:
    """.graph, .code, .save, .inlined_graph of a traced callable."""

    @property
    def graph(self):
        return self._spec.graph

    @property
    def inlined_graph(self):
        return self._spec.graph

    @property
    def code(self):
        return _code(self._spec, self._fn_name)

    def save(self, f, _extra_files=None):
        _save(self, f)

    def _run(self, args, kwargs, state):
        try:
            return self._run_graph(args, kwargs, state)
        except RuntimeError:
            raise
        except Exception as e:      # TorchScript's interpreter raises every op's error as this
            raise Error(f"The following operation failed in the TorchScript interpreter.\n"
                        f"{type(e).__name__}: {e}") from e

    def _run_graph(self, args, kwargs, state):
        flat = _tensors_of(args, kwargs)
        spec = self._spec
        n = getattr(spec, "n_args", None)           # (None: loaded from a file)
        if n is not None and len(args) + len(kwargs) > n:
            k = int(state is not None)               # a module's forward counts self
            fname = "forward" if state is not None else self._fn_name
            raise RuntimeError(f"{fname}() expected at most {n + k} argument(s) but received "
                               f"{len(args) + len(kwargs) + k} argument(s)")
        argv = [(v, s[1]) for v, s in zip(spec.graph.inputs, spec.srcs) if s[0] == "arg"]
        need = max([k for _, k in argv], default=-1) + 1
        if len(flat) < need:
            raise RuntimeError(f"jit: {self._fn_name} was traced with {need} tensor inputs, "
                               f"got {len(flat)}")
        sig = tuple((tuple(flat[k].shape), flat[k].dtype) for _, k in argv)
        same = all(tuple(v.shape) == s[0] and v.dtype is s[1] for (v, _), s in zip(argv, sig))
        runner = self._runner
        if not same and not (spec.batch_ok and all(
                s[0][1:] == v.shape[1:] and s[1] is v.dtype and
                (v.shape[0] != spec.batch or s[0][0] == flat[0].shape[0])
                for (v, _), s in zip(argv, sig))):
            # shapes beyond the batch dim changed: the graph's shape attributes and constants
            # do not fit; trace the Python function again for them (one graph per signature)
            if self._retrace is None:
                raise RuntimeError(
                    f"jit: {self._fn_name}'s graph was recorded for input shapes "
                    f"{[list(v.shape) for v, _ in argv]} and (loaded without its Python code) "
                    f"can only change the batch dimension"
                    + ("" if spec.batch_ok else " where no op reduces over it") +
                    f"; got {[list(s[0]) for s in sig]}. Trace again with inputs of the new "
                    "shape")
            runner = self._respecs.get(sig)
            if runner is None:
                sp = self._retrace(args, kwargs)
                runner = self._respecs[sig] = _Runner(sp, self._fn_name)
        try:
            outs = runner(flat, state)
        except (RuntimeError, ValueError, IndexError):
            if same or self._retrace is None:
                raise
            # the batch rewrite does not fit this graph: trace the Python function again
            runner = self._respecs[sig] = _Runner(self._retrace(args, kwargs), self._fn_name)
            outs = runner(flat, state)
        return _build(runner.spec.template, list(outs))


class ScriptFunction(_TracedMixin):
    """What jit.trace(function) returns."""

    def __init__(self, spec, name, fn=None):
        self._spec, self._fn_name, self.__name__ = spec, name, name
        self._runner = _Runner(spec, name)
        self._respecs = {}
        self._retrace = None if fn is None else \
            (lambda a, k: _trace_fn(fn, a, k, name, None, False, commit=False))

    def __call__(self, *args, **kwargs):
        return self._run(args, kwargs, None)

    @property
    def name(self):
        return self._fn_name

    def __repr__(self):
        return f"<framework.jit.ScriptFunction object {self._fn_name}>"


def _classes():
    Module = _script_module_base()

    class ScriptModule(Module):
        """Base of Kiln's traced, loaded and scripted modules."""

    class RecursiveScriptModule(ScriptModule):
        """A module whose forward is a recorded graph (jit.load's result; the base of traced
        modules). Parameters and buffers live in submodules named as in the original."""

        def __init__(self, spec=None, name="Module"):
            super().__init__()
            object.__setattr__(self, "_spec", spec)
            object.__setattr__(self, "_fn_name", name)
            object.__setattr__(self, "_runner", None if spec is None else _Runner(spec, name))
            object.__setattr__(self, "_retrace", None)
            object.__setattr__(self, "_respecs", {})

        def _state(self, name):
            return _get_state(self, name)

        def forward(self, *args, **kwargs):
            return self._run(args, kwargs, self._state)

        def __call__(self, *args, **kwargs):
            return self.forward(*args, **kwargs)

        @property
        def original_name(self):
            return self._fn_name

        def extra_repr(self):
            return f"original_name={self._fn_name}"

    class TracedModule(RecursiveScriptModule):
        """What jit.trace(module) returns: the graph reads the original module's parameters and
        buffers (shared, not copied); state_dict keys are the module's own."""

        def __init__(self, mod, spec, name, retrace):
            Module.__init__(self)
            object.__setattr__(self, "_spec", spec)
            object.__setattr__(self, "_fn_name", name)
            object.__setattr__(self, "_runner", _Runner(spec, name))
            object.__setattr__(self, "_retrace", retrace)
            object.__setattr__(self, "_respecs", {})
            for k, m in mod._modules.items():
                self._modules[k] = m
            for k, p in mod._parameters.items():
                self._parameters[k] = p
            for k, b in mod._buffers.items():
                self._buffers[k] = b
            self._non_persistent_buffers_set |= set(mod._non_persistent_buffers_set)
            object.__setattr__(self, "_orig", mod)
            self.training = mod.training        # a trace of an eval() module is in eval mode

        def _state(self, name):
            return _get_state(self._orig, name)

        def train(self, mode=True):
            self._orig.train(mode)
            return super().train(mode)

        def _get_name(self):            # PyTorch prints Linear(original_name=Linear)
            return self._fn_name

        def __repr__(self):
            from .nn.modules.module import _addindent
            # the submodules print as traced ones, Conv2d(original_name=Conv2d), as PyTorch's
            def rep(name, m):
                kids = ["(" + k + "): " + _addindent(rep(_orig_name(c), c), 2)
                        for k, c in m._modules.items() if c is not None]
                if not kids:
                    return f"{name}(original_name={name})"
                return f"{name}(\n  original_name={name}\n  " + "\n  ".join(kids) + "\n)"
            return rep(self._fn_name, self)

    class _ScriptedModule(ScriptModule):
        """What jit.script(module) returns: the module, run eagerly (no TorchScript compiler)."""

        def __init__(self, mod):
            Module.__init__(self)
            self._modules["_script_mod"] = mod
            self.training = mod.training

        def forward(self, *args, **kwargs):
            return self._modules["_script_mod"](*args, **kwargs)

        def __getattr__(self, name):
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self._modules["_script_mod"], name)

        def train(self, mode=True):
            self._modules["_script_mod"].train(mode)
            return super().train(mode)

        def state_dict(self, *args, **kwargs):
            return self._modules["_script_mod"].state_dict(*args, **kwargs)

        def load_state_dict(self, *args, **kwargs):
            return self._modules["_script_mod"].load_state_dict(*args, **kwargs)

        graph = property(lambda self: _no_script("graph"))
        code = property(lambda self: _no_script("code"))

        def save(self, f, _extra_files=None):
            _no_script("save")

        def __repr__(self):
            return repr(self._modules["_script_mod"])

    for c in (RecursiveScriptModule,):
        for k in ("graph", "inlined_graph", "code", "save", "_run", "_run_graph"):
            setattr(c, k, _TracedMixin.__dict__[k])
    return ScriptModule, RecursiveScriptModule, TracedModule, _ScriptedModule


def _get_state(m, name):
    try:
        return m.get_parameter(name)
    except AttributeError:
        return m.get_buffer(name)


def _no_script(what):
    raise RuntimeError(f"jit.script: .{what} is not available: Kiln has no TorchScript compiler, "
                       "so jit.script runs the module/function as eager Python. Use "
                       "torch.jit.trace(model, example_inputs) to record a graph that can be "
                       "saved and loaded.")


class _ScriptedFunction:
    """What jit.script(function) returns: the function, run eagerly."""

    def __init__(self, fn):
        self._fn = fn
        self.__name__ = getattr(fn, "__name__", "fn")
        self.__doc__ = getattr(fn, "__doc__", None)

    def __call__(self, *args, **kwargs):
        return self._fn(*args, **kwargs)

    graph = property(lambda self: _no_script("graph"))
    code = property(lambda self: _no_script("code"))

    def save(self, f, _extra_files=None):
        _no_script("save")


(ScriptModule, RecursiveScriptModule, TracedModule, _ScriptedModule) = (None,) * 4
TopLevelTracedModule = None


def _init_classes():
    global ScriptModule, RecursiveScriptModule, TracedModule, _ScriptedModule, \
        TopLevelTracedModule
    if ScriptModule is None:
        ScriptModule, RecursiveScriptModule, TracedModule, _ScriptedModule = _classes()
        # what jit.trace(module) returns, as PyTorch's type(traced).__name__ shows
        TopLevelTracedModule = type("TopLevelTracedModule", (TracedModule,),
                                    {"__module__": __name__})


def __getattr__(name):
    if name in ("ScriptModule", "RecursiveScriptModule", "TracedModule", "TopLevelTracedModule"):
        _init_classes()
        return globals()[name]
    raise AttributeError(f"module 'framework.jit' has no attribute {name!r}")


# ---- trace / script ----------------------------------------------------------------------------
def trace(func, example_inputs=None, optimize=None, check_trace=True, check_inputs=None,
          check_tolerance=1e-05, strict=True, _force_outplace=False, _module_class=None,
          _compilation_unit=None, example_kwarg_inputs=None, _store_inputs=True):
    """torch.jit.trace: run `func` once on the example inputs, recording Kiln's IR graph.
    check_trace (PyTorch's default) traces again on each of check_inputs (the example inputs by
    default) and runs trace, function and repeated trace: differing outputs warn
    (TracerWarning), differing graphs raise TracingCheckError."""
    _init_classes()
    if _builtins_isinstance(func, ScriptModule) or _builtins_isinstance(func, ScriptFunction):
        warnings.warn("The input to trace is already a ScriptModule, tracing it is a no-op. "
                      "Returning the object as is.")
        return func
    if example_inputs is None and example_kwarg_inputs is None:
        raise RuntimeError("example_kwarg_inputs or example_inputs should be provided")
    if example_kwarg_inputs is not None and not _builtins_isinstance(example_kwarg_inputs, dict):
        raise RuntimeError("example_kwarg_inputs should be a dict")
    args = () if example_inputs is None else \
        (tuple(example_inputs) if type(example_inputs) in (tuple, list) else (example_inputs,))
    kwargs = dict(example_kwarg_inputs or {})
    from .nn import Module
    if _builtins_isinstance(func, Module):
        name = type(func).__name__
        spec = _trace_fn(func, args, kwargs, name, func, strict)
        traced = TopLevelTracedModule(func, spec, name,
                                      lambda a, k: _trace_fn(func, a, k, name, func, strict,
                                                             commit=False))
    else:
        if not callable(func):
            raise RuntimeError(f"jit.trace: expected a function or nn.Module, got "
                               f"{type(func).__name__}")
        owner = getattr(func, "__self__", None)
        name = getattr(func, "__name__", "fn")
        spec = _trace_fn(func, args, kwargs, name, owner if _builtins_isinstance(owner, Module)
                         else None, strict)
        traced = ScriptFunction(spec, name, func)
    if check_trace:
        if check_inputs is None:
            check_inputs = [kwargs if example_kwarg_inputs is not None else args]
        _check_trace(check_inputs, func, traced, check_tolerance, strict,
                     example_kwarg_inputs is not None)
    return traced


# ---- check_trace: PyTorch's sanity check of a fresh trace ------------------------------------
def _clone_inputs(inputs):
    """A deep copy of the (nested) inputs: the checks must not see each other's in-place writes."""
    if _builtins_isinstance(inputs, Tensor):
        return inputs.detach().clone().requires_grad_(inputs.requires_grad)
    if _builtins_isinstance(inputs, (tuple, list)):
        return type(inputs)(_clone_inputs(v) for v in inputs)
    if _builtins_isinstance(inputs, dict):
        return {k: _clone_inputs(v) for k, v in inputs.items()}
    return inputs


def _canonical(graph, erase_shapes):
    """The graph's text with value names numbered by first use (and, where the check inputs'
    shapes differ from the example's, without shapes: a trace bakes them in)."""
    import re
    text = str(graph)
    if erase_shapes:
        text = re.sub(r": [^,)=]*\[[0-9, ]*\]", "", text)          # type annotations
        text = re.sub(r"\((?:-?[0-9]+, )*-?[0-9]+,?\)", "(...)", text)  # shape-like tuples
    return text


def _check_trace(check_inputs, func, traced, tol, strict, as_kwargs):
    from .testing import assert_close
    for inputs in check_inputs:
        if _builtins_isinstance(inputs, Tensor):
            inputs = (inputs,)

        def call(f, what):
            ins = _clone_inputs(inputs)
            try:
                out = f(**ins) if as_kwargs else f(*ins)
            except Exception as e:
                raise TracingCheckError(
                    f"Tracing failed sanity checks!\nencountered an exception while running "
                    f"the {what} with test inputs.\nException:\n\t{e}") from e
            return [o for o in (out if _builtins_isinstance(out, tuple) else (out,))
                    if _builtins_isinstance(o, Tensor)]

        check = trace(func, example_kwarg_inputs=_clone_inputs(inputs), check_trace=False,
                      strict=strict) if as_kwargs else \
            trace(func, _clone_inputs(inputs), check_trace=False, strict=strict)
        warned = []

        def compare(orig, ref, what):
            ok = True
            for i, (a, b) in enumerate(zip(orig, ref)):
                cast = (lambda t: t.detach().to(dt.complex128)) if a.is_complex() or \
                    b.is_complex() else (lambda t: t.detach().double())
                try:
                    assert_close(cast(a), cast(b), rtol=tol, equal_nan=True,
                                 atol=1e-5 if a.dtype in (dt.float32, dt.complex64) else 1e-7)
                except AssertionError as e:
                    draws = [v.name for v, s in zip(traced._spec.graph.inputs,
                                                    traced._spec.srcs) if s[0] == "draw"]
                    if draws and not warned:
                        warned.append(1)
                        warnings.warn(
                            "Trace had nondeterministic nodes. Did you forget call .eval() on "
                            "your model? Nodes:\n" + "\n".join(f"\t{n} = random draw"
                                                               for n in draws[:20]) +
                            "\nThis may cause errors in trace checking. To disable trace "
                            "checking, pass check_trace=False to torch.jit.trace()",
                            TracerWarning, stacklevel=5)
                    warnings.warn(f"Output nr {i + 1}. of the traced function does not match "
                                  f"the corresponding output of the {what}. Detailed error:\n"
                                  f"{e}", TracerWarning, stacklevel=4)
                    ok = False
            return ok

        traced_outs = call(traced, "trace")
        if compare(traced_outs, call(func, "Python function"), "Python function"):
            compare(traced_outs, call(check, "repeated trace"), "repeated trace")
        shapes = [tuple(v.shape) for v in traced._spec.graph.inputs]
        erase = shapes != [tuple(v.shape) for v in check._spec.graph.inputs]
        a = _canonical(traced._spec.graph, erase)
        b = _canonical(check._spec.graph, erase)
        if a != b:
            import difflib
            diff = "\n".join(difflib.unified_diff(a.splitlines(), b.splitlines(), "trace",
                                                  "repeated trace", lineterm=""))
            raise TracingCheckError("Tracing failed sanity checks!\nERROR: Graphs differed "
                                    "across invocations!\n" + diff)


def trace_module(mod, inputs, optimize=None, check_trace=True, check_inputs=None,
                 check_tolerance=1e-05, strict=True, _force_outplace=False,
                 _module_class=None, _compilation_unit=None, example_inputs_is_kwarg=False,
                 _store_inputs=True):
    """Only `forward` can be traced in Kiln."""
    if not _builtins_isinstance(inputs, dict) or set(inputs) != {"forward"}:
        raise RuntimeError("jit.trace_module: Kiln traces only the 'forward' method; pass "
                           "inputs={'forward': example_inputs}")
    ex = inputs["forward"]
    checks = None if check_inputs is None else [c["forward"] for c in check_inputs]
    if example_inputs_is_kwarg:
        return trace(mod, example_kwarg_inputs=ex, strict=strict, check_trace=check_trace,
                     check_inputs=checks, check_tolerance=check_tolerance)
    return trace(mod, ex, strict=strict, check_trace=check_trace, check_inputs=checks,
                 check_tolerance=check_tolerance)


def script(obj, optimize=None, _frames_up=0, _rcb=None, example_inputs=None):
    """torch.jit.script: Kiln cannot compile Python source to TorchScript, so the result runs
    `obj` as eager Python (identical results); its .save, .graph and .code raise RuntimeError
    pointing to jit.trace."""
    _init_classes()
    from .nn import Module
    if _builtins_isinstance(obj, (ScriptModule, ScriptFunction, _ScriptedFunction)):
        return obj
    if _builtins_isinstance(obj, Module):
        return _ScriptedModule(obj)
    if _builtins_isinstance(obj, type):
        return obj                  # a scripted class: its instances are plain Python
    if callable(obj):
        return _ScriptedFunction(obj)
    raise RuntimeError(f"jit.script: cannot script an object of type {type(obj).__name__}")


# ---- code view ---------------------------------------------------------------------------------
def _code(spec, name):
    g = spec.graph
    names = {}
    args = []
    for v, s in zip(g.inputs, spec.srcs):
        if s[0] == "arg":
            names[id(v)] = f"x{s[1]}"
            args.append(f"x{s[1]}: {type_str(v)}")
        elif s[0] == "state":
            names[id(v)] = "self." + s[1]
        elif s[0] == "const":
            names[id(v)] = f"CONSTANTS.c{s[1]}"
        else:
            names[id(v)] = f"random_draw_{s[1]}()"
    lines = [f"def forward(self, {', '.join(args)}):" if args else "def forward(self):"]
    for n in g.nodes:
        for o in n.outputs:
            names[id(o)] = o.name
        outs = ", ".join(o.name for o in n.outputs)
        ins = [names[id(a)] if _builtins_isinstance(a, Value) else _fmt_attr(a)
               for a in n.inputs]
        ins += [f"{k}={_fmt_attr(v)}" for k, v in n.attrs.items()]
        lines.append(f"    {outs} = kiln.{n.op}({', '.join(ins)})")
    for (i, v) in spec.writes:
        lines.append(f"    {names[id(g.inputs[i])]}.copy_({names.get(id(v), repr(v))})")
    rets = [names.get(id(v), repr(v)) if _builtins_isinstance(v, Value) else repr(v)
            for v in g.outputs[:spec.n_out]]
    lines.append(f"    return {_build_code(spec.template, rets)}")
    return "\n".join(lines) + "\n"


def _build_code(tpl, rets):
    kind, x = tpl
    if kind == "t":
        return rets[x]
    if kind == "c":
        return repr(x)
    if kind == "tuple":
        inner = ", ".join(_build_code(e, rets) for e in x)
        return f"({inner},)" if len(x) == 1 else f"({inner})"
    if kind == "list":
        return "[" + ", ".join(_build_code(e, rets) for e in x) + "]"
    return "{" + ", ".join(f"{k!r}: {_build_code(v, rets)}" for k, v in x) + "}"


# ---- save / load -------------------------------------------------------------------------------
_PLAIN = (type(None), bool, int, float, str, complex)


def _enc(x, ids):
    """A node argument/attribute as a tree framework.save stores as JSON."""
    if _builtins_isinstance(x, Value):
        return {"value": ids[id(x)]}
    if type(x) in _PLAIN or _builtins_isinstance(x, dt.DType):
        return {"const": x}
    if type(x) in (tuple, list):
        return {type(x).__name__: [_enc(e, ids) for e in x]}
    raise RuntimeError(f"jit.save: cannot store a graph constant of type {type(x).__name__} "
                       f"({x!r})")


def _dec(x, vals):
    if "value" in x:
        return vals[x["value"]]
    if "const" in x:
        return x["const"]
    if "tuple" in x:
        return tuple(_dec(e, vals) for e in x["tuple"])
    return [_dec(e, vals) for e in x["list"]]


def _save(obj, f):
    from .serialization import save as _fsave
    spec = obj._spec
    if spec.recipes:
        raise RuntimeError("jit.save: the trace draws random numbers (dropout in training "
                           "mode), which Kiln's saved graphs cannot repeat; call .eval() on the "
                           "module before tracing")
    g = spec.graph
    ids = {}
    inputs = []
    for k, v in enumerate(g.inputs):
        ids[id(v)] = k
        inputs.append({"shape": list(v.shape), "dtype": v.dtype})
    nodes = []
    for n in g.nodes:
        for o in n.outputs:
            ids[id(o)] = len(ids)
        nodes.append({"op": n.op, "inputs": [_enc(a, ids) for a in n.inputs],
                      "attrs": {k: _enc(v, ids) for k, v in n.attrs.items()},
                      "outputs": [[list(o.shape), o.dtype] for o in n.outputs]})
    state = {}
    module = obj if not _builtins_isinstance(obj, ScriptFunction) else None
    if module is not None:
        for k, p in module.named_parameters():
            state[k] = ("parameter", p.detach(), p.requires_grad)
        for k, b in module.named_buffers():
            state[k] = ("buffer", b, k.rsplit(".", 1)[-1] not in
                        _owner_of(module, k)._non_persistent_buffers_set)
    rec = {"format": _FORMAT, "version": _VERSION, "name": obj._fn_name,
           "kind": "module" if module is not None else "function",
           "training": bool(getattr(module, "training", False)),
           "inputs": inputs, "srcs": [list(s) for s in spec.srcs], "nodes": nodes,
           "outputs": [_enc(v, ids) for v in g.outputs], "n_out": spec.n_out,
           "writes": [[i, _enc(v, ids)] for i, v in spec.writes],
           "template": _tpl_enc(spec.template), "consts": list(spec.consts),
           "state": {k: list(v) for k, v in state.items()},
           # submodule names and classes: a loaded module prints as PyTorch's does
           "modules": [] if module is None else
           [[k, _orig_name(m)] for k, m in module.named_modules() if k]}
    _fsave(rec, f)


def _orig_name(m):
    return getattr(m, "_fn_name", None) or type(m).__name__


def _owner_of(module, dotted):
    path = dotted.rsplit(".", 1)
    return module.get_submodule(path[0]) if len(path) == 2 else module


def _tpl_enc(tpl):
    kind, x = tpl
    if kind in ("t", "c"):
        return [kind, x]
    if kind == "dict":
        return [kind, [[k, _tpl_enc(v)] for k, v in x]]
    return [kind, [_tpl_enc(e) for e in x]]


def _tpl_dec(t):
    kind, x = t
    if kind in ("t", "c"):
        return (kind, x)
    if kind == "dict":
        return (kind, [(k, _tpl_dec(v)) for k, v in x])
    return (kind, [_tpl_dec(e) for e in x])


def _not_traced(name, why):
    return RuntimeError(f"jit.load: {name} is not a Kiln traced module ({why}); jit.load reads "
                        "files written by a Kiln traced module's .save() / jit.save()")


def load(f, map_location=None, _extra_files=None, _restore_shapes=False):
    """torch.jit.load for files written by a Kiln traced module or function. Nothing in the file
    runs: the graph is rebuilt primitive by primitive (each meta rule re-checks its shapes)."""
    from .serialization import load as _fload, _name, _read_all
    _init_classes()
    name = _name(f)
    if _builtins_isinstance(f, (str, os.PathLike)):         # PyTorch's ValueErrors
        if not os.path.exists(f):
            raise ValueError(f"The provided filename {f} does not exist")
        if os.path.isdir(f):
            raise ValueError(f"The provided filename {f} is a directory")
    raw = _read_all(f, name)
    if raw[:4] == b"PK\x03\x04":
        try:
            names = zipfile.ZipFile(io.BytesIO(raw)).namelist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise _not_traced(name, f"corrupted zip archive: {e}") from None
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            raise RuntimeError(f"jit.load: {name} is a PyTorch TorchScript archive; Kiln has no "
                               "TorchScript interpreter and cannot read it. Re-export the model "
                               "from PyTorch as a state_dict (torch.save(model.state_dict())) "
                               "and load it into the same nn.Module in Kiln")
    try:
        rec = _fload(io.BytesIO(raw), map_location=map_location)
    except RuntimeError as e:
        raise _not_traced(name, str(e)) from None
    if not _builtins_isinstance(rec, dict) or rec.get("format") != _FORMAT:
        raise _not_traced(name, "a checkpoint without a traced graph")
    if rec.get("version", 0) > _VERSION:
        raise RuntimeError(f"jit.load: {name} was written by a newer format version "
                           f"{rec.get('version')}")
    try:
        spec, state = _rebuild(rec)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise _not_traced(name, f"malformed graph record: {type(e).__name__}: {e}") from None
    if rec["kind"] == "function":
        return ScriptFunction(spec, rec["name"])
    from .nn import Parameter, Module
    m = RecursiveScriptModule(spec, rec["name"])
    for k, cls in rec.get("modules", ()):           # (parents come first)
        *path, leaf = k.split(".")
        m.get_submodule(".".join(path))._modules[leaf] = RecursiveScriptModule(None, cls)
    for k, (kind, t, flag) in state.items():
        owner = m
        *path, leaf = k.split(".")
        for p in path:
            sub = owner._modules.get(p)
            if sub is None:
                sub = Module()
                owner._modules[p] = sub
            owner = sub
        if kind == "parameter":
            owner.register_parameter(leaf, Parameter(t, requires_grad=flag))
        else:
            owner.register_buffer(leaf, t, persistent=flag)
    m.train(rec["training"])
    return m


def _rebuild(rec):
    g = Graph(rec["name"])
    vals = []
    for k, i in enumerate(rec["inputs"]):
        vals.append(g.add_input(f"in{k}", tuple(i["shape"]), i["dtype"]))
    for n in rec["nodes"]:
        if n["op"] not in REGISTRY:
            raise ValueError(f"unknown primitive {n['op']!r}")
        args = [_dec(a, vals) for a in n["inputs"]]
        attrs = {k: _dec(v, vals) for k, v in n["attrs"].items()}
        out = g.call(n["op"], *args, **attrs)
        outs = out if type(out) is tuple else (out,)
        for o, (shape, dtype) in zip(outs, n["outputs"]):
            if tuple(o.shape) != tuple(shape) or o.dtype is not dtype:
                raise ValueError(f"{n['op']}: recorded output {dtype}{shape} but the meta rule "
                                 f"gives {o.dtype}{list(o.shape)}")
            vals.append(o)
    g.set_outputs([_dec(v, vals) for v in rec["outputs"]])
    srcs = [tuple(s) for s in rec["srcs"]]
    writes = [(i, _dec(v, vals)) for i, v in rec["writes"]]
    spec = _Spec(g, srcs, list(rec["consts"]), writes, _tpl_dec(rec["template"]), rec["n_out"])
    return spec, {k: tuple(v) for k, v in rec["state"].items()}


def save(m, f, _extra_files=None):
    """torch.jit.save: m.save(f) of a traced module or function."""
    if not hasattr(m, "save"):
        raise AttributeError(f"jit.save: expected a traced module or function, got "
                           f"{type(m).__name__}; use torch.jit.trace first")
    m.save(f)
