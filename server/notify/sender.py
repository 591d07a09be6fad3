"""The sender: a background thread of the collector that delivers what the outbox holds.

Sending happens outside any database transaction (a slow SMTP server must not hold the write
lock): claim (short transaction, rows leased) -> send each -> record each outcome (short
transaction). Any collector's sender may take any row; leases keep two from taking the same one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from loguru import logger
from sqlalchemy.engine import Engine

from server.notify import outbox
from server.notify.assignment import assignee_email, assignment_message, recipient_url
from server.notify.channels import redact
from server.notify.messages import alert_message, digest_message
from server.notify.transport import DeliveryError, Transport
from server.times import Clock

POLL_S = 2.0


class NotificationSender:
    """`start()` / `stop(timeout_s)`; `run_once()` is one round (what the thread repeats)."""

    def __init__(
        self, engine: Engine, clock: Clock, transport: Transport, poll_s: float = POLL_S, public_url: str | None = None,
        zone: str = "Asia/Shanghai", language: str | None = None, titles_zh: Callable[[], dict[str, str]] | None = None,
    ):
        self.engine, self.clock, self.transport = engine, clock, transport
        self.zone = zone  # the firm's clock (server.timezone): message times
        self.language = language  # the firm's language (server.language); None: both languages
        self.titles_zh = titles_zh or dict  # rule id -> Chinese title, from the active policy
        self.poll_s = poll_s
        self.public_url = public_url
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="notify-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning("notification sender did not stop within timeout_s={}", timeout_s)

    def wake(self) -> None:
        """Look at the outbox now rather than at the next poll."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self.run_once()
            except Exception as exc:  # the database may be away: the next round tries again
                logger.error("notification round failed error={}: {!r}", type(exc).__name__, str(exc))

    def run_once(self) -> dict[str, int]:
        """Claim what is due, send it, record the outcomes; returns counts by outcome."""
        outcomes: dict[str, int] = {}
        for job in outbox.claim(self.engine, self.clock()):
            if self._stopping.is_set():
                break  # the lease runs out and a sender tries again
            status = self._send(job)
            outcomes[status] = outcomes.get(status, 0) + 1
        return outcomes

    def _titles(self) -> dict[str, str]:
        if self.language != "zh":
            return {}
        try:
            return self.titles_zh()
        except Exception as exc:  # no policy to read: the stored English titles stand
            logger.warning("rule titles unavailable error={}: {!r}", type(exc).__name__, str(exc))
            return {}

    def _send(self, job: outbox.Job) -> str:
        renewed = outbox.renew(self.engine, job, self.clock())
        if renewed is None:
            logger.warning("notification lease lost, another sender has it channel={} row={}", job.channel.id, job.id)
            return "lost"
        job = renewed
        alerts = outbox.job_alerts(self.engine, job)
        target = redact(job.channel.url)
        if not alerts:  # the alert was deleted meanwhile
            outbox.record(self.engine, job, self.clock(), None)
            return "sent"
        url, error = job.channel.url, None
        if job.kind == "digest":
            message = digest_message(alerts, outbox.WINDOW_S, job.channel.max_per_hour, self.language, self._titles())
        elif job.kind == "assign":  # to the assignee's own address (server/notify/assignment.py)
            message = assignment_message(alerts[0]["assignee"] or "-", alerts, self.public_url)
            email = assignee_email(self.engine, alerts[0]["assignee"])
            url, error = (recipient_url(url, email), None) if email else (None, "the assignee has no valid e-mail address")
        else:
            title_zh = self._titles().get(alerts[0].get("rule_id") or "")
            message = alert_message(alerts[0], self.public_url, self.zone, self.language, title_zh)
        try:
            if url is not None:
                self.transport.deliver(url, message)
        except DeliveryError as exc:
            error = str(exc)
        status = outbox.record(self.engine, job, self.clock(), error)
        what = f"{job.kind} of {len(alerts)}" if job.kind in ("digest", "assign") else f"alert {alerts[0]['id']}"
        if status == "sent":
            logger.info("notification sent channel={} target={} {}", job.channel.id, target, what)
        elif status == "failed":
            logger.error(
                "notification given up channel={} target={} {} attempts={} error={!r}",
                job.channel.id,
                target,
                what,
                job.attempts + 1,
                error,
            )
        else:
            logger.warning(
                "notification not delivered, will retry channel={} target={} {} attempt={} error={!r}",
                job.channel.id,
                target,
                what,
                job.attempts + 1,
                error,
            )
        return status
