"""Content inspection MB/s (agent.content.inspect.inspect_file) per file type, beside reading the
same files raw in the same run (issue 4 item 8).

MB/s counts the bytes of the files on disk, not the text inside them: a docx of 300 KB can hold
2 MB of text. The notes also give MB/s of text (the UTF-8 bytes extraction gives, every place but
the file name), the unit of the goal (issue 21: 20 MB/s of text per core for txt, csv, docx, xlsx
and pptx). The page cache is warm for both (each file is read once before timing).
"""

from __future__ import annotations

import os
import time

from bench import corpus
from bench.baselines import read_files
from bench.measure import MB, median
from bench.report import Figure, ratio, reproduce

TITLE = "Content inspection"
# issue 21: MB of text a core inspects a second (extraction, detectors, fingerprints)
TEXT_GOAL_MB_PER_CPU_S = {
    "text": 20.0, "csv": 20.0, "docx": 20.0, "xlsx": 20.0, "pptx": 20.0, "pdf": 5.0, "pdf-office": 5.0,
    "docx-word": 20.0, "pptx-powerpoint": 20.0,
}  # fmt: skip
NOTES = (
    'Per file type, the profile\'s share (docs/benchmarks.md, "Content inspection: where the time goes"): '
    "winnowing runs its hot loops in C where the extension agent/content/_winnow.c was built (CRC-32 keys and "
    "the windows' minima by blocks, blake2b of grams and lines four at a time, NFKC, casefold, lines, cells, the "
    "lines' generic share, prefilters for clause numbers and marking terms; else whole-text numpy passes), some "
    "20 ms a MB of text; the detectors read the document's one joined and encoded text, candidates validated in "
    "numpy arrays, a column's context read only where the words beside a number leave it open (some 9 ms a MB of "
    "prose, 18 of the roster CSV); docx, xlsx and pptx members are checked by the C scan well_bound (a strict "
    "subset of XML 1.0 with its namespaces, proven to be accepted by expat; anything else still goes through "
    "expat's callback-free parse) and read by whole-member passes in C (paragraphs with a Word table's cells or a "
    "slide's places, simple worksheet rows, shared strings), some 13 ms a MB for docx, 15 xlsx and 20 pptx (a "
    "slide member some 24 µs whatever it holds, most of it its inflate), some 45 for Word's own markup (about "
    "7 bytes of XML a byte of text) and 27 for PowerPoint's; PDF is PDFium's page load and text page (some 220 "
    "of its 270 ms a MB: the PDF readers figure gives them alone) where the fast reader (agent/content/pdf_fast.py: "
    "a C content loop handing its text runs to a C layout as records, no Python object a run, some 105 ms a MB of "
    "pdf-office text) gives way. "
    "The notes give MB/s of text per CPU second: on a busy machine the wall-clock rate says little."
)
# docx and pptx hold the text in the least markup that reads (a run per paragraph or shape);
# docx-word and pptx-powerpoint hold the same kind of prose as Word and PowerPoint write it
# (properties, revision ids, runs split by proofing marks, placeholders: docx-word has about 7 bytes
# of XML a byte of text, docx 1.4)
# pdf-office: the same prose as an office suite writes a PDF (bench/corpus.py office_pdf_bytes: a run
# per script with its own BT..ET, Type0 Identity-H and TrueType fonts, TJ kernings, tables, PDF 1.5)
KINDS = ("text", "csv", "docx", "xlsx", "pptx", "pdf", "pdf-office", "zip", "docx-word", "pptx-powerpoint")


def run(quick: bool) -> list[Figure]:
    from agent.content.extract import extract
    from agent.content.inspect import TEXT_PLACES, inspect_file

    count, text_bytes, runs = (2, 64 * 1024, 3) if quick else (2, MB, 3)  # inspection is slow: 2 files keep it near 90 s
    folder = corpus.new_dir("content")
    figures = []
    for kind in KINDS:
        paths = corpus.documents(f"{folder}/{kind}", kind, count, text_bytes)
        size = sum(os.path.getsize(p) for p in paths)
        text_size = sum(len(extract(p, os.path.basename(p)).text_of(*TEXT_PLACES).encode()) for p in paths)
        read_files(paths)  # warm the page cache
        inspect_s, cpu_s, read_s, partial = [], [], [], set()
        for _ in range(runs):
            read_s.append(read_files(paths))
            started, cpu_started = time.perf_counter(), time.process_time()
            for path in paths:
                found = inspect_file(path)
                partial |= {d.detector for d in found.detections if d.detector in ("inspection_truncated", "parse_error")}
            inspect_s.append(time.perf_counter() - started)
            cpu_s.append(time.process_time() - cpu_started)
        value, baseline = size / MB / median(inspect_s), size / MB / median(read_s)
        notes = (
            f"{count} files, {size / MB:.1f} MB on disk, {text_size / MB:.1f} MB of text: "
            f"{text_size / MB / median(inspect_s):.2f} MB/s of text, {text_size / MB / median(cpu_s):.2f} per CPU second."
        )
        if partial:
            notes += f" Some inspections were partial ({', '.join(sorted(partial))}): the rate is not a full read."
        figures.append(Figure(
            name=f"inspection {kind}", value=value, unit="MB/s", baseline=baseline, baseline_unit="MB/s (raw read)",
            ratio=ratio(value, baseline), goal="reported beside raw read (no numeric goal)", met=None, runs=runs,
            reproduce=reproduce("content"), notes=notes,
        ))
        if kind in TEXT_GOAL_MB_PER_CPU_S and text_size:
            goal = TEXT_GOAL_MB_PER_CPU_S[kind]
            per_cpu_s = text_size / MB / median(cpu_s)
            figures.append(Figure(
                name=f"inspection {kind}, text per CPU second", value=per_cpu_s, unit="MB/s", runs=runs,
                goal=f">= {goal:g} MB/s of text per core", met=per_cpu_s >= goal, reproduce=reproduce("content"),
                notes="MB of extracted text (UTF-8) over the inspection's CPU seconds in this process, the median of the runs.",
            ))
        if kind == "pdf":
            figures.append(_pdf_readers(paths, runs))
    return figures


def _pdf_readers(paths: list[str], runs: int) -> Figure:
    """The PDF readers side by side (issue 21: the fastest maintained, permissively licensed one):
    each one's page text of the same files, MB of text it returned per CPU second. PDFium's page
    load and text page are also timed alone: with nothing else, that is the ceiling of inspection."""
    import pypdfium2

    def pdfium_pages(path: str, stage: str = "text") -> list[str]:
        document, texts = pypdfium2.PdfDocument(path), []
        for page in document:
            if stage != "load":
                textpage = page.get_textpage()
                if stage == "text":
                    texts.append(textpage.get_text_range())
                textpage.close()
            page.close()
        document.close()
        return texts

    def pypdf_pages(path: str) -> list[str]:
        from pypdf import PdfReader

        return [page.extract_text() for page in PdfReader(path).pages]

    readers = {"PDFium (pypdfium2)": pdfium_pages, "pypdf": pypdf_pages}
    try:
        import pdf_oxide  # the bench extra only: a Rust reader (MIT or Apache-2.0), measured, never used

        def oxide_pages(path: str) -> list[str]:
            document = pdf_oxide.PdfDocument(path)
            return [document.extract_text(i) for i in range(document.page_count())]

        readers["pdf_oxide"] = oxide_pages
    except ImportError:
        pass
    rates, text_mb = {}, {}
    for name, pages in readers.items():
        cpu_s = []
        for _ in range(1 if name == "pypdf" else runs):  # pypdf takes seconds a MB
            started = time.process_time()
            texts = [t for path in paths for t in pages(path)]
            cpu_s.append(time.process_time() - started)
        text_mb[name] = sum(len(t.encode()) for t in texts) / MB
        rates[name] = text_mb[name] / median(cpu_s)
    stage_s = {}
    for stage in ("load", "textpage"):
        cpu_s = []
        for _ in range(runs):
            started = time.process_time()
            for path in paths:
                pdfium_pages(path, stage)
            cpu_s.append(time.process_time() - started)
        stage_s[stage] = median(cpu_s)
    pdfium_mb = text_mb["PDFium (pypdfium2)"]
    others = "; ".join(f"{name} {rates[name]:.2f} MB/s ({text_mb[name]:.2f} MB of text)" for name in readers)
    return Figure(
        name="PDF readers: PDFium beside pypdf", value=rates["PDFium (pypdfium2)"], unit="MB/s",
        baseline=rates["pypdf"], baseline_unit="MB/s (pypdf)", ratio=ratio(rates["PDFium (pypdfium2)"], rates["pypdf"]),
        goal="reported (the agent reads with the fastest)", met=None, runs=runs, reproduce=reproduce("content"),
        notes=(
            f"MB of page text each reader returned per CPU second over the same {len(paths)} files: {others}. "
            f"PDFium alone, a MB of text: opening the document and loading its pages {stage_s['load'] * 1000 / pdfium_mb:.0f} ms, "
            f"with the text page {stage_s['textpage'] * 1000 / pdfium_mb:.0f} ms: with no other work, inspection through PDFium "
            f"could reach {pdfium_mb / stage_s['textpage']:.1f} MB of text per CPU second."
        ),
    )

