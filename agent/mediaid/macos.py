"""Media identity on macOS: `diskutil info -plist` for the volume, system_profiler for USB ids.

diskutil says a volume's file system, name, bus protocol (USB, SATA, PCI-Express, Secure
Digital, Thunderbolt), whether the disk is internal, removable or ejectable, and the media name.
The USB vendor and product ids and the device's serial come from `system_profiler SPUSBDataType
-json`, found by the BSD name of the whole disk (disk4 for /dev/disk4s1). A network volume is not
a disk: diskutil does not know it, and psutil's device (//user@server/share) is its identity.
"""

from __future__ import annotations

import json
import plistlib
from typing import Any

from agent.mediaid import CommandRunner, MediaIdentity, is_network, run_command

_BUSES = {
    "usb": "usb",
    "sata": "ata",
    "ata": "ata",
    "pci-express": "nvme",
    "pci": "nvme",
    "nvme": "nvme",
    "secure digital": "sd",
    "sd": "sd",
    "thunderbolt": "thunderbolt",
    "firewire": "firewire",
}


class MacReader:
    def __init__(self, run: CommandRunner = run_command):
        self.run = run

    def identify(self, mountpoint: str, device: str, fstype: str, opts: str = "") -> MediaIdentity:
        if is_network(fstype) or not device.startswith("/dev/disk"):
            return identify_from(mountpoint, device, fstype, {}, {})
        code, out = self.run(["diskutil", "info", "-plist", device])
        info = parse_diskutil(out) if code == 0 else {}
        usb: dict = {}
        if info.get("BusProtocol", "").lower() == "usb":  # only then is system_profiler worth its second
            code, out = self.run(["system_profiler", "SPUSBDataType", "-json"])
            usb = parse_system_profiler(out) if code == 0 else {}
        return identify_from(mountpoint, device, fstype, info, usb)


def parse_diskutil(text: str) -> dict[str, Any]:
    try:
        data = plistlib.loads(text.encode("utf-8"))
    except Exception:  # plistlib raises several kinds on garbage (InvalidFileException, ExpatError, ...)
        return {}
    return data if isinstance(data, dict) else {}


def parse_system_profiler(text: str) -> dict[str, dict]:
    """USB devices by the BSD name of each disk they carry: {"disk4": {vendor_id, product_id, ...}}."""
    try:
        data = json.loads(text or "null")
    except ValueError:
        return {}
    found: dict[str, dict] = {}

    def walk(items: Any) -> None:
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, dict):
                continue
            for medium in item.get("Media") or ():
                if isinstance(medium, dict) and isinstance(medium.get("bsd_name"), str):
                    found[medium["bsd_name"]] = item
            walk(item.get("_items"))

    walk(data.get("SPUSBDataType") if isinstance(data, dict) else None)
    return found


def identify_from(mountpoint: str, device: str, fstype: str, info: dict, usb_by_disk: dict[str, dict]) -> MediaIdentity:
    if is_network(fstype):
        return MediaIdentity(mountpoint, device, fstype, bus="network", removable=False)
    disk = _text(info.get("ParentWholeDisk"))
    usb = usb_by_disk.get(disk, {})
    protocol = _text(info.get("BusProtocol")).lower()
    media_name = _text(info.get("MediaName"))
    vendor = _text(usb.get("manufacturer"))
    model = _text(usb.get("_name")) or media_name
    if vendor and model.lower().startswith(vendor.lower() + " "):
        model = model[len(vendor) :].strip()
    removable = info.get("RemovableMediaOrExternalDevice", info.get("Removable"))
    return MediaIdentity(
        mountpoint=mountpoint,
        device=device,
        fstype=fstype or _text(info.get("FilesystemType")),
        label=_text(info.get("VolumeName")),
        vendor=vendor,
        model=model,
        serial=_text(usb.get("serial_num")),
        vendor_id=_text(usb.get("vendor_id")),  # "0x0781  (SanDisk Corporation)": MediaIdentity.to_media keeps the hex
        product_id=_text(usb.get("product_id")),
        bus=_BUSES.get(protocol, protocol.replace(" ", "-")),
        removable=removable if isinstance(removable, bool) else None,
        volume_id=_text(info.get("VolumeUUID")),
        size_bytes=size if isinstance(size := info.get("Size"), int) and not isinstance(size, bool) and size >= 0 else None,
    )


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
