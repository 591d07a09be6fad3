"""The IPP reader of job control files: what cupsd writes is read, anything else is refused
with IppError (never another exception, never a read past the end)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.ipp import MAX_MESSAGE_BYTES, MAX_VALUES, IppError, first, parse_attributes
from tests.agent.ipp_messages import attr, control_file, integer, message, text


def test_control_file_attributes_are_read_and_collections_skipped():
    attrs = parse_attributes(control_file("zhang", "报价单.xlsx", "Finance-HP", "application/pdf", pages=3))
    assert attrs["job-originating-user-name"] == ["zhang"]
    assert attrs["job-name"] == ["报价单.xlsx"]
    assert first(attrs, "job-printer-uri", "printer-uri") == "ipp://pc/printers/Finance-HP"
    assert attrs["document-format"] == ["application/pdf"]
    assert attrs["job-impressions-completed"] == [3]
    assert attrs["media-col"] == [b""]  # present; its members are not attributes of the job
    assert "x-dimension" not in attrs and "" not in attrs


def test_additional_values_and_text_with_language():
    with_language = struct.pack(">H", 5) + b"zh-cn" + struct.pack(">H", 6) + "报价".encode()
    attrs = parse_attributes(message(text(0x44, "job-state-reasons", "a", "b"), attr(0x35, "job-name", with_language)))
    assert attrs["job-state-reasons"] == ["a", "b"]
    assert attrs["job-name"] == ["报价"]


OVERLONG = b"\x02\x00\x00\x05\x00\x00\x00\x04\x02\x42\x00\x08job-name\xff\xff" + b"x" * 10 + b"\x03"

BROKEN = {
    "empty": b"",
    "header only": b"\x02\x00\x00\x05\x00\x00\x00\x04",
    "no end tag": message(text(0x42, "job-name", "x"))[:-1],
    "value length past the end": OVERLONG,
    "name length past the end": b"\x02\x00\x00\x05\x00\x00\x00\x04\x02\x42\xff\xff",
    "unknown version": b"\x09" + message(text(0x42, "job-name", "x"))[1:],
    "value without an attribute": message(attr(0x42, "", b"orphan")),
    "end of collection never begun": message(attr(0x37, "", b"")),
    "collection never ended": message(attr(0x34, "media-col", b"")),
    "group tag in a collection": message(attr(0x34, "media-col", b""), group=0x02)[:-1] + b"\x02\x03",
    "named member in a collection": message(
        attr(0x34, "media-col", b""), text(0x42, "job-name", "x"), attr(0x37, "", b"")
    ),
    "extension tag": message(b"\x7f\x00\x00\x00\x00"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_malformed_messages_are_refused_with_ipp_error(name):
    with pytest.raises(IppError):
        parse_attributes(BROKEN[name])


def test_sizes_are_bounded():
    with pytest.raises(IppError, match="over"):
        parse_attributes(message(text(0x42, "job-name", "x" * 60000)) * (MAX_MESSAGE_BYTES // 60000 + 2))
    with pytest.raises(IppError, match="more than"):
        parse_attributes(message(integer("copies", 1) * (MAX_VALUES + 1)))
    assert len(parse_attributes(message(text(0x42, "job-name", "x" * 60000)))["job-name"][0]) == 1024


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 200))
def test_any_bytes_are_read_or_refused_never_crash(junk, cut):
    for data in (junk, control_file("u", "t", "p", "text/plain")[:cut] + junk, b"\x02\x00" + junk):
        try:
            parse_attributes(data)
        except IppError:
            pass
