"""torch.func: grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian, functional_call,
stack_module_state.

The derivative transforms run Kiln's autograd on the real ("physical") tensors. Inside vmap an
argument is brought to its physical form with a batch dim for every running vmap level (an
unbatched one is expanded): samples never mix under batching rules, so the gradient of the sum
of the per-sample outputs with respect to that physical leaf is, row by row, each sample's
gradient -- per-sample gradients from one backward pass. When an argument already requires
grad (an outer transform differentiates through this one), the graph is kept
(create_graph=True) so the outer transform sees it: grad of grad, jacrev of jacrev.

jacfwd and jvp give forward-mode results computed in reverse mode (jacfwd = jacrev's Jacobian,
identical values; jvp by the double-vjp trick), which is exact but not forward-mode cost.
"""
import functools

from .. import autograd
from ..autograd.graph import doesnt_support_saved_tensors_hooks, _hooks_hidden
from ..autograd.function import in_transform
from ..tensor import Tensor
from . import _batched, _pytree
from .vmap import active_levels


# ---- physical form under the running vmap levels ------------------------------------------------

def to_phys(x, levels):
    """x with a leading batch dim per level (outermost first), as one unbatched tensor."""
    for lvl, B in reversed(levels):
        v, bd = _batched.unwrap(x, lvl)
        if bd is None:
            x = x.unsqueeze(0).expand(B, *x.shape)
        else:
            x = v.movedim(bd, 0) if bd else v
    return x


def from_phys(t, levels):
    for lvl, _ in levels:
        t = _batched.make(t, 0, lvl)
    return t


def _leaf(p):
    """A tensor to differentiate with respect to: p itself stays connected when an outer
    transform differentiates it (a view records the link); else a fresh leaf."""
    if p.requires_grad:
        return p.view_as(p), True
    return p.detach().requires_grad_(True), False


def _argnums_check(name, argnums, nargs):
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    if not nums:
        raise RuntimeError(f"{name}: argnums must be non-empty")
    for a in nums:
        if not isinstance(a, int) or isinstance(a, bool):
            raise RuntimeError(f"{name}: argnums must be int or Tuple[int, ...], got: "
                               f"{type(a)}")
        if not -nargs <= a < nargs:
            raise RuntimeError(f"Got argnum={a}, but only {nargs} positional inputs")
    return tuple(a % nargs for a in nums)


def _prepare(name, args, argnums, levels):
    """Replace args[argnums] by differentiable stand-ins. Returns (new args, physical leaves,
    pytree spec of the differentiated part, whether to keep the graph)."""
    nums = _argnums_check(name, argnums, len(args))
    diff = tuple(args[i] for i in nums) if isinstance(argnums, tuple) else args[nums[0]]
    leaves, spec = _pytree.flatten(diff)
    phys, keep = [], False
    for x in leaves:
        if not isinstance(x, Tensor):
            # torch's _create_differentiable raises ValueError for a non-Tensor input
            raise ValueError(f"Thing passed to transform API must be Tensor, got {type(x)}")
        if not (x.dtype.is_floating_point or x.dtype.is_complex):
            raise RuntimeError(f"{name}: only Tensors of floating point dtype can require "
                               f"gradients (got {x.dtype})")
        p, k = _leaf(to_phys(x, levels))
        phys.append(p)
        keep = keep or k
    new = _pytree.unflatten([from_phys(p, levels) for p in phys], spec)
    args = list(args)
    if isinstance(argnums, tuple):
        for i, v in zip(nums, new):
            args[i] = v
    else:
        args[nums[0]] = new
    return args, phys, spec, keep


def _outer_graph(outs, phys):
    """Whether outs depend on a tensor that requires grad other than this transform's own
    leaves (a parameter func closes over): torch.func then keeps the caller's graph, so the
    results stay differentiable with respect to it."""
    own = {id(p) for p in phys}
    seen, stack = set(), []
    for o in outs:
        if o.requires_grad:
            if o._node is None:
                if id(o) not in own:
                    return True
            else:
                stack.append(o._node)
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        for e in n.edges:
            if e is None:
                continue
            if e[0] is None:
                if id(e[1]) not in own:
                    return True
            else:
                stack.append(e[0])
    return False


def _detach_aux(aux, keep):
    return _pytree.tree_map(lambda a: a.detach() if isinstance(a, Tensor) and not keep else a,
                            aux)


def _check_aux(aux):
    """has_aux: torch hands aux back through _undo_create_differentiable, which accepts only
    Tensors (in tuples, lists, dicts) and raises RuntimeError for anything else."""
    for a in _pytree.flatten(aux)[0]:
        if not isinstance(a, Tensor):
            raise RuntimeError(f"Expected tensors, got unsupported type {type(a)}")
    return aux


def _zeros_for(p):
    from ..creation import zeros_like
    return zeros_like(p)


def _grads(outs, inputs, gos, keep):
    """autograd.grad that tolerates outputs without a graph (zero gradients)."""
    pairs = [(o, g) for o, g in zip(outs, gos) if o.requires_grad]
    if not pairs:
        return [_zeros_for(p) for p in inputs]
    res = autograd.grad([o for o, _ in pairs], inputs, [g for _, g in pairs],
                        retain_graph=True, create_graph=keep, allow_unused=True)
    return [_zeros_for(p) if r is None else r for r, p in zip(res, inputs)]


# ---- grad / vjp ------------------------------------------------------------------------------------

def grad_and_value(func, argnums=0, has_aux=False):
    @functools.wraps(func)
    @doesnt_support_saved_tensors_hooks
    def wrapper(*args, **kwargs):
        levels = active_levels()
        outer = autograd.is_grad_enabled()
        with autograd.enable_grad():
            args2, phys, spec, keep = _prepare("grad_and_value(f)(*args)", args, argnums, levels)
            with in_transform():
                out = func(*args2, **kwargs)
            aux = None
            if has_aux:
                if not (isinstance(out, tuple) and len(out) == 2):
                    raise RuntimeError("grad_and_value(f)(*args): output of function f should be "
                                       "a tuple: (output, aux) if has_aux is True")
                out, aux = out
                _check_aux(aux)
            if not isinstance(out, Tensor):
                raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a "
                                   f"Tensor, got {type(out)}")
            if out.dim() != 0:
                raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a "
                                   f"scalar Tensor, got tensor with {out.dim()} dims. Maybe you "
                                   f"wanted to use the vjp or jacrev APIs instead?")
            if out.dtype.is_complex:
                raise RuntimeError(f"grad can be implicitly created only for real scalar outputs "
                                   f"but got {out.dtype}")
            o = to_phys(out, levels)
            keep = keep or outer and _outer_graph([o], phys)
            from ..creation import ones_like
            gs = _grads([o], phys, [ones_like(o)], keep)
        grads = _pytree.unflatten([from_phys(g, levels) for g in gs], spec)
        value = out if keep else from_phys(o.detach(), levels)
        if has_aux:
            return grads, (value, _detach_aux(aux, keep))
        return grads, value
    return wrapper


def grad(func, argnums=0, has_aux=False):
    """torch.func.grad: the gradient of a scalar-valued func with respect to args[argnums]."""
    gv = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g, v = gv(*args, **kwargs)
        return (g, v[1]) if has_aux else g
    return wrapper


@doesnt_support_saved_tensors_hooks
def vjp(func, *primals, has_aux=False):
    """torch.func.vjp: (func(*primals), vjp_fn[, aux]); vjp_fn(cotangents) -> tuple of
    cotangents for the primals."""
    levels = active_levels()
    outer = autograd.is_grad_enabled()
    with autograd.enable_grad():
        args, phys, spec, keep = _prepare("vjp(f, *primals)", primals,
                                          tuple(range(len(primals))), levels)
        with in_transform():
            out = func(*args)
        aux = None
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise RuntimeError("vjp(f, *primals): output of function f should be a tuple: "
                                   "(output, aux) if has_aux is True")
            out, aux = out
            _check_aux(aux)
        oflat, ospec = _pytree.flatten(out)
        for o in oflat:
            if not isinstance(o, Tensor):
                raise RuntimeError(f"vjp(f, *primals): Expected f(*primals) to return only "
                                   f"tensors, got unsupported type {type(o)}")
        ophys = [to_phys(o, levels) for o in oflat]
        keep = keep or outer and _outer_graph(ophys, phys)

    def vjp_fn(cotangents, retain_graph=True, create_graph=None):
        cflat, cspec = _pytree.flatten(cotangents)
        if cspec != ospec:
            raise RuntimeError("Expected pytree structure of cotangents to be the same as pytree "
                               "structure of outputs to the function.")
        cur = active_levels()
        if cur != levels:
            raise RuntimeError("vjp_fn: calling vjp_fn under a vmap that was not running when "
                               "vjp was called is not supported by Kiln; call vjp inside it")
        with autograd.enable_grad():
            cphys = []
            for c, o in zip(cflat, oflat):
                if tuple(c.shape) != tuple(o.shape):
                    raise RuntimeError(f"Mismatch in shape: grad_output[0] has a shape of "
                                       f"{c.shape} and output[0] has a shape of {o.shape}.")
                cphys.append(to_phys(c, levels))
            gs = _grads(ophys, phys, cphys, keep or bool(create_graph))
        return tuple(_pytree.unflatten([from_phys(g, levels) for g in gs], spec))

    value = out if keep else _pytree.unflatten(
        [from_phys(o.detach(), levels) for o in ophys], ospec)
    if has_aux:       # (as grad's: cut from this transform's own leaves)
        return value, vjp_fn, _detach_aux(aux, keep)
    return value, vjp_fn


def jvp(func, primals, tangents, *, strict=False, has_aux=False):
    """torch.func.jvp: (func(*primals), J @ tangents), by the double-vjp trick: the vjp is
    linear in its cotangent u, so differentiating <vjp(u), t> with respect to u gives J t.
    Forward mode saves nothing in PyTorch: saved tensors hooks do not see the reverse-mode
    graph used here."""
    with _hooks_hidden():
        return _jvp(func, primals, tangents, strict=strict, has_aux=has_aux)


def _jvp(func, primals, tangents, *, strict=False, has_aux=False):
    if not isinstance(primals, tuple):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals to be a tuple. E.g. it "
                           "should be valid to call f(*primals).")
    if not isinstance(tangents, tuple) or len(tangents) != len(primals):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to have "
                           "the same python structure.")
    levels = active_levels()
    pl, pspec = _pytree.flatten(primals)
    tl, tspec = _pytree.flatten(tangents)
    if pspec != tspec:
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to have "
                           "the same python structure.")
    for p, t in zip(pl, tl):
        if tuple(p.shape) != tuple(t.shape):
            raise RuntimeError(f"jvp(f, primals, tangents): Expected primals and tangents to "
                               f"have the same shape, got {tuple(p.shape)} and "
                               f"{tuple(t.shape)}.")
    outer = autograd.is_grad_enabled()
    with autograd.enable_grad():
        args, phys, spec, keep = _prepare("jvp(f, primals, tangents)", primals,
                                          tuple(range(len(primals))), levels)
        with in_transform():
            out = func(*args)
        aux = None
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise RuntimeError("jvp(f, primals, tangents): output of function f should be a "
                                   "tuple: (output, aux) if has_aux is True")
            out, aux = out
            _check_aux(aux)
        oflat, ospec = _pytree.flatten(out)
        ophys = [to_phys(o, levels) for o in oflat]
        keep = keep or outer and _outer_graph(
            [o for o in ophys if isinstance(o, Tensor)], phys)
        # an integer or bool output has no tangent but zeros of its dtype (as torch's)
        fl = [i for i, o in enumerate(ophys) if o.dtype.is_floating_point or o.dtype.is_complex]
        us = [_zeros_for(ophys[i]).requires_grad_(True) for i in fl]
        gs = _grads([ophys[i] for i in fl], phys, us, True) if fl else []
        tphys = [to_phys(t, levels) for t in tl]
        pairs = [(g, t) for g, t in zip(gs, tphys) if g.requires_grad]
        if pairs:
            got = autograd.grad([g for g, _ in pairs], us, [t for _, t in pairs],
                                retain_graph=True, create_graph=keep, allow_unused=True)
            got = [_zeros_for(u) if r is None else r for r, u in zip(got, us)]
        else:
            got = [_zeros_for(u) for u in us]
        res = [_zeros_for(o) for o in ophys]
        for i, r in zip(fl, got):
            res[i] = r
    value = out if keep else _pytree.unflatten(
        [from_phys(o.detach(), levels) for o in ophys], ospec)
    tout = _pytree.unflatten([from_phys(r if keep else r.detach(), levels) for r in res], ospec)
    if has_aux:
        return value, tout, _detach_aux(aux, keep)
    return value, tout


def linearize(func, *primals):
    """torch.func.linearize: (func(*primals), jvp_fn) with jvp_fn(*tangents) = J @ tangents at
    primals. torch traces the jvp once into a graph; here each jvp_fn call runs jvp again
    (same values)."""
    output = func(*primals)
    flat_primals, pspec = _pytree.flatten(primals)
    meta = [(tuple(p.shape), p.device, p.dtype) for p in flat_primals]

    def jvp_fn(*tangents):
        flat_t, tspec = _pytree.flatten(tangents)
        if tspec != pspec:
            raise RuntimeError(f"Expected the tangents {tspec} to have the same argspec as the "
                               f"primals {pspec}")
        for idx, (t, (shape, device, dtype)) in enumerate(zip(flat_t, meta)):
            for what, got, want in (("shape", tuple(t.shape), shape),
                                    ("device", t.device, device), ("dtype", t.dtype, dtype)):
                if got != want:
                    raise RuntimeError(f"tangent:{idx} with {what} {got} in flattened pytree "
                                       f"doesn't match the {what} {want} of the corresponding "
                                       f"primal.")
        return _jvp(func, tuple(primals), tuple(tangents))[1]
    return output, jvp_fn


# ---- Jacobians ---------------------------------------------------------------------------------

def jacrev(func, argnums=0, *, has_aux=False, chunk_size=None, _preallocate_and_copy=False):
    """torch.func.jacrev: d func(*args) / d args[argnums], one vjp per output element.
    Result: output structure outside, argnums structure inside; each block has shape
    output.shape + input.shape."""
    if not (chunk_size is None or chunk_size > 0):
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")

    @functools.wraps(func)
    def wrapper(*args):
        nums = _argnums_check("jacrev", argnums, len(args))

        def f_of_diff(*diff):
            a = list(args)
            for i, v in zip(nums, diff):
                a[i] = v
            return func(*a)
        r = vjp(f_of_diff, *[args[i] for i in nums], has_aux=has_aux)
        out, vjp_fn = r[0], r[1]
        oflat, ospec = _pytree.flatten(out)
        from ..creation import zeros
        from ..ops_shape import stack
        blocks = []
        for k, o in enumerate(oflat):
            n = o.numel()
            rows = []
            for i in range(n):
                cts = []
                for j, oo in enumerate(oflat):
                    e = zeros(oo.numel(), dtype=oo.dtype, device=oo.device)
                    if j == k:
                        e[i] = 1
                    cts.append(e.reshape(oo.shape))
                rows.append(vjp_fn(_pytree.unflatten(cts, ospec)))
            per_input = []
            for m in range(len(nums)):
                gl, gspec = _pytree.flatten(rows[0][m]) if rows else _pytree.flatten(
                    args[nums[m]])
                cols = []
                for q, g in enumerate(gl):
                    if n:
                        J = stack([_pytree.flatten(rw[m])[0][q] for rw in rows])
                    else:
                        J = zeros(0, *g.shape, dtype=o.dtype, device=o.device)
                    cols.append(J.reshape(*(tuple(o.shape) + tuple(g.shape))))
                per_input.append(_pytree.unflatten(cols, gspec))
            blocks.append(tuple(per_input) if isinstance(argnums, tuple) else per_input[0])
        J = _pytree.unflatten(blocks, ospec)
        if has_aux:
            return J, r[2]
        return J
    return wrapper


def jacfwd(func, argnums=0, has_aux=False, *, randomness="error"):
    """torch.func.jacfwd: the same Jacobian as jacrev (computed in reverse mode: the values are
    exact, the cost is one vjp per output element rather than one jvp per input element).
    randomness='error' (the default, as torch's vmap over the tangents) refuses random ops in
    func; 'same' and 'different' both draw once (one draw serves every tangent here)."""
    from .vmap import check_randomness, random_guard
    check_randomness(randomness)
    jr = jacrev(func, argnums, has_aux=has_aux)

    @functools.wraps(func)
    def wrapper(*args):
        with random_guard(randomness), _hooks_hidden():     # (forward mode saves nothing)
            return jr(*args)
    return wrapper


def hessian(func, argnums=0):
    """torch.func.hessian: jacfwd(jacrev(func, argnums), argnums)."""
    return doesnt_support_saved_tensors_hooks(jacfwd(jacrev(func, argnums), argnums))


# ---- modules as functions -------------------------------------------------------------------------

def _untie(module, pb):
    """Give every name tied to a given name (same Parameter/buffer object) the same value."""
    groups = {}
    for n, t in list(module.named_parameters(remove_duplicate=False)) + \
            list(module.named_buffers(remove_duplicate=False)):
        groups.setdefault(id(t), []).append(n)
    out = dict(pb)
    for names in groups.values():
        if len(names) < 2:
            continue
        given = [n for n in names if n in pb]
        if not given:
            continue
        if len({id(pb[n]) for n in given}) != 1:
            raise ValueError(f"functional_call got multiple values for keys {sorted(names)}, "
                             f"which are tied. Consider using tie_weights=False")
        for n in names:
            out[n] = pb[given[0]]
    return out


def _owner(module, name):
    *path, attr = name.split(".")
    m = module
    for p in path:
        m = getattr(m, p)
    return m, attr


def _check_keys(module, parameters_and_buffers, tie_weights):
    """torch's strict check: the given names (with their tied aliases when tie_weights) against
    every parameter and buffer name, duplicates included."""
    named = list(module.named_parameters(remove_duplicate=False)) + \
        list(module.named_buffers(remove_duplicate=False))
    keys = set(parameters_and_buffers)
    if tie_weights:
        groups = {}
        for n, t in named:
            groups.setdefault(id(t), set()).add(n)
        for names in groups.values():
            if len(names) > 1 and names & keys:
                keys |= names
    valid = {n for n, _ in named}
    missing, unexpected = sorted(valid - keys), sorted(keys - valid)
    error_msgs = []
    if unexpected:
        error_msgs.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
    if missing:
        error_msgs.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
    if error_msgs:
        raise RuntimeError("Error(s) in reparametrizing for {}:\n\t{}".format(
            module._get_name(), "\n\t".join(error_msgs)))


def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *,
                    tie_weights=True, strict=False):
    """torch.func.functional_call: module(*args, **kwargs) with its parameters and buffers
    replaced by the given tensors for this call only."""
    if isinstance(parameter_and_buffer_dicts, dict):
        pb = dict(parameter_and_buffer_dicts)
    elif isinstance(parameter_and_buffer_dicts, (list, tuple)):
        if not all(isinstance(d, dict) for d in parameter_and_buffer_dicts):
            raise ValueError("Expected all elements of parameter_and_buffer_dicts to be "
                             "dictionaries")
        seen, rep = set(), []
        for d in parameter_and_buffer_dicts:
            for k in d:
                if k in seen:
                    rep.append(k)
                seen.add(k)
        if rep:
            raise ValueError(f"{rep} appeared in multiple dictionaries; behavior of functional "
                             f"call is ambiguous")
        pb = {k: v for d in parameter_and_buffer_dicts for k, v in d.items()}
    else:
        raise ValueError(f"Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of "
                         f"dicts, but got {type(parameter_and_buffer_dicts)}")
    if tie_weights:
        pb = _untie(module, pb)
    if strict:
        _check_keys(module, pb, tie_weights)
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    saved = []
    try:
        for name, t in pb.items():
            m, attr = _owner(module, name)
            # swap the stored entry directly: a plain tensor may stand in for a Parameter
            for store in ("_parameters", "_buffers"):
                d = m.__dict__[store]
                if attr in d:
                    saved.append((d, attr, d[attr], True))
                    d[attr] = t
                    break
            else:
                saved.append((m.__dict__, attr, m.__dict__.get(attr, _MISSING), False))
                m.__dict__[attr] = t
        return module(*args, **(kwargs or {}))
    finally:
        for d, attr, old, _ in reversed(saved):
            if old is _MISSING:
                d.pop(attr, None)
            else:
                d[attr] = old


_MISSING = object()


def stack_module_state(models):
    """torch.func.stack_module_state: (params, buffers) with each entry stacked over models
    (params as new leaves that require grad like the originals)."""
    models = list(models)
    if len(models) == 0:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or all(not m.training for m in models)):
        raise RuntimeError("stack_module_state: Expected all models to have the same "
                           "training/eval mode.")
    t0 = type(models[0])
    if not all(type(m) is t0 for m in models):
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")
    from ..ops_shape import stack
    all_p = [dict(m.named_parameters()) for m in models]
    params = {k: stack([p[k].detach() for p in all_p]).requires_grad_(all_p[0][k].requires_grad)
              for k in all_p[0]}
    all_b = [dict(m.named_buffers()) for m in models]
    buffers = {k: stack([b[k].detach() for b in all_b]) for k in all_b[0]}
    return params, buffers


def replace_all_batch_norm_modules_(root):
    """torch.func.replace_all_batch_norm_modules_: every BatchNorm module in root (root
    included) stops tracking running stats (running_mean, running_var, num_batches_tracked set
    to None), so vmap can run it in training mode without batched buffers; returns root."""
    from ..nn.modules.normalization import _BatchNorm
    for m in root.modules():
        if isinstance(m, _BatchNorm) and m.track_running_stats:
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None
            m.track_running_stats = False
    return root
