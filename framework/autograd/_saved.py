"""grad_fn `_saved_*` / `_raw_saved_*` attributes: what PyTorch's backward node for an op saved
(names from its derivatives.yaml), read off Kiln's node on access only, so recording pays
nothing. Kiln's node saves what Kiln's VJP rule reads; an attribute is given only where torch's
value follows from it (the primitive's saved inputs, outputs and attrs, or `node._sv`, which a
composite op sets on its renamed node); any other name stays an AttributeError."""
import numpy as np

from compiler.ir.registry import AVal
from runtime import dtypes as dt
from .. import _dispatch
from .._dispatch import STATE, Packed, PackedList, wrap
from ..tensor import Tensor

_U64 = 1 << 64


class FreedVal(AVal):
    """A saved tensor's place after engine._release: its shape (for _saved_*_sym_sizes) only."""
    __slots__ = ()


_FREED = object()    # a tensor node._sv held, freed by backward

# composite nodes whose _sv may hold tensors (or output arrays): backward frees them
SV_NAMES = frozenset(("SoftmaxBackward0", "LogSoftmaxBackward0", "AddmmBackward0", "MvBackward0",
                      "ConvolutionBackward0", "MaxPool2DWithIndicesBackward0",
                      "NativeBatchNormBackward0", "NativeLayerNormBackward0",
                      "EmbeddingBackward0", "NllLossBackward0", "MseLossBackward0"))


def release_sv(node):
    sv = node._sv
    if sv:
        for k, v in sv.items():
            if isinstance(v, (Tensor, np.ndarray)):
                sv[k] = _FREED
                node.freed = True


def _int(v):
    # torch returns a saved int64 through an unsigned cast: -1 reads 18446744073709551615
    return v + _U64 if type(v) is int and v < 0 else v


def _freed(node):
    if node.freed:
        from .engine import SECOND_TIME
        raise RuntimeError(SECOND_TIME)


def _shape(s):
    return tuple(int(d) for d in s.shape)


def _strides(s):
    if isinstance(s, Tensor):
        return tuple(s.stride())
    st, acc = [], 1
    for d in reversed(s.shape):
        st.append(acc)
        acc *= max(int(d), 1)
    return tuple(reversed(st))


def _number_tensor(v):
    # a Python number operand: torch's wrapped-number tensor (int64 / float64 / bool / complex)
    d = dt.bool_ if type(v) is bool else dt.int64 if type(v) is int else \
        dt.complex128 if type(v) is complex else dt.float64
    return wrap(np.asarray(v, dtype=d.np), d)


# ---- getters: f(node) -> value; `raw` says where a tensor sits for _raw_saved_ ----

class _In:
    """input i of the primitive as torch saved it (None where the rule did not need it)."""
    tensor = True

    def __init__(self, i):
        self.i = i

    def __call__(self, node):
        s = node.saved[self.i]
        if isinstance(s, AVal) and not isinstance(s, FreedVal):
            return None           # not saved (torch's undefined saved variable), freed or not
        _freed(node)
        if type(s) is Packed:
            return s.get()
        if isinstance(s, Tensor):
            return s
        return _number_tensor(s)

    def raw(self, node):
        s = node.saved[self.i]
        return ("in", self.i) if isinstance(s, (Tensor, Packed, FreedVal)) else None


class _Out:
    """output k as the node saved it: a new tensor on the same data, this node its grad_fn."""
    tensor = True

    def __init__(self, k=0):
        self.k = k

    def __call__(self, node):
        _freed(node)
        if type(node.out) is PackedList:
            return node.out[self.k].get(node)
        t = wrap(node.out[self.k], node.outs[self.k].dtype)
        t._node, t._oi = node, self.k
        return t

    def raw(self, node):
        return ("out", self.k)


class _Val:
    """a non-tensor value."""
    tensor = False

    def __init__(self, f):
        self.f = f

    def __call__(self, node):
        return self.f(node)


class _Sv(_Val):
    """a value the composite op kept in node._sv (default when it kept none)."""

    def __init__(self, key, default=None, tensor=False):
        self.key, self.default, self.tensor = key, default, tensor

    def __call__(self, node):
        sv = getattr(node, "_sv", None) or {}
        if self.tensor:
            v = sv.get(self.key)
            if v is None:
                return None       # not saved (torch's undefined saved variable)
            _freed(node)
            if type(v) is np.ndarray:       # an output array: rebuilt as a tensor of this node
                v = wrap(v, node.outs[0].dtype)
                v._node, v._oi = node, 0
            return v
        v = sv.get(self.key, self.default)
        return tuple(_int(x) for x in v) if type(v) is tuple else _int(v)


class _Recompute:
    """torch's saved result where Kiln's rule did not keep it: the primitive run again on the
    saved inputs (the same NumPy op, so the same values), attached to this node."""
    tensor = True

    def __call__(self, node):
        _freed(node)
        from .grad_mode import no_grad
        saved = node.saved
        if type(saved) is PackedList:
            saved = saved.unpacked()
        if any(isinstance(s, AVal) for s in saved):
            raise AttributeError(f"'{node._name}' object has no attribute '_saved_result'")
        with no_grad():
            t = _dispatch.apply(node.prim, *saved, **node.attrs)
        t = t.detach()
        t._node, t._oi = node, 0
        return t

    def raw(self, node):
        return None


class _SvCalc:
    """a tensor torch's kernel returned and saved (save_mean, total_weight, ...), made when read
    from what the composite op kept in node._sv (keys `need`)."""
    tensor = True

    def __init__(self, f, need):
        self.f, self.need = f, need

    def __call__(self, node):
        _freed(node)
        a = np.array(self.f(node._sv), order="C")
        return wrap(a, dt.from_numpy(a.dtype))


def _rstd(sv):
    v = sv["var"]
    return (1.0 / np.sqrt(v.astype(np.float64) + sv["eps"])).astype(v.dtype)


def _bn_stat(f):
    def g(sv):
        if sv["var"] is None:       # eval: torch's kernel saves empty statistics
            return np.zeros((0,), sv["input"]._dtype.np)
        return f(sv).reshape(-1)
    return g


def _sv_all(keys, tensors=(), **calc):
    d = {k: _Sv(k, tensor=k in tensors) for k in keys}
    d.update(calc)
    return d


def _size(i):
    return _Val(lambda n: _shape(n.saved[i]))


def _stride(i):
    return _Val(lambda n: _strides(n.saved[i]))


def _attr(k, f=_int):
    return _Val(lambda n: f(n.attrs[k]))


def _written(key, attr):
    return _Val(lambda n: _int((n._sv or {}).get(key, n.attrs[attr])))


def _producer(node, prim):
    """the node that made this node's first input, when it is `prim` (mean's sum)."""
    e = node.edges[0]
    p = e[0] if e is not None else None
    return p if p is not None and p.prim.name == prim else None


def _mean_sizes(n):
    return _shape(_producer(n, "sum").saved[0])


_ALPHA = {"alpha": _Sv("alpha", 1)}
_SELF_OTHER = {"self": _In(0), "other": _In(1)}
_RESULT = {"result": _Out(0)}
_SELF = {"self": _In(0)}
_SIZES = {"self_sym_sizes": _size(0)}

# grad_fn name -> (primitive of Kiln's node, {attribute: getter})
TABLE = {
    "AddBackward0": ("add", _ALPHA),
    "SubBackward0": ("sub", _ALPHA),
    "RsubBackward1": ("sub", _ALPHA),
    "MulBackward0": ("mul", _SELF_OTHER),
    "DivBackward0": ("div", _SELF_OTHER),
    "PowBackward0": ("pow", {"self": _In(0), "exponent": _Val(lambda n: n.saved[1])}),
    "PowBackward1": ("pow", {"self": _In(0), "exponent": _In(1), "result": _Recompute()}),
    "PowBackward2": ("pow", {"self": _Val(lambda n: n.saved[0]), "exponent": _In(1),
                             "result": _Recompute()}),
    "ExpBackward0": ("exp", _RESULT),
    "TanhBackward0": ("tanh", _RESULT),
    "SigmoidBackward0": ("sigmoid", _RESULT),
    "ReluBackward0": ("relu", _RESULT),
    "SqrtBackward0": ("sqrt", _RESULT),
    "LogBackward0": ("log", _SELF),
    "SinBackward0": ("sin", _SELF),
    "CosBackward0": ("cos", _SELF),
    "MmBackward0": ("matmul", {"self": _In(0), "mat2": _In(1),
                               "self_sym_sizes": _size(0), "self_sym_strides": _stride(0),
                               "mat2_sym_sizes": _size(1), "mat2_sym_strides": _stride(1)}),
    "SumBackward0": ("sum", _SIZES),
    "SumBackward1": ("sum", {"self_sym_sizes": _size(0), "keepdim": _attr("keepdim"),
                             "dim": _Sv("dim")}),
    "MeanBackward0": ("div", {"self_sym_sizes": _Val(_mean_sizes),
                              "self_sym_numel": _Val(lambda n: int(np.prod(_mean_sizes(n))))}),
    "MeanBackward1": ("div", {"self_sym_sizes": _Val(_mean_sizes),
                              "self_sym_numel": _Val(lambda n: int(np.prod(_mean_sizes(n)))),
                              "dim": _Sv("dim"), "keepdim": _Sv("keepdim")}),
    "ViewBackward0": ("reshape", _SIZES),
    "UnsafeViewBackward0": ("reshape", _SIZES),
    "ExpandBackward0": ("expand", _SIZES),
    "PermuteBackward0": ("permute", {"dims": _Sv("dims")}),
    "TransposeBackward0": ("permute", {"dim0": _Sv("dim0"), "dim1": _Sv("dim1")}),
    "SelectBackward0": ("select", {"self_sym_sizes": _size(0), "dim": _attr("dim"),
                                   "index": _written("index", "index")}),
    # (start/end/index: torch keeps them as written; indexing keeps those in _sv where they
    # differ from the primitive's normalized ones)
    "SliceBackward0": ("slice", {"self_sym_sizes": _size(0), "dim": _attr("dim"),
                                 "step": _attr("step"), "start": _written("start", "start"),
                                 "end": _written("end", "stop")}),
    "CatBackward0": ("cat", {"dim": _Sv("dim")}),
    "StackBackward0": ("cat", {"dim": _Sv("dim")}),
    "SoftmaxBackward0": ("div", {"dim": _Sv("dim"), "result": _Sv("result", tensor=True)}),
    "LogSoftmaxBackward0": ("sub", {"dim": _Sv("dim"), "result": _Sv("result", tensor=True)}),
    "AddmmBackward0": (None, _sv_all(
        ("mat1", "mat2", "alpha", "beta", "mat1_sym_sizes", "mat1_sym_strides", "mat2_sym_sizes",
         "mat2_sym_strides"), ("mat1", "mat2"))),
    "MvBackward0": (None, _sv_all(("self", "vec"), ("self", "vec"))),
    "ConvolutionBackward0": (None, _sv_all(
        ("input", "weight", "stride", "padding", "dilation", "transposed", "output_padding",
         "groups", "bias_sym_sizes_opt"), ("input", "weight"))),
    "MaxPool2DWithIndicesBackward0": (None, _sv_all(
        ("self", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "result1"),
        ("self", "result1"))),
    "NativeBatchNormBackward0": (None, _sv_all(
        ("input", "weight", "running_mean", "running_var", "training", "eps"),
        ("input", "weight", "running_mean", "running_var"),
        result1=_SvCalc(_bn_stat(lambda sv: sv["mean"]), ("mean",)),
        result2=_SvCalc(_bn_stat(_rstd), ("var",)))),
    "NativeLayerNormBackward0": (None, _sv_all(
        ("input", "weight", "bias", "normalized_shape"), ("input", "weight", "bias"),
        result1=_SvCalc(lambda sv: sv["mean"], ("mean",)),
        result2=_SvCalc(_rstd, ("var",)))),
    "EmbeddingBackward0": (None, _sv_all(
        ("indices", "padding_idx", "scale_grad_by_freq", "sparse", "weight_sym_argsize_0"),
        ("indices",))),
    "NllLossBackward0": (None, _sv_all(
        ("self", "target", "weight", "reduction", "ignore_index"), ("self", "target", "weight"),
        # (reduction='none': torch's kernel leaves total_weight 0)
        total_weight=_SvCalc(lambda sv: np.sum(sv["w"], dtype=sv["w"].dtype) * (
            sv["reduction"] != 0), ("w",)))),
    "MseLossBackward0": (None, _sv_all(("self", "target", "reduction"), ("self", "target"))),
}


def _entry(node, attr):
    spec = TABLE.get(node._name)
    if spec is None or node.prim is None or spec[0] is not None and node.prim.name != spec[0]:
        return None
    g = spec[1].get(attr)
    if g is None:
        return None
    sv = node._sv or ()
    if isinstance(g, _Sv) and g.default is None and g.key not in sv or \
            isinstance(g, _SvCalc) and any(k not in sv for k in g.need):
        return None     # the op that made this node kept no such value
    return g


def get(node, name):
    """node.<name> for a `_saved_*` / `_raw_saved_*` name (AttributeError when not given)."""
    raw = name.startswith("_raw_saved_")
    g = _entry(node, name[11:] if raw else name[7:])
    if g is None or raw and not isinstance(g, (_In, _Out)):
        raise AttributeError(f"'{node._name}' object has no attribute '{name}'")
    if not raw:
        return g(node)
    where = g.raw(node)
    # (a Python-number operand, torch's wrapped-number SavedTensor, is kept as a number that
    # Kiln's rule reads directly: no hooks can go there, so no _raw_saved_ for it)
    if where is None and not (isinstance(g, _In) and isinstance(node.saved[g.i], AVal)):
        raise AttributeError(f"'{node._name}' object has no attribute '{name}'")
    return SavedTensor(node, where)


def names(node):
    spec = TABLE.get(node._name)
    if spec is None or node.prim is None or spec[0] is not None and node.prim.name != spec[0]:
        return []
    out = []
    for a, g in spec[1].items():
        if _entry(node, a) is None:
            continue
        out.append("_saved_" + a)
        if isinstance(g, _Out) or isinstance(g, _In) and (
                g.raw(node) is not None or isinstance(node.saved[g.i], AVal)):
            out.append("_raw_saved_" + a)
    return out


class SavedTensor:
    """One tensor a node saved (torch._C._autograd.SavedTensor): register_hooks(pack, unpack)
    runs pack on it now and keeps what it returns; unpack runs when backward (or _saved_*)
    reads it."""
    __slots__ = ("node", "where")

    def __init__(self, node, where):
        self.node, self.where = node, where

    def __repr__(self):
        return f"<torch._C._autograd.SavedTensor object at {hex(id(self))}>"

    def register_hooks(self, pack_hook, unpack_hook):
        if not callable(pack_hook) or not callable(unpack_hook):
            raise TypeError(
                "register_hooks(): incompatible function arguments. The following argument "
                "types are supported:\n    1. (self: torch._C._autograd.SavedTensor, arg0: "
                "collections.abc.Callable, arg1: collections.abc.Callable) -> None\n\n"
                f"Invoked with: {self!r}, {pack_hook!r}, {unpack_hook!r}")
        node = self.node
        if node.freed:
            raise RuntimeError(
                "Calling register_hooks on a saved tensor after it has been freed. Saved "
                "intermediate values of the graph are freed when you call .backward() or "
                "autograd.grad(). Specify retain_graph=True if you need to backward through the "
                "graph a second time or if you need to access saved variables after calling "
                "backward.")
        if self.where is None:
            raise RuntimeError("Calling register_hooks on a saved tensor with value None is "
                               "forbidden")
        kind, i = self.where
        lst = node.saved if kind == "in" else node.out
        if type(lst[i]) is Packed:
            raise RuntimeError("Calling register_hooks on a saved tensor whose hooks have already "
                               "been set. Hint: only one pair of hooks is allowed at a time.")
        prev = STATE.grad_enabled
        STATE.grad_enabled = False
        try:
            if kind == "in":
                p = Packed(lst[i], pack_hook, unpack_hook)
                if type(lst) is not PackedList:
                    node.saved = lst = PackedList(lst)
                node.versions[i] = None
            else:
                o = node.oref[i]() if node.oref is not None else None
                if o is None:
                    o = wrap(lst[i], node.outs[i].dtype)
                p = Packed(o, pack_hook, unpack_hook, i)
                if type(lst) is not PackedList:
                    # the other outputs as plain values, unpacked as they are
                    node.out = lst = PackedList(
                        Packed(wrap(a, node.outs[k].dtype), _ident, _ident, k)
                        for k, a in enumerate(lst))
            lst[i] = p
        finally:
            STATE.grad_enabled = prev


def _ident(t):
    return t
