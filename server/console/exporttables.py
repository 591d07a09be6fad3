"""The alert and event exports' tables: what an assessor or a court needs in one row.

Alerts: the incident columns (destination, kind of place, app, device and vendor, files, size,
highest level, register item), how their files matched, the assignee and the handling history
(every status change, assignment and comment, on the firm's clock, status words in the viewer's
language). Events: the medium (identity vendor:product:serial, vendor, model, serial, label, file
system, mount point), the kind of place and app, how the file matched and its register item, read
from each event as the agent sent it. Stored values (severity, status, category, level, place kind,
match method) stay as stored, as in the other exports; headers are said in the viewer's language
by server/console/exports.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.engine import Connection

from server import firmtime
from server.console import queries
from server.console.exports import Table
from server.schema import alert_events, alert_history, events, incident_files
from server.times import aware

ALERT_COLUMNS = (  # the columns of before first, in their order: scripts that read them by position keep working
    "id", "created_at", "updated_at", "severity", "status", "category", "rule_id", "title", "host", "user", "agent_id", "count",
    "explanation", "kind", "assignee", "destination", "place_kind", "app", "device_label", "device_vendor", "file_count",
    "total_bytes", "top_level", "register_item", "match", "history",
)  # fmt: skip
EVENT_COLUMNS = (  # as before, then the new ones
    "seq", "id", "ts", "type", "agent_id", "host", "user", "path", "size", "sha256", "level", "source_path", "severity",
    "register_item", "place_kind", "app", "match", "media_identity", "media_vendor", "media_model", "media_serial", "media_label",
    "media_fstype", "mountpoint",
)  # fmt: skip
CHUNK = 500
MAX_EVENTS_READ = 20  # events read per plain alert for its device and match (an alert keeps at most a few)

Say = Callable[[str, str | None], str]  # (label kind, value) -> the word in the viewer's language


def alerts_table(conn: Connection, f: queries.AlertFilter, limit: int, zone: str, say: Say) -> Table:
    rows = queries.alerts_for_export(conn, f, limit)
    ids = [r["id"] for r in rows]
    plain = [r["id"] for r in rows if r.get("kind") != "incident"]
    matches = _incident_matches(conn, [r["id"] for r in rows if r.get("kind") == "incident"])
    bodies = _alert_bodies(conn, plain)
    histories = _histories(conn, ids, zone, say)
    out = []
    for r in rows:
        first = bodies.get(r["id"], [{}])[0] if bodies.get(r["id"]) else {}
        media = first.get("media") if isinstance(first.get("media"), dict) else {}
        how = matches.get(r["id"]) or sorted(
            {m for b in bodies.get(r["id"], ()) if (m := _match(b.get("match"), b.get("detections")))}
        )
        item = {
            **r,
            "place_kind": r.get("place_kind") or first.get("egress") or ("removable" if media else None),
            "device_label": r.get("device_label") or media.get("label"),
            "device_vendor": r.get("device_vendor") or media.get("vendor"),
            "register_item": r.get("register_item") or first.get("register_entry"),
            "match": "; ".join(how),
            "history": "\n".join(histories.get(r["id"], ())),
        }
        out.append([item.get(c) for c in ALERT_COLUMNS])
    return Table("alerts", ALERT_COLUMNS, out, times=("created_at", "updated_at"))


def events_table(conn: Connection, f: queries.EventFilter, limit: int) -> Table:
    rows, _ = queries.event_page(conn, f, limit, None)
    bodies: dict[str, dict] = {}
    ids = [r["id"] for r in rows]
    for chunk in (ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)):
        for event_id, body in conn.execute(select(events.c.id, events.c.body).where(events.c.id.in_(chunk))):
            bodies[event_id] = _json(body)
    out = []
    for r in rows:
        body = bodies.get(r["id"], {})
        media = body.get("media") if isinstance(body.get("media"), dict) else {}
        details = body.get("details") if isinstance(body.get("details"), dict) else {}
        item = {
            **r,
            "register_item": body.get("register_entry"),
            "place_kind": body.get("egress") or ("removable" if media and body.get("type") == "egress.file" else None),
            "app": details.get("app") if isinstance(details.get("app"), str) else None,
            "match": _match(body.get("match"), body.get("detections")),
            "media_identity": _identity(media),
            "media_vendor": media.get("vendor"),
            "media_model": media.get("model"),
            "media_serial": media.get("serial"),
            "media_label": media.get("label"),
            "media_fstype": media.get("fstype"),
            "mountpoint": media.get("mountpoint"),
        }
        out.append([item.get(c) for c in EVENT_COLUMNS])
    return Table("events", EVENT_COLUMNS, out, times=("ts",))


def _identity(media: dict) -> str | None:
    if not media or not (media.get("serial") or media.get("vendor_id")):
        return None
    return ":".join(str(media.get(k) or "") for k in ("vendor_id", "product_id", "serial")).lower()


def _match(match: object, detections: object = None) -> str | None:
    """'exact', 'partial 83%', then detections 'cn_resident_id ×3'."""
    parts = []
    if isinstance(match, dict) and match.get("method"):
        similarity = match.get("similarity")
        partial = match["method"] == "partial" and isinstance(similarity, (int, float))
        parts.append(f"{match['method']} {similarity:.0%}" if partial else str(match["method"]))
    for d in detections if isinstance(detections, list) else ():
        if isinstance(d, dict) and d.get("count"):
            parts.append(f"{d.get('detector')} ×{d.get('count')}")
    return ", ".join(parts) or None


def _incident_matches(conn: Connection, ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, set[str]] = {}
    for chunk in (ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)):
        query = (
            select(incident_files.c.alert_id, incident_files.c.match)
            .distinct()
            .where(incident_files.c.alert_id.in_(chunk))
        )
        for alert_id, match in conn.execute(query):
            how = _json(match) if match else {}
            text = _match(how, how.get("detections"))
            if text:
                found.setdefault(alert_id, set()).add(text)
    return {k: sorted(v) for k, v in found.items()}


def _alert_bodies(conn: Connection, ids: list[int]) -> dict[int, list[dict]]:
    found: dict[int, list[dict]] = {}
    for chunk in (ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)):
        query = (
            select(alert_events.c.alert_id, events.c.body)
            .join(events, events.c.id == alert_events.c.event_id)
            .where(alert_events.c.alert_id.in_(chunk))
            .order_by(alert_events.c.alert_id, events.c.seq)
        )
        for alert_id, body in conn.execute(query):
            if len(found.setdefault(alert_id, [])) < MAX_EVENTS_READ:
                found[alert_id].append(_json(body))
    return found


def _histories(conn: Connection, ids: list[int], zone: str, say: Say) -> dict[int, list[str]]:
    """Per alert, one line per history row: time, who, status change or assignment, comment."""
    found: dict[int, list[str]] = {}
    for chunk in (ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)):
        query = (
            select(alert_history)
            .where(alert_history.c.alert_id.in_(chunk), alert_history.c.action != "repeated")
            .order_by(alert_history.c.id)
        )
        for h in conn.execute(query).mappings():
            when = firmtime.show(aware(h["at"]), zone)
            if h["action"] == "assigned":
                what = f"→ @{h['comment'] or '-'}"
                comment = ""
            else:
                start = say("status", h["from_status"]) if h["from_status"] and h["from_status"] != h["status"] else ""
                what = f"{start} → {say('status', h['status'])}" if start else say("status", h["status"])
                comment = h["comment"] or ""
            line = f"{when} {say('actor', h['actor'])}: {what}" + (f" — {comment}" if comment else "")
            found.setdefault(h["alert_id"], []).append(line.replace("\n", " "))
    return found


def _json(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
