"""An analyst's saved views of the alert list: a name and the list's query string, per console user.

Only the list's filter keys are kept (server/alertquery.py FILTER_KEYS), re-encoded here, so a
saved view can never carry anything else into the page's links. A view is read and deleted by its
owner only: another user's view id answers as if it did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from server.alertquery import FILTER_KEYS
from server.database import writing
from server.schema import saved_views

MAX_NAME_CHARS = 100
MAX_QUERY_CHARS = 4000
MAX_VIEWS_PER_USER = 50


@dataclass(frozen=True)
class SavedView:
    id: int
    name: str
    query: str  # the alert list's query string, filter keys only


class ViewRefused(ValueError):
    """A name or query that cannot be saved, or too many views."""


def clean_query(query: str) -> str:
    """The filter keys of a query string, each once, re-encoded."""
    kept: dict[str, str] = {}
    for key, value in parse_qsl(query[:MAX_QUERY_CHARS], keep_blank_values=False):
        if key in FILTER_KEYS and key not in kept:
            kept[key] = value
    return urlencode(kept)


def list_views(conn: Connection, owner: str) -> list[SavedView]:
    query = (
        select(saved_views.c.id, saved_views.c.name, saved_views.c.query)
        .where(saved_views.c.owner == owner)
        .order_by(saved_views.c.name)
    )
    return [SavedView(r.id, r.name, r.query) for r in conn.execute(query)]


def get_view(conn: Connection, owner: str, view_id: int) -> SavedView | None:
    row = conn.execute(
        select(saved_views.c.id, saved_views.c.name, saved_views.c.query).where(
            saved_views.c.id == view_id, saved_views.c.owner == owner
        )
    ).first()
    return SavedView(row.id, row.name, row.query) if row else None


def save_view(engine: Engine, owner: str, name: str, query: str, now: datetime) -> SavedView:
    """Save (or replace, by name) one of the owner's views."""
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME_CHARS or any(ord(c) < 32 for c in name):
        raise ViewRefused(f"a view's name is 1 to {MAX_NAME_CHARS} characters")
    cleaned = clean_query(query)
    with writing(engine) as conn:
        where = (saved_views.c.owner == owner, saved_views.c.name == name)
        found = conn.execute(select(saved_views.c.id).where(*where)).scalar()
        if found is not None:
            conn.execute(update(saved_views).where(saved_views.c.id == found).values(query=cleaned))
            return SavedView(found, name, cleaned)
        count = len(conn.execute(select(saved_views.c.id).where(saved_views.c.owner == owner)).all())
        if count >= MAX_VIEWS_PER_USER:
            raise ViewRefused(f"at most {MAX_VIEWS_PER_USER} saved views per user")
        new_id = conn.execute(
            insert(saved_views)
            .values(owner=owner, name=name, query=cleaned, created_at=now)
            .returning(saved_views.c.id)
        ).scalar_one()
    return SavedView(new_id, name, cleaned)


def delete_view(engine: Engine, owner: str, view_id: int) -> bool:
    with writing(engine) as conn:
        return (
            conn.execute(delete(saved_views).where(saved_views.c.id == view_id, saved_views.c.owner == owner)).rowcount
            == 1
        )
