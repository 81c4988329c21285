"""ExportedProgram.run_decompositions: the few decompositions torch's default table applies to
the ops export records most (linear -> permute + addmm/mm, convN -> convolution, flatten ->
view, softmax -> _softmax, batch_norm -> _native_batch_norm_legit_*), and functionalization
of in-place ops; every other op is kept as it is."""
import math
import operator
import re

from framework.fx import Graph
from framework.fx.node import map_arg
from . import _aten


def _shape(n):
    return list(n.meta["val"].shape)


def _linear(emit, node, x, w, b=None):
    xs = _shape(x)
    if len(xs) == 2:
        wt = emit("permute.default", w, [1, 0])
        return emit("addmm.default", b, x, wt) if b is not None else emit("mm.default", x, wt)
    if node.meta.get("sym_shape") is not None:
        return None                   # a dynamic leading dim: views would fix it
    flat = emit("view.default", x, [math.prod(xs[:-1]), xs[-1]])
    wt = emit("permute.default", w, [1, 0])
    mm = emit("addmm.default", b, flat, wt) if b is not None else emit("mm.default", flat, wt)
    return emit("view.default", mm, _shape(node))


def _static(f):
    """A decomposition that bakes shapes in: not for a program with symbolic sizes."""
    def g(emit, node, *a, **k):
        if node.meta.get("sym_shape") is not None or any(
                n.meta.get("sym_shape") is not None for n in node.all_input_nodes):
            return None
        return f(emit, node, *a, **k)
    return g


def _sum(emit, node, x, dtype=None):
    return None if dtype is not None else emit("sum.dim_IntList", x, [])


def _t(emit, node, x):
    return emit("permute.default", x, [1, 0]) if len(_shape(x)) == 2 else None


def _transpose(emit, node, x, d0, d1):
    n = len(_shape(x))
    perm = list(range(n))
    perm[d0 % n], perm[d1 % n] = perm[d1 % n], perm[d0 % n]
    return emit("permute.default", x, perm)


def _squeeze(emit, node, x, dim=None):
    n = len(_shape(x))
    return emit("squeeze.dims", x, list(range(n)) if dim is None else [dim])


@_static
def _matmul(emit, node, a, b):
    sa, sb = _shape(a), _shape(b)
    if len(sa) == 2 and len(sb) == 2:
        return emit("mm.default", a, b)
    if len(sa) > 2 and len(sb) == 2:
        flat = emit("view.default", a, [math.prod(sa[:-1]), sa[-1]])
        return emit("view.default", emit("mm.default", flat, b), _shape(node))
    return None


@_static
def _stack(emit, node, tensors, dim=0):
    n = len(_shape(tensors[0]))
    if not -n <= dim < n:
        return None
    return emit("view.default", emit("cat.default", list(tensors), dim % n), _shape(node))


@_static
def _reshape(emit, node, x, shape):
    return emit("view.default", x, list(shape)) if x.meta["val"].is_contiguous() else None


def _zeros(emit, node, size, dtype=None, layout=None, device=None, pin_memory=None):
    import framework
    kw = {"dtype": node.meta["val"].dtype if dtype is None else dtype,
          "layout": framework.strided if layout is None else layout,
          "device": device, "pin_memory": pin_memory}
    return emit.kw("full.default", (size, 0), {k: v for k, v in kw.items() if v is not None})


def _max_pool2d(emit, node, x, *a):
    n = emit("max_pool2d_with_indices.default", x, *a)
    return [emit.getitem(n, i) for i in range(2)][0]


def _adaptive_avg_pool2d(emit, node, x, size):
    if list(size) == [1, 1]:
        return emit("mean.dim", x, [-1, -2], True)
    return emit("_adaptive_avg_pool2d.default", x, list(size))


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


def _batch_norm(emit, node, x, w=None, b=None, rm=None, rv=None, training=False,
                momentum=0.1, eps=1e-05, cudnn=False):
    """batch_norm -> _native_batch_norm_legit_functional (training: its new running stats
    are the buffers' next values) or _native_batch_norm_legit_no_training, as torch's."""
    if rm is None or rv is None:
        return None
    if training:
        n = emit("_native_batch_norm_legit_functional.default", x, w, b, rm, rv, True,
                 momentum, eps)
        outs = [emit.getitem(n, i) for i in range(5)]
        emit.mutate(rm, outs[3])
        emit.mutate(rv, outs[4])
        return outs[0]
    n = emit("_native_batch_norm_legit_no_training.default", x, w, b, rm, rv, momentum, eps)
    return [emit.getitem(n, i) for i in range(3)][0]


def _silu(emit, node, x, inplace=False):
    return emit("mul.Tensor", x, emit("sigmoid.default", x))


def _layer_norm(emit, node, x, shape, w=None, b=None, eps=1e-05, cudnn=False):
    n = emit("native_layer_norm.default", x, shape, w, b, eps)
    return [emit.getitem(n, i) for i in range(3)][0]


def _dropout(emit, node, x, p=0.5, train=True):
    return None if train else emit("clone.default", x)      # (training: kept)


_DECOMPS["batch_norm.default"] = _batch_norm
_DECOMPS["silu.default"] = _silu
_DECOMPS["layer_norm.default"] = _layer_norm
_DECOMPS["dropout.default"] = _dropout
_DECOMPS.update({"sum.default": _sum, "t.default": _t, "transpose.int": _transpose,
                 "squeeze.default": _squeeze, "squeeze.dim": _squeeze,
                 "matmul.default": _matmul, "stack.default": _stack,
                 "reshape.default": _reshape, "max_pool2d.default": _max_pool2d,
                 "adaptive_avg_pool2d.default": _adaptive_avg_pool2d,
                 "zeros.default": _zeros})
# the ops torch decomposes whatever the table says (CompositeImplicit, not in its table)
_ALWAYS = frozenset(("flatten.using_ints", "batch_norm.default", "dropout.default",
                     "reshape.default"))

# views: an in-place op through one of them is kept as it is (not functionalized)
_VIEWS = frozenset(("view", "slice", "select", "unsqueeze", "squeeze", "permute", "t",
                    "transpose", "expand", "index"))


def default_table():
    """{OpOverload: decomposition} for the ops of torch's default table Kiln decomposes."""
    return {_aten.lookup(k): f for k, f in _DECOMPS.items() if k not in _ALWAYS}


def decompose(graph, input_specs=(), table=None):
    """A new Graph with the table's ops decomposed and in-place ops functionalized (torch's
    run_decompositions): `b.add_(y)` becomes `add(b, y)`, later reads see that value, and a
    buffer or user input changed this way is returned first (BUFFER_MUTATION /
    USER_INPUT_MUTATION). Node names are regenerated from the ops, values recomputed.
    -> (graph, [(kind name, target, value node)], user output nodes)."""
    import framework
    from .graph_signature import InputKind
    g, env = Graph(), {}
    kinds = {sp.arg.name: sp for sp in input_specs}
    current = {}            # a tensor's base (placeholder or op result) -> its value now
    base = {}               # old node -> the old node whose storage it is
    extra_getitems = []

    def val(a):
        return map_arg(a, lambda n: n.meta.get("val"))

    def ref(n):
        b = base.get(n, n)
        return current.get(b, env[b]) if b in env else env[n]

    def new_node(op, args, kwargs, src, name=None):
        n = g.create_node("call_function", op, args, kwargs, name=name or op._packet)
        with framework.no_grad():
            n.meta["val"] = op(*val(args), **val(kwargs))
        n.meta["stack_trace"] = src.meta.get("stack_trace")
        return n

    for node in graph.nodes:
        if node.op == "placeholder":
            env[node] = g.node_copy(node)
            continue
        if node.op == "output":
            outs = map_arg(node.args[0], ref)
            continue
        target = node.target
        name = f"{target._packet}.{target._overload}" if isinstance(
            target, _aten.OpOverload) else None
        args = map_arg(node.args, ref)
        kwargs = map_arg(node.kwargs, ref)
        # in-place: the functional op, and the mutated tensor's base now holds its result
        if name is not None and target._packet.endswith("_") and node.args:
            b = base.get(node.args[0], node.args[0])
            ok = b.op != "placeholder" or kinds.get(b.name) is not None and \
                kinds[b.name].kind in (InputKind.BUFFER, InputKind.USER_INPUT)
            if ok and not (b.op == "call_function" and isinstance(b.target, _aten.OpOverload)
                           and b.target._packet in _VIEWS):
                pk, ov = target._packet[:-1], target._overload
                new = None
                if name == "copy_.default":
                    src = args[1]
                    sv, dv = src.meta.get("val"), args[0].meta.get("val")
                    new = src if (isinstance(sv, framework.Tensor) and sv.shape == dv.shape
                                  and sv.dtype == dv.dtype) else \
                        new_node(_aten.lookup("copy.default"), tuple(args), {}, node)
                elif name == "zero_.default":
                    new = new_node(_aten.lookup("full_like.default"), (args[0], 0),
                                   {"pin_memory": False,
                                    "memory_format": framework.preserve_format}, node)
                elif name == "fill_.Scalar":
                    new = new_node(_aten.lookup("full_like.default"), (args[0], args[1]),
                                   {"pin_memory": False}, node)
                elif f"{pk}.{ov}" in _aten._BY_NAME:
                    new = new_node(_aten.lookup(f"{pk}.{ov}"), tuple(args), kwargs, node)
                if new is not None:
                    base[node] = b
                    current[b] = new
                    env[node] = new
                    continue
        fn = None
        if node.op == "call_function" and name is not None:
            fn = _DECOMPS.get(name) if table is None or name in _ALWAYS else table.get(target)
            if fn is not None and fn is not _DECOMPS.get(name):
                raise NotImplementedError(f"torch.export: run_decompositions cannot run a "
                                          f"custom decomposition (given for {target!r})")
        out = None
        if fn is not None:
            made = []

            def emit(op_name, *a):
                n = new_node(_aten.lookup(op_name), a, {}, node)
                made.append(n)
                return n

            def getitem(n, i):
                gi = g.create_node("call_function", operator.getitem, (n, i), {},
                                   name="getitem")
                gi.meta["val"] = n.meta["val"][i]
                gi.meta["stack_trace"] = n.meta.get("stack_trace")
                made.append(gi)
                extra_getitems.append(gi)
                return gi
            def emit_kw(op_name, a, k):
                n = new_node(_aten.lookup(op_name), a, k, node)
                made.append(n)
                return n
            mutations = []
            emit.getitem = getitem
            emit.kw = emit_kw
            emit.mutate = lambda t, v: mutations.append((t, v))
            out = fn(emit, node, *args, **kwargs)
            if out is None:
                for n in reversed(made):
                    g.erase_node(n)
                    if n in extra_getitems:
                        extra_getitems.remove(n)
            else:
                for k in ("sym_shape",):
                    if k in node.meta:
                        out.meta[k] = node.meta[k]
                old_of = {ref(a): a for a in node.all_input_nodes}
                for t, v in mutations:
                    a = old_of[t]
                    current[base.get(a, a)] = v
        if out is None:
            out = g.create_node(node.op, target, tuple(args), kwargs,
                                name=re.sub(r"_\d+$", "", node.name))
            out.meta = dict(node.meta)
        env[node] = out
    muts = []
    for node in graph.nodes:
        if node.op == "placeholder" and current.get(node, env[node]) is not env[node]:
            sp = kinds[node.name]
            muts.append(("BUFFER_MUTATION" if sp.kind == InputKind.BUFFER else
                         "USER_INPUT_MUTATION", sp.target if sp.kind == InputKind.BUFFER
                         else node.name, current[node]))
    g.output(tuple(v for _, _, v in muts) + tuple(outs))
    for gi in extra_getitems:                   # torch's numbering keeps the unused ones' gaps
        if not gi.users:
            g.erase_node(gi)
    g.eliminate_dead_code(lambda n: n.op in ("placeholder", "output") or (
        isinstance(n.target, _aten.OpOverload) and n.target._packet.endswith("_")) or (
        n.op != "get_attr" and not isinstance(n.target, _aten.OpOverload) and
        n.target is not operator.getitem and n.is_impure()))
    return g, muts, list(outs)
