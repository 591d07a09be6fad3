"""Legacy Office fixtures made by a real tool: flat ODF documents written here, converted by
LibreOffice (soffice --headless) to docx, xlsx and pptx, and those to doc, xls and ppt, so that each
legacy file is what an office suite writes when a user saves a modern document in the old format.

The flat ODF files (.fodt, .fods, .fodp) are single XML documents, which LibreOffice opens without
the packaging a hand-made docx would need.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOFFICE = shutil.which("soffice")
NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" '
    'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" '
    'xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" '
    'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/"'
)
META = (
    "<office:meta><dc:title>{title}</dc:title><dc:subject>研发资料 subject</dc:subject>"
    "<meta:keyword>机密 keywords</meta:keyword>"
    '<meta:user-defined meta:name="Classification">核心商业秘密</meta:user-defined></office:meta>'
)

# a spec long enough for winnowing fingerprints, with identifiers the detectors find
SPEC = (
    "第三代电池管理系统设计说明书",
    "本文件规定了电池包均衡电路的拓扑、采样精度与热失控保护策略，适用于公司全部储能产品线。",
    "The balancing circuit samples each cell at 10 Hz with an accuracy of 1 mV and limits the bleed current to 200 mA.",
    "项目负责人：张伟，身份证号 11010519491231002X，手机 13800138000，联系邮箱 zhangwei@example.com。",
    "热失控判定：单体温升速率超过 1 ℃/s 且电压跌落超过 200 mV 时，切断主回路并上报云端。",
    "Supplier pricing for the 280 Ah prismatic cell is 0.42 CNY per Wh, valid until the end of the quarter.",
)
ROWS = (
    ("姓名", "身份证号", "手机", "金额"),
    ("张三", "11010519491231002X", 13800138000, 1234.5),
    ("李四", "310115198001010012", 13912345678, 42),
    ("Customer A", "key account", 18600001111, 0.25),
)
SLIDES = (
    ("产品路线图 2027", "第一季度：量产第三代电池管理系统", "第二季度：进入欧洲储能市场"),
    ("Pricing strategy", "Keep the cell price below 0.42 CNY per Wh", "联系人 13800138000"),
)


def fodt(path: Path, body: tuple[str, ...] = SPEC, header: str = "商业秘密", footer: str = "内部资料 请勿外传") -> Path:
    paragraphs = "".join(f"<text:p>{p}</text:p>" for p in body)
    table = (
        "<table:table table:name='T'><table:table-column table:number-columns-repeated='2'/>"
        "<table:table-row><table:table-cell><text:p>料号</text:p></table:table-cell>"
        "<table:table-cell><text:p>BMS-3000</text:p></table:table-cell></table:table-row></table:table>"
    )
    path.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?><office:document {NS} office:version="1.3" '
        'office:mimetype="application/vnd.oasis.opendocument.text">'
        f"{META.format(title='电池管理系统设计')}"
        '<office:automatic-styles><style:page-layout style:name="pm1"><style:page-layout-properties '
        'fo:page-width="21cm" fo:page-height="29.7cm"/><style:header-style/><style:footer-style/>'
        "</style:page-layout></office:automatic-styles>"
        '<office:master-styles><style:master-page style:name="Standard" style:page-layout-name="pm1">'
        f"<style:header><text:p>{header}</text:p></style:header>"
        f"<style:footer><text:p>{footer}</text:p></style:footer></style:master-page></office:master-styles>"
        f"<office:body><office:text>{paragraphs}{table}</office:text></office:body></office:document>",
        encoding="utf-8",
    )
    return path


def _cell(value: str | float) -> str:
    if isinstance(value, str):
        return f'<table:table-cell office:value-type="string"><text:p>{value}</text:p></table:table-cell>'
    return f'<table:table-cell office:value-type="float" office:value="{value}"><text:p>{value}</text:p></table:table-cell>'


def fods(path: Path, rows: tuple[tuple[str | float, ...], ...] = ROWS, header: str = "秘密 客户名单") -> Path:
    body = "".join("<table:table-row>" + "".join(_cell(v) for v in row) + "</table:table-row>" for row in rows)
    path.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?><office:document {NS} office:version="1.3" '
        'office:mimetype="application/vnd.oasis.opendocument.spreadsheet">'
        f"{META.format(title='客户名单')}"
        '<office:automatic-styles><style:page-layout style:name="pm1"><style:header-style/>'
        "<style:footer-style/></style:page-layout></office:automatic-styles>"
        '<office:master-styles><style:master-page style:name="Default" style:page-layout-name="pm1">'
        f"<style:header><style:region-center><text:p>{header}</text:p></style:region-center></style:header>"
        "<style:footer><style:region-center><text:p>第 1 页</text:p></style:region-center></style:footer>"
        "</style:master-page></office:master-styles>"
        f'<office:body><office:spreadsheet><table:table table:name="客户">{body}</table:table>'
        "</office:spreadsheet></office:body></office:document>",
        encoding="utf-8",
    )
    return path


def fodp(path: Path, slides: tuple[tuple[str, ...], ...] = SLIDES) -> Path:
    pages = []
    for number, (title, *lines) in enumerate(slides, 1):
        items = "".join(f"<text:p>{line}</text:p>" for line in lines)
        pages.append(
            f'<draw:page draw:name="page{number}">'
            '<draw:frame presentation:class="title" svg:x="2cm" svg:y="1cm" svg:width="24cm" svg:height="3cm">'
            f"<draw:text-box><text:p>{title}</text:p></draw:text-box></draw:frame>"
            '<draw:frame presentation:class="outline" svg:x="2cm" svg:y="5cm" svg:width="24cm" svg:height="12cm">'
            f"<draw:text-box>{items}</draw:text-box></draw:frame></draw:page>"
        )
    path.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?><office:document {NS} office:version="1.3" '
        'office:mimetype="application/vnd.oasis.opendocument.presentation">'
        f"{META.format(title='产品路线图')}"
        f"<office:body><office:presentation>{''.join(pages)}</office:presentation></office:body></office:document>",
        encoding="utf-8",
    )
    return path


def convert(source: Path, extension: str, outdir: Path) -> Path:
    """source converted by LibreOffice to extension, in outdir (its own profile: no shared state)."""
    profile = outdir / ".lo-profile"
    subprocess.run(
        [SOFFICE, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", extension,
         "--outdir", str(outdir), str(source)],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    target = outdir / f"{source.stem}.{extension}"
    if not target.exists():
        raise RuntimeError(f"soffice did not convert {source.name} to {extension}")
    return target
