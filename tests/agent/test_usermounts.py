"""User-space mounts: what a gvfs folder name says, mountinfo's owners, and the walker's budget
(a large phone is walked over several rounds, each going on where the last stopped)."""

from __future__ import annotations

import os

import pytest

from agent.usermounts import parse_gvfs_name, read_user_mounts
from agent.userwalk import unb64, walk


@pytest.mark.parametrize(
    ("name", "kind", "app", "serial"),
    [
        ("mtp:host=Xiaomi_Redmi_Note_12_abc123", "phone", "Xiaomi Redmi Note 12", "abc123"),
        ("mtp:host=HUAWEI_Mate_40_Pro_8KE0220A12345678", "phone", "HUAWEI Mate 40 Pro", "8KE0220A12345678"),
        ("mtp:host=%5Busb%3A001%2C004%5D", "phone", "[usb:001,004]", ""),  # gvfs before 1.34
        ("gphoto2:host=Canon_EOS_600D", "phone", "Canon EOS 600D", ""),
        ("afc:host=00008030001A2B3C4D5E6F70", "phone", "00008030001A2B3C4D5E6F70", ""),
        ("smb-share:server=fs01,share=drawings", "share", "fs01/drawings", ""),
        ("sftp:host=example.com,user=bob", "share", "bob@example.com", ""),
        ("dav:host=pan.example.cn,ssl=true", "share", "pan.example.cn", ""),
    ],
)
def test_a_gvfs_folder_names_its_kind_and_device(name, kind, app, serial):
    what = parse_gvfs_name(name)
    assert (what.kind, what.app, what.serial) == (kind, app, serial)


@pytest.mark.parametrize("name", ["trash:", "recent:", "burn:", "network:", "computer:", "mtp", "x:host=a"])
def test_other_gvfs_folders_are_no_egress_place(name):
    assert parse_gvfs_name(name) is None


def test_mountinfo_gives_the_owner_of_user_fuse_mounts(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "47 27 0:41 / /run/user/1000/gvfs rw,nosuid,nodev - fuse.gvfsd-fuse gvfsd-fuse rw,user_id=1000,group_id=1000\n"
        "48 27 0:42 / /home/li\\040lei/Phone rw - fuse.jmtpfs jmtpfs rw,user_id=1001,group_id=100\n"
        "49 27 0:43 / /media/usb rw - vfat /dev/sdb1 rw\n"
        "50 27 0:44 / /mnt/x rw - fuse.sshfs a@b: rw,user_id=1000,group_id=1000\n"
    )
    found = read_user_mounts(str(info))
    assert [(m.mountpoint, m.fstype, m.uid, m.gid) for m in found] == [
        ("/run/user/1000/gvfs", "fuse.gvfsd-fuse", 1000, 1000),
        ("/home/li lei/Phone", "fuse.jmtpfs", 1001, 100),
    ]


def test_a_walk_over_budget_goes_on_where_it_stopped_and_sees_every_file_once(tmp_path):
    names = set()
    for d in ("DCIM", "Download", "Music/a", "Music/b"):
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
        for i in range(7):
            (tmp_path / d / f"f{i}.bin").write_bytes(b"x")
            names.add(f"{d}/f{i}.bin")
    seen, after, walks = [], None, 0
    while True:
        answer = walk(os.fsencode(tmp_path), after, max_entries=5, max_s=60)
        walks += 1
        assert answer["entries"] <= 5
        seen += [os.fsdecode(unb64(f[0])) for f in answer["files"]]
        if answer["cursor"] is None:
            break
        after = tuple(unb64(c) for c in answer["cursor"])
        assert walks < 50
    assert sorted(seen) == sorted(names)  # each once: none skipped, none twice
    assert walks >= 6
