"""Removable media: which mounts are egress places, and what device each one is.

Polls psutil's mount list (cheap: one read of /proc/self/mounts) every `poll_s`, so a stick is
picked up within about that long of mounting. Identity on Linux comes from sysfs and udev's
database; fields that cannot be read stay empty.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable

import psutil
from loguru import logger

from agent.config import EgressConfig
from agent.paths import is_under
from rules.events import Media

SYS_BLOCK = "/sys/class/block"
UDEV_DATA = "/run/udev/data"
BY_LABEL = "/dev/disk/by-label"


class MediaMonitor:
    def __init__(
        self,
        config: EgressConfig,
        on_mount: Callable[[Media], None],
        on_unmount: Callable[[Media], None],
        excluded: tuple[str, ...] = (),
    ):
        self.config = config
        self.on_mount, self.on_unmount = on_mount, on_unmount
        self.excluded = excluded  # classified folders and the state dir are never egress
        self.mounted: dict[str, Media] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="media", daemon=True)

    def start(self) -> None:
        self.poll()  # mounts present at start are reported before the thread starts
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.config.poll_s):
            try:
                self.poll()
            except Exception:  # one bad poll must not end media monitoring
                logger.exception("media poll failed")

    def poll(self) -> None:
        current = {m.mountpoint: m for m in self._removable_mounts()}
        for mountpoint in sorted(set(self.mounted) - set(current)):
            media = self.mounted.pop(mountpoint)
            logger.info("media unmounted mountpoint={!r} device={}", mountpoint, media.device)
            self.on_unmount(media)
        for mountpoint in sorted(set(current) - set(self.mounted)):
            media = describe_media(current[mountpoint])
            self.mounted[mountpoint] = media
            logger.info("media mounted mountpoint={!r} device={} fstype={}", mountpoint, media.device, media.fstype)
            self.on_mount(media)

    def _removable_mounts(self) -> list[Media]:
        if not self.config.removable:
            return []
        found = []
        # all=True: FUSE mounts (phones over MTP, ntfs-3g, fusefat) are egress places too
        for part in psutil.disk_partitions(all=True):
            mountpoint = part.mountpoint
            if any(is_under(mountpoint, x) or is_under(x, mountpoint) for x in self.excluded):
                continue
            under_root = any(is_under(mountpoint, root) and mountpoint != root for root in self.config.mount_roots)
            if under_root or is_removable_device(part.device):
                found.append(Media(mountpoint=mountpoint, device=part.device, fstype=part.fstype))
        return found


def is_removable_device(device: str) -> bool:
    """sysfs says the disk holding this partition is removable (USB sticks, SD cards)."""
    disk = _disk_dir(device)
    return bool(disk) and _read(os.path.join(disk, "removable")) == "1"


def describe_media(media: Media) -> Media:
    """Fill in label, vendor, model and serial from what Linux exposes; blanks when unknown."""
    name = os.path.basename(os.path.realpath(media.device)) if media.device.startswith("/dev/") else ""
    disk = _disk_dir(media.device)
    udev = _udev_properties(name) if name else {}
    device_dir = os.path.join(disk, "device") if disk else ""
    return Media(
        mountpoint=media.mountpoint,
        device=media.device,
        fstype=media.fstype,
        label=udev.get("ID_FS_LABEL", "") or _label_for(name) or _blkid_label(media.device),
        serial=udev.get("ID_SERIAL_SHORT", "") or (_read(os.path.join(device_dir, "serial")) if device_dir else ""),
        vendor=udev.get("ID_VENDOR", "") or (_read(os.path.join(device_dir, "vendor")) if device_dir else ""),
        model=udev.get("ID_MODEL", "") or (_read(os.path.join(device_dir, "model")) if device_dir else ""),
    )


def _disk_dir(device: str) -> str:
    """/sys/class/block/<disk> for a /dev node, following a partition up to its disk."""
    if not device.startswith("/dev/"):
        return ""
    name = os.path.basename(os.path.realpath(device))
    path = os.path.realpath(os.path.join(SYS_BLOCK, name))
    if not os.path.isdir(path):
        return ""
    if os.path.exists(os.path.join(path, "partition")):
        path = os.path.dirname(path)
    return path


def _udev_properties(name: str) -> dict[str, str]:
    dev = _read(os.path.join(SYS_BLOCK, name, "dev"))
    props = {}
    if dev:
        try:
            with open(os.path.join(UDEV_DATA, f"b{dev}"), encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith("E:") and "=" in line:
                        key, _, value = line[2:].rstrip("\n").partition("=")
                        props[key] = value
        except OSError:
            pass
    return props


def _label_for(name: str) -> str:
    """The file system label, from /dev/disk/by-label (udev escapes spaces as \\x20)."""
    try:
        for entry in os.listdir(BY_LABEL):
            if os.path.basename(os.path.realpath(os.path.join(BY_LABEL, entry))) == name:
                raw = re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), os.fsencode(entry))
                return raw.decode("utf-8", "replace")
    except OSError:
        pass
    return ""


def _blkid_label(device: str) -> str:
    """The label from the file system itself, where udev is not running (containers, minimal PCs)."""
    if not device.startswith("/dev/") or not shutil.which("blkid"):
        return ""
    try:
        done = subprocess.run(
            ["blkid", "-o", "value", "-s", "LABEL", device], capture_output=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.decode("utf-8", "replace").strip() if done.returncode == 0 else ""


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""
