"""Shared-memory tensors (Tensor.share_memory_ / is_shared, Module.share_memory) and
torch.multiprocessing: tensors sent to other processes share memory, spawn/start_processes,
Hogwild training. Child functions are top-level so spawned interpreters can import them."""
import copy
import gc
import io
import multiprocessing as std_mp
import os
import pickle

import numpy as np
import pytest

import framework as torch
import framework.multiprocessing as mp

HAS_FORK = "fork" in std_mp.get_all_start_methods()
needs_fork = pytest.mark.skipif(not HAS_FORK, reason="the fork start method is not available "
                                                     "on this platform")
needs_procfs = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"),
                                  reason="needs /proc/self/fd to count open descriptors")
TIMEOUT = 60


def _open_fds():
    return len(os.listdir("/proc/self/fd"))


# ---- in one process ----------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: torch.arange(12.).reshape(3, 4),
    lambda: torch.arange(12, dtype=torch.int64).reshape(3, 4).t(),    # non-contiguous
    lambda: torch.tensor([True, False, True]),
    lambda: torch.tensor([1.5, -2.0, 3.25], dtype=torch.bfloat16),
    lambda: torch.tensor(3.5),                                         # 0-d
    lambda: torch.empty(0, 3),
])
def test_share_memory_keeps_values_dtype_layout(make):
    t = make()
    before = t.numpy().copy()
    shape, stride, dtype = t.shape, t.stride(), t.dtype
    assert not t.is_shared()
    assert t.share_memory_() is t
    assert t.is_shared()
    assert (t.shape, t.stride(), t.dtype) == (shape, stride, dtype)
    np.testing.assert_array_equal(t.numpy(), before)
    data = t._data
    t.share_memory_()                   # already shared: nothing moves
    assert t._data is data


def test_share_memory_matches_torch():
    tt = pytest.importorskip("torch", reason="PyTorch not installed: no cross-check")
    for lib in (torch, tt):
        b = lib.arange(10.)
        v = b[2:5]
        p = lib.nn.Parameter(lib.ones(3))
        p.sum().backward()
        v.share_memory_()
        p.share_memory_()
        e = lib.empty(0)
        e.share_memory_()
        got = (b.is_shared(), v.is_shared(), p.is_shared(), p.grad.is_shared(), e.is_shared())
        assert got == (True, True, True, False, True), lib.__name__


def test_views_and_aliases_move_with_the_storage(monkeypatch):
    scans = []
    real = gc.get_objects
    monkeypatch.setattr(gc, "get_objects", lambda *a: scans.append(1) or real(*a))
    fresh = torch.randn(5)
    fresh.share_memory_()
    assert fresh.is_shared() and scans == []       # nothing else holds it: no object scan

    b = torch.arange(12.).reshape(3, 4)
    row = b[1]                  # a view made before the move
    alias = b.data              # .data: same memory, no _base link
    det = b.detach()
    col = b[:, 2]
    col.share_memory_()         # sharing a view moves the whole base storage
    for x in (b, row, alias, det, col):
        assert x.is_shared()
    row[0] = 100.
    col[2] = -1.
    assert b[1, 0].item() == 100. and alias[1, 0].item() == 100. and det[1, 0].item() == 100.
    assert b[2, 2].item() == -1.
    later = b[2]                # views made afterwards are views of the shared memory
    assert later.is_shared() and later[2].item() == -1.
    assert scans                # (found by the scan)

    # tensors over disjoint parts of one numpy array are separate storages, as in PyTorch
    a = np.arange(8.)
    lo, hi = torch.from_numpy(a[:4]), torch.from_numpy(a[4:])
    lo.share_memory_()
    assert lo.is_shared() and not hi.is_shared()
    lo[0], hi[0] = 40., 50.
    assert a[0] == 0. and a[4] == 50.       # lo left the numpy memory, hi still uses it


def test_grad_not_shared_module_share_memory_shares_existing_grads():
    p = torch.nn.Parameter(torch.randn(3))
    p.sum().backward()
    p.share_memory_()
    assert p.is_shared() and not p.grad.is_shared()
    m = torch.nn.Linear(3, 2)
    m(torch.ones(3)).sum().backward()
    opt_params = list(m.parameters())
    assert m.share_memory() is m
    assert all(q.is_shared() for q in m.parameters())
    assert m.weight.grad.is_shared()      # as torch's Module._apply, which also maps .grad
    assert [id(q) for q in m.parameters()] == [id(q) for q in opt_params]   # same objects


def test_device_tensors_are_a_no_op():
    try:
        t = torch.ones(3, device="interpret")
    except Exception as e:      # pragma: no cover - interpret device unavailable
        pytest.skip(f"interpret device unavailable: {e}")
    data = t._data
    assert t.is_shared()                    # as PyTorch reports CUDA tensors
    assert t.share_memory_() is t and t._data is data


def test_pickle_and_save_still_copy():
    t = torch.arange(6.).share_memory_()
    for restored in (pickle.loads(pickle.dumps(t)), copy.deepcopy(t)):
        assert not restored.is_shared()
        restored.add_(1)
        assert t[0].item() == 0. and restored[0].item() == 1.
    buf = io.BytesIO()
    torch.save({"t": t, "p": torch.nn.Parameter(torch.ones(2).share_memory_())}, buf)
    buf.seek(0)
    back = torch.load(buf)
    assert not back["t"].is_shared() and type(back["p"]) is torch.nn.Parameter
    np.testing.assert_array_equal(back["t"].numpy(), np.arange(6.))


def test_forking_pickler_round_trip_shares_memory():
    from multiprocessing.reduction import ForkingPickler
    t = torch.arange(8.)
    view = t[2:6]
    p = torch.nn.Parameter(torch.zeros(2, 2))
    got_view, got_p, got_view2 = ForkingPickler.loads(ForkingPickler.dumps((view, p, view)))
    assert t.is_shared() and p.is_shared()  # pickling moved them (as torch's reductions do)
    assert got_view2 is got_view
    assert type(got_p) is torch.nn.Parameter and got_p.requires_grad
    got_view.fill_(-3.)
    got_p.data.add_(2.)
    assert t.tolist() == [0., 1., -3., -3., -3., -3., 6., 7.]
    assert p.tolist() == [[2., 2.], [2., 2.]]
    leaf = torch.ones(2, requires_grad=True)
    got_leaf = ForkingPickler.loads(ForkingPickler.dumps(leaf))
    assert type(got_leaf) is torch.Tensor and got_leaf.requires_grad and got_leaf.is_leaf
    assert got_leaf.is_shared() and got_leaf is not leaf
    nonleaf = torch.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="Cowardly refusing to serialize non-leaf tensor"):
        ForkingPickler.dumps(nonleaf)


@needs_procfs
def test_no_descriptors_or_shm_files_left():
    shm = "/dev/shm"
    before_files = set(os.listdir(shm)) if os.path.isdir(shm) else set()
    gc.collect()
    before = _open_fds()
    ts = [torch.randn(100).share_memory_() for _ in range(20)]
    views = [t[::2] for t in ts]
    assert _open_fds() > before
    del ts, views
    gc.collect()
    assert _open_fds() == before
    if os.path.isdir(shm):
        assert {f for f in set(os.listdir(shm)) - before_files if "kiln" in f} == set()


def _share_with_few_descriptors(n):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = _open_fds() + 8
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    ts = [torch.full((4,), float(i)).share_memory_() for i in range(n)]
    assert all(t.is_shared() and t[0].item() == i for i, t in enumerate(ts))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > low


@needs_fork
@needs_procfs
def test_running_out_of_descriptors_raises_the_limit():
    resource = pytest.importorskip("resource", reason="no resource module on this platform")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < _open_fds() + 200:
        pytest.skip("the hard descriptor limit leaves no room to grow")
    proc = mp.get_context("fork").Process(target=_share_with_few_descriptors, args=(30,))
    proc.start()            # (in a child: the limit changes there only)
    proc.join(TIMEOUT)
    assert proc.exitcode == 0


def test_module_api():
    for name in ("Process", "Queue", "SimpleQueue", "Pool", "Manager", "get_context",
                 "set_start_method", "get_start_method", "cpu_count", "Event", "Lock", "Pipe",
                 "JoinableQueue", "Value", "Array", "current_process"):
        assert getattr(mp, name) is getattr(std_mp, name), name
    assert torch.multiprocessing is mp
    assert mp.get_sharing_strategy() in mp.get_all_sharing_strategies()
    old = mp.get_sharing_strategy()
    for s in mp.get_all_sharing_strategies():
        mp.set_sharing_strategy(s)
        assert mp.get_sharing_strategy() == s
    mp.set_sharing_strategy(old)
    with pytest.raises(AssertionError, match="invalid sharing strategy"):
        mp.set_sharing_strategy("carrier_pigeon")


# ---- fork ----------------------------------------------------------------------------------------

def _fork_writer(b, view, private):
    b[0] = 11.
    view.fill_(7.)
    private.fill_(9.)


@needs_fork
def test_fork_child_writes_are_seen_by_parent():
    b = torch.zeros(6)
    view = b[3:5]
    private = torch.zeros(2)            # not shared: the child writes its copy
    b.share_memory_()
    ctx = mp.get_context("fork")
    proc = ctx.Process(target=_fork_writer, args=(b, view, private))
    proc.start()
    proc.join(TIMEOUT)
    assert proc.exitcode == 0
    assert b.tolist() == [11., 0., 0., 7., 7., 0.]
    assert view.tolist() == [7., 7.]
    assert private.tolist() == [0., 0.]


def _sgd_steps(model, xs, ys, lr):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for x, y in zip(xs, ys):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()


def _hogwild_data():
    g = torch.Generator().manual_seed(3)
    return [([torch.randn(8, 4, generator=g) for _ in range(3)],
             [torch.randn(8, 2, generator=g) for _ in range(3)]) for _ in range(2)]


@needs_fork
def test_hogwild_fork_matches_sequential_updates():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    reference = copy.deepcopy(model)
    start = model.weight.detach().clone()
    model.share_memory()
    data = _hogwild_data()
    ctx = mp.get_context("fork")
    for xs, ys in data:             # one child after the other: the result is exact
        proc = ctx.Process(target=_sgd_steps, args=(model, xs, ys, 0.1))
        proc.start()
        proc.join(TIMEOUT)
        assert proc.exitcode == 0
    for xs, ys in data:
        _sgd_steps(reference, xs, ys, 0.1)
    assert not torch.equal(model.weight, start)
    assert torch.equal(model.weight, reference.weight)
    assert torch.equal(model.bias, reference.bias)
    assert model.weight.grad is None        # the children's gradients stayed theirs


def _exit_with(i, code):
    os._exit(code)


@needs_fork
def test_start_processes_exit_code():
    with pytest.raises(mp.ProcessExitedException, match="terminated with exit code 3") \
            as info:
        mp.start_processes(_exit_with, args=(3,), nprocs=1, start_method="fork")
    assert info.value.exit_code == 3 and info.value.error_index == 0


# ---- spawn ---------------------------------------------------------------------------------------

def _queue_child(inbox, outbox, done, arg):
    view, param, view_again = inbox.get(timeout=TIMEOUT)
    outbox.put({"shared": (view.is_shared(), param.is_shared(), arg.is_shared()),
                "param": (type(param).__name__, param.requires_grad),
                "same_object": view is view_again, "arg": arg.tolist()})
    view.fill_(5.)
    param.data.mul_(3.)
    arg[0] = -1.
    made = torch.full((2,), 7.)
    outbox.put(made)
    done.wait(TIMEOUT)          # the sender stays alive until its tensor has been received
    outbox.put(made.tolist())   # the parent's write to `made`, seen here


def test_queue_under_spawn_shares_memory():
    ctx = mp.get_context("spawn")
    inbox, outbox, done = ctx.Queue(), ctx.Queue(), ctx.Event()
    b = torch.zeros(6)
    param = torch.nn.Parameter(torch.ones(2, 3))
    proc = ctx.Process(target=_queue_child, args=(inbox, outbox, done, b))
    proc.start()
    view = b[2:4]
    inbox.put((view, param, view))
    info = outbox.get(timeout=TIMEOUT)
    made = outbox.get(timeout=TIMEOUT)
    assert made.is_shared() and made.tolist() == [7., 7.]
    made.add_(1.)
    done.set()
    seen_by_child = outbox.get(timeout=TIMEOUT)
    proc.join(TIMEOUT)
    assert proc.exitcode == 0
    assert info == {"shared": (True, True, True), "param": ("Parameter", True),
                    "same_object": True, "arg": [0.] * 6}
    assert b.tolist() == [-1., 0., 5., 5., 0., 0.]
    assert param.tolist() == [[3.] * 3] * 2
    assert seen_by_child == [8., 8.]


def _spawn_square(i, queue, base):
    queue.put((i, (torch.tensor(float(i + base)) ** 2).item(), os.getpid()))


def _spawn_train(i, model, xs, ys):
    _sgd_steps(model, xs, ys, 0.1)


def test_spawn_collects_results_and_trains_sent_model():
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.spawn(_spawn_square, args=(queue, 3), nprocs=2)
    got = sorted(queue.get() for _ in range(2))
    assert [g[:2] for g in got] == [(0, 9.), (1, 16.)]
    assert got[0][2] != got[1][2] != os.getpid()
    queue.close()

    # Hogwild under spawn: the model given as an argument is pickled, so its parameters are
    # moved to shared memory (no share_memory() call) and the child's steps land here
    torch.manual_seed(1)
    model = torch.nn.Linear(4, 2)
    reference = copy.deepcopy(model)
    xs, ys = _hogwild_data()[0]
    ctx_ = mp.start_processes(_spawn_train, args=(model, xs, ys), nprocs=1, join=False)
    assert isinstance(ctx_, mp.ProcessContext)
    while not ctx_.join(TIMEOUT):
        pass
    assert model.weight.is_shared()
    _sgd_steps(reference, xs, ys, 0.1)
    assert torch.equal(model.weight, reference.weight) and torch.equal(model.bias,
                                                                       reference.bias)


def _spawn_raise(i):
    if i == 1:
        raise ValueError(f"boom from process {i}")


def test_spawn_child_exception_is_raised_with_traceback():
    with pytest.raises(mp.ProcessRaisedException) as info:
        mp.spawn(_spawn_raise, nprocs=2)
    err = info.value
    assert err.error_index == 1
    assert "ValueError: boom from process 1" in str(err)
    assert "Traceback" in str(err) and "_spawn_raise" in str(err)
    assert "-- Process 1 terminated with the following error:" in str(err)
