"""Hypothesis fuzzer: random programs of pointwise / reduction / view / matmul ops; compile(f)(x)
must equal f(x) in values and in gradients (through the compiled region backward)."""
import numpy as np
from hypothesis import given, settings, strategies as st, HealthCheck

import framework as torch

# each op: (name, fn(t) -> t); all keep values finite for inputs in [-2, 2]
UNARY = [
    ("tanh", lambda t: t.tanh()),
    ("sin", lambda t: t.sin()),
    ("sigmoid", lambda t: t.sigmoid()),
    ("relu", lambda t: t.relu()),
    ("square", lambda t: t * t),
    ("exp_small", lambda t: (t * 0.3).exp()),
    ("abs1", lambda t: t.abs() + 1),
    ("scale", lambda t: t * 1.5 - 0.25),
    ("clamp", lambda t: t.clamp(-1.0, 1.0)),
    ("softplus", lambda t: torch.nn.functional.softplus(t)),
]
REDUCE = [
    ("sum_last", lambda t: t.sum(-1, keepdim=True)),
    ("mean_first", lambda t: t.mean(0, keepdim=True)),
    ("amax_last", lambda t: t.amax(-1, keepdim=True)),
    ("softmax", lambda t: t.softmax(-1)),
    ("logsumexp", lambda t: t.logsumexp(-1, keepdim=True)),
]
VIEW = [
    ("transpose", lambda t: t.t()),
    ("flip_reshape", lambda t: t.reshape(-1).flip(0).reshape(t.shape)),
    ("slice", lambda t: t[:, ::2] if t.shape[1] > 1 else t),
    ("expand", lambda t: t[:1].expand(t.shape[0], t.shape[1]) if t.shape[0] else t),
    # a value meeting its own transpose (and, in backward, a gradient with a permuted term)
    ("plus_own_transpose", lambda t: t.t().tanh() + t * 0.5 if t.shape[0] == t.shape[1]
     else t),
]


def _matmul(t, w):
    return t @ w[: t.shape[-1], : t.shape[-1]]


BINARY = [
    ("add", lambda a, b: a + b),
    ("mul", lambda a, b: a * b),
    ("sub", lambda a, b: a - b),
    ("maximum", lambda a, b: torch.maximum(a, b)),
]

op_choice = st.sampled_from(["unary", "reduce", "view", "matmul", "binary", "inplace"])


@st.composite
def programs(draw):
    n_ops = draw(st.integers(1, 8))
    steps = []
    for _ in range(n_ops):
        kind = draw(op_choice)
        if kind == "unary":
            steps.append((kind, draw(st.integers(0, len(UNARY) - 1))))
        elif kind == "reduce":
            steps.append((kind, draw(st.integers(0, len(REDUCE) - 1))))
        elif kind == "view":
            steps.append((kind, draw(st.integers(0, len(VIEW) - 1))))
        elif kind == "binary":
            steps.append((kind, draw(st.integers(0, len(BINARY) - 1))))
        else:
            steps.append((kind, 0))
    rows = draw(st.integers(1, 5))
    cols = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2 ** 16))
    return steps, rows, cols, seed


def build(steps):
    def f(x, w):
        vals = [x]
        t = x
        for kind, k in steps:
            if kind == "unary":
                t = UNARY[k][1](t)
            elif kind == "reduce":
                t = REDUCE[k][1](t)
            elif kind == "view":
                t = VIEW[k][1](t)
            elif kind == "matmul":
                t = _matmul(t, w)
            elif kind == "binary":
                other = vals[len(vals) // 2]
                if other.shape == t.shape or other.shape == t.shape[::-1]:
                    other = other if other.shape == t.shape else other.t()
                    t = BINARY[k][1](t, other)
                else:
                    t = BINARY[k][1](t, t.sum(-1, keepdim=True) * 0.1)
            else:      # an in-place op on an intermediate
                t = t.clone()
                t.mul_(0.5).add_(1.0)
            vals.append(t)
        return (t * t).sum() + t.mean()
    return f


def describe(steps):
    names = {"unary": UNARY, "reduce": REDUCE, "view": VIEW, "binary": BINARY}
    return " -> ".join(names[k][i][0] if k in names else k for k, i in steps)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_compiled_equals_eager_values_and_gradients(prog):
    steps, rows, cols, seed = prog
    f = build(steps)
    rng = np.random.default_rng(seed)
    xa = rng.uniform(-2, 2, (rows, cols)).astype(np.float32)
    wa = rng.uniform(-1, 1, (8, 8)).astype(np.float32)
    x1 = torch.tensor(xa, requires_grad=True)
    w1 = torch.tensor(wa, requires_grad=True)
    x2 = torch.tensor(xa, requires_grad=True)
    w2 = torch.tensor(wa, requires_grad=True)
    ref = f(x1, w1)
    ref.backward()
    cf = torch.compile(f, fullgraph=True)
    out = cf(x2, w2)
    out.backward()
    msg = describe(steps)
    np.testing.assert_allclose(out.item(), ref.item(), rtol=1e-4, atol=1e-4, err_msg=msg)
    np.testing.assert_allclose(x2.grad.cpu().numpy(), x1.grad.cpu().numpy(), rtol=1e-4, atol=1e-4,
                               err_msg=msg)
    if w1.grad is None:
        assert w2.grad is None, msg
    else:
        np.testing.assert_allclose(w2.grad.cpu().numpy(), w1.grad.cpu().numpy(), rtol=1e-4, atol=1e-4,
                                   err_msg=msg)
    # no grad: the forward-only program gives the same value
    with torch.no_grad():
        np.testing.assert_allclose(cf(x2, w2).item(), ref.item(), rtol=1e-4, atol=1e-4,
                                   err_msg=msg)
