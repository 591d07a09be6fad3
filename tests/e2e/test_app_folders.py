"""IM and cloud-drive folders found in the homes by the agent itself (agent/discovery.py), with
real processes: a temporary home root with the clients' real folder layouts."""

from __future__ import annotations

import os
import time

import pytest

from tests.e2e.conftest import copy
from tests.e2e.harness import Deployment, wait_for

pytestmark = pytest.mark.e2e

WECHAT_3 = "Documents/WeChat Files/wxid_x/FileStorage/File"


@pytest.fixture
def homes(tmp_path):
    root = tmp_path / "home"
    (root / "alice" / WECHAT_3 / "2026-12").mkdir(parents=True)
    return root


@pytest.fixture
def deployment(tmp_path, classified, homes):
    extra = "\n".join(
        ["    discover:", f"      home_roots: [{homes}]", "      system_users: false", "      interval_s: 1"]
    )
    d = Deployment(tmp_path, [(classified["drawings"], "core", "Product drawings")], agent_extra=extra)
    yield d
    d.close()


def _event_of(d, alert: dict) -> dict:
    [event] = d.get(f"/api/v1/alerts/{alert['id']}")["events"]
    return event


def test_classified_file_in_wechat_folder_alerts_naming_wechat(deployment, classified, homes):
    d = deployment
    d.start_server()
    d.start_agent()
    dest = homes / "alice" / WECHAT_3 / "2026-12" / "pump-impeller.dwg"
    started = time.monotonic()
    copy(classified["drawings"] / "pump-impeller.dwg", dest)
    [alert] = wait_for(lambda: d.alerts(category="classified-egress"), 20, what="a classified-egress alert")
    print(f"classified copy into a WeChat folder to alert through the API: {time.monotonic() - started:.2f}s")
    event = _event_of(d, alert)
    assert (event["egress"], event["details"]["app"], event["path"]) == ("im", "WeChat", str(dest))
    assert event["level"] == "core" and alert["severity"] == "critical"
    assert "WeChat" in alert["explanation"]


def test_folder_made_after_start_is_watched(deployment, classified, homes):
    d = deployment
    d.start_server()
    d.start_agent()
    dropbox = homes / "bob" / "Dropbox"
    dropbox.mkdir(parents=True)  # a new user, a new client: after the agent started
    wait_for(lambda: "app folder found app='Dropbox'" in d.log("miwei-agent"), 10, what="the Dropbox folder found")
    started = time.monotonic()
    copy(classified["drawings"] / "pump-impeller.dwg", dropbox / "p.dwg")
    [alert] = wait_for(lambda: d.alerts(category="classified-egress"), 20, what="an alert for the Dropbox copy")
    print(f"classified copy into a new Dropbox folder to alert: {time.monotonic() - started:.2f}s")
    event = _event_of(d, alert)
    assert (event["egress"], event["details"]["app"]) == ("sync", "Dropbox")


def test_hostile_home_leads_nowhere_and_a_synced_classified_folder_alerts(deployment, classified, homes, tmp_path):
    d = deployment
    eve = homes / "eve"
    (eve / ".config" / "QQ").mkdir(parents=True)
    os.symlink("/", eve / "Dropbox")  # an app folder that is a link to / (which holds the classified folder)
    os.symlink(classified["drawings"], eve / "Nutstore Files")  # ... and one to a classified folder
    odd = eve / "Documents" / "WeChat Files" / "wxid_\nnew line" / "FileStorage" / "File"
    odd.mkdir(parents=True)
    os.symlink("Tencent Files", eve / "Documents" / "Tencent Files")  # a loop
    outside = tmp_path / "outside"
    (outside / "nt_data" / "File").mkdir(parents=True)
    os.symlink(outside, eve / ".config" / "QQ" / "nt_qq_link")  # a link in the middle of a pattern
    d.start_server()
    d.start_agent()
    wait_for(lambda: len(d.alerts(category="uninspectable-egress")) == 2, 20, what="two synced-classified-folder alerts")
    alerts = d.alerts(category="uninspectable-egress")
    assert {a["rule_id"] for a in alerts} == {"MW-CLASSIFIED-IN-APP-FOLDER"}
    found = sorted((e["type"], e["details"]["app"], e["path"]) for e in map(lambda a: _event_of(d, a), alerts))
    assert found == [
        ("agent.error", "Dropbox", str(eve / "Dropbox")),
        ("agent.error", "Nutstore", str(eve / "Nutstore Files")),
    ]
    copy(classified["drawings"] / "pump-impeller.dwg", odd / "x.dwg")
    wait_for(lambda: len(d.alerts(category="classified-egress")) == 1, 20, what="the alert for the odd-named folder")
    events = d.all_pages("/api/v1/events", "events", type="egress.file")
    assert [(e["egress"], e["details"]["app"]) for e in events] == [("im", "WeChat")]
    status = d.agent_status()
    watched = status.get("watched") or []
    assert not any(w == "/" or w.startswith(str(outside)) or w == str(eve / "Dropbox") for w in watched), watched
    assert d.agent.poll() is None  # still running
