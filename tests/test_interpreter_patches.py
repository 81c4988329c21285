"""runtime.interpret.fix_interpreter's speed-ups of Triton's interpreter change nothing a kernel
computes: the integer-overflow checks it skips are ones device_assert would drop (debug is off),
and the builtins it lists once are the ones the interpreter finds by inspection per launch."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _interp  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = r'''
import sys
sys.path.insert(0, "tests")
from _interp import become_interpreter_worker
become_interpreter_worker(".")
import triton.language as tl
from triton.runtime import interpreter as ti
from runtime.interpret import fix_interpreter
before = ti.interpreter_builder.options
fix_interpreter()
opts = ti.interpreter_builder.options
print("debug", before.debug, opts.debug)
print("sanitize", before.sanitize_overflow, opts.sanitize_overflow)
orig = ti._patch_builtin.__kwdefaults__["_orig"]
for pkg in (tl, tl.core, tl.tensor, tl.math):
    got = {}
    for label, f in (("listed", ti._patch_builtin), ("inspected", orig)):
        scope = ti._LangPatchScope()
        f(pkg, ti.interpreter_builder, scope)
        got[label] = sorted(name for _, name, _ in scope._changes)
        scope.restore()
    print("same", getattr(pkg, "__name__", pkg), len(got["listed"]),
          got["listed"] == got["inspected"])
# and the language is whole again afterwards: no interpreter wrapper left behind
print("restored", all(tl.core.is_builtin(getattr(tl, n)) for n in ("sum", "load", "arange")
                      if tl.core.is_builtin(getattr(tl.core, n, None))))
'''


def test_fix_interpreter_keeps_what_kernels_compute():
    lines = _interp.run_script(WORKER, ROOT)
    out = {line.split()[0]: line.split()[1:] for line in lines if line.split()[0] != "same"}
    assert out["debug"] == ["False", "False"]
    # the checks were on, their results unused (device_assert returns at once without debug)
    assert out["sanitize"] == ["True", "False"]
    same = [line.split() for line in lines if line.startswith("same")]
    assert len(same) == 4
    for _, pkg, n, equal in same:
        assert equal == "True", pkg
    assert int(same[0][2]) > 20          # triton.language: load, store, arange, ...
    assert out["restored"] == ["True"]
