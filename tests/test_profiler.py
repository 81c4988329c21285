"""framework.profiler: torch.profiler's API over eager primitives and compiled programs."""
import json

import numpy as np
import pytest

import framework as torch
import framework._dispatch as dispatch
import framework.nn.functional as F
from framework.profiler import (profile, record_function, ProfilerActivity, ProfilerAction,
                                schedule)


def _avg(prof, name):
    return next((a for a in prof.key_averages() if a.key == name), None)


def test_table_lists_eager_ops_with_counts():
    x, y = torch.ones(4, 3), torch.full((4, 3), 2.0)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        with record_function("my_block"):
            for _ in range(3):
                z = x + y
            w = (z * z).sum()
    assert float(w) == pytest.approx(108.0)
    assert _avg(prof, "kiln::add").count == 3
    assert _avg(prof, "kiln::mul").count == 1
    assert _avg(prof, "kiln::sum").count == 1
    blk = _avg(prof, "my_block")
    assert blk.count == 1 and blk.cpu_time_total >= _avg(prof, "kiln::add").cpu_time_total
    assert blk.self_cpu_time_total < blk.cpu_time_total          # children subtracted
    table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=10)
    lines = table.splitlines()
    assert lines[0].startswith("---") and "Name" in lines[1] and "# of Calls" in lines[1]
    for col in ("Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg"):
        assert col in lines[1]
    assert lines[3].split()[0] == "my_block"                      # sorted by CPU total
    add_row = next(line for line in lines if line.startswith("kiln::add "))
    assert add_row.split()[-1] == "3"
    assert lines[-1].startswith("Self CPU time total:")
    assert len(prof.key_averages().table(row_limit=2).splitlines()) == 2 + 3 + 2
    shaped = prof.key_averages(group_by_input_shape=True).table(sort_by="count")
    assert "[[4, 3], [4, 3]]" in shaped and "Input Shapes" in shaped
    assert dispatch.PROFILE is None                               # off after the profile


def test_compiled_program_runs_are_listed():
    f = torch.compile(lambda a: F.softmax(a * 2.0, -1))
    a = torch.ones(3, 5)
    f(a)                                                          # compile outside the profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(4):
            out = f(a)
    np.testing.assert_allclose(out.numpy(), np.full((3, 5), 0.2), rtol=1e-6)
    progs = [e for e in prof.key_averages() if e.key.startswith("program: ")]
    assert len(progs) == 1 and progs[0].count == 4 and progs[0].cpu_time_total > 0
    assert "CUDA total" in prof.key_averages().table()
    # the traced ops are not eager calls: nothing else ran
    assert not any(e.key.startswith("kiln::") for e in prof.key_averages())


def test_numpy_programs_list_every_fused_group():
    f = torch.compile(lambda a, w: F.softmax(a @ w, -1).sum(0) * 3.0)
    a, w = torch.ones(3, 4), torch.ones(4, 5)
    f(a, w)
    prog = f.programs()[0]
    assert len(prog.group_names) >= 2
    with profile() as prof:
        for _ in range(3):
            out = f(a, w)
    np.testing.assert_allclose(out.numpy(), np.full(5, 1.8), rtol=1e-6)
    counts = {e.key: e.count for e in prof.key_averages()}
    assert all(counts.get(g) == 3 for g in prog.group_names), (prog.group_names, counts)
    top = [e for e in prof.events() if e.name.startswith("program: ")]
    kids = [e for e in prof.events() if e.parent is top[0]]
    assert [k.name for k in kids] == prog.group_names            # in run order
    assert sum(k.cpu_time_total for k in kids) <= top[0].cpu_time_total + 1e-3
    assert prog.fn.mark is None                                   # unhooked afterwards
    # a compiled module's backward program runs with an on_output callback: profiled too
    lin = torch.compile(torch.nn.Linear(4, 3))
    x = torch.ones(5, 4)
    lin(x).sum().backward()
    with profile() as prof:
        lin(x).sum().backward()
    progs = [e.name for e in prof.events() if e.name.startswith("program: ")]
    groups = [e for e in prof.events() if e.parent is not None and
              e.parent.name.startswith("program: ")]
    assert len(progs) == 2 and groups
    np.testing.assert_allclose(lin.weight.grad.numpy(), np.full((3, 4), 10.0))


_INTERP = r"""
import json, sys
import framework as torch
import framework.nn.functional as F
from framework.profiler import profile
f = torch.compile(lambda a, b: F.softmax(a * b + 1.0, -1).exp(), backend="interpret")
a, b = torch.ones(4, 6), torch.full((4, 6), 0.5)
f(a, b)
with profile() as prof:
    f(a, b)
    f(a, b)
prog = f.programs()[0]
top = [e for e in prof.events() if e.name.startswith("program: ")]
kids = [e for e in prof.events() if e.parent is top[0]]
print(json.dumps({"kernels": [k.name for k in prog.kernels.values()],
                  "counts": {e.key: e.count for e in prof.key_averages()}, "top": len(top),
                  "kids": len(kids), "kid_us": sum(e.cpu_time_total for e in kids),
                  "top_us": top[0].cpu_time_total}))
"""


def test_interpret_backend_lists_every_kernel_by_name():
    pytest.importorskip("triton")
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = subprocess.run([sys.executable, "-c", _INTERP], cwd=root, capture_output=True,
                       text=True, timeout=300, env=dict(os.environ, TRITON_INTERPRET="1"))
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout.splitlines()[-1])
    assert r["kernels"]
    for k in r["kernels"]:
        assert r["counts"].get(k) == 2, (k, r["counts"])
    assert r["top"] == 2 and r["kids"] == len(r["kernels"])
    assert r["kid_us"] <= r["top_us"] + 1e-3


def test_export_chrome_trace_is_valid_json(tmp_path):
    x = torch.ones(2, 2)
    with profile(record_shapes=True) as prof:
        with record_function("outer"):
            (x + x).relu()
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    doc = json.loads(path.read_text())
    evs = doc["traceEvents"]
    names = [e["name"] for e in evs]
    assert "outer" in names and "kiln::add" in names and "kiln::maximum" in names or \
        "kiln::relu" in names or any(n.startswith("kiln::") for n in names)
    for e in evs:
        assert e["ph"] == "X" and e["dur"] >= 0 and e["ts"] >= 0
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
    outer = next(e for e in evs if e["name"] == "outer")
    add = next(e for e in evs if e["name"] == "kiln::add")
    assert outer["ts"] <= add["ts"] and add["ts"] + add["dur"] <= outer["ts"] + outer["dur"] + 1
    assert add["args"]["Input Dims"] == [[2, 2], [2, 2]]


def test_schedule_actions_match_torch():
    s = schedule(wait=1, warmup=1, active=2, repeat=2, skip_first=1)
    N, W, R, S = (ProfilerAction.NONE, ProfilerAction.WARMUP, ProfilerAction.RECORD,
                  ProfilerAction.RECORD_AND_SAVE)
    assert [s(i) for i in range(11)] == [N, N, W, R, S, N, W, R, S, N, N]
    with pytest.raises(ValueError):
        schedule(wait=0, warmup=0, active=0)


def test_schedule_records_only_active_steps_and_calls_on_trace_ready():
    seen = []

    def ready(p):
        seen.append((p.step_num, {e.key: e.count for e in p.key_averages()}))

    x = torch.ones(3)
    with profile(schedule=schedule(wait=1, warmup=1, active=2, repeat=2),
                 on_trace_ready=ready) as prof:
        for step in range(10):
            for _ in range(step + 1):           # step i runs i+1 adds
                x = x + 1
            prof.step()
    assert float(x[0]) == 1 + sum(range(1, 11))
    # cycle 1 records steps 2 and 3 (3 + 4 adds), cycle 2 steps 6 and 7 (7 + 8 adds)
    assert [s for s, _ in seen] == [4, 8]
    assert seen[0][1]["kiln::add"] == 7 and seen[1][1]["kiln::add"] == 15
    assert seen[0][1]["ProfilerStep#2"] == 1 and seen[0][1]["ProfilerStep#3"] == 1
    assert "ProfilerStep#1" not in seen[0][1]                    # warm-up discarded
    assert dispatch.PROFILE is None


def test_record_function_decorator_and_no_profile_is_free():
    @record_function("helper")
    def helper(t):
        return t * 3

    assert float(helper(torch.ones(1))[0]) == 3.0             # no profiler: plain call
    assert dispatch.PROFILE is None
    with profile() as prof:
        helper(torch.ones(1))
        helper(torch.ones(1))
    assert _avg(prof, "helper").count == 2 and _avg(prof, "kiln::mul").count == 2


def _et_nodes(path):
    with open(path) as f:
        d = json.load(f)
    assert list(d) == ["schema", "pid", "time", "start_ts", "nodes", "finish_ts"]
    assert d["schema"] == "1.1.1-chakra.0.0.4" and d["finish_ts"] >= d["start_ts"]
    return d["nodes"]


def test_execution_trace_observer_records_ops_and_ranges(tmp_path):
    from framework.profiler import ExecutionTraceObserver
    et = ExecutionTraceObserver()
    assert not et.is_registered and et.get_output_file_path() is None
    et.start()                                  # not registered: nothing starts
    assert not et.is_running()
    path = str(tmp_path / "et.json")
    assert et.register_callback(path) is et and et.is_registered
    x = torch.ones(2, 3)
    et.start()
    with record_function("blk"):
        y = torch.add(x, x)
    et.stop()
    assert dispatch.PROFILE is None             # the hook is gone after stop
    x * 5                                        # not recorded
    et.unregister_callback()
    assert not et.is_registered and y.tolist() == [[2.0] * 3] * 2
    nodes = _et_nodes(path)
    assert [(n["id"], n["name"], n["ctrl_deps"]) for n in nodes] == [
        (2, "[pytorch|profiler|execution_trace|thread]", 1), (4, "kiln::add", 3),
        (3, "blk", 2), (1, "[pytorch|profiler|execution_trace|process]", 1)]
    add = nodes[1]
    assert add["inputs"]["types"][:2] == ["Tensor(float)", "Tensor(float)"]
    assert add["inputs"]["shapes"][:2] == [[2, 3], [2, 3]]
    assert add["inputs"]["strides"][:2] == [[3, 1], [3, 1]]
    t_in, t_out = add["inputs"]["values"][0], add["outputs"]["values"][0]
    assert t_in[0] == add["inputs"]["values"][1][0]      # the same tensor twice: one id
    assert t_in[2:] == [0, 6, 4, "cpu"] and t_out[2:] == [0, 6, 4, "cpu"]
    assert t_in[1] != t_out[1]                             # distinct storages
    scope = {a["name"]: a["value"] for a in nodes[2]["attrs"]}["scope"]
    assert scope == 7 == int(torch.profiler.RecordScope.USER_SCOPE)


def test_execution_trace_observer_in_profile_gz(tmp_path):
    import gzip
    from framework.profiler import ExecutionTraceObserver
    path = str(tmp_path / "et.json.gz")
    with profile(execution_trace_observer=ExecutionTraceObserver().register_callback(path)) \
            as prof:
        torch.arange(3.0).sum()
    assert any(e.name == "kiln::sum" for e in prof.events())   # the profile recorded too
    with gzip.open(path, "rt") as f:
        d = json.load(f)
    names = [n["name"] for n in d["nodes"]]
    assert "kiln::sum" in names and names[0].endswith("thread]") and \
        names[-1].endswith("process]")
    assert dispatch.PROFILE is None


def test_profiler_enums_activities_and_step_tracker():
    P = torch.profiler
    assert P.supported_activities() >= {ProfilerActivity.CPU} and P.kineto_available()
    assert [(m.name, int(m)) for m in P.RecordScope][:2] == [("FUNCTION", 0),
                                                             ("BACKWARD_FUNCTION", 1)]
    assert int(P.DeviceType.CUDA) == 1 and int(P.DeviceType.MTIA) == 19
    assert P.DeviceType.CUDA != 1 and repr(P.DeviceType.CPU) == "<DeviceType.CPU: 0>"
    T = P.KinetoStepTracker
    s0 = T.current_step()
    try:
        assert T.increment_step("optA") == s0 + 1
        assert T.increment_step("optB") == s0 + 2     # B starts at the global count
        assert T.increment_step("optA") == s0 + 2     # A catches up: the max is unchanged
        assert T.current_step() == s0 + 2
    finally:
        assert T.erase_step_count("optA") and T.erase_step_count("optB")
    assert not T.erase_step_count("optA")


def test_register_optimizer_step_post_hook():
    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w], lr=0.5)
    seen = []
    h = torch.profiler.register_optimizer_step_post_hook(
        lambda o, args, kwargs: seen.append((o is opt, w.tolist())))
    w.grad = torch.ones(2)
    opt.step()
    h.remove()
    opt.step()
    assert seen == [(True, [0.5, 0.5])] and w.tolist() == [0.0, 0.0]
