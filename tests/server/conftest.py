"""Collector fixtures: a real SQLite file migrated by Alembic, a fake clock, the app under TestClient."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.auth import API_TOKEN_PREFIX, new_token
from server.config import ServerConfig
from server.database import make_engine, migrate
from server.store import Store
from tests.server.factories import AGENT_OFFLINE_S, ENROLL_SECRET, Agent, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'collector.db'}"


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine, clock) -> Store:
    return Store(engine, clock=clock)


@pytest.fixture
def config(db_url, tmp_path) -> ServerConfig:
    return ServerConfig(
        listen=("127.0.0.1", 0), database=db_url, enroll_secret=ENROLL_SECRET, agent_offline_s=AGENT_OFFLINE_S,
        signing_key_file=str(tmp_path / "keys" / "signing-key.pem"),  # also with PostgreSQL: never /var/lib
    )


@pytest.fixture
def client(config, store):
    # Server exceptions are raised into the test: a 5xx is a failure with its traceback.
    with TestClient(create_app(config, store)) as client:
        yield client


@pytest.fixture
def enroll(client) -> Callable[..., Agent]:
    """Enrol an agent through the API, as `miwei-agent` does on first start."""

    def enroll(hostname: str = "pc-0042", agent_id: str | None = None, version: str = "0.1.0") -> Agent:
        agent_id = agent_id or str(uuid.uuid4())
        body = {"enroll_secret": ENROLL_SECRET, "agent_id": agent_id, "hostname": hostname, "version": version}
        response = client.post("/api/v1/enroll", json=body)
        assert response.status_code == 200, response.text
        return Agent(response.json()["agent_id"], response.json()["token"])

    return enroll


@pytest.fixture
def agent(enroll) -> Agent:
    return enroll()


@pytest.fixture
def api_token(store) -> str:
    """An API token made the way `miwei-server create-token` makes one."""
    token = new_token(API_TOKEN_PREFIX)
    store.create_api_token("secops", token)
    return token


@pytest.fixture
def reader(api_token) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token}"}


@pytest.fixture
def send(client, agent) -> Callable[..., dict]:
    """POST a batch with the agent's token; return the answer, which must be a 200."""

    def send(*events: dict, as_agent: Agent | None = None) -> dict:
        response = client.post("/api/v1/events", json={"events": list(events)}, headers=(as_agent or agent).headers)
        assert response.status_code == 200, response.text
        return response.json()

    return send
