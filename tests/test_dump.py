"""`kiln dump` and `kiln explain` (framework/cli.py, compiler/dump.py) on real scripts."""
import glob
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _kiln(*args, cwd=ROOT, timeout=300):
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)
    return subprocess.run([sys.executable, "-m", "framework.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def dumped(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("dump"))
    p = _kiln("dump", "--asm", "--target", "sm_90", "--max-asm", "2", "--out", out,
              "examples/train_digits.py", "--compile", "--epochs", "1", "--subset", "200",
              "--no-plot", "--quiet")
    assert p.returncode == 0, p.stderr[-3000:]
    return out, p.stdout


def test_dump_folder_layout(dumped):
    out, _ = dumped
    folders = [d for d in glob.glob(os.path.join(out, "*")) if os.path.isdir(d)]
    assert folders
    for d in folders:
        for f in ("graph.py", "backward_graph.py", "fusion.txt", "wrapper.py"):
            assert os.path.isfile(os.path.join(d, f)), (d, f)
        graph = open(os.path.join(d, "graph.py")).read()
        assert "def " in graph and " = " in graph
        kernels = glob.glob(os.path.join(d, "kernels", "*.py"))
        assert any("@triton.jit" in open(k).read() for k in kernels)
        assert any(k.endswith("_numpy.py") for k in kernels)      # the NumPy program itself
        fusion = open(os.path.join(d, "fusion.txt")).read()
        assert "groups" in fusion and "[matmul" in fusion


def test_dump_asm_has_ptx_for_sm90(dumped):
    out, _ = dumped
    ptx = glob.glob(os.path.join(out, "*", "kernels", "*.ptx"))
    if not ptx:
        pytest.importorskip("triton")
        errs = glob.glob(os.path.join(out, "*", "kernels", "*.asm_error.txt"))
        pytest.fail("no PTX written: " + " ".join(open(e).read() for e in errs[:2]))
    assert len(ptx) == 2                                         # --max-asm 2
    for p in ptx:
        text = open(p).read()
        assert text and ".target sm_90" in text
        base = p[:-4]
        for st in ("ttir", "ttgir", "llir"):
            assert os.path.getsize(f"{base}.{st}") > 0
        assert os.path.getsize(base + ".cubin") > 0


def test_dump_prints_summary_table(dumped):
    _, stdout = dumped
    assert "kiln dump: 1 compiled callable(s)" in stdout
    head = next(line for line in stdout.splitlines() if line.startswith("kernel "))
    for col in ("kind", "ops", "read", "written", "FLOPs", "regs", "runs", "time"):
        assert col in head
    assert "fused_matmul" in stdout and "kernels; total read" in stdout
    # the two kernels compiled ahead of time report their registers
    rows = [line.split() for line in stdout.splitlines()[stdout.splitlines().index(head) + 2:]
            if line and not line.startswith("-")]
    assert sum(1 for r in rows if len(r) > 6 and r[-3].isdigit()) >= 2


def test_dump_wrapper_reproduces_graph(dumped):
    out, _ = dumped
    w = glob.glob(os.path.join(out, "*", "wrapper.py"))[0]
    p = subprocess.run([sys.executable, w], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = [line for line in p.stdout.splitlines() if line.startswith("output ")]
    assert lines
    for line in lines:
        # equal to float32 rounding: the program keeps linear layers' activations transposed
        # (numpy_gen._transposed) and BLAS may sum in another order for another layout
        rel = float(line.rsplit("largest value ", 1)[1].rstrip(")"))
        assert rel <= 1e-5, line


BREAK = textwrap.dedent("""
    import framework as torch

    @torch.compile
    def f(x):
        y = x * 2
        if y.sum() > 0:          # needs a value: graph break
            y = y + 1
        return y.relu()

    f(torch.ones(3))
    f(torch.ones(3))
    f(torch.ones(4))             # new shape: recompile
""")


def test_explain_prints_graph_break_and_recompile(tmp_path):
    s = tmp_path / "brk.py"
    s.write_text(BREAK)
    p = _kiln("explain", str(s))
    assert p.returncode == 0, p.stderr[-2000:]
    assert "graph break:" in p.stdout and "brk.py:" in p.stdout
    assert "recompile: arg0: float32[3] on cpu -> float32[4] on cpu" in p.stdout
    # the function's replay decision is explained too (here: the graph break prevents it)
    assert "replays=0" in p.stdout and "replay: not replayable: graph break" in p.stdout, \
        p.stdout


def test_python_m_compiler_dump_with_backend_and_only(tmp_path):
    s = tmp_path / "sm.py"
    s.write_text("import framework as torch\nimport framework.nn.functional as F\n"
                 "f = torch.compile(lambda x: F.softmax(x * 2, -1))\n"
                 "print(f(torch.ones(4, 8)).sum().item())\n")
    out = tmp_path / "o"
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)
    p = subprocess.run([sys.executable, "-m", "compiler.dump", "--backend", "interpret",
                        "--only", "amax", "--out", str(out), str(s)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "4.0" in p.stdout                     # the script's own output (softmax rows sum)
    ks = glob.glob(str(out / "*" / "kernels" / "*.py"))
    assert len(ks) == 1 and "amax" in os.path.basename(ks[0])
    assert "@triton.jit" in open(ks[0]).read()
    assert "interpret" in open(glob.glob(str(out / "*" / "fusion.txt"))[0]).read()


def test_dump_asm_of_a_device_script_under_the_interpreter(tmp_path):
    # KILN_DEVICE=interpret imports Triton in interpreter mode, where its library functions
    # (tl.sum, tl.randint4x) cannot be compiled for a GPU: the dump compiles in a child process
    pytest.importorskip("triton", reason="the interpret device and AOT need Triton")
    s = tmp_path / "drop.py"
    s.write_text("import framework as torch\nimport framework.nn.functional as F\n"
                 "f = torch.compile(lambda x: F.dropout(x, 0.5).sum())\n"
                 "print(f(torch.ones(4, 8).to('cuda')).item())\n")
    out = tmp_path / "o"
    env = dict(os.environ, KILN_DEVICE="interpret")
    env.pop("TRITON_INTERPRET", None)
    p = subprocess.run([sys.executable, "-m", "framework.cli", "dump", "--asm", "--out",
                        str(out), str(s)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    kdir = glob.glob(str(out / "*" / "kernels"))[0]
    assert not glob.glob(os.path.join(kdir, "*.asm_error.txt")), \
        [open(f).read()[-300:] for f in glob.glob(os.path.join(kdir, "*.asm_error.txt"))]
    ptx = {os.path.basename(f)[:-4]: open(f).read() for f in glob.glob(os.path.join(kdir, "*.ptx"))}
    draws = [k for k in ptx if k.startswith("philox_")]
    assert draws and ".target sm_90" in ptx[draws[0]] and "mul.hi.u32" in ptx[draws[0]]
    assert any(k.startswith(("sum_", "fused_")) for k in ptx)       # (tl.sum inside)
    rows = [ln for ln in p.stdout.splitlines() if ln.startswith(("philox_", "sum_", "fused_"))]
    assert rows and all(ln.split()[-3].isdigit() for ln in rows), rows  # registers counted


def test_dump_help_has_examples():
    p = _kiln("dump", "--help")
    assert p.returncode == 0
    for opt in ("--backend", "--target", "--out", "--only", "--asm", "examples:"):
        assert opt in p.stdout


def test_every_library_op_names_its_gpu_routine():
    # the dump says which CuPy routine runs each library op on a GPU: none may be unnamed
    from compiler import REGISTRY
    from compiler.codegen.triton_group import _LIBRARY
    missing = sorted(n for n, p in REGISTRY.items() if p.xp is not None and n not in _LIBRARY)
    assert not missing, f"library ops without a named GPU routine: {missing}"
