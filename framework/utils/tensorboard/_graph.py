"""add_graph: a TensorBoard GraphDef from Kiln's own tracer.

The model runs once under compile() (eval mode, no_grad); the compiled function's traced IR
graphs (CompiledFunction.graphs()) give one NodeDef per IR node: name `<module scope>/<op>.<k>`,
op = the primitive's name, inputs = the producing nodes, and `_output_shapes` / `dtype` /
`attr` attributes. Module scopes ("MLP/Linear[fc1]", torch's naming) come from forward
pre/post hooks that note how many nodes the tracer's graph held when each module started and
finished: a node belongs to the innermost module whose call recorded it. Graph inputs become
`input/input.<i>` (arguments), `<scope>/<name>` (parameters and buffers, in their module's
scope) or `<Root>/constant.<k>` nodes; the last region's results feed `output/output.<i>`.
"""
from . import _proto as pb


def _flat_tensors(x, out):
    from ...tensor import Tensor
    if isinstance(x, Tensor):
        out.append(x)
    elif isinstance(x, (list, tuple)):
        for y in x:
            _flat_tensors(y, out)
    elif isinstance(x, dict):
        for y in x.values():
            _flat_tensors(y, out)
    return out


def _scopes(model):
    """{id(module): 'Root/Type[attr]/...'} for every submodule."""
    root = type(model).__name__
    by_name = dict(model.named_modules())
    scopes = {}
    for name, m in by_name.items():
        if not name:
            scopes.setdefault(id(m), root)
            continue
        parts = name.split(".")
        segs = [f"{type(by_name['.'.join(parts[:i + 1])]).__name__}[{p}]"
                for i, p in enumerate(parts)]
        scopes.setdefault(id(m), "/".join([root] + segs))
    return scopes


def _fmt(v):
    name = getattr(v, "name", None)
    if name is not None and type(v).__name__ == "DType":
        return name
    return repr(v)


def trace_graph_def(model, input_to_model=None):
    """Serialized GraphDef of one traced call model(*input_to_model)."""
    from ... import compile as kiln_compile, no_grad
    from ..._dispatch import STATE
    from ...tensor import Tensor

    if input_to_model is None:
        args = ()
    elif isinstance(input_to_model, Tensor):
        args = (input_to_model,)
    elif isinstance(input_to_model, (list, tuple)):
        args = tuple(input_to_model)
    else:
        args = (input_to_model,)

    scope_of = _scopes(model)
    regions, order, stack = {}, [], []
    made, results = {}, []      # id(tensor) -> (tensor, graph id, node index, output index)

    def seen(tr):
        info = regions.get(id(tr.graph))
        if info is None:
            # hold the region's Graph and its input table (a new dict per region)
            info = regions[id(tr.graph)] = {"graph": tr.graph, "inputs": tr.inputs,
                                             "scopes": {}}
            order.append(info)
        return info

    def pre(mod, _args):
        tr = STATE.tracer
        if tr is not None:
            seen(tr)
            stack.append((id(mod), tr.graph, len(tr.graph.nodes)))

    def post(mod, _args, out):
        tr = STATE.tracer
        if tr is None or not stack:
            return
        mid, g0, start = stack.pop()
        info = seen(tr)
        g = tr.graph
        # where each module output was made: after a graph break a later region reads it as
        # a concrete input, which is then linked back to its producing node
        for t in _flat_tensors(out, []):
            v = getattr(t._data, "value", None)
            if getattr(t._data, "tracer", None) is tr and getattr(v, "node", None) is not None:
                made[id(t)] = (t, id(g), v.node.id, v.index)
        if mid == id(model):
            results[:] = _flat_tensors(out, [])
        if g is not g0:         # a graph break inside this module: its nodes in this region
            start = 0
        sc = info["scopes"]
        for i in range(start, len(g.nodes)):
            sc.setdefault(i, scope_of.get(mid))   # inner modules finish first: innermost wins

    handles = []
    for m in dict.fromkeys(model.modules()):
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    modes = [(m, m.training) for m in model.modules()]
    model.eval()                # torch traces the graph in eval mode too
    try:
        compiled = kiln_compile(model)
        with no_grad():
            compiled(*args)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:   # each module's own mode (a frozen eval() submodule stays so)
            m.training = mode
    graphs = compiled._compiled.graphs()

    root = type(model).__name__
    # names of the concrete tensors a graph may read
    named = {}
    mods = dict(model.named_modules())
    params = [(n, t, "Parameter") for n, t in model.named_parameters()]
    buffers = [(n, t, "Buffer") for n, t in model.named_buffers()]
    for pname, t, kind in params + buffers:
        owner, _, leaf = pname.rpartition(".")
        nm = f"{scope_of.get(id(mods.get(owner, model)), root)}/{leaf}"
        for key in _keys(t):
            named.setdefault(key, (nm, kind))
    for i, t in enumerate(_flat_tensors(args, [])):
        for key in _keys(t):
            named.setdefault(key, (f"input/input.{i}", "IO Node"))

    nodes, emitted, n_const, k = [], set(), 0, 0
    used = [False] * len(order)
    last_outputs = []
    produced = {}               # (captured graph id, node index, output index) -> node name
    for g in graphs:
        info = None
        for j, cand in enumerate(order):     # the captured region this compiled graph came from
            if not used[j] and (cand["graph"] is g or cand["graph"].key() == g.key()):
                info, used[j] = cand, True
                break
        tensor_of = {}
        if info is not None:
            for t, v, _arr in info["inputs"].values():
                tensor_of[id(v)] = t
            cap_inputs = info["graph"].inputs
        name_of = {}
        for idx, v in enumerate(g.inputs):
            t = tensor_of.get(id(cap_inputs[idx])) if info is not None else None
            hit = None
            if t is not None:
                hit = next((named[key] for key in _keys(t) if key in named), None)
                src = made.get(id(t))
                if hit is None and src is not None and src[1:] in produced:
                    name_of[id(v)] = produced[src[1:]]      # made by an earlier region
                    continue
            if hit is None:
                hit = (f"{root}/constant.{n_const}", "Constant")
                n_const += 1
            nm, kind = hit
            name_of[id(v)] = nm
            if nm not in emitted:
                emitted.add(nm)
                nodes.append(pb.node_def(nm, kind, (), _attrs([v.shape], v.dtype, None)))
        scopes = info["scopes"] if info is not None else {}
        for i, n in enumerate(g.nodes):
            scope = scopes.get(i) or root
            nm = f"{scope}/{n.op}.{k}"
            k += 1
            for j, o in enumerate(n.outputs):
                name_of[id(o)] = nm if j == 0 else f"{nm}:{j}"
                if info is not None:
                    produced[(id(info["graph"]), i, j)] = name_of[id(o)]
            ins = [name_of[id(a)] for a in n.inputs if id(a) in name_of]
            desc = [f"{k_}={_fmt(v)}" for k_, v in n.attrs.items()]
            desc += [f"arg{p}={_fmt(a)}" for p, a in enumerate(n.inputs) if id(a) not in name_of]
            nodes.append(pb.node_def(nm, n.op, ins, _attrs([o.shape for o in n.outputs],
                                                            n.outputs[0].dtype if n.outputs
                                                            else None,
                                                            "{" + ", ".join(desc) + "}")))
        last_outputs = [name_of[id(o)] for o in g.outputs if id(o) in name_of]
    if results:                 # the model's own results, as the root module returned them
        outs = []
        for t in results:
            src = made.get(id(t))
            nm = produced.get(src[1:]) if src is not None else None
            if nm is None:
                nm = next((named[key][0] for key in _keys(t) if key in named), None)
            if nm is not None:
                outs.append(nm)
        if len(outs) == len(results):
            last_outputs = outs
    for i, src in enumerate(last_outputs):
        nodes.append(pb.node_def(f"output/output.{i}", "IO Node", [src]))
    return pb.graph_def(nodes)


def _keys(t):
    """A tensor is known by itself or by its array (the tracer may hold either)."""
    d = getattr(t, "_data", None)
    return (id(t),) if d is None else (id(t), id(d))


def _attrs(shapes, dtype, desc):
    a = {"_output_shapes": pb.attr_shapes(shapes)}
    code = pb.DTYPES.get(getattr(dtype, "name", None))
    if code is not None:
        a["dtype"] = pb.attr_type(code)
    if desc is not None:
        a["attr"] = pb.attr_s(desc)
    return a

