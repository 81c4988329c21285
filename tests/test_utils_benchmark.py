"""framework.utils.benchmark (torch.utils.benchmark): Timer, Measurement, Compare.

Timing assertions are about structure and counts (how many runs, blocks, callbacks), never
about speed: the statements count their own executions, and the block-size search and the
stopping rules are checked with scripted times (a Timer whose _timeit returns given values),
optionally against PyTorch's own Timer fed the same script."""
import random
import re
import warnings

import pytest

import framework as torch
from framework.utils import benchmark
from framework.utils.benchmark import Measurement, TaskSpec, Compare, Timer


def _real_torch_benchmark():
    real = pytest.importorskip("torch", reason="an optional cross-check against PyTorch itself")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch.utils.benchmark as tb
        from torch.utils.benchmark.utils import common as tc
    assert real.__name__ == "torch"
    return tb, tc


def _body(measurement):
    """A Measurement's repr without its first line (`<... object at 0x...>`)."""
    lines = repr(measurement).splitlines()
    assert re.fullmatch(r"<[\w.]+\.Measurement object at 0x[0-9a-f]+>", lines[0]), lines[0]
    return "\n".join(lines[1:])


# ------------------------------------------------------------------------------- Timer

def test_utils_exposes_benchmark():
    assert torch.utils.benchmark is benchmark
    assert benchmark.Timer is Timer and benchmark.Measurement is Measurement


def test_timeit_runs_stmt_warmup_plus_number_times():
    calls = []
    t = Timer("inc()", globals={"inc": lambda: calls.append(1)})
    m = t.timeit(number=50)
    assert len(calls) == 2 + 50                       # warm-up max(50 // 100, 2), then 50
    assert m.number_per_run == 50 and len(m.raw_times) == 1
    assert m.raw_times[0] > 0 and m.times == [m.raw_times[0] / 50]
    assert m.median == m.mean == m.times[0] and m.iqr == 0

    calls.clear()
    m = t.timeit(number=700)
    assert len(calls) == 7 + 700                      # warm-up 700 // 100
    assert m.number_per_run == 700


def test_timeit_sleep_time_is_at_least_the_sleep():
    m = Timer("time.sleep(0.002)", setup="import time").timeit(number=3)
    assert m.number_per_run == 3
    assert m.raw_times[0] >= 0.006                   # time.sleep sleeps at least that long
    assert m.times[0] >= 0.002


def test_setup_names_and_globals_reach_stmt():
    seen = []
    g = {"record": seen.append, "x": torch.ones(3)}
    t = Timer("record(float((x + y).sum()))", setup="y = torch.full((3,), 2.0)", globals=g)
    t.timeit(number=4)
    assert seen == [9.0] * (2 + 4)
    assert set(g) == {"record", "x"}                  # the caller's dict is not modified
    # `torch` is Kiln unless given
    got = []
    Timer("got.append(torch)", globals={"got": got}).timeit(number=1)
    assert got[0] is torch
    Timer("got.append(torch)", globals={"got": got, "torch": "mine"}).timeit(number=1)
    assert got[-1] == "mine"


def test_multiline_stmt_is_dedented_and_titled():
    t = Timer("""
        a = 1
        b = a + 1
    """, label=None)
    m = t.timeit(number=2)
    assert m.stmt == "a = 1\nb = a + 1"
    assert m.title == "stmt:\n  a = 1\n  b = a + 1"


def test_timer_argument_errors_as_torch():
    with pytest.raises(ValueError, match=r"^Currently only a `str` stmt is supported\.$"):
        Timer(lambda: None)
    t = Timer("pass")
    with pytest.raises(NotImplementedError, match=r"See `Timer\.blocked_autorange\.`"):
        t.repeat()
    with pytest.raises(NotImplementedError, match=r"See `Timer\.blocked_autorange\.`"):
        t.autorange()
    with pytest.raises(ValueError, match=r"global_setup is C\+\+ only, got `#include <x>`\. "
                                         r"Most likely this code can simply be moved to "
                                         r"`setup`\."):
        Timer("pass", global_setup="#include <x>")
    with pytest.raises(ValueError, match=r"Invalid language `rust`\."):
        Timer("pass", language="rust")
    with pytest.raises(NotImplementedError, match="C\\+\\+ statements"):
        Timer("pass", language="cpp")
    with pytest.raises(NotImplementedError, match="Callgrind"):
        t.collect_callgrind()


def test_num_threads_is_set_while_timing_and_restored(monkeypatch):
    calls = []
    prior = torch.get_num_threads()
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    seen = []
    t = Timer("seen.append(1)", globals={"seen": seen}, num_threads=3)
    m = t.timeit(number=2)
    assert calls == [3, prior]
    assert m.num_threads == 3 and m.task_spec.num_threads == 3
    assert "2 runs , 3 threads" in repr(m)
    calls.clear()
    t.blocked_autorange(min_run_time=0.001)
    assert calls[0] == 3 and calls[-1] == prior and len(calls) % 2 == 0
    assert all(c == 3 for c in calls[0::2]) and all(c == prior for c in calls[1::2])


def test_blocked_autorange_counts_blocks_and_runs():
    calls = []
    cb = []
    t = Timer("inc()", globals={"inc": lambda: calls.append(1)})
    m = t.blocked_autorange(callback=lambda n, dt: cb.append((n, dt)), min_run_time=0.05)
    n = m.number_per_run
    k = len(str(n)) - 1
    assert n == 10 ** k                                 # the block size is a power of 10
    # the search ran blocks of 1, 10, ..., n (and five empty ones); then the timed blocks
    assert len(calls) == sum(10 ** i for i in range(k + 1)) + n * len(m.raw_times)
    assert [c[0] for c in cb] == [n] * len(m.raw_times)
    assert [c[1] for c in cb] == m.raw_times
    assert sum(m.raw_times) >= 0.05
    assert sum(m.raw_times[:-1]) < 0.05                 # it stopped at the first block over
    assert all(t_ > 0 for t_ in m.raw_times)


def test_adaptive_autorange_real_statement_structure():
    calls = []
    t = Timer("inc()", globals={"inc": lambda: calls.append(1)})
    m = t.adaptive_autorange(threshold=10.0, min_run_time=0.01, max_run_time=5.0)
    assert len(m.raw_times) >= 4                        # it needs more than 3 blocks to stop
    assert m.meets_confidence(10.0)
    k = len(str(m.number_per_run)) - 1
    assert len(calls) == sum(10 ** i for i in range(k + 1)) + m.number_per_run * len(m.raw_times)


class _Scripted(Timer):
    """A Timer whose block times are given: f(number) for the block-size search (number 0 is
    the overhead probe), then `blocks` in order for the measurement loop."""

    def __init__(self, f, blocks=()):
        super().__init__("pass")
        self.f, self.blocks, self.log = f, list(blocks), []

    def _timeit(self, number):
        self.log.append(number)
        if self.blocks and number and self._searched:
            return self.blocks.pop(0)
        return self.f(number)

    def _estimate_block_size(self, min_run_time):
        self._searched = False
        n = super()._estimate_block_size(min_run_time)
        self._searched = True
        return n


def _linear(number):                 # exact binary fractions: totals add up exactly
    return 2.0 ** -20 if number == 0 else number * 2.0 ** -16


def test_blocked_autorange_block_size_rule():
    t = _Scripted(_linear)
    m = t.blocked_autorange(min_run_time=0.2)
    # overhead 2**-20 against a block of n * 2**-16: relative 1/(16 n) <= 1e-4 first at n=1000
    assert m.number_per_run == 1000
    assert t.log[:5] == [0] * 5 and t.log[5:9] == [1, 10, 100, 1000]
    # blocks of 1000 * 2**-16 s until 0.2 s: ceil(0.2 / 0.0152587890625) = 14
    assert m.raw_times == [1000 * 2.0 ** -16] * 14
    # a block that already takes min_run_time stops the search at once
    t = _Scripted(lambda n: 1e-6 if n == 0 else 0.3 * n)
    assert t.blocked_autorange(min_run_time=0.2).number_per_run == 1


def test_adaptive_autorange_stopping_rule():
    # block size: overhead 1e-7 vs 2 ms at number=1 -> 5e-5 <= 1e-4 and >= 0.05 / 1000
    blocks = [0.002, 0.004, 0.002, 0.002, 0.002, 0.002]
    t = _Scripted(lambda n: 1e-7 if n == 0 else 0.002, blocks)
    m = t.adaptive_autorange(threshold=0.1, min_run_time=0.01)
    assert m.number_per_run == 1
    # after 4 blocks IQR/median = 0.5/2 = 0.25 (not < 0.1); after 5 it is 0: stop
    assert m.raw_times == [0.002, 0.004, 0.002, 0.002, 0.002]
    # min_run_time is respected even when the spread is already small
    t = _Scripted(lambda n: 1e-7 if n == 0 else 0.002, [0.002] * 20)
    m = t.adaptive_autorange(threshold=0.1, min_run_time=0.015)
    assert len(m.raw_times) == 8                          # 8 * 2 ms = 16 ms >= 15 ms
    # max_run_time ends a noisy run
    t = _Scripted(lambda n: 1e-7 if n == 0 else 0.002, [0.002, 0.004] * 50)
    m = t.adaptive_autorange(threshold=0.01, min_run_time=0.01, max_run_time=0.05)
    assert sum(m.raw_times) > 0.05 and sum(m.raw_times[:-1]) <= 0.05


def test_scripted_search_matches_torch_timer():
    tb, _ = _real_torch_benchmark()

    def run(cls, f, blocks, method, **kw):
        class S(cls):
            def _timeit(self, number):
                if self._blocks and number and self._searched:
                    return self._blocks.pop(0)
                return f(number)

            def _estimate_block_size(self, min_run_time):
                self._searched = False
                n = super()._estimate_block_size(min_run_time)
                self._searched = True
                return n
        s = S("pass")
        s._blocks = list(blocks)
        m = getattr(s, method)(**kw)
        return m.number_per_run, m.raw_times

    rnd = random.Random(1)
    for _ in range(20):
        scale = 10 ** rnd.uniform(-8, -3)
        over = 10 ** rnd.uniform(-9, -6)

        def f(n, scale=scale, over=over):
            return over if n == 0 else n * scale
        blocks = [scale * 1000 * (1 + rnd.uniform(-0.3, 0.3)) for _ in range(300)]
        for method, kw in [("blocked_autorange", {"min_run_time": 0.02}),
                           ("adaptive_autorange", {"threshold": 0.1, "max_run_time": 0.5})]:
            assert run(Timer, f, blocks, method, **kw) == run(tb.Timer, f, blocks, method, **kw)


# ------------------------------------------------------------------------------- Measurement

def test_measurement_statistics_by_hand():
    m = Measurement(number_per_run=2, raw_times=[4e-6, 1e-6, 3e-6, 2e-6, 10e-6],
                    task_spec=TaskSpec(stmt="x + 1", setup="pass"))
    # per-run times 2, 0.5, 1.5, 1, 5 us; sorted 0.5 1 1.5 2 5
    assert m.times == pytest.approx([2e-6, 0.5e-6, 1.5e-6, 1e-6, 5e-6])
    assert m.median == pytest.approx(1.5e-6, rel=1e-12)
    assert m.mean == pytest.approx(2e-6, rel=1e-12)
    assert m.iqr == pytest.approx(1e-6, rel=1e-12)      # quartiles at ranks 1 and 3: 1 and 2
    assert m.has_warnings
    assert not m.meets_confidence(0.5) and m.meets_confidence(0.7)   # IQR/median = 2/3
    assert _body(m) == (
        "x + 1\n"
        "  Median: 1.50 us\n"
        "  IQR:    1.00 us (1.00 to 2.00)\n"
        "  5 measurements, 2 runs per measurement, 1 thread\n"
        "  WARNING: Interquartile range is 66.7% of the median measurement.\n"
        "           This suggests significant environmental influence.")


def test_measurement_quantiles_interpolate():
    m = Measurement(1, [4.0, 1.0, 3.0, 2.0], TaskSpec("f()", "pass"))
    assert m.median == 2.5
    assert m.iqr == pytest.approx(3.25 - 1.75)           # ranks 0.75 and 2.25
    assert m.mean == 2.5
    # IQR/median 0.025: no warning (quartiles at ranks 1.75 and 5.25 of 8)
    m = Measurement(1, [1.0, 0.95, 1.05, 1.1, 0.9, 1.0, 1.0, 1.0], TaskSpec("f()", "pass"))
    assert m.iqr / m.median == pytest.approx(0.025)
    assert not m.has_warnings and "WARNING" not in repr(m)
    # IQR/median 0.2 (0.9 to 1.1): the milder warning
    m = Measurement(1, [1.2, 0.8, 1.0, 0.9, 1.1], TaskSpec("f()", "pass"))
    assert m.iqr / m.median == pytest.approx(0.2)
    assert m.has_warnings
    assert _body(m).endswith("  WARNING: Interquartile range is 20.0% of the median "
                             "measurement.\n           This could indicate system fluctuation.")


def test_measurement_repr_single_and_few():
    spec = TaskSpec(stmt="model(x)", setup="x = make()\nmodel = Net()", label="Net",
                    sub_label="fp32", description="batch 8", num_threads=4)
    m = Measurement(number_per_run=100, raw_times=[1.2], task_spec=spec)
    assert _body(m) == (
        "Net: fp32\n"
        "batch 8\n"
        "setup:\n"
        "  x = make()\n"
        "  model = Net()\n"
        "\n"
        "  12.00 ms\n"
        "  1 measurement, 100 runs , 4 threads")
    m = Measurement(1, [3e-9, 5e-9, 4e-9], TaskSpec("f()", "y = 1"))
    assert _body(m) == ("f()\n"
                        "setup: y = 1\n"
                        "  Median: 4.00 ns\n"                # fewer than 4: no IQR line
                        "  3 measurements, 1 runs per measurement, 1 thread\n"
                        "  WARNING: Interquartile range is 25.0% of the median measurement.\n"
                        "           This suggests significant environmental influence.")


def test_measurement_fields_and_merge():
    spec = TaskSpec("f()", "pass", label="L", sub_label="s", description="d")
    m = Measurement(2, [2.0, 4.0], spec, metadata={"k": 1})
    assert (m.label, m.sub_label, m.description, m.stmt, m.num_threads) == ("L", "s", "d",
                                                                           "f()", 1)
    assert m.title == "L: s" and m.as_row_name == "s" and m.env is None
    assert m.metadata == {"k": 1}
    with pytest.raises(AttributeError):
        m.no_such_field
    other = Measurement(1, [5.0], spec)
    third = Measurement(1, [7.0], TaskSpec("g()", "pass"))
    merged = Measurement.merge([m, other, third])
    assert len(merged) == 2
    assert merged[0].number_per_run == 1 and merged[0].raw_times == [1.0, 2.0, 5.0]
    assert merged[0].task_spec is spec and merged[0].metadata is None
    assert merged[1].raw_times == [7.0]


def test_significant_figures_by_hand():
    # equal times: std 0, so the confidence interval is the 25 ns floor
    assert Measurement(1, [1e-6] * 8, TaskSpec("f()", "pass")).significant_figures == 1
    # log10(1e-6 / 25e-9) = 1.6 -> 1;  log10(1e-3 / 25e-9) = 4.6 -> 4 (also the cap)
    assert Measurement(1, [1e-3] * 8, TaskSpec("f()", "pass")).significant_figures == 4
    assert Measurement(1, [10.0] * 8, TaskSpec("f()", "pass")).significant_figures == 4
    # interquartile points (indices 2..5 of 8) 1.0 1.0 1.2 1.2 ms: std 0.1 ms;
    # CI = 1.645 * 0.1 / 2 = 0.08225 ms; log10(1.1 / 0.08225) = 1.13 -> 1
    m = Measurement(1, [0.5e-3, 0.6e-3, 1.0e-3, 1.0e-3, 1.2e-3, 1.2e-3, 2e-3, 3e-3],
                    TaskSpec("f()", "pass"))
    assert m.median == pytest.approx(1.1e-3)
    assert m.significant_figures == 1


def test_select_unit_and_trim_sigfig():
    assert benchmark.select_unit(1.5e-6) == ("us", 1e-6)
    assert benchmark.select_unit(5e-9) == ("ns", 1e-9)
    assert benchmark.select_unit(0.02) == ("ms", 1e-3)
    assert benchmark.select_unit(2.0) == ("s", 1)
    assert benchmark.select_unit(2000.0) == ("s", 1)
    assert benchmark.unit_to_english("us") == "microsecond"
    assert benchmark.trim_sigfig(3.14159, 2) == pytest.approx(3.1, rel=1e-6)
    assert benchmark.trim_sigfig(1234.5, 3) == pytest.approx(1230.0, rel=1e-6)
    assert benchmark.trim_sigfig(0.0004567, 1) == pytest.approx(0.0005, rel=1e-6)
    with pytest.raises(AssertionError):
        benchmark.trim_sigfig(1.0, 1.5)
    assert benchmark.ordered_unique([3, 1, 3, 2, 1]) == [3, 1, 2]


def test_measurement_statistics_match_torch():
    tb, tc = _real_torch_benchmark()
    rnd = random.Random(0)
    for _ in range(400):
        n = rnd.choice([1, 2, 3, 4, 5, 8, 13])
        base = 10 ** rnd.uniform(-9, 1)
        spread = rnd.choice([0.001, 0.02, 0.2, 0.6])
        raw = [abs(base * (1 + rnd.gauss(0, spread))) for _ in range(n)]
        kw = dict(stmt=rnd.choice(["x + 1", "a = x\nb = a * 2"]),
                  setup=rnd.choice(["pass", "x = 1", "x = 1\ny = 2"]),
                  label=rnd.choice([None, "L"]), sub_label=rnd.choice([None, "s"]),
                  description=rnd.choice([None, "d"]), num_threads=rnd.choice([1, 4]))
        npr = rnd.choice([1, 10, 1000])
        mk, mt = Measurement(npr, raw, TaskSpec(**kw)), tb.Measurement(npr, raw,
                                                                      tc.TaskSpec(**kw))
        for attr in ("median", "mean", "iqr"):
            assert getattr(mk, attr) == pytest.approx(getattr(mt, attr), rel=1e-12, abs=1e-300)
        assert mk.significant_figures == mt.significant_figures
        assert mk.has_warnings == mt.has_warnings
        assert _body(mk) == "\n".join(repr(mt).splitlines()[1:])
        x = rnd.uniform(-5, 5) * 10 ** rnd.randint(-9, 3)
        k = rnd.randint(1, 4)
        assert benchmark.trim_sigfig(x, k) == tc.trim_sigfig(x, k)
        assert benchmark.select_unit(abs(x)) == tc.select_unit(abs(x))


# ------------------------------------------------------------------------------- Compare

def _pair(tspec=TaskSpec, meas=Measurement):
    a = meas(10, [1.21e-5, 1.25e-5, 1.23e-5, 1.24e-5],
             tspec("x + y", "pass", label="add", description="n=10"))
    b = meas(10, [3.1e-4, 3.2e-4, 3.3e-4, 2.0e-4],
             tspec("x + y", "pass", label="add", description="n=1000"))
    c = meas(1, [2.5e-6], tspec("torch.add(x, y)", "pass", label="add", sub_label="add()",
                                description="n=10"))
    return [a, b, c]


# n=10 column: medians 1.235 and 2.5 us, one decimal ("{:>3.1f}") centred under "n=10";
# n=1000: per-run times 20 31 32 33 us, median 31.5; the table's unit comes from the smallest
_TABLE = (
    "[------------ add ------------]\n"
    "             |  n=10  |  n=1000\n"
    "1 threads: --------------------\n"
    "      x + y  |  1.2   |   31.5 \n"
    "      add()  |  2.5   |        \n"
    "\n"
    "Times are in microseconds (us).\n")


def test_compare_table_text():
    c = Compare(_pair())
    assert str(c) == _TABLE
    # trimmed: each measurement supports 1 significant figure (its IQR points' CI is at the
    # 25 ns floor or wider), so 1.235 -> 1, 2.5 -> 2 (round half to even), 31.5 -> 30
    c.trim_significant_figures()
    assert str(c) == (
        "[------------ add ------------]\n"
        "             |  n=10  |  n=1000\n"
        "1 threads: --------------------\n"
        "      x + y  |   1    |    30  \n"
        "      add()  |   2    |        \n"
        "\n"
        "Times are in microseconds (us).\n")
    # highlighted: the n=1000 measurement's IQR is 28.25..32.25 = 4 us, 13% of 31.5
    c.highlight_warnings()
    assert str(c) == (
        "[-------------- add --------------]\n"
        "             |  n=10  |    n=1000  \n"
        "1 threads: ------------------------\n"
        "      x + y  |   1    |  30 (! 13%)\n"
        "      add()  |   2    |            \n"
        "\n"
        "Times are in microseconds (us).\n"
        "(! XX%) Measurement has high variance, where XX is the IQR / median * 100.\n")
    c = Compare(_pair())
    c.colorize()
    colored = str(c)
    assert "\033[92m\033[1m" in colored and "\033[0m\033[0m" in colored
    assert re.sub(r"\033\[[0-9;]*m", "", colored) == _TABLE
    with pytest.raises(ValueError, match="Expected an instance of `Measurement`"):
        Compare([1.0])


def test_compare_printing_and_groups(capsys):
    ms = _pair() + [Measurement(1, [1.0], TaskSpec("f()", "pass", label="other",
                                                       description="big", num_threads=2))]
    Compare(ms).print()
    assert capsys.readouterr().out == _TABLE + "\n" + (
        "[---- other ----]\n"
        "           |  big\n"
        "2 threads: ------\n"
        "      f()  |  1.0\n"
        "\n"
        "Times are in seconds (s).\n") + "\n"


def test_compare_matches_torch():
    tb, tc = _real_torch_benchmark()
    assert str(Compare(_pair())) == str(tb.Compare(_pair(tc.TaskSpec, tb.Measurement)))
    rnd = random.Random(2)
    for trial in range(120):
        mk, mt = [], []
        for _ in range(rnd.randint(1, 7)):
            raw = [abs(10 ** rnd.uniform(-8, -2) * (1 + rnd.gauss(0, 0.1)))
                   for _ in range(rnd.choice([1, 3, 6]))]
            kw = dict(stmt=rnd.choice(["x+1", "x*2", "f(x)"]), setup="pass",
                      label=rnd.choice(["A", "B"]), sub_label=rnd.choice([None, "fp", "int"]),
                      description=rnd.choice(["n=1", "n=10", "n=100"]),
                      num_threads=rnd.choice([1, 2]), env=rnd.choice([None, "e1"]) if
                      trial % 3 == 0 else None)
            if kw["env"] is None and trial % 3 == 0:
                kw["env"] = "e0"          # torch cannot lay out a None env next to a named one
            mk.append(Measurement(10, raw, TaskSpec(**kw)))
            mt.append(tb.Measurement(10, raw, tc.TaskSpec(**kw)))
        ck, ct = Compare(mk), tb.Compare(mt)
        if trial % 2:
            ck.trim_significant_figures()
            ct.trim_significant_figures()
        if trial % 4 == 1:
            ck.colorize(rowwise=trial % 8 == 1)
            ct.colorize(rowwise=trial % 8 == 1)
        if trial % 5 == 1:
            ck.highlight_warnings()
            ct.highlight_warnings()
        assert str(ck) == str(ct)
