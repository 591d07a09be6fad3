"""The elements a handler reacts to, found by one regex pass over a member instead of expat's
Python callbacks for every element (issue 21: a third to a half of docx, xlsx and pptx CPU went
to callbacks for run properties, fonts and styles the handlers ignore).

xmltext.parse stays the reference, and the guard: the member is first parsed by the same
locked-down expat parser with no element or text callbacks (C speed), so a DTD, an entity
declaration, an unbound prefix or malformed XML is refused exactly as before (the namespace
processing left out where the C check names_bound shows it could not refuse the member:
_checked), and whatever the regex pass then reads is well-formed XML with no DTD. Only the five
predefined entities and character references can appear then; comments, CDATA sections,
processing instructions and encodings other than UTF-8 are left to the reference (Office does not
write them). So is a member cut short at MAX_MEMBER_BYTES, and one whose reading ran out of budget
or was refused (the reference parses what was read, then fails the same way).

The regex finds the start, end and empty tags of the handler's local names (any prefix); the text
between two of them, with other elements' tags removed, line ends normalised as expat does and
references replaced, is handed over as character data. Attributes are parsed only for the names
whose attributes the handler reads. The handler gets the same calls in the same order as from
expat, except that character data may come in other pieces and whitespace between ignored
elements is merged (handlers only keep text inside their own elements, and only as a join).
tests/agent/content/test_xmlscan.py compares the extracted text of both ways.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from itertools import chain
from xml.parsers import expat

from agent.content.budget import OutOfBudget, Refused
from agent.content.xmltext import Handler, locked_parser, parse

ENABLED = True  # False: every member through the reference (tests compare the two)

_ATTRIBUTES = r"""((?:[^>"'/]|"[^"]*"|'[^']*')*)"""
_MARKUP = re.compile(r"""<(?:[^>"']|"[^"]*"|'[^']*')*>""")
REFERENCE = re.compile(r"&(#x[0-9A-Fa-f]+|#[0-9]+|lt|gt|amp|quot|apos);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_ATTRIBUTE = re.compile(r"""([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_LINE_ENDS = re.compile(r"\r\n?")
_ATTRIBUTE_SPACE = re.compile(r"\r\n|[\t\n\r]")
_ENCODING = re.compile(rb"""<\?xml[^>]*?encoding\s*=\s*["']([^"']*)["']""")
_UTF8_BOM = b"\xef\xbb\xbf"
FAST_MARKUP = True  # False: comments, CDATA and instructions looked for by three scans (the reference)
# a comment, CDATA section or processing instruction (one search where "<" is frequent, not three:
# after the XML declaration at the start, which is the one instruction allowed)
_ODD_MARKUP = re.compile(rb"<(?:!--|!\[|\?)")


@cache
def _tags(names: frozenset[str]) -> re.Pattern[str]:
    """Tags of the given local names, with or without a prefix. Groups: 1 "/" and 2 the name of an
    end tag; 3 the name, 4 the attributes and 5 "/" of a start or empty tag; 6 the text of an
    element holding text only, whose end tag (7) is then part of the match."""
    alternatives = "|".join(map(re.escape, sorted(names, key=len, reverse=True)))
    prefix = r"(?:[^\s<>/:!?=\"']+:)?"
    return re.compile(
        rf"<(?:(/){prefix}({alternatives})\s*>|{prefix}({alternatives})(?=[\s/>]){_ATTRIBUTES}(?:(/)>|>(?:([^<]*+)(</[^>]*>))?))"
    )


def replace_reference(m: re.Match[str]) -> str:
    ref = m.group(1)
    if ref[0] != "#":
        return _NAMED[ref]
    return chr(int(ref[2:], 16) if ref[1] == "x" else int(ref[1:]))


def text_of(raw: str) -> str:
    """Character data as expat gives it: \\r\\n and \\r as \\n, markup of other elements
    dropped, references replaced. Line ends first: a \\r before a tag ends a line of its own
    ("a\\r<b/>\\nc" is "a\\n\\nc"), which the tag's removal would join to the next \\n."""
    if "\r" in raw:
        raw = _LINE_ENDS.sub("\n", raw)
    if "<" in raw:
        raw = _MARKUP.sub("", raw)
    if "&" in raw:
        raw = REFERENCE.sub(replace_reference, raw)
    return raw


def attributes(raw: str) -> dict[str, str]:
    """Attributes by local name as the reference has them (xmlns declarations are not attributes;
    white space in a value normalised to spaces)."""
    found = {}
    for name, double, single in _ATTRIBUTE.findall(raw):
        if name == "xmlns" or name.startswith("xmlns:"):
            continue
        value = double or single
        if "\t" in value or "\n" in value or "\r" in value:
            value = _ATTRIBUTE_SPACE.sub(" ", value)
        if "&" in value:
            value = REFERENCE.sub(replace_reference, value)
        found[name.rpartition(":")[2]] = value
    return found


FAST_NAMESPACES = True  # False: the check always parses with namespace processing (the reference)
try:
    from agent.content._winnow import names_bound as _names_bound  # C (setup.py); optional
except ImportError:
    _names_bound = None
FAST_WELL_BOUND = True  # False: expat's plain parse checks every member (the reference _well_bound is held to)
try:  # a strict subset of XML 1.0 with its names bound, checked in one pass: neither parse is needed
    from agent.content._winnow import well_bound as _well_bound
except ImportError:  # not built, or built before it was there
    _well_bound = None


def _checked(data: bytes, member: str) -> None:
    """Raise as the reference parser would on this complete member (nothing but the guard runs):
    something, when it is not the reference's error (the caller then runs the reference).

    On Word's markup expat's namespace processing costs as much as the rest of the parse (every
    prefixed attribute expanded). A member the parse without it accepts is refused by the
    namespace parse only for a name or declaration _winnow.names_bound looks for (an unbound or
    reserved prefix, an empty declaration, a name of two colons, two attributes one after
    expansion): when it finds none of them, that parse is left out."""
    if FAST_NAMESPACES and _names_bound is not None:
        locked_parser(member, namespaces=False).Parse(data, True)
        if _names_bound(data):
            return
    locked_parser(member).Parse(data, True)


def _utf8_declared(data: bytes) -> bool:
    """Whether the XML declaration says UTF-8 or no encoding (a UTF-8 BOM before it or not).
    False for a member written 16 or 32 bits a character (a NUL or a UTF-16 mark in its first
    bytes), whose declaration no byte search reads: the reference reads it (xmltext._readable)."""
    if b"\x00" in data[:4] or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return False
    declared = _ENCODING.match(data, len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0)
    return not declared or declared.group(1).lower() in (b"utf-8", b"utf8")


def _decoded(data: bytes, bound: bool = False) -> str | None:
    """The member's text when it is plain UTF-8 with only the XML declaration as a processing
    instruction, no comments and no CDATA; otherwise None (the reference reads it). bound: the
    plain parse accepted the member and names_bound said True, so no "<" but the first starts a
    comment, CDATA or instruction (names_bound stops at any other) and only that first tag's
    bytes, up to its ">", need the search."""
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    if not _utf8_declared(data):
        return None
    if bound:
        first = data.find(b"<")
        if data[first + 1 : first + 2] == b"?":  # an instruction first: the declaration, or not plain
            if not data.startswith(b"<?xml") or _ODD_MARKUP.search(data, 1, data.find(b">")):
                return None
    elif FAST_MARKUP:
        if _ODD_MARKUP.search(data, 1 if data.startswith(b"<?xml") else 0):
            return None
    elif b"<!--" in data or b"<![" in data or data.count(b"<?") > (1 if data.startswith(b"<?xml") else 0):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def parse_fast(
    chunks: Iterable[bytes], handler: Handler, member: str, is_complete: Callable[[], bool] = lambda: True
) -> None:
    """xmltext.parse(chunks, handler, member, is_complete), by the regex pass when the handler
    names its elements and the member is plain, complete, well-formed UTF-8 XML."""
    names = handler.scan_names() if ENABLED else None
    if names is None:
        parse(chunks, handler, member, is_complete)
        return
    read: list[bytes] = []
    try:
        for chunk in chunks:
            read.append(chunk)
    except (OutOfBudget, Refused) as e:
        stopped_after(read, e, handler, member)
        return
    data = b"".join(read)
    complete = is_complete()
    if complete and handler.scan_bytes(data):
        return
    text = checked_text(data, member) if complete else None
    if text is None:
        parse(read, handler, member, is_complete)  # the reference fails as it would, after the same parts
        return
    del read, data
    scan_text(text, handler, names)


FAST_GUARD_FIRST = True  # False: _decoded's whole search before the guard (the reference checked_text is held to)


def checked_text(data: bytes, member: str) -> str | None:
    """A complete member's text, when the regex pass (or a handler's shortcut) may read it: plain
    UTF-8 XML that expat's guard accepts. None: the reference must read it (and refuses it when
    the guard does).

    The guard first: when names_bound vouches for the member, its scan has already passed every
    tag, so the search for comments, CDATA and instructions (a regex trying each "<" of the
    member) is left out but for the first tag's bytes. When _winnow.well_bound is sure of the
    member (what Office writes: plain UTF-8 XML, ASCII names, every prefix bound), the plain parse
    is left out too: it accepts whatever well_bound is sure of, and names_bound says True of it
    (on Word's markup that parse cost some 40% of a docx's inspection)."""
    if FAST_GUARD_FIRST and FAST_NAMESPACES and _names_bound is not None:
        if not _utf8_declared(data):
            return None  # before expat, which raises ValueError on a multi-byte encoding it lacks
        if FAST_WELL_BOUND and _well_bound is not None and _well_bound(data):
            return _decoded(data, bound=True)  # None for bytes that are not UTF-8: the reference refuses them
        try:
            locked_parser(member, namespaces=False).Parse(data, True)
            if _names_bound(data):
                return _decoded(data, bound=True)
            text = _decoded(data)
            if text is not None:
                locked_parser(member).Parse(data, True)
        except (Refused, expat.ExpatError):
            return None
        return text
    text = _decoded(data)
    if text is None:
        return None
    try:
        _checked(data, member)
    except (Refused, expat.ExpatError):
        return None
    return text


def scan_text(text: str, handler: Handler, names: tuple[frozenset[str], frozenset[str]]) -> None:
    """The events of a text checked_text gave, by the handler's shortcut or the regex pass (names:
    the handler's scan_names())."""
    if not handler.scan_whole(text, lambda part: _scan(part, handler, *names)):
        _scan(text, handler, *names)


def stopped_after(read: list[bytes], error: Exception, handler: Handler, member: str) -> None:
    """What parse_fast does when reading a member stopped with error after read: the reference
    reads what was read (its parts added), then fails with error (or first on malformed XML)."""
    parse(chain(read, _raising(error)), handler, member)


def _raising(error: Exception) -> Iterator[bytes]:
    raise error
    yield b""  # a generator: the error comes when the reference asks for the next chunk


def tag_matches(handler: Handler, text: str) -> Iterable[re.Match[str]]:
    """The tags of the handler's names in text (xmlscan's pass, for a handler's shortcut)."""
    names = handler.scan_names()
    return _tags(names[0]).finditer(text) if names else iter(())


def _scan(text: str, handler: Handler, names: frozenset[str], attribute_names: frozenset[str]) -> None:
    start, end, data, leaf, wants_data = handler.start, handler.end, handler.data, handler.leaf, handler.wants_data
    no_attributes: dict[str, str] = {}
    at = 0
    for m in _tags(names).finditer(text):
        begin = m.start()
        if begin > at and wants_data():
            piece = text[at:begin]
            if "<" in piece or "\r" in piece or "&" in piece:
                piece = text_of(piece)
            if piece:
                data(piece)
        at = m.end()
        closing, closed, name, raw, empty, inner, ended = m.groups()
        if closing:
            end(closed)
            continue
        attrs = attributes(raw) if raw and name in attribute_names else no_attributes
        if ended:
            if "\r" in inner or "&" in inner:
                inner = text_of(inner)
            leaf(name, attrs, inner)
            continue
        start(name, attrs)
        if empty:
            end(name)
