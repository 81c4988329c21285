"""torch.export for Kiln: export(mod, args) records forward (fx tracing with the example
values, non-strict as torch's default) as an aten-level ExportedProgram; Dim and
dynamic_shapes=; save/load in Kiln's own zip format (no pickle)."""
import enum
import inspect

from .dynamic_shapes import (Dim, DimHint, UserError, ConstraintViolationError, dims,
                             ShapesCollection, AdditionalInputs)
from .graph_signature import (ExportGraphSignature, InputKind, OutputKind, InputSpec,
                              OutputSpec, TensorArgument, ConstantArgument)
from .exported_program import (ExportedProgram, ModuleCallSignature, ModuleCallEntry,
                               default_decompositions)
from framework.fx import Graph
from ._serialize import save, load

__all__ = ["export", "draft_export", "ExportedProgram", "ExportGraphSignature", "Dim", "dims",
           "save", "load", "InputKind", "OutputKind", "InputSpec", "OutputSpec",
           "TensorArgument", "ConstantArgument", "UserError", "ConstraintViolationError",
           "ShapesCollection", "AdditionalInputs", "ModuleCallSignature", "ModuleCallEntry",
           "default_decompositions", "register_dataclass"]


def register_dataclass(cls, *, serialized_type_name=None):
    """A dataclass as a pytree node, so export takes it as an input (one placeholder per field,
    `inp_a`) and returns it from module() (its fields are the graph's outputs)."""
    from framework.utils import _pytree
    _pytree.register_dataclass(cls, serialized_type_name=serialized_type_name)


def _is_node(v):
    """A value export flattens: an instance of a class registered as a pytree node (not a
    container it already walks)."""
    from framework.utils import _pytree
    return type(v) in _pytree.SUPPORTED_NODES and not isinstance(v, (tuple, list, dict))


def _flat_inputs(names, values):
    """(flat names, flat values, groups): registered dataclass inputs split into their fields
    (`inp_a`); groups: per input, its pytree spec or None."""
    from framework.utils import _pytree
    fnames, fvalues, groups = [], [], []
    for nm, v in zip(names, values):
        if not _is_node(v):
            fnames.append(nm)
            fvalues.append(v)
            groups.append(None)
            continue
        kl, spec = _pytree.tree_flatten_with_path(v)
        for path, leaf in kl:
            fnames.append("_".join([nm] + [str(getattr(k, "name", getattr(k, "idx", getattr(
                k, "key", k)))) for k in path]))
            fvalues.append(leaf)
        groups.append(spec)
    return fnames, fvalues, groups


def _dataclass_root(mod, names, groups, fnames, box):
    """A subclass for mod whose forward takes the flat inputs, rebuilds the dataclasses, runs
    the real forward and returns a dataclass output's leaves (box[0]: its pytree spec)."""
    from framework.utils import _pytree
    cls = type(mod)

    def call(self, flat):
        kw, i = {}, 0
        for nm, g in zip(names, groups):
            if g is None:
                kw[nm], i = flat[i], i + 1
            else:
                kw[nm], i = _pytree.tree_unflatten(flat[i:i + g.num_leaves], g), i + g.num_leaves
        out = cls.forward(self, **kw)
        found = []
        _pytree.tree_map(lambda x: None, out, is_leaf=lambda x: found.append(1) if _is_node(
            x) else False)
        if not found:
            return out
        leaves, box[0] = _pytree.tree_flatten(out)
        return tuple(leaves)
    ns = {"_call": call}
    exec(f"def forward(self, {', '.join(fnames)}):\n    return _call(self, [{', '.join(fnames)}])",
         ns)
    return type(cls.__name__, (cls,), {"forward": ns["forward"], "__module__": cls.__module__})


class FailureType(enum.IntEnum):
    MISSING_FAKE_KERNEL = 1
    DATA_DEPENDENT_ERROR = 2
    GUARD_ADDED = 3
    MISMATCHED_FAKE_KERNEL = 4

    def __str__(self):
        return self.name


class FailureReport:
    """One issue draft_export worked around (Kiln finds GUARD_ADDED: a dynamic dim the code
    specializes, made static)."""

    def __init__(self, failure_type, data, xfail=False):
        self.failure_type, self.data, self.xfail = failure_type, data, xfail

    def __repr__(self):
        return (f"FailureReport(failure_type={self.failure_type}, xfail={self.xfail}, "
                f"data={self.data})")

    def print(self, str_to_filename=None):
        d = self.data
        return f"""Guard Added.
    A guard was added during tracing, which might've resulted in some incorrect
    tracing or constraint violation error.
    Specifically, this guard was added: {d["expr"]}, where {d["symbol_to_sources"]}.
    Because of this, we have modified the dynamic shapes structure to be the
    following. You can also use torch.export.Dim.AUTO instead to specify your
    dynamic shapes, and we will automatically infer the dynamism for you.
    ```
    dynamic_shapes = {d["new_dynamic_shapes"]}
    ```
"""


class DraftExportReport:
    """What draft_export found: Kiln's export traces with the example values, so nothing is
    left to report once it returns (its errors are raised)."""

    def __init__(self, failures=None, str_to_filename=None, expressions_created=None,
                 op_profiles=None):
        self.failures = list(failures or [])
        self.str_to_filename = dict(str_to_filename or {})
        self.expressions_created = dict(expressions_created or {})
        self.op_profiles = dict(op_profiles or {})

    def successful(self):
        return len(self.failures) == 0 or all(f.xfail for f in self.failures)

    def apply_suggested_fixes(self):
        raise NotImplementedError("Not implemented yet")

    def __repr__(self):
        return f"DraftExportReport({self.failures})"

    def __str__(self):
        if self.successful():
            bar = "#" * 94
            return (f"\033[92m\n{bar}\nCongratulations: No issues are found during export, "
                    "and it was able to soundly produce a graph.\nYou can now change back to "
                    f"torch.export.export()\n{bar}\n\033[0m")
        bar = "#" * 99
        out = (f"\033[93m\n{bar}\nWARNING: {len(self.failures)} issue(s) found during export, "
               "and it was not able to soundly produce a graph.\nPlease follow the instructions "
               f"to fix the errors.\n{bar}\n\n")
        for i, f in enumerate(self.failures):
            out += f"{i + 1}. {f.print(self.str_to_filename)}\n"
        return out + "\033[0m"


def draft_export(mod, args, kwargs=None, *, dynamic_shapes=None,
                 preserve_module_call_signature=(), strict=False,
                 prefer_deferred_runtime_asserts_over_guards=False):
    """export() that works around what it can and reports it (ep._report): a dynamic dim the
    code specializes is made static (GUARD_ADDED) instead of raising."""
    from . import dynamic_shapes as ds
    failures = []
    if isinstance(dynamic_shapes, (ds.ShapesCollection, ds.AdditionalInputs)):
        dynamic_shapes = dynamic_shapes.dynamic_shapes(mod, args, kwargs)
    while True:
        try:
            ep = export(mod, args, kwargs, dynamic_shapes=dynamic_shapes, strict=strict,
                        preserve_module_call_signature=preserve_module_call_signature)
            break
        except UserError as e:
            if getattr(e, "_specialized", None) is None:
                raise
            sym, v0, where = e._specialized
            names, _ = ds.forward_arg_names(mod, args, kwargs or {})
            spec = dict(dynamic_shapes) if isinstance(dynamic_shapes, dict) else \
                dict(zip(names, dynamic_shapes))
            for n, d in where:          # the dim becomes Dim.AUTO: static where it must be
                v = spec[n]
                v = dict(v) if isinstance(v, dict) else list(v)
                v[d] = DimHint.AUTO
                spec[n] = v if isinstance(v, dict) else type(spec[n])(v)
            dynamic_shapes = spec if isinstance(dynamic_shapes, dict) else \
                type(dynamic_shapes)(spec[n] for n in names)
            n0, d0 = where[0]
            failures.append(FailureReport(FailureType.GUARD_ADDED, {
                "expr": f"Eq({sym}, {v0})", "symbol_to_sources": {sym: f"L['{n0}'].size()[{d0}]"},
                "new_dynamic_shapes": dynamic_shapes}))
    ep._report = DraftExportReport(failures)
    return ep


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
    more = dynamic_shapes if isinstance(dynamic_shapes, ds.AdditionalInputs) else None
    if isinstance(dynamic_shapes, (ds.ShapesCollection, ds.AdditionalInputs)):
        dynamic_shapes = dynamic_shapes.dynamic_shapes(mod, args, kwargs)
    dyn = ds.resolve(dynamic_shapes, names, values)
    sig = inspect.signature(mod.forward)
    concrete = {k: p.default for k, p in sig.parameters.items()
                if k not in names and p.default is not inspect.Parameter.empty}
    names0 = names
    fnames, fvalues, groups = _flat_inputs(names, values)
    out_box = [None]
    cls = type(mod)
    if fnames != names or any(g is not None for g in groups):
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in sig.parameters.values()):
            raise NotImplementedError("torch.export: a dataclass input to a forward with "
                                      "*args / **kwargs")
        for nm, g in zip(names, groups):
            if g is not None and isinstance(dynamic_shapes, dict) and \
                    dynamic_shapes.get(nm) is not None:
                raise NotImplementedError(f"torch.export: dynamic shapes for the dataclass "
                                          f"input '{nm}'")
        mod.__class__ = _dataclass_root(mod, names, groups, fnames, out_box)
        concrete = None
    try:
        graph, tracer, attr_values = _trace.trace(mod, fnames, [_clone(v) for v in fvalues],
                                                  concrete or None,
                                                  preserve_module_call_signature)
    finally:
        mod.__class__ = cls
    names, values = fnames, fvalues
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
    from framework.utils import _pytree
    from .exported_program import _unflatten
    calls = [ModuleCallEntry("", ModuleCallSignature(
        [], [], _pytree.tree_structure((tuple(args), dict(kwargs))),
        out_box[0] if out_box[0] is not None else
        _pytree.tree_structure(_unflatten(out_struct, list(g.output_node.args[0]))),
        list(inspect.signature(mod.forward).bind(*args, **kwargs).arguments)))]
    aenv = agraph._export_env

    def arg_of(x):          # a traced value -> its argument in the program's graph
        from framework.fx import Proxy
        n = aenv.get(x.node) if isinstance(x, Proxy) else None
        n = env.get(n, n) if isinstance(n, Node) else n
        return TensorArgument(n.name) if isinstance(n, Node) else ConstantArgument("", n)
    for n, _ in mod.named_modules():
        if not n:
            continue
        sig = None
        if n in graph._export_calls:
            a, k, out = graph._export_calls[n]
            sig = ModuleCallSignature(
                [arg_of(x) for x in _pytree.tree_leaves((a, k))],
                [arg_of(x) for x in _pytree.tree_leaves(out)],
                _pytree.tree_structure((tuple(a), dict(k))), _pytree.tree_structure(out))
        calls.append(ModuleCallEntry(n, sig))
    ep = ExportedProgram(gm, ExportGraphSignature(specs, out_specs), state, rc,
                         (tuple(args), dict(kwargs)), constants, guards, out_struct,
                         (len(args), list(kwargs)), calls)
    if any(gr is not None for gr in groups) or out_box[0] is not None:
        ep._pytree_io = (list(names0), groups, out_box[0])
    if more is not None:
        more.verify(ep)
    return ep


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
            err = UserError(
                f"Constraints violated ({label})! For more information, run with "
                f'TORCH_LOGS="+dynamic".\n  - You marked {label} as dynamic but your code '
                f"specialized it to be a constant ({v0}). If you're using mark_dynamic, either "
                "remove it or use maybe_mark_dynamic. If you're using Dim.DYNAMIC, replace it "
                f"with either Dim.STATIC or Dim.AUTO.\nSuggested fixes:\n  {label} = {v0}")
            err._specialized = (sym, v0, [(n2, d2) for (n2, d2, *_r) in where])
            raise err
        for n, v in base.items():
            w = other[n]
            if isinstance(v, framework.Tensor):
                for i, (a, b) in enumerate(zip(v.shape, w.shape)):
                    if a != b:
                        deltas.setdefault(n, {}).setdefault(i, []).append((sym, v0, v1, a, b))
            elif not _trace._has_tensor(v) and v != w:
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

