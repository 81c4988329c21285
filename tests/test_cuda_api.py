"""torch.cuda memory statistics and device queries (framework/_cuda_memory.py) in the two
regimes this machine has: no GPU (torch's CPU-build answers) and KILN_DEVICE=interpret
(the counters are the interpret device's buffers), the latter in a child process. The real-GPU
regime is checked by bench/gpu_check.py (section 5, "cuda memory_stats")."""
import json
import os
import subprocess
import sys
import warnings

import pytest

import framework as torch
from runtime import cuda as _rt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C = torch.cuda

no_gpu = pytest.mark.skipif(_rt.available(), reason="checks the no-GPU answers")


@pytest.fixture
def plain_cpu(monkeypatch):
    monkeypatch.delenv("KILN_DEVICE", raising=False)


@no_gpu
def test_without_a_device_answers_as_torchs_cpu_build(plain_cpu):
    assert C.is_available() is False
    assert C.memory_stats() == {} and type(C.memory_stats()).__name__ == "OrderedDict"
    assert C.memory_stats_as_nested_dict() == {}
    for f in (C.memory_allocated, C.max_memory_allocated, C.memory_reserved,
              C.max_memory_reserved):
        assert f() == 0
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert C.memory_cached() == 0 and C.max_memory_cached() == 0
    assert [x.category for x in w] == [FutureWarning, FutureWarning]
    assert "renamed to `torch.cuda.memory_reserved`" in str(w[0].message)
    assert C.is_bf16_supported() is False
    assert C.get_arch_list() == [] and C.get_gencode_flags() == ""
    for f in (lambda: C.get_device_properties(0), C.mem_get_info, C.init, C.ipc_collect,
              lambda: C.set_per_process_memory_fraction(0.5),
              C.get_per_process_memory_fraction, lambda: C.can_device_access_peer(0, 1),
              C.get_sync_debug_mode, lambda: C.set_sync_debug_mode(1),
              C.current_stream, C.default_stream, C.synchronize, C.current_device,
              C.get_device_name, C.initial_seed):
        with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
            f()
    with pytest.raises(KeyError, match="allocated_bytes.all.current"):
        C.memory_summary()
    for f in (C.reset_peak_memory_stats, C.reset_accumulated_memory_stats):
        with pytest.raises(AttributeError, match="no CUDA memory statistics"):
            f()
    with pytest.warns(FutureWarning, match="reset_peak_memory_stats"):
        with pytest.raises(AttributeError):
            C.reset_max_memory_allocated()
    with pytest.raises(RuntimeError, match="compiled without CUDA support"):
        with C.device(0):
            pass
    with C.device(-1), C.device(None), C.device_of(torch.zeros(2)):   # no-ops, as torch
        pass


def test_nvml_counters_need_pynvml():
    try:
        import pynvml  # noqa: F401
        pytest.skip("pynvml is installed")
    except ImportError:
        pass
    for f in (C.utilization, C.temperature, C.power_draw, C.clock_rate, C.memory_usage):
        with pytest.raises(ModuleNotFoundError, match="nvidia-ml-py"):
            f()


_SCRIPT = r"""
import gc, json, sys, warnings
sys.path.insert(0, "tests")
from _interp import become_interpreter_worker
become_interpreter_worker(".")
import framework as torch
C = torch.cuda
out = {}
def err(f):
    try:
        f()
    except Exception as e:
        return type(e).__name__ + ": " + str(e)
    return None
gc.collect()
C.reset_peak_memory_stats(); C.reset_accumulated_memory_stats()
s0 = C.memory_stats()
x = torch.empty(512 * 1024, device="cuda")                  # 2 MiB: the large pool
y = torch.empty(100, dtype=torch.float64, device="cuda")    # 800 B: the small pool
v = x[10:20]                                                # a view: no new memory
gc.collect()
s1 = C.memory_stats()
out["s0"], out["s1"] = s0, s1
out["summary"] = C.memory_summary()
out["summary_abbr"] = C.memory_summary(abbreviated=True)
del x, v
gc.collect()
out["s2"] = C.memory_stats()
C.reset_peak_memory_stats()
z = torch.empty(1024 * 1024, device="cuda")                 # 4 MiB, then gone
del z
gc.collect()
out["after_z"] = [C.memory_allocated(), C.max_memory_allocated(), C.memory_reserved(),
                  C.max_memory_reserved(), C.memory_allocated("cuda:0"),
                  torch.accelerator.memory_allocated(), torch.accelerator.max_memory_reserved()]
C.reset_accumulated_memory_stats()
out["s3"] = C.memory_stats()
p = C.get_device_properties(0)
out["props"] = [repr(p), p.name, p.major, p.minor, p.total_memory, p.multi_processor_count,
                p.is_integrated, C.get_device_name(), list(C.get_device_capability())]
free, total = C.mem_get_info()
out["mem"] = [free, total]
out["bf16"], out["arch"] = C.is_bf16_supported(), C.get_arch_list()
out["peer"] = [C.can_device_access_peer(0, 0), err(lambda: C.can_device_access_peer(0, 1)),
               err(lambda: C.get_device_properties(1)), err(lambda: C.get_device_properties("cpu"))]
out["fraction"] = [C.get_per_process_memory_fraction()]
C.set_per_process_memory_fraction(0.25)
out["fraction"] += [C.get_per_process_memory_fraction(0),
                    err(lambda: C.set_per_process_memory_fraction(1)),
                    err(lambda: C.set_per_process_memory_fraction(1.5))]
C.set_sync_debug_mode("warn")
out["sync"] = [C.get_sync_debug_mode(), err(lambda: C.set_sync_debug_mode("loud"))]
C.set_sync_debug_mode(0)
out["sync"].append(C.get_sync_debug_mode())
C.init(); C.ipc_collect()
with C.device(0):
    inside = C.current_device()
with C.device_of(torch.ones(2, device="cuda")):
    inside_of = C.current_device()
out["ctx"] = [inside, inside_of, err(lambda: C.device(1).__enter__())]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def interp():
    pytest.importorskip("triton")
    env = dict(os.environ, KILN_DEVICE="interpret")
    env.pop("TRITON_INTERPRET", None)
    r = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


MiB = 1 << 20


def _delta(a, b, key):
    return b[key] - a[key]


def test_interpret_memory_stats_count_device_buffers(interp):
    s0, s1, s2, s3 = interp["s0"], interp["s1"], interp["s2"], interp["s3"]
    # x (2 MiB) in the large pool, y (800 B) in the small one; the view adds nothing
    assert _delta(s0, s1, "allocated_bytes.all.current") == 2 * MiB + 800
    assert _delta(s0, s1, "allocated_bytes.large_pool.current") == 2 * MiB
    assert _delta(s0, s1, "allocated_bytes.small_pool.current") == 800
    assert _delta(s0, s1, "allocation.all.current") == 2
    assert _delta(s0, s1, "active_bytes.all.current") == 2 * MiB + 800
    assert _delta(s0, s1, "requested_bytes.all.current") == 2 * MiB + 800
    # host memory is not cached: each buffer is its own segment
    assert _delta(s0, s1, "reserved_bytes.all.current") == 2 * MiB + 800
    assert _delta(s0, s1, "segment.all.current") == 2
    assert s1["allocated_bytes.all.peak"] >= s1["allocated_bytes.all.current"]
    assert s1["num_ooms"] == 0 and s1["num_alloc_retries"] == 0
    assert s1["inactive_split_bytes.all.current"] == 0
    assert list(s1) == sorted(s1)
    # dropping x frees 2 MiB from the large pool; the peak stays
    assert _delta(s2, s1, "allocated_bytes.large_pool.current") == 2 * MiB
    assert _delta(s1, s2, "allocated_bytes.all.freed") == 2 * MiB
    assert s2["allocated_bytes.all.peak"] == s1["allocated_bytes.all.peak"]
    # after reset_peak: z's 4 MiB came and went
    cur, peak, res, res_peak, cur0, acc_cur, acc_res_peak = interp["after_z"]
    assert cur == s2["allocated_bytes.all.current"] == cur0 == acc_cur
    assert peak == cur + 4 * MiB
    assert res == cur and res_peak == peak == acc_res_peak
    # reset_accumulated zeroes the totals and keeps current/peak
    assert s3["allocated_bytes.all.allocated"] == 0 and s3["allocated_bytes.all.freed"] == 0
    assert s3["allocated_bytes.all.current"] == cur and s3["allocated_bytes.all.peak"] == peak


def test_interpret_memory_summary(interp):
    lines = interp["summary"].splitlines()
    assert lines[0] == "|" + "=" * 75 + "|" and all(len(line) == 77 for line in lines)
    row = next(line for line in lines if line.startswith("|       from large pool"))
    cur = row.split("|")[2]
    assert cur == "   2048 KiB "           # x: 2 MiB, shown in KiB (< 768 MiB)
    assert "PyTorch CUDA memory summary, device ID 0" in lines[1]
    assert len(interp["summary_abbr"].splitlines()) == len(lines) - 2 * 9


def test_interpret_device_queries(interp):
    rep, name, major, minor, total, sms, integrated, dname, cap = interp["props"]
    assert name == dname and "interpret" in name.lower()
    assert (major, minor) == tuple(cap) == (9, 0)
    page = os.sysconf("SC_PAGE_SIZE")
    assert total == os.sysconf("SC_PHYS_PAGES") * page       # host memory
    assert sms == 1 and integrated is True
    assert rep.startswith(f"_CudaDeviceProperties(name='{name}', major=9, minor=0, "
                          f"total_memory={total // MiB}MB, multi_processor_count=1")
    free, tot = interp["mem"]
    assert tot == total and 0 < free <= tot
    assert interp["bf16"] is True and interp["arch"] == []
    same, bad_peer, bad_dev, cpu = interp["peer"]
    assert same is False
    assert bad_peer == "AssertionError: Invalid peer device id"
    assert bad_dev == "AssertionError: Invalid device id"
    assert cpu.startswith("ValueError: Expected a cuda device")
    assert interp["fraction"][:2] == [1.0, 0.25]
    assert interp["fraction"][2].startswith("TypeError: Invalid type for fraction")
    assert interp["fraction"][3] == "ValueError: Invalid fraction value: 1.5. Allowed range: 0~1"
    assert interp["sync"][0] == 1 and interp["sync"][2] == 0
    assert interp["sync"][1].startswith("RuntimeError: invalid value of debug_mode")
    assert interp["ctx"][:2] == [0, 0]
    assert interp["ctx"][2].startswith("RuntimeError: CUDA error: invalid device ordinal")


def test_device_stats_counters_as_the_gpu_hook_feeds_them():
    # runtime.memstats as runtime.cuda's CuPy hook drives it (no GPU needed): pool mallocs
    # with requested sizes, driver segments, free_all_blocks, counting begun late
    from runtime.memstats import DeviceStats
    s = DeviceStats()
    s.seed(allocated=1000, reserved=4096)          # blocks from before the first query
    s.reserve(2 * MiB)                             # a cudaMalloc'd segment
    s.malloc(2 * MiB, requested=2 * MiB - 10)      # large pool
    s.malloc(512, requested=100)                   # small pool
    s.free(512, requested=100)
    s.free(1000, seeded=True)                      # a seeded block: "all" bytes only
    n = s.nested()
    a = n["allocated_bytes"]
    assert a["all"] == {"current": 2 * MiB, "peak": 1000 + 2 * MiB + 512,
                        "allocated": 1000 + 2 * MiB + 512, "freed": 1512}
    assert a["large_pool"] == {"current": 2 * MiB, "peak": 2 * MiB, "allocated": 2 * MiB,
                               "freed": 0}
    assert a["small_pool"] == {"current": 0, "peak": 512, "allocated": 512, "freed": 512}
    assert n["active_bytes"] == a
    assert n["requested_bytes"]["all"]["current"] == 2 * MiB - 10
    assert n["allocation"]["all"]["current"] == 1 and n["allocation"]["all"]["allocated"] == 2
    assert n["reserved_bytes"]["all"]["current"] == 4096 + 2 * MiB
    assert n["segment"]["large_pool"]["current"] == 1 and n["num_device_alloc"] == 1
    s.release_unsized(2 * MiB + 4096)              # empty_cache gave everything back
    n = s.nested()
    assert n["reserved_bytes"]["all"]["current"] == 0
    assert n["reserved_bytes"]["large_pool"]["current"] == 0
    assert n["reserved_bytes"]["all"]["peak"] == 4096 + 2 * MiB
    s.reset_peak()
    s.reset_accumulated()
    s.free(2 * MiB)
    a = s.nested()["allocated_bytes"]["all"]
    assert a == {"current": 0, "peak": 2 * MiB, "allocated": 0, "freed": 2 * MiB}
    assert n["inactive_split_bytes"]["all"] == dict.fromkeys(a, 0)


def test_cupy_memory_hook_feeds_the_counters(monkeypatch):
    # runtime.cuda.count_memory against a stand-in for CuPy's API (MemoryHook, the default
    # pool, getDevice), called with the keyword arguments CuPy's pool passes its hooks
    import types
    from runtime import memstats

    class MemoryHook:
        name = "MemoryHook"
        entered = []

        def __enter__(self):
            MemoryHook.entered.append(self)
            return self

    pool = types.SimpleNamespace(used_bytes=lambda: 1024, total_bytes=lambda: 4096)
    fake = types.SimpleNamespace(
        cuda=types.SimpleNamespace(MemoryHook=MemoryHook,
                                   runtime=types.SimpleNamespace(getDevice=lambda: 0)),
        get_default_memory_pool=lambda: pool)
    monkeypatch.setattr(_rt, "_cp", fake)
    monkeypatch.setattr(_rt, "_HOOK", None)
    monkeypatch.setattr(memstats, "_DEVICES", {})
    _rt.count_memory()
    hook = _rt._HOOK
    assert MemoryHook.entered == [hook]
    _rt.count_memory()                              # once only
    assert MemoryHook.entered == [hook]
    hook.alloc_postprocess(device_id=0, mem_size=2 * MiB, mem_ptr=0x1000)
    hook.malloc_postprocess(device_id=0, size=2 * MiB - 7, mem_size=2 * MiB, mem_ptr=0x1000,
                            pmem_id=1)
    hook.malloc_postprocess(device_id=0, size=10, mem_size=512, mem_ptr=0, pmem_id=0)   # failed
    hook.alloc_postprocess(device_id=0, mem_size=512, mem_ptr=0)                       # failed
    n = memstats.device_stats("cuda", 0).nested()
    assert n["allocated_bytes"]["all"]["current"] == 1024 + 2 * MiB
    assert n["allocated_bytes"]["large_pool"]["current"] == 2 * MiB
    assert n["requested_bytes"]["large_pool"]["current"] == 2 * MiB - 7
    assert n["reserved_bytes"]["all"]["current"] == 4096 + 2 * MiB
    assert n["num_ooms"] == 1 and n["num_alloc_retries"] == 1
    hook.free_postprocess(device_id=0, mem_size=2 * MiB, mem_ptr=0x1000, pmem_id=1)
    hook.free_postprocess(device_id=0, mem_size=1024, mem_ptr=0x9000, pmem_id=2)  # seeded
    n = memstats.device_stats("cuda", 0).nested()
    assert n["allocated_bytes"]["all"]["current"] == 0
    assert n["requested_bytes"]["all"]["current"] == 0
    assert n["allocation"]["all"]["current"] == 0 and n["allocation"]["all"]["freed"] == 1
    assert n["allocated_bytes"]["all"]["peak"] == 1024 + 2 * MiB


def test_cupy_out_of_memory_becomes_torch_out_of_memory_error(monkeypatch):
    # the pool's malloc wrapped by runtime.cuda.oom_checked, against a stand-in for CuPy: its
    # OutOfMemoryError (a MemoryError) becomes torch.cuda.OutOfMemoryError (a RuntimeError,
    # also torch.OutOfMemoryError) with PyTorch's sizes; other errors pass through
    import types

    class OutOfMemoryError(MemoryError):
        pass
    pool = types.SimpleNamespace(used_bytes=lambda: 5 * MiB, total_bytes=lambda: 9 * MiB)
    fake = types.SimpleNamespace(
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(
            getDevice=lambda: 1, memGetInfo=lambda: (1 << 30, 80 << 30))),
        get_default_memory_pool=lambda: pool)
    monkeypatch.setattr(_rt, "_cp", fake)

    def malloc(size):
        if size > 1 << 30:
            raise OutOfMemoryError(size, 0)
        if size == 0:
            raise MemoryError("other")
        return ("ptr", size)
    checked = _rt.oom_checked(malloc)
    assert checked(1024) == ("ptr", 1024)
    assert torch.OutOfMemoryError is torch.cuda.OutOfMemoryError
    assert issubclass(torch.cuda.OutOfMemoryError, RuntimeError)
    with pytest.raises(torch.cuda.OutOfMemoryError) as e:
        checked(20 << 30)
    assert str(e.value) == (
        "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 1 has a total capacity of 80.00 GiB "
        "of which 1.00 GiB is free. Of the allocated memory 5.00 MiB is allocated by Kiln, and "
        "4.00 MiB is reserved by Kiln but unallocated.")
    with pytest.raises(MemoryError, match="other"):
        checked(0)
    assert [_rt.format_size(n) for n in (512, 2048, 3 * MiB + 5)] == \
        ["512 bytes", "2.00 KiB", "3.00 MiB"]
