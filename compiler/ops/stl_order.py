"""Which index PyTorch's CPU kernels return among equal keys. sort(stable=False) is libstdc++'s
std::sort over (value, index) pairs, topk its partial_sort / nth_element (+ sort), kthvalue
ATen's quick_select_template, mode a std::sort by value then the last index of the longest run:
none is stable, so the index chosen among ties is whatever those algorithms leave. These are
ports of them, step for step, run on the rows that have ties (elsewhere every algorithm agrees
and NumPy's sort answers). Keys are dense ranks with NaN above every number (PyTorch's
NaN-as-largest comparators); the std algorithms compare with `<` only, so a descending
comparator gets negated ranks."""
import numpy as np

_THRESHOLD = 16                 # libstdc++'s _S_threshold
# the ports run in Python (~10 us an element): past this many elements in rows with ties, a
# call answers NumPy's stable order instead (README: known limits)
LIMIT = 1 << 14


def _lg(n):
    return int(n).bit_length() - 1


# ---- libstdc++ <bits/stl_algo.h>, <bits/stl_heap.h> on parallel lists k (keys), v (indices) --

def _move_median_to_first(k, v, r, a, b, c):
    if k[a] < k[b]:
        if k[b] < k[c]:
            m = b
        elif k[a] < k[c]:
            m = c
        else:
            m = a
    elif k[a] < k[c]:
        m = a
    elif k[b] < k[c]:
        m = c
    else:
        m = b
    k[r], k[m] = k[m], k[r]
    v[r], v[m] = v[m], v[r]


def _unguarded_partition(k, v, first, last, pivot):
    p = k[pivot]
    while True:
        while k[first] < p:
            first += 1
        last -= 1
        while p < k[last]:
            last -= 1
        if not first < last:
            return first
        k[first], k[last] = k[last], k[first]
        v[first], v[last] = v[last], v[first]
        first += 1


def _partition_pivot(k, v, first, last):
    _move_median_to_first(k, v, first, first + 1, first + (last - first) // 2, last - 1)
    return _unguarded_partition(k, v, first + 1, last, first)


def _linear_insert(k, v, last):
    key, val = k[last], v[last]
    nxt = last - 1
    while key < k[nxt]:
        k[last], v[last] = k[nxt], v[nxt]
        last = nxt
        nxt -= 1
    k[last], v[last] = key, val


def _insertion_sort(k, v, first, last):
    if first == last:
        return
    for i in range(first + 1, last):
        if k[i] < k[first]:
            key, val = k[i], v[i]
            k[first + 1:i + 1] = k[first:i]
            v[first + 1:i + 1] = v[first:i]
            k[first], v[first] = key, val
        else:
            _linear_insert(k, v, i)


def _adjust_heap(k, v, first, hole, n, key, val):
    top = hole
    child = hole
    while child < (n - 1) // 2:
        child = 2 * (child + 1)
        if k[first + child] < k[first + child - 1]:
            child -= 1
        k[first + hole], v[first + hole] = k[first + child], v[first + child]
        hole = child
    if n & 1 == 0 and child == (n - 2) // 2:
        child = 2 * (child + 1)
        k[first + hole], v[first + hole] = k[first + child - 1], v[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2          # __push_heap
    while hole > top and k[first + parent] < key:
        k[first + hole], v[first + hole] = k[first + parent], v[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    k[first + hole], v[first + hole] = key, val


def _make_heap(k, v, first, last):
    n = last - first
    if n < 2:
        return
    parent = (n - 2) // 2
    while True:
        _adjust_heap(k, v, first, parent, n, k[first + parent], v[first + parent])
        if parent == 0:
            return
        parent -= 1


def _pop_heap(k, v, first, last, result):
    key, val = k[result], v[result]
    k[result], v[result] = k[first], v[first]
    _adjust_heap(k, v, first, 0, last - first, key, val)


def _heap_select(k, v, first, middle, last):
    _make_heap(k, v, first, middle)
    for i in range(middle, last):
        if k[i] < k[first]:
            _pop_heap(k, v, first, middle, i)


def _sort_heap(k, v, first, last):
    while last - first > 1:
        last -= 1
        _pop_heap(k, v, first, last, last)


def partial_sort(k, v, first, middle, last):
    _heap_select(k, v, first, middle, last)
    _sort_heap(k, v, first, middle)


def _introsort_loop(k, v, first, last, depth):
    while last - first > _THRESHOLD:
        if depth == 0:
            partial_sort(k, v, first, last, last)
            return
        depth -= 1
        cut = _partition_pivot(k, v, first, last)
        _introsort_loop(k, v, cut, last, depth)
        last = cut


def std_sort(k, v, first, last):
    if last - first < 2:
        return
    _introsort_loop(k, v, first, last, 2 * _lg(last - first))
    if last - first > _THRESHOLD:
        _insertion_sort(k, v, first, first + _THRESHOLD)
        for i in range(first + _THRESHOLD, last):
            _linear_insert(k, v, i)
    else:
        _insertion_sort(k, v, first, last)


def nth_element(k, v, first, nth, last):
    if first == last or nth == last:
        return
    depth = 2 * _lg(last - first)
    while last - first > 3:
        if depth == 0:
            _heap_select(k, v, first, nth + 1, last)
            k[first], k[nth] = k[nth], k[first]
            v[first], v[nth] = v[nth], v[first]
            return
        depth -= 1
        cut = _partition_pivot(k, v, first, last)
        if cut <= nth:
            first = cut
        else:
            last = cut
    _insertion_sort(k, v, first, last)


def quick_select(k, v, kth):
    """ATen's quick_select_template (SortingUtils.h) with its comparator gt_or_nan: `>` on
    the ranks."""
    L, R = 0, len(k) - 1

    def swap(i, j):
        k[i], k[j] = k[j], k[i]
        v[i], v[j] = v[j], v[i]
    while True:
        if R <= L:
            return
        if R == L + 1:
            if k[L] > k[R]:
                swap(L, R)
            return
        P = L + (R - L) // 2
        swap(P, L + 1)
        if k[L + 1] > k[R]:
            swap(L + 1, R)
        if k[L] > k[R]:
            swap(L, R)
        if k[L + 1] > k[L]:
            swap(L + 1, L)
        i, j = L + 1, R
        piv = k[L]
        while True:
            i += 1
            while piv > k[i]:
                i += 1
            j -= 1
            while k[j] > piv:
                j -= 1
            if j < i:
                break
            swap(i, j)
        swap(L, j)
        if j <= kth:
            L = i
        if j >= kth:
            R = j - 1


# ---- rows ------------------------------------------------------------------------------------

def _rows(x, dim):
    """x with dim last, as (rows, n), and the shape to put results back."""
    xm = np.moveaxis(x, dim, -1)
    return xm.reshape(int(np.prod(xm.shape[:-1])), xm.shape[-1]), xm.shape


def _ranks(row):
    """Dense ranks of a row's values, NaN above every number, as Python ints."""
    return np.unique(row, return_inverse=True)[1].reshape(-1).tolist()


def _tied(flat):
    """Per row: whether two keys compare equal (two NaNs included)."""
    if flat.shape[-1] < 2:
        return np.zeros(flat.shape[0], bool)
    s = np.sort(flat, axis=-1)
    eq = s[:, 1:] == s[:, :-1]
    if s.dtype.kind in "fc":
        eq |= np.isnan(s[:, 1:]) & np.isnan(s[:, :-1])
    return eq.any(axis=-1)


def _back(res, shape, dim):
    return np.moveaxis(res.reshape(shape[:-1] + res.shape[-1:]), -1, dim)


def sort_indices(x, dim, descending, fast):
    """torch.sort(stable=False)'s indices on the cpu: std::sort. `fast(x, dim, descending)`:
    a stable sort, the answer of rows without ties."""
    flat, shape = _rows(x, dim)
    res = np.ascontiguousarray(_rows(fast(x, dim, descending), dim)[0])
    n = flat.shape[-1]
    if n <= _THRESHOLD:
        return _back(res, shape, dim)       # insertion sort: stable
    rows = np.flatnonzero(_tied(flat))
    for r in rows if len(rows) * n <= LIMIT else ():
        k = _ranks(flat[r])
        if descending:
            k = [-a for a in k]
        v = list(range(n))
        std_sort(k, v, 0, n)
        res[r] = v
    return _back(res, shape, dim)


def topk_indices(x, kk, dim, largest, sorted_):
    """torch.topk's indices on the cpu (TopKImpl.h): partial_sort when k * 64 <= n, else
    nth_element at k - 1 and (sorted) std::sort of the first k - 1."""
    flat, shape = _rows(x, dim)
    n = flat.shape[-1]
    res = np.empty((flat.shape[0], kk), np.int64)
    if kk == 0:
        return _back(res, shape, dim)
    partial = kk * 64 <= n
    tied = _tied(flat)
    if (tied.sum() if partial or sorted_ else len(tied)) * n > LIMIT:
        tied[:] = False
        partial = True
    for r in range(flat.shape[0]):
        if (partial or sorted_) and not tied[r]:       # one answer: the k best, in order
            row = flat[r][::-1] if largest else flat[r]     # (NaN last: the largest)
            o = np.argsort(row, kind="stable")
            res[r] = ((n - 1) - o[::-1] if largest else o)[:kk]
            continue
        k = _ranks(flat[r])
        if largest:
            k = [-a for a in k]
        v = list(range(n))
        if partial:
            partial_sort(k, v, 0, kk, n)
        else:
            nth_element(k, v, 0, kk - 1, n)
            if sorted_:
                std_sort(k, v, 0, kk - 1)
        res[r] = v[:kk]
    return _back(res, shape, dim)


def kth_indices(x, kk, dim):
    """torch.kthvalue's index on the cpu: quick_select_template at k - 1 (keepdim shape)."""
    flat, shape = _rows(x, dim)
    res = np.empty((flat.shape[0], 1), np.int64)
    tied = _tied(flat)
    if tied.sum() * flat.shape[-1] > LIMIT:
        tied[:] = False
    for r in range(flat.shape[0]):
        if not tied[r]:
            res[r, 0] = np.argsort(flat[r], kind="stable")[kk - 1]
            continue
        k = _ranks(flat[r])
        v = list(range(len(k)))
        quick_select(k, v, kk - 1)
        res[r, 0] = v[kk - 1]
    return _back(res, shape, dim)


def mode_indices(x, dim):
    """torch.mode's index on the cpu: (value, index) pairs std::sort-ed by value with a plain
    `<` (NaN compares false both ways), then the index ending the first longest run of equal
    values (`!=` ends a run, so every NaN is a run of its own)."""
    flat, shape = _rows(x, dim)
    res = np.empty((flat.shape[0], 1), np.int64)
    n = flat.shape[-1]
    nan = np.isnan(flat).any(axis=-1) if flat.dtype.kind == "f" else np.zeros(len(flat), bool)
    slow = _tied(flat) | nan
    if slow.sum() * n > LIMIT:
        slow = nan                      # (NaN rows: NumPy's order has no answer to give)
    for r in range(flat.shape[0]):
        row = flat[r]
        if not slow[r]:
            # one std::sort answer but for the order within runs: the smallest most frequent
            # value (NumPy's stable order: its last index)
            o = np.argsort(row, kind="stable")
            srt = row[o]
            ends = np.flatnonzero(np.append(srt[1:] != srt[:-1], True))
            runs = np.diff(np.append(-1, ends))
            res[r, 0] = o[ends[np.argmax(runs)]]
            continue
        k = row.tolist()
        v = list(range(n))
        std_sort(k, v, 0, n)
        best, run, bi = 0, 0, 0
        for i in range(n):
            run += 1
            if i == n - 1 or k[i] != k[i + 1]:
                if run > best:
                    best, bi = run, v[i]
                run = 0
        res[r, 0] = bi
    return _back(res, shape, dim)


def all_equal_nth(n, nth):
    """Which position std::nth_element leaves at `nth` when every key is equivalent (ATen's
    nanmedian of an all-NaN row: its comparator orders NaNs not at all)."""
    k, v = [0] * n, list(range(n))
    nth_element(k, v, 0, nth, n)
    return v[nth]
