"""`make test`'s parallel run: the tests that share the machine run on one worker, one at a time,
while the others spread (tests/conftest.py decides, tests/parallel.py schedules)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests import reliability

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed (the [dev] extra)"
)

LOGGED = """
import os, time

def _log(name):
    with open(os.environ["LOG"], "a") as log:
        start = time.monotonic()
        time.sleep(0.2)
        log.write(f"{name} {os.environ['PYTEST_XDIST_WORKER']} {start} {time.monotonic()}\\n")
"""


def test_machine_wide_tests_run_on_one_worker_one_at_a_time_and_the_rest_spread(tmp_path):
    suite = tmp_path / "tests"
    (suite / "e2e").mkdir(parents=True)
    (suite / "e2e" / "test_mounts.py").write_text(
        LOGGED + "".join(f"\ndef test_m{i}():\n    _log('e2e')\n" for i in range(6))
    )
    (suite / "test_fixture.py").write_text(
        LOGGED + "import pytest\n\n@pytest.fixture\ndef employee():\n    return 'mw1'\n\n"
        + "".join(f"\ndef test_u{i}(employee):\n    _log('e2e')\n" for i in range(3))
    )  # fmt: skip
    (suite / "test_pure.py").write_text(LOGGED + "".join(f"\ndef test_p{i}():\n    _log('pure')\n" for i in range(12)))
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    log = tmp_path / "log"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(reliability.DOC.parents[1]), "LOG": str(log)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup", str(suite)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    runs = [line.split() for line in log.read_text().splitlines()]
    serial = sorted((float(start), float(end), worker) for kind, worker, start, end in runs if kind == "e2e")
    assert len(serial) == 9 and len({worker for _, _, worker in serial}) == 1  # one worker
    assert all(
        end <= next_start for (_, end, _), (next_start, _, _) in zip(serial, serial[1:], strict=False)
    )  # one at a time
    assert {worker for _, worker, _, _ in runs} == {"gw0", "gw1"}  # and the rest beside them
