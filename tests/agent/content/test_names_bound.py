"""xmlscan's check without namespace processing (agent/content/_winnow.c names_bound): a member
the plain parse accepts is left unparsed by the namespace parse only when names_bound finds no
name or declaration that parse could refuse. So names_bound must never say True for a member the
namespace parse refuses (random members of declarations and names, good and bad, and each kind of
namespace error by hand), must say True for what Office writes (else the saving is not there),
and a document whose member has a namespace error reads exactly as the reference reads it."""

from __future__ import annotations

import os
from pathlib import Path
from xml.parsers import expat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import xmlscan
from agent.content.extract import extract
from tests.agent.content import makers
from tests.agent.content.makers import CONTENT_TYPES, write_zip
from tests.agent.content.test_xmlscan import _both

_native = pytest.importorskip("agent.content._winnow", reason="the C extension is not built (setup.py)")
names_bound = _native.names_bound

XML_URI = "http://www.w3.org/XML/1998/namespace"
XMLNS_URI = "http://www.w3.org/2000/xmlns/"
DECLARED = ' xmlns:a="urn:a" xmlns:b="urn:b" xmlns:w="urn:w"'


def _accepts(data: bytes, namespaces: bool) -> bool:
    parser = expat.ParserCreate(namespace_separator="}") if namespaces else expat.ParserCreate()
    try:
        parser.Parse(data, True)
    except expat.ExpatError:
        return False
    return True


# mostly what Office writes (declared prefixes, plain names), now and then each thing that can go wrong
_PREFIXES = st.sampled_from(["a", "b", "w", ""] * 6 + ["xml", "xmlns", "c", "a:b", "ä", "XML"])
_LOCALS = st.sampled_from(["x", "y", "t"] * 5 + ["p", ":", "x:", "xmlns", "1", "-x", ".x", "_x", "x1"])
_URIS = st.sampled_from(
    ["urn:a", "urn:b"] * 8 + ["", XML_URI, XMLNS_URI, "urn:&amp;x", "urn:&#x61;", XML_URI[:-1] + "&#x65;", XML_URI + "x"]
)


def _qname(prefix: str, local: str) -> str:
    return f"{prefix}:{local}" if prefix else local


@st.composite
def _attributes(draw) -> str:
    out = []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.integers(0, 5)) == 0:  # a declaration, of a prefix or the default namespace
            name = _qname("xmlns", draw(_PREFIXES)) if draw(st.booleans()) else "xmlns"
            out.append((name, draw(_URIS)))
        else:
            out.append((_qname(draw(_PREFIXES), draw(_LOCALS)), "v>/"))
    quote = draw(st.sampled_from(['"', "'"]))
    space = draw(st.sampled_from([" ", "\n", "\t ", "\r\n  "]))
    return "".join(f"{space}{name}={quote}{value}{quote}" for name, value in out)


@st.composite
def _element(draw, depth: int = 0) -> str:
    name = _qname(draw(_PREFIXES), draw(_LOCALS))
    attributes = draw(_attributes())
    if depth > 2 or draw(st.booleans()):
        return f"<{name}{attributes}/>"
    children = "".join(draw(_element(depth + 1)) for _ in range(draw(st.integers(0, 3))))
    return f"<{name}{attributes}>{children}a&gt;b</{name} >"


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(_element(), st.booleans(), st.booleans())
def test_bound_only_where_the_namespace_parse_accepts(root, declaration, declare):
    if declare:  # the usual shape: the root declares what the rest uses
        end = min(i for i in (root.find(" "), root.find("\n"), root.find("\t"), root.find(">"), root.find("/>")) if i > 0)
        root = root[:end] + DECLARED + root[end:]
    data = (('<?xml version="1.0" encoding="UTF-8"?>\r\n' if declaration else "") + root).encode()
    if _accepts(data, False) and names_bound(data):
        assert _accepts(data, True), data


REFUSED_BY_NAMESPACES = [
    "<a:r/>",  # an unbound prefix on the root
    f"<r{DECLARED}><x xmlns:c='urn:c'/><c:y/></r>",  # used after the element that declared it ended
    f"<r{DECLARED}><x xmlns:c='urn:c'><c:y/></x><c:z/></r>",
    f"<r{DECLARED}><x xmlns:c='urn:c'><c:y/></x><z><c:y/></z></r>",  # in a sibling
    f"<r{DECLARED}><x><y xmlns:c='urn:c'/></x><a:w c:v='1'/></r>",  # on an attribute, out of scope
    f"<r{DECLARED}><c:x/></r>",  # on an element
    f"<r{DECLARED}><a:x c:y='1'/></r>",  # on an attribute
    f"<r{DECLARED}><xmlns:x/></r>",
    '<r xmlns:a=""/>',  # a prefix declared empty
    f'<r xmlns:xml="{XML_URI}x"/>',
    '<r xmlns:xmlns="urn:a"/>',
    f'<r xmlns:a="{XML_URI}"/>',
    f'<r xmlns="{XMLNS_URI}"/>',
    f'<r xmlns:a="{XML_URI[:-1]}&#x65;"/>',  # the reserved URI, spelled with a reference
    f"<r{DECLARED} xmlns:c='urn:a'><a:x a:y='1' c:y='2'/></r>",  # one attribute after expansion
    f"<r{DECLARED}><a:x xmlns:c='urn:a' a:y='1' c:y='2'/></r>",
    f"<r{DECLARED}><x xmlns:c='urn:c'><c:y xmlns:d=''/></x></r>",  # an empty declaration inside
    f"<r{DECLARED}><a:b:c/></r>",  # not a qualified name
    f"<r{DECLARED}><a:x b:c:d='1'/></r>",
    f"<r{DECLARED}><a:x :y='1'/></r>",
    f"<r{DECLARED}><a:x y:='1'/></r>",
    f"<r{DECLARED}><a:1x/></r>",  # a Name, but its local part no NCName (a digit, "-", "." or a mark first)
    f"<r{DECLARED}><a:x a:-y='1'/></r>",
    f"<r{DECLARED}><a:x a:.y='1'/></r>",
    f"<r{DECLARED}><a:x a:\u0300y='1'/></r>",
    "<r xmlns:1p='urn:a'/>",
]


@pytest.mark.parametrize("member", REFUSED_BY_NAMESPACES)
def test_each_namespace_error_is_left_to_the_namespace_parse(member):
    data = member.encode()
    assert _accepts(data, False) and not _accepts(data, True)
    assert not names_bound(data)


def test_a_local_part_starts_only_as_the_namespace_parse_allows():
    """Every character of the first two blocks of UTF-8 and of the CJK ones first in a local part
    (an element's, an attribute's, a prefix declared): bound only where the namespace parse
    accepts it (a combining mark or U+00B7 may go on a Name, not start an NCName)."""
    bound = 0
    for code in [*range(0x21, 0x800), *range(0x3000, 0xA100), *range(0xF900, 0x10000)]:
        c = chr(code)
        for member in (f'<r xmlns:p="u"><p:{c}x/></r>', f'<r xmlns:{c}="u"><{c}:x/></r>', f'<r xmlns:p="u" p:{c}="1"/>'):
            data = member.encode("utf-8", "surrogatepass")
            if _accepts(data, False) and names_bound(data):
                assert _accepts(data, True), (hex(code), member)
                bound += 1
    assert bound > 40_000  # letters and ideographs are not left to the namespace parse


@pytest.mark.parametrize(
    "member",
    [
        f"<r{DECLARED}><a:x xml:space='preserve'>t</a:x><b:y/></r>",
        f"<r{DECLARED} xmlns:中文='urn:c' xmlns:é='urn:e'><中文:x é:y='1'/></r>",
        f"<r{DECLARED}><w:x a:y='1' b:z='2' q='3'/></r>",
        '<?xml version="1.0"?>\r\n<r xmlns="urn:d"><x/></r>',
        # declared below the root, as PowerPoint's extension lists and Word's drawings do
        f"<r{DECLARED}><x xmlns:c='urn:c'><c:y/></x></r>",
        f"<r{DECLARED}><c:x xmlns:c='urn:c' c:v='1'/><a:y/></r>",
        f"<r{DECLARED}><x xmlns:a='urn:other'><a:y/></x><a:z/></r>",  # redeclared inside, the outer one after
        f"<r{DECLARED}><a:x y='1' a:y='2'/></r>",  # one local name, one of them without a prefix
    ],
)
def test_what_office_writes_is_bound(member):
    assert names_bound(member.encode())


@pytest.mark.parametrize(
    "member",
    [
        f"<r{DECLARED}><a:x b:y='1' a:y='2'/></r>",  # one local name, two prefixes: the URIs not compared
        f"<r{DECLARED}><!-- c --><a:x/></r>",
        f"<r{DECLARED}><?pi x?><a:x/></r>",
        f"<r{DECLARED}><a:x y='1",
        "",
        "text only",
    ],
)
def test_what_it_does_not_follow_goes_to_the_namespace_parse(member):
    assert not names_bound(member.encode())


def test_office_documents_skip_the_namespace_parse(tmp_path):
    import zipfile

    from bench import corpus

    paths = [makers.docx(tmp_path / "f.docx"), makers.pptx(tmp_path / "f.pptx"), makers.xlsx(tmp_path / "f.xlsx")]
    for kind in ("docx-word", "pptx-powerpoint", "xlsx"):
        paths += map(Path, corpus.documents(str(tmp_path / kind), kind, 1, 16 * 1024, seed=2))
    for path in paths:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.endswith(".xml"):
                    assert names_bound(z.read(name)), (path.name, name)


def test_hostile_bytes_only_get_an_answer():
    for data in (b"<", b"<a", b"<a b", b"<a b=", b"<a b='", b"<a b='1'", b"</", b"<?", b"<!"):
        assert names_bound(data) is False
    assert names_bound(b"\x00<\x00>") in (True, False)  # the plain parse refuses it first
    many = "<r " + " ".join(f'a{i}="1"' for i in range(300)) + "/>"  # more attributes than it keeps
    assert not names_bound(many.encode())
    declarations = "<r " + " ".join(f'xmlns:p{i}="urn:{i}"' for i in range(200)) + "/>"
    assert not names_bound(declarations.encode())  # more declarations in force than it keeps
    nested = "".join(f"<x{i} xmlns:p{i}='urn:{i}'>" for i in range(129)) + "".join(f"</x{i}>" for i in reversed(range(129)))
    assert not names_bound(nested.encode())
    assert names_bound(("<r>" + "<x xmlns:p='urn:p'><p:y/></x>" * 10_000 + "</r>").encode())  # each goes with its element
    rng = os.urandom(1 << 16)
    names_bound(rng)
    names_bound(b"<a " * 100_000)


@pytest.mark.parametrize("member", REFUSED_BY_NAMESPACES)
def test_a_document_with_a_namespace_error_reads_as_the_reference(member, tmp_path, monkeypatch):
    body = member.replace("<r", "<w:document", 1) if member.startswith("<r") else member
    if body.endswith("</r>"):
        body = body[: -len("</r>")] + "</w:document>"
    path = write_zip(tmp_path / "bad.docx", {"[Content_Types].xml": CONTENT_TYPES, "word/document.xml": body})
    document = _both(path, monkeypatch, fast=None)
    assert document.problem  # refused as the reference refuses it


def test_the_check_is_used_and_gives_the_reference(tmp_path, monkeypatch):
    from bench import corpus

    (path,) = corpus.documents(str(tmp_path), "docx-word", 1, 32 * 1024, seed=9)
    monkeypatch.setattr(xmlscan, "FAST_WELL_BOUND", False)  # else well_bound's one pass answers first
    calls = []
    real = xmlscan._names_bound
    monkeypatch.setattr(xmlscan, "_names_bound", lambda data: (calls.append(1), real(data))[1])
    _both(Path(path), monkeypatch)
    assert calls
    monkeypatch.setattr(xmlscan, "FAST_NAMESPACES", False)
    assert extract(str(path), Path(path).name).parts == _both(Path(path), monkeypatch).parts
