"""A file the agent cannot read becomes an event saying so; monitoring goes on."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.e2e.conftest import DRAWING
from tests.e2e.harness import Deployment, wait_for

# Root reads everything; without these two capabilities it obeys file modes like anyone else.
WITHOUT_DAC_OVERRIDE = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--")


@pytest.fixture
def unprivileged():
    if os.geteuid() != 0:
        return ()  # an ordinary user already cannot read a mode-000 file of someone else's
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is missing: cannot drop root's file-access override")
    return WITHOUT_DAC_OVERRIDE


def test_unreadable_egress_file_is_reported_and_agent_goes_on(tmp_path, classified, unprivileged):
    usb = tmp_path / "usb"
    usb.mkdir()
    d = Deployment(tmp_path, [(classified["drawings"], "core", "Drawings")], egress_folders=[usb])
    try:
        d.start_server()
        d.start_agent(wrapper=unprivileged)
        locked = usb / "locked.dwg"
        locked.write_bytes(b"nobody may read this")
        locked.chmod(0o000)
        [event] = wait_for(lambda: d.get("/api/v1/events", type="egress.file")["events"], 20, what="the unreadable-file event")
        assert event["path"] == str(locked)
        assert event["error"] == "cannot read: Permission denied"
        assert event["sha256"] is None and event["size"] == len(b"nobody may read this")

        (usb / "copy.dwg").write_bytes(DRAWING)
        [alert] = wait_for(lambda: d.alerts(category="classified-egress"), 20, what="an alert after the unreadable file")
        assert alert["severity"] == "critical"
        assert d.agent.poll() is None
    finally:
        d.close()
