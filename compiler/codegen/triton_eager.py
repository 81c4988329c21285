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
a one-node graph (_group_kernel, EagerGroup); so do the gather kind (gather, index) and the
scatter kind (index_put, scatter, slice_scatter, diagonal_scatter) through _indexed_kernel,
which checks index values on the device before launching (EagerIndexed); a builder raises
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


def _one_node_kernel(prim, operands, attrs, interpret):
    """The group kernel triton_group generates for this call's one-node graph (tensor operands
    become graph inputs, scalars stay scalars), partitioned by the fuser as the compiled path
    partitions it; TritonCodegenError when it is not one group or has no generated kernel."""
    from ..fusion import partition
    from .triton_group import generate, ExternKernel
    g = Graph(f"eager_{prim.name}")
    args = [a if is_scalar(a) else g.add_input(f"x{i}", tuple(a.shape), a.dtype)
            for i, a in enumerate(operands)]
    o = g.call(prim.name, *args, **attrs)
    g.set_outputs(list(o) if isinstance(o, tuple) else [o])   # (window_max: two)
    if any(v.dtype.is_complex for v in list(g.inputs) + list(g.outputs)):
        raise TritonCodegenError(f"triton eager: {prim.name}: complex dtypes have no Triton type")
    groups = partition(g).groups
    if len(groups) != 1:
        raise TritonCodegenError(f"triton eager: {prim.name} is not one group")
    from runtime import backends
    gk = generate(groups[0], g, interpret=interpret, allow_tf32=backends.matmul_allow_tf32)
    if isinstance(gk, ExternKernel):
        raise TritonCodegenError(f"triton eager: {prim.name} has no generated kernel")
    return gk


def _cached(key, build):
    """_KERNELS[key], made by build() the first time; a TritonCodegenError (cached too) is
    raised on every call, so the caller takes its named fallback."""
    k = _KERNELS.get(key)
    if k is None:
        try:
            k = build()
        except TritonCodegenError as e:
            k = e
        _KERNELS[key] = k
    if isinstance(k, Exception):
        raise k
    return k


def _cached_group(prim, operands, attrs, interpret):
    """EagerGroup of the one-node group for (attrs, operand shapes and dtypes), cached."""
    _check_interpretable(interpret)
    from runtime import backends
    key = ("group", prim.name, tuple(sorted(attrs.items())), interpret,
           tuple((tuple(a.shape), a.dtype) for a in operands), backends.matmul_allow_tf32)
    return _cached(key, lambda: EagerGroup(_one_node_kernel(prim, operands, attrs, interpret)))


def creation_kernel(prim, attrs, interpret):
    """The kernel of a creation primitive without operands (arange) for one call's attrs, as
    the compiled path generates its lone group."""
    return _cached_group(prim, [], attrs, interpret)


def _group_kernel(prim, operands, attrs, out):
    """The eager kernel of a reduction, a matmul or an extern primitive triton_group generates
    (window_max, plane_scatter): the one-node graph partitioned by the fuser (which sets the
    group's kind, iteration space and reduced dims) and generated as the compiled path
    generates that group; one per (attrs, operand shapes and dtypes), cached."""
    if any(is_scalar(a) for a in operands):
        raise TritonCodegenError(f"triton eager: {prim.name} with a scalar operand")
    from runtime.interpret import HostTensor
    # (runtime.cuda.DeviceArg has an .array too: the type says which device)
    return _cached_group(prim, operands, attrs, isinstance(operands[0], HostTensor))


register("plane_scatter", _group_kernel)
register("cat", _group_kernel)
register("window_max", _group_kernel)
register("reduction", _group_kernel)
register("matmul", _group_kernel)


class EagerIndexed(EagerGroup):
    """An indexing or scatter group kernel for eager calls, plus what a kernel cannot do:
    before launching, each index operand's min and max (device reductions: NumPy on the
    interpret device's host memory, CuPy on 'cuda') are checked against the dim they index,
    and an out-of-range value raises the cpu path's error (compiler/ops/indexing.
    index_range_error) with nothing written; scalar operands (index_put's value, scatter's
    src) are kernel arguments filled per call."""

    def __init__(self, kernel, checks, scalar_params):
        super().__init__(kernel)
        self.checks = checks      # [(input position, op, dim, size, wraps, check, shape)]
        self.scalar_params = scalar_params    # per scalar operand: its Param (None: baked)

    def launch(self, inputs, outputs, interpret, out_shape, scalars):
        from ..ops.indexing import index_range_error
        for k, op, dim, size, wraps, check, shape in self.checks:
            a = inputs[k].array
            if a.size:
                lo, hi = _min_max(a)
                e = index_range_error(op, lo, hi, dim, size, wraps, check, shape)
                if e is not None:
                    raise e
        for p, v in zip(self.scalar_params, scalars):
            if p is not None:
                p.role = ("scalar", v)
        self.kernel.launch(inputs, outputs, interpret)


def _min_max(a):
    """(min, max) of an index buffer as Python ints: one device round trip on 'cuda'."""
    from runtime import cuda
    if cuda.is_device_array(a):
        lo, hi = cuda._cupy().stack((a.min(), a.max())).get()
        return int(lo), int(hi)
    return int(a.min()), int(a.max())


def _index_checks(prim, operands, attrs):
    """[(position among the tensor operands, op, dim, size, wraps, check, indexed shape)] for
    one call's index operands (check: the node's `check` attribute, index_select's [0, size))."""
    name = prim.name
    at, k = {}, 0
    for i, a in enumerate(operands):
        if not is_scalar(a):
            at[i] = k
            k += 1
    x = operands[0]
    if name in ("index", "index_put"):
        first = 1 if name == "index" else 2
        check = attrs.get("check")
        return [(at[i], name, p, x.shape[p], True, check, tuple(x.shape))
                for i, p in zip(range(first, len(operands)), attrs["pos"])]
    if name in ("gather", "scatter") and len(x.shape):
        d = attrs["dim"] % len(x.shape)
        return [(at[1], name, d, x.shape[d], False, None, None)]
    return []


def _indexed_kernel(prim, operands, attrs, out):
    """gather, index (advanced indexing), index_put, scatter, slice_scatter and
    diagonal_scatter: the compiled path's kernel for the one-node group (triton_group:
    indexed loads; a copy then stores or atomics for index_put / scatter; one elementwise
    pass for slice_scatter / diagonal_scatter), cached per (attrs, operand shapes and dtypes,
    scalar types), wrapped in EagerIndexed (index checks, scalars per call)."""
    from runtime.interpret import HostTensor
    tensors = [a for a in operands if not is_scalar(a)]
    interpret = isinstance(tensors[0], HostTensor)
    _check_interpretable(interpret)
    f64 = out.dtype is dt.float64
    sig = tuple((tuple(a.shape), a.dtype) if not is_scalar(a) else
                (_scalar_sig(a), a if f64 and isinstance(a, float) else None)
                for a in operands)
    key = ("indexed", prim.name, tuple(sorted(attrs.items())), interpret, sig)

    def build():
        gk = _one_node_kernel(prim, operands, attrs, interpret)
        scal = [p for p in gk.params if p.role[0] == "scalar"]
        n_scalars = sum(1 for a in operands if is_scalar(a))
        if len(scal) != n_scalars:
            raise TritonCodegenError(f"triton eager: {prim.name}: {len(scal)} scalar "
                                     f"parameters for {n_scalars} scalar operands")
        return EagerIndexed(gk, _index_checks(prim, operands, attrs),
                            [None if p.constexpr else p for p in scal])
    return _cached(key, build)


register("gather", _indexed_kernel)
register("scatter", _indexed_kernel)


class EagerClassIndex:
    """class_index eagerly on a device: the compiled programs' check kernel
    (codegen/triton_checks.py) folds the targets into a four-word flag, which is read back at
    once (32 bytes instead of the targets' round trip through the host); a bad target raises
    the cpu path's IndexError (naming the first bad one), else the result is a device copy of
    the targets."""
    name = "check_range_i64"

    def __init__(self, classes, ignore_index, one_hot=False):
        self.classes, self.ignore_index, self.one_hot = classes, ignore_index, one_hot

    def launch(self, inputs, outputs, interpret, out_shape, scalars):
        import numpy as np
        from runtime import cuda
        from .triton_checks import fresh_flag, kernel, violation
        from ..ops.indexing import class_index_error
        t, o = inputs[0], outputs[0]
        words = np.array(fresh_flag(), np.int64)
        if interpret:
            from runtime.interpret import HostTensor
            src = np.ascontiguousarray(t.array)
            kernel().check(HostTensor(src, dt.int64), HostTensor(words, dt.int64), src.size,
                           0, self.classes, self.ignore_index, True)
            at = src.reshape(-1).__getitem__
        else:
            src = t.array if t.array.flags.c_contiguous else cuda.copy(t.array)
            flag = cuda.from_host_here(words)
            kernel().check(cuda.DeviceArg(src, dt.int64), cuda.DeviceArg(flag, dt.int64),
                           src.size, 0, self.classes, self.ignore_index, False)
            words = cuda._cupy().asnumpy(flag)
            at = lambda pos: src.reshape(-1)[pos].get()      # noqa: E731 (only when bad)
        if self.one_hot:        # (the smallest bad value: a negative one is reported first)
            if int(words[0]):
                raise class_index_error(int(words[2]), self.classes, True)
        else:
            bad = violation(words, self.classes, at)
            if bad is not None:
                raise class_index_error(bad, self.classes)
        o.array[...] = t.array


def _class_index(prim, operands, attrs, out):
    from runtime.interpret import HostTensor, library_interpretable
    if isinstance(operands[0], HostTensor) and not library_interpretable():
        raise TritonCodegenError("class_index: Triton's library cannot run in its interpreter "
                                 "(Triton imported without TRITON_INTERPRET=1): checked on the host")
    return EagerClassIndex(attrs["classes"], attrs["ignore_index"], attrs.get("one_hot", False))


register("class_index", _class_index)
