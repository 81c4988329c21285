"""utils.data: datasets, samplers, collation, DataLoader (single process and worker processes)."""
import collections
import collections.abc

import numpy as np
import pytest

import framework as torch
from framework.utils import data
from framework.utils.data import (DataLoader, Dataset, IterableDataset, TensorDataset,
                                  ConcatDataset, Subset, random_split, default_collate,
                                  SequentialSampler, RandomSampler, SubsetRandomSampler,
                                  WeightedRandomSampler, BatchSampler, DistributedSampler,
                                  get_worker_info)
from conftest import assert_close, to_np


class CustomDataset(data.Dataset):
    """catalog-001-004 sec. 8: last column is the label."""

    def __init__(self, xy):
        self.x_data = torch.from_numpy(xy[:, 0:-1])
        self.y_data = torch.from_numpy(xy[:, [-1]])
        self.len = xy.shape[0]

    def __getitem__(self, index):
        return self.x_data[index], self.y_data[index]

    def __len__(self):
        return self.len


class Squares(Dataset):
    def __len__(self):
        return 23

    def __getitem__(self, i):
        return {"x": np.full(3, i, dtype=np.float32), "y": i * i, "name": f"s{i}"}


class Stream(IterableDataset):
    """Shards itself across workers with get_worker_info(), as PyTorch's docs show."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        if info is None:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))


def test_seed_custom_dataset_drop_last():
    x = np.random.randint(1, 5, 100).reshape(-1, 1)
    y = np.ones(100, dtype=np.int64).reshape(-1, 1)
    train = CustomDataset(np.concatenate((x, y), axis=1))
    loader = DataLoader(dataset=train, batch_size=12, shuffle=True, drop_last=True)
    assert len(loader) == 8
    for epoch in range(2):
        n = 0
        for i, (inputs, labels) in enumerate(loader):
            assert inputs.size() == torch.Size([12, 1]) and labels.size() == torch.Size([12, 1])
            assert inputs.dtype == torch.int64
            assert (to_np(labels) == 1).all()
            n += 1
        assert n == 8
    loader = DataLoader(train, batch_size=12)
    sizes = [len(b[0]) for b in loader]
    assert len(loader) == 9 and sizes == [12] * 8 + [4]


def test_sequential_batches_values():
    ds = TensorDataset(torch.arange(10.0).reshape(5, 2), torch.arange(5))
    batches = list(DataLoader(ds, batch_size=2))
    assert len(batches) == 3
    assert_close(batches[0][0], [[0, 1], [2, 3]])
    assert_close(batches[2][1], [4])
    assert batches[2][1].dtype == torch.int64


def test_shuffle_is_deterministic_under_seed_and_a_permutation():
    ds = TensorDataset(torch.arange(20))

    def epoch():
        return np.concatenate([to_np(b[0]) for b in DataLoader(ds, batch_size=6, shuffle=True)])
    torch.manual_seed(3)
    a, b = epoch(), epoch()
    torch.manual_seed(3)
    c = epoch()
    assert sorted(a.tolist()) == list(range(20))
    assert (a == c).all() and not (a == b).all()
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    d1 = [to_np(x[0]).tolist() for x in DataLoader(ds, batch_size=5, shuffle=True, generator=g1)]
    d2 = [to_np(x[0]).tolist() for x in DataLoader(ds, batch_size=5, shuffle=True, generator=g2)]
    assert d1 == d2


def test_default_collate_rules():
    b = default_collate([{"x": np.ones(2), "y": 1, "f": 0.5, "s": "a", "t": (1, 2.0)},
                         {"x": np.zeros(2), "y": 2, "f": 1.5, "s": "b", "t": (3, 4.0)}])
    assert_close(b["x"], [[1, 1], [0, 0]], check_dtype=torch.float64)
    assert b["y"].dtype == torch.int64 and b["y"].tolist() == [1, 2]
    assert b["f"].dtype == torch.float64 and b["f"].tolist() == [0.5, 1.5]
    assert b["s"] == ["a", "b"]
    assert isinstance(b["t"], list) and b["t"][0].tolist() == [1, 3]
    assert default_collate([True, False]).dtype == torch.bool
    assert default_collate([np.float32(1), np.float32(2)]).dtype == torch.float32
    P = collections.namedtuple("P", "a b")
    p = default_collate([P(1, 2), P(3, 4)])
    assert isinstance(p, P) and p.a.tolist() == [1, 3]
    od = default_collate([collections.OrderedDict(a=1), collections.OrderedDict(a=2)])
    assert isinstance(od, collections.OrderedDict)
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(RuntimeError, match="stack"):
        default_collate([torch.zeros(2), torch.zeros(3)])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        default_collate([object(), object()])


def test_custom_collate_and_no_auto_batching():
    ds = Squares()
    out = list(DataLoader(ds, batch_size=4, collate_fn=lambda b: [s["y"] for s in b]))
    assert out[0] == [0, 1, 4, 9] and len(out) == 6
    single = list(DataLoader(ds, batch_size=None))
    assert len(single) == 23 and isinstance(single[3]["x"], torch.Tensor)
    assert single[3]["y"] == 9


def test_batch_sampler_and_sampler_options():
    ds = TensorDataset(torch.arange(10))
    bs = BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=False)
    assert list(bs) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]] and len(bs) == 4
    assert len(BatchSampler(range(10), 3, True)) == 3
    dl = DataLoader(ds, batch_sampler=[[9, 0], [5]])
    assert [b[0].tolist() for b in dl] == [[9, 0], [5]]
    dl = DataLoader(ds, batch_size=4, sampler=SubsetRandomSampler([1, 3, 5]))
    got = [b[0].tolist() for b in dl]
    assert len(got) == 1 and sorted(got[0]) == [1, 3, 5]
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, batch_sampler=bs, batch_size=2)
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)
    with pytest.raises(ValueError, match="non-negative"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError, match="persistent_workers"):
        DataLoader(ds, persistent_workers=True)
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        BatchSampler(range(3), 0, False)


def test_random_and_weighted_samplers():
    g = torch.Generator().manual_seed(0)
    s = RandomSampler(range(10), generator=g)
    order = list(s)
    assert sorted(order) == list(range(10)) and len(s) == 10
    s = RandomSampler(range(10), replacement=True, num_samples=70, generator=g)
    draws = list(s)
    assert len(draws) == 70 and all(0 <= d < 10 for d in draws)
    s = RandomSampler(range(4), num_samples=10, generator=g)
    d = list(s)
    assert len(d) == 10 and sorted(d[:4]) == [0, 1, 2, 3] and sorted(d[4:8]) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler(range(0))
    with pytest.raises(TypeError, match="replacement"):
        RandomSampler(range(3), replacement=1)
    w = WeightedRandomSampler([0, 0, 1.0, 0], 20, generator=g)
    assert list(w) == [2] * 20
    w = WeightedRandomSampler([1, 1, 1, 1], 4, replacement=False, generator=g)
    assert sorted(w) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="1d sequence"):
        WeightedRandomSampler([[1.0]], 1)


def test_distributed_sampler_shards_and_padding():
    n, R = 10, 3
    shards = [list(DistributedSampler(range(n), num_replicas=R, rank=r, shuffle=False))
              for r in range(R)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]  # padded with 0, 1
    shards = [list(DistributedSampler(range(n), R, r, shuffle=False, drop_last=True))
              for r in range(R)]
    assert shards == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    samplers = [DistributedSampler(range(n), R, r, shuffle=True, seed=5) for r in range(R)]
    e0 = [list(s) for s in samplers]
    flat = sorted(sum(e0, []))
    assert len(flat) == 12 and set(flat) == set(range(n))
    assert [list(s) for s in samplers] == e0          # same epoch, same order
    for s in samplers:
        s.set_epoch(1)
    e1 = [list(s) for s in samplers]
    assert e1 != e0 and set(sum(e1, [])) == set(range(n))
    assert len(samplers[0]) == 4
    with pytest.raises(ValueError, match="Invalid rank 3"):
        DistributedSampler(range(n), num_replicas=3, rank=3)
    # small dataset, many replicas: padding repeats the list
    assert [list(DistributedSampler(range(2), 5, r, shuffle=False)) for r in range(5)] == \
        [[0], [1], [0], [1], [0]]


def test_datasets_concat_subset_random_split():
    a, b = TensorDataset(torch.arange(3)), TensorDataset(torch.arange(10, 15))
    c = a + b
    assert isinstance(c, ConcatDataset) and len(c) == 8 and c.cumulative_sizes == [3, 8]
    assert c[3][0].item() == 10 and c[-1][0].item() == 14
    with pytest.raises(ValueError, match="exceed dataset length"):
        c[-9]
    s = Subset(b, [4, 0])
    assert len(s) == 2 and s[0][0].item() == 14
    parts = random_split(range(10), [3, 7], generator=torch.Generator().manual_seed(42))
    assert [len(p) for p in parts] == [3, 7]
    assert sorted(list(parts[0]) + list(parts[1])) == list(range(10))
    again = random_split(range(10), [3, 7], generator=torch.Generator().manual_seed(42))
    assert list(again[0]) == list(parts[0])
    fr = random_split(range(11), [0.5, 0.3, 0.2], generator=torch.Generator().manual_seed(0))
    assert [len(p) for p in fr] == [6, 3, 2]   # floors 5, 3, 2 -> remainder 1 to the first
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(range(10), [3, 6])
    with pytest.raises(AssertionError, match="Size mismatch"):
        TensorDataset(torch.zeros(3), torch.zeros(4))


def test_iterable_dataset_single_process():
    dl = DataLoader(Stream(10), batch_size=4)
    assert [b.tolist() for b in dl] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    dl = DataLoader(Stream(10), batch_size=4, drop_last=True)
    assert len(list(dl)) == 2
    with pytest.raises(ValueError, match="expected unspecified shuffle"):
        DataLoader(Stream(3), shuffle=True)
    with pytest.raises(TypeError):
        len(DataLoader(Stream(3)))


class Labelled(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.ones(2) * i, torch.tensor(i)          # a 0-d label


def test_workers_keep_0d_tensors_0d():
    # unbatched items travel from the workers as they are: a 0-d label stays 0-d (packing
    # the array with np.ascontiguousarray had made it shape [1])
    for nw in (0, 2):
        items = list(DataLoader(Labelled(), batch_size=None, num_workers=nw))
        assert [tuple(y.shape) for _, y in items] == [()] * 4, nw
        assert [int(y) for _, y in items] == [0, 1, 2, 3]
        batch = next(iter(DataLoader(Labelled(), batch_size=2, num_workers=nw)))
        assert tuple(batch[1].shape) == (2,) and batch[1].tolist() == [0, 1]


def test_workers_give_same_batches_as_single_process():
    ds = Squares()
    ref = list(DataLoader(ds, batch_size=5))
    dl = DataLoader(ds, batch_size=5, num_workers=2)
    assert len(dl) == 5
    for epoch in range(2):          # re-iteration starts fresh workers
        got = list(dl)
        assert len(got) == len(ref)
        for r, g in zip(ref, got):
            assert_close(g["x"], to_np(r["x"]), check_dtype=torch.float32)
            assert g["y"].tolist() == r["y"].tolist() and g["name"] == r["name"]
    torch.manual_seed(1)
    a = [b["y"].tolist() for b in DataLoader(ds, batch_size=4, shuffle=True)]
    torch.manual_seed(1)
    b = [b["y"].tolist() for b in DataLoader(ds, batch_size=4, shuffle=True, num_workers=2,
                                             pin_memory=True)]
    assert a == b


def _record_worker(worker_id):
    info = get_worker_info()
    assert info.id == worker_id and info.num_workers == 2


class WhoAmI(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = get_worker_info()
        return torch.tensor([i, -1 if info is None else info.id, torch.randint(0, 10 ** 6, ()).item()])


def test_worker_info_init_fn_seeds_and_persistent_workers():
    assert get_worker_info() is None
    dl = DataLoader(WhoAmI(), batch_size=2, num_workers=2, worker_init_fn=_record_worker,
                    persistent_workers=True)
    e1 = torch.cat(list(dl))
    e2 = torch.cat(list(dl))
    ids = to_np(e1)[:, 1].tolist()
    assert ids == [0, 0, 1, 1, 0, 0, 1, 1]        # batches go round-robin to the workers
    assert to_np(e1)[:, 0].tolist() == list(range(8))
    # each worker seeds its own generator differently
    r = to_np(e1)[:, 2]
    assert r[0] != r[2]
    assert to_np(e2)[:, 0].tolist() == list(range(8))
    assert dl._iterator is not None and all(w.is_alive() for w in dl._iterator._workers)
    dl._iterator._shutdown()


def test_iterable_dataset_with_workers():
    got = sorted(sum((b.tolist() for b in DataLoader(Stream(11), batch_size=3, num_workers=2)),
                     []))
    assert got == list(range(11))


class Broken(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 2:
            raise IndexError("item 2 is broken")
        return i


def test_worker_exception_is_reraised_with_class():
    with pytest.raises(IndexError, match="item 2 is broken"):
        list(DataLoader(Broken(), batch_size=1, num_workers=2))
    with pytest.raises(IndexError, match="item 2 is broken"):
        list(DataLoader(Broken(), batch_size=1))


def test_torch_cross_check_sampler_semantics():
    torch_ = pytest.importorskip("torch")
    for kw in (dict(shuffle=False), dict(shuffle=False, drop_last=True)):
        for n, R in ((10, 3), (7, 4), (2, 5)):
            for r in range(R):
                ours = list(DistributedSampler(range(n), R, r, **kw))
                theirs = list(torch_.utils.data.DistributedSampler(range(n), R, r, **kw))
                assert ours == theirs
    ours = default_collate([(1, 2.0, "a"), (3, 4.0, "b")])
    theirs = torch_.utils.data.default_collate([(1, 2.0, "a"), (3, 4.0, "b")])
    assert type(ours) is type(theirs) and ours[2] == theirs[2]
    assert str(ours[1].dtype) == str(theirs[1].dtype)


def test_collate_keeps_mutable_mapping_type_and_its_state():
    # a MutableMapping batch is a copy of the first sample updated with the collated fields:
    # defaultdict keeps its default_factory (type(elem)(fields) would have fallen back to dict)
    batch = default_collate([collections.defaultdict(list, a=1), collections.defaultdict(list, a=2)])
    assert type(batch) is collections.defaultdict and batch.default_factory is list
    assert batch["a"].tolist() == [1, 2] and batch["missing"] == []
    conv = data.default_convert(collections.defaultdict(int, x=np.arange(2)))
    assert type(conv) is collections.defaultdict and conv.default_factory is int
    assert isinstance(conv["x"], torch.Tensor) and conv["x"].tolist() == [0, 1]


def test_iterable_dataset_is_an_abstract_iterable():
    with pytest.raises(TypeError, match="abstract"):
        IterableDataset()

    class NoIter(IterableDataset):
        pass
    with pytest.raises(TypeError, match="abstract"):
        NoIter()
    assert isinstance(Stream(3), collections.abc.Iterable)


def test_distributed_sampler_without_process_group_is_value_error():
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        DistributedSampler(range(4))


class _MissingKey(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        raise KeyError("no such key")


def test_worker_key_error_message_is_readable():
    # str(KeyError(msg)) is repr(msg); the re-raised message must read as text, not a repr
    with pytest.raises(KeyError) as info:
        list(DataLoader(_MissingKey(), num_workers=2))
    text = str(info.value)
    assert text.startswith("Caught KeyError in DataLoader worker process 0.\n")
    assert "\\n" not in text and "KeyError('" not in text and "no such key" in text
