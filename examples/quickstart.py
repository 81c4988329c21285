"""Kiln in a few seconds: tensors, autograd, and a tiny model trained with an optimizer.
Written exactly as PyTorch code; only the import differs."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import framework as torch  # noqa: E402
from framework import nn, optim  # noqa: E402
from framework.utils.data import DataLoader, TensorDataset  # noqa: E402

torch.manual_seed(0)

# tensors
x = torch.arange(6, dtype=torch.float32).reshape(2, 3)
print("x =", x)
print("x.sum(dim=1) =", x.sum(dim=1), " x @ x.T =", x @ x.T)

# autograd: d/dw of sum((w * x)^2) = 2 * w * x^2
w = torch.ones(3, requires_grad=True)
y = ((w * x) ** 2).sum()
y.backward()
print("y =", y, " dy/dw =", w.grad)

# a tiny regression model: learn y = 3*x0 - 2*x1 + 1 with SGD + momentum and a scheduler
X = torch.randn(256, 2)
Y = (3 * X[:, 0] - 2 * X[:, 1] + 1).unsqueeze(1) + 0.01 * torch.randn(256, 1)
model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
sched = optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
loader = DataLoader(TensorDataset(X, Y), batch_size=32, shuffle=True)
for epoch in range(30):
    for xb, yb in loader:
        opt.zero_grad()
        loss = ((model(xb) - yb) ** 2).mean()
        loss.backward()
        opt.step()
    sched.step()
    if epoch % 10 == 9:
        with torch.no_grad():
            full = ((model(X) - Y) ** 2).mean()
        print(f"epoch {epoch + 1}: mse {full.item():.5f}  lr {sched.get_last_lr()[0]:g}")
print("model:", model)
print("prediction at (1, 1):", model(torch.tensor([[1.0, 1.0]])).item(), "(target 2.0)")
