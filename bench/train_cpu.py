"""One training epoch, Kiln eager vs PyTorch CPU eager (when installed), side by side:
  digits CNN  (examples/train_digits.py's model, batch 32, 1438 samples)
  MLP         (784-512-512-10, batch 128, synthetic data, --mlp-batches batches)
Both run the same loop (zero_grad, forward, cross-entropy, backward, AdamW step) on the same
data. Prints a table of seconds per epoch and the Kiln/PyTorch ratio.

    python bench/train_cpu.py [--mlp-batches 300] [--repeat 2]
"""
import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import framework as kiln  # noqa: E402


def load_digits_arrays():
    from sklearn.datasets import load_digits
    d = load_digits()
    x = ((d.images.astype(np.float32) / 16.0)[:, None] - 0.3) / 0.4
    return x[:1438], d.target[:1438].astype(np.int64)


def digits_model(lib):
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(128, 10))


def mlp_model(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 10))


def epoch(lib, model, batches):
    opt = lib.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    t0 = time.perf_counter()
    for xb, yb in batches:
        opt.zero_grad()
        loss = lib.nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
    loss.item()
    return time.perf_counter() - t0


def batches_for(lib, x, y, bs):
    return [(lib.from_numpy(x[i:i + bs]), lib.from_numpy(y[i:i + bs]))
            for i in range(0, len(x) - bs + 1, bs)]


def run(lib, name, make, x, y, bs, repeat):
    lib.manual_seed(0)
    model = make(lib)
    b = batches_for(lib, x, y, bs)
    return min(epoch(lib, model, b) for _ in range(repeat)), len(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mlp-batches", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="PyTorch intra-op threads (1 avoids oversubscribing a shared machine)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    dx, dy = load_digits_arrays()
    mx = rng.standard_normal((args.mlp_batches * 128, 784)).astype(np.float32)
    my = rng.integers(0, 10, args.mlp_batches * 128).astype(np.int64)
    cases = [("digits CNN", digits_model, dx, dy, 32), ("MLP 784-512-512-10", mlp_model, mx, my, 128)]
    try:
        import torch
        torch.set_num_threads(args.torch_threads)
    except ImportError:
        torch = None
    print(f"{'workload':<22}{'batches':>8}{'kiln s':>10}{'torch s':>10}{'kiln/torch':>12}")
    for name, make, x, y, bs in cases:
        k, nb = run(kiln, name, make, x, y, bs, args.repeat)
        if torch is not None:
            t, _ = run(torch, name, make, x, y, bs, args.repeat)
            print(f"{name:<22}{nb:>8}{k:>10.3f}{t:>10.3f}{k / t:>12.2f}")
        else:
            print(f"{name:<22}{nb:>8}{k:>10.3f}{'-':>10}{'-':>12}")
    if torch is None:
        print("(PyTorch not installed: no reference column)")


if __name__ == "__main__":
    main()
