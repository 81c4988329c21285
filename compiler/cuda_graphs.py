"""A compiled program's kernels replayed as one CUDA graph: compile(mode="reduce-overhead").

A replayed training step launches ~30 small kernels, and each launch costs the host tens of
microseconds of Python and driver work, so on a GPU the step is bound by the host. Captured
once into a CUDA graph, the kernels then cost one graph launch per step. A graph fixes every
kernel argument, buffer addresses and scalars alike, so a program runs through its graph only
under these rules:

- the first run of a program is an ordinary one (it compiles and tunes every kernel); the graph
  is captured on the second;
- an input the program updates in place (a parameter, an optimizer moment: the program's alias
  targets) is used where it is, and so is an input found at the same address on the run
  before the capture (a parameter read by the forward): their addresses key the graph, and a
  new address means a new capture. Every other device input (the batch) is copied into a
  buffer the graph owns before each launch. An input that moves for the first time after a
  capture gets one run without the graph, to tell a batch (it moves again: copied in) from a
  new model sharing the program (it stays: used in place);
- host scalars computed each step (step counts, bias corrections) are uploaded into the one
  device buffer the graph reads, and float constants passed to kernels key the graph (a new
  learning rate captures again);
- the captured kernels allocate from a memory pool of the graph's own, so no buffer a replay
  writes is ever handed to anything else;
- the results are laid out in two arenas of the graph's memory (single values such as the
  loss; the rest, such as gradients), and each arena is copied out once after the launch,
  results handed out as views of the copies (an in-place result is the input itself), so a
  tensor the caller keeps is not overwritten by the next step;
- the device checks of class targets and index tensors are launched inside the graph;
- a replay that finds the last run's state (the inputs used in place at the same addresses,
  the same constants) launches without rebuilding the graph's key;
- a program with a NumPy fallback between its kernels (a host round trip) is never captured,
  and after MAX_CAPTURES captures the program goes back to launching kernels one by one.

On the 'interpret' backend a graph is the list of launches recorded at capture, replayed with
the same arguments: the same bookkeeping, checked in CI without a GPU.
"""
import collections
import logging

import numpy as np

from .ir.graph import consts_key

log = logging.getLogger("kiln.compile")

MAX_CAPTURES = 8


class GraphRunner:
    """The graph of one TritonProgram and what it was captured for."""

    def __init__(self, prog):
        self.interpret = prog.interpret
        self.off = None          # why graphs are off for this program (None: on)
        self.key = None          # what the current graph was captured for
        self.graph = None        # cupy.cuda.Graph, or (interpret) the recorded launches
        self.static = {}         # input position -> the buffer the graph reads it from
        self.copied = set()      # input positions copied in (their address moved)
        self.upload = None       # the device buffer of the host scalars (interpret: holders)
        self.out = {}            # id(output value) -> the graph's buffer
        self.pool = self.stream = None
        self.captures = self.replays = 0
        self.fast_replays = 0    # replays that found the last run's state (_same_as_last)
        self._moved = set()      # input positions seen at a new address after a capture
        self.events = collections.deque(maxlen=32)   # what the last runs did (introspection)
        self._ptrs = None        # input addresses on the last run
        self.arenas = []         # [(arena, [(id(output value), byte offset, shape, dtype)])]
        self._fast = None        # what the last graph run saw (see _same_as_last)

    # ---- the run ------------------------------------------------------------------------
    def run(self, prog, env, consts, into, host_steps, uploads, checks=()):
        """The program's outputs through the graph (captured first when needed), or None
        for the ordinary path (graphs off, or the first run). checks: the program's device
        value checks (TritonProgram._check_values), captured into the graph."""
        if self.off is not None:
            return None
        if self._same_as_last(prog, env, consts, into, host_steps):
            self.fast_replays += 1
            self.events.append("replay (fast)")
            return self._replay(prog, env, into, host_steps, uploads)
        dev_pos = [k for k, v in enumerate(prog.graph.inputs) if self._on_device(env[id(v)])]
        ptrs = {k: self._ptr(env[id(prog.graph.inputs[k])]) for k in dev_pos}
        prev, self._ptrs = self._ptrs, ptrs
        if prog.runs < 2 or prev is None:
            self.events.append("first run: no graph")
            return None          # the first run compiles and tunes: no capture yet
        alias_pos = self._alias_positions(prog, env, into)
        moved = {k for k in dev_pos if prev.get(k) != ptrs[k]} - self.copied - alias_pos
        if moved - self._moved and self.key is not None:
            # inputs at a new address for the first time since the graph was captured: a new
            # batch (it will move again: copied in from the next capture on), or a new model
            # sharing this program (it stays: used in place). One run without the graph tells
            self._moved |= moved
            self.events.append(f"inputs {sorted(moved)} moved: one run without the graph")
            return None
        in_place = {k for k in dev_pos if k not in self.copied and prev.get(k) == ptrs[k]}
        in_place |= alias_pos
        self.copied |= set(dev_pos) - in_place
        scal = self._scalars(prog, consts, host_steps)
        key = (prog._host_key, prog._dev_index, tuple(sorted(into or ())), scal,
               tuple(sorted((k, ptrs[k]) for k in in_place)))
        if key != self.key:
            if any(s.fallback for pos, s in enumerate(prog.steps) if pos not in host_steps):
                self.off = "a NumPy fallback runs between kernels (a host round trip)"
                log.info("%s: no CUDA graph: %s", prog.graph.name, self.off)
                return None
            if self.captures >= MAX_CAPTURES:
                self.off = f"captured {self.captures} times (inputs keep moving)"
                log.warning("%s: CUDA graphs off: %s", prog.graph.name, self.off)
                return None
            try:
                res = self._capture(prog, env, consts, into, host_steps, uploads, key,
                                    in_place, checks)
                self._remember(prog, key)
                self.events.append(f"captured (copied in: {sorted(self.static)})")
                return res
            except Exception as e:      # nothing ran (a capture executes nothing): go on
                self._release()         # without graphs, kernel by kernel
                self.key, self.off = None, f"capture failed: {type(e).__name__}: {e}"
                log.warning("%s: CUDA graphs off: %s", prog.graph.name, self.off)
                return None
        self._remember(prog, key)
        self.events.append("replay")
        return self._replay(prog, env, into, host_steps, uploads)

    def _replay(self, prog, env, into, host_steps, uploads):
        for k, buf in self.static.items():
            self._copy_into(buf, env[id(prog.graph.inputs[k])])
        if self.interpret:
            for i, h in self.upload.items():
                np.copyto(h, env[i])
        elif uploads:
            prog._upload([env[i] for i in uploads], into=self.upload)
        self._launch()
        self.replays += 1
        for pos, s in enumerate(prog.steps):
            if pos not in host_steps:
                s.runs += 1
        return self._results(prog, env, into)

    def _scalars(self, prog, consts, host_steps):
        return consts_key(float(consts[i]) if consts is not None else
                          float(prog._const_values[i])
                          for pos, s in enumerate(prog.steps) if pos not in host_steps
                          for _, i in s.scalars)       # (bit patterns: a NaN matches itself)

    def _remember(self, prog, key):
        """The key of this graph run (a capture or a replay) and the ids of the inputs used in
        place, whose addresses it holds; the next run that sees the same goes straight to
        the launch (_same_as_last)."""
        self._fast = (key, tuple(id(prog.graph.inputs[k]) for k, _ in key[4]),
                      tuple(p for _, p in key[4]))

    def _same_as_last(self, prog, env, consts, into, host_steps):
        """This run is the last graph run again: the same host plan and device, the same
        in-place outputs and constants, and every input the graph uses in place at the same
        address (inputs copied into the graph's buffers may move), so the key run() would
        compute is the graph's. The common case of a training loop, checked without
        building that key."""
        f = self._fast
        if f is None:
            return False
        key = f[0]
        if key[0] != prog._host_key or key[1] != prog._dev_index or \
                key[2] != tuple(sorted(into or ())):
            return False
        try:
            if tuple(self._ptr(env[i]) for i in f[1]) != f[2]:
                return False
        except (AttributeError, KeyError):
            return False
        return self._scalars(prog, consts, host_steps) == key[3]

    def _capture(self, prog, env, consts, into, host_steps, uploads, key, in_place, checks):
        self._release()
        self.captures += 1
        denv = dict(env)
        with self._allocating():
            for k, v in enumerate(prog.graph.inputs):
                a = env[id(v)]
                if k not in in_place and self._on_device(a):
                    buf = self.static[k] = self._empty_like(a)
                    self._copy_into(buf, a)
                    denv[id(v)] = buf
            if uploads:
                self.upload, views = prog._upload([env[i] for i in uploads])
                for i, a in zip(uploads, views):
                    denv[i] = a
            if self.interpret:
                # kernels read host scalars in place here: the recorded launches read these
                # holders, refreshed before each replay (as the upload buffer is on a GPU)
                self.upload = {i: np.array(a) for i, a in env.items()
                               if type(a) is np.ndarray and a.ndim == 0}
                denv.update(self.upload)
            genv = dict(denv)
            into = dict(into or {})
            into_arenas = self._arenas(prog, env, into, host_steps)
            if self.interpret:
                rec = self.graph = []         # a launch is recorded, not run
                prog._device_steps(denv, genv, consts, into_arenas, None, host_steps,
                                   launcher=lambda *launch: rec.append(launch))
            else:
                import cupy as cp
                if self.stream is None:
                    self.stream = cp.cuda.Stream(non_blocking=True)
                with self.stream:
                    self.stream.begin_capture()
                    try:
                        if checks:             # on the graph's copies of the inputs
                            prog._launch_checks(checks, [denv[id(v)]
                                                         for v in prog.graph.inputs])
                        prog._device_steps(denv, genv, consts, into_arenas, "device",
                                           host_steps)
                    finally:
                        graph = self.stream.end_capture()
                self.graph = graph
        self.out = {id(o): genv[id(o)] for o in prog.graph.outputs
                    if hasattr(o, "shape") and id(o) in genv and id(o) not in env}
        self.key = key
        log.info("%s: captured a CUDA graph (%d kernels; %d inputs copied in, %d in place)",
                 prog.graph.name, prog.n_kernels, len(self.static), len(in_place))
        self._launch()
        return self._results(prog, env, into)

    def _arenas(self, prog, env, into, host_steps):
        """The graph's results that a replay hands out, laid out in two arenas of the graph's
        memory: single values (a loss: a kept loss holds only them) and the rest (gradients).
        A replay then copies each arena out in one copy (instead of one copy per result) and
        hands out views of the copies.
        Returns `into` plus {id(value): its place in an arena} for the kernels to write."""
        made = {id(o): pos for pos, s in enumerate(prog.steps) for o in s.group.outputs}
        small, large, seen = [], [], set()
        for o in prog.graph.outputs:
            if not hasattr(o, "shape") or id(o) in seen or id(o) in into or id(o) in env:
                continue
            seen.add(id(o))
            pos = made.get(id(o))
            if pos is None or pos in host_steps or prog.steps[pos].reshape_only or \
                    prog.steps[pos].fallback:
                continue                        # not a kernel's output: copied on its own
            nb = int(np.prod(o.shape, dtype=np.int64)) * o.dtype.np.itemsize
            (small if nb <= 8 else large).append((o, nb))
        out = dict(into)
        for group in (small, large):
            if not group:
                continue
            places, off = [], 0
            for o, nb in group:
                places.append((id(o), off, tuple(o.shape), o.dtype.np))
                off += -(-max(nb, 1) // 256) * 256    # 256-byte aligned, as allocations are
            arena = self._empty_like_bytes(off)
            for i, o_off, shape, dtype in places:
                out[i] = self._view(arena, o_off, shape, dtype)
            self.arenas.append((arena, places))
        return out

    def _results(self, prog, env, into):
        res = []
        got = {}
        for arena, places in self.arenas:
            copy = self._copy_bytes(arena)
            for i, off, shape, dtype in places:
                got[i] = self._view(copy, off, shape, dtype)
        for o in prog.graph.outputs:
            if not hasattr(o, "shape"):
                res.append(o)
            elif into and id(o) in into:
                res.append(into[id(o)])               # written in place by the graph
            elif id(o) in got:
                res.append(got[id(o)])                # a view of this replay's arena copy
            elif id(o) in self.out:
                res.append(self._copy(self.out[id(o)]))
            else:
                res.append(env[id(o)])                # an input, or a host step's result
        return res

    # ---- memory, launches ---------------------------------------------------------------------
    def _launch(self):
        if self.interpret:
            for kernel, ins, outs in self.graph:
                kernel.launch(ins, outs, True)
            return
        import cupy as cp
        self.graph.launch(stream=cp.cuda.get_current_stream())

    def _allocating(self):
        """Allocations for the graph come from its own pool (kept while the graph lives)."""
        if self.interpret:
            import contextlib
            return contextlib.nullcontext()
        import cupy as cp
        if self.pool is None:
            self.pool = cp.cuda.MemoryPool()
        from runtime.cuda import oom_checked
        return cp.cuda.using_allocator(oom_checked(self.pool.malloc))

    def _release(self):
        """Drop the old graph and its buffers (after the stream is done with them)."""
        if self.graph is not None and not self.interpret:
            import cupy as cp
            cp.cuda.get_current_stream().synchronize()
        self.graph, self.static, self.out, self.upload = None, {}, {}, None
        self.arenas, self._fast = [], None
        if self.pool is not None:
            self.pool.free_all_blocks()

    def _alias_positions(self, prog, env, into):
        """Input positions whose memory a kernel updates in place this run."""
        if not into:
            return set()
        ptrs = {self._ptr(a) for a in into.values()}
        return {k for k, v in enumerate(prog.graph.inputs)
                if self._is_buffer(env[id(v)]) and self._ptr(env[id(v)]) in ptrs}

    def _is_buffer(self, a):
        if self.interpret:
            return isinstance(a, np.ndarray)
        from runtime import cuda
        return cuda.is_device_array(a)

    def _on_device(self, a):
        """An input in device memory (not a host scalar the host steps read)."""
        return self._is_buffer(a) and not (type(a) is np.ndarray and a.ndim == 0)

    def _ptr(self, a):
        return a.ctypes.data if self.interpret else a.data.ptr

    def _empty_like(self, a):
        if self.interpret:
            return np.empty(a.shape, a.dtype)
        from runtime import cuda
        return cuda.empty_here(a.shape, a.dtype)

    def _empty_like_bytes(self, n):
        if self.interpret:
            return np.empty(n, np.uint8)
        from runtime import cuda
        return cuda.empty_here((n,), np.uint8)

    def _view(self, arena, off, shape, dtype):
        """An array of `shape` and `dtype` over arena's bytes from `off` (contiguous)."""
        if self.interpret:
            return np.ndarray(shape, dtype, buffer=arena, offset=off)
        import cupy as cp
        return cp.ndarray(shape, dtype, memptr=arena.data + off)

    def _copy_bytes(self, arena):
        """A new copy of an arena (one device-to-device copy on the current stream)."""
        if self.interpret:
            return arena.copy()
        import cupy as cp
        new = cp.empty(arena.shape, np.uint8)
        new.data.copy_from_device_async(arena.data, arena.nbytes,
                                        cp.cuda.get_current_stream())
        return new

    def _copy_into(self, buf, a):
        if self.interpret:
            np.copyto(buf, a)
        else:
            import cupy as cp
            cp.copyto(buf, a)

    def _copy(self, a):
        return np.array(a, copy=True) if self.interpret else a.copy()

