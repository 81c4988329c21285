"""Generated Triton kernels for pointwise primitives, checked against the primitive's NumPy
lowering by running them under Triton's interpreter on host memory, with PyTorch blocked.

The interpreter runs in a child process (this file run as a script with --worker): Triton
reads TRITON_INTERPRET when kernels are defined, and the child blocks `import torch` so the
path is proven torch-free. The child prints one JSON line per case; the tests read them.
"""
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FL = ("float32", "float64", "float16")
SH = (5, 37)                      # same-shape operands
BC = ((5, 1), (37,))              # broadcast operands -> (5, 37)


def U(dtypes, dom="any", shape=SH):
    return [("u", d, dom, shape) for d in dtypes]


def B(pairs, dom=("any", "any")):
    out = []
    for a, b in pairs:
        out.append(("b", a, b, dom, (SH, SH)))
        out.append(("b", a, b, dom, BC))
    return out


INTS = ("int64", "int32", "int8", "uint8")
ARITH_PAIRS = [("float32", "float32"), ("float64", "float64"), ("int64", "int64"),
               ("int8", "int8"), ("int32", "float32"), ("float16", "float16"),
               ("float32", "s:2.5"), ("float64", "s:0.1"), ("int8", "s:3"), ("s:2", "int64"),
               ("uint8", "int8")]
CMP_PAIRS = [("float32", "float32"), ("int64", "int64"), ("bool", "bool"),
             ("int32", "float64"), ("float32", "s:0.5"), ("int8", "s:2")]
BIT_PAIRS = [("int64", "int64"), ("int8", "int8"), ("uint8", "uint8"), ("bool", "bool"),
             ("int32", "s:5")]

# prim -> cases. Domains keep inputs where NumPy and the kernel are both defined.
CASES = {
    "copy": U(FL + INTS + ("bool",)),
    "neg": U(("float32", "float64", "int64", "int8")),
    "abs": U(("float32", "float64", "int64", "int8", "float16")),
    "sign": U(("float32", "int64", "int8")),
    "exp": U(FL + ("int64",), "small"),
    "exp2": U(FL, "small"),
    "log": U(FL + ("int64",), "pos"),
    "log2": U(FL, "pos"),
    "log10": U(FL, "pos"),
    "log1p": U(FL, "gtm1") + U(("float64", "float32"), "tiny"),
    "expm1": U(FL, "small") + U(("float64", "float32"), "tiny"),
    "sqrt": U(FL + ("int32",), "pos"),
    "rsqrt": U(FL, "pos"),
    "sin": U(FL), "cos": U(FL),
    "tan": U(("float32", "float64"), "unit"),
    "sinh": U(FL, "small") + U(("float64", "float32"), "tiny"),
    "cosh": U(FL, "small"),
    "tanh": U(FL) + U(("float64", "float32"), "tiny"),
    "sigmoid": U(FL),
    "relu": U(FL + ("int64", "int8")) + U(("float32", "float64"), "special"),
    "erf": U(("float32", "float64")),
    # special functions: float64 helpers for every input dtype; edges (nan, inf, 0) included
    "lgamma": U(("float32", "float64")) + U(("float64", "int64"), "special"),
    "digamma": U(("float32", "float64")) + U(("float64",), "special"),
    "polygamma": [("ua", "float64", "any", SH, (("n", 1),)), ("ua", "float32", "pos", SH, (("n", 3),)),
                  ("ua", "float64", "special", SH, (("n", 0),))],
    "erfinv": U(("float32", "float64", "float16"), "unit") + U(("float64",), "special"),
    "i0": U(("float32", "float64")) + U(("float64",), "special"),
    "i0e": U(("float32", "float64"), "special"),
    "i1": U(("float32", "float64")) + U(("float64",), "special"),
    "i1e": U(("float32", "float64"), "special"),
    # inverse hyperbolics, erfc (float64 tail: relative accuracy down to 1e-300), sign bit
    "asinh": U(FL) + U(("float64", "float32"), "tiny") + U(("float64", "float32"), "special"),
    "acosh": U(FL, "pos") + U(("float64", "float32"), "near1") + U(("float64",), "special"),
    "atanh": U(FL, "unit") + U(("float64", "float32"), "tiny") + U(("float64",), "special"),
    "erfc": U(("float32", "float64", "float16")) + U(("float64",), "special")
    + U(("float64",), "tail"),
    "signbit": U(FL + ("int64", "int8", "uint8", "bool"), "signs"),
    # the rest of torch.special: float32/float64 only (as torch), float64 helpers
    **{n: U(("float32", "float64")) + U(("float64",), "special")
       for n in ("airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1",
                 "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0",
                 "modified_bessel_k1", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
                 "spherical_bessel_j0")},
    "zeta": B([("float64", "float64"), ("float32", "s:2.0")], ("zeta_s", "zeta_q")),
    **{n: B([("float64", "float64")], ("poly_x", "deg")) + [
        ("b", "float32", "int64", ("poly_x", "exp_int"), BC), ("b", "s:0.5", "float64",
                                                                 ("any", "deg"), (SH, SH))]
       for n in [f"{s_}chebyshev_polynomial_{k}" for s_ in ("", "shifted_") for k in "tuvw"]
       + ["hermite_polynomial_h", "hermite_polynomial_he"]},
    # (1024-step recurrences: one case each keeps the interpreter quick)
    **{n: [("b", "float64", "float64", ("poly_x", "deg"), BC)]
       for n in ("laguerre_polynomial_l", "legendre_polynomial_p")},
    "floor": U(("float32", "float64", "int64")),
    "ceil": U(("float32", "float64", "int32")),
    "trunc": U(("float32", "float64", "int8")),
    "round": U(("float32", "float64"), "halves") + U(("int64",)),
    "reciprocal": U(FL + ("int64",), "nonzero"),
    "logical_not": U(("bool", "float32", "int64")),
    "bitwise_not": U(("bool", "int64", "int8", "uint8")),
    "isnan": U(("float32", "float64", "int64"), "special"),
    "isinf": U(("float32", "float64", "int64"), "special"),
    "isfinite": U(("float32", "float64", "int64"), "special"),
    "add": B(ARITH_PAIRS + [("bool", "bool")]),
    "sub": B(ARITH_PAIRS),
    "mul": B(ARITH_PAIRS + [("bool", "bool")]),
    "div": B([("float32", "float32"), ("float64", "float64"), ("int64", "int64"),
              ("float32", "s:3.0"), ("int32", "s:4"), ("float16", "float16")],
             ("any", "nonzero")),
    "floor_divide": B([("float32", "float32"), ("float64", "float64"), ("int64", "int64"),
                       ("int8", "int8"), ("int32", "s:3"), ("float32", "s:-0.75")],
                      ("any", "nonzero")),
    "remainder": B([("float32", "float32"), ("float64", "float64"), ("int64", "int64"),
                    ("int8", "int8"), ("int32", "s:-3")], ("any", "nonzero")),
    "fmod": B([("float32", "float32"), ("float64", "float64"), ("int64", "int64"),
               ("int16", "int16"), ("int32", "s:3")], ("any", "nonzero")),
    "pow": B([("float32", "float32"), ("float64", "float64")], ("pos", "small"))
    + B([("float64", "s:3"), ("float32", "s:2")], ("any", "any"))
    + B([("int64", "int64"), ("int32", "s:3")], ("small_int", "exp_int")),
    "maximum": B([("float32", "float32"), ("int64", "int64"), ("float64", "float64"),
                  ("bool", "bool"), ("int8", "s:3")], ("special", "any")),
    "minimum": B([("float32", "float32"), ("int64", "int64"), ("float64", "float64"),
                  ("bool", "bool"), ("int8", "s:3")], ("special", "any")),
    "copysign": B([("float32", "float32"), ("float64", "float64"), ("int64", "float32"),
                   ("int32", "int32"), ("float16", "float16"), ("float32", "s:-0.0")],
                  ("any", "signs")),
    "fmax": B([("float32", "float32"), ("float64", "float64"), ("int64", "int64"),
               ("bool", "bool"), ("int8", "float32"), ("float16", "float16")],
              ("special", "special")),
    "fmin": B([("float32", "float32"), ("float64", "float64"), ("int64", "int64"),
               ("bool", "bool"), ("int8", "float32"), ("float16", "float16")],
              ("special", "special")),
    "nextafter": B([("float32", "float32"), ("float64", "float64"), ("float16", "float16"),
                    ("float32", "s:0.0"), ("float64", "s:-1.5")], ("signs", "signs")),
    "gcd": B([("int64", "int64"), ("int32", "int32"), ("int8", "int8"), ("uint8", "uint8"),
              ("int16", "int64")], ("ties", "any")),
    "eq": B(CMP_PAIRS, ("ties", "ties")), "ne": B(CMP_PAIRS, ("ties", "ties")),
    "lt": B(CMP_PAIRS, ("ties", "ties")), "le": B(CMP_PAIRS, ("ties", "ties")),
    "gt": B(CMP_PAIRS, ("ties", "ties")), "ge": B(CMP_PAIRS, ("ties", "ties")),
    "logical_and": B([("bool", "bool"), ("float32", "int64"), ("int8", "s:0")], ("ties", "ties")),
    "logical_or": B([("bool", "bool"), ("float32", "int64"), ("int8", "s:0")], ("ties", "ties")),
    "logical_xor": B([("bool", "bool"), ("float32", "int64"), ("int8", "s:1")], ("ties", "ties")),
    "bitwise_and": B(BIT_PAIRS), "bitwise_or": B(BIT_PAIRS), "bitwise_xor": B(BIT_PAIRS),
    "bitwise_left_shift": B([("int64", "int64"), ("int32", "int32"), ("int8", "s:2")],
                            ("any", "shift")),
    "bitwise_right_shift": B([("int64", "int64"), ("int16", "int16"), ("uint8", "uint8"),
                              ("int32", "s:3")], ("any", "shift")),
    "where": [("w", c, x, y, shapes) for c, x, y in
              [("bool", "float32", "float32"), ("bool", "int64", "float64"),
               ("uint8", "float32", "s:0.0"), ("bool", "s:1", "s:2"), ("bool", "bool", "bool"),
               ("bool", "float16", "float16")]
              for shapes in ((SH, SH, SH), ((5, 1), (37,), (5, 37)))],
    # class targets pass through the kernel unchanged (the range check is the host's)
    "class_index": [("k", 7), ("k", 1)],
    "cast": [("c", a, b) for a, b in
             [("float32", "int64"), ("float32", "int8"), ("float64", "float32"),
              ("float32", "float16"), ("float32", "bool"), ("int64", "bool"),
              ("bool", "float32"), ("int64", "float64"), ("int32", "int8"),
              ("uint8", "int64"), ("float16", "float64"), ("int8", "uint8")]],
}

# layouts the index arithmetic must get right: views with strides, stride 0, negative steps
LAYOUT_CASES = ["transposed", "expanded", "stepped", "flipped", "scalar0d", "rank3", "chain"]


# ----------------------------------------------------------------------------- worker

def _gen(rng, dtype, dom, shape):
    if dtype == "bool":
        return rng.random(shape) < 0.5
    npd = np.dtype(dtype)
    if npd.kind in "iu":
        info = np.iinfo(npd)
        if dom == "shift":
            return rng.integers(0, npd.itemsize * 8 - 1, shape).astype(npd)
        if dom in ("pos", "nonzero") or (npd.kind == "u" and dom != "ties"):
            lo, hi = (1, min(100, info.max)) if dom in ("pos", "nonzero") else (0, min(200, info.max))
            v = rng.integers(lo, hi, shape)
            if dom == "nonzero" and npd.kind == "i":
                v = v * rng.choice([-1, 1], shape)
            return v.astype(npd)
        if dom == "small_int":
            return rng.integers(-4, 5, shape).astype(npd)
        if dom == "exp_int":
            return rng.integers(0, 9, shape).astype(npd)   # NumPy rejects negative int powers
        if dom == "ties":
            return rng.integers(-2, 3, shape).astype(npd)
        return rng.integers(max(info.min, -100), min(info.max, 100), shape).astype(npd)
    if dom == "pos":
        v = rng.uniform(0.05, 5.0, shape)
    elif dom == "small":
        v = rng.uniform(-3.0, 3.0, shape)
    elif dom == "unit":
        v = rng.uniform(-1.2, 1.2, shape)
    elif dom == "gtm1":
        v = rng.uniform(-0.95, 5.0, shape)
    elif dom == "tiny":
        v = rng.uniform(-1e-4, 1e-4, shape)
    elif dom == "nonzero":
        v = rng.uniform(0.5, 5.0, shape) * rng.choice([-1.0, 1.0], shape)
    elif dom == "halves":
        v = rng.integers(-20, 20, shape) * 0.5 + rng.choice([0.0, 0.0, 0.1, -0.2], shape)
    elif dom == "ties":
        v = rng.integers(-2, 3, shape).astype(np.float64)
    elif dom == "near1":
        v = 1.0 + rng.uniform(0.0, 1e-3, shape)
    elif dom == "tail":
        v = rng.uniform(2.0, 25.0, shape)
    elif dom == "signs":               # +-0.0, +-NaN, +-inf and numbers of both signs
        v = rng.normal(0, 3, shape)
        flat = v.reshape(-1)
        flat[::5] = 0.0
        flat[1::5] = -0.0
        flat[2::11] = np.nan
        flat[3::13] = -np.nan
        flat[4::17] = -np.inf
        flat[6::19] = np.inf
    elif dom == "poly_x":              # polynomial arguments: |x| < 1, > 1, +-1 and 0 exactly
        v = rng.uniform(-1.6, 1.6, shape)
        flat = v.reshape(-1)
        flat[::9] = 1.0
        flat[1::9] = -1.0
        flat[2::9] = 0.0
        flat[3::9] = 0.5
    elif dom == "deg":                 # degrees: 0..12, 70 and 100 (past the recurrences), < 0
        v = rng.integers(0, 13, shape).astype(np.float64) + rng.choice([0.0, 0.0, 0.6], shape)
        flat = v.reshape(-1)
        flat[::11] = 70.0
        flat[1::13] = 100.0
        flat[2::17] = -2.0
    elif dom == "zeta_s":
        v = rng.uniform(0.5, 8.0, shape)
        v.reshape(-1)[::7] = 1.0
        v.reshape(-1)[1::7] = 3.0
    elif dom == "zeta_q":
        v = rng.uniform(-3.0, 5.0, shape)
        v.reshape(-1)[::7] = -2.0
        v.reshape(-1)[1::7] = -1.5
    elif dom == "special":
        v = rng.normal(0, 3, shape)
        flat = v.reshape(-1)
        flat[::7] = np.nan
        flat[3::11] = np.inf
        flat[5::13] = -np.inf
        flat[1::17] = 0.0
    else:
        v = rng.normal(0, 3, shape)
    return v.astype(npd)


def _scalar(spec):
    t = spec[2:]
    if t in ("True", "False"):
        return t == "True"
    return float(t) if "." in t else int(t)


def _build(prim, case, rng):
    """(graph, input arrays) for one case."""
    from compiler.ir.graph import Graph
    from runtime import dtypes as dt
    g = Graph(prim)
    arrays, args = [], []

    def operand(spec, dom, shape, name):
        if spec.startswith("s:"):
            return _scalar(spec)
        a = _gen(rng, spec, dom, shape)
        arrays.append(a)
        return g.add_input(name, a.shape, dt.from_numpy(a.dtype))

    kind = case[0]
    if kind == "u":
        _, d, dom, shape = case
        args = [operand(d, dom, shape, "x")]
        attrs = {}
    elif kind == "ua":                     # unary with attributes (polygamma's n)
        _, d, dom, shape, attr_items = case
        args = [operand(d, dom, shape, "x")]
        attrs = dict(attr_items)
    elif kind == "b":
        _, a, b, (da, db), (sa, sb) = case
        args = [operand(a, da, sa, "x"), operand(b, db, sb, "y")]
        attrs = {}
    elif kind == "w":
        _, c, x, y, (sc, sx, sy) = case
        args = [operand(c, "any", sc, "c"), operand(x, "any", sx, "x"), operand(y, "any", sy, "y")]
        if c == "uint8":
            arrays[0] = (arrays[0] % 2).astype(np.uint8)
        attrs = {}
    elif kind == "k":
        _, classes = case
        t = np.where(rng.random(SH) < 0.2, -100, rng.integers(0, classes, SH)).astype(np.int64)
        arrays.append(t)
        args = [g.add_input("x", t.shape, dt.int64)]
        attrs = {"classes": classes, "ignore_index": -100}
    else:
        _, a, b = case
        dom = "special" if a.startswith("float") and b == "bool" else "any"
        args = [operand(a, dom, SH, "x")]
        attrs = {"dtype": dt._BY_NAME[b]}
    out = g.call(prim, *args, **attrs)
    g.set_outputs([out])
    return g, arrays


def _tol(out_dtype):
    return {"float16": (2e-3, 2e-3), "bfloat16": (1e-2, 1e-2), "float32": (1e-5, 1e-6),
            "float64": (1e-12, 1e-14)}.get(out_dtype)


def _compare(got, ref, rel_only=False):
    if got.shape != ref.shape or got.dtype != ref.dtype:
        return False, f"shape/dtype {got.shape} {got.dtype} vs {ref.shape} {ref.dtype}", None
    tol = _tol(ref.dtype.name)
    if tol is not None and rel_only:       # tiny inputs: relative accuracy is the point
        tol = (tol[0] * 4, 0.0)
    if tol is None:                        # integer / bool: exact
        bad = int(np.sum(got != ref))
        return bad == 0, f"{bad} of {ref.size} elements differ", 0.0 if bad == 0 else None
    g, r = got.astype(np.float64), ref.astype(np.float64)
    same_nan = np.array_equal(np.isnan(g), np.isnan(r))
    fin = ~np.isnan(r)
    ok_inf = np.array_equal(g[np.isinf(r)], r[np.isinf(r)])
    m = fin & ~np.isinf(r)
    err = np.abs(g[m] - r[m])
    bound = tol[1] + tol[0] * np.abs(r[m])
    maxerr = float(np.max(err / bound)) if err.size else 0.0
    return bool(same_nan and ok_inf and maxerr <= 1.0), \
        f"nan-match {same_nan} inf-match {ok_inf} max err/tol {maxerr:.3g}", maxerr


def _run_case(g, arrays, strides=None):
    from compiler.codegen import generate
    from runtime.interpret import HostTensor
    ref = g.run(*arrays)[0]
    k = generate(g, strides=strides)
    o = g.outputs[0]
    out = np.full(o.shape, 77, dtype=o.dtype.np)
    k.launch([HostTensor(a) for a in arrays], [HostTensor(out)], interpret=True)
    return k, out, np.asarray(ref)


def _layout_case(name, rng):
    from compiler.ir.graph import Graph
    from runtime import dtypes as dt
    g = Graph(name)
    f32 = dt.float32
    if name == "transposed":
        base = rng.normal(size=(37, 5)).astype(np.float32)
        x = base.T                                   # (5, 37) strides (1, 5)
        y = rng.normal(size=(5, 37)).astype(np.float32)
        vx, vy = g.add_input("x", x.shape, f32), g.add_input("y", y.shape, f32)
        g.set_outputs([g.call("sub", vx, vy)])
        arrays = [x, y]
    elif name == "expanded":
        x = np.broadcast_to(rng.normal(size=(1, 37)).astype(np.float32), (5, 37))  # stride 0
        y = rng.normal(size=(5, 37)).astype(np.float32)
        vx, vy = g.add_input("x", x.shape, f32), g.add_input("y", y.shape, f32)
        g.set_outputs([g.call("mul", vx, vy)])
        arrays = [x, y]
    elif name == "stepped":
        x = rng.normal(size=(10, 80)).astype(np.float64)[::2, 3::2]   # (5, 39)
        vx = g.add_input("x", x.shape, dt.float64)
        g.set_outputs([g.call("exp", vx)])
        arrays = [x]
    elif name == "flipped":
        x = rng.integers(-9, 9, (6, 7)).astype(np.int64)[::-1, ::-1]
        y = rng.integers(-9, 9, (7,)).astype(np.int64)[::-1]
        vx, vy = g.add_input("x", x.shape, dt.int64), g.add_input("y", y.shape, dt.int64)
        g.set_outputs([g.call("add", vx, vy)])
        arrays = [x, y]
    elif name == "scalar0d":
        x = np.array(2.5, np.float32)
        y = rng.normal(size=(4, 3)).astype(np.float32)
        vx, vy = g.add_input("x", x.shape, f32), g.add_input("y", y.shape, f32)
        g.set_outputs([g.call("maximum", vx, vy)])
        arrays = [x, y]
    elif name == "rank3":
        x = rng.normal(size=(3, 1, 6)).astype(np.float32)
        y = rng.normal(size=(4, 1)).astype(np.float32)
        c = rng.random((3, 4, 6)) < 0.5
        vc = g.add_input("c", c.shape, dt.bool_)
        vx, vy = g.add_input("x", x.shape, f32), g.add_input("y", y.shape, f32)
        g.set_outputs([g.call("where", vc, vx, vy)])
        arrays = [c, x, y]
    else:   # chain: three ops in one kernel, an int input promoted on the way
        x = rng.normal(size=(5, 37)).astype(np.float32)
        y = rng.integers(-5, 5, (37,)).astype(np.int64)
        vx, vy = g.add_input("x", x.shape, f32), g.add_input("y", y.shape, dt.int64)
        v = g.call("mul", g.call("add", vx, vy), 0.5)
        g.set_outputs([g.call("exp", v)])
        arrays = [x, y]
    strides = [tuple(s // a.itemsize for s in a.strides) for a in arrays]
    return g, arrays, strides


def worker():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _interp import become_interpreter_worker
    become_interpreter_worker(ROOT)
    np.seterr(all="ignore")
    import compiler.ops  # noqa: F401  (registers the primitives)
    rng = np.random.default_rng(1234)
    only = sys.argv[2:] or None
    for prim, cases in CASES.items():
        if only and prim not in only:
            continue
        for ci, case in enumerate(cases):
            rec = {"prim": prim, "case": repr(case)}
            try:
                g, arrays = _build(prim, case, rng)
                k, got, ref = _run_case(g, arrays)
                ok, msg, err = _compare(got, ref, rel_only=case[0] == "u" and case[2] in ("tiny", "tail"))
                rec.update(ok=ok, msg=msg, err=err, kernel=k.name)
            except Exception as e:  # reported per case, so one failure shows the others
                rec.update(ok=False, msg=f"{type(e).__name__}: {e}"[:2000])
            print(json.dumps(rec), flush=True)
    if not only:
        for name in LAYOUT_CASES:
            rec = {"prim": "layout:" + name, "case": name}
            try:
                g, arrays, strides = _layout_case(name, rng)
                k, got, ref = _run_case(g, arrays, strides)
                ok, msg, err = _compare(got, ref)
                rec.update(ok=ok, msg=msg, err=err, source=k.source)
            except Exception as e:
                rec.update(ok=False, msg=f"{type(e).__name__}: {e}"[:2000])
            print(json.dumps(rec), flush=True)
    print(json.dumps({"done": True, "torch_imported": "torch" in sys.modules}), flush=True)


# ----------------------------------------------------------------------------- tests

@pytest.fixture(scope="module")
def results(tmp_path_factory):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _interp import run_worker
    recs = run_worker(__file__, ROOT, str(tmp_path_factory.mktemp("kiln_cache")))
    by = {}
    for r in recs[:-1]:
        by.setdefault(r["prim"], []).append(r)
    by["__done__"] = recs[-1]
    return by


def _triton_prims():
    sys.path.insert(0, ROOT)
    import compiler.ops  # noqa: F401
    from compiler.ir.registry import REGISTRY
    return sorted(n for n, p in REGISTRY.items() if p.kind == "pointwise" and p.triton is not None)


def test_every_triton_pointwise_prim_has_a_case():
    missing = [n for n in _triton_prims() if n not in CASES]
    assert not missing, f"pointwise primitives with a Triton lowering but no interpreter case: {missing}"
    stale = [n for n in CASES if n not in _triton_prims()]
    assert not stale, f"cases for primitives without a Triton lowering: {stale}"


@pytest.mark.parametrize("prim", sorted(CASES))
def test_interpreted_kernel_matches_numpy(results, prim):
    recs = results.get(prim)
    assert recs and len(recs) == len(CASES[prim]), f"{prim}: worker produced no results"
    bad = [f"{r['case']}: {r['msg']}" for r in recs if not r["ok"]]
    assert not bad, f"{prim}:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", LAYOUT_CASES)
def test_layouts(results, name):
    r = results["layout:" + name][0]
    assert r["ok"], r["msg"]
    if name in ("transposed", "stepped", "flipped"):
        assert "_stride" in r["source"]           # index arithmetic from strides, not copies
    if name == "scalar0d":
        assert "x = tl.load(x_ptr)" in r["source"]
    if name == "chain":
        body = r["source"].split("@triton.jit")[-1]
        assert body.count("    # v") == 3             # one commented line per IR node
        assert "= add(" in body and "= mul(" in body and "= exp(" in body


def test_worker_never_imported_torch(results):
    assert results["__done__"]["torch_imported"] is False


# ------------------------------------------------------------- source text, cache, errors

def _add_graph(shape_y=(8,)):
    sys.path.insert(0, ROOT)
    import compiler.ops  # noqa: F401
    from compiler.ir.graph import Graph
    from runtime import dtypes as dt
    g = Graph()
    x = g.add_input("x", (4, 8), dt.float32)
    y = g.add_input("y", shape_y, dt.float32)
    g.set_outputs([g.call("add", x, y)])
    return g


def test_source_text_is_readable_triton():
    from compiler.codegen import generate
    k = generate(_add_graph())
    src = k.source
    assert k.name == "fused_add_0"
    assert "@triton.jit\ndef fused_add_0(x_ptr, y_ptr, out0_ptr, numel, size1, y_stride0," in src
    assert "# v0: f32[d0, d1] = add(x: f32[d0, d1], y: f32[d1])\n    v0 = x + y\n" in src
    assert "mask = offs < numel" in src
    assert "x = tl.load(x_ptr + offs, mask=mask)" in src          # same shape: flat index
    assert "i1 = offs % size1" in src                           # broadcast: index arithmetic
    assert "y = tl.load(y_ptr + i1 * y_stride0, mask=mask)" in src
    assert "tl.store(out0_ptr + offs, v0, mask=mask)" in src
    compile(src, "<kernel>", "exec")                            # valid Python
    # sizes are arguments: another batch size gives the same source, a new broadcast does not
    from compiler.ir.graph import Graph
    from runtime import dtypes as dt
    g2 = Graph()
    x = g2.add_input("x", (9, 8), dt.float32)
    y = g2.add_input("y", (8,), dt.float32)
    g2.set_outputs([g2.call("add", x, y)])
    assert generate(g2).source == src
    assert generate(_add_graph((4, 8))).source != src
    assert k.args(*_fake_bufs((4, 8), (8,)))[3:] == [32, 8, 1]


class _Buf:
    def __init__(self, shape):
        self.shape = shape
        st, acc = [], 1
        for s_ in reversed(shape):
            st.append(acc)
            acc *= s_
        self._st = tuple(reversed(st))

    def stride(self):
        return self._st


def _fake_bufs(*shapes):
    return [_Buf(shapes[0]), _Buf(shapes[1])], [_Buf(shapes[0])]


def test_scalar_becomes_argument_and_dtype_casts(monkeypatch):
    from compiler.codegen import generate
    from compiler.ir.graph import Graph
    from runtime import dtypes as dt
    g = Graph()
    x = g.add_input("x", (6,), dt.int8)
    g.set_outputs([g.call("add", x, 3)])
    k = generate(g)
    assert "v0 = x + tl.full([], s0, tl.int8)" in k.source      # int8 + 3 stays int8 (torch)
    assert [p.role for p in k.params if p.name == "s0"] == [("scalar", 3)]
    g = Graph()
    x = g.add_input("x", (6,), dt.float64)
    g.set_outputs([g.call("mul", x, 0.1)])
    k = generate(g)
    assert "s0: tl.constexpr" in k.source                      # fp64 scalars stay exact
    g = Graph()
    x = g.add_input("x", (6,), dt.float16)
    g.set_outputs([g.call("exp", x)])
    assert "v0 = (tl.exp(x.to(tl.float32))).to(tl.float16)" in generate(g).source


def test_kernel_file_cached_by_content_hash(tmp_path, monkeypatch):
    from compiler.codegen import generate, cache
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path))
    k1, k2 = generate(_add_graph()), generate(_add_graph())
    assert k1.path == k2.path and k1.path.startswith(str(tmp_path))
    assert os.path.basename(k1.path) == f"fused_add_0_{cache.digest(k1.source)}.py"
    with open(k1.path) as f:
        assert f.read() == k1.source
    assert generate(_add_graph((4, 8))).path != k1.path


def test_codegen_rejects_what_it_cannot_lower():
    from compiler.codegen import generate, TritonCodegenError
    from compiler.ir.graph import Graph
    from runtime import dtypes as dt
    g = Graph()
    x = g.add_input("x", (4, 8), dt.float32)
    g.set_outputs([g.call("sum", x, dims=(1,))])
    with pytest.raises(NotImplementedError, match="sum is a reduction primitive"):
        generate(g)
    g = Graph()
    x = g.add_input("x", (4,), dt.float32)
    g.set_outputs([g.call("atan", x)])
    with pytest.raises(TritonCodegenError, match="atan has no Triton lowering"):
        generate(g)
    g = Graph()
    x = g.add_input("x", (4, 8), dt.float32)
    y = g.add_input("y", (8,), dt.float32)
    g.set_outputs([g.call("exp", x), g.call("exp", y)])
    with pytest.raises(TritonCodegenError, match="differ in shape"):
        generate(g)
    with pytest.raises(ValueError, match="stride tuples"):
        generate(_add_graph(), strides=[(8, 1)])


# ------------------------------------------------------------- ahead-of-time compilation

def _aot_cases():
    out = []
    for prim, cases in CASES.items():
        picks = [cases[0], cases[-1]]
        if prim == "pow":
            picks.append(cases[-2])
        out += [(prim, c) for c in dict((repr(c), c) for c in picks).values()]
    return out


def test_every_pointwise_kernel_compiles_to_sm90_ptx():
    pytest.importorskip("triton")
    sys.path.insert(0, ROOT)
    from compiler import aot
    from compiler.codegen import generate
    if aot.tool("ptxas") is None:
        pytest.skip("triton wheel ships no ptxas (backends/nvidia/bin/ptxas): cannot assemble")
    rng = np.random.default_rng(0)
    bad = []
    for prim, case in _aot_cases():
        g, _ = _build(prim, case, rng)
        try:
            art = aot.compile_kernel(generate(g), arch=90)
        except Exception as e:
            bad.append(f"{prim} {case}: {e}")
            continue
        if ".target sm_90" not in art.ptx or not art.cubin or "tt.func" not in art.ttir:
            bad.append(f"{prim} {case}: ptx/cubin/ttir missing")
    assert not bad, "\n".join(bad)


def test_aot_reports_registers_and_shared_memory():
    pytest.importorskip("triton")
    from compiler import aot
    from compiler.codegen import generate
    art = aot.compile_kernel(generate(_add_graph()), arch=90)
    for stage in aot.STAGES:
        assert art.asm.get(stage), stage
    assert ".entry fused_add_0" in art.ptx
    if aot.tool("cuobjdump"):
        assert 0 < art.registers <= 255
    assert art.shared == 0          # a pointwise kernel needs no shared memory
    assert "sm_90" in art.summary()


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    worker()
