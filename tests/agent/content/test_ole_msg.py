"""Outlook messages saved as .msg (agent/content/ole_msg.py): typed, their subject and body read,
their attachments walked as an archive's members, a message attached to one walked a level down."""

from __future__ import annotations

import hashlib
import io
import os
import struct

from agent.content import olewrite
from agent.content.archive import walk_archive
from agent.content.inspect import inspect_file
from agent.content.olewrite import compound_file

ATTACH = "__attach_version1.0_#{:08X}/"
EMBEDDED = "__substg1.0_3701000D/"


def sample_msg(drawing: bytes, inner: bytes, body: str = "正文：身份证号 11010519491231002X") -> bytes:
    """A drawing attached (its long name in UTF-16), a message attached holding a PDF (its short
    name 8-bit), and an OLE object attached."""
    return olewrite.sample_msg("机密★5年 泵叶轮图纸", body, {"泵叶轮-rev3.dwg": drawing}, {"spec.pdf": inner})


def test_a_saved_outlook_message_is_read_for_its_text_and_its_attachments(tmp_path):
    drawing, inner = os.urandom(60_000), os.urandom(9_000)
    path = tmp_path / "mail.msg"
    path.write_bytes(sample_msg(drawing, inner))
    found = inspect_file(str(path))
    assert found.file_type == "msg" and found.type_mismatch is False
    members = {m.name: m for m in found.members}
    assert set(members) == {"泵叶轮-rev3.dwg", "fwd: 机密★5年 泵叶轮图纸!/spec.pdf"}
    assert members["泵叶轮-rev3.dwg"].sha256 == hashlib.sha256(drawing).hexdigest() and members["泵叶轮-rev3.dwg"].sketch
    assert members["fwd: 机密★5年 泵叶轮图纸!/spec.pdf"].sha256 == hashlib.sha256(inner).hexdigest() and members["fwd: 机密★5年 泵叶轮图纸!/spec.pdf"].depth == 2
    detectors = {d.detector: d for d in found.detections}
    assert detectors["cn_resident_id"].count == 1
    assert detectors["state_secret_marking"].sample.endswith("@title")
    assert detectors["archive_not_inspected"].sample == "an object of another program attached to a message"
    assert found.fingerprints


def test_an_html_body_is_read_without_its_tags_and_a_message_nested_too_deep_is_said(tmp_path):
    data = compound_file({
        "__substg1.0_10130102": "<html><style>p{}</style><p>客户 11010519491231002X</p></html>".encode(),
        **{(ATTACH.format(0) + EMBEDDED) * depth + "__substg1.0_0037001F": "fwd".encode("utf-16-le") for depth in range(1, 5)},
    })  # fmt: skip
    path = tmp_path / "deep.msg"
    path.write_bytes(data)
    found = inspect_file(str(path))
    detectors = {d.detector for d in found.detections}
    assert "cn_resident_id" in detectors and "archive_too_deep" in detectors


def test_corrupt_messages_never_raise(tmp_path):
    good = sample_msg(os.urandom(5000), os.urandom(5000))
    for i, data in enumerate((good[:3000], good[:600] + bytes(len(good) - 600), good[: len(good) // 2])):
        listing = walk_archive(io.BytesIO(data), "msg")
        assert all(m.size >= 0 for m in listing.members), i
        found = inspect_file(str(_write(tmp_path / f"{i}.msg", data)))
        assert found.file_type in ("msg", "ole2", None), i


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


# --- the attack review of saved mail (helper-104): each of these failed on the code before -------------------


def test_a_message_forwarded_as_an_attachment_is_read_for_its_subject_and_body(tmp_path):
    """Outlook's "forward as attachment": the attached message's subject and body were never read."""
    inner = (ATTACH.format(0) + EMBEDDED)
    data = compound_file({
        "__properties_version1.0": bytes(32),
        "__substg1.0_0037001F": "fwd".encode("utf-16-le"),
        inner + "__properties_version1.0": bytes(24),
        inner + "__substg1.0_0037001F": "机密★5年 方案".encode("utf-16-le"),
        inner + "__substg1.0_1000001F": "客户 11010519491231002X".encode("utf-16-le"),
    })  # fmt: skip
    found = inspect_file(str(_write(tmp_path / "fwd.msg", data)))
    assert {d.detector for d in found.detections} == {"state_secret_marking", "cn_resident_id"}


def test_attachment_storages_named_in_another_case_and_a_workbook_stream_added_hide_nothing(tmp_path):
    """Compound files name storages without regard to case (Outlook opens __ATTACH_VERSION1.0_#0);
    a Book stream added at the root made the message an .xls, read for nothing."""
    drawing = os.urandom(6000)
    streams = {
        "__properties_version1.0": bytes(32),
        "Book": bytes(64),
        "__ATTACH_VERSION1.0_#00000000/__substg1.0_3707001F": "pump.dwg".encode("utf-16-le"),
        "__ATTACH_VERSION1.0_#00000000/__SUBSTG1.0_37010102": drawing,
    }
    found = inspect_file(str(_write(tmp_path / "odd.msg", compound_file(streams))))
    assert found.file_type == "msg"
    assert [(m.name, m.sha256) for m in found.members] == [("pump.dwg", hashlib.sha256(drawing).hexdigest())]


def test_a_message_of_thousands_of_attached_messages_is_walked_to_the_drawing(tmp_path):
    """Each attached message listed the whole file again: 3,000 of them ran out the clock before the
    drawing was read. The layout is listed once."""
    drawing = os.urandom(6000)
    streams = {"__properties_version1.0": bytes(32)}
    for number in range(3000):
        streams[ATTACH.format(number) + EMBEDDED + "__properties_version1.0"] = bytes(24)
    streams[ATTACH.format(3000) + "__substg1.0_37010102"] = drawing
    listing = walk_archive(io.BytesIO(compound_file(streams)), "msg")
    assert hashlib.sha256(drawing).hexdigest() in {m.sha256 for m in listing.members}
    assert not [p for p in listing.problems if p.kind == "inspection_truncated"]


# --- Outlook's winmail.dat (agent/content/tnef.py) ------------------------------------------------------


def sample_tnef(attachments: dict[str, bytes], body: str = "") -> bytes:
    """A TNEF stream as Outlook writes one: the signature, a key, the message's text (attBody), then
    each attachment: attAttachRendData, attAttachTitle, attAttachData."""
    from agent.content import tnef

    def attribute(level: int, attribute_id: int, data: bytes) -> bytes:
        return struct.pack("<BII", level, attribute_id, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)

    out = tnef.SIGNATURE + b"\x01\x00"
    if body:
        out += attribute(1, tnef.ATT_BODY, body.encode("gb18030") + b"\0")
    for name, data in attachments.items():
        out += attribute(2, tnef.ATT_ATTACH_REND_DATA, bytes(14))
        out += attribute(2, tnef.ATT_ATTACH_TITLE, name.encode("gb18030") + b"\0")
        out += attribute(2, tnef.ATT_ATTACH_DATA, data)
    return out


def test_a_winmail_dat_is_unpacked_alone_and_attached_to_a_saved_email(tmp_path):
    """Outlook's rich-text mail wraps its attachments in winmail.dat: among a few MB of others a
    drawing's share of the whole file's chunks fell under the threshold (0.02), so it went untraced."""
    from email import policy
    from email.message import EmailMessage

    from agent.opaque import is_opaque

    drawing, filler = os.urandom(60_000), os.urandom(2_000_000)
    winmail = sample_tnef({"报价.xlsx": filler, "泵叶轮.dwg": drawing}, body="客户身份证 11010519491231002X")
    assert not is_opaque(winmail[:8192])  # the lane hands it to a worker
    found = inspect_file(str(_write(tmp_path / "winmail.dat", winmail)))
    assert found.file_type == "tnef" and found.type_mismatch is False
    assert {m.name: m.sha256 for m in found.members}["泵叶轮.dwg"] == hashlib.sha256(drawing).hexdigest()
    assert {d.detector for d in found.detections} == {"cn_resident_id"}  # the message's text, once
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.cn", "b@example.cn", "quote"
    message.set_content("see attached")
    message.add_attachment(winmail, maintype="application", subtype="ms-tnef", filename="winmail.dat")
    found = inspect_file(str(_write(tmp_path / "rich.eml", message.as_bytes(policy=policy.SMTP))))
    names = {m.name: m.sha256 for m in found.members}
    assert names["winmail.dat!/泵叶轮.dwg"] == hashlib.sha256(drawing).hexdigest()


def test_a_winmail_dat_cut_short_gives_what_came_before_the_break():
    whole = sample_tnef({"a.dwg": b"a" * 5000, "b.dwg": b"b" * 5000})
    listing = walk_archive(io.BytesIO(whole[: len(whole) - 100]), "tnef")
    assert [m.name for m in listing.members] == ["a.dwg"]
    assert [p.kind for p in listing.problems] == ["parse_error"]
