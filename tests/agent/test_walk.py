"""agent/walk.py: depth, names and unreadable subtrees change nothing, or are reported."""

import errno
import json
import os
import stat
import tempfile
from pathlib import Path

import pytest

from agent import walk as walk_module
from agent.walk import PATH_MAX, Unwalkable, open_file, walk, walk_files

pytestmark = pytest.mark.skipif(not walk_module.BY_DESCRIPTOR, reason="directory descriptors: POSIX only")

LEVEL = b"d" * 99  # 60 levels of 100 bytes: a tree 6,000 bytes deep


def deep_tree(root: Path, levels: int, name: bytes = LEVEL, content: bytes = b"deep secret\n") -> bytes:
    """A chain of directories `levels` deep with one file at the bottom; its raw path.
    (os.makedirs cannot: the path is longer than PATH_MAX.)"""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    path = os.fsencode(root)
    try:
        for _ in range(levels):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd, path = child, path + b"/" + name
        leaf = os.open(b"bottom.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(leaf, content)
        os.close(leaf)
    finally:
        os.close(fd)
    return path + b"/bottom.txt"


def remove_tree(root: Path) -> None:
    """Empty root, a tree of any depth, with short paths only: each directory's entries are moved
    up into root, then it is removed (shutil.rmtree recurses once per level)."""
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    moved = 0
    try:
        while names := os.listdir(top):
            for name in names:
                if not stat.S_ISDIR(os.stat(name, dir_fd=top, follow_symlinks=False).st_mode):
                    os.unlink(name, dir_fd=top)
                    continue
                os.chmod(name, 0o700, dir_fd=top)
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=top)
                try:
                    for inner in os.listdir(sub):
                        moved += 1
                        os.rename(inner, f"up{moved}", src_dir_fd=sub, dst_dir_fd=top)
                finally:
                    os.close(sub)
                os.rmdir(name, dir_fd=top)
    finally:
        os.close(top)


@pytest.fixture
def tree(tmp_path):
    yield tmp_path
    remove_tree(tmp_path)


def test_a_tree_6000_bytes_deep_is_walked_and_its_file_opened(tree):
    bottom = deep_tree(tree, 60)
    assert len(bottom) > 6000 > PATH_MAX
    with pytest.raises(OSError) as too_long:
        os.open(bottom, os.O_RDONLY)
    assert too_long.value.errno == errno.ENAMETOOLONG  # what a path-based walk meets
    assert not any(files for _root, _dirs, files in os.walk(tree) if _root.count("/") > 50)

    problems: list[Unwalkable] = []
    found = list(walk_files(tree, problems))

    assert problems == []
    assert [f.path for f in found] == [bottom]
    fd = open_file(bottom)
    try:
        assert os.read(fd, 100) == b"deep secret\n"
    finally:
        os.close(fd)


def test_a_chain_thousands_of_levels_deep_needs_few_descriptors(tree):
    bottom = deep_tree(tree, 3000, name=b"a")  # os.fwalk holds one descriptor per level
    before = len(os.listdir("/proc/self/fd"))
    problems: list[Unwalkable] = []
    most = 0
    for folder in walk(tree, problems):
        most = max(most, len(os.listdir("/proc/self/fd")) - before)
        if folder.files:
            fd = folder.open(b"bottom.txt")
            assert os.read(fd, 100) == b"deep secret\n"
            os.close(fd)
    assert problems == []
    assert most <= 3
    assert len(os.listdir("/proc/self/fd")) == before
    assert open_file(bottom) >= 0


def test_a_deep_tree_branching_at_every_level_is_walked_past_the_descriptor_cap(tree, monkeypatch):
    monkeypatch.setattr(walk_module, "MAX_OPEN_DIRS", 4)
    fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    expected = []
    path = os.fsencode(tree)
    for _ in range(40):  # each level: a leaf folder with a file, and the folder going on
        os.mkdir(b"leaf", dir_fd=fd)
        leaf = os.open(b"leaf/f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.close(leaf)
        expected.append(path + b"/leaf/f")
        os.mkdir(b"next" + b"x" * 100, dir_fd=fd)
        child = os.open(b"next" + b"x" * 100, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd, path = child, path + b"/next" + b"x" * 100
    os.close(fd)
    before = len(os.listdir("/proc/self/fd"))

    problems: list[Unwalkable] = []
    found = sorted(f.path for f in walk_files(tree, problems))

    assert problems == []
    assert found == sorted(expected)
    assert max(map(len, found)) > PATH_MAX
    assert len(os.listdir("/proc/self/fd")) == before


def test_names_that_are_not_utf8_or_hold_control_characters_are_walked_as_bytes(tree):
    names = [b"plan\xff.txt", b"\x80\x80", b"line\nbreak", b"\x1b[31mred", "图纸".encode("gbk")]
    for name in names:
        (Path(os.fsdecode(os.fsencode(tree) + b"/" + name))).write_bytes(name)
    problems: list[Unwalkable] = []
    found = {f.name: f for f in walk_files(tree, problems)}
    assert sorted(found) == sorted(names)
    for name, f in found.items():
        fd = open_file(f.path)
        assert os.read(fd, 100) == name
        os.close(fd)


def test_symlinks_fifos_and_devices_are_not_files_and_links_are_not_followed(tree):
    (tree / "real").mkdir()
    (tree / "real" / "a.txt").write_text("a")
    (tree / "dirlink").symlink_to(tree / "real")
    (tree / "filelink").symlink_to(tree / "real" / "a.txt")
    os.mkfifo(tree / "fifo")
    problems: list[Unwalkable] = []
    assert [f.path for f in walk_files(tree, problems)] == [os.fsencode(tree / "real" / "a.txt")]
    assert problems == []
    for path, code in [("filelink", errno.ELOOP), ("fifo", errno.EINVAL), ("real", errno.EINVAL)]:
        with pytest.raises(OSError) as refused:
            open_file(tree / path)
        assert refused.value.errno == code, path


def test_open_file_of_a_long_path_follows_no_symlink_anywhere(tree):
    bottom = deep_tree(tree, 60)
    top_level = os.fsencode(tree) + b"/" + LEVEL
    os.rename(top_level, os.fsencode(tree) + b"/moved")
    os.symlink(os.fsencode(tree) + b"/moved", top_level)
    with pytest.raises(OSError) as refused:
        open_file(bottom)
    assert refused.value.errno in (errno.ELOOP, errno.ENOTDIR)
    problems: list[Unwalkable] = []
    assert [len(f.path) for f in walk_files(tree, problems)] == [len(bottom) - len(LEVEL) + len(b"moved")]


def test_a_missing_root_is_reported_not_silently_empty(tmp_path):
    problems: list[Unwalkable] = []
    assert list(walk(tmp_path / "gone", problems)) == []
    assert problems == [Unwalkable(os.fsencode(tmp_path / "gone"), errno.ENOENT, "No such file or directory")]


def _walk_as(uid: int, root: Path) -> dict:
    """Walk root in a forked child that runs as uid (no exec: the venv's python may be unreadable)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            problems: list[Unwalkable] = []
            files = [f.path.decode() for f in walk_files(root, problems)]
            out = {"files": files, "problems": [[p.path.decode(), p.errno, p.reason] for p in problems]}
            os.write(write, json.dumps(out).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        data = f.read()
    assert os.waitpid(pid, 0)[1] == 0
    return json.loads(data)


def test_subtrees_an_unprivileged_user_cannot_read_are_reported_with_their_reason():
    root = Path(tempfile.mkdtemp(prefix="miwei-walk-"))
    try:
        root.chmod(0o755)
        (root / "open").mkdir()
        (root / "open" / "seen.txt").write_text("x")
        (root / "locked").mkdir()
        (root / "locked" / "hidden.txt").write_text("x")
        (root / "locked").chmod(0o700)
        (root / "listable_only").mkdir(mode=0o755)
        (root / "listable_only" / "inner").mkdir()
        (root / "listable_only" / "inner" / "f").write_text("x")
        (root / "listable_only" / "inner").chmod(0o711)  # enter, but not list
        if os.geteuid() == 0:
            result = _walk_as(65534, root)
        else:
            problems: list[Unwalkable] = []
            files = [f.path.decode() for f in walk_files(root, problems)]
            result = {"files": files, "problems": [[p.path.decode(), p.errno, p.reason] for p in problems]}
        assert result["files"] == [str(root / "open" / "seen.txt")]
        assert sorted(result["problems"]) == [
            [str(root / "listable_only" / "inner"), errno.EACCES, "Permission denied"],
            [str(root / "locked"), errno.EACCES, "Permission denied"],
        ]
    finally:
        remove_tree(root)
        root.rmdir()


def test_the_walk_reports_stats_from_lstat(tree):
    (tree / "f").write_bytes(b"12345")
    problems: list[Unwalkable] = []
    (found,) = walk_files(tree, problems)
    assert found.stat.st_size == 5 and stat.S_ISREG(found.stat.st_mode)


def test_a_walk_stopped_early_closes_every_directory_it_holds(tree):
    for top in "abc":
        for sub in "xyz":
            os.makedirs(tree / top / sub / "q")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        folders = walk(tree, [])
        for _ in range(3):  # the root, a, a/x: three directories open at the third
            next(folders)
        folders.close()
    assert len(os.listdir("/proc/self/fd")) == before
