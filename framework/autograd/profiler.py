"""torch.autograd.profiler: the older profiler API over Kiln's profiler (framework.profiler).

    with torch.autograd.profiler.profile(record_shapes=True) as prof:
        with torch.autograd.profiler.record_function("step"):
            loss = model(x).sum()
            loss.backward()
    print(prof.key_averages().table(sort_by="self_cpu_time_total"))
    prof.export_chrome_trace("trace.json")

profile records what framework.profiler.profile records (it runs one underneath): every eager
primitive as `kiln::<prim>` (backward's primitives included), every compiled-program run and
its kernels, and record_function ranges; times are host wall-clock microseconds. Like torch's,
the object can be entered once (it is not reentrant), `enabled=False` makes it a no-op whose
__enter__ returns None, and results (function_events, key_averages(), table(),
self_cpu_time_total, total_average(), export_chrome_trace()) describe the finished run: read
inside the block they are empty.

function_events are Kiln's FunctionEvents (name, key, cpu_time_total, self_cpu_time_total,
shapes, parent, start_ns/end_ns); table() lists them one row per event, as torch's does.
Accepted without effect: with_flops (Kiln counts no FLOPs; it turns record_shapes on, as in
torch), profile_memory, with_stack, with_modules, use_kineto, experimental_config, acc_events,
custom_trace_id_callback, post_processing_timeout_s, activity_filters. use_device='cuda' (or
the deprecated use_cuda=True) adds Kiln's device column when Kiln has a GPU, and otherwise
warns and profiles the CPU only, as torch does. Not provided: export_stacks (Kiln records no
stacks) and load_nvprof / parse_nvprof_trace (no nvprof traces).
"""
import warnings

from .. import profiler as _kp
from ..profiler import record_function, EventList, FunctionEvent, FunctionEventAvg  # noqa: F401

__all__ = ["profile", "record_function", "emit_itt", "emit_nvtx", "EventList", "FunctionEvent",
           "FunctionEventAvg"]


def _kiln():
    import sys
    return sys.modules[__name__.split(".")[0]]


def _cuda_available():
    cuda = getattr(_kiln(), "cuda", None)
    return cuda is not None and cuda.is_available()


def _synchronize(device):
    mod = getattr(_kiln(), device, None)
    if mod is not None and hasattr(mod, "synchronize"):
        mod.synchronize()


class profile:
    """torch.autograd.profiler.profile (see the module docstring)."""

    def __init__(self, enabled=True, *, use_cuda=False, use_device=None, record_shapes=False,
                 with_flops=False, profile_memory=False, with_stack=False, with_modules=False,
                 use_kineto=False, use_cpu=True, experimental_config=None, acc_events=False,
                 custom_trace_id_callback=None, post_processing_timeout_s=None,
                 activity_filters=None):
        self.enabled = enabled
        if not self.enabled:
            return
        self.use_cuda = use_cuda
        if self.use_cuda:
            warnings.warn("The attribute `use_cuda` will be deprecated soon, "
                          "please use ``use_device = 'cuda'`` instead.", FutureWarning,
                          stacklevel=2)
            self.use_device = "cuda"
        else:
            self.use_device = use_device
        self._function_events = None
        self._prof = None
        self._finished = False
        self.entered = False
        self.record_shapes = record_shapes
        self.with_flops = with_flops
        self.record_shapes |= self.with_flops
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.with_modules = with_modules
        self.use_cpu = use_cpu
        self.use_kineto = use_kineto
        self.acc_events = acc_events
        self.experimental_config = experimental_config
        self.custom_trace_id_callback = custom_trace_id_callback
        self.post_processing_timeout_s = post_processing_timeout_s
        self.activity_filters = activity_filters or {}
        if not self.use_cpu and not use_kineto:
            raise AssertionError("Device-only events supported only with Kineto "
                                 "(use_kineto=True)")
        if self.use_device is not None:
            if self.use_device not in ("cuda", "xpu", "mtia", "hpu"):
                warnings.warn(f"The {self.use_device} is not a valid device option.",
                              stacklevel=2)
                self.use_device = None
            elif self.use_device == "cuda" and not _cuda_available():
                warnings.warn("CUDA is not available, disabling CUDA profiling", stacklevel=2)
                self.use_cuda = False
                self.use_device = None
            elif self.use_device != "cuda":          # Kiln has no XPU / MTIA / HPU backend
                name = self.use_device.upper()
                warnings.warn(f"{name} is not available, disabling {name} profiling",
                              stacklevel=2)
                self.use_device = None
        self._activities = []
        if self.use_cpu:
            self._activities.append(_kp.ProfilerActivity.CPU)
        if self.use_device == "cuda":
            self._activities.append(_kp.ProfilerActivity.CUDA)
        if not self._activities:
            raise AssertionError("No activities specified for the profiler")
        if post_processing_timeout_s is not None and post_processing_timeout_s < 0:
            raise ValueError("post_processing_timeout_s must be non-negative")

    # ---- lifecycle ------------------------------------------------------------------------
    def __enter__(self):
        if not self.enabled:
            return None
        if self.entered:
            raise RuntimeError("Profiler context manager is not reentrant")
        self.entered = True
        self._prof = _kp.profile(activities=self._activities, record_shapes=self.record_shapes,
                                 profile_memory=self.profile_memory, with_stack=self.with_stack,
                                 with_flops=self.with_flops, with_modules=self.with_modules,
                                 experimental_config=self.experimental_config)
        self._prof.start()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        if not self.enabled:
            return None
        if self.use_device:
            _synchronize(self.use_device)
        self._prof.stop()
        self._finished = True
        self._function_events = None
        return False

    def __repr__(self):
        if not self._finished:
            return "<unfinished torch.autograd.profile>"
        return repr(self.function_events)

    def __str__(self):
        if not self._finished:
            return "<unfinished torch.autograd.profile>"
        return self.table()

    # ---- results --------------------------------------------------------------------------
    @property
    def function_events(self):
        """The recorded events (Kiln FunctionEvents, by start time); empty until the block has
        exited, as in torch."""
        if self._function_events is None:
            if self._finished:
                self._function_events = self._prof.events()
            else:
                return EventList([], with_device=self.use_device is not None)
        return self._function_events

    def key_averages(self, group_by_input_shape=False, group_by_stack_n=0,
                     group_by_overload_name=False):
        """Events averaged by name (and by input shapes when asked)."""
        if not self._finished:
            return EventList([], with_device=self.use_device is not None,
                             with_shapes=group_by_input_shape)
        return self._prof.key_averages(group_by_input_shape=group_by_input_shape,
                                       group_by_stack_n=group_by_stack_n)

    def table(self, sort_by=None, row_limit=100, max_src_column_width=75,
              max_name_column_width=55, max_shapes_column_width=80, header=None,
              top_level_events_only=False):
        """The events as torch's table, one row per event (use key_averages().table() for one
        row per name). top_level_events_only keeps the events with no enclosing range."""
        evs = [e for e in self.function_events
               if not top_level_events_only or e.parent is None]
        rows = EventList([FunctionEventAvg(e.name, e.shapes).add(e) for e in evs],
                         with_device=self.use_device is not None,
                         with_shapes=any(e.shapes for e in evs))
        return rows.table(sort_by=sort_by, row_limit=row_limit,
                          max_name_column_width=max_name_column_width, header=header)

    def export_chrome_trace(self, path, metadata=None, use_python_export=False):
        """Write the events as a Chrome trace (JSON; chrome://tracing, Perfetto). `metadata`
        entries are added to the top-level object."""
        if not self._finished:
            raise RuntimeError("export_chrome_trace: the profiler has not finished running "
                               "(call it after the `with` block)")
        self._prof.export_chrome_trace(path)
        if metadata:
            import json
            with open(path) as f:
                doc = json.load(f)
            doc.update({str(k): v for k, v in metadata.items()})
            with open(path, "w") as f:
                json.dump(doc, f)

    def total_average(self):
        """One FunctionEventAvg (key 'Total') summing every event."""
        total = FunctionEventAvg("Total")
        for e in self.function_events:
            total.add(e)
        return total

    @property
    def self_cpu_time_total(self):
        """Total CPU time (us): the sum of every event's self time."""
        return sum(e.self_cpu_time_total for e in self.function_events)


class _Annotations:
    """Base of emit_nvtx / emit_itt: torch turns on annotation ranges read by an external tool
    (Nsight / nvprof, VTune). Kiln has neither NVTX nor ITT, so entering these emits nothing;
    they exist so that code written for torch runs unchanged. They keep torch's checks: a
    disabled one does nothing and returns None, and an instance cannot be entered twice."""

    _tool = ""
    _sync = False

    def __init__(self, enabled=True, record_shapes=False):
        self.enabled = enabled
        self.entered = False
        self.record_shapes = record_shapes

    def __enter__(self):
        if not self.enabled:
            return None
        if self.entered:
            raise RuntimeError(f"{self._tool} annotation context manager is not reentrant")
        self.entered = True
        if self._sync:
            _synchronize("cuda")
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        if not self.enabled:
            return None
        if self._sync:
            _synchronize("cuda")
        return False


class emit_nvtx(_Annotations):
    """torch.autograd.profiler.emit_nvtx. Kiln has no NVTX: nothing is annotated for Nsight
    Systems / nvprof. Entering and leaving synchronize Kiln's GPU (when present), as torch's
    does, so that a range measured around the block covers its device work."""
    _tool = "NVTX"
    _sync = True


class emit_itt(_Annotations):
    """torch.autograd.profiler.emit_itt. Kiln has no ITT (Intel VTune) instrumentation: nothing
    is annotated."""
    _tool = "ITT"
