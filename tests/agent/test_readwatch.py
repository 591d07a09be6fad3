"""Reads by network applications (agent/readwatch.py, agent/netapps.py): the list, the matching on
the executable, the folding and the bounded queue, and fanotify under the unit's capabilities."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from agent.config import ClassifiedFolder
from agent.fanotify import init_notify
from agent.netapps import AppList, NetApp, load_app_lists, parse_app_list
from agent.readwatch import ReadWatch, reader_of
from agent.service.systemd import CAPABILITIES
from rules.errors import InvalidInput


@pytest.mark.parametrize(
    "exe, app",
    [
        ("/usr/lib/chromium/chromium", "Chromium"),
        ("/opt/google/chrome/chrome", "Google Chrome"),
        ("/opt/microsoft/msedge/msedge", "Microsoft Edge"),
        ("/usr/lib/firefox-esr/firefox-esr", "Firefox"),
        ("/opt/wechat/wechat", "WeChat"),
        ("/opt/QQ/qq", "QQ"),
        ("/opt/apps/com.alibabainc.dingtalk/files/7.6.0/com.alibabainc.dingtalk", "DingTalk"),
        ("/opt/bytedance/feishu/feishu", "Feishu"),
        ("/usr/lib/thunderbird/thunderbird", "Thunderbird"),
        ("/opt/baidunetdisk/baidunetdisk", "Baidu Netdisk"),
        ("/home/a/.dropbox-dist/dropbox-lnx.x86_64-200.4/dropbox", "Dropbox"),
        ("/opt/teamviewer/tv_bin/TeamViewer", "TeamViewer"),
        ("/usr/local/sunlogin/bin/sunloginclient", "Sunlogin"),
        ("/opt/todesk/bin/ToDesk", "ToDesk"),
        ("/usr/bin/curl", "curl"),
        ("/usr/bin/scp", "scp"),
        ("/usr/bin/cat", None),
        ("/usr/bin/python3.11", None),  # the agent's own interpreter: never listed
        ("/usr/libexec/tracker-miner-fs-3", None),
        ("/usr/bin/libreoffice", None),
    ],
)
def test_the_shipped_list_names_the_apps_by_their_installed_path(exe, app):
    found = load_app_lists().app_for(exe)
    assert (found.name if found else None) == app


def test_the_ignore_list_wins_over_the_apps():
    apps = AppList(
        (NetApp("All of usr", "other", ("/usr/bin/*",)),), (NetApp("Backup", "other", ("/usr/bin/restic",)),)
    )
    assert apps.app_for("/usr/bin/curl").name == "All of usr"
    assert apps.app_for("/usr/bin/restic") is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("apps:\n  - {name: X, kind: browser, exe: [firefox]}\n", "starting with / or */"),
        ("apps:\n  - {name: X, kind: spaceship, exe: ['/x']}\n", "unknown kind 'spaceship'"),
        ("apps:\n  - {kind: im, exe: ['/x']}\n", "a name is required"),
        ("programs: []\n", "expected a mapping"),
        ("apps: [\n", "not YAML"),
    ],
)
def test_a_bad_list_is_refused_with_where(text, message):
    with pytest.raises(InvalidInput) as caught:
        parse_app_list(text, "firm.yaml")
    assert message in str(caught.value) and "firm.yaml" in str(caught.value)


def test_the_process_is_known_by_its_executable_not_its_name(tmp_path):
    link = tmp_path / "firefox"
    link.symlink_to(shutil.which("sleep"))
    proc = subprocess.Popen([str(link), "30"])
    try:
        deadline = time.monotonic() + 10
        while (reader := reader_of(proc.pid)) is None or reader.name != "firefox":  # until exec is done
            assert time.monotonic() < deadline, reader
            time.sleep(0.05)
        assert reader.name == "firefox"  # what ps shows: the user's choice
        assert reader.exe == os.path.realpath(shutil.which("sleep"))
        assert load_app_lists().app_for(reader.exe) is None
    finally:
        proc.kill()
        proc.wait()


needs_fanotify = pytest.mark.skipif(
    init_notify()[0] < 0, reason="fanotify unavailable here (no CAP_SYS_ADMIN or not Linux)"
)


@needs_fanotify
def test_a_flood_of_reads_by_many_files_is_bounded_and_its_losses_reported(tmp_path):
    folder = tmp_path / "secret"
    folder.mkdir()
    for i in range(50):
        (folder / f"f{i}").write_bytes(b"x" * 100)
    cat = tmp_path / "uploader"
    shutil.copy2(shutil.which("cat"), cat)
    emitted = []
    watch = ReadWatch(
        (ClassifiedFolder(str(folder), "core", "Secret"),),
        AppList((NetApp("Up", "transfer", (str(cat),)),)),
        lambda type_, **f: emitted.append((type_, f)),
        queue_max=10,
    )
    watch._threads = watch._threads[:1]  # the reader only: nothing drains the queue
    watch.start()
    try:
        # a reader that stays alive after its reads (as a browser or IM client does): a program
        # that read and exited within a millisecond may be gone before its exe is read (docstring)
        # run by a shell: a child of this process would be taken for an inspection worker
        files = " ".join(str(folder / f"f{i}") for i in range(50))
        reader = subprocess.Popen(["sh", "-c", f"{cat} {files} - >/dev/null; :"], stdin=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while watch.dropped + watch._queue.qsize() < 50 and time.monotonic() < deadline:  # loaded machines are slow
            time.sleep(0.1)
        reader.stdin.close()
        reader.wait(10)
        assert watch._queue.qsize() == 10 and watch.dropped == 40
        assert watch._report_losses()
        [(type_, fields)] = emitted
        assert type_ == "agent.overflow" and fields["details"]["dropped"] == 40
    finally:
        watch.stop()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv (util-linux)")
@needs_fanotify
def test_fanotify_works_with_the_units_capabilities_and_not_without_sys_admin():
    probe = "from agent.fanotify import init_notify; print(init_notify()[1])"

    def errno_with(caps):
        bounding = ",".join(["-all", *(f"+{c.removeprefix('CAP_').lower()}" for c in caps)])
        done = subprocess.run(
            ["setpriv", f"--bounding-set={bounding}", sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return int(done.stdout)

    assert errno_with(CAPABILITIES) == 0
    assert errno_with(tuple(c for c in CAPABILITIES if c != "CAP_SYS_ADMIN")) == 1  # EPERM: the unit before


def test_without_fanotify_the_agent_says_why_once():
    watch = ReadWatch((ClassifiedFolder("/srv/x", "core"),), AppList(()), lambda *a, **k: None)
    watch.stop()
    watch._fd, watch.unavailable_errno = -1, 1
    assert (
        watch.unavailable_reason()
        == "reads of classified files are not watched: Operation not permitted (fanotify needs CAP_SYS_ADMIN)"
    )
