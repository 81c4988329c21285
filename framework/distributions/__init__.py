"""torch.distributions, with PyTorch 2.13's formulas, constraints, validation messages and
draw order, so that after manual_seed samples equal PyTorch's wherever they are drawn
through the same generator calls (Categorical and OneHotCategorical sample through
multinomial, whose sampler is NumPy's: same distribution, other numbers).

One module per family (normal.py, multivariate_normal.py, ...), as in PyTorch; the base
class in distribution.py, the constraint objects in constraints.py, transforms for
TransformedDistribution in transforms.py, the KL registry in kl.py."""
from . import constraints, transforms  # noqa: F401
from .bernoulli import Bernoulli
from .categorical import Categorical
from .distribution import Distribution
from .exponential import Exponential
from .geometric import Geometric
from .independent import Independent
from .kl import kl_divergence, register_kl
from .laplace import Laplace
from .log_normal import LogNormal
from .multivariate_normal import MultivariateNormal
from .normal import Normal
from .one_hot_categorical import OneHotCategorical, OneHotCategoricalStraightThrough
from .transformed_distribution import TransformedDistribution
from .transforms import AffineTransform, ComposeTransform, ExpTransform, Transform
from .uniform import Uniform

__all__ = ["Bernoulli", "Categorical", "Distribution", "Exponential", "Geometric",
           "Independent", "Laplace", "LogNormal", "MultivariateNormal", "Normal",
           "OneHotCategorical", "OneHotCategoricalStraightThrough", "TransformedDistribution",
           "Uniform", "kl_divergence", "register_kl", "constraints", "transforms",
           "AffineTransform", "ComposeTransform", "ExpTransform", "Transform"]
