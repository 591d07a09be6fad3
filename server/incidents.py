"""Incidents: one user's egress to one destination within a session window is one alert that grows.

A USB session of 13 files used to raise an alert per file and rule (20 rows for 13 files). Now the
egress event rules' matches (EGRESS_CATEGORIES, on egress.file events) of one agent's user to one
destination become ONE alert of kind 'incident' while files keep coming within `window_s` (event
time, default 30 min) of its last file, and while it is open or acknowledged. Its files are rows of
`incident_files` (name, path, size, level, register item, source, how it matched); the rules that
matched one file (classified, marked, personal data...) are that file's facets, not alerts of their
own. The same file (path and content) written again joins its row.

The destination: a removable medium or phone by its identity (vendor:product:serial, or the volume),
a printer by its name, other places (sync, IM, share, folder) by kind and app, else by the first
ROOT_DEPTH folders of the path.

Severity: the highest of its files' severities, then one step up for each threshold of
`escalate_files` (file count) or `escalate_bytes` (total size) passed, whichever ladder is higher
(server config `incident_escalate_files`, `incident_escalate_bytes`). Notified when it opens and
when its severity goes up (history `escalated`), never per file; each batch that adds files writes
one `repeated` history row. Correlation rules (bulk egress) count the same matches as before:
their hits are made from the verdicts, not from alerts. The rule's `group_by`, `dedup_window` and
`suppress` do not apply to incidents.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from loguru import logger
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection, Row

from rules.events import Event
from rules.explain import device_name
from rules.levels import LEVELS
from rules.model import SEVERITY_STEPS
from rules.units import format_bytes
from server.alerts import MAX_EVIDENCE, OPEN_STATUSES, SYSTEM, AlertDraft, _highest, _history, renotify
from server.database import insert_rows, lock, update_rows
from server.notify.channelstore import enabled_channels
from server.notify.tables import notifications
from server.schema import alert_events, alert_history, alerts, incident_files
from server.times import aware, iso, parse_ts

# the egress categories, most telling first: an incident is named after the first one it holds
EGRESS_CATEGORIES: tuple[str, ...] = ("classified-egress", "marked-egress", "personal-data-egress", "uninspectable-egress")
KIND = "incident"
DEFAULT_WINDOW_S = 1800.0
BYTES_MAX = 2**63 - 1  # an incident's total_bytes (BIGINT): the sum of sizes a file system claims stops there
DEFAULT_ESCALATE_FILES: tuple[int, ...] = (10, 100)
DEFAULT_ESCALATE_BYTES: tuple[int, ...] = (100 * 1024**2, 1024**3)
ROOT_DEPTH = 3  # a place without app or device is named by this many folders of its path
_SEPARATORS = re.compile(r"[\\/]+")


@dataclass(frozen=True)
class IncidentSettings:
    window_s: float = DEFAULT_WINDOW_S  # a file joins the incident within this long after its last file
    escalate_files: tuple[int, ...] = DEFAULT_ESCALATE_FILES  # one severity step per threshold passed
    escalate_bytes: tuple[int, ...] = DEFAULT_ESCALATE_BYTES

    def steps(self, file_count: int, total_bytes: int) -> int:
        """Severity steps for an incident this big: the higher of the two ladders."""
        by_files = sum(1 for t in self.escalate_files if file_count >= t)
        by_bytes = sum(1 for t in self.escalate_bytes if total_bytes >= t)
        return max(by_files, by_bytes)


@dataclass(frozen=True)
class Place:
    """Where files went, as an incident groups them."""

    key: str  # what tells two destinations apart
    label: str  # readable: 'Kingston DataTraveler 3.0 (serial 60A4...)', 'WeChat', '/mnt/share/rnd'
    kind: str | None  # rules.fields.EGRESS_KINDS
    app: str | None
    device_label: str | None
    device_vendor: str | None


@dataclass(frozen=True)
class Facet:
    category: str
    rule_id: str
    severity: str

    def to_dict(self) -> dict:
        return {"category": self.category, "rule_id": self.rule_id, "severity": self.severity}


@dataclass(frozen=True)
class IncidentFile:
    """One file of a batch: every event that wrote it (same path and content) and every rule that matched."""

    event: Event  # the first event that wrote it
    event_ids: tuple[str, ...]
    facets: tuple[Facet, ...]
    drafts: tuple[AlertDraft, ...] = field(compare=False)

    @property
    def severity(self) -> str:
        return _highest(f.severity for f in self.facets)

    @property
    def same(self) -> tuple[str | None, str | None]:
        return (self.event.path, self.event.sha256)

    def top_draft(self) -> AlertDraft:
        """The draft of its most telling category (then the most severe): names an incident it opens."""
        return min(self.drafts, key=lambda d: (_rank(d.category), -SEVERITY_STEPS.index(d.severity) if d.severity in SEVERITY_STEPS else 0))


def is_incident(draft: AlertDraft) -> bool:
    """Egress rules' matches on a file written to an egress place; other alerts are left as they are."""
    return draft.category in EGRESS_CATEGORIES and draft.event is not None and draft.event.type == "egress.file"


def place_of(event: Event) -> Place:
    app = _app(event)
    kind = event.egress or ("removable" if event.media is not None else None)
    media = event.media
    if media is not None and (kind in ("removable", "phone", None) or not app):
        identity = media.identity if (media.serial or media.vendor_id or media.volume_id) else f"mount:{media.mountpoint}"
        return Place(f"device:{identity}", device_name(event), kind, app, media.label or None, media.vendor or None)
    if app:
        return Place(f"{kind}:app:{app.lower()}", app, kind, app, None, None)
    folders = [p for p in _SEPARATORS.split(event.path or "") if p][:-1][:ROOT_DEPTH]
    sep = "\\" if "\\" in (event.path or "") else "/"
    root = (sep if (event.path or "").startswith(("/", "\\")) else "") + sep.join(folders)
    return Place(f"{kind}:root:{root}", root or (kind or "?"), kind, None, None, None)


def incident_files_of(drafts: list[AlertDraft]) -> list[IncidentFile]:
    """One file per event, its rules as facets (a rule listed once), in the drafts' order."""
    by_event: dict[str, list[AlertDraft]] = {}
    for d in drafts:
        by_event.setdefault(d.event.id, []).append(d)
    files = []
    for event_id, members in by_event.items():
        facets = tuple(dict.fromkeys(Facet(d.category, d.rule_id, d.severity) for d in members))
        files.append(IncidentFile(members[0].event, (event_id,), facets, tuple(members)))
    return files


def _merge(a: IncidentFile, b: IncidentFile) -> IncidentFile:
    return IncidentFile(a.event, tuple(dict.fromkeys(a.event_ids + b.event_ids)), tuple(dict.fromkeys(a.facets + b.facets)), a.drafts + b.drafts)


def _rank(category: str) -> int:
    return EGRESS_CATEGORIES.index(category) if category in EGRESS_CATEGORIES else len(EGRESS_CATEGORIES)


def _app(event: Event) -> str | None:
    app = event.details.get("app") if isinstance(event.details, dict) else None
    return app if isinstance(app, str) and app else None


def _cut(value, max_chars: int) -> str | None:
    return None if value is None else str(value)[:max_chars]


def _name(path: str | None) -> str | None:
    parts = [p for p in _SEPARATORS.split(path or "") if p]
    return parts[-1] if parts else path


def _match_text(event: Event) -> str | None:
    """How the file matched, as JSON the console words in the viewer's language."""
    how: dict = {}
    if event.match is not None:
        how["method"], how["similarity"] = event.match.method, event.match.similarity
    found = [{"detector": d.detector, "count": d.count} for d in event.detections if d.count]
    if found:
        how["detections"] = found
    return json.dumps(how, ensure_ascii=False) if how else None


def _top_level(levels) -> str | None:
    known = [lv for lv in levels if lv in LEVELS]
    return min(known, key=LEVELS.index) if known else None


def _stepped(severity: str, steps: int) -> str:
    i = SEVERITY_STEPS.index(severity) if severity in SEVERITY_STEPS else 0
    return SEVERITY_STEPS[min(i + steps, len(SEVERITY_STEPS) - 1)]


def _key(event: Event, place: Place) -> str:
    canonical = json.dumps([KIND, event.agent_id, event.user, place.key], ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class _Run:
    """The files of one incident this batch adds to: an open one (alert_id) or a new one."""

    key: str
    alert_id: int | None
    first: datetime
    last: datetime
    place: Place
    by_file: dict[tuple, IncidentFile] = field(default_factory=dict)  # (path, sha256): the same file written again joins it

    @property
    def files(self) -> list[IncidentFile]:
        return list(self.by_file.values())

    def add(self, f: IncidentFile) -> None:
        self.by_file[f.same] = _merge(self.by_file[f.same], f) if f.same in self.by_file else f


def raise_incidents(conn: Connection, drafts: list[AlertDraft], now: datetime, settings: IncidentSettings) -> int:
    """Egress matches into incidents; returns how many incidents were opened."""
    if not drafts:
        return 0
    by_key: dict[str, list[IncidentFile]] = defaultdict(list)
    places: dict[str, Place] = {}
    for f in incident_files_of(drafts):
        place = place_of(f.event)
        key = _key(f.event, place)
        places.setdefault(key, place)
        by_key[key].append(f)
    lock(conn, [f"incident:{k}" for k in by_key])
    latest = _latest(conn, list(by_key))
    window = timedelta(seconds=settings.window_s)
    runs: list[_Run] = []
    for key, files in by_key.items():
        row = latest.get(key)
        mine: list[_Run] = []
        if row is not None and row.status in OPEN_STATUSES and row.first_ts and row.last_ts:
            mine.append(_Run(key, row.id, parse_ts(row.first_ts), parse_ts(row.last_ts), places[key]))
        for f in sorted(files, key=lambda f: f.event.ts):
            at = parse_ts(f.event.ts)
            target = next((r for r in mine if r.first - window <= at <= r.last + window), None)
            if target is None:
                target = _Run(key, None, at, at, places[key])
                mine.append(target)
            target.add(f)
            target.first, target.last = min(target.first, at), max(target.last, at)
        runs += [r for r in mine if r.files]
    new = [r for r in runs if r.alert_id is None]
    if new:
        _open(conn, new, now, settings)
    grown = [r for r in runs if r.alert_id is not None]
    if grown:
        _grow(conn, grown, now, settings)
    return len(new)


def _latest(conn: Connection, keys: list[str]) -> dict[str, Row]:
    """Each key's newest incident (max(id) per group_key on index alerts_group)."""
    found: dict[str, Row] = {}
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        newest = select(func.max(alerts.c.id)).where(alerts.c.group_key.in_(chunk), alerts.c.kind == KIND).group_by(alerts.c.group_key)
        for r in conn.execute(select(alerts.c.id, alerts.c.group_key, alerts.c.status, alerts.c.first_ts, alerts.c.last_ts).where(alerts.c.id.in_(newest))):
            found[r.group_key] = r
    return found


def _file_row(alert_id: int, seq: int, f: IncidentFile) -> dict:
    e = f.event
    return dict(
        alert_id=alert_id,
        seq=seq,
        event_id=e.id,
        at=parse_ts(e.ts),
        path=e.path,
        name=_name(e.path),
        size=e.size,
        sha256=_cut(e.sha256, 64),
        level=_cut(e.level, 16),
        register_item=_cut(e.register_entry, 255),
        source=e.source_path,
        match=_match_text(e),
        facets=json.dumps([x.to_dict() for x in f.facets], ensure_ascii=False),
    )


def _facet_list(categories) -> str:
    return json.dumps(sorted(set(categories), key=_rank), ensure_ascii=False)


def _open(conn: Connection, runs: list[_Run], now: datetime, settings: IncidentSettings) -> None:
    """New incidents: the alert rows, their files, evidence links, a 'created' history row each and
    their notifications (the outbox rows commit with them)."""
    rows = []
    for run in runs:
        files = run.files
        top = min((f.top_draft() for f in files), key=lambda d: _rank(d.category))
        first_top = next((d for f in files for d in f.drafts if d.category == top.category), top)  # its first file of that category
        base = _highest(f.severity for f in files)
        total = min(sum(f.event.size or 0 for f in files), BYTES_MAX)
        level = _top_level(f.event.level for f in files)
        item = next((f.event.register_entry for f in files if f.event.level == level and f.event.register_entry), None)
        place = run.place
        severity = _stepped(base, settings.steps(len(files), total))
        e = files[0].event
        rows.append(dict(
            rule_id=top.rule_id, category=top.category, severity=severity, title=top.title, status="open",
            created_at=now, updated_at=now, agent_id=e.agent_id, host=e.host, user=e.user,
            count=sum(len(f.event_ids) for f in files), explanation=first_top.explained(), group_key=run.key,
            last_seen=now, first_ts=min(f.event.ts for f in files), last_ts=max(f.event.ts for f in files), suppressed=0,
            kind=KIND, destination=_cut(place.label, 255), place_kind=_cut(place.kind, 16), app=_cut(place.app, 128),
            device_label=_cut(place.device_label, 255), device_vendor=_cut(place.device_vendor, 255),
            file_count=len(files), total_bytes=total, top_level=level, first_file=_name(e.path),
            register_item=_cut(item, 255), facets=_facet_list(x.category for f in files for x in f.facets),
        ))  # fmt: skip
    ids = conn.execute(insert(alerts).returning(alerts.c.id, sort_by_parameter_order=True), rows).scalars().all()
    file_rows, links = [], []
    for alert_id, run in zip(ids, runs, strict=True):
        file_rows += [_file_row(alert_id, seq, f) for seq, f in enumerate(run.files, start=1)]
        events = list(dict.fromkeys(e for f in run.files for e in f.event_ids))[:MAX_EVIDENCE]
        links += [{"alert_id": alert_id, "event_id": e} for e in events]
    insert_rows(conn, incident_files, file_rows)
    insert_rows(conn, alert_events, links)
    insert_rows(conn, alert_history, [_history(i, now, SYSTEM, "created", None, "open", "") for i in ids])
    _route(conn, {i: _categories(run.files) for i, run in zip(ids, runs, strict=True)}, now)
    for alert_id, run in zip(ids, runs, strict=True):
        logger.info("incident opened alert_id={} files={} destination={}", alert_id, len(run.files), run.place.label)


def _grow(conn: Connection, runs: list[_Run], now: datetime, settings: IncidentSettings) -> None:
    """Files joining open incidents: new file rows (or facets and links on a file written again),
    the summary columns, a 'repeated' history row; 'escalated' and a new notification when the
    severity goes up."""
    ids = [r.alert_id for r in runs]
    current, linked = {}, {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        current.update((r.id, r) for r in conn.execute(select(alerts).where(alerts.c.id.in_(chunk))))
        linked.update(conn.execute(select(alert_events.c.alert_id, func.count()).where(alert_events.c.alert_id.in_(chunk)).group_by(alert_events.c.alert_id)).all())
    file_rows, facet_changes, links, changes, history, escalated, widened = [], [], [], [], [], [], {}
    known_by_alert = _known_files_of(conn, {run.alert_id: [f.event.path for f in run.files] for run in runs})
    for run in runs:
        row = current[run.alert_id]
        known = known_by_alert.get(run.alert_id, {})
        added: list[IncidentFile] = []
        for f in run.files:
            old = known.get(f.same)
            if old is None:
                added.append(f)
                continue
            seq, facets = old
            more = [x.to_dict() for x in f.facets if x.to_dict() not in facets]
            if more:
                facet_changes.append({"b_alert": run.alert_id, "b_seq": seq, "b_facets": json.dumps(facets + more, ensure_ascii=False)})
        file_count = row.file_count + len(added)
        total = min(row.total_bytes + sum(f.event.size or 0 for f in added), BYTES_MAX)
        file_rows += [_file_row(run.alert_id, row.file_count + i, f) for i, f in enumerate(added, start=1)]
        events = list(dict.fromkeys(e for f in run.files for e in f.event_ids))
        room = max(0, MAX_EVIDENCE - linked.get(run.alert_id, 0))
        links += [{"alert_id": run.alert_id, "event_id": e} for e in events[:room]]
        categories = json.loads(row.facets or "[]") + [x.category for f in run.files for x in f.facets]
        if set(categories) - set(json.loads(row.facets or "[]")):
            widened[run.alert_id] = set(categories)
        top = min((f.top_draft() for f in run.files), key=lambda d: _rank(d.category))
        renamed = _rank(top.category) < _rank(row.category)
        steps = settings.steps(file_count, total)
        # stepping is monotonic: with no new step the new files' stepped severity is all to compare;
        # a new step needs the files' own highest severity (read once per threshold passed)
        grown_base = _highest(f.severity for f in run.files)
        if steps > settings.steps(row.file_count, row.total_bytes):
            grown_base = _highest([grown_base, _base_severity(conn, row, settings)])
        severity = _highest([row.severity, _stepped(grown_base, steps)])
        level = _top_level([row.top_level, *(f.event.level for f in added)])
        item = row.register_item if level == row.top_level and row.register_item else next(
            (f.event.register_entry for f in added if f.event.level == level and f.event.register_entry), row.register_item
        )
        changes.append({
            "b_id": run.alert_id, "b_more": len(events), "b_now": now,
            "b_first_ts": min([row.first_ts, *(f.event.ts for f in run.files)]),
            "b_last_ts": max([row.last_ts, *(f.event.ts for f in run.files)]),
            "b_severity": severity, "b_file_count": file_count, "b_total_bytes": total, "b_top_level": level,
            "b_register_item": _cut(item, 255), "b_facets": _facet_list(categories),
            "b_rule_id": top.rule_id if renamed else row.rule_id, "b_category": top.category if renamed else row.category,
            "b_title": top.title if renamed else row.title, "b_explanation": top.explained() if renamed else row.explanation,
        })  # fmt: skip
        noun = "file" if len(added) == 1 else "files"
        comment = f"{len(added)} more {noun}" + (f", {len(events)} matching events" if len(events) != len(added) else "")
        history.append(_history(run.alert_id, now, SYSTEM, "repeated", row.status, row.status, comment))
        if SEVERITY_STEPS.index(severity) > SEVERITY_STEPS.index(row.severity):
            why = f"{row.severity} -> {severity}: {file_count} files, {format_bytes(total)}"
            history.append(_history(run.alert_id, now, SYSTEM, "escalated", row.status, row.status, why))
            escalated.append(run.alert_id)
    insert_rows(conn, incident_files, file_rows)
    if conn.dialect.name == "postgresql":
        _update_pg(conn, facet_changes, changes)
    else:
        _update_sqlite(conn, facet_changes, changes)
    insert_rows(conn, alert_events, links, ignore=["alert_id", "event_id"])
    insert_rows(conn, alert_history, history)
    for alert_id in escalated:
        renotify(conn, alert_id, now)
        logger.info("incident escalated alert_id={} severity={}", alert_id, next(c["b_severity"] for c in changes if c["b_id"] == alert_id))
    if widened:  # a category joined: channels that take it and had nothing of this incident yet
        _route(conn, widened, now)


def _update_pg(conn: Connection, facet_changes: list[dict], changes: list[dict]) -> None:
    """The grown incidents' facet and alert changes, one UPDATE ... FROM unnest() each."""
    update_rows(conn, incident_files, [{"alert_id": c["b_alert"], "seq": c["b_seq"], "facets": c["b_facets"]} for c in facet_changes], ("alert_id", "seq"))
    names = ("first_ts", "last_ts", "severity", "file_count", "total_bytes", "top_level", "register_item", "facets", "rule_id", "category", "title", "explanation")
    rows = [{"id": c["b_id"], "count": c["b_more"], "last_seen": c["b_now"], "updated_at": c["b_now"], **{n: c[f"b_{n}"] for n in names}} for c in changes]
    update_rows(conn, alerts, rows, ("id",), added=("count",))


def _update_sqlite(conn: Connection, facet_changes: list[dict], changes: list[dict]) -> None:
    """The same changes as executemany, the driver's own loop on SQLite."""
    if facet_changes:
        conn.execute(
            update(incident_files).where(incident_files.c.alert_id == bindparam("b_alert"), incident_files.c.seq == bindparam("b_seq")).values(facets=bindparam("b_facets")),
            facet_changes,
        )
    conn.execute(
        update(alerts)
        .where(alerts.c.id == bindparam("b_id"))
        .values(
            count=alerts.c.count + bindparam("b_more"), last_seen=bindparam("b_now"), updated_at=bindparam("b_now"),
            first_ts=bindparam("b_first_ts"), last_ts=bindparam("b_last_ts"), severity=bindparam("b_severity"),
            file_count=bindparam("b_file_count"), total_bytes=bindparam("b_total_bytes"), top_level=bindparam("b_top_level"),
            register_item=bindparam("b_register_item"), facets=bindparam("b_facets"), rule_id=bindparam("b_rule_id"),
            category=bindparam("b_category"), title=bindparam("b_title"), explanation=bindparam("b_explanation"),
        ),
        changes,
    )  # fmt: skip


def _categories(files: list[IncidentFile]) -> set[str]:
    return {x.category for f in files for x in f.facets}


def _route(conn: Connection, categories: dict[int, set[str]], now: datetime) -> int:
    """Outbox rows (server/notify/outbox.py) for each incident and each enabled channel taking any
    category among its files' facets, where none exists yet: a channel for personal data hears of
    an incident named after a classified file that also carried an ID list. Severity is judged when
    a row is claimed, as for any alert."""
    channels = enabled_channels(conn)
    if not channels:
        return 0
    ids = list(categories)
    have = set()
    for i in range(0, len(ids), 500):
        query = select(notifications.c.alert_id, notifications.c.channel_id).where(notifications.c.alert_id.in_(ids[i : i + 500]))
        have.update(tuple(r) for r in conn.execute(query))
    rows = [
        dict(alert_id=alert_id, channel_id=c.id, kind="alert", status="pending", attempts=0, next_attempt_at=now, created_at=now)
        for alert_id, cats in categories.items()
        for c in channels
        if (alert_id, c.id) not in have and (not c.categories or cats & set(c.categories))
    ]
    if rows:
        conn.execute(insert(notifications), rows)
    return len(rows)


def _known_files_of(conn: Connection, paths_by_alert: dict[int, list[str | None]]) -> dict[int, dict[tuple, tuple[int, list]]]:
    """_known_files for several incidents in a few statements (a batch grows a dozen incidents at
    once): alert id -> (path, sha256) -> (seq, facets), the lowest seq of a (path, sha256)."""
    found: dict[int, dict[tuple, tuple[int, list]]] = {}
    wanted = {alert_id: {p for p in paths if p is not None} for alert_id, paths in paths_by_alert.items()}
    ids = sorted(a for a, p in wanted.items() if p)
    every = sorted(set().union(*wanted.values())) if wanted else []
    for i in range(0, len(ids), 100):
        chunk = ids[i : i + 100]
        for j in range(0, len(every), 400):
            query = select(incident_files.c.alert_id, incident_files.c.seq, incident_files.c.path, incident_files.c.sha256, incident_files.c.facets).where(
                incident_files.c.alert_id.in_(chunk), incident_files.c.path.in_(every[j : j + 400])
            ).order_by(incident_files.c.alert_id, incident_files.c.seq)
            for r in conn.execute(query).all():
                if r.path in wanted[r.alert_id]:
                    found.setdefault(r.alert_id, {}).setdefault((r.path, r.sha256), (r.seq, json.loads(r.facets or "[]")))
    return found


def _base_severity(conn: Connection, row: Row, settings: IncidentSettings) -> str:
    """The highest severity of the incident's files before escalation. Equal to its severity when
    no threshold was passed yet; else read from its files' facets (once per threshold passed)."""
    if settings.steps(row.file_count, row.total_bytes) == 0:
        return row.severity
    facets = conn.execute(select(incident_files.c.facets).where(incident_files.c.alert_id == row.id)).scalars()
    return _highest(x.get("severity") for text in facets for x in json.loads(text or "[]"))


# --- reading ----------------------------------------------------------------------------------------

FILES_PER_PAGE = 100


def incident_fields(r) -> dict:
    """An alert row's incident columns as the API shows them (an alert of kind 'alert' has them empty)."""
    return {
        "kind": r["kind"],
        "assignee": r["assignee"],
        "destination": r["destination"],
        "place_kind": r["place_kind"],
        "app": r["app"],
        "device_label": r["device_label"],
        "device_vendor": r["device_vendor"],
        "file_count": r["file_count"],
        "total_bytes": r["total_bytes"],
        "top_level": r["top_level"],
        "first_file": r["first_file"],
        "register_item": r["register_item"],
        "facets": json.loads(r["facets"]) if r["facets"] else [],
        "first_ts": r["first_ts"],
        "last_ts": r["last_ts"],
    }


@dataclass(frozen=True)
class FilesPage:
    files: list[dict]
    page: int
    pages: int
    total: int


def files_page(conn: Connection, alert_id: int, page: int = 1, per_page: int = FILES_PER_PAGE) -> FilesPage | None:
    """One page of an incident's files in arrival order, read by the primary key's range (alert_id,
    seq): an incident of 10,000 files opens as fast as one of ten. None: no such alert."""
    total = conn.execute(select(alerts.c.file_count).where(alerts.c.id == alert_id)).scalar()
    if total is None:
        return None
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    low = (page - 1) * per_page
    rows = conn.execute(
        select(incident_files)
        .where(incident_files.c.alert_id == alert_id, incident_files.c.seq > low, incident_files.c.seq <= low + per_page)
        .order_by(incident_files.c.seq)
    ).mappings()
    return FilesPage([_file_dict(r) for r in rows], page, pages, total)


def _file_dict(r) -> dict:
    return {
        "seq": r["seq"],
        "event_id": r["event_id"],
        "at": iso(aware(r["at"])),
        "path": r["path"],
        "name": r["name"],
        "size": r["size"],
        "sha256": r["sha256"],
        "level": r["level"],
        "register_item": r["register_item"],
        "source": r["source"],
        "match": json.loads(r["match"]) if r["match"] else None,
        "facets": json.loads(r["facets"]) if r["facets"] else [],
    }
