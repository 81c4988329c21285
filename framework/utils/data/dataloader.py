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
        if isinstance(multiprocessing_context, str):
            methods = mp.get_all_start_methods()
            if multiprocessing_context not in methods:
                raise ValueError(f"multiprocessing_context option should specify a valid start "
                                 f"method in {methods!r}, but got "
                                 f"multiprocessing_context={multiprocessing_context!r}")
            multiprocessing_context = mp.get_context(multiprocessing_context)
        if multiprocessing_context is not None and \
                not isinstance(multiprocessing_context, mp.context.BaseContext):
            raise TypeError("multiprocessing_context option should be a valid context object or a "
                            "string specifying the start method, but got "
                            f"multiprocessing_context={multiprocessing_context}")
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
        self._IterableDataset_len_called = None     # len(dataset) once len(loader) is asked
        self._initialized = True
        self.check_worker_number_rationality()

    def check_worker_number_rationality(self):
        """PyTorch's warning when more workers are asked for than this process has CPUs."""
        if not self.num_workers:
            return
        import os
        import warnings
        cpuset = hasattr(os, "sched_getaffinity")
        n = len(os.sched_getaffinity(0)) if cpuset else os.cpu_count()
        if n is None or self.num_workers > n:
            if n is None:
                sugg = ("DataLoader is not able to compute a suggested max number of worker in "
                        "current system.")
            else:
                sugg = (f"Our suggested max number of worker in current system is {n}"
                        f"{'' if cpuset else ' (`cpuset` is not taken into account)'}, which is "
                        "smaller than what this DataLoader is going to create.")
            warnings.warn(f"This DataLoader will create {self.num_workers} worker processes in "
                          f"total. {sugg} Please be aware that excessive worker creation might "
                          "get DataLoader running slow or even freeze, lower the worker number "
                          "to avoid potential slowness/freeze if necessary.", stacklevel=2)

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
            # TypeError when the dataset has no length, as in PyTorch
            n = self._IterableDataset_len_called = len(self.dataset)
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)

    def _base_seed(self):
        from ...creation import empty
        from runtime import dtypes as dt
        # random_() on int64 spans [0, 2**63), as PyTorch draws _base_seed
        return int(empty((), dtype=dt.int64).random_(generator=self.generator).item())

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if self.persistent_workers:
            if self._iterator is None:
                self.check_worker_number_rationality()
                self._iterator = _MultiProcessIter(self)
            else:
                self._iterator._reset()
            return self._iterator
        self.check_worker_number_rationality()
        return _MultiProcessIter(self)

    def __del__(self):
        it = self.__dict__.get("_iterator")
        if it is not None:
            it._shutdown()


def _warn_pin_memory(loader):
    """PyTorch's warnings at the start of each iterator (_BaseDataLoaderIter.__init__)."""
    import warnings
    from ... import accelerator
    if loader.pin_memory and loader.pin_memory_device:
        warnings.warn("pin_memory_device is deprecated, the current accelerator will be used as "
                      f"the device,ignore pin_memory_device='{loader.pin_memory_device}'.",
                      stacklevel=3)
    if loader.pin_memory and not accelerator.is_available():
        warnings.warn("'pin_memory' argument is set as true but no accelerator is found, then "
                      "device pinned memory won't be used.", stacklevel=3)


class _BaseIter:
    def _start_epoch(self, loader):
        self._num_yielded = 0
        self._len_called = loader._IterableDataset_len_called

    def __next__(self):
        data = self._next_data()
        self._num_yielded += 1
        # PyTorch compares batches yielded with the dataset's reported length (in samples)
        if self._loader._is_iterable and self._len_called is not None \
                and self._num_yielded > self._len_called:
            import warnings
            msg = (f"Length of IterableDataset {self._loader.dataset} was reported to be "
                   f"{self._len_called}(when accessing len(dataloader)), but "
                   f"{self._num_yielded} samples have been fetched. ")
            if self._loader.num_workers > 0:
                msg += ("For multiprocessing data-loading, this could be caused by not properly "
                        "configuring the IterableDataset replica at each worker. Please see "
                        "https://pytorch.org/docs/stable/data.html#torch.utils.data.IterableDataset"
                        " for examples.")
            warnings.warn(msg, stacklevel=2)
        return data


class _SingleProcessIter(_BaseIter):
    def __init__(self, loader):
        _warn_pin_memory(loader)
        if loader.timeout != 0:
            raise AssertionError("_SingleProcessDataLoaderIter requires timeout == 0")
        self._start_epoch(loader)
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

    def _next_data(self):
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


class _MultiProcessIter(_BaseIter):
    def __init__(self, loader):
        _warn_pin_memory(loader)
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
        self._start_epoch(self._loader)
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

    def _next_data(self):
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
