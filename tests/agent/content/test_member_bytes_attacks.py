"""Hostile docx and pptx members against the one-pass read of a member's bytes (_winnow.member_paragraphs
and slide_parts's mode 3, ooxml.FAST_MEMBER_BYTES): each document must read as expat's events read
it (xmlscan.ENABLED off: the parse that refuses, the handlers that keep the text), not only as the
decoded text's way reads it (test_member_bytes.py holds the one pass to that).

An employee's aim here is a member the one pass reads although expat refuses it (or the other way
round), or text it keeps in another place, cell or paragraph than the events: strict UTF-8 at its
edges, names and namespaces (prefixes rebound, undeclared, xml:, default namespaces), references in
text and values, CDATA, comments and instructions inside paragraphs, nested paragraphs, t inside
instrText, deep nesting and many attributes, small budgets. The mutations start from Word- and
PowerPoint-like members and insert whole elements (mostly still well-formed: the one pass answers)
or raw pieces (mostly refused: it must not answer).

Checked to fail with the one pass broken on purpose through a stand-in _native: a paragraph's last
character dropped by member_paragraphs (25 tests fail) or by slide_parts's mode 3 (11), a member
answered with its DOCTYPE left out (5: the guard refuses a declaration) or with the bytes that are
not UTF-8 left out of a slide (4)."""

from __future__ import annotations

import io
import random

import pytest

from agent.content import ooxml, xmlscan
from agent.content.extract import extract_file
from tests.agent.content import makers

_native = ooxml._native
pytestmark = pytest.mark.skipif(
    getattr(_native, "member_paragraphs", None) is None, reason="the C extension agent.content._winnow is not built"
)

W = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _doc(body: bytes, head: bytes = b"") -> bytes:
    return head + b"<w:document " + W + b"><w:body>" + body + b"</w:body></w:document>"


def _sld(body: bytes, head: bytes = b"") -> bytes:
    return head + b'<p:sld xmlns:a="urn:a" xmlns:p="urn:p"><p:cSld><p:spTree>' + body + b"</p:spTree></p:cSld></p:sld>"


def _p(text: bytes) -> bytes:
    return b"<w:p><w:r><w:t>" + text + b"</w:t></w:r></w:p>"


def _cell(span: bytes) -> bytes:
    return b"<w:tbl><w:tr><w:tc>" + span + _p(b"c1") + b"</w:tc><w:tc>" + _p(b"c2") + b"</w:tc></w:tr></w:tbl>"


SECRET = "机密".encode()
MEMBERS = [
    _doc(_p(b"a\r") + _p(b"\nb")),
    _doc(_p(b"a&#13;b&#10;c\r\n\r")),
    _doc(_p(b"x") + b'<w:p xml:space="preserve"><w:t xml:space="preserve">  y  </w:t></w:p>'),
    _doc(_cell(b'<w:tcPr><w:gridSpan w:val=" 2 "/></w:tcPr>')),
    _doc(_cell(b'<w:gridSpan w:val="2" val="3"/>')),
    _doc(
        b'<w:tbl xmlns:v="urn:v"><w:tr><w:tc><w:gridSpan v:val="2" w:val="3"/>' + _p(b"c") + b"</w:tc></w:tr></w:tbl>"
    ),
    _doc(b'<x:p xmlns:x="urn:x"><x:t>other namespace</x:t></x:p>'),
    _doc(b'<p xmlns="urn:d"><t>default namespace</t></p>'),
    _doc(b'<w:p xmlns:w="urn:o"><w:t>prefix rebound</w:t></w:p>'),
    _doc(b'<w:p xmlns=""><t>default undeclared</t></w:p>'),
    _doc(b'<w:p xmlns:q="u"/><q:p><w:t>a declaration that ended</w:t></q:p>'),
    _doc(b"<xml:p><w:t>xml prefix on an element</w:t></xml:p>"),
    _doc(b'<w:p xml:lang="zh" xml:space="preserve"><w:t>xml attributes</w:t></w:p>'),
    _doc(b'<w:p xmlns:x="urn:x" xmlns:y="urn:x" x:a="1" y:a="2"><w:t>one expanded name twice</w:t></w:p>'),
    _doc(b'<w:p xmlns:x="urn:x" x:a="1" w:a="2"><w:t>two names one local</w:t></w:p>'),
    _doc(b'<w:p xmlns:x="http://www.w3.org/XML/1998/namespace"><w:t>reserved</w:t></w:p>'),
    _doc(b"<w:t/><w:p/>" + _p(b"") + _p(b" ")),
    _doc(b"<w:t.x>no</w:t.x><w:p><w:t-x>no</w:t-x><w:t>yes</w:t></w:p>"),
    _doc(b"<w:tab/><w:p><w:tab/><w:t>a<w:tab/>b<w:br/>c<w:cr/></w:t></w:p>"),
    _doc(_p(b"utf8"), b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF8"?>'),
    _doc(_p(b"\xe9t\xe9"), b'<?xml version="1.0" encoding="ISO-8859-1"?>'),
    _doc(_p(b"v"), b'<?xml version="1.1"?>'),
    _doc(_p(b"x") * 3, b'<?xml version="1.0" standalone="yes" encoding="utf-8"?>'),
    _doc(b"<w:p>" + b"<w:r>" * 1020 + b"<w:t>deep</w:t>" + b"</w:r>" * 1020 + b"</w:p>"),
    _doc(b"<w:p>" + b"<w:r>" * 1021 + b"<w:t>deeper</w:t>" + b"</w:r>" * 1021 + b"</w:p>"),
    _doc(b"<w:p " + b" ".join(b'w:a%d="1"' % k for k in range(64)) + b"><w:t>64 attributes</w:t></w:p>"),
    _doc(b"<w:p " + b" ".join(b'w:a%d="1"' % k for k in range(65)) + b"><w:t>65 attributes</w:t></w:p>"),
    _doc(_p(b"a]b]]c]>d")),
    _doc(_p(b"a]]>b")),
    _doc(_p(b"&#x10FFFF;&#xFFFD;&#x1F600;&#xE000;&#xFDD0;")),
    _doc(_p(b"&#xFFFE;")),
    _doc(_p(b"&#xD800;")),
    _doc(_p(b"\xf4\x8f\xbf\xbf\xee\x80\x80\xef\xb7\x90")),
    _doc(_p(b"\xef\xbf\xbe")),
    _doc(_p(b"\xed\xa0\x80\xed\xb0\x80")),  # a surrogate pair as CESU-8
    _doc(_p(b"\xc0\xaf\xe0\x80\xaf")),  # overlong "/"
    _doc(_p(b"\xf8\x88\x80\x80\x80\xfc\x84\x80\x80\x80\x80")),  # 5- and 6-byte forms
    _doc(_p(b"end \xe6\x9c")),  # a sequence cut at the paragraph's end
    _doc(_p(SECRET))[:-1] + b"\xe6",  # and at the member's
    _doc(b"<w:p><w:t>a</w:t><w:p><w:t>inner</w:t></w:p><w:t>b</w:t></w:p>"),
    _doc(b"<w:p><w:instrText>" + SECRET + b"</w:instrText><w:delText>gone</w:delText><w:t>t</w:t></w:p>"),
    _doc(b"<w:p><w:t>a<w:instrText>x<w:t>in</w:t>y</w:instrText>b</w:t></w:p>"),
    _doc(b"<w:p><w:t>a<!-- " + SECRET + b" -->b<?pi " + SECRET + b"?>c<![CDATA[" + SECRET + b"<w:t>]]>d</w:t></w:p>"),
    _doc(_p(b"&e;"), b"<!DOCTYPE w:document [<!ENTITY e '" + SECRET + b"'>]>"),
    _doc(_p(SECRET), b"<!DOCTYPE w:document [<!ENTITY e '" + SECRET + b"'>]>"),  # the guard refuses a declaration
    _doc(_p(SECRET), b"<!DOCTYPE w:document>"),
    _doc(_p(b"a") + b'<w:p w:x="&amp;&lt;&#10;" w:y=\'"\' w:z="\'>"><w:t>values</w:t></w:p>'),
    _doc(
        _p(b"a") + b'<w:p w:x="\t\n\r" w:v="\xe6\x9c\xba" w:u="\xff"><w:t>white space and bytes in values</w:t></w:p>'
    ),
    _sld(
        b'<p:sp><p:nvSpPr><p:nvPr><p:ph type="ftr"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>F</a:t></a:r></a:p>'
        b"</p:txBody></p:sp><p:sp><p:txBody><a:p><a:t>B</a:t></a:p></p:txBody></p:sp>"
    ),
    _sld(b'<p:sp><p:ph type="ftr" p:type="hdr"/><a:p><a:t>type twice</a:t></a:p></p:sp>'),
    _sld(b'<p:sp><p:ph type="hdr "/><a:p><a:t>type with a space</a:t></a:p></p:sp>'),
    _sld(b'<p:sp><p:ph type="&#104;dr"/><a:p><a:t>type by a reference</a:t></a:p></p:sp>'),
    _sld(b'<p:sp><p:ph type="sldNum"/><a:p><a:t>' + "内部资料 ".encode() + b"</a:t></a:p></p:sp>"),
    _sld(b"<p:sp><p:ph/><a:p><a:t>\xc2\xa0x\xe2\x80\xa8\x0b</a:t></a:p></p:sp>"),
    _sld(b'<p:sp><p:ph type="dt"/><a:p><a:t>\xc2\x85 a \xe3\x80\x80</a:t></a:p></p:sp>'),
    _sld(b'<p:sp><p:ph type="hdr"/><a:p><a:t>h</a:t></a:p></p:sp><p:sp><a:p><a:t>\xef\xbf\xbf</a:t></a:p></p:sp>'),
]

# pieces the mutations insert: whole elements (the text in them from TEXTS), or raw bytes
ELEMENTS = [b"<w:p><w:r><w:t>%s</w:t></w:r></w:p>", b"<w:t>%s</w:t>", b"<w:r><w:instrText>%s</w:instrText></w:r>",
            b"<w:p><w:t>%s<w:tab/>x<w:br/>y</w:t></w:p>", b"<x:t xmlns:x='urn:x'>%s</x:t>", b"<t>%s</t>",
            b"<w:p xmlns:w='urn:other'><w:t>%s</w:t></w:p>", b"<w:p><w:p><w:t>%s</w:t></w:p>z</w:p>",
            b"<w:tbl><w:tr><w:tc><w:p><w:t>%s</w:t></w:p></w:tc></w:tr></w:tbl>", b"<a:p><a:r><a:t>%s</a:t></a:r></a:p>",
            b"<p:sp><p:nvSpPr><p:nvPr><p:ph type='%s'/></p:nvPr></p:nvSpPr><a:p><a:t>q</a:t></a:p></p:sp>",
            b"<w:t xml:space='preserve' w:x='%s'>v</w:t>", b"<w:x>%s</w:x>", b"<w:p/>%s"]  # fmt: skip
TEXTS = [b"", b"SECRET", SECRET, "内部资料".encode(), b"\xef\xbf\xbd", b"\xf0\x9f\x98\x80", b"&#x4E2D;&#65;", b"&lt;&amp;",
         b"\r\nx\r", b"\t", b"ftr", b"hdr", b"sldNum", b"\xc2\xa0", b"\xef\xbf\xbe", b"\xed\xa0\x80", b"\xc0\xaf",
         b"&#xFFFF;", b">", b"]]", b"\xe6\x9c"]  # fmt: skip
RAW = [b"\xc0\x80", b"\xe0\x80\x80", b"\xed\xbf\xbf", b"\xef\xbf\xbf", b"\xf4\x90\x80\x80", b"\x80", b"\xe4\xb8",
       b"&#0;", b"&foo;", b"&", b"\x00", b"\x0b", b"]]>", b"<![CDATA[x<w:t>y]]>", b"<!-- c -->", b"<?pi x?>", b"<w:p>",
       b"</w:p>", b"<w:t>", b"</w:t>", b"<w:tbl>", b"</w:tbl>", b"<w:tc>", b'<w:gridSpan w:val="3"/>', b" xmlns:w='u'",
       b' xmlns=""', b" xmlns:w=''", b" a='1' a='2'", b' w:x="<"', b"<w::t>", b"<:t>", b"<", b"'"]  # fmt: skip


def _mutated(rng: random.Random, member: bytes) -> bytes:
    data = bytearray(member)
    for _ in range(rng.choice([1, 1, 2, 3])):
        ends = [k + 1 for k, byte in enumerate(data) if byte == 0x3E]  # after a ">"
        if rng.random() < 0.7:
            at = rng.choice(ends[1:-1] or ends)
            text = b"".join(rng.choice(TEXTS) for _ in range(rng.randint(0, 3)))
            data[at:at] = rng.choice(ELEMENTS).replace(b"%s", text)
        else:
            at = rng.choice(ends + [rng.randrange(len(data) + 1)])
            data[at:at] = rng.choice(RAW)
    return bytes(data)


def _read(data: io.BytesIO, name: str, max_bytes: int, monkeypatch, fast: bool):
    with monkeypatch.context() as patched:
        if not fast:  # expat's events: no scan of the text, no one pass, no check but the parse
            patched.setattr(ooxml, "FAST_MEMBER_BYTES", False)
            patched.setattr(xmlscan, "FAST_WELL_BOUND", False)
            patched.setattr(xmlscan, "ENABLED", False)
        return extract_file(data, name, max_bytes)


def _as_expat_reads(member: bytes, monkeypatch, max_bytes: int = 1 << 22) -> bool:
    """The member read as a docx's document (or header) or a pptx's slide the same with every fast
    path on as by expat's events; whether the one pass answered for it."""
    answered: list[bool] = []
    native = ooxml._native

    class Counting:  # the one pass's answers counted (ooxml looks both functions up at each call)
        def __getattr__(self, name: str):
            found = getattr(native, name)
            if name not in ("member_paragraphs", "slide_parts"):
                return found

            def counted(*args):
                got = found(*args)
                answered.append(got is not None and got is not False and (name != "slide_parts" or args[-1] == 3))
                return got

            return counted

    if b"p:sld" in member[:300]:
        files = [("deck.pptx", {"ppt/slides/slide1.xml": member})]
    else:
        files = [("doc.docx", {"word/document.xml": member}), ("doc.docx", {"word/header1.xml": member})]
    for name, members in files:
        data = makers.office_zip(members)
        with monkeypatch.context() as patched:
            patched.setattr(ooxml, "_native", Counting())
            fast = _read(data, name, max_bytes, monkeypatch, True)
        assert fast == _read(data, name, max_bytes, monkeypatch, False), (member, max_bytes, fast)
    return any(answered)


@pytest.mark.parametrize("member", MEMBERS, ids=range(len(MEMBERS)))
def test_crafted_members_read_as_expat_reads_them(member, monkeypatch):
    for max_bytes in (1 << 22, 40, 9):  # a budget the text passes: the C counts bytes
        _as_expat_reads(member, monkeypatch, max_bytes)


def test_the_one_pass_answers_for_most_crafted_members(monkeypatch):
    """Not a vacuous comparison: the one pass reads the members it is sure of."""
    assert sum(_as_expat_reads(member, monkeypatch) for member in MEMBERS) >= 15


@pytest.mark.parametrize("seed", range(6))
def test_mutated_office_members_read_as_expat_reads_them(seed, monkeypatch):
    rng = random.Random(f"member-bytes-attacks-{seed}")
    slide = _sld(
        b'<p:sp><p:nvSpPr><p:nvPr><p:ph type="ftr"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>'
        + "内部资料".encode()
        + b"</a:t></a:r></a:p></p:txBody></p:sp>",
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n',
    )
    word = _doc(
        b'<w:p w:rsidR="00A1"><w:pPr><w:jc w:val="center"/></w:pPr><w:r><w:rPr><w:b/></w:rPr><w:t xml:space="preserve">'
        + SECRET
        + b" plan </w:t></w:r></w:p>"
        + _cell(b'<w:tcPr><w:gridSpan w:val="2"/></w:tcPr>'),
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n',
    )
    # every prefix the pieces use declared on both roots: most insertions stay well-formed
    slide = slide.replace(b"<p:sld ", b"<p:sld " + W + b" ")
    word = word.replace(b"<w:document ", b'<w:document xmlns:a="urn:a" xmlns:p="urn:p" ')
    answered = 0
    for _ in range(60):
        member = _mutated(rng, rng.choice([slide, word]) if rng.random() < 0.7 else rng.choice(MEMBERS))
        answered += _as_expat_reads(member, monkeypatch, rng.choice([1 << 22, 1 << 22, rng.randint(20, 400)]))
    assert answered >= 5  # 6 to 12 of 60 with these seeds


def test_with_well_bound_off_a_docx_member_is_parsed_by_expat(monkeypatch):
    """xmlscan.FAST_WELL_BOUND off promises that expat's plain parse checks every member
    checked_text gives text of (the reference well_bound is held to); the one pass of a member's
    bytes is well_bound's own check, so it must step aside too. (A slide's guard has its own
    switch, ooxml.FAST_WELL_FORMED.)"""
    parsed: list[str] = []
    real = xmlscan.locked_parser

    def counted(member: str, *args, **kwargs):
        parsed.append(member)
        return real(member, *args, **kwargs)

    monkeypatch.setattr(xmlscan, "locked_parser", counted)
    monkeypatch.setattr(xmlscan, "FAST_WELL_BOUND", False)
    document = extract_file(makers.office_zip({"word/document.xml": _doc(_p(SECRET))}), "doc.docx", 1 << 20)
    assert SECRET.decode() in document.text_of("body")
    assert "word/document.xml" in parsed
