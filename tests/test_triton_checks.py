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
prog = [p for p in cs.programs() if getattr(p, "_value_checks", None)]
print(json.dumps({"losses": losses, "errors": errors, "unchanged": unchanged,
                  "ignored": ignored, "checks": [[repr(c) for c in p._value_checks] for p in prog],
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
    assert r["checks"] == [["ValueCheck(input 3: [0, 3) ('target', 3))"]]   # the targets
    assert r["kernel_runs"] == 4                                   # three bad runs, one good


def test_deferred_device_checks_raise_at_the_next_synchronisation():
    from compiler.triton_backend import ValueCheck
    from compiler.codegen import triton_checks as tc
    targets = ValueCheck(3, 0, 10, -100, ("target", 10))
    from runtime import cuda
    flag = np.array([1, 12, tc.NONE_LO, 3], np.int64)              # a kernel found target 12
    reads = []

    def read(f):
        reads.append(1)
        return f.copy()
    cuda.defer_check(flag, lambda w: targets.deferred_error(w, "step_0"), read)
    cuda.defer_check(flag, lambda w: targets.deferred_error(w, "step_0"), read)  # once
    with pytest.raises(RuntimeError, match=r"device-side assert triggered \(Kiln: compiled "
                                           r"program step_0: class target 12 is out of bounds "
                                           r"for 10 classes"):
        cuda.check_deferred()
    assert reads == [1] and flag.tolist() == tc.fresh_flag()        # read once, then reset
    cuda.check_deferred()                                           # nothing pending: quiet
    ok = np.array(tc.fresh_flag(), np.int64)
    cuda.defer_check(ok, lambda w: targets.deferred_error(w, "step_0"), read)
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


_INDEX_WORKER = r"""
import json, os, sys
os.environ["KILN_DEVICE"] = "interpret"
sys.path.insert(0, %(root)r)
from tests._interp import become_interpreter_worker
become_interpreter_worker(%(root)r)
import numpy as np
import framework as torch
from compiler.codegen import triton_checks
D = "interpret"
x = torch.randn(5, 3).to(D)
ones = torch.ones(2, 3).to(D)
fns = {
    "index": lambda x, i: x[i] * 2,
    "index_int32": lambda x, i: x[i] * 2,                        # fed int32 indices
    "gather": lambda x, i: torch.gather(x, 0, i.view(2, 1).expand(2, 3)) + 1,
    "index_add": lambda x, i: x.index_add(0, i, ones),
    "scatter_add": lambda x, i: x.scatter_add(0, i.view(2, 1).expand(2, 3), ones),
}
good, bads = [0, 2], ([0, 7], [-6, 1], [0, -1])
out = {}
for name, fn in fns.items():
    f = torch.compile(fn)
    kind = torch.int32 if name.endswith("int32") else torch.int64
    I = lambda v: torch.tensor(v, dtype=kind).to(D)
    ref = fn(x, I(good)).cpu().numpy()
    vals = [f(x, I(good)).cpu().numpy() for _ in range(3)]     # traced, traced, replayed
    x0 = x.cpu().numpy().copy()
    errors = []
    for b in bads:
        try:
            f(x, I(b))
            errors.append(None)
        except (IndexError, RuntimeError) as e:
            errors.append(type(e).__name__ + ": " + str(e))
    checks = [repr(c) for p in f.programs() for c in getattr(p, "_value_checks", ())]
    out[name] = {"same": all(bool(np.allclose(v, ref)) for v in vals), "errors": errors,
                 "unchanged": bool(np.array_equal(x0, x.cpu().numpy())), "checks": checks}
inner = torch.compile(lambda x, i: x[i[:1]] * 2)          # a slice of the input is not checked
out["slice"] = inner(x, torch.tensor([1, 9]).to(D)).cpu().numpy().tolist() == \
    (x.cpu().numpy()[[1]] * 2).tolist()
out["runs"] = {k: v.runs for k, v in triton_checks._KERNELS.items()}
print(json.dumps(out))
"""


def test_compiled_device_programs_check_their_index_inputs():
    """x[i], gather, index_add and scatter_add compiled for a device: an out-of-range index
    raises the cpu path's error before any kernel writes (their kernels would read or write
    nothing for it, silently); in-range indices give eager's values, replays included."""
    pytest.importorskip("triton", reason="the interpret backend runs Triton's interpreter")
    r = json.loads(run_script(_INDEX_WORKER % {"root": ROOT}, ROOT)[-1])
    wrap = ["IndexError: index: index 7 is out of bounds for dimension 0 with size 5",
            "IndexError: index: index -6 is out of bounds for dimension 0 with size 5", None]
    assert r["index"]["errors"] == wrap
    assert r["index_int32"]["errors"] == wrap
    assert r["gather"]["errors"] == [
        "RuntimeError: gather(): index 7 is out of bounds for dimension 0 with size 5",
        "RuntimeError: gather(): index -6 is out of bounds for dimension 0 with size 5",
        "RuntimeError: gather(): index -1 is out of bounds for dimension 0 with size 5"]
    # index_add takes indices in [0, size): its index_put node carries that check, so a
    # replay raises eager's RuntimeError (torch's, for an int64 index and alpha 1), -1 included
    assert r["index_add"]["errors"] == [
        f"RuntimeError: index_add(): index {v} is out of bounds for dimension 0 with size 5"
        for v in (7, -6, -1)]
    assert r["scatter_add"]["errors"] == [e.replace("gather()", "scatter()") for e in
                                          r["gather"]["errors"]]
    for name in ("index", "index_int32", "gather", "index_add", "scatter_add"):
        assert r[name]["same"] and r[name]["unchanged"], (name, r[name])
    def what(name):                     # the checks, without the input position
        return [c.split(": ", 1)[1] for c in r[name]["checks"]]
    assert what("index") == ["[-5, 5) ('index', 'index', 0, 5, True))"]
    assert what("index_int32") == ["[-5, 5) ('index', 'index', 0, 5, True))"]   # before the cast
    assert what("gather") == ["[0, 5) ('index', 'gather', 0, 5, False))"]     # through the views
    assert r["slice"]                      # i[:1] = [1]: the unused 9 raises nothing
    assert r["runs"]["int64"] > 0 and r["runs"]["int32"] > 0


def test_value_checks_on_the_host_match_the_kernel_words():
    from compiler.triton_backend import ValueCheck
    from compiler.codegen import triton_checks as tc
    c = ValueCheck(0, -5, 5, None, ("index", "index", 1, 5, True))
    assert c.host_words(np.array([0, 4, -5])) == tc.fresh_flag()
    assert c.host_words(np.array([[0, 9], [-7, 6]])) == [1, 9, -7, 1]
    assert str(c.error([1, 9, -7, 1])) == "index: index 9 is out of bounds for dimension 1 with size 5"
    assert str(c.error([1, -6, -7, 1])) == "index: index -7 is out of bounds for dimension 1 with size 5"
    g = ValueCheck(0, 0, 3, None, ("index", "gather", 0, 3, False))
    e = g.deferred_error(g.host_words(np.array([1, -1])), "f_0")
    assert isinstance(e, RuntimeError) and str(e) == (
        "CUDA error: device-side assert triggered (Kiln: compiled program f_0: gather(): index "
        "-1 is out of bounds for dimension 0 with size 3; kernels launched after it ran)")
    t = ValueCheck(0, 0, 3, -100, ("target", 3))
    assert t.host_words(np.array([0, -100, 2])) == tc.fresh_flag()
    assert str(t.error(t.host_words(np.array([0, 5, -2])), [0, 5, -2].__getitem__)) == \
        "Target 5 is out of bounds."
    with pytest.raises(TypeError, match="not an index dtype"):
        tc.RangeCheck(__import__("runtime.dtypes", fromlist=["x"]).float32)


def test_range_check_kernels_compile_to_ptx_for_sm90():
    pytest.importorskip("triton", reason="the Triton wheel (with ptxas) compiles the kernel")
    from compiler import aot
    from compiler.codegen import triton_checks
    from runtime import dtypes as dt
    a = aot.compile_kernel(triton_checks.kernel(dt.int32), arch=90)
    assert ".target sm_90" in a.ptx and "ld.global" in a.ptx and "atom.global" in a.ptx
