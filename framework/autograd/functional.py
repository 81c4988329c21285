"""torch.autograd.functional: vjp, jvp, jacobian, hessian, hvp, vhp, all built on the reverse
transform (jvp by the double-vjp trick: the vjp is linear in its cotangent, so differentiating
it with respect to that cotangent gives J v)."""
import numpy as np

from ..tensor import Tensor
from .._dispatch import STATE
from .._dispatch import wrap as _wrap


def wrap(arr, dtype, like=None):
    """A tensor of host array `arr` on `like`'s device (cotangents and zeros beside inputs)."""
    t = _wrap(arr, dtype)
    return t if like is None or like._device is t._device else t.to(like._device)


def _tup(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outs(out, fn):
    """func's outputs as a tuple; anything but tensors is PyTorch's TypeError."""
    is_tuple = isinstance(out, tuple)
    for i, o in enumerate(out if is_tuple else (out,)):
        if not isinstance(o, Tensor):
            where = f"the value at index {i}" if is_tuple else \
                "the given outputs of the user-provided function"
            raise TypeError(f"The outputs of the user-provided function given to {fn} must be "
                            f"either a Tensor or a tuple of Tensors but {where} has type "
                            f"{type(o)}.")
    return out if is_tuple else (out,)


def _check_v(v, other, other_is_tuple):
    """PyTorch's _validate_v: one v per output (vjp) or input (jvp, vhp), of its size."""
    vs = _tup(v)
    if len(vs) != len(other):
        if other_is_tuple:
            raise RuntimeError(f"v is a tuple of invalid length: should be {len(other)} but got "
                               f"{len(vs)}.")
        raise RuntimeError("The given v should contain a single Tensor.")
    for i, (a, b) in enumerate(zip(vs, other)):
        if tuple(a.shape) != tuple(b.shape):
            pre = f"Entry {i} in " if other_is_tuple else ""
            raise RuntimeError(f"{pre}v has invalid size: should be {b.shape} but got "
                               f"{a.shape}.")
    return vs


def _v_none(ins):
    if len(ins) != 1 or ins[0].numel() != 1:
        raise RuntimeError("The vector v can only be None if the input to the user-provided "
                           "function is a single Tensor with a single element.")
    return (_ones_like(ins[0]),)


def _prep(inputs, create_graph):
    # fresh leaves, so the caller's tensors gather no .grad; with create_graph they stay
    # connected to the caller's graph (as in PyTorch)
    res = []
    for x in _tup(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"The inputs given to autograd.functional must be tensors, got "
                            f"{type(x).__name__}")
        res.append(x if (create_graph and x.requires_grad) else x.detach().requires_grad_(True))
    return tuple(res)


def _zeros(x):
    return wrap(np.zeros(x._data.shape, x._dtype.np), x._dtype, x)


def _grad(outs, ins, gos, create_graph, retain_graph=None):
    """autograd.grad that gives zeros for inputs the outputs do not depend on (and for outputs
    that do not require grad at all)."""
    from . import grad
    pairs = [(o, g) for o, g in zip(outs, gos) if o.requires_grad]
    if not pairs:
        return tuple(_zeros(x) for x in ins)
    return grad([p[0] for p in pairs], list(ins), [p[1] for p in pairs],
                retain_graph=retain_graph, create_graph=create_graph, materialize_grads=True)


def _strict_check(outs, ins, gos, independent):
    """strict=True: every output must require grad, and (per output, for jacobian; together,
    for vjp) every input must be reached by the graph; independent(i, j) is the message when
    output i (None: all of them) does not depend on input j."""
    from . import grad
    for i, o in enumerate(outs):
        if not o.requires_grad:
            raise RuntimeError(f"Output {i} of the user-provided function does not require "
                               "gradients. The outputs must be computed in a differentiable "
                               "manner from the input when running in strict mode.")
    groups = [(None, list(outs), list(gos))] if gos is not None else \
        [(i, [o], [_ones_like(o)]) for i, o in enumerate(outs)]
    for i, os_, gs in groups:
        res = grad(os_, list(ins), gs, retain_graph=True, allow_unused=True)
        for j, r in enumerate(res):
            if r is None:
                raise RuntimeError(independent(i, j))


def _detach(o, create_graph):
    if create_graph:
        return o
    return tuple(x.detach() for x in o) if isinstance(o, tuple) else o.detach()


def _ones_like(x):
    return wrap(np.ones(x._data.shape, x._dtype.np), x._dtype, x)


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J)."""
    ins = _prep(inputs, create_graph)
    prev = STATE.grad_enabled
    STATE.grad_enabled = True
    try:
        out = func(*ins)
        outs = _outs(out, "vjp")
        if v is None:
            if len(outs) != 1 or outs[0].numel() != 1:
                raise RuntimeError("The vector v can only be None if the user-provided function "
                                   "returns a single Tensor with a single element.")
            vs = (_ones_like(outs[0]),)
        else:
            vs = _check_v(v, outs, isinstance(out, tuple))
        if strict:
            _strict_check(outs, ins, vs, lambda i, j: (
                f"The output of the user-provided function is independent of input {j}. This "
                "is not allowed in strict mode."))
        gs = _grad(outs, ins, vs, create_graph)
    finally:
        STATE.grad_enabled = prev
    res = gs if isinstance(inputs, tuple) else gs[0]
    return _detach(out, create_graph), res


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """J of func at inputs: for output o and input x, a tensor of shape o.shape + x.shape.
    One reverse pass per output element."""
    from ..ops_shape import stack, reshape
    if strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError(
            'Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
            'function has more outputs than inputs, "forward-mode" tends to be more performant. '
            'Otherwise, prefer to use "reverse-mode".')
    if strategy == "forward-mode":
        # torch's forward-mode path only exists vectorized and without create_graph
        if create_graph:
            raise NotImplementedError(
                "torch.autograd.functional.jacobian: `create_graph=True` and "
                '`strategy="forward-mode"` are not supported together (yet). Please either '
                'set `create_graph=False` or `strategy="reverse-mode"`.')
        if not vectorize:
            raise NotImplementedError(
                "Computing Jacobian using forward-AD or forward-over-reverse Hessian is"
                "only implemented for `vectorize=True`.")
    ins = _prep(inputs, create_graph)
    prev = STATE.grad_enabled
    STATE.grad_enabled = True
    try:
        out = func(*ins)
        outs = _outs(out, "jacobian")
        if strict:
            _strict_check(outs, ins, None, lambda i, j: (
                f"Output {i} of the user-provided function is independent of input {j}. This is "
                "not allowed in strict mode."))
        jac_per_out = []
        for o in outs:
            rows = []
            n = o.numel()
            for k in range(n):
                go = np.zeros(n, o._dtype.np)
                go[k] = 1
                rows.append(_grad([o], ins, [wrap(go.reshape(o._data.shape), o._dtype, o)],
                                  create_graph, retain_graph=True))
            per_in = []
            for j, x in enumerate(ins):
                if n:
                    st = stack([r[j] for r in rows], 0)
                    per_in.append(reshape(st, tuple(o.shape) + tuple(x.shape)))
                else:
                    per_in.append(wrap(np.zeros(tuple(o.shape) + tuple(x.shape), x._dtype.np),
                                       x._dtype, x))
            jac_per_out.append(tuple(per_in) if isinstance(inputs, tuple) else per_in[0])
    finally:
        STATE.grad_enabled = prev
    return tuple(jac_per_out) if isinstance(out, tuple) else jac_per_out[0]


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """Hessian of a scalar func: the jacobian of its gradient."""
    is_tuple = isinstance(inputs, tuple)

    def grad_fn(*xs):
        y = func(*xs)
        if not isinstance(y, Tensor):
            raise RuntimeError("The function given to hessian should return a single Tensor")
        if y.numel() != 1:
            raise RuntimeError("The Tensor returned by the function given to hessian should "
                               "contain a single element")
        if strict and not y.requires_grad:
            raise RuntimeError("Output 0 of the user-provided function does not require "
                               "gradients. The outputs must be computed in a differentiable "
                               "manner from the input when running in strict mode.")
        gs = _grad([y], xs, [_ones_like(y)], True)
        if strict:
            for i, g in enumerate(gs):
                if not g.requires_grad:
                    raise RuntimeError(
                        "While computing the hessian, found that the jacobian of the "
                        f"user-provided function with respect to input {i} is independent of "
                        "the input. This is not allowed in strict mode. You should ensure that "
                        "your function is twice differentiable and that the jacobian depends on "
                        "the inputs (this would be violated by a linear function for example).")
        return gs if is_tuple else gs[0]
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode".')
    return jacobian(grad_fn, inputs, create_graph=create_graph, strict=strict,
                    vectorize=vectorize, strategy=outer_jacobian_strategy)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v), by differentiating the vjp with respect to its cotangent."""
    ins = _prep(inputs, create_graph)
    prev = STATE.grad_enabled
    STATE.grad_enabled = True
    try:
        out = func(*ins)
        outs = _outs(out, "jvp")
        if strict:
            for i, o in enumerate(outs):
                if not o.requires_grad:
                    raise RuntimeError(f"Output {i} of the user-provided function does not "
                                       "require gradients. The outputs must be computed in a "
                                       "differentiable manner from the input when running in "
                                       "strict mode.")
        us = [_zeros(o).requires_grad_(True) for o in outs]
        gs = _grad(outs, ins, us, True)
        vs = _v_none(ins) if v is None else _check_v(v, ins, isinstance(inputs, tuple))
        jv = _grad(list(gs), us, list(vs), create_graph)
    finally:
        STATE.grad_enabled = prev
    return _detach(out, create_graph), (jv if isinstance(out, tuple) else jv[0])


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H) for a scalar func."""
    ins = _prep(inputs, create_graph)
    prev = STATE.grad_enabled
    STATE.grad_enabled = True
    try:
        vs = _v_none(ins) if v is None else _check_v(v, ins, isinstance(inputs, tuple))
        out = func(*ins)
        gs = _grad([out], ins, [_ones_like(out)], True)
        hv = _grad(list(gs), ins, list(vs), create_graph)
    finally:
        STATE.grad_enabled = prev
    return _detach(out, create_graph), (hv if isinstance(inputs, tuple) else hv[0])


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v); the Hessian is symmetric, so this is v^T H transposed."""
    return vhp(func, inputs, v, create_graph, strict)
