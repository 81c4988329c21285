"""A Triton program's buffers across runs (compiler/triton_backend.py): values that never leave
the program keep one buffer, which the next run reuses; what the program returns is fresh each
run; in-place updates of inputs land in the input's memory. Through Triton's interpreter."""
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
import numpy as np
from compiler.ir.graph import Graph
from compiler.backend import compile_graph
from runtime import dtypes as dt
from runtime.interpret import InterpretArray
g = Graph("two_groups")
x = g.add_input("x", (16, 24), dt.float32)
w = g.add_input("w", (24, 8), dt.float32)
m = g.add_input("m", (24, 8), dt.float32)                # optimizer-state-like: updated in place
h = g.call("exp", g.call("mul", x, 0.5))                 # an intermediate only the matmul reads
y = g.call("matmul", h, w)
s = g.call("sum", g.call("mul", y, y), dims=(1,), keepdim=False)
g.set_outputs([s, g.call("add", g.call("mul", m, 0.9), w)])   # m * 0.9 + w, written into m
prog, _ = compile_graph(g, "interpret")
rng = np.random.default_rng(0)
xs = [rng.standard_normal((16, 24)).astype(np.float32) for _ in range(2)]
wa = rng.standard_normal((24, 8)).astype(np.float32)
outs = []
ma = rng.standard_normal((24, 8)).astype(np.float32).view(InterpretArray)   # device memory
for xa in xs:
    ref_s = ((np.exp(xa * 0.5) @ wa) ** 2).sum(1)
    ref_m = np.asarray(ma) * np.float32(0.9) + wa
    r = prog.run([xa, wa, ma], None, alias={1: 2})
    outs.append(r[0])
    print("values", bool(np.allclose(r[0], ref_s, rtol=1e-5, atol=1e-5)))
    print("in place", r[1] is ma and bool(np.array_equal(ma, ref_m)))
print("kept", len(prog._kept) >= 1)
print("fresh outputs", outs[0] is not outs[1] and not np.shares_memory(outs[0], outs[1]))
'''


@pytest.fixture(scope="module")
def lines():
    return [line.rsplit(" ", 1) for line in _interp.run_script(WORKER, ROOT)]


def test_program_buffers(lines):
    got = {}
    for k, v in lines:
        got.setdefault(k, []).append(v)
    assert got["values"] == ["True", "True"], lines
    assert got["in place"] == ["True", "True"], lines
    assert got["kept"] == ["True"] and got["fresh outputs"] == ["True"], lines
