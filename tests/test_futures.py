"""torch.futures: completion, then/add_done_callback order, errors, collect_all/wait_all, and
the futures jit.fork and deferred work return (PyTorch 2.13's behaviour, probed by hand)."""
import numpy as np
import pytest

import framework as torch
from framework.futures import Future, collect_all, wait_all


def test_set_result_then_chain_and_callbacks():
    f = Future()
    assert not f.done() and repr(f).startswith("<torch.jit.Future object at 0x")
    g = f.then(lambda fut: fut.wait() * 2)
    h = g.then(lambda fut: fut.value() + 1)
    seen = []
    f.add_done_callback(lambda fut: seen.append(("cb", fut.value())))
    f.set_result(5)
    assert f.done() and (f.wait(), f.value(), g.wait(), h.wait()) == (5, 5, 10, 11)
    assert seen == [("cb", 5)]
    late = []
    f.add_done_callback(lambda fut: late.append(fut.value()))      # done already: runs now
    assert late == [5]
    with pytest.raises(RuntimeError, match="can only be marked completed once"):
        f.set_result(6)
    assert f.value() == 5


def test_exceptions_reach_wait_and_then():
    e = Future()
    e.set_exception(ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        e.wait()
    with pytest.raises(RuntimeError, match="Got the following error when running the callback: "
                                           "ValueError: boom"):
        e.then(lambda fut: fut.wait()).wait()
    bad = Future()
    child = bad.then(lambda fut: 1 / 0)
    bad.set_result(1)
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        child.wait()
    with pytest.warns(RuntimeWarning, match="ZeroDivisionError"):     # logged, not raised
        bad.add_done_callback(lambda fut: 1 / 0)
    with pytest.raises(RuntimeError, match="not completed yet"):
        Future().value()
    with pytest.raises(RuntimeError, match="nothing will complete this future"):
        Future().wait()


def test_collect_all_and_wait_all():
    a, b = Future(), Future()
    c = collect_all([a, b])
    assert not c.done()
    a.set_result(torch.ones(2))
    assert not c.done()
    b.set_result(3)
    assert c.done() and c.wait() == [a, b]
    vals = wait_all([a, b])
    np.testing.assert_array_equal(vals[0].numpy(), [1.0, 1.0])
    assert vals[1] == 3
    e = Future()
    e.set_exception(ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        wait_all([a, e])
    assert collect_all([]).wait() == []


def test_deferred_work_fork_and_torch_futures():
    runs = []
    d = Future._deferred(lambda: runs.append(1) or 7)
    t = d.then(lambda fut: fut.value() * 3)
    assert not d.done() and runs == []
    assert t.wait() == 21 and d.wait() == 7 and runs == [1]          # (run once)
    lazy = [Future._deferred(lambda: 1), Future._deferred(lambda: 2)]
    assert [f.wait() for f in collect_all(lazy).wait()] == [1, 2]
    r = torch.jit.fork(lambda x: x + 1, torch.ones(1))
    assert isinstance(r, torch.futures.Future) and r.done()
    np.testing.assert_array_equal(torch.jit.wait(r).numpy(), [2.0])
    err = torch.jit.fork(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        torch.jit.wait(err)
