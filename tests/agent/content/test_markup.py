"""Documents saved as a web page or as RTF are read as they are shown (agent/content/markup.py).

Before, both were read as plain text, tags and control words and all: a Word page, which puts a
tag at every change of script, came apart into pieces too short to trace, and RTF hid every
Chinese character in an escape, so neither a copy's lines nor its 商业秘密 marking were found."""

from __future__ import annotations

import base64
import io
import random
import zipfile

import pytest

from agent.content import markup
from agent.content.extract import extract_file
from agent.content.inspect import inspect_source
from tests.agent.content.cpu_limit import cpu_limit
from tests.agent.content.makers import libreoffice_rtf, word_page, word_rtf

PARAGRAPHS = (
    "商业秘密 核心商密：未经授权不得复制",
    "1.1 叶轮采用316L不锈钢材料，外径控制在407毫米，公差为正负0.046毫米；工作转速1979转每分钟。",
    "1.2 Impeller balance grade G2.5 at 2970 rpm, 轴承座采用HT250材料 & 铸造成形 <A级>。",
)
def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("make", [word_rtf, libreoffice_rtf], ids=["word", "libreoffice"])
def test_rtf_is_read_as_its_paragraphs(make):
    text = markup.rtf_text(make(PARAGRAPHS).decode("ascii"))
    body = [line for line in _lines(text) if line not in ("泵叶轮工艺规范", "1")]
    assert body == list(PARAGRAPHS), text
    assert "张三" not in text and "Times" not in text and "PAGE" not in text and "89504e" not in text


def test_rtf_reads_the_title_and_characters_past_the_basic_plane():
    assert "泵叶轮工艺规范" in _lines(markup.rtf_text(word_rtf(PARAGRAPHS).decode("ascii")))
    assert markup.rtf_text(libreoffice_rtf(["图纸 😀 𠀀"]).decode("ascii")).strip() == "图纸 😀 𠀀"


def test_rtf_binary_data_and_hostile_nesting_are_read_past():
    binary = "{\\rtf1\\ansi {\\pict\\bin8 }{\\}\\'zz}before\\par after}"
    assert _lines(markup.rtf_text(binary)) == ["before", "after"]
    deep = "{\\rtf1 " + "{" * 200_000 + "text" + "}" * 10 + "\\par"
    with cpu_limit(5.0):  # one pass, however deep: no recursion, no stack past its bound
        assert _lines(markup.rtf_text(deep)) == ["text"]
    assert markup.rtf_text("{\\rtf1 cut \\'c") == "cut"  # a file cut short reads to its end


def test_a_word_page_is_read_as_a_browser_shows_it():
    for charset in ("gb2312", "utf-8"):
        text = markup.page_text(word_page(PARAGRAPHS, charset).decode(charset))
        assert _lines(text) == ["spec", *PARAGRAPHS], text  # its title, then its paragraphs whole
    # a line break of the source between two Chinese characters is none (CSS Text's segment break)
    assert markup.page_text("<html><p>叶轮\n  采用 316L\n不锈钢</p>") == "\n叶轮采用 316L 不锈钢\n"


def test_only_a_text_starting_as_markup_is_read_as_markup():
    assert markup.is_page("<!DOCTYPE html>\n<html><body>x</body></html>")
    assert markup.is_page('\ufeff<?xml version="1.0"?>\n<!-- saved -->\n<html xmlns="x">')
    assert markup.is_rtf("\ufeff{\\rtf1\\ansi x}")
    note = "A note on markup: write <html> first and {\\rtf1 for RTF.\nThe line <b>stays</b> as typed."
    assert markup.as_text(note) == note


def _inspected(data: bytes, name: str):
    return inspect_source(io.BytesIO(data), name)


@pytest.mark.parametrize(
    "make", [word_page, word_rtf, libreoffice_rtf], ids=["word-page", "word-rtf", "libreoffice-rtf"]
)
def test_a_document_saved_as_markup_gives_its_marking_and_the_fingerprints_of_its_text(make):
    """The marking is found, and the fingerprints are those of the same paragraphs saved as
    plain text (what a classified .docx of them gives), so the copy is traced."""
    rng = random.Random(5)
    paragraphs = [*PARAGRAPHS, *(f"{i}. 参数{rng.randrange(10**6)}，工艺要求：" + "叶轮动平衡校正" * 6 for i in range(40))]
    plain = _inspected("\n".join(paragraphs).encode("utf-8"), "spec.txt")
    saved = _inspected(make(paragraphs), "spec.rtf")
    assert "trade_secret_marking" in {d.detector for d in saved.detections}
    shared = len(saved.fingerprints & plain.fingerprints) / len(plain.fingerprints)
    assert shared > 0.9, shared


def test_a_picture_inlined_in_a_page_is_still_searched_for_files_written_out():
    """A page's text leaves its tags out, but what is searched for files written out is its
    markup too: a drawing inlined as a data: URI in an <img> is a member."""
    drawing = b"AC1032" + random.Random(2).randbytes(4000)
    page = f'<!DOCTYPE html><html><body><p>说明</p><img src="data:image/png;base64,{base64.b64encode(drawing).decode()}"></body></html>'
    found = _inspected(page.encode(), "page.html")
    assert [m.name for m in found.members] == ["(base64 1)"]
    assert extract_file(io.BytesIO(page.encode()), "page.html").file_type == "text"


def test_hostile_markup_is_read_in_linear_time():
    """Found reviewing this reader: a head of forty empty comments made the page test try every
    split of them (the comment pattern could run on into the next: each four more took ten times
    as long), and a "<" followed by 32,000 spaces took a message's HTML 42 s ("\\s*/?\\s*" split
    the spaces every way). Each is one pass now."""
    with cpu_limit(2.0):
        assert not markup.is_page("<!---->" * 600 + "x")
        assert markup.is_page("<!---->" * 400 + "<html>")  # (within the head looked at)
        assert markup.html_text("<" + " " * 200_000 + "x") == "<" + " " * 200_000 + "x"
        assert markup.page_text("<html>" + "< " * 100_000).strip().startswith("<")
        assert markup.rtf_text("{\\rtf1 " + "\\'" * 300_000) == ""


# --- what an attacker's review (helper-108) found hidden from the first reader -----------------


def test_a_page_shows_what_a_browser_shows():
    """A "<" before anything but a letter, "/", "!" or "?" is text; a custom element named like a
    script or style is shown; a <script> inside a comment hides nothing past the comment; a page
    may start at its <meta>; a numeric reference of 5,000 digits is read, not an error that lost
    the whole page (or message). Each was a way to leave a browser-readable page with no text."""
    assert markup.page_text("<html><p>< 机密 ></p><p><5年 正文></p></html>").split("\n") == ["", "< 机密 >", "", "<5年 正文>", ""]
    assert "正文" in markup.page_text("<html><script-x>正文</script-x><style-guide>要求</style-guide></html>")
    assert "正文" in markup.page_text("<html><!-- <script> -->正文<!-- </script> --></html>")
    assert markup.is_page('<meta charset="utf-8"><span>正</span><span>文</span>')
    assert markup.page_text("<html>&#" + "0" * 5000 + "65;&#x" + "0" * 5000 + "42;&#" + "9" * 5000 + ";</html>") == "AB\ufffd"
    assert markup.html_text("&#" + "0" * 5000 + "65;") == "A"  # a message's HTML body alike


def _rtf(body: str) -> str:
    return markup.rtf_text("{\\rtf1\\ansi\\ansicpg1252{\\fonttbl{\\f0 Arial;}{\\f1\\fcharset0\\cpg936 SimSun;}}" + body + "}")


def test_rtf_shows_what_word_and_libreoffice_show():
    """A \\uc skip ends with its group (it ran on over the document); \\bin counts bytes (a byte past
    ASCII read as a character swallowed the group's end); a text box, a footnote, a comment and
    \\upr's Unicode text are read (every \\* group was left out); \\cpg names a font's code page;
    bytes past ASCII written as they are are read in the font's code page."""
    gbk = "".join(f"\\'{b:02x}" for b in "机密".encode("gbk"))
    raw = "机密".encode("gbk").decode("latin-1")
    assert _rtf("{\\uc30000\\u65 }BODY\\par") == "ABODY\n"
    assert _rtf("{\\*\\x\\bin4 " + "\xb0\xa1\xb0\xa1" + "}BODY\\par") == "BODY\n"
    shapes = "{\\*\\shpinst{\\sp{\\sn fill}{\\sv 1}}{\\shptxt TEXTBOX\\par}}{\\shprslt FALLBACK}"
    notes = "{\\*\\footnote FOOTNOTE}{\\*\\atnauthor X}{\\*\\annotation{\\*\\atnref 0}COMMENT}{\\upr{DECOY}{\\*\\ud{REAL}}}"
    text = _rtf(shapes + notes + "\\par")
    for shown in ("TEXTBOX", "FOOTNOTE", "COMMENT", "REAL"):
        assert shown in text, (shown, text)
    assert "FALLBACK" not in text and "X" not in text.replace("TEXTBOX", "")
    assert _rtf("{\\f1 " + gbk + "}\\par") == "机密\n"  # \cpg936 over \ansicpg1252
    assert _rtf("{\\f1 " + raw + "}\\par") == "机密\n"


def test_an_rtf_file_is_read_from_its_bytes(tmp_path):
    """RTF with GBK bytes written as they are (some writers do): read by the font's code page."""
    from agent.content.extract import extract

    path = tmp_path / "spec.rtf"
    path.write_bytes(b"{\\rtf1\\ansi\\ansicpg936{\\fonttbl{\\f0\\fcharset134 SimSun;}}\\f0 " + "商业秘密 叶轮".encode("gbk") + b"\\par}")
    assert [p.text for p in extract(str(path), "spec.rtf").parts[1:]] == ["商业秘密 叶轮"]


def test_a_small_picture_inlined_in_a_page_alone_or_zipped_is_searched_for():
    """A data: URI short enough to make one tag (under 2,000 characters) is left out of the page's
    text; what is searched is the markup too, for a page on its own and, since the review, for one
    inside an archive (a member's search read the shown text only: a zipped page's inlined drawing
    left unseen)."""
    drawing = b"AC1032" + random.Random(2).randbytes(1000)
    page = f'<!DOCTYPE html><html><body><p>说明</p><img src="data:image/png;base64,{base64.b64encode(drawing).decode()}"></body></html>'
    assert "data:" not in markup.page_text(page)
    assert [m.name for m in _inspected(page.encode(), "page.html").members] == ["(base64 1)"]
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:
        z.writestr("site/page.html", page)
    found = _inspected(packed.getvalue(), "site.zip")
    assert "site/page.html!/(base64 1)" in [m.name for m in found.members]
