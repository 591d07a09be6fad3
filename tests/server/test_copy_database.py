"""`miwei-server copy-database`: a SQLite collector filled through the API is copied into PostgreSQL
and a collector started on the copy serves the same agents, events and alerts, takes the agents'
next chained batches without a finding, and gives new rows fresh ids; a target holding data, a
running collector, a source behind the schema and a failure part-way are refused or rolled back.
Skips with the reason when PostgreSQL is not installed (tests/server/postgres.py)."""

from __future__ import annotations

import fcntl
import os
import socket
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, make_url, select, text

from rules.events import Event, chain_digest
from server import cli, dbcopy, seals
from server.app import create_app
from server.config import ServerConfig
from server.database import make_engine, migrate
from server.firmtime import zone
from server.packcheck import verify_pack
from server.schema import metadata
from server.signing import load_or_create
from server.store import Store
from server.times import aware, utc_now
from tests.console.conftest import CHEAP, PASSWORD, sign_in
from tests.server import postgres
from tests.server.factories import AGENT_OFFLINE_S, ENROLL_SECRET, alerts_of, at, make_egress, walk
from tests.server.postgres import cluster  # noqa: F401 - one cluster for the module
from tests.server.test_chain import beat, chain, tampers

pytestmark = postgres.MARKS
SERVER = str(Path(sys.executable).parent / "miwei-server")
FIRM = zone("Asia/Shanghai")
SECRET = "pg-pass-word-never-shown"


@pytest.fixture
def pg_url(cluster):  # noqa: F811 - the fixture above, by name
    with postgres.fresh_database(cluster) as url:
        yield url


@pytest.fixture
def key(config):
    return load_or_create(config.signing_key_file)


@pytest.fixture
def filled(client, enroll, agent, send, store, clock, key, reader):
    """A collector that has worked a day: two agents' chained events, alerts, a console user and
    session, a sealed day; returns what its API showed and the agents' chain heads."""
    heads = {}
    other = enroll("pc-0043")
    for who, host in ((agent, "pc-0042"), (other, "pc-0043")):
        bodies = chain(5, host=host)
        egress = Event.from_dict(make_egress("core", host=host, ts=at(6), seq=6, prev_hash=chain_digest(bodies[-1]))).to_dict()
        send(*bodies, egress, as_agent=who)
        beat(client, who, 6, unsent_from=7, hostname=host)
        heads[who.agent_id] = (6, chain_digest(egress))
    store.create_user("boss", "admin", CHEAP.hash(PASSWORD))
    assert sign_in(client, "boss").status_code == 303
    _, end = seals.day_bounds(clock().astimezone(FIRM).date(), FIRM)
    clock.now = end + timedelta(seconds=seals.GRACE_S + 1)
    assert seals.seal_pending(store.engine, key, FIRM, clock())[0].agents == 2
    seen = _seen(client, reader)
    client.__exit__(None, None, None)  # the collector stopped, as for a real move (its absence checks write)
    return {"api": seen, "heads": heads, "agents": (agent, other)}


def _seen(client, reader) -> dict:
    """What a reader sees through the API."""
    return {
        "alerts": alerts_of(client, reader),
        "events": [e for page in walk(client, "/api/v1/events", "events", reader, limit=1000) for e in page],
        "agents": [a for page in walk(client, "/api/v1/agents", "agents", reader, limit=1000) for a in page],
    }


def _copy(config, pg_url, **options) -> dbcopy.CopyReport:
    public = load_or_create(config.signing_key_file).private.public_key()
    return dbcopy.copy_database(config.database, pg_url, public_key=public, now=utc_now(), retention_days=1095, **options)


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: conn.execute(select(func.count()).select_from(t)).scalar() for t in metadata.sorted_tables}
    finally:
        engine.dispose()


def _holds_nothing(url: str) -> bool:
    """No MiWei table yet, or only the default group a fresh migration makes."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if conn.exec_driver_sql("SELECT to_regclass('agents')").scalar() is None:
                return True
    finally:
        engine.dispose()
    return {n: c for n, c in _counts(url).items() if c} == {"agent_groups": 1}


@pytest.fixture
def on_copy(config, clock, tmp_path):
    """Start a collector on a database (the PostgreSQL copy) with the same config otherwise."""
    started = []

    def start(url: str) -> tuple[TestClient, Store]:
        engine = make_engine(url)
        migrate(engine)
        store = Store(engine, clock=clock)
        moved = ServerConfig(
            listen=("127.0.0.1", 0), database=url, enroll_secret=ENROLL_SECRET, agent_offline_s=AGENT_OFFLINE_S,
            signing_key_file=config.signing_key_file,
        )
        client = TestClient(create_app(moved, store))
        client.__enter__()
        started.append((client, engine))
        return client, store

    yield start
    for client, engine in started:
        client.__exit__(None, None, None)
        engine.dispose()


def test_a_collector_on_the_copy_serves_the_same_history_and_takes_the_agents_next_batches(filled, config, pg_url, on_copy, reader, store):
    source_counts = _counts(config.database)

    report = _copy(config, pg_url)

    assert {t.name: t.rows for t in report.tables} == source_counts
    assert set(source_counts) == set(metadata.tables) and all(
        source_counts[n] for n in ("agents", "events", "alerts", "users", "console_sessions", "seals", "agent_chains", "api_tokens")
    )
    assert report.seals_checked == 2 and report.seals_failing_in_source == ()
    assert _counts(pg_url) == source_counts
    copy, copied = on_copy(pg_url)
    assert _seen(copy, reader) == filled["api"]  # the API token, the alerts, events and agents as they were
    assert sign_in(copy, "boss").status_code == 303  # the console user and password hash
    with copied.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events_default")).scalar() == 0  # every event in its month
        assert conn.execute(text("SELECT count(*) FROM event_ids")).scalar() == source_counts["events"]
    for alert in filled["api"]["alerts"]:  # the evidence pack, signed by the same key, its events proven in the copied seals
        pack = copy.get(f"/api/v1/alerts/{alert['id']}/evidence.zip", headers=reader)
        verdict = verify_pack(pack.content, load_or_create(config.signing_key_file).public_pem.encode("ascii"))
        assert verdict.ok and verdict.events_sealed == 1 and verdict.key_given, verdict.problems
    highest = {n: _max_id(store.engine, n) for n in ("events", "alerts", "users")}

    for who in filled["agents"]:  # same token, next seqs of the same chain
        seq, head = filled["heads"][who.agent_id]
        host = "pc-0042" if who is filled["agents"][0] else "pc-0043"
        bodies = chain(2, start=seq + 1, prev_hash=head, host=host)
        egress = Event.from_dict(make_egress("core", host=host, ts=at(7200), seq=seq + 3, prev_hash=chain_digest(bodies[-1]))).to_dict()
        answer = copy.post("/api/v1/events", json={"events": [*bodies, egress]}, headers=who.headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 3
        beat(copy, who, seq + 3, unsent_from=seq + 4, hostname=host)
    assert tampers(copy, reader) == []  # no chain finding across the move
    copied.create_user("new.analyst", "analyst", CHEAP.hash(PASSWORD))  # a user id of its own
    new_alerts = [a for a in alerts_of(copy, reader) if a["id"] not in {old["id"] for old in filled["api"]["alerts"]}]
    assert len(new_alerts) == 2 and min(a["id"] for a in new_alerts) == highest["alerts"] + 1
    assert _min_new(copied.engine, "events", "seq", highest["events"]) == highest["events"] + 1
    assert _min_new(copied.engine, "users", "id", highest["users"]) == highest["users"] + 1


def _max_id(engine, table: str) -> int:
    column = "seq" if table == "events" else "id"
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT max({column}) FROM {table}")).scalar()


def _min_new(engine, table: str, column: str, above: int) -> int | None:
    """The lowest id handed out since the copy: every row has it above the copied ones."""
    with engine.connect() as conn:
        low = conn.execute(text(f"SELECT min({column}) FROM {table} WHERE {column} > {above}")).scalar()
        total = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
        distinct = conn.execute(text(f"SELECT count(DISTINCT {column}) FROM {table}")).scalar()
    assert total == distinct, f"{table}.{column} was handed out twice"
    return low


def test_times_keep_their_instant_on_a_server_in_the_firms_local_time(filled, config, pg_url, store):
    """SQLite hands times back without their zone; written so into a server that keeps Beijing
    time they would move by eight hours."""
    engine = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"ALTER DATABASE {make_url(pg_url).database} SET timezone = 'Asia/Shanghai'")
    engine.dispose()

    _copy(config, pg_url)

    alerts = metadata.tables["alerts"]
    query = select(alerts.c.id, alerts.c.created_at).order_by(alerts.c.id)
    with store.engine.connect() as conn:
        before = [(i, aware(t)) for i, t in conn.execute(query)]
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(query)] == before
    engine.dispose()


def test_a_seal_the_source_already_fails_is_reported_not_held_against_the_copy(filled, config, pg_url, store):
    agent = filled["agents"][0]
    events = metadata.tables["events"]
    with store.engine.begin() as conn:  # an event rewritten in the old database after its day was sealed
        row = conn.execute(select(events.c.seq, events.c.body).where(events.c.agent_id == agent.agent_id, events.c.agent_seq == 3)).one()
        conn.execute(events.update().where(events.c.seq == row.seq).values(body=row.body.replace("/srv/rnd/3.dwg", "/srv/rnd/x.dwg")))

    report = _copy(config, pg_url)

    assert report.seals_checked == 2
    assert report.seals_failing_in_source == (f"{agent.agent_id}/2026-03-02",)


def test_a_target_holding_data_is_refused_unless_replaced(filled, config, pg_url, on_copy):
    copy, _ = on_copy(pg_url)  # the old advice: a collector started on the new database, one PC enrolled
    copy.post("/api/v1/enroll", json={"enroll_secret": ENROLL_SECRET, "agent_id": "b" * 8 + "-0000-4000-8000-" + "0" * 12, "hostname": "new-pc", "version": "0.1.0"})
    before = _counts(pg_url)
    assert before["agents"] == 1

    with pytest.raises(dbcopy.CopyRefused, match=r"already holds data \(.*agents.*\).*--replace-target"):
        _copy(config, pg_url)
    assert _counts(pg_url) == before  # untouched

    _copy(config, pg_url, replace_target=True)
    assert _counts(pg_url) == _counts(config.database)  # the source's rows only: nothing mixed


@pytest.mark.reliability(
    area="fault",
    fault="SQLite to PostgreSQL copy fails part-way",
    how="`copy-database` into a PostgreSQL whose trigger raises on seals (events already copied), alters alerts' values or drops audit_log rows",
    outcome="refused with the reason (no row quoted), the target holds nothing (one transaction rolled back), the same command then succeeds",
)
@pytest.mark.parametrize(
    "table, trigger, message",
    [
        ("seals", "RAISE EXCEPTION 'disk full (injected)'", r"copying table seals: RaiseException: disk full \(injected\)"),  # the database fails part-way, events already in
        ("alerts", "NEW.title := 'changed'; RETURN NEW", r"alerts: \d+ rows read from the source, \d+ in the target with different values"),
        ("audit_log", "RETURN NULL", r"audit_log: [1-9]\d* rows read from the source, 0 in the target"),  # rows lost on the way
    ],
)
def test_a_failure_part_way_rolls_the_target_back_and_the_same_command_then_succeeds(filled, config, pg_url, table, trigger, message):
    ordered = [t.name for t in metadata.sorted_tables]
    assert 0 < ordered.index("alerts") < ordered.index("events") < ordered.index("seals") < len(ordered) - 1
    engine = create_engine(pg_url)
    migrate(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE FUNCTION fail_copy() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {trigger}; END $$")
        conn.exec_driver_sql(f"CREATE TRIGGER fail_copy BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION fail_copy()")

    with pytest.raises(dbcopy.CopyFailed, match=message) as failed:
        _copy(config, pg_url)
    assert "\n" not in str(failed.value) and filled["agents"][0].agent_id not in str(failed.value)  # no row quoted (COPY's context)

    assert _holds_nothing(pg_url)  # rolled back: nothing half-copied
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TRIGGER fail_copy ON {table}")
    engine.dispose()
    _copy(config, pg_url)
    assert _counts(pg_url) == _counts(config.database)


def test_a_source_behind_the_schema_or_being_written_is_refused(filled, config, pg_url, store):
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0016'")
    with pytest.raises(dbcopy.CopyRefused, match="at schema revision 0016.*run `miwei-server migrate`"):
        _copy(config, pg_url)
    migrate(store.engine)
    store.engine.dispose()

    path = config.database.removeprefix("sqlite:///") + "-writer"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # a worker of a running collector, mid-transaction
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(dbcopy.CopyRefused, match="a collector is writing the source database: stop it first"):
            _copy(config, pg_url)
    finally:
        os.close(fd)
    assert _holds_nothing(pg_url)


def test_a_source_another_process_is_writing_is_refused(filled, config, pg_url, store):
    store.engine.dispose()
    writer = sqlite3.connect(config.database.removeprefix("sqlite:///"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a collector's write transaction, never ending
    try:
        with pytest.raises(dbcopy.CopyRefused, match="locked by another process: stop the collector first"):
            _copy(config, pg_url, lock_wait_ms=200)
    finally:
        writer.close()
    assert _holds_nothing(pg_url)


def test_a_target_holding_another_applications_tables_is_refused_untouched(filled, config, pg_url):
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE invoices (id int PRIMARY KEY)")

    with pytest.raises(dbcopy.CopyRefused, match=r"holds tables that are not MiWei's \(invoices\)"):
        _copy(config, pg_url)

    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT to_regclass('agents')").scalar() is None  # not migrated into
    engine.dispose()


def _config_file(tmp_path, config, listen: str = "127.0.0.1:1", database: str | None = None) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"server:\n  listen: {listen}\n  database: {database or config.database}\n  enroll_secret: {ENROLL_SECRET}\n"
        f"  signing_key_file: {config.signing_key_file}\n"
    )
    return path


def _run(path: Path, *args: str):
    return subprocess.run([SERVER, "copy-database", "-c", str(path), *args], capture_output=True, text=True, timeout=120)


def test_the_command_prints_a_summary_and_never_the_password(filled, config, pg_url, tmp_path):
    with_password = pg_url.replace("postgres@", f"postgres:{SECRET}@")  # trust auth: the password is not needed, only carried
    path = _config_file(tmp_path, config, database=with_password)  # the new collector's config, the old file named

    done = _run(path, "--from", config.database, "--to", with_password)

    assert done.returncode == 0, done.stderr
    assert "events" in done.stdout and "seals checked: 2, all valid" in done.stdout
    assert f"{'total':<20} {sum(_counts(config.database).values()):>12,} rows in 32 tables; identical to the source" in done.stdout
    again = _run(path, "--from", config.database, "--to", with_password)  # refused: the target holds data now
    assert again.returncode == 2 and "already holds data" in again.stderr
    assert SECRET not in done.stdout + done.stderr + again.stdout + again.stderr
    assert "postgres:***@" in done.stderr


@pytest.mark.parametrize(
    "url, message",
    [
        (f"postgresql+psycopg://miwei:{SECRET}@dbhost:port/miwei", "the target URL cannot be read (ValueError)"),
        (f"postgresql+psycopg2://miwei:{SECRET}@dbhost/miwei", "through psycopg: postgresql+psycopg://"),
        (f"mysql://miwei:{SECRET}@dbhost/miwei", "the target must be a PostgreSQL database through psycopg"),
    ],
)
def test_a_target_url_that_cannot_be_used_is_refused_without_showing_it(config, tmp_path, capsys, url, message):
    assert cli.main(["copy-database", "-c", str(_config_file(tmp_path, config)), "--to", url]) == 2
    shown = capsys.readouterr()
    assert message in shown.err and SECRET not in shown.out + shown.err


def test_the_command_refuses_while_a_collector_answers(filled, config, pg_url, tmp_path):
    with socket.socket() as listening:  # where the config's collector listens
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        path = _config_file(tmp_path, config, listen=f"127.0.0.1:{listening.getsockname()[1]}")
        done = _run(path, "--to", pg_url)
    assert done.returncode == 2 and "a collector answers on 127.0.0.1:" in done.stderr
    assert _holds_nothing(pg_url)
