"""The heartbeat's index size per register item (issue 18): files under each item's folders,
counted once per item when its folders nest or overlap, and a folder two items find is both's."""

from __future__ import annotations

from agent.central import MAX_REPORTED_ITEMS, CentralItem, CentralSet, indexed_by_item, resolve
from agent.config import ClassifiedFolder
from agent.hashing import Hasher
from agent.index import FingerprintIndex
from rules.grouppolicy import GroupPolicy, RegisterLocation


def _files(root, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())


def test_counts_per_item_with_nested_and_overlapping_folders(tmp_path):
    data = tmp_path / "data"
    _files(data, "draw/a.dwg", "draw/b.dwg", "draw/pump/c.dwg", "drawings/d.dwg", "price/p.xlsx", "other/o.txt")
    (data / "empty").mkdir()
    group = GroupPolicy(
        "g",
        (
            # the item's two patterns nest (draw and draw/pump): c.dwg is counted once
            RegisterLocation(1, "图纸", "core", "研发部", (str(data / "draw"), str(data / "draw/pump"))),
            # overlaps item 1 (draw/pump is also its folder) and has its own price folder
            RegisterLocation(2, "泵", "important", "", (str(data / "draw/pump"), str(data / "price"))),
            RegisterLocation(3, "空", "general", "", (str(data / "empty"),)),
            RegisterLocation(4, "无处", "general", "", (str(data / "absent"),)),
            RegisterLocation(5, "旧图", "general", "", (str(data / "drawings"),)),
        ),
        (),
    )
    central = resolve(group, (), (), ())
    index = FingerprintIndex(str(tmp_path / "index.db"), central.classified, Hasher(), fingerprint=None)
    try:
        index.refresh()
        assert index.count() == 5  # other/ is no item's
        # "draw" is no prefix of "drawings": d.dwg is item 5's only
        assert indexed_by_item(central, index.count_under) == {1: 3, 2: 2, 3: 0, 4: 0, 5: 1}
        assert (
            index.count_under([str(data / "draw") + "/", str(data / "draw")]) == 3
        )  # a trailing slash is the same folder
        assert index.count_under([]) == 0
    finally:
        index.close()


def test_count_under_the_root_counts_every_file(tmp_path):
    data = tmp_path / "d"
    _files(data, "x/1", "y/2")
    index = FingerprintIndex(
        str(tmp_path / "index.db"), (ClassifiedFolder(str(data), "core", "n"),), Hasher(), fingerprint=None
    )
    try:
        index.refresh()
        assert index.count_under(["/", str(data / "x")]) == 2
    finally:
        index.close()


def test_reports_at_most_the_bound():
    items = tuple(CentralItem(i, f"n{i}", "core", "") for i in range(1, MAX_REPORTED_ITEMS + 50))
    counted = indexed_by_item(CentralSet(items=items), lambda folders: 1)
    assert len(counted) == MAX_REPORTED_ITEMS
    assert set(counted.values()) == {0}  # no folders here: none counted
