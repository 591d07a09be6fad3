"""Streaming the text out of XML members safely: expat, no DTDs, no entities, bounded buffers.

defusedxml is not available, so the guard is defusedxml's own: expat handlers that refuse any
DOCTYPE or entity declaration as soon as the parser meets it, whatever the member's encoding (a
byte scan for '<!DOCTYPE' misses UTF-16). OOXML and ODF never carry a DTD, so refusing is safe.
Elements are streamed (no tree), so memory is bounded by the text kept, not by the member's size.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from xml.parsers import expat

from agent.content.budget import Collector, Refused


def _local(name: str) -> str:
    return name.rpartition("}")[2]


class Handler:
    """Receives elements by local name (namespaces stripped) and character data."""

    def start(self, name: str, attrs: dict[str, str]) -> None: ...

    def end(self, name: str) -> None: ...

    def data(self, text: str) -> None: ...

    def scan_whole(self, text: str, scan: Callable[[str], None]) -> bool:
        """Read a whole member's text (xmlscan, after expat's check) by a shortcut of the handler's
        own, with the same effect as the events; False: nothing done, send the events. `scan`
        sends the events of a text (the member with a part the shortcut read cut out)."""
        return False

    def scan_bytes(self, data: bytes) -> bool:
        """Read a whole, complete member from its bytes (xmlscan, before its check) by a shortcut
        that checks them itself, with the same effect as scan_whole on the text xmlscan's check
        would give; False: nothing done, xmlscan checks and decodes the member as before."""
        return False

    def wants_data(self) -> bool:
        """Whether data() would keep text now (xmlscan skips the text between tags otherwise)."""
        return True

    def leaf(self, name: str, attrs: dict[str, str], text: str) -> None:
        """An element holding text only (xmlscan): what its start, text and end would do."""
        self.start(name, attrs)
        if text:
            self.data(text)
        self.end(name)

    def scan_names(self) -> tuple[frozenset[str], frozenset[str]] | None:
        """The local names whose tags this handler reacts to, and those whose attributes it reads,
        for xmlscan's regex pass; None: every element must be reported (the expat reference)."""
        return None


def locked_parser(member: str, namespaces: bool = True, encoding: str | None = None) -> expat.XMLParserType:
    """An expat parser that refuses any DOCTYPE or entity declaration (no entity expansion, no
    external references): the one guard every reading of a member goes through. namespaces=False
    only for xmlscan's check, which says when the namespace parse could refuse what this accepts;
    encoding: what the bytes are, whatever the member declares (parse's transcoded members)."""

    def refuse_dtd(*_: object) -> None:
        raise Refused(f"xml declares a DOCTYPE or entity: {member}")

    parser = expat.ParserCreate(encoding, namespace_separator="}") if namespaces else expat.ParserCreate(encoding)
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    parser.UnparsedEntityDeclHandler = refuse_dtd
    parser.ExternalEntityRefHandler = refuse_dtd
    return parser


def parse(
    chunks: Iterable[bytes], handler: Handler, member: str, is_complete: Callable[[], bool] = lambda: True
) -> None:
    """Feed chunks to a fresh, locked-down expat parser; Refused on DTDs or malformed XML.

    is_complete() is asked after the last chunk: False when the input was cut short on purpose,
    so its missing end is not an error.
    """

    def start(name: str, attrs: dict[str, str]) -> None:
        handler.start(_local(name), {_local(k): v for k, v in attrs.items()})

    chunks, transcoded = _readable(iter(chunks), member, is_complete)
    parser = locked_parser(member, encoding="utf-8" if transcoded else None)
    parser.StartElementHandler = start
    parser.EndElementHandler = lambda name: handler.end(_local(name))
    parser.CharacterDataHandler = handler.data
    parser.buffer_text = True
    try:
        for chunk in chunks:
            parser.Parse(chunk, False)
        if is_complete():
            parser.Parse(b"", True)
    except expat.ExpatError as e:
        raise Refused(f"malformed xml in {member}: {expat.ErrorString(e.code)} at line {e.lineno}") from e
    except UnicodeDecodeError as e:
        raise Refused(f"malformed xml in {member}: not {e.encoding} at byte {e.start} of a chunk") from e


# the encoding a member declares in its XML declaration (ASCII-compatible bytes: a UTF-16 member
# declares in UTF-16, which expat reads itself)
_EXPAT_READS = frozenset({b"utf-8", b"utf8", b"utf-16", b"us-ascii", b"iso-8859-1"})  # no probe needed
_DECLARATION_MAX = 1024  # bytes of a member's start searched for its declaration
_DECLARED = re.compile(rb"""(?:\xef\xbb\xbf)?<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]{0,39})["']""")


def _readable(chunks: Iterator[bytes], member: str, is_complete: Callable[[], bool]) -> tuple[Iterator[bytes], bool]:
    """The chunks, and whether they were transcoded to UTF-8: expat refuses a multi-byte encoding
    it does not know (GBK, GB18030, Big5, Shift_JIS: "multi-byte encodings are not supported", a
    ValueError that read as an internal error, the member's text never inspected). Such a member
    is decoded by Python's codec a chunk at a time and given to expat as UTF-8 (the parser told so,
    over the declaration); bytes the codec cannot read refuse the member, as malformed UTF-8 does,
    and so does a declared name that is no text encoding Python knows ("base64", a typo)."""
    head: list[bytes] = []
    for chunk in chunks:  # the declaration, however the member was cut into chunks
        head.append(chunk)
        if b"?>" in chunk or sum(map(len, head)) >= _DECLARATION_MAX:
            break
    start = b"".join(head)[:_DECLARATION_MAX]
    written = next((codec for bom, codec in _WIDE_STARTS if start.startswith(bom)), None)
    if written is not None:
        return _wide(chain(head, chunks), start, written, member, is_complete)
    declared = _DECLARED.match(start)
    if not declared or declared.group(1).lower() in _EXPAT_READS or _expat_reads(declared.group(0) + b"?><a/>"):
        return chain(head, chunks), False
    name = declared.group(1).decode("ascii")
    try:
        codec = codecs.lookup(name)
    except LookupError:
        codec = None
    if codec is None or not codec._is_text_encoding:  # "base64", "rot13": not a text's encoding
        raise Refused(f"{member} declares an encoding no reader knows: {name!r}")
    return _utf8(chain(head, chunks), codec.incrementaldecoder(), is_complete), True


# how a member written 16 or 32 bits a character starts: its byte order mark, or "<?" without one
# (longest first: UTF-32's little-endian mark begins with UTF-16's)
_WIDE_STARTS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"), (b"\x00\x00\x00<", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"), (b"\x00<\x00?", "utf-16-be"),
)
_EXPAT_UTF16 = frozenset({"utf-16", "utf-16le", "utf-16be"})  # the UTF-16 names expat knows itself
# IANA's names of UCS-2 and UCS-4, which Python's codecs do not know: the same bytes as UTF-16 and UTF-32
_UCS = {"ucs-2": "utf-16", "iso-10646-ucs-2": "utf-16", "csunicode": "utf-16", "ucs-4": "utf-32", "iso-10646-ucs-4": "utf-32", "csucs4": "utf-32"}


def _wide(
    chunks: Iterator[bytes], start: bytes, written: str, member: str, is_complete: Callable[[], bool]
) -> tuple[Iterator[bytes], bool]:
    """_readable for a member written in UTF-16 or UTF-32 (written: which, by its first bytes),
    whose declaration is in the same encoding. Expat reads UTF-16 declared by a name it knows;
    Python's spelling of the same ("UTF-16-LE", "utf_16") made pyexpat raise ValueError, an
    internal error with the text never read, and expat reads no UTF-32 at all (a malformed
    member). Both are now transcoded, by the encoding the bytes are written in; a declaration of
    an encoding of another family (GBK over UTF-16 bytes) is refused, as expat refuses one."""
    unit = 4 if written.startswith("utf-32") else 2
    seen = start[: len(start) - len(start) % unit].decode(written, "replace").lstrip("\ufeff")
    declared = _DECLARED.match(seen.encode("ascii", "replace"))
    name = declared.group(1).decode("ascii") if declared else None
    if unit == 2 and (name is None or name.lower() in _EXPAT_UTF16):
        return chunks, False
    if name is not None:
        try:
            family = _UCS.get(name.lower()) or codecs.lookup(name).name
        except LookupError:
            raise Refused(f"{member} declares an encoding no reader knows: {name!r}") from None
        if family.split("-")[:2] != written.split("-")[:2]:
            raise Refused(f"{member} declares {name!r} but is written in {written.upper()}")
    return _utf8(chunks, codecs.getincrementaldecoder(written)(), is_complete), True


def _expat_reads(declaration: bytes) -> bool:
    try:
        expat.ParserCreate().Parse(declaration, True)
    except (ValueError, LookupError):  # multi-byte encodings are not supported; a name Python's codecs refuse
        return False
    except expat.ExpatError:
        pass  # an unknown encoding or a bad declaration: expat's own refusal, as before
    return True


def _utf8(
    chunks: Iterable[bytes], decoder: codecs.IncrementalDecoder, is_complete: Callable[[], bool]
) -> Iterator[bytes]:
    for chunk in chunks:
        yield decoder.decode(chunk).encode("utf-8", "surrogatepass")
    # a member cut short on purpose may end inside a character: not an error, as for expat's own
    yield decoder.decode(b"", is_complete()).encode("utf-8", "surrogatepass")


class TextHandler(Handler):
    """Paragraph text: data inside `text_tags`, one part each time a `part_tags` element ends.

    `inline` maps empty elements to the characters they stand for (tabs, breaks, ODF spaces).
    Subclasses change `where` as they go (a footer placeholder, a header region).
    """

    def __init__(
        self,
        out: Collector,
        where: str,
        text_tags: frozenset[str],
        part_tags: frozenset[str],
        skip_tags: frozenset[str] = frozenset(),
        inline: dict[str, str] | None = None,
    ) -> None:
        self.out = out
        self.where = where
        self._text_tags, self._part_tags, self._skip_tags = text_tags, part_tags, skip_tags
        self._inline = inline or {}
        self._plain_text_tags = text_tags - part_tags - skip_tags - frozenset(self._inline)
        self._in_part = 0
        self._in_text = 0
        self._in_skip = 0
        self._buffer: list[str] = []
        self._pending = 0

    def scan_names(self) -> tuple[frozenset[str], frozenset[str]] | None:
        if type(self).start is not TextHandler.start or type(self).end is not TextHandler.end:
            return None  # a subclass reacting to more names says so itself
        return self._names(), frozenset()

    def _names(self) -> frozenset[str]:
        return self._text_tags | self._part_tags | self._skip_tags | frozenset(self._inline)

    def leaf(self, name: str, attrs: dict[str, str], text: str) -> None:
        if name in self._plain_text_tags:  # start, data and end of a text element, in one
            if text and not self._in_skip:
                self._append(text)
        else:
            super().leaf(name, attrs, text)

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name in self._part_tags:
            self._in_part += 1
        if name in self._skip_tags:
            self._in_skip += 1
        elif name in self._text_tags:
            self._in_text += 1
        elif name in self._inline and (self._in_part or self._in_text) and not self._in_skip:
            self._append(self._inline[name])  # <w:tab/> sits beside <w:t>, inside the paragraph

    def end(self, name: str) -> None:
        if name in self._skip_tags:
            self._in_skip -= 1
        elif name in self._text_tags:
            self._in_text -= 1
        if name in self._part_tags:
            self._in_part -= 1
            self.flush()

    def data(self, text: str) -> None:
        if self._in_text and not self._in_skip:
            self._append(text)

    def wants_data(self) -> bool:
        return bool(self._in_text and not self._in_skip)

    def _append(self, text: str) -> None:
        self._pending += len(text)
        self.out.check_chars(self._pending)
        self._buffer.append(text)

    def flush(self) -> None:
        if self._buffer:
            self.out.add(self.where, self.clean("".join(self._buffer)))
        self._buffer, self._pending = [], 0

    def clean(self, text: str) -> str:
        return text


class FieldsHandler(Handler):
    """Metadata: the text of each element named in `fields` becomes a part in its place.

    Elements in `labelled` carry their label in a `name` attribute (custom properties, ODF
    user-defined fields) and become "label: value".
    """

    def __init__(self, out: Collector, fields: dict[str, str], labelled: dict[str, str] | None = None) -> None:
        self.out = out
        self._fields = fields
        self._labelled = labelled or {}
        self._open: list[tuple[str, str, list[str]]] = []  # (element, label, text)

    def scan_names(self) -> tuple[frozenset[str], frozenset[str]] | None:
        return frozenset(self._fields) | frozenset(self._labelled), frozenset(self._labelled)

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name in self._fields:
            self._open.append((name, "", []))
        elif name in self._labelled:
            self._open.append((name, attrs.get("name", ""), []))

    def end(self, name: str) -> None:
        if self._open and self._open[-1][0] == name:
            element, label, text = self._open.pop()
            value = "".join(text).strip()
            where = self._fields.get(element) or self._labelled[element]
            if value:
                self.out.add(where, f"{label}: {value}" if label else value)

    def wants_data(self) -> bool:
        return bool(self._open)

    def data(self, text: str) -> None:
        if self._open:
            buffer = self._open[-1][2]
            self.out.check_chars(sum(map(len, buffer)) + len(text))
            buffer.append(text)
