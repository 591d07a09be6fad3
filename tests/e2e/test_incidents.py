"""Issue 19 item 1 with a real agent: an employee copies 13 classified drawings to a loop-mounted USB
stick; the collector shows ONE incident naming the stick, with all 13 files (before: an alert per
file), and a second stick in the same minutes is an incident of its own."""

from __future__ import annotations

import os
import time

import pytest

from tests.e2e import mounts
from tests.e2e.conftest import copy
from tests.e2e.harness import Deployment, wait_for
from tests.e2e.incidents import files_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KINDS = ("vfat", "ext4")  # loop devices: the label is read from the file system; the first one this kernel has
FILES = 13


@pytest.fixture
def sticks(tmp_path):
    why = {kind: mounts.unavailable(kind) for kind in KINDS}
    usable = [kind for kind, reason in why.items() if reason is None]
    if not usable:
        pytest.skip("; ".join(f"{kind} stick: {reason}" for kind, reason in why.items()))
    kind = usable[0]
    media_root = tmp_path / "media"
    media_root.mkdir()
    made = []
    for name in ("STICK1", "STICK2"):
        image = tmp_path / f"{name}.img"
        mounts.make_image(kind, image, label=name)
        made.append((image, media_root / name))
    yield kind, media_root, made
    for _, mountpoint in made:
        mounts.unmount(mountpoint)


def test_a_usb_session_of_thirteen_classified_files_is_one_incident_with_every_file(tmp_path, sticks):
    kind, media_root, [(first_image, first), (second_image, second)] = sticks
    drawings = tmp_path / "rnd" / "drawings"
    drawings.mkdir(parents=True)
    for i in range(FILES):  # distinct content: 13 files, not one file 13 times
        (drawings / f"part-{i:02d}.dwg").write_bytes(f"AC1032 part {i}\n".encode() + os.urandom(20_000))
    d = Deployment(tmp_path, [(drawings, "core", "Product drawings")], mount_roots=[media_root])
    try:
        d.start_server()
        d.start_agent()
        mounts.mount(kind, first_image, first)
        wait_for(lambda: d.get("/api/v1/events", type="media.mounted")["events"], 10, what="media.mounted")
        started = time.monotonic()
        for i in range(FILES):
            copy(drawings / f"part-{i:02d}.dwg", first / f"part-{i:02d}.dwg")
        [incident] = wait_for(
            lambda: (a := d.alerts(category="classified-egress")) and a[0]["file_count"] >= FILES and a, 60, 0.2,
            what=f"one incident of {FILES} files",
        )
        print(f"\n{FILES} files copied to a stick: one incident complete {time.monotonic() - started:.1f} s after the first copy")
        assert incident["kind"] == "incident" and incident["file_count"] == FILES
        assert (incident["device_label"], incident["place_kind"], incident["top_level"]) == ("STICK1", "removable", "core")
        assert incident["severity"] == "critical" and incident["register_item"] == "Product drawings"
        names = sorted(f["name"] for f in files_of(d, incident))
        assert names == [f"part-{i:02d}.dwg" for i in range(FILES)]
        assert all(f["level"] == "core" and f["source"].startswith(str(drawings)) for f in files_of(d, incident))
        assert len(d.alerts(category="classified-egress")) == 1  # before issue 19: 13

        mounts.mount(kind, second_image, second)  # another stick in the same minutes: its own incident
        wait_for(lambda: len(d.get("/api/v1/events", type="media.mounted")["events"]) == 2, 10, what="the second stick")
        copy(drawings / "part-00.dwg", second / "again.dwg")
        both = wait_for(lambda: (a := d.alerts(category="classified-egress")) and len(a) == 2 and a, 30, 0.2, what="a second incident")
        assert sorted((a["device_label"], a["file_count"]) for a in both) == [("STICK1", FILES), ("STICK2", 1)]
    finally:
        d.close()
