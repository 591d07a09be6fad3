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


def attachments(f: BinaryIO, fits: Callable[[str, int], bool]) -> list[tuple[str, bytes]]:
    """The files attached to the PDF (its EmbeddedFiles: Acrobat's and WPS's attachments panel),
    as (name, bytes), each read only when fits(name, its size); read whole under PDFium's lock
    before any is inspected (a PDF attached to a PDF is read by PDFium too). Raises Refused for an
    encrypted or unreadable PDF."""
    f.seek(0)
    if pdfium is None:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        try:
            reader = PdfReader(f)
            if reader.is_encrypted and not _opens_without_password(reader):
                raise Refused("encrypted")
            return [(name, data) for name, datas in reader.attachments.items() for data in datas if fits(name, len(data))]
        except PdfReadError as e:
            raise Refused(f"corrupt pdf: {e}"[:200]) from e
    import ctypes

    import pypdfium2.raw as pdfium_c

    found = []
    with _pdfium_lock:
        try:
            document = pdfium.PdfDocument(f)
        except pdfium.PdfiumError as e:
            raise Refused("encrypted" if getattr(e, "err_code", None) == PDFIUM_PASSWORD_ERROR else f"corrupt pdf: {e}"[:200]) from None
        try:
            for index in range(document.count_attachments()):
                attachment = document.get_attachment(index)
                name, size = _text_string(attachment.get_name()) or f"(attachment {index + 1})", ctypes.c_ulong()
                pdfium_c.FPDFAttachment_GetFile(attachment, None, 0, size)
                if size.value and fits(name, size.value):
                    found.append((name, bytes(attachment.get_data())))
        finally:
            document.close()
    return found


def _text_string(name: str) -> str:
    """A PDF text string as PDFium may hand it over: its UTF-16BE bytes (byte-order mark first)
    each as a character, as some writers store an attachment's name; read as UTF-16 then."""
    if name.startswith("\xfe\xff"):
        try:
            return name.encode("latin-1").decode("utf-16-be")[1:]
        except (UnicodeEncodeError, UnicodeDecodeError):
            return name
    return name


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
