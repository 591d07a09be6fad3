"""A delivered batch acknowledged as its range of seqs (agent/spool.py FAST_ACK) and a gathered
batch read on from where it ended (Spool.peek's `after`, the reporter's FAST_GATHER): the same
batches, rows left, dead rows and size as the reference (each seq deleted, the batch read again
whole), through random interleavings of writes, peeks, the bound dropping events, acks of whole
batches and of their halves, and quarantines; and a row in a batch's range that the batch did not
read is never deleted."""

from __future__ import annotations

import sqlite3

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import spool as spool_module
from agent.spool import Batch, Spool
from rules.events import Event, Match

PAD = "x" * 300
TS = "2026-12-06T15:04:05.123Z"

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(1, 12), st.sampled_from(["routine", "keep", "mixed"])),
        st.tuples(st.just("peek"), st.integers(1, 9), st.sampled_from([350, 2000, 1 << 30])),
        st.tuples(st.just("peek_after"), st.just(0), st.just(0)),
        st.tuples(st.just("ack"), st.sampled_from(["whole", "first half", "second half", "one"]), st.just(0)),
        st.tuples(st.just("quarantine"), st.sampled_from(["first", "last"]), st.just(0)),
    ),
    max_size=25,
)


def _event(n: int, kind: str) -> Event:
    keep = kind == "keep" or (kind == "mixed" and n % 3 == 0)
    if keep:  # never dropped for the bound
        return Event(
            type="egress.file",
            id=f"e{n}",
            ts=TS,
            path=f"/usb/pump-{n}.dwg",
            level="core",
            match=Match("exact"),
            error=PAD,
        )
    return Event(type="egress.file", id=f"e{n}", ts=TS, path=f"/usb/photo-{n}.jpg", error=PAD)


def _state(store: Spool, path: str) -> tuple:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT seq, id, body, chain_seq FROM spool ORDER BY seq").fetchall()
        dead = conn.execute("SELECT id, body, reason FROM dead ORDER BY id").fetchall()
    return rows, dead, store.size(), store.dropped


def _play(tmp_path, name: str, fast: bool, ops, monkeypatch) -> list:
    monkeypatch.setattr(spool_module, "FAST_ACK", fast)
    path = str(tmp_path / f"{name}.db")
    store = Spool(path, max_bytes=8_000)  # a few dozen events: the bound drops routine ones
    gaps = iter(range(1_000_000))
    store.make_gap = lambda **fields: Event(type="agent.gap", id=f"gap{next(gaps)}", ts=TS, **fields)
    seen, batch, n, limits = [], [], 0, (0, 0)
    for op, a, b in ops:
        if op == "put":
            store.put([_event(n + i, b) for i in range(a)])
            n += a
        elif op == "peek":
            batch, limits = store.peek(a, max_bytes=b), (a, b)
        elif op == "peek_after" and batch:  # as the reporter gathers: with the batch's limits
            if not fast:  # the reference: the whole batch read again
                batch = store.peek(limits[0], max_bytes=limits[1]) or batch
            elif isinstance(batch, Batch):
                batch = store.peek(limits[0], max_bytes=limits[1], after=batch)
            else:  # what a quarantine left of it
                batch = store.peek(limits[0], max_bytes=limits[1]) or batch
        elif op == "ack" and batch:
            half = len(batch) // 2
            part = {"whole": batch, "first half": batch[:half], "second half": batch[half:], "one": batch[-1:]}[a]
            store.ack(part, state={"last_delivery": "x"})
            batch = []
        elif op == "quarantine" and batch:
            store.quarantine(batch[:1] if a == "first" else batch[-1:], "refused")
            batch = batch[1:] if a == "first" else batch[:-1]
        seen.append(([(e.seq, e.id, e.body) for e in batch], _state(store, path)))
    store.close()
    return seen


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(OPS)
def test_range_acks_and_gathered_peeks_leave_the_spool_as_the_reference_does(tmp_path_factory, monkeypatch, ops):
    tmp_path = tmp_path_factory.mktemp("acks")
    fast = _play(tmp_path, "fast", True, ops, monkeypatch)
    reference = _play(tmp_path, "reference", False, ops, monkeypatch)
    for step, (mine, theirs) in enumerate(zip(fast, reference, strict=True)):
        assert mine == theirs, (step, ops[: step + 1])


def _spool_with(tmp_path, count: int) -> Spool:
    store = Spool(str(tmp_path / "spool.db"))
    store.put([_event(i, "keep") for i in range(count)])
    return store


def test_a_row_in_the_range_the_batch_did_not_read_is_kept(tmp_path):
    """Never seen (a seq is never given again), but the range is the batch only when it holds
    the batch's rows and no others: a row put in a hole of it behind its back stays."""
    store = _spool_with(tmp_path, 6)
    store.db.conn().execute("DELETE FROM spool WHERE id = 'e2'")  # a hole (as a quarantine leaves)
    batch = store.peek(10)
    hole = batch[1].seq + 1
    store.db.conn().execute("INSERT INTO spool (seq, id, body, created_at) VALUES (?, 'stranger', '{}', 0)", (hole,))
    store.ack(batch)
    assert [e.id for e in store.peek(10)] == ["stranger"]
    store.close()


def test_a_batch_that_lost_an_event_to_the_bound_is_acknowledged_seq_by_seq(tmp_path):
    """The bound dropped one of its events after it was read and a row appeared in a hole of its
    range: as many rows in the range as in the batch, but not its rows. The drop count tells."""
    store = _spool_with(tmp_path, 6)
    store.db.conn().execute("DELETE FROM spool WHERE id = 'e2'")
    batch = store.peek(10)
    hole = batch[1].seq + 1
    conn = store.db.conn()
    conn.execute("DELETE FROM spool WHERE id = 'e4'")  # dropped for the bound
    store.dropped += 1  # as _keep_bound counts it
    conn.execute("INSERT INTO spool (seq, id, body, created_at) VALUES (?, 'stranger', '{}', 0)", (hole,))
    store.ack(batch)
    assert [e.id for e in store.peek(10)] == ["stranger"]
    store.close()


def test_only_a_whole_peeked_batch_is_deleted_as_a_range(tmp_path):
    store = _spool_with(tmp_path, 6)
    batch = store.peek(6)
    store.ack([batch[0], batch[5]])  # a list, not the batch: its seqs only
    assert [e.seq for e in store.peek(10)] == [e.seq for e in batch[1:5]]
    store.close()


def test_a_gathered_batch_is_read_on_from_where_it_ended(tmp_path):
    store = _spool_with(tmp_path, 3)
    first = store.peek(10)
    store.put([_event(i, "keep") for i in range(3, 8)])
    gathered = store.peek(6, after=first)
    assert isinstance(gathered, Batch) and [e.id for e in gathered] == [f"e{i}" for i in range(6)]
    assert gathered[:3] == first and gathered.drops == first.drops
    assert store.peek(10, max_bytes=1, after=first) == first  # no room left: the batch as it was
    store.ack(gathered)
    assert [e.id for e in store.peek(10)] == ["e6", "e7"]
    store.close()
