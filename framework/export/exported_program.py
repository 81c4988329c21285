"""ExportedProgram: an aten-level fx graph whose parameters, buffers and constants are inputs,
with its signature, state_dict and range constraints (torch.export.exported_program)."""
import dataclasses
import re
from typing import Optional

from framework.nn import Module
from framework.fx import Graph, GraphModule
from framework.fx.node import map_arg
from .graph_signature import InputKind

__all__ = ["ExportedProgram", "ModuleCallSignature", "ModuleCallEntry",
           "default_decompositions"]

_DTYPE_ABBR = {"float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16",
               "int64": "i64", "int32": "i32", "int16": "i16", "int8": "i8", "uint8": "u8",
               "bool": "b8", "complex64": "c64", "complex128": "c128"}


def _shape_str(node):
    """'f32[2, 4]' (torch's annotation) from the node's meta; dims may be symbolic."""
    v = node.meta.get("val")
    sym = node.meta.get("sym_shape")
    import framework
    if not isinstance(v, framework.Tensor):
        return node.meta.get("sym_int")
    dt = str(v.dtype).split(".")[-1]
    dims = sym if sym is not None else list(v.shape)
    return f'{_DTYPE_ABBR.get(dt, dt)}[{", ".join(str(d) for d in dims)}]'


def readable(graph, root_module="self", name="GraphModule"):
    """torch's print_readable layout: annotated arguments and results, `# File:` lines."""
    saved = {n: n.type for n in graph.nodes}
    for n in graph.nodes:
        n.type = None
    try:
        src = graph.python_code(root_module=root_module, verbose=True).src
    finally:
        for n, t in saved.items():
            n.type = t
    ann = {n.name: _shape_str(n) for n in graph.nodes}
    targets = {n.target for n in graph.nodes if n.op == "placeholder"}
    ann.update({n.target: ann[n.name] for n in graph.nodes if n.op == "placeholder"})
    out = []
    for line in src.lstrip("\n").split("\n"):
        m = re.match(r"^def forward\(self(.*)\):$", line)
        if m:
            params = [p.strip() for p in m.group(1).split(",") if p.strip()]
            params = [f'{p}: "{ann[p]}"' if ann.get(p) else p for p in params]
            line = f"def forward({', '.join(['self'] + params)}):"
        m = re.match(r"^(\s+)(\w+) = (.*)$", line)
        if m and ann.get(m.group(2)) and not m.group(3).startswith("None") and \
                m.group(3) not in targets:          # (not `input_1 = input`, as torch)
            line = f'{m.group(1)}{m.group(2)}: "{ann[m.group(2)]}" = {m.group(3)}'
        out.append(line.rstrip())
    body = "\n".join("    " + ln if ln else ln for ln in out).rstrip("\n ")
    return f"class {name}(torch.nn.Module):\n{body}\n"


def _attach_print_readable(gm):
    """The GraphModule's print_readable with torch's shape annotations."""
    def print_readable(print_output=True, include_stride=False, include_device=False,
                       colored=False):
        out = readable(gm.graph)
        if print_output:
            print(out)
        return out
    gm.print_readable = print_readable
    return gm


class GuardsFn(Module):
    """The input checks of ExportedProgram.module(): torch's `_guards_fn`."""

    def __init__(self, names, shapes, dyn):
        super().__init__()
        self._names, self._shapes, self._dyn = names, shapes, dyn

    def forward(self, *inputs):
        import framework
        first = {}
        for name, shape, x in zip(self._names, self._shapes, inputs):
            if shape is None:
                continue
            if not isinstance(x, framework.Tensor):
                raise AssertionError(f"Guard failed: {name} is not a Tensor")
            if x.dim() != len(shape):
                raise AssertionError(f"Guard failed: {name}.dim() == {len(shape)}")
            for d, s in enumerate(shape):
                got = x.shape[d]
                spec = self._dyn.get(name, {}).get(d)
                if spec is None:
                    if got != s:
                        raise AssertionError(f"Guard failed: {name}.size()[{d}] == {s}")
                    continue
                sym, lo, hi = spec[:3]
                if got < lo:
                    raise AssertionError(f"Guard failed: {name}.size()[{d}] >= {lo}")
                if got > hi:
                    raise AssertionError(f"Guard failed: {name}.size()[{d}] <= {hi}")
                if sym in first and first[sym][2] != got:
                    n0, d0, _ = first[sym]
                    raise AssertionError(f"Guard failed: {name}.size()[{d}] == "
                                         f"{n0}.size()[{d0}]")
                first.setdefault(sym, (name, d, got))


def _unflatten(tree, flat):
    if tree is None:
        return tuple(flat)
    if isinstance(tree, tuple) and len(tree) == 2 and tree[0] == "const":
        return tree[1]
    if isinstance(tree, int):
        return flat[tree]
    if isinstance(tree, (tuple, list)):
        return type(tree)(_unflatten(t, flat) for t in tree)
    if isinstance(tree, dict):
        return {k: _unflatten(t, flat) for k, t in tree.items()}
    return tree


def _check_call_spec(gm, n_args, kw_names):
    """module() takes the inputs as export was given them (positional count, keyword names):
    torch's pytree check, ValueError otherwise."""
    cls = type(gm)              # (each GraphModule has its own class)
    orig = cls.__call__

    def __call__(self, *args, **kwargs):
        if sorted(kwargs) != sorted(kw_names):
            raise ValueError(f"Ran into a kwarg keyword mismatch: Got the following keywords "
                             f"{list(kwargs)} but expected {list(kw_names)}")
        if len(args) != n_args:
            raise ValueError(f"Trying to flatten user inputs with exported input tree spec: "
                             f"{n_args} positional inputs but actually got {len(args)}.\n"
                             "Please check that the inputs have the same number and type of "
                             "args and kwargs as the ones you used when tracing.")
        return orig(self, *args, **kwargs)
    cls.__call__ = __call__


@dataclasses.dataclass
class ModuleCallSignature:
    """A module call's boundary in the graph: argument nodes, output nodes and the pytree
    specs of its inputs (args, kwargs) and outputs."""
    inputs: list
    outputs: list
    in_spec: object
    out_spec: object
    forward_arg_names: Optional[list] = None


@dataclasses.dataclass
class ModuleCallEntry:
    """One entry of ExportedProgram.module_call_graph: a module's path and, for the root,
    its call signature."""
    fqn: str
    signature: Optional[ModuleCallSignature] = None


def _flatten_io(gm, names, groups, out_spec, in_spec=None):
    """module() of a program with register_dataclass inputs / outputs: the call takes them
    whole (split into the graph's placeholders) and returns the output dataclass."""
    from framework.utils import _pytree
    cls = type(gm)
    orig = cls.__call__

    def __call__(self, *args, **kwargs):
        vals = list(args) + [kwargs[n] for n in names[len(args):] if n in kwargs]
        flat = []
        for v, g in zip(vals, groups):
            if g is None:
                flat.append(v)
            else:
                leaves, spec = _pytree.tree_flatten(v)
                if spec != g:
                    got = _pytree.tree_structure((tuple(args), dict(kwargs)))
                    raise ValueError(f"Trying to flatten user inputs with exported input tree "
                                     f"spec: \n{in_spec}\nbut actually got inputs with tree "
                                     f"spec of: \n{got}.\nPlease check that the inputs have "
                                     "the same number and type of args and kwargs as the ones "
                                     "you used when tracing.")
                flat += leaves
        out = orig(self, *flat)
        if out_spec is None:
            return out
        return _pytree.tree_unflatten(list(out) if isinstance(out, tuple) else [out], out_spec)
    cls.__call__ = __call__


class CustomDecompTable(dict):
    """What default_decompositions() returns: {OpOverload: decomposition} that
    run_decompositions(decomp_table) applies; pop an op to keep it."""

    def copy(self):
        return CustomDecompTable(self)

    def materialize(self):
        return dict(self)


def default_decompositions():
    """The decompositions run_decompositions() applies by default (the ops of torch's default
    table that Kiln decomposes)."""
    from ._decomp import default_table
    return CustomDecompTable(default_table())


def _copy_():
    from ._aten import lookup
    return lookup("copy_.default")


class ExportedProgram:
    """What torch.export.export returns: call `.module()` to run it."""

    def __init__(self, graph_module, graph_signature, state_dict, range_constraints,
                 example_inputs=None, constants=None, _guards=None, _out_tree=None,
                 _in_spec=None, module_call_graph=None):
        self._graph_module = _attach_print_readable(graph_module)
        self._graph_signature = graph_signature
        self._state_dict = state_dict
        self._range_constraints = range_constraints
        self._example_inputs = example_inputs
        self.constants = constants or {}
        self._guards = _guards
        self._out_tree = _out_tree      # the forward's output structure over flat indices
        self._in_spec = _in_spec        # (number of positional inputs, keyword names)
        self._module_call_graph = module_call_graph or []
        self._pytree_io = None     # (input names, their pytree specs or None, output spec)

    graph_module = property(lambda self: self._graph_module)
    graph = property(lambda self: self._graph_module.graph)
    graph_signature = property(lambda self: self._graph_signature)
    state_dict = property(lambda self: self._state_dict)
    range_constraints = property(lambda self: self._range_constraints)
    example_inputs = property(lambda self: self._example_inputs)
    module_call_graph = property(lambda self: self._module_call_graph)
    dialect = "ATEN"

    def parameters(self):
        for _, p in self.named_parameters():
            yield p

    def named_parameters(self):
        for t in self._graph_signature.parameters:
            yield t, self._state_dict[t]

    def buffers(self):
        for _, b in self.named_buffers():
            yield b

    def named_buffers(self):
        for t in self._graph_signature.buffers:
            yield t, self._state_dict[t] if t in self._state_dict else self.constants[t]

    def __call__(self, *args, **kwargs):
        raise RuntimeError("Unable to call ExportedProgram directly. You should use "
                           "`exported_program.module()` instead.")

    def run_decompositions(self, decomp_table=None, decompose_custom_triton_ops=False):
        """An equivalent program with in-place ops made functional (mutated buffers and
        inputs returned first) and the ops of decomp_table (default: default_decompositions())
        decomposed as torch's table does (framework/export/_decomp.py); other ops are kept."""
        from ._decomp import decompose
        from .graph_signature import ExportGraphSignature, OutputSpec, TensorArgument, \
            OutputKind
        g, muts, user = decompose(self.graph, self._graph_signature.input_specs, decomp_table)
        specs = [s for s in self._graph_signature.output_specs
                 if s.kind == OutputKind.USER_OUTPUT]
        outs = [OutputSpec(OutputKind[k], TensorArgument(n.name), t) for k, t, n in muts]
        outs += [OutputSpec(s.kind, TensorArgument(n.name), s.target) for s, n in
                 zip(specs, user)]
        return ExportedProgram(GraphModule(Module(), g),
                               ExportGraphSignature(list(self._graph_signature.input_specs),
                                                    outs),
                               self._state_dict, self._range_constraints, self._example_inputs,
                               self.constants, self._guards, self._out_tree, self._in_spec,
                               self._module_call_graph)._with_io(self._pytree_io)

    def _with_io(self, io):
        self._pytree_io = io
        return self

    def validate(self):
        self.graph.lint()

    def module(self):
        """A GraphModule that runs the program: parameters and buffers as attributes (shared
        with state_dict), the user inputs as arguments, input shapes checked first."""
        g = Graph()
        env, attrs = {}, {}
        specs = {s.arg.name: s for s in self._graph_signature.input_specs}
        user = [n for n in self.graph.nodes if n.op == "placeholder"
                and specs[n.target].kind == InputKind.USER_INPUT]
        for n in self.graph.nodes:
            if n.op == "placeholder" and n not in user:
                s = specs[n.target]
                t = self._state_dict.get(s.target, self.constants.get(s.target))
                attrs[s.target] = t
                env[n] = g.get_attr(s.target)
                env[n].meta = dict(n.meta)
        for n in user:
            env[n] = g.placeholder(n.target)
            env[n].meta = dict(n.meta)
        if self._guards is not None:
            attrs["_guards_fn"] = self._guards
            g.call_module("_guards_fn", tuple(env[n] for n in user))
        for n in self.graph.nodes:
            if n.op == "placeholder":
                continue
            if n.op == "output":
                outs = list(map_arg(n.args[0], lambda x: env[x]))
                # mutation outputs: copied into their buffer / input after the call, as torch's
                from .graph_signature import OutputKind
                by_target = {s.target: s.arg.name for s in self._graph_signature.input_specs}
                user, copied = [], {}
                for s, v in zip(self._graph_signature.output_specs, outs):
                    if s.kind == OutputKind.USER_OUTPUT:
                        user.append(v)
                        continue
                    ph = by_target.get(s.target, s.target)
                    dst = env[next(x for x in self.graph.nodes if x.name == ph)]
                    c = g.create_node("call_function", _copy_(), (dst, v), {},
                                      name="copy__default")
                    c.meta = dict(v.meta)
                    if s.kind == OutputKind.USER_INPUT_MUTATION:
                        copied[v] = c
                user = [copied.get(v, v) for v in user]
                g.output(_unflatten(self._out_tree, user))
                continue
            env[n] = g.node_copy(n, lambda x: env[x])
        gm = _attach_print_readable(GraphModule(attrs, g))
        if self._pytree_io is not None:
            root = self._module_call_graph[0].signature if self._module_call_graph else None
            _flatten_io(gm, *self._pytree_io, root.in_spec if root is not None else None)
        if self._in_spec is not None:
            _check_call_spec(gm, *self._in_spec)
        return gm

    def __str__(self):
        code = "    " + readable(self.graph).replace("\n", "\n    ")
        sig = str(self._graph_signature).replace("\n", "\n    ")
        rc = ", ".join(f"{k}: VR[{lo}, {'int_oo' if hi == float('inf') else hi}]"
                       for k, (lo, hi) in self._range_constraints.items())
        return (f"ExportedProgram:\n{code}\nGraph signature: {sig}\n"
                f"Range constraints: {{{rc}}}\n")

    __repr__ = __str__
