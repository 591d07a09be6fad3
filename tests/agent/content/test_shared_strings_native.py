"""The C scan of an xlsx's shared strings (_winnow.shared_strings, by ooxml.native_strings) gives
exactly what _SharedStrings's events give from expat (the reference: xmlscan off, the switch off):
the same strings, the same characters counted, the same budget stops, on random well-formed
members (rich text runs with their properties, phonetic guides whose text is not the cell's,
prefixes of any namespace and a prefixed root, named and numeric references, raw CR and CRLF,
empty si and t, ">" and quotes in attribute values, elements inside a t, text in a t outside any
si) and on whole workbooks. It answers every such member but one whose text no si's end takes,
and on any other str ends, in one pass, without a crash.

Each test was checked to fail with the C broken on purpose, one break at a time: "&amp;" read as
another character, a phonetic guide's text kept, "\\r\\n" read as two line ends, the budget's ">"
made ">=" or left unchecked until the end, an empty si left out, a prefixed name not read by its
local name, the buffer emptied at an si's start, text left in the buffer answered, an rPh's end
ignored, the strings' characters not counted; and the switch ignored."""

from __future__ import annotations

import io
import random
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent.content import ooxml, xmlscan
from agent.content.budget import Collector, OutOfBudget
from agent.content.extract import extract_file
from tests.agent.content import makers

pytestmark = pytest.mark.skipif(ooxml._native is None, reason="the C extension agent.content._winnow is not built")

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
ROOT_DECLARED = f'xmlns="{MAIN}" xmlns:x="{MAIN}" xmlns:o="urn:other" xmlns:中文="urn:cjk"'
PREFIXES = ["", "", "", "x:", "o:", "中文:"]
TEXTS = ["机密", "a &amp; b", "&lt;x&gt;", "&quot;q&apos;", "&#65;&#x4E2D;&#x1F600;", "&#13;", "&#10;&#9;",
         "line\r\nend", "cr\rx", "\r", "\r\n", "\n\r", " ", "\t", "  \n ", "😀𝒳", "ｶﾅ", "1 > 0", "t/", "]>",
         "&#x10FFFF;", "&#0000065;", "&#x000041;", "", "x"]  # fmt: skip
ATTRIBUTES = ["", ' xml:space="preserve"', " xml:space='preserve'", ' o:a="x>y"', " o:b='say \"hi\" >'",
              ' o:c="it\'s"', ' xmlns:q="urn:q" q:z="1"', " o:d = 'spaced' ", ' o:e="&gt;&amp;"',
              ' o:f="a\r\nb"']  # fmt: skip
XML_CHARS = st.characters(
    codec="utf-8", exclude_categories=("Cs",), exclude_characters="<&\x00\ufffe\uffff" + "".join(map(chr, range(1, 9)))
    + "\x0b\x0c" + "".join(map(chr, range(14, 32)))
)  # fmt: skip


@contextmanager
def _switches(native: bool):
    """The C scan on (and xmlscan's pass, which calls it), or both off: expat's events."""
    saved = ooxml.NATIVE_STRINGS, xmlscan.ENABLED
    ooxml.NATIVE_STRINGS = xmlscan.ENABLED = native
    try:
        yield
    finally:
        ooxml.NATIVE_STRINGS, xmlscan.ENABLED = saved


def _read(data: bytes, chars_left: int, native: bool) -> tuple[list[str], int | None, str | None, str | None]:
    """The member through _SharedStrings as read_xlsx reads it: its strings, the characters it
    counted, whether the budget stopped it, the text left in its buffer (the last two None when
    the budget stopped it: the events' pieces, and so the count where they stop, differ between
    expat and xmlscan)."""
    out = Collector(chars_left, 30.0)
    handler = ooxml._SharedStrings(out)
    ended = None
    with _switches(native):
        try:
            xmlscan.parse_fast([data], handler, "xl/sharedStrings.xml")
        except OutOfBudget as e:
            ended = str(e)
    if ended:
        return handler.strings, None, ended, None
    return handler.strings, handler._chars, ended, "".join(handler._buffer)


class _Counted:
    """The extension, each answer of shared_strings noted (None: the member left to Python)."""

    def __init__(self, native) -> None:
        self.native, self.answers = native, []

    def shared_strings(self, text, chars_left):
        found = self.native.shared_strings(text, chars_left)
        self.answers.append(found)
        return found

    def __getattr__(self, name):
        return getattr(self.native, name)


@contextmanager
def _counted():
    counted, saved = _Counted(ooxml._native), ooxml._native
    ooxml._native = counted
    try:
        yield counted
    finally:
        ooxml._native = saved


@st.composite
def _text(draw) -> str:
    if draw(st.booleans()):
        return draw(st.sampled_from(TEXTS))
    return draw(st.text(XML_CHARS, max_size=6)).replace(">", "&gt;" if draw(st.booleans()) else ">")


@st.composite
def _t(draw, inside: bool = False) -> str:
    """A t, as Excel writes it or with elements and text around them inside (well-formed)."""
    p, attrs = draw(st.sampled_from(PREFIXES)), draw(st.sampled_from(ATTRIBUTES))
    shape = draw(st.sampled_from(["text", "text", "text", "empty", "open-close", "elements"]))
    if shape == "empty":
        return f"<{p}t{attrs}{draw(st.sampled_from(['/', ' /']))}>"
    if shape == "open-close":
        return f"<{p}t{attrs}></{p}t>"
    inner = draw(_text())
    if shape == "elements":  # no raw "\r" beside a tag: xmlscan's events read it otherwise than expat's
        parts = draw(st.lists(st.one_of(_text().filter(lambda t: "\r" not in t), st.sampled_from(["<o:b/>", '<x:u val="1>"/>', "<x:rPr><x:b/></x:rPr>"]),
                                        st.just("NESTED")), max_size=4))  # fmt: skip
        inner = "".join(draw(_rph()) if part == "NESTED" and not inside else part for part in parts)
    return f"<{p}t{attrs}>{inner}</{p}t{draw(st.sampled_from(['', ' ', chr(10)]))}>"


@st.composite
def _rph(draw) -> str:
    """A phonetic guide: its t is furigana, not the cell's text (a run inside it too)."""
    p = draw(st.sampled_from(PREFIXES))
    inner = "".join(draw(st.lists(st.one_of(_t(inside=True), _run(inside=True)), max_size=2)))
    return f'<{p}rPh sb="0" eb="{draw(st.integers(0, 9))}">{inner}</{p}rPh>'


@st.composite
def _run(draw, inside: bool = False) -> str:
    p = draw(st.sampled_from(PREFIXES))
    properties = draw(st.sampled_from(["", f'<{p}rPr><{p}b/><{p}sz val="11"/><{p}rFont val="宋体"/></{p}rPr>',
                                       f"<{p}rPr/>"]))  # fmt: skip
    ts = "".join(draw(st.lists(_t(inside=inside), min_size=1, max_size=2)))
    return f"<{p}r>{properties}{ts}</{p}r>"


@st.composite
def _si(draw) -> str:
    p = draw(st.sampled_from(PREFIXES))
    if draw(st.integers(0, 9)) == 0:
        return f"<{p}si/>"
    children = draw(
        st.lists(
            st.one_of(_t(), _run(), _run(), _rph(), st.just(f'<{p}phoneticPr fontId="1" type="noConversion"/>')),
            max_size=4,
        )
    )
    return f"<{p}si>{''.join(children)}</{p}si>"


@st.composite
def _member(draw) -> bytes:
    items = draw(st.lists(st.one_of(_si(), _si(), _si(), _t()), max_size=8))  # a t outside any si now and then
    root = draw(st.sampled_from(["sst", "sst", "x:sst"]))
    head = draw(st.sampled_from(['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n', ""]))
    tail = draw(st.sampled_from(["", '<extLst><ext uri="{x}"><o:t>not a string</o:t></ext></extLst>']))
    body = ("".join(items) + tail).replace("]]>", "]]&gt;")  # not well-formed in text
    return f'{head}<{root} {ROOT_DECLARED} count="{len(items)}">{body}</{root}>'.encode()


@settings(max_examples=600, deadline=None)
@given(data=_member(), delta=st.sampled_from([None, None, -2, -1, 0, 1]))
def test_random_members_read_as_the_events_read_them(data, delta):
    """The C answer is the events' strings and count; False exactly where the events run out of
    budget (the budget at the count and either side of it); None only where text is left in the
    handler's buffer."""
    strings, chars, _, buffer = _read(data, 1 << 30, False)
    chars_left = 1 << 30 if delta is None else chars + delta
    reference = _read(data, chars_left, False)
    found = ooxml._native.shared_strings(data.decode(), chars_left)
    if reference[2] or (chars_left < 0 and not buffer):  # below zero: False with no text, as sum() > chars_left
        assert found is False
    elif buffer:
        assert found is None
    else:
        assert found == (strings, chars) and reference[:2] == (strings, chars)
    with _counted() as counted:
        native = _read(data, chars_left, True)
    assert counted.answers == [found]
    if found is not None:  # None: the findall or xmlscan's events, not this scan, read it
        assert native == reference


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_member(), max_bytes=st.sampled_from([1 << 20, 1 << 20, 2000, 300]))
def test_workbooks_extract_as_the_events_extract_them(data, max_bytes):
    """A whole file: the strings' part (those no cell shows), cut where the budget ends."""
    with _counted() as counted:
        documents = []
        for native in (True, False):
            with _switches(native):
                documents.append(extract_file(_workbook(data), "book.xlsx", max_bytes))
    if any(answer is None for answer in counted.answers):
        return  # the findall or xmlscan's events read it
    assert documents[0] == documents[1]


def _workbook(shared: bytes, sheet: str = "") -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", makers.CONTENT_TYPES)
        z.writestr("xl/sharedStrings.xml", shared)
        z.writestr("xl/worksheets/sheet1.xml", f"<worksheet {makers.S}><sheetData>{sheet}</sheetData></worksheet>")
    buffer.seek(0)
    return buffer


EXCEL = [  # (si as Excel writes it, the cell's text)
    ("<si><t>机密 plain</t></si>", "机密 plain"),
    ('<si><t xml:space="preserve"> lead and trail </t></si>', " lead and trail "),
    ('<si><r><rPr><b/><sz val="11"/><color theme="1"/><rFont val="宋体"/><family val="3"/><charset val="134"/>'
     '<scheme val="minor"/></rPr><t>核心</t></r><r><rPr><sz val="11"/></rPr><t xml:space="preserve">商业 秘密</t></r></si>',
     "核心商业 秘密"),
    ('<si><t>東京</t><rPh sb="0" eb="2"><t>トウキョウ</t></rPh><phoneticPr fontId="1"/></si>', "東京"),
    ('<si><r><t>機密</t></r><r><t>資料</t></r><rPh sb="0" eb="2"><t>キミツ</t></rPh><rPh sb="2" eb="4"><t>シリョウ</t>'
     '</rPh><phoneticPr fontId="1" type="noConversion"/></si>', "機密資料"),
    ("<si><t/></si>", ""),
    ("<si/>", ""),
    ("<si><t>a&amp;b &#x41;&#66; &#x1F600;</t></si>", "a&b AB 😀"),
    ("<si><t>one\r\ntwo\rthree&#13;&#10;</t></si>", "one\ntwo\nthree\r\n"),
    ("<x:si><x:r><x:t>prefixed</x:t></x:r></x:si>", "prefixed"),
]  # fmt: skip


def test_excel_shaped_strings_are_the_cells_texts():
    text = f"<sst {ROOT_DECLARED}>{''.join(si for si, _ in EXCEL)}</sst>"
    expected = [value for _, value in EXCEL]
    found = ooxml._native.shared_strings(text, 1 << 20)
    assert found == (expected, sum(map(len, expected)))
    assert _read(text.encode(), 1 << 20, False)[:2] == found  # the events agree


def test_the_bench_and_fixture_workbooks_are_read_by_the_scan(tmp_path):
    from bench import corpus

    paths = [makers.xlsx(tmp_path / "f.xlsx")] + list(map(Path, corpus.documents(str(tmp_path), "xlsx", 2, 64 * 1024)))
    shared = f"<sst {ROOT_DECLARED}>{''.join(si for si, _ in EXCEL)}</sst>"
    paths.append(makers.write_zip(tmp_path / "rich.xlsx", {"[Content_Types].xml": makers.CONTENT_TYPES,
                                                            "xl/sharedStrings.xml": shared}))  # fmt: skip
    for max_bytes in (1 << 20, 3_000, 40_000):  # the smaller: the member or the text cut short
        with _counted() as counted:
            for path in paths:
                documents = []
                for native in (True, False):
                    with _switches(native):
                        documents.append(extract_file(io.BytesIO(path.read_bytes()), path.name, max_bytes))
                assert documents[0] == documents[1], path.name
                assert documents[0].parts
        if max_bytes == 1 << 20:
            assert len(counted.answers) == len(paths) and all(counted.answers)  # none left to Python


def test_what_the_scan_leaves_to_python():
    scan = ooxml._native.shared_strings
    leaves = [
        "<sst><!-- c --><si><t>x</t></si></sst>",
        "<sst><?pi x?><si><t>x</t></si></sst>",
        "<sst><si><t>x</t",
        "<sst><si><t a='x>x</t></si></sst>",
        "<sst><si><t>&bogus;</t></si></sst>",
        "<sst><si><t>&#0;</t></si></sst>",
        "<sst><si><t>&#xD800;</t></si></sst>",
        "<sst><si><t>&#x110000;</t></si></sst>",
        "<a:b:si/>",
        "<sst></t></sst>",
        "<sst></rPh></sst>",
        "<sst><si><t>x</t></si><t>left in the buffer</t></sst>",
    ]
    for text in leaves:
        assert scan(text, 1 << 20) is None, text
    assert scan("<sst><t>joins </t><si><t>the next</t></si></sst>", 1 << 20) == (["joins the next"], 14)
    assert scan("<sst><si><rPh><t>ph</t></rPh></si><si><t></t></si></sst>", 1 << 20) == (["", ""], 0)
    # a raw "\r" before another element's tag is a line end of its own, as expat reads it
    text = "<sst xmlns:o='urn:o'><si><t>a\r<o:b/>\nc</t></si></sst>"
    assert scan(text, 1 << 20) == (["a\n\nc"], 4) and _read(text.encode(), 1 << 20, False)[0] == ["a\n\nc"]
    assert scan("<sst><si><t>abc</t></si><si><t>de</t></si></sst>", 4) is False  # past the budget
    assert scan("<sst><si><t>abc</t></si><si><t>de</t></si></sst>", 5) == (["abc", "de"], 5)
    assert scan("<sst><si/></sst>", -1) is False  # no text, a budget below zero: as sum() > chars_left
    assert scan("<sst><si><t>" + "a" * 5000 + "</t></si></sst>", 4999) is False
    assert scan("<sst><si><t>a</t></si></sst>", 1 << 80) == (["a"], 1)  # any int a Collector holds
    assert scan("<sst><si><t>a</t></si></sst>", -(1 << 80)) is False
    with pytest.raises(TypeError):
        scan("<sst/>", 1.5)


HOSTILE = [
    "<t " * 200_000,
    "<" * 200_000,
    "&#" * 200_000,
    "<t>" + "&#" * 200_000,
    "<t>" * 200_000 + "x" * 200_000,
    "<si>" * 200_000 + "</si>" * 200_000,
    "<si/>" * 200_000,
    "<rPh>" * 200_000 + "<t>deep</t>" + "</rPh>" * 200_000,
    "<t a='" + "'" * 200_001 + ">",
    "<si><t>" + "x\r" * 200_000 + "</t></si>",
    "<?xml" + "?" * 200_000,
    "<si><t>" + "😀" * 200_000 + "&#x4E2D;" + "</t></si>",
    "<si><t>" + "中" * 200_000 + "&amp;" * 1000 + "</t></si>",
]


@pytest.mark.timeout(120)
def test_hostile_texts_end_without_harm():
    """Tags and quotes that never end, deep nesting, long runs of references, of every width."""
    for text in HOSTILE:
        for limit in (1 << 30, 10):
            found = ooxml._native.shared_strings(text, limit)
            assert found is None or found is False or sum(map(len, found[0])) == found[1] <= limit


GARBAGE_TOKENS = ["<si>", "</si>", "<si/>", "<t>", "</t>", "<x:t>", "</x:t>", "<rPh>", "</rPh>", "&amp;", "&#x", "中",
                  "😀", "\udc80"]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(
    text=st.lists(
        st.one_of(
            st.sampled_from("<>/&;#x\"'=: \r\n?!tsiPhr"),
            st.characters(),
            st.sampled_from(GARBAGE_TOKENS),
        ),
        max_size=80,
    ).map("".join),
    limit=st.sampled_from([-1, 0, 5, 1 << 30]),
)
@example(text="<si><x:t>a&amp;</x:t></si><t>", limit=5)
def test_garbage_never_harms(text, limit):
    found = ooxml._native.shared_strings(text, limit)
    if isinstance(found, tuple):
        strings, chars = found
        assert sum(map(len, strings)) == chars <= max(limit, 0)
    else:
        assert found is None or found is False


def test_the_switch_leaves_the_member_to_the_python_paths():
    text = "<sst><si><r><t>rich</t></r></si></sst>"
    handler = ooxml._SharedStrings(Collector(1 << 20, 30.0))
    with _switches(False), _counted() as counted:
        assert not handler.scan_whole(text, lambda part: None)  # the findall does not read runs
    assert counted.answers == []
    with _switches(True):
        assert handler.scan_whole(text, lambda part: None) and handler.strings == ["rich"]


@pytest.mark.parametrize("seed", range(4))
def test_random_workbooks_with_sheets_read_the_same(seed, tmp_path):
    """Shared strings used by a sheet's cells and left unused: the rows and the rest as before."""
    rng = random.Random(seed)
    strings = [rng.choice([si for si, _ in EXCEL]) for _ in range(40)]
    rows = "".join(f'<row r="{i + 1}"><c r="A{i + 1}" t="s"><v>{i}</v></c></row>' for i in range(0, 40, 3))
    data = f"<sst {ROOT_DECLARED}>{''.join(strings)}</sst>".encode()
    documents = []
    with _counted() as counted:
        for native in (True, False):
            with _switches(native):
                documents.append(extract_file(_workbook(data, rows), "book.xlsx", 1 << 20))
    assert documents[0] == documents[1]
    assert [p.where for p in documents[0].parts] == ["name", "body", "body"]  # the rows, the strings no cell shows
    assert len(counted.answers) == 1 and counted.answers[0]


@pytest.mark.parametrize(
    "member",
    [
        b"<sst><t>stray </t><si><t>a</t></si></sst>",
        b"<sst><si><t>a</t></si><t>left over</t></sst>",
        b'<sst><si><t>a</t></si><t xml:space="preserve"> stray </t><si><t>b</t></si></sst>',
    ],
)
def test_the_findall_leaves_a_t_outside_an_item_to_the_events(member, monkeypatch):
    """Without the C scan, a <t> outside any <si> (its text joins the next item in the events)
    sends the member to the events: the findall alone read ['a'] for the first member."""
    reference = _read(member, 1 << 20, native=False)
    monkeypatch.setattr(ooxml, "NATIVE_STRINGS", False)
    monkeypatch.setattr(xmlscan, "ENABLED", True)
    out = Collector(1 << 20, 30.0)
    handler = ooxml._SharedStrings(out)
    xmlscan.parse_fast([member], handler, "xl/sharedStrings.xml")
    assert (handler.strings, handler._chars, None, "".join(handler._buffer)) == reference
