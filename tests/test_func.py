"""torch.func / torch.vmap: batching rules against per-sample loops, transforms against
autograd and finite differences, errors with torch's classes and messages."""
import logging

import numpy as np
import pytest

import framework as torch
from framework import nn
import framework.nn.functional as F
from framework.func import (vmap, grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian,
                            functional_call, stack_module_state)
from framework.func import batching


def _np(t):
    return t.detach().numpy()


def _loop(f, in_dims, *args):
    """Reference: f on each sample, results stacked along dim 0."""
    B = next(a.shape[d] for a, d in zip(args, in_dims) if d is not None)
    outs = [f(*[a if d is None else a.select(d, i) for a, d in zip(args, in_dims)])
            for i in range(B)]
    return torch.stack(outs)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    batching.FALLBACKS.clear()


_W = np.random.default_rng(1).standard_normal((3, 5)).astype(np.float32)

CASES = {
    "pointwise": lambda a, b: a * b + a.exp() - b.clamp(min=0) / 2,
    "sum_dim": lambda a, b: (a * b).sum(0, keepdim=True) + a.amax(),
    "mean_var": lambda a, b: a.mean() + a.var() + a.argmax() + a.cumsum(0)[-1],
    "softmax": lambda a, b: torch.softmax(a, -1) * torch.log_softmax(b, 0),
    "matmul": lambda a, b: a @ torch.from_numpy(_W) + (a.unsqueeze(0) @ b.unsqueeze(1)),
    "views": lambda a, b: a.reshape(3, 1).permute(1, 0).flip(1)[:, 1:].expand(2, 2).t(),
    "cat_stack": lambda a, b: torch.cat([torch.stack([a, b], 1), a[:1].unsqueeze(1).expand(1, 2)]),
    "index": lambda a, b: a[torch.tensor([2, 0, 2])] + b[1] + a[[0, 1]].sum(),
    "where": lambda a, b: torch.where(a > b, a, b * 3.0),
    "linear": lambda a, b: F.linear(a, torch.from_numpy(_W.T.copy()), torch.ones(5)),
    "gather": lambda a, b: torch.gather(a, 0, torch.tensor([1, 1, 0])),
    "diag": lambda a, b: torch.diag(a).sum(0) + torch.outer(a, b).diagonal(),
    "scatter": lambda a, b: torch.zeros(4).scatter_add(0, torch.tensor([0, 3, 0]), a),
    "index_put": lambda a, b: torch.index_put(a, (torch.tensor([0, 2]),), b[:2]) +
    torch.index_put(a, (torch.tensor([1, 1]),), b[0], accumulate=True),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_vmap_matches_loop(name):
    f = CASES[name]
    x, y = torch.randn(4, 3), torch.randn(4, 3)
    np.testing.assert_allclose(_np(vmap(f)(x, y)), _np(_loop(f, (0, 0), x, y)), rtol=1e-5,
                               atol=1e-5)
    # the batch dim elsewhere, and one operand shared by every sample
    np.testing.assert_allclose(_np(vmap(f, in_dims=(1, None))(x.t(), y[0])),
                               _np(_loop(f, (1, None), x.t(), y[0])), rtol=1e-5, atol=1e-5)
    assert batching.FALLBACKS == {}        # every primitive here has a batching rule


def test_vmap_indexing_by_batched_index():
    x, idx = torch.randn(5, 4, 6), torch.randint(0, 4, (5, 2))
    f = lambda a, i: a[:, i] * 2            # noqa: E731  (index on a non-leading dim)
    np.testing.assert_allclose(_np(vmap(f)(x, idx)), _np(_loop(f, (0, 0), x, idx)))
    g = lambda a, i: a[i, 1:3]              # noqa: E731
    np.testing.assert_allclose(_np(vmap(g)(x, idx)), _np(_loop(g, (0, 0), x, idx)))


def test_vmap_nn_ops():
    x = torch.randn(3, 2, 6, 6)
    w = torch.randn(4, 2, 3, 3)
    f = lambda a: F.conv2d(a.unsqueeze(0), w, padding=1).squeeze(0)       # noqa: E731
    np.testing.assert_allclose(_np(vmap(f)(x)), _np(_loop(f, (0,), x)), rtol=1e-5, atol=1e-5)
    logits, tgt = torch.randn(6, 5), torch.tensor([0, 4, 2, 2, 1, 3])
    ce = lambda a, t: F.cross_entropy(a.unsqueeze(0), t.unsqueeze(0))     # noqa: E731
    np.testing.assert_allclose(_np(vmap(ce)(logits, tgt)), _np(_loop(ce, (0, 0), logits, tgt)),
                               rtol=1e-6)
    lin = nn.Linear(5, 3)
    np.testing.assert_allclose(_np(vmap(lin)(logits)), _np(lin(logits)), rtol=1e-6)
    mp = lambda a: F.max_pool2d(a, 2)                                     # noqa: E731
    np.testing.assert_allclose(_np(vmap(mp)(x)), _np(_loop(mp, (0,), x)))


def test_shapes_inside_are_per_sample():
    seen = []

    def f(a):
        seen.append((tuple(a.shape), a.dim(), a.numel()))
        return a.sum(-1) if a.shape[-1] > 2 else a          # Python control flow on shapes
    r = vmap(f)(torch.randn(7, 3, 4))
    assert seen == [((3, 4), 2, 12)] and tuple(r.shape) == (7, 3)


def test_nested_vmap():
    A, B = torch.randn(2, 3), torch.randn(5, 4)
    r = vmap(vmap(torch.outer, in_dims=(None, 0)), in_dims=(0, None))(A, B)
    np.testing.assert_allclose(_np(r), np.einsum("ai,bj->abij", _np(A), _np(B)), rtol=1e-6)
    X = torch.randn(2, 3, 4)
    np.testing.assert_allclose(_np(vmap(vmap(lambda v: v.sum() * v))(X)),
                               _np(X.sum(-1, keepdim=True) * X), rtol=1e-6)
    # the inner vmap over dim 1 of an outer-batched tensor
    np.testing.assert_allclose(_np(vmap(vmap(torch.dot, in_dims=(1, None)), in_dims=(0, 0))(
        X, torch.randn(2, 3))).shape, (2, 4))


def test_in_dims_out_dims_pytrees():
    x, y = torch.randn(4, 3), torch.randn(3, 4)
    f = lambda d, s: {"a": d["p"] * s, "b": (d["q"] + 1, s)}            # noqa: E731
    out = vmap(f, in_dims=({"p": 0, "q": 1}, None), out_dims={"a": 1, "b": (0, None)})(
        {"p": x, "q": y}, 2.0)
    np.testing.assert_allclose(_np(out["a"]), _np(x.t() * 2))
    np.testing.assert_allclose(_np(out["b"][0]), _np(y.t() + 1))
    assert out["b"][1] == 2.0
    # an output that does not depend on the batch is broadcast along out_dims
    r = vmap(lambda a, b: b, in_dims=(0, None), out_dims=1)(x, torch.ones(2))
    assert tuple(r.shape) == (2, 4)
    r = vmap(lambda a: (a, a.sum()), out_dims=(1, 0))([x, x][0])
    assert tuple(r[0].shape) == (3, 4) and tuple(r[1].shape) == (4,)
    # negative dims, lists of tensors
    r = vmap(lambda l: l[0] + l[1], in_dims=([-1, 0],))([y, x])
    np.testing.assert_allclose(_np(r), _np(y.t() + x))


def test_chunk_size():
    x = torch.randn(10, 3)
    f = lambda a: (a.softmax(0), a.sum())                 # noqa: E731
    full = vmap(f)(x)
    for cs in (1, 3, 10, 25):
        part = vmap(f, chunk_size=cs)(x)
        np.testing.assert_allclose(_np(part[0]), _np(full[0]), rtol=1e-6)
        np.testing.assert_allclose(_np(part[1]), _np(full[1]), rtol=1e-6)
    with pytest.raises(ValueError, match="chunk_size should be None or greater than 0"):
        vmap(f, chunk_size=0)
    # 'same' randomness: every chunk draws the same values
    r = vmap(lambda a: a + torch.rand(3), randomness="same", chunk_size=2)(torch.zeros(5, 3))
    assert bool((r == r[0]).all())


def test_randomness_modes():
    z = torch.zeros(6, 8)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        vmap(lambda a: a + torch.rand(8))(z)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        vmap(lambda a: F.dropout(a, 0.5))(z)
    with pytest.raises(RuntimeError, match="Only allowed values for randomness"):
        vmap(lambda a: a, randomness="sometimes")
    same = vmap(lambda a: a + torch.randn(8), randomness="same")(z)
    assert bool((same == same[0]).all())
    diff = vmap(lambda a: a + torch.randn(8), randomness="different")(z)
    assert not bool((diff[0] == diff[1]).all())
    d = vmap(lambda a: F.dropout(a + 1, 0.5), randomness="different")(torch.zeros(6, 50))
    assert tuple(d.shape) == (6, 50) and not bool((d[0] == d[1]).all())
    assert set(np.unique(_np(d))) <= {0.0, 2.0}
    d = vmap(lambda a: F.dropout(a + 1, 0.5), randomness="same")(torch.zeros(6, 50))
    assert bool((d == d[0]).all())
    # 'different' draws the same numbers as one batched draw outside vmap
    torch.manual_seed(3)
    r = vmap(lambda a: torch.rand(4), randomness="different")(z)
    torch.manual_seed(3)
    np.testing.assert_array_equal(_np(r), _np(torch.rand(6, 4)))


def test_errors_match_torch():
    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match=r"vmap: Expected all tensors to have the same size in "
                                         r"the mapped dimension, got sizes \[3, 4\]"):
        vmap(torch.add)(x, torch.randn(4, 4))
    with pytest.raises(ValueError, match=r"Got in_dim=2 for some input, but that input is a "
                                         r"Tensor of dimensionality 2"):
        vmap(lambda a: a, in_dims=2)(x)
    with pytest.raises(ValueError, match="in_dims is not compatible with the structure"):
        vmap(lambda a: a, in_dims=(0, 0))(x)
    with pytest.raises(ValueError, match="expected `in_dims` to be int or a"):
        vmap(lambda a: a, in_dims=None)(x)
    with pytest.raises(ValueError, match="We cannot vmap over non-Tensor arguments"):
        vmap(lambda a, s: a, in_dims=(0, 0))(x, 2.0)
    with pytest.raises(ValueError, match="must only return Tensors, got type <class 'int'>"):
        vmap(lambda a: 1)(x)
    with pytest.raises(ValueError, match="can not return a BatchedTensor when out_dim is None"):
        vmap(lambda a: a, out_dims=None)(x)
    with pytest.raises(ValueError, match="Expected at least one Tensor to vmap over"):
        vmap(lambda a: a, in_dims=(None,))(x)
    with pytest.raises(ValueError, match="got no inputs"):
        vmap(lambda: x)()
    with pytest.raises(IndexError, match="Dimension out of range"):
        vmap(lambda a: a, out_dims=3)(x)
    with pytest.raises(RuntimeError, match="data-dependent control flow"):
        vmap(lambda a: a if a.sum() > 0 else -a)(x)
    with pytest.raises(RuntimeError, match=r"calling \.item\(\) on a Tensor"):
        vmap(lambda a: a * a.sum().item())(x)
    # per-sample shapes in the op's own errors, as torch reports them
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(4\) must match"):
        vmap(lambda a: a + torch.ones(3))(x)


def test_fallback_runs_per_sample_and_logs(caplog):
    x = torch.randn(4, 3, 3) + 3 * torch.eye(3)
    b = torch.randn(4, 3)
    f = lambda a, v: torch.linalg.solve(a, v)          # noqa: E731  (no rule for solve)
    with caplog.at_level(logging.WARNING, logger="framework.func"):
        r = vmap(f)(x, b)
    np.testing.assert_allclose(_np(r), _np(_loop(f, (0, 0), x, b)), rtol=1e-5)
    assert "solve" in batching.FALLBACKS and "'solve'" in caplog.text


def test_rules_cover_primitive_kinds():
    from compiler.ir.registry import REGISTRY
    for name, p in REGISTRY.items():
        if p.kind in ("pointwise", "reduction", "scan", "view", "matmul", "concat", "gather"):
            assert batching.rule_for(p) is not None, name


def test_gradients_through_vmap():
    w = torch.randn(3, requires_grad=True)
    x = torch.randn(5, 3)
    vmap(lambda a: (a * w).sin().sum())(x).sum().backward()
    g = w.grad.clone()
    w.grad = None
    sum((x[i] * w).sin().sum() for i in range(5)).backward()
    np.testing.assert_allclose(_np(g), _np(w.grad), rtol=1e-5)


def _model():
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def test_per_sample_gradients_match_loop():
    model = _model()
    params = {k: v.detach() for k, v in model.named_parameters()}
    x, t = torch.randn(6, 4), torch.tensor([0, 2, 1, 1, 0, 2])

    def loss_fn(p, xi, ti):
        return F.cross_entropy(functional_call(model, p, (xi.unsqueeze(0),)), ti.unsqueeze(0))
    per = vmap(grad(loss_fn), in_dims=(None, 0, 0))(params, x, t)
    for i in range(6):
        model.zero_grad()
        F.cross_entropy(model(x[i:i + 1]), t[i:i + 1]).backward()
        for k, p in model.named_parameters():
            np.testing.assert_allclose(_np(per[k][i]), _np(p.grad), rtol=1e-5, atol=1e-6)
    assert batching.FALLBACKS == {}


def test_ensemble_with_stack_module_state():
    models = [_model() for _ in range(3)]
    params, buffers = stack_module_state(models)
    assert tuple(params["0.weight"].shape) == (3, 8, 4) and params["0.weight"].requires_grad
    x = torch.randn(5, 4)
    base = _model()
    out = vmap(lambda p, b, xx: functional_call(base, (p, b), (xx,)), in_dims=(0, 0, None))(
        params, buffers, x)
    for i, m in enumerate(models):
        np.testing.assert_allclose(_np(out[i]), _np(m(x)), rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="same class"):
        stack_module_state([models[0], nn.Linear(2, 2)])


def test_grad_and_friends():
    a = torch.randn(5, dtype=torch.float64)
    f = lambda v: (v.sin() * v).sum()                    # noqa: E731
    np.testing.assert_allclose(_np(grad(f)(a)), _np(a.sin() + a * a.cos()), rtol=1e-12)
    g, v = grad_and_value(f)(a)
    np.testing.assert_allclose(_np(v), _np(f(a)))
    assert not a.requires_grad and g._node is None
    # argnums and has_aux
    h = lambda x, y: ((x * y).sum(), x.detach())         # noqa: E731
    (gx, gy), aux = grad(h, argnums=(0, 1), has_aux=True)(a, 2 * a)
    np.testing.assert_allclose(_np(gx), _np(2 * a))
    np.testing.assert_allclose(_np(gy), _np(a))
    with pytest.raises(RuntimeError, match="Expected f\\(\\*args\\) to return a scalar Tensor"):
        grad(lambda x: x * 2)(a)
    # jacrev / jacfwd vs autograd.functional, hessian vs finite differences of the gradient
    m = lambda x: torch.stack([x[0] * x[1], x.exp().sum(), x[2] ** 3])  # noqa: E731
    J = torch.autograd.functional.jacobian(m, a)
    np.testing.assert_allclose(_np(jacrev(m)(a)), _np(J), rtol=1e-12)
    np.testing.assert_allclose(_np(jacfwd(m)(a)), _np(J), rtol=1e-12)
    H = _np(hessian(f)(a))
    eps, an = 1e-6, _np(a)
    gfun = lambda z: np.sin(z) + z * np.cos(z)           # noqa: E731  (the exact gradient)
    fd = np.stack([(gfun(an + eps * e) - gfun(an - eps * e)) / (2 * eps) for e in np.eye(5)])
    np.testing.assert_allclose(H, fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(H, _np(torch.autograd.functional.hessian(f, a)), rtol=1e-10)


def test_vjp_jvp():
    a, b = torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    f = lambda x, y: (x * y.exp(), x.sum())              # noqa: E731
    out, fn = vjp(f, a, b)
    gx, gy = fn((torch.ones(4, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64)))
    np.testing.assert_allclose(_np(gx), _np(b.exp() + 2))
    np.testing.assert_allclose(_np(gy), _np(a * b.exp()))
    with pytest.raises(RuntimeError, match="pytree structure of cotangents"):
        fn(torch.ones(4))
    t = torch.randn(4, dtype=torch.float64)
    o, jv = jvp(lambda x: x.sin() * x, (a,), (t,))
    np.testing.assert_allclose(_np(jv), _np((a.cos() * a + a.sin()) * t), rtol=1e-12)
    ref = torch.autograd.functional.jvp(lambda x: x.sin() * x, a, t)[1]
    np.testing.assert_allclose(_np(jv), _np(ref), rtol=1e-12)


def test_vmap_of_jacrev_and_hessian():
    X = torch.randn(3, 4, dtype=torch.float64)
    f = lambda v: (v ** 3).sum()                          # noqa: E731
    H = vmap(hessian(f))(X)
    for i in range(3):
        np.testing.assert_allclose(_np(H[i]), np.diag(6 * _np(X[i])), rtol=1e-12, atol=1e-12)
    J = vmap(jacrev(torch.sin))(X)
    np.testing.assert_allclose(_np(J), np.stack([np.diag(np.cos(r)) for r in _np(X)]))


def test_functional_call_tied_weights():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(3, 3, bias=False)
            self.dec = nn.Linear(3, 3, bias=False)
            self.dec.weight = self.enc.weight
            self.register_buffer("scale", torch.tensor(2.0))

        def forward(self, x):
            return self.dec(self.enc(x)) * self.scale
    m = Tied()
    x = torch.randn(2, 3)
    w = torch.randn(3, 3)
    out = functional_call(m, {"enc.weight": w}, (x,))
    np.testing.assert_allclose(_np(out), _np(x @ w.t() @ w.t() * 2), rtol=1e-5)
    # untied: only enc's weight changes
    out = functional_call(m, {"enc.weight": w}, (x,), tie_weights=False)
    np.testing.assert_allclose(_np(out), _np(x @ w.t() @ m.enc.weight.t() * 2), rtol=1e-5)
    assert m.enc.weight is m.dec.weight                    # the module is left as it was
    with pytest.raises(ValueError, match="which are tied"):
        functional_call(m, {"enc.weight": w, "dec.weight": w + 1}, (x,))
    out = functional_call(m, ({"enc.weight": w}, {"scale": torch.tensor(1.0)}), x)
    np.testing.assert_allclose(_np(out), _np(x @ w.t() @ w.t()), rtol=1e-5)
    with pytest.raises(RuntimeError, match="Missing key"):
        functional_call(m, {"enc.weight": w}, (x,), strict=True)
    # gradients flow to the tensors passed in
    wg = w.clone().requires_grad_(True)
    functional_call(m, {"enc.weight": wg}, (x,)).sum().backward()
    assert wg.grad is not None and m.enc.weight.grad is None


def test_torch_namespace():
    assert torch.vmap is vmap and torch.func.vmap is vmap and torch.func.grad is grad


def test_in_place_ops_on_batched_tensors():
    # values and gradients printed by torch 2.13's vmap
    def k(x):
        y = x.clone()
        y.copy_(x * 3)
        y.clamp_(max=10)
        y[1:].fill_(0.5)
        return y
    x = torch.arange(6.).reshape(2, 3).requires_grad_()
    o = torch.vmap(k)(x)
    assert o.tolist() == [[0.0, 0.5, 0.5], [9.0, 0.5, 0.5]]
    o.sum().backward()
    assert x.grad.tolist() == [[3.0, 0.0, 0.0], [3.0, 0.0, 0.0]]
    # nested levels; an in-place op on a vmap input writes the caller's tensor, as torch's
    r = torch.vmap(torch.vmap(lambda t: t.clone().mul_(2).add_(t)))(torch.arange(6.).reshape(2, 3))
    assert r.tolist() == [[0.0, 3.0, 6.0], [9.0, 12.0, 15.0]]
    xs = torch.arange(6.).reshape(2, 3)
    torch.vmap(lambda t: t.mul_(10))(xs)
    assert xs.tolist() == [[0.0, 10.0, 20.0], [30.0, 40.0, 50.0]]

    def g(x):
        w = torch.zeros(3)
        w.add_(x)           # an unbatched self cannot take a batched result
        return w
    with pytest.raises(RuntimeError, match="inplace arithmetic"):
        torch.vmap(g)(torch.arange(6.).reshape(2, 3))


def test_functional_call_strict_keys_as_torch():
    """strict=True names every parameter and buffer, tied duplicates included (with
    tie_weights=False the alias must be given too), in sorted key lists -- torch's messages."""
    m = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    m[1].weight = m[0].weight
    x = (torch.ones(1, 2),)
    cases = [(True, {"0.weight"}, "Missing key(s): '0.bias', '1.bias'."),
             (False, {"0.weight"}, "Missing key(s): '0.bias', '1.bias', '1.weight'."),
             (False, {"0.weight", "0.bias", "1.bias", "zz"},
              "Unexpected key(s): 'zz'.\n\tMissing key(s): '1.weight'.")]
    for tie, names, msg in cases:
        d = {k: torch.ones(1 if k == "zz" else (2, 2) if k.endswith("weight") else 2)
             for k in names}
        with pytest.raises(RuntimeError) as e:
            torch.func.functional_call(m, d, x, tie_weights=tie, strict=True)
        assert str(e.value) == "Error(s) in reparametrizing for Sequential:\n\t" + msg
    full = {"0.weight": torch.eye(2), "0.bias": torch.zeros(2), "1.bias": torch.ones(2)}
    out = torch.func.functional_call(m, full, x, strict=True)
    assert out.tolist() == [[2.0, 2.0]]


def test_non_tensor_inputs_and_aux_raise_torchs_errors():
    # torch: a non-Tensor primal is a ValueError; a non-Tensor in aux is a RuntimeError
    with pytest.raises(ValueError, match="Thing passed to transform API must be Tensor"):
        grad(lambda x: x ** 3)(0.7)
    with pytest.raises(ValueError, match="must be Tensor"):
        vjp(lambda x: x ** 3, 0.7)
    x = torch.tensor([0.5, 2.0])
    for bad in (3, None, {"k": 1.5}):
        with pytest.raises(RuntimeError, match="Expected tensors, got unsupported type"):
            grad(lambda x: (x.sum(), bad), has_aux=True)(x)
        with pytest.raises(RuntimeError, match="Expected tensors, got unsupported type"):
            vjp(lambda x: (x.sin(), bad), x, has_aux=True)
        with pytest.raises(RuntimeError, match="Expected tensors, got unsupported type"):
            jvp(lambda x: (x.sin(), bad), (x,), (x,), has_aux=True)
        with pytest.raises(RuntimeError, match="Expected tensors, got unsupported type"):
            jacrev(lambda x: (x.sin(), bad), has_aux=True)(x)
    g, aux = grad(lambda x: (x.sum(), {"m": x.mean(), "t": (x * 2,)}), has_aux=True)(x)
    np.testing.assert_allclose(_np(g), [1.0, 1.0])
    np.testing.assert_allclose(_np(aux["m"]), 1.25)
    np.testing.assert_allclose(_np(aux["t"][0]), [1.0, 4.0])


def test_linearize():
    from framework.func import linearize
    x = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    out, jfn = linearize(lambda v: v.sin() * v, x)
    np.testing.assert_allclose(_np(out), np.sin(_np(x)) * _np(x))
    t = torch.tensor([1.0, 0.5, -2.0], dtype=torch.float64)
    xn, tn = _np(x), _np(t)
    np.testing.assert_allclose(_np(jfn(t)), (np.cos(xn) * xn + np.sin(xn)) * tn, rtol=1e-12)
    out, jfn = linearize(lambda a, b: (a * b, a.sum()), x, x * 2)
    r = jfn(t, t)
    np.testing.assert_allclose(_np(r[0]), tn * 2 * xn + xn * tn, rtol=1e-12)
    np.testing.assert_allclose(_np(r[1]), tn.sum(), rtol=1e-12)
    with pytest.raises(RuntimeError, match="doesn't match the shape"):
        jfn(t[:2], t)
    with pytest.raises(RuntimeError, match="doesn't match the dtype"):
        jfn(t.float(), t)
    with pytest.raises(RuntimeError, match="same argspec"):
        jfn(t)
    assert torch.func.linearize is linearize


def test_repr_inside_vmap_is_torchs_batched_tensor():
    seen = []
    x = torch.tensor([[1.0, 2.0], [-1.0, 2.0]])
    vmap(vmap(lambda s: (seen.append(repr(s)), s)[1]), in_dims=1)(x)
    assert seen[0] == ("BatchedTensor(lvl=2, bdim=0, value=\n"
                       "    BatchedTensor(lvl=1, bdim=1, value=\n"
                       "        tensor([[ 1.,  2.],\n"
                       "                [-1.,  2.]])\n"
                       "    )\n"
                       ")")
    seen.clear()
    vmap(lambda s: (seen.append(str(s * 2)), s)[1])(torch.tensor([[1.0, 2.0]], requires_grad=True))
    assert seen[0] == ("BatchedTensor(lvl=1, bdim=0, value=\n"
                       "    tensor([[2., 4.]], grad_fn=<MulBackward0>)\n)")
    with pytest.raises(RuntimeError, match="data-dependent control flow"):
        vmap(lambda s: s if s.sum() > 0 else -s)(x)       # printing is allowed, bool() is not


def test_autograd_functional_strategy_and_hessian_strict():
    AF = torch.autograd.functional
    x = torch.tensor([0.5, -1.0], dtype=torch.float64)
    # forward-mode jacobian exists only vectorized (as in torch), and then equals reverse mode
    with pytest.raises(NotImplementedError, match="only implemented for `vectorize=True`"):
        AF.jacobian(torch.exp, x, strategy="forward-mode")
    with pytest.raises(NotImplementedError, match="create_graph=True"):
        AF.jacobian(torch.exp, x, strategy="forward-mode", vectorize=True, create_graph=True)
    with pytest.raises(AssertionError, match="forward-mode"):
        AF.jacobian(torch.exp, x, strategy="sideways")
    np.testing.assert_allclose(
        AF.jacobian(torch.exp, x, strategy="forward-mode", vectorize=True).numpy(),
        np.diag(np.exp([0.5, -1.0])))
    # strict hessian: a linear function's gradient does not depend on the input
    with pytest.raises(RuntimeError, match="jacobian of the user-provided function with "
                                           "respect to input 0 is independent of the input"):
        AF.hessian(lambda t: t.sum(), x, strict=True)
    np.testing.assert_allclose(AF.hessian(lambda t: (t ** 3).sum(), x, strict=True).numpy(),
                               np.diag([3.0, -6.0]))
    np.testing.assert_allclose(AF.hessian(lambda t: t.sum(), x).numpy(), np.zeros((2, 2)))


def test_transforms_keep_graph_to_closed_over_tensors():
    # torch.func results stay differentiable with respect to a tensor func closes over (a
    # model parameter), as functorch keeps the caller's autograd graph
    rng = np.random.default_rng(0)
    vn, wn = rng.standard_normal(2), rng.standard_normal(2)
    v = torch.tensor(vn)
    w = torch.tensor(wn, requires_grad=True)
    g = grad(lambda t: (t @ w) ** 2)(v)               # 2 (v.w) w
    np.testing.assert_allclose(g.detach().numpy(), 2 * (vn @ wn) * wn)
    g.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * vn * wn.sum() + 2 * (vn @ wn))
    w.grad = None
    (ct,) = vjp(lambda t: (t * w).sin(), v)[1](torch.ones(2, dtype=torch.float64))
    ct.sum().backward()                                # d/dw sum(cos(v w) w)
    np.testing.assert_allclose(w.grad.numpy(),
                               np.cos(vn * wn) - np.sin(vn * wn) * vn * wn, rtol=1e-12)
    w.grad = None
    _, jv = jvp(lambda t: (t * w).sin(), (v,), (torch.ones(2, dtype=torch.float64),))
    jv.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(),
                               np.cos(vn * wn) - np.sin(vn * wn) * vn * wn, rtol=1e-12)
    # nothing outside requires grad, or no grad mode: plain results, as before
    assert not grad(lambda t: (t ** 2).sum())(v).requires_grad
    with torch.no_grad():
        assert not grad(lambda t: (t @ w) ** 2)(v).requires_grad


def test_autograd_functional_argument_checks():
    AF = torch.autograd.functional
    x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    with pytest.raises(RuntimeError, match=r"v has invalid size: should be torch.Size\(\[3\]\) "
                                           r"but got torch.Size\(\[4\]\)"):
        AF.vjp(torch.sin, x, torch.ones(4, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="Entry 1 in v has invalid size"):
        AF.jvp(lambda a, b: a * b, (x, x), (x, torch.ones(2, dtype=torch.float64)))
    with pytest.raises(RuntimeError, match="v can only be None if the input"):
        AF.vhp(lambda a: (a ** 3).sum(), x)
    with pytest.raises(RuntimeError, match="Output 0 of the user-provided function does not "
                                           "require gradients"):
        AF.jvp(lambda a: torch.ones(3), x, x, strict=True)
    with pytest.raises(TypeError, match="given to jacobian must be either a Tensor or a tuple"):
        AF.jacobian(lambda a: 3.0, x)
    # the checks pass valid calls through: J v and H v against hand-derived values
    np.testing.assert_allclose(AF.jvp(torch.sin, x, x)[1].numpy(), np.cos(x.numpy()) * x.numpy())
    np.testing.assert_allclose(AF.vhp(lambda a: (a ** 3).sum(), x, x)[1].numpy(),
                               6 * x.numpy() ** 2)


def test_vmap_indexing_with_a_per_sample_scalar_index():
    # a[i] with i a 0-d integer tensor per sample was read as a Python int (TypeError)
    A = np.arange(6.0).reshape(2, 3)
    t = torch.tensor(A)
    idx = torch.tensor([0, 2])
    np.testing.assert_array_equal(vmap(lambda a, i: a[i])(t, idx).numpy(), [A[0, 0], A[1, 2]])
    np.testing.assert_array_equal(vmap(lambda a, i: a[:, i], in_dims=(None, 0))(t, idx).numpy(),
                                  A[:, [0, 2]].T)
    np.testing.assert_array_equal(
        vmap(lambda a, i: a[i, 1:], in_dims=(None, 0))(t, torch.tensor([1, 0])).numpy(),
        A[[1, 0], 1:])


def test_old_style_autograd_function_is_refused_by_transforms():
    class Exp(torch.autograd.Function):          # forward(ctx, ...): no setup_context
        @staticmethod
        def forward(ctx, x):
            r = x.exp()
            ctx.save_for_backward(r)
            return r

        @staticmethod
        def backward(ctx, g):
            (r,) = ctx.saved_tensors
            return g * r

    class Exp2(torch.autograd.Function):         # forward(...) + setup_context: allowed
        @staticmethod
        def forward(x):
            return x.exp()

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(output)

        @staticmethod
        def backward(ctx, g):
            (r,) = ctx.saved_tensors
            return g * r

    x = torch.tensor([0.0, 1.0], dtype=torch.float64)
    for t in (lambda f: vmap(f)(x), lambda f: grad(lambda a: f(a).sum())(x),
              lambda f: jvp(f, (x,), (x,))):
        with pytest.raises(RuntimeError, match="must override the setup_context staticmethod"):
            t(Exp.apply)
    np.testing.assert_allclose(grad(lambda a: Exp2.apply(a).sum())(x).numpy(), np.exp([0.0, 1.0]))
    # vmap needs a vmap staticmethod or generate_vmap_rule=True (PyTorch refuses Exp2)
    with pytest.raises(RuntimeError, match="vmap over Exp2, but it does not have vmap support"):
        vmap(Exp2.apply)(x)
    Exp2.generate_vmap_rule = True
    np.testing.assert_allclose(vmap(Exp2.apply)(x).numpy(), np.exp([0.0, 1.0]))
    # outside a transform the old style still works
    y = torch.tensor([1.0], requires_grad=True)
    Exp.apply(y).backward()
    np.testing.assert_allclose(y.grad.numpy(), [np.e])


# ---- custom autograd.Function under vmap: its vmap staticmethod, or the generated rule ------

def _cube_fn(calls):
    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(x, y):
            return x ** 3 + y, 3 * x ** 2

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0], output[1])

        @staticmethod
        def backward(ctx, g, gd):
            x, d = ctx.saved_tensors
            return g * d + gd * 6 * x, g

        @staticmethod
        def vmap(info, in_dims, x, y):
            calls.append((info.batch_size, info.randomness, in_dims, tuple(x.shape),
                          tuple(y.shape)))
            xd, yd = in_dims
            x = x.movedim(xd, 0)
            return Cube.apply(x, y if yd is None else y.movedim(yd, 0)), (0, 0)
    return Cube


def test_function_vmap_staticmethod_is_called():
    calls = []
    Cube = _cube_fn(calls)
    a = np.arange(6.).reshape(2, 3)
    x, y = torch.tensor(a), torch.tensor([1., -1.], dtype=torch.float64)
    r, d = vmap(Cube.apply, in_dims=(1, None))(x, y)
    assert calls == [(3, "error", (1, None), (2, 3), (2,))]
    np.testing.assert_allclose(r.numpy(), a.T ** 3 + [1., -1.])
    np.testing.assert_allclose(d.numpy(), 3 * a.T ** 2)
    calls.clear()
    vmap(Cube.apply, in_dims=(0, 0), randomness="same")(x, x)
    assert calls == [(2, "same", (0, 0), (2, 3), (2, 3))]
    calls.clear()
    # nested: the inner level's rule first (its tensors still batched at the outer level)
    vmap(vmap(Cube.apply, in_dims=(0, None)), in_dims=(0, None))(x.reshape(2, 3, 1), y[:1])
    assert calls == [(3, "error", (0, None), (3, 1), (1,)), (2, "error", (0, None), (2, 3, 1),
                                                             (1,))]
    calls.clear()
    # gradients reach the input through the rule's own apply on the unbatched tensors
    y3 = torch.ones(3, dtype=torch.float64)
    g = grad(lambda t: vmap(Cube.apply, in_dims=(0, None))(t, y3)[0].sum())(x)
    np.testing.assert_allclose(g.numpy(), 3 * a ** 2)
    assert len(calls) == 1


def test_function_vmap_refusals():
    x = torch.ones(2, 3)

    def fn(gen=False, rule=None):
        class F_(torch.autograd.Function):
            generate_vmap_rule = gen

            @staticmethod
            def forward(t):
                return t * 2

            @staticmethod
            def setup_context(ctx, inputs, output):
                pass

            @staticmethod
            def backward(ctx, g):
                return g * 2
        if rule is not None:
            F_.vmap = staticmethod(rule)
        return F_
    with pytest.raises(RuntimeError, match="F_, but it does not have vmap support. Please "
                                           "override and implement the vmap staticmethod or set "
                                           "generate_vmap_rule=True"):
        vmap(fn().apply)(x)
    with pytest.raises(RuntimeError, match="it has both generate_vmap_rule=True and an "
                                           "overridden vmap staticmethod"):
        vmap(fn(True, lambda info, d, t: (t * 2, 0)).apply)(x)
    with pytest.raises(RuntimeError, match="Expected the vmap staticmethod to have two returns, "
                                           "an output and out_dims .* Got a <class "
                                           "'torch.Tensor'> instead"):
        vmap(fn(rule=lambda info, d, t: t * 2).apply)(x)
    with pytest.raises(RuntimeError, match="returned an incompatible \\(output, out_dims\\) "
                                           "tuple. Expected out_dims=\\(0, 0\\)"):
        vmap(fn(rule=lambda info, d, t: (t * 2, (0, 0))).apply)(x)
    # out_dims None: the same output for every sample, expanded by vmap
    r = vmap(fn(rule=lambda info, d, t: (t.sum(0) * 0 + 1, None)).apply)(x)
    np.testing.assert_array_equal(r.numpy(), np.ones((2, 3)))


def test_function_generated_vmap_rule_with_grad():
    class Scale(torch.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(x, w):
            return x * w, (x * w).sum()

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(*inputs)
            ctx.k = 3.0

        @staticmethod
        def backward(ctx, g, gs):
            x, w = ctx.saved_tensors
            return (g + gs) * w * ctx.k, (g + gs) * x
    a = np.arange(6.).reshape(2, 3)
    x, w = torch.tensor(a), torch.tensor([1., 2., 3.], dtype=torch.float64)
    # per-sample backward: d/dx of sum(x*w) + sum(x*w) is 2 * 3 * w (the k in backward)
    g = vmap(grad(lambda t: Scale.apply(t, w)[1] * 2))(x)
    np.testing.assert_allclose(g.numpy(), np.broadcast_to(2 * 3 * w.numpy(), (2, 3)))
    # an unbatched input's gradient is summed over the batch
    gw = grad(lambda v: vmap(Scale.apply, in_dims=(0, None))(x, v)[1].sum())(w)
    np.testing.assert_allclose(gw.numpy(), a.sum(0))
    wl = w.clone().requires_grad_()
    vmap(Scale.apply, in_dims=(0, None))(x, wl)[0].sum().backward()
    np.testing.assert_allclose(wl.grad.numpy(), a.sum(0))


# ---- BatchNorm under vmap ------------------------------------------------------------------

_BN_REFUSAL = ("Batch norm got a batched tensor as input while the running_mean or running_var, "
               "which will be updated in place, were not batched.")


def _bn_model():
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor(np.arange(12.).reshape(4, 3) / 10 - .5))
        m[0].bias.zero_()
    return m


def _bn_ref(a, W, rm, rv, momentum=0.1, eps=1e-5):
    """Training batch norm of a @ W.T (float64): output and updated running stats."""
    h = a @ W.T
    mu, var = h.mean(0), h.var(0)
    y = (h - mu) / np.sqrt(var + eps)
    n = h.shape[0]
    return (y, (1 - momentum) * rm + momentum * mu,
            (1 - momentum) * rv + momentum * var * n / (n - 1))


def test_vmap_batchnorm_stacked_buffers_update_each_model():
    import copy
    models = [_bn_model().double(), _bn_model().double()]
    with torch.no_grad():
        models[1][0].weight.mul_(-2)
    params, buffers = torch.func.stack_module_state(models)
    base = copy.deepcopy(models[0])
    a = np.sin(np.arange(30.)).reshape(2, 5, 3)
    y = vmap(lambda p, b, t: torch.func.functional_call(base, (p, b), (t,)))(
        params, buffers, torch.tensor(a, dtype=torch.float64))
    W = np.arange(12.).reshape(4, 3) / 10 - .5
    for i, Wi in enumerate((W, -2 * W)):
        ry, rm, rv = _bn_ref(a[i], Wi, np.zeros(4), np.ones(4))
        np.testing.assert_allclose(y[i].detach().numpy(), ry, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(buffers["1.running_mean"][i].numpy(), rm, rtol=1e-6)
        np.testing.assert_allclose(buffers["1.running_var"][i].numpy(), rv, rtol=1e-6)
    np.testing.assert_array_equal(buffers["1.num_batches_tracked"].numpy(), [1, 1])


def test_vmap_batchnorm_unbatched_running_stats_refused():
    m = _bn_model().double()
    x = torch.tensor(np.sin(np.arange(30.)).reshape(2, 5, 3))
    with pytest.raises(RuntimeError, match=_BN_REFUSAL):
        vmap(m)(x)
    np.testing.assert_array_equal(m[1].running_mean.numpy(), np.zeros(4))   # not updated
    with pytest.raises(RuntimeError, match=_BN_REFUSAL):
        vmap(lambda t: F.batch_norm(t, torch.zeros(3), torch.ones(3), training=True))(
            torch.ones(2, 4, 3))
    # eval mode reads the running stats only: allowed
    m.eval()
    np.testing.assert_allclose(vmap(m)(x).detach().numpy(),
                               (np.sin(np.arange(30.)).reshape(2, 5, 3) @ (
                                   np.arange(12.).reshape(4, 3) / 10 - .5).T) / np.sqrt(1 + 1e-5),
                               rtol=1e-6)


def test_replace_all_batch_norm_modules():
    m = nn.Sequential(_bn_model(), nn.BatchNorm2d(2, track_running_stats=False))
    assert torch.func.replace_all_batch_norm_modules_(m) is m
    bn = m[0][1]
    assert bn.running_mean is None and bn.running_var is None
    assert bn.num_batches_tracked is None and bn.track_running_stats is False
    assert "track_running_stats=False" in repr(bn)
    a = np.sin(np.arange(30.)).reshape(2, 5, 3)
    W = np.arange(12.).reshape(4, 3) / 10 - .5
    for mode in ("train", "eval"):          # eval: batch statistics too (no running stats)
        getattr(m[0], mode)()
        y = vmap(m[0])(torch.tensor(a, dtype=torch.float32))
        for i in range(2):
            np.testing.assert_allclose(y[i].detach().numpy(), _bn_ref(a[i], W, 0, 1)[0],
                                       rtol=1e-4, atol=1e-5)


# ---- functionalize / debug_unwrap ---------------------------------------------------------------

def test_functionalize_values_and_input_mutations():
    from framework.func import functionalize

    def f(a):
        b = a + 1
        c = b.view(-1)
        c.add_(1)                       # through a view of an intermediate
        return b
    x = np.array([[0.5, -1.], [2., 3.]])
    np.testing.assert_array_equal(functionalize(f)(torch.tensor(x)).numpy(), x + 2)

    def g(a, d):
        a.mul_(2)
        d["k"].add_(a)
        return a.sum(), a
    a, k = torch.ones(3), torch.zeros(3)
    s, r = functionalize(g)(a, {"k": k})
    # the inputs are written once, when g returns; the output is no alias of them
    assert s.item() == 6. and a.tolist() == [2.] * 3 and k.tolist() == [2.] * 3
    assert a._version == 1 and k._version == 1 and r is not a and r.data_ptr() != a.data_ptr()
    # one copy per argument: f(a, a) writing the first does not change the second
    a = torch.ones(3)
    assert functionalize(lambda p, q: (p.add_(1), q * 1)[1])(a, a).tolist() == [1.] * 3
    assert a.tolist() == [2.] * 3
    # an argument aliasing another is written back through its own memory
    a = torch.ones(4)
    assert functionalize(lambda p, q: (q.mul_(5), p.sum())[1])(a, a[:2]).item() == 4.
    assert a.tolist() == [5., 5., 1., 1.]
    # an error inside leaves the inputs as they were
    a = torch.ones(2)
    with pytest.raises(ValueError, match="boom"):
        functionalize(lambda t: (t.add_(1), (_ for _ in ()).throw(ValueError("boom"))))(a)
    assert a.tolist() == [1., 1.] and a._version == 0
    # non-tensor arguments, keyword arguments and output structure pass through
    r = functionalize(lambda t, n, s, *, scale: (t * n * scale, [s]))(torch.ones(2), 3, "s",
                                                                     scale=torch.full((2,), 4.))
    assert r[0].tolist() == [12., 12.] and r[1] == ["s"]


def test_functionalize_aliasing_of_outputs_and_errors():
    from framework.func import functionalize
    a = torch.arange(6.)
    assert functionalize(lambda t: t)(a) is a
    r = functionalize(lambda t: t.view(2, 3)[1])(a)
    assert r._base is a and r.data_ptr() == a.data_ptr() + 3 * 4
    r = functionalize(lambda t: t.view(2, 3), remove="mutations_and_views")(a)
    assert r._base is None and r.data_ptr() != a.data_ptr() and r.tolist() == [[0., 1., 2.],
                                                                               [3., 4., 5.]]
    w = torch.tensor([1., 2.], requires_grad=True)
    x = w * 1
    r = functionalize(lambda t: t.view(2, 1))(x)
    assert r._base is x and type(r.grad_fn).__name__ == "ViewBackward0"
    r = functionalize(lambda t: t.view(2, 1), remove="mutations_and_views")(x)
    assert r._base is None and type(r.grad_fn).__name__ == "ViewBackward0_copy"

    def h(t):
        u = t * 1
        u.mul_(t)
        return u.sum()
    functionalize(h)(w).backward()             # d sum(t^2) = 2t
    assert w.grad.tolist() == [2., 4.]
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in "
                                           "an in-place operation"):
        functionalize(lambda t: t.add_(1))(w)
    with pytest.raises(RuntimeError, match="received invalid argument for remove=x"):
        functionalize(h, remove="x")


def test_debug_unwrap():
    from framework.func import debug_unwrap
    t = torch.ones(2)
    assert debug_unwrap(t) is t
    seen = []

    def f(z, recurse):
        seen.append(tuple(debug_unwrap(z, recurse=recurse).shape))
        return z * 2
    vmap(lambda z: f(z, True))(torch.ones(3, 2))
    vmap(vmap(lambda z: f(z, False)))(torch.ones(4, 3, 2))
    vmap(vmap(lambda z: f(z, True)))(torch.ones(4, 3, 2))
    assert seen == [(3, 2), (3, 2), (4, 3, 2)]
