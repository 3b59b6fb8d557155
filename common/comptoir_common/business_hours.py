"""The business-hours calendar: opening hours, French public holidays, durations and deadlines in business time.

Pure functions over timezone-aware datetimes, shared by the services that reason in business time (tickets for SLA
deadlines, reports for business-hours durations). The default calendar is Comptoir's: Monday to Friday, 08:30–18:00
Europe/Paris, French public holidays (metropolitan France) excluded.

A business day lasts ``closing - opening`` (9 h 30 by default); "N business days" is N times that much business
time, so a ticket opened on Monday at 10:00 with a 2-business-day target is due on Wednesday at 10:00.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

# Monday = 0 ... Sunday = 6, as date.weekday() counts.
WEEKDAYS = frozenset({0, 1, 2, 3, 4})


def easter_sunday(year: int) -> date:
    """Easter Sunday of ``year`` in the Gregorian calendar (anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    r = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * r) // 451
    month, day = divmod(h + r - 7 * m + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=256)
def french_public_holidays(year: int) -> dict[date, str]:
    """The eleven public holidays of metropolitan France in ``year``, with their French names."""
    easter = easter_sunday(year)
    return {
        date(year, 1, 1): "Jour de l'an",
        easter + timedelta(days=1): "Lundi de Pâques",
        date(year, 5, 1): "Fête du Travail",
        date(year, 5, 8): "Victoire 1945",
        easter + timedelta(days=39): "Ascension",
        easter + timedelta(days=50): "Lundi de Pentecôte",
        date(year, 7, 14): "Fête nationale",
        date(year, 8, 15): "Assomption",
        date(year, 11, 1): "Toussaint",
        date(year, 11, 11): "Armistice 1918",
        date(year, 12, 25): "Noël",
    }


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError("business-hours functions need timezone-aware datetimes")


@dataclass(frozen=True)
class BusinessCalendar:
    """Opening hours on working days in one time zone, minus public holidays (and any extra closed days)."""

    timezone: str = "Europe/Paris"
    opening: time = time(8, 30)
    closing: time = time(18, 0)
    workdays: frozenset[int] = WEEKDAYS
    french_holidays: bool = True
    extra_closed_days: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.closing <= self.opening:
            raise ValueError("closing time must be after opening time")
        if not self.workdays:
            raise ValueError("a calendar needs at least one working day")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def day_length(self) -> timedelta:
        """Business time in one full working day (9 h 30 by default)."""
        return datetime.combine(date.min, self.closing) - datetime.combine(date.min, self.opening)

    def is_holiday(self, day: date) -> bool:
        return day in self.extra_closed_days or (
            self.french_holidays and day in french_public_holidays(day.year)
        )

    def is_business_day(self, day: date) -> bool:
        """True if the desk opens on ``day`` (a local date)."""
        return day.weekday() in self.workdays and not self.is_holiday(day)

    def opening_hours(self, day: date) -> tuple[datetime, datetime] | None:
        """The UTC interval the desk is open on local date ``day``, or None when closed all day."""
        if not self.is_business_day(day):
            return None
        zone = self.zone
        start = datetime.combine(day, self.opening, tzinfo=zone).astimezone(UTC)
        end = datetime.combine(day, self.closing, tzinfo=zone).astimezone(UTC)
        return start, end

    def is_open(self, moment: datetime) -> bool:
        """True if ``moment`` falls within business hours."""
        _require_aware(moment)
        hours = self.opening_hours(moment.astimezone(self.zone).date())
        return hours is not None and hours[0] <= moment < hours[1]

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Business time elapsed from ``start`` to ``end`` (zero if ``end`` is not after ``start``)."""
        _require_aware(start)
        _require_aware(end)
        if end <= start:
            return timedelta(0)
        zone = self.zone
        first_day = start.astimezone(zone).date()
        last_day = end.astimezone(zone).date()
        total = timedelta(0)
        day = first_day
        # One step per calendar day: cheap (a dictionary look-up and two comparisons) even over a year.
        while day <= last_day:
            hours = self.opening_hours(day)
            if hours is not None:
                lower = max(hours[0], start)
                upper = min(hours[1], end)
                if upper > lower:
                    total += upper - lower
            day += timedelta(days=1)
        return total

    def business_seconds_between(self, start: datetime, end: datetime) -> float:
        """:meth:`business_time_between` in seconds."""
        return self.business_time_between(start, end).total_seconds()

    def next_open_moment(self, moment: datetime) -> datetime:
        """``moment`` itself if the desk is open then, otherwise the next opening (UTC)."""
        _require_aware(moment)
        moment = moment.astimezone(UTC)
        day = moment.astimezone(self.zone).date()
        for _ in range(3700):  # ten years of closed days would mean a misconfigured calendar
            hours = self.opening_hours(day)
            if hours is not None and moment < hours[1]:
                return max(moment, hours[0])
            day += timedelta(days=1)
        raise ValueError("no business day within ten years: check the calendar")

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The moment (UTC) when ``duration`` of business time has elapsed since ``start``.

        A zero duration from a closed moment gives the next opening: a deadline never falls outside business hours
        unless it is exactly a closing time.
        """
        _require_aware(start)
        if duration < timedelta(0):
            raise ValueError("duration must not be negative")
        moment = self.next_open_moment(start)
        remaining = duration
        while True:
            hours = self.opening_hours(moment.astimezone(self.zone).date())
            assert hours is not None  # next_open_moment only stops on an open day
            available = hours[1] - moment
            if remaining <= available:
                return moment + remaining
            remaining -= available
            moment = self.next_open_moment(hours[1] + timedelta(microseconds=1))

    def add_business_days(self, start: datetime, days: int | float) -> datetime:
        """The deadline ``days`` business days after ``start`` (each day = :attr:`day_length` of business time)."""
        return self.add_business_time(start, self.day_length * days)


DEFAULT_CALENDAR = BusinessCalendar()


def business_seconds_between(start: datetime, end: datetime) -> float:
    """Business seconds between two moments in Comptoir's default calendar."""
    return DEFAULT_CALENDAR.business_seconds_between(start, end)


def add_business_time(start: datetime, duration: timedelta) -> datetime:
    """``start`` plus ``duration`` of business time in Comptoir's default calendar."""
    return DEFAULT_CALENDAR.add_business_time(start, duration)
