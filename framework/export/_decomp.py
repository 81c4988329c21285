"""ExportedProgram.run_decompositions: the few decompositions torch's default table applies to
the ops export records most (linear -> permute + addmm/mm, convN -> convolution, flatten ->
view, softmax -> _softmax); every other op is kept as it is."""
import math

from framework.fx import Graph
from framework.fx.node import map_arg
from . import _aten


def _shape(n):
    return list(n.meta["val"].shape)


def _linear(emit, node, x, w, b=None):
    wt = emit("permute.default", w, [1, 0])
    xs = _shape(x)
    if len(xs) == 2:
        return emit("addmm.default", b, x, wt) if b is not None else emit("mm.default", x, wt)
    if node.meta.get("sym_shape") is not None:
        return None                   # a dynamic leading dim: views would fix it
    flat = emit("view.default", x, [-1 if not xs[:-1] else math.prod(xs[:-1]), xs[-1]])
    mm = emit("addmm.default", b, flat, wt) if b is not None else emit("mm.default", flat, wt)
    return emit("view.default", mm, _shape(node))


def _conv(nd):
    def f(emit, node, x, w, b=None, stride=None, padding=None, dilation=None, groups=1):
        return emit("convolution.default", x, w, b, stride or [1] * nd, padding or [0] * nd,
                    dilation or [1] * nd, False, [0] * nd, groups)
    return f


def _flatten(emit, node, x, start_dim=0, end_dim=-1):
    if node.meta.get("sym_shape") is not None:
        return None
    return emit("view.default", x, _shape(node))


def _softmax(name):
    def f(emit, node, x, dim, dtype=None):
        return None if dtype is not None else emit(name, x, dim, False)
    return f


_DECOMPS = {"linear.default": _linear, "conv1d.default": _conv(1), "conv2d.default": _conv(2),
            "conv3d.default": _conv(3), "flatten.using_ints": _flatten,
            "softmax.int": _softmax("_softmax.default"),
            "log_softmax.int": _softmax("_log_softmax.default")}


def decompose(graph):
    """A new Graph with the table's ops decomposed; node values (meta['val']) recomputed."""
    import framework
    g, env = Graph(), {}

    def val(a):
        return map_arg(a, lambda n: n.meta.get("val"))

    for node in graph.nodes:
        target = node.target
        name = f"{target._packet}.{target._overload}" if isinstance(
            target, _aten.OpOverload) else None
        fn = _DECOMPS.get(name) if node.op == "call_function" else None
        out = None
        if fn is not None:
            made = []

            def emit(op_name, *args):
                op = _aten.lookup(op_name)
                n = g.create_node("call_function", op, args, {}, name=op._packet)
                with framework.no_grad():
                    n.meta["val"] = op(*val(args))
                n.meta["stack_trace"] = node.meta.get("stack_trace")
                made.append(n)
                return n
            out = fn(emit, node, *map_arg(node.args, lambda n: env[n]),
                     **map_arg(node.kwargs, lambda n: env[n]))
            if out is None:
                for n in reversed(made):
                    g.erase_node(n)
            else:
                for k in ("sym_shape",):
                    if k in node.meta:
                        out.meta[k] = node.meta[k]
        env[node] = out if out is not None else g.node_copy(node, lambda n: env[n])
    return g
