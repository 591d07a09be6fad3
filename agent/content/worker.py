"""The inspection worker: a separate, unprivileged process that parses hostile files.

Content inspection runs parsers (PDF, OOXML, archives, text decoders) over files an employee
controls. A parser bug must not hang the agent nor be root on the PC, so the agent hands each file
to a worker process as an already-open descriptor (SCM_RIGHTS over a Unix socket): the worker
opens nothing by path, drops to an unprivileged uid with no capabilities and no way to regain them
before it reads a byte, and answers in JSON (never pickle: the agent must not run what a
compromised worker sends). The agent enforces a deadline and kills a worker that overruns
(agent/inspector.py).

Wire format, both directions: a 4-byte big-endian length, then that many bytes of JSON. A request
carries one descriptor in the same sendmsg as its length.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import select
import signal
import socket
import struct
import sys
import time
from typing import BinaryIO

from rules.events import Detection

HEADER = struct.Struct(">I")
MAX_REQUEST_BYTES = 1 << 20
MAX_ANSWER_BYTES = 64 << 20  # 10,000 members and their fingerprints fit many times over
MEMORY_LIMIT_BYTES = 2 << 30  # a decompression bomb that slips past the caps dies here, not the PC
PR_SET_NO_NEW_PRIVS = 38


def send_message(sock: socket.socket, payload: dict, fd: int | None = None) -> None:
    data = json.dumps(payload, separators=(",", ":")).encode()
    message = HEADER.pack(len(data)) + data
    if fd is None:
        sock.sendall(message)
        return
    sent = socket.send_fds(sock, [message], [fd])
    if sent < len(message):
        sock.sendall(message[sent:])


def receive_exactly(sock: socket.socket, n: int, deadline: float | None = None) -> bytes:
    """n bytes from sock; TimeoutError when `deadline` (time.monotonic) passes first."""
    chunks, left = [], n
    while left:
        if deadline is not None:
            wait_s = deadline - time.monotonic()
            if wait_s <= 0 or not select.select([sock], [], [], wait_s)[0]:
                raise TimeoutError
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError("peer closed the socket")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def encode_inspection(inspection) -> dict:
    return {
        "file_type": inspection.file_type,
        "type_mismatch": inspection.type_mismatch,
        "detections": [[d.detector, d.count, d.sample] for d in inspection.detections],
        "members": [
            [
                m.name, m.depth, m.size, m.sha256, [[d.detector, d.count, d.sample] for d in m.detections],
                list(m.sketch), sorted(m.fingerprints),
            ]
            for m in inspection.members
        ],
        "fingerprints": sorted(inspection.fingerprints),
    }


def drop_privileges(uid: int, gid: int) -> None:
    """Become uid/gid for good: no supplementary groups, no capabilities (a root process that
    changes all its uids loses them), and no_new_privs so no setuid binary gives them back."""
    if os.geteuid() == 0:
        try:
            os.setgroups([])
            if hasattr(os, "setresuid"):  # Linux: real, effective and saved ids at once
                os.setresgid(gid, gid, gid)
                os.setresuid(uid, uid, uid)
            else:  # macOS: setuid as root sets all three
                os.setgid(gid)
                os.setuid(uid)
        except PermissionError as exc:  # a service without CAP_SETUID/CAP_SETGID: never parse as root
            raise SystemExit(f"inspection worker: cannot drop root ({exc.strerror}): the service needs CAP_SETUID and CAP_SETGID") from None
        if os.geteuid() == 0 or os.getuid() == 0:
            raise SystemExit("inspection worker: could not drop root")
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise SystemExit("inspection worker: prctl(no_new_privs) failed")


def _limit_resources() -> None:
    import resource  # POSIX only, as the worker is

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not dump a document's text
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = MEMORY_LIMIT_BYTES if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT_BYTES, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _serve(sock: socket.socket) -> None:
    while True:
        try:
            head, fds, _flags, _addr = socket.recv_fds(sock, HEADER.size, 4)
        except ConnectionResetError:
            return
        if not head:
            return
        if len(head) < HEADER.size:
            head += receive_exactly(sock, HEADER.size - len(head))
        (length,) = HEADER.unpack(head)
        if length > MAX_REQUEST_BYTES or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise SystemExit("inspection worker: bad request")
        request = json.loads(receive_exactly(sock, length))
        # the agent kills a worker that overruns; should it not be able to (no CAP_KILL), the
        # worker's own alarm ends it at the same deadline (SIGALRM's default action)
        signal.setitimer(signal.ITIMER_REAL, float(request["deadline_s"]))
        with os.fdopen(fds[0], "rb", buffering=0) as raw:
            inspection = _inspect(raw, request)
        signal.setitimer(signal.ITIMER_REAL, 0)
        send_message(sock, encode_inspection(inspection))


def _inspect(raw: BinaryIO, request: dict):
    from agent.content.inspect import Inspection, inspect_source

    try:
        raw.seek(0)
        return inspect_source(raw, request["name"], max_bytes=request["max_bytes"], max_seconds=request["max_seconds"])
    except MemoryError:
        return Inspection(None, None, (Detection("inspection_failed", 1, "out of memory"),))


def _warm_up() -> None:
    """Load, while the worker may still read the interpreter's and the agent's files, everything
    inspection would load lazily: once privileges are gone the standard library may be out of
    reach (a Python under /root). Every codec, the PDF reader's modules, and one inspection of a
    sample of each format (legacy .doc, .xls and .ppt too), so the readers' own lazy imports
    happen now."""
    import encodings
    import importlib
    import pkgutil

    import pypdf

    for package in (encodings, pypdf):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            try:
                importlib.import_module(module.name)
            except Exception:  # noqa: BLE001 - optional parts (a codec for another OS, crypto back ends)
                pass
    from agent.content import pdf
    from agent.content.budget import Collector
    from agent.content.inspect import inspect_source

    for name, data in _samples():
        inspect_source(io.BytesIO(data), name)
        if name.endswith(".pdf"):  # the fast reader reads the sample: PDFium, for the files it gives way on, too
            pdf.read_pdf(io.BytesIO(data), Collector(1 << 20, 10.0), engine=pdf.ENGINE)


def _samples() -> list[tuple[str, bytes]]:
    import bz2
    import gzip
    import lzma
    import tarfile
    import zipfile

    from pypdf import PdfWriter

    text = "商业秘密\n身份证 11010519491231002X 电话 13800138000 卡号 6222020200112233445 代码 91350100M000100Y43\n"
    samples = [("a.txt", text.encode("gb18030")), ("b.txt", text.encode("utf-16")), ("c.txt", text.encode("utf-8-sig"))]
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", '<w:document xmlns:w="w"><w:body><w:p><w:r><w:t>x</w:t></w:r></w:p></w:body></w:document>')
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("名字.txt", text)
    samples.append(("d.docx", packed.getvalue()))
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as t:
        info = tarfile.TarInfo("a.txt")
        info.size = len(text.encode())
        t.addfile(info, io.BytesIO(text.encode()))
    samples += [("e.tar", tar.getvalue()), ("f.tar.gz", gzip.compress(tar.getvalue()))]
    samples += [("g.tar.bz2", bz2.compress(tar.getvalue())), ("h.tar.xz", lzma.compress(tar.getvalue()))]
    pdf = io.BytesIO()
    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    writer.write(pdf)
    samples.append(("i.pdf", pdf.getvalue()))
    # past identifiers.NUMPY_SCAN_CHARS: the detectors' numpy scan, imported on its first long text
    # (agent/content/lazy.py), loads now with its tables
    samples.append(("l.txt", (text * 60).encode()))
    from agent.content.olewrite import sample_doc, sample_msg, sample_ppt, sample_xls  # OLE2: olefile and the readers

    lines = tuple(text.splitlines())
    samples += [("j.doc", sample_doc(lines, header="商业秘密", footer="内部")), ("k.ppt", sample_ppt((lines,), "机密"))]
    samples.append(("l.xls", sample_xls((("姓名", "电话"), ("张三", 13800138000.0)), header="&C秘密")))
    samples.append(("m.msg", sample_msg("商业秘密", text, {"a.txt": text.encode()}, {"b.txt": text.encode()})))
    return [*samples, ("n.eml", _sample_email(text, packed.getvalue()))]


def _sample_email(text: str, attachment: bytes) -> bytes:
    """A message as mail clients save one: an encoded subject, quoted-printable and HTML text in
    GB2312, a base64 attachment with an RFC 2231 name, a message forwarded inside it."""
    from email import policy
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "张三 <a@example.cn>", "b@example.cn", "商业秘密"
    message.set_content(text, charset="gb2312", cte="quoted-printable")
    message.add_alternative(f"<p>{text}</p>", subtype="html", charset="gb2312", cte="base64")
    message.add_attachment(attachment, maintype="application", subtype="octet-stream", filename="名字.docx")
    forwarded = EmailMessage()
    forwarded["Subject"] = "=?utf-8?b?5ZWG5Lia?="
    forwarded.set_content(text)
    message.add_attachment(forwarded)
    return message.as_bytes(policy=policy.SMTP)


def _log_without_values() -> None:
    """The worker logs to the agent's stderr (the service's journal) as the agent does: warnings
    and errors, tracebacks without the values of their frames' variables. loguru's default handler
    prints those values, and a reader's failure would have put a document's text, or a message's
    bytes, into the journal."""
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING", backtrace=False, diagnose=False)


def main(argv: list[str]) -> int:
    """`python -m agent.content.worker SOCKET_FD UID GID`: serve requests until the socket closes."""
    sock_fd, uid, gid = (int(a) for a in argv[1:4])
    sock = socket.socket(fileno=sock_fd)
    _log_without_values()
    # everything a request may need is imported before the privileges go (the worker then needs
    # no file but its descriptors)
    _warm_up()
    _limit_resources()  # before the drop: the resource module itself is loaded from the interpreter's files
    drop_privileges(uid, gid)
    try:
        send_message(sock, {"ready": True})  # the agent's deadlines start now, not before the warm-up
        _serve(sock)
    except (EOFError, BrokenPipeError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
