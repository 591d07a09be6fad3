"""Write a Doc as txt, csv, docx, xlsx, pptx, pdf or zip, byte for byte the same for the same Doc,
and convert files with LibreOffice (`soffice --headless --convert-to`) where it is installed.

OOXML is written by hand (as tests/agent/content/makers.py does) so that tables, headers and
footers sit where Word puts them; xlsx goes through openpyxl, numeric cells written with the exact
digits (`<v>330102197101011234</v>`, as database exports and many tools write them; openpyxl
itself would write a float that has lost the last digits).
The PDF writer draws CJK text with a Type0 font (Identity-H and a ToUnicode map), which is how
print-to-PDF output looks to a text extractor; table cells sit at their own x positions, and a
long cell may wrap onto a second line as a narrow column does.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from bench.fileserver.genres import Doc
from tests.agent.content.makers import P, W, pdf_file

FIXED_TIME = (2024, 5, 20, 9, 30, 0)
SOFFICE_TIMEOUT_S = 240.0


def write_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, FIXED_TIME), data, zipfile.ZIP_DEFLATED)
    return path


_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument."


def _content_types(overrides: dict[str, str]) -> str:
    parts = "".join(f'<Override PartName="/{name}" ContentType="{_CT}{kind}"/>' for name, kind in overrides.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        f"{parts}</Types>"
    )


def _rels(targets: dict[str, str]) -> str:
    """Relationships: id -> (type tail, target) given as 'type|target'."""
    rows = "".join(
        f'<Relationship Id="{rid}" Type="{_REL}/{t.split("|")[0]}" Target="{t.split("|")[1]}"/>'
        for rid, t in targets.items()
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG_REL}">{rows}</Relationships>'


def _package_rels(main: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG_REL}">'
        f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="{main}"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" '
        'Target="docProps/core.xml"/></Relationships>'
    )


def _core(title: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        f'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{escape(title)}</dc:title></cp:coreProperties>'
    )


def txt(doc: Doc, path: Path, encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(doc.lines()) + "\n").encode(encoding))
    return path


def csv_file(rows: Sequence[Sequence[str]], path: Path, encoding: str = "utf-8") -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def _w_par(text: str) -> str:
    return f'<w:p><w:r><w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'


def _w_table(rows: list[list[str]]) -> str:
    cells = "".join("<w:tr>" + "".join(f"<w:tc>{_w_par(c)}</w:tc>" for c in r) + "</w:tr>" for r in rows)
    return f"<w:tbl>{cells}</w:tbl>"


def docx(doc: Doc, path: Path) -> Path:
    body = "".join(_w_par(p) for p in (doc.title, *doc.paragraphs)) + (_w_table(doc.table) if doc.table else "")
    wml = "wordprocessingml."
    types, rels, refs = {"word/document.xml": wml + "document.main+xml"}, {}, ""
    parts: dict[str, str | bytes] = {}
    for kind, text in (("header", doc.header), ("footer", doc.footer)):
        if text:
            tag = "hdr" if kind == "header" else "ftr"
            parts[f"word/{kind}1.xml"] = f'<w:{tag} {W} xmlns:r="{_REL}">{_w_par(text)}</w:{tag}>'
            types[f"word/{kind}1.xml"] = wml + kind + "+xml"
            rels[f"r{kind}"] = f"{kind}|{kind}1.xml"
            refs += f'<w:{kind}Reference w:type="default" r:id="r{kind}"/>'
    members: dict[str, str | bytes] = {
        "[Content_Types].xml": _content_types(types),
        "_rels/.rels": _package_rels("word/document.xml"),
        "docProps/core.xml": _core(doc.title),
        "word/_rels/document.xml.rels": _rels(rels),
        "word/document.xml": f'<w:document {W} xmlns:r="{_REL}"><w:body>{body}<w:sectPr>{refs}</w:sectPr></w:body></w:document>',
        **parts,
    }
    return write_zip(path, members)


def xlsx(doc: Doc, path: Path, numeric: bool = False) -> Path:
    """The table (or the paragraphs, one a row); numeric: cells of digits alone stored as number
    cells holding those exact digits."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = doc.title[:28].replace("/", " ").replace(":", " ") or "Sheet1"
    rows = [
        [doc.title],
        *([[p] for p in doc.paragraphs] if not doc.table else [[p] for p in doc.paragraphs] + doc.table),
    ]
    for row in rows:
        ws.append([NUMBER_MARK + c if numeric and _is_number(c) else c for c in row])
    if doc.header:
        ws.oddHeader.center.text = doc.header
    if doc.footer:
        ws.oddFooter.center.text = doc.footer
    wb.properties.title = doc.title
    wb.properties.creator = "bench"
    buf = io.BytesIO()
    wb.save(buf)
    return _fixed_times(buf.getvalue(), path)


NUMBER_MARK = "NUMBER:"


def _is_number(cell: str) -> bool:
    return cell.isdigit() and not cell.startswith("0") or bool(re.fullmatch(r"[1-9]\.[0-9]+E\+[0-9]+", cell))


def excel_number(digits: str) -> str:
    """What Excel keeps of a long number typed into a cell: 15 significant digits, written as
    1.10108197304226E+17; the last digits of an ID or card are gone."""
    if len(digits) <= 15:
        return digits
    mantissa = f"{int(digits[:15]) / 10**14:.14f}".rstrip("0").rstrip(".")
    return f"{mantissa}E+{len(digits) - 1}"


_MARKED_NUMBER = re.compile(rb'<c r="([A-Z]+[0-9]+)" t="inlineStr"><is><t>NUMBER:([0-9.E+]+)</t></is></c>')


def _fixed_times(data: bytes, path: Path) -> Path:
    """The zip again with every member's time, and the saved-at times of core.xml, fixed: openpyxl
    stamps the clock into both, and the corpus must be the same bytes on every run."""
    members: dict[str, str | bytes] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            body = z.read(info)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2024-05-20T09:30:00Z", body)
            elif info.filename.startswith("xl/worksheets/"):
                body = _MARKED_NUMBER.sub(rb'<c r="\1" t="n"><v>\2</v></c>', body)
            members[info.filename] = body
    return write_zip(path, members)


def pptx(doc: Doc, path: Path) -> Path:
    def shape(n: int, text: str, placeholder: str = "") -> str:
        ph = f'<p:ph type="{placeholder}"/>' if placeholder else ""
        return (
            f'<p:sp><p:nvSpPr><p:cNvPr id="{n}" name="s{n}"/><p:cNvSpPr/><p:nvPr>{ph}</p:nvPr></p:nvSpPr>'
            f'<p:spPr><a:xfrm><a:off x="457200" y="{300000 + (n % 20) * 700000}"/><a:ext cx="8229600" cy="650000"/></a:xfrm></p:spPr>'
            f"<p:txBody><a:bodyPr/><a:p><a:r><a:t>{escape(text)}</a:t></a:r></a:p></p:txBody></p:sp>"
        )

    lines = [*doc.paragraphs, *("  ".join(r) for r in doc.table)]
    pml = "presentationml."
    types = {"ppt/presentation.xml": pml + "presentation.main+xml"}
    members: dict[str, str | bytes] = {
        "_rels/.rels": _package_rels("ppt/presentation.xml"),
        "docProps/core.xml": _core(doc.title),
    }
    ids, rels = "", {}
    for n in range(0, max(1, len(lines)), 6):
        k = n // 6 + 1
        shapes = shape(2, doc.title, "title") + "".join(shape(3 + i, x) for i, x in enumerate(lines[n : n + 6]))
        if doc.header:
            shapes += shape(20, doc.header, "hdr")
        members[f"ppt/slides/slide{k}.xml"] = (
            f'<p:sld {P} xmlns:r="{_REL}"><p:cSld><p:spTree><p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/>'
            f"</p:nvGrpSpPr><p:grpSpPr/>{shapes}</p:spTree></p:cSld></p:sld>"
        )
        types[f"ppt/slides/slide{k}.xml"] = pml + "slide+xml"
        rels[f"rId{k}"] = f"slide|slides/slide{k}.xml"
        ids += f'<p:sldId id="{255 + k}" r:id="rId{k}"/>'
    members["ppt/presentation.xml"] = (
        f'<p:presentation {P} xmlns:r="{_REL}"><p:sldIdLst>{ids}</p:sldIdLst>'
        '<p:sldSz cx="9144000" cy="6858000"/><p:notesSz cx="6858000" cy="9144000"/></p:presentation>'
    )
    members["ppt/_rels/presentation.xml.rels"] = _rels(rels)
    members["[Content_Types].xml"] = _content_types(types)
    return write_zip(path, members)


# --- PDF --------------------------------------------------------------------------------------


def _to_unicode(chars: set[str]) -> str:
    """A ToUnicode map for the characters used (a CID is the code point), as print drivers write
    for the subset they embed."""
    codes = sorted(f"{ord(c):04X}" for c in chars if ord(c) < 0x10000)
    blocks = "".join(
        f"{len(chunk)} beginbfchar\n" + "".join(f"<{c}> <{c}>\n" for c in chunk) + "endbfchar\n"
        for chunk in (codes[i : i + 100] for i in range(0, len(codes), 100))
    )
    return (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CIDSystemInfo << /Registry (Adobe) "
        "/Ordering (UCS) /Supplement 0 >> def /CMapName /Adobe-Identity-UCS def /CMapType 2 def "
        f"1 begincodespacerange <0000> <FFFF> endcodespacerange\n{blocks}"
        "endcmap CMapName currentdict /CMap defineresource pop end end"
    )


FONT_SIZE, COLUMN_GAP = 7, 12  # every glyph 1000 units wide (/DW): a character is FONT_SIZE points


def _width(text: str) -> int:
    return len(text) * FONT_SIZE


def _hex(text: str) -> str:
    return "".join(f"{ord(c):04X}" for c in text if ord(c) < 0x10000)


def pdf(doc: Doc, path: Path, wrap_at: int = 0, lines_per_page: int = 48) -> Path:
    """Header, title, paragraphs (wrapped at 40 characters), then the table: each cell at its
    column's x; a cell longer than wrap_at (0: never) continues on the next line in its column."""
    placed: list[list[tuple[float, str]]] = []  # lines of (x, text)
    if doc.header:
        placed.append([(72, doc.header)])
    for p in (doc.title, *doc.paragraphs):
        width = 100 if any(ord(c) > 0x2E80 for c in p) else 180
        placed += [[(72, p[i : i + width])] for i in range(0, len(p), width)] or [[(72, "")]]
    widths = [
        max((_width(r[n]) for r in doc.table if n < len(r)), default=0)
        for n in range(max(map(len, doc.table), default=0))
    ]
    if wrap_at:
        widths = [min(w, wrap_at * FONT_SIZE) for w in widths]
    xs = [40 + sum(widths[:n]) + COLUMN_GAP * n for n in range(len(widths))]
    for row in doc.table:
        first, rest = [], []
        for n, cell in enumerate(row):
            x = xs[n]
            if wrap_at and len(cell) > wrap_at:
                first.append((x, cell[:wrap_at]))
                rest.append((x, cell[wrap_at:]))
            else:
                first.append((x, cell))
        placed.append(first)
        if rest:
            placed.append(rest)
    if doc.footer:
        placed.append([(72, doc.footer)])
    pages = [placed[i : i + lines_per_page] for i in range(0, len(placed), lines_per_page)] or [[]]
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", "", "", "", ""]
    objects[2] = (
        "<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /Identity-H /DescendantFonts [4 0 R] /ToUnicode 5 0 R >>"
    )
    objects[3] = (
        "<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /DW 1000 >>"
    )
    cmap = _to_unicode({c for page in pages for line in page for _, text in line for c in text})
    objects[4] = f"<< /Length {len(cmap)} >>\nstream\n{cmap}\nendstream"
    kids = []
    for page in pages:
        ops = [f"BT /F1 {FONT_SIZE} Tf"]
        for n, line in enumerate(page):
            y = 560 - n * 11
            ops += [f"1 0 0 1 {x} {y} Tm <{_hex(t)}> Tj" for x, t in line]
        ops.append("ET")
        stream = "\n".join(ops)
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 842 595] /Resources << /Font << /F1 3 0 R >> >> /Contents {len(objects)} 0 R >>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    info = f"<< /Title <FEFF{_hex(doc.title)}> /Producer (bench) >>"
    objects.append(info)
    path.write_bytes(pdf_file(objects, f" /Info {len(objects)} 0 R"))
    return path


def zip_of(path: Path, members: dict[str, Path]) -> Path:
    return write_zip(path, {name: p.read_bytes() for name, p in members.items()})


WRITERS = {"txt": txt, "docx": docx, "xlsx": xlsx, "pptx": pptx, "pdf": pdf}


def write(doc: Doc, path_stem: Path, fmt: str) -> Path:
    if fmt == "gb18030":
        return txt(doc, path_stem.with_suffix(".txt"), "gb18030")
    return WRITERS[fmt](doc, path_stem.with_suffix("." + fmt))


# --- LibreOffice -------------------------------------------------------------------------------


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def convert(sources: list[Path], fmt: str, out_dir: Path) -> dict[Path, Path]:
    """Convert with one soffice run per target format; source -> converted file (those that came
    out). A private profile, so a running LibreOffice or a stale lock does not block it."""
    exe = soffice()
    if exe is None or not sources:
        return {}
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="miwei-lo-") as profile:
        subprocess.run(
            [
                exe,
                f"-env:UserInstallation=file://{profile}",
                "--headless",
                "--norestore",
                "--convert-to",
                fmt,
                "--outdir",
                str(out_dir),
                *map(str, sources),
            ],
            capture_output=True,
            timeout=SOFFICE_TIMEOUT_S,
            check=False,
            env={**os.environ, "HOME": profile},
        )
    target = fmt.split(":")[0]
    done = {}
    for s in sources:
        out = out_dir / (s.stem + "." + target)
        if out.exists():
            done[s] = out
    return done
