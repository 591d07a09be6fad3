"""The index's sketches of classified content without text (byte lineage, agent/index.py)."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import tarfile

import numpy
import pytest

from agent.config import ClassifiedFolder
from agent.content import chunks
from agent.index import MIN_BYTES_SHARE, FingerprintIndex


def _hits(index: FingerprintIndex, data: bytes) -> list[int]:
    chunker = chunks.Chunker(index.prefilter().values)
    chunker.feed(data)
    return chunker.finish()[1]


@pytest.fixture
def drawings(tmp_path):
    folder = tmp_path / "drawings"
    folder.mkdir()
    index = FingerprintIndex(str(tmp_path / "index.db"), (ClassifiedFolder(str(folder), "core", "Drawings"),), hash_workers=1)
    yield folder, index
    index.close()


def test_a_refresh_sketches_drawings_but_not_texts_and_a_copy_is_traced(drawings):
    folder, index = drawings
    data = random.Random(1).randbytes(150_000)
    (folder / "pump.dwg").write_bytes(data)
    spec = "".join(f"Step {i}: the impeller of pump model P-{i * 37} is cast in bronze alloy C{i * 13 % 997}.\n" for i in range(120))
    (folder / "spec.txt").write_text(spec, encoding="utf-8")  # a text of many fingerprints: not sketched
    index.refresh()
    conn = index.db.conn()
    assert conn.execute("SELECT count(*) FROM sketches").fetchone()[0] == 1
    assert len(index.prefilter()) == conn.execute("SELECT chunks FROM sketches").fetchone()[0] > 50
    source, share = index.lookup_bytes(_hits(index, b"prefix" + data[:-10]))
    assert source.path == str(folder / "pump.dwg") and source.state == "current" and share > 0.95
    assert index.lookup_bytes(_hits(index, os.urandom(150_000))) is None
    assert index.refresh().hashed == 0 and conn.execute("SELECT count(*) FROM sketches").fetchone()[0] == 1


def test_a_file_holding_too_little_of_a_drawing_is_not_traced(drawings):
    folder, index = drawings
    data = random.Random(2).randbytes(400_000)
    (folder / "model.bin").write_bytes(data)
    index.refresh()
    sketch = index.db.conn().execute("SELECT chunks FROM sketches").fetchone()[0]
    tenth = data[100_000:140_000]  # a tenth of it: some 10% of its sketch
    candidates = index.byte_candidates(_hits(index, tenth))
    assert candidates and all(c.matched / sketch < MIN_BYTES_SHARE for c in candidates)
    assert index.lookup_bytes(_hits(index, tenth)) is None
    half = data[:200_000]
    assert index.lookup_bytes(_hits(index, half)) is not None


def test_an_edited_copy_of_a_deleted_drawing_is_traced_until_the_history_forgets_it(drawings):
    folder, index = drawings
    data = random.Random(3).randbytes(100_000)
    (folder / "gear.dwg").write_bytes(data)
    index.refresh()
    (folder / "gear.dwg").unlink()
    index.refresh()
    source, _ = index.lookup_bytes(_hits(index, data + b"!"))
    assert source.state == "deleted"
    index.history_keep_s = 0
    index.purge_history(now=10**12)
    conn = index.db.conn()
    assert conn.execute("SELECT count(*) FROM sketches").fetchone()[0] == 0
    assert len(index.prefilter()) == 0 and index.lookup_bytes(_hits(index, data + b"!")) is None


def test_a_drawing_saved_while_the_agent_runs_is_sketched_and_looked_for_at_once(drawings):
    folder, index = drawings
    index.refresh()
    assert len(index.prefilter()) == 0
    data = random.Random(5).randbytes(80_000)
    path = folder / "new.dwg"
    path.write_bytes(data)
    index.update_file(str(path), force=True)
    assert len(index.prefilter()) > 20  # not after PREFILTER_TTL_S: the index that stored it knows
    assert index.lookup_bytes(_hits(index, b"\0" + data)) is not None


def test_chunks_every_current_drawing_holds_are_boilerplate(drawings):
    """A template's bytes in every drawing of the register (beyond the cap) count neither for nor
    against one: a file holding only the template is traced to none, an edited drawing still is."""
    folder, index = drawings
    template = random.Random(6).randbytes(60_000)
    for i in range(12):
        (folder / f"d{i}.dwg").write_bytes(template + random.Random(100 + i).randbytes(60_000))
    index.refresh()
    assert index.lookup_bytes(_hits(index, template + os.urandom(60_000))) is None
    drawing = (folder / "d3.dwg").read_bytes()
    source, share = index.lookup_bytes(_hits(index, drawing[:-5] + b"xxxxx"))
    assert source.path == str(folder / "d3.dwg") and share > 0.9


def test_an_older_index_gets_its_drawings_sketched_by_the_next_refresh(drawings, tmp_path):
    folder, index = drawings
    data = random.Random(7).randbytes(90_000)
    (folder / "old.dwg").write_bytes(data)
    index.refresh()
    conn = index.db.conn()
    with conn:  # as an agent before byte lineage left it: the documents row, no sketch
        conn.execute("DELETE FROM sketches")
    index._prefilter = None
    assert index.lookup_bytes(_hits(index, data + b"x")) is None
    index.refresh()
    assert index.lookup_bytes(_hits(index, data + b"x")) is not None


def test_another_process_adding_a_sketch_is_seen_after_the_prefilters_ttl(drawings, monkeypatch):
    folder, index = drawings
    index.refresh()
    assert len(index.prefilter()) == 0
    data = random.Random(8).randbytes(60_000)
    (folder / "other.dwg").write_bytes(data)
    other = FingerprintIndex(index.db.path, index.folders, hash_workers=1)  # e.g. `miwei-agent index`
    other.refresh()
    other.close()
    assert len(index.prefilter()) == 0  # trusted for PREFILTER_TTL_S
    monkeypatch.setattr("agent.index.PREFILTER_TTL_S", 0.0)
    assert len(index.prefilter()) > 10


def test_the_prefilter_holds_every_sketch_sorted_with_its_holders(drawings):
    folder, index = drawings
    shared = random.Random(99).randbytes(20_000)  # in two of them: its chunks are there twice
    for i in range(3):
        (folder / f"p{i}.bin").write_bytes(random.Random(i).randbytes(30_000) + (shared if i < 2 else b""))
    index.refresh()
    prefilter = index.prefilter()
    values = prefilter.values
    assert values.itemsize == 8 and list(values) == sorted(values)
    stored = {}
    for sketch, hashes in sqlite3.connect(index.db.path).execute("SELECT id, hashes FROM sketches"):
        for h in numpy.frombuffer(hashes, dtype="<u8").tolist():
            stored.setdefault(h, []).append(sketch)
    assert sorted(int(v) for v in values) == sorted(h for h, ids in stored.items() for _ in ids)
    assert all(sorted(prefilter.holders(h)) == sorted(ids) for h, ids in stored.items())
    assert sum(len(ids) == 2 for ids in stored.values()) >= 10 and prefilter.holders(12345) == []


def test_the_prefilter_and_a_look_up_leave_numpy_unimported(drawings, tmp_path):
    """numpy, imported in the agent, starts a thread that took some 30 µs of CPU a file of a
    burst: the agent's byte lineage does without it."""
    folder, index = drawings
    (folder / "n.bin").write_bytes(random.Random(11).randbytes(40_000))
    index.refresh()
    said = _in_a_new_agent(
        "",
        f"index = FingerprintIndex({index.db.path!r}, (ClassifiedFolder({str(folder)!r}, 'core', 'D'),), hash_workers=1)\n"
        "prefilter = index.prefilter()\n"
        "chunker = chunks.Chunker(prefilter.values)\n"
        f"chunker.feed(open({str(folder / 'n.bin')!r}, 'rb').read())\n"
        "assert index.lookup_bytes(chunker.finish()[1]) is not None\n"
        "print('numpy' in sys.modules)\n",
    )
    assert said == "False"


def _in_a_new_agent(before: str, code: str) -> str:
    """What `code` prints in a fresh interpreter that imported the index as the agent does
    (`before` runs first)."""
    script = "import sys\n" + before + (
        "from agent.config import ClassifiedFolder\n"
        "from agent.content import chunks\n"
        "from agent.index import FingerprintIndex\n"
    ) + code
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=os.getcwd())
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_damaged_sketch_is_left_out_of_the_prefilter_not_fatal(drawings):
    folder, index = drawings
    data = random.Random(12).randbytes(50_000)
    (folder / "a.bin").write_bytes(data)
    (folder / "b.bin").write_bytes(random.Random(13).randbytes(50_000))
    index.refresh()
    conn = index.db.conn()
    damaged = index.get(str(folder / "b.bin")).sha256
    with conn:
        assert conn.execute("UPDATE sketches SET hashes = x'0102030405' WHERE sha256 = ?", (damaged,)).rowcount == 1
    index._prefilter = None
    assert index.lookup_bytes(_hits(index, b"x" + data)) is not None


def test_a_copy_of_one_of_a_drawings_revisions_side_by_side_is_traced_to_it(drawings):
    """Revisions A-D of one drawing in its folder share most chunks; a copy of D (a byte put in
    front) is still traced, to D, though each chunk is in four sketches, and so is its first half
    (to whichever revision it holds the most of: C's first half may be D's)."""
    folder, index = drawings
    data = bytearray(random.Random(14).randbytes(200_000))
    revisions = {}
    for rev in "ABCD":
        for spot in random.Random(rev).sample(range(len(data)), 3):
            data[spot] ^= 0xFF
        revisions[rev] = bytes(data)
        (folder / f"valve-{rev}.dwg").write_bytes(revisions[rev])
    index.refresh()
    source, share = index.lookup_bytes(_hits(index, b"x" + revisions["D"]))
    assert source.path == str(folder / "valve-D.dwg") and share > 0.9
    source, share = index.lookup_bytes(_hits(index, revisions["D"][:100_000]))
    assert source.path.startswith(str(folder / "valve-")) and share >= 0.4


def test_an_edited_drawing_behind_or_beside_a_less_secret_file_is_reported_as_the_drawing(tmp_path):
    """A core drawing put behind an internal memo's text, or tarred with the memo itself, was
    reported as the memo (internal, low): the most sensitive source speaks for the event."""
    from agent.classify import content_fields
    from agent.content.inspect import inspect_file
    from agent.hashing import Hasher

    drawings, memos = tmp_path / "drawings", tmp_path / "memos"
    drawings.mkdir()
    memos.mkdir()
    drawing = random.Random(15).randbytes(150_000)
    (drawings / "impeller.dwg").write_bytes(drawing)
    memo = "".join(f"Canteen menu for week {i}: noodles, rice, dumplings and soup of the day {i * 7}.\n" for i in range(60))
    (memos / "canteen.txt").write_text(memo, encoding="utf-8")
    folders = (ClassifiedFolder(str(drawings), "core", "Drawings"), ClassifiedFolder(str(memos), "internal", "Memos"))
    index = FingerprintIndex(str(tmp_path / "index.db"), folders, hash_workers=1)
    index.refresh()
    behind = tmp_path / "memo_then_drawing.txt"
    behind.write_bytes(memo.encode() + b"x" + drawing)
    edited = tmp_path / "drawing.bin"
    edited.write_bytes(b"x" + drawing)
    bundle = tmp_path / "bundle.tar"
    with tarfile.open(bundle, "w") as tar:
        tar.add(memos / "canteen.txt", arcname="canteen.txt")
        tar.add(edited, arcname="drawing.bin")
    for path in (behind, bundle):
        data = path.read_bytes()
        fields = content_fields(index, Hasher().digest(str(path)), inspect_file(str(path)), chunk_hits=_hits(index, data))
        assert fields["level"] == "core" and fields["source_path"] == str(drawings / "impeller.dwg"), path.name
        assert fields["match"].method == "partial" and fields["details"]["lineage"] == "bytes", path.name
    plain = memos / "canteen.txt"  # the memo alone is still the memo, exactly
    fields = content_fields(index, Hasher().digest(str(plain)), inspect_file(str(plain)), chunk_hits=_hits(index, plain.read_bytes()))
    assert fields["level"] == "internal" and fields["match"].method == "exact"
    index.close()


def test_a_folder_dropped_from_the_config_takes_its_sketches_with_it(tmp_path):
    kept, dropped = tmp_path / "kept", tmp_path / "dropped"
    kept.mkdir()
    dropped.mkdir()
    (kept / "a.dwg").write_bytes(random.Random(16).randbytes(40_000))
    (dropped / "b.dwg").write_bytes(random.Random(17).randbytes(40_000))
    both = (ClassifiedFolder(str(kept), "core", "K"), ClassifiedFolder(str(dropped), "core", "D"))
    index = FingerprintIndex(str(tmp_path / "index.db"), both, hash_workers=1)
    index.refresh()
    index.close()
    index = FingerprintIndex(str(tmp_path / "index.db"), both[:1], hash_workers=1)
    index.refresh()
    conn = index.db.conn()
    assert conn.execute("SELECT count(*) FROM sketches").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM documents").fetchone()[0] == 1
    index.close()


def test_a_lookup_during_a_refresh_never_caches_a_prefilter_without_its_sketches(drawings, monkeypatch):
    """The refresh's sketches are committed with its last batch: a prefilter another thread read
    before then (the pipeline's, from the committed state) is not kept for PREFILTER_TTL_S after
    the refresh (drawings went untraced for 5 s after a build)."""
    import threading

    import agent.index

    folder, index = drawings
    for i in range(5):
        (folder / f"d{i}.dwg").write_bytes(random.Random(20 + i).randbytes(40_000))
    commit = agent.index._Bulk.commit

    def commit_after_a_lookup(bulk):
        looker = threading.Thread(target=index.prefilter)  # another thread: sees committed rows only
        looker.start()
        looker.join()
        commit(bulk)

    monkeypatch.setattr(agent.index._Bulk, "commit", commit_after_a_lookup)
    index.refresh()
    assert len(index.prefilter()) > 100


def test_a_cad_file_in_ole2_format_whose_only_text_is_its_properties_is_sketched_too(drawings):
    """Inventor, SolidWorks (to 2014) and Solid Edge files are OLE2: the index reads their
    summary properties as text (a few fingerprints), and so never sketched them; a copy with a
    byte put in front, or its body alone, went untraced."""
    from agent.content import olewrite
    from tests.agent.content.test_ole_properties import SUMMARY_FMTID, VT_LPSTR, property_set

    folder, index = drawings
    body = random.Random(18).randbytes(300_000)
    props = [(2, VT_LPSTR, "Impeller housing, second stage"), (3, VT_LPSTR, "Pump assembly P-200"), (4, VT_LPSTR, "Wang Lei")]
    part = olewrite.compound_file({"\x05SummaryInformation": property_set(SUMMARY_FMTID, props), "Contents": body})
    (folder / "housing.ipt").write_bytes(part)
    index.refresh()
    for copy in (b"x" + part, body):
        found = index.lookup_bytes(_hits(index, copy))
        assert found is not None and found[0].path == str(folder / "housing.ipt")


def test_a_large_prefilter_is_sorted_again_at_most_once_a_minute(drawings, monkeypatch):
    folder, index = drawings
    (folder / "first.dwg").write_bytes(random.Random(30).randbytes(60_000))
    index.refresh()
    monkeypatch.setattr("agent.index.PREFILTER_QUICK", 10)  # this one counts as large
    before = len(index.prefilter())
    assert before > 10
    (folder / "second.dwg").write_bytes(random.Random(31).randbytes(60_000))
    index.update_file(str(folder / "second.dwg"), force=True)
    assert len(index.prefilter()) == before  # not sorted again within PREFILTER_REBUILD_S
    monkeypatch.setattr("agent.index.PREFILTER_REBUILD_S", 0.0)
    monkeypatch.setattr("agent.index.PREFILTER_TTL_S", 0.0)
    assert len(index.prefilter()) > before


def test_without_the_c_extension_byte_lineage_is_off_and_the_index_still_builds(drawings):
    """The Python reference chunks some 3 MB a second: an agent without agent.content._chunks
    (the aarch64 and Windows wheels) sketches nothing rather than spend seconds a drawing."""
    folder, _ = drawings
    (folder / "d.dwg").write_bytes(random.Random(40).randbytes(60_000))
    said = _in_a_new_agent(
        "sys.modules['agent.content._chunks'] = None  # as where it was not built\n",
        "assert not chunks.NATIVE\n"
        f"index = FingerprintIndex({str(folder.parent / 'pure.db')!r}, (ClassifiedFolder({str(folder)!r}, 'core', 'D'),))\n"
        "stats = index.refresh()\n"
        "print(stats.hashed, index.db.conn().execute('SELECT count(*) FROM sketches').fetchone()[0], len(index.prefilter()))\n",
    )
    assert said.split() == ["1", "0", "0"]
