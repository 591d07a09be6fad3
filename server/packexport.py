"""One alert's signed evidence pack, from the database: what the console's export button serves.

The events as stored (their chain digests are what the seals hold), the seals covering them with
each event's Merkle proof, signed with the collector's key (server/evidence.py); the export is
written to the audit log with the ZIP's SHA-256 and the key's fingerprint, so a pack handed on
later can be matched to its export. Each pack holds the report a person reads, report.html and
report.pdf, in the viewer's language (server/packreport.py), listed and signed like every other file;
without a CJK font on the collector the PDF is left out and report-pdf-missing.txt says why.
"""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from sqlalchemy import select

from server import evidence, packreport, pdffont, seals
from server.schema import events
from server.signing import SigningKey
from server.times import iso


def alert_pack(
    store, alert_id: int, key: SigningKey, zone: ZoneInfo, actor: str, extra_files: dict[str, bytes] | None = None,
    lang: str = "zh", offline_after_s: float = 120.0,
) -> evidence.Pack | None:
    """The pack of alert `alert_id` (None: no such alert), with its report in `lang` (zh | en),
    audited as export.evidence."""
    alert = store.get_alert(alert_id)
    if alert is None:
        return None
    with store.engine.connect() as conn:
        rows = conn.execute(select(events.c.id, events.c.body).where(events.c.id.in_(alert["event_ids"]))).all()
        stored = {r.id: json.loads(r.body) for r in rows}
        seal_files, proofs = seals.for_events(conn, list(stored), zone)
    sealed = sum(1 for p in proofs if p.get("sealed"))
    now = store.clock()
    report = packreport.build(store, alert, zone, lang, key.fingerprint, now, actor, offline_after_s, sealed)
    files = {"report.html": report.html.encode("utf-8")}
    if report.pdf is not None:
        files["report.pdf"] = report.pdf
    else:
        files["report-pdf-missing.txt"] = f"{pdffont.NO_FONT_ZH}\n{pdffont.NO_FONT}\n".encode()
    shown = alert.pop("events")
    pack = evidence.build(alert, shown, stored, seal_files, proofs, key, iso(now), actor, {**files, **(extra_files or {})})
    details = {
        "events": len(shown), "sealed": sealed, "sha256": pack.sha256, "key": pack.fingerprint, "bytes": len(pack.data),
        "lang": lang, "pdf": report.pdf is not None,
    }
    store.audit(actor, "export.evidence", f"alert:{alert_id}", details)
    return pack
