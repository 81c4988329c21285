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
        from ..creation import rng_restore, rng_snapshot
        args = list(ctx.others)
        for i, t in zip(ctx.tensor_at, ctx.saved_tensors):
            args[i] = t.detach().requires_grad_(t.requires_grad)
        now = rng_snapshot() if ctx.rng is not None else None
        if ctx.rng is not None:
            rng_restore(ctx.rng)                 # the forward's random numbers again
        try:
            with enable_grad():
                outs = ctx.run_function(*args, **ctx.kwargs)
        finally:
            if now is not None:
                rng_restore(now)
        outs = outs if isinstance(outs, tuple) else (outs,)
        pairs = [(o, g) for o, g in zip(outs, grads)
                 if isinstance(o, Tensor) and o.requires_grad and g is not None]
        if pairs:
            autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
        return (None, None, None) + tuple(a.grad if isinstance(a, Tensor) and a.requires_grad
                                          else None for a in args)


def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check="default",
               debug=False, preserve_rng_state=True, **kwargs):
    if use_reentrant is None:
        warnings.warn("torch.utils.checkpoint: the use_reentrant parameter should be passed "
                      "explicitly (PyTorch asks for it; both values recompute the same way in "
                      "Kiln)", stacklevel=2)
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
