"""The draws and special functions the gamma family needs, on the host:

- _standard_gamma / _sample_dirichlet: PyTorch's samplers (framework._cpu_random) as custom
  autograd Functions whose backward is PyTorch's implicit reparameterisation gradient
  (-(d/dalpha CDF(x; alpha)) / pdf(x; alpha), by the series, saddle-point and rational
  approximations of aten/src/ATen/native/Distributions.h: standard_gamma_grad_one and
  dirichlet_grad_one), so rsample of Gamma, Beta and Dirichlet is differentiable in the
  concentration;
- poisson, binomial, cauchy: torch.poisson / torch.binomial / cauchy_ draws;
- von_mises: VonMises's rejection sampler on the float64 rand stream;
- gammainc: the regularised lower incomplete gamma P(a, x) (torch.special.gammainc), for
  Gamma.cdf, differentiable in x as PyTorch's is.

On the cpu the draws come from the cpu generator and equal PyTorch's; a device tensor draws
on the host from a stream seeded by its device generator (_device_random.host_stream) and
gets the result copied back."""
import math

import numpy as np

import framework as torch
from framework import _cpu_random
from framework.autograd import Function

__all__ = ["_standard_gamma", "_sample_dirichlet", "_standard_gamma_grad", "_dirichlet_grad",
           "poisson", "binomial", "cauchy", "von_mises", "gammainc", "gammaincc"]


def _host(t):
    from framework._device_ops import host
    return np.asarray(host(t.detach()._data))


def _out(arr, like):
    from framework.creation import _finish
    # (np.asarray with order C: ascontiguousarray would make a 0-d draw 1-d)
    return _finish(np.asarray(arr, like._dtype.np, order="C"), like._dtype, like.device, False)


def _stream(device, n, generator=None):
    if device.type == "cpu":
        from framework.creation import _gen
        return _gen(generator)
    from framework._device_random import host_stream
    return host_stream(device, n, generator)


def _check_float(t, op):
    if not t.dtype.is_floating_point:
        raise RuntimeError(f"\"{op}\" not implemented for '{str(t.dtype)[6:].capitalize()}'")


# ---- draws -------------------------------------------------------------------------------

def _draw_gamma(alpha, generator=None):
    _check_float(alpha, "gamma_cpu")
    a = _host(alpha)
    s = _stream(alpha.device, a.size, generator)
    return _out(_cpu_random.standard_gamma(s, a, alpha._dtype), alpha)


class _StandardGamma(Function):
    @staticmethod
    def forward(ctx, alpha):
        x = _draw_gamma(alpha)
        ctx.save_for_backward(alpha, x)
        return x

    @staticmethod
    def backward(ctx, grad_output):
        alpha, x = ctx.saved_tensors
        return grad_output * _standard_gamma_grad(alpha, x)


def _standard_gamma(alpha, generator=None):
    """torch._standard_gamma: Gamma(alpha, 1) draws, differentiable in alpha."""
    if generator is not None:
        return _draw_gamma(alpha, generator)
    return _StandardGamma.apply(alpha)


def _draw_dirichlet(concentration, generator=None):
    _check_float(concentration, "dirichlet")
    a = _host(concentration)
    s = _stream(concentration.device, a.size, generator)
    return _out(_cpu_random.dirichlet(s, a, concentration._dtype), concentration)


class _Dirichlet(Function):
    @staticmethod
    def forward(ctx, concentration):
        x = _draw_dirichlet(concentration)
        ctx.save_for_backward(x, concentration)
        return x

    @staticmethod
    def backward(ctx, grad_output):
        x, concentration = ctx.saved_tensors
        total = concentration.detach().sum(-1, True).expand_as(concentration)
        grad = _dirichlet_grad(x, concentration, total)
        return grad * (grad_output - (x * grad_output).sum(-1, True))


def _sample_dirichlet(concentration, generator=None):
    """torch._sample_dirichlet, differentiable in the concentration (PyTorch's _Dirichlet)."""
    if generator is not None:
        return _draw_dirichlet(concentration, generator)
    return _Dirichlet.apply(concentration)


def poisson(rate, generator=None):
    """torch.poisson: sample_poisson per element (PyTorch's draws on the cpu)."""
    lam = _host(rate)
    s = _stream(rate.device, lam.size, generator)
    return _out(_cpu_random.poisson(s, lam, rate._dtype), rate)


def binomial(count, prob, generator=None):
    """torch.binomial(count, prob): BTRS or inversion per element."""
    if count.dtype != prob.dtype:
        raise RuntimeError(f"binomial: expected count and prob of one dtype, got {count.dtype} "
                           f"and {prob.dtype}")
    _check_float(prob, "binomial_cpu")
    c, p = _host(count), _host(prob)
    if c.shape != p.shape:
        raise RuntimeError(f"binomial: count {list(c.shape)} and prob {list(p.shape)} must "
                           "have one shape")
    s = _stream(prob.device, p.size, generator)
    return _out(_cpu_random.binomial(s, c, p, prob._dtype), prob)


def cauchy(shape, like, generator=None):
    """A fresh tensor of `shape` filled as cauchy_() fills it (dtype and device of `like`)."""
    n = int(np.prod(shape, dtype=np.int64))
    s = _stream(like.device, n, generator)
    return _out(_cpu_random.cauchy(s, tuple(shape), like._dtype), like)


def von_mises(loc, concentration, proposal_r, shape, generator=None):
    """VonMises draws of `shape` (float64, like the float64 parameters PyTorch samples with),
    by PyTorch's rejection loop of torch.rand((3,) + shape) rounds."""
    n = 3 * int(np.prod(shape, dtype=np.int64))
    s = _stream(loc.device, n, generator)
    return _out(_cpu_random.von_mises(s, _host(loc), _host(concentration), _host(proposal_r),
                                      tuple(shape)), loc)


# ---- implicit reparameterisation gradients (float64 arithmetic, as PyTorch's accscalar) ----

def _digamma(x):
    """digamma in float64 on the host: the digamma primitive's own algorithm (one source)."""
    from compiler.codegen.triton_helpers import host_special
    with np.errstate(all="ignore"):
        return np.asarray(host_special()["kiln_digamma"](np.asarray(x, np.float64)), np.float64)


_COEF_UV = np.array([
    [0.16009398, -0.094634809, 0.025146376, -0.0030648343,
     1, 0.32668115, 0.10406089, 0.0014179084],
    [0.53487893, 0.1298071, 0.065735949, -0.0015649758,
     0.16639465, 0.020070113, -0.0035938915, -0.00058392623],
    [0.040121004, -0.0065914022, -0.0026286047, -0.0013441777,
     0.017050642, -0.0021309326, 0.00085092367, -1.5247877e-07]])


def _gamma_grad_np(alpha, x):
    """standard_gamma_grad_one, elementwise: dx/dalpha of a Gamma(alpha, 1) sample x."""
    with np.errstate(all="ignore"):
        # Taylor series of the CDF for small x
        numer, denom = np.ones_like(x), alpha.copy()
        s1, s2 = numer / denom, numer / (denom * denom)
        for i in range(1, 6):
            numer = numer * (-x / i)
            denom = denom + 1
            s1 = s1 + numer / denom
            s2 = s2 + numer / (denom * denom)
        pxa = np.power(x, alpha)
        pdf = np.power(x, alpha - 1) * np.exp(-x)
        cdf = pxa * s1
        cdf_alpha = (np.log(x) - _digamma(alpha)) * cdf - pxa * s2
        small = -cdf_alpha / pdf
        small = np.where(np.isnan(small), 0.0, small)
        # Rice saddle point expansion for large alpha
        n1 = 1 + 24 * alpha * (1 + 12 * alpha)
        n2 = (1440 * (alpha * alpha) + 6 * x * (53 - 120 * x) - 65 * x * x / alpha +
              alpha * (107 + 3600 * x))
        near = n1 * n2 / (1244160 * (alpha * alpha) * (alpha * alpha))
        den = np.sqrt(8 * alpha)
        term2 = den / (alpha - x)
        term3 = np.power(x - alpha - alpha * np.log(x / alpha), -1.5)
        term23 = np.where(x < alpha, term2 - term3, term2 + term3)
        term1 = np.log(x / alpha) * term23 - \
            np.sqrt(2 / alpha) * (alpha + x) / ((alpha - x) * (alpha - x))
        stirling = 1 + 1 / (12 * alpha) * (1 + 1 / (24 * alpha))
        far = -stirling * (x * term1) / den
        large = np.where((0.9 * alpha <= x) & (x <= 1.1 * alpha), near, far)
        # bivariate rational approximation otherwise
        u, v = np.log(x / alpha), np.log(alpha)
        cv = [_COEF_UV[0, i] + u * (_COEF_UV[1, i] + u * _COEF_UV[2, i]) for i in range(8)]
        p = cv[0] + v * (cv[1] + v * (cv[2] + v * cv[3]))
        q = cv[4] + v * (cv[5] + v * (cv[6] + v * cv[7]))
        mid = np.exp(p / q)
    # (PyTorch compares with 0.8f, 8.0f, 0.9f: float constants)
    return np.where(x < float(np.float32(0.8)), small,
                    np.where(alpha > 8.0, large, mid))


def _standard_gamma_grad(alpha, x):
    """torch._standard_gamma_grad(alpha, x) as a constant tensor (no gradient of its own, as
    in PyTorch)."""
    a = _host(alpha).astype(np.float64)
    s = _host(x).astype(np.float64)
    a, s = np.broadcast_arrays(a, s)
    return _out(_gamma_grad_np(a, s), x)


_C = np.array([
    [[[1.003668233, -0.01061107488, -0.0657888334, 0.01201642863],
      [0.6336835991, -0.3557432599, 0.05486251648, -0.001465281033],
      [-0.03276231906, 0.004474107445, 0.002429354597, -0.0001557569013]],
     [[0.221950385, -0.3187676331, 0.01799915743, 0.01074823814],
      [-0.2951249643, 0.06219954479, 0.01535556598, 0.001550077057],
      [0.02155310298, 0.004170831599, 0.001292462449, 6.976601077e-05]],
     [[-0.05980841433, 0.008441916499, 0.01085618172, 0.002319392565],
      [0.02911413504, 0.01400243777, -0.002721828457, 0.000751041181],
      [0.005900514878, -0.001936558688, -9.495446725e-06, 5.385558597e-05]]],
    [[[1, -0.02924021934, -0.04438342661, 0.007285809825],
      [0.6357567472, -0.3473456711, 0.05454656494, -0.002407477521],
      [-0.03301322327, 0.004845219414, 0.00231480583, -0.0002307248149]],
     [[0.5925320577, -0.1757678135, 0.01505928619, 0.000564515273],
      [0.1014815858, -0.06589186703, 0.01272886114, -0.0007316646956],
      [-0.007258481865, 0.001096195486, 0.0003934994223, -4.12701925e-05]],
     [[0.06469649321, -0.0236701437, 0.002902096474, -5.896963079e-05],
      [0.001925008108, -0.002869809258, 0.0008000589141, -6.063713228e-05],
      [-0.0003477407336, 6.959756487e-05, 1.097287507e-05, -1.650964693e-06]]]])


def _beta_grad_alpha_small(x, alpha, beta):
    ft = x.dtype.type
    factor = ft(_digamma(alpha)) - ft(_digamma(alpha + beta)) - np.log(x)
    numer = np.ones_like(x)
    series = numer / alpha * (factor + 1 / alpha)
    for i in range(1, 11):
        numer = numer * ((i - beta) * x / i)
        denom = alpha + i
        series = series + numer / denom * (factor + 1 / denom)
    r = x * np.power(1 - x, -beta) * series
    return np.where(np.isnan(r), 0.0, r)


def _beta_grad_beta_small(x, alpha, beta):
    ft = x.dtype.type
    factor = (_digamma(alpha + beta) - _digamma(beta)).astype(ft)
    numer, betas, dbetas = np.ones_like(x), np.ones_like(x), np.zeros_like(x)
    series = factor / alpha
    for i in range(1, 9):
        numer = numer * (-x / i)
        dbetas = dbetas * (beta - i) + betas
        betas = betas * (beta - i)
        series = series + numer / (alpha + i) * (dbetas + factor * betas)
    r = -np.power(1 - x, 1 - beta) * series
    return np.where(np.isnan(r), 0.0, r)


def _beta_grad_alpha_mid(x, alpha, beta):
    total = alpha + beta
    mean = alpha / total
    std = np.sqrt(alpha * beta / (total + 1)) / total
    poly = 47 * x * (beta * beta) * (beta * beta) + alpha * (
        (43 + 20 * (16 + 27 * beta) * x) * (beta * beta) * beta + alpha * (
            3 * (59 + 180 * beta - 90 * x) * (beta * beta) + alpha * (
                (453 + 1620 * beta * (1 - x) - 455 * x) * beta + alpha * (
                    8 * (1 - x) * (135 * beta - 11)))))
    pre_num = (1 + 12 * alpha) * (1 + 12 * beta) / (total * total)
    pre_den = 12960 * alpha * alpha * alpha * beta * beta * (1 + 12 * total)
    at_mean = pre_num / (1 - x) * poly / pre_den
    prefactor = -x / np.sqrt(2 * alpha * beta / total)
    stirling = ((1 + 1 / (12 * alpha) + 1 / (288 * alpha * alpha)) *
                (1 + 1 / (12 * beta) + 1 / (288 * beta * beta)) /
                (1 + 1 / (12 * total) + 1 / (288 * total * total)))
    t1_num = 2 * (alpha * alpha) * (x - 1) + alpha * beta * (x - 1) - x * (beta * beta)
    axbx = alpha * (x - 1) + beta * x
    t1_den = np.sqrt(2 * alpha / beta) * np.power(total, 1.5) * axbx * axbx
    t2 = 0.5 * np.log(alpha / (total * x))
    t3 = np.sqrt(8 * alpha * beta / total) / (beta * x + alpha * (x - 1))
    t4 = np.power(beta * np.log(beta / (total * (1 - x))) + alpha * np.log(alpha / (total * x)),
                  -1.5)
    t1234 = t1_num / t1_den + t2 * (t3 + np.where(x < mean, t4, -t4))
    away = stirling * prefactor * t1234
    return np.where((mean - 0.1 * std <= x) & (x <= mean + 0.1 * std), at_mean, away)


def _dirichlet_grad_np(x, alpha, total, ft=np.float64):
    """dirichlet_grad_one, elementwise: the small-x series in the tensor's type `ft` (PyTorch's
    scalar_t), the rest in float64."""
    xs, al, tot = x.astype(ft), alpha.astype(ft), total.astype(ft)
    beta_s = tot - al
    beta = total - alpha
    boundary = (tot * xs * (1 - xs)).astype(np.float64)
    with np.errstate(all="ignore"):
        small_a = _beta_grad_alpha_small(xs, al, beta_s).astype(np.float64)
        small_b = -_beta_grad_beta_small(1 - xs, beta_s, al).astype(np.float64)
        mid = _beta_grad_alpha_mid(x, alpha, beta)
        u = np.log(x)
        a = np.log(alpha) - u
        b = np.log(total) - a
        pow_u, pow_a = (1, u, u * u), (1, a, a * a)
        p = q = 0.0
        for i in range(3):
            for j in range(3):
                ua = pow_u[i] * pow_a[j]
                c0, c1 = _C[0, i, j], _C[1, i, j]
                p = p + ua * (c0[0] + b * (c0[1] + b * (c0[2] + b * c0[3])))
                q = q + ua * (c1[0] + b * (c1[1] + b * (c1[2] + b * c1[3])))
        approx = x * (_digamma(total) - _digamma(alpha)) / beta
        rational = p / q * approx
    return np.where((x <= 0.5) & (boundary < 2.5), small_a,
                    np.where((x >= 0.5) & (boundary < 0.75), small_b,
                             np.where((al > 6) & (beta_s > 6), mid, rational)))


def _dirichlet_grad(x, alpha, total):
    """torch._dirichlet_grad(x, alpha, total), a constant tensor."""
    xs, a, t = (_host(v).astype(np.float64) for v in (x, alpha, total))
    xs, a, t = np.broadcast_arrays(xs, a, t)
    ft = np.float64 if x.dtype == torch.float64 else np.float32
    return _out(_dirichlet_grad_np(xs, a, t, ft), x)


# ---- the regularised lower incomplete gamma --------------------------------------------------

def _gammainc_np(a, x, upper=False):
    """P(a, x) (or Q = 1 - P with upper) in float64: the series for x < a + 1, else the
    continued fraction for Q (modified Lentz), each to about 1e-15; the tail each computes
    directly keeps its relative accuracy."""
    a, x = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(x, np.float64))
    out = np.empty(a.shape)
    for idx in np.ndindex(a.shape):
        out[idx] = _gammainc_one(float(a[idx]), float(x[idx]), upper)
    return out


def _gammainc_one(a, x, upper=False):
    if math.isnan(a) or math.isnan(x) or a < 0 or x < 0:
        return math.nan
    if a == 0:
        return (0.0 if upper else 1.0) if x > 0 else math.nan
    if x == 0:
        return 1.0 if upper else 0.0
    if math.isinf(x):
        return 0.0 if upper else 1.0
    lead = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(100000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-17:
                break
        p = min(1.0, total * math.exp(lead))
        return 1.0 - p if upper else p
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 100000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            break
    q = min(1.0, math.exp(lead) * h)
    return q if upper else max(0.0, 1.0 - q)


class _GammaInc(Function):
    @staticmethod
    def forward(ctx, a, x, upper):
        a, x = torch.broadcast_tensors(a, x)
        ctx.save_for_backward(a, x)
        ctx.upper = upper
        return _out(_gammainc_np(_host(a), _host(x), upper), x)

    @staticmethod
    def backward(ctx, grad_output):
        a, x = ctx.saved_tensors
        if ctx.needs_input_grad[0]:
            op = "igammac" if ctx.upper else "igamma"
            raise NotImplementedError(f"the derivative for 'self' ({op}'s a) is not "
                                      "implemented.")
        # d/dx P(a, x) = x^(a-1) e^-x / Gamma(a) = -d/dx Q(a, x), written with graph ops
        dx = torch.exp((a - 1) * torch.log(x) - x - torch.lgamma(a))
        return None, grad_output * (-dx if ctx.upper else dx), None


def gammainc(a, x, upper=False):
    """torch.special.gammainc(a, x) (regularised lower incomplete gamma P); with upper,
    gammaincc (Q = 1 - P)."""
    if not isinstance(a, torch.Tensor):
        a = torch.as_tensor(a, dtype=x.dtype, device=x.device)
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x, dtype=a.dtype, device=a.device)
    return _GammaInc.apply(a, x, upper)


def gammaincc(a, x):
    return gammainc(a, x, upper=True)
