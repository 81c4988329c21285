"""torch.cond and torch.while_loop, run eagerly (PyTorch 2.13 semantics).

cond with a Python bool runs the chosen branch as is (torch does the same). With a tensor
predicate both branches run, as torch traces both: the taken one on clones of the operands (so
a branch that mutates or returns an operand is detected and the caller's data stays unchanged;
gradients reach the operands through the clones), the other under no_grad only to check that
both return the same structure and dtypes. Under compile() a traced predicate selects with
torch.where between the two traced branches, so there is no graph break (equal shapes are
required there; else bool(pred) breaks the graph). Gradients of the operands are exact even
where the untaken branch's are undefined; a tensor a branch reads from its closure gets the
untaken branch's gradient times zero, NaN if that is infinite. while_loop runs eagerly; under compile()
reading its tensor condition is a graph break."""
from ._dispatch import STATE
from .tensor import Tensor
from .func import _pytree


def _alias_base(t):
    return t._base if t._base is not None else t


def _check_branch_io(name, fn_name, ins, outs, versions):
    for t, v in zip(ins, versions):
        if t._version != v:
            raise RuntimeError(f"{name}: {fn_name} mutates one of its inputs in place "
                               "(input mutation is not supported in higher order ops)")
    bases = {id(_alias_base(t)) for t in ins}
    for o in outs:
        if isinstance(o, Tensor) and id(_alias_base(o)) in bases:
            raise RuntimeError(f"{name}: {fn_name} returns an input or a view of one (aliasing "
                               "is not supported in higher order ops); return input.clone() "
                               "instead")


def _check_operands(operands):
    if not isinstance(operands, (tuple, list)) or \
            not all(isinstance(o, Tensor) for o in _pytree.flatten(list(operands))[0]):
        raise RuntimeError("Expect operands to be a tuple of possibly nested dict/list/tuple "
                           f"that only consists of tensor leaves, but got {operands}.")


def _run_isolated(name, fn_name, fn, operands):
    """fn on clones of the tensor operands (autograd flows through the clone), checking that it
    neither mutates nor returns them."""
    leaves, spec = _pytree.flatten(list(operands))
    clones = [t.clone() for t in leaves]
    versions = [c._version for c in clones]
    out = fn(*_pytree.unflatten(clones, spec))
    _check_branch_io(name, fn_name, clones, _pytree.flatten(out)[0], versions)
    return out


def cond(pred, true_fn, false_fn, operands=()):
    if isinstance(pred, bool):
        return true_fn(*operands) if pred else false_fn(*operands)
    if not isinstance(pred, Tensor):
        raise RuntimeError(f"Expected pred to be bool or tensor, but got {pred}.")
    if pred.numel() != 1:
        raise RuntimeError(f"Expected pred to be bool or single-element tensor, but got {pred}.")
    _check_operands(operands)
    from ._compile.lazy import SymArray
    traced = STATE.tracer is not None and type(pred._data) is SymArray
    if traced:
        # both branches traced, the result selected by where: no graph break. Each branch
        # sees its operands through a where too, whose gradient selects (not multiplies): the
        # untaken branch's gradient, NaN where it is undefined (sqrt of a negative), is
        # dropped before it reaches the operands
        from .ops_math import where
        p = pred.reshape(()).bool()
        leaves, spec = _pytree.flatten(list(operands))
        t_ops = _pytree.unflatten([where(p, t, t.detach()) if t.requires_grad else t
                                   for t in leaves], spec)
        f_ops = _pytree.unflatten([where(p, t.detach(), t) if t.requires_grad else t
                                   for t in leaves], spec)
        t_out = _run_isolated("torch.cond", "true_fn", true_fn, t_ops)
        f_out = _run_isolated("torch.cond", "false_fn", false_fn, f_ops)
        t_l, t_s = _pytree.flatten(t_out)
        f_l, f_s = _pytree.flatten(f_out)
        _check_merge(t_l, t_s, f_l, f_s)
        if all(isinstance(a, Tensor) and a.shape == b.shape for a, b in zip(t_l, f_l)):
            return _pytree.unflatten([where(p, a, b) for a, b in zip(t_l, f_l)], t_s)
        return t_out if bool(pred) else f_out      # different shapes: graph break
    take = bool(pred)
    fn, other = (true_fn, false_fn) if take else (false_fn, true_fn)
    out = _run_isolated("torch.cond", "true_fn" if take else "false_fn", fn, operands)
    prev = STATE.grad_enabled
    STATE.grad_enabled = False
    try:
        o2 = _run_isolated("torch.cond", "false_fn" if take else "true_fn", other, operands)
    finally:
        STATE.grad_enabled = prev
    a, b = (out, o2) if take else (o2, out)
    (t_l, t_s), (f_l, f_s) = _pytree.flatten(a), _pytree.flatten(b)
    _check_merge(t_l, t_s, f_l, f_s)
    return out


def _check_merge(t_l, t_s, f_l, f_s):
    if t_s != f_s:
        raise RuntimeError(f"Unmatched output spec from torch.cond branches: true branch "
                           f"tree_spec {t_s} vs false branch tree_spec {f_s}.")
    for a, b in zip(t_l, f_l):
        if isinstance(a, Tensor) != isinstance(b, Tensor):
            raise RuntimeError("torch.cond: both branches must return tensors at the same "
                               f"positions, got {type(a).__name__} and {type(b).__name__}")
        if isinstance(a, Tensor) and a.dtype != b.dtype:
            raise RuntimeError("When merging two branches' output in torch.cond,  expected "
                               f"same dtype but got {a.dtype} and {b.dtype}.")


def _check_pred(p):
    if isinstance(p, Tensor):
        if p.numel() != 1:
            raise RuntimeError("torch.while_loop: unsupported cond_fn return type. Expected "
                               f"cond_fn to return a scalar tensor or a bool but got {p.shape}.")
        return bool(p)
    if isinstance(p, bool):
        return p
    raise RuntimeError("torch.while_loop: unsupported cond_fn return type. Expected cond_fn to "
                       f"return a scalar tensor or a bool but got {type(p).__name__}.")


def while_loop(cond_fn, body_fn, carried_inputs):
    if not isinstance(carried_inputs, (tuple, list)):
        raise RuntimeError("carried_inputs must be a tuple or list, got "
                           f"{type(carried_inputs)}")
    leaves, spec = _pytree.flatten(list(carried_inputs))
    for x in leaves:
        if not isinstance(x, (Tensor, int, float, bool)):
            raise RuntimeError("carried_inputs must be a tuple or list of tensors, ints, floats, "
                               f"or bools, got {type(x).__name__}")
    # the loop owns copies: a body that writes its inputs cannot change the caller's tensors
    cur = [x.clone() if isinstance(x, Tensor) else x for x in leaves]
    out = tuple(_pytree.unflatten(cur, spec))
    res, first = out, True
    while True:
        p = cond_fn(*out)
        if isinstance(p, bool) and p and first and all(isinstance(x, Tensor) for x in leaves):
            raise RuntimeError("torch.while_loop: infinite loop detected. Infinite loop detected "
                               "because while_loop's cond_fn always returns the same value True.")
        first = False
        if not _check_pred(p):
            return res
        ins = [x for x in _pytree.flatten(list(out))[0] if isinstance(x, Tensor)]
        versions = [x._version for x in ins]
        new = body_fn(*out)
        new_l, _ = _pytree.flatten(new if isinstance(new, (tuple, list)) else (new,))
        _check_branch_io("torch.while_loop", "body_fn", ins, new_l, versions)
        _check_carried(new_l, leaves)
        res = new       # (a body returning a bare tensor for one carried value: torch too)
        out = tuple(new) if isinstance(new, (tuple, list)) else (new,)


def _check_carried(new_l, leaves):
    if len(new_l) != len(leaves):
        raise RuntimeError("Expected body_fn_output and carried_inputs to have same number of "
                           f"outputs but got lhs:{new_l} and rhs:{leaves}")
    for i, (a, b) in enumerate(zip(new_l, leaves)):
        if isinstance(a, Tensor) != isinstance(b, Tensor):
            raise RuntimeError("Expected body_fn_output and carried_inputs to have same metadata "
                               f"but found:\npair[{i}] differ in type: {type(a).__name__} vs "
                               f"{type(b).__name__}")
        if not isinstance(a, Tensor):
            continue
        for what, x, y in (("shape", a.shape, b.shape), ("dtype", a.dtype, b.dtype)):
            if x != y:
                raise RuntimeError("Expected body_fn_output and carried_inputs to have same "
                                   f"metadata but found:\npair[{i}] differ in '{what}: {x} vs "
                                   f"{y}'")
