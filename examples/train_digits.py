"""Train a small CNN on scikit-learn's bundled 8x8 digits (no download), the PyTorch way.

    python examples/train_digits.py                 # ~97-99% test accuracy
    python examples/train_digits.py --resume        # continue from checkpoints/digits_last.pt
    python examples/train_digits.py --epochs 1 --subset 400   # quick smoke run
    python examples/train_digits.py --compile       # also train with compile(): times, speed-up
    python examples/train_digits.py --device cuda   # on a GPU (generated Triton kernels)

conv -> batch norm -> pool, twice, then dropout and a linear head; AdamW with a one-cycle
schedule; a checkpoint every epoch; a loss/accuracy plot when matplotlib is installed.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import framework as torch  # noqa: E402
from framework import nn, optim  # noqa: E402
import framework.nn.functional as F  # noqa: E402
from framework.utils.data import DataLoader, TensorDataset, random_split  # noqa: E402

try:
    from tqdm import tqdm
except ImportError:      # plain prints instead of a progress bar
    tqdm = None


class DigitsCNN(nn.Module):
    def __init__(self, dropout=0.25):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(2),                                   # 8x8 -> 4x4
            nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),                                   # 4x4 -> 2x2
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x):
        x = self.features(x)
        return self.fc(self.dropout(x.flatten(1)))


def load_data(seed, subset=None):
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]          # (N, 1, 8, 8) in [0, 1]
    x = (x - 0.3) / 0.4                                        # roughly zero mean, unit scale
    ds = TensorDataset(torch.from_numpy(x), torch.from_numpy(d.target.astype(np.int64)))
    n_test = len(ds) // 5
    train, test = random_split(ds, [len(ds) - n_test, n_test],
                               generator=torch.Generator().manual_seed(seed))
    if subset:
        train.indices = train.indices[:subset]
    return train, test


def evaluate(model, loader, device="cpu"):
    model.eval()
    correct = total = 0
    loss = 0.0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            out = model(x)
            loss += F.cross_entropy(out, y).item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
            total += len(y)
    return loss / total, correct / total


def save_plot(history, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ep = [h["epoch"] + 1 for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(ep, [h["train_loss"] for h in history], "o-", label="train")
    a.plot(ep, [h["test_loss"] for h in history], "o-", label="test")
    a.set_xlabel("epoch"), a.set_ylabel("loss"), a.legend()
    b.plot(ep, [100 * h["test_acc"] for h in history], "o-", color="C2")
    b.set_xlabel("epoch"), b.set_ylabel("test accuracy (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--dropout", type=float, default=0.25,
                   help="dropout before the classifier (a device draws its masks from its own "
                        "Philox stream, so only --dropout 0 runs match the cpu exactly)")
    p.add_argument("--subset", type=int, default=None, help="use only this many training samples")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu",
                   help="cpu, cuda (a GPU: generated Triton kernels) or interpret (the same "
                        "kernels through Triton's interpreter, no GPU needed)")
    p.add_argument("--checkpoint-dir", default="checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop after this many epochs (simulates an interrupted run)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--compile", action="store_true",
                   help="after the eager run, train again from the same seed with the training "
                        "step compiled; print both epoch times, the speed-up and the fused groups")
    args = p.parse_args(argv)
    history = train(args, compiled=False)
    if args.compile and history:
        chist = train(args, compiled=True)
        te = sum(h["seconds"] for h in history) / len(history)
        tc = sum(h["seconds"] for h in chist) / len(chist)
        print(f"epoch time: eager {te:.2f}s, compiled {tc:.2f}s, speed-up {te / tc:.2f}x; "
              f"final test accuracy eager {100 * history[-1]['test_acc']:.2f}% / compiled "
              f"{100 * chist[-1]['test_acc']:.2f}%")
    return history


def train(args, compiled):

    torch.manual_seed(args.seed)
    train, test = load_data(args.seed, args.subset)
    train_loader = DataLoader(train, batch_size=args.batch_size, shuffle=True,
                              num_workers=args.workers, drop_last=len(train) > args.batch_size)
    test_loader = DataLoader(test, batch_size=256)
    device = torch.device(args.device)
    model = DigitsCNN(args.dropout).to(device)
    opt = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                          steps_per_epoch=len(train_loader))
    os.makedirs(args.checkpoint_dir, exist_ok=True)
    ckpt_path = os.path.join(args.checkpoint_dir,
                             "digits_compiled_last.pt" if compiled else "digits_last.pt")
    history, start = [], 0

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    if compiled:     # forward, backward and the AdamW update as one compiled graph
        step = torch.compile(step)
        print("--compile: training again from the same seed with the step compiled")
    if args.resume:
        if not os.path.exists(ckpt_path):
            sys.exit(f"--resume: no checkpoint at {ckpt_path}")
        ck = torch.load(ckpt_path, map_location="cpu")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        torch.set_rng_state(ck["rng_state"])
        history, start = ck["history"], ck["epoch"] + 1
        print(f"resumed from {ckpt_path} after epoch {start}")

    print(f"digits: {len(train)} train / {len(test)} test samples, "
          f"{sum(p.numel() for p in model.parameters())} parameters, device {device}")
    t_all = time.perf_counter()
    stop = args.epochs if args.stop_after is None else min(args.epochs, args.stop_after)
    for epoch in range(start, stop):
        model.train()
        t0 = time.perf_counter()
        total, n = 0.0, 0
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{args.epochs}", leave=False,
                   disable=args.quiet) if tqdm is not None else train_loader
        for x, y in bar:
            x, y = x.to(device), y.to(device)
            loss = step(x, y)
            sched.step()
            total += loss.item() * len(y)
            n += len(y)
            if tqdm is not None:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        test_loss, test_acc = evaluate(model, test_loader, device)
        dt_ = time.perf_counter() - t0
        history.append(dict(epoch=epoch, train_loss=total / n, test_loss=test_loss,
                            test_acc=test_acc, seconds=dt_))
        print(f"epoch {epoch + 1:2d}: train loss {total / n:.4f}  test loss {test_loss:.4f}  "
              f"test acc {100 * test_acc:.2f}%  ({dt_:.1f}s)", flush=True)
        torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "rng_state": torch.get_rng_state(),
                    "history": history}, ckpt_path)
    if compiled:
        progs = step.programs()
        groups = sum(len(getattr(getattr(pr, "partition", None), "groups", ())) for pr in progs)
        print(f"compiled step: {step.stats['compiles']} compiles, "
              f"{len(step.stats['graph_breaks'])} graph breaks, {len(progs)} programs, "
              f"{groups} fused groups, {step.stats['replays']} of {step.stats['calls']} calls "
              f"replayed without running Python")
    if history:
        print(f"test accuracy: {100 * history[-1]['test_acc']:.2f}% "
              f"(training took {time.perf_counter() - t_all:.1f}s)")
        if not args.no_plot and not compiled:
            png = save_plot(history, os.path.join(args.checkpoint_dir, "digits_curves.png"))
            if png:
                print(f"plot saved to {png}")
    return history


if __name__ == "__main__":
    main()
