"""agent._egress.read_files (a pipeline step's closed writes read and hashed in one call) against
readbatch.read_reference, its contract in Python, over real files on a real file system: the same
answers, the same refusals, and never the bytes of anything but the regular file the lstat saw."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import readbatch

pytestmark = pytest.mark.skipif(readbatch._egress is None, reason="agent._egress not built")

# what a file of a batch may be: (kind, size)
_KINDS = st.sampled_from(
    [
        "file",
        "file",
        "file",
        "empty",
        "symlink",
        "dangling",
        "fifo",
        "dir",
        "missing",
        "device",
        "long",
        "nul",
        "notdir",
    ]
)
_ENTRY = st.tuples(_KINDS, st.integers(0, 200_000))


def _make(root: str, i: int, kind: str, size: int, seed: bytes) -> str:
    path = os.path.join(root, f"e{i:03d}")
    data = (seed * (size // len(seed) + 1))[:size]
    if kind == "file":
        with open(path, "wb") as f:
            f.write(data)
    elif kind == "empty":
        open(path, "wb").close()
    elif kind == "symlink":
        with open(path + ".target", "wb") as f:
            f.write(data)
        os.symlink(path + ".target", path)
    elif kind == "dangling":
        os.symlink(path + ".nowhere", path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        os.mkdir(path)
    elif kind == "device":
        return "/dev/null"
    elif kind == "long":
        return os.path.join(root, "x" * 300)  # ENAMETOOLONG for its last part
    elif kind == "nul":  # the file before the NUL exists: the name must not be cut there
        with open(path, "wb") as f:
            f.write(data)
        return path + "\0tail"
    elif kind == "notdir":
        with open(path, "wb") as f:
            f.write(data)
        return os.path.join(path, "inside")
    return path


def _same(fast, ref, path: str) -> None:
    if ref is None:
        assert fast is None, path
        return
    assert fast is not None, path
    for name in (
        "st_mode",
        "st_ino",
        "st_dev",
        "st_nlink",
        "st_uid",
        "st_gid",
        "st_size",
        "st_mtime",
        "st_mtime_ns",
        "st_ctime",
        "st_ctime_ns",
        "st_blksize",
        "st_blocks",
        "st_rdev",
    ):
        assert getattr(fast.st, name) == getattr(ref.st, name), (path, name)
    assert fast[3:] == ref[3:], path
    with open(path, "rb") as f:
        data = f.read()
    assert (fast.sha256, fast.size, fast.head) == (hashlib.sha256(data).hexdigest(), len(data), data[:8192])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    entries=st.lists(_ENTRY, min_size=1, max_size=12),
    head_bytes=st.sampled_from([0, 1, 8192, 70_000]),
    inline=st.sampled_from([0, 5000, readbatch.INLINE_BYTES]),
    budget=st.sampled_from([1, 100_000, readbatch.CALL_BUDGET_BYTES]),
)
def test_read_files_answers_and_refuses_as_the_reference(
    tmp_path_factory, monkeypatch, entries, head_bytes, inline, budget
):
    root = str(tmp_path_factory.mktemp("batch"))
    paths = [_make(root, i, kind, size, bytes([i + 1, 0, 7])) for i, (kind, size) in enumerate(entries)]
    monkeypatch.setattr(readbatch, "INLINE_BYTES", inline)
    monkeypatch.setattr(readbatch, "CALL_BUDGET_BYTES", budget)
    ref = readbatch.read_reference(paths, head_bytes)
    fast = readbatch.read_files(paths, head_bytes)
    try:
        assert len(fast) == len(paths)
        for path, f, r in zip(paths, fast, ref, strict=True):
            if r is not None and head_bytes == 8192:
                _same(f, r, path)
            else:
                assert (f is None) == (r is None), path
                if f is not None:
                    assert f[3:] == r[3:], path
        for (kind, _), f in zip(entries, fast, strict=True):
            if kind not in ("file", "empty"):
                assert f is None, kind  # links, FIFOs, folders, devices, gone, bad names: the Python path's
    finally:
        for got in (*fast, *ref):
            if got is not None:
                os.close(got.fd)


_EVERY_KIND = ["file", "empty", "symlink", "dangling", "fifo", "dir", "missing", "device", "long", "nul", "notdir"]


@pytest.mark.parametrize("kind", _EVERY_KIND)
def test_each_kind_of_entry_is_answered_only_when_a_plain_file(tmp_path, kind):
    paths = [_make(str(tmp_path), 0, kind, 3000, b"\1\0\7"), _make(str(tmp_path), 1, "file", 10, b"x")]
    fast, ref = readbatch.read_files(paths, 8192), readbatch.read_reference(paths, 8192)
    try:
        assert (fast[0] is not None, ref[0] is not None) == (kind in ("file", "empty"),) * 2
        for path, f, r in zip(paths, fast, ref, strict=True):
            if r is not None:
                _same(f, r, path)
    finally:
        for got in (*fast, *ref):
            if got is not None:
                os.close(got.fd)


def test_the_descriptor_returned_is_the_file_read(tmp_path):
    (tmp_path / "a").write_bytes(b"abc" * 1000)
    (got,) = readbatch.read_files([str(tmp_path / "a")], 16)
    try:
        assert os.fstat(got.fd).st_ino == got.st.st_ino == got.inode
        assert os.pread(got.fd, 16, 0) == got.head == b"abc" * 5 + b"a"
        assert got.looked_at <= time.monotonic()
    finally:
        os.close(got.fd)


def test_bad_arguments_are_refused_before_any_file_is_opened(tmp_path):
    egress = readbatch._egress
    with pytest.raises(TypeError):
        egress.read_files([str(tmp_path)], 0, 10, 10)  # str, not bytes
    with pytest.raises(ValueError):
        egress.read_files([], -1, 10, 10)
    with pytest.raises(ValueError):
        egress.read_files([], 2 * 1024 * 1024, 10, 10)
    with pytest.raises(ValueError):
        egress.read_files([b"/"] * 5000, 0, 10, 10)
    with pytest.raises(ValueError):
        egress.read_files([], 0, -1, 10)


def test_a_link_or_fifo_swapped_in_is_never_read(tmp_path):
    """A symlink (to a secret) and a FIFO are renamed over the file again and again while it is
    read: every answer is the regular file itself, by inode and by content, never the secret, and
    nothing hangs on the FIFO."""
    path, secret = tmp_path / "f", tmp_path / "secret"
    secret.write_bytes(b"SECRET" * 5000)
    plain = b"plain" * 3000
    stop = threading.Event()
    inodes: set[int] = set()

    def swap() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            tmp = tmp_path / f"t{i}"
            if i % 3 == 0:
                os.symlink(secret, tmp)
            elif i % 3 == 1:
                os.mkfifo(tmp)
            else:
                tmp.write_bytes(plain)
                inodes.add(os.lstat(tmp).st_ino)
            os.replace(tmp, path)

    thread = threading.Thread(target=swap)
    thread.start()
    answered = 0
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            for got in readbatch.read_files([str(path)] * 200, 8192):
                if got is None:
                    continue
                os.close(got.fd)
                answered += 1
                assert got.st.st_ino in inodes and got.size == len(plain)
                assert got.sha256 == hashlib.sha256(plain).hexdigest() and got.head == plain[:8192]
    finally:
        stop.set()
        thread.join()
    assert answered > 0


def test_a_file_growing_while_read_is_hashed_as_far_as_read(tmp_path):
    """Appended to while read: each answer's digest is of its first `size` bytes, and a size other
    than the open's fstat said shows (the pipeline reports such a file again)."""
    path = tmp_path / "grows"
    path.write_bytes(b"")
    stop = threading.Event()

    def grow() -> None:
        with open(path, "ab") as f:
            while not stop.is_set():
                f.write(os.urandom(4096))
                f.flush()

    thread = threading.Thread(target=grow)
    thread.start()
    answers = []
    try:
        for _ in range(200):
            answers += [a for a in readbatch.read_files([str(path)], 8192) if a is not None]
    finally:
        stop.set()
        thread.join()
    data = path.read_bytes()
    assert answers
    for got in answers:
        os.close(got.fd)
        assert got.sha256 == hashlib.sha256(data[: got.size]).hexdigest()
        assert got.head == data[: min(got.size, 8192)]
        assert got.size <= readbatch.INLINE_BYTES
