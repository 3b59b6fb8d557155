"""Resolution deadlines in business time, over the shared calendar of :mod:`comptoir_common.business_hours`.

The calendar is stored as JSON in the tickets service's settings (admins change it); this module turns it into a
``BusinessCalendar`` and counts in whole business minutes, the unit of the priorities' targets.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from comptoir_common.business_hours import BusinessCalendar

DEFAULT_CALENDAR: dict = {
    "timezone": "Europe/Paris",
    "opening": "08:30",
    "closing": "18:00",
    # Monday = 0 … Sunday = 6
    "workdays": [0, 1, 2, 3, 4],
    "french_holidays": True,
    "extra_holidays": [],
}


def _parse_time(value: str) -> time:
    hours, minutes = str(value).split(":")
    return time(int(hours), int(minutes))


def calendar_from_config(config: dict | None) -> BusinessCalendar:
    """A calendar from its JSON form; raises ValueError on a malformed one."""
    config = {**DEFAULT_CALENDAR, **(config or {})}
    return BusinessCalendar(
        timezone=config["timezone"] or "Europe/Paris",
        opening=_parse_time(config["opening"]),
        closing=_parse_time(config["closing"]),
        workdays=frozenset(int(d) for d in config["workdays"] if 0 <= int(d) <= 6),
        french_holidays=bool(config["french_holidays"]),
        extra_closed_days=frozenset(date.fromisoformat(d) for d in config["extra_holidays"] or []),
    )


def calendar_to_config(calendar: BusinessCalendar) -> dict:
    return {
        "timezone": calendar.timezone,
        "opening": calendar.opening.strftime("%H:%M"),
        "closing": calendar.closing.strftime("%H:%M"),
        "workdays": sorted(calendar.workdays),
        "french_holidays": calendar.french_holidays,
        "extra_holidays": sorted(d.isoformat() for d in calendar.extra_closed_days),
    }


def add_business_minutes(calendar: BusinessCalendar, start: datetime, minutes: int) -> datetime:
    """The moment when ``minutes`` business minutes have passed since ``start`` (UTC)."""
    return calendar.add_business_time(start, timedelta(minutes=max(0, minutes)))


def business_minutes_between(calendar: BusinessCalendar, start: datetime, end: datetime) -> int:
    """Whole business minutes between ``start`` and ``end`` (0 if end is not after start)."""
    return int(calendar.business_seconds_between(start, end) // 60)
