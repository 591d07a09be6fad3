"""Real file systems on images: loop-mounted by the kernel, or vfat through FUSE where the
kernel has no vfat driver (some CI kernels). Each kind says why it cannot run here."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

KINDS = ("vfat", "vfat-fuse", "ext4")


def _kernel_has(fs: str) -> bool:
    with open("/proc/filesystems", encoding="ascii") as f:
        return any(line.split()[-1] == fs for line in f if line.strip())


def unavailable(kind: str) -> str | None:
    """Why this kind of mount cannot be made here, or None when it can."""
    if os.geteuid() != 0:
        return "mounting needs root"
    mkfs = "mkfs.ext4" if kind == "ext4" else "mkfs.vfat"
    if not shutil.which(mkfs):
        return f"{mkfs} is missing (Debian package {'e2fsprogs' if kind == 'ext4' else 'dosfstools'})"
    if kind == "vfat-fuse":
        if not shutil.which("fusefat"):
            return "fusefat is missing (Debian package fusefat)"
        if not os.path.exists("/dev/fuse"):
            return "/dev/fuse is missing"
        return None
    fs = "ext4" if kind == "ext4" else "vfat"
    if not _kernel_has(fs):
        return f"this kernel has no {fs} driver (/proc/filesystems)"
    if not shutil.which("mount") or not os.path.exists("/dev/loop-control"):
        return "no loop devices"
    return None


def make_image(kind: str, image: Path, label: str = "MIWEI") -> None:
    subprocess.run(["truncate", "-s", "64M", str(image)], check=True)
    if kind == "ext4":
        subprocess.run(["mkfs.ext4", "-q", "-L", label, str(image)], check=True)
    else:
        subprocess.run(["mkfs.vfat", "-n", label, str(image)], check=True, capture_output=True)


def mount(kind: str, image: Path, mountpoint: Path) -> None:
    mountpoint.mkdir(parents=True, exist_ok=True)
    if kind == "vfat-fuse":
        subprocess.run(["fusefat", "-o", "rw+", str(image), str(mountpoint)], check=True, capture_output=True)
    else:
        subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True)


def unmount(mountpoint: Path) -> None:
    """Unmount; a process that has just exited may hold it for a moment, so retry, then detach."""
    for _ in range(20):
        if subprocess.run(["umount", str(mountpoint)], check=False, capture_output=True).returncode == 0:
            return
        time.sleep(0.25)
    subprocess.run(["umount", "-l", str(mountpoint)], check=False, capture_output=True)


@contextmanager
def scratch(kind: str, folder: Path) -> Iterator[Path]:
    """A fresh 64 MB file system of this kind mounted under `folder` for the block's time."""
    image, mountpoint = folder / f"{kind}.img", folder / f"{kind}-fs"
    make_image(kind, image)
    mount(kind, image, mountpoint)
    try:
        yield mountpoint
    finally:
        unmount(mountpoint)
