"""gradcheck / gradgradcheck: compare analytic gradients (reverse mode, one backward per output
element) with central finite differences, like torch.autograd.gradcheck."""
import numpy as np

from ..tensor import Tensor
from .._dispatch import STATE
from .._dispatch import wrap as _wrap


def wrap(arr, dtype, like=None):
    """A tensor of host array `arr` on `like`'s device (cotangents and zeros beside inputs)."""
    t = _wrap(arr, dtype)
    return t if like is None or like._device is t._device else t.to(like._device)


class GradcheckError(RuntimeError):
    pass


def _as_tuple(x):
    return x if isinstance(x, tuple) else tuple(x) if isinstance(x, list) else (x,)


def _diff_outputs(out):
    return [o for o in _as_tuple(out) if isinstance(o, Tensor) and
            (o._dtype.is_floating_point or o._dtype.is_complex)]


def _numerical_jacobian(fn, inputs, eps):
    """J[i] of shape (numel(input i), total output numel), by central differences.
    Grad mode stays as it is: gradgradcheck's function computes gradients itself."""
    outs = _diff_outputs(fn(*inputs))
    total = sum(o._data.size for o in outs)
    jac = []
    for x in inputs:
        if not (isinstance(x, Tensor) and x.requires_grad):
            jac.append(None)
            continue
        flat = x._data.reshape(-1)
        if not np.shares_memory(flat, x._data):
            raise GradcheckError("gradcheck: inputs must be contiguous")
        J = np.zeros((flat.size, total))
        for k in range(flat.size):
            orig = flat[k]
            flat[k] = orig + eps
            plus = [o._data.astype(np.float64).reshape(-1) for o in _diff_outputs(fn(*inputs))]
            flat[k] = orig - eps
            minus = [o._data.astype(np.float64).reshape(-1) for o in _diff_outputs(fn(*inputs))]
            flat[k] = orig
            if plus:
                J[k] = (np.concatenate(plus) - np.concatenate(minus)) / (2 * eps)
        jac.append(J)
    return jac


def _analytic_jacobian(fn, inputs, check_dtypes):
    from . import grad
    outs = _diff_outputs(fn(*inputs))
    diff_in = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    total = sum(o._data.size for o in outs)
    jac = [np.zeros((x._data.size, total)) for x in diff_in]
    col = 0
    for o in outs:
        if not o.requires_grad:
            col += o._data.size
            continue
        for k in range(o._data.size):
            go = np.zeros(o._data.size, o._dtype.np)
            go[k] = 1
            gs = grad([o], diff_in, [wrap(go.reshape(o._data.shape), o._dtype, o)], retain_graph=True,
                      allow_unused=True)
            for j, (g, x) in enumerate(zip(gs, diff_in)):
                if g is None:
                    continue
                if g.shape != x.shape:
                    raise GradcheckError(f"Gradient has shape {list(g.shape)} but its input has "
                                         f"shape {list(x.shape)} (input {j})")
                if check_dtypes and g.dtype is not x.dtype:
                    raise GradcheckError(f"Gradient has dtype mismatch: {g.dtype} for an input "
                                         f"of dtype {x.dtype} (input {j})")
                jac[j][:, col] = g._data.reshape(-1)
            col += 1
    it = iter(jac)
    return [next(it) if isinstance(x, Tensor) and x.requires_grad else None for x in inputs]


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
              nondet_tol=0.0, check_undefined_grad=True, check_grad_dtypes=False,
              check_batched_grad=False, check_batched_forward_grad=False,
              check_forward_ad=False, check_backward_ad=True, fast_mode=False, masked=None):
    """True when the analytic Jacobian of func at inputs matches finite differences; else
    raises GradcheckError (or returns False with raise_exception=False)."""
    inputs = _as_tuple(inputs)
    # perturbation writes through a flat view, which needs contiguous buffers
    inputs = tuple(x.detach().clone().contiguous().requires_grad_(x.requires_grad)
                   if isinstance(x, Tensor) and not (x.is_contiguous() and x._data.base is None
                                                     and x._data.flags.writeable) else x
                   for x in inputs)
    if not any(isinstance(x, Tensor) and x.requires_grad for x in inputs):
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but "
                         "none of the them have requires_grad=True.")
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad and x.dtype.name != "float64":
            import warnings
            warnings.warn(f"Input #{i} requires gradient and is not a double precision floating "
                          "point. This check will likely fail if all the inputs are not of double "
                          "precision floating point.")
    num = _numerical_jacobian(func, inputs, eps)
    ana = _analytic_jacobian(func, inputs, check_grad_dtypes)
    for i, (n, a) in enumerate(zip(num, ana)):
        if n is None:
            continue
        if not np.allclose(a, n, atol=atol, rtol=rtol):
            if raise_exception:
                bad = np.unravel_index(np.argmax(np.abs(a - n) - rtol * np.abs(n)), n.shape)
                raise GradcheckError(
                    f"Jacobian mismatch for output {bad[1]} with respect to input {i},\n"
                    f"numerical:{n[bad]!r}\nanalytical:{a[bad]!r}\n"
                    f"numerical Jacobian:\n{n}\nanalytical Jacobian:\n{a}\n")
            return False
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  gen_non_contig_grad_outputs=False, raise_exception=True, nondet_tol=0.0,
                  check_undefined_grad=True, check_grad_dtypes=False, check_batched_grad=False,
                  check_fwd_over_rev=False, check_rev_over_rev=True, fast_mode=False, masked=False):
    """gradcheck of the first derivative (built with create_graph=True) with respect to both
    the inputs and the output cotangents: checks second derivatives."""
    from . import grad
    from ..creation import randn
    inputs = _as_tuple(inputs)
    prev = STATE.grad_enabled
    STATE.grad_enabled = False
    try:
        outs = _diff_outputs(func(*inputs))
    finally:
        STATE.grad_enabled = prev
    if grad_outputs is None:
        grad_outputs = tuple(randn(tuple(o.shape), dtype=o.dtype, device=o.device,
                                    requires_grad=True) for o in outs)
    grad_outputs = _as_tuple(grad_outputs)
    n_in = len(inputs)

    def first_grad(*args):
        ins, gos = args[:n_in], args[n_in:]
        o = _diff_outputs(func(*ins))
        d = [x for x in ins if isinstance(x, Tensor) and x.requires_grad]
        pairs = [(oo, gg) for oo, gg in zip(o, gos) if oo.requires_grad]
        if not pairs:
            return tuple(wrap(np.zeros(x._data.shape, x._dtype.np), x._dtype, x) for x in d)
        return grad([p[0] for p in pairs], d, [p[1] for p in pairs], create_graph=True,
                    materialize_grads=True)

    return gradcheck(first_grad, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol,
                     rtol=rtol, raise_exception=raise_exception,
                     check_grad_dtypes=check_grad_dtypes)
