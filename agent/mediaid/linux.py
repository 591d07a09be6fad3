"""Media identity on Linux: udev's database first, sysfs where udev is not running.

udev (/run/udev/data/b<major>:<minor>) has the names as the device reports them (ID_VENDOR_ENC,
ID_MODEL_ENC, with \\xNN escapes), the USB ids, the short serial, the bus and what libblkid found
in the file system: its type, volume id (ID_FS_UUID: the FAT/exFAT volume serial, the NTFS serial,
an ext4 UUID) and label. Containers and minimal PCs have no udev: sysfs then gives the disk's
removable flag, the SCSI vendor and model, and, walking up from the disk to its USB device,
idVendor, idProduct, serial, manufacturer and product; the file system facts then come from
`blkid -p -o udev DEVICE` (the same libblkid probe, the same key names), and the label from
/dev/disk/by-label first.

FUSE hides the file system: exfat-fuse and ntfs-3g mount as `fuseblk`, so the type reported is
the one libblkid reads from the device (exfat, ntfs). The volume's size comes from sysfs (512-byte
sectors): with the volume id it tells apart sticks that have no hardware serial (rules.events.Media).
"""

from __future__ import annotations

import os
import re
import shutil

from agent.mediaid import CommandRunner, MediaIdentity, is_network, run_command

SYS_BLOCK = "/sys/class/block"
UDEV_DATA = "/run/udev/data"
BY_LABEL = "/dev/disk/by-label"
_ESCAPED = re.compile(rb"\\x([0-9a-fA-F]{2})")
FUSE_BLOCK_TYPES = frozenset({"fuseblk", "fuse"})  # a FUSE driver of a block device (exfat-fuse, ntfs-3g)
_BUSES = {"usb": "usb", "ata": "ata", "scsi": "scsi", "nvme": "nvme", "mmc": "mmc", "virtio": "virtio", "ieee1394": "firewire"}


class LinuxReader:
    def __init__(
        self,
        sys_block: str = SYS_BLOCK,
        udev_data: str = UDEV_DATA,
        by_label: str = BY_LABEL,
        run: CommandRunner = run_command,
        has_blkid: bool | None = None,
    ):
        self.sys_block, self.udev_data, self.by_label, self.run = sys_block, udev_data, by_label, run
        self.has_blkid = bool(shutil.which("blkid")) if has_blkid is None else has_blkid

    def identify(self, mountpoint: str, device: str, fstype: str, opts: str = "") -> MediaIdentity:
        if is_network(fstype):
            return MediaIdentity(mountpoint, device, fstype, bus="network", removable=False)
        name = os.path.basename(os.path.realpath(device)) if device.startswith("/dev/") else ""
        node = self._node_dir(name)
        disk = self.disk_dir(node)
        udev = {**self._udev(disk), **self._udev(node)}  # the partition's own values win
        probed = {} if udev.get("ID_FS_TYPE") else self._blkid(device)  # udev has it when it probed
        usb = _usb_device_dir(disk)
        scsi = os.path.join(disk, "device") if disk else ""
        real_type = udev.get("ID_FS_TYPE") or probed.get("ID_FS_TYPE", "")
        sectors = _read(node, "size")
        return MediaIdentity(
            mountpoint=mountpoint,
            device=device,
            fstype=real_type if fstype in FUSE_BLOCK_TYPES and real_type else fstype,
            label=_enc(udev, "ID_FS_LABEL") or self._label_for(name) or _enc(probed, "ID_FS_LABEL"),
            vendor=_enc(udev, "ID_VENDOR") or _read(scsi, "vendor") or _read(usb, "manufacturer"),
            model=_enc(udev, "ID_MODEL") or _read(scsi, "model") or _read(scsi, "name") or _read(usb, "product"),
            serial=udev.get("ID_SERIAL_SHORT", "") or _read(usb, "serial") or _read(scsi, "serial"),
            vendor_id=udev.get("ID_VENDOR_ID", "") or _read(usb, "idVendor"),
            product_id=udev.get("ID_MODEL_ID", "") or _read(usb, "idProduct"),
            bus=_BUSES.get(udev.get("ID_BUS", ""), "") or ("usb" if usb else _subsystem(scsi)),
            removable={"1": True, "0": False}.get(_read(disk, "removable")),
            volume_id=_enc(udev, "ID_FS_UUID") or _enc(probed, "ID_FS_UUID"),
            size_bytes=_size_bytes(sectors),
        )

    def is_removable(self, device: str) -> bool:
        """sysfs says the disk holding this partition is removable (USB sticks, SD cards)."""
        name = os.path.basename(os.path.realpath(device)) if device.startswith("/dev/") else ""
        return _read(self.disk_dir(self._node_dir(name)), "removable") == "1"

    def _node_dir(self, name: str) -> str:
        if not name:
            return ""
        path = os.path.realpath(os.path.join(self.sys_block, name))
        return path if os.path.isdir(path) else ""

    @staticmethod
    def disk_dir(node: str) -> str:
        """The whole disk's sysfs folder: a partition's parent."""
        if node and os.path.exists(os.path.join(node, "partition")):
            return os.path.dirname(node)
        return node

    def _udev(self, sys_dir: str) -> dict[str, str]:
        dev = _read(sys_dir, "dev")
        if not dev:
            return {}
        try:
            with open(os.path.join(self.udev_data, f"b{dev}"), encoding="utf-8", errors="replace") as f:
                return parse_udev_data(f.read())
        except OSError:
            return {}

    def _label_for(self, name: str) -> str:
        """The file system label, from /dev/disk/by-label (udev escapes spaces as \\x20)."""
        if not name:
            return ""
        try:
            for entry in os.listdir(self.by_label):
                if os.path.basename(os.path.realpath(os.path.join(self.by_label, entry))) == name:
                    return unescape(entry)
        except OSError:
            pass
        return ""

    def _blkid(self, device: str) -> dict[str, str]:
        """libblkid's low-level probe of the device itself (-p: no cache, which could hold another
        stick's answer for the same device name), as udev would record it: ID_FS_TYPE, ID_FS_UUID,
        ID_FS_LABEL(_ENC). Empty where blkid is missing or finds no file system."""
        if not device.startswith("/dev/") or not self.has_blkid:
            return {}
        code, out = self.run(["blkid", "-p", "-o", "udev", device])
        if code != 0:
            return {}
        return dict(line.partition("=")[::2] for line in out.splitlines() if line.startswith("ID_") and "=" in line)


def parse_udev_data(text: str) -> dict[str, str]:
    """The E:KEY=VALUE lines of a udev database file; other lines (S:, I:, G:, ...) are skipped."""
    props = {}
    for line in text.splitlines():
        if line.startswith("E:") and "=" in line:
            key, _, value = line[2:].partition("=")
            props[key] = value
    return props


def unescape(text: str) -> str:
    """udev's \\xNN escapes back to the text (UTF-8 names too)."""
    raw = _ESCAPED.sub(lambda m: bytes([int(m.group(1), 16)]), os.fsencode(text))
    return raw.decode("utf-8", "replace")


def _enc(udev: dict[str, str], key: str) -> str:
    """ID_X_ENC keeps spaces and non-ASCII (ID_X has them as '_'): prefer it."""
    return unescape(udev[f"{key}_ENC"]).strip() if udev.get(f"{key}_ENC") else udev.get(key, "")


def _usb_device_dir(disk: str) -> str:
    """The USB device above a disk (the folder with idVendor), or ''."""
    if not disk:
        return ""
    path = os.path.realpath(os.path.join(disk, "device"))
    for _ in range(12):  # host, target, lun, interface, device: never this deep
        if os.path.exists(os.path.join(path, "idVendor")):
            return path
        parent = os.path.dirname(path)
        if parent == path or os.path.basename(parent) == "devices":
            break
        path = parent
    return ""


def _subsystem(device_dir: str) -> str:
    """scsi, nvme, mmc, virtio: the kind of bus the disk's device sits on."""
    if not device_dir:
        return ""
    link = os.path.join(device_dir, "subsystem")
    return _BUSES.get(os.path.basename(os.path.realpath(link)), "") if os.path.islink(link) else ""


def _read(folder: str, name: str) -> str:
    if not folder:
        return ""
    try:
        with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""


def _size_bytes(sectors: str) -> int | None:
    """sysfs's size (512-byte sectors) in bytes; None when unknown or past what an event carries
    (2**63 - 1: a device answering a crafted capacity would have every event naming it refused)."""
    if not sectors.isdigit():
        return None
    size = int(sectors) * 512
    return size if size < 2**63 else None
