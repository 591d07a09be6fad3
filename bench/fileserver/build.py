"""Lay out the file server, derive our firm's copies, and label every file (manifest.json).

root/server/<firm>/classified/  our firm's secret register (indexed); other firms keep theirs in
                                server/<firm>/ and are never indexed: the same-genre negatives
root/server/ours/public/        our firm's unclassified documents (policies, NDAs, news, datasheets)
root/outgoing/                  derived copies of our classified documents
root/pii/                       identifier files in every storage form, controls included
root/thirdparty/                real files from this machine
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

from bench.fileserver import genres, identifiers, pii, thirdparty, writers
from bench.fileserver.genres import FIRMS, Doc, Firm
from tests.agent.content.lineage_corpus import _edited, paragraph

FORMATS = {
    "spec": ("docx", "docx", "pdf", "txt"),
    "drawings": ("xlsx",),
    "contract": ("docx", "pdf", "docx"),
    "quotation": ("xlsx", "docx", "pdf"),
    "code": ("py",),
    "slides": ("pptx",),
    "minutes": ("docx", "txt"),
    "policy": ("docx", "pdf"),
    "nda": ("docx",),
    "news": ("txt", "docx", "pdf"),
    "roster": ("xlsx", "csv"),
    "customers": ("xlsx", "csv"),
    "state_secret": ("docx", "pdf"),
}
OURS = {"spec": 16, "drawings": 8, "contract": 12, "quotation": 16, "code": 6, "slides": 6, "minutes": 10}
PUBLIC = {"policy": 2, "nda": 3, "news": 4, "spec": 4}  # ours, unclassified (datasheets: specs without marks)
PEER = {
    "spec": 10,
    "drawings": 5,
    "contract": 8,
    "quotation": 10,
    "code": 3,
    "slides": 4,
    "minutes": 6,
    "policy": 1,
    "nda": 2,
    "news": 2,
}
ENGLISH = ("spec", "contract", "quotation", "slides", "minutes", "nda")
KEPT = (1.0, 0.75, 0.5, 0.3, 0.1)
LEGACY = {".docx": "doc", ".xlsx": "xls", ".pptx": "ppt"}


@dataclass(frozen=True)
class Label:
    path: str  # relative to the corpus root
    group: str  # classified | own_public | peer | derived | pii | thirdparty
    firm: str
    genre: str
    lang: str
    form: str  # how it is stored: docx, csv-gb18030, xlsx-numeric, doc (LibreOffice) ...
    ids: dict[str, int] = field(default_factory=dict)  # identifiers held, by detector id
    marking: str | None = None  # trade | state | None
    source: str | None = None  # the classified file it derives from
    edit: str = ""  # exact | renamed | zipped | kept-75 | paste-2 | gb18030 | doc | pdf ...
    kept: float | None = None  # share of the source's text it keeps
    own_blocks: int | None = None  # a paste: how many of its pasted blocks are the firm's own text (not shared clauses)


@dataclass
class Corpus:
    root: Path
    labels: list[Label]
    notes: list[str]
    seconds: float

    def by_group(self, *groups: str) -> list[Label]:
        return [x for x in self.labels if x.group in groups]


def _name(doc: Doc, n: int) -> str:
    return f"{n:03d}-" + re.sub(r"[\\/:*?\"<>|\s]+", "_", doc.title)[:50]


def _write(doc: Doc, folder: Path, n: int, fmt: str) -> tuple[Path, Doc]:
    """Write doc; the Doc as the file holds it (a CSV keeps the table only)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / _name(doc, n)
    if fmt == "csv":
        held = dataclasses.replace(doc, title="", header="", footer="", paragraphs=[])
        return writers.csv_file(doc.table, stem.with_suffix(".csv"), "gb18030" if n % 2 else "utf-8"), held
    if fmt == "py":
        return writers.txt(doc, stem.with_suffix(".py")), doc
    return writers.write(doc, stem, fmt), doc


def _label(root: Path, path: Path, group: str, firm: str, doc: Doc, form: str, **kw) -> Label:
    return Label(
        str(path.relative_to(root)), group, firm, doc.genre, doc.lang, form, dict(doc.ids()), doc.marked(), **kw
    )


def _documents(rng: random.Random, firm: Firm, plan: dict[str, int], scale: float, p_marked: float) -> list[Doc]:
    docs = []
    for genre, count in plan.items():
        for i in range(max(1, round(count * scale))):
            lang = "en" if genre in ENGLISH and i % 4 == 3 else "zh"
            docs.append(genres.document(rng, firm, genre, lang, p_marked))
    return docs


def _text_bytes(doc: Doc) -> int:
    return len("\n".join(doc.lines()).encode())


def derive(rng: random.Random, doc: Doc, fraction: float) -> tuple[Doc, float]:
    """Paragraphs and table rows kept in order up to fraction of the text's bytes, prose edited
    (lines holding an identifier or the marking are kept as they are), the copier's own text added; the header
    kept half the time. Returns the copy and the share of the source's bytes it really keeps."""
    held = {v for _, v in doc.values} | ({doc.marking_text} if doc.marking_text else set())  # never edited
    items = [("p", p) for p in doc.paragraphs] + [("r", "\t".join(r)) for r in doc.table[1:]]
    total = sum(len(t.encode()) for _, t in items) or 1
    order = list(range(len(items)))
    rng.shuffle(order)
    chosen, have = set(), 0
    for i in order:
        if have >= fraction * total - 1:
            break
        chosen.add(i)
        have += len(items[i][1].encode())
    paras, rows = [], [doc.table[0]] if doc.table else []
    for i in sorted(chosen):
        kind, text = items[i]
        if kind == "r":
            rows.append(text.split("\t"))
        elif any(v in text for v in held) or fraction == 1.0 and rng.random() < 0.5:
            paras.append(text)
        else:
            paras.append(_edited(rng, text, doc.lang, rate=rng.uniform(0.1, 0.4)))
    for _ in range(rng.randint(0, 2)):
        paras.insert(rng.randint(0, len(paras)), paragraph(rng, doc.lang))
    copy = dataclasses.replace(
        doc,
        title=doc.title + (" 修订" if doc.lang == "zh" else " rev"),
        paragraphs=paras,
        table=rows if len(rows) > 1 else [],
        header=doc.header if rng.random() < 0.5 else "",
    )
    return copy, min(1.0, have / total)


SHARED_TEXT = frozenset(genres.STANDARD_CLAUSES + genres.EN_CLAUSES + genres.QUOTE_TERMS)


def paste(rng: random.Random, doc: Doc, count: int) -> tuple[Doc, float, int]:
    """An e-mail of the copier's own prose with `count` paragraphs (or blocks of five table rows) of
    doc; with the share of doc's text pasted and how many pasted blocks are the firm's own text (a
    standard clause every competitor's contract or quotation carries traces nobody)."""
    blocks = list(doc.paragraphs) + [
        "\n".join("\t".join(r) for r in doc.table[i : i + 5]) for i in range(1, len(doc.table), 5)
    ]
    blocks = sorted(blocks, key=lambda b: -len(b))[: max(count * 2, 1)]
    picked = rng.sample(blocks, min(count, len(blocks)))
    own = [paragraph(rng, doc.lang) for _ in range(rng.randint(3, 8))]
    for b in picked:
        own.insert(rng.randint(0, len(own)), b)
    mail = Doc(
        "paste",
        doc.lang,
        "转发：资料" if doc.lang == "zh" else "FW: for your reference",
        own,
        values=[(k, v) for k, v in doc.values if any(v in b for b in picked)],
    )
    own_blocks = sum(not any(shared in b for shared in SHARED_TEXT) for b in picked)
    return mail, sum(len(b.encode()) for b in picked) / max(1, _text_bytes(doc)), own_blocks


def build(
    root: Path, seed: int = 15, scale: float = 1.0, third_party: int = 300, convert: bool = True, sdists: bool = True
) -> Corpus:
    """The whole corpus under root (created); scale 1.0 is about a thousand files. sdists: add the
    test documents of document libraries' source distributions (pip downloads them once)."""
    started = time.perf_counter()
    rng = random.Random(seed)
    firms = [dataclasses.replace(f, uscc=identifiers.uscc(rng, f.area)) for f in FIRMS]
    ours, peers = firms[0], firms[1:]
    labels: list[Label] = []
    notes: list[str] = []
    sources: list[tuple[Path, Doc]] = []
    n = 0

    def put(doc: Doc, folder: Path, group: str, firm: Firm, fmt: str | None = None) -> Path:
        nonlocal n
        n += 1
        fmt = fmt or rng.choice(FORMATS[doc.genre])
        path, held = _write(doc, folder, n, fmt)
        labels.append(_label(root, path, group, firm.key, held, fmt))
        return path

    classified = root / "server" / ours.key / "classified"
    for doc in _documents(rng, ours, OURS, scale, p_marked=0.7):
        sources.append((put(doc, classified / doc.genre, "classified", ours), doc))
    for genre, rows in (("roster", (60, 120, 300)), ("customers", (40, 80, 150))):
        for r in rows[: max(1, round(len(rows) * scale))]:
            doc = getattr(genres, genre)(rng, ours, max(8, int(r * max(scale, 0.2))))
            sources.append((put(doc, classified / genre, "classified", ours), doc))
    for _ in range(max(1, round(2 * scale))):
        doc = genres.state_secret(rng, ours)
        sources.append((put(doc, classified / "state_secret", "classified", ours), doc))
    for doc in _documents(rng, ours, PUBLIC, scale, p_marked=0.0):
        put(doc, root / "server" / ours.key / "public", "own_public", ours)
    peer_files: list[Path] = []
    for firm in peers:
        for doc in _documents(rng, firm, PEER, scale, p_marked=0.5):
            peer_files.append(put(doc, root / "server" / firm.key / doc.genre, "peer", firm))
        put(genres.roster(rng, firm, max(8, int(50 * scale))), root / "server" / firm.key / "hr", "peer", firm)
        put(genres.customers(rng, firm, max(8, int(40 * scale))), root / "server" / firm.key / "sales", "peer", firm)

    outgoing = root / "outgoing"
    outgoing.mkdir(parents=True)
    to_convert: list[tuple[Path, Path, str, Doc]] = []  # (file, its source, target format, source doc)
    picked = sources[:: max(1, len(sources) // max(1, round(40 * scale)))]
    for k, (src, doc) in enumerate(picked):
        rel = str(src.relative_to(root))

        def add(path: Path, held: Doc, edit: str, kept: float | None, form: str, rel=rel, **kw) -> None:
            labels.append(_label(root, path, "derived", ours.key, held, form, source=rel, edit=edit, kept=kept, **kw))

        way = ("exact", "renamed", "zipped")[k % 3]
        if way == "exact":
            dest = outgoing / "copies" / src.name
        elif way == "renamed":
            dest = outgoing / "copies" / f"{k:03d}-备份资料{rng.choice(('.dat', src.suffix, '.bak'))}"
        else:
            dest = outgoing / "copies" / f"{k:03d}-资料.zip"
        dest.parent.mkdir(parents=True, exist_ok=True)
        if way == "zipped":
            writers.zip_of(dest, {src.name: src})
        else:
            shutil.copyfile(src, dest)
        add(dest, _held(src, doc), way, 1.0, src.suffix[1:])
        for fraction in KEPT:
            copy, kept = derive(rng, doc, fraction)
            fmt = rng.choice(
                ("txt", "docx", src.suffix[1:] if src.suffix in (".docx", ".pdf", ".xlsx", ".txt") else "docx")
            )
            path, held = _write(copy, outgoing / f"kept-{int(fraction * 100)}", k, fmt)
            add(path, held, f"kept-{int(fraction * 100)}", round(kept, 3), fmt)
        count = 1 + k % 3
        mail, kept, own_blocks = paste(rng, doc, count)
        path, held = _write(mail, outgoing / "pastes", k, rng.choice(("txt", "docx")))
        add(path, held, f"paste-{count}", round(kept, 3), path.suffix[1:], own_blocks=own_blocks)
        (outgoing / "gb18030").mkdir(exist_ok=True)
        path = writers.txt(doc, outgoing / "gb18030" / f"{k:03d}-{src.stem}.txt", "gb18030")
        add(path, doc, "gb18030", 1.0, "txt-gb18030")
        if src.suffix in LEGACY:
            to_convert.append((src, src, LEGACY[src.suffix], _held(src, doc)))
        if src.suffix in (".docx", ".xlsx"):
            to_convert.append((src, src, "pdf", _held(src, doc)))
    peer_convert = [p for p in peer_files if p.suffix in LEGACY][::3]
    if not convert:
        notes.append("LibreOffice conversions turned off for this run: no .doc, .xls, .ppt or converted PDF files")
    elif writers.soffice():
        notes += _convert(root, to_convert, peer_convert, labels)
    else:
        notes.append(
            "LibreOffice is not installed (apt-get install libreoffice-writer-nogui libreoffice-calc-nogui "
            "libreoffice-impress-nogui): no .doc, .xls, .ppt or converted PDF files"
        )
    for path, form, held in pii.build(rng, root / "pii", scale):
        labels.append(Label(str(path.relative_to(root)), "pii", ours.key, "identifiers", "zh", form, dict(held)))
    if third_party:
        copied, missing = thirdparty.copy(root / "thirdparty", max(12, int(third_party * min(1.0, scale))), sdists)
        notes += missing
        labels += [
            Label(str(p.relative_to(root)), "thirdparty", "", kind, "", p.suffix[1:] or "none") for p, kind in copied
        ]
    (root / "manifest.json").write_text(
        json.dumps([dataclasses.asdict(x) for x in labels], ensure_ascii=False, indent=1), "utf-8"
    )
    seconds = time.perf_counter() - started
    logger.info("corpus built files={} seconds={:.1f} root={}", len(labels), seconds, root)
    return Corpus(root, labels, notes, seconds)


def _held(path: Path, doc: Doc) -> Doc:
    """The Doc as a file written from it holds it (a CSV keeps its table only)."""
    return dataclasses.replace(doc, title="", header="", footer="", paragraphs=[]) if path.suffix == ".csv" else doc


def _convert(root: Path, ours: list[tuple[Path, Path, str, Doc]], peers: list[Path], labels: list[Label]) -> list[str]:
    """LibreOffice conversions, one soffice run per target format; outputs renamed apart."""
    out = root / "outgoing" / "converted"
    staging = root / ".staging"
    peer_labels = {x.path: x for x in labels}
    jobs: dict[str, list[tuple[Path, Path | None, Doc | None]]] = {}
    for src, source, fmt, doc in ours:
        jobs.setdefault(fmt, []).append((src, source, doc))
    for p in peers:
        jobs.setdefault(LEGACY[p.suffix], []).append((p, None, None))
    made = 0
    for fmt, items in jobs.items():
        for i, (src, _, _) in enumerate(items):  # unique stems: soffice names outputs by stem
            (staging / fmt).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, staging / fmt / f"{i:03d}{src.suffix}")
        inputs = [staging / fmt / f"{i:03d}{src.suffix}" for i, (src, _, _) in enumerate(items)]
        done = writers.convert(inputs, fmt, staging / f"{fmt}-out")
        for i, (src, source, doc) in enumerate(items):
            result = done.get(inputs[i])
            if result is None:
                continue
            made += 1
            if source is None:  # a peer's document in a legacy format: a negative
                base = peer_labels[str(src.relative_to(root))]
                dest = src.with_name(src.stem + "." + fmt)
                shutil.move(result, dest)
                labels.append(dataclasses.replace(base, path=str(dest.relative_to(root)), form=f"{fmt} (LibreOffice)"))
                continue
            dest = out / f"{fmt}-{i:03d}-{src.stem}.{fmt}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(result, dest)
            rel = str(source.relative_to(root))
            edit = f"{src.suffix[1:]}->{fmt}"
            labels.append(
                Label(
                    str(dest.relative_to(root)),
                    "derived",
                    "ours",
                    doc.genre,
                    doc.lang,
                    f"{fmt} (LibreOffice)",
                    dict(doc.ids()),
                    doc.marked(),
                    source=rel,
                    edit=edit,
                    kept=1.0,
                )
            )
    shutil.rmtree(staging, ignore_errors=True)
    wanted = sum(len(v) for v in jobs.values())
    return [] if made == wanted else [f"LibreOffice converted {made} of {wanted} files; the others are left out"]
