"""compiler/codegen/triton_copy.py (the K-major staging of tf32 matmul operands): the tiled copy
through Triton's interpreter equals NumPy's copy for transposed, sliced and batched views, at
sizes that leave partial tiles; batch dims one stride cannot describe are refused."""
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
from compiler.codegen import triton_copy
from runtime.interpret import HostTensor
rng = np.random.default_rng(0)
cases = []
a = rng.standard_normal((70, 131)).astype(np.float32)
cases.append(("transposed -> row-major", a.T, np.empty((131, 70), np.float32)))
b = rng.standard_normal((65, 97)).astype(np.float32)
col = np.empty((97, 65), np.float32).T                   # column-major destination
cases.append(("row-major -> column-major", b, col))
c = rng.standard_normal((3, 40, 50)).astype(np.float16)
cases.append(("batched transposed", c.transpose(0, 2, 1), np.empty((3, 50, 40), np.float16)))
d = rng.standard_normal((80, 90)).astype(np.float32)
cases.append(("strided slice", d[::2, 5:70], np.empty((40, 65), np.float32)))
for name, src, dst in cases:
    triton_copy.copy(HostTensor(src), HostTensor(dst), interpret=True)
    print(name, bool(np.array_equal(dst, src)))
e = np.broadcast_to(rng.standard_normal((1, 8, 9)).astype(np.float32), (4, 8, 9))
e = np.broadcast_to(e[:, None], (4, 3, 8, 9))            # stride-0 batch dims nest: one index
dst = np.empty((4, 3, 8, 9), np.float32)
triton_copy.copy(HostTensor(e), HostTensor(dst), interpret=True)
print("broadcast batch", bool(np.array_equal(dst, e)))
f = rng.standard_normal((3, 4, 8, 9)).astype(np.float32).transpose(1, 0, 2, 3)
try:                                                      # batch strides that do not nest
    triton_copy.copy(HostTensor(f), HostTensor(np.empty((4, 3, 8, 9), np.float32)), True)
    print("unnested batch refused", False)
except ValueError:
    print("unnested batch refused", True)
'''


@pytest.fixture(scope="module")
def lines():
    return dict(line.rsplit(" ", 1) for line in _interp.run_script(WORKER, ROOT))


@pytest.mark.parametrize("case", ["transposed -> row-major", "row-major -> column-major",
                                  "batched transposed", "strided slice", "broadcast batch",
                                  "unnested batch refused"])
def test_tile_copy(lines, case):
    assert lines.get(case) == "True", lines


def test_tile_copy_compiles_for_sm90():
    from compiler import aot
    from compiler.codegen import triton_copy
    sig = {"src_ptr": "*fp32", "dst_ptr": "*fp32"}
    sig.update({n: "i32" for n in ("I", "J", "s_b", "s_i", "s_j", "d_b", "d_i", "d_j")})
    sig.update(BLOCK_I="constexpr", BLOCK_J="constexpr")
    art = aot.compile_fn(triton_copy.function(False), sig, {"BLOCK_I": 64, "BLOCK_J": 64},
                         arch=90, name=triton_copy.NAME)
    assert ".target sm_90" in art.ptx and "st.global" in art.ptx and art.registers
