"""The `server:` section of the config file, parsed once into typed, immutable values."""

from __future__ import annotations

import difflib
import os
import ssl
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import available_timezones

import yaml

from rules.configfile import load_section, secret
from rules.errors import did_you_mean
from rules.schema import (
    MISSING,
    Context,
    Section,
    boolean,
    choice,
    describe,
    duration_s,
    host_port,
    integer,
    number,
    scalar,
    sequence,
    text,
)
from rules.units import parse_size
from rules.worktime import WEEKDAYS, WorkTime, check_timezone, parse_hours
from server.notify.channels import DEFAULT_MAX_PER_HOUR, ChannelError, ChannelSpec, check_url, redact, severities_from
from server.proxies import Network, trusted_proxies_setting
from server.tsa import url_setting as tsa_url_setting

LOG_LEVELS = ("debug", "info", "warning", "error")
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")


@dataclass(frozen=True)
class ServerConfig:
    listen: tuple[str, int]
    database: str  # SQLAlchemy URL; a relative SQLite path is resolved against the config's folder
    enroll_secret: str
    agent_offline_s: float = 120.0
    clock_skew_s: float = 300.0  # an agent clock further off than this is reported, once per agent
    pipeline_stall_s: float = 300.0  # an agent whose pipeline finished no step for this long, heartbeats going on, is reported
    agent_offline_escalate: tuple[float, ...] = (3.0, 10.0)  # multiples of the silence limit: severity one step up at each
    agent_stopped_alert_s: float | None = 86400.0  # a cleanly stopped agent alerts after this long; None: never
    retention_days: int = 1095  # events received longer ago are purged (those linked to alerts are kept)
    notify: tuple[ChannelSpec, ...] = ()  # apprise URLs with routing; see server/notify/
    notify_allow_private: bool = False  # let notifications reach loopback/private/link-local addresses
    log_level: str = "info"
    log_file: str | None = None
    working_time: WorkTime = field(default_factory=WorkTime)  # travels to the agents with the policy
    tls_cert: str | None = None  # PEM certificate (chain); with tls_key the listener speaks HTTPS only
    tls_key: str | None = None
    max_batch_events: int = 5000  # a bigger batch is 413 (server/limits.py)
    agent_rate_limit: float = 5000.0  # events/s per agent token, burst of 10 s; 0: no limit
    duplicate_host: str = "approve"  # a second live agent of one host name: approve (waits for an admin) | refuse
    enroll_shared_secret: bool = True  # false: only per-group enrolment keys (create-enroll-key) enrol
    enroll_per_address_per_min: float = 20.0  # enrolments per source address per minute (also the burst)
    enroll_total_per_min: float = 120.0  # enrolments per minute from all addresses together (also the burst)
    trusted_proxies: tuple[Network, ...] = ()  # peers whose X-Forwarded-For/Proto are believed (server/proxies.py)
    timezone: str = "Asia/Shanghai"  # the firm's clock: console, explanations, exports, notifications (server/firmtime.py)
    language: str = "zh"  # the firm's language: notifications (zh | en); the console follows each viewer's setting
    # egress incidents (server/incidents.py): one user's files to one destination within this long after the last file
    incident_window_s: float = 1800.0
    incident_escalate_files: tuple[int, ...] = (10, 100)  # one severity step per threshold passed (file count)
    incident_escalate_bytes: tuple[int, ...] = (100 * 1024**2, 1024**3)  # ... or total size, whichever is higher
    signing_key_file: str | None = None  # Ed25519 key of packs and seals; None: signing-key.pem beside the database (server/signing.py)
    tsa_url: str | None = None  # an RFC 3161 timestamp authority that dates each daily seal (server/tsa.py); None: none
    workers: int = 0  # processes serving the API on this host (server/workers.py); 0: one per core, 1: a single process


def load_server_config(path: str) -> ServerConfig:
    """Read and check the server section; raises rules.errors.InvalidInput listing every error."""
    return load_section(path, "server", _parse_server)


def _parse_server(section: Section, ctx: Context) -> ServerConfig:
    firm_zone = section.get("timezone", _timezone, default="Asia/Shanghai")
    values = dict(
        listen=section.get("listen", host_port, default=("127.0.0.1", 8765)),
        database=section.get("database", _database_url, default=_sqlite_url(ctx, "./var/miwei.db")),
        enroll_secret=section.get("enroll_secret", secret),
        agent_offline_s=section.get("agent_offline_s", duration_s, default=120.0),
        clock_skew_s=section.get("clock_skew_s", duration_s, default=300.0),
        pipeline_stall_s=section.get("pipeline_stall_s", duration_s, default=300.0),
        agent_offline_escalate=section.get("agent_offline_escalate", _multiples, default=(3.0, 10.0)),
        agent_stopped_alert_s=section.get("agent_stopped_alert_s", _duration_or_off, default=86400.0),
        retention_days=section.get("retention_days", integer(1, 100 * 366), default=1095),
        notify_allow_private=section.get("notify_allow_private", boolean, default=False),
        log_level=section.get("log_level", choice(LOG_LEVELS, "log level"), default="info"),
        log_file=section.get("log_file", _log_file, default=None),
        working_time=section.get("working_time", _working_time_in(firm_zone), default=WorkTime(timezone=_zone_or_default(firm_zone))),
        max_batch_events=section.get("max_batch_events", integer(1, 5000), default=5000),
        agent_rate_limit=section.get("agent_rate_limit", number(0.0, 1e9), default=5000.0),
        duplicate_host=section.get("duplicate_host", choice(("approve", "refuse"), "duplicate_host"), default="approve"),
        enroll_shared_secret=section.get("enroll_shared_secret", boolean, default=True),
        enroll_per_address_per_min=section.get("enroll_per_address_per_min", number(1.0, 1e6), default=20.0),
        enroll_total_per_min=section.get("enroll_total_per_min", number(1.0, 1e6), default=120.0),
        trusted_proxies=section.get("trusted_proxies", trusted_proxies_setting, default=()),
        language=section.get("language", choice(("zh", "en"), "language"), default="zh"),
        timezone=firm_zone,
        incident_window_s=section.get("incident_window_s", duration_s, default=1800.0),
        incident_escalate_files=section.get("incident_escalate_files", _ladder("files", False), default=(10, 100)),
        incident_escalate_bytes=section.get("incident_escalate_bytes", _ladder("sizes", True), default=(100 * 1024**2, 1024**3)),
        signing_key_file=section.get("signing_key_file", _log_file, default=None),
        tsa_url=section.get("tsa_url", tsa_url_setting, default=None),
        workers=section.get("workers", integer(0, 256), default=0),
    )
    values["tls_cert"], values["tls_key"] = _tls(section, ctx)
    allow_private = values["notify_allow_private"] is True
    values["notify"] = section.get("notify", sequence(_channel(allow_private)), default=())
    if any(v is MISSING for v in values.values()):
        return MISSING
    return ServerConfig(**values)


def _multiples(node: yaml.Node, key_path: str, ctx: Context):
    """Escalation steps: numbers above 1, in ascending order (an empty list: never escalate)."""
    if not isinstance(node, yaml.SequenceNode):
        return ctx.error(node, key_path, f"expected a list of multiples, got {describe(node)}", "e.g. [3, 10]")
    values = []
    for i, child in enumerate(node.value):
        value = scalar(child) if isinstance(child, yaml.ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 < value < 1e6:
            return ctx.error(child, f"{key_path}[{i}]", f"expected a number above 1, got {describe(child)}", "e.g. [3, 10]: 3 and 10 times agent_offline_s")
        values.append(float(value))
    if values != sorted(set(values)):
        return ctx.error(node, key_path, "the multiples must rise", "e.g. [3, 10]")
    return tuple(values)


def _ladder(what: str, sizes: bool):
    """Escalation thresholds: rising counts, or sizes ('100MB', '1GB', bytes); an empty list: never."""
    hint = "e.g. [100MB, 1GB]" if sizes else "e.g. [10, 100]"

    def read(node: yaml.Node, key_path: str, ctx: Context):
        if not isinstance(node, yaml.SequenceNode):
            return ctx.error(node, key_path, f"expected a list of {what}, got {describe(node)}", hint)
        values = []
        for i, child in enumerate(node.value):
            value = scalar(child) if isinstance(child, yaml.ScalarNode) else None
            if sizes and isinstance(value, str):
                value = parse_size(value)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value < 1e18 or (not sizes and value != int(value)):
                return ctx.error(child, f"{key_path}[{i}]", f"expected a positive {'size' if sizes else 'whole number'}, got {describe(child)}", hint)
            values.append(int(value))
        if values != sorted(set(values)):
            return ctx.error(node, key_path, f"the {what} must rise", hint)
        return tuple(values)

    return read


def _duration_or_off(node: yaml.Node, key_path: str, ctx: Context):
    if isinstance(node, yaml.ScalarNode) and scalar(node) in ("off", False):
        return None
    return duration_s(node, key_path, ctx)


def _channel(allow_private: bool):
    """One `server.notify` entry: an apprise URL, or {url, name, severities, categories, max_per_hour}."""

    def read(node: yaml.Node, key_path: str, ctx: Context):
        if isinstance(node, yaml.ScalarNode):
            url = text(node, key_path, ctx)
            return MISSING if url is MISSING else _checked(ChannelSpec(url=url), node, key_path, ctx, allow_private)
        section = Section(node, key_path, ctx)
        if not section.valid:
            return MISSING
        before = len(ctx.errors)
        url = section.get("url", text)
        name = section.get("name", text, default="")
        severities = section.get("severities", _severities, default=None)
        categories = section.get("categories", sequence(text), default=())
        max_per_hour = section.get("max_per_hour", integer(1, 10_000), default=DEFAULT_MAX_PER_HOUR)
        section.done()
        if len(ctx.errors) > before or MISSING in (url, name, severities, categories, max_per_hour):
            return MISSING
        spec = ChannelSpec(url=url, name=name, categories=tuple(categories), max_per_hour=max_per_hour)
        if severities is not None:
            spec = ChannelSpec(url, name, severities, spec.categories, max_per_hour)
        return _checked(spec, section.keys["url"][1], f"{key_path}.url", ctx, allow_private)

    return read


def _checked(spec: ChannelSpec, node: yaml.Node, key_path: str, ctx: Context, allow_private: bool):
    """apprise must understand the URL and its target must be allowed; errors never quote the URL."""
    try:
        check_url(spec.url, allow_private, resolve=False)
    except ChannelError as exc:
        return ctx.error(node, key_path, f"{redact(spec.url)}: {exc}", "see the notify lines of config.example.yaml")
    return spec


def _severities(node: yaml.Node, key_path: str, ctx: Context):
    """A minimum severity (high: high and critical) or a list of severities."""
    if isinstance(node, yaml.SequenceNode):
        value = sequence(text)(node, key_path, ctx)
    else:
        value = text(node, key_path, ctx)
    if value is MISSING:
        return value
    try:
        return severities_from(value)
    except ChannelError as exc:
        return ctx.error(node, key_path, str(exc), "e.g. high, or [critical, high]")


def _database_url(node: yaml.Node, key_path: str, ctx: Context):
    url = text(node, key_path, ctx)
    if url is MISSING:
        return url
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in DATABASE_SCHEMES:
        what = f"unsupported database '{scheme}'" if sep else f"not a database URL: '{url}'"
        return ctx.error(node, key_path, what, "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
    if scheme == "sqlite":
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path or path == ":memory:":
            return ctx.error(node, key_path, "SQLite needs a file path", "e.g. sqlite:///./var/miwei.db")
        return _sqlite_url(ctx, path)
    return url


def _sqlite_url(ctx: Context, path: str) -> str:
    return "sqlite:///" + os.path.abspath(os.path.join(ctx.base_dir, path))


def _tls(section: Section, ctx: Context):
    """`tls_cert` and `tls_key` together, files that load as a matching certificate and key."""
    cert = section.get("tls_cert", _log_file, default=None)
    key = section.get("tls_key", _log_file, default=None)
    if cert is None and key is None or MISSING in (cert, key):
        return cert, key
    if cert is None or key is None:
        given, missing = ("tls_key", "tls_cert") if cert is None else ("tls_cert", "tls_key")
        return ctx.error(section.keys[given][1], f"server.{given}", f"server.{missing} is missing", "set both, or neither for plain HTTP"), MISSING
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except OSError as exc:  # ssl.SSLError is an OSError: garbage PEM, a key of another certificate
        reason = exc.strerror or exc.reason if isinstance(exc, ssl.SSLError) else exc.strerror
        where = "tls_key" if "KEY_VALUES_MISMATCH" in str(exc) else "tls_cert"
        hint = "the key is not the certificate's" if where == "tls_key" else "PEM files of the certificate (chain) and its unencrypted key"
        return ctx.error(section.keys[where][1], f"server.{where}", f"cannot load the certificate and key: {reason or exc}", hint), MISSING
    return cert, key


def _log_file(node: yaml.Node, key_path: str, ctx: Context):
    path = text(node, key_path, ctx)
    return path if path is MISSING else os.path.abspath(os.path.join(ctx.base_dir, path))


def _zone_or_default(name) -> str:
    return name if isinstance(name, str) else "Asia/Shanghai"


def _working_time_in(firm_zone):
    """working_time read with its timezone defaulting to server.timezone (the firm's clock)."""

    def read(node: yaml.Node, key_path: str, ctx: Context):
        return _working_time(node, key_path, ctx, _zone_or_default(firm_zone))

    return read


def _working_time(node: yaml.Node, key_path: str, ctx: Context, firm_zone: str = "Asia/Shanghai"):
    """Working hours in the firm's time zone, with holidays and make-up workdays (调休)."""
    section = Section(node, key_path, ctx)
    if not section.valid:
        return MISSING
    defaults = WorkTime(timezone=firm_zone)
    zone = section.get("timezone", _timezone, default=defaults.timezone)
    days = section.get("days", sequence(_weekday), default=defaults.days)
    hours = section.get("hours", _hours, default=(defaults.start, defaults.end))
    holidays = section.get("holidays", sequence(_date), default=())
    workdays = section.get("workdays", sequence(_date), default=())
    section.done()
    if MISSING in (zone, days, hours, holidays, workdays):
        return MISSING
    both = sorted(set(holidays) & set(workdays))
    if both:
        where = section.keys["workdays"][1]
        return ctx.error(where, f"{key_path}.workdays", f"{both[0].isoformat()} is also listed as a holiday", "a day is either off or a make-up workday")
    return WorkTime(
        timezone=zone,
        days=tuple(d for d in WEEKDAYS if d in days),
        start=hours[0],
        end=hours[1],
        holidays=tuple(sorted(set(holidays))),
        workdays=tuple(sorted(set(workdays))),
    )


def _timezone(node: yaml.Node, key_path: str, ctx: Context):
    name = text(node, key_path, ctx)
    if name is MISSING:
        return name
    problem = check_timezone(name)
    if not problem:
        return name
    close = difflib.get_close_matches(name, sorted(available_timezones()), n=1, cutoff=0.8)
    return ctx.error(node, key_path, problem, f"did you mean '{close[0]}'?" if close else "an IANA zone such as Asia/Shanghai")


def _weekday(node: yaml.Node, key_path: str, ctx: Context):
    day = text(node, key_path, ctx)
    if day is not MISSING and day not in WEEKDAYS:
        return ctx.error(node, key_path, f"unknown day '{day}'", did_you_mean(day, WEEKDAYS))
    return day


def _hours(node: yaml.Node, key_path: str, ctx: Context):
    value = text(node, key_path, ctx)
    if value is MISSING:
        return value
    try:
        return parse_hours(value)
    except ValueError as exc:
        return ctx.error(node, key_path, str(exc), "e.g. \"08:30-18:00\"")


def _date(node: yaml.Node, key_path: str, ctx: Context):
    value = scalar(node) if isinstance(node, yaml.ScalarNode) else MISSING
    got = describe(node)
    if isinstance(value, str):
        got = f"'{value}'"
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            value = MISSING
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    return ctx.error(node, key_path, f"expected a date, got {got}", "YYYY-MM-DD, e.g. 2026-10-01")
