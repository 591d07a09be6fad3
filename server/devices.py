"""The device register: removable media any agent mounted, and the allow-list that says which may be.

Every new `media.mounted` event of a portable medium (rules.events.is_portable: not a network file
system, not an internal disk) upserts one row per identity (rules.events.Media.identity, lower
case): `vendor_id:product_id:serial` for a medium with a hardware serial, else
`vendor_id:product_id:vol:<volume id>:<size in bytes>`, so two sticks without a serial are two rows.

The allow-list holds patterns `vendor:product:serial` where `*` stands for any run of characters
and `?` for one, matched case-insensitively part by part; an entry past its `expires_at` allows
nothing. Fail closed for media without a hardware serial: a volume identity is allowed only by a
pattern that is exactly it (a wildcard would cover every reformatted or cloned stick of a model),
and a medium with neither a serial nor a volume id (an old agent's `::`, a file system blkid could
not read) is allowed by no pattern at all: they cannot be told apart. Rules consult it through the `allowed-devices` watchlist name (server/watchlists.py):
MW-UNKNOWN-DEVICE tests `media.identity: {in_watchlist: allowed-devices}`, so the one rule
mechanism decides, and serials an officer put on that watchlist before the register existed still
allow their stick.

The serial is the agent's to choose, so matching must not depend on what it sends: Python's `re`
backtracks, and one 175-character serial against `*:*:*0*0*0*0*0*1` held ingest (every agent's)
for 74 s. The parts are matched by RE2 (google-re2), whose time is linear in the identity; a
pattern holds at most MAX_WILDCARDS wildcards, and an identity longer than MAX_IDENTITY_CHARS
(more than the event model admits) is allowed by nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

import re2
from loguru import logger
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection, Engine

from rules.events import VOLUME_MARK, Event, is_portable
from server import audit
from server.database import insert_ignore, writing
from server.schema import device_allow, devices
from server.times import Clock, aware, iso

ALLOWED_DEVICES = "allowed-devices"  # the watchlist name rules use for the allow-list
MAX_ALLOW_ENTRIES = 10_000
MAX_LISTED_DEVICES = 100_000
ID_PART = re.compile(r"^[0-9a-f*?]{0,16}$")
MAX_WILDCARDS = 16  # '*' and '?' in one pattern, a run of '*' counted once
MAX_IDENTITY_CHARS = 64 + 1 + 64 + 1 + 1024  # vendor_id:product_id:serial as server/models.py caps them


class PatternError(ValueError):
    """A pattern that is not vendor:product:serial."""


@dataclass(frozen=True)
class DevicePattern:
    text: str  # lower case, as stored
    parts: tuple[re2._Regexp, re2._Regexp, re2._Regexp]  # RE2: linear in the identity

    def matches(self, identity: str) -> bool:
        if len(identity) > MAX_IDENTITY_CHARS:
            return False
        values = identity.lower().split(":", 2)
        if len(values) != 3:
            return False
        kind = identity_kind(identity)
        if kind == NO_IDENTITY:
            return False
        if kind == VOLUME:
            return not has_wildcards(self.text) and self.text == identity.lower()
        return all(p.fullmatch(v) for p, v in zip(self.parts, values, strict=True))


SERIAL, VOLUME, NO_IDENTITY = "serial", "volume", "none"


def identity_kind(identity: str) -> str:
    """SERIAL (a hardware serial), VOLUME (no serial: the volume id and size) or NO_IDENTITY
    (neither: an empty serial part, or a volume mark with no volume id)."""
    serial = identity.lower().split(":", 2)[-1] if identity.count(":") >= 2 else ""
    if not serial:
        return NO_IDENTITY
    if serial.startswith(VOLUME_MARK):
        return VOLUME if serial[len(VOLUME_MARK) :].split(":", 1)[0] else NO_IDENTITY
    return SERIAL


def has_wildcards(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def parse_pattern(text: str) -> DevicePattern:
    """`vendor:product:serial` with `*` and `?`; raises PatternError saying what is wrong."""
    pattern = text.strip().lower()
    parts = pattern.split(":", 2)
    if len(parts) != 3:
        raise PatternError(f"'{text}' is not vendor:product:serial (two ':' needed), e.g. 0951:1666:* or *:*:60A44C3FAE22F0B1")
    for name, part in (("vendor", parts[0]), ("product", parts[1])):
        if not ID_PART.match(part):
            raise PatternError(f"the {name} part '{part}' must be hex digits with * or ?, e.g. 0951 or 09??")
    if any(ord(c) < 32 or ord(c) == 127 for c in parts[2]):
        raise PatternError("the serial part must not contain control characters")
    wildcards = wildcard_count(pattern)
    if wildcards > MAX_WILDCARDS:
        raise PatternError(f"'{text}' has {wildcards} wildcards; at most {MAX_WILDCARDS} (* and ?) in one pattern")
    if not parts[2]:
        raise PatternError(
            f"'{text}' has an empty serial part, which would allow every medium without a hardware serial;"
            " allow such a medium by the exact identity the device register shows (vendor:product:vol:<volume id>:<size>)"
        )
    if parts[2].startswith(VOLUME_MARK):
        if has_wildcards(pattern):
            raise PatternError("a medium without a hardware serial is allowed only by its exact identity, without * or ?")
        if identity_kind(pattern) == NO_IDENTITY:
            raise PatternError("this medium has neither a hardware serial nor a volume id: it cannot be told apart, so it cannot be allowed")
    return DevicePattern(pattern, tuple(_part_regex(p) for p in parts))  # type: ignore[arg-type]


def wildcard_count(pattern: str) -> int:
    """'*' and '?' in the pattern, each run of '*' once (`**` means what `*` means)."""
    return len(re.findall(r"\*+|\?", pattern))


def _part_regex(part: str) -> re2._Regexp:
    """A part as an RE2 expression: `*` any run of characters, `?` one character, the rest literal."""
    pieces = re.findall(r"\*+|\?|[^*?]+", part)
    body = "".join(".*" if p[0] == "*" else "." if p == "?" else re2.escape(p) for p in pieces)
    return re2.compile("(?s)" + body)


class AllowList:
    """The entries in force at one moment, compiled once (per ingest transaction)."""

    def __init__(self, entries: list[tuple[int, DevicePattern]]):
        self.entries = entries

    @classmethod
    def load(cls, conn: Connection, now: datetime) -> AllowList:
        rows = conn.execute(select(device_allow.c.id, device_allow.c.pattern, device_allow.c.expires_at)).all()
        entries = []
        for entry_id, text, expires_at in rows:
            if expires_at is not None and aware(expires_at) <= now:
                continue
            try:
                entries.append((entry_id, parse_pattern(text)))
            except PatternError as exc:  # stored through the API, so valid (or from before a cap); a hand edit must not stop ingest
                logger.debug("allow-list entry ignored id={} reason={}", entry_id, exc)  # debug: this runs per batch
                continue
        return cls(entries)

    def allowing(self, identity: str) -> tuple[int, str] | None:
        """(entry id, pattern) of the first entry that allows the identity, or None."""
        for entry_id, pattern in self.entries:
            if pattern.matches(identity):
                return entry_id, pattern.text
        return None


class DeviceRegister:
    def __init__(self, engine: Engine, clock: Clock):
        self.engine = engine
        self.clock = clock

    # --- the register -------------------------------------------------------------------------

    @staticmethod
    def record(conn: Connection, events: list[Event]) -> int:
        """Upsert a row for each portable medium mounted (called by ingest, new events only)."""
        count = 0
        for e in sorted((e for e in events if e.type == "media.mounted" and is_portable(e)), key=lambda e: e.ts):
            m = e.media
            identity = m.identity
            key = hashlib.sha256(identity.encode("utf-8")).hexdigest()
            seen = dict(vendor=m.vendor, model=m.model, bus=m.bus, fstype=m.fstype, label=m.label)
            last = dict(last_agent_id=e.agent_id, last_host=e.host, last_user=e.user)
            inserted = conn.execute(
                insert_ignore(conn, devices, ["key_hash"]).returning(devices.c.id).values(
                    key_hash=key, identity=identity, vendor_id=m.vendor_id.lower(), product_id=m.product_id.lower(),
                    serial=m.serial, first_seen=e.ts, last_seen=e.ts, times_seen=1, **seen, **last,
                )
            ).first()
            if not inserted:
                row = conn.execute(select(devices.c.first_seen, devices.c.last_seen).where(devices.c.key_hash == key)).first()
                values = {"times_seen": devices.c.times_seen + 1, "first_seen": min(row.first_seen, e.ts)}
                if e.ts >= row.last_seen:  # a late batch does not overwrite what was seen since
                    values.update(last_seen=e.ts, **seen, **last)
                conn.execute(update(devices).where(devices.c.key_hash == key).values(**values))
            count += 1
        return count

    def list(self, allowed: bool | None, text: str | None, agent_id: str | None, since: str | None, limit: int, cursor: int | None) -> tuple[list[dict], str | None]:
        query = select(devices).order_by(devices.c.id.desc()).limit(MAX_LISTED_DEVICES)
        if agent_id:
            query = query.where(devices.c.last_agent_id == agent_id)
        if since:
            query = query.where(devices.c.last_seen >= since)
        if cursor is not None:
            query = query.where(devices.c.id < cursor)
        with self.engine.connect() as conn:
            allow = AllowList.load(conn, self.clock())
            rows = conn.execute(query).mappings()
            items = []
            for r in rows:
                item = _device_dict(r, allow.allowing(r["identity"]))
                if allowed is not None and item["allowed"] != allowed:
                    continue
                if text and not _mentions(item, text):
                    continue
                items.append(item)
                if len(items) > limit:
                    break
        return items[:limit], (str(items[limit - 1]["id"]) if len(items) > limit else None)

    # --- the allow-list -----------------------------------------------------------------------

    def allow_entries(self) -> list[dict]:
        now = self.clock()
        with self.engine.connect() as conn:
            rows = conn.execute(select(device_allow).order_by(device_allow.c.id)).mappings().all()
        return [_allow_dict(r, now) for r in rows]

    def allow(self, pattern: str, owner: str, note: str, expires_at: datetime | None, actor: str) -> dict | None:
        """Add an entry; None when the same pattern is already listed. Raises PatternError."""
        parsed = parse_pattern(pattern)
        now = self.clock()
        with writing(self.engine) as conn:
            if len(conn.execute(select(device_allow.c.id)).all()) >= MAX_ALLOW_ENTRIES:
                raise PatternError(f"the allow-list holds at most {MAX_ALLOW_ENTRIES} entries")
            stmt = insert_ignore(conn, device_allow, ["pattern"]).returning(device_allow.c.id)
            values = dict(pattern=parsed.text, owner=owner, note=note, expires_at=expires_at, created_by=actor, created_at=now)
            entry_id = conn.execute(stmt.values(**values)).scalar()
            if entry_id is None:
                return None
            row = conn.execute(select(device_allow).where(device_allow.c.id == entry_id)).mappings().first()
            audit.record(conn, now, actor, "device.allow", f"device_allow:{entry_id}", {"pattern": parsed.text, "owner": owner, "expires_at": expires_at})
        return _allow_dict(row, now)

    def disallow(self, entry_id: int, actor: str = "unattributed") -> bool:
        with writing(self.engine) as conn:
            pattern = conn.execute(select(device_allow.c.pattern).where(device_allow.c.id == entry_id)).scalar()
            if pattern is None:
                return False
            conn.execute(delete(device_allow).where(device_allow.c.id == entry_id))
            audit.record(conn, self.clock(), actor, "device.disallow", f"device_allow:{entry_id}", {"pattern": pattern})
            return True


def _mentions(item: dict, text: str) -> bool:
    needle = text.lower()
    return any(needle in str(item[k]).lower() for k in ("identity", "vendor", "model", "label", "last_host", "last_user"))


def _device_dict(r, allowed_by: tuple[int, str] | None) -> dict:
    keys = ("id", "identity", "vendor_id", "product_id", "serial", "vendor", "model", "bus", "fstype", "label",
            "first_seen", "last_seen", "last_agent_id", "last_host", "last_user", "times_seen")
    item = {k: r[k] for k in keys}
    item["allowed"] = allowed_by is not None
    item["allowed_by"] = {"id": allowed_by[0], "pattern": allowed_by[1]} if allowed_by else None
    return item


def _allow_dict(r, now: datetime) -> dict:
    expires_at = aware(r["expires_at"])
    return {
        "id": r["id"],
        "pattern": r["pattern"],
        "owner": r["owner"],
        "note": r["note"],
        "expires_at": iso(expires_at),
        "expired": bool(expires_at and expires_at <= now),
        "created_by": r["created_by"],
        "created_at": iso(aware(r["created_at"])),
    }
