"""Imported tickets (``ticket.batch_imported``, one event per import batch) count in reports with their original
dates, not the import's."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from comptoir_common.events import Event
from comptoir_reports import projection
from comptoir_reports.models import TicketEvent, TicketFact
from sqlalchemy import func, select


def _entry(number: int, status: str, created: datetime, closed: datetime | None, first_response=None) -> dict:
    ticket = {
        "id": str(uuid.uuid4()),
        "number": number,
        "title": "Standard injoignable",
        "status": status,
        "status_category": status,
        "customer_id": None,
        "customer_name": None,
        "requester": {"id": None, "email": "elise@boulangerie.example", "name": "Élise Dupont"},
        "type": "incident",
        "priority": "high",
        "assignees": [],
        "source": "import",
        "created_at": created.isoformat(),
        "updated_at": (closed or created).isoformat(),
        "first_response_at": first_response.isoformat() if first_response else None,
        "closed_at": closed.isoformat() if closed else None,
        "resolution_due_at": None,
    }
    return {"ticket": ticket, "created": True, "old_number": number, "messages_added": 3}


def _batch(*entries: dict) -> Event:
    return Event(
        type="ticket.batch_imported",
        actor={"kind": "user", "id": "a", "role": "admin", "name": "A"},
        data={"imported": True, "tickets": list(entries)},
    )


def test_imported_ticket_keeps_original_dates(session):
    created = datetime(2025, 3, 14, 8, 5, tzinfo=UTC)
    closed = datetime(2025, 3, 14, 15, 40, tzinfo=UTC)
    answered = datetime(2025, 3, 14, 9, 15, tzinfo=UTC)
    entry = _entry(18342, "closed", created, closed, answered)
    event = _batch(entry)
    projection.apply_event(session, event)
    projection.apply_event(session, event)  # redelivered: same figures
    fact = session.get(TicketFact, entry["ticket"]["id"])
    assert fact.number == 18342 and fact.source == "import"
    assert fact.created_day == date(2025, 3, 14) and fact.closed_day == date(2025, 3, 14)
    assert fact.is_closed and fact.resolution_seconds == (closed - created).total_seconds()
    assert fact.first_response_seconds == 70 * 60


def test_a_batch_counts_each_of_its_tickets_once(session):
    entries = [
        _entry(20000 + n, "open" if n % 2 else "closed", datetime(2024, 1, 1 + n, 9, 0, tzinfo=UTC),
               None if n % 2 else datetime(2024, 1, 1 + n, 17, 0, tzinfo=UTC))
        for n in range(5)
    ]  # fmt: skip
    event = _batch(*entries)
    assert projection.apply_events(session, [event]) == 5
    projection.apply_events(session, [event])  # redelivered, or replayed by a rebuild: nothing stored twice
    ids = [e["ticket"]["id"] for e in entries]
    stored = session.scalar(
        select(func.count()).select_from(TicketEvent).where(TicketEvent.ticket_id.in_(ids))
    )
    assert stored == 5
    facts = {f.number: f for f in session.scalars(select(TicketFact).where(TicketFact.ticket_id.in_(ids)))}
    assert sorted(facts) == [20000, 20001, 20002, 20003, 20004]
    assert [facts[20000 + n].created_day for n in range(5)] == [date(2024, 1, 1 + n) for n in range(5)]
    assert [facts[20000 + n].is_closed for n in range(5)] == [True, False, True, False, True]


def test_newer_export_updates_the_imported_ticket(session):
    created = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)
    first = _entry(18343, "pending", created, None)
    projection.apply_event(session, _batch(first))
    fact = session.get(TicketFact, first["ticket"]["id"])
    assert not fact.is_closed and fact.created_day == date(2025, 6, 2)
    closed = datetime(2025, 6, 3, 9, 0, tzinfo=UTC)
    update = _entry(18343, "closed", created, closed)
    update["ticket"]["id"] = first["ticket"]["id"]
    update["created"] = False
    projection.apply_event(session, _batch(update))
    session.refresh(fact)
    assert fact.is_closed and fact.closed_day == date(2025, 6, 3) and fact.created_day == date(2025, 6, 2)
