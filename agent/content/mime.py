"""Saved emails (.eml: RFC 5322 with MIME parts, as mail clients save or drag out a message): the
message's text for the detectors and text lineage, and its attachments for archive.py, which
hashes, sketches and inspects each as a member, as it does a zip's.

A message is parsed with the standard library's email package in its compat32 policy, which
leaves header values as they are (its default policy parses every address, which has been slow on
crafted headers); only Subject and attachment names are decoded, by email.header. What is read is
bounded: at most MAX_MESSAGE_BYTES of the file (more is truncated, said by the caller), and the
collector's clock between pieces. A part's payload is decoded by its Content-Transfer-Encoding
(base64, quoted-printable, uuencode; a broken one decodes as far as it goes, never raises).
"""

from __future__ import annotations

import email.errors
import email.header
import email.parser
import email.policy
import email.utils
import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from typing import BinaryIO

from agent.content.budget import Collector
from agent.content.document import BODY, TITLE
from agent.content.text import decode, open_source
from agent.content.zipread import Window

MB = 1024 * 1024
MAX_MESSAGE_BYTES = 64 * MB  # read of one message (its parse holds a few times that in memory)
PIECE_BYTES = 64 * 1024
HEAD_BYTES = 8192  # what the type is told from (filetype.HEAD_BYTES)
MAX_NAME_CHARS = 255
# header fields a message starts with (lower case); a text file is an email when its first lines
# are header fields, at least MIN_KNOWN of them among these, MIME-Version or Content-Type one of
# them, before its first blank line (a memo starting "From: ... To: ..." has neither)
KNOWN_FIELDS = frozenset(
    b"from to cc bcc subject date message-id mime-version received return-path delivered-to content-type "
    b"content-transfer-encoding reply-to sender in-reply-to references x-mailer user-agent thread-topic "
    b"thread-index importance x-priority authentication-results dkim-signature arc-seal".split()
)
MIME_FIELDS = frozenset({b"mime-version", b"content-type"})
MIN_KNOWN = 3
_FIELD = re.compile(rb"([!-9;-~]+)[ \t]*:")  # a header field's name (printable, no colon) and its colon
_TAG = re.compile(r"<[^<>]{0,2000}>")  # an HTML tag, as a text/html part's text is read
_DROPPED = re.compile(r"(?is)<(script|style)\b[^<>]{0,2000}>.*?</\1\s*>")


def is_email(head: bytes) -> bool:
    """Whether a text file starting with `head` (its first few KB) is a saved email: every line
    before the first blank one (or the head's end) a header field or a folded continuation of one
    (the last line may be cut by the head's end), at least MIN_KNOWN named as a message's are, one of them
    MIME-Version or Content-Type."""
    if _FIELD.match(head) is None:  # most text files: their first line is no header field
        return False
    lines = head.split(b"\n")
    if len(lines) < MIN_KNOWN + 1:
        return False
    names = set()
    for i, line in enumerate(lines):
        line = line.rstrip(b"\r")
        if not line:
            break  # the end of the header block
        if line[:1] in (b" ", b"\t"):
            if i == 0:
                return False
            continue  # a folded line of the field before
        field = _FIELD.match(line)
        if field is None:
            if i == len(lines) - 1:
                break  # cut by the head's end (a message's headers may fill it: Received, DKIM, ARC)
            return False
        names.add(field.group(1).lower())
    known = names & KNOWN_FIELDS
    return len(known) >= MIN_KNOWN and bool(known & MIME_FIELDS)


@dataclass(frozen=True)
class Attachment:
    name: str  # the name the message gives it, decoded; "(part N)" when it gives none
    data: bytes  # decoded from its transfer encoding


def mail_type(head: bytes) -> str | None:
    """The saved-mail format a text file starting with `head` is: "eml" (one message; .mht too),
    "emlx" (Apple Mail's: the message's byte count on the first line, then the message, then a
    property list), "mbox" (messages one after another, each after a "From " line: Thunderbird's
    and Evolution's folders, Gmail's export), or None."""
    if is_email(head):
        return "eml"
    first, _, rest = head.partition(b"\n")
    if first.startswith(b"From ") and is_email(rest):
        return "mbox"
    if first.rstrip(b"\r ").isdigit() and len(first) <= 16 and is_email(rest):
        return "emlx"
    return None


def message_window(f: BinaryIO, kind: str) -> BinaryIO:
    """The bytes of the message itself: an .emlx's after its count line, as many as it counts."""
    if kind != "emlx":
        return f
    f.seek(0)
    first = f.readline(32)
    return Window(f, len(first), len(first) + int(first.strip() or b"0"))


def messages(f: BinaryIO, check_time: Callable[[], None]) -> Iterator[tuple[bytes, bool]]:
    """The messages of an mbox, each as bytes (its "From " line left out, ">From " lines unquoted
    as mboxrd writes them) with whether it was read whole (at most MAX_MESSAGE_BYTES each: the
    rest of a longer one is passed over to the next "From " line)."""
    f.seek(0)
    lines: list[bytes] = []
    size, whole, started = 0, True, False
    while True:
        check_time()
        line = f.readline(PIECE_BYTES)
        if not line or line.startswith(b"From ") and (not lines or lines[-1] in (b"\n", b"\r\n")):
            if started:
                yield b"".join(lines), whole
            if not line:
                return
            lines, size, whole, started = [], 0, True, True
            continue
        if size + len(line) > MAX_MESSAGE_BYTES:
            whole = False
            continue
        if line.startswith(b">") and line.lstrip(b">").startswith(b"From "):
            line = line[1:]
        lines.append(line)
        size += len(line)


def parse(f: BinaryIO, check_time: Callable[[], None]) -> tuple[Message, bool]:
    """The message read from f's start (at most MAX_MESSAGE_BYTES), and whether it was read whole."""
    max_bytes = MAX_MESSAGE_BYTES
    f.seek(0)
    parser = email.parser.BytesFeedParser(policy=email.policy.compat32)
    read = 0
    while read < max_bytes:
        check_time()
        piece = f.read(min(PIECE_BYTES, max_bytes - read))
        if not piece:
            return parser.close(), True
        read += len(piece)
        parser.feed(piece)
    return parser.close(), not f.read(1)


def attachments(message: Message, check_time: Callable[[], None]) -> Iterator[Attachment]:
    """Every part that is not the message's own text: a part named or marked as an attachment,
    and any part not of text (an image, a document, a drawing sent inline). Parts of a message
    forwarded as an attachment (message/rfc822) are among them: the email package walks into it."""
    for number, part in enumerate(message.walk(), 1):
        check_time()
        if part.is_multipart():
            continue
        name = _filename(part)
        if name is None and part.get_content_maintype() == "text" and not _is_attachment(part):
            continue  # the message's text (text())
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        yield Attachment(name or f"(part {number})", data)


def text(message: Message, check_time: Callable[[], None]) -> Iterator[tuple[str, list[str]]]:
    """(place, lines) of the message's text: its Subject (the title), then each text part that is
    not an attachment, decoded by its charset (or as a text file is), HTML read without its tags."""
    subject = message.get("Subject")
    if subject:
        yield TITLE, [_decoded_header(str(subject))]
    for part in message.walk():
        check_time()
        if part.is_multipart() or part.get_content_maintype() != "text" or _filename(part) is not None or _is_attachment(part):
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes) or not data:
            continue
        body = _decoded(data, part.get_content_charset())
        if part.get_content_subtype() == "html":
            body = html_text(body)
        yield BODY, body.splitlines()


def html_text(markup: str) -> str:
    """A message's HTML body as its text: tags, scripts and styles left out, entities read."""
    return html.unescape(_TAG.sub(" ", _DROPPED.sub(" ", markup)))


def _is_attachment(part: Message) -> bool:
    return (part.get("Content-Disposition") or "").strip().lower().startswith("attachment")


def _filename(part: Message) -> str | None:
    """The part's file name (Content-Disposition's filename, else Content-Type's name; RFC 2231 and
    RFC 2047 both decoded), cut to MAX_NAME_CHARS; None when it has none."""
    try:
        raw = _readable_8bit(part).get_filename() or part.get_param("name")
    except (ValueError, LookupError, TypeError):
        return None
    if isinstance(raw, tuple):  # an RFC 2231 value get_param leaves as (charset, language, text)
        raw = email.utils.collapse_rfc2231_value(raw)
    if not raw:
        return None
    name = _decoded_header(str(raw)).replace("\0", "").strip()
    return name[:MAX_NAME_CHARS] or None


def read_email(source: str | BinaryIO, out: Collector) -> None:
    """extract.READERS' reader of a saved email: its Subject and its text parts (text()). The
    message is read whole up to MAX_MESSAGE_BYTES (more is truncated), whatever the collector's
    bytes: its attachments, most of its bytes, are not text; the text kept counts as any does."""
    with open_source(source) as f:
        kind = mail_type(f.read(HEAD_BYTES)) or "eml"
        message, whole = parse(message_window(f, kind), out.check_time)
    out.truncated = out.truncated or not whole
    for where, lines in text(message, out.check_time):
        out.add_all(where, lines)


def _readable_8bit(part: Message) -> Message:
    """The part, or, when its Content-Disposition holds raw 8-bit bytes (a name in UTF-8 or GBK
    without RFC 2047 or 2231, as some clients write it), a message of its two content headers read
    as a text file's: compat32 would give each such byte as U+FFFD."""
    raw = [(name, value) for name, value in part.raw_items() if name.lower() in ("content-disposition", "content-type")]
    if all(value.isascii() for _, value in raw):
        return part
    readable = Message(policy=email.policy.compat32)
    for name, value in raw:
        readable[name] = value if value.isascii() else decode(value.encode("ascii", "surrogateescape"))
    return readable


def _decoded_header(value: str) -> str:
    """An RFC 2047 encoded value ("=?UTF-8?B?...?=", as Chinese mail clients name attachments) as
    text; the value as it is when it does not decode. Raw 8-bit bytes in a header (which the parser
    keeps as surrogate escapes) are read as a text file's are."""
    if not value.isascii():
        value = decode(value.encode("utf-8", "surrogateescape"))  # the parser's escapes back to the raw bytes
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        return value


# charsets mail clients name that a larger one reads better: GBK text labelled GB2312 is common
_WIDER = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030"}


def _decoded(data: bytes, charset: str | None) -> str:
    if charset:
        try:
            return data.decode(_WIDER.get(charset.lower(), charset), errors="replace")
        except LookupError:  # a charset Python does not know: read as a text file is
            pass
    return decode(data)
