"""torch.export for Kiln: export(mod, args) records forward (fx tracing with the example
values, non-strict as torch's default) as an aten-level ExportedProgram; Dim and
dynamic_shapes=; save/load in Kiln's own zip format (no pickle)."""
import inspect

from .dynamic_shapes import Dim, DimHint, UserError, ConstraintViolationError
from .graph_signature import (ExportGraphSignature, InputKind, OutputKind, InputSpec,
                              OutputSpec, TensorArgument, ConstantArgument)
from .exported_program import ExportedProgram
from framework.fx import Graph
from ._serialize import save, load

__all__ = ["export", "ExportedProgram", "ExportGraphSignature", "Dim", "save", "load",
           "InputKind", "OutputKind", "InputSpec", "OutputSpec", "TensorArgument",
           "ConstantArgument", "UserError", "ConstraintViolationError"]


def _clone(v):
    import framework
    return v.detach().clone() if isinstance(v, framework.Tensor) else v


def export(mod, args, kwargs=None, *, dynamic_shapes=None, strict=False,
           preserve_module_call_signature=()):
    """Trace mod(*args, **kwargs) into an ExportedProgram (torch.export.export)."""
    import framework
    from framework.nn import Module
    from framework.fx.node import Node, map_aggregate
    from . import dynamic_shapes as ds, _trace
    from .exported_program import GuardsFn
    if not isinstance(mod, Module):
        raise ValueError(f"Expected `mod` to be an instance of `torch.nn.Module`, got "
                         f"{type(mod)}.")
    if not isinstance(args, tuple):
        raise UserError(f"Expecting `args` to be a tuple of example positional inputs, got "
                        f"{type(args)}")
    kwargs = kwargs or {}
    if not isinstance(kwargs, dict):
        raise UserError(f"Expecting `kwargs` to be a dict, got {type(kwargs)}")
    names, values = ds.forward_arg_names(mod, args, kwargs)
    dyn = ds.resolve(dynamic_shapes, names, values)
    sig = inspect.signature(mod.forward)
    concrete = {k: p.default for k, p in sig.parameters.items()
                if k not in names and p.default is not inspect.Parameter.empty}
    graph, tracer, attr_values = _trace.trace(mod, names, [_clone(v) for v in values],
                                              concrete or None)
    keep, sym_shapes = _check_dynamic(graph, attr_values, names, values, dyn)
    agraph = _trace.to_aten_graph(graph, keep)

    # the program's inputs: parameters, buffers, lifted constants, then user inputs
    params = dict(mod.named_parameters())
    buffers = dict(mod.named_buffers())
    non_persistent = {f"{p}.{b}" if p else b for p, m in mod.named_modules()
                      for b in getattr(m, "_non_persistent_buffers_set", ())}
    g = Graph()
    env, specs, state, constants = {}, [], {}, {}
    for t, p in params.items():
        specs.append(InputSpec(InputKind.PARAMETER, TensorArgument(g.placeholder(
            "p_" + t.replace(".", "_")).name), t))
        state[t] = p
    for t, b in buffers.items():
        persistent = t not in non_persistent
        specs.append(InputSpec(InputKind.BUFFER, TensorArgument(g.placeholder(
            "b_" + t.replace(".", "_")).name), t, persistent))
        (state if persistent else constants)[t] = b
    by_target = {s.target: s.arg.name for s in specs}
    nodes_by_name = {n.name: n for n in g.nodes}
    for n in agraph.nodes:
        if n.op == "get_attr" and n.target not in by_target:
            ph = g.placeholder("c_" + n.target.replace(".", "_").lstrip("_"))
            specs.append(InputSpec(InputKind.CONSTANT_TENSOR, TensorArgument(ph.name),
                                   n.target))
            constants[n.target] = attr_values[n.target]
            by_target[n.target] = ph.name
            nodes_by_name[ph.name] = ph
    for n in agraph.nodes:
        if n.op == "get_attr":
            env[n] = nodes_by_name[by_target[n.target]]
    for nm in names:
        ph = g.placeholder(nm)
        specs.append(InputSpec(InputKind.USER_INPUT, TensorArgument(nm), None))
        nodes_by_name[nm] = ph
    for n in agraph.nodes:
        if n.op == "placeholder":
            if n.target in nodes_by_name:
                env[n] = nodes_by_name[n.target]
                env[n].meta.update(n.meta)
        elif n.op == "get_attr":
            env[n].meta.update(n.meta)
    for nm, v in zip(names, values):
        ph = nodes_by_name[nm]
        ph.meta["val"] = v
        if nm in sym_shapes:
            ph.meta["sym_shape"] = sym_shapes[nm]
    for s in specs:
        if s.kind != InputKind.USER_INPUT:
            ph = next(x for x in g.nodes if x.name == s.arg.name)
            ph.meta["val"] = state.get(s.target, constants.get(s.target))
    out_struct = None
    for n in agraph.nodes:
        if n.op == "placeholder" or n.op == "get_attr":
            continue
        if n.op == "output":
            flat = []

            def leaf(x):
                if isinstance(x, Node):
                    flat.append(env[x])
                    return len(flat) - 1
                return ("const", x)
            tree = map_aggregate(n.args[0], leaf)
            g.output(tuple(flat))
            out_struct = tree
            continue
        env[n] = g.node_copy(n, lambda x: env[x])
    out_specs = [OutputSpec(OutputKind.USER_OUTPUT, TensorArgument(x.name), None)
                 for x in g.output_node.args[0]]
    gm = framework.fx.GraphModule(Module(), g)
    shapes = [list(v.shape) if isinstance(v, framework.Tensor) else None for v in values]
    guards = GuardsFn(names, shapes, dyn)
    rc = {}
    for spec in dyn.values():
        for sym, lo, hi, _ in spec.values():
            rc[sym] = (lo, hi)
    return ExportedProgram(gm, ExportGraphSignature(specs, out_specs), state, rc,
                           (tuple(args), dict(kwargs)), constants, guards, out_struct,
                           (len(args), list(kwargs)))


def _check_dynamic(graph, attr_values, names, values, dyn):
    """Re-run the recorded graph with each dynamic dim changed: a failure or a changed branch
    means the code specialized it (torch's constraint violation); the values that change are
    kept symbolic and the tensor shapes that change get symbolic annotations."""
    from . import _trace
    from .dynamic_shapes import UserError
    if not dyn:
        return frozenset(), {}
    import framework
    base = _trace.rerun(graph, attr_values, dict(zip(names, values)))
    syms = {}
    for nm, dims in dyn.items():
        for d, (sym, lo, hi, dim) in dims.items():
            syms.setdefault(sym, []).append((nm, d, lo, hi, dim))
    keep, deltas, moved = set(), {}, {}
    for sym, where in syms.items():
        nm0, d0, lo, hi, dim = where[0]
        v0 = dict(zip(names, values))[nm0].shape[d0]
        v1 = v0 + 1 if v0 + 1 <= hi else v0 - 1
        inputs = _resized(names, values, {(n2, d2): v1 for (n2, d2, *_r) in where})
        label = getattr(dim, "__name__", sym)
        try:
            other = _trace.rerun(graph, attr_values, inputs)
            bad = [n for n in _trace.guard_nodes(graph) if bool(other[n]) != bool(base[n])]
        except Exception:           # the code only works at the example size
            bad = [None]
        if bad and dim is DimHint.AUTO:         # AUTO: the code needs it static, so it is
            for (n2, d2, *_r) in where:
                dyn[n2].pop(d2)
            continue
        if bad:
            raise UserError(
                f"Constraints violated ({label})! For more information, run with "
                f'TORCH_LOGS="+dynamic".\n  - You marked {label} as dynamic but your code '
                f"specialized it to be a constant ({v0}). If you're using mark_dynamic, either "
                "remove it or use maybe_mark_dynamic. If you're using Dim.DYNAMIC, replace it "
                f"with either Dim.STATIC or Dim.AUTO.\nSuggested fixes:\n  {label} = {v0}")
        for n, v in base.items():
            w = other[n]
            if isinstance(v, framework.Tensor):
                for i, (a, b) in enumerate(zip(v.shape, w.shape)):
                    if a != b:
                        deltas.setdefault(n, {}).setdefault(i, []).append((sym, v0, v1, a, b))
            elif not _trace.is_tensor(v) and v != w:
                keep.add(n)
                if isinstance(v, int) and isinstance(w, int):
                    deltas.setdefault(n, {}).setdefault(None, []).append((sym, v0, v1, v, w))
        moved[sym] = {(n2, d2): v1 for (n2, d2, *_r) in where}
    joint = None
    if len(moved) > 1:          # all symbols moved at once tells a product from a sum
        joint = _trace.rerun(graph, attr_values, _resized(
            names, values, {k: v for m in moved.values() for k, v in m.items()}))
    sym_shapes = {}
    for n, v in base.items():
        if n in deltas and isinstance(v, framework.Tensor):
            dims = list(v.shape)
            for i, terms in deltas[n].items():
                dims[i] = _affine(terms, v.shape[i], None if joint is None else
                                  joint[n].shape[i])
            n.meta["sym_shape"] = dims
        elif n in deltas and None in deltas[n]:
            n.meta["sym_int"] = f"Sym({_affine(deltas[n][None], v)})"
    for nm in [k for k, d in dyn.items() if not d]:
        dyn.pop(nm)
    for nm, v in zip(names, values):
        if nm in dyn:
            dims = list(v.shape)
            for d, (sym, *_r) in dyn[nm].items():
                dims[d] = sym
            sym_shapes[nm] = dims
    return frozenset(keep), sym_shapes


def _resized(names, values, sizes):
    """The example inputs with dims (name, dim) -> new size: cut, or grown with copies of
    their own first slices (so data-dependent Python sees similar values)."""
    import framework
    out = {}
    for nm, v in zip(names, values):
        for (n2, d), size in sizes.items():
            if n2 == nm:
                if v.shape[d] == 0:
                    shape = list(v.shape)
                    shape[d] = size
                    v = framework.zeros(shape, dtype=v.dtype)
                while v.shape[d] < size:
                    v = framework.cat([v, v.narrow(d, 0, min(size - v.shape[d], v.shape[d]))],
                                      d)
                v = v.narrow(d, 0, size)
        out[nm] = v
    return out


def _affine(terms, base, joint=None):
    """'2*s0 + 1' for a size that moves linearly with the symbols that changed it; 's0*s1'
    when moving all of them at once (joint) shows a product; else the example's number."""
    if joint is not None and len(terms) > 1:
        lin = base + sum(b - a for _, _, _, a, b in terms)
        if joint != lin:
            p0 = p1 = 1
            for _, v0, v1, _, _ in terms:
                p0, p1 = p0 * v0, p1 * v1
            k = base // p0
            if base % p0 or joint != k * p1:
                return base
            return "*".join(([str(k)] if k != 1 else []) + [t[0] for t in terms])
    parts, const = [], base
    for sym, v0, v1, a, b in terms:
        c = (b - a) // (v1 - v0)
        const -= c * v0
        parts.append(sym if c == 1 else f"{c}*{sym}")
    s = " + ".join(parts)
    return s if const == 0 else (f"{s} + {const}" if const > 0 else f"{s} - {-const}")

