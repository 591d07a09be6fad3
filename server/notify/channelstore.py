"""Channels in the database: config channels written at startup, API channels created and changed.

Every collector sharing the database sees the same channels, so any of them can send any alert's
notification. Config channels are rewritten from the config at each start (`config:<n>` in list
order); collectors that share a database are meant to share a config.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from server import audit
from server.database import lock, writing
from server.notify.channels import Channel, ChannelSpec
from server.notify.tables import notifications, notify_channels

CONFIG_PREFIX = "config:"


def channel_from_row(r) -> Channel:
    return Channel(
        url=r.url,
        name=r.name,
        severities=tuple(json.loads(r.severities)),
        categories=tuple(json.loads(r.categories)),
        max_per_hour=r.max_per_hour,
        id=r.id,
        source=r.source,
        enabled=bool(r.enabled),
        extra={"created_at": _iso(r.created_at), "updated_at": _iso(r.updated_at), "created_by": r.created_by},
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _values(spec: ChannelSpec) -> dict:
    return dict(
        name=spec.name,
        url=spec.url,
        severities=json.dumps(list(spec.severities)),
        categories=json.dumps(list(spec.categories)),
        max_per_hour=spec.max_per_hour,
    )


def enabled_channels(conn: Connection) -> list[Channel]:
    rows = conn.execute(
        select(notify_channels).where(notify_channels.c.enabled.is_(True)).order_by(notify_channels.c.id)
    )
    return [channel_from_row(r) for r in rows]


def drop_pending(conn: Connection, channel_id: str, why: str) -> int:
    """Pending notifications of a channel that was removed or disabled will not be sent."""
    done = conn.execute(
        update(notifications)
        .where(notifications.c.channel_id == channel_id, notifications.c.status == "pending")
        .values(status="dropped", last_error=why)
    )
    return done.rowcount


class ChannelStore:
    def __init__(self, engine: Engine, clock):
        self.engine, self.clock = engine, clock

    def sync_config(self, specs: tuple[ChannelSpec, ...] | list[ChannelSpec]) -> None:
        """Make the config channels in the database what this collector's config says."""
        now = self.clock()
        with writing(self.engine) as conn:
            lock(conn, ["notify-config"])
            known = {r.id: r for r in conn.execute(select(notify_channels).where(notify_channels.c.source == "config"))}
            wanted = {f"{CONFIG_PREFIX}{i}": spec for i, spec in enumerate(specs)}
            for channel_id, spec in wanted.items():
                values = _values(spec)
                row = known.get(channel_id)
                if row is None:
                    conn.execute(
                        insert(notify_channels).values(
                            id=channel_id,
                            source="config",
                            enabled=True,
                            created_at=now,
                            updated_at=now,
                            created_by="config",
                            **values,
                        )
                    )
                elif any(getattr(row, k) != v for k, v in values.items()):
                    if row.url != spec.url:
                        drop_pending(conn, channel_id, "the config names another target for this channel now")
                    conn.execute(
                        update(notify_channels)
                        .where(notify_channels.c.id == channel_id)
                        .values(updated_at=now, **values)
                    )
            for channel_id in set(known) - set(wanted):
                drop_pending(conn, channel_id, "channel removed from the config")
                conn.execute(delete(notify_channels).where(notify_channels.c.id == channel_id))

    def list(self) -> list[Channel]:
        with self.engine.connect() as conn:
            return [
                channel_from_row(r)
                for r in conn.execute(
                    select(notify_channels).order_by(notify_channels.c.created_at, notify_channels.c.id)
                )
            ]

    def get(self, channel_id: str) -> Channel | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(notify_channels).where(notify_channels.c.id == channel_id)).first()
        return channel_from_row(row) if row else None

    def create(self, spec: ChannelSpec, enabled: bool, actor: str) -> Channel:
        now, channel_id = self.clock(), "ch_" + secrets.token_hex(6)
        with writing(self.engine) as conn:
            conn.execute(
                insert(notify_channels).values(
                    id=channel_id,
                    source="api",
                    enabled=enabled,
                    created_at=now,
                    updated_at=now,
                    created_by=actor,
                    **_values(spec),
                )
            )
            audit.record(conn, now, actor, "channel.create", f"channel:{channel_id}", _audited(spec, enabled))  # never the URL
        return self.get(channel_id)

    def update(self, channel_id: str, spec: ChannelSpec, enabled: bool, actor: str = "unattributed") -> Channel | None:
        with writing(self.engine) as conn:
            row = conn.execute(select(notify_channels).where(notify_channels.c.id == channel_id)).first()
            if row is None:
                return None
            if row.url != spec.url:
                drop_pending(conn, channel_id, "the channel's target was changed")
            if not enabled:
                drop_pending(conn, channel_id, "channel disabled")
            conn.execute(
                update(notify_channels)
                .where(notify_channels.c.id == channel_id)
                .values(updated_at=self.clock(), enabled=enabled, **_values(spec))
            )
            audit.record(conn, self.clock(), actor, "channel.update", f"channel:{channel_id}", {**_audited(spec, enabled), "target_changed": row.url != spec.url})
        return self.get(channel_id)

    def delete(self, channel_id: str, actor: str = "unattributed") -> bool:
        with writing(self.engine) as conn:
            dropped = drop_pending(conn, channel_id, "channel deleted")
            gone = conn.execute(delete(notify_channels).where(notify_channels.c.id == channel_id)).rowcount
            if gone:
                audit.record(conn, self.clock(), actor, "channel.delete", f"channel:{channel_id}", {"pending_dropped": dropped})
        return bool(gone or dropped)


def _audited(spec: ChannelSpec, enabled: bool) -> dict:
    """What the audit log keeps of a channel: its routing, never its URL (it holds secrets)."""
    return {"name": spec.name, "severities": list(spec.severities), "categories": list(spec.categories), "max_per_hour": spec.max_per_hour, "enabled": enabled}
