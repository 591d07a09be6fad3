"""The pipeline's lstat and open of an egress file by os.stat and os.open themselves (FAST_STAT)
answer as agent.walk's any-length helpers do: the same stat, the same descriptor's file, the same
error (type, errno, strerror) for every kind of path, including one past PATH_MAX."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent import pipeline as module
from agent.inspector import open_regular
from agent.walk import PATH_MAX, lstat
from tests.agent.test_walk import deep_tree, remove_tree

_KINDS = [
    "file",
    "empty",
    "symlink",
    "dangling",
    "fifo",
    "dir",
    "missing",
    "device",
    "long-name",
    "notdir",
    "deep",
    "non-utf8",
]
_FIELDS = ("st_mode", "st_ino", "st_dev", "st_nlink", "st_uid", "st_size", "st_mtime_ns", "st_ctime_ns")


def _make(root: Path, kind: str) -> str:
    path = root / kind
    if kind in ("file", "notdir"):
        path.write_bytes(b"\0data")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "symlink":
        (root / "target").write_bytes(b"secret")
        path.symlink_to(root / "target")
    elif kind == "dangling":
        path.symlink_to(root / "nowhere")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    elif kind == "device":
        return "/dev/null"
    elif kind == "long-name":
        return str(root / ("x" * 300))
    elif kind == "deep":  # past PATH_MAX: only the helpers' descriptor walk reaches it
        return os.fsdecode(deep_tree(root, 60))
    elif kind == "non-utf8":
        path = Path(os.fsdecode(bytes(root) + b"/caf\xe9"))
        path.write_bytes(b"\0x")
    return str(path / "inside") if kind == "notdir" else str(path)


def _outcome(call, path: str):
    try:
        got = call(path)
    except OSError as exc:
        return ("error", type(exc), exc.errno, exc.strerror)
    if not isinstance(got, os.stat_result):  # (fd, stat)
        fd, st = got
        try:
            assert os.fstat(fd).st_ino == st.st_ino
            return ("open", os.pread(fd, 100, 0), *(getattr(st, f) for f in _FIELDS))
        finally:
            os.close(fd)
    return ("stat", *(getattr(got, f) for f in _FIELDS))


@pytest.mark.parametrize("kind", _KINDS)
def test_lstat_and_open_answer_as_the_helpers(tmp_path, monkeypatch, kind):
    path = _make(tmp_path, kind)
    assert (len(os.fsencode(path)) > PATH_MAX) == (kind == "deep")
    monkeypatch.setattr(module, "FAST_STAT", True)
    fast = (_outcome(module._lstat, path), _outcome(module._open_regular, path))
    monkeypatch.setattr(module, "FAST_STAT", False)
    ref = (_outcome(module._lstat, path), _outcome(module._open_regular, path))
    assert fast == ref == (_outcome(lstat, path), _outcome(open_regular, path))
    expected = {"file": "open", "empty": "open", "deep": "open", "non-utf8": "open"}.get(kind, "error")
    assert fast[1][0] == expected
    remove_tree(tmp_path)  # a tree past PATH_MAX: removed by descriptor
