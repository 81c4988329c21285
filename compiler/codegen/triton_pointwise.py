"""Triton code generation for graphs of pointwise primitives.

A graph whose nodes are all pointwise primitives (one node, or a chain of them) becomes one
Triton kernel over the flat index space of its output shape:

    @triton.jit
    def fused_add_0(x_ptr, y_ptr, out0_ptr, numel, size1, y_stride0, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < numel
        i1 = offs % size1
        x = tl.load(x_ptr + offs, mask=mask)
        y = tl.load(y_ptr + i1 * y_stride0, mask=mask)
        # v0: f32[d0, d1] = add(x: f32[d0, d1], y: f32[d1])
        v0 = x + y
        tl.store(out0_ptr + offs, v0, mask=mask)

Each primitive's Triton expression comes from its registry entry (`Prim.triton`, a format
string over operand expressions, or a function of the operands and compute dtype giving one). This module adds only what is the same for every op:
indexing (broadcasting and strides by index arithmetic), operand casts to the op's compute
dtype (PyTorch's promotion), 16-bit floats computed in float32, and Python scalars.

Sizes and strides are kernel arguments, so one source serves every shape with the same rank
and broadcast pattern; the source (and its cache file) changes only with that structure.
"""
import keyword
import re

from runtime import dtypes as dt
from ..ir.graph import Value, _SHORT  # (_SHORT: the short dtype names of the IR's dumps)
from ..ir.registry import REGISTRY, is_scalar
from ..ops.pointwise import SCALAR_OPMATH
from . import cache
from .triton_helpers import HELPERS, HELPER_DEPS


class TritonCodegenError(NotImplementedError):
    """The graph holds something this generator has no Triton lowering for."""


TL = {"bool": "tl.int1", "uint8": "tl.uint8", "int8": "tl.int8", "int16": "tl.int16",
      "int32": "tl.int32", "int64": "tl.int64", "float16": "tl.float16",
      "bfloat16": "tl.bfloat16", "float32": "tl.float32", "float64": "tl.float64",
      "uint16": "tl.uint16", "uint32": "tl.uint32", "uint64": "tl.uint64"}
# Triton signature strings (ahead-of-time compilation needs them spelled out)
SIG = {"bool": "i1", "uint8": "u8", "int8": "i8", "int16": "i16", "int32": "i32",
       "int64": "i64", "float16": "fp16", "bfloat16": "bf16", "float32": "fp32",
       "float64": "fp64", "uint16": "u16", "uint32": "u32", "uint64": "u64"}

# Rounding ops are the identity on integers (Triton's tl.floor etc. accept floats only).
_INT_IDENTITY = {"floor", "ceil", "trunc", "round"}
# Triton's i1 is a signed 1-bit integer: True + True wraps to False and True < False.
# These ops see bool operands as int8 0/1 and turn a bool result back with `!= 0`.
_BOOL_AS_INT8 = {"add", "sub", "mul", "maximum", "minimum", "abs", "sign", "neg",
                 "lt", "le", "gt", "ge", "isinf", "isfinite"}
# ops on the bits of their own dtype: 16-bit floats are not widened to f32 for these
_BIT_EXACT = {"nextafter"}
_RESERVED = {"tl", "triton", "offs", "mask", "numel", "r", "BLOCK", "pid"}


def _tl(d):
    try:
        return TL[d.name]
    except KeyError:
        raise TritonCodegenError(f"triton codegen: dtype {d} has no Triton type") from None


class Param:
    """One kernel parameter: `role` says where its launch value comes from.
    ("in", k) / ("out", k): pointer of graph input/output k; ("numel",); ("size", d);
    ("stride", k, j): element stride j of input k; ("scalar", value): a Python scalar."""
    __slots__ = ("name", "sig", "role", "constexpr")

    def __init__(self, name, sig, role, constexpr=False):
        self.name, self.sig, self.role, self.constexpr = name, sig, role, constexpr

    def __repr__(self):
        return f"Param({self.name}: {self.sig}, {self.role})"


def contiguous_strides(shape):
    st, acc = [], 1
    for s in reversed(shape):
        st.append(acc)
        acc *= max(s, 1)
    return tuple(reversed(st))


class PointwiseKernel:
    """Generated source plus what launching it needs."""

    def __init__(self, name, source, params, graph, out_shape, idx64):
        self.name, self.source, self.params = name, source, params
        self.graph, self.out_shape, self.idx64 = graph, tuple(out_shape), idx64
        self.digest = cache.digest(source)
        self._path = None

    def __repr__(self):
        return f"<PointwiseKernel {self.name} {self.digest}>"

    @property
    def path(self):
        if self._path is None:
            self._path = cache.write_source(self.name, self.source)
        return self._path

    def function(self, interpret):
        """The @triton.jit function (a JITFunction, or Triton's InterpretedFunction)."""
        return getattr(cache.load_module(self.path, interpret), self.name)

    @property
    def numel(self):
        n = 1
        for s in self.out_shape:
            n *= s
        return n

    def args(self, inputs, outputs):
        """Launch arguments in parameter order. inputs/outputs: buffer objects with
        data_ptr() and dtype (for Triton) and shape / stride() in elements (for indexing)."""
        vals = []
        for p in self.params:
            r = p.role
            if r[0] == "in":
                vals.append(inputs[r[1]])
            elif r[0] == "out":
                vals.append(outputs[r[1]])
            elif r[0] == "numel":
                vals.append(self.numel)
            elif r[0] == "size":
                vals.append(self.out_shape[r[1]])
            elif r[0] == "stride":
                vals.append(int(inputs[r[1]].stride()[r[2]]))
            else:
                vals.append(r[1])
        return vals

    def signature(self, block):
        """{param: type} and {param: value} for triton.compile (pointers typed by dtype)."""
        sig = {p.name: ("constexpr" if p.constexpr else p.sig) for p in self.params}
        sig["BLOCK"] = "constexpr"
        consts = {p.name: p.role[1] for p in self.params if p.constexpr}
        consts["BLOCK"] = block
        return sig, consts

    def block_size(self, interpret=False):
        """Elements per program: enough to keep lanes busy, capped so the grid has work.
        The interpreter runs one NumPy program at a time, so there a big block is cheaper."""
        cap = 1 << 16 if interpret else 1024
        b = 16
        while b < self.numel and b < cap:
            b *= 2
        return b

    def launch(self, inputs, outputs, interpret, block=None, num_warps=None):
        """Run the kernel. Buffers must live in memory the chosen executor can address
        (host memory for the interpreter, device memory for the JIT)."""
        n = self.numel
        if n == 0:
            return outputs
        block = block or self.block_size(interpret)
        fn = self.function(interpret)
        grid = ((n + block - 1) // block,)
        args = self.args(inputs, outputs)
        if interpret:
            fn[grid](*args, BLOCK=block)
            return outputs
        self.relauncher.launch(fn, grid, args, {"BLOCK": block},
                               {"num_warps": num_warps or (4 if block <= 1024 else 8)})
        return outputs

    @property
    def relauncher(self):
        r = self.__dict__.get("_relauncher")
        if r is None:
            from .relaunch import Relauncher
            r = self.__dict__["_relauncher"] = Relauncher()
        return r


def _sym_type(v, out_shape):
    """f32[d0, d1] style type with symbolic sizes (the source must not depend on sizes)."""
    r, R = len(v.shape), len(out_shape)
    dims = []
    for j, s in enumerate(v.shape):
        d = R - r + j
        dims.append("1" if s == 1 else f"d{d}")
    return f"{_SHORT[v.dtype.name]}[{', '.join(dims)}]"


def _scalar_sig(x):
    if isinstance(x, bool):
        return "i1"
    if isinstance(x, int):
        return "i32" if -2**31 <= x < 2**31 else "i64"
    if isinstance(x, float):
        return "fp32"
    raise TritonCodegenError(f"triton codegen: scalar {x!r} of type {type(x).__name__}")


def _fmt_attr(v):
    if isinstance(v, dt.DType):
        return _tl(v)
    return repr(v)


def generate(graph, strides=None, index=0):
    """Triton kernel for `graph` (pointwise primitives only).

    strides: per graph input, its element strides (default: contiguous). The generated
    indexing depends only on which dims are broadcast and which inputs are contiguous.
    """
    if not graph.nodes:
        raise TritonCodegenError("triton codegen: the graph has no nodes")
    for n in graph.nodes:
        p = REGISTRY[n.op]
        if p.kind != "pointwise":
            raise TritonCodegenError(f"triton codegen: {n.op} is a {p.kind} primitive, not pointwise")
        if p.triton is None:
            raise TritonCodegenError(f"triton codegen: primitive {n.op} has no Triton lowering")
        for a in n.inputs:
            if not isinstance(a, Value) and not is_scalar(a):
                raise TritonCodegenError(f"triton codegen: {n.op} operand {a!r} is neither a "
                                         "graph value nor a Python scalar")
            if isinstance(a, Value):
                _tl(a.dtype)        # (a complex input of a real-valued op: abs, angle)
        for o in n.outputs:
            _tl(o.dtype)
    outs = [o for o in graph.outputs if isinstance(o, Value)]
    if not outs or len(outs) != len(graph.outputs):
        raise TritonCodegenError("triton codegen: graph outputs must be graph values")
    out_shape = tuple(outs[0].shape)
    for o in outs:
        if tuple(o.shape) != out_shape:
            raise TritonCodegenError(f"triton codegen: outputs differ in shape ({list(o.shape)} vs "
                                     f"{list(out_shape)}); one kernel has one index space")
    R = len(out_shape)
    for v in list(graph.inputs) + [o for n in graph.nodes for o in n.outputs]:
        r = len(v.shape)
        if r > R or any(s != 1 and s != out_shape[R - r + j] for j, s in enumerate(v.shape)):
            raise TritonCodegenError(f"triton codegen: {v.name} of shape {list(v.shape)} does not "
                                     f"broadcast to the output shape {list(out_shape)}")
    if strides is None:
        strides = [contiguous_strides(v.shape) for v in graph.inputs]
    if len(strides) != len(graph.inputs):
        raise ValueError(f"triton codegen: {len(strides)} stride tuples for "
                         f"{len(graph.inputs)} graph inputs")

    # ---- names ------------------------------------------------------------------------
    used = set(_RESERVED)
    names = {}

    def name_of(v, fallback):
        n = v.name
        if (not n.isidentifier() or keyword.iskeyword(n) or n in used
                or re.fullmatch(r"(i|s|size|out)\d+|.*_(ptr|stride\d+)", n)):
            n = fallback
        while n in used:
            n += "_"
        used.add(n)
        names[id(v)] = n
        return n

    for k, v in enumerate(graph.inputs):
        name_of(v, f"in{k}")
    for n in graph.nodes:
        for o in n.outputs:
            name_of(o, f"v{len(names)}")

    # ---- indexing: which output dims each input walks, and with which strides -----------
    numel = 1
    for s in out_shape:
        numel *= s
    idx64 = numel >= 2**31
    index_expr, stride_params, dims_needed = {}, [], set()
    for k, v in enumerate(graph.inputs):
        st = tuple(strides[k])
        r = len(v.shape)
        live = [j for j, s in enumerate(v.shape) if s != 1]
        extent = sum((v.shape[j] - 1) * abs(st[j]) for j in live)
        idx64 = idx64 or extent >= 2**31
        if tuple(v.shape) == out_shape and all(st[j] == c for j, c in
                                               zip(live, (contiguous_strides(v.shape)[j] for j in live))):
            index_expr[k] = "offs"                 # same shape, contiguous: flat index
            continue
        if not live:
            index_expr[k] = None                   # one element broadcast everywhere
            continue
        terms = []
        for j in live:
            d = R - r + j
            dims_needed.add(d)
            pname = f"{names[id(v)]}_stride{j}"
            used.add(pname)
            stride_params.append(Param(pname, "i64" if idx64 else "i32", ("stride", k, j)))
            terms.append(f"i{d} * {pname}")
        index_expr[k] = " + ".join(terms)
    if idx64:   # stride args were typed before we knew; keep them consistent
        for p in stride_params:
            p.sig = "i64"

    # ---- parameters -----------------------------------------------------------------
    params = [Param(f"{names[id(v)]}_ptr", "*" + SIG[v.dtype.name], ("in", k))
              for k, v in enumerate(graph.inputs)]
    out_names = []
    for k, o in enumerate(outs):
        pn = f"out{k}_ptr"
        while pn in used:
            pn = "_" + pn
        used.add(pn)
        out_names.append(pn)
        params.append(Param(pn, "*" + SIG[o.dtype.name], ("out", k)))
    body_ops = []
    scalar_params = []

    scalar_expr = scalar_emitter(scalar_params)

    for node in graph.nodes:
        comment, expr = op_expr(node, names, scalar_expr, lambda v: _sym_type(v, out_shape))
        body_ops.append((comment, names[id(node.outputs[0])], expr))

    params += scalar_params
    params.append(Param("numel", "i64" if idx64 else "i32", ("numel",)))
    # i_d = (flat // prod(sizes after d)) % size_d; the outermost non-1 dim needs no modulo
    lo = min(dims_needed, default=R)
    first = min((d for d in range(R) if out_shape[d] != 1), default=R)
    size_params = [Param(f"size{d}", "i64" if idx64 else "i32", ("size", d))
                   for d in range(lo, R) if out_shape[d] != 1 and d != first]
    params += size_params + stride_params

    # ---- source -----------------------------------------------------------------------
    ops = "_".join(dict.fromkeys(n.op for n in graph.nodes))
    kname = f"fused_{ops}_{index}"
    L = []
    L.append("# Kiln: Triton kernel generated from an IR graph (one line per primitive).")
    for line in _graph_lines(graph, names, out_shape):
        L.append("# " + line)
    L += ["import triton", "import triton.language as tl", ""]
    for h in _helpers_used(e for _, _, e in body_ops):
        L += HELPERS[h].rstrip("\n").split("\n") + [""]
    L += ["",
          "@triton.jit",
          f"def {kname}(" + ", ".join(
              [f"{p.name}: tl.constexpr" if p.constexpr else p.name for p in params]
              + ["BLOCK: tl.constexpr"]) + "):"]
    pid = "tl.program_id(0).to(tl.int64)" if idx64 else "tl.program_id(0)"
    L.append(f"    offs = {pid} * BLOCK + tl.arange(0, BLOCK)")
    L.append("    mask = offs < numel")
    if dims_needed:
        L.append("    # coordinates of the flat output index (row-major over the output shape)")
        cur = "offs"
        for d in range(R - 1, lo - 1, -1):
            if out_shape[d] == 1:
                continue
            if d == first:
                L.append(f"    i{d} = {cur}")
                break
            L.append(f"    i{d} = {cur} % size{d}")
            if d > lo:
                L.append(f"    r = {cur} // size{d}")
                cur = "r"
    for k, v in enumerate(graph.inputs):
        ptr = f"{names[id(v)]}_ptr"
        ix = index_expr[k]
        if ix is None:
            L.append(f"    {names[id(v)]} = tl.load({ptr})")
        else:
            L.append(f"    {names[id(v)]} = tl.load({ptr} + {ix}, mask=mask)")
    for comment, nm, expr in body_ops:
        L.append("    " + comment)
        L.append(f"    {nm} = {expr}")
    for k, o in enumerate(outs):
        val = names[id(o)] if id(o) in names else None
        if val is None:
            raise TritonCodegenError(f"triton codegen: output {o.name} is not computed by the graph")
        L.append(f"    tl.store({out_names[k]} + offs, {val}, mask=mask)")
    src = "\n".join(L) + "\n"
    return PointwiseKernel(kname, src, params, graph, out_shape, idx64)


def scalar_emitter(scalar_params):
    """scalar_expr(x, dtype) for op_expr: a Python scalar operand becomes a kernel argument
    (appended to `scalar_params`; a runtime value, so one kernel serves every value), made a
    constant of the op's compute dtype with tl.full. float64 compute takes the scalar as a
    constexpr: Triton's float arguments are fp32."""
    def scalar_expr(x, work):
        pn = f"s{len(scalar_params)}"
        if isinstance(x, float) and work is dt.float64:
            p = Param(pn, "constexpr", ("scalar", x), constexpr=True)
        else:
            p = Param(pn, _scalar_sig(x), ("scalar", x))
        scalar_params.append(p)
        return f"tl.full([], {pn}, {_tl(work)})"
    return scalar_expr


def _operand(names, scalar_expr, a, src, work):
    if is_scalar(a):
        return scalar_expr(a, work)
    n = names[id(a)]
    if src is work:
        return n
    if work is dt.bool_:
        return f"({n} != 0)"
    return f"{n}.to({_tl(work)})"


def _half_scalar_expr(scalar_expr, half):
    """A Python number made a constant of the half dtype, then widened (a kernel argument's
    runtime value is rounded in the kernel)."""
    def expr(x, work):
        if type(x) is bool or work is not dt.float32:
            return scalar_expr(x, work)
        return f"{scalar_expr(x, half)}.to(tl.float32)"
    return expr


def op_expr(node, names, scalar_expr, type_of):
    """(comment, expression) for one pointwise node: the registry's Triton expression over its
    operands, with operand casts to the op's compute dtype (PyTorch's promotion), 16-bit floats
    computed in float32 and the result cast to the node's dtype. Shared by every group kind.
    names: id(Value) -> Triton variable; scalar_expr(x, dtype) -> expression for a Python
    scalar; type_of(Value) -> the type shown in the comment."""
    p = REGISTRY[node.op]
    out = node.outputs[0].dtype
    ins = node.inputs
    in_dtypes = [None if is_scalar(a) else a.dtype for a in ins]
    attrs = {k: _fmt_attr(v) for k, v in node.attrs.items()}
    comment = (f"# {names[id(node.outputs[0])]}: {type_of(node.outputs[0])} = "
               f"{node.op}(" + ", ".join(
                   [f"{names[id(a)]}: {type_of(a)}" if isinstance(a, Value)
                    else "<scalar>" for a in ins]
                   + [f"{k}={v}" for k, v in attrs.items()]) + ")")
    if node.op == "cast":
        exprs = [names[id(ins[0])]]
        if in_dtypes[0] is dt.float64 and out is dt.float16:
            # c10::Half is built from a float: double -> float -> half rounds twice, as torch
            exprs = [f"{exprs[0]}.to(tl.float32)"]
        expr = p.triton.format(*exprs, **attrs)
        result = out                       # the expression itself converts
        work = out
    elif node.op == "where":
        c = ins[0]
        work = out
        if work in (dt.float16, dt.bfloat16):
            work = dt.float32
        cexpr = (scalar_expr(bool(c), dt.bool_) if is_scalar(c) else
                 names[id(c)] if c.dtype is dt.bool_ else f"({names[id(c)]} != 0)")
        exprs = [cexpr] + [_operand(names, scalar_expr, a, d, work)
                           for a, d in zip(ins[1:], in_dtypes[1:])]
        expr = p.triton.format(*exprs, **attrs)
        result = work
    else:
        if out is dt.bool_ and len(ins) == 2:
            work = _promote_operands(ins)   # comparisons/logic: compare in the promoted dtype
        elif out is dt.bool_:
            work = in_dtypes[0]
        else:
            work = out
        if node.op in _INT_IDENTITY and not (work.is_floating_point or work.is_complex):
            expr = names[id(ins[0])] if not is_scalar(ins[0]) else scalar_expr(ins[0], work)
            return comment, expr
        if work in (dt.float16, dt.bfloat16) and node.op not in _BIT_EXACT:
            if node.op not in SCALAR_OPMATH:     # (a number is rounded to the half dtype first)
                scalar_expr = _half_scalar_expr(scalar_expr, work)
            work = dt.float32                    # opmath: 16-bit floats compute in f32
        elif work is dt.bool_ and node.op in _BOOL_AS_INT8:
            work = dt.int8
        exprs = [_operand(names, scalar_expr, a, d, work) for a, d in zip(ins, in_dtypes)]
        # (a rule that depends on its operands, pow's, is a function of them and the dtype)
        fmt = p.triton(ins, work) if callable(p.triton) else p.triton
        expr = fmt.format(*exprs, **attrs)
        # comparisons/predicates give bool whatever they compare
        result = dt.bool_ if out is dt.bool_ and not (work is dt.int8 and node.op in
                                                      ("add", "mul", "maximum", "minimum",
                                                       "abs", "sign")) else work
    if result is not out:
        expr = f"({expr}) != 0" if out is dt.bool_ else f"({expr}).to({_tl(out)})"
    elif out is not dt.bool_ and ("kiln_" in expr or "tl.where" in expr):
        # Triton types literals in these as int32/fp32; pin the result to the op's dtype
        expr = f"({expr}).to({_tl(out)})"
    return comment, expr


def _helpers_used(exprs):
    order = []

    def need(h):
        if h not in HELPERS:
            raise TritonCodegenError(f"triton codegen: expression calls unknown helper {h}")
        for d in HELPER_DEPS.get(h, ()):
            need(d)
        if h not in order:
            order.append(h)

    for e in exprs:
        for h in re.findall(r"\b(kiln_\w+)\(", e):
            need(h)
    return order


def _promote_operands(ins):
    from ..ir.registry import promote
    return promote(*ins)


def _graph_lines(graph, names, out_shape):
    args = ", ".join(f"{names[id(v)]}: {_sym_type(v, out_shape)}" for v in graph.inputs)
    yield f"def {graph.name}({args}):"
    for n in graph.nodes:
        outs = ", ".join(f"{names[id(o)]}: {_sym_type(o, out_shape)}" for o in n.outputs)
        ins = [names[id(a)] if isinstance(a, Value) else "<scalar>" for a in n.inputs]
        ins += [f"{k}={_fmt_attr(v)}" for k, v in n.attrs.items()]
        yield f"    {outs} = {n.op}({', '.join(ins)})"
    yield "    return " + ", ".join(names[id(o)] for o in graph.outputs)
