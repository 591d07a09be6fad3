"""The fast PDF reader: the metadata and page text PDFium would give, read in Python from the PDFs
the common producers write (see pdf_objects, pdf_xref, pdf_fonts, pdf_content, pdf_layout).

`read` gives everything or raises Unsure: nothing is handed on until the whole document has been
read, so the caller can give the whole document to PDFium instead, as if this reader did not exist.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass

from agent.content import pdf_layout
from agent.content.pdf_content import ContentReader
from agent.content.pdf_layout import PageLayout
from agent.content.pdf_objects import Ref, Stream, Unsure
from agent.content.pdf_xref import Document

MAX_TREE_DEPTH = 64
# The Python layout takes some 12 µs a text object, PDFium about 1 a glyph: a page of short runs
# (mixed-script office text, a run every few glyphs) laid out in Python reads faster through
# PDFium, so such a page hands the document over before its layout is paid for. The C layout
# (pdf_layout.in_c) takes some 0.3 µs an object, the C loop about 1: then the fast reader is ahead
# of PDFium at every run length, one glyph a run included (docs/benchmarks.md, round 11), and the
# gate holds only for a page the C layout leaves to the Python (one with a Column, below).
MIN_CODES_PER_OBJECT = 24
# True: a page whose every text object the C loop makes goes from the loop to the C layout as C
# records (ContentReader.records, PageLayout.records_text), no TextObject made or freed (a third
# of the page's time on office text, a run every few glyphs). False: TextObjects always (the
# reference the records are held to).
FAST_PAGES = True
INHERITED = ("Resources", "MediaBox", "CropBox", "Rotate")


@dataclass(frozen=True)
class FastText:
    meta: dict[str, str]  # Title, Subject, Keywords, Author as PDFium's FPDF_GetMetaText gives them
    pages: list[str]  # each page's text as FPDFText_GetText gives it ("\r\n" between lines)
    truncated: bool  # more pages than max_pages


def read(
    data: bytes, max_bytes: int, max_pages: int, check_time: Callable[[], None], keys: tuple[str, ...]
) -> FastText:
    doc = Document(data, max_bytes)
    meta = _meta(doc, keys)
    root = doc.resolve(doc.trailer.get("Root"))
    if not isinstance(root, dict):
        raise Unsure("catalog")
    pages = _pages(doc, root)
    fonts: dict = {}
    texts = []
    for number, page in enumerate(pages):
        if number >= max_pages:
            return FastText(meta, texts, True)
        check_time()
        texts.append(_page_text(doc, page, fonts, check_time))
    return FastText(meta, texts, False)


def _meta(doc: Document, keys: tuple[str, ...]) -> dict[str, str]:
    info = doc.resolve(doc.trailer.get("Info"))
    if info is None:
        return {}
    if not isinstance(info, dict):
        raise Unsure("Info")
    out = {}
    for key in keys:
        value = doc.resolve(info.get(key))
        if value is None:
            continue
        if not isinstance(value, bytes):
            raise Unsure("metadata that is not a string")
        text = decode_text_string(value)
        if text:
            out[key] = text
    return out


def decode_text_string(raw: bytes) -> str:
    """A PDF text string: UTF-16BE after its mark, else PDFDocEncoding, kept to the bytes where it
    is Latin-1 (other bytes, and NUL, are Unsure rather than a guess at PDFium's table)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF8)):
        raise Unsure("metadata in UTF-16LE or UTF-8")  # PDFium reads them; not modelled here
    if raw.startswith(codecs.BOM_UTF16_BE):
        try:
            text = raw[2:].decode("utf-16-be")
        except UnicodeDecodeError:
            raise Unsure("metadata UTF-16") from None
    else:
        if any(b < 0x20 or 0x7F <= b <= 0xA0 for b in raw):
            raise Unsure("metadata bytes outside Latin-1's printable range")
        text = raw.decode("latin-1")
    if "\x00" in text:
        raise Unsure("NUL in metadata")
    return text


def _pages(doc: Document, root: dict) -> list[dict]:
    tree = root.get("Pages")
    if not isinstance(tree, Ref):
        raise Unsure("page tree")
    out: list[dict] = []
    seen: set[int] = set()

    def walk(ref, inherited: dict, depth: int) -> None:
        if depth > MAX_TREE_DEPTH or not isinstance(ref, Ref) or ref.number in seen:
            raise Unsure("page tree shape")
        seen.add(ref.number)
        node = doc.resolve(ref)
        if not isinstance(node, dict):
            raise Unsure("page tree node")
        kind = doc.get(node, "Type")
        values = dict(inherited)
        for key in INHERITED:
            if key in node:
                values[key] = doc.resolve(node[key])
        if kind == "Pages":
            kids = doc.get(node, "Kids")
            if not isinstance(kids, list):
                raise Unsure("Kids")
            for kid in kids:
                walk(kid, values, depth + 1)
                if len(out) > 100_000:
                    raise Unsure("too many pages")
        elif kind == "Page":
            out.append({**node, **values})
        else:
            raise Unsure("page tree node type")

    walk(tree, {}, 0)
    count = doc.get(doc.resolve(tree), "Count")
    if count != len(out):
        raise Unsure("page count differs from the tree")  # PDFium's count then decides
    return out


def _page_text(doc: Document, page: dict, fonts: dict, check_time: Callable[[], None]) -> str:
    if page.get("Rotate", 0) not in (0, None) or "UserUnit" in page:
        raise Unsure("rotated page")
    box = _box(page.get("MediaBox")) or (0.0, 0.0, 612.0, 792.0)
    crop = _box(page.get("CropBox"))
    if crop is not None:
        box = (max(box[0], crop[0]), max(box[1], crop[1]), min(box[2], crop[2]), min(box[3], crop[3]))
    contents = doc.resolve(page.get("Contents"))
    if contents is None:
        return ""
    parts = contents if isinstance(contents, list) else [contents]
    # joined by a space as PDFium joins them (a comment or a backslash at the end of one runs on into the next)
    data = b" ".join(doc.stream_data(part if isinstance(part, (Ref, Stream)) else None) for part in parts)
    resources = page.get("Resources")
    if not isinstance(resources, dict):
        if resources is None:
            resources = {}
        else:
            raise Unsure("resources")
    return content_text(doc, fonts, data, resources, box, check_time)


def content_text(
    doc: Document, fonts: dict, data: bytes, resources: dict, box: tuple, check_time: Callable[[], None]
) -> str:
    """A page's text from its content and resources, as PDFium's text page gives it (or Unsure)."""
    in_c = pdf_layout.in_c()
    reader = ContentReader(doc, fonts, 0 if in_c else MIN_CODES_PER_OBJECT, check_time)
    if in_c and FAST_PAGES:
        # the page's text objects as C records, laid out in C: no TextObject made. None from the
        # layout where it is not sure: then the page from the start into TextObjects, as below
        records = reader.records(data, resources)
        if records is not None:
            text = PageLayout(box).records_text(records, check_time)
            if text is not None:
                return text
            reader = ContentReader(doc, fonts, 0, check_time)
            reader.run(data, resources)
    else:
        reader.run(data, resources)
    codes = reader.codes + reader.line_codes
    # a Column (a run of "(line) Tj T*") sends the whole page to the Python layout
    python_layout = not in_c or reader.line_codes
    if python_layout and reader.count > 8 and codes < MIN_CODES_PER_OBJECT * reader.count:
        raise Unsure("short text runs: PDFium reads them faster")
    return PageLayout(box).text(reader.objects, check_time)


def _box(value) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 4 and all(isinstance(v, (int, float)) for v in value)):
        raise Unsure("page box")
    left, bottom, right, top = (float(v) for v in value)
    return min(left, right), min(bottom, top), max(left, right), max(bottom, top)
