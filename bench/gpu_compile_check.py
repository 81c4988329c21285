"""compile(backend='triton') on cuda tensors, end to end: a pointwise chain, softmax, layer_norm,
an MLP forward+backward (compiled module) and a whole AdamW training step (compiled function,
replayed) compiled to fused Triton kernels, each checked against Kiln eager on the CPU, then
timed beside Kiln eager on the cuda device and PyTorch eager / torch.compile when present.

    python3 bench/gpu_compile_check.py            # on a GPU machine
    KILN_DEVICE=interpret TRITON_INTERPRET=1 python bench/gpu_compile_check.py --interpret
                                                  # the same path through Triton's interpreter
"""
import argparse
import os
import sys
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import framework as kiln  # noqa: E402
import framework.nn.functional as F  # noqa: E402


def cases(dev, small):
    n, c = (8, 16) if small else (512, 1024)
    g = kiln.Generator().manual_seed(0)
    x = kiln.randn(n, c, generator=g)
    w = kiln.randn(c, generator=g)
    b = kiln.randn(c, generator=g)
    yield "pointwise chain", lambda t: (t * 2 + 1).exp().sigmoid(), (x,)
    yield "softmax", lambda t: F.softmax(t, -1), (x,)
    yield "layer_norm", lambda t, w, b: F.layer_norm(t, (c,), w, b), (x, w, b)


def mlp(dev, small):
    kiln.manual_seed(0)
    nn = kiln.nn
    d = (16, 32, 8) if small else (784, 512, 10)
    m = nn.Sequential(nn.Linear(d[0], d[1]), nn.ReLU(), nn.Linear(d[1], d[2]))
    x = kiln.randn(8 if small else 128, d[0])
    y = kiln.randint(0, d[2], (x.shape[0],))
    return m, x, y


def train_step(m, opt, x, y, F=F):
    opt.zero_grad()
    loss = F.cross_entropy(m(x), y)
    loss.backward()
    opt.step()
    return loss


def check_train_step(backend, dev, small):
    """The whole AdamW training step compiled (replayed after its first traces) on the device
    vs the same steps eagerly on the CPU; timed beside torch eager and torch.compile."""
    m1, x, y = mlp(dev, small)
    m2, _, _ = mlp(dev, small)
    m2.to(dev)
    o1 = kiln.optim.AdamW(m1.parameters(), lr=1e-3)
    o2 = kiln.optim.AdamW(m2.parameters(), lr=1e-3)
    xd, yd = x.to(dev), y.to(dev)
    step = kiln.compile(lambda: train_step(m2, o2, xd, yd), backend=backend)
    err = 0.0
    for _ in range(5):
        a = train_step(m1, o1, x, y)
        b = step()
        err = max(err, abs(float(a.item()) - float(b.item())))
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        err = max(err, float(np.max(np.abs(p2.detach().cpu().numpy() - p1.detach().numpy()))))
    ok = err < 1e-4 and next(m2.parameters()).device.type != "cpu"
    print(f"{'AdamW training step':<28}{'PASS' if ok else 'FAIL'}  max abs err {err:.2g}  "
          f"(5 calls, {step.stats['replays']} replayed)")
    if small:
        return ok
    rows = [("kiln compiled step (triton)", _timed(step, kiln.cuda.synchronize))]
    try:
        import torch
        torch.manual_seed(0)
        tm = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                 torch.nn.Linear(512, 10)).cuda()
        to = torch.optim.AdamW(tm.parameters(), lr=1e-3)
        tx = torch.randn(128, 784, device="cuda")
        ty = torch.randint(0, 10, (128,), device="cuda")
        tF = torch.nn.functional
        rows.append(("torch eager step", _timed(lambda: train_step(tm, to, tx, ty, tF),
                                                torch.cuda.synchronize)))
        tstep = torch.compile(lambda: train_step(tm, to, tx, ty, tF))
        rows.append(("torch.compile step", _timed(tstep, torch.cuda.synchronize)))
    except Exception as e:
        rows.append((f"torch ERROR {type(e).__name__}: {str(e)[:100]}", float("nan")))
    print("\nMLP 784-512-10 batch 128, AdamW training step, ms per step")
    for n_, ms in rows:
        print(f"  {n_:<30}{ms:>9.3f}")
    return ok


def _timed(f, sync, n=20):
    f()
    f()
    sync()
    t = time.perf_counter()
    for _ in range(n):
        f()
    sync()
    return (time.perf_counter() - t) / n * 1e3


def fwd_bwd(m, x, y, F=F):
    m.zero_grad()
    loss = F.cross_entropy(m(x), y)
    loss.backward()
    return loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--interpret", action="store_true", help="backend='interpret', small sizes")
    args = ap.parse_args()
    backend = "interpret" if args.interpret else "triton"
    dev = "cuda"
    small = args.interpret
    fails = 0
    print(f"compile(backend={backend!r}) on device={dev!r}")
    for name, fn, ins in cases(dev, small):
        try:
            ref = fn(*ins)
            got = kiln.compile(fn, backend=backend)(*[t.to(dev) for t in ins])
            err = float(np.max(np.abs(got.cpu().numpy() - ref.numpy())))
            ok = err < 1e-4 and got.device.type != "cpu"
            fails += not ok
            print(f"{name:<28}{'PASS' if ok else 'FAIL'}  max abs err {err:.2g}  "
                  f"output on {got.device}")
        except Exception as e:
            fails += 1
            print(f"{name:<28}ERROR {type(e).__name__}: {str(e)[:300]}")
            traceback.print_exc()
    try:
        m, x, y = mlp(dev, small)
        ref_loss = fwd_bwd(m, x, y)
        ref_g = [p.grad.numpy().copy() for p in m.parameters()]
        m.to(dev)
        xd, yd = x.to(dev), y.to(dev)
        cm = kiln.compile(m, backend=backend)
        loss = fwd_bwd(cm, xd, yd)
        err = max(float(np.max(np.abs(p.grad.cpu().numpy() - g)))
                  for p, g in zip(m.parameters(), ref_g))
        err = max(err, abs(float(loss.item()) - float(ref_loss.item())))
        for _ in range(3):      # later calls: cached plan, then replay of the module forward
            again = fwd_bwd(cm, xd, yd)
        err = max(err, abs(float(again.item()) - float(ref_loss.item())))
        ok = err < 1e-4
        fails += not ok
        st = getattr(cm, "_compiled").stats
        print(f"{'MLP forward+backward':<28}{'PASS' if ok else 'FAIL'}  max abs err {err:.2g}  "
              f"(4 calls, {st.get('replays', 0)} replayed)")
        if not small:
            timed = _timed
            rows = [("kiln compiled (triton)", timed(lambda: fwd_bwd(cm, xd, yd),
                                                     kiln.cuda.synchronize)),
                    ("kiln eager (cuda device)", timed(lambda: fwd_bwd(m, xd, yd),
                                                       kiln.cuda.synchronize))]
            try:
                import torch
                torch.manual_seed(0)
                tm = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                         torch.nn.Linear(512, 10)).cuda()
                tx = torch.randn(128, 784, device="cuda")
                ty = torch.randint(0, 10, (128,), device="cuda")
                tF = torch.nn.functional        # (Kiln's F would reject torch tensors)
                rows.append(("torch eager", timed(lambda: fwd_bwd(tm, tx, ty, tF),
                                                  torch.cuda.synchronize)))
                tc = torch.compile(tm)
                rows.append(("torch.compile", timed(lambda: fwd_bwd(tc, tx, ty, tF),
                                                    torch.cuda.synchronize)))
            except Exception as e:
                rows.append((f"torch ERROR {type(e).__name__}: {str(e)[:100]}", float("nan")))
            print("\nMLP 784-512-10 batch 128, forward+backward, ms per step")
            for n_, ms in rows:
                print(f"  {n_:<30}{ms:>9.3f}")
    except Exception as e:
        fails += 1
        print(f"{'MLP forward+backward':<28}ERROR {type(e).__name__}: {str(e)[:300]}")
        traceback.print_exc()
    try:
        fails += not check_train_step(backend, dev, small)
    except Exception as e:
        fails += 1
        print(f"{'AdamW training step':<28}ERROR {type(e).__name__}: {str(e)[:300]}")
        traceback.print_exc()
    print(f"\nSUMMARY: {'PASS' if not fails else f'{fails} FAIL'}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
