"""The central secret register (保密台账): the firm's list of secret items and their history.

One place says what is secret, as the Zhejiang standard asks, instead of each PC's config.yaml.
Items are never deleted: declassifying or destroying one changes its state and keeps its row.
Every change (determined, changed, declassified, destroyed) appends a `register_history` row with
who, when, why and the item's fields before and after, and an `audit_log` row, both in the
caller's transaction: the change and its record commit together or not at all. Nothing in the
collector updates or deletes history rows.

States: active -> declassified -> destroyed, or active -> destroyed. Only an active item is
edited; a declassified one may still be destroyed; a destroyed one is final. Fields are checked
by server/register_check.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Connection, RowMapping

from server import audit
from server.register_check import FIELDS, FieldError, ItemFields, RegisterError, check_fields, check_reason
from server.schema import register_history, register_items
from server.times import aware

MAX_ITEMS = 10_000  # the register of a mid-sized firm holds hundreds
MAX_HISTORY_SHOWN = 1000
ACTIONS = ("determined", "changed", "declassified", "destroyed")
AUDIT_ACTIONS = {
    "determined": "register.create",
    "changed": "register.update",
    "declassified": "register.declassify",
    "destroyed": "register.destroy",
}


@dataclass(frozen=True)
class RegisterItem:
    id: int
    name: str
    level: str  # core | important | general | internal
    category: str  # 技术信息 | 经营信息
    owner_department: str
    owner_person: str
    scope: str  # 知悉范围
    period: str  # YYYY-MM-DD | 长期 | 公布前
    locations: tuple[tuple[str, str], ...]  # (os, pattern): ("linux", "/home/*/研发/图纸")
    state: str  # active | declassified | destroyed
    created_at: datetime
    updated_at: datetime

    @property
    def fields(self) -> ItemFields:
        return ItemFields(*(getattr(self, f) for f in FIELDS))

    def as_dict(self) -> dict:
        """The item as the API and history show it (times ISO 8601 UTC)."""
        return {"id": self.id, **self.fields.as_dict(), "state": self.state,
                "created_at": _iso(self.created_at), "updated_at": _iso(self.updated_at)}  # fmt: skip


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    item_id: int
    at: datetime
    actor: str
    action: str  # determined | changed | declassified | destroyed
    reason: str
    before: dict | None  # the item's fields and state before; None when determined
    after: dict

    def as_dict(self) -> dict:
        return {"id": self.id, "item_id": self.item_id, "at": _iso(self.at), "actor": self.actor, "action": self.action,
                "reason": self.reason, "before": self.before, "after": self.after}  # fmt: skip


class StateError(ValueError):
    """The change is not allowed in the item's state (a destroyed item is final)."""


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _item(row: RowMapping) -> RegisterItem:
    locations = tuple((entry["os"], entry["pattern"]) for entry in json.loads(row["locations"]))
    return RegisterItem(
        row["id"], row["name"], row["level"], row["category"], row["owner_department"], row["owner_person"], row["scope"],
        row["period"], locations, row["state"], aware(row["created_at"]), aware(row["updated_at"]),
    )  # fmt: skip


def _snapshot(item: RegisterItem) -> dict:
    return {**item.fields.as_dict(), "state": item.state}


def list_items(conn: Connection, active_only: bool = True, *, state: str | None = None, level: str | None = None,
               category: str | None = None, q: str | None = None) -> list[RegisterItem]:  # fmt: skip
    """Items by id; active ones only unless `active_only` is False (or `state` names another)."""
    query = select(register_items).order_by(register_items.c.id).limit(MAX_ITEMS)
    if state:
        query = query.where(register_items.c.state == state)
    elif active_only:
        query = query.where(register_items.c.state == "active")
    if level:
        query = query.where(register_items.c.level == level)
    if category:
        query = query.where(register_items.c.category == category)
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        text_columns = (
            register_items.c.name,
            register_items.c.owner_department,
            register_items.c.owner_person,
            register_items.c.locations,
        )
        query = query.where(or_(*(c.like(like, escape="\\") for c in text_columns)))
    return [_item(r) for r in conn.execute(query).mappings()]


def get(conn: Connection, item_id: int, lock: bool = False) -> RegisterItem | None:
    if not 0 < item_id < 2**31:
        return None
    query = select(register_items).where(register_items.c.id == item_id)
    row = conn.execute(query.with_for_update() if lock else query).mappings().first()
    return _item(row) if row else None


def history(conn: Connection, item_id: int) -> list[HistoryEntry]:
    """The item's history, oldest first."""
    query = (
        select(register_history)
        .where(register_history.c.item_id == item_id)
        .order_by(register_history.c.id)
        .limit(MAX_HISTORY_SHOWN)
    )
    return [
        HistoryEntry(
            r["id"],
            r["item_id"],
            aware(r["at"]),
            r["actor"],
            r["action"],
            r["reason"],
            json.loads(r["before"]) if r["before"] else None,
            json.loads(r["after"]),
        )  # fmt: skip
        for r in conn.execute(query).mappings()
    ]


def create(conn: Connection, raw: dict, actor: str, reason: str, now: datetime) -> RegisterItem:
    """Determine (定密) a new item; RegisterError names every field that cannot be stored."""
    fields = check_fields(raw)
    reason = check_reason(reason, required=False)
    if conn.execute(select(func.count()).select_from(register_items)).scalar() >= MAX_ITEMS:
        raise RegisterError([FieldError("name", f"the register holds {MAX_ITEMS} items, its limit")])
    values = {
        **fields.as_dict(),
        "locations": _locations_json(fields),
        "state": "active",
        "created_at": now,
        "updated_at": now,
    }
    item_id = conn.execute(insert(register_items).values(values).returning(register_items.c.id)).scalar_one()
    item = get(conn, item_id)
    _record(conn, item, "determined", None, actor, reason, now)
    return item


def update(
    conn: Connection, item_id: int, changes: dict, actor: str, reason: str, now: datetime
) -> tuple[RegisterItem, bool] | None:
    """Change some fields of an active item: (item, changed); None when there is no such item.
    Nothing is written when the fields are already so."""
    item = get(conn, item_id, lock=True)
    if item is None:
        return None
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise RegisterError([FieldError(k, "is not a field that can be changed") for k in unknown])
    fields = check_fields({**item.fields.as_dict(), **changes})
    reason = check_reason(reason, required=True)
    if fields == item.fields:
        return item, False
    if item.state != "active":
        raise StateError(f"item {item_id} is {item.state}: only an active item can be changed")
    values = {**fields.as_dict(), "locations": _locations_json(fields), "updated_at": now}
    conn.execute(update_statement(item_id).values(values))
    after = get(conn, item_id)
    _record(conn, after, "changed", item, actor, reason, now)
    return after, True


def declassify(conn: Connection, item_id: int, actor: str, reason: str, now: datetime) -> RegisterItem | None:
    """解密: an active item is no longer secret; its row and history stay."""
    return _change_state(conn, item_id, "declassified", ("active",), actor, reason, now)


def destroy(conn: Connection, item_id: int, actor: str, reason: str, now: datetime) -> RegisterItem | None:
    """销毁: the carriers were destroyed; final. Its row and history stay."""
    return _change_state(conn, item_id, "destroyed", ("active", "declassified"), actor, reason, now)


def _change_state(
    conn: Connection, item_id: int, state: str, allowed_from: tuple[str, ...], actor: str, reason: str, now: datetime
) -> RegisterItem | None:
    item = get(conn, item_id, lock=True)
    if item is None:
        return None
    reason = check_reason(reason, required=True)
    if item.state not in allowed_from:
        raise StateError(f"item {item_id} is {item.state}: it cannot be {state}")
    conn.execute(update_statement(item_id).values(state=state, updated_at=now))
    after = get(conn, item_id)
    _record(conn, after, state, item, actor, reason, now)
    return after


def update_statement(item_id: int):
    return sql_update(register_items).where(register_items.c.id == item_id)


def _locations_json(fields: ItemFields) -> str:
    return json.dumps(fields.as_dict()["locations"], ensure_ascii=False, separators=(",", ":"))


def _record(
    conn: Connection,
    item: RegisterItem,
    action: str,
    before: RegisterItem | None,
    actor: str,
    reason: str,
    now: datetime,
) -> None:
    """The history row and the audit row of one change, in the change's transaction."""
    after = _snapshot(item)
    conn.execute(
        insert(register_history).values(
            item_id=item.id, at=now, actor=actor[:255], action=action, reason=reason,
            before=json.dumps(_snapshot(before), ensure_ascii=False) if before else None, after=json.dumps(after, ensure_ascii=False),
        )
    )  # fmt: skip
    changed = sorted(k for k in after if before is None or _snapshot(before)[k] != after[k])
    audit_action = AUDIT_ACTIONS[action]
    audit.record(
        conn,
        now,
        actor,
        audit_action,
        f"register:{item.id}",
        {"name": item.name, "level": item.level, "fields": changed, "reason": reason},
    )
