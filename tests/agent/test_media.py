"""The media monitor with a scripted mount table: what counts as a mount, an unmount, a retry."""

from __future__ import annotations

import os

import pytest
from loguru import logger

from agent.config import EgressConfig
from agent.media import MediaMonitor, Mount, describe_media


class MountTable:
    """What the kernel lists, as the test says; the callbacks record what the monitor made of it."""

    def __init__(self):
        self.mounts: list[Mount] = []
        self.calls: list[tuple[str, str, tuple]] = []
        self.fail_mounts = 0

    def on_mount(self, mount: Mount) -> None:
        self.calls.append(("mount", mount.mountpoint, mount.identity))
        if self.fail_mounts:
            self.fail_mounts -= 1
            raise UnicodeEncodeError("utf-8", "\udcb1", 0, 1, "surrogates not allowed")

    def on_unmount(self, mount: Mount) -> None:
        self.calls.append(("unmount", mount.mountpoint, mount.identity))

    def monitor(self) -> MediaMonitor:
        return MediaMonitor(EgressConfig(), self.on_mount, self.on_unmount, list_mounts=lambda: list(self.mounts))


@pytest.fixture
def table():
    return MountTable()


def test_a_mount_whose_handling_failed_is_tried_again(table):
    monitor = table.monitor()
    table.mounts = [Mount("/media/u/STICK", "/dev/sdz1", "vfat", (101,))]
    table.fail_mounts = 1
    monitor.poll()
    assert monitor.mounted == {}, "a mount is recorded only once it was taken in"
    monitor.poll()
    assert table.calls == [("mount", "/media/u/STICK", (101,))] * 2
    assert list(monitor.mounted.values())[0].mountpoint == "/media/u/STICK"
    monitor.poll()
    assert len(table.calls) == 2


def test_a_remount_at_the_same_place_between_two_polls_is_an_unmount_and_a_mount(table):
    monitor = table.monitor()
    table.mounts = [Mount("/media/u/STICK", "/dev/sdz1", "vfat", (101,))]
    monitor.poll()
    table.mounts = [Mount("/media/u/STICK", "/dev/sdz1", "vfat", (102,))]  # same device, same place
    monitor.poll()
    assert table.calls == [
        ("mount", "/media/u/STICK", (101,)),
        ("unmount", "/media/u/STICK", (101,)),
        ("mount", "/media/u/STICK", (102,)),
    ]
    table.mounts = []
    monitor.poll()
    assert table.calls[-1] == ("unmount", "/media/u/STICK", (102,))


def test_media_in_events_carry_text_that_can_be_stored():
    raw = os.fsdecode(b"/media/u/\xb1\xa8")
    media = describe_media(Mount(raw, os.fsdecode(b"/srv/img-\xff.img"), "fuse.fusefat", (1,)))
    assert media.mountpoint == "/media/u/\\xb1\\xa8"
    assert media.device == "/srv/img-\\xff.img"
    media.mountpoint.encode("utf-8")  # no lone surrogates left


def test_names_from_the_device_cannot_forge_log_lines(table):
    lines: list[str] = []
    sink = logger.add(lines.append, format="{message}", level="INFO")
    try:
        table.mounts = [Mount("/media/u/x\nERROR forged", "/dev/sdz1\nINFO agent stopping", "vfat\n", (1,))]
        monitor = table.monitor()
        monitor.poll()
        table.mounts = []
        monitor.poll()
    finally:
        logger.remove(sink)
    assert len(lines) == 2
    assert all("\n" not in line.rstrip("\n") for line in lines), lines
