"""torch.export.save / load in Kiln's own format: a zip holding program.json (graph, signature,
range constraints, input checks) and each tensor as a .npy entry; no pickle, so loading runs
no code from the file. Not compatible with torch's .pt2 files."""
import builtins
import io
import json
import operator
import zipfile

import numpy as np

__all__ = ["save", "load"]


def _target_str(t):
    from ._aten import OpOverload
    from framework.fx.node import _get_qualified_name
    if isinstance(t, OpOverload):
        return f"aten:{t._packet}.{t._overload}"
    if getattr(t, "__module__", None) == "_operator":
        return f"operator:{t.__name__}"
    if getattr(builtins, getattr(t, "__name__", ""), None) is t:
        return f"builtins:{t.__name__}"
    return "kiln:" + _get_qualified_name(t)


def _target_obj(s):
    import framework
    from ._aten import lookup
    kind, _, name = s.partition(":")
    if kind == "aten":
        return lookup(name)
    if kind == "operator":
        return getattr(operator, name)
    if kind == "builtins":
        return getattr(builtins, name)
    obj = framework
    for part in name.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


def _enc(a):
    import framework
    from framework.fx import Node
    if isinstance(a, Node):
        return {"node": a.name}
    if isinstance(a, (list, tuple)):
        return {type(a).__name__: [_enc(x) for x in a]}
    if isinstance(a, dict):
        return {"dict": {k: _enc(v) for k, v in a.items()}}
    if isinstance(a, slice):
        return {"slice": [_enc(a.start), _enc(a.stop), _enc(a.step)]}
    if isinstance(a, framework.dtype):
        return {"dtype": str(a).split(".")[-1]}
    if isinstance(a, framework.device):
        return {"device": str(a)}
    if a is Ellipsis:
        return {"ellipsis": True}
    if a is None or isinstance(a, (bool, int, float, str)):
        return a
    raise NotImplementedError(f"torch.export.save: cannot serialize argument {a!r}")


def _dec(a, env):
    import framework
    if not isinstance(a, dict):
        return a
    (k, v), = a.items()
    if k == "node":
        return env[v]
    if k in ("list", "tuple"):
        out = [_dec(x, env) for x in v]
        return out if k == "list" else tuple(out)
    if k == "dict":
        return {kk: _dec(vv, env) for kk, vv in v.items()}
    if k == "slice":
        return slice(*(_dec(x, env) for x in v))
    if k == "dtype":
        return getattr(framework, v)
    if k == "device":
        return framework.device(v)
    return Ellipsis


def _meta(n):
    import framework
    v = n.meta.get("val")
    if isinstance(v, framework.Tensor):
        return {"shape": list(v.shape), "dtype": str(v.dtype).split(".")[-1],
                "sym_shape": n.meta.get("sym_shape"), "stack_trace": n.meta.get("stack_trace")}
    return {"stack_trace": n.meta.get("stack_trace"), "sym_int": n.meta.get("sym_int")}


def _arg_enc(a):
    from .graph_signature import TensorArgument
    return {"tensor": a.name} if isinstance(a, TensorArgument) else {"constant": _enc(a.value)}


def _arg_dec(a):
    from .graph_signature import TensorArgument, ConstantArgument
    return TensorArgument(a["tensor"]) if "tensor" in a else ConstantArgument("", a["constant"])


def _io_enc(io):
    from framework.utils._pytree import treespec_dumps
    names, groups, out = io
    return [names, [None if g is None else treespec_dumps(g) for g in groups],
            None if out is None else treespec_dumps(out)]


def _io_dec(io):
    from framework.utils._pytree import treespec_loads
    names, groups, out = io
    return (names, [None if g is None else treespec_loads(g) for g in groups],
            None if out is None else treespec_loads(out))


def _call_entry(e):
    from framework.utils._pytree import treespec_dumps
    sg = e.signature
    return [e.fqn, None if sg is None else {
        "inputs": [_arg_enc(a) for a in sg.inputs], "outputs": [_arg_enc(a) for a in sg.outputs],
        "in_spec": treespec_dumps(sg.in_spec), "out_spec": treespec_dumps(sg.out_spec),
        "forward_arg_names": sg.forward_arg_names}]


def _call_entry_dec(e):
    from framework.utils._pytree import treespec_loads
    from .exported_program import ModuleCallEntry, ModuleCallSignature
    fqn, sg = e
    return ModuleCallEntry(fqn, None if sg is None else ModuleCallSignature(
        [_arg_dec(a) for a in sg["inputs"]], [_arg_dec(a) for a in sg["outputs"]],
        treespec_loads(sg["in_spec"]), treespec_loads(sg["out_spec"]),
        sg["forward_arg_names"]))


def save(ep, f, *, extra_files=None, opset_version=None, pickle_protocol=2):
    """Write ep to a path or binary file object (Kiln's zip format, see module doc)."""
    from .exported_program import ExportedProgram
    if not isinstance(ep, ExportedProgram):
        raise TypeError(f"The 'ep' parameter must be an instance of 'ExportedProgram', got "
                        f"'{type(ep).__name__}' instead.")
    nodes = [{"name": n.name, "op": n.op,
              "target": n.target if isinstance(n.target, str) else _target_str(n.target),
              "args": _enc(n.args), "kwargs": _enc(n.kwargs), "meta": _meta(n)}
             for n in ep.graph.nodes]
    sig = ep.graph_signature
    g = ep._guards
    prog = {
        "format": "kiln-export-1",
        "nodes": nodes,
        "inputs": [[s.kind.name, s.arg.name, s.target, s.persistent] for s in sig.input_specs],
        "outputs": [[s.kind.name, s.arg.name, s.target] for s in sig.output_specs],
        "range_constraints": {k: [lo, None if hi == float("inf") else hi]
                              for k, (lo, hi) in ep.range_constraints.items()},
        "out_tree": ep._out_tree,
        "in_spec": ep._in_spec,
        "guards": None if g is None else {
            "names": g._names, "shapes": g._shapes,
            "dyn": {n: {str(d): list(s[:3]) for d, s in dims.items()}
                    for n, dims in g._dyn.items()}},
        "module_call_graph": [_call_entry(e) for e in ep.module_call_graph],
        "pytree_io": None if ep._pytree_io is None else _io_enc(ep._pytree_io),
        "constants": sorted(ep.constants),
        "state_dict": list(ep.state_dict),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("program.json", json.dumps(prog))
        for k, t in list(ep.state_dict.items()) + list(ep.constants.items()):
            b = io.BytesIO()
            np.save(b, t.detach().cpu().numpy(), allow_pickle=False)
            z.writestr(f"tensors/{k}.npy", b.getvalue())
        for k, v in (extra_files or {}).items():
            z.writestr(f"extra/{k}", v)
    data = buf.getvalue()
    if isinstance(f, (str, bytes)) or hasattr(f, "__fspath__"):
        import os
        tmp = f"{os.fspath(f)}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, f)            # atomic: a crash leaves the old file
    else:
        f.write(data)


def load(f, *, extra_files=None, expected_opset_version=None):
    """Read a program written by torch.export.save (Kiln's format)."""
    import framework
    from framework.nn import Module, Parameter
    from framework.fx import Graph, GraphModule
    from .graph_signature import (ExportGraphSignature, InputSpec, OutputSpec, InputKind,
                                  OutputKind, TensorArgument)
    from .exported_program import ExportedProgram, GuardsFn
    with zipfile.ZipFile(f, "r") as z:
        prog = json.loads(z.read("program.json"))
        if prog.get("format") != "kiln-export-1":
            raise RuntimeError("torch.export.load: not a Kiln exported program")
        tensors = {}
        for k in prog["state_dict"] + prog["constants"]:
            arr = np.load(io.BytesIO(z.read(f"tensors/{k}.npy")), allow_pickle=False)
            tensors[k] = framework.from_numpy(arr.copy())
        for k in list(extra_files or {}):
            extra_files[k] = z.read(f"extra/{k}").decode()
    specs = [InputSpec(InputKind[k], TensorArgument(n), t, p) for k, n, t, p in prog["inputs"]]
    params = {s.target for s in specs if s.kind == InputKind.PARAMETER}
    state = {k: (Parameter(tensors[k]) if k in params else tensors[k])
             for k in prog["state_dict"]}
    constants = {k: tensors[k] for k in prog["constants"]}
    g, env = Graph(), {}
    for nd in prog["nodes"]:
        args, kwargs = _dec(nd["args"], env), _dec(nd["kwargs"], env)
        if nd["op"] == "output":
            g.output(*args)
            continue
        target = nd["target"] if nd["op"] != "call_function" else _target_obj(nd["target"])
        n = g.create_node(nd["op"], target, args, kwargs, name=nd["name"])
        m = nd["meta"]
        if "shape" in m:
            # (shape and dtype only: a broadcast view, no memory per activation)
            n.meta["val"] = framework.zeros((), dtype=getattr(framework, m["dtype"])).expand(
                *m["shape"])
            if m.get("sym_shape"):
                n.meta["sym_shape"] = m["sym_shape"]
        n.meta["stack_trace"] = m.get("stack_trace")
        if m.get("sym_int"):
            n.meta["sym_int"] = m["sym_int"]
        env[nd["name"]] = n
    outs = [OutputSpec(OutputKind[k], TensorArgument(n), t) for k, n, t in prog["outputs"]]
    gd = prog["guards"]
    guards = None if gd is None else GuardsFn(
        gd["names"], gd["shapes"],
        {n: {int(d): tuple(s[:2]) + (float("inf") if s[2] is None else s[2],)
             for d, s in dims.items()} for n, dims in gd["dyn"].items()})
    rc = {k: (lo, float("inf") if hi is None else hi)
          for k, (lo, hi) in prog["range_constraints"].items()}
    tree = prog["out_tree"]
    return ExportedProgram(GraphModule(Module(), g), ExportGraphSignature(specs, outs), state,
                           rc, None, constants, guards, _untuple(tree),
                           None if prog["in_spec"] is None else tuple(prog["in_spec"]),
                           [_call_entry_dec(e) for e in prog.get("module_call_graph", [])]
                           )._with_io(None if prog.get("pytree_io") is None else
                                      _io_dec(prog["pytree_io"]))


def _untuple(tree):
    # JSON turns the output structure's tuples into lists: a 2-list ["const", v] is a constant
    if isinstance(tree, list):
        if len(tree) == 2 and tree[0] == "const":
            return ("const", tree[1])
        return tuple(_untuple(t) for t in tree)
    if isinstance(tree, dict):
        return {k: _untuple(v) for k, v in tree.items()}
    return tree
