"""The storage contract, run against every backend: SQLite, and PostgreSQL when it is installed.

Several collectors may share one database, so what matters most is that decisions are taken once:
two stores on one database (two collectors) ingesting one burst at the same time raise one
bulk-egress alert, and checking one silent agent at the same time raise one agent-offline alert.
"""

from __future__ import annotations

import random
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, inspect, text

from rules.worktime import WorkTime
from server.database import head_revision, make_engine, migrate
from server.incidents import files_page
from server.models import EventIn
from server.store import Store
from server.watchlists import Member
from tests.server import postgres
from tests.server.factories import FakeClock, at, make_egress, make_event

TABLES = {"policies", "watchlists", "watchlist_members", "rule_hits", "correlation_state", "agent_silences", "events", "alerts"}


@pytest.fixture(scope="session")
def pg_cluster():
    reason = postgres.why_not()
    if reason:
        pytest.skip(reason)
    cluster = postgres.Cluster()
    try:
        cluster.start()
    except RuntimeError:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    """A migrated engine on a fresh database of each backend."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'collector.db'}")
    else:
        cluster = request.getfixturevalue("pg_cluster")
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(cluster.url("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        engine = make_engine(cluster.url(name))
    migrate(engine)
    yield engine
    engine.dispose()
    if request.param == "postgresql":
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def _collectors(engine, clock, n: int = 2) -> list[Store]:
    stores = [Store(engine, clock=clock) for _ in range(n)]
    stores[0].policies.activate_at_startup(WorkTime())
    return stores


def _events(agent_id: str, bodies: list[dict]):
    return [EventIn(**b).to_event(agent_id) for b in bodies]


def _all_at_once(jobs) -> None:
    """Run the jobs on threads released together; re-raise the first failure."""
    start, errors = threading.Barrier(len(jobs)), []

    def run(job):
        try:
            start.wait(10)
            job()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_migration_reaches_head(backend):
    assert migrate(backend) == (head_revision(), head_revision())
    assert TABLES <= set(inspect(backend).get_table_names())


def test_ingest_is_idempotent_and_raises_per_event_alerts(backend):
    (store,) = _collectors(backend, FakeClock(), 1)
    agent_id = store.enroll_agent(str(uuid.uuid4()), "pc-0042", "0.1.0", "mwa_test")
    batch = _events(agent_id, [make_egress("core"), make_event(), make_event("file.deleted")])

    assert store.ingest(batch).accepted == 3
    assert store.ingest(batch).accepted == 0

    (alert,) = store.list_alerts().items
    assert (alert["rule_id"], alert["severity"]) == ("MW-EGRESS-CLASSIFIED", "critical")


@pytest.mark.reliability(area="fault", fault="Two collectors over one database", how="two processes (SQLite) and two engines (SQLite and PostgreSQL) ingesting one burst, checking one silent agent, judging one broken chain, sending notifications", outcome="each alert raised once, each notification sent once, concurrent enrolments with one id get distinct ids")
def test_two_collectors_ingesting_one_burst_at_once_raise_one_bulk_alert(backend):
    one, two = _collectors(backend, FakeClock())
    agent_id = one.enroll_agent(str(uuid.uuid4()), "pc-0042", "0.1.0", "mwa_test")
    events = _events(agent_id, [make_egress("core", ts=at(i * 5), path=f"/media/usb/{i:02d}.dwg") for i in range(25)])
    random.Random(7).shuffle(events)

    _all_at_once([lambda s=s, e=e: s.ingest([e]) for s, e in zip([one, two] * 13, events, strict=False)])

    (bulk,) = one.list_alerts(category="bulk-egress").items
    assert bulk["count"] == 25 and len(bulk["event_ids"]) == 25
    (incident,) = two.list_alerts(category="classified-egress", limit=1000).items  # one incident (issue 19)
    assert (incident["file_count"], incident["count"]) == (25, 25)
    with backend.connect() as conn:
        assert files_page(conn, incident["id"], 1, 100).total == 25
        assert [f["seq"] for f in files_page(conn, incident["id"], 1, 100).files] == list(range(1, 26))


@pytest.mark.reliability(area="fault", fault="Two collectors over one database", how="two processes (SQLite) and two engines (SQLite and PostgreSQL) ingesting one burst, checking one silent agent, judging one broken chain, sending notifications", outcome="each alert raised once, each notification sent once, concurrent enrolments with one id get distinct ids")
def test_two_collectors_checking_one_silent_agent_raise_one_alert(backend):
    clock = FakeClock()
    stores = _collectors(backend, clock, 4)
    stores[0].enroll_agent(str(uuid.uuid4()), "pc-0042", "0.1.0", "mwa_test")
    clock.advance(121)

    _all_at_once([lambda s=s: s.check_absence(120) for s in stores])

    assert len(stores[0].list_alerts(category="agent-offline").items) == 1


def test_policy_and_watchlists_are_shared(backend):
    one, two = _collectors(backend, FakeClock())
    rule = "- id: ACME-X\n  title: x\n  category: classified-egress\n  severity: low\n  when:\n    type: egress.file\n"
    changed = one.policies.propose([("acme.yaml", rule)], WorkTime(), "token:ops")
    assert two.active_policy_version() == changed.version
    assert [h["version"] for h in two.policies.history(10)][0] == changed.version

    one.watchlists.replace("departing", [Member("zhang.wei", "leaving")], "token:ops")
    assert two.watchlists.add("departing", Member("Li.Na"), "token:ops") is True
    assert [m["value"] for m in one.watchlists.members("departing")] == ["Li.Na", "zhang.wei"]
    assert one.watchlists.remove("departing", "li.na") is True
    assert two.watchlists.names()[0]["members"] == 1


def test_bursts_are_kept_apart_by_time(backend):
    clock = FakeClock()
    (store,) = _collectors(backend, clock, 1)
    agent_id = store.enroll_agent(str(uuid.uuid4()), "pc-0042", "0.1.0", "mwa_test")
    first = _events(agent_id, [make_egress("core", ts=at(i), path=f"/m/a{i}") for i in range(20)])
    second = _events(agent_id, [make_egress("core", ts=at(3600 + i), path=f"/m/b{i}") for i in range(20)])
    store.ingest(first)
    clock.advance(timedelta(hours=1).total_seconds())
    store.ingest(second)
    assert [a["count"] for a in store.list_alerts(category="bulk-egress").items] == [20, 20]


@pytest.mark.reliability(area="fault", fault="Two collectors over one database", how="two processes (SQLite) and two engines (SQLite and PostgreSQL) ingesting one burst, checking one silent agent, judging one broken chain, sending notifications", outcome="each alert raised once, each notification sent once, concurrent enrolments with one id get distinct ids")
def test_concurrent_enrolments_with_one_proposed_id_all_succeed_under_distinct_ids(backend):
    """Racing enrolments for one id must not end in an IntegrityError (a 500): one keeps the id."""
    store = Store(backend)
    proposed = str(uuid.uuid4())
    results, errors = [], []

    def enrol(i: int) -> None:
        try:
            results.append(store.enroll_agent(proposed, f"pc-{i}", "0.1.0", f"mwa_token-{i}-{uuid.uuid4()}"))
        except Exception as exc:  # noqa: BLE001 - the test reports whatever went wrong
            errors.append(exc)

    threads = [threading.Thread(target=enrol, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(results) == 6 and len(set(results)) == 6 and results.count(proposed) == 1


def _chain(n: int) -> list[dict]:
    from rules.events import Event, chain_digest

    bodies, prev = [], None
    for seq in range(1, n + 1):
        body = Event.from_dict(make_event(path=f"/srv/rnd/{seq}.dwg", ts=at(seq), seq=seq, prev_hash=prev)).to_dict()
        bodies.append(body)
        prev = chain_digest(body)
    return bodies


def test_device_register_and_allow_list(backend):
    (store,) = _collectors(backend, FakeClock(), 1)
    agent_id = store.enroll_agent(str(uuid.uuid4()), "pc-0042", "0.1.0", "mwa_test")
    media = {"mountpoint": "/media/u/S", "device": "/dev/sdb1", "serial": "ABC1", "vendor_id": "0951", "product_id": "1666"}
    mount = lambda: _events(agent_id, [make_event("media.mounted", media=media, egress="removable")])  # noqa: E731
    store.ingest(mount())
    assert store.devices.allow("0951:16??:abc*", "IT", "", None, "test") is not None
    assert store.devices.allow("0951:16??:ABC*", "IT", "", None, "test") is None  # the same pattern
    store.ingest(mount())
    items, _ = store.devices.list(None, None, None, None, 10, None)
    assert [(d["identity"], d["times_seen"], d["allowed"]) for d in items] == [("0951:1666:abc1", 2, True)]
    assert len(store.list_alerts(category="unknown-device").items) == 1


@pytest.mark.reliability(area="fault", fault="Two collectors over one database", how="two processes (SQLite) and two engines (SQLite and PostgreSQL) ingesting one burst, checking one silent agent, judging one broken chain, sending notifications", outcome="each alert raised once, each notification sent once, concurrent enrolments with one id get distinct ids")
def test_two_collectors_judging_one_broken_chain_raise_each_incident_once(backend):
    stores = _collectors(backend, FakeClock(), 4)
    agent_id = stores[0].enroll_agent(str(uuid.uuid4()), "pc-0042", "0.1.0", "mwa_test")
    events = _events(agent_id, _chain(30))
    del events[10]  # seq 11 never arrives
    random.Random(3).shuffle(events)  # batches in any order, at once, to four collectors
    _all_at_once([lambda s=s, i=i: s.ingest(events[i::4]) for i, s in enumerate(stores)])
    assert stores[0].list_alerts(category="agent-tamper").items == []

    _all_at_once([lambda s=s: s.heartbeat(agent_id, "pc-0042", "0.1.0", None, 0, {}, {"seq": 30, "unsent_from": None}) for s in stores])

    (alert,) = stores[0].list_alerts(category="agent-tamper").items
    assert "events 11..11" in alert["explanation"]
