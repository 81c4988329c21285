"""torch.distributions, with PyTorch 2.13's formulas, constraints, validation messages and
draw order, so that after manual_seed samples equal PyTorch's wherever they are drawn
through the same generator calls (Categorical, OneHotCategorical and Multinomial sample
through multinomial, whose sampler is NumPy's: same distribution, other numbers). Gamma,
Chi2, StudentT, Beta, Dirichlet, Poisson, Binomial and Cauchy draw by ports of PyTorch's cpu
samplers (_samplers.py, framework/_cpu_random.py), VonMises by PyTorch's rejection loop on the
same stream. ExponentialFamily is the base of the families PyTorch derives from it (entropy
and same-family KL by Bregman divergence); biject_to / transform_to map constraints to
transforms (constraint_registry.py).

One module per family (normal.py, multivariate_normal.py, ...), as in PyTorch; the base
class in distribution.py, the constraint objects in constraints.py, transforms for
TransformedDistribution in transforms.py, the KL registry in kl.py."""
from . import constraints, transforms  # noqa: F401
from .bernoulli import Bernoulli
from .beta import Beta
from .binomial import Binomial
from .categorical import Categorical
from .cauchy import Cauchy
from .chi2 import Chi2
from .constraint_registry import biject_to, transform_to
from .continuous_bernoulli import ContinuousBernoulli
from .dirichlet import Dirichlet
from .distribution import Distribution
from .exp_family import ExponentialFamily
from .exponential import Exponential
from .fishersnedecor import FisherSnedecor
from .gamma import Gamma
from .generalized_pareto import GeneralizedPareto
from .geometric import Geometric
from .gumbel import Gumbel
from .half_cauchy import HalfCauchy
from .half_normal import HalfNormal
from .independent import Independent
from .inverse_gamma import InverseGamma
from .kl import kl_divergence, register_kl
from .kumaraswamy import Kumaraswamy
from .laplace import Laplace
from .lkj_cholesky import LKJCholesky
from .log_normal import LogNormal
from .logistic_normal import LogisticNormal
from .lowrank_multivariate_normal import LowRankMultivariateNormal
from .mixture_same_family import MixtureSameFamily
from .multinomial import Multinomial
from .multivariate_normal import MultivariateNormal
from .negative_binomial import NegativeBinomial
from .normal import Normal
from .one_hot_categorical import OneHotCategorical, OneHotCategoricalStraightThrough
from .pareto import Pareto
from .poisson import Poisson
from .relaxed_bernoulli import RelaxedBernoulli
from .relaxed_categorical import RelaxedOneHotCategorical
from .studentT import StudentT
from .transformed_distribution import TransformedDistribution
from .transforms import (AbsTransform, AffineTransform, CatTransform, ComposeTransform,
                         CorrCholeskyTransform, CumulativeDistributionTransform, ExpTransform,
                         IndependentTransform, LowerCholeskyTransform,
                         PositiveDefiniteTransform, PowerTransform, ReshapeTransform,
                         SigmoidTransform, SoftmaxTransform, SoftplusTransform, StackTransform,
                         StickBreakingTransform, TanhTransform, Transform, identity_transform)
from .uniform import Uniform
from .von_mises import VonMises
from .weibull import Weibull
from .wishart import Wishart

__all__ = ["Bernoulli", "Beta", "Binomial", "Categorical", "Cauchy", "Chi2", "Dirichlet",
           "Distribution", "Exponential", "Gamma", "Geometric", "Gumbel", "HalfNormal",
           "Independent", "Laplace", "LogNormal", "Multinomial", "MultivariateNormal", "Normal",
           "OneHotCategorical", "OneHotCategoricalStraightThrough", "Pareto", "Poisson",
           "StudentT", "TransformedDistribution", "Uniform", "Weibull", "kl_divergence",
           "register_kl", "constraints", "transforms", "AbsTransform", "AffineTransform",
           "ComposeTransform", "ExpTransform", "PowerTransform", "Transform",
           "ContinuousBernoulli", "ExponentialFamily", "FisherSnedecor", "GeneralizedPareto",
           "HalfCauchy", "InverseGamma", "Kumaraswamy", "LKJCholesky", "LogisticNormal",
           "LowRankMultivariateNormal", "MixtureSameFamily", "NegativeBinomial",
           "RelaxedBernoulli", "RelaxedOneHotCategorical", "VonMises", "Wishart", "biject_to",
           "transform_to", "CatTransform", "CorrCholeskyTransform",
           "CumulativeDistributionTransform", "IndependentTransform", "LowerCholeskyTransform",
           "PositiveDefiniteTransform", "ReshapeTransform", "SigmoidTransform",
           "SoftmaxTransform", "SoftplusTransform", "StackTransform", "StickBreakingTransform",
           "TanhTransform", "identity_transform"]
