"""Triton code generation for fused groups (compiler/ir/group.py): one kernel per group.

    k = generate(group, graph)            # -> GroupKernel (source text + launcher)
    k.launch(inputs, outputs, interpret)  # buffers in group.inputs / group.outputs order

Kinds
  pointwise  triton_pointwise.generate over the group's nodes (flat index space).
  reduction  a 2-D tile of rows x columns: the columns are the reduced dims, the rows every
             other dim (a reduction over non-last dims is the same kernel with a permuted
             index map: addresses are coordinate * stride per dim, so any dims can be columns).
             Prologue -> reductions (sum, amax, amin, argmax, argmin, gather along the reduced
             dim) -> epilogue, one line per IR node. Persistent when a row fits one block
             (everything stays in registers); otherwise each reduction is a loop over column
             blocks that recomputes its pointwise prologue from memory, and a last loop
             computes and stores the full-width outputs. Variance comes as the graph writes it
             (mean, then the sum of squared deviations: two-pass); Kiln has no var primitive.
  matmul     tiled tl.dot template (grouped tile order, fp32 accumulation, K loop with masks),
             batched over broadcast batch dims, the group's pointwise epilogue applied to the
             accumulator tile; configurations autotuned on the GPU (one fixed small tile under
             the interpreter, where timing means nothing).
  extern     gather and index (advanced indexing by any number of broadcast index tensors,
             negative indices wrapping) as indexed-load kernels; index_put and scatter as two
             launches (a copy of x into the output, then one lane per written element:
             tl.store, or tl.atomic_add / atomic_max / atomic_min for accumulate and reduce;
             multiply/prod has no atomic and keeps the NumPy lowering); slice_scatter and
             diagonal_scatter as one elementwise kernel choosing x or src per element (out-of-
             range index values are skipped, not checked: eager calls check them first);
             window_max (max pooling: values and PyTorch's indices) as one lane per output
             element looping over its window; plane_scatter (max pooling's backward) as one
             program per plane that zeroes it and adds each gradient at its index (a store
             for disjoint windows, tl.atomic_add otherwise); anything else is an
             ExternKernel naming its library fallback.
  view       a strided copy (the view folded into the load's strides).

Views: permute, expand, slice, flip and reshape applied to group inputs are folded into each
input's (shape, strides, offset) at launch, so they cost no kernel; reshape/expand/permute
of intermediate values inside reduction and matmul groups become index-map changes.
Random numbers: the IR has no random primitive (dropout masks are made eagerly), so no
kernel uses tl.rand yet.
"""
import keyword
import logging
import re
import types

import numpy as np

from runtime import dtypes as dt
from ..ir.graph import Graph, Value
from ..ir.registry import REGISTRY, norm_dims
from . import triton_pointwise as tp
from .triton_pointwise import (Param, PointwiseKernel, TritonCodegenError, op_expr,
                               scalar_emitter, _helpers_used, _tl, SIG, _SHORT, HELPERS)

log = logging.getLogger("kiln.compile")

VIEW_OPS = ("reshape", "permute", "expand", "slice", "flip")
_REDUCTIONS = ("sum", "amax", "amin", "argmax", "argmin")


def _pow2(n):
    b = 1
    while b < n:
        b *= 2
    return b


def _prod(xs):
    n = 1
    for x in xs:
        n *= x
    return n


def dot_kwargs(dtype, allow_tf32):
    """tl.dot keyword text. Version differences stay here: Triton 3.6..3.9 all take
    input_precision ("ieee" exact fp32, "tf32" tensor cores); 16-bit inputs need none."""
    if dtype is dt.float32:
        return ', input_precision="tf32"' if allow_tf32 else ', input_precision="ieee"'
    return ""


# ---------------------------------------------------------------- views on group inputs

def _fold_views(group):
    """(effective inputs, remaining nodes). An effective input is (value, k, chain): the value
    the kernel reads, made from group.inputs[k] by the view nodes in `chain` (empty when it is
    the input itself). The launcher applies the chain to the buffer's strides."""
    src = {id(v): (v, k, []) for k, v in enumerate(group.inputs)}
    folded = set()
    for n in group.nodes:
        if n.op in VIEW_OPS and isinstance(n.inputs[0], Value) and id(n.inputs[0]) in src:
            _, k, chain = src[id(n.inputs[0])]
            src[id(n.outputs[0])] = (n.outputs[0], k, chain + [n])
            folded.add(id(n))
    rest = [n for n in group.nodes if id(n) not in folded]
    used = {id(a) for n in rest for a in n.inputs if isinstance(a, Value)}
    used |= {id(o) for o in group.outputs}
    eff = []
    for key, (v, k, chain) in src.items():
        if key in used and not (chain and id(v) in {id(o) for o in group.outputs}
                                and group.kind != "view"):
            eff.append((v, k, chain))
    for o in group.outputs:
        if any(o is v for v, _, ch in src.values() if ch) and group.kind != "view":
            raise TritonCodegenError(f"triton codegen: {group.name}: output {o.name} is a view of "
                                     "an input (the fuser should make it a view group)")
    return eff, rest


def _view_strides(node, shape, strides, offset):
    """Apply one view node to (shape, element strides, element offset) of a buffer."""
    a = node.attrs
    out = node.outputs[0].shape
    if node.op == "permute":
        return out, tuple(strides[d] for d in a["dims"]), offset
    if node.op == "expand":
        r, R = len(shape), len(out)
        st = [0] * (R - r) + [0 if shape[j] == 1 and out[R - r + j] != 1 else strides[j]
                              for j in range(r)]
        return out, tuple(st), offset
    if node.op == "slice":
        d = a["dim"]
        st = list(strides)
        offset += a["start"] * st[d]
        st[d] *= a["step"]
        return out, tuple(st), offset
    if node.op == "flip":
        st = list(strides)
        for d in a["dims"]:
            offset += (shape[d] - 1) * st[d]
            st[d] = -st[d]
        return out, tuple(st), offset
    # reshape: strides of a view exist when every output dim lies inside a run of input dims
    # that are contiguous with each other (torch's computeStride)
    live = [(s, t) for s, t in zip(shape, strides) if s != 1]
    st, i = [], 0
    chunk_size, chunk_stride = 1, None
    res = []
    for s in out:
        if s == 1:
            res.append(0)
            continue
        while chunk_size < s or (chunk_size % s):
            if i >= len(live):
                raise TritonCodegenError(f"reshape {list(shape)} -> {list(out)} with strides "
                                         f"{list(strides)} is not a view (needs a copy)")
            ls, lt = live[i]
            if chunk_stride is not None and chunk_size > 1 and chunk_stride != ls * lt:
                raise TritonCodegenError(f"reshape {list(shape)} -> {list(out)} with strides "
                                         f"{list(strides)} is not a view (needs a copy)")
            chunk_size *= ls
            chunk_stride = lt
            i += 1
        chunk_size //= s
        res.append(chunk_stride * chunk_size)
    del st
    return out, tuple(res), offset


class _Typical:
    """A contiguous buffer of a value's shape at a 256-byte-aligned address (as CuPy's pool
    gives), for ahead-of-time specialisation."""
    __slots__ = ("shape", "dtype", "_st")

    def __init__(self, v, swap=False):
        """swap: the last two dims column-major (a K-major matmul operand B)."""
        self.shape, self.dtype = tuple(v.shape), v.dtype
        shape = self.shape[:-2] + self.shape[:-3:-1] if swap else self.shape
        st, acc = [], 1
        for n in reversed(shape):
            st.append(acc)
            acc *= max(n, 1)
        st = tuple(reversed(st))
        self._st = st[:-2] + st[:-3:-1] if swap else st

    def data_ptr(self):
        return 1 << 20

    def stride(self, dim=None):
        return self._st if dim is None else self._st[dim]


class StridedView:
    """A device buffer seen through a view: what Triton's JIT reads (data_ptr, dtype) plus the
    shape and element strides the launcher reads."""
    __slots__ = ("base", "shape", "_strides", "offset", "dtype", "_boff")

    def __init__(self, base, shape, strides, offset):
        self.base, self.shape, self._strides, self.offset = base, tuple(shape), tuple(strides), offset
        self.dtype = base.dtype
        self._boff = offset * self.dtype.itemsize if offset else 0

    def data_ptr(self):
        return self.base.data_ptr() + self._boff

    def stride(self, dim=None):
        return self._strides if dim is None else self._strides[dim]


def view_buffer(buf, chain):
    """`buf` seen through the view nodes of `chain`. A reshape that is no view of the strides
    the buffer arrived with (a transposed buffer flattened) reads a contiguous copy of the
    view so far, as torch.reshape copies."""
    if not chain:
        return buf
    shape, strides, offset = tuple(buf.shape), tuple(buf.stride()), 0
    for n in chain:
        try:
            shape, strides, offset = _view_strides(n, shape, strides, offset)
        except TritonCodegenError:
            if n.op != "reshape":
                raise
            if isinstance(buf, _Typical):     # ahead-of-time: the copy is contiguous
                buf = _Typical(types.SimpleNamespace(shape=shape, dtype=buf.dtype))
            else:
                buf = _copy_contiguous(_strided(buf, shape, strides, offset))
            shape, strides, offset = _view_strides(n, tuple(buf.shape), tuple(buf.stride()), 0)
    return _strided(buf, shape, strides, offset)


def _strided(buf, shape, strides, offset):
    from runtime.interpret import HostTensor
    if isinstance(buf, HostTensor):     # the interpreter needs a real array (a cuda DeviceArg
        #                                 has an .array too: it folds into a StridedView)
        a = buf.array
        item = a.itemsize
        root = buf._root()
        start = buf.storage_offset() + offset
        if any(s == 0 for s in shape):
            return HostTensor(np.empty(shape, a.dtype), buf.dtype)
        v = np.ndarray(shape, a.dtype, buffer=root, offset=start * item,
                       strides=tuple(s * item for s in strides))
        return HostTensor(v, buf.dtype)
    return StridedView(buf, shape, strides, offset)


def _copy_contiguous(view):
    """A fresh C-contiguous buffer holding a strided view's elements."""
    from runtime.interpret import HostTensor
    if isinstance(view, HostTensor):
        return HostTensor(np.array(view.array, order="C"), view.dtype)
    from runtime import cuda
    from ..triton_backend import _DevBuf
    cp = cuda._cupy()
    item = np.dtype(view.dtype.np).itemsize
    # the view's extent around its first element (strides may be negative: flips)
    lo = sum((n - 1) * st for n, st in zip(view.shape, view.stride()) if st < 0)
    hi = sum((n - 1) * st for n, st in zip(view.shape, view.stride()) if st > 0)
    mem = cp.cuda.UnownedMemory(view.data_ptr() + lo * item, (hi - lo + 1) * item, view)
    src = cp.ndarray(view.shape, view.dtype.np, memptr=cp.cuda.MemoryPointer(mem, -lo * item),
                     strides=tuple(st * item for st in view.stride()))
    return _DevBuf(cp.ascontiguousarray(src), view.dtype)


# ---------------------------------------------------------------- kernels

class GroupKernel(PointwiseKernel):
    """A generated group kernel: source, parameters and how to launch it.

    params roles: ("in", e) / ("out", k) pointers; ("value", n) an int fixed at generation
    (sizes: an argument, not a constant, so one source serves every size); ("stride", "in"|
    "out", i, d) element stride d of that buffer; ("scalar", x) a Python scalar."""

    def __init__(self, name, source, params, kind, eff, grid, consts, num_warps, group,
                 inner=None, configs=None):
        self.name, self.source, self.params, self.kind = name, source, params, kind
        self.eff, self.grid, self.consts, self.num_warps = eff, grid, consts, num_warps
        self.group, self.inner, self.configs = group, inner, configs
        self.digest = tp.cache.digest(source)
        self._path = None
        self.tuning = None
        self._best = None      # (meta, options) of the tuned config (configs given)

    def __repr__(self):
        return f"<GroupKernel {self.name} [{self.kind}] {self.digest}>"

    def args(self, inputs, outputs):
        vals = []
        for p in self.params:
            r = p.role
            if r[0] == "in":
                vals.append(inputs[r[1]])
            elif r[0] == "out":
                vals.append(outputs[r[1]])
            elif r[0] == "stride":
                buf = inputs[r[2]] if r[1] == "in" else outputs[r[2]]
                vals.append(int(buf.stride()[r[3]]))
            else:
                vals.append(r[1])
        return vals

    def signature(self, block=None):
        if self.inner is not None:
            return self.inner.signature(block or 1024)
        sig = {p.name: ("constexpr" if p.constexpr else p.sig) for p in self.params}
        consts = {p.name: p.role[1] for p in self.params if p.constexpr}
        meta = dict(self.consts)
        if self.configs:                      # AOT: the first (largest) tuning config
            meta.update(self.configs[0][0])
        for k, v in meta.items():
            sig[k] = "constexpr"
            consts[k] = v
        return sig, consts

    def aot_options(self):
        """num_warps / num_stages for ahead-of-time compilation (the first tuning config)."""
        if self.inner is not None:
            return {"num_warps": 4}
        return dict(self.configs[0][1]) if self.configs else {"num_warps": self.num_warps}

    def _grid(self, meta):
        return self.grid(meta)

    def _tune(self, fn, eff, outputs):
        """The fastest of self.configs on this launch's inputs, timed with CUDA events (no
        PyTorch needed). The sweep writes scratch outputs, so an output that is an input's
        memory (an in-place parameter update) is written once, by the real launch. A config
        that cannot run here (too much shared memory) is skipped."""
        from runtime import cuda
        args = self.args(eff, [cuda.scratch_like(o) for o in outputs])
        timed, errors = [], []
        for meta, opts in self.configs:
            grid = self.grid(meta)
            try:
                ms = cuda.time_ms(lambda: fn[grid](*args, **meta, **opts))
            except Exception as e:
                errors.append(f"{meta} {opts}: {type(e).__name__}: {e}"[:300])
                continue
            timed.append((ms, meta, opts))
        if not timed:
            raise TritonCodegenError(f"{self.name}: no tuning config runs here:\n" +
                                     "\n".join(errors))
        ms, meta, opts = min(timed, key=lambda t: t[0])
        self.tuning = [(m, o, t) for t, m, o in timed]       # (meta, options, ms): for dumps
        return dict(meta), dict(opts)

    def typical_args(self):
        """{parameter name: value} of a launch on contiguous, 16-byte-aligned buffers of the
        group's shapes (what a compiled program passes), pointers as their alignment: the
        specialisation ahead-of-time compilation copies, so its PTX is the GPU's."""
        if self.inner is not None:
            return {}
        ins = [_Typical(v) for v in self.group.inputs]
        eff = [view_buffer(ins[k], chain) for _, k, chain in self.eff]
        for k, kdim in zip(self.k_major or (), (-1, -2)):     # as _stage_k_major lays it out
            x = eff[k]
            if x.shape[kdim] > 1 and x.stride()[kdim] != 1:
                t = _Typical(x, swap=kdim == -2)
                eff[k] = t
        vals = self.args(eff, [_Typical(o) for o in self.group.outputs])
        return {p.name: (v.data_ptr() % 16 == 0 if hasattr(v, "data_ptr") else v)
                for p, v in zip(self.params, vals)}

    def launch_config(self):
        """(meta, options) the GPU launches with: the tuned config once tuned, else the
        generated tile."""
        return self._best or (dict(self.consts), {"num_warps": self.num_warps})

    k_major = None      # tf32 matmul: (A's, B's) input index; see _stage_k_major
    before = ()         # kernels launched first on the same buffers (a scatter's copy of x)
    variants = ()       # large row kernels: other forms of the group (_row_variants)
    _chosen = None      # the fastest of self and its variants, once timed on the GPU
    choice = None       # [(kernel name, ms)] of that timing

    def _choose(self, inputs, outputs):
        """The fastest of this kernel and its variants (each tuned first) on these inputs,
        timed with CUDA events on scratch outputs; kept from then on."""
        from runtime import cuda
        scratch = [cuda.scratch_like(o) for o in outputs]
        self._chosen = self          # (launching self below runs this kernel itself)
        timed = []
        for k in (self,) + tuple(self.variants):
            try:
                k.launch(inputs, scratch, False)
                timed.append((cuda.time_ms(lambda k=k: k.launch(inputs, scratch, False)), k))
            except Exception as e:     # a variant that cannot run here is not a candidate
                timed.append((float("inf"), k))
                log.info("%s: variant %s not used: %s: %s", self.name, k.name,
                         type(e).__name__, e)
        # forms within CHOICE_TIE of the fastest are timed again, in turn, CHOICE_ROUNDS times:
        # layer_norm's forms at the roofline differ by 1-3%, about what the clock drifts
        # between the first timings, so one pass picked by the order the forms ran in
        fastest = min(ms for ms, _ in timed)
        close = [k for ms, k in timed if ms < float("inf") and ms <= fastest * CHOICE_TIE]
        if len(close) > 1:
            runs = {id(k): [ms] for ms, k in timed if k in close}
            for _ in range(CHOICE_ROUNDS):
                for k in close:
                    runs[id(k)].append(cuda.time_ms(lambda k=k: k.launch(inputs, scratch, False)))
            timed = [(sorted(runs[id(k)])[len(runs[id(k)]) // 2] if id(k) in runs else ms, k)
                     for ms, k in timed]
        self.choice = [(k.name, ms) for ms, k in timed]
        ms, best = min(timed, key=lambda t: t[0])
        self._chosen = best if ms < float("inf") else self
        return self._chosen

    def _stage_k_major(self, eff):
        """tf32 wgmma reads K-major tiles only: A with stride 1 along K (dim -1), B with stride
        1 along K (dim -2). An operand laid out the other way is copied once into the K-major
        layout (a transpose costs ~2 bytes moved per element; the 4-byte scattered shared-memory
        copies it replaces cost the kernel most of its speed)."""
        from runtime import cuda
        from . import triton_copy
        eff = list(eff)
        for k, kdim in zip(self.k_major, (-1, -2)):
            x = eff[k]
            shape, st = tuple(x.shape), tuple(x.stride())
            if shape[kdim] > 1 and st[kdim] != 1:
                if kdim == -2:   # B: the last two dims column-major (K contiguous)
                    base = cuda.empty_here(shape[:-2] + (shape[-1], shape[-2]), x.dtype.np)
                    dst = cuda.DeviceArg(base.swapaxes(-1, -2), x.dtype)
                else:            # A: row-major (K contiguous)
                    dst = cuda.DeviceArg(cuda.empty_here(shape, x.dtype.np), x.dtype)
                try:             # a tiled copy: coalesced on both sides
                    eff[k] = triton_copy.copy(x, dst)
                except ValueError:   # batch strides one index cannot describe (broadcast)
                    eff[k] = cuda.k_major(x) if kdim == -2 else cuda.contiguous_arg(x)
        return eff

    def launch(self, inputs, outputs, interpret):
        if self.variants and not interpret:
            k = self._chosen or self._choose(inputs, outputs)
            if k is not self:
                return k.launch(inputs, outputs, interpret)
        for k in self.before:
            k.launch(inputs, outputs, interpret)
        eff = [view_buffer(inputs[k], chain) for _, k, chain in self.eff]
        if self.inner is not None:
            # the pointwise source indexes contiguous inputs by the flat offset: the buffers
            # must be contiguous exactly where the generation-time strides said so
            for e, (v, _, _), hint in zip(eff, self.eff, self.hints):
                if _contiguous(v.shape, e.stride()) != _contiguous(v.shape, hint):
                    raise TritonCodegenError(f"{self.name}: input {v.name} has strides "
                                             f"{list(e.stride())}; the kernel was generated for "
                                             f"{list(hint)} (regenerate with strides=)")
            return self.inner.launch(eff, outputs, interpret)
        if any(_prod(o.shape) == 0 for o in outputs):
            return outputs
        fn = self.function(interpret)
        if self.k_major is not None and not interpret:
            eff = self._stage_k_major(eff)
        args = self.args(eff, outputs)
        if self.configs and not interpret:
            best = self._best
            if best is None:            # one size per kernel: tuned once, then fixed
                best = self._best = self._tune(fn, eff, outputs)
            self.relauncher.launch(fn, self.grid(best[0]), args, best[0], best[1])
            return outputs
        meta = dict(self.consts)
        if self.configs and self.kind == "matmul":    # interpreter: the smallest tile
            meta.update(self.configs[-1][0])
        grid = self.grid(meta)
        if 0 in grid:              # nothing to do (a scatter of an empty index)
            return outputs
        if interpret:
            fn[grid](*args, **meta)
        else:
            self.relauncher.launch(fn, grid, args, meta, {"num_warps": self.num_warps})
        return outputs


def _contiguous(shape, strides):
    c = tp.contiguous_strides(shape)
    return all(s == 1 or a == b for s, a, b in zip(shape, strides, c))


def generate(group, graph=None, strides=None, allow_tf32=False, max_block=None,
             interpret=False):
    """Kernel for one fused group. strides: element strides per group input for pointwise
    groups (default contiguous; other kinds always index by stride arguments). max_block caps
    the reduction column block (tests force the looped form with it); interpret picks block
    sizes for Triton's interpreter (bigger tiles: it runs one program at a time)."""
    kind = group.kind
    if kind == "pointwise" and [n.op for n in group.nodes if n.op not in VIEW_OPS] == ["arange"]:
        return _arange(group, interpret)
    if kind == "pointwise" or kind == "view":
        if kind == "pointwise" and any(n.op in VIEW_OPS for n in _fold_views(group)[1]):
            return _reduction(group, max_block, interpret)   # views of intermediates: row tiles
        return _pointwise(group, strides)
    if kind == "reduction":
        if [n.op for n in group.nodes if n.op not in VIEW_OPS] == ["gather"]:
            # a lone gather of one index per row (the fuser's row reduction, there to fuse
            # with the rows around it): with nothing to fuse, the indexed load
            return _gather(group, interpret)
        k = _reduction(group, max_block, interpret)
        if not interpret and max_block is None and k.configs:
            k.variants = _row_variants(group, k)
        return k
    if kind == "matmul":
        return _matmul(group, allow_tf32)
    if kind == "extern":
        ops = [n.op for n in group.nodes if n.op not in VIEW_OPS]
        if len(ops) == 1 and ops[0] in _INDEXED:
            return _INDEXED[ops[0]](group, interpret)
        if len(ops) == 1 and ops[0] == "window_max":
            return _window_max(group, interpret)
        if len(ops) == 1 and ops[0] == "plane_scatter":
            return _plane_scatter(group, interpret)
        if len(ops) == 1 and ops[0] == "cat":
            return _cat(group)
        if len(ops) == 1 and ops[0] == "philox":
            return _philox(group, interpret)
        return ExternKernel(group)
    raise TritonCodegenError(f"triton codegen: unknown group kind {kind!r}")


class ExternKernel:
    """A group with no generated kernel. Library ops (Prim.xp: sorting, scans, linear algebra)
    run through CuPy on a GPU's own arrays (NumPy on the interpret device); any other group
    runs its NumPy lowering on the host (a device buffer is copied there and back).
    `fallback` says which, per op."""

    def __init__(self, group):
        self.group, self.name, self.kind = group, group.name, "extern"
        lib = all(n.prim.xp is not None for n in group.nodes)
        self.fallback = ", ".join(
            (f"{n.op}: {_LIBRARY.get(n.op, 'cupy.' + n.op)} on the GPU (NumPy on the interpret "
             "device)" if lib else f"{n.op}: the NumPy lowering via host copy")
            for n in group.nodes)
        self.source = f"# {self.name}: extern group, no generated kernel ({self.fallback})\n"

    def launch(self, inputs, outputs, interpret):
        raise TritonCodegenError(f"{self.name}: extern group ({self.fallback}); the runtime "
                                 "calls the library, not a generated kernel")


# the CuPy routine behind each library op's lowering (Prim.xp), as the dump names it
_LIBRARY = {"argsort": "cupy.argsort", "inv": "cupy.linalg.inv", "det": "cupy.linalg.det",
            "solve": "cupy.linalg.solve", "cholesky": "cupy.linalg.cholesky",
            "qr": "cupy.linalg.qr", "eigh": "cupy.linalg.eigh", "svd": "cupy.linalg.svd", "einsum": "cupy.einsum",
            "cumsum": "cupy.cumsum", "cumprod": "cupy.cumprod",
            "solve_triangular": "blocked substitution with cupy.matmul",
            "fft_c2c": "cupy.fft.fftn / ifftn", "fft_r2c": "cupy.fft.rfftn",
            "fft_c2r": "cupy.fft.irfftn",
            "cum_extreme_index": "running comparison with cupy.where",
            "logcumsumexp": "running cupy.logaddexp", "lu_factor": "batched getrf in CuPy",
            "lu_pivots_to_perm": "row swaps in CuPy",
            "matrix_exp": "Pade 13 scaling and squaring with cupy.matmul / cupy.linalg.solve",
            "pinv": "cupy.linalg.svd",
            "eig_phase_check": "cupy.imag of the diagonal, checked on the host",
            "geqrf": "cupy.linalg.qr(mode='raw')",
            "ldl_factor": "Bunch-Kaufman sytrf on the host (NumPy)",
            "ldl_solve": "sytrs on the host (NumPy)",
            "grad_link": "ndarray.copy (the engine's create_graph connection)"}


# ---------------------------------------------------------------- pointwise and view groups

def _pointwise(group, strides):
    eff, rest = _fold_views(group)
    g = Graph(group.name)
    g.inputs = [v for v, _, _ in eff]
    g.nodes = rest
    g.outputs = list(group.outputs)
    if strides is None:
        strides = [tp.contiguous_strides(v.shape) for v in group.inputs]
    eff_strides = []
    for v, k, chain in eff:
        shape, st, off = tuple(group.inputs[k].shape), tuple(strides[k]), 0
        for n in chain:
            try:
                shape, st, off = _view_strides(n, shape, st, off)
            except TritonCodegenError:
                if n.op != "reshape":
                    raise
                # no view of these strides (a transpose flattened): the launcher reads a
                # contiguous device copy of the view so far (view_buffer), as torch.reshape
                # copies, and the kernel indexes that copy
                shape, st, off = _view_strides(n, shape, tp.contiguous_strides(shape), 0)
        eff_strides.append(st)
    if group.kind == "view" or not rest:
        # materialise: one copy node reading the viewed input
        if len(group.outputs) != 1:
            raise TritonCodegenError(f"{group.name}: a view group has one output")
        o = group.outputs[0]
        src = next((v for v, _, _ in eff if v is o), None)
        if src is None:
            raise TritonCodegenError(f"{group.name}: view group output is not a view of an input")
        g2 = Graph(group.name)
        x = g2.add_input(o.name, o.shape, o.dtype)
        g2.set_outputs([g2.call("copy", x)])
        g = g2
        k0 = next(i for i, (v, _, _) in enumerate(eff) if v is o)
        eff, eff_strides = [(x, eff[k0][1], eff[k0][2])], [eff_strides[k0]]
    inner = tp.generate(g, strides=eff_strides, index=group.id)
    k = GroupKernel(inner.name, inner.source, inner.params, group.kind, eff, None, {}, 4, group,
                    inner=inner)
    k.hints = eff_strides
    return k


# ---------------------------------------------------------------- shared emission helpers

class _Names:
    def __init__(self, reserved):
        self.used = set(reserved)
        self.of = {}

    def add(self, v, fallback):
        n = v.name
        if (not n.isidentifier() or keyword.iskeyword(n) or n in self.used
                or re.fullmatch(r"(i|s|c|r|acc|out|size|best)\d*|.*_(ptr|stride\d+)", n)):
            n = fallback
        while n in self.used:
            n += "_"
        self.used.add(n)
        self.of[id(v)] = n
        return n

    def __getitem__(self, v):
        return self.of[id(v)]


def _dim_maps(nodes, eff_values, F, default_dims, special=None):
    """Map every value's dims onto the iteration space F: dmap[id(v)] = tuple of F dims (None
    for a size-1 dim). Pointwise ops align right (NumPy broadcasting); a value without a map
    yet (a group input at its first use) takes its consumer's; `special(node, dmap)` handles
    reductions and the matmul."""
    R = len(F)
    dmap = {}
    hints = _row_hints(nodes, F, default_dims)

    def default(v):
        h = hints.get(id(v))
        if h is not None:
            return h
        r = len(v.shape)
        m = []
        for i, s in enumerate(v.shape):
            d = default_dims(R, r, i)
            if s == 1:
                m.append(None)
            elif d is None or d < 0 or F[d] != s:
                break
            else:
                m.append(d)
        else:
            return tuple(m)
        # not right-aligned: the same sizes as F up to size-1 dims (a value before a reshape
        # that only adds or drops 1s) map in order
        live = [d for d in range(R) if F[d] != 1]
        if [s for s in v.shape if s != 1] == [F[d] for d in live]:
            it = iter(live)
            return tuple(None if s == 1 else next(it) for s in v.shape)
        raise TritonCodegenError(f"triton codegen: {v.name} of shape {list(v.shape)} does "
                                 f"not align with the iteration space {list(F)}")

    def known(v):
        if id(v) not in dmap:
            dmap[id(v)] = default(v)
        return dmap[id(v)]

    for n in nodes:
        o = n.outputs[0]
        if special is not None and special(n, dmap, known):
            continue
        if n.op == "permute":
            m = known(n.inputs[0])
            dmap[id(o)] = tuple(m[d] for d in n.attrs["dims"])
            continue
        if n.op == "reshape":
            x = n.inputs[0]
            m = [d for d, s in zip(known(x), x.shape) if s != 1]
            if [s for s in x.shape if s != 1] != [s for s in o.shape if s != 1]:
                raise TritonCodegenError(f"triton codegen: reshape {list(x.shape)} -> "
                                         f"{list(o.shape)} inside a fused group (only size-1 "
                                         "dims may change; the fuser should split here)")
            it = iter(m)
            dmap[id(o)] = tuple(None if s == 1 else next(it) for s in o.shape)
            continue
        if n.op not in ("expand",) and REGISTRY[n.op].kind != "pointwise":
            raise TritonCodegenError(f"triton codegen: {n.op} ({REGISTRY[n.op].kind}) cannot be "
                                     "fused into this kernel")
        r = len(o.shape)
        ops = [a for a in n.inputs if isinstance(a, Value)]
        m = []
        for i, s in enumerate(o.shape):
            d = None
            if s != 1:
                for a in ops:
                    ia = i - (r - len(a.shape))
                    if ia >= 0 and id(a) in dmap and dmap[id(a)][ia] is not None:
                        d = dmap[id(a)][ia]
                        break
                else:
                    d = default(o)[i]
            m.append(d)
        for a in ops:      # operands mapped earlier must meet the output on the same dims
            ma = dmap.get(id(a))
            if ma is not None and any(x is not None and m[r - len(a.shape) + j] is not None and
                                      x != m[r - len(a.shape) + j] for j, x in enumerate(ma)):
                raise TritonCodegenError(
                    f"triton codegen: {n.op} combines {a.name} {list(a.shape)} with an operand "
                    f"whose dims lie permuted on the iteration space (the values sit at "
                    f"different elements; the fuser should split here)")
        dmap[id(o)] = tuple(m)
        for a in ops:
            if id(a) not in dmap:
                ra = len(a.shape)
                dmap[id(a)] = tuple(None if s == 1 else m[r - ra + j]
                                    for j, s in enumerate(a.shape))
    for v in eff_values:
        known(v)
    return dmap


def _right_aligned(shape, F, default_dims):
    """shape's dims on F by right alignment (NumPy broadcasting), or None."""
    m = []
    for i, s in enumerate(shape):
        d = default_dims(len(F), len(shape), i)
        if s == 1:
            m.append(None)
        elif d is None or d < 0 or F[d] != s:
            return None
        else:
            m.append(d)
    return tuple(m)


def _row_hints(nodes, F, default_dims):
    """Dims that later uses imply, for values right alignment would misplace: a value that a
    reshape turns into a row vector ([6] -> [6, 1] in a [6, 40] space: cross_entropy's target
    mask) is a row vector, and so are the same-rank pointwise values it is computed from. (With
    as many rows as columns right alignment would silently pick the column dim.) Walks the
    nodes backwards."""
    hints = {}
    for n in reversed(nodes):
        o = n.outputs[0]
        h = hints.get(id(o))
        if n.op == "reshape":
            x = n.inputs[0]
            if not isinstance(x, Value) or \
                    [s for s in x.shape if s != 1] != [s for s in o.shape if s != 1]:
                continue
            if h is None:
                h = _right_aligned(o.shape, F, default_dims)
            if h is None:
                continue
            it = iter([d for d, s in zip(h, o.shape) if s != 1])
            hints.setdefault(id(x), tuple(None if s == 1 else next(it) for s in x.shape))
        elif h is not None and REGISTRY[n.op].kind == "pointwise":
            for a in n.inputs:
                if isinstance(a, Value) and id(a) not in hints and len(a.shape) <= len(h):
                    r = len(a.shape)
                    hints[id(a)] = tuple(None if s == 1 else h[len(h) - r + j]
                                         for j, s in enumerate(a.shape))
    return hints


def _header(name, group, kind, note):
    L = [f"# Kiln: Triton kernel for fused group {name} [{kind}] ({note})."]
    for n in group.nodes:
        outs = ", ".join(f"{o.name}: {_SHORT.get(o.dtype.name, o.dtype.name)}{list(o.shape)}"
                         for o in n.outputs)
        ins = [a.name if isinstance(a, Value) else "<scalar>" for a in n.inputs]
        ins += [f"{k}={v!r}" for k, v in n.attrs.items() if not isinstance(v, dt.DType)]
        L.append(f"#   {outs} = {n.op}({', '.join(ins)})")
    L += ["import triton", "import triton.language as tl", ""]
    return L


def _helpers(exprs):
    L = []
    for h in _helpers_used(exprs):
        L += HELPERS[h].rstrip("\n").split("\n") + [""]
    return L


def _acc_dtype(d):
    if d in (dt.float16, dt.bfloat16):
        return dt.float32
    if d is dt.bool_:
        return dt.int64
    return d


def _lowest(d, high=False):
    if d.is_floating_point:
        return 'float("inf")' if high else 'float("-inf")'
    info = np.iinfo(d.np)
    return str(info.max if high else info.min)


# ---------------------------------------------------------------- reduction groups

def _variance_pairs(reds, producer, red_dims):
    """{id(r1): (r2, mv)} for r1 = sum(x), mv = div(r1, scalar), r2 = sum(mul(d, d)) with
    d = sub(x, mv) over the same dims: the shape layer_norm, var and std trace to."""
    out = {}
    for r2 in reds:
        if r2.op != "sum":
            continue
        q = producer.get(id(r2.inputs[0]))
        if q is None or q.op != "mul" or q.inputs[0] is not q.inputs[1]:
            continue
        d = producer.get(id(q.inputs[0]))
        if d is None or d.op != "sub" or not isinstance(d.inputs[1], Value):
            continue
        m = producer.get(id(d.inputs[1]))
        if m is None or m.op != "div" or isinstance(m.inputs[1], Value):
            continue
        r1 = producer.get(id(m.inputs[0]))
        if r1 is None or r1.op != "sum" or r1.inputs[0] is not d.inputs[0] or \
                red_dims(r1) != red_dims(r2) or not r1.inputs[0].dtype.is_floating_point or \
                id(r1) in out:
            continue
        out[id(r1)] = (r2, d.inputs[1])
    return out


def _reduction(group, max_block, interpret, welford=False, suffix="", hoist=False,
               unroll=False, strided=False):
    """welford: a variance (a sum of squared deviations from a sum's mean, as layer_norm and
    var trace) is computed with its sum in one Welford pass; suffix: a variant's name;
    hoist (persistent rows): every operand is loaded first, before the reductions (the
    weights' loads then overlap the row's); unroll (looped rows): the column loops run over
    the row's fixed length (tl.static_range), so each pass's loads can all be in flight;
    strided: a grid of a few programs per SM (_strided_programs), each looping over row
    blocks with a 2-stage software pipeline (the next block's loads are in flight while
    this one is reduced and stored)."""
    eff, nodes = _fold_views(group)
    reds = [n for n in nodes if n.op in _REDUCTIONS or n.op == "gather"]
    for n in nodes:
        if REGISTRY[n.op].kind == "reduction" and n.op not in _REDUCTIONS:
            raise TritonCodegenError(f"triton codegen: reduction {n.op} has no Triton lowering "
                                     f"(the NumPy lowering runs it)")
    # the first reduction sets the iteration space; a row pick (gather) of a group input
    # before any other reduction (nll_loss of given log-probabilities, then its mean) too
    base = reds[0] if reds else None
    if base is None:
        # pointwise nodes with views of intermediates: one row per element, no columns
        F = max((tuple(o.shape) for o in group.outputs), key=lambda sh: (_prod(sh), len(sh)))
    else:
        F = tuple(base.inputs[0].shape)
    R = len(F)

    def red_dims(n):
        if n.op in ("argmax", "argmin"):
            d = n.attrs.get("dim")
            return tuple(range(R)) if d is None else (d % max(R, 1),)
        return norm_dims(n.op, n.attrs.get("dims"), len(n.inputs[0].shape))

    D = None if base is not None else frozenset()
    if base is not None and base.op == "gather":
        D = frozenset({base.attrs["dim"] % R})          # its picked dim is the reduced one
    closing = set()     # ids of closing reductions: over every row of a row-only value

    def special(n, dmap, known):
        nonlocal D
        if n.op in _REDUCTIONS:
            x = n.inputs[0]
            m = known(x)
            dims = red_dims(n)
            fd = {m[d] for d in dims} - {None}      # (size-1 dims reduce nothing)
            if not fd:
                raise TritonCodegenError(f"{group.name}: {n.op} over size-1 dims only")
            if D is None:
                D = frozenset(fd)
            rows_all = {d for d in range(R) if d not in D and F[d] != 1}
            if fd != D and n.op in ("sum", "amax", "amin") and fd == rows_all and \
                    not (set(e for e in m if e is not None) & D):
                # the loss mean closing a row group: one program holds every row (below)
                closing.add(id(n))
                keep = n.attrs.get("keepdim", False)
                dmap[id(n.outputs[0])] = (None,) * len(n.outputs[0].shape) if keep else \
                    tuple(e for d, e in enumerate(m) if d not in dims)
                return True
            if fd != D:
                raise TritonCodegenError(f"{group.name}: reductions over different dims "
                                         f"({sorted(fd)} vs {sorted(D)}) in one group")
            keep = n.attrs.get("keepdim", False)
            if n.op in ("argmax", "argmin") and n.attrs.get("dim") is None:
                dmap[id(n.outputs[0])] = (None,) * len(n.outputs[0].shape)
            elif keep:
                dmap[id(n.outputs[0])] = tuple(None if d in dims else e for d, e in enumerate(m))
            else:
                dmap[id(n.outputs[0])] = tuple(e for d, e in enumerate(m) if d not in dims)
            return True
        if n.op == "gather":
            x, idx = n.inputs[0], n.inputs[1]
            m = known(x)
            d = n.attrs["dim"] % R
            if D is None or {m[d]} != set(D) or idx.shape[d] != 1 or \
                    any(s != x.shape[j] for j, s in enumerate(idx.shape) if j != d):
                raise TritonCodegenError(f"{group.name}: gather is fused only as one pick per "
                                         "row along the reduced dim")
            out = tuple(None if j == d else e for j, e in enumerate(m))
            dmap[id(idx)] = out
            dmap[id(n.outputs[0])] = out
            return True
        return False

    dmap = _dim_maps(nodes, [v for v, _, _ in eff], F, lambda R_, r, i: R_ - r + i, special)
    row_dims = [d for d in range(R) if d not in D and F[d] != 1]
    col_dims = [d for d in sorted(D)]
    nrows, ncols = _prod(F[d] for d in row_dims), _prod(F[d] for d in col_dims)
    cap = max_block or (4096 if interpret else 8192)
    BN = min(_pow2(ncols), cap)
    persistent = ncols <= BN
    target = (1 << 14) if interpret else 4096
    BM = max(1, min(_pow2(nrows), target // BN))
    if closing:
        # every row in the one program, so the closing reduction sees all of them
        BM = _pow2(nrows)
        if not persistent or BM * BN > (1 << 16 if interpret else 1 << 15):
            raise TritonCodegenError(f"{group.name}: closing reduction over {nrows} rows x "
                                     f"{ncols} columns does not fit one program")
    tile = BM * BN
    num_warps = 4 if tile <= 2048 else 8 if tile <= 8192 else 16
    configs = None if interpret or closing else _row_configs(BM, BN, num_warps, nrows, ncols)

    def live(v):
        m = dmap.get(id(v), ())
        return {d for d in m if d is not None}

    def is_full(v):
        return bool(live(v) & D)

    # ---- names and parameters
    names = _Names({"tl", "triton", "pid", "rows", "cols", "rmask", "cmask", "mask", "c0",
                    "nrows", "ncols", "BLOCK_M", "BLOCK_N", "take", "xm", "bm", "xw", "nw",
                    "dw"})
    for k, (v, _, _) in enumerate(eff):
        names.add(v, f"in{k}")
    for n in nodes:
        for o in n.outputs:
            names.add(o, f"v{len(names.of)}")
    extent = sum(F)
    idx64 = nrows * ncols >= 2**31
    for v, _, _ in eff:
        extent = max(extent, _prod(v.shape))
    isig = "i64" if idx64 or extent >= 2**31 else "i32"
    params = [Param(f"{names[v]}_ptr", "*" + SIG[v.dtype.name], ("in", k))
              for k, (v, _, _) in enumerate(eff)]
    outs = list(group.outputs)
    out_ptr = []
    for k, o in enumerate(outs):
        pn = f"out{k}_ptr"
        names.used.add(pn)
        out_ptr.append(pn)
        params.append(Param(pn, "*" + SIG[o.dtype.name], ("out", k)))
    scalar_params = []
    scalar_expr = scalar_emitter(scalar_params)
    size_params = [Param("nrows", isig, ("value", nrows)), Param("ncols", isig, ("value", ncols))]
    stride_params = []
    coord_sizes = []

    def address(v, which, idx):
        """Pointer offset expression and mask name for value v of buffer (which, idx)."""
        terms, row, col = [], False, False
        for j, d in enumerate(dmap[id(v)]):
            if d is None or v.shape[j] == 1:
                continue
            pn = f"{names[v] if which == 'in' else 'out' + str(idx)}_stride{j}"
            names.used.add(pn)
            stride_params.append(Param(pn, isig, ("stride", which, idx, j)))
            terms.append(f"i{d} * {pn}")
            row |= d not in D
            col |= d in D
        m = "mask" if row and col else "rmask" if row else "cmask" if col else None
        return " + ".join(terms), m

    # ---- body
    last_pass = [False]       # emitting the last pass over the columns (the stores)
    eff_of = {id(v): k for k, (v, _, _) in enumerate(eff)}
    producer = {id(o): n for n in nodes for o in n.outputs}
    exprs_seen = []
    L = []

    def sym(v):
        m = dmap.get(id(v), ())
        dims = ["1" if e is None else (f"c{e}" if e in D else f"r{e}") for e in m]
        return f"{_SHORT[v.dtype.name]}[{', '.join(dims)}]"

    def coords(which, ind):
        dims = row_dims if which == "row" else col_dims
        dims = [d for d in dims if F[d] != 1]
        cur = "rows" if which == "row" else "cols"
        out = []
        for j, d in enumerate(reversed(dims)):
            if j == len(dims) - 1:
                out.append(f"{ind}i{d} = {cur}")
            else:
                pn = f"size{d}"
                if pn not in coord_sizes:
                    coord_sizes.append(pn)
                    size_params.append(Param(pn, isig, ("value", F[d])))
                out.append(f"{ind}i{d} = {cur} % {pn}")
                out.append(f"{ind}{'r' if which == 'row' else 'c'} = {cur} // {pn}")
                cur = "r" if which == "row" else "c"
        return out

    def emit(v, scope, ind, body):
        """Lines computing v into `body` (values already in `scope` are reused)."""
        if id(v) in scope:
            return
        if id(v) in eff_of:
            k = eff_of[id(v)]
            off, m = address(v, "in", k)
            ptr = f"{names[v]}_ptr"
            # L2 hints: an operand every row reads (layer_norm's weight) stays; a row
            # operand is read once per row in its last pass (it streams past), and kept for
            # the next pass before that (looped rows read it again per phase)
            ev = (", eviction_policy='evict_last'" if m == "cmask" and nrows > BM else
                  "" if m not in ("mask", "rmask") else
                  ", eviction_policy='evict_first'" if persistent or last_pass[0] else
                  ", eviction_policy='evict_last'")
            body.append(f"{ind}{names[v]} = tl.load({ptr} + {off}, mask={m}{ev})" if off else
                        f"{ind}{names[v]} = tl.load({ptr})")
            scope.add(id(v))
            return
        n = producer.get(id(v))
        if n is None:
            raise TritonCodegenError(f"{group.name}: {v.name} is neither computed nor an input")
        if n.op in _REDUCTIONS or n.op == "gather":
            raise TritonCodegenError(f"{group.name}: {v.name} used before its reduction")
        for a in n.inputs:
            if isinstance(a, Value):
                emit(a, scope, ind, body)
        o = n.outputs[0]
        if n.op in ("reshape", "permute", "expand"):
            # index-map change only: the register tile already has the right layout
            body.append(f"{ind}# {names[o]}: {sym(o)} = {n.op}({names[n.inputs[0]]})")
            body.append(f"{ind}{names[o]} = {names[n.inputs[0]]}")
        else:
            comment, expr = op_expr(n, names.of, scalar_expr, sym)
            exprs_seen.append(expr)
            body.append(f"{ind}{comment}")
            body.append(f"{ind}{names[o]} = {expr}")
        scope.add(id(o))

    def cone_rows(v, acc, seen):
        """Row-only values (and reduction results) a full value depends on."""
        if id(v) in seen:
            return
        seen.add(id(v))
        if not is_full(v):
            acc.append(v)
            return
        n = producer.get(id(v))
        if n is None:
            return
        for a in n.inputs:
            if isinstance(a, Value):
                cone_rows(a, acc, seen)

    row_scope = set()
    pid = "tl.program_id(0).to(tl.int64)" if idx64 else "tl.program_id(0)"
    L.append(f"    pid = {pid}")
    L.append("    rows = pid * BLOCK_M + tl.arange(0, BLOCK_M)[:, None]")
    # masks known full at generation (sizes are fixed per kernel) are constants, which
    # Triton folds away: unpredicated loads and stores, no selects before the sums
    bms = [m["BLOCK_M"] for m, _ in configs] if configs else [BM]
    if not closing and nrows > 0 and all(nrows % bm == 0 for bm in bms):
        L.append(f"    rmask = tl.full([BLOCK_M, 1], 1, tl.int1)   # {nrows} rows: no partial "
                 "row block")
    else:
        L.append("    rmask = rows < nrows")
    L += coords("row", "    ")

    def col_setup(ind, start):
        full = ncols > 0 and ncols % BN == 0       # (an empty row: every column masked)
        out = [f"{ind}cols = {start}tl.arange(0, BLOCK_N)[None, :]",
               f"{ind}cmask = tl.full([1, BLOCK_N], 1, tl.int1)   # {ncols} columns: no "
               "partial column block" if full else f"{ind}cmask = cols < ncols",
               f"{ind}mask = rmask & cmask"]
        return out + coords("col", ind)

    pre = []      # strided: lines before the loop over row blocks (what no row changes)
    if strided and not persistent:
        raise TritonCodegenError(f"{group.name}: the strided form keeps whole rows in "
                                 f"registers ({ncols} columns do not fit one block)")
    if persistent:
        L.append("    # the whole row fits one block: one pass, values stay in registers")
        cs = col_setup("    ", "")
        if strided:     # the columns, and the operands read by every row, once per program
            pre += [line for line in cs if not line.startswith("    mask =")]
            L += [line for line in cs if line.startswith("    mask =")]
        else:
            L += cs
        full_scope = row_scope          # one scope: nothing is recomputed
        if hoist:
            if strided:
                for v, _, _ in eff:
                    if live(v) and live(v) <= D:
                        emit(v, full_scope, "    ", pre)
            L.append("    # every operand loaded first: their loads overlap")
            for v, _, _ in eff:
                emit(v, full_scope, "    ", L)
    loop = (f"for c0 in tl.static_range(0, {ncols}, BLOCK_N):" if unroll else
            "for c0 in range(0, ncols, BLOCK_N):")

    def phase(targets, finish, comment=None):
        """Loop (or straight line) over column blocks computing `targets`; `finish(ind,
        body)` adds the per-block work (combine a reduction, or store)."""
        deps = []
        for t in targets:
            cone_rows(t, deps, set())
        for d in deps:
            emit(d, row_scope, "    ", L)
        if persistent:
            for t in targets:
                emit(t, full_scope, "    ", L)
            if comment:
                L.append(f"    {comment}")
            finish("    ", L)
            return
        body = []
        scope = set(row_scope)
        for t in targets:
            emit(t, scope, "        ", body)
        L.append("    " + loop)
        L.extend(col_setup("        ", "c0 + "))
        L.extend(body)
        finish("        ", L)

    def conv(v, d):
        return names[v] if v.dtype is d else f"{names[v]}.to({_tl(d)})"

    def welford_phase(r1, r2, mv):
        """r1 = sum(x) and r2 = sum((x - mv)**2), mv = r1 / c, from one pass: per-lane
        (mean, M2, count) merged across blocks, then across lanes by kiln_welford_combine.
        r1 = mean * count; r2 = M2 + count * (mean - mv)**2 (exact for any c)."""
        x = r1.inputs[0]
        acc = _acc_dtype(x.dtype)
        tacc = _tl(acc)
        n1, n2 = names[r1.outputs[0]], names[r2.outputs[0]]
        w = f"w_{n1}"
        cx = conv(x, acc)
        exprs_seen.append("kiln_welford_combine(")
        L.append(f"    # {n1}, {n2}: sum({names[x]}) and the sum of squared deviations from "
                 f"{names[mv]}, in one Welford pass")
        if persistent:
            def fin(ind, body):
                body.append(f"{ind}{w}m, {w}s, {w}n = tl.reduce((tl.where(mask, {cx}, 0), "
                            f"tl.zeros([BLOCK_M, BLOCK_N], {tacc}), tl.where(mask, 1.0, 0.0)"
                            f".to({tacc})), 1, kiln_welford_combine, keep_dims=True)")
            phase([x], fin)
        else:
            for a in ("m", "s", "n"):
                L.append(f"    {w}{a} = tl.zeros([BLOCK_M, BLOCK_N], {tacc})")

            def fin(ind, body):
                body += [f"{ind}xw = {cx}",
                         f"{ind}nw = {w}n + tl.where(mask, 1.0, 0.0).to({tacc})",
                         f"{ind}dw = tl.where(mask, xw - {w}m, 0)",
                         f"{ind}{w}m = {w}m + dw / tl.maximum(nw, 1.0)",
                         f"{ind}{w}s = {w}s + dw * tl.where(mask, xw - {w}m, 0)",
                         f"{ind}{w}n = nw"]
            phase([x], fin)
            L.append(f"    {w}m, {w}s, {w}n = tl.reduce(({w}m, {w}s, {w}n), 1, "
                     f"kiln_welford_combine, keep_dims=True)")
        c1 = "" if acc is r1.outputs[0].dtype else f".to({_tl(r1.outputs[0].dtype)})"
        L.append(f"    {n1} = ({w}m * {w}n){c1}")
        row_scope.add(id(r1.outputs[0]))
        emit(mv, row_scope, "    ", L)
        mm = conv(mv, acc)
        c2 = "" if acc is r2.outputs[0].dtype else f".to({_tl(r2.outputs[0].dtype)})"
        L.append(f"    {n2} = ({w}s + {w}n * ({w}m - {mm}) * ({w}m - {mm})){c2}")
        row_scope.add(id(r2.outputs[0]))

    pairs = _variance_pairs(reds, producer, red_dims) if welford else {}
    if welford and not pairs:
        raise TritonCodegenError(f"{group.name}: no variance to compute by Welford")
    done = set()
    for n in reds:
        if id(n) in done:
            continue
        x = n.inputs[0]
        o = n.outputs[0]
        nm = names[o]
        if id(n) in pairs and not closing:
            r2, mv = pairs[id(n)]
            done.add(id(r2))
            welford_phase(n, r2, mv)
            continue
        comment = (f"# {nm}: {sym(o)} = {n.op}({names[x]}" +
                   (f", {names[n.inputs[1]]}" if n.op == "gather" else "") +
                   "".join(f", {k}={v!r}" for k, v in n.attrs.items()
                           if not isinstance(v, dt.DType)) + ")")
        acc = _acc_dtype(o.dtype) if n.op == "sum" else _acc_dtype(x.dtype)
        if n.op == "gather":
            acc = _acc_dtype(x.dtype)
        tacc = _tl(acc)
        if id(n) in closing:
            # over the rows of a per-row value ([BLOCK_M, 1]): a [1, 1] result for every lane
            emit(x, row_scope, "    ", L)
            L.append(f"    {comment}  (closing: all rows are in this program)")
            cx = conv(x, acc)
            if n.op == "sum":
                red = f"tl.sum(tl.where(rmask, {cx}, 0), axis=0, keep_dims=True)"
            else:
                hi = n.op == "amin"
                red = (f"{'tl.min' if hi else 'tl.max'}(tl.where(rmask, {cx}, {_lowest(acc, hi)}),"
                       f" axis=0, keep_dims=True)")
                if acc.is_floating_point:
                    red = (f"tl.where(tl.max(tl.where(rmask & ({cx} != {cx}), 1, 0), axis=0, "
                           f"keep_dims=True) > 0, float(\"nan\"), {red})")
            cast = "" if acc is o.dtype else f".to({_tl(o.dtype)})"
            L.append(f"    {nm} = ({red}){cast}" if cast else f"    {nm} = {red}")
            row_scope.add(id(o))
            continue
        if not persistent:
            L.append(f"    {comment}")
        if n.op == "sum":
            part = f"tl.sum(tl.where(mask, {conv(x, acc)}, 0), axis=1, keep_dims=True)"
            init, comb = "0", lambda a, p: f"{a} + {p}"
        elif n.op in ("amax", "amin"):
            hi = n.op == "amin"
            f = "tl.min" if hi else "tl.max"
            cx = conv(x, acc)
            part = (f"{f}(tl.where(mask, {cx}, {_lowest(acc, hi)}), axis=1, "
                    "keep_dims=True)")
            init = _lowest(acc, hi)
            # NaN propagates (torch.amax/amin): the reductions' own combine drops it
            nanp = ", propagate_nan=tl.PropagateNan.ALL" if acc.is_floating_point else ""
            if acc.is_floating_point:
                part = (f"tl.where(tl.max(tl.where(mask & ({cx} != {cx}), 1, 0), axis=1, "
                        f"keep_dims=True) > 0, float(\"nan\"), {part})")
            comb = (lambda a, p, nanp=nanp: f"tl.minimum({a}, {p}{nanp})") if hi else \
                (lambda a, p, nanp=nanp: f"tl.maximum({a}, {p}{nanp})")
        elif n.op == "gather":
            d = n.attrs["dim"] % R
            fd = dmap[id(x)][d]
            emit(n.inputs[1], row_scope, "    ", L)
            part = (f"tl.sum(tl.where(mask & (i{fd} == {names[n.inputs[1]]}), "
                    f"{conv(x, acc)}, 0), axis=1, keep_dims=True)")
            init, comb = "0", lambda a, p: f"{a} + {p}"
        else:       # argmax / argmin: value and column of the best so far (first one wins)
            hi = n.op == "argmin"
            init = _lowest(acc, hi)
            fred, farg, cmp = ("tl.min", "tl.argmin", "<") if hi else ("tl.max", "tl.argmax", ">")
            cx = conv(x, acc)
            xm = f"tl.where(mask, {cx}, {init})"
            # a NaN is the extreme (torch.argmax/argmin): the first NaN's column wins
            isn = f"tl.where(mask & ({cx} != {cx}), 1, 0)" if acc.is_floating_point else None
            if persistent:
                def fin(ind, body, nm=nm, xm=xm, farg=farg, isn=isn):
                    body.append(f"{ind}{nm} = {farg}({xm}, axis=1, keep_dims=True).to(tl.int64)")
                    if isn is not None:
                        body.append(f"{ind}isn = {isn}")
                        body.append(f"{ind}{nm} = tl.where(tl.max(isn, axis=1, keep_dims=True) "
                                    f"> 0, tl.argmax(isn, axis=1, keep_dims=True)"
                                    f".to(tl.int64), {nm})")
                phase([x], fin, comment)
                row_scope.add(id(o))
                continue
            L.append(f"    best_{nm} = tl.full([BLOCK_M, 1], {init}, {tacc})")
            L.append(f"    arg_{nm} = tl.zeros([BLOCK_M, 1], tl.int64)")
            if isn is not None:
                L.append(f"    nanf_{nm} = tl.zeros([BLOCK_M, 1], tl.int32)")
                L.append(f"    nani_{nm} = tl.zeros([BLOCK_M, 1], tl.int64)")

            def fin(ind, body, nm=nm, xm=xm, fred=fred, farg=farg, cmp=cmp, isn=isn):
                body.append(f"{ind}xm = {xm}")
                body.append(f"{ind}bm = {fred}(xm, axis=1, keep_dims=True)")
                body.append(f"{ind}take = bm {cmp} best_{nm}")
                body.append(f"{ind}arg_{nm} = tl.where(take, {farg}(xm, axis=1, keep_dims=True)"
                            f".to(tl.int64) + c0, arg_{nm})")
                body.append(f"{ind}best_{nm} = tl.where(take, bm, best_{nm})")
                if isn is not None:
                    body.append(f"{ind}isn = {isn}")
                    body.append(f"{ind}bn = tl.max(isn, axis=1, keep_dims=True)")
                    body.append(f"{ind}nani_{nm} = tl.where((bn > 0) & (nanf_{nm} == 0), "
                                f"tl.argmax(isn, axis=1, keep_dims=True).to(tl.int64) + c0, "
                                f"nani_{nm})")
                    body.append(f"{ind}nanf_{nm} = tl.maximum(nanf_{nm}, bn)")
            phase([x], fin)
            L.append(f"    {nm} = arg_{nm}" if isn is None else
                     f"    {nm} = tl.where(nanf_{nm} > 0, nani_{nm}, arg_{nm})")
            row_scope.add(id(o))
            continue
        cast = "" if acc is o.dtype else f".to({_tl(o.dtype)})"
        if persistent:
            def fin(ind, body, nm=nm, part=part, cast=cast):
                body.append(f"{ind}{nm} = ({part}){cast}" if cast else f"{ind}{nm} = {part}")
            phase([x], fin, comment)
        else:
            L.append(f"    acc_{nm} = tl.full([BLOCK_M, 1], {init}, {tacc})")

            def fin(ind, body, nm=nm, part=part, comb=comb):
                body.append(f"{ind}acc_{nm} = {comb('acc_' + nm, part)}")
            phase([x], fin)
            L.append(f"    {nm} = acc_{nm}{cast}")
        row_scope.add(id(o))

    # ---- outputs: row values once, full-width values in a last pass over the columns
    stores_row, stores_full = [], []
    for k, o in enumerate(outs):
        (stores_full if is_full(o) else stores_row).append((k, o))
    if stores_full:
        last_pass[0] = True

        def fin(ind, body):
            for k, o in stores_full:
                off, m = address(o, "out", k)
                body.append(f"{ind}tl.store({out_ptr[k]} + {off}, {names[o]}, mask={m})")
        if not persistent:
            L.append("    # outputs: recompute the epilogue block by block and store it")
        phase([o for _, o in stores_full], fin)
    for k, o in stores_row:
        emit(o, row_scope, "    ", L)
        off, m = address(o, "out", k)
        # a 0-d output is written by the (single) row lane: rows * 0 keeps the pointer a block
        # (after a closing reduction every row lane holds it: row 0 writes it)
        if not off and closing:
            m = "rows == 0"
        L.append(f"    tl.store({out_ptr[k]} + {off or 'rows * 0'}, {names[o]}, "
                 f"mask={m or 'rmask'})")

    if strided:
        if closing:
            raise TritonCodegenError(f"{group.name}: a closing reduction has one program")
        i = L.index(f"    pid = {pid}")
        L[i:] = pre + ["    # each program strides over row blocks; num_stages=2 issues the next "
                 "block's loads while this one is reduced and stored",
                 f"    for pid in tl.range({pid}, tl.cdiv(nrows, BLOCK_M), tl.num_programs(0), "
                 "num_stages=2):"] + ["    " + line for line in L[i + 1:]]
    # dedupe stride params (one per buffer dim)
    seen, sp = set(), []
    for p in stride_params:
        if p.name not in seen:
            seen.add(p.name)
            sp.append(p)
    params += scalar_params + size_params + sp
    ops = "_".join(dict.fromkeys(n.op for n in nodes if n.op not in VIEW_OPS))
    kname = (f"fused_{ops}_{group.id}" if len(nodes) > 1 else f"{ops}_{group.id}") + suffix
    mode = "persistent rows" if persistent else "looped over column blocks"
    if pairs:
        mode += ", variance by Welford"
    src = _header(kname, group, group.kind, f"{nrows} rows x {ncols} columns, {mode}")
    if configs:
        src.append("# autotuned on the GPU over (BLOCK_M, BLOCK_N, num_warps):")
        src.append(f"CONFIGS = {[(m['BLOCK_M'], m['BLOCK_N'], o['num_warps']) for m, o in configs]!r}")
        src.append("")
    src += _helpers(exprs_seen)
    src += ["@triton.jit",
            f"def {kname}(" + ", ".join([f"{p.name}: tl.constexpr" if p.constexpr else p.name
                                         for p in params]
                                        + ["BLOCK_M: tl.constexpr", "BLOCK_N: tl.constexpr"])
            + "):"]
    src += L
    source = "\n".join(src) + "\n"
    grid = (lambda meta, nrows=nrows: ((nrows + meta["BLOCK_M"] - 1) // meta["BLOCK_M"],))
    if strided:
        grid = (lambda meta, nrows=nrows: (_strided_programs(-(-nrows // meta["BLOCK_M"])),))
    return GroupKernel(kname, source, params, group.kind, eff, grid,
                       {"BLOCK_M": BM, "BLOCK_N": BN}, num_warps, group, configs=configs)


STRIDED_PER_SM = 4      # programs per SM of a strided row kernel (16 KB rows, 2 stages each)


def _strided_programs(nblocks):
    """Programs of a strided row kernel: about STRIDED_PER_SM per SM, evened out so that every
    program runs the same number of row blocks (8192 blocks on 132 SMs: 512 programs of 16,
    not 528 of which a third run one block fewer)."""
    per = -(-nblocks // max(1, SM_COUNT * STRIDED_PER_SM))
    return max(1, -(-nblocks // per))


CHOICE_TIE = 1.05        # forms this close to the fastest are timed again (GroupKernel._choose)
CHOICE_ROUNDS = 4        # times each, in turn; the median of those and the first timing wins
ROW_TUNE_ELEMENTS = 1 << 22      # smaller row kernels keep the one heuristic tile (launch-bound)
ROW_LOOP_BLOCK = 2048            # the looped variant's column block


def _row_variants(group, k):
    """Other forms of a large row kernel, timed against it on its first GPU launch: the row
    looped over 2048-column blocks (the next pass reads it back from L2, as Inductor's looped
    reductions do) and, where the group computes a variance, Welford's single pass for the
    sum and the variance (persistent and looped); with weights, the persistent row with every
    load issued first; for rows of a few blocks, the looped forms with unrolled loops; for rows
    of one block, the strided grid (a few programs per SM prefetching their next row block).
    On an H200 (8192x4096 fp32) the persistent two-pass layer_norm ran at 72-80 us, the
    hoisted and unrolled Welford forms at 69-71 us, Inductor's looped Welford at 69 us: all at
    copy speed. (The strided form is newer than those timings.)"""
    out = []
    # (column block, Welford, hoisted loads, unrolled loops, strided grid, name suffix)
    forms = [(None, True, False, False, False, "_welford"),
             (ROW_LOOP_BLOCK, False, False, False, False, "_looped"),
             (ROW_LOOP_BLOCK, True, False, False, False, "_looped_welford")]
    weights = any(len(v.shape) == 1 for v in group.inputs)
    if weights:                                           # weights: their loads hoisted
        forms.append((None, False, True, False, False, "_hoisted"))
    if k.consts.get("BLOCK_N", 1 << 30) <= 4 * ROW_LOOP_BLOCK:   # a few blocks: unrolled
        forms += [(ROW_LOOP_BLOCK, False, False, True, False, "_unrolled"),
                  (ROW_LOOP_BLOCK, True, False, True, False, "_unrolled_welford")]
    forms.append((None, False, weights, False, True, "_strided"))   # (persistent rows only)
    for mb, wf, hoist, unroll, strided, sfx in forms:
        try:
            v = _reduction(group, mb, False, welford=wf, suffix=sfx, hoist=hoist,
                           unroll=unroll, strided=strided)
        except TritonCodegenError:
            continue
        if mb is not None and v.consts["BLOCK_N"] >= k.consts["BLOCK_N"]:
            continue                                  # the row fits one block: not looped
        out.append(v)
    return out


def _row_configs(BM, BN, num_warps, nrows, ncols):
    """Tuning configs of a large row kernel, the heuristic tile first (what AOT compiles):
    twice the rows per program (a row's broadcast operands, layer_norm's weight and bias, are
    loaded once per program) and half / twice the warps. A few percent either way on an H200,
    depending on the row length, which no fixed rule got right for softmax and layer_norm at
    once; None when the kernel is small enough that its launch dominates."""
    if nrows * ncols < ROW_TUNE_ELEMENTS:
        return None
    cands = [(BM, BN, num_warps), (BM, BN, num_warps * 2), (BM, BN, num_warps // 2)]
    if BM * 2 <= _pow2(nrows) and BM * 2 * BN <= 1 << 14:
        cands += [(BM * 2, BN, num_warps), (BM * 2, BN, num_warps * 2)]
    if BN < ncols:
        # a looped row: four times the warps, and half-width column blocks (Inductor's looped
        # layer_norm, 68 us on an H200, beat every looped tile above, 79..96 us)
        cands += [(BM, BN, num_warps * 4), (BM, BN // 2, num_warps), (BM, BN // 2, num_warps * 2)]
    out = []
    for bm, bn, w in cands:
        if 2 <= w <= 16 and bn >= 256 and (bm, bn, w) not in [
                (m["BLOCK_M"], m["BLOCK_N"], o["num_warps"]) for m, o in out]:
            out.append(({"BLOCK_M": bm, "BLOCK_N": bn}, {"num_warps": w, "num_stages": 1}))
    return out


# ---------------------------------------------------------------- matmul groups

_MM_CONFIGS = {   # (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages), largest first
    2: [(128, 256, 64, 8, 3), (256, 128, 64, 8, 3), (128, 128, 64, 4, 4), (128, 128, 32, 4, 4),
        (64, 128, 32, 4, 4), (64, 64, 32, 4, 4), (32, 32, 16, 4, 2)],
    4: [(128, 256, 32, 8, 3), (256, 128, 32, 8, 3), (128, 128, 32, 8, 3), (128, 64, 32, 4, 4),
        (64, 128, 32, 4, 4), (64, 64, 32, 4, 4), (32, 32, 16, 4, 2)],
}
AUTOTUNE_FLOPS = 2 ** 31     # smaller products take one tile choice instead of tuning
SM_COUNT = 132               # H100/H200: a small product's tile keeps about this many programs


_MM_SMALL_TILES = [(16, 32), (16, 16)]    # (BLOCK_M, BLOCK_N): more programs for a small grid


def _mm_configs(dtype, M, N, K, batch):
    """Tuning configs: all of them for a large product (tuned once per kernel, on its first
    launch); for a small one (a training step's layers) a single tile, the largest that still
    gives every SM a program (down to 16x16), or the smallest: tuning would cost seconds of
    compiles for a kernel that runs for microseconds. A small product's K loop is its
    latency (one global load round trip per step: K=784 took 49 steps of 16), so its tile
    takes deep K blocks and a 3-stage software pipeline."""
    cfgs = _MM_CONFIGS[4 if dtype is dt.float32 else 2]
    if M * N * K * batch >= AUTOTUNE_FLOPS:
        return cfgs
    tiles = [c[:2] for c in cfgs] + _MM_SMALL_TILES
    bm, bn = next((t for t in tiles if -(-M // t[0]) * -(-N // t[1]) * batch >= SM_COUNT),
                  tiles[-1])
    bk = max(16, min(64 if dtype is dt.float32 else 128, _pow2(K)))
    stages = 3 if K > 2 * bk else 2
    return [(bm, bn, bk, 4, stages)]


def _matmul(group, allow_tf32):
    eff, nodes = _fold_views(group)
    mms = [n for n in nodes if n.op == "matmul"]
    if len(mms) != 1:
        raise TritonCodegenError(f"{group.name}: a matmul group holds one matmul "
                                 f"(got {len(mms)})")
    mm = mms[0]
    a, b = mm.inputs
    effv = {id(v): k for k, (v, _, _) in enumerate(eff)}
    if id(a) not in effv or id(b) not in effv:
        raise TritonCodegenError(f"{group.name}: matmul operands must be group inputs (views "
                                 "fold into strides); pointwise prologues are not fused")
    if a.dtype not in (dt.float32, dt.float16, dt.bfloat16):
        raise TritonCodegenError(f"{group.name}: matmul of {a.dtype} (tl.dot takes fp32/fp16/bf16)")
    if len(a.shape) < 2 or len(b.shape) < 2:
        # (compiled graphs reshape vectors to matrices first; an eager matvec takes the host)
        raise TritonCodegenError(f"{group.name}: matmul of a vector ({list(a.shape)} @ "
                                 f"{list(b.shape)}): the tiled template takes matrices")
    O = tuple(mm.outputs[0].shape)
    R = len(O)
    M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
    nb = len(O) - 2
    batch = _prod(O[:nb])

    def special(n, dmap, known):
        if n is mm:
            dmap[id(mm.outputs[0])] = tuple(range(R))
            return True
        return False

    epi = [n for n in nodes if n is not mm]
    dmap = _dim_maps([mm] + epi, [v for v, _, _ in eff if v is not a and v is not b], O,
                     lambda R_, r, i: R_ - r + i, special)
    names = _Names({"tl", "triton", "pid", "bid", "acc", "rm", "rn", "rk", "M", "N", "K",
                    "mask", "BLOCK_M", "BLOCK_N", "BLOCK_K", "GROUP_M", "k0", "a", "b", "bq", "group",
                    "num_m", "num_n", "first_m", "group_m", "pid_m", "pid_n"})
    for k, (v, _, _) in enumerate(eff):
        names.add(v, f"in{k}")
    for n in nodes:
        for o in n.outputs:
            names.add(o, f"v{len(names.of)}")
    big = max([_prod(v.shape) for v, _, _ in eff] + [_prod(O)]) >= 2**31
    isig = "i64" if big else "i32"
    params = [Param(f"{names[v]}_ptr", "*" + SIG[v.dtype.name], ("in", k))
              for k, (v, _, _) in enumerate(eff)]
    outs = list(group.outputs)
    for k, o in enumerate(outs):
        if tuple(o.shape) != O:
            raise TritonCodegenError(f"{group.name}: output {o.name} is not the matmul's shape")
        params.append(Param(f"out{k}_ptr", "*" + SIG[o.dtype.name], ("out", k)))
        names.used.add(f"out{k}_ptr")
    scalar_params = []
    scalar_expr = scalar_emitter(scalar_params)
    size_params = [Param("M", isig, ("value", M)), Param("N", isig, ("value", N)),
                   Param("K", isig, ("value", K))]
    stride_params = []

    def stride(which, idx, v, j):
        pn = f"{names[v] if which == 'in' else 'out' + str(idx)}_stride{j}"
        if all(p.name != pn for p in stride_params):
            stride_params.append(Param(pn, isig, ("stride", which, idx, j)))
        return pn

    L = ["    pid = tl.program_id(0)", "    bid = tl.program_id(1)",
         "    # grouped tile order: GROUP_M row tiles share the B columns they read (L2 reuse)",
         "    num_m = tl.cdiv(M, BLOCK_M)", "    num_n = tl.cdiv(N, BLOCK_N)",
         "    group = pid // (GROUP_M * num_n)", "    first_m = group * GROUP_M",
         "    group_m = min(num_m - first_m, GROUP_M)",
         "    pid_m = first_m + (pid % (GROUP_M * num_n)) % group_m",
         "    pid_n = (pid % (GROUP_M * num_n)) // group_m",
         "    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)",
         "    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)",
         "    rk = tl.arange(0, BLOCK_K)"]
    if nb:
        L.append("    # batch coordinates (broadcast batch dims have no stride term)")
        cur = "bid"
        for j, d in enumerate(reversed(range(nb))):
            if j == nb - 1:
                L.append(f"    i{d} = {cur}")
            else:
                pn = f"size{d}"
                size_params.append(Param(pn, isig, ("value", O[d])))
                L.append(f"    i{d} = {cur} % {pn}")
                L.append(f"    bq = {cur} // {pn}")
                cur = "bq"
    L += [f"    i{R - 2} = rm[:, None]", f"    i{R - 1} = rn[None, :]",
          "    mask = (i%d < M) & (i%d < N)" % (R - 2, R - 1)]

    def batch_off(v, which, idx):
        terms = []
        r = len(v.shape)
        for j in range(r - 2):
            d = nb - (r - 2) + j
            if v.shape[j] != 1:
                terms.append(f"i{d} * {stride(which, idx, v, j)}")
        return terms

    ka, kb = effv[id(a)], effv[id(b)]
    ra, rb = len(a.shape), len(b.shape)
    a_off = " + ".join(batch_off(a, "in", ka) + [
        f"rm[:, None] * {stride('in', ka, a, ra - 2)}", f"(k0 + rk)[None, :] * {stride('in', ka, a, ra - 1)}"])
    b_off = " + ".join(batch_off(b, "in", kb) + [
        f"(k0 + rk)[:, None] * {stride('in', kb, b, rb - 2)}", f"rn[None, :] * {stride('in', kb, b, rb - 1)}"])
    o = mm.outputs[0]
    L += [f"    # {names[o]}: {_SHORT[o.dtype.name]}[..., M, N] = matmul({names[a]}, {names[b]})",
          "    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)",
          "    for k0 in range(0, K, BLOCK_K):",
          f"        a = tl.load({names[a]}_ptr + {a_off}, mask=(rm[:, None] < M) & "
          f"((k0 + rk)[None, :] < K), other=0.0)",
          f"        b = tl.load({names[b]}_ptr + {b_off}, mask=((k0 + rk)[:, None] < K) & "
          f"(rn[None, :] < N), other=0.0)",
          f"        acc += tl.dot(a, b{dot_kwargs(a.dtype, allow_tf32)})",
          f"    {names[o]} = acc" + ("" if o.dtype is dt.float32 else f".to({_tl(o.dtype)})")]
    scope = {id(o)}
    exprs = []

    def sym(v):
        return f"{_SHORT[v.dtype.name]}{list(v.shape)}"

    def emit(v):
        if id(v) in scope:
            return
        if id(v) in effv:
            k = effv[id(v)]
            terms = [f"i{d} * {stride('in', k, v, j)}" for j, d in enumerate(dmap[id(v)])
                     if d is not None and v.shape[j] != 1]
            L.append(f"    {names[v]} = tl.load({names[v]}_ptr + {' + '.join(terms)}, mask=mask)"
                     if terms else f"    {names[v]} = tl.load({names[v]}_ptr)")
            scope.add(id(v))
            return
        n = next(n for n in epi if any(x is v for x in n.outputs))
        for x in n.inputs:
            if isinstance(x, Value):
                emit(x)
        if n.op in ("reshape", "permute", "expand"):
            L.append(f"    # {names[v]}: {sym(v)} = {n.op}({names[n.inputs[0]]})")
            L.append(f"    {names[v]} = {names[n.inputs[0]]}")
        else:
            comment, expr = op_expr(n, names.of, scalar_expr, sym)
            exprs.append(expr)
            L.append(f"    {comment}")
            L.append(f"    {names[v]} = {expr}")
        scope.add(id(v))

    if epi:
        L.append("    # epilogue on the accumulator tile, one line per IR node")
    for n in epi:
        emit(n.outputs[0])
    for k, ov in enumerate(outs):
        terms = [f"i{d} * {stride('out', k, ov, d)}" for d in range(R) if O[d] != 1]
        # a size-1 row or column dim has no stride term: `i * 0` keeps the offset the tile's
        # shape (an M x 1 or 1 x 1 result)
        terms += [f"i{d} * 0" for d in (R - 2, R - 1) if O[d] == 1]
        off = " + ".join(terms)
        L.append(f"    tl.store(out{k}_ptr + {off}, {names[ov]}, mask=mask)")
    params += scalar_params + size_params + stride_params
    ops = "_".join(dict.fromkeys(n.op for n in nodes if n.op not in VIEW_OPS))
    kname = f"fused_{ops}_{group.id}" if len(nodes) > 1 else f"{ops}_{group.id}"
    mode = f"{'batched ' if nb else ''}{a.dtype.name}" + (" tf32" if allow_tf32 and
                                                          a.dtype is dt.float32 else "")
    src = _header(kname, group, "matmul", f"tiled tl.dot, {mode}")
    cfgs = _mm_configs(a.dtype, M, N, K, batch)
    src.append("# autotuned on the GPU over (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages):"
               if len(cfgs) > 1 else "# one tile (a small product is not tuned): "
               "(BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages)")
    src.append(f"CONFIGS = {cfgs!r}")
    src.append("")
    src += _helpers(exprs)
    src += ["@triton.jit",
            f"def {kname}(" + ", ".join([f"{p.name}: tl.constexpr" if p.constexpr else p.name
                                         for p in params]
                                        + ["BLOCK_M: tl.constexpr", "BLOCK_N: tl.constexpr",
                                           "BLOCK_K: tl.constexpr", "GROUP_M: tl.constexpr"])
            + "):"]
    src += L
    source = "\n".join(src) + "\n"
    configs = [({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": 8},
                {"num_warps": w, "num_stages": s}) for bm, bn, bk, w, s in cfgs]
    grid = (lambda meta, M=M, N=N, batch=batch: (
        ((M + meta["BLOCK_M"] - 1) // meta["BLOCK_M"]) * ((N + meta["BLOCK_N"] - 1) //
                                                           meta["BLOCK_N"]), batch))
    k = GroupKernel(kname, source, params, "matmul", eff, grid, {}, 4, group, configs=configs)
    if allow_tf32 and a.dtype is dt.float32:
        k.k_major = (ka, kb)
    return k


# ---------------------------------------------------------------- gather / index / scatter
#
# One generator per op: gather and index are indexed loads over the output's elements;
# index_put and scatter are two launches (a copy of x into the output, then one lane per
# written element storing or atomically combining its value: a single launch cannot copy and
# then scatter safely, a program may write where another has not copied yet);
# slice_scatter and diagonal_scatter are one elementwise kernel choosing between x and src.
# Index values are data: the NumPy lowerings raise on an out-of-range one, a kernel cannot.
# Eager calls check them on the device before launching (triton_eager); inside a compiled
# program they are not checked and the kernels read / write nothing for them.

def _gather(group, interpret=False):
    """gather(x, index, dim): out[i] = x[i with i[dim] replaced by index[i]]."""
    eff, n = _lone(group, "gather")
    x, idx = n.inputs[0], n.inputs[1]
    o = n.outputs[0]
    if not x.shape:
        raise TritonCodegenError(f"{group.name}: gather of a 0-d tensor (NumPy lowering)")
    _check_index_dtype(group, idx)
    effv = {id(v): k for k, (v, _, _) in enumerate(eff)}
    kx, ki = effv[id(x)], effv[id(idx)]
    O = tuple(o.shape)
    R = len(O)
    dim = n.attrs["dim"] % len(x.shape)
    big, isig, numel, co, sizes, sp, L = _lanes(O, x.shape, note="output (= index) coordinates")
    params = [Param("x_ptr", "*" + SIG[x.dtype.name], ("in", kx)),
              Param("index_ptr", "*" + SIG[idx.dtype.name], ("in", ki)),
              Param("out0_ptr", "*" + SIG[o.dtype.name], ("out", 0)), numel]
    L.append(f"    # {o.name}: gather({x.name}, {idx.name}, dim={dim})")
    L.append(f"    j = tl.load(index_ptr + {_sum(_terms(co, range(R), 'index', sp, ('in', ki)))}, "
             f"mask=mask, other=0)" + (".to(tl.int64)" if big else ""))
    sizes.append(Param(f"xsize{dim}", isig, ("value", x.shape[dim])))
    L.append(f"    ok = mask & (j >= 0) & (j < xsize{dim})    # out of range: nothing read")
    xt = [f"j * {_stride(sp, 'x', ('in', kx), dim)}"]
    xt += _terms(co, [d for d in range(R) if d != dim], "x", sp, ("in", kx))
    L.append(f"    v = tl.load(x_ptr + {' + '.join(xt)}, mask=ok)")
    L.append(f"    tl.store(out0_ptr + {_sum(_terms(co, range(R), 'out0', sp, ('out', 0)))}, v, "
             "mask=mask)")
    return _elementwise_kernel(f"gather_{group.id}", group, "gather as an indexed load",
                               params + sizes + list(sp), L, eff, _prod(O), interpret)


def _offs_lines(big):
    """BLOCK lanes per program over `numel` elements (64-bit offsets when big)."""
    return ["    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)" if not big else
            "    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)",
            "    mask = offs < numel"]


def _lanes(shape, *also, note=None):
    """The lanes of an elementwise extern kernel over `shape` (one per element, BLOCK per
    program): (big (64-bit offsets: shape or any of `also` has 2**31 elements), its index
    signature, the numel Param, the coordinates of each lane, their size Params, the stride
    Params to fill, the opening lines)."""
    big = max([_prod(shape)] + [_prod(a) for a in also]) >= 2**31
    isig = "i64" if big else "i32"
    co, lines, sizes = _coords("offs", shape, "i", "size", isig)
    L = _offs_lines(big) + ([f"    # {note}"] if note else []) + lines
    return (big, isig, Param("numel", isig, ("value", _prod(shape))), co, sizes, _Strides(isig),
            L)


def _sum(terms):
    """An address offset from terms; 'offs * 0' (a block of zeros) when there are none."""
    return " + ".join(terms) or "offs * 0"


def _stride(sp, ptr, role, d):
    """The name of stride parameter d of buffer `ptr` (added to sp once)."""
    pn = f"{ptr}_stride{d}"
    if all(p.name != pn for p in sp):
        sp.append(Param(pn, sp.isig, ("stride",) + role + (d,)))
    return pn


def _check_index_dtype(group, idx):
    if idx.dtype.name not in ("int8", "int16", "int32", "int64"):
        raise TritonCodegenError(f"{group.name}: {idx.dtype.name} index tensor {idx.name} "
                                 "(a mask, not positions: NumPy lowering)")


def _adv_layout(group, xshape, idxs, pos):
    """Where advanced indexing x[..., i0, ..., i1, ...] (index tensors at dims `pos`) puts its
    dims in the result (compiler/ops/indexing.index_shape): the index tensors broadcast to B;
    adjacent positions put B's dims where they are, non-adjacent ones first, and the whole dims
    of x follow in order. (result shape, {x dim: result dim} of the whole dims,
    [{dim of index tensor k: result dim}])."""
    from ..ops.indexing import index_shape
    pos = tuple(pos)
    if not pos or list(pos) != sorted(set(pos)) or len(pos) != len(idxs):
        raise TritonCodegenError(f"{group.name}: index positions {list(pos)} are not increasing "
                                 "(NumPy lowering)")
    T = index_shape(tuple(xshape), [tuple(i.shape) for i in idxs], pos)
    nb = len(T) - (len(xshape) - len(pos))
    adjacent = list(pos) == list(range(pos[0], pos[0] + len(pos)))
    b0 = pos[0] if adjacent else 0
    whole = [j for j in range(len(xshape)) if j not in pos]
    if adjacent:
        xmap = {j: j if j < pos[0] else j - len(pos) + nb for j in whole}
    else:
        xmap = {j: nb + r for r, j in enumerate(whole)}
    imaps = [{m: b0 + nb - len(i.shape) + m for m in range(len(i.shape))} for i in idxs]
    return T, xmap, imaps


def _adv_lines(group, x, idxs, pos, co, xmap, imaps, effv, sp, sizes, big, ptr, role):
    """Lines that load every index tensor at the result coordinates `co` (broadcast), wrap
    negative values and check them against x's dims: (lines, the address of the element in
    buffer `ptr` (x's shape), the in-range condition)."""
    L, conds = [], []
    addr = []
    for k, (ix, p) in enumerate(zip(idxs, pos)):
        _check_index_dtype(group, ix)
        ck = {m: (co[d] if ix.shape[m] != 1 else "0") for m, d in imaps[k].items()}
        t = _terms(ck, range(len(ix.shape)), f"index{k}", sp, ("in", effv[id(ix)]))
        L.append(f"    j{k} = tl.load(index{k}_ptr + {_sum(t)}, mask=mask, other=0)"
                 + (".to(tl.int64)" if big else "") + f"    # {ix.name}: positions along dim {p}")
        if all(q.name != f"xsize{p}" for q in sizes):
            sizes.append(Param(f"xsize{p}", sp.isig, ("value", x.shape[p])))
        L.append(f"    j{k} = tl.where(j{k} < 0, j{k} + xsize{p}, j{k})    "
                 "# negative indices count from the end")
        conds.append(f"(j{k} >= 0) & (j{k} < xsize{p})")
        addr.append(f"j{k} * {_stride(sp, ptr, role, p)}")
    addr += _terms({j: co[d] for j, d in xmap.items()}, sorted(xmap), ptr, sp, role)
    return L, " + ".join(addr), " & ".join(conds)


def _index(group, interpret=False):
    """index(x, i0, i1, ..., pos): advanced indexing x[..., i0, ..., i1, ...] (index tensors
    at dims pos, broadcast together; negative values wrap) as an indexed load over the
    output's elements."""
    eff, n = _lone(group, "index")
    x, idxs = n.inputs[0], list(n.inputs[1:])
    pos = tuple(n.attrs["pos"])
    o = n.outputs[0]
    T, xmap, imaps = _adv_layout(group, x.shape, idxs, pos)
    O = tuple(o.shape)
    if T != O:
        raise TritonCodegenError(f"{group.name}: index result {list(O)} is not {list(T)}")
    effv = {id(v): k for k, (v, _, _) in enumerate(eff)}
    big, isig, numel, co, sizes, sp, L = _lanes(O, x.shape, note="output coordinates")
    params = [Param("x_ptr", "*" + SIG[x.dtype.name], ("in", effv[id(x)]))]
    params += [Param(f"index{k}_ptr", "*" + SIG[ix.dtype.name], ("in", effv[id(ix)]))
               for k, ix in enumerate(idxs)]
    params += [Param("out0_ptr", "*" + SIG[o.dtype.name], ("out", 0)), numel]
    L.append(f"    # {o.name}: index({x.name}, {', '.join(i.name for i in idxs)}, pos={list(pos)})")
    ls, addr, cond = _adv_lines(group, x, idxs, pos, co, xmap, imaps, effv, sp, sizes, big, "x",
                                ("in", effv[id(x)]))
    L += ls
    L += ["    # the NumPy lowering raises on an out-of-range index (eager calls check first); "
          "the kernel reads nothing for it",
          f"    ok = mask & {cond}",
          f"    v = tl.load(x_ptr + {addr}, mask=ok)",
          f"    tl.store(out0_ptr + {_sum(_terms(co, range(len(O)), 'out0', sp, ('out', 0)))}, v, "
          "mask=mask)"]
    where = ("adjacent: their dims in place" if list(pos) == list(range(pos[0], pos[0] + len(pos)))
             else "not adjacent: their dims first")
    return _elementwise_kernel(f"index_{group.id}", group,
                               f"advanced indexing by {len(idxs)} index tensor(s) at dims "
                               f"{list(pos)} ({where}) as an indexed load",
                               params + sizes + list(sp), L, eff, _prod(O), interpret)


_ATOMIC_ADD = ("float16", "bfloat16", "float32", "float64", "int32", "int64")
_ATOMIC_MINMAX = ("float32", "float64", "int32", "int64")


def _combine_line(group, op, o, dst, how, mode):
    """The line writing value `v` at `dst` (masked by `ok`) for one scatter mode: a store, or
    an atomic add / max / min (bool: a store of v where it decides the result)."""
    name = o.dtype.name
    if how is None:
        return f"    tl.store({dst}, v, mask=ok)"
    if name == "bool":
        # add/sum/amax of bools is or: store True where v; prod/multiply/amin is and
        if how in ("add", "max"):
            return f"    tl.store({dst}, v, mask=ok & v)    # bool {mode}: or, True where v"
        return (f"    tl.store({dst}, v, mask=ok & (v == 0))    "
                f"# bool {mode}: and, False where not v")
    if how == "mul":
        raise TritonCodegenError(f"{group.name}: {op} {mode} of {name}: Triton has no atomic "
                                 "multiply (NumPy lowering)")
    if how == "add":
        if name not in _ATOMIC_ADD:
            raise TritonCodegenError(f"{group.name}: {op} {mode} of {name}: no atomic add for "
                                     "this dtype (NumPy lowering)")
        return f'    tl.atomic_add({dst}, v, mask=ok, sem="relaxed")'
    if name not in _ATOMIC_MINMAX:
        raise TritonCodegenError(f"{group.name}: {op} {mode} of {name}: no atomic {how} for "
                                 "this dtype (NumPy lowering)")
    return f'    tl.atomic_{how}({dst}, v, mask=ok, sem="relaxed")'


def _nan_canon(var, d, how, ind="    "):
    """Float atomic max/min compare bit patterns (sign-magnitude as integers), so NaN wins only
    with the right sign: every NaN becomes +NaN for max, -NaN for min (NumPy propagates NaN)."""
    if how not in ("max", "min") or d.name not in ("float32", "float64"):
        return []
    it, ones = ("tl.int32", 0x7FFFFFFF) if d.name == "float32" else ("tl.int64", 0x7FFFFFFFFFFFFFFF)
    bits = f"{var}.to({it}, bitcast=True)"
    if how == "max":
        nan = f"({bits} & {ones}).to({_tl(d)}, bitcast=True)"
    else:
        nan = f"({bits} | ~{ones}).to({_tl(d)}, bitcast=True)"
    return [f"{ind}{var} = tl.where({var} != {var}, {nan}, {var})    "
            f"# NaN as {'+' if how == 'max' else '-'}NaN: it wins the atomic {how}"]


def _scalar_value(x, o, params):
    """A Python scalar operand (index_put's value, scatter's src) as a kernel argument: a
    constexpr for float64 outputs (Triton's float arguments are fp32), else a runtime value."""
    pn = f"s{sum(1 for p in params if p.role[0] == 'scalar')}"
    if isinstance(x, float) and o.dtype is dt.float64:
        params.append(Param(pn, "constexpr", ("scalar", x), constexpr=True))
    else:
        params.append(Param(pn, tp._scalar_sig(x), ("scalar", x)))
    return f"tl.full([BLOCK], {pn}, {_tl(o.dtype)})"


def _copy_phase(kname, group, eff, kx, x, o, interpret, how=None):
    """Launch 1 of a scatter: out = x (element by element, any strides)."""
    O = tuple(o.shape)
    big, isig, numel, co, sizes, sp, L = _lanes(O)
    ceff = [eff[kx]]
    params = [Param("x_ptr", "*" + SIG[x.dtype.name], ("in", 0)),
              Param("out0_ptr", "*" + SIG[o.dtype.name], ("out", 0)), numel]
    L.append(f"    v = tl.load(x_ptr + {_sum(_terms(co, range(len(O)), 'x', sp, ('in', 0)))}, "
             "mask=mask)")
    if x.dtype is not o.dtype:
        L.append(f"    v = v.to({_tl(o.dtype)})")
    L += _nan_canon("v", o.dtype, how)
    L.append(f"    tl.store(out0_ptr + {_sum(_terms(co, range(len(O)), 'out0', sp, ('out', 0)))}, "
             "v, mask=mask)")
    return _elementwise_kernel(f"{kname}_copy", group,
                               f"launch 1 of 2 of {kname}: {o.name} = a copy of {x.name}",
                               params + sizes + list(sp), L, ceff, _prod(O), interpret)


def _index_put(group, interpret=False):
    """index_put(x, v, i0, i1, ..., pos, accumulate): out = x, then v (broadcast to the indexed
    shape) written at x[..., i0, ..., i1, ...] (negative indices wrap): stored, or with
    accumulate atomically added (duplicates all add; on a GPU in any order, so float sums may
    round differently from the host's)."""
    eff, n = _lone(group, "index_put")
    x, v, idxs = n.inputs[0], n.inputs[1], list(n.inputs[2:])
    pos = tuple(n.attrs["pos"])
    acc = bool(n.attrs.get("accumulate", False))
    o = n.outputs[0]
    T, xmap, imaps = _adv_layout(group, x.shape, idxs, pos)
    effv = {id(w): k for k, (w, _, _) in enumerate(eff)}
    kname = f"index_put_{group.id}"
    how, mode = ("add", "accumulate=True") if acc else (None, "accumulate=False")
    write = _combine_line(group, "index_put", o, "dst", how, mode)
    big, isig, numel, co, sizes, sp, L = _lanes(
        T, x.shape, note=f"coordinates in the indexed shape {list(T)}")
    params = [Param(f"index{k}_ptr", "*" + SIG[ix.dtype.name], ("in", effv[id(ix)]))
              for k, ix in enumerate(idxs)]
    if isinstance(v, Value):
        params.insert(0, Param("v_ptr", "*" + SIG[v.dtype.name], ("in", effv[id(v)])))
    params += [Param("out0_ptr", "*" + SIG[o.dtype.name], ("out", 0)), numel]
    L.append(f"    # {o.name}: index_put({x.name}, "
             f"{v.name if isinstance(v, Value) else '<scalar>'}, "
             f"{', '.join(i.name for i in idxs)}, pos={list(pos)}, accumulate={acc})")
    ls, addr, cond = _adv_lines(group, x, idxs, pos, co, xmap, imaps, effv, sp, sizes, big,
                                "out0", ("out", 0))
    L += ls
    L += ["    # the NumPy lowering raises on an out-of-range index (eager calls check first); "
          "the kernel writes nothing for it",
          f"    ok = mask & {cond}"]
    if isinstance(v, Value):
        r, R = len(v.shape), len(T)
        cv = {m: (co[R - r + m] if v.shape[m] != 1 else "0") for m in range(r)}
        t = _terms(cv, range(r), "v", sp, ("in", effv[id(v)]))
        L.append(f"    v = tl.load(v_ptr + {_sum(t)}, mask=ok)    "
                 f"# {v.name} broadcast to {list(T)}")
        if v.dtype is not o.dtype:
            L.append(f"    v = v.to({_tl(o.dtype)})")
        sc = []
    else:
        sc = []
        L.append(f"    v = {_scalar_value(v, o, sc)}")
    L.append(f"    dst = out0_ptr + {addr}")
    L.append(write)
    scatter = _elementwise_kernel(kname, group,
                                  f"launch 2 of 2: {'atomic adds' if acc else 'stores'} at "
                                  f"{len(idxs)} index tensor(s) over dims {list(pos)}, one lane "
                                  "per indexed element (a duplicate index without accumulate: "
                                  "one of its values wins)",
                                  params + sc + sizes + list(sp), L, eff, _prod(T), interpret)
    scatter.before = (_copy_phase(kname, group, eff, effv[id(x)], x, o, interpret),)
    return scatter


_SCATTER_HOW = {None: None, "add": "add", "sum": "add", "amax": "max", "amin": "min",
                "multiply": "mul", "prod": "mul"}


def _scatter(group, interpret=False):
    """scatter(x, index, src, dim, reduce): out = x, then for every element i of index,
    out[i with i[dim] replaced by index[i]] = src[i] (or src as a scalar), stored (reduce None:
    one of duplicate targets' values wins) or atomically combined (add/sum, amax, amin; bool
    targets by masked stores; multiply/prod have no atomic: the NumPy lowering)."""
    eff, n = _lone(group, "scatter")
    x, idx, src = n.inputs[0], n.inputs[1], n.inputs[2]
    reduce = n.attrs.get("reduce")
    o = n.outputs[0]
    if not x.shape:
        raise TritonCodegenError(f"{group.name}: scatter into a 0-d tensor (NumPy lowering)")
    if reduce not in _SCATTER_HOW:
        raise TritonCodegenError(f"{group.name}: scatter reduce={reduce!r} (NumPy lowering)")
    _check_index_dtype(group, idx)
    how = _SCATTER_HOW[reduce]
    kname = f"scatter_{group.id}"
    write = _combine_line(group, "scatter", o, "dst", how, f"reduce={reduce!r}")
    effv = {id(w): k for k, (w, _, _) in enumerate(eff)}
    I = tuple(idx.shape)
    R = len(I)
    dim = n.attrs["dim"] % R
    big, isig, numel, co, sizes, sp, L = _lanes(I, x.shape, note="index coordinates")
    params = [Param("index_ptr", "*" + SIG[idx.dtype.name], ("in", effv[id(idx)]))]
    if isinstance(src, Value):
        params.append(Param("src_ptr", "*" + SIG[src.dtype.name], ("in", effv[id(src)])))
    params += [Param("out0_ptr", "*" + SIG[o.dtype.name], ("out", 0)), numel]
    L.append(f"    # {o.name}: scatter({x.name}, {idx.name}, "
             f"{src.name if isinstance(src, Value) else '<scalar>'}, dim={dim}, reduce={reduce!r})")
    ti = _terms(co, range(R), "index", sp, ("in", effv[id(idx)]))
    L.append(f"    j = tl.load(index_ptr + {_sum(ti)}, mask=mask, other=0)"
             + (".to(tl.int64)" if big else ""))
    sizes.append(Param(f"xsize{dim}", isig, ("value", x.shape[dim])))
    L += ["    # the NumPy lowering raises on an out-of-range index (eager calls check first); "
          "the kernel writes nothing for it",
          f"    ok = mask & (j >= 0) & (j < xsize{dim})"]
    sc = []
    if isinstance(src, Value):
        t = _terms(co, range(R), "src", sp, ("in", effv[id(src)]))
        L.append(f"    v = tl.load(src_ptr + {_sum(t)}, mask=ok)")
        if src.dtype is not o.dtype:
            L.append(f"    v = v.to({_tl(o.dtype)})")
    else:
        L.append(f"    v = {_scalar_value(src, o, sc)}")
    L += _nan_canon("v", o.dtype, how)
    dst = [f"j * {_stride(sp, 'out0', ('out', 0), dim)}"]
    dst += _terms(co, [d for d in range(R) if d != dim], "out0", sp, ("out", 0))
    L.append(f"    dst = out0_ptr + {' + '.join(dst)}")
    L.append(write)
    what = {None: "stores", "add": "atomic adds", "max": "atomic max", "min": "atomic min",
            "mul": "masked stores"}[how]
    scatter = _elementwise_kernel(kname, group, f"launch 2 of 2: {what} along dim {dim}, one "
                                  "lane per index element", params + sc + sizes + list(sp), L,
                                  eff, _prod(I), interpret)
    scatter.before = (_copy_phase(kname, group, eff, effv[id(x)], x, o, interpret,
                                  how if o.dtype is not dt.bool_ else None),)
    return scatter


def _slice_scatter(group, interpret=False):
    """slice_scatter(x, src, dim, start, stop, step): one lane per output element; positions
    start, start + step, ... (< stop) along dim read src, the others x."""
    eff, n = _lone(group, "slice_scatter")
    x, src = n.inputs
    o = n.outputs[0]
    O = tuple(o.shape)
    R = len(O)
    a = n.attrs
    d = a["dim"] % R
    step = a.get("step") or 1
    s0, s1, st = slice(a.get("start"), a.get("stop"), step).indices(O[d])
    cnt = len(range(s0, s1, st))
    effv = {id(w): k for k, (w, _, _) in enumerate(eff)}
    kx, ks = effv[id(x)], effv[id(src)]
    big, isig, numel, co, sizes, sp, L = _lanes(O, note="output coordinates")
    params = [Param("x_ptr", "*" + SIG[x.dtype.name], ("in", kx)),
              Param("src_ptr", "*" + SIG[src.dtype.name], ("in", ks)),
              Param("out0_ptr", "*" + SIG[o.dtype.name], ("out", 0)), numel,
              Param("start", isig, ("value", s0)), Param("count", isig, ("value", cnt))]
    L.append(f"    # {o.name}: slice_scatter({x.name}, {src.name}, dim={d}, start={s0}, "
             f"stop={s1}, step={st})")
    c = co[d] if co[d] != "0" else "offs * 0"
    L.append(f"    q = {c} - start    # position along dim {d} from the slice's start")
    if st == 1:
        L.append("    ins = mask & (q >= 0) & (q < count)")
        k = "q"
    else:
        L.append(f"    ins = mask & (q >= 0) & (q < count * {st}) & (q % {st} == 0)")
        k = f"(q // {st})"
    ts = _terms(co, [e for e in range(R) if e != d], "src", sp, ("in", ks))
    if src.shape[d] > 1:
        ts.insert(0, f"{k} * {_stride(sp, 'src', ('in', ks), d)}")
    L += _x_or_src_lines("ins", co, R, x, src, o, sp, kx, ts)
    return _elementwise_kernel(f"slice_scatter_{group.id}", group,
                               "one lane per output element: src inside the slice, x elsewhere",
                               params + sizes + list(sp), L, eff, _prod(O), interpret)


def _x_or_src_lines(inside, co, R, x, src, o, sp, kx, src_terms):
    """The store of slice_scatter / diagonal_scatter: x's element where `inside` is false, src's
    (at src_terms) where it is true, in the output's dtype."""
    L = [f"    v = tl.load(x_ptr + {_sum(_terms(co, range(R), 'x', sp, ('in', kx)))}, "
         f"mask=mask & ({inside} == 0))"]
    ld = f"tl.load(src_ptr + {_sum(src_terms)}, mask={inside})"
    if src.dtype is not o.dtype:
        ld += f".to({_tl(o.dtype)})"
    if x.dtype is not o.dtype:
        L.append(f"    v = v.to({_tl(o.dtype)})")
    L.append(f"    v = tl.where({inside}, {ld}, v)")
    L.append(f"    tl.store(out0_ptr + {_sum(_terms(co, range(R), 'out0', sp, ('out', 0)))}, v, "
             "mask=mask)")
    return L


def _diagonal_scatter(group, interpret=False):
    """diagonal_scatter(x, src, offset, dim1, dim2): one lane per output element; elements on
    the diagonal (coordinate along dim2 - coordinate along dim1 == offset) read src (its last
    dim runs along the diagonal, the others are x's remaining dims in order), the others x."""
    eff, n = _lone(group, "diagonal_scatter")
    x, src = n.inputs
    o = n.outputs[0]
    O = tuple(o.shape)
    R = len(O)
    a = n.attrs
    off = int(a.get("offset", 0))
    d1, d2 = a.get("dim1", 0) % R, a.get("dim2", 1) % R
    effv = {id(w): k for k, (w, _, _) in enumerate(eff)}
    kx, ks = effv[id(x)], effv[id(src)]
    big, isig, numel, co, sizes, sp, L = _lanes(O, note="output coordinates")
    params = [Param("x_ptr", "*" + SIG[x.dtype.name], ("in", kx)),
              Param("src_ptr", "*" + SIG[src.dtype.name], ("in", ks)),
              Param("out0_ptr", "*" + SIG[o.dtype.name], ("out", 0)), numel]
    L.append(f"    # {o.name}: diagonal_scatter({x.name}, {src.name}, offset={off}, dim1={d1}, "
             f"dim2={d2})")
    c1 = co[d1] if co[d1] != "0" else "offs * 0"
    c2 = co[d2] if co[d2] != "0" else "offs * 0"
    L.append(f"    ond = mask & ({c2} - {c1} == {off})    # on the diagonal")
    rest = [e for e in range(R) if e not in (d1, d2)]
    cs = {r: co[e] for r, e in enumerate(rest)}
    cs[len(rest)] = (c1 if off >= 0 else c2) if src.shape[-1] != 1 else "0"
    ts = _terms(cs, range(len(rest) + 1), "src", sp, ("in", ks))
    L += _x_or_src_lines("ond", co, R, x, src, o, sp, kx, ts)
    return _elementwise_kernel(f"diagonal_scatter_{group.id}", group,
                               "one lane per output element: src on the diagonal, x elsewhere",
                               params + sizes + list(sp), L, eff, _prod(O), interpret)


def _elementwise_kernel(kname, group, note, params, body, eff, numel, interpret=False):
    """An extern group's kernel over `numel` elements (its output's, or a scatter's indexed
    elements), BLOCK per program (the body computes `offs`, `mask` and stores). The
    interpreter runs one program at a time: there bigger blocks, fewer programs."""
    src = _header(kname, group, "extern", note)
    src += ["@triton.jit",
            f"def {kname}(" + ", ".join([p.name for p in params] + ["BLOCK: tl.constexpr"]) + "):"]
    src += body
    block = min(16384 if interpret else 1024, _pow2(max(numel, 16)))
    grid = (lambda meta, numel=numel: ((numel + meta["BLOCK"] - 1) // meta["BLOCK"],))
    return GroupKernel(kname, "\n".join(src) + "\n", params, "extern", eff, grid,
                       {"BLOCK": block}, 4, group)


# ---------------------------------------------------------------- cat

def _cat(group):
    """cat(x0, x1, ..., dim): one program per BLOCK output elements; each element loads from
    the one input whose span along `dim` holds it (the other loads are masked off)."""
    eff, n = _lone(group, "cat")
    o = n.outputs[0]
    O = tuple(o.shape)
    R = len(O)
    if R == 0:
        raise TritonCodegenError(f"{group.name}: cat of 0-d tensors")
    dim = n.attrs.get("dim", 0) % R
    effv = {id(v): k for k, (v, _, _) in enumerate(eff)}
    # (legacy: 1-D empty tensors join any cat and add nothing)
    parts = [x for x in n.inputs if not (len(x.shape) == 1 and x.shape[0] == 0 and R != 1)]
    big = _prod(O) >= 2**31 or any(_prod(x.shape) >= 2**31 for x in parts)
    isig = "i64" if big else "i32"
    params = [Param(f"x{t}_ptr", "*" + SIG[x.dtype.name], ("in", effv[id(x)]))
              for t, x in enumerate(parts)]
    params += [Param("out0_ptr", "*" + SIG[o.dtype.name], ("out", 0)),
               Param("numel", isig, ("value", _prod(O)))]
    sizes, strides = [], []
    L = ["    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)" if not big else
         "    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)",
         "    mask = offs < numel", "    r = offs"]
    live = [d for d in range(R) if O[d] != 1 or d == dim]
    for j, d in enumerate(reversed(live)):
        if j == len(live) - 1:
            L.append(f"    i{d} = r")
        else:
            sizes.append(Param(f"size{d}", isig, ("value", O[d])))
            L += [f"    i{d} = r % size{d}", f"    r = r // size{d}"]
    L.append(f"    v = tl.zeros([BLOCK], {_tl(o.dtype)})")
    start = 0
    for t, x in enumerate(parts):
        m = x.shape[dim]
        if m == 0:
            continue
        k = effv[id(x)]
        L.append(f"    # {x.name}: output positions {start}..{start + m - 1} along dim {dim}")
        L.append(f"    m{t} = mask & (i{dim} >= {start}) & (i{dim} < {start + m})")
        terms = [f"(i{dim} - {start}) * x{t}_stride{dim}"]
        strides.append(Param(f"x{t}_stride{dim}", isig, ("stride", "in", k, dim)))
        for d in range(R):
            if d != dim and x.shape[d] != 1:
                terms.append(f"i{d} * x{t}_stride{d}")
                strides.append(Param(f"x{t}_stride{d}", isig, ("stride", "in", k, d)))
        ld = f"tl.load(x{t}_ptr + {' + '.join(terms)}, mask=m{t})"
        if x.dtype is not o.dtype:
            ld += f".to({_tl(o.dtype)})"
        L.append(f"    v = tl.where(m{t}, {ld}, v)")
        start += m
    o_terms = [f"i{d} * out0_stride{d}" for d in range(R) if O[d] != 1]
    strides += [Param(f"out0_stride{d}", isig, ("stride", "out", 0, d))
                for d in range(R) if O[d] != 1]
    L.append(f"    tl.store(out0_ptr + {' + '.join(o_terms) or 'offs * 0'}, v, mask=mask)")
    return _elementwise_kernel(f"cat_{group.id}", group,
                               f"cat of {len(parts)} along dim {dim}, one load per element",
                               params + sizes + strides, L, eff, _prod(O))


# ---------------------------------------------------------------- max pooling

def _philox(group, interpret=False):
    """philox(state, kind, shape, dtype, params): the device generators' fill kernel with its
    (seed, offset) read from the state input, one lane per element in C order, so a compiled
    program draws what eager draws at the same generator state (triton_random.draw_lines)."""
    from .triton_random import PARAM_NAMES, _TL, check_kind, draw_lines, launch_params
    eff, n = _lone(group, "philox")
    o = n.outputs[0]
    kind, dtype = n.attrs["kind"], n.attrs["dtype"]
    check_kind(kind, dtype)
    ks = {id(v): k for k, (v, _, _) in enumerate(eff)}[id(n.inputs[0])]
    numel = _prod(o.shape)
    names = PARAM_NAMES[kind]
    params = [Param("state_ptr", "*i64", ("in", ks)),
              Param("out0_ptr", "*" + SIG[o.dtype.name], ("out", 0)),
              Param("numel", "i64", ("value", numel))] + \
             [Param(p, "i64", ("value", v)) for p, v in zip(names, launch_params(
                 kind, n.attrs["params"]))]
    body = ["    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)",
            "    mask = offs < numel",
            f"    # {o.name}: {kind} draw {list(o.shape)} {o.dtype}, element i from Philox "
            f"counter offset + i",
            "    seed = tl.load(state_ptr)",
            "    offset = tl.load(state_ptr + 1)"] + draw_lines(kind, dtype, "offs") + \
           [f"    tl.store(out0_ptr + offs, v.to(tl.{_TL[dtype.name]}), mask=mask)"]
    return _elementwise_kernel(f"philox_{group.id}", group, f"{kind} draw (Philox4x32-10)",
                               params, body, eff, numel, interpret)


def _arange(group, interpret=False):
    """arange(start, end, step): element i is start + i * step, computed in int64 for integer
    starts and steps, else in float64 (as np.arange computes it), then cast; float bounds
    travel as float64 bit patterns (Triton passes Python floats as fp32)."""
    from .triton_random import _TL, _bits
    eff, n = _lone(group, "arange")
    o = n.outputs[0]
    start, step = n.attrs["start"], n.attrs["step"]
    ints = all(isinstance(a, int) and not isinstance(a, bool) for a in (start, step))
    if o.dtype.name not in _TL or o.dtype.is_complex:
        raise TritonCodegenError(f"{group.name}: no arange kernel for {o.dtype}")
    numel = _prod(o.shape)
    params = [Param("out0_ptr", "*" + SIG[o.dtype.name], ("out", 0)),
              Param("numel", "i64", ("value", numel)),
              Param("start", "i64", ("value", int(start) if ints else _bits(start))),
              Param("step", "i64", ("value", int(step) if ints else _bits(step)))]
    body = ["    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)",
            "    mask = offs < numel",
            f"    # {o.name}: arange({start!r}, {n.attrs['end']!r}, {step!r}) {o.dtype}"]
    if ints:
        body.append("    v = start + offs * step")
    else:
        body += ["    start_ = start.to(tl.int64).to(tl.float64, bitcast=True)",
                 "    step_ = step.to(tl.int64).to(tl.float64, bitcast=True)",
                 "    v = start_ + offs.to(tl.float64) * step_"]
    body.append(f"    tl.store(out0_ptr + offs, v.to(tl.{_TL[o.dtype.name]}), mask=mask)")
    return _elementwise_kernel(f"arange_{group.id}", group, "arange: start + i * step",
                               params, body, eff, numel, interpret)


def _lone(group, op):
    """(effective inputs, node) of a group that holds one `op` (views of its inputs fold)."""
    eff, nodes = _fold_views(group)
    if len(nodes) != 1 or nodes[0].op != op:
        raise TritonCodegenError(f"{group.name}: only a lone {op} is generated")
    return eff, nodes[0]


def _coords(flat, shape, var, size_name, isig, ind="    "):
    """Lines that split the row-major flat index `flat` into one coordinate per dim of
    `shape` (named var0, var1, ...): ({dim: expression, '0' for a size-1 dim}, lines, the
    size parameters they read)."""
    co = {d: "0" for d in range(len(shape))}
    live = [d for d in range(len(shape)) if shape[d] != 1]
    lines, params, cur = [], [], flat
    for j, d in enumerate(reversed(live)):
        if j == len(live) - 1:
            lines.append(f"{ind}{var}{d} = {cur}")
        else:
            pn = f"{size_name}{d}"
            params.append(Param(pn, isig, ("value", shape[d])))
            lines += [f"{ind}{var}{d} = {cur} % {pn}", f"{ind}{var}r = {cur} // {pn}"]
            cur = f"{var}r"
        co[d] = f"{var}{d}"
    return co, lines, params


def _terms(co, dims, ptr, stride_params, role):
    """Address terms coordinate * stride over `dims` (size-1 dims need none); adds the
    stride parameters it reads (role: ('in'|'out', buffer index))."""
    out = []
    for d in dims:
        if co[d] == "0":
            continue
        pn = f"{ptr}_stride{d}"
        if all(p.name != pn for p in stride_params):
            stride_params.append(Param(pn, stride_params.isig, ("stride",) + role + (d,)))
        out.append(f"{co[d]} * {pn}")
    return out


class _Strides(list):
    def __init__(self, isig):
        super().__init__()
        self.isig = isig


def _affine(*parts):
    """'a * 2 - 1 + k0' from (coefficient, name) pairs and int constants, dropping zeros."""
    s = ""
    for p in parts:
        if isinstance(p, tuple):
            c, v = p
            if c == 0 or v == "0":
                continue
            t = v if c == 1 else f"{v} * {c}"
            s += (" + " if s else "") + t
        elif p:
            s += (f" + {p}" if p > 0 else f" - {-p}") if s else str(p)
    return s or "0"


def _window_max(group, interpret=False):
    """window_max(x, kernel, stride, dilation, padding) -> (values, indices): one lane per
    output element; loops over the window's offsets in row-major order with masked loads
    (implicit padding is never read, so never taken) and keeps PyTorch's scan: an element is
    taken when it is the first in-bounds one, greater than the best so far, or NaN."""
    eff, n = _lone(group, "window_max")
    x = n.inputs[0]
    if x.dtype is dt.bool_:
        raise TritonCodegenError(f"{group.name}: window_max of bool (NumPy lowering)")
    a = n.attrs
    kernel, stride, dil = tuple(a["kernel"]), tuple(a["stride"]), tuple(a["dilation"])
    pad = tuple((int(p[0]), int(p[1])) for p in a["padding"])
    nd = len(kernel)
    vals, inds = n.outputs
    O = tuple(vals.shape)
    R = len(O)
    lead = R - nd
    kx = next(k for k, (v, _, _) in enumerate(eff) if v is x)
    big = max(_prod(x.shape), _prod(O)) >= 2**31
    isig = "i64" if big else "i32"
    outs = list(group.outputs)
    params = [Param("x_ptr", "*" + SIG[x.dtype.name], ("in", kx))]
    params += [Param(f"out{k}_ptr", "*" + SIG[o.dtype.name], ("out", k))
               for k, o in enumerate(outs)]
    params.append(Param("numel", isig, ("value", _prod(O))))
    co, lines, sizes = _coords("offs", O, "i", "size", isig)
    sp = _Strides(isig)
    L = ["    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)" if not big else
         "    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)",
         "    mask = offs < numel",
         "    # output coordinates: leading dims, then one window position per spatial dim"]
    L += lines
    base = _terms(co, range(lead), "x", sp, ("in", kx))
    L.append(f"    xbase = {' + '.join(base) or 'offs * 0'}    # the plane of x this lane reads")
    tx = _tl(x.dtype)
    win = "x".join(map(str, kernel))
    L += [f"    # PyTorch's max-pool scan over the {win} window in row-major order: an element is "
          "taken when",
          "    # it is the first in-bounds one, greater than the best so far, or NaN (so the "
          "first maximum",
          "    # wins and a window holding NaN gives its last NaN); padding is never read",
          f"    best = tl.full([BLOCK], 0, {tx})",
          "    arg = tl.full([BLOCK], -1, tl.int64)    # flat index in the plane; -1: none yet"]
    ok_prev, flat_prev, ind = "mask", None, "    "
    addr = ["xbase"]
    for i in range(nd):
        d = lead + i
        sizes.append(Param(f"xsize{d}", isig, ("value", x.shape[d])))
        L.append(f"{ind}for k{i} in range({kernel[i]}):")
        ind += "    "
        L.append(f"{ind}pos{i} = " + _affine((stride[i], co[d]), -pad[i][0], (dil[i], f"k{i}")))
        L.append(f"{ind}ok{i} = {ok_prev} & (pos{i} >= 0) & (pos{i} < xsize{d})")
        L.append(f"{ind}flat{i} = " + (f"flat{i - 1} * xsize{d} + pos{i}" if i else f"pos{i}"))
        pn = f"x_stride{d}"
        if all(p.name != pn for p in sp):
            sp.append(Param(pn, isig, ("stride", "in", kx, d)))
        addr.append(f"pos{i} * {pn}")
        ok_prev, flat_prev = f"ok{i}", f"flat{i}"
    L += [f"{ind}v = tl.load(x_ptr + {' + '.join(addr)}, mask={ok_prev}, other=0)",
          f"{ind}take = {ok_prev} & ((v > best) | (v != v) | (arg < 0))",
          f"{ind}best = tl.where(take, v, best)",
          f"{ind}arg = tl.where(take, {flat_prev}.to(tl.int64), arg)"]
    for k, o in enumerate(outs):
        t = _terms(co, range(R), f"out{k}", sp, ("out", k))
        L.append(f"    tl.store(out{k}_ptr + {' + '.join(t) or 'offs * 0'}, "
                 f"{'best' if o is vals else 'arg'}, mask=mask)")
    params += sizes + list(sp)
    kname = f"window_max_{group.id}"
    geo = (f"kernel {list(kernel)}, stride {list(stride)}, dilation {list(dil)}, "
           f"padding {[list(p) for p in pad]}")
    src = _header(kname, group, "extern", f"max pooling, one lane per output element; {geo}")
    src += ["@triton.jit",
            f"def {kname}(" + ", ".join([p.name for p in params] + ["BLOCK: tl.constexpr"]) + "):"]
    src += L
    numel = _prod(O)
    # the interpreter runs one program at a time: bigger blocks, fewer programs
    block = min(16384 if interpret else 1024, _pow2(max(numel, 16)))
    grid = (lambda meta, numel=numel: ((numel + meta["BLOCK"] - 1) // meta["BLOCK"],))
    return GroupKernel(kname, "\n".join(src) + "\n", params, "extern", eff, grid,
                       {"BLOCK": block}, 4, group)


_ATOMIC = _ATOMIC_ADD


def _plane_scatter(group, interpret=False):
    """plane_scatter(g, idx, size, unique) -> zeros[..., *size] with each g added at its flat
    index in its plane (max pooling's backward). Each program owns BLOCK_R planes (a tile of
    BLOCK_R planes x BLOCK positions): it zeroes them, then (after a barrier, so its zeros are
    written first) adds their gradients: a
    plain store of 0 + g when the windows are disjoint (unique: at most one per position),
    tl.atomic_add otherwise (on a GPU the order of the adds, hence the float rounding, may
    differ from the host's; the zeroing is the same program's, so no second launch)."""
    eff, n = _lone(group, "plane_scatter")
    g, idx = n.inputs[0], n.inputs[1]
    o = n.outputs[0]
    size = tuple(n.attrs["size"])
    unique = bool(n.attrs.get("unique", False))
    if not unique and o.dtype.name not in _ATOMIC:
        raise TritonCodegenError(f"{group.name}: plane_scatter of {o.dtype.name} over "
                                 "overlapping windows: no atomic add (NumPy lowering)")
    if o.dtype is dt.bool_:
        raise TritonCodegenError(f"{group.name}: plane_scatter of bool (NumPy lowering)")
    nd = len(size)
    OS, GS = tuple(o.shape), tuple(g.shape)
    R = len(OS)
    lead = R - nd
    plane, count, rows = _prod(size), _prod(GS[lead:]), _prod(OS[:lead])
    kg = next(k for k, (v, _, _) in enumerate(eff) if v is g)
    ki = next(k for k, (v, _, _) in enumerate(eff) if v is idx)
    big = max(_prod(GS), _prod(OS)) >= 2**31
    isig = "i64" if big else "i32"
    if len(group.outputs) != 1:
        raise TritonCodegenError(f"{group.name}: plane_scatter group without its output")
    params = [Param("g_ptr", "*" + SIG[g.dtype.name], ("in", kg)),
              Param("index_ptr", "*" + SIG[idx.dtype.name], ("in", ki)),
              Param("out0_ptr", "*" + SIG[o.dtype.name], ("out", 0)),
              Param("plane", isig, ("value", plane)), Param("count", isig, ("value", count))]
    sp = _Strides(isig)
    lead_shape = OS[:lead]
    co, lines, sizes = _coords("rows", lead_shape, "i", "size", isig)
    params.append(Param("nrows", isig, ("value", rows)))
    L = ["    # BLOCK_R planes per program (the leading dims flattened), BLOCK positions at a time",
         "    rows = tl.program_id(0)" + (".to(tl.int64)" if big else "")
         + " * BLOCK_R + tl.arange(0, BLOCK_R)",
         "    rmask = (rows < nrows)[:, None]"]
    L += lines
    for nm, ptr, role in (("obase", "out0", ("out", 0)), ("gbase", "g", ("in", kg)),
                          ("ibase", "index", ("in", ki))):
        t = _terms(co, range(lead), ptr, sp, role)
        L.append(f"    {nm} = ({' + '.join(t) or 'rows * 0'})[:, None]")

    def spatial(var, shape, size_name, ptr, role, ind):
        full = {lead + d: s for d, s in enumerate(shape)}
        c, ls, ps = _coords(var, [full.get(d, 1) for d in range(R)], var, size_name, isig, ind)
        sizes.extend(ps)          # (the leading dims are size 1 here: they are the program's)
        t = _terms(c, range(lead, R), ptr, sp, role)
        return ls, t

    def row_vec(t, var):          # a [BLOCK] offset as a row of the [BLOCK_R, BLOCK] tile
        return f"({' + '.join(t) or var + ' * 0'})[None, :]"

    tz = _tl(o.dtype)
    L += ["    # 1. zero the planes", "    for start in range(0, plane, BLOCK):",
          "        p = start + tl.arange(0, BLOCK)"]
    ls, t = spatial("p", size, "psize", "out0", ("out", 0), "        ")
    L += ls
    L.append(f"        tl.store(out0_ptr + obase + {row_vec(t, 'p')}, "
             f"tl.zeros([BLOCK_R, BLOCK], {tz}), mask=rmask & (p < plane)[None, :])")
    L += ["    tl.debug_barrier()    # this program's zeros are written before it adds to them",
          "    # 2. each gradient to its flat index in its plane "
          + ("(disjoint windows: at most one per position, a store)" if unique else
             "(overlapping windows: atomic adds)"),
          "    for start in range(0, count, BLOCK):",
          "        q = start + tl.arange(0, BLOCK)",
          "        m = rmask & (q < count)[None, :]"]
    ls, tg = spatial("q", GS[lead:], "qsize", "g", ("in", kg), "        ")
    L += ls
    ti = _terms({d: f"q{d}" if GS[d] != 1 else "0" for d in range(R)}, range(lead, R), "index",
                sp, ("in", ki))
    L += [f"        j = tl.load(index_ptr + ibase + {row_vec(ti, 'q')}, mask=m, other=0)",
          f"        v = tl.load(g_ptr + gbase + {row_vec(tg, 'q')}, mask=m, other=0)",
          "        # the NumPy lowering raises on an index outside the plane; the kernel skips it",
          "        ok = m & (j >= 0) & (j < plane)"]
    ls, tj = spatial("j", size, "psize", "out0", ("out", 0), "        ")
    L += ls                       # the flat index split like p (the same size parameters)
    dst = f"out0_ptr + obase + {' + '.join(tj) or 'j * 0'}"
    if unique:
        zero = "0.0" if o.dtype.is_floating_point else "0"
        L.append(f"        tl.store({dst}, v + {zero}, mask=ok)    "
                 "# 0 + g, as the add into zeros: -0.0 becomes +0.0")
    else:
        L.append(f"        tl.atomic_add({dst}, v, mask=ok, sem=\"relaxed\")")
    # size parameters may repeat (p and j split by the same sizes)
    seen, ps = set(), []
    for p in sizes:
        if p.name not in seen:
            seen.add(p.name)
            ps.append(p)
    params += ps + list(sp)
    kname = f"plane_scatter_{group.id}"
    mode = "disjoint windows: stores" if unique else "overlapping windows: atomic adds"
    src = _header(kname, group, "extern", f"max pooling backward, one program per plane; {mode}")
    src += ["@triton.jit",
            f"def {kname}(" + ", ".join([p.name for p in params] + ["BLOCK_R: tl.constexpr",
                                                                   "BLOCK: tl.constexpr"]) + "):"]
    src += L
    block = min(1024, _pow2(max(plane, count, 16)))
    # small planes share a program; the interpreter (one program at a time) takes big tiles
    block_r = min(_pow2(rows), max(1, (65536 if interpret else 2048) // block))
    grid = (lambda meta, rows=rows: ((rows + meta["BLOCK_R"] - 1) // meta["BLOCK_R"],))
    return GroupKernel(kname, "\n".join(src) + "\n", params, "extern", eff, grid,
                       {"BLOCK": block, "BLOCK_R": block_r}, 4, group)


# extern ops with a generated kernel of their own (generate() dispatches on the lone op)
_INDEXED = {"gather": _gather, "index": _index, "index_put": _index_put, "scatter": _scatter,
            "slice_scatter": _slice_scatter, "diagonal_scatter": _diagonal_scatter}
