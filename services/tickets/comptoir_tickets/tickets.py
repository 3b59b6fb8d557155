"""Tickets: create, read and list, with the visibility policy applied on every path."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from comptoir_common.db import utcnow
from comptoir_common.errors import InvalidInput, NotFound, PermissionDenied
from comptoir_common.events import Event, user_actor
from comptoir_common.outbox import add_event
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, selectinload

from comptoir_tickets import policy
from comptoir_tickets.models import Counter, Message, OutboxMessage, Ticket

TICKET_NUMBER_COUNTER = "ticket_number"
MAX_TITLE_LENGTH = 300
MAX_PAGE_SIZE = 200
STATUS_LABELS = {"new": "Non traité", "open": "En cours", "pending": "En attente client", "closed": "Clôturé"}


def next_ticket_number(session: Session) -> int:
    """The next ticket number; the counter row stays locked until the transaction ends, so numbers never repeat."""
    number = session.execute(
        update(Counter)
        .where(Counter.name == TICKET_NUMBER_COUNTER)
        .values(value=Counter.value + 1)
        .returning(Counter.value)
    ).scalar_one_or_none()
    if number is None:
        raise RuntimeError("ticket number counter missing: run the tickets migrations")
    return number


def ticket_to_dict(
    ticket: Ticket, *, with_messages: bool = False, actor: dict[str, Any] | None = None
) -> dict:
    data: dict[str, Any] = {
        "id": ticket.id,
        "number": ticket.number,
        "title": ticket.title,
        "status": ticket.status,
        "status_label": STATUS_LABELS.get(ticket.status, ticket.status),
        "customer_id": ticket.customer_id,
        "requester": {
            "id": ticket.requester_id,
            "email": ticket.requester_email,
            "name": ticket.requester_name,
        },
        "source": ticket.source,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
        "updated_by": {"id": ticket.updated_by_id, "name": ticket.updated_by_name},
        "version": ticket.version,
    }
    if with_messages:
        show_internal = actor is not None and policy.can_see_internal_notes(actor)
        data["messages"] = [
            message_to_dict(message) for message in ticket.messages if show_internal or not message.internal
        ]
    return data


def message_to_dict(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "author": {"id": message.author_id, "name": message.author_name},
        "body": message.body,
        "internal": message.internal,
        "created_at": message.created_at.isoformat(),
    }


def create_ticket(
    session: Session, *, actor: dict[str, Any], title: str, message: str, source: str = "web"
) -> Ticket:
    """Open a ticket with its first message; ``ticket.created`` is committed with it."""
    if not policy.can_create_ticket(actor):
        raise PermissionDenied("Vous ne pouvez pas créer de ticket.")
    title = (title or "").strip()
    message = (message or "").strip()
    if not title:
        raise InvalidInput("Le titre est obligatoire.")
    if len(title) > MAX_TITLE_LENGTH:
        raise InvalidInput(f"Le titre ne doit pas dépasser {MAX_TITLE_LENGTH} caractères.")
    if not message:
        raise InvalidInput("Le message est obligatoire.")
    now = utcnow()
    ticket = Ticket(
        number=next_ticket_number(session),
        title=title,
        status="new",
        customer_id=actor.get("customer_id") if actor.get("role") in ("client", "reseller") else None,
        requester_id=actor["id"],
        requester_email=actor.get("email"),
        requester_name=actor.get("name"),
        source=source,
        created_at=now,
        updated_at=now,
        updated_by_id=actor["id"],
        updated_by_name=actor.get("name"),
    )
    first_message = Message(
        author_id=actor["id"], author_name=actor.get("name"), body=message, created_at=now
    )
    ticket.messages.append(first_message)
    session.add(ticket)
    session.flush()
    add_event(
        session,
        OutboxMessage,
        Event(
            type="ticket.created",
            actor=user_actor(actor),
            data=ticket_to_dict(ticket) | {"message": message_to_dict(first_message)},
        ),
    )
    return ticket


def get_ticket(session: Session, *, actor: dict[str, Any], ticket_id: str) -> Ticket:
    """The ticket if ``actor`` may see it; otherwise NotFound, the same answer as for a ticket that does not exist."""
    ticket = session.scalar(
        select(Ticket).where(Ticket.id == ticket_id).options(selectinload(Ticket.messages))
    )
    if ticket is None or not policy.can_see(actor, ticket):
        raise NotFound("Ticket introuvable.")
    return ticket


def _encode_cursor(ticket: Ticket) -> str:
    return base64.urlsafe_b64encode(f"{ticket.updated_at.isoformat()}|{ticket.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        updated_at, ticket_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(updated_at), ticket_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("Curseur de pagination invalide.") from exc


def list_tickets(
    session: Session, *, actor: dict[str, Any], limit: int = 50, cursor: str | None = None
) -> dict[str, Any]:
    """The tickets ``actor`` may see, last activity first, one page at a time (keyset pagination)."""
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    query = select(Ticket).order_by(Ticket.updated_at.desc(), Ticket.id.desc()).limit(limit + 1)
    visible = policy.visible_tickets_clause(actor)
    if visible is not None:
        query = query.where(visible)
    if cursor:
        updated_at, ticket_id = _decode_cursor(cursor)
        query = query.where(
            or_(Ticket.updated_at < updated_at, and_(Ticket.updated_at == updated_at, Ticket.id < ticket_id))
        )
    rows = session.scalars(query).all()
    page = rows[:limit]
    return {
        "items": [ticket_to_dict(ticket) for ticket in page],
        "next_cursor": _encode_cursor(page[-1]) if len(rows) > limit else None,
    }
