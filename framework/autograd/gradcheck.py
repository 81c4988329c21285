"""gradcheck / gradgradcheck: compare analytic gradients with central finite differences."""
import numpy as np

from ..tensor import Tensor
from .._dispatch import wrap


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def _numerical_jacobian(fn, inputs, eps):
    outs = [o for o in _as_tuple(fn(*inputs)) if isinstance(o, Tensor)]
    jac = []
    for i, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            jac.append(None)
            continue
        flat = x._data.reshape(-1)   # x is contiguous here (gradcheck made it so)
        cols = []
        for k in range(flat.size):
            orig = flat[k]
            flat[k] = orig + eps
            plus = [o._data.astype(np.float64).copy() for o in _as_tuple(fn(*inputs))
                    if isinstance(o, Tensor)]
            flat[k] = orig - eps
            minus = [o._data.astype(np.float64).copy() for o in _as_tuple(fn(*inputs))
                     if isinstance(o, Tensor)]
            flat[k] = orig
            cols.append(np.concatenate([((p - m) / (2 * eps)).reshape(-1) for p, m in zip(plus, minus)]))
        jac.append(np.stack(cols, 0) if cols else np.zeros((0, sum(o._data.size for o in outs))))
    return jac


def _analytic_jacobian(fn, inputs):
    from . import grad
    outs = [o for o in _as_tuple(fn(*inputs)) if isinstance(o, Tensor)]
    diff_in = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    total = sum(o._data.size for o in outs)
    jac = [np.zeros((x._data.size, total)) for x in diff_in]
    col = 0
    for o in outs:
        for k in range(o._data.size):
            go = np.zeros(o._data.size, o._dtype.np)
            go[k] = 1
            if not o.requires_grad:
                col += 1
                continue
            gs = grad([o], diff_in, [wrap(go.reshape(o._data.shape), o._dtype)], retain_graph=True,
                      allow_unused=True)
            for j, g in enumerate(gs):
                if g is not None:
                    jac[j][:, col] = g._data.reshape(-1)
            col += 1
    it = iter(jac)
    return [next(it) if isinstance(x, Tensor) and x.requires_grad else None for x in inputs]


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
              nondet_tol=0.0, check_undefined_grad=True, fast_mode=False, **kw):
    inputs = _as_tuple(inputs)
    inputs = tuple(x.detach().clone().requires_grad_(x.requires_grad)
                   if isinstance(x, Tensor) and not x.is_contiguous() else x for x in inputs)
    for x in inputs:
        if isinstance(x, Tensor) and x.requires_grad and x.dtype.name != "float64":
            import warnings
            warnings.warn("Input #0 requires gradient and is not a double precision floating point. "
                          "This check will likely fail if all the inputs are not of double precision "
                          "floating point.")
    num = _numerical_jacobian(func, inputs, eps)
    ana = _analytic_jacobian(func, inputs)
    for i, (n, a) in enumerate(zip(num, ana)):
        if n is None:
            continue
        if not np.allclose(a, n, atol=atol, rtol=rtol, equal_nan=False):
            if raise_exception:
                raise GradcheckError(f"Jacobian mismatch for output 0 with respect to input {i},\n"
                                     f"numerical:{n}\nanalytical:{a}\n")
            return False
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  raise_exception=True, **kw):
    from . import grad
    from ..creation import randn
    inputs = _as_tuple(inputs)
    outs = _as_tuple(func(*inputs))
    if grad_outputs is None:
        grad_outputs = tuple(randn(*o.shape, dtype=o.dtype, requires_grad=True) for o in outs)
    grad_outputs = _as_tuple(grad_outputs)
    diff_in = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    n_in = len(inputs)

    def first_grad(*args):
        ins, gos = args[:n_in], args[n_in:]
        o = _as_tuple(func(*ins))
        d = [x for x in ins if isinstance(x, Tensor) and x.requires_grad]
        gs = grad(list(o), d, list(gos), create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_grad, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol,
                     rtol=rtol, raise_exception=raise_exception)


class GradcheckError(RuntimeError):
    pass
