"""An agent naming another host than the one it enrolled with is tamper evidence.

Events are stored under the enrolled host (server/store.py keeps the body's in `claimed_host`);
this module decides when that raises agent-tamper: once for each new name an agent claims, not
for every batch or heartbeat that repeats it. The last name claimed is kept on the agent's row
(`agents.claimed_host`), so a token copied to another PC, or a script posting for a neighbour's
name, raises one agent.tamper event (details.kind host_mismatch) and hence one alert, and each
switch to yet another name raises one more.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from rules.events import Event
from server.schema import agents
from server.times import iso

MAX_LISTED = 20  # event ids and names quoted in one finding


def host_mismatches(conn: Connection, agent_id: str, enrolled_host: str, claimed: dict[str, list[str]], now: datetime, source: str) -> list[Event]:
    """`claimed` maps each other host name seen to the ids of the new events naming it (none for a
    heartbeat). Returns the agent.tamper event to store, or nothing when no name is new."""
    if not claimed:
        return []
    last = conn.execute(select(agents.c.claimed_host).where(agents.c.agent_id == agent_id)).scalar()
    names = sorted(claimed, key=lambda n: (n.casefold() == (last or "").casefold(), n))
    if last is not None and all(n.casefold() == last.casefold() for n in names):
        return []
    newest = names[0]
    conn.execute(update(agents).where(agents.c.agent_id == agent_id).values(claimed_host=newest[:255]))
    event_ids = [i for n in names for i in claimed[n]]
    shown = ", ".join(repr(n) for n in names[:MAX_LISTED])
    text = (
        f"the agent enrolled as {enrolled_host!r} sent {source} naming another host ({shown}): stored under {enrolled_host!r};"
        " its token may be in use on another PC"
    )
    details = {
        "kind": "host_mismatch", "enrolled_host": enrolled_host, "claimed_hosts": names[:MAX_LISTED], "source": source,
        "event_ids": event_ids[:MAX_LISTED], "events": len(event_ids), "detected_by": "collector",
    }  # fmt: skip
    return [Event(type="agent.tamper", ts=iso(now), agent_id=agent_id, host=enrolled_host, error=text[:2000], details=details)]
