"""An employee who tries to hide a copy still leaves an alert (fail closed).

Each test is one trick that takes a minute to learn, played by an unprivileged user the test
creates, against the agent running as root as installed: a FIFO renamed over a file while it is
hashed, a big decoy then a copy removed at once, a password-protected zip, an archive padded so
the budget is spent first, a tree deeper than PATH_MAX, names that are not UTF-8. Every one must
end with an alert an officer reads from the API; each prints how many seconds that took.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import DRAWING, as_user
from tests.e2e.harness import Deployment, wait_for
from tests.e2e.incidents import alerts_with_file

pytestmark = pytest.mark.e2e

SYSTEM_PYTHON = "/usr/bin/python3"  # the employee's own; the test's interpreter may be root's alone
MARKED = "商业秘密 严禁外传\n2025 年报价单\n客户：某某机械有限公司\n".encode()


@pytest.fixture
def desk(tmp_path, classified, employee):
    """The agent (root) watching an egress folder the employee owns, and the employee's own copy
    of a core drawing and of a marked quotation."""
    base = Path(tempfile.mkdtemp(prefix="mw-desk-"))  # pytest's tmp_path is root's alone
    base.chmod(0o755)
    usb, home = base / "usb", base / "home"
    for folder in (usb, home):
        folder.mkdir()
        os.chown(folder, employee.pw_uid, employee.pw_gid)
    for name, data in (("pump-impeller.dwg", DRAWING), ("quotation.txt", MARKED)):
        (home / name).write_bytes(data)
        os.chown(home / name, employee.pw_uid, employee.pw_gid)
    d = Deployment(tmp_path, [(classified["drawings"], "core", "Product drawings")], egress_folders=[usb])
    d.usb, d.home, d.employee = usb, home, employee
    try:
        d.start_server()
        d.start_agent()
        yield d
    finally:
        d.close()
        shutil.rmtree(base, ignore_errors=True)


def _as_employee(d, script: str, *args: str, python: bool = False) -> None:
    argv = [SYSTEM_PYTHON, "-c", script, *args] if python else ["/bin/bash", "-c", script, "bash", *args]
    done = subprocess.run(as_user(d.employee, *argv), cwd=d.home, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def _alert_naming(d, name: str, category: str | None = None, timeout_s: float = 30) -> tuple[dict, float]:
    """The first alert whose explanation names `name`, and the seconds it took to appear."""
    started = time.monotonic()
    alerts = wait_for(
        lambda: alerts_with_file(d, name, category),  # an incident's later files are its files, not its explanation
        timeout_s,
        0.2,
        f"an alert naming {name}" + (f" ({category})" if category else ""),
    )
    return alerts[0], time.monotonic() - started


def _report(what: str, alert: dict, seconds: float) -> None:
    print(f"\n{what}: {alert['category']} {alert['severity']} ({alert['rule_id']}) after {seconds:.1f} s")


FIFO_SWAP = """
import os, sys, time
usb = sys.argv[1]
big = os.path.join(usb, "backup.img")
with open(big, "wb") as f:  # 3 GiB (sparse): seconds of hashing
    f.truncate(3 << 30)
    f.write(b"disk image")
time.sleep(0.8)  # the agent has it open and is hashing it
os.mkfifo(os.path.join(usb, ".swap"))
os.rename(os.path.join(usb, ".swap"), big)
"""


def test_a_fifo_renamed_over_a_file_being_hashed_wedges_nothing(desk):
    """Before: the file was hashed from its descriptor, then opened again by path to be
    inspected: the FIFO's open blocked the only pipeline thread for ever, heartbeats went on."""
    d = desk
    _as_employee(d, FIFO_SWAP, str(d.usb), python=True)
    started = time.monotonic()
    _as_employee(d, 'cp pump-impeller.dwg "$1/notes.txt"; truncate -s 100M "$1/after.img"', str(d.usb))
    alert, seconds = _alert_naming(d, "notes.txt", "classified-egress")
    _report("copy after the FIFO swap", alert, seconds)
    after = wait_for(
        lambda: [e for e in d.get("/api/v1/events", type="egress.file")["events"] if e["path"].endswith("after.img")],
        60, 0.2, "the large file written after the swap (its lane is not wedged)",
    )
    assert after[0]["size"] == 100 << 20
    swapped = [e for e in d.get("/api/v1/events", type="egress.file")["events"] if e["path"].endswith("backup.img")]
    assert swapped, "the file that was swapped is reported too (read from its descriptor, or as replaced)"
    print(f"backup.img reported as sha256={swapped[0]['sha256']} detections={swapped[0]['detections']}")
    assert time.monotonic() - started < 90 and d.agent.poll() is None


def test_a_copy_removed_behind_a_big_decoy_still_alerts(desk):
    """Before: the decoy held the only hashing thread for seconds; the copy was deleted meanwhile
    and dropped without a word."""
    d = desk
    _as_employee(
        d,
        'truncate -s 3G "$1/decoy.iso"; echo . >> "$1/decoy.iso";'
        ' cp pump-impeller.dwg "$1/holiday-1.jpg"; sleep 1; rm "$1/holiday-1.jpg";'
        ' cp pump-impeller.dwg "$1/holiday-2.jpg"; rm "$1/holiday-2.jpg"',
        str(d.usb),
    )
    for name in ("holiday-1.jpg", "holiday-2.jpg"):
        alert, seconds = _alert_naming(d, name)
        assert alert["category"] in ("classified-egress", "uninspectable-egress")
        _report(f"{name} removed behind a decoy", alert, seconds)
    events = [e for e in d.get("/api/v1/events", type="egress.file")["events"] if e["path"].endswith("holiday-2.jpg")]
    vanished = [e for e in events if any(x["detector"] == "vanished" for x in e["detections"])]
    for e in vanished:  # what was known of it: its size and owner when a stat caught it in time
        assert e["size"] in (None, len(DRAWING))
        assert e["details"].get("user_from") is None or e["user"] == d.employee.pw_name
        assert "removed before it could be read" in str(e["detections"])


def test_a_password_protected_zip_alerts(desk):
    """Before: archive_encrypted was detected, and no rule turned it into an alert."""
    if not shutil.which("zip"):
        pytest.skip("zip is missing (Debian package zip)")
    d = desk
    _as_employee(d, 'zip -q -j -P s3cret "$1/photos.zip" pump-impeller.dwg', str(d.usb))
    alert, seconds = _alert_naming(d, "photos.zip", "uninspectable-egress")
    assert "archive_encrypted" in alert["explanation"]
    _report("zip -P", alert, seconds)


def test_an_archive_padded_so_the_budget_runs_out_first_still_gives_up_its_drawing(desk):
    """Before: 300 MB of padding listed first spent the archive's budget, and the drawing after it
    was neither read nor named."""
    if not shutil.which("zip"):
        pytest.skip("zip is missing (Debian package zip)")
    d = desk
    _as_employee(
        d,
        'for i in 1 2 3; do head -c 100M /dev/urandom > pad$i.bin; done;'
        ' zip -q -0 -j "$1/padded.zip" pad1.bin pad2.bin pad3.bin pump-impeller.dwg; rm pad?.bin',
        str(d.usb),
    )
    alert, seconds = _alert_naming(d, "padded.zip", "classified-egress", timeout_s=60)
    assert alert["severity"] == "critical" and "inside an archive" in alert["explanation"]
    _report("padded archive", alert, seconds)


DEEP = """
cd "$1"
name=$(printf 'd%.0s' $(seq 1 250))
for i in $(seq 1 24); do mkdir "$name"; cd "$name"; done  # 24 x 251 bytes: past PATH_MAX (4096)
cp "$2/pump-impeller.dwg" copy.dwg
"""


def test_a_copy_deeper_than_path_max_is_found_and_the_blind_folder_alerts(desk):
    """Before: os.walk and the watches gave up past PATH_MAX without a word."""
    d = desk
    _as_employee(d, DEEP, str(d.usb), str(d.home))
    alert, seconds = _alert_naming(d, "copy.dwg", "classified-egress", timeout_s=60)
    [event] = [e for e in d.get(f"/api/v1/alerts/{alert['id']}")["events"]]
    assert len(event["path"].encode()) > 6000 and event["user"] == d.employee.pw_name
    _report("copy 6,000 bytes deep", alert, seconds)
    blind, seconds = wait_for(lambda: [a for a in d.alerts(category="agent-health") if a["rule_id"] == "MW-AGENT-BLIND"], 30), 0
    assert "cannot watch" in blind[0]["explanation"]


def test_names_that_are_not_utf8_change_nothing(desk):
    """Before: one \\xff byte in a name turned off markings, identifiers, archive tracing and
    partial matching."""
    if not shutil.which("zip"):
        pytest.skip("zip is missing (Debian package zip)")
    d = desk
    _as_employee(
        d,
        "cp quotation.txt \"$1/\"$'\\xff\\xfe'\"报价.txt\";"
        " zip -q -j \"$1/\"$'\\xff'\"drawings.zip\" pump-impeller.dwg",
        str(d.usb),
    )
    marked, seconds = _alert_naming(d, "\\xff\\xfe", "marked-egress")
    _report("marked text named with \\xff\\xfe", marked, seconds)
    zipped, seconds = _alert_naming(d, "\\xffdrawings.zip", "classified-egress")
    assert "inside an archive" in zipped["explanation"]
    _report("zipped drawing named with \\xff", zipped, seconds)


def test_a_copy_dated_past_2262_still_alerts(desk):
    """Before: a file whose mtime is past 2262 (`touch -d 2400-01-01`, which ext4 keeps) has an
    st_mtime_ns beyond 2**63. The lane's batch failed on it, and once that was mended its
    report's mark could not be stored (SQLite's integers are 64-bit): the event was dropped, and
    the copy of a core drawing left with an agent.error alone."""
    d = desk
    _as_employee(d, 'touch -d 2400-01-01 pump-impeller.dwg && cp -p pump-impeller.dwg "$1/notes.dwg"', str(d.usb))
    if os.stat(d.usb / "notes.dwg").st_mtime_ns < 2**63:
        pytest.skip("this file system keeps no time past 2262")
    alert, seconds = _alert_naming(d, "notes.dwg", "classified-egress")
    assert alert["severity"] == "critical"
    _report("touch -d 2400", alert, seconds)
