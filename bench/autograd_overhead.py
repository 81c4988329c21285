"""Autograd overhead: forward+backward of a 3-layer MLP (batch 64, width 256) built from plain
tensor ops (no nn), in Kiln eager vs a hand-written NumPy backprop (and PyTorch if installed).

    .venv/bin/python bench/autograd_overhead.py [--repeat N]

Prints the median time per step of each and its ratio to NumPy. Kiln's eager CPU path runs the
same NumPy kernels, so the ratio measures what dispatch + autograd recording + the backward
engine add on top of the arithmetic.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

B, W, LAYERS = 64, 256, 3


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    ws = [(rng.standard_normal((W, W)) / np.sqrt(W)).astype(np.float32) for _ in range(LAYERS)]
    bs = [(rng.standard_normal(W) * 0.1).astype(np.float32) for _ in range(LAYERS)]
    x = rng.standard_normal((B, W)).astype(np.float32)
    return x, ws, bs


def numpy_step(x, ws, bs):
    """Forward + hand-derived backward; returns loss and the parameter gradients."""
    acts, pre = [x], []
    h = x
    for i in range(LAYERS):
        z = h @ ws[i] + bs[i]
        pre.append(z)
        h = np.maximum(z, 0) if i < LAYERS - 1 else z
        acts.append(h)
    loss = np.mean(h * h)
    g = 2.0 * h / h.size
    gws, gbs = [None] * LAYERS, [None] * LAYERS
    for i in reversed(range(LAYERS)):
        if i < LAYERS - 1:
            g = g * (pre[i] > 0)
        gws[i] = acts[i].T @ g
        gbs[i] = g.sum(0)
        if i:
            g = g @ ws[i].T
    return loss, gws, gbs


def kiln_step(torch, x, ws, bs):
    h = x
    for i in range(LAYERS):
        h = h @ ws[i] + bs[i]
        if i < LAYERS - 1:
            h = torch.relu(h)
    loss = (h * h).mean()
    for p in ws + bs:
        p.grad = None
    loss.backward()
    return loss


def time_it(fn, repeat, warmup=3):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()
    x, ws, bs = make_params()

    import framework as kiln
    kx = kiln.from_numpy(x.copy())
    kws = [kiln.from_numpy(w.copy()).requires_grad_() for w in ws]
    kbs = [kiln.from_numpy(b.copy()).requires_grad_() for b in bs]

    # the three must agree before their times mean anything
    loss_np, gws, gbs = numpy_step(x, ws, bs)
    loss_k = kiln_step(kiln, kx, kws, kbs)
    assert abs(loss_k.item() - float(loss_np)) <= 1e-4 * abs(float(loss_np)) + 1e-6
    for a, b in zip(kws + kbs, gws + gbs):
        np.testing.assert_allclose(a.grad.numpy(), b, rtol=1e-3, atol=1e-5)

    rows = [("numpy (hand-written backprop)", time_it(lambda: numpy_step(x, ws, bs), args.repeat))]
    rows.append(("kiln eager (autograd)", time_it(lambda: kiln_step(kiln, kx, kws, kbs), args.repeat)))
    try:
        import torch
        torch.set_num_threads(1)
        tx = torch.from_numpy(x.copy())
        tws = [torch.from_numpy(w.copy()).requires_grad_() for w in ws]
        tbs = [torch.from_numpy(b.copy()).requires_grad_() for b in bs]
        rows.append(("pytorch eager (1 thread)", time_it(lambda: kiln_step(torch, tx, tws, tbs),
                                                         args.repeat)))
    except ImportError:
        pass

    base = rows[0][1]
    print(f"3-layer MLP forward+backward, batch {B}, width {W}, float32, median of "
          f"{args.repeat} runs")
    print(f"{'implementation':32s} {'ms/step':>10s} {'x numpy':>10s}")
    for name, t in rows:
        print(f"{name:32s} {t * 1e3:10.3f} {t / base:10.2f}")


if __name__ == "__main__":
    main()
