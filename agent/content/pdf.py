"""Text of PDF files through pypdf: metadata title and properties, then page text line by line
(an identifier wrapped over two lines of a table cell joined again: ids/wrap.py)."""

from __future__ import annotations

from datetime import date
from typing import BinaryIO

from pypdf import PdfReader

from agent.content.budget import Collector, OutOfBudget, Refused
from agent.content.document import BODY, PROPERTIES, TITLE
from agent.content.ids.wrap import join_wrapped
from agent.content.text import open_source

MAX_PAGES = 1000
# pypdf itself caps each decompressed stream (75 MB by default), which bounds a single page


def read_pdf(source: str | BinaryIO, out: Collector) -> None:
    """pypdf may raise anything on a hostile file; every such failure becomes Refused."""
    try:
        with open_source(source) as f:  # a file object, so pypdf seeks instead of loading it whole
            _read(PdfReader(f), out)
    except (OutOfBudget, Refused):
        raise
    except Exception as e:  # noqa: BLE001 - the boundary where a parser's failure becomes a problem
        raise Refused(f"corrupt pdf: {type(e).__name__}: {e}"[:300]) from e


def _read(reader: PdfReader, out: Collector) -> None:
    if reader.is_encrypted and not _opens_without_password(reader):
        raise Refused("encrypted")
    meta = reader.metadata or {}
    for key, where in (("/Title", TITLE), ("/Subject", PROPERTIES), ("/Keywords", PROPERTIES), ("/Author", PROPERTIES)):
        value = meta.get(key)
        if value is not None:
            out.add(where, str(value))
    for number, page in enumerate(reader.pages):
        if number >= MAX_PAGES:
            out.truncated = True
            return
        out.check_time()
        for page_line, line in enumerate(join_wrapped(page.extract_text().splitlines(), date.today()), start=1):
            out.add(BODY, line, page_line=page_line)  # markings at the top of a page stand as markings


def _opens_without_password(reader: PdfReader) -> bool:
    """Many PDFs are encrypted only to restrict printing: the empty user password opens them."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # noqa: BLE001 - e.g. AES without the cryptography package
        return False
