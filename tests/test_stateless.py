"""framework.nn.utils.stateless.functional_call (torch.nn.utils.stateless, deprecated)."""
import warnings

import numpy as np
import pytest

import framework as torch
from framework.nn.utils import stateless

_MSG = ("`torch.nn.utils.stateless.functional_call` is deprecated as of PyTorch 2.0 and will be "
        "removed in a future version of PyTorch. Please use `torch.func.functional_call` "
        "instead which is a drop-in replacement.")


def fc(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return stateless.functional_call(*args, **kwargs)


def _np(t):
    return t.detach().cpu().numpy()


def _modules(T):
    """The test modules, built from a torch-like namespace T (Kiln, or PyTorch itself)."""
    class Counter(T.nn.Module):            # rebinds a buffer during forward
        def __init__(self):
            super().__init__()
            self.register_buffer("foo", T.zeros(()))
            self.lin = T.nn.Linear(2, 2)

        def forward(self, x):
            self.foo = self.foo + 1
            return x + self.foo

    class Failing(Counter):
        def forward(self, x):
            self.foo = self.foo + 5
            raise ValueError("boom")

    class Tied(T.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = T.nn.Linear(2, 2)
            self.b = T.nn.Linear(2, 2)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(x) + self.a(x)

    return Counter, Failing, Tied


def test_stateless_is_exposed():
    assert torch.nn.utils.stateless is stateless
    assert stateless.__all__ == ["functional_call"]


def test_values_equal_the_module_with_swapped_parameters():
    lin = torch.nn.Linear(3, 2)
    w0, b0 = lin.weight.detach().clone(), lin.bias.detach().clone()
    w = torch.arange(6.0).reshape(2, 3) / 10
    b = torch.tensor([1.0, -1.0])
    x = torch.randn(4, 3)
    out = fc(lin, {"weight": w, "bias": b}, x)
    np.testing.assert_allclose(_np(out), _np(x) @ _np(w).T + _np(b), rtol=1e-6, atol=1e-6)
    ref = torch.nn.Linear(3, 2)
    ref.load_state_dict({"weight": w, "bias": b})
    np.testing.assert_allclose(_np(out), _np(ref(x)), rtol=1e-6, atol=1e-6)
    # the module's own parameters are untouched (same objects, same values)
    np.testing.assert_array_equal(_np(lin.weight), _np(w0))
    np.testing.assert_array_equal(_np(lin.bias), _np(b0))
    assert isinstance(lin.weight, torch.nn.Parameter)
    # partial dicts: the rest of the module's parameters are used
    out = fc(lin, {"bias": b}, (x,))
    np.testing.assert_allclose(_np(out), _np(x) @ _np(w0).T + _np(b), rtol=1e-6, atol=1e-6)
    # kwargs reach forward
    seq = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    params = {k: torch.zeros_like(v) for k, v in seq.named_parameters()}
    params["2.bias"] = torch.tensor([7.0])
    assert _np(fc(seq, params, kwargs={"input": x})).tolist() == [[7.0]] * 4


def test_gradients_reach_the_given_tensors():
    lin = torch.nn.Linear(3, 1)
    w = torch.ones(1, 3, requires_grad=True)
    x = torch.tensor([[1.0, 2.0, 3.0]])
    fc(lin, {"weight": w}, x).sum().backward()
    np.testing.assert_array_equal(_np(w.grad), [[1.0, 2.0, 3.0]])
    assert lin.weight.grad is None and lin.bias.grad is not None


def test_deprecation_warning_text_and_location():
    lin = torch.nn.Linear(2, 2)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        stateless.functional_call(lin, {}, torch.ones(1, 2))
    assert len(w) == 1
    assert w[0].category is FutureWarning and str(w[0].message) == _MSG
    assert w[0].filename == __file__                     # points at the caller
    assert stateless.functional_call.__deprecated__ == _MSG


def test_rebound_values_are_written_back():
    Counter, Failing, _ = _modules(torch)
    m = Counter()
    a = {"foo": torch.zeros(())}
    out = fc(m, a, torch.ones(()))
    assert float(out) == 2.0
    assert float(m.foo) == 0.0 and float(a["foo"]) == 1.0
    # also when forward raises after rebinding
    m = Failing()
    a = {"foo": torch.zeros(())}
    with pytest.raises(ValueError, match="boom"):
        fc(m, a, torch.ones(()))
    assert float(a["foo"]) == 5.0 and float(m.foo) == 0.0
    assert not m._forward_hooks                          # the call left no hook behind


def test_tied_weights():
    _, _, Tied = _modules(torch)
    t = Tied()
    x = torch.ones(1, 2)
    z = torch.zeros(2, 2)
    bias_sum = _np(t.a.bias) + _np(t.b.bias)
    # tie_weights (default): a.weight and b.weight both become zero
    np.testing.assert_allclose(_np(fc(t, {"a.weight": z}, x)), bias_sum[None], atol=1e-6)
    # tie_weights=False: only a.weight is replaced
    expect = _np(x) @ _np(t.b.weight).T + bias_sum
    np.testing.assert_allclose(_np(fc(t, {"a.weight": z}, x, tie_weights=False)), expect,
                               rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError) as e:
        fc(t, {"a.weight": z, "b.weight": torch.ones(2, 2)}, x)
    assert str(e.value) == ("functional_call got multiple values for keys ['a.weight', "
                            "'b.weight'], which are tied. Consider using tie_weights=False")
    # the same tensor under both names is fine
    fc(t, {"a.weight": z, "b.weight": z}, x)


def _errors(T, fcall):
    """The message of every error case, for module classes built from T."""
    Counter, _, Tied = _modules(T)
    m, t = Counter(), Tied()
    cases = [
        (m, {"foo": T.zeros(())}, {"strict": True}),
        (m, {"nope": T.zeros(())}, {"strict": True}),
        (t, {"a.weight": T.zeros(2, 2)}, {"strict": True}),
        (t, {"a.weight": T.zeros(2, 2), "a.bias": T.zeros(2), "b.bias": T.zeros(2)},
         {"strict": True, "tie_weights": False}),
        (m, {"lin.nope.x": T.zeros(())}, {}),
        (m, {"x.y": T.zeros(())}, {}),
        (m, {"foo.x": T.zeros(())}, {}),
        (m, {"foo": 3.0}, {}),
        (m, ({"foo": T.zeros(())},), {}),
        (T.nn.DataParallel(T.nn.Linear(2, 2)), {}, {}),
    ]
    out = []
    for mod, pb, kw in cases:
        with pytest.raises(Exception) as e:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fcall(mod, pb, T.ones(1, 2), **kw)
        out.append((type(e.value).__name__, str(e.value)))
    return out


def test_errors_as_torch():
    errs = _errors(torch, stateless.functional_call)
    assert errs[0] == ("RuntimeError", "Error(s) in reparametrizing for Counter:\n\t"
                       "Missing key(s): 'lin.bias', 'lin.weight'.")
    assert errs[1] == ("RuntimeError", "Error(s) in reparametrizing for Counter:\n\t"
                       "Unexpected key(s): 'nope'.\n\t"
                       "Missing key(s): 'foo', 'lin.bias', 'lin.weight'.")
    assert errs[2] == ("RuntimeError", "Error(s) in reparametrizing for Tied:\n\t"
                       "Missing key(s): 'a.bias', 'b.bias'.")
    # without tying, the duplicate name b.weight must be given too
    assert errs[3] == ("RuntimeError", "Error(s) in reparametrizing for Tied:\n\t"
                       "Missing key(s): 'b.weight'.")
    assert errs[4] == ("AttributeError", "Linear has no attribute `nope`")
    assert errs[5] == ("AttributeError", "Counter has no attribute `x`")
    assert errs[6][0] == "TypeError" and errs[6][1].startswith("submodule `foo`: ")
    assert errs[6][1].endswith(" is not an instance of torch.nn.Module")
    assert errs[7] == ("TypeError", "3.0 is not an instance of torch.Tensor")
    assert errs[8] == ("AttributeError", "'tuple' object has no attribute 'keys'")
    assert errs[9] == ("RuntimeError", "The stateless API can't be used with nn.DataParallel "
                                       "module")


def test_errors_and_write_back_match_torch():
    real = pytest.importorskip("torch", reason="an optional cross-check against PyTorch itself")
    from torch.nn.utils import stateless as real_stateless
    theirs = _errors(real, real_stateless.functional_call)
    ours = _errors(torch, stateless.functional_call)
    # (the submodule TypeError embeds each framework's tensor repr)
    assert [e if i != 6 else e[0] for i, e in enumerate(ours)] == \
        [e if i != 6 else e[0] for i, e in enumerate(theirs)]
    for T, f in ((real, real_stateless.functional_call), (torch, stateless.functional_call)):
        Counter, _, _ = _modules(T)
        m = Counter()
        a = {"foo": T.zeros(())}
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            out = f(m, a, T.ones(()))
        assert [str(x.message) for x in w] == [_MSG]
        assert (float(out), float(m.foo), float(a["foo"])) == (2.0, 0.0, 1.0)
