"""Media identity on Windows: psutil's drive letters, and one PowerShell CIM query for the rest.

psutil.disk_partitions says a drive letter's file system and whether Windows calls it removable,
fixed or remote. The disk behind a letter (model, serial, interface, PnP id) comes from
Win32_DiskDrive -> Win32_DiskPartition -> Win32_LogicalDisk; the USB ids from the USB device
whose instance id ends in the same serial (USB\\VID_0781&PID_5567\\<serial>). One PowerShell run
answers all of it as JSON (no WMI bindings, no pywin32); it is asked only when a drive appears.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from agent.mediaid import CommandRunner, MediaIdentity, is_network, run_command

QUERY = r"""
$ErrorActionPreference = 'SilentlyContinue'
$drives = foreach ($disk in Get-CimInstance Win32_DiskDrive) {
  $letters = foreach ($part in Get-CimAssociatedInstance -InputObject $disk -ResultClassName Win32_DiskPartition) {
    (Get-CimAssociatedInstance -InputObject $part -ResultClassName Win32_LogicalDisk).DeviceID
  }
  [pscustomobject]@{ Model = $disk.Model; SerialNumber = $disk.SerialNumber; PNPDeviceID = $disk.PNPDeviceID;
    InterfaceType = $disk.InterfaceType; MediaType = $disk.MediaType; Letters = @($letters) }
}
$logical = Get-CimInstance Win32_LogicalDisk | Select-Object DeviceID, DriveType, FileSystem, VolumeName, VolumeSerialNumber, Size, ProviderName
$usb = Get-CimInstance Win32_PnPEntity -Filter "PNPDeviceID LIKE 'USB\\VID[_]%'" | Select-Object PNPDeviceID, Manufacturer, Name
[pscustomobject]@{ drives = @($drives); logical = @($logical); usb = @($usb) } | ConvertTo-Json -Depth 4 -Compress
"""
COMMAND = ("powershell.exe", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-Command", QUERY)
DRIVE_TYPES = {2: "removable", 3: "fixed", 4: "network", 5: "cdrom", 6: "ramdisk"}
_INTERFACES = {"usb": "usb", "scsi": "scsi", "ide": "ata", "1394": "firewire", "sd": "sd", "nvme": "nvme"}
_STOR = re.compile(r"^(?:USBSTOR|SCSI)\\[^&\\]*&VEN_([^&\\]*)&PROD_([^&\\]*)(?:&REV_[^\\]*)?\\([^\\]*)$", re.IGNORECASE)
_USB = re.compile(r"^USB\\VID_([0-9A-F]{4})&PID_([0-9A-F]{4})(?:&[^\\]*)?\\([^\\]*)$", re.IGNORECASE)


class WindowsReader:
    def __init__(self, run: CommandRunner = run_command, reuse_s: float = 5.0, clock=time.monotonic):
        self.run, self.reuse_s, self.clock = run, reuse_s, clock
        self._last: tuple[float, dict] | None = None

    def identify(self, mountpoint: str, device: str, fstype: str, opts: str = "") -> MediaIdentity:
        return identify_from(mountpoint, device, fstype, opts, self._query())

    def _query(self) -> dict:
        """One PowerShell run answers for every drive: drives that appear together share it."""
        now = self.clock()
        if self._last is None or now - self._last[0] > self.reuse_s:
            code, out = self.run(COMMAND)
            self._last = (now, parse_query(out) if code == 0 else {})
        return self._last[1]


def parse_query(text: str) -> dict[str, Any]:
    """The JSON the query prints; {} for anything else (PowerShell missing, an error, garbage)."""
    try:
        data = json.loads(text.strip().lstrip("\ufeff") or "null")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {key: _as_list(data.get(key)) for key in ("drives", "logical", "usb")}


def _as_list(value: Any) -> list[dict]:
    """ConvertTo-Json writes a one-element array as the element itself: take both."""
    items = value if isinstance(value, list) else [value] if value else []
    return [item for item in items if isinstance(item, dict)]


def identify_from(mountpoint: str, device: str, fstype: str, opts: str, found: dict[str, Any]) -> MediaIdentity:
    letter = (device or mountpoint)[:2].upper()  # "E:\\" -> "E:"
    logical = next((d for d in found.get("logical", ()) if str(d.get("DeviceID", "")).upper() == letter), {})
    flags = set(opts.split(","))
    remote = "remote" in flags or logical.get("DriveType") == 4 or is_network(fstype)
    if remote:
        return MediaIdentity(
            mountpoint, _text(logical.get("ProviderName")) or device, fstype or _text(logical.get("FileSystem")),
            label=_text(logical.get("VolumeName")), bus="network", removable=False,
        )
    drive = next((d for d in found.get("drives", ()) if letter in [str(x).upper() for x in _as_strings(d.get("Letters"))]), {})
    stor = _STOR.match(_text(drive.get("PNPDeviceID")))
    instance = stor.group(3) if stor else ""
    usb = _usb_for(instance, found.get("usb", ())) if instance else None
    vendor = stor.group(1).replace("_", " ").strip() if stor else ""
    model = _text(drive.get("Model"))
    model = model[: -len(" USB Device")] if model.endswith(" USB Device") else model
    if vendor and model.lower().startswith(vendor.lower()):
        # "SanDisk Cruzer Blade" beside VEN_SANDISK: the model has the vendor as it writes itself
        vendor, model = model[: len(vendor)], model[len(vendor) :].strip()
    return MediaIdentity(
        mountpoint=mountpoint,
        device=device,
        fstype=fstype or _text(logical.get("FileSystem")),
        label=_text(logical.get("VolumeName")),
        vendor=vendor or _text(usb and usb.get("Manufacturer")),
        model=model or (stor.group(2).replace("_", " ").strip() if stor else ""),
        # the USB serial (iSerialNumber) is what the allow-list needs; the disk's SerialNumber is
        # often the same, else a firmware string
        serial=_serial(usb, instance) or _text(drive.get("SerialNumber")),
        vendor_id=usb["vid"] if usb else "",
        product_id=usb["pid"] if usb else "",
        bus=_INTERFACES.get(_text(drive.get("InterfaceType")).lower(), ""),
        removable=_removable(flags, logical),
        volume_id=_text(logical.get("VolumeSerialNumber")),  # FAT/exFAT/NTFS volume serial, 8 hex digits
        size_bytes=_size(logical.get("Size")),
    )


def _usb_for(instance: str, usb_devices: list[dict]) -> dict | None:
    """The USB device whose instance id is the storage device's serial (without '&0', the LUN)."""
    serial = instance.rsplit("&", 1)[0] if "&" in instance else instance
    for entry in usb_devices:
        found = _USB.match(_text(entry.get("PNPDeviceID")))
        if found and found.group(3).upper() == serial.upper():
            return {**entry, "vid": found.group(1).lower(), "pid": found.group(2).lower(), "serial": found.group(3)}
    return None


def _serial(usb: dict | None, instance: str) -> str:
    if usb:
        return usb["serial"]
    # Windows makes up an instance id with '&' in its second character for a device without a
    # serial (7&2d9a3b1c&0&...): that is not the device's serial
    serial = instance.rsplit("&", 1)[0] if "&" in instance else instance
    return "" if len(serial) > 1 and serial[1] == "&" else serial


def _removable(flags: set[str], logical: dict) -> bool | None:
    if "removable" in flags or logical.get("DriveType") == 2:
        return True
    if "fixed" in flags or logical.get("DriveType") == 3:
        return False
    return None


def _as_strings(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value] if value else []
    return [item for item in items if isinstance(item, str)]


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _size(value: Any) -> int | None:
    """Win32_LogicalDisk.Size (uint64; CIM JSON gives a number, sometimes a string)."""
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    return int(text) if text.isdigit() else None
