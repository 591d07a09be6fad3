"""`python -m bench.rawinotify DIR`: print each file closed after writing (or moved in) under DIR.

The stand-in for `inotifywait -m -r -e close_write,moved_to --format %w%f` when inotify-tools is
not installed: plain inotify through ctypes, recursive, one path per line, "Watches established."
on stderr once every folder is watched, as inotifywait says it. It is a floor for what any
watcher pays, so it does nothing but read, decode and print.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import sys

IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE, IN_ISDIR, IN_Q_OVERFLOW = 0x8, 0x80, 0x100, 0x40000000, 0x4000
HEADER = struct.Struct("iIII")  # wd, mask, cookie, len


class Inotify:
    def __init__(self) -> None:
        self.libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.folders: dict[int, bytes] = {}

    def watch_tree(self, root: bytes) -> None:
        mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
        for folder, _dirs, _files in os.walk(root):
            wd = self.libc.inotify_add_watch(self.fd, folder, mask)
            if wd >= 0:
                self.folders[wd] = folder

    def run(self, out) -> None:
        while True:
            data = os.read(self.fd, 1 << 16)
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, length = HEADER.unpack_from(data, offset)
                name = data[offset + HEADER.size : offset + HEADER.size + length].rstrip(b"\0")
                offset += HEADER.size + length
                if mask & IN_Q_OVERFLOW:
                    out.write(b"OVERFLOW\n")
                    continue
                path = os.path.join(self.folders.get(wd, b"?"), name)
                if mask & IN_ISDIR:
                    if mask & (IN_CREATE | IN_MOVED_TO):
                        self.watch_tree(path)
                elif mask & (IN_CLOSE_WRITE | IN_MOVED_TO):
                    out.write(path + b"\n")
            out.flush()


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        print("usage: python -m bench.rawinotify DIR", file=sys.stderr)
        return 2
    watcher = Inotify()
    watcher.watch_tree(os.fsencode(argv[0]))
    print("Watches established.", file=sys.stderr, flush=True)
    try:
        watcher.run(sys.stdout.buffer)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
