"""The device register end to end: a real image mounted under a mount root, a real agent and collector.

An unlisted medium raises unknown-device; once the officer allows it by the identity the register
shows, mounting it again raises nothing new.
"""

from __future__ import annotations

import pytest
import requests

from tests.e2e import mounts
from tests.e2e.harness import Deployment, wait_for

pytestmark = pytest.mark.e2e


# Kernel mounts of a loop device: libblkid reads the volume id, so the medium can be told apart.
# fusefat mounts an image with the source "fusefat": no device, so no serial and no volume id.
IDENTIFIABLE = ("vfat", "ext4")


def _stick(tmp_path, kinds):
    reasons = {kind: mounts.unavailable(kind) for kind in kinds}
    kind = next((k for k, why in reasons.items() if why is None), None)
    if kind is None:
        pytest.skip("no such stick can be mounted here: " + "; ".join(f"{k}: {w}" for k, w in reasons.items()))
    image = tmp_path / "stick.img"
    mounts.make_image(kind, image, label="PRIVATE")
    media_root = tmp_path / "media"
    media_root.mkdir()
    mountpoint = media_root / "PRIVATE"
    return kind, image, media_root, mountpoint


@pytest.fixture
def stick(tmp_path):
    found = _stick(tmp_path, IDENTIFIABLE)
    yield found
    mounts.unmount(found[3])


@pytest.fixture
def anonymous_stick(tmp_path):
    found = _stick(tmp_path, ("vfat-fuse",))
    yield found
    mounts.unmount(found[3])


def test_unlisted_stick_alerts_until_it_is_allowed(tmp_path, stick):
    kind, image, media_root, mountpoint = stick
    classified = tmp_path / "rnd"
    classified.mkdir()
    d = Deployment(tmp_path, [(classified, "core", "R&D")], mount_roots=[media_root])
    try:
        d.start_server()
        d.start_agent()
        mounts.mount(kind, image, mountpoint)
        [alert] = wait_for(lambda: d.alerts(category="unknown-device"), 10, what="the unknown-device alert")
        assert alert["rule_id"] == "MW-UNKNOWN-DEVICE" and alert["severity"] == "low"
        assert str(mountpoint) in alert["explanation"]

        [device] = d.get("/api/v1/devices")["devices"]
        assert device["allowed"] is False and device["times_seen"] == 1
        assert device["fstype"] == d.get("/api/v1/events", type="media.mounted")["events"][0]["media"]["fstype"]
        r = requests.post(
            d.url + "/api/v1/devices/allow",
            json={"pattern": device["identity"], "owner": "zhang.wei", "note": "e2e"},
            headers={"Authorization": f"Bearer {d.token}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text

        mounts.unmount(mountpoint)
        wait_for(lambda: d.get("/api/v1/events", type="media.unmounted")["events"], 10, what="media.unmounted")
        mounts.mount(kind, image, mountpoint)
        wait_for(lambda: len(d.get("/api/v1/events", type="media.mounted")["events"]) == 2, 10, what="the second mount")
        # the second mount was ingested (and judged) in the same transaction that stored it
        assert len(d.alerts(category="unknown-device")) == 1
        [device] = d.get("/api/v1/devices")["devices"]
        assert device["allowed"] is True and device["times_seen"] == 2
        assert device["allowed_by"]["pattern"] == device["identity"]
    finally:
        d.close()


def test_a_medium_that_cannot_be_told_apart_alerts_and_cannot_be_allowed(tmp_path, anonymous_stick):
    """Allowing a medium with neither serial nor volume id would allow every such medium: refused,
    with the reason, and each mount of it goes on raising unknown-device."""
    kind, image, media_root, mountpoint = anonymous_stick
    d = Deployment(tmp_path, [], mount_roots=[media_root])
    try:
        d.start_server()
        d.start_agent()
        mounts.mount(kind, image, mountpoint)
        [alert] = wait_for(lambda: d.alerts(category="unknown-device"), 10, what="the unknown-device alert")
        assert str(mountpoint) in alert["explanation"]
        [device] = d.get("/api/v1/devices")["devices"]
        assert device["allowed"] is False
        r = requests.post(
            d.url + "/api/v1/devices/allow",
            json={"pattern": device["identity"], "owner": "zhang.wei"},
            headers={"Authorization": f"Bearer {d.token}"},
            timeout=10,
        )
        assert r.status_code == 422 and "cannot be told apart" in r.json()["detail"]
        assert d.get("/api/v1/devices")["devices"][0]["allowed"] is False
    finally:
        d.close()
