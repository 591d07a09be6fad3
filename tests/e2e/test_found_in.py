"""Where a register item was found, end to end: a real agent whose group holds an item whose folder
has 3 files reports 3 in its heartbeat, and the collector's register API shows
1 PC, 3 files."""

from __future__ import annotations

from tests.e2e.harness import Deployment, wait_for
from tests.e2e.test_groups import _api, _item


def test_an_agent_reports_its_item_files_and_the_register_shows_them(tmp_path):
    folder = tmp_path / "研发" / "图纸"
    folder.mkdir(parents=True)
    for n in range(3):
        (folder / f"part-{n}.dwg").write_bytes(b"AC1032 drawing " + bytes([n]) * 4000)
    usb = tmp_path / "usb"
    usb.mkdir()
    d = Deployment(tmp_path, [], egress_folders=[usb])
    try:
        d.start_server()
        item = _item(d, "泵叶轮图纸", "core", str(folder))
        group = _api(d, "POST", "/api/v1/groups", {"name": "研发", "register_items": [item]})["id"]
        _api(d, "PUT", "/api/v1/groups/rules", {"rules": [{"group_id": group, "hostname": "*"}]})
        d.start_agent()

        def found() -> tuple[int, int] | None:
            [row] = [i for i in d.get("/api/v1/register")["items"] if i["id"] == item]
            return (row["pcs"], row["files"]) if row["files"] else None

        assert wait_for(found, 30, 0.2, "the item's files in a heartbeat") == (1, 3)
        assert d.agent_status()["indexed_by_item"] == {str(item): 3}
    finally:
        d.close()
