"""framework.autograd.profiler (torch.autograd.profiler) over Kiln's profiler."""
import json
import re
import warnings

import numpy as np
import pytest

import framework as torch
import framework.profiler as kprof
from framework.autograd import profiler as ap


def _model_and_input():
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    return lin, x


def _run(lin, x):
    with ap.record_function("fwd"):
        y = lin(x).relu().sum()
    with ap.record_function("bwd"):
        y.backward()
    return y


def _children(prof, parent_name):
    parent = next(e for e in prof.function_events if e.name == parent_name)
    return [e.name for e in prof.function_events if e.parent is parent]


def test_autograd_exposes_profiler_and_shares_record_function():
    assert torch.autograd.profiler is ap
    assert ap.record_function is kprof.record_function
    assert ap.EventList is kprof.EventList and ap.FunctionEvent is kprof.FunctionEvent


def test_forward_backward_events_names_and_counts():
    lin, x = _model_and_input()
    with ap.profile(record_shapes=True) as prof:
        y = _run(lin, x)
    # the values are those of an unprofiled run
    lin2, x2 = _model_and_input()
    y2 = _run(lin2, x2)
    assert float(y.detach()) == float(y2.detach())
    np.testing.assert_array_equal(lin.weight.grad.numpy(), lin2.weight.grad.numpy())

    fwd = _children(prof, "fwd")
    assert fwd.count("kiln::matmul") == 1 and fwd.count("kiln::relu") == 1
    assert fwd.count("kiln::sum") == 1
    bwd = _children(prof, "bwd")
    assert "kiln::matmul" in bwd                    # the weight gradient
    assert "kiln::relu" not in bwd

    avgs = {a.key: a for a in prof.key_averages()}
    assert avgs["fwd"].count == 1 and avgs["bwd"].count == 1
    assert avgs["kiln::relu"].count == 1
    assert avgs["kiln::matmul"].count == fwd.count("kiln::matmul") + bwd.count("kiln::matmul")
    assert sum(a.count for a in avgs.values()) == len(prof.function_events)
    assert avgs["fwd"].cpu_time_total >= avgs["kiln::relu"].cpu_time_total

    by_shape = prof.key_averages(group_by_input_shape=True)
    mm = [a for a in by_shape if a.key == "kiln::matmul"]
    assert [[4, 3], [3, 2]] in [a.input_shapes for a in mm]

    evs = prof.function_events
    assert [e.start_ns for e in evs] == sorted(e.start_ns for e in evs)
    assert prof.self_cpu_time_total == pytest.approx(sum(e.self_cpu_time_total for e in evs))
    assert prof.self_cpu_time_total > 0
    total = prof.total_average()
    assert total.key == "Total" and total.count == len(evs)
    assert total.self_cpu_time_total == pytest.approx(prof.self_cpu_time_total)


def test_results_are_empty_until_the_block_exits():
    lin, x = _model_and_input()
    with ap.profile() as prof:
        lin(x)
        assert len(prof.function_events) == 0
        assert len(prof.key_averages()) == 0
        assert repr(prof) == "<unfinished torch.autograd.profile>"
        assert str(prof) == "<unfinished torch.autograd.profile>"
    assert any(e.name == "kiln::matmul" for e in prof.function_events)
    assert repr(prof).startswith("[<FunctionEvent ")


def test_tables_have_the_expected_columns():
    lin, x = _model_and_input()
    with ap.profile(record_shapes=True) as prof:
        _run(lin, x)
    cols = ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg",
            "# of Calls"]
    agg = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=100)
    lines = agg.splitlines()
    assert lines[0].startswith("---") and lines[2].startswith("---")
    assert [c.strip() for c in lines[1].split("  ") if c.strip()] == cols
    body = lines[3:-2]
    assert len(body) == len(prof.key_averages())
    assert lines[-1].startswith("Self CPU time total:")
    relu = next(line for line in body if line.startswith("kiln::relu "))
    assert relu.split()[-1] == "1"
    # sorted by self CPU time: the column (us/ms/s) is non-increasing
    scale = {"us": 1, "ms": 1e3, "s": 1e6}

    def us(cell):
        for u in ("us", "ms", "s"):
            if cell.endswith(u):
                return float(cell[:-len(u)]) * scale[u]
    selfs = [us(re.split(r"\s{2,}", line.strip())[2]) for line in body]
    assert selfs == sorted(selfs, reverse=True)

    # prof.table(): one row per event, with the input shapes recorded
    per_event = prof.table(row_limit=1000).splitlines()
    assert [c.strip() for c in per_event[1].split("  ") if c.strip()] == cols + ["Input Shapes"]
    rows = per_event[3:-2]
    assert len(rows) == len(prof.function_events)
    assert all(r.split()[-1] != "" for r in rows)
    mm = [r for r in rows if r.startswith("kiln::matmul ")]
    assert any("[[4, 3], [3, 2]]" in r for r in mm)
    assert str(prof) == prof.table()
    top = prof.table(top_level_events_only=True).splitlines()[3:-2]
    assert [r.split()[0] for r in top] == ["fwd", "bwd"]
    assert len(prof.table(row_limit=2).splitlines()[3:-2]) == 2


def test_chrome_trace_is_json_with_the_events(tmp_path):
    lin, x = _model_and_input()
    with ap.profile() as prof:
        _run(lin, x)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path), metadata={"run": "unit-test"})
    doc = json.loads(path.read_text())
    assert doc["run"] == "unit-test"
    evs = doc["traceEvents"]
    assert len(evs) == len(prof.function_events)
    assert {e["ph"] for e in evs} == {"X"}
    assert all(e["dur"] >= 0 and e["ts"] >= 0 for e in evs)
    names = [e["name"] for e in evs]
    assert names.count("fwd") == 1 and names.count("bwd") == 1
    assert names.count("kiln::relu") == 1
    fwd = next(e for e in evs if e["name"] == "fwd")
    relu = next(e for e in evs if e["name"] == "kiln::relu")
    assert fwd["ts"] <= relu["ts"] and relu["ts"] + relu["dur"] <= fwd["ts"] + fwd["dur"] + 1e-3
    assert fwd["cat"] == "user_annotation" and relu["cat"] == "cpu_op"


def test_record_function_ranges_and_decorator():
    calls = []

    @ap.record_function("my_step")
    def step(t):
        calls.append(1)
        return t * 2

    x = torch.ones(3)
    with ap.profile() as prof:
        for _ in range(3):
            step(x)
        with ap.record_function("outer"):
            with ap.record_function("inner", args="ignored"):
                x + 1
    avgs = {a.key: a for a in prof.key_averages()}
    assert avgs["my_step"].count == 3 and len(calls) == 3
    assert avgs["kiln::mul"].count == 3
    assert _children(prof, "my_step") == ["kiln::mul"]
    assert _children(prof, "outer") == ["inner"]
    assert _children(prof, "inner") == ["kiln::add"]
    # outside a profile, record_function records nothing and costs nothing
    with ap.record_function("unseen"):
        pass
    assert "unseen" not in {a.key for a in prof.key_averages()}


def test_disabled_profile_and_reentry():
    with ap.profile(enabled=False) as p:
        torch.ones(2) + 1
    assert p is None
    prof = ap.profile()
    with prof:
        torch.ones(2) + 1
    with pytest.raises(RuntimeError, match="Profiler context manager is not reentrant"):
        with prof:
            pass
    with ap.profile() as outer:
        with pytest.raises(RuntimeError, match="another profiler is already recording"):
            with ap.profile():
                pass
    assert outer.function_events is not None


def test_constructor_checks_and_warnings():
    with pytest.raises(AssertionError, match="Device-only events supported only with Kineto"):
        ap.profile(use_cpu=False)
    with pytest.warns(UserWarning, match="The tpu is not a valid device option."):
        p = ap.profile(use_device="tpu")
    assert p.use_device is None
    with ap.profile(with_flops=True) as p:
        torch.ones(2, 2) @ torch.ones(2, 2)
    assert p.record_shapes                       # with_flops turns shape recording on
    assert any(e.shapes == [[2, 2], [2, 2]] for e in p.function_events)
    if not torch.cuda.is_available():
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            p = ap.profile(use_cuda=True)
        msgs = [(x.category, str(x.message)) for x in w]
        assert msgs == [(FutureWarning, "The attribute `use_cuda` will be deprecated soon, "
                         "please use ``use_device = 'cuda'`` instead."),
                        (UserWarning, "CUDA is not available, disabling CUDA profiling")]
        assert p.use_device is None
        with pytest.raises(AssertionError, match="No activities specified for the profiler"):
            ap.profile(use_cpu=False, use_kineto=True)
        with pytest.warns(UserWarning, match="CUDA is not available"):
            p = ap.profile(use_device="cuda")
        with p:
            torch.ones(2) + 1
        assert "CUDA" not in p.key_averages().table()
    else:
        with ap.profile(use_device="cuda") as p:
            torch.ones(2) + 1
        assert "Self CUDA" in p.key_averages().table()


def test_emit_nvtx_and_itt_are_annotation_no_ops():
    if not torch.cuda.is_available():
        # emit_nvtx synchronizes cuda on entry: PyTorch's CPU build raises there too
        with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
            with ap.emit_nvtx():
                pass
    tools = ((ap.emit_nvtx, "NVTX"),) if torch.cuda.is_available() else ()
    for cls, tool in tools + ((ap.emit_itt, "ITT"),):
        ctx = cls(record_shapes=True)
        with ctx as got:
            y = torch.ones(2) * 3
        assert got is ctx and float(y.sum()) == 6.0
        with pytest.raises(RuntimeError, match=f"{tool} annotation context manager is not "
                                               "reentrant"):
            with ctx:
                pass
        with cls(enabled=False) as got:
            pass
        assert got is None
    # nothing is recorded into a surrounding profile by them
    with ap.profile() as prof:
        with ap.emit_itt():
            torch.ones(2) + 1
    assert [e.name for e in prof.function_events] == ["kiln::add"]


def test_table_columns_match_torch():
    real = pytest.importorskip("torch", reason="an optional cross-check against PyTorch itself")
    assert real.profiler.record_function is real.autograd.profiler.record_function
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with real.autograd.profiler.profile() as tp:
            real.ones(2, 2) * 2
    theirs = tp.key_averages().table().splitlines()
    with ap.profile() as kp:
        torch.ones(2, 2) * 2
    ours = kp.key_averages().table().splitlines()
    cols = [[c.strip() for c in lines[1].split("  ") if c.strip()] for lines in (theirs, ours)]
    assert cols[0] == cols[1]
    assert theirs[-1].startswith("Self CPU time total:") and ours[-1].startswith(
        "Self CPU time total:")
    # torch's disabled profile also returns None from __enter__
    with real.autograd.profiler.profile(enabled=False) as p:
        pass
    assert p is None
