"""The file-server corpus (bench/fileserver) and its scoring: identifiers valid by construction,
controls invalid, a deterministic build whose manifest matches the files, and arithmetic that
counts a planted false positive. These tests check the yardstick, not the detectors: the figures
are printed (pytest -s), never asserted against the goals."""

from __future__ import annotations

import dataclasses
import hashlib
import random
import shutil
from collections import Counter

import pytest
from stdnum import luhn
from stdnum.cn import uscc as stdnum_uscc
from stdnum.iso7064 import mod_11_2

from bench.fileserver import build, evaluate, identifiers, report
from bench.fileserver.build import Label
from bench.fileserver.evaluate import Outcome


def test_generated_identifiers_pass_their_checks_and_controls_fail():
    rng = random.Random(1)
    for _ in range(500):
        rid = identifiers.resident_id(rng)
        assert mod_11_2.is_valid(rid) and rid[:6] in identifiers.AREA_CODES
        assert not mod_11_2.is_valid(identifiers.bad_resident_id(rng))
        code = identifiers.uscc(rng)
        assert stdnum_uscc.is_valid(code) and code[0] == "9" and code[2:8] in identifiers.AREA_CODES
        assert not stdnum_uscc.is_valid(identifiers.bad_uscc(rng))
        card = identifiers.bank_card(rng)
        assert luhn.is_valid(card) and any(card.startswith(p) and len(card) == n for p, n in identifiers.CARD_ISSUERS)
        assert not luhn.is_valid(identifiers.bad_bank_card(rng))
        assert identifiers.iccid(rng).startswith("8986") and luhn.is_valid(identifiers.iccid(rng))
        assert luhn.is_valid(identifiers.imei(rng)) and len(identifiers.imei(rng)) == 15


def test_historical_area_codes_are_in_the_table():
    """IDs keep the county that issued them: codes merged away or created late must be generated."""
    assert {"330102", "330103", "330108", "310115", "330803", "331021"} <= set(identifiers.AREA_CODES)


def _outcome(path: str, group: str, **kw) -> Outcome:
    label = Label(
        path,
        group,
        "x",
        "spec",
        "zh",
        "txt",
        ids=kw.pop("ids", {}),
        marking=kw.pop("marking", None),
        source=kw.pop("source", None),
        edit=kw.pop("edit", ""),
        kept=kw.pop("kept", None),
    )
    return Outcome(label, **kw)


def test_score_arithmetic_on_planted_outcomes():
    outcomes = [
        _outcome(
            "a",
            "classified",
            ids={"cn_resident_id": 10},
            detections={"cn_resident_id": 7},
            marking="trade",
        ),
        _outcome("b", "pii", ids={"cn_resident_id": 5}, detections={"cn_resident_id": 8}),  # 3 over
        _outcome("c", "peer", traced="a", how="partial"),  # a lineage false positive
        _outcome("d", "peer", detections={"trade_secret_marking": 1}),  # a marking false positive
        _outcome("e", "derived", source="a", edit="kept-50", kept=0.5, traced="a"),
        _outcome("f", "derived", source="a", edit="kept-50", kept=0.52, traced="b"),  # wrong source
        _outcome("g", "derived", source="a", edit="paste-1", kept=0.6),  # a paste: not in the >= 50% figure
        _outcome("h", "thirdparty", detections={"bank_card": 1}),
    ]
    s = evaluate.score(outcomes)
    ids = s["identifiers"]["cn_resident_id"]
    assert ids["identifiers"] == dict(tp=12, fp=3, fn=3, precision=0.8, recall=0.8)
    assert ids["files"]["tp"] == 2 and ids["files"]["fp"] == 0
    card = s["identifiers"]["bank_card"]["files"]
    assert (card["tp"], card["fp"], card["precision"]) == (0, 1, 0.0)
    assert s["markings"]["trade_secret_marking"]["files"] == dict(tp=0, fp=1, fn=1, precision=0.0, recall=0.0)
    assert s["lineage"]["by_edit"]["kept-50"] == dict(n=2, traced=1, wrong_source=1, recall=0.5)
    assert (s["lineage"]["recall_kept_half"], s["lineage"]["kept_half_n"]) == (0.5, 2)
    peer = s["negatives"]["peer"]
    assert (peer["n"], peer["lineage_fp"], peer["marking_fp"], peer["lineage_fp_rate"]) == (2, 1, 1, 0.5)
    assert s["negatives"]["thirdparty"]["identifier_fp"] == 1
    assert s["negatives"]["pii"]["identifier_fp"] == 1


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("fileserver") / "corpus"
    return build.build(root, seed=3, scale=0.1, third_party=30, convert=False, sdists=False)


def test_build_is_deterministic_and_labels_match_the_files(small, tmp_path):
    again = build.build(tmp_path / "again", seed=3, scale=0.1, third_party=30, convert=False, sdists=False)
    assert [x.path for x in again.labels] == [x.path for x in small.labels]
    assert again.labels == small.labels
    for label in small.labels:
        a, b = small.root / label.path, again.root / label.path
        assert a.is_file(), label.path
        assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest(), label.path
    groups = Counter(x.group for x in small.labels)
    assert {"classified", "own_public", "peer", "derived", "pii", "thirdparty"} <= set(groups)
    derived = [x for x in small.labels if x.group == "derived"]
    assert all((small.root / x.source).is_file() and x.source.startswith("server/ours/classified/") for x in derived)
    assert {"exact", "zipped", "gb18030", "kept-50", "kept-10"} <= {x.edit for x in derived}
    pii = [x for x in small.labels if x.group == "pii"]
    assert any(not x.ids for x in pii) and any(x.form == "csv-gb18030" and x.ids["cn_resident_id"] for x in pii)
    assert any(x.genre in ("policy", "nda", "news") and x.marking is None for x in small.labels)
    assert any(x.marking == "state" for x in small.labels)


def test_evaluator_counts_a_planted_false_positive(small, capsys):
    """A copy of our classified file filed among another firm's documents must count once as a
    lineage false positive (it is found by its SHA-256, whatever the detectors do), and a roster
    labelled as holding nothing must count every identifier reported as over-counted."""
    roster = next(x for x in small.labels if x.group == "classified" and x.genre == "roster")
    planted_dir = small.root / "server" / "donghai" / "planted"
    planted_dir.mkdir()
    shutil.copyfile(small.root / roster.path, planted_dir / "copy.bin")
    planted = Label(str((planted_dir / "copy.bin").relative_to(small.root)), "peer", "donghai", "roster", "zh", "bin")
    corpus = dataclasses.replace(small, labels=[*small.labels, planted])
    outcomes = evaluate.run(corpus)
    with_plant, without = evaluate.score(outcomes), evaluate.score(outcomes[:-1])
    assert outcomes[-1].traced == roster.path and outcomes[-1].how == "sha256"
    assert with_plant["negatives"]["peer"]["lineage_fp"] == without["negatives"]["peer"]["lineage_fp"] + 1
    assert with_plant["negatives"]["peer"]["n"] == without["negatives"]["peer"]["n"] + 1
    said = outcomes[-1].detections.get("cn_resident_id", 0)
    fp = (
        with_plant["identifiers"]["cn_resident_id"]["identifiers"]["fp"]
        - without["identifiers"]["cn_resident_id"]["identifiers"]["fp"]
    )
    assert fp == said
    total = sum(without["files"].values())
    assert total == len(small.labels) and sum(x["files"] for x in without["speed"].values()) == total
    with capsys.disabled():
        print("\n" + report.markdown(without, small.notes, 3, 0.1))
