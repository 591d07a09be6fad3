"""_winnow.well_bound: well_formed and names_bound in one pass, so xmlscan.checked_text may leave
out both of expat's parses of a member (the plain parse and, where names_bound is not sure, the
namespace parse) when it is sure of the member, as _read_slide already did for slides by
well_formed. Word's document.xml paid its plain parse as some 40% of docx inspection.

It must say True only where well_formed and names_bound both say True, and then expat (plain and
with namespaces) must accept the member once it is UTF-8: on Word-like markup (namespaced
attributes such as w:rsidR, xml:space, mc:Ignorable, thirty declarations on the root, more below
it) with every namespace error mixed in, and on real members edited at random. It must be sure of
what Office and the bench write (else nothing is saved), and documents read the same with the
check or with expat's parses (xmlscan.FAST_WELL_BOUND)."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path
from xml.parsers import expat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.content import xmlscan
from agent.content.extract import extract

_native = pytest.importorskip("agent.content._winnow", reason="the C extension is not built (setup.py)")
well_bound, well_formed, names_bound = _native.well_bound, _native.well_formed, _native.names_bound

XML_URI = "http://www.w3.org/XML/1998/namespace"
XMLNS_URI = "http://www.w3.org/2000/xmlns/"
WORD_PREFIXES = ["wpc", "mc", "o", "r", "m", "v", "wp14", "wp", "w10", "w", "w14", "w15", "wps", "a", "pic", "c"]
DECLARED = "".join(f' xmlns:{p}="urn:{p}"' for p in WORD_PREFIXES)


def _accepts(data: bytes, namespaces: bool) -> bool:
    parser = expat.ParserCreate(namespace_separator="}") if namespaces else expat.ParserCreate()
    try:
        parser.Parse(data, True)
    except expat.ExpatError:
        return False
    return True


def _decodes(data: bytes) -> bool:
    try:
        data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _assert_sound(data: bytes) -> None:
    """well_bound is the two checks in one pass; what it is sure of expat accepts both ways."""
    sure = well_bound(data)
    assert sure == (well_formed(data) and names_bound(data)), data
    if sure and _decodes(data):
        assert _accepts(data, False) and _accepts(data, True), data


# mostly what Word writes, now and then each thing that can go wrong
_PREFIXES = st.sampled_from(["w"] * 12 + ["w14", "r", "mc", "", ""] + ["xml", "xmlns", "q", "ä", "XML", "w:w", "1w"])
_LOCALS = st.sampled_from(
    ["t", "p", "r", "rsidR", "rsidRPr", "val", "space", "Ignorable"] * 3
    + ["1", "-x", ".x", "x:", ":", "xmlns", "é", "x\u0300"]
)
_URIS = st.sampled_from(
    ["urn:w", "urn:q"] * 8 + ["", XML_URI, XMLNS_URI, "urn:&amp;", XML_URI[:-1] + "&#x65;", "x\ty", "urn:}"]
)
_VALUES = st.sampled_from(
    ["0038CE8C", "preserve", "w14 w15 wp14", "", "a&amp;b", "&#x41;", "<", "&bogus;", "\x01", '"']
)
_TEXTS = st.sampled_from(
    ["机密", "text ", " ", "\r\n", "&amp;", "&lt;", "&#x4E2D;", "]]>", "&#0;", "\ufffe", "<!-- c -->"]
)


def _qname(prefix: str, local: str) -> str:
    return f"{prefix}:{local}" if prefix else local


@st.composite
def _attributes(draw) -> str:
    out = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.integers(0, 9))
        if kind == 0:  # a declaration, of a prefix or the default namespace
            name = _qname("xmlns", draw(_PREFIXES)) if draw(st.booleans()) else "xmlns"
            out.append((name, draw(_URIS)))
        elif kind == 1:
            out.append(("xml:space", "preserve"))
        else:
            out.append((_qname(draw(_PREFIXES), draw(_LOCALS)), draw(_VALUES)))
    quote = draw(st.sampled_from(['"', "'"]))
    space = draw(st.sampled_from([" ", " ", "\n", "\t ", "\r\n  "]))
    return "".join(f"{space}{name}={quote}{value}{quote}" for name, value in out)


@st.composite
def _element(draw, depth: int = 0) -> str:
    name = _qname(draw(_PREFIXES), draw(_LOCALS))
    attributes = draw(_attributes())
    if depth > 3 or draw(st.integers(0, 2)) == 0:
        return f"<{name}{attributes}/>"
    children = "".join(
        draw(_element(depth + 1)) if draw(st.integers(0, 3)) else draw(_TEXTS) for _ in range(draw(st.integers(0, 4)))
    )
    end = name if draw(st.integers(0, 9)) else _qname(draw(_PREFIXES), draw(_LOCALS))
    return f"<{name}{attributes}>{children}</{end}{draw(st.sampled_from(['', ' ']))}>"


@settings(max_examples=4000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    _element(),
    st.sampled_from(["", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n', "<?xml version='1.0'?>"]),
    st.integers(0, 2),
)
def test_sure_only_where_both_checks_and_expat_are_on_word_like_markup(root, declaration, declare):
    if declare:  # the usual shape: the root declares what the rest uses (once, or again below it)
        end = min(
            i for i in (root.find(" "), root.find("\n"), root.find("\t"), root.find(">"), root.find("/>")) if i > 0
        )
        root = root[:end] + DECLARED + (' mc:Ignorable="w14 wp14"' if declare == 2 else "") + root[end:]
    _assert_sound((declaration + root).encode())


REFUSED_BY_NAMESPACES = [
    "<w:r/>",  # an unbound prefix on the root
    f"<r{DECLARED}><x xmlns:c2='urn:c'/><c2:y/></r>",  # used after the element that declared it ended
    f"<r{DECLARED}><x xmlns:c2='urn:c'><c2:y/></x><c2:z/></r>",
    f"<r{DECLARED}><x xmlns:c2='urn:c' /><w:y c2:v='1'/></r>",
    f"<r{DECLARED}><w:x q:y='1'/></r>",  # on an attribute
    f"<r{DECLARED}><xmlns:x/></r>",
    '<r xmlns:a=""/>',  # a prefix declared empty
    '<r xmlns:xmlns="urn:a"/>',
    f'<r xmlns:a="{XML_URI}"/>',
    f'<r xmlns="{XMLNS_URI}"/>',
    f'<r xmlns:a="{XML_URI[:-1]}&#x65;"/>',  # the reserved URI, spelled with a reference
    f"<r{DECLARED} xmlns:q='urn:w'><w:x w:y='1' q:y='2'/></r>",  # one attribute after expansion
    f"<r{DECLARED}><w:b:c/></r>",  # not a qualified name
    f"<r{DECLARED}><w:x w:rsid:R='1'/></r>",
    f"<r{DECLARED}><w:x w:='1'/></r>",
    f"<r{DECLARED}><w:1x/></r>",  # a Name, but its local part no NCName
    f"<r{DECLARED}><w:x w:-y='1'/></r>",
    "<r xmlns:1p='urn:a'/>",
    "<r xmlns='urn:a}b'/>",  # a URI holding the parser's namespace separator, "}"
    f"<r{DECLARED} xmlns:q='urn:a}}b'><q:x/></r>",
]


@pytest.mark.parametrize("member", REFUSED_BY_NAMESPACES)
def test_each_namespace_error_is_left_to_expat(member):
    data = member.encode()
    assert _accepts(data, False) and not _accepts(data, True)
    assert not well_bound(data) and not names_bound(data)
    assert well_formed(data)  # so it is the namespace part of the pass that says no


@pytest.mark.parametrize(
    "member",
    [
        f"<r{DECLARED}><w:x xml:space='preserve'>t</w:x><w14:y/></r>",
        f"<r{DECLARED} mc:Ignorable='w14 wp14'><w:p w14:paraId='1' w:rsidR='2' w:rsidRDefault='3' w:rsidP='4'/></r>",
        '<?xml version="1.0"?>\r\n<r xmlns="urn:d"><x/></r>',
        f"<r{DECLARED}><x xmlns:c2='urn:c'><c2:y/></x></r>",  # declared below the root, as drawings do
        f"<r{DECLARED}><c2:x xmlns:c2='urn:c' c2:v='1'/><w:y/></r>",
        f"<r{DECLARED}><x xmlns:w='urn:other'><w:y/></x><w:z/></r>",  # redeclared inside, the outer one after
        f"<r{DECLARED}><w:x y='1' w:y='2'/></r>",  # one local name, one of them without a prefix
    ],
)
def test_what_word_writes_is_sure(member):
    assert well_bound(member.encode())


def _office_members(tmp_path: Path) -> list[bytes]:
    from bench import corpus

    members = []
    for kind in ("docx-word", "docx", "xlsx", "pptx-powerpoint"):
        (path,) = corpus.documents(str(tmp_path / kind), kind, 1, 64 * 1024, seed=2)
        with zipfile.ZipFile(path) as z:
            members += [z.read(n) for n in z.namelist() if n.endswith(".xml")]
    return members


def test_sure_of_what_office_and_the_bench_write(tmp_path):
    members = _office_members(tmp_path)
    assert len(members) > 20 and all(map(well_bound, members))


EDITS = ["<w:x>", "</w:x>", "<w:x/>", " w:a='1'", " q:a='1'", " xmlns:q='urn:q'", " xmlns:w=''", "w:", ":", "1", "-",
         "<!-- c -->", "&amp;", "&", "<", ">", "'", '"', "机", " ", "xml:", "xmlns:", "=", "/"]  # fmt: skip


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10**6), edits=st.lists(st.tuples(st.floats(0, 1), st.sampled_from(EDITS + [""]), st.integers(0, 3)), min_size=1, max_size=4))  # fmt: skip
def test_sure_only_where_both_checks_and_expat_are_in_edited_word_members(seed, edits, tmp_path_factory):
    data = bytearray(_word_member(seed))
    for where, piece, cut in edits:
        at = int(where * len(data))
        data[at : at + cut] = piece.encode()
    _assert_sound(bytes(data))


def _word_member(seed: int) -> bytes:
    """A short document.xml as Word writes it: its root's declarations, paragraphs of runs."""
    rng = random.Random(seed)
    body = "".join(
        f"<w:p w14:paraId='{rng.randrange(1 << 32):08X}' w:rsidR='00A1B2C3'><w:pPr><w:jc w:val='center'/></w:pPr>"
        f"<w:r w:rsidRPr='0038CE8C'><w:rPr><w:rFonts w:ascii='宋体' w:hint='eastAsia'/></w:rPr>"
        f"<w:t xml:space='preserve'>{rng.choice(['机密 ', 'a &amp; b', 'x'])}</w:t></w:r></w:p>"
        for _ in range(rng.randint(1, 4))
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
        f'<w:document{DECLARED} mc:Ignorable="w14 w15 wp14"><w:body>{body}</w:body></w:document>'
    ).encode()


def test_hostile_bytes_only_get_an_answer():
    for data in (
        b"",
        b"<",
        b"<a",
        b"<a b",
        b"<a b=",
        b"<a b='",
        b"<a b='1'",
        b"</",
        b"<?",
        b"<!",
        b"<a:",
        b"<a xmlns:",
    ):
        assert well_bound(data) is False
    declarations = "<r " + " ".join(f'xmlns:p{i}="urn:{i}"' for i in range(60)) + ">"
    deep = (
        declarations
        + "".join(f"<x{i} xmlns:q{i}='urn:{i}'>" for i in range(100))
        + "".join(f"</x{i}>" for i in reversed(range(100)))
    )
    assert not well_bound((deep + "</r>").encode())  # more declarations in force than it keeps
    assert well_bound(
        ("<r>" + "<x xmlns:p='urn:p'><p:y/></x>" * 10_000 + "</r>").encode()
    )  # each goes with its element
    nested = "<r>" + "<x xmlns:p='urn:p'>" * 1024 + "</x>" * 1024 + "</r>"
    assert not well_bound(nested.encode())  # deeper than it follows
    for seed in range(20):
        well_bound(random.Random(seed).randbytes(1 << 12))
    well_bound(b"<a " * 100_000)


def _read_both(path: Path, monkeypatch) -> tuple:
    monkeypatch.setattr(xmlscan, "FAST_WELL_BOUND", False)
    reference = extract(str(path), path.name)
    monkeypatch.setattr(xmlscan, "FAST_WELL_BOUND", True)
    fast = extract(str(path), path.name)
    return reference, fast


@pytest.mark.parametrize("kind", ["docx-word", "docx", "xlsx", "pptx-powerpoint"])
def test_documents_read_the_same_and_skip_expats_parses(kind, tmp_path, monkeypatch):
    from bench import corpus

    (path,) = map(Path, corpus.documents(str(tmp_path), kind, 1, 64 * 1024, seed=5))
    reference, fast = _read_both(path, monkeypatch)
    assert fast.parts == reference.parts and fast.problem == reference.problem and len(fast.parts) > 3
    parses = []
    real = xmlscan.locked_parser
    monkeypatch.setattr(xmlscan, "locked_parser", lambda *a, **k: (parses.append(a), real(*a, **k))[1])
    extract(str(path), path.name)
    assert parses == []


NOT_UTF8 = "<w:document xmlns:w='urn:w'><w:body><w:p><w:r><w:t>\udcff\udcfe</w:t></w:r></w:p></w:body></w:document>"


W = "<w:document xmlns:w='urn:w'><w:body><w:p><w:r>{}</w:r></w:p></w:body></w:document>"
MALFORMED = [W.format(piece) for piece in ("<w:t>x</w:r>", "<w:t>&bogus;</w:t>", "<w:t w:a='1' w:a='2'>x</w:t>",
             "<w:t w:a='<'>x</w:t>", "<w:t>\x01</w:t>", "<w:t>&#0;</w:t>", "<w:t>]]></w:t>")]  # fmt: skip


@pytest.mark.parametrize(
    "member",
    REFUSED_BY_NAMESPACES
    + MALFORMED
    + ["<w:document><w:body/></w:document><!-- after -->", NOT_UTF8.encode("utf-8", "surrogateescape")],
)
def test_a_docx_with_an_error_reads_as_the_reference(member, tmp_path, monkeypatch):
    from tests.agent.content.makers import CONTENT_TYPES, write_zip

    path = write_zip(tmp_path / "bad.docx", {"[Content_Types].xml": CONTENT_TYPES, "word/document.xml": member})
    reference, fast = _read_both(path, monkeypatch)
    assert fast.parts == reference.parts and fast.problem == reference.problem


@pytest.mark.parametrize("member", REFUSED_BY_NAMESPACES)
def test_a_slide_with_a_namespace_error_reads_as_the_reference(member, monkeypatch):
    """_read_slide's slide_parts asks well_bound first (its mode 2): not sure, names_bound and
    well_formed are asked apart, as before, and the slide goes to expat."""
    from tests.agent.content.test_slide_parts import _read

    slide = (
        "<p:sld xmlns:p='urn:p' xmlns:a='urn:a'><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>x</a:t></a:r></a:p>"
        f"</p:txBody></p:sp>{member}</p:spTree></p:cSld></p:sld>"
    ).encode()
    assert _accepts(slide, False) and not _accepts(slide, True)
    monkeypatch.setattr(xmlscan, "FAST_WELL_BOUND", False)
    reference = _read(slide, False, 1 << 40, 10_000, monkeypatch)
    monkeypatch.setattr(xmlscan, "FAST_WELL_BOUND", True)
    assert _read(slide, True, 1 << 40, 10_000, monkeypatch) == reference
    assert reference[2] is not None  # refused
