"""Finite-difference checks of every VJP rule (float64).

test_every_differentiable_primitive_has_a_rule_and_a_case walks compiler.REGISTRY: a new
differentiable primitive without a VJP rule, or without an entry in PRIM_CASES, fails it.
Then gradcheck of each primitive, of the public composite ops, and gradgradcheck of the
elementwise and matmul families.
"""
import numpy as np
import pytest

import framework as torch
from framework._dispatch import call
from framework.autograd import gradcheck, gradgradcheck, GradcheckError
from compiler import REGISTRY
from tests.conftest import assert_close

F64 = torch.float64


def _rng(seed):
    return np.random.default_rng(seed)


def T(shape, lo=-1.0, hi=1.0, seed=0, grad=True):
    a = _rng(seed).uniform(lo, hi, size=shape)
    return torch.tensor(a, dtype=F64, requires_grad=grad)


def away0(shape, seed=0):
    """Values in [0.3, 1] with random signs (kinks and poles at 0 stay far)."""
    r = _rng(seed)
    a = r.uniform(0.3, 1.0, size=shape) * r.choice([-1.0, 1.0], size=shape)
    return torch.tensor(a, dtype=F64, requires_grad=True)


def frac(shape, seed=0):
    """Values k + [0.15, 0.35]: away from integers and half-integers (floor, round, ...)."""
    r = _rng(seed)
    a = r.integers(-3, 3, size=shape) + r.uniform(0.15, 0.35, size=shape)
    return torch.tensor(a, dtype=F64, requires_grad=True)


def I(values):
    return torch.tensor(values, dtype=torch.int64)


def P(name, **attrs):
    return lambda *xs: call(name, *xs, **attrs)


def _sq(n, seed):
    """A well-conditioned n x n matrix."""
    a = _rng(seed).uniform(-0.5, 0.5, size=(n, n)) + 2 * np.eye(n)
    return torch.tensor(a, dtype=F64, requires_grad=True)


# name -> list of (fn, inputs builder, options); builders keep every case deterministic
def Z(shape, seed=0):
    """A complex128 input built from two float64 leaves (gradcheck perturbs real tensors)."""
    return (T(shape, seed=seed), T(shape, seed=seed + 100))


def _cx(fn):
    """fn of complex z = complex(x, y), checked through the real and imaginary parts of a
    complex result (view_as_real): the full real Jacobian, so PyTorch's conjugate-Wirtinger
    convention is checked, not only holomorphic parts."""
    def f(x, y):
        r = fn(torch.complex(x, y))
        return torch.view_as_real(r) if r.dtype.is_complex else r
    return f


PRIM_CASES = {
    "real": [(_cx(P("real")), lambda: Z((3, 2)))],
    "imag": [(_cx(lambda z: call("imag", z * z)), lambda: Z((3, 2)))],
    "view_as_real": [(_cx(lambda z: call("view_as_real", z.exp())), lambda: Z((2, 3)))],
    "view_as_complex": [(lambda x: torch.view_as_real(call("view_as_complex", x) ** 2),
                         lambda: (T((3, 2)),))],
    "conj": [(_cx(lambda z: call("conj", z) * z.sin()), lambda: Z((4,)))],
    "sgn": [(_cx(P("sgn")), lambda: Z((4,), seed=3))],
    "angle": [(_cx(P("angle")), lambda: Z((4,), seed=4))],
    "fft_c2c": [(_cx(lambda z: call("fft_c2c", z, dims=(1,), forward=True, norm="backward")),
                 lambda: Z((2, 5))),
                (_cx(lambda z: call("fft_c2c", z, dims=(0, 1), forward=False, norm="ortho")),
                 lambda: Z((3, 4)))],
    "fft_r2c": [(lambda x: torch.view_as_real(call("fft_r2c", x, dims=(1,), norm="backward")),
                 lambda: (T((2, 6)),)),
                (lambda x: torch.view_as_real(call("fft_r2c", x, dims=(0, 1), norm="forward")),
                 lambda: (T((3, 5)),))],
    "fft_c2r": [(_cx(lambda z: call("fft_c2r", z, dims=(1,), n=6, norm="backward")),
                 lambda: Z((2, 4))),
                (_cx(lambda z: call("fft_c2r", z, dims=(0, 1), n=5, norm="ortho")),
                 lambda: Z((2, 3)))],
    "copy": [(P("copy"), lambda: (T((3, 4)),))],
    # (the engine's create_graph connection: g itself, zeros for x of another shape)
    "grad_link": [(P("grad_link", shape=(2, 5), dtype=torch.float64),
                   lambda: (T((3, 4)), T((2, 5), seed=1))),
                  (P("grad_link", shape=(2, 5), dtype=torch.float64, unused=True),   # None
                   lambda: (T((3, 4)), T((2, 5), seed=1)))],
    "neg": [(P("neg"), lambda: (T((3, 4)),))],
    "abs": [(P("abs"), lambda: (away0((3, 4)),))],
    "sign": [(P("sign"), lambda: (away0((3, 4)),))],
    "exp": [(P("exp"), lambda: (T((3, 4)),))],
    "exp2": [(P("exp2"), lambda: (T((3, 4)),))],
    "log": [(P("log"), lambda: (T((3, 4), 0.2, 2.0),))],
    "log2": [(P("log2"), lambda: (T((3, 4), 0.2, 2.0),))],
    "log10": [(P("log10"), lambda: (T((3, 4), 0.2, 2.0),))],
    "log1p": [(P("log1p"), lambda: (T((3, 4), -0.5, 2.0),))],
    "expm1": [(P("expm1"), lambda: (T((3, 4)),))],
    "sqrt": [(P("sqrt"), lambda: (T((3, 4), 0.2, 2.0),))],
    "rsqrt": [(P("rsqrt"), lambda: (T((3, 4), 0.2, 2.0),))],
    "sin": [(P("sin"), lambda: (T((3, 4), -3, 3),))],
    "cos": [(P("cos"), lambda: (T((3, 4), -3, 3),))],
    "tan": [(P("tan"), lambda: (T((3, 4)),))],
    "asin": [(P("asin"), lambda: (T((3, 4), -0.8, 0.8),))],
    "acos": [(P("acos"), lambda: (T((3, 4), -0.8, 0.8),))],
    "atan": [(P("atan"), lambda: (T((3, 4), -2, 2),))],
    "sinh": [(P("sinh"), lambda: (T((3, 4)),))],
    "cosh": [(P("cosh"), lambda: (T((3, 4)),))],
    "tanh": [(P("tanh"), lambda: (T((3, 4), -2, 2),))],
    "sigmoid": [(P("sigmoid"), lambda: (T((3, 4), -3, 3),))],
    "relu": [(P("relu"), lambda: (away0((3, 4)),))],      # (no kink within the FD step)
    "erf": [(P("erf"), lambda: (T((3, 4), -2, 2),))],
    "lgamma": [(P("lgamma"), lambda: (T((3, 4), 0.2, 4.0),)), (P("lgamma"), lambda: (frac((3, 4)),))],
    "digamma": [(P("digamma"), lambda: (T((3, 4), 0.3, 4.0),)), (P("digamma"), lambda: (frac((3, 4)),))],
    "polygamma": [(P("polygamma", n=1), lambda: (T((3, 4), 0.3, 4.0),)),
                  (P("polygamma", n=3), lambda: (frac((3, 4)),))],
    # zeta: PyTorch differentiates with respect to q only
    "zeta": [(lambda q: call("zeta", T((3, 4), 1.5, 4.0, seed=2, grad=False), q),
              lambda: (T((3, 4), 0.5, 3.0),)),
             (lambda q: call("zeta", 2.5, q), lambda: (T((4,), 0.5, 3.0),))],
    "erfinv": [(P("erfinv"), lambda: (T((3, 4), -0.9, 0.9),))],
    "i0": [(P("i0"), lambda: (T((3, 4), -10, 10),))],
    "i0e": [(P("i0e"), lambda: (away0((3, 4)),)), (P("i0e"), lambda: (T((3, 4), 8.5, 12),))],
    "i1": [(P("i1"), lambda: (T((3, 4), -10, 10),))],
    "i1e": [(P("i1e"), lambda: (away0((3, 4)),)), (P("i1e"), lambda: (T((3, 4), -12, -8.5),))],
    "floor": [(P("floor"), lambda: (frac((3, 4)),))],
    "ceil": [(P("ceil"), lambda: (frac((3, 4)),))],
    "trunc": [(P("trunc"), lambda: (frac((3, 4)),))],
    "round": [(P("round"), lambda: (frac((3, 4)),))],
    "reciprocal": [(P("reciprocal"), lambda: (away0((3, 4)),))],
    "add": [(P("add"), lambda: (T((2, 1, 4)), T((3, 1), seed=1))),
            (P("add"), lambda: (T((3,)), 2.5))],
    "sub": [(P("sub"), lambda: (T((2, 3)), T((3,), seed=1))),
            (P("sub"), lambda: (1.5, T((2, 3))))],
    "mul": [(P("mul"), lambda: (T((2, 1, 4)), T((3, 1), seed=1))),
            (P("mul"), lambda: (T((2, 3)), -3.0))],
    "div": [(P("div"), lambda: (T((2, 3)), away0((3,), seed=1))),
            (P("div"), lambda: (2.0, away0((2, 3))))],
    "remainder": [(P("remainder"), lambda: (T((2, 3), 2.2, 2.8), T((2, 3), 1.6, 1.9, seed=1)))],
    "fmod": [(P("fmod"), lambda: (T((2, 3), -2.8, -2.2), T((2, 3), 1.6, 1.9, seed=1)))],
    # piecewise constant (quotients in (1.1, 1.8), away from the steps): zero gradients
    "floor_divide": [(P("floor_divide"), lambda: (T((2, 3), 2.2, 2.8),
                                                  T((2, 3), 1.6, 1.9, seed=1)))],
    "pow": [(P("pow"), lambda: (T((2, 3), 0.5, 2.0), T((2, 3), -1.5, 1.5, seed=1))),
            (P("pow"), lambda: (T((2, 3)), 3)),
            (P("pow"), lambda: (T((2, 3), 0.5, 2.0), -1.5)),
            (P("pow"), lambda: (2.0, T((2, 3))))],
    "maximum": [(P("maximum"), lambda: (T((3, 4)), T((4,), seed=1)))],
    "minimum": [(P("minimum"), lambda: (T((3, 4)), T((4,), seed=1)))],
    "atan2": [(P("atan2"), lambda: (T((3, 4)), away0((3, 4), seed=1)))],
    "asinh": [(P("asinh"), lambda: (T((3, 4), -3, 3),))],
    "acosh": [(P("acosh"), lambda: (T((3, 4), 1.2, 4.0),))],
    "atanh": [(P("atanh"), lambda: (T((3, 4), -0.8, 0.8),))],
    "erfc": [(P("erfc"), lambda: (T((3, 4), -2, 3),))],
    "copysign": [(P("copysign"), lambda: (away0((3, 4)), away0((4,), seed=1))),
                 (lambda x: call("copysign", x, -1.0), lambda: (away0((3, 4)),))],
    "fmax": [(P("fmax"), lambda: (T((3, 4)), T((4,), seed=1)))],
    "fmin": [(P("fmin"), lambda: (T((3, 4)), T((4,), seed=1)))],
    "where": [(lambda x, y: call("where", I([[1, 0, 1], [0, 0, 1]]).bool(), x, y),
               lambda: (T((2, 3)), T((3,), seed=1))),
              (lambda x: call("where", I([True, False, True]).bool(), x, 0.5),
               lambda: (T((3,)),))],
    "cast": [(lambda x: call("cast", call("cast", x, dtype=torch.float32), dtype=F64),
              lambda: (T((3, 4)),), dict(eps=1e-3, atol=1e-4))],
    "sum": [(P("sum", dims=(1,), keepdim=False), lambda: (T((2, 3, 4)),)),
            (P("sum", dims=(0, 2), keepdim=True), lambda: (T((2, 3, 4)),)),
            (P("sum", dims=None), lambda: (T((2, 3)),))],
    "prod": [(P("prod", dims=(1,)), lambda: (T((3, 4)),)),
             (P("prod", dims=(1,)),
              lambda: (torch.tensor([[0., 2., 3.], [0., 0., 2.], [1., 2., 0.5]], dtype=F64,
                                    requires_grad=True),)),
             (P("prod", dims=None), lambda: (torch.tensor([1.5, 0., 2.], dtype=F64,
                                                          requires_grad=True),))],
    "amax": [(P("amax", dims=(1,)), lambda: (T((3, 4)),)),
             (P("amax", dims=None, keepdim=False), lambda: (T((3, 4)),))],
    "amin": [(P("amin", dims=(0,), keepdim=True), lambda: (T((3, 4)),))],
    "cumsum": [(P("cumsum", dim=1), lambda: (T((2, 4)),))],
    "cumprod": [(P("cumprod", dim=1), lambda: (T((2, 4)),)),
                (P("cumprod", dim=0), lambda: (torch.tensor([2., 0., 3., 0.5], dtype=F64,
                                                            requires_grad=True),)),
                (P("cumprod", dim=1), lambda: (torch.tensor([[0., 2., 0., 3.], [1., 0., 2., 2.]],
                                                            dtype=F64, requires_grad=True),))],
    "reshape": [(P("reshape", shape=(4, 3)), lambda: (T((2, 6)),))],
    "permute": [(P("permute", dims=(2, 0, 1)), lambda: (T((2, 3, 4)),))],
    "expand": [(P("expand", shape=(2, 3, 4)), lambda: (T((3, 1)),))],
    "slice": [(P("slice", dim=1, start=1, stop=5, step=2), lambda: (T((2, 6)),))],
    "select": [(P("select", dim=1, index=2), lambda: (T((2, 4, 3)),)),
               (P("select", dim=0, index=-1), lambda: (T((3,)),))],
    "slice_scatter": [(P("slice_scatter", dim=1, start=0, stop=6, step=3),
                       lambda: (T((2, 6)), T((2, 2), seed=1)))],
    "flip": [(P("flip", dims=(0, 1)), lambda: (T((2, 3)),))],
    "diagonal": [(P("diagonal", offset=1, dim1=0, dim2=1), lambda: (T((3, 4)),)),
                 (P("diagonal", offset=0, dim1=1, dim2=2), lambda: (T((2, 3, 3)),))],
    "diagonal_scatter": [(P("diagonal_scatter", offset=-1, dim1=0, dim2=1),
                          lambda: (T((3, 3)), T((2,), seed=1)))],
    # (overlapping windows: elements read twice get both gradients)
    "as_strided": [(P("as_strided", size=(3, 3), stride=(2, 1), offset=1), lambda: (T((2, 5)),))],
    "as_strided_scatter": [(P("as_strided_scatter", size=(2, 2), stride=(1, 3), offset=1),
                            lambda: (T((2, 4)), T((2, 2), seed=1))),
                           (P("as_strided_scatter", size=(2, 2), stride=(1, 1), offset=0,
                              accumulate=True), lambda: (T((3,)), T((2, 2), seed=1)))],
    "cat": [(P("cat", dim=1), lambda: (T((2, 1)), T((2, 3), seed=1), T((2, 2), seed=2)))],
    "index": [(lambda x: call("index", x, I([0, 2, 0]), pos=(0,)), lambda: (T((3, 4)),)),
              (lambda x: call("index", x, I([[0, 1]]), I([1, 1]), pos=(0, 2)),
               lambda: (T((2, 3, 4)),))],
    "index_put": [(lambda x, v: call("index_put", x, v, I([2, 0]), pos=(0,), accumulate=False),
                   lambda: (T((3, 4)), T((4,), seed=1))),
                  (lambda x, v: call("index_put", x, v, I([1, 1, 0]), pos=(1,), accumulate=True),
                   lambda: (T((2, 3)), T((2, 3), seed=1)))],
    "gather": [(lambda x: call("gather", x, I([[0, 0, 2], [1, 2, 1]]), dim=1),
                lambda: (T((2, 4)),))],
    "scatter": [(lambda x, s: call("scatter", x, I([[0, 2], [3, 1]]), s, dim=1),
                 lambda: (T((2, 4)), T((2, 3), seed=1))),
                (lambda x, s: call("scatter", x, I([[0, 0], [1, 0]]), s, dim=0, reduce="add"),
                 lambda: (T((2, 3)), T((2, 2), seed=1)))],
    "matmul": [(P("matmul"), lambda: (T((2, 3)), T((3, 4), seed=1))),
               (P("matmul"), lambda: (T((2, 1, 2, 3)), T((3, 3, 2), seed=1)))],
    "einsum": [(P("einsum", equation="ij,jk->ik"), lambda: (T((2, 3)), T((3, 4), seed=1))),
               (P("einsum", equation="bij,bj->bi"), lambda: (T((2, 2, 3)), T((2, 3), seed=1))),
               (P("einsum", equation="ij->"), lambda: (T((2, 3)),)),
               (P("einsum", equation="i,j,k->ijk"),
                lambda: (T((2,)), T((3,), seed=1), T((2,), seed=2)))],
    "inv": [(P("inv"), lambda: (_sq(3, 0),))],
    "logcumsumexp": [(P("logcumsumexp", dim=1), lambda: (T((2, 4), -3, 3),)),
                     (P("logcumsumexp", dim=0), lambda: (T((3, 2), seed=1),))],
    "lu_factor": [(lambda a: call("lu_factor", a)[0], lambda: (T((3, 3), seed=6),)),
                  (lambda a: call("lu_factor", a)[0], lambda: (T((2, 4, 4), seed=7),))],
    "matrix_exp": [(P("matrix_exp"), lambda: (T((3, 3), seed=8),)),
                   (P("matrix_exp"), lambda: (T((2, 2, 2), -3, 3, seed=9),))],
    "pinv": [(P("pinv", atol=0.0, rtol=1e-12), lambda: (T((4, 3), seed=10),)),
             (P("pinv", atol=0.0, rtol=1e-12), lambda: (T((2, 2, 3), seed=11),))],
    # svd: singular values alone, and every output (reduced, tall and wide) through a
    # sign-invariant function of the singular vectors
    "svd": [(lambda a: call("svd", a, full_matrices=False)[1], lambda: (T((4, 3), seed=12),)),
            (lambda a: [t for t in call("svd", a, full_matrices=False)][0].abs().sum(0),
             lambda: (T((4, 3), seed=13),)),
            (lambda a: (lambda u, s, vh: (u * vh.sum(-1)) @ vh)(*call("svd", a, full_matrices=False)),
             lambda: (T((3, 5), seed=14),)),
            (lambda a: (lambda u, s, vh: u @ (s.unsqueeze(-1) * vh))(
                *call("svd", a, full_matrices=False)), lambda: (T((5, 3), seed=15),))],
    "det": [(P("det"), lambda: (_sq(3, 0),)),
            (P("det"), lambda: (T((2, 3, 3), seed=4),))],
    "solve": [(P("solve"), lambda: (_sq(3, 0), T((3, 2), seed=1))),
              (P("solve"), lambda: (_sq(2, 0), T((3, 2, 1), seed=1)))],
    # cholesky reads one triangle, so its input is built symmetric positive-definite
    "cholesky": [(lambda x: call("cholesky", x @ x.mT + 3 * torch.eye(3, dtype=F64))[0],
                  lambda: (T((3, 3), seed=2),)),
                 (lambda x: call("cholesky", x @ x.mT + 3 * torch.eye(3, dtype=F64), upper=True)[0],
                  lambda: (T((2, 3, 3), seed=3),))],
    "solve_triangular": [(P("solve_triangular", upper=False), lambda: (_sq(3, 0), T((3, 2), seed=1))),
                         (P("solve_triangular", upper=True, unitriangular=True),
                          lambda: (_sq(3, 2), T((2, 3, 2), seed=1))),
                         (lambda a, b: call("solve_triangular", a + 2 * torch.eye(3, dtype=F64), b,
                                            upper=True),
                          lambda: (T((2, 3, 3), seed=4), T((3, 1), seed=5)))],
    # through log_softmax: ctc_loss's rule is PyTorch's gradient, which assumes log-probabilities
    "ctc_loss": [(lambda x: call("ctc_loss", torch.log_softmax(x, 2), torch.tensor([[1, 2], [2, 2]]),
                                 torch.tensor([4, 3]), torch.tensor([2, 1])),
                  lambda: (T((4, 2, 3), seed=7),))],
    # symmetric inputs; eigenvectors enter through v*v (their sign is arbitrary)
    "eigh": [(lambda x: call("eigh", x + x.mT)[0], lambda: (T((4, 4), seed=8),)),
             (lambda x: call("eigh", x + x.mT)[1] ** 2, lambda: (T((2, 3, 3), seed=9),))],
    # real-valued functions of the complex outputs that ignore each eigenvector's phase
    "eig": [(lambda x: call("eig", x)[0].abs().sum(-1), lambda: (T((2, 3, 3), seed=10),)),
            (lambda x: call("eig", x)[1].abs() ** 2, lambda: (T((4, 4), seed=11),))],
    "qr": [(lambda x: call("qr", x)[0], lambda: (T((4, 3), seed=5),)),
           (lambda x: call("qr", x)[1], lambda: (T((4, 3), seed=5),)),
           (lambda x: call("qr", x), lambda: (T((3, 3), seed=6),))],
    "diag_embed": [(P("diag_embed"), lambda: (T((2, 3)),))],
    "windows": [(P("windows", kernel=(2,), stride=(2,), dilation=(1,)), lambda: (T((2, 5)),)),
                (P("windows", kernel=(2, 2), stride=(1, 2), dilation=(2, 1)),
                 lambda: (T((1, 4, 5)),))],
    "fold_windows": [(P("fold_windows", size=(5,), kernel=(2,), stride=(1,), dilation=(2,)),
                      lambda: (T((2, 3, 2)),)),
                     (P("fold_windows", size=(3, 4), kernel=(2, 2), stride=(1, 2), dilation=(1, 1)),
                      lambda: (T((2, 2, 2, 2)),))],
    "window_max": [(lambda x: call("window_max", x, kernel=(2, 2), stride=(2, 2), dilation=(1, 1),
                                   padding=((0, 0), (0, 0)))[0], lambda: (T((2, 4, 4)),)),
                   (lambda x: call("window_max", x, kernel=(3,), stride=(1,), dilation=(1,),
                                   padding=((1, 1),))[0], lambda: (T((2, 6)),))],
    "plane_scatter": [(P("plane_scatter", size=(4,), unique=False),
                       lambda: (T((2, 3)), I([[0, 2, 0], [3, 1, 3]]))),
                      (P("plane_scatter", size=(2, 2), unique=True),
                       lambda: (T((2, 1, 2)), I([[[3, 0]], [[1, 2]]])))],
}


def test_every_differentiable_primitive_has_a_rule_and_a_case():
    missing_rule = [n for n, p in REGISTRY.items() if p.differentiable and p.vjp is None]
    missing_case = [n for n, p in REGISTRY.items() if p.differentiable and n not in PRIM_CASES]
    assert not missing_rule, f"differentiable primitives without a VJP rule: {missing_rule}"
    assert not missing_case, f"differentiable primitives without a gradcheck case: {missing_case}"
    stale = [n for n in PRIM_CASES if n not in REGISTRY or not REGISTRY[n].differentiable]
    assert not stale, f"cases for primitives that are gone or not differentiable: {stale}"


_PRIM_PARAMS = [pytest.param(name, i, id=f"{name}-{i}")
                for name in sorted(n for n, p in REGISTRY.items() if p.differentiable)
                for i in range(max(1, len(PRIM_CASES.get(name, ()))))]


@pytest.mark.parametrize("name,i", _PRIM_PARAMS)
def test_primitive_gradcheck(name, i):
    assert name in PRIM_CASES, f"no gradcheck case for differentiable primitive {name!r}"
    case = PRIM_CASES[name][i]
    fn, make = case[0], case[1]
    opts = case[2] if len(case) > 2 else {}
    assert gradcheck(fn, make(), **opts)


def test_gradcheck_detects_a_wrong_rule():
    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x          # should be 2 * g * x

    with pytest.raises(GradcheckError, match="Jacobian mismatch"):
        gradcheck(Wrong.apply, (T((3,)),))
    assert gradcheck(Wrong.apply, (T((3,)),), raise_exception=False) is False
    # the input tensor is left as it was after the finite differences
    x = T((3,))
    before = x.detach().clone()
    gradcheck(lambda t: t * 2, (x,))
    assert_close(x.detach(), before._data)


# ---- public composite ops -------------------------------------------------------------------

def _setitem_fn(idx):
    def f(x, v):
        y = x.clone()
        y[idx] = v
        return y
    return f


COMPOSITE = {
    "mean": (lambda x: x.mean(), lambda: (T((3, 4)),)),
    "mean_dim": (lambda x: torch.mean(x, (0, 2), keepdim=True), lambda: (T((2, 3, 2)),)),
    "var": (lambda x: x.var(1), lambda: (T((3, 4)),)),
    "var_all_biased": (lambda x: torch.var(x, unbiased=False), lambda: (T((3, 4)),)),
    "std": (lambda x: x.std(0, keepdim=True), lambda: (T((3, 4)),)),
    "logsumexp": (lambda x: torch.logsumexp(x, 1), lambda: (T((3, 4), -3, 3),)),
    "norm_2": (lambda x: x.norm(), lambda: (T((3, 4)),)),
    "norm_1_dim": (lambda x: torch.norm(x, 1, dim=1), lambda: (away0((3, 4)),)),
    "norm_inf": (lambda x: torch.norm(x, float("inf")), lambda: (T((3, 4)),)),
    "norm_3": (lambda x: torch.norm(x, 3, dim=0), lambda: (away0((3, 4)),)),
    "norm_fro": (lambda x: torch.norm(x, "fro"), lambda: (T((3, 4)),)),
    "vector_norm": (lambda x: torch.linalg.vector_norm(x, 2, dim=-1), lambda: (T((3, 4)),)),
    "matrix_norm_1": (lambda x: torch.linalg.matrix_norm(x, 1), lambda: (away0((3, 4)),)),
    "softmax": (lambda x: torch.softmax(x, -1), lambda: (T((3, 4), -2, 2),)),
    "log_softmax": (lambda x: torch.log_softmax(x, 0), lambda: (T((3, 4), -2, 2),)),
    "clamp": (lambda x: torch.clamp(x, -0.5, 0.4), lambda: (frac((3, 4)) * 0.3,)),
    "clamp_tensor": (lambda x, lo: torch.clamp(x, min=lo), lambda: (T((3, 4)), T((4,), seed=2))),
    "relu": (lambda x: torch.relu(x), lambda: (away0((3, 4)),)),
    "where": (lambda x, y: torch.where(x > 0, x, y), lambda: (away0((3, 4)), T((4,), seed=1))),
    "mm": (lambda a, b: torch.mm(a, b), lambda: (T((2, 3)), T((3, 4), seed=1))),
    "addmm": (lambda c, a, b: torch.addmm(c, a, b, beta=0.5, alpha=2.0),
              lambda: (T((4,)), T((2, 3), seed=1), T((3, 4), seed=2))),
    "bmm": (lambda a, b: torch.bmm(a, b), lambda: (T((2, 2, 3)), T((2, 3, 2), seed=1))),
    "dot": (lambda a, b: torch.dot(a, b), lambda: (T((3,)), T((3,), seed=1))),
    "mv": (lambda a, b: torch.mv(a, b), lambda: (T((2, 3)), T((3,), seed=1))),
    "outer": (lambda a, b: torch.outer(a, b), lambda: (T((2,)), T((3,), seed=1))),
    "einsum_pub": (lambda a, b: torch.einsum("bij,bjk->bik", a, b),
                   lambda: (T((2, 2, 3)), T((2, 3, 2), seed=1))),
    "einsum_ellipsis": (lambda a, b: torch.einsum("...ij,...jk->...ik", a, b),
                        lambda: (T((2, 2, 3)), T((3, 2), seed=1))),
    "einsum_trace": (lambda a: torch.einsum("ii->", a), lambda: (T((3, 3)),)),
    "einsum_diag": (lambda a: torch.einsum("bii->bi", a), lambda: (T((2, 3, 3)),)),
    "tensordot": (lambda a, b: torch.tensordot(a, b, dims=([1], [0])),
                  lambda: (T((2, 3)), T((3, 2), seed=1))),
    "cat": (lambda a, b: torch.cat([a, b], 0), lambda: (T((1, 3)), T((2, 3), seed=1))),
    "stack": (lambda a, b: torch.stack([a, b], 1), lambda: (T((2, 3)), T((2, 3), seed=1))),
    "split": (lambda a: torch.split(a, [1, 3], dim=1), lambda: (T((2, 4)),)),
    "chunk": (lambda a: torch.chunk(a, 2, 0)[1], lambda: (T((5, 2)),)),
    "unbind": (lambda a: a.unbind(1), lambda: (T((2, 3)),)),
    "getitem_basic": (lambda a: a[1:, ::2, 0], lambda: (T((3, 4, 2)),)),
    "getitem_int_list": (lambda a: a[[0, 2, 0]], lambda: (T((3, 2)),)),
    "getitem_mask": (lambda a: a[a > 0], lambda: (away0((3, 4)),)),
    "getitem_adv_mixed": (lambda a: a[:, [1, 0], None, 1], lambda: (T((2, 3, 2)),)),
    "getitem_none_ellipsis": (lambda a: a[None, ..., 1], lambda: (T((2, 3)),)),
    "setitem_slice": (_setitem_fn((slice(None), slice(1, 3))), lambda: (T((3, 4)), T((3, 2), seed=1))),
    "setitem_index": (_setitem_fn(([0, 2],)), lambda: (T((3, 4)), T((4,), seed=1))),
    "setitem_scalar_value": (lambda x: _setitem_fn((0, 1))(x, 5.0), lambda: (T((3, 4)),)),
    "index_select": (lambda a: torch.index_select(a, 1, I([2, 0, 2])), lambda: (T((2, 3)),)),
    "masked_fill": (lambda a: a.masked_fill(a > 0, 0.5), lambda: (away0((3, 4)),)),
    "gather": (lambda a: torch.gather(a, 0, I([[1, 0, 1]])), lambda: (T((2, 3)),)),
    "scatter": (lambda a, s: torch.scatter(a, 1, I([[2], [0]]), s),
                lambda: (T((2, 3)), T((2, 1), seed=1))),
    "scatter_add": (lambda a, s: torch.scatter_add(a, 0, I([[1, 0, 1], [1, 1, 0]]), s),
                    lambda: (T((2, 3)), T((2, 3), seed=1))),
    "index_add": (lambda a, s: torch.index_add(a, 0, I([2, 0, 2]), s),
                  lambda: (T((3, 2)), T((3, 2), seed=1))),
    "index_add_dim1": (lambda a, s: a.index_add(1, I([1, 1]), s, alpha=2.0),
                       lambda: (T((2, 3)), T((2, 2), seed=1))),
    "sort": (lambda a: torch.sort(a, 1)[0], lambda: (T((3, 4)),)),
    "sort_desc": (lambda a: torch.sort(a, 0, descending=True).values, lambda: (T((3, 4)),)),
    "topk": (lambda a: torch.topk(a, 2)[0], lambda: (T((3, 4)),)),
    "max_dim": (lambda a: torch.max(a, 1)[0], lambda: (T((3, 4)),)),
    "min_dim_keep": (lambda a: torch.min(a, 0, keepdim=True).values, lambda: (T((3, 4)),)),
    "max_all": (lambda a: a.max(), lambda: (T((3, 4)),)),
    "median": (lambda a: a.median(), lambda: (T((3, 3)),)),
    "median_dim": (lambda a: torch.median(a, 1)[0], lambda: (T((3, 4)),)),
    "kthvalue": (lambda a: torch.kthvalue(a, 2, 1)[0], lambda: (T((3, 4)),)),
    "cumsum": (lambda a: torch.cumsum(a, 0), lambda: (T((3, 2)),)),
    "cumprod_zeros": (lambda a: torch.cumprod(a, 1),
                      lambda: (torch.tensor([[1., 0., 2.], [0., 0., 3.]], dtype=F64,
                                            requires_grad=True),)),
    "prod_zeros": (lambda a: torch.prod(a, 0),
                   lambda: (torch.tensor([[1., 0., 2.], [0., 0., 3.], [2., 0.5, 0.]], dtype=F64,
                                         requires_grad=True),)),
    "prod_all_one_zero": (lambda a: a.prod(), lambda: (torch.tensor([[1.5, 0.], [2., -1.]],
                                                                    dtype=F64, requires_grad=True),)),
    "inv": (lambda a: torch.linalg.inv(a), lambda: (_sq(3, 1),)),
    "det": (lambda a: torch.linalg.det(a), lambda: (_sq(3, 1),)),
    "slogdet": (lambda a: torch.linalg.slogdet(a)[1], lambda: (_sq(3, 1),)),
    "solve_vec": (lambda a, b: torch.linalg.solve(a, b), lambda: (_sq(3, 1), T((3,), seed=2))),
    "qr": (lambda a: torch.linalg.qr(a), lambda: (T((4, 2), seed=3),)),
    "broadcast_add": (lambda a, b: a + b, lambda: (T((2, 1, 3)), T((4, 1), seed=1))),
    "broadcast_mul_scalar_tensor": (lambda a, b: a * b, lambda: (T(()), T((2, 3), seed=1))),
    "transpose": (lambda a: a.transpose(0, 2) * 1.0, lambda: (T((2, 3, 4)),)),
    "t": (lambda a: a.t(), lambda: (T((2, 3)),)),
    "expand": (lambda a: a.expand(3, 2, 4), lambda: (T((2, 1)),)),
    "diagonal": (lambda a: torch.diagonal(a, -1), lambda: (T((3, 3)),)),
    "trace": (lambda a: torch.trace(a), lambda: (T((3, 3)),)),
    "tril": (lambda a: torch.tril(a, 1), lambda: (T((3, 4)),)),
    "view_flatten": (lambda a: a.view(6, 2).flatten(), lambda: (T((3, 4)),)),
    "squeeze_unsqueeze": (lambda a: a.unsqueeze(0).squeeze(2), lambda: (T((3, 1, 2)),)),
    "repeat": (lambda a: a.repeat(2, 3), lambda: (T((2, 2)),)),
    "roll": (lambda a: torch.roll(a, 1, 1), lambda: (T((2, 3)),)),
    "flip": (lambda a: torch.flip(a, [1]), lambda: (T((2, 3)),)),
    "lerp": (lambda a, b: torch.lerp(a, b, 0.3), lambda: (T((3,)), T((3,), seed=1))),
    "square_pow": (lambda a: a ** 2 + a.square(), lambda: (T((3,)),)),
    "inplace_chain": (lambda a: (a * 1.0).mul_(2).add_(a).exp_(), lambda: (T((3,)),)),
    "to_float32_back": (lambda a: a.float().double(), lambda: (T((3,)),),
                        dict(eps=1e-3, atol=1e-4)),
}


@pytest.mark.parametrize("name", sorted(COMPOSITE))
def test_composite_gradcheck(name):
    case = COMPOSITE[name]
    opts = case[2] if len(case) > 2 else {}
    assert gradcheck(case[0], case[1](), **opts)


@pytest.mark.parametrize("shapes", [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (3, 2)),
                                    ((2, 2, 3), (3, 2)), ((2, 3), (2, 3, 2)), ((3,), (2, 3, 2)),
                                    ((2, 2, 3), (3,)), ((2, 1, 2, 3), (3, 3, 2))])
def test_matmul_every_rank_combination(shapes):
    sa, sb = shapes
    a, b = T(sa), T(sb, seed=1)
    assert gradcheck(torch.matmul, (a, b))
    # and the values against NumPy
    r = torch.matmul(a, b)
    assert_close(r.detach(), np.matmul(a.detach()._data, b.detach()._data))


# ---- second derivatives ---------------------------------------------------------------------

GRADGRAD = {
    "mul": (lambda a, b: a * b, lambda: (T((2, 3)), T((3,), seed=1))),
    "div": (lambda a, b: a / b, lambda: (T((2, 3)), away0((2, 3), seed=1))),
    "pow_scalar": (lambda a: a ** 3, lambda: (T((3,)),)),
    "pow_tensor": (lambda a, b: a ** b, lambda: (T((3,), 0.5, 2), T((3,), seed=1))),
    "exp": (torch.exp, lambda: (T((3,)),)),
    "log": (torch.log, lambda: (T((3,), 0.5, 2),)),
    "sqrt": (torch.sqrt, lambda: (T((3,), 0.5, 2),)),
    "rsqrt": (torch.rsqrt, lambda: (T((3,), 0.5, 2),)),
    "sin": (torch.sin, lambda: (T((3,)),)),
    "cos": (torch.cos, lambda: (T((3,)),)),
    "tan": (torch.tan, lambda: (T((3,)),)),
    "tanh": (torch.tanh, lambda: (T((3,)),)),
    "sigmoid": (torch.sigmoid, lambda: (T((3,)),)),
    "erf": (torch.erf, lambda: (T((3,)),)),
    "reciprocal": (torch.reciprocal, lambda: (away0((3,)),)),
    "asin": (torch.asin, lambda: (T((3,), -0.7, 0.7),)),
    "atan": (torch.atan, lambda: (T((3,)),)),
    "sinh_cosh": (lambda a: torch.sinh(a) * torch.cosh(a), lambda: (T((3,)),)),
    "expm1_log1p": (lambda a: torch.expm1(a) + torch.log1p(a), lambda: (T((3,), 0, 1),)),
    "abs_relu": (lambda a: torch.abs(a) * torch.relu(a), lambda: (away0((3,)),)),
    "maximum": (torch.maximum, lambda: (T((3,)), T((3,), seed=1))),
    "atan2": (torch.atan2, lambda: (T((3,)), away0((3,), seed=1))),
    "softmax": (lambda a: torch.softmax(a, -1), lambda: (T((2, 3)),)),
    "matmul": (torch.matmul, lambda: (T((2, 3)), T((3, 2), seed=1))),
    "matmul_batched": (torch.matmul, lambda: (T((2, 2, 3)), T((3, 2), seed=1))),
    "mm_relu_mm": (lambda x, w1, w2: torch.relu(x @ w1) @ w2,
                   lambda: (T((2, 3)), away0((3, 3), seed=1), T((3, 2), seed=2))),
    "addmm": (lambda c, a, b: torch.addmm(c, a, b), lambda: (T((2,)), T((2, 3), seed=1),
                                                             T((3, 2), seed=2))),
    "mv": (torch.mv, lambda: (T((2, 3)), T((3,), seed=1))),
    "dot": (torch.dot, lambda: (T((3,)), T((3,), seed=1))),
    "einsum": (lambda a, b: torch.einsum("ij,jk->ik", a, b), lambda: (T((2, 3)), T((3, 2), seed=1))),
    "inv": (torch.linalg.inv, lambda: (_sq(2, 0),)),
    "det": (torch.linalg.det, lambda: (_sq(2, 0),)),
    "mean_var": (lambda a: a.var() + a.mean(), lambda: (T((4,)),)),
    # with zeros the product of the others still depends on them: d/dz of the gradient at a
    # nonzero x_i is the product of the rest (one zero), d/dz2 at z1 too (two zeros)
    "prod_zeros": (lambda a: a.prod(1), lambda: (_fixed([[0.0, 0.7, -1.3, 0.4],
                                                         [0.0, 0.0, 0.9, -1.1],
                                                         [0.0, 0.0, 0.0, 0.6],
                                                         [0.5, -0.8, 1.2, 0.9]]),)),
    "prod_all_one_zero": (lambda a: a.prod(), lambda: (_fixed([0.0, 0.7, -1.3, 0.4]),)),
    "cumprod_zero": (lambda a: a.cumprod(1), lambda: (_fixed([[0.6, 0.0, -1.3, 0.4],
                                                             [0.5, -0.8, 0.0, 0.0]]),)),
    "logcumsumexp": (lambda a: a.logcumsumexp(1), lambda: (T((2, 4)),)),
}


def _fixed(values):
    return torch.tensor(values, dtype=F64, requires_grad=True)


@pytest.mark.parametrize("name", sorted(GRADGRAD))
def test_gradgradcheck(name):
    fn, make = GRADGRAD[name]
    assert gradgradcheck(fn, make())


def test_against_torch_when_installed():
    real = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 4))
    b = rng.standard_normal((4, 2))
    for mod, store in ((torch, {}), (real, {})):
        x = mod.tensor(a, requires_grad=True)
        w = mod.tensor(b, requires_grad=True)
        y = (mod.log_softmax(x @ w, dim=1) * mod.tensor([1.0, -2.0], dtype=mod.float64)).sum()
        z = (x.var(0) * x.norm(dim=0)).sum() + mod.logsumexp(x, 1).sum()
        (y + z).backward()
        store["x"], store["w"] = x.grad.detach().numpy(), w.grad.detach().numpy()
        if mod is torch:
            mine = store
        else:
            np.testing.assert_allclose(mine["x"], store["x"], rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(mine["w"], store["w"], rtol=1e-10, atol=1e-12)


# ---- gradcheck's flags: each one both passes a correct function and catches a wrong one ------

C128 = torch.complex128


def C(shape, seed=0):
    r = _rng(seed)
    a = r.uniform(-1, 1, size=shape) + 1j * r.uniform(-1, 1, size=shape)
    return torch.tensor(a, dtype=C128, requires_grad=True)


def _fn(fwd, bwd, jvp=None, materialize=True):
    """A custom Function x -> fwd(x) with the given backward(g, x) and jvp(t, x) rules."""
    class F(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(materialize)
            ctx.save_for_backward(x)
            ctx.save_for_forward(x)
            return fwd(x)

        @staticmethod
        def backward(ctx, g):
            return bwd(g, ctx.saved_tensors[0])

        @staticmethod
        def jvp(ctx, t):
            return jvp(t, ctx.saved_tensors[0])
    return F.apply


SQ_OK = _fn(lambda x: x * x, lambda g, x: 2 * g * x.conj(), lambda t, x: 2 * x * t)
SQ_BAD_BWD = _fn(lambda x: x * x, lambda g, x: g * x.conj(), lambda t, x: 2 * x * t)
SQ_BAD_JVP = _fn(lambda x: x * x, lambda g, x: 2 * g * x.conj(), lambda t, x: x * t)
# complex z*z with the holomorphic derivative but without PyTorch's conjugate
SQ_NO_CONJ = _fn(lambda x: x * x, lambda g, x: 2 * g * x, lambda t, x: 2 * x * t)
# |z|^2 (real): PyTorch's gradient is 2 g z; 2 g conj(z) is the conjugate Wirtinger mistake
NSQ_OK = _fn(lambda z: (z.conj() * z).real, lambda g, z: 2 * g * z,
             lambda t, z: 2 * (z.conj() * t).real)
NSQ_BAD = _fn(lambda z: (z.conj() * z).real, lambda g, z: 2 * g * z.conj(),
              lambda t, z: 2 * (z.conj() * t).real)

FLAG_SETS = {"backward": {}, "forward": dict(check_forward_ad=True),
             "forward-only": dict(check_forward_ad=True, check_backward_ad=False),
             "fast": dict(fast_mode=True),
             "fast-forward": dict(fast_mode=True, check_forward_ad=True),
             "batched": dict(check_batched_grad=True), "nondet": dict(nondet_tol=1e-12)}
COMPLEX_FNS = {"exp": torch.exp, "square": lambda z: z * z, "abs": torch.abs,
               "conj-mul": lambda z: z.conj() * z, "real": torch.real, "imag": torch.imag,
               "angle": torch.angle, "custom-square": SQ_OK, "custom-normsq": NSQ_OK}


@pytest.mark.parametrize("flags", sorted(FLAG_SETS))
@pytest.mark.parametrize("name", sorted(COMPLEX_FNS))
def test_complex_functions_pass_under_every_flag(name, flags):
    assert gradcheck(COMPLEX_FNS[name], (C((2, 3), seed=1),), **FLAG_SETS[flags])


def test_complex_jacobian_uses_real_and_imaginary_parts():
    # z*z = (x^2 - y^2) + 2xy i: rows d/dx, d/dy; columns Re, Im of the output
    from framework.autograd.gradcheck import _numerical
    z = torch.tensor([1.5 - 0.5j], dtype=C128, requires_grad=True)
    (J,) = _numerical(lambda z: z * z, (z,), 1e-6)[0]
    assert_close(J, np.array([[3.0, -1.0], [1.0, 3.0]]), atol=1e-8)


@pytest.mark.parametrize("fn,inp", [(SQ_NO_CONJ, lambda: C((3,))), (NSQ_BAD, lambda: C((3,))),
                                    (SQ_BAD_BWD, lambda: C((3,))), (SQ_BAD_BWD, lambda: T((3,)))])
@pytest.mark.parametrize("flags", ["backward", "fast", "batched"])
def test_wrong_backward_fails(fn, inp, flags):
    with pytest.raises(GradcheckError, match="Jacobian mismatch for output 0 with respect to "
                                             "input 0"):
        gradcheck(fn, (inp(),), **FLAG_SETS[flags])
    assert gradcheck(fn, (inp(),), raise_exception=False, **FLAG_SETS[flags]) is False


@pytest.mark.parametrize("make", [lambda: T((3,)), lambda: C((3,))], ids=["real", "complex"])
@pytest.mark.parametrize("fast", [False, True])
def test_forward_ad_flag(make, fast):
    # the wrong jvp is invisible to reverse mode and caught by check_forward_ad
    assert gradcheck(SQ_BAD_JVP, (make(),), fast_mode=fast)
    for backward in (True, False):
        with pytest.raises(GradcheckError, match="Jacobian computed with forward mode mismatch "
                                                 "for output 0 with respect to input 0"):
            gradcheck(SQ_BAD_JVP, (make(),), check_forward_ad=True, check_backward_ad=backward,
                      fast_mode=fast)
        assert gradcheck(SQ_BAD_JVP, (make(),), check_forward_ad=True, fast_mode=fast,
                         check_backward_ad=backward, raise_exception=False) is False
    # check_backward_ad=False skips the wrong backward
    assert gradcheck(SQ_BAD_BWD, (make(),), check_forward_ad=True, check_backward_ad=False,
                     fast_mode=fast)


def test_flag_combinations_pytorch_refuses():
    x = T((3,))
    with pytest.raises(AssertionError, match="at least one of check_forward_ad"):
        gradcheck(torch.sin, (x,), check_backward_ad=False)
    with pytest.raises(AssertionError, match="check_batched_grad=True requires"):
        gradcheck(torch.sin, (x,), check_batched_grad=True, check_backward_ad=False,
                  check_forward_ad=True)
    with pytest.raises(NotImplementedError, match="check_batched_forward_grad"):
        gradcheck(torch.sin, (x,), check_forward_ad=True, check_batched_forward_grad=True)
    with pytest.raises(AssertionError, match="at least one of check_fwd_over_rev"):
        gradgradcheck(torch.sin, (x,), check_rev_over_rev=False)
    sp = torch.sparse_coo_tensor(I([[0, 1], [1, 2]]).cpu(),      # sparse lives on the cpu only
                                 torch.tensor([1.0, 2.0], dtype=F64).cpu(), (2, 3)).requires_grad_()
    with pytest.raises(NotImplementedError, match="sparse inputs"):
        gradcheck(lambda t: t.to_dense(), (sp,), masked=True)


def test_fast_mode_several_inputs_and_outputs():
    f = lambda a, b: (a @ b, (a.sin() * 2).sum(1), torch.polar(b.abs() + 1, b))   # noqa: E731
    a, b = T((2, 3), seed=1), T((3, 2), seed=2)
    assert gradcheck(f, (a, b), fast_mode=True, check_forward_ad=True)
    assert gradcheck(f, (a, b), check_forward_ad=True)
    bad = lambda a, b: (a @ b, SQ_BAD_BWD(b))   # noqa: E731
    with pytest.raises(GradcheckError, match="(?s)output 1 with respect to input 1.*fast mode"):
        gradcheck(bad, (a, b), fast_mode=True)


def test_batched_grad_flag():
    assert gradcheck(lambda a, b: (a @ b).tanh(), (T((2, 3)), T((3, 2), seed=1)),
                     check_batched_grad=True)
    # a backward that leaves the tensor world (vmap cannot batch it) is caught only by the flag
    leaky = _fn(lambda x: x * 2, lambda g, x: 2 * torch.tensor(g.tolist(), dtype=F64))
    assert gradcheck(leaky, (T((3,)),))
    with pytest.raises(GradcheckError, match="batched grad"):
        gradcheck(leaky, (T((3,)),), check_batched_grad=True)
    assert gradcheck(leaky, (T((3,)),), check_batched_grad=True, raise_exception=False) is False


def test_undefined_grad_flag():
    # backward gives ones for an all-zero cotangent (PyTorch requires zeros or None)
    ones_at_zero = _fn(lambda x: x * 2, lambda g, x: 2 * g if g.abs().sum().item() else
                       torch.ones_like(x))
    assert gradcheck(ones_at_zero, (T((3,)),), check_undefined_grad=False)
    with pytest.raises(GradcheckError, match="Expected all input grads to be undefined or zero"):
        gradcheck(ones_at_zero, (T((3,)),))
    assert gradcheck(ones_at_zero, (T((3,)),), raise_exception=False) is False

    class Two(torch.autograd.Function):     # fails when one grad is None and the other zero
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            if (g1 is None and not g2.abs().sum().item()) or (g2 is None and not
                                                               g1.abs().sum().item()):
                raise RuntimeError("cannot handle an undefined grad")
            return (0 if g1 is None else 2 * g1) + (0 if g2 is None else 3 * g2)

    assert gradcheck(Two.apply, (T((3,)),), check_undefined_grad=False)
    with pytest.raises(GradcheckError, match="handle undefined output grads"):
        gradcheck(Two.apply, (T((3,)),))
    # forward mode: a jvp giving ones for a zero tangent differs from no tangent at all
    jvp_ones = _fn(lambda x: x * 2, lambda g, x: 2 * g,
                   lambda t, x: 2 * t if t.abs().sum().item() else torch.ones_like(x))
    assert gradcheck(jvp_ones, (T((3,)),), check_forward_ad=True, check_undefined_grad=False)
    with pytest.raises(GradcheckError, match="undefined tangent"):
        gradcheck(jvp_ones, (T((3,)),), check_forward_ad=True)


def test_nondet_tol_flag():
    noise = np.random.default_rng(5)
    noisy = _fn(lambda x: x * 2,
                lambda g, x: g * (2 + torch.tensor(noise.standard_normal(3) * 1e-9)))
    with pytest.raises(GradcheckError, match="Backward is not reentrant"):
        gradcheck(noisy, (T((3,)),))
    assert gradcheck(noisy, (T((3,)),), raise_exception=False) is False
    assert gradcheck(noisy, (T((3,)),), nondet_tol=1e-7)
    assert gradcheck(noisy, (T((3,)),), nondet_tol=1e-7, fast_mode=True)


def test_gradgradcheck_fwd_over_rev():
    # first derivative right, second wrong: the backward is not differentiable through x
    detached = _fn(lambda x: x * x, lambda g, x: 2 * g * x.detach(), lambda t, x: 2 * x * t)
    assert gradcheck(detached, (T((3,)),), check_forward_ad=True)
    for rev in (True, False):
        assert gradgradcheck(torch.sin, (T((3,)),), check_fwd_over_rev=True,
                             check_rev_over_rev=rev, check_undefined_grad=rev)
        with pytest.raises(GradcheckError, match="mismatch"):
            gradgradcheck(detached, (T((3,)),), check_fwd_over_rev=True, check_rev_over_rev=rev,
                          check_undefined_grad=rev)
    with pytest.raises(GradcheckError, match="computed with forward mode"):
        gradgradcheck(detached, (T((3,)),), check_fwd_over_rev=True, check_rev_over_rev=False,
                      check_undefined_grad=False)


def test_non_contiguous_cotangents_and_inputs():
    seen = []

    def record(g, x):
        seen.append(g.is_contiguous())
        return 2 * g * x
    sq = _fn(lambda x: x * x, record)
    for non_contig in (True, False):
        seen.clear()
        assert gradgradcheck(sq, (T((3, 2)),), gen_non_contig_grad_outputs=non_contig)
        assert (False in seen) is non_contig
    detached = _fn(lambda x: x * x, lambda g, x: 2 * g * x.detach())
    assert gradgradcheck(detached, (T((3, 2)),), gen_non_contig_grad_outputs=True,
                         raise_exception=False) is False
    # a non-contiguous input is perturbed as it is (strides kept) and left unchanged
    x = T((4, 3)).detach().t().requires_grad_()
    before = x.detach().clone()
    contig = []
    assert gradcheck(lambda a: (contig.append(a.is_contiguous()), a.sin() * a)[1], (x,))
    assert set(contig) == {False}
    assert_close(x.detach(), before._data)
