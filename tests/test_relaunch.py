"""compiler/codegen/relaunch.py: after one JIT launch, launches whose arguments specialize the
same way call the compiled kernel's launcher directly, with every argument (constexprs too) in
signature order; anything else goes back through the JIT. The JIT and the compiled kernel are
stand-ins here (no GPU): they record what they were called with."""
import types

import pytest

from compiler.codegen import relaunch


class Buf:
    def __init__(self, ptr):
        self.ptr = ptr

    def data_ptr(self):
        return self.ptr


class FakeCompiled:
    def __init__(self, log):
        self.log, self.function, self.packed_metadata = log, "fn-handle", "meta"
        self.run = None

    def _init_handles(self):
        def run(g0, g1, g2, stream, function, packed, md, enter, exit_, *args):
            self.log.append(("direct", (g0, g1, g2), stream, args))
        self.run = run

    def launch_metadata(self, grid, stream, *args):
        return None


class FakeJIT:
    arg_names = ["x_ptr", "out_ptr", "n", "BLOCK"]

    def __init__(self):
        self.log = []

    def __getitem__(self, grid):
        def call(*args, **kw):
            self.log.append(("jit", grid, args, kw))
            return FakeCompiled(self.log)
        return call


@pytest.fixture
def stream(monkeypatch):
    from runtime import cuda
    monkeypatch.setattr(cuda, "current_stream", lambda: types.SimpleNamespace(ptr=77))


def test_second_launch_is_direct_with_constexprs_in_order(stream):
    fn, r = FakeJIT(), relaunch.Relauncher()
    r.launch(fn, (4,), [Buf(1024), Buf(2048), 4096], {"BLOCK": 1024}, {"num_warps": 4})
    r.launch(fn, (4,), [Buf(4096), Buf(8192), 4096], {"BLOCK": 1024}, {"num_warps": 4})
    assert [e[0] for e in fn.log] == ["jit", "direct"]
    assert fn.log[0][3] == {"BLOCK": 1024, "num_warps": 4}
    kind, grid, st, args = fn.log[1]
    assert grid == (4, 1, 1) and st == 77
    assert [getattr(a, "ptr", a) for a in args] == [4096, 8192, 4096, 1024]


@pytest.mark.parametrize("second", [
    ([Buf(1028), Buf(2048), 4096], {"BLOCK": 1024}),      # pointer no longer 16-byte aligned
    ([Buf(1024), Buf(2048), 1], {"BLOCK": 1024}),         # an int that is now 1
    ([Buf(1024), Buf(2048), 4100], {"BLOCK": 1024}),      # no longer divisible by 16
    ([Buf(1024), Buf(2048), 4096], {"BLOCK": 512}),       # another constexpr
])
def test_other_specialization_goes_through_the_jit(stream, second):
    fn, r = FakeJIT(), relaunch.Relauncher()
    r.launch(fn, (4,), [Buf(1024), Buf(2048), 4096], {"BLOCK": 1024}, {"num_warps": 4})
    r.launch(fn, (4,), *second, {"num_warps": 4})
    assert [e[0] for e in fn.log] == ["jit", "jit"]


def test_disabled_and_unknown_signature_use_the_jit(stream, monkeypatch):
    fn, r = FakeJIT(), relaunch.Relauncher()
    monkeypatch.setattr(relaunch, "ENABLED", False)
    for _ in range(2):
        r.launch(fn, (4,), [Buf(1024), Buf(2048), 4096], {"BLOCK": 1024}, {})
    assert [e[0] for e in fn.log] == ["jit", "jit"]
    monkeypatch.setattr(relaunch, "ENABLED", True)
    fn2, r2 = FakeJIT(), relaunch.Relauncher()
    fn2.arg_names = ["x_ptr", "out_ptr", "n", "BLOCK", "EXTRA"]     # args + meta don't cover it
    for _ in range(2):
        r2.launch(fn2, (4,), [Buf(1024), Buf(2048), 4096], {"BLOCK": 1024}, {})
    assert [e[0] for e in fn2.log] == ["jit", "jit"] and r2.off


def test_a_failing_direct_launch_falls_back_for_good(stream):
    fn, r = FakeJIT(), relaunch.Relauncher()
    r.launch(fn, (4,), [Buf(1024), Buf(2048), 4096], {"BLOCK": 1024}, {})

    def boom(*a):
        raise TypeError("launcher API changed")
    r.ck.run = boom
    r.launch(fn, (4,), [Buf(1024), Buf(2048), 4096], {"BLOCK": 1024}, {})
    r.launch(fn, (4,), [Buf(1024), Buf(2048), 4096], {"BLOCK": 1024}, {})
    assert [e[0] for e in fn.log] == ["jit", "jit", "jit"] and r.off


def test_cuda_operands_get_a_device_group_kernel(monkeypatch):
    # runtime.cuda.DeviceArg has an .array like the interpreter's HostTensor: the eager group
    # kernel must still be built for the GPU (it fell back to the host on every GPU call), and
    # a view of a DeviceArg folds into a StridedView, not a host array
    import numpy as np
    from compiler.codegen import triton_eager
    from compiler.codegen.triton_group import view_buffer, StridedView
    from compiler.ir.graph import Graph
    from compiler.ir.registry import REGISTRY
    from runtime import cuda, interpret
    from runtime import dtypes as dt
    monkeypatch.setattr(interpret, "library_interpretable", lambda: False)
    a = cuda.DeviceArg(np.zeros((4, 6), np.float32), dt.float32)
    b = cuda.DeviceArg(np.zeros((6, 3), np.float32), dt.float32)
    k = triton_eager._group_kernel(REGISTRY["matmul"], [a, b], {}, None)
    assert k.name.startswith("matmul")
    g = Graph("v")
    x = g.add_input("x", (4, 6), dt.float32)
    p = g.call("permute", x, dims=(1, 0))
    v = view_buffer(a, [p.node])
    assert isinstance(v, StridedView) and v.shape == (6, 4) and v.stride() == (1, 6)
