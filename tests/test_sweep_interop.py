"""Regressions from the serialization / NumPy-interop sweep against PyTorch 2.13: views that share
storage across save/load and deepcopy, strides kept by load, the weights_only allowlist of
PyTorch checkpoints, Tensor.__array__ copy rules, NumPy ufuncs on tensors (__array_wrap__),
operators with ndarray and NumPy-bool operands, and DLPack export errors. Expected values are
hand-derived (or NumPy float64), never from torch."""
import copy
import io
import json
import math
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

import framework as torch


def _np(t):
    return np.asarray(t.detach())


# ---- framework.save / framework.load: views, strides -------------------------------------------

def _kiln_header(buf):
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        return json.loads(zf.read("kiln.json"))


def test_saved_views_share_their_base_after_load():
    base = torch.arange(6.0)
    view = base[2:4]
    buf = io.BytesIO()
    torch.save({"base": base, "view": view}, buf)
    assert _kiln_header(buf)["version"] == 2          # view records: format version 2
    buf.seek(0)
    r = torch.load(buf)
    assert r["view"].storage_offset() == 2 and r["view"].tolist() == [2.0, 3.0]
    r["base"][2] = 100.0                             # a write through one shows in the other
    assert r["view"].tolist() == [100.0, 3.0]
    r["view"][1] = -1.0
    assert r["base"].tolist() == [0.0, 1.0, 100.0, -1.0, 4.0, 5.0]
    # the originals are untouched
    assert base.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_view_saved_before_its_base_still_shares():
    base = torch.arange(4, dtype=torch.int32)
    buf = io.BytesIO()
    torch.save([base[1:], base], buf)
    buf.seek(0)
    v, b = torch.load(buf)
    b[1] = 9
    assert v.tolist() == [9, 2, 3] and v.dtype is torch.int32


def test_load_keeps_strides_of_transposed_and_expanded_tensors():
    x = torch.arange(6.0).reshape(2, 3).t()
    e = torch.tensor([1.0, 2.0, 3.0]).expand(2, 3)
    buf = io.BytesIO()
    torch.save([x, e], buf)
    buf.seek(0)
    x2, e2 = torch.load(buf)
    assert x2.stride() == (1, 3) and not x2.is_contiguous()
    assert x2.tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    assert e2.stride() == (0, 1) and e2.tolist() == [[1.0, 2.0, 3.0]] * 2


def test_plain_state_dict_stays_format_version_1_and_params_keep_requires_grad():
    p = torch.nn.Parameter(torch.tensor([1.5, -2.0]))
    q = torch.nn.Parameter(torch.tensor([3.0]), requires_grad=False)
    buf = io.BytesIO()
    torch.save({"p": p, "q": q, "b": torch.tensor([True, False]), "z": torch.zeros(0, 3)}, buf)
    assert _kiln_header(buf)["version"] == 1
    buf.seek(0)
    r = torch.load(buf)
    assert isinstance(r["p"], torch.nn.Parameter) and r["p"].requires_grad
    assert isinstance(r["q"], torch.nn.Parameter) and not r["q"].requires_grad
    assert r["p"].tolist() == [1.5, -2.0] and r["b"].tolist() == [True, False]
    assert r["z"].shape == (0, 3)


def test_view_record_out_of_its_storage_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.pt"
    torch.save([torch.arange(6.0)[1:3]], path)
    with zipfile.ZipFile(path) as zf:
        items = {n: zf.read(n) for n in zf.namelist()}
    hdr = json.loads(items["kiln.json"])
    hdr["root"][0]["offset"] = 5                     # 5 + 2 elements > a storage of 6
    items["kiln.json"] = json.dumps(hdr).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in items.items():
            zf.writestr(n, b)
    with pytest.raises(RuntimeError, match="bad.pt.*exceeds its storage"):
        torch.load(path)


# ---- PyTorch checkpoints (torch.save's zip format), written here without torch ------------------

def _bu(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _rebuild(storage_key, numel, offset, size, stride):
    """Pickle opcodes of torch._utils._rebuild_tensor_v2(FloatStorage key, offset, size,
    stride, False, OrderedDict()) as torch.save writes them."""
    tup = lambda xs: b"(" + b"".join(b"K" + bytes([v]) for v in xs) + b"t"
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" +
            b"(" + _bu("storage") + b"ctorch\nFloatStorage\n" + _bu(storage_key) + _bu("cpu") +
            b"K" + bytes([numel]) + b"tQ" +
            b"K" + bytes([offset]) + tup(size) + tup(stride) + b"\x89" +
            b"ccollections\nOrderedDict\n)R" + b"tR")


def _torch_zip(path, pkl, storages=()):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ck/data.pkl", pkl)
        zf.writestr("ck/byteorder", "little")
        for k, arr in storages:
            zf.writestr(f"ck/data/{k}", np.asarray(arr, "<f4").tobytes())
    return str(path)


def test_pytorch_checkpoint_views_share_one_storage_with_saved_strides(tmp_path):
    # [whole (6,), view [2:4], transposed (3, 2) view of a (2, 3)] of one float storage 0..5
    pkl = (b"\x80\x02](" + _rebuild("0", 6, 0, (6,), (1,)) + _rebuild("0", 6, 2, (2,), (1,)) +
           _rebuild("0", 6, 0, (3, 2), (1, 3)) + b"e.")
    f = _torch_zip(tmp_path / "v.pt", pkl, [("0", np.arange(6.0))])
    whole, view, tr = torch.load(f)
    assert view.storage_offset() == 2 and view.tolist() == [2.0, 3.0]
    assert tr.stride() == (1, 3) and tr.tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    whole[3] = 30.0
    assert view.tolist() == [2.0, 30.0] and tr[0, 1].item() == 30.0


def test_pytorch_checkpoint_allowlist_takes_builtin_scalars_and_refuses_code(tmp_path):
    obj = {"c": 1 - 2.5j, "s": {3, 4}, "b": b"\x00\xffk", "ba": bytearray(b"yz"),
           "n": float("nan")}
    r = torch.load(_torch_zip(tmp_path / "s.pt", pickle.dumps(obj, protocol=2)))
    assert r["c"] == complex(1, -2.5) and r["s"] == {3, 4}
    assert r["b"] == b"\x00\xffk" and r["ba"] == bytearray(b"yz") and math.isnan(r["n"])
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    with pytest.raises(pickle.UnpicklingError, match="system"):
        torch.load(_torch_zip(tmp_path / "e.pt", pickle.dumps({"c": 1j, "x": Evil()}, 2)))
    assert not marker.exists()


def test_real_pytorch_views_load_shared():
    real = pytest.importorskip("torch", reason="optional cross-check against PyTorch itself")
    buf = io.BytesIO()
    b = real.arange(6.0)
    real.save([b, b[1:3], b.reshape(2, 3).t()], buf)
    buf.seek(0)
    b2, v2, t2 = torch.load(buf)
    b2[1] = 50.0
    assert v2.tolist() == [50.0, 2.0] and t2.stride() == (1, 3) and t2[1, 0].item() == 50.0


# ---- copy.deepcopy ----------------------------------------------------------------------------

def test_deepcopy_keeps_views_of_one_base_sharing():
    base = torch.arange(5.0)
    b2, v2 = copy.deepcopy([base, base[1:3]])
    b2[1] = 10.0
    assert v2.tolist() == [10.0, 2.0] and v2.storage_offset() == 1
    assert base.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]     # the original is separate
    # a view copied alone still holds its values
    assert copy.deepcopy(base[3:]).tolist() == [3.0, 4.0]


# ---- NumPy interop -----------------------------------------------------------------------------

def test_array_protocol_sharing_copy_dtype_and_errors():
    t = torch.tensor([1.5, -2.25, 3.0])
    np.asarray(t)[0] = 7.0                           # asarray shares memory
    assert t[0].item() == 7.0
    np.asarray(t, dtype=np.float32)[1] = 8.0         # same dtype: still shared
    assert t[1].item() == 8.0
    a = np.array(t)                                  # np.array copies
    a[2] = 100.0
    assert t.tolist() == [7.0, 8.0, 3.0]
    d = np.asarray(t, dtype=np.float64)
    assert d.dtype == np.float64 and d.tolist() == [7.0, 8.0, 3.0]
    with pytest.raises(ValueError, match="Unable to avoid copy"):
        np.array(t, copy=False)
    with pytest.raises(RuntimeError, match="requires grad"):
        np.asarray(torch.ones(2, requires_grad=True))
    with pytest.raises(RuntimeError, match="requires grad"):
        np.exp(torch.ones(2, requires_grad=True))


def test_numpy_ufuncs_on_tensors_return_tensors():
    x = torch.tensor([0.5, -1.0, 2.0])
    e = np.exp(x)
    assert isinstance(e, torch.Tensor) and e.dtype is torch.float32
    np.testing.assert_allclose(e.numpy(), np.exp(np.array([0.5, -1.0, 2.0])), rtol=1e-6)
    s = np.sqrt(torch.tensor(4.0))
    assert isinstance(s, torch.Tensor) and s.shape == () and s.item() == 2.0
    m = np.isnan(torch.tensor([1.0, float("nan")]))  # a bool result is uint8, as PyTorch
    assert m.dtype is torch.uint8 and m.tolist() == [0, 1]
    a = np.add(torch.tensor([1, 2]), np.array([0.5, 0.25]))
    assert a.dtype is torch.float64 and a.tolist() == [1.5, 2.25]


def test_operators_with_ndarray_operands():
    t = torch.tensor([1.0, 2.0, 4.0])
    r = t + np.array(2.0)                            # NumPy computes it: float64
    assert isinstance(r, torch.Tensor) and r.dtype is torch.float64 and r.tolist() == [3, 4, 6]
    r = np.array([8.0, 8.0, 8.0]) / t                # PyTorch's rtruediv: t.reciprocal() * a
    assert r.dtype is torch.float64 and r.tolist() == [8.0, 4.0, 2.0]
    assert (t @ np.array([1.0, 1.0, 1.0])).item() == 7.0
    with pytest.raises(TypeError):
        np.ones(3) * t
    with pytest.raises(TypeError):
        np.ones(3) + t
    with pytest.raises(TypeError):
        t < np.ones(3)
    assert (t == np.array([1.0, 0.0, 4.0])).tolist() == [True, False, True]
    u = t
    u += np.ones(3)                                  # t = t + a: a new float64 tensor
    assert u.dtype is torch.float64 and u.tolist() == [2.0, 3.0, 5.0]
    assert t.tolist() == [1.0, 2.0, 4.0]


def test_numpy_bool_operand_is_a_float_scalar():
    i = torch.tensor([1, 0, 3], dtype=torch.int32)
    r = np.bool_(True) * i
    assert r.dtype is torch.float32 and r.tolist() == [1.0, 0.0, 3.0]
    r = i + np.bool_(True)
    assert r.dtype is torch.float32 and r.tolist() == [2.0, 1.0, 4.0]
    r = np.bool_(True) - torch.tensor([1.0, 0.0], dtype=torch.float16)  # (True - t refuses)
    assert r.dtype is torch.float16 and r.tolist() == [0.0, 1.0]
    with pytest.raises(RuntimeError, match="with a bool tensor"):
        np.bool_(True) - torch.tensor([True, False])
    with pytest.raises(RuntimeError, match="can't be cast"):
        i.add_(np.bool_(True))
    assert i.tolist() == [1, 0, 3]
    assert (np.float64(2) * i).dtype is torch.float32    # other NumPy scalars: Python numbers
    assert (np.int64(2) * i).dtype is torch.int32


def test_dlpack_export_of_a_tensor_requiring_grad_is_a_buffer_error():
    with pytest.raises(BufferError, match="require gradient"):
        np.from_dlpack(torch.ones(2, requires_grad=True))
    t = torch.arange(6.0).reshape(2, 3).t()
    a = np.from_dlpack(t)
    t[0, 1] = 9.0
    assert a.strides == (4, 12) and a[0, 1] == 9.0


def test_save_and_load_refuse_non_files_with_attribute_error():
    with pytest.raises(AttributeError, match="framework.save.*'write' attribute"):
        torch.save(torch.ones(1), 123)
    with pytest.raises(AttributeError, match="framework.load.*'read' attribute"):
        torch.load(123)
