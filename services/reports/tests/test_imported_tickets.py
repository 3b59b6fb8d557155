"""Imported tickets (``ticket.imported``) count in reports with their original dates, not the import's."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from comptoir_common.events import Event
from comptoir_reports import projection
from comptoir_reports.models import TicketFact


def _imported(
    number: int, status: str, created: datetime, closed: datetime | None, first_response=None
) -> Event:
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
    data = {"ticket": ticket, "imported": True, "created": True, "old_number": number, "messages": []}
    return Event(
        type="ticket.imported", actor={"kind": "user", "id": "a", "role": "admin", "name": "A"}, data=data
    )


def test_imported_ticket_keeps_original_dates(session):
    created = datetime(2025, 3, 14, 8, 5, tzinfo=UTC)
    closed = datetime(2025, 3, 14, 15, 40, tzinfo=UTC)
    answered = datetime(2025, 3, 14, 9, 15, tzinfo=UTC)
    event = _imported(18342, "closed", created, closed, answered)
    projection.apply_event(session, event)
    projection.apply_event(session, event)  # redelivered: same figures
    fact = session.get(TicketFact, event.data["ticket"]["id"])
    assert fact.number == 18342 and fact.source == "import"
    assert fact.created_day == date(2025, 3, 14) and fact.closed_day == date(2025, 3, 14)
    assert fact.is_closed and fact.resolution_seconds == (closed - created).total_seconds()
    assert fact.first_response_seconds == 70 * 60


def test_newer_export_updates_the_imported_ticket(session):
    created = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)
    first = _imported(18343, "pending", created, None)
    projection.apply_event(session, first)
    fact = session.get(TicketFact, first.data["ticket"]["id"])
    assert not fact.is_closed and fact.created_day == date(2025, 6, 2)
    closed = datetime(2025, 6, 3, 9, 0, tzinfo=UTC)
    update = _imported(18343, "closed", created, closed)
    update.data["ticket"]["id"] = first.data["ticket"]["id"]
    update.data["created"] = False
    projection.apply_event(session, update)
    session.refresh(fact)
    assert fact.is_closed and fact.closed_day == date(2025, 6, 3) and fact.created_day == date(2025, 6, 2)
