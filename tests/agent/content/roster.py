"""A staff or customer roster kept in a Word table (issue 21 item 3): the kind of docx real firms
keep and the one the table fast path is measured on and held to the events path with.

`roster_body(rows, seed)` is a document body: a title paragraph, then a table of a header row and
`rows` people (name, resident ID, mobile, department), Word's own markup around each cell
(run properties, cell properties, proofing marks), with odd cells mixed in when `odd` is set:
a merged cell (gridSpan, vMerge), an empty cell, a tab or a break inside a cell, a cell of two
paragraphs, a nested table. `roster_docx` wraps it in a docx file.
"""

from __future__ import annotations

import random
from pathlib import Path

from tests.agent.content.makers import W, _office, write_zip

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英"
DEPARTMENTS = ["研发部", "财务部", "人力资源部", "销售部", "法务部", "Engineering", "客户服务中心"]
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(rng: random.Random) -> str:
    """A resident ID with a right check digit (GB 11643)."""
    body = f"{rng.choice(['110105', '310104', '440305', '510107'])}{rng.randint(1960, 2004)}"
    body += f"{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]
    return body + check


def _run(text: str) -> str:
    return f'<w:r><w:rPr><w:rFonts w:hint="eastAsia"/><w:sz w:val="21"/></w:rPr><w:t xml:space="preserve">{text}</w:t></w:r>'


def _cell(inner: str, width: int = 2000, extra: str = "") -> str:
    return (
        f'<w:tc><w:tcPr><w:tcW w:w="{width}" w:type="dxa"/>{extra}</w:tcPr>'
        f'<w:p w:rsidR="00A1" w:rsidRDefault="00A1"><w:pPr><w:jc w:val="center"/></w:pPr>{inner}</w:p></w:tc>'
    )


def _row(cells: list[str]) -> str:
    return f'<w:tr w:rsidR="00A1"><w:trPr><w:trHeight w:val="300"/></w:trPr>{"".join(cells)}</w:tr>'


def _odd_cell(rng: random.Random, text: str) -> str:
    kind = rng.randrange(7)
    if kind == 0:
        return _cell(_run(text), extra='<w:gridSpan w:val="2"/>')
    if kind == 1:
        return _cell(_run(text), extra='<w:vMerge w:val="restart"/>')
    if kind == 2:
        return _cell("", extra="<w:vMerge/>")
    if kind == 3:
        return _cell(f"{_run(text)}<w:r><w:tab/></w:r>{_run('分机 8')}<w:r><w:br/></w:r>{_run('备注')}")
    if kind == 4:
        return _cell(_run(text)).replace("</w:p></w:tc>", f"</w:p><w:p>{_run('第二段')}</w:p><w:p/></w:tc>")
    if kind == 5:
        nested = _row([_cell(_run("内表 " + text)), _cell(_run("2"))])
        return _cell(_run(text)).replace("</w:tc>", f"<w:tbl><w:tblPr/>{nested}</w:tbl><w:p/></w:tc>")
    return _cell('<w:proofErr w:type="spellStart"/>' + _run(text) + '<w:bookmarkStart w:id="0" w:name="_GoBack"/>')


def roster_body(rows: int, seed: int = 0, odd: bool = True) -> str:
    rng = random.Random(seed)
    header = _row([_cell(_run(t)) for t in ("姓名", "身份证号", "手机号", "部门")])
    lines = []
    for _ in range(rows):
        texts = [
            rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2))),
            resident_id(rng),
            f"1{rng.choice('3589')}{rng.randint(0, 999_999_999):09d}",
            rng.choice(DEPARTMENTS),
        ]
        cells = [_odd_cell(rng, t) if odd and rng.random() < 0.05 else _cell(_run(t)) for t in texts]
        lines.append(_row(cells))
    title = f'<w:p><w:pPr><w:jc w:val="center"/></w:pPr>{_run("员工花名册 Staff roster")}</w:p>'
    table = f'<w:tbl><w:tblPr><w:tblW w:w="0" w:type="auto"/></w:tblPr><w:tblGrid><w:gridCol w:w="2000"/></w:tblGrid>{header}{"".join(lines)}</w:tbl>'
    return f"{title}{table}<w:p>{_run('共计 人')}</w:p><w:sectPr/>"


def roster_member(rows: int, seed: int = 0, odd: bool = True) -> bytes:
    return f"<w:document {W}><w:body>{roster_body(rows, seed, odd)}</w:body></w:document>".encode()


def roster_docx(path: Path, rows: int = 6000, seed: int = 0, odd: bool = True) -> Path:
    return write_zip(path, {**_office("员工花名册"), "word/document.xml": roster_member(rows, seed, odd)})
