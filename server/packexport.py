"""One alert's signed evidence pack, from the database: what the console's export button serves.

The events as stored (their chain digests are what the seals hold), the seals covering them with
each event's Merkle proof, signed with the collector's key (server/evidence.py); the export is
written to the audit log with the ZIP's SHA-256 and the key's fingerprint, so a pack handed on
later can be matched to its export.
"""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from sqlalchemy import select

from server import evidence, seals
from server.schema import events
from server.signing import SigningKey
from server.times import iso


def alert_pack(store, alert_id: int, key: SigningKey, zone: ZoneInfo, actor: str, extra_files: dict[str, bytes] | None = None) -> evidence.Pack | None:
    """The pack of alert `alert_id` (None: no such alert), audited as export.evidence."""
    alert = store.get_alert(alert_id)
    if alert is None:
        return None
    shown = alert.pop("events")
    with store.engine.connect() as conn:
        rows = conn.execute(select(events.c.id, events.c.body).where(events.c.id.in_(alert["event_ids"]))).all()
        stored = {r.id: json.loads(r.body) for r in rows}
        seal_files, proofs = seals.for_events(conn, list(stored), zone)
    pack = evidence.build(alert, shown, stored, seal_files, proofs, key, iso(store.clock()), actor, extra_files)
    sealed = sum(1 for p in proofs if p.get("sealed"))
    details = {"events": len(shown), "sealed": sealed, "sha256": pack.sha256, "key": pack.fingerprint, "bytes": len(pack.data)}
    store.audit(actor, "export.evidence", f"alert:{alert_id}", details)
    return pack
