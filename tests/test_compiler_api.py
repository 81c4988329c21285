"""torch.compiler / torch._dynamo controls over compile(): disable (a graph break around an eager
call; fullgraph raises), is_compiling, reset (compiles anew), mark_dynamic / mark_static (shape
guards), config.cache_size_limit and automatic_dynamic_shapes, explain."""
import numpy as np
import pytest

import framework as torch


def test_disabled_function_runs_eagerly_between_compiled_regions():
    seen = []

    @torch.compiler.disable
    def host_side(t):
        seen.append((torch.compiler.is_compiling(), type(t._data).__name__))
        return t.numpy().sum() * 2           # needs a concrete value: fine outside the graph

    def f(x):
        y = x * 3
        s = host_side(y)
        return y + s, torch.compiler.is_compiling()

    x = torch.arange(4.0)
    cf = torch.compile(f)
    out, compiling = cf(x)
    np.testing.assert_array_equal(out.numpy(), np.arange(4.0) * 3 + 36.0)
    assert compiling is True                  # f itself was traced
    assert seen == [(False, "ndarray")]       # host_side saw a concrete array, not tracing
    assert any("disable" in r for r, _ in cf.stats["graph_breaks"])
    assert not torch.compiler.is_compiling()
    with pytest.raises(torch._compile.GraphBreakError, match="disable"):
        torch.compile(f, fullgraph=True)(x)
    assert host_side(x) == 12.0               # outside compile: a plain call


def test_disable_with_reason_and_as_a_decorator_factory():
    @torch.compiler.disable(reason="uses a C library")
    def g(t):
        return t + 1
    cf = torch.compile(lambda t: g(t * 2) * 5)
    np.testing.assert_array_equal(cf(torch.ones(3)).numpy(), [15.0, 15.0, 15.0])
    assert any("uses a C library" in r for r, _ in cf.stats["graph_breaks"])


def test_reset_compiles_anew():
    cf = torch.compile(lambda t: (t * 2).sum())
    x = torch.ones(4)
    cf(x)
    cf(x)
    n = cf.stats["compiles"]
    torch.compiler.reset()
    assert cf(x).item() == 8.0
    assert cf.stats["compiles"] == n + 1      # the program cache and the guards were cleared
    assert torch._dynamo.reset is torch.compiler.reset


def test_mark_dynamic_leaves_a_dim_unguarded():
    cf = torch.compile(lambda t: t.sum(0), dynamic=False)
    a, b = torch.ones(2, 3), torch.ones(5, 3)
    torch._dynamo.mark_dynamic(a, 0)
    torch._dynamo.mark_dynamic(b, 0)
    np.testing.assert_array_equal(cf(a).numpy(), [2.0] * 3)
    np.testing.assert_array_equal(cf(b).numpy(), [5.0] * 3)      # right values for each size
    assert cf.stats["recompiles"] == []       # a new size of a dynamic dim is no guard failure
    assert cf.stats["specializations"] == 1   # (one more concrete program)
    c = torch.ones(2, 4)
    torch._dynamo.mark_dynamic(c, 0)
    cf(c)
    assert len(cf.stats["recompiles"]) == 1   # dim 1 is still guarded
    torch._dynamo.mark_static(b)
    cf(b)
    assert len(cf.stats["recompiles"]) == 2
    with pytest.raises(IndexError, match="out of range"):
        torch._dynamo.mark_dynamic(a, 2)
    with pytest.raises(TypeError, match="Tensor"):
        torch._dynamo.mark_dynamic([1, 2], 0)


def test_config_cache_size_limit_and_automatic_dynamic(monkeypatch):
    from framework import _compile
    monkeypatch.setattr(_compile, "cache_size_limit", _compile.cache_size_limit)
    monkeypatch.setattr(_compile, "automatic_dynamic_shapes", True)
    assert torch._dynamo.config.cache_size_limit == 8
    torch._dynamo.config.cache_size_limit = 2
    assert torch._dynamo.config.recompile_limit == 2
    cf = torch.compile(lambda t: t * 2, dynamic=False)
    with pytest.warns(UserWarning):
        for n in (1, 2, 3):
            np.testing.assert_array_equal(cf(torch.ones(n)).numpy(), [2.0] * n)
    assert cf.stats["eager_calls"] == 1       # the third shape ran eagerly
    with pytest.raises(ValueError):
        torch._dynamo.config.cache_size_limit = -1
    with pytest.raises(AttributeError):
        torch._dynamo.config.no_such_knob = 1
    torch._dynamo.config.cache_size_limit = 8
    torch._dynamo.config.automatic_dynamic_shapes = False
    cf = torch.compile(lambda t: t + 1)
    cf(torch.ones(2))
    cf(torch.ones(3))
    cf(torch.ones(4))
    assert len(cf.stats["recompiles"]) == 2   # every batch size recompiles without it


def test_explain_reports_graphs_and_breaks():
    def f(x):
        y = x.sin()
        if y.sum() > 0:                       # a value read: graph break
            y = y * 2
        return y.cos()
    out = torch._dynamo.explain(f)(torch.ones(3))
    assert out.graph_count == 2 and out.graph_break_count == 1
    assert "Graph Break Count: 1" in str(out) and out.op_count >= 3


def test_compiler_helpers():
    assert "numpy" in torch.compiler.list_backends()
    f = lambda t: t  # noqa: E731
    assert torch.compiler.allow_in_graph(f) is f
    assert torch.compiler.assume_constant_result(f) is f
    assert torch.compiler.cudagraph_mark_step_begin() is None
