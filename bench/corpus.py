"""Files to measure with: random binary files of a given size spread, classified trees, and
realistic documents (text, docx, xlsx, pdf, zip) carrying markings and personal identifiers.

Everything is generated from a seeded random source, so two runs measure the same kind of input.
Trees shared by several sections (the index build and the idle agent both want 100,000 files)
are made once per process and removed by cleanup().
"""

from __future__ import annotations

import io
import math
import os
import random
import shutil
import zipfile
import zlib
from dataclasses import dataclass
from xml.sax.saxutils import escape

from bench.baselines import scratch_dir

KB, MB = 1024, 1024 * 1024
POOL_BYTES = 8 * MB
FILES_PER_FOLDER = 100


@dataclass(frozen=True)
class Tree:
    root: str
    paths: tuple[str, ...]
    total_bytes: int


def spread(count: int, min_bytes: int, max_bytes: int, total_bytes: int, rng: random.Random) -> list[int]:
    """`count` sizes from min to max (both present), log-skewed towards small files so that they
    add up to about `total_bytes`: many small documents, a few large drawings, like a real share."""
    if count < 2 or min_bytes * count > total_bytes or max_bytes * count < total_bytes:
        raise ValueError(f"cannot make {count} files of {min_bytes}..{max_bytes} bytes totalling {total_bytes}")
    draws = [rng.random() for _ in range(count - 2)]
    span = math.log(max_bytes / min_bytes)
    low, high = 0.05, 50.0  # the skew exponent: bisect until the total fits

    def sizes(k: float) -> list[int]:
        return [min_bytes, max_bytes] + [int(min_bytes * math.exp(span * u**k)) for u in draws]

    for _ in range(60):
        k = math.sqrt(low * high)
        if sum(sizes(k)) > total_bytes:
            low = k
        else:
            high = k
    return sizes(high)  # at most total_bytes, and within a hair of it


def random_tree(root: str, sizes: list[int], seed: int, prefix: str = "file") -> Tree:
    """Binary files with the given sizes, FILES_PER_FOLDER to a folder, each with unique content."""
    rng = random.Random(seed)
    pool = rng.randbytes(POOL_BYTES + 16)
    paths = []
    for i, size in enumerate(sizes):
        folder = os.path.join(root, f"d{i // FILES_PER_FOLDER:04d}")
        if i % FILES_PER_FOLDER == 0:
            os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{prefix}-{i:06d}.bin")
        unique = rng.randbytes(min(16, size))  # no two files hash alike (but tiny ones may)
        with open(path, "wb") as f:
            f.write(unique)
            left = size - len(unique)
            while left > 0:
                start = rng.randrange(0, POOL_BYTES - min(left, POOL_BYTES) + 1)
                piece = pool[start : start + min(left, POOL_BYTES)]
                f.write(piece)
                left -= len(piece)
        paths.append(path)
    return Tree(root, tuple(paths), sum(sizes))


_shared: dict[tuple, Tree] = {}
_dirs: list[str] = []
_indexes: dict[str, str] = {}


def shared_classified_tree(files: int, total_bytes: int) -> Tree:
    """A classified tree of `files` files (1 KB..1 MB), made once per process."""
    key = ("classified", files, total_bytes)
    if key not in _shared:
        root = new_dir("classified")
        sizes = spread(files, KB, MB, total_bytes, random.Random(files))
        _shared[key] = random_tree(os.path.join(root, "rnd"), sizes, seed=files, prefix="drawing")
    return _shared[key]


def remember_index(tree: Tree, index_db) -> None:
    """An index.db built over `tree` (by the index section), for the idle section to start from."""
    _indexes[tree.root] = str(index_db)


def built_index(tree: Tree) -> str | None:
    return _indexes.get(tree.root)


def new_dir(prefix: str) -> str:
    path = scratch_dir(prefix)
    _dirs.append(path)
    return path


def cleanup() -> None:
    for path in _dirs:
        shutil.rmtree(path, ignore_errors=True)
    _dirs.clear()
    _shared.clear()
    _indexes.clear()


# --- documents ---------------------------------------------------------------------------------

ZH = ("本公司", "产品图纸", "涂层配方", "客户名单", "年度预算", "技术方案", "试验数据", "供应商报价", "工艺参数",
      "研发进度", "合同条款", "质量报告", "会议纪要", "项目计划", "成本分析", "销售数据")
EN = ("pump", "impeller", "revision", "tolerance", "assembly", "coating", "formula", "budget", "quarter", "supplier",
      "drawing", "schedule", "prototype", "the", "and", "of", "for", "with", "batch", "yield", "report")
MARKINGS = ("商业秘密", "内部资料 注意保密", "CONFIDENTIAL")


REGIONS_1960_2005 = ("110101", "110105", "110108", "310101", "310104", "120101")  # valid every year of the range


def resident_id(rng: random.Random) -> str:
    """A PRC resident identity number with a valid ISO 7064 MOD 11-2 check digit, whose region code
    stood in the year of birth (the validator checks both: codes such as 330106 or 510107 came or
    went within 1960-2005, and made about 40% of the IDs invalid before)."""
    body = f"{rng.choice(REGIONS_1960_2005)}{rng.randint(1960, 2005)}" \
           f"{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(body))
    return body + "10X98765432"[total % 11]


def bank_card(rng: random.Random) -> str:
    """A 16-digit card number passing the Luhn check."""
    digits = [6, 2, 2, 2] + [rng.randint(0, 9) for _ in range(11)]
    total = 0
    for i, d in enumerate(reversed(digits)):  # the check digit goes at the end: these double first
        d = d * 2 if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def paragraphs(rng: random.Random, text_bytes: int, ascii_only: bool = False) -> list[str]:
    """Prose of about text_bytes UTF-8 bytes: mixed Chinese and English, a marking at the top,
    and now and then a line with a resident ID and a bank card number (a personal-data file)."""
    out = [rng.choice(MARKINGS[2:] if ascii_only else MARKINGS)]
    size = len(out[0].encode())
    while size < text_bytes:
        words = [rng.choice(EN) if ascii_only or rng.random() < 0.5 else rng.choice(ZH) for _ in range(rng.randint(8, 14))]
        if rng.random() < 0.02:
            words += ["ID", resident_id(rng), "card", bank_card(rng)]
        line = " ".join(words)
        out.append(line)
        size += len(line.encode()) + 1
    return out


def text_file(path: str, rng: random.Random, text_bytes: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(paragraphs(rng, text_bytes)) + "\n")


def docx_file(path: str, rng: random.Random, text_bytes: int) -> None:
    from pathlib import Path

    from tests.agent.content.makers import docx

    docx(Path(path), body=tuple(paragraphs(rng, text_bytes)))


def xlsx_file(path: str, rng: random.Random, text_bytes: int) -> None:
    """A workbook: shared strings for the text cells, and numbers beside them, as Excel writes."""
    from pathlib import Path

    from tests.agent.content.makers import S, _office, write_zip

    strings = paragraphs(rng, text_bytes)
    shared = "".join(f"<si><t>{s}</t></si>" for s in strings)
    rows = "".join(
        f'<row r="{i + 1}"><c r="A{i + 1}" t="s"><v>{i}</v></c><c r="B{i + 1}"><v>{rng.randint(0, 10**6)}</v></c></row>'
        for i in range(len(strings))
    )
    write_zip(Path(path), {
        **_office("workbook"),
        "xl/workbook.xml": f"<workbook {S}/>",
        "xl/sharedStrings.xml": f'<sst {S} count="{len(strings)}">{shared}</sst>',
        "xl/worksheets/sheet1.xml": f"<worksheet {S}><sheetData>{rows}</sheetData></worksheet>",
    })


def pdf_bytes(rng: random.Random, text_bytes: int, lines_per_page: int = 50) -> bytes:
    """A multi-page PDF: Helvetica text, Flate-compressed content streams, a correct xref."""
    lines = paragraphs(rng, text_bytes, ascii_only=True)
    pages = [lines[i : i + lines_per_page] for i in range(0, len(lines), lines_per_page)]
    first_page = 4  # 1 catalog, 2 pages, 3 font; then a page object and its content per page
    kids = " ".join(f"{first_page + 2 * i} 0 R" for i in range(len(pages)))
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, page in enumerate(pages):
        ops = "BT /F1 10 Tf 50 780 Td 14 TL " + " ".join(f"({line}) Tj T*" for line in page) + " ET"
        stream = zlib.compress(ops.encode("latin-1"))
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {first_page + 2 * i + 1} 0 R >>".encode()
        )
        objects.append(f"<< /Length {len(stream)} /Filter /FlateDecode >>\nstream\n".encode() + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.5\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def pdf_file(path: str, rng: random.Random, text_bytes: int) -> None:
    with open(path, "wb") as f:
        f.write(pdf_bytes(rng, text_bytes))


def zip_file(path: str, rng: random.Random, text_bytes: int) -> None:
    """A zip as people send them: a few text files, a document and a PDF inside."""
    share = text_bytes // 4
    docx_buf = io.BytesIO()
    with zipfile.ZipFile(docx_buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs(rng, share))
        z.writestr("word/document.xml",
                   f'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("notes/minutes.txt", "\n".join(paragraphs(rng, share)))
        z.writestr("notes/customers.csv", "\n".join(paragraphs(rng, share)))
        z.writestr("docs/plan.docx", docx_buf.getvalue())
        z.writestr("docs/spec.pdf", pdf_bytes(rng, share))


def csv_file(path: str, rng: random.Random, text_bytes: int) -> None:
    """A roster as HR exports it: a marking line, a header, then a name, resident ID, mobile, bank
    card, department and a note on each row (every row holds three identifiers)."""
    rows = [rng.choice(MARKINGS), "姓名,身份证号,手机,银行卡号,部门,备注"]
    size = sum(len(r.encode()) + 1 for r in rows)
    while size < text_bytes:
        note = " ".join(rng.choice(EN) if rng.random() < 0.5 else rng.choice(ZH) for _ in range(rng.randint(3, 8)))
        mobile = f"1{rng.choice('3456789')}{rng.randint(0, 10**9 - 1):09d}"
        row = f"{rng.choice(ZH)},{resident_id(rng)},{mobile},{bank_card(rng)},{rng.choice(ZH)},{note}"
        rows.append(row)
        size += len(row.encode()) + 1
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")


def pptx_file(path: str, rng: random.Random, text_bytes: int) -> None:
    """A deck: slides of a title and a dozen bullets each (the prose lines), as PowerPoint writes them."""
    from pathlib import Path

    from tests.agent.content.makers import P, _office, write_zip

    lines = paragraphs(rng, text_bytes)
    slides = {}
    for n, i in enumerate(range(0, len(lines), 12), 1):
        shapes = "".join(
            f"<p:sp><p:txBody><a:p><a:r><a:t>{line}</a:t></a:r></a:p></p:txBody></p:sp>" for line in lines[i : i + 12]
        )
        slides[f"ppt/slides/slide{n}.xml"] = f"<p:sld {P}><p:cSld><p:spTree>{shapes}</p:spTree></p:cSld></p:sld>"
    write_zip(Path(path), {**_office("deck"), "ppt/presentation.xml": f"<p:presentation {P}/>", **slides})


# The root elements' declarations as Word and PowerPoint write them (Office 2016): every member
# declares a dozen namespaces it mostly does not use, and starts with a declaration ended by CRLF
WORD_ROOT = (
    'xmlns:wpc="http://schemas.microsoft.com/office/word/2010/wordprocessingCanvas" '
    'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
    'xmlns:o="urn:schemas-microsoft-com:office:office" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
    'xmlns:m="http://schemas.openxmlformats.org/officeDocument/2006/math" xmlns:v="urn:schemas-microsoft-com:vml" '
    'xmlns:wp14="http://schemas.microsoft.com/office/word/2010/wordprocessingDrawing" '
    'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
    'xmlns:w10="urn:schemas-microsoft-com:office:word" '
    'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
    'xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml" '
    'xmlns:w15="http://schemas.microsoft.com/office/word/2012/wordml" '
    'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" mc:Ignorable="w14 w15 wp14"'
)
OFFICE_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'


def _word_runs(rng: random.Random, text: str) -> str:
    """A paragraph's text in one to four runs, each with its properties, as Word splits text where
    a revision, a proofing mark or a font change falls."""
    cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(0, 3)))) if len(text) > 4 else []
    fonts = '<w:rPr><w:rFonts w:ascii="宋体" w:hAnsi="宋体" w:hint="eastAsia"/><w:sz w:val="24"/><w:szCs w:val="24"/></w:rPr>'
    runs = []
    for n, (a, b) in enumerate(zip([0, *cuts], [*cuts, len(text)], strict=True)):
        if n == 1:
            runs.append('<w:proofErr w:type="spellStart"/>')
        space = ' xml:space="preserve"' if text[a] == " " or text[b - 1] == " " else ""
        runs.append(f'<w:r w:rsidRPr="00{rng.randrange(16**6):06X}">{fonts}<w:t{space}>{escape(text[a:b])}</w:t></w:r>')
    if len(runs) > 2:
        runs.insert(3, '<w:proofErr w:type="spellEnd"/>')
    return "".join(runs)


def word_docx_file(path: str, rng: random.Random, text_bytes: int) -> None:
    """A docx as Word writes it: paragraphs with their ids and properties and revision ids, text split
    over runs with fonts, proofing marks and a bookmark, a table now and then (the same prose as
    docx_file, in about eight times the markup)."""
    from pathlib import Path

    from tests.agent.content.makers import _office, write_zip

    spacing = '<w:pPr><w:spacing w:line="360" w:lineRule="auto"/><w:ind w:firstLineChars="200" w:firstLine="420"/></w:pPr>'
    body, lines = [], paragraphs(rng, text_bytes)
    for i, line in enumerate(lines):
        paragraph = (
            f'<w:p w14:paraId="{rng.randrange(16**8):08X}" w14:textId="77777777" w:rsidR="00{rng.randrange(16**6):06X}" '
            f'w:rsidRDefault="00A1B2C3" w:rsidP="00D4E5F6">{spacing}{_word_runs(rng, line)}</w:p>'
        )
        if i % 40 == 39:  # a two-column table row: the line and its number
            cell = '<w:tc><w:tcPr><w:tcW w:w="4148" w:type="dxa"/></w:tcPr>{}</w:tc>'
            number = f'<w:p><w:r><w:t>{i}</w:t></w:r></w:p>'
            paragraph = (
                '<w:tbl><w:tblPr><w:tblStyle w:val="a3"/><w:tblW w:w="0" w:type="auto"/></w:tblPr>'
                '<w:tblGrid><w:gridCol w:w="4148"/><w:gridCol w:w="4148"/></w:tblGrid>'
                f'<w:tr w:rsidR="00E1F2A3">{cell.format(paragraph)}{cell.format(number)}</w:tr></w:tbl>'
            )
        elif i == 1:
            paragraph = paragraph.replace("</w:p>", '<w:bookmarkStart w:id="0" w:name="_GoBack"/><w:bookmarkEnd w:id="0"/></w:p>')
        body.append(paragraph)
    section = '<w:sectPr><w:pgSz w:w="11906" w:h="16838"/><w:pgMar w:top="1440" w:right="1800" w:bottom="1440" w:left="1800"/></w:sectPr>'
    document = f'{OFFICE_DECLARATION}<w:document {WORD_ROOT}><w:body>{"".join(body)}{section}</w:body></w:document>'
    write_zip(Path(path), {**_office("document"), "word/document.xml": document})


def powerpoint_pptx_file(path: str, rng: random.Random, text_bytes: int) -> None:
    """A deck as PowerPoint writes it: each slide a title placeholder, a content placeholder of a
    dozen bullets and a footer placeholder, each shape with its properties and each run its
    language, and the slide's creation id in an extension list that declares its own namespace
    (the same prose as pptx_file)."""
    from pathlib import Path

    from tests.agent.content.makers import P, _office, write_zip

    language = '<a:rPr lang="zh-CN" altLang="en-US" dirty="0"/>'

    def shape(number: int, name: str, placeholder: str, texts: list[str]) -> str:
        body = "".join(f"<a:p><a:r>{language}<a:t>{escape(t)}</a:t></a:r></a:p>" for t in texts)
        return (
            f'<p:sp><p:nvSpPr><p:cNvPr id="{number}" name="{name}"/><p:cNvSpPr><a:spLocks noGrp="1"/></p:cNvSpPr>'
            f"<p:nvPr>{placeholder}</p:nvPr></p:nvSpPr><p:spPr/><p:txBody><a:bodyPr><a:normAutofit/></a:bodyPr>"
            f'<a:lstStyle/>{body}<a:endParaRPr lang="zh-CN" altLang="en-US" dirty="0"/></p:txBody></p:sp>'
        )

    lines = paragraphs(rng, text_bytes)
    group = (
        '<p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr><p:grpSpPr><a:xfrm>'
        '<a:off x="0" y="0"/><a:ext cx="0" cy="0"/><a:chOff x="0" y="0"/><a:chExt cx="0" cy="0"/></a:xfrm></p:grpSpPr>'
    )
    slides = {}
    for n, i in enumerate(range(0, len(lines), 12), 1):
        shapes = (
            shape(2, "标题 1", '<p:ph type="title"/>', lines[i : i + 1])
            + shape(3, "内容占位符 2", '<p:ph idx="1"/>', lines[i + 1 : i + 12])
            + shape(4, "页脚占位符 3", '<p:ph type="ftr" sz="quarter" idx="11"/>', ["内部资料"])
        )
        slides[f"ppt/slides/slide{n}.xml"] = (
            f'{OFFICE_DECLARATION}<p:sld {P} xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f"<p:cSld><p:spTree>{group}{shapes}</p:spTree><p:extLst><p:ext uri=\"{{BB962C8B-B14F-4D97-AF65-F5344CB8AC3E}}\">"
            f'<p14:creationId xmlns:p14="http://schemas.microsoft.com/office/powerpoint/2010/main" val="{rng.randrange(10**9)}"/>'
            "</p:ext></p:extLst></p:cSld><p:clrMapOvr><a:masterClrMapping/></p:clrMapOvr></p:sld>"
        )
    write_zip(Path(path), {**_office("deck"), "ppt/presentation.xml": f"<p:presentation {P}/>", **slides})


DOCUMENT_MAKERS = {"text": (text_file, "txt"), "csv": (csv_file, "csv"), "docx": (docx_file, "docx"),
                   "xlsx": (xlsx_file, "xlsx"), "pptx": (pptx_file, "pptx"), "pdf": (pdf_file, "pdf"),
                   "zip": (zip_file, "zip"), "docx-word": (word_docx_file, "docx"),
                   "pptx-powerpoint": (powerpoint_pptx_file, "pptx")}


def documents(folder: str, kind: str, count: int, text_bytes: int, seed: int = 7) -> list[str]:
    make, extension = DOCUMENT_MAKERS[kind]
    rng = random.Random(f"{kind}-{seed}")
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"{kind}-{i:03d}.{extension}")
        make(path, rng, text_bytes)
        paths.append(path)
    return paths
