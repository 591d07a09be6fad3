"""Drill-down pages (user, host, device, event): their content, links, escaping of hostile names, access."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from tests.console.conftest import sign_in
from tests.server.factories import KINGSTON, at, make_egress, make_event

# what an agent (or whoever holds its token) may put in a user name: markup, quotes, an RTL override, length
HOSTILE_USER = '<script>alert("u")</script>\'"\u202egpj.exe' + "x" * 200
HOSTILE_LABEL = '<img src=x onerror=alert(1)>"USB'
SHA = "0123456789abcdef" * 4


@pytest.fixture
def seen(admin, send):
    """A hostile user mounts a stick and copies two classified files to it; an ordinary user copies one."""
    media = dict(KINGSTON, label=HOSTILE_LABEL)
    send(make_event("media.mounted", path=None, user=HOSTILE_USER, media=media, egress="removable", ts=at(-120)))
    first = make_egress("core", user=HOSTILE_USER, media=media, sha256=SHA, ts=at(-60))
    send(first, make_egress("core", user=HOSTILE_USER, media=media, path="/media/zhang/KINGSTON/b.dwg", ts=at(-50)))
    send(make_egress("important", user="wang.fang", media=media, path="/media/zhang/KINGSTON/c.dwg", ts=at(-40)))
    return first


def _shown_outside_bdi(html: str) -> str:
    """The page's visible text that is not isolated in <bdi> (attributes and <title> are not laid out)."""
    text = re.sub(r"<bdi>.*?</bdi>|<title>.*?</title>", "", html, flags=re.S)
    return re.sub(r"<[^>]*>", "", text)


def _no_raw(html: str) -> None:
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "\u202e" not in _shown_outside_bdi(html), "an RTL override outside <bdi> reorders the text after it"


def test_user_page_lists_alerts_egress_and_devices_escaped(seen, admin):
    page = admin.get("/console/people/user", params={"name": HOSTILE_USER})
    assert page.status_code == 200, page.text
    html = page.text
    _no_raw(html)
    assert "&lt;script&gt;alert(&#34;u&#34;)&lt;/script&gt;" in html  # the name, as text
    assert f"<bdi>{'&lt;script&gt;'}" in html  # isolated: its RTL mark cannot reorder the page around it
    assert re.search(r'href="/console/alerts/\d+"', html), "its alerts are linked"
    assert 'href="/console/devices/' in html, "the stick it mounted is linked"
    assert "Kingston DataTraveler 3.0" in html
    assert 'href="/console/people/host?name=pc-0042"' in html, "the host it worked on is linked"
    assert "<svg" in html and 'viewBox="0 0' in html
    assert "<title>2026-03-02: 2</title>" in html, "two files went out on that day"


def test_host_page_lists_users(seen, admin):
    html = admin.get("/console/people/host", params={"name": "pc-0042"}).text
    assert "/console/people/user?name=wang.fang" in html
    assert "/console/people/user?name=" + quote(HOSTILE_USER, safe="").replace("%20", "+")[:30] in html.replace(
        "%20", "+"
    )
    assert "<title>2026-03-02: 3</title>" in html
    _no_raw(html)


def test_device_page_users_hosts_alerts_and_events(seen, admin, store):
    devices = admin.get("/console/devices").text
    found = re.search(r'href="/console/devices/(\d+)"', devices)
    assert found, "the device register links each device"
    html = admin.get(f"/console/devices/{found.group(1)}").text
    _no_raw(html)
    assert "&lt;img src=x onerror=alert(1)&gt;&#34;USB" in html
    assert "/console/people/user?name=wang.fang" in html and "/console/people/host?name=pc-0042" in html
    assert len(re.findall(r'href="/console/events/[0-9a-f-]{36}"', html)) == 4  # mount + 3 files
    assert "<title>2026-03-02: 3</title>" in html
    assert admin.get("/console/devices/999999").status_code == 404


def test_device_page_ignores_a_serial_in_a_path(admin, send):
    """An event whose path (not its medium) holds the serial is not the device's."""
    send(make_event("media.mounted", path=None, media=dict(KINGSTON), egress="removable", ts=at(-10)))
    other = dict(KINGSTON, serial="OTHER", vendor_id="abcd")
    send(make_egress("core", path=f"/media/x/{KINGSTON['serial']}.dwg", media=other, ts=at(-5)))
    page = admin.get("/console/devices").text
    device_id = re.search(r'href="/console/devices/(\d+)"', page).group(1)
    html = admin.get(f"/console/devices/{device_id}").text
    assert len(re.findall(r'href="/console/events/[0-9a-f-]{36}"', html)) == 1


def test_event_page_shows_every_field_full_hash_and_alerts(seen, admin):
    html = admin.get(f"/console/events/{seen['id']}").text
    _no_raw(html)
    assert f'<code class="hash-full">{SHA}</code>' in html, "the whole SHA-256"
    assert f'data-copy="{SHA}"' in html, "with a copy button"
    assert "/media/zhang/KINGSTON/pump-impeller.dwg" in html and "/srv/rnd/drawings/pump-impeller.dwg" in html
    assert re.search(r'href="/console/alerts/\d+"', html), "the alert it is evidence of"
    assert 'href="/console/devices/' in html and "/console/people/host?name=pc-0042" in html
    assert "&#34;register_entry&#34;: &#34;Product drawings&#34;" in html, "the raw body, escaped"
    assert "\\u202egpj.exe" in html, "the RTL override shown as what it is in the raw body"

    assert admin.get("/console/events/no-such-event").status_code == 404
    assert admin.get("/console/events/" + "a" * 37).status_code == 404


def test_events_list_opens_the_event(seen, admin):
    html = admin.get("/console/events").text
    assert f'href="/console/events/{seen["id"]}"' in html


def test_alert_page_links_people_and_shows_full_hashes(seen, admin):
    html = admin.get("/console/alerts").text
    assert "/console/people/user?name=" in html
    alert_id = re.search(r'href="/console/alerts/(\d+)"', admin.get(f"/console/events/{seen['id']}").text).group(1)

    page = admin.get(f"/console/alerts/{alert_id}").text
    assert "/console/people/user?name=" in page and "/console/people/host?name=pc-0042" in page
    assert SHA in page and f'href="/console/events/{seen["id"]}"' in page


@pytest.mark.parametrize(
    "path", ["/console/people/user?name=x", "/console/people/host?name=x", "/console/devices/1", "/console/events/x"]
)
def test_pages_need_a_sign_in(client, path):
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login"


def test_analyst_reads_them(seen, analyst):
    assert analyst.get("/console/people/user", params={"name": "wang.fang"}).status_code == 200
    assert analyst.get(f"/console/events/{seen['id']}").status_code == 200


def test_names_are_bounded(admin):
    assert admin.get("/console/people/user", params={"name": "x" * 256}).status_code == 422
    assert admin.get("/console/people/user", params={"name": " "}).status_code == 422


def test_pages_in_chinese(seen, admin):
    admin.cookies.set("mw_lang", "zh")
    html = admin.get("/console/people/user", params={"name": "wang.fang"}).text
    assert "每天外发的文件（最近 30 天）" in html and "使用过的移动设备" in html


def test_event_and_device_pages_in_chinese(seen, admin):
    admin.cookies.set("mw_lang", "zh")
    event = admin.get(f"/console/events/{seen['id']}").text
    assert "代理发送的全部内容" in event
    for english in ("Everything the agent sent", "File leaving", "removable media", "Received", "Copy<"):
        assert english not in event, english
    device_id = re.search(r'href="/console/devices/(\d+)"', event).group(1)
    device = admin.get(f"/console/devices/{device_id}").text
    for english in ("Times mounted", "First seen", "File leaving", "Media mounted", "Files sent out per day"):
        assert english not in device, english


def test_the_evidence_table_does_not_break_words(admin):
    """Paths and labels wrap only where a line would overflow (overflow-wrap), not inside every word
    as word-break: break-all did; a whole hash stays selectable as one."""
    css = admin.get("/console/static/console.css").text
    assert "break-all" not in css
    assert re.search(r"\.path, \.label-text \{ overflow-wrap: anywhere;", css)
    assert "code.hash-full { overflow-wrap: anywhere; user-select: all; }" in css


HOSTILE_HOST = '"><svg onload=alert(1)>\u202e' + "h" * 200


def test_a_hostile_host_name_is_text_everywhere_it_links(admin, enroll, send, clock):
    hostile = enroll(HOSTILE_HOST)
    send(make_egress("core", host=HOSTILE_HOST, ts=at(-30)), as_agent=hostile)
    clock.advance(3600)  # not reporting: listed on the dashboard
    for page in ("/console/", "/console/agents", "/console/events", "/console/alerts"):
        html = admin.get(page).text
        assert "<svg onload" not in html, page
        assert "/console/people/host?name=%22%3E%3Csvg" in html, page
        assert "\u202e" not in _shown_outside_bdi(html), page
    html = admin.get("/console/people/host", params={"name": HOSTILE_HOST}).text
    assert "&#34;&gt;&lt;svg onload=alert(1)&gt;" in html and "<svg onload" not in html
    assert "<title>2026-03-02: 1</title>" in html


def test_a_device_used_on_two_pcs(admin, send, enroll):
    other = enroll("pc-0099")
    send(make_event("media.mounted", path=None, media=dict(KINGSTON), egress="removable", ts=at(-100)))
    send(
        make_event("media.mounted", path=None, host="pc-0099", media=dict(KINGSTON), egress="removable", ts=at(-90)),
        as_agent=other,
    )
    send(make_egress("core", host="pc-0099", user="li.na", ts=at(-80)), as_agent=other)
    device_id = re.search(r'href="/console/devices/(\d+)"', admin.get("/console/devices").text).group(1)
    html = admin.get(f"/console/devices/{device_id}").text
    assert "/console/people/host?name=pc-0099" in html and "/console/people/host?name=pc-0042" in html
    assert "/console/people/user?name=li.na" in html
    assert len(re.findall(r'href="/console/events/[0-9a-f-]{36}"', html)) == 3


def test_person_figures_cover_the_stated_window_and_link_the_whole_history(admin, send, clock):
    """A user's and a host's event figures cover the last 90 days, as the page says (counted over every
    month they took 0.5 s and 1.9 s with 10 million events on PostgreSQL); older events are not counted,
    newer are, and the events list the page links to holds all of them."""
    old_stick = dict(KINGSTON, serial="OLDSTICK0001", label="OLD")
    send(make_event("media.mounted", path=None, user="chen.old", media=old_stick, egress="removable", ts=at(-300)))
    send(
        make_event("file.created", user="chen.old", ts=at(-200)),
        make_event("file.modified", user="chen.old", ts=at(-100)),
    )
    clock.advance(100 * 86400)  # those three are now 100 days old
    assert sign_in(admin, "boss").status_code == 303  # the session ended meanwhile
    recent = 100 * 86400 - 600
    send(
        make_event("file.created", user="chen.old", ts=at(recent)),
        make_egress("core", user="chen.old", ts=at(recent + 60)),
    )
    for kind, name in (("user", "chen.old"), ("host", "pc-0042")):
        html = admin.get(f"/console/people/{kind}", params={"name": name}).text
        assert re.search(r"Events, last 90 days</dt><dd>2</dd>", html), (kind, "the two recent events only")
        assert re.search(r"First seen, last 90 days</dt><dd>2026-06-10 ", html), (kind, "first seen within the window")
        assert "cover the last 90 days; the events list holds the whole history." in html
        assert "OLD" not in html and "Removable devices used, last 90 days" in html, (
            "the old stick is out of the window"
        )
        link = re.search(r'class="all-events" href="(/console/events\?[^"]+)"', html)
        assert link, (kind, "the whole history is linked")
        listed = admin.get(link.group(1).replace("&amp;", "&")).text
        assert len(set(re.findall(r'href="/console/events/([0-9a-f-]{36})"', listed))) == 5, (kind, "all five events")
    admin.cookies.set("mw_lang", "zh")
    html = admin.get("/console/people/host", params={"name": "pc-0042"}).text
    assert "事件（近 90 天）" in html and "全部历史请查看事件列表" in html and "使用过的移动设备（近 90 天）" in html
