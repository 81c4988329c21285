"""Unique Python names for nodes and globals (torch.fx.graph._Namespace)."""
import builtins
import keyword
import math
import re

_snake_case_sub = re.compile(r"(?<=[a-z])([A-Z])").sub
_illegal_char_regex = re.compile("[^0-9a-zA-Z_]+")
_name_regex = re.compile(r"^([a-zA-Z_][0-9a-zA-Z_]*?)(?:_(\d+))?$")

# names generated code must not shadow (the globals every generated forward gets included)
_illegal_names = {k: object() for k in keyword.kwlist}
_illegal_names.update(builtins.__dict__)


def _custom_builtins():
    import framework
    return {"inf": math.inf, "nan": math.nan, "NoneType": type(None), "torch": framework,
            "device": framework.device}


def _snake_case(s):
    return _snake_case_sub(r"_\1", s).lower()


class _Namespace:
    """Each object gets one name; each name is unique; builtins are not shadowed."""

    def __init__(self):
        self._obj_to_name = {}
        self._used_names = set()
        self._base_count = {}
        self._illegal = dict(_illegal_names)
        self._illegal.update(_custom_builtins())

    def __getstate__(self):         # (the builtins table holds modules: rebuilt on load)
        d = dict(self.__dict__)
        del d["_illegal"]
        return d

    def __setstate__(self, d):
        self.__dict__.update(d)
        self._illegal = dict(_illegal_names)
        self._illegal.update(_custom_builtins())

    def create_name(self, candidate, obj):
        if obj is not None and obj in self._obj_to_name:
            return self._obj_to_name[obj]
        match = _name_regex.match(candidate)
        if match is None:
            candidate = _illegal_char_regex.sub("_", candidate) or "_unnamed"
            if candidate[0].isdigit():
                candidate = f"_{candidate}"
            match = _name_regex.match(candidate)
        base, num = match.group(1, 2)
        if num is None or candidate in self._used_names:
            num = self._base_count.get(base, 0)
            if self._illegal.get(candidate, obj) is not obj:
                num += 1
                candidate = f"{base}_{num}"
        else:
            num = int(num)
        while candidate in self._used_names:
            num += 1
            candidate = f"{base}_{num}"
        self._used_names.add(candidate)
        self._base_count[base] = num
        if obj is not None:
            self._obj_to_name[obj] = candidate
        return candidate

    def associate_name_with_obj(self, name, obj):
        self._obj_to_name.setdefault(obj, name)
