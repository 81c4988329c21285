"""Replaying a compiled program's launches without rebuilding their arguments
(compiler/codegen/relaunch.py: Recorded) and the packing of host scalars into one upload
(compiler/triton_backend.py: _pack_slots). The GPU path itself runs in bench/gpu_check.py;
here the recorded arguments are checked against what the launch was given, with stand-ins
for the compiled kernel and the device buffers."""
import numpy as np
import pytest

from compiler.codegen.relaunch import Recorded
from compiler.triton_backend import _pack_slots


class Buf:
    """A device buffer stand-in: an address and a size."""
    def __init__(self, ptr, nbytes):
        self.data = type("M", (), {"ptr": ptr})()
        self.nbytes = nbytes


class Arg:
    """A launch argument with data_ptr(), as the kernels' buffer wrappers are."""
    def __init__(self, p):
        self.p = p

    def data_ptr(self):
        return self.p


class CK:
    """A CompiledKernel stand-in: run() keeps what it was called with."""
    function, packed_metadata = "fn", "meta"

    def __init__(self):
        self.calls = []

    def run(self, *a):
        self.calls.append(a)


def ptr(b):
    return b.data.ptr


def test_recorded_launch_fills_new_addresses():
    ins, outs = [Buf(4096, 400), Buf(8192, 64)], [Buf(16384, 400)]
    ck = CK()
    # pointer into input 0 at byte 16 (a view), input 1, the output; sizes and constexprs
    args = (Arg(4096 + 16), Arg(8192), Arg(16384), 100, 0.5, 128, None)
    r = Recorded.make([(ck, (3, 1, 1), args)], ins, outs, ptr, (0.5,))
    assert r is not None and r.slots == ((0, 0, 0, 16), (1, 0, 1, 0), (2, 1, 0, 0))
    assert r.launch([1 << 20, 2 << 20], [3 << 20], 77) is True
    assert ck.calls == [(3, 1, 1, 77, "fn", "meta", None, None, None,
                         (1 << 20) + 16, 2 << 20, 3 << 20, 100, 0.5, 128, None)]


def test_recorded_refuses_what_it_cannot_replay():
    ins, outs = [Buf(4096, 400)], [Buf(16384, 400)]
    one = (CK(), (1, 1, 1), (Arg(4096), Arg(16384), 7))
    assert Recorded.make([one, one], ins, outs, ptr, ()) is None          # two launches
    assert Recorded.refusal == "2 fast launches (one is replayable)"
    tmp = (CK(), (1, 1, 1), (Arg(1 << 30), Arg(16384), 7))              # a temporary
    assert Recorded.make([tmp], ins, outs, ptr, ()) is None
    assert Recorded.refusal == "argument 0 points outside the step's buffers"
    odd = (CK(), (1, 1, 1), (Arg(4096), Arg(16384), np.float32(1)))     # an unknown scalar
    assert Recorded.make([odd], ins, outs, ptr, ()) is None
    assert Recorded.make([], ins, outs, ptr, ()) is None


def test_recorded_in_place_update_holds_only_while_aliased():
    # an in-place update: the output is the input's memory, so the pointer could have come
    # from either; replayed only while they are one memory again
    p = Buf(4096, 400)
    ck = CK()
    r = Recorded.make([(ck, (1, 1, 1), (Arg(4096), Arg(8192), Arg(4096)))],
                      [p, Buf(8192, 400)], [p], ptr, ())
    assert r is not None and r.same == (((0, 0), (1, 0)),)
    assert r.launch([1 << 20, 2 << 20], [1 << 20], 0) is True
    assert r.launch([1 << 20, 2 << 20], [3 << 20], 0) is False     # output elsewhere now
    assert len(ck.calls) == 1


def test_recorded_alignment_must_match():
    ck = CK()
    r = Recorded.make([(ck, (1, 1, 1), (Arg(4096 + 8), Arg(16384)))],
                      [Buf(4096, 400)], [Buf(16384, 400)], ptr, ())
    assert r.aligned == (False, True)
    assert r.launch([1 << 20], [2 << 20], 0) is True        # base +8: still unaligned
    assert r.launch([(1 << 20) + 8], [2 << 20], 0) is False  # now 16-byte aligned: JIT again
    assert len(ck.calls) == 1


def _pack_reference(vals):
    buf = np.zeros(8 * len(vals), np.uint8)
    for i, a in enumerate(vals):
        a = np.asarray(a)
        buf[8 * i:8 * i + a.itemsize] = np.frombuffer(a.tobytes(), np.uint8)
    return buf


@pytest.mark.parametrize("vals", [
    [np.array(0.9, np.float64), np.array(-1.5, np.float32), np.array(3, np.int64)],
    [np.array(np.nan, np.float32), np.array(True), np.array(-7, np.int32),
     np.array(2.5, np.float16), np.array(200, np.uint8), np.array(-3, np.int8)],
    [np.array(1e300, np.float64), np.array(-(2 ** 62), np.int64), np.array(65535, np.uint16)],
])
def test_pack_slots_matches_bytewise_packing(vals):
    got = _pack_slots(vals)
    assert got.dtype == np.uint8 and got.shape == (8 * len(vals),)
    np.testing.assert_array_equal(got[:len(got)], _pack_reference(vals))


def test_pack_slots_bfloat16_goes_byte_by_byte():
    ml = pytest.importorskip("ml_dtypes", reason="bfloat16 comes from ml_dtypes")
    vals = [np.array(1.5, ml.bfloat16), np.array(2.0, np.float64)]
    np.testing.assert_array_equal(_pack_slots(vals), _pack_reference(vals))


def test_launch_hooks_are_none_unless_one_is_installed():
    # Triton 3.5+ holds an empty HookChain, never None: a launch must not pay for metadata
    # (and recorded launches must not be turned off) when nothing listens
    pytest.importorskip("triton")
    from triton import knobs
    from compiler.codegen.relaunch import launch_hooks
    chain = knobs.runtime.launch_enter_hook
    if not hasattr(chain, "add"):
        pytest.skip("this Triton's launch hooks are plain attributes (None when unset)")
    assert launch_hooks() == (None, None)

    def hook(*a):
        return None
    chain.add(hook)
    try:
        assert launch_hooks()[0] is chain and launch_hooks()[1] is None
    finally:
        chain.remove(hook)
    assert launch_hooks() == (None, None)


# ---- a compiled training step's program on a stand-in GPU ---------------------------------
# The Triton backend's device path (TritonProgram with recorded launches) run without a GPU:
# device arrays are NumPy arrays whose `.data.ptr` is their address, and kernels are stand-ins
# that note every launch (the JIT call, or the C launcher a fast or recorded launch calls).
# Nothing is computed; what is checked is which launches happen and with which arguments.

class _DevArr(np.ndarray):
    @property
    def data(self):
        return type("Mem", (), {"ptr": self.ctypes.data})()

    @property
    def device(self):
        return type("Dev", (), {"id": 0})()


def _dev(a):
    return np.ascontiguousarray(a).view(_DevArr)


class _Launches:
    def __init__(self):
        self.log = []

    def jit(self, real, name):
        log = self.log
        arg_names = list(real.arg_names)

        class JIT:
            def __init__(self):
                self.arg_names = arg_names

            def __getitem__(self, grid):
                def go(*args, **kw):
                    vals = [a.data_ptr() if hasattr(a, "data_ptr") else a for a in args]
                    vals += [kw[k] for k in arg_names[len(args):]]
                    log.append(("jit", name, tuple(grid) + (1,) * (3 - len(grid)), vals))
                    return CK()
                return go

        class CK:
            function, packed_metadata = "fn", "meta"

            def _init_handles(self):
                pass

            def launch_metadata(self, *a):
                return None

            def run(self, g0, g1, g2, stream, fn, meta, md, enter, exit_, *args):
                log.append(("run", name, (g0, g1, g2),
                            [a.data_ptr() if hasattr(a, "data_ptr") else a for a in args]))
        return JIT()


@pytest.fixture
def stand_in_gpu(monkeypatch):
    import contextlib
    from runtime import cuda
    from compiler import triton_backend as tb
    from compiler.codegen.triton_pointwise import PointwiseKernel
    launches = _Launches()
    real_function = PointwiseKernel.function
    fakes = {}

    def function(self, interpret):
        if interpret:
            return real_function(self, interpret)
        if id(self) not in fakes:
            fakes[id(self)] = (self, launches.jit(real_function(self, False), self.name))
        return fakes[id(self)][1]
    monkeypatch.setattr(PointwiseKernel, "function", function)
    stream = type("Stream", (), {"ptr": 7})()
    for name, fn in {
            "available": lambda: True, "current_stream": lambda: stream,
            "is_device_array": lambda a: isinstance(a, _DevArr), "array_index": lambda a: 0,
            "empty_here": lambda shape, dt: np.zeros(shape, dt).view(_DevArr),
            "from_host_here": lambda a: _dev(np.array(a)),
            "from_host": lambda a, index=0: _dev(np.array(a)),
            "upload_async": lambda dst, host: dst, "to_host": lambda a: np.array(a),
            "scalar_view": lambda a, off, dt: np.zeros((), dt).view(_DevArr),
            "hook_triton_stream": lambda: None,
            "on_device": lambda i: contextlib.nullcontext(),
            "defer_check": lambda *a, **k: None, "time_ms": lambda f, **k: (f(), 1.0)[1],
            "scratch_like": lambda o: o}.items():
        monkeypatch.setattr(cuda, name, fn)
    before = set(tb._CACHE)
    yield launches
    for k in set(tb._CACHE) - before:          # no stand-in program outlives the test
        del tb._CACHE[k]


def _mlp_step(hidden):
    # (each test its own hidden size: equal graphs share a program, and its recorded launches
    # would call the other test's stand-in kernels)
    import framework as torch
    nn = torch.nn
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(24, hidden), nn.ReLU(), nn.Linear(hidden, 5))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    x, y = torch.randn(8, 24), torch.randint(0, 5, (8,))

    def step():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return loss
    return torch.compile(step, backend="triton")


def test_replayed_program_launches_every_kernel_from_its_record(stand_in_gpu):
    from compiler import triton_backend as tb
    step = _mlp_step(16)
    for _ in range(2 + tb.RECORD_TRIES):
        step()
    prog = step.programs()[0]
    # the steps launched on the device (every one tried to record on its first launches;
    # the scalar steps run on the host and never launch)
    kernels = [s for s in prog.steps if s.recorded is not None or s.record_tries]
    assert kernels and all(s.recorded is not None for s in kernels), prog.record_refusals
    assert prog.record_refusals == {}
    stand_in_gpu.log.clear()
    step()
    # one launch per device kernel, none through the JIT, each from its step's record
    assert [k for k, _, _, _ in stand_in_gpu.log] == ["run"] * len(kernels)


def test_recorded_launches_pass_what_the_jit_path_passes(stand_in_gpu, monkeypatch):
    # every run gets the same buffers (the k-th allocation of a run is the same memory each
    # run), so a recorded launch and the JIT path's launch of the same step must pass
    # identical arguments, pointers included
    from runtime import cuda
    from compiler import triton_backend as tb
    from compiler.codegen import relaunch
    pool, count = {}, [0]

    def alloc(shape, dt):
        count[0] += 1
        key = (count[0], tuple(shape), np.dtype(dt).str)
        if key not in pool:
            pool[key] = np.zeros(shape, dt).view(_DevArr)
        return pool[key]

    def from_host(a, index=0):
        a = np.asarray(a)
        d = alloc(a.shape, a.dtype)
        d[...] = a
        return d
    monkeypatch.setattr(cuda, "empty_here", alloc)
    monkeypatch.setattr(cuda, "from_host_here", from_host)
    monkeypatch.setattr(cuda, "from_host", from_host)
    monkeypatch.setattr(cuda, "scalar_view", lambda a, off, dt: alloc((), dt))
    step = _mlp_step(12)
    for _ in range(2 + tb.RECORD_TRIES):
        count[0] = 0
        step()
    stand_in_gpu.log.clear()
    count[0] = 0
    step()
    recorded = list(stand_in_gpu.log)
    monkeypatch.setattr(relaunch, "ENABLED", False)      # every launch through the JIT
    stand_in_gpu.log.clear()
    count[0] = 0
    step()
    jit = list(stand_in_gpu.log)
    assert [k for k, *_ in recorded] == ["run"] * len(recorded)
    assert [k for k, *_ in jit] == ["jit"] * len(jit)
    assert len(recorded) == len(jit) >= 8
    for (_, n1, g1, a1), (_, n2, g2, a2) in zip(recorded, jit):
        assert (n1, g1) == (n2, g2)
        assert [str(a) for a in a1] == [str(a) for a in a2], n1    # (str: a NaN constant)
