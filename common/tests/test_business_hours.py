"""The business-hours calendar: hand-checked dates and properties that must hold for any pair of moments."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from comptoir_common.business_hours import (
    DEFAULT_CALENDAR,
    BusinessCalendar,
    add_business_time,
    business_seconds_between,
    easter_sunday,
    french_public_holidays,
)
from hypothesis import given, settings
from hypothesis import strategies as st

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40))


def test_easter_dates_match_the_published_ones():
    assert easter_sunday(2024) == date(2024, 3, 31)
    assert easter_sunday(2025) == date(2025, 4, 20)
    assert easter_sunday(2026) == date(2026, 4, 5)
    assert easter_sunday(2027) == date(2027, 3, 28)
    assert easter_sunday(2038) == date(2038, 4, 25)


def test_french_holidays_of_2026():
    holidays = french_public_holidays(2026)
    assert len(holidays) == 11
    assert holidays[date(2026, 4, 6)] == "Lundi de Pâques"
    assert holidays[date(2026, 5, 14)] == "Ascension"
    assert holidays[date(2026, 5, 25)] == "Lundi de Pentecôte"
    assert date(2026, 7, 14) in holidays and date(2026, 11, 11) in holidays


def test_a_full_working_day_is_nine_and_a_half_hours():
    assert business_seconds_between(paris(2026, 11, 23, 0, 0), paris(2026, 11, 24, 0, 0)) == 9.5 * 3600


def test_friday_evening_to_monday_morning_counts_only_opening_hours():
    # Friday 17:00 → Monday 09:30: one hour on Friday, one on Monday, nothing over the weekend.
    seconds = business_seconds_between(paris(2026, 11, 27, 17, 0), paris(2026, 11, 30, 9, 30))
    assert seconds == 2 * 3600


def test_holiday_counts_nothing():
    # Wednesday 11 November 2026 (Armistice) is closed all day.
    assert business_seconds_between(paris(2026, 11, 11, 0, 0), paris(2026, 11, 12, 0, 0)) == 0


def test_daylight_saving_change_does_not_shift_opening_hours():
    # Monday 30 March 2026 follows the spring change; opening hours stay 08:30–18:00 local.
    assert DEFAULT_CALENDAR.opening_hours(date(2026, 3, 30)) == (
        datetime(2026, 3, 30, 6, 30, tzinfo=UTC),
        datetime(2026, 3, 30, 16, 0, tzinfo=UTC),
    )
    assert DEFAULT_CALENDAR.opening_hours(date(2026, 3, 27)) == (
        datetime(2026, 3, 27, 7, 30, tzinfo=UTC),
        datetime(2026, 3, 27, 17, 0, tzinfo=UTC),
    )


def test_deadline_of_four_hours_on_friday_afternoon_falls_on_monday():
    due = add_business_time(paris(2026, 11, 27, 16, 0), timedelta(hours=4))
    assert due == paris(2026, 11, 30, 10, 30)


def test_two_business_days_skip_weekend_and_holiday():
    # Monday 9 November 2026 10:00 + 2 business days: Wednesday 11 is a holiday, so Thursday 12 at 10:00.
    assert DEFAULT_CALENDAR.add_business_days(paris(2026, 11, 9, 10, 0), 2) == paris(2026, 11, 12, 10, 0)


def test_deadline_from_a_closed_moment_starts_at_next_opening():
    assert add_business_time(paris(2026, 11, 28, 12, 0), timedelta(0)) == paris(2026, 11, 30, 8, 30)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        business_seconds_between(datetime(2026, 1, 5, 9), datetime(2026, 1, 5, 10))


def test_a_calendar_that_closes_before_it_opens_is_refused():
    from datetime import time

    with pytest.raises(ValueError):
        BusinessCalendar(opening=time(18), closing=time(8))


@settings(max_examples=150, deadline=None)
@given(moments, moments, moments)
def test_business_time_is_additive(a, b, c):
    a, b, c = sorted((a, b, c))
    total = business_seconds_between(a, c)
    assert total == pytest.approx(business_seconds_between(a, b) + business_seconds_between(b, c))


@settings(max_examples=150, deadline=None)
@given(moments, durations)
def test_business_time_never_exceeds_wall_clock(start, span):
    end = start + span
    seconds = business_seconds_between(start, end)
    assert 0 <= seconds <= span.total_seconds()
    assert business_seconds_between(end, start) == 0


@settings(max_examples=150, deadline=None)
@given(moments, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10)))
def test_adding_business_time_then_measuring_gives_it_back(start, duration):
    due = add_business_time(start, duration)
    assert due >= start
    assert business_seconds_between(start, due) == pytest.approx(duration.total_seconds())
    # The deadline is the earliest such moment: it lies within (or at the closing of) business hours.
    local = due.astimezone(PARIS)
    assert DEFAULT_CALENDAR.is_business_day(local.date())
    assert DEFAULT_CALENDAR.opening <= local.time().replace(tzinfo=None) <= DEFAULT_CALENDAR.closing


@settings(max_examples=100, deadline=None)
@given(moments)
def test_weekends_and_holidays_count_nothing(moment):
    day = moment.astimezone(PARIS).date()
    start = datetime.combine(day, datetime.min.time(), tzinfo=PARIS)
    seconds = business_seconds_between(start, start + timedelta(days=1))
    expected = 0 if not DEFAULT_CALENDAR.is_business_day(day) else 9.5 * 3600
    assert seconds == expected
