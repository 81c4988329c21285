"""torch.fft against numpy.fft in complex128 (values, n/s trimming and padding, dims, the three
norms), torch's output dtypes and errors, gradients (finite differences of real-valued
functions and values printed by torch 2.13), compile() == eager and interpret == cpu."""
import numpy as np
import pytest

import framework as torch
from framework.autograd import gradcheck
from conftest import to_np

F64 = torch.float64
NORMS = [None, "backward", "ortho", "forward"]


def _close(t, ref, tol=1e-12):
    np.testing.assert_allclose(to_np(t), ref, rtol=tol, atol=tol)


def _x(shape, seed=0, cplx=False):
    r = np.random.default_rng(seed)
    a = r.standard_normal(shape)
    return a + 1j * r.standard_normal(shape) if cplx else a


def _np_norm(norm):
    return norm or "backward"


# ---- values ------------------------------------------------------------------------------------

@pytest.mark.parametrize("norm", NORMS)
def test_one_dim_transforms_match_numpy(norm):
    a, c = _x((3, 8)), _x((3, 8), 1, True)
    nn = _np_norm(norm)
    cases = [
        (torch.fft.fft, c, {}, np.fft.fft(c, norm=nn)),
        (torch.fft.fft, a, {"n": 5}, np.fft.fft(a, n=5, norm=nn)),          # trimmed
        (torch.fft.ifft, c, {"n": 11, "dim": 0}, np.fft.ifft(c, n=11, axis=0, norm=nn)),  # padded
        (torch.fft.rfft, a, {}, np.fft.rfft(a, norm=nn)),
        (torch.fft.rfft, a, {"n": 7, "dim": 0}, np.fft.rfft(a, n=7, axis=0, norm=nn)),
        (torch.fft.irfft, c, {}, np.fft.irfft(c, norm=nn)),
        (torch.fft.irfft, c, {"n": 9}, np.fft.irfft(c, n=9, norm=nn)),
        (torch.fft.irfft, c, {"n": 4}, np.fft.irfft(c, n=4, norm=nn)),
        (torch.fft.hfft, c, {}, np.fft.hfft(c, norm=nn)),
        (torch.fft.hfft, c, {"n": 7, "dim": 0}, np.fft.hfft(c, n=7, axis=0, norm=nn)),
        (torch.fft.ihfft, a, {}, np.fft.ihfft(a, norm=nn)),
        (torch.fft.ihfft, a, {"n": 5}, np.fft.ihfft(a, n=5, norm=nn)),
    ]
    for f, x, kw, ref in cases:
        _close(f(torch.tensor(x), norm=norm, **kw), ref)


@pytest.mark.parametrize("norm", NORMS)
def test_multi_dim_transforms_match_numpy(norm):
    a, c = _x((2, 4, 6)), _x((2, 4, 6), 1, True)
    nn = _np_norm(norm)
    cases = [
        (torch.fft.fft2, c, {}, np.fft.fft2(c, norm=nn)),
        (torch.fft.ifft2, c, {"s": (3, 8)}, np.fft.ifft2(c, s=(3, 8), norm=nn)),
        (torch.fft.fftn, c, {}, np.fft.fftn(c, norm=nn)),
        (torch.fft.fftn, a, {"s": (3, 5)}, np.fft.fftn(a, s=(3, 5), axes=(1, 2), norm=nn)),
        (torch.fft.ifftn, c, {"dim": (0, 2)}, np.fft.ifftn(c, axes=(0, 2), norm=nn)),
        (torch.fft.rfft2, a, {}, np.fft.rfft2(a, norm=nn)),
        (torch.fft.rfftn, a, {"s": (5, 4), "dim": (2, 0)},
         np.fft.rfftn(a, s=(5, 4), axes=(2, 0), norm=nn)),
        (torch.fft.irfft2, c, {}, np.fft.irfft2(c, norm=nn)),
        (torch.fft.irfftn, c, {"s": (3, 5, 7)}, np.fft.irfftn(c, s=(3, 5, 7), axes=(0, 1, 2), norm=nn)),
        (torch.fft.irfftn, c, {"dim": (0, 1)}, np.fft.irfftn(c, axes=(0, 1), norm=nn)),
    ]
    for f, x, kw, ref in cases:
        _close(f(torch.tensor(x), norm=norm, **kw), ref)
    # s entries of -1 keep that dim's size
    _close(torch.fft.fftn(torch.tensor(c), s=(-1, 3), norm=norm),
           np.fft.fftn(c, s=(4, 3), axes=(1, 2), norm=nn))


def test_dtypes_follow_torch():
    assert torch.fft.fft(torch.arange(4)).dtype == torch.complex64       # ints: default float
    assert torch.fft.fft(torch.ones(4, dtype=F64)).dtype == torch.complex128
    assert torch.fft.rfft(torch.ones(4)).dtype == torch.complex64
    assert torch.fft.irfft(torch.arange(4.0)).dtype == torch.float32    # real input promotes
    assert torch.fft.irfft(torch.ones(4, dtype=torch.complex128)).dtype == F64
    assert torch.fft.hfft(torch.arange(4.0)).dtype == torch.float32
    assert torch.fft.ihfft(torch.arange(4)).dtype == torch.complex64
    x = torch.tensor(_x((5,)), dtype=torch.float32)
    r = torch.fft.fft(x)
    assert r.dtype == torch.complex64
    np.testing.assert_allclose(to_np(r), np.fft.fft(to_np(x).astype(np.float64)), rtol=1e-5,
                               atol=1e-5)
    assert torch.fft.fftn(torch.ones(2, 3, 4), s=(2, 2)).shape == (2, 2, 2)
    assert torch.fft.irfftn(torch.ones(2, 3, 4), s=(5, 6)).shape == (2, 5, 6)
    assert torch.fft.rfft2(torch.ones(2, 3, 4)).shape == (2, 3, 3)


def test_freqs_and_shifts():
    _close(torch.fft.fftfreq(5), np.fft.fftfreq(5), 1e-7)
    _close(torch.fft.fftfreq(6, d=0.25, dtype=F64), np.fft.fftfreq(6, d=0.25))
    _close(torch.fft.rfftfreq(6, d=0.5, dtype=F64), np.fft.rfftfreq(6, d=0.5))
    assert torch.fft.fftfreq(4).dtype == torch.float32
    a = np.arange(6).reshape(2, 3)
    assert to_np(torch.fft.fftshift(torch.tensor(a))).tolist() == np.fft.fftshift(a).tolist()
    assert to_np(torch.fft.ifftshift(torch.arange(5), dim=0)).tolist() == [2, 3, 4, 0, 1]
    b = np.arange(20).reshape(4, 5)
    assert to_np(torch.fft.ifftshift(torch.tensor(b), dim=(-1,))).tolist() == \
        np.fft.ifftshift(b, axes=-1).tolist()


def test_errors_like_torch():
    x = torch.arange(6.0)
    with pytest.raises(RuntimeError, match="Invalid normalization mode: \"bad\""):
        torch.fft.fft(x, norm="bad")
    with pytest.raises(RuntimeError, match=r"Invalid number of data points \(0\) specified"):
        torch.fft.fft(x, n=0)
    with pytest.raises(RuntimeError, match=r"Invalid number of data points \(0\) specified"):
        torch.fft.irfft(torch.ones(1))
    with pytest.raises(RuntimeError, match="rfft expects a real input tensor, but got ComplexFloat"):
        torch.fft.rfft(x.to(torch.complex64))
    with pytest.raises(IndexError, match="Dimension out of range"):
        torch.fft.fft(x, dim=2)
    with pytest.raises(IndexError, match="Dimension out of range"):
        torch.fft.fft2(torch.ones(3))
    with pytest.raises(RuntimeError, match="dim and shape arguments must have the same length"):
        torch.fft.fftn(torch.ones(2, 3, 4), s=(2, 2), dim=(0,))


# ---- gradients -----------------------------------------------------------------------------------

def test_gradients_equal_torch_printed_values():
    # torch 2.13 on these inputs: the one-sided transforms' adjoints (r2c: zero-padded inverse;
    # c2r: Hermitian doubling of the bins that stand for two)
    xr = torch.tensor([1.5409961082440433, -0.2934289057609464, -2.1787893820745574,
                       0.5684312772806678, -1.084522342424021, -1.3985953953708767],
                      dtype=F64, requires_grad=True)
    w = torch.tensor([0.28520929112889465 + 0.592574102875541j,
                      -0.5085919111554992 - 0.28520694162722593j,
                      -0.4218849108008512 + 0.1287192330102128j,
                      -0.6057604141900939 + 0.7782446726480111j], dtype=torch.complex128)
    (torch.fft.rfft(xr) * w).abs().sum().backward()
    _close(xr.grad, [-0.6533940665753122, 0.5656413566910365, -2.2828566262324017,
                     0.15283767574146495, -1.9952952657582985, 0.26723587840478635], 1e-10)
    xc = torch.tensor([-0.7574438483758146 + 0.0867628782723704j,
                       -0.40044692698644185 + 0.26383188799038343j,
                       -0.6307359358863495 - 1.0671003197705666j,
                       0.26190777915627056 + 1.0299028700773305j], requires_grad=True,
                      dtype=torch.complex128)
    wr = torch.tensor([0.9398099079535257, 0.7748488177844168, 0.19186942747902466,
                       1.2637947253235853, -1.29043510317847, -0.7911026902762878], dtype=F64)
    (torch.fft.irfft(xc, n=6) * wr).sum().backward()
    _close(xc.grad, [0.18146418084763247, 0.0723903614112425 - 0.8799557222564274j,
                     0.920338135790923 - 0.024146802460320915j, -0.2343827700962723], 1e-10)
    xc2 = torch.tensor([-0.014764016943054866 - 0.5080421100999785j,
                        0.366731562155822 - 0.9280931797748492j,
                        0.1357610172643674 + 0.3837973018459739j,
                        -1.5689139384343185 + 0.1831297254225422j], requires_grad=True,
                       dtype=torch.complex128)
    (torch.fft.irfft(xc2, n=7, norm="ortho") * torch.arange(7.0, dtype=F64)).sum().backward()
    _close(xc2.grad, [7.937253933193771, -2.645751311064589 + 5.4939592074349335j,
                      -2.645751311064589 + 2.1099162641747427j,
                      -2.645751311064589 + 0.6038754716096769j], 1e-10)


def _re(x):
    return torch.view_as_real(x) if x.dtype.is_complex else x


def _z(x, y):
    return torch.complex(x, y)


_GRAD_CASES = {
    "rfft_abs": (lambda x: torch.fft.rfft(x).abs().sum(), [(2, 6)]),
    "rfft_n_pad": (lambda x: _re(torch.fft.rfft(x, n=9, norm="ortho")), [(2, 6)]),
    "rfft2_trim": (lambda x: _re(torch.fft.rfft2(x, s=(2, 3))), [(3, 5)]),
    "irfft": (lambda x, y: torch.fft.irfft(_z(x, y), n=6), [(2, 4), (2, 4)]),
    "irfft_odd_forward": (lambda x, y: torch.fft.irfft(_z(x, y), n=5, norm="forward"),
                          [(3,), (3,)]),
    "irfftn": (lambda x, y: torch.fft.irfftn(_z(x, y), s=(3, 4)), [(2, 3), (2, 3)]),
    "fft_ifft": (lambda x, y: _re(torch.fft.ifft(torch.fft.fft(_z(x, y), n=7) ** 2, n=5)),
                 [(5,), (5,)]),
    "fftn_ortho": (lambda x, y: _re(torch.fft.fftn(_z(x, y), norm="ortho")), [(2, 3), (2, 3)]),
    "hfft": (lambda x, y: torch.fft.hfft(_z(x, y), n=6), [(4,), (4,)]),
    "ihfft": (lambda x: _re(torch.fft.ihfft(x, norm="forward")), [(5,)]),
    "fftshift_freq": (lambda x: _re(torch.fft.fftshift(torch.fft.fft(x)) *
                                    torch.fft.fftfreq(4, dtype=F64)), [(4,)]),
}


@pytest.mark.parametrize("name", sorted(_GRAD_CASES))
def test_gradcheck_real_valued(name):
    fn, shapes = _GRAD_CASES[name]
    ins = [torch.tensor(_x(s, seed=i), dtype=F64, requires_grad=True)
           for i, s in enumerate(shapes)]
    assert gradcheck(fn, ins)


# ---- compile and the interpret device ------------------------------------------------------------

def _spectral(x, w):
    z = torch.fft.rfft(x) * w
    y = torch.fft.irfft(z * z.conj().exp().abs(), n=x.shape[-1])
    return y.sin() + torch.view_as_real(torch.fft.fft2(z)).sum() + z.angle().sum()


def test_compile_equals_eager_with_gradients():
    x0, w0 = _x((3, 8)), _x((5,), 1, True)
    x1 = torch.tensor(x0, requires_grad=True)
    w1 = torch.tensor(w0, requires_grad=True)
    e = _spectral(x1, w1)
    e.sum().backward()
    x2 = torch.tensor(x0, requires_grad=True)
    w2 = torch.tensor(w0, requires_grad=True)
    c = torch.compile(_spectral)(x2, w2)
    c.sum().backward()
    _close(c, to_np(e), 1e-10)
    _close(x2.grad, to_np(x1.grad), 1e-10)
    _close(w2.grad, to_np(w1.grad), 1e-10)


def test_interpret_device_equals_cpu():
    x0, w0 = _x((3, 8)).astype(np.float32), _x((5,), 1, True).astype(np.complex64)
    xc, wc = torch.tensor(x0, device="cpu"), torch.tensor(w0, device="cpu")
    xi, wi = xc.to("interpret"), wc.to("interpret")
    fs = [_spectral, lambda x, w: torch.fft.hfft(w, n=7), lambda x, w: torch.fft.ihfft(x),
          lambda x, w: torch.fft.ifftn(x, s=(2, 5), norm="ortho"),
          lambda x, w: torch.fft.irfft2(torch.fft.rfft2(x)),
          lambda x, w: torch.fft.fftshift(torch.fft.fftfreq(8, device=x.device) * x)]
    for f in fs:
        want, got = f(xc, wc), f(xi, wi)
        assert got.device.type == "interpret" and got.dtype == want.dtype
        np.testing.assert_allclose(to_np(got), to_np(want), rtol=1e-5, atol=1e-5)
    c = torch.compile(_spectral)(xi, wi)
    assert c.device.type == "interpret"
    np.testing.assert_allclose(to_np(c), to_np(_spectral(xc, wc)), rtol=1e-5, atol=1e-5)
    # gradients on the device equal the cpu ones
    xg = xi.clone().requires_grad_(True)
    _spectral(xg, wi).sum().backward()
    xh = xc.clone().requires_grad_(True)
    _spectral(xh, wc).sum().backward()
    np.testing.assert_allclose(to_np(xg.grad), to_np(xh.grad), rtol=1e-4, atol=1e-4)


# ---- hfft2 / hfftn / ihfft2 / ihfftn -------------------------------------------------------------
# References: hfftn(x) is the n-dim transform of the Hermitian signal whose half x holds, i.e.
# irfftn(conj(x)) with the dual norm; ihfftn(x) = conj(rfftn(x)) with the dual norm.

_DUALN = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


@pytest.mark.parametrize("norm", NORMS)
def test_hermitian_multi_dim_transforms_match_numpy(norm):
    a, c = _x((3, 4, 6)), _x((3, 4, 5), 1, True)
    dn = _DUALN[_np_norm(norm)]
    cases = [
        (torch.fft.hfft2, c, {}, np.fft.irfftn(c.conj(), axes=(1, 2), norm=dn)),
        (torch.fft.hfft2, c, {"s": (5, 4)}, np.fft.irfftn(c.conj(), s=(5, 4), axes=(1, 2), norm=dn)),
        (torch.fft.hfftn, c, {}, np.fft.irfftn(c.conj(), axes=(0, 1, 2), norm=dn)),
        (torch.fft.hfftn, c, {"s": (3, 7)}, np.fft.irfftn(c.conj(), s=(3, 7), axes=(1, 2), norm=dn)),
        (torch.fft.hfftn, c, {"dim": (2, 0), "s": (6, 2)},
         np.fft.irfftn(c.conj(), s=(6, 2), axes=(2, 0), norm=dn)),
        (torch.fft.ihfft2, a, {}, np.fft.rfftn(a, axes=(1, 2), norm=dn).conj()),
        (torch.fft.ihfft2, a, {"s": (2, 7)}, np.fft.rfftn(a, s=(2, 7), axes=(1, 2), norm=dn).conj()),
        (torch.fft.ihfftn, a, {}, np.fft.rfftn(a, axes=(0, 1, 2), norm=dn).conj()),
        (torch.fft.ihfftn, a, {"dim": (2, 0)}, np.fft.rfftn(a, axes=(2, 0), norm=dn).conj()),
        (torch.fft.ihfftn, a, {"dim": 1, "s": (5,)}, np.fft.rfftn(a, s=(5,), axes=(1,), norm=dn).conj()),
    ]
    for f, x, kw, ref in cases:
        _close(f(torch.tensor(x), norm=norm, **kw), ref)
    # ihfftn inverts hfftn on Hermitian data (an even-length last dim made Hermitian by ihfftn)
    h = torch.fft.ihfftn(torch.tensor(a), norm=norm)
    _close(torch.fft.hfftn(h, s=(3, 4, 6), norm=norm), a)


def test_hermitian_multi_dim_dtypes_and_errors():
    assert torch.fft.hfft2(torch.ones(3, 4, dtype=F64)).dtype == F64
    assert torch.fft.hfftn(torch.ones(3, 4, dtype=torch.complex64)).shape == (3, 6)
    assert torch.fft.ihfft2(torch.arange(12).reshape(3, 4)).dtype == torch.complex64
    out = torch.empty(0, dtype=torch.complex128)
    r = torch.fft.ihfftn(torch.ones(2, 4, dtype=F64), out=out)
    assert r is out and out.shape == (2, 3)
    with pytest.raises(RuntimeError, match="Only supports floating-point dtypes, but found: "
                                           "ComplexFloat"):
        torch.fft.ihfft2(torch.ones(3, 4, dtype=torch.complex64))
    with pytest.raises(RuntimeError, match=r"Invalid number of data points \(0\) specified"):
        torch.fft.hfftn(torch.ones(3, 1))
    with pytest.raises(RuntimeError, match=r"Invalid number of data points \(0\) specified"):
        torch.fft.hfft2(torch.ones(3, 4), s=(2, 0))
    with pytest.raises(RuntimeError, match="hfftn must transform at least one axis"):
        torch.fft.hfftn(torch.ones(3, 4), dim=())
    with pytest.raises(RuntimeError, match="FFT dims must be unique"):
        torch.fft.ihfftn(torch.ones(3, 4), dim=(0, 0))
    with pytest.raises(IndexError, match="Dimension out of range"):
        torch.fft.hfft2(torch.ones(3))


def test_gradcheck_hermitian_multi_dim():
    fns = [
        (lambda x, y: torch.fft.hfft2(_z(x, y), s=(3, 4)), [(2, 3), (2, 3)]),
        (lambda x, y: torch.fft.hfftn(_z(x, y), norm="ortho"), [(2, 2, 3), (2, 2, 3)]),
        (lambda x: _re(torch.fft.ihfft2(x, norm="forward")), [(3, 5)]),
        (lambda x: _re(torch.fft.ihfftn(x, s=(2, 4))), [(3, 5)]),
    ]
    for fn, shapes in fns:
        ins = [torch.tensor(_x(s, seed=i), dtype=F64, requires_grad=True)
               for i, s in enumerate(shapes)]
        assert gradcheck(fn, ins)


def test_complex_in_place_abs_is_refused():
    z = torch.tensor([1 + 2j, 3 - 1j])
    for f in (lambda: z.abs_(), lambda: z.absolute_(), lambda: torch.abs_(z)):
        with pytest.raises(RuntimeError, match=r"^In-place abs is not supported for complex "
                                               r"tensors\.$"):
            f()
    assert to_np(z).tolist() == [1 + 2j, 3 - 1j]          # unchanged
    x = torch.tensor([-1.5, 2.0])
    assert x.abs_() is x and to_np(x).tolist() == [1.5, 2.0]


def test_real_input_fft_ifft_follow_pytorchs_real_path():
    # PyTorch: fft of a real input is a two-sided r2c (FftR2CBackward0); ifft of a real input
    # is conj(fft) with the dual norm, so real bins carry -0 imaginary parts (ConjBackward0)
    xn = np.array([0.3, -1.2, 2.0, 0.7, -0.4, 1.1])
    x = torch.tensor(xn, requires_grad=True)
    assert type(torch.fft.fft(x).grad_fn).__name__ == "FftR2CBackward0"
    for norm in (None, "forward", "ortho"):
        r = torch.fft.ifft(x, norm=norm)
        assert type(r.grad_fn).__name__ == "ConjBackward0"
        np.testing.assert_allclose(r.detach().numpy(), np.fft.ifft(xn, norm=norm), atol=1e-15)
        assert np.signbit(r.detach().numpy().imag[[0, 3]]).all()
    torch.fft.ifft(x).real.sum().backward()      # d/dx sum Re(ifft(x)) = [1, 0, ..., 0]
    np.testing.assert_allclose(x.grad.numpy(), [1, 0, 0, 0, 0, 0], atol=1e-15)
