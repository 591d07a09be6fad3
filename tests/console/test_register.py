"""The secret register's fold: distinct files per folder and level, read incrementally, restarted after retention."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from server.console.register import RegisterFold, folder_of
from server.schema import events
from tests.server.factories import make_egress, make_event


def test_folder_of_posix_and_windows_paths():
    assert folder_of("/srv/rnd/drawings/a.dwg") == "/srv/rnd/drawings"
    assert folder_of("D:\\研发\\图纸\\泵.dwg") == "D:\\研发\\图纸"
    assert folder_of("C:/data/x.docx") == "C:/data"


def test_fold_counts_distinct_files_and_reads_only_new_events(client, send, engine):
    fold = RegisterFold()
    send(make_event("file.modified", level="core", path="/srv/rnd/drawings/a.dwg"))
    send(make_event("file.opened", level="core", path="/srv/rnd/drawings/a.dwg"))
    send(make_event("file.created", level="important", path="/srv/rnd/formulas/f.txt"))
    send(make_event("file.created", level=None, path="/srv/rnd/drawings/unclassified.txt"))
    send(make_egress("core"))
    with engine.connect() as conn:
        folders, egress = fold.read(conn)
    assert [(f["folder"], f["level"], f["files"]) for f in folders] == [("/srv/rnd/drawings", "core", 1), ("/srv/rnd/formulas", "important", 1)]
    assert [(e["level"], e["events"], e["sources"]) for e in egress] == [("core", 1, 1)]

    send(make_event("file.created", level="core", path="/srv/rnd/drawings/b.dwg"))
    send(make_egress("core", sha256="b" * 64))
    with engine.connect() as conn:
        folders, egress = fold.read(conn)
    assert folders[0]["files"] == 2 and egress[0]["events"] == 2 and egress[0]["sources"] == 1


def test_fold_starts_over_when_old_events_are_gone(client, send, engine):
    fold = RegisterFold()
    send(make_event("file.modified", level="core", path="/srv/rnd/drawings/old.dwg"))
    send(make_event("file.modified", level="core", path="/srv/rnd/drawings/new.dwg"))
    with engine.connect() as conn:
        assert fold.read(conn)[0][0]["files"] == 2
    with engine.begin() as conn:
        oldest = conn.execute(select(func.min(events.c.seq))).scalar()
        conn.execute(delete(events).where(events.c.seq == oldest))
    with engine.connect() as conn:
        assert fold.read(conn)[0][0]["files"] == 1
