"""compile() on the CPU: one training step (zero_grad, forward, cross-entropy, backward, AdamW
update) of
  MLP         784-512-512-10, batch 128
  digits CNN  examples/train_digits.py's model, batch 32, 8x8 inputs
as Kiln eager vs Kiln compiled (numpy backend, the whole step one graph; after its first
traces a call replays the generated program without running Python, dropout masks drawn again;
"traced": the same with replays switched off, every call traced)
vs Kiln compiled module (compile(model), loss/backward/AdamW eager) vs PyTorch CPU eager (when
installed), side by side in one run, as milliseconds per step and throughput ratios ("cnn-nodrop"
is the CNN with dropout 0); the per-call cost of the compiled MLP step outside its program
(replay guards); and cold / warm compile time of the MLP step (cold: a fresh process with an
empty KILN_CACHE_DIR; warm: a second process with the same directory).

PyTorch runs with its default thread count unless --torch-threads says otherwise, and NumPy's
BLAS with its own default: both use every core. The machine may be shared: eager, compiled,
compiled module and torch run in turns (a block of --steps steps each, --repeat rounds) and
each figure is its best block; the compiled/torch ratio is also given per round (each torch
block over the compiled block run next to it) as a median and range, which a noisy machine
moves less than a ratio of two bests.

    python bench/compile_cpu.py [--steps 30] [--repeat 5] [--torch-threads N]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import framework  # noqa: E402,F401  (first: Kiln configures OpenBLAS before NumPy loads it)
import numpy as np  # noqa: E402


def mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 10))


def cnn(lib, dropout=0.25):
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(dropout), nn.Linear(128, 10))


def data(name, seed=0):
    rng = np.random.default_rng(seed)
    if name == "mlp":
        return rng.standard_normal((128, 784), dtype=np.float32), rng.integers(0, 10, 128)
    return rng.standard_normal((32, 1, 8, 8), dtype=np.float32), rng.integers(0, 10, 32)


def make_step(lib, name, compiled, module=False):
    """compiled: the whole step compiled; module: compile(model) with an eager step around."""
    lib.manual_seed(0)
    model = mlp(lib) if name == "mlp" else cnn(lib, 0.0 if name == "cnn-nodrop" else 0.25)
    opt = lib.optim.AdamW(model.parameters(), lr=1e-3)
    xa, ya = data("mlp" if name == "mlp" else "cnn")
    x, y = lib.from_numpy(xa), lib.from_numpy(ya.astype(np.int64))
    if module:
        model = lib.compile(model)

    def step():
        opt.zero_grad()
        loss = lib.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return lib.compile(step) if compiled else step


REPEAT = 5


def per_step_ms(step, n, repeat=None):
    """Best of `repeat` runs of n steps (the machine is shared: the minimum is the signal)."""
    repeat = repeat or REPEAT
    step()
    step()                                    # warm up: compile, allocate, fill caches
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(n):
            loss = step()
        loss.item()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e3


def interleaved_ms(steps, n, repeat=None):
    """({name: best ms per step}, {name: [ms per step of each round]}) for several step
    functions measured in turns (a block of n steps of each, `repeat` rounds), so a slow
    phase of a shared machine hits them alike; the rounds give paired ratios. Each block
    starts with one untimed step: PyTorch's OpenMP workers spin for milliseconds after its
    last op, and the first step of whatever runs next would pay for them (a Kiln step right
    after a PyTorch block measured 2-3x its time)."""
    repeat = repeat or REPEAT
    for f in steps.values():
        f()
        f()
    rounds = {k: [] for k in steps}
    for _ in range(repeat):
        for k, f in steps.items():
            f()
            t0 = time.perf_counter()
            for _ in range(n):
                loss = f()
            loss.item()
            rounds[k].append((time.perf_counter() - t0) / n * 1e3)
    return {k: min(v) for k, v in rounds.items()}, rounds


def tracing_overhead_ms(n):
    """Compiled MLP step: total time per call minus the time inside the compiled programs
    (replay guards and bookkeeping once it replays; tracing before)."""
    import framework as kiln
    step = make_step(kiln, "mlp", True)
    step()
    spent = [0.0]
    for prog in step.programs():
        run = prog.run

        def timed(arrays, consts, run=run):
            t = time.perf_counter()
            r = run(arrays, consts)
            spent[0] += time.perf_counter() - t
            return r
        prog.run = timed
    best = None
    for _ in range(3):
        spent[0] = 0.0
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        total = time.perf_counter() - t0
        r = ((total - spent[0]) / n * 1e3, total / n * 1e3)
        best = r if best is None or r[0] < best[0] else best
    return best


def compile_child():
    """Run in a fresh process: time of the first compiled MLP step minus a steady-state step."""
    import framework as kiln
    step = make_step(kiln, "mlp", True)
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    steady = min(_timeit(step) for _ in range(3))
    print(json.dumps({"compile_s": first - steady, "first_s": first}))


def _timeit(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def compile_times():
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, KILN_CACHE_DIR=d)
        out = []
        for _ in ("cold", "warm"):
            r = subprocess.run([sys.executable, __file__, "--child"], env=env,
                               capture_output=True, text=True, check=True)
            out.append(json.loads(r.stdout.strip().splitlines()[-1]))
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="PyTorch intra-op threads (default: PyTorch's own, every core)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return compile_child()
    global REPEAT
    REPEAT = args.repeat
    import framework as kiln
    try:
        import torch
        if args.torch_threads:
            torch.set_num_threads(args.torch_threads)
        threads = f"torch {torch.get_num_threads()} threads"
    except ImportError:
        torch, threads = None, "torch not installed"
    print(f"ms per training step (best of {args.repeat} x {args.steps} steps; {threads}, "
          f"{os.cpu_count()} cores); ratios are throughput relative to Kiln compiled")
    print(f"{'model':<12}{'kiln eager':>12}{'compiled':>12}{'traced':>9}{'compiled module':>17}"
          f"{'torch':>10}{'compiled/eager':>16}{'module/eager':>14}{'compiled/torch':>16}")
    from framework import _compile
    paired = []
    for name in ("mlp", "cnn", "cnn-nodrop"):
        _compile.replays = False            # the same compiled step, traced on every call
        tr = per_step_ms(make_step(kiln, name, True), args.steps)
        _compile.replays = True
        steps = {"e": make_step(kiln, name, False), "c": make_step(kiln, name, True),
                 "m": make_step(kiln, name, False, module=True)}
        if torch:
            steps["t"] = make_step_torch(torch, name)
        r, rounds = interleaved_ms(steps, args.steps)
        e, c, m, t = r["e"], r["c"], r["m"], r.get("t", float("nan"))
        print(f"{name:<12}{e:12.2f}{c:12.2f}{tr:9.2f}{m:17.2f}{t:10.2f}{e / c:15.2f}x"
              f"{e / m:13.2f}x{t / c:15.2f}x", flush=True)
        if "t" in rounds:
            paired.append((name, sorted(a / b for a, b in zip(rounds["t"], rounds["c"]))))
    for name, q in paired:       # each round's torch block over the compiled block next to it
        print(f"{name}: compiled/torch per round (paired blocks): median {q[len(q) // 2]:.2f}x, "
              f"range {q[0]:.2f}-{q[-1]:.2f}x over {len(q)} rounds")
    trace, total = tracing_overhead_ms(args.steps)
    print(f"per-call cost of the compiled MLP step outside its program: {trace:.2f} ms "
          f"({100 * trace / total:.0f}% of {total:.2f} ms)")
    cold, warm = compile_times()
    print(f"compile time of the MLP step: cold {cold['compile_s']:.3f} s, "
          f"warm (KILN_CACHE_DIR reused) {warm['compile_s']:.3f} s")


def make_step_torch(torch, name):
    class Lib:                                 # the attributes make_step uses
        nn, optim, manual_seed, from_numpy = torch.nn, torch.optim, torch.manual_seed, \
            torch.from_numpy
    return make_step(Lib, name, False)


if __name__ == "__main__":
    main()
