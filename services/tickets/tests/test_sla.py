"""Resolution deadlines across nights, weekends and French holidays, paused while waiting on the customer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from comptoir_tickets import sla
from comptoir_tickets.models import Ticket
from comptoir_tickets.tickets import _start_clock, _stop_clock
from hypothesis import given, settings
from hypothesis import strategies as st

PARIS = ZoneInfo("Europe/Paris")
CALENDAR = sla.calendar_from_config(None)
TARGETS = [4 * 60, 8 * 60, 2 * 570, 5 * 570]  # the default priorities

moments = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)


def _paris(*args) -> datetime:
    return datetime(*args, tzinfo=PARIS)


def test_urgent_ticket_opened_friday_evening_is_due_monday_morning():
    due = sla.add_business_minutes(CALENDAR, _paris(2026, 11, 27, 17, 0), 4 * 60)
    assert due == _paris(2026, 11, 30, 11, 30).astimezone(UTC)


def test_normal_ticket_skips_christmas_and_the_weekend():
    # Thursday 24 Dec 2026 16:00 + 2 business days: 2 h on the 24th, the 25th is Christmas, then the weekend.
    due = sla.add_business_minutes(CALENDAR, _paris(2026, 12, 24, 16, 0), 2 * 570)
    assert due == _paris(2026, 12, 29, 16, 0).astimezone(UTC)


def test_easter_monday_and_ascension_are_closed():
    # Easter 2027 is 28 March: Monday 29 March is closed; Ascension is Thursday 6 May.
    assert sla.add_business_minutes(CALENDAR, _paris(2027, 3, 26, 17, 0), 120) == _paris(
        2027, 3, 30, 9, 30
    ).astimezone(UTC)
    assert sla.add_business_minutes(CALENDAR, _paris(2027, 5, 5, 17, 0), 120) == _paris(
        2027, 5, 7, 9, 30
    ).astimezone(UTC)


@settings(max_examples=150, deadline=None)
@given(start=moments, target=st.sampled_from(TARGETS))
def test_deadline_is_an_open_moment_with_exactly_the_target_in_between(start, target):
    due = sla.add_business_minutes(CALENDAR, start, target)
    assert due > start
    assert sla.business_minutes_between(CALENDAR, start, due) == target
    local = due.astimezone(PARIS)
    assert local.weekday() < 5 and not CALENDAR.is_holiday(local.date())
    assert (local.hour, local.minute) >= (8, 30) and (local.hour, local.minute, local.second) <= (18, 0, 0)


@settings(max_examples=150, deadline=None)
@given(
    opened=moments,
    worked=st.integers(min_value=0, max_value=60 * 24 * 10),
    paused=st.integers(min_value=0, max_value=60 * 24 * 30),
    target=st.sampled_from(TARGETS),
)
def test_time_waiting_on_the_customer_does_not_count(opened, worked, paused, target):
    ticket = Ticket(sla_target_minutes=target, sla_elapsed_minutes=0)
    _start_clock(ticket, CALENDAR, opened)
    pause_at = opened + timedelta(minutes=worked)
    _stop_clock(ticket, CALENDAR, pause_at)
    assert ticket.resolution_due_at is None and ticket.sla_running_since is None
    consumed = sla.business_minutes_between(CALENDAR, opened, pause_at)
    assert ticket.sla_elapsed_minutes == consumed
    resume_at = pause_at + timedelta(minutes=paused)
    _start_clock(ticket, CALENDAR, resume_at)
    assert ticket.resolution_due_at == sla.add_business_minutes(
        CALENDAR, resume_at, max(0, target - consumed)
    )
    # Never earlier than without the pause.
    assert ticket.resolution_due_at >= sla.add_business_minutes(CALENDAR, opened, target) - timedelta(
        minutes=1
    )


def test_calendar_config_round_trip_and_custom_hours():
    config = {"opening": "09:00", "closing": "12:00", "workdays": [0], "extra_holidays": ["2026-12-07"]}
    calendar = sla.calendar_from_config(config)
    assert sla.calendar_to_config(calendar)["workdays"] == [0]
    # Monday 30 Nov 12:00 → next Monday (7 Dec) is an extra holiday → Monday 14 Dec 10:00.
    assert sla.add_business_minutes(calendar, _paris(2026, 11, 30, 12, 0), 60) == _paris(
        2026, 12, 14, 10, 0
    ).astimezone(UTC)
