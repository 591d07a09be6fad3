"""Files that must survive a crash or a power cut whole: written beside the target, fsync'd, renamed
over it, and the folder synced so that the rename itself is durable."""

from __future__ import annotations

import os
import tempfile


def write_atomically(path: str, text: str, mode: int = 0o644) -> None:
    """Write next to the target, fsync, rename over it: a crash leaves the old file or the new one."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".miwei-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    sync_folder(folder)  # the rename itself survives a power cut once the folder is synced


def sync_folder(folder: str) -> None:
    """fsync a folder, so that a rename or an unlink in it survives a power cut; best effort (some
    file systems cannot open or sync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
