"""The rest of torch.distributions (PyTorch 2.13): ContinuousBernoulli, FisherSnedecor,
HalfCauchy, InverseGamma, Kumaraswamy, LKJCholesky, LogisticNormal, LowRankMultivariateNormal,
MixtureSameFamily, NegativeBinomial, RelaxedBernoulli, RelaxedOneHotCategorical, VonMises,
Wishart, GeneralizedPareto, ExponentialFamily, the new transforms and biject_to /
transform_to. References: scipy.stats / NumPy in float64, or values printed by PyTorch 2.13
(seeded samples, KLs)."""
import math
import warnings

import numpy as np
import pytest
import scipy.stats as st

import framework as torch
from framework.distributions import (
    Beta, Categorical, ContinuousBernoulli, Exponential, ExponentialFamily, FisherSnedecor,
    Gamma, GeneralizedPareto, HalfCauchy, InverseGamma, Kumaraswamy, LKJCholesky,
    LogisticNormal, LowRankMultivariateNormal, MixtureSameFamily, MultivariateNormal,
    NegativeBinomial, Normal, Bernoulli, RelaxedBernoulli, RelaxedOneHotCategorical, Uniform,
    VonMises, Wishart, biject_to, constraints, kl_divergence, transform_to, transforms as T)

t = torch.tensor


def npy(x):
    return np.asarray(x.detach().numpy(), np.float64)


def close(a, b, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(npy(a) if isinstance(a, torch.Tensor) else a, b, rtol=rtol,
                               atol=atol)


# ---- seeded samples equal PyTorch's (values printed by torch 2.13, manual_seed(7)) ---------

def _wishart():
    return Wishart(t(4.), covariance_matrix=t([[2., 0.5], [0.5, 1.]]))


SAMPLES = [
    ("cb", lambda: ContinuousBernoulli(t([0.2, 0.8])), (3,),
     [0.3699171841144562, 0.33741551637649536, 0.49197837710380554, 0.7853943705558777,
      0.1383921504020691, 0.5929917693138123]),
    ("fs", lambda: FisherSnedecor(t([3., 5.]), t([6., 2.])), (3,),
     [0.7007890343666077, 1.6045771837234497, 0.9179087281227112, 0.5191507339477539,
      0.3915288746356964, 1.2617145776748657]),
    ("hc", lambda: HalfCauchy(t([1., 2.])), (3,),
     [0.83055579662323, 1.7224061489105225, 2.1618921756744385, 1.0725666284561157,
      4.027331829071045, 3.6257104873657227]),
    ("ig", lambda: InverseGamma(t([3., 1.5]), t([2., 1.])), (3,),
     [0.8216716051101685, 0.44673532247543335, 0.3081537187099457, 2.2599940299987793,
      0.689958393573761, 0.7567912340164185]),
    ("ku", lambda: Kumaraswamy(t([2., 0.5]), t([3., 4.])), (3,),
     [0.4338606297969818, 0.1103982999920845, 0.3601222336292267, 0.00994589738547802,
      0.6203749179840088, 0.03707745671272278]),
    ("lkj", lambda: LKJCholesky(3, t(2.)), (1,),
     [1.0, 0.0, 0.0, 0.06820864975452423, 0.9976710677146912, 0.0, 0.5999835729598999,
      -0.309553325176239, 0.7376967668533325]),
    ("ln", lambda: LogisticNormal(t([0.1, -0.3]), t([1., 0.5])), (3,),
     [0.3230167627334595, 0.3542320728302002, 0.32275116443634033, 0.5875083208084106,
      0.12289386987686157, 0.2895978093147278, 0.7498182058334351, 0.08040469139814377,
      0.16977711021900177]),
    ("lr", lambda: LowRankMultivariateNormal(t([1., 2.]), t([[1., 0.5], [0.2, -0.3]]),
                                             t([0.5, 1.])), (3,),
     [0.9948107004165649, 2.96718430519104, 1.4873524904251099, 0.8414690494537354,
      2.4680087566375732, 2.7394134998321533]),
    ("nb", lambda: NegativeBinomial(t([3., 5.]), t([0.3, 0.6])), (3,),
     [0.0, 3.0, 5.0, 8.0, 2.0, 0.0]),
    ("rb", lambda: RelaxedBernoulli(t(0.5), t([0.3, 0.6])), (3,),
     [0.19548439979553223, 0.12167619168758392, 0.4073263704776764, 0.8918582201004028,
      0.016623714938759804, 0.5515341758728027]),
    ("ro", lambda: RelaxedOneHotCategorical(t(0.7), t([0.2, 0.3, 0.5])), (2,),
     [0.12381640821695328, 0.05699111893773079, 0.8191924691200256, 0.3783690333366394,
      0.11423054337501526, 0.5074004530906677]),
    ("vm", lambda: VonMises(t([0.5, -1.]), t([0.5, 8.])), (3,),
     [1.3273389339447021, -0.8203878998756409, 1.0501619577407837, -1.2355862855911255,
      1.3777602910995483, -0.7722588777542114]),
    ("wi", _wishart, (1,),
     [3.0311954021453857, -0.27122217416763306, -0.27122217416763306, 0.30144602060317993]),
    ("gp", lambda: GeneralizedPareto(t([0., 1.]), t([1., 2.]), t([0.3, -0.2])), (3,),
     [0.8605965971946716, 1.4336152076721191, 1.2706458568572998, 2.926039934158325,
      0.27577269077301025, 2.047913074493408]),
]


@pytest.mark.parametrize("name,make,shape,expected", SAMPLES, ids=[s[0] for s in SAMPLES])
def test_seeded_samples_equal_torch(name, make, shape, expected):
    d = make()
    torch.manual_seed(7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = d.sample(shape)
    assert tuple(x.shape) == tuple(shape) + tuple(d.batch_shape) + tuple(d.event_shape)
    close(x.reshape(-1), expected, rtol=2e-6, atol=2e-6)


def test_wishart_warns_as_torch_and_redraws():
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="Singular sample detected"):
        x = Wishart(t(4.), covariance_matrix=torch.eye(2)).rsample()
    close(x, [[0.8693, 0.9903], [0.9903, 2.1458]], rtol=1e-4, atol=1e-4)


# ---- densities, moments, entropies against scipy ---------------------------------------------

def test_fisher_snedecor_vs_scipy():
    d1, d2 = np.array([3., 5., 1.5]), np.array([6., 2., 9.])
    d = FisherSnedecor(t(d1, dtype=torch.float64), t(d2, dtype=torch.float64))
    x = np.array([0.5, 1.2, 2.])
    close(d.log_prob(t(x, dtype=torch.float64)), st.f.logpdf(x, d1, d2), rtol=1e-10)
    close(d.mean, [st.f.mean(3., 6.), math.nan, st.f.mean(1.5, 9.)], rtol=1e-10)
    close(d.variance[0], st.f.var(3., 6.), rtol=1e-10)
    assert math.isnan(float(d.variance[1])) and math.isnan(float(d.mode[2]))


def test_half_cauchy_inverse_gamma_vs_scipy():
    x = np.array([0.5, 3.])
    h = HalfCauchy(t([1., 2.], dtype=torch.float64))
    close(h.log_prob(t(x, dtype=torch.float64)), st.halfcauchy.logpdf(x, scale=[1., 2.]))
    close(h.cdf(t(x, dtype=torch.float64)), st.halfcauchy.cdf(x, scale=[1., 2.]))
    close(h.icdf(t([0.3, 0.7], dtype=torch.float64)), st.halfcauchy.ppf([0.3, 0.7], scale=[1, 2]))
    close(h.entropy(), st.halfcauchy.entropy(scale=[1., 2.]))
    a, b = np.array([3., 1.5]), np.array([2., 1.])
    g = InverseGamma(t(a, dtype=torch.float64), t(b, dtype=torch.float64))
    close(g.log_prob(t(x, dtype=torch.float64)), st.invgamma.logpdf(x, a, scale=b))
    close(g.entropy(), st.invgamma.entropy(a, scale=b))
    close(g.mean, [1., 2.])
    close(g.variance, [1., math.inf])
    close(InverseGamma(t([0.5]), t([1.])).mean, [math.inf])
    close(g.mode, b / (a + 1))


def test_kumaraswamy_vs_numpy():
    a, b = np.array([2., 0.5]), np.array([3., 4.])
    d = Kumaraswamy(t(a, dtype=torch.float64), t(b, dtype=torch.float64))
    x = np.array([0.3, 0.6])
    ref = np.log(a * b) + (a - 1) * np.log(x) + (b - 1) * np.log1p(-x ** a)
    close(d.log_prob(t(x, dtype=torch.float64)), ref, rtol=1e-10)
    grid = np.linspace(1e-6, 1 - 1e-6, 200001)
    pdf = np.exp(np.log(a[0] * b[0]) + (a[0] - 1) * np.log(grid) +
                 (b[0] - 1) * np.log1p(-grid ** a[0]))
    m1 = np.trapezoid(grid * pdf, grid)
    close(d.mean[0], m1, rtol=1e-6)
    close(d.variance[0], np.trapezoid(grid ** 2 * pdf, grid) - m1 ** 2, rtol=1e-5)
    close(d.entropy()[0], -np.trapezoid(pdf * np.log(pdf), grid), rtol=1e-5)
    assert np.isnan(npy(d.mode)).all()            # PyTorch 2.13's expression


def test_continuous_bernoulli_density_moments_entropy():
    lam = np.array([0.2, 0.4995, 0.8])
    d = ContinuousBernoulli(t(lam, dtype=torch.float64))
    grid = np.linspace(0, 1, 100001)
    lp = npy(d.log_prob(t(np.broadcast_to(grid[:, None], (grid.size, 3)).copy(),
                          dtype=torch.float64)))
    pdf = np.exp(lp)
    close(np.trapezoid(pdf, grid, axis=0), [1., 1., 1.], rtol=1e-8)
    close(d.mean, np.trapezoid(grid[:, None] * pdf, grid, axis=0), rtol=1e-7)
    close(d.variance, np.trapezoid(grid[:, None] ** 2 * pdf, grid, axis=0) - npy(d.mean) ** 2,
          rtol=1e-6)
    close(d.entropy(), -np.trapezoid(pdf * lp, grid, axis=0), atol=1e-7)
    # the entropy PyTorch prints in float32, and the Bregman form agrees with the closed one
    close(ContinuousBernoulli(t([0.2, 0.4995, 0.8])).entropy(),
          [-0.07641448080539703, -2.384185791015625e-07, -0.07641422748565674], atol=1e-6)
    close(ExponentialFamily.entropy(d), d.entropy(), atol=1e-6)
    u = t([0.1, 0.5, 0.9], dtype=torch.float64)
    close(d.cdf(d.icdf(u)), u, atol=1e-9)


def test_lowrank_mvn_vs_scipy_and_dense():
    W = np.array([[1., 0.5], [0.2, -0.3], [0., 1.]])
    D = np.array([0.5, 1., 2.])
    mu = np.array([1., 2., 3.])
    cov = W @ W.T + np.diag(D)
    d = LowRankMultivariateNormal(*(t(v, dtype=torch.float64) for v in (mu, W, D)))
    x = np.array([[0.5, 1.5, 2.], [1., 0., 4.]])
    close(d.log_prob(t(x, dtype=torch.float64)), st.multivariate_normal(mu, cov).logpdf(x),
          rtol=1e-10)
    close(d.entropy(), st.multivariate_normal(mu, cov).entropy(), rtol=1e-10)
    close(d.covariance_matrix, cov, rtol=1e-10)
    close(d.precision_matrix, np.linalg.inv(cov), rtol=1e-9)
    close(d.scale_tril @ d.scale_tril.mT, cov, rtol=1e-10)
    close(d.variance, np.diag(cov), rtol=1e-12)
    assert d.expand((4,)).log_prob(t(x[0], dtype=torch.float64)).shape == (4,)


def test_negative_binomial_vs_scipy():
    n, p = np.array([3., 5.]), np.array([0.3, 0.6])
    d = NegativeBinomial(t(n, dtype=torch.float64), t(p, dtype=torch.float64))
    k = np.array([[0., 2.], [7., 11.]])
    # PyTorch's probs is the probability of the counted event: scipy's nbinom(n, 1 - p)
    close(d.log_prob(t(k, dtype=torch.float64)), st.nbinom.logpmf(k, n, 1 - p), rtol=1e-10)
    close(d.mean, st.nbinom.mean(n, 1 - p), rtol=1e-10)
    close(d.variance, st.nbinom.var(n, 1 - p), rtol=1e-10)
    close(d.mode, [0., 5.])        # floor(4 * 0.6 / 0.4) through exp(logit): 5.999.. as torch
    # total_count 0 at value 0 has probability one (PyTorch's masked_fill)
    close(NegativeBinomial(t(0.), t(0.5)).log_prob(t(0.)), 0.0)


def test_von_mises_vs_scipy():
    loc, kappa = np.array([0.5, -1.]), np.array([0.5, 8.])
    d = VonMises(t(loc, dtype=torch.float64), t(kappa, dtype=torch.float64))
    x = np.array([0.3, 2.])
    # the polynomial Bessel approximations are good to about 1e-7 relative
    close(d.log_prob(t(x, dtype=torch.float64)), st.vonmises.logpdf(x, kappa, loc=loc),
          rtol=1e-6)
    close(d.variance, 1 - st.vonmises.stats(kappa, moments="m") * 0 -
          np.array([float(st.vonmises(k).expect(np.cos)) for k in kappa]), rtol=1e-6)
    close(VonMises(t([0.5, -1.]), t([0.5, 8.])).log_prob(t([0.3, 2.])),
          [-1.4093934297561646, -15.815921783447266], rtol=1e-6)


def test_wishart_vs_scipy():
    V = np.array([[2., 0.5], [0.5, 1.]])
    d = Wishart(t(4., dtype=torch.float64), covariance_matrix=t(V, dtype=torch.float64))
    X = np.array([[3., 1.], [1., 2.]])
    close(d.log_prob(t(X, dtype=torch.float64)), st.wishart(4, V).logpdf(X), rtol=1e-10)
    close(d.entropy(), st.wishart(4, V).entropy(), rtol=1e-10)
    close(ExponentialFamily.entropy(d), st.wishart(4, V).entropy(), rtol=1e-8)
    close(d.mean, 4 * V, rtol=1e-12)
    close(d.variance, 4 * (V ** 2 + np.outer(np.diag(V), np.diag(V))), rtol=1e-12)
    close(d.mode, (4 - 3) * V, rtol=1e-12)
    pm = Wishart(t(4., dtype=torch.float64), precision_matrix=t(np.linalg.inv(V)))
    close(pm.covariance_matrix, V, rtol=1e-10)
    q = Wishart(t(5.), covariance_matrix=torch.eye(2))
    close(kl_divergence(Wishart(t(4.), covariance_matrix=t(V, dtype=torch.float32)), q),
          0.7767879962921143, rtol=1e-5)


def test_generalized_pareto_vs_scipy():
    loc, scale, c = np.array([0., 1., 0.]), np.array([1., 2., 1.5]), np.array([0.3, -0.2, 0.])
    d = GeneralizedPareto(*(t(v, dtype=torch.float64) for v in (loc, scale, c)))
    x = np.array([0.5, 2., 1.])
    close(d.log_prob(t(x, dtype=torch.float64)), st.genpareto.logpdf(x, c, loc, scale),
          rtol=1e-10)
    close(d.cdf(t(x, dtype=torch.float64)), st.genpareto.cdf(x, c, loc, scale), rtol=1e-10)
    u = np.array([0.1, 0.5, 0.9])
    close(d.icdf(t(u, dtype=torch.float64)), st.genpareto.ppf(u, c, loc, scale), rtol=1e-10)
    close(d.mean, st.genpareto.mean(c, loc, scale), rtol=1e-10)
    close(d.variance, st.genpareto.var(c, loc, scale), rtol=1e-10)
    close(d.entropy(), st.genpareto.entropy(c, loc, scale), rtol=1e-10)
    assert repr(d.support).startswith("Interval(")


def test_lkj_log_prob_and_relaxed_and_logistic_normal_torch_values():
    L = t([[1., 0, 0], [0.6, 0.8, 0], [0., 0.6, 0.8]])
    close(LKJCholesky(3, t(2.)).log_prob(L), -1.731200933456421, rtol=1e-5)
    close(LogisticNormal(t([0.1, -0.3]), t([1., 0.5])).log_prob(t([0.2, 0.3, 0.5])),
          1.9583919048309326, rtol=1e-5)
    close(RelaxedOneHotCategorical(t(0.7), t([0.2, 0.3, 0.5])).log_prob(t([0.1, 0.3, 0.6])),
          0.6587486267089844, rtol=1e-5)
    close(RelaxedBernoulli(t(0.5), t([0.3, 0.6])).log_prob(t([0.2, 0.7])),
          [-0.2527947425842285, -0.518876314163208], rtol=1e-5)


def test_lkj_dim2_density_is_uniform_for_concentration_one():
    # for dim 2 and concentration 1 the correlation r = L[1, 0] is uniform on (-1, 1):
    # p(L) = p(r) |dr/dL| with the factor 1 here, so exp(log_prob) = 1/2
    r = np.array([-0.5, 0.1, 0.9])
    L = np.zeros((3, 2, 2))
    L[:, 0, 0] = 1
    L[:, 1, 0] = r
    L[:, 1, 1] = np.sqrt(1 - r ** 2)
    lp = LKJCholesky(2, 1.).log_prob(t(L, dtype=torch.float32))
    close(lp, np.log(0.5) * np.ones(3), rtol=1e-5)


def test_mixture_same_family():
    w = np.array([0.2, 0.5, 0.3])
    mu, sd = np.array([-1., 0.5, 3.]), np.array([0.5, 1., 2.])
    mix = MixtureSameFamily(Categorical(t(w, dtype=torch.float64)),
                            Normal(t(mu, dtype=torch.float64), t(sd, dtype=torch.float64)))
    x = np.array([-1., 0., 2.5])
    ref = np.log((w * st.norm.pdf(x[:, None], mu, sd)).sum(-1))
    close(mix.log_prob(t(x, dtype=torch.float64)), ref, rtol=1e-10)
    close(mix.cdf(t(x, dtype=torch.float64)), (w * st.norm.cdf(x[:, None], mu, sd)).sum(-1))
    m = (w * mu).sum()
    close(mix.mean, m, rtol=1e-12)
    close(mix.variance, (w * (sd ** 2 + mu ** 2)).sum() - m ** 2, rtol=1e-12)
    torch.manual_seed(0)
    s = mix.sample((20000,))
    assert s.shape == (20000,)
    assert abs(float(s.mean()) - m) < 0.05
    assert "MixtureSameFamily(\n  Categorical(" in repr(mix)
    # batched with vector events
    comp = LowRankMultivariateNormal(torch.zeros(2, 3, 4), torch.ones(2, 3, 4, 1),
                                     torch.ones(2, 3, 4))
    mb = MixtureSameFamily(Categorical(torch.ones(2, 3)), comp)
    assert mb.batch_shape == (2,) and mb.event_shape == (4,)
    assert mb.sample((5,)).shape == (5, 2, 4) and mb.log_prob(torch.zeros(5, 2, 4)).shape == (5, 2)
    with pytest.raises(ValueError, match="does not equal"):
        MixtureSameFamily(Categorical(torch.ones(2)), Normal(torch.zeros(3), torch.ones(3)))
    with pytest.raises(ValueError, match="Categorical"):
        MixtureSameFamily(Normal(0., 1.), Normal(torch.zeros(3), torch.ones(3)))


# ---- sample moments with a fixed seed ----------------------------------------------------------

def test_sample_moments():
    torch.manual_seed(1)
    n = 20000
    nb = NegativeBinomial(t([3., 5.]), t([0.3, 0.6]))
    s = nb.sample((n,))
    close(s.mean(0), npy(nb.mean), rtol=0.03)
    close(s.var(0), npy(nb.variance), rtol=0.06)
    vm = VonMises(t([0.5]), t([4.]))
    s = npy(vm.sample((n,)))
    assert abs(np.angle(np.exp(1j * s).mean()) - 0.5) < 0.02
    close(1 - np.abs(np.exp(1j * s).mean()), npy(vm.variance), rtol=0.05)
    k = Kumaraswamy(t([2.]), t([3.]))
    s = k.sample((n,))
    close(s.mean(), npy(k.mean), rtol=0.02)
    f = FisherSnedecor(t([5.]), t([12.]))
    close(f.sample((n,)).mean(), npy(f.mean), rtol=0.03)
    w = _wishart()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = w.sample((4000,))
    close(s.mean(0), npy(w.mean), rtol=0.06, atol=0.06)
    lkj = LKJCholesky(3, t(1.5))
    s = lkj.sample((2000,))
    assert bool(constraints.corr_cholesky.check(s).all())
    corr = s @ s.mT
    close(corr.diagonal(dim1=-2, dim2=-1), np.ones((2000, 3)), atol=1e-5)
    # LKJ(eta): each off-diagonal correlation has mean 0 and variance 1/(2 eta + d - 1)
    off = npy(corr[:, 1, 0])
    assert abs(off.mean()) < 0.05 and abs(off.var() - 1 / (2 * 1.5 + 2)) < 0.03
    ro = RelaxedOneHotCategorical(t(0.1), t([0.2, 0.3, 0.5]))
    s = ro.sample((n,))
    close(s.sum(-1), np.ones(n), atol=1e-5)
    close((s.argmax(-1) == 2).float().mean(), 0.5, atol=0.02)
    rb = RelaxedBernoulli(t(0.05), t([0.3]))
    close((rb.sample((n,)) > 0.5).float().mean(), 0.3, atol=0.02)


# ---- gradients ---------------------------------------------------------------------------------

def test_gradcheck_lowrank_log_prob_and_kl():
    x = t([[0.5, 1.5, 2.], [1., 0., 4.]], dtype=torch.float64)

    def f(loc, W, D):
        return LowRankMultivariateNormal(loc, W, D).log_prob(x)

    args = (t([1., 2., 3.], dtype=torch.float64, requires_grad=True),
            t([[1., 0.5], [0.2, -0.3], [0., 1.]], dtype=torch.float64, requires_grad=True),
            t([0.5, 1., 2.], dtype=torch.float64, requires_grad=True))
    assert torch.autograd.gradcheck(f, args)


def test_gradcheck_rsample_reparameterised():
    def ku(a, b):
        torch.manual_seed(3)
        return Kumaraswamy(a, b).rsample((4,))

    args = (t([2., 0.7], dtype=torch.float64, requires_grad=True),
            t([3., 1.5], dtype=torch.float64, requires_grad=True))
    assert torch.autograd.gradcheck(ku, args)

    def cb(p):
        torch.manual_seed(3)
        return ContinuousBernoulli(p).rsample((4,))

    assert torch.autograd.gradcheck(cb, (t([0.2, 0.7], dtype=torch.float64,
                                           requires_grad=True),))

    def gp(loc, scale, c):
        torch.manual_seed(3)
        return GeneralizedPareto(loc, scale, c).rsample((3,))

    assert torch.autograd.gradcheck(gp, (t([0.5], dtype=torch.float64, requires_grad=True),
                                         t([1.5], dtype=torch.float64, requires_grad=True),
                                         t([0.2], dtype=torch.float64, requires_grad=True)))

    def ro(logits):
        torch.manual_seed(3)
        return RelaxedOneHotCategorical(t(0.5, dtype=torch.float64),
                                        logits=logits).rsample((2,))

    assert torch.autograd.gradcheck(ro, (t([0.1, -0.4, 0.3], dtype=torch.float64,
                                           requires_grad=True),))


def test_rsample_gradients_through_gamma_families():
    df1 = t([3., 5.], requires_grad=True)
    torch.manual_seed(0)
    FisherSnedecor(df1, t([6., 8.])).rsample((5,)).sum().backward()
    assert df1.grad is not None and np.isfinite(npy(df1.grad)).all()
    a = t([3., 2.], requires_grad=True)
    torch.manual_seed(0)
    InverseGamma(a, t([1., 2.])).rsample((5,)).sum().backward()
    assert np.isfinite(npy(a.grad)).all() and (npy(a.grad) != 0).all()
    df = t(4., requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Wishart(df, covariance_matrix=torch.eye(2)).rsample((3,)).sum().backward()
    assert np.isfinite(float(df.grad))


# ---- ExponentialFamily ---------------------------------------------------------------------------

def test_exponential_family_bases_and_bregman_entropy():
    for cls in (Normal, Bernoulli, Beta, Gamma, Exponential, ContinuousBernoulli, Wishart):
        assert issubclass(cls, ExponentialFamily)
    dists = [Normal(t([0.3, -1.], dtype=torch.float64), t([0.5, 2.], dtype=torch.float64)),
             Gamma(t([2., 0.7], dtype=torch.float64), t([1.5, 3.], dtype=torch.float64)),
             Exponential(t([2., 0.7], dtype=torch.float64)),
             Bernoulli(t([0.2, 0.6], dtype=torch.float64))]
    for d in dists:
        close(ExponentialFamily.entropy(d), npy(d.entropy()), rtol=1e-9, atol=1e-12)
    # Beta (like PyTorch's) gives no _mean_carrier_measure: its entropy is the closed form only
    with pytest.raises(NotImplementedError):
        ExponentialFamily.entropy(Beta(t(2.), t(3.)))


def test_expfamily_kl_bregman_and_cross_family_error():
    from framework.distributions.kl import _kl_expfamily_expfamily
    p = Gamma(t([2., 0.7], dtype=torch.float64), t([1.5, 3.], dtype=torch.float64))
    q = Gamma(t([1., 2.], dtype=torch.float64), t([0.5, 1.], dtype=torch.float64))
    close(_kl_expfamily_expfamily(p, q), npy(kl_divergence(p, q)), rtol=1e-9)
    with pytest.raises(NotImplementedError, match="Bregman"):
        kl_divergence(Normal(0., 1.), Bernoulli(t(0.3)))


# ---- KL pairs (values printed by torch 2.13) -------------------------------------------------------

def test_kl_values():
    cb1, cb2 = ContinuousBernoulli(t([0.2, 0.7])), ContinuousBernoulli(t([0.6, 0.4]))
    close(kl_divergence(cb1, cb2), [0.1286613941192627, 0.06451946496963501], rtol=1e-5)
    close(kl_divergence(Beta(t([2., 3.]), t([1.5, 4.])), cb2),
          [0.08592873811721802, 0.32222259044647217], rtol=1e-5)
    close(kl_divergence(cb1, Exponential(t([1.5, 0.5]))),
          [0.2529706358909607, 1.0074222087860107], rtol=1e-5)
    close(kl_divergence(cb1, Normal(t([0.3, -1.]), t([1., 2.]))),
          [1.037175178527832, 1.959550380706787], rtol=1e-5)
    close(kl_divergence(Uniform(t([0.2, 0.]), t([0.6, 1.5])), cb2), [0.9636777639389038, math.inf],
          rtol=1e-5)
    assert bool(torch.isinf(kl_divergence(Normal(0., 1.), cb2)).all())
    assert bool(torch.isinf(kl_divergence(Gamma(t(1.), t(1.)), cb2)).all())
    W = t([[1., 0.5], [0.2, -0.3], [0., 1.]])
    p = LowRankMultivariateNormal(t([1., 2., 3.]), W, t([0.5, 1., 2.]))
    q = LowRankMultivariateNormal(t([0., 1., 1.]), W.flip(0), t([1., 1.5, 0.7]))
    m = MultivariateNormal(t([0.5, 0., 1.]), covariance_matrix=t([[2., 0.3, 0.], [0.3, 1., 0.2],
                                                                 [0., 0.2, 1.5]]))
    close(kl_divergence(p, q), 1.5648894309997559, rtol=1e-5)
    close(kl_divergence(m, q), 0.5014233589172363, rtol=1e-5)
    close(kl_divergence(p, m), 3.18133544921875, rtol=1e-5)
    # the low-rank forms agree with the dense MultivariateNormal KL
    dense = MultivariateNormal(p.loc, covariance_matrix=p.covariance_matrix)
    close(kl_divergence(p, q), npy(kl_divergence(dense, MultivariateNormal(
        q.loc, covariance_matrix=q.covariance_matrix))), rtol=1e-4)


# ---- transforms ----------------------------------------------------------------------------------

def _jacobian(f, x, eps=1e-6):
    x = np.asarray(x, np.float64)
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = eps
        cols.append((f(x + e) - f(x - e)).reshape(-1) / (2 * eps))
    return np.stack(cols, -1)


def _apply(tr, inverse=False):
    fn = tr.inv if inverse else tr
    return lambda a: npy(fn(t(a, dtype=torch.float64)))


@pytest.mark.parametrize("tr", [T.SigmoidTransform(), T.SoftplusTransform(), T.TanhTransform()],
                         ids=repr)
def test_elementwise_transforms(tr):
    x = t([-2., -0.3, 0.4, 1.7], dtype=torch.float64)
    y = tr(x)
    close(tr.inv(y), npy(x), rtol=1e-9)
    d = np.diag(_jacobian(_apply(tr), npy(x)))
    close(tr.log_abs_det_jacobian(x, y), np.log(np.abs(d)), rtol=1e-7)
    assert bool(tr.codomain.check(y).all()) and tr.bijective and tr.sign == 1


def test_stick_breaking_and_softmax():
    tr = T.StickBreakingTransform()
    x = t([0.3, -1.2, 0.8], dtype=torch.float64)
    y = tr(x)
    assert y.shape == (4,) and bool(constraints.simplex.check(y))
    close(tr.inv(y), npy(x), rtol=1e-9)
    J = _jacobian(lambda a: _apply(tr)(a)[:-1], npy(x))          # onto the first K-1 coords
    close(tr.log_abs_det_jacobian(x, y), np.log(abs(np.linalg.det(J))), rtol=1e-7)
    assert tr.forward_shape((2, 3)) == (2, 4) and tr.inverse_shape((2, 4)) == (2, 3)
    sm = T.SoftmaxTransform()
    ys = sm(x)
    close(ys, np.exp(npy(x)) / np.exp(npy(x)).sum(), rtol=1e-12)
    close(sm(sm.inv(ys)), npy(ys), rtol=1e-12)
    assert not sm.bijective


def test_corr_cholesky_transform():
    tr = T.CorrCholeskyTransform()
    x = t([0.3, -0.8, 0.5, 1.1, -0.2, 0.4], dtype=torch.float64)
    y = tr(x)
    assert y.shape == (4, 4) and bool(constraints.corr_cholesky.check(y))
    close(tr.inv(y), npy(x), rtol=1e-9)
    rows, cols = np.tril_indices(4, -1)
    J = _jacobian(lambda a: _apply(tr)(a)[rows, cols], npy(x))
    close(tr.log_abs_det_jacobian(x, y), np.log(abs(np.linalg.det(J))), rtol=1e-7)
    assert tr.forward_shape((6,)) == (4, 4) and tr.inverse_shape((4, 4)) == (6,)
    with pytest.raises(ValueError):
        tr.forward_shape((5,))


def test_matrix_transforms():
    x = t([[0.3, 5.], [-1.2, -0.4]], dtype=torch.float64)
    lc = T.LowerCholeskyTransform()
    L = lc(x)
    close(L, [[math.exp(0.3), 0.], [-1.2, math.exp(-0.4)]], rtol=1e-12)
    close(lc.inv(L), [[0.3, 0.], [-1.2, -0.4]], rtol=1e-12)
    pd = T.PositiveDefiniteTransform()
    P = pd(x)
    assert bool(constraints.positive_definite.check(P))
    close(pd.inv(P), npy(lc.inv(L)), rtol=1e-9)
    r = T.ReshapeTransform((2, 3), (3, 2))
    z = torch.arange(12.).reshape(2, 2, 3)
    assert r(z).shape == (2, 3, 2) and bool((r.inv(r(z)) == z).all())
    close(r.log_abs_det_jacobian(z, r(z)), np.zeros(2))
    with pytest.raises(ValueError, match="different numbers"):
        T.ReshapeTransform((2, 3), (4,))


def test_independent_cat_stack_cdf_transforms():
    it = T.IndependentTransform(T.ExpTransform(), 1)
    x = t([[0.1, 0.2], [0.3, -0.4]])
    close(it.log_abs_det_jacobian(x, it(x)), [0.3, -0.1], rtol=1e-6)
    assert it.domain.event_dim == 1 and repr(it) == "IndependentTransform(ExpTransform(), 1)"
    ct = T.CatTransform([T.ExpTransform(), T.identity_transform], dim=0, lengths=[2, 1])
    v = t([0.5, -1., 3.])
    close(ct(v), [math.exp(0.5), math.exp(-1.), 3.], rtol=1e-6)
    close(ct.inv(ct(v)), npy(v), rtol=1e-6)
    close(ct.log_abs_det_jacobian(v, ct(v)), [0.5, -1., 0.], rtol=1e-6)
    assert bool(ct.codomain.check(ct(v)).all())
    sk = T.StackTransform([T.ExpTransform(), T.SigmoidTransform()], dim=1)
    m = t([[0.5, 0.], [-1., 2.]])
    out = sk(m)
    close(out[:, 0], np.exp([0.5, -1.]), rtol=1e-6)
    close(out[:, 1], 1 / (1 + np.exp(-np.array([0., 2.]))), rtol=1e-6)
    close(sk.inv(out), npy(m), rtol=1e-5, atol=1e-6)
    assert sk.log_abs_det_jacobian(m, out).shape == (2, 2)
    cdt = T.CumulativeDistributionTransform(Normal(0., 1.))
    z = t([-1., 0.5])
    close(cdt(z), st.norm.cdf([-1., 0.5]), rtol=1e-6)
    close(cdt.inv(cdt(z)), [-1., 0.5], rtol=1e-5)
    close(cdt.log_abs_det_jacobian(z, cdt(z)), st.norm.logpdf([-1., 0.5]), rtol=1e-6)


def test_biject_to_and_transform_to():
    assert biject_to(constraints.real) is T.identity_transform
    assert isinstance(biject_to(constraints.unit_interval), T.SigmoidTransform)
    assert isinstance(biject_to(constraints.simplex), T.StickBreakingTransform)
    assert isinstance(transform_to(constraints.simplex), T.SoftmaxTransform)
    assert isinstance(transform_to(constraints.lower_cholesky), T.LowerCholeskyTransform)
    assert isinstance(transform_to(constraints.positive_definite), T.PositiveDefiniteTransform)
    assert isinstance(transform_to(constraints.positive_semidefinite),
                      T.PositiveDefiniteTransform)
    assert isinstance(biject_to(constraints.corr_cholesky), T.CorrCholeskyTransform)
    # PyTorch keys the registry by class: positive shares greater_than's factory
    pos = biject_to(constraints.positive)
    assert isinstance(pos, T.ComposeTransform) and repr(pos) == \
        "ComposeTransform(\n    ExpTransform(),\n    AffineTransform()\n)"
    assert isinstance(biject_to(constraints.real_vector), T.IndependentTransform)
    x = t([-3., -0.2, 0.5, 4.])
    for c in [constraints.positive, constraints.greater_than(2.), constraints.less_than(-1.),
              constraints.interval(-2., 5.), constraints.half_open_interval(0., 3.),
              constraints.nonnegative, constraints.unit_interval]:
        for reg in (biject_to, transform_to):
            tr = reg(c)
            y = tr(x)
            assert bool(c.check(y).all()), (c, y)
            close(tr.inv(y), npy(x), rtol=1e-4, atol=1e-5)
    for reg in (biject_to, transform_to):
        tr = reg(constraints.cat([constraints.positive, constraints.real], 0, [2, 2]))
        assert isinstance(tr, T.CatTransform)
        assert bool(constraints.cat([constraints.positive, constraints.real], 0, [2, 2])
                    .check(tr(x)).all())
        tr = reg(constraints.stack([constraints.positive, constraints.unit_interval], 0))
        assert isinstance(tr, T.StackTransform)
        assert bool((tr(x[:2]) > 0).all()) and float(tr(x[:2])[1]) < 1
    with pytest.raises(NotImplementedError, match="Cannot transform _Boolean constraints"):
        biject_to(constraints.boolean)
    with pytest.raises(NotImplementedError):
        biject_to(constraints.lower_cholesky)        # transform_to only, as in PyTorch


def test_new_constraints():
    good = t([[1., 0.], [0.6, 0.8]])
    bad = t([[1., 0.], [0.6, 0.9]])
    assert bool(constraints.corr_cholesky.check(good)) and \
        not bool(constraints.corr_cholesky.check(bad))
    assert bool(constraints.positive_semidefinite.check(t([[1., 1.], [1., 1.]])))
    assert not bool(constraints.positive_definite.check(t([[1., 1.], [1., 1.]])))
    c = constraints.cat([constraints.positive, constraints.real], dim=0, lengths=[1, 2])
    assert npy(c.check(t([-1., -2., 3.]))).tolist() == [0., 1., 1.]
    s = constraints.stack([constraints.positive, constraints.unit_interval], dim=0)
    assert npy(s.check(t([2., 2.]))).tolist() == [1., 0.]


# ---- shapes, expand, repr, validation ---------------------------------------------------------

def test_expand_and_reprs():
    d = ContinuousBernoulli(t([0.2, 0.8]))
    assert repr(d) == "ContinuousBernoulli(probs: torch.Size([2]))"
    assert d.expand((3, 2)).sample().shape == (3, 2)
    assert HalfCauchy(t([1., 2.])).expand((4, 2)).log_prob(t([1., 1.])).shape == (4, 2)
    assert InverseGamma(t(2.), t(1.)).expand((3,)).rsample((2,)).shape == (2, 3)
    assert Kumaraswamy(t(2.), t(3.)).expand((2,)).sample().shape == (2,)
    assert LKJCholesky(3, t([1., 2.])).expand((4, 2)).sample().shape == (4, 2, 3, 3)
    assert LogisticNormal(t([0., 1.]), t([1., 1.])).expand((5,)).sample().shape == (5, 3)
    assert NegativeBinomial(t(3.), logits=t(0.2)).expand((2,)).sample().shape == (2,)
    assert VonMises(t(0.), t(1.)).expand((3,)).sample().shape == (3,)
    assert GeneralizedPareto(t(0.), t(1.), t(0.1)).expand((3,)).sample().shape == (3,)
    w = _wishart().expand((2,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert w.sample().shape == (2, 2, 2)
    assert RelaxedBernoulli(t(0.5), logits=t([0.1])).expand((3, 1)).rsample().shape == (3, 1)
    assert RelaxedOneHotCategorical(t(0.5), logits=t([0.1, 0.2])).expand((3,)).rsample().shape \
        == (3, 2)
    assert repr(VonMises(t(0.), t(1.))) == "VonMises(loc: 0.0, concentration: 1.0)"
    assert repr(FisherSnedecor(t([1., 2.]), t([3., 4.]))) == \
        "FisherSnedecor(df1: torch.Size([2]), df2: torch.Size([2]))"
    assert FisherSnedecor(1., 2.).batch_shape == ()


def test_validation_errors():
    with pytest.raises(ValueError, match="The parameter probs has invalid values"):
        ContinuousBernoulli(t([1.5]), validate_args=True)
    # (PyTorch builds the inner Gammas first, and they reject the parameter first)
    with pytest.raises(ValueError, match="Expected parameter concentration"):
        FisherSnedecor(t([-1.]), t([2.]), validate_args=True)
    with pytest.raises(ValueError, match="Expected parameter scale"):
        HalfCauchy(t([-1.]), validate_args=True)
    with pytest.raises(ValueError, match="Expected parameter concentration"):
        InverseGamma(t([-1.]), t([1.]), validate_args=True)
    with pytest.raises(ValueError, match="Expected parameter concentration0"):
        Kumaraswamy(t([1.]), t([0.]), validate_args=True)
    with pytest.raises(ValueError, match="Expected dim to be an integer greater"):
        LKJCholesky(1)
    with pytest.raises(ValueError, match="Expected parameter concentration"):
        LKJCholesky(3, t(-1.), validate_args=True)
    with pytest.raises(ValueError, match="cov_factor must be a batch of matrices"):
        LowRankMultivariateNormal(torch.zeros(3), torch.ones(2, 1), torch.ones(3))
    with pytest.raises(ValueError, match="Expected parameter cov_diag"):
        LowRankMultivariateNormal(torch.zeros(2), torch.ones(2, 1), t([1., -1.]),
                                  validate_args=True)
    with pytest.raises(ValueError, match="Expected parameter probs"):
        NegativeBinomial(t(2.), t(1.), validate_args=True)
    with pytest.raises(ValueError, match="Either `probs` or `logits`"):
        NegativeBinomial(t(2.))
    with pytest.raises(ValueError, match="Expected parameter concentration"):
        VonMises(t(0.), t(-1.), validate_args=True)
    with pytest.raises(ValueError, match="expected to be greater than ndim - 1"):
        Wishart(t(0.5), covariance_matrix=torch.eye(2))
    with pytest.raises(ValueError, match="Expected parameter scale"):
        GeneralizedPareto(t(0.), t(-1.), t(0.), validate_args=True)
    with pytest.raises(ValueError, match="within the support"):
        HalfCauchy(t(1.), validate_args=True).log_prob(t(-1.))
    with pytest.raises(ValueError, match="within the support"):
        NegativeBinomial(t(2.), t(0.5), validate_args=True).log_prob(t(1.5))
    with pytest.raises(ValueError, match="within the support"):
        LKJCholesky(2, validate_args=True).log_prob(t([[1., 0.], [0.6, 0.9]]))
    with pytest.raises(ValueError, match="within the support"):
        GeneralizedPareto(t(0.), t(1.), t(-0.5), validate_args=True).log_prob(t(3.))
