"""Running one traced region: compile its forward graph (and, when outputs need gradients, its
backward graph, built with the same VJP rules over the traced autograd nodes), run it, make the
live symbolic tensors concrete, write captured in-place updates back, and attach one autograd
node per region so that loss.backward() outside the compiled function runs the compiled
backward graph.
"""
import numpy as np

from compiler.backend import compile_graph
from runtime import backends as _rt_backends, dtypes as dt
from compiler.ir.graph import Graph, GraphEmitter, Value, consts_key
from compiler.ir.registry import AVal, REGISTRY
from .. import _dispatch
from .._dispatch import STATE, wrap, node_class, PackedList
from ..tensor import Tensor
from ..autograd import engine as _engine
from . import log
from .lazy import SymArray

_PLANS = {}

# A list to append ("compiled_backward_start" | "compiled_backward_end", backward graph name)
# to around every region backward program (tests put DDP's event log here too).
EVENT_LOG = None


# ---- gradient-ready callbacks from inside a compiled backward ----------------------------------
class _GradReadyHandle:
    __slots__ = ("fns", "fn")

    def __init__(self, fns, fn):
        self.fns, self.fn = fns, fn

    def remove(self):
        if self.fn in self.fns:
            self.fns.remove(self.fn)


def register_compiled_grad_ready(tensor, fn):
    """Call fn(grad) as soon as a compiled region's backward program has produced `tensor`'s
    gradient, while that program is still running (the engine delivers all of a region's
    gradients together, when its program ends). Only for a leaf whose whole gradient of the
    backward pass comes from that region (see autograd.engine.leaf_grad_is_final) in a plain
    backward(); `grad` is this pass's gradient alone, before it is accumulated into .grad, and
    must not be kept or modified. The leaf's usual hooks and post-accumulate-grad hooks still
    run afterwards. Kept on the tensor itself (no reference from elsewhere keeps it alive);
    returns a handle with remove(). DDP uses it to launch bucket all-reduces during a compiled
    backward."""
    if not isinstance(tensor, Tensor):
        raise TypeError("register_compiled_grad_ready: expected a Tensor")
    fns = tensor.__dict__.get("_compiled_grad_ready")
    if fns is None:
        fns = tensor.__dict__["_compiled_grad_ready"] = []
    fns.append(fn)
    return _GradReadyHandle(fns, fn)


def _grad_ready_callbacks(node, plan):
    """{backward output k: (fns, dtype)} for the region inputs with gradient-ready callbacks
    whose gradient from this node is final (None when there are none)."""
    if STATE.tracer is not None:          # a backward traced by compile(): values are symbolic
        return None
    found = None
    for k, e in enumerate(node.edges):
        if e is None or e[0] is not None:
            continue
        leaf = e[1]
        fns = leaf.__dict__.get("_compiled_grad_ready")
        if fns and _engine.leaf_grad_is_final(leaf):
            if found is None:
                found = {}
            found[k] = (list(fns), leaf._dtype)
    return found


class Plan:
    """What a region compiles to, cached by the forward graph's key and the grad pattern."""

    def __init__(self, fwd, n_out, bwd, saved_idx, grad_inputs, fwd_graph, bwd_graph):
        self.fwd_graph = fwd_graph      # the traced graphs (before passes), for introspection
        self.bwd_graph = bwd_graph
        self.fwd = fwd                  # Program: outputs = live values + overrides + saved
        self.n_out = n_out              # how many of fwd's outputs are live values/overrides
        self.bwd = bwd                  # Program or None: inputs = saved + output cotangents
        self.saved_idx = saved_idx      # fwd output indices the backward reads
        self.grad_inputs = grad_inputs  # region input indices the backward returns grads for


def run_region(tracer, alive):
    owner = tracer.owner
    g = tracer.graph
    la = tracer.leaf_alias
    in_tensors = [t if not la else la.get(id(a), t) for t, _, a in tracer.inputs.values()]
    in_values = [v for _, v, _ in tracer.inputs.values()]
    in_arrays = [a for _, _, a in tracer.inputs.values()]
    # live values, deduplicated (aliases share a value). A tensor written in place keeps its
    # own buffer (the override below fills it), so it needs no live output of its own unless
    # it carries traced autograd history (a region backward reads its output slot).
    seq0 = tracer.seq0
    out_vals, index = [], {}
    for t in alive:
        sym = t._data
        v = sym.value
        if id(v) not in index:
            if not isinstance(v, Value) or v.graph is not g:
                continue
            if sym.orig is not None:
                n = t._node
                if n is None or n.seq <= seq0 or n.freed:
                    continue
            index[id(v)] = len(out_vals)
            out_vals.append(v)
    ov = list(tracer.overrides.values())
    n_live = len(index)
    donate = _donations(tracer, ov, index, n_live) if owner.backend == "numpy" else ()
    for arr, v in ov:
        out_vals.append(v)
    # which live outputs carry traced autograd history (need a region backward)
    grad_outs, seen = [], set()
    for t in alive:
        n = t._node
        v = t._data.value
        if n is not None and n.seq > tracer.seq0 and not n.freed and id(v) in index \
                and (id(n), t._oi) not in seen:
            seen.add((id(n), t._oi))
            grad_outs.append(t)
    g.set_outputs(list(out_vals))
    key = (owner.backend, _graph_key(g),
           tuple(bool(t.requires_grad) for t in in_tensors),
           tuple(index[id(t._data.value)] for t in grad_outs),
           # a region with a backward bakes the forward's float constants into it (by bit
           # pattern: a nan constant, nll_loss's empty-batch result, equals itself there)
           consts_key(g.float_consts()) if grad_outs else (),
           donate, getattr(owner, "mode", None) == "reduce-overhead",
           _rt_backends.matmul_allow_tf32)     # (generated float32 matmuls depend on it)
    plan = _PLANS.get(key)
    fresh = plan is None
    bwd_consts = None
    if fresh and grad_outs:
        # other float values (a scale read by .item()): the backward built from this trace may
        # have the same structure; then both programs serve it, with its backward constants
        base = _PLANS.get(key[:4] + ((),) + key[5:])
        if base is not None and base.bwd is not None:
            bwd_consts = _same_backward(tracer, g, grad_outs, in_tensors, base)
            if bwd_consts is not None:
                plan, fresh = base, False
    if fresh:
        plan = _build_plan(tracer, g, in_tensors, in_values, out_vals, n_live, grad_outs, index,
                           donate)
        _PLANS[key] = plan
        if grad_outs:
            _PLANS.setdefault(key[:4] + ((),) + key[5:], plan)
    owner.note_region(plan, fresh, g)
    consts = g.float_consts()
    res = run_plan(plan, in_arrays, consts, [arr for arr, _ in ov])
    # live tensors become concrete
    for t in alive:
        sym = t._data
        if sym.orig is not None:                 # written in place: keep its own buffer
            sym.real = t._data = sym.orig
            continue
        k = index.get(id(sym.value))
        if k is None:
            continue
        arr = sym.real = t._data = res[k]
        if type(arr) is not np.ndarray:          # a device buffer (Triton backend on a GPU)
            from .._device_ops import array_device
            t._device = array_device(arr)
    # one autograd node for the region's outputs that need gradients
    node = None
    if plan.bwd is not None and grad_outs:
        node = region_node(plan, res, in_tensors,
                           [AVal(t._data.shape, t._dtype) for t in grad_outs], bwd_consts)
        slot = {(id(t._node), t._oi): k for k, t in enumerate(grad_outs)}
        for t in alive:      # aliases of a grad output share its new history
            k = slot.get((id(t._node), t._oi))
            if k is not None:
                t._node, t._oi = node, k
    # what a compiled module's replay (CompiledFunction._replay) needs to run this plan again
    tracer.last_run = (plan, consts, in_tensors, in_arrays, index, ov, grad_outs, node)
    tracer.last_res = res


def run_plan(plan, in_arrays, consts, ov_arrays):
    """Run a plan's forward program on the region's input arrays; write the captured in-place
    updates (overrides, fwd outputs n_out...) back into `ov_arrays`. Returns every output."""
    n = plan.n_out
    if ov_arrays and getattr(plan.fwd, "supports_alias", False):
        # in-place updates of region inputs: the program may write those inputs directly
        pos = {id(a): p for p, a in enumerate(in_arrays)}
        alias = {n + j: pos[id(a)] for j, a in enumerate(ov_arrays)
                 if a is not None and id(a) in pos}
        res = plan.fwd.run(in_arrays, consts, alias=alias)
    else:
        res = plan.fwd.run(in_arrays, consts)
    for arr, r in zip(ov_arrays, res[n:n + len(ov_arrays)]):
        if arr is not None and r is not arr:     # (a donated input was written by the program)
            _write_back(arr, r)                  # in-place writes land in the original memory
    return res


def _write_back(arr, r):
    """np.copyto(arr, r) across memories: a device result into host memory (a CPU tensor
    updated by a GPU program) or a host result into device memory."""
    da, dr = type(arr) is not np.ndarray, type(r) is not np.ndarray
    if da == dr or not (hasattr(arr, "__cuda_array_interface__") or
                        hasattr(r, "__cuda_array_interface__")):
        np.copyto(arr, r, casting="unsafe")
        return
    from runtime import cuda
    if dr:                                       # device -> host
        np.copyto(arr, cuda.to_host(r), casting="unsafe")
    else:                                        # host -> device
        arr[...] = cuda.from_host(np.asarray(r, dtype=arr.dtype))


def region_node(plan, res, in_tensors, outs_meta, bwd_consts=None):
    """The autograd node (CompiledFunctionBackward) of one region run: its backward runs the
    plan's backward program on the saved forward outputs (with bwd_consts, this run's float
    constants, or the plan's); edges lead to the region inputs."""
    saved = [res[i] for i in plan.saved_idx]
    edges = []
    for i in plan.grad_inputs:
        t = in_tensors[i]
        if t._node is not None:
            edges.append((t._node, t._oi))
        elif t._rg:
            edges.append((None, t))
        else:
            edges.append(None)
    cls = node_class("CompiledFunctionBackward")
    node = cls(_RegionPrim, {}, [], [], edges, outs_meta, "CompiledFunctionBackward")
    node.fn = _RegionFn
    node.ctx = _RegionCtx(plan, saved, [t._dtype for t in in_tensors])
    node.ctx.bwd_consts = plan.bwd_consts if bwd_consts is None else bwd_consts
    return node


_FLOAT = object()          # a float constant: abstracted (a run-time parameter of the program)
_SIMPLE = (str, int, bool, type(None))


def _hkey(v):
    """A hashable stand-in for an attribute or a non-float constant that two values share only
    when Graph.key() would spell them the same (types are kept: 1, 1.0 and True differ)."""
    t = type(v)
    if t in _SIMPLE:
        return (t, v)
    if t is tuple and all(type(x) is int for x in v):
        return v
    if isinstance(v, dt.DType):
        return v
    return (t, repr(v))


def _graph_key(g):
    """The plan cache's key for a traced graph: what Graph.key() says (ops, attributes,
    wiring, input and output types, float constants abstracted to their position), built from
    tuples instead of text, since every call of a compiled function computes it."""
    ids = {}
    for k, v in enumerate(g.inputs):
        ids[id(v)] = -1 - k
    parts = [tuple((v.shape, v.dtype) for v in g.inputs)]
    app = parts.append
    for j, n in enumerate(g.nodes):
        args = []
        for a in n.inputs:
            if type(a) is Value:
                args.append(ids[id(a)])
            elif type(a) is float:
                args.append(_FLOAT)
            else:
                args.append(_hkey(a))
        outs = n.outputs
        if len(outs) == 1:
            o = outs[0]
            ids[id(o)] = j
            ot = (o.shape, o.dtype)
        else:
            ot = []
            for k, o in enumerate(outs):
                ids[id(o)] = (j, k)
                ot.append((o.shape, o.dtype))
            ot = tuple(ot)
        at = n.attrs
        app((n.op, tuple(args), tuple((k, _hkey(x)) for k, x in at.items()) if at else (), ot))
    app(tuple(ids.get(id(o), ('?', o.name)) if type(o) is Value else _hkey(o)
              for o in g.outputs))
    return tuple(parts)


class _RegionPrimT:
    name = "compiled_region"
    kind = "custom"
    nout = 1
    differentiable = True


_RegionPrim = _RegionPrimT()


class _RegionCtx:
    """What a region's autograd node keeps: its plan and the saved forward arrays."""

    def __init__(self, plan, saved, in_dtypes):
        self.plan, self._saved, self.in_dtypes = plan, saved, in_dtypes

    def _free(self):
        self._saved = None


class _RegionFn:
    @staticmethod
    def _backward_from_engine(node, gs):
        ctx = node.ctx
        plan, saved, in_dtypes = ctx.plan, ctx._saved, ctx.in_dtypes
        if saved is None:
            from ..autograd.engine import SECOND_TIME
            raise RuntimeError(SECOND_TIME)
        if STATE.grad_enabled:
            raise RuntimeError("compile: double backward (create_graph=True) through a compiled "
                               "region is not supported; run that part eagerly")
        if STATE.tracer is not None and type(plan.bwd_graph) is Graph:
            return _traced_backward(plan.bwd_graph, ctx.bwd_consts, saved, gs, node, in_dtypes,
                                    plan.grad_inputs)
        cot = []
        for g, m in zip(gs, node.outs):
            cot.append(_zeros_like(saved[0] if saved else None, m) if g is None else g._data)
        ready = _grad_ready_callbacks(node, plan)
        on_output = None
        if ready:
            def on_output(k, r):
                e = ready.get(k)
                if e is not None and r is not None:
                    arr = np.asarray(r) if isinstance(r, (np.generic, int, float)) else r
                    g = wrap(arr, e[1])
                    for fn in e[0]:
                        fn(g)
        ev = EVENT_LOG
        if ev is not None:
            ev.append(("compiled_backward_start", plan.bwd_graph.name))
        res = plan.bwd.run(list(saved) + cot, ctx.bwd_consts, on_output) if on_output \
            else plan.bwd.run(list(saved) + cot, ctx.bwd_consts)
        if ev is not None:
            ev.append(("compiled_backward_end", plan.bwd_graph.name))
        out = []
        for r, i in zip(res, plan.grad_inputs):
            # device buffers (CuPy) stay where they are; NumPy scalars become arrays
            arr = np.asarray(r) if isinstance(r, (np.generic, int, float)) else r
            out.append(None if r is None else wrap(arr, in_dtypes[i]))
        return tuple(out)


def _traced_backward(bg, consts, saved, gs, node, in_dtypes, grad_inputs):
    """A region's backward reached by a backward that compile() traces (a step function whose
    forward broke the graph earlier): its graph's ops are recorded into the running trace, as
    the traced nodes' VJPs are, instead of running its program on symbolic cotangents (a
    graph break)."""
    from .._dispatch import apply
    env = {}
    for v, a in zip(bg.inputs, saved):
        env[id(v)] = wrap(a, v.dtype)
    for v, g, m in zip(bg.inputs[len(saved):], gs, node.outs):
        env[id(v)] = g if g is not None else apply(REGISTRY["full"], shape=tuple(m.shape),
                                                   value=0.0, dtype=m.dtype)
    it = iter(consts)
    for n in bg.nodes:
        args = [env[id(a)] if isinstance(a, Value) else next(it) if type(a) is float else a
                for a in n.inputs]
        r = apply(n.prim, *args, **n.attrs)
        for o, x in zip(n.outputs, r if isinstance(r, tuple) else (r,)):
            env[id(o)] = x
    out = []
    for o, i in zip(bg.outputs, grad_inputs):
        x = env[id(o)] if isinstance(o, Value) else None if o is None else \
            wrap(np.asarray(o, in_dtypes[i].np), in_dtypes[i])
        out.append(x if x is None or x._dtype is in_dtypes[i] else
                   apply(REGISTRY["cast"], x, dtype=in_dtypes[i]))
    return tuple(out)


def _zeros_like(like, meta):
    """A missing cotangent: zeros of meta's shape/dtype where `like` (a saved array) lives."""
    z = np.zeros(meta.shape, meta.dtype.np)
    if like is None or type(like) is np.ndarray:
        return z
    if isinstance(like, np.ndarray):          # host buffer subclass (interpret device)
        return z.view(type(like))
    import cupy                               # a CuPy array: the cuda device
    return cupy.asarray(z)


def _donations(tracer, ov, index, n_live):
    """((output position, input position), ...): overrides whose final value the program may
    write straight into the input array it replaces (no output buffer, no copy afterwards).
    Only an array that no other input of the region can see (no shared base) and that is
    writeable qualifies; the memory planner further requires that nothing reads the input
    after the value's producer and that the value is returned nowhere else (else it falls back
    to an output buffer, and the copy below happens as before)."""
    inputs = tracer.inputs
    pos = None
    out = []
    for j, (arr, v) in enumerate(ov):
        e = inputs.get(id(arr))
        if e is None or not arr.flags.writeable or id(v) in index:
            continue
        if pos is None:
            arrays = [a[2] for a in inputs.values()]
            pos = {id(a): k for k, a in enumerate(arrays)}
        # (memory bounds, not base objects: two arrays over one buffer -- np.frombuffer twice,
        # an mmap -- have different bases)
        if any(a is not arr and np.may_share_memory(a, arr) for a in arrays):
            continue
        out.append((n_live + j, pos[id(arr)]))
    return tuple(out)


def _build_plan(tracer, g, in_tensors, in_values, out_vals, n_live, grad_outs, index,
                donate=()):
    owner = tracer.owner
    bwd, bwd_consts, bg = None, [], None
    saved_idx, grad_inputs = [], []
    fwd_outputs = list(out_vals)
    if grad_outs:
        bg, saved_vals, grad_inputs = _backward_graph(tracer, g, grad_outs, in_tensors)
        if bg is not None:
            # forward also returns every value the backward reads
            pos = {id(v): k for k, v in enumerate(fwd_outputs)}
            for v in saved_vals:
                if id(v) not in pos:
                    pos[id(v)] = len(fwd_outputs)
                    fwd_outputs.append(v)
                saved_idx.append(pos[id(v)])
            bwd = _compile(bg, owner)
            bwd_consts = bg.float_consts()
    g.set_outputs(fwd_outputs)
    fwd = _compile(g, owner, donate)
    plan = Plan(fwd, n_live, bwd, saved_idx, grad_inputs, g, bg)
    plan.bwd_consts = bwd_consts
    if bg is not None:
        plan.bwd_sig = _backward_sig(g, bg, saved_vals, grad_inputs)
    return plan


def _backward_sig(g, bg, saved_vals, grad_inputs):
    """What must match for a backward graph to run as another's program: its structural key
    (float constants abstracted), where in the forward graph each saved value is made, and
    which region inputs it differentiates."""
    loc = {id(v): ("in", k) for k, v in enumerate(g.inputs)}
    for j, n in enumerate(g.nodes):
        for k, o in enumerate(n.outputs):
            loc[id(o)] = (j, k)
    return (_graph_key(bg), tuple(loc.get(id(v)) for v in saved_vals), tuple(grad_inputs))


def _same_backward(tracer, g, grad_outs, in_tensors, base):
    """This trace's backward float constants when its backward graph is base's but for their
    values, else None."""
    bg, saved_vals, grad_inputs = _backward_graph(tracer, g, grad_outs, in_tensors)
    if bg is None or _backward_sig(g, bg, saved_vals, grad_inputs) != base.bwd_sig:
        return None
    return bg.float_consts()


class _Interpreted:
    """backend='eager': the traced graph run op by op through each primitive's NumPy lowering
    (no passes, no code generation), with a Program's interface."""

    def __init__(self, graph):
        self.graph, self.backend, self.runs = graph, "eager", 0
        self.source = str(graph)
        self.partition = None

    def run(self, arrays, consts, on_output=None):
        self.runs += 1
        res = self.graph.run(*arrays, consts=consts)
        if on_output is not None:               # (no schedule here: every output at the end)
            for k, r in enumerate(res):
                on_output(k, r)
        return res


def _compile(g, owner, donate=()):
    kind = "backward" if g.name.endswith("_backward") else "forward"
    log.emit("graphs", f"[{owner.name}] {kind} graph:\n{g}")
    if owner.backend == "eager":
        return _Interpreted(g)
    # mode="reduce-overhead": Triton programs replay through one CUDA graph
    graphs = getattr(owner, "mode", None) == "reduce-overhead"
    prog, _ = compile_graph(g, owner.backend, donate=donate, cuda_graphs=graphs)
    # (only when logging: a program loaded from disk rebuilds its partition on first access)
    part = getattr(prog, "partition", None) if log.enabled("fusion") else None
    if part is not None:
        log.emit("fusion", f"[{owner.name}] {kind} groups of {g.name} "
                           f"({len(part.groups)}):\n{part.describe()}")
    if log.enabled("kernels"):
        log.emit("kernels", f"[{owner.name}] {kind} program {g.name}:\n{prog.source}")
    return prog


def _backward_graph(tracer, g, grad_outs, in_tensors):
    """Backward of the traced autograd nodes reachable from grad_outs, as a Graph whose inputs
    are the forward values it reads (saved) followed by one cotangent per grad output."""
    # traced nodes reachable from the outputs
    order, seen, stack = [], set(), [t._node for t in grad_outs]
    while stack:
        n = stack.pop()
        if n is None or id(n) in seen or n.seq <= tracer.seq0:
            continue
        if n.freed or n.fn is not None or n.saved is None or type(n.saved) is PackedList \
                or type(n.out) is PackedList:
            # (a node run eagerly under saved_tensors_hooks: its unpack hook runs at backward
            # time, so backward stays eager through the traced nodes)
            return None, [], []
        seen.add(id(n))
        order.append(n)
        for e in n.edges:
            if e is not None and e[0] is not None:
                stack.append(e[0])
    order.sort(key=lambda n: n.seq)
    bg = Graph(f"{g.name}_backward")
    be = GraphEmitter(bg)
    saved_map = {}                       # id(forward Value) -> backward input Value
    saved_vals = []

    def fwd_value(x):
        if isinstance(x, Tensor):
            d = x._data
            if type(d) is SymArray:
                return d.value
            o = tracer.overrides.get(id(d))
            if o is not None:
                return o[1]
            return tracer.value_of(x)
        if type(x) is SymArray:
            return x.value
        if isinstance(x, np.ndarray):
            return None
        return x

    def bval(x):
        v = fwd_value(x)
        if not isinstance(v, Value):
            return x if not isinstance(x, Tensor) else v
        k = id(v)
        if k not in saved_map:
            saved_map[k] = bg.add_input(f"saved{len(saved_vals)}", v.shape, v.dtype)
            saved_vals.append(v)
        return saved_map[k]

    # placeholders for saved inputs must come first: collect lazily, then reorder at the end
    cot = {}
    grad_in_vals = []
    for t in grad_outs:
        gv = bg.add_input(f"grad{len(grad_in_vals)}", t._data.shape, t._dtype)
        grad_in_vals.append(gv)
        k = (id(t._node), t._oi)
        cot[k] = gv if k not in cot else bg.call("add", cot[k], gv)
    ext = {}                             # region input index -> gradient Value
    for n in reversed(order):
        gs = [cot.pop((id(n), i), None) for i in range(len(n.outs))]
        if all(x is None for x in gs):
            continue
        saved = [bval(s) if isinstance(s, (Tensor, SymArray)) else s for s in n.saved]
        out = None
        if n.out is not None:
            outs = [bval(o) if type(o) is SymArray else _const_array(bg, o) for o in n.out]
            out = outs[0] if len(outs) == 1 else tuple(outs)
        p = n.prim
        if p.nout == 1:
            r = p.vjp(be, gs[0], *saved, out=out, **n.attrs)
        else:
            r = p.vjp(be, tuple(gs), *saved, out=out, **n.attrs)
        for e, gi, s in zip(n.edges, r, n.saved):
            if e is None or gi is None:
                continue
            gi = _fit(bg, gi, s)
            if e[0] is not None and e[0].seq > tracer.seq0:
                k = (id(e[0]), e[1])
                cot[k] = gi if k not in cot else bg.call("add", cot[k], gi)
            else:
                # leaves and tensors with eager history outside the region: region inputs
                pos = _input_index(e, in_tensors)
                if pos is None:
                    continue
                ext[pos] = gi if pos not in ext else bg.call("add", ext[pos], gi)
    if not ext:
        return None, [], []
    grad_inputs = sorted(ext)
    # inputs: saved values first, then cotangents (the order _RegionFn passes them)
    bg.inputs = [v for v in bg.inputs if v.name.startswith("saved")] + \
        [v for v in bg.inputs if v.name.startswith("grad")]
    bg.set_outputs([ext[i] for i in grad_inputs])
    return bg, saved_vals, grad_inputs


def _const_array(bg, arr):
    raise RuntimeError("compile: a saved forward output was concrete inside a traced region")


def _input_index(edge, in_tensors):
    producer, target = edge
    for k, t in enumerate(in_tensors):
        if producer is None:
            if t is target:
                return k
        elif t._node is producer and t._oi == target:
            return k
    return None


def _fit(bg, gi, s):
    """A gradient takes its input's dtype and shape (sum over broadcast dims)."""
    shape = tuple(s.shape) if hasattr(s, "shape") else None
    dtype = s.dtype if isinstance(s, AVal) else getattr(s, "_dtype", None)
    if isinstance(s, Tensor):
        dtype = s._dtype
    if dtype is not None and gi.dtype is not dtype and dtype.is_floating_point:
        gi = bg.call("cast", gi, dtype=dtype)
    if shape is not None and tuple(gi.shape) != shape:
        n = len(gi.shape) - len(shape)
        dims = tuple(range(n)) + tuple(n + k for k, d in enumerate(shape)
                                       if d == 1 and gi.shape[n + k] != 1)
        if dims:
            gi = bg.call("sum", gi, dims=dims, keepdim=True)
        gi = bg.call("reshape", gi, shape=shape)
    return gi
