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


def office_pdf_bytes(rng: random.Random, text_bytes: int) -> bytes:
    """A PDF as office suites write it (LibreOffice's shape, checked against its output): a
    BT..ET with an absolute Td per run, Chinese runs in a Type0 font (Identity-H, /W widths, a
    ToUnicode CMap of bfchar and bfrange), Latin runs in a TrueType font (WinAnsi, /Widths), TJ
    arrays with small kernings, tables of cells side by side, a marking in the header, a page
    number in the footer; objects in object streams behind a cross-reference stream (PDF 1.5)."""
    lines = paragraphs(rng, text_bytes)
    cjk: dict[str, int] = {}
    for line in lines:
        for ch in line:
            if ord(ch) > 0xFF and ch not in cjk:
                cjk[ch] = len(cjk) + 1
    latin_widths = [278 if c == " " else 333 if c in ".,:;" else 556 for c in map(chr, range(32, 256))]

    def runs(text: str) -> list[tuple[bool, str]]:
        out: list[tuple[bool, str]] = []
        for ch in text:
            wide = ord(ch) > 0xFF
            if out and out[-1][0] == wide:
                out[-1] = (wide, out[-1][1] + ch)
            else:
                out.append((wide, ch))
        return out

    def show(x: float, y: float, text: str) -> str:
        ops = []
        for wide, run in runs(text):
            if wide:
                parts, i = [], 0
                while i < len(run):
                    n = rng.randint(1, 3)
                    parts.append("<" + "".join(f"{cjk[c]:04X}" for c in run[i : i + n]) + ">")
                    i += n
                    if i < len(run):
                        parts.append(str(rng.choice((1, 2, -1, -3, 3, -5))))
                ops.append(f"BT\n{x:.3f} {y:.3f} Td /F1 10.5 Tf[{''.join(parts)}]TJ\nET")
                x += len(run) * 10.5
            else:
                codes = run.encode("cp1252", "replace")
                ops.append(f"BT\n{x:.3f} {y:.3f} Td /F2 10.5 Tf<{codes.hex().upper()}>Tj\nET")
                x += sum(latin_widths[c - 32] for c in codes) * 10.5 / 1000
        return "q 0 0 0 rg\n" + "\nQ\nq 0 0 0 rg\n".join(ops) + "\nQ"

    pages, page, y = [], [], 760.0
    for number, line in enumerate(lines):
        if number % 17 == 5:  # a table row: three cells side by side
            cells = (line[:12], line[12:24], line[24:40])
            page += [show(56.8 + 170 * i, y, cell) for i, cell in enumerate(cells) if cell.strip()]
            page.append(f"0.5 w 56.8 {y - 4:.3f} m 538 {y - 4:.3f} l S")
            page.append(show(56.8, y - 15.1, line[40:]) if line[40:].strip() else "")
            y -= 30.2
        else:
            page.append(show(56.8, y, line))
            y -= 15.1
        if y < 80:
            pages.append(page)
            page, y = [], 760.0
    if page:
        pages.append(page)
    objects: dict[int, bytes] = {}
    font_objs = 5 + 2 * len(pages)
    for i, body in enumerate(pages):
        ops = f"BT\n240 800 Td /F1 9 Tf<{''.join(f'{cjk.setdefault(c, len(cjk) + 1):04X}' for c in '内部资料')}>Tj\nET\n"
        ops += "\n".join(b for b in body if b) + f"\nBT\n290 40 Td /F2 9 Tf<{str(i + 1).encode().hex().upper()}>Tj\nET"
        objects[5 + 2 * i] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595.304 841.89] /Contents {6 + 2 * i} 0 R "
                              f"/Resources << /Font << /F1 {font_objs} 0 R /F2 {font_objs + 4} 0 R >> >> >>").encode()  # fmt: skip
        stream = zlib.compress(ops.encode("latin-1"))
        objects[6 + 2 * i] = f"<< /Length {len(stream)} /Filter /FlateDecode >>\nstream\n".encode() + stream + b"\nendstream"
    kids = " ".join(f"{5 + 2 * i} 0 R" for i in range(len(pages)))
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[2] = f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode()
    objects[3] = "<< /Title (\xfe\xff".encode("latin-1") + "规格书".encode("utf-16-be").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b") /Producer (bench) >>"
    by_code = sorted((code, ch) for ch, code in cjk.items())
    bfchar = "".join(f"<{code:04X}> <{ord(ch):04X}>\n" for code, ch in by_code)
    cmap = ("/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Adobe-Identity-UCS def "
            f"1 begincodespacerange <0000> <FFFF> endcodespacerange {len(by_code)} beginbfchar\n{bfchar}endbfchar "
            "endcmap CMapName currentdict /CMap defineresource pop end end").encode()  # fmt: skip
    to_unicode = zlib.compress(cmap)
    widths = " ".join(f"{code} [{1000}]" for code, _ in by_code)
    objects[font_objs] = (f"<< /Type /Font /Subtype /Type0 /BaseFont /AAAAAA+NotoSansCJKsc-Regular /Encoding /Identity-H "
                          f"/DescendantFonts [{font_objs + 1} 0 R] /ToUnicode {font_objs + 2} 0 R >>").encode()  # fmt: skip
    objects[font_objs + 1] = (f"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /AAAAAA+NotoSansCJKsc-Regular "
                              f"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
                              f"/FontDescriptor {font_objs + 3} 0 R /DW 1000 /W [{widths}] >>").encode()  # fmt: skip
    objects[font_objs + 2] = f"<< /Length {len(to_unicode)} /Filter /FlateDecode >>\nstream\n".encode() + to_unicode + b"\nendstream"
    objects[font_objs + 3] = (b"<< /Type /FontDescriptor /FontName /AAAAAA+NotoSansCJKsc-Regular /Flags 4 "
                              b"/FontBBox [-1002 -1048 2928 1808] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 733 /StemV 80 >>")  # fmt: skip
    objects[font_objs + 4] = (f"<< /Type /Font /Subtype /TrueType /BaseFont /BAAAAA+DejaVuSans /FirstChar 32 /LastChar 255 "
                              f"/Widths [{' '.join(map(str, latin_widths))}] /Encoding /WinAnsiEncoding "
                              f"/FontDescriptor {font_objs + 5} 0 R >>").encode()  # fmt: skip
    objects[font_objs + 5] = (b"<< /Type /FontDescriptor /FontName /BAAAAA+DejaVuSans /Flags 32 /FontBBox [-1021 -463 1793 1232] "
                              b"/ItalicAngle 0 /Ascent 928 /Descent -236 /CapHeight 730 /StemV 80 >>")  # fmt: skip
    return _pdf15(objects, root=1, info=3)


def _pdf15(objects: dict[int, bytes], root: int, info: int) -> bytes:
    """A PDF 1.5 file: streams at top level, every other object in one object stream, and a
    cross-reference stream (/W [1 4 2], PNG Up predictor) as LibreOffice and Word write them."""
    size = max(objects) + 3
    packed = {n: body for n, body in objects.items() if b"stream" not in body}
    header, payload = [], b""
    for n, body in packed.items():
        header.append(f"{n} {len(payload)}")
        payload += body + b"\n"
    first = " ".join(header).encode() + b"\n"
    objstm_number, xref_number = size - 2, size - 1
    data = zlib.compress(first + payload)
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    entries: dict[int, tuple[int, int, int]] = {0: (0, 0, 65535)}
    for n, body in objects.items():
        if n not in packed:
            entries[n] = (1, len(out), 0)
            out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    entries[objstm_number] = (1, len(out), 0)
    out += (f"{objstm_number} 0 obj\n<< /Type /ObjStm /N {len(packed)} /First {len(first)} /Length {len(data)} "
            "/Filter /FlateDecode >>\nstream\n").encode() + data + b"\nendstream\nendobj\n"  # fmt: skip
    for index, n in enumerate(packed):
        entries[n] = (2, objstm_number, index)
    entries[xref_number] = (1, len(out), 0)
    rows, previous = b"", bytes(7)
    for n in range(size):
        kind, a, b = entries.get(n, (0, 0, 0))
        row = bytes([kind]) + a.to_bytes(4, "big") + b.to_bytes(2, "big")
        rows += b"\x02" + bytes((x - y) & 0xFF for x, y in zip(row, previous, strict=False))
        previous = row
    stream = zlib.compress(rows)
    out += (f"{xref_number} 0 obj\n<< /Type /XRef /Size {size} /W [1 4 2] /Root {root} 0 R /Info {info} 0 R "
            f"/DecodeParms << /Columns 7 /Predictor 12 >> /Filter /FlateDecode /Length {len(stream)} >>\nstream\n").encode()
    out += stream + f"\nendstream\nendobj\nstartxref\n{entries[xref_number][1]}\n%%EOF\n".encode()
    return bytes(out)


def office_pdf_file(path: str, rng: random.Random, text_bytes: int) -> None:
    with open(path, "wb") as f:
        f.write(office_pdf_bytes(rng, text_bytes))


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
                   "xlsx": (xlsx_file, "xlsx"), "pptx": (pptx_file, "pptx"), "pdf": (pdf_file, "pdf"), "pdf-office": (office_pdf_file, "pdf"),
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
