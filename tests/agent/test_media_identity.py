"""Media identity from recorded outputs: sysfs and udev (Linux), PowerShell CIM JSON (Windows),
diskutil and system_profiler (macOS). Each case's expected identity is written beside it."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest

from agent.mediaid import MediaIdentity, clean, reader_for, usb_id
from agent.mediaid.linux import LinuxReader
from rules.events import Media

DATA = Path(__file__).resolve().parent.parent / "data" / "media"


def _cases(os_name: str) -> list[str]:
    return sorted(p.stem for p in (DATA / os_name).glob("*.json"))


def _media(expect: dict) -> Media:
    return Media(**expect)


class RecordedCommands:
    """Answers commands from a recording: {first words: [exit code, stdout or a file name]}."""

    def __init__(self, folder: Path, answers: dict[str, list]):
        self.folder, self.answers = folder, answers
        self.calls: list[list[str]] = []

    def __call__(self, argv):
        argv = list(argv)
        self.calls.append(argv)
        for prefix, (code, out) in self.answers.items():
            if " ".join(argv).startswith(prefix):
                path = self.folder / out if out and not out.startswith("\n") and (self.folder / out).is_file() else None
                return code, path.read_text(encoding="utf-8") if path else out
        return 127, ""


# --- Linux -------------------------------------------------------------------------------------


def _linux_tree(case: dict, root: Path, with_udev: bool = True) -> LinuxReader:
    for rel, content in case["files"].items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    for rel, target in case["links"].items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(root / target)
    (root / "udev").mkdir()
    (root / "by-label").mkdir(exist_ok=True)
    if with_udev:
        for name, recorded in case["udev"].items():
            shutil.copy(DATA / "linux" / recorded, root / "udev" / name)
    blkid = case.get("blkid", [2, ""])
    runner = RecordedCommands(DATA / "linux", {"blkid": blkid})
    reader = LinuxReader(
        sys_block=str(root / "class" / "block"), udev_data=str(root / "udev"), by_label=str(root / "by-label"),
        run=runner, has_blkid=True,
    )
    reader.commands = runner
    return reader


@pytest.mark.parametrize("name", _cases("linux"))
def test_linux_identity_from_sysfs_and_udev(tmp_path, name):
    case = json.loads((DATA / "linux" / f"{name}.json").read_text(encoding="utf-8"))
    reader = _linux_tree(case, tmp_path)
    identity = reader.identify(**case["mount"])
    assert identity.to_media() == _media(case["expect"]), case["about"]


@pytest.mark.parametrize("name", [n for n in _cases("linux") if "expect_without_udev" in json.loads((DATA / "linux" / f"{n}.json").read_text())])
def test_linux_identity_without_udev_comes_from_sysfs(tmp_path, name):
    case = json.loads((DATA / "linux" / f"{name}.json").read_text(encoding="utf-8"))
    reader = _linux_tree(case, tmp_path, with_udev=False)
    assert reader.identify(**case["mount"]).to_media() == _media(case["expect_without_udev"]), case["about"]


def test_the_usb_root_hub_is_not_taken_for_the_stick(tmp_path):
    """Walking up from the disk, the first USB device is the stick, not the hub (1d6b:0002)."""
    case = json.loads((DATA / "linux" / "usb-stick.json").read_text(encoding="utf-8"))
    reader = _linux_tree(case, tmp_path, with_udev=False)
    assert reader.identify(**case["mount"]).vendor_id == "0781"


def test_blkid_is_asked_only_when_udev_did_not_probe_the_file_system(tmp_path):
    case = json.loads((DATA / "linux" / "usb-stick.json").read_text(encoding="utf-8"))
    reader = _linux_tree(case, tmp_path)
    reader.identify(**case["mount"])
    assert reader.commands.calls == []
    loop = json.loads((DATA / "linux" / "loop-image.json").read_text(encoding="utf-8"))
    reader = _linux_tree(loop, tmp_path / "loop")
    reader.identify(**loop["mount"])
    assert reader.commands.calls == [["blkid", "-p", "-o", "udev", "/dev/loop3"]]  # -p: never a cached answer


def test_fuseblk_without_udev_or_blkid_stays_fuseblk_and_has_no_volume_id(tmp_path):
    case = json.loads((DATA / "linux" / "loop-exfat-fuse.json").read_text(encoding="utf-8"))
    reader = _linux_tree({**case, "blkid": [2, ""]}, tmp_path)  # blkid found nothing
    media = reader.identify(**case["mount"]).to_media()
    assert (media.fstype, media.volume_id, media.size_bytes) == ("fuseblk", "", 67108864)
    assert media.identity == "::vol::67108864"  # no identity: the collector allows it by no pattern


@pytest.mark.parametrize(
    ("media", "identity"),
    [
        (Media("/m", serial="60A44C3FAE22F0B1", vendor_id="0951", product_id="1666", volume_id="5A3C-19E2"), "0951:1666:60a44c3fae22f0b1"),
        (Media("/m", vendor_id="0951", product_id="1666", volume_id="5A3C-19E2", size_bytes=8), "0951:1666:vol:5a3c-19e2:8"),
        (Media("/m", volume_id="FF9F-96C9", size_bytes=67108864), "::vol:ff9f-96c9:67108864"),
        (Media("/m", size_bytes=67108864), "::vol::67108864"),
        (Media("/m"), "::vol::"),
    ],
)
def test_media_without_a_hardware_serial_are_known_by_volume_id_and_size(media, identity):
    assert media.identity == identity


def test_two_sticks_without_a_serial_have_two_identities():
    first = Media("/media/u/A", fstype="vfat", volume_id="6F11-7D89", size_bytes=67108864)
    second = Media("/media/u/A", fstype="vfat", volume_id="0C1D-77F0", size_bytes=67108864)
    assert first.identity != second.identity
    assert Media("/m").identity != "::"  # every serial-less stick used to be '::', allowed by one click


def test_a_device_that_is_not_in_sysfs_gets_what_the_mount_says(tmp_path):
    reader = LinuxReader(sys_block=str(tmp_path), udev_data=str(tmp_path), by_label=str(tmp_path), has_blkid=False)
    identity = reader.identify("/media/u/phone", "jmtpfs", "fuse.jmtpfs")
    assert identity == MediaIdentity("/media/u/phone", "jmtpfs", "fuse.jmtpfs")
    assert reader.is_removable("/dev/sdz9") is False


# --- the identity as events carry it ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "want"),
    [("0x0781", "0781"), ("0781", "0781"), ("0x781  (SanDisk Corporation)", "0781"), ("1D6B", "1d6b"),
     ("apple_vendor_id", ""), ("", ""), ("12345", ""), ("vendor", "")],
)
def test_usb_ids_are_four_lower_case_hex_digits_or_nothing(raw, want):
    assert usb_id(raw) == want


def test_text_from_a_device_cannot_carry_control_characters_or_padding():
    assert clean("  Evil\nINFO agent stopped\x00\x1b[31m  ") == "EvilINFO agent stopped[31m"
    media = MediaIdentity(os.fsdecode(b"/media/u/\xb1\xa8"), label=os.fsdecode(b"\xff")).to_media()
    assert media.mountpoint == "/media/u/\\xb1\\xa8" and media.label == "\\xff"


def test_the_identity_fills_every_media_field():
    assert {f.name for f in dataclasses.fields(MediaIdentity)} == {f.name for f in dataclasses.fields(Media)}


def test_each_os_has_its_reader():
    assert type(reader_for("linux")).__name__ == "LinuxReader"
    assert type(reader_for("win32")).__name__ == "WindowsReader"
    assert type(reader_for("darwin")).__name__ == "MacReader"
    assert reader_for("freebsd14").identify("/mnt/x", "//srv/x", "nfs").bus == "network"


# --- Windows -----------------------------------------------------------------------------------

WINDOWS_CASES = json.loads((DATA / "windows" / "cases.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", WINDOWS_CASES, ids=[c["about"] for c in WINDOWS_CASES])
def test_windows_identity_from_psutil_and_the_cim_query(case):
    from agent.mediaid.windows import COMMAND, WindowsReader

    runner = RecordedCommands(DATA / "windows", {"powershell.exe": case["output"]})
    identity = WindowsReader(run=runner).identify(**case["partition"])
    assert identity.to_media() == _media(case["expect"])
    assert runner.calls == [list(COMMAND)]


def test_drives_that_appear_together_share_one_powershell_run():
    from agent.mediaid.windows import WindowsReader

    now = [100.0]
    runner = RecordedCommands(DATA / "windows", {"powershell.exe": [0, "cim.json"]})
    reader = WindowsReader(run=runner, clock=lambda: now[0])
    reader.identify("E:\\", "E:\\", "FAT32", "rw,removable")
    reader.identify("F:\\", "F:\\", "NTFS", "rw,fixed")
    assert len(runner.calls) == 1
    now[0] += 60  # a drive plugged in later is asked about afresh
    assert reader.identify("G:\\", "G:\\", "exFAT", "rw,removable").serial == "20120926571200000"
    assert len(runner.calls) == 2


# --- macOS -------------------------------------------------------------------------------------

MAC_CASES = json.loads((DATA / "macos" / "cases.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", MAC_CASES, ids=[c["about"] for c in MAC_CASES])
def test_macos_identity_from_diskutil_and_system_profiler(case):
    from agent.mediaid.macos import MacReader

    runner = RecordedCommands(DATA / "macos", case["commands"])
    identity = MacReader(run=runner).identify(**case["partition"])
    assert identity.to_media() == _media(case["expect"])
    assert [" ".join(c) for c in runner.calls] == list(case["commands"])
