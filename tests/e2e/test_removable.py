"""A classified file copied to a real, mounted file system under a mount root (a USB stick)."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest

from tests.e2e import mounts
from tests.e2e.conftest import DRAWING, copy, sha256
from tests.e2e.harness import Deployment, wait_for


@pytest.fixture(params=mounts.KINDS)
def stick(request, tmp_path):
    why = mounts.unavailable(request.param)
    if why:
        pytest.skip(f"{request.param} stick: {why}")
    image = tmp_path / "stick.img"
    mounts.make_image(request.param, image)
    media_root = tmp_path / "media"
    media_root.mkdir()
    mountpoint = media_root / "USBSTICK"
    yield request.param, image, media_root, mountpoint
    mounts.unmount(mountpoint)


def test_copy_to_mounted_stick_raises_alert_naming_the_device(tmp_path, classified, stick):
    kind, image, media_root, mountpoint = stick
    d = Deployment(tmp_path, [(classified["drawings"], "core", "Product drawings")], mount_roots=[media_root])
    try:
        d.start_server()
        d.start_agent()
        mounted_at = time.time()
        mounts.mount(kind, image, mountpoint)
        [mounted] = wait_for(
            lambda: d.get("/api/v1/events", type="media.mounted")["events"], 6, what="media.mounted"
        )
        assert mounted["media"]["mountpoint"] == str(mountpoint)
        seen_at = _epoch(mounted["ts"])
        assert seen_at - mounted_at < 2.0, f"mount noticed after {seen_at - mounted_at:.2f}s"

        copy(classified["drawings"] / "pump-impeller.dwg", mountpoint / "report.pdf")
        [alert] = wait_for(lambda: d.alerts(category="classified-egress"), 20, what="the alert")
        [event] = d.get(f"/api/v1/alerts/{alert['id']}")["events"]
        assert event["level"] == "core" and alert["severity"] == "critical"
        assert event["sha256"] == sha256(DRAWING)
        assert event["source_path"] == str(classified["drawings"] / "pump-impeller.dwg")
        assert event["egress"] == "removable"
        assert event["media"]["mountpoint"] == str(mountpoint)
        assert event["media"]["fstype"] in {"vfat": ("vfat",), "vfat-fuse": ("fuse.fusefat",), "ext4": ("ext4",)}[kind]
        assert str(mountpoint) in alert["explanation"]
        if kind != "vfat-fuse":  # a loop device: the label is read from the file system
            assert event["media"]["label"] == "MIWEI"
            assert event["media"]["device"].startswith("/dev/loop")
            assert "label 'MIWEI'" in alert["explanation"]

        mounts.unmount(mountpoint)
        wait_for(lambda: d.get("/api/v1/events", type="media.unmounted")["events"], 6, what="media.unmounted")
    finally:
        d.close()


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _events(d, event_type: str) -> list[dict]:
    return d.all_pages("/api/v1/events", "events", type=event_type)


@pytest.mark.parametrize("mounted", ["before the agent starts", "while it runs"])
def test_a_mountpoint_that_is_not_utf8_is_reported_readable_and_watched(tmp_path, classified, stick, mounted):
    kind, image, media_root, _ = stick
    raw_mountpoint = os.path.join(os.fsencode(media_root), b"\xb1\xa8-STICK")  # GBK bytes
    os.mkdir(raw_mountpoint)
    mountpoint = Path(os.fsdecode(raw_mountpoint))
    shown = str(media_root) + "/\\xb1\\xa8-STICK"
    d = Deployment(tmp_path, [(classified["drawings"], "core", "Product drawings")], mount_roots=[media_root])
    try:
        d.start_server()
        if mounted == "before the agent starts":
            mounts.mount(kind, image, mountpoint)
        d.start_agent()
        if mounted == "while it runs":
            mounts.mount(kind, image, mountpoint)
        [event] = wait_for(lambda: _events(d, "media.mounted"), 6, what="media.mounted")
        assert (event["path"], event["media"]["mountpoint"]) == (shown, shown)
        assert base64.b64decode(event["path_b64"]) == raw_mountpoint

        copy(classified["drawings"] / "pump-impeller.dwg", mountpoint / "report.pdf")
        [alert] = wait_for(lambda: d.alerts(category="classified-egress"), 6, what="the alert")
        [event] = d.get(f"/api/v1/alerts/{alert['id']}")["events"]
        assert event["path"] == shown + "/report.pdf"
        assert base64.b64decode(event["path_b64"]) == raw_mountpoint + b"/report.pdf"
        assert event["media"]["mountpoint"] == shown
        # the heartbeat names what is watched; the collector refuses text it cannot store
        wait_for(lambda: shown in d.agent_status().get("watched", []), 6, what="a heartbeat naming the stick")
        assert d.agent.poll() is None
    finally:
        mounts.unmount(mountpoint)
        d.close()


def test_a_stick_mounted_again_at_the_same_place_between_two_polls_is_watched_again(tmp_path, classified, stick):
    kind, image, media_root, mountpoint = stick
    d = Deployment(tmp_path, [(classified["drawings"], "core", "Product drawings")], mount_roots=[media_root], poll_s=2)
    try:
        d.start_server()
        d.start_agent()
        mounts.mount(kind, image, mountpoint)
        wait_for(lambda: _events(d, "media.mounted"), 8, what="media.mounted")
        mounts.unmount(mountpoint)  # and at once again: the old watch died with the old mount
        mounts.mount(kind, image, mountpoint)
        wait_for(lambda: len(_events(d, "media.mounted")) == 2, 8, what="the second media.mounted")
        assert len(_events(d, "media.unmounted")) == 1

        copy(classified["drawings"] / "pump-impeller.dwg", mountpoint / "after-remount.pdf")
        [alert] = wait_for(lambda: d.alerts(category="classified-egress"), 6, what="the alert after the remount")
        [event] = d.get(f"/api/v1/alerts/{alert['id']}")["events"]
        assert event["path"] == str(mountpoint / "after-remount.pdf")
        assert event["sha256"] == sha256(DRAWING)
    finally:
        d.close()
