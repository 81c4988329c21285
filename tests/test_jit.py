"""framework.jit: trace (graph recording and replay), save/load, script, predicates."""
import io
import os
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest

import framework as torch
from framework import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _np(t):
    return t.detach().numpy().astype(np.float64)


def _mlp_ref(m, x):
    """The MLP in float64 NumPy from its parameters."""
    w1, b1 = _np(m[0].weight), _np(m[0].bias)
    w2, b2 = _np(m[2].weight), _np(m[2].bias)
    return np.maximum(x @ w1.T + b1, 0) @ w2.T + b2


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


class _CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 4 * 4, 5)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        y = nn.functional.max_pool2d(y, 2)
        return self.fc(y.reshape(y.shape[0], -1))


def _cnn_ref(m, x):
    w, b = _np(m.conv.weight), _np(m.conv.bias)
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.zeros((n, w.shape[0], h, wd))
    for i in range(h):
        for j in range(wd):
            y[:, :, i, j] = np.einsum("ncij,ocij->no", xp[:, :, i:i + 3, j:j + 3], w) + b
    y = np.maximum(y, 0).reshape(n, w.shape[0], h // 2, 2, wd // 2, 2).max(axis=(3, 5))
    return y.reshape(n, -1) @ _np(m.fc.weight).T + _np(m.fc.bias)


def test_trace_tiny_linear_hand_computed():
    lin = nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[2.0, -1.0]]))
        lin.bias.fill_(0.5)
    t = torch.jit.trace(lin, torch.zeros(1, 2))
    out = t(torch.tensor([[3.0, 4.0], [1.0, 1.0]]))
    # 2*3 - 4 + 0.5 = 2.5; 2 - 1 + 0.5 = 1.5 (a new batch size re-specialises the graph)
    np.testing.assert_array_equal(out.detach().numpy(), [[2.5], [1.5]])


def test_trace_mlp_matches_reference_and_graph_text():
    m = _mlp()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    t = torch.jit.trace(m, torch.from_numpy(x))
    assert isinstance(t, torch.jit.ScriptModule) and isinstance(t, torch.jit.TracedModule)
    for xb in (x, rng.standard_normal((9, 4)).astype(np.float32)):
        np.testing.assert_allclose(_np(t(torch.from_numpy(xb))), _mlp_ref(m, xb.astype(np.float64)),
                                   rtol=1e-5, atol=1e-5)
    g = str(t.graph)
    assert "matmul(" in g and "f32[5, 4]" in g
    assert "self.0.weight" in t.code and t.code.startswith("def forward(self, x0: f32[5, 4]):")
    assert list(t.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(list(t.parameters())) == 4
    assert t.forward(torch.from_numpy(x)).shape == (5, 3)


def test_trace_cnn_matches_reference_new_batch():
    torch.manual_seed(3)
    m = _CNN()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 8, 8)).astype(np.float32)
    t = torch.jit.trace(m, torch.from_numpy(x))
    for xb in (x, rng.standard_normal((3, 2, 8, 8)).astype(np.float32)):
        np.testing.assert_allclose(_np(t(torch.from_numpy(xb))),
                                   _cnn_ref(m, xb.astype(np.float64)), rtol=1e-4, atol=1e-4)


def test_trace_sees_in_place_parameter_update_and_gradients():
    m = _mlp()
    x = np.random.default_rng(4).standard_normal((3, 4)).astype(np.float32)
    t = torch.jit.trace(m, torch.from_numpy(x))
    with torch.no_grad():
        m[0].weight.mul_(-2.0)
        m[2].bias.add_(1.0)
    np.testing.assert_allclose(_np(t(torch.from_numpy(x))), _mlp_ref(m, x.astype(np.float64)),
                               rtol=1e-5, atol=1e-5)
    # gradients reach the module's parameters: d sum(out) / d b2 = batch size per output
    t(torch.from_numpy(x)).sum().backward()
    np.testing.assert_array_equal(m[2].bias.grad.numpy(), [3.0, 3.0, 3.0])


def test_trace_function_and_is_tracing():
    seen = []

    def f(a, b):
        seen.append(torch.jit.is_tracing())
        return a * b + 1.0, a - b

    a = torch.tensor([1.0, 2.0])
    b = torch.tensor([3.0, -1.0])
    tf = torch.jit.trace(f, (a, b))
    # PyTorch's check_trace (on by default) traces again, then runs the Python function
    assert seen == [True, True, False] and not torch.jit.is_tracing()
    p, q = tf(torch.tensor([2.0, 0.5]), torch.tensor([4.0, 2.0]))
    assert seen == [True, True, False]    # calls run the graph, not the Python
    np.testing.assert_array_equal(p.numpy(), [9.0, 2.0])
    np.testing.assert_array_equal(q.numpy(), [-2.0, -1.5])
    assert torch.jit.is_scripting() is False


def test_tracer_warning_on_item_bakes_branch():
    def f(x):
        if x.sum().item() > 0:
            return x * 2
        return x - 1

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        tf = torch.jit.trace(f, torch.ones(3))
    tw = [x for x in w if issubclass(x.category, torch.jit.TracerWarning)]
    # once from the trace and once from check_trace's second trace, as in PyTorch
    assert len(tw) == 2 and all("item()" in str(x.message) for x in tw)
    assert tw[0].filename == __file__
    # the branch taken while tracing is baked in: -1 * 2, not -1 - 1
    np.testing.assert_array_equal(tf(-torch.ones(3)).numpy(), [-2.0, -2.0, -2.0])


def test_trace_batchnorm_updates_buffers_once_and_eval():
    torch.manual_seed(5)
    bn = nn.BatchNorm1d(3)
    x = np.random.default_rng(6).standard_normal((4, 3)).astype(np.float32)
    t = torch.jit.trace(bn, torch.from_numpy(x), check_trace=False)
    # the trace ran forward once (as PyTorch's does): running_mean = 0.1 * batch mean
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * x.mean(0), rtol=1e-5, atol=1e-6)
    t(torch.from_numpy(x))
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.19 * x.mean(0), rtol=1e-5, atol=1e-6)
    assert int(bn.num_batches_tracked) == 2


def test_save_load_round_trip_without_class(tmp_path):
    m = _CNN()
    x = np.random.default_rng(7).standard_normal((2, 2, 8, 8)).astype(np.float32)
    t = torch.jit.trace(m, torch.from_numpy(x))
    path = str(tmp_path / "cnn.pt")
    torch.jit.save(t, path)
    ref = _cnn_ref(m, x.astype(np.float64))
    loaded = torch.jit.load(path)
    np.testing.assert_allclose(_np(loaded(torch.from_numpy(x))), ref, rtol=1e-4, atol=1e-4)
    assert sorted(loaded.state_dict()) == sorted(m.state_dict())
    # a fresh interpreter that never defines _CNN
    np.save(str(tmp_path / "x.npy"), x)
    code = ("import numpy as np, framework as torch\n"
            f"m = torch.jit.load({path!r})\n"
            f"x = torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r}))\n"
            f"np.save({str(tmp_path / 'y.npy')!r}, m(x).detach().numpy())\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    np.testing.assert_allclose(np.load(str(tmp_path / "y.npy")), ref, rtol=1e-4, atol=1e-4)
    # the loaded module only re-specialises the batch dim
    x3 = np.random.default_rng(8).standard_normal((3, 2, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(_np(loaded(torch.from_numpy(x3))),
                               _cnn_ref(m, x3.astype(np.float64)), rtol=1e-4, atol=1e-4)
    with pytest.raises(RuntimeError, match="can only change the batch dimension"):
        loaded(torch.zeros(2, 2, 6, 6))


def test_save_load_function_file_object():
    tf = torch.jit.trace(lambda a: (a * 3.0).sum(dim=0), torch.ones(2, 3))
    buf = io.BytesIO()
    tf.save(buf)
    buf.seek(0)
    g = torch.jit.load(buf)
    np.testing.assert_array_equal(g(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])).numpy(),
                                  [15.0, 21.0, 27.0])


def test_load_rejects_bad_files(tmp_path):
    p = tmp_path / "junk.pt"
    p.write_bytes(b"not a model at all")
    with pytest.raises(RuntimeError, match="not a Kiln traced module"):
        torch.jit.load(str(p))
    p2 = str(tmp_path / "sd.pt")
    torch.save({"w": torch.ones(2)}, p2)             # a checkpoint, not a traced module
    with pytest.raises(RuntimeError, match="not a Kiln traced module"):
        torch.jit.load(p2)
    p3 = tmp_path / "ts.pt"                           # the layout of a TorchScript archive
    with zipfile.ZipFile(p3, "w") as zf:
        zf.writestr("model/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("model/code/__torch__.py", "def forward(self): pass")
        zf.writestr("model/constants.pkl", b"\x80\x02).")
    with pytest.raises(RuntimeError, match="TorchScript"):
        torch.jit.load(str(p3))
    with pytest.raises(ValueError, match="missing.pt does not exist"):    # PyTorch's class
        torch.jit.load(str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="is a directory"):
        torch.jit.load(str(tmp_path))
    with pytest.raises(AttributeError, match="expected a traced module"):
        torch.jit.save(nn.Linear(2, 2), io.BytesIO())


def test_trace_of_a_function_whose_first_op_writes_its_argument():
    def f(a):
        a.add_(1.0)             # before any other read: the argument must stay an input
        return a * 2.0
    x = torch.ones(3)
    tf = torch.jit.trace(f, x)
    np.testing.assert_array_equal(x.numpy(), [2.0, 2.0, 2.0])      # the trace's own run
    y = torch.tensor([-2.0, 0.0, 5.0])
    np.testing.assert_array_equal(tf(y).numpy(), [-2.0, 2.0, 12.0])
    np.testing.assert_array_equal(y.numpy(), [-1.0, 1.0, 6.0])     # written back, as eager

def test_traced_and_loaded_modules_print_as_pytorchs():
    class B(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Linear(2, 2)
            self.seq = nn.Sequential(nn.ReLU(), nn.Linear(2, 1))
            self.act = nn.Identity()

        def forward(self, x):
            return self.seq(self.c(x))
    t = torch.jit.trace(B(), torch.ones(1, 2))
    assert type(t).__name__ == "TopLevelTracedModule" and isinstance(t, torch.jit.TracedModule)
    assert repr(t) == ("B(\n  original_name=B\n  (c): Linear(original_name=Linear)\n"
                       "  (seq): Sequential(\n    original_name=Sequential\n"
                       "    (0): ReLU(original_name=ReLU)\n    (1): Linear(original_name=Linear)\n"
                       "  )\n  (act): Identity(original_name=Identity)\n)")
    buf = io.BytesIO()
    torch.jit.save(t, buf)
    buf.seek(0)
    lo = torch.jit.load(buf)
    assert repr(lo) == (
        "RecursiveScriptModule(\n  original_name=B\n"
        "  (c): RecursiveScriptModule(original_name=Linear)\n"
        "  (seq): RecursiveScriptModule(\n    original_name=Sequential\n"
        "    (0): RecursiveScriptModule(original_name=ReLU)\n"
        "    (1): RecursiveScriptModule(original_name=Linear)\n  )\n"
        "  (act): RecursiveScriptModule(original_name=Identity)\n)")
    assert lo.seq._modules["1"].original_name == "Linear" and lo.c.weight.shape == (2, 2)
    np.testing.assert_allclose(_np(lo(torch.ones(1, 2))), _np(t(torch.ones(1, 2))), rtol=1e-6)

def test_traced_module_keeps_eval_mode_and_checks_calls():
    m = _mlp().eval()
    x = np.random.default_rng(8).standard_normal((3, 4)).astype(np.float32)
    t = torch.jit.trace(m, torch.from_numpy(x))
    assert not t.training                     # traced in eval mode: freeze accepts it
    np.testing.assert_allclose(_np(torch.jit.freeze(t)(torch.from_numpy(x))), _mlp_ref(m, x),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match=r"expected at most 2 argument\(s\) but received 3"):
        t(torch.from_numpy(x), torch.from_numpy(x))
    f = torch.jit.trace(lambda a: a.sum(2), torch.ones(2, 3, 4))
    with pytest.raises(RuntimeError, match="expected at most 1 argument"):
        f(torch.ones(2, 3, 4), torch.ones(1))
    # an op's error in a replay (here a re-trace for a new rank) is the interpreter's
    # RuntimeError, as in TorchScript, whatever the op's own class
    with pytest.raises(RuntimeError, match="IndexError: .*Dimension out of range"):
        f(torch.ones(2, 3))


def test_script_module_runs_eagerly_and_refuses_save(tmp_path):
    m = _mlp()
    s = torch.jit.script(m)
    x = torch.randn(6, 4)
    np.testing.assert_array_equal(s(x).detach().numpy(), m(x).detach().numpy())
    assert isinstance(s, torch.jit.ScriptModule)
    assert list(s.state_dict()) == list(m.state_dict())
    with pytest.raises(RuntimeError, match="torch.jit.trace"):
        s.save(str(tmp_path / "s.pt"))
    with pytest.raises(RuntimeError, match="no TorchScript compiler"):
        s.graph
    with pytest.raises(RuntimeError, match="no TorchScript compiler"):
        s.code
    assert not os.path.exists(tmp_path / "s.pt")

    @torch.jit.script
    def f(a):
        return a + 1 if not torch.jit.is_scripting() else a
    np.testing.assert_array_equal(f(torch.zeros(2)).numpy(), [1.0, 1.0])
    with pytest.raises(RuntimeError, match="torch.jit.trace"):
        torch.jit.save(f, str(tmp_path / "f.pt"))


def test_annotations_fork_freeze():
    assert torch.jit.annotate(list, [1]) == [1]
    assert issubclass(torch.jit.Error, RuntimeError)

    @torch.jit.ignore
    def g(x):
        return x + 1

    @torch.jit.unused
    def h(x):
        return x - 1
    assert g(1) == 2 and h(1) == 0 and torch.jit.export(g) is g
    fut = torch.jit.fork(lambda a, b: a * b, torch.tensor(3.0), b=torch.tensor(4.0))
    assert float(torch.jit.wait(fut)) == 12.0 and float(fut.wait()) == 12.0
    m = _mlp()
    t = torch.jit.trace(m, torch.randn(2, 4))
    with pytest.raises(RuntimeError, match="eval mode"):
        torch.jit.freeze(t)
    o = torch.jit.optimize_for_inference(t)      # puts t in eval mode, returns it frozen
    assert o is not t and not t.training and not o.training and list(o.parameters()) == []
    x = torch.randn(2, 4)
    np.testing.assert_array_equal(o(x).numpy(), t(x).detach().numpy())
    with pytest.raises(RuntimeError, match="ScriptModule"):
        torch.jit.freeze(m.eval())
    assert torch.jit.isinstance([1, 2], list[int]) and not torch.jit.isinstance([1, "a"], list[int])


def test_strict_list_output_and_bad_trace_inputs():
    with pytest.raises(RuntimeError, match="Encountering a list"):
        torch.jit.trace(lambda a: [a + 1], torch.ones(2))
    t = torch.jit.trace(lambda a: [a + 1], torch.ones(2), strict=False)
    assert t(torch.zeros(2))[0].tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="example_kwarg_inputs or example_inputs"):
        torch.jit.trace(lambda a: a, None)
    with pytest.raises(RuntimeError, match="traced with 2 tensor inputs"):
        torch.jit.trace(lambda a, b: a + b, (torch.ones(2), torch.ones(2)))(torch.ones(2))
    # PyTorch's trace-time refusals: non-tensor inputs, no output, non-tensor outputs
    with pytest.raises(RuntimeError, match=r"Type 'Tuple\[Tensor, int\]' cannot be traced"):
        torch.jit.trace(lambda a, n: a * n, (torch.ones(2), 3))
    with pytest.raises(RuntimeError, match="didn't return any values"):
        torch.jit.trace(lambda a: None, torch.ones(2))
    with pytest.raises(RuntimeError, match="Only tensors, lists, tuples of tensors"):
        torch.jit.trace(lambda a: (a, 3), torch.ones(2))
    with pytest.raises(RuntimeError, match="expected a function or nn.Module"):
        torch.jit.trace(5, torch.ones(2))


def test_trace_dropout_redraws_and_refuses_save(tmp_path):
    torch.manual_seed(0)
    t = torch.jit.trace(nn.Dropout(0.5), torch.ones(4, 8))
    a, b = t(torch.ones(4, 8)), t(torch.ones(4, 8))
    # kept entries are scaled by 1 / (1 - p); masks differ between calls
    assert set(np.unique(a.numpy())) <= {0.0, 2.0} and not np.array_equal(a.numpy(), b.numpy())
    assert repr(t).startswith("Dropout(")
    with pytest.raises(RuntimeError, match="random numbers"):
        t.save(str(tmp_path / "d.pt"))
    assert not os.path.exists(tmp_path / "d.pt")


def test_check_trace_runs_and_compares():
    # PyTorch's check_trace: trace, traced run, Python run and a second trace each run forward
    # (a BatchNorm in training mode is updated 5 times: 1 - 0.9**5 of the batch mean)
    bn = nn.BatchNorm1d(3)
    x = np.random.default_rng(8).standard_normal((4, 3)).astype(np.float32)
    torch.jit.trace(bn, torch.from_numpy(x))
    np.testing.assert_allclose(bn.running_mean.numpy(), (1 - 0.9 ** 5) * x.mean(0), rtol=1e-5,
                               atol=1e-6)
    assert int(bn.num_batches_tracked) == 5

    def g(x):
        if x.sum().item() > 0:
            return x * 2
        return x - 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        with pytest.raises(torch.jit.TracingCheckError,
                           match=r"(?s)Graphs differed across invocations!.*-    v1: f32\[3\] = "
                                 r"mul\(in0, 2\)\n\+    v1: f32\[3\] = sub\(in0, 1\)"):
            torch.jit.trace(g, torch.ones(3), check_inputs=[(-torch.ones(3),)])
        torch.jit.trace(g, torch.ones(3), check_inputs=[(2 * torch.ones(3),)])    # same branch

    def h(x):       # shape-dependent: graphs differ by a constant
        return x * 2 if x.shape[0] > 2 else x * 3
    with pytest.warns(torch.jit.TracerWarning, match=r"Output nr 1\. of the traced function "
                      r"does not match the corresponding output of the Python function"):
        with pytest.raises(torch.jit.TracingCheckError, match=r"mul\(in0, 3\)"):
            torch.jit.trace(h, torch.ones(3), check_inputs=[(torch.ones(2),)])
    # other shapes with the same program: no error (shapes are erased before comparing)
    k = torch.jit.trace(lambda x: x.view(x.shape[0], -1).sum(1), torch.ones(3, 4),
                        check_inputs=[(torch.ones(5, 2),)])
    np.testing.assert_array_equal(k(torch.ones(5, 2)).numpy(), [2.0] * 5)

    d = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))     # training mode: random draws
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        torch.jit.trace(d, torch.ones(2, 3))
    msgs = [str(x.message) for x in w if issubclass(x.category, torch.jit.TracerWarning)]
    assert any(m.startswith("Trace had nondeterministic nodes. Did you forget call .eval()")
               for m in msgs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # in eval mode the check passes silently
        torch.jit.trace(d.eval(), torch.ones(2, 3))
        torch.jit.trace_module(d, {"forward": torch.ones(2, 3)},
                               check_inputs=[{"forward": torch.ones(4, 3)}])


def test_freeze_inlines_parameters_as_constants(tmp_path):
    m = _mlp().eval()
    x = np.random.default_rng(9).standard_normal((3, 4)).astype(np.float32)
    t = torch.jit.trace(m, torch.from_numpy(x))
    f = torch.jit.freeze(t)
    assert isinstance(f, torch.jit.ScriptModule) and list(f.parameters()) == []
    ref = _mlp_ref(m, x)
    np.testing.assert_allclose(_np(f(torch.from_numpy(x))), ref, rtol=1e-5, atol=1e-6)
    m[0].weight = nn.Parameter(torch.zeros(m[0].weight.shape))   # a new attribute: not seen
    np.testing.assert_allclose(_np(f(torch.from_numpy(x))), ref, rtol=1e-5, atol=1e-6)
    with torch.no_grad():       # PyTorch's constants share the memory: in-place updates show
        m[2].bias.add_(1.0)
    np.testing.assert_allclose(_np(f(torch.from_numpy(x))), ref + 1.0, rtol=1e-5, atol=1e-6)
    torch.jit.save(f, str(tmp_path / "f.pt"))          # constants round-trip through save
    np.testing.assert_allclose(_np(torch.jit.load(str(tmp_path / "f.pt"))(torch.from_numpy(x))),
                               ref + 1.0, rtol=1e-5, atol=1e-6)
    # an attribute the graph writes stays a live read of the original (PyTorch keeps mutated
    # attributes): a buffer counted up in forward

    class Count(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("n", torch.zeros(()))
            self.w = nn.Parameter(torch.full((2,), 3.0))

        def forward(self, x):
            self.n.add_(1)
            return x * self.w
    c = Count().eval()
    fc = torch.jit.freeze(torch.jit.trace(c, torch.ones(2), check_trace=False))
    np.testing.assert_array_equal(fc(torch.ones(2)).numpy(), [3.0, 3.0])
    assert float(c.n) == 2.0            # the trace's run and the frozen module's
