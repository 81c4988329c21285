"""torch.utils.checkpoint: activation checkpointing. The forward runs without recording a
graph (its intermediate activations are not kept); backward runs it again with the graph
recorded and backpropagates through that, trading compute for memory. The random state at the
forward is restored for the recomputation (preserve_rng_state), so dropout draws the same masks.
Results and gradients equal an unchecked call's. Both use_reentrant modes recompute the same
way (PyTorch's non-reentrant mode differs in how it hooks saved tensors, not in values)."""
import warnings

from ..autograd import Function, enable_grad, no_grad
from ..tensor import Tensor


class CheckpointFunction(Function):
    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, kwargs, *args):
        ctx.run_function, ctx.kwargs = run_function, kwargs
        ctx.rng = None
        if preserve_rng_state:
            from ..creation import rng_snapshot
            ctx.rng = rng_snapshot()
        ctx.tensor_at = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        ctx.others = [None if isinstance(a, Tensor) else a for a in args]
        ctx.save_for_backward(*[args[i] for i in ctx.tensor_at])
        with no_grad():
            return run_function(*args, **kwargs)

    @staticmethod
    def backward(ctx, *grads):
        from .. import autograd
        args = list(ctx.others)
        for i, t in zip(ctx.tensor_at, ctx.saved_tensors):
            args[i] = t.detach().requires_grad_(t.requires_grad)
        pairs = _rerun(ctx, args, grads)
        if pairs:
            autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
        return (None, None, None) + tuple(a.grad if isinstance(a, Tensor) and a.requires_grad
                                          else None for a in args)


def _rerun(ctx, args, grads):
    """The forward again (with the forward's random numbers), under grad mode: the
    (output, incoming gradient) pairs that backpropagate."""
    from ..creation import rng_restore, rng_snapshot
    now = rng_snapshot() if ctx.rng is not None else None
    if ctx.rng is not None:
        rng_restore(ctx.rng)                     # the forward's random numbers again
    try:
        with enable_grad():
            outs = ctx.run_function(*args, **ctx.kwargs)
    finally:
        if now is not None:
            rng_restore(now)
    outs = outs if isinstance(outs, tuple) else (outs,)
    return [(o, g) for o, g in zip(outs, grads)
            if isinstance(o, Tensor) and o.requires_grad and g is not None]


class _NonReentrantCheckpoint(Function):
    """use_reentrant=False: the gradient also reaches the leaves the function reads without
    taking them as arguments (a module's parameters), and comes back through the engine, so
    autograd.grad and backward(inputs=...) see it. Those leaves are edges of this node, found
    by a first run with the graph recorded (then dropped: only the inputs are kept)."""

    @staticmethod
    def forward(ctx, run_function, rng, kwargs, others, tensor_at, outs, *tensors):
        ctx.run_function, ctx.kwargs, ctx.rng = run_function, kwargs, rng
        ctx.others, ctx.tensor_at = others, tensor_at
        ctx.save_for_backward(*tensors)
        return outs

    @staticmethod
    def backward(ctx, *grads):
        from .. import autograd
        saved = ctx.saved_tensors
        k = len(ctx.tensor_at)
        create = autograd.is_grad_enabled()        # (the engine's create_graph)
        args = list(ctx.others)
        for i, t in zip(ctx.tensor_at, saved[:k]):
            # create_graph: recompute from the inputs themselves, so the gradient keeps its
            # dependence on them (double backward)
            args[i] = t if create else t.detach().requires_grad_(t.requires_grad)
        wrt = [args[i] for i in ctx.tensor_at] + list(saved[k:])
        pairs = _rerun(ctx, args, grads)
        idx = [j for j, t in enumerate(wrt) if t.requires_grad]
        res = [None] * len(wrt)
        if pairs and idx:
            gs = autograd.grad([o for o, _ in pairs], [wrt[j] for j in idx],
                               [g for _, g in pairs], allow_unused=True, create_graph=create)
            for j, g in zip(idx, gs):
                res[j] = g
        return (None,) * 6 + tuple(res)


def _graph_leaves(outs, skip):
    """Leaves that require grad reached from the graphs of `outs` (not those in `skip`)."""
    found, seen, stack = [], set(skip), []
    visited = set()
    for o in outs:
        if isinstance(o, Tensor) and o._node is not None:
            stack.append(o._node)
    while stack:
        n = stack.pop()
        if n in visited:
            continue
        visited.add(n)
        for e in n.edges:
            if e is None:
                continue
            if e[0] is None:
                if id(e[1]) not in seen:
                    seen.add(id(e[1]))
                    found.append(e[1])
            else:
                stack.append(e[0])
    return found


def _checkpoint_non_reentrant(function, preserve_rng_state, kwargs, args):
    from ..autograd import is_grad_enabled
    if not is_grad_enabled():
        return function(*args, **kwargs)
    rng = None
    if preserve_rng_state:
        from ..creation import rng_snapshot
        rng = rng_snapshot()
    tensor_at = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    others = [None if isinstance(a, Tensor) else a for a in args]
    ins = list(args)
    for i in tensor_at:         # fresh leaves, so the search below stops at the arguments
        ins[i] = args[i].detach().requires_grad_(args[i].requires_grad)
    from ..autograd.graph import _hooks_hidden
    with enable_grad(), _hooks_hidden():    # (a graph dropped at once: saved tensors hooks,
        out = function(*ins, **kwargs)      # as in PyTorch, see only the node below)
    outs = out if isinstance(out, tuple) else (out,)
    leaves = _graph_leaves(outs, [id(ins[i]) for i in tensor_at])
    det = tuple(o.detach() if isinstance(o, Tensor) else o for o in outs)
    out = det if isinstance(out, tuple) else det[0]
    del outs, ins
    return _NonReentrantCheckpoint.apply(function, rng, kwargs, others, tensor_at, out,
                                         *[args[i] for i in tensor_at], *leaves)


def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check="default",
               debug=False, preserve_rng_state=True, **kwargs):
    if use_reentrant is None:
        warnings.warn("torch.utils.checkpoint: the use_reentrant parameter should be passed "
                      "explicitly (PyTorch asks for it; both values recompute the same way in "
                      "Kiln)", stacklevel=2)
    if use_reentrant is False:
        return _checkpoint_non_reentrant(function, preserve_rng_state, kwargs, args)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    from ..autograd import is_grad_enabled
    if is_grad_enabled() and not any(isinstance(a, Tensor) and a.requires_grad for a in args):
        warnings.warn("None of the inputs have requires_grad=True. Gradients will be None",
                      stacklevel=2)
    return CheckpointFunction.apply(function, preserve_rng_state, kwargs, *args)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """Run a Sequential (or a list of modules) in `segments` checkpointed chunks; the last
    chunk runs normally, as in PyTorch."""
    fns = list(functions.children()) if hasattr(functions, "children") else list(functions)
    size = len(fns) // segments
    end = -1

    def run(start, stop):
        def f(x):
            for m in fns[start:stop + 1]:
                x = m(x)
            return x
        return f
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant, **kwargs)
    return run(end + 1, len(fns) - 1)(input)
