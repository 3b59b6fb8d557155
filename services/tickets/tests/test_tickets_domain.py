"""Ticket life: creation, edits with history and events, conflicts, replies and notes, close and reopen."""

from __future__ import annotations

import pytest
from comptoir_common.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from comptoir_tickets import listing, tickets
from comptoir_tickets.models import OutboxMessage
from sqlalchemy import select


def _events(session, ticket_id: str) -> list[dict]:
    rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.seq)).all()
    return [r.payload for r in rows if (r.payload["data"].get("ticket") or {}).get("id") == ticket_id]


def test_client_creates_ticket_on_own_company_with_defaults(session, world):
    customer = world.customer("Boulangerie Dupont")
    client = world.person("client", "Claire", customer)
    ticket = tickets.create_ticket(
        session, actor=client, title="Ligne coupée", message="Plus de tonalité", type="incident"
    )
    assert ticket.customer_id == customer and ticket.customer_name == "Boulangerie Dupont"
    assert ticket.status == "new" and ticket.status_category == "new" and ticket.priority == "normal"
    assert ticket.resolution_due_at is not None and ticket.sla_target_minutes == 1140
    [created] = _events(session, ticket.id)
    assert created["type"] == "ticket.created"
    assert created["data"]["ticket"]["number"] == ticket.number
    assert created["data"]["message"]["body"] == "Plus de tonalité"


def test_client_cannot_set_priority_or_internal_note(session, world):
    client = world.person("client", customer_id=world.customer("A"))
    with pytest.raises(PermissionDenied):
        tickets.create_ticket(session, actor=client, title="t", message="m", priority="urgent")
    with pytest.raises(PermissionDenied):
        tickets.create_ticket(session, actor=client, title="t", message="m", internal_note="secret")


def test_edit_records_history_and_events_and_stale_version_conflicts(session, world):
    customer = world.customer("A")
    agent = world.person("agent", "Thomas")
    client = world.person("client", customer_id=customer)
    ticket = tickets.create_ticket(session, actor=client, title="Titre", message="m")
    updated = tickets.update_ticket(
        session, actor=agent, ticket_id=ticket.id, version=1, changes={"priority": "urgent", "status": "open"}
    )
    assert updated.version == 2 and updated.priority == "urgent" and updated.status_category == "open"
    assert updated.updated_by_name == "Thomas"
    types = [e["type"] for e in _events(session, ticket.id)]
    assert types[-2:] == ["ticket.updated", "ticket.status_changed"]
    history = tickets.history(session, actor=client, ticket_id=ticket.id)
    assert [h["action"] for h in history] == ["created", "field_changed", "status_changed"]
    assert (
        history[1]["field"] == "priority" and history[1]["old"] == "normal" and history[1]["new"] == "urgent"
    )
    with pytest.raises(Conflict) as conflict:
        tickets.update_ticket(
            session, actor=agent, ticket_id=ticket.id, version=1, changes={"title": "Autre"}
        )
    assert conflict.value.details["ticket"]["version"] == 2
    assert conflict.value.details["ticket"]["title"] == "Titre"


def test_client_closes_and_reopens_but_cannot_set_open(session, world):
    customer = world.customer("A")
    client = world.person("client", customer_id=customer)
    ticket = tickets.create_ticket(session, actor=client, title="t", message="m")
    with pytest.raises(PermissionDenied):
        tickets.update_ticket(
            session, actor=client, ticket_id=ticket.id, version=1, changes={"status": "open"}
        )
    with pytest.raises(PermissionDenied):
        tickets.update_ticket(
            session, actor=client, ticket_id=ticket.id, version=1, changes={"priority": "urgent"}
        )
    closed = tickets.update_ticket(
        session, actor=client, ticket_id=ticket.id, version=1, changes={"status": "closed"}
    )
    assert closed.closed_at is not None and closed.resolution_due_at is None
    reopened = tickets.update_ticket(
        session, actor=client, ticket_id=ticket.id, version=2, changes={"status": "new"}
    )
    assert (
        reopened.reopened_count == 1 and reopened.closed_at is None and reopened.resolution_due_at is not None
    )
    types = [e["type"] for e in _events(session, ticket.id)]
    assert "ticket.closed" in types and "ticket.reopened" in types
    assert listing.dashboard(session, actor=client)["counts"] == {
        "new": 1,
        "open": 0,
        "pending": 0,
        "closed": 0,
    }


def test_internal_note_hidden_from_client_everywhere(session, world):
    customer = world.customer("A", sales_rep_id=None)
    client = world.person("client", customer_id=customer)
    agent = world.person("agent")
    ticket = tickets.create_ticket(session, actor=client, title="t", message="public")
    tickets.add_message(session, actor=agent, ticket_id=ticket.id, body="secret interne", internal=True)
    with pytest.raises(PermissionDenied):
        tickets.add_message(session, actor=client, ticket_id=ticket.id, body="x", internal=True)
    session.expire_all()
    view = tickets.ticket_to_dict(
        session,
        tickets.get_ticket(session, actor=client, ticket_id=ticket.id),
        actor=client,
        with_messages=True,
    )
    assert [m["body"] for m in view["messages"]] == ["public"]
    assert all(not h["internal"] for h in tickets.history(session, actor=client, ticket_id=ticket.id))
    assert listing.list_tickets(session, actor=client, filters={"q": "secret"})["items"] == []
    assert len(listing.list_tickets(session, actor=agent, filters={"q": "secret"})["items"]) == 1
    [note_event] = [e for e in _events(session, ticket.id) if e["type"] == "ticket.message_added"]
    assert note_event["data"]["message"]["internal"] is True


def test_first_response_and_take(session, world):
    customer = world.customer("A")
    client = world.person("client", customer_id=customer)
    agent = world.person("agent", "Thomas")
    ticket = tickets.create_ticket(session, actor=client, title="t", message="m")
    tickets.take_ticket(session, actor=agent, ticket_id=ticket.id)
    assert ticket.assignees == [{"id": agent["id"], "name": "Thomas"}] and ticket.status_category == "open"
    tickets.add_message(session, actor=agent, ticket_id=ticket.id, body="réponse")
    assert ticket.first_response_at is not None
    mine = listing.list_tickets(session, actor=agent, filters={"view": "mine"})["items"]
    assert [t["id"] for t in mine] == [ticket.id]
    with pytest.raises(PermissionDenied):
        tickets.take_ticket(session, actor=client, ticket_id=ticket.id)


def test_unknown_ticket_and_bad_input(session, world):
    agent = world.person("agent")
    with pytest.raises(NotFound):
        tickets.get_ticket(session, actor=agent, ticket_id="00000000-0000-0000-0000-000000000000")
    with pytest.raises(InvalidInput):
        tickets.create_ticket(session, actor=agent, title="", message="m")
    with pytest.raises(InvalidInput):
        tickets.create_ticket(session, actor=agent, title="t", message="m", type="nope")


def test_sla_breach_flagged_once_and_published(session, world):
    from datetime import timedelta

    agent = world.person("agent")
    ticket = tickets.create_ticket(session, actor=agent, title="t", message="m", priority="urgent")
    later = ticket.resolution_due_at + timedelta(minutes=1)
    assert tickets.scan_sla_breaches(session, now=later) >= 1
    assert ticket.sla_breached is True
    assert tickets.scan_sla_breaches(session, now=later) == 0
    breaches = [e for e in _events(session, ticket.id) if e["type"] == "ticket.sla_breached"]
    assert len(breaches) == 1 and breaches[0]["data"]["due_at"] == ticket.resolution_due_at.isoformat()
    assert ticket.id in {
        t["id"] for t in listing.list_tickets(session, actor=agent, filters={"breached": True})["items"]
    }
    # Waiting on the customer pauses the clock: no deadline while pending.
    paused = tickets.update_ticket(
        session, actor=agent, ticket_id=ticket.id, version=ticket.version, changes={"status": "pending"}
    )
    assert paused.resolution_due_at is None


def test_priority_change_recomputes_deadline(session, world):
    agent = world.person("agent")
    ticket = tickets.create_ticket(session, actor=agent, title="t", message="m", priority="low")
    low_due = ticket.resolution_due_at
    tickets.update_ticket(
        session, actor=agent, ticket_id=ticket.id, version=1, changes={"priority": "urgent"}
    )
    assert ticket.resolution_due_at < low_due and ticket.sla_target_minutes == 240


def test_sales_rep_sees_only_their_customers(session, world):
    sales = world.person("sales")
    mine = world.customer("Mien", sales_rep_id=sales["id"])
    other = world.customer("Autre")
    agent = world.person("agent")
    t_mine = tickets.create_ticket(session, actor=agent, title="a", message="m", customer_id=mine)
    t_other = tickets.create_ticket(session, actor=agent, title="b", message="m", customer_id=other)
    ids = {t["id"] for t in listing.list_tickets(session, actor=sales, limit=200)["items"]}
    assert t_mine.id in ids and t_other.id not in ids
    with pytest.raises(NotFound):
        tickets.get_ticket(session, actor=sales, ticket_id=t_other.id)
    with pytest.raises(PermissionDenied):
        tickets.create_ticket(session, actor=sales, title="c", message="m", customer_id=other)
    counts = listing.dashboard(session, actor=sales)
    assert counts["new"] >= 1


def test_customer_event_redelivered_or_late_is_harmless(session, world):
    from datetime import UTC, datetime

    from comptoir_common.events import Event, system_actor
    from comptoir_tickets import readmodels
    from comptoir_tickets.models import Customer

    customer_id = world.customer("Nom actuel")
    stale = Event(
        type="customer.upserted",
        actor=system_actor("crm_sync"),
        data={"id": customer_id, "name": "Ancien nom", "sales_rep_id": None, "parent_customer_id": None},
        occurred_at=datetime(2000, 1, 1, tzinfo=UTC),
    )
    readmodels.upsert_customer(session, stale)
    assert session.get(Customer, customer_id).name == "Nom actuel"
