"""torch.autograd: backward, grad, Function, grad modes, gradcheck, functional helpers, and
graph_of (the backward graph of a tensor as readable IR)."""
import numpy as np

from .._dispatch import STATE, wrap
from ..tensor import Tensor
from .engine import run_backward
from .grad_mode import (no_grad, enable_grad, set_grad_enabled, inference_mode,  # noqa: F401
                        is_grad_enabled, is_inference_mode_enabled)
from .function import Function, FunctionCtx, once_differentiable  # noqa: F401
from .graph import graph_of, forward_graph  # noqa: F401
from .gradcheck import gradcheck, gradgradcheck  # noqa: F401
from . import functional  # noqa: F401


def _make_grads(outputs, grad_outputs):
    res = []
    for o, g in zip(outputs, grad_outputs):
        if g is None:
            if o._data.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs (got "
                                   f"output of shape {list(o.shape)})")
            if not o.requires_grad:
                raise RuntimeError("element 0 of tensors does not require grad and does not have a "
                                   "grad_fn")
            g = wrap(np.ones(o._data.shape, o._dtype.np), o._dtype)
        else:
            if not isinstance(g, Tensor):
                from ..creation import tensor
                g = tensor(g, dtype=o._dtype)
            if g.shape != o.shape:
                raise RuntimeError(f"Mismatch in shape: grad_output[0] has a shape of "
                                   f"{list(g.shape)} and output[0] has a shape of {list(o.shape)}.")
        res.append(g)
    return res


def _seq(x):
    if x is None:
        return None
    if isinstance(x, Tensor):
        return [x]
    return list(x)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    tensors = _seq(tensors)
    grads = _seq(grad_tensors) or [None] * len(tensors)
    for t in tensors:
        if not t.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a "
                               "grad_fn")
    if retain_graph is None:
        retain_graph = create_graph
    inputs = _seq(inputs)
    run_backward(tensors, _make_grads(tensors, grads), retain_graph, create_graph,
                 inputs=inputs, accumulate=True)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
    outputs = _seq(outputs)
    single = isinstance(inputs, Tensor)
    inputs = _seq(inputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    for o in outputs:
        if not o.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a "
                               "grad_fn")
    gos = _seq(grad_outputs) or [None] * len(outputs)
    if retain_graph is None:
        retain_graph = create_graph
    res = run_backward(outputs, _make_grads(outputs, gos), retain_graph, create_graph,
                       inputs=inputs, accumulate=False)
    for i, r in enumerate(res):
        if r is None:
            if materialize_grads:
                res[i] = wrap(np.zeros(inputs[i]._data.shape, inputs[i]._dtype.np), inputs[i]._dtype)
            elif not allow_unused:
                raise RuntimeError("One of the differentiated Tensors appears to not have been used "
                                   "in the graph. Set allow_unused=True if this is the desired "
                                   "behavior.")
        elif not create_graph:
            res[i] = r.detach()
    return tuple(res)


def Variable(data, requires_grad=False, volatile=False):
    """Legacy alias: Variable(t) is t itself (optionally marked as requiring grad)."""
    t = data if isinstance(data, Tensor) else Tensor(data)
    if requires_grad:
        t.requires_grad_(True)
    return t
