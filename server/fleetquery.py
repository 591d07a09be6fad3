"""The fleet's filters, sort and order as `GET /api/v1/agents` and the console's fleet page take
them: one FastAPI dependency, so the two cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Query

from server import fleetlist


@dataclass(frozen=True)
class FleetQuery:
    given: dict[str, str]  # the filters as sent, empty ones left out (the page's links keep them)
    filter: fleetlist.FleetFilter
    sort: str
    order: str  # asc | desc

    @property
    def descending(self) -> bool:
        return self.order == "desc"


def fleet_query(
    host: str | None = None,
    user: str | None = None,
    version: str | None = None,
    policy_version: str | None = None,
    state: str | None = None,
    seen_after: str | None = None,
    seen_before: str | None = None,
    lags: str | None = None,
    group: str | None = None,
    os: str | None = None,
    sort: str = Query("host", pattern="^(" + "|".join(fleetlist.SORTS) + ")$"),
    order: str = Query("asc", pattern="^(asc|desc)$"),
) -> FleetQuery:
    given = {"host": host, "user": user, "version": version, "policy_version": policy_version, "state": state,
             "seen_after": seen_after, "seen_before": seen_before, "lags": lags, "group": group, "os": os}  # fmt: skip
    try:
        parsed = fleetlist.parse_filter(**given)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return FleetQuery({k: v for k, v in given.items() if v}, parsed, sort, order)
