"""The firm's clock: times the collector keeps in UTC, shown and typed in the firm's time zone.

The database, the API and every JSON body stay in UTC (ISO 8601 with Z). What a person reads
(console pages, explanations, notifications, exports) is the firm's wall clock, set once in the
server config (`server.timezone`, default Asia/Shanghai), and what a person types into a time
filter is read on that same clock. One module so that every page, export and message agrees.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "Asia/Shanghai"
SHOWN = "%Y-%m-%d %H:%M:%S"
# names of China's one zone (UTC+8, no summer time): labelled 北京时间 / China Standard Time
CHINA_ZONES = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "PRC"})


class ZoneError(ValueError):
    """An unknown time zone name."""


@lru_cache(maxsize=32)
def zone(name: str) -> ZoneInfo:
    """The IANA zone; ZoneError (a ValueError) naming it when the system and tzdata do not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ZoneError(f"unknown time zone '{name}'") from None


def _zone(value: ZoneInfo | str) -> ZoneInfo:
    return value if isinstance(value, ZoneInfo) else zone(value)


def utc(value: datetime | str) -> datetime:
    """An aware UTC datetime from a datetime (naive: UTC, as SQLite hands them back) or ISO text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def local(dt: datetime | str, zone: ZoneInfo | str) -> datetime:
    """The moment on the firm's wall clock (aware, in `zone`)."""
    return utc(dt).astimezone(_zone(zone))


def show(dt_or_iso: datetime | str | None, zone: ZoneInfo | str) -> str:
    """'2026-01-01T00:00:00.000Z' in Asia/Shanghai -> '2026-01-01 08:00:00'; '' for None or ''.

    Text that is not a time is returned as it is (a page never fails on one odd value).
    """
    if dt_or_iso is None or dt_or_iso == "":
        return ""
    try:
        return local(dt_or_iso, zone).strftime(SHOWN)
    except (ValueError, OverflowError, TypeError):
        return str(dt_or_iso)


def offset_text(zone: ZoneInfo | str, at: datetime | None = None) -> str:
    """'UTC+08:00', the zone's offset at `at` (now when not given: summer time counts)."""
    moment = (utc(at) if at is not None else datetime.now(UTC)).astimezone(_zone(zone))
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


def zone_label(zone: ZoneInfo | str, lang: str, at: datetime | None = None) -> str:
    """'北京时间 (UTC+08:00)' / 'China Standard Time (UTC+08:00)'; other zones: 'Europe/Berlin (UTC+01:00)'."""
    found = _zone(zone)
    offset = offset_text(found, at)
    if found.key in CHINA_ZONES:
        name = "北京时间" if lang.startswith("zh") else "China Standard Time"
    else:
        name = found.key
    return f"{name} ({offset})"


def header_label(zone: ZoneInfo | str) -> str:
    """For an export's column header: 'Asia/Shanghai, UTC+08:00'; a zone with summer time by its name
    alone ('Europe/Berlin'), since one offset would be wrong for half the rows."""
    found = _zone(zone)
    year = datetime.now(UTC).year
    offsets = {offset_text(found, datetime(year, month, 1, tzinfo=UTC)) for month in (1, 7)}
    return f"{found.key}, {offsets.pop()}" if len(offsets) == 1 else found.key


def parse_local(text: str, zone: ZoneInfo | str) -> datetime:
    """A time typed into a filter, read on the firm's clock, as an aware UTC datetime.

    '2026-01-01' is that day's local midnight, '2026-01-01 08:00' or '2026-01-01T08:00:00' the
    local wall-clock time; text with its own offset or Z keeps it. ValueError when not a time.
    """
    value = text.strip()
    if not value:
        raise ValueError("empty time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: '{text}' (e.g. 2026-01-01 or 2026-01-01 08:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(zone))
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"out of range: '{text}'") from None


def local_day_start(day: date, zone: ZoneInfo | str) -> datetime:
    """The UTC moment the firm's `day` begins."""
    return datetime(day.year, day.month, day.day, tzinfo=_zone(zone)).astimezone(UTC)
