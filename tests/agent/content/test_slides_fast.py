"""A pptx's slides without the per-member machinery (issue 21: some 800 slide members a MB of
text, each paying a handler, a generator, a regex search and an add_all per place): ooxml's
_read_slide (zipread's one_chunk, xmlscan's checked_text, the C scan, Collector.add_placed) gives
what read_member with a _SlideHandler gives: the same parts, budget left, truncation, stop and
refusal, on random slides (placeholders, footers, tables, references, CJK), hostile members (a
DOCTYPE, malformed XML, comments, CDATA, instructions, other encodings, a bad CRC, an encrypted
flag, a member over one chunk, an empty one, a stored one), byte and text budgets, and a clock
running out at each of its checks in turn. checked_text's guard-first order says what the
reference order says on members with instructions, comments and CDATA anywhere; add_placed adds
what add_all per run of one place adds, at the budget and MAX_PARTS edges.

Checked to fail with the fast path broken on purpose: one_chunk not taking the chunk's bytes; the
clock check after the chunk left out; a deadline there raised without the reference's parts;
checked_text's bound case not searching the first tag (a "<?xml-..." instruction holding "<!--");
add_placed keeping the places of blank texts; add_placed never falling back to one by one."""

from __future__ import annotations

import io
import random
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import budget, ooxml, xmlscan
from agent.content.budget import Collector, OutOfBudget, Refused
from agent.content.document import BODY, FOOTER, HEADER
from agent.content.zipread import BoundedZip
from tests.agent.content import makers
from tests.agent.content.test_paragraphs_native import TEXTS, _member, _slide

pytestmark = pytest.mark.skipif(ooxml._native is None, reason="the C extension agent.content._winnow is not built")

HOSTILE = [
    b'<?xml version="1.0"?><!DOCTYPE p:sld [<!ENTITY e "x">]><p:sld xmlns:p="urn:p"><a:t>&e;</a:t></p:sld>',
    b'<p:sld xmlns:p="urn:p" xmlns:a="urn:a"><a:p><a:t>cut</a:t></a:p>',
    b'<p:sld xmlns:p="urn:p" xmlns:a="urn:a"><!-- c --><a:p><a:t>comment</a:t></a:p></p:sld>',
    b'<p:sld xmlns:p="urn:p" xmlns:a="urn:a"><a:p><a:t><![CDATA[a<b]]></a:t></a:p></p:sld>',
    b'<?xml-stylesheet href="x" <!-- ?><p:sld xmlns:p="urn:p" xmlns:a="urn:a"><a:p><a:t>x</a:t></a:p></p:sld>',
    b'<p:sld xmlns:p="urn:p" xmlns:a="urn:a"><?pi x?><a:p><a:t>pi</a:t></a:p></p:sld>',
    '<?xml version="1.0" encoding="GBK"?><p:sld xmlns:p="urn:p" xmlns:a="urn:a"><a:p><a:t>机密</a:t></a:p></p:sld>'.encode("gbk"),
    b'<p:sld xmlns:a="urn:a"><a:p><a:t>unbound p</a:t></a:p></p:sld>',
    b'\xef\xbb\xbf<p:sld xmlns:p="urn:p" xmlns:a="urn:a"><a:p><a:t>bom</a:t></a:p></p:sld>',
    b'<p:sld xmlns:p="urn:p" xmlns:a="urn:a"><a:p><a:t>\xff\xfe</a:t></a:p></p:sld>',
    b"",
    _member("".join(f"<a:p><a:r><a:t>{k} 机密 long</a:t></a:r></a:p>" for k in range(4000)), "p:sld"),
]  # fmt: skip


def _pptx(rng: random.Random) -> bytes:
    """A deck of random slides and notes, some hostile, some stored, one with a bad CRC now and then."""
    buffer = io.BytesIO()
    members = [_member(_slide(rng), "p:sld") for _ in range(rng.randint(1, 6))]
    members += rng.sample(HOSTILE, rng.randint(0, 2))
    rng.shuffle(members)
    bad_crc = rng.randrange(len(members)) if rng.random() < 0.2 else -1
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("[Content_Types].xml", makers.CONTENT_TYPES)
        for k, data in enumerate(members, 1):
            folder, stem = ("notesSlides", "notesSlide") if k % 4 == 0 else ("slides", "slide")
            info = zipfile.ZipInfo(f"ppt/{folder}/{stem}{k}.xml")
            info.compress_type = zipfile.ZIP_STORED if rng.random() < 0.2 else zipfile.ZIP_DEFLATED
            z.writestr(info, data)
            if k - 1 == bad_crc:
                info.CRC ^= 1  # written into the central directory: the member's CRC-32 is wrong
    data = bytearray(buffer.getvalue())
    if rng.random() < 0.1:  # an encrypted flag on a slide's central directory entry
        at = data.find(b"PK\x01\x02ppt/"[:4], data.find(b"PK\x01\x02"))
        data[at + 8] |= 1
    return bytes(data)


class _Clock:
    """Time in clock checks: the deadline passes after the given number of checks."""

    def __init__(self) -> None:
        self.calls = -1

    def __call__(self) -> float:
        self.calls += 1
        return float(self.calls)


def _read(data: bytes, fast: bool, max_bytes: int, checks: float, monkeypatch) -> tuple:
    monkeypatch.setattr(ooxml, "FAST_SLIDES", fast)
    monkeypatch.setattr(ooxml, "FAST_PLACED", fast)
    monkeypatch.setattr(xmlscan, "FAST_GUARD_FIRST", fast)
    out = Collector(max_bytes, checks, _Clock())
    ended = None
    try:
        ooxml.read_pptx(BoundedZip(io.BytesIO(data)), out)
    except (OutOfBudget, Refused, ValueError) as e:  # ValueError: expat on GBK, either way (extract logs it)
        ended = (type(e).__name__, str(e))
    return out.parts, out.chars_left, out.bytes_left, out.truncated, ended


@pytest.mark.parametrize("seed", range(40))
def test_random_decks_read_as_read_member_reads_them(seed, monkeypatch):
    rng = random.Random(f"deck-{seed}")
    for _ in range(6):
        data = _pptx(rng)
        max_bytes = rng.choice([1 << 22, 1 << 22, 300, 3000, 20000])
        assert _read(data, True, max_bytes, 1e9, monkeypatch) == _read(data, False, max_bytes, 1e9, monkeypatch)


@pytest.mark.parametrize("seed", range(8))
def test_a_deadline_at_each_clock_check_stops_where_read_member_stops(seed, monkeypatch):
    rng = random.Random(f"clock-{seed}")
    data = _pptx(rng)
    stops = set()
    for checks in range(0, 40):
        fast = _read(data, True, 1 << 22, checks + 0.5, monkeypatch)
        assert fast == _read(data, False, 1 << 22, checks + 0.5, monkeypatch), checks
        stops.add(fast[4])
    assert ("OutOfBudget", "time") in stops


def test_the_slide_path_reads_ordinary_slides_itself(monkeypatch):
    """Not a test that could pass by leaving every slide to read_member."""
    calls = []
    monkeypatch.setattr(ooxml, "read_member", lambda *a: calls.append(a))
    rng = random.Random(1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for k in range(1, 6):
            z.writestr(f"ppt/slides/slide{k}.xml", _member(_slide(rng), "p:sld"))
    out = Collector(1 << 22, 30.0)
    ooxml.read_pptx(BoundedZip(buffer), out)
    assert [c[1] for c in calls] == ["docProps/core.xml", "docProps/app.xml", "docProps/custom.xml"]


def test_the_slide_names_are_the_handlers():
    handler = ooxml._SlideHandler(Collector(100, 1.0))
    assert ooxml._SLIDE_NAMES == (handler._names() | {"sp", "ph"}, frozenset({"ph"}))


PIECES = ["<?xml version='1.0'?>", '<?xml version="1.0" encoding="utf-8"?>', "<?xml-stylesheet a='b'?>",
          "<?xml-x <!-- ?>", "<?xml-x <![ ?>", "<?xml-x <?y ?>", "<?pi?>", "<!-- c -->", "<![CDATA[x]]>", "\ufeff",
          " ", "\n", "<a:p>", "</a:p>", "<a:t>", "</a:t>", "<a:br/>", "x", "机", "&amp;", "<u:x/>", "<!DOCTYPE r>",
          '<?xml version="1.0" encoding="latin-1"?>', "<a:t a='>'/>"]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(head=st.lists(st.sampled_from(PIECES), max_size=3), body=st.lists(st.sampled_from(PIECES), max_size=8))
def test_checked_text_guard_first_says_what_the_reference_says(head, body):
    data = "".join(head).encode() + _member("".join(body), "p:sld")
    fast = xmlscan.checked_text(data, "m.xml")
    xmlscan.FAST_GUARD_FIRST = False
    try:
        assert fast == xmlscan.checked_text(data, "m.xml")
    finally:
        xmlscan.FAST_GUARD_FIRST = True


def test_checked_text_searches_the_first_instruction():
    data = b'<?xml-x <!-- ?><p:sld xmlns:p="urn:p"/>'
    assert xmlscan.checked_text(data, "m.xml") is None  # the reference: a comment seen, the events read it
    assert xmlscan.checked_text(b'<?xml version="1.0"?><p:sld xmlns:p="urn:p"/>', "m.xml") is not None


PLACES = [BODY, BODY, BODY, FOOTER, HEADER]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    runs=st.lists(st.tuples(st.sampled_from(PLACES), st.sampled_from(TEXTS + ["", "  ", "a", "机密 x"])), max_size=12),
    chars=st.integers(0, 60),
    parts_room=st.integers(0, 12),
)
def test_add_placed_adds_as_add_all_per_place_adds(runs, chars, parts_room, monkeypatch):
    monkeypatch.setattr(budget, "MAX_PARTS", 3 + parts_room)
    places = [place for place, _ in runs]
    texts = [text for _, text in runs]
    results = []
    for fast in (True, False):
        monkeypatch.setattr(ooxml, "FAST_PLACED", fast)
        out = Collector(1000, 30.0)
        out.add("x", "one")
        out.add("x", "two")
        out.chars_left = chars
        try:
            ooxml._add_placed(out, texts, places)
            ended = None
        except OutOfBudget as e:
            ended = str(e)
        results.append((out.parts, out.chars_left, ended))
    assert results[0] == results[1]
