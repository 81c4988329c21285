"""Data-parallel scaling: training images/s on 1 vs N ranks, and how much of a step is
communication.

    python bench/ddp_scaling.py                    # 1 and 2 ranks, digits CNN, 64 images/rank
    python bench/ddp_scaling.py --ranks 1 2 4 --batch-size 128 --steps 60

Each configuration is started through mpiexec (runtime.distributed.launcher). Every rank trains
the digits CNN of examples/train_digits.py on random 8x8 images (weak scaling: the per-rank
batch is fixed, the global batch grows with the ranks) and times `steps` steps after a warm-up,
in `rounds` rounds that alternate the modes, keeping each mode's best round:

  images/s        global images per second (the slowest rank's time)
  comm fraction   1 - (step time under ddp.no_sync(), i.e. no communication) / (synced step
                  time): the share of a step that communication adds, overlap included
  tail ms         time per step in DDP's end-of-backward callback (waiting for the last
                  buckets, averaging, writing .grad): the communication left exposed

The 1-rank rows also show plain training without DDP, the baseline DDP's bookkeeping adds to.
On a machine with C cores, N ranks can only scale while N <= C and the ranks do not share
cores with other work; say what else was running when quoting the figures.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def worker(args):
    import numpy as np
    import framework as torch
    import framework.distributed as dist
    import framework.nn.functional as F
    from framework import optim
    from framework.nn.parallel import DistributedDataParallel as DDP
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    from train_digits import DigitsCNN

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(rank)
    xs = [torch.from_numpy(rng.standard_normal((args.batch_size, 1, 8, 8)).astype(np.float32))
          for _ in range(4)]
    ys = [torch.from_numpy(rng.integers(0, 10, args.batch_size)) for _ in range(4)]

    def run(model, steps, ctx=None):
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        dist.barrier()
        t0 = time.perf_counter()
        for s in range(steps):
            opt.zero_grad()
            if ctx is not None:
                with ctx():
                    F.cross_entropy(model(xs[s % 4]), ys[s % 4]).backward()
            else:
                F.cross_entropy(model(xs[s % 4]), ys[s % 4]).backward()
            opt.step()
        t = torch.tensor([time.perf_counter() - t0])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)          # the slowest rank sets the pace
        return t.item()

    torch.manual_seed(0)
    plain = DigitsCNN()
    ddp = DDP(DigitsCNN())
    tail = [0.0]
    fin = ddp._finalize

    def timed_finalize():
        t0 = time.perf_counter()
        fin()
        tail[0] += time.perf_counter() - t0
    ddp._finalize = timed_finalize
    res = {"world": world}
    modes = [("plain", plain, None)] if world == 1 else []
    modes += [("ddp", ddp, None), ("nosync", ddp, ddp.no_sync)]
    for name, model, ctx in modes:
        run(model, args.warmup, ctx)
    # the modes take turns, best round kept: other load on a shared machine comes and goes
    for _ in range(args.rounds):
        for name, model, ctx in modes:
            tail[0] = 0.0
            t = run(model, args.steps, ctx)
            if t < res.get(name, float("inf")):
                res[name] = t
                if name == "ddp":
                    res["tail"] = tail[0]
    if rank == 0:
        print("RESULT " + json.dumps(res), flush=True)
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batch-size", type=int, default=64, help="images per rank and step")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=5, help="timed rounds per mode (best kept)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    from runtime.distributed import launcher
    rows = []
    for n in args.ranks:
        cmd = launcher.command(n, os.path.abspath(__file__),
                               ["--worker", "--batch-size", str(args.batch_size), "--steps",
                                str(args.steps), "--warmup", str(args.warmup), "--rounds",
                                str(args.rounds)])
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                             env=dict(os.environ, PYTHONPATH=ROOT))
        line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
        if out.returncode != 0 or not line:
            sys.exit(f"{n} rank(s) failed:\n{out.stdout}\n{out.stderr}")
        rows.append(json.loads(line[0][7:]))
    base = None
    print(f"digits CNN, {args.batch_size} images per rank and step, best of {args.rounds} "
          f"rounds of {args.steps} steps "
          f"(cpu cores here: {os.cpu_count()})")
    print(f"{'ranks':>5} {'mode':>7} {'images/s':>9} {'speedup':>8} {'step ms':>8} "
          f"{'comm fraction':>14} {'tail ms':>8}")
    for r in rows:
        n = r["world"]
        for mode in ("plain", "ddp", "nosync"):
            if mode not in r:
                continue
            t = r[mode]
            ips = n * args.batch_size * args.steps / t
            if base is None:
                base = ips
            frac = tail = ""
            if mode == "ddp":
                frac = f"{max(0.0, 1 - r['nosync'] / t):.1%}"
                tail = f"{1e3 * r['tail'] / args.steps:.2f}"
            print(f"{n:>5} {mode:>7} {ips:>9.0f} {ips / base:>7.2f}x {1e3 * t / args.steps:>8.2f} "
                  f"{frac:>14} {tail:>8}")


if __name__ == "__main__":
    main()
