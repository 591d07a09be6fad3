"""Issue 19 as a person meets it, in Debian's chromium driven by playwright, in both languages: a
real agent sees a USB session of 15 classified files on a loop-mounted stick; the officer finds
ONE incident in the default list, assigns it to an analyst, comments and resolves it; the
dashboard and the incident page are screenshotted into tests/artifacts/console/ and checked for
overflow (no element wider than its container, unless its container scrolls) and for strings of
the other language (tests/console/test_one_language.py's checks)."""

from __future__ import annotations

import os
import re
import socket
import subprocess

import pytest
import requests

from tests.console.test_one_language import chinese_in_english, english_in_chinese, foreign
from tests.e2e import conftest as e2e_fixtures
from tests.e2e import mounts
from tests.e2e.conftest import DRAWING
from tests.e2e.harness import BIN, Deployment, wait_for

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
ARTIFACTS = os.path.join(os.path.dirname(__file__), "..", "artifacts", "console")
FILES = 15
classified = e2e_fixtures.classified  # the e2e fixture, shared by name
PASSWORDS = {"officer": "e2e-officer-password", "analyst1": "e2e-analyst-password"}

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (the dev extra)")

# an element wider than its container by more than a pixel, where the container does not scroll
OVERFLOW_JS = """() => {
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const parent = el.parentElement;
    if (!parent || el.getClientRects().length === 0) continue;
    const style = getComputedStyle(parent);
    if (['auto', 'scroll', 'hidden'].includes(style.overflowX)) continue;
    const r = el.getBoundingClientRect(), p = parent.getBoundingClientRect();
    if (r.width > p.width + 1 && r.right > p.right + 1) out.push(el.tagName + '.' + el.className + ' ' + Math.round(r.width) + '>' + Math.round(p.width));
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1) out.push('page wider than the window');
  return out.slice(0, 10);
}"""


@pytest.fixture
def stick(tmp_path):
    kind = next((k for k in ("vfat", "ext4") if mounts.unavailable(k) is None), None)
    if kind is None:
        pytest.skip(f"no loop-mountable file system here: {mounts.unavailable('ext4')}")
    image = tmp_path / "stick.img"
    mounts.make_image(kind, image, label="KINGSTON")
    media = tmp_path / "media"
    media.mkdir()
    yield kind, image, media, media / "KINGSTON"
    mounts.unmount(media / "KINGSTON")


@pytest.fixture
def session_of_15(tmp_path, classified, stick):
    """The collector and a real agent; the officer and an analyst made with the CLI; 15 copies of a
    classified drawing written to the mounted stick, one incident on the collector."""
    kind, image, media, mountpoint = stick
    d = Deployment(tmp_path, [(classified["drawings"], "core", "Product drawings")], mount_roots=[media])
    try:
        d.start_server()
        for name, role in (("officer", "admin"), ("analyst1", "analyst")):
            done = subprocess.run([str(BIN / "miwei-server"), "create-user", name, "--role", role, "--password-stdin",
                                   "-c", str(d.config)], input=PASSWORDS[name] + "\n", capture_output=True, text=True)  # fmt: skip
            assert done.returncode == 0, done.stderr
        d.start_agent()
        mounts.mount(kind, image, mountpoint)
        wait_for(lambda: d.get("/api/v1/events", type="media.mounted")["events"], 15, what="the stick seen")
        for i in range(FILES):
            (mountpoint / f"图纸-{i:02d}.dwg").write_bytes(DRAWING)
        incidents = wait_for(lambda: [a for a in d.alerts(category="classified-egress") if a.get("file_count") == FILES],
                             60, 0.2, "one incident of 15 files")  # fmt: skip
        assert len(d.alerts(category="classified-egress")) == 1, "the session is one alert, not one per file"
        d.incident = incidents[0]
        os.makedirs(ARTIFACTS, exist_ok=True)
        yield d
    finally:
        d.close()


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def _page(browser, url: str, lang: str, user: str = "officer"):
    page = browser.new_page(locale="zh-CN" if lang == "zh" else "en-US", viewport={"width": 1366, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.context.add_cookies([{"name": "mw_lang", "value": lang, "url": url}])
    page.goto(url + "/console/")
    page.fill("input[name=name]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("form button[type=submit]")
    page.wait_for_url(url + "/console/")
    page.errors = errors
    return page


def _other_language(page, lang: str, values: tuple[str, ...]) -> list[str]:
    """test_one_language's checks, with this test's own values (names, host, files) taken out."""
    check = english_in_chinese if lang == "zh" else chinese_in_english
    found = []
    for text in foreign(page.content(), lang):
        for value in sorted(values, key=len, reverse=True):
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", " ", text)
        if check(text):
            found.append(text)
    return found


def _checked(page, lang: str, shot: str, values: tuple[str, ...]) -> None:
    """Screenshot, then: nothing overflows its container, no string of the other language."""
    page.screenshot(path=os.path.join(ARTIFACTS, shot), full_page=True)
    assert page.evaluate(OVERFLOW_JS) == [], f"{shot}: elements wider than their containers"
    assert _other_language(page, lang, values) == [], f"{shot}: strings of the other language"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_usb_session_is_one_incident_an_officer_assigns_comments_and_resolves(session_of_15, browser, lang):
    d, incident_id = session_of_15, session_of_15.incident["id"]
    values = (*PASSWORDS, socket.gethostname(), d.incident["user"] or "", "KINGSTON", "Product drawings",
              *(f"图纸-{i:02d}.dwg" for i in range(FILES)))  # fmt: skip
    page = _page(browser, d.url, lang)
    _checked(page, lang, f"{lang}-incident-dashboard.png", values)

    page.click("nav.main a[href='/console/alerts']")
    rows = page.locator("table.list tbody tr")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    copies = [t for t in texts if "图纸-" in t]
    assert len(copies) == 1, f"the 15 copies are one row of the default view, not one a file: {texts}"
    more = "另有 14 个文件" if lang == "zh" else "+14 more"
    assert "图纸-00.dwg" in copies[0] and more in copies[0] and "KINGSTON" in copies[0], copies[0]
    unknown = "允许清单" if lang == "zh" else "allow-list"
    assert len(texts) == 2 and any(unknown in t for t in texts), "and the unknown stick's own alert"
    page.locator(f"table.list a[href='/console/alerts/{incident_id}']").first.click()
    page.wait_for_url(re.compile(rf".*/console/alerts/{incident_id}$"))
    assert page.locator("table", has_text="图纸-14.dwg").count() >= 1, "every file of the session is listed"
    _checked(page, lang, f"{lang}-incident-page.png", values)

    page.select_option("select[name=assignee]", "analyst1")
    page.click("form.assign button[type=submit]")
    page.wait_for_selector(".flash")
    note = "已与员工核实：拷给客户演示，研发部批准。" if lang == "zh" else "Checked with the employee: a customer demo, approved."
    page.fill("#comment", note)
    page.click("button[name=status][value=resolved]")
    page.wait_for_selector(".flash")
    assert page.locator("button[name=status][value=acknowledged]").count() == 0, "a resolved alert offers no acknowledge"
    assert note in page.locator("section", has_text="analyst1").last.inner_text()
    _checked(page, lang, f"{lang}-incident-resolved.png", values + (note,))
    assert page.errors == []

    token = {"Authorization": f"Bearer {d.token}"}
    alert = requests.get(f"{d.url}/api/v1/alerts/{incident_id}", headers=token, timeout=10).json()
    assert (alert["status"], alert["assignee"], alert["file_count"]) == ("resolved", "analyst1", FILES)
    actions = [h["action"] for h in alert["history"]]
    assert "assigned" in actions and any(h["comment"] == note for h in alert["history"])

    page.click("nav.main a[href='/console/alerts']")
    assert page.locator(f"table.list a[href='/console/alerts/{incident_id}']").count() == 0, "resolved: out of the default view"
