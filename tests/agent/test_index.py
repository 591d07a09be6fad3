"""The fingerprint index: hashes once, re-hashes only what changed, survives restarts."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
import time

import pytest

from agent.config import ClassifiedFolder
from agent.content.inspect import file_fingerprints
from agent.content.winnow import fingerprints, normalise
from agent.hashing import Hasher
from agent.index import FingerprintIndex, SourceFile


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "drawings"
    (root / "sub").mkdir(parents=True)
    files = {
        root / "a.dwg": os.urandom(100_000),
        root / "b.dwg": os.urandom(50_000),
        root / "sub" / "c.txt": b"formula",
    }
    for path, data in files.items():
        path.write_bytes(data)
    return root, files


def _index(tmp_path, folders, hasher=None) -> FingerprintIndex:
    return FingerprintIndex(str(tmp_path / "state" / "index.db"), tuple(folders), hasher or Hasher())


def test_first_refresh_hashes_every_file(tmp_path, tree):
    root, files = tree
    index = _index(tmp_path, [ClassifiedFolder(str(root), "core", "Drawings")])
    stats = index.refresh()
    assert (stats.files, stats.hashed, stats.removed, stats.errors) == (3, 3, 0, 0)
    assert stats.bytes_hashed == sum(len(d) for d in files.values())
    row = index.lookup_sha256(hashlib.sha256(files[root / "a.dwg"]).hexdigest())
    assert row.path == str(root / "a.dwg") and row.level == "core" and row.entry == "Drawings"
    assert row.size == 100_000 and row.state == "current"
    assert index.get(str(root / "a.dwg")).inode == os.stat(root / "a.dwg").st_ino
    index.close()


def test_restart_rehashes_only_what_changed(tmp_path, tree):
    root, files = tree
    folders = [ClassifiedFolder(str(root), "core", "Drawings")]
    index = _index(tmp_path, folders)
    index.refresh()
    index.close()

    hasher = Hasher()  # a new process: counts only its own reads
    index = _index(tmp_path, folders, hasher)
    stats = index.refresh()
    assert (stats.hashed, hasher.bytes_read) == (0, 0), "an unchanged tree must not be read again"

    (root / "b.dwg").write_bytes(b"edited drawing")
    (root / "sub" / "c.txt").unlink()
    (root / "new.dwg").write_bytes(b"brand new")
    stats = index.refresh()
    assert stats.hashed == 2 and stats.removed == 1
    assert hasher.bytes_read == len(b"edited drawing") + len(b"brand new")
    assert index.count() == 3
    assert index.get(str(root / "sub" / "c.txt")) is None
    assert index.lookup_sha256(hashlib.sha256(b"formula").hexdigest()).state == "deleted"
    index.close()


def test_level_change_in_config_relabels_without_rehashing(tmp_path, tree):
    root, _ = tree
    index = _index(tmp_path, [ClassifiedFolder(str(root), "core", "Drawings")])
    index.refresh()
    index.close()
    hasher = Hasher()
    index = _index(tmp_path, [ClassifiedFolder(str(root), "important", "Drawings v2")], hasher)
    index.refresh()
    assert hasher.bytes_read == 0
    assert {index.get(str(p)).level for p in tree[1]} == {"important"}
    assert index.get(str(root / "a.dwg")).entry == "Drawings v2"
    index.close()


def test_nested_folder_entry_wins(tmp_path, tree):
    root, _ = tree
    index = _index(
        tmp_path,
        [ClassifiedFolder(str(root), "general", "All drawings"), ClassifiedFolder(str(root / "sub"), "core", "Formulas")],
    )
    index.refresh()
    assert index.get(str(root / "sub" / "c.txt")).level == "core"
    assert index.get(str(root / "a.dwg")).level == "general"
    index.close()


def test_non_utf8_names_and_moves_keep_their_rows(tmp_path, tree):
    root, files = tree
    raw_name = os.path.join(os.fsencode(root), b"\xb1\xa8\xb8\xe6.dwg")
    with open(raw_name, "wb") as f:
        f.write(b"gbk named drawing")
    index = _index(tmp_path, [ClassifiedFolder(str(root), "core", "")])
    index.refresh()
    name = os.fsdecode(raw_name)
    assert index.get(name).sha256 == hashlib.sha256(b"gbk named drawing").hexdigest()

    os.rename(root / "sub", root / "moved")
    index.move(str(root / "sub"), str(root / "moved"))
    assert index.get(str(root / "moved" / "c.txt")) is not None
    assert index.get(str(root / "sub" / "c.txt")) is None
    gone = index.remove_tree(str(root / "moved"))
    assert [r.path for r in gone] == [str(root / "moved" / "c.txt")]
    index.close()


def test_symlinks_and_fifos_are_not_indexed(tmp_path, tree):
    root, _ = tree
    os.symlink("/etc/passwd", root / "link.dwg")
    os.mkfifo(root / "pipe.dwg")
    index = _index(tmp_path, [ClassifiedFolder(str(root), "core", "")])
    stats = index.refresh()
    assert stats.files == 3
    assert index.get(str(root / "link.dwg")) is None and index.get(str(root / "pipe.dwg")) is None
    index.close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_in_place_edit_that_restores_mtime_is_rehashed(tmp_path, tree):
    root, files = tree
    index = _index(tmp_path, [ClassifiedFolder(str(root), "core", "Drawings")])
    index.refresh()
    path = root / "b.dwg"
    before = os.stat(path)
    edited = os.urandom(len(files[path]))  # same size, written in place: same inode
    with open(path, "r+b") as f:
        f.write(edited)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (os.stat(path).st_size, os.stat(path).st_mtime_ns, os.stat(path).st_ino) == (
        before.st_size, before.st_mtime_ns, before.st_ino,
    )
    stats = index.refresh()
    assert stats.hashed == 1
    assert index.get(str(path)).sha256 == _sha(edited)
    row, changed = index.update_file(str(path))
    assert (row.sha256, changed) == (_sha(edited), False)
    index.close()


def test_an_index_of_an_older_agent_opens_and_is_not_read_again(tmp_path, tree):
    root, _ = tree
    folders = [ClassifiedFolder(str(root), "core", "Drawings")]
    index = _index(tmp_path, folders)
    index.refresh()
    index.close()
    db = tmp_path / "state" / "index.db"
    with sqlite3.connect(db) as conn:  # as the agent before ctime was kept wrote it
        conn.execute("ALTER TABLE files DROP COLUMN ctime_ns")
        conn.execute("DROP TABLE history")
    conn.close()

    hasher = Hasher()
    index = _index(tmp_path, folders, hasher)
    stats = index.refresh()
    assert (stats.hashed, hasher.bytes_read) == (0, 0)
    assert index.get(str(root / "a.dwg")).ctime_ns == os.stat(root / "a.dwg").st_ctime_ns  # filled in
    index.close()


def test_deleted_and_edited_content_stays_traceable_across_restarts(tmp_path, tree):
    root, files = tree
    folders = [ClassifiedFolder(str(root), "core", "Drawings")]
    index = _index(tmp_path, folders)
    index.refresh()
    old_b = files[root / "b.dwg"]
    (root / "b.dwg").write_bytes(b"b, second version")
    index.update_file(str(root / "b.dwg"))  # as the pipeline does on a change
    (root / "a.dwg").unlink()
    index.refresh()  # a row the refresh drops
    index.remove_tree(str(root / "sub"))  # a folder removed while the agent watched
    index.close()

    index = _index(tmp_path, folders)
    assert index.lookup_sha256(_sha(old_b)) == SourceFile(str(root / "b.dwg"), "core", "Drawings", len(old_b), "previous-version")
    assert index.lookup_sha256(_sha(files[root / "a.dwg"])).state == "deleted"
    assert index.lookup_sha256(_sha(b"formula")) == SourceFile(str(root / "sub" / "c.txt"), "core", "Drawings", 7, "deleted")
    assert index.lookup_sha256(_sha(b"b, second version")).state == "current"
    index.close()


def test_history_is_kept_for_a_year_and_only_for_folders_still_classified(tmp_path, tree):
    root, files = tree
    index = _index(tmp_path, [ClassifiedFolder(str(root), "core", "Drawings")])
    index.refresh()
    index.remove_tree(str(root / "a.dwg"))
    assert index.purge_history(now=time.time() + 364 * 86400) == 0
    assert index.lookup_sha256(_sha(files[root / "a.dwg"])) is not None
    assert index.purge_history(now=time.time() + 366 * 86400) == 1
    assert index.lookup_sha256(_sha(files[root / "a.dwg"])) is None
    index.remove_tree(str(root / "b.dwg"))
    index.close()

    index = _index(tmp_path, [ClassifiedFolder(str(root / "sub"), "core", "Formulas")])  # drawings declassified
    index.refresh()
    assert index.lookup_sha256(_sha(files[root / "b.dwg"])) is None
    index.close()


def test_a_rename_over_an_indexed_file_keeps_the_replaced_version_traceable(tmp_path, tree):
    root, files = tree
    index = _index(tmp_path, [ClassifiedFolder(str(root), "core", "Drawings")])
    index.refresh()
    (root / "a.dwg.tmp").write_bytes(b"a, saved by an editor")
    index.update_file(str(root / "a.dwg.tmp"))
    os.rename(root / "a.dwg.tmp", root / "a.dwg")
    [moved] = index.move(str(root / "a.dwg.tmp"), str(root / "a.dwg"))
    assert moved.path == str(root / "a.dwg") and moved.sha256 == _sha(b"a, saved by an editor")
    assert index.lookup_sha256(_sha(files[root / "a.dwg"])).state == "previous-version"
    index.close()


def test_a_plain_rename_is_not_read_again(tmp_path, tree):
    root, _ = tree
    hasher = Hasher()
    index = _index(tmp_path, [ClassifiedFolder(str(root), "core", "Drawings")], hasher)
    index.refresh()
    read = hasher.bytes_read
    os.rename(root / "a.dwg", root / "a-renamed.dwg")  # changes the file's ctime on most file systems
    index.move(str(root / "a.dwg"), str(root / "a-renamed.dwg"))
    row, changed = index.update_file(str(root / "a-renamed.dwg"))
    assert (changed, hasher.bytes_read) == (False, read)
    assert row.ctime_ns == os.stat(root / "a-renamed.dwg").st_ctime_ns
    index.close()


# --- partial-copy lineage: winnowing fingerprints of classified text --------------------------


@pytest.fixture
def texts(tmp_path):
    """A classified folder of two documents (Chinese docx, English txt) and a drawing."""
    from tests.agent.content import lineage_corpus as corpus

    rng = random.Random(7)
    root = tmp_path / "process"
    root.mkdir()
    zh, en = corpus.document(rng, "zh", 6000), corpus.document(rng, "en", 6000)
    paths = {"zh": corpus.write(zh, root / "叶轮工艺", "docx"), "en": corpus.write(en, root / "impeller", "txt")}
    (root / "pump.dwg").write_bytes(b"AC1032" + os.urandom(20_000))
    return root, paths, {"zh": zh, "en": en}


def _copy_of(doc, share: float) -> str:
    """Most paragraphs of doc, the last first: a reordered partial copy as plain text."""
    kept = list(doc.paragraphs[: max(1, int(len(doc.paragraphs) * share))])
    return "\n".join(kept[-1:] + kept[:-1])


def test_a_partial_copy_is_traced_to_its_source_with_the_share_found(tmp_path, texts):
    root, paths, docs = texts
    index = _index(tmp_path, [ClassifiedFolder(str(root), "important", "Process")])
    index.refresh()
    for lang in ("zh", "en"):
        source, similarity = index.lookup_partial(fingerprints(_copy_of(docs[lang], 0.7)))
        assert source.path == str(paths[lang]) and source.level == "important" and source.state == "current"
        assert 0.4 < similarity < 1.0, similarity
    whole, similarity = index.lookup_partial(fingerprints("\n".join(docs["en"].paragraphs)))
    assert whole.path == str(paths["en"]) and similarity > 0.9
    # one whole paragraph (566 characters, 8% of the text, 7 fingerprints only it holds) is traced
    # by MIN_EVIDENCE_ALONE; a sentence or two of it is too little
    assert index.lookup_partial(fingerprints(_copy_of(docs["en"], 0.1)))[0].path == str(paths["en"])
    assert index.lookup_partial(fingerprints(docs["en"].paragraphs[0][:200])) is None
    assert index.lookup_partial(frozenset()) is None
    index.close()


def test_text_of_the_same_firm_but_not_copied_is_not_traced(tmp_path, texts):
    from tests.agent.content import lineage_corpus as corpus

    root, _, docs = texts
    index = _index(tmp_path, [ClassifiedFolder(str(root), "important", "Process")])
    index.refresh()
    rng = random.Random(8)
    for lang in ("zh", "en"):
        other = corpus.document(rng, lang, 6000)
        text = "\n".join((docs[lang].header, *other.paragraphs, docs[lang].footer))  # same boilerplate
        assert index.lookup_partial(fingerprints(text)) is None
    index.close()


def test_content_without_text_is_examined_once_and_stored_without_fingerprints(tmp_path, texts):
    root, paths, _ = texts
    examined = []

    def counting(path):
        examined.append(os.path.basename(path))
        return file_fingerprints(path)

    index = FingerprintIndex(str(tmp_path / "state" / "index.db"), (ClassifiedFolder(str(root), "core"),), fingerprint=counting)
    index.refresh()
    # the drawing's first bytes show a type without text: stored without fingerprints, not opened again
    assert sorted(examined) == sorted([paths["zh"].name, paths["en"].name])
    conn = index.db.conn()
    counts = dict(conn.execute("SELECT sha256, fingerprints FROM documents"))
    assert counts[_sha((root / "pump.dwg").read_bytes())] == 0
    assert counts[_sha(paths["en"].read_bytes())] > 20
    index.update_file(str(root / "pump.dwg"), force=True)  # re-hashed: same content
    shutil.copy(paths["en"], root / "copy.txt")  # same content under another name
    index.refresh()
    assert len(examined) == 2, "content already fingerprinted is not read again"
    index.close()


def test_fingerprints_follow_content_edits_and_are_collected_with_the_history(tmp_path, texts):
    root, paths, docs = texts
    index = _index(tmp_path, [ClassifiedFolder(str(root), "core", "Process")])
    index.refresh()
    from tests.agent.content import lineage_corpus as corpus

    old = fingerprints(_copy_of(docs["en"], 0.8))
    rewritten = "\n".join(corpus.document(random.Random(9), "en", 5000).paragraphs)
    paths["en"].write_text(rewritten, encoding="utf-8")
    index.update_file(str(paths["en"]), force=True)
    source, _ = index.lookup_partial(old)  # a copy of the old version: still traced
    assert source.path == str(paths["en"]) and source.state == "previous-version"
    assert index.lookup_partial(fingerprints(rewritten))[0].state == "current"
    conn = index.db.conn()
    before = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    assert index.purge_history(now=time.time() + 366 * 86400) == 1  # the old version is forgotten
    assert conn.execute("SELECT count(*) FROM documents").fetchone()[0] == before - 1
    assert conn.execute("SELECT count(*) FROM fingerprints WHERE doc NOT IN (SELECT id FROM documents)").fetchone()[0] == 0
    assert index.lookup_partial(old) is None
    index.close()


def test_an_index_without_fingerprints_is_fingerprinted_by_the_next_refresh(tmp_path, texts):
    root, paths, docs = texts
    folders = [ClassifiedFolder(str(root), "core", "Process")]
    index = _index(tmp_path, folders)
    index.refresh()
    index.close()
    db = tmp_path / "state" / "index.db"
    with sqlite3.connect(db) as conn:  # as an agent before lineage wrote it
        conn.execute("DROP TABLE documents")
        conn.execute("DROP TABLE fingerprints")
    conn.close()

    hasher = Hasher()
    index = _index(tmp_path, folders, hasher)
    assert index.lookup_partial(fingerprints(_copy_of(docs["zh"], 0.8))) is None
    stats = index.refresh()
    assert (stats.hashed, hasher.bytes_read) == (0, 0), "nothing is re-hashed"
    source, _ = index.lookup_partial(fingerprints(_copy_of(docs["zh"], 0.8)))
    assert source.path == str(paths["zh"])
    index.close()


def test_the_index_holds_no_text_of_the_documents(tmp_path, texts):
    root, _, docs = texts
    index = _index(tmp_path, [ClassifiedFolder(str(root), "core", "Process")])
    index.refresh()
    index.close()
    stored = b"".join(p.read_bytes() for p in (tmp_path / "state").iterdir() if p.name.startswith("index.db"))
    for doc in docs.values():
        for paragraph in doc.paragraphs[:5]:
            sentence = paragraph.split("。")[0] if doc.lang == "zh" else paragraph.split(". ")[0]
            for form in (sentence, normalise(sentence)):
                for encoding in ("utf-8", "utf-16-le", "gb18030"):
                    assert form.encode(encoding) not in stored


def test_a_document_edited_many_times_is_not_taken_for_boilerplate(tmp_path):
    """Its versions in the history share most fingerprints; only current content counts towards
    the boilerplate cap, so a copy of it is still traced after more edits than the cap."""
    from agent import index as module
    from tests.agent.content import lineage_corpus as corpus

    root = tmp_path / "specs"
    root.mkdir()
    rng = random.Random(12)
    doc = corpus.document(rng, "en", 8000)
    path = root / "spec.txt"
    index = _index(tmp_path, [ClassifiedFolder(str(root), "core", "Specs")])
    text = "\n".join(doc.paragraphs)
    for _save in range(module.DF_CAP_MIN + 5):
        text += "\n" + corpus.paragraph(rng, "en")  # each save adds a paragraph
        path.write_text(text, encoding="utf-8")
        index.update_file(str(path), force=True)
    assert index.history_count() == module.DF_CAP_MIN + 4
    source, similarity = index.lookup_partial(fingerprints(_copy_of(doc, 0.7)))
    assert source.path == str(path) and source.state == "current" and similarity > 0.3
    index.close()


def test_boilerplate_of_many_documents_neither_matches_nor_dilutes_a_match(tmp_path):
    from agent import index as module
    from tests.agent.content import lineage_corpus as corpus

    root = tmp_path / "process"
    root.mkdir()
    rng = random.Random(13)
    docs = [corpus.document(rng, "zh", rng.randint(1500, 3000)) for _ in range(module.DF_CAP_MIN + 10)]
    other_rng = random.Random(14)
    template = "\n".join(corpus.paragraph(other_rng, "zh") for _ in range(4))  # a long shared template
    for i, doc in enumerate(docs):
        (root / f"{i}.txt").write_text("\n".join((doc.header, template, *doc.paragraphs, doc.footer)), encoding="utf-8")
    index = _index(tmp_path, [ClassifiedFolder(str(root), "general", "Process")])
    index.refresh()
    other = corpus.document(rng, "zh", 3000)
    assert len(fingerprints(template)) >= 3
    assert index.lookup_partial(fingerprints("\n".join((other.header, template, *other.paragraphs, other.footer)))) is None
    whole = "\n".join((docs[3].header, template, *docs[3].paragraphs, docs[3].footer))
    source, similarity = index.lookup_partial(fingerprints(whole))
    assert source.path == str(root / "3.txt") and similarity == 1.0  # the template's share is left out
    index.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_three_short_bullets_pasted_into_a_mail_are_traced(tmp_path, lang, monkeypatch):
    """Slide bullets of one sentence (40-100 bytes) are shorter than the grams' guarantee: three of
    them pasted into a mail shared one fingerprint or none with their deck. Each is a line of its own
    in both, so the lines as anchors trace them; a competitor's deck of the same words does not."""
    import numpy as np

    from agent.content import winnow, winnow_fast
    from tests.agent.content import lineage_corpus as corpus

    rng = random.Random(11)
    root = tmp_path / "slides"
    root.mkdir()
    decks = [[corpus.sentence(rng, lang) for _ in range(16)] for _ in range(4)]
    for n, deck in enumerate(decks):
        (root / f"deck{n}.txt").write_text("\n".join(deck), encoding="utf-8")
    pasted = rng.sample(decks[2], 3)
    mail = [corpus.paragraph(rng, lang) for _ in range(5)]
    for bullet in pasted:
        mail.insert(rng.randint(0, len(mail)), bullet)
    competitor = "\n".join(corpus.sentence(rng, lang) for _ in range(16))

    index = _index(tmp_path, [ClassifiedFolder(str(root), "core", "Slides")])
    index.refresh()
    found = index.lookup_partial(fingerprints("\n".join(mail)))
    assert found is not None and found[0].path == str(root / "deck2.txt")
    assert index.lookup_partial(fingerprints(competitor)) is None
    index.close()

    monkeypatch.setattr(winnow, "line_anchors", lambda *a, **k: set())  # the grams alone: not traced
    monkeypatch.setattr(winnow_fast, "_line_hashes", lambda *a, **k: np.empty(0, dtype=np.uint64))  # its fast path
    index = _index(tmp_path / "grams", [ClassifiedFolder(str(root), "core", "Slides")])
    index.refresh()
    assert index.lookup_partial(fingerprints("\n".join(mail))) is None
    index.close()
