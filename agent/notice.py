"""The employee is told: a desktop notice when their own copy raised an alert they should know of.

The agent evaluates the rules itself (agent/policy.py stamps each event with its rule ids and
severity before it is spooled), so it knows an alert's severity when the event is stored and
tells the employee then, without waiting for the collector: offline too. The spool hands every
stored event to `offer` (agent.spool.Spool.on_stored); an `egress.file` event whose severity is
one of `notify_user.severities` and that names a user is queued here. Off by default (no
severity listed). The agent's group may set the severities centrally (the group policy's
`notify_severities`, rules/grouppolicy.py): they then override the local config's.

Who: the writer the event names (`user`), and only when that user has a graphical session
(agent/desktop.py). What: agent/notice_text.py, in the session's language, with the firm's text.

Bounded: `offer` never blocks (a full queue drops, counted and logged once); one thread shows
the notices, each command with a deadline. At most `per_minute` notices per user in any minute;
what comes beyond is folded into one "and N more" notice, shown once the burst has been quiet
for QUIET_S, at most once a minute. A failure (no notification service, a service that does not
answer) is logged once per user and reason, then at debug level.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from loguru import logger

from agent import desktop
from agent.config import NoticeConfig
from agent.notice_text import NoticeText, folded_text, notice_text
from rules.events import Event

QUEUE_MAX = 1000
WINDOW_S = 60.0  # the rate limit's window
QUIET_S = 2.0  # a fold is shown once no more events of the user came for this long
TICK_S = 0.25
SESSION_CACHE_S = 10.0  # a user's session (or its absence) is looked up again after this
APP_NAME = "MiWei 密卫"
NOTIFIED_TYPES = frozenset({"egress.file"})


@dataclass
class _UserWindow:
    sent_at: deque[float] = field(default_factory=deque)  # individual notices in the last WINDOW_S
    folded: int = 0  # events not shown one by one, waiting for the fold notice
    last: Event | None = None
    folded_at: float = 0.0
    summary_at: float = float("-inf")


class Notifier:
    def __init__(
        self,
        config: NoticeConfig,
        find_session: Callable[[str], desktop.Session | None] = desktop.find_session,
        show: Callable[..., None] = desktop.show,
        capabilities: Callable[..., frozenset[str]] = desktop.capabilities,
        tools: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self._find_session, self._show, self._capabilities = find_session, show, capabilities
        self.tools = desktop.notify_tools() if tools is None else tools
        self.clock = clock
        self._queue: queue.Queue[Event] = queue.Queue(maxsize=QUEUE_MAX)
        self._users: dict[str, _UserWindow] = {}
        self._sessions: dict[str, tuple[float, desktop.Session | None]] = {}
        self._markup: dict[tuple[int, str], bool] = {}
        self._logged: set[tuple[str, str]] = set()  # (user, reason) already logged at warning level
        self._group_severities: tuple[str, ...] | None = None  # the group's setting, over the config's
        self._started = False
        self._start_lock = threading.Lock()
        self.dropped = 0
        self.shown = 0  # notices shown (individual and folded), for status and tests
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notice", daemon=True)

    @property
    def severities(self) -> tuple[str, ...]:
        """The severities told of now: the agent's group's when it sets them, else notify_user's."""
        group = self._group_severities
        return group if group is not None else self.config.severities

    @property
    def enabled(self) -> bool:
        return bool(self.severities)

    def use_group(self, severities: tuple[str, ...] | None) -> None:
        """The group policy's notify_severities (None: the local config's again); a group that turns
        notices on starts the notice thread if the agent is running."""
        self._group_severities = tuple(severities) if severities is not None else None
        logger.info("desktop notices severities={} from={}", ",".join(self.severities) or "off",
                    "group" if severities is not None else "config")  # fmt: skip
        with self._start_lock:
            if self._started:
                self._start_thread()

    # --- any thread -------------------------------------------------------------------------

    def offer(self, events: Iterable[Event]) -> None:
        """Queue the stored events the employee is to be told of; never blocks, never raises."""
        if not self.enabled:
            return
        for event in events:
            if event.type not in NOTIFIED_TYPES or event.severity not in self.severities or not event.user:
                continue
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                self.dropped += 1
                if self.dropped == 1:
                    logger.warning("desktop notices dropped: their queue is full queue_max={}", QUEUE_MAX)

    def start(self) -> None:
        with self._start_lock:
            self._started = True
            self._start_thread()

    def _start_thread(self) -> None:
        if self.enabled and self._thread.ident is None and not self._stop.is_set():
            if not self.tools:
                logger.warning("desktop notices are on but no notification command is installed (gdbus or notify-send)")
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout_s)

    # --- the notice thread ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                event = self._queue.get(timeout=TICK_S)
            except queue.Empty:
                event = None
            try:
                if event is not None:
                    self._take(event)
                self._show_folds()
            except Exception as exc:  # contain: a notice must never end the thread
                self._log_once("*", type(exc).__name__, f"desktop notice failed error={exc!r}")

    def _take(self, event: Event) -> None:
        now = self.clock()
        window = self._users.setdefault(event.user, _UserWindow())
        while window.sent_at and now - window.sent_at[0] >= WINDOW_S:
            window.sent_at.popleft()
        if window.folded == 0 and len(window.sent_at) < self.config.per_minute:
            window.sent_at.append(now)
            self._notify(event.user, lambda language, firm: notice_text(event, language, firm))
            return
        window.folded += 1
        window.last, window.folded_at = event, now

    def _show_folds(self) -> None:
        now = self.clock()
        for user, window in self._users.items():
            if window.folded and now - window.folded_at >= QUIET_S and now - window.summary_at >= WINDOW_S:
                count, last = window.folded, window.last
                window.folded, window.last, window.summary_at = 0, None, now
                self._notify(user, lambda language, firm, c=count, e=last: folded_text(c, e, language, firm))

    def _notify(self, user: str, text: Callable[[str, str], NoticeText]) -> None:
        session = self._session(user)
        if session is None:
            self._log_once(user, "no session", f"no desktop notice: no graphical session user={user!r}", debug=True)
            return
        language = (
            self.config.language
            if self.config.language != "auto"
            else desktop.language_of(session.locale, self.config.default_language)
        )
        notice = text(language, self.config.text_zh if language == "zh" else self.config.text_en)
        started = self.clock()
        try:
            markup = self._markup_of(session)
            self._show(session, APP_NAME, notice.summary, notice.body, self.tools, self.config.timeout_s, markup)
        except desktop.NoticeFailed as exc:
            self._log_once(user, str(exc), f"desktop notice not shown user={user!r} why={str(exc)!r}")
            return
        self.shown += 1
        logger.info("desktop notice shown user={!r} language={} seconds={:.2f}", user, language, self.clock() - started)

    def _markup_of(self, session: desktop.Session) -> bool:
        key = (session.uid, session.bus)
        if key not in self._markup:
            self._markup[key] = "body-markup" in self._capabilities(session, self.tools, self.config.timeout_s)
        return self._markup[key]

    def _session(self, user: str) -> desktop.Session | None:
        now = self.clock()
        cached = self._sessions.get(user)
        if cached is not None and now - cached[0] < SESSION_CACHE_S:
            return cached[1]
        session = self._find_session(user)
        if len(self._sessions) > 10_000:
            self._sessions.clear()
        self._sessions[user] = (now, session)
        return session

    def _log_once(self, user: str, reason: str, message: str, debug: bool = False) -> None:
        if (user, reason) in self._logged or debug:
            logger.debug(message)
            return
        if len(self._logged) < 10_000:
            self._logged.add((user, reason))
        logger.warning(message)
