"""A tour of compile(): a function, a module, and a whole training step, with KILN_LOGS output.

    python examples/compile_tour.py

Logs go to stderr as they happen (the same as running with
KILN_LOGS=graphs,fusion,recompiles,graph_breaks).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import framework as torch  # noqa: E402
from framework import nn, optim  # noqa: E402
import framework.nn.functional as F  # noqa: E402
from framework._compile import log  # noqa: E402


def section(title):
    print(f"\n=== {title} ===", flush=True)


def main():
    log.enable("graphs", "fusion", "recompiles", "graph_breaks")
    torch.manual_seed(0)

    section("1. a function")

    @torch.compile
    def gelu_mix(x, y):
        return F.gelu(x) * y.sigmoid() + x.mean(-1, keepdim=True)

    x, y = torch.randn(4, 8), torch.randn(4, 8)
    out = gelu_mix(x, y)
    ref = F.gelu(x) * y.sigmoid() + x.mean(-1, keepdim=True)
    print("max |compiled - eager| =", (out - ref).abs().max().item())
    gelu_mix(torch.randn(4, 8), y)               # new values: no recompile
    gelu_mix(torch.randn(6, 8), torch.randn(6, 8))  # new shape: recompile, logged
    print("compiles:", gelu_mix.stats["compiles"], "recompile reasons:",
          gelu_mix.recompile_reasons())

    section("2. a module (graph break in a data-dependent loop)")

    class Halve(nn.Module):
        def forward(self, X):
            while X.abs().sum() > 1:
                X = X / 2
            return X

    halve = torch.compile(Halve())
    X = torch.randn(3, 3) * 4
    print("result sum |X| =", halve(X).abs().sum().item())
    print("graph breaks:", halve._compiled.graph_break_reasons()[:1], "...")

    section("3. a whole training step: forward, loss, backward, AdamW update")
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    xb, yb = torch.randn(32, 16), torch.randint(0, 4, (32,))

    @torch.compile
    def train_step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    log.disable("graphs")                        # the step's graph is long; show it once below
    for i in range(5):
        print(f"step {i}: loss {train_step(xb, yb).item():.4f}")
    st = train_step.stats
    # calls 1-3 trace (call 1 also creates AdamW's state); calls 4-5 replay the program
    # without running the Python (stats['replays'])
    print(f"compiles {st['compiles']}, graph breaks {len(st['graph_breaks'])}, "
          f"replays {st['replays']}, regions run {train_step.run_counts()}")
    g = train_step.graphs()[0]
    print(f"the step is one graph of {len(g.nodes)} ops; its first lines:")
    print("\n".join(str(g).splitlines()[:6]))
    print(f"fused groups (Program.partition): {train_step.n_groups()}")


if __name__ == "__main__":
    main()
