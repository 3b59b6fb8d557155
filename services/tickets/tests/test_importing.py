"""The tickets side of the Simplydesk import: matching, original numbers and dates, idempotence, access, counter."""

from __future__ import annotations

import pytest
from comptoir_common.errors import PermissionDenied
from comptoir_tickets import importing, tickets
from comptoir_tickets.models import Counter, OutboxMessage, Ticket, TicketCount
from sqlalchemy import select


def _ticket(number: int, **extra) -> dict:
    return {
        "number": number,
        "line": 2,
        "title": "Standard injoignable",
        "created_at": "2025-03-14T08:05:00+00:00",
        "status": "open",
        "priority": "Haute",
        "requester_email": "elise@boulangerie.example",
        "requester_name": "Élise Dupont",
        "messages": [
            {"created_at": "2025-03-14T08:05:00+00:00", "body": "Plus de tonalité", "internal": False,
             "author_email": "elise@boulangerie.example", "author_name": "Élise Dupont"},
        ],
    } | extra  # fmt: skip


def test_only_admins_import(session, world):
    for role in ("agent", "sales", "client", "reseller"):
        actor = world.person(role)
        with pytest.raises(PermissionDenied):
            importing.import_batch(session, actor=actor, batch=[_ticket(900001)], dry_run=True)


def test_dry_run_writes_nothing_and_reports_matches(session, world):
    admin = world.person("admin")
    customer_id = world.customer("Société Générale d'Électricité")
    agent = world.person("agent", name="Hugo Bernard")
    batch = [
        _ticket(900011, customer="societe generale d electricite", assignees=["hugo bernard", "Inconnu"]),
        _ticket(900012, customer="Inconnue SARL", status="Statut bizarre"),
        _ticket(900013, created_at=None),
    ]
    answer = importing.import_batch(session, actor=admin, batch=batch, dry_run=True)
    assert answer["summary"]["created"] == 2 and answer["summary"]["rejected"] == 1
    first, second, third = answer["tickets"]
    assert first["customer"] == {"match": "name", "id": customer_id, "name": "Société Générale d'Électricité",
                                 "source_name": "societe generale d electricite"}  # fmt: skip
    assert first["assignees"] == [agent["name"]] and first["unmatched_assignees"] == ["Inconnu"]
    assert second["customer"]["match"] is None and "statut inconnu « Statut bizarre »" in second["warnings"]
    assert third["reasons"] == ["date de création manquante"]
    assert session.scalar(select(Ticket).where(Ticket.number >= 900011)) is None
    assert not any(o.event_type == "ticket.batch_imported" for o in session.scalars(select(OutboxMessage)))


def test_import_keeps_number_and_dates_then_is_idempotent(session, world):
    admin = world.person("admin")
    agent = world.person("agent", name="Hugo Bernard")
    closed = _ticket(
        900021,
        status="Résolu",
        closed_at="2025-03-14T15:40:00+00:00",
        messages=_ticket(1)["messages"]
        + [{"created_at": "2025-03-14T09:00:00+00:00", "body": "On regarde", "author_email": agent["email"]}],
    )
    counts_before = (
        session.scalar(
            select(TicketCount.count).where(TicketCount.customer_id == "", TicketCount.category == "closed")
        )
        or 0
    )
    answer = importing.import_batch(session, actor=admin, batch=[closed])
    assert answer["summary"]["created"] == 1
    ticket = session.scalar(select(Ticket).where(Ticket.number == 900021))
    assert ticket.source == "import" and ticket.status_category == "closed"
    assert ticket.created_at.isoformat() == "2025-03-14T08:05:00+00:00"
    assert ticket.closed_at.isoformat() == "2025-03-14T15:40:00+00:00"
    assert ticket.first_response_at.isoformat() == "2025-03-14T09:00:00+00:00"
    assert ticket.requester_id is None and ticket.requester_email == "elise@boulangerie.example"
    assert [m.author_role for m in ticket.messages] == ["client", "agent"]
    assert session.get(Counter, tickets.TICKET_NUMBER_COUNTER).value >= 900021
    assert (
        session.scalar(
            select(TicketCount.count).where(TicketCount.customer_id == "", TicketCount.category == "closed")
        )
        == counts_before + 1
    )
    events = [
        o
        for o in session.scalars(select(OutboxMessage))
        if any(t["old_number"] == 900021 for t in o.payload["data"].get("tickets") or [])
    ]
    assert [e.event_type for e in events] == ["ticket.batch_imported"]
    (entry,) = events[0].payload["data"]["tickets"]
    assert entry["created"] and entry["messages_added"] == 2 and entry["ticket"]["id"] == ticket.id
    assert entry["ticket"]["closed_at"] == "2025-03-14T15:40:00+00:00"

    again = importing.import_batch(session, actor=admin, batch=[closed])
    assert again["summary"] | {"matches": None} == {"created": 0, "updated": 0, "unchanged": 1, "rejected": 0,
                                                     "messages": 0, "matches": None}  # fmt: skip
    newer = closed | {
        "messages": closed["messages"] + [{"created_at": "2025-03-15T10:00:00+00:00", "body": "Merci"}]
    }
    answer = importing.import_batch(session, actor=admin, batch=[newer])
    assert answer["tickets"][0]["outcome"] == "updated" and answer["tickets"][0]["new_messages"] == 1

    # A live ticket afterwards numbers after the highest imported one; an imported number cannot take a live one.
    live = tickets.create_ticket(session, actor=admin, title="Après", message="Bonjour")
    assert live.number > 900021
    clash = importing.import_batch(session, actor=admin, batch=[_ticket(live.number)])
    assert clash["tickets"][0]["reasons"] == [
        f"le numéro {live.number} est déjà utilisé par un ticket créé dans Comptoir"
    ]
