"""Every report on the known data set (conftest.known_set), against figures computed by hand."""

from __future__ import annotations

import random

import pytest
from comptoir_reports import projection, reports
from comptoir_reports.models import TicketFact


@pytest.fixture
def projected(session, directory_loaded):
    """The known set fed in a shuffled order, with every event delivered twice: figures must not care."""
    events = list(directory_loaded.events)
    random.Random(7).shuffle(events)
    for event in events + events[:10]:
        projection.apply_event(session, event)
    return directory_loaded


def report(session, ks, key, **filters):
    actor = {"id": ks.admin["id"], "role": "admin", "name": ks.admin["name"]}
    return reports.get_report(session, actor=actor, report=key, filters={**ks.period, **filters})


def rows_by(result, key):
    return {row[key]: row for row in result["rows"]}


def test_summary(session, projected):
    (row,) = report(session, projected, "summary")["rows"]
    assert row == {
        "created": 5,
        "closed": 3,
        "open": 2,
        "reopened": 1,
        "mean_resolution_hours": 31.83,  # (2 + 65.5 + 28) / 3
        "mean_resolution_business_hours": 6.17,  # (2 + 3 + 13.5) / 3
    }


def test_requests_per_user(session, projected):
    rows = rows_by(report(session, projected, "requests_per_user"), "requester")
    assert rows["Claire Alpha"]["requests"] == 2
    assert rows["Claire Alpha"]["customer"] == "Alpha SARL"
    assert rows["Charles Beta"]["requests"] == 2
    # A sender without an account is grouped by address; the ticket moved to Beta counts for Beta.
    assert rows["Inconnu@Exemple.test"]["requests"] == 1
    assert rows["Inconnu@Exemple.test"]["customer"] == "Beta SAS"


def test_mean_resolution_per_customer(session, projected):
    rows = rows_by(report(session, projected, "resolution_per_customer"), "customer")
    assert rows["Alpha SARL"] == {
        "customer": "Alpha SARL",
        "closed": 2,
        "mean_hours": 15.0,
        "mean_business_hours": 7.75,
    }
    assert rows["Beta SAS"] == {
        "customer": "Beta SAS",
        "closed": 1,
        "mean_hours": 65.5,
        "mean_business_hours": 3.0,
    }


def test_resolution_median_and_p90(session, projected):
    rows = rows_by(report(session, projected, "resolution"), "priority")
    assert [row["priority"] for row in report(session, projected, "resolution")["rows"]] == [
        "Urgente",
        "Haute",
        "Normale",
        "Toutes",
    ]
    total = rows["Toutes"]
    assert total["count"] == 3
    assert total["median_hours"] == 28.0
    assert total["p90_hours"] == 58.0  # 28 + (65.5 - 28) × 0.8
    assert total["median_business_hours"] == 3.0
    assert total["p90_business_hours"] == 11.4  # 3 + (13.5 - 3) × 0.8
    # Closed across the weekend: 65.5 h on the clock, 3 business hours.
    assert rows["Normale"]["mean_hours"] == 65.5 and rows["Normale"]["mean_business_hours"] == 3.0


def test_first_response_ignores_internal_notes_and_client_messages(session, projected):
    rows = rows_by(report(session, projected, "first_response"), "priority")
    assert rows["Urgente"]["median_hours"] == 0.5  # T1: the internal note at 09:15 does not count
    assert rows["Urgente"]["unanswered"] == 1  # T5
    assert rows["Normale"]["mean_hours"] == 64.0 and rows["Normale"]["mean_business_hours"] == 1.5
    assert rows["Normale"]["unanswered"] == 1  # T4 got only an internal note
    assert rows["Toutes"]["count"] == 3 and rows["Toutes"]["unanswered"] == 2
    assert rows["Toutes"]["median_business_hours"] == 1.0


def test_deadline_compliance_per_priority(session, projected):
    rows = rows_by(report(session, projected, "sla"), "priority")
    assert rows["Urgente"] == {"priority": "Urgente", "met": 1, "breached": 1, "compliance": 50.0}
    assert rows["Haute"] == {"priority": "Haute", "met": 0, "breached": 1, "compliance": 0.0}
    assert rows["Normale"] == {"priority": "Normale", "met": 1, "breached": 0, "compliance": 100.0}
    assert rows["Toutes"]["compliance"] == 50.0


def test_created_and_closed_per_day_and_week(session, projected):
    daily = rows_by(report(session, projected, "volume"), "period")
    assert len(daily) == 8
    assert [daily[f"2026-11-{day}"]["created"] for day in range(23, 31)] == [1, 1, 1, 1, 1, 0, 0, 0]
    assert [daily[f"2026-11-{day}"]["closed"] for day in range(23, 31)] == [1, 0, 1, 0, 0, 0, 0, 1]
    weekly = report(session, projected, "volume", granularity="week")["rows"]
    assert weekly == [
        {"period": "2026-S48", "created": 5, "closed": 2},
        {"period": "2026-S49", "created": 0, "closed": 1},
    ]
    monthly = report(session, projected, "volume", granularity="month")["rows"]
    assert monthly == [{"period": "2026-11", "created": 5, "closed": 3}]


def test_backlog_by_status_and_by_agent(session, projected):
    assert rows_by(report(session, projected, "backlog_status"), "status") == {
        "En cours": {"status": "En cours", "open": 1},
        "En attente client": {"status": "En attente client", "open": 1},
    }
    assert rows_by(report(session, projected, "backlog_agent"), "agent") == {
        "Gisèle Technicienne": {"agent": "Gisèle Technicienne", "open": 1},
        "Non assigné": {"agent": "Non assigné", "open": 1},
    }


def test_per_agent(session, projected):
    rows = rows_by(report(session, projected, "agents"), "agent")
    assert rows["Gaston Technicien"] == {
        "agent": "Gaston Technicien",
        "assigned": 2,
        "closed": 2,
        "mean_hours": 15.0,
        "mean_business_hours": 7.75,
    }
    assert rows["Gisèle Technicienne"]["assigned"] == 2
    assert rows["Gisèle Technicienne"]["closed"] == 1
    assert rows["Gisèle Technicienne"]["mean_hours"] == 65.5


def test_per_type(session, projected):
    rows = rows_by(report(session, projected, "types"), "type")
    assert rows["Incident"] == {
        "type": "Incident",
        "created": 4,
        "closed": 2,
        "mean_hours": 33.75,
        "mean_business_hours": 2.5,
    }
    assert rows["Facturation"]["created"] == 1 and rows["Facturation"]["mean_hours"] == 28.0


def test_reopen_rate(session, projected):
    total = rows_by(report(session, projected, "reopen_rate"), "priority")["Toutes"]
    assert total == {"priority": "Toutes", "closed_once": 3, "reopened": 1, "reopens": 1, "rate": 33.3}


def test_top_customers_count_a_moved_ticket_once_for_its_last_customer(session, projected):
    rows = report(session, projected, "top_customers")["rows"]
    assert rows == [
        {"customer": "Beta SAS", "created": 3, "open": 2},
        {"customer": "Alpha SARL", "created": 2, "open": 0},
    ]


def test_filters_by_customer_type_priority_agent(session, projected):
    ks = projected

    def created(**filters):
        return report(session, ks, "summary", **filters)["rows"][0]["created"]

    assert created(customer_id=ks.alpha) == 2
    assert created(customer_id=ks.beta) == 3
    assert created(type="billing") == 1
    assert created(priority="urgent") == 2
    assert created(agent_id=ks.g1["id"]) == 2
    assert created(agent_id=ks.g2["id"], priority="normal") == 2
    assert created(start="2026-11-24", end="2026-11-25") == 2


def test_agent_filter_on_reports_that_group_by_agent(session, projected):
    ks = projected
    backlog = report(session, ks, "backlog_agent", agent_id=ks.g2["id"])["rows"]
    assert backlog == [{"agent": "Gisèle Technicienne", "open": 1}]
    agents = report(session, ks, "agents", agent_id=ks.g1["id"])["rows"]
    assert [(row["agent"], row["assigned"], row["closed"]) for row in agents] == [("Gaston Technicien", 2, 2)]
    for spec in reports.CATALOGUE:
        report(
            session, ks, spec.key, agent_id=ks.g1["id"], customer_id=ks.alpha, type="billing", priority="high"
        )


def test_period_defaults_to_the_last_ninety_days():
    from datetime import date

    filters = reports.parse_filters({}, today=date(2026, 11, 28))
    assert (filters.start, filters.end) == (date(2026, 8, 31), date(2026, 11, 28))


@pytest.mark.parametrize(
    "filters, message",
    [
        ({"start": "28/11/2026"}, "Date invalide"),
        ({"start": "2026-11-30", "end": "2026-11-01"}, "précéder"),
        ({"granularity": "year"}, "Granularité"),
        ({"colour": "red"}, "Filtre inconnu"),
    ],
)
def test_bad_filters_are_refused_in_french(filters, message):
    from comptoir_common.errors import InvalidInput

    with pytest.raises(InvalidInput, match=message):
        reports.parse_filters(filters)


def test_unknown_report_is_not_found(session, projected):
    from comptoir_common.errors import NotFound

    with pytest.raises(NotFound):
        report(session, projected, "weather")


def test_ticket_fact_of_the_ticket_closed_across_the_weekend(session, projected):
    fact = session.get(TicketFact, projected.stories[1].id)
    assert fact.resolution_seconds == 65.5 * 3600
    assert fact.resolution_business_seconds == 3 * 3600
    assert fact.sla_status == "met" and fact.reopen_count == 0


def test_first_shape_of_ticket_created_is_projected(session):
    """The first ticket.created (v1) carried the ticket at the top of ``data``, not under ``data.ticket``."""
    from datetime import UTC, datetime

    from comptoir_common.events import Event

    data = {
        "id": "11111111-2222-4333-8444-555555555555",
        "number": 7,
        "title": "Ligne coupée",
        "status": "new",
        "status_label": "Non traité",
        "customer_id": None,
        "requester": {"id": None, "email": "a@b.test", "name": None},
        "source": "web",
        "created_at": "2026-11-28T07:00:00+00:00",
        "updated_at": "2026-11-28T07:00:00+00:00",
        "future_field": {"ignored": True},
        "message": {
            "id": "m1",
            "author": {"id": None, "name": None},
            "body": "x" * 10_000,
            "internal": False,
        },
    }
    projection.apply_event(
        session,
        Event(type="ticket.created", data=data, actor={"kind": "system"}, occurred_at=datetime.now(UTC)),
    )
    fact = session.get(TicketFact, data["id"])
    assert fact.number == 7 and fact.status_category == "new" and fact.requester_key == "email:a@b.test"


def test_sqlite_store_of_a_local_run_gives_the_same_figures(tmp_path, session, projected):
    """``make dev`` keeps the reports in SQLite: same figures there (percentiles computed in Python)."""
    from comptoir_common.db import make_engine, make_session_factory, session_scope
    from comptoir_common.migrations import upgrade
    from comptoir_dev.registry import service
    from comptoir_reports import directory

    url = f"sqlite:///{tmp_path / 'reports.db'}"
    upgrade(service("reports").migrations_dir, url)
    engine = make_engine(url)
    try:
        with session_scope(make_session_factory(engine)) as lite:
            ks = projected
            directory.upsert_customer(lite, {"id": ks.alpha, "name": "Alpha SARL"})
            directory.upsert_customer(lite, {"id": ks.beta, "name": "Beta SAS"})
            for who in (ks.g1, ks.g2):
                directory.upsert_user(lite, who)
            for event in ks.events:
                projection.apply_event(lite, event)
            lite.flush()
            for spec in reports.CATALOGUE:
                for granularity in ("day", "month"):
                    filters = {"granularity": granularity}
                    assert report(lite, ks, spec.key, **filters) == report(session, ks, spec.key, **filters)
    finally:
        engine.dispose()


def _expected_percentiles(session, column, clauses):
    from sqlalchemy import func, select

    return {
        reports.TOTAL if total else priority: (count, median, p90)
        for priority, total, count, median, p90 in session.execute(
            select(
                TicketFact.priority,
                func.grouping(TicketFact.priority),
                func.count(column),
                func.percentile_cont(0.5).within_group(column),
                func.percentile_cont(0.9).within_group(column),
            )
            .where(*clauses)
            .group_by(func.rollup(TicketFact.priority))
        )
        if count
    }


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-11-02", "2026-11-02"),  # one day: the facts only
        ("2026-10-01", "2026-12-31"),  # whole months: the monthly rollup only
        ("2026-09-17", "2027-01-05"),  # whole months and the days around them
        ("2026-10-01", "2026-11-20"),  # a whole month and the days after it
    ],
)
@pytest.mark.parametrize("through_rollups", [True, False])
def test_percentiles_equal_postgresql_percentile_cont(session, monkeypatch, start, end, through_rollups):
    """The per-bucket selection of the percentiles gives exactly ``percentile_cont``'s figures (ties, one value,
    values in many buckets, no priority, missing business durations), whether the buckets are counted from the
    monthly rollup and the facts around it or from the facts alone."""
    from datetime import UTC, date, datetime, timedelta

    from comptoir_reports import policy, rollups

    draw = random.Random(7)
    first = date(2026, 9, 1)
    durations = [0.0, 0.0, 12.5, 12.5, 12.5] + [draw.expovariate(1 / 90000) for _ in range(1200)]
    for index, seconds in enumerate(durations):
        # The first ones all on 2 November (ties in one day), the rest spread over September to January.
        day = date(2026, 11, 2) if index < 40 else first + timedelta(days=draw.randrange(140))
        session.add(
            TicketFact(
                ticket_id=f"00000000-0000-4000-8000-{index:012d}",
                priority=["urgent", "normal", "low", None][index % 4] if index else "high",
                created_at=datetime(day.year, day.month, day.day, 9, tzinfo=UTC),
                created_day=day,
                closed_day=day,
                resolution_seconds=seconds,
                resolution_business_seconds=None if index % 7 == 3 else round(seconds / 3, 1),
                first_response_seconds=seconds / 10,
                first_response_business_seconds=seconds / 30,
                last_event_at=datetime(2026, 11, 2, 9, tzinfo=UTC),
            )
        )
    session.flush()
    rollups.refill(session)
    if not through_rollups:
        monkeypatch.setattr(reports, "_from_rollups", lambda *args, **kwargs: False)
    scope = policy.scope_for(session, {"id": "00000000-0000-4000-8000-00000000ad11", "role": "admin"})
    filters = reports.parse_filters({"start": start, "end": end})
    for duration, day_column in (
        ("resolution", TicketFact.closed_day),
        ("first_response", TicketFact.created_day),
    ):
        found = reports._duration_stats(session, scope, filters, duration)
        clauses = [day_column >= filters.start, day_column <= filters.end]
        for clock, column in (
            ("wall", getattr(TicketFact, f"{duration}_seconds")),
            ("business", getattr(TicketFact, f"{duration}_business_seconds")),
        ):
            got = {
                key: (stats[clock]["count"], stats[clock]["median"], stats[clock]["p90"])
                for key, stats in found.items()
                if stats[clock]
            }
            assert got == _expected_percentiles(session, column, clauses), (duration, clock)


def test_percentiles_are_read_again_when_the_facts_change_between_statements(session, monkeypatch):
    """The counts and the values come from separate statements: when they disagree (a ticket changed in between),
    the figures are read again instead of failing or shifting."""
    from datetime import UTC, date, datetime

    from comptoir_reports import policy

    day = date(2026, 11, 2)
    for index in range(50):
        session.add(
            TicketFact(
                ticket_id=f"00000000-0000-4000-8000-{index:012d}",
                priority="normal",
                created_at=datetime(2026, 11, 2, 9, tzinfo=UTC),
                created_day=day,
                closed_day=day,
                resolution_seconds=60.0 * (index + 1),
                resolution_business_seconds=30.0 * (index + 1),
                last_event_at=datetime(2026, 11, 2, 9, tzinfo=UTC),
            )
        )
    session.flush()
    scope = policy.scope_for(session, {"id": "00000000-0000-4000-8000-00000000ad11", "role": "admin"})
    filters = reports.parse_filters({"start": "2026-11-02", "end": "2026-11-02"})
    expected = reports._duration_stats(session, scope, filters, "resolution")

    counts = reports._count_facts
    calls = []

    def count_one_more_the_first_time(session, columns, clauses, found):
        counts(session, columns, clauses, found)
        if not calls:  # as if a ticket had joined every bucket after the count
            for (clock, key), buckets in found.per_bucket.items():
                for bucket in buckets:
                    buckets[bucket] += 1
        calls.append(1)

    monkeypatch.setattr(reports, "_count_facts", count_one_more_the_first_time)
    assert reports._duration_stats(session, scope, filters, "resolution") == expected
    assert len(calls) == 2
