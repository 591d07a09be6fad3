"""Identifier files in every storage form a firm keeps them in, with look-alikes beside them.

Each file holds valid identifiers (counted in its label) and, in most forms, controls that an
honest detector leaves alone: values failing their checksum, ICCIDs and IMEIs (Luhn-valid, not
cards), ERP order numbers, corporate accounts, unassigned mobile ranges and masked values.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from bench.fileserver import identifiers as ids
from bench.fileserver import writers
from bench.fileserver.genres import Doc, person

KINDS = ("cn_resident_id", "cn_mobile", "bank_card", "cn_uscc")


def _records(rng: random.Random, n: int, english: bool = False) -> list[dict[str, str]]:
    return [
        dict(
            name=person(rng),
            cn_resident_id=ids.resident_id(rng),
            cn_mobile=ids.mobile(rng),
            bank_card=ids.bank_card(rng, english),
            cn_uscc=ids.uscc(rng),
        )
        for _ in range(n)
    ]


def _controls(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """(what it is, value): none of them an identifier."""
    makers = (
        ("ICCID", ids.iccid),
        ("IMEI", ids.imei),
        ("订单号", ids.order_number),
        ("对公账号", ids.corporate_account),
        ("身份证号(校验错)", ids.bad_resident_id),
        ("卡号(校验错)", ids.bad_bank_card),
        ("信用代码(校验错)", ids.bad_uscc),
        ("手机(无效号段)", ids.bad_mobile),
        ("身份证号(脱敏)", lambda r: ids.masked("cn_resident_id", ids.resident_id(r))),
        ("卡号(脱敏)", lambda r: ids.masked("bank_card", ids.bank_card(r))),
        ("手机(脱敏)", lambda r: ids.masked("cn_mobile", ids.mobile(r))),
    )
    return [(label, make(rng)) for label, make in (rng.choice(makers) for _ in range(n))]


HEADER = ["姓名", "身份证号", "手机号码", "银行卡号", "统一社会信用代码"]


def _table(records: list[dict[str, str]]) -> list[list[str]]:
    return [HEADER] + [[r["name"], *(r[k] for k in KINDS)] for r in records]


def build(rng: random.Random, folder: Path, scale: float) -> list[tuple[Path, str, Counter]]:
    """Write the files; (path, storage form, identifiers held by detector id) for each."""
    folder.mkdir(parents=True, exist_ok=True)
    out: list[tuple[Path, str, Counter]] = []
    rows = max(6, int(40 * scale))

    def truth(records: list[dict[str, str]]) -> Counter:
        return Counter({k: len(records) for k in KINDS})

    for n in range(max(1, round(3 * scale))):
        recs = _records(rng, rows)
        table = _table(recs)
        stem = f"{n:02d}-人员信息"
        forms = {
            "txt-labelled": lambda p, t=table: p.with_suffix(".txt").write_text(
                "\n".join(f"{r[0]} 身份证号：{r[1]} 手机：{r[2]} 银行卡：{r[3]} 信用代码：{r[4]}" for r in t[1:])
                + "\n",
                "utf-8",
            ),
            "txt-table": lambda p, t=table: p.with_suffix(".tsv.txt").write_text(
                "\n".join("\t".join(r) for r in t) + "\n", "utf-8"
            ),
            "csv-utf8": lambda p, t=table: writers.csv_file(t, p.with_suffix(".csv"), "utf-8"),
            "csv-utf8-bom": lambda p, t=table: writers.csv_file(t, p.with_suffix(".bom.csv"), "utf-8-sig"),
            "csv-gb18030": lambda p, t=table: writers.csv_file(t, p.with_suffix(".gbk.csv"), "gb18030"),
            "xlsx-text": lambda p, t=table: writers.xlsx(
                Doc("pii", "zh", "人员信息", [], table=t), p.with_suffix(".xlsx")
            ),
            "xlsx-numeric": lambda p, t=table: writers.xlsx(
                Doc("pii", "zh", "人员信息", [], table=t), p.with_suffix(".num.xlsx"), numeric=True
            ),
            "docx-table": lambda p, t=table: writers.docx(
                Doc("pii", "zh", "人员信息", [], table=t), p.with_suffix(".docx")
            ),
            "pdf-table": lambda p, t=table: writers.pdf(
                Doc("pii", "zh", "人员信息", [], table=t), p.with_suffix(".pdf")
            ),
            "pdf-table-wrapped": lambda p, t=table: writers.pdf(
                Doc("pii", "zh", "人员信息", [], table=t), p.with_suffix(".wrap.pdf"), wrap_at=10
            ),
        }
        for form, write in forms.items():
            before = set(folder.iterdir())
            write(folder / f"{stem}-{form}")
            (path,) = set(folder.iterdir()) - before
            out.append((path, form, truth(recs)))
        lossy = [[r[0], *(writers.excel_number(c) if c.isdigit() else c for c in r[1:])] for r in table[1:]]
        path = writers.xlsx(
            Doc("pii", "zh", "人员信息", [], table=[HEADER, *lossy]), folder / f"{stem}-excel-float.xlsx", numeric=True
        )
        kept = Counter(kind for row in lossy for kind, cell in zip(KINDS, row[1:], strict=True) if "E+" not in cell)
        out.append((path, "xlsx-excel-float (digits lost)", kept))
        grouped = _records(rng, rows)
        sep = rng.choice((" ", "-"))
        lines = [
            f"{r['name']} 身份证 {ids.grouped('cn_resident_id', r['cn_resident_id'], sep)} 手机 "
            f"{ids.grouped('cn_mobile', r['cn_mobile'], sep)} 卡号 {ids.grouped('bank_card', r['bank_card'], ' ')}"
            for r in grouped
        ]
        path = folder / f"{n:02d}-grouped-digits.txt"
        path.write_text("\n".join(lines) + "\n", "utf-8")
        out.append((path, "txt-grouped", Counter({k: len(grouped) for k in KINDS[:3]})))
        mixed = _records(rng, rows)
        controls = _controls(rng, rows * 2)
        lines = [f"{r['name']} 身份证号 {r['cn_resident_id']} 手机 {r['cn_mobile']}" for r in mixed]
        lines += [f"{label}: {value}" for label, value in controls]
        rng.shuffle(lines)
        path = folder / f"{n:02d}-with-controls.txt"
        path.write_text("\n".join(lines) + "\n", "utf-8")
        out.append((path, "txt-with-controls", Counter(cn_resident_id=len(mixed), cn_mobile=len(mixed))))
        for form, encoding in (("controls-only-txt", "utf-8"), ("controls-only-csv-gb18030", "gb18030")):
            controls = _controls(rng, rows * 2)
            suffix = ".txt" if form.endswith("txt") else ".csv"
            path = folder / f"{n:02d}-{form}{suffix}"
            writers.csv_file(
                [["类别", "编号"], *map(list, controls)], path, encoding
            ) if suffix == ".csv" else path.write_text(
                "\n".join(f"{label} {value}" for label, value in controls) + "\n", encoding
            )
            out.append((path, form, Counter()))
        devices = [[person(rng), ids.iccid(rng), ids.imei(rng), ids.order_number(rng)] for _ in range(rows)]
        path = writers.xlsx(
            Doc("pii", "zh", "设备台账", [], table=[["使用人", "ICCID", "IMEI", "采购订单号"], *devices]),
            folder / f"{n:02d}-设备台账.xlsx",
        )
        out.append((path, "controls-only-xlsx", Counter()))
        english = _records(rng, rows, english=True)
        path = writers.csv_file(
            [["Name", "Mobile", "Card number"], *([r["name"], r["cn_mobile"], r["bank_card"]] for r in english)],
            folder / f"{n:02d}-customers-en.csv",
        )
        out.append((path, "csv-english-cards", Counter(cn_mobile=len(english), bank_card=len(english))))
    return out
