"""The walker of a user's FUSE mount, run as that user (`python -m agent.userwalk FD UID GID`).

The kernel lets only the mounting user into a FUSE mount made without allow_other or
allow_root, and checks the caller's real, effective and saved uid and gid (fs/fuse/dir.c,
fuse_permissible_uidgid): a root agent's stat, listing and open fail with EACCES, and setfsuid or
seteuid does not help. gvfsd-fuse (/run/user/UID/gvfs), jmtpfs and simple-mtpfs are mounted so by
default. This process becomes the mount's owner for good (uid, gid, no other groups, no_new_privs)
and answers the agent over a Unix socket: list a folder, walk a tree within a budget, stat a file,
open a file. An open file's descriptor is sent back (SCM_RIGHTS): reading it needs no permission
check, so the agent hashes and inspects it as it does every egress file; the stat taken here goes
with it, as the agent's own fstat of it is refused.

Messages are agent.content.worker's: a 4-byte length, then JSON; paths travel as base64 bytes.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import socket
import stat
import sys
import time

from agent.content.worker import HEADER, MAX_REQUEST_BYTES, drop_privileges, receive_exactly, send_message

STAT_FIELDS = 16  # os.stat_result's sequence: 10 plain fields, float times, then ns times


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def stat_fields(st: os.stat_result) -> list:
    """An os.stat_result as JSON can carry it (agent.usermounts rebuilds it)."""
    return [st[i] for i in range(10)] + [
        st.st_atime,
        st.st_mtime,
        st.st_ctime,
        st.st_atime_ns,
        st.st_mtime_ns,
        st.st_ctime_ns,
    ]


def list_dirs(path: bytes) -> list[bytes]:
    """The names of the folders directly in path (gvfs's mounts under /run/user/UID/gvfs)."""
    with os.scandir(path) as entries:
        return sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))


def walk(root: bytes, after: tuple[bytes, ...] | None, max_entries: int, max_s: float) -> dict:
    """Files under root in a fixed (sorted, depth-first) order, starting past `after` (the
    previous walk's last entry looked at, as path components) and stopping at the budget; the
    answer's cursor is the last entry this walk looked at (None: it reached the end), where the
    next walk goes on. Nothing is followed:
    folders are opened relative to their parent's descriptor, without following links."""
    deadline = time.monotonic() + max_s
    files: list = []
    errors: list = []
    state: dict = {"entries": 0, "last": None, "stopped": False}

    def visit(dir_fd: int, prefix: tuple[bytes, ...]) -> bool:
        """False when the budget ran out (state's `last` then says where)."""
        try:
            names = sorted(os.listdir(dir_fd))
        except OSError as exc:
            errors.append([b64(b"/".join(prefix)), exc.strerror or type(exc).__name__])
            return True
        for name in (os.fsencode(n) for n in names):
            key = prefix + (name,)
            if after is not None and key < after[: len(key)]:
                continue  # walked last time
            if state["entries"] and (
                state["entries"] >= max_entries or time.monotonic() >= deadline
            ):  # one at least: progress
                state["stopped"] = True
                return False
            state["entries"] += 1
            state["last"] = key
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError as exc:
                errors.append([b64(b"/".join(key)), exc.strerror or type(exc).__name__])
                continue
            if stat.S_ISDIR(st.st_mode):
                try:
                    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
                except OSError as exc:
                    errors.append([b64(b"/".join(key)), exc.strerror or type(exc).__name__])
                    continue
                try:
                    if not visit(fd, key):
                        return False
                finally:
                    os.close(fd)
            elif stat.S_ISREG(st.st_mode) and (after is None or key > after):
                files.append([b64(b"/".join(key)), st.st_size, st.st_mtime_ns])
        return True

    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        visit(top, ())
    finally:
        os.close(top)
    cursor = state["last"] if state["stopped"] else None
    return {
        "files": files,
        "errors": errors,
        "entries": state["entries"],
        "cursor": None if cursor is None else [b64(c) for c in cursor],
    }


def answer(sock: socket.socket, request: dict) -> None:
    op = request.get("op")
    try:
        if op == "list":
            send_message(sock, {"names": [b64(n) for n in list_dirs(unb64(request["path"]))]})
        elif op == "walk":
            after = tuple(unb64(c) for c in request["after"]) if request.get("after") else None
            send_message(
                sock, walk(unb64(request["root"]), after, int(request["max_entries"]), float(request["max_s"]))
            )
        elif op == "stat":
            st = os.stat(unb64(request["path"]), follow_symlinks=False)
            send_message(sock, {"st": stat_fields(st)})
        elif op == "open":
            fd = os.open(unb64(request["path"]), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise OSError(errno.EINVAL, "not a regular file")
                send_message(sock, {"st": stat_fields(st)}, fd)
            finally:
                os.close(fd)
        else:
            send_message(sock, {"error": f"unknown op {op!r}", "errno": errno.EINVAL})
    except OSError as exc:
        send_message(sock, {"error": exc.strerror or type(exc).__name__, "errno": exc.errno or 0})


def _serve(sock: socket.socket) -> None:
    while True:
        try:
            head = sock.recv(HEADER.size)
        except ConnectionResetError:
            return
        if not head:
            return
        if len(head) < HEADER.size:
            head += receive_exactly(sock, HEADER.size - len(head))
        (length,) = HEADER.unpack(head)
        if length > MAX_REQUEST_BYTES:
            raise SystemExit("user-mount walker: bad request")
        answer(sock, json.loads(receive_exactly(sock, length)))


def main(argv: list[str]) -> None:
    fd, uid, gid = (int(a) for a in argv[1:4])
    drop_privileges(uid, gid)
    with socket.socket(fileno=fd) as sock:
        _serve(sock)


if __name__ == "__main__":
    main(sys.argv)
