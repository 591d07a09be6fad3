"""Text of Office Open XML files (docx, xlsx, pptx), each part in its place.

Members are read in this order so that a body cut short by the budget loses nothing else:
properties (title, subject, keywords, company, custom properties), headers, footers, then body
(docx: document, footnotes, endnotes, comments; pptx: slides, then speaker notes). A worksheet
becomes one table-shaped part (rows as lines, cells tab-separated in their columns), so numbers
stored as numbers are read and a header row gives its column a meaning, as in a CSV. A number is
read as the digits the cell holds: 1.10105194912311E+17 becomes 110105194912311000 (what Excel
kept of an ID typed as a number), never a float's text. A docx paragraph inside a table knows its
cell (table, row, grid column), so a header row gives its column a meaning there too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import cache
from itertools import chain, groupby

from agent.content import budget, xmlscan
from agent.content.budget import Collector, OutOfBudget
from agent.content.document import BODY, FOOTER, HEADER, PROPERTIES, TITLE, Cell, TextPart
from agent.content.xmlscan import (
    REFERENCE,
    attributes,
    checked_text,
    parse_fast,
    replace_reference,
    scan_text,
    stopped_after,
    tag_matches,
    text_of,
)
from agent.content.xmltext import FieldsHandler, Handler, TextHandler, locked_parser, parse
from agent.content.zipread import BoundedZip

CORE_FIELDS = {
    "title": TITLE,
    "subject": PROPERTIES,
    "keywords": PROPERTIES,
    "description": PROPERTIES,
    "category": PROPERTIES,
    "contentStatus": PROPERTIES,
}
APP_FIELDS = {"Company": PROPERTIES, "Manager": PROPERTIES}
CUSTOM_LABELLED = {"property": PROPERTIES}
INLINE = {"tab": "\t", "br": "\n", "cr": "\n"}
HEADER_FOOTER_TAGS = {
    "oddHeader": HEADER, "evenHeader": HEADER, "firstHeader": HEADER,
    "oddFooter": FOOTER, "evenFooter": FOOTER, "firstFooter": FOOTER,
}  # fmt: skip
# &L &C &R sections, &P page, &"font,style", &12 size, &K colour ... stand for no text
EXACT_DIGITS = 15  # Excel keeps 15 significant digits of a number
MAX_INTEGER_DIGITS = 30  # 1E+300 is not spelled out as 301 digits
_SHEET_CODES = re.compile(r'&&|&"[^"]*"|&K[0-9A-Fa-f]{6}|&K\d\d[+-]\d{3}|&\d+|&[LCRPNDTZFAGSXYUBEOH]', re.IGNORECASE)


def _numbered(names: set[str], pattern: str) -> list[str]:
    """Members matching pattern (one group: the number), in numeric order: slide2 before slide10."""
    fullmatch = re.compile(pattern).fullmatch  # re.fullmatch(pattern, n) looks the pattern up for each name
    found = [(int(m.group(1) or 0), n) for n in names if (m := fullmatch(n))]
    return [n for _, n in sorted(found)]


def read_member(z: BoundedZip, name: str, handler: Handler, out: Collector) -> None:
    """Stream one member through handler, if the zip has it."""
    if name in z.names():
        # a member cut at MAX_MEMBER_BYTES has no end tags; only then is that not an error
        parse_fast(z.chunks(name, out), handler, name, lambda: not z.member_truncated)
        if isinstance(handler, TextHandler):
            handler.flush()


def _properties(z: BoundedZip, out: Collector) -> None:
    read_member(z, "docProps/core.xml", FieldsHandler(out, CORE_FIELDS), out)
    read_member(z, "docProps/app.xml", FieldsHandler(out, APP_FIELDS), out)
    read_member(z, "docProps/custom.xml", FieldsHandler(out, {}, CUSTOM_LABELLED), out)


FAST_PARAGRAPHS = True  # False: paragraphs by xmlscan's events (the reference plain_paragraphs is tested against)
_PREFIX = r"""(?>(?:[^\s<>/:!?=\"']++:)?)"""
_SKIP = rf"""(?:<(?!/?{_PREFIX}(?:t|p|tab|br|cr)[\s/>])[^>]*+>|[^<]++)*+"""  # tags and text that give nothing
_LEAF = rf"""t(?=[\s>])[^>]*+(?<!/)>([^<]*+)</[^>]*+>{_SKIP}(?:(</){_PREFIX}p\s*>)?"""  # a t holding text only
# The tags that make a member's paragraphs (any prefix), each giving a mark, the groups of a findall
# match in their order: the text of a t holding text only, "</" a paragraph's end, "p>" its start,
# "/>" an empty paragraph (an end too), "a>", "b>", "c>" a tab, br or cr, "t>" a t holding elements.
# A match goes on over the tags that give nothing after it: a paragraph's start with its first
# run's text, a text with the end tags after it and its paragraph's end, are one match each. Text
# outside t gives nothing. Only for a member where no ">" stands but at the end of a tag: then [^>]*
# reads a tag's attributes (attribute values hold no "<" in well-formed XML), and the marks are
# told from the text by their "<" or ">".
_PARAGRAPH_MARKS = re.compile(
    rf"""(</){_PREFIX}p\s*>|<{_PREFIX}(?:{_LEAF}|(p)(?=[\s>])[^>]*+(?<!/)(>){_SKIP}(?:<{_PREFIX}{_LEAF})?"""
    rf"""|p(?=[\s/])[^>]*+(?<=(/))(>)|(?:t(a)b|(b)r|(c)r)(?=[\s/>])[^>]*+(>)|(t)(?=[\s>])[^>]*+(?<!/)(>))"""
)
_LINE_ENDS = re.compile(r"\r\n?")


def plain_paragraphs(text: str, refused: tuple[str, ...] = ()) -> list[str] | None:
    """The texts a TextHandler of OOXML paragraphs (text in t, parts at p, tab/br/cr inline) would
    flush from a whole member (well-formed, no comments, CDATA or instructions: xmlscan's check),
    the text after the last paragraph (the final flush) and empty ones included; None when a t
    holds elements, a `refused` name follows a "<" or ":" anywhere, a ">" stands outside a tag's
    end, or there are tabs or breaks and a paragraph holds another or one of them stands outside
    the paragraphs.

    Without tabs and breaks the handler's parts are its text split at each paragraph's end (an
    empty paragraph ends one too), however paragraphs nest; a tab or break counts only inside a
    paragraph, so then the paragraphs must not nest."""
    if text.count("<") != text.count(">"):
        return None  # a ">" in a text or an attribute value: [^>]* would not find a tag's end
    if refused and any(map(text.__contains__, _refused_marks(refused))):
        return None
    if "\r" in text:
        text = _LINE_ENDS.sub("\n", text)  # as expat does to the raw input (a &#13; stays)
    if FAST_PLAIN_MARKS and (paragraphs := _plain_texts(text)) is not None:
        return paragraphs
    found = _PARAGRAPH_MARKS.findall(text)
    inline = _inline_marks(found)
    if inline is None:
        return None
    marks = "".join(chain.from_iterable(found))
    for mark, replacement in (("p>", ""), ("/>", "</"), *inline):
        if mark in marks:
            marks = marks.replace(mark, replacement)
    paragraphs = marks.split("</")
    if "&" in marks:
        paragraphs = [REFERENCE.sub(replace_reference, p) if "&" in p else p for p in paragraphs]
    return paragraphs


@cache
def _refused_marks(refused: tuple[str, ...]) -> tuple[str, ...]:
    """The marks "<name" and ":name" of each refused name (made once, not per member)."""
    return tuple(chain.from_iterable((f"<{name}", f":{name}") for name in refused))


FAST_PLAIN_MARKS = True  # False: every member through _PARAGRAPH_MARKS (_plain_texts is tested against it)
# One item per tag that counts: a t's text (">" and the text: no ">" stands in a text here), "" a
# paragraph's end (its end tag or an empty paragraph), "p" a paragraph's start, "t", "b" or "c" a
# tab, br or cr; a t holding elements gives its text, "<" and the child's first character.
_PLAIN_MARKS = re.compile(
    rf"""<{_PREFIX}(?:t(?=[\s>])[^>]*+(?<!/)(?=>)|(?=/{_PREFIX}p\s*>|p(?=[\s/])[^>]*+(?<=/)>|tab(?=[\s/>])"""
    rf"""|[bc]r(?=[\s/>])|p(?=[\s>])))(>[^<]*+(?:(?=</)|<.)|[tbc](?=ab|r)|p(?=[^>]*+(?<!/)>)|)"""
)
# the items joined by "<" (each text then starts "<>") where tabs or breaks stand: no paragraph
# starts inside another (an empty one only ends one) and none stands outside a paragraph
_INLINE_INSIDE = re.compile(r"(?:<>[^<]*+|<(?=<|$)|<p(?:<>[^<]*+|<[tbc](?=<|$))*+(?:<(?=<|$)|$))*+")


def _plain_texts(text: str) -> list[str] | None:
    """plain_paragraphs's answer for a member with no t holding elements (None for one: the marks
    then say), by a findall of a simpler regex whose items, joined by "<", make the paragraphs
    with string replacements: "<>" joins a text to what came before, "<p" (a start) goes, a tab or
    break becomes its character and a lone "<" ends a paragraph. With tabs or breaks the
    paragraphs must not nest and the tabs stand inside them (_INLINE_INSIDE), else None."""
    return _texts_of(_PLAIN_MARKS.findall(text))


def _texts_of(found: list[str]) -> list[str] | None:
    """_plain_texts's answer from _PLAIN_MARKS's items."""
    joined = marks = "<".join(["", *found])
    if marks.count("<") != len(found):
        return None  # a t holding elements
    if "<p" in marks:
        marks = marks.replace("<p", "")
    inline = [(mark, character) for mark, character in _INLINE_ITEMS if mark in marks]
    if inline:
        if not _INLINE_INSIDE.fullmatch(joined):
            return None
        for mark, character in inline:
            marks = marks.replace(mark, character)
    paragraphs = marks.replace("<>", "").split("<")
    if "&" in marks:
        paragraphs = [REFERENCE.sub(replace_reference, p) if "&" in p else p for p in paragraphs]
    return paragraphs


_INLINE_ITEMS = (("<t", "<>\t"), ("<b", "<>\n"), ("<c", "<>\n"))


def _inline_marks(found: list[tuple[str, ...]]) -> list[tuple[str, str]] | None:
    """The marks of the tabs and breaks among _PARAGRAPH_MARKS's matches with the characters they
    stand for; None when a t holds elements, or a tab or break stands outside a paragraph or a
    paragraph starts in another while there are tabs or breaks (an empty paragraph ends one here:
    its start is not seen). One pass over the matches, not one over the marks per kind."""
    inside = nested = outside = False
    kinds = set()
    for lone_end, _, end, start, _, _, start_end, empty, _, tab, br, cr, _, bad, _ in found:
        if start:
            nested |= inside
            inside = not start_end
        elif lone_end or end or empty:
            inside = False
        elif tab or br or cr:
            kinds.add(tab or br or cr)
            outside |= not inside
        elif bad:
            return None
    if kinds and (nested or outside):
        return None
    return [(f"{kind}>", "\t" if kind == "a" else "\n") for kind in sorted(kinds)]


class _Paragraphs(TextHandler):
    """Paragraphs of OOXML text (t in p, tab, br and cr inline): a whole member by plain_paragraphs
    when it can say what the events would."""

    # elements the handler reacts to beyond the paragraphs' own: a member holding one goes to the
    # events (reading the pieces between such tags by plain_paragraphs was tried: a piece per
    # table cell or slide shape costs more than the events)
    REFUSED: tuple[str, ...] = ()

    def __init__(self, out: Collector, where: str) -> None:
        super().__init__(out, where, frozenset({"t"}), frozenset({"p"}), inline=INLINE)

    def scan_whole(self, text: str, scan: Callable[[str], None]) -> bool:
        if not FAST_PARAGRAPHS or self._buffer or self._in_part or self._in_text:
            return False
        found = native_paragraphs(text, self.REFUSED, 0, False, self.out.chars_left)
        if found is False:
            return False  # the events stop where the reference stops
        paragraphs = found[0] if found else plain_paragraphs(text, self.REFUSED)
        if paragraphs is None or sum(map(len, paragraphs)) > self.out.chars_left:
            return False  # the events stop where the reference stops
        if type(self).clean is not TextHandler.clean:
            paragraphs = [self.clean(p) for p in paragraphs]
        # the member's text came from a strict UTF-8 decode and the scan refuses a reference to a
        # surrogate: its paragraphs hold no lone surrogate to look for
        self.out.add_all(self.where, paragraphs, decoded=bool(found))
        return True

    def scan_bytes(self, data: bytes) -> bool:
        """scan_whole's native answer from the member's bytes (member_paragraphs), when it has one."""
        if not FAST_PARAGRAPHS or self._buffer or self._in_part or self._in_text:
            return False
        found = member_paragraphs(data, self.REFUSED, 0, False, self.out.chars_left)
        if found is None:
            return False  # checked and decoded as before: scan_whole says
        paragraphs = found[0]  # within the budget: the C kept their bytes within it
        if type(self).clean is not TextHandler.clean:
            paragraphs = [self.clean(p) for p in paragraphs]
        self.out.add_all(self.where, paragraphs, decoded=True)  # strictly decoded, as scan_whole's
        return True


def _paragraphs(out: Collector, where: str) -> TextHandler:
    return _Paragraphs(out, where)


class _DocxHandler(_Paragraphs):
    """Paragraphs, each inside a table cell knowing its cell: tables numbered in order (a nested
    one gets its own number), rows and grid columns counted (a cell spanning two columns takes
    both)."""

    REFUSED = ("tbl",)  # a table's paragraphs know their cells: the events

    def __init__(self, out: Collector, where: str, tables: list[int]) -> None:
        super().__init__(out, where)
        self._tables = tables  # [tables seen so far], shared by the members of one document
        self._open: list[list[int]] = []  # [table, row, column, span] of each open table

    def scan_names(self) -> tuple[frozenset[str], frozenset[str]] | None:
        return self._names() | {"tbl", "tr", "tc", "gridSpan"}, frozenset({"gridSpan"})

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name == "tbl":
            self._open.append([self._tables[0], -1, -1, 1])
            self._tables[0] += 1
        elif self._open and name == "tr":
            self._open[-1][1:] = [self._open[-1][1] + 1, -1, 1]
        elif self._open and name == "tc":
            table = self._open[-1]
            table[2], table[3] = table[2] + table[3], 1
        elif self._open and name == "gridSpan":
            span = attrs.get("val", "1")
            self._open[-1][3] = min(max(_index(span), 1), 64)
        super().start(name, attrs)

    def end(self, name: str) -> None:
        super().end(name)
        if name == "tbl" and self._open:
            self._open.pop()

    def scan_whole(self, text: str, scan: Callable[[str], None]) -> bool:
        # the C scan follows a member's tables, or that it has none, in its one pass: no search
        # for a table first (on Word's markup that search alone cost some 5 ms a MB of text)
        if FAST_TABLES and FAST_PARAGRAPHS and (_native_ready() or "<tbl" in text or ":tbl" in text):
            return self._tables_whole(text)
        return super().scan_whole(text, scan)

    def scan_bytes(self, data: bytes) -> bool:
        """_tables_whole's native answer from the member's bytes (member_paragraphs), when it has one."""
        if not (FAST_TABLES and FAST_PARAGRAPHS) or self._buffer or self._in_part or self._in_text or self._open:
            return False
        found = member_paragraphs(data, (), self._tables[0], True, self.out.chars_left)
        if found is None:
            return False  # checked and decoded as before: scan_whole says
        paragraphs, cells, self._tables[0] = found  # within the budget: the C kept their bytes within it
        self.out.add_cells(self.where, paragraphs, cells, decoded=True)  # strictly decoded, as _tables_whole's
        return True

    def _tables_whole(self, text: str) -> bool:
        """A member with tables: its paragraphs by native_paragraphs, or else by plain_paragraphs
        (table tags give no text), each with the cell in force at its end, from one findall of the
        table tags and paragraph ends in document order (table_cells); False (the events) when
        neither can say, the paragraph ends disagree with its count, or the text would pass the
        budget."""
        if self._buffer or self._in_part or self._in_text or self._open:
            return False
        both = native_paragraphs(text, (), self._tables[0], True, self.out.chars_left)
        if both is False:
            return False  # the events stop where the reference stops
        native = both is not None  # no lone surrogate in its paragraphs (_Paragraphs.scan_whole)
        if both is None:
            both = paragraphs_and_cells(text, self._tables[0]) if FAST_ONE_FINDALL else None
        if both is None:
            paragraphs = plain_paragraphs(text)
            found = table_cells(text, self._tables[0]) if paragraphs is not None else None
            if paragraphs is None or found is None or len(found[0]) != len(paragraphs):
                return False
            both = paragraphs, *found
        paragraphs, cells, tables = both
        if sum(map(len, paragraphs)) > self.out.chars_left:
            return False  # the events stop where the reference stops
        self._tables[0] = tables
        self.out.add_cells(self.where, paragraphs, cells, decoded=native)
        return True

    def flush(self) -> None:
        if self._buffer:
            table = self._open[-1] if self._open else None
            cell = Cell(table[0], max(table[1], 0), max(table[2], 0)) if table else None
            self.out.add(self.where, self.clean("".join(self._buffer)), cell=cell)
        self._buffer, self._pending = [], 0


FAST_TABLES = True  # False: a docx member with tables through the events (table_cells is tested against them)


def _cell(table: int, row: int, column: int) -> Cell:
    """Cell(table, max(row, 0), max(column, 0)) as the events make it at a flush (a row or column
    not counted yet is 0), without the frozen dataclass's __init__: one a cell of a roster."""
    cell = object.__new__(Cell)
    cell.__dict__.update(table=table, row=row if row > 0 else 0, column=column if column > 0 else 0)
    return cell


# in document order: a table, row, cell or gridSpan tag ("/" of an end tag, the name, the rest of
# the tag), or a paragraph's end (its end tag, or an empty paragraph: no name). For a member
# plain_paragraphs read: every ">" ends a tag there, so [^<>]* stays inside one (and stops at the
# next "<" in any text, so a match is tried in time linear in the text: no "<tbl <tbl <tbl ...")
_TABLE_MARKS = re.compile(
    rf"<(/)?{_PREFIX}(?:(t(?:bl|[rc])|gridSpan)(?=[\s/>])([^<>]*+)|p(?(1)\s*|(?=[\s/])[^<>]*+(?<=/)))>"
)


def table_cells(text: str, first_table: int) -> tuple[list[Cell | None], int] | None:
    """The cell _DocxHandler's events would give each flush of a member plain_paragraphs read
    (one per paragraph end, then the final one), and the tables counted after it: tables
    numbered from first_table as they start, rows and grid columns counted (a gridSpan's columns
    taken by its cell, clamped to 1..64), the cell in force at a paragraph's end; None for a
    member whose tags the loop would not follow (a table's end with none open)."""
    cells: list[Cell | None] = []
    append = cells.append
    tables = first_table
    open_tables: list[list[int]] = []  # [table, row, column, span] of each open table
    cell: Cell | None = None
    moved = False  # a tag moved the cell since it was made
    for close, name, rest in _TABLE_MARKS.findall(text):
        if not name:  # a paragraph's end
            if moved:
                cell = _cell(*open_tables[-1][:3]) if open_tables else None
                moved = False
            append(cell)
        elif name == "tc":
            if open_tables and not close:
                table = open_tables[-1]
                table[2], table[3] = table[2] + table[3], 1
                moved = True
        elif name == "tr":
            if open_tables and not close:
                table = open_tables[-1]
                table[1:] = [table[1] + 1, -1, 1]
                moved = True
        elif name == "tbl":
            if close:
                if not open_tables:
                    return None
                open_tables.pop()
            else:
                if not rest.endswith("/"):
                    open_tables.append([tables, -1, -1, 1])
                tables += 1
            moved = True
        elif open_tables and not close:  # gridSpan: the next cell's columns
            open_tables[-1][3] = min(max(_index(attributes(rest).get("val", "1")), 1), 64)
    if moved:  # the final flush (a well-formed member has closed its tables by then)
        cell = _cell(*open_tables[-1][:3]) if open_tables else None
    append(cell)
    return cells, tables


FAST_ONE_FINDALL = True  # False: plain_paragraphs and table_cells, each its own findall (the reference)
# _PLAIN_MARKS's items, and the table tags table_cells follows as items of their own, longer than
# one character and not starting with ">": "/" and the prefix of a table's end, a table's start
# with the rest of its tag ("/" at its end when empty), "tr", "tc", "gridSpan" and its attributes
_TABLE_PLAIN_MARKS = re.compile(
    rf"""<{_PREFIX}(?:t(?=[\s>])[^>]*+(?<!/)(?=>)|(?=/{_PREFIX}p\s*>|p(?=[\s/])[^>]*+(?<=/)>|tab(?=[\s/>])"""
    rf"""|[bc]r(?=[\s/>])|p(?=[\s>])|/{_PREFIX}tbl\s*>|t(?:bl|[rc])(?=[\s/>])|gridSpan(?=[\s/>])))"""
    rf"""(>[^<]*+(?:(?=</)|<.)|/{_PREFIX}tbl|tbl[^<>]*+|t[rc]|gridSpan[^<>]*+|[tbc](?=ab|r)|p(?=[^>]*+(?<!/)>)|)"""
)


def paragraphs_and_cells(text: str, first_table: int) -> tuple[list[str], list[Cell | None], int] | None:
    """plain_paragraphs(text) and table_cells(text, first_table) from one findall (the marks of
    paragraphs and tables together: a roster's tags are read once, not twice); None where
    _plain_texts or table_cells would say None, or they disagree (the two then say)."""
    if text.count("<") != text.count(">"):
        return None
    if "\r" in text:
        text = _LINE_ENDS.sub("\n", text)
    found = _TABLE_PLAIN_MARKS.findall(text)
    paragraphs = _texts_of([item for item in found if len(item) < 2 or item[0] == ">"])
    if paragraphs is None:
        return None
    cells: list[Cell | None] = []
    append = cells.append
    tables = first_table
    open_tables: list[list[int]] = []  # [table, row, column, span] of each open table
    cell: Cell | None = None
    moved = False  # a tag moved the cell since it was made
    for item in found:
        if not item:  # a paragraph's end
            if moved:
                cell = _cell(*open_tables[-1][:3]) if open_tables else None
                moved = False
            append(cell)
        elif len(item) < 2 or item[0] == ">":
            continue  # a text, a paragraph's start, a tab or break
        elif item == "tc":
            if open_tables:
                table = open_tables[-1]
                table[2], table[3] = table[2] + table[3], 1
                moved = True
        elif item == "tr":
            if open_tables:
                table = open_tables[-1]
                table[1:] = [table[1] + 1, -1, 1]
                moved = True
        elif item[0] == "/":  # a table's end
            if not open_tables:
                return None
            open_tables.pop()
            moved = True
        elif item[0] == "t":  # a table's start
            if not item.endswith("/"):
                open_tables.append([tables, -1, -1, 1])
            tables += 1
            moved = True
        elif open_tables:  # gridSpan: the next cell's columns
            open_tables[-1][3] = min(max(_index(attributes(item[8:]).get("val", "1")), 1), 64)
    if moved:  # the final flush (a well-formed member has closed its tables by then)
        cell = _cell(*open_tables[-1][:3]) if open_tables else None
    append(cell)
    if len(cells) != len(paragraphs):
        return None
    return paragraphs, cells, tables


NATIVE_PARAGRAPHS = True  # False: plain_paragraphs and paragraphs_and_cells (native_paragraphs is tested against them)
_MAX_LIMIT = (1 << 62) - 1
try:
    from agent.content import _winnow as _native  # the C scan (setup.py); optional: pure-Python wheels
except ImportError:
    _native = None
if not hasattr(_native, "shared_strings"):  # none, or one built before the scans took their present form (a failed
    _native = None  # rebuild leaves the old one in place): the Python paths


def native_paragraphs(
    text: str, refused: tuple[str, ...], first_table: int, cells: bool, chars_left: int
) -> tuple[list[str], list[Cell | None] | None, int] | bool | None:
    """A whole member's paragraphs by the C scan (_winnow.ooxml_paragraphs: the events' start,
    end and text played in one pass over the text, about a sixth of plain_paragraphs's regex and
    replacements): the non-empty flushes, with cells their cells (each distinct cell made once)
    and the tables counted after them. False when they hold more than chars_left characters (the
    events then stop where the reference stops); None when the extension is absent or the scan
    does not follow the member (plain_paragraphs or paragraphs_and_cells then say)."""
    if not NATIVE_PARAGRAPHS or _native is None:
        return None
    limit = max(min(chars_left, _MAX_LIMIT), -1)  # a C ssize_t; -1 says over as any negative budget does
    found = _native.ooxml_paragraphs(text, refused, first_table, int(cells), limit)
    return _with_cells(found) if found else found


def _with_cells(
    found: tuple[list[str], list[int] | None, list[tuple[int, int, int]], int],
) -> tuple[list[str], list[Cell | None] | None, int]:
    """The C scan's answer with each flush's cell made from its index (each distinct cell once)."""
    paragraphs, index, seen, tables = found
    if index is None:
        return paragraphs, None, tables
    made: list[Cell | None] = [_cell(table, row, column) for table, row, column in seen]
    made.append(None)  # index -1: outside any table
    return paragraphs, [made[i] for i in index], tables


FAST_MEMBER_BYTES = True  # False: every member checked and decoded whole first (member_paragraphs is held to it)


def member_paragraphs(
    data: bytes, refused: tuple[str, ...], first_table: int, cells: bool, chars_left: int
) -> tuple[list[str], list[Cell | None] | None, int] | None:
    """native_paragraphs's answer on the text xmlscan.checked_text would give of a whole member,
    from its bytes (_winnow.member_paragraphs: when well_bound is sure of them and they are UTF-8,
    the bytes are scanned as they are and only the kept text decoded; on Word's markup the decode
    of the whole member cost as much as the scan). The paragraphs' bytes, so their characters, are
    within chars_left. None when it does not answer: then the member is checked and decoded as
    before (a member near the budget among them: the C counts bytes)."""
    # looked up here: a build before it has none (the text's way), the tests count calls of a stand-in _native
    scan = getattr(_native, "member_paragraphs", None)
    if not (FAST_MEMBER_BYTES and NATIVE_PARAGRAPHS and xmlscan.ENABLED and _vouched_by_well_bound()) or scan is None:
        return None
    limit = max(min(chars_left, _MAX_LIMIT), -1)
    found = scan(data, refused, first_table, int(cells), limit)
    return _with_cells(found) if found is not None else None


def _vouched_by_well_bound() -> bool:
    """Whether xmlscan.checked_text would take well_bound's word for a member (its switches on,
    the checks built): the one pass is that check, so it steps aside where the reference's
    parse was asked for."""
    return (
        xmlscan.FAST_GUARD_FIRST
        and xmlscan.FAST_NAMESPACES
        and xmlscan.FAST_WELL_BOUND
        and xmlscan._names_bound is not None
        and xmlscan._well_bound is not None
    )


def _native_ready() -> bool:
    """Whether native_paragraphs may answer (the switch on, the extension built)."""
    return NATIVE_PARAGRAPHS and _native is not None


_SLIDES = 2  # ooxml_paragraphs's mode for _SlideHandler: each flush's place (0 body, 1 footer, 2 header)
_PLACES = (BODY, FOOTER, HEADER)


def native_slide_paragraphs(text: str, chars_left: int) -> tuple[list[str], list[str]] | bool | None:
    """A slide member's paragraphs by the C scan, each with its place as _SlideHandler's events
    give it (the last sp start makes the body, a ph start its type's place); False past
    chars_left, None when the extension is absent or the scan does not follow the member."""
    if not NATIVE_PARAGRAPHS or _native is None:
        return None
    found = _native.ooxml_paragraphs(text, (), 0, _SLIDES, max(min(chars_left, _MAX_LIMIT), -1))
    if not found:
        return found
    return found[0], [_PLACES[i] for i in found[1]]


def read_docx(z: BoundedZip, out: Collector) -> None:
    _properties(z, out)
    for name in _numbered(z.names(), r"word/header(\d*)\.xml"):
        read_member(z, name, _paragraphs(out, HEADER), out)
    for name in _numbered(z.names(), r"word/footer(\d*)\.xml"):
        read_member(z, name, _paragraphs(out, FOOTER), out)
    tables = [0]
    for name in ("word/document.xml", "word/footnotes.xml", "word/endnotes.xml", "word/comments.xml"):
        read_member(z, name, _DocxHandler(out, BODY, tables), out)


_PLAIN_STRING = re.compile(r"""<si><t(?:\s+xml:space=(?:"preserve"|'preserve'))?\s*>([^<]*)</t></si>""")
# a worksheet's rows and their plain cells: attributes, then a value, no formula, no inline string
_SHEET_TOKEN = re.compile(r"<row(\s[^>]*?)?(/?)>|</row>|<c(\s[^>]*?)?(?:/>|>(?:<v>([^<]*)</v>)?</c>)")
_CELL_ATTRIBUTES = re.compile(r'\s*r="([A-Za-z]*[0-9]*)"(?:\s+s="[0-9]+")?(?:\s+t="([a-z]+)")?\s*')


NATIVE_STRINGS = True  # False: the findall and the events (native_strings is tested against the events)


def native_strings(text: str, chars_left: int) -> tuple[list[str], int] | bool | None:
    """A whole xl/sharedStrings.xml's strings as _SharedStrings's events make them, and the
    characters they count, by the C scan (_winnow.shared_strings: one pass over the member, rich
    text runs and phonetic guides followed; the findall reads plain strings only). False past
    chars_left (the events then stop where the reference stops); None when the extension is
    absent or the scan does not follow the member (the findall or the events then read it)."""
    if not NATIVE_STRINGS or _native is None:
        return None
    return _native.shared_strings(text, chars_left)  # any int: the C clamps it


class _SharedStrings(Handler):
    """xl/sharedStrings.xml kept in memory (within the text budget): sheets refer to it by index."""

    def __init__(self, out: Collector) -> None:
        self.out = out
        self.strings: list[str] = []
        self._buffer: list[str] = []
        self._in_text = self._in_phonetic = 0
        self._chars = 0

    def scan_names(self) -> tuple[frozenset[str], frozenset[str]] | None:
        return frozenset({"rPh", "t", "si"}), frozenset()

    def scan_whole(self, text: str, scan: Callable[[str], None]) -> bool:
        """The whole member by the C scan (runs, phonetic guides and all); else strings that are
        one plain <t> each (no runs, no phonetic guide), by one findall."""
        if self._buffer or self._in_text or self._in_phonetic:
            return False
        found = native_strings(text, self.out.chars_left - self._chars)
        if found is False:
            return False  # the events stop where the reference stops
        if found is not None:
            strings, chars = found
            self.strings.extend(strings)
            self._chars += chars
            return True
        if not text.lstrip().startswith(("<sst", "<?xml")) or "<sst" not in text:
            return False  # a prefixed or odd member: the events
        found = _PLAIN_STRING.findall(text)
        if len(found) != text.count("<si>") + text.count("<si ") or len(found) != text.count("<t>") + text.count("<t "):
            return False  # an item the findall skips, or a <t> outside an item (the events join it to the next)
        found = [text_of(t) if "&" in t or "\r" in t else t for t in found]
        if sum(map(len, found)) > self.out.chars_left:
            return False  # the events stop where the reference stops
        self.strings.extend(found)
        self._chars += sum(map(len, found))
        return True

    def leaf(self, name: str, attrs: dict[str, str], text: str) -> None:
        if name == "t":
            if text and not self._in_phonetic:
                self._chars += len(text)
                self.out.check_chars(self._chars)
                self._buffer.append(text)
        else:
            super().leaf(name, attrs, text)

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name == "rPh":
            self._in_phonetic += 1  # furigana of a Japanese cell: not the cell's text
        elif name == "t":
            self._in_text += 1

    def end(self, name: str) -> None:
        if name == "rPh":
            self._in_phonetic -= 1
        elif name == "t":
            self._in_text -= 1
        elif name == "si":
            self.strings.append("".join(self._buffer))
            self._buffer = []

    def wants_data(self) -> bool:
        return bool(self._in_text and not self._in_phonetic)

    def data(self, text: str) -> None:
        if self._in_text and not self._in_phonetic:
            self._chars += len(text)
            self.out.check_chars(self._chars)
            self._buffer.append(text)


class _SheetHandler(Handler):
    """A worksheet as a table: one body part per sheet, a line per row, cells separated by tabs in
    their columns (so a header row names the columns below it, as in a CSV). Cells are shared
    strings (resolved), inline strings, numbers and formula results; booleans and errors are not
    text. oddHeader/oddFooter (and even/first) are header and footer parts."""

    def __init__(self, out: Collector, shared: list[str], used: set[int]) -> None:
        self.out, self.shared, self.used = out, shared, used
        self._rows: list[str] = []
        self._row: list[str] = []
        self._cell: list[str] | None = None  # text of the cell being read
        self._cell_type = ""
        self._column = -1
        self._in_value = self._in_text = self._in_phonetic = 0
        self._band: str | None = None  # HEADER or FOOTER inside a header/footer element
        self._band_text: list[str] = []
        self._chars = 0

    def scan_names(self) -> tuple[frozenset[str], frozenset[str]] | None:
        return frozenset(HEADER_FOOTER_TAGS) | {"row", "c", "v", "rPh", "t", "worksheet"}, frozenset({"c"})

    def scan_whole(self, text: str, scan: Callable[[str], None]) -> bool:
        """sheetData by one tokenising pass when it holds rows of plain cells only (the events for
        the rest of the member); False when any other element is in it or the budget would run
        out in it (the events then stop where the reference stops)."""
        begin, end = text.find("<sheetData>"), text.find("</sheetData>")
        if begin < 0 or end < begin or self._cell is not None or self._band is not None or self._chars:
            return False
        begin += len("<sheetData>")
        if any(m.group(3) != "worksheet" for m in tag_matches(self, text[:begin])):
            return False  # a header or footer before the rows: the budget counts in the events' order
        rows_of = plain_rows if FAST_ROWS else _plain_rows
        cells = rows_of(text, begin, end, self.shared, self.out.chars_left)
        if cells is None:
            return False
        rows, row, chars, used = cells
        self._rows.extend(rows)
        self._row, self._chars = row, chars
        self.used.update(used)
        scan(text[:begin] + text[end:])
        return True

    def leaf(self, name: str, attrs: dict[str, str], text: str) -> None:
        if name == "v" and self._band is None:  # a cell's value: start, data and end in one
            if text and self._cell is not None:
                self._cell.append(text)
                self._chars += len(text)
                self.out.check_chars(self._chars)
        else:
            super().leaf(name, attrs, text)

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name in HEADER_FOOTER_TAGS:
            self._band, self._band_text = HEADER_FOOTER_TAGS[name], []
        elif name == "row":
            self._row = []
        elif name == "c":
            self._cell, self._cell_type = [], attrs.get("t", "n")
            self._column = _column_of(attrs.get("r", ""), len(self._row))
        elif name == "v":
            self._in_value += 1
        elif name == "rPh":
            self._in_phonetic += 1
        elif name == "t":
            self._in_text += 1

    def end(self, name: str) -> None:
        if name in HEADER_FOOTER_TAGS and self._band is not None:
            text = _SHEET_CODES.sub(lambda m: "&" if m.group() == "&&" else " ", "".join(self._band_text))
            if text.split():
                self.out.add(self._band, " ".join(text.split()))
            self._band = None
        elif name == "c" and self._cell is not None:
            self._end_cell()
        elif name == "row":
            if any(self._row):
                self._rows.append("\t".join(self._row))
            self._row = []
        elif name == "v":
            self._in_value -= 1
        elif name == "rPh":
            self._in_phonetic -= 1
        elif name == "t":
            self._in_text -= 1
        elif name == "worksheet":
            self.flush()

    def wants_data(self) -> bool:
        return self._band is not None or (
            self._cell is not None and bool(self._in_value or (self._in_text and not self._in_phonetic))
        )

    def data(self, text: str) -> None:
        if self._band is not None:
            self._band_text.append(text)
        elif self._cell is not None and (self._in_value or (self._in_text and not self._in_phonetic)):
            self._cell.append(text)
        else:
            return
        self._chars += len(text)
        self.out.check_chars(self._chars)

    def _end_cell(self) -> None:
        raw = "".join(self._cell or ())
        self._cell = None
        value = _cell_value(raw, self._cell_type, self.shared, self.used)
        pad = self._column - len(self._row)
        self._chars += pad + len(value) + 1 - len(raw)  # the raw text was counted as it came
        self.out.check_chars(self._chars)
        if value:
            self._row.extend([""] * pad)
            self._row.append(value)

    def flush(self) -> None:
        """The rows read so far become the sheet's part, as much of them as the budget holds."""
        text, self._rows, self._chars = "\n".join(self._rows), [], 0
        self.out.add(BODY, text[: max(self.out.chars_left, 0)])


def _index(raw: str) -> int:
    """A count or index the file writes in ASCII digits; -1 for anything else. str.isdigit() also
    holds for "²" or "①", which int() refuses, and int() refuses a string of over 4,300 digits:
    either ended the document's extraction as an internal error."""
    raw = raw.strip()
    return int(raw) if 0 < len(raw) <= 18 and raw.isascii() and raw.isdigit() else -1


def _cell_value(raw: str, cell_type: str, shared: list[str], used: set[int]) -> str:
    """A cell's text in the sheet's line: a shared string resolved (its index noted as used)."""
    if cell_type == "s":
        index = _index(raw)
        value = shared[index] if 0 <= index < len(shared) else ""
        used.add(index)
    elif cell_type in ("b", "e"):
        value = ""  # TRUE/FALSE and #N/A are not the sheet's text
    elif cell_type == "n":
        value = number_text(raw)
    else:  # str (a formula's text), inlineStr
        value = raw
    return " ".join(value.split())  # a cell's own line breaks and tabs would shift the table


def _plain_rows(
    text: str, begin: int, end: int, shared: list[str], chars_left: int
) -> tuple[list[str], list[str], int, set[int]] | None:
    """What _SheetHandler's events for text[begin:end] (a sheetData's rows) would leave: rows,
    the open row, the characters counted and the shared strings used; None when it holds anything
    but rows of plain cells, or the count would pass chars_left on the way."""
    rows: list[str] = []
    row: list[str] = []
    used: set[int] = set()
    chars, at = 0, begin
    for m in _SHEET_TOKEN.finditer(text, begin, end):
        if m.start() != at:
            return None
        at = m.end()
        row_attributes, empty_row, cell_attributes, raw = m.groups()
        if text[m.start() + 1] != "c":  # <row>, <row/> or </row>
            if text[m.start() + 1] == "r":
                row = []
                if not empty_row:
                    continue
            if any(row):
                rows.append("\t".join(row))
            row = []
            continue
        plain = _CELL_ATTRIBUTES.fullmatch(cell_attributes or "")
        if plain:
            ref, cell_type = plain.group(1), plain.group(2) or "n"
        else:
            found = attributes(cell_attributes or "")
            ref, cell_type = found.get("r", ""), found.get("t", "n")
        column = _column_of(ref, len(row))
        raw = raw or ""
        if raw:
            if "&" in raw or "\r" in raw:
                raw = text_of(raw)
            chars += len(raw)
            if chars > chars_left:
                return None
        value = _cell_value(raw, cell_type, shared, used)
        pad = column - len(row)
        chars += pad + len(value) + 1 - len(raw)
        if chars > chars_left:
            return None
        if value:
            row.extend([""] * pad)
            row.append(value)
    if at != end:
        return None
    return rows, row, chars, used


FAST_ROWS = True  # False: _plain_rows, the loop over match objects plain_rows is tested against
# the same tokens as _SHEET_TOKEN, as findall tuples: "r" and "/" of a <row>, "/" of a </row>; of a
# cell its reference's letters and type when its attributes are r (s) (t) only, else the attributes
_SHEET_CELL = re.compile(
    r"<(r)ow(?:\s[^>]*?)?(/?)>|<(/)row>|<c(?:\s+r=\"([A-Za-z]*)[0-9]*\"(?:\s+s=\"[0-9]+\")?(?:\s+t=\"([a-z]+)\")?\s*"
    r"|(\s[^>]*?))?(?:/>|>(?:<v>([^<]*)</v>)?</c>)"
)
_SHEET_CELLS = re.compile(rf"(?:{_SHEET_TOKEN.pattern})*+")  # nothing else between begin and end
_NO_SPACE = re.compile(r"\S*")  # a value " ".join(value.split()) leaves as it is (no white space)


FAST_SIMPLE_ROWS = True  # False: every sheet through plain_rows's loop (simple_rows is tested against it)
SIMPLE_COLUMNS = 64  # a row of more cells goes to the loop


def _simple_cell(letters: str) -> str:
    """A cell at column letters holding a shared string's index, or a number kept as written (a
    whole number's digits, or one with a fraction that is not all zeros). Possessive, with no two
    ways to read a digit: a crafted value of a million digits costs one pass, not a million."""
    return (
        rf'<c r="{letters}[0-9]+"(?: s="[0-9]+")?'
        rf'(?: t="s"><v>[0-9]{{1,18}}|(?: t="n")?><v>-?[0-9]++(?:\.0*+[1-9][0-9]*+)?)</v></c>'
    )


def _simple_sheet() -> re.Pattern[str]:
    """Rows whose cells stand in columns A, B, C, ... with none left out (then no cell pads its
    row), each row closed and holding one cell at least."""
    columns = [_column_letters(n) for n in range(1, SIMPLE_COLUMNS + 1)]
    cells = ""
    for letters in reversed(columns[1:]):
        cells = f"(?:{_simple_cell(letters)}{cells})?"
    return re.compile(rf"(?:<row(?:\s[^>/]*+)?>{_simple_cell(columns[0])}{cells}</row>)*+")


def _column_letters(column: int) -> str:
    """1 -> A, 27 -> AA (the inverse of _column_number)."""
    letters = ""
    while column:
        column, digit = divmod(column - 1, 26)
        letters = chr(ord("A") + digit) + letters
    return letters


_SIMPLE_SHEET = _simple_sheet()
_SIMPLE_SHARED = re.compile(r'<c r="[A-Z]+[0-9]+"(?: s="[0-9]+")? t="s"><v>[0-9]+</v></c>')
_SIMPLE_NUMBER = re.compile(r'<c r="[A-Z]+[0-9]+"(?: s="[0-9]+")?(?: t="n")?><v>')  # its value, then </v></c>
_SIMPLE_INDEX = re.compile(r' t="s"><v>([0-9]+)</v>')
_ROW_START = re.compile(r"<row[^>]*>")
# white space but the space (what str.split splits at; a test holds it to str.isspace)
_OTHER_SPACE = re.compile("[\t\n\x0b\x0c\r\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")


def _normalised(joined: str) -> bool:
    """Whether " ".join(value.split()) leaves each value joined by NUL as it is."""
    return not (
        _OTHER_SPACE.search(joined)
        or "  " in joined
        or " \x00" in joined
        or "\x00 " in joined
        or joined.startswith(" ")
        or joined.endswith(" ")
    )


def simple_rows(
    text: str, begin: int, end: int, shared: list[str], chars_left: int
) -> tuple[list[str], list[str], int, set[int]] | None:
    """plain_rows(...) for a sheet of simple rows (_SIMPLE_SHEET: no cell left out, so none pads its
    row) whose shared strings are all there and not blank, by a few passes over the whole text: the
    cells replaced by a tab and their value (a shared string's by a mark, then filled in), the rows
    by their lines. None when the sheet is not that simple or the budget comes near (the loop
    then says where it stops)."""
    if not _SIMPLE_SHEET.fullmatch(text, begin, end):
        return None
    sheet = text[begin:end]
    indexes = list(map(int, _SIMPLE_INDEX.findall(sheet)))
    if indexes and max(indexes) >= len(shared):
        return None
    values = list(map(shared.__getitem__, indexes))
    if values and not _normalised("\x00".join(values)):
        values = [" ".join(value.split()) for value in values]
    if not all(values):
        return None  # a blank shared string leaves its cell out of the row
    sheet = _SIMPLE_NUMBER.sub("\t", _SIMPLE_SHARED.sub("\t\x00", sheet)).replace("</v></c>", "")
    sheet = _ROW_START.sub("", sheet).replace("</row>", "\n").replace("\n\t", "\n")[1:-1]
    if values:
        pieces = sheet.split("\x00")
        sheet = "".join(chain.from_iterable(zip(pieces, values, strict=False))) + pieces[-1]
    chars = len(sheet) + 1 if sheet else 0  # a cell counts its value and a tab or line end
    if chars + 18 > chars_left:
        return None  # a shared string's index counts before its text: the loop says where it stops
    return (sheet.split("\n") if sheet else []), [], chars, set(indexes)


NATIVE_ROWS = True  # False: simple_rows alone (native_rows is tested against it)


def native_rows(
    text: str, begin: int, end: int, shared: list[str], chars_left: int
) -> tuple[list[str], list[str], int, set[int]] | None:
    """simple_rows(...) by the C scan (_winnow.sheet_rows: one pass over the rows, each row made
    from its values, about a seventh of simple_rows's regex passes); None when the extension is
    absent, or the sheet is not simple_rows's or holds a shared string simple_rows would normalise
    or leave out (simple_rows then says)."""
    if not NATIVE_ROWS or _native is None:
        return None
    return _native.sheet_rows(text, begin, end, shared, chars_left)  # any int: the C clamps it


def plain_rows(
    text: str, begin: int, end: int, shared: list[str], chars_left: int
) -> tuple[list[str], list[str], int, set[int]] | None:
    """_plain_rows(text, begin, end, shared, chars_left), from findall's tuples in one loop: the
    tokens' attributes read by the token regex itself, a shared string's spaces normalised once."""
    if FAST_SIMPLE_ROWS and (found := native_rows(text, begin, end, shared, chars_left)) is not None:
        return found
    if FAST_SIMPLE_ROWS and (found := simple_rows(text, begin, end, shared, chars_left)) is not None:
        return found
    if not _SHEET_CELLS.fullmatch(text, begin, end):
        return None
    rows: list[str] = []
    row: list[str] = []
    used: set[int] = set()
    normalised: dict[int, str] = {}
    columns: dict[str, int] = {}
    count = len(shared)
    chars = 0
    for is_row, empty_row, row_end, letters, plain_type, other, raw in _SHEET_CELL.findall(text, begin, end):
        if is_row or row_end:
            if is_row:
                row = []
                if not empty_row:
                    continue
            if row:  # a value is appended only when it is not empty: any(row)
                rows.append("\t".join(row))
            row = []
            continue
        width = len(row)
        if other:
            found = attributes(other)
            column, cell_type = _column_of(found.get("r", ""), width), found.get("t", "n")
        else:
            cell_type = plain_type or "n"
            if letters:
                if (column := columns.get(letters, -1)) < 0:
                    column = columns[letters] = _column_number(letters[:3].upper()) - 1
                column = min(max(column, width), 16383)
            else:
                column = width
        if raw:
            if "&" in raw or "\r" in raw:
                raw = text_of(raw)
            chars += len(raw)
            if chars > chars_left:
                return None
        if cell_type == "s":
            index = _index(raw)
            used.add(index)
            if 0 <= index < count:
                if (value := normalised.get(index)) is None:
                    value = normalised[index] = " ".join(shared[index].split())
            else:
                value = ""
        elif cell_type == "n":
            value = raw if raw.isdigit() and raw.isascii() else " ".join(number_text(raw).split())
        elif cell_type in ("b", "e"):
            value = ""
        else:
            value = raw if _NO_SPACE.fullmatch(raw) else " ".join(raw.split())
        pad = column - width
        chars += pad + len(value) + 1 - len(raw)
        if chars > chars_left:
            return None
        if value:
            if pad:
                row.extend([""] * pad)
            row.append(value)
    return rows, row, chars, used


def number_text(raw: str) -> str:
    """A numeric cell's value as the digits it holds when it is a whole number (1.2E+3 -> 1200,
    5.0 -> 5); other numbers as written. A number written in scientific notation with more than
    EXACT_DIGITS digits stays as written (1.10105194912311E+17): it is a double that kept about 15
    of them, the rest were lost when it was typed in, and spelling it out would make up an ID or a
    card number. Plain digits are the digits the file stores, however many."""
    text = raw.strip()
    if not any(c in text for c in ".eE"):
        return text  # the digits as the file stores them, however many
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    if not number.is_finite() or number != number.to_integral_value() or number.adjusted() >= MAX_INTEGER_DIGITS:
        return text
    if number.adjusted() >= EXACT_DIGITS:
        return text
    return str(int(number))


def _column_of(ref: str, next_column: int) -> int:
    """The zero-based column of a cell reference such as "C5" (the next column if it has none);
    at least next_column, at most Excel's last (XFD), so a crafted reference cannot go back or
    pad a row without bound."""
    letters = _LETTERS.match(ref)
    if not letters:
        return next_column
    return min(max(_column_number(letters.group().upper()) - 1, next_column), 16383)


_LETTERS = re.compile(r"[A-Za-z]{1,3}")


@cache
def _column_number(letters: str) -> int:
    """A1-style column letters as 1, 2, ... (at most 18,278 of them: ZZZ)."""
    column = 0
    for ch in letters:
        column = column * 26 + ord(ch) - ord("A") + 1
    return column


def read_xlsx(z: BoundedZip, out: Collector) -> None:
    _properties(z, out)
    shared = _SharedStrings(out)
    read_member(z, "xl/sharedStrings.xml", shared, out)
    used: set[int] = set()
    for name in _numbered(z.names(), r"xl/worksheets/sheet(\d*)\.xml"):
        sheet = _SheetHandler(out, shared.strings, used)
        try:
            read_member(z, name, sheet, out)
        finally:
            sheet.flush()  # a sheet cut short (budget, bad XML) keeps the rows read
    # strings no cell shows (deleted cells, or text hidden on purpose) are still the file's text
    out.add(BODY, "\n".join(t for i, t in enumerate(shared.strings) if i not in used))


class _SlideHandler(_Paragraphs):
    """Slide text is body, except in footer, date and slide-number placeholders."""

    PLACEHOLDERS = {"ftr": FOOTER, "dt": FOOTER, "sldNum": FOOTER, "hdr": HEADER}
    REFUSED = ("ph",)  # a placeholder may make its shape a footer: the events

    def __init__(self, out: Collector) -> None:
        super().__init__(out, BODY)

    def scan_names(self) -> tuple[frozenset[str], frozenset[str]] | None:
        return _SLIDE_NAMES  # self._names() | {"sp", "ph"}, and the attributes of ph

    def scan_bytes(self, data: bytes) -> bool:
        return False  # a slide's places: slide_parts reads its bytes (_read_slide), scan_whole its text

    def scan_whole(self, text: str, scan: Callable[[str], None]) -> bool:
        """A whole slide by the C scan, placeholders and all; else as any member of paragraphs
        (one with a placeholder then goes to the events)."""
        if not FAST_PARAGRAPHS or self._buffer or self._in_part or self._in_text or self.where != BODY:
            return False
        found = native_slide_paragraphs(text, self.out.chars_left)
        if found is False:
            return False  # the events stop where the reference stops
        if not found:
            return super().scan_whole(text, scan)
        paragraphs, places = found
        if type(self).clean is not TextHandler.clean:
            paragraphs = [self.clean(p) for p in paragraphs]
        _add_placed(self.out, paragraphs, places)
        return True

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name == "sp":
            self.where = BODY
        elif name == "ph":
            self.where = self.PLACEHOLDERS.get(attrs.get("type", ""), BODY)
        super().start(name, attrs)


_SLIDE_NAMES = (frozenset({"t", "p", "tab", "br", "cr", "sp", "ph"}), frozenset({"ph"}))  # _SlideHandler's scan_names


FAST_PLACED = True  # False: add_all per run of one place (the reference Collector.add_placed is tested against)


def _add_placed(out: Collector, paragraphs: list[str], places: list[str]) -> None:
    """A part per flush, in order, each in its place (add_all per run of one place, as in
    _Paragraphs.scan_whole: the scan's texts came from a strict decode)."""
    if FAST_PLACED:
        out.add_placed(places, paragraphs)
        return
    at = 0
    for place, same in groupby(places):
        count = len(list(same))
        out.add_all(place, paragraphs[at : at + count], decoded=True)
        at += count


FAST_SLIDES = True  # False: every slide by read_member and a _SlideHandler (the reference _read_slide is held to)


def _read_slide(z: BoundedZip, name: str, out: Collector) -> None:
    """read_member(z, name, _SlideHandler(out), out) for a slide or notes member, with the same
    parts, stops and refusals: a member of one chunk read by zipread's one_chunk, checked by
    xmlscan's guard and read by the C scan makes no handler, no generator and no events (some 800
    slides a MB of text paid for each). Anything else goes the way read_member goes."""
    if not (FAST_SLIDES and xmlscan.ENABLED and FAST_PARAGRAPHS) or name not in z.names():
        read_member(z, name, _SlideHandler(out), out)
        return
    data = z.one_chunk(name, out)
    if data is None:
        read_member(z, name, _SlideHandler(out), out)
        return
    try:
        out.check_time()  # chunks()'s check after the member's one chunk
    except OutOfBudget as e:
        stopped_after([data], e, _SlideHandler(out), name)  # raises
        raise
    slide_parts = getattr(_native, "slide_parts", None)  # looked up here: the tests count calls of a stand-in _native
    if slide_parts is not None and FAST_SLIDE_PARTS and NATIVE_PARAGRAPHS and _parts_read(slide_parts, data, name, out):
        return
    text = checked_text(data, name)
    found = native_slide_paragraphs(text, out.chars_left) if text is not None else None
    if found:
        _add_placed(out, *found)
        return
    handler = _SlideHandler(out)
    if text is None:
        parse([data], handler, name)  # the reference: it refuses what the guard refused
    else:
        scan_text(text, handler, _SLIDE_NAMES)
    handler.flush()


FAST_SLIDE_PARTS = True  # False: checked_text, native_slide_paragraphs, add_placed (the reference of _parts_read)
FAST_WELL_FORMED = True  # False: expat parses every slide first (the reference well_formed is held to)


def _parts_read(slide_parts: Callable[..., int | bool | None], data: bytes, name: str, out: Collector) -> bool:
    """What checked_text, native_slide_paragraphs and add_placed do with a slide member whose
    parts all fit the budget, in one C call (_winnow.slide_parts: the checks, the decode, the
    scan, the strip and the parts) once expat's plain parse, the guard, accepts it: some twenty
    Python calls a slide less. The parse is left out when _winnow.well_formed is sure it accepts
    the member (a strict subset of XML, which Office writes; a third of a slide's cost). False,
    nothing added: the member is read as before (a guard that refuses it, or anything
    slide_parts does not answer)."""
    limit = out.chars_left  # clamped to what C's long long holds: max(min(chars_left, _MAX_LIMIT), -1)
    if not -1 <= limit <= _MAX_LIMIT:
        limit = -1 if limit < -1 else _MAX_LIMIT
    # 2: well_bound's one pass before names_bound and well_formed (a build without well_bound reads 2 as accepted)
    unparsed = 2 if xmlscan.FAST_WELL_BOUND and xmlscan._well_bound is not None else 0
    if unparsed and FAST_MEMBER_BYTES:
        unparsed = 3  # the bytes scanned as they are when well_bound's pass is sure they are UTF-8
    chars = (
        slide_parts(data, out.parts, limit, budget.MAX_PARTS, TextPart, _PLACES, unparsed)
        if FAST_WELL_FORMED
        else False
    )
    if chars is False:  # not sure: expat says
        try:
            locked_parser(name, namespaces=False).Parse(data, True)
        except Exception:  # noqa: BLE001 (refused, malformed, an encoding expat lacks or Python does not know: the
            return False  # parse has no effect, and the path below refuses or reads the member as it always did
        chars = slide_parts(data, out.parts, limit, budget.MAX_PARTS, TextPart, _PLACES, True)
    if chars is None:
        return False
    out.chars_left -= chars
    return True


def read_pptx(z: BoundedZip, out: Collector) -> None:
    _properties(z, out)
    for name in _numbered(z.names(), r"ppt/slides/slide(\d*)\.xml"):
        _read_slide(z, name, out)
    for name in _numbered(z.names(), r"ppt/notesSlides/notesSlide(\d*)\.xml"):
        _read_slide(z, name, out)  # speaker notes: the body text a slide hides


READERS: dict[str, Callable[[BoundedZip, Collector], None]] = {
    "docx": read_docx,
    "xlsx": read_xlsx,
    "pptx": read_pptx,
}
