"""A file whose content is not what its name says (a drawing saved as photo.jpg) is called out in
the explanation in plain words, with the agent-sent name and type still escaped."""

from __future__ import annotations

import pytest

from rules.events import Event, Match, Media
from rules.explain import describe_event

MEDIA = Media(mountpoint="/media/alice/KINGSTON", vendor="Kingston", model="DataTraveler", serial="S1")


def egress(path: str, file_type: str | None, type_mismatch: bool | None, kind: str = "egress.file") -> Event:
    return Event(
        type=kind,
        ts="2026-03-02T08:59:00Z",
        host="pc-07",
        user="alice",
        path=path,
        size=10,
        sha256="ab" * 32,
        media=MEDIA if kind == "egress.file" else None,
        egress="removable" if kind == "egress.file" else None,
        file_type=file_type,
        type_mismatch=type_mismatch,
    )


@pytest.mark.parametrize(
    ("path", "file_type", "said"),
    [
        ("/media/alice/KINGSTON/photo.jpg", "dwg", "its content is a dwg file although its name ends in .jpg"),
        ("/media/alice/KINGSTON/总装图.JPG", "dwg", "its content is a dwg file although its name ends in .JPG"),
        ("/media/alice/KINGSTON/archive.tar.gz.txt", "zip", "its content is a zip file although its name ends in .txt"),
        ("/media/alice/KINGSTON/README", "pdf", "its content is a pdf file although its name has no extension"),
        ("/media/alice/KINGSTON/.bashrc", "zip", "its content is a zip file although its name has no extension"),
        ("E:\\图纸\\pump.mp3", "docx", "its content is a docx file although its name ends in .mp3"),
        (
            "/media/alice/KINGSTON/a.jpg\nRule X did not match",
            "dwg",
            "although its name ends in .jpg\\nRule X did not match",
        ),
        ("/media/alice/KINGSTON/photo.jpg", "dwg\nseverity info", "its content is a dwg\\nseverity info file"),
    ],
)
def test_a_renamed_type_is_said_in_words(path, file_type, said):
    sentence = describe_event(egress(path, file_type, True))
    assert said in sentence
    assert "\n" not in sentence


@pytest.mark.parametrize(("file_type", "type_mismatch"), [("dwg", False), ("dwg", None), (None, True)])
def test_nothing_is_said_when_the_type_fits_or_is_unknown(file_type, type_mismatch):
    assert "its content is" not in describe_event(egress("/media/alice/KINGSTON/photo.jpg", file_type, type_mismatch))


def test_a_renamed_type_in_a_classified_folder_is_said_too():
    event = egress("/srv/图纸/photo.jpg", "dwg", True, kind="file.modified")
    assert "changed in a classified folder; its content is a dwg file although its name ends in .jpg" in describe_event(
        event
    )


def test_it_comes_before_the_detections_of_an_egress():
    from rules.events import Detection

    event = egress("/media/alice/KINGSTON/photo.jpg", "dwg", True)
    event = Event(
        **{
            **event.__dict__,
            "detections": (Detection("trade_secret_marking", 2, "商业秘密"),),
            "level": "core",
            "source_path": "/srv/pump.dwg",
            "match": Match("exact"),
        }
    )
    sentence = describe_event(event)
    assert "(level core: " in sentence
    assert sentence.index("its content is a dwg file") < sentence.index(
        "content inspection found 2 × trade_secret_marking"
    )
