"""Who may see and do what on tickets: the one place that decides, for every path.

The actor is the caller's identity as the gateway passes it: ``{"id", "role", "customer_id", "name", "email"}``.
Staff who work every ticket (admins, agents) see all; clients and resellers see their own company's tickets (and
the ones they requested). Sales reps see their own customers' tickets once the customer directory feeds the read
model (issue #4); until then, the ones they requested.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, or_

from comptoir_tickets.models import Ticket

ALL_TICKETS_ROLES = frozenset({"admin", "agent"})
KNOWN_ROLES = frozenset({"admin", "agent", "sales", "client", "reseller"})


def visible_tickets_clause(actor: dict[str, Any]) -> ColumnElement[bool] | None:
    """A WHERE clause selecting the tickets ``actor`` may see; None means every ticket."""
    role = actor.get("role")
    if role in ALL_TICKETS_ROLES:
        return None
    if role not in KNOWN_ROLES or not actor.get("id"):
        return false()
    conditions = [Ticket.requester_id == actor["id"]]
    if role in ("client", "reseller") and actor.get("customer_id"):
        conditions.append(Ticket.customer_id == actor["customer_id"])
    return or_(*conditions)


def can_see(actor: dict[str, Any], ticket: Ticket) -> bool:
    role = actor.get("role")
    if role in ALL_TICKETS_ROLES:
        return True
    if role not in KNOWN_ROLES or not actor.get("id"):
        return False
    if ticket.requester_id == actor["id"]:
        return True
    return (
        role in ("client", "reseller")
        and bool(actor.get("customer_id"))
        and ticket.customer_id == actor["customer_id"]
    )


def can_see_internal_notes(actor: dict[str, Any]) -> bool:
    return actor.get("role") in ("admin", "agent", "sales")


def can_create_ticket(actor: dict[str, Any]) -> bool:
    return actor.get("role") in KNOWN_ROLES and bool(actor.get("id"))
