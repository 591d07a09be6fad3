"""Saved emails (.eml: RFC 5322 with MIME parts, as mail clients save or drag out a message): the
message's text for the detectors and text lineage, and its attachments for archive.py, which
hashes, sketches and inspects each as a member, as it does a zip's.

A message is parsed with the standard library's email package in its compat32 policy, which
leaves header values as they are (its default policy parses every address, which has been slow on
crafted headers); only Subject and attachment names are decoded, by email.header. What is read is
bounded: at most MAX_MESSAGE_BYTES of the file (more is truncated, said by the caller), and the
collector's clock between pieces. A part's payload is decoded here, by its
Content-Transfer-Encoding read leniently (a trailing space, quotes, folding): base64 with junk,
a stray character or padding on every line, quoted-printable, uuencode; a broken one decodes as
far as it goes, never raises. A message nested too deep for the parser is refused, not logged.
Names are made printable (controls and bidirectional overrides as "?", slashes as "_") so an
officer reads what the message calls an attachment and nothing it pretends.
"""

from __future__ import annotations

import email.errors
import email.header
import email.parser
import email.policy
import email.utils
import quopri
import re
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from typing import BinaryIO

from agent.content import encoded
from agent.content.budget import Collector, Refused
from agent.content.document import BODY, TITLE
from agent.content.markup import html_text
from agent.content.text import decode, open_source
from agent.content.zipread import Window

MB = 1024 * 1024
MAX_MESSAGE_BYTES = 64 * MB  # read of one message (its parse holds a few times that in memory)
PIECE_BYTES = 64 * 1024
HEAD_BYTES = 8192  # what the type is told from (filetype.HEAD_BYTES)
MAX_NAME_CHARS = 255
# header fields a message starts with (lower case): see is_email (a memo starting "From: ... To: ...
# Subject: ..." has neither a MIME nor a transport field, and stays text)
KNOWN_FIELDS = frozenset(
    b"from to cc bcc subject date message-id mime-version received return-path delivered-to content-type "
    b"content-transfer-encoding reply-to sender in-reply-to references x-mailer user-agent thread-topic "
    b"thread-index importance x-priority authentication-results dkim-signature arc-seal".split()
)
MIME_FIELDS = frozenset({b"mime-version", b"content-type"})
# fields only a message that travelled has (a memo typed to look like one has none of them)
TRANSPORT_FIELDS = frozenset({b"received", b"return-path", b"message-id", b"dkim-signature", b"arc-seal",
                              b"authentication-results", b"delivered-to"})  # fmt: skip
MIN_KNOWN = 3
_FIELD = re.compile(rb"([!-9;-~]+)[ \t]*:")  # a header field's name (printable, no colon) and its colon
_DATA_URI = re.compile(rb"data:[\w.+/-]{0,100}(?:;[\w=.+-]{0,100}){0,5};base64,([A-Za-z0-9+/=\s]{4,})")
# charsets a message may name that read text as mail writes it; any other (cp037, punycode, idna,
# "undefined") is read as a text file is, so a label cannot turn an identifier into other characters
_MAIL_CHARSET = re.compile(
    r"(?i)(?:utf-?8|us-ascii|ascii|gb2312|gbk|gb18030|x-gbk|cp936|hz-gb-2312|big5(?:-hkscs)?|iso-?8859-\d{1,2}|"
    r"windows-125\d|cp125\d|latin-?[1-9]|koi8-[ru]|shift_?jis|sjis|cp932|euc-(?:jp|kr|cn)|iso-2022-(?:jp|kr|cn)|"
    r"utf-?16(?:-?[bl]e)?|utf-?32(?:-?[bl]e)?)"
)


def is_email(head: bytes) -> bool:
    """Whether a text file starting with `head` (its first HEAD_BYTES, or all of it) is a saved
    email: after a BOM and blank lines, every line before the first blank one (or the head's end)
    a header field or a folded continuation of one (the last line may be cut by the head's end);
    then MIME-Version and Content-Type both, or at least MIN_KNOWN fields named as a message's are
    with a MIME or a transport field among them, or headers that fill the whole head."""
    full = len(head) >= HEAD_BYTES
    head = head[_skipped(head) :]
    if _FIELD.match(head) is None:  # most text files: their first line is no header field
        return False
    lines = head.split(b"\n")
    if len(lines) < MIN_KNOWN + 1:
        return False
    names, cut = set(), False
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
                cut = full  # by the head's end: a message's headers may fill it (Received, DKIM, ARC)
                break
            return False
        names.add(field.group(1).lower())
    else:
        cut = full
    known = names & KNOWN_FIELDS
    if MIME_FIELDS <= names:
        return True  # a MIME document whatever else it says (Word's "Single File Web Page", .mht)
    # Exchange writes its transport and antispam fields first and the MIME ones last, past 8 KB
    return len(known) >= MIN_KNOWN and bool(known & MIME_FIELDS or known & TRANSPORT_FIELDS or cut)


def _skipped(head: bytes) -> int:
    """Where a message starts in a file starting with head: past a UTF-8 BOM and blank lines."""
    at = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    while True:
        end = head.find(b"\n", at)
        if end < 0 or head[at:end].strip():
            return at
        at = end + 1


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
    first, _, rest = head[_skipped(head) :].partition(b"\n")
    if first.startswith((b"From ", b">From ")) and is_email(rest):
        return "mbox"  # (one message exported with its "From " line, or ">From - date", is one too)
    if first.rstrip(b"\r ").isdigit() and len(first) <= 16 and is_email(rest):
        return "emlx"
    return None


def message_window(f: BinaryIO, kind: str | None = None) -> BinaryIO:
    """The bytes of the message (or mailbox) itself: past a BOM and blank lines, and an .emlx's
    after its count line, as many as it counts. `kind`: mail_type's, told from the head when None."""
    f.seek(0)
    head = f.read(HEAD_BYTES)
    kind = kind or mail_type(head)
    start = _skipped(head)
    if kind == "emlx":
        first = head[start:].partition(b"\n")[0]
        begin = start + len(first) + 1
        return Window(f, begin, begin + int(first.strip() or b"0"))
    return Window(f, start) if start else f


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
        separates = line.startswith(b"From ") or not started and line.startswith(b">From ")
        if not line or separates and (not lines or lines[-1] in (b"\n", b"\r\n")):
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
    with _not_too_deep():
        while read < max_bytes:
            check_time()
            piece = f.read(min(PIECE_BYTES, max_bytes - read))
            if not piece:
                return parser.close(), True
            read += len(piece)
            parser.feed(piece)
        return parser.close(), not f.read(1)


@contextmanager
def _not_too_deep() -> Iterator[None]:
    """The email package parses and walks nested parts by recursion: a message nested a thousand
    deep is refused as corrupt (no traceback logged, which would quote its bytes)."""
    try:
        yield
    except RecursionError:
        raise Refused("corrupt email: parts nested too deep") from None


def attachments(message: Message, check_time: Callable[[], None]) -> Iterator[Attachment]:
    """Every part that is not the message's own text (_is_text): a part named or marked as an
    attachment, and any part not of text (an image, a document, a drawing sent inline). Parts of a
    message forwarded as an attachment (message/rfc822) are among them: the email package walks into it."""
    with _not_too_deep():
        for number, part in enumerate(message.walk(), 1):
            check_time()
            if part.is_multipart() or part.get_content_maintype() == "multipart":
                continue  # (one whose boundary was never found holds nothing but its preamble)
            name = _filename(part)
            data = _payload(part)
            if data is None or name is None and not data:
                continue  # an empty part
            if name is None and _is_text(part, data):  # the message's text (text()): what it carries
                shown = html_text(_decoded(data, part.get_content_charset())) if part.get_content_subtype() == "html" else None
                yield from _carried(data, number, check_time, shown)
                continue
            yield Attachment(name or f"(part {number})", data)


def _carried(data: bytes, number: int, check_time: Callable[[], None], shown: str | None = None) -> Iterator[Attachment]:
    """Files carried inside a text part, as mail clients show them attached, or written out in it:
    data: URIs in HTML (an image, or anything, inlined as base64), uuencoded blocks (`uuencode
    drawing.dwg drawing.dwg | mail`), and base64 or hex dumps pasted in (agent/content/encoded.py;
    a data: URI found by that search too is not read twice). `shown`: an HTML part's text as read
    (html_text: its <br> and <p> are line breaks), where what was pasted is looked for."""
    seen = set()
    if b"data:" in data:
        for index, uri in enumerate(_DATA_URI.finditer(data), 1):
            check_time()
            content = encoded.lenient_base64(uri.group(1))
            seen.add(content)
            yield Attachment(f"(part {number} data {index})", content)
    for index, piece in enumerate(encoded.carried(data.decode("latin-1") if shown is None else shown, check_time), 1):
        if piece.data in seen:
            continue
        if piece.kind == encoded.UUENCODE:  # (its name as the part's bytes hold it, or as the HTML reads)
            raw_name = piece.name if shown is not None or not piece.name else decode(piece.name.encode("latin-1"))
            name = clean_name(raw_name or "") or f"(part {number})"
        else:
            name = f"(part {number} {piece.kind} {index})"
        yield Attachment(name, piece.data)


def text(message: Message, check_time: Callable[[], None]) -> Iterator[tuple[str, list[str]]]:
    """(place, lines) of the message's text: its Subject (the title), the Subject of each message
    forwarded inside it, and each part that is its text (_is_text), decoded by its charset (or as
    a text file is), HTML read without its tags."""
    subject = message.get("Subject")
    if subject:
        yield TITLE, [_decoded_header(str(subject))]
    with _not_too_deep():
        for part in message.walk():
            check_time()
            if part.get_content_type() == "message/rfc822" and part.is_multipart():
                inner = part.get_payload(0).get("Subject")
                if inner:
                    yield BODY, [_decoded_header(str(inner))]
            if part.is_multipart() or _filename(part) is not None:
                continue
            data = _payload(part)
            if not data or not _is_text(part, data):
                continue
            body = _decoded(data, part.get_content_charset())
            if part.get_content_subtype() == "html":
                body = html_text(body)
            yield BODY, body.splitlines()


def protections(message: Message) -> list[tuple[bool, str]]:
    """(encrypted: True, or False for signed only, why) of each part the message's content is
    sealed in: PGP/MIME and S/MIME encryption, an S/MIME signature holding the content (opaque
    signing), a PGP block in a text part. Their content cannot be read here."""
    found = []
    with _not_too_deep():
        for part in message.walk():
            kind = part.get_content_type()
            if kind == "multipart/encrypted":
                found.append((True, "PGP/MIME encrypted"))
            elif kind in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
                signed = (part.get_param("smime-type") or "").lower() == "signed-data"
                found.append((not signed, "S/MIME signed, its content inside the signature" if signed else "S/MIME encrypted"))
            elif part.get_content_maintype() == "text" and not part.is_multipart():
                data = _payload(part) or b""
                if b"-----BEGIN PGP MESSAGE-----" in data:
                    found.append((True, "PGP encrypted text"))
    return found


def _is_text(part: Message, data: bytes) -> bool:
    """Whether a part with no name is the message's own text: not marked as an attachment, and of
    text, or, whatever it says it is, bytes that look like text (a memo sent as
    application/octet-stream is read as text, so its lineage is traced, not only its hash)."""
    from agent.content.filetype import looks_like_text  # (filetype types mail by this module)

    if _is_attachment(part):
        return False
    return part.get_content_maintype() == "text" or bool(data) and looks_like_text(data[:HEAD_BYTES])


def _payload(part: Message) -> bytes | None:
    """A leaf part's bytes, decoded from its transfer encoding (None for a multipart)."""
    if part.is_multipart():
        return None
    encoding = "".join(str(part.get("Content-Transfer-Encoding", "")).split()).strip("\"'").lower()
    if encoding in ("base64", "quoted-printable", "x-uuencode", "uuencode", "uue", "x-uue"):
        text = part.get_payload()
        if not isinstance(text, str):
            return None
        data = text.encode("ascii", "replace")  # (a byte these encodings do not use is junk, read as such)
        if encoding == "base64":
            return encoded.lenient_base64(data)
        return quopri.decodestring(data) if encoding == "quoted-printable" else encoded.uudecode(data)
    data = part.get_payload(decode=True)  # 7bit, 8bit, binary or none: the bytes as they were
    return data if isinstance(data, bytes) else None


def printable(name: str) -> str:
    """The name with controls, bidirectional overrides and other characters that are not printable
    as "?"; spaces of every kind (the ideographic space of "绝密　★　长期") stay what they are."""
    return "".join(c if c.isprintable() or unicodedata.category(c) == "Zs" else "?" for c in name)


def clean_name(name: str) -> str:
    """An attachment's name as an officer may read it: printable(), slashes as "_" (a name is no
    path, and "!/" joins a member to the archive it is in), cut to MAX_NAME_CHARS."""
    return printable(name.replace("\0", "")).replace("/", "_").replace("\\", "_").strip()[:MAX_NAME_CHARS]


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
    return clean_name(_decoded_header(str(raw))) or None


def read_email(source: str | BinaryIO, out: Collector) -> None:
    """extract.READERS' reader of a saved email: its Subject and its text parts (text()). The
    message is read whole up to MAX_MESSAGE_BYTES (more is truncated), whatever the collector's
    bytes: its attachments, most of its bytes, are not text; the text kept counts as any does."""
    with open_source(source) as f:
        message, whole = parse(message_window(f), out.check_time)
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
    wide = charset and charset.strip().lower().startswith(("utf-16", "utf16", "utf-32", "utf32"))
    if charset and _MAIL_CHARSET.fullmatch(charset.strip()) and not (wide and b"\0" not in data):
        try:
            return data.decode(_WIDER.get(charset.strip().lower(), charset.strip()), errors="replace")
        except (LookupError, UnicodeError, ValueError):  # one Python does not know: read as a text file is
            pass
    return decode(data)
