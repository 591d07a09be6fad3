"""Correlation rules on the collector: counts, distinct counts and sums over a window, and sequences.

State lives in the database, not in the process: each event that matches an event rule a
correlation rule counts becomes a row in `rule_hits` (with the facts the thresholds and the
explanation need), and `correlation_state` remembers the alert of each rule and group's current
burst. Both are read and written inside the ingest transaction, after the rule and group are
locked (database.lock; on SQLite the ingest transaction holds the write lock), so two collector
processes on one database decide one after the other and raise one alert per burst.

Windows are measured on the events' own times (the agent's clock), so a batch delivered late by an
agent that was offline is judged as it happened.

A burst: while the alert of a rule and group is open (or acknowledged) and hits keep coming within
the window of the burst's last hit, they join that alert, which counts them and explains the whole
burst. Once the burst pauses for longer than the window, or the alert is closed, the threshold must
hold again for a new alert.

A counting burst's explanation is kept up as a running total (rules.explain.BurstFacts, with the
levels, agents and watchlist candidates the severity and alert columns need) stored in the group's
`correlation_state.group_values` under the key BURST_KEY, beside the group's own values: a batch
that grows a burst merges its new hits into it instead of reading all the burst's hits again, so its
cost does not grow with the burst. A state row without one (written before, or by a sequence) is
rebuilt from the burst's hits once.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from rules.engine import EventEngine, Verdict
from rules.events import Event
from rules.explain import BurstFacts, burst_facts, explain_burst, explain_sequence, hit_facts
from rules.levels import severity_for_level
from rules.model import BY_LEVEL, SEVERITY_STEPS, CorrelationRule, raise_severity
from rules.policy import Policy
from server.alerts import OPEN_STATUSES, AlertDraft, insert_alerts, refresh_alerts
from server.database import insert_rows, lock, update_rows, writing
from server.schema import alerts, correlation_state, rule_hits
from server.times import iso, parse_ts

MAX_STEPS_SHOWN = 12  # sequence steps listed in an explanation
LATE_GRACE = timedelta(hours=1)  # hits are kept this long past their window, for events that arrive late
BURST_KEY = "@burst"  # the running total's key in group_values (no rule field starts with @)


@dataclass(frozen=True)
class Hit:
    rule: CorrelationRule
    step: int
    group_key: str
    group: dict[str, Any]
    event_id: str
    ts: str
    facts: dict[str, Any]


@dataclass
class _Row:
    """A stored hit, as the evaluation reads it."""

    id: int
    step: int
    event_id: str
    at: datetime
    ts: str
    facts: dict
    alert_id: int | None


@dataclass
class _Burst:
    alert_id: int | None  # None: opened in this batch, its alert not inserted yet (Correlator._opened)
    first: datetime
    last: datetime
    is_open: bool
    rows: dict[int, _Row] = field(default_factory=dict)  # hits joined in this transaction, by id
    total: dict | None = None  # the stored running total of its hits (BURST_KEY), if any


class ParsedFacts:
    """Hit facts parsed from their stored JSON, kept between batches: a burst's explanation is
    rebuilt from all its hits whenever it grows, and parsing them again was most of that cost.
    Keyed by the text itself, so a hit's facts are whatever the row holds; the dicts are shared and
    only read. Bounded: forgotten all at once when full."""

    def __init__(self, max_entries: int = 20_000):
        self.max_entries = max_entries
        self._parsed: dict[str, dict] = {}

    def __call__(self, text: str) -> dict:
        facts = self._parsed.get(text)
        if facts is None:
            if len(self._parsed) >= self.max_entries:
                self._parsed = {}
            facts = self._parsed[text] = json.loads(text)
        return facts


class Correlator:
    def __init__(self, policy: Policy, engine: EventEngine, parsed: ParsedFacts | None = None, running: bool = True):
        self.policy = policy
        self.engine = engine
        self.running = running  # False: explain a growing burst from all its hits (the reference the tests compare with)
        self.parsed = parsed or ParsedFacts()  # the store keeps one across batches
        self._opened: list[tuple[CorrelationRule, _Burst]] = []  # bursts whose alerts are still to insert
        self.feeds: dict[str, list[tuple[CorrelationRule, int]]] = defaultdict(list)  # event rule -> (rule, step)
        for rule in policy.ruleset.correlation_rules:
            if rule.enabled and rule.kind in ("threshold", "sequence"):
                for step, ref in enumerate(rule.rules):
                    self.feeds[ref].append((rule, step if rule.kind == "sequence" else 0))

    def hits(self, event: Event, verdicts: list[Verdict]) -> list[Hit]:
        """The hits one event makes: one per correlation rule (and sequence step) it feeds."""
        found: dict[tuple[str, int], Hit] = {}
        for verdict in verdicts:
            for rule, step in self.feeds.get(verdict.rule.id, ()):
                if (rule.id, step) in found:  # a rule counting two rules the event matched counts it once
                    continue
                group = {name: self.engine.value(name, event) for name in rule.group_by}
                wanted = {t.field for t in rule.thresholds if t.field} | ({rule.watchlist.field} if rule.watchlist else set())
                fields = {name: self.engine.value(name, event) for name in sorted(wanted)}
                found[(rule.id, step)] = Hit(rule, step, group_key(group), group, event.id, event.ts, hit_facts(event, fields))
        return list(found.values())

    def run(self, conn: Connection, hits: list[Hit], now: datetime) -> int:
        """Store the hits, evaluate every rule and group they touch; returns the alerts raised.

        A batch touches many groups (one per user and rule in a bulk copy): each read and write below
        is one statement for all of them, not one per group, and a group whose open burst takes all
        its new hits reads only those, not the burst's whole window."""
        if not hits:
            return 0
        groups: dict[tuple[str, str], list[Hit]] = defaultdict(list)
        for hit in hits:
            groups[(hit.rule.id, hit.group_key)].append(hit)
        lock(conn, {f"correlation:{rule_id}:{key}" for rule_id, key in groups})
        insert_rows(
            conn,
            rule_hits,
            [
                {"rule_id": h.rule.id, "group_key": h.group_key, "step": h.step, "event_id": h.event_id, "ts": h.ts, "facts": _json(h.facts)}
                for h in hits
            ],
        )
        order = sorted(groups)
        for key in order:
            groups[key].sort(key=lambda h: h.ts)
        spans = {key: _span(groups[key]) for key in order}
        states = _states(conn, order)
        counting = [key for key in order if groups[key][0].rule.kind == "threshold"]
        # hits in no alert yet (the new ones, and older ones no burst took), first only for the
        # groups with an open burst, which may take all the new ones
        growing = [key for key in counting if key in states and states[key].is_open]
        loose = _window_rows(conn, {key: spans[key] for key in growing}, loose_only=True, parse=self.parsed)
        pending: dict[tuple[str, str], list[_Row]] = {}
        for key in growing:
            loose[key] = rows = _absorb(states[key], loose.get(key, []), spans[key][2])
            new_ids = {h.event_id for h in groups[key]}
            pending[key] = [r for r in rows if r.event_id in new_ids]
        # the whole window where a new hit is left to judge: in every group without an open burst
        # (its new hits are loose), whose loose hits are then the window's hits in no alert
        windows = _window_rows(conn, {key: spans[key] for key in counting if pending.get(key, True)}, parse=self.parsed)
        for key in counting:
            if key not in pending:
                loose[key] = rows = [r for r in windows.get(key, []) if r.alert_id is None]
                new_ids = {h.event_id for h in groups[key]}
                pending[key] = [r for r in rows if r.event_id in new_ids]
        raised, saves, ends = 0, [], []
        self._opened = []
        for key in order:
            new = groups[key]
            rule = new[0].rule
            if rule.kind == "threshold":
                n, burst = self._threshold(conn, rule, new, states.get(key), loose[key], pending[key], windows.get(key, []), now)
            else:
                n, burst = self._sequence(conn, rule, key[1], new, states.get(key), now)
            raised += n
            if burst is not None and burst.rows:  # joined or opened in this batch
                saves.append((rule, key[1], new[0].group, burst))
            ends.append((rule.id, key[1], iso(parse_ts(new[-1].ts) - spans[key][2] - LATE_GRACE), burst))
        self._insert_opened(conn, now)
        self._save(conn, saves, states, now)
        _prune(conn, [(rule_id, key, before, burst.alert_id if burst else None) for rule_id, key, before, burst in ends])
        return raised

    # --- counting ---------------------------------------------------------------------------

    def _threshold(
        self, conn: Connection, rule: CorrelationRule, new: list[Hit], burst: _Burst | None, loose: list[_Row],
        pending: list[_Row], rows: list[_Row], now: datetime,
    ) -> tuple[int, _Burst | None]:
        """Slide the window over the group's hits; a window holding a new hit that passes the thresholds
        opens a burst. Hits may arrive out of order (two collectors, a late batch): every window
        that contains a new hit is judged, not only the ones ending at it.

        `loose` and `pending` come after an open burst took what it could (run()): the hits in no
        alert, and the new ones among them; `rows` is every hit in the window when some are pending."""
        window = timedelta(seconds=rule.window_s)
        new_ids = {h.event_id for h in new}
        raised, left, sliding = 0, 0, _Window(rule)
        pending_at = [p.at for p in pending]
        for end, row in enumerate(rows):
            if not pending:
                break
            sliding.add(row)
            while rows[left].at < row.at - window:
                sliding.remove(rows[left])
                left += 1
            first = bisect_left(pending_at, row.at - window)
            if first == len(pending) or pending_at[first] > row.at:
                continue  # no new hit in this window: it was judged before
            if sliding.holds():
                burst = self._open(conn, rule, rows[left : end + 1], now)
                raised += 1
                loose = _absorb(burst, loose, window)  # earlier hits later in time than this window too
                pending = [r for r in loose if r.event_id in new_ids]
                pending_at = [p.at for p in pending]
        return raised, burst

    # --- sequences --------------------------------------------------------------------------

    def _sequence(self, conn: Connection, rule: CorrelationRule, key: str, new: list[Hit], burst: _Burst | None, now: datetime) -> tuple[int, _Burst | None]:
        """A chain ends at a hit of the last step; any chain that a new hit completes is judged."""
        window = timedelta(seconds=rule.window_s)
        last_step = len(rule.rules) - 1
        rows = _window_rows(conn, {(rule.id, key): _span(new)}, parse=self.parsed).get((rule.id, key), [])
        new_ids = {h.event_id for h in new}
        first_new = parse_ts(new[0].ts)
        raised = 0
        for final in [r for r in rows if r.step == last_step and r.at >= first_new]:
            chain = _chain(rows, final, window, len(rule.rules))
            if chain is None or not any(r.event_id in new_ids for r in chain):
                continue  # incomplete, or judged when its last hit came
            if burst and burst.is_open and burst.first - window <= final.at <= burst.last + window:
                _join(burst, chain)
            else:
                burst = self._open(conn, rule, chain, now)
                raised += 1
        return raised, burst

    # --- alerts of bursts -------------------------------------------------------------------

    def _open(self, conn: Connection, rule: CorrelationRule, rows: list[_Row], now: datetime) -> _Burst:
        """A new burst; its alert (a placeholder _save fills in) is inserted with the batch's other
        new ones (_insert_opened), or at once when not OPEN_AT_ONCE."""
        burst = _Burst(None, rows[0].at, rows[-1].at, True)
        _join(burst, rows)
        self._opened.append((rule, burst))
        if not OPEN_AT_ONCE:
            self._insert_opened(conn, now)
        return burst

    def _insert_opened(self, conn: Connection, now: datetime) -> None:
        """The alerts of the bursts opened since the last call, in the order they opened: one
        insert_alerts (an INSERT, its history rows, one read of the notification channels) where
        each burst cost those three statements. Nothing between _open and here reads or writes an
        alert, so the alerts, their ids and every other row are the same as inserting each at once."""
        if not self._opened:
            return
        placeholders = [AlertDraft(rule.id, rule.category, "info", rule.title, "", (), None, None, None) for rule, _ in self._opened]
        ids = insert_alerts(conn, placeholders, now)
        for (_, burst), alert_id in zip(self._opened, ids, strict=True):
            burst.alert_id = alert_id
        self._opened = []

    def _save(self, conn: Connection, saves: list[tuple[CorrelationRule, str, dict, _Burst]], states: dict[tuple[str, str], _Burst], now: datetime) -> None:
        """The bursts that grew or opened in this batch: their hits, alerts and state rows (`states`:
        the (rule, group) pairs that have one already), a few statements for all of them. A counting
        burst is explained from its running total and the hits it took now; only a burst without a
        total (and a sequence) reads all its hits."""
        if not saves:
            return
        if conn.dialect.name == "postgresql":
            update_rows(conn, rule_hits, [{"id": hit_id, "alert_id": burst.alert_id} for *_, burst in saves for hit_id in burst.rows], ("id",))
        else:
            conn.execute(
                update(rule_hits).where(rule_hits.c.id == bindparam("hit_id")).values(alert_id=bindparam("burst_alert")),
                [{"hit_id": hit_id, "burst_alert": burst.alert_id} for *_, burst in saves for hit_id in burst.rows],
            )
        reread = [burst.alert_id for rule, key, _, burst in saves if self._rebuilds(rule, burst, states.get((rule.id, key)))]
        members: dict[int, list] = defaultdict(list)
        for chunk in _chunks(sorted(set(reread))):
            for row in conn.execute(
                select(rule_hits.c.rule_id, rule_hits.c.group_key, rule_hits.c.alert_id, rule_hits.c.id, rule_hits.c.step,
                       rule_hits.c.event_id, rule_hits.c.ts, rule_hits.c.facts)
                .where(rule_hits.c.alert_id.in_(chunk))
                .order_by(rule_hits.c.ts, rule_hits.c.id)
            ).all():
                members[row.alert_id].append(row)
        refreshed, saved = [], []
        for rule, key, group, burst in saves:
            stored = states.get((rule.id, key))
            if rule.kind == "sequence":
                mine = [m for m in members[burst.alert_id] if m.rule_id == rule.id and m.group_key == key]
                facts = [self.parsed(m.facts) for m in mine]
                event_ids = tuple(dict.fromkeys(m.event_id for m in mine))
                severity, listed = self._severity(rule, group, facts)
                steps = [(self.policy.ruleset.event_rule(rule.rules[m.step]), f) for m, f in zip(mine, facts, strict=True)]
                explanation = explain_sequence(rule, steps[-MAX_STEPS_SHOWN:], group, self.policy.worktime, severity, listed)
                common = [_common(k, group, facts) for k in ("agent_id", "host", "user")]
                count, values, span = len(event_ids), group, (mine[0].ts, mine[-1].ts)
            else:
                if burst.alert_id in members:  # no running total to go on: all its hits
                    mine = [m for m in members[burst.alert_id] if m.rule_id == rule.id and m.group_key == key]
                    total = _total(rule, [(m.id, m.ts, self.parsed(m.facts)) for m in mine])
                    event_ids = tuple(dict.fromkeys(m.event_id for m in mine))
                else:
                    taken = sorted((r for r in burst.rows.values() if r.alert_id != burst.alert_id), key=lambda r: (r.ts, r.id))
                    total = _total(rule, [(r.id, r.ts, r.facts) for r in taken])
                    if stored is not None and stored.alert_id == burst.alert_id:
                        total = _merge(stored.total, total)
                    event_ids = tuple(dict.fromkeys(r.event_id for r in taken))  # the ones before are linked (or the evidence is full)
                severity, listed = self._severity_of(rule, group, total)
                counted = [self.policy.ruleset.event_rule(r) for r in rule.rules]
                explanation = explain_burst(rule, counted, total["facts"], group, self.policy.worktime, severity, listed)
                bf: BurstFacts = total["facts"]
                seen = {"user": bf.users, "host": bf.hosts, "agent_id": total["agents"]}
                common = [group[k] if k in group else (seen[k][0] if len(seen[k]) == 1 else None) for k in ("agent_id", "host", "user")]
                count, values, span = bf.count, {**group, BURST_KEY: _stored(total)}, total["span"]
            draft = AlertDraft(rule.id, rule.category, severity, rule.title, explanation, event_ids, *common)
            refreshed.append((burst.alert_id, draft, count))
            saved.append(dict(
                rule_id=rule.id, group_key=key, group_values=_json(values), alert_id=burst.alert_id, first_ts=span[0],
                last_ts=span[1], updated_at=now,
            ))
        refresh_alerts(conn, refreshed, now)
        _update_states(conn, [s for s in saved if (s["rule_id"], s["group_key"]) in states])
        fresh = [s for s in saved if (s["rule_id"], s["group_key"]) not in states]
        if fresh:
            conn.execute(insert(correlation_state), fresh)

    def _rebuilds(self, rule: CorrelationRule, burst: _Burst, stored: _Burst | None) -> bool:
        """Whether a saved burst is explained from all its stored hits: a sequence; a counting burst
        that was open before without a running total for this alert; any burst when not running."""
        if rule.kind == "sequence" or not self.running:
            return True
        if stored is None or stored.alert_id != burst.alert_id:
            return False  # opened in this batch: every hit it has is in burst.rows
        return stored.total is None

    def _severity_of(self, rule: CorrelationRule, group: dict, total: dict) -> tuple[str, str | None]:
        """_severity from a running total: the burst's levels and its watchlist candidates, first seen first."""
        severity = rule.severity
        if severity == BY_LEVEL:
            severity = max((severity_for_level(level) for level in total["levels"]), key=SEVERITY_STEPS.index, default="info")
        listed = None
        if rule.watchlist and self.engine.watchlists:
            name, key = rule.watchlist.name, rule.watchlist.field
            values = [group[key]] if key in group else [value for *_, value in sorted(total["watch"], key=lambda w: (w[0], w[1]))]
            listed = next((str(v) for v in dict.fromkeys(values) if v and self.engine.watchlists(name, str(v))), None)
        return (raise_severity(severity) if listed else severity), listed

    def _severity(self, rule: CorrelationRule, group: dict, facts: list[dict]) -> tuple[str, str | None]:
        severity = rule.severity
        if severity == BY_LEVEL:
            severity = max((severity_for_level(f.get("level")) for f in facts), key=SEVERITY_STEPS.index, default="info")
        listed = None
        if rule.watchlist and self.engine.watchlists:
            name, key = rule.watchlist.name, rule.watchlist.field
            values = [group[key]] if key in group else [f["fields"].get(key) for f in facts]
            listed = next((str(v) for v in dict.fromkeys(values) if v and self.engine.watchlists(name, str(v))), None)
        return (raise_severity(severity) if listed else severity), listed


def prune_quiet_hits(engine, policy: Policy, now: datetime) -> int:
    """Hits are pruned per group when the group has new hits; this removes those of groups that went
    quiet, once they are older than their rule's window (and the late grace) by the collector's
    clock: a rule counting over a day keeps its hits a day, the others theirs no longer. Hits of
    rules no longer in the policy go after the longest window."""
    windows = {r.id: r.window_s for r in policy.ruleset.correlation_rules if r.kind != "absence"}
    longest = max(windows.values(), default=0.0)
    bursts = select(correlation_state.c.alert_id)
    loose = or_(rule_hits.c.alert_id.is_(None), rule_hits.c.alert_id.not_in(bursts))
    removed = 0
    with writing(engine) as conn:
        for window_s in sorted(set(windows.values())):
            ids = sorted(rule_id for rule_id, w in windows.items() if w == window_s)
            cutoff = iso(now - timedelta(seconds=window_s) - 2 * LATE_GRACE)
            removed += conn.execute(delete(rule_hits).where(rule_hits.c.rule_id.in_(ids), rule_hits.c.ts < cutoff, loose)).rowcount
        cutoff = iso(now - timedelta(seconds=longest) - 2 * LATE_GRACE)
        gone = rule_hits.c.rule_id.not_in(sorted(windows)) if windows else rule_hits.c.rule_id.is_not(None)
        removed += conn.execute(delete(rule_hits).where(gone, rule_hits.c.ts < cutoff, loose)).rowcount
    return removed


def group_key(group: dict[str, Any]) -> str:
    canonical = json.dumps(list(group.items()), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _span(new: list[Hit]) -> tuple[str, str, timedelta]:
    """The times a group's new hits (sorted by time) can share a window with: (since, until, window)."""
    window = timedelta(seconds=new[0].rule.window_s)
    return iso(parse_ts(new[0].ts) - window), iso(parse_ts(new[-1].ts) + window), window


def _window_rows(
    conn: Connection, spans: dict[tuple[str, str], tuple], loose_only: bool = False, parse: Callable[[str], dict] = json.loads
) -> dict[tuple[str, str], list[_Row]]:
    """Each group's stored hits within its span, oldest first (only those in no alert with
    loose_only); one query for all the groups, each group's own span applied here.

    Each rule asks for its own groups within its own groups' times: rules grouped by the same
    fields share group keys, and asking every rule for every key read the hits of the other
    rules' bursts as well (a bulk-egress window read every mass-deletion burst of the same users,
    thousands of rows a batch and more as the bursts grew), only to drop them here."""
    found: dict[tuple[str, str], list[_Row]] = defaultdict(list)
    for pairs in _chunks(sorted(spans)):
        by_rule: dict[str, list[str]] = defaultdict(list)
        for rule_id, key in pairs:
            by_rule[rule_id].append(key)
        query = (
            select(rule_hits.c.rule_id, rule_hits.c.group_key, rule_hits.c.id, rule_hits.c.step, rule_hits.c.event_id, rule_hits.c.ts,
                   rule_hits.c.facts, rule_hits.c.alert_id)
            .where(or_(*(
                and_(
                    rule_hits.c.rule_id == rule_id,
                    rule_hits.c.group_key.in_(keys),
                    rule_hits.c.ts >= min(spans[(rule_id, k)][0] for k in keys),
                    rule_hits.c.ts <= max(spans[(rule_id, k)][1] for k in keys),
                )
                for rule_id, keys in by_rule.items()
            )))
            .order_by(rule_hits.c.ts, rule_hits.c.id)
        )  # fmt: skip
        if loose_only:
            query = query.where(rule_hits.c.alert_id.is_(None))
        for rule_id, key, i, s, e, t, f, a in conn.execute(query).all():
            span = spans[(rule_id, key)]
            if span[0] <= t <= span[1]:
                found[(rule_id, key)].append(_Row(i, s, e, parse_ts(t), t, parse(f), a))
    return found


def _chunks(values: list, size: int = 500) -> list[list]:
    """IN lists of a bounded length (SQLite caps the parameters of one statement)."""
    return [values[i : i + size] for i in range(0, len(values), size)]


def _states(conn: Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], _Burst]:
    """The current burst of each (rule, group), with whether its alert is still open."""
    found: dict[tuple[str, str], _Burst] = {}
    wanted = set(keys)
    for chunk in _chunks(sorted({k for _, k in keys})):
        query = (
            select(correlation_state.c.rule_id, correlation_state.c.group_key, correlation_state.c.alert_id,
                   correlation_state.c.first_ts, correlation_state.c.last_ts, alerts.c.status, correlation_state.c.group_values)
            .select_from(correlation_state.outerjoin(alerts, alerts.c.id == correlation_state.c.alert_id))
            .where(correlation_state.c.group_key.in_(chunk))
        )
        for rule_id, key, alert_id, first_ts, last_ts, status, values in conn.execute(query):
            if (rule_id, key) not in wanted:
                continue
            total = _loaded(json.loads(values).get(BURST_KEY)) if values and BURST_KEY in values else None
            found[(rule_id, key)] = _Burst(alert_id, parse_ts(first_ts), parse_ts(last_ts), status in OPEN_STATUSES, total=total)
    return found


def _join(burst: _Burst, rows: list[_Row]) -> None:
    burst.rows.update((r.id, r) for r in rows)
    burst.first = min(burst.first, *(r.at for r in rows))
    burst.last = max(burst.last, *(r.at for r in rows))


def _absorb(burst: _Burst, pending: list[_Row], window: timedelta) -> list[_Row]:
    """New hits within the window of an open burst join it (the burst grows as they do); the rest are left."""
    while True:
        joining = [r for r in pending if burst.first - window <= r.at <= burst.last + window]
        if not joining:
            return pending
        _join(burst, joining)
        pending = [r for r in pending if r.id not in burst.rows]


class _Window:
    """Running count, sums and distinct values of the hits in a sliding window."""

    def __init__(self, rule: CorrelationRule):
        self.rule = rule
        self.count = 0
        self.sums: dict[str, float] = defaultdict(float)
        self.values: dict[str, Counter] = defaultdict(Counter)

    def _change(self, row: _Row, sign: int) -> None:
        self.count += sign
        for t in self.rule.thresholds:
            value = row.facts["fields"].get(t.field) if t.field else None
            if t.kind == "sum" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.sums[t.field] += sign * float(value)
            elif t.kind == "distinct" and value is not None:
                counter = self.values[t.field]
                counter[_hashable(value)] += sign
                if counter[_hashable(value)] <= 0:
                    del counter[_hashable(value)]

    def add(self, row: _Row) -> None:
        self._change(row, 1)

    def remove(self, row: _Row) -> None:
        self._change(row, -1)

    def holds(self) -> bool:
        held = [all(test.holds(self._value(t)) for test in t.tests) for t in self.rule.thresholds]
        return any(held) if self.rule.require == "any" else all(held)

    def _value(self, t) -> float:
        if t.kind == "count":
            return self.count
        if t.kind == "sum":
            return self.sums[t.field]
        return len(self.values[t.field])


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) else json.dumps(value, sort_keys=True, default=str)


def _chain(rows: list[_Row], final: _Row, window: timedelta, steps: int) -> list[_Row] | None:
    """Steps 1..n-1 found backwards from the last, each no later than the next, all within the window.

    Taking the latest candidate for each step leaves the most room for the ones before it.
    """
    chain, used, bound = [final], {final.event_id}, final.at
    for step in range(steps - 2, -1, -1):
        candidates = [r for r in rows if r.step == step and r.event_id not in used and final.at - window <= r.at <= bound]
        if not candidates:
            return None
        best = max(candidates, key=lambda r: (r.at, r.id))
        chain.insert(0, best)
        used.add(best.event_id)
        bound = best.at
    return chain


# The alerts of the bursts a batch opens inserted by one insert_alerts (Correlator._insert_opened);
# False: the reference, one insert_alert as each burst opens (tests/server/test_i1_open_at_once.py compares)
OPEN_AT_ONCE = True

# PostgreSQL: _prune's deletes as one DELETE ... USING unnest() (_prune_setwise), the state rows'
# updates as one UPDATE ... FROM unnest() (_update_states); False: the reference, SQLAlchemy's
# executemany, as on SQLite (tests/server/test_prune_setwise.py compares)
SETWISE_PRUNE = True


def _update_states(conn: Connection, known: list[dict]) -> None:
    """The state rows of bursts that grew, each (rule, group) once: on PostgreSQL one UPDATE ...
    FROM unnest() (database.update_rows) where the executemany sent one statement a group."""
    if not known:
        return
    if conn.dialect.name == "postgresql" and SETWISE_PRUNE:
        update_rows(conn, correlation_state, known, ("rule_id", "group_key"))
        return
    conn.execute(
        update(correlation_state)
        .where(correlation_state.c.rule_id == bindparam("b_rule"), correlation_state.c.group_key == bindparam("b_key"))
        .values(group_values=bindparam("group_values"), alert_id=bindparam("alert_id"), first_ts=bindparam("first_ts"),
                last_ts=bindparam("last_ts"), updated_at=bindparam("updated_at")),
        [{**s, "b_rule": s["rule_id"], "b_key": s["group_key"]} for s in known],
    )  # fmt: skip


def _prune(conn: Connection, prunes: list[tuple[str, str, str, int | None]]) -> None:
    """Hits older than the window can no longer count, except those explaining the current burst:
    (rule, group, older than, the burst's alert), one statement for all the groups."""
    if conn.dialect.name == "postgresql" and SETWISE_PRUNE:
        _prune_setwise(conn, prunes)
        return
    stale = and_(rule_hits.c.rule_id == bindparam("b_rule"), rule_hits.c.group_key == bindparam("b_key"), rule_hits.c.ts < bindparam("b_before"))
    kept = [{"b_rule": r, "b_key": k, "b_before": b, "b_keep": a} for r, k, b, a in prunes if a is not None]
    if kept:
        keep = or_(rule_hits.c.alert_id.is_(None), rule_hits.c.alert_id != bindparam("b_keep"))
        conn.execute(delete(rule_hits).where(and_(stale, keep)), kept)
    plain = [{"b_rule": r, "b_key": k, "b_before": b} for r, k, b, a in prunes if a is None]
    if plain:
        conn.execute(delete(rule_hits).where(stale), plain)


def _prune_setwise(conn: Connection, prunes: list[tuple[str, str, str, int | None]]) -> None:
    """_prune on PostgreSQL: one DELETE for every group, its (rule, group, older than, alert kept)
    travelling as binary arrays (database.insert_rows' way), where psycopg's executemany sends one
    statement per group (a batch touches some 35 groups: 1-2 ms of the database's time and a
    millisecond of Python). A group is named once in `prunes`; the deletes do not depend on one
    another, so one statement removes what the executemany's did."""
    if not prunes:
        return
    rules, keys, befores, alerts = (list(column) for column in zip(*prunes, strict=True))
    conn.exec_driver_sql(
        "DELETE FROM rule_hits h USING unnest(%(rules)b::text[], %(keys)b::text[], %(befores)b::text[], %(alerts)b::bigint[])"
        " AS p(rule_id, group_key, before, keep) WHERE h.rule_id = p.rule_id AND h.group_key = p.group_key AND h.ts < p.before"
        " AND (p.keep IS NULL OR h.alert_id IS NULL OR h.alert_id <> p.keep)",
        {"rules": rules, "keys": keys, "befores": befores, "alerts": alerts},
    )


def _common(key: str, group: dict, facts: list[dict]) -> Any:
    if key in group:
        return group[key]
    values = {f.get(key) for f in facts}
    return values.pop() if len(values) == 1 else None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def _total(rule: CorrelationRule, hits: list[tuple[int, str, dict]]) -> dict:
    """The running total of some hits (id, ts, facts), oldest first: what _save explains a burst from."""
    watch: dict[str, list] = {}
    if rule.watchlist:
        for hit_id, ts, facts in hits:
            value = facts["fields"].get(rule.watchlist.field)
            if value:
                watch.setdefault(_json(value), [ts, hit_id, value])
    return {
        "facts": burst_facts(rule, [f for *_, f in hits], [i for i, *_ in hits]),
        "levels": sorted({f.get("level") for *_, f in hits}, key=repr),
        "agents": _two_of(f.get("agent_id") for *_, f in hits),
        "watch": watch,
        "span": (hits[0][1], hits[-1][1]),
    }


def _merge(before: dict | None, after: dict) -> dict:
    """Two running totals of disjoint hits as one."""
    if before is None:
        return after
    watch = dict(before["watch"])
    for k, w in after["watch"].items():
        if k not in watch or (w[0], w[1]) < (watch[k][0], watch[k][1]):
            watch[k] = w
    return {
        "facts": before["facts"].merged(after["facts"]),
        "levels": sorted(set(before["levels"]) | set(after["levels"]), key=repr),
        "agents": _two_of(before["agents"] + after["agents"]),
        "watch": watch,
        "span": (min(before["span"][0], after["span"][0]), max(before["span"][1], after["span"][1])),
    }


def _two_of(values) -> tuple:
    return tuple(sorted(set(values), key=repr)[:2])


def _stored(total: dict) -> dict:
    """A running total as JSON for group_values[BURST_KEY] (sets in a fixed order)."""
    f: BurstFacts = total["facts"]

    def listing(values) -> list:
        return sorted(values, key=lambda v: _json(v))

    return {
        "count": f.count, "total": f.total, "first_ts": f.first_ts, "last_ts": f.last_ts, "last_order": f.last_order,
        "last_user": f.last_user, "last_host": f.last_host, "types": listing(f.types), "classified": f.classified,
        "places": listing(f.places), "users": list(f.users), "hosts": list(f.hosts),
        "distinct": [[k, listing(v)] for k, v in f.distinct], "sums": [list(p) for p in f.sums],
        "levels": total["levels"], "agents": list(total["agents"]),
        "watch": [total["watch"][k] for k in sorted(total["watch"])], "span": list(total["span"]),
    }


def _loaded(stored: Any) -> dict | None:
    """_stored read back; None when absent or not readable (the burst is then rebuilt from its hits)."""
    if not isinstance(stored, dict):
        return None
    try:
        facts = BurstFacts(
            int(stored["count"]), stored["total"], stored["first_ts"], stored["last_ts"], int(stored["last_order"]),
            stored["last_user"], stored["last_host"], frozenset(stored["types"]), bool(stored["classified"]),
            frozenset(stored["places"]), tuple(stored["users"]), tuple(stored["hosts"]),
            tuple((k, frozenset(v)) for k, v in stored["distinct"]), tuple((k, v) for k, v in stored["sums"]),
        )
        return {
            "facts": facts, "levels": list(stored["levels"]), "agents": tuple(stored["agents"]),
            "watch": {_json(w[2]): list(w) for w in stored["watch"]}, "span": tuple(stored["span"]),
        }
    except (KeyError, TypeError, ValueError):
        return None
