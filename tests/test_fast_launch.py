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
