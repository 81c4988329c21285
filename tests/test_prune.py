"""nn.utils.prune: hand-derived masks for every method, the reparametrization (weight_orig
Parameter, weight_mask buffer, the method as forward pre-hook), iterative pruning through a
PruningContainer, remove / is_pruned, forward and gradients through the mask, PyTorch's
validation errors; plus an optional cross-check of the masks against PyTorch."""
import importlib
import math

import numpy as np
import pytest

import framework as torch
from framework import nn
from framework.nn.utils import prune

F = nn.functional


def _np(t):
    return t.detach().numpy()


def _linear(weight, bias=None):
    """A Linear whose weight (out x in) and bias are the given values (float32)."""
    w = np.asarray(weight, dtype=np.float32)
    m = nn.Linear(w.shape[1], w.shape[0], bias=True)
    with torch.no_grad():
        m.weight.copy_(torch.tensor(w))
        m.bias.copy_(torch.tensor(np.zeros(w.shape[0]) if bias is None else bias,
                                  dtype=torch.float32))
    return m


W = [[0.5, -3.0, 1.0],
     [2.0, -0.1, 4.0]]


# ---- the reparametrization ----------------------------------------------------------------------

def test_reparametrization_layout_and_state_dict():
    m = _linear(W)
    w0 = m.weight
    out = prune.l1_unstructured(m, "weight", amount=2)
    assert out is m
    # the Parameter object moved to weight_orig; weight is now a plain computed tensor
    assert "weight" not in m._parameters and m._parameters["weight_orig"] is w0
    assert isinstance(m.weight_orig, nn.Parameter)
    assert "weight_mask" in m._buffers and not isinstance(m.weight, nn.Parameter)
    assert m.weight_mask.dtype == torch.float32
    assert [n for n, _ in m.named_parameters()] == ["bias", "weight_orig"]
    assert list(m.state_dict().keys()) == ["bias", "weight_orig", "weight_mask"]
    hooks = list(m._forward_pre_hooks.values())
    assert len(hooks) == 1 and isinstance(hooks[0], prune.L1Unstructured)
    assert hooks[0]._tensor_name == "weight"
    # the attribute is set right away, not only at the next forward
    np.testing.assert_array_equal(_np(m.weight), _np(w0) * _np(m.weight_mask))


def test_l1_unstructured_int_amount():
    m = prune.l1_unstructured(_linear(W), "weight", amount=2)
    # |W| smallest two: 0.1 (1,1) and 0.5 (0,0)
    np.testing.assert_array_equal(_np(m.weight_mask), [[0, 1, 1], [1, 0, 1]])
    np.testing.assert_array_equal(_np(m.weight), [[0, -3, 1], [2, 0, 4]])


def test_l1_unstructured_float_amount_rounds():
    m = prune.l1_unstructured(_linear(W), "weight", amount=0.5)      # round(3.0) = 3
    np.testing.assert_array_equal(_np(m.weight_mask), [[0, 1, 0], [1, 0, 1]])
    m = prune.l1_unstructured(_linear(W), "weight", amount=0.25)     # round(1.5) = 2 (even)
    np.testing.assert_array_equal(_np(m.weight_mask), [[0, 1, 1], [1, 0, 1]])
    m = prune.l1_unstructured(_linear(W), "weight", amount=0.0)
    np.testing.assert_array_equal(_np(m.weight_mask), np.ones((2, 3)))
    m = prune.l1_unstructured(_linear(W), "weight", amount=1.0)
    np.testing.assert_array_equal(_np(m.weight_mask), np.zeros((2, 3)))


def test_l1_unstructured_ties():
    tied = [[1.0, -1.0, 2.0],
            [1.0, 3.0, -1.0]]
    # all four |w| == 1 pruned: no choice among ties to make
    m = prune.l1_unstructured(_linear(tied), "weight", amount=4)
    np.testing.assert_array_equal(_np(m.weight_mask), [[0, 0, 1], [0, 1, 0]])
    # two of the four tied entries: exactly two zeros, both among the ties
    m = prune.l1_unstructured(_linear(tied), "weight", amount=2)
    mask = _np(m.weight_mask)
    assert mask.sum() == 4
    assert np.all(np.abs(np.asarray(tied))[mask == 0] == 1.0)
    assert mask[0, 2] == 1 and mask[1, 1] == 1


def test_l1_unstructured_importance_scores():
    scores = torch.tensor([[9.0, 9.0, 0.0], [9.0, 9.0, 0.1]])
    m = prune.l1_unstructured(_linear(W), "weight", amount=2, importance_scores=scores)
    np.testing.assert_array_equal(_np(m.weight_mask), [[1, 1, 0], [1, 1, 0]])
    # the scores decide, the weight keeps its own values
    np.testing.assert_array_equal(_np(m.weight_orig), np.float32(W))


def test_ln_structured_n1_dim0():
    w = [[1.0, -1.0, 1.0],       # L1 3, L2 1.73
         [0.0, 0.0, 2.5],        # L1 2.5, L2 2.5
         [-4.0, 0.0, 0.0]]       # L1 4, L2 4
    m = prune.ln_structured(_linear(w), "weight", amount=1, n=1, dim=0)
    np.testing.assert_array_equal(_np(m.weight_mask), [[1, 1, 1], [0, 0, 0], [1, 1, 1]])
    # n=2 orders rows differently: row 0 has the smallest L2 norm
    m = prune.ln_structured(_linear(w), "weight", amount=1, n=2, dim=0)
    np.testing.assert_array_equal(_np(m.weight_mask), [[0, 0, 0], [1, 1, 1], [1, 1, 1]])


def test_ln_structured_dim1_n1_vs_n2():
    # columns: c0 = (3, 0): L1 3, L2 3;  c1 = (2, 2): L1 4, L2 2.83;  c2 = (5, 5): the largest
    w = [[3.0, 2.0, 5.0],
         [0.0, -2.0, 5.0]]
    m = prune.ln_structured(_linear(w), "weight", amount=1, n=1, dim=1)
    np.testing.assert_array_equal(_np(m.weight_mask), [[0, 1, 1], [0, 1, 1]])
    m = prune.ln_structured(_linear(w), "weight", amount=1, n=2, dim=1)
    np.testing.assert_array_equal(_np(m.weight_mask), [[1, 0, 1], [1, 0, 1]])
    # dim=-1 is dim 1; a float amount is a fraction of the channels: round(0.67 * 3) = 2
    m = prune.ln_structured(_linear(w), "weight", amount=0.67, n=2, dim=-1)
    np.testing.assert_array_equal(_np(m.weight_mask), [[0, 0, 1], [0, 0, 1]])
    # n=inf: max |w| per column: 3, 2, 5
    m = prune.ln_structured(_linear(w), "weight", amount=1, n=math.inf, dim=1)
    np.testing.assert_array_equal(_np(m.weight_mask), [[1, 0, 1], [1, 0, 1]])


def test_ln_structured_conv_channels():
    conv = nn.Conv2d(2, 3, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.ones(3, 2, 2, 2) * torch.tensor([1.0, 0.1, 2.0]).view(3, 1, 1, 1))
    prune.ln_structured(conv, "weight", amount=1, n=2, dim=0)
    mask = _np(conv.weight_mask)
    assert mask.shape == (3, 2, 2, 2)
    np.testing.assert_array_equal(mask.reshape(3, -1).max(1), [1, 0, 1])
    np.testing.assert_array_equal(mask.reshape(3, -1).min(1), [1, 0, 1])


def test_custom_from_mask_and_identity():
    m = prune.custom_from_mask(_linear(W, bias=[1.0, 2.0]), "bias", mask=torch.tensor([0, 1]))
    assert m.bias_mask.dtype == torch.float32           # the mask takes the parameter's dtype
    np.testing.assert_array_equal(_np(m.bias_mask), [0, 1])
    np.testing.assert_array_equal(_np(m.bias), [0, 2])
    assert "weight" in m._parameters                     # only bias is reparametrized
    m = prune.identity(_linear(W), "weight")
    np.testing.assert_array_equal(_np(m.weight_mask), np.ones((2, 3)))
    np.testing.assert_array_equal(_np(m.weight), np.float32(W))


def test_prune_method_on_a_plain_tensor():
    t = torch.tensor([[0.5, -3.0], [2.0, -0.1]])
    out = prune.L1Unstructured(amount=1).prune(t)
    np.testing.assert_array_equal(_np(out), [[0.5, -3.0], [2.0, 0.0]])
    # default_mask respected: entries it zeroes stay zero
    out = prune.L1Unstructured(amount=1).prune(t, default_mask=torch.tensor([[1.0, 0.0],
                                                                              [1.0, 1.0]]))
    np.testing.assert_array_equal(_np(out), [[0.5, 0.0], [2.0, 0.0]])


def test_global_unstructured_two_layers():
    a = _linear([[0.3, -5.0], [0.05, 2.0]])
    b = _linear([[-0.2, 4.0, 0.01]])
    # globally smallest 3 |w|: 0.01 (b), 0.05 (a), 0.2 (b); a's 0.3 survives
    prune.global_unstructured([(a, "weight"), (b, "weight")],
                              pruning_method=prune.L1Unstructured, amount=3)
    np.testing.assert_array_equal(_np(a.weight_mask), [[1, 1], [0, 1]])
    np.testing.assert_array_equal(_np(b.weight_mask), [[0, 1, 0]])
    assert isinstance(next(iter(a._forward_pre_hooks.values())), prune.CustomFromMask)
    # again, over what is left: 0.3 is now the smallest remaining (a float: of all 7 entries)
    prune.global_unstructured([(a, "weight"), (b, "weight")],
                              pruning_method=prune.L1Unstructured, amount=1)
    np.testing.assert_array_equal(_np(a.weight_mask), [[0, 1], [0, 1]])
    np.testing.assert_array_equal(_np(b.weight_mask), [[0, 1, 0]])
    assert isinstance(next(iter(a._forward_pre_hooks.values())), prune.PruningContainer)


def test_global_unstructured_importance_scores_and_errors():
    a, b = _linear([[1.0, 2.0]]), _linear([[3.0, 4.0]])
    scores = {(b, "weight"): torch.tensor([[0.0, 10.0]])}
    prune.global_unstructured([(a, "weight"), (b, "weight")], prune.L1Unstructured,
                              importance_scores=scores, amount=1)
    np.testing.assert_array_equal(_np(a.weight_mask), [[1, 1]])
    np.testing.assert_array_equal(_np(b.weight_mask), [[0, 1]])
    c = _linear([[1.0, 2.0]])
    with pytest.raises(TypeError, match='Only "unstructured" PRUNING_TYPE supported'):
        prune.global_unstructured([(c, "weight")], prune.LnStructured, amount=1, n=1)
    with pytest.raises(TypeError, match="parameters is not an Iterable"):
        prune.global_unstructured(5, prune.L1Unstructured, amount=1)
    with pytest.raises(TypeError, match="importance_scores must be of type dict"):
        prune.global_unstructured([(c, "weight")], prune.L1Unstructured,
                                  importance_scores=[1], amount=1)
    assert not prune.is_pruned(c)


def test_iterative_pruning_only_over_remaining_entries():
    m = _linear([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    prune.l1_unstructured(m, "weight", amount=2)
    np.testing.assert_array_equal(_np(m.weight_mask), [[0, 0, 1], [1, 1, 1]])
    # the second pruning ranks only the 4 kept entries (0.3 .. 0.6), so 0.1 and 0.2 are not
    # counted again, and a float amount is a fraction of those 4: round(0.5 * 4) = 2
    prune.l1_unstructured(m, "weight", amount=0.5)
    np.testing.assert_array_equal(_np(m.weight_mask), [[0, 0, 0], [0, 1, 1]])
    hooks = list(m._forward_pre_hooks.values())
    assert len(hooks) == 1 and isinstance(hooks[0], prune.PruningContainer)
    assert len(hooks[0]) == 2 and [type(h) for h in hooks[0]] == [prune.L1Unstructured] * 2
    assert hooks[0]._tensor_name == "weight"
    # a third method joins the same container; structured: only channels not yet all-zero
    # compete (row 0 is already zero, so row 1 is the one pruned)
    prune.ln_structured(m, "weight", amount=1, n=1, dim=0)
    np.testing.assert_array_equal(_np(m.weight_mask), np.zeros((2, 3)))
    assert len(hooks[0]) == 3 and m._forward_pre_hooks[next(iter(m._forward_pre_hooks))] \
        is hooks[0]
    np.testing.assert_array_equal(_np(m.weight), np.zeros((2, 3)))
    # the original values are untouched
    np.testing.assert_allclose(_np(m.weight_orig), [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])


def test_iterative_structured_after_unstructured_skips_dead_channels():
    m = _linear([[0.1, 5.0, 0.2], [0.3, 6.0, 0.4]])
    prune.custom_from_mask(m, "weight", torch.tensor([[0, 1, 1], [0, 1, 1]]))  # column 0 dead
    # column 0 (L1 0.4) would be the smallest, but it is already pruned: column 2 goes
    prune.ln_structured(m, "weight", amount=1, n=1, dim=1)
    np.testing.assert_array_equal(_np(m.weight_mask), [[0, 1, 0], [0, 1, 0]])


def test_container_rejects_other_tensors_and_non_methods():
    a = prune.L1Unstructured(amount=1)
    a._tensor_name = "weight"
    c = prune.PruningContainer(a)
    b = prune.L1Unstructured(amount=1)
    b._tensor_name = "bias"
    with pytest.raises(ValueError, match="Can only add pruning methods acting on the parameter "
                                         "named 'weight'"):
        c.add_pruning_method(b)
    with pytest.raises(TypeError, match="is not a BasePruningMethod subclass"):
        c.add_pruning_method(3)
    assert len(c) == 1 and c[0] is a
    with pytest.raises(TypeError):
        prune.BasePruningMethod()                      # abstract: compute_mask missing


def test_forward_uses_masked_weight_and_follows_weight_orig():
    torch.manual_seed(0)
    m = nn.Linear(4, 3)
    prune.l1_unstructured(m, "weight", amount=5)
    x = torch.randn(2, 4)
    masked = _np(m.weight_orig) * _np(m.weight_mask)
    np.testing.assert_allclose(_np(m(x)), _np(x) @ masked.T + _np(m.bias), rtol=1e-6, atol=1e-6)
    # the pre-hook recomputes weight from the current weight_orig (e.g. after an optimizer step)
    with torch.no_grad():
        m.weight_orig.add_(1.0)
    masked = (_np(m.weight_orig)) * _np(m.weight_mask)
    np.testing.assert_allclose(_np(m(x)), _np(x) @ masked.T + _np(m.bias), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(_np(m.weight), masked)


def test_gradient_of_weight_orig_is_upstream_times_mask():
    torch.manual_seed(1)
    m = nn.Linear(4, 3)
    prune.random_unstructured(m, "weight", amount=0.5)
    x = torch.randn(5, 4)
    g = torch.randn(5, 3)
    (m(x) * g).sum().backward()
    mask = _np(m.weight_mask)
    np.testing.assert_allclose(_np(m.weight_orig.grad), (_np(g).T @ _np(x)) * mask,
                               rtol=1e-5, atol=1e-6)
    assert np.all(_np(m.weight_orig.grad)[mask == 0] == 0)
    assert m.weight_mask.grad is None and not m.weight_mask.requires_grad
    # optimizer steps therefore never revive pruned entries' effective values
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    opt.step()
    m(x)
    assert np.all(_np(m.weight)[mask == 0] == 0)


def test_remove_makes_pruning_permanent():
    m = _linear(W)
    w0 = m.weight
    prune.l1_unstructured(m, "weight", amount=2)
    prune.l1_unstructured(m, "weight", amount=1)
    assert prune.is_pruned(m)
    assert prune.remove(m, "weight") is m
    assert m._parameters["weight"] is w0                 # the same Parameter object again
    assert isinstance(m.weight, nn.Parameter) and m.weight.requires_grad
    np.testing.assert_array_equal(_np(m.weight), [[0, -3, 0], [2, 0, 4]])
    assert "weight_orig" not in m._parameters and "weight_mask" not in m._buffers
    assert "weight" not in m.__dict__
    assert len(m._forward_pre_hooks) == 0 and not prune.is_pruned(m)
    assert list(m.state_dict().keys()) == ["bias", "weight"]
    with pytest.raises(ValueError, match="Parameter 'weight' of module .* has to be pruned "
                                         "before pruning can be removed"):
        prune.remove(m, "weight")


def test_is_pruned_looks_into_submodules():
    net = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2))
    assert not prune.is_pruned(net)
    prune.random_unstructured(net[2], "bias", amount=1)
    assert prune.is_pruned(net) and prune.is_pruned(net[2]) and not prune.is_pruned(net[0])
    assert list(net.state_dict().keys()) == ["0.weight", "0.bias", "2.weight", "2.bias_orig",
                                             "2.bias_mask"]
    assert _np(net[2].bias_mask).sum() == 1
    prune.remove(net[2], "bias")
    assert not prune.is_pruned(net)


def test_state_dict_round_trip_into_pruned_module():
    src = prune.l1_unstructured(_linear(W), "weight", amount=3)
    dst = prune.identity(_linear(np.zeros((2, 3))), "weight")
    dst.load_state_dict(src.state_dict())
    x = torch.randn(2, 3)
    np.testing.assert_allclose(_np(dst(x)), _np(src(x)), rtol=1e-6)
    np.testing.assert_array_equal(_np(dst.weight_mask), _np(src.weight_mask))


def test_random_methods_prune_the_requested_amount():
    torch.manual_seed(0)
    m = prune.random_unstructured(nn.Linear(10, 4), "weight", amount=0.3)   # round(12) = 12
    assert _np(m.weight_mask).sum() == 40 - 12
    prune.random_unstructured(m, "weight", amount=5)     # five more, among the 28 kept
    assert _np(m.weight_mask).sum() == 40 - 17
    m = prune.random_structured(nn.Linear(6, 5), "weight", amount=2, dim=0)
    rows = _np(m.weight_mask)
    assert sorted(rows.sum(1).tolist()) == [0, 0, 6, 6, 6]
    assert np.all(rows.min(1) == rows.max(1))            # whole rows only
    m = prune.random_structured(nn.Linear(6, 5), "weight", amount=0.5, dim=1)
    assert sorted(_np(m.weight_mask).sum(0).tolist()) == [0, 0, 0, 5, 5, 5]


def test_seeded_random_pruning_is_reproducible():
    def mask(seed):
        torch.manual_seed(seed)
        m = nn.Linear(5, 4)
        prune.random_unstructured(m, "weight", amount=7)
        return _np(m.weight_mask)
    np.testing.assert_array_equal(mask(3), mask(3))
    assert not np.array_equal(mask(3), mask(4))


def test_bad_amounts_raise_pytorchs_errors():
    m = _linear(W)
    with pytest.raises(ValueError, match=r"amount=-1 should either be a float in the range "
                                         r"\[0, 1\] or a non-negative integer"):
        prune.l1_unstructured(m, "weight", amount=-1)
    with pytest.raises(ValueError, match=r"amount=1.5 should either be a float"):
        prune.random_unstructured(m, "weight", amount=1.5)
    with pytest.raises(ValueError, match=r"amount=-0.1 should either be a float"):
        prune.ln_structured(m, "weight", amount=-0.1, n=2, dim=0)
    with pytest.raises(TypeError, match="Invalid type for amount: 0.5. Must be int or float."):
        prune.l1_unstructured(m, "weight", amount="0.5")
    with pytest.raises(TypeError, match="Invalid type for amount"):
        prune.RandomStructured(amount=None)
    # nothing was changed by the failed calls above (they fail before touching the module)
    assert "weight" in m._parameters and not prune.is_pruned(m)
    # more than there is: found at mask time, and the module is rolled back
    with pytest.raises(ValueError, match="amount=7 should be smaller than the number of "
                                         "parameters to prune=6"):
        prune.l1_unstructured(m, "weight", amount=7)
    assert "weight" in m._parameters and "weight_orig" not in m._parameters
    assert "weight_mask" not in m._buffers and not prune.is_pruned(m)
    with pytest.raises(ValueError, match="amount=3 should be smaller than the number of "
                                         "parameters to prune=2"):
        prune.ln_structured(m, "weight", amount=3, n=1, dim=0)


def test_structured_and_shape_errors():
    m = _linear(W)
    with pytest.raises(ValueError, match="Structured pruning can only be applied to "
                                         "multidimensional tensors"):
        prune.ln_structured(m, "bias", amount=1, n=1, dim=0)
    with pytest.raises(IndexError, match="Invalid index 2 for tensor of size"):
        prune.random_structured(m, "weight", amount=1, dim=2)
    with pytest.raises(AssertionError, match="importance_scores should have the same shape"):
        prune.l1_unstructured(m, "weight", amount=1, importance_scores=torch.ones(3, 2))
    assert "bias" in m._parameters and "weight" in m._parameters and not prune.is_pruned(m)


# ---- optional cross-check against PyTorch -------------------------------------------------------

def _ref():
    T = pytest.importorskip("torch", reason="cross-check against PyTorch only where installed")
    importlib.import_module("torch.nn.utils.prune")   # torch.nn.utils does not import it
    return T


def _pair(T, w, b=None):
    """The same Linear in Kiln and in PyTorch."""
    w = np.asarray(w, dtype=np.float32)
    km, tm = nn.Linear(w.shape[1], w.shape[0]), T.nn.Linear(w.shape[1], w.shape[0])
    bias = np.linspace(-1, 1, w.shape[0]).astype(np.float32) if b is None else b
    with torch.no_grad():
        km.weight.copy_(torch.tensor(w))
        km.bias.copy_(torch.tensor(bias))
    with T.no_grad():
        tm.weight.copy_(T.tensor(w))
        tm.bias.copy_(T.tensor(bias))
    return km, tm


def _tie_free(shape, seed):
    # distinct magnitudes: PyTorch's topk breaks ties in its own order
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    mags = rng.permutation(np.arange(1, n + 1)) / n
    return (mags * rng.choice([-1.0, 1.0], n)).reshape(shape)


@pytest.mark.parametrize("steps", [
    [("l1_unstructured", dict(amount=5))],
    [("l1_unstructured", dict(amount=0.3)), ("l1_unstructured", dict(amount=0.4))],
    [("ln_structured", dict(amount=2, n=2, dim=0))],
    [("ln_structured", dict(amount=0.5, n=1, dim=1)), ("l1_unstructured", dict(amount=4))],
    [("l1_unstructured", dict(amount=10)), ("ln_structured", dict(amount=1, n=math.inf, dim=-1))],
    [("ln_structured", dict(amount=1, n=-math.inf, dim=0)),
     ("ln_structured", dict(amount=1, n="fro", dim=0))],
    [("identity", {}), ("l1_unstructured", dict(amount=3))],
], ids=["l1-int", "l1-float-twice", "ln2-dim0", "ln1-dim1+l1", "l1+lninf", "ln-inf+fro",
        "identity+l1"])
def test_masks_match_pytorch_deterministic(steps):
    T = _ref()
    w = _tie_free((5, 6), 0)
    km, tm = _pair(T, w)
    for fn, kw in steps:
        getattr(prune, fn)(km, "weight", **kw)
        getattr(T.nn.utils.prune, fn)(tm, "weight", **kw)
        np.testing.assert_array_equal(_np(km.weight_mask), tm.weight_mask.numpy())
    np.testing.assert_array_equal(_np(km.weight), tm.weight.detach().numpy())
    assert list(km.state_dict().keys()) == list(tm.state_dict().keys())
    assert type(next(iter(km._forward_pre_hooks.values()))).__name__ == \
        type(next(iter(tm._forward_pre_hooks.values()))).__name__
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(2, 6)
    np.testing.assert_allclose(_np(km(torch.tensor(x))), tm(T.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    prune.remove(km, "weight")
    T.nn.utils.prune.remove(tm, "weight")
    np.testing.assert_array_equal(_np(km.weight), tm.weight.detach().numpy())
    assert list(km.state_dict().keys()) == list(tm.state_dict().keys())


def test_global_and_custom_masks_match_pytorch():
    T = _ref()
    ka, ta = _pair(T, _tie_free((3, 4), 1))
    kb, tb = _pair(T, _tie_free((2, 3), 2) * 0.7)
    prune.custom_from_mask(ka, "bias", torch.tensor([1, 0, 1]))
    T.nn.utils.prune.custom_from_mask(ta, "bias", T.tensor([1, 0, 1]))
    for amount in (0.4, 3):
        prune.global_unstructured([(ka, "weight"), (kb, "weight"), (ka, "bias")],
                                  prune.L1Unstructured, amount=amount)
        T.nn.utils.prune.global_unstructured([(ta, "weight"), (tb, "weight"), (ta, "bias")],
                                             T.nn.utils.prune.L1Unstructured, amount=amount)
        for k, t in ((ka, ta), (kb, tb)):
            for name in ("weight_mask", "bias_mask") if k is ka else ("weight_mask",):
                np.testing.assert_array_equal(_np(getattr(k, name)),
                                              getattr(t, name).numpy())


def test_gradient_matches_pytorch():
    T = _ref()
    km, tm = _pair(T, _tie_free((3, 4), 3))
    prune.l1_unstructured(km, "weight", amount=5)
    T.nn.utils.prune.l1_unstructured(tm, "weight", amount=5)
    x = np.linspace(-2, 2, 8, dtype=np.float32).reshape(2, 4)
    (km(torch.tensor(x)) ** 2).sum().backward()
    (tm(T.tensor(x)) ** 2).sum().backward()
    np.testing.assert_allclose(_np(km.weight_orig.grad), tm.weight_orig.grad.numpy(),
                               rtol=1e-5, atol=1e-6)


def _rng_matches(T):
    torch.manual_seed(0)
    T.manual_seed(0)
    return _np(torch.rand(16)).tolist() == T.rand(16).tolist()


def test_random_masks_match_pytorch_with_same_seed():
    T = _ref()
    if not _rng_matches(T):
        pytest.skip("Kiln's cpu random stream differs from this PyTorch's")
    w = _tie_free((6, 7), 4)
    km, tm = _pair(T, w)
    torch.manual_seed(123)
    T.manual_seed(123)
    prune.random_unstructured(km, "weight", amount=0.4)
    T.nn.utils.prune.random_unstructured(tm, "weight", amount=0.4)
    np.testing.assert_array_equal(_np(km.weight_mask), tm.weight_mask.numpy())
    # iterative: the second draw is over the 25 entries left
    prune.random_unstructured(km, "weight", amount=6)
    T.nn.utils.prune.random_unstructured(tm, "weight", amount=6)
    np.testing.assert_array_equal(_np(km.weight_mask), tm.weight_mask.numpy())
    # structured: one draw per channel
    km, tm = _pair(T, w)
    torch.manual_seed(7)
    T.manual_seed(7)
    for dim, amount in ((0, 2), (1, 0.5)):
        prune.random_structured(km, "weight", amount=amount, dim=dim)
        T.nn.utils.prune.random_structured(tm, "weight", amount=amount, dim=dim)
        np.testing.assert_array_equal(_np(km.weight_mask), tm.weight_mask.numpy())
