"""Tensor.untyped_storage() / Tensor.storage(): torch.UntypedStorage, torch.TypedStorage and the
legacy torch.FloatStorage & co., against NumPy views of the same memory and PyTorch 2.13."""
import copy
import warnings

import numpy as np
import pytest

import framework as torch
from framework import _storage
from conftest import to_np

TYPED_WARNING = ("TypedStorage is deprecated. It will be removed in the future and UntypedStorage "
                 "will be the only storage class. This should only matter to you if you are "
                 "using storages directly.  To access UntypedStorage directly, use "
                 "tensor.untyped_storage() instead of tensor.storage()")


def cpu(*a, **k):
    return torch.tensor(*a, device="cpu", **k)


@pytest.fixture
def quiet():
    """TypedStorage warns (once); the tests that do not look at that silence it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_data_ptr_relations_across_views():
    y = torch.arange(10.0, device="cpu")
    u = y.untyped_storage()
    assert u.data_ptr() == y.data_ptr() and u.nbytes() == 40
    views = {"slice": y[3:7], "step": y[1::3], "row": y.view(2, 5)[1], "t": y.view(2, 5).t(),
             "detach": y[2:].detach(), "expand": y[:1].expand(4), "unsqueeze": y.unsqueeze(0),
             "reshape": y.reshape(5, 2)[2:], "nested": y[2:][1:][::2]}
    for name, v in views.items():
        s = v.untyped_storage()
        assert s is u, name                              # one storage object per base
        assert s.data_ptr() == v.data_ptr() - v.storage_offset() * v.element_size(), name
        assert s.nbytes() == 40 and len(s) == 40 and s.size() == 40, name
    assert torch.zeros(3, device="cpu").untyped_storage().data_ptr() != u.data_ptr()
    c = y[3:].clone()
    assert c.untyped_storage().nbytes() == 28 and c.untyped_storage() is not u
    p = torch.nn.Parameter(torch.zeros(3, device="cpu"))
    assert p.untyped_storage().data_ptr() == p.data_ptr()


def test_sizes_and_dtypes(quiet):
    for dtype, isz in [(torch.bool, 1), (torch.uint8, 1), (torch.int16, 2), (torch.float16, 2),
                       (torch.bfloat16, 2), (torch.int32, 4), (torch.float32, 4),
                       (torch.int64, 8), (torch.float64, 8), (torch.complex128, 16)]:
        x = torch.zeros(2, 3, dtype=dtype, device="cpu")
        u, s = x[1].untyped_storage(), x[1].storage()
        assert (u.nbytes(), u.element_size()) == (6 * isz, 1)
        assert (s.size(), len(s), s.nbytes(), s.element_size()) == (6, 6, 6 * isz, isz)
        assert s.dtype is dtype and str(s.device) == "cpu" and str(u.device) == "cpu"
        assert s.data_ptr() == u.data_ptr() == x.data_ptr()
    # a dtype view: the bytes are the base's, the typed size counts the view's elements
    b = torch.zeros(4, 4, dtype=torch.uint8, device="cpu")
    assert b.view(torch.int32).storage().size() == 4 and b.view(torch.int32).storage().nbytes() \
        == 16
    assert torch.tensor(3.0, device="cpu").untyped_storage().nbytes() == 4
    assert torch.zeros(0, device="cpu").untyped_storage().nbytes() == 0


def test_writes_through_storage_reach_tensor_and_views(quiet):
    z = torch.zeros(2, 3, device="cpu")
    row = z[1]
    st = z.storage()
    st[4] = 7.5
    assert z.tolist() == [[0, 0, 0], [0, 7.5, 0]] and row.tolist() == [0, 7.5, 0]
    u = row.untyped_storage()
    u[0:4] = 0                        # float32 1.0 is 00 00 80 3f (little-endian)
    u[2], u[3] = 0x80, 0x3F
    assert z[0, 0].item() == 1.0
    u[4:8] = 255
    assert np.isnan(z[0, 1].item())
    st[-1] = 2.0                       # typed storage wraps negative indices
    assert row[2].item() == 2.0
    st[0:2] = 5                        # a slice assignment takes a scalar
    assert z[0].tolist()[:2] == [5.0, 5.0]
    # the storage is a view of the memory, not a copy: NumPy sees the same writes
    np.testing.assert_array_equal(to_np(z).reshape(-1), np.frombuffer(bytes(u.tolist()),
                                                                      np.float32))


def test_tolist_and_item_types(quiet):
    x = cpu([1.0, -2.0])
    assert x.untyped_storage().tolist() == list(np.array([1.0, -2.0], np.float32).tobytes())
    assert list(x.untyped_storage())[:4] == [0, 0, 128, 63]
    assert x.storage().tolist() == [1.0, -2.0]
    assert cpu([True, False]).storage().tolist() == [True, False]
    assert cpu([1 + 2j]).storage().tolist() == [1 + 2j]
    assert cpu([1.5], dtype=torch.bfloat16).storage().tolist() == [1.5]
    s = cpu([3, 4], dtype=torch.int16).storage()
    assert s[1] == 4 and type(s[1]) is int and type(cpu([1.5]).storage()[0]) is float
    assert x.untyped_storage()[3] == 63 and type(x.untyped_storage()[3]) is int


def test_fill_copy_clone(quiet):
    x = torch.arange(6, dtype=torch.int16, device="cpu")
    u, s = x.untyped_storage(), x.storage()
    assert u.fill_(1) is u and x.tolist() == [257] * 6
    assert u.fill_(-1) is u and x.tolist() == [-1] * 6           # bytes: taken mod 256
    assert s.fill_(4) is s and x.tolist() == [4] * 6
    a, b = cpu([1.0, 2.0, 3.0]), torch.zeros(3, device="cpu")
    assert b.untyped_storage().copy_(a.untyped_storage()) is b.untyped_storage()
    assert b.tolist() == [1.0, 2.0, 3.0]
    # TypedStorage.copy_ copies bytes (as PyTorch's): 2 doubles fill 4 floats' memory
    d, f = cpu([1.0, 2.0], dtype=torch.float64), torch.zeros(4, device="cpu")
    f.storage().copy_(d.storage())
    np.testing.assert_array_equal(to_np(f), np.array([1.0, 2.0]).view(np.float32))
    with pytest.raises(RuntimeError, match="size does not match, self was 12 bytes but src was 8 "
                                           "bytes"):
        x.untyped_storage().copy_(torch.zeros(2, device="cpu").untyped_storage())
    with pytest.raises(TypeError, match=r"copy_\(\): argument 'src' \(position 1\) must be "
                                        r"torch.Storage, not Tensor"):
        x.untyped_storage().copy_(x)
    c = x.untyped_storage().clone()
    assert c.data_ptr() != u.data_ptr() and c.tolist() == u.tolist()
    c.fill_(0)
    assert x.tolist() == [4] * 6                                   # the clone is separate
    sc = s.clone()
    assert sc.dtype is torch.int16 and sc.data_ptr() != s.data_ptr() and sc.tolist() == [4] * 6
    assert u.cpu() is u and s.cpu().data_ptr() == s.data_ptr()
    assert u.to(device="cpu") is u
    # copy.copy clones; deepcopy clones once per storage (two references stay one)
    assert copy.copy(u).data_ptr() != u.data_ptr()
    d1, d2 = copy.deepcopy([u, u])
    assert d1 is d2 and d1.data_ptr() != u.data_ptr() and d1.tolist() == u.tolist()
    assert x._version == 0          # storage writes bypass the version counter (as PyTorch)


def test_index_errors(quiet):
    x = torch.arange(6, dtype=torch.int16, device="cpu")
    u, s = x.untyped_storage(), x.storage()
    assert u[-1] == 0 and u[2:6].nbytes() == 4 and u[10:20].nbytes() == 2
    sl = u[2:4]
    sl[0] = 9                                                       # a slice shares memory
    assert x[1].item() == 9 and sl.data_ptr() == u.data_ptr() + 2
    with pytest.raises(IndexError, match="index 12 out of range for storage of size 12"):
        u[12]
    with pytest.raises(IndexError, match="index -1 out of range for storage of size 12"):
        u[-13]
    for bad in [True, 1.5, "a"]:
        with pytest.raises(TypeError, match=f"can't index a torch.UntypedStorage with "
                                            f"{type(bad).__name__}"):
            u[bad]
    with pytest.raises(RuntimeError, match="Trying to slice with a step of 2, but only a step of "
                                           "1 is supported"):
        u[0:8:2]
    with pytest.raises(RuntimeError, match="out of bounds"):
        u[12] = 1
    with pytest.raises(RuntimeError, match="out of bounds"):
        u[-1] = 1                                  # (PyTorch does not wrap negatives here)
    with pytest.raises(RuntimeError, match="can only set storage content with a int types, but "
                                           "got float instead"):
        u[0] = 2.5
    with pytest.raises(RuntimeError, match="fill_ expects int, but got float"):
        u.fill_(2.5)
    u[0] = 300                                     # mod 256
    assert u[0] == 44
    with pytest.raises(IndexError, match="index 6 out of range for storage of size 6"):
        s[6]
    with pytest.raises(RuntimeError, match="slices are only supported in "
                                           "UntypedStorage.__getitem__"):
        s[1:3]
    with pytest.raises(RuntimeError, match="can't index a <class 'torch.storage.TypedStorage'> "
                                           "with <class 'float'>"):
        s[1.0]
    with pytest.raises(RuntimeError, match="cannot set item with value type <class "
                                           "'torch.storage.TypedStorage'>"):
        s[0] = s
    with pytest.raises(RuntimeError, match="value cannot be converted to type int16_t without "
                                           "overflow"):
        s[0] = 70000


def test_storage_warning():
    x = torch.zeros(3, device="cpu")
    _storage._reset_warn_typed_storage_removal()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        s = x.storage()
        s.size(), s[0], x.storage(), x.untyped_storage().nbytes()
    assert [(m.category, str(m.message)) for m in w] == [(UserWarning, TYPED_WARNING)]
    assert w[0].filename == __file__                          # it names the caller's line
    _storage._reset_warn_typed_storage_removal()
    with warnings.catch_warnings(record=True) as w:          # the first TypedStorage use warns
        warnings.simplefilter("always")
        s.tolist()
        torch.FloatStorage(2)
    assert len(w) == 1 and w[0].filename == __file__
    _storage._set_always_warn_typed_storage_removal(True)
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            x.storage().size()
            x.untyped_storage().tolist()                     # untyped storages never warn
    finally:
        _storage._set_always_warn_typed_storage_removal(False)
    assert len(w) == 2 and all(str(m.message) == TYPED_WARNING for m in w)


def test_constructors_and_legacy_classes(quiet):
    assert torch.UntypedStorage is _storage.UntypedStorage
    assert torch.TypedStorage is _storage.TypedStorage
    assert torch.UntypedStorage(3).tolist() == [0, 0, 0] and torch.UntypedStorage().nbytes() == 0
    assert torch.UntypedStorage([1, 2, 300]).tolist() == [1, 2, 44]
    with pytest.raises(RuntimeError, match="Expected a sequence type, but got float"):
        torch.UntypedStorage(2.0)
    assert torch.TypedStorage([1, 2.5], dtype=torch.int32).tolist() == [1, 2]
    t = torch.TypedStorage()
    assert t.dtype is torch.float32 and t.size() == 0
    assert torch.TypedStorage(3, dtype=torch.int64).nbytes() == 24
    w = torch.TypedStorage(wrap_storage=torch.UntypedStorage(5), dtype=torch.int16)
    assert w.size() == 2 and w.nbytes() == 5
    with pytest.raises(RuntimeError, match="Argument 'dtype' must be specified"):
        torch.TypedStorage(wrap_storage=torch.UntypedStorage(4))
    f = torch.FloatStorage([1, 2])
    assert type(f) is torch.TypedStorage and f.dtype is torch.float32 and f.tolist() == [1.0, 2.0]
    assert isinstance(f, torch.FloatStorage) and not isinstance(f, torch.DoubleStorage)
    assert isinstance(cpu([1], dtype=torch.int64).storage(), torch.LongStorage)
    assert torch.FloatStorage(wrap_storage=torch.UntypedStorage(8)).size() == 2
    with pytest.raises(RuntimeError, match="Keyword argument 'dtype' cannot be specified"):
        torch.FloatStorage(2, dtype=torch.float64)
    assert cpu([1], dtype=torch.int16).storage().type() == "torch.ShortStorage"
    assert cpu([1], dtype=torch.uint8).storage().type() == "torch.ByteStorage"
    assert cpu([1], dtype=torch.int8).storage().type() == "torch.CharStorage"
    assert cpu([1j]).storage().type() == "torch.ComplexFloatStorage"
    assert cpu([1], dtype=torch.uint16).storage().type() == "torch.storage.TypedStorage"
    assert torch.UntypedStorage(1).type() == "torch.storage.UntypedStorage"
    assert torch.is_storage(f) and torch.is_storage(f.untyped()) and not torch.is_storage(cpu(1))
    assert str(cpu([1.5, 2.0]).storage()) == (
        " 1.5\n 2.0\n[torch.storage.TypedStorage(dtype=torch.float32, device=cpu) of size 2]")
    assert repr(cpu([1, 2], dtype=torch.uint8).untyped_storage()) == (
        " 1\n 2\n[torch.storage.UntypedStorage(device=cpu) of size 2]")


def test_resize_share_and_pickle(quiet):
    s = torch.UntypedStorage([1, 2, 3, 4])
    assert s.resizable() and s.resize_(6) is s and s.tolist() == [1, 2, 3, 4, 0, 0]
    assert s.resize_(2).tolist() == [1, 2]
    f = torch.FloatStorage([1, 2])
    assert f.resize_(3) is None and f.size() == 3 and f.tolist()[:2] == [1.0, 2.0]
    x = torch.zeros(3, device="cpu")
    assert not x.untyped_storage().resizable()
    with pytest.raises(NotImplementedError, match="not the storage of a tensor"):
        x.untyped_storage().resize_(0)
    assert x.untyped_storage().is_shared() is False and x.storage().is_shared() is False
    if torch.zeros(1, device="cpu").share_memory_().is_shared():    # a real Tensor.share_memory_
        v = x[1:]
        u = x.untyped_storage()
        assert u.share_memory_() is u and u.is_shared() and x.is_shared() and v.is_shared()
        assert x.untyped_storage() is u and u.data_ptr() == x.data_ptr()   # u moved with x
        u[4:8] = 0
        u[6], u[7] = 0x80, 0x3F
        assert x.tolist() == [0.0, 1.0, 0.0] and v.tolist() == [1.0, 0.0]
    else:
        with pytest.raises(NotImplementedError, match="cannot move a storage to shared memory"):
            x.untyped_storage().share_memory_()
    import pickle
    u = cpu([1.0, 2.0]).untyped_storage()
    back = pickle.loads(pickle.dumps(u))
    assert back.tolist() == u.tolist() and back.data_ptr() != u.data_ptr()
    tb = pickle.loads(pickle.dumps(cpu([3, 4], dtype=torch.int32).storage()))
    assert tb.dtype is torch.int32 and tb.tolist() == [3, 4]


def test_against_torch():
    real = pytest.importorskip("torch")
    results = {}
    for lib in (torch, real):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = lib.arange(12, dtype=lib.float32).reshape(3, 4)
            if lib is torch:
                x = x.to("cpu")
            v = x[1:, 1:]
            u, s = v.untyped_storage(), v.storage()
            r = [u.data_ptr() == v.data_ptr() - v.storage_offset() * 4, u.nbytes(), len(u),
                 s.size(), s.nbytes(), s.element_size(), str(s.dtype), str(u.device),
                 u.tolist()[4:8], s.tolist(), u[-1], s[-1], s.type(), u.type(), u.is_shared()]
            s[5] = 100.5
            u[0:4] = 0
            r += [x.tolist(), v.tolist()]
            z = lib.zeros(3, 4)
            z.storage().copy_(x.storage())
            r += [z.tolist(), u[2:6].nbytes(), u[40:60].nbytes(), str(s)[-70:], repr(u)[-60:]]
            r += [lib.UntypedStorage([1, 2, 300]).tolist(), lib.LongStorage([1, 2]).type(),
                  isinstance(lib.tensor([1]).storage(), lib.LongStorage),
                  lib.TypedStorage([1, 2.5], dtype=lib.int32).tolist()]
            for bad in (lambda: u[100], lambda: u[1.5], lambda: s[1:2], lambda: u.fill_(1.5),
                        lambda: u.copy_(lib.zeros(1).untyped_storage()), lambda: u.__setitem__(
                            48, 0)):
                try:
                    bad()
                    r.append(None)
                except Exception as e:
                    r.append((type(e).__name__, str(e)))
        results[lib] = r
    assert results[torch] == results[real]


# ---- Tensor.set_ with a Storage ----------------------------------------------------------------

SET_FORMS = (" * ()\n * (torch.Storage source)\n * (torch.Storage source, int storage_offset, "
             "tuple of ints size, tuple of ints stride = None)\n * (Tensor source)\n * (Tensor "
             "source, int storage_offset, tuple of ints size, tuple of ints stride = None)\n")


def _layout(t):
    return tuple(t.shape), t.stride(), t.storage_offset()


def test_set_to_a_storage_shares_its_memory(quiet):
    x = torch.arange(12, dtype=torch.float32, device="cpu")
    u = x.untyped_storage()
    t = torch.empty(0, device="cpu")
    v = t._version
    assert t.set_(u) is t and _layout(t) == ((12,), (1,), 0) and t._version == v + 1
    assert t.tolist() == x.tolist() and t.data_ptr() == x.data_ptr()
    assert t.untyped_storage() is u
    t[0] = 100.0
    x[1] = -1.0
    assert x[0].item() == 100.0 and t[1].item() == -1.0
    # a window: storage_offset, size and (contiguous when not given) stride
    w = torch.empty(0, device="cpu").set_(u, 2, (2, 3))
    assert _layout(w) == ((2, 3), (3, 1), 2) and w.tolist() == [[2., 3., 4.], [5., 6., 7.]]
    w = torch.empty(0, device="cpu").set_(x.storage(), 1, (3, 2), (1, 3))
    assert _layout(w) == ((3, 2), (1, 3), 1) and w.tolist() == [[-1., 4.], [2., 5.], [3., 6.]]
    w.fill_(0.5)
    assert x.tolist() == [100., 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 7., 8., 9., 10., 11.]
    w = torch.empty(0, device="cpu").set_(source=u, storage_offset=8, size=[2], stride=[3])
    assert _layout(w) == ((2,), (3,), 8) and w.tolist() == [8., 11.]
    w = torch.empty(0, device="cpu").set_(u, np.int64(5), torch.Size([]))
    assert _layout(w) == ((), (), 5) and w.item() == 0.5
    # a view's storage is its base's: all of it
    w = torch.empty(0, device="cpu").set_(x[3:].storage())
    assert _layout(w) == ((12,), (1,), 0) and w.data_ptr() == x.data_ptr()


def test_set_to_a_storage_reinterprets_and_slices(quiet):
    x = torch.arange(12, dtype=torch.float32, device="cpu")
    u = x.untyped_storage()
    bits = np.arange(12, dtype=np.float32).view(np.int32)
    i = torch.empty(0, dtype=torch.int32, device="cpu").set_(u)     # the same bytes as int32
    assert _layout(i) == ((12,), (1,), 0) and i.tolist() == bits.tolist()
    i[1] = 0
    assert x[1].item() == 0.0
    h = torch.empty(0, dtype=torch.float64, device="cpu").set_(u, 1, (2,))
    assert h.storage_offset() == 1 and h.data_ptr() == x.data_ptr() + 8
    assert h.tolist() == np.arange(12, dtype=np.float32).view(np.float64)[1:3].tolist()
    # 12 bytes hold one int64: the storage keeps its 12 bytes
    l8 = torch.empty(0, dtype=torch.int64, device="cpu").set_(
        torch.arange(3, dtype=torch.float32, device="cpu").untyped_storage())
    assert l8.shape == (1,) and l8.untyped_storage().nbytes() == 12
    # a slice of a storage starts where the slice does
    s = torch.empty(0, device="cpu").set_(u[8:24])
    assert _layout(s) == ((4,), (1,), 0) and s.tolist() == [2., 3., 4., 5.]
    assert s.data_ptr() == x.data_ptr() + 8 and s.untyped_storage().nbytes() == 16
    s[0] = 55.0
    assert x[2].item() == 55.0
    # a storage made by a constructor; one too small for the window grows (zero-filled in Kiln)
    c = torch.UntypedStorage(8)
    f = torch.empty(0, device="cpu").set_(c)
    assert f.tolist() == [0.0, 0.0] and f.untyped_storage() is c
    f[1] = 1.0
    assert list(c) == [0, 0, 0, 0, 0, 0, 128, 63]
    g = torch.empty(0, device="cpu").set_(torch.UntypedStorage(8), 0, (3,))
    assert g.tolist() == [0.0, 0.0, 0.0] and g.untyped_storage().nbytes() == 12
    assert torch.empty(0, device="cpu").set_(torch.FloatStorage([1, 2, 3])).tolist() == [1, 2, 3]
    # no elements: any offset, even past the end
    e = torch.empty(0, device="cpu").set_(u, 100, (0,))
    assert _layout(e) == ((0,), (1,), 100)
    # the tensor's own storage
    y = torch.arange(6, dtype=torch.float32, device="cpu")
    yu = y.untyped_storage()
    y.set_(yu, 2, (2, 2), (1, 2))
    assert _layout(y) == ((2, 2), (1, 2), 2) and y.tolist() == [[2., 4.], [3., 5.]]
    y[0, 0] = -5.0
    assert y.untyped_storage() is yu and yu.nbytes() == 24 and yu[8:12].tolist() == [0, 0, 160, 192]


def test_set_to_a_storage_rejects_bad_arguments_unchanged(quiet):
    # PyTorch 2.13's errors; the tensor keeps its values, layout and version
    u = torch.arange(12, dtype=torch.float32, device="cpu").untyped_storage()
    t = torch.arange(3, dtype=torch.float32, device="cpu")
    v = t._version
    cases = (
        (lambda: t.set_(torch.arange(3., device="cpu").to(torch.float64).storage()),
         RuntimeError, "Expected a Storage of type float or an UntypedStorage, but got type "
                       "Double for argument 1 'storage'"),
        (lambda: t.set_(u, -1, (2,)), RuntimeError, "Tensor: invalid storage offset -1"),
        (lambda: t.set_(u, 0, (2, 3), (1,)), RuntimeError,
         "unequal size length (2) and stride length (1)"),
        (lambda: t.set_(u, 0, (2, -1)), RuntimeError, "numel: integer multiplication overflow"),
        (lambda: t.set_(u, 0, (2, 2), (-1, 1)), RuntimeError,
         "Storage size calculation overflowed with sizes=[2, 2] and strides=[-1, 1]"),
        # the tensor's sizes already: PyTorch checks the bounds
        (lambda: t.set_(u, 10, (3,)), RuntimeError,
         "setStorage: sizes [3], strides [], storage offset 10, and itemsize 4 requiring a "
         "storage size of 52 are out of bounds for storage of size 48"),
        (lambda: t.set_(u, 10, (3,), (1,)), RuntimeError,
         "setStorage: sizes [3], strides [1], storage offset 10, and itemsize 4 requiring a "
         "storage size of 52 are out of bounds for storage of size 48"),
        # other sizes: PyTorch grows the storage, which a tensor's storage cannot do in Kiln
        # (PyTorch's error for a storage that is not resizable, as from_numpy's)
        (lambda: t.set_(u, 10, (4,)), RuntimeError,
         "Trying to resize storage that is not resizable"),
        (lambda: t.set_(u, 0), TypeError, "set_() received an invalid combination of "
                                          "arguments - got (torch.storage.UntypedStorage, int), "
                                          "but expected one of:\n" + SET_FORMS),
        (lambda: t.set_(u, 1.5, (2,)), TypeError, "set_() received an invalid combination of "
                                                  "arguments - got (torch.storage.UntypedStorage, "
                                                  "float, tuple), but expected one of:\n"
                                                  + SET_FORMS),
        (lambda: t.set_(u, size=(2,)), TypeError, "set_() received an invalid combination of "
                                                  "arguments - got (torch.storage.UntypedStorage, "
                                                  "size=tuple), but expected one of:\n"
                                                  + SET_FORMS),
        (lambda: t.set_(u, 0, (True,)), TypeError, "set_() received an invalid combination of "
                                                   "arguments - got (torch.storage.UntypedStorage"
                                                   ", int, tuple), but expected one of:\n"
                                                   + SET_FORMS),
        (lambda: t.set_(3), TypeError, SET_FORMS.join((
            "set_() received an invalid combination of arguments - got (int), but expected one "
            "of:\n", "")).replace("()\n", "()\n      didn't match because some of the "
                                          "arguments have invalid types: (!int!)\n").replace(
            "source)\n", "source)\n      didn't match because some of the arguments have "
                         "invalid types: (!int!)\n")),
    )
    for f, cls, msg in cases:
        with pytest.raises(cls) as e:
            f()
        assert str(e.value) == msg
        assert _layout(t) == ((3,), (1,), 0) and t.tolist() == [0., 1., 2.] and t._version == v
    g = torch.zeros(2, device="cpu", requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        g.set_(u)


def test_set_to_a_storage_against_torch():
    real = pytest.importorskip("torch", reason="an optional cross-check against PyTorch itself")
    cases = {
        "untyped": lambda L, A: L.empty(0).set_(A().untyped_storage()),
        "typed": lambda L, A: L.empty(0).set_(A().storage()),
        "window": lambda L, A: L.empty(0).set_(A().untyped_storage(), 2, (2, 3)),
        "strided": lambda L, A: L.empty(0).set_(A().storage(), 1, (3, 2), (1, 3)),
        "keywords": lambda L, A: L.empty(0).set_(source=A().untyped_storage(), storage_offset=1,
                                                 size=[2], stride=[2]),
        "int32 bytes": lambda L, A: L.empty(0, dtype=L.int32).set_(A().untyped_storage()),
        "int16 window": lambda L, A: L.empty(0, dtype=L.int16).set_(A().untyped_storage(), 3,
                                                                    (2, 2)),
        "int64 of 12 bytes": lambda L, A: L.empty(0, dtype=L.int64).set_(
            L.arange(3, dtype=L.float32).untyped_storage()),
        "slice": lambda L, A: L.empty(0).set_(A().untyped_storage()[8:24], 1, (2,)),
        "view's storage": lambda L, A: L.empty(0).set_(A()[3:].storage()),
        "zero stride": lambda L, A: L.empty(0).set_(A().untyped_storage(), 0, (2, 3), (0, 1)),
        "0-d": lambda L, A: L.empty(0).set_(A().untyped_storage(), 5, ()),
        "empty past the end": lambda L, A: L.empty(0).set_(A().untyped_storage(), 100, (0,)),
        "negative stride, size 1": lambda L, A: L.empty(0).set_(A().untyped_storage(), 0,
                                                                (1, 3), (-5, 1)),
        "FloatStorage": lambda L, A: L.empty(0).set_(L.FloatStorage([1, 2, 3])),
        "wrong typed": lambda L, A: L.empty(0, dtype=L.int32).set_(A().storage()),
        "wrong legacy": lambda L, A: L.empty(0).set_(L.DoubleStorage([1, 2])),
        "wrong typed first": lambda L, A: L.empty(0, dtype=L.int64).set_(A().storage(), -1, (2,)),
        "negative offset": lambda L, A: L.empty(0).set_(A().untyped_storage(), -1, (3,)),
        "negative size": lambda L, A: L.empty(0).set_(A().untyped_storage(), 0, (2, -1)),
        "negative stride": lambda L, A: L.empty(0).set_(A().untyped_storage(), 0, (2, 2),
                                                        (-1, 1)),
        "lengths": lambda L, A: L.empty(0).set_(A().untyped_storage(), -1, (2, 3), (1,)),
        "out of bounds": lambda L, A: L.empty(3).set_(A().untyped_storage(), 10, (3,)),
        "out of bounds strided": lambda L, A: L.empty(2).set_(A().storage(), 11, (2,), (1,)),
        "offset only": lambda L, A: L.empty(0).set_(A().untyped_storage(), 0),
        "bool offset": lambda L, A: L.empty(0).set_(A().untyped_storage(), True, (2,)),
        "int size": lambda L, A: L.empty(0).set_(A().untyped_storage(), 0, 3),
        "size without offset": lambda L, A: L.empty(0).set_(A().untyped_storage(), size=(2,)),
        "unknown keyword": lambda L, A: L.empty(0).set_(A().untyped_storage(), foo=1),
        "int source": lambda L, A: L.empty(0).set_(3),
        "None source": lambda L, A: L.empty(0).set_(None),
        "list source": lambda L, A: L.empty(0).set_([1, 2]),
    }
    for name, case in cases.items():
        results = []
        for lib in (torch, real):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if lib is torch:
                    with torch.device("cpu"):
                        x = torch.arange(12, dtype=torch.float32)
                else:
                    x = real.arange(12, dtype=real.float32)
                try:
                    if lib is torch:
                        with torch.device("cpu"):
                            r = case(lib, lambda: x)
                    else:
                        r = case(lib, lambda: x)
                    results.append((_layout(r), r.tolist()))
                except Exception as e:
                    results.append((type(e).__name__, str(e)))
        assert results[0] == results[1], name
    shared = {}
    for lib in (torch, real):       # writes through either are seen by the other
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = lib.arange(12.).to("cpu")
            u = x.untyped_storage()
            t = lib.empty(0, device="cpu").set_(u, 4, (2, 2))
            t[0, 0] = 100.0
            x[5] = -1.0
            r = [x.tolist(), t.tolist(), t.untyped_storage() is u,
                 t.untyped_storage().data_ptr() == x.data_ptr()]
            i = lib.empty(0, dtype=lib.int32, device="cpu").set_(u[8:], 1, (2,))
            i[0] = 0
            r += [x.tolist(), i.storage_offset(), i.untyped_storage().nbytes()]
        shared[lib is real] = r
    assert shared[False] == shared[True]
