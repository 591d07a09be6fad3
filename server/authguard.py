"""Failed authentication is cheap and throttled, so a flood of bad tokens cannot starve valid callers.

server/auth.py checks a bearer token with one indexed database probe, in the threadpool. Before
this guard, 10,000 random tokens from 8 threads cost one probe each, and valid requests waited
behind them (docs/reliability.md, "The bad-token flood, measured"). In front of the probe, in this
pure ASGI middleware (no threadpool, no database):

1. Shape. A bearer token on /api/ that cannot be one the collector issued (no `mwa_`/`mwt_`
   prefix, a character token_urlsafe never makes, shorter than MIN_TOKEN_CHARS or longer than
   MAX_TOKEN_CHARS) is 401 at once, with the same answer auth.py gives.
2. A failure budget per source address: a token bucket of FAILURE_BURST failures refilled at
   FAILURE_BURST per FAILURE_WINDOW_S (20 per 10 s). Each 401 for a token (a bad shape here, an
   unknown or revoked token in auth.py) takes one. While an address's bucket is empty, its
   requests are 429 with Retry-After, without a probe, unless their token is in the positive cache
   (below). The table holds at most MAX_ADDRESSES addresses, least recently failing dropped first.
3. A tarpit: a refusal to an address over its budget (429, or 401 for an impossible token) is
   answered after TARPIT_S, holding no thread, for at most MAX_HELD requests at a time. A client
   that waits for each answer before sending the next (most floods, and every script) then
   sends about one request a second per connection instead of hundreds: measured, answering
   at once let the flood run twice as fast and the event loop, shared with valid requests, spent
   itself on refusals. Past MAX_HELD the refusals go out at once, so memory stays bounded.
4. A positive cache: the SHA-256 digests of tokens auth.py verified in the last VERIFIED_TTL_S
   (180 s, six default heartbeats), at most MAX_VERIFIED. It only lets a token past the budget: agents and scripts behind
   the same NAT as an attacker keep working, as long as they were verified within the TTL (an agent
   heartbeats every heartbeat_s; a new one gets its turn at the refill rate, 2 probes a second).
   It never authenticates: auth.py still probes the database for every request that passes, so a
   revoked token is 401 at once on every collector. Revoking through this process's console also
   drops the token from the cache at once; a token revoked elsewhere (the CLI, another collector)
   may still pass the budget gate for up to the TTL, where the probe then refuses it.

Nothing here is a secret: the log names the address that went over its budget, never a token.
The source address is the TCP peer, or the client a peer listed in `server.trusted_proxies`
reports in X-Forwarded-For (server/proxies.py, installed in front of this guard): a forged header
from any other peer changes nothing, so rotating it does not refill a budget. The guard lives in
memory. The budgets are per collector process; the positive cache is also written to a table in
anonymous shared memory that the collector's workers inherit from their supervisor (`_Shared`),
so a token one worker verified passes the budget gate of every worker: with per-process caches an
agent that reconnected to another worker while an attacker behind its NAT kept that worker's
budget empty was refused with 429 for as long as the flood lasted.
"""

from __future__ import annotations

import hashlib
import math
import mmap
import struct
import threading
import time
from collections import OrderedDict

import anyio
from fastapi.responses import JSONResponse
from loguru import logger

from server.proxies import ForwardedHeaders, TrustedProxies

FAILURE_BURST = 20.0
FAILURE_WINDOW_S = 10.0
MAX_ADDRESSES = 16_384  # about 2 MB at most
VERIFIED_TTL_S = 180.0  # several heartbeats (30 s by default): an idle agent stays known between them
MAX_VERIFIED = 16_384
SHARED_SLOTS = 1 << 16  # the workers' shared positive cache: 16 bytes a slot, 1 MiB
SHARED_PROBES = 8  # slots a token may take, from its hash on
TARPIT_S = 1.0
MAX_HELD = 256  # refusals held in the tarpit at once
MIN_TOKEN_CHARS, MAX_TOKEN_CHARS = 24, 256  # issued tokens are a prefix + 43 characters
AGENT_TOKEN_PREFIX, API_TOKEN_PREFIX = "mwa_", "mwt_"  # what server.auth.new_token puts before a token
PREFIXES = (AGENT_TOKEN_PREFIX.encode(), API_TOKEN_PREFIX.encode())
API_PREFIX = "/api/"
PUBLIC_PATHS = frozenset({"/api/v1/health", "/api/v1/enroll"})  # take no token: a stray header there is ignored
UNKNOWN_DETAIL = "unknown or revoked token"  # what server.auth answers
_URLSAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def digest(token: str | bytes) -> bytes:
    return hashlib.sha256(token.encode("utf-8") if isinstance(token, str) else token).digest()


def plausible(token: bytes) -> bool:
    """Could the collector have issued this token? (what new_token makes: prefix + token_urlsafe)"""
    return MIN_TOKEN_CHARS <= len(token) <= MAX_TOKEN_CHARS and token[:4] in PREFIXES and _URLSAFE.issuperset(token[4:])


class _Shared:
    """The positive cache as every worker of one collector sees it: (the first 8 bytes of a token's
    digest, when it expires) in a fixed table of anonymous shared memory, made before the
    supervisor forks its workers (a single collector just holds it). No lock across processes: a
    torn or lost entry only makes a token miss the cache (it then waits for the budget, as before)
    or lets a token past the budget gate to the database probe, which still refuses an unknown one;
    the cache never authenticates. Callers hold FailureBudget's lock within their process."""

    _SLOT = struct.Struct("<Qd")

    def __init__(self, slots: int = SHARED_SLOTS) -> None:
        self.slots = slots
        self._map = mmap.mmap(-1, slots * self._SLOT.size)  # anonymous, MAP_SHARED: a fork's children share it

    def _slots(self, token_digest: bytes) -> tuple[int, list[int]]:
        key = int.from_bytes(token_digest[:8], "little") or 1  # 0 marks an empty slot
        return key, [(key + i) % self.slots for i in range(SHARED_PROBES)]

    def expires(self, token_digest: bytes) -> float:
        """When the token's entry expires; 0.0 when it has none."""
        key, slots = self._slots(token_digest)
        for slot in slots:
            held, expires = self._SLOT.unpack_from(self._map, slot * self._SLOT.size)
            if held == key:
                return expires
        return 0.0

    def put(self, token_digest: bytes, expires: float) -> None:
        """The token's entry, in its own slot, else the one of its slots that expires first."""
        key, slots = self._slots(token_digest)
        chosen, soonest = slots[0], math.inf
        for slot in slots:
            held, until = self._SLOT.unpack_from(self._map, slot * self._SLOT.size)
            if held == key:
                chosen = slot
                break
            if until < soonest:
                chosen, soonest = slot, until
        self._SLOT.pack_into(self._map, chosen * self._SLOT.size, key, expires)

    def drop(self, token_digest: bytes) -> None:
        key, slots = self._slots(token_digest)
        for slot in slots:
            if self._SLOT.unpack_from(self._map, slot * self._SLOT.size)[0] == key:
                self._SLOT.pack_into(self._map, slot * self._SLOT.size, 0, 0.0)


class FailureBudget:
    """Per-address failure buckets and the positive cache; thread-safe (auth.py runs in the threadpool).
    The cache is this process's, backed by the table its sibling workers share (_Shared)."""

    def __init__(
        self, burst: float = FAILURE_BURST, window_s: float = FAILURE_WINDOW_S, ttl_s: float = VERIFIED_TTL_S,
        max_addresses: int = MAX_ADDRESSES, max_verified: int = MAX_VERIFIED, clock=time.monotonic,
    ):  # fmt: skip
        self.burst, self.rate, self.ttl_s, self.clock = burst, burst / window_s, ttl_s, clock
        self.max_addresses, self.max_verified = max_addresses, max_verified
        self._buckets: OrderedDict[str, tuple[float, float, bool]] = OrderedDict()  # address -> (level, at, tripped)
        self._verified: OrderedDict[bytes, float] = OrderedDict()  # token digest -> expires at
        self._shared = _Shared()
        self._lock = threading.Lock()

    def _level(self, address: str, now: float) -> tuple[float, bool]:
        level, at, tripped = self._buckets.get(address, (self.burst, now, False))
        return min(self.burst, level + (now - at) * self.rate), tripped

    def failed(self, address: str) -> None:
        """One failed authentication from `address`."""
        with self._lock:
            now = self.clock()
            level, tripped = self._level(address, now)
            level -= 1
            if level < 1 and not tripped:
                tripped = True
                logger.warning(
                    "authentication failures over budget; refusing unverified tokens without a lookup client={} budget={:g}/{:g}s",
                    address, self.burst, self.burst / self.rate,
                )  # fmt: skip
            elif level >= 1:
                tripped = False
            self._buckets[address] = (max(level, -self.burst), now, tripped)  # a debt of one burst at most
            self._buckets.move_to_end(address)
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)

    def retry_after_s(self, address: str) -> int:
        """0 when `address` may try an unverified token now, else whole seconds until it may."""
        with self._lock:
            if address not in self._buckets:
                return 0
            level, _ = self._level(address, self.clock())
        return 0 if level >= 1 else max(1, math.ceil((1 - level) / self.rate))

    def verified(self, token_digest: bytes) -> None:
        with self._lock:
            self._keep(token_digest, self.clock() + self.ttl_s)
            self._shared.put(token_digest, self._verified[token_digest])

    def _keep(self, token_digest: bytes, expires: float) -> None:
        self._verified[token_digest] = expires
        self._verified.move_to_end(token_digest)
        while len(self._verified) > self.max_verified:
            self._verified.popitem(last=False)

    def is_verified(self, token_digest: bytes) -> bool:
        with self._lock:
            now = self.clock()
            expires = self._verified.get(token_digest)
            if expires is not None and expires <= now:
                del self._verified[token_digest]
                expires = None
            if expires is not None:
                return True
            shared = self._shared.expires(token_digest)  # verified by a sibling worker
            if shared > now:
                self._keep(token_digest, shared)
                return True
            return False

    def forget(self, token_digest: bytes) -> None:
        """A token revoked on this process: out of its cache and the shared table at once (a sibling
        worker that already holds it keeps it in its own cache up to the TTL; its probe refuses it)."""
        with self._lock:
            self._verified.pop(token_digest, None)
            self._shared.drop(token_digest)

    def sizes(self) -> tuple[int, int]:
        """(addresses, verified tokens) held: bounded by max_addresses and max_verified."""
        with self._lock:
            return len(self._buckets), len(self._verified)


class AuthGuard:
    """ASGI middleware: bad-shape tokens 401 and over-budget addresses 429, before any lookup."""

    def __init__(self, app, budget: FailureBudget, tarpit_s: float = TARPIT_S, max_held: int = MAX_HELD):
        self.app, self.budget, self.tarpit_s, self.max_held = app, budget, tarpit_s, max_held
        self.held = 0  # requests in the tarpit now; one event loop, so no lock

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX) or scope["path"] in PUBLIC_PATHS:
            return await self.app(scope, receive, send)
        token = bearer(scope)
        if token is None:  # no token: auth.py answers 401 without a lookup
            return await self.app(scope, receive, send)
        address = client_address(scope)
        if not plausible(token):
            over = self.budget.retry_after_s(address) > 0
            self.budget.failed(address)
            if over:
                await self._tarpit()
            return await answer(scope, receive, send, 401, UNKNOWN_DETAIL, {"WWW-Authenticate": "Bearer"})
        if not self.budget.is_verified(digest(token)):
            wait_s = self.budget.retry_after_s(address)
            if wait_s:
                await self._tarpit()
                detail = f"too many failed authentications from this address; retry in {wait_s} s"
                return await answer(scope, receive, send, 429, detail, {"Retry-After": str(wait_s)})
        await self.app(scope, receive, send)

    async def _tarpit(self) -> None:
        if self.tarpit_s <= 0 or self.held >= self.max_held:
            return
        self.held += 1
        try:
            await anyio.sleep(self.tarpit_s)
        finally:
            self.held -= 1


def client_address(scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def first_header(scope, name: bytes) -> bytes | None:
    """The first value of a header, as Starlette's request.headers.get reads it: every middleware
    must judge the same header the app then acts on, even when a request repeats it."""
    for key, value in scope.get("headers") or ():
        if key == name:
            return value
    return None


def bearer(scope) -> bytes | None:
    """The bearer token of a request, as server.auth reads it (the first Authorization header)."""
    header = first_header(scope, b"authorization") or b""
    scheme, _, token = header.partition(b" ")
    token = token.strip()
    return token if scheme.lower() == b"bearer" and token else None


async def answer(scope, receive, send, status: int, detail: str, headers: dict | None = None) -> None:
    """A JSON refusal from a pure ASGI middleware, with the headers the app's own answers carry."""
    from server.app import SECURITY_HEADERS  # we sit outside the app's header middleware

    await JSONResponse({"detail": detail}, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})(scope, receive, send)


def install_auth_guard(app, tarpit_s: float = TARPIT_S) -> FailureBudget:
    """Put the guard in front of the app, and the trusted proxies' client address in front of the
    guard; auth.py reports to it through app.state.auth_budget."""
    budget = FailureBudget()
    app.state.auth_budget = budget
    app.add_middleware(AuthGuard, budget=budget, tarpit_s=tarpit_s)
    config = getattr(app.state, "config", None)
    app.add_middleware(ForwardedHeaders, trusted=TrustedProxies.of(getattr(config, "trusted_proxies", ())))
    return budget
