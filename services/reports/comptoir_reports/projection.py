"""The projection: ticket events in, one row of figures per ticket out.

Each ticket event is stored (reduced to what the figures need) in ``ticket_events``, keyed by event id, and the
ticket's row of ``ticket_facts`` is recomputed by folding *all* its stored events in ``(occurred_at, event_id)``
order. So the result does not depend on the order or the number of times events arrive, and a rebuild from a replay
of the tickets' history gives exactly the figures the live path gave.

The fold reads the ticket snapshot every event carries (``data.ticket``; the first ``ticket.created`` events carried
the ticket at the top of ``data``) and ignores fields it does not know, so the tickets service may add fields freely.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from comptoir_common.business_hours import DEFAULT_CALENDAR, BusinessCalendar
from comptoir_common.db import dialect_insert, is_postgres
from comptoir_common.events import Event
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from comptoir_reports import rollups
from comptoir_reports.models import DimensionValue, TicketAssignee, TicketEvent, TicketFact

PARIS = ZoneInfo("Europe/Paris")
STAFF_ROLES = frozenset({"admin", "agent", "sales"})
# Status keys of the four default statuses, for snapshots that do not say their category.
DEFAULT_CATEGORIES = {"new": "new", "open": "open", "pending": "pending", "closed": "closed"}
# French labels of the default configuration (tickets' configuration.py), used when events carry only keys.
DEFAULT_LABELS = {
    "status": {"new": "Non traité", "open": "En cours", "pending": "En attente client", "closed": "Clôturé"},
    "type": {
        "incident": "Incident",
        "information": "Demande d'information",
        "change": "Demande de modification",
        "termination": "Demande de résiliation",
        "billing": "Facturation",
    },
    "priority": {"urgent": "Urgente", "high": "Haute", "normal": "Normale", "low": "Basse"},
}
SNAPSHOT_FIELDS = (
    "id",
    "number",
    "title",
    "status",
    "status_label",
    "status_category",
    "customer_id",
    "requester",
    "type",
    "priority",
    "assignees",
    "source",
    "created_at",
    "closed_at",
    "first_response_at",
    "resolution_due_at",
    "type_label",
    "priority_label",
)


def local_day(moment: datetime) -> date:
    return moment.astimezone(PARIS).date()


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo("UTC"))


def ticket_snapshot(data: dict[str, Any]) -> dict[str, Any] | None:
    """The ticket snapshot of an event's data: ``data.ticket``, or the data itself for the first v1 shape."""
    snapshot = data.get("ticket")
    if isinstance(snapshot, dict) and snapshot.get("id"):
        return snapshot
    if data.get("id") and "number" in data:
        return data
    return None


def ticket_id_of(data: dict[str, Any]) -> str | None:
    snapshot = ticket_snapshot(data)
    if snapshot is not None:
        return str(snapshot["id"])
    return data.get("ticket_id")


def _reduce(event: Event) -> dict[str, Any]:
    """The part of an event's data the fold reads (no message bodies, no attachments)."""
    data = event.data
    reduced: dict[str, Any] = {}
    snapshot = ticket_snapshot(data)
    if snapshot is not None:
        reduced["ticket"] = {key: snapshot[key] for key in SNAPSHOT_FIELDS if key in snapshot}
    message = data.get("message")
    if isinstance(message, dict):
        author = message.get("author") if isinstance(message.get("author"), dict) else {}
        reduced["message"] = {
            "id": message.get("id"),
            "internal": bool(message.get("internal", False)),
            "created_at": message.get("created_at"),
            "author": {key: author.get(key) for key in ("id", "name", "role")},
        }
    for key in ("old_status", "new_status", "old_category", "new_category", "old", "new", "category"):
        if key in data and not isinstance(data[key], (list,)):
            reduced[key] = data[key]
    return reduced


def _lock_ticket(session: Session, ticket_id: str) -> None:
    """Serialise the events of one ticket: two workers folding the same ticket at once would each miss the other's
    event. SQLite serialises writers by itself."""
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": "reports:" + ticket_id})


def record_event(session: Session, event: Event) -> str | None:
    """Store a ticket event (once per id); return its ticket id, or None for an event about no ticket."""
    ticket_id = ticket_id_of(event.data)
    if ticket_id is None:
        return None
    _lock_ticket(session, ticket_id)
    session.flush()
    session.execute(
        _insert_ignoring_duplicates(session, TicketEvent),
        {
            "event_id": event.id,
            "ticket_id": ticket_id,
            "event_type": event.type,
            "occurred_at": event.occurred_at,
            "actor": event.actor or {},
            "data": _reduce(event),
        },
    )
    return ticket_id


def _insert_ignoring_duplicates(session: Session, model: type):
    """INSERT … ON CONFLICT DO NOTHING: one statement instead of a look-up and an insert, and no error when a
    concurrent worker inserted the same row first."""
    # On the table, not the mapped class: an ORM-enabled INSERT goes through the ORM's bulk path, several times
    # slower for one row (measured).
    return dialect_insert(session)(model.__table__).on_conflict_do_nothing()


BATCH_IMPORTED = "ticket.batch_imported"


def split_batch(event: Event) -> list[Event]:
    """A ``ticket.batch_imported`` event as one ``ticket.imported`` event per ticket (what the fold reads), each with
    an id derived from the batch event's and the ticket's (the same on a redelivery or a replay); other events as
    they are."""
    if event.type != BATCH_IMPORTED:
        return [event]
    events = []
    for entry in event.data.get("tickets") or []:
        ticket_id = ticket_id_of(entry) if isinstance(entry, dict) else None
        if ticket_id is None:
            continue
        events.append(
            Event(
                id=str(uuid.uuid5(uuid.UUID(event.id), ticket_id)),
                type="ticket.imported",
                version=event.version,
                occurred_at=event.occurred_at,
                actor=event.actor,
                data=entry,
            )
        )
    return events


def apply_event(session: Session, event: Event, calendar: BusinessCalendar = DEFAULT_CALENDAR) -> None:
    """Take one ticket event into the projection (idempotent)."""
    if event.type == BATCH_IMPORTED:
        apply_events(session, [event], calendar)
        return
    ticket_id = record_event(session, event)
    if ticket_id is not None:
        recompute(session, [ticket_id], calendar)


def apply_events(
    session: Session, events: Iterable[Event], calendar: BusinessCalendar = DEFAULT_CALENDAR
) -> int:
    """Take a batch of events (a replay page, an import batch), recomputing each touched ticket once; return how
    many were ticket events."""
    touched: list[str] = []
    seen: set[str] = set()
    for event in (single for batch in events for single in split_batch(batch)):
        ticket_id = record_event(session, event)
        if ticket_id is not None and ticket_id not in seen:
            seen.add(ticket_id)
            touched.append(ticket_id)
    recompute(session, touched, calendar)
    return len(touched)


def _value_and_label(value: Any, dimension: str, label: Any = None) -> tuple[str | None, str | None]:
    """A type or priority given as a key (with its label beside it, or a default one), or as ``{key, label}``."""
    if value is None or value == "":
        return None, None
    if isinstance(value, dict):
        key = value.get("key") or value.get("id") or value.get("name")
        label = value.get("label") or value.get("name") or label
        if key is None:
            return None, None
        value = key
    key = str(value)
    return key, str(label or DEFAULT_LABELS[dimension].get(key) or key)


def _assignees(value: Any) -> list[tuple[str, str | None]]:
    people = []
    for item in value or []:
        if isinstance(item, dict) and item.get("id"):
            people.append((str(item["id"]), item.get("name")))
        elif isinstance(item, str):
            people.append((item, None))
    return people


def _category_after(row: TicketEvent) -> str | None:
    data = row.data
    snapshot = data.get("ticket") or {}
    category = snapshot.get("status_category")
    if category:
        return str(category)
    for key in ("new_category", "category"):
        if data.get(key):
            return str(data[key])
    new = data.get("new")
    if isinstance(new, dict) and new.get("category"):
        return str(new["category"])
    if row.event_type == "ticket.closed":
        return "closed"
    if row.event_type == "ticket.reopened":
        return "open"
    status = snapshot.get("status")
    if status in DEFAULT_CATEGORIES:
        return DEFAULT_CATEGORIES[status]
    return None


def fold(rows: list[TicketEvent], calendar: BusinessCalendar = DEFAULT_CALENDAR) -> dict[str, Any] | None:
    """A ticket's figures from all its events (any order given; folded in occurrence order)."""
    rows = sorted(rows, key=lambda row: (row.occurred_at, row.event_id))
    if not rows:
        return None
    latest: dict[str, Any] = {}
    created_at: datetime | None = None
    created_message_ids: set[str] = set()
    category: str | None = None
    first_closed_at = closed_at = first_response_at = None
    reopen_count = 0
    breached = False
    status_labels: dict[str, str] = {}
    for row in rows:
        data = row.data
        snapshot = data.get("ticket")
        if snapshot:
            latest = {**latest, **snapshot}
            if created_at is None:
                created_at = parse_time(snapshot.get("created_at"))
        if row.event_type == "ticket.created":
            created_at = parse_time((snapshot or {}).get("created_at")) or row.occurred_at
            if (data.get("message") or {}).get("id"):
                created_message_ids.add(data["message"]["id"])
        if row.event_type == "ticket.imported":
            # An imported ticket carries its original dates; its messages were not live events.
            created_at = parse_time((snapshot or {}).get("created_at")) or created_at or row.occurred_at
            first_response_at = first_response_at or parse_time((snapshot or {}).get("first_response_at"))
        for side in ("old", "new"):
            change = data.get(side)
            if isinstance(change, dict) and change.get("status") and change.get("label"):
                status_labels[str(change["status"])] = str(change["label"])
        after = _category_after(row)
        if after is not None:
            if after == "closed" and category != "closed":
                # An imported ticket says when it was really closed; a live one closes when the event occurs.
                closed_at = parse_time((snapshot or {}).get("closed_at")) or row.occurred_at
                first_closed_at = first_closed_at or closed_at
            elif category == "closed" and after != "closed":
                reopen_count += 1
                closed_at = None
            category = after
        if row.event_type == "ticket.message_added" and first_response_at is None:
            message = data.get("message") or {}
            role = (message.get("author") or {}).get("role") or (row.actor or {}).get("role")
            if (
                not message.get("internal")
                and role in STAFF_ROLES
                and message.get("id") not in created_message_ids
            ):
                first_response_at = parse_time(message.get("created_at")) or row.occurred_at
        if row.event_type == "ticket.sla_breached":
            breached = True
    created_at = created_at or rows[0].occurred_at
    if first_response_at is not None and first_response_at < created_at:
        first_response_at = created_at
    is_closed = category == "closed"
    if not is_closed:
        closed_at = None
    due = parse_time(latest.get("resolution_due_at"))
    if breached:
        sla_status = "breached"
    elif is_closed and due is not None:
        sla_status = "met" if closed_at <= due else "breached"
    else:
        sla_status = None
    requester = latest.get("requester") if isinstance(latest.get("requester"), dict) else {}
    requester_id = requester.get("id")
    requester_email = requester.get("email")
    type_key, type_label = _value_and_label(latest.get("type"), "type", latest.get("type_label"))
    priority_key, priority_label = _value_and_label(
        latest.get("priority"), "priority", latest.get("priority_label")
    )
    status = latest.get("status")
    status_label = (
        status_labels.get(status)
        or latest.get("status_label")
        or DEFAULT_LABELS["status"].get(status)
        or status
    )

    def wall(end: datetime | None) -> float | None:
        return None if end is None else max(0.0, (end - created_at).total_seconds())

    def business(end: datetime | None) -> float | None:
        return None if end is None else calendar.business_seconds_between(created_at, end)

    return {
        "number": latest.get("number"),
        "title": (latest.get("title") or "")[:300] or None,
        "customer_id": latest.get("customer_id"),
        "requester_key": requester_id or (f"email:{requester_email.lower()}" if requester_email else None),
        "requester_id": requester_id,
        "requester_name": requester.get("name"),
        "requester_email": requester_email,
        "type": type_key,
        "type_label": type_label,
        "priority": priority_key,
        "priority_label": priority_label,
        "status": status,
        "status_label": status_label,
        "status_category": category,
        "is_closed": is_closed,
        "source": latest.get("source"),
        "created_at": created_at,
        "created_day": local_day(created_at),
        "first_response_at": first_response_at,
        "first_response_seconds": wall(first_response_at),
        "first_response_business_seconds": business(first_response_at),
        "first_closed_at": first_closed_at,
        "closed_at": closed_at,
        "closed_day": local_day(closed_at) if closed_at else None,
        "resolution_seconds": wall(closed_at),
        "resolution_business_seconds": business(closed_at),
        "reopen_count": reopen_count,
        "resolution_due_at": due,
        "sla_status": sla_status,
        "assignees": _assignees(latest.get("assignees")),
        "last_event_at": rows[-1].occurred_at,
    }


# What a fold sets on a fact (the duration buckets follow their durations: TicketFact._set_bucket).
FACT_COLUMNS = tuple(
    column.key
    for column in TicketFact.__table__.columns
    if column.key != "ticket_id" and not column.key.endswith("_bucket")
)


def recompute(session: Session, ticket_ids: list[str], calendar: BusinessCalendar = DEFAULT_CALENDAR) -> None:
    """Fold the stored events of ``ticket_ids`` into their facts and assignees."""
    if not ticket_ids:
        return
    by_ticket: dict[str, list[TicketEvent]] = {ticket_id: [] for ticket_id in ticket_ids}
    for chunk_start in range(0, len(ticket_ids), 500):
        chunk = ticket_ids[chunk_start : chunk_start + 500]
        for row in session.scalars(select(TicketEvent).where(TicketEvent.ticket_id.in_(chunk))):
            by_ticket[row.ticket_id].append(row)
    existing = {
        fact.ticket_id: fact
        for chunk_start in range(0, len(ticket_ids), 500)
        for fact in session.scalars(
            select(TicketFact).where(TicketFact.ticket_id.in_(ticket_ids[chunk_start : chunk_start + 500]))
        )
    }
    dimensions: set[tuple[str, str, str | None]] = set()
    changes: list[tuple[dict[str, Any] | None, dict[str, Any]]] = []
    for ticket_id, rows in by_ticket.items():
        figures = fold(rows, calendar)
        if figures is None:
            continue
        assignees = figures.pop("assignees")
        for dimension in ("type", "priority"):
            label = figures.pop(f"{dimension}_label")
            if figures[dimension]:
                dimensions.add((dimension, figures[dimension], label))
        assignees = dict(assignees)
        figures["assignee_ids"] = list(assignees)
        days = {"created_day": figures["created_day"], "closed_day": figures["closed_day"]}
        fact = existing.get(ticket_id)
        if fact is None:
            changes.append((None, figures))
            session.add(TicketFact(ticket_id=ticket_id, **figures))
        else:
            changes.append((rollups.fact_values(fact), figures))
            if list(fact.assignee_ids or []) != figures["assignee_ids"]:
                session.execute(delete(TicketAssignee).where(TicketAssignee.ticket_id == ticket_id))
            else:
                # Unchanged (most events do not touch the assignees): only their copy of the days may move.
                if (fact.created_day, fact.closed_day) != (days["created_day"], days["closed_day"]):
                    session.execute(
                        update(TicketAssignee).where(TicketAssignee.ticket_id == ticket_id).values(**days)
                    )
                assignees = None
            for key in FACT_COLUMNS:
                setattr(fact, key, figures[key])
        for agent_id, agent_name in (assignees or {}).items():
            session.add(TicketAssignee(ticket_id=ticket_id, agent_id=agent_id, agent_name=agent_name, **days))
    rollups.apply_changes(session, changes)
    _remember_dimensions(session, dimensions)
    session.flush()


def _remember_dimensions(session: Session, dimensions: set[tuple[str, str, str | None]]) -> None:
    """Store the types and priorities seen (with their latest label) in one statement, whatever is there already."""
    if not dimensions:
        return
    table = DimensionValue.__table__
    insert = dialect_insert(session)(table)
    statement = insert.on_conflict_do_update(
        index_elements=["dimension", "value"],
        set_={"label": insert.excluded.label},
        where=table.c.label.is_distinct_from(insert.excluded.label),
    )
    session.execute(
        statement,
        [
            {"dimension": dimension, "value": value, "label": label}
            for dimension, value, label in sorted(dimensions)
        ],
    )


def clear(session: Session) -> None:
    """Forget every ticket event and figure (the first step of a rebuild). The dimension values stay: they only
    feed the filters' choices."""
    rollups.clear(session)
    for model in (TicketAssignee, TicketFact, TicketEvent):
        session.execute(delete(model))


def counts(session: Session) -> dict[str, int]:
    return {
        "events": session.scalar(select(func.count()).select_from(TicketEvent)) or 0,
        "tickets": session.scalar(select(func.count()).select_from(TicketFact)) or 0,
    }
