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

ExecutionTraceObserver (also profile(execution_trace_observer=...)) writes the primitives and
record_function ranges run while it is started as PyTorch's Chakra execution-trace JSON.

schedule(wait, warmup, active, repeat, skip_first) behaves like torch's: call prof.step() once
per iteration; steps in `wait` record nothing, `warmup` steps run the profiler but discard
their events, `active` steps are recorded, and at the end of each active span on_trace_ready
(when given) is called with the profiler; key_averages()/events() then describe that span.
Profiling costs nothing when off: apply() checks one module global.
"""
import collections
import enum
import functools
import json
import os
import threading
import time
import warnings

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
        et = _ET
        self._et = (et, et._begin(self.name, int(RecordScope.USER_SCOPE))) \
            if et is not None else None
        return self

    def __exit__(self, *exc):
        if self._e is not None:
            rec, e = self._e
            rec.end(e)
            self._e = None
        if getattr(self, "_et", None) is not None:
            et, node = self._et
            et._end(node, [], None)
            self._et = None
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
        self.execution_trace_observer = execution_trace_observer
        KinetoStepTracker.init_step_count("ProfilerStep")

    # ---- lifecycle ------------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        KinetoStepTracker.erase_step_count("ProfilerStep")
        if self.execution_trace_observer:
            self.execution_trace_observer.cleanup()
        return False

    def start(self):
        if _ACTIVE is not None and self._rec is None and self.current_action is not None:
            pass
        self._t0 = time.perf_counter_ns()
        self.step_num = 0
        self.current_action = self.schedule(self.step_num)
        self._enter_action(None, self.current_action)
        if self.execution_trace_observer:
            self.execution_trace_observer.start()

    def stop(self):
        if self.execution_trace_observer:
            self.execution_trace_observer.stop()
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


class _CEnum(enum.Enum):
    """An enum as PyTorch's C++ (pybind) ones behave: int() gives its value."""

    def __int__(self):
        return self.value

    __index__ = __int__


class RecordScope(_CEnum):
    """Kinds of recorded ranges (torch._C._profiler.RecordScope)."""
    FUNCTION = 0
    BACKWARD_FUNCTION = 1
    TORCHSCRIPT_FUNCTION = 2
    KERNEL_FUNCTION_DTYPE = 3
    CUSTOM_CLASS = 4
    BUILD_FEATURE = 5
    LITE_INTERPRETER = 6
    USER_SCOPE = 7
    STATIC_RUNTIME_OP = 8
    STATIC_RUNTIME_MODEL = 9


class DeviceType(_CEnum):
    """Device kinds with c10's numbering (torch._C._autograd.DeviceType)."""
    CPU = 0
    CUDA = 1
    MKLDNN = 2
    OPENGL = 3
    OPENCL = 4
    IDEEP = 5
    HIP = 6
    FPGA = 7
    MAIA = 8
    XLA = 9
    Vulkan = 10
    Metal = 11
    XPU = 12
    MPS = 13
    MTIA = 19
    Meta = 14
    HPU = 15
    VE = 16
    Lazy = 17
    IPU = 18
    PrivateUse1 = 20


def supported_activities():
    """The activities profile can trace: CPU, and CUDA when Kiln has a GPU."""
    acts = {ProfilerActivity.CPU}
    try:
        from . import cuda
        if cuda.is_available():
            acts.add(ProfilerActivity.CUDA)
    except Exception:   # noqa: BLE001 - no device runtime: the CPU only
        pass
    return acts


def kineto_available():
    """True: Kiln's profile provides what Kineto gives torch.profiler (timed op and kernel
    ranges, schedules, Chrome traces)."""
    return True


def register_optimizer_step_post_hook(hook):
    """hook(optimizer, args, kwargs) after every optimizer's step (torch.optim's global hook)."""
    from .optim.optimizer import register_optimizer_step_post_hook as reg
    return reg(hook)


class KinetoStepTracker:
    """One global step count from several requesters (the profiler's step(), optimizers):
    per requester counts, the global step is their max; it moves only when the max grows."""

    _current_step = 0
    _step_dict = collections.defaultdict(int)

    @classmethod
    def init_step_count(cls, requester):
        cls._step_dict[requester] = cls._current_step

    @classmethod
    def erase_step_count(cls, requester):
        return cls._step_dict.pop(requester, None) is not None

    @classmethod
    def increment_step(cls, requester):
        if requester not in cls._step_dict:
            cls.init_step_count(requester)
        cls._step_dict[requester] += 1
        new_step = max(cls._step_dict.values())
        if new_step > cls._current_step:
            if new_step - cls._current_step > 1:
                warnings.warn("Profiler step count has increased more than 1 - current_step = "
                              f"{cls._current_step} step dict =  {cls._step_dict}", stacklevel=2)
            cls._current_step = new_step      # (Kiln has no Kineto library to notify)
        return cls._current_step

    @classmethod
    def current_step(cls):
        return cls._current_step


# ---- execution trace ----------------------------------------------------------------------------

_ET = None              # the running ExecutionTraceObserver
_ET_PREV = None         # the PROFILE hook the observer's hook chains to

_ET_TYPES = {"float32": "float", "float64": "double", "float16": "c10::Half",
             "bfloat16": "c10::BFloat16", "int64": "long int", "int32": "int",
             "int16": "short int", "int8": "signed char", "uint8": "unsigned char",
             "bool": "bool", "complex64": "c10::complex<float>",
             "complex128": "c10::complex<double>"}


def _et_hook(p, args, attrs):
    et = _ET
    _dispatch.PROFILE = _ET_PREV
    try:
        if et is None or _dispatch.STATE.tracer is not None:    # tracing: nothing runs
            return _dispatch.apply(p, *args, **attrs)
        node = et._begin("kiln::" + p.name)
        out = None
        try:
            out = _dispatch.apply(p, *args, **attrs)
            return out
        finally:
            et._end(node, list(args) + list(attrs.values()), out)
    finally:
        if _ET is not None:
            _dispatch.PROFILE = _et_hook


class ExecutionTraceObserver:
    """Records every primitive Kiln runs (and record_function range) between start() and
    stop() as a node of an execution trace (PyTorch's Chakra JSON: schema, pid, time,
    start_ts, nodes, finish_ts; each node's id, name, ctrl_deps (its parent), inputs / outputs
    (values, shapes, types, strides) and attrs), written to the file given to
    register_callback when unregister_callback (or cleanup) runs; a .gz path is gzipped."""

    def __init__(self):
        self._registered = False
        self._execution_trace_running = False
        self.extra_resources_collection = False
        self.resources_dir = ""
        self.output_file_path = ""
        self.output_file_path_observer = ""
        self._nodes = []
        self._stack = []
        self._ids = {}

    def __del__(self):
        self.unregister_callback()

    def register_callback(self, output_file_path):
        if not self._registered:
            self.output_file_path = self.output_file_path_observer = output_file_path
            self._registered = True
            self._nodes, self._next = [], 3
            self._start_ts = None
        return self

    def unregister_callback(self):
        if getattr(self, "_registered", False):
            self.stop()
            self._write()
            self._registered = False

    @property
    def is_registered(self):
        return self._registered

    def is_running(self):
        return self._execution_trace_running

    def set_extra_resource_collection(self, val):
        self.extra_resources_collection = val

    def get_output_file_path(self):
        return self.output_file_path or None

    def start(self):
        global _ET, _ET_PREV
        if self._registered and not self._execution_trace_running:
            if _ET is not None:
                raise RuntimeError("an ExecutionTraceObserver is already running")
            self._execution_trace_running = True
            if self._start_ts is None:
                self._start_ts = time.perf_counter_ns() // 1000
                self._time = time.strftime("%Y-%m-%d %H:%M:%S")
            _ET = self
            if _dispatch.PROFILE is not _et_hook:
                _ET_PREV = _dispatch.PROFILE
            _dispatch.PROFILE = _et_hook

    def stop(self):
        global _ET, _ET_PREV
        if self._execution_trace_running:
            self._execution_trace_running = False
            _ET = None
            if _dispatch.PROFILE is _et_hook:
                _dispatch.PROFILE, _ET_PREV = _ET_PREV, None
            self._stack.clear()

    def cleanup(self):
        self.unregister_callback()

    # ---- recording ------------------------------------------------------------------------
    def _begin(self, name, scope=0):
        node = {"id": self._next, "name": name,
                "ctrl_deps": self._stack[-1]["id"] if self._stack else 2,
                "_rf": self._next - 3, "_scope": scope}
        self._next += 1
        self._stack.append(node)
        return node

    def _end(self, node, inputs, out):
        if self._stack and self._stack[-1] is node:
            self._stack.pop()
        outs = list(out) if isinstance(out, (tuple, list)) else ([] if out is None else [out])
        node["inputs"] = self._describe(inputs)
        node["outputs"] = self._describe(outs)
        node["attrs"] = self._attrs(node.pop("_rf"), node.pop("_scope"))
        self._nodes.append(node)

    def _uid(self, key):
        u = self._ids.get(key)
        if u is None:
            u = self._ids[key] = self._next
            self._next += 1
        return u

    def _value(self, v):
        T = _dispatch.Tensor
        if isinstance(v, T):
            try:
                ptr, sptr = v.data_ptr(), v.untyped_storage().data_ptr()
            except Exception:   # noqa: BLE001 - a tensor without storage (meta, ...)
                ptr = sptr = id(v)
            return ([self._uid(("t", ptr, tuple(v.shape))), self._uid(("s", sptr)),
                     int(v.storage_offset()), int(v.numel()), int(v.element_size()),
                     str(v.device)], list(v.shape),
                    f"Tensor({_ET_TYPES.get(str(v.dtype).replace('torch.', ''), 'float')})",
                    list(v.stride()))
        if v is None:
            return "<None>", [], "None", []
        if isinstance(v, bool):
            return v, [], "Bool", []
        if isinstance(v, int):
            return v, [], "Int", []
        if isinstance(v, float):
            return v, [], "Double", []
        if isinstance(v, str):
            return v, [], "String", []
        if isinstance(v, (list, tuple)):
            items = [self._value(x) for x in v]
            return ([i[0] for i in items], [i[1] for i in items],
                    "GenericList[" + ",".join(i[2] for i in items) + "]",
                    [i[3] for i in items])
        return str(v), [], type(v).__name__, []

    def _describe(self, vals):
        d = {"values": [], "shapes": [], "types": [], "strides": []}
        for v in vals:
            val, shape, typ, stride = self._value(v)
            d["values"].append(val)
            d["shapes"].append(shape)
            d["types"].append(typ)
            d["strides"].append(stride)
        return d

    @staticmethod
    def _attrs(rf_id, scope):
        return [{"name": "rf_id", "type": "uint64", "value": rf_id},
                {"name": "fw_parent", "type": "uint64", "value": 0},
                {"name": "seq_id", "type": "int64", "value": -1},
                {"name": "scope", "type": "uint64", "value": scope},
                {"name": "tid", "type": "uint64", "value": 1},
                {"name": "fw_tid", "type": "uint64", "value": 0},
                {"name": "op_schema", "type": "string", "value": ""},
                {"name": "kernel_backend", "type": "string", "value": ""},
                {"name": "kernel_file", "type": "string", "value": ""},
                {"name": "tensor_range", "type": "string", "value": ""}]

    def _write(self):
        empty = {"values": [], "shapes": [], "types": [], "strides": []}

        def root(i, name, scope):
            return {"id": i, "name": f"[pytorch|profiler|execution_trace|{name}]",
                    "ctrl_deps": 1, "inputs": empty, "outputs": empty,
                    "attrs": self._attrs(0, scope)}
        start = self._start_ts if self._start_ts is not None else time.perf_counter_ns() // 1000
        doc = {"schema": "1.1.1-chakra.0.0.4", "pid": os.getpid(),
               "time": getattr(self, "_time", time.strftime("%Y-%m-%d %H:%M:%S")),
               "start_ts": start,
               "nodes": [root(2, "thread", int(RecordScope.USER_SCOPE))] + self._nodes +
                        [root(1, "process", int(RecordScope.USER_SCOPE))],
               "finish_ts": time.perf_counter_ns() // 1000}
        text = json.dumps(doc)
        if self.output_file_path.endswith(".gz"):
            import gzip
            with gzip.open(self.output_file_path, "wt") as f:
                f.write(text)
        else:
            with open(self.output_file_path, "w") as f:
                f.write(text)


def tensorboard_trace_handler(dir_name, worker_name=None, use_gzip=False):
    """on_trace_ready handler writing <dir>/<worker>.<step>.pt.trace.json (Chrome format)."""
    def handler(prof):
        os.makedirs(dir_name, exist_ok=True)
        w = worker_name or f"{os.uname().nodename}_{os.getpid()}"
        prof.export_chrome_trace(os.path.join(dir_name, f"{w}.{prof.step_num}.pt.trace.json"))
    return handler


__all__ = ["profile", "record_function", "ProfilerActivity", "ProfilerAction", "schedule",
           "tensorboard_trace_handler", "supported_activities", "kineto_available",
           "register_optimizer_step_post_hook", "KinetoStepTracker", "ExecutionTraceObserver",
           "RecordScope", "DeviceType"]
