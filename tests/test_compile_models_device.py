"""compile() on DigitsCNN and Encoder equals eager over three SGD steps, on the default device.

test_compile_models.py checks these models over five Adam steps, which is exact only when
compiled and eager sum in the same order (cpu: both NumPy): a conv bias before BatchNorm and
the attention key bias have gradients that are zero in exact arithmetic, and Adam turns their
rounding noise into +-lr steps. The interpret run (tests/_interp_suite.py) compares eager
Triton kernels with compiled fused Triton kernels, so it checks these two models here, with
SGD (an update proportional to the gradient), per step: outputs, gradients and parameters.
"""
import numpy as np
import pytest

import framework as torch
import framework.nn.functional as F
from framework import optim

from test_compile_models import DigitsCNN, Encoder, _inputs, _make, TOL


@pytest.mark.parametrize("cls", [DigitsCNN, Encoder], ids=lambda c: c.__name__)
def test_compiled_sgd_steps_equal_eager(cls):
    m1, m2 = _make(cls), _make(cls)
    cm = torch.compile(m2)
    o1 = optim.SGD(m1.parameters(), lr=0.05, momentum=0.9)
    o2 = optim.SGD(m2.parameters(), lr=0.05, momentum=0.9)
    for step in range(3):       # compile, first replay, a replay that reads the momentum
        x, y = _inputs(cls.__name__, step)
        torch.manual_seed(100 + step)          # the same dropout masks
        out1 = m1(x)
        torch.manual_seed(100 + step)
        out2 = cm(x)
        assert out2.device == x.device
        np.testing.assert_allclose(out2.detach().cpu().numpy(), out1.detach().cpu().numpy(), **TOL)
        o1.zero_grad()
        o2.zero_grad()
        F.cross_entropy(out1, y).backward()
        F.cross_entropy(out2, y).backward()
        for (k, p1), p2 in zip(m1.named_parameters(), m2.parameters()):
            assert p2.grad.device == x.device
            np.testing.assert_allclose(p2.grad.cpu().numpy(), p1.grad.cpu().numpy(), err_msg=k,
                                       **TOL)
        o1.step()
        o2.step()
        for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
            np.testing.assert_allclose(b.cpu().numpy(), a.cpu().numpy(), err_msg=f"{step} {k}",
                                       **TOL)
    assert cm._compiled.stats["compiles"] == 1 and cm._compiled.stats["eager_calls"] == 0
