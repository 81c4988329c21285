"""torch.compiler.set_stance and the torch._dynamo extras: graph_break, optimize,
OptimizedModule, allow/disallow_in_graph, list_backends, is_exporting."""
import numpy as np
import pytest

import framework as torch
from framework import _dynamo


@pytest.fixture(autouse=True)
def default_stance():
    yield
    _dynamo._STANCE[0] = _dynamo.DynamoStance()     # whatever a failing test left


def _stance():
    return _dynamo._STANCE[0].stance


def test_force_eager_compiles_nothing():
    f = torch.compile(lambda x: x * 3 + 1)
    x = torch.tensor([1.0, 2.0])
    with torch.compiler.set_stance("force_eager"):
        np.testing.assert_array_equal(f(x).numpy(), [4.0, 7.0])
    assert f.stats["compiles"] == 0 and f.graphs() == [] and f.stats["calls"] == 0
    np.testing.assert_array_equal(f(x).numpy(), [4.0, 7.0])
    assert len(f.graphs()) == 1               # the default stance compiles again


def test_fail_on_recompile_raises_and_leaves_no_state():
    f = torch.compile(lambda x: x - 1)
    f(torch.ones(2))
    guards, calls = set(f._guard_sets), f.stats["calls"]
    with torch.compiler.set_stance("fail_on_recompile"):
        np.testing.assert_array_equal(f(torch.full((2,), 5.0)).numpy(), [4.0, 4.0])
        with pytest.raises(RuntimeError, match="(?s)Detected recompile when torch.compile "
                           "stance is 'fail_on_recompile'.*float32\\[2\\].*float32\\[3\\]"):
            f(torch.ones(3))
    assert f._guard_sets == guards and f.stats["calls"] == calls + 1
    assert f.recompile_reasons() == []
    np.testing.assert_array_equal(f(torch.ones(3)).numpy(), [0.0, 0.0, 0.0])   # compiles now
    assert len(f.recompile_reasons()) == 1


def test_fail_on_recompile_also_refuses_a_first_compile():
    f = torch.compile(lambda x: x + 1)
    with torch.compiler.set_stance("fail_on_recompile"):
        with pytest.raises(RuntimeError, match="no compiled program yet"):
            f(torch.ones(2))


def test_fail_on_recompile_names_file_function_and_line():
    # PyTorch's message: filename, function name and the function's first line
    import re

    def plus_one(x):
        return x + 1
    line = plus_one.__code__.co_firstlineno
    f = torch.compile(plus_one)

    class M(torch.nn.Module):
        def forward(self, x):
            return x * 2
    m = torch.compile(M())
    with torch.compiler.set_stance("fail_on_recompile"):
        with pytest.raises(RuntimeError, match=re.escape(
                f"stance is 'fail_on_recompile'. filename: '{__file__}', function name: "
                f"'plus_one', line number: {line}")):
            f(torch.ones(2))
        with pytest.raises(RuntimeError, match=f"function name: 'forward', line number: "
                                               f"{M.forward.__code__.co_firstlineno}"):
            m(torch.ones(2))


def test_eager_on_recompile_runs_new_shapes_eagerly():
    f = torch.compile(lambda x: (x * 2).sum())
    f(torch.ones(2))
    n_graphs = len(f.graphs())
    with torch.compiler.set_stance("eager_on_recompile"):
        assert f(torch.ones(4, 4)).item() == 32.0          # new guards: eager
        assert f(torch.full((2,), 3.0)).item() == 12.0     # known guards: compiled program
    assert f.stats["eager_calls"] == 1 and f.recompile_reasons() == []
    assert len(f.graphs()) == n_graphs          # no program was made for the 4x4 call


def test_eager_then_compile():
    f = torch.compile(lambda x: x + 2)
    with torch.compiler.set_stance("eager_then_compile"):
        assert f(torch.ones(1)).item() == 3.0
        assert f.graphs() == []
        assert f(torch.ones(1)).item() == 3.0
        assert len(f.graphs()) == 1


def test_stance_forms_restore_the_previous_one():
    assert _stance() == "default"
    torch.compiler.set_stance("force_eager")                 # the call form sets it
    assert _stance() == "force_eager"
    torch.compiler.set_stance("default")
    with pytest.raises(ValueError):
        with torch.compiler.set_stance("eager_on_recompile"):
            assert _stance() == "eager_on_recompile"
            raise ValueError
    assert _stance() == "default"

    @torch.compiler.set_stance("force_eager")
    def run(fail):
        assert _stance() == "force_eager"
        if fail:
            raise KeyError("x")
        return 5
    assert _stance() == "default"           # decorating does not change it
    assert run(False) == 5 and _stance() == "default"
    with pytest.raises(KeyError):
        run(True)
    assert _stance() == "default"
    with torch.compiler.set_stance("fail_on_recompile"):    # nested: back to the outer one
        with torch.compiler.set_stance("force_eager"):
            pass
        assert _stance() == "fail_on_recompile"
    assert _stance() == "default"


def test_stance_bad_arguments():
    with pytest.raises(RuntimeError, match="non-default stance cannot have force_backend set"):
        torch.compiler.set_stance("force_eager", force_backend="eager")
    assert _stance() == "default"
    f = torch.compile(lambda x: x + 1)
    torch.compiler.set_stance("bogus")          # as torch: accepted here, refused at the call
    with pytest.raises(RuntimeError, match="invalid torch.compile stance.*bogus"):
        f(torch.ones(1))
    torch.compiler.set_stance("default")

    def inner(x):
        torch.compiler.set_stance("force_eager")
        return x
    with pytest.raises(RuntimeError, match="attempted to set_stance in a torch.compile region"):
        torch.compile(inner)(torch.ones(1))
    assert _stance() == "default"


def test_force_backend():
    f = torch.compile(lambda x: x * 5)
    with torch.compiler.set_stance(force_backend="eager"):
        assert f(torch.ones(1)).item() == 5.0
        assert f.backend == "numpy"         # restored after the call
    with torch.compiler.set_stance(force_backend="nope"):
        with pytest.raises(torch._dynamo.exc.InvalidBackend, match="nope"):
            f(torch.ones(1))


def _two_parts(x):
    y = torch.sin(x) + 1
    torch._dynamo.graph_break()
    return y * y


def test_graph_break_splits_the_graph():
    x = torch.tensor([0.5, -1.0, 2.0])
    want = (np.sin(x.numpy().astype(np.float64)) + 1) ** 2
    e = torch._dynamo.explain(_two_parts)(x)
    assert e.graph_count == 2 and e.graph_break_count == 1
    assert "torch._dynamo.graph_break()" in e.break_reasons[0]
    f = torch.compile(_two_parts)
    np.testing.assert_allclose(f(x).numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(_two_parts(x).numpy(), want, rtol=1e-6)   # eager: no-op
    with pytest.raises(torch._dynamo.exc.Unsupported, match="graph_break"):
        torch.compile(_two_parts, fullgraph=True)(x)


def test_optimized_module_and_old_spellings():
    m = torch.nn.Linear(3, 2)
    cm = torch.compile(m)
    assert isinstance(cm, torch._dynamo.eval_frame.OptimizedModule)
    assert isinstance(cm, torch._dynamo.OptimizedModule) and isinstance(cm, torch.nn.Module)
    assert not isinstance(m, torch._dynamo.OptimizedModule)
    assert cm._orig_mod is m
    x = torch.tensor([[1.0, 2.0, 3.0]])
    want = x.numpy() @ m.weight.detach().numpy().T + m.bias.detach().numpy()
    g = torch._dynamo.optimize("eager")(lambda x: m(x))
    np.testing.assert_allclose(g(x).detach().numpy(), want, rtol=1e-6)
    assert g.backend == "eager"
    assert torch._dynamo.optimize(nopython=True)(lambda x: x).fullgraph is True
    assert torch._dynamo.list_backends() == torch.compiler.list_backends()
    assert torch._dynamo.allow_in_graph is torch.compiler.allow_in_graph
    assert torch._dynamo.set_stance is torch.compiler.set_stance
    assert torch.compiler.is_exporting() is False


def test_disallow_in_graph_breaks_around_the_call():
    cos = torch._dynamo.disallow_in_graph(torch.cos)

    def f(x):
        return cos(x + 1) * 2

    e = torch._dynamo.explain(f)(torch.zeros(2))
    assert e.graph_break_count == 1 and "disallow_in_graph" in e.break_reasons[0]
    np.testing.assert_allclose(torch.compile(f)(torch.zeros(2)).numpy(), 2 * np.cos([1.0, 1.0]),
                               rtol=1e-6)
