"""A page's text objects laid out into lines and spaces the way PDFium's text page does
(core/fpdftext/cpdf_textpage.cpp, read for its rules, not copied), so the fast reader gives the
same page text as FPDFText_LoadPage + FPDFText_GetText:

- objects are gathered while they stay on one line (the baseline moves by less than half the
  wider of the two glyphs at the join), sorted by x within it, then taken in that order;
- between two objects: a line break when the baseline moves by more than a fraction of a glyph's
  width (or their boxes stop overlapping vertically), else a space when the gap from the previous
  glyph's end is wider than a threshold from the glyph widths and neither side is a space;
- inside a TJ: a space where a kerning gap is at least half the font's space width (or a share of
  the glyph's width where the font has no space);
- a glyph repeating the same code within 0.07 em of one of the 7 before it is dropped (fake bold);
- runs of spaces in a line collapse to one; ligatures U+FB00-FB06 are spelled out.

PDFium measures glyph boxes from the font program, which this reader does not load: where a rule
turns on a glyph box (the vertical overlap of two objects, the direction of a page of one-glyph
objects, a duplicate object) and bounds from the font's ascent and descent do not settle it, the
page is Unsure and the document goes to PDFium. Right-to-left text, hyphens at a line end (PDFium
joins the word) and ties within float rounding of a threshold are Unsure too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from agent.content.pdf_content import Column, TextObject
from agent.content.pdf_objects import Unsure

try:  # PageLayout.text in C for pages of TextObjects (setup.py builds it where a compiler exists)
    from agent.content import _pdflayout
except ImportError:  # pragma: no cover - a pure wheel: the Python layout below, the same text
    _pdflayout = None

FAST_C = True  # False: PageLayout.text's Python layout only (the reference the C layout is held to)


def in_c() -> bool:
    """Whether pages of TextObjects are laid out in C (some 0.3 µs an object, the Python 12)."""
    return FAST_C and _pdflayout is not None

_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff\U00010800-\U00010fff\U0001e800-\U0001efff]")
_CONTROL = frozenset("\x02\x03\x93\x94\x96\x97\x98\ufffe")
_SPECIAL = re.compile("[\x02\x03\x93\x94\x96\x97\x98\ufffe\ufb00-\ufb06]")  # dropped or spelled out
_SPACES = re.compile(" {2,}")
_HYPHEN_END = re.compile("[-\xad] *\n")  # a line ending in a hyphen: PDFium may join it to the next
MAX_LINE_OBJECTS = 1024  # text objects gathered on one line: more (sorted by insertion), PDFium reads faster
CHECK_EVERY = 256  # text objects laid out between two looks at the clock
EPSILON = 1e-3  # a comparison closer than this to its threshold: PDFium's float32 may fall either way


def _normalize(threshold: float, t1: int, t2: int, t3: int) -> float:
    if threshold < t1:
        return threshold / 2.0
    if threshold < t2:
        return threshold / 4.0
    if threshold < t3:
        return threshold / 5.0
    return threshold / 6.0


def _above(value: float, limit: float) -> bool:
    """value > limit, Unsure when the two are within float rounding."""
    if abs(value - limit) < EPSILON:
        raise Unsure("a layout comparison at its threshold")
    return value > limit


_BODY = re.compile(r"[^\W_]")
# punctuation whose glyph, in any common font, reaches from the baseline up past 0.08 em
_ON_BASELINE = re.compile(
    "[.,:;!?()\\[\\]{}/%&@#$\u3002\uff0c\u3001\uff1a\uff1b\uff01\uff1f\uff08\uff09\u300a\u300b\u300c\u300d\u2026]"
)


def _char_width(obj: TextObject, code: str) -> int:
    return obj.font.width(ord(code))  # Unsure where only the glyph's box would say (PDFium's GetCharWidth)


def _text(obj: TextObject) -> str:
    if obj.text is None:
        obj.text = text = obj.font.text_of(obj.codes)
        obj.body = _BODY.search(text) is not None
        obj.base = obj.body or _ON_BASELINE.search(text) is not None
    return obj.text


class PageLayout:
    def __init__(self, box: tuple[float, float, float, float]) -> None:
        left, bottom, right, top = box
        width, height = right - left, top - bottom
        if width < 1 or height < 1:
            raise Unsure("page box")
        self.width, self.height = width, height
        self.sx, self.sy = int(width) / width, int(height) / height  # PDFium's display matrix scales
        self.out: list[str] = []
        self.out_empty = True
        self.temp: list[str] = []  # the line being made (PDFium's m_TempTextBuf)
        self.line_right = self.line_top = self.line_bottom = 0.0  # where its glyphs lie
        self.line_tail: list[tuple] = []  # its last 7 glyphs: font, code, x, y (PDFium's repeat test looks back 7)
        self.any_char = False
        self.prev: TextObject | None = None  # m_pPrevTextObj
        self.last_char_obj: TextObject | None = None
        self._line_dir: list[str | None] = []  # PDFium's m_TextlineDir, worked out when first needed
        self._objects: list = []
        self._line: list[TextObject] = []
        self._seen: dict[int, list[TextObject]] = {}

    # the page ---------------------------------------------------------------------------------
    def records_text(self, page: object, check_time: Callable[[], None] = lambda: None) -> str | None:
        """text() of a page of records (ContentReader.records): the same text, or None where the
        C layout is not sure (then the caller runs the page again into TextObjects and text())."""
        return _pdflayout.records_text(page, self.width, self.height, self.sx, self.sy, check_time)

    def text(self, objects: list, check_time: Callable[[], None] = lambda: None) -> str:
        if in_c() and objects.__class__ is list:
            # None where the C is not sure (every Unsure, a Column, anything it does not model):
            # then the Python below lays the page out from the start and decides
            text = _pdflayout.text(objects, self.width, self.height, self.sx, self.sy, check_time)
            if text is not None:
                return text
        self._objects = objects
        i, count = 0, len(objects)
        next_check = CHECK_EVERY
        while i < count:
            if i >= next_check:
                check_time()
                next_check = i + CHECK_EVERY
            obj = objects[i]
            if isinstance(obj, Column):
                self._column_block(obj)
                i += 1
                continue
            if len(self._line) == 1:
                end = self._column(objects, i)
                if end > i + 1:
                    self._lines(objects, i, end)
                    i = end
                    continue
            self._gather(obj)
            i += 1
        for obj in self._line:
            self._place(obj)
        self._close_line()
        text = "".join(self.out)
        if not text.isascii() and _RTL.search(text):
            raise Unsure("right-to-left text")
        return text

    def _column_block(self, col: Column) -> None:
        """A Column's lines: the first and the last two through the general path, those between
        in bulk where every rule surely starts a new line at each (else all one by one)."""
        n = len(col.codes)
        first = col.line(0)
        font = col.font
        joined = font.separator.join(col.codes)
        bulk = n >= 4 and col.step > self._least_step(first) and font.narrow.isdisjoint(joined)
        if bulk:
            texts = font.text_of(joined).split("\uffff")
            bulk = (len(texts) == n and min(map(len, col.codes)) >= 2 and len(set(col.codes)) == n
                    and not _HYPHEN_END.search("\n".join(texts[: n - 1]) + "\n")
                    and all(t.strip(" ") for t in texts))  # fmt: skip
        if bulk:
            self._gather(first)
            bulk = self._line[-1] is first
            if bulk:
                for o in self._line:
                    self._place(o)
                self._line = []
        if not bulk:
            start = 1 if self._line and self._line[-1] is first else 0
            for i in range(start, n):
                self._gather(col.line(i))
            return
        tail = [col.line(i) for i in range(max(1, n - 5), n)]
        seen = self._seen.setdefault(col.holder, [])
        for i in range(1, min(6, n)):
            self._same_as_recent(col.line(i), seen[-5:])
        self._close_line()
        if not self.out_empty:
            self.out.append("\r\n")
        block = "\r\n".join(texts[1 : n - 1])
        self.temp = [block]  # closed as one: its lines are whole lines, with \r\n already between
        before_last = tail[-2]
        self.line_top = self.line_bottom = before_last.y
        self.line_right = before_last.x + before_last.a * before_last.last_x
        self.line_tail = _tail(before_last)
        self.prev = self.last_char_obj = before_last
        self.any_char = True
        seen.extend(tail)
        del seen[:-5]
        self._line = [tail[-1]]

    # a column of lines (one object a line, the same font, x and a step down), laid out in bulk --
    def _column(self, objects: list[TextObject], start: int) -> int:
        """The end of the run of objects from start that each begin a new line below the one
        before, every rule of the general path surely saying so whatever their glyphs."""
        prev = self._line[0]
        step = self._least_step(prev)
        recent = self._seen.get(prev.holder, [])[-5:]
        end = start
        while end < len(objects):
            obj = objects[end]
            if not isinstance(obj, TextObject) or not (obj.font is prev.font and obj.size == prev.size and obj.a == prev.a and obj.d == prev.d
                    and obj.holder == prev.holder and obj.x == prev.x and prev.y - obj.y > step
                    and not obj.dense and not (obj.kerns and min(obj.kerns) <= -1000 * obj.font.least_space_gap)):  # fmt: skip
                break
            text = _text(obj)
            tail = _text(prev).rstrip(" ")
            if not tail or tail[-1] in "-\xad" or len(obj.codes) < 2 or obj.a * obj.last_x <= 0.0001:
                break  # a hyphen at the end, or a one-glyph line: the general path decides
            if not text.strip(" "):
                break
            self._same_as_recent(obj, recent)
            recent.append(obj)
            del recent[:-5]
            prev = obj
            end += 1
        return end

    def _least_step(self, obj: TextObject) -> float:
        """How far down the next line must start for every rule to see a new line, with any glyph
        of the font at either end (the widest glyph bounds the width thresholds)."""
        widest = max(obj.font.advances.values()) * obj.size / 1000
        em = obj.size * obj.d
        reverse = max(1.0, (1 / obj.a + 1 / obj.d) / 2)
        return (
            max(
                widest * (obj.a + obj.d) / 2 / 2 / self.sy,  # the first pass: gathered as another line
                3 * widest / 4 * reverse * obj.d,
                obj.d,  # ProcessInsertObject: the baseline moved
                em * (0.1 - min(obj.font.descent, -300) / 1000),  # this origin below the previous box
                em * (max(obj.font.ascent, 900) / 1000 + 0.15),  # the previous origin above this box
            )
            + 10 * EPSILON
        )

    def _lines(self, objects: list[TextObject], start: int, end: int) -> None:
        seen = self._seen.setdefault(objects[start].holder, [])
        seen.extend(objects[max(start, end - 5) : end])
        del seen[:-5]
        self._place(self._line[0])
        out = self.out
        for obj in objects[start : end - 1]:
            self._close_line()
            if not self.out_empty:
                out.append("\r\n")
            self.temp = [obj.text]
            self.line_top = self.line_bottom = obj.y
            self.line_right = obj.x + obj.a * obj.last_x
            self.line_tail = _tail(obj)
            self.prev = self.last_char_obj = obj
            self.any_char = True
        self._line = [objects[end - 1]]

    def _flow_direction(self, objects: list[TextObject]) -> str | None:
        """PDFium's FindTextlineFlowOrientation from glyph boxes; here from two estimates of
        them (advance boxes, and those widened by a tenth of an em): horizontal only when both say so."""
        results = {self._direction(objects, margin) for margin in (0.0, 0.1)}
        return "H" if results == {"H"} else None

    def _direction(self, objects: list[TextObject], margin: float) -> str | None:
        page_w, page_h = int(self.width), int(self.height)
        xs, ys = [], []
        line_height = 0.0
        for obj in objects:
            left, right, bottom, top = _box(obj, margin)
            min_h, max_h = int(min(max(left, 0), page_w)), int(min(max(right, 0), page_w))
            min_v, max_v = int(min(max(bottom, 0), page_h)), int(min(max(top, 0), page_h))
            if min_h >= max_h or min_v >= max_v:
                continue
            xs.append((min_h, max_h))
            ys.append((min_v, max_v))
            if line_height <= 0:
                line_height = top - bottom
        if not xs:
            return None
        start_h, end_h = min(a for a, _ in xs), max(b for _, b in xs)
        start_v, end_v = min(a for a, _ in ys), max(b for _, b in ys)
        double = int(2 * line_height)
        if end_v - start_v < double:
            return "H"
        if end_h - start_h < double:
            return "V"
        fill_h = _covered(xs) / (end_h - start_h)
        if fill_h > 0.8:
            return "H"
        fill_v = _covered(ys) / (end_v - start_v)
        return "H" if fill_h > fill_v else ("V" if fill_h < fill_v else None)

    # first pass: one line's objects sorted by x ------------------------------------------------
    def _gather(self, obj: TextObject) -> None:
        text = _text(obj)
        blank = len(obj.codes) == 1 and text.isspace()
        if blank and text != " ":
            raise Unsure("a lone blank glyph other than the space")
        seen = self._seen.setdefault(obj.holder, [])
        if not blank:
            self._same_as_recent(obj, seen)
        seen.append(obj)
        if len(seen) > 8:
            del seen[:-5]
        if blank:
            return  # a lone space: its glyph box is empty, PDFium skips the object (its box has no width)
        if not self._line:
            self._line.append(obj)
            return
        if len(self._line) >= MAX_LINE_OBJECTS:
            raise Unsure("a line of too many objects")
        prev = self._line[-1]
        prev_width = _char_width(prev, prev.codes[-1]) * prev.size / 1000 * (prev.a + prev.d) / 2
        this_width = _char_width(obj, obj.codes[0]) * obj.size / 1000 * (obj.a + obj.d) / 2
        threshold = max(prev_width, this_width) / 4
        if _above(abs(obj.y - prev.y) * self.sy, threshold * 2):
            for o in self._line:
                self._place(o)
            self._line = [obj]
            return
        for i in range(len(self._line), 0, -1):
            other = self._line[i - 1]
            if abs(obj.x - other.x) * self.sx < EPSILON and obj.x != other.x:
                raise Unsure("two objects at the same x")
            if obj.x >= other.x:
                self._line.insert(i, obj)
                return
        self._line.insert(0, obj)

    def _same_as_recent(self, obj: TextObject, seen: list[TextObject]) -> None:
        """PDFium drops an object repeating one of the 5 text objects before it at nearly the
        same place (IsSameAsPreTextObject, by boxes): where that may be the case, Unsure."""
        for other in seen[-5:]:
            if other.codes != obj.codes:
                continue
            (lo, hi), _ = _extent(other)
            (o_lo, o_hi), _ = _extent(obj)
            if o_lo > hi or lo > o_hi:
                continue  # boxes apart vertically: PDFium's rectangles cannot intersect
            reach = 0.9 * _char_width(other, other.codes[-1]) * other.size / 1000
            span = max(other.end_x * other.a, other.size * 2)
            if abs(obj.x - other.x) <= reach + EPSILON and abs(obj.y - other.y) <= span / 8 + EPSILON:
                raise Unsure("a text object repeating one before it")

    # second pass: the text page's characters -------------------------------------------------
    def _place(self, obj: TextObject) -> None:
        text = _text(obj)
        if self.prev is not None:
            if (
                self.last_char_obj is not None
                and self.last_char_obj is not self.prev
                and self.last_char_obj.holder != self.prev.holder
            ):
                raise Unsure("previous object from another form")
            result = self._join(obj)
            if result == "break":
                self._close_line()
                if not self.out_empty:
                    self.out.append("\r\n")
            elif result == "space" and self.any_char:
                self.temp.append(" ")
        self.prev = obj
        if obj.dense:
            raise Unsure("glyphs closer than PDFium's repeated-glyph distance")
        if self.temp:  # the repeated-glyph test against the line so far: only when surely far
            limit = 0.07 * obj.size * obj.a + EPSILON
            far = (
                obj.x >= self.line_right + limit or obj.y >= self.line_top + limit or obj.y <= self.line_bottom - limit
            )
            if not far and any((obj.font, code) in {(f, c) for f, c, _, _ in self.line_tail} for code in obj.codes[:7]):
                limit -= 2 * EPSILON
                for code, x in zip(obj.codes[:7], _glyph_xs(obj, head=True), strict=False):
                    for font, c, x2, y2 in self.line_tail:
                        if (
                            font is obj.font
                            and c == code
                            and abs(x - x2) < limit + EPSILON
                            and abs(obj.y - y2) < limit + EPSILON
                        ):
                            raise Unsure("a glyph over the same glyph: PDFium may drop it as a repeat")
            self.line_top, self.line_bottom = max(self.line_top, obj.y), min(self.line_bottom, obj.y)
        else:
            self.line_top = self.line_bottom = obj.y
            self.line_right = obj.x
            self.line_tail = []
        self.line_right = max(self.line_right, obj.x + obj.a * obj.last_x)
        self.line_tail = (self.line_tail + _tail(obj))[-7:]
        kerns = obj.kerns
        if kerns and min(kerns) <= -1000 * obj.font.least_space_gap:
            self.temp.extend(self._kerned(obj, text))
        else:
            self.temp.append(text)
        self.any_char = True
        self.last_char_obj = obj

    def _kerned(self, obj: TextObject, text: str) -> list[str]:
        """The object's text with a space at each TJ gap wide enough for PDFium to see one."""
        codes, text_of = obj.codes, obj.font.text_of
        one_each = len(text) == len(codes)
        pieces, start = [], 0
        measured = measured_len = 0  # codes[:measured] give measured_len characters (each code's text is its own)
        for k, cut in zip(obj.kerns, obj.cuts, strict=False):
            if k >= 0:
                continue
            if one_each:
                at = cut
            else:  # measured a piece at a time: from the start each time would be quadratic in a long TJ
                measured_len += len(text_of(codes[measured:cut]))
                measured, at = cut, measured_len
            before = text[start:at]
            tail = before[-1] if before else (pieces[-1][-1] if pieces else (self.temp[-1][-1] if self.temp else ""))
            if tail and tail != " " and self._kerning_space(obj, ord(codes[cut]), -k / 1000):
                pieces += [before, " "]
                start = at
        pieces.append(text[start:])
        return pieces

    def _kerning_space(self, obj: TextObject, code: int, spacing: float) -> bool:
        """PDFium's space in a TJ: the gap against half the font's space glyph (when the font has
        a code for " " no wider than a third of an em), else against a share of this glyph's width.
        Without a space code PDFium may ask the width of code 0: both readings must agree."""
        font = obj.font
        by_glyph = _normalize(font.widths.get(code, 0) or 0, 300, 500, 700) / 1000
        if font.space_code is not None:
            space = font.widths.get(font.space_code, 0) / 1000
            candidates = [space / 2 if 0 < space <= 1 / 3 else by_glyph]
        else:
            zero = font.widths.get(0, font.default_width)
            candidates = [by_glyph] + ([zero / 2000 if 0 < zero <= 333 else by_glyph] if zero is not None else [])
        decisions = set()
        for threshold in candidates:
            if threshold and abs(spacing - threshold) < EPSILON / max(obj.size, 1):
                raise Unsure("a kerning gap at the space threshold")
            decisions.add(bool(threshold) and spacing >= threshold)
        if len(decisions) > 1:
            raise Unsure("space in a TJ: PDFium's two readings of the font disagree")
        return decisions.pop()

    def _join(self, obj: TextObject) -> str | None:
        """ProcessInsertObject: what comes between the previous object and this one."""
        prev = self.last_char_obj or self.prev
        mode = self._mode(obj)
        if mode == "U":
            mode = self._mode(prev)
        if mode != "H" and mode != "U":
            raise Unsure("writing direction of a one-glyph object")
        cur_char = _text(obj)[0]
        last_pos = prev.last_x
        last_w = _char_width(prev, prev.codes[-1])
        this_w = _char_width(obj, obj.codes[0])
        last_width = abs(last_w * prev.size / 1000)
        this_width = abs(this_w * obj.size / 1000)
        threshold = max(last_width, this_width) / 4
        pos_x, pos_y = (obj.x - prev.x) / prev.a, (obj.y - prev.y) / prev.d
        reverse_scale = (1 / prev.a + 1 / prev.d) / 2
        if last_width < this_width:
            threshold *= reverse_scale
        if mode == "H":
            overlap = _vertical_overlap(obj, prev)
            newline = (_above(pos_y, threshold * 2) or _above(-threshold * 3, pos_y)) and (
                abs(pos_y) >= 1 or abs(pos_y) > abs(pos_x)
            )
            if newline and len(prev.codes) > 1 and prev.last_x > 0:
                inside = _inside(obj.x, obj.y, prev), _inside(prev.x, prev.y, obj)
                if True in inside:
                    newline = False
                elif None in inside:
                    raise Unsure("is the object inside the previous one's box")
            if overlap is False:  # boxes apart: a line break whatever the baseline says
                newline = True
            elif overlap is None and not newline:
                raise Unsure("do the two objects' boxes overlap vertically")
            if newline:
                if self._is_hyphen(cur_char):
                    raise Unsure("a hyphen at a line end")
                return "break"
        if len(obj.codes) == 1 and cur_char in "-\xad" and self._is_hyphen(cur_char):
            raise Unsure("a lone hyphen")
        if cur_char == " ":
            return None
        if _text(prev)[-1] == " ":
            return None
        threshold2 = _normalize(max(last_w, this_w), 400, 700, 800)
        if last_w >= this_w:
            threshold2 *= abs(prev.size)
        else:
            threshold2 *= abs(obj.size) * (obj.a + obj.d) / 2 * reverse_scale
        threshold2 /= 1000
        if 1.4879 < threshold2 < 1.4881 or 1.38999 < threshold2 < 1.39001:
            threshold2 *= 1.5
        return "space" if _space_between(pos_x, last_pos, this_width, last_width, threshold2) else None

    def _mode(self, obj: TextObject) -> str | None:
        if len(obj.codes) <= 1:
            if not self._line_dir:
                top = [o for c in self._objects if c.holder == 0
                       for o in ([c] if isinstance(c, TextObject) else (c.line(i) for i in range(len(c.codes))))]  # fmt: skip
                self._line_dir.append(self._flow_direction(top))
            return self._line_dir[0]
        if abs(obj.a * obj.last_x) <= 0.0001:
            return "U"
        return "H"

    def _is_hyphen(self, cur_char: str) -> bool:
        text = "".join(self.temp[-4:]) or "".join(self.out[-2:])
        stripped = text.rstrip(" ")
        if not stripped or stripped[-1] not in "-\xad":
            return False
        return len(stripped) > 1 and stripped[-2].isalpha() and cur_char.isalnum()

    def _close_line(self) -> None:
        if not self.temp:
            return
        line = "".join(self.temp)
        self.temp.clear()
        line = _SPACES.sub(" ", line)
        if not line.isascii() and _SPECIAL.search(line) or "\x02" in line or "\x03" in line:
            line = "".join(_spelled(c) for c in line if c not in _CONTROL)
        if line:
            self.out.append(line)
            self.out_empty = False


def _spelled(c: str) -> str:
    if "\ufb00" <= c <= "\ufb06":
        if c == "\ufb05":
            raise Unsure("long s ligature")
        return unicodedata.normalize("NFKC", c)
    return c


def _glyph_xs(obj: TextObject, head: bool) -> list[float]:
    """Page x of the object's first 7 glyphs (head) or of its last 7 (walked back from the last)."""
    scale = obj.size / 1000
    advances = obj.font.advances
    kerning = dict(zip(obj.cuts, obj.kerns, strict=False))
    codes = obj.codes
    if head:
        xs, x = [], 0.0
        for i in range(min(7, len(codes))):
            if i in kerning:
                x -= kerning[i] * scale
            xs.append(obj.x + obj.a * x)
            x += advances[codes[i]] * scale
        return xs
    x = obj.last_x
    xs = [obj.x + obj.a * x]
    for i in range(len(codes) - 1, max(0, len(codes) - 7), -1):
        if i in kerning:
            x += kerning[i] * scale
        x -= advances[codes[i - 1]] * scale
        xs.append(obj.x + obj.a * x)
    return xs[::-1]


def _tail(obj: TextObject) -> list[tuple]:
    return [(obj.font, code, x, obj.y) for code, x in zip(obj.codes[-7:], _glyph_xs(obj, head=False), strict=False)]


def _box(obj: TextObject, margin: float) -> tuple[float, float, float, float]:
    """The object's box from its glyph advances and the font's ascent and descent."""
    right = obj.end_x
    em = obj.size * obj.a
    return (obj.x - margin * em, obj.x + obj.a * right + margin * em,
            obj.y + obj.d * obj.size * obj.font.descent / 1000 - margin * em,
            obj.y + obj.d * obj.size * obj.font.ascent / 1000 + margin * em)  # fmt: skip


def _covered(spans: list[tuple[int, int]]) -> int:
    total, end = 0, None
    for a, b in sorted(spans):
        if end is None or a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


def _extent(obj: TextObject) -> tuple[tuple[float, float], tuple[float, float] | None]:
    """Bounds of the object's box vertically: an outer range its glyphs surely stay within
    (the font's ascent and descent, widened), and an inner one they surely cover (only for an
    object with a letter, digit or ideograph, which all stand on the baseline)."""
    em = obj.size * obj.d
    if not _text(obj).strip(" "):
        return (obj.y, obj.y), (obj.y, obj.y)  # spaces have empty glyph boxes: the object's box has no height
    outer = (
        obj.y + em * (min(obj.font.descent, -300) / 1000 - 0.1),
        obj.y + em * (max(obj.font.ascent, 900) / 1000 + 0.15),
    )
    _text(obj)
    inner = (
        (obj.y + em * 0.05, obj.y + em * 0.35)
        if obj.body
        else ((obj.y + em * 0.02, obj.y + em * 0.08) if obj.base else None)
    )
    return outer, inner


def _vertical_overlap(obj: TextObject, prev: TextObject) -> bool | None:
    """EndHorizontalLine: False when the boxes surely are apart (then a line break) and both
    taller than 4.5, True when they surely overlap or either is too low to count, else None."""
    (o_lo, o_hi), o_in = _extent(obj)
    (p_lo, p_hi), p_in = _extent(prev)
    if o_hi - o_lo <= 4.5 or p_hi - p_lo <= 4.5:
        return True
    if o_in and p_in and min(o_in[1], p_in[1]) > max(o_in[0], p_in[0]):
        return True
    if o_lo > p_hi or p_lo > o_hi:
        if o_in and p_in and o_in[1] - o_in[0] > 4.5 and p_in[1] - p_in[0] > 4.5:
            return False
    return None


def _inside(x: float, y: float, obj: TextObject) -> bool | None:
    """Is the point inside CFX_FloatRect(0, box bottom, 1000, box top) of obj?"""
    if not 0 <= x <= 1000:
        return False
    (lo, hi), inner = _extent(obj)
    if y < lo - EPSILON or y > hi + EPSILON:
        return False
    if inner and inner[0] <= y <= inner[1]:
        return True
    return None


def _space_between(pos_x: float, last_pos: float, this_width: float, last_width: float, threshold: float) -> bool:
    """GenerateSpace, with Unsure at each comparison's edge."""
    if not _above(abs(last_pos + last_width - pos_x), threshold):
        return False
    threshold_pos = threshold + last_width
    difference = pos_x - last_pos
    if _above(abs(difference), threshold_pos):
        return True
    if pos_x < 0 and _above(-threshold_pos, difference):
        return True
    return _above(difference, this_width + last_width)


if _pdflayout is not None:
    _pdflayout.setup(TextObject)
