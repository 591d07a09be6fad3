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
import json
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from rules.policy import build_policy
from rules.worktime import WorkTime
from server import continuity, firmtime, register, reportdoc
from server.devices import AllowList
from server.reportwords import label
from server.schema import agents, alert_history, alerts, device_allow, devices, policies, register_history
from server.times import aware, iso
from server.xlsxbook import Column, Sheet, workbook

FORMATS = ("xlsx", "pdf")
MAX_PDF_ROWS = 1000  # rows of one table in the PDF; the XLSX has them all
MAX_POLICY_CHANGES = 100
CLOSED = ("resolved", "false_positive")

W: dict[str, tuple[str, str]] = {  # key: (zh, en)
    "title": ("商业秘密保护评估报告", "Trade-secret protection assessment report"),
    "summary": ("概况", "Summary"),
    "item": ("项目", "Item"),
    "value": ("数值", "Value"),
    "period_from": ("期间开始", "Period from"),
    "period_until": ("期间结束（不含）", "Period until (exclusive)"),
    "generated": ("生成时间", "Generated"),
    "generated_by": ("导出人", "Exported by"),
    "register_active": ("有效保密事项数", "Register items in force"),
    "register_changes": ("期间内台账变更数", "Register changes in the period"),
    "devices_seen": ("期间内出现的存储设备数", "Devices seen in the period"),
    "agents": ("终端数", "Agents"),
    "fleet_online": ("终端总在线比例", "Fleet online share"),
    "coverage_how": ("覆盖率计算方法", "How coverage is computed"),
    "alerts_raised": ("期间内告警数", "Alerts raised in the period"),
    "open_items": ("期末未结事项数", "Open items at the end"),
    "ack_median": ("确认用时中位数（小时）", "Time to acknowledge, median (hours)"),
    "resolve_median": ("处置用时中位数（小时）", "Time to resolve, median (hours)"),
    "rules_in_force": ("期末生效规则数", "Rules in force at the end"),
    "policy_changes": ("期间内规则变更数", "Rule changes in the period"),
    "register": ("保密事项台账", "Secret register"),
    "register_history": ("台账变更记录", "Register history"),
    "devices": ("设备台账", "Device register"),
    "allow_list": ("设备白名单", "Device allow-list"),
    "coverage": ("终端覆盖", "Agents and coverage"),
    "by_category": ("告警分类统计", "Alerts by category"),
    "handling": ("处置时效", "Handling times"),
    "open": ("未结事项", "Open items"),
    "rules": ("生效规则", "Rules in force"),
    "rule_changes": ("规则变更", "Rule changes"),
    "id": ("编号", "ID"),
    "name": ("名称", "Name"),
    "level": ("密级", "Level"),
    "category": ("类别", "Category"),
    "department": ("责任部门", "Department"),
    "person": ("责任人", "Responsible person"),
    "scope": ("知悉范围", "Who may know"),
    "secrecy_period": ("保密期限", "Secrecy period"),
    "locations": ("存放位置", "Locations"),
    "state": ("状态", "State"),
    "created": ("创建时间", "Created"),
    "updated": ("更新时间", "Updated"),
    "at": ("时间", "Time"),
    "actor": ("操作人", "By"),
    "action": ("操作", "Action"),
    "reason": ("理由", "Reason"),
    "changes": ("变更内容", "Changes"),
    "identity": ("设备标识（厂商:产品:序列号）", "Identity (vendor:product:serial)"),
    "vendor": ("厂商", "Vendor"),
    "model": ("型号", "Model"),
    "serial": ("序列号", "Serial"),
    "bus": ("总线", "Bus"),
    "fstype": ("文件系统", "File system"),
    "label": ("卷标", "Label"),
    "first_seen": ("首次出现", "First seen"),
    "last_seen": ("最近出现", "Last seen"),
    "last_host": ("最近终端", "Last PC"),
    "last_user": ("最近用户", "Last user"),
    "times_seen": ("出现次数", "Times seen"),
    "allowed_by": ("白名单规则", "Allowed by"),
    "pattern": ("规则", "Pattern"),
    "owner": ("负责人", "Owner"),
    "note": ("说明", "Note"),
    "expires": ("到期时间", "Expires"),
    "host": ("终端（计算机名）", "PC (host name)"),
    "agent": ("终端代理 ID", "Agent id"),
    "os": ("操作系统", "OS"),
    "version": ("版本", "Version"),
    "enrolled": ("登记时间", "Enrolled"),
    "monitored_h": ("监控时间（小时）", "Monitored (hours)"),
    "offline_h": ("离线时间（小时）", "Offline (hours)"),
    "online_share": ("在线比例", "Online share"),
    "gaps": ("离线区间数", "Offline spans"),
    "integrity": ("完整性记录数", "Integrity records"),
    "total": ("合计", "Total"),
    "severity": ("严重程度", "Severity"),
    "status": ("状态", "Status"),
    "title_col": ("标题", "Title"),
    "user": ("用户", "User"),
    "acknowledged": ("确认时间", "Acknowledged"),
    "resolved": ("处置完成时间", "Resolved"),
    "ack_h": ("确认用时（小时）", "To acknowledge (hours)"),
    "resolve_h": ("处置用时（小时）", "To resolve (hours)"),
    "status_at_end": ("期末状态", "Status at the end"),
    "assignee": ("负责人", "Assignee"),
    "age_days": ("已持续（天）", "Age (days)"),
    "rule_id": ("规则 ID", "Rule id"),
    "kind": ("类型", "Kind"),
    "enabled": ("启用", "Enabled"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "event_rule": ("单事件规则", "event rule"),
    "correlation_rule": ("关联规则", "correlation rule"),
    "added": ("新增规则", "Rules added"),
    "removed": ("删除规则", "Rules removed"),
    "disabled": ("停用规则", "Switched off"),
    "reenabled": ("重新启用", "Switched on"),
    "files": ("规则文件", "Rule files"),
    "more_rows": ("PDF 仅列出前 {n} 行，完整数据见 XLSX", "The PDF lists the first {n} rows; the XLSX has them all"),
    "times_in": ("时间均为", "All times in"),
    "none": ("无", "none"),
    "reg_determined": ("定密", "determined"),
    "reg_changed": ("变更", "changed"),
    "reg_declassified": ("解密", "declassified"),
    "reg_destroyed": ("销毁", "destroyed"),
    "state_active": ("有效", "active"),
    "state_declassified": ("已解密", "declassified"),
    "state_destroyed": ("已销毁", "destroyed"),
}


def w(key: str, lang: str, **values: object) -> str:
    zh, en = W[key]
    text = zh if lang == "zh" else en
    return text.format(**values) if values else text


@dataclass(frozen=True)
class Period:
    start: datetime  # aware UTC, inclusive
    end: datetime  # aware UTC, exclusive


@dataclass(frozen=True)
class Titled:
    """A sheet and the relative column widths its PDF table gets."""

    sheet: Sheet
    widths: tuple[float, ...] = ()


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
        reg, reg_history = _register(conn, period, lang)
        devs, allow, seen = _devices(conn, period, lang, now)
        coverage = continuity.of_agents(conn, period.start, period.end, now, offline_after_s)
        cov_sheet = _coverage(conn, coverage, lang)
        raised = _raised(conn, period)
        histories = _histories(conn, [a["id"] for a in raised])
        by_cat = _by_category(raised, lang)
        handling, ack_h, resolve_h = _handling(raised, histories, lang)
        open_items = _open_items(conn, period, lang, now)
        rules, changes = _rules(conn, store, period, lang)
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
    from server.reportwords import word

    return word("continuity_how", lang)


# --- the register -------------------------------------------------------------------------------


def _state(state: str, lang: str) -> str:
    return w(f"state_{state}", lang) if f"state_{state}" in W else state


def _register(conn: Connection, period: Period, lang: str) -> tuple[Titled, Titled]:
    items = [i for i in register.list_items(conn, active_only=False) if i.created_at < period.end]
    rows = tuple(
        (
            i.id, i.name, label("level", i.level, lang), label("register", i.category, lang), i.owner_department, i.owner_person, i.scope,
            label("register", i.period, lang), "\n".join(f"{os}:{pattern}" for os, pattern in i.locations), _state(i.state, lang),
            i.created_at, i.updated_at,
        )
        for i in items
    )  # fmt: skip
    keys = ("id", "name", "level", "category", "department", "person", "scope", "secrecy_period", "locations", "state")
    columns = tuple(Column(w(k, lang), "int" if k == "id" else "text") for k in keys) + (
        Column(w("created", lang), "time"),
        Column(w("updated", lang), "time"),
    )
    names = {i.id: i.name for i in items}
    history = (
        conn.execute(select(register_history).where(register_history.c.at < period.end).order_by(register_history.c.id))
        .mappings()
        .all()
    )
    hist_rows = tuple(
        (h["item_id"], names.get(h["item_id"], ""), aware(h["at"]), h["actor"], w(f"reg_{h['action']}", lang) if f"reg_{h['action']}" in W else h["action"],
         h["reason"], _changes(h["before"], h["after"]))
        for h in history
    )  # fmt: skip
    hist_cols = (Column(w("id", lang), "int"), Column(w("name", lang)), Column(w("at", lang), "time"), Column(w("actor", lang)),
                 Column(w("action", lang)), Column(w("reason", lang)), Column(w("changes", lang)))  # fmt: skip
    return (
        Titled(Sheet(w("register", lang), columns, rows), (0.4, 1.5, 1, 0.8, 0.9, 0.8, 1.2, 0.7, 1.8, 0.6, 1.1, 1.1)),
        Titled(Sheet(w("register_history", lang), hist_cols, hist_rows), (0.4, 1.4, 1.1, 0.9, 0.6, 1.5, 3)),
    )


def _changes(before: str | None, after: str) -> str:
    new = json.loads(after)
    old = json.loads(before) if before else {}
    parts = []
    for key, value in new.items():
        if value in ("", [], None) and key not in old:  # a new item's empty fields say nothing
            continue
        if key not in old or old[key] != value:
            shown = lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else str(v)  # noqa: E731
            parts.append(f"{key}: {shown(old[key])} → {shown(value)}" if key in old else f"{key}: {shown(value)}")
    return "\n".join(parts)


# --- devices ------------------------------------------------------------------------------------


def _devices(conn: Connection, period: Period, lang: str, now: datetime) -> tuple[Titled, Titled, int]:
    """The media seen before the end, the allow-list, and how many media were seen in the period."""
    allow = AllowList.load(conn, now)
    rows, seen = [], 0
    query = select(devices).where(devices.c.first_seen < iso(period.end)).order_by(devices.c.first_seen, devices.c.id)
    for d in conn.execute(query).mappings():
        by = allow.allowing(d["identity"])
        seen += d["last_seen"] >= iso(period.start)
        rows.append((
            d["identity"], d["vendor"], d["model"], d["serial"], d["bus"], d["fstype"], d["label"],
            _ts(d["first_seen"]), _ts(d["last_seen"]), d["last_host"], d["last_user"], d["times_seen"], by[1] if by else "",
        ))  # fmt: skip
    keys = ("identity", "vendor", "model", "serial", "bus", "fstype", "label")
    columns = tuple(Column(w(k, lang)) for k in keys) + (
        Column(w("first_seen", lang), "time"), Column(w("last_seen", lang), "time"), Column(w("last_host", lang)),
        Column(w("last_user", lang)), Column(w("times_seen", lang), "int"), Column(w("allowed_by", lang)),
    )  # fmt: skip
    dev_sheet = Titled(
        Sheet(w("devices", lang), columns, tuple(rows)), (1.6, 0.8, 1, 1, 0.4, 0.5, 0.7, 1, 1, 0.8, 0.8, 0.4, 1)
    )
    entries = conn.execute(select(device_allow).order_by(device_allow.c.id)).mappings().all()
    allow_rows = tuple(
        (
            e["pattern"],
            e["owner"],
            e["note"],
            aware(e["expires_at"]) if e["expires_at"] else None,
            e["created_by"],
            aware(e["created_at"]),
        )
        for e in entries
    )
    allow_cols = (Column(w("pattern", lang)), Column(w("owner", lang)), Column(w("note", lang)), Column(w("expires", lang), "time"),
                  Column(w("actor", lang)), Column(w("created", lang), "time"))  # fmt: skip
    return dev_sheet, Titled(Sheet(w("allow_list", lang), allow_cols, allow_rows), (1.6, 0.8, 1.6, 1, 0.8, 1)), seen


def _ts(text: str | None) -> datetime | None:
    return aware(datetime.fromisoformat(text.replace("Z", "+00:00"))) if text else None


# --- agents -------------------------------------------------------------------------------------


def _coverage(conn: Connection, coverage: list[continuity.Continuity], lang: str) -> Titled:
    info = {
        r["agent_id"]: r
        for r in conn.execute(
            select(
                agents.c.agent_id,
                agents.c.os,
                agents.c.version,
                agents.c.state,
                agents.c.enrolled_at,
                agents.c.last_seen,
            )
        ).mappings()
    }
    rows = []
    for c in coverage:
        a = info.get(c.agent_id, {})
        rows.append((
            c.hostname, c.agent_id, a.get("os") or "", a.get("version") or "", a.get("state") or "", aware(a.get("enrolled_at")), aware(a.get("last_seen")),
            continuity.hours(c.monitored_s), continuity.hours(c.offline_s), c.online_share, len(c.gaps), len(c.notes),
        ))  # fmt: skip
    columns = (
        Column(w("host", lang)), Column(w("agent", lang)), Column(w("os", lang)), Column(w("version", lang)), Column(w("state", lang)),
        Column(w("enrolled", lang), "time"), Column(w("last_seen", lang), "time"), Column(w("monitored_h", lang), "hours"),
        Column(w("offline_h", lang), "hours"), Column(w("online_share", lang), "percent"), Column(w("gaps", lang), "int"),
        Column(w("integrity", lang), "int"),
    )  # fmt: skip
    return Titled(
        Sheet(w("coverage", lang), columns, tuple(rows)), (1, 1.6, 0.5, 0.5, 0.5, 1, 1, 0.6, 0.6, 0.6, 0.5, 0.5)
    )


# --- alerts -------------------------------------------------------------------------------------


def _raised(conn: Connection, period: Period) -> list[dict]:
    query = (
        select(
            alerts.c.id,
            alerts.c.created_at,
            alerts.c.category,
            alerts.c.severity,
            alerts.c.status,
            alerts.c.title,
            alerts.c.user,
            alerts.c.host,
        )
        .where(alerts.c.created_at >= period.start, alerts.c.created_at < period.end)
        .order_by(alerts.c.id)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


def _histories(conn: Connection, ids: list[int]) -> dict[int, list[dict]]:
    found: dict[int, list[dict]] = {i: [] for i in ids}
    for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
        query = (
            select(alert_history.c.alert_id, alert_history.c.at, alert_history.c.status)
            .where(alert_history.c.alert_id.in_(chunk))
            .order_by(alert_history.c.id)
        )
        for r in conn.execute(query).mappings():
            found[r["alert_id"]].append({"at": aware(r["at"]), "status": r["status"]})
    return found


SEVERITIES = ("critical", "high", "medium", "low", "info")


def _by_category(raised: list[dict], lang: str) -> Titled:
    counts: dict[str, dict[str, int]] = {}
    for a in raised:
        counts.setdefault(a["category"], {}).setdefault(a["severity"], 0)
        counts[a["category"]][a["severity"]] += 1
    rows = [
        (label("category", cat, lang), *(by.get(s, 0) for s in SEVERITIES), sum(by.values()))
        for cat, by in sorted(counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    ]
    rows.append((w("total", lang), *(sum(by.get(s, 0) for by in counts.values()) for s in SEVERITIES), len(raised)))
    columns = (
        Column(w("category", lang)),
        *(Column(label("severity", s, lang), "int") for s in SEVERITIES),
        Column(w("total", lang), "int"),
    )
    return Titled(Sheet(w("by_category", lang), columns, tuple(rows)), (2.5, 1, 1, 1, 1, 1, 1))


def _handling(
    raised: list[dict], histories: dict[int, list[dict]], lang: str
) -> tuple[Titled, list[float], list[float]]:
    rows, ack_h, resolve_h = [], [], []
    for a in raised:
        created = aware(a["created_at"])
        acked = next((h["at"] for h in histories.get(a["id"], ()) if h["status"] != "open"), None)
        resolved = next((h["at"] for h in histories.get(a["id"], ()) if h["status"] in CLOSED), None)
        to_ack = round((acked - created).total_seconds() / 3600, 2) if acked else None
        to_resolve = round((resolved - created).total_seconds() / 3600, 2) if resolved else None
        ack_h += [to_ack] if to_ack is not None else []
        resolve_h += [to_resolve] if to_resolve is not None else []
        rows.append((a["id"], created, label("category", a["category"], lang), label("severity", a["severity"], lang),
                     label("status", a["status"], lang), acked, resolved, to_ack, to_resolve))  # fmt: skip
    columns = (
        Column(w("id", lang), "int"), Column(w("created", lang), "time"), Column(w("category", lang)), Column(w("severity", lang)),
        Column(w("status", lang)), Column(w("acknowledged", lang), "time"), Column(w("resolved", lang), "time"),
        Column(w("ack_h", lang), "hours"), Column(w("resolve_h", lang), "hours"),
    )  # fmt: skip
    return (
        Titled(Sheet(w("handling", lang), columns, tuple(rows)), (0.4, 1, 1.5, 0.6, 0.7, 1, 1, 0.7, 0.7)),
        ack_h,
        resolve_h,
    )


def _open_items(conn: Connection, period: Period, lang: str, now: datetime) -> Titled:
    """Alerts raised before the end whose status at the end (their last history row by then) was
    open or acknowledged."""
    query = (
        select(
            alerts.c.id,
            alerts.c.created_at,
            alerts.c.category,
            alerts.c.severity,
            alerts.c.title,
            alerts.c.user,
            alerts.c.host,
            alerts.c.status,
            alerts.c.assignee,
        )
        .where(
            alerts.c.created_at < period.end,
            or_(
                alerts.c.closed_at.is_(None),
                alerts.c.closed_at >= period.end,
                alerts.c.status.in_(("open", "acknowledged")),
            ),
        )
        .order_by(alerts.c.id)
    )
    candidates = [dict(r) for r in conn.execute(query).mappings()]
    histories = _histories(conn, [a["id"] for a in candidates])
    end_or_now = min(period.end, now)
    rows = []
    for a in candidates:
        before_end = [h for h in histories.get(a["id"], ()) if h["at"] < period.end]
        status = before_end[-1]["status"] if before_end else a["status"]
        if status not in ("open", "acknowledged"):
            continue
        created = aware(a["created_at"])
        rows.append((a["id"], created, label("category", a["category"], lang), label("severity", a["severity"], lang), a["title"], a["user"] or "",
                     a["host"] or "", label("status", status, lang), a["assignee"] or "", round((end_or_now - created).total_seconds() / 86400, 1)))  # fmt: skip
    columns = (
        Column(w("id", lang), "int"), Column(w("created", lang), "time"), Column(w("category", lang)), Column(w("severity", lang)),
        Column(w("title_col", lang)), Column(w("user", lang)), Column(w("host", lang)), Column(w("status_at_end", lang)),
        Column(w("assignee", lang)), Column(w("age_days", lang), "float"),
    )  # fmt: skip
    return Titled(Sheet(w("open", lang), columns, tuple(rows)), (0.4, 1, 1.3, 0.6, 2, 0.8, 0.8, 0.7, 0.7, 0.5))


# --- rules --------------------------------------------------------------------------------------


def _policy_rules(row) -> dict[str, tuple]:
    """rule id -> (rule, kind) of a stored policy row."""
    files = [(f["name"], f["text"]) for f in json.loads(row["files"])]
    disabled = tuple(json.loads(row["disabled"])) if row["disabled"] else ()
    policy = build_policy(files, WorkTime.from_dict(json.loads(row["worktime"])), disabled)
    return {
        **{r.id: (r, "event_rule") for r in policy.ruleset.event_rules},
        **{r.id: (r, "correlation_rule") for r in policy.ruleset.correlation_rules},
    }


def _rules(conn: Connection, store, period: Period, lang: str) -> tuple[Titled, Titled]:
    at_end = (
        conn.execute(select(policies).where(policies.c.created_at < period.end).order_by(policies.c.id.desc()).limit(1))
        .mappings()
        .first()
    )
    if at_end is not None:
        in_force = _policy_rules(at_end)
    else:  # no policy stored before the end: the packs alone, as the collector would have run
        ruleset = store.policies.active(conn).ruleset
        in_force = {
            **{r.id: (r, "event_rule") for r in ruleset.event_rules},
            **{r.id: (r, "correlation_rule") for r in ruleset.correlation_rules},
        }
    yes, no = w("yes", lang), w("no", lang)
    rows = tuple(
        (
            rule_id,
            rule.title_in(lang),
            label("category", rule.category, lang),
            label("severity", rule.severity, lang),
            w(kind, lang),
            yes if rule.enabled else no,
        )
        for rule_id, (rule, kind) in sorted(in_force.items())
    )
    columns = (Column(w("rule_id", lang)), Column(w("title_col", lang)), Column(w("category", lang)), Column(w("severity", lang)),
               Column(w("kind", lang)), Column(w("enabled", lang)))  # fmt: skip
    before = (
        conn.execute(
            select(policies).where(policies.c.created_at < period.start).order_by(policies.c.id.desc()).limit(1)
        )
        .mappings()
        .first()
    )
    changed = (
        conn.execute(
            select(policies)
            .where(policies.c.created_at >= period.start, policies.c.created_at < period.end)
            .order_by(policies.c.id)
            .limit(MAX_POLICY_CHANGES)
        )
        .mappings()
        .all()
    )
    previous = _policy_rules(before) if before is not None else None
    change_rows = []
    for row in changed:
        now_rules = _policy_rules(row)
        old = previous or {}
        on = {k for k, (r, _) in now_rules.items() if r.enabled}
        was_on = {k for k, (r, _) in old.items() if r.enabled}
        change_rows.append((
            aware(row["created_at"]), label("actor", row["created_by"], lang), row["version"],
            ", ".join(n for n, _ in ((f["name"], 0) for f in json.loads(row["files"])) if not n.startswith("packs/")),
            ", ".join(sorted(set(now_rules) - set(old))) if previous is not None else "",
            ", ".join(sorted(set(old) - set(now_rules))),
            ", ".join(sorted((was_on - on) & set(now_rules))), ", ".join(sorted((on - was_on) & set(old))),
        ))  # fmt: skip
        previous = now_rules
    change_cols = (Column(w("at", lang), "time"), Column(w("actor", lang)), Column(w("version", lang)), Column(w("files", lang)),
                   Column(w("added", lang)), Column(w("removed", lang)), Column(w("disabled", lang)), Column(w("reenabled", lang)))  # fmt: skip
    return (
        Titled(Sheet(w("rules", lang), columns, rows), (1.6, 2.4, 1.3, 0.6, 0.8, 0.4)),
        Titled(Sheet(w("rule_changes", lang), change_cols, tuple(change_rows)), (1, 0.8, 0.9, 1.2, 1.4, 1.4, 1.2, 1.2)),
    )


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
