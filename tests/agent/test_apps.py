"""The app folder list (agent/apps.yaml, agent/apps.py) and discovery in a home (agent/discovery.py)."""

from __future__ import annotations

import os

import pytest

from agent.apps import load_apps
from agent.discovery import AppFolderDiscovery, user_homes
from rules.errors import InvalidInput


def test_shipped_list_loads_with_every_app_the_issue_names():
    apps = {a.app: a for a in load_apps()}
    assert {
        "WeChat",
        "WeCom",
        "QQ",
        "DingTalk",
        "Feishu",
        "Baidu Netdisk",
        "Nutstore",
        "OneDrive",
        "Dropbox",
        "WPS Cloud",
    } <= set(apps)
    assert "Documents/xwechat_files/*/msg/file" in apps["WeChat"].windows
    assert ".config/QQ/nt_qq_*/nt_data/File" in apps["QQ"].linux


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "- {app: X, kind: im, paths: {linux: [/abs]}}",
            "2:38: [0].paths.linux[0]: '/abs' must be relative to the user's home",
        ),
        (
            "- {app: X, kind: im, paths: {linux: ['a/../b']}}",
            "[0].paths.linux[0]: 'a/../b' has an empty, '.' or '..' component",
        ),
        ("- {app: X, kind: im, paths: {linux: ['a/**/b']}}", "holds '**': one wildcard matches one folder level"),
        ("- {app: X, kind: im, paths: {linux: ['*/b']}}", "starts with a bare wildcard"),
        ("- {app: X, kind: mail, paths: {linux: [a]}}", "2:18: [0].kind: unknown kind 'mail'"),
        ("- {app: X, kind: im, paths: {linx: [a]}}", "[0].paths.linx: unknown key (did you mean 'linux'?)"),
        ("- {app: X, kind: im, paths: {}}", "[0].paths: no folder for any OS"),
        ("- {app: WeChat, kind: sync, paths: {linux: [a]}}", "app 'WeChat' is already listed with kind im"),
    ],
)
def test_bad_entry_is_refused_with_file_line_and_column(tmp_path, entry, message):
    extra = tmp_path / "firm-apps.yaml"
    extra.write_text("# a firm's own apps\n" + entry + "\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as err:
        load_apps((str(extra),))
    text = str(err.value)
    assert text.startswith(f"{extra}:2:"), text
    assert message in text, text


def test_firm_file_adds_an_app_and_more_folders_for_a_listed_one(tmp_path):
    extra = tmp_path / "firm-apps.yaml"
    extra.write_text(
        "- {app: Tencent Docs, kind: sync, paths: {linux: [TencentDocs]}}\n"
        "- {app: WeChat, kind: im, paths: {linux: [WeChatMoved/*/File]}}\n",
        encoding="utf-8",
    )
    apps = {a.app: a for a in load_apps((str(extra),))}
    assert apps["Tencent Docs"].linux == ("TencentDocs",)
    assert apps["WeChat"].linux[-1] == "WeChatMoved/*/File" and len(apps["WeChat"].linux) > 1


def test_homes_come_from_passwd_and_home_roots(tmp_path):
    roots = tmp_path / "home"
    (roots / "alice").mkdir(parents=True)
    os.symlink("/", roots / "evil")  # a link under the home root is not a home
    ldap_home = tmp_path / "srv" / "bob"
    ldap_home.mkdir(parents=True)
    passwd = tmp_path / "passwd"
    passwd.write_text(
        f"root:x:0:0::/root:/bin/bash\nnobody:x:65534:65534::/:/usr/sbin/nologin\nbob:x:1001:1001::{ldap_home}:/bin/sh\n",
        encoding="utf-8",
    )
    assert user_homes((str(roots),), True, "linux", str(passwd)) == [str(ldap_home), str(roots / "alice")]


def test_discovery_of_twenty_homes_is_cheap_and_skips_classified_overlaps(tmp_path, monkeypatch):
    """Cheap: a poll looks up at most one path a folder level of each app's patterns in each
    home (no walk of the homes' trees), counted by the file system calls it makes."""
    roots = tmp_path / "home"
    for i in range(20):
        (roots / f"u{i}" / "Documents" / "WeChat Files" / f"wxid_{i}" / "FileStorage" / "File").mkdir(parents=True)
    (roots / "u0" / "Dropbox" / "rnd").mkdir(parents=True)  # a classified folder inside a sync folder
    for i in range(1000):  # a tree a walk of the homes would pay for
        (roots / "u1" / "Projects" / f"p{i}").mkdir(parents=True)
    found, refused = [], []
    discovery = AppFolderDiscovery(
        load_apps(),
        (str(roots / "u0" / "Dropbox" / "rnd"),),
        found.append,
        lambda f: None,
        refused.append,
        home_roots=(str(roots),),
        system_users=False,
        os_name="linux",
    )
    lookups = []
    for name in ("lstat", "stat", "scandir", "listdir"):
        real = getattr(os, name)
        monkeypatch.setattr(
            os, name, lambda *a, _real=real, _name=name, **k: (lookups.append(_name), _real(*a, **k))[1]
        )
    discovery.poll()
    monkeypatch.undo()
    levels = sum(len(pattern.split("/")) for app in load_apps() for pattern in app.patterns("linux"))
    assert 0 < len(lookups) <= 20 * (levels + 1) + 1, len(lookups)  # each level of each pattern, each home listed
    assert sorted(f.app for f in found) == ["WeChat"] * 20
    assert [(r.app, r.reason) for r in refused] == [("Dropbox", "classified-overlap")]
    discovery.poll()  # said once, not at every poll
    assert len(refused) == 1 and len(found) == 20
