"""framework.profiler: torch.profiler's API over Kiln's eager primitives and compiled programs.

    from framework.profiler import profile, record_function, ProfilerActivity, schedule
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        with record_function("model_inference"):
            model(x)
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=10))
    prof.export_chrome_trace("trace.json")

What is recorded
  kiln::<prim>        every eager primitive call (framework._dispatch.apply), with input
                      shapes when record_shapes=True
  program: <graph>    every run of a compiled program (compile(): NumPy, eager, Triton
                      backends), named by its graph
  <kernel name>       every fused group of a compiled program, as a child of its program run:
                      Triton backends' generated kernels by name (extern fallbacks too), and
                      the NumPy backend's groups (its program marks each group's start)
  <your name>         record_function ranges (also usable as a decorator)

Times are host wall-clock times (time.perf_counter_ns). Self time is a range's time minus its
direct children's. ProfilerActivity.CUDA is accepted; Kiln's GPU kernels launch asynchronously,
so a 'triton' program run is timed on the host (no CUPTI device timeline yet): its device
time column repeats the host time of its kernels.

schedule(wait, warmup, active, repeat, skip_first) behaves like torch's: call prof.step() once
per iteration; steps in `wait` record nothing, `warmup` steps run the profiler but discard
their events, `active` steps are recorded, and at the end of each active span on_trace_ready
(when given) is called with the profiler; key_averages()/events() then describe that span.
Profiling costs nothing when off: apply() checks one module global.
"""
import enum
import functools
import json
import os
import threading
import time

from . import _dispatch


class ProfilerActivity(enum.Enum):
    CPU = 0
    CUDA = 1


class ProfilerAction(enum.Enum):
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(*, wait, warmup, active, repeat=0, skip_first=0):
    """torch.profiler.schedule: step number -> ProfilerAction."""
    if wait < 0 or warmup < 0 or active <= 0 or repeat < 0 or skip_first < 0:
        raise ValueError("schedule: invalid arguments (wait, warmup, repeat, skip_first >= 0; "
                         "active > 0)")

    def fn(step):
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        n = wait + warmup + active
        if repeat > 0 and step // n >= repeat:
            return ProfilerAction.NONE
        m = step % n
        if m < wait:
            return ProfilerAction.NONE
        if m < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if m < n - 1 else ProfilerAction.RECORD_AND_SAVE
    return fn


def _default_schedule(step):
    return ProfilerAction.RECORD


class FunctionEvent:
    """One recorded range."""
    __slots__ = ("name", "cat", "start_ns", "end_ns", "child_ns", "shapes", "tid", "id",
                 "parent", "device_ns")

    def __init__(self, name, cat, start_ns, shapes, tid, parent):
        self.name, self.cat, self.start_ns, self.shapes = name, cat, start_ns, shapes
        self.tid, self.parent = tid, parent
        self.end_ns = start_ns
        self.child_ns = 0
        self.device_ns = 0

    @property
    def key(self):
        return self.name

    @property
    def cpu_time_total(self):          # microseconds, like torch
        return (self.end_ns - self.start_ns) / 1e3

    @property
    def self_cpu_time_total(self):
        return max(0, self.end_ns - self.start_ns - self.child_ns) / 1e3

    def __repr__(self):
        return f"<FunctionEvent {self.name} {self.cpu_time_total:.1f}us>"


class FunctionEventAvg:
    """Events with the same key, summed (what key_averages() lists)."""

    def __init__(self, key, input_shapes=None):
        self.key, self.input_shapes = key, input_shapes
        self.count = 0
        self.cpu_time_total = 0.0
        self.self_cpu_time_total = 0.0
        self.device_time_total = 0.0
        self.self_device_time_total = 0.0

    def add(self, e):
        self.count += 1
        self.cpu_time_total += e.cpu_time_total
        self.self_cpu_time_total += e.self_cpu_time_total
        self.device_time_total += e.device_ns / 1e3
        self.self_device_time_total += e.device_ns / 1e3
        return self

    @property
    def cpu_time(self):
        return self.cpu_time_total / max(self.count, 1)

    @property
    def device_time(self):
        return self.device_time_total / max(self.count, 1)

    # torch's older names
    cuda_time_total = property(lambda self: self.device_time_total)
    self_cuda_time_total = property(lambda self: self.self_device_time_total)
    cuda_time = property(lambda self: self.device_time)

    def __repr__(self):
        return (f"<FunctionEventAvg key={self.key} self_cpu_time={self.self_cpu_time_total:.1f}us "
                f"cpu_time={self.cpu_time_total:.1f}us count={self.count}>")


def _fmt_us(us):
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


class EventList(list):
    """A list of events or averages with torch's table()."""

    def __init__(self, items=(), with_device=False, with_shapes=False):
        super().__init__(items)
        self._with_device = with_device
        self._with_shapes = with_shapes

    def table(self, sort_by=None, row_limit=100, max_name_column_width=55, header=None,
              top_level_events_only=False):
        rows = list(self)
        if sort_by:
            key = sort_by.replace("cuda", "device")
            if rows and not hasattr(rows[0], key):
                raise ValueError(f"table: unknown sort_by {sort_by!r}")
            rows.sort(key=lambda r: getattr(r, key), reverse=True)
        if row_limit is not None and row_limit >= 0:
            rows = rows[:row_limit]
        total_self = sum(r.self_cpu_time_total for r in self) or 1.0
        total_dev = sum(r.self_device_time_total for r in self if hasattr(
            r, "self_device_time_total"))
        cols = ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg"]
        if self._with_device:
            cols += ["Self CUDA", "Self CUDA %", "CUDA total", "CUDA time avg"]
        cols += ["# of Calls"]
        if self._with_shapes:
            cols += ["Input Shapes"]
        body = []
        for r in rows:
            name = r.key if len(r.key) <= max_name_column_width else \
                r.key[:max_name_column_width - 3] + "..."
            line = [name, f"{100 * r.self_cpu_time_total / total_self:.2f}%",
                    _fmt_us(r.self_cpu_time_total),
                    f"{100 * r.cpu_time_total / total_self:.2f}%", _fmt_us(r.cpu_time_total),
                    _fmt_us(r.cpu_time)]
            if self._with_device:
                line += [_fmt_us(r.self_device_time_total),
                         f"{100 * r.self_device_time_total / (total_dev or 1.0):.2f}%",
                         _fmt_us(r.device_time_total), _fmt_us(r.device_time)]
            line += [str(r.count)]
            if self._with_shapes:
                line += [str(r.input_shapes or [])]
            body.append(line)
        widths = [max([len(c)] + [len(b[i]) for b in body]) for i, c in enumerate(cols)]
        widths[0] = max(widths[0], 25)
        sep = "  ".join("-" * w for w in widths) + "  "

        def fmt(cells):
            return "  ".join(c.ljust(w) if i == 0 or (self._with_shapes and i == len(cols) - 1)
                             else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))) + "  "
        out = [header] if header else []
        out += [sep, fmt(cols), sep] + [fmt(b) for b in body] + [sep]
        out.append(f"Self CPU time total: {_fmt_us(sum(r.self_cpu_time_total for r in self))}")
        if self._with_device:
            out.append(f"Self CUDA time total: {_fmt_us(total_dev)}")
        return "\n".join(out) + "\n"

    def __str__(self):
        return self.table()


# ------------------------------------------------------------------------ recording

_ACTIVE = None                  # the recording profile (one at a time, like torch)
_PREV = None                    # the PROFILE hook the profile's own hook chains to


class _Recorder:
    def __init__(self, record_shapes):
        self.record_shapes = record_shapes
        self.events = []
        self.stack = []

    def begin(self, name, cat, shapes=None):
        e = FunctionEvent(name, cat, time.perf_counter_ns(), shapes, threading.get_ident(),
                          self.stack[-1] if self.stack else None)
        self.stack.append(e)
        return e

    def end(self, e):
        e.end_ns = time.perf_counter_ns()
        if self.stack and self.stack[-1] is e:
            self.stack.pop()
        if e.parent is not None:
            e.parent.child_ns += e.end_ns - e.start_ns
        self.events.append(e)


def _shapes(args):
    T = _dispatch.Tensor
    return [list(a.shape) if isinstance(a, T) else [] for a in args]


def _apply_hook(p, args, attrs):
    rec = _ACTIVE
    _dispatch.PROFILE = _PREV       # (a hook installed before the profile, e.g. FlopCounterMode)
    try:
        if rec is None or _dispatch.STATE.tracer is not None:    # tracing: nothing runs
            return _dispatch.apply(p, *args, **attrs)
        e = rec.begin("kiln::" + p.name, "cpu_op",
                      _shapes(args) if rec.record_shapes else None)
        try:
            return _dispatch.apply(p, *args, **attrs)
        finally:
            rec.end(e)
    finally:
        if _ACTIVE is not None:
            _dispatch.PROFILE = _apply_hook


def _program_name(prog):
    g = getattr(prog, "_lifted", None)
    if g is None:
        g = prog.__dict__.get("graph") if hasattr(prog, "__dict__") else None
    return getattr(g, "name", type(prog).__name__)


def _wrap_run(orig):
    @functools.wraps(orig)
    def run(self, arrays, consts, *rest, **kw):
        rec = _ACTIVE
        if rec is None:
            return orig(self, arrays, consts, *rest, **kw)
        e = rec.begin(f"program: {_program_name(self)}", "kernel",
                      [list(getattr(a, "shape", ())) for a in arrays]
                      if rec.record_shapes else None)
        steps = getattr(self, "steps", None)
        before = [s.time_s for s in steps] if steps else None
        fn = getattr(self, "fn", None)
        marks = None
        if fn is not None and hasattr(fn, "mark"):   # NumPy programs mark each group's start
            marks = []
            fn.mark = lambda k, add=marks.append, now=time.perf_counter_ns: add((k, now()))
        try:
            return orig(self, arrays, consts, *rest, **kw)
        finally:
            if marks is not None:
                fn.mark = None
                for (k, t0), (_, t1) in zip(marks, marks[1:]):   # one child range per group
                    c = FunctionEvent(self.group_names[k], "kernel", t0, None, e.tid, e)
                    c.end_ns = t1
                    e.child_ns += t1 - t0
                    rec.events.append(c)
            if steps:                  # Triton programs: one child range per fused group
                t = e.start_ns
                for s, b in zip(steps, before):
                    d = int((s.time_s - b) * 1e9)
                    if d <= 0:
                        continue
                    name = s.kernel.name if s.kernel is not None else s.group.name
                    c = FunctionEvent(name, "kernel", t, None, e.tid, e)
                    c.end_ns = t + d
                    if self.backend == "triton":
                        c.device_ns = d
                    t += d
                    e.child_ns += d
                    rec.events.append(c)
            rec.end(e)
    run._kiln_profiled = orig
    return run


def _program_classes():
    from compiler.backend import Program
    from compiler.triton_backend import TritonProgram
    from ._compile.region import _Interpreted
    return [Program, TritonProgram, _Interpreted]


def _install(rec):
    global _ACTIVE, _PREV
    _ACTIVE = rec
    if _dispatch.PROFILE is not _apply_hook:
        _PREV = _dispatch.PROFILE
    _dispatch.PROFILE = _apply_hook
    for cls in _program_classes():
        if not hasattr(cls.run, "_kiln_profiled"):
            cls.run = _wrap_run(cls.run)


def _uninstall():
    global _ACTIVE, _PREV
    _ACTIVE = None
    _dispatch.PROFILE, _PREV = _PREV, None
    for cls in _program_classes():
        orig = getattr(cls.run, "_kiln_profiled", None)
        if orig is not None:
            cls.run = orig


class record_function:
    """A named range in the profile (context manager or decorator); free when not profiling."""

    def __init__(self, name, args=None):
        self.name = name
        self._e = None

    def __enter__(self):
        rec = _ACTIVE
        if rec is not None:
            self._e = (rec, rec.begin(self.name, "user_annotation"))
        return self

    def __exit__(self, *exc):
        if self._e is not None:
            rec, e = self._e
            rec.end(e)
            self._e = None
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*a, **k):
            with record_function(self.name):
                return fn(*a, **k)
        return wrapped


class profile:
    """torch.profiler.profile. See the module docstring."""

    def __init__(self, *, activities=None, schedule=None, on_trace_ready=None,
                 record_shapes=False, profile_memory=False, with_stack=False, with_flops=False,
                 with_modules=False, experimental_config=None, execution_trace_observer=None,
                 acc_events=False, use_cuda=None):
        acts = set(activities) if activities is not None else {ProfilerActivity.CPU}
        if use_cuda:
            acts.add(ProfilerActivity.CUDA)
        for a in acts:
            if not isinstance(a, ProfilerActivity):
                raise TypeError(f"profile: activities must be ProfilerActivity values, got {a!r}")
        self.activities = acts
        self.schedule = schedule or _default_schedule
        self.on_trace_ready = on_trace_ready
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.acc_events = acc_events
        self.step_num = 0
        self.current_action = None
        self._rec = None
        self._saved = None            # events of the last saved (or finished) active span
        self._t0 = None
        self._step_event = None

    # ---- lifecycle ------------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        if _ACTIVE is not None and self._rec is None and self.current_action is not None:
            pass
        self._t0 = time.perf_counter_ns()
        self.step_num = 0
        self.current_action = self.schedule(self.step_num)
        self._enter_action(None, self.current_action)

    def stop(self):
        self._end_step_range()
        if self.current_action in (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE):
            self._finish(save=True)
        elif self.current_action is ProfilerAction.WARMUP:
            self._finish(save=False)
        self.current_action = None

    def step(self):
        """Mark the end of one iteration (schedule advances)."""
        self._end_step_range()
        prev = self.current_action
        self.step_num += 1
        cur = self.schedule(self.step_num)
        if prev is ProfilerAction.RECORD_AND_SAVE:
            self._finish(save=True)
            prev = None
        elif prev in (ProfilerAction.RECORD, ProfilerAction.WARMUP) and cur is \
                ProfilerAction.NONE:
            self._finish(save=False)
            prev = None
        elif prev is ProfilerAction.RECORD and cur is ProfilerAction.WARMUP:
            self._finish(save=False)            # torch warns: incomplete active span
            prev = None
        self.current_action = cur
        self._enter_action(prev, cur)

    def _enter_action(self, prev, cur):
        recording = cur in (ProfilerAction.WARMUP, ProfilerAction.RECORD,
                            ProfilerAction.RECORD_AND_SAVE)
        if recording and self._rec is None:
            global _ACTIVE
            if _ACTIVE is not None:
                raise RuntimeError("profile: another profiler is already recording")
            self._rec = _Recorder(self.record_shapes)
            _install(self._rec)
        if self._rec is not None and cur is ProfilerAction.WARMUP:
            self._rec.events.clear()            # warm-up events are discarded
        if self._rec is not None and cur in (ProfilerAction.RECORD,
                                             ProfilerAction.RECORD_AND_SAVE):
            if prev is ProfilerAction.WARMUP:
                self._rec.events.clear()
            if self.schedule is not _default_schedule:
                self._step_event = self._rec.begin(f"ProfilerStep#{self.step_num}",
                                                   "user_annotation")

    def _end_step_range(self):
        if self._step_event is not None and self._rec is not None:
            rec, e = self._rec, self._step_event
            while rec.stack and rec.stack[-1] is not e:     # unclosed inner ranges
                rec.end(rec.stack[-1])
            rec.end(e)
        self._step_event = None

    def _finish(self, save):
        rec = self._rec
        self._rec = None
        if rec is not None:
            _uninstall()
            if save:
                self._saved = list(rec.events)
                if self.on_trace_ready is not None:
                    self.on_trace_ready(self)

    # ---- results ---------------------------------------------------------------------------
    def events(self):
        evs = self._saved if self._saved is not None else \
            (list(self._rec.events) if self._rec is not None else [])
        return EventList(sorted(evs, key=lambda e: e.start_ns),
                         with_device=ProfilerActivity.CUDA in self.activities)

    def key_averages(self, group_by_input_shape=False, group_by_stack_n=0):
        avgs = {}
        for e in self.events():
            shapes = tuple(map(tuple, e.shapes)) if group_by_input_shape and e.shapes else None
            k = (e.name, shapes)
            if k not in avgs:
                avgs[k] = FunctionEventAvg(e.name, [list(s) for s in shapes] if shapes else None)
            avgs[k].add(e)
        return EventList(avgs.values(), with_device=ProfilerActivity.CUDA in self.activities,
                         with_shapes=group_by_input_shape)

    def export_chrome_trace(self, path):
        """Chrome trace JSON (chrome://tracing, Perfetto): one complete ('X') event per range."""
        evs = self.events()
        t0 = min((e.start_ns for e in evs), default=0)
        pid = os.getpid()
        trace = []
        for e in evs:
            ev = {"ph": "X", "cat": e.cat, "name": e.name, "pid": pid, "tid": e.tid % (1 << 31),
                  "ts": (e.start_ns - t0) / 1e3, "dur": (e.end_ns - e.start_ns) / 1e3,
                  "args": {}}
            if e.shapes is not None:
                ev["args"]["Input Dims"] = e.shapes
            trace.append(ev)
        doc = {"schemaVersion": 1, "displayTimeUnit": "ms", "traceEvents": trace,
               "deviceProperties": [], "traceName": str(path)}
        with open(path, "w") as f:
            json.dump(doc, f)
        return path


def tensorboard_trace_handler(dir_name, worker_name=None, use_gzip=False):
    """on_trace_ready handler writing <dir>/<worker>.<step>.pt.trace.json (Chrome format)."""
    def handler(prof):
        os.makedirs(dir_name, exist_ok=True)
        w = worker_name or f"{os.uname().nodename}_{os.getpid()}"
        prof.export_chrome_trace(os.path.join(dir_name, f"{w}.{prof.step_num}.pt.trace.json"))
    return handler


__all__ = ["profile", "record_function", "ProfilerActivity", "ProfilerAction", "schedule",
           "tensorboard_trace_handler"]
