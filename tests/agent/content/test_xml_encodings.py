"""OOXML members in a multi-byte encoding expat does not know (agent/content/xmltext.py): a
document.xml saved as GBK, GB18030, Big5 or Shift_JIS is read through Python's codec, so its
marking and identifiers are found. Before, expat's ValueError ("multi-byte encodings are not
supported") became an internal error and none of the member's text was inspected: an employee's
way to carry a marked document past inspection."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.content import xmltext
from agent.content.budget import Refused
from agent.content.extract import extract
from agent.content.inspect import inspect_file
from tests.agent.content.makers import CONTENT_TYPES, W, write_zip

TEXT = {
    "gbk": "商业秘密 泵叶轮设计",
    "gb18030": "商业秘密 𠀀 泵叶轮",
    "big5": "商業秘密 泵葉輪",
    "shift_jis": "営業秘密 ポンプ",
}


def _docx(path: Path, encoding: str, text: str, declared: str | None = None) -> Path:
    body = f'<?xml version="1.0" encoding="{declared or encoding}" standalone="yes"?>'
    body += f"<w:document {W}><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>"
    return write_zip(path, {"[Content_Types].xml": CONTENT_TYPES, "word/document.xml": body.encode(encoding)})


@pytest.mark.reliability(
    area="input",
    fault="A docx whose document.xml is saved in GBK, GB18030, Big5 or Shift_JIS",
    how="extract and inspect_file of such a docx (expat reads no multi-byte encoding but UTF-8 and UTF-16)",
    outcome="the text is read through Python's codec and the secrecy marking found (before: internal error, "
    "no text inspected)",
)
@pytest.mark.parametrize("encoding", list(TEXT))
def test_a_member_in_a_multibyte_encoding_is_read(encoding, tmp_path):
    path = _docx(tmp_path / f"{encoding}.docx", encoding, TEXT[encoding])
    document = extract(str(path), path.name)
    assert document.problem is None and [p.text for p in document.parts][1:] == [TEXT[encoding]]
    if encoding in ("gbk", "gb18030"):
        assert "trade_secret_marking" in {d.detector for d in inspect_file(str(path)).detections}


class _Text(xmltext.Handler):
    def __init__(self) -> None:
        self.read: list[str] = []

    def data(self, text: str) -> None:
        self.read.append(text)


def _parse(data: bytes, cut: int, complete: bool = True) -> str:
    handler = _Text()
    xmltext.parse([data[i : i + cut] for i in range(0, len(data), cut)], handler, "m", lambda: complete)
    return "".join(handler.read)


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet="机密泵叶轮abc &<>\n\t𠀀", max_size=40),
    cut=st.integers(1, 64),
    encoding=st.sampled_from(["gbk", "gb18030"]),
)
def test_a_member_cut_into_any_chunks_reads_as_utf8_does(text, cut, encoding):
    if encoding == "gbk":
        text = text.replace("𠀀", "")
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>'
    utf8 = _parse(f'<?xml version="1.0" encoding="utf-8"?><a>{escaped}</a>'.encode(), 1 << 20)
    assert _parse(f"{declaration}<a>{escaped}</a>".encode(encoding), cut) == utf8 == text


def test_bytes_the_codec_cannot_read_refuse_the_member():
    with pytest.raises(Refused, match="not gbk"):
        _parse(b'<?xml version="1.0" encoding="GBK"?><a>' + b"\x81\x20</a>", 1 << 20)


@pytest.mark.parametrize("name", ["base64", "rot13", "no-such-encoding"])
def test_a_declared_name_that_is_no_text_encoding_is_refused(name):
    with pytest.raises(Refused, match="declares an encoding"):
        _parse(f'<?xml version="1.0" encoding="{name}"?><a>x</a>'.encode(), 1 << 20)


def test_a_member_cut_short_inside_a_character_is_not_an_error():
    data = '<?xml version="1.0" encoding="GBK"?><a>机密文件'.encode("gbk")
    assert _parse(data[:-1], 7, complete=False) == "机密文"


@pytest.mark.parametrize("encoding", ["utf-8", "UTF-16", "ISO-8859-1", "windows-1252"])
def test_encodings_expat_reads_are_left_to_it(encoding, monkeypatch):
    """No transcoding where expat reads the bytes itself (one probe at most, none for UTF-8)."""
    monkeypatch.setattr(xmltext, "_utf8", lambda *a: pytest.fail("transcoded"))
    data = f'<?xml version="1.0" encoding="{encoding}"?><a>é</a>'.encode(encoding)
    assert _parse(data, 5) == "é"


def test_the_bytes_stream_is_not_read_ahead_past_the_declaration():
    """The declaration is looked for in the chunks up to the one holding "?>", not in the whole member."""
    pulled = []

    def chunks():
        for piece in (b'<?xml version="1.0" encoding="GBK"?>', "<a>机".encode("gbk"), "密</a>".encode("gbk")):
            pulled.append(piece)
            yield piece

    stream, transcoded = xmltext._readable(chunks(), "m", lambda: True)
    assert transcoded and len(pulled) == 1
    assert b"".join(stream).decode() == '<?xml version="1.0" encoding="GBK"?><a>机密</a>'


# (declared name, codec of the bytes, byte order mark written before the declaration)
WIDE = [
    ("UTF-16-LE", "utf-16-le", b"\xff\xfe"),  # Python's spelling: pyexpat raised ValueError
    ("utf_16", "utf-16-le", b"\xff\xfe"),
    ("UTF-16-BE", "utf-16-be", b""),
    ("UCS-2", "utf-16-le", b"\xff\xfe"),  # IANA's name, no Python codec: LookupError
    ("ISO-10646-UCS-2", "utf-16-be", b"\xfe\xff"),
    ("UTF-32", "utf-32-le", b"\xff\xfe\x00\x00"),  # expat reads no UTF-32: "not well-formed"
    ("UTF-32BE", "utf-32-be", b""),
    (None, "utf-32-le", b"\xff\xfe\x00\x00"),
]


@pytest.mark.reliability(
    area="input",
    fault="A docx whose document.xml is written in UTF-16 declared by Python's names (UTF-16-LE, utf_16) or "
    "IANA's (UCS-2), or in UTF-32",
    how="extract and inspect_file of such a docx, with and without a byte order mark",
    outcome="the text is read and the secrecy marking found (before: an internal error for the UTF-16 names, "
    "malformed XML for UTF-32, no text inspected)",
)
@pytest.mark.parametrize(("declared", "codec", "bom"), WIDE)
def test_a_member_written_in_utf16_or_utf32_is_read_whatever_it_is_called(declared, codec, bom, tmp_path):
    text = "商业秘密 泵叶轮 𠀀"
    head = f'<?xml version="1.0" encoding="{declared}"?>' if declared else '<?xml version="1.0"?>'
    body = f"{head}<w:document {W}><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>"
    path = write_zip(tmp_path / "wide.docx", {"[Content_Types].xml": CONTENT_TYPES, "word/document.xml": bom + body.encode(codec)})
    document = extract(str(path), path.name)
    assert document.problem is None and [p.text for p in document.parts][1:] == [text]
    assert "trade_secret_marking" in {d.detector for d in inspect_file(str(path)).detections}


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(alphabet="机密泵叶轮abc &<>\n\t𠀀", max_size=40),
    cut=st.integers(1, 64),
    wide=st.sampled_from([w for w in WIDE if w[0]]),
)
def test_a_wide_member_cut_into_any_chunks_reads_as_utf8_does(text, cut, wide):
    declared, codec, bom = wide
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    data = bom + f'<?xml version="1.0" encoding="{declared}"?><a>{escaped}</a>'.encode(codec)
    assert _parse(data, cut) == text


@pytest.mark.parametrize(("declared", "codec"), [("GBK", "utf-16-le"), ("UTF-8", "utf-16-be"), ("UTF-16", "utf-32-le")])
def test_a_wide_member_declaring_another_family_is_refused(declared, codec):
    data = f'<?xml version="1.0" encoding="{declared}"?><a>x</a>'.encode(codec)
    with pytest.raises(Refused, match="written in"):
        _parse(data, 1 << 20)


def test_a_lone_surrogate_in_a_utf16_member_refuses_it():
    data = '<?xml version="1.0" encoding="UTF-16-LE"?><a>'.encode("utf-16-le") + b"\x00\xd8" + "</a>".encode("utf-16-le")
    with pytest.raises(Refused, match="malformed xml"):
        _parse(data, 3)
