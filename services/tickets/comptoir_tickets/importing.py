"""Import of an old helpdesk's tickets (Simplydesk): batches of normalised tickets in, tickets with their original
numbers and dates out.

The files are read elsewhere (``comptoir_common.ticket_import``, by the command line or the gateway's admin page);
this module receives batches of ticket dicts and, for each ticket, decides what importing it means — created, updated
(a newer export with new messages or a new status), unchanged or rejected — and what it matched: the customer (by
external key through crm_sync hints, by name in the read model, or through the requester's contact), the requester
(a Comptoir user, a crm contact, or "non identifié" with the address kept), the assignees (staff by email or name),
the status, type and priority (by key or label). :func:`plan` does that without writing; :func:`apply` writes it.

Idempotent on the old ticket number: an imported ticket keeps its number, so a second run finds it and compares.
Messages are recognised by (date, text). Each batch publishes one ``ticket.batch_imported`` event with a snapshot
per imported ticket (never ``ticket.created`` or ``ticket.message_added``): the notifier does not subscribe to it, so
importing sends no mail, and reports count each ticket with its original dates from its snapshot. The number
counter is raised past the highest imported number, under the counter row's lock, so new tickets continue after it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from comptoir_common.db import is_postgres, utcnow
from comptoir_common.errors import ComptoirError, InvalidInput, PermissionDenied
from comptoir_common.events import Event, user_actor
from comptoir_common.outbox import add_event
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from comptoir_tickets import configuration, tickets
from comptoir_tickets.models import (
    Counter,
    Customer,
    HistoryEntry,
    Message,
    OutboxMessage,
    Priority,
    Status,
    Ticket,
    TicketAssignee,
    TicketType,
    User,
    new_id,
)

MAX_BATCH = 500
MAX_MESSAGES_PER_TICKET = 2000
IMPORT_SOURCE = "import"
IMPORTER_NAME = "Import Simplydesk"
BATCH_EVENT = "ticket.batch_imported"
STAFF = ("admin", "agent")


def require_import_rights(actor: dict[str, Any]) -> None:
    if not isinstance(actor, dict) or actor.get("role") != "admin":
        raise PermissionDenied("Seul un superviseur peut importer des tickets.")


def _norm(value: Any) -> str:
    text = unicodedata.normalize("NFKD", str(value or ""))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"[^0-9a-z@.]+", " ", text).strip()


def _time(value: Any, what: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"{what} illisible") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _message_key(created_at: datetime | None, body: str) -> str:
    moment = created_at.astimezone(UTC).replace(microsecond=0).isoformat() if created_at else ""
    return moment + "|" + hashlib.sha256(body.strip().encode()).hexdigest()[:32]


@dataclass
class Directory:
    """What the batch is matched against, loaded once per batch."""

    statuses: dict[str, Status]
    status_labels: dict[str, Status]
    types: dict[str, str]
    priorities: dict[str, Priority]
    default_priority: Priority
    users_by_email: dict[str, User]
    staff_by_name: dict[str, User]
    customers_by_name: dict[str, list[Customer]]
    customers: dict[str, Customer]
    hints: dict[str, Any]

    @classmethod
    def load(cls, session: Session, batch: list[dict[str, Any]], hints: dict[str, Any]) -> Directory:
        statuses = {s.key: s for s in session.scalars(select(Status))}
        types: dict[str, str] = {}
        for ticket_type in session.scalars(select(TicketType)):
            types[ticket_type.key] = ticket_type.key
            types[_norm(ticket_type.label)] = ticket_type.key
        priorities: dict[str, Priority] = {}
        for priority in session.scalars(select(Priority)):
            priorities[priority.key] = priority
            priorities[_norm(priority.label)] = priority
        emails = {t.get("requester_email") for t in batch} | {
            m.get("author_email") for t in batch for m in t.get("messages") or []
        }
        emails |= {a.lower() for t in batch for a in t.get("assignees") or [] if "@" in a}
        emails = {e for e in emails if isinstance(e, str) and e}
        users_by_email = (
            {
                u.email.lower(): u
                for u in session.scalars(select(User).where(func.lower(User.email).in_(emails)))
            }
            if emails
            else {}
        )
        staff_by_name = {
            _norm(u.name): u
            for u in session.scalars(select(User).where(User.role.in_(STAFF), User.active.is_(True)))
        }
        customer_ids = set((hints.get("customers") or {}).values()) | {
            (c or {}).get("customer_id") for c in (hints.get("contacts") or {}).values()
        }
        customer_ids |= {u.customer_id for u in users_by_email.values()}  # the requester's customer (step 3)
        customer_ids = {c for c in customer_ids if isinstance(c, str)}
        customers = (
            {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(customer_ids)))}
            if customer_ids
            else {}
        )
        names = {_norm(t.get("customer")) for t in batch if t.get("customer")}
        by_name: dict[str, list[Customer]] = {}
        if names:
            # Names are compared normalised (accents, case, punctuation): every active customer's name is read (two
            # columns, not whole rows), and only the customers named in the batch are loaded.
            wanted: dict[str, list[str]] = {}
            for customer_id, name in session.execute(
                select(Customer.id, Customer.name).where(Customer.active.is_(True))
            ):
                key = _norm(name)
                if key in names:
                    wanted.setdefault(key, []).append(customer_id)
            found_ids = {c for ids in wanted.values() for c in ids} - set(customers)
            if found_ids:
                customers |= {
                    c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(found_ids)))
                }
            by_name = {key: [customers[c] for c in ids] for key, ids in wanted.items()}
        return cls(
            statuses=statuses,
            status_labels={_norm(s.label): s for s in statuses.values()},
            types=types,
            priorities=priorities,
            default_priority=configuration.default_priority(session),
            users_by_email=users_by_email,
            staff_by_name=staff_by_name,
            customers_by_name=by_name,
            customers=customers,
            hints=hints,
        )


@dataclass
class Planned:
    """What importing one ticket means."""

    number: int
    line: int | None
    outcome: str  # created, updated, unchanged, rejected
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    customer_match: str | None = None
    requester_match: str | None = None
    unmatched_assignees: list[str] = field(default_factory=list)
    existing: Ticket | None = None
    changes: list[str] = field(default_factory=list)
    ticket_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "line": self.line,
            "outcome": self.outcome,
            "ticket_id": self.ticket_id,
            "reasons": self.reasons,
            "warnings": self.warnings,
            "changes": self.changes,
            "new_messages": len(self.messages),
            "customer": {
                "match": self.customer_match,
                "id": self.fields.get("customer_id"),
                "name": self.fields.get("customer_name") or None,
                "source_name": self.fields.get("source_customer"),
            },
            "requester": {
                "match": self.requester_match,
                "id": self.fields.get("requester_id"),
                "email": self.fields.get("requester_email"),
                "name": self.fields.get("requester_name"),
            },
            "assignees": [p["name"] for p in self.fields.get("assignees") or []],
            "unmatched_assignees": self.unmatched_assignees,
        }


def _resolve_status(
    directory: Directory, value: Any, closed_at: datetime | None, warnings: list[str]
) -> Status:
    if value:
        status = directory.statuses.get(str(value)) or directory.status_labels.get(_norm(value))
        if status is not None:
            return status
        warnings.append(f"statut inconnu « {value} »")
    category = "closed" if closed_at else "open"
    candidates = sorted(
        (s for s in directory.statuses.values() if s.category == category), key=lambda s: (s.position, s.key)
    )
    return candidates[0]


def _resolve_customer(directory: Directory, item: dict[str, Any], planned: Planned) -> Customer | None:
    key = item.get("customer_key")
    customer_id = (directory.hints.get("customers") or {}).get(key) if key else None
    if customer_id is None and item.get("customer"):
        customer_id = (directory.hints.get("customers") or {}).get(item["customer"])
    if customer_id and customer_id in directory.customers:
        planned.customer_match = "external_key" if key else "crm"
        return directory.customers[customer_id]
    if item.get("customer"):
        matches = directory.customers_by_name.get(_norm(item["customer"])) or []
        if len(matches) == 1:
            planned.customer_match = "name"
            return matches[0]
        if len(matches) > 1:
            planned.warnings.append(f"plusieurs clients s'appellent « {item['customer']} »")
    email = item.get("requester_email")
    user = directory.users_by_email.get(email or "")
    if user is not None and user.customer_id and user.customer_id in directory.customers:
        planned.customer_match = "requester"
        return directory.customers[user.customer_id]
    contact = (directory.hints.get("contacts") or {}).get(email or "")
    if contact and contact.get("customer_id") in directory.customers:
        planned.customer_match = "contact"
        return directory.customers[contact["customer_id"]]
    planned.customer_match = None
    return None


def _plan_one(
    directory: Directory, item: dict[str, Any], existing: Ticket | None, known: set[str] | None = None
) -> Planned:
    """``known``: the keys (:func:`_message_key`) of the existing ticket's messages."""
    number = item.get("number")
    line = item.get("line") if isinstance(item.get("line"), int) else None
    if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 2**31:
        return Planned(
            number=number if isinstance(number, int) else 0,
            line=line,
            outcome="rejected",
            reasons=["numéro de ticket invalide"],
        )
    planned = Planned(number=number, line=line, outcome="created", existing=existing)
    if existing is not None and existing.source != IMPORT_SOURCE:
        planned.outcome = "rejected"
        planned.reasons.append(f"le numéro {number} est déjà utilisé par un ticket créé dans Comptoir")
        return planned
    try:
        created_at = _time(item.get("created_at"), "date de création")
        updated_at = _time(item.get("updated_at"), "date de mise à jour")
        closed_at = _time(item.get("closed_at"), "date de clôture")
    except ValueError as exc:
        planned.outcome = "rejected"
        planned.reasons.append(str(exc))
        return planned
    if created_at is None:
        planned.outcome = "rejected"
        planned.reasons.append("date de création manquante")
        return planned
    title = (
        (item.get("title") or "").strip()[: tickets.MAX_TITLE_LENGTH]
        if isinstance(item.get("title"), str)
        else ""
    )
    if not title:
        title = f"Ticket Simplydesk n° {number}"
        planned.warnings.append("sujet manquant")
    status = _resolve_status(directory, item.get("status"), closed_at, planned.warnings)
    if status.category == "closed" and closed_at is None:
        closed_at = updated_at or created_at
    if status.category != "closed":
        closed_at = None
    ticket_type = None
    if item.get("type"):
        ticket_type = directory.types.get(str(item["type"])) or directory.types.get(_norm(item["type"]))
        if ticket_type is None:
            planned.warnings.append(f"type inconnu « {item['type']} »")
    priority = directory.default_priority
    if item.get("priority"):
        found = directory.priorities.get(str(item["priority"])) or directory.priorities.get(
            _norm(item["priority"])
        )
        if found is None:
            planned.warnings.append(f"priorité inconnue « {item['priority']} »")
        else:
            priority = found
    customer = _resolve_customer(directory, item, planned)
    if customer is None and (item.get("customer") or item.get("customer_key")):
        planned.warnings.append(f"client non trouvé « {item.get('customer') or item.get('customer_key')} »")
    email = item.get("requester_email") if isinstance(item.get("requester_email"), str) else None
    email = email.strip().lower() if email else None
    requester_name = item.get("requester_name") if isinstance(item.get("requester_name"), str) else None
    requester = directory.users_by_email.get(email or "")
    contact = (directory.hints.get("contacts") or {}).get(email or "")
    if requester is not None:
        planned.requester_match = "user"
        requester_name = requester_name or requester.name
    elif contact:
        planned.requester_match = "contact"
        requester_name = requester_name or contact.get("name")
    else:
        planned.requester_match = None
    people: list[dict[str, str]] = []
    for name in item.get("assignees") or []:
        user = (
            directory.users_by_email.get(name.lower())
            if "@" in name
            else directory.staff_by_name.get(_norm(name))
        )
        if user is None or user.role not in STAFF:
            planned.unmatched_assignees.append(name)
        elif all(p["id"] != user.id for p in people):
            people.append({"id": user.id, "name": user.name})
    if planned.unmatched_assignees:
        planned.warnings.append("technicien(s) non trouvé(s) : " + ", ".join(planned.unmatched_assignees))

    messages = []
    for message in (item.get("messages") or [])[:MAX_MESSAGES_PER_TICKET]:
        body = message.get("body") if isinstance(message.get("body"), str) else ""
        body = body.strip()[: tickets.MAX_MESSAGE_LENGTH]
        if not body:
            planned.warnings.append("message vide ignoré")
            continue
        try:
            at = _time(message.get("created_at"), "date de message") or created_at
        except ValueError:
            planned.warnings.append("date de message illisible : date du ticket utilisée")
            at = created_at
        author_email = (message.get("author_email") or "").strip().lower() or None
        author = directory.users_by_email.get(author_email or "")
        if author is not None:
            role = author.role
        elif message.get("author_type") in ("client", "agent"):
            role = message["author_type"]
        elif (author_email and author_email == email) or (
            message.get("author_name") and _norm(message.get("author_name")) == _norm(requester_name)
        ):
            role = "client"
        elif message.get("author_name") and directory.staff_by_name.get(_norm(message["author_name"])):
            author = directory.staff_by_name[_norm(message["author_name"])]
            role = author.role
        else:
            role = "agent" if message.get("internal") else "client"
        messages.append(
            {
                "key": _message_key(at, body),
                "created_at": at,
                "body": body,
                "internal": bool(message.get("internal")),
                "author_id": author.id
                if author
                else (
                    requester.id if role == "client" and requester and author_email in (None, email) else None
                ),
                "author_name": (author.name if author else None)
                or message.get("author_name")
                or author_email,
                "author_email": author_email,
                "author_role": role,
                "attachments": [a for a in message.get("attachments") or [] if isinstance(a, dict)],
            }
        )
    if len(item.get("messages") or []) > MAX_MESSAGES_PER_TICKET:
        planned.warnings.append(f"plus de {MAX_MESSAGES_PER_TICKET} messages : les suivants sont ignorés")
    messages.sort(key=lambda m: m["created_at"])
    if not messages:
        messages.append(
            {
                "key": _message_key(created_at, title),
                "created_at": created_at,
                "body": title,
                "internal": False,
                "author_id": requester.id if requester else None,
                "author_name": requester_name or email,
                "author_email": email,
                "author_role": "client",
                "attachments": [],
            }
        )
        planned.warnings.append("aucun message : le sujet sert de premier message")
    last_message = max(m["created_at"] for m in messages)
    first_response = next(
        (
            m["created_at"]
            for m in messages[1:]
            if not m["internal"] and m["author_role"] in STAFF and m["created_at"] >= created_at
        ),
        None,
    )
    planned.fields = {
        "title": title,
        "status": status.key,
        "status_category": status.category,
        "type": ticket_type,
        "priority": priority.key,
        "sla_target_minutes": priority.target_minutes,
        "customer_id": customer.id if customer else None,
        "customer_name": customer.name if customer else "",
        "source_customer": item.get("customer") or item.get("customer_key"),
        "requester_id": requester.id if requester else None,
        "requester_email": email,
        "requester_name": (requester_name or "")[:200] or None,
        "assignees": people,
        "created_at": created_at,
        "updated_at": max(d for d in (created_at, updated_at, closed_at, last_message) if d is not None),
        "closed_at": closed_at,
        "first_response_at": first_response,
    }
    if existing is None:
        planned.messages = messages
        return planned
    planned.ticket_id = existing.id
    known = known or set()
    planned.messages = [m for m in messages if m["key"] not in known]
    for name in ("title", "status", "type", "priority", "customer_id", "requester_email", "requester_name"):
        if getattr(existing, name) != planned.fields[name]:
            planned.changes.append(name)
    if [p["id"] for p in existing.assignees or []] != [p["id"] for p in people]:
        planned.changes.append("assignees")
    if _aware(existing.closed_at) != closed_at:
        planned.changes.append("closed_at")
    planned.outcome = "updated" if planned.changes or planned.messages else "unchanged"
    return planned


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _validate_batch(batch: Any) -> list[dict[str, Any]]:
    if not isinstance(batch, list) or not all(isinstance(t, dict) for t in batch):
        raise InvalidInput("Lot d'import invalide : une liste de tickets est attendue.")
    if len(batch) > MAX_BATCH:
        raise InvalidInput(f"Lot d'import trop grand : au plus {MAX_BATCH} tickets par lot.")
    return batch


def plan(
    session: Session,
    *,
    actor: dict[str, Any],
    batch: list[dict[str, Any]],
    hints: dict[str, Any] | None = None,
) -> list[Planned]:
    """What importing ``batch`` would do, ticket by ticket, without writing anything."""
    require_import_rights(actor)
    batch = _validate_batch(batch)
    hints = hints if isinstance(hints, dict) else {}
    directory = Directory.load(session, batch, hints)
    numbers = [
        t["number"] for t in batch if isinstance(t.get("number"), int) and not isinstance(t["number"], bool)
    ]
    existing = (
        {t.number: t for t in session.scalars(select(Ticket).where(Ticket.number.in_(numbers)))}
        if numbers
        else {}
    )
    # The existing messages as keys only (date and text): columns, not ORM objects (a second run of an export reads
    # every message of every ticket).
    known: dict[str, set[str]] = {}
    if existing:
        for ticket_id, created_at, body in session.execute(
            select(Message.ticket_id, Message.created_at, Message.body).where(
                Message.ticket_id.in_([t.id for t in existing.values()])
            )
        ):
            known.setdefault(ticket_id, set()).add(_message_key(_aware(created_at), body))
    seen: set[int] = set()
    result = []
    for item in batch:
        ticket = existing.get(item.get("number"))
        planned = _plan_one(directory, item, ticket, known.get(ticket.id) if ticket is not None else None)
        if planned.outcome != "rejected" and planned.number in seen:
            planned.outcome, planned.reasons = "rejected", ["ticket en double dans le lot"]
        seen.add(planned.number)
        result.append(planned)
    return result


def summarise(planned: list[Planned]) -> dict[str, Any]:
    counts = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    matches = {"customer": {}, "requester": {}}
    messages = 0
    for item in planned:
        counts[item.outcome] += 1
        if item.outcome == "rejected":
            continue
        messages += len(item.messages)
        for kind, value in (("customer", item.customer_match), ("requester", item.requester_match)):
            key = value or "unmatched"
            matches[kind][key] = matches[kind].get(key, 0) + 1
    return counts | {"messages": messages, "matches": matches}


def _raise_counter(session: Session, highest: int) -> None:
    greatest = func.greatest if is_postgres(session) else func.max
    session.execute(
        update(Counter)
        .where(Counter.name == tickets.TICKET_NUMBER_COUNTER)
        .values(value=greatest(Counter.value, highest))
    )


def apply(
    session: Session,
    *,
    actor: dict[str, Any],
    batch: list[dict[str, Any]],
    hints: dict[str, Any] | None = None,
    blobs: Any = None,
) -> list[Planned]:
    """Import ``batch``: create or update the tickets, publish one ``ticket.batch_imported`` event for the
    changed ones."""
    require_import_rights(actor)
    # The counter row is locked for the whole batch: a ticket created meanwhile waits and then numbers after the
    # highest imported number; a number already taken by a live ticket is rejected by plan().
    session.execute(select(Counter).where(Counter.name == tickets.TICKET_NUMBER_COUNTER).with_for_update())
    planned = plan(session, actor=actor, batch=batch, hints=hints)
    writer = _BatchWriter(session, actor, blobs)
    highest = 0
    with session.no_autoflush:
        for item in planned:
            if item.outcome in ("rejected", "unchanged"):
                continue
            if any(m["attachments"] for m in item.messages):
                # Attachments are checked while written: a bad one rejects its ticket only (savepoint).
                writer.flush()  # the tickets before it stay whatever happens to this one
                try:
                    with session.begin_nested():
                        ticket = writer.write(item)
                        writer.attach(item, ticket)
                except ComptoirError as exc:
                    item.outcome, item.reasons = "rejected", [exc.message]
                    writer.forget(item)
                    continue
            else:
                ticket = writer.write(item)
            item.ticket_id = ticket.id
            highest = max(highest, item.number)
    writer.finish()
    if highest:
        _raise_counter(session, highest)
    session.flush()
    return planned


class _BatchWriter:
    """Writes the planned tickets of one batch with as few round trips as possible: the tickets are ORM objects
    flushed together; their messages, history entries and assignees (most of the rows: there is nothing in them the
    ORM has to track) go in one multi-row INSERT per table; dashboard counters are adjusted once per batch and one
    ``ticket.batch_imported`` event carries the whole batch."""

    def __init__(self, session: Session, actor: dict[str, Any], blobs: Any):
        self.session = session
        self.actor = actor
        self.blobs = blobs
        self.now = utcnow()
        self.calendar = configuration.calendar(session)
        # Rows referring to tickets (history, assignees, messages), by table: inserted once the tickets are flushed.
        self.pending: dict[type, list[dict[str, Any]]] = {HistoryEntry: [], TicketAssignee: [], Message: []}
        # Per written ticket: (ticket, plan, created, message rows with their plan, dashboard counter changes).
        self.written: list[
            tuple[Ticket, Planned, bool, list[tuple[dict[str, Any], dict[str, Any]]], list[tuple]]
        ] = []

    def flush(self) -> None:
        self.session.flush()
        for model, rows in self.pending.items():
            if rows:
                self.session.execute(insert(model), rows)
                rows.clear()

    def _history(self, ticket_id: str, number: int, changes: list[str] | None) -> None:
        self.pending[HistoryEntry].append(
            {
                "ticket_id": ticket_id,
                "action": "imported",
                "field": ",".join(changes)[:40] if changes else None,
                "old_value": None,
                "new_value": f"Simplydesk n° {number}" + (" (mise à jour)" if changes is not None else ""),
                "internal": False,
                "actor_id": self.actor.get("id"),
                "actor_name": IMPORTER_NAME,
                "created_at": self.now,
            }
        )

    def write(self, item: Planned) -> Ticket:
        fields = item.fields
        ticket = item.existing
        created = ticket is None
        counts: list[tuple[str | None, str, int]] = []
        if created:
            ticket = Ticket(
                id=new_id(),
                number=item.number,
                title=fields["title"],
                status=fields["status"],
                status_category=fields["status_category"],
                type=fields["type"],
                priority=fields["priority"],
                customer_id=fields["customer_id"],
                customer_name=fields["customer_name"],
                requester_id=fields["requester_id"],
                requester_email=fields["requester_email"],
                requester_name=fields["requester_name"],
                assignees=[],
                assignee_names="",
                followers=[],
                source=IMPORT_SOURCE,
                created_at=fields["created_at"],
                created_by_id=fields["requester_id"],
                created_by_name=fields["requester_name"] or fields["requester_email"] or "",
                updated_at=fields["updated_at"],
                updated_by_id=None,
                updated_by_name=IMPORTER_NAME,
                first_response_at=fields["first_response_at"],
                closed_at=fields["closed_at"],
                reopened_count=0,
                sla_target_minutes=fields["sla_target_minutes"],
                sla_elapsed_minutes=0,
                sla_running_since=None,
                resolution_due_at=None,
                sla_breached=False,
                sla_breach_published=False,
                version=1,
            )
            self.session.add(ticket)
            counts.append((ticket.customer_id, ticket.status_category, +1))
            self._history(ticket.id, item.number, None)
        else:
            old_customer, old_category = ticket.customer_id, ticket.status_category
            for name in (
                "title", "status", "status_category", "type", "priority", "customer_id", "customer_name",
                "requester_id", "requester_email", "requester_name", "sla_target_minutes",
            ):  # fmt: skip
                setattr(ticket, name, fields[name])
            ticket.closed_at = fields["closed_at"]
            ticket.updated_at = max(fields["updated_at"], ticket.updated_at)
            ticket.first_response_at = ticket.first_response_at or fields["first_response_at"]
            ticket.version += 1
            if (old_customer, old_category) != (ticket.customer_id, ticket.status_category):
                counts.append((old_customer, old_category, -1))
                counts.append((ticket.customer_id, ticket.status_category, +1))
            if item.changes:
                self._history(ticket.id, item.number, item.changes)
        # The SLA of an imported ticket: none once closed; paused while pending; otherwise it starts at the import.
        if ticket.status_category in ("closed", "pending"):
            ticket.sla_running_since = None
            ticket.resolution_due_at = None
        elif ticket.sla_running_since is None:
            tickets._start_clock(ticket, self.calendar, self.now)
        people = fields["assignees"]
        if [p["id"] for p in ticket.assignees or []] != [p["id"] for p in people]:
            if created:
                for person in people:
                    self.pending[TicketAssignee].append({"ticket_id": ticket.id, "user_id": person["id"]})
                ticket.assignees = people
                ticket.assignee_names = ", ".join(p["name"] for p in people)[:500]
            else:
                tickets._set_assignees(self.session, ticket, people)
        new_messages = []
        for data in item.messages:
            message = {
                "id": new_id(),
                "ticket_id": ticket.id,
                "author_id": data["author_id"],
                "author_name": (data["author_name"] or "")[:200] or None,
                "author_role": data["author_role"],
                "author_email": data["author_email"],
                "body": data["body"],
                "internal": data["internal"],
                "source": IMPORT_SOURCE,
                "created_at": data["created_at"],
            }
            self.pending[Message].append(message)
            new_messages.append((message, data))
        self.written.append((ticket, item, created, new_messages, counts))
        return ticket

    def attach(self, item: Planned, ticket: Ticket) -> None:
        self.flush()
        for row, data in self.written[-1][3]:
            if data["attachments"]:
                message = self.session.get(Message, row["id"])
                tickets._attach_files(self.session, ticket, message, data["attachments"], self.blobs)

    def forget(self, item: Planned) -> None:
        """A ticket rolled back to its savepoint: no event, no counter change, no rows."""
        for rows in self.pending.values():
            rows.clear()
        if self.written and self.written[-1][1] is item:
            self.written.pop()

    def finish(self) -> None:
        self.flush()
        deltas: dict[tuple[str | None, str], int] = {}
        for *_, counts in self.written:
            for customer_id, category, delta in counts:
                deltas[(customer_id, category)] = deltas.get((customer_id, category), 0) + delta
        for (customer_id, category), delta in sorted(
            deltas.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])
        ):
            if delta:
                tickets._adjust_count(self.session, customer_id, category, delta)
        if not self.written:
            return
        # One event for the batch, not one per ticket (and none per message): 100,000 imported tickets are 500
        # events for the consumers (reports folds each batch in one transaction), not 100,000 or 600,000.
        add_event(
            self.session,
            OutboxMessage,
            Event(
                type=BATCH_EVENT,
                actor=user_actor(self.actor),
                data={
                    "imported": True,
                    "tickets": [
                        {
                            "ticket": tickets.snapshot(ticket),
                            "created": created,
                            "old_number": item.number,
                            "messages_added": len(new_messages),
                        }
                        for ticket, item, created, new_messages, _ in self.written
                    ],
                },
            ),
        )


def import_batch(
    session: Session,
    *,
    actor: dict[str, Any],
    batch: list[dict[str, Any]],
    hints: dict[str, Any] | None = None,
    dry_run: bool = False,
    blobs: Any = None,
) -> dict[str, Any]:
    """The RPC's answer: per-ticket outcomes and a summary (``dry_run``: nothing written)."""
    if dry_run:
        planned = plan(session, actor=actor, batch=batch, hints=hints)
    else:
        planned = apply(session, actor=actor, batch=batch, hints=hints, blobs=blobs)
    return {
        "dry_run": bool(dry_run),
        "summary": summarise(planned),
        "tickets": [p.to_dict() for p in planned],
    }


def import_status(session: Session, *, actor: dict[str, Any]) -> dict[str, Any]:
    """How many imported tickets there are, the highest imported number and the next number."""
    require_import_rights(actor)
    count, highest = session.execute(
        select(func.count(), func.max(Ticket.number)).where(Ticket.source == IMPORT_SOURCE)
    ).one()
    counter = session.get(Counter, tickets.TICKET_NUMBER_COUNTER)
    return {
        "imported_tickets": count or 0,
        "highest_number": highest,
        "next_number": (counter.value if counter else 0) + 1,
    }
