"""The backward pass: apply each recorded node's VJP rule, consumers before producers.

The rules come from the primitive registry and are written with an emitter; here the emitter
runs eagerly (framework._dispatch.EMIT), so the backward graph is executed as it is generated.
With create_graph=True the emitted ops are themselves recorded, which is what makes higher-order
gradients work. graph.py builds the same backward as a printable compiler Graph.

Scheduling follows PyTorch's engine: dependency counts over the part of the graph the roots
reach, a ready queue ordered by creation (newest node first), and a leaf's gradient is
finished (hooks, then .grad) as soon as every path into it has delivered.
"""
import heapq
import itertools
import re
import sys

import numpy as np

from compiler.ir.registry import REGISTRY
from runtime.meta import MetaArray, meta_empty
from .. import _dispatch
from . import _saved
from ._saved import FreedVal
from .._dispatch import STATE, EMIT, wrap, apply, PackedList, MaskedOperand
from ..tensor import Tensor

_ADD = REGISTRY["add"]
_CAST = REGISTRY["cast"]
_SUM = REGISTRY["sum"]
_COPY = REGISTRY["copy"]
_RESHAPE = REGISTRY["reshape"]
_LINK = REGISTRY["grad_link"]
_RELU = REGISTRY["relu"]

SECOND_TIME = ("Trying to backward through the graph a second time (or directly access saved "
               "tensors after they have already been freed). Saved intermediate values of the "
               "graph are freed when you call .backward() or autograd.grad(). Specify "
               "retain_graph=True if you need to backward through the graph a second time or if "
               "you need to access saved tensors after calling backward.")


def _accum(a, b):
    if a is None:
        return b
    if getattr(a, "_compressed", False) or getattr(b, "_compressed", False):
        from ..sparse_compressed import accumulate as accumulate_compressed
        return accumulate_compressed(a, b)
    if a.is_sparse or b.is_sparse:      # (framework.sparse: concatenation, or a dense sum)
        from ..sparse import accumulate
        return accumulate(a, b)
    return apply(_ADD, a, b)


def _version_error(t, oi, producer, v, now):
    """PyTorch's saved-variable check message: the tensor, the node whose output it is (none
    for a leaf) with the name's BackwardN suffix dropped, the versions, and the hint that
    depends on anomaly mode."""
    where = ""
    if producer is not None:
        nm = producer._name
        nm = "torch::autograd::CopySlices" if nm == "CopySlices" else \
            re.sub(r"Backward\d+$", "", nm)
        where = f", which is output {oi} of {nm},"
    hint = ("Hint: the backtrace further above shows the operation that failed to compute its "
            "gradient. The variable in question was changed in there or anywhere later. Good "
            "luck!") if STATE.anomaly else (
        "Hint: enable anomaly detection to find the operation that failed to compute its "
        "gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False).")
    return RuntimeError(
        "one of the variables needed for gradient computation has been modified by an inplace "
        f"operation: [{t.type()} {list(t.shape)}]{where} is at version {now}; expected version "
        f"{v} instead. {hint}")


def _check_version(node):
    for t, v in zip(node.saved, node.versions):
        if v is not None and v != _dispatch.WRAPPED:
            b = t._base
            now = t._vcount if b is None else b._vcount
            if now != v:
                raise _version_error(t, t._oi, t._node, v, now)


def _saved_outputs(node, create_graph):
    """The forward outputs a rule reads, rebuilt from the saved arrays. With create_graph they
    are attached to `node` again, so double backward sees their dependence on the inputs.
    Saved under saved_tensors_hooks: the unpack hook rebuilds them (no version check)."""
    if type(node.out) is PackedList:
        res = node.out.unpacked(node)
        return res[0] if len(res) == 1 else tuple(res)
    res = []
    for i, (arr, ref) in enumerate(zip(node.out, node.oref)):
        o = ref()
        if o is not None and o._version != 0:
            raise _version_error(o, i, node, 0, o._version)
        t = wrap(arr, node.outs[i].dtype)
        if create_graph:
            t._node, t._oi = node, i
        res.append(t)
    return res[0] if len(res) == 1 else tuple(res)


# PyTorch nodes that save their input where Kiln's decomposition needs no saved tensor: freed
# all the same, so a second backward raises as in PyTorch
_TORCH_SAVES = frozenset(("AvgPool2DBackward0", "AvgPool3DBackward0", "AdaptiveAvgPool2DBackward0",
                          "AdaptiveAvgPool3DBackward0", "MedianBackward0", "NanmedianBackward0",
                          "DivBackward2", "AddcdivBackward0"))


# nodes that save a Python-number operand as a tensor (x * 2, x / 2); composites built on
# mul/div (mean, lerp, deg2rad) rename their node and save no such tensor
_WRAPS = frozenset(("MulBackward0", "DivBackward0"))


def _release(node):
    """Free what backward needed once (retain_graph=False). Nodes that saved only shapes and
    scalars stay runnable, as in PyTorch."""
    if node.link is not None or node._name in _TORCH_SAVES:   # (rename(link=): saved there)
        node.freed = True
    if node._name in _saved.SV_NAMES:     # tensors a composite kept for grad_fn._saved_*
        _saved.release_sv(node)
    if node.fn is not None:
        if node.ctx._saved:
            node.ctx._free()
            node.freed = True
        return
    if node.out is not None:
        node.out = node.oref = None
        node.freed = True
    saved = node.saved
    if saved is not None and (type(saved) is PackedList or any(
            v is not None and (v != _dispatch.WRAPPED or node._name in _WRAPS)
            for v in node.versions)):
        # shapes and numbers stay for grad_fn._saved_* (sizes, exponents); tensors go
        node.saved = [FreedVal(s.shape, s._dtype) if isinstance(s, Tensor) else
                      FreedVal((), None) if type(s) is _dispatch.Packed else s for s in saved]
        node.freed = True


def _apply_vjp(node, gs, needs, create_graph):
    if node.freed:
        raise RuntimeError(SECOND_TIME)
    if node.fn is not None:                      # custom autograd.Function
        return node.fn._backward_from_engine(node, gs)
    p = node.prim
    _check_version(node)
    out = _saved_outputs(node, create_graph) if node.out is not None else None
    if p.nout == 1:
        g = gs[0]
        if g is None:
            return (None,) * len(node.edges)
    else:
        if all(g is None for g in gs):
            return (None,) * len(node.edges)
        g = tuple(gs)
    saved = node.saved
    if type(saved) is PackedList:                # saved under saved_tensors_hooks
        saved = saved.unpacked()
    prev, prev_dev = EMIT.needs, EMIT.device
    EMIT.needs = needs
    EMIT.device = (g if p.nout == 1 else next(x for x in g if x is not None))._device
    try:
        in_grads = p.vjp(EMIT, g, *saved, out=out, **node.attrs)
    finally:
        EMIT.needs, EMIT.device = prev, prev_dev
    if create_graph and (node.link or p is _RELU):
        return _link(node, in_grads)
    return in_grads


def _link(node, in_grads):
    """PyTorch's backward ops for relu, leaky_relu, hardtanh, the pools... read their input
    (relu's reads its output), so a create_graph gradient from them depends on it, with a zero
    derivative. Kiln's rules read only a mask: the first gradient is wrapped in grad_link to
    that tensor, so a second backward gives its producers zeros where PyTorch does (not None).
    An `unused` link (convolution, grid_sample, batch_norm: their double backward reads input
    and weight but gives an undefined gradient where the first gradient does not depend on
    them) makes every gradient require grad, with None for that tensor."""
    src, k, unused = node.link or (node, 0, False)
    if _dispatch.VMAP is not None or STATE.tracer is not None:
        return in_grads                  # (torch.func and compile() see values only)
    in_grads = tuple(in_grads)
    for i, g in enumerate(in_grads):
        if g is not None:
            if src is None:              # a leaf
                x, shape, dtype = k, tuple(k.shape), k._dtype
            else:                        # a stand-in carrying the edge; its data is not read
                shape, dtype = src.outs[k].shape, src.outs[k].dtype
                x = wrap(g._data, dtype)
                x._node, x._oi = src, k
            r = apply(_LINK, g, x, shape=shape, dtype=dtype, unused=unused)
            name = node._name
            _dispatch.rename(r, "ThresholdBackwardBackward0" if name == "ReluBackward0"
                             else name[:-1] + "Backward0")
            in_grads = in_grads[:i] + (r,) + in_grads[i + 1:]
            if not unused:
                break
    return in_grads


def _anomaly_vjp(node, gs, needs, create_graph):
    """_apply_vjp under autograd.detect_anomaly: NaN gradients raise (check_nan), and an error
    shows the forward call that recorded the node first."""
    from .anomaly_mode import forward_trace_warning, check_nan
    try:
        in_grads = _apply_vjp(node, gs, needs, create_graph)
        if STATE.anomaly_check_nan:
            check_nan(node, in_grads)
    except Exception:
        forward_trace_warning(node)
        raise
    return in_grads


def _fit(g, shape, dtype, node, i):
    """PyTorch's validate_outputs: a gradient takes its input's dtype; a gradient that only
    broadcasts to the input's shape is summed to it; anything else is a rule bug."""
    if g._dtype is not dtype and (dtype.is_floating_point or dtype.is_complex):
        g = apply(_CAST, g, dtype=dtype)
    try:
        gs = g._data.shape
    except MaskedOperand:       # a MaskedTensor gradient (framework.masked's as_masked_tensor)
        gs = tuple(g.shape)
    if gs != shape:
        n = len(gs) - len(shape)
        if n < 0 or any(s != 1 and s != t for s, t in zip(shape, gs[n:])):
            raise RuntimeError(f"Function {node._name} returned an invalid gradient at index {i} "
                               f"- got {list(gs)} but expected shape compatible with "
                               f"{list(shape)}")
        dims = tuple(range(n)) + tuple(n + k for k, s in enumerate(shape) if s == 1 and gs[n + k] != 1)
        g = apply(_SUM, g, dims=dims, keepdim=True)
        g = apply(_RESHAPE, g, shape=shape)
    return g


def _run_hooks(hooks, g):
    for h in hooks:
        new = h(g)
        if new is not None:
            if isinstance(new, Tensor) and new._data.shape != g._data.shape:
                raise RuntimeError(f"hook '{getattr(h, '__name__', type(h).__name__)}' has "
                                   f"changed the size of value (was {list(g.shape)}, got "
                                   f"{list(new.shape)})")
            g = new
    return g


def _discover(root_nodes, want_nodes, want_leaves):
    """Nodes reachable from the roots, each with the number of edges into it from nodes that
    will run. With `inputs` given, only nodes on a path to one of them run (PyTorch prunes the
    same way); `run` maps each of them to its per-input needs tuple."""
    order = []
    seen = set()
    stack = list(root_nodes)
    for n in stack:
        seen.add(n)
    while stack:
        n = stack.pop()
        order.append(n)
        for e in n.edges:
            if e is not None:
                p = e[0]
                if p is not None and p not in seen:
                    seen.add(p)
                    stack.append(p)
    run = {}
    if want_nodes is None and want_leaves is None:
        for n in order:
            run[n] = tuple(e is not None for e in n.edges)
    else:
        # producers were recorded before their consumers: ascending seq is a topological order
        # from the inputs up, so `useful` of every producer is known before its consumers
        order.sort(key=lambda n: n.seq)
        useful = set()
        for n in order:
            needs = []
            for e in n.edges:
                if e is None:
                    needs.append(False)
                elif e[0] is None:
                    needs.append(id(e[1]) in want_leaves)
                else:
                    needs.append(e[0] in useful or (e[0], e[1]) in want_nodes)
            if any(needs):
                useful.add(n)
                run[n] = tuple(needs)
    deps = {}
    leaf_deps = {}
    for n, needs in run.items():
        for e, nd in zip(n.edges, needs):
            if nd:
                p = e[0]
                if p is None:
                    k = id(e[1])
                    leaf_deps[k] = leaf_deps.get(k, 0) + 1
                else:
                    deps[p] = deps.get(p, 0) + 1
    return run, deps, leaf_deps


_final_callbacks = []      # one list per backward pass in progress (backward can nest)
# one entry per backward pass in progress: (leaf_deps, leaf_acc) of a plain backward() (into
# .grad, no inputs=, no create_graph), else None; read by leaf_grad_is_final
_leaf_state = []


def leaf_grad_is_final(leaf):
    """Called from inside a node's backward (a compiled region's): True when the gradient this
    node is about to return for `leaf` will be all of the leaf's gradient in the innermost
    backward pass: a plain backward() accumulating into .grad, this is the only delivery still
    pending into the leaf and none arrived before it, and no tensor hook on the leaf can change
    it. Then the value is known before the engine accumulates it (.grad = old .grad + it)."""
    st = _leaf_state[-1] if _leaf_state else None
    if st is None or leaf._hooks:
        return False
    leaf_deps, leaf_acc = st
    k = id(leaf)
    return leaf_deps.get(k, 0) == 1 and k not in leaf_acc


# one entry per backward pass in progress: (task id, nodes that run, leaf dependency counts,
# wanted non-leaf gradients (inputs=) or None, ids of root leaves); read by
# current_graph_task_id and will_execute (autograd.graph.register_multi_grad_hook)
_graph_tasks = []
_task_ids = itertools.count()


def current_graph_task_id():
    """torch._C._current_graph_task_id(): the innermost backward pass in progress, -1 if none."""
    return _graph_tasks[-1][0] if _graph_tasks else -1


def will_execute(t):
    """torch._C._will_engine_execute_node(grad_fn or grad accumulator of t): whether the
    backward pass in progress runs t's node (for a leaf: accumulates into it)."""
    if not _graph_tasks:
        raise RuntimeError("_will_engine_execute_node should only be called during the backward "
                           "pass")
    _, run, leaf_deps, want_nodes, root_leaves = _graph_tasks[-1]
    n = t._node
    if n is None:
        return id(t) in leaf_deps or id(t) in root_leaves
    return n in run or (want_nodes is not None and any(k[0] is n for k in want_nodes))


class _ExecutionEngine:
    """torch.autograd.Variable._execution_engine: queue_callback(fn) runs fn once, after the
    backward pass in progress has delivered every gradient (DDP waits for its all-reduces)."""

    @staticmethod
    def queue_callback(callback):
        if not _final_callbacks:
            raise RuntimeError("Final callbacks can only be installed during backward pass.")
        _final_callbacks[-1].append(callback)


def run_backward(roots, grad_roots, retain_graph, create_graph, inputs=None, accumulate=True):
    """roots: output tensors; grad_roots: their cotangents.

    accumulate=True (backward): gradients of leaves (or of `inputs` only) accumulate into .grad.
    accumulate=False (autograd.grad): returns the gradients of `inputs`, touching no .grad.
    """
    want_nodes = want_leaves = None
    if inputs is not None:
        want_nodes, want_leaves = {}, {}
        for i, t in enumerate(inputs):
            if t._node is not None:
                want_nodes.setdefault((t._node, t._oi), []).append(i)
            else:
                want_leaves.setdefault(id(t), []).append(i)
    captured = {}
    grads = {}            # node -> list of incoming cotangents, one slot per output
    leaf_acc = {}         # id(leaf) -> [leaf, gradient so far]
    root_nodes = []
    root_leaves = []
    for r, g in zip(roots, grad_roots):
        n = r._node
        if n is None:
            e = leaf_acc.setdefault(id(r), [r, None])
            e[1] = _accum(e[1], g)
            root_leaves.append(r)
            continue
        lst = grads.get(n)
        if lst is None:
            lst = grads[n] = [None] * len(n.outs)
            root_nodes.append(n)
        lst[r._oi] = _accum(lst[r._oi], g)

    run, deps, leaf_deps = _discover(root_nodes, want_nodes, want_leaves)

    def finish_leaf(acc):
        # takes the gradient out of `acc`, so this frame holds the only engine reference
        # (AccumulateGrad decides by reference count whether it may keep the buffer)
        leaf = acc[0]
        g = acc.pop()
        if leaf._hooks:
            g = _run_hooks(leaf._hooks, g)
        if want_leaves is not None:
            idx = want_leaves.get(id(leaf))
            if idx is None:
                return
            for i in idx:
                captured[i] = g
        if accumulate:
            _accumulate_grad(leaf, g, create_graph)
            post = leaf.__dict__.get("_post_acc_hooks")
            if post:
                for h in post:
                    h(leaf)

    prev_mode = STATE.grad_enabled
    STATE.grad_enabled = bool(create_graph)
    _final_callbacks.append([])
    _leaf_state.append((leaf_deps, leaf_acc) if accumulate and inputs is None and
                       not create_graph else None)
    _graph_tasks.append((next(_task_ids), run, leaf_deps, want_nodes,
                         {id(r) for r in root_leaves}))
    try:
        heap = []
        for n in root_nodes:
            if deps.get(n, 0) == 0:
                heapq.heappush(heap, (-n.seq, n))
        for r in root_leaves:
            e = leaf_acc.get(id(r))
            if e is not None and leaf_deps.get(id(r), 0) == 0:
                del leaf_acc[id(r)]
                finish_leaf(e)
        e = None
        while heap:
            node = heapq.heappop(heap)[1]
            gs = grads.pop(node)
            if node.hooks:                   # tensor hooks of this node's outputs
                for oi, hooks in node.hooks.items():
                    if gs[oi] is not None and hooks:
                        gs[oi] = _run_hooks(hooks, gs[oi])
            if node.retain:                  # retain_grad(): after the other tensor hooks
                for oi, ref in node.retain.items():
                    t = ref()
                    if t is not None and gs[oi] is not None and t._node is node:
                        _accumulate_retained(t, gs[oi], create_graph)
            if want_nodes is not None:
                for oi in range(len(gs)):
                    idx = want_nodes.get((node, oi))
                    if idx is not None and gs[oi] is not None:
                        for i in idx:
                            captured[i] = gs[oi]
                        if accumulate:       # backward(inputs=[non-leaf]) fills its .grad
                            t = inputs[idx[0]]
                            if t._node is node:
                                _accumulate_retained(t, gs[oi], create_graph)
            needs = run.get(node)
            if needs is None:                # reached only to capture an input's gradient
                continue
            if node.pre_hooks:
                for h in node.pre_hooks:
                    r = h(tuple(gs))
                    if r is not None:
                        gs = list(r)
            if STATE.anomaly:
                in_grads = _anomaly_vjp(node, gs, needs, create_graph)
            else:
                in_grads = _apply_vjp(node, gs, needs, create_graph)
            if node.post_hooks:
                for h in node.post_hooks:
                    r = h(tuple(in_grads), tuple(gs))
                    if r is not None:
                        in_grads = tuple(r)
            if not retain_graph:
                _release(node)
            edges = node.edges
            if len(in_grads) != len(edges):
                raise RuntimeError(f"function {node._name} returned an incorrect number of "
                                   f"gradients (expected {len(edges)}, got {len(in_grads)})")
            done_leaves = None
            for i, (e, g, nd) in enumerate(zip(edges, in_grads, needs)):
                if not nd:
                    continue
                p = e[0]
                if p is None:
                    leaf = e[1]
                    k = id(leaf)
                    if g is not None:
                        g = _fit(g, leaf._data.shape, leaf._dtype, node, i)
                        acc = leaf_acc.get(k)
                        if acc is None:
                            leaf_acc[k] = [leaf, g]
                        else:
                            acc[1] = _accum(acc[1], g)
                    c = leaf_deps[k] - 1
                    leaf_deps[k] = c
                    if c == 0:
                        if done_leaves is None:
                            done_leaves = []
                        done_leaves.append(k)
                else:
                    oi = e[1]
                    if g is not None:
                        a = p.outs[oi]
                        g = _fit(g, a.shape, a.dtype, node, i)
                        lst = grads.get(p)
                        if lst is None:
                            lst = grads[p] = [None] * len(p.outs)
                        lst[oi] = _accum(lst[oi], g)
                    c = deps[p] - 1
                    deps[p] = c
                    if c == 0:
                        if p in grads:
                            heapq.heappush(heap, (-p.seq, p))
                        elif p in run:       # nothing arrived: still let its sub-graph settle
                            _settle(p, run, deps, leaf_deps, grads, leaf_acc, heap, finish_leaf)
            if done_leaves:
                in_grads = g = gs = None      # drop this frame's references first
                for k in done_leaves:
                    acc = leaf_acc.pop(k, None)
                    if acc is not None:
                        finish_leaf(acc)
                acc = None
        callbacks = _final_callbacks[-1]
        i = 0
        while i < len(callbacks):            # a callback may queue another
            callbacks[i]()
            i += 1
    finally:
        _final_callbacks.pop()
        _leaf_state.pop()
        _graph_tasks.pop()
        STATE.grad_enabled = prev_mode
    if inputs is None:
        return None
    return [captured.get(i) for i in range(len(inputs))]


def _settle(node, run, deps, leaf_deps, grads, leaf_acc, heap, finish_leaf):
    """A node all of whose consumers delivered no gradient: nothing flows through it, but its
    producers' dependency counts must still drop so they can run with their other gradients."""
    stack = [node]
    while stack:
        n = stack.pop()
        for e, nd in zip(n.edges, run[n]):
            if not nd:
                continue
            p = e[0]
            if p is None:
                k = id(e[1])
                leaf_deps[k] -= 1
                if leaf_deps[k] == 0:
                    acc = leaf_acc.pop(k, None)
                    if acc is not None:
                        finish_leaf(acc)
            else:
                deps[p] -= 1
                if deps[p] == 0:
                    if p in grads:
                        heapq.heappush(heap, (-p.seq, p))
                    elif p in run:
                        stack.append(p)


def _sole_view(a):
    """Is NumPy array `a` a C-contiguous view of all of a C-contiguous array that nothing but
    `a` refers to? (getrefcount: a's base pointer, the local and the argument.)"""
    bs = a.base
    return type(a) is np.ndarray and type(bs) is np.ndarray and a.flags.c_contiguous and \
        bs.flags.c_contiguous and bs.size == a.size and sys.getrefcount(bs) <= 3


def _obeys_layout(a, v):
    """PyTorch's gradient layout contract for a new .grad `a` of a leaf whose array is `v`: the
    leaf's strides (size-1 dims aside) where the leaf is non-overlapping and dense, else
    contiguous. (Device buffers are row-major by design: not checked.)"""
    if a.strides == v.strides or type(a) is not np.ndarray or type(v) is not np.ndarray:
        return True
    from ..creation import _dense_strides
    el = _dense_strides(v)
    if el is None:
        return a.flags.c_contiguous
    return all(s != 0 if n == 1 else s == e * a.itemsize
               for n, s, e in zip(a.shape, a.strides, el))


def _copy_obeying(a, v):
    """A copy of gradient array `a` laid out by the contract above (a channels_last weight's
    gradient is channels_last, as PyTorch's AccumulateGrad clones it)."""
    if type(a) is MetaArray:           # (no values to copy: new untouched storage)
        from ..creation import _dense_strides
        el = _dense_strides(v) if isinstance(v, np.ndarray) else None
        return meta_empty(a.shape, a.dtype, None if el is None else
                          tuple(e * a.itemsize for e in el))
    if type(a) is not np.ndarray or type(v) is not np.ndarray:
        return a.copy()                 # (.copy() keeps the device's array type)
    from ..creation import _contiguous_strides, _dense_strides
    el = _dense_strides(v)
    if el is None or el == _contiguous_strides(v.shape):
        return a.copy()
    out = np.lib.stride_tricks.as_strided(np.empty(a.size, a.dtype), a.shape,
                                          tuple(e * a.itemsize for e in el))
    out[...] = a
    return out


def _accumulate_grad(leaf, g, create_graph):
    """AccumulateGrad: the first gradient becomes .grad (its buffer is kept when nothing else
    holds it, as PyTorch does, else copied); later ones add in place; with create_graph the sum
    is out of place and keeps its history."""
    if "_vrg" in leaf.__dict__:     # a view made under no_grad: PyTorch has no accumulator
        return
    gd = leaf.__dict__.get("_grad_dtype")
    if gd is not None and g._dtype is not gd:      # Tensor.grad_dtype: gradients cast to it
        if not (gd.is_floating_point or gd.is_complex):    # (torch: an internal assert)
            raise RuntimeError(f"a gradient cannot be cast to the leaf's grad_dtype {gd}: "
                               f"gradients are floating point or complex")
        g = apply(REGISTRY["cast"], g, dtype=gd)
    old = leaf._grad
    tr = STATE.tracer
    if tr is not None and not (g.is_sparse or leaf.is_sparse or
                               old is not None and old.is_sparse):
        # traced (compiled training step): functional accumulation (a sparse gradient, as from
        # embedding(sparse=True), holds concrete values and accumulates as in eager)
        if old is None:
            leaf._grad = g if create_graph else apply(_COPY, g.detach())
        elif create_graph or old._node is not None:
            with _grad_mode(create_graph):
                leaf._grad = apply(_ADD, old, g)
        else:
            tr.assign(old, apply(_ADD, tr.snapshot(old), g.detach()))
        return
    if getattr(g, "_compressed", False) or getattr(old, "_compressed", False):
        from ..sparse_compressed import accumulate_grad as accumulate_compressed
        return accumulate_compressed(leaf, old, g, create_graph)
    if g.is_sparse or leaf.is_sparse or old is not None and old.is_sparse:
        from ..sparse import accumulate_grad
        return accumulate_grad(leaf, old, g, create_graph)
    if old is None:
        if create_graph:
            leaf._grad = g
            return
        try:
            a = g._data
        except MaskedOperand:    # a MaskedTensor gradient (framework.masked): .grad is masked
            leaf._grad = g
            return
        # references: the caller's local and our argument (+1 for getrefcount) for the tensor;
        # g's __dict__ and the local `a` (+1) for the array. More means someone else sees it.
        # A row-major view of a whole array only it refers to (the transpose of a transposed
        # product, see the matmul VJP) is as good as that array.
        if sys.getrefcount(g) <= 3 and sys.getrefcount(a) <= 3 and \
                (a.base is None or _sole_view(a)) and getattr(a.flags, "writeable", True) and \
                _obeys_layout(a, leaf._data):
            leaf._grad = g if g._node is None and g._base is None else wrap(a, g._dtype)
        else:
            leaf._grad = wrap(_copy_obeying(a, leaf._data), g._dtype)
    elif create_graph or old._node is not None:
        with _grad_mode(create_graph):
            leaf._grad = apply(_ADD, old, g)
    else:
        try:
            od = old._data
            g._data
        except MaskedOperand:    # a MaskedTensor gradient (framework.masked): out of place
            leaf._grad = apply(_ADD, old, g)
            return
        if type(od) is MetaArray and od.shape == g._data.shape:
            old._bump()                # (a meta sum has no values to write)
        elif getattr(od.flags, "writeable", True) and od.shape == g._data.shape:
            np.add(od, g._data, out=od, casting="unsafe")
            old._bump()
        else:
            leaf._grad = wrap(od + g._data, old._dtype)


def _accumulate_retained(t, g, create_graph):
    """retain_grad() and backward(inputs=[non-leaf]): like .grad of a leaf, kept on t."""
    if STATE.tracer is not None:
        t._grad = g.detach() if t._grad is None else apply(_ADD, t._grad, g)
        return
    if not create_graph:
        g = wrap(g._data, g._dtype)
    if t._grad is None:
        t._grad = g if create_graph else wrap(g._data.copy(), g._dtype)
    else:
        t._grad = apply(_ADD, t._grad, g)


class _grad_mode:
    __slots__ = ("mode", "prev")

    def __init__(self, mode):
        self.mode = mode

    def __enter__(self):
        self.prev = STATE.grad_enabled
        STATE.grad_enabled = self.mode

    def __exit__(self, *exc):
        STATE.grad_enabled = self.prev
