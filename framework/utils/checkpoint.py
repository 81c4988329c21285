"""torch.utils.checkpoint: activation checkpointing. The forward runs without recording a
graph (its intermediate activations are not kept); backward runs it again with the graph
recorded and backpropagates through that, trading compute for memory. The random state at the
forward is restored for the recomputation (preserve_rng_state), so dropout draws the same masks.
Results and gradients equal an unchecked call's. Both use_reentrant modes recompute the same
way (PyTorch's non-reentrant mode differs in how it hooks saved tensors, not in values)."""
import contextlib
import warnings

from ..autograd import Function, enable_grad, no_grad
from ..tensor import Tensor
from .._dispatch import node_class
from ..amp.autocast_mode import _restored as _ac_restored, _snapshot as _ac_snapshot


class CheckpointError(RuntimeError):
    """A checkpointed region's recomputation disagreed with its forward (torch's class)."""


def noop_context_fn():
    """The default context_fn: no context around the forward or the recomputation."""
    return contextlib.nullcontext(), contextlib.nullcontext()


_EARLY_STOP = [True]
_DEBUG = [None]


@contextlib.contextmanager
def set_checkpoint_early_stop(enable):
    """PyTorch stops a recomputation once it has every tensor backward needs; Kiln's
    recomputation always runs the whole function, so the setting is only recorded."""
    prev, _EARLY_STOP[0] = _EARLY_STOP[0], enable
    try:
        yield
    finally:
        _EARLY_STOP[0] = prev


@contextlib.contextmanager
def set_checkpoint_debug_enabled(enabled):
    """Overrides checkpoint(debug=...) inside (None: defer to the argument). Kiln records it;
    its checkpoint prints no operator traces."""
    prev, _DEBUG[0] = _DEBUG[0], enabled
    try:
        yield
    finally:
        _DEBUG[0] = prev


def detach_variable(inputs):
    """Each tensor of the tuple detached, keeping its requires_grad; other items as they are."""
    if not isinstance(inputs, tuple):
        raise RuntimeError(f"Only tuple of tensors is supported. Got Unsupported input type: "
                           f"{type(inputs).__name__}")
    out = []
    for inp in inputs:
        if isinstance(inp, Tensor):
            x = inp.detach()
            x.requires_grad = inp.requires_grad
            inp = x
        out.append(inp)
    return tuple(out)


def check_backward_validity(inputs):
    if not any(inp.requires_grad for inp in inputs if isinstance(inp, Tensor)):
        warnings.warn("None of the inputs have requires_grad=True. Gradients will be None",
                      stacklevel=2)


def _tensors(args):
    if isinstance(args, Tensor):
        yield args
    elif isinstance(args, (list, tuple)):
        for a in args:
            yield from _tensors(a)
    elif isinstance(args, dict):
        for a in args.values():
            yield from _tensors(a)


def get_device_states(*args):
    """(device ids, their generators' states) of the non-cpu devices the tensors in args
    are on, in order of appearance (repeats kept, as torch)."""
    from .. import cuda
    ids = [t.get_device() for t in _tensors(args) if t.device.type not in ("cpu", "meta")]
    return ids, [cuda.get_rng_state(f"cuda:{i}") for i in ids]


def set_device_states(devices, states, *, device_type=None):
    """Restore the generator states get_device_states returned."""
    if device_type == "meta":
        return
    from .. import cuda
    for d, st in zip(devices, states):
        cuda.set_rng_state(st, f"cuda:{d}")


class CheckpointFunction(Function):
    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, kwargs, *args):
        ctx.run_function, ctx.kwargs = run_function, kwargs
        ctx.rng = None
        ctx.autocast = _ac_snapshot()
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
        from ..autograd import engine
        # torch.autograd._is_checkpoint_valid(): the recomputation backpropagates into .grad,
        # so a pass that must not touch .grad (autograd.grad, backward(inputs=...)) is refused.
        # The engine keeps leaf state only for a plain backward(); it runs create_graph
        # passes with grad mode on, which this cannot tell apart, so those are let through.
        if engine._leaf_state and engine._leaf_state[-1] is None and \
                not autograd.is_grad_enabled():
            raise RuntimeError("When use_reentrant=True, torch.utils.checkpoint is incompatible "
                               "with .grad() or passing an `inputs` parameter to .backward(). To "
                               "resolve this error, you can either set use_reentrant=False, or "
                               "call .backward() without passing the `inputs` argument.")
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
        # under the forward's autocast state (backward runs outside the user's autocast block)
        with enable_grad(), _ac_restored(ctx.autocast), \
                getattr(ctx, "recompute_context", None) or contextlib.nullcontext():
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
    def forward(ctx, run_function, rng, kwargs, others, tensor_at, outs, recompute_context,
                check, autocast, *tensors):
        ctx.run_function, ctx.kwargs, ctx.rng = run_function, kwargs, rng
        ctx.autocast = autocast
        ctx.check = check
        ctx.recompute_context = recompute_context
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
        if ctx.check != "none":
            _check_recomputed(pairs)
        idx = [j for j, t in enumerate(wrt) if t.requires_grad]
        res = [None] * len(wrt)
        if pairs and idx:
            gs = autograd.grad([o for o, _ in pairs], [wrt[j] for j in idx],
                               [g for _, g in pairs], allow_unused=True, create_graph=create)
            for j, g in zip(idx, gs):
                res[j] = g
        return (None,) * 9 + tuple(res)


def _check_recomputed(pairs):
    """determinism_check="default": the recomputation must give tensors of the forward's
    shape, dtype and device (PyTorch compares the saved tensors; Kiln the outputs, whose
    metadata the incoming gradients carry)."""
    bad = []
    for k, (o, g) in enumerate(pairs):
        was = {"shape": g.shape, "dtype": g.dtype, "device": g.device}
        now = {"shape": o.shape, "dtype": o.dtype, "device": o.device}
        if was != now:
            bad.append(f"tensor at position {k}:\nsaved metadata: {was}\n"
                       f"recomputed metadata: {now}\n")
    if bad:
        raise CheckpointError("torch.utils.checkpoint: Recomputed values for the following "
                              "tensors have different metadata than during the forward pass.\n"
                              + "".join(bad))


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


def _checkpoint_non_reentrant(function, preserve_rng_state, kwargs, args, context_fn,
                              determinism_check="default"):
    from ..autograd import is_grad_enabled
    if determinism_check not in ("default", "none"):
        raise ValueError("determinism_check should be one of ['default', 'none'], but got "
                         f"{determinism_check}")
    fwd_context, recompute_context = context_fn()
    if not is_grad_enabled():
        with fwd_context:
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
    with enable_grad(), _hooks_hidden(), fwd_context:   # (a graph dropped at once: saved
        out = function(*ins, **kwargs)      # tensors hooks, as in PyTorch, see only the node below)
    outs = out if isinstance(out, tuple) else (out,)
    leaves = _graph_leaves(outs, [id(ins[i]) for i in tensor_at])
    det = tuple(o.detach() if isinstance(o, Tensor) else o for o in outs)
    out = det if isinstance(out, tuple) else det[0]
    # torch keeps the function's own graph (saved-tensor hooks): the output's grad_fn is the
    # function's last op (MulBackward0), which the checkpoint node takes the name of
    names = [o._node._name for o in outs if isinstance(o, Tensor) and o._node is not None]
    del outs, ins
    r = _NonReentrantCheckpoint.apply(function, rng, kwargs, others, tensor_at, out,
                                      recompute_context, determinism_check, _ac_snapshot(),
                                      *[args[i] for i in tensor_at],
                                      *leaves)
    node = next((o._node for o in (r if isinstance(r, tuple) else (r,))
                 if isinstance(o, Tensor) and o._node is not None), None)
    if names and node is not None:
        node._name = names[0]
        node.__class__ = node_class(names[0])
    return r


def checkpoint(function, *args, use_reentrant=None, context_fn=noop_context_fn,
               determinism_check="default", debug=False, early_stop=True,
               preserve_rng_state=True, **kwargs):
    """context_fn() gives two context managers: the forward runs inside the first, the
    recomputation in backward inside the second (use_reentrant=False only, as in PyTorch)."""
    if use_reentrant is None:
        warnings.warn("torch.utils.checkpoint: the use_reentrant parameter should be passed "
                      "explicitly. Starting in PyTorch 2.9, calling checkpoint without "
                      "use_reentrant will raise an exception. use_reentrant=False is recommended, "
                      "but if you need to preserve the current default behavior, you can pass "
                      "use_reentrant=True. Refer to docs for more details on the differences "
                      "between the two variants.", stacklevel=2)
        use_reentrant = True
    if use_reentrant is not False and (context_fn is not noop_context_fn or debug is not False):
        raise ValueError("Passing `context_fn` or `debug` is only supported when "
                         "use_reentrant=False.")
    if use_reentrant is False:
        return _checkpoint_non_reentrant(function, preserve_rng_state, kwargs, args,
                                         context_fn or noop_context_fn, determinism_check)
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
    if use_reentrant is None:
        warnings.warn("torch.utils.checkpoint.checkpoint_sequential: the use_reentrant parameter "
                      "should be passed explicitly. In version 2.9 we will raise an exception if "
                      "use_reentrant is not passed. use_reentrant=False is recommended, but if "
                      "you need to preserve the current default behavior, you can pass "
                      "use_reentrant=True. Refer to docs for more details on the differences "
                      "between the two variants.", stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
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
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant,
                           preserve_rng_state=preserve)
    return run(end + 1, len(fns) - 1)(input)


# ---- selective activation checkpointing ------------------------------------------------------
# Kiln has no torch.ops.aten namespace. An op is one of Kiln's primitives (what
# framework._dispatch.apply runs; policy_fn receives it, with op.name such as "matmul",
# "add", "exp"), and a list may name primitives by that name or give Kiln functions
# (torch.mm, F.linear, Tensor.__matmul__, your own): every primitive a listed function runs,
# at any depth, is saved. Views are never cached (they cost nothing to recompute).

import enum as _enum
import sys as _sys


class CheckpointPolicy(_enum.Enum):
    MUST_SAVE = 0
    PREFER_SAVE = 1
    MUST_RECOMPUTE = 2
    PREFER_RECOMPUTE = 3


class SelectiveCheckpointContext:
    """What policy_fn gets first: is_recompute tells the forward from the recomputation."""

    def __init__(self, *, is_recompute):
        self.is_recompute = is_recompute


def _saves(policy):
    if isinstance(policy, bool):            # (torch's older bool policies)
        return policy
    if not isinstance(policy, CheckpointPolicy):
        raise TypeError(f"policy_fn must return a CheckpointPolicy, got {policy!r}")
    return policy in (CheckpointPolicy.MUST_SAVE, CheckpointPolicy.PREFER_SAVE)


class _SACState:
    """One checkpointed call: the outputs its forward saved, by position in its sequence of
    primitive calls, for the recomputation to reuse."""

    def __init__(self, policy_fn, codes, names, allow_mutation):
        self.policy_fn, self.codes, self.names = policy_fn, codes, names
        self.allow_mutation = allow_mutation
        self.cache = {}         # call index -> (prim name, arrays, aliases, versions, multi)


def _listed(st, p):
    if p.name in st.names:
        return True
    if not st.codes:
        return False
    f = _sys._getframe(3)
    stop = (_checkpoint_non_reentrant.__code__, _rerun.__code__)
    while f is not None and f.f_code not in stop:
        if f.f_code in st.codes:
            return True
        f = f.f_back
    return False


class _SACMode:
    """The forward or the recompute context: a hook on framework._dispatch.apply (its
    PROFILE slot, chained to a running profiler's hook)."""

    def __init__(self, state, is_recompute):
        self.state, self.is_recompute = state, is_recompute
        self.ctx = SelectiveCheckpointContext(is_recompute=is_recompute)

    def __enter__(self):
        from .. import _dispatch
        self.k = 0
        self.prev = _dispatch.PROFILE
        _dispatch.PROFILE = self._hook
        return self

    def __exit__(self, *exc):
        from .. import _dispatch
        _dispatch.PROFILE = self.prev
        if self.is_recompute:
            self.state.cache.clear()
        return False

    def _call(self, p, args, attrs):
        from .. import _dispatch
        _dispatch.PROFILE = self.prev
        try:
            return _dispatch.apply(p, *args, **attrs)
        finally:
            _dispatch.PROFILE = self._hook

    def _hook(self, p, args, attrs):
        from .. import _dispatch
        st = self.state
        if _dispatch.STATE.tracer is not None or p.kind == "view":
            return self._call(p, args, attrs)
        k = self.k
        self.k += 1
        if not self.is_recompute:
            save = _listed(st, p) if st.policy_fn is None else \
                _saves(st.policy_fn(self.ctx, p, *args, **attrs))
            out = self._call(p, args, attrs)
            if save:
                outs = out if isinstance(out, tuple) else (out,)
                if all(isinstance(o, Tensor) for o in outs):
                    # detached aliases: no graph kept, the version counter shared
                    alias = tuple(o.detach() for o in outs)
                    st.cache[k] = (p.name, tuple(o._data for o in outs), alias,
                                   tuple(a._version for a in alias), isinstance(out, tuple))
            return out
        if st.policy_fn is not None:
            st.policy_fn(self.ctx, p, *args, **attrs)      # (called in both, as torch does)
        hit = st.cache.pop(k, None)
        if hit is None:
            return self._call(p, args, attrs)
        name, datas, alias, versions, multi = hit
        if name != p.name:
            raise CheckpointError(f"torch.utils.checkpoint: the recomputation ran primitive "
                                  f"{p.name!r} where the forward ran {name!r} (call {k}): "
                                  f"the checkpointed function must run the same ops again")
        if not st.allow_mutation:
            for a, v in zip(alias, versions):
                if a._version != v:
                    raise RuntimeError(f"Tensor cached during selective activation checkpoint "
                                       f"has been mutated (the output of {p.name}; set "
                                       f"allow_cache_entry_mutation=True to allow it)")
        # the saved values stand in for the computation; the node is recorded as apply would
        meta = p.meta(*args, **attrs)
        metas = meta if multi else (meta,)
        outs = tuple(_dispatch.wrap(d, m.dtype) for d, m in zip(datas, metas))
        if _dispatch.STATE.grad_enabled and p.differentiable and _dispatch._needs_grad(args):
            _dispatch.record(p, args, attrs, outs)
        return outs if multi else outs[0]


def create_selective_checkpoint_contexts(policy_fn_or_list, allow_cache_entry_mutation=False):
    """context_fn for checkpoint(..., use_reentrant=False): the outputs of the ops the policy
    saves (MUST_SAVE / PREFER_SAVE) are kept from the forward and reused, not recomputed, in
    backward. policy_fn_or_list: policy_fn(ctx, op, *args, **kwargs) -> CheckpointPolicy (op
    is a Kiln primitive, op.name e.g. "matmul"), or a list of Kiln functions / primitive
    names to save (see the note above)."""
    policy_fn, codes, names = None, set(), set()
    if isinstance(policy_fn_or_list, (list, tuple)):
        for op in policy_fn_or_list:
            if isinstance(op, str):
                names.add(op)
            elif hasattr(getattr(op, "__func__", op), "__code__"):
                from ..overrides import unwrap
                codes.add(unwrap(getattr(op, "__func__", op)).__code__)
            else:
                raise ValueError(f"Expected op in `op_list` to be a Kiln op function or a "
                                 f"primitive name, but got {op} of type {type(op)}")
    elif callable(policy_fn_or_list):
        policy_fn = policy_fn_or_list
    else:
        raise TypeError("policy_fn_or_list must be either a function or a list of ops.")
    st = _SACState(policy_fn, codes, names, allow_cache_entry_mutation)
    return _SACMode(st, False), _SACMode(st, True)
