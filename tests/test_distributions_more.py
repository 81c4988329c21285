"""torch.distributions beyond the first four: Exponential, Laplace, LogNormal (a Normal through
ExpTransform), MultivariateNormal, OneHotCategorical, Geometric, Independent, and
kl_divergence/register_kl. Seeded samples against PyTorch 2.13's printed values (the cpu
generator is PyTorch's and the draws go through the same calls), densities and moments
against float64 NumPy formulas, gradients by finite differences, validation as PyTorch."""
import math

import numpy as np
import pytest

import framework as torch
from conftest import to_np

D = torch.distributions
f64 = torch.float64
COV = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]])
TRIL = np.array([[1.0, 0, 0], [0.5, 2.0, 0], [-0.3, 0.2, 0.7]])


def t(x, dtype=None, grad=False):
    # NumPy arrays become the default dtype unless asked otherwise (float32 like torch's lists)
    x = x.tolist() if isinstance(x, np.ndarray) else x
    return torch.tensor(x, dtype=dtype, requires_grad=grad)


def close(got, want, rtol=1e-6, atol=1e-7):
    np.testing.assert_allclose(to_np(got.detach()), np.asarray(want), rtol=rtol, atol=atol)


# ---- seeded samples: PyTorch 2.13's values ------------------------------------------------------

def test_seeded_samples_equal_torch():
    # exponential_ and uniform_ draws then the same float32 arithmetic: equal to the last bit
    # where no transcendental follows the draw, else to float32 rounding
    torch.manual_seed(0)
    assert D.Exponential(t([0.5, 2.0])).sample((3,)).tolist() == \
        [[7.016652584075928, 0.6151923537254333], [1.230088233947754, 1.267559289932251],
         [2.071410894393921, 0.7830644249916077]]
    torch.manual_seed(0)
    assert D.Geometric(t([0.3, 0.8])).sample((4,)).tolist() == \
        [[1.0, 0.0], [6.0, 1.0], [3.0, 0.0], [1.0, 0.0]]
    torch.manual_seed(0)
    close(D.Laplace(t([0.0, 1.0]), t([1.0, 0.5])).rsample((3,)),
          [[-0.007514926604926586, 1.3844135999679565], [-1.7318599224090576, 0.33421260118484497],
           [-0.4863838851451874, 1.1560949087142944]])
    torch.manual_seed(0)
    close(D.LogNormal(t([0.0, 0.5]), t([1.0, 0.3])).sample((3,)),
          [[4.669239044189453, 1.5097911357879639], [0.11317846179008484, 1.9552720785140991],
           [0.33806321024894714, 1.0837435722351074]])
    torch.manual_seed(0)
    close(D.MultivariateNormal(t([1.0, -1.0, 0.5]), scale_tril=t(TRIL)).rsample((2,)),
          [[2.5409960746765137, -0.8163597583770752, -1.5461373329162598],
           [1.5684312582015991, -2.884829044342041, -0.8664506673812866]])
    torch.manual_seed(0)
    close(D.MultivariateNormal(t([1.0, -1.0, 0.5]), covariance_matrix=t(COV)).sample((2,)),
          [[3.17929744720459, -0.9598560929298401, -0.7825179100036621],
           [1.8038831949234009, -1.939257264137268, -0.1558551788330078]])


def test_sample_shapes_dtypes_and_no_grad():
    rate = t([0.5, 2.0], grad=True)
    e = D.Exponential(rate)
    assert e.sample((4, 5)).shape == (4, 5, 2) and not e.sample().requires_grad
    assert e.rsample().requires_grad
    g = D.Geometric(t([0.3, 0.8], dtype=f64))
    assert g.sample((3,)).dtype is f64 and g.sample((3,)).shape == (3, 2)
    oh = D.OneHotCategorical(t([[0.1, 0.6, 0.3], [0.5, 0.25, 0.25]]))
    s = oh.sample((7,))
    assert s.shape == (7, 2, 3) and s.dtype is torch.float32
    assert (s.sum(-1) == 1).all() and ((s == 0) | (s == 1)).all()
    m = D.MultivariateNormal(torch.zeros(4, 3), scale_tril=t(TRIL))
    assert m.rsample((5,)).shape == (5, 4, 3) and m.batch_shape == (4,) and m.event_shape == (3,)


def test_large_sample_moments():
    torch.manual_seed(1)
    for d in (D.Exponential(t(2.0, f64)), D.Laplace(t(1.0, f64), t(0.5, f64)),
              D.LogNormal(t(0.2, f64), t(0.4, f64)), D.Geometric(t(0.3, f64))):
        x = to_np(d.sample((40000,)))
        assert abs(x.mean() - d.mean.item()) < 5 * d.stddev.item() / 200, type(d).__name__
        assert abs(x.var() / d.variance.item() - 1) < 0.1, type(d).__name__
    m = D.MultivariateNormal(t([1.0, -1.0, 0.5], f64), covariance_matrix=t(COV, f64))
    x = to_np(m.sample((40000,)))
    np.testing.assert_allclose(np.cov(x.T), COV, atol=0.05)


# ---- densities, cdfs and moments vs float64 NumPy -----------------------------------------------

def test_exponential_values():
    r, x = np.array([0.5, 2.0, 3.0]), np.array([0.3, 1.0, 2.0])
    d = D.Exponential(t(r, f64))
    close(d.log_prob(t(x, f64)), np.log(r) - r * x, rtol=1e-12)
    close(d.cdf(t(x, f64)), 1 - np.exp(-r * x), rtol=1e-12)
    close(d.icdf(t([0.1, 0.5, 0.9], f64)), -np.log1p(-np.array([0.1, 0.5, 0.9])) / r, rtol=1e-12)
    close(d.entropy(), 1 - np.log(r), rtol=1e-12)
    close(d.mean, 1 / r, rtol=1e-12)
    close(d.variance, r ** -2.0, rtol=1e-12)
    close(d.stddev, 1 / r, rtol=1e-12)
    assert d.mode.tolist() == [0.0, 0.0, 0.0]


def test_laplace_values():
    loc, b, x = np.array([0.0, 1.0]), np.array([1.0, 0.5]), np.array([0.5, -1.0])
    d = D.Laplace(t(loc, f64), t(b, f64))
    close(d.log_prob(t(x, f64)), -np.log(2 * b) - np.abs(x - loc) / b, rtol=1e-12)
    cdf = np.where(x < loc, 0.5 * np.exp((x - loc) / b), 1 - 0.5 * np.exp(-(x - loc) / b))
    close(d.cdf(t(x, f64)), cdf, rtol=1e-12)
    close(d.icdf(d.cdf(t(x, f64))), x, rtol=1e-12)
    close(d.entropy(), 1 + np.log(2 * b), rtol=1e-12)
    close(d.variance, 2 * b ** 2, rtol=1e-12)
    close(d.stddev, math.sqrt(2) * b, rtol=1e-12)
    assert d.mean.tolist() == d.mode.tolist() == [0.0, 1.0]


def test_lognormal_values():
    mu, s, x = np.array([0.0, 0.5]), np.array([1.0, 0.3]), np.array([0.5, 2.0])
    d = D.LogNormal(t(mu, f64), t(s, f64))
    assert isinstance(d, D.TransformedDistribution)
    assert isinstance(d.transforms[0], D.transforms.ExpTransform)
    lp = -(np.log(x) - mu) ** 2 / (2 * s ** 2) - np.log(s) - 0.5 * np.log(2 * np.pi) - np.log(x)
    close(d.log_prob(t(x, f64)), lp, rtol=1e-12)
    cdf = 0.5 * (1 + np.array([math.erf(v) for v in (np.log(x) - mu) / (s * math.sqrt(2))]))
    close(d.cdf(t(x, f64)), cdf, rtol=1e-12)
    close(d.icdf(t(cdf, f64)), x, rtol=1e-10)
    close(d.mean, np.exp(mu + s ** 2 / 2), rtol=1e-12)
    close(d.mode, np.exp(mu - s ** 2), rtol=1e-12)
    close(d.variance, np.expm1(s ** 2) * np.exp(2 * mu + s ** 2), rtol=1e-12)
    close(d.entropy(), 0.5 + 0.5 * np.log(2 * np.pi) + np.log(s) + mu, rtol=1e-12)


def test_geometric_values():
    p, k = np.array([0.3, 0.8]), np.array([0.0, 3.0])
    for d in (D.Geometric(t(p, f64)), D.Geometric(logits=t(np.log(p / (1 - p)), f64))):
        close(d.log_prob(t(k, f64)), k * np.log1p(-p) + np.log(p), rtol=1e-12)
        close(d.entropy(), -(p * np.log(p) + (1 - p) * np.log1p(-p)) / p, rtol=1e-12)
        close(d.mean, 1 / p - 1, rtol=1e-12)
        close(d.variance, (1 / p - 1) / p, rtol=1e-12)
    # p = 1: all mass at 0, log_prob(0) = 0 (not NaN from 0 * log 0)
    assert D.Geometric(t([1.0])).log_prob(t([0.0])).tolist() == [0.0]
    # PyTorch 2.13, float32
    close(D.Geometric(t([0.3, 0.8])).entropy(), [2.0362143516540527, 0.6255030035972595])


def _np_mvn_logpdf(x, mu, cov):
    diff = x - mu
    _, logdet = np.linalg.slogdet(cov)
    m = np.einsum("...i,ij,...j->...", diff, np.linalg.inv(cov), diff)
    return -0.5 * (mu.shape[-1] * np.log(2 * np.pi) + logdet + m)


@pytest.mark.parametrize("param", ["covariance_matrix", "precision_matrix", "scale_tril"])
def test_multivariate_normal_parameterisations_agree(param):
    mu = np.array([1.0, -1.0, 0.5])
    value = {"covariance_matrix": COV, "precision_matrix": np.linalg.inv(COV),
             "scale_tril": np.linalg.cholesky(COV)}[param]
    d = D.MultivariateNormal(t(mu, f64), **{param: t(value, f64)})
    x = np.array([[0.5, 0.0, 1.0], [1.0, -1.0, 0.5], [3.0, 2.0, -1.0]])
    close(d.log_prob(t(x, f64)), _np_mvn_logpdf(x, mu, COV), rtol=1e-10)
    close(d.entropy(), 0.5 * (3 * (1 + np.log(2 * np.pi)) + np.linalg.slogdet(COV)[1]), rtol=1e-12)
    close(d.covariance_matrix, COV, rtol=1e-10, atol=1e-12)
    close(d.precision_matrix, np.linalg.inv(COV), rtol=1e-10, atol=1e-12)
    close(d.scale_tril, np.linalg.cholesky(COV), rtol=1e-10, atol=1e-12)
    close(d.variance, np.diag(COV), rtol=1e-12)
    assert d.mean.tolist() == d.mode.tolist() == mu.tolist()


def test_multivariate_normal_float32_equals_torch():
    d = D.MultivariateNormal(t([1.0, -1.0, 0.5]), covariance_matrix=t(COV, torch.float32))
    close(d.log_prob(t([[0.5, 0.0, 1.0], [1.0, -1.0, 0.5]])),
          [-4.003519535064697, -2.6773178577423096])
    assert d.entropy().item() == pytest.approx(4.1773176193237305, rel=1e-6)
    close(d.scale_tril, [[1.4142135381698608, 0.0, 0.0], [0.2121320366859436, 0.9772409796714783,
                                                             0.0],
                         [0.0707106813788414, -0.22000713646411896, 0.6682790517807007]])


def test_multivariate_normal_batches_broadcast():
    # one scale_tril for a batch of 4 means, and values with an extra sample dim
    mu = np.arange(12.0).reshape(4, 3) / 10
    d = D.MultivariateNormal(t(mu, f64), scale_tril=t(TRIL, f64))
    x = np.random.RandomState(0).randn(5, 4, 3)
    lp = d.log_prob(t(x, f64))
    assert lp.shape == (5, 4)
    close(lp, _np_mvn_logpdf(x, mu, TRIL @ TRIL.T), rtol=1e-10)
    assert d.entropy().shape == (4,)
    e = D.MultivariateNormal(t([0.0, 0.0]), covariance_matrix=t(np.eye(2))).expand((3,))
    assert e.batch_shape == (3,) and e.log_prob(torch.zeros(3, 2)).shape == (3,)


def test_onehot_categorical():
    probs = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    d = D.OneHotCategorical(t(probs, f64))
    assert d.batch_shape == (2,) and d.event_shape == (3,)
    close(d.log_prob(t([[0., 1., 0.], [1., 0., 0.]], f64)), np.log([0.5, 0.6]), rtol=1e-12)
    close(d.entropy(), -(probs * np.log(probs)).sum(-1), rtol=1e-12)
    close(d.mean, probs, rtol=1e-12)
    close(d.variance, probs * (1 - probs), rtol=1e-12)
    assert d.mode.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    sup = d.enumerate_support()
    assert sup.shape == (3, 2, 3) and sup[:, 0].tolist() == np.eye(3).tolist()
    assert d.enumerate_support(expand=False).shape == (3, 1, 3)
    lg = D.OneHotCategorical(logits=t(np.log(probs), f64))
    close(lg.probs, probs, rtol=1e-12)
    # straight-through: one-hot forward values, the probabilities' gradient
    logits = t([0.1, 0.2, 0.3], f64, grad=True)
    st = D.OneHotCategoricalStraightThrough(logits=logits)
    (st.rsample() * t([1.0, 2.0, 3.0], f64)).sum().backward()
    p = np.exp([0.1, 0.2, 0.3]) / np.exp([0.1, 0.2, 0.3]).sum()
    w = np.array([1.0, 2.0, 3.0])
    close(logits.grad, p * (w - (p * w).sum()), rtol=1e-12)


def test_independent():
    loc, scale = np.array([[0., 1.], [2., 3.]]), np.array([[1., 2.], [0.5, 1.]])
    base = D.Normal(t(loc, f64), t(scale, f64))
    d = D.Independent(base, 1)
    assert d.batch_shape == (2,) and d.event_shape == (2,) and d.has_rsample
    x = t([[0.5, 0.0], [1.0, 2.0]], f64)
    close(d.log_prob(x), to_np(base.log_prob(x)).sum(-1), rtol=1e-12)
    close(d.entropy(), to_np(base.entropy()).sum(-1), rtol=1e-12)
    assert D.Independent(base, 2).log_prob(x).shape == ()
    assert repr(d.support) == "IndependentConstraint(Real(), 1)"
    e = d.expand((3, 2))
    assert e.batch_shape == (3, 2) and e.base_dist.batch_shape == (3, 2, 2)
    assert repr(d) == "Independent(Normal(loc: torch.Size([2, 2]), scale: torch.Size([2, 2])), 1)"
    with pytest.raises(NotImplementedError, match="cartesian product"):
        D.Independent(D.Bernoulli(t([0.5, 0.5])), 1).enumerate_support()


# ---- reprs, constraints, expand -----------------------------------------------------------------

def test_reprs_and_supports_match_torch():
    assert repr(D.Geometric(logits=t(0.3))) == "Geometric(logits: 0.30000001192092896)"
    assert repr(D.Exponential(t([1.0, 2.0]))) == "Exponential(rate: torch.Size([2]))"
    assert repr(D.Laplace(0.0, 1.0)) == "Laplace(loc: 0.0, scale: 1.0)"
    assert repr(D.MultivariateNormal(torch.zeros(2), scale_tril=torch.eye(2))) == \
        "MultivariateNormal(loc: torch.Size([2]), scale_tril: torch.Size([2, 2]))"
    assert repr(D.OneHotCategorical(t([0.5, 0.5]))) == "OneHotCategorical()"
    assert repr(D.LogNormal(0.0, 1.0)) == "LogNormal()"
    supports = {D.Exponential(1.0): "GreaterThanEq(lower_bound=0.0)",
                D.Laplace(0.0, 1.0): "Real()",
                D.LogNormal(0.0, 1.0): "GreaterThan(lower_bound=0.0)",
                D.Geometric(0.5): "IntegerGreaterThan(lower_bound=0)",
                D.OneHotCategorical(t([0.5, 0.5])): "OneHot()",
                D.MultivariateNormal(torch.zeros(2), torch.eye(2)):
                    "IndependentConstraint(Real(), 1)"}
    for d, s in supports.items():
        assert repr(d.support) == s, type(d).__name__
    assert {k: repr(v) for k, v in D.MultivariateNormal.arg_constraints.items()} == {
        "loc": "IndependentConstraint(Real(), 1)", "covariance_matrix": "PositiveDefinite()",
        "precision_matrix": "PositiveDefinite()", "scale_tril": "LowerCholesky()"}
    assert D.constraints.positive.check(t([0.0, 1.0])).tolist() == [False, True]
    assert D.constraints.simplex.check(t([[0.5, 0.5], [0.5, 0.6]])).tolist() == [True, False]


@pytest.mark.parametrize("make", [
    lambda: D.Exponential(t([0.5, 2.0])), lambda: D.Laplace(t([0.0, 1.0]), 1.0),
    lambda: D.LogNormal(t([0.0, 1.0]), 0.5), lambda: D.Geometric(t([0.3, 0.5])),
    lambda: D.Geometric(logits=t([0.3, 0.5])), lambda: D.OneHotCategorical(t([[0.3, 0.7]] * 2)),
    lambda: D.MultivariateNormal(torch.zeros(2, 3), covariance_matrix=torch.eye(3)),
])
def test_expand_broadcasts_the_batch(make):
    d = make()
    e = d.expand((4,) + tuple(d.batch_shape))
    assert type(e) is type(d) and e.batch_shape == (4,) + tuple(d.batch_shape)
    assert e.event_shape == d.event_shape
    x = d.sample()
    np.testing.assert_allclose(to_np(e.log_prob(x)), np.broadcast_to(to_np(d.log_prob(x)),
                                                                       e.batch_shape), rtol=1e-6)
    assert e.sample((2,)).shape == (2,) + tuple(e.batch_shape) + tuple(e.event_shape)


# ---- validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make,msg", [
    (lambda: D.Exponential(t([1.0, -1.0])),
     r"Expected parameter rate \(Tensor of shape \(2,\)\) of distribution "
     r"Exponential\(rate: torch.Size\(\[2\]\)\) to satisfy the constraint "
     r"GreaterThan\(lower_bound=0.0\), but found invalid values"),
    (lambda: D.Laplace(0.0, -1.0), r"parameter scale .* GreaterThan\(lower_bound=0.0\)"),
    (lambda: D.Laplace(t([0.0, float("nan")]), 1.0), r"parameter loc .* constraint Real\(\)"),
    (lambda: D.LogNormal(0.0, 0.0), r"of distribution Normal\(loc: 0.0, scale: 0.0\)"),
    (lambda: D.Geometric(t([0.3, 1.5])),
     r"parameter probs .* Interval\(lower_bound=0.0, upper_bound=1.0\)"),
    (lambda: D.Geometric(t([0.3, 0.0])), r"probs .* to be positive but found invalid values"),
    (lambda: D.Geometric(), r"Either `probs` or `logits` must be specified, but not both"),
    (lambda: D.OneHotCategorical(t([0.3, -0.1, 0.8])), r"constraint Simplex\(\)"),
    (lambda: D.MultivariateNormal(torch.zeros(2)),
     "Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified"),
    (lambda: D.MultivariateNormal(t(0.0), covariance_matrix=torch.eye(2)),
     "loc must be at least one-dimensional"),
    (lambda: D.MultivariateNormal(torch.zeros(2), covariance_matrix=torch.ones(2)),
     "covariance_matrix must be at least two-dimensional"),
    (lambda: D.MultivariateNormal(torch.zeros(2), covariance_matrix=t([[1.0, 2.0], [2.0, 1.0]])),
     r"covariance_matrix .* constraint PositiveDefinite\(\)"),
    (lambda: D.MultivariateNormal(torch.zeros(2), covariance_matrix=t([[1.0, 0.5], [0.2, 1.0]])),
     r"PositiveDefinite\(\)"),                                     # not symmetric
    (lambda: D.MultivariateNormal(torch.zeros(2), scale_tril=t([[1.0, 0.5], [0.2, 1.0]])),
     r"scale_tril .* constraint LowerCholesky\(\)"),
    (lambda: D.MultivariateNormal(torch.zeros(2), scale_tril=t([[1.0, 0.0], [0.2, -1.0]])),
     r"LowerCholesky\(\)"),                                        # negative diagonal
    (lambda: D.Independent(D.Normal(0.0, 1.0), 1),
     r"Expected reinterpreted_batch_ndims <= len\(base_distribution.batch_shape\), actual 1 vs 0"),
    (lambda: D.Exponential(1.0).log_prob(t([-1.0])),
     r"to be within the support \(GreaterThanEq\(lower_bound=0.0\)\)"),
    (lambda: D.Geometric(0.5).log_prob(t([1.5])), r"IntegerGreaterThan\(lower_bound=0\)"),
    (lambda: D.OneHotCategorical(t([0.3, 0.7])).log_prob(t([1.0, 1.0])), r"support \(OneHot\(\)\)"),
    (lambda: D.MultivariateNormal(torch.zeros(2), torch.eye(2)).log_prob(torch.zeros(3)),
     r"The right-most size of value must match event_shape: torch.Size\(\[3\]\) vs "
     r"torch.Size\(\[2\]\)"),
    (lambda: D.LogNormal(0.0, 1.0).log_prob(t([-1.0])),
     r"support \(GreaterThan\(lower_bound=0.0\)\) of the distribution LogNormal\(\)"),
    (lambda: D.Laplace(torch.zeros(3), 1.0).log_prob(torch.zeros(2)),
     r"Value is not broadcastable with batch_shape\+event_shape"),
    (lambda: D.Exponential(1.0).log_prob(2.0), "The value argument to log_prob must be a Tensor"),
])
def test_bad_arguments_raise_value_error(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()


def test_validate_args_false_skips_checks():
    d = D.Exponential(t([-1.0]), validate_args=False)
    assert math.isnan(d.log_prob(t([1.0])).item())                # log(-1): NaN, no error
    e = D.Exponential(1.0, validate_args=False)
    assert e.log_prob(t([-1.0])).item() == 1.0                   # outside the support, unchecked
    D.Distribution.set_default_validate_args(False)
    try:
        D.Laplace(0.0, -1.0)                                     # no error
    finally:
        D.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError):
        D.Laplace(0.0, -1.0)


# ---- gradients ----------------------------------------------------------------------------------

def _fd_check(fn, *args, eps=1e-6, rtol=1e-5, atol=1e-8):
    """fn(*args) (a scalar) differentiated by autograd and by central differences."""
    xs = [t(a, f64, grad=True) for a in args]
    fn(*xs).backward()
    for i, a in enumerate(args):
        a = np.asarray(a, dtype=np.float64)
        num = np.zeros_like(a)
        for j in np.ndindex(a.shape):
            hi, lo = a.copy(), a.copy()
            hi[j] += eps
            lo[j] -= eps
            f = [fn(*[t(h if k == i else b, f64) for k, b in enumerate(args)]).item()
                 for h in (hi, lo)]
            num[j] = (f[0] - f[1]) / (2 * eps)
        np.testing.assert_allclose(to_np(xs[i].grad), num, rtol=rtol, atol=atol, err_msg=f"arg {i}")


X2 = t([0.3, 1.7], f64)


@pytest.mark.parametrize("name,fn,args", [
    ("exponential", lambda r: D.Exponential(r).log_prob(X2).sum() + D.Exponential(r).entropy().sum()
     + D.Exponential(r).cdf(X2).sum(), [[0.5, 2.0]]),
    ("laplace", lambda m, s: D.Laplace(m, s).log_prob(X2).sum() + D.Laplace(m, s).cdf(X2).sum(),
     [[0.0, 1.0], [1.0, 0.5]]),
    ("lognormal", lambda m, s: D.LogNormal(m, s).log_prob(X2).sum() + D.LogNormal(m, s).mean.sum(),
     [[0.0, 1.0], [1.0, 0.5]]),
    ("geometric", lambda p: D.Geometric(p).log_prob(t([0.0, 3.0], f64)).sum()
     + D.Geometric(p).entropy().sum(), [[0.3, 0.8]]),
    ("onehot", lambda lg: D.OneHotCategorical(logits=lg).log_prob(t([0., 1., 0.], f64))
     + D.OneHotCategorical(logits=lg).entropy(), [[0.2, 0.5, 0.3]]),
    ("mvn-cov", lambda m, c: D.MultivariateNormal(m, covariance_matrix=(c + c.mT) / 2)
     .log_prob(t([[0.5, 0.0, 1.0], [1.0, -1.0, 0.5]], f64)).sum(), [[1.0, -1.0, 0.5], COV]),
    ("mvn-prec", lambda m, c: D.MultivariateNormal(m, precision_matrix=(c + c.mT) / 2)
     .log_prob(t([[0.5, 0.0, 1.0]], f64)).sum(), [[1.0, -1.0, 0.5], COV]),
    ("mvn-tril", lambda m, L: D.MultivariateNormal(m, scale_tril=L.tril())
     .log_prob(t([[0.5, 0.0, 1.0]], f64)).sum() + D.MultivariateNormal(m, scale_tril=L.tril())
     .entropy(), [[1.0, -1.0, 0.5], TRIL]),
])
def test_log_prob_gradients_match_finite_differences(name, fn, args):
    _fd_check(fn, *args)


@pytest.mark.parametrize("name,fn,args", [
    ("exponential", lambda r: (D.Exponential(r).rsample((3,)) ** 2).sum(), [[0.5, 2.0]]),
    ("laplace", lambda m, s: (D.Laplace(m, s).rsample((3,)) ** 2).sum(), [[0.0, 1.0], [1.0, 0.5]]),
    ("lognormal", lambda m, s: D.LogNormal(m, s).rsample((3,)).sum(), [[0.0, 1.0], [1.0, 0.5]]),
    ("mvn-cov", lambda m, c: (D.MultivariateNormal(m, covariance_matrix=(c + c.mT) / 2)
                              .rsample((2,)) ** 2).sum(), [[1.0, -1.0, 0.5], COV]),
    ("mvn-tril", lambda m, L: (D.MultivariateNormal(m, scale_tril=L.tril()).rsample((2,)) ** 2)
     .sum(), [[1.0, -1.0, 0.5], TRIL]),
    ("independent", lambda m: (D.Independent(D.Normal(m, 2.0), 1).rsample() ** 2).sum(),
     [[[0., 1.], [2., 3.]]]),
])
def test_rsample_gradients_match_finite_differences(name, fn, args):
    # the same noise for every evaluation: reseed inside
    def seeded(*xs):
        torch.manual_seed(3)
        return fn(*xs)
    _fd_check(seeded, *args)


# ---- KL divergence ------------------------------------------------------------------------------

def _pairs():
    return {
        "normal": (D.Normal(t([0., 1.]), t([1., 2.])), D.Normal(t([0.5, -1.]), t([2., 0.5])),
                   [0.3493971824645996, 14.1137056350708]),
        "bernoulli": (D.Bernoulli(t([0.2, 0.0, 1.0, 0.5])), D.Bernoulli(t([0.5, 0.3, 0.3, 0.0])),
                      [0.19274474680423737, 0.35667482018470764, 1.2039726972579956, math.inf]),
        "categorical": (D.Categorical(t([[0.2, 0.8, 0.0], [0.3, 0.3, 0.4]])),
                        D.Categorical(t([[0.5, 0.25, 0.25], [0.0, 0.5, 0.5]])),
                        [0.7472624778747559, math.inf]),
        "uniform": (D.Uniform(t([0., 0.]), t([1., 2.])), D.Uniform(t([-1., 0.5]), t([2., 3.])),
                    [1.0986123085021973, math.inf]),
        "exponential": (D.Exponential(t([0.5, 2.])), D.Exponential(t([1.5, 0.3])),
                        [0.9013876914978027, 1.0471200942993164]),
        "laplace": (D.Laplace(t([0., 1.]), t([1., 0.5])), D.Laplace(t([0.3, -1.]), t([2., 1.])),
                    [0.21355628967285156, 1.7023050785064697]),
        "mvn": (D.MultivariateNormal(t([1., -1., 0.5]), covariance_matrix=t(COV, torch.float32)),
                D.MultivariateNormal(t([[0., 0., 0.], [1., 1., 1.]]), covariance_matrix=t(
                    [[1.0, -0.2, 0.0], [-0.2, 0.8, 0.1], [0.0, 0.1, 1.2]])),
                [1.6321402788162231, 3.2119626998901367]),
        "independent": (D.Independent(D.Normal(t([[0., 1.]]), t([[1., 2.]])), 1),
                        D.Independent(D.Normal(t([[1., 1.]]), t([[1., 1.]])), 1),
                        [1.3068528175354004]),
        "onehot": (D.OneHotCategorical(t([0.2, 0.5, 0.3])), D.OneHotCategorical(t([0.6, 0.3, 0.1])),
                   0.3652740716934204),
        "geometric": (D.Geometric(t([0.3, 0.8])), D.Geometric(t([0.5, 0.1])),
                      [0.2742762565612793, 1.7034223079681396]),
        "lognormal": (D.LogNormal(t([0., 1.]), t([1., 2.])),
                      D.LogNormal(t([0.5, -1.]), t([2., 0.5])),
                      [0.3493971824645996, 14.1137056350708]),
        "exp-normal": (D.Exponential(t([0.5, 2.])), D.Normal(t([0.5, -1.]), t([2., 0.5])),
                       [0.7001885175704956, 4.918938636779785]),
        "laplace-normal": (D.Laplace(t([0., 1.]), t([1., 0.5])),
                           D.Normal(t([0.5, -1.]), t([2., 0.5])),
                           [0.20018863677978516, 8.225790977478027]),
        "normal-laplace": (D.Normal(t([0., 1.]), t([1., 0.5])),
                           D.Laplace(t([0.5, -1.]), t([2., 0.5])),
                           [0.4151524305343628, 3.2742228507995605]),
        "uniform-exp": (D.Uniform(t([0., -1.]), t([1., 2.])), D.Exponential(t([0.5, 2.])),
                        [0.9431471824645996, math.inf]),
        "uniform-normal": (D.Uniform(t([0., -1.]), t([1., 2.])),
                           D.Normal(t([0.5, -1.]), t([2., 0.5])),
                           [1.622502326965332, 5.127179145812988]),
        "normal-uniform": (D.Normal(t([0., 1.]), t([1., 0.5])),
                           D.Uniform(t([0., -1.]), t([1., 2.])),
                           [math.inf, math.inf]),
    }


@pytest.mark.parametrize("name", list(_pairs()))
def test_kl_divergence_equals_torch(name):
    p, q, want = _pairs()[name]
    close(D.kl_divergence(p, q), want, rtol=2e-6)


def test_kl_closed_forms_vs_numpy():
    # MVN: 0.5 (tr(S_q^-1 S_p) + m' S_q^-1 m - n + ln det S_q - ln det S_p)
    Sq = np.array([[1.0, -0.2, 0.0], [-0.2, 0.8, 0.1], [0.0, 0.1, 1.2]])
    mp, mq = np.array([1., -1., 0.5]), np.array([0.2, 0.3, -0.4])
    p = D.MultivariateNormal(t(mp, f64), covariance_matrix=t(COV, f64))
    q = D.MultivariateNormal(t(mq, f64), precision_matrix=t(np.linalg.inv(Sq), f64))
    iq = np.linalg.inv(Sq)
    want = 0.5 * (np.trace(iq @ COV) + (mq - mp) @ iq @ (mq - mp) - 3 +
                  np.linalg.slogdet(Sq)[1] - np.linalg.slogdet(COV)[1])
    assert D.kl_divergence(p, q).item() == pytest.approx(want, rel=1e-10)
    # gradients flow through the KL; KL(p || p) = 0
    r = t([0.5, 2.0], f64, grad=True)
    kl = D.kl_divergence(D.Exponential(r), D.Exponential(t([1.0, 1.0], f64)))
    kl.sum().backward()
    # KL(Exp(r) || Exp(1)) = log r + 1/r - 1, so d/dr = 1/r - 1/r^2
    close(r.grad, [1 / 0.5 - 1 / 0.25, 1 / 2.0 - 1 / 4.0], rtol=1e-12)
    assert D.kl_divergence(p, p).item() == pytest.approx(0.0, abs=1e-12)


def test_register_kl_dispatch_and_missing_pairs():
    class MyNormal(D.Normal):
        pass

    p, q = MyNormal(t(0.0), t(1.0)), D.Normal(t(1.0), t(1.0))
    assert D.kl_divergence(p, q).item() == pytest.approx(0.5)   # falls back to (Normal, Normal)

    @D.register_kl(MyNormal, D.Normal)
    def _kl(a, b):
        return torch.tensor(42.0)
    assert D.kl_divergence(p, q).item() == 42.0                 # the more specific pair wins
    assert D.kl_divergence(q, p).item() == pytest.approx(0.5)
    with pytest.raises(NotImplementedError, match="No KL\\(p \\|\\| q\\) is implemented for p type "
                                                  "Geometric and q type Normal"):
        D.kl_divergence(D.Geometric(0.3), D.Normal(0.0, 1.0))
    with pytest.raises(TypeError, match="Distribution subclass"):
        D.register_kl(int, D.Normal)
    with pytest.raises(ValueError, match="different event shapes"):
        D.kl_divergence(D.MultivariateNormal(torch.zeros(2), torch.eye(2)),
                        D.MultivariateNormal(torch.zeros(3), torch.eye(3)))
    with pytest.raises(NotImplementedError):
        D.kl_divergence(D.Independent(D.Normal(torch.zeros(2, 2), 1.0), 1),
                        D.Independent(D.Normal(torch.zeros(2, 2), 1.0), 2))


def test_elbo_style_training_step():
    # a VAE-style loss: rsample through a MultivariateNormal with a learned scale_tril and a KL
    # to the prior; every parameter gets a finite gradient
    mu = t([0.5, -0.5], grad=True)
    raw = t([[0.3, 0.0], [0.2, -0.1]], grad=True)
    L = torch.tril(raw, -1) + torch.diag_embed(raw.diagonal().exp())
    q = D.MultivariateNormal(mu, scale_tril=L)
    prior = D.MultivariateNormal(torch.zeros(2), torch.eye(2))
    torch.manual_seed(0)
    z = q.rsample((16,))
    loss = (z ** 2).sum(-1).mean() + D.kl_divergence(q, prior)
    loss.backward()
    assert np.isfinite(to_np(mu.grad)).all() and np.abs(to_np(mu.grad)).sum() > 0
    assert np.isfinite(to_np(raw.grad)).all() and to_np(raw.grad)[0, 1] == 0.0


@pytest.mark.parametrize("name", ["exponential", "laplace", "lognormal", "geometric", "mvn",
                                  "independent", "onehot_lp"])
def test_against_pytorch(name):
    real = pytest.importorskip("torch", reason="an optional cross-check against PyTorch itself")

    def run(L):
        Dl = L.distributions
        d = {"exponential": lambda: Dl.Exponential(L.tensor([0.5, 2.0])),
             "laplace": lambda: Dl.Laplace(L.tensor([0.0, 1.0]), L.tensor([1.0, 0.5])),
             "lognormal": lambda: Dl.LogNormal(L.tensor([0.0, 0.5]), L.tensor([1.0, 0.3])),
             "geometric": lambda: Dl.Geometric(logits=L.tensor([0.3, -1.0])),
             "mvn": lambda: Dl.MultivariateNormal(L.tensor([1.0, -1.0, 0.5]),
                                                  precision_matrix=L.tensor(COV.tolist())),
             "independent": lambda: Dl.Independent(Dl.Laplace(L.zeros(2, 3), L.ones(2, 3)), 2),
             "onehot_lp": lambda: Dl.OneHotCategorical(L.tensor([[0.2, 0.5, 0.3]]))}[name]()
        L.manual_seed(0)
        s = d.sample((5,))
        if name == "onehot_lp":      # multinomial draws NumPy's numbers, not PyTorch's
            s = L.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
        return [o.numpy() for o in (s, d.log_prob(s), d.entropy())]
    for a, b in zip(run(torch), run(real)):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-6)
