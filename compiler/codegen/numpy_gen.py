"""NumPy backend: one generated Python function per graph.

    generate(graph, partition, sched) -> (source, MemoryPlan, meta)
    load(source) -> (make, META); make() -> program(inputs, consts, on_output=None) -> list of
    arrays

`on_output(k, array)`, when given, is called once per output k as soon as the group producing
it has run (graph inputs, constants and any output whose storage the memory plan does not
guarantee final at that point are called back at the end, before the return), so a caller can
start using early outputs (DDP launches a gradient bucket's all-reduce) while the rest of the
program runs. Outputs are fresh arrays per call that nothing later in the program overwrites
(memory.py: MemoryPlan.stable_outputs); with on_output=None the check is one `is not None`
test per group that produces an output.

The source is self-contained (it imports NumPy, the primitive registry and the dtypes and
spells every constant literally), so it can be written to the disk cache and loaded by another
process. For each fused group it emits a block headed by a comment naming the group's IR nodes.
Pointwise ops, reductions and matmul write into planned buffers with `out=` (memory.py decides
which buffer, in place where safe); views are NumPy views; everything else calls the
primitive's own NumPy lowering. Every fast path computes exactly what the lowering computes:
operands are cast to the dtype the lowering computes in, and a fast path is used only when
NumPy's chosen loop yields the output dtype (probed on one-element arrays at codegen). The one
exception is layout: linear layers' activations are held transposed (_transposed), and a sum
or product over them adds in another order (KILN_TRANSPOSE=0: C order, bit for bit).
"""
import keyword
import math
import os

import numpy as np

from runtime import dtypes as dt, hostmem
from ..ir.graph import Value
from ..ir.registry import AVal, promote
from .. import memory
from . import parallel as _parallel
from ..ops.reduction import axis0_first

VERSION = "numpy-gen-15"     # 2: program(..., on_output=None) callbacks; 3: inline reshape,
#                              bitwise where, fresh-slot views bound once; 4: copying reshapes
#                              of layout-view chains as one np.take with a static index; 5: 0-d
#                              float arithmetic as NumPy scalar expressions; 6: sums over
#                              (0, ..) with a kept axis between reduce axis 0 first; 7: large
#                              element-wise groups in chunks on several threads; 8: group marks
#                              for the profiler (program.mark); 9: integer pow through its
#                              lowering (PyTorch's x ** -n); 10: sign and float remainder
#                              through their lowerings (NaN and signed-zero results); relu
#                              one np.maximum; 11: reductions as ufunc.reduce; 12:
#                              persistent buffers in one arena (huge pages); 13: linear
#                              layers' activations transposed in memory (_transposed); 14:
#                              a sum over one axis of such a value as a gemv; 15: no
#                              element-wise op between layouts

_UNARY = {"neg": "negative", "abs": "absolute", "exp": "exp", "exp2": "exp2", "log": "log",
          "log2": "log2", "log10": "log10", "log1p": "log1p", "expm1": "expm1",
          "sqrt": "sqrt", "sin": "sin", "cos": "cos", "tan": "tan", "asin": "arcsin",
          "acos": "arccos", "atan": "arctan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
          "floor": "floor", "ceil": "ceil", "trunc": "trunc", "reciprocal": "reciprocal",
          "logical_not": "logical_not", "bitwise_not": "invert", "isnan": "isnan",
          "isinf": "isinf", "isfinite": "isfinite"}
# (not here: sign and remainder, whose lowerings keep PyTorch's NaN and signed-zero results:
# sign(NaN) = 0, remainder(-0.0, 1) = -0.0, where np.sign / np.remainder differ)
_BINARY = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "true_divide",
           "pow": "power", "maximum": "maximum", "minimum": "minimum", "atan2": "arctan2",
           "bitwise_and": "bitwise_and", "bitwise_or": "bitwise_or",
           "bitwise_xor": "bitwise_xor", "bitwise_left_shift": "left_shift",
           "bitwise_right_shift": "right_shift",
           "floor_divide": "floor_divide", "fmod": "fmod"}
_INT_DIVISOR = ("floor_divide", "remainder", "fmod")     # integer x/0 raises in the lowering
_COMPARE = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal",
            "gt": "greater", "ge": "greater_equal", "logical_and": "logical_and",
            "logical_or": "logical_or", "logical_xor": "logical_xor"}
# reductions as the ufunc's own reduce (np.sum / np.max are Python wrappers around it: the same
# result, a few microseconds more per call)
_REDUCE = {"sum": "add", "prod": "multiply", "amax": "maximum", "amin": "minimum"}
_HALF = (dt.float16, dt.bfloat16)
_ALIGN = 64             # persistent buffers start on cache lines within their arena
_FRESH_KINDS = ("pointwise", "reduction", "matmul", "creation", "scan", "concat", "scatter")


class CodegenError(Exception):
    pass


# ---- literals ---------------------------------------------------------------------------------

_DT_ATTR = {d.name: ("bool_" if d.name == "bool" else d.name) for d in dt.ALL}


def lit(v):
    """Python source that evaluates to v (with np and _dt in scope)."""
    if v is None or isinstance(v, (bool, str)) or type(v) is int:
        return repr(v)
    if isinstance(v, float):
        v = float(v)
        return repr(v) if math.isfinite(v) else f"float({str(v)!r})"
    if isinstance(v, int):
        return repr(int(v))
    if isinstance(v, complex):
        return f"complex({lit(v.real)}, {lit(v.imag)})"
    if isinstance(v, dt.DType):
        return f"_dt.{_DT_ATTR[v.name]}"
    if isinstance(v, tuple):
        return "(" + "".join(lit(x) + ", " for x in v) + ")"
    if isinstance(v, list):
        return "[" + ", ".join(lit(x) for x in v) + "]"
    if isinstance(v, slice):
        return f"slice({lit(v.start)}, {lit(v.stop)}, {lit(v.step)})"
    if v is Ellipsis:
        return "Ellipsis"
    if isinstance(v, np.generic) and v.dtype.kind in "biufc":
        return f"np.{v.dtype.name}({lit(v.item())})"
    if isinstance(v, np.dtype):
        return f"np.dtype({v.str!r})"
    raise CodegenError(f"cannot spell constant {v!r} in generated source")


def _np_dtype(d):
    if d is dt.bfloat16:
        return "_dt.bfloat16.np"
    return f"np.{d.np.name}"


def _aval(v):
    return f"AVal({lit(tuple(v.shape))}, {lit(v.dtype)})"


# ---- probing NumPy's loop choice ---------------------------------------------------------------

def _dummy(a, cast_to=None):
    if isinstance(a, Value):
        return np.ones(1, (cast_to or a.dtype).np)
    return float(a) if type(a).__name__ == "FloatParam" else a


def _probe(fn, args, want):
    """True when fn(*args) runs and returns `want` (a NumPy dtype)."""
    try:
        with np.errstate(all="ignore"):
            r = fn(*args)
    except Exception:
        return False
    return getattr(r, "dtype", None) == want


def _wrap_int(x, npd):
    # the lowerings wrap out-of-range Python ints into the compute dtype (uint8 + -3 adds 253)
    if type(x) is int and npd.kind in "iu":
        return int(np.array(x).astype(npd)[()])
    return x


# ---- node emitters ----------------------------------------------------------------------------

class _Node:
    """Codegen decision for one node: mode for the planner, in-place candidates, emitter."""
    __slots__ = ("mode", "inplace", "emit")

    def __init__(self, mode, emit, inplace=()):
        self.mode, self.emit, self.inplace = mode, emit, tuple(inplace)


_SCALAR_OPS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
_SCALAR_DTYPES = (dt.float32, dt.float64)


def _scalar_node(n, out):
    """A 0-d float add/sub/mul/div/neg/cast on 0-d operands of its dtype (an optimizer's bias
    corrections and hyperparameter arithmetic): a NumPy scalar expression (`a * b`), ~10x
    cheaper than a ufunc call with out=. NumPy scalars of the same dtype round exactly like the
    0-d ufunc (and divide by zero the same way); Python numbers stay weak (NEP 50)."""
    if out.shape != () or out.dtype not in _SCALAR_DTYPES:
        return None
    vals = [a for a in n.inputs if isinstance(a, Value)]
    if not vals or any(a.shape != () for a in vals):
        return None
    if n.op == "cast":
        x = n.inputs[0]
        if x.dtype not in _SCALAR_DTYPES:
            return None
        return _Node("fresh", ("scalar_cast", x))
    if any(a.dtype is not out.dtype for a in vals):
        return None
    for a in n.inputs:
        if not isinstance(a, Value) and not (type(a) in (int, float) or
                                             type(a).__name__ == "FloatParam"):
            return None
    if n.op == "neg" and len(n.inputs) == 1:
        return _Node("fresh", ("scalar", "-", None, n.inputs[0]))
    sym = _SCALAR_OPS.get(n.op)
    if sym is None or len(n.inputs) != 2:
        return None
    return _Node("fresh", ("scalar", sym, n.inputs[0], n.inputs[1]))


def _choose(n, returned=()):
    """The emitter for node n; None means 'call the lowering'."""
    op = n.op
    out = n.outputs[0] if len(n.outputs) == 1 else None
    if out is None:
        return None
    if id(out) not in returned:         # (a returned value stays a 0-d array)
        d = _scalar_node(n, out)
        if d is not None:
            return d
    npd = out.dtype.np
    arrs = [a for a in n.inputs if isinstance(a, Value)]
    if op in _BINARY and len(n.inputs) == 2:
        if (op in _INT_DIVISOR or op == "pow") and npd.kind in "iub":
            return None         # (integer x/0 raises, integer x ** -n is 0 or +-1: the lowering)
        if out.dtype in _HALF and len(arrs) < 2:
            return None         # (a Python number meets a half tensor in float32: the lowering)
        a, b = (_wrap_int(x, npd) for x in n.inputs)
        uf = getattr(np, _BINARY[op])
        cast = any(x.dtype is not out.dtype for x in arrs)
        if not _probe(uf, [_dummy(a, out.dtype), _dummy(b, out.dtype)], npd):
            return None
        extra = f", dtype={_np_dtype(out.dtype)}, casting='unsafe'" if cast else ""
        ins = [k for k, x in enumerate(n.inputs) if isinstance(x, Value)]
        return _Node("out", ("ufunc", _BINARY[op], (a, b), extra), ins)
    if op in _COMPARE and len(n.inputs) == 2:
        cd = promote(*n.inputs)
        if any(x.dtype is not cd for x in arrs):
            return None
        a, b = (_wrap_int(x, cd.np) for x in n.inputs)
        uf = getattr(np, _COMPARE[op])
        if not _probe(uf, [_dummy(a), _dummy(b)], npd):
            return None
        return _Node("out", ("ufunc", _COMPARE[op], (a, b), ""), [])
    if op == "relu" and isinstance(n.inputs[0], Value) and n.inputs[0].dtype is out.dtype:
        # one np.maximum, its operands ordered so that x wins a -0.0/+0.0 tie (the lowering's
        # RELU_ORDER, probed once per dtype); no such order: the lowering (a where)
        from ..ops.pointwise import RELU_ORDER
        x = n.inputs[0]
        order = RELU_ORDER.get(np.dtype(npd), "x_first")
        args = (0, x) if order == "zero_first" else (x, 0)
        if order is None or not _probe(np.maximum, [_dummy(a) for a in args], npd):
            return None
        return _Node("out", ("ufunc", "maximum", args, ""), [0])
    if op in _UNARY and len(n.inputs) == 1 and isinstance(n.inputs[0], Value):
        x = n.inputs[0]
        if op == "sign" and x.dtype is dt.bool_ or out.dtype in _HALF or x.dtype in _HALF:
            return None     # (half floats are computed in float32 and rounded once: the lowering)
        # the lowering casts its input to the output dtype only for float outputs
        cast = x.dtype is not out.dtype and out.dtype.category >= 2
        uf = getattr(np, _UNARY[op])
        if not _probe(uf, [_dummy(x, out.dtype if cast else None)], npd):
            return None
        extra = f", dtype={_np_dtype(out.dtype)}, casting='unsafe'" if cast else ""
        return _Node("out", ("ufunc", _UNARY[op], (x,), extra), [0])
    if op == "rsqrt" and isinstance(n.inputs[0], Value) and n.inputs[0].dtype is out.dtype \
            and out.dtype not in _HALF:
        x = n.inputs[0]
        if not _probe(lambda y: 1.0 / np.sqrt(y), [_dummy(x)], npd):
            return None
        return _Node("out", ("rsqrt", x), [0])
    if op == "copy" or op == "cast":
        x = n.inputs[0]
        if not isinstance(x, Value) or (x.dtype is dt.float64 and out.dtype is dt.float16):
            return None         # (double -> float -> half, as torch rounds: the lowering)
        return _Node("out", ("copyto", x), [0] if x.dtype is out.dtype else [])
    if op == "where":
        c, x, y = n.inputs
        if not isinstance(c, Value) or c.dtype is not dt.bool_:
            return None
        for v in (x, y):
            if not isinstance(v, Value):
                if type(v).__name__ != "FloatParam":
                    try:
                        npd.type(v)
                    except Exception:
                        return None
                elif npd.kind not in "fc":
                    return None
        ins = [k for k in (1, 2) if isinstance(n.inputs[k], Value)]
        return _Node("out", ("where", c, x, y), ins)
    if op in _REDUCE:
        x = n.inputs[0]
        if not isinstance(x, Value) or x.dtype is not out.dtype or out.dtype in _HALF:
            return None
        dims = n.attrs.get("dims")
        dims = tuple(range(len(x.shape))) if dims is None else tuple(dims)
        if not x.shape and dims:
            return None
        return _Node("out", ("reduce", _REDUCE[op], x, dims, bool(n.attrs.get("keepdim"))))
    if op == "matmul":
        a, b = n.inputs
        if a.dtype is not out.dtype or b.dtype is not out.dtype:
            return None
        return _Node("out", ("matmul", a, b))
    if op == "full" and not isinstance(n.attrs.get("value"), Value):
        return _Node("out", ("fill", n.attrs["value"]))
    if op == "reshape" and isinstance(n.inputs[0], Value):
        # x.reshape: a view when the strides allow, else a copy (what the lowering returns);
        # "alias" because it may be either
        return _Node("alias", ("reshape", n.inputs[0], tuple(out.shape)))
    if op == "permute":
        return _Node("view", ("permute", n.inputs[0], tuple(n.attrs["dims"])))
    if op == "expand":
        return _Node("view", ("expand", n.inputs[0], tuple(out.shape)))
    if op == "slice":
        return _Node("view", ("slice", n.inputs[0], n.attrs))
    return None


class _Writer:
    def __init__(self, graph):
        self.names = {}
        self.used = {"np", "consts", "inputs", "AVal", "REGISTRY", "program", "make"}
        self.setup = []             # lines of make() before the program
        self.scratch = {}           # (shape, int dtype) -> scratch buffer names (bitwise where)
        self.gathers = 0            # static index arrays of reshape-copies done by np.take
        self.layout_import = False
        self.transposed = frozenset()       # the memory plan's transposed values
        self.inputs = graph.inputs
        for k, v in enumerate(graph.inputs):
            self.bind(v, f"in{k}")

    def bind(self, v, prefer=None):
        base = prefer or v.name
        if not base.isidentifier() or keyword.iskeyword(base) or base.startswith("_") or \
                base in self.used:
            base = f"t{len(self.names)}"
        while base in self.used:
            base += "_"
        self.used.add(base)
        self.names[id(v)] = base
        return base

    def arg(self, a):
        if isinstance(a, Value):
            return self.names[id(a)]
        if type(a).__name__ == "FloatParam":
            return f"consts[{a.index}]"
        return lit(a)


def _view_index(slot, v, tr):
    """Index of the first value in slot with v's shape and layout (tr: the transposed ids;
    values of one shape and layout share a view)."""
    t = id(v) in tr
    return next(k for k, u in enumerate(slot.values) if u.shape == v.shape and (id(u) in tr) == t)


def _view_src(base, shape, transposed):
    """The view of a flat buffer that holds a value of `shape`: C order, or (transposed, 2-D)
    the C-order buffer of the transpose, viewed back (.T)."""
    if transposed:
        return f"{base}.reshape({lit(tuple(shape[::-1]))}).T"
    return f"{base}.reshape({lit(tuple(shape))})"


def _slot_expr(w, plan, fresh_made, body):
    """Expression for the buffer w is written into (allocating a fresh slot on first use; each
    shape's view of a fresh slot is bound to a local name once per call)."""
    s = plan.slot_of[id(w)]
    n = 1
    for d in w.shape:
        n *= d
    tr = plan.transposed
    if not s.fresh:
        return f"_b{s.id}_{_view_index(s, w, tr)}"
    if s.id not in fresh_made:
        fresh_made[s.id] = {}
        body.append(f"_s{s.id} = np.empty({s.size}, {_np_dtype(s.dtype)})")
    views = fresh_made[s.id]
    key = (tuple(w.shape), id(w) in tr)
    name = views.get(key)
    if name is None:
        name = views[key] = f"_f{s.id}_{len(views)}"
        view = f"_s{s.id}" if n == s.size else f"_s{s.id}[:{n}]"
        body.append(f"{name} = {_view_src(view, w.shape, key[1])}")
    return name


def _donations(graph, donate):
    """{id(output Value): input position} for the (output, input) pairs the caller donates,
    keeping only outputs returned exactly once that are computed values (not inputs)."""
    if not donate:
        return None
    count = {}
    for o in graph.outputs:
        if isinstance(o, Value):
            count[id(o)] = count.get(id(o), 0) + 1
    ins = {id(v) for v in graph.inputs}
    res = {}
    for j, k in donate:
        o = graph.outputs[j] if j < len(graph.outputs) else None
        if isinstance(o, Value) and count[id(o)] == 1 and id(o) not in ins and \
                0 <= k < len(graph.inputs):
            res[id(o)] = k
    return res


def generate(graph, partition, sched, donate=()):
    nodes = sched.nodes()
    decisions = {}
    returned = {id(o) for o in graph.outputs if isinstance(o, Value)}
    for n in nodes:
        d = _choose(n, returned)
        if d is None:
            kind = n.prim.kind
            d = _Node("fresh" if kind in _FRESH_KINDS else "alias", None)
        decisions[id(n)] = d
    donations = _donations(graph, donate)
    plan = memory.plan(nodes, graph, {k: d.mode for k, d in decisions.items()},
                       {k: d.inplace for k, d in decisions.items() if d.inplace},
                       donations, _transposed(nodes, decisions, returned, donations or {}))
    # (a value the plan put in a donated input's array has that array's layout)
    plan.transposed = frozenset(i for i in plan.transposed if i not in plan.donated)
    w = _Writer(graph)
    w.transposed = plan.transposed
    setup = ["import numpy as np", "from compiler.ir.registry import REGISTRY, AVal",
             "from runtime import dtypes as _dt", "", "", "def make():",
             "    # planned buffers: allocated once, reused by every call"]
    # the persistent buffers as aligned pieces of one arena (runtime/hostmem.py: on huge pages
    # once it spans one)
    kept = [s for s in plan.slots if not s.fresh]
    offsets, total = [], 0
    for s in kept:
        offsets.append(total)
        total += -(-s.nbytes // _ALIGN) * _ALIGN
    if total >= hostmem.HUGE:
        setup.insert(3, "from runtime.hostmem import arena as _arena")
        setup.append(f"    _a = _arena({total})")
    for s, off in zip(kept, offsets):
        alloc = f"_a[{off}:{off + s.nbytes}].view({_np_dtype(s.dtype)})" \
            if total >= hostmem.HUGE else f"np.empty({s.size}, {_np_dtype(s.dtype)})"
        setup.append(f"    _s{s.id} = {alloc}   # " + ", ".join(v.name for v in s.values))
        for k, v in enumerate(s.values):
            if _view_index(s, v, plan.transposed) != k:
                continue            # same shape and layout as an earlier value: same view
            n = 1
            for d in v.shape:
                n *= d
            view = f"_s{s.id}" if n == s.size else f"_s{s.id}[:{n}]"
            setup.append(f"    _b{s.id}_{k} = "
                         f"{_view_src(view, v.shape, id(v) in plan.transposed)}")
    # program.mark (None unless framework.profiler is recording): called with each group's
    # index as the group starts and with -1 at the end, so the profiler times every group
    body = ["_m = program.mark"]
    if graph.inputs:
        body.append(", ".join(w.names[id(v)] for v in graph.inputs) +
                    (", = inputs" if len(graph.inputs) == 1 else " = inputs"))
    fresh_made = {}
    lowered = {}
    early = _early_outputs(graph, plan)
    late = [k for k, o in enumerate(graph.outputs) if not (isinstance(o, Value) and
                                                          id(o) in early)]
    for gi, gr in enumerate(sched.order):
        ops = "; ".join(f"{', '.join(o.name for o in n.outputs)} = {n.op}" for n in gr.nodes)
        body.append(f"# {gr.name} [{gr.kind}]: {ops}")
        body.append(f"if _m is not None: _m({gi})")
        for run, shape in _parallel_runs(gr.nodes, decisions):
            if shape is not None:
                _emit_parallel(run, shape, decisions, w, plan, fresh_made, body, setup)
            else:
                for n in run:
                    _emit(n, decisions[id(n)], w, plan, fresh_made, body, setup, lowered)
        ready = [k for n in gr.nodes for o in n.outputs for k in early.get(id(o), ())]
        if ready:
            body.append("if on_output is not None:   # final from here on (fresh storage that "
                        "nothing below writes): tell the caller now")
            body.extend(f"    on_output({k}, {w.arg(graph.outputs[k])})" for k in sorted(ready))
    if late:
        body.append("if on_output is not None:   # outputs not computed here, or not final "
                    "before the end")
        body.extend(f"    on_output({k}, {w.arg(graph.outputs[k])})" for k in late)
    rets = [w.arg(o) for o in graph.outputs]
    body.append("if _m is not None: _m(-1)")
    body.append(f"return [{', '.join(rets)}]")
    meta = {"version": VERSION, "groups": [gr.name for gr in sched.order],
            "planned_bytes": plan.planned_bytes, "naive_bytes": plan.naive_bytes,
            "persistent_bytes": plan.persistent_bytes, "donated": len(plan.donated)}
    setup.insert(3, f"META = {meta!r}")
    lines = setup + ["", "    def program(inputs, consts, on_output=None):"] + ["        " + b for b in body] + \
        ["", "    program.mark = None", "    return program", ""]
    return "\n".join(lines), plan, meta


_POINTWISE_EMITS = ("ufunc", "copyto", "where", "rsqrt")
_LAYOUT_FREE_EMITS = _POINTWISE_EMITS + ("reduce", "matmul")
# KILN_TRANSPOSE=0 keeps every planned value in C order: compiled results then equal eager's
# bit for bit (a reduction over a transposed value adds in another order)
TRANSPOSE = os.environ.get("KILN_TRANSPOSE", "1") != "0"
_TRANSPOSE_MIN = 4096           # elements: below this a product's layout makes no difference


def version():
    """The code generator's version as cache keys use it (the layout setting included)."""
    return VERSION if TRANSPOSE else VERSION + "-c"


def _transposed(nodes, decisions, returned, donated):
    """ids of the 2-D values kept transposed in memory: a C-contiguous (n, m) buffer viewed as
    the (m, n) value (.T). Seeds are products at least twice as wide as they are tall (and not
    tiny): a linear layer's x @ w.T over a batch smaller than its width, and its input
    gradient. OpenBLAS computes them 10-30% faster into that layout (measured on Zen 4, from
    16x4096x4096 to 128x784x512), and products reading such operands (whose transposes are
    C-contiguous) are as fast or faster. Element-wise ops whose operands of their shape are all
    transposed (bias add, activation, mask; other operands broadcast) keep the layout.

    Only values that stay inside the program (not returned, not written into a donated input)
    and that only element-wise ops, reductions, products and transposes read: NumPy computes
    any layout correctly, but a reshape would copy. A product reading a transposed operand, or
    a reduction over one, adds in another order, so results can differ from eager's in the
    last bits (as two BLAS blockings do); TRANSPOSE = False (KILN_TRANSPOSE=0) turns it off."""
    users = {}
    for n in nodes:
        for a in n.inputs:
            if isinstance(a, Value):
                users.setdefault(id(a), []).append(n)

    def reader_ok(m):
        d = decisions[id(m)]
        if d.emit is None:
            return False
        if d.mode == "view":
            return d.emit[0] == "permute"
        return d.mode == "out" and d.emit[0] in _LAYOUT_FREE_EMITS
    tr = set()
    if not TRANSPOSE:
        return tr
    for n in nodes:
        d = decisions[id(n)]
        if d.mode != "out" or d.emit is None or len(n.outputs) != 1:
            continue
        w = n.outputs[0]
        if len(w.shape) != 2 or id(w) in returned or id(w) in donated:
            continue
        vals = [a for a in n.inputs if isinstance(a, Value)]
        if d.emit[0] == "matmul":
            m, k = w.shape
            ok = 2 * m <= k and m * k >= _TRANSPOSE_MIN and all(len(a.shape) == 2 for a in vals)
        else:
            ok = d.emit[0] in _POINTWISE_EMITS and _all_transposed(vals, w.shape, tr)
        if ok and all(reader_ok(m) for m in users.get(id(w), ())):
            tr.add(id(w))
    # no element-wise op may mix layouts (a strided pass): an operand whose element-wise reader
    # stays in C order stays in C order too, back to the product, and an element-wise value
    # with an operand of its shape in C order goes back to C order
    changed = True
    while changed:
        changed = False
        for n in reversed(nodes):
            for v in n.outputs:
                if id(v) not in tr:
                    continue
                if any(decisions[id(m)].emit[0] in _POINTWISE_EMITS and
                       m.outputs[0].shape == v.shape and id(m.outputs[0]) not in tr
                       for m in users.get(id(v), ())) or \
                        (decisions[id(n)].emit[0] != "matmul" and not _all_transposed(
                            [a for a in n.inputs if isinstance(a, Value)], v.shape, tr)):
                    tr.discard(id(v))
                    changed = True
    return tr


def _all_transposed(vals, shape, tr):
    """Are the operands of `shape` among vals (there is at least one) all transposed? (The
    others broadcast: a bias, a per-row statistic.)"""
    full = [a for a in vals if a.shape == shape]
    return bool(full) and all(id(a) in tr for a in full)


def _elementwise_shape(n, d):
    """The shape node n computes element-wise over (an out= ufunc or copy whose array operands
    all have that shape or are 0-d), or None."""
    if d.emit is None or d.mode != "out" or d.emit[0] not in ("ufunc", "copyto") or \
            len(n.outputs) != 1:
        return None
    shape = n.outputs[0].shape
    if any(isinstance(a, Value) and a.shape not in (shape, ()) for a in n.inputs):
        return None
    return shape


def _parallel_runs(nodes, decisions):
    """[(nodes, shape or None)]: maximal runs of consecutive element-wise nodes over one shape
    of at least parallel.MIN_ELEMENTS elements (shape given: run on several threads by
    compiler/codegen/parallel.py), the other nodes in runs of their own (None)."""
    out = []
    for n in nodes:
        shape = _elementwise_shape(n, decisions[id(n)]) if _parallel.threads > 1 else None
        if shape is not None and math.prod(shape) < _parallel.MIN_ELEMENTS:
            shape = None
        if out and out[-1][1] == shape and (shape is not None or out[-1][1] is None):
            out[-1][0].append(n)
        else:
            out.append(([n], shape))
    return out


def _emit_parallel(nodes, shape, decisions, w, plan, fresh_made, body, setup):
    """A run of element-wise nodes as a chunk function over flat views, run by parallel.run;
    a serial version of the same statements for arrays that turn out not to be contiguous (a
    donated input written in place may be a strided view). Operands all held transposed are
    flattened in memory order (through .T); a run mixing layouts is emitted serially."""
    tr = plan.transposed
    lays = {id(v) in tr
            for n in nodes for v in n.outputs + [a for a in n.inputs if isinstance(a, Value)]
            if v.shape == shape}
    if len(lays) > 1:           # transposed and C-order operands: no common flat order
        for n in nodes:
            _emit(n, decisions[id(n)], w, plan, fresh_made, body, setup, None)
        return
    flip = ".T" if True in lays else ""     # all transposed: flat in memory order, via .T
    if "_par" not in w.used:
        w.used.add("_par")
        setup.insert(3, "from compiler.codegen.parallel import run as _par")
    full = {}                   # operand name -> flat view name
    written, stmts = [], []

    def flat(a):
        x = w.arg(a)
        if not isinstance(a, Value) or a.shape == ():
            return x, x
        if x not in full:
            full[x] = f"_fv{len(w.used)}_{len(full)}"
            w.used.add(full[x])
        return x, f"{full[x]}[lo:hi]"
    for n in nodes:
        d = decisions[id(n)]
        out = n.outputs[0]
        k = plan.donated.get(id(out))
        if k is not None:
            buf = w.names[id(w.inputs[k])]
            written.append(buf)
        else:
            buf = _slot_expr(out, plan, fresh_made, body)
        name = w.bind(out)
        body.append(f"{name} = {buf}")
        o_s, o_c = flat(out)
        if d.emit[0] == "ufunc":
            _, uf, args, extra = d.emit
            ser = [flat(a) for a in args]
            stmts.append((f"np.{uf}({', '.join(a for a, _ in ser)}, out={o_s}{extra})",
                          f"np.{uf}({', '.join(c for _, c in ser)}, out={o_c}{extra})"))
        else:
            src_s, src_c = flat(d.emit[1])
            stmts.append((f"np.copyto({o_s}, {src_s}, casting='unsafe')",
                          f"np.copyto({o_c}, {src_c}, casting='unsafe')"))
    cond = " and ".join(f"{x}{flip}.flags.c_contiguous" for x in dict.fromkeys(written)) or \
        "True"
    fn = f"_pg{len(w.used)}"
    w.used.add(fn)
    body.append(f"if {cond}:     # {math.prod(shape)} elements: chunks on several threads")
    body.extend(f"    {v} = {x}{flip}.reshape(-1)" for x, v in full.items())
    body.append(f"    def {fn}(lo, hi):")
    body.extend(f"        {c}" for _, c in stmts)
    body.append(f"    _par({fn}, {math.prod(shape)})")
    body.append("else:")
    body.extend(f"    {s_}" for s_, _ in stmts)


def _early_outputs(graph, plan):
    """{id(output Value): [output positions]} for the outputs that may be handed to on_output
    right after their producing group: computed by a node (not graph inputs) and stable in the
    memory plan (nothing later in the program writes their storage)."""
    ins = {id(v) for v in graph.inputs}
    res = {}
    for k, o in enumerate(graph.outputs):
        if isinstance(o, Value) and id(o) not in ins and id(o) in plan.stable_outputs:
            res.setdefault(id(o), []).append(k)
    return res


def _emit(n, d, w, plan, fresh_made, body, setup, lowered):
    if d.emit is None:
        _emit_lowering(n, w, body, setup, lowered)
        return
    out = n.outputs[0]
    what = d.emit[0]
    if what == "reshape":
        x = w.arg(d.emit[1])
        gather = _reshape_gather(d.emit[1], d.emit[2])
        if gather is not None:
            src, chain = gather
            if not w.layout_import:
                w.layout_import = True
                setup.insert(3, "from compiler.codegen.numpy_gen import layout_index as "
                                "_layout_index")
            ix = f"_gx{w.gathers}"
            w.gathers += 1
            setup.append(f"    {ix} = _layout_index({lit(tuple(src.shape))}, {lit(chain)}, "
                         f"{lit(d.emit[2])})   # reshape copy as a gather")
            body.append(f"{w.bind(out)} = np.take({w.arg(src)}, {ix})")
            return
        body.append(f"{w.bind(out)} = {x}.reshape({lit(d.emit[2])})")
        return
    if what == "scalar":
        _, sym, a, b = d.emit
        expr = f"-{w.arg(b)}" if a is None else f"{w.arg(a)} {sym} {w.arg(b)}"
        body.append(f"{w.bind(out)} = {expr}")
        return
    if what == "scalar_cast":
        body.append(f"{w.bind(out)} = {_np_dtype(out.dtype)}({w.arg(d.emit[1])})")
        return
    if d.mode == "view":
        x = w.arg(d.emit[1])
        name = w.bind(out)
        if what == "permute":
            body.append(f"{name} = np.transpose({x}, {lit(d.emit[2])})")
        elif what == "expand":
            body.append(f"{name} = np.broadcast_to({x}, {lit(d.emit[2])})")
        else:
            a = d.emit[2]
            idx = [slice(None)] * len(d.emit[1].shape)
            idx[a["dim"] % len(idx)] = slice(a["start"], a["stop"], a["step"])
            body.append(f"{name} = {x}[{lit(tuple(idx))}]")
        return
    k = plan.donated.get(id(out))
    if k is not None:           # written straight into a donated input array
        dst = w.inputs[k]
        buf = w.names[id(dst)]
    else:
        dst = None
        buf = _slot_expr(out, plan, fresh_made, body)
    name = w.bind(out)
    if what == "ufunc":
        _, uf, args, extra = d.emit
        body.append(f"{name} = np.{uf}({', '.join(w.arg(a) for a in args)}, out={buf}{extra})")
    elif what == "rsqrt":
        body.append(f"{name} = np.sqrt({w.arg(d.emit[1])}, out={buf})")
        body.append(f"np.divide(1.0, {name}, out={name})")
    elif what == "copyto":
        body.append(f"{name} = {buf}")
        body.append(f"np.copyto({name}, {w.arg(d.emit[1])}, casting='unsafe')")
    elif what == "fill":
        body.append(f"{name} = {buf}")
        body.append(f"np.copyto({name}, {lit(d.emit[1])}, casting='unsafe')")
    elif what == "reduce":
        _, f, x, dims, keep = d.emit
        src = w.arg(x)
        if dst is None and _gemv_sum(f, x, dims, w, setup, body, name, buf):
            return          # (into a planned buffer: contiguous, so its reshape is a view)
        if f == "add" and axis0_first(dims, len(x.shape)):      # (the lowering's order)
            src = f"np.add.reduce({src}, axis=0, keepdims=True)"
        body.append(f"{name} = np.{f}.reduce({src}, axis={lit(dims)}, keepdims={keep}, out={buf})")
    elif what == "matmul":
        body.append(f"{name} = np.matmul({w.arg(d.emit[1])}, {w.arg(d.emit[2])}, out={buf})")
    elif what == "where":
        _, c, x, y = d.emit
        slot = plan.slot_of.get(id(out))

        def same(v):            # v already lives in the output's memory
            return isinstance(v, Value) and (
                v is dst or (k is not None and plan.donated.get(id(v)) == k) or
                (slot is not None and plan.slot_of.get(id(v)) is slot))
        body.append(f"{name} = {buf}")
        if _bitwise_where(out, c, x, y, name, w, setup, body):
            return
        if same(y):                                                         # in place over y
            body.append(f"np.copyto({name}, {w.arg(x)}, casting='unsafe', where={w.arg(c)})")
        elif same(x):                                                       # in place over x
            body.append(f"np.copyto({name}, {w.arg(y)}, casting='unsafe', "
                        f"where=~{w.arg(c)})")
        else:
            body.append(f"np.copyto({name}, {w.arg(y)}, casting='unsafe')")
            body.append(f"np.copyto({name}, {w.arg(x)}, casting='unsafe', where={w.arg(c)})")
    else:                                       # pragma: no cover - _choose is exhaustive
        raise CodegenError(f"numpy codegen: no emitter {what!r} for {n.op}")


def _gemv_sum(f, x, dims, w, setup, body, name, buf):
    """A sum over one axis of a transposed 2-D float value (a bias gradient) as a product with
    a ones vector: along the strided axis NumPy's reduction runs one short pairwise sum per
    output element (3-4x slower than the C-order sum it replaces); BLAS's gemv walks memory
    once. (The additions' order differs from eager's anyway for such a value.)"""
    if f != "add" or id(x) not in w.transposed or dims not in ((0,), (1,)) or \
            x.dtype not in (dt.float32, dt.float64):
        return False
    m, n = x.shape
    k = m if dims == (0,) else n
    ones = f"_ones{k}_{x.dtype.name}"
    if ones not in w.used:
        w.used.add(ones)
        setup.append(f"    {ones} = np.ones({k}, {_np_dtype(x.dtype)})   # sums as products")
    if dims == (0,):
        body.append(f"{name} = np.matmul({ones}, {w.arg(x)}, out={buf}.reshape({n}))")
    else:
        body.append(f"{name} = np.matmul({w.arg(x)}, {ones}, out={buf}.reshape({m}))")
    body.append(f"{name} = {buf}")
    return True


_BITS = {"float32": "int32", "float64": "int64"}
_BITWISE_WHERE_MIN = 4096       # below this, np.copyto(where=) costs less than five ufunc calls


def _bitwise_where(out, c, x, y, name, w, setup, body):
    """where(c, x, y) for large float32/float64 outputs as integer bit operations on the same
    bits: out = y ^ ((x ^ y) & -c) (or x & -c, y & (c - 1) when the other side is +0.0).
    NumPy's masked copy (copyto where=) is several times slower than these contiguous loops;
    the result is bit-identical (NaN payloads, signed zeros and infinities included)."""
    ib = _BITS.get(out.dtype.name)
    numel = 1
    for d in out.shape:
        numel *= d
    if ib is None or numel < _BITWISE_WHERE_MIN:
        return False
    npd = out.dtype.np

    def bits(v):            # (source of the operand's integer view, literal bit value or None)
        if isinstance(v, Value):
            return (f"{w.arg(v)}.view(np.{ib})", None) if v.dtype is out.dtype else None
        if type(v).__name__ == "FloatParam":
            return f"np.array({w.arg(v)}, np.{npd.name}).view(np.{ib})", None
        if isinstance(v, bool) or isinstance(v, float) or (type(v) is int and abs(v) < 2 ** 24):
            b = int(np.array(v, npd).view(getattr(np, ib))[()])
            return f"np.{ib}({b})", b
        return None
    bx, by = bits(x), bits(y)
    if bx is None or by is None:
        return False
    tr = id(out) in w.transposed
    key = (tuple(out.shape), ib, tr)
    sc = w.scratch.get(key)
    if sc is None:      # (in the output's layout: the bit operations then run along memory)
        sc = w.scratch[key] = f"_wm{len(w.scratch)}", f"_wt{len(w.scratch)}"
        shape = tuple(out.shape[::-1]) if tr else tuple(out.shape)
        for nm in sc:
            setup.append(f"    {nm} = np.empty({lit(shape)}, np.{ib}){'.T' if tr else ''}"
                         "   # where scratch")
    m, t = sc
    oi = f"{name}.view(np.{ib})"
    body.append(f"np.copyto({m}, {w.arg(c)})")
    if bx[1] == 0:                          # where(c, +0.0, y) = y & (c - 1)
        body.append(f"np.subtract({m}, 1, out={m})")
        body.append(f"np.bitwise_and({by[0]}, {m}, out={oi})")
        return True
    body.append(f"np.negative({m}, out={m})")
    if by[1] == 0:                          # where(c, x, +0.0) = x & -c
        body.append(f"np.bitwise_and({bx[0]}, {m}, out={oi})")
        return True
    body.append(f"np.bitwise_xor({bx[0]}, {by[0]}, out={t})")
    body.append(f"np.bitwise_and({t}, {m}, out={t})")
    body.append(f"np.bitwise_xor({by[0]}, {t}, out={oi})")
    return True


# pure layout ops: each output element is one element of the input (views in the lowerings)
_LAYOUT_OPS = ("windows", "permute", "slice", "expand", "reshape", "flip", "diagonal")
_TAKE_MIN = 1024        # elements below which the reshape's own copy is cheap enough
_TAKE_RUN = 6           # mean contiguous run (elements) up to which np.take beats the copy


def _layout_chain(v):
    """(source value, ((op, out shape, attrs), ...)) when v is built from the source by layout
    ops only (each op's NumPy lowering is a view or a copy of the same elements)."""
    chain = []
    while isinstance(v, Value) and v.node is not None and v.node.op in _LAYOUT_OPS and \
            len(v.node.outputs) == 1 and len(v.node.inputs) == 1 and \
            isinstance(v.node.inputs[0], Value):
        chain.append((v.node.op, tuple(v.shape), tuple(sorted(v.node.attrs.items()))))
        v = v.node.inputs[0]
    return v, tuple(reversed(chain))


def layout_index(src_shape, chain, shape):
    """Positions in source.reshape(-1) (C order) of the elements of
    chain(source).reshape(shape): the chain's own lowerings applied to an index array (layout
    ops move elements without computing, so the result is that gather for any source array)."""
    from ..ir.registry import REGISTRY
    n = 1
    for d in src_shape:
        n *= d
    a = np.arange(n, dtype=np.intp).reshape(src_shape)
    for op, oshape, attrs in chain:
        a = REGISTRY[op].numpy(AVal(tuple(oshape), dt.int64), a, **dict(attrs))
    r = np.array(np.asarray(a).reshape(shape), np.intp)
    r.setflags(write=False)
    return r


def _reshape_gather(x, shape):
    """(source, chain) when reshape(x, shape) copies a strided layout view with short
    contiguous runs (pooling windows, im2col of small planes): NumPy copies those a few
    elements at a time, np.take with a static index is several times faster and returns the
    same elements (bit for bit: no arithmetic). None: emit x.reshape(shape)."""
    src, chain = _layout_chain(x)
    if not chain:
        return None
    n = 1
    for d in shape:
        n *= d
    if n < _TAKE_MIN:
        return None
    n_src = 1
    for d in src.shape:
        n_src *= d
    base = np.arange(n_src, dtype=np.intp).reshape(src.shape)
    a = base
    try:
        from ..ir.registry import REGISTRY
        for op, oshape, attrs in chain:
            a = np.asarray(REGISTRY[op].numpy(AVal(oshape, dt.int64), a, **dict(attrs)))
        r = a.reshape(shape)
    except Exception:
        return None
    if np.shares_memory(r, base):       # a view when the source is contiguous: no copy to save
        return None
    flat = r.reshape(-1)
    runs = 1 + int(np.count_nonzero(np.diff(flat) != 1))
    if n / runs > _TAKE_RUN:
        return None
    return src, chain


def _emit_lowering(n, w, body, setup, lowered):
    """Call the primitive's NumPy lowering (extern ops and cases without a fast path)."""
    fn = lowered.get(n.op)
    if fn is None:
        fn = lowered[n.op] = f"_L_{n.op}"
        setup.append(f"    {fn} = REGISTRY[{n.op!r}].numpy")
    metas = [_aval(o) for o in n.outputs]
    m = f"_M{len(setup)}"
    setup.append(f"    {m} = " + (metas[0] if len(metas) == 1 else "[" + ", ".join(metas) + "]"))
    args = [w.arg(a) for a in n.inputs] + [f"{k}={lit(v)}" for k, v in n.attrs.items()]
    call = f"{fn}({m}, {', '.join(args)})"
    if len(n.outputs) == 1:
        body.append(f"{w.bind(n.outputs[0])} = np.asarray({call})")
    else:
        tmp = f"_r{len(setup)}"
        body.append(f"{tmp} = {call}")
        for k, o in enumerate(n.outputs):
            body.append(f"{w.bind(o)} = np.asarray({tmp}[{k}])")


def load(code, filename="<kiln-numpy>"):
    """Execute generated source (text or code object): (make, META)."""
    env = {"__name__": "kiln_generated"}
    exec(code if not isinstance(code, str) else compile(code, filename, "exec"), env)
    return env["make"], env["META"]
