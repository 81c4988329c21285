"""torch.utils._pytree: flatten/unflatten of the built-in and registered nodes, TreeSpec's
printing, key paths, serialization (expected strings written from torch 2.13's output), and the
same pytree in torch.func.vmap's in_dims/out_dims."""
import dataclasses
from collections import OrderedDict, defaultdict, deque, namedtuple

import numpy as np
import pytest

import framework as torch
import framework.utils._pytree as pt

P = namedtuple("P", "x y")


def _tree():
    return {"a": [1, (2, 3)], "b": None, "c": P(4, 5), "d": OrderedDict(z=6),
            "e": defaultdict(list, {"k": 7}), "f": deque([8, 9], maxlen=3)}


SPEC_REPR = """TreeSpec(dict, ['a', 'b', 'c', 'd', 'e', 'f'], [TreeSpec(list, None, [*,
    TreeSpec(tuple, None, [*,
      *])]),
  *,
  TreeSpec(namedtuple, <class 'test_pytree.P'>, [*,
    *]),
  TreeSpec(OrderedDict, ['z'], [*]),
  TreeSpec(defaultdict, [<class 'list'>, ['k']], [*]),
  TreeSpec(deque, 3, [*,
    *])])""".replace("test_pytree", __name__)      # (the module name pytest gives this file)


def test_flatten_unflatten_builtin_nodes():
    t = _tree()
    leaves, spec = pt.tree_flatten(t)
    assert leaves == [1, 2, 3, None, 4, 5, 6, 7, 8, 9]      # None is a leaf
    assert repr(spec) == str(spec) == SPEC_REPR
    assert (spec.num_leaves, spec.num_nodes, spec.type, spec.is_leaf()) == (10, 17, dict, False)
    assert spec.context == ["a", "b", "c", "d", "e", "f"]
    assert len(spec.children()) == 6 and spec.child(1).is_leaf()
    back = pt.tree_unflatten([None if x is None else x * 10 for x in leaves], spec)
    assert back == {"a": [10, (20, 30)], "b": None, "c": P(40, 50), "d": OrderedDict(z=60),
                    "e": {"k": 70}, "f": deque([80, 90])}
    assert type(back["c"]) is P and type(back["d"]) is OrderedDict
    assert back["e"].default_factory is list and back["f"].maxlen == 3
    assert list(back) == list(t)                      # dict insertion order kept
    assert spec == pt.tree_structure(_tree()) and hash(spec) == hash(pt.tree_structure(_tree()))
    assert spec != pt.tree_structure({"a": [1, (2, 3)]})
    assert repr(pt.tree_structure(1)) == "*" and repr(pt.LeafSpec()) == "*"
    assert repr(pt.tree_structure([])) == "TreeSpec(list, None, [])"
    assert repr(pt.tree_structure([1])) == "TreeSpec(list, None, [*])"
    assert pt.tree_leaves(t) == leaves and list(pt.tree_iter(t)) == leaves


def test_unflatten_wrong_leaf_count():
    spec = pt.tree_structure([1, (2, 3)])
    for bad in ([1], [1, 2, 3, 4]):
        with pytest.raises(ValueError) as e:
            pt.tree_unflatten(bad, spec)
        assert str(e.value) == (f"treespec.unflatten(leaves): `leaves` has length {len(bad)} but "
                                "the spec refers to a pytree that holds 3 items "
                                "(TreeSpec(list, None, [*,\n  TreeSpec(tuple, None, [*,\n"
                                "    *])])).")
    with pytest.raises(TypeError, match="Expected `treespec` to be an instance of PyTreeSpec"):
        pt.tree_unflatten([1], [2])
    assert pt.tree_unflatten(spec, [4, 5, 6]) == [4, (5, 6)]     # (arguments either way round)


def test_tree_map_and_friends():
    assert pt.tree_map(lambda a, b: a + b, [1, (2, 3)], [10, (20, 30)]) == [11, (22, 33)]
    # the others need only have the first tree as a prefix
    assert pt.tree_map(lambda x, y: [x] + y, [5, 6], [[7, 9], [1, 2]]) == [[5, 7, 9], [6, 1, 2]]
    with pytest.raises(ValueError, match=r"Node type mismatch; expected <class 'tuple'>, but "
                                         r"got <class 'int'>\."):
        pt.tree_map(lambda a, b: a, [1, (2, 3)], [10, 20])
    with pytest.raises(ValueError, match=r"Node arity mismatch; expected 2, but got 3\."):
        pt.tree_map(lambda a, b: a, [1, (2, 3)], [10, (20, 30), 4])
    with pytest.raises(ValueError, match=r"Node keys mismatch; missing key\(s\): \{'b'\}; extra "
                                         r"key\(s\): \{'c'\}\."):
        pt.tree_map(lambda a, b: a, {"a": 1, "b": 2}, {"a": 1, "c": 2})
    seen = []
    tree = {"x": [1, 2]}
    assert pt.tree_map_(seen.append, tree) is tree and seen == [1, 2]
    assert pt.tree_map_only(int, lambda x: x * 2, [1, 2.0, "s"]) == [2, 2.0, "s"]
    assert pt.tree_map_only((int, str), lambda x: x * 2, [1, 2.0, "s"]) == [2, 2.0, "ss"]
    assert pt.map_only(lambda x: x > 1)(lambda x: -x)(3) == -3
    with pytest.raises(TypeError, match="Argument must be a type"):
        pt.map_only(3)
    assert pt.tree_all(lambda x: x is None or x > 0, _tree())
    assert not pt.tree_any(lambda x: x is None, [1, 2])
    assert pt.tree_any_only(int, lambda x: x > 8, _tree())
    assert pt.tree_all_only(str, lambda x: False, [1, 2])
    assert pt.arg_tree_leaves(1, [2, 3], a=(4,)) == [1, 2, 3, 4]


def test_is_leaf_argument():
    leaves, spec = pt.tree_flatten([1, [2, 3]], is_leaf=lambda x: isinstance(x, list) and
                                   len(x) == 2)
    assert leaves == [[1, [2, 3]]] and spec.is_leaf()
    leaves, spec = pt.tree_flatten([1, (2, 3)], is_leaf=lambda x: isinstance(x, tuple))
    assert leaves == [1, (2, 3)] and repr(spec) == "TreeSpec(list, None, [*,\n  *])"


def test_key_paths():
    kl, spec = pt.tree_flatten_with_path(_tree())
    assert [pt.keystr(k) for k, _ in kl] == [
        "['a'][0]", "['a'][1][0]", "['a'][1][1]", "['b']", "['c'].x", "['c'].y", "['d']['z']",
        "['e']['k']", "['f'][0]", "['f'][1]"]
    assert kl[1][0] == (pt.MappingKey("a"), pt.SequenceKey(1), pt.SequenceKey(0))
    assert repr(pt.GetAttrKey("x")) == "GetAttrKey(name='x')" and str(pt.GetAttrKey("x")) == ".x"
    assert pt.key_get(_tree(), kl[4][0]) == 4
    assert pt.tree_leaves_with_path([7]) == [((pt.SequenceKey(0),), 7)]
    r = pt.tree_map_with_path(lambda k, v: pt.keystr(k) + str(v), {"a": [1, P(2, 3)]})
    assert r == {"a": ["['a'][0]1", P("['a'][1].x2", "['a'][1].y3")]}


class Pair:
    def __init__(self, a, b):
        self.a, self.b = a, b


def test_register_pytree_node():
    pt.register_pytree_node(Pair, lambda p: ([p.a, p.b], "ctx"), lambda v, c: Pair(*v),
                            serialized_type_name="test_pytree.Pair")
    try:
        spec = pt.tree_structure([Pair(1, 2)])
        assert repr(spec) == "TreeSpec(list, None, [TreeSpec(Pair, ctx, [*,\n    *])])"
        out = pt.tree_map(lambda x: x + 1, [Pair(1, 2)])[0]
        assert type(out) is Pair and (out.a, out.b) == (2, 3)
        with pytest.raises(ValueError, match=rf"<class '{__name__}.Pair'> is already "
                                             r"registered as pytree node\."):
            pt.register_pytree_node(Pair, lambda p: ([], None), lambda v, c: None)
        with pytest.raises(ValueError, match="Did not find a flatten_with_keys_fn for type: "
                                             f"<class '{__name__}.Pair'>"):
            pt.tree_flatten_with_path([Pair(1, 2)])
        s = pt.treespec_dumps(spec)
        assert '"type": "test_pytree.Pair", "context": "\\"ctx\\""' in s
        assert pt.treespec_loads(s) == spec
    finally:
        pt._deregister_pytree_node(Pair)
    with pytest.raises(ValueError, match=r"<class 'list'> is already registered"):
        pt.register_pytree_node(list, lambda x: (x, None), lambda v, c: v)


@dataclasses.dataclass
class D:
    x: object
    y: object


def test_register_dataclass_and_namedtuple_checks():
    pt.register_dataclass(D)
    try:
        assert repr(pt.tree_structure(D(1, 2))) == "TreeSpec(D, [['x', 'y'], []], [*,\n  *])"
        assert pt.tree_leaves(D(None, 2)) == [2]          # a None field is context, not a leaf
        assert pt.tree_map(lambda v: v * 3, D(1, None)) == D(3, None)
        assert pt.tree_leaves_with_path(D(1, 2))[1] == ((pt.GetAttrKey("y"),), 2)
        with pytest.raises(NotImplementedError, match="No registered serialization name for "
                                                      f"<class '{__name__}.D'> found"):
            pt.treespec_dumps(pt.tree_structure(D(1, 2)))
    finally:
        pt._deregister_pytree_node(D)
    with pytest.raises(ValueError, match="field_names must be specified"):
        pt.register_dataclass(Pair)
    assert pt.is_namedtuple(P) and pt.is_namedtuple(P(1, 2)) and pt.is_namedtuple_instance(P(1, 2))
    assert not pt.is_namedtuple((1, 2)) and not pt.is_namedtuple_class(tuple)


def test_treespec_dumps_loads_pprint():
    spec = pt.tree_structure([1, (2, {"a": 3})])
    leaf = '{"type": null, "context": null, "children_spec": []}'
    assert pt.treespec_dumps(spec) == (
        '[1, {"type": "builtins.list", "context": "null", "children_spec": [' + leaf + ', '
        '{"type": "builtins.tuple", "context": "null", "children_spec": [' + leaf + ', '
        '{"type": "builtins.dict", "context": "[\\"a\\"]", "children_spec": [' + leaf + ']}]}]}]')
    assert pt.treespec_loads(pt.treespec_dumps(spec)) == spec
    assert pt.treespec_pprint(spec) == "[*, (*, {'a': *})]"
    other = pt.tree_structure({"d": defaultdict(list, x=2), "q": deque([1], maxlen=4)})
    s = pt.treespec_dumps(other)
    assert ('"context": {"default_factory_module": "builtins", "default_factory_name": "list", '
            '"dict_context": ["x"]}') in s and '"type": "collections.deque", "context": "4"' in s
    assert pt.treespec_loads(s) == other
    with pytest.raises(NotImplementedError, match="Can't serialize TreeSpec of namedtuple class "
                                                  f"<class '{__name__}.P'> because we didn't "
                                                  "register a serializated_type_name"):
        pt.treespec_dumps(pt.tree_structure(P(1, 2)))
    with pytest.raises(ValueError, match=r"Unknown protocol 7\. Available protocols: \[1\]"):
        pt.treespec_dumps(spec, protocol=7)


def test_flatten_up_to():
    spec = pt.tree_structure([0, {"k": 0}])
    assert spec.flatten_up_to([(1, 2), OrderedDict(k=[3])]) == [(1, 2), [3]]
    with pytest.raises(ValueError, match=r"Node context mismatch for node type <function "
                                         r"namedtuple"):
        pt.tree_structure(P(0, 0)).flatten_up_to(namedtuple("Q", "x y")(1, 2))


def test_vmap_with_registered_node():
    pt.register_dataclass(D)
    try:
        xs = torch.arange(6.).reshape(3, 2)
        ys = torch.tensor([[1., 2., 3.], [4., 5., 6.]])        # batched along dim 1
        f = lambda p: D(p.x * p.y, p.x.sum())
        out = torch.func.vmap(f, in_dims=(D(0, 1),), out_dims=D(1, 0))(D(xs, ys))
        ref = xs.numpy() * ys.numpy().T
        assert type(out) is D
        np.testing.assert_allclose(out.x.numpy(), ref.T)
        np.testing.assert_allclose(out.y.numpy(), xs.numpy().sum(1))
        with pytest.raises(ValueError, match="in_dims is not compatible with the structure"):
            torch.func.vmap(f, in_dims=((0, 1),))(D(xs, ys))
        g = torch.func.grad(lambda p: (p.x * p.y).sum())(D(torch.tensor([1., 2.]),
                                                         torch.tensor([3., 4.])))
        assert type(g) is D
        np.testing.assert_allclose(g.x.numpy(), [3., 4.])
        np.testing.assert_allclose(g.y.numpy(), [1., 2.])
    finally:
        pt._deregister_pytree_node(D)


def test_return_types_are_their_own_nodes():
    r = torch.max(torch.tensor([[1., 5.], [7., 2.]]), 1)
    assert repr(pt.tree_structure(r)) == "TreeSpec(max, None, [*,\n  *])"
    doubled = pt.tree_map(lambda t: t * 2, r)
    assert type(doubled) is type(r)
    np.testing.assert_array_equal(doubled.values.numpy(), [10., 14.])
    np.testing.assert_array_equal(doubled.indices.numpy(), [2, 0])
    assert [k for k, _ in pt.tree_leaves_with_path(r)] == [(pt.SequenceKey(0),),
                                                            (pt.SequenceKey(1),)]
