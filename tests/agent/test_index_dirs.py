"""The index's refresh compares a directory at a time (agent/index.py `_rows_in`, `_outside`):
rows directly in a directory and nothing deeper, names that sort around "/" ("b.txt", "b/",
"b0"), a directory removed whole, a folder dropped from the config, a file moved between
directories, and progress whose total grows to the bytes hashed."""

from __future__ import annotations

import os
import shutil

from agent.config import ClassifiedFolder
from agent.hashing import Hasher
from agent.index import FingerprintIndex


def _index(tmp_path, *folders: ClassifiedFolder) -> FingerprintIndex:
    return FingerprintIndex(str(tmp_path / "state" / "index.db"), folders, Hasher())


def _paths(index: FingerprintIndex) -> set[str]:
    return {os.fsdecode(p) for (p,) in index.db.conn().execute("SELECT path FROM files")}


def _write(path, data: bytes = b"") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data or os.urandom(64))


def test_names_that_sort_around_the_slash_keep_their_own_rows(tmp_path):
    root = tmp_path / "rnd"
    names = ["b.txt", "b/x.dwg", "b/c/y.dwg", "b0", "b-1/z.dwg", "a", "c\xa0d/e.dwg"]
    for name in names:
        _write(root / name)
    index = _index(tmp_path, ClassifiedFolder(str(root), "core", "研发"))
    assert index.refresh().hashed == len(names)
    again = index.refresh()
    assert (again.files, again.hashed, again.removed) == (len(names), 0, 0)
    (root / "b" / "x.dwg").unlink()  # one file in the middle of the range goes; its neighbours stay
    stats = index.refresh()
    assert (stats.hashed, stats.removed) == (0, 1)
    assert _paths(index) == {str(root / n) for n in names if n != "b/x.dwg"}
    index.close()


def test_a_directory_removed_whole_and_a_folder_dropped_from_the_config_lose_their_rows(tmp_path):
    kept, dropped = tmp_path / "rnd", tmp_path / "sales"
    for name in ("p1.dwg", "old/p2.dwg", "old/deeper/p3.dwg"):
        _write(kept / name)
    _write(dropped / "q.xlsx")
    index = _index(tmp_path, ClassifiedFolder(str(kept), "core"), ClassifiedFolder(str(dropped), "important"))
    assert index.refresh().hashed == 4
    index.close()
    shutil.rmtree(kept / "old")
    index = _index(tmp_path, ClassifiedFolder(str(kept), "core"))
    stats = index.refresh()
    assert (stats.files, stats.hashed, stats.removed) == (1, 0, 3)
    assert _paths(index) == {str(kept / "p1.dwg")}
    index.close()


def test_a_file_moved_to_another_directory_is_found_there_and_gone_here(tmp_path):
    root = tmp_path / "rnd"
    _write(root / "a" / "m.dwg", b"moved content")
    index = _index(tmp_path, ClassifiedFolder(str(root), "core"))
    index.refresh()
    (root / "b").mkdir()
    os.rename(root / "a" / "m.dwg", root / "b" / "m.dwg")
    stats = index.refresh()
    assert (stats.files, stats.removed) == (1, 1)
    assert _paths(index) == {str(root / "b" / "m.dwg")}
    index.close()


def test_a_nested_folder_is_compared_once_under_its_own_entry(tmp_path):
    outer, inner = tmp_path / "rnd", tmp_path / "rnd" / "pump"
    _write(outer / "x.dwg")
    _write(inner / "y.dwg")
    index = _index(tmp_path, ClassifiedFolder(str(outer), "important", "研发"), ClassifiedFolder(str(inner), "core", "泵"))
    stats = index.refresh()
    assert (stats.files, stats.hashed) == (2, 2)
    assert index.get(str(inner / "y.dwg")).entry == "泵" and index.get(str(outer / "x.dwg")).entry == "研发"
    assert index.refresh().files == 2
    index.close()


def test_progress_ends_at_the_bytes_hashed_and_never_goes_past_its_total(tmp_path, monkeypatch):
    import agent.index

    monkeypatch.setattr(agent.index, "COMMIT_EVERY", 3)  # several batches while the walk goes on
    root = tmp_path / "rnd"
    for i in range(10):
        _write(root / f"d{i % 4}" / f"f{i}.bin", os.urandom(1000 + i))
    calls: list[tuple[int, int]] = []
    index = _index(tmp_path, ClassifiedFolder(str(root), "core"))
    stats = index.refresh(lambda done, total: calls.append((done, total)))
    assert stats.hashed == 10 and stats.bytes_hashed == sum(1000 + i for i in range(10))
    assert all(done <= total for done, total in calls)
    assert calls[-1] == (stats.bytes_hashed, stats.bytes_hashed)
    assert [t for _, t in calls] == sorted(t for _, t in calls)
    index.close()
