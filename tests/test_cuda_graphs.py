"""compile(mode="reduce-overhead"): Triton programs replayed through one graph
(compiler/cuda_graphs.py). On the interpret device a graph is the list of launches recorded at
capture, replayed with the same arguments, so these tests check the bookkeeping a CUDA graph
needs without a GPU: inputs copied into the graph's buffers or used in place, host scalars
refreshed, results copied out, recapture when an in-place input moves or a constant changes,
and no graph for a program with a host fallback. Results must equal the default mode's
exactly (the same kernels run on the same values)."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _interp  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = r'''
import json, sys
sys.path.insert(0, "tests")
from _interp import become_interpreter_worker
become_interpreter_worker(".")
import os
os.environ["KILN_DEVICE"] = "interpret"
import numpy as np
import framework as torch
import framework.nn as nn

def train(mode, scenario, hidden):
    # (a hidden size per scenario: programs are shared by equal graphs, and so is their graph)
    torch.manual_seed(0)
    drop = [nn.Dropout(0.5)] if scenario == "dropout" else []   # masks drawn in the graph
    m = nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), *drop,
                      nn.Linear(hidden, 4)).to("interpret")
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return loss
    step = torch.compile(step, mode=mode)
    rng = np.random.default_rng(0)
    data = [(torch.from_numpy(rng.standard_normal((5, 8)).astype(np.float32)).to("interpret"),
             torch.from_numpy(rng.integers(0, 4, 5)).to("interpret")) for _ in range(7)]
    losses = []
    for i in range(7):
        x, y = data[0] if (scenario == "same_batch" or i == 1) else data[i]
        if scenario == "moved_param" and i == 4:      # a parameter at a new address
            w = m[0].weight
            w.data = w.detach().clone()
        if scenario == "new_lr" and i == 4:
            for g in opt.param_groups:
                g["lr"] = 5e-3
        losses.append(step(x, y))                     # kept: later replays must not overwrite
        if i == 3:
            kept_grad = m[0].weight.grad                  # (a view of one replay's arena copy)
    progs = [p for p in step.programs() if getattr(p, "graphs", None) is not None]
    gr = progs[0].graphs if progs else None
    return {"losses": [float(l) for l in losses],
            "params": [p.detach().cpu().numpy().tolist() for p in m.parameters()],
            "kept_grad": kept_grad.cpu().numpy().tolist(),
            "grads": [p.grad.cpu().numpy().tolist() for p in m.parameters()],
            "graph": None if gr is None else
            {"captures": gr.captures, "replays": gr.replays, "off": gr.off,
             "copied": sorted(gr.copied), "fast": gr.fast_replays,
             "arenas": [len(places) for _, places in gr.arenas]}}

for h, scenario in enumerate(("new_batches", "same_batch", "moved_param", "new_lr", "dropout")):
    ref, got = train(None, scenario, 16 + h), train("reduce-overhead", scenario, 16 + h)
    print(json.dumps({"scenario": scenario, "ref": ref, "got": got}))

# a second model of the same shapes shares the first one's program (and graph runner): its
# inputs move once, then stay, so the graph is captured again with them in place
ref = train(None, "same_batch", 30)
train("reduce-overhead", "same_batch", 30)
print(json.dumps({"scenario": "second_model", "ref": ref,
                  "got": train("reduce-overhead", "same_batch", 30)}))

# a program with a host fallback between kernels (cumsum) is never captured
def f(x):
    return torch.cumsum(x * 2, 0).exp() + 1
cf = torch.compile(f, mode="reduce-overhead")
x = torch.from_numpy(np.arange(6, dtype=np.float32) / 10).to("interpret")
outs = [cf(x) for _ in range(3)]
gr = [p for p in cf.programs()][0].graphs
print(json.dumps({"scenario": "fallback", "off": gr.off, "captures": gr.captures,
                  "ok": all(bool(np.allclose(o.cpu().numpy(), f(x).cpu().numpy()))
                            for o in outs)}))
'''


@pytest.fixture(scope="module")
def results():
    lines = _interp.run_script(WORKER, ROOT, timeout=900)
    return {r["scenario"]: r for r in map(json.loads, lines)}


@pytest.mark.parametrize("scenario", ["new_batches", "same_batch", "moved_param", "new_lr",
                                      "dropout"])
def test_graph_replay_equals_default_mode(results, scenario):
    r = results[scenario]
    ref, got = r["ref"], r["got"]
    assert ref["graph"] is None
    assert got["losses"] == ref["losses"], (got["losses"], ref["losses"])
    assert got["params"] == ref["params"]
    assert got["grads"] == ref["grads"] and got["kept_grad"] == ref["kept_grad"]
    g = got["graph"]
    # the results a replay hands out (the loss; the 4 gradients) come from two arenas, each
    # copied out once per replay; a replay that finds its in-place inputs where the last one
    # did launches without rebuilding the graph's key: here every replay (each change of
    # state above captured again, and the run after a capture finds what the capture saw)
    assert g["arenas"] == [1, 4], g
    assert g["fast"] == g["replays"], g
    assert g["off"] is None and g["replays"] >= 2, g
    # 7 steps: the first runs kernel by kernel, the second captures, the rest replay unless
    # the graph no longer fits: the batch seen at a new address (step 3) runs once without
    # the graph, moves again (step 4) and is copied in from then on; a parameter at a new
    # address (step 5: updated in place, so used where it is) captures again at once; a new
    # learning rate reaches the kernels through the host scalars uploaded before each replay,
    # no capture (dropout: each step's [seed, offset] state is a fresh host array, copied in
    # like a batch from the first capture on, as it has moved between the first two steps)
    want = {"new_batches": (2, 3), "same_batch": (1, 5), "moved_param": (3, 2),
            "new_lr": (2, 3), "dropout": (2, 3)}[scenario]
    assert (g["captures"], g["replays"]) == want, g
    if scenario != "dropout":
        assert g["copied"] == ([] if scenario == "same_batch" else [1, 5]), g   # x and y
    else:
        assert len(g["copied"]) == 3, g          # x, y and the [seed, offset] state


def test_second_model_sharing_the_program_copies_nothing(results):
    r = results["second_model"]
    assert r["got"]["losses"] == r["ref"]["losses"] and r["got"]["params"] == r["ref"]["params"]
    g = r["got"]["graph"]
    # the first model: one capture, 5 replays; the second: one run without the graph (its
    # inputs moved), a capture with every input in place, 5 replays
    assert (g["captures"], g["replays"], g["copied"]) == (2, 10, []), g


def test_no_graph_across_a_host_fallback(results):
    r = results["fallback"]
    assert r["ok"] and r["captures"] == 0 and "fallback" in r["off"], r
