from __future__ import annotations

import base64
import os

import pytest

from agent.paths import from_raw, is_under, readable


@pytest.mark.parametrize(
    "raw, text, has_raw",
    [
        (b"/media/usb/report.pdf", "/media/usb/report.pdf", False),
        ("/media/usb/报告.pdf".encode(), "/media/usb/报告.pdf", False),
        (b"/media/usb/\xb1\xa8\xb8\xe6.pdf", "/media/usb/\\xb1\\xa8\\xb8\\xe6.pdf", True),
        (b"/media/usb/\xff", "/media/usb/\\xff", True),
    ],
)
def test_names_are_readable_and_lossless(raw, text, has_raw):
    shown, raw_b64 = readable(os.fsdecode(raw))
    assert shown == text
    assert (raw_b64 is not None) == has_raw
    if has_raw:
        assert base64.b64decode(raw_b64) == raw
    assert os.fsencode(from_raw(shown, raw_b64)) == raw


@pytest.mark.parametrize(
    "path, folder, inside",
    [
        ("/a/b/c", "/a/b", True),
        ("/a/b", "/a/b", True),
        ("/a/bc", "/a/b", False),
        ("/a/b/c", "/a/b/", True),
        ("/x", "/", True),
    ],
)
def test_is_under(path, folder, inside):
    assert is_under(path, folder) is inside
