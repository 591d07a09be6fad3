"""Evidence end to end with real processes: a classified copy raises an alert from a real agent, an
analyst exports its pack from the console, `miwei-server verify-pack` and the snippet in
docs/evidence.md accept it and refuse it once tampered; the day is sealed, its routine events
purged by retention, the seal still checks and the pack proves its event part of the sealed day."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zipfile
from datetime import date, datetime, time, timedelta
from pathlib import Path

import requests
from sqlalchemy import update

from server.database import make_engine
from server.firmtime import zone
from server.retention import purge_events
from server.schema import events
from tests.e2e.conftest import copy
from tests.e2e.harness import BIN, wait_for

ROOT = Path(__file__).parent.parent.parent
SNIPPET = re.compile(r"<!-- verify-snippet -->\n```python\n(.*?)^```", re.S | re.M)
PASSWORD = "correct-horse-battery-9"


def _server(d, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "miwei-server"), *args, "-c", str(d.config)], input=stdin, capture_output=True, text=True, timeout=120)


def _sign_in(d) -> requests.Session:
    browser = requests.Session()
    page = browser.get(d.url + "/console/login", timeout=10)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answer = browser.post(d.url + "/console/login", data={"csrf": csrf, "name": "li.na", "password": PASSWORD}, allow_redirects=False, timeout=10)
    assert answer.status_code == 303, answer.text
    return browser


def _snippet(tmp_path: Path, pack: Path, key: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "verify_pack.py"
    script.write_text(SNIPPET.search((ROOT / "docs" / "evidence.md").read_text(encoding="utf-8")).group(1), encoding="utf-8")
    return subprocess.run([sys.executable, str(script), str(pack), str(key)], capture_output=True, text=True, timeout=60)


def _tampered(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as pack:
        files = {n: pack.read(n) for n in pack.namelist()}
    name = next(n for n in files if n.startswith("events/"))
    files[name] = files[name].replace(b"pump-impeller", b"pump-housing")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as pack:
        for n, body in files.items():
            pack.writestr(n, body)
    return out.getvalue()


def test_a_real_alerts_pack_verifies_is_refused_tampered_and_its_sealed_day_survives_retention(deployment, classified, tmp_path):
    d = deployment
    with open(d.config, "a", encoding="utf-8") as f:  # the server section is the file's last
        f.write("  retention_days: 30\n")
    d.start_server()
    d.start_agent()
    copy(classified["drawings"] / "pump-impeller.dwg", d.usb / "pump-impeller.dwg")
    [alert] = wait_for(lambda: d.alerts(category="classified-egress"), 30, what="a classified-egress alert")
    key = tmp_path / "collector.pub.pem"
    shown = _server(d, "signing-key")
    key.write_text(shown.stdout[shown.stdout.index("-----BEGIN PUBLIC KEY-----") :])
    fingerprint = shown.stdout.splitlines()[0].split(": ")[1]

    assert _server(d, "create-user", "li.na", "--role", "analyst", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    browser = _sign_in(d)  # an analyst
    answer = browser.get(f"{d.url}/console/alerts/{alert['id']}/evidence.zip", timeout=30)
    assert answer.status_code == 200
    pack = tmp_path / "pack.zip"
    pack.write_bytes(answer.content)
    checked = _server(d, "verify-pack", str(pack))
    assert checked.returncode == 0 and f"signed with key {fingerprint}" in checked.stdout, checked.stdout + checked.stderr
    assert _snippet(tmp_path, pack, key).stdout.strip() == "valid"
    bad = tmp_path / "bad.zip"
    bad.write_bytes(_tampered(answer.content))
    refused = subprocess.run([str(BIN / "miwei-server"), "verify-pack", str(bad), "--public-key", str(key)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "was changed" in refused.stdout
    assert _snippet(tmp_path, bad, key).returncode == 1

    # 40 days on: the day is sealed, then retention (30 days) purges its routine events
    d.kill("agent")
    d.kill("server")
    firm = zone("Asia/Shanghai")
    day = date.today() - timedelta(days=40)
    engine = make_engine(f"sqlite:///{d.db_path}")
    with engine.begin() as conn:  # what the collector received today, as if received that day
        conn.execute(update(events).values(received_at=datetime.combine(day, time(12), tzinfo=firm)))
    sealed = _server(d, "seal", "--day", day.isoformat())
    assert sealed.returncode == 0 and "sealed, 1 agent(s)" in sealed.stdout, sealed.stdout + sealed.stderr
    assert purge_events(engine, datetime.now(firm), retention_days=30) > 0
    engine.dispose()
    kept = _server(d, "seal", "--check", "--day", day.isoformat())
    assert kept.returncode == 0 and "valid, 1 of" in kept.stdout, kept.stdout

    d.start_server()
    browser = _sign_in(d)
    pack.write_bytes(browser.get(f"{d.url}/console/alerts/{alert['id']}/evidence.zip", timeout=30).content)
    checked = _server(d, "verify-pack", str(pack))
    assert checked.returncode == 0 and "signed daily seal: 1; not sealed (yet): 0" in checked.stdout, checked.stdout
    assert _snippet(tmp_path, pack, key).stdout.strip() == "valid"

