"""framework.save / framework.load (safe format), safetensors, and resuming training."""
import collections
import io
import os
import pathlib
import pickle
import struct
import zipfile

import numpy as np
import pytest

import framework as torch
from framework import nn, optim
from framework.utils import safetensors as st
from conftest import assert_close, to_np


def roundtrip(obj, **kw):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, **kw)


ALL_DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
              torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64,
              torch.complex128]


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: d.name)
def test_all_dtypes_round_trip_bit_exact(dtype):
    src = np.array([[0, 1, -2], [3, 127, -100]], dtype=np.float64)
    t = torch.tensor(src).to(dtype)
    if dtype.is_complex:
        t = t * torch.tensor(1 + 2j).to(dtype)
    r = roundtrip(t)
    assert r.dtype == dtype and r.shape == t.shape
    assert to_np(r).tobytes() == to_np(t).tobytes()


def test_seed_list_of_tensors(tmp_path):
    # catalog-001-004 sec. 9: torch.save([x, y]) -> tensor([0, 1, 2, 3]) tensor([0., 0., 0., 0.])
    x, y = torch.arange(4), torch.zeros(4)
    torch.save([x, y], tmp_path / "xy.pth")
    x2, y2 = torch.load(str(tmp_path / "xy.pth"))
    assert repr(x2) == "tensor([0, 1, 2, 3])" and repr(y2) == "tensor([0., 0., 0., 0.])"


def test_nested_containers_scalars_and_identity():
    a = torch.randn(3, 2)
    obj = {"epoch": 7, "lr": 1e-3, "inf": float("inf"), "name": "run-1", "none": None,
           "flag": True, "c": 1 + 2j, "losses": [0.5, 0.25], "pair": (a, 3),
           "od": collections.OrderedDict([("w", a), ("b", torch.ones(2))]),
           2: "int key", ("t", 1): "tuple key", "size": torch.Size([2, 3]),
           "dtype": torch.float16, "dev": torch.device("cpu"), "np": np.arange(3),
           "npf": np.float32(2.5), "bytes": b"\x00\x01", "view": a[1:, 0]}
    r = roundtrip(obj)
    assert r["epoch"] == 7 and r["lr"] == 1e-3 and r["inf"] == float("inf")
    assert r["name"] == "run-1" and r["none"] is None and r["flag"] is True and r["c"] == 1 + 2j
    assert r["losses"] == [0.5, 0.25] and isinstance(r["pair"], tuple) and r["pair"][1] == 3
    assert isinstance(r["od"], collections.OrderedDict) and list(r["od"]) == ["w", "b"]
    assert r[2] == "int key" and r[("t", 1)] == "tuple key"
    assert r["size"] == torch.Size([2, 3]) and isinstance(r["size"], torch.Size)
    assert r["dtype"] is torch.float16 and r["dev"] == torch.device("cpu")
    assert (r["np"] == np.arange(3)).all() and r["npf"] == np.float32(2.5)
    assert r["bytes"] == b"\x00\x01"
    # one tensor saved twice loads as one tensor; views are saved as copies
    assert r["pair"][0] is r["od"]["w"]
    assert_close(r["view"], to_np(a)[1:, 0])


def test_parameters_and_requires_grad():
    p = nn.Parameter(torch.ones(2))
    q = nn.Parameter(torch.ones(2), requires_grad=False)
    g = torch.ones(3, requires_grad=True)
    r = roundtrip({"p": p, "q": q, "g": g, "plain": torch.ones(1)})
    assert isinstance(r["p"], nn.Parameter) and r["p"].requires_grad
    assert isinstance(r["q"], nn.Parameter) and not r["q"].requires_grad
    assert not isinstance(r["g"], nn.Parameter) and r["g"].requires_grad and r["g"].is_leaf
    assert not r["plain"].requires_grad


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 2)
        self.output = nn.Linear(2, 3)

    def forward(self, x):
        return self.output(self.hidden(x).relu())


def test_module_state_dict_round_trip_seed(tmp_path):
    # catalog-001-004 sec. 9: net2.load_state_dict(torch.load('mlp.pth')) equals net
    net = MLP()
    path = tmp_path / "mlp.pth"
    torch.save(net.state_dict(), path)
    net2 = MLP()
    sd = torch.load(path, weights_only=True)
    assert isinstance(sd, collections.OrderedDict) and hasattr(sd, "_metadata")
    net2.load_state_dict(sd)
    for k, v in net.state_dict().items():
        assert to_np(net2.state_dict()[k]).tobytes() == to_np(v).tobytes()
    # only the hidden layer: hidden equal, output different
    torch.save(net.hidden.state_dict(), path)
    net3 = MLP()
    net3.hidden.load_state_dict(torch.load(path))
    assert_close(net3.hidden.weight.detach(), to_np(net.hidden.weight.detach()), rtol=0, atol=0)
    assert not np.allclose(to_np(net3.output.weight.detach()), to_np(net.output.weight.detach()))


def train_steps(model, opt, sched, xs, ys):
    losses = []
    for x, y in zip(xs, ys):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def test_resume_from_checkpoint_gives_same_trajectory(tmp_path):
    torch.manual_seed(0)
    xs = [torch.randn(5, 4) for _ in range(8)]
    ys = [torch.randn(5, 3) for _ in range(8)]

    def make():
        torch.manual_seed(1)
        m = MLP()
        o = optim.AdamW(m.parameters(), lr=0.05, weight_decay=0.1)
        s = optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5)
        return m, o, s
    m, o, s = make()
    full = train_steps(m, o, s, xs, ys)
    final = {k: to_np(v).copy() for k, v in m.state_dict().items()}

    m, o, s = make()
    first = train_steps(m, o, s, xs[:4], ys[:4])
    ckpt = {"epoch": 3, "model_state": m.state_dict(), "optim_state": o.state_dict(),
            "sched_state": s.state_dict()}
    torch.save(ckpt, tmp_path / "ckpt.pth")
    del m, o, s
    m, o, s = make()          # fresh objects, different from the trained ones
    ck = torch.load(tmp_path / "ckpt.pth", map_location=torch.device("cpu"))
    m.load_state_dict(ck["model_state"])
    o.load_state_dict(ck["optim_state"])
    s.load_state_dict(ck["sched_state"])
    assert ck["epoch"] + 1 == 4
    assert o.param_groups[0]["lr"] == 0.05 * 0.25
    rest = train_steps(m, o, s, xs[4:], ys[4:])
    assert first + rest == full
    for k, v in m.state_dict().items():
        assert to_np(v).tobytes() == final[k].tobytes(), k


def test_map_location_forms():
    t = torch.arange(3.0)
    for ml in ("cpu", torch.device("cpu"), {"cpu": "cpu"}, {"cuda:1": "cuda:0"}):
        assert_close(roundtrip(t, map_location=ml), [0, 1, 2])
    seen = []

    def fn(storage, location):
        seen.append(location)
        return storage
    assert_close(roundtrip({"a": t}, map_location=fn)["a"], [0, 1, 2])
    assert seen == ["cpu"]


def test_atomic_write_and_path_types(tmp_path):
    p = tmp_path / "m.pt"
    torch.save({"a": torch.ones(2)}, p)
    torch.save({"a": torch.zeros(2)}, str(p))            # overwrite in place
    assert_close(torch.load(pathlib.Path(p))["a"], [0, 0])
    assert os.listdir(tmp_path) == ["m.pt"]             # no temp files left behind

    # a failing save leaves the old file intact and no temp file
    with pytest.warns(UserWarning, match="pickling"), pytest.raises(pickle.PicklingError):
        torch.save({"a": torch.ones(2), "bad": _Unpicklable()}, p)
    assert_close(torch.load(p)["a"], [0, 0])
    assert os.listdir(tmp_path) == ["m.pt"]
    with pytest.raises(RuntimeError, match="does not exist"):
        torch.save(torch.ones(1), tmp_path / "no" / "dir" / "x.pt")


class _Unpicklable:
    def __reduce__(self):
        raise pickle.PicklingError("cannot pickle this")


def test_truncated_and_corrupted_files_raise_runtime_error_naming_file(tmp_path):
    p = tmp_path / "good.pt"
    torch.save({"w": torch.randn(50, 50), "step": 3}, p)
    raw = p.read_bytes()
    for cut in (len(raw) // 2, len(raw) - 30, 10, 0):
        q = tmp_path / f"cut{cut}.pt"
        q.write_bytes(raw[:cut])
        with pytest.raises(RuntimeError, match=f"cut{cut}.pt"):
            torch.load(q)
    # flip bytes inside the tensor payload: the zip CRC catches it
    bad = bytearray(raw)
    i = raw.index(b"data/0") + 200
    bad[i:i + 8] = b"\xff" * 8
    q = tmp_path / "flipped.pt"
    q.write_bytes(bytes(bad))
    with pytest.raises(RuntimeError, match="flipped.pt"):
        torch.load(q)
    q.write_bytes(b"hello world, not a checkpoint")
    with pytest.raises(RuntimeError, match="not a Kiln checkpoint"):
        torch.load(q)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_code_execution_is_refused_with_weights_only(tmp_path):
    marker = tmp_path / "pwned"
    # 1) a raw pickle file whose __reduce__ calls os.system
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"w": _Evil(marker)}))
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        torch.load(evil)
    assert not marker.exists()
    # 2) the same payload smuggled into a Kiln archive's pickle record
    hdr = b'{"format": "kiln-checkpoint", "version": 1, "root": null, "pickled": true}'
    with zipfile.ZipFile(tmp_path / "evil2.pt", "w") as zf:
        zf.writestr("kiln.json", hdr)
        zf.writestr("pickle.bin", pickle.dumps(_Evil(marker)))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "evil2.pt", weights_only=True)
    assert not marker.exists()
    # 3) a protocol-0 pickle (starts with 'c' for a global)
    evil.write_bytes(pickle.dumps(_Evil(marker), protocol=0))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(evil)
    assert not marker.exists()
    # a crafted safe-format header cannot name code either: unknown tags are rejected
    with zipfile.ZipFile(tmp_path / "evil3.pt", "w") as zf:
        zf.writestr("kiln.json", b'{"format": "kiln-checkpoint", "version": 1, '
                                 b'"root": {"$reduce": ["os.system", "touch x"]}}')
    with pytest.raises(RuntimeError, match="unknown record tag"):
        torch.load(tmp_path / "evil3.pt")


def test_whole_module_needs_weights_only_false(tmp_path):
    net = MLP()
    p = tmp_path / "whole.pt"
    with pytest.warns(UserWarning, match="pickling"):
        torch.save(net, p)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(p)
    with pytest.warns(UserWarning, match="execute arbitrary code"):
        net2 = torch.load(p, weights_only=False)
    assert isinstance(net2, MLP) and isinstance(net2.hidden.weight, nn.Parameter)
    x = torch.randn(2, 4)
    assert_close(net2(x).detach(), to_np(net(x).detach()), rtol=0, atol=0)


def test_optimizer_state_dict_round_trip():
    w = torch.randn(3, requires_grad=True)
    o = optim.Adam([w], lr=0.1, amsgrad=True)
    (w ** 2).sum().backward()
    o.step()
    sd = roundtrip(o.state_dict())
    assert list(sd["state"]) == [0] and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sd["state"][0]["step"].item() == 1.0
    o2 = optim.Adam([torch.zeros(3, requires_grad=True)])
    o2.load_state_dict(sd)
    assert o2.param_groups[0]["amsgrad"] is True


# ---- safetensors -------------------------------------------------------------------------------

def test_safetensors_round_trip_and_layout(tmp_path):
    sd = {"w": torch.randn(3, 4), "b": torch.arange(5).to(torch.int32),
          "h": torch.ones(2).to(torch.bfloat16), "m": torch.tensor([True, False])}
    p = tmp_path / "model.safetensors"
    st.save_file(sd, p, metadata={"format": "pt"})
    raw = p.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    import json
    header = json.loads(raw[8:8 + n])
    assert header["w"]["dtype"] == "F32" and header["w"]["shape"] == [3, 4]
    assert header["h"]["dtype"] == "BF16" and header["__metadata__"] == {"format": "pt"}
    b, e = header["b"]["data_offsets"]
    assert np.frombuffer(raw[8 + n + b:8 + n + e], "<i4").tolist() == [0, 1, 2, 3, 4]
    back = st.load_file(p)
    for k, v in sd.items():
        assert back[k].dtype == v.dtype and to_np(back[k]).tobytes() == to_np(v).tobytes()
    assert st.load_metadata(p) == {"format": "pt"}
    net = MLP()
    st.save_file(net.state_dict(), tmp_path / "net.safetensors")
    net2 = MLP()
    net2.load_state_dict(st.load_file(tmp_path / "net.safetensors", device="cpu"))
    assert_close(net2.output.bias.detach(), to_np(net.output.bias.detach()), rtol=0, atol=0)


def test_safetensors_errors(tmp_path):
    p = tmp_path / "x.safetensors"
    st.save_file({"w": torch.randn(10)}, p)
    raw = p.read_bytes()
    p.write_bytes(raw[:-4])
    with pytest.raises(RuntimeError, match="x.safetensors"):
        st.load_file(p)
    p.write_bytes(struct.pack("<Q", 10 ** 9) + raw[8:])
    with pytest.raises(RuntimeError, match="header length"):
        st.load_file(p)
    with pytest.raises(TypeError, match="not a Tensor"):
        st.save({"a": 3})


def test_safetensors_matches_reference_library(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    torch_ = pytest.importorskip("torch")
    st.save_file({"w": torch.arange(6.0).reshape(2, 3)}, tmp_path / "a.safetensors")
    r = safetensors_torch.load_file(str(tmp_path / "a.safetensors"))
    assert r["w"].tolist() == [[0, 1, 2], [3, 4, 5]]
    safetensors_torch.save_file({"v": torch_.tensor([1.5, 2.5], dtype=torch_.bfloat16)},
                                str(tmp_path / "b.safetensors"))
    assert st.load_file(tmp_path / "b.safetensors")["v"].tolist() == [1.5, 2.5]


# ---- PyTorch's own checkpoints -----------------------------------------------------------------

_PT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                   "pytorch_2_13_checkpoint.pt")


def test_loads_a_checkpoint_pytorch_wrote():
    # tests/data/pytorch_2_13_checkpoint.pt: torch.save by PyTorch 2.13 of a Linear(3, 2)
    # state_dict with set weights, a sliced int64 view, float16, bool, a Parameter, a dtype,
    # a Size and a string
    r = torch.load(_PT)
    sd = r["model"]
    assert type(sd) is collections.OrderedDict and list(sd) == ["weight", "bias"]
    assert hasattr(sd, "_metadata")
    assert sd["weight"].tolist() == [[0.5, -1.0, 2.0], [0.25, 0.0, -0.75]]
    assert sd["bias"].dtype is torch.float32 and np.allclose(to_np(sd["bias"]), [0.1, -0.2])
    assert r["step"] == 7
    assert r["ints"].tolist() == [[1, 2], [4, 5]]
    # a view keeps its saved layout over the saved storage, as torch.load gives
    assert r["ints"].stride() == (3, 1) and r["ints"].storage_offset() == 1
    assert r["half"].dtype is torch.float16 and r["half"].tolist() == [1.5, -2.0]
    assert r["flag"].dtype is torch.bool and r["flag"].item() is True
    assert isinstance(r["param"], nn.Parameter) and r["param"].requires_grad
    assert r["meta"] == (torch.float64, torch.Size([4, 5]), "note")
    lin = nn.Linear(3, 2)
    lin.load_state_dict(sd)
    np.testing.assert_allclose(to_np(lin(torch.tensor([[1.0, 2.0, 3.0]]))), [[4.6, -2.2]],
                               rtol=1e-6)
    assert torch.load(_PT, map_location="cpu")["ints"].device.type == "cpu"


def _torch_zip(tmp_path, pkl_bytes):
    p = tmp_path / "evil.pt"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("evil/data.pkl", pkl_bytes)
        zf.writestr("evil/byteorder", "little")
    return str(p)


def test_pytorch_checkpoints_run_nothing_and_report_corruption(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    f = _torch_zip(tmp_path, pickle.dumps({"x": Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"global posix.system|global os.system"):
        torch.load(f)
    assert not marker.exists()                       # nothing in the file ran
    # a storage record that is missing: a clear error naming it
    with zipfile.ZipFile(_PT) as zf:
        pkl = next(n for n in zf.namelist() if n.endswith("/data.pkl"))
        broken = _torch_zip(tmp_path, zf.read(pkl))        # data.pkl without its storages
    with pytest.raises(RuntimeError, match=r"storage record data/0 is missing"):
        torch.load(broken)


def test_round_trip_through_real_pytorch(tmp_path):
    real = pytest.importorskip("torch", reason="an optional cross-check against PyTorch itself")
    real.manual_seed(0)
    m = real.nn.Sequential(real.nn.Conv2d(1, 4, 3), real.nn.BatchNorm2d(4), real.nn.Flatten(),
                           real.nn.Linear(4 * 4 * 4, 3))
    opt = real.optim.AdamW(m.parameters(), lr=1e-3)
    m(real.randn(2, 1, 6, 6)).sum().backward()
    opt.step()
    p = tmp_path / "real.pt"
    real.save({"model": m.state_dict(), "opt": opt.state_dict()}, p)
    r = torch.load(str(p))
    km = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(64, 3))
    km.load_state_dict(r["model"])
    kopt = optim.AdamW(km.parameters(), lr=1e-3)
    kopt.load_state_dict(r["opt"])
    x = np.random.default_rng(0).standard_normal((3, 1, 6, 6)).astype(np.float32)
    m.eval()
    km.eval()
    np.testing.assert_allclose(to_np(km(torch.tensor(x))), m(real.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    real.save(m, tmp_path / "module.pt")                 # a pickled Module: refused
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        torch.load(str(tmp_path / "module.pt"))


class _DeviceOnly:
    """Stands in for a CuPy array: device memory that refuses implicit NumPy conversion (the
    TypeError CuPy raises), readable only through runtime.cuda.to_host."""

    def __init__(self, a):
        self.a = a

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use "
                        "`.get()` to construct a NumPy array explicitly.")


def test_device_memory_is_copied_to_the_host_when_saved(monkeypatch):
    # torch.save of a state_dict on 'cuda' failed in the GPU check: the encoder handed CuPy
    # arrays to np.asarray. The bytes must be the host copy's, little-endian, C order.
    from framework import serialization, _device_ops
    monkeypatch.setattr(_device_ops._cuda, "is_device_array", lambda a: isinstance(a, _DeviceOnly))
    monkeypatch.setattr(_device_ops._cuda, "to_host", lambda a: a.a.copy())
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    with pytest.raises(TypeError):
        np.asarray(_DeviceOnly(a))
    assert serialization._le_bytes(_DeviceOnly(a)) == a.astype("<f4").tobytes()
    assert serialization._le_bytes(_DeviceOnly(a.T)) == np.ascontiguousarray(a.T).tobytes()


# ---- PyTorch checkpoints built here opcode by opcode (no torch needed) ---------------------------

def _op_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _op_int(v):
    return b"J" + struct.pack("<i", v)


def _op_tuple(xs):
    return b"(" + b"".join(_op_int(v) for v in xs) + b"t"


def _op_rebuild(storage, key, numel, offset, size, stride, legacy=False, metadata=None,
                requires_grad=False):
    """torch._utils._rebuild_tensor_v2(persistent storage, offset, size, stride, requires_grad,
    OrderedDict()[, metadata]) as torch.save writes it; the legacy format's persistent id has
    a sixth item (view_metadata, None)."""
    pid = (b"(" + _op_str("storage") + f"ctorch\n{storage}\n".encode() + _op_str(key) +
           _op_str("cpu") + _op_int(numel) + (b"N" if legacy else b"") + b"tQ")
    meta = b""
    if metadata:
        meta = b"}" + b"".join(_op_str(k) + b"\x88s" for k in metadata)
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + pid + _op_int(offset) + _op_tuple(size) +
            _op_tuple(stride) + (b"\x88" if requires_grad else b"\x89") +
            b"ccollections\nOrderedDict\n)R" + meta + b"tR")


def _legacy_file(main_pkl, storages):
    """torch.save(obj, f, _use_new_zipfile_serialization=False)'s layout: pickles of the magic
    number, the protocol version and sys_info, the object, the sorted storage keys, then per
    storage its element count (int64) and bytes."""
    out = [pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2), pickle.dumps(1001, protocol=2),
           pickle.dumps({"protocol_version": 1001, "little_endian": True,
                         "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2),
           main_pkl, pickle.dumps(sorted(k for k, _ in storages), protocol=2)]
    for _, arr in sorted(storages, key=lambda kv: kv[0]):
        out.append(struct.pack("<q", arr.size) + arr.tobytes())
    return b"".join(out)


def test_loads_pytorch_legacy_format_checkpoints(tmp_path):
    # torch.save(..., _use_new_zipfile_serialization=False) was refused as "a raw pickle"
    # (and with weights_only=False unpickled to just its magic number). The bytes below are
    # those PyTorch 2.13 writes for {"w": b, "v": b[2:4], "t": b.reshape(2, 3).t(),
    # "h": half tensor, "g": ones(1, requires_grad=True), "sd": OrderedDict with _metadata}
    main = (b"\x80\x02}(" +
            _op_str("w") + _op_rebuild("FloatStorage", "1", 6, 0, (6,), (1,), True) +
            _op_str("v") + _op_rebuild("FloatStorage", "1", 6, 2, (2,), (1,), True) +
            _op_str("t") + _op_rebuild("FloatStorage", "1", 6, 0, (3, 2), (1, 3), True) +
            _op_str("h") + _op_rebuild("HalfStorage", "2", 2, 0, (2,), (1,), True) +
            _op_str("g") + _op_rebuild("FloatStorage", "3", 1, 0, (1,), (1,), True,
                                       requires_grad=True) +
            _op_str("sd") + b"ccollections\nOrderedDict\n)R}" + _op_str("_metadata") +
            b"ccollections\nOrderedDict\n)R" + _op_str("") + b"}" + _op_str("version") +
            _op_int(1) + b"sssbu.")
    raw = _legacy_file(main, [("1", np.arange(6, dtype="<f4")),
                              ("2", np.array([1.5, -2.0], "<f2")), ("3", np.ones(1, "<f4"))])
    p = tmp_path / "legacy.pt"
    p.write_bytes(raw)
    for r in (torch.load(str(p)), torch.load(io.BytesIO(raw), weights_only=False)):
        assert r["w"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        assert r["v"].tolist() == [2.0, 3.0] and r["v"].storage_offset() == 2
        assert r["t"].stride() == (1, 3) and r["t"].tolist() == [[0.0, 3.0], [1.0, 4.0],
                                                                 [2.0, 5.0]]
        r["w"][3] = 30.0                              # views share one storage, as in torch
        assert r["v"].tolist() == [2.0, 30.0] and r["t"][0, 1].item() == 30.0
        assert r["h"].dtype is torch.float16 and r["h"].tolist() == [1.5, -2.0]
        assert r["g"].requires_grad and r["g"].is_leaf
        assert r["sd"]._metadata == collections.OrderedDict([("", {"version": 1})])
    with pytest.raises(RuntimeError, match="mmap can only be used"):
        torch.load(str(p), mmap=True)
    with pytest.raises(RuntimeError, match="storage 3 is truncated or corrupted"):
        torch.load(io.BytesIO(raw[:-3]))
    evil = (b"\x80\x02cos\nsystem\n" + _op_str("true") + b"\x85R.")
    with pytest.raises(pickle.UnpicklingError, match="os.system"):
        torch.load(io.BytesIO(_legacy_file(evil, [])))


def _zip_bytes(pkl, storages):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ck/data.pkl", pkl)
        zf.writestr("ck/byteorder", "little")
        zf.writestr("ck/version", "3\n")
        for k, arr in storages:
            zf.writestr(f"ck/data/{k}", arr.tobytes())
    buf.seek(0)
    return buf


def test_pytorch_checkpoint_conj_and_neg_bits_are_resolved():
    # torch.save(x.conj()) writes x's storage and metadata {'conj': True}; it loaded as x
    z = np.array([1 + 2j, 3 - 1j], "<c8")
    pkl = (b"\x80\x02(" + _op_rebuild("ComplexFloatStorage", "0", 2, 0, (2,), (1,),
                                      metadata=["conj"]) +
           _op_rebuild("FloatStorage", "1", 2, 0, (2,), (1,), metadata=["neg"]) + b"t.")
    c, n = torch.load(_zip_bytes(pkl, [("0", z), ("1", np.array([2.0, -1.0], "<f4"))]))
    assert c.dtype is torch.complex64 and c.tolist() == [1 - 2j, 3 + 1j]
    assert n.tolist() == [-2.0, 1.0]


def test_pytorch_checkpoint_build_is_refused_except_on_ordered_dicts():
    # BUILD on an allowlisted global rewrote Kiln's own classes for the whole process
    # (torch.device's __repr__ replaced by set); torch's unpickler allows it on OrderedDicts
    evil = (b"\x80\x02ctorch\ndevice\nN}" + _op_str("__repr__") +
            b"c__builtin__\nset\ns\x86b.")
    with pytest.raises(pickle.UnpicklingError, match="only OrderedDicts"):
        torch.load(_zip_bytes(evil, []))
    assert repr(torch.device("cpu")) == "device(type='cpu')"
    with pytest.raises(pickle.UnpicklingError, match="only OrderedDicts"):
        torch.load(_zip_bytes(b"\x80\x02ctorch\nfloat32\n}" + _op_str("itemsize") +
                              _op_int(7) + b"sb.", []))
    assert torch.float32.itemsize == 4


def test_pytorch_checkpoint_tensor_attributes_and_layouts():
    # a tensor with Python attributes is saved through torch._tensor._rebuild_from_type_v2
    # (refused as an unknown global); layouts through torch.serialization._get_layout
    def with_state(key, state_ops):
        return (b"ctorch._tensor\n_rebuild_from_type_v2\n(ctorch._utils\n_rebuild_tensor_v2\n"
                b"ctorch\nTensor\n(" + _op_rebuild("FloatStorage", key, 2, 0, (2,), (1,))[
                    len(b"ctorch._utils\n_rebuild_tensor_v2\n("):-1] + b"}" + state_ops +
                b"tR")
    pkl = (b"\x80\x02(" + with_state("0", _op_str("note") + _op_str("hi") + b"s") +
           b"ctorch.serialization\n_get_layout\n" + _op_str("torch.strided") + b"\x85Rt.")
    t, lay = torch.load(_zip_bytes(pkl, [("0", np.array([1.0, 2.0], "<f4"))]))
    assert t.tolist() == [1.0, 2.0] and t.note == "hi" and lay is torch.strided
    # an attribute Kiln's Tensor has itself (its grad, data, methods) is refused
    bad = b"\x80\x02" + with_state("0", _op_str("grad") + _op_str("x") + b"s") + b"."
    with pytest.raises(pickle.UnpicklingError, match="'grad'"):
        torch.load(_zip_bytes(bad, [("0", np.array([1.0, 2.0], "<f4"))]))


def test_mmap_needs_a_path_and_more_objects_round_trip():
    with pytest.raises(ValueError, match="must be a file path .* mmap"):
        roundtrip(torch.ones(2), mmap=True)
    # bytearray, Counter and layouts (torch.load(weights_only=True) takes them) were pickled
    # with a warning and then refused by load
    obj = {"ba": bytearray(b"\x00k"), "c": collections.Counter("aab"),
           "lay": [torch.strided, torch.sparse_coo]}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = roundtrip(obj)
    assert r["ba"] == bytearray(b"\x00k") and type(r["ba"]) is bytearray
    assert type(r["c"]) is collections.Counter and r["c"] == collections.Counter(a=2, b=1)
    assert r["lay"][0] is torch.strided and r["lay"][1] is torch.sparse_coo
