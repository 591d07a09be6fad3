"""Two collectors over one PostgreSQL: each alert is notified once, and a channel's rate limit holds
across both. Skips with the reason when PostgreSQL is not installed."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.app import create_app
from server.database import make_engine, migrate
from server.notify import outbox
from server.notify.channels import ChannelSpec
from server.schema import alerts
from server.store import Store
from tests.server import postgres
from tests.server.factories import KINGSTON, make_egress
from tests.server.notify_rig import enroll_agent, http_receiver, post_events

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    with postgres.running() as cluster:
        yield cluster


@pytest.fixture
def pg_url(cluster):
    with postgres.fresh_database(cluster) as url:
        yield url


@pytest.fixture
def two_collectors(pg_url, config, clock):
    """Two apps, each with its own engine (its own connections, as two processes have), one database."""
    engines = [make_engine(pg_url) for _ in range(2)]
    migrate(engines[0])
    clients = []

    def start(*channels):
        for engine in engines:
            app = create_app(
                dataclasses.replace(config, database=pg_url, notify=channels, notify_allow_private=True),
                Store(engine, clock=clock),
            )
            app.state.notify_poll_s = 3600.0
            client = TestClient(app)
            client.__enter__()
            clients.append(client)
        return clients

    yield start
    for client in clients:
        client.__exit__(None, None, None)
    for engine in engines:
        engine.dispose()


def _drain_together(clients) -> None:
    """Both senders run rounds at the same time until the outbox has nothing due."""
    start, errors = threading.Barrier(len(clients)), []

    def run(client):
        try:
            start.wait()
            for _ in range(50):
                if not client.app.state.notifier.run_once() and not outbox.outbox_rows(
                    client.app.state.store.engine, status="pending"
                ):
                    return
        except Exception as exc:  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors


def _stick(i: int) -> dict:
    return {**KINGSTON, "serial": f"SERIAL{i:04d}"}


def test_two_collectors_send_each_alert_once(two_collectors):
    with http_receiver() as rig:
        a, b = two_collectors(ChannelSpec(url=rig.url, severities=("critical",), max_per_hour=1000))
        agent = enroll_agent(a)
        # as many sticks as files: an alert each (one user's files to one stick are one incident)
        first = [make_egress("core", sha256=f"{i:064x}", media=_stick(i)) for i in range(30)]
        second = [make_egress("core", sha256=f"{i + 100:064x}", media=_stick(i + 100)) for i in range(30)]
        post_events(a, agent, first)
        post_events(b, agent, second)
        assert post_events(b, agent, first)["duplicates"] == 30  # a retried batch through the other collector
        with a.app.state.store.engine.connect() as conn:
            critical = list(conn.execute(select(alerts.c.id).where(alerts.c.severity == "critical")).scalars())
        assert len(critical) == 61  # 60 classified-egress, 1 bulk-egress
        _drain_together([a, b])
        sent = [h.json()["miwei"]["alert"]["id"] for h in rig.hits]
        assert sorted(sent) == sorted(critical)  # every alert once, none twice
        rows = outbox.outbox_rows(a.app.state.store.engine)
        assert len(rows) == 61 and {r["status"] for r in rows} == {"sent"}


def test_the_rate_limit_holds_across_collectors(two_collectors):
    with http_receiver() as rig:
        a, b = two_collectors(ChannelSpec(url=rig.url, severities=("critical",), max_per_hour=5))
        agent = enroll_agent(a)
        post_events(a, agent, [make_egress("core", sha256=f"{i:064x}", media=_stick(i)) for i in range(12)])
        post_events(b, agent, [make_egress("core", sha256=f"{i + 100:064x}", media=_stick(i + 100)) for i in range(12)])
        _drain_together([a, b])
        messages = [h.json()["miwei"] for h in rig.hits]
        assert len(messages) <= 5
        singles = [m["alert"]["id"] for m in messages if "alert" in m]
        carried = sum(m["digest"]["count"] for m in messages if "digest" in m)
        assert len(singles) + carried == 25 and len(set(singles)) == len(singles)  # 24 files + 1 bulk-egress
