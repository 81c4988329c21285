"""Minimal pytrees (tuples, lists, dicts, namedtuples; anything else is a leaf), as torch's
torch.utils._pytree sees them for vmap's in_dims/out_dims and torch.func's arguments."""


class Spec:
    __slots__ = ("kind", "meta", "children")

    def __init__(self, kind, meta, children):
        self.kind, self.meta, self.children = kind, meta, children

    def __repr__(self):
        if self.kind == "leaf":
            return "*"
        inner = ", ".join(map(repr, self.children))
        if self.kind == "dict":
            return "{" + ", ".join(f"{k!r}: {c!r}" for k, c in zip(self.meta, self.children)) + "}"
        return f"{self.kind}({inner})"

    def __eq__(self, o):
        return isinstance(o, Spec) and (self.kind, self.meta, self.children) == \
            (o.kind, o.meta, o.children)


LEAF = Spec("leaf", None, [])


def _is_namedtuple(x):
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def flatten(x):
    if _is_namedtuple(x):
        kind, meta, items = "namedtuple", type(x), list(x)
    elif isinstance(x, tuple):
        kind, meta, items = "tuple", None, list(x)
    elif isinstance(x, list):
        kind, meta, items = "list", None, x
    elif isinstance(x, dict):
        kind, meta, items = "dict", list(x.keys()), list(x.values())
    else:
        return [x], LEAF
    leaves, children = [], []
    for it in items:
        lv, sp = flatten(it)
        leaves.extend(lv)
        children.append(sp)
    return leaves, Spec(kind, meta, children)


def unflatten(leaves, spec):
    it = iter(leaves)
    r = _build(it, spec)
    return r


def _build(it, spec):
    if spec.kind == "leaf":
        return next(it)
    items = [_build(it, c) for c in spec.children]
    if spec.kind == "tuple":
        return tuple(items)
    if spec.kind == "namedtuple":
        return spec.meta(*items)
    if spec.kind == "list":
        return items
    return dict(zip(spec.meta, items))


def broadcast_prefix(prefix, spec):
    """Flatten `prefix` (a tree whose leaves cover whole subtrees of `spec`) to one entry per
    leaf of spec, or None when the structures do not match."""
    out = []

    def go(pre, sp):
        if not isinstance(pre, (tuple, list, dict)) or (sp.kind == "leaf"):
            if isinstance(pre, (tuple, list, dict)):
                return False
            out.extend([pre] * _count(sp))
            return True
        pk = "namedtuple" if _is_namedtuple(pre) else "tuple" if isinstance(pre, tuple) else \
            "list" if isinstance(pre, list) else "dict"
        if pk != sp.kind and not ({pk, sp.kind} <= {"tuple", "namedtuple"}):
            return False
        if pk == "dict":
            if set(pre.keys()) != set(sp.meta):
                return False
            return all(go(pre[k], c) for k, c in zip(sp.meta, sp.children))
        if len(pre) != len(sp.children):
            return False
        return all(go(a, c) for a, c in zip(pre, sp.children))

    return out if go(prefix, spec) else None


def _count(sp):
    return 1 if sp.kind == "leaf" else sum(_count(c) for c in sp.children)


def tree_map(f, x):
    leaves, spec = flatten(x)
    return unflatten([f(v) for v in leaves], spec)
