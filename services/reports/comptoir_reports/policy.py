"""Who may see which figures: the one place that decides, for every report and export.

Admins and agents see every figure. A sales rep sees only the figures of the customers they manage (the
customer directory's ``sales_rep_id``). Clients and resellers see nothing, unless an admin enabled the summary of
their company; then they see the customer-level reports of their own company (a reseller: and of the customers
attached to it), never the per-agent or cross-customer ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from comptoir_common.errors import PermissionDenied
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from comptoir_reports.models import ClientSummary, Customer, TicketFact

ALL_FIGURES_ROLES = frozenset({"admin", "agent"})
CLIENT_ROLES = frozenset({"client", "reseller"})
# What a client with an enabled summary may open: figures about their own company only.
CLIENT_SUMMARY_REPORTS = frozenset(
    {"summary", "volume", "resolution", "first_response", "sla", "types", "requests_per_user", "reopen_rate"}
)
NO_REPORTS_MESSAGE = "Les statistiques ne sont pas disponibles pour votre compte."


@dataclass(frozen=True)
class Scope:
    """The tickets an actor's figures may include: ``clause`` None means all of them."""

    clause: ColumnElement[bool] | None
    role: str
    restricted_to_customers: bool

    def allows(self, report: str) -> bool:
        return self.role not in CLIENT_ROLES or report in CLIENT_SUMMARY_REPORTS


def client_summary_customers(session: Session, actor: dict[str, Any]) -> list[str]:
    """The customers whose summary ``actor`` (a client or reseller) may see; empty if none is enabled."""
    customer_id = actor.get("customer_id")
    if not customer_id:
        return []
    summary = session.get(ClientSummary, customer_id)
    if summary is None or not summary.enabled:
        return []
    customers = [customer_id]
    if actor.get("role") == "reseller":
        customers += session.scalars(
            select(Customer.id).where(Customer.parent_customer_id == customer_id)
        ).all()
    return customers


def scope_for(session: Session, actor: dict[str, Any]) -> Scope:
    """The actor's scope, or PermissionDenied for someone who may see no figures at all."""
    role = actor.get("role")
    if not actor.get("id"):
        raise PermissionDenied(NO_REPORTS_MESSAGE)
    if role in ALL_FIGURES_ROLES:
        return Scope(None, role, False)
    if role == "sales":
        # The ids themselves rather than a subquery: PostgreSQL then reads each customer's rows through the
        # (customer, day) indexes instead of the whole period's.
        managed = session.scalars(select(Customer.id).where(Customer.sales_rep_id == actor["id"])).all()
        return Scope(TicketFact.customer_id.in_(managed), role, True)
    if role in CLIENT_ROLES:
        customers = client_summary_customers(session, actor)
        if customers:
            return Scope(TicketFact.customer_id.in_(customers), role, True)
    raise PermissionDenied(NO_REPORTS_MESSAGE)
