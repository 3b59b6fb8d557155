"""The ticket list (sort, filters, text search, saved views, keyset pagination) and the dashboard counts.

Every query starts from the policy's visibility clause. Pagination is keyset on (sort column, id), so page N costs
the same as page 1 whatever the table size; the indexes in ``models.Ticket`` cover each sort column.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from comptoir_common.db import is_postgres
from comptoir_common.errors import InvalidInput
from sqlalchemy import and_, exists, false, func, or_, select, true
from sqlalchemy.orm import Session

from comptoir_tickets import policy
from comptoir_tickets.models import STATUS_CATEGORIES, Customer, Message, Ticket, TicketAssignee, TicketCount
from comptoir_tickets.tickets import Labels, snapshot

MAX_PAGE_SIZE = 200
SORTS = {
    "updated_at": Ticket.updated_at,
    "created_at": Ticket.created_at,
    "number": Ticket.number,
    "title": Ticket.title,
    "customer": Ticket.customer_name,
    "status": Ticket.status,
    "assignees": Ticket.assignee_names,
    "updated_by": Ticket.updated_by_name,
    "priority": Ticket.priority,
}
DATETIME_SORTS = {"updated_at", "created_at"}
VIEWS = {"mine", "unassigned", "unidentified"}
DEFAULT_SORT = "-updated_at"


def _parse_sort(sort: str | None) -> tuple[str, bool]:
    sort = sort or DEFAULT_SORT
    descending = sort.startswith("-")
    name = sort.lstrip("-+")
    if name not in SORTS:
        raise InvalidInput(f"Tri inconnu : {name}. Possibles : {', '.join(SORTS)}.")
    return name, descending


def _encode_cursor(name: str, ticket: Ticket) -> str:
    value = getattr(ticket, SORTS[name].key)
    if isinstance(value, datetime):
        value = value.isoformat()
    return base64.urlsafe_b64encode(json.dumps([name, value, ticket.id]).encode()).decode()


def _decode_cursor(cursor: str, name: str) -> tuple[Any, str]:
    try:
        sort_name, value, ticket_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if sort_name != name:
            raise ValueError("cursor of another sort")
        if name in DATETIME_SORTS:
            value = datetime.fromisoformat(value)
        return value, str(ticket_id)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidInput("Curseur de pagination invalide.") from exc


def _text_search(session: Session, actor: dict[str, Any], text: str):
    text = text.strip()[:200]
    message_match = select(Message.id).where(Message.ticket_id == Ticket.id)
    if not policy.can_see_internal_notes(actor):
        message_match = message_match.where(Message.internal.is_(False))
    if is_postgres(session):
        query = func.plainto_tsquery("french", text)
        title_match = func.to_tsvector("french", Ticket.title).op("@@")(query)
        message_match = message_match.where(func.to_tsvector("french", Message.body).op("@@")(query))
    else:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        title_match = Ticket.title.ilike(pattern, escape="\\")
        message_match = message_match.where(Message.body.ilike(pattern, escape="\\"))
    return or_(title_match, exists(message_match))


def _as_list(value: Any) -> list[str]:
    if value in (None, "", []):
        return []
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise InvalidInput("Filtre invalide.")


def filter_clauses(session: Session, actor: dict[str, Any], filters: dict[str, Any]) -> list:
    """WHERE clauses for the list's filters (all optional) and saved views."""
    filters = dict(filters or {})
    clauses = []
    view = filters.pop("view", None)
    if view:
        if view not in VIEWS:
            raise InvalidInput("Vue inconnue.")
        if view == "mine":
            filters["assignee"] = "me"
        elif view == "unassigned":
            filters["unassigned"] = True
        else:
            filters["unidentified"] = True
    if statuses := _as_list(filters.get("status")):
        clauses.append(Ticket.status.in_(statuses))
    if categories := _as_list(filters.get("category")):
        if set(categories) - set(STATUS_CATEGORIES):
            raise InvalidInput("Catégorie de statut inconnue.")
        clauses.append(Ticket.status_category.in_(categories))
    if customers := _as_list(filters.get("customer_id")):
        clauses.append(Ticket.customer_id.in_(customers))
    if priorities := _as_list(filters.get("priority")):
        clauses.append(Ticket.priority.in_(priorities))
    if types := _as_list(filters.get("type")):
        clauses.append(Ticket.type.in_(types))
    if assignee := filters.get("assignee"):
        user_id = actor.get("id") if assignee == "me" else assignee
        clauses.append(
            exists(
                select(TicketAssignee.ticket_id).where(
                    TicketAssignee.ticket_id == Ticket.id, TicketAssignee.user_id == user_id
                )
            )
        )
    if filters.get("unassigned"):
        clauses.append(Ticket.assignee_names == "")
    if filters.get("unidentified"):
        clauses.append(Ticket.customer_id.is_(None))
    if filters.get("breached"):
        clauses.append(Ticket.sla_breached.is_(True))
    if text := filters.get("q"):
        if not isinstance(text, str):
            raise InvalidInput("Recherche invalide.")
        if text.strip():
            clauses.append(_text_search(session, actor, text))
    return clauses


def _customer_name_range(session: Session, actor: dict[str, Any]) -> list:
    """For a viewer who sees some customers only: the range of customer names their tickets can carry.

    Redundant with the visibility clause, it only helps the customer sort: a sales rep whose customers' names all
    sort last would otherwise walk most of the (customer_name, id) index past other people's tickets before finding
    one of theirs. The bounds come from the customer directory (tickets carry their customer's name, renames
    included), "" for unidentified tickets or customers missing from the directory, and the viewer's own requests.
    """
    scope = policy.scope(session, actor)
    names: list[str] = [""] if scope.unidentified else []
    if scope.customer_ids:
        low, high, known = session.execute(
            select(func.min(Customer.name), func.max(Customer.name), func.count()).where(
                Customer.id.in_(scope.customer_ids)
            )
        ).one()
        names += [low, high] if known else []
        if known < len(scope.customer_ids):
            names.append("")
    if scope.requester_id:
        low, high = session.execute(
            select(func.min(Ticket.customer_name), func.max(Ticket.customer_name)).where(
                Ticket.requester_id == scope.requester_id
            )
        ).one()
        names += [low, high] if low is not None else []
    if not names:
        return [false()]
    return [Ticket.customer_name.between(min(names), max(names))]


def list_tickets(
    session: Session,
    *,
    actor: dict[str, Any],
    sort: str | None = None,
    filters: dict[str, Any] | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """One page of the tickets ``actor`` may see."""
    try:
        limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    except (TypeError, ValueError) as exc:
        raise InvalidInput("Taille de page invalide.") from exc
    name, descending = _parse_sort(sort)
    column = SORTS[name]
    query = select(Ticket)
    visible = policy.visible_clause(session, actor)
    if visible is not None:
        query = query.where(visible)
    for clause in filter_clauses(session, actor, filters or {}):
        query = query.where(clause)
    if name == "customer" and visible is not None:
        query = query.where(*_customer_name_range(session, actor))
    if cursor:
        value, ticket_id = _decode_cursor(cursor, name)
        if descending:
            query = query.where(or_(column < value, and_(column == value, Ticket.id < ticket_id)))
        else:
            query = query.where(or_(column > value, and_(column == value, Ticket.id > ticket_id)))
    order = (column.desc(), Ticket.id.desc()) if descending else (column.asc(), Ticket.id.asc())
    rows = session.scalars(query.order_by(*order).limit(limit + 1)).all()
    page = rows[:limit]
    labels = Labels(session)
    return {
        "items": [snapshot(ticket, labels) for ticket in page],
        "next_cursor": _encode_cursor(name, page[-1]) if len(rows) > limit else None,
        "sort": ("-" if descending else "") + name,
    }


def dashboard(session: Session, *, actor: dict[str, Any]) -> dict[str, Any]:
    """Counts per status category (new requests, closed, …) over what ``actor`` sees, and breached deadlines."""
    scope = policy.scope(session, actor)
    counts = dict.fromkeys(STATUS_CATEGORIES, 0)
    if scope.all or scope.customer_ids or scope.unidentified:
        query = select(TicketCount.category, func.sum(TicketCount.count)).group_by(TicketCount.category)
        if not scope.all:
            keys = set(scope.customer_ids) | ({""} if scope.unidentified else set())
            query = query.where(TicketCount.customer_id.in_(keys))
        for category, total in session.execute(query):
            counts[category] = int(total or 0)
    elif scope.requester_id:
        query = (
            select(Ticket.status_category, func.count())
            .where(Ticket.requester_id == scope.requester_id)
            .group_by(Ticket.status_category)
        )
        for category, total in session.execute(query):
            counts[category] = int(total)
    breached_query = (
        select(func.count())
        .select_from(Ticket)
        # Written as the predicate of the partial index ix_tickets_breached_open, which serves it.
        .where(Ticket.sla_breached == true(), Ticket.status_category != "closed")
    )
    visible = policy.visible_clause(session, actor)
    if visible is not None:
        breached_query = breached_query.where(visible)
    return {
        "counts": counts,
        "new": counts["new"],
        "closed": counts["closed"],
        "open": counts["open"],
        "pending": counts["pending"],
        "breached": session.scalar(breached_query) or 0,
    }
