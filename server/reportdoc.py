"""A report as sections (fields, tables, text), written out as HTML and as PDF from the same content.

The evidence report (server/packreport.py) and the assessor's report (server/assessor.py) build a
Document in one language; to_html() and to_pdf() only lay it out, so both files say the same.
Everything in a report may come from an agent (file names, paths, user and device names): the HTML
escapes every value (Jinja2 autoescape) and the PDF writes values as text, never as markup, with
control and invisible characters shown as escapes.

The PDF is made with fpdf2 (LGPL-3.0, used unmodified as a library) because it embeds OpenType
CJK fonts with CFF outlines, which Debian's fonts-noto-cjk are, as a subset (reportlab embeds only
TrueType outlines). The font is found at run time (server/pdffont.py); with none, to_pdf() gives
None and the caller says so.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime

from jinja2 import Environment

from server import pdffont


@dataclass(frozen=True)
class Fields:
    title: str
    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[float, ...] = ()  # relative column widths in the PDF; empty: equal
    note: str = ""  # under the table (e.g. "n more not listed")
    empty: str = ""  # said instead of a table without rows


@dataclass(frozen=True)
class Text:
    title: str
    lines: tuple[str, ...]
    numbered: bool = False


Section = Fields | Table | Text


@dataclass(frozen=True)
class Document:
    lang: str
    title: str
    header: tuple[tuple[str, str], ...]  # (label, value) under the title
    sections: tuple[Section, ...] = field(default_factory=tuple)
    landscape: bool = False  # wide tables (the assessor's report)


_HTML = """<!doctype html>
<html lang="{{ 'zh-CN' if doc.lang == 'zh' else 'en' }}">
<head><meta charset="utf-8"><title>{{ doc.title }}</title>
<meta name="generator" content="MiWei">
<style>
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",sans-serif;margin:2em;color:#111;line-height:1.45}
h1{font-size:1.5em;margin-bottom:.3em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #999}
table{border-collapse:collapse;width:100%;font-size:.9em}th,td{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#eee}table.fields th{width:14em}.note{color:#555;font-size:.9em}.head td,.head th{border:0;padding:1px 6px 1px 0}
.text p{white-space:pre-wrap;margin:.3em 0}
</style></head>
<body>
<h1>{{ doc.title }}</h1>
<table class="head">{% for k, v in doc.header %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
{% for s in doc.sections %}
<section>
<h2>{{ s.title }}</h2>
{% if s.kind == 'fields' %}
<table class="fields">{% for k, v in s.rows %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
{% elif s.kind == 'table' %}
{% if s.rows %}<table><thead><tr>{% for h in s.headers %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in s.rows %}<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>
{% else %}<p class="note">{{ s.empty }}</p>{% endif %}
{% if s.note %}<p class="note">{{ s.note }}</p>{% endif %}
{% else %}
<div class="text">{% if s.numbered %}<ol>{% for line in s.lines %}<li>{{ line }}</li>{% endfor %}</ol>{% else %}{% for line in s.lines %}<p>{{ line }}</p>{% endfor %}{% endif %}</div>
{% endif %}
</section>
{% endfor %}
</body></html>
"""
_ENV = Environment(autoescape=True, keep_trailing_newline=True)
_TEMPLATE = _ENV.from_string(_HTML)


def _kind(section: Section) -> str:
    return "fields" if isinstance(section, Fields) else "table" if isinstance(section, Table) else "text"


def to_html(doc: Document) -> str:
    sections = [{"kind": _kind(s), **s.__dict__} for s in doc.sections]
    return _TEMPLATE.render(doc={"lang": doc.lang, "title": doc.title, "header": doc.header, "sections": sections})


# --- PDF ------------------------------------------------------------------------------------------

_HIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_FONT = "cjk"


def clean(text: object) -> str:
    """A value as the PDF writes it: controls and invisible format characters shown as escapes."""
    value = _HIDDEN.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
    return "".join(
        f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Cf", "Zl", "Zp", "Co", "Cs") else c for c in value
    )


def to_pdf(doc: Document, created: datetime | None = None) -> bytes | None:
    """The PDF, A4, with the CJK font subset-embedded; None when no CJK font is installed."""
    font = pdffont.find()
    if font is None:
        return None
    from fpdf import FPDF  # imported here: the agent and the rest of the collector never need it
    from fpdf.fonts import FontFace

    pdf = FPDF(orientation="landscape" if doc.landscape else "portrait", unit="mm", format="A4")
    pdf.set_creation_date(created or datetime.now(UTC))
    pdf.set_title(clean(doc.title))
    pdf.set_creator("MiWei")
    pdf.set_margins(12, 12, 12)
    pdf.set_auto_page_break(True, margin=14)
    pdf.add_font(_FONT, "", font.path, collection_font_number=font.index)
    pdf.add_page()
    pdf.set_font(_FONT, size=15)
    pdf.multi_cell(0, 8, clean(doc.title), new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.set_font(_FONT, size=8.5)
    for k, v in doc.header:
        pdf.multi_cell(0, 4.6, clean(f"{k}: {v}"), new_x="LMARGIN", new_y="NEXT", align="L")
    for section in doc.sections:
        pdf.ln(3)
        pdf.set_font(_FONT, size=11.5)
        pdf.multi_cell(0, 6.5, clean(section.title), new_x="LMARGIN", new_y="NEXT", align="L")
        pdf.set_font(_FONT, size=8)
        if isinstance(section, Text):
            for i, line in enumerate(section.lines, 1):
                pdf.multi_cell(
                    0,
                    4.4,
                    clean(f"{i}. {line}" if section.numbered else line),
                    new_x="LMARGIN",
                    new_y="NEXT",
                    align="L",
                )
            continue
        if isinstance(section, Fields):
            headers, rows, widths = None, section.rows, (1.0, 3.0)
        else:
            headers, rows, widths = section.headers, section.rows, section.widths or tuple(1.0 for _ in section.headers)
        if not rows:
            pdf.multi_cell(
                0,
                4.4,
                clean(section.empty if isinstance(section, Table) else ""),
                new_x="LMARGIN",
                new_y="NEXT",
                align="L",
            )
        else:
            with pdf.table(
                col_widths=widths,
                text_align="LEFT",
                line_height=4.0,
                first_row_as_headings=headers is not None,
                headings_style=FontFace(emphasis="NONE", fill_color=(235, 235, 235)),  # one weight embedded: no bold
            ) as table:
                for row in ((headers,) if headers is not None else ()) + tuple(rows):
                    cells = table.row()
                    for value in row:
                        cells.cell(clean(value))
        if isinstance(section, Table) and section.note:
            pdf.multi_cell(0, 4.4, clean(section.note), new_x="LMARGIN", new_y="NEXT", align="L")
    return bytes(pdf.output())
