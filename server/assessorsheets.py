"""The assessor's report's sheets, each from the database for a period (server/assessor.py puts them
together, writes the summary and the file): the register and its history, the device register
and allow-list, the agents' coverage, alerts by category and severity, handling times from
alert_history, open items at the end, the rules in force and the policy changes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from rules.policy import build_policy
from rules.worktime import WorkTime
from server import continuity, register
from server.assessorwords import W, w
from server.devices import AllowList
from server.reportwords import label
from server.schema import agents, alert_history, alerts, device_allow, devices, policies, register_history
from server.times import aware, iso
from server.xlsxbook import Column, Sheet

MAX_POLICY_CHANGES = 100
CLOSED = ("resolved", "false_positive")


@dataclass(frozen=True)
class Period:
    start: datetime  # aware UTC, inclusive
    end: datetime  # aware UTC, exclusive


@dataclass(frozen=True)
class Titled:
    """A sheet and the relative column widths its PDF table gets."""

    sheet: Sheet
    widths: tuple[float, ...] = ()


# --- the register -------------------------------------------------------------------------------


def _state(state: str, lang: str) -> str:
    return w(f"state_{state}", lang) if f"state_{state}" in W else state


def register_sheets(conn: Connection, period: Period, lang: str) -> tuple[Titled, Titled]:
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


def device_sheets(conn: Connection, period: Period, lang: str, now: datetime) -> tuple[Titled, Titled, int]:
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


def coverage_sheet(conn: Connection, coverage: list[continuity.Continuity], lang: str) -> Titled:
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


def raised_alerts(conn: Connection, period: Period) -> list[dict]:
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


def histories(conn: Connection, ids: list[int]) -> dict[int, list[dict]]:
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


def by_category(raised: list[dict], lang: str) -> Titled:
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


def handling(
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


def open_items(conn: Connection, period: Period, lang: str, now: datetime) -> Titled:
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
    history = histories(conn, [a["id"] for a in candidates])
    end_or_now = min(period.end, now)
    rows = []
    for a in candidates:
        before_end = [h for h in history.get(a["id"], ()) if h["at"] < period.end]
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


def rule_sheets(conn: Connection, store, period: Period, lang: str) -> tuple[Titled, Titled]:
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
