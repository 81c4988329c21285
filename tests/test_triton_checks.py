"""Device-side value checks of compiled Triton programs (compiler/codegen/triton_checks.py):
class targets of cross_entropy / nll_loss. On the interpret device a bad target raises the cpu
path's IndexError before any kernel writes; on 'cuda' the flag is read at the next
synchronisation (runtime.cuda.defer_check), which is tested here with host stand-ins."""
import json
import os

import numpy as np
import pytest

from tests._interp import run_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_WORKER = r"""
import json, os, sys
os.environ["KILN_DEVICE"] = "interpret"
sys.path.insert(0, %(root)r)
from tests._interp import become_interpreter_worker
become_interpreter_worker(%(root)r)
import numpy as np
import framework as torch
import framework.nn.functional as F
from compiler.codegen import triton_checks
torch.manual_seed(0)
net = torch.nn.Linear(4, 3).to("interpret")
opt = torch.optim.SGD(net.parameters(), lr=0.1)
def step(x, y):
    opt.zero_grad()
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    return loss
cs = torch.compile(step)
x = torch.randn(5, 4).to("interpret")
good = torch.tensor([0, 1, 2, 1, 0]).to("interpret")
losses = [float(cs(x, good).item()) for _ in range(3)]     # traced, traced, replayed
w0 = net.weight.detach().cpu().numpy().copy()
runs0 = triton_checks.kernel().runs
errors = []
for bad in ([0, 1, 7, 1, 0], [0, -3, 2, 1, 0], [0, 5, -1, 9, 0]):
    try:
        cs(x, torch.tensor(bad).to("interpret"))
        errors.append(None)
    except IndexError as e:
        errors.append(str(e))
unchanged = bool(np.array_equal(w0, net.weight.detach().cpu().numpy()))
ignored = float(cs(x, torch.tensor([0, -100, 2, 1, 0]).to("interpret")).item())
prog = [p for p in cs.programs() if getattr(p, "_target_checks", None)]
print(json.dumps({"losses": losses, "errors": errors, "unchanged": unchanged,
                  "ignored": ignored, "checks": [p._target_checks for p in prog],
                  "kernel_runs": triton_checks.kernel().runs - runs0}))
"""


def test_compiled_step_rejects_bad_targets_before_writing():
    pytest.importorskip("triton", reason="the interpret backend runs Triton's interpreter")
    r = json.loads(run_script(_WORKER % {"root": ROOT}, ROOT)[-1])
    assert r["losses"][0] > r["losses"][1] > r["losses"][2]       # SGD steps went through
    assert r["errors"] == ["Target 7 is out of bounds.", "Target -3 is out of bounds.",
                           "Target 5 is out of bounds."]                # the first bad one
    assert r["unchanged"]                                          # no kernel ran after it
    assert np.isfinite(r["ignored"])                               # ignore_index passes
    assert r["checks"] == [[[3, 3, -100]]]          # (input 3: the targets; 3 classes)
    assert r["kernel_runs"] == 4                                   # three bad runs, one good


def test_deferred_device_checks_raise_at_the_next_synchronisation():
    from compiler.triton_backend import _deferred_target_error
    from compiler.codegen import triton_checks as tc
    from runtime import cuda
    flag = np.array([1, 12, tc.NONE_LO, 3], np.int64)              # a kernel found target 12
    reads = []

    def read(f):
        reads.append(1)
        return f.copy()
    cuda.defer_check(flag, lambda w: _deferred_target_error(w, 10, "step_0"), read)
    cuda.defer_check(flag, lambda w: _deferred_target_error(w, 10, "step_0"), read)  # once
    with pytest.raises(RuntimeError, match=r"device-side assert triggered \(Kiln: compiled "
                                           r"program step_0: class target 12 is out of bounds "
                                           r"for 10 classes"):
        cuda.check_deferred()
    assert reads == [1] and flag.tolist() == tc.fresh_flag()        # read once, then reset
    cuda.check_deferred()                                           # nothing pending: quiet
    ok = np.array(tc.fresh_flag(), np.int64)
    cuda.defer_check(ok, lambda w: _deferred_target_error(w, 10, "step_0"), read)
    cuda.check_deferred()
    assert not cuda._DEFERRED
    assert tc.violation([1, tc.NONE_HI, -2, 4], 10) == -2
    assert tc.violation([0, 5, 5, 0], 3) is None
    assert tc.violation([1, 9, -2, 1], 5, [0, -2, 9].__getitem__) == -2   # the first bad one


def test_check_kernel_compiles_to_ptx_for_sm90():
    pytest.importorskip("triton", reason="the Triton wheel (with ptxas) compiles the kernel")
    from compiler import aot
    from compiler.codegen import triton_checks
    a = aot.compile_kernel(triton_checks.kernel(), arch=90)
    assert ".target sm_90" in a.ptx and "atom.global" in a.ptx and a.cubin
