"""Correlation on the collector: counts, sums and distinct counts over a window, per group, per burst.

The default packs' MW-BULK-EGRESS (20 classified files or 200 MB by one user in 10 minutes) and
MW-MASS-DELETION (50 deletions or moves in 5 minutes) run as shipped; other kinds are rules a firm
uploads through PUT /api/v1/policy. Windows are measured on the events' own times.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from server.schema import rule_hits
from tests.server.factories import alerts_of, at, make_egress, make_event, put_policy

MB = 1024 * 1024


def _file(i: int, seconds: float | None = None, size: int = 50_000, **fields) -> dict:
    """The i-th classified file copied to the Kingston stick, `seconds` after T0 (default 10 s apart)."""
    return make_egress("core", ts=at(i * 10 if seconds is None else seconds), path=f"/media/zhang/KINGSTON/part-{i:03d}.dwg", size=size, **fields)


def _bulk(client, reader) -> list[dict]:
    return alerts_of(client, reader, category="bulk-egress")


def test_twenty_classified_files_in_ten_minutes_raise_a_bulk_egress_alert(client, reader, send):
    files = [_file(i) for i in range(20)]
    for f in files[:19]:
        send(f)
    assert _bulk(client, reader) == []

    send(files[19])

    (alert,) = _bulk(client, reader)
    assert (alert["rule_id"], alert["severity"], alert["status"]) == ("MW-BULK-EGRESS", "critical", "open")
    assert alert["title"] == "Many classified files leaving at once"
    assert alert["count"] == 20
    assert sorted(alert["event_ids"]) == sorted(f["id"] for f in files)
    assert alert["user"] == "zhang.wei" and alert["host"] == "pc-0042"
    (incident,) = alerts_of(client, reader, category="classified-egress")  # the files are one incident (issue 19)
    assert (incident["kind"], incident["file_count"]) == ("incident", 20)


def test_a_burst_that_goes_on_updates_its_alert_instead_of_raising_another(client, reader, send, clock):
    send(*[_file(i) for i in range(20)])
    (first,) = _bulk(client, reader)

    more = [_file(i) for i in range(20, 25)]
    for f in more:
        clock.advance(10)
        send(f)

    (alert,) = _bulk(client, reader)
    assert alert["id"] == first["id"]
    assert alert["count"] == 25 and len(alert["event_ids"]) == 25
    assert {f["id"] for f in more} <= set(alert["event_ids"])
    assert alert["created_at"] == first["created_at"] and alert["updated_at"] > first["updated_at"]
    assert alert["explanation"].startswith("25 classified files")
    detail = client.get(f"/api/v1/alerts/{alert['id']}", headers=reader).json()
    assert len(detail["events"]) == 25


def test_bytes_alone_raise_bulk_egress(client, reader, send):
    send(_file(0, size=70 * MB), _file(1, size=70 * MB))
    assert _bulk(client, reader) == []

    send(_file(2, size=70 * MB))

    (alert,) = _bulk(client, reader)
    assert alert["count"] == 3
    assert "3 classified files (210 MB)" in alert["explanation"]
    assert "threshold: 20 files or 200 MB in 10 min" in alert["explanation"]
    assert "held: total size = 210 MB (total size ≥ 200 MB); not reached: events = 3 (events ≥ 20)" in alert["explanation"]


@pytest.mark.parametrize("split", ["user", "agent"])
def test_each_user_and_agent_is_counted_apart(client, reader, send, enroll, agent, split):
    other = enroll("pc-0043") if split == "agent" else agent
    other_user = "li.na" if split == "user" else "zhang.wei"
    send(*[_file(i) for i in range(12)])
    send(*[_file(i, user=other_user) for i in range(12, 24)], as_agent=other)
    assert _bulk(client, reader) == []

    send(*[_file(i) for i in range(24, 32)])

    (alert,) = _bulk(client, reader)
    assert alert["count"] == 20 and alert["user"] == "zhang.wei" and alert["agent_id"] == agent.agent_id


@pytest.mark.parametrize("gap_s,raised", [(580, True), (700, False)])
def test_files_further_apart_than_the_window_do_not_add_up(client, reader, send, gap_s, raised):
    early = [_file(i, seconds=i) for i in range(10)]
    late = [_file(i, seconds=gap_s + i) for i in range(10, 20)]  # the 20th file is gap_s + 19 s after the first

    send(*early)
    send(*late)

    assert len(_bulk(client, reader)) == (1 if raised else 0)


def test_after_the_burst_pauses_longer_than_the_window_a_new_one_raises_a_new_alert(client, reader, send):
    send(*[_file(i) for i in range(20)])  # 0..190 s
    send(*[_file(i, seconds=190 + 300 + i) for i in range(20, 23)])  # within 10 min of the burst: joins it
    (alert,) = _bulk(client, reader)
    assert alert["count"] == 23

    send(*[_file(i, seconds=2000 + i) for i in range(23, 26)])  # a pause of 20 min: a new burst, below the threshold
    assert [a["count"] for a in _bulk(client, reader)] == [23]

    send(*[_file(i, seconds=2100 + i) for i in range(26, 43)])  # 20 files within 10 min again

    second, first = _bulk(client, reader)
    assert (first["id"], first["count"]) == (alert["id"], 23)
    assert second["count"] == 20 and not set(second["event_ids"]) & set(first["event_ids"])


def test_a_closed_alert_is_not_extended_and_the_threshold_must_hold_again(client, reader, send):
    send(*[_file(i) for i in range(20)])
    (alert,) = _bulk(client, reader)
    client.patch(f"/api/v1/alerts/{alert['id']}", json={"status": "false_positive", "comment": "approved export"}, headers=reader)

    send(_file(20))

    newer, older = _bulk(client, reader)
    assert (older["id"], older["count"], older["status"]) == (alert["id"], 20, "false_positive")
    assert newer["status"] == "open" and newer["count"] == 21  # the whole window, the new file included


def test_files_arriving_out_of_order_are_counted_by_their_own_times(client, reader, send):
    files = [_file(i) for i in range(25)]
    for f in reversed(files[5:]):  # the newest first, as a second collector or a late batch may deliver them
        send(f)

    (alert,) = _bulk(client, reader)
    assert alert["count"] == 20
    send(*files[:5])
    (alert,) = _bulk(client, reader)
    assert alert["count"] == 25


def test_a_file_that_came_before_the_burst_but_lies_within_it_joins_it(client, reader, send):
    send(*[_file(i, seconds=i) for i in range(19)])  # 0..18 s
    later = _file(19, seconds=610)  # 10 min after 00:10, alone in its window
    send(later)
    assert _bulk(client, reader) == []

    send(_file(20, seconds=19))  # the 20th file of the first 10 minutes, delivered late

    (alert,) = _bulk(client, reader)
    assert alert["count"] == 21 and later["id"] in alert["event_ids"]


def test_a_resent_burst_raises_nothing_twice(client, reader, send):
    files = [_file(i) for i in range(20)]
    send(*files)
    send(*files)
    send(*files[:7], *files[7:])

    (alert,) = _bulk(client, reader)
    assert alert["count"] == 20
    (incident,) = alerts_of(client, reader, category="classified-egress")  # one incident, each file once
    assert (incident["file_count"], incident["count"]) == (20, 20)


def test_explanation_says_how_many_how_much_where_who_when_and_the_threshold(client, reader, send):
    size = 18_783_187  # 23 of them: 412 MB
    files = [_file(i, seconds=3720 + 20 * i, size=size, user="zhang.san") for i in range(23)]  # 18:02:00 to 18:09:20 in Shanghai

    send(*files)

    (alert,) = _bulk(client, reader)
    explanation = alert["explanation"]
    first_line = explanation.splitlines()[0]
    assert first_line == (
        "23 classified files (412 MB) written to Kingston DataTraveler 3.0 (serial 60A44C3FAE22F0B1) by zhang.san "
        "on host pc-0042 between 2026-03-02 18:02:00 CST and 18:09:20; threshold: 20 files or 200 MB in 10 min."
    )
    assert "Rule MW-BULK-EGRESS (Many classified files leaving at once) counts MW-EGRESS-CLASSIFIED" in explanation
    assert "held: events = 23 (events ≥ 20); total size = 412 MB (total size ≥ 200 MB)" in explanation
    assert "user = zhang.san" in explanation
    assert "23 个涉密文件（412 MB）" in explanation  # the officer's language


def test_files_to_several_sticks_name_each_stick(client, reader, send):
    sticks = [{"mountpoint": f"/media/usb{n}", "vendor": "SanDisk", "model": "Cruzer", "serial": f"SN-{n}"} for n in range(4)]
    send(*[_file(i, media=sticks[i % 4]) for i in range(20)])

    (alert,) = _bulk(client, reader)
    assert "written to SanDisk Cruzer (serial SN-0); SanDisk Cruzer (serial SN-1); SanDisk Cruzer (serial SN-2) and 1 more" in alert["explanation"]


def test_fifty_deletions_in_classified_folders_raise_mass_deletion(client, reader, send):
    deletions = [make_event("file.deleted", ts=at(i * 5), path=f"/srv/rnd/drawings/part-{i:03d}.dwg") for i in range(50)]
    send(*deletions[:49])
    assert alerts_of(client, reader) == []  # MW-CLASSIFIED-REMOVED only feeds the count: no alert per file

    send(deletions[49])

    (alert,) = alerts_of(client, reader)
    assert (alert["rule_id"], alert["category"], alert["severity"], alert["count"]) == ("MW-MASS-DELETION", "mass-deletion", "high", 50)
    assert alert["explanation"].startswith("50 files deleted in classified folders by zhang.wei on host pc-0042 between")
    assert "threshold: 50 files in 5 min" in alert["explanation"]


def test_moves_count_as_removals_too(client, reader, send):
    removals = [
        make_event("file.moved" if i % 2 else "file.deleted", ts=at(i), path=f"/srv/rnd/drawings/{i}.dwg", dest_path=f"/tmp/{i}.dwg")
        for i in range(50)
    ]
    send(*removals)
    (alert,) = alerts_of(client, reader, category="mass-deletion")
    assert alert["explanation"].startswith("50 files deleted or moved in classified folders")


# --- thresholds a firm writes -------------------------------------------------------------------

DISTINCT = """\
- id: ACME-MANY-STICKS
  title: Classified files written to several sticks
  category: bulk-egress
  severity: high
  correlate:
    rules: [MW-EGRESS-CLASSIFIED]
    group_by: [user]
    window: 1h
    distinct: {field: media.serial, gte: 3}
"""

ALL_OF = """\
- id: ACME-MANY-AND-LARGE
  title: Several classified files, large together
  category: bulk-egress
  severity: medium
  correlate:
    rules: [MW-EGRESS-CLASSIFIED]
    group_by: [agent_id, user]
    window: 10m
    all:
      - count: {gte: 5}
      - sum: {field: size, gte: 10MB}
"""


def _stick(serial: str) -> dict:
    return {"mountpoint": f"/media/{serial}", "vendor": "Kingston", "model": "DataTraveler 3.0", "serial": serial}


def test_distinct_counts_different_values_only(client, reader, send):
    put_policy(client, reader, ("acme.yaml", DISTINCT))
    send(*[_file(i, seconds=i * 60, media=_stick("AAA" if i % 2 else "BBB")) for i in range(6)])  # two sticks, six files
    assert [a for a in _bulk(client, reader) if a["rule_id"] == "ACME-MANY-STICKS"] == []

    send(_file(6, seconds=3000, media=_stick("CCC")))  # a third stick, 50 min after the first file

    (alert,) = [a for a in _bulk(client, reader) if a["rule_id"] == "ACME-MANY-STICKS"]
    assert alert["severity"] == "high" and alert["count"] == 7
    assert "distinct media.serial = 3 (distinct media.serial ≥ 3)" in alert["explanation"]
    assert "threshold: 3 distinct media.serial in 1 h" in alert["explanation"]


def test_all_needs_every_threshold_any_needs_one(client, reader, send):
    put_policy(client, reader, ("acme.yaml", ALL_OF))
    send(_file(0, size=40 * MB))  # large, but one file
    send(*[_file(i, size=1000) for i in range(1, 4)])  # four files
    assert [a for a in _bulk(client, reader) if a["rule_id"] == "ACME-MANY-AND-LARGE"] == []

    send(_file(4, size=1000))  # five files, 40 MB: both hold

    (alert,) = [a for a in _bulk(client, reader) if a["rule_id"] == "ACME-MANY-AND-LARGE"]
    assert alert["count"] == 5 and alert["severity"] == "medium"
    assert "threshold: 5 files and 10 MB in 10 min" in alert["explanation"]
    assert "not reached" not in alert["explanation"]


# --- sequences ------------------------------------------------------------------------------------

SEQUENCE = """\
- id: ACME-ARCHIVE-MADE
  title: Archive created in a classified folder
  category: classified-egress
  severity: info
  alert: false
  when:
    type: file.created
    extension: [zip, 7z, rar]

- id: ACME-ARCHIVE-TO-USB
  title: Archive written to removable media
  category: classified-egress
  severity: info
  alert: false
  when:
    type: egress.file
    extension: [zip, 7z, rar]
    egress: removable

- id: ACME-ARCHIVE-THEN-USB
  title: Classified files archived, then the archive written to USB
  category: bulk-egress
  severity: high
  correlate:
    sequence: [ACME-ARCHIVE-MADE, ACME-ARCHIVE-TO-USB]
    group_by: [agent_id, user]
    window: 10m
"""


def _archived(seconds: float) -> dict:
    return make_event("file.created", ts=at(seconds), path="/srv/rnd/drawings/all-drawings.zip")


def _to_usb(seconds: float, name: str = "all-drawings.zip") -> dict:
    return make_egress(None, ts=at(seconds), path=f"/media/zhang/KINGSTON/{name}", match=None, source_path=None)


def _sequences(client, reader) -> list[dict]:
    return [a for a in alerts_of(client, reader) if a["rule_id"] == "ACME-ARCHIVE-THEN-USB"]


def test_steps_in_order_within_the_window_raise_the_sequence(client, reader, send):
    put_policy(client, reader, ("acme.yaml", SEQUENCE))
    archived, copied = _archived(0), _to_usb(240)
    send(archived)
    assert _sequences(client, reader) == []

    send(copied)

    (alert,) = _sequences(client, reader)
    assert (alert["severity"], alert["count"]) == ("high", 2)
    assert sorted(alert["event_ids"]) == sorted([archived["id"], copied["id"]])
    lines = alert["explanation"].splitlines()
    assert lines[0] == "2 steps in order by zhang.wei on host pc-0042 within 4 min; window: 10 min."
    assert lines[1] == "1. ACME-ARCHIVE-MADE (Archive created in a classified folder) at 2026-03-02 17:00:00 CST: /srv/rnd/drawings/all-drawings.zip"
    assert lines[2].startswith("2. ACME-ARCHIVE-TO-USB (Archive written to removable media) at 2026-03-02 17:04:00 CST: /media/zhang/KINGSTON/all-drawings.zip to Kingston")


@pytest.mark.parametrize(
    "events",
    [
        pytest.param(lambda: [_to_usb(0), _archived(60)], id="out of order"),
        pytest.param(lambda: [_archived(0), _to_usb(601)], id="outside the window"),
        pytest.param(lambda: [_to_usb(60)], id="last step alone"),
        pytest.param(lambda: [_archived(0), _archived(60)], id="first step twice"),
    ],
)
def test_steps_out_of_order_or_outside_the_window_raise_nothing(client, reader, send, events):
    put_policy(client, reader, ("acme.yaml", SEQUENCE))
    for event in events():
        send(event)
    assert alerts_of(client, reader) == []


def test_a_sequence_in_one_batch_and_another_user_apart(client, reader, send):
    put_policy(client, reader, ("acme.yaml", SEQUENCE))
    send(_to_usb(30), _archived(0), dict(_to_usb(40, "other.zip"), user="li.na"))

    (alert,) = _sequences(client, reader)
    assert alert["user"] == "zhang.wei" and alert["count"] == 2


def test_steps_delivered_out_of_order_are_judged_by_their_own_times(client, reader, send):
    put_policy(client, reader, ("acme.yaml", SEQUENCE))
    send(_to_usb(60))  # the last step's event arrives first
    assert _sequences(client, reader) == []

    send(_archived(0))

    (alert,) = _sequences(client, reader)
    assert alert["count"] == 2


def test_the_sequence_repeated_within_the_window_joins_its_alert(client, reader, send):
    put_policy(client, reader, ("acme.yaml", SEQUENCE))
    send(_archived(0), _to_usb(60))
    send(_to_usb(120, "again.zip"))

    (alert,) = _sequences(client, reader)
    assert alert["count"] == 3
    assert "3. ACME-ARCHIVE-TO-USB" in alert["explanation"]


def _hits(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(rule_hits)).scalar()


def test_each_rules_hits_are_kept_as_long_as_its_own_window(client, reader, send, store, engine, clock):
    """A rule counting over a day (kills of one agent) keeps its hits a day; a ten-minute rule's go
    after hours. Before, every rule's hits waited for the longest window of the policy."""
    send(make_event("agent.started", ts=at(0), details={"previous_stop": "crash", "rebooted": "no"}))
    send(*[_file(i, seconds=i, user="li.na") for i in range(5)])
    assert _hits(engine) == 6
    clock.advance(4 * 3600)
    assert store.prune_hits() == 5  # the copies' ten-minute window is long past...
    assert _hits(engine) == 1  # ...the kill may still count towards three in a day
    clock.advance(24 * 3600)
    assert store.prune_hits() == 1


def test_hits_of_groups_that_went_quiet_are_forgotten_but_not_a_bursts_evidence(client, reader, send, store, engine, clock):
    send(*[_file(i) for i in range(20)])  # a burst: its hits explain its alert
    send(*[_file(i, seconds=i, user="li.na") for i in range(20, 25)])  # five files of another user: no alert
    assert _hits(engine) == 25

    clock.advance(3600)
    assert store.prune_hits() == 0  # within the late grace: a late file could still join them
    clock.advance(3 * 3600)
    assert store.prune_hits() == 5
    assert _hits(engine) == 20
    (alert,) = _bulk(client, reader)
    send(_file(25, seconds=300))  # the burst goes on: its evidence is still there
    assert _bulk(client, reader)[0]["count"] == 21 == len(_bulk(client, reader)[0]["event_ids"])
