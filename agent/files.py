"""Files that must survive a crash or a power cut whole: written beside the target, fsync'd, renamed
over it, and the folder synced so that the rename itself is durable.

The file beside the target is new (O_EXCL) and never a link (O_NOFOLLOW) under a random name, and
its mode is set on the descriptor (fchmod), not by name again: a name planted in the folder is not
followed, so what the agent writes (its token) cannot land in a file another user reads.
"""

from __future__ import annotations

import os
import secrets

TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def write_atomically(path: str, text: str, mode: int = 0o644) -> None:
    """Write next to the target, fsync, rename over it: a crash leaves the old file or the new one."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".miwei-{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, TEMP_FLAGS | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if not hasattr(os, "fchmod"):
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
