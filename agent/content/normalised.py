"""The parts of a document NFKC-normalised once for all its detectors: the identifier and the
marking detectors both read normalised text (full-width digits, letters and colons as ASCII), and
normalising a megabyte twice cost a tenth of their time. Kept per thread while the document lives
(a weak reference), as the detectors' own scans are."""

from __future__ import annotations

import threading
import unicodedata
import weakref
from functools import partial
from operator import attrgetter

from agent.content.document import Document

_nfkc = partial(unicodedata.normalize, "NFKC")
_TEXT_OF = attrgetter("text")
_cache = threading.local()  # (weak reference to the document, its normalised texts)


def normalised_texts(document: Document) -> list[str]:
    """NFKC of each part's text, in the order of document.parts (the list is shared: do not change it)."""
    held = getattr(_cache, "entry", None)
    if held is not None and held[0]() is document:
        return held[1]
    texts = list(map(_nfkc, map(_TEXT_OF, document.parts)))
    _cache.entry = (weakref.ref(document, _forget), texts)
    return texts


def _forget(_ref: weakref.ref) -> None:
    _cache.__dict__.pop("entry", None)  # no text kept in memory after its document
