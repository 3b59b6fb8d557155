"""Read models fed by other services' events: customers (crm_sync) and accounts (auth), for labels and scoping."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from comptoir_common.db import utcnow
from comptoir_common.errors import InvalidInput, NotFound, PermissionDenied
from sqlalchemy.orm import Session

from comptoir_reports.models import ClientSummary, Customer, User


def upsert_customer(session: Session, data: dict[str, Any], occurred_at: datetime | None = None) -> None:
    """Apply ``customer.upserted``: name, sales rep and parent of a customer (an older event than the one already
    applied is ignored: events may arrive out of order)."""
    occurred_at = occurred_at or utcnow()
    customer = session.get(Customer, data["id"])
    if customer is None:
        customer = Customer(id=data["id"])
        session.add(customer)
    elif customer.updated_at and customer.updated_at > occurred_at:
        return
    customer.name = (data.get("name") or "")[:300]
    customer.sales_rep_id = data.get("sales_rep_id")
    customer.parent_customer_id = data.get("parent_customer_id")
    customer.active = bool(data.get("active", True))
    customer.updated_at = occurred_at


def deactivate_customer(session: Session, data: dict[str, Any], occurred_at: datetime | None = None) -> None:
    """Apply ``customer.deactivated``: its figures stay, it is only marked inactive."""
    occurred_at = occurred_at or utcnow()
    customer = session.get(Customer, data["id"])
    if customer is not None and not (customer.updated_at and customer.updated_at > occurred_at):
        customer.active = False
        customer.updated_at = occurred_at


def upsert_user(session: Session, data: dict[str, Any]) -> None:
    """Apply ``user.created`` / ``user.updated`` / ``user.deactivated`` / ``user.reactivated``."""
    user = session.get(User, data["id"])
    if user is None:
        user = User(id=data["id"])
        session.add(user)
    for key in ("name", "email", "role", "customer_id"):
        if key in data:
            setattr(user, key, data[key])
    if "active" in data:
        user.active = bool(data["active"])


def set_client_summary(session: Session, *, actor: dict[str, Any], customer_id: str, enabled: bool) -> dict:
    """Let (or stop letting) a customer's clients see their own company's summary figures. Admins only."""
    if actor.get("role") != "admin":
        raise PermissionDenied("Seul un superviseur peut ouvrir les statistiques à un client.")
    if not customer_id or len(customer_id) > 36:
        raise InvalidInput("Client invalide.")
    if session.get(Customer, customer_id) is None and enabled:
        raise NotFound("Client introuvable.")
    summary = session.get(ClientSummary, customer_id)
    if summary is None:
        summary = ClientSummary(customer_id=customer_id)
        session.add(summary)
    summary.enabled = bool(enabled)
    summary.changed_by = actor.get("id")
    summary.changed_at = utcnow()
    session.flush()
    return {"customer_id": customer_id, "enabled": summary.enabled}
