"""Operator schemas as torch.library writes them: "ns::name.overload(Tensor x, int n=2, *,
Tensor(a!) out) -> Tensor(a!)". parse_schema reads one; a FunctionSchema prints it back in
PyTorch's form and binds a call's arguments to it with PyTorch's error messages."""
import re

from .tensor import Tensor
from runtime import dtypes as _dt
from runtime.device import Device as _Device

_PYBIND = ("Unable to cast Python instance of type <class '{}'> to C++ type '?' (#define "
           "PYBIND11_DETAILED_ERROR_MESSAGES or compile in debug mode for details)")


def _fmt_float(v):
    # C++'s 17 significant digits, a trailing "." on whole numbers: 1.0 -> "1.", 0.5 -> "0.5",
    # 1e-05 -> "1.0000000000000001e-05"
    s = "%.17g" % v
    return s if any(c in s for c in ".en") else s + "."


def _fmt_default(ty, v):
    if v is None:
        return "None"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, float) or (ty.startswith("float") and isinstance(v, int)):
        return _fmt_float(float(v))
    if isinstance(v, list):
        return "[" + ", ".join(_fmt_default(ty[:ty.index("[")] if "[" in ty else ty, x)
                               for x in v) + "]"
    return str(v)


class Argument:
    def __init__(self, name, type, default_value=None, has_default=False, kwarg_only=False,
                 alias=None):
        self.name, self.type, self.default_value = name, type, default_value
        self.has_default, self.kwarg_only, self.alias = has_default, kwarg_only, alias

    @property
    def is_write(self):
        return self.alias is not None and self.alias.endswith("!")

    def __str__(self):
        ty = self.type
        if self.alias is not None:           # Tensor(a!), Tensor(a!)[] and Tensor(a)?
            base = re.match(r"Tensor", ty)
            ty = f"Tensor({self.alias})" + ty[base.end():] if base else ty
        s = f"{ty} {self.name}" if self.name else ty
        if self.has_default:
            s += "=" + _fmt_default(self.type, self.default_value)
        return s


class FunctionSchema:
    def __init__(self, name, overload_name, arguments, returns):
        self.name, self.overload_name = name, overload_name
        self.arguments, self.returns = arguments, returns

    def __str__(self):
        args, star = [], False
        for a in self.arguments:
            if a.kwarg_only and not star:
                args.append("*")
                star = True
            args.append(str(a))
        rets = [str(r) for r in self.returns]
        r = rets[0] if len(rets) == 1 and not self.returns[0].name else f"({', '.join(rets)})"
        full = self.name + (f".{self.overload_name}" if self.overload_name else "")
        return f"{full}({', '.join(args)}) -> {r}"

    __repr__ = __str__

    def bind(self, args, kwargs):
        """The values of every argument, in schema order, from a Python call (defaults filled
        in); RuntimeError with PyTorch's message when the call does not match."""
        decl = f"Declaration: {self}"
        op = f"{self.name}()"
        params = self.arguments
        npos = sum(not a.kwarg_only for a in params)
        if len(args) > npos and npos < len(params):
            raise RuntimeError(f"{op} takes {npos} positional argument(s) but {len(args)} "
                               f"was/were given.  {decl}")
        if len(args) + len(kwargs) > len(params):
            raise RuntimeError(f"{op} expected at most {len(params)} argument(s) but received "
                               f"{len(args) + len(kwargs)} argument(s). {decl}")
        names = [a.name for a in params]
        for k in kwargs:
            if k not in names:
                raise RuntimeError(f"Unknown keyword argument '{k}' for operator "
                                   f"'{self.name}'. Schema: {self}")
        out = []
        for i, a in enumerate(params):
            if i < len(args):
                if a.name in kwargs:
                    raise RuntimeError(f"{op} got multiple values for argument '{a.name}'. "
                                       f"{decl}")
                v = args[i]
            elif a.name in kwargs:
                v = kwargs[a.name]
            elif a.has_default:
                v = a.default_value
            else:
                raise RuntimeError(f"{op} is missing value for argument '{a.name}'. {decl}")
            why = _mismatch(a.type, v)
            if why is not None:
                raise RuntimeError(f"{op} Expected a value of type '{_py_type(a.type)}' for "
                                   f"argument '{a.name}' but instead found type "
                                   f"'{type(v).__name__}'.\nPosition: {i}\nValue: {v!r}\n"
                                   f"{decl}\nCast error details: {why}")
            if isinstance(v, int) and re.fullmatch(r"(Sym)?int\[\d+\]\??", a.type):
                v = [v] * int(a.type[a.type.index("[") + 1:a.type.index("]")])
            out.append(v)
        return out


def _py_type(ty):
    # the type names PyTorch's messages use: Tensor[] -> List[Tensor], Scalar -> number
    if ty.endswith("?"):
        return f"Optional[{_py_type(ty[:-1])}]"
    m = re.fullmatch(r"(.*)\[\d*\]", ty)
    if m:
        return f"List[{_py_type(m.group(1))}]"
    return {"Scalar": "number", "SymInt": "int", "ScalarType": "int"}.get(ty, ty)


def _scalar_ok(base, v):
    if base == "Tensor":
        return isinstance(v, Tensor)
    if base in ("int", "SymInt"):
        return isinstance(v, int) or (isinstance(v, Tensor) and v.dim() == 0
                                      and not v.is_floating_point())
    if base in ("float", "SymFloat"):
        return isinstance(v, (int, float)) and not isinstance(v, bool) or \
            (isinstance(v, Tensor) and v.dim() == 0)
    if base == "bool":
        return isinstance(v, bool)
    if base == "str":
        return isinstance(v, str)
    if base == "Scalar":
        return isinstance(v, (bool, int, float, complex)) or \
            (isinstance(v, Tensor) and v.dim() == 0)
    if base == "ScalarType":
        return isinstance(v, _dt.DType)
    if base == "Device":
        return isinstance(v, (_Device, str, int))
    return True                     # Layout, MemoryFormat, Generator, Any: not checked


def _mismatch(ty, v):
    """None when v fits the schema type ty, else PyTorch's cast error detail."""
    if ty.endswith("?"):
        if v is None:
            return None
        ty = ty[:-1]
    m = re.fullmatch(r"(.*?)\[(\d*)\]", ty)
    if m:
        elem, n = m.group(1), m.group(2)
        if n and elem in ("int", "SymInt") and isinstance(v, int):
            return None             # int[2] takes one int for every element
        if not isinstance(v, (list, tuple)) or not all(_scalar_ok(elem.rstrip("?"), x) or
                                                       (elem.endswith("?") and x is None)
                                                       for x in v):
            return _PYBIND.format(type(v).__name__)
        return None
    if _scalar_ok(ty, v):
        return None
    if ty == "Tensor":
        return f"Unable to cast {v} to Tensor"
    if ty == "Scalar":
        return f"Cannot cast {v} to number"
    return _PYBIND.format(type(v).__name__)


_TOKEN = re.compile(r"\s*(->|\.\.\.|[A-Za-z_][\w.:]*|-?[\d.]+(?:e-?\d+)?|\"[^\"]*\"|'[^']*'|"
                    r"\S)")


def _parse_default(s, ty):
    s = s.strip()
    if s == "None":
        return None
    if s in ("True", "False"):
        return s == "True"
    if s[:1] in "\"'":
        return s[1:-1]
    if s.startswith("["):
        inner = s[1:-1].strip()
        elem = ty.split("[")[0]
        return [_parse_default(x, elem) for x in inner.split(",")] if inner else []
    try:
        return float(s) if ty.startswith("float") or any(c in s for c in ".e") else int(s)
    except ValueError:
        return s                    # an enum name (Mean, contiguous_format): kept as written


def _split_top(s):
    # split on commas outside brackets
    out, depth, cur = [], 0, ""
    for c in s:
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        if c == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += c
    if cur.strip():
        out.append(cur)
    return out


def _parse_arg(text, kwarg_only, where):
    text = text.strip()
    default, has_default = None, False
    if "=" in text:
        text, d = text.split("=", 1)
        text = text.strip()
        has_default = True
    m = re.fullmatch(r"([A-Za-z]\w*)(?:\(([a-z]\w*!?)\))?((?:\[\d*\])?\??)(?:\s+([A-Za-z_]\w*))?",
                     text)
    if m is None:
        raise RuntimeError(f"could not parse the argument '{text}' of the schema:\n{where}")
    ty = m.group(1) + m.group(3)
    if has_default:
        default = _parse_default(d, ty)
    return Argument(m.group(4) or "", ty, default, has_default, kwarg_only, m.group(2))


def parse_schema(schema):
    """"ns::name.overload(args) -> returns" (the name may be left out: "(args) -> returns")."""
    m = re.fullmatch(r"\s*([\w:]*)(?:\.(\w+))?\s*\((.*)\)\s*->\s*(.+?)\s*", schema, re.S)
    if m is None or m.group(3).count("(") != m.group(3).count(")"):
        raise RuntimeError(f"expected a schema of the form name(args) -> returns, got:\n{schema}")
    args, kw = [], False
    for part in _split_top(m.group(3)):
        if part.strip() == "*":
            kw = True
            continue
        args.append(_parse_arg(part, kw, schema))
    ret = m.group(4)
    if ret.startswith("(") and ret.endswith(")"):
        rets = [_parse_arg(p, False, schema) for p in _split_top(ret[1:-1])]
    else:
        rets = [_parse_arg(ret, False, schema)]
    return FunctionSchema(m.group(1), m.group(2) or "", args, rets)
