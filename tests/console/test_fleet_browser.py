"""The fleet page in a real browser: Debian's chromium driven by playwright against `miwei-server run`;
and what a real `miwei-agent run` reports for it.

The database holds 300 agents (one whose host name is markup, watched folders with markup and
Chinese, two groups, some offline and lagging). The admin signs in (Chinese), filters, ticks all
with the select-all box, opens an agent's watched list and retires two agents with the bulk form.
No dialog may fire and the CSP must block nothing; screenshots are kept under
tests/artifacts/console/ (fleet-zh.png, fleet-zh-filtered.png, fleet-zh-retired.png).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from server.database import make_engine, migrate, writing
from server.schema import agent_groups, agents
from tests.e2e import conftest as e2e_fixtures
from tests.e2e.harness import BIN, free_port, wait_for

classified, deployment = e2e_fixtures.classified, e2e_fixtures.deployment  # the e2e fixtures, shared by name

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
PASSWORD = "fleet-officer-password"
MARKUP_HOST = "<img src=x onerror=alert(1)>"
MARKUP_PATH = '/home/zhang/<script>alert("path")</script>/研发/图纸'

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def server(tmp_path):
    db, port = tmp_path / "miwei.db", free_port()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"server:\n  listen: 127.0.0.1:{port}\n  database: sqlite:///{db}\n  enroll_secret: {uuid.uuid4().hex}\n",
        encoding="utf-8",
    )
    _fill(f"sqlite:///{db}")
    done = subprocess.run([str(BIN / "miwei-server"), "create-user", "officer", "--role", "admin", "--password-stdin", "-c", str(config)],
                          input=PASSWORD + "\n", capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    process = subprocess.Popen(
        [str(BIN / "miwei-server"), "run", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import requests

        wait_for(lambda: _healthy(requests, url), 60, 0.1, "miwei-server healthy")
        yield url, f"sqlite:///{db}"
    finally:
        process.terminate()
        process.wait(20)


def _healthy(requests, url: str) -> bool:
    try:
        return requests.get(url + "/api/v1/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _fill(url: str) -> None:
    engine = make_engine(url)
    migrate(engine)
    now = datetime.now(UTC)
    rows = [{"agent_id": str(uuid.UUID(int=i + 1)), "hostname": MARKUP_HOST if i == 0 else f"pc-{i:04d}", "token_hash": f"{i:064x}",
             "enrolled_at": now - timedelta(days=30), "last_seen": now - timedelta(seconds=5 if i % 7 else 7200),
             "version": "0.2.0" if i % 5 == 0 else "0.3.0", "policy_version": "p-1", "spool_depth": i % 4,
             "status": json.dumps({"watched": [MARKUP_PATH if i == 0 else f"/home/u{i}/研发/图纸", "/srv/sales/报价"]}, ensure_ascii=False),
             "state": "active", "group_id": 2 if i % 2 else None, "os": ("linux", "windows", "macos")[i % 3]} for i in range(300)]  # fmt: skip
    with writing(engine) as conn:
        conn.execute(
            insert(agent_groups).values(id=2, name="研发部", agent_version="0.3.0", created_at=now, updated_at=now)
        )
        conn.execute(insert(agents), rows)
    engine.dispose()


@pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)
def test_an_admin_filters_ticks_and_retires_agents_in_a_browser(server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (the dev extra)")
    url, db = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(locale="zh-CN", viewport={"width": 1500, "height": 1000})
            dialogs, csp, errors = [], [], []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.context.add_cookies([{"name": "mw_lang", "value": "zh", "url": url}])
            page.goto(url + "/console/login")
            page.fill("input[name=name]", "officer")
            page.fill("input[name=password]", PASSWORD)
            page.click("form button[type=submit]")
            page.wait_for_url(url + "/console/")

            page.goto(url + "/console/agents")
            assert page.locator("h1").inner_text() == "终端代理"
            assert "300 个代理" in page.locator("p.count").inner_text()
            assert page.locator("input.pick").count() == 50
            first_row = page.locator("table.list tbody tr").first
            assert MARKUP_HOST in first_row.inner_text()  # sorted first ('<' < 'p'), shown as text
            first_row.locator("summary").click()
            assert MARKUP_PATH in first_row.inner_text()
            page.screenshot(path=str(ARTIFACTS / "fleet-zh.png"), full_page=False)

            page.select_option("select[name=state]", "offline")
            page.select_option("select[name=group]", "2")
            page.check("input[name=lags]")
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**state=offline**")
            # offline (every 7th), group 研发部 (odd), behind its target 0.3.0 (every 5th): i % 70 == 35
            shown = page.locator("table.list tbody tr td:nth-child(2)").all_inner_texts()
            assert shown == [f"pc-{i:04d}" for i in range(300) if i % 70 == 35]
            page.screenshot(path=str(ARTIFACTS / "fleet-zh-filtered.png"), full_page=True)

            page.check("#select-all")  # console.js ticks every row
            assert page.locator("input.pick:checked").count() == len(shown)
            page.click("button[name=action][value=retire]")
            page.wait_for_selector(".flash")
            assert "所选代理已停用" in page.locator(".flash").inner_text()
            assert "state=offline" in page.url  # back to the filtered page
            page.screenshot(path=str(ARTIFACTS / "fleet-zh-retired.png"), full_page=True)
        finally:
            browser.close()
    assert dialogs == [] and csp == [] and errors == []
    engine = make_engine(db)
    with engine.connect() as conn:
        retired = sorted(conn.execute(select(agents.c.hostname).where(agents.c.state == "retired")).scalars())
    engine.dispose()
    assert retired == [f"pc-{i:04d}" for i in range(300) if i % 70 == 35]


def test_a_running_agent_reports_its_index_size_and_watched_folders(deployment, classified):
    """No browser: `miwei-agent run` heartbeats what the fleet page shows (two classified files)."""
    deployment.start_server()
    deployment.start_agent()
    status = wait_for(
        lambda: (s := deployment.agent_status()).get("indexed_files") == 2 and s,
        60,
        0.2,
        "a heartbeat with indexed_files 2",
    )
    assert str(classified["drawings"]) in status["watched"] and str(deployment.usb) in status["watched"]
