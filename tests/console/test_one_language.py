"""One language at a time: every console page, in Chinese and in English, holds no text of the other.

The pages are enumerated from the app (every GET route under /console that answers with HTML), so
a page added later is walked too. The database is a realistic one: enrolled agents, events of every
type, alerts of every category, devices, register items, groups, users, tokens and audit rows.

- On a Chinese page, a run of English words that is not a value the test inserted, an identifier
  (a path, a rule id, a field name, a host), a file name or an allowed term (MiWei, USB, SHA-256...)
  is a failure.
- On an English page, any CJK character that is not from a free-text value the test inserted (a
  register item's name, a path, a reason) is a failure.

Run `pytest tests/console/test_one_language.py -s` to see every string found, page by page.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from rules.events import MATCH_METHODS
from rules.fields import known_field_names
from rules.levels import LEVELS
from server.absence import Health
from server.config import ServerConfig
from server.console.labels import CATEGORY
from server.notify.channels import ChannelSpec
from server.schema import alerts, events
from tests.server.factories import AGENT_OFFLINE_S, ENROLL_SECRET, KINGSTON, make_egress, make_event

# Terms a Chinese page may show in Latin letters: the product, standards, formats, units, brands.
ALLOWED_LATIN = {
    "MiWei", "USB", "IM", "API", "CSV", "XLSX", "ZIP", "JSON", "YAML", "SHA", "UTC", "CST", "ID", "URL", "HTTP",
    "HTTPS", "TLS", "IP", "PC", "OK", "Excel", "Windows", "Linux", "macOS", "DingTalk", "WeCom", "Feishu",
    "Webhook", "webhook", "SMTP", "English", "B", "KB", "MB", "GB", "TB", "ms", "s", "min", "h", "d", "GMT",
    "NAS", "PDF", "DLP", "Bearer", "UUID", "linux", "windows", "macos", "POST", "STARTTLS", "SEC", "apprise", "PEM",
}  # fmt: skip
# the rule language's own words, which an explanation quotes in either language: field names and
# the values a condition tests (level core, match.method exact, working_hours false)
RULE_WORDS = {*known_field_names(), *LEVELS, *MATCH_METHODS, "true", "false"}
# an identifier, path, address, hash, time or number: a token with a character plain words lack
IDENTIFIER = re.compile(r"[0-9._/\\:@=#<>*~|\[\]{}$%+-]")
PATH = re.compile(r"^[~.]?[/\\]|^[A-Za-z]:[/\\]")  # a path the agent sent: its names are values
TOKEN_EDGES = "\"'.,:;!?()[]"
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")

# Values the test inserts. Free text: shown as it is in both languages.
HOSTS = ("pc-0042", "pc-0043")
USERS = ("zhang.wei", "li.lei")
REGISTER_NAME = "泵叶轮图纸"
FREE_TEXT = (
    *HOSTS, *USERS, REGISTER_NAME, "研发部", "王工", "研发部设计组", "核心产品", "/home/*/研发/图纸", "研发",
    "研发中心", "值班群", "R&D", "Kingston", "DataTraveler 3.0", "KINGSTON", "WeChat Files", "WeChat", "Chrome", "boss", "li.na", "secops",
    "ok", "done", "Product drawings", "policy file changed", "testclient", "overlaps the classified", "siem", "vfat", "usb", "/srv/外发", "~/同步", "pump-impeller.dwg", "overlaps the classified folder",
    "/srv/rnd", "Chrome/120", "60A44C3FAE22F0B1", "DataTraveler",
)  # fmt: skip
PATH_VALUES = {
    "{alert_id}": "1", "{rule_id}": "MW-EGRESS-CLASSIFIED", "{device_id}": "1", "{view_id}": "1", "{channel_id}": "config:0",
}  # fmt: skip


@pytest.fixture
def config(db_url) -> ServerConfig:
    """The collector's test config with one notification channel (its page is walked too)."""
    channel = ChannelSpec(url="json://127.0.0.1:9/hook", name="值班群")
    return ServerConfig(
        listen=("127.0.0.1", 0), database=db_url, enroll_secret=ENROLL_SECRET, agent_offline_s=AGENT_OFFLINE_S,
        notify=(channel,), notify_allow_private=True,
    )  # fmt: skip


class _Texts(HTMLParser):
    """What a reader sees: text outside script and style, and the attributes read out or shown."""

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "code", "kbd", "samp", "pre"):  # code: commands and identifiers
            self.skip += 1
        names = dict(attrs)
        for key, value in attrs:
            shown = key in ("placeholder", "aria-label", "title", "alt") or (
                key == "value" and tag == "input" and names.get("type") in ("submit", "button")
            )
            if shown and value and value.strip():
                self.texts.append(" ".join(value.split()))

    def handle_endtag(self, tag):
        if tag in ("script", "style", "code", "kbd", "samp", "pre") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip and data.strip():
            self.texts.append(" ".join(data.split()))


def texts_of(html: str) -> list[str]:
    parser = _Texts()
    parser.feed(html)
    return parser.texts


def _without_values(text: str, spaced_only: bool = False) -> str:
    """The text with every inserted value taken out (whole values only: 'ok' leaves 'Webhook')."""
    for value in sorted(FREE_TEXT, key=len, reverse=True):
        if spaced_only and " " not in value:
            continue
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", " ", text)
    return text


def _is_data(text: str) -> bool:
    """Stored details shown as they are (an audit row's JSON): values, not words of the page."""
    if not text.startswith(("{", "[")):
        return False
    try:
        json.loads(text)
    except ValueError:
        return text.endswith("…")  # cut short for the page
    return True


def english_in_chinese(text: str) -> list[str]:
    """The Latin words of a text on a Chinese page that are not values, identifiers or allowed terms."""
    if _is_data(text):
        return []
    tokens = CJK.sub(" ", _without_values(text, spaced_only=True)).split()
    # an identifier, or a value cut short for its column ('Kingston DataTrave…')
    rest = _without_values(
        " ".join(t for t in tokens if not IDENTIFIER.search(t.strip(TOKEN_EDGES)) and not t.endswith("…"))
    )
    allowed = ALLOWED_LATIN | RULE_WORDS
    return [w for w in LATIN_WORD.findall(rest) if w not in allowed and w.strip("'") not in allowed]


def chinese_in_english(text: str) -> list[str]:
    """The CJK characters of a text on an English page that are not from an inserted value."""
    rest = " ".join(t for t in _without_values(text).split() if not PATH.search(t))
    if rest.strip() == "中文":  # the language switch names Chinese in Chinese
        return []
    return CJK.findall(rest)


def foreign(html: str, lang: str) -> list[str]:
    """Every string of the page that holds words of the other language (each once)."""
    check = english_in_chinese if lang == "zh" else chinese_in_english
    return list(dict.fromkeys(t for t in texts_of(html) if check(t)))


def test_the_checks_find_what_they_should():
    assert english_in_chinese("Severity: 高") == ["Severity"]
    assert english_in_chinese("规则 MW-EGRESS-CLASSIFIED 命中：/media/zhang/KINGSTON/a.dwg，用户 zhang.wei") == []
    assert english_in_chinese("SHA-256 与 USB 设备 Kingston DataTraveler 3.0") == []
    assert english_in_chinese("written to removable media") == ["written", "to", "removable", "media"]
    assert chinese_in_english("Register item 泵叶轮图纸") == []
    assert chinese_in_english("Core trade secret 核心商密") == ["核", "心", "商", "密"]
    assert chinese_in_english("中文") == []
    assert chinese_in_english("/home/zhang/同步/a.docx written") == []


# --- the database -------------------------------------------------------------------------------------


def _populate(client, admin, post_form, send, enroll, store, clock, reader) -> dict[str, str]:
    """Agents, events of every type, alerts of every category, devices, register, groups, audit rows."""
    from rules.events import EVENT_TYPES

    other = enroll("pc-0043")
    item = client.post(
        "/api/v1/register",
        json={"name": REGISTER_NAME, "level": "core", "category": "技术信息", "owner_department": "研发部",
              "owner_person": "王工", "scope": "研发部设计组", "period": "长期",
              "locations": [{"os": "linux", "pattern": "/home/*/研发/图纸"}], "reason": "核心产品"},
        headers=reader,
    )  # fmt: skip
    assert item.status_code in (200, 201), item.text
    item_id = str(item.json()["id"])
    media = dict(KINGSTON)
    send(make_event("media.mounted", path=None, media=media))
    send(make_egress("core"))
    send(
        make_egress(
            None,
            path="/media/zhang/KINGSTON/marked.docx",
            detections=[{"detector": "trade_secret_marking", "count": 2}],
        )
    )
    send(
        make_egress(
            None, path="/media/zhang/KINGSTON/staff.xlsx", detections=[{"detector": "cn_resident_id", "count": 12}]
        )
    )
    send(
        make_egress(
            None,
            path="/media/zhang/KINGSTON/secret.7z",
            detections=[{"detector": "encrypted_archive", "count": 1, "sample": "password"}],
        )
    )
    send(make_egress(None, path="/home/zhang/同步/star.docx", media=None, egress="sync", details={"app": "WeChat"},
                     detections=[{"detector": "state_secret_marking", "count": 1}]))  # fmt: skip
    send(*[make_egress("core", path=f"/media/zhang/KINGSTON/bulk-{i}.dwg") for i in range(20)])
    send(make_event("file.modified", level="core", ts="2026-03-01T16:00:00.000Z"))  # midnight in Shanghai
    send(*[make_event("file.deleted", path=f"/srv/rnd/old-{i}.dwg", level="core") for i in range(50)])
    send(
        make_event(
            "classified.read", level="core", details={"app": "Chrome", "process": {"exe": "/opt/google/chrome/chrome"}}
        )
    )
    send(make_event("agent.tamper", path=None, error="policy file changed"))
    send(make_event("agent.clock_skew", path=None, details={"skew_s": 600}))
    send(make_event("agent.error", path="/home/zhang/WeChat Files", details={"app": "WeChat"},
                    error="overlaps the classified folder /srv/rnd"))  # fmt: skip
    for type_ in EVENT_TYPES:
        extra = {"media": media, "path": None} if type_.startswith("media.") else {}
        if type_ == "egress.file":
            extra = {"media": media, "egress": "removable", "size": 1}
        send(make_event(type_, user="li.lei", host="pc-0043", **extra), as_agent=other)
    post_form(admin, "/console/alerts/1", "/console/alerts/1", {"status": "acknowledged", "comment": "ok"})
    post_form(admin, "/console/alerts/2", "/console/alerts/2", {"status": "resolved", "comment": "done"})
    post_form(admin, "/console/groups", "/console/groups",
              [("name", "研发"), ("description", "R&D"), ("item", item_id), ("egress", "/srv/外发 | share | NAS\n~/同步 | sync"),
               ("heartbeat_s", "60"), ("agent_version", "0.2.0"), ("notify_mode", "set"), ("severity", "critical")])  # fmt: skip
    post_form(
        admin,
        "/console/devices",
        "/console/devices/allow",
        {"pattern": "0951:1666:60A44C3FAE22F0B1", "comment": "研发部"},
    )
    beat = client.post("/api/v1/heartbeat", json={"hostname": "pc-0043"}, headers=other.headers)
    assert beat.status_code == 200, beat.text
    clock.advance(AGENT_OFFLINE_S * 2)
    store.check_absence(AGENT_OFFLINE_S, None, Health(AGENT_OFFLINE_S, (3.0, 10.0), 3600.0))
    groups = client.get("/api/v1/groups", headers=reader).json()["groups"]
    agents = client.get("/api/v1/agents", headers=reader).json()["agents"]
    return {
        "{item_id}": item_id,
        "{group_id}": str(groups[0]["id"]) if groups else "1",
        "{agent_id}": agents[0]["agent_id"],
    }


# query parameters a page requires: by page, then by name
QUERY_VALUES = {"/console/people/host": {"name": HOSTS[0]}, "": {"name": USERS[0]}}


def console_pages(app, values: dict[str, str]) -> list[str]:
    """Every GET page of the console, its path parameters and required query parameters filled."""
    pages = []
    for route in iter_route_contexts(app.routes):
        path = route.path
        if "GET" not in (route.methods or ()) or not path.startswith("/console/"):
            continue
        if any(p in path for p in ("/static/", "/lang/", "/export")):  # files, not pages
            continue
        for name, value in values.items():
            path = path.replace(name, value)
        assert "{" not in path, f"add a value for the parameter of {path} to the test's values"
        query = {}
        for param in route.original_route.dependant.query_params:
            if param.field_info.is_required():
                given = QUERY_VALUES.get(route.path, {}).get(param.name) or QUERY_VALUES[""].get(param.name)
                assert given, f"add a value for ?{param.name} of {route.path} to QUERY_VALUES"
                query[param.name] = given
        pages.append(path + ("?" + urlencode(query) if query else ""))
    return pages


@pytest.fixture
def walked(client, admin, post_form, send, enroll, store, clock, reader, engine):
    values = _populate(client, admin, post_form, send, enroll, store, clock, reader)
    with engine.connect() as conn:
        first = dict(conn.execute(select(alerts.c.category, func.min(alerts.c.id)).group_by(alerts.c.category)).all())
        values["{event_id}"] = conn.execute(select(events.c.id).limit(1)).scalar()
    # one alert page of each category: each explanation is built differently
    extra = [f"/console/alerts/{alert_id}" for alert_id in sorted(first.values()) if alert_id != 1]
    # pages that show one thing by a query parameter: a register item with its history, a group's form
    extra += [
        f"/console/register?item={values['{item_id}']}",
        f"/console/groups?group={values['{group_id}']}",
        "/console/alerts?status=all",
    ]
    return admin, console_pages(client.app, {**PATH_VALUES, **values}) + extra, set(first)


def _walk(signed_in, pages: list[str], lang: str) -> dict[str, list[str]]:
    """The foreign strings of each page; a page that does not answer 200 is reported as such."""
    browser = TestClient(signed_in.app, raise_server_exceptions=False)
    browser.cookies = signed_in.cookies
    browser.cookies.set("mw_lang", lang)
    found: dict[str, list[str]] = {}
    for page in pages:
        answer = browser.get(page)
        if answer.status_code == 404 and "/views/" in page:  # no saved view in the test's database
            print(f"not walked (404): {page}")
            continue
        if answer.status_code not in (200, 403, 409):  # a refusal is a page in the viewer's language too
            found[page] = [f"HTTP {answer.status_code}"]
            continue
        if not answer.headers.get("content-type", "").startswith("text/html"):
            continue
        assert ('<html lang="zh-CN">' if lang == "zh" else '<html lang="en">') in answer.text, page
        if bad := foreign(answer.text, lang):
            found[page] = bad
    return found


def _report(found: dict[str, list[str]], lang: str) -> str:
    lines = [f"{sum(map(len, found.values()))} strings of the other language on {len(found)} {lang} pages:"]
    for page, bad in found.items():
        check = english_in_chinese if lang == "zh" else chinese_in_english
        lines += [f"  {page}:"] + [f"    {' '.join(dict.fromkeys(check(t)))[:100]}  <- {t[:100]}" for t in bad]
    return "\n".join(lines)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_console_page_is_in_one_language(walked, client, make_user, lang):
    admin, pages, categories = walked
    # egress detections on one device in one session may be facets of one incident: not each its own alert
    folded = {"marked-egress", "personal-data-egress", "uninspectable-egress", "state-secret-marking"}
    assert categories >= set(CATEGORY) - folded, set(CATEGORY) - categories
    assert len(pages) >= 14, pages
    found = _walk(admin, pages, lang)
    admin.cookies.delete("mw_session")
    found.update(_walk(admin, ["/console/login"], lang))
    print(_report(found, lang))
    assert found == {}, _report(found, lang)


@pytest.mark.parametrize("lang, said", [("zh", ["未找到", "没有这条告警"]), ("en", ["Not found.", "no such alert"])])
def test_a_refusal_is_in_the_viewers_language(admin, lang, said):
    admin.cookies.set("mw_lang", lang)
    answer = admin.get("/console/alerts/999999")
    assert answer.status_code == 404
    assert all(s in answer.text for s in said), answer.text
    assert foreign(answer.text, lang) == []


def test_an_analyst_is_refused_in_chinese(analyst):
    analyst.cookies.set("mw_lang", "zh")
    answer = analyst.get("/console/users")
    assert answer.status_code == 403 and "仅限管理员" in answer.text and foreign(answer.text, "zh") == []
