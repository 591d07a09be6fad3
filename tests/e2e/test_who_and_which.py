"""The right person and the right device, end to end: a real exFAT stick through exfat-fuse on a
loop device, a classified file copied onto it by an unprivileged user the test creates, and two
sticks without a hardware serial that the device register keeps apart."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from tests.e2e import mounts
from tests.e2e.conftest import as_user
from tests.e2e.harness import Deployment, wait_for

pytestmark = pytest.mark.e2e


def _exfat_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "mounting and creating a user need root"
    for tool, package in (("mkfs.exfat", "exfatprogs"), ("mount.exfat-fuse", "exfat-fuse"), ("blkid", "util-linux")):
        if not shutil.which(tool):
            return f"{tool} is missing (Debian package {package})"
    if not os.path.exists("/dev/fuse") or not os.path.exists("/dev/loop-control"):
        return "no /dev/fuse or no loop devices"
    for tool in ("useradd", "userdel", "setpriv", "losetup"):
        if not shutil.which(tool):
            return f"{tool} is missing"
    return None


@pytest.fixture
def exfat_stick(tmp_path):
    why = _exfat_unavailable()
    if why:
        pytest.skip(f"exFAT stick: {why}")
    image = tmp_path / "exfat.img"
    subprocess.run(["truncate", "-s", "64M", str(image)], check=True)
    subprocess.run(["mkfs.exfat", "-L", "MIWEI EX", str(image)], check=True, capture_output=True)
    loop = subprocess.run(["losetup", "-f", "--show", str(image)], check=True, capture_output=True, text=True).stdout.strip()
    volume_id = subprocess.run(["blkid", "-p", "-o", "value", "-s", "UUID", loop], check=True, capture_output=True, text=True).stdout.strip()
    # where the unprivileged user can reach it (pytest's tmp_path is root's alone)
    media_root = Path(tempfile.mkdtemp(prefix="mw-media-"))
    media_root.chmod(0o755)
    mountpoint = media_root / "MIWEI EX"
    yield loop, volume_id, media_root, mountpoint
    mounts.unmount(mountpoint)
    subprocess.run(["losetup", "-d", loop], check=False)
    shutil.rmtree(media_root, ignore_errors=True)


def test_exfat_stick_behind_fuse_names_its_file_system_volume_and_the_writing_user(tmp_path, classified, exfat_stick, employee):
    clerk = employee
    loop, volume_id, media_root, mountpoint = exfat_stick
    # the user's own copy of the classified drawing, somewhere the user may read
    # a classified assembly of 24 MB, and the user's own copy of it somewhere the user may read:
    # copying it takes long enough that the agent sees the writer at work (a file of a few bytes,
    # copied and closed within a millisecond by a `cp` that then exits, can be missed, and then
    # falls back to the owner: agent/fanotify.py)
    assembly = os.urandom(24 * 1024 * 1024)
    (classified["drawings"] / "assembly.step").write_bytes(assembly)
    outside = media_root / "from"
    outside.mkdir(mode=0o755)
    source = outside / "assembly.step"
    source.write_bytes(assembly)
    source.chmod(0o644)
    d = Deployment(tmp_path, [(classified["drawings"], "core", "Product drawings")], mount_roots=[media_root])
    try:
        d.start_server()
        d.start_agent()
        mountpoint.mkdir()
        # the mount (and so every file on it, exFAT keeps no owner) belongs to root: only the
        # kernel's word on who wrote can name the clerk
        subprocess.run(["mount.exfat-fuse", "-o", "allow_other,umask=0", loop, str(mountpoint)], check=True, capture_output=True)
        [mounted] = wait_for(lambda: d.get("/api/v1/events", type="media.mounted")["events"], 10, what="media.mounted")
        media = mounted["media"]
        assert media["fstype"] == "exfat", "fuseblk is exfat-fuse or ntfs-3g: blkid says which"
        assert media["label"] == "MIWEI EX"
        assert media["volume_id"] == volume_id and volume_id
        assert media["size_bytes"] == 64 * 1024 * 1024

        dest = mountpoint / "report.pdf"
        subprocess.run(as_user(clerk, "cp", str(source), str(dest)), check=True)
        assert os.stat(dest).st_uid == 0  # the file system says root: the owner would be wrong

        [alert] = wait_for(lambda: d.alerts(category="classified-egress"), 20, what="the alert")
        [event] = d.get(f"/api/v1/alerts/{alert['id']}")["events"]
        assert event["user"] == clerk.pw_name, event.get("details")
        assert event["details"]["user_from"] == "close-write"
        assert event["details"]["process"]["name"] == "cp"
        assert "session_user" in event["details"]  # the login-session guess, kept apart and marked
        assert event["media"]["volume_id"] == volume_id and event["media"]["label"] == "MIWEI EX"
        assert "label 'MIWEI EX'" in alert["explanation"] and f"volume {volume_id}" in alert["explanation"]
        assert alert["user"] == clerk.pw_name
    finally:
        d.close()


@pytest.fixture
def two_sticks(tmp_path):
    kind = next((k for k in ("vfat", "ext4", "vfat-fuse") if mounts.unavailable(k) is None), None)
    if kind is None:
        pytest.skip("no kind of stick can be mounted here: " + "; ".join(f"{k}: {mounts.unavailable(k)}" for k in mounts.KINDS))
    media_root = tmp_path / "media"
    media_root.mkdir()
    sticks = []
    for name in ("ONE", "TWO"):
        image = tmp_path / f"{name}.img"
        mounts.make_image(kind, image, label="SAME")  # same size, same label: only the volume id differs
        sticks.append((image, media_root / name))
    yield kind, media_root, sticks
    for _, mountpoint in sticks:
        mounts.unmount(mountpoint)


def test_two_sticks_without_a_serial_are_two_devices_and_one_allow_covers_one(tmp_path, two_sticks):
    kind, media_root, sticks = two_sticks
    classified = tmp_path / "rnd"
    classified.mkdir()
    d = Deployment(tmp_path, [(classified, "core", "R&D")], mount_roots=[media_root])
    try:
        d.start_server()
        d.start_agent()
        (first_image, first), (second_image, second) = sticks
        mounts.mount(kind, first_image, first)
        wait_for(lambda: d.get("/api/v1/devices")["devices"], 10, what="the first stick in the register")
        [device] = d.get("/api/v1/devices")["devices"]
        assert ":vol:" in device["identity"] and device["identity"] != "::"
        r = requests.post(
            d.url + "/api/v1/devices/allow",
            json={"pattern": device["identity"], "owner": "zhang.wei"},  # what the console's Allow click posts
            headers={"Authorization": f"Bearer {d.token}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        assert requests.post(
            d.url + "/api/v1/devices/allow", json={"pattern": "*:*:*"}, headers={"Authorization": f"Bearer {d.token}"}, timeout=10
        ).status_code == 201  # a wildcard entry: covers hardware serials, never a stick without one

        mounts.mount(kind, second_image, second)
        wait_for(lambda: len(d.get("/api/v1/devices")["devices"]) == 2, 10, what="the second stick in the register")
        devices = {x["identity"]: x for x in d.get("/api/v1/devices")["devices"]}
        assert len(devices) == 2, devices
        assert sorted(x["allowed"] for x in devices.values()) == [False, True]
        alerts = wait_for(lambda: d.alerts(category="unknown-device") if len(d.alerts(category="unknown-device")) == 2 else None, 10, what="two alerts")
        assert len(alerts) == 2  # the first stick's, before it was allowed, and the second's
    finally:
        d.close()
