"""The Triton backends of compile(): every fused group runs as a generated Triton kernel.

    compile_graph(graph, backend)      backend: 'interpret' | 'triton'
      -> (TritonProgram, compiled_now)
    TritonProgram.run(arrays, consts) -> list of output arrays

'interpret'  Triton's interpreter (TRITON_INTERPRET mode, on the CPU) runs every kernel on host
             NumPy memory through runtime.interpret.HostTensor; inputs and outputs are NumPy
             arrays (InterpretArray when an input was one), so CI exercises the GPU code path.
'triton'     real launches on CuPy arrays (device memory) when a GPU exists; NumPy inputs are
             copied to the device and the outputs back, device inputs stay there.

The pipeline is the NumPy backend's up to the fused groups (compiler/backend.py: float
constants lifted to run-time parameters, passes, fusion, scheduling); then one kernel per
group from compiler/codegen/triton_group.generate. Extern groups (sort, linalg, scatter, ...)
run their nodes' NumPy lowerings (on the host; the Triton source names the library fallback
the GPU runtime would call), and so does a group whose kernel cannot be generated or run on
this executor (bfloat16 under the interpreter; complex dtypes, which Triton has no type
for, on every executor): TritonProgram.fallbacks says which and why, and `kiln dump`
prints it.

Float constants: kernels take them as scalar arguments, so one program serves every value
(consts[i] is written into the kernel parameter made from FloatParam i at each run). A
constant a pass folded into a new literal is baked into the source; a run whose value for it
differs builds a program variant for those values (cached).

Every kernel written to the kernel cache also gets a sidecar `<kernel file>.aot.json` with its
ahead-of-time signature (tests walk the cache and compile every kernel to PTX with it).
"""
import json
import logging
import os
import struct
import time

import numpy as np

from .ir.graph import Value
from .ir.registry import AVal

log = logging.getLogger("kiln.compile")

_CACHE = {}
BACKENDS = ("interpret", "triton")


def compile_graph(graph, backend="interpret", cuda_graphs=False):
    if backend not in BACKENDS:
        raise ValueError(f"triton backend: unknown backend {backend!r}; expected {BACKENDS}")
    if backend == "triton":
        from runtime import cuda
        if not cuda.available():
            raise RuntimeError("compile(backend='triton'): no CUDA GPU is available (CuPy sees "
                               "none); use backend='interpret' to run the generated Triton "
                               "kernels through Triton's interpreter on the CPU")
    from .backend import _lift_floats
    from runtime import backends
    key = (backend, graph.key(), cuda_graphs, backends.matmul_allow_tf32)
    prog = _CACHE.get(key)
    if prog is not None:
        return prog, False
    t0 = time.perf_counter()
    lifted = _lift_floats(graph)
    prog = TritonProgram(lifted, backend, [a for n in graph.nodes for a in n.inputs
                                           if type(a) is float], cuda_graphs)
    prog.compile_s = time.perf_counter() - t0
    log.info("compiled %s for %s (%.1f ms): %d groups, %d kernels, %d fallbacks", graph.name,
             backend, prog.compile_s * 1e3, len(prog.steps), prog.n_kernels,
             len(prog.fallbacks))
    _CACHE[key] = prog
    return prog, True


# launches of a step recorded before it launches plainly: the first launch compiles (nothing
# to record) and a kernel's specialisation can settle a run or two later (an input's alignment)
RECORD_TRIES = 4


class _Step:
    __slots__ = ("group", "kernel", "fallback", "scalars", "runs", "time_s", "reshape_only",
                 "recorded", "record_dev", "record_tries")

    def __init__(self, group, kernel, fallback):
        self.group, self.kernel, self.fallback = group, kernel, fallback
        self.reshape_only = False  # set by the program: a reshape view, no kernel
        self.scalars = []          # (Param, FloatParam index) written from consts per run
        self.runs, self.time_s = 0, 0.0
        self.recorded = None       # relaunch.Recorded: the step's launch, replayed on new buffers
        self.record_dev = None     # the GPU it was recorded on (its kernel is loaded there)
        self.record_tries = 0      # launches recorded without a replayable result


class TritonProgram:
    """A compiled graph whose groups run as Triton kernels; the Program interface of
    compiler/backend.py (graph, partition, groups, source, passes_log, memory, planned_bytes,
    naive_bytes, persistent_bytes, group_names, runs, group_runs(), origin, compile_s) plus
    kernels {group name: kernel}, fallbacks {group name: reason}, group_times()."""

    origin = "cold"
    memory = None

    def __init__(self, lifted, backend, const_values, cuda_graphs=False):
        from . import passes as _passes
        from .fusion import partition as _partition, TRITON_CLOSING_CAP
        from .schedule import schedule as _schedule, nbytes
        self.backend = backend
        self.interpret = backend == "interpret"
        self._lifted = lifted
        self._const_values = list(const_values)
        self.graph, self.passes_log = _passes.run_all(lifted)
        self.partition = _partition(self.graph, closing_cap=TRITON_CLOSING_CAP, one_order=True)
        self.schedule = _schedule(self.partition)
        self.groups = self.schedule.order
        self.group_names = [g.name for g in self.groups]
        self.runs = 0
        self.compile_s = 0.0
        self.steps = [self._step(g) for g in self.groups]
        self.kernels = {s.group.name: s.kernel for s in self.steps if s.kernel is not None}
        self.fallbacks = {s.group.name: s.fallback for s in self.steps if s.fallback}
        self.n_kernels = sum(1 for s in self.steps if not s.fallback)
        outs = [o for g in self.groups for o in g.outputs]
        self.naive_bytes = self.planned_bytes = sum(nbytes(o) for o in outs)
        self.persistent_bytes = 0
        covered = {i for s in self.steps for _, i in s.scalars}
        covered |= {a.index for s in self.steps if s.fallback for n in s.group.nodes
                    for a in n.inputs if type(a).__name__ == "FloatParam"}
        # float constants that no kernel takes as an argument (folded or baked by a pass)
        self._baked = [i for i in range(len(self._const_values)) if i not in covered]
        self._variants = {}
        self._host_plans = {}
        self._alias_plans = {}
        out_ids = {id(o) for o in self.graph.outputs if isinstance(o, Value)}
        # values only kernels read (kept buffers, see _buffer); fallback groups run on the
        # host and hand back fresh arrays, so theirs are not kept
        self._internal = {id(o) for s in self.steps if not s.fallback
                          for o in s.group.outputs if id(o) not in out_ids}
        self._kept = {}
        self._dev_index = None
        # a view group that only reshapes a value some step made, for steps inside the
        # program: a reshaped view of that buffer instead of a copy kernel (a graph input is
        # excluded: an in-place write into it may come later, see _alias_plan)
        ins_ids = {id(v) for v in self.graph.inputs}
        for st in self.steps:
            g_ = st.group
            st.reshape_only = (g_.kind == "view" and len(g_.inputs) == 1 and
                               len(g_.outputs) == 1 and
                               all(n.op == "reshape" for n in g_.nodes) and
                               id(g_.inputs[0]) not in ins_ids and
                               id(g_.outputs[0]) not in out_ids)
        last = self.schedule.last_use
        # per step: the values no later step reads (returned values are kept)
        self._frees = [[id(v) for v in s.group.inputs if last.get(id(v)) == pos and
                        id(v) not in out_ids] for pos, s in enumerate(self.steps)]
        self._host_progs = {}
        self._host_key = None
        # compile(mode="reduce-overhead"): replays through one CUDA graph (compiler/cuda_graphs)
        from .cuda_graphs import GraphRunner
        self.graphs = GraphRunner(self) if cuda_graphs else None
        self.n_kernels = sum(1 for s in self.steps if not s.fallback and not s.reshape_only)
        # class targets and index tensors fed in as program inputs: checked on the device
        # before the kernels (codegen/triton_checks.py), which cannot raise
        self._value_checks = value_checks(self.graph)
        self._check_flags = {}
        self.record_refusals = {}    # group name -> why its launch is not replayed from a record
        self.source = self._source()

    # ---- compilation ---------------------------------------------------------------------
    def _step(self, group):
        from .codegen.triton_group import generate, ExternKernel
        from .codegen.triton_pointwise import TritonCodegenError
        if self.interpret and any(v.dtype.name == "bfloat16" for n in group.nodes
                                  for v in list(n.outputs) + [a for a in n.inputs
                                                              if isinstance(a, Value)]):
            try:
                k = generate(group, self.graph, interpret=True)
            except Exception:
                k = None
            return _Step(group, k, "bfloat16: Triton's interpreter has no bfloat16 host arrays "
                                   "(NumPy lowering)")
        if any(v.dtype.is_complex for n in group.nodes
               for v in list(n.outputs) + [a for a in n.inputs if isinstance(a, Value)]):
            # Triton has no complex element type: such groups (fft, view_as_real, complex
            # arithmetic) run their NumPy lowerings (on a GPU, the xp lowerings call CuPy)
            return _Step(group, None, "complex dtype: Triton has no complex element type "
                                      "(NumPy lowering)")
        from runtime import backends
        try:
            k = generate(group, self.graph, interpret=self.interpret,
                         allow_tf32=backends.matmul_allow_tf32)
        except TritonCodegenError as e:
            return _Step(group, None, f"no kernel: {e} (NumPy lowering)")
        if isinstance(k, ExternKernel):
            return _Step(group, k, f"extern: {k.fallback}")
        st = _Step(group, k, None)
        for p in k.params:
            if p.role[0] == "scalar" and type(p.role[1]).__name__ == "FloatParam":
                st.scalars.append((p, p.role[1].index))
        for kk in tuple(getattr(k, "before", ())) + (k,):    # (a scatter's copy launch first)
            _write_aot_sidecar(kk)
        return st

    def _source(self):
        """The wrapper (one launch per group, in schedule order) and every kernel's source."""
        lines = [f"# {self.graph.name}: {len(self.steps)} groups on backend={self.backend!r}",
                 "def program(inputs, consts):    # inputs: "
                 + ", ".join(v.name for v in self.graph.inputs)]
        for s in self.steps:
            ins = ", ".join(v.name for v in s.group.inputs)
            outs = ", ".join(v.name for v in s.group.outputs) or "_"
            if s.reshape_only:
                lines.append(f"    {outs} = {ins}.reshape({tuple(s.group.outputs[0].shape)})"
                             f"    # {s.group.name}: a view of a contiguous buffer, no kernel")
            elif s.fallback:
                lines.append(f"    {outs} = numpy_lowering[{s.group.name}]({ins})"
                             f"    # {s.fallback}")
            else:
                lines.append(f"    {outs} = launch({s.kernel.name}, [{ins}])    "
                             f"# {s.group.kind}, {len(s.group.nodes)} ops")
        rets = ", ".join(o.name if isinstance(o, Value) else repr(o) for o in self.graph.outputs)
        lines.append(f"    return [{rets}]")
        parts = ["\n".join(lines)]
        for s in self.steps:
            if s.kernel is not None:
                parts += [b.source for b in getattr(s.kernel, "before", ())]
                parts.append(s.kernel.source)
        return "\n\n".join(parts) + "\n"

    # ---- running -----------------------------------------------------------------------------
    supports_alias = True

    def run(self, arrays, consts, on_output=None, alias=None):
        """`on_output(k, array)` (Program.run's gradient-ready callback): this backend calls it
        for every output after the whole program has run, in output order (kernels are
        launched asynchronously, so an earlier call would not mean the value is ready).
        `alias` {output index: input position}: outputs that are in-place updates of those
        inputs (a parameter, an optimizer moment); where safe (see _alias_plan) the kernel
        writes the input's memory directly and that output is the input array itself."""
        res = self._run_all(arrays, consts, alias)
        if on_output is not None:
            for k, r in enumerate(res):
                on_output(k, r)
        return res

    def _run_all(self, arrays, consts, alias=None):
        if self._baked and consts is not None:
            vals = tuple(float(consts[i]) for i in self._baked)
            if vals != tuple(float(self._const_values[i]) for i in self._baked):
                return self._variant(consts, vals).run(arrays, consts, alias=alias)
        if self.interpret and os.environ.get("TRITON_INTERPRET") != "1":
            # Triton reads TRITON_INTERPRET when a kernel calls a @triton.jit helper
            old = os.environ.get("TRITON_INTERPRET")
            os.environ["TRITON_INTERPRET"] = "1"
            try:
                return self._run(arrays, consts, alias)
            finally:
                if old is None:
                    os.environ.pop("TRITON_INTERPRET", None)
                else:
                    os.environ["TRITON_INTERPRET"] = old
        return self._run(arrays, consts, alias)

    def _run(self, arrays, consts, alias=None):
        if not self.interpret:
            from runtime import cuda
            for a in arrays:            # the inputs' GPU is current while the program runs
                if cuda.is_device_array(a):
                    self._dev_index = cuda.array_index(a)
                    with cuda.on_device(self._dev_index):
                        return self._run_body(arrays, consts, alias)
            self._dev_index = None
        return self._run_body(arrays, consts, alias)

    def _run_body(self, arrays, consts, alias=None):
        self.runs += 1
        from runtime.interpret import InterpretArray
        on_interp = any(isinstance(a, InterpretArray) for a in arrays)
        dev = None
        if not self.interpret:
            from runtime import cuda
            cuda.hook_triton_stream()          # launch on CuPy's current stream
            dev = _device_of(arrays)
        pending = self._check_values(arrays) if self._value_checks else ()
        # 1. the scalar steps on the host (they read only host values, so they can go first),
        # 2. one upload of the host scalars that kernels read, 3. the device steps in order
        env, host_steps, uploads = self._host_phase(arrays, consts, dev)
        into = self._alias_targets(alias, arrays, host_steps) if alias else None
        res = None
        if self.graphs is not None and dev != "host":
            res = self.graphs.run(self, env, consts, into, host_steps, uploads, pending)
        if res is None:
            if pending:
                self._launch_checks(pending, arrays)
            dev_env = env
            if uploads:
                dev_env = dict(env)
                for i, a in zip(uploads, self._upload([env[i] for i in uploads])[1]):
                    dev_env[i] = a
            self._device_steps(dev_env, env, consts, into, dev, host_steps)
            res = [env[id(o)] if isinstance(o, Value) else o for o in self.graph.outputs]
        if dev is not None and dev == "host":
            from runtime import cuda
            res = [cuda.to_host(r) if cuda.is_device_array(r) else r for r in res]
        if on_interp:
            res = [np.asarray(r).view(InterpretArray) if isinstance(r, np.ndarray) and
                   not isinstance(r, InterpretArray) else r for r in res]   # (in place: itself)
        return res

    def _check_values(self, arrays):
        """Every checked input (class targets, index tensors) against its range, before any
        kernel runs: on the interpret device (and for host inputs) at once, raising the cpu
        path's error with nothing written; on 'cuda' by the check kernel into a sticky device
        flag that the runtime reads at the next synchronisation (runtime.cuda.defer_check).
        Returns those device checks [(ValueCheck, kernel, flag)] for _launch_checks (a CUDA
        graph launches them as part of the graph)."""
        from runtime import cuda, dtypes as dt
        from runtime.interpret import HostTensor, library_interpretable
        from .codegen import triton_checks as tc
        pending = []
        for j, c in enumerate(self._value_checks):
            t = arrays[c.input]
            kern = tc.kernel(dt.from_numpy(t.dtype))
            if self.interpret or not cuda.is_device_array(t):
                tt = np.asarray(t, order="C")
                if self.interpret and library_interpretable():
                    words = np.array(tc.fresh_flag(), np.int64)
                    kern.check(HostTensor(tt, kern.dtype), HostTensor(words, dt.int64), tt.size,
                               c.lo, c.hi, c.exempt, True)
                else:                            # host memory without the interpreter
                    words = c.host_words(tt)
                err = c.error(words, tt.reshape(-1).__getitem__)
                if err is not None:
                    raise err
                continue
            idx = cuda.array_index(t)
            flag = self._check_flags.get((idx, j))
            if flag is None:
                flag = self._check_flags[idx, j] = cuda.from_host(
                    np.array(tc.fresh_flag(), np.int64), idx)
            pending.append((c, kern, flag))
            cuda.defer_check(flag, lambda words, c=c, name=self.graph.name:
                             c.deferred_error(words, name))
        return pending

    def _launch_checks(self, pending, arrays):
        """Launch the device checks _check_values returned on these program inputs."""
        from runtime import cuda, dtypes as dt
        for c, kern, flag in pending:
            t = arrays[c.input]
            tt = t if t.flags.c_contiguous else cuda.copy(t)
            kern.check(_DevBuf(tt, kern.dtype), _DevBuf(flag, dt.int64), tt.size, c.lo, c.hi,
                       c.exempt, False)

    def _host_phase(self, arrays, consts, dev):
        """env {id(value): array} of the inputs (device inputs in executable form) and the
        host steps' results; (env, host step positions, ids of host values kernels read)."""
        env = {}
        host_in, host_steps, uploads = self._host_plan(arrays)
        for k, (v, a) in enumerate(zip(self.graph.inputs, arrays)):
            env[id(v)] = a if k in host_in else self._to_exec(a, dev)
        hp = self._host_progs.get(self._host_key) if host_steps else None
        if hp is not None:
            prog, pos_in, outs = hp
            t0 = time.perf_counter()
            res = prog.run([arrays[k] for k in pos_in], consts)
            for o, a in zip(outs, res):
                env[id(o)] = np.asarray(a)
            dt_s = (time.perf_counter() - t0) / len(host_steps)
            for pos in host_steps:
                self.steps[pos].runs += 1
                self.steps[pos].time_s += dt_s
        for pos in (host_steps if hp is None else ()):
            s = self.steps[pos]
            t0 = time.perf_counter()
            outs = self._numpy_group(s.group, [env[id(v)] for v in s.group.inputs], consts,
                                     dev, keep_host=True)
            s.runs += 1
            s.time_s += time.perf_counter() - t0
            for o, a in zip(s.group.outputs, outs):
                env[id(o)] = a
        return env, host_steps, uploads

    def _device_steps(self, dev_env, env, consts, into, dev, host_steps, launcher=None):
        """Every step not run on the host, in schedule order: a kernel launch (or a view, or
        a NumPy fallback); results go into both envs, values no later step reads leave them.
        launcher(kernel, inputs, outputs), when given, stands in for launching (an
        interpreted graph's capture records the launches)."""
        stream = self._fast_stream() if launcher is None else None
        for pos, s in enumerate(self.steps):
            if pos in host_steps:
                continue
            t0 = time.perf_counter()
            ins = [dev_env[id(v)] for v in s.group.inputs]
            if s.reshape_only and ins[0].flags.c_contiguous:
                outs = [ins[0].reshape(s.group.outputs[0].shape)]     # a view: no kernel
            elif s.fallback:
                outs = self._numpy_group(s.group, ins, consts, dev)
            else:
                scal = tuple(float(consts[i]) if consts is not None else
                             float(self._const_values[i]) for _, i in s.scalars) \
                    if s.scalars else ()
                outs = [self._buffer(o, dev) if into is None or id(o) not in into else
                        into[id(o)] for o in s.group.outputs]
                rec = s.recorded
                if stream is None or rec is None or not _same_floats(rec.scalars, scal) or \
                        s.record_dev != self._dev_index or not rec.launch(
                        [_ptr(a) for a in ins], [a.data.ptr for a in outs], stream):
                    for (p, _), x in zip(s.scalars, scal):
                        p.role = ("scalar", x)
                    kin = [self._arg(a, v.dtype) for a, v in zip(ins, s.group.inputs)]
                    kout = [self._arg(a, v.dtype) for a, v in zip(outs, s.group.outputs)]
                    if launcher is not None:
                        launcher(s.kernel, kin, kout)
                    elif stream is None or s.record_tries >= RECORD_TRIES:
                        s.kernel.launch(kin, kout, self.interpret)
                    else:
                        self._launch_recording(s, kin, kout, ins, outs, scal)
            s.runs += 1
            s.time_s += time.perf_counter() - t0
            for o, a in zip(s.group.outputs, outs):
                dev_env[id(o)] = a
                env[id(o)] = a
            for i in self._frees[pos]:                # free what no later group reads
                dev_env.pop(i, None)
                env.pop(i, None)

    def _fast_stream(self):
        """The current stream's handle when recorded launches may be used this run (a GPU,
        fast launches on, no launch hooks such as a profiler's), else None."""
        from .codegen import relaunch
        if self.interpret or not relaunch.ENABLED:
            return None
        if relaunch.launch_hooks() != (None, None):
            return None
        from runtime import cuda
        return cuda.current_stream().ptr

    def _launch_recording(self, s, kin, kout, ins, outs, scal):
        """Launch step s through its kernel, recording the launch for the next runs (see
        relaunch.Recorded); a step that does not record in RECORD_TRIES tries launches
        plainly."""
        from .codegen import relaunch
        with relaunch.recording() as got:
            s.kernel.launch(kin, kout, False)
        s.recorded = relaunch.Recorded.make(got, ins, outs, _ptr, scal)
        s.record_dev = self._dev_index
        if s.recorded is not None:
            self.record_refusals.pop(s.group.name, None)
        else:
            s.record_tries += 1
            why = relaunch.Recorded.refusal
            k = getattr(s.kernel, "_chosen", None) or s.kernel
            r = getattr(getattr(k, "inner", None) or k, "relauncher", None)
            if not got and r is not None and r.path:
                why += f"; the kernel's launch: {r.path}"
            self.record_refusals[s.group.name] = why

    def _variant(self, consts, vals):
        prog = self._variants.get(vals)
        if prog is None:
            from .backend import _lift_floats
            g = _lift_floats(self._lifted)        # FloatParams are floats: lift again, new values
            for n in g.nodes:
                n.inputs = [float(consts[a.index]) if type(a).__name__ == "FloatParam" else a
                            for a in n.inputs]
            prog = TritonProgram(_lift_floats(g), self.backend,
                                 [float(consts[i]) for i in range(len(self._const_values))],
                                 self.graphs is not None)
            self._variants[vals] = prog
        return prog

    def _alias_targets(self, alias, arrays, host_steps):
        """{id(output value): input array} for the outputs written in place this run."""
        key = tuple(sorted(alias.items()))
        safe = self._alias_plans.get(key)
        if safe is None:
            safe = self._alias_plans[key] = self._alias_plan(alias)
        into = {}
        for o, p, pos in safe:
            a = arrays[p]
            if pos in host_steps or type(a) is np.ndarray or not a.flags.c_contiguous or \
                    tuple(a.shape) != tuple(o.shape) or a.dtype != o.dtype.np:
                continue
            into[id(o)] = a
        return into

    def _alias_plan(self, alias):
        """[(output value, input position, producing step)] of the in-place outputs whose
        kernel may write the input's memory: no later step reads the input, the input is not
        itself an output, and the producing kernel reads it element-aligned (no view, not a
        matmul operand), so each program reads a location before it writes it and no program
        reads another's locations."""
        from .codegen.triton_group import VIEW_OPS
        producer = {id(o): pos for pos, s in enumerate(self.steps) for o in s.group.outputs}
        readers = {}
        for pos, s in enumerate(self.steps):
            for v in s.group.inputs:
                readers.setdefault(id(v), []).append(pos)
        outs = [id(o) for o in self.graph.outputs if isinstance(o, Value)]
        safe, taken = [], set()
        for k, p in alias.items():
            o = self.graph.outputs[k]
            vin = self.graph.inputs[p]
            pos = producer.get(id(o)) if isinstance(o, Value) else None
            if pos is None or p in taken or outs.count(id(o)) != 1 or id(vin) in outs or \
                    tuple(o.shape) != tuple(vin.shape) or o.dtype is not vin.dtype:
                continue
            s = self.steps[pos]
            if s.fallback or s.group.kind not in ("pointwise", "reduction", "matmul") or \
                    any(r > pos for r in readers.get(id(vin), ())):
                continue
            users = [n for n in s.group.nodes if any(a is vin for a in n.inputs)]
            if any(n.op in VIEW_OPS or n.op == "matmul" for n in users):
                continue
            taken.add(p)
            safe.append((o, p, pos))
        return safe

    def _host_plan(self, arrays):
        """(graph input positions kept on the host, step positions run on the host, ids of
        host values a kernel reads). Host scalars are 0-d inputs in host memory: CPU tensors
        such as optimizer step counts, and the hyperparameters. A group with only 0-d outputs
        that reads only host scalars (bias corrections, step sizes) runs its NumPy lowering on
        the host, as eager would run those ops on the CPU: microseconds of NumPy where a kernel
        costs a launch, and an in-place update of a CPU step count stays in host memory (no
        device-to-host copy, so no synchronisation). Kernels that read a host scalar get it
        from one upload per run."""
        if self.interpret:
            key = tuple(type(a) is np.ndarray and a.ndim == 0 for a in arrays)
        else:
            from runtime import cuda
            key = tuple(not cuda.is_device_array(a) and np.ndim(a) == 0 for a in arrays)
        self._host_key = key
        plan = self._host_plans.get(key)
        if plan is not None:
            return plan
        host_in = {k for k, h in enumerate(key) if h}
        host = {id(self.graph.inputs[k]) for k in host_in}
        steps = []
        for pos, s in enumerate(self.steps):
            if all(o.shape == () for o in s.group.outputs) and \
                    all(id(v) in host for v in s.group.inputs):
                steps.append(pos)
                host |= {id(o) for o in s.group.outputs}
        hs = set(steps)
        ups = []
        for pos, s in enumerate(self.steps):
            if pos not in hs:
                for v in s.group.inputs:
                    if id(v) in host and id(v) not in ups:
                        ups.append(id(v))
        self._host_progs[key] = self._host_program(host_in, steps, ups)
        if self.interpret:
            ups = []                 # the interpreter reads host memory anyway
        plan = self._host_plans[key] = (frozenset(host_in), hs, ups)
        return plan

    def _host_program(self, host_in, steps, ups):
        """The host steps as one generated NumPy program (0-d arithmetic as NumPy scalar
        expressions): (program, input positions, output values), or None (each step then runs
        its lowering node by node). Float constants stay FloatParams: read from consts."""
        if not steps:
            return None
        try:
            import copy
            from .backend import _analyse, Program
            from .codegen import numpy_gen
            nodes = [n for pos in steps for n in self.steps[pos].group.nodes]
            made = {id(o) for n in nodes for o in n.outputs}
            returned = {id(o) for o in self.graph.outputs if isinstance(o, Value)}
            outs = [o for n in nodes for o in n.outputs
                    if id(o) in returned or id(o) in ups]
            pos_of = {id(v): k for k, v in enumerate(self.graph.inputs)}
            ins = [v for v in self.graph.inputs if pos_of[id(v)] in host_in]
            used = {id(a) for n in nodes for a in n.inputs if isinstance(a, Value)}
            ins = [v for v in ins if id(v) in used]
            if not outs or any(id(a) not in made and id(a) not in {id(v) for v in ins}
                               for n in nodes for a in n.inputs if isinstance(a, Value)):
                return None
            g = copy.copy(self.graph)
            g.name = self.graph.name + "_host"
            g.inputs, g.nodes, g.outputs = ins, nodes, outs
            analysis = _analyse(g)
            make, meta = numpy_gen.load(analysis[5], f"<kiln:{g.name}>")
            prog = Program(analysis[5], make, meta, "numpy", "cold", g, 0.0, ())
            return prog, [pos_of[id(v)] for v in ins], outs
        except Exception as e:
            log.info("host steps of %s: no NumPy program (%s: %s); running them node by node",
                     self.graph.name, type(e).__name__, e)
            return None

    def _upload(self, vals, into=None):
        """Host 0-d arrays -> device 0-d arrays, through one copy: 8-byte slots of one buffer
        (a new one, or the device buffer `into`); (device buffer, the 0-d views)."""
        from runtime import cuda
        buf = _pack_slots(vals)
        d = cuda.upload_async(into if into is not None else cuda.empty_here(buf.shape, buf.dtype),
                              buf)
        if into is not None:
            return into, None
        return d, [cuda.scalar_view(d, 8 * i, np.asarray(a).dtype) for i, a in enumerate(vals)]

    def _to_exec(self, a, dev):
        if self.interpret:
            a = np.asarray(a)
            return np.asarray(a, order="C") if isinstance(a, np.ndarray) else a
        from runtime import cuda
        if cuda.is_device_array(a):
            return a if a.flags.c_contiguous else cuda.copy(a)
        return cuda.from_host_here(a)

    def _buffer(self, v, dev):
        """The output buffer of value v for this run. A value that never leaves the program
        (not a program output) keeps one buffer across runs: kernels run in stream order, so
        the next run's writes come after this run's reads, and a replayed step allocates only
        what it returns."""
        if id(v) not in self._internal:
            return self._empty(v, dev)
        key = (id(v), self._dev_index)
        b = self._kept.get(key)
        if b is None:
            b = self._kept[key] = self._empty(v, dev)
        return b

    def _empty(self, v, dev):
        if self.interpret:
            return np.empty(v.shape, v.dtype.np)
        from runtime import cuda
        return cuda.empty_here(v.shape, v.dtype.np)     # on the current device (see _run)

    def _arg(self, a, dtype):
        if self.interpret:
            from runtime.interpret import HostTensor
            return HostTensor(a, dtype)
        return _DevBuf(a, dtype)

    def _numpy_group(self, group, ins, consts, dev, keep_host=False):
        """The group's nodes through each primitive's NumPy lowering (extern groups and groups
        without a kernel); device buffers go through the host (and the results back to the
        device, unless keep_host)."""
        from runtime import cuda
        on_dev = not self.interpret
        if on_dev and not keep_host and _library_group(group) and \
                all(cuda.is_device_array(a) for a in ins if hasattr(a, "shape")):
            from .ops.linalg import LinAlgError
            try:
                return self._library_group(group, ins, consts)
            except LinAlgError:
                raise
            except Exception as e:   # a form CuPy does not take: the host path below
                log.info("%s: CuPy failed (%s: %s); NumPy on the host", group.name,
                         type(e).__name__, e)
        env = {}
        for v, a in zip(group.inputs, ins):
            env[id(v)] = cuda.to_host(a) if on_dev and cuda.is_device_array(a) else a
        for n in group.nodes:
            args = []
            for a in n.inputs:
                if isinstance(a, Value):
                    args.append(env[id(a)])
                elif type(a).__name__ == "FloatParam":
                    args.append(float(consts[a.index]) if consts is not None else float(a))
                else:
                    args.append(a)
            metas = [AVal(o.shape, o.dtype) for o in n.outputs]
            r = n.prim.numpy(metas[0] if len(metas) == 1 else metas, *args, **n.attrs)
            rs = r if isinstance(r, tuple) else (r,)
            for o, x in zip(n.outputs, rs):
                # (np.asarray with order C: ascontiguousarray makes a 0-d result 1-d)
                env[id(o)] = np.asarray(x, dtype=o.dtype.np, order="C")
        outs = [env[id(o)] for o in group.outputs]
        if on_dev and not keep_host:
            outs = [cuda.from_host_here(o) for o in outs]
        return outs

    def _library_group(self, group, ins, consts):
        """A group of library ops (Prim.xp: sorting, scans, linear algebra) through CuPy on
        the device arrays: no host round trip."""
        from runtime import cuda
        cp = cuda._cupy()
        env = {id(v): a for v, a in zip(group.inputs, ins)}
        for n in group.nodes:
            args = [env[id(a)] if isinstance(a, Value) else
                    (float(consts[a.index]) if consts is not None else float(a))
                    if type(a).__name__ == "FloatParam" else a for a in n.inputs]
            metas = [AVal(o.shape, o.dtype) for o in n.outputs]
            r = n.prim.xp(cp, metas[0] if len(metas) == 1 else metas, *args, **n.attrs)
            rs = r if isinstance(r, tuple) else (r,)
            for o, x in zip(n.outputs, rs):
                x = cp.asarray(x, dtype=o.dtype.np)
                # contiguous and its own memory (0-d stays 0-d: no ascontiguousarray)
                env[id(o)] = x.copy() if x.base is not None or not x.flags.c_contiguous else x
        return [env[id(o)] for o in group.outputs]

    # ---- introspection -----------------------------------------------------------------------
    def group_runs(self):
        return {s.group.name: s.runs for s in self.steps}

    def group_times(self):
        """{group name: seconds spent in it (host wall clock; launches are asynchronous on a
        GPU, so there it is launch time unless the caller synchronises)}."""
        return {s.group.name: s.time_s for s in self.steps}


def _same_floats(a, b):
    """Equal tuples of floats, a NaN equal to a NaN (a constant such as where(m, x, nan))."""
    return a == b or (len(a) == len(b) and all(x == y or (x != x and y != y)
                                                for x, y in zip(a, b)))


_STRUCT = {"d": "d", "f": "f4x", "e": "e6x", "q": "q", "l": "q", "i": "i4x", "h": "h6x",
           "b": "b7x", "?": "?7x", "Q": "Q", "L": "Q", "I": "I4x", "H": "H6x", "B": "B7x"}
_FORMATS = {}


def _pack_slots(vals):
    """Host scalars -> uint8 array of 8-byte slots, one value each (at the slot's start).
    One struct.pack of the values' Python numbers (the dtypes fix the format); dtypes struct
    cannot spell (bfloat16) byte by byte."""
    chars = tuple(np.asarray(a).dtype.char for a in vals)
    fmt = _FORMATS.get(chars)
    if fmt is None and all(c in _STRUCT for c in chars):
        fmt = _FORMATS[chars] = struct.Struct("<" + "".join(_STRUCT[c] for c in chars))
    if fmt is not None:
        return np.frombuffer(fmt.pack(*[np.asarray(a).item() for a in vals]), np.uint8)
    buf = np.zeros(8 * len(vals), np.uint8)
    for i, a in enumerate(vals):
        a = np.asarray(a, order="C")
        buf[8 * i:8 * i + a.itemsize] = np.frombuffer(a.tobytes(), np.uint8)
    return buf


def _ptr(a):
    """A device array's address (0 for a host array: never a recorded buffer)."""
    d = getattr(a, "data", None)
    return getattr(d, "ptr", 0)


class _DevBuf:
    """A CuPy array as a Triton launch argument (data_ptr, dtype, shape, element strides);
    no `array` attribute, so view_buffer folds views into a StridedView on device memory."""
    __slots__ = ("arr", "dtype", "shape", "_st", "_ptr")

    def __init__(self, arr, dtype):
        self.arr, self.dtype, self.shape = arr, dtype, arr.shape
        self._st = self._ptr = None

    def data_ptr(self):
        p = self._ptr
        if p is None:
            p = self._ptr = self.arr.data.ptr
        return p

    def stride(self, dim=None):
        st = self._st
        if st is None:
            item = self.arr.itemsize
            st = self._st = tuple(s // item for s in self.arr.strides)
        return st if dim is None else st[dim]


class ValueCheck:
    """One program input whose values kernels cannot check: every value in [lo, hi) (or equal
    to `exempt`). what: ("target", classes) for class targets, ("one_hot", classes) for
    one_hot's class values, ("index", op, dim, size, wraps) for an index tensor."""

    def __init__(self, input, lo, hi, exempt, what):
        self.input, self.lo, self.hi, self.exempt, self.what = input, lo, hi, exempt, what

    def key(self):
        return (self.input, self.lo, self.hi, self.exempt, self.what)

    def __repr__(self):
        return f"ValueCheck(input {self.input}: [{self.lo}, {self.hi}) {self.what})"

    def host_words(self, values):
        """The check kernel's flag words, computed on the host (NumPy)."""
        from .codegen.triton_checks import fresh_flag
        h = values.reshape(-1).astype(np.int64)
        bad = (h < self.lo) | (h >= self.hi)
        if self.exempt is not None:
            bad &= h != self.exempt
        at = np.flatnonzero(bad)
        if not at.size:
            return fresh_flag()
        return [1, int(h[at].max()), int(h[at].min()), int(at[0])]

    def error(self, words, value_at=None):
        """The cpu path's error for read flag words (None when every value passed); value_at
        (position -> value) when the values can still be read."""
        from .codegen.triton_checks import index_violation, violation
        from .ops.indexing import class_index_error
        if self.what[0] == "target":
            bad = violation(words, self.what[1], value_at)
            return None if bad is None else class_index_error(bad, self.what[1])
        if self.what[0] == "one_hot":      # (the smallest bad value: a negative one first)
            return None if not int(words[0]) else class_index_error(int(words[2]), self.what[1],
                                                                     True)
        return index_violation(words, *self.what[1:])

    def deferred_error(self, words, name):
        """The error a 'cuda' program's check reports at the next synchronisation."""
        from .codegen.triton_checks import violation
        if self.what[0] == "target":
            classes = self.what[1]
            bad = violation(words, classes)
            if bad is None:
                return None
            what = f"class target {bad} is out of bounds for {classes} classes"
        elif self.what[0] == "one_hot":
            if not int(words[0]):
                return None
            what = f"one_hot class {int(words[2])} is out of range [0, {self.what[1]})"
        else:
            err = self.error(words)
            if err is None:
                return None
            what = str(err)
        return RuntimeError(f"CUDA error: device-side assert triggered (Kiln: compiled program "
                            f"{name}: {what}; kernels launched after it ran)")


# views that keep every value of their input (an index read through them is checked on the input)
_SET_VIEWS = ("reshape", "permute", "expand", "flip")


def _keeps_values(n):
    """A view above, or a widening integer cast (x[i] of int32 i casts it to int64)."""
    if n.op in _SET_VIEWS:
        return True
    if not n.inputs:          # made in the program (arange positions of a view write)
        return False
    from .codegen.triton_checks import INDEX_DTYPES
    a, o = n.inputs[0], n.outputs[0]
    return (n.op == "cast" and isinstance(a, Value) and a.dtype.name in INDEX_DTYPES and
            o.dtype.name in INDEX_DTYPES and o.dtype.itemsize >= a.dtype.itemsize)


def value_checks(graph):
    """[ValueCheck] of a graph: its class_index targets and the integer index tensors of its
    index / index_put / gather / scatter nodes that are program inputs (directly or through
    views that keep every value, or widening casts). Values computed inside the program are
    not checked."""
    from .codegen.triton_checks import INDEX_DTYPES
    pos = {id(v): k for k, v in enumerate(graph.inputs)}
    made = {id(o): n for n in graph.nodes for o in n.outputs}

    def source(v):
        if not isinstance(v, Value):
            return None
        while id(v) not in pos:
            n = made.get(id(v))
            if n is None or not _keeps_values(n):
                return None
            v = n.inputs[0]
        return pos[id(v)] if v.dtype.name in INDEX_DTYPES else None

    found = []
    for n in graph.nodes:
        if n.op not in ("class_index", "index", "index_put", "gather", "scatter"):
            continue
        x = n.inputs[0]
        if n.op == "class_index":
            k, classes = source(x), n.attrs["classes"]
            kind = "one_hot" if n.attrs.get("one_hot") else "target"
            found.append((k, 0, classes, n.attrs["ignore_index"], (kind, classes)))
        elif n.op in ("index", "index_put"):
            first = 1 if n.op == "index" else 2
            check = n.attrs.get("check")        # index_select / index_add / index_copy
            for i, p in zip(range(first, len(n.inputs)), n.attrs["pos"]):
                size = x.shape[p]
                found.append((source(n.inputs[i]), 0 if check else -size, size, None,
                              ("index", n.op, p, size, True) + ((check,) if check else ())))
        elif n.op in ("gather", "scatter") and len(x.shape):
            d = n.attrs["dim"] % len(x.shape)
            size = x.shape[d]
            found.append((source(n.inputs[1]), 0, size, None, ("index", n.op, d, size, False)))
    checks = {}
    for k, lo, hi, exempt, what in found:
        if k is not None:
            c = ValueCheck(k, lo, hi, exempt, what)
            checks.setdefault(c.key(), c)
    return list(checks.values())


def _library_group(group):
    """Every node a library op with an array-module lowering (CuPy serves it on a GPU)."""
    return all(n.prim.xp is not None for n in group.nodes)


def _device_of(arrays):
    """'host' when every input is a host array (results come back to the host), else 'device'."""
    from runtime import cuda
    return "device" if any(cuda.is_device_array(a) for a in arrays) else "host"


def _write_aot_sidecar(k):
    """<kernel file>.aot.json: what compiler.aot needs to compile the kernel without the
    program (signature, constexprs, warps)."""
    try:
        sig, consts = k.signature(1024)
        opts = k.aot_options() if hasattr(k, "aot_options") else {"num_warps": 4}
        attrs = {}
        if hasattr(k, "typical_args"):     # specialised as a launch on contiguous buffers
            from .aot import specialize_like_launch
            sig, consts, attrs = specialize_like_launch([p.name for p in k.params], sig,
                                                        consts, k.typical_args())
        path = k.path + ".aot.json"
        if not os.path.exists(path):
            from .cache import atomic_write
            atomic_write(path, json.dumps({"name": k.name, "signature": sig,
                                           "constexprs": {a: _plain(b) for a, b in
                                                          consts.items()},
                                           "attrs": [[list(i), a] for i, a in attrs.items()],
                                           "options": opts}, sort_keys=True))
    except Exception as e:                     # introspection aid only: never fail a compile
        log.debug("aot sidecar for %s not written: %s", getattr(k, "name", k), e)


def _plain(x):
    if isinstance(x, bool):
        return x
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return float(x)
    return x


def compile_cached_kernel(py_path, arch=90):
    """AOT-compile a kernel file from the kernel cache with its sidecar signature."""
    from . import aot
    from .codegen import cache
    with open(py_path + ".aot.json") as f:
        meta = json.load(f)
    fn = getattr(cache.load_module(py_path, False), meta["name"])
    attrs = {tuple(i): a for i, a in meta.get("attrs", [])}
    return aot.compile_fn(fn, meta["signature"], meta["constexprs"], arch=arch,
                          name=meta["name"], attrs=attrs or None, **meta["options"])
