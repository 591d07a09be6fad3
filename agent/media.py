"""Removable media: which mounts are egress places, and what device each one is.

Polls psutil's mount list (cheap: one read of /proc/self/mounts) every `poll_s`, so a stick is
picked up within about that long of mounting. A mount is known by its mountpoint, device and
mount identity (agent.mountid), so a stick unmounted and mounted again at the same place between
two polls is seen as an unmount and a mount. What device it is (vendor, model, serial, USB ids,
bus, removable flag, file system, label) comes from agent.mediaid, read the way this OS allows;
fields that cannot be read stay empty. Mountpoints are bytes to Linux: the Media in events
carries them readable (agent.paths), the raw path stays for watching.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace

import psutil
from loguru import logger

from agent.config import EgressConfig
from agent.mediaid import MediaIdentity, MediaReader, reader_for
from agent.mountid import mount_identity
from agent.paths import is_under
from agent.poller import Poller
from rules.events import Media


@dataclass(frozen=True)
class Mount:
    """One mounted file system that is an egress place."""

    mountpoint: str  # as the kernel names it: bytes that are not UTF-8 as surrogate escapes
    device: str
    fstype: str
    identity: tuple[int, ...] = ()  # agent.mountid.mount_identity
    media: Media | None = None  # for events (every text readable); filled in once it is new
    opts: str = ""  # psutil's mount options; on Windows they say removable, fixed or remote

    @property
    def key(self) -> tuple:
        return (self.mountpoint, self.device, self.identity)


class MediaMonitor(Poller):
    poll_name = "media"

    def __init__(
        self,
        config: EgressConfig,
        on_mount: Callable[[Mount], None],
        on_unmount: Callable[[Mount], None],
        excluded: tuple[str, ...] = (),
        skipped_fstypes: tuple[str, ...] = (),
        list_mounts: Callable[[], list[Mount]] | None = None,
        reader: MediaReader | None = None,
        platform: str = sys.platform,
    ):
        self.config = config
        self.on_mount, self.on_unmount = on_mount, on_unmount
        self.excluded = excluded  # classified folders and the state dir are never egress
        self.skipped_fstypes = skipped_fstypes  # walked as their owner instead (agent/usermounts.py)
        self.list_mounts = list_mounts or self._removable_mounts
        self.platform = platform
        self.reader = reader or reader_for(platform)
        self._identities: dict[tuple, MediaIdentity] = {}  # by Mount.key, while the mount is listed
        self.mounted: dict[tuple, Mount] = {}  # only mounts whose on_mount succeeded
        self._failing: set[tuple] = set()  # mounts whose on_mount failed (logged once, retried)
        self._init_poller()

    def poll_interval_s(self) -> float:
        return self.config.poll_s

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
                mount = replace(mount, media=self.identify(mount).to_media())
            if key not in self._failing:
                logger.info(
                    "media mounted mountpoint={!r} device={!r} fstype={!r} label={!r}",
                    mount.mountpoint,
                    mount.device,
                    mount.fstype,
                    mount.media.label,
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

    def identify(self, mount: Mount) -> MediaIdentity:
        """What device this is; asked of the OS once per mount while it is listed (by Mount.key:
        another stick at the same place, even under the same device name, is asked afresh)."""
        if mount.key not in self._identities:
            self._identities[mount.key] = self.reader.identify(mount.mountpoint, mount.device, mount.fstype, mount.opts)
        return self._identities[mount.key]

    def _removable_mounts(self) -> list[Mount]:
        if not self.config.removable:
            return []
        found = []
        listed = set()
        # all=True: FUSE mounts (phones over MTP, ntfs-3g, fusefat) are egress places too
        for part in psutil.disk_partitions(all=True):
            mountpoint = part.mountpoint
            if part.fstype in self.skipped_fstypes:  # root can neither watch nor read them
                continue
            if any(is_under(mountpoint, x) or is_under(x, mountpoint) for x in self.excluded):
                continue
            mount = Mount(mountpoint, part.device, part.fstype, mount_identity(mountpoint), opts=part.opts)
            listed.add(mount.key)
            under_root = any(is_under(mountpoint, root) and mountpoint != root for root in self.config.mount_roots)
            if under_root or self._is_removable(mount):
                found.append(mount)
        self._identities = {k: v for k, v in self._identities.items() if k in listed}
        return found

    def _is_removable(self, mount: Mount) -> bool:
        """Linux: sysfs's removable flag (cheap, every poll). Windows: a drive Windows calls
        removable, or a USB disk (USB hard disks are "fixed" to it). macOS: an external or
        removable disk. The last two ask the OS once per new drive."""
        if self.platform.startswith("linux"):
            return is_removable_device(mount.device)
        if "removable" in mount.opts.split(","):
            return True
        if self.platform == "win32" and "fixed" in mount.opts.split(","):
            return self.identify(mount).bus == "usb"
        if self.platform == "darwin" and mount.device.startswith("/dev/disk"):
            return bool(self.identify(mount).removable) and mount.mountpoint.startswith("/Volumes/")
        return False


def is_removable_device(device: str) -> bool:
    """sysfs says the disk holding this partition is removable (USB sticks, SD cards)."""
    from agent.mediaid.linux import LinuxReader

    return LinuxReader(has_blkid=False).is_removable(device)


def describe_media(mount: Mount, reader: MediaReader | None = None) -> Media:
    """The identity of the mount's device as events carry it: every text storable."""
    reader = reader or reader_for()
    return reader.identify(mount.mountpoint, mount.device, mount.fstype, mount.opts).to_media()
