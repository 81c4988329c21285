"""Gamma-family distributions (Gamma, Chi2, Beta, Dirichlet, Poisson, Binomial, Multinomial,
StudentT, HalfNormal, Cauchy, Gumbel, Pareto, Weibull): values against scipy.stats in float64,
seeded samples and rsample gradients against values printed from PyTorch 2.13 (cpu), sample
moments, KL values printed from PyTorch, validation errors."""
from math import inf

import numpy as np
import pytest
from scipy import special as sp
from scipy import stats

import framework as torch
from framework import distributions as D
from framework.distributions import _samplers

# ---- values printed from PyTorch 2.13 (torch.manual_seed(s) before each) -------------------
GAMMA_S = [[5.906951628276147e-06, 0.059491850435733795, 4.82283878326416, 7.0011115074157715],
    [0.15798571705818176, 0.41330909729003906, 1.882951021194458, 9.032931327819824]]
BETA_S = [[0.34906965494155884, 0.8909574151039124, 0.6422203183174133], [0.4699011743068695,
    0.99959397315979, 0.7938931584358215]]
DIR_S = [[0.002518285298720002, 0.36256933212280273, 0.634912371635437], [0.00790468417108059,
    0.3110516369342804, 0.6810436844825745]]
POIS_S = [[0.0, 4.0, 25.0, 991.0], [0.0, 4.0, 22.0, 1071.0]]
BINOM_S = [[2.0, 51.0, 688.0, 19.0], [2.0, 51.0, 704.0, 19.0]]
CAUCHY_S = [[0.47831955552101135, -0.8809894323348999], [-0.4673923850059509, -0.31256210803985596],
    [-0.9035349488258362, 4.9691619873046875]]
CHI2_S = [[1.4011896848678589, 1.5831934213638306], [0.7892628908157349, 6.504909515380859],
    [4.706549167633057, 9.01916217803955]]
GAMMA_RX = [0.0012760467686342269, 0.333386383101799, 0.47842872500616085, 5.879830644954276,
    12.777400023441908]
GAMMA_G = [0.02473219071875945, 0.47391411036228387, 0.3171360820274538, 0.5804919348389804,
    0.5684973486750892]
BETA_RX = [0.8250568206230174, 0.9735411508870481, 0.8383722649118441, 0.4578053923758643]
BETA_G1 = [0.2547497922385801, 0.014629908367135326, 0.018746125843226442, 0.025527998840951006]
BETA_G0 = [-0.22511225947045543, -0.16040983138209458, -0.06576837588943978, -0.021354182626098762]
DIR_RX = [[0.009678447000992647, 0.20764888089728392, 0.7826726721017234], [0.07973186603287594,
    0.6406028702326095, 0.27966526373451467]]
DIR_G = [[-0.0916830555077731, -0.09088504441988383, 0.02615485150073651], [-0.2223379174454613,
    -0.12196601404299698, 0.31730035047023897]]

KL = {
    'beta_beta': [0.24156447527049021, 2.626128219232155],
    'gamma_gamma': [0.2883746643008971, 5.234006396125155],
    'dir_dir': [0.9838711578816671],
    'pois_pois': [0.8068528194400547, 7.996442489973553],
    'binom_binom': [0.8228287850505189, inf],
    'gumbel_gumbel': [11.66218068220289, 0.36787944117144233],
    'cauchy_cauchy': [0.4855078157817009, 0.2231435513142097],
    'hn_hn': [0.8068528194400547, 0.1276873303303866],
    'pareto_pareto': [inf, 3.079441541679836],
    'beta_gamma': [0.3552701141505994, 6.983365894770985],
    'beta_normal': [2.1761280084751626, 1.205333504360063],
    'beta_uniform': [0.5484172947105447, inf],
    'gamma_exp': [0.648188511527509, 0.8017689293133528],
    'gamma_normal': [1.9686075586254603, 0.42379626745428584],
    'gamma_gumbel': [2.0406944292052267, 0.6033861908036118],
    'exp_gamma': [0.5810245564198513, 0.9025798098050948],
    'uniform_gamma': [0.6196323888706179, 0.565998789091267],
    'uniform_beta': [0.4515827052894549, 0.39955335859237495],
    'pareto_gamma': [2.551578010872061, inf],
    'gumbel_normal': [0.28213404769507844, 6.365827236277706],
    'normal_gumbel': [5.276970385166033, 0.6940482634281064],
    'bern_pois': [0.09707985211309011, 0.9450798320138558],
    'normal_gamma': [inf, inf],
}
ENT_BINOM = [1.6219291434356844, 1.7790787840900633]
ENT_MULTI = 2.7906566701121194


def f64(v):
    return torch.tensor(v, dtype=torch.float64)


def npy(t):
    return t.detach().numpy()


# ---- module paths ----------------------------------------------------------------------------

def test_per_family_modules_importable():
    # the seed tutorial's spelling, and the existing families' modules
    import framework.distributions.beta as beta_mod
    assert torch.distributions.beta.Beta is beta_mod.Beta is D.Beta
    for mod, cls in [("gamma", "Gamma"), ("dirichlet", "Dirichlet"), ("chi2", "Chi2"),
                     ("poisson", "Poisson"), ("binomial", "Binomial"),
                     ("multinomial", "Multinomial"), ("studentT", "StudentT"),
                     ("half_normal", "HalfNormal"), ("cauchy", "Cauchy"), ("gumbel", "Gumbel"),
                     ("pareto", "Pareto"), ("weibull", "Weibull"), ("normal", "Normal"),
                     ("uniform", "Uniform"), ("exponential", "Exponential"),
                     ("categorical", "Categorical"), ("log_normal", "LogNormal"),
                     ("multivariate_normal", "MultivariateNormal")]:
        assert getattr(getattr(torch.distributions, mod), cls) is getattr(D, cls)


# ---- values vs scipy.stats (float64) --------------------------------------------------------

A, R = [0.5, 2.0, 7.0], [1.0, 0.5, 3.0]
X = [0.3, 1.2, 2.5]


@pytest.mark.parametrize("name, dist, ref, x", [
    ("gamma", lambda: D.Gamma(f64(A), f64(R)),
     stats.gamma(np.array(A), scale=1 / np.array(R)), X),
    ("chi2", lambda: D.Chi2(f64([1.0, 3.0, 10.0])), stats.chi2(np.array([1.0, 3.0, 10.0])), X),
    ("beta", lambda: D.Beta(f64(A), f64([1.5, 0.5, 3.0])),
     stats.beta(np.array(A), np.array([1.5, 0.5, 3.0])), [0.3, 0.9, 0.5]),
    ("studentT", lambda: D.StudentT(f64([2.5, 3.5, 5.0]), f64([0.0, 1.0, -1.0]), f64(R)),
     stats.t(np.array([2.5, 3.5, 5.0]), np.array([0.0, 1.0, -1.0]), np.array(R)),
     [0.3, 1.2, -2.5]),
    ("halfnormal", lambda: D.HalfNormal(f64(A)), stats.halfnorm(scale=np.array(A)), X),
    ("cauchy", lambda: D.Cauchy(f64([0.0, 1.0, -1.0]), f64(R)),
     stats.cauchy(np.array([0.0, 1.0, -1.0]), np.array(R)), [0.3, 1.2, -2.5]),
    ("gumbel", lambda: D.Gumbel(f64([0.0, 1.0, -1.0]), f64(R)),
     stats.gumbel_r(np.array([0.0, 1.0, -1.0]), np.array(R)), [0.3, 1.2, -2.5]),
    ("pareto", lambda: D.Pareto(f64([1.0, 1.0, 0.5]), f64([2.5, 3.0, 4.0])),
     stats.pareto(np.array([2.5, 3.0, 4.0]), scale=np.array([1.0, 1.0, 0.5])), [1.3, 1.2, 2.5]),
    ("weibull", lambda: D.Weibull(f64([1.0, 2.0, 0.5]), f64([0.5, 2.0, 3.0])),
     stats.weibull_min(np.array([0.5, 2.0, 3.0]), scale=np.array([1.0, 2.0, 0.5])), X),
])
def test_continuous_values_vs_scipy(name, dist, ref, x):
    d = dist()
    np.testing.assert_allclose(npy(d.log_prob(f64(x))), ref.logpdf(np.array(x)), rtol=1e-10)
    np.testing.assert_allclose(npy(d.entropy()), ref.entropy(), rtol=1e-9)
    if name != "cauchy":
        np.testing.assert_allclose(npy(d.mean), ref.mean(), rtol=1e-10)
        np.testing.assert_allclose(npy(d.variance), ref.var(), rtol=1e-10)
    if name not in ("beta", "studentT"):       # PyTorch has no cdf for these two
        np.testing.assert_allclose(npy(d.cdf(f64(x))), ref.cdf(np.array(x)), rtol=1e-10,
                                   atol=1e-14)


def test_icdf_inverts_cdf():
    p = f64([0.1, 0.5, 0.9])
    for d in (D.HalfNormal(f64([0.5, 2.0, 7.0])), D.Cauchy(f64([0.0, 1.0, -1.0]), f64(R))):
        np.testing.assert_allclose(npy(d.cdf(d.icdf(p))), npy(p), rtol=1e-12)


def test_dirichlet_values_vs_scipy():
    alpha = np.array([0.5, 2.0, 7.0])
    d = D.Dirichlet(f64(alpha))
    x = np.array([0.2, 0.3, 0.5])
    ref = stats.dirichlet(alpha)
    np.testing.assert_allclose(npy(d.log_prob(f64(x))), ref.logpdf(x), rtol=1e-12)
    np.testing.assert_allclose(npy(d.entropy()), ref.entropy(), rtol=1e-12)
    np.testing.assert_allclose(npy(d.mean), ref.mean(), rtol=1e-12)
    np.testing.assert_allclose(npy(d.variance), ref.var(), rtol=1e-12)
    np.testing.assert_allclose(npy(d.mode), (alpha - 1).clip(0) / (alpha - 1).clip(0).sum())
    # all concentrations below 1: PyTorch's one-hot at the argmax of 0/0 = nan, the first
    np.testing.assert_array_equal(npy(D.Dirichlet(f64([[0.2, 0.9, 0.5]])).mode), [[1, 0, 0]])


def test_discrete_values_vs_scipy():
    k = np.array([0.0, 3.0, 25.0])
    rate = np.array([0.5, 4.0, 30.0])
    d = D.Poisson(f64(rate))
    np.testing.assert_allclose(npy(d.log_prob(f64(k))), stats.poisson(rate).logpmf(k), rtol=1e-12)
    np.testing.assert_array_equal(npy(d.mode), np.floor(rate))
    n, p = np.array([10.0, 10.0, 10.0]), np.array([0.2, 0.5, 0.9])
    b = D.Binomial(f64(n), f64(p))
    k = np.array([0.0, 3.0, 9.0])
    np.testing.assert_allclose(npy(b.log_prob(f64(k))), stats.binom(n, p).logpmf(k), rtol=1e-10)
    np.testing.assert_allclose(npy(b.mean), n * p)
    np.testing.assert_allclose(npy(b.variance), n * p * (1 - p))
    np.testing.assert_allclose(npy(b.entropy()), stats.binom(n, p).entropy(), rtol=1e-10)
    bl = D.Binomial(10, logits=f64(sp.logit(p)))
    np.testing.assert_allclose(npy(bl.log_prob(f64(k))), stats.binom(n, p).logpmf(k), rtol=1e-9)
    np.testing.assert_allclose(npy(D.Binomial(10, f64([0.2, 0.7])).entropy()), ENT_BINOM,
                               rtol=1e-12)
    m = D.Multinomial(6, f64([0.2, 0.5, 0.3]))
    x = np.array([1.0, 3.0, 2.0])
    np.testing.assert_allclose(npy(m.log_prob(f64(x))),
                               stats.multinomial(6, [0.2, 0.5, 0.3]).logpmf(x), rtol=1e-12)
    np.testing.assert_allclose(float(m.entropy()), ENT_MULTI, rtol=1e-12)
    # (PyTorch's lgamma(n + 1) is of an int64 tensor, so float32: hence 1e-7 against scipy)
    np.testing.assert_allclose(float(m.entropy()),
                               stats.multinomial(6, [0.2, 0.5, 0.3]).entropy(), rtol=1e-7)


def test_gammainc_vs_scipy_and_its_x_gradient():
    rng = np.random.default_rng(0)
    a = np.exp(rng.uniform(-3, 5, 200))
    x = np.exp(rng.uniform(-5, 6, 200))
    np.testing.assert_allclose(_samplers._gammainc_np(a, x), sp.gammainc(a, x), rtol=1e-12,
                               atol=1e-300)
    xt = f64(x[:5]).requires_grad_(True)
    _samplers.gammainc(f64(a[:5]), xt).sum().backward()
    np.testing.assert_allclose(npy(xt.grad), stats.gamma(a[:5]).pdf(x[:5]), rtol=1e-10)


# ---- seeded samples equal PyTorch's ---------------------------------------------------------

@pytest.mark.parametrize("seed, make, expected", [
    (0, lambda: D.Gamma(torch.tensor([0.3, 1.0, 2.5, 9.0]), torch.tensor([1.0, 2.0, 0.5, 1.0])),
     GAMMA_S),
    (1, lambda: D.Beta(torch.tensor([0.5, 2.0, 7.0]), torch.tensor([1.5, 0.5, 3.0])), BETA_S),
    (2, lambda: D.Dirichlet(torch.tensor([0.5, 2.0, 7.0])), DIR_S),
    (3, lambda: D.Poisson(torch.tensor([0.5, 4.0, 30.0, 1000.0])), POIS_S),
    (4, lambda: D.Binomial(torch.tensor([10., 100., 1000., 20.]),
                           torch.tensor([0.2, 0.5, 0.7, 0.95])), BINOM_S),
])
def test_seeded_samples_equal_torch(seed, make, expected):
    torch.manual_seed(seed)
    s = make().sample((2,))
    assert s.dtype == torch.float32
    np.testing.assert_array_equal(npy(s), np.array(expected, np.float32))


def test_seeded_cauchy_and_chi2_equal_torch():
    torch.manual_seed(5)
    np.testing.assert_array_equal(npy(D.Cauchy(torch.tensor([0., 1.]), torch.tensor([1., 2.]))
                                      .sample((3,))), np.array(CAUCHY_S, np.float32))
    torch.manual_seed(6)
    np.testing.assert_array_equal(npy(D.Chi2(torch.tensor([1., 5.])).sample((3,))),
                                  np.array(CHI2_S, np.float32))


def test_generator_stream_continues_after_gamma_draw():
    # the block-fetched words are wound back: the next draw is the one after PyTorch's
    torch.manual_seed(0)
    D.Gamma(torch.tensor([0.3, 1.0, 2.5, 9.0]), torch.tensor([1.0, 2.0, 0.5, 1.0])).sample()
    a = npy(torch.rand(3))
    torch.manual_seed(0)
    D.Gamma(torch.tensor([0.3, 1.0, 2.5, 9.0]), torch.tensor([1.0, 2.0, 0.5, 1.0])).sample()
    s = npy(D.Gamma(torch.tensor([0.3, 1.0, 2.5, 9.0]), torch.tensor([1.0, 2.0, 0.5, 1.0]))
            .sample())
    np.testing.assert_array_equal(s, np.array(GAMMA_S[1], np.float32))
    torch.manual_seed(0)
    D.Gamma(torch.tensor([0.3, 1.0, 2.5, 9.0]), torch.tensor([1.0, 2.0, 0.5, 1.0])).sample()
    np.testing.assert_array_equal(npy(torch.rand(3)), a)


# ---- sample moments (loose, fixed seed) -----------------------------------------------------

def test_sample_moments():
    torch.manual_seed(123)
    n = 20000
    checks = [
        (D.Gamma(f64([0.2, 3.0]), f64([1.0, 2.0])), None),
        (D.Beta(f64([0.5, 4.0]), f64([2.0, 1.5])), None),
        (D.Poisson(f64([3.0, 50.0])), None),
        (D.Binomial(f64([7.0, 200.0]), f64([0.3, 0.6])), None),
        (D.StudentT(f64([6.0, 9.0])), None),
    ]
    for d, _ in checks:
        s = npy(d.sample((n,)))
        mean, var = npy(d.mean), npy(d.variance)
        # 5 standard errors of the mean, 10% on the variance
        np.testing.assert_array_less(np.abs(s.mean(0) - mean), 5 * np.sqrt(var / n))
        np.testing.assert_allclose(s.var(0), var, rtol=0.1)
    s = npy(D.Dirichlet(f64([1.0, 2.0, 3.0])).sample((n,)))
    np.testing.assert_allclose(s.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(s.mean(0), [1 / 6, 2 / 6, 3 / 6], atol=0.01)
    c = npy(D.Multinomial(10, f64([0.2, 0.5, 0.3])).sample((5000,)))
    assert (c.sum(-1) == 10).all()
    np.testing.assert_allclose(c.mean(0), [2.0, 5.0, 3.0], atol=0.1)


def test_device_draws_on_host_stream():
    dev = "interpret"
    torch.manual_seed(9)
    a = D.Gamma(torch.tensor([0.5, 3.0], device=dev), torch.tensor([1.0, 1.0], device=dev))
    s1, s2 = a.sample((2000,)), a.sample((2000,))
    assert s1.device.type == dev
    h1 = npy(s1.cpu())
    assert not np.array_equal(h1, npy(s2.cpu()))        # the offset moved on
    np.testing.assert_allclose(h1.mean(0), [0.5, 3.0], rtol=0.1)
    torch.manual_seed(9)
    np.testing.assert_array_equal(npy(a.sample((2000,)).cpu()), h1)   # a seed repeats


# ---- rsample gradients ----------------------------------------------------------------------

def test_gamma_rsample_grad_equals_torch():
    torch.manual_seed(10)
    c = f64([0.3, 1.0, 2.5, 9.0, 20.0]).requires_grad_(True)
    x = D.Gamma(c, f64(2.0)).rsample()
    x.sum().backward()
    np.testing.assert_allclose(npy(x), GAMMA_RX, rtol=1e-15)
    np.testing.assert_allclose(npy(c.grad), GAMMA_G, rtol=1e-12)


def test_beta_dirichlet_rsample_grads_equal_torch():
    torch.manual_seed(11)
    c1 = f64([0.5, 2.0, 7.0, 10.]).requires_grad_(True)
    c0 = f64([1.5, 0.5, 3.0, 12.]).requires_grad_(True)
    x = D.Beta(c1, c0).rsample()
    x.sum().backward()
    np.testing.assert_allclose(npy(x), BETA_RX, rtol=1e-14)
    np.testing.assert_allclose(npy(c1.grad), BETA_G1, rtol=1e-10)
    np.testing.assert_allclose(npy(c0.grad), BETA_G0, rtol=1e-10)
    torch.manual_seed(12)
    c = f64([[0.5, 2.0, 7.0], [1., 1., 1.]]).requires_grad_(True)
    x = D.Dirichlet(c).rsample()
    (x * f64([1., 2., 3.])).sum().backward()
    np.testing.assert_allclose(npy(x), DIR_RX, rtol=1e-13)
    np.testing.assert_allclose(npy(c.grad), DIR_G, rtol=1e-10)


def _implicit(cdf, x, p, h=1e-6):
    """dx/dp = -(dF/dp) / (dF/dx) by central differences of the CDF."""
    dfdp = (cdf(x, p + h) - cdf(x, p - h)) / (2 * h)
    dfdx = (cdf(x + h, p) - cdf(x - h, p)) / (2 * h)
    return -dfdp / dfdx


def test_gamma_grad_vs_cdf_finite_differences():
    # each branch of the approximation: small x (series), alpha > 8 (saddle point, both near
    # and away from the mean), and the rational fit
    alpha = np.array([0.3, 0.5, 2.0, 3.0, 5.0, 12.0, 12.0, 30.0, 1.5])
    x = np.array([0.05, 0.6, 1.5, 4.0, 9.0, 12.5, 6.0, 40.0, 0.9])
    got = npy(_samplers._standard_gamma_grad(f64(alpha), f64(x)))
    ref = _implicit(lambda x, a: sp.gammainc(a, x), x, alpha)
    np.testing.assert_allclose(got, ref, rtol=5e-4)


def test_beta_rsample_grad_vs_cdf_finite_differences():
    # Beta's gradient comes from dirichlet_grad and _Dirichlet's backward; end to end it is
    # dx/dc = -(dI_x/dc) / pdf(x) for each concentration (PyTorch's approximations: ~1e-3)
    a, b = np.array([0.5, 2.0, 7.0, 10.]), np.array([1.5, 0.5, 3.0, 12.])
    torch.manual_seed(11)
    c1, c0 = f64(a).requires_grad_(True), f64(b).requires_grad_(True)
    x = D.Beta(c1, c0).rsample()
    x.sum().backward()
    xs = npy(x)
    ref1 = _implicit(lambda x, p: sp.betainc(p, b, x), xs, a)
    ref0 = _implicit(lambda x, p: sp.betainc(a, p, x), xs, b)
    np.testing.assert_allclose(npy(c1.grad), ref1, rtol=1e-3)
    np.testing.assert_allclose(npy(c0.grad), ref0, rtol=1e-3)


# ---- KL ---------------------------------------------------------------------------------------

PAIRS = {
    "beta_beta": lambda: (D.Beta(f64([0.5, 2.]), f64([1.5, 3.])), D.Beta(f64([1., 4.]), f64([2., 0.7]))),
    "gamma_gamma": lambda: (D.Gamma(f64([0.5, 2.]), f64([1.5, 3.])), D.Gamma(f64([1., 4.]), f64([2., 0.7]))),
    "dir_dir": lambda: (D.Dirichlet(f64([[0.5, 2., 3.]])), D.Dirichlet(f64([[1., 1., 4.]]))),
    "pois_pois": lambda: (D.Poisson(f64([0.5, 20.])), D.Poisson(f64([2., 7.]))),
    "binom_binom": lambda: (D.Binomial(f64([10., 12.]), f64([0.3, 0.6])), D.Binomial(f64([10., 10.]), f64([0.5, 0.2]))),
    "gumbel_gumbel": lambda: (D.Gumbel(f64([0., 1.]), f64([1., 2.])), D.Gumbel(f64([1., -1.]), f64([0.5, 2.]))),
    "cauchy_cauchy": lambda: (D.Cauchy(f64([0., 1.]), f64([1., 2.])), D.Cauchy(f64([1., -1.]), f64([0.5, 2.]))),
    "hn_hn": lambda: (D.HalfNormal(f64([1., 2.])), D.HalfNormal(f64([0.5, 3.]))),
    "pareto_pareto": lambda: (D.Pareto(f64([1., 2.]), f64([3., 2.])), D.Pareto(f64([1.5, 1.]), f64([2., 4.]))),
    "beta_gamma": lambda: (D.Beta(f64([0.5, 2.]), f64([1.5, 3.])), D.Gamma(f64([1., 4.]), f64([2., 0.7]))),
    "beta_normal": lambda: (D.Beta(f64([0.5, 2.]), f64([1.5, 3.])), D.Normal(f64([0., 1.]), f64([2., 0.7]))),
    "beta_uniform": lambda: (D.Beta(f64([0.5, 2.]), f64([1.5, 3.])), D.Uniform(f64([0., 0.2]), f64([1., 2.]))),
    "gamma_exp": lambda: (D.Gamma(f64([0.5, 2.]), f64([1.5, 3.])), D.Exponential(f64([1., 4.]))),
    "gamma_normal": lambda: (D.Gamma(f64([0.5, 2.]), f64([1.5, 3.])), D.Normal(f64([0., 1.]), f64([2., 0.7]))),
    "gamma_gumbel": lambda: (D.Gamma(f64([0.5, 2.]), f64([1.5, 3.])), D.Gumbel(f64([0., 1.]), f64([2., 0.7]))),
    "exp_gamma": lambda: (D.Exponential(f64([1., 4.])), D.Gamma(f64([0.5, 2.]), f64([1.5, 3.]))),
    "uniform_gamma": lambda: (D.Uniform(f64([0., 0.2]), f64([1., 2.])), D.Gamma(f64([0.5, 2.]), f64([1.5, 3.]))),
    "uniform_beta": lambda: (D.Uniform(f64([0., 0.2]), f64([1., 0.9])), D.Beta(f64([0.5, 2.]), f64([1.5, 3.]))),
    "pareto_gamma": lambda: (D.Pareto(f64([1., 2.]), f64([3., 0.5])), D.Gamma(f64([0.5, 2.]), f64([1.5, 3.]))),
    "gumbel_normal": lambda: (D.Gumbel(f64([0., 1.]), f64([1., 2.])), D.Normal(f64([0., 1.]), f64([2., 0.7]))),
    "normal_gumbel": lambda: (D.Normal(f64([0., 1.]), f64([2., 0.7])), D.Gumbel(f64([0., 1.]), f64([1., 2.]))),
    "bern_pois": lambda: (D.Bernoulli(f64([0.3, 0.8])), D.Poisson(f64([0.5, 2.]))),
    "normal_gamma": lambda: (D.Normal(f64([0., 1.]), f64([2., 0.7])), D.Gamma(f64([0.5, 2.]), f64([1.5, 3.]))),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_kl_equals_torch(name):
    p, q = PAIRS[name]()
    np.testing.assert_allclose(npy(D.kl_divergence(p, q)), KL[name], rtol=1e-12)


def test_kl_gamma_gamma_vs_quadrature():
    # an independent check of one closed form: KL = E_p[log p - log q] by scipy quadrature
    from scipy import integrate
    p, q = stats.gamma(2.0, scale=1 / 3.0), stats.gamma(4.0, scale=1 / 0.7)
    ref = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), 0, np.inf)[0]
    np.testing.assert_allclose(KL["gamma_gamma"][1], ref, rtol=1e-7)


# ---- validation, reprs, expand ---------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: D.Gamma(f64([-1.0]), f64([1.0])),
    lambda: D.Beta(f64([0.5]), f64([0.0])),
    lambda: D.Dirichlet(f64([1.0, -2.0])),
    lambda: D.Poisson(f64([-0.5])),
    lambda: D.Binomial(f64([2.5]), f64([0.5])),
    lambda: D.Binomial(f64([3.0]), f64([1.5])),
    lambda: D.StudentT(f64([0.0])),
    lambda: D.HalfNormal(f64([0.0])),
    lambda: D.Cauchy(f64([0.0]), f64([-1.0])),
    lambda: D.Gumbel(f64([0.0]), f64([-1.0])),
    lambda: D.Chi2(f64([-3.0])),
    lambda: D.Multinomial(3, f64([0.5, -0.5])),
])
def test_bad_parameters_raise_value_error(make):
    with pytest.raises(ValueError, match="Expected parameter"):
        make()


def test_bad_values_and_arguments():
    with pytest.raises(ValueError, match="support"):
        D.Gamma(f64([1.0]), f64([1.0])).log_prob(f64([-1.0]))
    with pytest.raises(ValueError, match="support"):
        D.Beta(f64([1.0]), f64([1.0])).log_prob(f64([1.5]))
    with pytest.raises(ValueError, match="support"):
        D.Poisson(f64([1.0])).log_prob(f64([1.5]))
    with pytest.raises(ValueError, match="support"):
        D.Binomial(f64([3.0]), f64([0.5])).log_prob(f64([4.0]))
    with pytest.raises(ValueError, match="support"):
        D.Dirichlet(f64([1.0, 1.0])).log_prob(f64([0.5, 0.7]))
    with pytest.raises(ValueError, match="at least one-dimensional"):
        D.Dirichlet(f64(1.0))
    with pytest.raises(ValueError, match="Either `probs` or `logits`"):
        D.Binomial(3)
    with pytest.raises(NotImplementedError, match="inhomogeneous"):
        D.Multinomial(f64([3.0]), f64([0.5, 0.5]))
    with pytest.raises(NotImplementedError):
        D.kl_divergence(D.Binomial(f64([5.0]), f64([0.5])), D.Binomial(f64([6.0]), f64([0.5])))


def test_reprs_and_flags():
    assert repr(D.Gamma(1.0, 2.0)) == "Gamma(concentration: 1.0, rate: 2.0)"
    assert repr(D.Gamma(torch.ones(3), 2.0)) == "Gamma(concentration: torch.Size([3]), rate: torch.Size([3]))"
    assert repr(D.Beta(0.5, 2.0)) == "Beta()"
    assert repr(D.Dirichlet(torch.ones(2))) == "Dirichlet(concentration: torch.Size([2]))"
    assert repr(D.Poisson(torch.tensor(2.0))) == "Poisson(rate: 2.0)"
    assert repr(D.Binomial(3, torch.tensor(0.5))) == "Binomial(total_count: 3.0, probs: 0.5)"
    assert [c.has_rsample for c in (D.Gamma, D.Beta, D.Dirichlet, D.Chi2, D.StudentT,
                                    D.HalfNormal, D.Cauchy, D.Poisson, D.Binomial)] == \
        [True] * 7 + [False] * 2
    assert D.Binomial.has_enumerate_support


def test_expand_shapes_and_values():
    g = D.Gamma(f64([0.5, 2.0]), f64([1.0, 3.0])).expand((4, 2))
    assert g.batch_shape == (4, 2) and g.sample((3,)).shape == (3, 4, 2)
    d = D.Dirichlet(f64([1.0, 2.0, 3.0])).expand((5,))
    assert d.batch_shape == (5,) and d.event_shape == (3,)
    assert d.rsample((2,)).shape == (2, 5, 3)
    b = D.Beta(f64([0.5]), f64([2.0])).expand((3,))
    np.testing.assert_allclose(npy(b.log_prob(f64([0.2, 0.3, 0.4]))),
                               stats.beta(0.5, 2.0).logpdf([0.2, 0.3, 0.4]), rtol=1e-12)
    m = D.Multinomial(4, f64([0.25, 0.75])).expand((2,))
    assert m.sample((3,)).shape == (3, 2, 2)


def test_top_level_samplers_and_incomplete_gamma_match_pytorch():
    # printed by torch 2.13 after manual_seed(0)
    torch.manual_seed(0)
    assert torch.poisson(torch.tensor([1.0, 4.0, 20.0, 0.0])).tolist() == [2.0, 5.0, 17.0, 0.0]
    torch.manual_seed(0)
    assert torch.binomial(torch.tensor([10.0, 5.0]), torch.tensor([0.3, 0.9])).tolist() == \
        [6.0, 5.0]
    torch.manual_seed(0)
    np.testing.assert_allclose(torch._standard_gamma(torch.tensor([0.5, 2.0])).numpy(),
                               [0.0008, 0.6315], atol=5e-5)
    assert torch.poisson(torch.tensor(3.0)).shape == ()          # a 0-d rate stays 0-d
    import scipy.special as sp
    a, x = np.array([1.0, 2.0, 0.5, 2.0]), np.array([0.5, 3.0, 1e-3, 50.0])
    p = torch.special.gammainc(torch.tensor(a), torch.tensor(x))
    q = torch.igammac(torch.tensor(a), torch.tensor(x))
    np.testing.assert_allclose(p.numpy(), sp.gammainc(a, x), rtol=1e-13)
    np.testing.assert_allclose(q.numpy(), sp.gammaincc(a, x), rtol=1e-12)   # tails kept
    assert q[3].item() > 0                                         # 51 e^-50, not 1 - P = 0
    assert torch.tensor(a).igamma(torch.tensor(x)).tolist() == p.tolist()
    xg = torch.tensor(x, requires_grad=True)
    torch.special.gammaincc(torch.tensor(a), xg).sum().backward()
    np.testing.assert_allclose(xg.grad.numpy(), -np.exp((a - 1) * np.log(x) - x -
                                                        sp.gammaln(a)), rtol=1e-12)
