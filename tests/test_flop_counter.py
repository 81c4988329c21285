"""torch.utils.flop_counter.FlopCounterMode: the aten ops torch counts, with counts derived by
hand from torch's formulas (mm: 2mnk; conv: 2 * N * Cout * Cin/groups * prod(kernel) *
prod(out spatial); conv backward: grad_input = forward, grad_weight = forward * groups), the
module hierarchy, and the table as torch 2.13 prints it."""
import warnings

import pytest

import framework as torch
from framework import nn
import framework.nn.functional as F
from framework import _dispatch
from framework.utils.flop_counter import FlopCounterMode


def _counts(fc, mod="Global"):
    return {str(k): v for k, v in fc.get_flop_counts().get(mod, {}).items()}


def _r(*shape, g=False):
    return torch.randn(*shape).requires_grad_(g)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(64, 5)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1)[:, :64])


def test_module_hierarchy_forward_backward_and_table(capsys):
    torch.manual_seed(0)
    m = Net()
    with FlopCounterMode(display=True) as fc:
        m(torch.randn(2, 3, 4, 4)).sum().backward()
    conv = 16 * 9 * 2 * 4 * 3 * 2        # out 4x4, kernel 3x3, N=2, Cout=4, Cin=3
    conv_bw = conv                       # only grad_weight: x needs no grad
    addmm = 2 * 5 * 2 * 64
    mm = 2 * addmm                       # grad of the input and of the weight
    assert (conv, addmm) == (6912, 1280)
    assert _counts(fc) == {"aten.convolution": conv, "aten.addmm": addmm, "aten.mm": mm,
                           "aten.convolution_backward": conv_bw}
    assert _counts(fc, "Net") == _counts(fc)
    assert _counts(fc, "Net.conv") == {"aten.convolution": conv,
                                       "aten.convolution_backward": conv_bw}
    assert _counts(fc, "Net.fc") == {"aten.addmm": addmm, "aten.mm": mm}
    assert fc.get_total_flops() == 17664
    assert capsys.readouterr().out == """\
Module                          FLOP    % Total
---------------------------  -------  ---------
Net                          17.664K    100.00%
- aten.convolution            6.912K     39.13%
- aten.addmm                  1.280K      7.25%
- aten.mm                     2.560K     14.49%
- aten.convolution_backward   6.912K     39.13%
Net.conv                     13.824K     78.26%
- aten.convolution            6.912K     39.13%
- aten.convolution_backward   6.912K     39.13%
Net.fc                        3.840K     21.74%
- aten.addmm                  1.280K      7.25%
- aten.mm                     2.560K     14.49%
"""
    assert _dispatch.PROFILE is None          # the hook is gone after the context
    # depth 0: no module rows, so the Global rows
    assert fc.get_table(0) == """\
Module                          FLOP    % Total
---------------------------  -------  ---------
Global                       17.664K    100.00%
- aten.convolution            6.912K     39.13%
- aten.addmm                  1.280K      7.25%
- aten.mm                     2.560K     14.49%
- aten.convolution_backward   6.912K     39.13%"""


class Res(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin1, self.drop, self.lin2 = nn.Linear(4, 4), nn.Dropout(0.0), nn.Linear(4, 4)

    def forward(self, x):
        h = self.lin1(x)
        return self.lin2(self.drop(h)) + h


def test_backward_module_attribution_follows_torchs_module_tracker():
    torch.manual_seed(0)
    with FlopCounterMode(display=False) as fc:
        Res()(torch.randn(2, 4)).sum().backward()
    lin = 2 * 4 * 2 * 4                  # each addmm; each mm of its backward the same
    assert _counts(fc) == {"aten.addmm": 2 * lin, "aten.mm": 3 * lin}   # x needs no grad
    assert _counts(fc, "Res.lin2") == {"aten.addmm": lin, "aten.mm": 2 * lin}
    assert _counts(fc, "Res.lin1") == {"aten.addmm": lin, "aten.mm": lin}
    # torch's ModuleTracker re-enters a module when its outputs' gradients are ready and
    # leaves it when its inputs' are: h's gradient completes only after lin1's backward node
    # ran, so torch also books lin1's weight gradient under Res.drop (probed on torch 2.13)
    assert _counts(fc, "Res.drop") == {"aten.mm": lin}


def test_table_small_numbers_depth_and_empty(capsys):
    m = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Sequential(nn.Linear(16, 4)))
    with FlopCounterMode(display=True, depth=None):
        m(torch.randn(3, 8))
    # 3*16*2*8 = 768 and 3*4*2*16 = 384; under 10**5 torch prints plain numbers
    assert capsys.readouterr().out == """\
Module            FLOP    % Total
--------------  ------  ---------
Sequential        1152    100.00%
- aten.addmm      1152    100.00%
Sequential.0       768     66.67%
- aten.addmm       768     66.67%
Sequential.2       384     33.33%
- aten.addmm       384     33.33%
Sequential.2.0     384     33.33%
- aten.addmm       384     33.33%
"""
    with FlopCounterMode(display=True):
        torch.randn(3) + 1
        torch.mv(torch.randn(2, 3), torch.randn(3))      # not an op torch counts
    assert capsys.readouterr().out == """\
Module      FLOP    % Total
--------  ------  ---------
Global         0         0%
"""
    with FlopCounterMode(display=False) as fc:
        m(torch.randn(3, 8))
        torch.mm(torch.randn(2, 2), torch.randn(2, 2))       # outside any module: Global shown
    assert fc.get_table(1) == """\
Module          FLOP    % Total
------------  ------  ---------
Global          1168    100.00%
- aten.addmm    1152     98.63%
- aten.mm         16      1.37%
Sequential      1152     98.63%
- aten.addmm    1152     98.63%"""
    big = nn.Linear(1000, 1000)
    with FlopCounterMode(display=False) as fc:
        big(torch.randn(600, 1000))
    assert fc.get_total_flops() == 600 * 1000 * 2 * 1000
    assert fc.get_table().splitlines()[2] == "Linear        1200.000M    100.00%"


def test_matmul_family_keys():
    cases = [
        (lambda: torch.mm(_r(4, 5), _r(5, 6)), {"aten.mm": 240}),
        (lambda: _r(4, 5).mm(_r(5, 6)), {"aten.mm": 240}),
        (lambda: torch.addmm(_r(6), _r(4, 5), _r(5, 6)), {"aten.addmm": 240}),
        (lambda: torch.bmm(_r(3, 4, 5), _r(3, 5, 6)), {"aten.bmm": 720}),
        (lambda: torch.baddbmm(_r(3, 4, 6), _r(3, 4, 5), _r(3, 5, 6)), {"aten.baddbmm": 720}),
        (lambda: _r(3, 4, 5) @ _r(3, 5, 6), {"aten.bmm": 720}),
        (lambda: torch.matmul(_r(5), _r(5, 6)), {"aten.mm": 60}),
        (lambda: torch.matmul(_r(3, 4, 5), _r(5, 6)), {"aten.mm": 720}),      # folded
        (lambda: torch.matmul(_r(4, 3, 5).transpose(0, 1), _r(5, 6)), {"aten.bmm": 720}),
        (lambda: torch.matmul(_r(4, 5), _r(3, 5, 6)), {"aten.bmm": 720}),
        (lambda: torch.matmul(_r(4, 5, g=True), _r(3, 5, 6)), {"aten.mm": 720}),
        (lambda: torch.matmul(_r(2, 3, 4, 5), _r(3, 5, 6)), {"aten.bmm": 1440}),
        (lambda: F.linear(_r(4, 5), _r(6, 5), _r(6)), {"aten.addmm": 240}),
        (lambda: F.linear(_r(2, 4, 5), _r(6, 5), _r(6)), {"aten.addmm": 480}),
        (lambda: F.linear(_r(4, 2, 5).transpose(0, 1), _r(6, 5), _r(6)), {"aten.bmm": 480}),
        (lambda: F.linear(_r(2, 4, 5), _r(6, 5)), {"aten.mm": 480}),
        (lambda: F.linear(_r(5), _r(6, 5), _r(6)), {"aten.addmm": 60}),
        (lambda: torch.matmul(_r(4, 5), _r(5)), {}),                 # mv, dot: not counted
        (lambda: torch.matmul(_r(5), _r(5)), {}),
        (lambda: torch.addbmm(_r(4, 6), _r(3, 4, 5), _r(3, 5, 6)), {}),
        # under vmap torch counts what the batching rule runs: a fold into mm, or a bmm
        (lambda: torch.vmap(torch.mm, in_dims=(0, None))(_r(3, 4, 5), _r(5, 6)),
         {"aten.mm": 720}),
        (lambda: torch.vmap(torch.mm)(_r(3, 4, 5), _r(3, 5, 6)), {"aten.bmm": 720}),
    ]
    for fn, want in cases:
        with FlopCounterMode(display=False) as fc:
            fn()
        assert _counts(fc) == want


def test_backward_counts():
    cases = [
        # mm backward: grad_a = g @ b^T, grad_b = a^T @ g, 2*4*5*6 each
        (lambda: torch.mm(_r(4, 5, g=True), _r(5, 6, g=True)), {"aten.mm": 720}),
        (lambda: torch.mm(_r(4, 5), _r(5, 6, g=True)), {"aten.mm": 480}),
        (lambda: F.linear(_r(2, 4, 5, g=True), _r(6, 5, g=True), _r(6, g=True)),
         {"aten.addmm": 480, "aten.mm": 960}),
        (lambda: torch.matmul(_r(3, 4, 5, g=True), _r(5, 6, g=True)), {"aten.mm": 2160}),
        (lambda: torch.bmm(_r(3, 4, 5, g=True), _r(3, 5, 6)), {"aten.bmm": 1440}),
        (lambda: torch.baddbmm(_r(3, 4, 6), _r(3, 4, 5, g=True), _r(3, 5, 6, g=True)),
         {"aten.baddbmm": 720, "aten.bmm": 1440}),
        (lambda: torch.matmul(_r(5, g=True), _r(5, 6, g=True)), {"aten.mm": 180}),
        # groups=2, stride 2, pad 1: out 3x3; fwd 9*9*2*6*2*2 = 3888; bw 3888 + 2*3888
        (lambda: F.conv2d(_r(2, 4, 6, 6, g=True), _r(6, 2, 3, 3, g=True), groups=2, stride=2,
                          padding=1),
         {"aten.convolution": 3888, "aten.convolution_backward": 11664}),
        # transposed: prod(input spatial) * prod(kernel) * N * Cin * Cout/groups * 2
        (lambda: F.conv_transpose2d(_r(2, 4, 5, 5, g=True), _r(4, 3, 3, 3, g=True), stride=2),
         {"aten.convolution": 25 * 9 * 2 * 4 * 3 * 2, "aten.convolution_backward": 21600}),
        (lambda: F.conv_transpose1d(_r(2, 4, 5, g=True), _r(4, 3, 3, g=True), groups=2),
         {"aten.convolution": 5 * 3 * 2 * 4 * 3 * 2, "aten.convolution_backward": 720 * 3}),
        # the CPU flash kernel: torch counts nothing for it
        (lambda: F.scaled_dot_product_attention(_r(2, 3, 8, 16, g=True), _r(2, 3, 10, 16, g=True),
                                                _r(2, 3, 10, 16, g=True)), {}),
    ]
    for fn, want in cases:
        with FlopCounterMode(display=False) as fc:
            fn().sum().backward()
        assert _counts(fc) == want
    # a backward outside the context is not counted
    x = _r(4, 5, g=True)
    with FlopCounterMode(display=False) as fc:
        y = torch.mm(x, _r(5, 6))
    y.sum().backward()
    assert _counts(fc) == {"aten.mm": 240}


def test_einsum_and_rnn_keys():
    cases = [
        # torch's einsum contracts left to right with bmm: 2 * product of the pair's letters
        (lambda: torch.einsum("ij,jk->ik", _r(4, 5), _r(5, 6)), {"aten.bmm": 240}),
        (lambda: torch.einsum("ijk,kl->il", _r(2, 3, 4), _r(4, 5)), {"aten.bmm": 2 * 2 * 4 * 5}),
        (lambda: torch.einsum("ij,jk,kl->il", _r(2, 3), _r(3, 4), _r(4, 5)),
         {"aten.bmm": 2 * 2 * 3 * 4 + 2 * 2 * 4 * 5}),
        (lambda: torch.einsum("i,j->ij", _r(4), _r(5)), {}),              # a mul, no bmm
        (lambda: torch.tensordot(_r(2, 3, 4), _r(3, 4, 5)), {"aten.mm": 2 * 2 * 5 * 12}),
        (lambda: F.bilinear(_r(2, 3), _r(2, 4), _r(5, 3, 4)), {}),
    ]
    for fn, want in cases:
        with FlopCounterMode(display=False) as fc:
            fn()
        assert _counts(fc) == want
    # only the middle operand needs a gradient: bmm 1's right input, bmm 2's left one
    with FlopCounterMode(display=False) as fc:
        torch.einsum("ij,jk,kl->il", _r(2, 3), _r(3, 4, g=True), _r(4, 5)).sum().backward()
    assert _counts(fc) == {"aten.bmm": 2 * (24 * 2 + 40 * 2)}
    # torch's GRU runs linear(x_t) and linear(h) per step (addmm); its backward, mm; the first
    # step's h0 needs no gradient
    torch.manual_seed(0)
    m = nn.GRU(6, 4)
    with FlopCounterMode(display=False) as fc:
        m(_r(3, 2, 6, g=True))[0].sum().backward()
    x_step, h_step = 2 * 12 * 2 * 6, 2 * 12 * 2 * 4
    assert _counts(fc) == {"aten.addmm": 3 * (x_step + h_step),
                           "aten.mm": 3 * 2 * (x_step + h_step) - h_step}
    with FlopCounterMode(display=False) as fc:       # float32 LSTM: one mkldnn kernel in torch
        nn.LSTM(6, 4)(_r(3, 2, 6))
    assert _counts(fc) == {}


def test_sdpa_math_path_counts_bmm():
    # dropout takes torch's math path: bmm(q, k^T) and bmm(attn, v), 2*6*8*10*16 each
    with FlopCounterMode(display=False) as fc:
        F.scaled_dot_product_attention(_r(2, 3, 8, 16), _r(2, 3, 10, 16), _r(2, 3, 10, 16),
                                       dropout_p=0.5)
    assert _counts(fc) == {"aten.bmm": 2 * (6 * 8 * 10 * 2 * 16)}


def test_mods_argument_warns_and_custom_mapping_refused():
    m = nn.Linear(2, 2)
    with pytest.warns(UserWarning, match="mods argument is not needed anymore"):
        FlopCounterMode(m, display=False)
    with pytest.raises(NotImplementedError, match="custom_mapping"):
        FlopCounterMode(display=False, custom_mapping={1: 2})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with FlopCounterMode(display=False) as fc:
            m(torch.randn(1, 2))
    assert fc.get_flop_counts() == {"Global": {torch.ops.aten.addmm: 8},
                                    "Linear": {torch.ops.aten.addmm: 8}}


def test_nests_with_the_profiler():
    a, b = torch.randn(4, 5), torch.randn(5, 6)
    with FlopCounterMode(display=False) as fc:
        with torch.profiler.profile() as prof:
            torch.mm(a, b)
        torch.mm(a, b)                      # still counted after the profile ends
    assert fc.get_total_flops() == 2 * 240
    assert [e.count for e in prof.key_averages() if e.key == "kiln::matmul"] == [1]
    with torch.profiler.profile() as prof:
        with FlopCounterMode(display=False) as fc:
            torch.mm(a, b)
        torch.mm(a, b)
    assert fc.get_total_flops() == 240
    assert [e.count for e in prof.key_averages() if e.key == "kiln::matmul"] == [2]
    assert _dispatch.PROFILE is None
