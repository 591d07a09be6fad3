"""The reporter thread: spool -> collector, heartbeats, enrolment, and the collector's policy.

Events leave the spool only after the collector answered 2xx. Failures back off exponentially
with jitter, capped, and never block the watchers (they only write to the spool). Each heartbeat
answer names the collector's policy version; when it differs from ours the reporter fetches the
policy (a conditional GET) and offers it to the PolicyStore, which checks it whole before the swap.

What an answer means: 2xx delivered; 400, 413 and 422 the collector refuses the content (the
batch is bisected and the bad event kept in the dead table); 401 our token is no longer valid
(enrol again). Everything else (3xx, 403, 404, 405, 408, 429, other 4xx, 5xx, network errors) is
something between us and the collector or a passing state: back off and try again, never drop.
A 429 or 503 with Retry-After (seconds or an HTTP date) is waited out as asked, capped at
RETRY_AFTER_MAX_S, instead of the exponential backoff. Redirects are not followed: requests would
turn a redirected POST into a GET.

With `agent.ca_bundle` the collector's HTTPS certificate is checked against that CA file (else
the system store); a certificate that does not verify is a network error: nothing leaves the
spool. A plain http:// server_url to a non-loopback host is warned about loudly at start.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from loguru import logger

from agent import __version__
from agent.files import write_atomically
from agent.identity import save_agent_id
from agent.lastrun import stamp_alive
from agent.locations import agent_os
from agent.policy import PolicyRefused, PolicyStore
from agent.spool import Spool, SpooledEvent
from rules.events import Event, utc_now_iso

TIMEOUT_S = 30.0  # a request unanswered this long is retried (agent.request_timeout_s)
CONNECT_TIMEOUT_S = 5.0  # at most this of it to connect
BACKOFF_MIN_S = 0.5
# a batch that would go out less than this after the last one waits that long for more (a burst); short,
# since one copy after another, each waited for, must not wait (the outbox already gathers a burst's commits)
GATHER_S = 0.05
FAST_GATHER = True  # False: a gathered batch is read again whole (the reference)
FAST_ENVIRONMENT = True  # False: requests reads the proxies, CA bundle and .netrc from the environment each request
BACKOFF_MAX_S = 60.0  # agent.retry_max_s
RETRY_AFTER_MAX_S = 300.0  # a collector asking for longer is not believed further than this
TOKEN_FILE = "token"


REFUSED_STATUS = (400, 413, 422)  # the collector refuses the content itself


class Refused(Exception):
    """The collector refused what we sent as invalid (400, 413, 422)."""


class Unauthorized(Exception):
    """401: the collector does not know our token (any more)."""


class DeliveryError(Exception):
    """An answer that says nothing about our events (3xx, 403, 404, 5xx...): try again later."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s  # the collector's Retry-After, when it sent one


class Reporter:
    def __init__(
        self,
        server_url: str,
        enroll_secret: str,
        state_dir: str,
        agent_id: str,
        host: str,
        spool: Spool,
        heartbeat_s: float = 30.0,
        batch_max: int = 500,
        status: Callable[[], dict] = dict,
        session: requests.Session | None = None,
        policy: PolicyStore | None = None,
        make_event: Callable[..., Event] | None = None,
        ca_bundle: str | None = None,
        timeout_s: float = TIMEOUT_S,
        retry_max_s: float = BACKOFF_MAX_S,
    ):
        """`timeout_s`: how long a request may wait for its answer. A collector that answers later
        (frozen, overloaded) may still have stored the batch: the retry is a duplicate, which the
        collector recognises by the event ids. `retry_max_s`: the backoff's cap."""
        self.server_url = server_url
        self.enroll_secret = enroll_secret
        self.state_dir, self.agent_id, self.host = state_dir, agent_id, host
        self.spool = spool
        self.heartbeat_s, self.batch_max = heartbeat_s, batch_max
        self.timeout = (min(CONNECT_TIMEOUT_S, timeout_s), timeout_s)  # (connect, read) for requests
        self.retry_max_s = max(BACKOFF_MIN_S, retry_max_s)
        self.status = status  # extra heartbeat fields (watched paths, refused events, pipeline progress)
        self.session = session or requests.Session()
        # given on every request: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a
        # session's verify, which would silently trust the system store instead of our CA
        self.verify: str | bool = ca_bundle or True
        self._settings = _environment_settings(self.session, server_url, self.verify) if FAST_ENVIRONMENT else {}
        _warn_if_plain(server_url)
        self.policy = policy  # None: this reporter does not follow the collector's policy
        self.make_event = make_event  # for agent.error events (a policy that cannot be put in force)
        self._refused_policy: str | None = None  # the announced version last refused (reported once)
        self._policy_missing_logged = False
        self.token: str | None = self._load_token()
        self._backoff_s = 0.0
        self._failing: set[tuple[str, str]] = set()  # (where, kind) reported by an agent.error, until it works again
        self._next_heartbeat = 0.0
        self._delivered_at = -GATHER_S  # time.monotonic() of the last batch sent
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reporter", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0, drain_s: float = 0.0) -> None:
        """Stop; with drain_s, first try that long to deliver what is spooled (a clean stop)."""
        deadline = time.monotonic() + drain_s
        while drain_s and time.monotonic() < deadline and self.spool.depth() and self._backoff_s == 0:
            time.sleep(0.05)
        self._stop.set()
        self.spool.wake()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self.session.close()

    # --- the loop -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self._cycle()
            except Unauthorized:
                logger.warning("collector refused our token; enrolling again")
                self._drop_token()
                self._back_off()
                continue
            except DeliveryError as exc:
                if exc.retry_after_s is not None:  # the collector said when: wait that, not our guess
                    logger.warning("collector asks us to wait error={!r} retry_in_s={:.1f}", _safe(exc), exc.retry_after_s)
                    self._stop.wait(max(BACKOFF_MIN_S, exc.retry_after_s))
                    continue
                logger.warning("delivery failed error={!r} retry_in_s={:.1f}", _safe(exc), self._back_off_next())
                self._back_off()
                continue
            except (requests.RequestException, OSError, ValueError) as exc:
                logger.warning("delivery failed error={!r} retry_in_s={:.1f}", _safe(exc), self._back_off_next())
                self._back_off()
                continue
            except Exception as exc:  # contain: nothing may end delivery for good
                logger.exception("reporter cycle failed error={!r} retry_in_s={:.1f}", _safe(exc), self._back_off_next())
                self._report_failure("cycle", exc)
                self._back_off()
                continue
            self._backoff_s = 0.0
            self._recovered("cycle")
            if not worked:
                self.spool.wait(min(1.0, max(0.0, self._next_heartbeat - time.monotonic())))

    def _report_failure(self, where: str, exc: Exception) -> None:
        """Spool one agent.error per kind of failure until that part works again."""
        kind = type(exc).__name__
        if (where, kind) in self._failing:
            return
        self._failing.add((where, kind))
        fields = dict(error=f"reporter {where} failed: {_safe(exc)}"[:1900], details={"failure": kind, "where": where})
        try:
            event = self.make_event("agent.error", **fields) if self.make_event else Event(
                type="agent.error", agent_id=self.agent_id, host=self.host, **fields
            )
            self.spool.put([event])
        except (sqlite3.Error, OSError, ValueError) as put_exc:  # the spool is what fails
            logger.error("cannot spool the failure error={!r}", _safe(put_exc))

    def _recovered(self, where: str) -> None:
        gone = {f for f in self._failing if f[0] == where}
        if gone:
            logger.info("reporter works again where={!r}", where)
            self._failing -= gone

    def _cycle(self) -> bool:
        """One round: enrol if needed, heartbeat when due, send one batch. True if it sent one."""
        if self.token is None:
            self._enroll()
        if time.monotonic() >= self._next_heartbeat:
            self._beat()
        batch = self.spool.peek(self.batch_max)
        if not batch:
            return False
        since_s = time.monotonic() - self._delivered_at
        if len(batch) < self.batch_max and since_s < GATHER_S:
            # a burst (a batch went out a moment ago): let its events gather into fewer, larger
            # batches; an event after a quiet spell still goes out at once
            self._stop.wait(GATHER_S - since_s)
            if FAST_GATHER:  # what came meanwhile joins it; the batch's own events are not read again
                batch = self.spool.peek(self.batch_max, after=batch)
            else:
                batch = self.spool.peek(self.batch_max) or batch
        self._deliver(batch)
        self._delivered_at = time.monotonic()
        return True

    def _beat(self) -> None:
        """A heartbeat. One the collector refuses is reported and retried a period later: it must
        not hold back the events."""
        self._mark_alive()
        try:
            answer = self._heartbeat()
        except Refused as exc:
            self._next_heartbeat = time.monotonic() + self.heartbeat_s
            logger.error("collector refused the heartbeat reason={!r}", str(exc))
            self._report_failure("heartbeat", exc)
            return
        self._next_heartbeat = time.monotonic() + self.heartbeat_s
        self._recovered("heartbeat")
        self._follow_policy(answer.get("policy_version"))

    def _mark_alive(self) -> None:
        """Stamp this round's time: after a kill, the next start says when this run was last known
        alive (agent/lastrun.py). A state folder that cannot take it must not stop heartbeats."""
        try:
            stamp_alive(self.state_dir)
        except OSError as exc:
            logger.warning("cannot stamp the agent alive error={!r}", _safe(exc))

    def _deliver(self, batch: list[SpooledEvent]) -> None:
        try:
            answer = self._post("/api/v1/events", _batch_body(batch))
        except Refused as exc:
            if len(batch) == 1:
                logger.error("collector refused an event id={!r} reason={!r}; kept in the dead table", batch[0].id, str(exc))
                self.spool.quarantine(batch, str(exc))
                self._explain_gap(batch[0], str(exc))
                return
            half = len(batch) // 2  # find the bad event(s) without holding back the good ones
            self._deliver(batch[:half])
            self._deliver(batch[half:])
            return
        self.spool.ack(batch, state={"last_delivery": json.dumps({"at": time.time(), **answer})})
        logger.debug("delivered events={!r} duplicates={!r}", answer.get("accepted"), answer.get("duplicates"))

    def _explain_gap(self, refused: SpooledEvent, reason: str) -> None:
        """A refused event leaves a hole in the chain the collector sees: say which, and why.

        The agent.gap is spooled before the next heartbeat, whose `unsent_from` then stays at or
        below the hole until the explanation is delivered."""
        try:
            seq = json.loads(refused.body).get("seq")
        except ValueError:
            seq = None
        if not isinstance(seq, int):
            return  # spooled by an older agent, outside the chain
        details = {"seq_from": seq, "seq_to": seq, "event_id": refused.id, "reason": "refused by the collector"}
        fields = dict(error=f"event seq {seq} refused by the collector: {reason}"[:1900], details=details)
        event = self.make_event("agent.gap", **fields) if self.make_event else Event(
            type="agent.gap", agent_id=self.agent_id, host=self.host, **fields
        )
        self.spool.put([event])

    def _heartbeat(self) -> dict:
        body = {
            "agent_id": self.agent_id,
            "hostname": self.host,
            "os": agent_os(),  # the collector places the agent in a group by it (server/groups.py)
            "version": __version__,
            "spool_depth": self.spool.depth(),
            "chain": self.spool.chain_status(),  # the collector judges the chain up to unsent_from
            "agent_time": utc_now_iso(),  # the collector compares it with its own clock
        }
        body.update(self.status())
        if self.policy is not None:
            body["policy_version"] = self.policy.current.version
        answer = self._post("/api/v1/heartbeat", json.dumps(body))
        return answer if isinstance(answer, dict) else {}

    # --- the collector's policy -----------------------------------------------------------

    def _follow_policy(self, announced: object) -> None:
        """Fetch the policy when the collector announces another version than ours.

        A failed fetch is retried at the next heartbeat; it never holds back event delivery.
        """
        if self.policy is None or not isinstance(announced, str) or not announced:
            return  # a collector that does not announce a policy: keep ours
        current = self.policy.current.collector_version  # the rules' version plus the group's
        if announced == current:
            return
        try:
            self._fetch_policy(announced, current)
        except Unauthorized:
            raise
        except (DeliveryError, requests.RequestException, OSError) as exc:
            logger.warning("policy fetch failed error={!r} retry=next heartbeat", _safe(exc))

    def _fetch_policy(self, announced: str, current: str) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "If-None-Match": f'"{current}"', "Accept": "application/json"}
        r = self.session.get(
            self.server_url + "/api/v1/policy", headers=headers, timeout=self.timeout, allow_redirects=False, **self._request_settings()
        )
        if r.status_code == 304:
            logger.debug("policy unchanged policy_version={!r} announced={!r}", current, announced)
            return
        if r.status_code == 404:
            if not self._policy_missing_logged:
                logger.warning("collector does not serve a policy (404); keeping policy_version={!r}", current)
                self._policy_missing_logged = True
            return
        _check_status(r, refuse=False)  # a fetch refused is retried at the next heartbeat
        try:
            swapped = self.policy.offer(r.json())
        except (PolicyRefused, ValueError) as exc:  # ValueError: the body is not JSON
            self._policy_refused(announced, current, exc)
            return
        self._refused_policy = None
        if swapped is not None:  # PolicyStore.offer logged it
            self._next_heartbeat = 0.0  # tell the collector the new version now

    def _policy_refused(self, announced: str, current: str, exc: Exception) -> None:
        reason = str(exc) if isinstance(exc, PolicyRefused) else f"the answer is not JSON: {_safe(exc)}"
        if announced == self._refused_policy:
            logger.debug("policy still refused announced={!r} reason={!r}", announced, reason)
            return
        self._refused_policy = announced  # one event per refused version, not one per heartbeat
        logger.error("policy from the collector refused; keeping policy_version={!r} announced={!r} reason={!r}", current, announced, reason)
        if self.make_event is not None:
            event = self.make_event(
                "agent.error",
                error=f"policy {announced} refused, kept {current}: {reason}"[:1900],
                details={"announced_policy_version": announced, "policy_version": current},
            )
            self.spool.put([event])

    def _enroll(self) -> None:
        body = json.dumps({"enroll_secret": self.enroll_secret, "agent_id": self.agent_id, "hostname": self.host, "version": __version__, "os": agent_os()})
        r = self.session.post(
            self.server_url + "/api/v1/enroll", data=body, headers=_JSON, timeout=self.timeout, allow_redirects=False, **self._request_settings()
        )
        if r.status_code in (401, 403):
            raise DeliveryError(f"enrolment refused ({r.status_code}): check enroll_secret")
        _check_status(r, refuse=False)
        answer = r.json()
        agent_id = str(uuid.UUID(answer["agent_id"]))
        if agent_id != self.agent_id:  # our id was taken (we lost our token): adopt the new one
            logger.warning("collector gave a new agent id old={!r} new={!r}", self.agent_id, agent_id)
            save_agent_id(self.state_dir, agent_id)
            self.agent_id = agent_id
        self._save_token(answer["token"])
        self.token = answer["token"]
        if answer.get("state") == "pending":  # another live agent has our host name, or it is blocked
            logger.warning(
                "enrolled, but the collector holds our events until an admin approves this agent agent_id={!r} detail={!r}",
                self.agent_id,
                str(answer.get("detail", ""))[:300],
            )
        else:
            logger.info("enrolled agent_id={!r}", self.agent_id)

    def _post(self, path: str, body: str) -> dict:
        headers = {**_JSON, "Authorization": f"Bearer {self.token}"}
        r = self.session.post(
            self.server_url + path, data=body.encode("utf-8"), headers=headers, timeout=self.timeout, allow_redirects=False, **self._request_settings()
        )
        _check_status(r)
        return r.json() if r.content else {}

    def _request_settings(self) -> dict:
        """verify (given on every request: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override
        a session's), and with FAST_ENVIRONMENT the proxies and .netrc credentials read once."""
        return self._settings or {"verify": self.verify}

    # --- backoff and token ----------------------------------------------------------------

    def _back_off_next(self) -> float:
        return min(self.retry_max_s, max(BACKOFF_MIN_S, self._backoff_s * 2))

    def _back_off(self) -> None:
        self._backoff_s = self._back_off_next()
        self._stop.wait(random.uniform(0.5, 1.0) * self._backoff_s)  # jitter spreads a fleet's retries

    def _token_path(self) -> str:
        return os.path.join(self.state_dir, TOKEN_FILE)

    def _load_token(self) -> str | None:
        try:
            with open(self._token_path(), encoding="ascii") as f:
                return f.read().strip() or None
        except (OSError, UnicodeDecodeError):
            return None

    def _save_token(self, token: str) -> None:
        write_atomically(self._token_path(), token, 0o600)  # a new file, never a planted link

    def _drop_token(self) -> None:
        self.token = None
        try:
            os.unlink(self._token_path())
        except OSError:
            pass


_JSON = {"Content-Type": "application/json"}


def _check_status(r: requests.Response, refuse: bool = True) -> None:
    """Raise what a non-2xx answer means (see the module's docstring)."""
    code = r.status_code
    if 200 <= code < 300:
        return
    if code == 401:
        raise Unauthorized()
    if refuse and code in REFUSED_STATUS:
        raise Refused(f"{code} {r.text[:500]}")
    where = f" to {r.headers.get('Location', '')[:200]!r}" if 300 <= code < 400 else ""
    if code == 403:  # e.g. a pending agent: "this agent waits for an admin's approval"
        where = f": {_detail(r)}"
    retry = retry_after_s(r.headers.get("Retry-After")) if code in (403, 429, 503) else None
    raise DeliveryError(f"{code} {r.reason or ''}{where}".strip(), retry)


def _detail(r: requests.Response) -> str:
    """The collector's `detail` of a refusal, bounded (for the log)."""
    try:
        detail = r.json().get("detail", "")
    except (ValueError, AttributeError):
        detail = ""
    return detail[:300] if isinstance(detail, str) else ""  # logged with !r: control characters escaped


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent
    or unreadable, then the usual backoff applies."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value[:12])
    else:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(RETRY_AFTER_MAX_S, max(0.0, seconds))


def _warn_if_plain(server_url: str) -> None:
    """http:// to anything but this machine sends the token and the events in clear: say so loudly."""
    parts = urlsplit(server_url)
    if parts.scheme != "http":
        return
    host = parts.hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        logger.warning(
            "PLAIN HTTP to a non-loopback collector server_url={!r}: the agent token and every event cross the"
            " network unencrypted and unauthenticated; use https:// (agent.ca_bundle for a private CA)", server_url
        )


def _environment_settings(session: requests.Session, server_url: str, verify: str | bool) -> dict:
    """What requests reads from the environment for each request to the collector, read once:
    the proxies for its URL (HTTP(S)_PROXY, NO_PROXY), the CA bundle REQUESTS_CA_BUNDLE or
    CURL_CA_BUNDLE names when `agent.ca_bundle` does not, and ~/.netrc's credentials for its
    host; the session then stops reading them (trust_env off). Every request goes to one URL and
    never follows a redirect, and the agent does not change its environment, so requests would
    find the same each time: it scanned the environment three times a request, a third of the
    reporter's CPU in a burst. {} for a session that does not trust the environment."""
    if not session.trust_env:
        return {}
    settings: dict = {"proxies": requests.utils.get_environ_proxies(server_url, no_proxy=None)}
    settings["verify"] = (
        verify if verify not in (True, None) else os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
    )
    if not session.auth:
        settings["auth"] = requests.utils.get_netrc_auth(server_url)
    session.trust_env = False
    return settings


def _batch_body(batch: list[SpooledEvent]) -> str:
    return '{"events":[' + ",".join(e.body for e in batch) + "]}"


def _safe(exc: Exception) -> str:
    """An error for the log: type and message (requests puts the URL there, never headers)."""
    return f"{type(exc).__name__}: {str(exc)[:300]}"
