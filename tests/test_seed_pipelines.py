"""End-to-end acceptance tests 8 and 10 of ../shared/seeds/catalog-001-004.md section 13, written
as a PyTorch user would write them after `import framework as torch`."""
import numpy as np

import framework as torch
from framework import nn, optim
import framework.nn.functional as F


def test_logistic_regression_end_to_end():
    """[002] LR(nn.Module) with Linear(2,1)+Sigmoid, BCELoss, SGD(momentum=0.9), data from
    torch.normal(+-1.5, 1) + 1 joined with torch.cat; accuracy > 0.95 within 1000 iterations."""
    torch.manual_seed(0)
    n_data = torch.ones(100, 2)
    x0 = torch.normal(2 * n_data, 1)
    y0 = torch.zeros(100)
    x1 = torch.normal(-2 * n_data, 1)
    y1 = torch.ones(100)
    train_x = torch.cat((x0, x1), 0).type(torch.FloatTensor)
    train_y = torch.cat((y0, y1), 0).type(torch.FloatTensor)

    class LR(nn.Module):
        def __init__(self):
            super().__init__()
            self.lr = nn.Linear(2, 1)
            self.sm = nn.Sigmoid()

        def forward(self, x):
            return self.sm(self.lr(x))

    lr_net = LR()
    loss_fn = nn.BCELoss()
    optimizer = optim.SGD(lr_net.parameters(), lr=0.01, momentum=0.9)
    acc = 0.0
    for iteration in range(1000):
        y_pred = lr_net(train_x)
        loss = loss_fn(y_pred.squeeze(), train_y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        mask = y_pred.ge(0.5).float().squeeze()
        acc = (mask == train_y).sum().item() / train_y.size(0)
        if acc > 0.95:
            break
    assert acc > 0.95, acc
    assert isinstance(loss.item(), float) and loss.item() < 0.7


def test_full_training_pipeline():
    """[001] Conv2d(padding='same'), BatchNorm1d, Dropout, ReLU, CrossEntropyLoss, param groups
    (bias without weight decay), gradient accumulation, ExponentialLR history, ReduceLROnPlateau,
    train/eval with no_grad, hooks, .to(device) returning the same module, compile(model) equal
    to eager, DataParallel equal to the module on one device."""
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding="same")
            self.fc1 = nn.Linear(4 * 8 * 8, 16)
            self.bn = nn.BatchNorm1d(num_features=16)
            self.drop = nn.Dropout(p=0.5)
            self.fc2 = nn.Linear(16, 3)

        def forward(self, x):
            x = F.relu(self.conv(x))
            x = self.drop(F.relu(self.bn(self.fc1(x.flatten(1)))))
            return self.fc2(x)

    model = Net()
    assert model.to("cpu") is model
    x = torch.randn(20, 1, 8, 8)
    y = torch.randint(0, 3, (20,))
    seen = []
    h1 = model.fc2.register_forward_hook(lambda m, i, o: seen.append(("fwd", tuple(o.shape))))
    h2 = model.fc2.register_full_backward_hook(lambda m, gi, go: seen.append(("bwd",
                                                                              tuple(go[0].shape))))
    decay = [p for n, p in model.named_parameters() if not n.endswith("bias")]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias")]
    opt = optim.SGD([{"params": decay, "weight_decay": 1e-4},
                     {"params": no_decay, "weight_decay": 0.0}], lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.96)
    plateau = optim.lr_scheduler.ReduceLROnPlateau(optim.SGD(model.parameters(), lr=0.1),
                                                   mode="min", factor=0.5, patience=5)
    loss_fn = nn.CrossEntropyLoss()
    accumulation_steps = 5
    lr_history, losses = [], []
    model.train()
    for epoch in range(4):
        opt.zero_grad()
        for i in range(accumulation_steps):
            xb, yb = x[i * 4:(i + 1) * 4], y[i * 4:(i + 1) * 4]
            loss = loss_fn(model(xb), yb) / accumulation_steps
            loss.backward()
        opt.step()
        sched.step()
        lr_history.append(opt.param_groups[0]["lr"])
        with torch.no_grad():
            losses.append(loss_fn(model(x), y).item())
        plateau.step(losses[-1])
    np.testing.assert_allclose(lr_history, [0.1 * 0.96 ** (i + 1) for i in range(4)], rtol=1e-12)
    assert ("fwd", (4, 3)) in seen and ("bwd", (4, 3)) in seen
    h1.remove()
    h2.remove()
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)              # dropout off: deterministic
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        fast = torch.compile(model)
        np.testing.assert_allclose(fast(x).numpy(), a.numpy(), rtol=1e-5, atol=1e-6)
        dp = nn.DataParallel(model)
        np.testing.assert_allclose(dp(x).numpy(), a.numpy(), rtol=1e-6, atol=1e-7)
