"""torch.distributions: Normal, Uniform, Bernoulli and Categorical (what policy-gradient and
variational examples use), with PyTorch's formulas and draw order, so that after manual_seed
their samples equal PyTorch's (Categorical samples through multinomial, whose sampler is
NumPy's: same distribution, other numbers)."""
import math

import framework as torch

__all__ = ["Distribution", "Normal", "Uniform", "Bernoulli", "Categorical"]


def _t(x, like=None):
    if isinstance(x, torch.Tensor):
        return x
    return torch.tensor(float(x), dtype=like.dtype if like is not None else None)


def _broadcast(*xs):
    ts = [x for x in xs if isinstance(x, torch.Tensor)]
    like = ts[0] if ts else None
    return torch.broadcast_tensors(*[_t(x, like) for x in xs])


class Distribution:
    """Base class. Arguments and samples are validated as PyTorch does by default
    (validate_args=None means True): a parameter outside its constraint, or a value outside
    the support given to log_prob, raises ValueError."""
    has_rsample = False
    _validate_args = True
    arg_constraints = {}
    support = None

    def __init__(self, batch_shape=torch.Size(), event_shape=torch.Size(), validate_args=None):
        self._batch_shape, self._event_shape = torch.Size(batch_shape), torch.Size(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            for name, (text, check) in self.arg_constraints.items():
                v = getattr(self, name)
                if not bool(check(v, self).all()):
                    raise ValueError(f"Expected parameter {name} ({type(v).__name__} of shape "
                                     f"{tuple(v.shape)}) of distribution {self!r} to satisfy the "
                                     f"constraint {text}, but found invalid values:\n{v}")

    def _validate_sample(self, value):
        if not self._validate_args or self.support is None:
            return
        text, check = self.support
        if not bool(check(value, self).all()):
            raise ValueError(f"Expected value argument ({type(value).__name__} of shape "
                             f"{tuple(value.shape)}) to be within the support ({text(self)}) of "
                             f"the distribution {self!r}, but found invalid values:\n{value}")

    @property
    def batch_shape(self):
        return self._batch_shape

    @property
    def event_shape(self):
        return self._event_shape

    def _extended_shape(self, sample_shape=torch.Size()):
        return torch.Size(tuple(sample_shape) + tuple(self._batch_shape) +
                          tuple(self._event_shape))

    @property
    def stddev(self):
        return self.variance.sqrt()

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=torch.Size()):
        raise NotImplementedError(f"{type(self).__name__} has no reparameterized sampler")

    def sample_n(self, n):
        return self.sample(torch.Size((n,)))

    def perplexity(self):
        return torch.exp(self.entropy())

    def __repr__(self):
        args = ", ".join(f"{k}: {v if v.numel() == 1 else v.size()}"
                         for k, v in self._repr_args().items())
        return f"{type(self).__name__}({args})"


class Normal(Distribution):
    has_rsample = True
    arg_constraints = {"scale": ("GreaterThan(lower_bound=0.0)", lambda v, d: v > 0)}
    support = (lambda d: "Real()", lambda v, d: v == v)

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = _broadcast(loc, scale)
        super().__init__(self.loc.size(), validate_args=validate_args)

    def _repr_args(self):
        return {"loc": self.loc, "scale": self.scale}

    mean = property(lambda self: self.loc)
    mode = property(lambda self: self.loc)
    variance = property(lambda self: self.scale.pow(2))
    stddev = property(lambda self: self.scale)

    def sample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            return torch.normal(self.loc.expand(shape), self.scale.expand(shape))

    def rsample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        eps = torch.empty(shape, dtype=self.loc.dtype, device=self.loc.device).normal_()
        return self.loc + eps * self.scale

    def log_prob(self, value):
        self._validate_sample(value)
        var = self.scale ** 2
        log_scale = self.scale.log()
        return -((value - self.loc) ** 2) / (2 * var) - log_scale - \
            math.log(math.sqrt(2 * math.pi))

    def cdf(self, value):
        return 0.5 * (1 + torch.erf((value - self.loc) * self.scale.reciprocal() /
                                    math.sqrt(2)))

    def icdf(self, value):
        return self.loc + self.scale * torch.erfinv(2 * value - 1) * math.sqrt(2)

    def entropy(self):
        return 0.5 + 0.5 * math.log(2 * math.pi) + torch.log(self.scale)


class Uniform(Distribution):
    has_rsample = True
    arg_constraints = {"low": ("LessThan(upper_bound=high)", lambda v, d: v < d.high)}
    support = (lambda d: f"Interval(lower_bound={_num(d.low)}, upper_bound={_num(d.high)})",
               lambda v, d: (v >= d.low) & (v < d.high))

    def __init__(self, low, high, validate_args=None):
        self.low, self.high = _broadcast(low, high)
        super().__init__(self.low.size(), validate_args=validate_args)

    def _repr_args(self):
        return {"low": self.low, "high": self.high}

    mean = property(lambda self: (self.high + self.low) / 2)
    variance = property(lambda self: (self.high - self.low).pow(2) / 12)
    stddev = property(lambda self: (self.high - self.low) / 12 ** 0.5)

    def rsample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        rand = torch.rand(shape, dtype=self.low.dtype, device=self.low.device)
        return self.low + rand * (self.high - self.low)

    def log_prob(self, value):
        self._validate_sample(value)
        lb = self.low.le(value).type_as(self.low)
        ub = self.high.gt(value).type_as(self.low)
        return torch.log(lb.mul(ub)) - torch.log(self.high - self.low)

    def cdf(self, value):
        return ((value - self.low) / (self.high - self.low)).clamp(min=0, max=1)

    def entropy(self):
        return torch.log(self.high - self.low)


def _num(t):
    return t.item() if t.numel() == 1 else t


def _probs_logits(probs, logits, binary):
    if (probs is None) == (logits is None):
        raise ValueError("Either `probs` or `logits` must be specified, but not both.")
    if probs is not None:
        probs = _t(probs)
        bad = (probs < 0) | (probs > 1) if binary else (probs < 0)
        if bool(bad.any()) or (not binary and bool((probs.sum(-1) <= 0).any())):
            c = "Interval(lower_bound=0.0, upper_bound=1.0)" if binary else "Simplex()"
            raise ValueError(f"Expected parameter probs ({type(probs).__name__} of shape "
                             f"{tuple(probs.shape)}) to satisfy the constraint {c}, but found "
                             f"invalid values:\n{probs}")
        if binary:
            eps = torch.finfo(probs.dtype).eps
            p = probs.clamp(min=eps, max=1 - eps)
            return probs, torch.log(p) - torch.log1p(-p)
        probs = probs / probs.sum(-1, keepdim=True)
        eps = torch.finfo(probs.dtype).eps
        return probs, torch.log(probs.clamp(min=eps, max=1 - eps))
    logits = _t(logits)
    if binary:
        return torch.sigmoid(logits), logits
    logits = logits - logits.logsumexp(dim=-1, keepdim=True)
    return torch.softmax(logits, -1), logits


class Bernoulli(Distribution):
    support = (lambda d: "Boolean()", lambda v, d: (v == 0) | (v == 1))

    def __init__(self, probs=None, logits=None, validate_args=None):
        self.probs, self.logits = _probs_logits(probs, logits, True)
        super().__init__(self.probs.size(), validate_args=validate_args)

    def _repr_args(self):
        return {"probs": self.probs}

    mean = property(lambda self: self.probs)
    variance = property(lambda self: self.probs * (1 - self.probs))

    def sample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            return torch.bernoulli(self.probs.expand(shape))

    def log_prob(self, value):
        self._validate_sample(value)
        logits, value = torch.broadcast_tensors(self.logits, value)
        return -torch.nn.functional.binary_cross_entropy_with_logits(logits, value,
                                                                      reduction="none")

    def entropy(self):
        return torch.nn.functional.binary_cross_entropy_with_logits(self.logits, self.probs,
                                                                     reduction="none")


class Categorical(Distribution):
    support = (lambda d: f"IntegerInterval(lower_bound=0, upper_bound={d._num_events - 1})",
               lambda v, d: (v >= 0) & (v < d._num_events) & (v == v.long()))

    def __init__(self, probs=None, logits=None, validate_args=None):
        self.probs, self.logits = _probs_logits(probs, logits, False)
        self._num_events = self.probs.size()[-1]
        super().__init__(self.probs.size()[:-1], validate_args=validate_args)

    def _repr_args(self):
        return {"probs": self.probs}

    @property
    def param_shape(self):
        return self.probs.size()

    mean = property(lambda self: torch.full(self._extended_shape(), float("nan"),
                                            dtype=self.probs.dtype))
    mode = property(lambda self: self.probs.argmax(-1))

    def sample(self, sample_shape=torch.Size()):
        sample_shape = torch.Size(sample_shape)
        n = 1
        for s in sample_shape:
            n *= s
        probs_2d = self.probs.reshape(-1, self._num_events)
        with torch.no_grad():
            samples_2d = torch.multinomial(probs_2d, n, True).T
        return samples_2d.reshape(self._extended_shape(sample_shape))

    def log_prob(self, value):
        self._validate_sample(value)
        value = value.long().unsqueeze(-1)
        value, log_pmf = torch.broadcast_tensors(value, self.logits)
        value = value[..., :1]
        return log_pmf.gather(-1, value).squeeze(-1)

    def entropy(self):
        min_real = torch.finfo(self.logits.dtype).min
        logits = torch.clamp(self.logits, min=min_real)
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand=True):
        values = torch.arange(self._num_events, dtype=torch.long)
        values = values.view((-1,) + (1,) * len(self._batch_shape))
        return values.expand((-1,) + tuple(self._batch_shape)) if expand else values
