"""The backward pass: apply each recorded node's VJP rule in reverse order.

The rules come from the primitive registry and are written with an emitter; here the emitter
runs eagerly (framework._dispatch.EMIT), so the backward graph is executed as it is generated.
With create_graph=True the emitted ops are themselves recorded, which is what makes higher-order
gradients work. graph.py builds the same backward as a printable compiler Graph.
"""
import heapq

import numpy as np

from compiler.ir.registry import AVal
from .. import _dispatch
from .._dispatch import STATE, EMIT, wrap
from ..tensor import Tensor
from .grad_mode import set_grad_enabled


def _zeros(aval):
    return wrap(np.zeros(aval.shape, aval.dtype.np), aval.dtype)


def _accum(a, b):
    if a is None:
        return b
    return _dispatch.apply(_ADD, a, b)


from compiler.ir.registry import REGISTRY as _R  # noqa: E402
_ADD = _R["add"]


def _check_version(node):
    for t, v in zip(node.saved, node.versions):
        if v is not None and isinstance(t, Tensor) and t._version != v:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [torch.{t.type().split('.')[-1]} {list(t.shape)}], which is "
                f"an input of {node._name}, is at version {t._version}; expected version {v} "
                "instead. Hint: the backtrace further above can show the operation that failed to "
                "compute its gradient.")


def run_backward(roots, grad_roots, retain_graph, create_graph, inputs=None, accumulate=True,
                 allow_unused=False):
    """roots: output tensors; grad_roots: their cotangents. Returns grads of `inputs` when
    accumulate is False (autograd.grad), else accumulates into leaves' .grad."""
    grads = {}            # node -> list of cotangents per output
    leaf_grads = {}       # id(leaf) -> [leaf, grad]
    heap = []
    seen = set()
    want = None
    captured = {}
    if inputs is not None:
        want = {}
        for i, t in enumerate(inputs):
            if t._node is not None:
                want[(id(t._node), t._oi)] = i
            else:
                want[("leaf", id(t))] = i

    def push(node):
        if id(node) not in seen:
            seen.add(id(node))
            heapq.heappush(heap, (-node.seq, id(node), node))

    for r, g in zip(roots, grad_roots):
        if r._node is None:
            if r._rg:
                e = leaf_grads.setdefault(id(r), [r, None])
                e[1] = _accum(e[1], g)
            continue
        n = r._node
        if n.freed:
            raise RuntimeError("Trying to backward through the graph a second time (or directly "
                               "access saved tensors after they have already been freed). Saved "
                               "intermediate values of the graph are freed when you call .backward() "
                               "or autograd.grad(). Specify retain_graph=True if you need to backward "
                               "through the graph a second time or if you need to access saved "
                               "tensors after calling backward.")
        lst = grads.setdefault(n, [None] * len(n.outs))
        lst[r._oi] = _accum(lst[r._oi], g)
        push(n)

    with set_grad_enabled(create_graph):
        while heap:
            _, _, node = heapq.heappop(heap)
            if node.freed:
                raise RuntimeError("Trying to backward through the graph a second time (or directly "
                                   "access saved tensors after they have already been freed). "
                                   "Specify retain_graph=True if you need to backward through the "
                                   "graph a second time.")
            gs = grads.pop(node)
            # tensor hooks and retain_grad on this node's outputs
            if node.hooks:
                for oi, hooks in node.hooks.items():
                    for h in hooks:
                        if gs[oi] is not None:
                            new = h(gs[oi])
                            if new is not None:
                                gs[oi] = new
            if node.retain:
                for oi, ref in node.retain.items():
                    t = ref()
                    if t is not None and gs[oi] is not None:
                        g = gs[oi] if create_graph else gs[oi].detach()
                        t._grad = g if t._grad is None else _accum(t._grad, g)
            if want is not None:
                for oi in range(len(gs)):
                    k = (id(node), oi)
                    if k in want and gs[oi] is not None:
                        captured[want[k]] = gs[oi]
            if node.pre_hooks:
                for h in node.pre_hooks:
                    r = h(tuple(gs))
                    if r is not None:
                        gs = list(r)
            in_grads = _apply_vjp(node, gs)
            if node.post_hooks:
                for h in node.post_hooks:
                    r = h(tuple(in_grads), tuple(gs))
                    if r is not None:
                        in_grads = tuple(r)
            for edge, g in zip(node.edges, in_grads):
                if edge is None or g is None:
                    continue
                producer, target = edge
                if producer is None:          # leaf
                    e = leaf_grads.setdefault(id(target), [target, None])
                    e[1] = _accum(e[1], g)
                else:
                    lst = grads.setdefault(producer, [None] * len(producer.outs))
                    lst[target] = _accum(lst[target], g)
                    push(producer)
            if not retain_graph:
                node.freed = True
                node.saved = None
                node.out = None

        # leaves: hooks may replace the gradient, then accumulate into .grad
        result = [None] * (len(inputs) if inputs is not None else 0)
        for key, (leaf, g) in leaf_grads.items():
            if leaf._hooks:
                for h in leaf._hooks:
                    new = h(g)
                    if new is not None:
                        g = new
            if want is not None:
                k = ("leaf", key)
                if k in want:
                    captured[want[k]] = g
                if not accumulate:
                    continue
            if not accumulate:
                continue
            if want is not None and ("leaf", key) not in want:
                continue
            if not create_graph:
                g = g.detach()
            if g._dtype is not leaf._dtype:
                g = g.to(leaf._dtype)
            if leaf._grad is None:
                # a fresh tensor, so later in-place accumulation never touches a shared buffer
                leaf._grad = g if create_graph else wrap(np.array(g._data, copy=True), g._dtype)
            elif create_graph:
                leaf._grad = _accum(leaf._grad, g)
            else:
                np.add(leaf._grad._data, g._data, out=leaf._grad._data, casting="unsafe")
                leaf._grad._bump()
        if inputs is not None:
            for i in range(len(inputs)):
                result[i] = captured.get(i)
        return result


def _apply_vjp(node, gs):
    p = node.prim
    if node.fn is not None:                      # custom autograd.Function
        return node.fn._backward_from_engine(node, gs)
    if node.saved is None:
        raise RuntimeError("Trying to backward through the graph a second time (or directly access "
                           "saved tensors after they have already been freed).")
    _check_version(node)
    if p.nout == 1:
        g = gs[0]
        if g is None:
            return (None,) * len(node.saved)
        r = p.vjp(EMIT, g, *node.saved, out=node.out, **node.attrs)
    else:
        gs = tuple(gs)
        r = p.vjp(EMIT, gs, *node.saved, out=node.out, **node.attrs)
    return r
