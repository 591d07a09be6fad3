"""A local header's name read by the ascii codec when it is ASCII (zipread._name): the name
zipfile's codec gives (cp437, or UTF-8 under flag 0x800) for any bytes, and _whole still reads
members whose names are not ASCII itself, in either codec.

Checked to fail with _name broken on purpose: every name taken as ASCII (a cp437 or UTF-8 name
is then not read by _whole); the flag's codec swapped (cp437 for flag 0x800)."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.content import zipread
from agent.content.budget import Collector


@settings(max_examples=500, deadline=None)
@given(raw=st.binary(max_size=12) | st.text(max_size=6).map(str.encode), flags=st.sampled_from([0, 0x800, 0x808]))
def test_a_name_reads_as_its_codec_reads_it(raw, flags):
    try:
        expected = raw.decode("utf-8" if flags & 0x800 else "cp437")
    except UnicodeDecodeError:
        with pytest.raises(UnicodeDecodeError):
            zipread._name(raw, flags)
        return
    assert zipread._name(raw, flags) == expected


def _zip(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, b"<p:sld/>" * 20)
    return buffer.getvalue()


def _cp437_zip(name: str) -> bytes:
    """A zip whose member's name is in cp437 (no flag 0x800), as an old zip tool writes it:
    zipfile writes a non-ASCII name in UTF-8, so an ASCII stand-in of the same length is
    written and its bytes replaced in both headers."""
    raw = name.encode("cp437")
    stand_in = "".join(c if c.isascii() else "Q" for c in name)
    assert len(stand_in.encode()) == len(raw)
    return _zip(stand_in).replace(stand_in.encode(), raw)


@pytest.mark.parametrize(
    "data, name",
    [
        (_zip("ppt/slides/slide1.xml"), "ppt/slides/slide1.xml"),
        (_zip("ppt/slides/幻灯片1.xml"), "ppt/slides/幻灯片1.xml"),
        (_cp437_zip("ppt/slides/slïde1.xml"), "ppt/slides/slïde1.xml"),
    ],
)
def test_members_of_any_name_are_read_whole(data, name):
    bounded = zipread.BoundedZip(io.BytesIO(data))
    (info,) = bounded.infos()
    assert info.orig_filename == name
    assert bounded._whole(info, Collector(1 << 20, 10.0), zipread.MAX_MEMBER_BYTES) == b"<p:sld/>" * 20
