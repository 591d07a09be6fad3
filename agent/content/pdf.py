"""Text of PDF files: metadata title and properties, then page text line by line (an identifier
wrapped over two lines of a table cell joined again: ids/wrap.py).

First, where FAST_READER is on and PDFium is the reader in force, the fast reader
(agent/content/pdf_fast.py and the pdf_* modules under it) reads in Python the PDFs common producers
write (classic or stream xrefs, Flate, simple and Identity-H fonts with their widths and ToUnicode)
and lays their text out by PDFium's text-page rules, so that it gives PDFium's very page text, about
twice as fast on pages of whole lines (pages of short runs it hands to PDFium, which is faster there);
the moment anything is outside what it reads exactly (a broken xref, encryption, a Type3
font, a glyph box it would need...) it gives up and the WHOLE document goes to PDFium. It returns
nothing before it has read every page, so a document is read by one reader or the other, never a
mix. tests/agent/content/test_pdf_fast.py holds it to PDFium on real producers' files.

Two readers give the same lines: PDFium (pypdfium2, the default: 3-8x faster, measured beside
pypdf and pdf_oxide in BENCHMARKS.md, "PDF readers") and pypdf, pure Python, the reference and the fallback where
pypdfium2 is not installed. PDFium is C parsing hostile files: it runs only inside the
unprivileged, memory-capped inspection workers (agent/content/worker.py), which the agent kills
and reports (`inspection_failed`) if the parser crashes or hangs. PDFium is not thread-safe, so
calls into it are serialised per process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from importlib.util import find_spec
from typing import TYPE_CHECKING, BinaryIO

from loguru import logger

from agent.content import pdf_fast
from agent.content.budget import Collector, OutOfBudget, Refused
from agent.content.document import BODY, PROPERTIES, TITLE
from agent.content.ids.wrap import join_wrapped, join_wrapped_fast
from agent.content.lazy import lazy
from agent.content.pdf_objects import Unsure
from agent.content.text import open_source

if TYPE_CHECKING:
    from pypdf import PdfReader

# both readers imported when first used (some 30 MB): the agent's main process never reads a PDF,
# an inspection worker loads them in its warm-up (agent/content/worker.py)
pdfium = lazy("pypdfium2", globals(), "pdfium") if find_spec("pypdfium2") else None  # None: pypdf reads

MAX_PAGES = 1000
# pypdf itself caps each decompressed stream (75 MB by default), which bounds a single page


ENGINES = ("pdfium", "pypdf")
ENGINE = "pdfium" if pdfium is not None else "pypdf"  # what read_pdf uses unless told
PDFIUM_PASSWORD_ERROR = 4  # FPDF_ERR_PASSWORD: encrypted with a user password
_pdfium_lock = threading.Lock()
FAST_READER = True  # False: every PDF straight to ENGINE (the reference the fast reader is held to)
MAX_FAST_BYTES = 32 << 20  # a larger file goes to PDFium, which seeks instead of holding it whole
# The share of the time left that the fast reader may take before it gives the document to PDFium.
# On shapes it reads slowly (hundreds of thousands of text objects, a line drawn right to left
# object by object, huge CMaps) it costs 6-10 times PDFium's CPU: a file built so would otherwise
# spend the whole budget in it where PDFium alone finishes. Past its share, PDFium reads with
# the rest, so a PDF costs at most this share of its budget more than PDFium alone.
FAST_TIME_SHARE = 0.25
FAST_LINES = True  # False: join_wrapped tries every line, add adds each (the reference of the fast path)
META_KEYS = (("Title", TITLE), ("Subject", PROPERTIES), ("Keywords", PROPERTIES), ("Author", PROPERTIES))


def read_pdf(source: str | BinaryIO, out: Collector, engine: str | None = None) -> None:
    """A parser may raise anything on a hostile file; every such failure becomes Refused."""
    fast = FAST_READER and engine is None and ENGINE == "pdfium"
    engine = engine or ENGINE
    try:
        with open_source(source) as f:  # a file object, so the reader seeks instead of loading it whole
            if fast and _read_fast(f, out):
                return
            if engine == "pdfium" and pdfium is not None:
                with _pdfium_lock:
                    _read_pdfium(f, out)
            else:
                from pypdf import PdfReader

                _read(PdfReader(f), out)
    except (OutOfBudget, Refused):
        raise
    except Exception as e:  # noqa: BLE001 - the boundary where a parser's failure becomes a problem
        raise Refused(f"corrupt pdf: {type(e).__name__}: {e}"[:300]) from e


def _read_fast(f: BinaryIO, out: Collector) -> bool:
    """The fast reader's text added to out, True; False (nothing added, f rewound) where it is
    not sure of the document: then PDFium reads it."""
    start = f.tell()
    data = f.read(MAX_FAST_BYTES + 1)
    if len(data) > MAX_FAST_BYTES:
        f.seek(start)
        return False
    give_way_at = out.clock() + FAST_TIME_SHARE * max(0.0, out.seconds_left())

    def check_time() -> None:
        out.check_time()
        if out.clock() > give_way_at:
            raise Unsure("time: PDFium reads it faster")

    try:
        found = pdf_fast.read(data, out.bytes_left, MAX_PAGES, check_time, tuple(k for k, _ in META_KEYS))
    except (OutOfBudget, Refused):
        raise
    except Unsure as e:
        logger.debug("pdf fast reader gave way reason={!r}", str(e)[:80])
        f.seek(start)
        return False
    except Exception as e:  # noqa: BLE001 - a case the fast reader did not foresee: PDFium, the reference, decides
        logger.warning("pdf fast reader failed, PDFium reads error={}", type(e).__name__)
        f.seek(start)
        return False
    for key, where in META_KEYS:
        if key in found.meta:
            out.add(where, found.meta[key])
    for text in found.pages:
        out.check_time()
        _add_page(out, text)
    if found.truncated:
        out.truncated = True
    return True


def _read_pdfium(f: BinaryIO, out: Collector) -> None:
    try:
        document = pdfium.PdfDocument(f)  # opens with the empty user password, as pypdf's decrypt("")
    except pdfium.PdfiumError as e:
        if getattr(e, "err_code", None) == PDFIUM_PASSWORD_ERROR:
            raise Refused("encrypted") from None
        raise
    try:
        meta = document.get_metadata_dict(skip_empty=True)
        for key, where in META_KEYS:
            if meta.get(key):
                out.add(where, meta[key])
        for number in range(len(document)):
            if number >= MAX_PAGES:
                out.truncated = True
                return
            out.check_time()
            page = document[number]
            try:
                textpage = page.get_textpage()
                try:
                    text = textpage.get_text_range()
                finally:
                    textpage.close()
            finally:
                page.close()
            _add_page(out, text)
    finally:
        document.close()


MAX_ATTACHMENTS = 10_000  # files attached (name tree entries and annotations) read of one PDF
MAX_TREE_NODES = 100_000  # nodes of its EmbeddedFiles name tree visited
MAX_RATIO = 100  # decoded to stored: an attachment past it is a bomb (as a zip member's is)
# one is in a PDF with any attachment: an embedded file is a stream, whose dictionary no object
# stream can hold, and its /Type /EmbeddedFile is what Acrobat, Word, WPS and pypdf write (a PDF
# whose writer left the type out, its annotation in an object stream, is not parsed for them)
_ATTACHMENT_KEYS = (b"/EmbeddedFile", b"/FileAttachment")


def attachments(f: BinaryIO, room: int, member_bytes: int, check_time: Callable[[], None]) -> tuple[list, list]:
    """([(name, bytes)], [(name, why, bomb)]) of the files attached to the PDF: its EmbeddedFiles
    (Acrobat's and WPS's attachments panel) and FileAttachment annotations (the "Attach File"
    comment), each decoded here, bounded: at most member_bytes each and room in all, and a
    ratio of decoded to stored bytes of MAX_RATIO (PDFium and pypdf decode an attachment whole
    to tell its size: a 1 MB PDF of zeros took 2 GB). Raises Refused for an encrypted or broken PDF."""
    if not _may_attach(f, check_time):
        return [], []
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    f.seek(0)
    try:
        reader = PdfReader(f, strict=False)
        if reader.is_encrypted and not _opens_without_password(reader):
            raise Refused("encrypted")
        specs, cut = _attached_specs(reader, check_time)
        found, problems, seen = [], [], set()
        if cut:  # what was not looked at is said, not passed over (the walk names it skipped)
            problems.append(("(attachments)", f"more than {MAX_ATTACHMENTS} attachments or {MAX_PAGES} pages: the rest not read", False))
        for name, spec in specs:
            check_time()
            stream = _embedded_stream(spec)
            if stream is None or id(stream) in seen:
                continue
            seen.add(id(stream))
            data, why, bomb = _decoded(stream, min(member_bytes, room))
            if data is None:
                problems.append((name, why, bomb))
                continue
            room -= len(data)
            found.append((name, data))
        return found, problems
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise Refused(f"corrupt pdf: {type(e).__name__}: {e}"[:200]) from None


def _may_attach(f: BinaryIO, check_time: Callable[[], None]) -> bool:
    """Whether the PDF's bytes hold a key an attachment has (_ATTACHMENT_KEYS): most PDFs are not
    parsed again for attachments."""
    f.seek(0)
    tail = b""
    while chunk := f.read(1 << 20):
        check_time()
        window = tail + chunk
        if any(key in window for key in _ATTACHMENT_KEYS):
            return True
        tail = chunk[-16:]
    return False


def _attached_specs(reader: PdfReader, check_time: Callable[[], None]) -> tuple[list, bool]:
    """([(name, file specification)] of every attachment: the name tree's, then the annotations'),
    and whether some were not looked at (past MAX_ATTACHMENTS, MAX_TREE_NODES or MAX_PAGES)."""
    from pypdf.generic import ArrayObject, DictionaryObject

    found: list = []
    root = _resolved(reader.trailer.get("/Root"))
    names = _resolved(root.get("/Names")) if isinstance(root, DictionaryObject) else None
    tree = _resolved(names.get("/EmbeddedFiles")) if isinstance(names, DictionaryObject) else None
    stack, visited = ([tree] if tree is not None else []), 0
    while stack and visited < MAX_TREE_NODES and len(found) < MAX_ATTACHMENTS:
        check_time()
        node = stack.pop()
        visited += 1
        if not isinstance(node, DictionaryObject):
            continue
        pairs = node.get("/Names")
        if isinstance(pairs, ArrayObject):
            for at in range(0, min(len(pairs) - 1, 2 * (MAX_ATTACHMENTS - len(found))), 2):
                found.append((str(pairs[at].get_object()), pairs[at + 1].get_object()))
        kids = node.get("/Kids")
        if isinstance(kids, ArrayObject):
            stack.extend(kid.get_object() for kid in kids[:MAX_TREE_NODES])
    cut = bool(stack) or len(found) >= MAX_ATTACHMENTS  # (the tree's nodes or its entries past their count)
    for number, page in enumerate(reader.pages):
        if number >= MAX_PAGES or len(found) >= MAX_ATTACHMENTS:
            cut = True
            break
        check_time()
        annotations = page.get("/Annots")
        annotations = annotations.get_object() if annotations is not None else None
        if not isinstance(annotations, ArrayObject):
            continue
        for annotation in annotations:
            annotation = annotation.get_object()
            if isinstance(annotation, DictionaryObject) and annotation.get("/Subtype") == "/FileAttachment":
                spec = annotation.get("/FS")
                if spec is not None:
                    found.append(("", spec.get_object()))
    return [(_spec_name(name, spec), spec) for name, spec in found[:MAX_ATTACHMENTS]], cut


def _resolved(value):
    """An indirect reference's object (None stays None)."""
    return value.get_object() if value is not None else None


def _spec_name(name: str, spec) -> str:
    from pypdf.generic import DictionaryObject

    if isinstance(spec, DictionaryObject):
        for key in ("/UF", "/F"):
            value = spec.get(key)
            if value is not None and str(value.get_object()).strip():
                return str(value.get_object())
    return name


def _embedded_stream(spec):
    from pypdf.generic import DictionaryObject, StreamObject

    if not isinstance(spec, DictionaryObject):
        return None
    files = spec.get("/EF")
    files = files.get_object() if files is not None else None
    if not isinstance(files, DictionaryObject):
        return None
    for key in ("/F", "/UF"):
        stream = files.get(key)
        stream = stream.get_object() if stream is not None else None
        if isinstance(stream, StreamObject):
            return stream
    return None


def _decoded(stream, limit: int) -> tuple[bytes | None, str, bool]:
    """(the attachment's bytes, or None with why and whether a bomb): stored as it is, or
    FlateDecode inflated no further than limit; any other filter decoded by pypdf only where
    MAX_RATIO times what is stored fits in limit."""
    import zlib

    from pypdf.generic import ArrayObject

    raw = stream._data  # (pypdf keeps a stream's stored bytes here; get_data() decodes them whole)
    filters = stream.get("/Filter")
    filters = filters.get_object() if filters is not None else None
    if isinstance(filters, ArrayObject):
        filters = filters[0] if len(filters) == 1 else filters
    params = stream.get("/DecodeParms")
    if filters is None:
        return (raw, "", False) if len(raw) <= limit else (None, f"over the {limit} bytes left to it", False)
    if filters == "/FlateDecode" and params is None:
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(raw, limit + 1)
        except zlib.error as e:
            return None, f"corrupt attachment: {e}"[:200], False
        if len(data) > limit:
            bomb = len(data) > MAX_RATIO * max(len(raw), 1)
            return None, f"over the {limit} bytes left to it" + (f", a ratio over {MAX_RATIO}" if bomb else ""), bomb
        return data, "", False
    if len(raw) * MAX_RATIO > limit:
        return None, f"filter {filters} on {len(raw)} bytes: not decoded", False
    try:
        data = stream.get_data()
    except Exception as e:  # noqa: BLE001 - pypdf's decoders raise what they meet
        return None, f"corrupt attachment: {type(e).__name__}"[:200], False
    return (data, "", False) if len(data) <= limit else (None, f"over the {limit} bytes left to it", False)


def _read(reader: PdfReader, out: Collector) -> None:
    if reader.is_encrypted and not _opens_without_password(reader):
        raise Refused("encrypted")
    meta = reader.metadata or {}
    for key, where in META_KEYS:
        value = meta.get("/" + key)
        if value is not None:
            out.add(where, str(value))
    for number, page in enumerate(reader.pages):
        if number >= MAX_PAGES:
            out.truncated = True
            return
        out.check_time()
        _add_page(out, page.extract_text())


def _add_page(out: Collector, text: str) -> None:
    """A page's lines, each knowing its line of the page (markings at the top of a page stand as
    markings), identifiers wrapped over two lines joined."""
    if FAST_LINES:
        out.add_all(BODY, join_wrapped_fast(text.splitlines(), date.today()), first_page_line=1)
        return
    for page_line, line in enumerate(join_wrapped(text.splitlines(), date.today()), start=1):
        out.add(BODY, line, page_line=page_line)


def _opens_without_password(reader: PdfReader) -> bool:
    """Many PDFs are encrypted only to restrict printing: the empty user password opens them."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # noqa: BLE001 - e.g. AES without the cryptography package
        return False
