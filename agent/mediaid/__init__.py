"""What device a mounted volume is: one identity for every OS, read from what each OS reports.

A `MediaIdentity` is filled in by the reader of the OS the agent runs on: Linux from sysfs and
udev's database (`linux.py`), Windows from psutil and one PowerShell CIM query (`windows.py`),
macOS from `diskutil info -plist` and `system_profiler SPUSBDataType -json` (`macos.py`). Every
reader is given its sources (folders, a command runner), so it is tested on recorded outputs.
Nothing here raises on odd input: a field that cannot be read stays empty (None for `removable`),
and the identity is as complete as the OS let it be.

Conventions shared with the collector (rules.events.Media): `vendor_id` and `product_id` are the
USB ids as 4 lower-case hex digits; `bus` is usb, ata, scsi, nvme, mmc, sd, virtio, firewire,
thunderbolt or network (a network file system, never "removable media"); `removable` is what the
OS says of the disk, and a USB hard disk is often not "removable" to it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.paths import readable, without_surrogates
from rules.events import Media

# (argv) -> (exit code, stdout); the readers never see an exception from running a command
CommandRunner = Callable[[Sequence[str]], tuple[int, str]]
NETWORK_FSTYPES = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "afpfs", "webdav", "fuse.sshfs", "sshfs", "9p", "ncpfs", "davfs", "fuse.davfs"}
)
_HEX_ID = re.compile(r"(?:0x)?([0-9a-fA-F]{1,4})\b")


@dataclass(frozen=True)
class MediaIdentity:
    mountpoint: str  # as the OS names it (on Linux, bytes that are not UTF-8 as surrogate escapes)
    device: str = ""
    fstype: str = ""
    label: str = ""
    vendor: str = ""
    model: str = ""
    serial: str = ""
    vendor_id: str = ""
    product_id: str = ""
    bus: str = ""
    removable: bool | None = None
    volume_id: str = ""  # the file system's id: FAT/exFAT volume serial, NTFS serial, UUID
    size_bytes: int | None = None  # the volume's size, where the OS says

    def to_media(self) -> Media:
        """The identity as events carry it: every text storable (no lone surrogates, no padding)."""
        return Media(
            mountpoint=readable(self.mountpoint)[0],
            device=without_surrogates(self.device),
            fstype=without_surrogates(self.fstype),
            label=clean(self.label),
            serial=clean(self.serial),
            vendor=clean(self.vendor),
            model=clean(self.model),
            vendor_id=usb_id(self.vendor_id),
            product_id=usb_id(self.product_id),
            bus=clean(self.bus).lower(),
            removable=self.removable,
            volume_id=clean(self.volume_id),
            size_bytes=self.size_bytes,
        )


class MediaReader(Protocol):
    def identify(self, mountpoint: str, device: str, fstype: str, opts: str = "") -> MediaIdentity: ...


def clean(text: str) -> str:
    """Printable text: control characters dropped (a device cannot forge a log line or a CSV
    row), padding and NULs of fixed-width firmware fields stripped."""
    return "".join(ch for ch in without_surrogates(text or "") if ch.isprintable()).strip()


def usb_id(text: str) -> str:
    """'0x0781', '0781', '0x781  (SanDisk Corporation)' -> '0781'; anything else -> ''."""
    found = _HEX_ID.match((text or "").strip())
    return found.group(1).lower().zfill(4) if found else ""


def is_network(fstype: str) -> bool:
    return fstype.lower() in NETWORK_FSTYPES


def run_command(argv: Sequence[str], timeout_s: float = 15.0) -> tuple[int, str]:
    """The default runner: no shell, bounded in time; a command that cannot run is exit 127."""
    try:
        done = subprocess.run(list(argv), capture_output=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 127, ""
    return done.returncode, done.stdout.decode("utf-8", "replace")


def reader_for(platform: str = sys.platform, run: CommandRunner = run_command) -> MediaReader:
    """The reader of this OS; an OS without one gets what psutil said and nothing more."""
    if platform.startswith("linux"):
        from agent.mediaid.linux import LinuxReader

        return LinuxReader(run=run)
    if platform == "win32":
        from agent.mediaid.windows import WindowsReader

        return WindowsReader(run=run)
    if platform == "darwin":
        from agent.mediaid.macos import MacReader

        return MacReader(run=run)
    return BasicReader()


class BasicReader:
    def identify(self, mountpoint: str, device: str, fstype: str, opts: str = "") -> MediaIdentity:
        return MediaIdentity(mountpoint, device, fstype, bus="network" if is_network(fstype) else "")
