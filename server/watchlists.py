"""Watchlists kept on the collector (departing employees, allowed devices), edited through the API.

Rules look values up in them: `watchlist: departing` raises a rule's severity one step when the
event's user is listed, and `{in_watchlist: allowed-devices}` tests a field. Lookups ignore case
(user names on Windows do), and values are kept as the officer wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from server import audit
from server.database import writing
from server.devices import ALLOWED_DEVICES, AllowList
from server.schema import watchlist_members, watchlists
from server.times import Clock, aware, iso, utc_now

MAX_MEMBERS = 10_000


@dataclass(frozen=True)
class Member:
    value: str
    note: str = ""


class WatchlistStore:
    def __init__(self, engine: Engine, clock: Clock):
        self.engine = engine
        self.clock = clock

    def names(self) -> list[dict]:
        count = func.count(watchlist_members.c.value_key)
        query = (
            select(watchlists.c.name, watchlists.c.updated_at, count)
            .select_from(watchlists.outerjoin(watchlist_members, watchlist_members.c.watchlist == watchlists.c.name))
            .group_by(watchlists.c.name, watchlists.c.updated_at)
            .order_by(watchlists.c.name)
        )
        with self.engine.connect() as conn:
            return [{"name": n, "members": c, "updated_at": iso(aware(u))} for n, u, c in conn.execute(query)]

    def members(self, name: str) -> list[dict] | None:
        with self.engine.connect() as conn:
            if conn.execute(select(watchlists.c.name).where(watchlists.c.name == name)).first() is None:
                return None
            rows = conn.execute(
                select(watchlist_members).where(watchlist_members.c.watchlist == name).order_by(watchlist_members.c.value_key)
            ).mappings()
            return [{"value": r["value"], "note": r["note"], "added_at": iso(aware(r["added_at"])), "added_by": r["added_by"]} for r in rows]

    def replace(self, name: str, members: list[Member], actor: str) -> int:
        """The list becomes exactly `members`; members kept keep their added_at."""
        now = self.clock()
        wanted = {m.value.lower(): m for m in members}
        with writing(self.engine) as conn:
            self._touch(conn, name, now)
            old = {
                k: note
                for k, note in conn.execute(
                    select(watchlist_members.c.value_key, watchlist_members.c.note).where(watchlist_members.c.watchlist == name)
                )
            }
            gone = [k for k in old if k not in wanted]
            if gone:
                conn.execute(delete(watchlist_members).where(watchlist_members.c.watchlist == name, watchlist_members.c.value_key.in_(gone)))
            for key, m in wanted.items():
                if key in old:
                    conn.execute(
                        update(watchlist_members)
                        .where(watchlist_members.c.watchlist == name, watchlist_members.c.value_key == key)
                        .values(value=m.value, note=m.note)
                    )
            new = [_row(name, m, now, actor) for k, m in wanted.items() if k not in old]
            if new:
                conn.execute(insert(watchlist_members), new)
            audit.record(conn, now, actor, "watchlist.replace", f"watchlist:{name}", {"members": len(wanted), "added": len(new), "removed": len(gone)})
        return len(wanted)

    def add(self, name: str, member: Member, actor: str) -> bool:
        """Add one member (or update its note); False when it was already there."""
        now = self.clock()
        key = member.value.lower()
        with writing(self.engine) as conn:
            self._touch(conn, name, now)
            found = conn.execute(
                update(watchlist_members)
                .where(watchlist_members.c.watchlist == name, watchlist_members.c.value_key == key)
                .values(value=member.value, note=member.note)
            ).rowcount
            if not found:
                size = conn.execute(select(func.count()).where(watchlist_members.c.watchlist == name)).scalar()
                if size >= MAX_MEMBERS:
                    raise ValueError(f"a watchlist holds at most {MAX_MEMBERS} members")
                conn.execute(insert(watchlist_members).values(_row(name, member, now, actor)))
            audit.record(conn, now, actor, "watchlist.add" if not found else "watchlist.update", f"watchlist:{name}", {"value": member.value})
        return not found

    def remove(self, name: str, value: str, actor: str = "unattributed") -> bool:
        with writing(self.engine) as conn:
            gone = conn.execute(
                delete(watchlist_members).where(watchlist_members.c.watchlist == name, watchlist_members.c.value_key == value.lower())
            ).rowcount
            if gone:
                conn.execute(update(watchlists).where(watchlists.c.name == name).values(updated_at=self.clock()))
                audit.record(conn, self.clock(), actor, "watchlist.remove", f"watchlist:{name}", {"value": value})
        return bool(gone)

    @staticmethod
    def _touch(conn: Connection, name: str, now) -> None:
        if conn.execute(update(watchlists).where(watchlists.c.name == name).values(updated_at=now)).rowcount == 0:
            conn.execute(insert(watchlists).values(name=name, created_at=now, updated_at=now))


class WatchlistLookup:
    """`(watchlist, value) -> listed?` for one transaction, each answer asked of the database once.

    `allowed-devices` is answered by the device register's allow-list too (server/devices.py): a
    value `vendor_id:product_id:serial` is listed when an entry in force at `now` matches it, or
    when its serial is a member of the watchlist (how sticks were allowed before the register).
    """

    def __init__(self, conn: Connection, now=None):
        self.conn = conn
        self.now = now
        self._seen: dict[tuple[str, str], bool] = {}
        self._members: dict[tuple[str, str], bool] = {}  # (watchlist, value_key) -> is a member
        self._allow = None

    def prefetch(self, wanted: dict[str, set[str]]) -> None:
        """Membership of many values asked at once (a batch's users): one query per watchlist and
        500 values instead of one per value."""
        for name, values in wanted.items():
            if name == ALLOWED_DEVICES:  # a stick is also allowed by its serial alone (see __call__)
                values = set(values) | {v.split(":", 2)[2] for v in values if v.count(":") >= 2}
            keys = sorted({v.lower() for v in values if v} - {k for n, k in self._members if n == name})
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                found = set(
                    self.conn.execute(
                        select(watchlist_members.c.value_key).where(
                            watchlist_members.c.watchlist == name, watchlist_members.c.value_key.in_(chunk)
                        )
                    ).scalars()
                )
                self._members.update(((name, k), k in found) for k in chunk)

    def __call__(self, name: str, value: str) -> bool:
        key = (name, value.lower())
        if key not in self._seen:
            listed = self._member(name, key[1])
            if not listed and name == ALLOWED_DEVICES and value.count(":") >= 2:
                listed = self._device_allowed(key[1])
            self._seen[key] = listed
        return self._seen[key]

    def _member(self, name: str, value_key: str) -> bool:
        known = self._members.get((name, value_key))
        if known is None:
            query = select(watchlist_members.c.value_key).where(
                watchlist_members.c.watchlist == name, watchlist_members.c.value_key == value_key
            )
            known = self._members[(name, value_key)] = self.conn.execute(query).first() is not None
        return known

    def _device_allowed(self, identity: str) -> bool:
        if self._allow is None:
            self._allow = AllowList.load(self.conn, self.now or utc_now())
        if self._allow.allowing(identity) is not None:
            return True
        serial = identity.split(":", 2)[2]
        return bool(serial) and self._member(ALLOWED_DEVICES, serial)


def _row(name: str, member: Member, now, actor: str) -> dict:
    return {"watchlist": name, "value_key": member.value.lower(), "value": member.value, "note": member.note, "added_at": now, "added_by": actor}
