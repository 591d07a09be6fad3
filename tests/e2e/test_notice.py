"""The employee is told, end to end: an unprivileged user made by the test, a private session bus
of theirs (dbus-daemon, as that user) with a small notification server on it (tests/e2e/notifyd.py,
as that user), a process of their "graphical session" whose environment names the bus, a display
and a locale; the agent, as root, with `notify_user` on; the user copies classified files into an
egress folder. What the notification server received is what the desktop would have shown.

The collector is not started: the agent knows the severity of its own events (it evaluates the
rules), and tells the employee without it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import DRAWING, FORMULA, as_user
from tests.e2e.harness import Deployment, wait_for

pytestmark = pytest.mark.e2e

SYSTEM_PYTHON = "/usr/bin/python3"
FIRM_ZH = "如因工作需要外发，请在OA提交《商密外发申请》，或联系信息安全部（分机8000）。"
FIRM_EN = "If you need to send it for work, file a release request in the OA system (ext. 8000)."


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "creating a user and an agent as root need root"
    for tool, package in (
        ("dbus-daemon", "dbus-daemon"),
        ("gdbus", "libglib2.0-bin"),
        ("setpriv", "util-linux"),
        ("useradd", "passwd"),
    ):
        if not shutil.which(tool):
            return f"{tool} is missing (Debian package {package})"
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} is missing (Debian package python3): the notification server runs as the employee"
    try:
        import jeepney  # noqa: F401
    except ImportError:
        return "jeepney is not installed (the [dev] extra): the test's notification server speaks D-Bus with it"
    return None


class Desktop:
    """The employee's session: a bus, a notification server on it, and a session process."""

    def __init__(self, user, lang: str):
        import jeepney

        self.user = user
        self.dir = Path(tempfile.mkdtemp(prefix="mw-desktop-"))
        self.dir.chmod(0o755)
        shutil.copytree(os.path.dirname(jeepney.__file__), self.dir / "lib" / "jeepney")
        shutil.copy(Path(__file__).with_name("notifyd.py"), self.dir / "notifyd.py")
        self.records = self.dir / "received.jsonl"
        self.records.touch()
        for path in [self.dir, self.records]:
            os.chown(path, user.pw_uid, user.pw_gid)
        self.address = f"unix:path={self.dir}/bus"
        self.procs: list[subprocess.Popen] = []
        self._spawn(["dbus-daemon", "--session", f"--address={self.address}", "--nofork", "--nopidfile"])
        wait_for(lambda: (self.dir / "bus").exists(), 10, what="the session bus")
        server = self._spawn(
            [SYSTEM_PYTHON, str(self.dir / "notifyd.py"), self.address, str(self.records)],
            env={"PYTHONPATH": str(self.dir / "lib"), "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE,
        )
        assert server.stdout.readline().strip() == b"ready", "the notification server did not start"
        # a process of the user's graphical session: what the agent looks for in /proc
        env = {"DBUS_SESSION_BUS_ADDRESS": self.address, "DISPLAY": ":99", "LANG": lang, "PATH": "/usr/bin:/bin"}
        self._spawn(["sleep", "600"], env=env)

    def _spawn(self, argv, env=None, stdout=subprocess.DEVNULL) -> subprocess.Popen:
        proc = subprocess.Popen(
            as_user(self.user, *argv),
            env=env or {"PATH": "/usr/bin:/bin"},
            stdout=stdout,
            stderr=subprocess.DEVNULL,
            cwd="/",
        )
        self.procs.append(proc)
        return proc

    def received(self) -> list[dict]:
        return [json.loads(line) for line in self.records.read_text(encoding="utf-8").splitlines() if line.strip()]

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.kill()
            proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def desktop(employee, request):
    why = _unavailable()
    if why:
        pytest.skip(f"desktop notices: {why}")
    session = Desktop(employee, getattr(request, "param", "zh_CN.UTF-8"))
    yield session
    session.close()


@pytest.fixture
def office(tmp_path):
    """Classified folders (a core drawing, an important formula), the employee's own copies of
    them where they may read, and an egress folder they may write to."""
    shared = Path(tempfile.mkdtemp(prefix="mw-office-"))
    shared.chmod(0o755)
    drawings, formulas = tmp_path / "drawings", tmp_path / "formulas"
    drawings.mkdir()
    formulas.mkdir()
    (drawings / "pump.dwg").write_bytes(DRAWING)
    (formulas / "coating.txt").write_bytes(FORMULA)
    mine = shared / "mine"
    mine.mkdir(mode=0o755)
    (mine / "drawing.dwg").write_bytes(DRAWING)
    (mine / "formula.txt").write_bytes(FORMULA)
    for f in mine.iterdir():
        f.chmod(0o644)
    usb = shared / "usb"
    usb.mkdir()
    usb.chmod(0o777)
    yield {"drawings": drawings, "formulas": formulas, "mine": mine, "usb": usb}
    shutil.rmtree(shared, ignore_errors=True)


def _agent(tmp_path, office, severities: str, per_minute: int = 3) -> Deployment:
    extra = "\n".join([
        "  notify_user:",
        f"    severities: [{severities}]",
        f"    per_minute: {per_minute}",
        f"    text_zh: {FIRM_ZH}",
        f"    text_en: {FIRM_EN}",
    ])  # fmt: skip
    d = Deployment(
        tmp_path, [(office["drawings"], "core", "Drawings"), (office["formulas"], "important", "Formulas")],
        egress_folders=[office["usb"]], agent_extra=extra,
    )  # fmt: skip
    d.start_agent()
    return d


def _copy(user, src: Path, dest: Path) -> float:
    started = time.monotonic()
    subprocess.run(as_user(user, "cp", str(src), str(dest)), check=True)
    return started


@pytest.mark.parametrize("desktop", ["zh_CN.UTF-8"], indirect=True)
def test_a_core_copy_tells_the_employee_in_chinese_on_their_own_bus_and_shows_a_hostile_name_literally(
    tmp_path, office, desktop, employee
):
    d = _agent(tmp_path, office, "critical, high")
    try:
        started = _copy(employee, office["mine"] / "drawing.dwg", office["usb"] / "泵叶轮图纸.dwg")
        [notice] = wait_for(desktop.received, 20, what="the notice on the employee's bus")
        seconds = time.monotonic() - started
        assert notice["uid"] == employee.pw_uid  # sent as the employee, never as root
        assert notice["signature"] == "susssasa{sv}i"
        assert notice["summary"] == "密卫：已记录一次商密外发"
        body = notice["body"]
        assert "已记录：您将核心商业秘密文件《泵叶轮图纸.dwg》写入了外发目录" in body, body
        assert "告警级别：严重" in body and "MW-EGRESS-CLASSIFIED" in body
        assert FIRM_ZH in body
        print(f"\ncopy to notice: {seconds:.2f}s")

        # a name made to break the notice: markup, a new line, a command substitution, quotes
        hostile = "<b>坏<i>\n$(id)`id`'\"&.dwg"
        _copy(employee, office["mine"] / "drawing.dwg", office["usb"] / hostile)
        wait_for(lambda: len(desktop.received()) == 2, 20, what="the second notice")
        body = desktop.received()[1]["body"]
        # the service reads markup (its capabilities say so): escaped, so it shows as typed
        assert "《&lt;b&gt;坏&lt;i&gt;\\n$(id)`id`&apos;&quot;&amp;.dwg》" in body, body
        assert "<b>" not in body and body.count("\n") == desktop.received()[0]["body"].count("\n")
        assert "uid=" not in body
    finally:
        d.close()


@pytest.mark.parametrize("desktop", ["en_GB.UTF-8"], indirect=True)
def test_an_english_session_gets_english(tmp_path, office, desktop, employee):
    d = _agent(tmp_path, office, "critical")
    try:
        _copy(employee, office["mine"] / "drawing.dwg", office["usb"] / "pump impeller.dwg")
        [notice] = wait_for(desktop.received, 20, what="the notice on the employee's bus")
        assert notice["summary"] == "MiWei: a transfer of protected data was recorded"
        assert (
            "Recorded: the core trade secret file “pump impeller.dwg” was written to an egress folder" in notice["body"]
        )
        assert "Alert severity: critical" in notice["body"] and FIRM_EN in notice["body"]
        assert "已记录" not in notice["body"]
    finally:
        d.close()


def test_below_the_threshold_nothing_is_shown(tmp_path, office, desktop, employee):
    d = _agent(tmp_path, office, "critical")  # an important formula raises high: not listed
    try:
        _copy(employee, office["mine"] / "formula.txt", office["usb"] / "formula.txt")
        formula = wait_for(lambda: _spooled(d, "formula.txt"), 20, what="the formula's event in the spool")
        assert formula["severity"] == "high"  # an alert, below the threshold of this config
        _copy(employee, office["mine"] / "drawing.dwg", office["usb"] / "drawing.dwg")  # critical: shown
        wait_for(desktop.received, 20, what="the core copy's notice")
        time.sleep(1.0)
        [notice] = desktop.received()
        assert "drawing.dwg" in notice["body"] and "formula" not in notice["body"]
    finally:
        d.close()


def test_a_burst_of_twenty_copies_gives_the_limit_and_one_fold(tmp_path, office, desktop, employee):
    d = _agent(tmp_path, office, "critical", per_minute=3)
    try:
        started = time.monotonic()
        for i in range(20):
            subprocess.run(
                as_user(employee, "cp", str(office["mine"] / "drawing.dwg"), str(office["usb"] / f"图纸{i:02d}.dwg")),
                check=True,
            )
        wait_for(lambda: any("另有" in n["body"] for n in desktop.received()), 30, what="the fold notice")
        seconds = time.monotonic() - started
        time.sleep(3.0)  # a second fold would come within QUIET_S; it must not, within the minute
        received = desktop.received()
        assert len(received) == 4, [n["body"][:40] for n in received]
        singles, fold = received[:3], received[3]
        assert all("已记录：您将核心商业秘密文件《图纸" in n["body"] for n in singles)
        assert "另有 17 个文件的外发已记录" in fold["body"], fold["body"]
        print(f"\n20 copies: 3 notices and one fold of 17 within {seconds:.2f}s")
    finally:
        d.close()


def _spooled(d: Deployment, name: str) -> dict | None:
    """The egress.file event of a file called `name`, as the agent stored it in its spool."""
    import sqlite3

    path = d.state_dir / "spool.db"
    if not path.exists():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        events = [json.loads(body) for (body,) in conn.execute("SELECT body FROM spool")]
    return next((e for e in events if e["type"] == "egress.file" and (e.get("path") or "").endswith("/" + name)), None)
