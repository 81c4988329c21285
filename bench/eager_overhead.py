"""Per-op latency of small-tensor eager ops: Kiln vs NumPy (and PyTorch CPU if installed),
measured in the same run. Target: Kiln within 5x of PyTorch's eager latency.

    .venv/bin/python bench/eager_overhead.py [--number 2000] [--repeat 15] [--profile]
                                             [--device-host-path]

Each cell is the median over `repeat` timeit runs of `number` calls, in microseconds per call.
--profile runs cProfile over a loop of Kiln ops and prints where the time goes.
--device-host-path times the same ops on the interpret device with every Triton kernel body
stubbed out: the host work (dispatch, meta rule, kernel cache lookup, argument building,
allocation) that an eager op on a GPU pays before the launch itself, measurable without one.
"""
import argparse
import os
import statistics
import sys
import timeit

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import framework as kiln  # noqa: E402

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # the bench still compares against NumPy
    torch = None


def cases(lib, np_mode=False):
    """name -> zero-argument callable running one op on 16x16 float32 inputs (rows that say
    64x64 index a 64x64 one)."""
    rng = np.random.default_rng(0)
    a_np = rng.standard_normal((16, 16)).astype(np.float32)
    b_np = rng.standard_normal((16, 16)).astype(np.float32)
    c_np = rng.standard_normal((64, 64)).astype(np.float32)
    bias_np = rng.standard_normal(16).astype(np.float32)
    i_np = np.array([1, 5, 7, 60])
    if np_mode:
        a, b, c, bias, i = a_np, b_np, c_np, bias_np, i_np
        return {
            "add": lambda: a + b,
            "mul": lambda: a * b,
            "sum": lambda: a.sum(),
            "matmul 16x16": lambda: a @ b,
            "index x[1:3]": lambda: a[1:3],
            "relu (where)": lambda: np.where(a > 0, a, np.float32(0)),
            "exp": lambda: np.exp(a),
            "chain (a*b+a).exp()": lambda: np.exp(a * b + a),
            "a + 1.0": lambda: a + 1.0,
            "index x[3]": lambda: a[3],
            "x[3] 64x64": lambda: c[3],
            "x[long] 64x64": lambda: c[i],
            "index_select 64x64": lambda: np.take(c, i, axis=0),
            "view(-1)": lambda: a.reshape(-1),
            "linear 16x16": lambda: a @ b.T + bias,
            # (the same math by hand: forward, then d/da of sum(a * b) = b)
            "backward (a*b).sum()": lambda: ((a * b).sum(), np.ones_like(a) * b),
        }
    a, b = lib.from_numpy(a_np.copy()), lib.from_numpy(b_np.copy())
    c, bias, i = lib.from_numpy(c_np.copy()), lib.from_numpy(bias_np.copy()), lib.tensor(i_np)
    leaf = lib.from_numpy(a_np.copy()).requires_grad_()
    linear = lib.nn.functional.linear
    return {
        "add": lambda: a + b,
        "mul": lambda: a * b,
        "sum": lambda: a.sum(),
        "matmul 16x16": lambda: a @ b,
        "index x[1:3]": lambda: a[1:3],
        "relu (where)": lambda: lib.relu(a),
        "exp": lambda: a.exp(),
        "chain (a*b+a).exp()": lambda: (a * b + a).exp(),
        "a + 1.0": lambda: a + 1.0,
        "index x[3]": lambda: a[3],
        "x[3] 64x64": lambda: c[3],
        "x[long] 64x64": lambda: c[i],
        "index_select 64x64": lambda: lib.index_select(c, 0, i),
        "view(-1)": lambda: a.view(-1),
        "linear 16x16": lambda: linear(a, b, bias),
        "backward (a*b).sum()": lambda: (leaf * b).sum().backward(),
    }


def measure(fn, number, repeat):
    fn()                                                  # warm caches
    times = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(times) / number * 1e6        # microseconds per call


def run(number, repeat):
    libs = [("kiln", cases(kiln)), ("numpy", cases(None, np_mode=True))]
    if torch is not None:
        libs.append(("torch", cases(torch)))
    rows = {}
    for name in libs[0][1]:          # row by row: a ratio's two timings are taken close together
        for lib, cs in libs:
            rows.setdefault(name, {})[lib] = measure(cs[name], number, repeat)
    head = f"{'op (16x16 float32)':<22}{'kiln us':>10}{'numpy us':>10}"
    if torch is not None:
        head += f"{'torch us':>10}{'kiln/torch':>12}"
    head += f"{'kiln/numpy':>12}"
    print(head)
    print("-" * len(head))
    ratios = []
    for name, r in rows.items():
        line = f"{name:<22}{r['kiln']:>10.2f}{r['numpy']:>10.2f}"
        if torch is not None:
            ratios.append(r["kiln"] / r["torch"])
            line += f"{r['torch']:>10.2f}{r['kiln'] / r['torch']:>12.2f}"
        line += f"{r['kiln'] / r['numpy']:>12.2f}"
        print(line)
    if ratios:
        worst = max(ratios)
        geo = float(np.exp(np.mean(np.log(ratios))))
        print(f"\nkiln/torch: geometric mean {geo:.2f}x, worst {worst:.2f}x "
              f"(target: within 5x) -> {'MET' if worst <= 5 else 'NOT MET'}")
    return rows


def profile(n=20000):
    import cProfile
    import pstats
    cs = cases(kiln)
    ops = [cs["add"], cs["mul"], cs["exp"], cs["chain (a*b+a).exp()"]]

    def loop():
        for _ in range(n):
            for f in ops:
                f()
    pr = cProfile.Profile()
    pr.enable()
    loop()
    pr.disable()
    st = pstats.Stats(pr)
    st.sort_stats("tottime").print_stats(15)


def device_host_path(number, repeat):
    """Kiln's eager ops on the interpret device, kernels stubbed: host microseconds per op."""
    from compiler.codegen import triton_pointwise, triton_group

    class _NoKernel:                       # fn[grid](*args): launches nothing
        def __getitem__(self, grid):
            return lambda *a, **k: None
    triton_pointwise.PointwiseKernel.function = lambda self, interpret: _NoKernel()
    triton_group.GroupKernel.launch = lambda self, inputs, outputs, interpret: None
    rng = np.random.default_rng(0)
    a = kiln.tensor(rng.standard_normal((16, 16)).astype(np.float32)).to("interpret")
    b = kiln.tensor(rng.standard_normal((16, 16)).astype(np.float32)).to("interpret")
    ops = {"add": lambda: a + b, "mul": lambda: a * b, "sum": lambda: a.sum(),
           "matmul 16x16": lambda: a @ b, "index x[1:3]": lambda: a[1:3],
           "exp": lambda: a.exp(), "chain (a*b+a).exp()": lambda: (a * b + a).exp()}
    print(f"\n{'op on interpret, kernel stubbed':<34}{'host us':>10}")
    for name, fn in ops.items():
        print(f"{name:<34}{measure(fn, number, repeat):>10.2f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--number", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--device-host-path", action="store_true")
    args = ap.parse_args()
    if args.device_host_path:
        device_host_path(args.number, args.repeat)
        sys.exit(0)
    run(args.number, args.repeat)
    if args.profile:
        profile()
