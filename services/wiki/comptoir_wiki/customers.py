"""Read model of the customer directory, fed by crm_sync events (``customer.upserted``, ``customer.deactivated``).

The wiki needs a customer's name (to show it) and its sales rep (who may read its pages). Events may arrive late or
twice: a row keeps the ``occurred_at`` of the event that last wrote it, and an older event changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from comptoir_wiki import policy
from comptoir_wiki.models import Customer, Page


def apply_customer_upserted(session: Session, data: dict[str, Any], occurred_at: datetime) -> None:
    """Create or update the customer from a ``customer.upserted`` event's ``data``."""
    customer = session.get(Customer, data["id"])
    if customer is None:
        customer = Customer(id=data["id"])
        session.add(customer)
    elif customer.source_updated_at > occurred_at:
        return
    customer.name = (data.get("name") or "")[:300]
    customer.sales_rep_id = data.get("sales_rep_id")
    customer.parent_customer_id = data.get("parent_customer_id")
    customer.active = bool(data.get("active", True))
    customer.source_updated_at = occurred_at


def apply_customer_deactivated(session: Session, data: dict[str, Any], occurred_at: datetime) -> None:
    customer = session.get(Customer, data["id"])
    if customer is None:
        session.add(Customer(id=data["id"], active=False, source_updated_at=occurred_at))
    elif customer.source_updated_at <= occurred_at:
        customer.active = False
        customer.source_updated_at = occurred_at


def customer_names(session: Session, customer_ids: set[str]) -> dict[str, str]:
    ids = {customer_id for customer_id in customer_ids if customer_id}
    if not ids:
        return {}
    rows = session.execute(select(Customer.id, Customer.name).where(Customer.id.in_(ids)))
    return {customer_id: name for customer_id, name in rows if name}


def list_customers(
    session: Session, *, actor: dict[str, Any], query: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The customers whose wiki ``actor`` may open, with how many pages of each they can read.

    Staff see the customers that have pages, or with ``query`` the customers whose name contains it (the directory
    holds thousands: it is never listed whole).
    """
    counts = dict(
        session.execute(
            select(Page.customer_id, func.count())
            .where(Page.customer_id.is_not(None), policy.visible_pages_clause(session, actor))
            .group_by(Page.customer_id)
        ).all()
    )
    role = actor.get("role")
    text = " ".join((query or "").split()).lower()
    if role in policy.STAFF_ROLES:
        if text:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            ids = set(
                session.scalars(
                    select(Customer.id)
                    .where(Customer.active.is_(True), func.lower(Customer.name).like(pattern, escape="\\"))
                    .order_by(Customer.name)
                    .limit(max(1, min(int(limit), 500)))
                )
            )
        else:
            ids = set(counts)
    elif role == "sales":
        ids = policy.own_customer_ids(session, actor)
    elif role in policy.CUSTOMER_ROLES and actor.get("customer_id"):
        ids = {actor["customer_id"]}
    else:
        ids = set()
    names = customer_names(session, ids)
    items = [
        {
            "id": customer_id,
            "name": names.get(customer_id) or customer_id,
            "page_count": counts.get(customer_id, 0),
        }
        for customer_id in ids
    ]
    return sorted(items, key=lambda item: (item["name"].casefold(), item["id"]))
