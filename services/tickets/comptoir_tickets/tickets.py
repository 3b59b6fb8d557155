"""Tickets: create, read, edit, reply, history; the visibility policy on every path, every change in the history
and in an event (outbox), the SLA kept up to date."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from comptoir_common.db import is_postgres, utcnow
from comptoir_common.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from comptoir_common.events import Event, system_actor, user_actor
from comptoir_common.outbox import add_event
from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from comptoir_tickets import configuration, policy, sla
from comptoir_tickets.models import (
    Attachment,
    Counter,
    CreationKey,
    Customer,
    HistoryEntry,
    Message,
    OutboxMessage,
    Priority,
    Status,
    Ticket,
    TicketAssignee,
    TicketCount,
    TicketType,
    User,
    new_id,
)

TICKET_NUMBER_COUNTER = "ticket_number"
MAX_TITLE_LENGTH = 300
MAX_MESSAGE_LENGTH = 100_000
SOURCES = ("web", "api", "email", "import")
# How long an idempotency key of a ticket creation is remembered.
CREATION_KEY_RETENTION = timedelta(days=1)


# --- small helpers -------------------------------------------------------------------------------------------


def next_ticket_number(session: Session) -> int:
    """The next ticket number; the counter row stays locked until the transaction ends, so numbers never repeat."""
    return next_ticket_numbers(session, 1)[0]


def next_ticket_numbers(session: Session, count: int) -> list[int]:
    """``count`` consecutive ticket numbers in one statement (a batch of mails opening tickets)."""
    last = session.execute(
        update(Counter)
        .where(Counter.name == TICKET_NUMBER_COUNTER)
        .values(value=Counter.value + count)
        .returning(Counter.value)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if last is None:
        raise RuntimeError("ticket number counter missing: run the tickets migrations")
    return list(range(last - count + 1, last + 1))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _actor_name(actor: dict[str, Any]) -> str:
    return actor.get("name") or actor.get("email") or ""


class Labels:
    """French labels of statuses, types and priorities (from the cached configuration)."""

    def __init__(self, session: Session):
        config = configuration.cached(session)
        self.statuses = config.statuses
        self.types = config.types
        self.priorities = config.priorities

    def status(self, key: str) -> str:
        status = self.statuses.get(key)
        return status.label if status else key

    def priority(self, key: str) -> str:
        priority = self.priorities.get(key)
        return priority.label if priority else key


def snapshot(ticket: Ticket, labels: Labels | None = None) -> dict[str, Any]:
    """The ticket as events and API answers carry it (no messages)."""
    data: dict[str, Any] = {
        "id": ticket.id,
        "number": ticket.number,
        "title": ticket.title,
        "status": ticket.status,
        "status_category": ticket.status_category,
        "customer_id": ticket.customer_id,
        "customer_name": ticket.customer_name or None,
        "requester": {
            "id": ticket.requester_id,
            "email": ticket.requester_email,
            "name": ticket.requester_name,
        },
        "type": ticket.type,
        "priority": ticket.priority,
        "assignees": list(ticket.assignees or []),
        "followers": list(ticket.followers or []),
        "source": ticket.source,
        "created_at": _iso(ticket.created_at),
        "created_by": {"id": ticket.created_by_id, "name": ticket.created_by_name},
        "updated_at": _iso(ticket.updated_at),
        "updated_by": {"id": ticket.updated_by_id, "name": ticket.updated_by_name},
        "first_response_at": _iso(ticket.first_response_at),
        "resolution_due_at": _iso(ticket.resolution_due_at),
        "sla_paused": ticket.sla_running_since is None and ticket.status_category != "closed",
        "sla_breached": ticket.sla_breached,
        "closed_at": _iso(ticket.closed_at),
        "reopened_count": ticket.reopened_count,
        "version": ticket.version,
    }
    if labels is not None:
        data["status_label"] = labels.status(ticket.status)
        data["priority_label"] = labels.priority(ticket.priority)
        data["type_label"] = labels.types.get(ticket.type) if ticket.type else None
    return data


def attachment_to_dict(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "is_image": attachment.content_type.startswith("image/"),
        "has_preview": attachment.thumbnail_key is not None,
    }


def message_to_dict(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "author": {
            "id": message.author_id,
            "name": message.author_name,
            "role": message.author_role,
            "email": message.author_email,
        },
        "body": message.body,
        "internal": message.internal,
        "source": message.source,
        "created_at": _iso(message.created_at),
        "attachments": [attachment_to_dict(a) for a in message.attachments],
    }


def ticket_to_dict(
    session: Session,
    ticket: Ticket,
    *,
    actor: dict[str, Any],
    with_messages: bool = False,
    labels: Labels | None = None,
) -> dict[str, Any]:
    """The ticket for ``actor``: internal notes only for staff; what the actor may do with it."""
    data = snapshot(ticket, labels or Labels(session))
    data["permissions"] = {
        "edit_fields": sorted(policy.editable_fields(actor)),
        "take": policy.can_take(actor) and actor["id"] not in {a["id"] for a in ticket.assignees or []},
        "internal_note": policy.can_add_internal_note(actor),
        "reply": policy.can_reply(actor),
    }
    if with_messages:
        show_internal = policy.can_see_internal_notes(actor)
        data["messages"] = [
            message_to_dict(message) for message in ticket.messages if show_internal or not message.internal
        ]
    return data


def _event(
    session: Session, event_type: str, actor: dict[str, Any] | None, ticket: Ticket, **extra: Any
) -> None:
    data = {"ticket": snapshot(ticket, Labels(session))} | extra
    add_event(
        session,
        OutboxMessage,
        Event(type=event_type, actor=user_actor(actor) if actor else system_actor("tickets"), data=data),
    )


def _history(
    session: Session,
    ticket: Ticket,
    actor: dict[str, Any] | None,
    action: str,
    *,
    field: str | None = None,
    old: Any = None,
    new: Any = None,
    internal: bool = False,
    at: datetime | None = None,
) -> None:
    session.add(
        HistoryEntry(
            ticket_id=ticket.id,
            action=action,
            field=field,
            old_value=None if old is None else str(old),
            new_value=None if new is None else str(new),
            internal=internal,
            actor_id=(actor or {}).get("id"),
            actor_name=_actor_name(actor) if actor else "Système",
            created_at=at or utcnow(),
        )
    )


def _adjust_count(session: Session, customer_id: str | None, category: str, delta: int) -> None:
    """Keep the dashboard's per-customer counters in step with a ticket entering or leaving a category."""
    values = {"customer_id": customer_id or "", "category": category, "count": delta}
    insert = pg_insert if is_postgres(session) else sqlite_insert
    statement = insert(TicketCount).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["customer_id", "category"], set_={"count": TicketCount.count + delta}
    )
    session.execute(statement)


def _touch(ticket: Ticket, actor: dict[str, Any] | None, now: datetime) -> None:
    ticket.updated_at = now
    ticket.updated_by_id = (actor or {}).get("id")
    ticket.updated_by_name = _actor_name(actor) if actor else "Système"


# --- SLA -----------------------------------------------------------------------------------------------------


def _start_clock(ticket: Ticket, calendar: sla.BusinessCalendar, now: datetime) -> None:
    ticket.sla_running_since = now
    remaining = ticket.sla_target_minutes - ticket.sla_elapsed_minutes
    ticket.resolution_due_at = sla.add_business_minutes(calendar, now, max(0, remaining))
    _refresh_breach(ticket, now)


def _stop_clock(ticket: Ticket, calendar: sla.BusinessCalendar, now: datetime) -> None:
    if ticket.sla_running_since is not None:
        ticket.sla_elapsed_minutes += sla.business_minutes_between(calendar, ticket.sla_running_since, now)
    ticket.sla_running_since = None
    ticket.resolution_due_at = None


def _refresh_breach(ticket: Ticket, now: datetime) -> None:
    breached = ticket.resolution_due_at is not None and ticket.resolution_due_at <= now
    if not breached and ticket.sla_breached:
        # A later deadline (priority lowered, calendar changed) lifts the flag; a new breach is published again.
        ticket.sla_breached = False
        ticket.sla_breach_published = False


def _status_event_data(data: dict[str, Any]) -> dict[str, Any]:
    """``old``/``new`` objects plus the flat fields of the event catalogue."""
    return data | {
        "old_status": data["old"]["status"],
        "new_status": data["new"]["status"],
        "old_category": data["old"]["category"],
        "new_category": data["new"]["category"],
    }


def apply_category_change(session: Session, ticket: Ticket, old: str, new: str, now: datetime) -> None:
    """What moving between status categories means: SLA paused/resumed, closing and reopening, counters."""
    ticket.status_category = new
    if old == new:
        return
    _adjust_count(session, ticket.customer_id, old, -1)
    _adjust_count(session, ticket.customer_id, new, +1)
    calendar = configuration.calendar(session)
    if new in ("pending", "closed"):
        _stop_clock(ticket, calendar, now)
    elif old in ("pending", "closed") and ticket.sla_running_since is None:
        _start_clock(ticket, calendar, now)
    if new == "closed":
        ticket.closed_at = now
    elif old == "closed":
        ticket.closed_at = None
        ticket.reopened_count += 1


def recompute_deadlines(
    session: Session, where: ColumnElement[bool] | None, *, target_minutes: int | None = None
) -> int:
    """Recompute the deadline of open tickets (after a priority target or calendar change)."""
    calendar = configuration.calendar(session)
    now = utcnow()
    query = select(Ticket).where(Ticket.status_category != "closed")
    if where is not None:
        query = query.where(where)
    count = 0
    for ticket in session.scalars(query.with_for_update()):
        if target_minutes is not None:
            ticket.sla_target_minutes = target_minutes
        if ticket.sla_running_since is not None:
            # Bank what has run so far under the old rules, then restart from now.
            _stop_clock(ticket, calendar, now)
            _start_clock(ticket, calendar, now)
        count += 1
    return count


def scan_sla_breaches(session: Session, *, now: datetime | None = None, limit: int = 200) -> int:
    """Flag tickets past their deadline and publish ``ticket.sla_breached`` once each.

    Rows are claimed with ``FOR UPDATE SKIP LOCKED``: two instances running the scan never flag the same ticket
    twice, and the flag is committed with the event.
    """
    now = now or utcnow()
    tickets = session.scalars(
        select(Ticket)
        .where(
            Ticket.sla_breach_published.is_(False),
            Ticket.resolution_due_at.is_not(None),
            Ticket.resolution_due_at <= now,
            Ticket.status_category.in_(("new", "open")),
        )
        .order_by(Ticket.resolution_due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for ticket in tickets:
        ticket.sla_breached = True
        ticket.sla_breach_published = True
        _history(session, ticket, None, "sla_breached", new=_iso(ticket.resolution_due_at), at=now)
        _event(
            session,
            "ticket.sla_breached",
            None,
            ticket,
            due_at=_iso(ticket.resolution_due_at),
            resolution_due_at=_iso(ticket.resolution_due_at),
        )
    return len(tickets)


# --- create --------------------------------------------------------------------------------------------------


def _clean_title(title: Any) -> str:
    title = (title or "").strip() if isinstance(title, str) else ""
    if not title:
        raise InvalidInput("Le titre est obligatoire.")
    if len(title) > MAX_TITLE_LENGTH:
        raise InvalidInput(f"Le titre ne doit pas dépasser {MAX_TITLE_LENGTH} caractères.")
    return title


def _clean_body(body: Any, what: str = "Le message") -> str:
    body = (body or "").strip() if isinstance(body, str) else ""
    if not body:
        raise InvalidInput(f"{what} est obligatoire.")
    if len(body) > MAX_MESSAGE_LENGTH:
        raise InvalidInput(f"{what} ne doit pas dépasser {MAX_MESSAGE_LENGTH} caractères.")
    return body


def _check_type(session: Session, type_key: str | None) -> str | None:
    if type_key in (None, ""):
        return None
    if session.get(TicketType, type_key) is None:
        raise InvalidInput("Type de ticket inconnu.")
    return type_key


def _check_priority(session: Session, priority_key: str | None) -> Priority:
    if priority_key in (None, ""):
        return configuration.cached(session).default_priority
    priority = session.get(Priority, priority_key)
    if priority is None:
        raise InvalidInput("Priorité inconnue.")
    return priority


def _people(session: Session, user_ids: list[str], *, staff_only: bool = True) -> list[dict[str, str]]:
    if not isinstance(user_ids, list) or not all(isinstance(u, str) for u in user_ids):
        raise InvalidInput("La liste des personnes est invalide.")
    unique = list(dict.fromkeys(user_ids))
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(unique)))} if unique else {}
    people = []
    for user_id in unique:
        user = users.get(user_id)
        if user is None or not user.active or (staff_only and user.role not in ("admin", "agent")):
            raise InvalidInput("Seuls des techniciens ou superviseurs actifs peuvent être assignés.")
        people.append({"id": user.id, "name": user.name})
    return people


def _set_assignees(
    session: Session, ticket: Ticket, people: list[dict[str, str]], *, new: bool = False
) -> None:
    if not new:
        session.execute(delete(TicketAssignee).where(TicketAssignee.ticket_id == ticket.id))
    for person in people:
        session.add(TicketAssignee(ticket_id=ticket.id, user_id=person["id"]))
    ticket.assignees = people
    ticket.assignee_names = ", ".join(p["name"] for p in people)[:500]


def create_ticket(
    session: Session,
    *,
    actor: dict[str, Any],
    title: str,
    message: str,
    source: str = "web",
    type: str | None = None,
    priority: str | None = None,
    customer_id: str | None = None,
    internal_note: str | None = None,
    assignees: list[str] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    blobs: Any = None,
    idempotency_key: str | None = None,
) -> Ticket:
    """Open a ticket with its first message; history and ``ticket.created`` are committed with it.

    With an ``idempotency_key``, a second call by the same person with the same key (a retried request, a
    redelivered RPC after a crash between commit and reply) returns the ticket of the first call and creates
    nothing; the same key with a different request is a Conflict. Keys are per creator: another person's key
    never reaches someone else's ticket. The returned ticket's ``just_created`` attribute says which case it was.
    """
    if not policy.can_create_ticket(actor):
        raise PermissionDenied("Vous ne pouvez pas créer de ticket.")
    ticket_id = new_id()
    if idempotency_key is not None:
        fingerprint = _creation_fingerprint(
            title, message, source, type, priority, customer_id, internal_note, assignees, attachments
        )
        existing = _claim_creation_key(session, actor, idempotency_key, fingerprint, ticket_id)
        if existing is not None:
            ticket = get_ticket(session, actor=actor, ticket_id=existing)
            ticket.just_created = False
            return ticket
    if source not in SOURCES:
        raise InvalidInput("Source inconnue.")
    role = actor["role"]
    allowed = policy.CREATE_FIELDS[role]
    title = _clean_title(title)
    body = _clean_body(message)
    # Fields a role may not set are refused rather than ignored: an API client learns at once.
    for name, value in (
        ("priority", priority),
        ("internal_note", internal_note),
        ("assignees", assignees),
        ("customer_id", customer_id if role not in ("client",) else None),
    ):
        if value not in (None, "", []) and name not in allowed:
            raise PermissionDenied("Vous ne pouvez pas renseigner ce champ.")
    if role in policy.CUSTOMER_ROLES:
        customer_id = customer_id or actor.get("customer_id")
        if customer_id and not policy.sees_customer(session, actor, customer_id):
            raise PermissionDenied("Vous ne pouvez pas créer de ticket pour ce client.")
    elif not policy.can_create_for_customer(session, actor, customer_id or None):
        raise PermissionDenied(
            "Vous ne pouvez créer un ticket que pour un de vos clients."
            if role == "sales"
            else "Client inconnu."
        )
    customer_id = customer_id or None
    customer = session.get(Customer, customer_id) if customer_id else None
    ticket_type = _check_type(session, type)
    priority_row = _check_priority(session, priority)
    people = _people(session, assignees or [])
    status = configuration.cached(session).default_status
    now = utcnow()
    ticket = Ticket(
        id=ticket_id,
        title=title,
        status=status.key,
        status_category=status.category,
        type=ticket_type,
        priority=priority_row.key,
        customer_id=customer_id,
        customer_name=customer.name if customer else "",
        requester_id=actor["id"],
        requester_email=actor.get("email"),
        requester_name=actor.get("name"),
        assignees=[],
        assignee_names="",
        followers=[],
        source=source,
        created_at=now,
        created_by_id=actor["id"],
        created_by_name=_actor_name(actor),
        updated_at=now,
        updated_by_id=actor["id"],
        updated_by_name=_actor_name(actor),
        sla_target_minutes=priority_row.target_minutes,
        sla_elapsed_minutes=0,
        reopened_count=0,
        sla_breached=False,
        sla_breach_published=False,
        version=1,
    )
    _start_clock(ticket, configuration.calendar(session), now)
    # The ticket-number counter row stays locked until the commit: taken as late as possible, so that concurrent
    # creations overlap in everything before. The ticket is written first (its rows below reference it).
    ticket.number = next_ticket_number(session)
    session.add(ticket)
    session.flush()
    if people:
        _set_assignees(session, ticket, people, new=True)
    first = _new_message(session, ticket, actor, body, internal=False, source=source, now=now, flush=False)
    messages = [first]
    _history(session, ticket, actor, "created", new=title, at=now)
    note = None
    if internal_note and internal_note.strip():
        note = _new_message(
            session,
            ticket,
            actor,
            _clean_body(internal_note, "La note"),
            internal=True,
            source=source,
            now=now,
            flush=False,
        )
        messages.append(note)
        _history(session, ticket, actor, "note_added", internal=True, at=now)
    # The ticket's messages are the ones just made: no query to load them for the reply or the events.
    set_committed_value(ticket, "messages", messages)
    _attach_files(session, ticket, first, attachments or [], blobs, flush=False)
    session.flush()
    _adjust_count(session, ticket.customer_id, ticket.status_category, +1)
    # v1 kept its fields at the top level of ``data``; they stay there besides the ``ticket`` snapshot.
    labels = Labels(session)
    ticket_data = snapshot(ticket, labels)
    data = ticket_data | {"ticket": ticket_data, "message": message_to_dict(first)}
    add_event(session, OutboxMessage, Event(type="ticket.created", actor=user_actor(actor), data=data))
    if note is not None:
        _event(session, "ticket.message_added", actor, ticket, message=message_to_dict(note))
    if people:
        _event(session, "ticket.assigned", actor, ticket, assignees=people, added=people, removed=[])
    ticket.just_created = True
    return ticket


def _creation_fingerprint(*fields: Any) -> str:
    """A digest of a creation request, to tell a retry (same request) from a reused key (another one)."""
    encoded = json.dumps(fields, sort_keys=True, default=str, ensure_ascii=False).encode()
    return hashlib.sha256(encoded).hexdigest()


def _claim_creation_key(
    session: Session, actor: dict[str, Any], key: Any, fingerprint: str, ticket_id: str
) -> str | None:
    """Record ``key`` for ``ticket_id`` (None: go on and create it) or return the ticket it already made.

    One ``INSERT … ON CONFLICT DO NOTHING``: a concurrent call with the same key waits for the first transaction
    and then finds its row (or, if the first rolled back, claims the key itself).
    """
    if not isinstance(key, str) or not key.strip() or len(key) > 200:
        raise InvalidInput("La clé d'idempotence doit faire de 1 à 200 caractères.")
    insert = pg_insert if is_postgres(session) else sqlite_insert
    claimed = session.execute(
        insert(CreationKey)
        .values(
            actor_id=actor["id"], key=key, ticket_id=ticket_id, fingerprint=fingerprint, created_at=utcnow()
        )
        .on_conflict_do_nothing(index_elements=["actor_id", "key"])
    ).rowcount
    if claimed == 1:
        return None
    row = session.get(CreationKey, (actor["id"], key))
    if row.fingerprint != fingerprint:
        raise Conflict("Cette clé d'idempotence a déjà servi pour une autre demande de création de ticket.")
    return row.ticket_id


def purge_creation_keys(session: Session, *, older_than: timedelta = CREATION_KEY_RETENTION) -> int:
    """Forget idempotency keys past their retention (a retry comes within minutes, not days)."""
    return session.execute(delete(CreationKey).where(CreationKey.created_at < utcnow() - older_than)).rowcount


def _new_message(
    session: Session,
    ticket: Ticket,
    actor: dict[str, Any],
    body: str,
    *,
    internal: bool,
    source: str,
    now: datetime,
    flush: bool = True,
) -> Message:
    message = Message(
        id=new_id(),
        ticket_id=ticket.id,
        author_id=actor.get("id"),
        author_name=actor.get("name"),
        author_role=actor.get("role"),
        author_email=actor.get("email"),
        body=body,
        internal=internal,
        source=source,
        created_at=now,
        attachments=[],
    )
    session.add(message)
    if flush:
        session.flush()
    return message


def _attach_files(
    session: Session,
    ticket: Ticket,
    message: Message,
    files: list[dict[str, Any]],
    blobs: Any,
    *,
    flush: bool = True,
) -> None:
    if not files:
        return
    if blobs is None:
        raise RuntimeError("attachments given without a blob store")
    from comptoir_tickets import attachments

    limit = configuration.cached(session).attachment_limit
    for item in files:
        attachment = attachments.make_attachment(blobs, item, limit)
        attachment.ticket_id = ticket.id
        attachment.message_id = message.id
        message.attachments.append(attachment)
        session.add(attachment)
    if flush:
        session.flush()


# --- read ----------------------------------------------------------------------------------------------------


def get_ticket(
    session: Session,
    *,
    actor: dict[str, Any],
    ticket_id: str,
    for_update: bool = False,
    with_messages: bool = True,
) -> Ticket:
    """The ticket if ``actor`` may see it; otherwise NotFound, the same answer as for a ticket that does not exist.

    Read (not ``for_update``) with its messages and their attachments in two more queries, unless
    ``with_messages`` is False (callers that only need the ticket's visibility)."""
    query = select(Ticket).where(Ticket.id == ticket_id)
    if for_update:
        query = query.with_for_update()
    elif with_messages:
        query = query.options(selectinload(Ticket.messages).selectinload(Message.attachments))
    ticket = session.scalar(query) if isinstance(ticket_id, str) and len(ticket_id) <= 36 else None
    if ticket is None or not policy.can_see(session, actor, ticket):
        raise NotFound("Ticket introuvable.")
    return ticket


def history(session: Session, *, actor: dict[str, Any], ticket_id: str) -> list[dict[str, Any]]:
    """Every action on the ticket, oldest first; entries about internal notes only for staff."""
    ticket = get_ticket(session, actor=actor, ticket_id=ticket_id, with_messages=False)
    query = select(HistoryEntry).where(HistoryEntry.ticket_id == ticket.id).order_by(HistoryEntry.id)
    if not policy.can_see_internal_notes(actor):
        query = query.where(HistoryEntry.internal.is_(False))
    return [
        {
            "action": entry.action,
            "field": entry.field,
            "old": entry.old_value,
            "new": entry.new_value,
            "internal": entry.internal,
            "actor": {"id": entry.actor_id, "name": entry.actor_name},
            "at": _iso(entry.created_at),
        }
        for entry in session.scalars(query)
    ]


def get_attachment(
    session: Session, *, actor: dict[str, Any], ticket_id: str, attachment_id: str
) -> dict[str, Any]:
    """An attachment's blob reference, after the same checks as its ticket and message."""
    ticket = get_ticket(session, actor=actor, ticket_id=ticket_id, with_messages=False)
    attachment = session.get(Attachment, attachment_id) if isinstance(attachment_id, str) else None
    if (
        attachment is None
        or attachment.ticket_id != ticket.id
        or (attachment.message.internal and not policy.can_see_internal_notes(actor))
    ):
        raise NotFound("Pièce jointe introuvable.")
    return attachment_to_dict(attachment) | {
        "blob_key": attachment.blob_key,
        "thumbnail_key": attachment.thumbnail_key,
    }


# --- change --------------------------------------------------------------------------------------------------


def _conflict(session: Session, ticket: Ticket, actor: dict[str, Any]) -> Conflict:
    session.refresh(ticket)
    fresh = ticket_to_dict(session, ticket, actor=actor, with_messages=True)
    return Conflict(
        "Ce ticket vient d'être modifié par quelqu'un d'autre. Vérifiez son nouvel état avant de refaire votre "
        "modification.",
        {"ticket": fresh},
    )


def update_ticket(
    session: Session, *, actor: dict[str, Any], ticket_id: str, version: int, changes: dict[str, Any]
) -> Ticket:
    """Change fields of a ticket edited from ``version``; a stale version is a Conflict carrying the fresh state."""
    ticket = get_ticket(session, actor=actor, ticket_id=ticket_id, for_update=True)
    if not isinstance(changes, dict) or not changes:
        raise InvalidInput("Aucune modification demandée.")
    allowed = policy.editable_fields(actor)
    unknown = set(changes) - set(policy.EDIT_FIELDS["admin"])
    if unknown:
        raise InvalidInput(f"Champ non modifiable : {', '.join(sorted(unknown))}.")
    if set(changes) - allowed:
        raise PermissionDenied("Vous ne pouvez pas modifier ce champ.")
    if not isinstance(version, int) or version != ticket.version:
        raise _conflict(session, ticket, actor)
    now = utcnow()
    labels = Labels(session)
    changed: dict[str, dict[str, Any]] = {}
    pending_events: list[tuple[str, dict[str, Any]]] = []

    if "title" in changes:
        title = _clean_title(changes["title"])
        if title != ticket.title:
            changed["title"] = {"old": ticket.title, "new": title}
            ticket.title = title
    if "type" in changes:
        new_type = _check_type(session, changes["type"])
        if new_type != ticket.type:
            changed["type"] = {"old": ticket.type, "new": new_type}
            ticket.type = new_type
    if "priority" in changes:
        priority = _check_priority(session, changes["priority"] or None)
        if priority.key != ticket.priority:
            changed["priority"] = {"old": ticket.priority, "new": priority.key}
            ticket.priority = priority.key
            ticket.sla_target_minutes = priority.target_minutes
            if ticket.sla_running_since is not None:
                calendar = configuration.calendar(session)
                _stop_clock(ticket, calendar, now)
                _start_clock(ticket, calendar, now)
    if "followers" in changes:
        followers = _people(session, changes["followers"] or [], staff_only=False)
        if followers != list(ticket.followers or []):
            changed["followers"] = {"old": ticket.followers, "new": followers}
            ticket.followers = followers
    if "assignees" in changes:
        people = _people(session, changes["assignees"] or [])
        old_people = list(ticket.assignees or [])
        if [p["id"] for p in people] != [p["id"] for p in old_people]:
            _set_assignees(session, ticket, people)
            changed["assignees"] = {"old": old_people, "new": people}
            old_ids, new_ids = {p["id"] for p in old_people}, {p["id"] for p in people}
            pending_events.append(
                (
                    "ticket.assigned",
                    {
                        "assignees": people,
                        "added": [p for p in people if p["id"] not in old_ids],
                        "removed": [p for p in old_people if p["id"] not in new_ids],
                    },
                )
            )
    if "customer_id" in changes:
        customer_id = changes["customer_id"] or None
        if customer_id != ticket.customer_id:
            if customer_id is None or not policy.can_attach_customer(session, actor, customer_id):
                raise PermissionDenied(
                    "Vous ne pouvez rattacher ce ticket qu'à un de vos clients."
                    if actor["role"] == "sales"
                    else "Client inconnu."
                )
            customer = session.get(Customer, customer_id)
            old_customer = ticket.customer_id
            _adjust_count(session, old_customer, ticket.status_category, -1)
            _adjust_count(session, customer_id, ticket.status_category, +1)
            changed["customer_id"] = {"old": old_customer, "new": customer_id}
            ticket.customer_id = customer_id
            ticket.customer_name = customer.name
            pending_events.append(
                (
                    "ticket.customer_attached",
                    {
                        "customer": {"id": customer.id, "name": customer.name},
                        "previous_customer_id": old_customer,
                    },
                )
            )
    if "status" in changes:
        status = session.get(Status, changes["status"]) if isinstance(changes["status"], str) else None
        if status is None:
            raise InvalidInput("Statut inconnu.")
        if status.key != ticket.status:
            old_key, old_category = ticket.status, ticket.status_category
            if actor["role"] in policy.CUSTOMER_ROLES and not policy.client_status_allowed(
                old_category, status.category
            ):
                raise PermissionDenied("Vous pouvez seulement clôturer ou rouvrir une demande.")
            ticket.status = status.key
            apply_category_change(session, ticket, old_category, status.category, now)
            changed["status"] = {"old": old_key, "new": status.key}
            status_data = {
                "old": {"status": old_key, "label": labels.status(old_key), "category": old_category},
                "new": {"status": status.key, "label": status.label, "category": status.category},
            }
            pending_events.append(("ticket.status_changed", _status_event_data(status_data)))
            if status.category == "closed" and old_category != "closed":
                pending_events.append(("ticket.closed", {}))
            elif old_category == "closed" and status.category != "closed":
                pending_events.append(("ticket.reopened", {"reopened_count": ticket.reopened_count}))

    if not changed:
        return ticket
    ticket.version += 1
    _touch(ticket, actor, now)
    for name, change in changed.items():
        old, new = change["old"], change["new"]
        if name in ("assignees", "followers"):
            old = ", ".join(p["name"] for p in old or [])
            new = ", ".join(p["name"] for p in new or [])
        action = {
            "status": "status_changed",
            "assignees": "assigned",
            "customer_id": "customer_attached",
        }.get(name, "field_changed")
        if name == "status":
            old, new = labels.status(old), labels.status(new)
            if ticket.status_category == "closed":
                action = "closed"
            elif any(e[0] == "ticket.reopened" for e in pending_events):
                action = "reopened"
        _history(session, ticket, actor, action, field=name, old=old, new=new, at=now)
    session.flush()
    _event(session, "ticket.updated", actor, ticket, changes=changed)
    for event_type, extra in pending_events:
        _event(session, event_type, actor, ticket, **extra)
    return ticket


def take_ticket(session: Session, *, actor: dict[str, Any], ticket_id: str) -> Ticket:
    """An agent assigns themselves (kept with the other assignees)."""
    ticket = get_ticket(session, actor=actor, ticket_id=ticket_id, for_update=True)
    if not policy.can_take(actor):
        raise PermissionDenied("Seuls les techniciens peuvent prendre un ticket.")
    if any(p["id"] == actor["id"] for p in ticket.assignees or []):
        return ticket
    old_people = list(ticket.assignees or [])
    me = {"id": actor["id"], "name": _actor_name(actor)}
    people = old_people + [me]
    _set_assignees(session, ticket, people)
    now = utcnow()
    ticket.version += 1
    _touch(ticket, actor, now)
    _history(
        session,
        ticket,
        actor,
        "assigned",
        field="assignees",
        old=", ".join(p["name"] for p in old_people),
        new=ticket.assignee_names,
        at=now,
    )
    if ticket.status_category == "new":
        # Taking a new ticket starts the work on it.
        open_status = session.scalar(
            select(Status).where(Status.category == "open").order_by(Status.position).limit(1)
        )
        if open_status is not None:
            old_key = ticket.status
            ticket.status = open_status.key
            apply_category_change(session, ticket, "new", "open", now)
            labels = Labels(session)
            _history(
                session,
                ticket,
                actor,
                "status_changed",
                field="status",
                old=labels.status(old_key),
                new=open_status.label,
                at=now,
            )
            _event(
                session,
                "ticket.status_changed",
                actor,
                ticket,
                **_status_event_data(
                    {
                        "old": {"status": old_key, "label": labels.status(old_key), "category": "new"},
                        "new": {"status": open_status.key, "label": open_status.label, "category": "open"},
                    }
                ),
            )
    session.flush()
    _event(session, "ticket.assigned", actor, ticket, assignees=people, added=[me], removed=[])
    return ticket


def add_message(
    session: Session,
    *,
    actor: dict[str, Any],
    ticket_id: str,
    body: str,
    internal: bool = False,
    attachments: list[dict[str, Any]] | None = None,
    source: str = "web",
    blobs: Any = None,
) -> Message:
    """A public reply or an internal note (staff only), with its attachments."""
    ticket = get_ticket(session, actor=actor, ticket_id=ticket_id, for_update=True)
    internal = bool(internal)
    if internal and not policy.can_add_internal_note(actor):
        raise PermissionDenied("Vous ne pouvez pas ajouter de note interne.")
    if not policy.can_reply(actor):
        raise PermissionDenied("Vous ne pouvez pas répondre à ce ticket.")
    if source not in SOURCES:
        raise InvalidInput("Source inconnue.")
    text = (body or "").strip() if isinstance(body, str) else ""
    if not text and attachments:
        text = "(pièce jointe)"
    text = _clean_body(text, "La note" if internal else "Le message")
    now = utcnow()
    message = _new_message(session, ticket, actor, text, internal=internal, source=source, now=now)
    _attach_files(session, ticket, message, attachments or [], blobs)
    _touch(ticket, actor, now)
    if (
        not internal
        and ticket.first_response_at is None
        and actor.get("role") in policy.STAFF_ROLES
        and actor.get("id") != ticket.requester_id
    ):
        ticket.first_response_at = now
    _history(
        session,
        ticket,
        actor,
        "note_added" if internal else "message_added",
        new=", ".join(a.filename for a in message.attachments) or None,
        internal=internal,
        at=now,
    )
    session.flush()
    _event(session, "ticket.message_added", actor, ticket, message=message_to_dict(message))
    return message
