"""The eager op suites and the compiled-model equivalence tests, run again on the interpret
device: tests/_interp_suite.py in a child process (TRITON_INTERPRET=1, `import torch` blocked,
KILN_TEST_DEVICE=interpret so conftest.py makes 'interpret' the default device). What it leaves
out, and why, is _interp_suite.DESELECT. A failure here shows the child's failures."""
import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import _interp_suite  # noqa: E402


@pytest.mark.skipif(bool(os.environ.get("KILN_TEST_DEVICE")),
                    reason="this test starts the interpret run; it does not run inside it")
def test_eager_and_compiled_suites_pass_on_the_interpret_device(tmp_path):
    env = dict(os.environ, KILN_CACHE_DIR=str(tmp_path / "kiln_cache"))
    for k in ("KILN_DEVICE", "KILN_TEST_DEVICE", "PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS"):
        env.pop(k, None)
    # two workers: on a 2-core CI machine this child runs beside the other half of the suite
    p = subprocess.run([sys.executable, os.path.join(HERE, "_interp_suite.py"), "-n", "2"],
                       cwd=ROOT, capture_output=True, text=True, timeout=1200, env=env)
    out = p.stdout + p.stderr
    assert p.returncode == 0, f"interpret run failed (rc {p.returncode}):\n{out[-12000:]}"
    m = re.search(r"(\d+) passed", out)
    assert m and int(m.group(1)) >= 300, out[-3000:]     # 365 when this was written
    assert "failed" not in out.splitlines()[-1], out[-3000:]


def test_deselections_name_existing_tests_and_give_reasons():
    for nodeid, why in _interp_suite.DESELECT.items():
        path, _, name = nodeid.partition("::")
        assert path in _interp_suite.FILES, nodeid
        base = name.split("[")[0]
        with open(os.path.join(HERE, path)) as f:
            assert f"def {base}(" in f.read(), f"{nodeid}: no such test"
        assert len(why) > 40, nodeid
