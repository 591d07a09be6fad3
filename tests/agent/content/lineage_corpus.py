"""A generated corpus for partial-copy lineage, and its evaluation through the real agent code.

Deterministic (seeded), no network, no data files. Text is built from small Chinese and English
vocabularies of a precision-machinery firm, in paragraphs of sentences, so unrelated documents
share the words, the style and the firm's boilerplate (the header "某某精密机械有限公司 内部资料
注意保密", a standard confidentiality footer, recurring stock phrases) but not the text.

- classified: half Chinese, half English, 1-20 KB of text each, written as docx or txt.
- derivatives: a source's paragraphs kept up to a retained fraction (20%..100% of its body text;
  the last one cut at a sentence), possibly reordered, with word and number edits, new
  paragraphs inserted, boilerplate kept or dropped, saved as txt (UTF-8 or GB18030), docx or pdf
  (pdf for English only: the hand-made pdf writer draws Helvetica, which has no CJK glyphs).
- unrelated: the same generator and boilerplate with other seeds, in the same formats.

`evaluate()` indexes the classified files with a real FingerprintIndex on disk, inspects every
derivative and unrelated file with the real inspect_file and looks it up with lookup_partial.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent.config import ClassifiedFolder
from agent.content.document import BODY, FOOTER, HEADER, PROPERTIES, TITLE
from agent.content.extract import extract
from agent.content.inspect import inspect_file
from agent.index import FingerprintIndex
from tests.agent.content import makers

FRACTIONS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
TEXT_PLACES = (TITLE, PROPERTIES, HEADER, FOOTER, BODY)

ZH_HEADER = "某某精密机械有限公司 内部资料 注意保密"
ZH_FOOTER = "本文件为某某精密机械有限公司内部资料，未经书面许可，任何单位和个人不得复制、传播或向第三方披露。违者将依法追究法律责任。"
EN_HEADER = "MOUWEI PRECISION MACHINERY CO., LTD. INTERNAL USE ONLY - CONFIDENTIAL"
EN_FOOTER = (
    "This document is the property of Mouwei Precision Machinery Co., Ltd. It contains confidential "
    "information and may not be copied, distributed or disclosed to any third party without prior written consent."
)

ZH_NOUNS = (
    "叶轮 泵体 壳体 主轴 轴承 密封圈 法兰 阀座 齿轮 箱体 刀具 夹具 模具 铸件 锻件 焊缝 涂层 镀层 "
    "不锈钢 铝合金 球墨铸铁 钛合金 工装 砂轮 冷却液 润滑油 传感器 电机 变频器 控制器 样件 毛坯 "
    "图纸 工艺卡 检验单 配方 固化剂 树脂 底漆 面漆 供应商 客户 订单 报价 合同 批次 产线 车间 "
    "班组 设备 仪器 量具 三坐标 硬度计 试验台 参数 公差 尺寸 精度 粗糙度 硬度 温度 压力 转速 "
    "进给量 切削深度 保温时间 冷却速度 流量 扬程 效率 振动 噪声 寿命 成本 周期 产能 良率 缺陷 "
    "气孔 裂纹 变形 毛刺 偏差 方案 项目 节点 评审 验证 样机 小批 量产 库存 物料 标准 规范"
).split()
ZH_VERBS = (
    "加工 检测 调整 优化 控制 验证 测量 装配 焊接 打磨 抛光 淬火 回火 退火 喷涂 清洗 校准 更换 "
    "确认 记录 分析 评估 改进 采购 交付 试制 复核 审批 存档 监控 统计 比对 返修 报废"
).split()
ZH_LINKS = "的 对 将 按 在 与 和 及 由 经 把 使 从".split()
ZH_OPENERS = (
    "根据 按照 为了 经过 针对 结合 考虑到 鉴于 通过 依据 在 对于".split()
)
ZH_STOCK = (  # phrases every document of the firm repeats
    "按照公司质量管理体系要求",
    "经技术部评审确认",
    "具体参数详见附表",
    "请各部门严格执行",
    "如有疑问请联系工艺部",
)
ZH_UNITS = ("℃", "MPa", "mm", "μm", "rpm", "小时", "分钟", "HRC", "%", "件")

EN_NOUNS = (
    "impeller housing shaft bearing seal flange valve gear gearbox fixture tool die casting forging weld "
    "coating plating alloy steel aluminium titanium bracket grinder coolant lubricant sensor motor drive "
    "controller sample blank drawing routing inspection formula hardener resin primer topcoat supplier "
    "customer order quotation contract batch line workshop team machine instrument gauge probe hardness "
    "temperature pressure speed feed depth cycle flow head efficiency vibration noise lifetime cost capacity "
    "yield defect porosity crack distortion burr deviation plan project milestone review validation prototype "
    "pilot volume stock material standard tolerance finish surface fixture spindle chuck turret pump rotor"
).split()
EN_VERBS = (
    "machine inspect adjust optimise control verify measure assemble weld grind polish quench temper anneal "
    "spray clean calibrate replace confirm record analyse assess improve purchase deliver rework scrap "
    "approve archive monitor compare reduce increase qualify release"
).split()
EN_ADJS = (
    "final initial critical nominal maximum minimum hardened annealed coated rough finished precise stable "
    "new revised approved standard special internal external upper lower main auxiliary"
).split()
EN_LINKS = "the the the a of of to in for with on by from after before during".split()
EN_STOCK = (
    "in accordance with the quality management system",
    "as confirmed by the engineering review board",
    "see the attached table for detailed parameters",
    "all departments shall comply strictly",
    "contact the process engineering department with any questions",
)
EN_UNITS = ("C", "MPa", "mm", "um", "rpm", "hours", "minutes", "HRC", "percent", "pcs")


@dataclass(frozen=True)
class Doc:
    lang: str  # zh | en
    title: str
    paragraphs: tuple[str, ...]
    header: str
    footer: str


@dataclass(frozen=True)
class Derivative:
    path: Path
    source: Path
    fraction: float


@dataclass
class Corpus:
    root: Path
    classified: list[Path] = field(default_factory=list)
    derivatives: list[Derivative] = field(default_factory=list)
    unrelated: list[Path] = field(default_factory=list)


# --- text -----------------------------------------------------------------------------------


def _number(rng: random.Random, units) -> str:
    value = rng.choice((rng.randint(1, 999), round(rng.uniform(0.01, 99.9), 2)))
    return f"{value}{rng.choice(units)}"


def _zh_sentence(rng: random.Random) -> str:
    words = [rng.choice(ZH_OPENERS), rng.choice(ZH_NOUNS), rng.choice(ZH_NOUNS)]
    for _ in range(rng.randint(1, 3)):
        words += [rng.choice(ZH_LINKS), rng.choice(ZH_NOUNS), rng.choice(ZH_VERBS)]
    if rng.random() < 0.5:
        words += ["为", _number(rng, ZH_UNITS)]
    if rng.random() < 0.15:
        words.append("，" + rng.choice(ZH_STOCK))
    clause = "".join(words)
    if rng.random() < 0.5:
        clause += "，" + rng.choice(ZH_VERBS) + rng.choice(ZH_NOUNS) + rng.choice(ZH_NOUNS)
    return clause + "。"


def _en_sentence(rng: random.Random) -> str:
    words = [rng.choice(EN_LINKS).capitalize(), rng.choice(EN_ADJS), rng.choice(EN_NOUNS)]
    for _ in range(rng.randint(1, 3)):
        words += [rng.choice(EN_VERBS) + "s", rng.choice(EN_LINKS), rng.choice(EN_ADJS), rng.choice(EN_NOUNS)]
    if rng.random() < 0.5:
        words += ["at", _number(rng, EN_UNITS)]
    if rng.random() < 0.15:
        words += [",", rng.choice(EN_STOCK)]
    return " ".join(words).replace(" ,", ",") + "."


def sentence(rng: random.Random, lang: str) -> str:
    return _zh_sentence(rng) if lang == "zh" else _en_sentence(rng)


def paragraph(rng: random.Random, lang: str) -> str:
    glue = "" if lang == "zh" else " "
    return glue.join(sentence(rng, lang) for _ in range(rng.randint(2, 7)))


def document(rng: random.Random, lang: str, text_bytes: int) -> Doc:
    paragraphs: list[str] = []
    while sum(len(p.encode()) for p in paragraphs) < text_bytes:
        paragraphs.append(paragraph(rng, lang))
    if lang == "zh":
        title = f"{rng.choice(ZH_NOUNS)}{rng.choice(ZH_VERBS)}工艺规程 第{rng.randint(1, 20)}版"
        return Doc(lang, title, tuple(paragraphs), ZH_HEADER, ZH_FOOTER)
    title = f"{rng.choice(EN_NOUNS).capitalize()} {rng.choice(EN_VERBS)} procedure rev {rng.randint(1, 20)}"
    return Doc(lang, title, tuple(paragraphs), EN_HEADER, EN_FOOTER)


# --- derivatives ----------------------------------------------------------------------------


def _sentences(p: str, lang: str) -> list[str]:
    end = "。" if lang == "zh" else ". "
    parts = p.split(end)
    return [s + end.strip() for s in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _kept(rng: random.Random, doc: Doc, fraction: float) -> list[str]:
    """Paragraphs picked in random order until `fraction` of the body's bytes; the last one cut at
    a sentence so the total lands near the fraction."""
    total = sum(len(p.encode()) for p in doc.paragraphs)
    want = fraction * total
    order = list(range(len(doc.paragraphs)))
    rng.shuffle(order)
    picked: dict[int, str] = {}
    have = 0
    for i in order:
        if have >= want:
            break
        p = doc.paragraphs[i]
        if have + len(p.encode()) > want:  # take the sentences that fit
            glue = "" if doc.lang == "zh" else " "
            part: list[str] = []
            for s in _sentences(p, doc.lang):
                if have + len(s.encode()) > want and part:
                    break
                part.append(s)
                have += len(s.encode())
            picked[i] = glue.join(part)
            break
        picked[i] = p
        have += len(p.encode())
    return [picked[i] for i in sorted(picked)]


def _edited(rng: random.Random, p: str, lang: str, rate: float) -> str:
    """Word and number edits: about `rate` of the sentences get one (a word replaced, removed or
    added, a number changed)."""
    out = []
    for s in _sentences(p, lang):
        if rng.random() < rate:
            nouns = ZH_NOUNS if lang == "zh" else EN_NOUNS
            present = [w for w in nouns if w in s]
            kind = rng.random()
            if present and kind < 0.4:
                s = s.replace(rng.choice(present), rng.choice(nouns), 1)
            elif present and kind < 0.6:
                s = s.replace(rng.choice(present), "", 1)
            elif kind < 0.8:
                cut = rng.randrange(len(s) + 1)
                s = s[:cut] + ("" if lang == "zh" else " ") + rng.choice(nouns) + s[cut:]
            else:
                digits = [i for i, c in enumerate(s) if c.isdigit()]
                if digits:
                    i = rng.choice(digits)
                    s = s[:i] + str((int(s[i]) + 1) % 10) + s[i + 1 :]
        out.append(s)
    return ("" if lang == "zh" else " ").join(out)


def derive(rng: random.Random, doc: Doc, fraction: float) -> Doc:
    paragraphs = [_edited(rng, p, doc.lang, rate=rng.uniform(0.1, 0.4)) for p in _kept(rng, doc, fraction)]
    if rng.random() < 0.6:
        rng.shuffle(paragraphs)
    for _ in range(rng.randint(0, 3)):  # the copier's own text
        paragraphs.insert(rng.randint(0, len(paragraphs)), paragraph(rng, doc.lang))
    keep_boilerplate = rng.random() < 0.5
    title = doc.title + (" 修订稿" if doc.lang == "zh" else " draft")
    return Doc(
        doc.lang, title, tuple(paragraphs), doc.header if keep_boilerplate else "", doc.footer if keep_boilerplate else ""
    )


# --- files ----------------------------------------------------------------------------------


def write(doc: Doc, path: Path, fmt: str) -> Path:
    """Write doc as txt (UTF-8, or GB18030 for Chinese when fmt is "gbk"), docx or pdf."""
    lines = [x for x in (doc.header, doc.title, *doc.paragraphs, doc.footer) if x]
    if fmt in ("txt", "gbk"):
        encoding = "gb18030" if fmt == "gbk" else "utf-8"
        path = path.with_suffix(".txt")
        path.write_text("\n\n".join(lines) + "\n", encoding=encoding)
    elif fmt == "docx":
        path = makers.docx(path.with_suffix(".docx"), body=tuple(lines))
    elif fmt == "pdf":
        clean = [x.replace("(", "").replace(")", "").replace("\\", "") for x in lines]
        path = makers.pdf(path.with_suffix(".pdf"), lines=tuple(clean), title=doc.title)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return path


def _fmt(rng: random.Random, lang: str, allow_pdf: bool) -> str:
    choices = ["txt", "docx"] + (["pdf"] if lang == "en" and allow_pdf else ["gbk"] if lang == "zh" else [])
    return rng.choice(choices)


def build(root: Path, seed: int = 4, classified: int = 200, derivatives: int = 450, unrelated: int = 450) -> Corpus:
    rng = random.Random(seed)
    corpus = Corpus(root)
    folders = {name: root / name for name in ("classified", "derivatives", "unrelated")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    docs: list[Doc] = []
    for i in range(classified):
        lang = "zh" if i % 2 == 0 else "en"
        doc = document(rng, lang, rng.randint(1000, 20000))
        docs.append(doc)
        corpus.classified.append(write(doc, folders["classified"] / f"c{i:03d}-{lang}", _fmt(rng, lang, False)))
    for i in range(derivatives):
        fraction = FRACTIONS[i % len(FRACTIONS)]
        s = rng.randrange(classified)
        derived = derive(rng, docs[s], fraction)
        path = write(derived, folders["derivatives"] / f"d{i:03d}-{int(fraction * 100)}", _fmt(rng, derived.lang, True))
        corpus.derivatives.append(Derivative(path, corpus.classified[s], fraction))
    for i in range(unrelated):
        lang = "zh" if i % 2 == 0 else "en"
        doc = document(rng, lang, rng.randint(500, 20000))
        if rng.random() < 0.2:  # no boilerplate at all
            doc = Doc(doc.lang, doc.title, doc.paragraphs, "", "")
        corpus.unrelated.append(write(doc, folders["unrelated"] / f"u{i:03d}-{lang}", _fmt(rng, lang, True)))
    return corpus


# --- evaluation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    recall: dict[float, float]  # retained fraction -> share of derivatives traced to their source
    counts: dict[float, int]  # retained fraction -> derivatives
    wrong_source: int  # derivatives traced to another classified document
    false_positives: int  # unrelated documents traced to anything
    unrelated: int
    classified: int
    text_bytes: int  # UTF-8 bytes of the classified documents' extracted text
    growth_bytes: int  # index.db bytes added by lineage (documents and fingerprints)
    similarity: dict[float, float]  # retained fraction -> mean similarity of the traced ones
    lookup_s: float  # time spent in lookup_partial, all documents (reported, never asserted)
    fingerprints: int  # rows in the index's fingerprints table

    @property
    def fp_rate(self) -> float:
        return self.false_positives / self.unrelated

    @property
    def growth(self) -> float:
        return self.growth_bytes / self.text_bytes

    def recall_at_least(self, fraction: float) -> float:
        traced = sum(self.recall[f] * self.counts[f] for f in self.counts if f >= fraction)
        return traced / sum(n for f, n in self.counts.items() if f >= fraction)


def _db_bytes(db_path: Path) -> int:
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return os.path.getsize(db_path)


def _text_bytes(path: Path) -> int:
    return len(extract(str(path), path.name).text_of(*TEXT_PLACES).encode())


def evaluate(corpus: Corpus, state: Path, inspect: Callable = inspect_file) -> Result:
    folders = (ClassifiedFolder(str(corpus.root / "classified"), "core", "Process documents"),)
    plain = FingerprintIndex(str(state / "plain.db"), folders, fingerprint=None)
    plain.refresh()
    plain.close()
    index = FingerprintIndex(str(state / "index.db"), folders)
    index.refresh()
    traced: dict[float, list[float]] = {f: [] for f in FRACTIONS}
    counts = dict.fromkeys(FRACTIONS, 0)
    wrong = 0
    lookup_s = 0.0

    def lookup(path: Path):
        nonlocal lookup_s
        found = inspect(str(path)).fingerprints
        started = time.perf_counter()
        try:
            return index.lookup_partial(found)
        finally:
            lookup_s += time.perf_counter() - started

    for d in corpus.derivatives:
        counts[d.fraction] += 1
        found = lookup(d.path)
        if found is None:
            continue
        source, similarity = found
        if source.path == str(d.source):
            traced[d.fraction].append(similarity)
        else:
            wrong += 1
    false_positives = sum(lookup(p) is not None for p in corpus.unrelated)
    rows = index.db.conn().execute("SELECT count(*) FROM fingerprints").fetchone()[0]
    index.close()
    return Result(
        recall={f: len(traced[f]) / counts[f] for f in FRACTIONS if counts[f]},
        counts={f: n for f, n in counts.items() if n},
        wrong_source=wrong,
        false_positives=false_positives,
        unrelated=len(corpus.unrelated),
        classified=len(corpus.classified),
        text_bytes=sum(_text_bytes(p) for p in corpus.classified),
        growth_bytes=_db_bytes(state / "index.db") - _db_bytes(state / "plain.db"),
        similarity={f: sum(v) / len(v) for f, v in traced.items() if v},
        lookup_s=lookup_s,
        fingerprints=rows,
    )
