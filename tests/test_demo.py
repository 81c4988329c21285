"""examples/train_digits.py: a short run learns, checkpoints every epoch, and resuming gives
the same trajectory as an uninterrupted run."""
import importlib.util
import os
import subprocess
import sys

import pytest

import framework as torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytest.importorskip("sklearn")


def _demo():
    spec = importlib.util.spec_from_file_location("train_digits",
                                                  os.path.join(ROOT, "examples", "train_digits.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_one_epoch_on_a_subset_learns(tmp_path):
    hist = _demo().main(["--epochs", "1", "--subset", "800", "--quiet", "--no-plot",
                         "--checkpoint-dir", str(tmp_path)])
    assert len(hist) == 1
    assert hist[0]["test_acc"] > 0.5          # chance is 0.1
    ck = torch.load(tmp_path / "digits_last.pt")
    assert ck["epoch"] == 0 and set(ck) >= {"model", "optimizer", "scheduler", "history"}
    assert ck["optimizer"]["state"][0]["step"].item() == 25   # 800 // 32 full batches


def test_resume_matches_uninterrupted_run(tmp_path):
    demo = _demo()
    common = ["--epochs", "3", "--subset", "300", "--quiet", "--no-plot"]
    full = demo.main(common + ["--checkpoint-dir", str(tmp_path / "a")])
    part = demo.main(common + ["--checkpoint-dir", str(tmp_path / "b"), "--stop-after", "1"])
    assert len(part) == 1
    resumed = demo.main(common + ["--checkpoint-dir", str(tmp_path / "b"), "--resume"])
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(resumed) == strip(full)


def test_script_runs_standalone(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "train_digits.py"),
                        "--epochs", "1", "--subset", "200", "--quiet",
                        "--checkpoint-dir", str(tmp_path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "test accuracy:" in r.stdout
    assert (tmp_path / "digits_last.pt").exists()


def test_compiled_training_replays_and_matches_eager(tmp_path, capsys):
    # the flagship --compile mode: OneCycleLR changes lr and betas every step, dropout draws
    # masks; the compiled step still replays and follows the eager trajectory
    hist = _demo().main(["--epochs", "2", "--subset", "320", "--quiet", "--no-plot",
                         "--compile", "--checkpoint-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "compiled step: 1 compiles" in out
    line = [ln for ln in out.splitlines() if ln.startswith("compiled step:")][0]
    replayed = int(line.split(" fused groups, ")[1].split(" of ")[0])
    assert replayed == 20 - 3, line          # 2 epochs x 10 batches; 3 traces before replays
    eager = torch.load(tmp_path / "digits_last.pt")["history"]
    comp = torch.load(tmp_path / "digits_compiled_last.pt")["history"]
    for a, b in zip(eager, comp):
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-5
        assert a["test_acc"] == b["test_acc"]
    assert len(hist) == 2


def test_demo_trains_on_the_interpret_device_like_the_cpu(tmp_path):
    # --device: the model and every batch move to the device (here the GPU kernels through
    # Triton's interpreter: conv, batch norm, pooling, AdamW, OneCycleLR, checkpoint). Dropout
    # is off: a device draws its masks from its own Philox stream, not the cpu's (as PyTorch),
    # so only a dropout-free run can equal the cpu run; device dropout is tested on its own.
    code = ("import json, sys; sys.argv = ['x']; sys.path.insert(0, 'examples'); "
            "import train_digits as d; "
            "h = d.main(['--device', 'interpret', '--epochs', '1', '--subset', '32', '--quiet', "
            f"'--dropout', '0', '--no-plot', '--checkpoint-dir', {str(tmp_path / 'dev')!r}]); "
            "print(json.dumps(h))")
    env = dict(os.environ, KILN_DEVICE="interpret")
    env.pop("TRITON_INTERPRET", None)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "device interpret" in r.stdout
    import json
    dev = json.loads(r.stdout.strip().splitlines()[-1])
    cpu = _demo().main(["--epochs", "1", "--subset", "32", "--quiet", "--no-plot",
                        "--dropout", "0", "--checkpoint-dir", str(tmp_path / "cpu")])
    for a, b in zip(dev, cpu):
        for k in ("train_loss", "test_loss", "test_acc"):
            assert abs(a[k] - b[k]) <= 1e-4 * max(1.0, abs(b[k])), (k, a, b)
    assert (tmp_path / "dev" / "digits_last.pt").exists()
