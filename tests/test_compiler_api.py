"""torch.compiler / torch._dynamo controls over compile(): disable (a graph break around an eager
call; fullgraph raises), is_compiling, reset (compiles anew), mark_dynamic / mark_static (shape
guards), config.cache_size_limit and automatic_dynamic_shapes, explain, the default backend,
wrap_numpy, substitute_in_graph, nested_compile_region and the cache artifacts round trip."""
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
    assert torch.compiler.compile(lambda t: t * 3, backend="numpy")(torch.ones(2)).tolist() == \
        [3.0, 3.0]


def test_default_backend():
    assert torch.compiler.get_default_backend() == "inductor"
    try:
        torch.compiler.set_default_backend("eager")
        assert torch.compiler.get_default_backend() == "eager"
        cf = torch.compile(lambda t: t * 2)
        assert cf.backend == "eager" and cf(torch.ones(2)).tolist() == [2.0, 2.0]
        assert torch.compile(lambda t: t, backend="numpy").backend == "numpy"   # explicit wins
        with pytest.raises(TypeError, match="backend must be a string or callable, got <class "
                           "'int'>"):
            torch.compiler.set_default_backend(3)
        assert torch.compiler.get_default_backend() == "eager"
    finally:
        torch.compiler.set_default_backend(None)
    assert torch.compiler.get_default_backend() == "inductor"


def test_wrap_numpy():
    @torch.compiler.wrap_numpy
    def f(a, scale=1.0):
        return a.T * scale, float(np.sum(a * a))

    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t, s = f(torch.tensor(a), scale=2.0)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    np.testing.assert_array_equal(t.numpy(), a.T * 2)
    assert s == 55.0
    t2, s2 = torch.compile(f)(torch.tensor(a), scale=2.0)        # runs its NumPy eagerly
    np.testing.assert_array_equal(t2.numpy(), a.T * 2)
    assert s2 == 55.0
    with pytest.raises(RuntimeError, match="Can't call numpy\\(\\) on Tensor that requires grad"):
        f(torch.ones(2, requires_grad=True))


def test_substitute_in_graph():
    ran = []

    def original(a, b):
        ran.append("original")
        return a + b

    @torch.compiler.substitute_in_graph(original)
    def traceable(a, b):
        ran.append("traceable")
        return b + a

    x, y = torch.tensor([1.0, 2.0]), torch.tensor([10.0, 20.0])
    assert traceable(x, y).tolist() == [11.0, 22.0] and ran == ["original"]
    out = torch.compile(lambda p, q: traceable(p, q) * 2)(x, y)
    assert out.tolist() == [22.0, 44.0] and ran[1:] == ["traceable"]
    with pytest.raises(ValueError, match="Duplicate dispatch rule for <function"):
        torch.compiler.substitute_in_graph(original)(lambda a, b: a)
    with pytest.raises(TypeError, match=r"Signature mismatch between .*: \(a, b\) != \(a, c\)"):
        torch.compiler.substitute_in_graph(lambda a, b: a)(lambda a, c: a)
    with pytest.raises(TypeError, match="substitute_in_graph expects a function but got "
                       "<class 'int'>"):
        torch.compiler.substitute_in_graph(3)


def test_nested_compile_region_same_values_and_grads():
    @torch.compiler.nested_compile_region
    def block(h, w):
        return torch.tanh(h @ w)

    def model(x, w):
        return block(block(x, w), w).sum()

    assert block.__marked_compile_region_fn__.__name__ == "block"
    rng = np.random.default_rng(0)
    xa, wa = rng.standard_normal((3, 4)), rng.standard_normal((4, 4))
    h1 = np.tanh(xa @ wa)
    h2 = np.tanh(h1 @ wa)
    # d/dw of sum(tanh(tanh(x w) w)), written out
    g2 = 1 - h2 ** 2
    g1 = (g2 @ wa.T) * (1 - h1 ** 2)
    dw = h1.T @ g2 + xa.T @ g1
    for fn in (model, torch.compile(model)):
        x = torch.tensor(xa)
        w = torch.tensor(wa, requires_grad=True)
        out = fn(x, w)
        out.backward()
        np.testing.assert_allclose(out.item(), h2.sum(), rtol=1e-12)
        np.testing.assert_allclose(w.grad.numpy(), dw, rtol=1e-10)
    with pytest.raises(RuntimeError, match="nested_compile_region config is an experimental"):
        torch.compiler.nested_compile_region(model, options=object())


def test_cache_artifacts_round_trip(tmp_path, monkeypatch):
    from compiler import cache
    from framework._compile import region
    monkeypatch.setattr(cache, "_RECORDED", {})
    assert torch.compiler.save_cache_artifacts() is None        # nothing compiled yet
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "a"))
    torch.compiler.reset()

    def f(t):
        return (t * 3 + 1).sin().sum()
    x = torch.arange(5.0)
    assert torch.compile(f, backend="numpy")(x).item() == pytest.approx(
        np.sin(np.arange(5.0) * 3 + 1).sum(), rel=1e-6)
    blob, info = torch.compiler.save_cache_artifacts()
    keys = info.inductor_artifacts
    assert len(keys) == 1 and info.autotune_artifacts == [] and not info.empty()

    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "b"))        # another machine's cache
    torch.compiler.reset()
    loaded = torch.compiler.load_cache_artifacts(blob)
    assert loaded.inductor_artifacts == keys
    assert (tmp_path / "b" / "programs" / "numpy" / (keys[0] + ".py")).exists()
    cf = torch.compile(f, backend="numpy")
    cf(x)
    assert cf.stats["regions"][0].fwd.origin == "disk"      # no code generated this time
    assert region._PLANS                                      # (reset cleared the old plan)

    assert torch.compiler.load_cache_artifacts(b"not artifacts") is None
    bad = blob.replace(b"sin", b"cos")                         # body no longer matches header
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "c"))
    assert torch.compiler.load_cache_artifacts(bad).empty()
    assert not (tmp_path / "c" / "programs").exists()
    torch.compiler.reset()
