"""Forward+backward time of common layers: Kiln eager vs PyTorch CPU eager (or a NumPy
reference when torch is not installed), median of several runs, in one process.

    .venv/bin/python bench/layers_cpu.py [--repeat 7] [--threads N]

Cases: Conv2d(3->64, k=3, padding=1) on 32x3x32x32; LSTM(256, 256) on seq 32 x batch 32;
LayerNorm(1024) and softmax(dim=-1) on 4096x1024. Inputs are float32; every case backprops
sum(output * g) with a fixed random g, so both frameworks do the same work.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def median_time(fn, repeat, warmup=2):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def cases(lib, nn, F, rng):
    """name -> zero-argument callable running forward + backward in framework `lib`."""
    f32 = lib.float32
    x_conv = lib.tensor(rng.standard_normal((32, 3, 32, 32)).astype(np.float32))
    g_conv = lib.tensor(rng.standard_normal((32, 64, 32, 32)).astype(np.float32))
    lib.manual_seed(0)
    conv = nn.Conv2d(3, 64, 3, padding=1)

    def run_conv():
        conv.zero_grad()
        (conv(x_conv) * g_conv).sum().backward()

    x_lstm = lib.tensor(rng.standard_normal((32, 32, 256)).astype(np.float32))
    g_lstm = lib.tensor(rng.standard_normal((32, 32, 256)).astype(np.float32))
    lstm = nn.LSTM(256, 256)

    def run_lstm():
        lstm.zero_grad()
        (lstm(x_lstm)[0] * g_lstm).sum().backward()

    x_big = lib.tensor(rng.standard_normal((4096, 1024)).astype(np.float32), requires_grad=True)
    g_big = lib.tensor(rng.standard_normal((4096, 1024)).astype(np.float32))
    ln = nn.LayerNorm(1024)

    def run_ln():
        ln.zero_grad()
        x_big.grad = None
        (ln(x_big) * g_big).sum().backward()

    def run_softmax():
        x_big.grad = None
        (F.softmax(x_big, dim=-1) * g_big).sum().backward()

    assert x_conv.dtype == f32
    return {"Conv2d 32x3x32x32 -> 64, k3": run_conv,
            "LSTM seq32 b32 h256": run_lstm,
            "LayerNorm 4096x1024": run_ln,
            "Softmax 4096x1024": run_softmax}


def numpy_reference(rng):
    """Hand-written NumPy forward+backward for the same cases (used when torch is missing)."""
    x = rng.standard_normal((32, 3, 32, 32)).astype(np.float32)
    w = rng.standard_normal((64, 3, 3, 3)).astype(np.float32)
    g = rng.standard_normal((32, 64, 32, 32)).astype(np.float32)

    def conv():
        xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
        cols = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
        cols = cols.transpose(0, 1, 4, 5, 2, 3).reshape(32, 27, 1024)
        y = np.matmul(w.reshape(64, 27), cols)
        gg = g.reshape(32, 64, 1024)
        (gg @ cols.transpose(0, 2, 1)).sum(0)
        np.matmul(w.reshape(64, 27).T, gg)
        return y

    xl = rng.standard_normal((4096, 1024)).astype(np.float32)
    gl = rng.standard_normal((4096, 1024)).astype(np.float32)

    def ln():
        m = xl.mean(-1, keepdims=True)
        xc = xl - m
        r = 1 / np.sqrt((xc * xc).mean(-1, keepdims=True) + 1e-5)
        xh = xc * r
        return r * (gl - gl.mean(-1, keepdims=True) - xh * (gl * xh).mean(-1, keepdims=True))

    def softmax():
        e = np.exp(xl - xl.max(-1, keepdims=True))
        s = e / e.sum(-1, keepdims=True)
        return s * (gl - (gl * s).sum(-1, keepdims=True))

    H = 256
    xs = rng.standard_normal((32, 32, H)).astype(np.float32)
    wih = rng.standard_normal((4 * H, H)).astype(np.float32) * 0.05
    whh = rng.standard_normal((4 * H, H)).astype(np.float32) * 0.05

    def lstm():   # forward only: a lower bound for the reference
        h = np.zeros((32, H), np.float32)
        c = np.zeros((32, H), np.float32)
        xi = xs @ wih.T
        for t in range(32):
            gt = xi[t] + h @ whh.T
            i, f, gg, o = np.split(gt, 4, axis=1)
            sg = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
            c = sg(f) * c + sg(i) * np.tanh(gg)
            h = sg(o) * np.tanh(c)
        return h

    return {"Conv2d 32x3x32x32 -> 64, k3": conv, "LSTM seq32 b32 h256": lstm,
            "LayerNorm 4096x1024": ln, "Softmax 4096x1024": softmax}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads for the PyTorch side (default: torch's own)")
    args = ap.parse_args()
    import framework as kiln
    rng = np.random.default_rng(0)
    ours = cases(kiln, kiln.nn, kiln.nn.functional, rng)
    try:
        import torch
        if args.threads:
            torch.set_num_threads(args.threads)
        ref_name = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
        ref = cases(torch, torch.nn, torch.nn.functional, np.random.default_rng(0))
    except ImportError:
        ref_name = "NumPy hand-written reference (torch not installed)"
        ref = numpy_reference(np.random.default_rng(0))
    print(f"forward+backward, float32, median of {args.repeat}; reference: {ref_name}")
    print(f"{'case':32s} {'kiln ms':>10s} {'ref ms':>10s} {'kiln/ref':>9s}")
    for name, fn in ours.items():
        tk = median_time(fn, args.repeat)
        tr = median_time(ref[name], args.repeat)
        print(f"{name:32s} {tk * 1e3:10.1f} {tr * 1e3:10.1f} {tk / tr:9.2f}")


if __name__ == "__main__":
    main()
