"""The recorded autograd graph as data: next_functions, and graph_of(t), which builds the
backward of t as a printable compiler Graph by running the same VJP rules with a graph
emitter instead of the eager one. Also torch.autograd.graph's hooks on that graph:
saved_tensors_hooks / save_on_cpu / disable_saved_tensors_hooks (what nodes save goes through
a pack hook when recorded and an unpack hook when backward reads it: _dispatch.pack_node,
engine._apply_vjp) and register_multi_grad_hook."""
import contextlib
import functools
import threading
import weakref
from collections import defaultdict
from typing import NamedTuple

import numpy as np

from compiler.ir.graph import Graph, GraphEmitter
from compiler.ir.registry import AVal
from .._dispatch import STATE, PackedList
from ..tensor import Tensor

__all__ = ["graph_of", "recorded_nodes", "next_functions", "AccumulateGrad", "Node",
           "saved_tensors_hooks", "save_on_cpu", "disable_saved_tensors_hooks",
           "register_multi_grad_hook", "allow_mutation_on_saved_tensors", "GradientEdge",
           "get_gradient_edge", "increment_version"]


# ---- saved tensors hooks ------------------------------------------------------------------------
# Entered pairs, innermost last, each with the pair that was in effect before it (restored on
# exit). STATE.saved_hooks is the pair in effect: _dispatch.record reads only that, once per
# node. (Process-wide, like Kiln's other autograd modes; PyTorch keeps them per thread.)
_stack = []
_disabled_message = None        # disable_saved_tensors_hooks in effect: entering hooks raises


class saved_tensors_hooks:
    """Context manager that sets a pair of pack / unpack hooks for saved tensors.

    Every tensor an autograd node saves for backward while it is active (inputs and outputs of
    the op, and what a custom Function's ctx.save_for_backward keeps) is passed to
    ``pack_hook(tensor) -> Any`` when the op runs, without grad; the graph keeps what it
    returns instead of the tensor. ``unpack_hook(packed) -> Tensor`` gives the value back when
    backward (or ``ctx.saved_tensors``) needs it. The hooks in effect when an op ran are the
    ones used for it, wherever backward runs; nested contexts: the innermost pair wins.
    Tensors saved this way are not version-checked (an in-place change after the save is not
    detected), as in PyTorch.
    """

    def __init__(self, pack_hook, unpack_hook):
        self.pack_hook = pack_hook
        self.unpack_hook = unpack_hook

    def __enter__(self):
        _push_hooks(self.pack_hook, self.unpack_hook)

    def __exit__(self, *args):
        _pop_hooks()


def _push_hooks(pack_hook, unpack_hook):
    if _disabled_message is not None:
        raise RuntimeError(_disabled_message)
    _stack.append(STATE.saved_hooks)
    STATE.saved_hooks = (pack_hook, unpack_hook)


def _pop_hooks():
    STATE.saved_hooks = _stack.pop()


class save_on_cpu(saved_tensors_hooks):
    """Context manager under which tensors saved by the forward pass are stored on the cpu,
    then copied back to their device for backward. Tensors already on the cpu are kept as they
    are (``tensor.cpu()`` is the tensor itself), unless ``pin_memory=True``, which copies
    every saved tensor into a fresh (pinned, when the device module has pinned memory) cpu
    tensor, as PyTorch does."""

    def __init__(self, pin_memory=False, device_type="cuda"):
        import framework as torch
        device_module = getattr(torch, device_type, torch.cuda)

        def pack_to_cpu(tensor):
            if not pin_memory:
                return (tensor.device, tensor.cpu())
            is_pinnable = device_module.is_available() and not tensor.is_sparse
            packed = torch.empty(tensor.size(), dtype=tensor.dtype, layout=tensor.layout,
                                 pin_memory=is_pinnable)
            packed.copy_(tensor, non_blocking=is_pinnable)
            return (tensor.device, packed)

        def unpack_from_cpu(packed):
            device, tensor = packed
            return tensor.to(device, non_blocking=pin_memory)

        super().__init__(pack_to_cpu, unpack_from_cpu)


@contextlib.contextmanager
def disable_saved_tensors_hooks(error_message):
    """Context manager under which entering saved_tensors_hooks (or save_on_cpu) raises
    RuntimeError(error_message); entering it while such hooks are active raises the same."""
    global _disabled_message
    prev = _disabled_message
    try:
        _disabled_message = error_message
        if _stack:
            raise RuntimeError(error_message)
        yield
    finally:
        _disabled_message = prev


# ---- allow_mutation_on_saved_tensors -----------------------------------------------------------
# PyTorch's algorithm: saved tensors go through saved_tensors_hooks that keep them by handle, and
# an in-place write (here: ops_math.check_writable / write_out, through _dispatch.BEFORE_WRITE)
# into memory a saved tensor has, at the same version, first clones it (keyed by data pointer and
# version, as PyTorch: a saved view at another offset than the written tensor is not cloned).
_allow_mutation_on_saved_tensors_enabled = False


class _Handle:
    pass


def _get_tid(t):
    return (id(t), t.data_ptr(), t._version)


def _get_sid(t):
    return (t.data_ptr(), t._version)


class _AllowMutationOnSavedContext:
    def __init__(self):
        self.cloned = weakref.WeakKeyDictionary()
        self.original = weakref.WeakKeyDictionary()
        self.tid_to_weakhandle = weakref.WeakValueDictionary()
        self.sid_to_tid = defaultdict(set)

    def clear(self):
        self.cloned.clear()
        self.original.clear()
        self.tid_to_weakhandle.clear()
        self.sid_to_tid.clear()


class _swap_with_cloned(saved_tensors_hooks):
    def __init__(self, ctx):
        def pack_hook(tensor):
            tid = _get_tid(tensor)
            ctx.sid_to_tid[_get_sid(tensor)].add(tid)
            # the same tensor (at the same version) can be saved several times
            handle = ctx.tid_to_weakhandle.get(tid)
            if handle is None:
                handle = _Handle()
                ctx.tid_to_weakhandle[tid] = handle
                ctx.original[handle] = tensor
            return handle

        def unpack_hook(handle):
            error_msg = ("Trying to backward outside of the 'allow_mutation_on_saved_tensors' "
                         "contextin which the graph was originally recorded.")
            if not _allow_mutation_on_saved_tensors_enabled:
                raise AssertionError(error_msg)
            if handle in ctx.cloned:
                return ctx.cloned[handle]
            if handle not in ctx.original:
                raise AssertionError(error_msg)
            return ctx.original[handle]

        super().__init__(pack_hook, unpack_hook)


def _clone_before_write(ctx, t):
    tids = ctx.sid_to_tid.get(_get_sid(t))
    if not tids:
        return
    for tid in tids:
        handle = ctx.tid_to_weakhandle.get(tid)
        # (absent: saved, then freed by a backward before this write)
        if handle is None or handle in ctx.cloned:
            continue
        prev = STATE.grad_enabled
        STATE.grad_enabled = False      # (PyTorch clones below autograd: no history)
        try:
            ctx.cloned[handle] = ctx.original[handle].clone()
        finally:
            STATE.grad_enabled = prev
        del ctx.original[handle]


@contextlib.contextmanager
def allow_mutation_on_saved_tensors():
    """Context manager under which mutating tensors saved for backward is allowed.

    Under this context manager, tensors saved for backward are cloned on mutation,
    so the original version can still be used during backward. Normally, mutating a tensor
    saved for backward will result in an error raised when it's used during backward.

    To ensure the correct behavior, both the forward and backward should be run under
    the same context manager. Yields an _AllowMutationOnSavedContext (its state, cleared on
    exit)."""
    global _allow_mutation_on_saved_tensors_enabled
    from .. import _dispatch
    ctx = _AllowMutationOnSavedContext()
    prev = _dispatch.BEFORE_WRITE
    with _swap_with_cloned(ctx):
        try:
            if _allow_mutation_on_saved_tensors_enabled:
                raise RuntimeError("allow_mutation_on_saved_tensors contexts cannot be nested")
            _dispatch.BEFORE_WRITE = functools.partial(_clone_before_write, ctx)
            _allow_mutation_on_saved_tensors_enabled = True
            yield ctx
        finally:
            ctx.clear()
            _dispatch.BEFORE_WRITE = prev
            _allow_mutation_on_saved_tensors_enabled = False


@contextlib.contextmanager
def _hooks_hidden():
    """No saved tensors hooks inside (none in effect, none counted as entered): for Kiln's
    forward-mode transforms (func.jvp, jacfwd), which run reverse-mode autograd internally
    where PyTorch saves nothing."""
    global _stack
    prev_stack, prev = _stack, STATE.saved_hooks
    _stack, STATE.saved_hooks = [], None
    try:
        yield
    finally:
        _stack, STATE.saved_hooks = prev_stack, prev


FUNC_TRANSFORMS_MESSAGE = ("torch.func.{grad, vjp, jacrev, hessian} don't yet support saved "
                           "tensor hooks. Please open an issue with your use case.")


def doesnt_support_saved_tensors_hooks(f):
    """torch._functorch's decorator: f runs under disable_saved_tensors_hooks."""
    @functools.wraps(f)
    def fn(*args, **kwargs):
        with disable_saved_tensors_hooks(FUNC_TRANSFORMS_MESSAGE):
            return f(*args, **kwargs)
    return fn


class AccumulateGrad:
    """The grad_fn-graph node standing for a leaf: its gradient accumulates into .grad."""

    def __init__(self, variable):
        self.variable = variable

    def name(self):
        return "torch::autograd::AccumulateGrad"

    def __repr__(self):
        return f"<AccumulateGrad object at {hex(id(self))}>"

    next_functions = ()


# ---- register_multi_grad_hook -------------------------------------------------------------------

class _MultiHandle:
    """What register_multi_grad_hook returns: .remove() takes out every per-tensor hook."""

    def __init__(self, handles):
        self.handles = handles

    def remove(self):
        for handle in self.handles:
            handle.remove()

    def __getstate__(self):
        return self.handles

    def __setstate__(self, state):
        self.handles = state

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def register_multi_grad_hook(tensors, fn, *, mode="all"):
    """Register fn to run once per backward pass after gradients of `tensors` are computed.

    mode="all": fn(grads) once the gradient of every tensor the pass computes is ready;
    grads has one entry per tensor, None for those the pass does not reach. mode="any":
    fn(grad) with the first gradient computed for any of the tensors. fn must not modify
    its arguments. Returns a handle whose remove() takes the hook out (PyTorch's algorithm:
    per-tensor hooks keyed by the backward pass in progress)."""
    from . import engine
    supported_modes = ("all", "any")
    lock = threading.Lock()
    if mode not in supported_modes:
        raise ValueError(f"Expects mode to be one of {supported_modes} but got {mode}")
    if mode == "all":
        count = {}
        nb_calls = None
        buffer = {}
        for t in tensors:
            if not t.requires_grad:
                raise AssertionError("Expected gradient function to be set")
        len_tensors = len(tensors)

        def get_inner_hook(idx):
            def inner_hook(grad):
                nonlocal nb_calls
                id = engine.current_graph_task_id()
                if id == -1:
                    raise AssertionError("expected this hook to be called inside a backward call")
                count[id] = count.get(id, 0)
                buffer[id] = buffer.get(id, [None] * len_tensors)
                with lock:
                    curr_count, count[id] = count[id], count[id] + 1
                    if curr_count == 0:
                        # on the first call: how many of the tensors this pass reaches
                        nb_calls = sum(map(engine.will_execute, tensors))
                buffer[id][idx] = grad
                if curr_count == nb_calls - 1:
                    fn(buffer[id])
                    del count[id]
                    del buffer[id]
            return inner_hook

        handles = tuple(t.register_hook(get_inner_hook(i)) for i, t in enumerate(tensors))
    else:
        ran_hook = {}

        @functools.wraps(fn)
        def wrapped_fn(grad):
            id = engine.current_graph_task_id()
            if id == -1:
                raise AssertionError("expected this hook to be called inside a backward call")
            with lock:
                prev, ran_hook[id] = ran_hook.get(id, False), True
            if prev:
                return
            fn(grad)

        handles = tuple(t.register_hook(wrapped_fn) for t in tensors if t.requires_grad)
    return _MultiHandle(handles)


def _grad_acc(leaf):
    acc = leaf.__dict__.get("_accumulate_grad")
    if acc is None:     # one per leaf, so identity comparisons work like PyTorch's
        acc = leaf._accumulate_grad = AccumulateGrad(leaf)
    return acc


def next_functions(node):
    """((producer node, output index) | (AccumulateGrad, 0) | (None, 0)) per input, as PyTorch."""
    out = []
    for e in node.edges:
        if e is None:
            out.append((None, 0))
        elif e[0] is None:
            out.append((_grad_acc(e[1]), 0))
        else:
            out.append((e[0], e[1]))
    return tuple(out)


# ---- gradient edges -----------------------------------------------------------------------------

class GradientEdge(NamedTuple):
    """Object representing a given gradient edge within the autograd graph.

    To get the gradient edge where a given Tensor gradient will be computed,
    you can do ``edge = autograd.graph.get_gradient_edge(tensor)``.
    """

    node: object
    output_nr: int
    # (PyTorch's token keeps a Python-owned graph alive; Kiln's nodes are Python objects)
    ownership_token: object = None


def get_gradient_edge(tensor):
    """Get the gradient edge for computing the gradient of the given Tensor.

    In particular, it is equivalent to call
    ``g = autograd.grad(loss, input)`` and ``g = autograd.grad(loss, get_gradient_edge(input))``.
    """
    if not tensor.requires_grad:
        raise RuntimeError("It is not possible to get the gradient edge for a Tensor that does "
                           "not require gradients")
    node = tensor.grad_fn
    if node is None:
        return GradientEdge(_grad_acc(tensor), 0)
    return GradientEdge(node, tensor.output_nr)


def edge_tensor(e):
    """The tensor autograd.grad/backward use for GradientEdge `e`: a leaf's edge is the leaf;
    another stands for output `output_nr` of its node (shape and dtype only, no values)."""
    from .._dispatch import wrap
    from runtime.meta import meta_empty
    node, oi = e.node, e.output_nr
    if isinstance(node, AccumulateGrad):
        return node.variable
    a = node.outs[oi]
    t = wrap(meta_empty(a.shape, a.dtype.np), a.dtype)
    t._node, t._oi = node, oi
    return t


def increment_version(tensor):
    """Update autograd metadata tracking whether the given Tensor was modified in place.

    Needed only for an in-place write Kiln cannot see (through .numpy() or a raw buffer), so
    that a node that saved the tensor refuses its stale value in backward. Accepts a tensor or
    an iterable of tensors; a tensor made under inference_mode has no version counter and is
    left alone."""
    if isinstance(tensor, Tensor):
        tensor = (tensor,)
    try:
        ts = list(tensor)
    except TypeError:
        raise RuntimeError("increment_version expect a Iterable[Tensor] as input") from None
    for t in ts:           # (one pass: the tensors before a bad element are bumped, as torch)
        if not isinstance(t, Tensor):
            raise RuntimeError("increment_version expects each element of the iterable to be a "
                               "tensor")
        if not t.is_inference():
            t._bump()


def recorded_nodes(t):
    """Every node t's grad_fn reaches, in recording (forward) order."""
    if t._node is None:
        return []
    seen = {t._node}
    order, stack = [], [t._node]
    while stack:
        n = stack.pop()
        order.append(n)
        for e in n.edges:
            if e is not None and e[0] is not None and e[0] not in seen:
                seen.add(e[0])
                stack.append(e[0])
    order.sort(key=lambda n: n.seq)
    return order


def graph_of(t, name="backward"):
    """The backward of `t` (a tensor with a grad_fn) as a compiler Graph, built by the same VJP
    rules backward() runs, with a graph emitter instead of the eager one.

    Graph inputs: `grad_out` (the cotangent of t), then the saved forward values the rules
    read. Outputs: the gradient of every leaf that requires grad. Besides the usual Graph API
    the result carries `example_inputs` (the arrays of those inputs, grad_out = ones, so
    `g.run(*g.example_inputs)` reproduces backward()) and `leaves` (tensor of each output).
    """
    if t._node is None:
        raise RuntimeError("graph_of: tensor has no grad_fn (it is a leaf or does not require "
                           "grad)")
    order = recorded_nodes(t)
    g = Graph(name)
    b = GraphEmitter(g)
    arrays = []
    vals = {}
    counter = [0]

    def val_of(x, prefix):
        if not isinstance(x, Tensor):
            return x   # Python scalars and shape-only metadata (AVal) stay as they are
        k = id(x._data)
        v = vals.get(k)
        if v is None:
            v = vals[k] = g.add_input(f"{prefix}{counter[0]}", tuple(x.shape), x.dtype)
            counter[0] += 1
            arrays.append(np.asarray(x._data))
        return v

    cot = {(t._node, t._oi): g.add_input("grad_out", tuple(t.shape), t.dtype)}
    arrays.append(np.ones(t._data.shape, t._dtype.np))
    leaf_grad = {}
    leaves = {}
    for n in reversed(order):
        gs = [cot.pop((n, i), None) for i in range(len(n.outs))]
        if all(x is None for x in gs):
            continue
        if n.fn is not None:
            raise RuntimeError(f"graph_of: {n._name} is a custom autograd.Function; its backward "
                               "is Python code, not IR")
        if n.freed:
            raise RuntimeError(f"graph_of: the saved values of {n._name} were freed by an earlier "
                               "backward (use retain_graph=True)")
        ns = n.saved if type(n.saved) is not PackedList else n.saved.unpacked()
        saved = [val_of(s, "saved") for s in ns]
        out = None
        if type(n.out) is PackedList:        # saved under saved_tensors_hooks
            outs = [val_of(o, "out") for o in n.out.unpacked()]
            out = outs[0] if len(outs) == 1 else tuple(outs)
        elif n.out is not None:
            from .._dispatch import wrap
            outs = [val_of(wrap(a, n.outs[i].dtype), "out") for i, a in enumerate(n.out)]
            out = outs[0] if len(outs) == 1 else tuple(outs)
        p = n.prim
        if p.nout == 1:
            r = p.vjp(b, gs[0], *saved, out=out, **n.attrs)
        else:
            r = p.vjp(b, tuple(gs), *saved, out=out, **n.attrs)
        for e, gi in zip(n.edges, r):
            if e is None or gi is None:
                continue
            if e[0] is None:
                k = id(e[1])
                leaves[k] = e[1]
                leaf_grad[k] = gi if k not in leaf_grad else g.call("add", leaf_grad[k], gi)
            else:
                k = (e[0], e[1])
                cot[k] = gi if k not in cot else g.call("add", cot[k], gi)
    g.set_outputs(list(leaf_grad.values()))
    # grad_out first: it is the input a reader looks for
    gi = g.inputs.index(next(v for v in g.inputs if v.name == "grad_out"))
    g.inputs.insert(0, g.inputs.pop(gi))
    arrays.insert(0, arrays.pop(gi))
    g.example_inputs = arrays
    g.leaves = [leaves[k] for k in leaf_grad]
    return g


from .._dispatch import Node  # noqa: E402,F401  (torch.autograd.graph.Node)
