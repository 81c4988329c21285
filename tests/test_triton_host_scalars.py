"""The Triton program's host scalars (compiler/triton_backend.py): the one upload that packs
the host 0-d values kernels read into 8-byte slots of one device buffer, checked here with
NumPy standing in for device memory; and the write-back of in-place results across memories
(framework/_compile/region.py)."""
import numpy as np
import pytest

from compiler.triton_backend import TritonProgram


@pytest.fixture
def host_device(monkeypatch):
    from runtime import cuda
    monkeypatch.setattr(cuda, "empty_here", lambda shape, dtype: np.empty(shape, dtype))
    monkeypatch.setattr(cuda, "upload_async",
                        lambda d, h: np.copyto(d, np.ascontiguousarray(h)) or d)
    monkeypatch.setattr(cuda, "scalar_view",
                        lambda d, off, dtype: np.ndarray((), dtype, buffer=d, offset=off))


def test_upload_packs_every_dtype_into_one_buffer(host_device):
    vals = [np.array(1.5, np.float32), np.array(-2.25, np.float64), np.array(7, np.int64),
            np.array(True), np.array(3.0, np.float16), np.array(-5, np.int32)]
    got = TritonProgram._upload(None, vals)[1]
    assert len({g.base.ctypes.data for g in got}) == 1           # one buffer, one copy
    for g, v in zip(got, vals):
        assert g.shape == () and g.dtype == v.dtype and g == v


def test_write_back_across_memories(monkeypatch):
    from framework._compile.region import _write_back
    from runtime import cuda

    class Dev(np.ndarray):           # stands in for a device array
        __cuda_array_interface__ = {}
    moved = []
    monkeypatch.setattr(cuda, "to_host", lambda a: moved.append("d2h") or np.asarray(a).copy())
    monkeypatch.setattr(cuda, "from_host", lambda a: moved.append("h2d") or np.array(a))
    host = np.zeros((), np.float32)
    _write_back(host, np.array(3.0, np.float32).view(Dev))
    assert host == 3.0 and moved == ["d2h"]
    dev = np.zeros(2, np.float32).view(Dev)
    _write_back(dev, np.array([1.0, 2.0]))
    assert list(dev) == [1.0, 2.0] and moved == ["d2h", "h2d"]
    plain = np.zeros(2, np.int64)
    _write_back(plain, np.array([4.7, 5.2]))                      # same memory: unsafe cast
    assert list(plain) == [4, 5] and moved == ["d2h", "h2d"]


def test_upload_async_stages_through_pinned_memory_kept_until_the_copy_ran(monkeypatch):
    # runtime.cuda.upload_async with a stand-in CuPy: the copy is queued on the current stream
    # (asynchronous), from pinned staging memory that stays referenced until the stream's
    # event after the copy reports done, then is released
    import ctypes
    from runtime import cuda

    class Pinned(bytearray):
        @property
        def ptr(self):
            return ctypes.addressof(ctypes.c_char.from_buffer(self))

    class Event:
        done = False

    class Stream:
        def record(self):
            ev = Event()
            events.append(ev)
            return ev

    class Mem:
        def __init__(self, arr):
            self.arr = arr

        def copy_from_host_async(self, src, n, stream):
            assert isinstance(stream, Stream)
            queued.append((self.arr, src.value, n))

    class Dev:
        def __init__(self, n):
            self.arr = np.zeros(n, np.uint8)
            self.data = Mem(self.arr)
    events, queued, stream = [], [], Stream()
    fake = type("cp", (), {})()
    fake.cuda = type("cuda", (), {"alloc_pinned_memory": staticmethod(Pinned),
                                  "get_current_stream": staticmethod(lambda: stream)})
    monkeypatch.setattr(cuda, "_cupy", lambda: fake)
    monkeypatch.setattr(cuda, "_STAGED", [])
    d = Dev(8)
    host = np.array([1.5], np.float64)
    assert cuda.upload_async(d, host) is d
    assert d.arr.tobytes() == bytes(8)               # queued, not yet run
    (dst, src, n), = queued
    ctypes.memmove(dst.ctypes.data, src, n)         # the stream runs the copy later
    assert np.frombuffer(d.arr.tobytes(), np.float64)[0] == 1.5
    assert len(cuda._STAGED) == 1                   # staging memory alive until done
    events[0].done = True
    cuda.upload_async(Dev(4), np.array([7], np.int32))
    assert len(cuda._STAGED) == 1 and cuda._STAGED[0][0] is events[1]
