"""The assessor's period report (server/assessor.py): every sheet's figures against a database whose
answers are known, in Chinese and English, as XLSX (widths, frozen header, filters, Excel
date-times on the firm's clock) and PDF (rendered with pdftoppm), audited with its SHA-256."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import insert

from rules.worktime import WorkTime
from server import assessor, pdffont, register
from server.cli import main as server_main
from server.database import writing
from server.firmtime import zone
from server.schema import agent_silences, agents, alert_history, alerts, devices

FIRM = zone("Asia/Shanghai")
H = timedelta(hours=1)
# the period: March 2026 on the firm's clock = 2026-02-28 16:00 UTC to 2026-03-31 16:00 UTC
START = datetime(2026, 2, 28, 16, tzinfo=UTC)
END = datetime(2026, 3, 31, 16, tzinfo=UTC)
MAR2 = datetime(2026, 3, 2, 2, tzinfo=UTC)  # 10:00 in Beijing
POPPLER = all(shutil.which(t) for t in ("pdftoppm", "pdftotext"))


def _alert(conn, category: str, severity: str, created: datetime, changes: list[tuple[float, str]], **extra) -> int:
    """An alert and its history: (hours after creation, status) per change; its status the last one."""
    status = changes[-1][1] if changes else "open"
    closed = [created + h * H for h, s in changes if s in ("resolved", "false_positive")]
    alert_id = conn.execute(
        insert(alerts).values(
            rule_id="MW-X",
            category=category,
            severity=severity,
            title=f"{category} alert",
            status=status,
            created_at=created,
            updated_at=created,
            count=1,
            explanation="x",
            closed_at=closed[-1] if closed else None,
            user="zhang.wei",
            host="pc-1",
            **extra,
        )
    ).inserted_primary_key[0]
    rows = [
        dict(
            alert_id=alert_id, at=created, actor="system", status="open", comment="", action="created", from_status=None
        )
    ]
    previous = "open"
    for hours, to in changes:
        rows.append(
            dict(
                alert_id=alert_id,
                at=created + hours * H,
                actor="console:li.na",
                status=to,
                comment="checked",
                action="status",
                from_status=previous,
            )
        )
        previous = to
    conn.execute(insert(alert_history), rows)
    return alert_id


@pytest.fixture
def known(store, clock):
    """A month with known answers."""
    clock.now = MAR2
    store.policies.activate_at_startup(
        WorkTime(timezone="Asia/Shanghai")
    )  # in force at the end, with MW-UNKNOWN-DEVICE off:
    clock.now = MAR2 + 24 * H
    store.policies.set_disabled(lambda current: ["MW-UNKNOWN-DEVICE"], "console:boss")
    with writing(store.engine) as conn:
        item = register.create(conn, {"name": "泵叶轮图纸", "level": "core", "category": "技术信息", "period": "长期",
                                      "locations": [{"os": "linux", "pattern": "/srv/研发/图纸"}]}, "console:boss", "定密会议", START - 24 * H)  # fmt: skip
        register.update(conn, item.id, {**item.fields.as_dict(), "level": "important"}, "console:boss", "降级", MAR2)
        other = register.create(
            conn,
            {"name": "=报价单", "level": "general", "category": "经营信息", "period": "公布前"},
            "console:boss",
            "",
            MAR2,
        )
        register.destroy(conn, other.id, "console:boss", "已公开", MAR2 + 2 * H)
        register.create(
            conn,
            {"name": "after the end", "level": "core", "category": "技术信息", "period": "长期"},
            "console:boss",
            "",
            END + H,
        )

        for i, (serial, first, last) in enumerate(
            (("AAA", START - 48 * H, START - 24 * H), ("BBB", START - 48 * H, MAR2), ("CCC", MAR2, MAR2))
        ):
            conn.execute(insert(devices).values(
                key_hash=uuid.uuid4().hex, identity=f"0951:1666:{serial.lower()}", vendor_id="0951", product_id="1666", serial=serial,
                vendor="Kingston", model="DataTraveler", bus="usb", fstype="vfat", label=f"STICK{i}",
                first_seen=first.isoformat().replace("+00:00", "Z"), last_seen=last.isoformat().replace("+00:00", "Z"),
                last_agent_id="a-1", last_host="pc-1", last_user="zhang.wei", times_seen=i + 1,
            ))  # fmt: skip

        conn.execute(
            insert(agents).values(
                agent_id="a-1",
                hostname="pc-1",
                token_hash="h1",
                enrolled_at=START - 240 * H,
                last_seen=END + 240 * H,
                os="linux",
                version="0.1.0",
            )
        )
        conn.execute(insert(agent_silences).values(rule_id="MW-AGENT-OFFLINE", agent_id="a-1", silent_since=(MAR2).isoformat().replace("+00:00", "Z"),
                                                   raised_at=MAR2, ended_at=MAR2 + 74.4 * H))  # 74.4 h of 744: 90 % online  # fmt: skip

        _alert(conn, "classified-egress", "high", MAR2, [(2, "acknowledged"), (5, "resolved")])  # ack 2 h, resolve 5 h
        _alert(conn, "classified-egress", "critical", MAR2 + 24 * H, [])  # open
        _alert(
            conn, "unknown-device", "medium", MAR2 + 48 * H, [(1, "acknowledged")], assignee="li.na"
        )  # ack 1 h, still acknowledged
        _alert(
            conn, "unknown-device", "low", START - 100 * H, []
        )  # before the period, still open: an open item, not counted as raised
        _alert(
            conn, "unknown-device", "low", MAR2 + 72 * H, [(24 * 40, "resolved")]
        )  # resolved after the end: open at the end
        _alert(conn, "off-hours", "low", END + H, [])  # after the period
    store.devices.allow("0951:1666:bbb", "it", "issued", None, "console:boss")
    clock.now = END + 240 * H
    return store


def _book(data: bytes):
    return load_workbook(io.BytesIO(data))


def _rows(sheet) -> list[list]:
    return [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]


def test_xlsx_sheets_hold_the_known_figures_in_chinese(known, store):
    period = assessor.period_of("2026-03-01", "2026-03-31", FIRM)
    assert (period.start, period.end) == (START, END)
    out = assessor.export(store, period, "xlsx", "zh", FIRM, "cli", offline_after_s=120)
    book = _book(out.data)

    assert book.sheetnames == [
        "概况",
        "保密事项台账",
        "台账变更记录",
        "设备台账",
        "设备白名单",
        "终端覆盖",
        "告警分类统计",
        "处置时效",
        "未结事项",
        "生效规则",
        "规则变更",
    ]
    summary = dict(_rows(book["概况"]))
    assert summary["期间开始"] == "2026-03-01 00:00:00" and summary["期间结束（不含）"] == "2026-04-01 00:00:00"
    assert summary["有效保密事项数"] == 1 and summary["期间内台账变更数"] == 3  # changed, determined, destroyed
    assert summary["期间内出现的存储设备数"] == 2 and summary["终端数"] == 1 and summary["终端总在线比例"] == "90.0%"
    assert summary["期间内告警数"] == 4 and summary["期末未结事项数"] == 4
    # to acknowledge: 2, 1 and 960 h (resolved without an acknowledgement); to resolve: 5 and 960 h
    assert summary["确认用时中位数（小时）"] == 2 and summary["处置用时中位数（小时）"] == 482.5
    assert summary["期间内规则变更数"] == 2

    register_rows = _rows(book["保密事项台账"])
    assert [(r[1], r[2], r[3], r[7], r[9]) for r in register_rows] == [
        ("泵叶轮图纸", "重要商业秘密", "技术信息", "长期", "有效"),
        ("'=报价单", "一般商业秘密", "经营信息", "公布前", "已销毁"),
    ]  # a name starting with = stays text
    assert register_rows[0][8] == "linux:/srv/研发/图纸"
    history = _rows(book["台账变更记录"])
    assert [(r[1], r[4], r[5]) for r in history] == [
        ("泵叶轮图纸", "定密", "定密会议"),
        ("泵叶轮图纸", "变更", "降级"),
        ("'=报价单", "定密", None),
        ("'=报价单", "销毁", "已公开"),
    ]
    assert "level: core → important" in history[1][6]
    assert history[1][2] == datetime(2026, 3, 2, 10, 0)  # an Excel date-time on the firm's clock

    dev = {r[3]: r for r in _rows(book["设备台账"])}
    assert set(dev) == {"AAA", "BBB", "CCC"} and dev["BBB"][12] == "0951:1666:bbb" and dev["CCC"][12] is None
    assert [r[0] for r in _rows(book["设备白名单"])] == ["0951:1666:bbb"]

    (cov,) = _rows(book["终端覆盖"])
    assert cov[0] == "pc-1" and cov[7] == 744 and cov[8] == 74.4 and cov[9] == pytest.approx(0.9) and cov[10] == 1
    assert book["终端覆盖"].cell(2, 10).number_format == "0.0%"

    by_cat = {r[0]: tuple(r[1:]) for r in _rows(book["告警分类统计"])}
    assert [c.value for c in book["告警分类统计"][1]] == ["类别", "严重", "高", "中", "低", "提示", "合计"]
    assert (
        by_cat["涉密内容外发"] == (1, 1, 0, 0, 0, 2)
        and by_cat["未知设备"] == (0, 0, 1, 1, 0, 2)
        and by_cat["合计"] == (1, 1, 1, 1, 0, 4)
    )

    handling = {r[0]: r for r in _rows(book["处置时效"])}
    assert (
        handling[1][7] == 2
        and handling[1][8] == 5
        and handling[2][7] is None
        and handling[3][7] == 1
        and handling[5][8] == 960
    )
    assert handling[1][5] == datetime(2026, 3, 2, 12, 0)

    open_items = {r[0]: r[7] for r in _rows(book["未结事项"])}
    assert open_items == {2: "未处理", 3: "已确认", 4: "未处理", 5: "未处理"}

    rules = {r[0]: r for r in _rows(book["生效规则"])}
    assert rules["MW-UNKNOWN-DEVICE"][5] == "否" and rules["MW-EGRESS-CLASSIFIED"][5] == "是"
    changes = _rows(book["规则变更"])
    assert len(changes) == 2 and changes[1][6] == "MW-UNKNOWN-DEVICE" and changes[1][1] == "console:boss"

    for sheet in book.worksheets:  # laid out for a person
        assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref and sheet.auto_filter.ref.startswith("A1:")
        assert all(sheet.column_dimensions[c].width >= 8 for c in "AB")
    assert book["保密事项台账"].column_dimensions["I"].width >= 22  # as wide as "linux:/srv/研发/图纸"
    assert "Asia/Shanghai, UTC+08:00" in book["处置时效"].cell(1, 2).value

    entry = store.list_audit(action="export.assessor").items[0]
    assert entry["actor"] == "cli" and entry["details"]["sha256"] == out.sha256 and entry["details"]["format"] == "xlsx"


def test_english_sheet_names_and_words(known, store):
    book = _book(
        assessor.export(
            store, assessor.period_of("2026-03-01", "2026-03-31", FIRM), "xlsx", "en", FIRM, "cli", 120
        ).data
    )
    assert (
        book.sheetnames[:3] == ["Summary", "Secret register", "Register history"]
        and "Rules in force" in book.sheetnames
    )
    assert dict(_rows(book["Summary"]))["Open items at the end"] == 4
    assert _rows(book["Secret register"])[0][2] == "Important trade secret"
    assert all(not any("\u4e00" <= ch <= "\u9fff" for ch in str(c.value)) for c in book["Alerts by category"][1])


def test_the_command_writes_the_file_the_extension_names(known, db_url, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(f"server:\n  database: {db_url}\n  enroll_secret: a-long-enough-secret-value\n  language: en\n")
    out = tmp_path / "march.xlsx"
    assert (
        server_main(
            ["assessor-report", "-c", str(config), "--from", "2026-03-01", "--until", "2026-03-31", "--out", str(out)]
        )
        == 0
    )
    book = _book(out.read_bytes())
    assert (
        book.sheetnames[0] == "Summary" and dict(_rows(book["Summary"]))["Alerts raised in the period"] == 4
    )  # server.language
    digest = capsys.readouterr().out.split("sha256 ")[1].split()[0]
    assert digest == hashlib.sha256(out.read_bytes()).hexdigest()
    argv = ["assessor-report", "-c", str(config), "--from", "2026-03-01", "--until", "2026-03-31"]
    assert server_main([*argv, "--out", str(tmp_path / "march.csv")]) == 2
    assert server_main([*argv[:3], "--from", "2026-04-01", "--until", "2026-03-01", "--out", str(out)]) == 2
    zh = tmp_path / "march-zh.xlsx"
    assert (
        server_main([*argv, "--out", str(zh), "--lang", "zh"]) == 0 and _book(zh.read_bytes()).sheetnames[0] == "概况"
    )


def test_a_period_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValueError):
        assessor.period_of("2026-03-31", "2026-03-01", FIRM)
    with pytest.raises(ValueError):
        assessor.period_of("March", "2026-03-01", FIRM)


@pytest.mark.skipif(
    not POPPLER, reason="poppler-utils (pdftoppm, pdftotext) not installed: apt-get install poppler-utils"
)
@pytest.mark.skipif(pdffont.find() is None, reason="no CJK font installed: apt-get install fonts-noto-cjk")
def test_pdf_renders_the_same_figures(known, store, tmp_path):
    out = assessor.export(
        store, assessor.period_of("2026-03-01", "2026-03-31", FIRM), "pdf", "zh", FIRM, "console:boss", 120
    )
    assert out.data.startswith(b"%PDF") and out.filename == "miwei-assessor-2026-03-01_2026-03-31.pdf"
    (tmp_path / "r.pdf").write_bytes(out.data)
    text = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "商业秘密保护评估报告" in text and "保密事项台账" in text and "泵叶轮图纸" in text and "90.0%" in text
    subprocess.run(
        ["pdftoppm", "-r", "40", "-f", "1", "-l", "1", "-gray", str(tmp_path / "r.pdf"), str(tmp_path / "p")],
        check=True,
    )
    pixels = next(tmp_path.glob("p*.pgm")).read_bytes().split(b"\n", 3)[3]
    assert sum(1 for b in pixels if b < 128) > 0.003 * len(pixels), "page 1 is blank"
    assert (
        json.dumps(store.list_audit(action="export.assessor").items[0]["details"]["rows"], ensure_ascii=False).count(
            "保密事项台账"
        )
        == 1
    )


def test_the_pdf_lists_the_first_rows_of_a_long_sheet_and_says_so(known, store, monkeypatch):
    monkeypatch.setattr("server.assessor.MAX_PDF_ROWS", 1)
    period = assessor.period_of("2026-03-01", "2026-03-31", FIRM)
    titled = assessor.sheets(store, period, "zh", FIRM, "cli", 120)
    doc = assessor.to_pdf_document(titled, "zh", FIRM, period)
    handling = next(s for s in doc.sections if s.title == "处置时效")
    assert len(handling.rows) == 1 and handling.note == "PDF 仅列出前 1 行，完整数据见 XLSX"
    assert doc.sections[0].rows[0] == ("期间开始", "2026-03-01 00:00:00") and doc.landscape
