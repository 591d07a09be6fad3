"""A page's content streams run for their text: the text and graphics state operators (BT/ET, Tf,
Td, TD, Tm, T*, TL, Tc, Tw, Tz, Ts, Tr, TJ, Tj, ', ", cm, q/Q, Do of Form XObjects) turned into text
objects, one per show-text operator as PDFium makes them (CPDF_StreamContentParser), each with its
font, size, matrix, origin and the x of every glyph; agent/content/pdf_layout.py lays them out.

Content streams are tokenized by one compiled regex (no Python loop per byte); Python runs per
token. Anything the layout would need and this module does not model (rotated or mirrored text,
Tz, Tc, clipping render modes, inline images, ActualText, Type3 fonts...) raises Unsure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate

from agent.content.pdf_fonts import Font, load_font
from agent.content.pdf_objects import Name, Ref, Stream, Unsure, hex_string, literal_string

try:  # the loop over a content stream's tokens in C (setup.py builds it where a compiler exists)
    from agent.content import _pdftext
except ImportError:  # pragma: no cover - a pure wheel: the Python loop below, the same objects
    _pdftext = None

FAST_C = True  # False: ContentReader.run's Python loop (the reference the C loop is held to)

MAX_FORM_DEPTH = 8  # Form XObjects inside Form XObjects
MAX_TEXT_OBJECTS = 500_000  # per page: beyond, PDFium decides (a page is bounded by the budget anyway)
CHECK_EVERY = 4096  # tokens of content between two looks at the clock (a page may hold millions)
# PDFium's content parser keeps a word's first 255 bytes and a string's first 32,767: past them it
# reads another name or number than this reader would, so such a token is Unsure
MAX_WORD = 255
MAX_STRING = 32_767
# PDFium places glyphs in single-precision floats: far off the page their rounding passes the
# layout's EPSILON, so text placed (or reaching) beyond this many points from the origin is Unsure
MAX_COORD = 16_384.0
# a run of "(line) Tj T*", as simple writers (and the bench's PDFs) draw a column of lines: one match
_LINE = re.compile(
    rb"[\x00\t\n\x0c\r ]*+\(([^()\\]*+(?:\\.[^()\\]*+)*+)\)[\x00\t\n\x0c\r ]*+Tj[\x00\t\n\x0c\r ]++T\*(?![^\x00\t\n\x0c\r ()<>\[\]{}/%])",
    re.S,
)  # one more line of the run: the regex for the first is _TOKEN's "lines"
_WORD = re.compile(rb"[^\x00\t\n\x0c\r ]++")
_TJ_ITEM = re.compile(rb"<([0-9A-Fa-f]*)>|([+-]?+(?>\d+\.?\d*|\.\d+))")
_TOKEN = re.compile(
    rb"(?:[\x00\t\n\x0c\r ]++|%[^\r\n]*+)*+"
    rb"(?:(?P<run>q[\x00\t\n\x0c\r ]++(?P<rgb>(?:[+-]?+(?>\d+\.?\d*|\.\d+)[\x00\t\n\x0c\r ]++){3})rg[\x00\t\n\x0c\r ]++BT[\x00\t\n\x0c\r ]++(?P<rx>[+-]?+(?>\d+\.?\d*|\.\d+))[\x00\t\n\x0c\r ]++(?P<ry>[+-]?+(?>\d+\.?\d*|\.\d+))[\x00\t\n\x0c\r ]++Td[\x00\t\n\x0c\r ]*+/(?P<rfont>[^\x00\t\n\x0c\r ()<>\[\]{}/%]+)[\x00\t\n\x0c\r ]++(?P<rsize>[+-]?+(?>\d+\.?\d*|\.\d+))[\x00\t\n\x0c\r ]++Tf[\x00\t\n\x0c\r ]*+(?:<(?P<rhex>[0-9A-Fa-f]*)>[\x00\t\n\x0c\r ]*+Tj|\[(?P<rtj>(?:[\x00\t\n\x0c\r ]*+(?:<[0-9A-Fa-f]*+>|[+-]?+(?>\d+\.?\d*|\.\d+)(?![^\x00\t\n\x0c\r ()<>\[\]{}/%])))*+)[\x00\t\n\x0c\r ]*+\][\x00\t\n\x0c\r ]*+TJ)[\x00\t\n\x0c\r ]++ET[\x00\t\n\x0c\r ]++Q(?![^\x00\t\n\x0c\r ()<>\[\]{}/%]))"
    rb"|(?P<lines>\((?P<line>[^()\\]*+(?:\\.[^()\\]*+)*+)\)[\x00\t\n\x0c\r ]*+Tj[\x00\t\n\x0c\r ]++T\*(?![^\x00\t\n\x0c\r ()<>\[\]{}/%]))"
    rb"|\[(?P<tj>(?:[\x00\t\n\x0c\r ]*+(?:<[0-9A-Fa-f]*+>|[+-]?+(?>\d+\.?\d*|\.\d+)(?![^\x00\t\n\x0c\r ()<>\[\]{}/%])))*+)[\x00\t\n\x0c\r ]*+\]"
    rb"[\x00\t\n\x0c\r ]*+TJ(?![^\x00\t\n\x0c\r ()<>\[\]{}/%])"
    rb"|(?P<num>[+-]?+(?>\d+\.?\d*|\.\d+))(?![^\x00\t\n\x0c\r ()<>\[\]{}/%])"
    rb"|\((?P<str>[^()\\]*+(?:\\.[^()\\]*+)*+)\)"
    rb"|(?P<nested>\()"
    rb"|<(?P<hex>[0-9A-Fa-f\x00\t\n\x0c\r ]*)>"
    rb"|/(?P<name>[^\x00\t\n\x0c\r ()<>\[\]{}/%]*)"
    rb"|(?P<aopen>\[)|(?P<aclose>\])|(?P<dopen><<)|(?P<dclose>>>)"
    rb"|(?P<op>(?:[A-Za-z][A-Za-z0-9*]*+|'|\")(?![^\x00\t\n\x0c\r ()<>\[\]{}/%])))",
    re.S,
)


@dataclass(slots=True)
class TextObject:
    """One show-text operator's glyphs: codes holds them as characters (one per code:
    Font.decode), kerns the TJ numbers between its strings and cuts where each falls (the count
    of codes before it); the x of the last glyph and the end of the run in text space (font size
    applied), the text-space-to-page matrix (a, d: b and c are zero, anything else is Unsure) and
    the origin in page space."""

    font: Font
    size: float
    codes: str
    kerns: list
    cuts: list
    last_x: float
    end_x: float
    a: float
    d: float
    x: float
    y: float
    holder: int  # which content (page or form) it came from: PDFium compares within one
    dense: bool  # two glyph origins may lie closer than 0.07 em (PDFium's repeated-glyph test)
    text: str | None = None  # the Unicode text of the codes, filled by the layout
    body: bool | None = None  # has a letter, digit or ideograph, filled by the layout
    base: bool | None = None  # has a glyph standing on the baseline (body or some punctuation)


@dataclass(slots=True)
class Column:
    """A run of "(line) Tj T*": lines of one font at one x, each `step` (page space) below the one
    before; the layout reads it in bulk where every rule surely breaks the lines apart, else as
    one TextObject a line (`line`)."""

    font: Font
    size: float
    a: float
    d: float
    x: float
    y: float
    step: float
    holder: int
    codes: list  # each line's codes, as Font.decode gives them

    def line(self, i: int) -> TextObject:
        codes = self.codes[i]
        advances = self.font.advances
        scale = self.size / 1000
        end = sum(map(advances.__getitem__, codes)) * scale
        last_x = end - advances[codes[-1]] * scale
        dense = not self.font.narrow.isdisjoint(codes)
        return TextObject(self.font, self.size, codes, [], [], last_x, end, self.a, self.d, self.x, self.y - i * self.step,
                          self.holder, dense)  # fmt: skip


@dataclass
class _State:
    ctm: tuple = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    font: Font | None = None
    size: float = 0.0
    char_space: float = 0.0
    word_space: float = 0.0
    scale: float = 100.0
    leading: float = 0.0
    rise: float = 0.0
    mode: int = 0

    def copy(self) -> _State:
        return _State(self.ctm, self.font, self.size, self.char_space, self.word_space, self.scale, self.leading,
                      self.rise, self.mode)  # fmt: skip


def _multiply(m: tuple, n: tuple) -> tuple:
    a, b, c, d, e, f = m
    A, B, C, D, E, F = n
    return (a * A + b * C, a * B + b * D, c * A + d * C, c * B + d * D, e * A + f * C + E, e * B + f * D + F)


class ContentReader:
    """Runs a page's content (and its forms) and collects its text objects in content order."""

    def __init__(self, doc, fonts_cache: dict, min_codes: float = 0, check_time: Callable[[], None] = lambda: None) -> None:
        self.doc = doc
        self.check_time = check_time  # raises when the page has taken too long
        self.min_codes = min_codes  # per text object, checked at the 64th: short runs give up early
        self.codes = 0
        self.fonts = fonts_cache  # font dict's object number (or id) -> Font
        self.objects: list[TextObject | Column] = []
        self.count = 0  # text objects, a Column's lines each
        self.line_codes = 0  # codes in Columns (self.codes counts those of TextObjects)
        self._holders = 0

    def records(self, data: bytes, resources: dict) -> object | None:
        """run() of a page by a fresh reader, but where the C loop makes every text object of it,
        those objects as C records (for PageLayout.records_text) instead of TextObjects: no Python
        object made or freed for each. None where any is Python's (a show _show takes, a run of
        lines, a form's text): then the objects are in self.objects, as run() leaves them."""
        if self.objects or not (FAST_C and _pdftext is not None and data.__class__ is bytes):
            self.run(data, resources)
            return None
        holder = self._holders
        self._holders += 1
        return _pdftext.records(self, data, resources, _State(), holder, 0, MAX_TEXT_OBJECTS)

    def run(self, data: bytes, resources: dict, start: _State | None = None, depth: int = 0) -> None:
        """The content's text objects added to self.objects; start: the state at a form's Do."""
        if depth > MAX_FORM_DEPTH:
            raise Unsure("forms nested too deep")
        holder = self._holders
        self._holders += 1
        state = start.copy() if start is not None else _State()
        if FAST_C and _pdftext is not None and data.__class__ is bytes:
            _pdftext.run(self, data, resources, state, holder, depth, MAX_TEXT_OBJECTS)
            return
        stack: list[_State] = []
        operands: list = []
        array: list | None = None
        dict_depth, dict_names = 0, []
        tm = tlm = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
        in_text = False
        marked: list[bool] = []
        pos = 0
        match = _TOKEN.match
        tokens = 0
        while True:
            tokens += 1
            if tokens % CHECK_EVERY == 0:
                self.check_time()
            m = match(data, pos)
            if m is None:
                if data[pos:].strip(b"\x00\t\n\x0c\r ") or dict_depth:
                    raise Unsure("content stream token")  # or a dictionary never closed: PDFium draws what follows
                break
            pos = m.end()
            kind = m.lastgroup
            if dict_depth:
                if kind == "dopen":
                    dict_depth += 1
                elif kind == "dclose":
                    dict_depth -= 1
                    if dict_depth == 0:
                        operands.append(("dict", "ActualText" in dict_names))
                elif kind == "name":
                    dict_names.append(_name(m.group("name")))
                elif kind == "nested":
                    pos = literal_string(data, m.start("nested"))[1]
                elif kind in ("op", "run", "lines", "tj"):
                    raise Unsure("an operator inside a dictionary")  # PDFium ends the dictionary there and runs it
                continue
            if kind == "lines":
                if not in_text or array is not None or operands or any(marked):
                    raise Unsure("a run of lines outside plain text")
                raw = [m.group("line")]
                more = _LINE.match(data, pos)
                while more is not None:
                    raw.append(more.group(1))
                    pos = more.end()
                    more = _LINE.match(data, pos)
                tm, tlm = self._run_of_lines(state, tm, tlm, raw, holder)
                continue
            if kind == "run":  # q r g b rg BT x y Td /F s Tf <..> Tj ET Q, as LibreOffice draws a run
                if in_text or array is not None or operands or any(marked):
                    raise Unsure("a run inside text")
                saved = state.copy()
                if len(m.group("rhex") or b"") > 2 * MAX_STRING:
                    raise Unsure("a string longer than PDFium keeps")
                numbers = (m.group("rx"), m.group("ry"), m.group("rsize"), *_WORD.findall(m.group("rgb")))
                if max(map(len, numbers)) > MAX_WORD:
                    raise Unsure("a number longer than PDFium's word")
                state.font = self._font(resources, _name(m.group("rfont")))
                state.size = float(m.group("rsize"))
                start = (1.0, 0.0, 0.0, 1.0, float(m.group("rx")), float(m.group("ry")))
                if m.group("rhex") is not None:
                    self._show(state, start, [hex_string(m.group("rhex"))], holder, False)
                else:
                    self._show_hex_array(state, start, m.group("rtj"), holder, False)
                state = saved
                continue
            if kind == "tj":
                if not in_text or array is not None or dict_depth:
                    raise Unsure("TJ outside text")
                tm = self._show_hex_array(state, tm, m.group("tj"), holder, any(marked))
                operands.clear()
                continue
            if kind == "num":
                text = m.group("num")
                if len(text) > MAX_WORD:
                    raise Unsure("a number longer than PDFium's word")
                value = float(text) if b"." in text else int(text)
            elif kind == "str":
                raw = m.group("str")
                if len(raw) > MAX_STRING:
                    raise Unsure("a string longer than PDFium keeps")
                value = literal_string(data, m.start("str") - 1)[0] if b"\\" in raw else raw
            elif kind == "nested":
                value, pos = literal_string(data, m.start("nested"))
                if pos - m.start("nested") - 2 > MAX_STRING:
                    raise Unsure("a string longer than PDFium keeps")
            elif kind == "hex":
                value = hex_string(m.group("hex"))
                if len(value) > MAX_STRING:
                    raise Unsure("a string longer than PDFium keeps")
            elif kind == "name":
                value = Name(_name(m.group("name")))
            elif kind == "aopen":
                if array is not None:
                    raise Unsure("nested array in content")
                array = []
                continue
            elif kind == "aclose":
                if array is None:
                    raise Unsure("stray ]")
                operands.append(array)
                array = None
                continue
            elif kind == "dopen":
                dict_depth, dict_names = 1, []
                continue
            elif kind == "dclose":
                raise Unsure("stray >>")
            else:
                op = m.group("op")
                if array is not None:
                    raise Unsure("operator inside an array")
                # -- text state
                if op == b"Tf":
                    if len(operands) < 2 or not isinstance(operands[-2], str):
                        raise Unsure("Tf")
                    state.font = self._font(resources, operands[-2])
                    state.size = _number(operands[-1])
                elif op == b"Td" or op == b"TD":
                    if len(operands) < 2:
                        raise Unsure("Td")
                    tx, ty = _number(operands[-2]), _number(operands[-1])
                    if op == b"TD":
                        state.leading = -ty
                    tlm = _multiply((1.0, 0.0, 0.0, 1.0, tx, ty), tlm)
                    tm = tlm
                elif op == b"Tm":
                    if len(operands) < 6:
                        raise Unsure("Tm")
                    tlm = tm = tuple(_number(v) for v in operands[-6:])
                elif op == b"T*":
                    tlm = _multiply((1.0, 0.0, 0.0, 1.0, 0.0, -state.leading), tlm)
                    tm = tlm
                elif op == b"TL":
                    state.leading = _number(operands[-1]) if operands else _bad(op)
                elif op == b"Tc":
                    state.char_space = _number(operands[-1]) if operands else _bad(op)
                elif op == b"Tw":
                    state.word_space = _number(operands[-1]) if operands else _bad(op)
                elif op == b"Tz":
                    state.scale = _number(operands[-1]) if operands else _bad(op)
                elif op == b"Ts":
                    state.rise = _number(operands[-1]) if operands else _bad(op)
                elif op == b"Tr":
                    state.mode = operands[-1] if operands and isinstance(operands[-1], int) else _bad(op)
                # -- showing text
                elif op in (b"Tj", b"'", b'"', b"TJ"):
                    if not in_text:
                        raise Unsure("text outside BT")
                    if op != b"Tj" and op != b"TJ":
                        if op == b'"':
                            if len(operands) < 3:
                                raise Unsure('"')
                            state.word_space, state.char_space = _number(operands[-3]), _number(operands[-2])
                        tlm = _multiply((1.0, 0.0, 0.0, 1.0, 0.0, -state.leading), tlm)
                        tm = tlm
                    if not operands:
                        raise Unsure("show without a string")
                    parts = operands[-1]
                    if op != b"TJ":
                        if not isinstance(parts, bytes):
                            raise Unsure("Tj operand")
                        parts = [parts]
                    elif not isinstance(parts, list):
                        raise Unsure("TJ operand")
                    tm = self._show(state, tm, parts, holder, any(marked))
                elif op == b"BT":
                    tm = tlm = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
                    in_text = True
                elif op == b"ET":
                    in_text = False
                # -- graphics state
                elif op == b"q":
                    stack.append(state.copy())
                    if len(stack) > 1000:
                        raise Unsure("q nesting")
                elif op == b"Q":
                    if stack:
                        state = stack.pop()
                elif op == b"cm":
                    if len(operands) < 6:
                        raise Unsure("cm")
                    state.ctm = _multiply(tuple(_number(v) for v in operands[-6:]), state.ctm)
                elif op == b"Do":
                    if not operands or not isinstance(operands[-1], str):
                        raise Unsure("Do")
                    self._do(resources, operands[-1], state, depth)
                # -- marked content (ActualText replaces the glyphs' text in PDFium)
                elif op == b"BDC":
                    marked.append(self._has_actual_text(resources, operands[-1] if operands else None, depth))
                elif op == b"gs":
                    self._gs(resources, operands[-1] if operands else None, depth)
                elif op == b"BMC":
                    marked.append(False)
                elif op == b"EMC":
                    if marked:
                        marked.pop()
                elif op in (b"BI", b"ID", b"EI"):
                    raise Unsure("inline image")
                elif op == b"d0" or op == b"d1":
                    raise Unsure("type3 glyph procedure")
                operands.clear()
                continue
            if array is not None:
                array.append(value)
            else:
                operands.append(value)
            if len(operands) > 64 or (array is not None and len(array) > 1_000_000):
                raise Unsure("too many operands")

    def _font(self, resources: dict, name: str) -> Font:
        fonts = self.doc.get(resources, "Font") if isinstance(resources, dict) else None
        if not isinstance(fonts, dict) or name not in fonts:
            raise Unsure("font not in resources")
        ref = fonts[name]
        key = ref.number if isinstance(ref, Ref) else id(ref)
        font = self.fonts.get(key)
        if font is None:
            info = self.doc.resolve(ref)
            if not isinstance(info, dict):
                raise Unsure("font")
            font = self.fonts[key] = load_font(self.doc, info)
        return font

    def _has_actual_text(self, resources: dict, props, depth: int) -> bool:
        if isinstance(props, tuple):
            return props[1]
        if isinstance(props, str):
            table = self.doc.get(resources, "Properties") if isinstance(resources, dict) else None
            if depth and not isinstance(table, dict):
                raise Unsure("a form's marked content named without its own Properties")  # PDFium looks in the page's
            entry = self.doc.get(table, props) if isinstance(table, dict) else None
            return isinstance(entry, dict) and "ActualText" in entry
        return False

    def _gs(self, resources: dict, name, depth: int) -> None:
        """gs: the graphics state parameters this reader does not model are Unsure (a font)."""
        table = self.doc.get(resources, "ExtGState") if isinstance(resources, dict) else None
        if depth and not isinstance(table, dict):
            raise Unsure("a form's gs named without an ExtGState of its own")  # PDFium looks in the page's
        entry = self.doc.get(table, name) if isinstance(table, dict) and isinstance(name, str) else None
        if isinstance(entry, dict) and "Font" in entry:
            raise Unsure("a font set by an ExtGState")

    def _do(self, resources: dict, name: str, state: _State, depth: int) -> None:
        xobjects = self.doc.get(resources, "XObject") if isinstance(resources, dict) else None
        if not isinstance(xobjects, dict) or name not in xobjects:
            raise Unsure("XObject not in resources")
        xobject = self.doc.resolve(xobjects[name])
        if not isinstance(xobject, Stream):
            raise Unsure("XObject")
        subtype = self.doc.resolve(xobject.info.get("Subtype"))
        if subtype == "Image":
            return
        if subtype != "Form":
            raise Unsure(f"XObject {subtype}")
        matrix = self.doc.resolve(xobject.info.get("Matrix", [1, 0, 0, 1, 0, 0]))
        if not (isinstance(matrix, list) and len(matrix) == 6):
            raise Unsure("form matrix")
        form_resources = self.doc.resolve(xobject.info.get("Resources")) or resources
        form_state = state.copy()  # a form starts from the graphics and text state at its Do, as in PDFium,
        form_state.rise = form_state.leading = 0.0  # but for the rise and the leading
        form_state.ctm = _multiply(tuple(_number(self.doc.resolve(v)) for v in matrix), state.ctm)
        self.run(self.doc.stream_data(xobject), form_resources, form_state, depth + 1)

    def _run_of_lines(self, state: _State, tm: tuple, tlm: tuple, raw: list[bytes], holder: int) -> tuple[tuple, tuple]:
        """A run of "(line) Tj T*" (each line's bytes as written): the text matrix and the line
        matrix after it."""
        if max(map(len, raw)) > MAX_STRING:
            raise Unsure("a string longer than PDFium keeps")
        lines = [line if b"\\" not in line else literal_string(b"(" + line + b")", 0)[0] for line in raw]
        if tm != tlm:  # the first line starts where a Tj before it ended
            self._show(state, tm, [lines.pop(0)], holder, False)
            tlm = _multiply((1.0, 0.0, 0.0, 1.0, 0.0, -state.leading), tlm)
        return self._column(state, tlm, lines, holder)

    def _column(self, state: _State, tlm: tuple, lines: list[bytes], holder: int) -> tuple[tuple, tuple]:
        """Each line as Tj then T*; kept as one Column when that is what they draw."""
        font, size = state.font, state.size
        m = _multiply(tlm, state.ctm)
        step = state.leading * m[3]
        simple = (font is not None and size > 0 and state.scale == 100 and state.char_space == 0 and state.mode < 4
                  and state.word_space == 0 and step > 0 and len(lines) > 1 and all(lines) and not tlm[1] and not tlm[2]
                  and not m[1] and not m[2] and m[0] > 0 and m[3] > 0)  # fmt: skip
        if not simple:
            next_line = (1.0, 0.0, 0.0, 1.0, 0.0, -state.leading)
            for line in lines:
                self._show(state, tlm, [line], holder, False)
                tlm = _multiply(next_line, tlm)
            return tlm, tlm
        codes = [font.decode(line) for line in lines]
        y = m[3] * state.rise + m[5]
        if not (abs(m[4]) <= MAX_COORD and abs(y) <= MAX_COORD and abs(y - step * len(lines)) <= MAX_COORD):
            raise Unsure("text far off the page: PDFium's single-precision floats place it otherwise")
        self.objects.append(Column(font, size, m[0], m[3], m[4], y, step, holder, codes))
        self.count += len(lines)
        self.line_codes += sum(map(len, codes))
        if self.count > MAX_TEXT_OBJECTS:
            raise Unsure("too many text objects")
        tlm = _multiply((1.0, 0.0, 0.0, 1.0, 0.0, -state.leading * len(lines)), tlm)
        return tlm, tlm

    def _show(self, state: _State, tm: tuple, parts: list, holder: int, actual_text: bool) -> tuple:
        """A Tj or TJ: its text object added, the text matrix after it returned."""
        font, size = state.font, state.size
        if font is None:
            raise Unsure("text without a font")
        if actual_text:
            raise Unsure("ActualText")
        if state.scale != 100 or state.char_space != 0 or state.mode >= 4 or size <= 0:
            raise Unsure("horizontal scaling, character spacing, clipping text or a size PDFium treats apart")
        strings: list[str] = []
        kerns: list[float] = []
        init_kerning = pending = 0.0
        for part in parts:
            if part.__class__ is bytes:
                if not part:
                    if strings or len(parts) > 1:
                        raise Unsure("an empty string in a TJ")
                    continue
                if strings:
                    kerns.append(pending)
                    pending = 0.0
                strings.append(font.decode(part))
            elif isinstance(part, (int, float)) and not isinstance(part, bool):
                if strings:
                    pending += part
                else:
                    init_kerning += part
            else:
                raise Unsure("TJ element")
        return self._add(state, tm, strings, kerns, init_kerning, pending, holder)

    def _show_hex_array(self, state: _State, tm: tuple, body: bytes, holder: int, actual_text: bool) -> tuple:
        """A TJ of hex strings and numbers taking turns (as office suites write them), in bulk."""
        items = _TJ_ITEM.findall(body)
        if any(len(h) > 2 * MAX_STRING or len(n) > MAX_WORD for h, n in items):
            raise Unsure("a string longer than PDFium keeps, or a number than its word")
        hexes, numbers = items[0::2], items[1::2]
        if not items or any(n for _, n in hexes) or not all(n for _, n in numbers):
            return self._show(
                state, tm, [hex_string(h) if not n else _parse_number(n) for h, n in items], holder, actual_text
            )
        font = state.font
        if font is None or actual_text:
            return self._show(state, tm, [], holder, actual_text)
        width = 4 if font.two_byte else 2
        if any(len(h) % width or not h for h, _ in hexes):
            raise Unsure("a string of part codes in a TJ")
        strings = [font.decode(bytes.fromhex(h.decode())) for h, _ in hexes]
        return self._add(state, tm, strings, [float(n) for _, n in numbers], 0.0, 0.0, holder)

    def _add(self, state: _State, tm: tuple, strings: list[str], kerns: list[float], init_kerning: float,
             pending: float, holder: int) -> tuple:  # fmt: skip
        font, size = state.font, state.size
        if font is None:
            raise Unsure("text without a font")
        if state.scale != 100 or state.char_space != 0 or state.mode >= 4 or size <= 0:
            raise Unsure("horizontal scaling, character spacing, clipping text or a size PDFium treats apart")
        scale = size / 1000.0
        if init_kerning:
            tm = _multiply((1.0, 0.0, 0.0, 1.0, -init_kerning * scale, 0.0), tm)
        if not strings:
            return _multiply((1.0, 0.0, 0.0, 1.0, -pending * scale, 0.0), tm)
        codes = strings[0] if len(strings) == 1 else "".join(strings)
        advances = font.advances
        total = sum(map(advances.__getitem__, codes))
        word_space = 0.0 if font.two_byte else state.word_space
        x = (total - sum(kerns)) * scale
        if word_space:
            x += word_space * codes.count(" ")
        last = codes[-1]
        last_x = x - advances[last] * scale - (word_space if last == " " else 0.0)
        cuts: list[int] = []
        # Tw moves the glyphs after a space: the layout's glyph positions leave it out, so the repeat test is not sure
        dense = (word_space != 0 and " " in codes) or not font.narrow.isdisjoint(codes)
        if kerns:
            cuts = list(accumulate(map(len, strings[:-1])))
            if not dense and max(kerns) > font.least_advance - 71:
                dense = any(k > 0 and advances[codes[c - 1]] - k < 71 for k, c in zip(kerns, cuts, strict=False))
        m = _multiply(tm, state.ctm)
        if abs(m[1]) > 1e-9 or abs(m[2]) > 1e-9 or m[0] <= 0 or m[3] <= 0:
            raise Unsure("rotated or mirrored text")
        px, py = m[4], m[3] * state.rise + m[5]
        if not (abs(px) <= MAX_COORD and abs(py) <= MAX_COORD and abs(m[0] * x) <= MAX_COORD):
            raise Unsure("text far off the page: PDFium's single-precision floats place it otherwise")
        self.objects.append(TextObject(font, size, codes, kerns, cuts, last_x, x, m[0], m[3], px, py, holder, dense))
        self.count += 1
        self.codes += len(codes)
        if self.count == 64 and self.codes < self.min_codes * 64:
            raise Unsure("short text runs: PDFium reads them faster")
        if self.count > MAX_TEXT_OBJECTS:
            raise Unsure("too many text objects")
        return _multiply((1.0, 0.0, 0.0, 1.0, x - pending * scale, 0.0), tm)


if _pdftext is not None:
    _pdftext.setup(Unsure, Name, literal_string, TextObject)


def _parse_number(text: bytes) -> float:
    try:
        return float(text)
    except ValueError:
        raise Unsure("number") from None


def _name(raw: bytes) -> str:
    """A name's text: Unsure where PDFium would read another (a #xx escape, or past its word)."""
    if b"#" in raw or len(raw) > MAX_WORD - 1:  # PDFium's word holds the slash too
        raise Unsure("a name PDFium decodes or cuts")
    return raw.decode("latin-1")


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unsure("operand is not a number")
    return float(value)


def _bad(op: bytes):
    raise Unsure(f"operands of {op.decode('latin-1')}")
