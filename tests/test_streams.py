"""Streams and events (framework/_streams.py, framework/cpu.py): torch.Stream / torch.Event,
torch.cuda.Stream / Event / stream(), torch.cpu's stand-ins and torch.accelerator's stream calls.

Without a GPU and without KILN_DEVICE=interpret they behave as PyTorch's cpu build (probed
against PyTorch 2.13). Under KILN_DEVICE=interpret they have host semantics: launches finish
before they return, so streams are always idle and an event's time is a host clock stamp.
The GPU path (CuPy streams and events) is checked by bench/gpu_check.py section 9.
"""
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import framework as torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def no_accel(monkeypatch):
    monkeypatch.delenv("KILN_DEVICE", raising=False)
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the cpu-build behaviour does not apply")


@pytest.fixture
def interp(monkeypatch):
    pytest.importorskip("triton")
    monkeypatch.setenv("KILN_DEVICE", "interpret")
    yield
    torch.cuda.set_stream(torch.cuda.default_stream())


# ---- no accelerator: PyTorch's cpu build ------------------------------------------------------

def test_cuda_stream_and_event_without_a_device(no_accel):
    with pytest.raises(RuntimeError, match="Tried to instantiate dummy base class Event"):
        torch.cuda.Event(enable_timing=True)
    with pytest.raises(RuntimeError, match="torch.cuda.Stream requires CUDA support"):
        torch.cuda.Stream()
    with torch.cuda.stream(None) as r:        # a no-op, as in torch's cpu build
        assert r is None
    with torch.cuda.StreamContext(torch.Stream()):
        pass
    assert torch.cuda.set_stream(None) is None
    with pytest.raises(AssertionError, match="^Torch not compiled with CUDA enabled"):
        torch.cuda.current_stream()         # (PyTorch's CPU build)
    for f in (torch.accelerator.current_stream, torch.accelerator.synchronize,
              lambda: torch.accelerator.set_stream(torch.Stream())):
        with pytest.raises(RuntimeError, match="Cannot access accelerator device"):
            f()


def test_torch_stream_on_cpu(no_accel):
    s = torch.Stream()
    assert repr(s) == "torch.Stream device_type=cpu, device_index=-1, stream_id=0"
    assert s.device == torch.device("cpu") and s.device_type == 0
    assert (s.device_index, s.stream_id) == (-1, 0)
    assert s == torch.Stream("cpu") == torch.Stream("cpu:0", priority=-3)
    assert hash(s) == hash(torch.Stream("cpu"))
    assert s != torch.Stream("meta") and s != 3
    m = torch.Stream("meta")
    assert m.device_type == 14 and repr(m).startswith("torch.Stream device_type=meta")
    assert s.query() is True and s.synchronize() is None and s.is_capturing() is False
    assert s.wait_event(torch.Event()) is None
    with s as entered:
        assert entered is s
    for f in (s.record_event, lambda: s.wait_stream(torch.Stream())):
        with pytest.raises(RuntimeError, match="cpu backend doesn't support events."):
            f()
    with pytest.raises(RuntimeError, match="native handle"):
        s.native_handle
    with pytest.raises(TypeError):
        torch.Stream("cpu", 3)                   # priority is keyword-only
    with pytest.raises(RuntimeError, match="Cannot access accelerator device"):
        torch.Stream(0)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        torch.Stream("cuda")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        torch.Event("cuda")


def test_torch_event_on_cpu(no_accel):
    e = torch.Event()
    assert repr(e) == "torch.Event device_type=cpu, device_index=-1, event_flag=0, event_id=0"
    t = torch.Event("cpu", enable_timing=True)
    assert repr(t) == "torch.Event device_type=cpu, device_index=-1, event_flag=1, event_id=0"
    assert e.device == torch.device("cpu") and e.event_id == 0
    assert e.query() is True and e.synchronize() is None and e.wait() is None
    assert e.wait(torch.Stream()) is None
    with pytest.raises(RuntimeError, match="cpu backend doesn't support events."):
        e.record()
    with pytest.raises(RuntimeError, match="meta backend doesn't support events."):
        torch.Event("meta").record()
    with pytest.raises(ValueError, match="Both events must be created with argument "
                                         "'enable_timing=True'."):
        t.elapsed_time(e)
    with pytest.raises(ValueError, match="Both events must be recorded"):
        t.elapsed_time(torch.Event(enable_timing=True))
    with pytest.raises(RuntimeError, match="expected other to be a torch.Event object"):
        e.elapsed_time(3)
    with pytest.raises(NotImplementedError, match="ipc is not supported"):
        e.ipc_handle()
    with pytest.raises(TypeError):
        torch.Event("cpu", True)                 # enable_timing is keyword-only


def test_torch_cpu_stand_ins():
    C = torch.cpu
    assert C.is_available() and C.is_initialized()
    assert (C.device_count(), C.current_device()) == (1, "cpu")
    assert C.synchronize() is None and C.synchronize("cuda") is None and C.set_device(0) is None
    default = C.current_stream()
    assert isinstance(default, C.Stream) and not isinstance(default, torch.Stream)
    s = C.Stream(priority=3)
    with C.stream(s):
        assert C.current_stream() is s
        with C.stream(None):                     # None switches nothing
            assert C.current_stream() is s
    assert C.current_stream() is default
    with pytest.raises(KeyError):
        with C.stream(s):
            raise KeyError("inside")
    assert C.current_stream() is default         # restored on an exception too
    assert s.wait_stream(default) is None and s.record_event() is None
    assert s.wait_event(C.Event()) is None
    e = C.Event()
    assert e.record() is None and e.query() is True
    assert e.synchronize() is None and e.wait() is None


# ---- the interpret device: host semantics ------------------------------------------------------

def test_interpret_current_default_and_new_streams(interp):
    cur = torch.cuda.current_stream()
    assert cur == torch.cuda.default_stream() == torch.cuda.default_stream(0)
    assert repr(cur) == "<torch.cuda.Stream device=cuda:0 cuda_stream=0x0>"
    assert cur.cuda_stream == 0 and cur.device == torch.device("cuda", 0)
    s = torch.cuda.Stream()
    assert isinstance(s, torch.Stream)
    assert s != cur and s.cuda_stream != 0 and s.query() is True and s.synchronize() is None
    assert s == s and hash(s) == hash(s) and len({s, cur, torch.cuda.Stream()}) == 3
    assert torch.cuda.Stream.priority_range() == (0, -1)
    assert torch.cuda.Stream(priority=-5).priority == -1      # clamped into the range, as CUDA
    assert torch.cuda.Stream(priority=7).priority == 0
    g = torch.Stream()                                        # the accelerator's by default
    assert g.device == torch.device("cuda", 0) and g.device_type == 1 and g.device_index == 0
    assert torch.accelerator.current_stream() == cur


def test_interpret_stream_context_switches_and_restores(interp):
    main = torch.cuda.current_stream()
    s1, s2 = torch.cuda.Stream(), torch.cuda.Stream()
    with torch.cuda.stream(s1):
        assert torch.cuda.current_stream() == s1
        assert torch.accelerator.current_stream() == s1
        with torch.cuda.stream(s2):
            assert torch.cuda.current_stream() == s2
        with torch.cuda.stream(None):
            assert torch.cuda.current_stream() == s1
        assert torch.cuda.current_stream() == s1
    assert torch.cuda.current_stream() == main
    with pytest.raises(KeyError):
        with torch.cuda.stream(s1):
            raise KeyError("inside")
    assert torch.cuda.current_stream() == main
    with s2 as entered:                                       # a stream is a context manager
        assert entered is s2 and torch.cuda.current_stream() == s2
    assert torch.cuda.current_stream() == main
    torch.cuda.set_stream(s1)
    assert torch.cuda.current_stream() == s1
    torch.accelerator.set_stream(s2)
    assert torch.cuda.current_stream() == s2
    seen = []
    t = threading.Thread(target=lambda: seen.append(torch.cuda.current_stream()))
    t.start()
    t.join()
    assert seen == [main]                                     # the current stream is per thread
    torch.cuda.set_stream(main)
    with pytest.raises(ValueError, match="set_stream"):
        torch.cuda.set_stream(torch.Stream("cpu"))
    with pytest.raises(ValueError, match="not a stream of the current accelerator"):
        torch.accelerator.set_stream(torch.Stream("cpu"))


def test_interpret_events_time_with_the_host_clock(interp):
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    assert repr(a) == "<torch.cuda.Event uninitialized>" and a.device is None
    assert a.query() is True and a.synchronize() is None     # unrecorded: nothing to wait for
    t0 = time.perf_counter_ns()
    a.record()
    t1 = time.perf_counter_ns()
    time.sleep(0.002)
    t2 = time.perf_counter_ns()
    b.record(torch.cuda.current_stream())
    t3 = time.perf_counter_ns()
    b.synchronize()
    ms = a.elapsed_time(b)
    assert isinstance(ms, float)
    # the stamps are taken inside record(): the interval lies between these bracketing ones
    assert (t2 - t1) / 1e6 <= ms <= (t3 - t0) / 1e6
    assert a.device == torch.device("cuda", 0) and a.query() is True
    assert b.elapsed_time(a) == -ms
    with pytest.raises(RuntimeError, match="Both events must be created with argument "
                                           "'enable_timing=True'."):
        a.elapsed_time(torch.cuda.Event())
    with pytest.raises(RuntimeError, match="Both events must be recorded"):
        a.elapsed_time(torch.cuda.Event(enable_timing=True))
    with pytest.raises(NotImplementedError, match="Kiln does not share CUDA events"):
        a.ipc_handle()
    # the generic spellings on the accelerator
    e = torch.Event(enable_timing=True)
    assert repr(e) == "torch.Event device_type=cuda, device_index=0, event_flag=1, event_id=0"
    e.record()
    assert e.query() is True and e.elapsed_time(e) == 0.0


def test_interpret_record_event_wait_stream(interp):
    s = torch.cuda.Stream()
    ev = s.record_event()
    assert isinstance(ev, torch.cuda.Event) and ev.query() is True
    assert s.record_event(ev) is ev
    assert torch.cuda.current_stream().wait_event(ev) is None
    assert s.wait_stream(torch.cuda.current_stream()) is None
    assert ev.wait() is None and ev.wait(s) is None
    g = torch.Stream().record_event()
    assert type(g) is torch.Event and g.query() is True
    with pytest.raises(RuntimeError, match="does not match"):
        torch.cuda.Event().record(torch.Stream("cpu"))


_SCRIPT = r"""
import json, numpy as np
import framework as torch
rng = np.random.default_rng(0)
xa = rng.standard_normal((8, 16)).astype(np.float32)
x = torch.tensor(xa, device="cuda")
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
start.record()
y = x * 2.0 + 1.0
s = torch.cuda.Stream()
s.wait_stream(torch.cuda.current_stream())
with torch.cuda.stream(s):
    z = (x * 3.0 + y).exp()
    inside = torch.cuda.current_stream() == s
torch.cuda.current_stream().wait_stream(s)
end.record()
end.synchronize()
print(json.dumps({"inside": inside, "device": z.device.type, "ms": start.elapsed_time(end),
                  "z": z.cpu().tolist(), "restored": torch.cuda.current_stream() ==
                  torch.cuda.default_stream()}))
"""


def test_interpret_kernels_on_a_side_stream():
    pytest.importorskip("triton")
    env = dict(os.environ, KILN_DEVICE="interpret", TRITON_INTERPRET="1")
    r = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["inside"] and out["restored"] and out["device"] == "interpret"
    assert out["ms"] > 0
    xa = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(out["z"], np.exp(xa * 3 + (xa * 2 + 1)), rtol=1e-5)
