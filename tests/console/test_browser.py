"""The console in a real browser: Debian's chromium driven by playwright against `miwei-server run`.

A real agent copies a classified drawing to the demo USB folder, once under its own name and once
under a name holding markup; a second, API-enrolled agent reports a USB stick whose label holds
markup. The officer signs in, finds the alert, opens it, acknowledges it with a comment and
downloads its evidence pack; every page is rendered once in each language with a screenshot kept
under tests/artifacts/console/. No dialog may fire and the CSP must block nothing the console needs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import uuid
import zipfile
from pathlib import Path

import pytest
import requests

from tests.e2e import conftest as e2e_fixtures
from tests.e2e.harness import BIN, wait_for

DRAWING = e2e_fixtures.DRAWING
classified, deployment = e2e_fixtures.classified, e2e_fixtures.deployment  # the e2e fixtures, shared by name

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
MARKUP_NAME = "<img src=x onerror=alert(1)>.docx"
MARKUP_LABEL = '<script>alert("usb")</script><b>KINGSTON</b>'
PASSWORD = "e2e-officer-password"
PAGES = ["", "alerts", "events", "agents", "register", "devices", "rules", "users", "tokens", "channels", "audit"]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (the dev extra)")


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def console(deployment):
    """The collector and a real agent running; a drawing copied out twice; a console admin created with the CLI."""
    deployment.start_server()
    done = subprocess.run(
        [str(BIN / "miwei-server"), "create-user", "officer", "--role", "admin", "--password-stdin", "-c", str(deployment.config)],
        input=PASSWORD + "\n", capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    deployment.start_agent()
    (deployment.usb / "holiday.jpg").write_bytes(DRAWING)
    (deployment.usb / MARKUP_NAME).write_bytes(DRAWING)
    wait_for(lambda: sum(a.get("file_count") or 0 for a in deployment.alerts(category="classified-egress")) >= 2, 60, 0.2,
             "both copies in the classified-egress incident")  # fmt: skip
    _report_markup_stick(deployment)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return deployment


def _report_markup_stick(d) -> None:
    """A second agent, enrolled through the API, reports a USB stick whose label is markup."""
    secret = re.search(r"enroll_secret: (\S+)", d.config.read_text()).group(1)
    body = {"enroll_secret": secret, "agent_id": str(uuid.uuid4()), "hostname": "pc-0077", "version": "e2e"}
    token = requests.post(d.url + "/api/v1/enroll", json=body, timeout=10).json()["token"]
    media = {"mountpoint": "/media/li/STICK", "device": "/dev/sdc1", "fstype": "vfat", "label": MARKUP_LABEL, "serial": "AA<i>01",
             "vendor": "<u>Acme</u>", "model": "Stick", "vendor_id": "abcd", "product_id": "1234", "bus": "usb", "removable": True}  # fmt: skip
    event = {"id": str(uuid.uuid4()), "type": "media.mounted", "ts": "2026-11-26T08:00:00.000Z", "host": "pc-0077", "user": "li.na", "media": media}
    answer = requests.post(d.url + "/api/v1/events", json={"events": [event]}, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200, answer.text


def _watch(page) -> dict[str, list]:
    seen: dict[str, list] = {"dialogs": [], "csp": [], "errors": [], "foreign": []}

    def on_dialog(dialog):
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: seen["csp"].append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", lambda r: seen["foreign"].append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:")) else None)
    return seen


def _sign_in(page, url: str, screenshot: str | None = None) -> None:
    page.goto(url + "/console/")
    if screenshot:
        page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)
    page.fill("input[name=name]", "officer")
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(url + "/console/")


def test_officer_finds_acknowledges_and_exports_an_alert(console, browser, tmp_path):
    page = browser.new_page(locale="en-US", viewport={"width": 1366, "height": 900})
    seen = _watch(page)
    page.context.add_cookies([{"name": "mw_lang", "value": "en", "url": console.url}])
    _sign_in(page, console.url, "en-login.png")
    assert page.locator("h1").inner_text() == "Dashboard"
    assert page.locator("svg.chart").count() >= 2  # the dashboard draws its figures as charts

    page.click("nav.main >> text=Alerts")
    page.select_option("select[name=category]", "classified-egress")
    page.click("form.filters button[type=submit]")
    page.locator("table.list tbody tr a[href^='/console/alerts/']").first.click()
    assert page.locator("h1").inner_text().startswith("Alert ")
    page.screenshot(path=str(ARTIFACTS / "alert-before.png"), full_page=True)

    page.fill("#comment", "Talked to the user: copied for a customer visit, approved by R&D.")
    page.click("button[name=status][value=acknowledged]")
    page.wait_for_selector(".flash")
    assert "Acknowledged" in page.locator("dl.facts").first.inner_text()
    assert "copied for a customer visit" in page.locator("section", has_text="History").inner_text()
    alert_id = int(re.search(r"/console/alerts/(\d+)", page.url).group(1))
    # an acknowledged alert offers a comment, not "Acknowledge" again; the browser asks for the note first
    assert page.locator("button[name=status][value=acknowledged]").inner_text() == "Add comment"
    page.click("button.comment-only")
    assert page.evaluate("document.querySelector('#comment').validity.valueMissing")
    page.fill("#comment", "Approval form filed with the secrecy office.")
    page.click("button.comment-only")
    page.wait_for_selector("section:has-text('History') >> text=Approval form filed")
    assert "Acknowledged" in page.locator("dl.facts").first.inner_text()
    assert requests.get(console.url + f"/api/v1/alerts/{alert_id}", headers={"Authorization": f"Bearer {console.token}"}, timeout=10).json()["status"] == "acknowledged"

    with page.expect_download() as download:
        page.click("text=Download evidence pack (ZIP)")
    path = tmp_path / "evidence.zip"
    download.value.save_as(path)
    with zipfile.ZipFile(path) as pack:
        manifest = json.loads(pack.read("manifest.json"))
        for entry in manifest["files"]:
            assert hashlib.sha256(pack.read(entry["name"])).hexdigest() == entry["sha256"], entry["name"]
        assert json.loads(pack.read("alert.json"))["id"] == alert_id
        events = json.loads(pack.read("events.json"))
        assert events and all(e["type"] == "egress.file" for e in events)
        assert events[0]["sha256"] == hashlib.sha256(DRAWING).hexdigest()

    for lang in ("en", "zh"):
        page.context.add_cookies([{"name": "mw_lang", "value": lang, "url": console.url}])
        for name in PAGES + [f"alerts/{alert_id}"]:
            page.goto(f"{console.url}/console/{name}")
            assert page.locator("h1").count() == 1, name
            page.screenshot(path=str(ARTIFACTS / f"{lang}-{(name or 'dashboard').replace('/', '-')}.png"), full_page=True)
    assert seen == {"dialogs": [], "csp": [], "errors": [], "foreign": []}


def test_markup_in_file_names_and_usb_labels_never_runs(console, browser):
    page = browser.new_page(locale="en-US", viewport={"width": 1366, "height": 900})
    seen = _watch(page)
    page.context.add_cookies([{"name": "mw_lang", "value": "en", "url": console.url}])
    _sign_in(page, console.url)

    page.goto(console.url + "/console/events?path=onerror")
    assert page.get_by_text(MARKUP_NAME, exact=False).first.is_visible()
    page.screenshot(path=str(ARTIFACTS / "xss-events.png"), full_page=True)

    ids = [a["id"] for a in console.alerts(category="classified-egress")]
    markup_alert = next(i for i in ids if any("onerror" in e["path"] for e in console.get(f"/api/v1/alerts/{i}")["events"]))
    page.goto(f"{console.url}/console/alerts/{markup_alert}")
    assert page.locator("td.path", has_text=MARKUP_NAME).first.is_visible()
    assert page.locator("img[src=x]").count() == 0

    page.goto(console.url + "/console/devices")
    assert page.locator(".label-text", has_text=MARKUP_LABEL).first.is_visible()
    assert page.locator("td", has_text="<u>Acme</u>").first.is_visible()
    assert page.locator("b", has_text="KINGSTON").count() == 0 and page.locator("u").count() == 0
    page.screenshot(path=str(ARTIFACTS / "xss-devices.png"), full_page=True)

    page.goto(console.url + "/console/register")
    page.goto(console.url + "/console/")
    assert seen == {"dialogs": [], "csp": [], "errors": [], "foreign": []}
