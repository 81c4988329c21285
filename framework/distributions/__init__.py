"""torch.distributions, with PyTorch 2.13's formulas, constraints, validation messages and
draw order, so that after manual_seed samples equal PyTorch's wherever they are drawn
through the same generator calls (Categorical, OneHotCategorical and Multinomial sample
through multinomial, whose sampler is NumPy's: same distribution, other numbers). Gamma,
Chi2, StudentT, Beta, Dirichlet, Poisson, Binomial and Cauchy draw by ports of PyTorch's cpu
samplers (_samplers.py, framework/_cpu_random.py).

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
from .dirichlet import Dirichlet
from .distribution import Distribution
from .exponential import Exponential
from .gamma import Gamma
from .geometric import Geometric
from .gumbel import Gumbel
from .half_normal import HalfNormal
from .independent import Independent
from .kl import kl_divergence, register_kl
from .laplace import Laplace
from .log_normal import LogNormal
from .multinomial import Multinomial
from .multivariate_normal import MultivariateNormal
from .normal import Normal
from .one_hot_categorical import OneHotCategorical, OneHotCategoricalStraightThrough
from .pareto import Pareto
from .poisson import Poisson
from .studentT import StudentT
from .transformed_distribution import TransformedDistribution
from .transforms import (AbsTransform, AffineTransform, ComposeTransform, ExpTransform,
                         PowerTransform, Transform)
from .uniform import Uniform
from .weibull import Weibull

__all__ = ["Bernoulli", "Beta", "Binomial", "Categorical", "Cauchy", "Chi2", "Dirichlet",
           "Distribution", "Exponential", "Gamma", "Geometric", "Gumbel", "HalfNormal",
           "Independent", "Laplace", "LogNormal", "Multinomial", "MultivariateNormal", "Normal",
           "OneHotCategorical", "OneHotCategoricalStraightThrough", "Pareto", "Poisson",
           "StudentT", "TransformedDistribution", "Uniform", "Weibull", "kl_divergence",
           "register_kl", "constraints", "transforms", "AbsTransform", "AffineTransform",
           "ComposeTransform", "ExpTransform", "PowerTransform", "Transform"]
