"""The digits CNN of train_digits.py, trained data-parallel with DDP and DistributedSampler.

    kiln run -n 2 examples/ddp_digits.py                  # 2 ranks through mpiexec
    mpiexec -n 2 python examples/ddp_digits.py --epochs 3 # the same without kiln
    python examples/ddp_digits.py                         # a world of one

Each rank trains on its shard of the data (DistributedSampler, reshuffled every epoch with
set_epoch); DDP averages gradients, so the ranks keep identical weights. The per-rank batch is
--batch-size, the global batch is world_size times that. Rank 0 alone evaluates, prints and
saves the checkpoint (the plain module's state_dict, loadable by train_digits.py's model).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import framework as torch  # noqa: E402
import framework.distributed as dist  # noqa: E402
from framework import optim  # noqa: E402
import framework.nn.functional as F  # noqa: E402
from framework.nn.parallel import DistributedDataParallel as DDP  # noqa: E402
from framework.utils.data import DataLoader, DistributedSampler  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_digits import DigitsCNN, load_data, evaluate  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32, help="per rank")
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--subset", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-dir", default="checkpoints")
    args = p.parse_args(argv)

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(args.seed + rank)     # DDP broadcasts rank 0's initial weights anyway
    train, test = load_data(args.seed, args.subset)
    sampler = DistributedSampler(train, shuffle=True, seed=args.seed, drop_last=True)
    loader = DataLoader(train, batch_size=args.batch_size, sampler=sampler, drop_last=True)
    model = DDP(DigitsCNN())
    opt = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                          steps_per_epoch=len(loader))
    if rank == 0:
        print(f"digits on {world} rank(s): {len(train)} train samples, {len(sampler)} per rank, "
              f"global batch {world * args.batch_size}", flush=True)
        os.makedirs(args.checkpoint_dir, exist_ok=True)
    ckpt = os.path.join(args.checkpoint_dir, "ddp_digits.pt")
    t_all = time.perf_counter()
    acc = None
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        model.train()
        loss_sum = torch.zeros(2)           # (sum of losses, samples) on this rank
        for x, y in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()                 # gradients all-reduced in buckets during backward
            opt.step()
            sched.step()
            loss_sum += torch.tensor([loss.item() * len(y), len(y)])
        dist.all_reduce(loss_sum)           # the epoch's mean loss over every rank
        if rank == 0:
            test_loss, acc = evaluate(model.module, DataLoader(test, batch_size=256))
            print(f"epoch {epoch + 1:2d}: train loss {(loss_sum[0] / loss_sum[1]).item():.4f}  "
                  f"test loss {test_loss:.4f}  test acc {100 * acc:.2f}%", flush=True)
            torch.save({"epoch": epoch, "model": model.module.state_dict(),
                        "optimizer": opt.state_dict()}, ckpt)
    dist.barrier()                          # the checkpoint is complete before anyone exits
    if rank == 0:
        print(f"test accuracy: {100 * acc:.2f}% ({time.perf_counter() - t_all:.1f}s); "
              f"checkpoint {ckpt}")
    dist.destroy_process_group()
    return acc


if __name__ == "__main__":
    main()
