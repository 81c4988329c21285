"""nn.parallel: DistributedDataParallel (one process per rank) and DataParallel.

DistributedDataParallel follows PyTorch's reducer:
  - construction checks that every rank has the same parameter shapes, then broadcasts
    parameters and buffers from rank 0;
  - parameters (those requiring grad) are packed into buckets in reverse registration order,
    which is roughly the order backward produces their gradients; the first bucket is capped
    at 1 MiB (or bucket_cap_mb when smaller) so communication starts early, the rest at
    bucket_cap_mb (25 MB);
  - a post-accumulate-grad hook on each parameter copies its .grad into its bucket; when a
    bucket is complete (and every bucket before it was launched, so all ranks issue the same
    sequence) it is all-reduced with a nonblocking MPI Iallreduce (NCCL: async on a stream)
    while backward goes on. Each hook also polls the requests in flight, which is what makes
    MPICH progress them during backward;
  - a callback queued on the autograd engine runs when backward ends: it waits for every
    bucket, divides by the world size and writes the averages back into .grad;
  - no_sync() skips all of that, so gradients accumulate locally until the next synced
    backward, which then averages the accumulated sums;
  - find_unused_parameters=True walks the autograd graph from the forward's outputs to find
    parameters that will get no gradient and marks them ready at the first hook (their bucket
    slot holds their current .grad or zeros); a parameter unused on every rank keeps its .grad
    untouched (a usage mask is all-reduced alongside);
  - broadcast_buffers=True broadcasts buffers (BatchNorm running statistics) from rank 0 before
    each forward.

compile(): DDP(torch.compile(model)) and torch.compile(ddp) both work, and the all-reduces
overlap with the compiled backward. A compiled region's backward is one node of the autograd
engine running one generated program; DDP registers a gradient-ready callback on each parameter
(framework._compile.register_compiled_grad_ready), which the program calls right after the
group that produces that parameter's gradient (Program.run's on_output). The bucket takes the
gradient then (plus the .grad accumulated before, e.g. under no_sync(), which is what .grad will
be), and a complete bucket's non-blocking all-reduce is launched while the program computes the
rest of the backward; the post-accumulate-grad hook that follows for that parameter is skipped
(readiness is tracked per backward), and the end-of-backward callback waits and averages as in
eager mode. This applies to a parameter whose whole gradient comes from one region in a plain
backward(); one that also gets a gradient elsewhere (a second region, eager code), or has a
tensor hook (register_hook) that may change its gradient, goes through the post-accumulate
hook as before. The Triton backend hands its outputs over only when its program ends (no
overlap inside it). As in eager mode, MPICH progresses a launched request when a later gradient's
callback polls the requests in flight, or in the final wait. In a compiled function that also runs
loss.backward() (and the optimizer step), the gradient hooks need the gradients' values: that is
a graph break (logged in the compiled function's stats), the all-reduces run eagerly there and
the rest stays compiled; the all-reduces are not traced into the compiled graph.
"""
import contextlib
import warnings
import weakref

import numpy as np

from .. import distributed as dist
from .._dispatch import STATE, wrap
from ..autograd import Variable
from ..tensor import Tensor
from .modules.module import Module

_FIRST_BUCKET_BYTES = 1024 * 1024       # dist._DEFAULT_FIRST_BUCKET_BYTES in PyTorch


class _Bucket:
    __slots__ = ("params", "index", "offsets", "flat", "pending", "req", "dtype", "fut")

    def __init__(self, params, index, dtype):
        self.params = params              # [(param index, param)]
        self.index = index
        self.dtype = dtype
        self.offsets = []
        n = 0
        for _, p in params:
            self.offsets.append(n)
            n += p._data.size
        self.flat = np.empty(n, dtype.np)
        self.pending = 0
        self.req = None
        self.fut = None                   # a comm hook's Future


def _bucketize(params, cap_bytes):
    """Indices into `params` grouped into buckets: reverse order, one open bucket per dtype, a
    bucket closes once it reaches its limit (the first of each dtype: min(1 MiB, cap))."""
    open_, sizes, done = {}, {}, []
    for i in reversed(range(len(params))):
        p = params[i]
        dt = p._dtype
        open_.setdefault(dt, []).append(i)
        sizes[dt] = sizes.get(dt, 0) + p._data.nbytes
        first = not any(params[b[0]]._dtype is dt for b in done)
        limit = min(_FIRST_BUCKET_BYTES, cap_bytes) if first else cap_bytes
        if sizes[dt] >= limit:
            done.append(open_.pop(dt))
            sizes[dt] = 0
    done.extend(b for b in open_.values() if b)
    return done


class DistributedDataParallel(Module):
    def __init__(self, module, device_ids=None, output_device=None, dim=0,
                 broadcast_buffers=True, init_sync=True, process_group=None, bucket_cap_mb=None,
                 find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False,
                 delay_all_reduce_named_params=None, param_to_hook_all_reduce=None,
                 mixed_precision=None, device_mesh=None):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be an nn.Module, got "
                            f"{type(module).__name__}")
        if not any(p.requires_grad for p in module.parameters()):
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't "
                               "have any parameter that requires a gradient.")
        if mixed_precision is not None or device_mesh is not None:
            raise NotImplementedError("DistributedDataParallel: mixed_precision and device_mesh "
                                      "are not supported")
        if bucket_cap_mb is None:
            bucket_cap_mb = 25
        if bucket_cap_mb <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got "
                             f"{bucket_cap_mb}")
        self.module = module
        self.process_group = dist._pg(process_group, "DistributedDataParallel")
        self._pg_impl = self.process_group._impl
        self.device_ids = device_ids
        self.output_device = output_device
        self.dim = dim
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        self.bucket_bytes_cap = int(bucket_cap_mb * 1024 * 1024)
        self._event_log = None            # a list to append (event, detail) tuples to (tests)

        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._param_names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self._buffers_list = [b for _, b in module.named_buffers()]
        self._verify_same_model()
        if init_sync:
            self._broadcast_tensors(self._params + self._buffers_list)

        buckets = _bucketize(self._params, self.bucket_bytes_cap)
        self._buckets = [_Bucket([(i, self._params[i]) for i in b], k, self._params[b[0]]._dtype)
                         for k, b in enumerate(buckets)]
        self._where = {}                  # param index -> (bucket, slot)
        for b in self._buckets:
            for s, (i, _) in enumerate(b.params):
                self._where[i] = (b, s)
        self.bucket_sizes = [int(b.flat.nbytes) for b in self._buckets]

        self._armed = False               # set by a forward whose backward must sync
        self._ready = None                # per-iteration: which params delivered
        self._next = 0                    # next bucket to launch (launch order is fixed)
        self._queued = False
        self._unused = ()
        self._used_mask = self._used_req = None
        me = weakref.ref(self)            # hooks must not keep the wrapper alive
        self._hook_handles = [p.register_post_accumulate_grad_hook(_hook(me, i))
                              for i, p in enumerate(self._params)]
        # inside a compiled region's backward program: as soon as the program has produced a
        # parameter's gradient (the post-accumulate hook above then skips that parameter)
        from .._compile import register_compiled_grad_ready
        self._hook_handles += [register_compiled_grad_ready(p, _early_hook(me, i))
                               for i, p in enumerate(self._params)]
        self._early = set()               # per-iteration: params delivered by the compiled hook
        self._comm_hook = None            # (state, hook) from register_comm_hook

    # ---- construction ------------------------------------------------------------------------
    def _verify_same_model(self):
        pg = self.process_group
        if pg.size() == 1:
            return
        mine = [(n, tuple(p.shape), p._dtype.name) for n, p in zip(self._param_names,
                                                                     self._params)]
        everyone = [None] * pg.size()
        dist.all_gather_object(everyone, mine, group=pg)
        for r, theirs in enumerate(everyone):
            if theirs != everyone[0]:
                diff = next(((a, b) for a, b in zip(everyone[0], theirs) if a != b),
                            (f"{len(everyone[0])} parameters", f"{len(theirs)} parameters"))
                raise RuntimeError(
                    "DistributedDataParallel expects the same model on every rank: rank "
                    f"{pg._ranks[r]} has {diff[1]} where rank {pg._ranks[0]} has {diff[0]}")

    def _broadcast_tensors(self, tensors):
        """Overwrite `tensors` with rank 0's values: one broadcast per dtype."""
        if self.process_group.size() == 1 or not tensors:
            return
        dist._broadcast_flat(self._pg_impl, tensors)

    # ---- forward -----------------------------------------------------------------------------
    def forward(self, *inputs, **kwargs):
        if self._armed and self._ready is not None and self._queued:
            raise RuntimeError("DistributedDataParallel: forward called while the previous "
                               "backward's gradient reduction is still in progress")
        if self.broadcast_buffers and self.require_forward_param_sync and self._buffers_list:
            self._broadcast_tensors(self._buffers_list)
        out = self.module(*inputs, **kwargs)
        if STATE.grad_enabled and self.require_backward_grad_sync and self.training:
            self._prepare(out)
        else:
            self._armed = False
        return out

    def _prepare(self, out):
        self._armed = True
        self._ready = [False] * len(self._params)
        for b in self._buckets:
            b.pending = len(b.params)
            b.req = None
        self._next = 0
        self._queued = False
        self._unused = ()
        self._early = set()
        if self.find_unused_parameters:
            reached = _reached_leaves(out)
            self._unused = [i for i, p in enumerate(self._params) if id(p) not in reached]

    # ---- backward: hooks and the end-of-backward callback --------------------------------------
    def _log(self, *ev):
        if self._event_log is not None:
            self._event_log.append(ev)

    def _on_grad(self, i, early=None):
        """Parameter i's gradient is ready: from its post-accumulate-grad hook (early=None:
        read .grad) or from inside a compiled backward program (early: this pass's gradient,
        not yet accumulated into .grad; the post-accumulate hook that follows is skipped)."""
        if not self._armed:
            return                        # no_sync(), eval, or a backward without a forward
        if early is None and i in self._early:
            self._early.discard(i)        # delivered by the compiled backward already
            self._poll()
            return
        if self._ready[i]:
            raise RuntimeError(
                f"Expected to mark a variable ready only once. Parameter "
                f"{self._param_names[i]} got a gradient twice in one iteration (a second "
                "backward through the same forward, or a parameter shared with another "
                "module); DDP supports one backward per forward")
        if not self._queued:
            self._queued = True
            Variable._execution_engine.queue_callback(self._finalize)
            if self.find_unused_parameters:
                self._start_usage_mask()
                for j in self._unused:
                    self._mark(j)
        if early is not None:
            self._early.add(i)
        self._log("grad_ready" if early is None else "grad_ready_compiled",
                  self._param_names[i])
        self._mark(i, early)
        self._poll()

    def _mark(self, i, early=None):
        self._ready[i] = True
        b, s = self._where[i]
        p = self._params[i]
        view = b.flat[b.offsets[s]:b.offsets[s] + p._data.size]
        g = p._grad
        if early is not None:             # what .grad will be: the old .grad + this gradient
            np.copyto(view, np.asarray(early._data).reshape(-1), casting="unsafe")
            if g is not None:
                np.add(np.asarray(g._data).reshape(-1), view, out=view, casting="unsafe")
        elif g is None:
            view[...] = 0
        else:
            np.copyto(view, np.asarray(g._data).reshape(-1), casting="unsafe")
        b.pending -= 1
        while self._next < len(self._buckets) and self._buckets[self._next].pending == 0:
            nb = self._buckets[self._next]
            self._log("allreduce_start", nb.index)
            if self._comm_hook is not None:
                nb.fut = self._run_comm_hook(nb)
            else:
                nb.req = self._pg_impl.allreduce(nb.flat)
            self._next += 1

    def _poll(self):
        for b in self._buckets[:self._next]:
            if b.req is not None and b.req != "hooked" and not b.req.done:
                b.req.test()

    def _start_usage_mask(self):
        self._used_mask = np.ones(len(self._params), np.uint8)
        for j in self._unused:
            self._used_mask[j] = 0
        self._used_req = self._pg_impl.allreduce(self._used_mask, dist.ReduceOp.MAX.value)

    def _finalize(self):
        self._armed = False
        missing = [self._param_names[i] for i, r in enumerate(self._ready) if not r]
        for b in self._buckets[:self._next]:
            if b.fut is not None:         # the hook's result is the bucket's new gradient
                res = b.fut.wait()
                b.fut = None
                if not isinstance(res, Tensor) or res.numel() != b.flat.size:
                    raise RuntimeError(f"DistributedDataParallel: the comm hook's Future must "
                                       f"hold a tensor of the bucket's {b.flat.size} elements, "
                                       f"got {res!r:.80}")
                b.flat[...] = np.asarray(res._data).reshape(-1)
                b.req = "hooked"
            else:
                b.req.wait()
        if missing:
            raise RuntimeError(
                "Expected to have finished reduction in the prior iteration before starting a "
                "new one. This error indicates that your module has parameters that were not "
                "used in producing loss. You can enable unused parameter detection by passing "
                "the keyword argument `find_unused_parameters=True` to "
                "`torch.nn.parallel.DistributedDataParallel`. Parameters which did not receive "
                f"grad for rank {self.process_group.rank()}: {', '.join(missing)}")
        globally_used = None
        if self._used_req is not None:
            self._used_req.wait()
            globally_used = self._used_mask
            self._used_req = None
        n = self.process_group.size()
        for b in self._buckets:
            if b.req == "hooked":
                b.req = None             # the hook reduced (and averaged) it
            else:
                b.flat /= n              # only float/complex params require grad
            for s, (i, p) in enumerate(b.params):
                if globally_used is not None and not globally_used[i]:
                    continue
                avg = b.flat[b.offsets[s]:b.offsets[s] + p._data.size].reshape(p._data.shape)
                g = p._grad
                if g is not None and g._node is None and g._data.flags.writeable \
                        and g._data.shape == avg.shape:
                    np.copyto(g._data, avg)
                    g._bump()
                else:
                    p._grad = wrap(avg.copy(), p._dtype, p._device)
        self._log("backward_end", None)

    # ---- PyTorch API -------------------------------------------------------------------------
    def register_comm_hook(self, state, hook):
        """hook(state, GradBucket) -> Future of the bucket's reduced gradient, run for each
        bucket instead of DDP's all-reduce and averaging (the hook averages)."""
        if not callable(hook):
            raise TypeError(f"register_comm_hook: hook must be callable, got {hook!r}")
        if self._comm_hook is not None:
            raise RuntimeError("register_comm_hook or register_builtin_comm_hook can only be "
                               "called once.")
        self._comm_hook = (state, hook)

    def _register_builtin_comm_hook(self, comm_hook_type):
        from ..distributed.comm_hooks import allreduce_hook, fp16_compress_hook
        hooks = {"ALLREDUCE": allreduce_hook, "FP16_COMPRESS": fp16_compress_hook}
        self.register_comm_hook(self.process_group, hooks[comm_hook_type.name])

    def _run_comm_hook(self, b):
        from ..distributed.comm_hooks import GradBucket
        state, hook = self._comm_hook
        buf = wrap(b.flat, b.dtype, self._params[0]._device)     # shares the bucket's memory
        gb = GradBucket(b.index, buf, [p for _, p in b.params], b.offsets,
                        b.index == len(self._buckets) - 1)
        fut = hook(state, gb)
        if not hasattr(fut, "wait"):
            raise RuntimeError(f"DistributedDataParallel: the comm hook must return a Future, "
                               f"got {type(fut).__name__}")
        return fut

    @contextlib.contextmanager
    def no_sync(self):
        """Gradients accumulate locally inside; the first backward after it averages them."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def __getstate__(self):
        raise TypeError("DistributedDataParallel cannot be pickled; save ddp.module.state_dict()")

    def _remove_hooks(self):
        for h in self._hook_handles:
            h.remove()
        self._hook_handles = []


def _hook(ref, i):
    def hook(param):
        ddp = ref()
        if ddp is not None:
            ddp._on_grad(i)
    return hook


def _early_hook(ref, i):
    def hook(grad):
        ddp = ref()
        if ddp is not None:
            ddp._on_grad(i, grad)
    return hook


def _reached_leaves(out):
    """ids of the leaf tensors the autograd graph of `out` (tensors in any nesting) reaches."""
    stack, seen_nodes, leaves = [], set(), set()

    def visit(o):
        if isinstance(o, Tensor):
            if o._node is not None:
                stack.append(o._node)
            elif o.requires_grad:
                leaves.add(id(o))
        elif isinstance(o, (list, tuple)):
            for x in o:
                visit(x)
        elif isinstance(o, dict):
            for x in o.values():
                visit(x)
    visit(out)
    while stack:
        n = stack.pop()
        if id(n) in seen_nodes:
            continue
        seen_nodes.add(id(n))
        for e in n.edges:
            if e is None:
                continue
            if e[0] is None:
                leaves.add(id(e[1]))
            else:
                stack.append(e[0])
    return leaves


class DataParallel(Module):
    """nn.DataParallel, single-process: Kiln drives one device per process, so this wrapper
    runs `module` on the whole batch on one device (device_ids[0]) and splits nothing. It
    exists so code written for DataParallel runs; for more than one device, or more than one
    machine, use DistributedDataParallel with `kiln run -n N`. State dicts carry the
    `module.` prefix as in PyTorch."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: module must be an nn.Module, got "
                            f"{type(module).__name__}")
        self.module = module
        self.device_ids = list(device_ids) if device_ids is not None else None
        self.output_device = output_device
        self.dim = dim
        if self.device_ids is not None and len(self.device_ids) > 1:
            warnings.warn(f"DataParallel: Kiln runs one device per process; using "
                          f"{self.device_ids[0]} of device_ids={self.device_ids}. Use "
                          "DistributedDataParallel with `kiln run -n N` for several devices.")

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


def data_parallel(module, inputs, device_ids=None, output_device=None, dim=0,
                  module_kwargs=None):
    if not isinstance(inputs, tuple):
        inputs = (inputs,)
    return module(*inputs, **(module_kwargs or {}))
