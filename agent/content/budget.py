"""What one extraction may spend: input bytes, text kept and wall-clock time.

Extraction runs on the pipeline thread, so the budget is enforced by checking the clock between
chunks, members and pages (no threads, no signals). Running out is not an error: the parts found so
far are kept and the Document is marked truncated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from itertools import compress, repeat

from agent.content.document import Cell, TextPart, has_surrogates

MAX_PARTS = 200_000  # a million one-character lines should not become a million objects
STRIPPED = " \r\n\f\v"  # from each end of a part's text; not tabs: a table's first cells may be empty


class OutOfBudget(Exception):
    """The byte, text or time budget ran out; what was found so far stands."""


class Refused(Exception):
    """The input is unsafe or malformed; the message says why and where."""


class Collector:
    """The parts found so far, and what is left of the budget."""

    def __init__(self, max_bytes: int, max_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._deadline = clock() + max_seconds
        self.bytes_left = max_bytes  # decompressed input we may still read
        self.chars_left = max_bytes  # text we may still keep
        self.parts: list[TextPart] = []
        self.truncated = False
        self.markup = False  # the text is what a page or an RTF document shows, not the file's own characters

    def check_time(self) -> None:
        if self._clock() > self._deadline:
            raise OutOfBudget("time")

    def seconds_left(self) -> float:
        return self._deadline - self._clock()

    def clock(self) -> float:
        """The clock the deadline is read on (time.monotonic unless a test gave another)."""
        return self._clock()

    def take_bytes(self, n: int) -> None:
        self.bytes_left -= n
        if self.bytes_left < 0:
            raise OutOfBudget("bytes")

    def check_chars(self, pending: int) -> None:
        """Text held in a buffer counts before it becomes a part (a 1 GB paragraph must not fit)."""
        if pending > self.chars_left:
            raise OutOfBudget("text")

    def add(self, where: str, text: str, page_line: int = 0, *, cell: Cell | None = None) -> None:
        if not text.strip():
            return
        text = text.strip(STRIPPED)
        self.check_chars(len(text))
        if len(self.parts) >= MAX_PARTS:
            raise OutOfBudget("parts")
        self.chars_left -= len(text)
        self.parts.append(TextPart(where, text, cell=cell, page_line=page_line))

    def add_all(
        self, where: str, texts: list[str], first_page_line: int = 0, cell: Cell | None = None, *, decoded: bool = False
    ) -> None:
        """add(where, text, page_line, cell=cell) for each text in order (page_line:
        first_page_line + its index, 0 when first_page_line is 0), the parts made at once when they all fit the budget
        and hold no surrogates (a part per paragraph or PDF line: add's checks and TextPart's
        __new__ cost more than reading the text); else add one by one, raising where add raises.
        decoded: the texts come from text.decode, which never gives a lone surrogate (its decoders
        are strict or replace what they cannot read), so they need no search for one."""
        kept = [t.strip(STRIPPED) for t in texts if t and not t.isspace()]  # what add keeps
        lines = range(first_page_line, first_page_line + len(texts)) if first_page_line else None
        if lines and len(kept) < len(texts):  # a blank text dropped: its line goes too
            lines = list(compress(lines, _not_blank(texts)))
        self._add_kept(where, kept, lines, repeat(cell), texts, decoded)

    def add_cells(self, where: str, texts: list[str], cells: list[Cell | None], *, decoded: bool = False) -> None:
        """add(where, text, cell=cell) for each text and its cell in order, the parts made at once
        as add_all makes them (when they all fit and hold no surrogates; else one by one, raising
        where add raises). decoded: as add_all's."""
        if len(texts) != len(cells):
            raise ValueError(f"{len(texts)} texts, {len(cells)} cells")
        kept = [t.strip(STRIPPED) for t in texts if t and not t.isspace()]  # what add keeps
        if len(kept) < len(texts):  # a blank text dropped: its cell goes too
            cells = list(compress(cells, _not_blank(texts)))
        self._add_kept(where, kept, None, cells, texts, decoded)

    def add_placed(self, places: list[str], texts: list[str]) -> None:
        """add_all(place, run, decoded=True) for each run of texts of one place, in order (a slide's
        flushes, each in its place): the parts made at once when they all fit the budget; else one
        by one, raising where add_all raises. The texts come from text.decode (as add_all's
        decoded)."""
        if len(places) != len(texts):
            raise ValueError(f"{len(texts)} texts, {len(places)} places")
        kept = [t.strip(STRIPPED) for t in texts if t and not t.isspace()]  # what add keeps
        if len(kept) < len(texts):  # a blank text dropped: its place goes too
            places = list(compress(places, _not_blank(texts)))
        self._add_kept(places, kept, None, repeat(None), texts, True)

    def _add_kept(
        self,
        wheres: str | list[str],
        kept: list[str],
        lines: Sequence[int] | None,
        cells: Iterable[Cell | None],
        texts: list[str],
        decoded: bool,
    ) -> None:
        """The parts of add_all, add_cells and add_placed: kept (stripped, none blank) in one place
        or each in its own (wheres), with their page lines (None: 0) and cells."""
        chars = sum(map(len, kept))
        places = repeat(wheres) if isinstance(wheres, str) else wheres
        if (
            chars > self.chars_left
            or len(self.parts) + len(kept) > MAX_PARTS
            or (not decoded and has_surrogates("".join(texts)))
        ):
            # kept is the shortest: the places, page lines and cells may be repeat()s
            for where, text, page_line, cell in zip(places, kept, lines or repeat(0), cells, strict=False):
                self.add(where, text, page_line, cell=cell)
            return
        # tuple.__new__ makes the tuples TextPart(where, text, cell, page_line) makes (readable(text)
        # is text here), mapped by C: no Python bytecode per part
        fields = zip(places, kept, cells, lines or repeat(0), strict=False)  # kept is the shortest
        self.parts.extend(map(tuple.__new__, repeat(TextPart), fields))
        self.chars_left -= chars


def _not_blank(texts: list[str]) -> list[bool]:
    return [bool(t) and not t.isspace() for t in texts]
