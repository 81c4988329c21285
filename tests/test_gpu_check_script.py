"""bench/gpu_check.py's CPU-side parts (the GPU sections run only on a GPU): its kernel table
covers every pointwise primitive with a Triton lowering, and the worker pool that compiles
them ahead of time for sm_90 returns every result, in order."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))


def test_cases_cover_every_triton_pointwise_primitive():
    import gpu_check
    from compiler.ir.registry import REGISTRY
    prims = {prim for _, prim, _, _ in gpu_check.cases()}
    want = {n for n, p in REGISTRY.items() if p.kind == "pointwise" and p.triton is not None}
    assert prims == want and len(want) > 90


def test_pool_compiles_kernels_for_sm90_in_order():
    pytest.importorskip("triton")
    import gpu_check
    from compiler import aot
    if aot.tool("ptxas") is None:
        pytest.skip("triton wheel ships no ptxas: cannot assemble")
    labels = [c[0] for c in gpu_check.cases()]
    pick = [labels.index(n) for n in ("add", "exp", "where")]
    res = gpu_check._pool_map(gpu_check._aot_one, [(i, 90) for i in pick])
    assert [ok for ok, _ in res] == [True, True, True], res
    for (_, line), i in zip(res, pick):
        assert line.startswith(labels[i]) and line.rstrip().endswith("sm_90a"), line
