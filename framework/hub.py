"""torch.hub: entrypoints from a repository's hubconf.py (a local directory, or a GitHub archive
downloaded into the hub cache) and checkpoints downloaded from URLs into it.

The cache layout, trust list, messages and errors are PyTorch's, so a hub directory is shared
with it: $TORCH_HOME/hub (TORCH_HOME defaults to $XDG_CACHE_HOME/torch, ~/.cache/torch), repos
in <owner>_<name>_<ref>/, checkpoints in checkpoints/. Downloads use urllib only."""
import contextlib
import hashlib
import importlib.util
import os
import re
import shutil
import sys
import uuid
import warnings
import zipfile
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

__all__ = ["download_url_to_file", "get_dir", "help", "list", "load",
           "load_state_dict_from_url", "set_dir"]

HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
_TRUSTED_REPO_OWNERS = ("facebookresearch", "facebookincubator", "pytorch", "fairinternal")
_GITHUB = "https://github.com"          # (tests point these at a local server)
_GITHUB_API = "https://api.github.com"
_hub_dir = None


# ---- directories ---------------------------------------------------------------------------------
def get_dir():
    """The hub cache directory: set_dir's, else $TORCH_HOME/hub."""
    if os.getenv("TORCH_HUB"):
        warnings.warn("TORCH_HUB is deprecated, please use env TORCH_HOME instead", stacklevel=2)
    if _hub_dir is not None:
        return _hub_dir
    home = os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch")
    return os.path.join(os.path.expanduser(os.getenv("TORCH_HOME", home)), "hub")


def set_dir(d):
    global _hub_dir
    _hub_dir = os.path.expanduser(os.fspath(d))


# ---- downloads -----------------------------------------------------------------------------------
def download_url_to_file(url, dst, hash_prefix=None, progress=True):
    """Download url to dst through a temporary file beside it (dst appears whole or not at all);
    with hash_prefix, the file's SHA256 must start with it (RuntimeError otherwise)."""
    dst = os.path.expanduser(dst)
    tmp = f"{dst}.{uuid.uuid4().hex}.partial"
    sha = hashlib.sha256()
    try:
        with urlopen(Request(url, headers={"User-Agent": "torch.hub"})) as u, \
                open(tmp, "xb") as f:
            total = u.headers.get("Content-Length")
            done = 0
            while True:
                buf = u.read(8192)
                if not buf:
                    break
                f.write(buf)
                sha.update(buf)
                done += len(buf)
                if progress and total:
                    sys.stderr.write(f"\r{100 * done // int(total):3d}% {done}/{total} bytes")
            if progress and total:
                sys.stderr.write("\n")
        if hash_prefix is not None:
            digest = sha.hexdigest()
            if digest[:len(hash_prefix)] != hash_prefix:
                raise RuntimeError(f'invalid hash value (expected "{hash_prefix}", got '
                                   f'"{digest}")')
        shutil.move(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _safe_extract(zf, dest):
    """Extract every member of zf under dest, refusing absolute paths and '..' (zip slip)."""
    root = os.path.realpath(dest)
    for m in zf.infolist():
        name = os.path.normpath(m.filename)
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            raise ValueError(f"Archive entry has absolute path: {m.filename}")
        if ".." in re.split(r"[/\\]", name):
            raise ValueError(f"Archive entry contains directory traversal: {m.filename}")
        if not os.path.realpath(os.path.join(root, name)).startswith(root + os.sep):
            raise ValueError(f"Archive entry escapes target directory: {m.filename}")
        zf.extract(m, dest)


def load_state_dict_from_url(url, model_dir=None, map_location=None, progress=True,
                             check_hash=False, file_name=None, weights_only=False):
    """framework.load of the file at url, downloaded once into <hub dir>/checkpoints (or
    model_dir). check_hash: the file name's '-<hex>.' part must prefix its SHA256. A zip holding
    one file (torch.save before 1.6) is extracted first."""
    from .serialization import load as _load
    if os.getenv("TORCH_MODEL_ZOO"):
        warnings.warn("TORCH_MODEL_ZOO is deprecated, please use env TORCH_HOME instead",
                      stacklevel=2)
    model_dir = model_dir or os.path.join(get_dir(), "checkpoints")
    os.makedirs(model_dir, exist_ok=True)
    name = file_name or os.path.basename(url.split("?")[0])
    cached = os.path.join(model_dir, name)
    if not os.path.exists(cached):
        sys.stderr.write(f'Downloading: "{url}" to {cached}\n')
        prefix = None
        if check_hash:
            m = HASH_REGEX.search(name)
            prefix = m.group(1) if m else None
        download_url_to_file(url, cached, prefix, progress=progress)
    if zipfile.is_zipfile(cached):
        with zipfile.ZipFile(cached) as zf:
            members = zf.infolist()
            if len(members) == 1 and not members[0].is_dir():     # the pre-1.6 format
                warnings.warn("Falling back to the old format < 1.6. This support will be "
                              "deprecated in favor of default zipfile format introduced in "
                              "1.6. Please redo torch.save() to save it in the new zipfile "
                              "format.", FutureWarning, stacklevel=2)
                _safe_extract(zf, model_dir)
                cached = os.path.join(model_dir, members[0].filename)
    return _load(cached, map_location=map_location, weights_only=weights_only)


# ---- repositories --------------------------------------------------------------------------------
def _parse_repo(github):
    info, ref = github.split(":") if ":" in github else (github, None)
    owner, name = info.split("/")
    if ref is None:     # the default branch: main when it exists, else master
        try:
            with urlopen(f"{_GITHUB}/{owner}/{name}/tree/main/"):
                ref = "main"
        except HTTPError as e:
            if e.code != 404:
                raise
            ref = "master"
        except URLError as e:       # offline: a cached copy of either will do
            ref = next((r for r in ("main", "master")
                        if os.path.exists(f"{get_dir()}/{owner}_{name}_{r}")), None)
            if ref is None:
                raise RuntimeError("It looks like there is no internet connection and the repo "
                                   f"could not be found in the cache ({get_dir()})") from e
    return owner, name, ref


def _check_trusted(owner, name, owner_name_ref, trust_repo):
    hub = get_dir()
    path = os.path.join(hub, "trusted_list")
    if not os.path.exists(path):
        open(path, "a").close()
    with open(path) as f:
        trusted = {line.strip() for line in f}
    owner_name = f"{owner}_{name}"
    # a repo downloaded before the trust list existed counts as trusted (PyTorch's rule)
    is_trusted = (owner_name in trusted or owner in _TRUSTED_REPO_OWNERS or
                  owner_name_ref in next(os.walk(hub))[1])
    if trust_repo is False or (trust_repo == "check" and not is_trusted):
        answer = input(f"The repository {owner_name} does not belong to the list of trusted "
                       "repositories and as such cannot be downloaded. Do you trust this "
                       "repository and wish to add it to the trusted list of repositories "
                       "(y/N)?")
        if answer.lower() in ("y", "yes"):
            if is_trusted:
                print("The repository is already trusted.")
        elif answer.lower() in ("n", "no", ""):
            raise Exception("Untrusted repository.")     # (PyTorch's class)
        else:
            raise ValueError(f"Unrecognized response {answer}.")
    if not is_trusted:
        with open(path, "a") as f:
            f.write(owner_name + "\n")


def _not_a_fork(owner, name, ref):
    """The ref must be a branch, tag or commit of owner/name itself (not of a fork)."""
    import json
    headers = {"Accept": "application/vnd.github.v3+json"}
    if os.environ.get("GITHUB_TOKEN"):
        headers["Authorization"] = f"token {os.environ['GITHUB_TOKEN']}"
    for kind in ("branches", "tags"):
        page = 1
        while True:
            url = f"{_GITHUB_API}/repos/{owner}/{name}/{kind}?per_page=100&page={page}"
            with urlopen(Request(url, headers=headers)) as r:
                items = json.loads(r.read().decode("utf-8"))
            if not items:
                break
            if any(b["name"] == ref or b["commit"]["sha"].startswith(ref) for b in items):
                return
            page += 1
    raise ValueError(f"Cannot find {ref} in https://github.com/{owner}/{name}. If it's a commit "
                     "from a forked repo, please call hub.load() with forked repo directly.")


def _repo_dir(github, force_reload, trust_repo, verbose=True, skip_validation=False):
    """The local copy of github ("owner/name[:ref]") in the hub cache, downloaded when missing
    (or force_reload)."""
    hub = get_dir()
    os.makedirs(hub, exist_ok=True)
    owner, name, ref = _parse_repo(github)
    ref_ = ref.replace("/", "_")
    key = f"{owner}_{name}_{ref_}"
    repo = os.path.join(hub, key)
    _check_trusted(owner, name, key, trust_repo)
    if not force_reload and os.path.exists(repo):
        if verbose:
            sys.stderr.write(f"Using cache found in {repo}\n")
        return repo
    if not skip_validation:
        _not_a_fork(owner, name, ref)
    archive = os.path.join(hub, ref_ + ".zip")
    if os.path.exists(archive):
        os.remove(archive)
    url = f"{_GITHUB}/{owner}/{name}/zipball/{ref}"
    sys.stdout.write(f'Downloading: "{url}" to {archive}\n')
    download_url_to_file(url, archive, progress=False)
    try:
        with zipfile.ZipFile(archive) as zf:
            # GitHub's archive holds one folder, <owner>-<name>-<sha>/
            top = os.path.join(hub, re.split(r"[/\\]", zf.infolist()[0].filename)[0])
            shutil.rmtree(top, ignore_errors=True)
            _safe_extract(zf, hub)
    finally:
        os.remove(archive)
    shutil.rmtree(repo, ignore_errors=True)
    shutil.move(top, repo)
    return repo


@contextlib.contextmanager
def _on_sys_path(path):
    sys.path.insert(0, path)
    try:
        yield
    finally:
        sys.path.remove(path)


def _hubconf(repo):
    path = os.path.join(repo, "hubconf.py")
    spec = importlib.util.spec_from_file_location("hubconf", path)
    if spec is None or spec.loader is None:
        raise AssertionError(f"failed to load spec from {path}")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def _entry(hubconf, model):
    if not isinstance(model, str):
        raise ValueError("Invalid input: model should be a string of function name")
    missing = [p for p in getattr(hubconf, "dependencies", ())
               if importlib.util.find_spec(p) is None]
    if missing:
        raise RuntimeError(f"Missing dependencies: {', '.join(missing)}")
    fn = getattr(hubconf, model, None) if model in dir(hubconf) else None
    if fn is None or not callable(fn):
        raise RuntimeError(f"Cannot find callable {model} in hubconf")
    return fn


def list(github, force_reload=False, skip_validation=False, trust_repo="check",  # noqa: A001
         verbose=True):
    """The entrypoints (public callables) of the repo's hubconf.py."""
    repo = _repo_dir(github, force_reload, trust_repo, verbose, skip_validation)
    with _on_sys_path(repo):
        m = _hubconf(repo)
    return [k for k in dir(m) if callable(getattr(m, k)) and not k.startswith("_")]


def help(github, model, force_reload=False, skip_validation=False,  # noqa: A001
         trust_repo="check"):
    """The docstring of entrypoint `model`."""
    repo = _repo_dir(github, force_reload, trust_repo, True, skip_validation)
    with _on_sys_path(repo):
        m = _hubconf(repo)
    return _entry(m, model).__doc__


def load(repo_or_dir, model, *args, source="github", trust_repo="check", force_reload=False,
         verbose=True, skip_validation=False, **kwargs):
    """Call entrypoint `model` of the hubconf.py in a local directory (source='local') or in a
    GitHub repo "owner/name[:ref]" (downloaded into the hub cache) with args and kwargs."""
    source = source.lower()
    if source not in ("github", "local"):
        raise ValueError(f'Unknown source: "{source}". Allowed values: "github" | "local".')
    if source == "github":
        repo_or_dir = _repo_dir(repo_or_dir, force_reload, trust_repo, verbose,
                                skip_validation)
    with _on_sys_path(repo_or_dir):
        return _entry(_hubconf(repo_or_dir), model)(*args, **kwargs)
