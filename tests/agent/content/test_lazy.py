"""The agent's main process runs the detectors over file names only: numpy (some 11 MB) and the
PDF readers (some 25 MB) stay out of it until a long text or a PDF is read (agent/content/lazy.py). The idle agent's RSS goal (< 80 MB,
`python -m bench idle`) was missed when the detectors imported numpy at start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.content import lazy

PROBE = """
import sys
import agent.app
from agent.content.detectors import detect
from agent.content.document import NAME, Document, TextPart
found = detect(Document(None, (TextPart(NAME, "客户 110101199003074514 13812345678.txt"),)))
assert {d.detector for d in found} >= {"cn_resident_id"}, found
print("numpy" in sys.modules)
print(any(m in sys.modules for m in ("pypdf", "pypdfium2")))
text = "身份证 110101199003074514 " * 400  # past NUMPY_SCAN_CHARS: the numpy scan
found = detect(Document(None, (TextPart(NAME, "x.txt"), TextPart("body", text))))
assert any(d.detector == "cn_resident_id" and d.count == 400 for d in found), found
print("numpy" in sys.modules)
"""


def test_names_are_scanned_without_numpy_and_long_texts_with_it():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "True"]


def test_the_stand_in_puts_the_module_in_its_place():
    namespace: dict = {}
    namespace["j"] = lazy.lazy("json", namespace, "j")
    assert namespace["j"].dumps([1]) == "[1]"
    import json

    assert namespace["j"] is json


WARM = """
import sys
from agent.content import worker
from agent.content.ids import vector
worker._warm_up()
print(all(m in sys.modules for m in ("numpy", "pypdf", "pypdfium2")), vector._divisions.cache_info().currsize)
"""


def test_a_worker_loads_the_lazy_modules_in_its_warm_up():
    """An inspection worker may lose read access to the interpreter's files when it drops root:
    what is imported lazily must be imported before, in the warm-up."""
    out = subprocess.run([sys.executable, "-c", WARM], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "1"]


EMAILS = """
import sys
from agent.content import worker
from agent.content.inspect import inspect_file
worker._warm_up()
before = set(sys.modules)
eml, msg = (inspect_file(path) for path in sys.argv[1:3])
assert eml.members and msg.members, (eml, msg)
print(sorted(set(sys.modules) - before))
"""


def test_a_worker_warmed_up_reads_saved_emails_without_importing_anything(tmp_path):
    """The email package's modules and the .msg reader load lazily: the warm-up inspects a sample
    of each, so a worker that lost read access to the interpreter's files still reads them."""
    from email import policy

    from tests.agent.content.test_mime import _message
    from tests.agent.content.test_ole_msg import sample_msg

    (tmp_path / "a.eml").write_bytes(_message(b"drawing" * 1000).as_bytes(policy=policy.SMTP))
    (tmp_path / "b.msg").write_bytes(sample_msg(b"drawing" * 1000, b"pdf" * 1000))
    probe = [sys.executable, "-c", EMAILS, str(tmp_path / "a.eml"), str(tmp_path / "b.msg")]
    out = subprocess.run(probe, capture_output=True, text=True, check=True, cwd=Path(__file__).parents[3]).stdout
    assert out.strip() == "[]"


QUIET = """
from loguru import logger
from agent.content import worker
if worker_setup:
    worker._log_without_values()
def read(document):
    text = "客户 110105" + "19491231002X " + document  # (split: a traceback quotes its source lines)
    raise ValueError("a reader's bug " + str(len(text)))
try:
    read("TOP-" + "SECRET-PUMP-CURVE")
except ValueError:
    logger.exception("inspection failed")
"""


@pytest.mark.parametrize("worker_setup", [False, True])
def test_a_workers_failure_logs_no_document_text(tmp_path, worker_setup):
    """loguru's default handler prints the values of a traceback's variables (the first case shows
    it does, from a file as the worker's modules are): a reader's failure in the worker put the
    document's text into the agent's journal. The worker's own setup leaves the values out."""
    script = tmp_path / "failing_reader.py"
    script.write_text(f"worker_setup = {worker_setup}\n" + QUIET, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[3])
    assert "inspection failed" in done.stderr and "ValueError" in done.stderr
    leaked = "TOP-SECRET" in done.stderr or "11010519491231002X" in done.stderr
    assert leaked is not worker_setup
