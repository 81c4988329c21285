"""Streams and events: torch.Stream / torch.Event and torch.cuda's Stream, Event, stream(),
current_stream(), default_stream(), set_stream().

Each stream or event has one of these backends:
  gpu     CuPy finds a GPU: a cupy.cuda.Stream / cupy.cuda.Event underneath. Kiln's Triton
          launches and copies go to CuPy's current stream (runtime.cuda.hook_triton_stream,
          compiler/codegen/relaunch.py), so making a stream current is CuPy's Stream.use().
  interp  KILN_DEVICE=interpret ('cuda' is Triton's interpreter on host memory): a launch has
          finished when it returns, so every stream is idle (query() is True), streams are
          ordered trivially, and an event's time is a host perf_counter_ns() stamp taken at
          record().
  cpu     (and meta) torch.Stream('cpu') / torch.Event('cpu'), as torch's cpu build: no events.
Without a GPU or the interpret device, torch.cuda.Stream() and torch.cuda.Event() raise, as in
torch's cpu build.
"""
import threading
import time

from runtime import cuda as _rt
from runtime.device import Device

_TYPE_CODE = {"cpu": 0, "cuda": 1, "meta": 14, "interpret": 1}   # c10::DeviceType values
_NO_ACCEL = "Cannot access accelerator device when none is available."
_INTERP_RANGE = (0, -1)        # the (least, greatest) priorities the interpret device reports


def _accel():
    """'gpu', 'interp', or None when Kiln has no accelerator."""
    from . import cuda
    if not cuda.is_available():
        return None
    return "gpu" if cuda._gpu() else "interp"


def _cur_index():
    return _rt.current_device() if _accel() == "gpu" else 0


def _resolve(device, what):
    """(backend, Device) for a torch.Stream / torch.Event device argument."""
    if device is None:
        kind = _accel()
        return ("cpu", Device("cpu")) if kind is None else (kind, Device("cuda", _cur_index()))
    if isinstance(device, int) and not isinstance(device, bool):
        kind = _accel()
        if kind is None:
            raise RuntimeError(_NO_ACCEL)
        return kind, Device("cuda", device)
    d = Device(device)
    if d.type in ("cpu", "meta"):
        return d.type, Device(d.type)
    if d.type == "interpret":
        from runtime import backends
        backends.require(d)
        return "interp", Device("interpret", d.index or 0)
    kind = _accel()
    if kind is None:
        raise RuntimeError(f"{what}: no CUDA device is available to Kiln (CuPy and an NVIDIA "
                           "driver are needed; KILN_DEVICE=interpret runs 'cuda' on the Triton "
                           "interpreter)")
    return kind, Device("cuda", _cur_index() if d.index is None else d.index)


_INTERP = threading.local()     # .current: device index -> the interpret device's current
                                # Stream, per thread as CUDA's current stream is


def _interp_current():
    d = getattr(_INTERP, "current", None)
    if d is None:
        d = _INTERP.current = {}
    return d


_INTERP_IDS = [0]


class Stream:
    """torch.Stream(device=None, *, priority=0): a stream of `device` (default: the current
    accelerator, else cpu). On cpu it is a placeholder that records no events, as in torch."""

    def __init__(self, device=None, *, priority=0):
        kind, dev = _resolve(device, "torch.Stream")
        self._setup(kind, dev, priority)

    def _setup(self, kind, dev, priority):
        self._kind, self._dev, self._cp, self._ctx = kind, dev, None, []
        if kind == "gpu":
            cp = _rt._cupy()
            with _rt.on_device(dev.index):
                # non_blocking: no implicit sync with the legacy default stream, as torch's
                self._cp = cp.cuda.Stream(non_blocking=True, priority=int(priority))
            self._id = int(self._cp.ptr)
        elif kind == "interp":
            lo, hi = _INTERP_RANGE
            self._priority = min(max(int(priority), hi), lo)      # CUDA clamps the same way
            _INTERP_IDS[0] += 1
            self._id = _INTERP_IDS[0]
        else:
            self._id = 0

    @classmethod
    def _wrap(cls, kind, index, cp_stream=None, stream_id=0, priority=0):
        """An existing stream: CuPy's `cp_stream`, or the interpret device's stream_id."""
        s = cls.__new__(cls)
        s._kind, s._dev, s._cp, s._ctx = kind, Device("cuda", index), cp_stream, []
        s._id = int(cp_stream.ptr) if cp_stream is not None else stream_id
        s._priority = priority
        return s

    # ---- identity
    @property
    def device(self):
        return self._dev

    @property
    def device_type(self):
        return _TYPE_CODE[self._dev.type]

    @property
    def device_index(self):
        return -1 if self._kind in ("cpu", "meta") else self._dev.index

    @property
    def stream_id(self):
        return self._id

    @property
    def native_handle(self):
        if self._kind in ("cpu", "meta"):
            raise RuntimeError("Backend doesn't support getting stream native handle.")
        return self._id

    def __eq__(self, other):
        if not isinstance(other, Stream):
            return False
        return (self._dev.type, self.device_index, self._id) == \
               (other._dev.type, other.device_index, other._id)

    def __hash__(self):
        return hash((self._dev.type, self.device_index, self._id))

    def __repr__(self):
        return (f"torch.Stream device_type={self._dev.type}, device_index={self.device_index}, "
                f"stream_id={self._id}")

    # ---- work
    def query(self):
        """True when all work queued on the stream has finished."""
        return bool(self._cp.done) if self._kind == "gpu" else True

    def synchronize(self):
        if self._kind == "gpu":
            self._cp.synchronize()
            if _rt._DEFERRED:
                _rt.check_deferred()

    def is_capturing(self):
        return bool(self._cp.is_capturing()) if self._kind == "gpu" else False

    def _new_event(self):
        return Event(self._dev)

    def record_event(self, event=None):
        """Record `event` (a new one when None) on this stream and return it."""
        if self._kind in ("cpu", "meta"):
            raise RuntimeError(f"{self._kind} backend doesn't support events.")
        if event is None:
            event = self._new_event()
        event.record(self)
        return event

    def wait_event(self, event):
        """Work queued on this stream from now on waits for `event`."""
        event.wait(self)

    def wait_stream(self, stream):
        """Work queued on this stream from now on waits for what `stream` has queued now."""
        self.wait_event(stream.record_event())

    # `with stream:` makes it current inside the block (a no-op for cpu streams)
    def __enter__(self):
        if self._kind not in ("cpu", "meta"):
            ctx = StreamContext(self)
            ctx.__enter__()
            self._ctx.append(ctx)
        return self

    def __exit__(self, *exc):
        if self._ctx:
            self._ctx.pop().__exit__(*exc)


class Event:
    """torch.Event(device=None, *, enable_timing=False, blocking=False, interprocess=False)."""

    def __init__(self, device=None, *, enable_timing=False, blocking=False, interprocess=False):
        kind, dev = _resolve(device, "torch.Event")
        self._setup(kind, dev, enable_timing, blocking, interprocess)

    def _setup(self, kind, dev, enable_timing, blocking, interprocess):
        self._kind, self._dev = kind, dev
        self._timing, self._blocking = bool(enable_timing), bool(blocking)
        self._interprocess = bool(interprocess)
        self._ev = None          # the CuPy event, made at the first record (on its device)
        self._t = None           # interp: perf_counter_ns() at the last record

    @property
    def device(self):
        return self._dev

    @property
    def event_id(self):
        return int(self._ev.ptr) if self._ev is not None else 0

    def __repr__(self):
        return (f"torch.Event device_type={self._dev.type}, device_index="
                f"{-1 if self._kind in ('cpu', 'meta') else self._dev.index}, "
                f"event_flag={int(self._timing)}, event_id={self.event_id}")

    def _recorded(self):
        return self._ev is not None if self._kind == "gpu" else self._t is not None

    def _stream(self, stream):
        if stream is None:
            return current_stream(self._dev.index)
        if not isinstance(stream, Stream) or stream._kind != self._kind:
            mine = "cuda" if self._dev is None else self._dev.type
            raise RuntimeError(f"Event device type {mine} does not match the recording "
                               f"stream's ({stream!r})")
        return stream

    def record(self, stream=None):
        """Record the event on `stream` (default: the current stream)."""
        if self._kind in ("cpu", "meta"):
            raise RuntimeError(f"{self._kind} backend doesn't support events.")
        s = self._stream(stream)
        if self._kind == "gpu":
            if self._ev is None:
                with _rt.on_device(s.device.index):
                    self._ev = _rt._cupy().cuda.Event(block=self._blocking,
                                                      disable_timing=not self._timing,
                                                      interprocess=self._interprocess)
                self._dev = s.device
            elif s.device.index != self._dev.index:
                raise RuntimeError(f"Event device {self._dev} does not match recording "
                                   f"stream's device {s.device}.")
            self._ev.record(s._cp)
        else:
            self._t = time.perf_counter_ns()

    def wait(self, stream=None):
        """Work queued on `stream` (default: current) from now on waits for this event."""
        if self._kind in ("cpu", "meta"):
            return
        s = self._stream(stream)
        if self._kind == "gpu" and self._ev is not None:
            s._cp.wait_event(self._ev)

    def query(self):
        """True when the work the event captured has finished (or it was never recorded)."""
        return bool(self._ev.done) if self._kind == "gpu" and self._ev is not None else True

    def synchronize(self):
        if self._kind == "gpu" and self._ev is not None:
            self._ev.synchronize()

    def elapsed_time(self, end_event):
        """Milliseconds between this event's record and end_event's."""
        if not isinstance(end_event, Event):
            raise RuntimeError("expected other to be a torch.Event object")
        # torch.Event on cpu raises ValueError; the CUDA backend's checks raise RuntimeError
        err = ValueError if self._kind in ("cpu", "meta") else RuntimeError
        if not (self._timing and end_event._timing):
            raise err("Both events must be created with argument 'enable_timing=True'.")
        if not (self._recorded() and end_event._recorded()):
            raise err("Both events must be recorded before calculating elapsed time.")
        if self._kind == "gpu":
            return float(_rt._cupy().cuda.get_elapsed_time(self._ev, end_event._ev))
        return (end_event._t - self._t) / 1e6

    def ipc_handle(self):
        raise NotImplementedError("torch.Event ipc is not supported yet, please open an issue "
                                  "if you need this!")

    @classmethod
    def from_ipc_handle(cls, device, handle):
        raise NotImplementedError("torch.Event ipc is not supported yet, please open an issue "
                                  "if you need this!")


# ---- torch.cuda ------------------------------------------------------------------------------

def _cuda_kind(what):
    kind = _accel()
    if kind is None:
        raise RuntimeError(what)
    return kind


def _cuda_index(device):
    if device is None:
        return _cur_index()
    if isinstance(device, int) and not isinstance(device, bool):
        return _cur_index() if device < 0 else device
    d = Device(device)
    if d.type not in ("cuda", "interpret"):
        raise ValueError(f"Expected a cuda device, but got: {d}")
    return _cur_index() if d.index is None else d.index


class CudaStream(Stream):
    """torch.cuda.Stream(device=None, priority=0): a new stream on a CUDA device."""

    def __init__(self, device=None, priority=0, **kwargs):
        kind = _cuda_kind("torch.cuda.Stream requires CUDA support")
        self._setup(kind, Device("cuda", _cuda_index(device)), priority)

    @property
    def cuda_stream(self):
        """The cudaStream_t handle as an int (0: the default stream)."""
        return self._id

    @property
    def priority(self):
        return int(self._cp.priority) if self._kind == "gpu" else self._priority

    @staticmethod
    def priority_range():
        """(least, greatest) priority: lower numbers run first."""
        if _cuda_kind("torch.cuda.Stream requires CUDA support") == "gpu":
            rt = _rt._cupy().cuda.runtime
            f = getattr(rt, "deviceGetStreamPriorityRange", None)
            if f is not None:
                return tuple(int(v) for v in f())
        return _INTERP_RANGE

    def _new_event(self):
        return CudaEvent()

    def __eq__(self, other):
        return isinstance(other, CudaStream) and super().__eq__(other)

    def __hash__(self):
        return hash((self._id, self._dev))

    def __repr__(self):
        return f"<torch.cuda.Stream device={self._dev} cuda_stream={self._id:#x}>"

    def __cuda_stream__(self):
        return (0, self._id)


class CudaEvent(Event):
    """torch.cuda.Event(enable_timing=False, blocking=False, interprocess=False)."""

    def __init__(self, enable_timing=False, blocking=False, interprocess=False, external=False):
        kind = _cuda_kind("Tried to instantiate dummy base class Event")
        self._setup(kind, None, enable_timing, blocking, interprocess)

    @property
    def device(self):
        """The device it was recorded on (None before the first record), as torch's."""
        return self._dev

    @property
    def cuda_event(self):
        return self.event_id

    def _stream(self, stream):
        if stream is None:
            return current_stream(None if self._dev is None else self._dev.index)
        return super()._stream(stream)

    def record(self, stream=None):
        s = self._stream(stream)
        if self._kind == "interp":
            self._dev = s.device
        super().record(s)

    def __repr__(self):
        if self._ev is not None:
            return f"<torch.cuda.Event {self._ev.ptr:#x}>"
        if self._t is not None:
            return "<torch.cuda.Event recorded on the interpret device>"
        return "<torch.cuda.Event uninitialized>"

    def ipc_handle(self):
        raise NotImplementedError("torch.cuda.Event.ipc_handle: Kiln does not share CUDA events "
                                  "between processes")

    @classmethod
    def from_ipc_handle(cls, device, handle):
        raise NotImplementedError("torch.cuda.Event.from_ipc_handle: Kiln does not share CUDA "
                                  "events between processes")


def current_stream(device=None):
    """The stream Kiln's launches and copies on `device` go to now."""
    kind = _accel()
    i = _cuda_index(device)
    if kind == "gpu":
        cp = _rt._cupy()
        cs = cp.cuda.get_current_stream() if i == _rt.current_device() else \
            cp.cuda.get_current_stream(i)
        return CudaStream._wrap("gpu", i, cs)
    s = _interp_current().get(i)
    return s if s is not None else default_stream(i)


def default_stream(device=None):
    kind = _accel()
    i = _cuda_index(device)
    if kind == "gpu":
        return CudaStream._wrap("gpu", i, _rt._cupy().cuda.Stream.null)
    return CudaStream._wrap("interp", i, stream_id=0)


def set_stream(stream):
    """Make `stream` current on its device (and make that device current, as torch does);
    None does nothing."""
    if stream is None:
        return
    if not isinstance(stream, Stream) or stream._kind not in ("gpu", "interp"):
        raise ValueError(f"set_stream: expected a cuda stream, got {stream!r}")
    if stream._kind == "gpu":
        i = stream.device.index
        if _rt.current_device() != i:
            _rt.set_device(i)
        stream._cp.use()
    else:
        _interp_current()[stream.device.index or 0] = stream


class StreamContext:
    """torch.cuda.StreamContext: `stream` is current inside the block; None is a no-op, and so
    is any stream when no CUDA device is available (as torch's)."""

    def __init__(self, stream):
        self.stream = stream
        self.idx = _cur_index() if _accel() is not None else -1
        self.src_prev_stream = self.dst_prev_stream = None

    def __enter__(self):
        cur = self.stream
        if cur is None or self.idx == -1:
            return
        self.src_prev_stream = current_stream(None)
        if self.src_prev_stream.device != cur.device:
            self.dst_prev_stream = current_stream(cur.device.index)
        set_stream(cur)

    def __exit__(self, *exc):
        cur = self.stream
        if cur is None or self.idx == -1:
            return
        if self.src_prev_stream.device != cur.device:
            set_stream(self.dst_prev_stream)
        set_stream(self.src_prev_stream)


def stream(stream):
    """torch.cuda.stream(s): a context manager in which `s` is the current stream."""
    return StreamContext(stream)
