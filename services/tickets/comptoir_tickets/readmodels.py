"""The tickets service's own copies of customers (from crm_sync) and users (from auth), fed by their events.

Handlers upsert, so a redelivered or replayed event is harmless; an event older than the row's last update is
ignored, so out-of-order delivery cannot bring back stale data.
"""

from __future__ import annotations

from typing import Any

from comptoir_common.events import Event
from sqlalchemy import update
from sqlalchemy.orm import Session

from comptoir_tickets.models import Customer, Ticket, User


def _stale(row: Any, event: Event) -> bool:
    return row is not None and row.updated_at is not None and row.updated_at > event.occurred_at


def upsert_customer(session: Session, event: Event) -> None:
    """``customer.upserted``: name, sales rep, parent (reseller) and active flag; ticket rows keep the name."""
    data = event.data
    customer = session.get(Customer, data["id"])
    if _stale(customer, event):
        return
    name = (data.get("name") or "")[:300]
    if customer is None:
        customer = Customer(id=data["id"])
        session.add(customer)
    elif customer.name != name:
        session.execute(update(Ticket).where(Ticket.customer_id == customer.id).values(customer_name=name))
    customer.name = name
    customer.sales_rep_id = data.get("sales_rep_id")
    customer.parent_customer_id = data.get("parent_customer_id")
    customer.active = bool(data.get("active", True))
    customer.updated_at = event.occurred_at


def deactivate_customer(session: Session, event: Event) -> None:
    """``customer.deactivated``: kept (its tickets stay), marked inactive."""
    customer = session.get(Customer, event.data["id"])
    if customer is None:
        customer = Customer(id=event.data["id"], name="")
        session.add(customer)
    elif _stale(customer, event):
        return
    customer.active = False
    customer.updated_at = event.occurred_at


def upsert_user(session: Session, event: Event, *, active: bool | None = None) -> None:
    """``user.created`` / ``user.updated`` / ``user.deactivated`` / ``user.reactivated``."""
    data = event.data
    user = session.get(User, data["id"])
    if _stale(user, event):
        return
    if user is None:
        user = User(id=data["id"])
        session.add(user)
    user.name = (data.get("name") or data.get("email") or "")[:200]
    user.email = data.get("email")
    user.role = data.get("role") or user.role or "client"
    user.customer_id = data.get("customer_id")
    user.active = bool(data.get("active", True)) if active is None else active
    user.updated_at = event.occurred_at


def list_staff(session: Session) -> list[dict[str, Any]]:
    """Active admins and agents (who can be assigned)."""
    from sqlalchemy import select

    users = session.scalars(
        select(User).where(User.active.is_(True), User.role.in_(("admin", "agent"))).order_by(User.name)
    )
    return [{"id": u.id, "name": u.name, "role": u.role} for u in users]


def list_customers(session: Session, actor: dict[str, Any]) -> list[dict[str, Any]]:
    """Customers a staff member may pick on a ticket (sales: their own)."""
    from sqlalchemy import select

    role = actor.get("role")
    # Two columns rather than whole rows: agents pick among thousands of customers.
    query = select(Customer.id, Customer.name).where(Customer.active.is_(True)).order_by(Customer.name)
    if role == "sales":
        query = query.where(Customer.sales_rep_id == actor.get("id"))
    elif role == "reseller" and actor.get("customer_id"):
        query = query.where(
            (Customer.id == actor["customer_id"]) | (Customer.parent_customer_id == actor["customer_id"])
        )
    elif role not in ("admin", "agent"):
        return []
    return [{"id": row.id, "name": row.name} for row in session.execute(query.limit(5000))]
