"""torch.distributions (Normal, Uniform, Bernoulli, Categorical): PyTorch 2.13's samples after
manual_seed (the cpu generator is PyTorch's), its log_prob/entropy values, validation errors
and gradients through log_prob (a policy-gradient loss)."""
import math

import numpy as np
import pytest

import framework as torch
from conftest import to_np

D = torch.distributions


def test_seeded_samples_equal_pytorch():
    torch.manual_seed(0)
    assert D.Normal(torch.tensor([0., 1.]), torch.tensor([1., 2.])).sample((2,)).tolist() == \
        [[1.5409960746765137, 0.41314220428466797], [-2.1787893772125244, 2.1368625164031982]]
    torch.manual_seed(0)
    assert D.Uniform(0., 2.).rsample((3,)).tolist() == \
        [0.9925131797790527, 1.5364435911178589, 0.17695486545562744]
    torch.manual_seed(0)
    assert D.Bernoulli(torch.tensor([0.2, 0.7, 0.5])).sample((2,)).tolist() == \
        [[0, 0, 1], [1, 1, 0]]
    c = D.Categorical(torch.tensor([[0.1, 0.6, 0.3]] * 2))
    s = c.sample((5,))
    assert tuple(s.shape) == (5, 2) and s.dtype is torch.int64 and 0 <= int(s.min()) <= 2


def test_densities():
    n = D.Normal(0., 2.)
    assert abs(n.log_prob(torch.tensor(1.)).item() - (-1.7370857000350952)) < 1e-6
    assert abs(n.entropy().item() - (0.5 + 0.5 * math.log(2 * math.pi) + math.log(2))) < 1e-6
    np.testing.assert_allclose(to_np(n.cdf(torch.tensor([0.0, 2.0]))), [0.5, 0.8413447],
                               rtol=1e-6)
    c = D.Categorical(torch.tensor([0.1, 0.6, 0.3]))
    assert abs(c.log_prob(torch.tensor(1)).item() - math.log(0.6)) < 1e-6
    assert abs(c.entropy().item() - 0.897945761680603) < 1e-6
    assert D.Categorical(logits=torch.tensor([[1., 2.], [0., 0.]])).batch_shape == (2,)
    b = D.Bernoulli(logits=torch.tensor([0.0]))
    assert abs(b.log_prob(torch.tensor([1.0])).item() - math.log(0.5)) < 1e-6
    u = D.Uniform(torch.tensor([0., -1.]), torch.tensor([1., 3.]))
    np.testing.assert_allclose(to_np(u.log_prob(torch.tensor([0.5, 0.0]))),
                               [0.0, -math.log(4)], rtol=1e-6)
    assert repr(D.Normal(0., 1.)) == "Normal(loc: 0.0, scale: 1.0)"


def test_validation_errors():
    with pytest.raises(ValueError, match=r"Expected parameter scale .* to satisfy the constraint "
                                         r"GreaterThan\(lower_bound=0.0\)"):
        D.Normal(0., -1.)
    with pytest.raises(ValueError, match=r"to be within the support \(Interval\(lower_bound=0.0, "
                                         r"upper_bound=2.0\)\)"):
        D.Uniform(0., 2.).log_prob(torch.tensor([3.0]))
    with pytest.raises(ValueError, match=r"IntegerInterval\(lower_bound=0, upper_bound=2\)"):
        D.Categorical(torch.tensor([0.1, 0.6, 0.3])).log_prob(torch.tensor(3))
    with pytest.raises(ValueError, match="Either `probs` or `logits` must be specified"):
        D.Bernoulli()
    assert D.Uniform(0., 2., validate_args=False).log_prob(torch.tensor([3.0])).item() == \
        -math.inf


def test_policy_gradient():
    logits = torch.tensor([0.5, -0.2, 0.1], requires_grad=True)
    m = D.Categorical(logits=logits)
    loss = -(m.log_prob(torch.tensor(2)) * 3.0) - 0.01 * m.entropy()
    loss.backward()
    np.testing.assert_allclose(to_np(logits.grad), [1.3858, 0.6866, -2.0723], atol=1e-4)
    mu = torch.tensor(0.3, requires_grad=True)
    D.Normal(mu, 1.0).rsample((4,)).sum().backward()         # reparameterised: d/dmu = 4
    assert mu.grad.item() == 4.0


@pytest.mark.parametrize("name", ["normal", "uniform", "bernoulli", "categorical_lp"])
def test_against_pytorch(name):
    real = pytest.importorskip("torch", reason="an optional cross-check against PyTorch itself")
    cases = {
        "normal": lambda L: L.distributions.Normal(L.tensor([0., 1.]), L.tensor([1., 2.]))
        .rsample((7,)),
        "uniform": lambda L: L.distributions.Uniform(L.tensor([0., -1.]), L.tensor([1., 3.]))
        .rsample((4,)),
        "bernoulli": lambda L: L.distributions.Bernoulli(L.tensor([0.2, 0.7, 0.5])).sample((4,)),
        "categorical_lp": lambda L: L.distributions.Categorical(
            L.tensor([[0.1, 0.6, 0.3], [0.5, 0.25, 0.25]])).log_prob(L.tensor([1, 2])),
    }
    real.manual_seed(0)
    want = cases[name](real).numpy()
    torch.manual_seed(0)
    np.testing.assert_allclose(to_np(cases[name](torch)), want, rtol=1e-6)


def test_validation_runs_under_vmap():
    # Distribution validation checks every sample at once (torch._is_all_true) instead of
    # refusing bool() of a batched tensor
    import framework.distributions as D
    loc = torch.tensor([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]])
    lp = torch.vmap(lambda m: D.Normal(m, 2.0).log_prob(torch.zeros(2)).sum())(loc)
    ln = loc.numpy()
    want = (-(ln ** 2) / 8 - np.log(2.0) - 0.5 * np.log(2 * np.pi)).sum(1)
    np.testing.assert_allclose(lp.numpy(), want, rtol=1e-6)
    lp = torch.vmap(lambda m: D.MultivariateNormal(m, torch.eye(2)).log_prob(torch.zeros(2)))(loc)
    np.testing.assert_allclose(lp.numpy(), -(ln ** 2).sum(1) / 2 - np.log(2 * np.pi), rtol=1e-6)
    # a bad sample anywhere in the batch: torch's ValueError, whose message prints the batched
    # tensor (a 0-dim one is formatted with .item(), which vmap refuses, as in torch)
    with pytest.raises(ValueError, match=r"scale(.|\n)*BatchedTensor\(lvl=1, bdim=0"):
        torch.vmap(lambda s: D.Normal(torch.zeros(2), s).mean)(torch.tensor([[1.0, 2.0],
                                                                             [-1.0, 2.0]]))
    with pytest.raises(RuntimeError, match="item"):
        torch.vmap(lambda s: D.Normal(0.0, s).mean)(torch.tensor([1.0, -1.0]))
    assert bool(torch._is_all_true(torch.tensor([True, True])))
    assert not bool(torch._is_all_true(torch.tensor([True, False])))
    with pytest.raises(RuntimeError):
        torch._is_all_true(torch.ones(2))
