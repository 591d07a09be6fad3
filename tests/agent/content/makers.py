"""Hand-made fixtures: OOXML and ODF zips from XML strings, and a PDF written byte by byte.

No python-docx or openpyxl: each file holds only the members the extractor reads, which keeps the
tests honest about what a real file must contain.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
S = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
P = (
    'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
    'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"'
)
CONTENT_TYPES = '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
CORE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/">'
    "<dc:title>{title}</dc:title><dc:subject>主题 subject</dc:subject><cp:keywords>机密 keywords</cp:keywords>"
    "<dc:creator>someone</dc:creator></cp:coreProperties>"
)
APP = '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"><Company>某某科技有限公司</Company></Properties>'
CUSTOM = (
    '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" '
    'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
    '<property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="2" name="Classification">'
    "<vt:lpwstr>核心商业秘密</vt:lpwstr></property></Properties>"
)


def write_zip(path: Path | io.BytesIO, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def office_zip(members: dict[str, str | bytes]) -> io.BytesIO:
    """An OOXML package in memory: [Content_Types].xml, then the members given."""
    buffer = io.BytesIO()
    write_zip(buffer, {"[Content_Types].xml": CONTENT_TYPES, **members})
    return buffer


def _office(title: str) -> dict[str, str | bytes]:
    return {
        "[Content_Types].xml": CONTENT_TYPES,
        "docProps/core.xml": CORE.format(title=title),
        "docProps/app.xml": APP,
        "docProps/custom.xml": CUSTOM,
    }


def _wp(*texts: str) -> str:
    return "".join(f"<w:p><w:r><w:t>{t}</w:t></w:r></w:p>" for t in texts)


def docx(path: Path, body: tuple[str, ...] = ("第一段 first paragraph", "second paragraph")) -> Path:
    return write_zip(
        path,
        {
            **_office("年度预算 title"),
            "word/document.xml": f"<w:document {W}><w:body>{_wp(*body)}"
            # one paragraph split over runs, with a tab: still one part
            '<w:p><w:r><w:t xml:space="preserve">split </w:t></w:r><w:r><w:tab/><w:t>runs</w:t></w:r></w:p>'
            "</w:body></w:document>",
            "word/header1.xml": f"<w:hdr {W}>{_wp('机密 header')}</w:hdr>",
            "word/footer2.xml": f"<w:ftr {W}>{_wp('内部资料 footer')}</w:ftr>",
        },
    )


def xlsx(path: Path) -> Path:
    return write_zip(
        path,
        {
            **_office("sheet title"),
            "xl/workbook.xml": f"<workbook {S}/>",
            "xl/sharedStrings.xml": f'<sst {S} count="2"><si><t>姓名 shared</t></si>'
            "<si><r><t>rich </t></r><r><t>text</t></r><rPh><t>PHONETIC</t></rPh></si></sst>",
            "xl/worksheets/sheet1.xml": f'<worksheet {S}><sheetData><row r="1">'
            '<c r="A1" t="s"><v>0</v></c><c r="B1" t="inlineStr"><is><t>inline cell</t></is></c>'
            "</row></sheetData><headerFooter>"
            '<oddHeader>&amp;L&amp;"Arial,Bold"&amp;12秘密 sheet header&amp;R&amp;P</oddHeader>'
            "<oddFooter>&amp;CR&amp;&amp;D footer</oddFooter></headerFooter></worksheet>",
        },
    )


def _shape(text: str, placeholder: str = "") -> str:
    ph = f'<p:nvSpPr><p:nvPr><p:ph type="{placeholder}"/></p:nvPr></p:nvSpPr>' if placeholder else ""
    return f"<p:sp>{ph}<p:txBody><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:txBody></p:sp>"


def pptx(path: Path) -> Path:
    def slide(*shapes: str) -> str:
        return f"<p:sld {P}><p:cSld><p:spTree>{''.join(shapes)}</p:spTree></p:cSld></p:sld>"

    return write_zip(
        path,
        {
            **_office("deck title"),
            "ppt/presentation.xml": f"<p:presentation {P}/>",
            "ppt/slides/slide10.xml": slide(_shape("tenth slide")),
            "ppt/slides/slide2.xml": slide(
                _shape("Slide Title", "title"), _shape("bullet text"), _shape("商业秘密 slide footer", "ftr")
            ),
        },
    )


ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/"'
)
ODF_MIME = {"odt": "text", "ods": "spreadsheet", "odp": "presentation"}


def odf(path: Path, kind: str) -> Path:
    """An ODF file: the mimetype member first and stored, as the specification requires."""
    body = {
        "odt": "<office:text><text:h>Heading one</text:h><text:p>正文 body<text:s/>text</text:p></office:text>",
        "ods": "<office:spreadsheet><table:table><table:table-row><table:table-cell>"
        "<text:p>cell text</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet>",
        "odp": "<office:presentation><text:p>slide text</text:p></office:presentation>",
    }[kind]
    members = {
        "META-INF/manifest.xml": "<manifest/>",
        "meta.xml": f"<office:document-meta {ODF_NS}><office:meta><dc:title>ODF 标题</dc:title>"
        "<dc:subject>odf subject</dc:subject><meta:keyword>odf keyword</meta:keyword>"
        '<meta:user-defined meta:name="密级">秘密</meta:user-defined></office:meta></office:document-meta>',
        "styles.xml": f"<office:document-styles {ODF_NS}><office:master-styles><style:master-page>"
        "<style:header><text:p>odf header</text:p></style:header>"
        "<style:footer><text:p>odf footer</text:p></style:footer>"
        "</style:master-page></office:master-styles></office:document-styles>",
        "content.xml": f"<office:document-content {ODF_NS}><office:body>{body}</office:body></office:document-content>",
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("mimetype"), f"application/vnd.oasis.opendocument.{ODF_MIME[kind]}")
        for name, data in members.items():
            z.writestr(name, data)
    return path


def pdf_bytes(lines: tuple[str, ...]) -> bytes:
    """A one-page PDF drawing each line with Helvetica; xref offsets computed, not guessed."""
    ops = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({line}) Tj T*" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        "/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        f"<< /Length {len(ops)} >>\nstream\n{ops}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return pdf_file(objects)


def pdf_file(objects: list[str], trailer: str = "") -> bytes:
    """A PDF of these objects (numbered from 1, the catalog first), xref offsets computed;
    `trailer`: more trailer entries, e.g. an /Info reference."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{trailer} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def pdfium_pages(data: bytes, keys: tuple[str, ...]) -> tuple[dict, list[str]]:
    """What PDFium (pypdfium2) reads of a PDF: its metadata of these keys and each page's text,
    as agent/content/pdf.py's PDFium reader takes them (the reference of the fast reader)."""
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    try:
        meta = {k: v for k, v in document.get_metadata_dict(skip_empty=True).items() if k in keys}
        pages = []
        for i in range(len(document)):
            page = document[i]
            textpage = page.get_textpage()
            pages.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return meta, pages
    finally:
        document.close()


def pdf(path: Path, lines: tuple[str, ...] = ("CONFIDENTIAL first line", "second line"), **metadata: str) -> Path:
    """The hand-written page, with metadata (and encryption) added by pypdf's writer."""
    from pypdf import PdfReader, PdfWriter

    raw = path.with_suffix(".raw.pdf")
    raw.write_bytes(pdf_bytes(lines))
    writer = PdfWriter(clone_from=PdfReader(raw))
    password = metadata.pop("user_password", None)
    writer.add_metadata({f"/{k.capitalize()}": v for k, v in metadata.items()})
    if password:
        writer.encrypt(user_password=password, algorithm="RC4-128")
    with open(path, "wb") as f:
        writer.write(f)
    raw.unlink()
    return path


def zeros_member(path: Path, name: str, size: int, prefix: bytes = b"", filler: bytes = b"\0") -> Path:
    """A zip whose member inflates to size bytes (a zip bomb), streamed so the test stays small."""
    chunk = filler * (1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        with z.open(name, "w", force_zip64=True) as m:
            m.write(prefix)
            for _ in range(size // len(chunk)):
                m.write(chunk)
    return path


# --- documents saved as markup (agent/content/markup.py) ---

_SCRIPT_RUNS = re.compile(r"[\u3000-\u9fff\uff00-\uffef]+|[^\u3000-\u9fff\uff00-\uffef]+")


def word_page(paragraphs, charset: str = "gb2312", width: int = 60) -> bytes:
    """A page as Word's "Save as Web Page" writes one: a span at every change of script, the
    source wrapped at the first space past `width` columns (in a tag or in the text), styles in
    a comment."""
    body = []
    for paragraph in paragraphs:
        runs = "".join(
            f"<span lang=EN-US style='font-family:\"Times New Roman\"'>{_escaped(run)}</span>"
            if run.isascii()
            else f"<span style='font-family:宋体'>{_escaped(run)}</span>"
            for run in _SCRIPT_RUNS.findall(paragraph)
        )
        body.append(re.sub(f"(.{{{width}}}[^ ]*) ", "\\1\n", f"<p class=MsoNormal>{runs}</p>"))
    page = (
        '<html xmlns:o="urn:schemas-microsoft-com:office:office" xmlns="http://www.w3.org/TR/REC-html40">\n'
        f'<head><meta http-equiv=Content-Type content="text/html; charset={charset}">\n'
        "<title>spec</title><style><!-- p.MsoNormal {margin:0cm; font-size:10.5pt;} --></style>\n"
        "<script>var secret = '不是正文';</script></head>\n<body lang=ZH-CN><div class=WordSection1>\n"
        + "\n".join(body)
        + "\n</div></body></html>\n"
    )
    return page.encode("gbk" if charset == "gb2312" else charset)  # (Word's "gb2312" is GBK, as browsers read it)


def _escaped(run: str) -> str:
    return run.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def word_rtf(paragraphs, title: str = "泵叶轮工艺规范") -> bytes:
    """RTF as Word writes it on a Chinese system: \\ansicpg936, Chinese in a font of character set
    134 as GBK bytes in \\'hh escapes, source lines broken past 70 characters before a backslash,
    a picture in hex and a field whose instruction is no text."""
    def gbk(text: str) -> str:
        return "".join(f"\\'{b:02x}" for b in text.encode("gbk"))

    parts = [
        "{\\rtf1\\ansi\\ansicpg936\\uc2\\deff0\\deflang1033\\deflangfe2052",
        "{\\fonttbl{\\f0\\froman\\fcharset0\\fprq2 Times New Roman;}{\\f13\\fnil\\fcharset134\\fprq2 " + gbk("宋体") + ";}}",
        "{\\colortbl;\\red0\\green0\\blue0;}{\\stylesheet{\\qj\\nowidctlpar\\f0 Normal;}}",
        "{\\info{\\title " + gbk(title) + "}{\\author " + gbk("张三") + "}{\\creatim\\yr2026\\mo12\\dy7}}",
    ]
    for paragraph in paragraphs:
        runs = "".join(
            f"{{\\f0 {_rtf_escaped(run)}}}" if run.isascii() else f"{{\\f13\\loch\\af13\\hich\\af13\\dbch\\af13 {gbk(run)}}}"
            for run in _SCRIPT_RUNS.findall(paragraph)
        )
        parts.append(f"\\pard\\plain\\qj {runs}\\par")
    parts.append("{\\pict\\pngblip\\picw10\\pich10 89504e470d0a1a0a0000000d49484452}")
    parts.append("{\\field{\\*\\fldinst { PAGE }}{\\fldrslt {\\f0 1}}}\\par}")
    return re.sub(r"(.{70}[^\\]*)(?=\\)", "\\1\r\n", "\r\n".join(parts)).encode("ascii")


def _rtf_escaped(run: str) -> str:
    return run.replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}")


def libreoffice_rtf(paragraphs) -> bytes:
    """RTF as LibreOffice and WordPad write it: each character past ASCII as \\uN with a one-byte
    fallback (\\uc1 ... \\'3f), a character past U+FFFF as its two UTF-16 halves."""
    def unicode(text: str) -> str:
        halves = text.encode("utf-16-le")
        out = []
        for i in range(0, len(halves), 2):
            code = int.from_bytes(halves[i : i + 2], "little")
            out.append(chr(code) if code < 128 else f"\\u{code - 65536 if code > 32767 else code}\\'3f")
        return "".join(out)

    body = "".join(f"\\pard\\plain {unicode(_rtf_escaped(p))}\\par\n" for p in paragraphs)
    head = "{\\rtf1\\ansi\\deff4\\adeflang1025{\\fonttbl{\\f4\\froman\\fprq2\\fcharset0 Liberation Serif;}}"
    return (head + "{\\*\\generator LibreOffice/7.4}\\uc1" + body + "}").encode("ascii")
