"""runtime.interpret.fix_interpreter's speed-ups of Triton's interpreter change nothing a kernel
computes: the integer-overflow checks it skips are ones device_assert would drop (debug is off),
and the builtins it lists once are the ones the interpreter finds by inspection per launch."""
import os
import sys

import pytest

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
LEAK = %r
if LEAK:
    # a patch an earlier interpreted call left in place (tl.core's builtins are the
    # interpreter's wrappers now): those packages are not listed, and keep the original path
    leak = ti._patch_lang(tl.sum.fn)
    print("leaked", not tl.core.is_builtin(tl.core.load))
fix_interpreter()
if LEAK:
    leak.restore()
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
          got["listed"] == got["inspected"], pkg in ti._patch_builtin.listed)
# and the language is whole again afterwards: no interpreter wrapper left behind
print("restored", all(tl.core.is_builtin(getattr(m, n)) for m in (tl, tl.core)
                      for n in ("load", "store", "arange", "full", "reduce")))
'''


@pytest.mark.parametrize("leak", [False, True], ids=["clean", "left_patched"])
def test_fix_interpreter_keeps_what_kernels_compute(leak):
    lines = _interp.run_script(WORKER % leak, ROOT)
    out = {line.split()[0]: line.split()[1:] for line in lines if line.split()[0] != "same"}
    assert out.get("leaked") == (["True"] if leak else None)
    assert out["debug"] == ["False", "False"]
    # the checks were on, their results unused (device_assert returns at once without debug)
    assert out["sanitize"] == ["True", "False"]
    same = [line.split() for line in lines if line.startswith("same")]
    assert [s[1] for s in same] == ["triton.language", "triton.language.core", "tensor",
                                    "triton.language.math"]
    for _, pkg, n, equal, listed in same:
        assert equal == "True", pkg
        # listed once unless an earlier call left the package patched
        # (the leaked patch of tl.core also wrapped tl.tensor's methods and tl's reduce)
        assert listed == str(not (leak and pkg != "triton.language.math"))
    assert int(same[0][2]) > 20          # triton.language: load, store, arange, ...
    assert out["restored"] == ["True"]
