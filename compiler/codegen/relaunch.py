"""Launching a compiled Triton kernel again without the JIT's per-call work.

`fn[grid](*args, **meta)` binds the arguments, builds the specialization key (pointer alignment,
integers equal to 1 or divisible by 16), looks the compiled kernel up and then calls its
`run` (the C launcher). For a kernel launched again with arguments that specialize the same way,
which is every launch of a replayed compiled program, everything before `run` gives the same
answer, so `Relauncher` keeps the CompiledKernel the first launch returned and calls `run`
directly. Triton 3.3+ (3.6 .. 3.9 here) takes every argument, constexprs included, in
signature order. Any surprise turns the fast path off for that kernel (the JIT path is always
correct). KILN_FAST_LAUNCH=0 turns it off everywhere.

A replayed compiled program goes one step further (`Recorded`): its launches differ from run
to run only in the buffers' addresses (every buffer a program passes is contiguous and of a
fixed shape, so sizes, strides and grids repeat), so one launch of a step is recorded with the
buffer each pointer argument came from, and later runs fill the new addresses into a copy of
the recorded argument list and call the C launcher with plain integers.
"""
import os

ENABLED = os.environ.get("KILN_FAST_LAUNCH", "1") != "0"
_RECORDING = None      # a list while a step's launches are recorded (see recording())


def spec_key(args, meta):
    """A key that implies Triton's specialization: the exact Python scalars (equal integers
    specialize alike: == 1, % 16, 32-bit range), each pointer's 16-byte alignment, and the
    constexpr values. Stricter than Triton's own key (another size launches through the JIT
    once and is then remembered), cheap enough for every launch of a replayed program."""
    return (tuple([a if type(a) in _SCALARS else a.data_ptr() & 15 == 0 for a in args]),
            tuple(meta.items()))


_SCALARS = (int, float, bool)


class Relauncher:
    """Per generated kernel: the CompiledKernel of its last JIT launch and the key it was
    specialized for."""
    __slots__ = ("ck", "key", "order", "off", "path")

    def __init__(self):
        self.ck = self.key = self.order = None
        self.off = False
        self.path = None     # how the last launch went (introspection: why it was not fast)

    def launch(self, fn, grid, args, meta, options):
        """Launch fn on `grid` with positional `args` and constexpr `meta`; `options`
        (num_warps, num_stages) are compile options, fixed with the kernel."""
        if ENABLED and not self.off and self.ck is not None:
            key = spec_key(args, meta)
            if key == self.key:
                try:
                    self._run(grid, args, meta)
                    self.path = "fast"
                    return
                except Exception as e:  # an API this code does not know: the JIT from now on
                    self.off = True
                    self.path = f"JIT: the fast path failed ({type(e).__name__}: {e})"[:200]
            else:
                self.path = "JIT: specialisation changed"
        else:
            self.path = ("JIT: fast launches off" if not ENABLED or self.off else
                         "JIT: first launch")
        ck = fn[grid](*args, **meta, **options)
        if self.off:
            return
        try:
            names = list(fn.arg_names)
            n = len(args)
            if len(names) != n + len(meta) or set(names[n:]) != set(meta):
                self.off = True
                self.path = f"JIT: arguments {names[n:]} are not the constexprs {sorted(meta)}"
                return
            self.order = tuple(names[n:])
            self.key = spec_key(args, meta)
            ck._init_handles()
            self.ck = ck
        except Exception as e:
            self.off = True
            self.path = f"JIT: no fast path ({type(e).__name__}: {e})"[:200]

    def _run(self, grid, args, meta):
        from runtime import cuda
        ck = self.ck
        allargs = (*args, *(meta[k] for k in self.order))
        stream = cuda.current_stream().ptr
        enter, exit_ = launch_hooks()
        md = ck.launch_metadata(grid, stream, *allargs) if enter is not None else None
        g1 = grid[1] if len(grid) > 1 else 1
        g2 = grid[2] if len(grid) > 2 else 1
        ck.run(grid[0], g1, g2, stream, ck.function, ck.packed_metadata, md, enter, exit_,
               *allargs)
        if _RECORDING is not None:
            _RECORDING.append((ck, (grid[0], g1, g2), allargs))


def launch_hooks():
    """Triton's (enter, exit) launch hooks (a profiler's), each None where none is installed:
    Triton 3.5+ always holds a HookChain, empty unless a hook was added."""
    from triton import knobs
    rt = knobs.runtime
    enter, exit_ = rt.launch_enter_hook, rt.launch_exit_hook
    return (None if enter is None or getattr(enter, "calls", True) == [] else enter,
            None if exit_ is None or getattr(exit_, "calls", True) == [] else exit_)


class recording:
    """Context manager: the (CompiledKernel, grid, all arguments) of every fast-path launch
    made inside it, in order (a JIT launch is not recorded: its `ck` is not known yet)."""

    def __enter__(self):
        global _RECORDING
        self.launches = _RECORDING = []
        return self.launches

    def __exit__(self, *exc):
        global _RECORDING
        _RECORDING = None


class Recorded:
    """One step's single launch, replayable on other buffers of the same shapes: `slots`
    [(argument position, 0 input / 1 output, buffer index, byte offset)] are the pointer
    arguments, each found in the step's buffers by its address; `aligned` their 16-byte
    alignment when recorded (Triton specialised the kernel for it: another alignment takes
    the JIT path again); `same` pairs of buffers that were one memory when recorded (an
    in-place update's input and output), so a pointer into it could come from either: the
    record holds only while they still are."""
    __slots__ = ("ck", "grid", "args", "slots", "aligned", "same", "scalars")
    refusal = None      # why the last make() returned None (for introspection)

    @classmethod
    def make(cls, launches, ins, outs, ptr, scalars):
        """A Recorded from what recording() caught for one step, or None when the step did
        not make exactly one launch whose every pointer points into its own buffers.
        ptr(buffer) -> address; scalars: the step's float constants (they key the record)."""
        if len(launches) != 1:
            return cls._refuse(f"{len(launches)} fast launches (one is replayable)")
        ck, grid, args = launches[0]
        bufs = [(0, j, ptr(a), a.nbytes) for j, a in enumerate(ins) if hasattr(a, "nbytes")]
        bufs += [(1, j, ptr(a), a.nbytes) for j, a in enumerate(outs)]
        slots, aligned, same = [], [], set()
        for i, a in enumerate(args):
            if type(a) in _SCALARS or a is None or type(a) is str:
                continue
            if not hasattr(a, "data_ptr"):
                return cls._refuse(f"argument {i} is a {type(a).__name__}")
            p = a.data_ptr()
            hits = [b for b in bufs if b[2] and b[2] <= p < b[2] + max(b[3], 1)]
            if not hits:                      # a temporary (a staged copy): not replayable
                return cls._refuse(f"argument {i} points outside the step's buffers")
            if any(b[2] != hits[0][2] for b in hits):
                return cls._refuse(f"argument {i} points into overlapping buffers")
            same |= {(hits[0][:2], b[:2]) for b in hits[1:]}
            slots.append((i, hits[0][0], hits[0][1], p - hits[0][2]))
            aligned.append(p & 15 == 0)
        r = cls()
        r.ck, r.grid, r.args = ck, grid, list(args)
        r.slots, r.aligned, r.scalars = tuple(slots), tuple(aligned), scalars
        r.same = tuple(sorted(same))
        return r

    @classmethod
    def _refuse(cls, why):
        cls.refusal = why
        return None

    def launch(self, in_ptrs, out_ptrs, stream):
        """Launch on buffers at these addresses; False (nothing launched) when the record
        does not hold for them (an alignment or an aliasing differs)."""
        ptrs = (in_ptrs, out_ptrs)
        for (s1, j1), (s2, j2) in self.same:
            if ptrs[s1][j1] != ptrs[s2][j2]:
                return False
        args = list(self.args)
        for (i, side, j, off), al in zip(self.slots, self.aligned):
            p = ptrs[side][j] + off
            if (p & 15 == 0) is not al:
                return False
            args[i] = p
        ck = self.ck
        g0, g1, g2 = self.grid
        ck.run(g0, g1, g2, stream, ck.function, ck.packed_metadata, None, None, None, *args)
        return True
