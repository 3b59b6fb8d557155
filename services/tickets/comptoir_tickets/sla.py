"""Business-time arithmetic for resolution deadlines: opening hours, weekends and French public holidays.

Plain functions over a :class:`BusinessCalendar`; no database. Times are aware datetimes (UTC in, UTC out); the
calendar works in its own time zone (Europe/Paris by default), so daylight-saving changes are handled by zoneinfo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

DEFAULT_CALENDAR: dict = {
    "timezone": "Europe/Paris",
    # Monday = 0 … Sunday = 6; each open day has one [start, end) span.
    "hours": {str(day): ["08:30", "18:00"] for day in range(5)},
    "french_holidays": True,
    "extra_holidays": [],
}


def easter_sunday(year: int) -> date:
    """Gregorian Easter (anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month, day = divmod(h + leap - 7 * m + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=256)
def french_holidays(year: int) -> frozenset[date]:
    """The eleven French public holidays (metropolitan France)."""
    easter = easter_sunday(year)
    return frozenset(
        {
            date(year, 1, 1),
            easter + timedelta(days=1),  # Lundi de Pâques
            date(year, 5, 1),
            date(year, 5, 8),
            easter + timedelta(days=39),  # Ascension
            easter + timedelta(days=50),  # Lundi de Pentecôte
            date(year, 7, 14),
            date(year, 8, 15),
            date(year, 11, 1),
            date(year, 11, 11),
            date(year, 12, 25),
        }
    )


def _parse_time(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: str = "Europe/Paris"
    hours: dict[int, tuple[time, time]] = field(default_factory=dict)
    french: bool = True
    extra_holidays: frozenset[date] = frozenset()

    @classmethod
    def from_config(cls, config: dict | None) -> BusinessCalendar:
        config = config or DEFAULT_CALENDAR
        hours = {}
        for day, span in (config.get("hours") or {}).items():
            if span:
                start, end = _parse_time(span[0]), _parse_time(span[1])
                if end > start:
                    hours[int(day)] = (start, end)
        return cls(
            timezone=config.get("timezone") or "Europe/Paris",
            hours=hours,
            french=bool(config.get("french_holidays", True)),
            extra_holidays=frozenset(date.fromisoformat(d) for d in config.get("extra_holidays") or []),
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_holiday(self, day: date) -> bool:
        return day in self.extra_holidays or (self.french and day in french_holidays(day.year))

    def span(self, day: date) -> tuple[datetime, datetime] | None:
        """The open span of ``day`` as aware datetimes in the calendar's zone, or None on a closed day."""
        hours = self.hours.get(day.weekday())
        if hours is None or self.is_holiday(day):
            return None
        zone = self.zone
        return datetime.combine(day, hours[0], zone), datetime.combine(day, hours[1], zone)

    def is_open_at(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        span = self.span(local.date())
        return span is not None and span[0] <= local < span[1]


# A calendar with no open day would loop for ever; past this many days we give up.
_MAX_DAYS = 3660


def add_business_minutes(calendar: BusinessCalendar, start: datetime, minutes: int) -> datetime:
    """The moment when ``minutes`` business minutes have passed since ``start`` (UTC)."""
    remaining = timedelta(minutes=max(0, minutes))
    local = start.astimezone(calendar.zone)
    day = local.date()
    for _ in range(_MAX_DAYS):
        span = calendar.span(day)
        if span is not None:
            begin = max(span[0], local)
            if begin < span[1]:
                available = span[1] - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(UTC)
                remaining -= available
        day += timedelta(days=1)
    raise ValueError("the business calendar has no open hours")


def business_minutes_between(calendar: BusinessCalendar, start: datetime, end: datetime) -> int:
    """Whole business minutes between ``start`` and ``end`` (0 if end is not after start)."""
    if end <= start:
        return 0
    zone = calendar.zone
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    total = timedelta()
    day = local_start.date()
    while day <= local_end.date():
        span = calendar.span(day)
        if span is not None:
            begin, finish = max(span[0], local_start), min(span[1], local_end)
            if finish > begin:
                total += finish - begin
        day += timedelta(days=1)
    return int(total.total_seconds() // 60)
