"""An edited copy traced by its bytes (a drawing has no text) says so, in both languages; one
traced by its text reads as before."""

from __future__ import annotations

from rules.events import Event, Match
from rules.explain import describe_event, describe_event_zh


def _event(**fields) -> Event:
    fields.setdefault("match", Match("partial", 0.98))
    return Event(type="egress.file", agent_id="a", host="rd-01", user="alice", path="/media/usb/x.bin", egress="removable",
                 level="core", source_path="/data/drawings/pump.dwg", **fields)  # fmt: skip


def test_an_edited_copy_traced_by_its_bytes_says_so():
    event = _event(details={"lineage": "bytes"})
    assert "is an edited copy (traced by its bytes) of classified file /data/drawings/pump.dwg" in describe_event(event)
    assert "编辑过的副本（按字节追溯）" in describe_event_zh(event, "2026-12-07 10:00")


def test_an_edited_copy_traced_by_its_text_reads_as_before():
    event = _event()
    assert "is an edited copy of classified file /data/drawings/pump.dwg" in describe_event(event)
    said = describe_event_zh(event, "2026-12-07 10:00")
    assert "编辑过的副本" in said and "按字节" not in said


def test_a_copy_attached_to_a_saved_email_says_so_whole_or_edited():
    whole = _event(file_type="msg", match=Match("archive", 1.0), details={"archive_member": "pump.dwg"})
    assert "is a saved email with a copy attached of classified file /data/drawings/pump.dwg" in describe_event(whole)
    assert "邮件附件中的副本" in describe_event_zh(whole, "2026-12-07 10:00")
    edited = _event(file_type="mbox", details={"lineage": "bytes", "archive_member": "message-0001.eml!/pump.dwg"})
    said = describe_event(edited)
    assert "is a saved email with an edited copy (traced by its bytes) attached of classified file" in said, said
    assert "邮件附件中的编辑过的副本（按字节追溯）" in describe_event_zh(edited, "2026-12-07 10:00")
    zipped = _event(file_type="zip", details={"archive_member": "a/pump.dwg"})
    assert "is an edited copy of classified file" in describe_event(zipped)  # a zip is no message


def test_a_copy_written_out_as_text_says_how_in_both_languages():
    """base64 or a hex dump of a drawing in a text (agent/content/encoded.py's member names)."""
    whole = _event(file_type="text", match=Match("archive", 1.0), details={"archive_member": "(base64 1)"})
    assert "is a copy written out as base64 text of classified file /data/drawings/pump.dwg" in describe_event(whole)
    assert "以base64文本写出的副本" in describe_event_zh(whole, "2026-12-07 10:00")
    edited = _event(file_type="zip", details={"lineage": "bytes", "archive_member": "notes/readme.txt!/(hex 2)"})
    said = describe_event(edited)
    assert "is an edited copy (traced by its bytes) written out as hex text of classified file" in said, said
    assert "以十六进制文本写出的编辑过的副本（按字节追溯）" in describe_event_zh(edited, "2026-12-07 10:00")
    mailed = _event(file_type="eml", match=Match("archive", 1.0), details={"archive_member": "(part 1 base64 1)"})
    assert "is a saved email holding a copy written out as base64 text of classified file" in describe_event(mailed)
    assert "邮件中以base64文本写出的副本" in describe_event_zh(mailed, "2026-12-07 10:00")
    uu = _event(file_type="text", match=Match("archive", 1.0), details={"archive_member": "pump.dwg (uuencoded)"})
    assert "written out as uuencode text" in describe_event(uu)
    named = _event(file_type="zip", match=Match("archive", 1.0), details={"archive_member": "base64 1.dwg"})
    assert "is inside an archive of classified file" in describe_event(named)  # a member's own name is not ours


def test_a_copy_embedded_in_a_document_or_attached_to_a_pdf_says_so():
    memo = _event(file_type="docx", match=Match("archive", 1.0), details={"archive_member": "word/embeddings/oleObject1.bin!/pump.dwg"})
    assert "is a document with a copy embedded of classified file /data/drawings/pump.dwg" in describe_event(memo)
    assert "文档中嵌入的副本" in describe_event_zh(memo, "2026-12-07 10:00")
    edited = _event(file_type="pdf", details={"lineage": "bytes", "archive_member": "pump.dwg"})
    said = describe_event(edited)
    assert "is a PDF with an edited copy (traced by its bytes) attached of classified file" in said, said
    assert "PDF 附件中的编辑过的副本（按字节追溯）" in describe_event_zh(edited, "2026-12-07 10:00")
    whole = _event(file_type="pdf", match=Match("exact", 1.0))  # the PDF itself is the classified file
    assert "is an exact copy of classified file" in describe_event(whole)
