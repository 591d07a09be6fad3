"""A whole member's paragraphs from its bytes (_winnow.member_paragraphs, by ooxml.member_paragraphs,
and slide_parts's mode 3): one pass of well_bound's check that also reads the bytes as UTF-8 and
plays the paragraph scan's events as the tags go by, only the kept text decoded. On Word's markup
the decode of the whole member (some 7 bytes of it a byte of text) cost as much as the scan.

It must answer only where xmlscan.checked_text gives text by well_bound alone and then answer
exactly what ooxml_paragraphs gives on that text: every UTF-8 sequence of up to four bytes in text
and in attribute values (the strict decoder's rules, U+FFFE and U+FFFF refused), hostile pieces,
edited Word members, random well-formed members in the three modes and at every budget (the C
counts bytes, so near the budget it leaves the member to the text's way). Documents read the same
with it or without (ooxml.FAST_MEMBER_BYTES), and the bench's Word documents are read by it with no
decode of the whole member.

Checked to fail with the C broken on purpose (the change's report says how)."""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path
from xml.parsers import expat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import ooxml, xmlscan
from agent.content.budget import Collector, OutOfBudget, Refused
from agent.content.document import TextPart
from agent.content.extract import extract_file
from agent.content.zipread import BoundedZip
from tests.agent.content import makers
from tests.agent.content.test_paragraphs_native import TEXTS, _child, _member, _ordinary
from tests.agent.content.test_slide_parts import HEADS, PIECES
from tests.agent.content.test_well_bound import EDITS, _word_member

_native = ooxml._native
pytestmark = pytest.mark.skipif(
    getattr(_native, "member_paragraphs", None) is None, reason="the C extension agent.content._winnow is not built"
)

LARGE = 1 << 40


def _text(data: bytes) -> str | None:
    """The text xmlscan.checked_text gives by well_bound alone (its first branch), else None."""
    if not (xmlscan._utf8_declared(data.removeprefix(xmlscan._UTF8_BOM)) and _native.well_bound(data)):
        return None
    return xmlscan._decoded(data, bound=True)


def _ascii_prefixes(data: bytes) -> bytes:
    """test_paragraphs_native's member with its one non-ASCII prefix made ASCII (well_bound reads
    ASCII names only: a member using it goes the text's way)."""
    return (
        data.replace("xmlns:中文=".encode(), b"xmlns:zh=")
        .replace("<中文:".encode(), b"<zh:")
        .replace("</中文:".encode(), b"</zh:")
    )


def _accepts(data: bytes) -> bool:
    for parser in (expat.ParserCreate(), expat.ParserCreate(namespace_separator="}")):
        try:
            parser.Parse(data, True)
        except expat.ExpatError:
            return False
    return True


def _assert_as_the_text(data: bytes, refused: tuple = (), first_table: int = 0, mode: int = 1, limit: int = LARGE):
    """member_paragraphs answers only what the text's way gives, and does answer a member
    well_bound is sure of when the budget is not near."""
    got = _native.member_paragraphs(data, refused, first_table, mode, limit)
    assert got is None or type(got) is tuple  # never False: past the budget the text's way says so
    text = _text(data)
    by_text = _native.ooxml_paragraphs(text, refused, first_table, mode, limit) if text is not None else None
    if got is not None:
        assert text is not None and _accepts(data), data
        assert got == by_text, data
    elif by_text and limit >= len(data):
        raise AssertionError(f"not answered: {data!r}")
    return got


UTF8_FOLLOWERS = [0x41, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF]
WORD = b'<w:document xmlns:w="urn:w"><w:body><w:p><w:r w:rsidR="%s"><w:t>a%sb</w:t></w:r></w:p></w:body></w:document>'


def _sequences():
    """Every lead byte from 0x80 with up to three bytes after it from UTF8_FOLLOWERS (each byte
    where a sequence's bounds lie: 0x80, 0x8F/0x90, 0x9F/0xA0, 0xBF/0xC0, an ASCII byte)."""
    for lead in range(0x80, 0x100):
        yield bytes([lead])
        for second in UTF8_FOLLOWERS:
            yield bytes([lead, second])
            for third in UTF8_FOLLOWERS:
                yield bytes([lead, second, third])
                if lead >= 0xF0:
                    for fourth in UTF8_FOLLOWERS:
                        yield bytes([lead, second, third, fourth])


def _reads(sequence: bytes) -> bool:
    try:
        text = sequence.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return "\ufffe" not in text and "\uffff" not in text


def test_every_utf8_sequence_in_text_and_in_values_as_the_strict_decoder_reads_it():
    answered = 0
    for sequence in _sequences():
        for data in (WORD % (b"00A1", sequence), WORD % (sequence, b"x")):
            got = _assert_as_the_text(data)
            assert (got is not None) == _reads(sequence), data
            answered += got is not None
    assert answered > 1000


def test_each_byte_and_cdata_end_at_each_offset_of_a_long_text_and_value():
    """The check looks 16 bytes at a time for what needs a look in text and values, and reads a run
    of characters from 0x80 in one loop: every byte value, and "]]>", at each place of such a
    block and right after such a run, answered as the text's way answers."""
    for piece in [bytes([value]) for value in range(256)] + [b"]]>", b"]>", b"]]", b"\r\n", b"&amp;", b"\xe4\xb8\xad"]:
        for at in range(0, 40, 3):
            ascii_run = b"x" * at + piece + b"y" * (40 - at)
            cjk_run = (
                "中".encode() * (at // 3) + piece + "文".encode() * 3
            )  # right after and before a character from 0x80
            for run in (ascii_run, cjk_run):
                for data in (WORD % (b"00A1", run), WORD % (run.replace(b'"', b"'"), b"x")):
                    _assert_as_the_text(data)


UTF8_PIECES = [b"\xc0\x80", b"\xc1\xbf", b"\xc2\x80", b"\xdf\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf", b"\xe0\xa0\x80",
               b"\xed\x9f\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xee\x80\x80", b"\xef\xbf\xbd", b"\xef\xbf\xbe",
               b"\xef\xbf\xbf", b"\xf0\x8f\xbf\xbf", b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80",
               b"\xf5\x80\x80\x80", b"\x80", b"\xbf", b"\xc2", b"\xe4\xb8", b"\xf0\x9f\x98", "机密".encode(),
               "😀".encode(), b"&#x4E2D;", b"&#x1F600;", b"&#128;", b"\r\n", b"\r"]  # fmt: skip
TAGS = [b"<w:p>", b"</w:p>", b"<w:t>", b"</w:t>", b"<w:tab/>", b"<w:br/>", b"<w:tbl>", b"</w:tbl>", b"<w:tr>",
        b"<w:tc>", b'<w:gridSpan w:val="2"/>', b"<w:r w:a='", b"'>", b"<w:t xml:space='preserve'>", b"<w:x/>"]  # fmt: skip


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    head=st.lists(st.sampled_from(HEADS), max_size=2),
    body=st.lists(st.one_of(st.sampled_from(UTF8_PIECES + TAGS + PIECES), st.binary(max_size=4)), max_size=16),
    mode=st.integers(0, 2),
    refused=st.sampled_from([(), ("tbl",), ("ph",)]),
    limit=st.one_of(st.integers(-2, 60), st.just(LARGE)),
)
def test_hostile_members_answered_only_as_the_text_reads_them(head, body, mode, refused, limit):
    data = b"".join(head) + b'<w:document xmlns:w="urn:w" xmlns:p="urn:p"><w:body>' + b"".join(body)
    for end in (b"</w:body></w:document>", b"</w:p></w:body></w:document>", b"</w:t></w:p></w:body></w:document>"):
        _assert_as_the_text(data + end, refused, 3, mode, limit)


@settings(max_examples=800, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10**6), edits=st.lists(st.tuples(st.floats(0, 1), st.sampled_from(EDITS + [""]), st.integers(0, 3)), min_size=1, max_size=4))  # fmt: skip
def test_edited_word_members_answered_only_as_the_text_reads_them(seed, edits):
    data = bytearray(_word_member(seed))
    for where, piece, cut in edits:
        at = int(where * len(data))
        data[at : at + cut] = piece.encode()
    _assert_as_the_text(bytes(data))


@pytest.mark.parametrize("seed", range(40))
def test_random_members_in_each_mode_and_budget_as_the_text(seed):
    """Members of every element the scan follows (tables, gridSpans, placeholders, references, raw
    line ends, CJK and astral text), with ASCII prefixes: well_bound reads ASCII names only."""
    rng = random.Random(f"member-bytes-{seed}")
    answered = 0
    for _ in range(30):
        body = "".join(_child(rng, 0) if rng.random() < 0.5 else _ordinary(rng) for _ in range(rng.randint(1, 4)))
        data = _ascii_prefixes(_member(body))
        text = _text(data)
        full = _native.ooxml_paragraphs(text, (), 0, 1, LARGE) if text is not None else None
        chars = sum(map(len, full[0])) if full else 0
        for mode in (0, 1, 2):
            for limit in (LARGE, chars, chars - 1, chars + 1, rng.randint(-1, chars + 2), len(data)):
                answered += (
                    _assert_as_the_text(data, rng.choice([(), ("tbl",), ("ph",)]), seed, mode, limit) is not None
                )
    assert answered > 100


def test_hostile_bytes_end_without_harm():
    for data in (
        b"",
        b"<",
        b"\xef\xbb\xbf",
        b"<a>",
        b"<a>\xff</a>",
        b"<a b='\xe4'/>",
        b"<a>&#xD800;</a>",
        b"<a" * 9999,
    ):
        assert _native.member_paragraphs(data, (), 0, 1, LARGE) is None
    deep = b"<r>" + b"<w:p xmlns:w='u'><w:t>x" * 1023 + b"</w:t></w:p>" * 1023 + b"</r>"
    assert _native.member_paragraphs(deep, (), 0, 1, LARGE) is None  # deeper than the check follows
    shallow = b"<r xmlns:w='u'>" + b"<w:p><w:t>x" * 500 + b"</w:t></w:p>" * 500 + b"</r>"
    assert _assert_as_the_text(shallow) == (["x" * 500], [-1], [], 0)
    for seed in range(30):
        rng = random.Random(seed)
        _assert_as_the_text(rng.randbytes(1 << 10))
        _assert_as_the_text(b"<w:t xmlns:w='u'>" + rng.randbytes(1 << 10) + b"</w:t>", mode=seed % 3)
    with pytest.raises(ValueError):
        _native.member_paragraphs(b"<a/>", ("a", "b", "c", "d", "e"), 0, 0, 1)
    with pytest.raises(ValueError):
        _native.member_paragraphs(b"<a/>", (), 0, 3, 1)
    with pytest.raises(TypeError):
        _native.member_paragraphs("<a/>", (), 0, 0, 1)


# ---- documents through the readers, with the bytes' way or without ------------------------------


def _both(data: io.BytesIO, name: str, monkeypatch, max_bytes: int = 1 << 20):
    documents = []
    for fast in (True, False):
        monkeypatch.setattr(ooxml, "FAST_MEMBER_BYTES", fast)
        documents.append(extract_file(data, name, max_bytes))
    assert documents[0] == documents[1], name
    return documents[0]


@pytest.mark.parametrize("seed", range(15))
def test_random_documents_read_the_same(seed, monkeypatch):
    rng = random.Random(f"member-bytes-files-{seed}")

    def body() -> bytes:
        texts = TEXTS + ["机密文件 " * rng.randint(1, 30)]
        inner = "".join(
            _child(rng, 0) if rng.random() < 0.3 else _ordinary(rng, texts) for _ in range(rng.randint(1, 5))
        )
        return _ascii_prefixes(_member(inner))

    docx = makers.office_zip({"word/document.xml": body(), "word/header1.xml": body(), "word/footnotes.xml": body()})
    pptx = makers.office_zip({f"ppt/slides/slide{k}.xml": body().replace(b"w:document", b"p:sld") for k in (1, 2)})
    for max_bytes in (1 << 20, rng.randint(50, 3000), rng.randint(50, 600)):  # near the text: the C counts bytes
        _both(docx, "random.docx", monkeypatch, max_bytes)
        _both(pptx, "random.pptx", monkeypatch, max_bytes)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.lists(st.sampled_from(UTF8_PIECES + TAGS + PIECES), max_size=14),
    max_bytes=st.sampled_from([1 << 20, 40, 12]),
)
def test_hostile_documents_read_the_same(body, max_bytes, monkeypatch):
    member = b'<w:document xmlns:w="urn:w" xmlns:a="urn:a" xmlns:p="urn:p"><w:body>' + b"".join(body)
    member += b"</w:body></w:document>"
    _both(
        makers.office_zip({"word/document.xml": member, "word/header2.xml": member}),
        "hostile.docx",
        monkeypatch,
        max_bytes,
    )
    slide = member.replace(b"w:document", b"p:sld")
    _both(makers.office_zip({"ppt/slides/slide1.xml": slide}), "hostile.pptx", monkeypatch, max_bytes)


def test_the_bench_word_documents_are_read_from_their_bytes(tmp_path, monkeypatch):
    """By member_paragraphs and slide_parts's bytes: no member of the bench's Office-written
    documents is decoded whole (xmlscan.checked_text not asked), and they read as the text's way
    reads them."""
    from bench import corpus

    for kind in ("docx-word", "pptx-powerpoint"):
        (path,) = map(Path, corpus.documents(str(tmp_path / kind), kind, 1, 96 * 1024, seed=7))
        data = io.BytesIO(path.read_bytes())
        reference = _both(data, path.name, monkeypatch)
        asked: list[str] = []
        with monkeypatch.context() as patched:
            counted = _counting(xmlscan.checked_text, asked)
            patched.setattr(xmlscan, "checked_text", counted)
            patched.setattr(ooxml, "checked_text", counted)
            patched.setattr(ooxml, "FAST_MEMBER_BYTES", True)
            assert extract_file(data, path.name, 1 << 20) == reference and len(reference.parts) > 10
        assert not [name for name in asked if name.startswith(("word/", "ppt/"))], asked


def _counting(checked_text, asked: list[str]):
    def counted(data: bytes, member: str) -> str | None:
        asked.append(member)
        return checked_text(data, member)

    return counted


def _read_slide(member: bytes, fast: bool, chars_left: int, monkeypatch) -> tuple:
    monkeypatch.setattr(ooxml, "FAST_MEMBER_BYTES", fast)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("ppt/slides/slide1.xml", member)
    out = Collector(1 << 22, 1e9)
    out.chars_left = chars_left
    ended = None
    try:
        ooxml._read_slide(BoundedZip(buffer), "ppt/slides/slide1.xml", out)
    except (OutOfBudget, Refused, ValueError) as e:
        ended = type(e).__name__
    assert all(type(part) is TextPart for part in out.parts)
    return out.parts, out.chars_left, ended


@pytest.mark.parametrize(
    "body",
    [
        "".join(f' a:x{k}="1"' for k in range(65)).encode(),  # more attributes than the one pass follows
        b' a:x="\xff"',  # not UTF-8, after the paragraphs the events played
        b' a:x="1"><a:t>b</a:t></a:r></a:p><a:p><a:r',
    ],
)
def test_a_slide_the_one_pass_is_not_sure_of_reads_the_same(body, monkeypatch):
    """slide_parts's mode 3 starts over the text's way (a fresh scan) when the check is not sure
    after the events played some paragraphs."""
    head = '<p:sld xmlns:p="urn:p" xmlns:a="urn:a"><p:cSld><p:sp><p:txBody>'
    paragraphs = "<a:p><a:r><a:t>机密 one</a:t></a:r></a:p><a:p><a:r><a:t>two</a:t></a:r></a:p>"
    data = (
        (head + paragraphs + "<a:p><a:r").encode()
        + body
        + b"><a:t>x</a:t></a:r></a:p></p:txBody></p:sp></p:cSld></p:sld>"
    )
    for chars_left in (3, 12, LARGE):
        fast = _read_slide(data, True, chars_left, monkeypatch)
        assert fast == _read_slide(data, False, chars_left, monkeypatch)
    assert b"\xff" in body or [p.text for p in fast[0]][:2] == ["机密 one", "two"]  # LARGE: all read
