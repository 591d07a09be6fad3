"""The hashing helpers decide which heads the index needs without importing the text readers
(agent/hashpool.py may_hold_text): the same answer as agent.content.extract.may_have_text for
every head, random or made by the content tests' makers, or the index would skip a document's text."""

from __future__ import annotations

import random
import zipfile

from agent.content.extract import READERS, may_have_text
from agent.content.filetype import HEAD_BYTES
from agent.content.ole import SIGNATURE as OLE_SIGNATURE
from agent.hashpool import may_hold_text
from tests.agent.content import makers

KINDS = frozenset(READERS)
SIGNATURES = (
    b"%PDF-1.7\n",
    b"\r\n%PDF-1.4",
    b"PK\x03\x04",
    b"PK\x05\x06",
    OLE_SIGNATURE,
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"GIF89a",
    b"AC1032",
    b"AutoCAD Binary DXF\r\n",
    b"0\nSECTION\n2\nHEADER\n",
    b"\x7fELF",
    b"MZ",
    b"BM",
    b"\x1f\x8b\x08",
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!\x1a\x07",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"{\\rtf1",
    b"<?xml version",
)


def _heads(rng: random.Random, tmp_path) -> list[bytes]:
    heads = [b"", b"\0", b"a", b"\n" * HEAD_BYTES]
    words = "pump 第一段 impeller 客户名单 tolerance".split()
    for _ in range(300):
        body = rng.choice(
            [
                rng.randbytes(rng.randrange(1, HEAD_BYTES + 1)),
                " ".join(rng.choice(words) for _ in range(rng.randrange(1, 2000))).encode(
                    rng.choice(["utf-8", "gb18030", "utf-16"])
                ),
                bytes(
                    rng.choice(b"\t\n\r abcdefgh\x00\x01\x1b\x7f\x80\xe4\xb8") for _ in range(rng.randrange(1, 3000))
                ),
            ]
        )
        heads.append((rng.choice(SIGNATURES) + body if rng.random() < 0.5 else body)[:HEAD_BYTES])
        heads.append(rng.randbytes(257) + b"ustar" + body[:100])
    made = [
        makers.docx(tmp_path / "a.docx"),
        makers.xlsx(tmp_path / "a.xlsx"),
        makers.pptx(tmp_path / "a.pptx"),
        makers.odf(tmp_path / "a.odt", "odt"),
        makers.pdf(tmp_path / "a.pdf"),
        makers.write_zip(tmp_path / "a.zip", {"x.bin": b"\0" * 100}),
    ]
    with zipfile.ZipFile(tmp_path / "stored.zip", "w") as z:
        z.writestr("big.bin", rng.randbytes(3 * HEAD_BYTES))  # a head that ends before the central directory
    made.append(tmp_path / "stored.zip")
    for path in made:
        data = path.read_bytes()
        heads += [data[:HEAD_BYTES], data[: len(data) // 2][:HEAD_BYTES], data[:30]]
    return heads


def test_the_helpers_keep_exactly_the_heads_the_index_would_read(tmp_path):
    heads = _heads(random.Random(21), tmp_path)
    kept = [may_hold_text(h, KINDS) for h in heads]
    assert kept == [may_have_text(h) for h in heads]
    assert 0 < sum(kept) < len(heads), "both answers were compared"
    assert not may_have_text(b""), "the index takes an empty head (a binary's, from a helper) for no text"


def test_without_the_readers_kinds_no_head_may_hold_text(tmp_path):
    """The kinds come from the index (READERS): a helper given none keeps only zips and OLE files,
    whose text a head cannot rule out."""
    assert not may_hold_text(b"plain text " * 100, frozenset())
    assert may_hold_text(b"PK\x03\x04" + b"\0" * 100, frozenset())
