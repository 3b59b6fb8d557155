"""Who may see and do what on tickets: the one place that decides, for every path.

The actor is the caller's identity as the gateway passes it: ``{"id", "role", "customer_id", "name", "email"}``.

Visibility (lists, counts, search, detail, history, attachments, live events):

- ``admin``, ``agent``: every ticket;
- ``sales``: the tickets of the customers whose ``sales_rep_id`` is theirs (customer read model, fed by crm_sync),
  the unidentified tickets (so that they can attach them to one of their customers) and the ones they requested;
- ``client``: their own company's tickets (and the ones they requested);
- ``reseller``: their own company's tickets and those of the end customers whose ``parent_customer_id`` is their
  company (and the ones they requested);
- internal notes (and their attachments and history entries) only to admin, agent and sales.

A ticket one may not see answers exactly like a ticket that does not exist (404), never 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.orm import Session

from comptoir_tickets.models import Customer, Ticket

ALL_TICKETS_ROLES = frozenset({"admin", "agent"})
STAFF_ROLES = frozenset({"admin", "agent", "sales"})
CUSTOMER_ROLES = frozenset({"client", "reseller"})
KNOWN_ROLES = STAFF_ROLES | CUSTOMER_ROLES

# Fields each role may set when creating a ticket (besides title and message).
CREATE_FIELDS = {
    "client": {"type", "attachments"},
    "reseller": {"type", "attachments", "customer_id"},
    "sales": {"type", "attachments", "customer_id", "priority", "internal_note"},
    "agent": {"type", "attachments", "customer_id", "priority", "internal_note"},
    "admin": {"type", "attachments", "customer_id", "priority", "internal_note", "assignees"},
}
# Fields each role may change afterwards (PATCH). Clients close and reopen through ``status``.
EDIT_FIELDS = {
    "client": {"status"},
    "reseller": {"status"},
    "sales": {"title", "type", "priority", "status", "customer_id", "followers"},
    "agent": {"title", "type", "priority", "status", "customer_id", "followers"},
    "admin": {"title", "type", "priority", "status", "customer_id", "followers", "assignees"},
}


def _valid(actor: dict[str, Any]) -> bool:
    return actor.get("role") in KNOWN_ROLES and bool(actor.get("id"))


@dataclass(frozen=True)
class Scope:
    """What an actor sees, resolved once per request: everything, or a set of customers (+ their own requests)."""

    all: bool
    customer_ids: frozenset[str]
    unidentified: bool
    requester_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "all": self.all,
            "customer_ids": sorted(self.customer_ids),
            "unidentified": self.unidentified,
            "requester_id": self.requester_id,
        }


def scope(session: Session, actor: dict[str, Any]) -> Scope:
    role = actor.get("role")
    if not _valid(actor):
        return Scope(False, frozenset(), False, None)
    if role in ALL_TICKETS_ROLES:
        return Scope(True, frozenset(), True, None)
    customers: set[str] = set()
    if role == "sales":
        customers.update(session.scalars(select(Customer.id).where(Customer.sales_rep_id == actor["id"])))
    elif actor.get("customer_id"):
        customers.add(actor["customer_id"])
        if role == "reseller":
            customers.update(
                session.scalars(
                    select(Customer.id).where(Customer.parent_customer_id == actor["customer_id"])
                )
            )
    return Scope(False, frozenset(customers), role == "sales", actor["id"])


def visible_clause(session: Session, actor: dict[str, Any]) -> ColumnElement[bool] | None:
    """A WHERE clause selecting the tickets ``actor`` may see; None means every ticket."""
    role = actor.get("role")
    if role in ALL_TICKETS_ROLES and _valid(actor):
        return None
    if not _valid(actor):
        return false()
    conditions: list[ColumnElement[bool]] = [Ticket.requester_id == actor["id"]]
    if role == "sales":
        # A subquery rather than a list: a sales rep may manage hundreds of customers.
        conditions.append(
            Ticket.customer_id.in_(select(Customer.id).where(Customer.sales_rep_id == actor["id"]))
        )
        conditions.append(Ticket.customer_id.is_(None))
    elif actor.get("customer_id"):
        conditions.append(Ticket.customer_id == actor["customer_id"])
        if role == "reseller":
            conditions.append(
                Ticket.customer_id.in_(
                    select(Customer.id).where(Customer.parent_customer_id == actor["customer_id"])
                )
            )
    return or_(*conditions)


def can_see(session: Session, actor: dict[str, Any], ticket: Ticket) -> bool:
    return sees_customer(session, actor, ticket.customer_id) or (
        _valid(actor) and ticket.requester_id == actor["id"]
    )


def sees_customer(session: Session, actor: dict[str, Any], customer_id: str | None) -> bool:
    """Whether tickets of ``customer_id`` (None = unidentified) are in the actor's scope."""
    if not _valid(actor):
        return False
    role = actor["role"]
    if role in ALL_TICKETS_ROLES:
        return True
    if customer_id is None:
        return role == "sales"
    if role == "sales":
        return manages_customer(session, actor, customer_id)
    if customer_id == actor.get("customer_id"):
        return True
    if role == "reseller" and actor.get("customer_id"):
        customer = session.get(Customer, customer_id)
        return customer is not None and customer.parent_customer_id == actor["customer_id"]
    return False


def manages_customer(session: Session, actor: dict[str, Any], customer_id: str) -> bool:
    customer = session.get(Customer, customer_id)
    return customer is not None and customer.sales_rep_id == actor.get("id")


def can_see_internal_notes(actor: dict[str, Any]) -> bool:
    return _valid(actor) and actor["role"] in STAFF_ROLES


def can_create_ticket(actor: dict[str, Any]) -> bool:
    return _valid(actor)


def can_create_for_customer(session: Session, actor: dict[str, Any], customer_id: str | None) -> bool:
    """Whether ``actor`` may open a ticket on behalf of ``customer_id`` (None = not identified)."""
    role = actor.get("role")
    if role in ALL_TICKETS_ROLES:
        return customer_id is None or session.get(Customer, customer_id) is not None
    if customer_id is None:
        return False
    return sees_customer(session, actor, customer_id)


def can_reply(actor: dict[str, Any]) -> bool:
    """Anyone who sees the ticket may add a public message."""
    return _valid(actor)


def can_add_internal_note(actor: dict[str, Any]) -> bool:
    return can_see_internal_notes(actor)


def editable_fields(actor: dict[str, Any]) -> set[str]:
    return set(EDIT_FIELDS.get(actor.get("role"), set())) if _valid(actor) else set()


def can_take(actor: dict[str, Any]) -> bool:
    """Agents (and admins) may assign themselves."""
    return _valid(actor) and actor["role"] in ALL_TICKETS_ROLES


def can_attach_customer(session: Session, actor: dict[str, Any], customer_id: str) -> bool:
    """Agents and admins attach to any known customer; sales reps only to one of theirs."""
    role = actor.get("role")
    if role in ALL_TICKETS_ROLES and _valid(actor):
        return session.get(Customer, customer_id) is not None
    if role == "sales" and _valid(actor):
        return manages_customer(session, actor, customer_id)
    return False


def client_status_allowed(old_category: str, new_category: str) -> bool:
    """Clients and resellers may only close or reopen."""
    return (new_category == "closed" and old_category != "closed") or (
        old_category == "closed" and new_category != "closed"
    )


def can_see_event(scope_: dict[str, Any], envelope: dict[str, Any]) -> bool:
    """For the gateway's live updates: whether a ticket event may reach a viewer with this ``scope`` (from
    :func:`scope`). Internal notes never reach a viewer who may not read them."""
    data = envelope.get("data") or {}
    ticket = data.get("ticket") or data
    if scope_.get("internal_hidden") and (data.get("message") or {}).get("internal"):
        return False
    if scope_.get("all"):
        return True
    customer_id = ticket.get("customer_id")
    if customer_id is None:
        return bool(scope_.get("unidentified")) or (ticket.get("requester") or {}).get("id") == scope_.get(
            "requester_id"
        )
    return customer_id in set(scope_.get("customer_ids") or ()) or (ticket.get("requester") or {}).get(
        "id"
    ) == scope_.get("requester_id")
