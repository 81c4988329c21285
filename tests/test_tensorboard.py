"""framework.utils.tensorboard.SummaryWriter: event files read back by a reader written here
(TFRecord framing, an independent CRC32C, a protobuf decoder), plus an optional cross-check
with the real tensorboard package."""
import glob
import os
import re
import struct
import time
import zlib

import numpy as np
import pytest

import framework as torch
from framework import nn
from framework.utils.tensorboard import SummaryWriter
from framework.utils.tensorboard._crc32c import crc32c

# ---- a reader independent of the writer ------------------------------------------------------


def _ref_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_T = _ref_table()


def ref_crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _T[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = ref_crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class CorruptRecord(Exception):
    pass


def read_records(path):
    with open(path, "rb") as f:
        buf = f.read()
    out, pos = [], 0
    while pos < len(buf):
        header = buf[pos:pos + 8]
        (n,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", buf[pos + 8:pos + 12])
        if hcrc != masked(header):
            raise CorruptRecord(f"length crc at {pos}")
        data = buf[pos + 12:pos + 12 + n]
        (dcrc,) = struct.unpack("<I", buf[pos + 12 + n:pos + 16 + n])
        if dcrc != masked(data):
            raise CorruptRecord(f"data crc at {pos}")
        out.append(data)
        pos += 16 + n
    return out


def decode(buf):
    """{field number: [values]}: varints as int, fixed64/fixed32 as raw bytes, length-delimited
    as bytes."""
    fields, pos = {}, 0

    def varint():
        nonlocal pos
        shift = v = 0
        while True:
            b = buf[pos]
            pos += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v
    while pos < len(buf):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            val = varint()
        elif wire == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        elif wire == 5:
            val, pos = buf[pos:pos + 4], pos + 4
        elif wire == 2:
            n = varint()
            val, pos = buf[pos:pos + n], pos + n
        else:
            raise ValueError(f"wire type {wire}")
        fields.setdefault(field, []).append(val)
    return fields


def f64(b):
    return struct.unpack("<d", b)[0]


def f32(b):
    return struct.unpack("<f", b)[0]


def doubles(b):
    return list(struct.unpack(f"<{len(b) // 8}d", b))


def events(logdir):
    """Every Event of the one event file in logdir, decoded to a dict."""
    files = glob.glob(os.path.join(str(logdir), "events.out.tfevents.*"))
    assert len(files) == 1, files
    out = []
    for rec in read_records(files[0]):
        e = decode(rec)
        out.append({"wall_time": f64(e[1][0]) if 1 in e else 0.0, "step": e.get(2, [0])[0],
                    "file_version": e.get(3, [None])[0], "graph_def": e.get(4, [None])[0],
                    "summary": e.get(5, [None])[0], "session_log": e.get(7, [None])[0]})
    return out


def summary_values(ev):
    """[(tag, Summary.Value fields)] of a summary event."""
    vals = [decode(v) for v in decode(ev["summary"])[1]]
    return [(v[1][0].decode(), v) for v in vals]


def plugin_of(value):
    md = decode(value[9][0])
    pd = decode(md[1][0])
    return pd[1][0].decode(), pd.get(2, [b""])[0]


# ---- CRC32C ------------------------------------------------------------------------------------

def test_crc32c_matches_reference_and_is_fast():
    assert crc32c(b"123456789") == 0xE3069283        # the Castagnoli check value
    assert crc32c(b"") == 0
    rng = np.random.default_rng(0)
    for n in (1, 63, 4095, 4096, 9999, 70001):       # both the loop and the lane paths
        d = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc32c(d) == ref_crc32c(d), n
        assert crc32c(d[n // 3:], crc32c(d[:n // 3])) == ref_crc32c(d)
    big = rng.integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
    crc32c(big[:1000000])                            # first use builds the lane-shift tables
    t = time.perf_counter()
    crc32c(big)
    # a plain Python loop takes ~0.1 s/MB; the lane version a few ms (generous for shared CPUs)
    assert time.perf_counter() - t < 0.5


# ---- event files ---------------------------------------------------------------------------

def test_scalars_file_name_first_record_and_wall_times(tmp_path):
    w = SummaryWriter(tmp_path, filename_suffix=".kiln")
    for i in range(5):
        w.add_scalar("loss/train", 1.0 / (i + 1), global_step=i, walltime=1000.0 + i)
    w.add_scalar("zero", torch.tensor(0.0), 7)       # a 0.0 simple_value is still written
    before = time.time()
    w.add_scalar("now", np.float32(2.5))
    assert w.get_logdir() == str(tmp_path)
    w.close()
    (path,) = glob.glob(str(tmp_path / "*"))
    assert re.fullmatch(r"events\.out\.tfevents\.\d{10}\.[^.]+.*\.%d\.\d+\.kiln" % os.getpid(),
                        os.path.basename(path)), path
    ev = events(tmp_path)
    assert ev[0]["file_version"] == b"brain.Event:2"
    scal = [(summary_values(e)[0], e) for e in ev[1:]]
    got = [(tag, e["step"], f32(v[2][0]), e["wall_time"]) for (tag, v), e in scal]
    assert got[:5] == [("loss/train", i, pytest.approx(1.0 / (i + 1)), 1000.0 + i)
                       for i in range(5)]
    assert got[5][:3] == ("zero", 7, 0.0)
    assert got[6][:3] == ("now", 0, 2.5) and before - 1 <= got[6][3] <= time.time() + 1


def test_add_scalars_writes_one_run_per_key(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_scalars("acc/run", {"train": 0.5, "val": 0.25}, 3)
        w.add_scalars("acc/run", {"train": 0.75, "val": 0.5}, 4)
    for key, vals in (("train", [0.5, 0.75]), ("val", [0.25, 0.5])):
        ev = events(tmp_path / f"acc_run_{key}")[1:]
        assert [(summary_values(e)[0][0], e["step"], f32(summary_values(e)[0][1][2][0]))
                for e in ev] == [("acc/run", 3, vals[0]), ("acc/run", 4, vals[1])]


def test_histogram_buckets(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(2000).astype(np.float32)
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("w", torch.tensor(x), 5)
        w.add_histogram("coarse", x, 6, bins=10)
        w.add_histogram("merged", x, 7, max_bins=20)
    ev = events(tmp_path)[1:]
    x64 = x.astype(np.float64)
    for e, step in zip(ev, (5, 6, 7)):
        tag, v = summary_values(e)[0]
        h = decode(v[5][0])
        lim, cnt = doubles(h[6][0]), doubles(h[7][0])
        assert e["step"] == step and len(lim) == len(cnt) >= 2
        assert f64(h[1][0]) == x.min() and f64(h[2][0]) == x.max()
        assert f64(h[3][0]) == x.size and sum(cnt) == x.size
        assert f64(h[4][0]) == pytest.approx(x64.sum()) and \
            f64(h[5][0]) == pytest.approx((x64 ** 2).sum())
        assert cnt[0] == 0 and all(a < b for a, b in zip(lim, lim[1:]))
        # bucket i holds the values in (lim[i-1], lim[i]] (numpy's [a, b) up to edge ties)
        for i in range(1, len(lim)):
            assert cnt[i] == pytest.approx(((x64 >= lim[i - 1]) & (x64 < lim[i])).sum(), abs=1)
        if tag == "w":      # the 'tensorflow' bins: +-1e-12 * 1.1**k around 0
            pos = [b for b in lim if b > 0]
            assert pos[1] / pos[0] == pytest.approx(1.1)
        if tag == "coarse":
            assert np.allclose(lim, np.histogram(x, bins=10)[1])
        if tag == "merged":
            assert len(cnt) <= 21


def _png_pixels(png):
    """(width, height, color type, H x W x C pixels) of a filter-0 8-bit PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(png):
        (n,) = struct.unpack(">I", png[pos:pos + 4])
        kind, data = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", png[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(kind + data)
        chunks[kind] = chunks.get(kind, b"") + data
        pos += 12 + n
    w, h, depth, ctype = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    c = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(h, 1 + w * c)
    assert (rows[:, 0] == 0).all() and depth == 8
    return w, h, c, rows[:, 1:].reshape(h, w, c)


def test_images_png_size_and_pixels(tmp_path):
    rng = np.random.default_rng(2)
    chw = rng.random((3, 6, 10)).astype(np.float32)
    hwc = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    gray = rng.random((1, 3, 4)).astype(np.float32)
    with SummaryWriter(tmp_path) as w:
        w.add_image("chw", torch.tensor(chw), 1)
        w.add_image("hwc", hwc, 2, dataformats="HWC")
        w.add_image("gray", gray, 3)
        w.add_images("batch", rng.random((10, 3, 2, 2)), 4)
    imgs = {}
    for e in events(tmp_path)[1:]:
        tag, v = summary_values(e)[0]
        im = decode(v[4][0])
        w_, h_, c, px = _png_pixels(im[4][0])
        assert (im[1][0], im[2][0], im[3][0]) == (h_, w_, c)
        imgs[tag] = px
    expect = (chw.transpose(1, 2, 0) * 255).clip(0, 255).astype(np.uint8)
    assert np.array_equal(imgs["chw"], expect)
    assert np.array_equal(imgs["hwc"], hwc)
    assert imgs["gray"].shape == (3, 4, 3) and (imgs["gray"][..., 0] == imgs["gray"][..., 2]).all()
    assert imgs["batch"].shape == (4, 16, 3)       # 10 images, 8 per row: 2 rows x 8 columns


def test_text_and_hparams(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_text("notes", "héllo **md**", 2)
        w.add_hparams({"lr": 0.01, "opt": "adam", "nesterov": True, "skip": None},
                      {"hp/acc": 0.875}, run_name="trial0", global_step=1)
    (e,) = events(tmp_path)[1:]
    tag, v = summary_values(e)[0]
    assert tag == "notes/text_summary" and plugin_of(v) == ("text", b"")
    t = decode(v[8][0])
    assert t[1] == [7] and t[8] == ["héllo **md**".encode()]          # DT_STRING, [1]
    ev = events(tmp_path / "trial0")[1:]
    tags = [summary_values(x)[0][0] for x in ev]
    assert tags == ["_hparams_/experiment", "_hparams_/session_start_info",
                    "_hparams_/session_end_info", "hp/acc"]
    assert all(x["step"] == 1 for x in ev)
    name, content = plugin_of(summary_values(ev[0])[0][1])
    assert name == "hparams"
    exp = decode(decode(content)[2][0])
    infos = {decode(h)[1][0].decode(): decode(h).get(4, [0])[0] for h in exp[4]}
    assert infos == {"lr": 3, "opt": 1, "nesterov": 2}        # FLOAT64, STRING, BOOL
    assert decode(decode(exp[5][0])[1][0])[2] == [b"hp/acc"]
    _, content = plugin_of(summary_values(ev[1])[0][1])
    entries = decode(decode(content)[3][0])[1]          # SessionStartInfo.hparams map
    hp = {decode(m)[1][0].decode(): decode(decode(m)[2][0]) for m in entries}
    assert f64(hp["lr"][2][0]) == 0.01 and hp["opt"][3] == [b"adam"] and hp["nesterov"][4] == [1]
    _, content = plugin_of(summary_values(ev[2])[0][1])
    assert decode(decode(content)[4][0])[1] == [1]            # STATUS_SUCCESS
    assert f32(summary_values(ev[3])[0][1][2][0]) == 0.875


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 8)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(8, 1)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def _graph_nodes(logdir):
    (e,) = [x for x in events(logdir) if x["graph_def"] is not None]
    g = decode(e["graph_def"])
    nodes = []
    for n in g[1]:
        d = decode(n)
        attrs = {decode(a)[1][0].decode(): decode(decode(a)[2][0]) for a in d.get(5, [])}
        nodes.append({"name": d[1][0].decode(), "op": d[2][0].decode(),
                      "inputs": [i.decode() for i in d.get(3, [])], "attrs": attrs})
    return nodes


def _shapes(node):
    lst = decode(node["attrs"]["_output_shapes"][1][0])
    return [[decode(dim).get(1, [0])[0] for dim in decode(s).get(2, [])] for s in lst[7]]


def test_add_graph_of_mlp(tmp_path):
    model = MLP().train()
    model.act.eval()
    with SummaryWriter(tmp_path) as w:
        w.add_graph(model, input_to_model=torch.rand(10, 2))
    # modes restored after the eval-mode trace, per module
    assert model.training and model.fc1.training and not model.act.training
    assert not model._forward_hooks and not model.fc1._forward_pre_hooks
    nodes = _graph_nodes(tmp_path)
    by_name = {n["name"]: n for n in nodes}
    assert len(by_name) == len(nodes)
    ops = [n for n in nodes if n["op"] not in ("IO Node", "Parameter")]
    params = sorted(n["name"] for n in nodes if n["op"] == "Parameter")
    assert params == ["MLP/Linear[fc1]/bias", "MLP/Linear[fc1]/weight",
                      "MLP/Linear[fc2]/bias", "MLP/Linear[fc2]/weight"]
    # Kiln's trace: linear = permute + matmul + add; relu is one primitive
    assert [n["op"] for n in ops] == ["permute", "matmul", "add", "relu",
                                      "permute", "matmul", "add"]
    assert len(nodes) == 4 + 1 + 7 + 1            # parameters, input, IR nodes, output
    scopes = [n["name"].rsplit("/", 1)[0] for n in ops]
    assert scopes == ["MLP/Linear[fc1]"] * 3 + ["MLP/ReLU[act]"] + ["MLP/Linear[fc2]"] * 3
    for n in nodes:
        assert all(i in by_name for i in n["inputs"]), n
    assert _shapes(by_name["input/input.0"]) == [[10, 2]]
    assert _shapes(ops[1]) == [[10, 8]] and _shapes(ops[-1]) == [[10, 1]]
    assert ops[1]["inputs"] == ["input/input.0", ops[0]["name"]]
    (out,) = [n for n in nodes if n["name"].startswith("output/")]
    assert out["inputs"] == [ops[-1]["name"]]
    assert ops[0]["attrs"]["attr"][2] == [b"{dims=(1, 0)}"]


# ---- integrity, lifetime ---------------------------------------------------------------------

def test_corrupted_crc_is_detected(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_scalar("a", 1.0, 1)
    (path,) = glob.glob(str(tmp_path / "events.*"))
    raw = bytearray(open(path, "rb").read())
    assert len(read_records(path)) == 2
    raw[-6] ^= 0x01                                # a byte inside the last record's data
    open(path, "wb").write(bytes(raw))
    with pytest.raises(CorruptRecord, match="data crc"):
        read_records(path)
    raw[-6] ^= 0x01
    raw[0] ^= 0x01                                 # the first record's length
    open(path, "wb").write(bytes(raw))
    with pytest.raises(CorruptRecord, match="length crc"):
        read_records(path)


def test_queue_flush_purge_default_logdir(tmp_path, monkeypatch):
    w = SummaryWriter(tmp_path / "q", max_queue=3, flush_secs=1000)
    w.add_scalar("a", 1.0, 0)
    w.add_scalar("a", 2.0, 1)
    assert len(events(tmp_path / "q")) == 1       # queued, not yet written
    w.add_scalar("a", 3.0, 2)                      # the queue is full: written
    assert len(events(tmp_path / "q")) == 4
    w.add_scalar("a", 4.0, 3)
    w.flush()
    assert len(events(tmp_path / "q")) == 5
    w.close()
    w.close()                                      # closing twice is harmless

    t = SummaryWriter(tmp_path / "t", max_queue=100, flush_secs=0.2)
    t.add_scalar("a", 1.0, 0)
    deadline = time.time() + 5
    while len(events(tmp_path / "t")) < 2 and time.time() < deadline:
        time.sleep(0.05)                           # the flush thread writes it
    assert len(events(tmp_path / "t")) == 2
    t.close()

    with SummaryWriter(tmp_path / "p", purge_step=7) as p:
        p.add_scalar("a", 1.0, 7)
    ev = events(tmp_path / "p")
    assert [e["step"] for e in ev] == [0, 7, 7, 7]
    assert ev[1]["file_version"] == b"brain.Event:2"
    assert decode(ev[2]["session_log"])[1] == [1]   # SessionLog START at the purge step

    monkeypatch.chdir(tmp_path)
    with SummaryWriter(comment="_exp") as d:
        logdir = d.get_logdir()
    assert logdir.startswith("runs" + os.sep) and logdir.endswith("_exp")
    assert len(events(tmp_path / logdir)) == 1


def test_tensorboard_reads_the_files(tmp_path):
    pytest.importorskip("tensorboard", reason="cross-check with tensorboard's EventAccumulator; "
                                              "tensorboard is not a Kiln dependency")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    x = np.random.default_rng(3).standard_normal(500)
    with SummaryWriter(tmp_path) as w:
        for i in range(3):
            w.add_scalar("loss", 0.5 * i, i)
        w.add_histogram("h", x, 1)
        w.add_image("img", np.zeros((3, 4, 6), np.float32), 1)
        w.add_text("t", "hi", 1)
        w.add_graph(MLP(), torch.rand(4, 2))
    ea = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    ea.Reload()
    assert [(s.step, s.value) for s in ea.Scalars("loss")] == [(0, 0.0), (1, 0.5), (2, 1.0)]
    h = ea.Histograms("h")[0].histogram_value
    assert h.num == 500 and sum(h.bucket) == 500 and h.sum == pytest.approx(x.sum())
    im = ea.Images("img")[0]
    assert (im.width, im.height) == (6, 4)
    assert ea.Tensors("t/text_summary")[0].tensor_proto.string_val == [b"hi"]
    g = ea.Graph()
    assert len(g.node) == 13 and g.node[-1].name == "output/output.0"     # (relu: 1 IR node)


def test_add_graph_links_regions_across_a_graph_break(tmp_path):
    class Breaks(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.bn = nn.BatchNorm1d(3)

        def forward(self, x, y):
            h = self.bn(self.fc(x))
            if h.sum() > -1e9:          # Python reads a value: a graph break
                h = h * 2
            return h + y, h

    with SummaryWriter(tmp_path) as w:
        w.add_graph(Breaks(), (torch.rand(4, 3), torch.rand(4, 3)))
    nodes = _graph_nodes(tmp_path)
    by_name = {n["name"]: n for n in nodes}
    assert not [n for n in nodes if n["op"] == "Constant"]
    # eval-mode BatchNorm reads its running statistics
    assert sorted(n["name"] for n in nodes if n["op"] == "Buffer") == [
        "Breaks/BatchNorm1d[bn]/running_mean", "Breaks/BatchNorm1d[bn]/running_var"]
    (mul,) = [n for n in nodes if n["op"] == "mul" and n["name"].startswith("Breaks/mul")]
    # the second region's first input is the first region's BatchNorm result
    assert mul["inputs"][0].startswith("Breaks/BatchNorm1d[bn]/")
    outs = [n for n in nodes if n["name"].startswith("output/")]
    assert [by_name[o["inputs"][0]]["op"] for o in outs] == ["add", "mul"]
    assert all(i in by_name for n in nodes for i in n["inputs"])
