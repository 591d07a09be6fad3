"""The fleet page and GET /api/v1/agents: filters, states, sorting and paging done in SQL, bulk retire
(admin only, CSRF, audited), what agents send shown as text, and a 5,000-agent fleet."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import event, insert, update

from server.absence import agent_state
from server.schema import agents
from server.times import aware
from tests.console.conftest import FORM, csrf_of
from tests.server.factories import make_event


def add_agent(engine, clock, hostname: str, seen_s_ago: float | None = 5, **columns) -> str:
    """An agents row as enrolment and heartbeats leave it; `seen_s_ago` None: never sent a heartbeat."""
    agent_id = columns.pop("agent_id", str(uuid.uuid4()))
    now = clock()
    row = {"agent_id": agent_id, "hostname": hostname, "token_hash": uuid.uuid4().hex + uuid.uuid4().hex, "enrolled_at": now - timedelta(days=3),
           "last_seen": None if seen_s_ago is None else now - timedelta(seconds=seen_s_ago), "version": "0.3.0", "policy_version": "p1",
           "spool_depth": 0, "status": json.dumps({"watched": ["/srv/rnd/drawings"]}), "state": "active"}  # fmt: skip
    row.update(columns)
    with engine.begin() as conn:
        conn.execute(insert(agents).values(**row))
    return agent_id


def listed(client, reader, **params) -> list[dict]:
    answer = client.get("/api/v1/agents", params={"limit": 1000, **params}, headers=reader)
    assert answer.status_code == 200, answer.text
    return answer.json()["agents"]


def hosts(client, reader, **params) -> list[str]:
    return [a["hostname"] for a in listed(client, reader, **params)]


@pytest.fixture
def fleet(engine, clock, config):
    return add_fleet(engine, clock, config)


def add_fleet(engine, clock, config) -> dict[str, str]:
    """One agent in every state, two versions, two policy versions."""
    ids = {
        "online": add_agent(engine, clock, "pc-online", 5, version="0.3.0"),
        "offline": add_agent(
            engine, clock, "pc-offline", config.agent_offline_s + 60, version="0.2.9", policy_version="p0"
        ),
        "never": add_agent(engine, clock, "pc-never", None, version=None, policy_version=None),
        # a clean stop after its last heartbeat; and one that stopped, then came back
        "stopped": add_agent(engine, clock, "pc-stopped", 600, stopped_at=clock() - timedelta(seconds=598)),
        "back": add_agent(engine, clock, "pc-back", 5, stopped_at=clock() - timedelta(seconds=3600)),
        "stalled": add_agent(engine, clock, "pc-stalled", 5, pipeline_stall_event=str(uuid.uuid4()), version="0.10.0"),
        "pending": add_agent(engine, clock, "pc-pending", 5, state="pending", version="0.1.0"),
        "retired": add_agent(engine, clock, "pc-retired", 9000, state="retired", version="0.0.1"),
    }
    return ids


@pytest.mark.parametrize("state", ["online", "offline", "stopped", "stalled", "pending", "retired"])
def test_the_state_filter_in_sql_agrees_with_the_state_shown(client, reader, fleet, state):
    everyone = listed(client, reader)
    judged = {a["hostname"] for a in everyone if (a["stalled"] if state == "stalled" else a["state"] == state)}
    assert set(hosts(client, reader, state=state)) == judged
    assert judged  # every state has an agent in the fixture


def test_states_are_judged_as_the_absence_check_judges_them(client, reader, fleet, engine, clock, config):
    with engine.connect() as conn:
        rows = {r.hostname: r for r in conn.execute(agents.select())}
    for a in listed(client, reader):
        r = rows[a["hostname"]]
        want = (
            agent_state(aware(r.last_seen), aware(r.stopped_at), clock(), config.agent_offline_s)
            if r.state == "active"
            else r.state
        )
        assert a["state"] == want, a["hostname"]
    assert {a["hostname"]: a["state"] for a in listed(client, reader)}["pc-back"] == "online"


def test_filters_by_host_version_policy_and_last_seen(client, reader, fleet, clock):
    assert hosts(client, reader, host="OFF") == ["pc-offline"]  # part of the name, any case
    assert hosts(client, reader, host="%") == []  # a LIKE wildcard is a character here
    assert hosts(client, reader, host="pc_o") == []
    assert hosts(client, reader, version="0.2.9") == ["pc-offline"]
    assert hosts(client, reader, policy_version="p0") == ["pc-offline"]
    assert "pc-retired" in hosts(client, reader, seen_after=clock().date().isoformat())  # a date is its midnight (UTC)
    after = (clock() - timedelta(seconds=1000)).isoformat()
    assert set(hosts(client, reader, seen_after=after)) == {
        "pc-online",
        "pc-offline",
        "pc-stopped",
        "pc-back",
        "pc-stalled",
        "pc-pending",
    }
    before = (clock() - timedelta(seconds=1000)).isoformat()
    assert set(hosts(client, reader, seen_before=before)) == {"pc-retired", "pc-never"}  # never seen counts as before


def test_filters_by_a_user_named_on_the_agents_events(client, reader, enroll, send, fleet):
    wang, li = enroll("pc-wang"), enroll("pc-li")
    send(make_event(host="pc-wang", user="wang.fang"), make_event(host="pc-wang", user="chen.jie"), as_agent=wang)
    send(make_event(host="pc-li", user="li.lei"), as_agent=li)
    assert hosts(client, reader, user="wang.fang") == ["pc-wang"]
    assert hosts(client, reader, user="wang") == []  # the account exactly
    shown = {a["hostname"]: a["last_user"] for a in listed(client, reader, host="pc-")}
    assert shown["pc-wang"] == "chen.jie" and shown["pc-li"] == "li.lei" and shown["pc-online"] is None


def test_agents_older_than_the_newest_version_are_marked_and_filtered_as_lagging(client, reader, fleet):
    answer = client.get("/api/v1/agents", params={"lags": "1"}, headers=reader).json()
    assert answer["target_version"] == "0.10.0"  # numbers compare as numbers: 0.10.0 > 0.3.0 > 0.2.9
    # retired agents neither set the target nor lag; an agent that never reported a version does not lag
    assert sorted(a["hostname"] for a in answer["agents"]) == [
        "pc-back",
        "pc-offline",
        "pc-online",
        "pc-pending",
        "pc-stopped",
    ]
    assert {a["hostname"]: a["lags"] for a in listed(client, reader)} == {
        "pc-back": True, "pc-never": False, "pc-offline": True, "pc-online": True, "pc-pending": True, "pc-retired": False,
        "pc-stalled": False, "pc-stopped": True,
    }  # fmt: skip


def test_bad_filters_are_refused(client, reader, admin):
    for params in (
        {"state": "asleep"},
        {"seen_after": "yesterday"},
        {"host": "x" * 201},
        {"sort": "token_hash"},
        {"lags": "maybe"},
    ):
        assert client.get("/api/v1/agents", params=params, headers=reader).status_code == 422, params
        assert admin.get("/console/agents", params=params).status_code == 422, params


def test_pages_come_from_sql_with_a_limit_not_the_whole_table(client, reader, engine, clock):
    for i in range(120):
        add_agent(engine, clock, f"pc-{i:04d}", seen_s_ago=i)
    statements = []

    def seen(conn, cursor, statement, params, context, many):
        statements.append((statement, cursor))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        first = client.get("/api/v1/agents", params={"limit": 50}, headers=reader).json()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    selects = [
        s for s, _ in statements if re.search(r"FROM agents\b", s) and "hostname" in s and "count" not in s.lower()
    ]
    assert selects and all("LIMIT" in s for s in selects), selects
    assert first["total"] == 120 and len(first["agents"]) == 50 and first["next"] == "2"
    pages, cursor = [first["agents"]], first["next"]
    while cursor:
        answer = client.get("/api/v1/agents", params={"limit": 50, "cursor": cursor}, headers=reader).json()
        pages.append(answer["agents"])
        cursor = answer.get("next")
    names = [a["hostname"] for page in pages for a in page]
    assert [len(p) for p in pages] == [50, 50, 20] and names == sorted(names) and len(set(names)) == 120
    newest = listed(client, reader, sort="last_seen", order="desc")
    assert [a["hostname"] for a in newest[:2]] == ["pc-0000", "pc-0001"]


def test_the_console_page_pages_and_keeps_its_filters(admin, engine, clock):
    for i in range(60):
        add_agent(engine, clock, f"host-{i:03d}")
    page = admin.get("/console/agents", params={"host": "host-", "sort": "host", "order": "desc"})
    assert page.status_code == 200 and "60 agents" in page.text and "Page 1 of 2" in page.text
    assert page.text.index("host-059") < page.text.index("host-010") and "host-009" not in page.text
    assert 'href="/console/agents?page=2&amp;sort=host&amp;order=desc&amp;host=host-"' in page.text
    second = admin.get("/console/agents", params={"host": "host-", "sort": "host", "order": "desc", "page": 2})
    assert "host-009" in second.text and "host-059" not in second.text


def _bulk(browser, ids: list[str], csrf: str | None, action: str = "retire", **extra):
    body = [("action", action)] + [("id", i) for i in ids] + list(extra.items()) + ([("csrf", csrf)] if csrf else [])
    return browser.post("/console/agents/bulk", content=urlencode(body), headers=FORM, follow_redirects=False)


@pytest.mark.reliability(
    area="access", fault="Retiring agents in bulk from the fleet page", how="POST /console/agents/bulk: without the CSRF token, with a wrong one, as an analyst, as an admin",
    outcome="no or wrong CSRF token and an analyst: 403, every token still works; admin: exactly the ticked agents retired (tokens 401 at once), each audited as agent.retire",
)  # fmt: skip
def test_bulk_retire_is_admin_only_csrf_checked_and_audited(admin, analyst, enroll, client, store):
    a, b, c = enroll("pc-a"), enroll("pc-b"), enroll("pc-c")
    ids = [a.agent_id, b.agent_id]
    admin_csrf = csrf_of(admin.get("/console/agents").text)
    assert _bulk(admin, ids, None).status_code == 403
    assert _bulk(admin, ids, "wrong").status_code == 403
    assert _bulk(analyst, ids, csrf_of(analyst.get("/console/agents").text)).status_code == 403
    assert 'id="bulk"' not in analyst.get("/console/agents").text  # no checkboxes for an analyst
    for agent in (a, b, c):
        assert client.post("/api/v1/heartbeat", json={"hostname": "x"}, headers=agent.headers).status_code == 200

    answer = _bulk(admin, ids, admin_csrf, back="state=online&sort=host&evil=1&host=pc-")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/agents?state=online&sort=host&host=pc-&msg=agents_retired"
    for agent, code in ((a, 401), (b, 401), (c, 200)):
        assert client.post("/api/v1/heartbeat", json={"hostname": "x"}, headers=agent.headers).status_code == code
    retires = [e for e in store.list_audit().items if e["action"] == "agent.retire"]
    assert sorted(e["target"] for e in retires) == sorted(f"agent:{i}" for i in ids)
    assert {e["actor"] for e in retires} == {"console:boss"}
    assert _bulk(admin, [], admin_csrf).headers["location"].endswith("msg=nothing")
    assert _bulk(admin, ids, admin_csrf).headers["location"].endswith("msg=not_found")  # retired already: nothing again
    assert len([e for e in store.list_audit().items if e["action"] == "agent.retire"]) == 2


MARKUP_HOST = '<script>alert("host")</script>'
MARKUP_PATH = "/home/zhang/<img src=x onerror=alert(1)>/图纸"


def test_host_names_and_watched_paths_from_agents_are_shown_as_text(admin, engine, clock, client, reader):
    add_agent(engine, clock, MARKUP_HOST, status=json.dumps({"watched": [MARKUP_PATH, "/srv/rnd"]}))
    page = admin.get("/console/agents").text
    assert MARKUP_HOST not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;host&#34;)&lt;/script&gt;" in page
    assert "/home/zhang/&lt;img src=x onerror=alert(1)&gt;/图纸" in page
    echoed = admin.get("/console/agents", params={"host": '"><script>x</script>'}).text
    assert '"><script>x' not in echoed and "&#34;&gt;&lt;script&gt;x" in echoed
    assert listed(client, reader)[0]["watched"] == [MARKUP_PATH, "/srv/rnd"]


def test_the_page_shows_what_each_agent_watches_and_its_index_size(admin, enroll, client):
    pc = enroll("pc-rnd")
    watched = ["/srv/rnd/drawings", "/media/zhang/KINGSTON"]
    beat = {"hostname": "pc-rnd", "watched": watched, "version": "0.3.0", "indexed_files": 1234}
    assert client.post("/api/v1/heartbeat", json=beat, headers=pc.headers).status_code == 200
    page = admin.get("/console/agents").text
    assert "2 places" in page and "/srv/rnd/drawings" in page and "/media/zhang/KINGSTON" in page
    assert re.search(r'<td class="num">1234</td>', page)
    admin.cookies.set("mw_lang", "zh")
    zh = admin.get("/console/agents").text
    assert "监控位置" in zh and "索引文件数" in zh and "停用所选代理" in zh


def test_a_page_of_a_5000_agent_fleet_renders(admin, engine, clock, client, reader):
    now = clock()
    rows = [{"agent_id": str(uuid.UUID(int=i + 1)), "hostname": f"pc-{i:05d}", "token_hash": f"{i:064x}", "enrolled_at": now,
             "last_seen": now - timedelta(seconds=i), "version": "0.3.0" if i % 10 else "0.2.0", "policy_version": "p1",
             "spool_depth": 0, "status": json.dumps({"watched": [f"/home/u{i}/研发/图纸"]}), "state": "active"} for i in range(5000)]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(agents), rows)
        conn.execute(update(agents).where(agents.c.hostname == "pc-04999").values(hostname="pc-04999-last"))
    page = admin.get("/console/agents")
    assert page.status_code == 200
    assert "5000 agents" in page.text and "Page 1 of 100" in page.text and page.text.count('class="pick"') == 50
    last = admin.get("/console/agents", params={"page": 100})
    assert "pc-04999-last" in last.text and "Page 100 of 100" in last.text
    assert admin.get("/console/agents", params={"lags": "1"}).text.count('class="pick"') == 50
    assert client.get("/api/v1/agents", params={"lags": "1", "limit": 1}, headers=reader).json()["total"] == 500


def test_filters_by_group_and_os_and_lags_behind_the_groups_own_target(client, reader, engine, clock, store):
    plant = store.groups.create({"name": "工厂 plant", "agent_version": "0.2.0"}, "test")["id"]
    office = store.groups.create({"name": "office"}, "test")["id"]  # no target: the newest reported
    add_agent(engine, clock, "plant-old", version="0.1.9", group_id=plant, os="windows")
    add_agent(
        engine, clock, "plant-ok", version="0.2.0", group_id=plant, os="windows"
    )  # older than the newest, but at its target
    add_agent(engine, clock, "office-old", version="0.2.0", group_id=office, os="linux")
    add_agent(engine, clock, "office-new", version="0.3.0", group_id=office, os="macos")
    add_agent(engine, clock, "default-old", version="0.2.9", os=None)  # group_id NULL: the default group
    assert sorted(hosts(client, reader, group=str(plant))) == ["plant-ok", "plant-old"]
    assert hosts(client, reader, group="1") == ["default-old"]
    assert sorted(hosts(client, reader, os="windows")) == ["plant-ok", "plant-old"]
    assert hosts(client, reader, os="unknown") == ["default-old"]
    answer = client.get("/api/v1/agents", params={"lags": "1"}, headers=reader).json()
    assert sorted(a["hostname"] for a in answer["agents"]) == ["default-old", "office-old", "plant-old"]
    assert answer["group_targets"] == {str(plant): "0.2.0"} and answer["target_version"] == "0.3.0"
    shown = {a["hostname"]: (a["group_name"], a["target_version"], a["lags"]) for a in listed(client, reader)}
    assert shown["plant-ok"] == ("工厂 plant", "0.2.0", False) and shown["default-old"] == ("default", "0.3.0", True)
    assert client.get("/api/v1/agents", params={"os": "beos"}, headers=reader).status_code == 422


def test_bulk_move_to_a_group_is_admin_only_sticky_and_audited(admin, analyst, engine, clock, store, client, reader):
    lab = store.groups.create({"name": "lab"}, "test")["id"]
    a, b, c = (add_agent(engine, clock, f"pc-{n}") for n in "abc")
    page = admin.get("/console/agents").text
    assert f'<option value="{lab}">lab</option>' in page
    assert (
        _bulk(
            analyst, [a, b], csrf_of(analyst.get("/console/agents").text), action="move", to_group=str(lab)
        ).status_code
        == 403
    )
    body = [("csrf", csrf_of(page)), ("action", "move"), ("to_group", str(lab)), ("id", a), ("id", b)]
    assert (
        admin.post(
            "/console/agents/bulk", content=urlencode(body[1:]), headers=FORM, follow_redirects=False
        ).status_code
        == 403
    )
    answer = admin.post("/console/agents/bulk", content=urlencode(body), headers=FORM, follow_redirects=False)
    assert answer.headers["location"].endswith("msg=agents_moved")
    assert sorted(hosts(client, reader, group=str(lab))) == ["pc-a", "pc-b"]
    moves = [e for e in store.list_audit().items if e["action"] == "group.move"]
    assert len(moves) == 1 and moves[0]["actor"] == "console:boss"
    body = [("csrf", csrf_of(page)), ("action", "move"), ("to_group", "rules"), ("id", a)]
    answer = admin.post("/console/agents/bulk", content=urlencode(body), headers=FORM, follow_redirects=False)
    assert answer.headers["location"].endswith("msg=agents_released") and hosts(client, reader, group=str(lab)) == [
        "pc-b"
    ]
    body = [("csrf", csrf_of(page)), ("action", "move"), ("to_group", "999"), ("id", c)]
    assert (
        admin.post("/console/agents/bulk", content=urlencode(body), headers=FORM, follow_redirects=False)
        .headers["location"]
        .endswith("msg=not_found")
    )


def test_the_dashboard_counts_the_fleet_in_sql_as_the_page_shows_it(admin, fleet):
    page = admin.get("/console/").text
    # online: pc-online, pc-back, pc-stalled; not reporting: pc-offline, pc-never; stopped cleanly: pc-stopped;
    # pending and retired: neither (the not-reporting ones listed by name, never-seen first)
    assert '<span class="ok">3</span>' in page and '<span class="bad">2</span> not reporting' in page
    assert "1 stopped cleanly, 1 with a stalled pipeline" in page
    assert page.index("/console/people/host?name=pc-never") < page.index("/console/people/host?name=pc-offline")


@pytest.mark.slow
def test_states_lags_and_groups_are_judged_the_same_on_postgresql(clock, config):
    """The stopped grace is date arithmetic, written per dialect: PostgreSQL must agree with SQLite."""
    from server import fleetlist
    from server.database import make_engine, migrate
    from tests.server import postgres

    with postgres.running() as cluster, postgres.fresh_database(cluster) as url:
        engine = make_engine(url)
        try:
            migrate(engine)
            add_fleet(engine, clock, config)
            with engine.connect() as conn:
                everyone = fleetlist.fleet_page(
                    conn, fleetlist.FleetFilter(), clock(), config.agent_offline_s, per_page=100
                ).agents
                for state in fleetlist.STATES:
                    page = fleetlist.fleet_page(
                        conn, fleetlist.FleetFilter(state=state), clock(), config.agent_offline_s, per_page=100
                    )
                    want = {a.hostname for a in everyone if (a.stalled if state == "stalled" else a.state == state)}
                    assert {a.hostname for a in page.agents} == want and want, state
                lagging = fleetlist.fleet_page(
                    conn, fleetlist.FleetFilter(lags=True), clock(), config.agent_offline_s, per_page=100
                )
                assert sorted(a.hostname for a in lagging.agents) == [
                    "pc-back",
                    "pc-offline",
                    "pc-online",
                    "pc-pending",
                    "pc-stopped",
                ]
                assert (
                    fleetlist.fleet_page(conn, fleetlist.FleetFilter(group_id=1), clock(), config.agent_offline_s).total
                    == 8
                )
                assert (
                    fleetlist.fleet_page(conn, fleetlist.FleetFilter(host="%"), clock(), config.agent_offline_s).total
                    == 0
                )
            assert {a.hostname: a.state for a in everyone}["pc-stopped"] == "stopped"
            assert {a.hostname: a.state for a in everyone}["pc-back"] == "online"
        finally:
            engine.dispose()


def test_a_version_that_is_not_a_release_number_neither_sets_the_target_nor_lags(client, reader, engine, clock):
    add_agent(engine, clock, "pc-dev", version="e2e")  # '2' would outrank 0.1.0 if the digits were read as a number
    add_agent(engine, clock, "pc-build", version="dev-4f2a9c")
    add_agent(engine, clock, "pc-old", version="v0.9.9")
    add_agent(engine, clock, "pc-new", version="0.10.0")
    answer = client.get("/api/v1/agents", params={"lags": "1"}, headers=reader).json()
    assert answer["target_version"] == "0.10.0" and [a["hostname"] for a in answer["agents"]] == ["pc-old"]
