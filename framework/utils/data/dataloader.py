"""DataLoader: batches from a dataset through a sampler and a collate function, in this process
or in worker processes (num_workers > 0) that send batches back as NumPy arrays.

Batches from workers come back in the order the sampler produced them, so num_workers=2 gives
the same batches as num_workers=0 for a map-style dataset.
"""
import itertools
import multiprocessing as mp
import queue
import time

from .dataset import IterableDataset
from .sampler import SequentialSampler, RandomSampler, BatchSampler
from ._utils.collate import default_collate, default_convert
from ._utils import worker as _w


class _InfiniteConstantSampler:
    def __iter__(self):
        while True:
            yield None


class DataLoader:
    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device="",
                 in_order=True):
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to "
                             "disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing."
                             "let num_workers > 0 to enable multiprocessing, otherwise set "
                             "prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if multiprocessing_context is not None and num_workers == 0:
            raise ValueError("multiprocessing_context can only be used with multi-process "
                             f"loading (num_workers > 0), but got num_workers={num_workers}")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory          # accepted; CPU tensors need no pinning
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        self._is_iterable = isinstance(dataset, IterableDataset)
        if self._is_iterable:
            if shuffle not in (None, False):
                raise ValueError("DataLoader with IterableDataset: expected unspecified shuffle "
                                 f"option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified sampler "
                                 f"option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if sampler is None:
            if self._is_iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self._iterator = None
        self._initialized = True

    _FROZEN = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset",
               "persistent_workers")

    def __setattr__(self, attr, val):
        if attr in self._FROZEN and self.__dict__.get("_initialized"):
            raise ValueError(f"{attr} attribute should not be set after "
                             f"{type(self).__name__} is initialized")
        super().__setattr__(attr, val)

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self):
        if self._is_iterable:
            n = len(self.dataset)       # TypeError when the dataset has no length, as in PyTorch
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)

    def _base_seed(self):
        from ...creation import randint
        return int(randint(0, 2 ** 62, (), generator=self.generator).item())

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if self.persistent_workers:
            if self._iterator is None:
                self._iterator = _MultiProcessIter(self)
            else:
                self._iterator._reset()
            return self._iterator
        return _MultiProcessIter(self)

    def __del__(self):
        it = self.__dict__.get("_iterator")
        if it is not None:
            it._shutdown()


class _SingleProcessIter:
    def __init__(self, loader):
        self._loader = loader
        self._dataset = loader.dataset
        self._collate = loader.collate_fn
        self._auto = loader._auto_collation
        # drawn like PyTorch's _base_seed, so the shuffle order equals the worker case
        self._base_seed = loader._base_seed()
        if loader._is_iterable:
            self._data_iter = iter(loader.dataset)
            self._ended = False
        else:
            self._sampler_iter = iter(loader._index_sampler)
            self._getitems = getattr(loader.dataset, "__getitems__", None)

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._loader)

    def __next__(self):
        ld = self._loader
        if ld._is_iterable:
            if self._ended:
                raise StopIteration
            if not self._auto:
                return self._collate(next(self._data_iter))
            items = list(itertools.islice(self._data_iter, ld.batch_size))
            if not items or (ld.drop_last and len(items) < ld.batch_size):
                self._ended = True
                raise StopIteration
            return self._collate(items)
        idx = next(self._sampler_iter)
        if not self._auto:
            return self._collate(self._dataset[idx])
        if self._getitems is not None:
            return self._collate(self._getitems(idx))
        return self._collate([self._dataset[i] for i in idx])


class _MultiProcessIter:
    def __init__(self, loader):
        self._loader = loader
        self._n = loader.num_workers
        self._prefetch = max(1, loader.prefetch_factor) * self._n
        self._timeout = loader.timeout
        self._iterable = loader._is_iterable
        ctx = loader.multiprocessing_context
        if ctx is None:
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        elif isinstance(ctx, str):
            ctx = mp.get_context(ctx)
        seed = loader._base_seed()
        self._result_queue = ctx.Queue()
        self._index_queues, self._workers = [], []
        for wid in range(self._n):
            iq = ctx.Queue()
            iq.cancel_join_thread()
            w = ctx.Process(target=_w._worker_loop, daemon=True, args=(
                loader.dataset, iq, self._result_queue, loader.collate_fn,
                loader._auto_collation, loader.batch_size, loader.drop_last, seed + wid,
                loader.worker_init_fn, wid, self._n, self._iterable))
            w.start()
            self._index_queues.append(iq)
            self._workers.append(w)
        self._alive = True
        self._first = True
        self._reset()

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._loader)

    def _reset(self):
        if not self._first:
            self._drain()
            if self._iterable:
                for iq in self._index_queues:
                    iq.put(("reset", -1, None))
        self._first = False
        self._sampler_iter = iter(self._loader._index_sampler)
        self._send_idx = 0
        self._rcvd_idx = 0
        self._buffer = {}
        self._outstanding = 0
        self._active = [True] * self._n
        self._worker_cycle = itertools.cycle(range(self._n))
        for _ in range(self._prefetch):
            self._put_task()

    def _next_worker(self):
        for _ in range(self._n):
            w = next(self._worker_cycle)
            if self._active[w]:
                return w
        return None

    def _put_task(self):
        w = self._next_worker()
        if w is None:
            return
        if self._iterable:
            task = ("next", self._send_idx, None)
        else:
            try:
                indices = next(self._sampler_iter)
            except StopIteration:
                return
            task = ("fetch", self._send_idx, indices)
        self._index_queues[w].put(task)
        self._send_idx += 1
        self._outstanding += 1

    def _get_result(self):
        start = time.monotonic()
        while True:
            try:
                r = self._result_queue.get(timeout=1.0)
                self._outstanding -= 1
                return r
            except queue.Empty:
                dead = [w.pid for w in self._workers if not w.is_alive()]
                if dead:
                    self._shutdown()
                    raise RuntimeError(f"DataLoader worker (pid(s) {', '.join(map(str, dead))}) "
                                       "exited unexpectedly") from None
                if self._timeout and time.monotonic() - start > self._timeout:
                    self._shutdown()
                    raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds") \
                        from None

    def __next__(self):
        while True:
            if self._rcvd_idx >= self._send_idx:
                if not self._loader.persistent_workers:
                    self._shutdown()
                raise StopIteration
            if self._rcvd_idx in self._buffer:
                data = self._buffer.pop(self._rcvd_idx)
                self._rcvd_idx += 1
                if isinstance(data, _w._IterableEnd):
                    self._active[data.worker_id] = False
                    continue
                self._put_task()
                if isinstance(data, _w.ExceptionWrapper):
                    self._shutdown()
                    data.reraise()
                return _w.unpack(data)
            idx, data = self._get_result()
            if idx == -1 and isinstance(data, _w.ExceptionWrapper):
                self._shutdown()
                data.reraise()
            self._buffer[idx] = data

    def _drain(self):
        # persistent workers starting a new epoch: discard what the last epoch left in flight
        while self._outstanding > 0:
            self._get_result()

    def _shutdown(self):
        if not getattr(self, "_alive", False):
            return
        self._alive = False
        for iq in self._index_queues:
            try:
                iq.put(None)
            except (OSError, ValueError):
                pass
        for w in self._workers:
            w.join(timeout=2.0)
            if w.is_alive():
                w.terminate()
        for q in self._index_queues + [self._result_queue]:
            q.cancel_join_thread()
            q.close()

    def __del__(self):
        self._shutdown()
