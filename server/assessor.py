"""The period report a 商业秘密保护示范点 assessment asks for, as XLSX or PDF, in Chinese or English.

One command (`miwei-server assessor-report`) and one console page (/console/assessor) make it
from the database, for a period [from, until) on the firm's clock:

- summary: the period, the figures below in one place and how coverage is computed;
- the secret register (every item, every state) and its history up to the period's end;
- the device register (every medium seen before the end, whether the allow-list allows it) and
  the allow-list;
- the agents and their coverage: the share of the period each was online (server/continuity.py);
- alerts raised in the period by category and severity;
- time to acknowledge (first status change away from open) and to resolve (first change to
  resolved or false positive) of each alert raised in the period, from alert_history;
- open items: alerts raised before the end still open or acknowledged at the end;
- the rules in force at the end (the policy active then) and the policy changes in the period
  (rules added, removed, switched off or on).

Every export is written to the audit log (`export.assessor`) with the file's SHA-256.
"""

from __future__ import annotations

import hashlib
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from server import assessorsheets, continuity, firmtime, reportdoc
from server.assessorsheets import Period, Titled
from server.assessorwords import w
from server.reportwords import word
from server.times import iso
from server.xlsxbook import Column, Sheet, workbook

FORMATS = ("xlsx", "pdf")
MAX_PDF_ROWS = 300  # rows of one table in the PDF (fpdf2 lays out ~150 rows a second); the XLSX has them all


@dataclass(frozen=True)
class Export:
    data: bytes
    sha256: str
    media_type: str
    filename: str
    pdf_missing: bool = False  # PDF asked for but no CJK font installed


def period_of(text_from: str, text_until: str, zone: ZoneInfo | str) -> Period:
    """'2026-01-01', '2026-03-31' on the firm's clock: from the first day's midnight to the end of the
    last day (a date alone); a date-time is taken as it is. ValueError when not a period."""
    start = firmtime.parse_local(text_from, zone)
    end = firmtime.parse_local(text_until, zone)
    if len(text_until.strip()) == 10:  # a day: up to its end
        end = firmtime.local_day_start(firmtime.local(end, zone).date() + timedelta(days=1), zone)
    if end <= start:
        raise ValueError("the period ends before it starts")
    return Period(start, end)


def sheets(store, period: Period, lang: str, zone: ZoneInfo, actor: str, offline_after_s: float) -> list[Titled]:
    now = store.clock()
    with store.engine.connect() as conn:
        reg, reg_history = assessorsheets.register_sheets(conn, period, lang)
        devs, allow, seen = assessorsheets.device_sheets(conn, period, lang, now)
        coverage = continuity.of_agents(conn, period.start, period.end, now, offline_after_s)
        cov_sheet = assessorsheets.coverage_sheet(conn, coverage, lang)
        raised = assessorsheets.raised_alerts(conn, period)
        histories = assessorsheets.histories(conn, [a["id"] for a in raised])
        by_cat = assessorsheets.by_category(raised, lang)
        handling, ack_h, resolve_h = assessorsheets.handling(raised, histories, lang)
        open_items = assessorsheets.open_items(conn, period, lang, now)
        rules, changes = assessorsheets.rule_sheets(conn, store, period, lang)
    monitored = sum(c.monitored_s for c in coverage)
    offline = sum(c.offline_s for c in coverage)
    summary_rows = (
        (w("period_from", lang), firmtime.show(period.start, zone)),
        (w("period_until", lang), firmtime.show(period.end, zone)),
        (w("generated", lang), firmtime.show(now, zone)),
        (w("generated_by", lang), actor),
        (w("times_in", lang), firmtime.zone_label(zone, lang, period.start)),
        (w("register_active", lang), sum(1 for r in reg.sheet.rows if r[9] == w("state_active", lang))),
        (w("register_changes", lang), sum(1 for r in reg_history.sheet.rows if r[2] and r[2] >= period.start)),
        (w("devices_seen", lang), seen),
        (w("agents", lang), len(coverage)),
        (w("fleet_online", lang), f"{1 - offline / monitored:.1%}" if monitored > 0 else "–"),
        (w("coverage_how", lang), _coverage_how(lang)),
        (w("alerts_raised", lang), len(raised)),
        (w("open_items", lang), len(open_items.sheet.rows)),
        (w("ack_median", lang), round(statistics.median(ack_h), 2) if ack_h else "–"),
        (w("resolve_median", lang), round(statistics.median(resolve_h), 2) if resolve_h else "–"),
        (w("rules_in_force", lang), sum(1 for r in rules.sheet.rows if r[5] == w("yes", lang))),
        (w("policy_changes", lang), len(changes.sheet.rows)),
    )
    summary = Titled(
        Sheet(w("summary", lang), (Column(w("item", lang)), Column(w("value", lang))), summary_rows), (1.2, 3)
    )
    return [summary, reg, reg_history, devs, allow, cov_sheet, by_cat, handling, open_items, rules, changes]


def _coverage_how(lang: str) -> str:
    return word("continuity_how", lang)  # as the evidence report says it


# --- writing it out -----------------------------------------------------------------------------


def to_pdf_document(titled: list[Titled], lang: str, zone: ZoneInfo, period: Period) -> reportdoc.Document:
    sections: list[reportdoc.Section] = []
    for t in titled:
        columns = t.sheet.columns
        shown = tuple(
            tuple(_pdf_value(v, c.kind, zone) for v, c in zip(row, columns, strict=True))
            for row in t.sheet.rows[:MAX_PDF_ROWS]
        )
        note = w("more_rows", lang, n=MAX_PDF_ROWS) if len(t.sheet.rows) > MAX_PDF_ROWS else ""
        if t is titled[0]:
            sections.append(reportdoc.Fields(t.sheet.name, tuple((str(a), str(b)) for a, b in shown)))
        else:
            sections.append(
                reportdoc.Table(t.sheet.name, tuple(c.header for c in columns), shown, t.widths, note, w("none", lang))
            )
    title = f"{w('title', lang)}  {firmtime.show(period.start, zone)[:10]} – {firmtime.show(period.end - timedelta(seconds=1), zone)[:10]}"
    return reportdoc.Document(lang, title, (), tuple(sections), landscape=True)


def _pdf_value(value: object, kind: str, zone: ZoneInfo) -> str:
    if value is None or value == "":
        return ""
    if kind == "time" and isinstance(value, datetime):
        return firmtime.show(value, zone)
    if kind == "percent" and isinstance(value, (int, float)):
        return f"{value:.1%}"
    if kind == "hours" and isinstance(value, (int, float)):
        return f"{value:.2f}"
    return str(value)


def export(store, period: Period, fmt: str, lang: str, zone: ZoneInfo, actor: str, offline_after_s: float) -> Export:
    """The report as XLSX or PDF, audited as export.assessor with its SHA-256."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    titled = sheets(store, period, lang, zone, actor, offline_after_s)
    day = lambda moment: firmtime.show(moment, zone)[:10]  # noqa: E731
    name = f"miwei-assessor-{day(period.start)}_{day(period.end - timedelta(seconds=1))}.{fmt}"
    if fmt == "xlsx":
        data = workbook([t.sheet for t in titled], zone)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        pdf = reportdoc.to_pdf(to_pdf_document(titled, lang, zone, period), store.clock())
        if pdf is None:
            return Export(b"", "", "application/pdf", name, pdf_missing=True)
        data, media = pdf, "application/pdf"
    digest = hashlib.sha256(data).hexdigest()
    details = {"format": fmt, "lang": lang, "from": iso(period.start), "until": iso(period.end), "sha256": digest, "bytes": len(data),
               "rows": {t.sheet.name: len(t.sheet.rows) for t in titled}}  # fmt: skip
    store.audit(actor, "export.assessor", f"period:{iso(period.start)}/{iso(period.end)}", details)
    return Export(data, digest, media, name)
