"""Context words, near a number or in the header of its column.

A number means what its column header says: a CSV or TXT table whose header names 手机 makes each
value below a mobile number, a 卡号 column makes Luhn-valid values cards, an 订单号 column makes
them order numbers. Tables come in three shapes:

- lines of a part or of consecutive parts (CSV, TXT, a worksheet, PDF text) split by tabs, commas
  (quotes respected) or runs of spaces; a header is a line of at least two short cells, one
  holding a context word, with no long digit run. It governs the lines after it until another
  header, a change of place, or MAX_GAP_LINES lines that are not rows of it;
- space-separated rows whose cell count differs from the header's (an empty or two-word cell):
  the value gets the context of every header column (order and card words cancel out);
- docx table cells (TextPart.cell): the first row with a context word and no long digit run is
  the table's header.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate, compress, count
from operator import attrgetter, itemgetter, ne

import re2

from agent.content.document import Cell, TextPart
from agent.content.lazy import lazy

np = lazy("numpy", globals(), "np")  # only where a long text is scanned (agent/content/lazy.py)

MOBILE, CARD, NOT_CARD = "mobile", "card", "not_card"
MAX_GAP_LINES = 3  # wrapped cells and notes inside a table do not end it
MAX_HEADER_CELL_CHARS = 24
MAX_ROW_CHARS = 4096  # a longer line is prose (or a crafted file), never a header or a row
NO_TAGS: frozenset[str] = frozenset()


def _compile(pattern: str) -> re2._Regexp:
    options = re2.Options()
    options.log_errors = False
    return re2.compile(pattern, options)


_WORDS = {
    MOBILE: _compile(r"手机|电话|联系方式|联系人|(?i:phone|mobile|\bcell|(?:^|[^a-z])tel)"),
    CARD: _compile(r"卡号|银行卡|借记卡|信用卡|储蓄卡|账号|帐号|账户|帐户|开户|(?i:card|account|acct|a/c)"),
    NOT_CARD: _compile(
        r"订单|单号|流水|快递|运单|物流|发票|工单|批次|序列号|串号|编号|合同号|交易号|对公|企业账户|公司账户"
        r"|(?i:order|tracking|invoice|serial|iccid|imei|meid|\bsim\b|sku|\bref\b)"
    ),
}
_ANY_WORD = _compile("|".join(f"(?:{w.pattern})" for w in _WORDS.values()))
# the words with their boundaries and anchors dropped: text none of them is in holds no context
# word, nor does any window cut from it and joined by a space (no word holds a space)
ANY_WORD_LOOSE = _compile(_ANY_WORD.pattern.replace(r"\b", "").replace("(?:^|[^a-z])", ""))
_LONG_DIGITS = _compile(r"[0-9]{7}")
_SEVEN_DIGITS = re.compile(_LONG_DIGITS.pattern)  # Python's re: the same ASCII class, no backtracking
_SPACES = re.compile(r"[^\t\n\f\r ]+")  # RE2's \S: \s is [\t\n\f\r ] there (Python's re: linear for this one)


def tags_of(text: str) -> frozenset[str]:
    """The kinds of context words text holds."""
    if _ANY_WORD.search(text) is None:
        return NO_TAGS
    return frozenset(tag for tag, words in _WORDS.items() if words.search(text))


def tags_of_each(texts: list[str]) -> list[frozenset[str]]:
    """tags_of of each text, from one RE2 pass per kind of word over the texts joined by line
    breaks (the wrapper's call costs more than a short text's search). No word holds a line break
    but "[^a-z]" before tel, which a break before a text satisfies as the text's start (^) does;
    \\b sees a break as the text's edge. So every match lies in one text, or starts on the break
    before it, and is counted where its last character is."""
    found: list[set[str]] = [set() for _ in texts]
    joined = "\n".join(texts)
    ends = list(accumulate(len(t) + 1 for t in texts))
    for tag, words in _WORDS.items():
        for m in words.finditer(joined):
            found[bisect.bisect_right(ends, m.end() - 1)].add(tag)
    return [frozenset(tags) if tags else NO_TAGS for tags in found]


@dataclass(frozen=True)
class _Header:
    delimiter: str  # "\t", "," or " " (runs of white space)
    columns: tuple[frozenset[str], ...]  # the context of each column
    union: frozenset[str]  # of all columns, card and order words cancelled


def _cells(line: str, delimiter: str) -> list[tuple[int, int]]:
    """(start, end) of each cell; commas inside double quotes do not split."""
    if delimiter == " ":
        return [m.span() for m in _SPACES.finditer(line)]
    spans: list[tuple[int, int]] = []
    if '"' not in line:
        start = 0
        for piece in line.split(delimiter):
            spans.append((start, start + len(piece)))
            start += len(piece) + 1
        return spans
    start, quoted = 0, False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == delimiter and not quoted:
            spans.append((start, i))
            start = i + 1
    spans.append((start, len(line)))
    return spans


def _header(line: str) -> _Header | None:
    if _SEVEN_DIGITS.search(line) is not None or _ANY_WORD.search(line) is None:  # re first: a tenth of RE2's call
        return None
    delimiter = "\t" if "\t" in line else "," if "," in line else " "
    cells = [line[a:b].strip(' "') for a, b in _cells(line, delimiter)]
    if len(cells) < 2 or any(len(c) > MAX_HEADER_CELL_CHARS for c in cells):
        return None
    columns = tuple(tags_of(c) for c in cells)
    if not any(columns):
        return None
    union = frozenset().union(*columns)
    if CARD in union and NOT_CARD in union:
        union -= {CARD, NOT_CARD}
    return _Header(delimiter, columns, union)


def _is_row(line: str, header: _Header) -> bool:
    return len(_cells(line, header.delimiter)) >= 2 if header.delimiter == " " else header.delimiter in line


_ANY_WORD_LINES = _compile("(?m)" + _ANY_WORD.pattern)  # ^ at every line's start, as per line


def _header_candidates(texts: list[str], utf8: bytes | None = None) -> dict[int, set[int]]:
    """The lines (part -> line numbers in it) holding a context word: one RE2 pass over the parts
    joined by "\\n" (utf8: those bytes, when the caller has them already). A match is the line's
    where it ends ("[^a-z]tel" may start on the "\\n" before the line); no other part of the words
    matches a line break. RE2 reads the UTF-8 bytes (the same matches, at byte offsets): given a
    str, its wrapper encodes the whole text and converts every offset back to characters. A
    match's line is the line breaks before it, counted from the match before (bytes.count)."""
    joined = "\n".join(texts).encode() if utf8 is None else utf8
    lines, line, counted_to = [], 0, 0
    for m in _ANY_WORD_LINES.finditer(joined):
        at = max(m.end() - 1, m.start())
        line += joined.count(b"\n", counted_to, at)
        counted_to = at
        lines.append(line)
    if not lines:
        return {}
    if joined.count(b"\n") == len(texts) - 1:  # no part holds a line break: line i is part i
        return {line: {0} for line in lines}
    first_line = [0, *accumulate(t.count("\n") + 1 for t in texts)]
    found: dict[int, set[int]] = {}
    for line in lines:
        part = bisect.bisect_right(first_line, line) - 1
        found.setdefault(part, set()).add(line - first_line[part])
    return found


def header_candidates_by_bisection(texts: list[str]) -> dict[int, set[int]]:
    """_header_candidates with every line end listed and bisected: the reference of its numpy."""
    joined = "\n".join(texts).encode()
    matches = list(_ANY_WORD_LINES.finditer(joined))
    line_ends = list(accumulate(map((1).__add__, map(len, joined.split(b"\n")))))
    first_line = [0, *accumulate(t.count("\n") + 1 for t in texts)]
    found: dict[int, set[int]] = {}
    for m in matches:
        line = bisect.bisect_right(line_ends, max(m.end() - 1, m.start()))
        part = bisect.bisect_right(first_line, line) - 1
        found.setdefault(part, set()).add(line - first_line[part])
    return found


@dataclass(frozen=True)
class _Rows:
    """Table rows in offsets of the parts joined by "\n" (column_bits): row i spans starts[i] to
    ends[i] under header headers[i]; delimiters and table (bits of each column, a zero column
    last for those past the header's) by header."""

    starts: np.ndarray
    ends: np.ndarray
    headers: np.ndarray
    delimiters: np.ndarray
    table: np.ndarray


_WHERE, _TEXT, _CELL = itemgetter(0), itemgetter(1), itemgetter(2)
_WHERE_OF, _CELL_OF = attrgetter("where"), attrgetter("cell")


class ColumnContext:
    """The header context of any position in any part of a document; built on first use."""

    def __init__(
        self,
        parts: Sequence[tuple[str, str, Cell | None]] | Callable[[], Sequence[tuple[str, str, Cell | None]]],
        utf8: Callable[[], bytes] | None = None,
        candidates: dict[int, set[int]] | None = None,
        listed: tuple[Sequence[TextPart], list[str]] | None = None,
    ) -> None:
        self._parts = parts  # (where, normalised text, cell) of each part, or what makes them when first read
        self._utf8 = utf8  # the texts joined by "\n" as UTF-8, made by the caller once (None: encoded here)
        # lines that may be headers, when the caller knows a superset of _header_candidates' (every
        # line where ANY_WORD_LOOSE matches): a line without a context word is never a header, so
        # more candidates only mean more lines read one by one, never another answer
        self._candidates = candidates
        # the document's parts and their normalised texts, when the caller has them: where and cell
        # are read off the parts, so the rows need no (where, text, cell) tuple a part
        self._listed = listed
        self._lines: list[list[tuple[int, int, _Header]]] | None = None
        self._cell_headers: dict[int, tuple[int, dict[int, frozenset[str]]]] | None = None
        self._cell_ends: dict[tuple[int, int], list[int]] = {}  # of the table rows asked about
        self._flat: _Rows | None = None  # the rows of _lines in joined offsets (column_bits)
        self._in_cell: np.ndarray | None = None  # whether each part is a table cell (column_bits)
        self._marks: dict[str, np.ndarray] = {}  # positions of "," "\t" and '"' in the joined parts (column_bits)

    @property
    def parts(self) -> Sequence[tuple[str, str, Cell | None]]:
        """(where, normalised text, cell) of each part: a document whose numbers need no column
        context (prose with a card word beside each card) never lists them."""
        if callable(self._parts):
            self._parts = self._parts()
        return self._parts

    def tags_at(self, part: int, pos: int) -> frozenset[str]:
        cell = self.parts[part][2]
        if cell is not None:
            return self._cell_tags(cell)
        if self._lines is None:
            self._lines = self._table_lines()
        lines = self._lines[part]
        i = bisect.bisect_right(lines, pos, key=lambda r: r[0]) - 1
        if i < 0 or not lines[i][0] <= pos <= lines[i][1]:
            return NO_TAGS
        start, end, header = lines[i]
        ends = self._cell_ends.get((part, start))
        if ends is None:
            ends = [b for _, b in _cells(self.parts[part][1][start:end], header.delimiter)]
            self._cell_ends[(part, start)] = ends
        if header.delimiter == " " and len(ends) != len(header.columns):
            return header.union
        column = bisect.bisect_left(ends, pos - start)
        return header.columns[column] if column < len(header.columns) else NO_TAGS

    def column_bits(
        self,
        parts: np.ndarray,
        positions: np.ndarray,
        points: Callable[[], np.ndarray],
        part_starts: np.ndarray,
        bits: Callable[[frozenset[str]], int],
    ) -> np.ndarray:
        """bits(tags_at(part, position)) for many positions at once (positions in the parts joined by
        "\n": points gives their characters, asked once; part_starts, where each part starts). In a comma or tab
        table row without quotes, a position's column is the number of delimiters before it in its
        row (tags_at's bisection of the cells' ends): those are counted with numpy, the rest (cells,
        space-separated rows, quoted rows) asked of tags_at one by one."""
        out = np.zeros(len(parts), dtype=np.int64)
        if not len(parts):
            return out
        slow = self._cells()[parts]
        rows = None if slow.all() else self._rows(part_starts, bits, points)
        marks = self._marks if rows is not None else {}
        if rows is not None and len(rows.starts):  # no rows: NO_TAGS outside the cells
            row = np.searchsorted(rows.starts, positions, side="right") - 1
            inside = ~slow & (row >= 0) & (positions <= rows.ends[np.maximum(row, 0)])
            row = np.where(inside, row, 0)
            header = rows.headers[row]
            fast = inside & (rows.delimiters[header] != ord(" "))
            for delimiter in (",", "\t"):
                at, quotes = marks[delimiter], marks['"']
                mine = fast & (rows.delimiters[header] == ord(delimiter))
                quoted = np.searchsorted(quotes, rows.ends[row]) > np.searchsorted(quotes, rows.starts[row])
                counted = mine & ~quoted
                column = np.searchsorted(at, positions) - np.searchsorted(at, rows.starts[row])
                column = np.minimum(column, rows.table.shape[1] - 1)
                out[counted] = rows.table[header[counted], column[counted]]
                slow |= mine & quoted
            slow |= inside & ~fast
        for k in np.flatnonzero(slow).tolist():
            part = int(parts[k])
            out[k] = bits(self.tags_at(part, int(positions[k] - part_starts[part])))
        return out

    def _header_candidates(self) -> dict[int, set[int]]:
        if self._candidates is not None:
            return self._candidates
        return _header_candidates(self._texts(), None if self._utf8 is None else self._utf8())

    def _texts(self) -> list[str]:
        return list(map(_TEXT, self.parts)) if self._listed is None else self._listed[1]

    def _wheres(self) -> list[str]:
        return list(map(_WHERE, self.parts)) if self._listed is None else list(map(_WHERE_OF, self._listed[0]))

    def _cell_of_each(self) -> list[Cell | None]:
        return list(map(_CELL, self.parts)) if self._listed is None else list(map(_CELL_OF, self._listed[0]))

    def _cells(self) -> np.ndarray:
        """Whether each part is a table cell."""
        if self._in_cell is None:
            cells = self._cell_of_each()
            self._in_cell = np.zeros(len(cells), dtype=bool)
            self._in_cell[list(compress(count(), cells))] = True
        return self._in_cell

    def _rows(
        self, part_starts: np.ndarray, bits: Callable[[frozenset[str]], int], points_of: Callable[[], np.ndarray]
    ) -> _Rows:
        """Every table row in joined offsets (_table_rows), and the bits of every header's columns;
        the positions of the delimiters and quotes kept (self._marks), not the characters."""
        if self._flat is None:
            points = points_of()
            self._marks = {mark: np.flatnonzero(points == ord(mark)) for mark in (",", "\t", '"')}
            starts, ends, headers, unique = self._table_rows(points, part_starts)
            table = np.zeros((len(unique), 1 + max((len(h.columns) for h in unique), default=0)), dtype=np.int64)
            for i, h in enumerate(unique):
                table[i, : len(h.columns)] = [bits(c) for c in h.columns]
            delimiters = np.array([ord(h.delimiter) for h in unique], dtype=np.int64)
            self._flat = _Rows(starts, ends, headers, delimiters, table)
        return self._flat

    def rows_by_lines(self, part_starts: np.ndarray) -> list[tuple[int, int, _Header]]:
        """The rows of _table_lines in joined offsets: the reference of _table_rows."""
        if self._lines is None:
            self._lines = self._table_lines()
        bases, lines = part_starts.tolist(), self._lines
        return [(bases[p] + a, bases[p] + b, h) for p in compress(count(), lines) for a, b, h in lines[p]]

    def _table_rows(
        self, points: np.ndarray, part_starts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[_Header]]:
        """_table_lines' rows in joined offsets (starts, ends, the index of each one's header in
        the headers listed), without a Python step per row: every line's delimiters, length and
        part are read with numpy, and under a comma or tab header the lines up to the next one
        that may change something (a header candidate, a line without the delimiter, the first line
        of a part of another place or a cell) are rows or too long, at once. Space-separated
        tables, and every line that may change something, go line by line as in _table_lines."""
        texts = self._texts()
        count_parts = len(texts)
        breaks = np.flatnonzero(points == ord("\n"))
        line_starts = np.concatenate([[0], breaks + 1])
        line_ends = np.concatenate([breaks, [len(points)]])
        line_part = np.searchsorted(part_starts, line_starts, side="right") - 1
        first_line = np.searchsorted(line_part, np.arange(count_parts + 1))  # of each part (and past the last)
        long = line_ends - line_starts > MAX_ROW_CHARS
        wheres = self._wheres()
        cell_part = self._cells()
        reset_part = cell_part.copy()  # a header ends where the place changes, and at a cell
        reset_part[0] = True
        reset_part[1:] |= np.fromiter(map(ne, wheres[1:], wheres[:-1]), dtype=bool, count=count_parts - 1)
        stop = np.zeros(len(line_starts), dtype=bool)  # lines where a header may start or end
        stop[first_line[:-1][reset_part]] = True
        candidates = sorted(
            int(first_line[part]) + number for part, numbers in self._header_candidates().items()
            for number in numbers
        )  # fmt: skip
        stop[candidates] = True
        plain = {}  # delimiter -> lines that are rows or too long under its header, and that change nothing
        for delimiter in (",", "\t"):
            at = self._marks[delimiter] if delimiter in self._marks else np.flatnonzero(points == ord(delimiter))
            holds = np.searchsorted(at, line_ends) > np.searchsorted(at, line_starts)
            plain[delimiter] = np.flatnonzero(stop | ~(holds | long))  # the next one that may change something
        found_lines: list[np.ndarray] = []
        found_headers: list[int] = []
        unique: dict[int, tuple[int, _Header]] = {}
        header: _Header | None = None
        gap, i, total = 0, 0, len(line_starts)
        is_candidate = set(candidates)
        while i < total:
            part = int(line_part[i])
            if cell_part[part]:  # never a table of lines, and it ends the one before
                header, i = None, int(first_line[part + 1])
                continue
            if i == first_line[part] and reset_part[part]:
                header = None
            if header is None:
                k = bisect.bisect_left(candidates, i)
                if k == len(candidates):
                    break
                if candidates[k] != i:
                    i = candidates[k]  # the lines before it change nothing
                    continue
            elif header.delimiter != " " and not stop[i]:
                nexts = plain[header.delimiter]
                k = int(np.searchsorted(nexts, i))
                j = int(nexts[k]) if k < len(nexts) else total
                if j > i:
                    block = np.arange(i, j)
                    block = block[~long[block]]
                    if len(block):
                        found_lines.append(block)
                        found_headers.append(unique.setdefault(id(header), (len(unique), header))[0])
                        gap = 0
                    i = j
                    continue
            text = texts[part]
            start, end = int(line_starts[i] - part_starts[part]), int(line_ends[i] - part_starts[part])
            line = text[start:end]
            if len(line) > MAX_ROW_CHARS:
                pass
            elif i in is_candidate and (new := _header(line)) is not None:
                header, gap = new, 0
            elif header is not None and _is_row(line, header):
                found_lines.append(np.array([i]))
                found_headers.append(unique.setdefault(id(header), (len(unique), header))[0])
                gap = 0
            elif header is not None and line.strip():
                gap += 1
                if gap > MAX_GAP_LINES:
                    header = None
            i += 1
        lines = np.concatenate(found_lines) if found_lines else np.zeros(0, dtype=np.int64)
        headers = np.repeat(np.array(found_headers, dtype=np.int64), [len(b) for b in found_lines])
        return line_starts[lines], line_ends[lines], headers, [h for _, h in unique.values()]

    def _table_lines(self) -> list[list[tuple[int, int, _Header]]]:
        """For each part, its lines that are rows of a table with a header: (start, end, header).

        Only a line holding a context word can be a header: those are found in one pass over the
        whole text (_header_candidates), and the parts before a header are skipped unread."""
        found: list[list[tuple[int, int, _Header]]] = [[] for _ in self.parts]
        candidates = self._header_candidates()
        with_candidates = sorted(candidates)
        header: _Header | None = None
        gap, last_where = 0, None
        index = 0
        while index < len(self.parts):
            if header is None:  # nothing to carry: on to the next part that may hold a header
                at = bisect.bisect_left(with_candidates, index)
                if at == len(with_candidates):
                    break
                index = with_candidates[at]
                last_where = self.parts[index - 1][0] if index else None
            where, text, cell = self.parts[index]
            rows = found[index]
            lines_here = candidates.get(index, ())
            index += 1
            if where != last_where or cell is not None:
                header, last_where = None, where
            if cell is not None:
                continue
            start = 0
            for number, line in enumerate(text.split("\n")):
                end = start + len(line)
                if len(line) > MAX_ROW_CHARS:
                    pass
                elif number in lines_here and (new := _header(line)) is not None:
                    header, gap = new, 0
                elif header is not None and _is_row(line, header):
                    rows.append((start, end, header))
                    gap = 0
                elif header is not None and line.strip():
                    gap += 1
                    if gap > MAX_GAP_LINES:
                        header = None
                start = end + 1
        return found

    def _cell_tags(self, cell: Cell) -> frozenset[str]:
        if self._cell_headers is None:
            self._cell_headers = self._docx_headers()
        row, columns = self._cell_headers.get(cell.table, (-1, {}))
        return columns.get(cell.column, NO_TAGS) if cell.row > row >= 0 else NO_TAGS

    def _docx_headers(self) -> dict[int, tuple[int, dict[int, frozenset[str]]]]:
        """For each table, its header row and the context of each of its columns."""
        rows: dict[tuple[int, int], dict[int, list[str]]] = {}
        for _, text, cell in self.parts:
            if cell is not None:
                rows.setdefault((cell.table, cell.row), {}).setdefault(cell.column, []).append(text)
        headers: dict[int, tuple[int, dict[int, frozenset[str]]]] = {}
        for (table, row), cells in sorted(rows.items()):
            if table in headers:
                continue
            texts = {column: " ".join(t) for column, t in cells.items()}
            if any(_LONG_DIGITS.search(t) for t in texts.values()):
                continue
            columns = {column: tags_of(t) for column, t in texts.items() if len(t) <= MAX_HEADER_CELL_CHARS}
            if any(columns.values()):
                headers[table] = (row, columns)
        return headers


def table_lines_by_line(parts: Sequence[tuple[str, str, Cell | None]]) -> list[list[tuple[int, int, _Header]]]:
    """ColumnContext._table_lines read line by line, every line searched for a header: the
    reference it must equal (tests/agent/content/test_identifier_whole.py)."""
    found: list[list[tuple[int, int, _Header]]] = []
    header: _Header | None = None
    gap, last_where = 0, None
    for where, text, cell in parts:
        rows: list[tuple[int, int, _Header]] = []
        found.append(rows)
        if where != last_where or cell is not None:
            header, last_where = None, where
        if cell is not None:
            continue
        start = 0
        for line in text.split("\n"):
            end = start + len(line)
            if len(line) > MAX_ROW_CHARS:
                pass
            elif (new := _header(line)) is not None:
                header, gap = new, 0
            elif header is not None and _is_row(line, header):
                rows.append((start, end, header))
                gap = 0
            elif header is not None and line.strip():
                gap += 1
                if gap > MAX_GAP_LINES:
                    header = None
            start = end + 1
    return found
