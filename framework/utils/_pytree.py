"""torch.utils._pytree: nested containers (tuple, list, dict, namedtuple, OrderedDict,
defaultdict, deque and registered classes) flattened to leaves plus a TreeSpec. The one pytree
of Kiln: torch.func, vmap and the control-flow ops use it too."""
import dataclasses
import functools
import importlib
import json
import types
import warnings
from collections import OrderedDict, defaultdict, deque, namedtuple
from typing import Any, NamedTuple

__all__ = ["TreeSpec", "LeafSpec", "SequenceKey", "MappingKey", "GetAttrKey",
           "register_pytree_node", "register_dataclass", "tree_flatten", "tree_unflatten",
           "tree_iter", "tree_leaves", "tree_structure", "tree_map", "tree_map_", "map_only",
           "tree_map_only", "tree_map_only_", "tree_all", "tree_any", "tree_all_only",
           "tree_any_only", "tree_flatten_with_path", "tree_leaves_with_path",
           "tree_map_with_path", "keystr", "key_get", "treespec_dumps", "treespec_loads",
           "treespec_pprint", "arg_tree_leaves", "is_namedtuple", "is_namedtuple_class",
           "is_namedtuple_instance", "tree_is_leaf"]

# the typing names user code annotates with
PyTree = Any
Context = Any
DumpableContext = Any
KeyEntry = Any
KeyPath = tuple
FlattenFunc = UnflattenFunc = FlattenWithKeysFunc = Any

NO_SERIALIZED_TYPE_NAME_FOUND = "NO_SERIALIZED_TYPE_NAME_FOUND"
DEFAULT_TREESPEC_SERIALIZATION_PROTOCOL = 1


class NodeDef(NamedTuple):
    type: Any
    flatten_fn: Any
    unflatten_fn: Any
    flatten_with_keys_fn: Any


class _SerializeNodeDef(NamedTuple):
    typ: Any
    serialized_type_name: str
    to_dumpable_context: Any
    from_dumpable_context: Any


SUPPORTED_NODES = {}
SUPPORTED_SERIALIZED_TYPES = {}
SERIALIZED_TYPE_TO_PYTHON_TYPE = {}


def _private_register_pytree_node(cls, flatten_fn, unflatten_fn, *, serialized_type_name=None,
                                  to_dumpable_context=None, from_dumpable_context=None,
                                  flatten_with_keys_fn=None):
    if cls in SUPPORTED_NODES:
        warnings.warn(f"{cls} is already registered as pytree node. Overwriting the previous "
                      "registration.", stacklevel=2)
    if (to_dumpable_context is None) ^ (from_dumpable_context is None):
        raise ValueError(f"Both to_dumpable_context and from_dumpable_context for {cls} must "
                         "be None or registered.")
    SUPPORTED_NODES[cls] = NodeDef(cls, flatten_fn, unflatten_fn, flatten_with_keys_fn)
    name = serialized_type_name or NO_SERIALIZED_TYPE_NAME_FOUND
    SUPPORTED_SERIALIZED_TYPES[cls] = _SerializeNodeDef(cls, name, to_dumpable_context,
                                                        from_dumpable_context)
    SERIALIZED_TYPE_TO_PYTHON_TYPE[name] = cls


def register_pytree_node(cls, flatten_fn, unflatten_fn, *, serialized_type_name=None,
                         to_dumpable_context=None, from_dumpable_context=None,
                         flatten_with_keys_fn=None):
    """Register a container type: flatten_fn(obj) -> (children, context),
    unflatten_fn(children, context) -> obj."""
    if cls in SUPPORTED_NODES:
        raise ValueError(f"{cls} is already registered as pytree node.")
    _private_register_pytree_node(
        cls, flatten_fn, unflatten_fn, serialized_type_name=serialized_type_name,
        to_dumpable_context=to_dumpable_context, from_dumpable_context=from_dumpable_context,
        flatten_with_keys_fn=flatten_with_keys_fn)


_register_pytree_node = _private_register_pytree_node


def _deregister_pytree_node(cls):
    SUPPORTED_NODES.pop(cls)
    d = SUPPORTED_SERIALIZED_TYPES.pop(cls)
    SERIALIZED_TYPE_TO_PYTHON_TYPE.pop(d.serialized_type_name, None)


def register_dataclass(cls, *, field_names=None, drop_field_names=None,
                       serialized_type_name=None):
    """A dataclass (or a class built from keyword fields) as a pytree node; None fields are
    kept in the context, not as leaves."""
    drop = drop_field_names or []
    if not dataclasses.is_dataclass(cls):
        if field_names is None:
            raise ValueError("field_names must be specified with a list of all fields used to "
                             f"initialize {cls}, as it is not a dataclass.")
    elif field_names is None:
        field_names = [f.name for f in dataclasses.fields(cls) if f.init]
    else:
        init = {f.name for f in dataclasses.fields(cls) if f.init} - set(drop)
        if init != set(field_names):
            msg = "field_names does not include all dataclass fields.\n"
            if missing := init - set(field_names):
                msg += (f"Missing fields in `field_names`: {missing}. If you want to include "
                        "these fields in the pytree, please add them to `field_names`, "
                        "otherwise please add them to `drop_field_names`.\n")
            if unexpected := set(field_names) - init:
                msg += (f"Unexpected fields in `field_names`: {unexpected}. Please remove "
                        "these fields, or add them to `drop_field_names`.\n")
            raise ValueError(msg)

    def flatten(obj):
        vals, names, nones = [], [], []
        for n in field_names:
            v = getattr(obj, n)
            if v is None:
                nones.append(n)
            else:
                vals.append(v)
                names.append(n)
        return vals, [names, nones]

    def unflatten(values, context):
        names, nones = context
        return cls(**dict(zip(names, values, strict=True)), **dict.fromkeys(nones))

    def flatten_with_keys(obj):
        vals, (names, _) = flatten(obj)
        return [(GetAttrKey(k), v) for k, v in zip(names, vals)], names

    _private_register_pytree_node(cls, flatten, unflatten,
                                  serialized_type_name=serialized_type_name,
                                  flatten_with_keys_fn=flatten_with_keys)


# ------------------------------------------------------------------------------- key paths

@dataclasses.dataclass(frozen=True)
class SequenceKey:
    idx: int

    def __str__(self):
        return f"[{self.idx!r}]"

    def get(self, sequence):
        return sequence[self.idx]


@dataclasses.dataclass(frozen=True)
class MappingKey:
    key: Any

    def __str__(self):
        return f"[{self.key!r}]"

    def get(self, mapping):
        return mapping[self.key]


@dataclasses.dataclass(frozen=True)
class GetAttrKey:
    name: str

    def __str__(self):
        return f".{self.name}"

    def get(self, obj):
        return getattr(obj, self.name)


def keystr(kp):
    return "".join(str(k) for k in kp)


def key_get(obj, kp):
    for k in kp:
        obj = k.get(obj)
    return obj


# ------------------------------------------------------------------------- built-in nodes

def is_namedtuple_class(cls):
    return (isinstance(cls, type) and issubclass(cls, tuple)
            and isinstance(getattr(cls, "_fields", None), tuple)
            and all(type(f) is str for f in cls._fields)
            and callable(getattr(cls, "_make", None)) and callable(getattr(cls, "_asdict", None)))


def is_namedtuple(obj):
    return is_namedtuple_class(obj if isinstance(obj, type) else type(obj))


def is_namedtuple_instance(obj):
    return is_namedtuple_class(type(obj))


def _seq_keys(flatten):
    def with_keys(d):
        vals, ctx = flatten(d)
        return [(SequenceKey(i), v) for i, v in enumerate(vals)], ctx
    return with_keys


def _map_keys(flatten, keys_of=lambda c: c):
    def with_keys(d):
        vals, ctx = flatten(d)
        return [(MappingKey(k), v) for k, v in zip(keys_of(ctx), vals)], ctx
    return with_keys


def _tuple_flatten(d):
    return list(d), None


def _list_flatten(d):
    return d, None


def _dict_flatten(d):
    return list(d.values()), list(d.keys())


def _namedtuple_flatten(d):
    return list(d), type(d)


def _namedtuple_serialize(context):
    d = SUPPORTED_SERIALIZED_TYPES.get(context)
    if d is None or d.serialized_type_name == NO_SERIALIZED_TYPE_NAME_FOUND:
        why = "didn't register" if d is None else "couldn't find"
        raise NotImplementedError(
            f"Can't serialize TreeSpec of namedtuple class {context} because we {why} a "
            "serializated_type_name. Please register using `_register_namedtuple`.")
    return d.serialized_type_name


def _namedtuple_deserialize(name):
    if name not in SERIALIZED_TYPE_TO_PYTHON_TYPE:
        raise NotImplementedError(f"Can't deserialize TreeSpec of namedtuple class {name} "
                                  "because we couldn't find a serializated name.")
    return SERIALIZED_TYPE_TO_PYTHON_TYPE[name]


def _register_namedtuple(cls, *, serialized_type_name):
    _private_register_pytree_node(
        cls, _namedtuple_flatten, lambda v, c: c(*v), serialized_type_name=serialized_type_name,
        to_dumpable_context=_namedtuple_serialize, from_dumpable_context=_namedtuple_deserialize,
        flatten_with_keys_fn=_namedtuple_flatten_with_keys)


def _namedtuple_flatten_with_keys(d):
    return [(GetAttrKey(f), v) for f, v in zip(d._fields, d)], type(d)


def _defaultdict_flatten(d):
    return list(d.values()), [d.default_factory, list(d.keys())]


def _defaultdict_serialize(context):
    f, keys = context
    return {"default_factory_module": f.__module__, "default_factory_name": f.__qualname__,
            "dict_context": keys}


def _defaultdict_deserialize(c):
    f = getattr(importlib.import_module(c["default_factory_module"]), c["default_factory_name"])
    return [f, c["dict_context"]]


def _deque_flatten(d):
    return list(d), d.maxlen


_private_register_pytree_node(tuple, _tuple_flatten, lambda v, c: tuple(v),
                              serialized_type_name="builtins.tuple",
                              flatten_with_keys_fn=_seq_keys(_tuple_flatten))
_private_register_pytree_node(list, _list_flatten, lambda v, c: list(v),
                              serialized_type_name="builtins.list",
                              flatten_with_keys_fn=_seq_keys(_list_flatten))
_private_register_pytree_node(dict, _dict_flatten, lambda v, c: dict(zip(c, v, strict=True)),
                              serialized_type_name="builtins.dict",
                              flatten_with_keys_fn=_map_keys(_dict_flatten))
_private_register_pytree_node(namedtuple, _namedtuple_flatten, lambda v, c: c(*v),
                              serialized_type_name="collections.namedtuple",
                              to_dumpable_context=_namedtuple_serialize,
                              from_dumpable_context=_namedtuple_deserialize,
                              flatten_with_keys_fn=_namedtuple_flatten_with_keys)
_private_register_pytree_node(OrderedDict, _dict_flatten,
                              lambda v, c: OrderedDict(zip(c, v, strict=True)),
                              serialized_type_name="collections.OrderedDict",
                              flatten_with_keys_fn=_map_keys(_dict_flatten))
_private_register_pytree_node(defaultdict, _defaultdict_flatten,
                              lambda v, c: defaultdict(c[0], zip(c[1], v, strict=True)),
                              serialized_type_name="collections.defaultdict",
                              to_dumpable_context=_defaultdict_serialize,
                              from_dumpable_context=_defaultdict_deserialize,
                              flatten_with_keys_fn=_map_keys(_defaultdict_flatten,
                                                             lambda c: c[1]))
_private_register_pytree_node(deque, _deque_flatten, lambda v, c: deque(v, maxlen=c),
                              serialized_type_name="collections.deque",
                              flatten_with_keys_fn=_seq_keys(_deque_flatten))

STANDARD_DICT_TYPES = frozenset({dict, OrderedDict, defaultdict})
BUILTIN_TYPES = frozenset({tuple, list, dict, namedtuple, OrderedDict, defaultdict, deque})


def _get_node_type(tree):
    t = type(tree)
    if is_namedtuple_class(t):
        if t.__module__ != "torch.return_types":
            return namedtuple
        if t not in SUPPORTED_NODES:
            # torch's return types are structseqs, each its own node with no context (Kiln's
            # are namedtuples): registered when first met
            _private_register_pytree_node(t, _tuple_flatten, lambda v, c, t=t: t(*v),
                                          flatten_with_keys_fn=_seq_keys(_tuple_flatten))
    return t


def tree_is_leaf(tree, is_leaf=None):
    if is_leaf is not None and is_leaf(tree):
        return True
    return _get_node_type(tree) not in SUPPORTED_NODES


# ------------------------------------------------------------------------------- TreeSpec

class TreeSpec:
    """The structure of a pytree: node type, context (keys, class, ...) and child specs."""
    __slots__ = ("type", "_context", "_children", "num_nodes", "num_leaves", "num_children")

    def __init__(self, type, context, children_specs):
        self.type, self._context, self._children = type, context, children_specs
        if type is None:
            self.num_nodes = self.num_leaves = 1
        else:
            self.num_nodes = 1 + sum(c.num_nodes for c in children_specs)
            self.num_leaves = sum(c.num_leaves for c in children_specs)
        self.num_children = len(children_specs)

    def __repr__(self, indent=0):
        if self.type is None:
            return "*"
        s = f"TreeSpec({self.type.__name__}, {self._context}, ["
        if self._children:
            indent += 2
            s += self._children[0].__repr__(indent) + ("," if self.num_children > 1 else "")
            s += ",".join("\n" + " " * indent + c.__repr__(indent) for c in self._children[1:])
        return s + "])"

    def __eq__(self, other):
        if self is other:
            return True
        if not isinstance(other, TreeSpec):
            return NotImplemented
        return (str(self.type) == str(other.type) and self._context == other._context
                and self._children == other._children)

    def __hash__(self):
        t, c = self.type, self._context
        if t is defaultdict:
            c = (c[0], tuple(c[1]))
        elif t in (dict, OrderedDict):
            c = tuple(c)
        elif not (t is None or t in BUILTIN_TYPES):
            c = None       # a custom node's context need not be hashable
        return hash((t, c, tuple(self._children)))

    @property
    def context(self):
        return self._context

    def is_leaf(self):
        return self.num_nodes == 1 and self.num_leaves == 1

    def children(self):
        return self._children.copy()

    def child(self, index):
        return self._children[index]

    def flatten_up_to(self, tree):
        """The subtrees of `tree` at this spec's leaves (`tree` must have this structure as
        a prefix)."""
        out = []

        def go(spec, node):
            if spec.is_leaf():
                out.append(node)
                return
            nt = _get_node_type(node)
            if spec.type not in BUILTIN_TYPES:
                if nt != spec.type:
                    raise ValueError(f"Type mismatch; expected {spec.type!r}, but got {nt!r}.")
                kids, ctx = SUPPORTED_NODES[nt].flatten_fn(node)
                if len(kids) != spec.num_children:
                    raise ValueError(f"Node arity mismatch; expected {spec.num_children}, but "
                                     f"got {len(kids)}.")
                if ctx != spec._context:
                    raise ValueError(f"Node context mismatch for custom node type "
                                     f"{spec.type!r}.")
            else:
                dicts = spec.type in STANDARD_DICT_TYPES and nt in STANDARD_DICT_TYPES
                if not dicts and nt != spec.type:
                    raise ValueError(f"Node type mismatch; expected {spec.type!r}, but got "
                                     f"{nt!r}.")
                if len(node) != spec.num_children:
                    raise ValueError(f"Node arity mismatch; expected {spec.num_children}, but "
                                     f"got {len(node)}.")
                if dicts:
                    keys = spec._context if spec.type is not defaultdict else spec._context[1]
                    got, want = set(node), set(keys)
                    if got != want:
                        msg = ""
                        if want - got:
                            msg += f"; missing key(s): {want - got}"
                        if got - want:
                            msg += f"; extra key(s): {got - want}"
                        raise ValueError(f"Node keys mismatch{msg}.")
                    kids = [node[k] for k in keys]
                else:
                    kids, ctx = SUPPORTED_NODES[nt].flatten_fn(node)
                    if nt is not deque and ctx != spec._context:
                        raise ValueError(f"Node context mismatch for node type {spec.type!r}; "
                                         f"expected {spec._context!r}, but got {ctx!r}.")
            for k, s in zip(kids, spec._children):
                go(s, k)

        go(self, tree)
        return out

    def unflatten(self, leaves):
        if not isinstance(leaves, (list, tuple)):
            leaves = list(leaves)
        if len(leaves) != self.num_leaves:
            raise ValueError(f"treespec.unflatten(leaves): `leaves` has length {len(leaves)} but "
                             f"the spec refers to a pytree that holds {self.num_leaves} items "
                             f"({self}).")
        it = iter(leaves)
        return self._build(it)

    def _build(self, it):
        if self.type is None:
            return next(it)
        kids = [c._build(it) for c in self._children]
        return SUPPORTED_NODES[self.type].unflatten_fn(kids, self._context)


class LeafSpec(TreeSpec):
    __slots__ = ()

    def __init__(self):
        super().__init__(None, None, [])


_LEAF_SPEC = LeafSpec()
PyTreeSpec = TreeSpec


def treespec_leaf():
    return _LEAF_SPEC


def treespec_tuple(iterable=()):
    return TreeSpec(tuple, None, list(iterable))


def treespec_dict(mapping=(), **kwargs):
    d = dict(mapping, **kwargs)
    return TreeSpec(dict, list(d.keys()), list(d.values()))


# ----------------------------------------------------------------------------- flattening

def tree_flatten(tree, is_leaf=None):
    leaves = []

    def go(node):
        if is_leaf is not None and is_leaf(node):
            leaves.append(node)
            return _LEAF_SPEC
        nt = _get_node_type(node)
        d = SUPPORTED_NODES.get(nt)
        if d is None:
            leaves.append(node)
            return _LEAF_SPEC
        kids, ctx = d.flatten_fn(node)
        return TreeSpec(nt, ctx, [go(k) for k in kids])

    spec = go(tree)
    return leaves, spec


def tree_unflatten(leaves, treespec):
    if not isinstance(treespec, TreeSpec):
        if not isinstance(leaves, TreeSpec):
            raise TypeError(f"Expected `treespec` to be an instance of PyTreeSpec but got item "
                            f"of type {type(treespec)}.")
        leaves, treespec = treespec, leaves
    return treespec.unflatten(leaves)


def tree_iter(tree, is_leaf=None):
    if tree_is_leaf(tree, is_leaf):
        yield tree
    else:
        for k in SUPPORTED_NODES[_get_node_type(tree)].flatten_fn(tree)[0]:
            yield from tree_iter(k, is_leaf)


def tree_leaves(tree, is_leaf=None):
    return list(tree_iter(tree, is_leaf))


def tree_structure(tree, is_leaf=None):
    return tree_flatten(tree, is_leaf)[1]


def tree_map(func, tree, *rests, is_leaf=None):
    leaves, spec = tree_flatten(tree, is_leaf)
    return spec.unflatten(map(func, leaves, *[spec.flatten_up_to(r) for r in rests]))


def tree_map_(func, tree, *rests, is_leaf=None):
    leaves, spec = tree_flatten(tree, is_leaf)
    deque(map(func, leaves, *[spec.flatten_up_to(r) for r in rests]), maxlen=0)
    return tree


def map_only(type_or_types_or_pred):
    if isinstance(type_or_types_or_pred, (type, tuple, types.UnionType)):
        def pred(x):
            return isinstance(x, type_or_types_or_pred)
    elif callable(type_or_types_or_pred):
        pred = type_or_types_or_pred
    else:
        raise TypeError("Argument must be a type, a tuple of types, or a callable.")

    def wrapper(func):
        @functools.wraps(func)
        def wrapped(x):
            return func(x) if pred(x) else x
        return wrapped
    return wrapper


def tree_map_only(type_or_types_or_pred, func, tree, is_leaf=None):
    return tree_map(map_only(type_or_types_or_pred)(func), tree, is_leaf=is_leaf)


def tree_map_only_(type_or_types_or_pred, func, tree, is_leaf=None):
    return tree_map_(map_only(type_or_types_or_pred)(func), tree, is_leaf=is_leaf)


def tree_all(pred, tree, is_leaf=None):
    return all(map(pred, tree_iter(tree, is_leaf)))


def tree_any(pred, tree, is_leaf=None):
    return any(map(pred, tree_iter(tree, is_leaf)))


def tree_all_only(type_or_types, pred, tree, is_leaf=None):
    return all(pred(x) for x in tree_iter(tree, is_leaf) if isinstance(x, type_or_types))


def tree_any_only(type_or_types, pred, tree, is_leaf=None):
    return any(pred(x) for x in tree_iter(tree, is_leaf) if isinstance(x, type_or_types))


def arg_tree_leaves(*args, **kwargs):
    leaves = []
    for a in args:
        leaves.extend(tree_iter(a))
    for a in kwargs.values():
        leaves.extend(tree_iter(a))
    return leaves


def _key_paths(kp, tree, is_leaf):
    if is_leaf and is_leaf(tree):
        yield kp, tree
        return
    nt = _get_node_type(tree)
    d = SUPPORTED_NODES.get(nt)
    if d is None:
        yield kp, tree
        return
    if d.flatten_with_keys_fn is None:
        raise ValueError(f"Did not find a flatten_with_keys_fn for type: {nt}. Please pass a "
                         "flatten_with_keys_fn argument to register_pytree_node.")
    for k, c in d.flatten_with_keys_fn(tree)[0]:
        yield from _key_paths((*kp, k), c, is_leaf)


def tree_flatten_with_path(tree, is_leaf=None):
    spec = tree_structure(tree, is_leaf)
    return list(_key_paths((), tree, is_leaf)), spec


def tree_leaves_with_path(tree, is_leaf=None):
    return list(_key_paths((), tree, is_leaf))


def tree_map_with_path(func, tree, *rests, is_leaf=None):
    kl, spec = tree_flatten_with_path(tree, is_leaf)
    cols = list(zip(*kl)) + [spec.flatten_up_to(r) for r in rests]
    return spec.unflatten(func(*xs) for xs in zip(*cols))


def _broadcast_to_and_flatten(tree, treespec, is_leaf=None):
    """`tree` (a prefix of treespec's structure) with each of its leaves repeated over the
    leaves of the subtree it covers; None when it is no prefix (vmap's in_dims/out_dims)."""
    full = treespec.unflatten([0] * treespec.num_leaves)
    out = []
    try:
        tree_map_(lambda x, sub: out.extend([x] * tree_structure(sub, is_leaf).num_leaves),
                  tree, full, is_leaf=is_leaf)
    except ValueError:
        return None
    return out


# ---------------------------------------------------------------------------- serializing

class _EnumEncoder(json.JSONEncoder):
    def default(self, obj):
        import enum
        if isinstance(obj, enum.Enum):
            return {"__enum__": True, "fqn": f"{obj.__class__.__module__}:"
                    f"{obj.__class__.__qualname__}", "name": obj.name}
        return super().default(obj)


def _enum_hook(obj):
    if "__enum__" in obj:
        mod, _, cls = obj["fqn"].partition(":")
        e = importlib.import_module(mod)
        for a in cls.split("."):
            e = getattr(e, a)
        return e[obj["name"]]
    return obj


def _to_json(spec):
    if spec.is_leaf():
        return {"type": None, "context": None, "children_spec": []}
    d = SUPPORTED_SERIALIZED_TYPES.get(spec.type)
    if d is None:
        raise NotImplementedError(f"Serializing {spec.type} in pytree is not registered.")
    if d.serialized_type_name == NO_SERIALIZED_TYPE_NAME_FOUND:
        raise NotImplementedError(
            f"No registered serialization name for {spec.type} found. Please update your "
            "_register_pytree_node call with a `serialized_type_name` kwarg.")
    if d.to_dumpable_context is None:
        try:
            ctx = json.dumps(spec._context, cls=_EnumEncoder)
        except TypeError as e:
            raise TypeError("Unable to serialize context. Please make the context json "
                            "dump-able, or register a custom serializer using "
                            "_register_pytree_node.") from e
    else:
        ctx = d.to_dumpable_context(spec._context)
    return {"type": d.serialized_type_name, "context": ctx,
            "children_spec": [_to_json(c) for c in spec._children]}


def _from_json(s):
    if s["type"] is None and s["context"] is None and not s["children_spec"]:
        return _LEAF_SPEC
    typ = SERIALIZED_TYPE_TO_PYTHON_TYPE.get(s["type"])
    if typ is None:
        raise NotImplementedError(f"Deserializing {s['type']} in pytree is not registered.")
    d = SUPPORTED_SERIALIZED_TYPES[typ]
    if d.from_dumpable_context is None:
        ctx = json.loads(s["context"], object_hook=_enum_hook)
    else:
        ctx = d.from_dumpable_context(s["context"])
    return TreeSpec(typ, ctx, [_from_json(c) for c in s["children_spec"]])


def treespec_dumps(treespec, protocol=None):
    protocol = DEFAULT_TREESPEC_SERIALIZATION_PROTOCOL if protocol is None else protocol
    if protocol != 1:
        raise ValueError(f"Unknown protocol {protocol}. Available protocols: [1]")
    return json.dumps((protocol, _to_json(treespec)), cls=_EnumEncoder)


def treespec_loads(serialized):
    protocol, schema = json.loads(serialized)
    if protocol != 1:
        raise ValueError(f"Unknown protocol {protocol}. Available protocols: [1]")
    return _from_json(schema)


class _Asterisk(str):
    __slots__ = ()

    def __new__(cls):
        return super().__new__(cls, "*")

    def __repr__(self):
        return "*"


_asterisk = _Asterisk()


def treespec_pprint(treespec):
    return repr(treespec.unflatten([_asterisk] * treespec.num_leaves))
