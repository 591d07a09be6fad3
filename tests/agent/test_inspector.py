"""Inspection in worker processes: the same answers as in-process inspection for every format,
as an unprivileged user when the agent is root, and a deadline that kills a worker that hangs."""

from __future__ import annotations

import bz2
import io
import os
import signal
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from agent.content.archive import TEXT_TRACED_FINGERPRINTS
from agent.content.inspect import inspect_file
from agent.content.worker import encode_inspection
from agent.inspector import InspectorProcess, decode_inspection, open_regular
from tests.agent.content import makers

MARKED = "内部资料 注意保密\n客户 张三 身份证 11010519491231002X 手机 13800138000\n" * 3


def _corpus(folder: Path) -> list[Path]:
    text = folder / "客户名单.txt"
    text.write_bytes(MARKED.encode("gb18030"))
    files = [
        text,
        makers.docx(folder / "budget.docx"),
        makers.xlsx(folder / "roster.xlsx"),
        makers.pptx(folder / "slides.pptx"),
        makers.odf(folder / "spec.odt", "odt"),
        makers.pdf(folder / "spec.pdf"),
        makers.write_zip(folder / "drawings.zip", {"rev3/pump.dwg": b"AC1032" + os.urandom(2000), "notes.txt": MARKED}),
        makers.write_zip(folder / "empty-member.zip", {"a.txt": ""}),
    ]
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as t:
        info = tarfile.TarInfo("名单.txt")
        info.size = len(MARKED.encode())
        t.addfile(info, io.BytesIO(MARKED.encode()))
    (folder / "backup.tar.bz2").write_bytes(bz2.compress(tar.getvalue()))
    files.append(folder / "backup.tar.bz2")
    (folder / "holiday.jpg").write_bytes((folder / "budget.docx").read_bytes())  # a renamed type
    files.append(folder / "holiday.jpg")
    return files


@pytest.fixture
def worker():
    inspector = InspectorProcess()
    yield inspector
    inspector.close()


def test_a_worker_answers_as_in_process_inspection_does_for_every_format(worker, tmp_path):
    """Also the proof that a worker without root still reaches every reader it needs (as root the
    interpreter may live where the unprivileged user cannot read: all is loaded before the drop)."""
    for path in _corpus(tmp_path):
        fd, _st = open_regular(str(path))
        try:
            assert worker.inspect(fd, path.name) == inspect_file(str(path)), path.name
        finally:
            os.close(fd)
    assert worker.replaced == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs the agent to run as root")
def test_the_worker_runs_without_root_and_cannot_open_the_files_it_inspects(worker, tmp_path):
    secret = tmp_path / "root-only.txt"
    secret.write_text(MARKED)
    os.chmod(secret, 0o600)
    fd, _st = open_regular(str(secret))
    try:
        assert worker.inspect(fd, "root-only.txt").detections  # read through the descriptor it was given
    finally:
        os.close(fd)
    status = Path(f"/proc/{worker.pid()}/status").read_text()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    caps = next(line for line in status.splitlines() if line.startswith("CapEff:")).split()[1]
    no_new_privs = next(line for line in status.splitlines() if line.startswith("NoNewPrivs:")).split()[1]
    assert "0" not in uids and int(caps, 16) == 0 and no_new_privs == "1"


def test_a_worker_that_overruns_its_deadline_is_killed_and_replaced(tmp_path):
    inspector = InspectorProcess(max_seconds=1, grace_s=0.5)
    try:
        path = makers.docx(tmp_path / "a.docx")
        fd, _st = open_regular(str(path))
        inspector.inspect(fd, "a.docx")  # the worker is up
        first = inspector.pid()
        os.kill(first, signal.SIGSTOP)  # a parser stuck in a loop, as far as the agent can tell
        started = time.monotonic()
        hung = inspector.inspect(fd, "a.docx")
        assert time.monotonic() - started < 5
        assert [d.detector for d in hung.detections] == ["inspection_timeout"]
        assert inspector.replaced == 1
        again = inspector.inspect(fd, "a.docx")  # a fresh worker answers the next file
        assert again.file_type == "docx" and inspector.pid() != first
        os.close(fd)
    finally:
        inspector.close()


def test_a_worker_that_dies_mid_file_gives_inspection_failed_and_is_replaced(worker, tmp_path):
    path = makers.docx(tmp_path / "a.docx")
    fd, _st = open_regular(str(path))
    worker.inspect(fd, "a.docx")
    dying = worker.pid()
    os.kill(dying, signal.SIGSTOP)  # it takes the next file and never answers...
    threading.Timer(0.5, os.kill, (dying, signal.SIGKILL)).start()  # ...then dies (a parser crash)
    died = worker.inspect(fd, "a.docx")
    assert [d.detector for d in died.detections] == ["inspection_failed"]
    assert worker.inspect(fd, "a.docx").file_type == "docx" and worker.pid() != dying
    os.close(fd)


def test_a_fifo_is_refused_at_open_and_never_blocks(tmp_path):
    fifo = tmp_path / "pipe.docx"
    os.mkfifo(fifo)
    with pytest.raises(OSError):
        open_regular(str(fifo))
    assert [d.detector for d in inspect_file(str(fifo)).detections] == ["not_regular"]


@pytest.mark.parametrize(
    "answer",
    [
        {"file_type": 1, "type_mismatch": None, "detections": [], "members": [], "fingerprints": []},
        {"file_type": None, "type_mismatch": None, "detections": [["x", "1", ""]], "members": [], "fingerprints": []},
        {"file_type": None, "type_mismatch": None, "detections": [], "members": [["a", 1, 2]], "fingerprints": []},
        {"file_type": None, "type_mismatch": None, "detections": [], "members": [], "fingerprints": [True]},
        {"file_type": None, "type_mismatch": None, "detections": []},
        {"file_type": None, "type_mismatch": None, "detections": [], "members": [["a", 1, 2, "0" * 64, [], "12", []]], "fingerprints": []},
        {"file_type": None, "type_mismatch": None, "detections": [], "members": [["a", 1, 2, "0" * 64, [], [1.5], []]], "fingerprints": []},
        {"file_type": None, "type_mismatch": None, "detections": [], "members": [["a", 1, 2, "0" * 64, [], list(range(999)), []]], "fingerprints": []},
        {"file_type": None, "type_mismatch": None, "detections": [], "members": [["a", 1, 2, "0" * 64, [], [], "12"]], "fingerprints": []},
        {"file_type": None, "type_mismatch": None, "detections": [], "members": [["a", 1, 2, "0" * 64, [], [], [1.5]]], "fingerprints": []},
        {"file_type": None, "type_mismatch": None, "detections": [], "members": [["a", 1, 2, "0" * 64, [], []]], "fingerprints": []},
        {"file_type": None, "type_mismatch": None, "detections": [], "members": [
            ["a", 1, 2, "0" * 64, [], [], list(range(TEXT_TRACED_FINGERPRINTS // 2 + 1))],
            ["b", 1, 2, "0" * 64, [], [], list(range(TEXT_TRACED_FINGERPRINTS // 2 + 1))],
        ], "fingerprints": []},  # more text fingerprints over the members than a worker ever sends
    ],
)
def test_a_malformed_answer_from_a_worker_is_refused(answer):
    """A worker parsed a hostile file: what it sends back is checked like any other input."""
    with pytest.raises((TypeError, ValueError, KeyError)):
        decode_inspection(answer)


def test_answers_round_trip(tmp_path):
    path = makers.write_zip(tmp_path / "d.zip", {"a/b.txt": MARKED, "c.bin": b"\x00" * 10, "d.bin": os.urandom(20_000)})
    inspection = inspect_file(str(path))
    assert decode_inspection(encode_inspection(inspection)) == inspection
    assert [len(m.sketch) > 5 for m in inspection.members] == [False, False, True]  # a member's bytes are sketched
    assert {m.name: bool(m.fingerprints) for m in inspection.members} == {"a/b.txt": True, "c.bin": False, "d.bin": False}


def test_a_worker_that_cannot_start_is_not_restarted_for_every_file(tmp_path, monkeypatch):
    """A worker dying at start (a broken install) must not cost a process start per file: after a
    few in a row the files fail fast for a while, each still reported as not inspected."""
    inspector = InspectorProcess()
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the worker exits before it answers
    path = makers.docx(tmp_path / "a.docx")
    fd, _st = open_regular(str(path))
    try:
        started = time.monotonic()
        found = [inspector.inspect(fd, "a.docx") for _ in range(50)]
        assert time.monotonic() - started < 20
        assert all([d.detector for d in f.detections] == ["inspection_failed"] for f in found)
        assert inspector.replaced == 3  # three starts, then rest
    finally:
        os.close(fd)
        inspector.close()


def test_the_index_fingerprints_classified_documents_in_a_worker(worker, tmp_path):
    """Employees save into classified folders too: their documents are parsed without root, with
    the same fingerprints as in-process extraction; a FIFO in their place gives none, at once."""
    from agent.content.inspect import file_fingerprints
    from agent.inspector import WorkerFingerprints

    fingerprints = WorkerFingerprints(worker)
    spec = makers.docx(tmp_path / "spec.docx", body=tuple(f"第{i}段 叶轮 公差 热处理 {i * 7919}" for i in range(40)))
    assert fingerprints(str(spec)) == file_fingerprints(str(spec)) and fingerprints(str(spec))
    os.mkfifo(tmp_path / "fifo.docx")
    assert fingerprints(str(tmp_path / "fifo.docx")) == frozenset()


def test_an_idle_worker_is_ended_and_the_next_file_starts_a_fresh_one(worker, tmp_path):
    """About 50 MB a worker: an agent with nothing to inspect holds none."""
    path = makers.docx(tmp_path / "a.docx")
    fd, _st = open_regular(str(path))
    try:
        worker.inspect(fd, "a.docx")
        first = worker.pid()
        worker.close_if_idle(idle_s=60)
        assert worker.pid() == first, "busy a moment ago: kept"
        time.sleep(0.3)
        worker.close_if_idle(idle_s=0.2)
        assert worker.pid() is None and not os.path.exists(f"/proc/{first}/status") or "zombie" in open(f"/proc/{first}/status").read()
        assert worker.inspect(fd, "a.docx").file_type == "docx" and worker.pid() not in (None, first)
        assert worker.replaced == 0, "ended for idleness, not replaced for failing"
    finally:
        os.close(fd)
