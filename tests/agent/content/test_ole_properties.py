"""The summary properties of legacy Office files (agent/content/ole.py, read_properties) by the
module's own bounded parser of the property sets. olefile's get_metadata parsed every property and
looped over a vector's count as the file gave it, each element of a type it does not read taking
no bytes: one edited count in an .xls (found by fuzzing) ran for billions of turns, filling memory,
before the body was read (the worker killed at its deadline, the body never inspected; on
Windows, inspection runs in the agent's own process). olefile stays the reference for well-formed
streams."""

from __future__ import annotations

import io
import struct

import olefile
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.content import ole, olewrite
from agent.content.budget import Collector
from agent.content.extract import extract_file
from agent.content.inspect import inspect_file

SUMMARY_FMTID = bytes.fromhex("e0859ff2f94f6810ab9108002b27b3d9")
DOC_SUMMARY_FMTID = bytes.fromhex("02d5cdd59c2e1b10939708002b2cf9ae")
VT_I2, VT_LPSTR, VT_LPWSTR, VT_R8, VT_VECTOR = 2, 0x1E, 0x1F, 5, 0x1000
ROWS = (("客户", "身份证号"), ("张三", "11010519491231002X"))


def _value(vt: int, value: object, codepage: int) -> bytes:
    if vt == VT_I2:
        return struct.pack("<IH2x", VT_I2, value)
    if vt == VT_LPSTR:
        # a CodePageString's size is in bytes, its NUL included; in a UTF-16 section it is UTF-16
        raw = (value + "\0").encode({936: "gbk", 1200: "utf-16-le"}.get(codepage, "utf-8"))
        return struct.pack("<II", VT_LPSTR, len(raw)) + raw + bytes(-len(raw) % 4)
    if vt == VT_LPWSTR:
        raw = (value + "\0").encode("utf-16-le")
        return struct.pack("<II", VT_LPWSTR, len(raw) // 2) + raw + bytes(-len(raw) % 4)
    return value  # raw bytes, type included


def property_set(fmtid: bytes, props: list[tuple[int, int, object]], codepage: int = 936) -> bytes:
    """A property set stream of one section (MS-OLEPS): (id, type, value) after the code page."""
    entries = [(1, VT_I2, codepage), *props]
    values = [_value(vt, v, codepage) for _pid, vt, v in entries]
    at, pairs = 8 + 8 * len(entries), b""
    for (pid, _vt, _v), data in zip(entries, values, strict=True):
        pairs += struct.pack("<II", pid, at)
        at += len(data)
    section = struct.pack("<II", at, len(entries)) + pairs + b"".join(values)
    header = struct.pack("<HHI", 0xFFFE, 0, 0x00020006) + bytes(16) + struct.pack("<I", 1)
    return header + fmtid + struct.pack("<I", 28 + 20) + section


def _xls(**streams: bytes) -> bytes:
    book = olefile.OleFileIO(io.BytesIO(olewrite.sample_xls(ROWS)))
    workbook = book.openstream("Workbook").read()
    return olewrite.compound_file({"Workbook": workbook, **streams})


def _read(data: bytes) -> list[tuple[str, str]]:
    out = Collector(1 << 24, 10)
    ole.read_properties(olefile.OleFileIO(io.BytesIO(data)), out)
    return [(p.where, p.text) for p in out.parts]


def _olefile_reads(data: bytes) -> list[tuple[str, str]]:
    """The same fields as olefile's get_metadata gives them (well-formed streams only)."""
    meta = olefile.OleFileIO(io.BytesIO(data)).get_metadata()
    found = []
    for _stream, _pid, field, where in ole._SUMMARY_FIELDS:
        value = getattr(meta, field, None)
        if isinstance(value, bytes):
            doc = field not in olefile.OleMetadata.SUMMARY_ATTRIBS
            value = ole.decode_8bit(value, meta.codepage_doc if doc else meta.codepage)
        if isinstance(value, str):
            found.append((where, value.rstrip("\0")))
    return found


TEXT = st.text(alphabet="商业秘密核心 abcXYZ-_/:", min_size=1, max_size=24).map(str.strip).filter(bool)
WANTED = {"\x05SummaryInformation": (2, 3, 5, 6), "\x05DocumentSummaryInformation": (2, 26, 15, 14)}


def _streams(summary: dict[int, str], doc: dict[int, str], vt: int, codepage: int) -> dict[str, bytes]:
    return {
        "\x05SummaryInformation": property_set(SUMMARY_FMTID, [(p, vt, v) for p, v in sorted(summary.items())], codepage),
        "\x05DocumentSummaryInformation": property_set(DOC_SUMMARY_FMTID, [(p, vt, v) for p, v in sorted(doc.items())], codepage),
    }


def _written(summary: dict[int, str], doc: dict[int, str]) -> list[tuple[str, str]]:
    given = {"\x05SummaryInformation": summary, "\x05DocumentSummaryInformation": doc}
    return [(where, given[stream][pid]) for stream, pid, _f, where in ole._SUMMARY_FIELDS if pid in given[stream]]


@settings(max_examples=120, deadline=None)
@given(
    summary=st.dictionaries(st.sampled_from([2, 3, 4, 5, 6, 8, 18]), TEXT, max_size=7),
    doc=st.dictionaries(st.sampled_from([2, 14, 15, 26, 3]), TEXT, max_size=5),
)
def test_the_fields_are_olefiles_on_well_formed_streams(summary, doc):
    """8-bit strings (code page 936), which olefile reads right, as olefile reads them."""
    data = _xls(**_streams(summary, doc, VT_LPSTR, 936))
    assert _read(data) == _olefile_reads(data) == _written(summary, doc)


@settings(max_examples=80, deadline=None)
@given(
    summary=st.dictionaries(st.sampled_from([2, 3, 5, 6, 18]), TEXT, max_size=5),
    doc=st.dictionaries(st.sampled_from([2, 14, 15, 26]), TEXT, max_size=4),
    form=st.sampled_from([(VT_LPWSTR, 1200), (VT_LPWSTR, 936), (VT_LPSTR, 1200)]),
)
def test_utf16_strings_are_read_whole(summary, doc, form):
    """olefile 0.47 reads a VT_LPWSTR's length from the wrong place (its fields came out as
    garbage), and an 8-bit string in a UTF-16 section (code page 1200, which MS-OLEPS says is
    stored as UTF-16) was cut at its first NUL byte: "Secret" read as "S"."""
    assert _read(_xls(**_streams(summary, doc, *form))) == _written(summary, doc)


def test_a_custom_label_in_a_utf16_section_is_read_whole():
    value = "Secret 商业秘密"
    raw = (value + "\0").encode("utf-16-le")
    assert ole._string_value(struct.pack("<II", VT_LPSTR, len(raw)) + raw, 0, 1200) == value


@pytest.mark.timeout(60)
@pytest.mark.reliability(
    area="input",
    fault="An .xls whose summary stream holds a vector property with a count of 4 billion elements of a type "
    "olefile does not read",
    how="extract_file and inspect_file of a roster .xls with the title after that property",
    outcome="the body is read and the ID number found, the title too, in the time of any small file (before: "
    "olefile looped over the count, filling memory, until the worker was killed at its deadline)",
)
def test_a_vector_count_from_the_file_is_not_looped_over(monkeypatch):
    calls = []
    basic = olefile.OleFileIO._parse_property_basic
    monkeypatch.setattr(olefile.OleFileIO, "_parse_property_basic", lambda *a: calls.append(1) or basic(*a))
    hostile = struct.pack("<II", VT_VECTOR | VT_R8, 0xFFFFFFFF)  # no elements follow
    data = _xls(**{"\x05SummaryInformation": property_set(SUMMARY_FMTID, [(4, 0, hostile), (2, VT_LPSTR, "客户名单 机密")])})
    document = extract_file(io.BytesIO(data), "roster.xls")
    assert document.problem is None
    assert ("title", "客户名单 机密") in [(p.where, p.text) for p in document.parts]
    assert "11010519491231002X" in document.text_of("body")
    assert calls == []  # olefile's property parser is never run on a file's properties


@pytest.mark.parametrize("cut", [0, 4, 26, 30, 47, 52, 60, 75])
def test_a_stream_cut_anywhere_gives_what_was_read_before(cut):
    full = property_set(SUMMARY_FMTID, [(2, VT_LPSTR, "标题"), (3, VT_LPWSTR, "主题")])
    found = ole.section_strings(full[:cut], 0, {2, 3})
    assert set(found.items()) <= {(2, "标题"), (3, "主题")}
    assert ole.section_strings(full, 0, {2, 3}) == {2: "标题", 3: "主题"}


def test_a_section_offset_past_the_end_or_a_huge_count_reads_nothing():
    data = bytearray(property_set(SUMMARY_FMTID, [(2, VT_LPSTR, "标题")]))
    struct.pack_into("<I", data, 44, 1 << 30)
    assert ole.section_strings(bytes(data), 0, {2}) == {}
    data = bytearray(property_set(SUMMARY_FMTID, [(2, VT_LPSTR, "标题")]))
    struct.pack_into("<I", data, 48 + 4, 0xFFFFFFFF)  # properties in the section
    assert ole.section_strings(bytes(data), 0, {2}) == {}
    assert "cn_resident_id" in {d.detector for d in inspect_file_bytes(_xls(**{"\x05SummaryInformation": bytes(data)}))}


def inspect_file_bytes(data: bytes) -> set[str]:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".xls") as f:
        f.write(data)
        f.flush()
        return {d for d in inspect_file(f.name).detections}
