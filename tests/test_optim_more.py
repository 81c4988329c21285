"""torch.optim.Adafactor and torch.optim.Muon against trajectories PyTorch 2.13 printed (float64,
rounded to 1e-12), their argument checks; torch.autograd.detect_anomaly / set_detect_anomaly.

(SparseAdam and sparse gradients: tests/test_sparse.py.)"""
import warnings

import numpy as np
import pytest

import framework as torch
from conftest import assert_close


def _problem(dtype, shapes, seed=0):
    rng = np.random.default_rng(seed)
    ps = [torch.tensor(rng.standard_normal(s), dtype=dtype, requires_grad=True) for s in shapes]
    X = torch.tensor(rng.standard_normal((6, 4)), dtype=dtype)
    return ps, X


def _loss(ps, X):
    W = ps[0]
    out = X @ W.reshape(4, -1) if W.dim() == 2 else (X @ W.sum(0))
    loss = (out.sin() ** 2).mean()
    for p in ps[1:]:
        loss = loss + (p ** 2).sum() * 0.1 + p.sum() * 0.3
    return loss


def _run(name, kw, shapes, steps, dtype=torch.float64):
    ps, X = _problem(dtype, shapes)
    opt = getattr(torch.optim, name)(ps, **kw)
    for _ in range(steps):
        opt.zero_grad()
        _loss(ps, X).backward()
        opt.step()
    return ps, opt


# (optimizer, kwargs, parameter shapes, steps, parameters after the steps) printed by PyTorch
CASES = [
    ('Adafactor', {}, [(4, 3), (3,)], 4,
     [[[0.144679550497, -0.098209747279, 0.611275536685], [0.072179930788, -0.539157325848, 0.332538150028], [1.307139397798, 0.920055789448, -0.669474981747], [-1.22885478463, -0.582359103868, 0.029497022594]], [-2.264786178959, -0.279296258416, -1.304402042217]]),
    ('Adafactor', {'lr': 0.05, 'beta2_decay': -0.5, 'eps': (1e-30, 0.001), 'd': 1.5, 'weight_decay': 0.1, 'maximize': True}, [(4, 3), (3,)], 4,
     [[[0.013212397347, -0.289203077396, 0.772569354106], [0.268045006645, -0.443843764295, 0.505534666957], [1.221910106798, 1.036707441981, -0.869421255518], [-1.391514117191, -0.848697943833, 0.09391788906]], [-2.594030274537, 0.098915168697, -0.89001340081]]),
    ('Adafactor', {'lr': 0.03, 'foreach': True}, [(2, 4, 3), (5,)], 3,
     [[[[0.044446071169, -0.05686985534, 0.693575407327], [0.070426575482, -0.471112168351, 0.457069627361], [1.372483436107, 0.888548074098, -0.611703468686], [-1.358245822094, -0.549262886519, 0.059905372972]], [[-2.406314924563, -0.143556655981, -1.19275819037], [-0.766740896375, -0.479701778047, -0.220825583918], [0.480113927351, 0.983980480412, -0.036502895823], [1.273639119501, -0.591183097468, 0.370089463718]]], [0.840227989479, 0.0308923457, -0.806208712467, -0.984187745915, -0.520651170644]]),
    ('Muon', {}, [(4, 3)], 4,
     [[[0.122067528949, -0.133517737589, 0.637054706469], [0.106290048463, -0.536172209523, 0.359028636855], [1.302320614669, 0.944417936836, -0.702498818614], [-1.262786717458, -0.625322974552, 0.041571868383]]]),
    ('Muon', {'lr': 0.02, 'momentum': 0.9, 'nesterov': False, 'weight_decay': 0.01, 'adjust_lr_fn': 'match_rms_adamw', 'ns_steps': 3}, [(4, 5)], 3,
     [[[0.123777225896, -0.129654639946, 0.639653675983, 0.099352941144, -0.515506894282], [0.363971808081, 1.305946837848, 0.949062851502, -0.674110254543, -1.264629193684], [-0.607600535853, 0.044916613708, -2.335530253881, -0.219760754993, -1.245152403028], [-0.738744533987, -0.526606410663, -0.320843640882, 0.41080067609, 1.038634985348]]]),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_trajectory_matches_torch(case):
    name, kw, shapes, steps, want = CASES[case]
    ps, _ = _run(name, kw, shapes, steps)
    for p, w in zip(ps, want):
        assert_close(p.detach(), np.array(w), rtol=0, atol=2e-12)
    # float32 follows the same path (Muon's Newton-Schulz runs in bfloat16 either way)
    ps32, _ = _run(name, kw, shapes, steps, torch.float32)
    for p, w in zip(ps32, want):
        assert p.dtype == torch.float32
        assert_close(p.detach(), np.array(w), rtol=1e-4, atol=1e-5)


def test_adafactor_state_and_checks():
    ps, opt = _run("Adafactor", {}, [(2, 4, 3), (5,)], 2)
    st = opt.state[ps[0]]
    assert st["step"].item() == 2.0
    assert tuple(st["row_var"].shape) == (2, 4, 1) and tuple(st["col_var"].shape) == (2, 1, 3)
    assert set(opt.state[ps[1]]) == {"step", "variance"}
    assert opt.defaults["eps"] == (None, 1e-3) and opt.defaults["beta2_decay"] == -0.8
    w = torch.zeros(2, requires_grad=True)
    for kw, msg in [(dict(lr=-1.0), "Learning rate should be >= 0"),
                    (dict(beta2_decay=0.5), "beta2_decay should be <= 0"),
                    (dict(eps=(-1.0, 1e-3)), "epsilon1 should be >= 0"),
                    (dict(eps=(None, -1.0)), "epsilon2 should be >= 0"),
                    (dict(d=0.5), "Clipping threshold d should be >= 1"),
                    (dict(weight_decay=-1.0), "weight_decay should be >= 0")]:
        with pytest.raises(ValueError, match=msg):
            torch.optim.Adafactor([w], **kw)
    # state_dict round trip: a fresh optimizer continues the same trajectory
    ps_a, X = _problem(torch.float64, [(4, 3)])
    ps_b = [p.detach().clone().requires_grad_(True) for p in ps_a]
    oa, ob = torch.optim.Adafactor(ps_a), torch.optim.Adafactor(ps_b)
    for o, ps_ in ((oa, ps_a), (ob, ps_b)):
        o.zero_grad()
        _loss(ps_, X).backward()
        o.step()
    oc = torch.optim.Adafactor(ps_b)
    oc.load_state_dict(ob.state_dict())
    for o, ps_ in ((oa, ps_a), (oc, ps_b)):
        o.zero_grad()
        _loss(ps_, X).backward()
        o.step()
    assert_close(ps_b[0].detach(), ps_a[0].detach(), rtol=0, atol=0)


def test_muon_checks_and_newton_schulz():
    with pytest.raises(ValueError, match="Muon only supports 2D parameters"):
        torch.optim.Muon([torch.zeros(3, requires_grad=True)])
    w = torch.zeros(2, 2, requires_grad=True)
    with pytest.raises(ValueError, match="Adjust learning rate function bad is not supported"):
        torch.optim.Muon([w], adjust_lr_fn="bad")
    with pytest.raises(ValueError, match="momentum should be >= 0"):
        torch.optim.Muon([w], momentum=-0.1)
    from framework.optim.muon import _zeropower_via_newtonschulz
    g = torch.tensor(np.random.default_rng(3).standard_normal((6, 4)))
    o = _zeropower_via_newtonschulz(g, (3.4445, -4.7750, 2.0315), 5, 1e-7)
    assert o.dtype == torch.bfloat16 and tuple(o.shape) == (6, 4)
    s = np.linalg.svd(o.float().numpy(), compute_uv=False)
    assert np.all((s > 0.5) & (s < 1.5))        # singular values pushed towards 1 (not exactly)
    with pytest.raises(ValueError, match="Number of steps must be less than 100"):
        _zeropower_via_newtonschulz(g, (1.0, 0.0, 0.0), 100, 1e-7)


# ------------------------------------------------------------------------ anomaly detection

def test_detect_anomaly_reports_nan_gradients_with_forward_trace():
    assert not torch.is_anomaly_enabled()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        with torch.autograd.detect_anomaly():
            assert torch.is_anomaly_enabled() and torch.is_anomaly_check_nan_enabled()
            a = torch.tensor([0.0, 1.0], requires_grad=True)
            c = (a.sqrt() * 0 + a / a).sum()          # d(a/a)/da is nan at 0
            assert "traceback_" in c.grad_fn.metadata
            with pytest.raises(RuntimeError,
                               match=r"Function 'DivBackward0' returned nan values in its 1th "
                                     r"output\."):
                c.backward()
    assert not torch.is_anomaly_enabled()
    msgs = [str(x.message) for x in w]
    assert any(m.startswith("Anomaly Detection has been enabled.") for m in msgs)
    trace = [m for m in msgs if m.startswith("Error detected in DivBackward0. Traceback of "
                                             "forward call that caused the error:")]
    assert trace and "test_optim_more.py" in trace[0] and "a / a" in trace[0]
    assert "framework/" not in trace[0]                 # the user's frames only


def test_anomaly_off_and_check_nan_off_let_nan_through():
    a = torch.tensor([0.0, 1.0], requires_grad=True)
    (a / a).sum().backward()                       # off: no check
    assert np.isnan(a.grad.numpy()[0])
    b = torch.tensor([0.0, 1.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly(check_nan=False):
            assert not torch.is_anomaly_check_nan_enabled()
            (b / b).sum().backward()
    assert np.isnan(b.grad.numpy()[0])
    assert torch.is_anomaly_check_nan_enabled()


def test_set_detect_anomaly_function_and_context_and_decorator():
    torch.autograd.set_detect_anomaly(True, check_nan=False)
    try:
        assert torch.is_anomaly_enabled() and not torch.is_anomaly_check_nan_enabled()
    finally:
        torch.autograd.set_detect_anomaly(False)
    assert not torch.is_anomaly_enabled() and torch.is_anomaly_check_nan_enabled()
    with torch.autograd.set_detect_anomaly(True):
        assert torch.is_anomaly_enabled()
    assert not torch.is_anomaly_enabled()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")

        @torch.autograd.detect_anomaly()
        def f(x):
            assert torch.is_anomaly_enabled()
            return (x.log() * 0).sum()              # log'(0) * 0 = inf * 0: nan in LogBackward0
        x = torch.tensor([0.0, 2.0], requires_grad=True)
        loss = f(x)
        assert not torch.is_anomaly_enabled()
        loss.backward()                              # recorded under anomaly, checked only if on
        with torch.autograd.detect_anomaly():
            y = torch.tensor([0.0, 2.0], requires_grad=True)
            with pytest.raises(RuntimeError, match="Function 'LogBackward0' returned nan values "
                                                   "in its 0th output."):
                (y.log() * 0).sum().backward()
    # an error raised by a node's backward is preceded by the forward trace warning
    class Bad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            raise ValueError("boom")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        with torch.autograd.detect_anomaly():
            z = torch.ones(2, requires_grad=True)
            out = Bad.apply(z).sum()
            with pytest.raises(ValueError, match="boom"):
                out.backward()
    assert any("Error detected in" in str(m.message) for m in w)


def test_complex_params_update_as_view_as_real():
    # PyTorch steps a complex parameter as its view_as_real: Adam's second moment is the
    # per-component square (re**2, im**2), not the complex product grad * grad.
    z0 = np.array([[1.0 + 2.0j, -0.5 + 0.25j]], dtype=np.complex64)
    z = torch.nn.Parameter(torch.tensor(z0))
    opt = torch.optim.Adam([z], lr=0.1)
    g = np.array([[3.0 - 1.0j, 0.5 + 2.0j]], dtype=np.complex64)
    z.grad = torch.tensor(g)
    opt.step()
    st = opt.state[z]
    assert st["exp_avg"].dtype == torch.complex64 and st["exp_avg_sq"].dtype == torch.complex64
    gr = np.stack([g.real, g.imag], -1)
    v = 0.001 * gr ** 2
    np.testing.assert_allclose(torch.view_as_real(st["exp_avg_sq"]).numpy(), v, rtol=1e-6)
    # first step: m_hat / (sqrt(v_hat) + eps) = sign(g) per component
    step = 0.1 * (gr / (np.abs(gr) + 1e-8))
    want = np.stack([z0.real, z0.imag], -1) - step
    np.testing.assert_allclose(torch.view_as_real(z.detach()).numpy(), want, rtol=1e-6)
    # Rprop: the sign rule per component (an all-positive real part, mixed imaginary part)
    w = torch.nn.Parameter(torch.tensor(np.array([1.0 + 1.0j, 2.0 - 1.0j], dtype=np.complex64)))
    opt = torch.optim.Rprop([w], lr=0.5)
    w.grad = torch.tensor(np.array([2.0 - 3.0j, 1.0 + 4.0j], dtype=np.complex64))
    opt.step()
    np.testing.assert_allclose(torch.view_as_real(w.detach()).numpy(),
                               [[0.5, 1.5], [1.5, -1.5]], rtol=1e-6)
    assert opt.state[w]["prev"].dtype == torch.complex64
