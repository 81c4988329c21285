"""nn.CTCLoss / F.ctc_loss: values against a brute-force sum over every alignment (float64),
gradients by finite differences through log_softmax and against PyTorch 2.13's printed values,
target layouts, reductions, zero_infinity, compile() and PyTorch's argument errors."""
import itertools

import numpy as np
import pytest

import framework as torch
from conftest import assert_close, to_np

F = torch.nn.functional


def _collapse(path, blank):
    out, prev = [], None
    for c in path:
        if c != prev and c != blank:
            out.append(c)
        prev = c
    return tuple(out)


def _brute_nll(lp, target, blank):
    """-log of the summed probability of every frame path that collapses to target."""
    T, C = lp.shape
    p = 0.0
    for path in itertools.product(range(C), repeat=T):
        if _collapse(path, blank) == tuple(target):
            p += np.exp(sum(lp[t, c] for t, c in enumerate(path)))
    return -np.log(p) if p > 0 else np.inf


def _log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


CASES = [  # (input_lengths, targets padded, target_lengths, blank)
    ([4, 4, 3], [[1, 2, 0], [2, 2, 0], [1, 0, 0]], [2, 2, 1], 0),
    ([5, 3, 2], [[1, 1, 2], [2, 0, 0], [0, 0, 0]], [3, 1, 0], 0),
    ([4, 5, 5], [[0, 0, 0], [0, 1, 0], [1, 1, 0]], [1, 3, 2], 2),   # blank is the last class
]


@pytest.mark.parametrize("il,tg,tl,blank", CASES)
def test_ctc_loss_equals_the_sum_over_all_alignments(rng, il, tg, tl, blank):
    lp = _log_softmax(rng.standard_normal((5, 3, 3)))
    expect = [_brute_nll(lp[:il[b], b], tg[b][:tl[b]], blank) for b in range(3)]
    got = F.ctc_loss(torch.tensor(lp), torch.tensor(tg), torch.tensor(il), torch.tensor(tl),
                     blank=blank, reduction="none")
    assert got.dtype == torch.float64 and got.shape == (3,)
    assert_close(got, expect, rtol=1e-10, atol=1e-12)
    # 'mean' divides by the target length (at least one) before averaging; 'sum' adds
    lpt = torch.tensor(lp.astype(np.float32))
    args = (torch.tensor(tg), torch.tensor(il), torch.tensor(tl))
    mean = F.ctc_loss(lpt, *args, blank=blank)
    assert_close(mean, np.mean(np.array(expect) / np.maximum(tl, 1)), rtol=1e-5)
    assert_close(F.ctc_loss(lpt, *args, blank=blank, reduction="sum"), sum(expect), rtol=1e-5)
    assert mean.dtype == torch.float32


def test_ctc_loss_target_layouts_and_length_forms_agree(rng):
    lp = torch.tensor(_log_softmax(rng.standard_normal((6, 3, 4))).astype(np.float32))
    tg = [[1, 3, 2], [2, 2, 0], [3, 0, 0]]
    tl, il = [3, 2, 1], [6, 5, 4]
    flat = torch.tensor([1, 3, 2, 2, 2, 3])
    ref = F.ctc_loss(lp, torch.tensor(tg), torch.tensor(il), torch.tensor(tl), reduction="none")
    for targets, ilx, tlx in [(flat, torch.tensor(il), torch.tensor(tl)),
                              (torch.tensor(tg), tuple(il), tuple(tl)),
                              (torch.tensor(tg, dtype=torch.int32), torch.tensor(il).int(), tl),
                              (torch.tensor(tg).float(), il, torch.tensor(tl))]:
        got = F.ctc_loss(lp, targets, ilx, tlx, reduction="none")
        assert_close(got, to_np(ref), rtol=0, atol=0)
    # unbatched: (T, C) log-probabilities, (S,) target, 0-d lengths
    one = F.ctc_loss(lp[:, 0], torch.tensor(tg[0]), torch.tensor(6), torch.tensor(3),
                     reduction="none")
    assert one.shape == () and float(one) == float(ref[0])


def test_ctc_loss_matches_pytorch_printed_values():
    x = torch.tensor([[[-1.2, -0.9, -1.3], [-0.4, -2.0, -1.6]],
                      [[-0.7, -1.1, -1.9], [-1.5, -0.6, -1.4]],
                      [[-1.0, -1.4, -0.95], [-1.1, -1.3, -0.9]],
                      [[-2.1, -0.5, -1.2], [-0.8, -0.9, -2.2]]])
    lp = x.log_softmax(2).detach().requires_grad_()
    tg = torch.tensor([[1, 2], [2, 2]])
    loss = F.ctc_loss(lp, tg, (4, 4), (2, 2), reduction="none")   # printed by torch 2.13
    assert_close(loss, [1.81331718, 3.92328930], rtol=1e-6)
    assert loss.grad_fn.name() == "CtcLossBackward0"
    loss.sum().backward()
    # PyTorch's gradient is the one through log_softmax: exp(lp) - posterior occupancy
    assert_close(lp.grad, [[[0.02179205, -0.29980198, 0.27800980],
                            [0.35821366, 0.13432090, -0.49253446]],
                           [[0.09500510, -0.16910636, 0.07410133],
                            [-0.38135719, 0.53882247, -0.15746507]],
                           [[0.05024451, 0.06912336, -0.11936796],
                            [-0.15433043, 0.26930749, -0.11497700]],
                           [[-0.04425246, 0.58876109, -0.54450864],
                            [0.05028841, 0.42057404, -0.47086251]]], rtol=1e-5, atol=1e-6)
    assert_close(F.ctc_loss(lp, tg, (4, 3), (2, 1)), 1.19663262, rtol=1e-6)
    assert_close(F.ctc_loss(lp, tg, (4, 3), (2, 1), reduction="sum", blank=2), 4.09266758,
                 rtol=1e-6)


def test_ctc_loss_gradcheck_through_log_softmax(rng):
    x = torch.tensor(rng.standard_normal((5, 2, 4)), requires_grad=True)
    tg, il, tl = torch.tensor([[1, 3, 3], [2, 0, 0]]), torch.tensor([5, 4]), torch.tensor([3, 1])
    for reduction in ("none", "mean", "sum"):
        assert torch.autograd.gradcheck(
            lambda v: F.ctc_loss(v.log_softmax(2), tg, il, tl, reduction=reduction), (x,))
    # frames past a sequence's input length get no gradient
    F.ctc_loss(x.log_softmax(2), tg, il, tl).backward()
    assert np.all(to_np(x.grad)[4, 1] == 0) and np.any(to_np(x.grad)[3, 1] != 0)


def test_ctc_loss_impossible_alignment_and_zero_infinity():
    # three frames cannot emit "1 1 1" (repeats need blanks between them: 5 frames)
    lp = torch.full((3, 1, 3), -np.log(3.0), requires_grad=True)
    tg, il, tl = torch.tensor([[1, 1, 1]]), torch.tensor([3]), torch.tensor([3])
    loss = F.ctc_loss(lp, tg, il, tl, reduction="sum")
    assert loss.item() == np.inf
    loss.backward()
    assert np.isnan(to_np(lp.grad)).all()          # as PyTorch: nan without zero_infinity
    lp.grad = None
    loss = F.ctc_loss(lp, tg, il, tl, reduction="sum", zero_infinity=True)
    assert loss.item() == 0.0
    loss.backward()
    assert np.all(to_np(lp.grad) == 0)
    # no frames: the empty target costs nothing
    empty = F.ctc_loss(lp, torch.tensor([[0]]), torch.tensor([0]), torch.tensor([0]),
                       reduction="none")
    assert empty.item() == 0.0


def test_ctc_loss_module():
    crit = torch.nn.CTCLoss(blank=1, reduction="sum", zero_infinity=True)
    assert repr(crit) == "CTCLoss()" and crit.blank == 1 and crit.zero_infinity
    lp = torch.randn(6, 2, 4).log_softmax(2)
    tg, il, tl = torch.tensor([[2, 3], [0, 0]]), (6, 6), (2, 1)
    assert_close(crit(lp, tg, il, tl),
                 float(F.ctc_loss(lp, tg, il, tl, blank=1, reduction="sum")), rtol=0, atol=0)


def test_ctc_loss_compiled_equals_eager_and_reads_new_lengths(rng):
    def f(x, tg, il, tl):
        return F.ctc_loss(x.log_softmax(2), tg, il, tl)
    cf = torch.compile(f)
    tg = torch.tensor([[1, 2, 2], [3, 1, 0]])
    for il, tl in [([7, 6], [3, 2]), ([5, 7], [2, 1]), ([7, 3], [3, 1])]:
        x = torch.tensor(rng.standard_normal((7, 2, 4)).astype(np.float32), requires_grad=True)
        xe = x.detach().clone().requires_grad_()
        got = cf(x, tg, torch.tensor(il), torch.tensor(tl))
        want = f(xe, tg, torch.tensor(il), torch.tensor(tl))
        assert_close(got, want.item(), rtol=1e-6)
        got.backward()
        want.backward()
        assert_close(x.grad, to_np(xe.grad), rtol=1e-5, atol=1e-7)


def test_ctc_loss_bad_arguments_raise_pytorch_errors():
    lp = torch.randn(6, 3, 5).log_softmax(2)
    tg, il, tl = torch.randint(1, 5, (3, 3)), torch.tensor([6, 5, 4]), torch.tensor([3, 2, 0])
    with pytest.raises(RuntimeError, match="input_lengths to have value at most 6, but got "
                                           "value 7"):
        F.ctc_loss(lp, tg, torch.tensor([7, 5, 4]), tl)
    with pytest.raises(RuntimeError, match="size at least 4 at dimension 1, but got size 3 for "
                                           "argument #2 'targets'"):
        F.ctc_loss(lp, tg, il, torch.tensor([4, 2, 0]))
    with pytest.raises(RuntimeError, match="size 6 at dimension 0, but got size 5"):
        F.ctc_loss(lp, torch.tensor([1, 2, 3, 4, 1]), il, torch.tensor([3, 2, 1]))
    for blank in (5, -1):
        with pytest.raises(RuntimeError, match="blank must be in label range"):
            F.ctc_loss(lp, tg, il, tl, blank=blank)
    with pytest.raises(RuntimeError, match="input_lengths must be of size batch_size"):
        F.ctc_loss(lp, tg, [6, 5], tl)
    with pytest.raises(RuntimeError, match="input_lengths must be integral"):
        F.ctc_loss(lp, tg, il.float(), tl)
    with pytest.raises(ValueError, match="foo is not a valid value for reduction"):
        F.ctc_loss(lp, tg, il, tl, reduction="foo")
    with pytest.raises(NotImplementedError, match="not implemented for 'Half'"):
        F.ctc_loss(lp.half(), tg, il, tl)
    with pytest.raises(TypeError, match="input_lengths"):
        F.ctc_loss(lp[:, 0], tg[0], 6, 3)
    with pytest.raises(IndexError, match="target 7 is out of range for 5 classes"):
        F.ctc_loss(lp, torch.tensor([[1, 7, 2], [1, 1, 0], [0, 0, 0]]), il, tl)
