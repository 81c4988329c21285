"""The `kiln` console script: --version, --help, and honest 'not yet' for later subcommands."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _kiln(*args):
    exe = os.path.join(os.path.dirname(sys.executable), "kiln")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "framework.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_version_matches_package():
    import framework
    p = _kiln("--version")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"kiln {framework.__version__}"


def test_module_form_works_too():
    p = subprocess.run([sys.executable, "-m", "framework.cli", "--version"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.startswith("kiln ")


def test_help_lists_subcommands():
    p = _kiln("--help")
    assert p.returncode == 0
    for name in ("dump", "explain", "run", "--version"):
        assert name in p.stdout


@pytest.mark.parametrize("sub", ["dump", "explain"])
def test_subcommands_report_a_missing_script(sub):
    p = _kiln(sub, "no_such_script.py")
    assert p.returncode == 2
    assert "no such script: no_such_script.py" in p.stderr


def test_unknown_subcommand_is_a_usage_error():
    p = _kiln("frobnicate")
    assert p.returncode == 2
    assert "invalid choice" in p.stderr


def test_main_in_process(capsys):
    from framework.cli import main
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("kiln ")
    assert main([]) == 0
    assert "usage: kiln" in capsys.readouterr().out


def test_dump_options_may_follow_the_script():
    """`kiln dump train.py --asm --out d --compile` (the form the issue uses): dump's own
    options are taken wherever they stand, the rest goes to the script, `--` ends that."""
    from framework.cli import build_parser, _dump_options_after_script
    ns = build_parser().parse_args(["dump", "train.py", "--asm", "--out", "d", "--compile",
                                    "--max-asm=3", "--", "--out", "x"])
    _dump_options_after_script(ns)
    assert ns.asm is True and ns.out == "d" and ns.max_asm == 3
    assert ns.args == ["--compile", "--out", "x"]
