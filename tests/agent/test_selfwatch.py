"""The agent's CPU and memory caps, on recorded samples and on the real process."""

from __future__ import annotations

from agent.selfwatch import MB, Caps, Sample, SelfWatch, own_sample


class Feed:
    """Samples every 5 s: cpu_rate is CPU seconds per second (1.0 = one core busy)."""

    def __init__(self) -> None:
        self.at, self.cpu_s, self.rss = 0.0, 0.0, 50 * MB
        self.cpu_rate = 0.0

    def __call__(self) -> Sample:
        self.at += 5
        self.cpu_s += 5 * self.cpu_rate
        return Sample(self.at, self.cpu_s, self.rss)


def _watch(feed: Feed, **caps):
    events, restarts, nices = [], [], []
    watch = SelfWatch(
        Caps(**caps), lambda t, **f: events.append((t, f)), restarts.append, sample=feed, renice=nices.append
    )
    return watch, events, restarts, nices


def _run(watch: SelfWatch, seconds: float) -> None:
    for _ in range(int(seconds / 5)):
        watch.check()


def test_an_idle_agent_says_nothing():
    feed = Feed()
    feed.cpu_rate = 0.002
    watch, events, restarts, nices = _watch(feed)
    _run(watch, 600)
    assert events == [] and restarts == [] and nices == []


def test_cpu_over_the_cap_for_a_window_is_one_event_an_hour_and_a_lower_priority():
    feed = Feed()
    watch, events, _, nices = _watch(feed, cpu_percent=25)
    feed.cpu_rate = 0.5  # half a core
    _run(watch, 40)  # a burst shorter than the window: nothing yet
    assert events == []
    _run(watch, 1800)
    assert [t for t, _ in events] == ["agent.limit"]
    details = events[0][1]["details"]
    assert details["limit"] == "cpu" and 45 <= details["value"] <= 55 and details["cap"] == 25
    assert nices == [10]
    _run(watch, 1900)  # an hour later and still busy: one more
    assert len(events) == 2 and nices == [10]


def test_a_short_spike_inside_a_quiet_minute_is_averaged_away():
    feed = Feed()
    watch, events, _, _ = _watch(feed, cpu_percent=25)
    _run(watch, 120)
    feed.cpu_rate = 1.0
    watch.check()  # 5 s at a full core
    feed.cpu_rate = 0.0
    _run(watch, 120)
    assert events == []


def test_memory_over_the_cap_is_reported_and_far_over_it_asks_for_a_restart_once():
    feed = Feed()
    watch, events, restarts, _ = _watch(feed, memory_mb=100)
    feed.rss = 150 * MB
    _run(watch, 300)
    assert [e[1]["details"]["limit"] for e in events] == ["memory"] and restarts == []
    feed.rss = 250 * MB  # over twice the cap, and staying there
    _run(watch, 30)
    assert restarts == []
    _run(watch, 60)
    assert len(restarts) == 1 and "250 MB" in restarts[0]
    _run(watch, 300)
    assert len(restarts) == 1


def test_a_failing_renice_is_not_fatal():
    feed = Feed()
    feed.cpu_rate = 1.0

    def refuse(_: int) -> None:
        raise PermissionError("not allowed")

    watch = SelfWatch(Caps(), lambda *a, **k: None, lambda why: None, sample=feed, renice=refuse)
    _run(watch, 120)


def test_the_real_process_can_be_sampled():
    first = own_sample()
    sum(i * i for i in range(200_000))
    second = own_sample()
    assert second.cpu_s >= first.cpu_s and second.rss > 10 * MB and second.at >= first.at
