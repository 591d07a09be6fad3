"""`miwei-agent scan` says what the running agent would do: the same corpus, written to an egress
folder the running agent watches and scanned offline, gives the same classification field for
field (exact, archive and partial lineage, detections, type, rules, severity, user).

Before, scan looked up the exact hash only: every zipped or edited classified file was "clean".
"""

from __future__ import annotations

import io
import json
import random
import shutil
import subprocess
import tarfile
import zipfile

import pytest

from tests.agent.content import makers
from tests.e2e.conftest import DRAWING
from tests.e2e.harness import BIN, Deployment, wait_for

pytestmark = pytest.mark.e2e

COMPARED = ("size", "sha256", "user", "level", "source_path", "register_entry", "match", "file_type", "type_mismatch",
            "detections", "rule_ids", "severity")


def _spec_text(seed: int, lines: int = 120) -> str:
    """A long technical document of its own (lineage needs text, not a template)."""
    rng = random.Random(seed)
    words = ["叶轮", "泵体", "公差", "热处理", "impeller", "casing", "tolerance", "bearing", "seal", "flange", "铸造", "试验"]
    return "\n".join(
        f"{i}. " + " ".join(rng.choice(words) + str(rng.randint(0, 9999)) for _ in range(12)) for i in range(lines)
    )


def _corpus(folder, spec: str) -> None:
    (folder / "holiday.jpg").write_bytes(DRAWING)  # exact, renamed
    with zipfile.ZipFile(folder / "photos.zip", "w", zipfile.ZIP_DEFLATED) as z:  # archive
        z.writestr("trip/readme.txt", "holiday photos")
        z.writestr("trip/impeller.dwg", DRAWING)
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:gz") as t:
        info = tarfile.TarInfo("backup/pump.dwg")
        info.size = len(DRAWING)
        t.addfile(info, io.BytesIO(DRAWING))
    (folder / "backup.tgz").write_bytes(tar.getvalue())
    kept = spec.splitlines()
    edited = kept[: len(kept) * 7 // 10] + ["新增 一段 修改 内容"] * 5  # 70% kept, then edited
    (folder / "notes.txt").write_text("\n".join(edited), encoding="utf-8")  # partial
    makers.docx(folder / "budget.docx")  # marked
    makers.docx(folder / "budget.pdf")  # a docx named .pdf
    (folder / "customers.csv").write_text(
        "姓名,身份证号,手机\n" + "".join(f"客户{i},11010519491231002X,1381234{i:04d}\n" for i in range(12)), encoding="utf-8"
    )
    (folder / "shopping.txt").write_text("milk, eggs, bread\n", encoding="utf-8")  # nothing
    if shutil.which("zip"):
        (folder / "plain.dwg").write_bytes(DRAWING)
        subprocess.run(["zip", "-q", "-j", "-P", "pw", str(folder / "locked.zip"), str(folder / "plain.dwg")], check=True)
        (folder / "plain.dwg").unlink()


def _fields(record: dict) -> dict:
    found = {k: record.get(k) for k in COMPARED}
    found["detections"] = sorted((d["detector"], d["count"], d["sample"]) for d in found["detections"] or [])
    found["rule_ids"] = sorted(found["rule_ids"] or [])
    if found["match"]:
        found["match"] = (found["match"]["method"], round(found["match"]["similarity"], 6))
    return found


def test_scan_and_the_running_agent_classify_a_corpus_the_same(tmp_path, classified):
    spec = _spec_text(7)
    (classified["formulas"] / "pump-spec.txt").write_text(spec, encoding="utf-8")
    usb = tmp_path / "usb"
    usb.mkdir()
    staging = tmp_path / "staging"
    staging.mkdir()
    _corpus(staging, spec)
    d = Deployment(
        tmp_path, [(classified["drawings"], "core", "Product drawings"), (classified["formulas"], "important", "Formulas")],
        egress_folders=[usb],
    )
    try:
        d.start_server()
        d.start_agent()
        names = sorted(p.name for p in staging.iterdir())
        for name in names:
            shutil.copyfile(staging / name, usb / name)
        events = wait_for(
            lambda: (found := d.all_pages("/api/v1/events", "events", type="egress.file")) and len(found) >= len(names) and found,
            60, 0.2, f"{len(names)} egress.file events",
        )
        reported = {e["path"]: _fields(e) for e in events}
        done = subprocess.run(
            [str(BIN / "miwei-agent"), "scan", "--json", str(usb), "-c", str(d.config)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        scanned = {r["path"]: _fields(r) for r in map(json.loads, done.stdout.splitlines())}
    finally:
        d.close()
    assert sorted(scanned) == sorted(reported) == sorted(str(usb / n) for n in names)
    for path in sorted(reported):
        assert scanned[path] == reported[path], path
    by_name = {p.rsplit("/", 1)[-1]: f for p, f in reported.items()}
    for name, found in sorted(by_name.items()):
        print(name, found["match"], found["level"], found["rule_ids"], found["severity"], [x[0] for x in found["detections"]])
    assert by_name["holiday.jpg"]["match"][0] == "exact" and by_name["holiday.jpg"]["type_mismatch"] in (True, None)
    assert by_name["photos.zip"]["match"][0] == "archive" and by_name["backup.tgz"]["match"][0] == "archive"
    assert by_name["notes.txt"]["match"][0] == "partial" and by_name["notes.txt"]["level"] == "important"
    assert by_name["budget.pdf"]["type_mismatch"] is True
    assert by_name["shopping.txt"]["rule_ids"] == []
