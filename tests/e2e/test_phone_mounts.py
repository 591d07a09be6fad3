"""A phone mounted by gvfs in a user's session: a real FUSE mount owned by an unprivileged user,
which root cannot enter (no allow_other), walked by the agent as that user.

gvfsd-fuse is played by bindfs (Debian package bindfs) mounted by the employee at
/run/user/UID/gvfs with the file system type gvfsd-fuse reports (fuse.gvfsd-fuse); the phone is
its folder `mtp:host=Test_Phone_123456`, appearing as gvfs makes it appear when a phone is
plugged in. What this does not test: a real phone over MTP (libmtp, gvfsd-mtp's caching, the
phone's own clock on mtimes), which the README names."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import DRAWING, as_user, sha256
from tests.e2e.harness import Deployment, wait_for

PHONE = "mtp:host=Test_Phone_123456"


def _fuse_unavailable() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if not shutil.which("bindfs"):
        return "bindfs is missing (Debian package bindfs)"
    if not shutil.which("fusermount") and not shutil.which("fusermount3"):
        return "fusermount is missing (Debian package fuse or fuse3)"
    return None


@pytest.fixture
def gvfs(employee):
    """The employee's /run/user/UID/gvfs, a FUSE mount of theirs (fuse.gvfsd-fuse), over a store
    only they can read; yields (mountpoint, store, staging)."""
    why = _fuse_unavailable()
    if why:
        pytest.skip(f"no FUSE mount possible: {why}")
    uid, gid = employee.pw_uid, employee.pw_gid
    base = Path(tempfile.mkdtemp(prefix="mw-phone-"))
    base.chmod(0o711)
    store, staging = base / "store", base / "staging"
    run_user = Path(f"/run/user/{uid}")
    mountpoint = run_user / "gvfs"
    for folder in (store, staging, run_user, mountpoint):
        folder.mkdir(parents=True, exist_ok=True)
        os.chown(folder, uid, gid)
        folder.chmod(0o700)
    mount = ["bindfs", "--no-allow-other", "-o", "subtype=gvfsd-fuse,fsname=gvfsd-fuse", str(store), str(mountpoint)]
    done = subprocess.run(as_user(employee, *mount), capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(run_user, ignore_errors=True)
        pytest.skip(f"no FUSE mount possible: bindfs failed: {done.stderr.strip()}")
    try:
        with pytest.raises(PermissionError):  # what the agent is up against: root is kept out
            os.listdir(mountpoint)
        yield mountpoint, store, staging
    finally:
        subprocess.run(["fusermount", "-u", "-z", str(mountpoint)], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(run_user, ignore_errors=True)


def test_a_file_copied_to_a_phone_mounted_by_gvfs_alerts_naming_the_phone(tmp_path, classified, employee, gvfs):
    mountpoint, store, staging = gvfs
    uid, gid = employee.pw_uid, employee.pw_gid
    # what is on the phone before it is plugged in: a copy of the drawing among them, months old
    phone = staging / PHONE
    (phone / "DCIM").mkdir(parents=True)
    (phone / "DCIM" / "IMG_0001.jpg").write_bytes(os.urandom(20_000))
    (phone / "Download").mkdir()
    (phone / "Download" / "old-impeller.dwg").write_bytes(DRAWING)
    for path in [phone, *phone.rglob("*")]:
        os.chown(path, uid, gid)
        os.utime(path, (time.time() - 90 * 86400,) * 2)
    source = staging / "pump-impeller.dwg"  # the employee's own copy of the drawing, readable by them
    source.write_bytes(DRAWING)
    os.chown(source, uid, gid)

    d = Deployment(tmp_path, [(classified["drawings"], "core", "Product drawings")])
    try:
        d.start_server()
        d.start_agent()
        os.rename(phone, store / PHONE)  # the phone is plugged in: gvfs's folder for it appears
        plugged_at = time.time()
        [mounted] = wait_for(lambda: d.get("/api/v1/events", type="media.mounted")["events"], 10, what="media.mounted")
        assert mounted["egress"] == "phone"
        assert mounted["details"]["app"] == "Test Phone"
        assert mounted["media"]["mountpoint"] == str(mountpoint / PHONE)
        assert mounted["media"]["serial"] == "123456"
        noticed_s = _epoch(mounted["ts"]) - plugged_at

        time.sleep(6)  # a walk after the baseline: the files already there raise nothing
        assert d.get("/api/v1/events", type="egress.file")["events"] == []
        assert d.alerts(category="classified-egress") == []

        dest = mountpoint / PHONE / "Download" / "report.pdf"
        copied_at = time.time()
        subprocess.run(as_user(employee, "cp", str(source), str(dest)), check=True, timeout=30)
        [alert] = wait_for(lambda: d.alerts(category="classified-egress"), 30, 0.1, what="the alert")
        alerted_s = time.time() - copied_at
        [event] = d.get(f"/api/v1/alerts/{alert['id']}")["events"]
        assert event["egress"] == "phone" and event["details"]["app"] == "Test Phone"
        assert event["path"] == str(dest)
        assert event["sha256"] == sha256(DRAWING) and event["level"] == "core"
        assert alert["severity"] == "critical"
        assert event["source_path"] == str(classified["drawings"] / "pump-impeller.dwg")
        print(f"\nphone noticed {noticed_s:.2f} s after it appeared; copy to alert {alerted_s:.2f} s")
        assert alerted_s < 20, f"alert after {alerted_s:.1f}s"

        os.rename(store / PHONE, staging / PHONE)  # unplugged
        [gone] = wait_for(lambda: d.get("/api/v1/events", type="media.unmounted")["events"], 10, what="media.unmounted")
        assert gone["egress"] == "phone"
        assert len(d.get("/api/v1/events", type="egress.file")["events"]) == 1  # the baseline never reported
    finally:
        d.close()


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
