"""The parts of a document NFKC-normalised once for all its detectors: the identifier and the
marking detectors both read normalised text (full-width digits, letters and colons as ASCII), and
normalising a megabyte twice cost a tenth of their time. Kept per thread while the document lives
(a weak reference), as the detectors' own scans are.

The parts joined by line breaks, and that text's UTF-8 encoding, are kept the same way (joined):
the identifier scan, the column context's header search and the marking terms' search all read
them, and a megabyte joined or encoded costs a millisecond or more each time. RE2 reads bytes: its
wrapper, given a str, encodes the whole text on every call."""

from __future__ import annotations

import threading
import unicodedata
import weakref
from functools import partial
from operator import attrgetter

from agent.content.document import Document

_nfkc = partial(unicodedata.normalize, "NFKC")
_TEXT_OF = attrgetter("text")
_cache = threading.local()  # (weak reference to the document, its normalised texts, their Joined)


class Joined:
    """The normalised parts joined by "\\n" (text), and its UTF-8 bytes made when first asked."""

    __slots__ = ("_one_line_a_part", "_utf8", "text", "texts")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts  # the normalised parts (shared: do not change)
        self.text = "\n".join(texts)
        self._utf8: bytes | None = None
        self._one_line_a_part: bool | None = None

    def utf8(self) -> bytes:
        if self._utf8 is None:
            self._utf8 = self.text.encode()
        return self._utf8

    def one_line_a_part(self) -> bool:
        """No part holds a line break: line i of text is part i (extraction's usual shape)."""
        if self._one_line_a_part is None:
            self._one_line_a_part = self.text.count("\n") == len(self.texts) - 1
        return self._one_line_a_part


def normalised_texts(document: Document) -> list[str]:
    """NFKC of each part's text, in the order of document.parts (the list is shared: do not change it)."""
    return _entry(document)[1]


def joined(document: Document) -> Joined:
    """The normalised parts joined by "\\n", made once per document (shared: do not change it)."""
    entry = _entry(document)
    if entry[2] is None:
        entry[2] = Joined(entry[1])
    return entry[2]


def _entry(document: Document) -> list:
    held = getattr(_cache, "entry", None)
    if held is not None and held[0]() is document:
        return held
    texts = list(map(_nfkc, map(_TEXT_OF, document.parts)))
    _cache.entry = [weakref.ref(document, _forget), texts, None]
    return _cache.entry


def _forget(_ref: weakref.ref) -> None:
    _cache.__dict__.pop("entry", None)  # no text kept in memory after its document
