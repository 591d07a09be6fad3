"""agent/_restat.c, the re-check's lstats of many files in one call, against the reference: an
os.lstat of each and the comparison agent/pipeline.py makes (Pipeline._changed_since_report).
It may name a file the reference finds unchanged only when the reference then decides (a value past
64 bits); it must name every file the reference finds changed or cannot lstat."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from agent import pipeline
from tests.agent.far_times import YEAR_2400_NS, dated

_restat = pytest.importorskip("agent._restat", reason="agent/_restat.c not built (no C compiler or Python headers)")



def entry_of(st: os.stat_result) -> tuple:
    return (0.0, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, 0.0, 0.0)


def reference(paths: list[str], entries: list[tuple]) -> list[int]:
    changed = []
    for i, (path, entry) in enumerate(zip(paths, entries, strict=True)):
        try:
            st = os.lstat(path)
        except (OSError, ValueError):
            changed.append(i)
            continue
        if (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) != entry[1:5]:
            changed.append(i)
    return changed


def test_names_every_file_changed_gone_or_replaced_and_no_other(tmp_path):
    names = [f"f{i}" for i in range(12)] + ["\udcff-not-utf8", "名字.dwg"]
    paths = [str(tmp_path / n) for n in names]
    for p in paths:
        with open(p, "wb") as f:
            f.write(b"drawing")
    entries = [entry_of(os.lstat(p)) for p in paths]
    with open(paths[1], "ab") as f:  # grew
        f.write(b"more")
    os.utime(paths[2], ns=(0, entries[2][2] + 1))  # its mtime moved (and so its ctime)
    os.chmod(paths[3], 0o600)  # only its ctime
    os.remove(paths[4])  # gone
    os.remove(paths[5])
    os.symlink(paths[0], paths[5])  # a link in its place
    os.remove(paths[6])
    os.mkfifo(paths[6])  # a FIFO in its place (never opened by an lstat)
    os.replace(paths[8], paths[7])  # another inode under the name
    entries[9] = (*entries[9][:4], entries[9][4] ^ (1 << 63))  # an inode with its top bit set
    paths.append(str(tmp_path / "missing" / "deeper"))
    entries.append(entries[0])
    paths.append(str(tmp_path / ("x" * 300)))  # ENAMETOOLONG
    entries.append(entries[0])
    got = _restat.changed(paths, entries)
    assert got == reference(paths, entries)
    assert got == [1, 2, 3, 4, 5, 6, 7, 8, 9, 14, 15]  # the test's own changes, so reference() is checked too
    assert os.path.basename(paths[12]) == "\udcff-not-utf8" and 12 not in got  # encoded as os.fsencode does


def test_times_past_2262_are_compared_whole(tmp_path):
    path = tmp_path / "future.dwg"
    path.write_bytes(b"drawing")
    dated(path, YEAR_2400_NS)
    entry = entry_of(os.lstat(path))
    # the entry's time does not fit 64 bits: the caller compares it (named), never a wrong answer
    assert _restat.changed([str(path)], [entry]) == [0] and reference([str(path)], [entry]) == []
    os.utime(path, ns=(YEAR_2400_NS, YEAR_2400_NS + 1))
    assert reference([str(path)], [entry]) == [0] and _restat.changed([str(path)], [entry]) == [0]
    # a file moved to 2400 from a time that fits: its own 128-bit time differs from the entry's
    plain = tmp_path / "plain.dwg"
    plain.write_bytes(b"drawing")
    before = entry_of(os.lstat(plain))
    os.utime(plain, ns=(YEAR_2400_NS, YEAR_2400_NS + (before[2] % 2**64)))
    assert _restat.changed([str(plain)], [before]) == [0] == reference([str(plain)], [before])


def test_a_time_2_to_the_64_ns_past_the_entry_is_a_change():
    """A time that a 64-bit product of its seconds would wrap to the entry's (2**64 ns later): tmpfs keeps any."""
    if not os.path.isdir("/dev/shm") or os.statvfs("/dev/shm").f_blocks == 0:
        pytest.skip("no /dev/shm")
    folder = tempfile.mkdtemp(dir="/dev/shm")
    try:
        path = os.path.join(folder, "far.dwg")
        with open(path, "wb") as f:
            f.write(b"drawing")
        try:
            os.utime(path, ns=(2**64 + 12_345, 2**64 + 12_345))
        except (OverflowError, OSError):
            pytest.skip("this file system keeps no time past 2446")
        st = os.lstat(path)
        if st.st_mtime_ns != 2**64 + 12_345:
            pytest.skip(f"/dev/shm kept another time ({st.st_mtime_ns})")
        entry = (0.0, st.st_size, 12_345, st.st_ctime_ns, st.st_ino, 0.0, 0.0)
        assert reference([path], [entry]) == [0] == _restat.changed([path], [entry])
    finally:
        shutil.rmtree(folder)


def test_a_nul_in_a_path_is_named_for_the_caller(tmp_path):
    ok = tmp_path / "ok"
    ok.write_bytes(b"x")
    entry = entry_of(os.lstat(ok))
    assert _restat.changed([str(ok) + "\0tail", str(ok)], [entry, entry]) == [0]


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="as many"):
        _restat.changed(["/a"], [])
    with pytest.raises(TypeError):
        _restat.changed([b"/a"], [(0, 1, 2, 3, 4, 5, 6)])
    with pytest.raises(TypeError):
        _restat.changed(["/a"], [(0, 1, 2)])
    with pytest.raises(TypeError):
        _restat.changed(["/a"], [(0, 1.5, 2, 3, 4, 5, 6)])
    assert _restat.changed([], []) == []


def test_the_pipeline_takes_the_same_looks_either_way(tmp_path, monkeypatch):
    """Pipeline._look_at with the C call and with the reference keeps and forgets the same files."""
    paths = [str(tmp_path / f"f{i}") for i in range(6)]
    for p in paths:
        with open(p, "wb") as f:
            f.write(b"drawing")

    entries = {path: (100.0, *entry_of(os.lstat(path))[1:5], 0.0, 5.0) for path in paths}
    entries[paths[1]] = (100.0, 999, *entries[paths[1]][2:])  # changed behind the pipeline's back
    entries[paths[2]] = (*entries[paths[2]][:6], 4.0)  # due at another time: passed over
    os.remove(paths[3])

    class Lanes:
        in_flight: set[str] = set()

    def looked(fast: bool) -> tuple[list[str], list[str], set[str]]:
        monkeypatch.setattr(pipeline, "FAST_LOOKS", fast)
        p = object.__new__(pipeline.Pipeline)
        p._recheck = dict(entries)
        p._watch_only, p._egress, p.lanes, p._file_watched, p._files = {}, {}, Lanes(), set(), None
        changed_seen: list[str] = []  # the files found changed (pending again, in the pipeline)

        def changed_since_report(path, entry, st, closed=False):
            if (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) == entry[1:5]:
                return False
            changed_seen.append(path)
            return True

        p._changed_since_report = changed_since_report
        forgotten: set[str] = set()
        p._forget = forgotten.add
        kept = p._look_at(5.0, [*paths, str(tmp_path / "never-reported")], 1.0)
        return sorted(path for path, _ in kept), sorted(changed_seen), forgotten

    fast, slow = looked(True), looked(False)
    assert fast == slow
    assert fast[0] == sorted([paths[0], paths[4], paths[5]]) and fast[1] == [paths[1]] and fast[2] == {paths[3]}
