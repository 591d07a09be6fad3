"""Removable media: which mounts are egress places, and what device each one is.

Polls psutil's mount list (cheap: one read of /proc/self/mounts) every `poll_s`, so a stick is
picked up within about that long of mounting. A mount is known by its mountpoint, device and
mount identity (agent.mountid), so a stick unmounted and mounted again at the same place between
two polls is seen as an unmount and a mount. Identity on Linux comes from sysfs and udev's
database; fields that cannot be read stay empty. Mountpoints are bytes to Linux: the Media in
events carries them readable (agent.paths), the raw path stays for watching.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

import psutil
from loguru import logger

from agent.config import EgressConfig
from agent.mountid import mount_identity
from agent.paths import is_under, readable, without_surrogates
from rules.events import Media

SYS_BLOCK = "/sys/class/block"
UDEV_DATA = "/run/udev/data"
BY_LABEL = "/dev/disk/by-label"


@dataclass(frozen=True)
class Mount:
    """One mounted file system that is an egress place."""

    mountpoint: str  # as the kernel names it: bytes that are not UTF-8 as surrogate escapes
    device: str
    fstype: str
    identity: tuple[int, ...] = ()  # agent.mountid.mount_identity
    media: Media | None = None  # for events (every text readable); filled in once it is new

    @property
    def key(self) -> tuple:
        return (self.mountpoint, self.device, self.identity)


class MediaMonitor:
    def __init__(
        self,
        config: EgressConfig,
        on_mount: Callable[[Mount], None],
        on_unmount: Callable[[Mount], None],
        excluded: tuple[str, ...] = (),
        list_mounts: Callable[[], list[Mount]] | None = None,
    ):
        self.config = config
        self.on_mount, self.on_unmount = on_mount, on_unmount
        self.excluded = excluded  # classified folders and the state dir are never egress
        self.list_mounts = list_mounts or self._removable_mounts
        self.mounted: dict[tuple, Mount] = {}  # only mounts whose on_mount succeeded
        self._failing: set[tuple] = set()  # mounts whose on_mount failed (logged once, retried)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="media", daemon=True)

    def start(self) -> None:
        try:
            self.poll()  # mounts present at start are reported before the thread starts
        except Exception:  # the thread tries again
            logger.exception("media poll failed")
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
        current = {m.key: m for m in self.list_mounts()}
        for key in sorted(set(self.mounted) - set(current), key=repr):
            mount = self.mounted.pop(key)
            logger.info("media unmounted mountpoint={!r} device={!r}", mount.mountpoint, mount.device)
            try:
                self.on_unmount(mount)
            except Exception:  # the mount is gone either way
                logger.exception("media unmount handling failed mountpoint={!r}", mount.mountpoint)
        self._failing &= set(current)
        for key in sorted(set(current) - set(self.mounted), key=repr):
            mount = current[key]
            if mount.media is None:
                mount = replace(mount, media=describe_media(mount))
            if key not in self._failing:
                logger.info(
                    "media mounted mountpoint={!r} device={!r} fstype={!r} label={!r}",
                    mount.mountpoint, mount.device, mount.fstype, mount.media.label,
                )
            try:
                self.on_mount(mount)
            except Exception:  # not recorded as mounted: the next poll tries again
                if key not in self._failing:
                    logger.exception("media mount handling failed; retrying mountpoint={!r}", mount.mountpoint)
                self._failing.add(key)
                continue
            self._failing.discard(key)
            self.mounted[key] = mount

    def _removable_mounts(self) -> list[Mount]:
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
                found.append(Mount(mountpoint, part.device, part.fstype, mount_identity(mountpoint)))
        return found


def is_removable_device(device: str) -> bool:
    """sysfs says the disk holding this partition is removable (USB sticks, SD cards)."""
    disk = _disk_dir(device)
    return bool(disk) and _read(os.path.join(disk, "removable")) == "1"


def describe_media(mount: Mount) -> Media:
    """Fill in label, vendor, model and serial from what Linux exposes; blanks when unknown.

    Every text is storable (no lone surrogates): the mountpoint in its readable form.
    """
    device = mount.device
    name = os.path.basename(os.path.realpath(device)) if device.startswith("/dev/") else ""
    disk = _disk_dir(device)
    udev = _udev_properties(name) if name else {}
    device_dir = os.path.join(disk, "device") if disk else ""
    return Media(
        mountpoint=readable(mount.mountpoint)[0],
        device=without_surrogates(device),
        fstype=without_surrogates(mount.fstype),
        label=udev.get("ID_FS_LABEL", "") or _label_for(name) or _blkid_label(device),
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
