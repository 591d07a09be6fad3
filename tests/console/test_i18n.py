"""Chinese and English: both catalogues complete, no English left on a Chinese page, the language chosen right."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from server.console.i18n import catalogue_path, negotiate
from tests.console.test_pages import PAGES
from tests.server.factories import make_egress, make_event

CONSOLE = os.path.join(os.path.dirname(__file__), "..", "..", "server", "console")
PLACEHOLDER = re.compile(r"%\(\w+\)s")


def _source_msgids() -> set[str]:
    """What the code and templates ask to translate, extracted afresh (as pybabel extract does)."""
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    found = extract_from_dir(CONSOLE, method_map, keywords={"_": None, "N_": None, "gettext": None})
    return {m[2] if isinstance(m[2], str) else m[2][0] for m in found}


def _catalogue(lang: str):
    with open(catalogue_path(lang), "rb") as f:
        return read_po(f, locale=lang)


def test_every_message_has_a_translation_in_both_catalogues():
    wanted = _source_msgids()
    assert len(wanted) > 150
    for lang in ("zh", "en"):
        catalogue = _catalogue(lang)
        messages = {m.id: m for m in catalogue if m.id}
        assert wanted - set(messages) == set(), f"{lang}: not in the catalogue"
        for msgid in wanted:
            message = messages[msgid]
            assert message.string and not message.fuzzy, (lang, msgid)
            assert sorted(PLACEHOLDER.findall(message.string)) == sorted(PLACEHOLDER.findall(msgid)), (lang, msgid)


def test_chinese_catalogue_translates_every_text():
    untranslated = [m.id for m in _catalogue("zh") if m.id and m.string == m.id]
    assert untranslated == []
    assert all(re.search(r"[\u4e00-\u9fff]", m.string) for m in _catalogue("zh") if m.id)


class _Texts(HTMLParser):
    def __init__(self):
        super().__init__()
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.texts += [v.strip() for k, v in attrs if k in ("placeholder", "aria-label", "title", "alt") and v]

    def handle_data(self, data):
        if data.strip():
            self.texts.append(" ".join(data.split()))


@pytest.fixture
def chinese(admin, send, post_form):
    send(make_event("media.mounted", path=None, media=make_egress()["media"]))
    send(make_egress("core"))
    send(make_event("file.modified", level="core"))
    post_form(admin, "/console/alerts/1", "/console/alerts/1", {"status": "acknowledged", "comment": "ok"})
    admin.cookies.set("mw_lang", "zh")
    return admin


@pytest.mark.parametrize("page", PAGES)
def test_no_english_msgid_is_left_on_a_chinese_page(chinese, page):
    if page == "/console/login":
        chinese.cookies.delete("mw_session")
    english = {m.id for m in _catalogue("zh") if m.id}
    answer = chinese.get(page)
    assert answer.status_code == 200
    assert '<html lang="zh-CN">' in answer.text
    parser = _Texts()
    parser.feed(answer.text)
    left = [t for t in parser.texts if t in english or any(len(m) > 12 and m in t for m in english)]
    assert left == []


def test_accept_language_chooses_and_the_cookie_overrides(client, make_user):
    from tests.console.conftest import sign_in

    make_user("boss")
    assert "登录" in client.get("/console/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}).text
    assert "Sign in" in client.get("/console/login", headers={"Accept-Language": "en-US,en;q=0.9"}).text
    answer = client.get("/console/lang/en", params={"next": "/console/alerts"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/alerts"
    assert "mw_lang=en" in answer.headers["set-cookie"]
    sign_in(client, "boss", lang="en")
    assert "Dashboard" in client.get("/console/", headers={"Accept-Language": "zh-CN"}).text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/console/\\\\evil", "/api/v1/alerts"])
def test_language_switch_does_not_redirect_away(client, target):
    answer = client.get("/console/lang/zh", params={"next": target}, follow_redirects=False)
    assert answer.headers["location"] == "/console/"


@pytest.mark.parametrize(
    "cookie, header, lang",
    [
        (None, None, "zh"),
        (None, "zh-CN,zh;q=0.9", "zh"),
        (None, "zh-TW", "zh"),
        (None, "en-US,en;q=0.9,zh;q=0.8", "en"),
        (None, "de-DE,en;q=0.5,zh;q=0.7", "zh"),
        (None, "fr", "zh"),
        (None, "en;q=bogus,zh;q=0.1", "zh"),
        ("en", "zh-CN", "en"),
        ("xx", "en", "en"),
    ],
)
def test_negotiate(cookie, header, lang):
    assert negotiate(cookie, header) == lang
