"""Plain helpers for the collector tests: event bodies as agents send them, a fake clock, paging."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

ENROLL_SECRET = "correct-horse-battery-staple-42"
AGENT_OFFLINE_S = 120.0
T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


class FakeClock:
    """The store's clock: time moves only when a test says so."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Agent:
    agent_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


# the USB stick of the test events (media identity 0951:1666:60a44c3fae22f0b1)
KINGSTON = {
    "mountpoint": "/media/zhang/KINGSTON",
    "device": "/dev/sdb1",
    "fstype": "vfat",
    "label": "KINGSTON",
    "serial": "60A44C3FAE22F0B1",
    "vendor": "Kingston",
    "model": "DataTraveler 3.0",
    "vendor_id": "0951",
    "product_id": "1666",
    "bus": "usb",
    "removable": True,
}


def make_event(type_: str = "file.created", **fields) -> dict:
    """An event body as an agent sends it; fields override the defaults."""
    event = {
        "id": str(uuid.uuid4()),
        "type": type_,
        "ts": "2026-03-02T08:59:00.000Z",
        "host": "pc-0042",
        "user": "zhang.wei",
        "path": "/srv/rnd/drawings/pump-impeller.dwg",
    }
    event.update(fields)
    return event


def make_egress(level: str | None = "core", **fields) -> dict:
    """A complete classified file copied to a USB stick."""
    values = dict(
        path="/media/zhang/KINGSTON/pump-impeller.dwg",
        size=50_027,
        sha256="a" * 64,
        level=level,
        source_path="/srv/rnd/drawings/pump-impeller.dwg",
        register_entry="Product drawings",
        match={"method": "exact", "similarity": 1.0},
        media=dict(KINGSTON),
        egress="removable",
    )
    values.update(fields)
    return make_event("egress.file", **values)


def walk(client: TestClient, path: str, key: str, headers: dict, **params) -> list[list[dict]]:
    """Follow `next` cursors from the first page to the last; return the pages."""
    pages: list[list[dict]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body[key])
        cursor = body.get("next")
        if cursor is None:
            return pages
        assert len(pages) < 1000, "the cursor never ends"


def at(seconds: float) -> str:
    """An event time `seconds` after T0, as agents send it (ISO 8601 UTC)."""
    return (T0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def put_policy(client: TestClient, headers: dict, *files: tuple[str, str]) -> dict:
    """Make the firm's rule files the policy, as a script does; the answer must be a 200."""
    response = client.put("/api/v1/policy", json={"files": [{"name": n, "text": t} for n, t in files]}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def alerts_of(client: TestClient, headers: dict, **params) -> list[dict]:
    """Every alert matching the filters, newest first."""
    return [a for page in walk(client, "/api/v1/alerts", "alerts", headers, limit=1000, **params) for a in page]
