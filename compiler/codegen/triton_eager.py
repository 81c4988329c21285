"""Eager single-op Triton kernels: what a cuda or interpret tensor runs for one primitive call.

An eager call becomes a one-node graph handed to the kernel generator of its primitive's kind
(pointwise: triton_pointwise.generate). The kernel is made once per *structure* of the call
and cached in memory (its source file is cached on disk by content hash, see cache.py):

    (primitive, attrs, output rank and which output dims are 1, 64-bit indexing,
     per tensor operand: dtype, rank, which dims are 1, flat-contiguous or strided,
     per scalar operand: its Triton type, and its value where the kernel bakes it in)

Sizes, strides and scalar values are launch arguments, so `x + y` on a (4, 8) batch and on a
(9, 8) batch launch the same compiled kernel.

BUILDERS maps a primitive kind (or a primitive name, which wins) to a function
    builder(prim, operands, attrs, out) -> kernel with .name and
        .launch(inputs, outputs, interpret, out_shape, scalars)
where operands are buffers (.array, .shape, .dtype, .stride() in elements: HostTensor on the
interpret device, runtime.cuda.DeviceArg on cuda) or Python scalars, `out` the meta rule's
AVal, inputs the tensor operands' buffers, scalars the scalar operands, in order. Reductions
and matmul, window_max and plane_scatter (max pooling) run the compiled path's group kernel for
a one-node graph (_group_kernel, EagerGroup); a builder raises
TritonCodegenError for a case it does not cover, and the caller then takes its named host
fallback.
"""
from runtime import dtypes as dt
from ..ir.graph import Graph
from ..ir.registry import is_scalar
from .triton_pointwise import TritonCodegenError, contiguous_strides, generate

BUILDERS = {}
_KERNELS = {}          # structure key -> EagerPointwise, or the TritonCodegenError it raised


def register(kind_or_name, builder):
    """Plug an eager kernel builder in for a primitive kind ('reduction') or name ('matmul')."""
    BUILDERS[kind_or_name] = builder


def builder_for(prim):
    return BUILDERS.get(prim.name) or BUILDERS.get(prim.kind)


def _scalar_sig(x):
    if isinstance(x, bool):
        return "i1"
    if isinstance(x, int):
        return "i32" if -2**31 <= x < 2**31 else "i64"
    if isinstance(x, float):
        return "fp32"
    raise TritonCodegenError(f"triton eager: scalar {x!r} of type {type(x).__name__}")


def _flat(shape, strides, out_shape):
    if tuple(shape) != out_shape:
        return False
    c = contiguous_strides(shape)
    return all(st == cs for s, st, cs in zip(shape, strides, c) if s != 1)


def _extent_big(shape, strides):
    return sum((s - 1) * abs(st) for s, st in zip(shape, strides) if s > 1) >= 2**31


def structure_key(prim, operands, attrs, out):
    out_shape = tuple(out.shape)
    numel = 1
    for s in out_shape:
        numel *= s
    f64 = out.dtype is dt.float64
    parts = []
    idx64 = numel >= 2**31
    for a in operands:
        if is_scalar(a):
            parts.append(_scalar_sig(a))
        else:
            st = a.stride()
            f64 = f64 or a.dtype is dt.float64
            idx64 = idx64 or _extent_big(a.shape, st)
            parts.append((a.dtype, len(a.shape), tuple(s == 1 for s in a.shape),
                          _flat(a.shape, st, out_shape)))
    if f64:     # float scalars of a float64 computation are constexprs: their value is source
        parts = [(p, a) if isinstance(a, float) else p for p, a in zip(parts, operands)]
    return (prim.name, tuple(sorted(attrs.items())), len(out_shape),
            tuple(s == 1 for s in out_shape), idx64, tuple(parts))


class EagerPointwise:
    """A generated pointwise kernel and how to fill its parameters from any call with the
    structure it was made for."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.name = kernel.name

    def launch(self, inputs, outputs, interpret, out_shape, scalars):
        """inputs: buffers of the tensor operands in order; scalars: the scalar operands in
        order; outputs: contiguous buffers of out_shape."""
        numel = 1
        for s in out_shape:
            numel *= s
        if numel == 0:
            return
        vals = []
        si = 0
        for p in self.kernel.params:
            r = p.role
            k = r[0]
            if k == "in":
                vals.append(inputs[r[1]])
            elif k == "out":
                vals.append(outputs[r[1]])
            elif k == "numel":
                vals.append(numel)
            elif k == "size":
                vals.append(out_shape[r[1]])
            elif k == "stride":
                vals.append(int(inputs[r[1]].stride()[r[2]]))
            else:
                v = scalars[si]
                si += 1
                vals.append(r[1] if p.constexpr else bool(v) if p.sig == "i1" else
                            float(v) if p.sig == "fp32" else int(v))
        fn = self.kernel.function(interpret)
        if interpret:
            block = 16
            while block < numel and block < 1 << 16:
                block *= 2
            fn[((numel + block - 1) // block,)](*vals, BLOCK=block)
        else:
            block = 1024 if numel >= 1024 else max(16, 1 << (numel - 1).bit_length())
            self.kernel.relauncher.launch(fn, ((numel + block - 1) // block,), vals,
                                          {"BLOCK": block}, {"num_warps": 4})


_EXACT = {}            # exact call signature -> kernel: skips computing the structure key


def pointwise(prim, operands, attrs, out):
    """The cached eager kernel for one pointwise call (raises TritonCodegenError when the
    primitive or a dtype has no Triton lowering; that answer is cached too)."""
    # Eager loops repeat the same shapes: an exact-signature lookup (shapes, byte strides,
    # dtypes, scalar types and values) is cheaper than deriving the structure key each call.
    exact = [prim.name, tuple(attrs.items()) if attrs else (), out.shape]
    for a in operands:
        if is_scalar(a):
            exact.append((type(a), a))
        else:
            arr = a.array
            exact.append((arr.shape, arr.strides, a.dtype))
    exact = tuple(exact)
    try:
        k = _EXACT.get(exact)
    except TypeError:          # an unhashable attribute: take the structural path
        k = exact = None
    if k is None:
        k = _structural(prim, operands, attrs, out)
        if exact is not None:
            if len(_EXACT) > 50000:
                _EXACT.clear()
            _EXACT[exact] = k
    if isinstance(k, Exception):
        raise k
    return k


def _structural(prim, operands, attrs, out):
    key = structure_key(prim, operands, attrs, out)
    k = _KERNELS.get(key)
    if k is None:
        try:
            g = Graph(f"eager_{prim.name}")
            args, strides = [], []
            for i, a in enumerate(operands):
                if is_scalar(a):
                    args.append(a)
                else:
                    args.append(g.add_input(f"x{i}", tuple(a.shape), a.dtype))
                    strides.append(tuple(a.stride()))
            g.set_outputs([g.call(prim.name, *args, **attrs)])
            k = EagerPointwise(generate(g, strides=strides))
        except TritonCodegenError as e:
            k = e
        _KERNELS[key] = k
    return k


def cached_kernels():
    """{structure key: kernel name} of every eager kernel made in this process."""
    return {k: v.name for k, v in _KERNELS.items() if not isinstance(v, Exception)}


register("pointwise", pointwise)


class EagerGroup:
    """A group kernel of triton_group (made for a one-node group) with the eager launch
    interface; its sizes are fixed at generation, strides are read from the buffers."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.name = kernel.name

    def launch(self, inputs, outputs, interpret, out_shape, scalars):
        self.kernel.launch(inputs, outputs, interpret)


def _check_interpretable(interpret):
    """Group kernels call Triton's library (tl.sum, tl.max, tl.cdiv), which its interpreter
    runs only when Triton was imported with TRITON_INTERPRET=1: else the named fallback."""
    if interpret:
        from runtime.interpret import library_interpretable
        if not library_interpretable():
            raise TritonCodegenError("Triton was imported without TRITON_INTERPRET=1, so its "
                                     "library functions (tl.sum, tl.max, tl.cdiv) cannot run "
                                     "in the interpreter (KILN_DEVICE=interpret sets it when "
                                     "Kiln is imported first)")


def _group_kernel(prim, operands, attrs, out):
    """The eager kernel of a reduction, a matmul or an extern primitive triton_group generates
    (window_max, plane_scatter): the one-node graph partitioned by the fuser (which sets the
    group's kind, iteration space and reduced dims) and generated as the compiled path
    generates that group; one per (attrs, operand shapes and dtypes), cached."""
    from ..fusion import partition
    from .triton_group import generate, ExternKernel
    if any(is_scalar(a) for a in operands):
        raise TritonCodegenError(f"triton eager: {prim.name} with a scalar operand")
    from runtime.interpret import HostTensor
    # (runtime.cuda.DeviceArg has an .array too: the type says which device)
    interpret = isinstance(operands[0], HostTensor)
    _check_interpretable(interpret)
    key = ("group", prim.name, tuple(sorted(attrs.items())), interpret,
           tuple((tuple(a.shape), a.dtype) for a in operands))
    k = _KERNELS.get(key)
    if k is None:
        try:
            g = Graph(f"eager_{prim.name}")
            ins = [g.add_input(f"x{i}", tuple(a.shape), a.dtype) for i, a in enumerate(operands)]
            o = g.call(prim.name, *ins, **attrs)
            g.set_outputs(list(o) if isinstance(o, tuple) else [o])   # (window_max: two)
            groups = partition(g).groups
            if len(groups) != 1:
                raise TritonCodegenError(f"triton eager: {prim.name} is not one group")
            gk = generate(groups[0], g, interpret=interpret)
            if isinstance(gk, ExternKernel):
                raise TritonCodegenError(f"triton eager: {prim.name} has no generated kernel")
            k = EagerGroup(gk)
        except TritonCodegenError as e:
            k = e
        _KERNELS[key] = k
    if isinstance(k, Exception):
        raise k
    return k


register("plane_scatter", _group_kernel)
register("cat", _group_kernel)
register("window_max", _group_kernel)
register("reduction", _group_kernel)
register("matmul", _group_kernel)


def _host_checked(prim, operands, attrs, out):
    """class_index checks its values, which a kernel cannot report: eagerly it takes the host
    fallback, so a bad target raises IndexError on a device too (in compiled programs it is
    the identity, fused)."""
    raise TritonCodegenError(f"{prim.name} checks values on the host")


register("class_index", _host_checked)

