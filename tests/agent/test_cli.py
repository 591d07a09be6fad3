"""`miwei-agent index`, `scan`, `check-rules` and `status` as a user runs them."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from rules.loader import default_pack_sources
from rules.policy import default_policy

AGENT = str(Path(sys.executable).parent / "miwei-agent")
DRAWING_RULE = """\
- id: SITE-DRAWING-NAME
  title: A file named like a drawing written to an egress place
  category: classified-egress
  severity: medium
  when:
    type: egress.file
    extension: [dwg, dxf]
"""


@pytest.fixture
def setup(tmp_path):
    drawings = tmp_path / "drawings"
    drawings.mkdir()
    (drawings / "impeller.dwg").write_bytes(b"impeller " + os.urandom(300_000))
    (drawings / "housing.dwg").write_bytes(b"housing " + os.urandom(1000))
    config = tmp_path / "config.yaml"
    config.write_text(
        "agent:\n"
        "  server_url: http://127.0.0.1:9\n"
        "  enroll_secret: a-long-enough-secret-value\n"
        "  state_dir: ./state\n"
        "  classified:\n"
        "    - path: ./drawings\n"
        "      level: core\n"
        "      name: Drawings\n",
        encoding="utf-8",
    )
    return tmp_path, config, drawings


def _run(*args, config, cwd=None):
    config_args = ["-c", str(config)] if config else []
    return subprocess.run([AGENT, *args, *config_args], capture_output=True, text=True, timeout=60, cwd=cwd)


def _with_rules(config: Path, *paths: str) -> None:
    with open(config, "a", encoding="utf-8") as f:
        f.write(f"  rules: [{', '.join(paths)}]\n")


def test_index_builds_with_progress_then_rehashes_nothing(setup):
    root, config, _ = setup
    first = _run("index", config=config)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("indexed 2 files: 2 hashed")
    assert "hashing" in first.stderr and "100%" in first.stderr  # the progress bar
    second = _run("index", "--quiet", config=config)
    assert second.stdout.startswith("indexed 2 files: 0 hashed (0 bytes)")
    assert (root / "state" / "index.db").exists()


def test_scan_explains_a_renamed_copy_and_an_unknown_file(setup, tmp_path):
    root, config, drawings = setup
    _run("index", "--quiet", config=config)
    copy = tmp_path / "holiday.jpg"
    copy.write_bytes((drawings / "impeller.dwg").read_bytes())
    other = tmp_path / "notes.txt"
    other.write_bytes(b"shopping list")
    done = _run("scan", "--json", str(copy), str(other), config=config)
    assert done.returncode == 0, done.stderr
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert first["source_path"] == str(drawings / "impeller.dwg")
    assert first["level"] == "core" and first["severity"] == "critical"
    assert first["sha256"] == hashlib.sha256(copy.read_bytes()).hexdigest()
    assert second["level"] is None
    text = _run("scan", str(copy), config=config).stdout
    assert "exact copy of classified file" in text and str(drawings / "impeller.dwg") in text


def test_scan_of_missing_file_says_so_and_fails(setup, tmp_path):
    _, config, _ = setup
    done = _run("scan", str(tmp_path / "nope.txt"), config=config)
    assert done.returncode == 1
    assert "cannot read: No such file or directory" in done.stdout


def test_status_before_and_after_indexing(setup):
    root, config, _ = setup
    _run("index", "--quiet", config=config)
    done = _run("status", "--json", config=config)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["enrolled"] is False and status["spool_depth"] == 0 and status["indexed_files"] == 2
    assert status["classified"] == [{"path": str(root / "drawings"), "level": "core", "name": "Drawings"}]
    human = _run("status", config=config).stdout
    assert "enrolled:       no" in human and "indexed files:  2" in human


def test_scan_json_says_per_rule_what_matched_and_what_nearly_did(setup, tmp_path):
    root, config, drawings = setup
    (root / "site.yaml").write_text(DRAWING_RULE, encoding="utf-8")
    _with_rules(config, "./site.yaml")
    _run("index", "--quiet", config=config)
    copy = tmp_path / "holiday.jpg"
    copy.write_bytes((drawings / "impeller.dwg").read_bytes())
    done = _run("scan", "--json", str(copy), config=config)
    assert done.returncode == 0, done.stderr
    [result] = (json.loads(line) for line in done.stdout.splitlines())

    assert result["rule_ids"] == ["MW-EGRESS-CLASSIFIED"] and result["severity"] == "critical"
    assert result["policy_version"].startswith(default_policy().version + "+local.")
    assert result["matched"] == [
        {
            "rule_id": "MW-EGRESS-CLASSIFIED",
            "title": "Classified content written to an egress place",
            "category": "classified-egress",
            "severity": "critical",
        }
    ]
    near = {n["rule_id"]: n for n in result["near_misses"]}
    assert near["SITE-DRAWING-NAME"]["failed"] == [
        {
            "field": "extension",
            "value": "jpg",
            "shown": "jpg",
            "condition": "extension is one of dwg, dxf",
            "unless": False,
            "explanation": "extension = jpg (extension is one of dwg, dxf)",
        }
    ]
    assert near["MW-EGRESS-MARKED"]["failed"][0]["explanation"] == (
        "detections.trade_secret_marking = 0 (detections.trade_secret_marking ≥ 1)"
    )
    assert "MW-UNKNOWN-DEVICE" not in near, "a rule for another event type is not a near miss"

    text = _run("scan", str(copy), config=config).stdout.splitlines()
    assert "  matched      MW-EGRESS-CLASSIFIED (critical): Classified content written to an egress place" in text
    assert "  nearly       SITE-DRAWING-NAME: A file named like a drawing written to an egress place" in text
    assert "    failed:    extension = jpg (extension is one of dwg, dxf)" in text


def test_scan_refuses_to_run_with_broken_extra_rules(setup, tmp_path):
    root, config, _ = setup
    (root / "site.yaml").write_text(DRAWING_RULE.replace("extension:", "extention:"), encoding="utf-8")
    _with_rules(config, "./site.yaml")
    done = _run("scan", str(tmp_path), config=config)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{root / 'site.yaml'}:7:5: SITE-DRAWING-NAME.when.extention: unknown field 'extention' (did you mean 'extension'?)"
    ]


def test_status_shows_the_policy_in_force(setup):
    root, config, _ = setup
    status = json.loads(_run("status", "--json", config=config).stdout)
    assert (status["policy_version"], status["policy_source"]) == (default_policy().version, "default packs")
    assert "policy version: " + default_policy().version + " (default packs)" in _run("status", config=config).stdout


# --- check-rules --------------------------------------------------------------------------------

BROKEN_RULES = """\
- id: SITE-TXT
  title: Text files to USB
  category: classified-egress
  severity: hihg
  when:
    type: egress.file
    extention: txt
- title: no id
  category: classified-egress
  severity: low
  when: {type: egress.file}
"""
WARNED_RULES = """\
- id: SITE-BIG
  title: Big files anywhere
  category: site-custom
  severity: low
  when:
    size: {gte: 100MB}
"""
PACK_RULES = len(default_policy().ruleset.ids)


def test_check_rules_passes_the_packs_and_valid_files(setup):
    root, config, _ = setup
    (root / "site.yaml").write_text(DRAWING_RULE, encoding="utf-8")
    done = _run("check-rules", str(root / "site.yaml"), config=config)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"{PACK_RULES + 1} rules OK in {len(default_pack_sources()) + 1} files\n"  # the packs and site.yaml


def test_check_rules_prints_every_error_located_and_exits_2(setup):
    root, config, _ = setup
    (root / "broken.yaml").write_text(BROKEN_RULES, encoding="utf-8")
    (root / "empty").mkdir()
    done = _run("check-rules", str(root / "broken.yaml"), str(root / "missing.yaml"), str(root / "empty"), config=config)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{root / 'broken.yaml'}:4:13: SITE-TXT.severity: unknown severity 'hihg' (did you mean 'high'?)",
        f"{root / 'broken.yaml'}:7:5: SITE-TXT.when.extention: unknown field 'extention' (did you mean 'extension'?)",
        f"{root / 'broken.yaml'}:8:3: [1].id: required key is missing",
        f"{root / 'empty'}:0:0: no rule files in this folder (rule files end in .yaml or .yml)",
        f"{root / 'missing.yaml'}:0:0: cannot read file: No such file or directory",
    ]


def test_check_rules_with_warnings_only_exits_0(setup):
    root, config, _ = setup
    (root / "warned.yaml").write_text(WARNED_RULES, encoding="utf-8")
    done = _run("check-rules", str(root / "warned.yaml"), config=config)
    assert done.returncode == 0
    assert done.stderr.splitlines() == [
        f"warning: {root / 'warned.yaml'}:1:3: SITE-BIG.category: 'site-custom' is not a standard category "
        "(custom categories work, but no console view groups them)",
        f"warning: {root / 'warned.yaml'}:1:3: SITE-BIG.when: no 'type' condition: the rule is tested on every event "
        "(e.g. type: egress.file)",
    ]
    assert done.stdout == f"{PACK_RULES + 1} rules OK in {len(default_pack_sources()) + 1} files, 2 warnings\n"


def test_check_rules_checks_the_configs_extra_rules_too(setup):
    root, config, _ = setup
    rules_dir = root / "rules.d"
    rules_dir.mkdir()
    (rules_dir / "site.yaml").write_text(DRAWING_RULE, encoding="utf-8")
    (rules_dir / "clash.yml").write_text(DRAWING_RULE, encoding="utf-8")
    _with_rules(config, "./rules.d")
    done = _run("check-rules", config=config)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{rules_dir / 'site.yaml'}:1:3: SITE-DRAWING-NAME: duplicate rule id (first defined at {rules_dir / 'clash.yml'}:1)"
    ]
    (rules_dir / "clash.yml").unlink()
    done = _run("check-rules", config=config)
    assert (done.returncode, done.stdout) == (0, f"{PACK_RULES + 1} rules OK in {len(default_pack_sources()) + 1} files\n")


def test_check_rules_works_without_a_config_but_not_with_a_broken_one(tmp_path):
    (tmp_path / "site.yaml").write_text(DRAWING_RULE, encoding="utf-8")
    env_free = {k: v for k, v in os.environ.items() if k != "MIWEI_CONFIG"}
    done = subprocess.run([AGENT, "check-rules", "site.yaml"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env_free)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{PACK_RULES + 1} rules OK in {len(default_pack_sources()) + 1} files\n", "")
    (tmp_path / "config.yaml").write_text("agent:\n  server_url: nowhere\n", encoding="utf-8")
    done = subprocess.run([AGENT, "check-rules", "site.yaml"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env_free)
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == "./config.yaml:2:3: agent.enroll_secret: required key is missing (or set enroll_secret_file)"


def test_run_refuses_broken_extra_rules_before_creating_anything(setup):
    root, config, _ = setup
    (root / "site.yaml").write_text(DRAWING_RULE.replace("severity: medium", "severity: urgent"), encoding="utf-8")
    _with_rules(config, "./site.yaml")
    done = _run("run", config=config)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{root / 'site.yaml'}:4:13: SITE-DRAWING-NAME.severity: unknown severity 'urgent' (expected one of: by-level, critical, high, info, low, medium)"
    ]
    assert not (root / "state").exists(), "nothing may be created or started"


def test_scan_inspects_content_and_masks_what_it_finds(setup, tmp_path):
    _, config, _ = setup
    marked = tmp_path / "配方.txt"
    marked.write_text("商业秘密 严禁外传\n涂层配方 v7\n联系人手机 13812345678\n", encoding="gb18030")
    done = _run("scan", "--json", str(marked), config=config)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["file_type"] == "text" and result["type_mismatch"] is False
    found = {d["detector"]: d for d in result["detections"]}
    assert found["trade_secret_marking"]["count"] == 2
    assert found["cn_mobile"]["count"] == 1 and "13812345678" not in done.stdout
    assert [m["rule_id"] for m in result["matched"]] == ["MW-EGRESS-MARKED"]


def test_scan_traces_a_drawing_whose_bytes_were_edited(setup, tmp_path):
    """A file without text is traced by its bytes' chunks (byte lineage), not only by its exact
    bytes: a byte put in front, one changed, junk appended, a tenth cut off. A file of other
    random bytes the same size is traced to nothing."""
    root, config, drawings = setup
    assert _run("index", "--quiet", config=config).returncode == 0
    data = (drawings / "impeller.dwg").read_bytes()
    middle = len(data) // 2
    edits = {
        "prepended.bin": b"x" + data,
        "flipped.bin": data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :],
        "appended.bin": data + b"junk",
        "cut.bin": data[: len(data) * 9 // 10],
        "other.bin": os.urandom(len(data)),
    }
    for name, content in edits.items():
        (tmp_path / name).write_bytes(content)
    with tarfile.open(tmp_path / "packed.tar", "w") as tar:  # uncompressed: the edited drawing's bytes are in it
        tar.add(tmp_path / "flipped.bin", arcname="drawing.bin")
    edits["packed.tar"] = b""
    done = _run("scan", "--json", *(str(tmp_path / name) for name in edits), config=config)
    assert done.returncode == 0, done.stderr
    results = {Path(r["path"]).name: r for r in map(json.loads, done.stdout.splitlines())}
    for name in ("prepended.bin", "flipped.bin", "appended.bin", "cut.bin", "packed.tar"):
        found = results[name]
        assert found["source_path"] == str(drawings / "impeller.dwg"), name
        assert found["match"]["method"] == "partial" and found["match"]["similarity"] >= 0.8, (name, found["match"])
        assert found["level"] == "core" and found["severity"] == "critical", name
    assert results["other.bin"]["source_path"] is None and results["other.bin"]["match"] is None
    text = _run("scan", str(tmp_path / "prepended.bin"), config=config).stdout
    assert "edited copy (traced by its bytes) of classified file" in text and str(drawings / "impeller.dwg") in text


def test_scan_traces_an_edited_drawing_compressed_into_an_archive_by_its_members_bytes(setup, tmp_path):
    """A drawing that compresses (a zip's deflate rewrites all its bytes) edited and zipped, or
    xz'd into a tar, is traced through its member's sketch; beside an exact copy of a less secret
    file in the same zip, the drawing still speaks for the event."""
    root, config, drawings = setup
    rng = random.Random(5)
    drawing = bytes(rng.choice(range(0, 256, 8)) for _ in range(200_000))  # binary, varied, compressible (5 bits a byte)
    (drawings / "casing.dwg").write_bytes(drawing)
    memos = root / "memos"
    memos.mkdir()
    (memos / "note.bin").write_bytes(os.urandom(3000))
    with open(config, "a", encoding="utf-8") as f:
        f.write("    - path: ./memos\n      level: internal\n      name: Memos\n")
    assert _run("index", "--quiet", config=config).returncode == 0
    edited = b"x" + drawing[:100_000] + b"!" + drawing[100_001:]
    with zipfile.ZipFile(tmp_path / "drawing.zip", "w", zipfile.ZIP_DEFLATED) as packed:
        packed.writestr("notes/drawing.bin", edited)
        packed.write(memos / "note.bin", arcname="note.bin")
    with tarfile.open(tmp_path / "drawing.tar.xz", "w:xz") as tar:
        (tmp_path / "inner.bin").write_bytes(edited)
        tar.add(tmp_path / "inner.bin", arcname="inner.bin")
    done = _run("scan", "--json", str(tmp_path / "drawing.zip"), str(tmp_path / "drawing.tar.xz"), config=config)
    assert done.returncode == 0, done.stderr
    for found in map(json.loads, done.stdout.splitlines()):
        assert found["source_path"] == str(drawings / "casing.dwg"), found
        assert found["level"] == "core" and found["match"]["method"] == "partial" and found["match"]["similarity"] >= 0.9


def test_scan_traces_a_drawing_attached_to_a_saved_email_whole_or_edited_eml_or_msg(setup, tmp_path):
    """A classified drawing attached to a message saved from a mail client (.eml; base64, the
    name in RFC 2231 Chinese) is traced by the attachment's bytes, exact or edited, and so is one
    attached to a message forwarded inside an Outlook .msg; before, the .eml was read as text and
    the .msg for its properties, and the drawing never seen."""
    from email import policy
    from email.message import EmailMessage

    root, config, drawings = setup
    assert _run("index", "--quiet", config=config).returncode == 0
    data = (drawings / "impeller.dwg").read_bytes()
    for name, attached in {"whole.eml": data, "edited.eml": b"x" + data + b"junk"}.items():
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "zhang@example.cn", "buyer@other.example", "报价"
        message.set_content("请查收附件。")
        message.add_attachment(attached, maintype="application", subtype="octet-stream", filename="叶轮.dwg")
        (tmp_path / name).write_bytes(message.as_bytes(policy=policy.SMTP))
    from tests.agent.content.test_ole_msg import sample_msg  # as dragged out of Outlook

    (tmp_path / "outlook.msg").write_bytes(sample_msg(os.urandom(5000), b"x" + data))
    names = ("whole.eml", "edited.eml", "outlook.msg")
    done = _run("scan", "--json", *(str(tmp_path / name) for name in names), config=config)
    assert done.returncode == 0, done.stderr
    results = {Path(r["path"]).name: r for r in map(json.loads, done.stdout.splitlines())}
    for name, method, member in zip(names, ("archive", "partial", "partial"), ("叶轮.dwg", "叶轮.dwg", "fwd: 机密★5年 泵叶轮图纸!/spec.pdf"), strict=True):
        found = results[name]
        assert found["file_type"] == name[-3:] and found["source_path"] == str(drawings / "impeller.dwg"), (name, found)
        assert found["level"] == "core" and found["match"]["method"] == method, (name, found["match"])
        assert found["details"]["archive_member"] == member
    text = _run("scan", str(tmp_path / "whole.eml"), config=config).stdout
    assert "a saved email with a copy attached of classified file" in text, text


def test_scan_traces_a_drawing_or_document_written_out_as_base64_or_a_hex_dump(setup, tmp_path):
    """`base64 impeller.dwg > notes.txt`, `xxd` of it with a byte changed, and a classified
    specification base64-encoded then zipped: each traced through the file written out in its
    text; before, each was read as prose and matched nothing."""
    root, config, drawings = setup
    specs = root / "specs"
    specs.mkdir()
    spec = "\n".join(_process_spec(random.Random(7), 300)).encode("utf-8")
    (specs / "process.txt").write_bytes(spec)
    with open(config, "a", encoding="utf-8") as f:
        f.write("    - path: ./specs\n      level: core\n      name: Process specifications\n")
    assert _run("index", "--quiet", config=config).returncode == 0
    drawing = (drawings / "impeller.dwg").read_bytes()
    (tmp_path / "notes.txt").write_bytes(base64.encodebytes(drawing))
    edited = bytearray(drawing)
    edited[len(edited) // 2] ^= 0xFF
    (tmp_path / "dump.txt").write_text(subprocess.run(["od", "-An", "-tx1", "-v"], input=bytes(edited), capture_output=True, check=True).stdout.decode())
    with zipfile.ZipFile(tmp_path / "notes.zip", "w", zipfile.ZIP_DEFLATED) as packed:
        packed.writestr("readme.txt", b"see below\n\n" + base64.encodebytes(spec))
    names = ("notes.txt", "dump.txt", "notes.zip")
    done = _run("scan", "--json", *(str(tmp_path / name) for name in names), config=config)
    assert done.returncode == 0, done.stderr
    results = {Path(r["path"]).name: r for r in map(json.loads, done.stdout.splitlines())}
    expected = {
        "notes.txt": ("impeller.dwg", "archive", "(base64 1)"),
        "dump.txt": ("impeller.dwg", "partial", "(hex 1)"),
        "notes.zip": ("process.txt", "archive", "readme.txt!/(base64 1)"),
    }
    for name, (source, method, member) in expected.items():
        found = results[name]
        assert Path(found["source_path"]).name == source and found["level"] == "core", (name, found)
        assert found["match"]["method"] == method and found["details"]["archive_member"] == member, (name, found)
    text = _run("scan", str(tmp_path / "notes.txt"), str(tmp_path / "dump.txt"), config=config).stdout
    assert "is a copy written out as base64 text of classified file" in text, text
    assert "is an edited copy (traced by its bytes) written out as hex text of classified file" in text, text


def test_scan_traces_a_document_saved_as_a_web_page_or_as_rtf(setup, tmp_path):
    """A classified specification marked 商业秘密, saved as Word saves a web page (a span at every
    change of script) and as RTF (Word's GBK escapes, LibreOffice's and WordPad's \\u escapes):
    each traced to it by its text, its marking found. Before, all three were read as plain text
    with their tags and escapes: no marking and no trace."""
    from tests.agent.content.makers import libreoffice_rtf, word_page, word_rtf

    root, config, _ = setup
    specs = root / "specs"
    specs.mkdir()
    lines = ["商业秘密", *_process_spec(random.Random(11), 120)]
    (specs / "process.txt").write_text("\n".join(lines), encoding="utf-8")
    with open(config, "a", encoding="utf-8") as f:
        f.write("    - path: ./specs\n      level: core\n      name: Process specifications\n")
    assert _run("index", "--quiet", config=config).returncode == 0
    saved = {"spec.htm": word_page(lines), "spec.rtf": word_rtf(lines), "spec-wordpad.rtf": libreoffice_rtf(lines)}
    for name, data in saved.items():
        (tmp_path / name).write_bytes(data)
    done = _run("scan", "--json", *(str(tmp_path / name) for name in saved), config=config)
    assert done.returncode == 0, done.stderr
    for found in map(json.loads, done.stdout.splitlines()):
        assert Path(found["source_path"]).name == "process.txt" and found["level"] == "core", found
        assert found["match"]["method"] == "partial" and found["match"]["similarity"] > 0.9, found
        assert "trade_secret_marking" in {d["detector"] for d in found["detections"]}, found


def test_scan_traces_a_classified_file_embedded_in_an_office_document(setup, tmp_path):
    """A specification inserted into a memo as an object (an OLE Package in word/embeddings), a
    drawing inserted into a legacy .doc, a classified workbook embedded in a presentation, and the
    specification attached to a PDF: each traced through the embedded file; before, only the
    document's own text was read."""
    from agent.content import olewrite
    from tests.agent.content.makers import docx, pptx, xlsx

    root, config, drawings = setup
    specs = root / "specs"
    specs.mkdir()
    spec = "\n".join(_process_spec(random.Random(7), 300)).encode("utf-8")
    (specs / "process.txt").write_bytes(spec)
    book = xlsx(specs / "costs.xlsx").read_bytes()
    with open(config, "a", encoding="utf-8") as f:
        f.write("    - path: ./specs\n      level: core\n      name: Process specifications\n")
    assert _run("index", "--quiet", config=config).returncode == 0
    drawing = (drawings / "impeller.dwg").read_bytes()

    def package(label: str, data: bytes) -> bytes:
        return olewrite.compound_file({"\x01Ole10Native": olewrite.package(label, data), "\x01CompObj": bytes(24)})

    for name, base, members in (
        ("memo.docx", docx(tmp_path / "a.docx"), {"word/embeddings/oleObject1.bin": package("工艺.txt", spec)}),
        ("deck.pptx", pptx(tmp_path / "b.pptx"), {"ppt/embeddings/Microsoft_Excel_Worksheet.xlsx": book}),
    ):
        shutil.copy(base, tmp_path / name)
        with zipfile.ZipFile(tmp_path / name, "a", zipfile.ZIP_DEFLATED) as packed:
            for member, data in members.items():
                packed.writestr(member, data)
    (tmp_path / "memo.doc").write_bytes(olewrite.sample_doc(("见附件",), objects={"_1/\x01Ole10Native": olewrite.package("叶轮.dwg", drawing)}))
    from tests.agent.content.test_embedded import _pdf_with

    (tmp_path / "report.pdf").write_bytes(_pdf_with({"工艺.txt": spec}))
    names = ("memo.docx", "deck.pptx", "memo.doc", "report.pdf")
    done = _run("scan", "--json", *(str(tmp_path / name) for name in names), config=config)
    assert done.returncode == 0, done.stderr
    results = {Path(r["path"]).name: r for r in map(json.loads, done.stdout.splitlines())}
    expected = {
        "memo.docx": ("process.txt", "word/embeddings/oleObject1.bin!/工艺.txt"),
        "deck.pptx": ("costs.xlsx", "ppt/embeddings/Microsoft_Excel_Worksheet.xlsx"),
        "memo.doc": ("impeller.dwg", "ObjectPool/_1/叶轮.dwg"),
        "report.pdf": ("process.txt", "工艺.txt"),
    }
    for name, (source, member) in expected.items():
        found = results[name]
        assert Path(found["source_path"]).name == source and found["level"] == "core", (name, found)
        assert found["match"]["method"] == "archive" and found["details"]["archive_member"] == member, (name, found)


def _process_spec(rng: random.Random, lines: int) -> list[str]:
    """A classified process specification: numbered lines of varied technical text."""
    parts = ["叶轮", "泵壳", "导叶", "主轴", "密封环", "轴承座", "平衡盘", "蜗壳"]
    steps = ["铸造", "热处理", "粗加工", "精加工", "动平衡", "探伤", "装配", "试压"]
    return [
        f"{i}. {rng.choice(parts)}{rng.choice(steps)}：温度 {rng.randint(200, 1100)} 度，保温 {rng.randint(1, 12)} 小时，"
        f"公差 {rng.randint(1, 90)} 微米，批号 {rng.randint(10_000, 99_999)}，检验 {rng.choice(steps)}后记录。"
        for i in range(lines)
    ]


def test_scan_traces_an_edited_document_zipped_or_attached_to_a_saved_email_by_its_text(setup, tmp_path):
    """A classified text edited (lines changed, a heading added) then zipped, or attached to a
    message, is traced by its member's text as it is on its own; before, a document inside an
    archive or a message was traced by its exact bytes only."""
    from email import policy
    from email.message import EmailMessage

    root, config, _ = setup
    specs = root / "specs"
    specs.mkdir()
    lines = _process_spec(random.Random(7), 300)
    (specs / "process.txt").write_text("\n".join(lines), encoding="utf-8")
    with open(config, "a", encoding="utf-8") as f:
        f.write("    - path: ./specs\n      level: core\n      name: Process specifications\n")
    assert _run("index", "--quiet", config=config).returncode == 0
    edited = ["工艺说明（修订稿）", *lines[:100], *_process_spec(random.Random(8), 30), *lines[130:]]
    text = "\n".join(edited).encode("utf-8")
    with zipfile.ZipFile(tmp_path / "notes.zip", "w", zipfile.ZIP_DEFLATED) as packed:
        packed.writestr("notes/process-v2.txt", text)
        packed.writestr("photo.bin", os.urandom(5000))
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "zhang@example.cn", "buyer@other.example", "资料"
    message.set_content("请查收。")
    message.add_attachment(text, maintype="application", subtype="octet-stream", filename="工艺说明.txt")
    (tmp_path / "mail.eml").write_bytes(message.as_bytes(policy=policy.SMTP))
    done = _run("scan", "--json", str(tmp_path / "notes.zip"), str(tmp_path / "mail.eml"), config=config)
    assert done.returncode == 0, done.stderr
    results = {Path(r["path"]).name: r for r in map(json.loads, done.stdout.splitlines())}
    for name, member in (("notes.zip", "notes/process-v2.txt"), ("mail.eml", "工艺说明.txt")):
        found = results[name]
        assert found["source_path"] == str(specs / "process.txt") and found["level"] == "core", (name, found)
        assert found["match"]["method"] == "partial" and found["match"]["similarity"] >= 0.7, (name, found["match"])
        assert found["details"]["archive_member"] == member and "lineage" not in found["details"]
