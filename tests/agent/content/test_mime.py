"""Saved emails (agent/content/mime.py): told from text, their text read for the detectors, and
their attachments walked as an archive's members (hashed, sketched, inspected), however the mail
client encoded them."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import zipfile
from email import policy
from email.message import EmailMessage
from html import escape as html_escape

import pytest

from agent.content import filetype, mime
from agent.content.archive import walk_archive
from agent.content.inspect import inspect_file, inspect_source


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _docx(text: str) -> bytes:
    body = f'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>'
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
        z.writestr("word/document.xml", body)
    return buf.getvalue()


def _message(drawing: bytes) -> EmailMessage:
    m = EmailMessage()
    m["From"] = "张三 <zhang@example.cn>"
    m["To"] = "li@other.cn"
    m["Subject"] = "机密★5年 泵叶轮图纸"
    m.set_content("李工：\n附件是最新图纸，请查收。\n身份证号 11010519491231002X\n")
    m.add_alternative("<html><body><p>附件是<b>图纸</b></p><script>var k='13812345678';</script></body></html>", subtype="html")
    m.add_attachment(drawing, maintype="application", subtype="octet-stream", filename="泵叶轮-rev3.dwg")
    m.add_attachment(_docx("商业秘密 请勿外传"), maintype="application", subtype="vnd.openxmlformats-officedocument.wordprocessingml.document", filename="说明.docx")
    forwarded = EmailMessage()
    forwarded["Subject"], forwarded["From"] = "fwd", "a@example.com"
    forwarded.set_content("see attached")
    forwarded.add_attachment(drawing[::-1], maintype="application", subtype="pdf", filename="inner.pdf")
    m.add_attachment(forwarded)
    return m


def test_a_saved_email_is_read_for_its_text_and_its_attachments_as_members(tmp_path):
    drawing = os.urandom(60_000)
    path = tmp_path / "mail.eml"
    path.write_bytes(_message(drawing).as_bytes(policy=policy.SMTP))
    found = inspect_file(str(path))
    assert found.file_type == "eml" and found.type_mismatch is False
    members = {m.name: m for m in found.members}
    assert set(members) == {"泵叶轮-rev3.dwg", "说明.docx", "inner.pdf"}  # the RFC 2231 names decoded
    assert members["泵叶轮-rev3.dwg"].sha256 == _sha(drawing) and members["泵叶轮-rev3.dwg"].sketch
    assert members["inner.pdf"].sha256 == _sha(drawing[::-1])  # inside the message forwarded as an attachment
    detectors = {d.detector: d for d in found.detections}
    assert detectors["cn_resident_id"].count == 1  # the body, decoded
    assert detectors["state_secret_marking"].sample.endswith("@title")  # the Subject, decoded from RFC 2047
    assert "trade_secret_marking" in detectors  # inside the attached document
    assert "cn_mobile" not in detectors  # a script's text is not the message's
    assert found.fingerprints  # its text is traced like any document's


def test_names_and_bodies_however_a_mail_client_encoded_them():
    """Outlook and Chinese clients name attachments with RFC 2047 words; some put raw 8-bit
    bytes; bodies come quoted-printable or base64 in GB2312 that is really GBK."""
    payload = b"\x00drawing\xff" * 500
    raw = (
        b"Received: from mx.example.cn by mail.example.cn\r\n"
        b"From: =?gb2312?B?1cXI/Q==?= <zhang@example.cn>\r\n"
        b"Subject: =?GB2312?B?" + base64.b64encode("报价单".encode("gb18030")) + b"?=\r\n"
        b"Date: Mon, 7 Dec 2026 10:00:00 +0800\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes("客户身份证 11010519491231002X 镕".encode("gb18030"))
        + b"\r\n--b1\r\nContent-Type: application/octet-stream;\r\n name=\"=?UTF-8?B?"
        + base64.b64encode("图纸.dwg".encode())
        + b'?="\r\nContent-Disposition: attachment\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + base64.encodebytes(payload)
        + b"\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"\xe5\x9b\xbe.bin\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64 at all\r\n--b1--\r\n"
    )
    assert filetype.detect_file(io.BytesIO(raw)) == "eml"
    listing = walk_archive(io.BytesIO(raw), "eml")
    assert [(m.name, m.sha256) for m in listing.members][:1] == [("图纸.dwg", _sha(payload))]
    assert listing.members[1].name == "图.bin"  # raw UTF-8 in the header, read as a text file's
    message, whole = mime.parse(io.BytesIO(raw), lambda: None)
    assert whole
    text = dict((where, lines) for where, lines in mime.text(message, lambda: None))
    assert text["title"] == ["报价单"] and "镕" in text["body"][0]  # GBK's own character read


@pytest.mark.parametrize(
    "head, is_email",
    [
        (b"From: a@b\nTo: c@d\nSubject: hi\nMIME-Version: 1.0\n\nbody", True),
        (b"From: <Saved by Blink>\r\nSnapshot-Content-Location: https://x\r\nSubject: page\r\nDate: x\r\n"
         b"MIME-Version: 1.0\r\nContent-Type: multipart/related;\r\n\ttype=\"text/html\"\r\n\r\n", True),  # a saved page (.mht)
        (b"From: Zhang\nTo: Li\nSubject: budget\nDate: today\n\nA memo written like a mail, no MIME", False),
        (b"name,id\nzhang,110105\n", False),
        (b"Subject: a\nFrom: b\nMIME-Version: 1.0\nthis line is not a header\n\n", False),
        (b" folded first\nFrom: a\nTo: b\nMIME-Version: 1.0\n\n", False),
        (b"Received: from x\nFrom: a\nTo: b\nMIME-Version: 1.0\nDKIM-Signature: v=1; a=rsa-sha256; b=AbC", True),  # headers fill the head
        (b"From: a\nTo: b\nMIME-Version: 1.0\nnot a header\nContent-Type: text/plain\n", False),
        (b"\xef\xbb\xbf\n\nFrom: a\nTo: b\nSubject: c\nMIME-Version: 1.0\n\nhi", True),  # a BOM and blank lines first
        (b"MIME-Version: 1.0\nContent-Type: multipart/related; boundary=x\n\n--x", True),  # Word's .mht
        (b"Received: from a\nReturn-Path: <a@b>\nX-MS-Exchange-Organization-SCL: 1\nSubject: s\nTo: b\n" + b"X-A: 1\n" * 1300, True),
    ],
)
def test_what_is_an_email(head, is_email):
    assert mime.is_email(head) is is_email


def test_a_message_over_its_read_limit_is_said_truncated(tmp_path, monkeypatch):
    monkeypatch.setattr(mime, "MAX_MESSAGE_BYTES", 4096)
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@b", "c@d", "big"
    m.set_content("hello")
    m.add_attachment(os.urandom(20_000), maintype="application", subtype="octet-stream", filename="big.bin")
    path = tmp_path / "big.eml"
    path.write_bytes(m.as_bytes())
    found = inspect_file(str(path))
    assert found.file_type == "eml"
    assert "inspection_truncated" in {d.detector for d in found.detections}


def test_hostile_messages_never_raise(tmp_path):
    """Broken boundaries, a part with no end, a bomb of nested parts, an empty attachment."""
    nested = b"".join(b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (i, i + 1) for i in range(500))
    cases = {
        "cut.eml": b"From: a\nTo: b\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nJVBER",
        "nested.eml": b'From: a\nTo: b\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b0"\n\n' + nested,
        "empty.eml": b"From: a\nTo: b\nMIME-Version: 1.0\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=x\n\n",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        found = inspect_file(str(tmp_path / name))
        assert found.file_type == "eml", name
        assert all(m.size >= 0 for m in found.members)


def _mail(subject: str, body: str, attached: bytes | None = None, name: str = "a.dwg") -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@example.cn", "b@example.cn", subject
    m.set_content(body)
    if attached is not None:
        m.add_attachment(attached, maintype="application", subtype="octet-stream", filename=name)
    return m.as_bytes(policy=policy.SMTP).replace(b"\r\n", b"\n")


def test_a_mailbox_is_read_a_message_at_a_time_and_each_message_once():
    """An mbox (Thunderbird's folders, Gmail's export): each message a member, read as an .eml is
    (its text's detections, its attachments a level down); ">From " lines unquoted, so a message
    is hashed as it was sent; no identifier counted twice."""
    drawing = os.urandom(20_000)
    first = _mail("hello", "nothing here\nFrom the start of a line\n", drawing)
    second = _mail("机密★5年", "身份证 11010519491231002X")
    quoted = first.replace(b"\nFrom the", b"\n>From the")
    mbox = b"From a@example.cn Mon Dec  7 10:00:00 2026\n" + quoted + b"\nFrom b@example.cn Mon Dec  7 11:00:00 2026\n" + second + b"\n"
    found = inspect_source(io.BytesIO(mbox), "Inbox")
    assert found.file_type == "mbox"
    members = {m.name: m for m in found.members}
    assert list(members) == ["message-0001.eml", "message-0001.eml!/a.dwg", "message-0002.eml"]
    assert members["message-0001.eml!/a.dwg"].sha256 == _sha(drawing) and members["message-0001.eml!/a.dwg"].depth == 2
    assert members["message-0001.eml"].sha256 == _sha(first + b"\n")  # unquoted: the message as it was
    assert {d.detector: d.count for d in found.detections} == {"cn_resident_id": 1, "state_secret_marking": 1}


def test_apple_mails_emlx_and_a_message_inside_a_zip_are_read_with_their_text():
    message = _mail("机密★5年", "身份证 11010519491231002X", b"drawing" * 700)
    emlx = str(len(message)).encode() + b"\n" + message + b'<?xml version="1.0"?>\n<plist version="1.0"><dict/></plist>\n'
    found = inspect_source(io.BytesIO(emlx), "12345.emlx")
    assert found.file_type == "emlx" and [m.name for m in found.members] == ["a.dwg"]
    assert {d.detector for d in found.detections} == {"cn_resident_id", "state_secret_marking"}
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:
        z.writestr("mail/sent.eml", message)
    found = inspect_source(io.BytesIO(packed.getvalue()), "mail.zip")
    members = {m.name: m for m in found.members}
    assert set(members) == {"mail/sent.eml", "mail/sent.eml!/a.dwg"}
    assert {d.detector for d in members["mail/sent.eml"].detections} == {"cn_resident_id", "state_secret_marking"}


@pytest.mark.parametrize(
    "head, kind",
    [
        (b"From a@b Mon Dec  7 10:00:00 2026\nFrom: a@b\nTo: c@d\nSubject: x\nMIME-Version: 1.0\n\nhi\n", "mbox"),
        (b"1234\nFrom: a@b\nTo: c@d\nSubject: x\nMIME-Version: 1.0\n\nhi\n", "emlx"),
        (b">From - Mon Dec  7 10:00:00 2026\nFrom: a@b\nTo: c@d\nSubject: x\nMIME-Version: 1.0\n\nhi\n", "mbox"),
        (b"From here on, the plan\nFrom: a@b\n", None),
        (b"2026\nBudget: 12\nTotal: 3\n", None),
    ],
)
def test_which_saved_mail(head, kind):
    assert mime.mail_type(head) == kind


# --- the attack review of saved mail (helper-104): each of these failed on the code before -------------------


def _raw(headers: str, parts: list[tuple[str, bytes]]) -> bytes:
    """A multipart message as mailers write it by hand: headers, then parts each with its own."""
    out = headers.encode() + b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n'
    for head, body in parts:
        out += b"--b\n" + head.encode() + b"\n\n" + body + b"\n"
    return out + b"--b--\n"


STD = "From: a@example.cn\nTo: b@example.cn\nSubject: s\n"
ID_TEXT = ("Content-Type: text/plain; charset=utf-8", "身份证 11010519491231002X".encode())


def _drawing_part(encoding: str, body: bytes) -> tuple[str, bytes]:
    return (f"Content-Type: application/octet-stream; name=pump.dwg\nContent-Transfer-Encoding: {encoding}", body)


def test_a_body_of_thousands_of_unclosed_scripts_is_read_in_one_pass():
    """html_text left scripts out with a regex whose work grew with the square of the unclosed
    <script> tags: 12,000 of them took 20 s and stopped the worker. Now one pass."""
    markup = "<p>客户 110105<span>19491231002X</span></p>" + "<script>x" * 24_000
    message = _raw(STD, [("Content-Type: text/html; charset=utf-8", markup.encode())])
    found = inspect_source(io.BytesIO(message), "a.eml")
    assert {d.detector for d in found.detections} == {"cn_resident_id"}  # read whole, the ID not split by <span>
    assert mime.html_text("a<script>secret</SCRIPT >b<style>c{}</style>d<td>1</td><td>2</td><br>e") == "abd 1  2 \ne"


@pytest.mark.parametrize(
    "encoding, body",
    [
        ("base64 ", None),  # a trailing space
        ('"base64"', None),
        ("\n base64", None),  # folded
        ("base64", "per-line"),  # each line encoded on its own, padded (some PHP mailers)
        ("base64", "stray"),  # one character too many at the end
        ("x-uuencode", "uu"),
    ],
)
def test_an_attachment_is_decoded_however_its_encoding_is_written(encoding, body):
    drawing = os.urandom(3000)
    if body == "per-line":
        data = b"\n".join(base64.b64encode(drawing[i : i + 50]) for i in range(0, len(drawing), 50))
    elif body == "stray":
        data = base64.encodebytes(drawing) + b"A"
    elif body == "uu":
        data = b"begin 644 pump.dwg\n" + b"".join(binascii.b2a_uu(drawing[i : i + 45]) for i in range(0, len(drawing), 45)) + b"`\nend\n"
    else:
        data = base64.encodebytes(drawing)
    listing = walk_archive(io.BytesIO(_raw(STD, [ID_TEXT, _drawing_part(encoding, data)])), "eml")
    assert [(m.name, m.sha256) for m in listing.members] == [("pump.dwg", _sha(drawing))]


def test_a_text_sent_as_octet_stream_is_the_messages_text_and_traced_by_its_text(tmp_path):
    """Five header lines typed over a copy of a classified text made it an email whose body was an
    attachment with no text lineage (fingerprints 1,448 -> 0)."""
    text = "\n".join(f"第{i}条 泵叶轮的铸造工艺参数和热处理温度曲线保密要求" for i in range(200)).encode()
    plain = tmp_path / "copy.txt"
    plain.write_bytes(text)
    typed = tmp_path / "copy-hdr.txt"
    typed.write_bytes(b"From: a@x.cn\nTo: b@y.cn\nSubject: notes\nMIME-Version: 1.0\nContent-Type: application/octet-stream\n\n" + text)
    found = inspect_file(str(typed))
    assert found.file_type == "eml" and not found.members
    assert len(found.fingerprints & inspect_file(str(plain)).fingerprints) >= 0.9 * len(inspect_file(str(plain)).fingerprints)


@pytest.mark.parametrize("charset", ["cp037", "cp500", "punycode", "idna", "undefined", "utf-16-be"])
def test_a_charset_label_cannot_turn_an_identifier_into_other_characters(charset):
    message = _raw(STD, [(f"Content-Type: text/plain; charset={charset}", b"hello 11010519491231002X")])
    found = inspect_source(io.BytesIO(message), "a.eml")
    assert {d.detector for d in found.detections} == {"cn_resident_id"}


@pytest.mark.parametrize(
    "content_type, detector, why",
    [
        ('multipart/encrypted; protocol="application/pgp-encrypted"', "archive_encrypted", "PGP/MIME encrypted"),
        ("application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m", "archive_encrypted", "S/MIME encrypted"),
        ("application/pkcs7-mime; smime-type=signed-data; name=smime.p7m", "archive_not_inspected", "S/MIME signed"),
    ],
)
def test_sealed_mail_is_said_sealed(content_type, detector, why):
    message = f"{STD}MIME-Version: 1.0\nContent-Type: {content_type}\nContent-Transfer-Encoding: base64\n\n".encode()
    message += base64.encodebytes(os.urandom(2000))
    found = inspect_source(io.BytesIO(message), "a.eml")
    detections = {d.detector: d for d in found.detections}
    assert detector in detections, detections
    if detector == "archive_not_inspected":  # (a kind of problem says enough; only this one names why)
        assert detections[detector].sample.startswith(why)


def test_a_message_nested_a_thousand_deep_is_refused_as_corrupt():
    nested = b"".join(b'--b%d\nContent-Type: multipart/mixed; boundary="b%d"\n\n' % (i, i + 1) for i in range(1000))
    message = f"{STD}MIME-Version: 1.0\n".encode() + b'Content-Type: multipart/mixed; boundary="b0"\n\n' + nested
    found = inspect_source(io.BytesIO(message), "deep.eml")
    assert [(d.detector, d.sample) for d in found.detections] == [("parse_error", "corrupt email: parts nested too deep")]


@pytest.mark.parametrize(
    "name, shown",
    [
        ("invoice\u202egwd.pdf", "invoice?gwd.pdf"),
        ("ok.txt\n2026-12-07 INFO nothing\x1b[2K", "ok.txt?2026-12-07 INFO nothing?[2K"),
        ("report.zip!/holiday.jpg", "report.zip!_holiday.jpg"),
        ("../../home/boss/notes.txt", ".._.._home_boss_notes.txt"),
    ],
)
def test_attachment_names_are_shown_as_they_are_and_pretend_nothing(name, shown):
    encoded = "=?utf-8?b?" + base64.b64encode(name.encode()).decode() + "?="  # as a mailer may write any name
    part = (f'Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="{encoded}"', b"data" * 100)
    listing = walk_archive(io.BytesIO(_raw(STD, [ID_TEXT, part])), "eml")
    assert [m.name for m in listing.members] == [shown]


def test_the_walk_of_a_message_gets_what_its_text_left_of_the_clock(monkeypatch):
    """A message is parsed for its text, then again for its attachments: each had its own 10 s,
    twice what the worker's deadline allows for both. The walk now gets what is left."""
    from agent.content import inspect as inspect_module

    given = []
    clock = iter([100.0, 106.5])
    monkeypatch.setattr(inspect_module.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(inspect_module, "walk_archive", lambda source, kind, limits: given.append(limits) or walk_archive(source, kind))
    inspect_source(io.BytesIO(_mail("s", "x", b"d" * 100)), "a.eml", max_seconds=10.0)
    assert [limits.max_seconds for limits in given] == [3.5]


def test_a_short_memo_of_header_like_lines_stays_text():
    assert mime.mail_type(b"From: Zhang\nTo: Li\nSubject: budget") is None  # its lines fill no head
    assert mime.mail_type((b"From: Zhang\nTo: Li\nSubject: budget\n" + b"Cc: x\n" * 2000)[: mime.HEAD_BYTES]) == "eml"  # headers fill it


def test_a_mailbox_with_a_bom_and_blank_lines_first_keeps_its_first_message():
    message = _mail("s", "身份证 11010519491231002X")
    mbox = b"\xef\xbb\xbf\n\nFrom a@example.cn Mon Dec  7 10:00:00 2026\n" + message
    found = inspect_source(io.BytesIO(mbox), "Inbox")
    assert found.file_type == "mbox" and [m.name for m in found.members] == ["message-0001.eml"]
    assert {d.detector for d in found.detections} == {"cn_resident_id"}


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_files_carried_inside_a_messages_text_are_members(newline):
    """`uuencode drawing.dwg drawing.dwg | mail` puts the file in the body, and an HTML body may
    inline any file as a data: URI; mail clients show both as attachments, so they are members."""
    drawing = os.urandom(3000)
    uu = b"begin 644 pump.dwg\n" + b"".join(binascii.b2a_uu(drawing[i : i + 45]) for i in range(0, len(drawing), 45)) + b"`\nend\n"
    body = (b"see below\n" + uu + b"regards\n").replace(b"\n", newline)
    html = b'<p>plan</p><img src="data:application/octet-stream;base64,' + base64.b64encode(drawing[::-1]) + b'">'
    message = _raw(STD, [("Content-Type: text/plain", body), ("Content-Type: text/html", html)])
    listing = walk_archive(io.BytesIO(message), "eml")
    assert sorted((m.name, m.sha256) for m in listing.members) == sorted(
        [("pump.dwg", _sha(drawing)), ("(part 3 data 1)", _sha(drawing[::-1]))]
    )


def test_a_file_pasted_into_a_body_as_base64_or_a_hex_dump_is_a_member():
    """A drawing base64-encoded and pasted into the body (plain text, or HTML with <br> lines), or
    dumped by xxd -p: each a member, as one attached is (before: the body was text, L4)."""
    drawing = os.urandom(3000)
    b64 = base64.b64encode(drawing)
    plain = b"the file:\n" + b"\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)) + b"\nbye\n"
    dump = drawing[::-1].hex().encode()
    html = b"<p>hex:</p><p>" + b"<br>\n".join(dump[i : i + 60] for i in range(0, len(dump), 60)) + b"</p>"
    message = _raw(STD, [("Content-Type: text/plain", plain), ("Content-Type: text/html", html)])
    listing = walk_archive(io.BytesIO(message), "eml")
    assert sorted((m.name, m.sha256) for m in listing.members) == sorted(
        [("(part 2 base64 1)", _sha(drawing)), ("(part 3 hex 1)", _sha(drawing[::-1]))]
    )


def test_a_file_uuencoded_in_an_html_part_keeps_its_chinese_name():
    drawing = os.urandom(3000)
    uu = "begin 644 泵叶轮.dwg\n" + "".join(binascii.b2a_uu(drawing[i : i + 45]).decode("latin-1") for i in range(0, len(drawing), 45)) + "`\nend\n"
    html = ("<pre>" + html_escape(uu) + "</pre>").encode("utf-8")  # (as a mail client writes it)
    message = _raw(STD, [("Content-Type: text/html; charset=utf-8", html)])
    listing = walk_archive(io.BytesIO(message), "eml")
    assert [(m.name, m.sha256) for m in listing.members] == [("泵叶轮.dwg", _sha(drawing))]


def test_a_text_of_many_begin_lines_and_no_end_is_read_in_one_pass():
    assert list(mime._carried(b"begin 644 x\n" * 200_000, 1, lambda: None)) == []
