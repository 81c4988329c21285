"""Graph -> Python source of `forward`, in torch.fx's layout (torch.fx.graph.CodeGen)."""
import enum
import math
from dataclasses import dataclass

from .node import Node, _get_qualified_name, _type_repr
from ._namespace import _custom_builtins

reflectable_magic_methods = {
    "add": "{} + {}", "sub": "{} - {}", "mul": "{} * {}", "floordiv": "{} // {}",
    "truediv": "{} / {}", "div": "{} / {}", "mod": "{} % {}", "pow": "{} ** {}",
    "lshift": "{} << {}", "rshift": "{} >> {}", "and_": "{} & {}", "or_": "{} | {}",
    "xor": "{} ^ {}", "getitem": "{}[{}]", "matmul": "{} @ {}",
}
magic_methods = {
    "eq": "{} == {}", "ne": "{} != {}", "lt": "{} < {}", "gt": "{} > {}", "le": "{} <= {}",
    "ge": "{} >= {}", "pos": "+{}", "neg": "-{}", "invert": "~{}",
    **reflectable_magic_methods,
}
inplace_methods = {
    "iadd": "{} += {}", "iand": "{} &= {}", "ifloordiv": "{} //= {}", "ilshift": "{} <<= {}",
    "imod": "{} %= {}", "imul": "{} *= {}", "imatmul": "{} @= {}", "ior": "{} |= {}",
    "ipow": "{} **= {}", "irshift": "{} >>= {}", "isub": "{} -= {}", "itruediv": "{} /= {}",
    "ixor": "{} ^= {}", "setitem": "{}[{}] = {}",
}


@dataclass
class PythonCode:
    """The source of `forward` and the globals it runs with."""
    src: str
    globals: dict


def _format_target(base, target):
    r = base
    for e in target.split("."):
        r = f"{r}.{e}" if e.isidentifier() else f'getattr({r}, "{e}")'
    return r


class CodeGen:
    def __init__(self):
        self._func_name = "forward"

    def gen_fn_def(self, free_vars, maybe_return_annotation):
        if len(free_vars) == 0 or free_vars[0] != "self":
            free_vars.insert(0, "self")
        return f"def {self._func_name}({', '.join(free_vars)}){maybe_return_annotation}:"

    def generate_output(self, output_args, repr_fn):
        return f"return {repr_fn(output_args)}"

    def process_inputs(self, *args):
        return args

    def process_outputs(self, outputs):
        return outputs

    def _gen_python_code(self, nodes, root_module, namespace, verbose=False):
        import framework
        free_vars, body, globals_, wrapped_fns = [], [], {}, {}
        maybe_return_annotation = [""]

        def add_global(name_hint, obj):
            if not name_hint.startswith("torch.") and callable(obj) and \
                    hasattr(obj, "__name__") and not isinstance(obj, type):
                try:
                    name_hint = _get_qualified_name(obj)
                except RuntimeError:
                    pass
            if name_hint.startswith("torch.") and obj is not framework.device:
                return name_hint            # Kiln's torch-named functions: `torch` is a global
            global_name = namespace.create_name(name_hint, obj)
            if global_name not in globals_:
                globals_[global_name] = obj
            return global_name

        for name, obj in _custom_builtins().items():
            add_global(name, obj)

        def type_repr(o):
            return add_global(_type_repr(o), o)

        def _get_repr(arg):
            if isinstance(arg, Node):
                return repr(arg)
            if isinstance(arg, tuple) and hasattr(arg, "_fields"):
                cls = type(arg)
                gname = add_global(f"{cls.__module__}.{cls.__qualname__}", cls)
                return f"{gname}{repr(tuple(arg))}"
            if isinstance(arg, enum.Enum):
                cls = arg.__class__
                return f"{add_global(cls.__name__, cls)}.{arg.name}"
            if isinstance(arg, framework.Tensor):
                dtype = str(arg.dtype).split(".")[-1]
                return f"torch.Tensor(size={list(arg.size())}, dtype={dtype})"
            if isinstance(arg, tuple):
                if len(arg) == 1:
                    return f"({_get_repr(arg[0])},)"
                return "(" + ", ".join(_get_repr(a) for a in arg) + ")"
            if isinstance(arg, list):
                return "[" + ", ".join(_get_repr(a) for a in arg) + "]"
            if isinstance(arg, dict):
                return "{" + ", ".join(f"{_get_repr(k)}: {_get_repr(v)}"
                                       for k, v in arg.items()) + "}"
            if isinstance(arg, slice):
                return (f"slice({_get_repr(arg.start)}, {_get_repr(arg.stop)}, "
                        f"{_get_repr(arg.step)})")
            if isinstance(arg, float) and (math.isinf(arg) or math.isnan(arg)):
                return repr(arg)            # inf / nan are globals
            if isinstance(arg, framework.dtype):
                return f"torch.{str(arg).split('.')[-1]}"
            return repr(arg)

        def _format_args(args, kwargs):
            res = [_get_repr(a) for a in args]
            res.extend(f"{k} = {_get_repr(v)}" for k, v in kwargs.items())
            return ", ".join(res)

        # free each value after its last use, as torch's code does
        node_to_last_use, user_to_last_uses = {}, {}
        for node in reversed(list(nodes)):
            for inp in node._input_nodes:
                if inp not in node_to_last_use:
                    node_to_last_use[inp] = node
                    user_to_last_uses.setdefault(node, []).append(inp)

        def delete_unused_values(user):
            if user.op == "placeholder":
                return
            if user.op == "output":
                body.append("\n")
                return
            to_delete = list(user_to_last_uses.get(user, []))
            if len(user.users) == 0:
                to_delete.append(user)
            if to_delete:
                body.append(";  " + " = ".join([repr(n) for n in to_delete] + ["None"]) + "\n")
            else:
                body.append("\n")

        prev_summary = [None]

        def emit_node(node):
            ann = "" if node.type is None else f" : {type_repr(node.type)}"
            if verbose and node.op not in ("placeholder", "output"):
                st = node.meta.get("stack_trace")
                summary = "\n# " + (st.strip().splitlines()[-1] if st else
                                    "No stacktrace found for following nodes") + "\n"
                if summary != prev_summary[0]:
                    prev_summary[0] = summary
                    body.append(summary)
            if node.op == "placeholder":
                default = "" if not node.args else f" = {_get_repr(node.args[0])}"
                free_vars.append(f"{node.target}{ann}{default}")
                raw_name = node.target.replace("*", "")
                if raw_name != repr(node):
                    body.append(f"{repr(node)} = {raw_name}\n")
                return
            if node.op == "call_method":
                body.append(f"{repr(node)}{ann} = "
                            f"{_format_target(_get_repr(node.args[0]), node.target)}"
                            f"({_format_args(node.args[1:], node.kwargs)})")
                return
            if node.op == "call_function":
                tname = getattr(node.target, "__name__", "")
                is_operator = getattr(node.target, "__module__", "") == "_operator"
                if is_operator and tname in magic_methods:
                    args = (_get_repr(a) for a in node.args)
                    body.append(f"{repr(node)}{ann} = {magic_methods[tname].format(*args)}")
                    return
                if is_operator and tname in inplace_methods:
                    args = (_get_repr(a) for a in node.args)
                    body.append(f"{inplace_methods[tname].format(*args)};"
                                f"  {repr(node)}{ann} = {_get_repr(node.args[0])}")
                    return
                global_name = add_global(_get_qualified_name(node.target), node.target)
                if global_name == "getattr" and len(node.args) == 2 and \
                        isinstance(node.args[1], str) and node.args[1].isidentifier():
                    body.append(f"{repr(node)}{ann} = "
                                f"{_format_target(_get_repr(node.args[0]), node.args[1])}")
                    return
                body.append(f"{repr(node)}{ann} = {global_name}("
                            f"{_format_args(node.args, node.kwargs)})")
                if node.meta.get("is_wrapped", False):
                    wrapped_fns.setdefault(global_name)
                return
            if node.op == "call_module":
                body.append(f"{repr(node)}{ann} = {_format_target(root_module, node.target)}("
                            f"{_format_args(node.args, node.kwargs)})")
                return
            if node.op == "get_attr":
                body.append(f"{repr(node)}{ann} = {_format_target(root_module, node.target)}")
                return
            if node.op == "output":
                if node.type is not None:
                    maybe_return_annotation[0] = f" -> {type_repr(node.type)}"
                body.append(self.generate_output(node.args[0], _get_repr))
                return
            raise NotImplementedError(f"node: {node.op} {node.target}")

        for node in nodes:
            emit_node(node)
            delete_unused_values(node)
        if len(body) == 0:
            body.append("pass\n")
        if wrapped_fns:
            from ._symbolic_trace import wrap
            wrap_name = add_global("wrap", wrap)
            wrap_stmts = "\n".join(f'{wrap_name}("{name}")' for name in wrapped_fns)
        else:
            wrap_stmts = ""
        prologue = self.gen_fn_def(free_vars, maybe_return_annotation[0])
        code = "".join(body).lstrip("\n")
        code = "\n".join("    " + line for line in code.split("\n"))
        return PythonCode(f"\n{wrap_stmts}\n\n{prologue}\n{code}", globals_)
