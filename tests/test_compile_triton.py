"""compile(backend='interpret'): every fused group of a compiled graph runs as a generated Triton
kernel under Triton's interpreter (compiler/triton_backend.py), compared with eager Kiln on the
same inputs; then every kernel those programs wrote to the kernel cache compiles ahead of time
to PTX for sm_90 (the cache walk of issue 7's CI checks).

The interpreter runs in a child process (this file with --worker; TRITON_INTERPRET=1, PyTorch
blocked), as in test_triton_groups.py; it prints one JSON line per case.
"""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cases():
    import framework as torch
    import framework.nn.functional as F
    from framework import nn, optim
    rng = np.random.default_rng(3)
    N, C = 6, 24
    x = torch.tensor(rng.normal(0, 2, (N, C)).astype(np.float32))
    w = torch.tensor(rng.normal(1, 0.5, (C,)).astype(np.float32))
    b = torch.tensor(rng.normal(0, 0.5, (C,)).astype(np.float32))
    y = torch.tensor(rng.normal(0, 1, (C,)).astype(np.float32))
    t = torch.tensor(rng.integers(0, 5, (N,)))

    def forward(fn, *args):
        def run(backend):
            f = fn if backend is None else torch.compile(fn, backend=backend)
            out = f(*args)
            return [out.numpy()], f
        return run

    def chain(x, y):
        return torch.sigmoid(torch.relu(x.t() * 0.5 + 1.25).t() - y) * x.exp().clamp(max=4.0)

    def mlp(steps):
        def run(backend):
            torch.manual_seed(0)
            m = nn.Sequential(nn.Linear(C, 16), nn.GELU(), nn.Linear(16, 5))
            if steps == 0:
                f = m if backend is None else torch.compile(m, backend=backend)
                loss = F.cross_entropy(f(x), t)
                loss.backward()
                return [loss.detach().numpy()] + [p.grad.numpy() for p in m.parameters()], f
            opt = optim.Adam(m.parameters(), lr=1e-2)

            def step(xb, tb):
                opt.zero_grad()
                loss = F.cross_entropy(m(xb), tb)
                loss.backward()
                opt.step()
                return loss
            f = step if backend is None else torch.compile(step, backend=backend)
            losses = [f(x, t).detach().numpy() for _ in range(steps)]
            return losses + [p.detach().numpy() for p in m.parameters()], f
        return run

    # indexing and scatters: x[i, j] with two broadcast index tensors, index_put_ with
    # accumulate (duplicate positions add up), scatter_add, slice_scatter, diagonal_scatter
    ii = torch.tensor([[0], [-1], [2]])
    jj = torch.tensor([1, -2, 0, 5])
    pi, pj = torch.tensor([0, 2, 2, -1, 0]), torch.tensor([1, 3, 3, 0, 1])
    pv = torch.tensor(rng.normal(0, 1, (5,)).astype(np.float32))
    si = torch.tensor(rng.integers(0, N, (4, C)))
    src = torch.tensor(rng.normal(0, 1, (4, C)).astype(np.float32))

    def indexing(x, ii, jj, pi, pj, pv, si, src):
        a = x[ii, jj] * 2
        yv = x.clone()
        yv.index_put_((pi, pj), pv, accumulate=True)
        z = torch.scatter_add(x, 0, si, src)
        w = torch.slice_scatter(x, x[:, ::3] * 3, dim=-1, start=0, step=3)
        q = torch.diagonal_scatter(x, x[0, :N] - 1, 2)
        return a, yv + 1, z, w, q

    def indexing_run(backend):
        f = indexing if backend is None else torch.compile(indexing, backend=backend)
        return [o.numpy() for o in f(x, ii, jj, pi, pj, pv, si, src)], f

    def indexing_grad_run(backend):
        xg = torch.tensor(x.numpy(), requires_grad=True)

        def loss(xg, ii, jj, si):
            return (xg[ii, jj] ** 2).sum() + (xg.gather(0, si) * src).sum()
        f = loss if backend is None else torch.compile(loss, backend=backend)
        out = f(xg, ii, jj, si)
        out.backward()
        return [out.detach().numpy(), xg.grad.numpy()], f

    w0 = rng.normal(0, 0.5, (C, C)).astype(np.float32)

    def tied_run(backend):
        # one weight read directly and through a transpose (tied embeddings): its gradient adds
        # a permuted term to a direct one, which must not fuse element by element
        wg = torch.tensor(w0, requires_grad=True)

        def loss(wg, x):
            return (wg.exp() ** 2).sum() + (wg.mT.exp() * x[0]).sum() + (x @ wg.t()).sum()
        f = loss if backend is None else torch.compile(loss, backend=backend)
        out = f(wg, x)
        out.backward()
        return [out.detach().numpy(), wg.grad.numpy()], f

    def flat_t(x):
        # a transposed computed value flattened: no view of its strides, so the matmul's
        # operand load reads a contiguous copy (torch.reshape copies there too)
        z = x.tanh().t().reshape(-1).flip(0).reshape(C, N)
        return z @ x

    def flat_t_pointwise_run(backend):
        # a transpose flattened as a view group's output and as a pointwise group's input,
        # forward and backward: kernels reading a contiguous device copy, no host fallback
        xg = torch.tensor(x.numpy(), requires_grad=True)

        def fn(xg, y):
            a = (xg * 2).t().reshape(-1)
            b = xg.t().reshape(-1) + 1
            return a, (b * a.flip(0)).sum() + (xg.t().reshape(C, N) * y[:, None]).sum()
        f = fn if backend is None else torch.compile(fn, backend=backend)
        a, s = f(xg, y)
        s.backward()
        return [a.detach().numpy(), s.detach().numpy(), xg.grad.numpy()], f

    return {
        "flatten_of_transpose_pointwise": flat_t_pointwise_run,
        "tied_weight_backward": tied_run,
        "flatten_of_transpose": forward(flat_t, x),
        "indexing_and_scatters": indexing_run,
        "indexing_backward": indexing_grad_run,
        "pointwise_chain": forward(chain, x, y),
        "softmax": forward(lambda x: F.softmax(x, -1), x),
        "log_softmax": forward(lambda x: F.log_softmax(x, -1), x),
        "layer_norm": forward(lambda x: F.layer_norm(x, (C,), w, b), x),
        "mlp_forward_backward": mlp(0),
        "mlp_adam_3_steps": mlp(3),
        "cumsum_fallback": forward(lambda x: torch.cumsum(x, 1) * 2, x),
    }


def worker():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _interp import become_interpreter_worker
    become_interpreter_worker(ROOT)
    for name, run in _cases().items():
        rec = {"case": name}
        try:
            ref, _ = run(None)
            got, f = run("interpret")
            cf = getattr(f, "_compiled", f)
            errs = [float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(r, np.float64))
                                 / (1e-5 + 1e-4 * np.abs(np.asarray(r, np.float64)))))
                    if np.size(r) else 0.0 for a, r in zip(got, ref)]
            progs = cf.programs()
            rec.update(ok=bool(max(errs) <= 1.0) and len(got) == len(ref), err=max(errs),
                       programs=[type(p).__name__ for p in progs],
                       backends=sorted({p.backend for p in progs}),
                       kernels=sum(len(p.kernels) for p in progs),
                       fallbacks={k: v for p in progs for k, v in p.fallbacks.items()},
                       runs=sum(p.runs for p in progs),
                       reshape_views=sum(s.reshape_only for p in progs for s in p.steps),
                       host_steps=sorted({p.steps[i].group.name for p in progs
                                          for _, hs, _ in p._host_plans.values() for i in hs}),
                       group_runs=sum(sum(p.group_runs().values()) for p in progs),
                       kernel_names=sorted(s.kernel.name for p in progs for s in p.steps
                                           if not s.fallback and s.kernel is not None))
        except Exception as e:
            import traceback
            rec.update(ok=False, err=None, msg=f"{type(e).__name__}: {e}\n"
                                               f"{traceback.format_exc()[-2000:]}")
        print(json.dumps(rec), flush=True)
    print(json.dumps({"done": True, "torch_imported": "torch" in sys.modules}), flush=True)


CASES = ["flatten_of_transpose_pointwise", "tied_weight_backward", "flatten_of_transpose", "pointwise_chain", "softmax", "log_softmax", "layer_norm", "mlp_forward_backward",
         "mlp_adam_3_steps", "cumsum_fallback", "indexing_and_scatters", "indexing_backward"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("kiln_cache"))


@pytest.fixture(scope="module")
def results(cache_dir):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _interp import run_worker
    recs = run_worker(__file__, ROOT, cache_dir)
    by = {r["case"]: r for r in recs[:-1]}
    by["__done__"] = recs[-1]
    return by


@pytest.mark.parametrize("case", CASES)
def test_compiled_interpret_matches_eager(results, case):
    r = results.get(case)
    assert r is not None, f"{case}: no result"
    assert r["ok"], r.get("msg") or f"max err/tol {r['err']}"
    assert r["programs"] and set(r["programs"]) == {"TritonProgram"}
    assert r["backends"] == ["interpret"]
    assert r["kernels"] >= 1 and r["runs"] >= 1 and r["group_runs"] >= r["kernels"]


def test_fused_normalisations_are_one_kernel(results):
    for case in ("softmax", "log_softmax"):
        assert results[case]["kernels"] == 1, results[case]


def test_training_step_runs_every_group_as_a_kernel(results):
    # cross_entropy's target pick has a plane_scatter gradient and its batch mean closes the
    # row group in one program: the whole Adam step (forward, backward, update) is kernels
    r = results["mlp_adam_3_steps"]
    assert r["fallbacks"] == {}, r["fallbacks"]
    assert r["kernels"] >= 5
    # Adam's scalar work (step counts, bias corrections: CPU scalars) runs on the host
    assert r["host_steps"] and len(r["host_steps"]) < r["kernels"], r["host_steps"]
    # the target reshapes between its groups are views of contiguous buffers, not copy kernels
    assert r["reshape_views"] >= 1, r


def test_indexing_and_scatters_run_as_kernels(results):
    # advanced indexing, index_put (accumulate), scatter_add, slice_scatter and
    # diagonal_scatter are generated kernels in compiled programs, not host fallbacks
    r = results["indexing_and_scatters"]
    assert r["ok"] and r["fallbacks"] == {}, r
    names = r["kernel_names"]
    for op in ("index", "index_put", "scatter", "slice_scatter", "diagonal_scatter"):
        assert any(n.startswith(op + "_") and n[len(op) + 1:].isdigit() for n in names), \
            (op, names)
    # the backward of x[i, j] accumulates with index_put; gather's backward is scatter_add
    r = results["indexing_backward"]
    # (the zeros the accumulation starts from are a lone `full`, a creation group)
    assert r["ok"] and not [g for g in r["fallbacks"] if not g.startswith("full_")], r
    names = r["kernel_names"]
    assert any(n.startswith("index_put_") for n in names), names
    assert any(n.startswith("scatter_") or n.startswith("gather_") for n in names), names


def test_permuted_gradient_terms_run_as_kernels(results):
    r = results["tied_weight_backward"]
    assert r["ok"], r
    assert r["fallbacks"] == {} and r["kernels"] >= 3, r


def test_flattened_transposes_run_as_kernels(results):
    # a reshape that is no view of its input's strides reads a contiguous copy at launch
    # (CuPy on a GPU), so neither the view group nor the pointwise group leaves the device
    r = results["flatten_of_transpose_pointwise"]
    assert r["ok"] and r["fallbacks"] == {} and r["kernels"] >= 3, r


def test_named_fallback(results):
    # a group with no kernel runs its library lowering (CuPy on a GPU), and says so
    r = results["cumsum_fallback"]
    assert r["ok"] and any(why.startswith("extern: cumsum: cupy.cumsum on the GPU")
                           for why in r["fallbacks"].values()), r


def test_worker_never_imported_torch(results):
    assert results["__done__"]["torch_imported"] is False


def test_every_cached_kernel_compiles_to_sm90_ptx(results, cache_dir):
    """Walk the kernel cache the compiled programs above wrote and compile every kernel in it
    (with its .aot.json signature) to PTX for sm_90, without a GPU."""
    pytest.importorskip("triton")
    sys.path.insert(0, ROOT)
    from compiler import aot
    from compiler.triton_backend import compile_cached_kernel
    if aot.tool("ptxas") is None:
        pytest.skip("triton wheel ships no ptxas")
    files = sorted(glob.glob(os.path.join(cache_dir, "triton", "*.py")))
    with_sig = [f for f in files if os.path.exists(f + ".aot.json")]
    assert len(with_sig) >= 5 and len(with_sig) == len(files), (len(with_sig), len(files))
    bad = []
    for f in with_sig:
        try:
            art = compile_cached_kernel(f, arch=90)
            if not art.ptx or ".target sm_90" not in art.ptx or not art.cubin:
                bad.append(f"{os.path.basename(f)}: empty PTX/cubin")
        except Exception as e:
            bad.append(f"{os.path.basename(f)}: {type(e).__name__}: {e}"[:400])
    assert not bad, "\n".join(bad)


if __name__ == "__main__" and "--worker" in sys.argv:
    worker()


def test_compiled_module_on_the_interpret_device_keeps_device_across_replays():
    """bench/gpu_compile_check.py --interpret: compile(backend='interpret') on device tensors,
    a module forward+backward called 4 times (traced, cached, then replayed): outputs stay on
    the device and match CPU eager (a replay once labelled its outputs cpu)."""
    env = dict(os.environ, KILN_DEVICE="interpret", TRITON_INTERPRET="1")
    p = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gpu_compile_check.py"),
                        "--interpret"], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "MLP forward+backward        PASS" in p.stdout and "replayed" in p.stdout, p.stdout
    # the whole AdamW step compiled as a function: replayed on the device after 3 traces
    assert "AdamW training step         PASS" in p.stdout, p.stdout
    assert "(5 calls, 2 replayed)" in p.stdout, p.stdout


def test_backends_flags_and_float32_matmul_precision():
    """torch.backends: cudnn flags are recorded (Kiln has no cuDNN); cuda.matmul.allow_tf32
    and set_float32_matmul_precision choose ieee or tf32 float32 dots in generated matmul
    kernels (PyTorch's default: full float32)."""
    pytest.importorskip("triton", reason="generating the matmul kernel needs Triton")
    import numpy as np
    import framework as torch
    from compiler.codegen.triton_eager import _one_node_kernel
    from compiler.ir.registry import REGISTRY
    from runtime.interpret import HostTensor
    from runtime import dtypes as dt
    torch.backends.cudnn.benchmark = True
    assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.is_available()
    assert not torch.backends.mps.is_available()
    a = HostTensor(np.ones((4, 8), np.float32), dt.float32)
    b = HostTensor(np.ones((8, 3), np.float32), dt.float32)
    assert torch.get_float32_matmul_precision() == "highest"
    assert not torch.backends.cuda.matmul.allow_tf32
    try:
        src = _one_node_kernel(REGISTRY["matmul"], [a, b], {}, True).source
        assert 'input_precision="ieee"' in src
        torch.set_float32_matmul_precision("high")
        assert torch.backends.cuda.matmul.allow_tf32
        src = _one_node_kernel(REGISTRY["matmul"], [a, b], {}, True).source
        assert 'input_precision="tf32"' in src
        torch.backends.cuda.matmul.allow_tf32 = False
        assert torch.get_float32_matmul_precision() == "highest"
        with pytest.raises(RuntimeError, match="invalid precision 'fast'"):
            torch.set_float32_matmul_precision("fast")
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = False
