"""Text of OpenDocument files (odt, ods, odp): meta.xml, styles.xml headers and footers, content.xml."""

from __future__ import annotations

from agent.content.budget import Collector
from agent.content.document import BODY, FOOTER, HEADER, PROPERTIES, TITLE
from agent.content.ooxml import read_member
from agent.content.xmltext import FieldsHandler, TextHandler
from agent.content.zipread import BoundedZip

META_FIELDS = {"title": TITLE, "subject": PROPERTIES, "description": PROPERTIES, "keyword": PROPERTIES}
META_LABELLED = {"user-defined": PROPERTIES}
PARAGRAPHS = frozenset({"p", "h"})
INLINE = {"s": " ", "tab": "\t", "line-break": "\n"}
REGIONS = {
    "header": HEADER, "header-left": HEADER, "header-first": HEADER,
    "footer": FOOTER, "footer-left": FOOTER, "footer-first": FOOTER,
}  # fmt: skip


class _StylesHandler(TextHandler):
    """styles.xml holds the page headers and footers; its other text (none, usually) is ignored."""

    def __init__(self, out: Collector) -> None:
        super().__init__(out, BODY, PARAGRAPHS, PARAGRAPHS, inline=INLINE)
        self._region = 0

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name in REGIONS:
            self._region += 1
            self.where = REGIONS[name]
        if self._region:
            super().start(name, attrs)

    def end(self, name: str) -> None:
        if self._region:
            super().end(name)
        if name in REGIONS:
            self._region -= 1


def read_odf(z: BoundedZip, out: Collector) -> None:
    read_member(z, "meta.xml", FieldsHandler(out, META_FIELDS, META_LABELLED), out)
    read_member(z, "styles.xml", _StylesHandler(out), out)
    read_member(z, "content.xml", TextHandler(out, BODY, PARAGRAPHS, PARAGRAPHS, inline=INLINE), out)
