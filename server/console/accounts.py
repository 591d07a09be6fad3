"""Account changes the store has no function for yet: revoking an API token, removing a console user.

Creating users and tokens goes through the store (create_user, create_api_token), as the CLI does.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine

from server.database import writing
from server.schema import api_tokens, users


def revoke_token(engine: Engine, token_id: int, now: datetime) -> bool:
    """Revoke a token that is not revoked yet; False when there is no such live token."""
    with writing(engine) as conn:
        done = conn.execute(
            update(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None)).values(revoked_at=now)
        )
        return bool(done.rowcount)


class LastAdmin(Exception):
    """Removing this user would leave the console without an admin."""


def remove_user(engine: Engine, user_id: int) -> bool:
    """Remove a user (their sessions go with them); never the last admin."""
    with writing(engine) as conn:
        role = conn.execute(select(users.c.role).where(users.c.id == user_id)).scalar()
        if role is None:
            return False
        if role == "admin" and conn.execute(select(func.count()).select_from(users).where(users.c.role == "admin")).scalar() <= 1:
            raise LastAdmin()
        conn.execute(delete(users).where(users.c.id == user_id))
        return True
