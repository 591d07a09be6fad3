"""A throwaway PostgreSQL cluster for the storage contract tests: initdb in a temporary folder, a Unix
socket, no TCP, no fsync. Used when PostgreSQL is installed; the tests skip with the reason when not.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

SERVER_USER = "postgres"  # PostgreSQL refuses to run as root; as root the cluster runs as this user


def bin_dir() -> str | None:
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(os.path.realpath(initdb))
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def why_not() -> str | None:
    """None when a cluster can be started here, else the reason for skipping."""
    if bin_dir() is None:
        return "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql): its backend is not tested"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (the [postgres] extra): the PostgreSQL backend is not tested"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no '{SERVER_USER}' user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root without runuser to start PostgreSQL as another user"
    return None


class Cluster:
    """Lives in its own folder under the system's temporary folder: pytest's is private to its user."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="miwei-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as = ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []

    def start(self) -> None:
        if self._as:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        tools = bin_dir()
        self._run([f"{tools}/initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        options = f"-k {self.root} -p {self.port} -c listen_addresses='' -c fsync=off -c synchronous_commit=off"
        self._run([f"{tools}/pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start"])

    def stop(self) -> None:
        try:
            self._run([f"{bin_dir()}/pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.root}&port={self.port}"

    def _run(self, command: list[str]) -> None:
        done = subprocess.run(self._as + command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running() -> Iterator[Cluster]:
    """A cluster for a test module (`with postgres.running() as cluster: yield cluster` in a
    module-scoped fixture); the test skips with the reason when PostgreSQL is not installed."""
    reason = why_not()
    if reason:
        pytest.skip(reason)
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@contextmanager
def fresh_database(cluster: Cluster) -> Iterator[str]:
    """A new, empty database in the cluster for one test; yields its URL and drops it afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(cluster.url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        yield cluster.url(name)
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    finally:
        admin.dispose()


# A module that runs tests on PostgreSQL imports these: `pytestmark = postgres.MARKS` and
# `from tests.server.postgres import cluster, db_url  # noqa: F401` (one cluster per module, a
# fresh database per test; the module then counts as one unit for the parallel scheduler).
MARKS = [pytest.mark.slow, pytest.mark.skipif(why_not() is not None, reason=str(why_not()))]


@pytest.fixture(scope="module")
def cluster():
    with running() as found:
        yield found


@pytest.fixture
def db_url(cluster):  # noqa: F811 (the fixture above, by name)
    with fresh_database(cluster) as url:
        yield url
