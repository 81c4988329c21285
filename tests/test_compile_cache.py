"""Disk cache of generated programs: a second process loads from disk, a corrupt entry is
detected and regenerated, two processes compiling the same graph at once are both fine."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from compiler import backend, cache
from compiler.codegen import numpy_gen
from compiler.ir.graph import Graph
from runtime import dtypes as dt

ROOT = __file__.rsplit("/tests/", 1)[0]

# builds a softmax-then-matmul graph, compiles it, checks it against Graph.run, prints origin
SCRIPT = textwrap.dedent(f"""
    import sys, time
    sys.path.insert(0, {ROOT!r})
    import numpy as np
    from compiler.backend import compile_graph
    from compiler.ir.graph import Graph
    from runtime import dtypes as dt

    g = Graph("cached")
    x = g.add_input("x", (16, 32), dt.float32)
    w = g.add_input("w", (32, 8), dt.float32)
    m = g.call("amax", x, dims=(1,), keepdim=True)
    e = g.call("exp", g.call("sub", x, m))
    p = g.call("div", e, g.call("sum", e, dims=(1,), keepdim=True))
    y = g.call("add", g.call("matmul", p, w), 0.25)
    g.set_outputs([y])
    t = time.perf_counter()
    prog, fresh = compile_graph(g)
    dt_s = time.perf_counter() - t
    rng = np.random.default_rng(1)
    ins = [rng.standard_normal((16, 32)).astype(np.float32),
           rng.standard_normal((32, 8)).astype(np.float32)]
    np.testing.assert_array_equal(prog.run(ins, g.float_consts())[0], g.run(*ins)[0])
    print(prog.origin, fresh, len(prog.group_names), f"{{dt_s:.4f}}")
""")


def _run(cache_dir, n=1):
    env = dict(os.environ, KILN_CACHE_DIR=str(cache_dir))
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(out.split())
    return outs


def _entries(cache_dir):
    d = os.path.join(cache_dir, "programs", "numpy")
    return [os.path.join(d, f) for f in os.listdir(d)] if os.path.isdir(d) else []


def test_second_process_loads_from_disk(tmp_path):
    (first,) = _run(tmp_path)
    assert first[:2] == ["cold", "True"]
    files = _entries(tmp_path)
    assert len(files) == 1 and files[0].endswith(".py")
    with open(files[0]) as f:
        assert f.readline().startswith(cache.HEADER)
    (second,) = _run(tmp_path)
    assert second[:2] == ["disk", "True"]
    assert second[2] == first[2]          # same group count from the cached META


def test_corrupt_entry_is_detected_and_regenerated(tmp_path, caplog, monkeypatch):
    _run(tmp_path)
    (path,) = _entries(tmp_path)
    good = open(path).read()
    head, _, body = good.partition("\n")
    for bad in (head + "\n" + body.replace("def make", "def make(("),       # bad syntax
                head + "\n" + body + "\n# tampered\n",                      # body hash
                "garbage\n" + body):                                        # header
        with open(path, "w") as f:
            f.write(bad)
        (out,) = _run(tmp_path)
        assert out[0] == "cold"
        assert open(path).read() == good       # rewritten
    # in-process: the warning names the entry
    with open(path, "w") as f:
        f.write("garbage\n")
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path))
    with caplog.at_level("WARNING", logger="kiln.cache"):
        assert cache.load_program(os.path.basename(path)[:-3], "numpy") is None
    assert any("corrupt entry" in r.getMessage() and path in r.getMessage()
               for r in caplog.records)


def test_concurrent_compiles_are_safe(tmp_path):
    outs = _run(tmp_path, n=3)
    assert all(o[1] == "True" for o in outs)
    assert len(_entries(tmp_path)) == 1
    leftovers = [f for f in os.listdir(os.path.join(tmp_path, "programs", "numpy"))
                 if f.endswith(".tmp")]
    assert leftovers == []
    (again,) = _run(tmp_path)
    assert again[0] == "disk"


def test_memory_cache_and_introspection_of_disk_hit(tmp_path, monkeypatch):
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path))
    g = Graph("intro")
    x = g.add_input("x", (4, 4), dt.float32)
    y = g.call("mul", g.call("exp", x), 2.0)
    g.set_outputs([y])
    p1, fresh1 = backend.compile_graph(g)
    p2, fresh2 = backend.compile_graph(g)
    assert p2 is p1 and fresh1 and not fresh2
    # drop the in-memory entry: the next compile is a disk hit with the same source
    backend._CACHE.pop(("numpy", numpy_gen.version(), g.key()))
    p3, _ = backend.compile_graph(g)
    assert p3.origin == "disk" and p3.source == p1.source
    # introspection is rebuilt on demand
    assert [gr.name for gr in p3.groups] == [gr.name for gr in p1.groups] == ["fused_exp_mul_0"]
    assert "fused_exp_mul_0 [pointwise" in p3.partition.describe()
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_array_equal(p3.run([a], [2.0])[0], np.exp(a) * np.float32(2.0))


def test_default_cache_dir(monkeypatch):
    monkeypatch.delenv("KILN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/tmp/xdg-test")
    assert cache.base_dir() == "/tmp/xdg-test/kiln"
    monkeypatch.setenv("KILN_CACHE_DIR", "/tmp/elsewhere")
    assert cache.program_path("abc", "numpy") == "/tmp/elsewhere/programs/numpy/abc.py"


def test_cache_key_depends_on_backend_version_and_graph():
    k = cache.program_key("graph-a", "numpy", "v1")
    assert k == cache.program_key("graph-a", "numpy", "v1")
    assert len({k, cache.program_key("graph-b", "numpy", "v1"),
                cache.program_key("graph-a", "numpy", "v2"),
                cache.program_key("graph-a", "triton", "v1")}) == 4


def test_unknown_backend_raises():
    g = Graph("b")
    g.set_outputs([])
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        backend.compile_graph(g, "cuda")
