"""Fonts for the fast PDF text reader (agent/content/pdf_text.py): which text a character code
stands for and how wide its glyph is, for the fonts the common producers write.

Read exactly: simple fonts (Type1, the standard 14 among them, TrueType) through their ToUnicode
CMap, else their /Encoding (WinAnsi, MacRoman, Standard, with /Differences by Adobe glyph names and
uniXXXX); Type0 fonts with Identity-H (2-byte codes), their /W widths and a ToUnicode CMap. Anything
else (Type3, vertical writing, other CMaps, a CID font without ToUnicode, a code with no text, a
width the font program alone would give) raises Unsure: the document goes to PDFium, whose answer
is the reference (its CPDF_SimpleFont / CPDF_CIDFont read the same entries).
"""

from __future__ import annotations

import codecs
import re

from agent.content.pdf_objects import Name, Unsure

MAX_CMAP_CODES = 1 << 16  # a bfrange wider than the 2-byte code space is hostile
_CMAP_TOKEN = re.compile(
    rb"<([0-9A-Fa-f\s]*)>|(\[)|(\])|(begincodespacerange|endcodespacerange|beginbfchar|endbfchar"
    rb"|beginbfrange|endbfrange|begincidchar|begincidrange|beginnotdefrange|usecmap)"
)
_UNI_NAME = re.compile(r"uni([0-9A-F]{4})+$")
_U_NAME = re.compile(r"u([0-9A-F]{4,6})$")
_BASE_ENCODINGS = ("WinAnsiEncoding", "MacRomanEncoding", "StandardEncoding")
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,;:!?()-/")


def _tables() -> tuple[dict, dict, dict]:
    """pypdf's tables (an install requirement: the reference reader where pypdfium2 is absent):
    Adobe glyph names, the base encodings, the standard 14 fonts' AFM widths. Loaded when the
    fast reader first meets a font that needs them."""
    from pypdf._codecs import _mac_encoding, _win_encoding
    from pypdf._codecs.adobe_glyphs import adobe_glyphs
    from pypdf._codecs.core_font_metrics import CORE_FONT_METRICS
    from pypdf._codecs.std import _std_encoding

    encodings = {"WinAnsiEncoding": _win_encoding, "MacRomanEncoding": _mac_encoding, "StandardEncoding": _std_encoding}
    return adobe_glyphs, encodings, CORE_FONT_METRICS


_loaded: tuple[dict, dict, dict] | None = None


def tables() -> tuple[dict, dict, dict]:
    global _loaded  # noqa: PLW0603 - a cache of read-only tables, filled once
    if _loaded is None:
        _loaded = _tables()
    return _loaded


class Font:
    """One font resource: `codes(raw)` splits a string into character codes, `text[code]` is
    the code's Unicode text, `width(code)` its advance in thousandths of the font size."""

    def __init__(self, two_byte: bool, text: dict[int, str], widths: dict[int, int], default_width: int | None,
                 space_code: int | None, ascent: float, descent: float) -> None:  # fmt: skip
        self.two_byte = two_byte
        self.text = text
        self.widths = widths
        self.default_width = default_width
        self.space_code = space_code  # the code whose text is " " (PDFium's CharCodeFromUnicode)
        self.ascent, self.descent = ascent, descent
        # for whole strings at C speed: codes as characters (a 2-byte code is one UTF-16 unit of
        # the string decoded as UTF-16BE, surrogates passed through), their text and advances
        usable = {code for code, t in text.items() if t and (code in widths or default_width is not None)}
        self.usable = frozenset(chr(code) for code in usable)
        self.table = {code: text[code] for code in usable}
        self.advances = {chr(code): widths.get(code, default_width) for code in usable}
        self.narrow = frozenset(c for c, w in self.advances.items() if w < 71)  # glyphs PDFium may take for repeats
        self.least_advance = min(self.advances.values(), default=0)
        # no TJ gap narrower than this can make PDFium see a space (pdf_layout's _kerning_space)
        by_glyph = (
            min(
                (
                    w / 2 if w < 300 else w / 4 if w < 500 else w / 5 if w < 700 else w / 6
                    for w in set(self.advances.values())
                    if w > 0
                ),
                default=0,
            )
            / 1000
        )
        space = self.widths.get(space_code, 0) / 1000 if space_code is not None else 0
        self.least_space_gap = min(by_glyph, space / 2) if 0 < space <= 1 / 3 else by_glyph
        # a 1-byte font whose codes each stand for one character decodes through a charmap (C speed);
        # its first unusable code stands for the separator of joined strings ("\uffff")
        self.charmap: str | None = None
        self.separator = "\uffff"
        if not two_byte and all(len(t) == 1 for t in self.table.values()):
            spare = next((code for code in range(256) if code not in self.table), None)
            if spare is not None:
                chars = [self.table.get(code, "\ufffe") for code in range(256)]
                chars[spare] = "\uffff"
                self.charmap = "".join(chars)
                self.separator = chr(spare)

    def text_of(self, codes: str) -> str:
        """The Unicode text of codes (Font.decode's), the separator turned into "\uffff"."""
        if self.charmap is not None:
            return codecs.charmap_decode(codes.encode("latin-1"), "strict", self.charmap)[0]
        return codes.translate(self.table)

    def decode(self, raw: bytes) -> str:
        """The string's codes as characters (one per code): Unsure where a code has no text or width."""
        if self.two_byte:
            if len(raw) % 2:
                raise Unsure("odd length string in a 2-byte font")
            codes = raw.decode("utf-16-be", "surrogatepass")
        else:
            codes = raw.decode("latin-1")
        if not self.usable.issuperset(codes):
            raise Unsure("a code without text or width")
        return codes

    def codes(self, raw: bytes) -> list[int]:
        if not self.two_byte:
            return list(raw)
        if len(raw) % 2:
            raise Unsure("odd length string in a 2-byte font")
        return [raw[i] << 8 | raw[i + 1] for i in range(0, len(raw), 2)]

    def advance(self, code: int) -> int:
        """The glyph's advance (zero is a width like any other here)."""
        w = self.widths.get(code, self.default_width)
        if w is None:
            raise Unsure("width only the font program gives")
        return w

    def width(self, code: int) -> int:
        w = self.widths.get(code, self.default_width)
        if w is None or w <= 0:
            raise Unsure("width only the font program gives")  # PDFium then asks the glyph's box
        return w

    def unicode(self, code: int) -> str:
        t = self.text.get(code)
        if not t:
            raise Unsure("a code without text")
        return t


def load_font(doc, info: dict) -> Font:
    subtype = doc.get(info, "Subtype")
    if subtype == "Type0":
        return _type0(doc, info)
    if subtype not in ("Type1", "TrueType", "MMType1"):
        raise Unsure(f"font {subtype}")
    return _simple(doc, info)


def _descriptor_metrics(doc, descriptor: dict | None, fallback: tuple[float, float]) -> tuple[float, float]:
    if not isinstance(descriptor, dict):
        return fallback
    for key in ("FontFile", "FontFile2", "FontFile3"):
        if key in descriptor:
            # PDFium measures glyph boxes in the font program: one that does not even inflate
            # (a damaged file) makes it substitute a font, whose boxes this reader cannot foresee
            doc.stream_data(descriptor[key])
    ascent, descent = doc.get(descriptor, "Ascent"), doc.get(descriptor, "Descent")
    if isinstance(ascent, (int, float)) and isinstance(descent, (int, float)) and ascent > descent:
        return float(ascent), float(descent)
    return fallback


def _simple(doc, info: dict) -> Font:
    glyphs, encodings, metrics = tables()
    base = doc.get(info, "BaseFont")
    descriptor = doc.get(info, "FontDescriptor")
    embedded = isinstance(descriptor, dict) and any(k in descriptor for k in ("FontFile", "FontFile2", "FontFile3"))
    flags = doc.get(descriptor, "Flags") if isinstance(descriptor, dict) else None
    to_unicode = doc.get(info, "ToUnicode")
    text: dict[int, str] = _cmap(doc.stream_data(to_unicode), two_byte=False) if to_unicode is not None else {}
    encoding = doc.get(info, "Encoding")
    base_name, differences = None, None
    if isinstance(encoding, str):
        base_name = encoding
    elif isinstance(encoding, dict):
        base_name = doc.get(encoding, "BaseEncoding")
        differences = doc.get(encoding, "Differences")
    elif encoding is not None:
        raise Unsure("encoding")
    symbolic = isinstance(flags, int) and bool(flags & 4) and not bool(flags & 32)
    standard_font = isinstance(base, str) and base in metrics and not embedded
    if isinstance(base, str) and ("Dingbats" in base or base.startswith("Symbol")) and not embedded:
        raise Unsure("Symbol and ZapfDingbats: their own encodings")
    if base_name is None and (standard_font and base not in ("Symbol", "ZapfDingbats")) and not symbolic:
        base_name = "StandardEncoding"
    mapped: dict[int, str] = {}
    if base_name is not None:
        if base_name not in _BASE_ENCODINGS:
            raise Unsure(f"encoding {base_name}")
        table = encodings[base_name]
        for code in range(32, 256):
            if base_name == "MacRomanEncoding" and code == 0xDB:
                continue  # pypdf has the Euro there (Apple's later table), PDFium the currency sign
            char = table[code] if code < len(table) else None
            if (
                char
                and char != "\ufffd"
                and not (base_name == "WinAnsiEncoding" and code in (0x7F, 0x81, 0x8D, 0x8F, 0x90, 0x9D))
            ):
                mapped[code] = char
    if differences is not None:
        if doc.get(info, "Subtype") == "TrueType":
            raise Unsure("Differences in a TrueType font")  # PDFium takes them for glyph names, not the text
        if not isinstance(differences, list):
            raise Unsure("differences")
        code = None
        for item in differences:
            if isinstance(item, int):
                code = item
            elif isinstance(item, Name) and code is not None and 0 <= code < 256:
                char = _glyph_text(item, glyphs)
                if char is None:
                    raise Unsure(f"a glyph name PDFium may read otherwise: {item[:20]}")
                mapped[code] = char
                code += 1
            else:
                raise Unsure("differences")
    for code, char in mapped.items():
        text.setdefault(code, char)  # ToUnicode first, as PDFium
    widths = _simple_widths(doc, info, base, metrics, mapped, standard_font)
    fallback = (
        (metrics[base].font_descriptor.ascent, metrics[base].font_descriptor.descent)
        if standard_font
        else (800.0, -200.0)
    )
    ascent, descent = _descriptor_metrics(doc, descriptor, fallback)
    return Font(False, text, widths, None, _space_code(text), ascent, descent)


def _glyph_text(name: str, glyphs: dict) -> str | None:
    """A glyph name's text where PDFium surely reads it the same: a name of the Adobe glyph list
    standing for one printable character, or uniXXXX of one. Others (ligature names, u+XXXXX,
    .notdef, the dingbats' a1...) are None, and then Unsure (see _simple)."""
    if "_" in name or name.startswith("."):
        return None  # ligature names (f_f) and .notdef: PDFium keeps the base encoding or a space
    char = glyphs.get("/" + name)
    if char is None and _UNI_NAME.match(name) and len(name) == 7:
        char = chr(int(name[3:], 16))
    if char is None or len(char) != 1 or not char.isprintable() or 0xD800 <= ord(char) < 0xE000:
        return None
    if name.startswith("a") and name[1:].isdigit():
        return None  # the dingbats' names: PDFium reads them as the dingbats
    return char


def _simple_widths(doc, info, base, metrics, mapped, standard_font) -> dict[int, int]:
    widths_array = doc.get(info, "Widths")
    if widths_array is not None:
        first = doc.get(info, "FirstChar")
        if not isinstance(widths_array, list) or not isinstance(first, int) or not 0 <= first < 256:
            raise Unsure("widths")
        last = doc.get(info, "LastChar", 255)
        if not isinstance(last, int):
            raise Unsure("LastChar")
        out = {}
        for i, w in enumerate(widths_array):
            w = doc.resolve(w)
            if not isinstance(w, (int, float)):
                raise Unsure("width")
            if first + i <= min(last, 255):  # PDFium gives codes past LastChar no width
                out[first + i] = int(w)
        return out
    if not standard_font:
        raise Unsure("no widths and not a standard font")
    afm = metrics[base].character_widths
    # pypdf's AFM tables differ from PDFium's built-in fonts for some glyphs (the Euro, guillemets,
    # Helvetica-Bold's @): only letters, digits, the space and plain punctuation are taken
    return {code: int(afm[char]) for code, char in mapped.items() if char in afm and char in _PLAIN}


def _type0(doc, info: dict) -> Font:
    if doc.get(info, "Encoding") != "Identity-H":
        raise Unsure("CMap other than Identity-H")
    descendants = doc.get(info, "DescendantFonts")
    if not isinstance(descendants, list) or len(descendants) != 1:
        raise Unsure("descendant fonts")
    cid = doc.resolve(descendants[0])
    if not isinstance(cid, dict) or doc.get(cid, "Subtype") not in ("CIDFontType0", "CIDFontType2"):
        raise Unsure("CID font")
    to_unicode = doc.get(info, "ToUnicode")
    if to_unicode is None:
        raise Unsure("CID font without ToUnicode")
    text = _cmap(doc.stream_data(to_unicode), two_byte=True)
    default = doc.get(cid, "DW", 1000)
    if not isinstance(default, (int, float)):
        raise Unsure("DW")
    widths = _cid_widths(doc, doc.get(cid, "W"))
    ascent, descent = _descriptor_metrics(doc, doc.get(cid, "FontDescriptor"), (880.0, -120.0))
    return Font(True, text, widths, int(default), _space_code(text), ascent, descent)


def _cid_widths(doc, array) -> dict[int, int]:
    out: dict[int, int] = {}
    if array is None:
        return out
    if not isinstance(array, list):
        raise Unsure("W")
    i = 0
    items = [doc.resolve(x) for x in array]
    while i < len(items):
        first = items[i]
        if not isinstance(first, int) or i + 1 >= len(items):
            raise Unsure("W")
        second = items[i + 1]
        if isinstance(second, list):
            for k, w in enumerate(second):
                w = doc.resolve(w)
                if not isinstance(w, (int, float)):
                    raise Unsure("W width")
                out.setdefault(first + k, int(w))
            i += 2
        else:
            if i + 2 >= len(items) or not isinstance(second, int) or not isinstance(items[i + 2], (int, float)):
                raise Unsure("W range")
            if second - first > MAX_CMAP_CODES:
                raise Unsure("W range too wide")
            for code in range(first, second + 1):
                out.setdefault(code, int(items[i + 2]))
            i += 3
        if len(out) > MAX_CMAP_CODES:
            raise Unsure("W too long")
    return out


def _space_code(text: dict[int, str]) -> int | None:
    codes = [code for code, t in text.items() if t == " "]
    return min(codes) if codes else None


def _utf16(raw: bytes) -> str:
    if len(raw) % 2:
        raise Unsure("odd ToUnicode value")
    units = [raw[i] << 8 | raw[i + 1] for i in range(0, len(raw), 2)]
    if any(0xD800 <= u < 0xE000 for u in units):
        raise Unsure("surrogates in ToUnicode")  # PDFium's handling of pairs is not modelled
    return "".join(map(chr, units))


_HEX = rb"<[0-9A-Fa-f\s]*+>"
_BFCHAR = re.compile(rb"\s*+(" + _HEX + rb")\s*+(" + _HEX + rb")")
_BFRANGE = re.compile(rb"\s*+(" + _HEX + rb")\s*+(" + _HEX + rb")\s*+(" + _HEX + rb"|\[(?:\s*+" + _HEX + rb")*+\s*+\])")
_SECTION = re.compile(rb"(?<![^\s])(\d+)\s++begin(bfchar|bfrange)(?![^\s<])(.*?)end\2(?![^\s])", re.S)
_SECTION_START = re.compile(rb"begin(?:bfchar|bfrange|cidchar|cidrange|notdefrange)|usecmap")


def _hex(token: bytes) -> bytes:
    digits = re.sub(rb"\s", b"", token[1:-1])
    if len(digits) % 2:
        raise Unsure("CMap hex")
    return bytes.fromhex(digits.decode())


def _cmap(data: bytes, two_byte: bool) -> dict[int, str]:
    """A ToUnicode CMap's bfchar and bfrange sections (the array form too), read only when every
    section is whole: its count, then exactly that many entries, then its end. Anything else (a
    missing end, a count off, a stray token, usecmap, cid sections) is Unsure: PDFium may reject
    such a CMap and read the font's encoding, and a decoy CMap must not decide the text."""
    out: dict[int, str] = {}
    size = 2 if two_byte else 1
    sections = list(_SECTION.finditer(data))
    if len(sections) != len(_SECTION_START.findall(data)):
        raise Unsure("a CMap section not whole, or of a kind not read")
    for section in sections:
        count, kind, body = int(section.group(1)), section.group(2), section.group(3)
        entry = _BFCHAR if kind == b"bfchar" else _BFRANGE
        entries, pos = [], 0
        while True:
            m = entry.match(body, pos)
            if m is None:
                break
            entries.append(m.groups())
            pos = m.end()
        if body[pos:].strip() or len(entries) != count or count > MAX_CMAP_CODES:
            raise Unsure("a CMap section whose count or entries are off")
        for groups in entries:
            if kind == b"bfchar":
                code, dest = _hex(groups[0]), _hex(groups[1])
                if len(code) != size:
                    raise Unsure("bfchar")
                out[int.from_bytes(code, "big")] = _utf16(dest)
                continue
            low, high = _hex(groups[0]), _hex(groups[1])
            if len(low) != size or len(high) != size:
                raise Unsure("bfrange")
            lo, hi = int.from_bytes(low, "big"), int.from_bytes(high, "big")
            if hi < lo or hi - lo > MAX_CMAP_CODES:
                raise Unsure("bfrange bounds")
            if groups[2].startswith(b"["):
                dests = [_hex(t) for t in re.findall(_HEX, groups[2])]
                if len(dests) < hi - lo + 1:
                    raise Unsure("bfrange array")
                for k in range(hi - lo + 1):
                    out[lo + k] = _utf16(dests[k])
            else:
                start = _utf16(_hex(groups[2]))
                if not start or len(start) != 1:
                    raise Unsure("bfrange to a string")  # PDFium steps the last unit: not modelled
                if (lo >> 8) != (hi >> 8) and two_byte:
                    raise Unsure("bfrange across a first byte")
                for k in range(hi - lo + 1):
                    value = ord(start) + k
                    if 0xD800 <= value < 0xE000 or value > 0xFFFF:
                        raise Unsure("bfrange past the BMP")
                    out[lo + k] = chr(value)
        if len(out) > MAX_CMAP_CODES:
            raise Unsure("CMap too long")
    for t in out.values():
        if any(ord(c) < 0x20 or c in "\ufffe\uffff" for c in t):
            raise Unsure("ToUnicode to a control character")
    return out
