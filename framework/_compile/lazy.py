"""Tracing as a mode of dispatch: while a Tracer is active, `apply` records each primitive into
the tracer's Graph and returns symbolic tensors whose `_data` is a SymArray (shape and dtype
only). Nothing runs until a value is needed:

  * the traced function returns            -> the region is compiled and run once
  * Python asks for a value (bool(t), .item(), .tolist(), .numpy(), printing, data-dependent
    shapes such as nonzero / boolean masks)  -> graph break: the region so far is compiled and
    run, values become concrete, tracing continues in a new region

So a function with `while x.abs().sum() > 1: x /= 2` runs as compiled regions with eager
Python in between, and gives the eager result. Concrete tensors used by the trace (parameters,
buffers, optimizer state) become graph inputs; in-place writes to them are captured
functionally and written back into their memory when the region runs.
"""
import os
import sys
import weakref

import numpy as np

from compiler.ir.graph import Graph, Value
from runtime import dtypes as dt
from .. import _dispatch
from .._dispatch import STATE, wrap
from ..tensor import Tensor
from . import log

_C32 = dt.complex32


class _Watched(float):
    """A float that notes being used (arithmetic, comparison, conversion, formatting)."""
    __slots__ = ("read",)
    active = True

    def __new__(cls, v):
        self = float.__new__(cls, v)
        self.read = False
        return self


def _noting(name):
    f = getattr(float, name)

    def method(self, *args):
        if _Watched.active:
            self.read = True
        return f(self, *args)
    method.__name__ = name
    return method


for _n in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
           "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__divmod__",
           "__rdivmod__", "__pow__", "__rpow__", "__neg__", "__pos__", "__abs__", "__eq__",
           "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__float__", "__int__", "__bool__",
           "__round__", "__trunc__", "__floor__", "__ceil__", "__hash__", "__repr__", "__str__",
           "__format__", "as_integer_ratio", "is_integer", "hex", "conjugate"):
    setattr(_Watched, _n, _noting(_n))


class GraphBreakError(RuntimeError):
    """Raised instead of a graph break under fullgraph=True."""


class SymArray:
    """Stands in for a NumPy array while tracing. Metadata reads are free; anything that needs
    the values (NumPy conversion, methods) materialises the tracer's region first."""
    __slots__ = ("value", "tracer", "real", "orig", "stale", "__weakref__")

    def __init__(self, value, tracer, orig=None):
        self.value = value
        self.tracer = tracer
        self.real = None
        self.orig = orig        # the concrete array this tensor had before an in-place write
        self.stale = None       # (view ref, base, prim, attrs): base was written after this view

    # metadata ---------------------------------------------------------------------------
    @property
    def shape(self):
        return self.value.shape

    @property
    def ndim(self):
        return len(self.value.shape)

    @property
    def size(self):
        n = 1
        for s in self.value.shape:
            n *= s
        return n

    @property
    def dtype(self):
        return self.value.dtype.np

    @property
    def itemsize(self):
        return self.value.dtype.itemsize

    @property
    def strides(self):
        st, acc = [], self.value.dtype.itemsize
        for s in reversed(self.value.shape):
            st.append(acc)
            acc *= max(s, 1)
        return tuple(reversed(st))

    @property
    def base(self):
        return None

    @property
    def flags(self):
        return self._materialize("flags").flags

    def __len__(self):
        return self.value.shape[0]

    # values -------------------------------------------------------------------------------
    def _materialize(self, what):
        if self.real is None:
            self.tracer.graph_break(what, self)
        if self.real is None:
            raise RuntimeError(f"compile: value of a traced tensor was requested ({what}) after its "
                               "region ended without computing it")
        return self.real

    def __array__(self, dtype=None, copy=None):
        a = self._materialize("conversion to NumPy")
        return a if dtype is None else a.astype(dtype)

    def __getattr__(self, name):
        return getattr(self._materialize(f"array.{name}"), name)

    def __getitem__(self, k):
        return self._materialize("indexing by value")[k]

    def __setitem__(self, k, v):
        self._materialize("in-place write")[k] = v

    def __repr__(self):
        return f"SymArray({self.value.name}: {self.value.dtype.name}{list(self.value.shape)})"


def is_sym(t):
    return type(t._data) is SymArray


class _IdMap:
    """A map keyed by object identity that never confuses a dead key with a new object of the
    same id (NumPy arrays are unhashable, and ids are reused after an object dies)."""
    __slots__ = ("d",)

    def __init__(self):
        self.d = {}

    def get(self, obj, default=None):
        e = self.d.get(id(obj))
        return e[1] if e is not None and e[0]() is obj else default

    def setdefault(self, obj, default):
        e = self.d.get(id(obj))
        if e is None or e[0]() is not obj:
            e = (weakref.ref(obj), default)
            self.d[id(obj)] = e
        return e[1]

    def __setitem__(self, obj, value):
        self.d[id(obj)] = (weakref.ref(obj), value)

    def pop(self, obj, default=None):
        e = self.d.pop(id(obj), None)
        return e[1] if e is not None and e[0]() is obj else default


class Tracer:
    concrete_reads = 0                  # values of concrete tensors Python read while tracing
    last_run = None                     # what region.run_region ran last (for replays)
    last_res = None                     # and what its program returned

    def __init__(self, owner, fullgraph=False):
        self.owner = owner              # the CompiledFunction (introspection, cache, logs)
        self.fullgraph = fullgraph
        self.regions_run = 0
        self.draws = []                 # [(array, dtype, recipe)]: draws a replay repeats
        self.made = set()               # ids of the arrays factories made while tracing
        self.pristine = {}              # id -> copy of such an array before its in-place write
        self.hypers = []                # [(container, key, index, tensor)]: see hyper()
        self.guards = []                # [(predicate, value)]: see guard()
        self.watched = []               # [(container, key, original value)]: see _watch()
        self.hyper_read = False         # Python read a watched hyperparameter directly
        self._new_region()

    def hyper(self, container, key):
        """container[key] -- an optimizer hyperparameter such as group['lr'] or
        group['betas'] -- as a float64 0-d tensor input (a tuple of them for a tuple of
        floats), so the traced update reads it at run time: a replay takes the current value,
        and a learning-rate schedule does not force a new trace per step. Float64 tensor
        arithmetic on it equals the eager Python-float arithmetic bit for bit. Anything else
        (an int, a tensor) comes back as it is."""
        v = next((o for c, k, o in self.watched if c is container and k == key), None)
        if v is None:
            v = container[key]
        if type(v) is float:
            return self._hyper(container, key, None, v)
        if type(v) is tuple and v and all(type(x) is float for x in v):
            return tuple(self._hyper(container, key, i, x) for i, x in enumerate(v))
        return v

    def _hyper(self, container, key, i, v):
        for c, k, j, t in self.hypers:
            if c is container and k == key and j == i:
                return t
        t = wrap(np.array(v, np.float64), dt.float64)
        self.hypers.append((container, key, i, t))
        self._watch(container, key)
        return t

    def _watch(self, container, key):
        """Until the trace ends, container[key] holds _Watched floats, so Python that reads the
        value directly (and bakes it into the graph) is noticed: such a trace is not replayed."""
        if any(c is container and k == key for c, k, _ in self.watched):
            return
        v = container[key]
        w = _Watched(v) if type(v) is float else tuple(_Watched(x) for x in v)
        self.watched.append((container, key, v))
        container[key] = w

    def unwatch(self):
        """Put the watched hyperparameters back (the trace ended); note direct reads."""
        while self.watched:
            c, k, v = self.watched.pop()
            w = c[k]
            ws = w if type(w) is tuple else (w,)
            if any(type(x) is _Watched and x.read for x in ws):
                self.hyper_read = True
            if w is not v and all(type(x) is _Watched for x in ws):
                c[k] = v

    def guard(self, fn):
        """fn() (a Python predicate over hyperparameters, e.g. which lerp formula applies),
        recorded so that a replay first checks it still gives the same answer."""
        _Watched.active = False
        try:
            v = fn()
        finally:
            _Watched.active = True
        self.guards.append((fn, v))
        return v

    def draw_device(self, dev):
        """The device a random draw for a tensor on `dev` belongs to: symbolic tensors say
        cpu, so a draw for one goes to the device the compiled program runs on (its masks
        then come from that device's generator, as eagerly)."""
        d = self.owner.trace_device
        return d if d is not None and dev.type == "cpu" else dev

    def note_draw(self, arr, dtype, recipe):
        """A random array drawn while tracing (a dropout mask) and how to draw it again: a
        replay calls recipe() in trace order, so the generator advances as in eager."""
        self.draws.append((arr, dtype, recipe))

    def read_value(self, t):
        """Tensor.item()/bool()/tolist()/numpy()/__array__/__index__ while tracing. A symbolic
        tensor's read is a graph break (SymArray does it); a concrete tensor's value (a buffer,
        an argument) may steer Python control flow that no guard sees: such a trace is never
        replayed (CompiledFunction._note_trace)."""
        if type(t._data) is not SymArray:
            self.concrete_reads += 1

    def _new_region(self):
        self.graph = Graph(f"{self.owner.name}_{self.regions_run}")
        self.inputs = {}                # id(array) -> (tensor, Value, array): concrete inputs
        self.overrides = {}             # id(array) -> (array, Value): in-place writes to them
        self.leaf_alias = {}            # id(array) -> leaf tensor that requires grad over it
        self.tracked = []               # weakrefs of symbolic tensors made in this region
        self.traced_nodes = []          # autograd nodes recorded while tracing this region
        # base storage (array or SymArray) -> [(view ref, chain of (prim, attrs))]: how to
        # recompute each live view when its base is written in place (see _refresh_views)
        self.views = _IdMap()
        self.view_root = _IdMap()       # view SymArray -> (root storage, chain, root tensor ref)
        self.seq0 = next(_dispatch._seq)   # autograd nodes newer than this are traced ones
        if not self.regions_run:
            self.seq_start = self.seq0     # (the first region's)

    # recording ------------------------------------------------------------------------------
    def value_of(self, a):
        if isinstance(a, Tensor):
            d = a._data
            if type(d) is SymArray:
                if d.tracer is self and d.real is None:
                    if d.stale is not None:
                        self._freshen(d)
                    return d.value
                d = d._materialize("a tensor from an earlier region")
                a._data = d
            o = self.overrides.get(id(d))
            e = self.inputs.get(id(d))
            if a._rg and a._node is None and (o is not None or (e is not None and e[0] is not a)):
                # a leaf reached through memory an alias (`.data`) registered or overwrote:
                # gradients must go to this leaf, not to the alias
                self.leaf_alias[id(d)] = a
            if o is not None:
                return o[1]
            if e is None:
                v = self.graph.add_input(f"in{len(self.inputs)}", d.shape, a._dtype)
                self.inputs[id(d)] = (a, v, d)
                return v
            return e[1]
        if isinstance(a, np.generic):
            return a.item()
        return a

    def record(self, p, args, attrs, meta):
        metas = meta if isinstance(meta, tuple) else (meta,)
        for m in metas:
            if -1 in m.shape:                                # data-dependent output shape
                return self.eager_break(p, args, attrs,
                                        f"{p.name}: output shape depends on the input's values")
            if m.dtype.round is not None or any(getattr(getattr(a, "_dtype", None), "round",
                                                            None) is not None for a in args):
                # eager rounds each complex32 / float8 result (runtime.dtypes); generated code
                # would not
                d = m.dtype if m.dtype.round is not None else next(
                    a._dtype for a in args if getattr(getattr(a, "_dtype", None), "round", None))
                return self.eager_break(p, args, attrs, f"{p.name}: complex32 (ComplexHalf) "
                                        "ops run eagerly" if d is _C32 else
                                        f"{p.name}: {d.name} ops run eagerly")
        if STATE.saved_hooks is not None and STATE.grad_enabled and p.differentiable and \
                _dispatch._needs_grad(args):
            # entered inside the compiled function: the pack hook must see real tensors, and
            # each op it packs for (only eager knows which tensors those are)
            return self.eager_break(p, args, attrs, "saved_tensors_hooks are active (the op "
                                    "runs eagerly so its saved tensors go through the hooks)")
        if p.name in _CHECKED_AT_TRACE and isinstance(getattr(args[0], "_data", None),
                                                      np.ndarray):
            # a concrete host input: its values are checked now, so a bad target raises
            # where eager raises, before a training step's backward and optimizer update
            # are traced (a failed region would leave their .grad/state symbolic)
            p.numpy(meta, args[0]._data, **attrs)
        vals = []
        for a in args:
            d = getattr(a, "_data", None) if type(a) is not float else None
            # fast path: a symbolic tensor of this region (what most arguments are)
            if type(d) is SymArray and d.tracer is self and d.real is None and \
                    isinstance(a, Tensor):
                if d.stale is not None:
                    self._freshen(d)
                vals.append(d.value)
            else:
                vals.append(self.value_of(a))
        out = self.graph.call(p.name, *vals, _meta=meta, **attrs)
        outv = out if isinstance(out, tuple) else (out,)
        tensors = []
        track = self.tracked.append
        dev = self.owner.trace_device
        for v in outv:
            # wrap(SymArray(...)) without wrap's device lookup: a symbolic tensor reports the
            # device the program runs on, so user code (x.device, is_cuda, new tensors made
            # on x.device) sees what eager would
            t = Tensor.__new__(Tensor)
            t._data = SymArray(v, self)
            t._dtype = v.dtype
            if dev is not None and dev.type != "cpu":
                t._device = dev
            track(weakref.ref(t))
            tensors.append(t)
        if p.kind == "view" and len(tensors) == 1 and isinstance(args[0], Tensor):
            self._note_view(args[0], tensors[0], p, attrs)
        if STATE.grad_enabled and p.differentiable and _dispatch._needs_grad(args):
            n = _dispatch.record(p, args, attrs, tuple(tensors))
            if n is not None:
                self.traced_nodes.append(n)
        return tuple(tensors) if isinstance(out, tuple) else tensors[0]

    def eager_break(self, p, args, attrs, reason):
        """Run one op eagerly between regions (its output shape depends on data)."""
        self.make_concrete(args, reason)
        prev, STATE.tracer = STATE.tracer, None
        try:
            return _dispatch.apply(p, *args, **attrs)
        finally:
            STATE.tracer = prev

    def make_concrete(self, tensors, reason):
        """Graph break, then the tensors among `tensors` hold real arrays (eager code needs
        their values: an op run eagerly, a pack hook); no replays of this trace."""
        self.graph_break(reason, None)
        self.concrete_reads += 1        # Python sees values (the output's shape): no replays
        for a in tensors:
            if isinstance(a, Tensor) and type(a._data) is SymArray:
                a._data = a._data._materialize(reason)

    def assign(self, target, r):
        """In-place write `target <- r` (r symbolic or concrete), captured functionally; aliases
        of target (.data, p.grad) see the new value; target takes r's autograd history."""
        if r._dtype is not target._dtype:
            r = _dispatch.apply(_dispatch.REGISTRY["cast"], r, dtype=target._dtype)
        if tuple(r._data.shape) != tuple(target._data.shape):
            r = _dispatch.apply(_dispatch.REGISTRY["expand"], r, shape=tuple(target._data.shape))
        v = self.value_of(r)
        if not isinstance(v, Value):
            v = self.graph.call("full", shape=tuple(target._data.shape), value=v,
                                dtype=target._dtype)
        d = target._data
        up = self.view_root.get(d)      # a view: the write reaches its root (shared memory)
        if type(d) is SymArray and d.stale is not None and d.tracer is self:
            d.stale = None          # overwritten whole: the base's new value no longer matters
        storage = d
        if type(d) is SymArray and d.tracer is self and d.real is None:
            d.value = v
            if d.orig is not None:
                self.overrides[id(d.orig)] = (d.orig, v)
        else:
            if type(d) is SymArray:
                d = d._materialize("in-place write to an earlier region's tensor")
            if id(d) in self.made and id(d) not in self.pristine:
                self.pristine[id(d)] = d.copy()     # (what a replay starts from)
            # the tensor turns symbolic (reads see the new value); its memory gets the result
            # when the region runs, and aliases of that memory read the new value meanwhile
            self.overrides[id(d)] = (d, v)
            target._data = SymArray(v, self, orig=d)
            self.tracked.append(weakref.ref(target))
        target._node, target._oi = r._node, r._oi
        target._bump()
        self._refresh_views(storage, target)
        root_t = up[2]() if up is not None else None
        if root_t is not None and root_t is not target:   # (a dead root: nothing reads it)
            self.assign(root_t, self._write_through(root_t, up[1], target))
        return target

    def _note_view(self, parent_t, view, p, attrs):
        """Eager views share memory: remember how to recompute `view` from the storage it
        views, directly and from the root of a view chain (x[0][1:] is slice -> reshape ->
        slice of x, whose intermediates die at once), should that storage be written later in
        the region; and the root tensor, which an in-place write through the view changes
        (assign). Only weak references: a view or root nobody holds is not kept alive."""
        parent = parent_t._data
        step = ((p, attrs),)
        vref = weakref.ref(view)
        self.views.setdefault(parent, []).append((vref, step))
        up = self.view_root.get(parent) if type(parent) is SymArray else None
        if up is not None:
            root, chain, root_t = up
            self.views.setdefault(root, []).append((vref, chain + step))
            self.view_root[view._data] = (root, chain + step, root_t)
        else:
            self.view_root[view._data] = (parent, step, weakref.ref(parent_t))

    def _write_through(self, root_t, chain, view_t):
        """The root's new value after an in-place write gave the view (root_t viewed through
        `chain`) the value of view_t: an index_put of view_t's elements at the positions the
        view covers, found by viewing an arange over the root the same way (in the graph, so
        a replay needs no constant index tensor)."""
        apply, P = _dispatch.apply, _dispatch.REGISTRY
        n = 1
        for e in root_t._data.shape:
            n *= e
        pos = apply(P["reshape"], apply(P["arange"], start=0, end=n, step=1, dtype=dt.int64),
                    shape=tuple(root_t._data.shape))
        for p, attrs in chain:
            pos = apply(p, pos, **attrs)
        m = 1
        for e in view_t._data.shape:
            m *= e
        flat = apply(P["reshape"], self.snapshot(root_t), shape=(n,))
        new = apply(P["index_put"], flat, apply(P["reshape"], view_t, shape=(m,)),
                    apply(P["reshape"], pos, shape=(m,)), pos=(0,), accumulate=False)
        return apply(P["reshape"], new, shape=tuple(root_t._data.shape))

    def _refresh_views(self, storage, base):
        """After an in-place write to `base` (whose storage was `storage`), mark the views of
        that storage stale; each is recomputed from the written base when next used
        (_freshen), so views nobody reads again cost nothing."""
        entries = self.views.pop(storage, None) if storage is not None else None
        if not entries:
            return
        src = (base._data, base._dtype, base._node, base._oi)
        for vref, chain in entries:
            view = vref()
            if view is None:
                continue
            d = view._data
            if type(d) is not SymArray or d.tracer is not self or d.real is not None:
                continue
            d.stale = (vref, src, chain)
            self.views.setdefault(base._data, []).append((vref, chain))
            self._refresh_views(d, view)

    def _freshen(self, d):
        vref, (data, dtype, node, oi), chain = d.stale
        d.stale = None
        t = wrap(data, dtype)
        t._node, t._oi = node, oi
        for p, attrs in chain:
            t = _dispatch.apply(p, t, **attrs)
        d.value = t._data.value
        view = vref()
        if view is not None:
            view._node, view._oi = t._node, t._oi

    def snapshot(self, t):
        """The value t holds now, as a separate tensor (for autograd before an in-place write)."""
        d = t._data
        if type(d) is SymArray and d.stale is not None and d.tracer is self:
            self._freshen(d)
        if type(d) is SymArray and d.tracer is self and d.real is None:
            # tracked like t (same orig): a graph break between the snapshot and its use (an
            # op that checks index values, index_add_ with a traced index) must make it
            # concrete too, or the next region would read a value of the finished graph
            s = wrap(SymArray(d.value, self, orig=d.orig), t._dtype)
            self.tracked.append(weakref.ref(s))
        else:
            s = wrap(d if type(d) is not SymArray else d._materialize("snapshot"), t._dtype)
            o = self.overrides.get(id(s._data))
            if o is not None:
                s = wrap(SymArray(o[1], self), t._dtype)
            elif t._rg and t._node is None:
                # s may be the first to read the leaf's memory (an in-place write under
                # no_grad): the region input stands for the leaf, whose gradient it gets
                self.leaf_alias[id(s._data)] = t
        s._node, s._oi, s._rg = t._node, t._oi, t._rg and t._node is None
        return s

    # running regions ------------------------------------------------------------------------
    def graph_break(self, what, sym):
        reason, where = (what, _where(what)[1].split(" (via")[0]) if sym is None else \
            _where(what)
        if self.fullgraph:
            raise GraphBreakError(f"compile(fullgraph=True): graph break in {self.owner.name}: "
                                  f"{reason} at {where}")
        if not self.graph.nodes and not self.overrides:
            return
        self.owner.stats["graph_breaks"].append((reason, where))
        log.emit("graph_breaks", f"[{self.owner.name}] graph break: {reason} at {where}")
        self.flush()

    def _release_saved(self):
        """Traced autograd nodes keep their saved tensors alive; swap those for fresh aliases so
        a tensor counts as live only when the user's code still holds it (else every saved
        intermediate would become a region output with a gradient input of its own)."""
        for n in self.traced_nodes:
            saved = n.saved
            if not saved:
                continue
            for i, s in enumerate(saved):
                if isinstance(s, Tensor) and type(s._data) is SymArray:
                    a = wrap(s._data, s._dtype)
                    a._node, a._oi, a._rg = s._node, s._oi, s._rg
                    saved[i] = a

    def _saved_by_nodes(self, seen):
        """At a graph break: what the traced autograd nodes saved (tensors no tracked tensor
        covers, such as in-place snapshots, and outputs held as bare SymArrays whose tensor the
        user dropped). A backward that goes on after the break reads them, so the region
        computes them too. `seen`: ids of the SymArrays already made concrete."""
        out = []
        for n in self.traced_nodes:
            if n.freed:
                continue
            ctx = n.ctx._saved if n.fn is not None else ()     # (a custom Function's)
            for s in list(n.saved or ()) + list(n.out or ()) + list(ctx or ()):
                d = s._data if isinstance(s, Tensor) else s
                if type(d) is SymArray and d.tracer is self and d.real is None and \
                        id(d) not in seen:
                    seen.add(id(d))
                    out.append(s if isinstance(s, Tensor) else wrap(d, d.value.dtype))
        return out

    def flush(self, final=False):
        """Compile (cached) and run the region traced so far; make its live tensors concrete.
        At a graph break the traced autograd nodes may still run eagerly afterwards (a
        backward() later in the function), so what they saved stays live; at the end of the
        function only the region backward reads them, through graph values."""
        from .region import run_region
        if self.graph.nodes or self.overrides:
            # a custom autograd.Function's node keeps backward eager through the traced nodes
            # (region._backward_graph), so what they saved must be computed, as at a break
            if final and any(n.fn is not None for n in self.traced_nodes):
                final = False
            if final:
                self._release_saved()
            alive = []
            for r in self.tracked:
                t = r()
                if t is not None and type(t._data) is SymArray and t._data.stale is not None \
                        and t._data.tracer is self:
                    self._freshen(t._data)
                if t is not None and type(t._data) is SymArray and t._data.tracer is self \
                        and t._data.real is None:
                    alive.append(t)
            if not final:
                alive += self._saved_by_nodes({id(t._data) for t in alive})
            run_region(self, alive)
            self.regions_run += 1
        self._new_region()


_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ROOT = os.path.dirname(_PKG)
_OURS = (_PKG, os.path.join(_ROOT, "compiler"), os.path.join(_ROOT, "runtime"))
_HERE = os.path.dirname(os.path.abspath(__file__))

# value-checking prims (their lowering raises on bad values and copies): run at trace time
# on concrete host inputs
_CHECKED_AT_TRACE = frozenset(("class_index",))

# the framework entry point a graph break happened in -> what the user's code asked for
_WHY = {
    "__bool__": "bool(tensor): Tensor.__bool__ needs a value",
    "item": "Tensor.item() needs a value",
    "tolist": "Tensor.tolist() needs values",
    "numpy": "Tensor.numpy() needs values",
    "__array__": "NumPy conversion (np.asarray(tensor)) needs values",
    "__int__": "int(tensor) needs a value",
    "__float__": "float(tensor) needs a value",
    "__index__": "using a tensor as a Python index needs its value",
    "__complex__": "complex(tensor) needs a value",
    "__format__": "formatting a tensor needs its value",
    "__repr__": "printing a tensor needs its values",
    "__str__": "printing a tensor needs its values",
    "getitem": "indexing with a tensor (boolean mask or indices) needs its values",
    "setitem": "assignment through a tensor index (boolean mask or indices) needs its values",
    "fill_": "fill_(tensor) needs the fill value",
    # (one_hot with num_classes >= 1 reads no value)
    "one_hot": "one_hot(num_classes=-1): output shape depends on the input's values",
}


def _where(what):
    """(reason, 'file:line') for a graph break requested by `what` (the SymArray access): the
    reason names the Tensor method the user's code called (outermost Kiln frame that _WHY
    knows), the location is the innermost frame outside Kiln's packages."""
    from ..overrides import WRAPPER_CODE
    f = sys._getframe(2)
    kiln = []                           # Kiln frames outside _compile, innermost first
    user = None
    while f is not None:
        fn = os.path.abspath(f.f_code.co_filename)
        if not fn.startswith(_OURS):
            user = f
            break
        if not fn.startswith(_HERE) and f.f_code is not WRAPPER_CODE:   # (not dispatch wrappers)
            kiln.append(f)
        f = f.f_back
    loc = f"{user.f_code.co_filename}:{user.f_lineno}" if user is not None else "?"
    for k in range(len(kiln) - 1, -1, -1):
        why = _WHY.get(kiln[k].f_code.co_name)
        if why is not None:
            if k + 1 < len(kiln):       # called from inside Kiln (an optimizer, a layer): say where,
                # naming the nearest public function (not a private helper it called)
                c = next((f for f in kiln[k + 1:] if not f.f_code.co_name.startswith("_")),
                         kiln[k + 1])
                loc += f" (via {os.path.relpath(c.f_code.co_filename, _ROOT)}:{c.f_lineno} " \
                       f"in {c.f_code.co_name})"
            return why, loc
    if kiln:
        c = kiln[0]
        return (f"{c.f_code.co_name} needs a traced tensor's value ({what})",
                loc + f" (via {os.path.relpath(c.f_code.co_filename, _ROOT)}:{c.f_lineno})")
    return f"{what} needs a traced tensor's value", loc
