"""The text of a file as inspection sees it: parts that know where in the document they stand.

Extraction (extract.py) turns a file into a Document; detectors (markings, identifiers) read it.
Where a part stands matters: a marking in a header, footer, title, the first lines, the file name
or the document properties is a marking; the same word in running prose usually is not.
"""

from __future__ import annotations

from dataclasses import dataclass

# where a part of the text stands in its document
NAME, TITLE, PROPERTIES, HEADER, FOOTER, BODY = "name", "title", "properties", "header", "footer", "body"
PLACES = (NAME, TITLE, PROPERTIES, HEADER, FOOTER, BODY)


@dataclass(frozen=True)
class TextPart:
    where: str  # one of PLACES
    text: str


@dataclass(frozen=True)
class Document:
    file_type: str | None  # detected from the content, e.g. "pdf", "docx", "zip", "text"; None if unknown
    parts: tuple[TextPart, ...] = ()
    truncated: bool = False  # the size or time budget ran out before the end
    problem: str | None = None  # why the text could not be (fully) extracted

    def text_of(self, *places: str) -> str:
        return "\n".join(p.text for p in self.parts if p.where in places)
