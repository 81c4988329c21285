"""torch.utils.benchmark: Timer, Measurement and Compare for timing Python statements.

    import framework as torch
    from framework.utils import benchmark
    x = torch.randn(64, 64)
    t = benchmark.Timer(stmt="x @ x", globals={"x": x}, label="matmul", description="64")
    m = t.blocked_autorange(min_run_time=0.2)
    print(m)                                  # median, IQR, measurement and run counts
    benchmark.Compare([m, ...]).print()      # a table: rows sub_label/stmt, columns description

The algorithms and the text are PyTorch's (torch/utils/benchmark/utils/{timer,common,compare}.py):
timeit() warms up with number // 100 runs, then times `number` runs once; blocked_autorange()
grows the block size by 10x until the timer's overhead is <= 1e-4 of a block (and a block takes at
least min_run_time / 1000) and then times blocks until min_run_time has passed;
adaptive_autorange() times blocks until there are more than 3, min_run_time has passed and
IQR / median < threshold (or max_run_time is spent). Measurement's median and quartiles are
linear-interpolated quantiles, like torch.quantile; significant_figures, select_unit and
trim_sigfig round through float32 the way torch's tensor arithmetic there does.

The statement is a string (a callable is refused, as in torch), compiled once by the standard
library's timeit.Timer and run with `globals` (plus `torch`, bound to Kiln, unless given) and the
names `setup` defines. The default `timer` synchronizes Kiln's GPU (when one is available)
before reading timeit.default_timer, like torch's. `num_threads` goes through Kiln's
get_num_threads/set_num_threads (NumPy's OpenBLAS and generated programs' chunks,
runtime/threads.py) for the duration of a measurement and is restored afterwards.

Left out: C++ statements (language="cpp": torch compiles them against libtorch), Callgrind
instruction counts (collect_callgrind), and the Fuzzer / FuzzedParameter / FuzzedTensor input
generators.
"""
import collections
import contextlib
import dataclasses
import enum
import itertools as it
import math
import operator
import sys
import textwrap
import timeit as _timeit
from typing import Optional

import numpy as np

__all__ = ["Timer", "timer", "Language", "TaskSpec", "Measurement", "select_unit",
           "unit_to_english", "trim_sigfig", "ordered_unique", "set_torch_threads", "Colorize",
           "Compare"]


def _kiln():
    """The framework package (imported lazily: this module loads while it initializes)."""
    return sys.modules[__name__.split(".")[0]]


def _f32(x):
    return np.float32(x)


def _log10_f32(x):
    """log10 in float32, as torch.tensor(x).log10() computes it."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.log10(_f32(x)))


# ============================================================================ common

_MAX_SIGNIFICANT_FIGURES = 4
_MIN_CONFIDENCE_INTERVAL = 25e-9  # 25 ns

# A Measurement carries a warning when its spread is suspect.
_IQR_WARN_THRESHOLD = 0.1
_IQR_GROSS_WARN_THRESHOLD = 0.25


@dataclasses.dataclass(init=True, repr=False, eq=True, frozen=True)
class TaskSpec:
    """What a Timer measures (everything but its globals)."""
    stmt: str
    setup: str
    global_setup: str = ""
    label: Optional[str] = None
    sub_label: Optional[str] = None
    description: Optional[str] = None
    env: Optional[str] = None
    num_threads: int = 1

    @property
    def title(self):
        """Best-effort label for the measurement."""
        if self.label is not None:
            return self.label + (f": {self.sub_label}" if self.sub_label else "")
        elif "\n" not in self.stmt:
            return self.stmt + (f": {self.sub_label}" if self.sub_label else "")
        return (f"stmt:{f' ({self.sub_label})' if self.sub_label else ''}\n"
                f"{textwrap.indent(self.stmt, '  ')}")

    def setup_str(self):
        return ("" if (self.setup == "pass" or not self.setup)
                else f"setup:\n{textwrap.indent(self.setup, '  ')}" if "\n" in self.setup
                else f"setup: {self.setup}")

    def summarize(self):
        """The TaskSpec part of other containers' reprs."""
        sections = [self.title, self.description or "", self.setup_str()]
        return "\n".join([f"{i}\n" if "\n" in i else i for i in sections if i])


_TASKSPEC_FIELDS = tuple(f.name for f in dataclasses.fields(TaskSpec))


def _quantile(sorted_vals, q):
    """torch.quantile(..., interpolation='linear') of an ascending float64 sequence."""
    n = len(sorted_vals)
    rank = q * (n - 1)
    lo = math.floor(rank)
    hi = math.ceil(rank)
    w = rank - lo
    a, b = sorted_vals[lo], sorted_vals[hi]
    # torch.lerp: start + w * (end - start) below w = 0.5, end - (end - start) * (1 - w) above
    return a + w * (b - a) if w < 0.5 else b - (b - a) * (1 - w)


@dataclasses.dataclass(init=True, repr=False)
class Measurement:
    """The result of a Timer measurement: `raw_times` (seconds) of blocks of `number_per_run`
    runs each, with statistics over the per-run times and PyTorch's repr."""
    number_per_run: int
    raw_times: list
    task_spec: TaskSpec
    metadata: Optional[dict] = None  # reserved for user payloads

    def __post_init__(self):
        self._sorted_times = ()
        self._warnings = ()
        self._median = -1.0
        self._mean = -1.0
        self._p25 = -1.0
        self._p75 = -1.0

    def __getattr__(self, name):
        # Forward TaskSpec fields (label, stmt, num_threads, ...) for convenience.
        if name in _TASKSPEC_FIELDS:
            return getattr(self.task_spec, name)
        return super().__getattribute__(name)

    # ---- statistics (per run: raw time / number_per_run) ------------------------------------
    @property
    def times(self):
        return [t / self.number_per_run for t in self.raw_times]

    @property
    def median(self):
        self._lazy_init()
        return self._median

    @property
    def mean(self):
        self._lazy_init()
        return self._mean

    @property
    def iqr(self):
        self._lazy_init()
        return self._p75 - self._p25

    @property
    def significant_figures(self):
        """Rough significant-figure estimate from the interquartile points (z = 1.645), between
        1 and 4; Compare uses it when trimming."""
        self._lazy_init()
        n_total = len(self._sorted_times)
        lower_bound = int(n_total // 4)
        upper_bound = int(math.ceil(_f32(3 * n_total / 4)))
        interquartile_points = self._sorted_times[lower_bound:upper_bound]
        # torch.tensor(points) is float32; its std accumulates in double and rounds to float32
        pts = np.asarray(np.asarray(interquartile_points, np.float32), np.float64)
        with np.errstate(invalid="ignore"):
            std = float(_f32(pts.std())) if len(pts) else float("nan")
        sqrt_n = float(np.sqrt(_f32(len(interquartile_points))))
        with np.errstate(divide="ignore", invalid="ignore"):
            ci_raw = 1.645 * std / sqrt_n if sqrt_n else float("nan")
        confidence_interval = max(ci_raw, _MIN_CONFIDENCE_INTERVAL)
        relative_ci = _log10_f32(self._median / confidence_interval)
        num_significant_figures = int(math.floor(_f32(relative_ci)))
        return min(max(num_significant_figures, 1), _MAX_SIGNIFICANT_FIGURES)

    @property
    def has_warnings(self):
        self._lazy_init()
        return bool(self._warnings)

    def _lazy_init(self):
        if self.raw_times and not self._sorted_times:
            self._sorted_times = tuple(sorted(self.times))
            s = [float(v) for v in self._sorted_times]
            self._median = _quantile(s, .5)
            self._mean = math.fsum(s) / len(s)
            self._p25 = _quantile(s, .25)
            self._p75 = _quantile(s, .75)

            def add_warning(msg):
                rel_iqr = self.iqr / self.median * 100
                self._warnings += (f"  WARNING: Interquartile range is {rel_iqr:.1f}% "
                                   f"of the median measurement.\n           {msg}",)

            if not self.meets_confidence(_IQR_GROSS_WARN_THRESHOLD):
                add_warning("This suggests significant environmental influence.")
            elif not self.meets_confidence(_IQR_WARN_THRESHOLD):
                add_warning("This could indicate system fluctuation.")

    def meets_confidence(self, threshold=_IQR_WARN_THRESHOLD):
        return self.iqr / self.median < threshold

    @property
    def title(self):
        return self.task_spec.title

    @property
    def env(self):
        # torch's property means "Unspecified env" for a missing env but reads a misspelled
        # attribute, so what torch users observe is task_spec.env (None when unset): so here.
        return self.task_spec.env

    @property
    def as_row_name(self):
        return self.sub_label or self.stmt or "[Unknown]"

    def __repr__(self):
        """
        <framework.utils.benchmark.Measurement object at 0x7f395b6ac110>
        Broadcasting add (4x8)
          Median: 5.73 us
          IQR:    2.25 us (4.01 to 6.26)
          372 measurements, 100 runs per measurement, 1 thread
          WARNING: Interquartile range is 39.4% of the median measurement.
                   This suggests significant environmental influence.
        """
        self._lazy_init()
        skip_line, newline = "MEASUREMENT_REPR_SKIP_LINE", "\n"
        n = len(self._sorted_times)
        time_unit, time_scale = select_unit(self._median)
        iqr_filter = "" if n >= 4 else skip_line

        repr_str = f"""
{super().__repr__()}
{self.task_spec.summarize()}
  {'Median: ' if n > 1 else ''}{self._median / time_scale:.2f} {time_unit}
  {iqr_filter}IQR:    {self.iqr / time_scale:.2f} {time_unit} ({self._p25 / time_scale:.2f} to {self._p75 / time_scale:.2f})
  {n} measurement{'s' if n > 1 else ''}, {self.number_per_run} runs {'per measurement,' if n > 1 else ','} {self.num_threads} thread{'s' if self.num_threads > 1 else ''}
{newline.join(self._warnings)}""".strip()  # noqa: E501

        return "\n".join(line for line in repr_str.splitlines(keepends=False)
                         if skip_line not in line)

    @staticmethod
    def merge(measurements):
        """Merge replicates with the same TaskSpec (times extrapolated to number_per_run=1; the
        metadata is dropped)."""
        grouped = collections.defaultdict(list)
        for m in measurements:
            grouped[m.task_spec].append(m)

        def merge_group(task_spec, group):
            times = []
            for m in group:
                times.extend(m.times)
            return Measurement(number_per_run=1, raw_times=times, task_spec=task_spec,
                               metadata=None)

        return [merge_group(t, g) for t, g in grouped.items()]


def select_unit(t):
    """(unit, scale) that brings t seconds to an O(1)..O(1000) number."""
    time_unit = {-3: "ns", -2: "us", -1: "ms"}.get(int(_log10_f32(t) // 3), "s")
    time_scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1}[time_unit]
    return time_unit, time_scale


def unit_to_english(u):
    return {"ns": "nanosecond", "us": "microsecond", "ms": "millisecond", "s": "second"}[u]


def trim_sigfig(x, n):
    """Trim `x` to `n` significant figures (3.14159, 2 -> 3.1), rounded through float32."""
    if n != int(n):
        raise AssertionError("Number of significant figures must be an integer")
    with np.errstate(divide="ignore"):
        magnitude = int(math.ceil(float(np.log10(np.abs(_f32(x))))))
    scale = 10 ** (magnitude - n)
    return float(_f32(np.round(_f32(x / scale))) * _f32(scale))


def ordered_unique(elements):
    return list(collections.OrderedDict(dict.fromkeys(elements)).keys())


@contextlib.contextmanager
def set_torch_threads(n):
    """Kiln's set_num_threads(n) for the block; the prior count is restored afterwards."""
    fw = _kiln()
    prior_num_threads = fw.get_num_threads()
    try:
        fw.set_num_threads(n)
        yield
    finally:
        fw.set_num_threads(prior_num_threads)


# ============================================================================ Timer

def timer():
    """timeit.default_timer after synchronizing Kiln's GPU (when one is available)."""
    cuda = getattr(_kiln(), "cuda", None)
    if cuda is not None and cuda.is_available():
        cuda.synchronize()
    return _timeit.default_timer()


class Language(enum.Enum):
    PYTHON = 0
    CPP = 1


class Timer:
    """torch.utils.benchmark.Timer: times a Python statement (a string) with warm-up,
    replicates and PyTorch's block-size search. See the module docstring.

    Args: stmt, setup (code run once before timing; the names it defines are visible to stmt),
    global_setup (C++ only; refused for Python), timer, globals (names stmt may use; `torch`
    is added as Kiln unless given), label, sub_label, description, env (metadata shown by the
    Measurement and used by Compare), num_threads (see the module docstring), language
    (Language.PYTHON; C++ is not supported by Kiln).
    """

    _timer_cls = _timeit.Timer

    def __init__(self, stmt="pass", setup="pass", global_setup="", timer=timer, globals=None,
                 label=None, sub_label=None, description=None, env=None, num_threads=1,
                 language=Language.PYTHON):
        if not isinstance(stmt, str):
            raise ValueError("Currently only a `str` stmt is supported.")

        # copied so that exec's additions (__builtins__) do not leak into the caller's dict
        self._globals = dict(globals or {})

        if language in (Language.PYTHON, "py", "python"):
            self._globals.setdefault("torch", _kiln())
            self._language = Language.PYTHON
            if global_setup:
                raise ValueError(
                    f"global_setup is C++ only, got `{global_setup}`. Most "
                    "likely this code can simply be moved to `setup`.")
        elif language in (Language.CPP, "cpp", "c++"):
            raise NotImplementedError(
                "Timer: C++ statements are not supported by Kiln (PyTorch compiles them against "
                "libtorch); time a Python statement instead.")
        else:
            raise ValueError(f"Invalid language `{language}`.")

        # Dedent, and drop the leading newline of a block string, so that snippets written
        # inside functions do not raise IndentationError (and reprs look clean).
        stmt = textwrap.dedent(stmt)
        stmt = (stmt[1:] if stmt and stmt[0] == "\n" else stmt).rstrip()
        setup = textwrap.dedent(setup)
        setup = (setup[1:] if setup and setup[0] == "\n" else setup).rstrip()

        self._timer = self._timer_cls(stmt=stmt, setup=setup, timer=timer,
                                      globals=self._globals)
        self._task_spec = TaskSpec(stmt=stmt, setup=setup, global_setup=global_setup,
                                   label=label, sub_label=sub_label, description=description,
                                   env=env, num_threads=num_threads)

    def _timeit(self, number):
        # no real statement takes under 1 ns (and this avoids dividing by zero)
        return max(self._timer.timeit(number), 1e-9)

    def timeit(self, number=1000000):
        """Like timeit.Timer.timeit: run stmt `number` times (after a warm-up of
        max(number // 100, 2) runs); one raw time."""
        with set_torch_threads(self._task_spec.num_threads):
            self._timeit(number=max(int(number // 100), 2))        # warm-up
            return Measurement(number_per_run=number, raw_times=[self._timeit(number=number)],
                               task_spec=self._task_spec)

    def repeat(self, repeat=-1, number=-1):
        raise NotImplementedError("See `Timer.blocked_autorange.`")

    def autorange(self, callback=None):
        raise NotImplementedError("See `Timer.blocked_autorange.`")

    def _threaded_measurement_loop(self, number, time_hook, stop_hook, min_run_time,
                                   max_run_time=None, callback=None):
        total_time = 0.0
        can_stop = False
        times = []
        with set_torch_threads(self._task_spec.num_threads):
            while (total_time < min_run_time) or (not can_stop):
                time_spent = time_hook()
                times.append(time_spent)
                total_time += time_spent
                if callback:
                    callback(number, time_spent)
                can_stop = stop_hook(times)
                if max_run_time and total_time > max_run_time:
                    break
        return times

    def _estimate_block_size(self, min_run_time):
        with set_torch_threads(self._task_spec.num_threads):
            # Grow the block until the timer's overhead is negligible next to it (this also
            # warms up). torch takes the median of 5 overheads in float32 (the lower middle).
            overheads = sorted(float(_f32(self._timeit(0))) for _ in range(5))
            overhead = overheads[(len(overheads) - 1) // 2]
            number = 1
            while True:
                time_taken = self._timeit(number)
                relative_overhead = overhead / time_taken
                if relative_overhead <= 1e-4 and time_taken >= min_run_time / 1000:
                    break
                if time_taken > min_run_time:
                    break
                if number * 10 > 2147483647:     # torch's limit (its C++ interface is int32)
                    break
                number *= 10
        return number

    def blocked_autorange(self, callback=None, min_run_time=0.2):
        """Time blocks of `block_size` runs until min_run_time seconds have been spent; the
        block size is the first power of 10 whose block makes the timer's overhead <= 0.01%
        (see the module docstring). callback(number, time) is called after each block."""
        number = self._estimate_block_size(min_run_time)

        def time_hook():
            return self._timeit(number)

        def stop_hook(times):
            return True

        times = self._threaded_measurement_loop(number, time_hook, stop_hook,
                                                min_run_time=min_run_time, callback=callback)
        return Measurement(number_per_run=number, raw_times=times, task_spec=self._task_spec)

    def adaptive_autorange(self, threshold=0.1, *, min_run_time=0.01, max_run_time=10.0,
                           callback=None):
        """Like blocked_autorange (block size searched with min_run_time=0.05), but keep timing
        blocks until there are more than 3, min_run_time has passed and IQR / median <
        threshold, or until max_run_time seconds have been spent."""
        number = self._estimate_block_size(min_run_time=0.05)

        def time_hook():
            return self._timeit(number)

        def stop_hook(times):
            if len(times) > 3:
                return Measurement(number_per_run=number, raw_times=times,
                                   task_spec=self._task_spec).meets_confidence(
                                       threshold=threshold)
            return False

        times = self._threaded_measurement_loop(number, time_hook, stop_hook, min_run_time,
                                                max_run_time, callback=callback)
        return Measurement(number_per_run=number, raw_times=times, task_spec=self._task_spec)

    def collect_callgrind(self, number=100, *, repeats=None, collect_baseline=True,
                          retain_out_file=False):
        raise NotImplementedError("Timer.collect_callgrind: Kiln has no Callgrind "
                                  "instruction counting; use blocked_autorange for times.")


# ============================================================================ Compare

BEST = "\033[92m"
GOOD = "\033[34m"
BAD = "\033[2m\033[91m"
VERY_BAD = "\033[31m"
BOLD = "\033[1m"
TERMINATE = "\033[0m"


class Colorize(enum.Enum):
    NONE = "none"
    COLUMNWISE = "columnwise"
    ROWWISE = "rowwise"


class _Column:
    def __init__(self, grouped_results, time_scale, time_unit, trim_significant_figures,
                 highlight_warnings):
        self._grouped_results = grouped_results
        self._flat_results = [*it.chain.from_iterable(grouped_results)]
        self._time_scale = time_scale
        self._time_unit = time_unit
        self._trim_significant_figures = trim_significant_figures
        self._highlight_warnings = (highlight_warnings
                                    and any(r.has_warnings for r in self._flat_results if r))
        leading_digits = [int(math.ceil(_f32(_log10_f32(r.median / self._time_scale))))
                          if r else None for r in self._flat_results]
        unit_digits = max(d for d in leading_digits if d is not None)
        decimal_digits = min(
            max(m.significant_figures - digits, 0)
            for digits, m in zip(leading_digits, self._flat_results)
            if (m is not None) and (digits is not None)
        ) if self._trim_significant_figures else 1
        length = unit_digits + decimal_digits + (1 if decimal_digits else 0)
        self._template = (f"{{:>{length}.{decimal_digits}f}}"
                          f"{{:>{7 if self._highlight_warnings else 0}}}")

    def get_results_for(self, group):
        return self._grouped_results[group]

    def num_to_str(self, value, estimated_sigfigs, spread):
        if value is None:
            return " " * len(self.num_to_str(1, estimated_sigfigs, None))
        if self._trim_significant_figures:
            value = trim_sigfig(value, estimated_sigfigs)
        return self._template.format(
            value,
            f" (! {spread * 100:.0f}%)" if self._highlight_warnings and spread is not None
            else "")


def _optional_min(seq):
    values = list(seq)
    return None if len(values) == 0 else min(values)


class _Row:
    def __init__(self, results, row_group, render_env, env_str_len, row_name_str_len,
                 time_scale, colorize, num_threads=None):
        self._results = results
        self._row_group = row_group
        self._render_env = render_env
        self._env_str_len = env_str_len
        self._row_name_str_len = row_name_str_len
        self._time_scale = time_scale
        self._colorize = colorize
        self._columns = ()
        self._num_threads = num_threads

    def register_columns(self, columns):
        self._columns = columns

    def as_column_strings(self):
        concrete_results = [r for r in self._results if r is not None]
        env = f"({concrete_results[0].env})" if self._render_env else ""
        env = env.ljust(self._env_str_len + 4)
        output = ["  " + env + concrete_results[0].as_row_name]
        for m, col in zip(self._results, self._columns or ()):
            if m is None:
                output.append(col.num_to_str(None, 1, None))
            else:
                output.append(col.num_to_str(m.median / self._time_scale, m.significant_figures,
                                             m.iqr / m.median if m.has_warnings else None))
        return output

    @staticmethod
    def color_segment(segment, value, best_value):
        if value <= best_value * 1.01 or value <= best_value + 100e-9:
            return BEST + BOLD + segment + TERMINATE * 2
        if value <= best_value * 1.1:
            return GOOD + BOLD + segment + TERMINATE * 2
        if value >= best_value * 5:
            return VERY_BAD + BOLD + segment + TERMINATE * 2
        if value >= best_value * 2:
            return BAD + segment + TERMINATE * 2
        return segment

    def row_separator(self, overall_width):
        return ([f"{self._num_threads} threads: ".ljust(overall_width, "-")]
                if self._num_threads is not None else [])

    def finalize_column_strings(self, column_strings, col_widths):
        best_values = [-1 for _ in column_strings]
        if self._colorize == Colorize.ROWWISE:
            row_min = min(r.median for r in self._results if r is not None)
            best_values = [row_min for _ in column_strings]
        elif self._colorize == Colorize.COLUMNWISE:
            best_values = [
                _optional_min(r.median for r in column.get_results_for(self._row_group)
                              if r is not None)
                for column in (self._columns or ())]

        row_contents = [column_strings[0].ljust(col_widths[0])]
        for col_str, width, result, best_value in zip(column_strings[1:], col_widths[1:],
                                                      self._results, best_values):
            col_str = col_str.center(width)
            if self._colorize != Colorize.NONE and result is not None and best_value is not None:
                col_str = self.color_segment(col_str, result.median, best_value)
            row_contents.append(col_str)
        return row_contents


class _Table:
    def __init__(self, results, colorize, trim_significant_figures, highlight_warnings):
        if len({r.label for r in results}) != 1:
            raise AssertionError("All results must share the same label")
        self.results = results
        self._colorize = colorize
        self._trim_significant_figures = trim_significant_figures
        self._highlight_warnings = highlight_warnings
        self.label = results[0].label
        self.time_unit, self.time_scale = select_unit(min(r.median for r in results))

        self.row_keys = ordered_unique([self.row_fn(i) for i in results])
        self.row_keys.sort(key=operator.itemgetter(slice(2)))  # stable: keeps stmt order
        self.column_keys = ordered_unique([self.col_fn(i) for i in results])
        self.rows, self.columns = self.populate_rows_and_columns()

    @staticmethod
    def row_fn(m):
        return m.num_threads, m.env, m.as_row_name

    @staticmethod
    def col_fn(m):
        return m.description

    def populate_rows_and_columns(self):
        rows, columns = [], []
        ordered_results = [[None for _ in self.column_keys] for _ in self.row_keys]
        row_position = {key: i for i, key in enumerate(self.row_keys)}
        col_position = {key: i for i, key in enumerate(self.column_keys)}
        for r in self.results:
            ordered_results[row_position[self.row_fn(r)]][col_position[self.col_fn(r)]] = r

        unique_envs = {r.env for r in self.results}
        render_env = len(unique_envs) > 1
        env_str_len = max(len(str(i)) for i in unique_envs) if render_env else 0
        row_name_str_len = max(len(r.as_row_name) for r in self.results)

        prior_num_threads = -1
        prior_env = ""
        row_group = -1
        rows_by_group = []
        for (num_threads, env, _), row in zip(self.row_keys, ordered_results):
            thread_transition = (num_threads != prior_num_threads)
            if thread_transition:
                prior_num_threads = num_threads
                prior_env = ""
                row_group += 1
                rows_by_group.append([])
            rows.append(_Row(results=row, row_group=row_group,
                             render_env=(render_env and env != prior_env),
                             env_str_len=env_str_len, row_name_str_len=row_name_str_len,
                             time_scale=self.time_scale, colorize=self._colorize,
                             num_threads=num_threads if thread_transition else None))
            rows_by_group[-1].append(row)
            prior_env = env

        for i in range(len(self.column_keys)):
            grouped_results = [tuple(row[i] for row in g) for g in rows_by_group]
            columns.append(_Column(grouped_results=grouped_results, time_scale=self.time_scale,
                                   time_unit=self.time_unit,
                                   trim_significant_figures=self._trim_significant_figures,
                                   highlight_warnings=self._highlight_warnings))

        rows_tuple, columns_tuple = tuple(rows), tuple(columns)
        for ri in rows_tuple:
            ri.register_columns(columns_tuple)
        return rows_tuple, columns_tuple

    def render(self):
        string_rows = [[""] + self.column_keys]
        string_rows.extend(r.as_column_strings() for r in self.rows)
        num_cols = max(len(i) for i in string_rows)
        for sr in string_rows:
            sr.extend(["" for _ in range(num_cols - len(sr))])

        col_widths = [max(len(j) for j in i) for i in zip(*string_rows)]
        finalized_columns = ["  |  ".join(i.center(w) for i, w in zip(string_rows[0],
                                                                     col_widths))]
        overall_width = len(finalized_columns[0])
        for string_row, row in zip(string_rows[1:], self.rows):
            finalized_columns.extend(row.row_separator(overall_width))
            finalized_columns.append("  |  ".join(row.finalize_column_strings(string_row,
                                                                              col_widths)))

        newline = "\n"
        has_warnings = self._highlight_warnings and any(ri.has_warnings for ri in self.results)
        return f"""
[{(' ' + (self.label or '') + ' ').center(overall_width - 2, '-')}]
{newline.join(finalized_columns)}

Times are in {unit_to_english(self.time_unit)}s ({self.time_unit}).
{'(! XX%) Measurement has high variance, where XX is the IQR / median * 100.' + newline if has_warnings else ""}"""[1:]  # noqa: E501


class Compare:
    """A table of many Measurements: one table per label, a row per (num_threads, env,
    sub_label or stmt), a column per description; replicates of one TaskSpec are merged.
    print() or str() renders it (PyTorch's layout)."""

    def __init__(self, results):
        self._results = []
        self.extend_results(results)
        self._trim_significant_figures = False
        self._colorize = Colorize.NONE
        self._highlight_warnings = False

    def __str__(self):
        return "\n".join(self._render())

    def extend_results(self, results):
        """Append results (Measurements) to the stored ones."""
        for r in results:
            if not isinstance(r, Measurement):
                raise ValueError("Expected an instance of `Measurement`, "
                                 f"got {type(r)} instead.")
        self._results.extend(results)

    def trim_significant_figures(self):
        """Show each column with the significant figures its measurements support."""
        self._trim_significant_figures = True

    def colorize(self, rowwise=False):
        """Color cells (ANSI) by how they compare to the best of their column (or row)."""
        self._colorize = Colorize.ROWWISE if rowwise else Colorize.COLUMNWISE

    def highlight_warnings(self):
        """Mark high-variance measurements with (! XX%)."""
        self._highlight_warnings = True

    def print(self):
        print(str(self))

    def _render(self):
        results = Measurement.merge(self._results)
        grouped_results = self._group_by_label(results)
        return [self._layout(group) for group in grouped_results.values()]

    def _group_by_label(self, results):
        grouped_results = collections.defaultdict(list)
        for r in results:
            grouped_results[r.label].append(r)
        return grouped_results

    def _layout(self, results):
        return _Table(results, self._colorize, self._trim_significant_figures,
                      self._highlight_warnings).render()
