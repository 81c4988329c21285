"""torch.autograd.functional: vjp, jvp, jacobian, hessian built on the reverse transform."""
import numpy as np

from ..tensor import Tensor
from .._dispatch import wrap


def _tup(x):
    return x if isinstance(x, tuple) else (x,)


def _prep(inputs):
    return tuple(x.detach().requires_grad_(True) for x in _tup(inputs))


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    from . import grad
    from .grad_mode import enable_grad
    ins = _prep(inputs)
    with enable_grad():
        out = func(*ins)
        outs = _tup(out)
        vs = _tup(v) if v is not None else tuple(None for _ in outs)
        gs = grad(list(outs), list(ins), list(vs), create_graph=create_graph, allow_unused=True,
                  materialize_grads=True)
    res = gs if isinstance(inputs, tuple) else gs[0]
    return (out if create_graph else _detach(out)), res


def _detach(o):
    return tuple(x.detach() for x in o) if isinstance(o, tuple) else o.detach()


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    from . import grad
    from .grad_mode import enable_grad
    ins = _prep(inputs)
    with enable_grad():
        out = func(*ins)
        outs = _tup(out)
        jac_per_out = []
        for o in outs:
            rows = []
            for k in range(max(o.numel(), 1)):
                go = np.zeros(o._data.size, o._dtype.np)
                go[k] = 1
                gs = grad([o], list(ins), [wrap(go.reshape(o._data.shape), o._dtype)],
                          retain_graph=True, create_graph=create_graph, allow_unused=True,
                          materialize_grads=True)
                rows.append(gs)
            per_in = []
            for j, x in enumerate(ins):
                from ..ops_shape import stack, reshape
                st = stack([r[j] for r in rows], 0)
                per_in.append(reshape(st, tuple(o.shape) + tuple(x.shape)))
            jac_per_out.append(tuple(per_in) if isinstance(inputs, tuple) else per_in[0])
    return tuple(jac_per_out) if isinstance(out, tuple) else jac_per_out[0]


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False):
    def grad_fn(*xs):
        from . import grad
        y = func(*xs)
        gs = grad([y], list(xs), create_graph=True)
        return gs if isinstance(inputs, tuple) else gs[0]
    return jacobian(grad_fn, inputs, create_graph=create_graph)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """Forward-mode product via the double-vjp trick (two reverse passes)."""
    from . import grad
    from .grad_mode import enable_grad
    ins = _prep(inputs)
    with enable_grad():
        out = func(*ins)
        outs = _tup(out)
        us = [wrap(np.zeros(o._data.shape, o._dtype.np), o._dtype).requires_grad_(True) for o in outs]
        gs = grad(list(outs), list(ins), us, create_graph=True, allow_unused=True,
                  materialize_grads=True)
        vs = _tup(v) if v is not None else tuple(wrap(np.ones(x._data.shape, x._dtype.np), x._dtype)
                                                 for x in ins)
        jv = grad(list(gs), us, list(vs), create_graph=create_graph, allow_unused=True,
                  materialize_grads=True)
    return _detach(out), (jv if isinstance(out, tuple) else jv[0])


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    from . import grad
    from .grad_mode import enable_grad
    ins = _prep(inputs)
    with enable_grad():
        out = func(*ins)
        gs = grad([out], list(ins), create_graph=True)
        vs = _tup(v)
        hv = grad(list(gs), list(ins), list(vs), allow_unused=True, materialize_grads=True)
    return out.detach(), (hv if isinstance(inputs, tuple) else hv[0])


vhp = hvp
