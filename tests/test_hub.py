"""torch.hub against a local directory and a local HTTP server standing in for GitHub and a
model store: entrypoints, dependency and trust checks, hash-checked cached downloads."""
import functools
import hashlib
import http.server
import json
import os
import threading
import zipfile

import numpy as np
import pytest

import framework as torch
from framework import hub

HUBCONF = '''"""A test hub."""
import framework as torch

dependencies = ["numpy"]


def mlp(hidden=4, pretrained=False):
    """An MLP with `hidden` units."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.ReLU())


def _helper():
    return 1

answer = 42
'''


@pytest.fixture
def hubdir(tmp_path):
    old = hub._hub_dir
    hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    hub._hub_dir = old


@pytest.fixture
def server(tmp_path):
    """A static file server over tmp_path/www; yields (root dir, base url)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        # GitHub's API pages: the files hold page 1, later pages are empty
        if self.path.startswith("/repos/") and "page=1" not in self.path.split("&")[-1:][0]:
            body = b"[]"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


def test_dirs(tmp_path, monkeypatch):
    old = hub._hub_dir
    try:
        hub._hub_dir = None
        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
        assert hub.get_dir() == str(tmp_path / "th" / "hub")
        monkeypatch.delenv("TORCH_HOME")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert hub.get_dir() == str(tmp_path / "xdg" / "torch" / "hub")
        hub.set_dir(tmp_path / "mine")
        assert hub.get_dir() == str(tmp_path / "mine")
    finally:
        hub._hub_dir = old


def test_load_local(tmp_path):
    d = tmp_path / "repo"
    d.mkdir()
    (d / "hubconf.py").write_text(HUBCONF)
    m = torch.hub.load(str(d), "mlp", source="local", hidden=5)
    assert isinstance(m, torch.nn.Sequential) and m[0].weight.shape == (5, 3)
    torch.manual_seed(0)
    ref = torch.nn.Linear(3, 5)
    np.testing.assert_array_equal(m[0].weight.detach().numpy(), ref.weight.detach().numpy())
    with pytest.raises(RuntimeError, match="Cannot find callable nope in hubconf"):
        torch.hub.load(str(d), "nope", source="local")
    with pytest.raises(RuntimeError, match="Cannot find callable answer in hubconf"):
        torch.hub.load(str(d), "answer", source="local")      # not callable
    with pytest.raises(ValueError, match="model should be a string"):
        torch.hub.load(str(d), 3, source="local")
    with pytest.raises(ValueError, match='Unknown source: "svn"'):
        torch.hub.load(str(d), "mlp", source="svn")
    (d / "hubconf.py").write_text(HUBCONF.replace('["numpy"]', '["numpy", "no_such_pkg_kiln"]'))
    with pytest.raises(RuntimeError, match="Missing dependencies: no_such_pkg_kiln"):
        torch.hub.load(str(d), "mlp", source="local")
    assert str(d) not in __import__("sys").path          # the repo left sys.path again


def test_download_url_to_file_checks_hash(tmp_path, server):
    root, url = server
    data = os.urandom(20000)
    (root / "blob.bin").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    dst = tmp_path / "out.bin"
    hub.download_url_to_file(f"{url}/blob.bin", str(dst), hash_prefix=digest[:10],
                             progress=False)
    assert dst.read_bytes() == data
    bad = tmp_path / "bad.bin"
    with pytest.raises(RuntimeError, match=f'invalid hash value \\(expected "0000", got '
                                           f'"{digest}"\\)'):
        hub.download_url_to_file(f"{url}/blob.bin", str(bad), hash_prefix="0000",
                                 progress=False)
    assert not bad.exists() and not [p for p in os.listdir(tmp_path) if p.endswith(".partial")]


def test_load_state_dict_from_url_caches(tmp_path, server, hubdir):
    root, url = server
    sd = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([1, 2])}
    tmp = tmp_path / "sd.pt"
    torch.save(sd, str(tmp))
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    name = f"weights-{digest[:8]}.pt"
    (root / name).write_bytes(tmp.read_bytes())
    got = hub.load_state_dict_from_url(f"{url}/{name}", check_hash=True, progress=False)
    assert sorted(got) == ["b", "w"] and torch.equal(got["w"], sd["w"])
    assert (hubdir / "checkpoints" / name).exists()
    (root / name).unlink()           # the second call reads the cache, not the server
    assert torch.equal(hub.load_state_dict_from_url(f"{url}/{name}")["b"], sd["b"])
    # a hash in the name that does not match the content
    (root / "weights-abcdef12.pt").write_bytes(tmp.read_bytes())
    with pytest.raises(RuntimeError, match='invalid hash value \\(expected "abcdef12"'):
        hub.load_state_dict_from_url(f"{url}/weights-abcdef12.pt", check_hash=True,
                                     progress=False)
    assert not (hubdir / "checkpoints" / "weights-abcdef12.pt").exists()
    # file_name and model_dir; a zip holding one file is PyTorch's pre-1.6 format
    with zipfile.ZipFile(root / "old.zip", "w") as z:
        z.write(tmp, "inner.pt")
    with pytest.warns(FutureWarning, match="Falling back to the old format < 1.6"):
        old = hub.load_state_dict_from_url(f"{url}/old.zip", model_dir=str(tmp_path / "md"),
                                           file_name="legacy.zip", progress=False)
    assert torch.equal(old["w"], sd["w"]) and (tmp_path / "md" / "inner.pt").exists()


def _fake_github(root, owner="acme", name="models", ref="main"):
    """GitHub's URLs for owner/name at ref, as files under root."""
    (root / owner / name / "tree" / ref).mkdir(parents=True)
    (root / owner / name / "tree" / ref / "index.html").write_text("ok")
    (root / owner / name / "zipball").mkdir()
    with zipfile.ZipFile(root / owner / name / "zipball" / ref, "w") as z:
        z.writestr(f"{owner}-{name}-1a2b3c/hubconf.py", HUBCONF)
        z.writestr(f"{owner}-{name}-1a2b3c/README", "x")
    api = root / "repos" / owner / name
    api.mkdir(parents=True)
    (api / "branches").write_text(json.dumps([{"name": ref, "commit": {"sha": "1a2b3c"}}]))
    (api / "tags").write_text("[]")


def test_github_source_trust_and_cache(server, hubdir, monkeypatch, capsys):
    root, url = server
    _fake_github(root)
    monkeypatch.setattr(hub, "_GITHUB", url)
    monkeypatch.setattr(hub, "_GITHUB_API", url)
    # an owner outside PyTorch's trusted list: "check" asks, and "n" refuses
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    with pytest.raises(Exception, match="Untrusted repository."):
        torch.hub.load("acme/models", "mlp")
    assert not (hubdir / "acme_models_main").exists()
    monkeypatch.setattr("builtins.input", lambda prompt: "maybe")
    with pytest.raises(ValueError, match="Unrecognized response maybe."):
        torch.hub.list("acme/models:main")
    m = torch.hub.load("acme/models", "mlp", hidden=2, trust_repo=True)
    assert m[0].weight.shape == (2, 3)
    assert (hubdir / "acme_models_main" / "hubconf.py").exists()
    assert "acme_models" in (hubdir / "trusted_list").read_text().split()
    assert not [p for p in os.listdir(hubdir) if p.endswith(".zip")]
    # now trusted and cached: no prompt, no download
    monkeypatch.setattr("builtins.input", lambda prompt: pytest.fail("asked again"))
    (root / "acme" / "models" / "zipball" / "main").unlink()
    capsys.readouterr()
    assert torch.hub.list("acme/models:main") == ["mlp"]
    assert "Using cache found in" in capsys.readouterr().err
    assert torch.hub.help("acme/models:main", "mlp") == "An MLP with `hidden` units."
    # a ref that is not one of the repo's branches or tags (a fork's commit)
    with pytest.raises(ValueError, match="Cannot find deadbeef in https://github.com/acme/"):
        torch.hub.load("acme/models:deadbeef", "mlp", trust_repo=True)


def test_safe_extract_refuses_traversal(tmp_path):
    p = tmp_path / "evil.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("../escape.txt", "x")
    with zipfile.ZipFile(p) as z, pytest.raises(ValueError, match="directory traversal"):
        hub._safe_extract(z, str(tmp_path / "out"))
    assert not (tmp_path / "escape.txt").exists()
