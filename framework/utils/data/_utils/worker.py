"""Worker processes for DataLoader(num_workers>0).

Each worker runs _worker_loop: it receives index lists (map-style) or 'next' requests
(iterable-style), fetches and collates, and sends the batch back with every Tensor replaced by
its NumPy array, so nothing but plain arrays crosses the process boundary.
"""
import queue
import random
import sys
import traceback

import numpy as np

from ....tensor import Tensor


class WorkerInfo:
    def __init__(self, id, num_workers, seed, dataset):
        self.id, self.num_workers, self.seed, self.dataset = id, num_workers, seed, dataset

    def __repr__(self):
        return (f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed}, "
                f"dataset={self.dataset!r})")


_worker_info = None


def get_worker_info():
    """WorkerInfo inside a DataLoader worker process, None in the main process."""
    return _worker_info


class _PackedTensor:
    __slots__ = ("arr", "dtype", "rg")

    def __init__(self, arr, dtype, rg):
        self.arr, self.dtype, self.rg = arr, dtype, rg


def pack(obj):
    if isinstance(obj, Tensor):
        a = np.asarray(obj._data, order="C")      # (ascontiguousarray makes 0-d 1-d)
        return _PackedTensor(a, obj.dtype.name, obj.requires_grad and obj.is_leaf)
    if isinstance(obj, dict):
        try:
            return type(obj)((k, pack(v)) for k, v in obj.items())
        except TypeError:
            return {k: pack(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(pack(v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(pack(v) for v in obj)
    return obj


def unpack(obj):
    if isinstance(obj, _PackedTensor):
        from runtime import dtypes as dt
        from ...._dispatch import wrap
        t = wrap(obj.arr, dt._dtype_by_name(obj.dtype))
        if obj.rg:
            t.requires_grad_(True)
        return t
    if isinstance(obj, dict):
        try:
            return type(obj)((k, unpack(v)) for k, v in obj.items())
        except TypeError:
            return {k: unpack(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(unpack(v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(unpack(v) for v in obj)
    return obj


class ExceptionWrapper:
    """An exception from a worker, re-raised in the main process with the worker's traceback."""

    def __init__(self, exc_info, where):
        self.exc_type = exc_info[0]
        self.msg = "".join(traceback.format_exception(*exc_info))
        self.where = where

    def reraise(self):
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.msg}"
        if self.exc_type is KeyError:
            # str(KeyError(x)) is repr(x): a str whose repr is itself keeps the message readable
            msg = _KeyErrorMessage(msg)
        try:
            exc = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        raise exc


class _KeyErrorMessage(str):
    def __repr__(self):
        return self


class _IterableEnd:
    def __init__(self, worker_id):
        self.worker_id = worker_id


def _worker_loop(dataset, index_queue, result_queue, collate_fn, auto_collation, batch_size,
                 drop_last, seed, init_fn, worker_id, num_workers, is_iterable):
    global _worker_info
    from .... import manual_seed
    try:
        manual_seed(seed)
        random.seed(seed)
        _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
        if init_fn is not None:
            init_fn(worker_id)
    except Exception:
        result_queue.put((-1, ExceptionWrapper(sys.exc_info(),
                                               f"in DataLoader worker process {worker_id}")))
        return
    it = iter(dataset) if is_iterable else None
    exhausted = False
    while True:
        try:
            msg = index_queue.get(timeout=5.0)
        except queue.Empty:
            continue
        if msg is None:
            break
        kind, send_idx, payload = msg
        if kind == "reset":
            it = iter(dataset)
            exhausted = False
            continue
        try:
            if kind == "fetch":
                if auto_collation:
                    data = collate_fn([dataset[i] for i in payload])
                else:
                    data = collate_fn(dataset[payload])
            else:       # "next" from an iterable dataset
                if exhausted:
                    result_queue.put((send_idx, _IterableEnd(worker_id)))
                    continue
                if auto_collation:
                    items = []
                    for item in it:
                        items.append(item)
                        if len(items) == batch_size:
                            break
                    if not items or (drop_last and len(items) < batch_size):
                        exhausted = True
                        result_queue.put((send_idx, _IterableEnd(worker_id)))
                        continue
                    data = collate_fn(items)
                else:
                    try:
                        data = collate_fn(next(it))
                    except StopIteration:
                        exhausted = True
                        result_queue.put((send_idx, _IterableEnd(worker_id)))
                        continue
            result_queue.put((send_idx, pack(data)))
        except Exception:
            result_queue.put((send_idx, ExceptionWrapper(
                sys.exc_info(), f"in DataLoader worker process {worker_id}")))
