"""Working time: which moments count as working hours, with holidays and make-up workdays (调休).

Rules test `working_hours`, `holiday`, `hour` and `weekday` in the firm's own time zone. The
settings come from the server's config and travel to agents with the policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class WorkTime:
    timezone: str = "Asia/Shanghai"
    days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    start: time = time(8, 30)
    end: time = time(18, 0)
    holidays: tuple[date, ...] = ()  # days off that would be working days (国庆, 春节, ...)
    workdays: tuple[date, ...] = ()  # make-up working days on a weekend (调休)
    _zone: ZoneInfo | None = field(default=None, compare=False, repr=False)

    def zone(self) -> ZoneInfo:
        return self._zone or ZoneInfo(self.timezone)

    def local(self, ts: str) -> datetime:
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.zone())

    def is_holiday(self, ts: str) -> bool:
        return self.local(ts).date() in self.holidays

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return WEEKDAYS[day.weekday()] in self.days

    def is_working_hours(self, ts: str) -> bool:
        moment = self.local(ts)
        return self.is_working_day(moment.date()) and self.start <= moment.time() < self.end

    def to_dict(self) -> dict:
        return {
            "timezone": self.timezone,
            "days": list(self.days),
            "hours": f"{self.start:%H:%M}-{self.end:%H:%M}",
            "holidays": [d.isoformat() for d in self.holidays],
            "workdays": [d.isoformat() for d in self.workdays],
        }

    @classmethod
    def from_dict(cls, data: dict) -> WorkTime:
        start, end = parse_hours(data["hours"])
        return cls(
            timezone=data["timezone"],
            days=tuple(data["days"]),
            start=start,
            end=end,
            holidays=tuple(date.fromisoformat(d) for d in data.get("holidays", ())),
            workdays=tuple(date.fromisoformat(d) for d in data.get("workdays", ())),
        )


def parse_hours(text: str) -> tuple[time, time]:
    """'08:30-18:00' -> (08:30, 18:00); raises ValueError with a readable message."""
    try:
        first, second = (part.strip() for part in text.split("-"))
        start, end = time.fromisoformat(first), time.fromisoformat(second)
    except ValueError:
        raise ValueError(f"expected HH:MM-HH:MM, got '{text}'") from None
    if start >= end:
        raise ValueError(f"the working day must end after it starts: '{text}'")
    return start, end


def check_timezone(name: str) -> str | None:
    """None when the zone exists, else why not."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone '{name}'"
    return None
