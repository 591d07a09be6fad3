"""Files written out as text inside a text (agent/content/encoded.py): `base64 drawing.dwg >
notes.txt`, `xxd drawing.dwg`, a hex dump pasted into a chat. Before, such a text was read as
prose: its hash, chunks and text share nothing with the file, and the copy left unseen."""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import shutil
import subprocess
import zipfile

import pytest

from agent.content import encoded
from agent.content.archive import walk_carried
from agent.content.inspect import inspect_source

DRAWING = b"AC1032" + os.urandom(6000)


def _found(text: str) -> list[tuple[str, bytes]]:
    return [(c.kind, c.data) for c in encoded.carried(text)]


def _xxd(data: bytes) -> str:
    """`xxd`: offset, eight groups of two bytes, two spaces, the characters."""
    lines = []
    for at in range(0, len(data), 16):
        row = data[at : at + 16]
        groups = " ".join(row[i : i + 2].hex() for i in range(0, len(row), 2))
        chars = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"{at:08x}: {groups:<39}  {chars}")
    return "\n".join(lines) + "\n"


def _halves(data: bytes):
    """(offset, the row's bytes in two halves of eight, its characters) of each row of 16 bytes, as
    hexdump -C and certutil -encodehex lay them out."""
    for at in range(0, len(data), 16):
        pairs = [f"{b:02x}" for b in data[at : at + 16]]
        hexes = " ".join(pairs[:8]) + ("  " + " ".join(pairs[8:]) if len(pairs) > 8 else "")
        yield at, hexes, "".join(chr(b) if 32 <= b < 127 else "." for b in data[at : at + 16])


def _hexdump_c(data: bytes) -> str:
    """`hexdump -C -v`: offset, two halves of eight bytes, |characters|."""
    lines = [f"{at:08x}  {hexes:<48}  |{chars}|" for at, hexes, chars in _halves(data)]
    return "\n".join(lines) + f"\n{len(data):08x}\n"


def _od(data: bytes, offsets: bool) -> str:
    """`od -tx1 -v` (octal offsets) or `od -An -tx1 -v`."""
    lines = []
    for at in range(0, len(data), 16):
        row = " ".join(f"{b:02x}" for b in data[at : at + 16])
        lines.append(f"{at:07o} {row}" if offsets else f" {row}")
    return "\n".join(lines) + "\n"


def _certutil_hex(data: bytes) -> str:
    """Windows' `certutil -encodehex`: offset, two spaces, two halves of eight bytes, three spaces,
    the characters."""
    return "\r\n".join(f"{at:04x}  {hexes:<48}   {chars}" for at, hexes, chars in _halves(data)) + "\r\n"


def _xxd_i(data: bytes) -> str:
    body = ",\n".join("  " + ", ".join(f"0x{b:02x}" for b in data[at : at + 12]) for at in range(0, len(data), 12))
    return f"unsigned char pump_dwg[] = {{\n{body}\n}};\nunsigned int pump_dwg_len = {len(data)};\n"


@pytest.mark.parametrize(
    "form",
    [
        "base64 wrapped at 76", "PEM wrapped at 64", "base64 one line", "in a JSON string", "xxd -p", "bytes.hex()",
        "xxd", "hexdump -C", "certutil -encodehex", "od -tx1", "od -An -tx1", "xxd -i", "uuencode", "CRLF lines",
        "quoted in prose", "base64 -w 12", "HTML lines",
    ],
)  # fmt: skip
def test_each_common_way_of_writing_a_file_out_as_text_is_read_back_whole(form):
    b64 = base64.b64encode(DRAWING).decode()
    texts = {
        "base64 wrapped at 76": "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)) + "\n",
        "PEM wrapped at 64": "-----BEGIN DATA-----\n" + "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64)) + "\n-----END DATA-----\n",
        "base64 one line": b64,
        "in a JSON string": json.dumps({"name": "pump", "data": b64, "size": len(DRAWING)}),
        "xxd -p": "\n".join(DRAWING.hex()[i : i + 60] for i in range(0, 2 * len(DRAWING), 60)) + "\n",
        "bytes.hex()": "digest of the part follows: " + DRAWING.hex() + " (end)",
        "xxd": _xxd(DRAWING),
        "hexdump -C": _hexdump_c(DRAWING),
        "certutil -encodehex": _certutil_hex(DRAWING),
        "base64 -w 12": "\n".join(b64[i : i + 12] for i in range(0, len(b64), 12)) + "\n",
        "HTML lines": "\n\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)) + "\n",
        "od -tx1": _od(DRAWING, offsets=True),
        "od -An -tx1": _od(DRAWING, offsets=False),
        "xxd -i": _xxd_i(DRAWING),
        "uuencode": "begin 644 pump.dwg\n" + "".join(binascii.b2a_uu(DRAWING[i : i + 45]).decode("latin-1") for i in range(0, len(DRAWING), 45)) + "`\nend\n",
        "CRLF lines": "\r\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)) + "\r\n",
        "quoted in prose": "Hi Li,\n\nthe file, as you asked:\n\n" + "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)) + "\n\nregards\n",
    }  # fmt: skip
    found = list(encoded.carried(texts[form]))
    assert [c.data for c in found] == [DRAWING], form
    if form == "uuencode":
        assert found[0].name == "pump.dwg"


REPEATS = b"".join(
    [os.urandom(700), bytes(300), os.urandom(50), b"\xff" * 120, os.urandom(900), bytes(1000), os.urandom(33)] * 3
)  # runs of 32 equal bytes or more: the dumps' "*" lines


@pytest.mark.parametrize(
    "command",
    [
        ["hexdump", "-C"],
        ["od", "-tx1"],
        ["od", "-Ax", "-tx1"],
        ["od", "-Ad", "-tx1"],
        ["xxd", "-a"],
        ["xxd", "-g1", "-c", "32"],
    ],
)
def test_dumps_that_leave_repeated_lines_out_are_read_whole(command, tmp_path):
    """hexdump -C, od and xxd -a print "*" for lines that repeat the one before (without -v):
    the lines are put back from the offsets, in whatever base the dump writes them."""
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} missing (apt-get install xxd bsdextrautils)")
    (tmp_path / "part.bin").write_bytes(REPEATS)
    out = subprocess.run([*command, str(tmp_path / "part.bin")], capture_output=True, text=True, check=True).stdout
    assert [c.data for c in encoded.carried(out)] == [REPEATS], command


def _format_hex(data: bytes, powershell7: bool) -> str:
    """PowerShell's Format-Hex (as documented): 5.1 with an 8-digit offset and three spaces, 7 with
    a 16-digit one and one space; the characters one space after the bytes."""
    rows = ["", "           00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F", ""]
    for at in range(0, len(data), 16):
        row = data[at : at + 16]
        offset = f"{at:016X} " if powershell7 else f"{at:08X}   "
        chars = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        rows.append(offset + " ".join(f"{b:02X}" for b in row).ljust(48 if not powershell7 else 47) + " " + chars)
    return "\r\n".join(rows)


def test_windows_and_program_forms_are_read():
    """Forms a Windows user or a program writes: Format-Hex, BitConverter (one line, or 16 bytes a
    line), Python's hex(":"), a notebook's cell output ("...\\n", lines), a JSON string with its
    escapes (jq -Rs's \\n, PHP's \\/, .NET's \\u002B), base64url, a reply's "> " quoting."""
    b64 = base64.b64encode(DRAWING).decode()
    lines = [b64[i : i + 76] for i in range(0, len(b64), 76)]
    texts = {
        "Format-Hex 5.1": _format_hex(DRAWING, powershell7=False),
        "Format-Hex 7": _format_hex(DRAWING, powershell7=True),
        "BitConverter": "-".join(f"{b:02X}" for b in DRAWING),
        "BitConverter lines": "\r\n".join(
            "-".join(f"{b:02X}" for b in DRAWING[i : i + 16]) for i in range(0, len(DRAWING), 16)
        ),
        "hex(':')": "\n".join(DRAWING[i : i + 16].hex(":") for i in range(0, len(DRAWING), 16)),
        "notebook": json.dumps({"outputs": [{"text": [line + "\n" for line in lines]}]}, indent=1),
        "jq -Rs": json.dumps(base64.encodebytes(DRAWING).decode()),
        "PHP": json.dumps(b64).replace("/", "\\/"),
        ".NET": json.dumps(b64).replace("+", "\\u002B"),
        "base64url": base64.urlsafe_b64encode(DRAWING).decode(),
        "reply": "> see below\n>\n" + "".join(f"> {line}\n" for line in lines),
    }
    for form, text in texts.items():
        assert DRAWING in [c.data for c in encoded.carried(text)], form
    assert len(list(encoded.carried(texts["notebook"]))) == 1  # its lines, and the run they make once \n is read: one file


def test_prose_words_numbers_and_hashes_are_not_files():
    """What no file written out looks like: words, a long word of one case, a number, a short key.
    (A list of hashes is hex, and read: it costs a hash and a look, and matches nothing.)"""
    text = "\n".join(
        [
            "The pump impeller drawing was revised on 7 December.",
            "supercalifragilisticexpialidocious" * 4,  # one case only: no base64 of a file
            "1" * 120,  # digits only: a number, not a dump
            "QUMxMDMyIGRlbW8=",  # 10 bytes: a key, a token
            "A" * 200,  # one byte repeated
            "https://example.com/a/very/long/path/segment/that/goes/on/and/on/for/a/while/index.html",
        ]
    )
    assert _found(text) == []


def test_the_longest_blocks_are_read_first_so_decoys_cannot_push_a_drawing_out():
    decoys = [base64.b64encode(os.urandom(100)).decode() for _ in range(encoded.MAX_BLOCKS + 50)]
    text = "\n\n".join([*decoys, base64.b64encode(DRAWING).decode()])
    found = list(encoded.carried(text))
    assert len(found) == encoded.MAX_BLOCKS and found[0].data == DRAWING


def test_a_wrapped_block_ends_at_a_line_of_another_width_and_a_dump_at_a_gap():
    first, second = os.urandom(3000), os.urandom(2000)
    a, b = base64.b64encode(first).decode(), base64.b64encode(second).decode()
    text = (
        "\n".join(a[i : i + 76] for i in range(0, len(a), 76))
        + "\n"
        + "\n".join(b[i : i + 64] for i in range(0, len(b), 64))
    )
    assert sorted(c.data for c in encoded.carried(text)) == sorted([first, second])
    dumps = _xxd(first) + "\n" + _xxd(second)
    assert sorted(c.data for c in encoded.carried(dumps)) == sorted([first, second])


def test_hostile_texts_are_read_in_one_pass():
    """Runs one short of a run, lines one short of a block, thousands of begin lines, dump-like
    lines that never end: each line and run tried once (a quadratic search would take minutes)."""
    for text in (
        ("A1b" * 29 + " ") * 40_000,
        "Ab1/Ab1\n" * 200_000,
        "begin 644 x\n" * 100_000,
        ("0000000g: " + "4142 " * 7 + "zz\n") * 50_000,
        ("41 " * 3 + "\n") * 100_000,
    ):
        assert _found(text) == []


def test_a_zip_appended_to_a_text_does_not_stop_the_search():
    """`base64 d.dwg > n.txt; cat any.zip >> n.txt`: the zip is walked, and the text still read."""
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:
        z.writestr("readme.txt", "nothing here")
    found = inspect_source(io.BytesIO(base64.encodebytes(DRAWING) + packed.getvalue()), "n.txt")
    assert {m.name for m in found.members} == {"readme.txt", "(base64 1)"}


def test_base64_in_an_outlook_messages_body_is_read():
    from agent.content import olewrite

    body = "the drawing:\r\n" + base64.encodebytes(DRAWING).decode().replace("\n", "\r\n")
    found = inspect_source(io.BytesIO(olewrite.sample_msg("报价", body, {}, {})), "mail.msg")
    assert found.file_type == "msg" and [(m.name, m.size) for m in found.members] == [("(base64 1)", len(DRAWING))]


def test_a_hex_dump_of_a_large_file_is_read_past_the_extractions_count_of_lines(tmp_path):
    """A plain text's own bytes are searched: its extraction keeps 200,000 lines, and `xxd` of a
    4 MB drawing is 260,000."""
    big = os.urandom(4 * 1024 * 1024)
    text = "".join(
        f"{at:08x}: " + " ".join(big[at + i : at + i + 2].hex() for i in range(0, 16, 2)) + "  ................\n"
        for at in range(0, len(big), 16)
    )
    found = inspect_source(io.BytesIO(text.encode()), "dump.txt", max_seconds=60)
    assert [(m.name, m.size) for m in found.members] == [("(hex 1)", len(big))]


def test_a_text_file_of_base64_is_inspected_with_its_file_as_a_member():
    b64 = base64.b64encode(DRAWING).decode()
    found = inspect_source(
        io.BytesIO(("\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)) + "\n").encode()), "notes.txt"
    )
    assert [(m.name, m.size) for m in found.members] == [("(base64 1)", len(DRAWING))]


def test_a_document_written_out_carries_its_detections_and_text(tmp_path):
    """A docx marked 商业秘密 holding ID numbers, written out as base64: its member is a docx, read
    as one (its detections count for the text file; its text is fingerprinted for lineage)."""
    from tests.agent.content.makers import docx

    data = docx(tmp_path / "a.docx", ("商业秘密", "客户身份证号 11010519491231002X")).read_bytes()
    found = inspect_source(io.BytesIO(base64.encodebytes(data)), "readme.txt")
    assert [m.name for m in found.members] == ["(base64 1)"]
    assert {d.detector for d in found.detections} >= {"trade_secret_marking", "cn_resident_id"}
    assert found.members[0].fingerprints


def test_base64_inside_a_zipped_text_is_read_under_it_even_at_the_deepest_level():
    """An encoding is no archive level: a text at the deepest level read is still searched (a
    zipped HTML page's inline image was said too deep, a high alert), and the text's own
    problems are not the decoded file's (a log's cut-off base64 of a zip is no parse error)."""
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:
        z.writestr("notes/readme.txt", base64.encodebytes(DRAWING))
    found = inspect_source(io.BytesIO(packed.getvalue()), "notes.zip")
    assert [m.name for m in found.members] == ["notes/readme.txt", "notes/readme.txt!/(base64 1)"]
    assert found.members[1].depth == 1 and found.members[1].size == len(DRAWING)
    deep = packed.getvalue()
    for level in range(2):  # zip in zip in zip: the text at the deepest level read (3)
        outer = io.BytesIO()
        with zipfile.ZipFile(outer, "w") as z:
            z.writestr(f"level{level}.zip", deep)
        deep = outer.getvalue()
    found = inspect_source(io.BytesIO(deep), "deep.zip")
    assert found.members[-1].name == "level1.zip!/level0.zip!/notes/readme.txt!/(base64 1)", found.members
    assert found.members[-1].size == len(DRAWING) and found.detections == ()
    cut = io.BytesIO()
    with zipfile.ZipFile(cut, "w") as z:
        z.writestr("upload.bin", os.urandom(5000))
    log = "2026-12-07 upload started, first KB: " + base64.b64encode(cut.getvalue()[:1500]).decode() + "\n"
    found = inspect_source(io.BytesIO(log.encode()), "upload.log")
    assert [m.name for m in found.members] == ["(base64 1)"] and found.detections == ()


def test_a_file_written_out_twice_is_read_and_deeper_encodings_stop():
    twice = base64.encodebytes(base64.encodebytes(DRAWING))
    found = inspect_source(io.BytesIO(twice), "helm.yaml")
    assert found.members[-1].name == "(base64 1)!/(base64 1)" and found.members[-1].size == len(DRAWING)
    data = DRAWING
    for _ in range(encoded_levels() + 2):
        data = base64.encodebytes(data)
    found = inspect_source(io.BytesIO(data), "deep.txt")
    assert max(m.name.count("(base64") for m in found.members) == encoded_levels() + 1
    assert "archive_too_deep" in {d.detector for d in found.detections}  # the level not read is said


def encoded_levels() -> int:
    from agent.content.archive import MAX_ENCODED

    return MAX_ENCODED


def test_the_walk_of_a_text_is_bounded_by_its_clock():
    ticks = iter(range(1_000_000))
    listing = walk_carried(base64.encodebytes(DRAWING).decode() * 3, clock=lambda: next(ticks) * 100.0)
    assert {p.kind for p in listing.problems} & {"inspection_truncated", "archive_member_skipped"}


@pytest.mark.skipif(shutil.which("xxd") is None, reason="xxd missing (apt-get install xxd)")
def test_the_real_tools_output_is_read(tmp_path):
    """The tools themselves, where they are installed: xxd (canonical and plain), hexdump -C, od,
    base64, openssl base64."""
    (tmp_path / "pump.dwg").write_bytes(DRAWING)
    commands = [["xxd"], ["xxd", "-p"], ["xxd", "-i"], ["od", "-An", "-tx1", "-v"], ["base64"], ["hexdump", "-C", "-v"]]
    if shutil.which("openssl"):
        commands.append(["openssl", "base64", "-in"])
    for command in commands:
        if shutil.which(command[0]) is None:
            continue
        out = subprocess.run([*command, str(tmp_path / "pump.dwg")], capture_output=True, text=True, check=True).stdout
        assert [c.data for c in encoded.carried(out)] == [DRAWING], command


def test_a_dumps_offsets_cannot_make_its_repeated_lines_stand_for_gigabytes():
    """Found reading this machine's own files: a text with hexdump -C's lines, a "*" and then an
    offset near 4 GB rebuilt the line over again up to it, some 4 GB in memory from a few lines.
    What "*" lines stand for is bounded (encoded.DUMP_RATIO times the dump's own characters, at
    least DUMP_FLOOR_BYTES)."""
    import tracemalloc

    line = "00000000  41 43 31 30 33 32 20 70  75 6d 70 20 69 6d 70 65  |AC1032 pump impe|\n"
    second = "00000010  41 43 31 30 33 32 20 70  75 6d 70 20 69 6d 70 65  |AC1032 pump impe|\n"
    dump = line + second + "*\n" + "fffffff0  72 0a 0a 0a 0a 0a 0a 0a  0a 0a 0a 0a 0a 0a 0a 0a  |r...............|\nffffffff\n"
    tracemalloc.start()
    try:
        pieces = list(encoded.carried(dump))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert pieces and all(len(p.data) <= encoded.DUMP_FLOOR_BYTES + 16 for p in pieces)
    assert peak < 4 * encoded.DUMP_FLOOR_BYTES
