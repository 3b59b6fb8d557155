"""Who may read and change which wiki pages: the one place that decides, for every path.

- Staff who work every customer (``admin``, ``agent``) read and edit every page, general or not.
- A sales rep (``sales``) reads and edits the pages of the customers whose ``sales_rep_id`` is theirs (read model fed
  by crm_sync), and reads the general pages (internal knowledge, no customer's data).
- A customer's own people (``client``, ``reseller`` with that ``customer_id``) read only the pages of their customer
  marked ``visible_to_customer``; they never edit.
A page the caller may not read is answered as missing (no leak of its existence). The history of a page (older
revisions, diffs) is internal: a page may have held internal notes before it was shown to the customer.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import Session

from comptoir_wiki.models import Customer, Page

STAFF_ROLES = frozenset({"admin", "agent"})
CUSTOMER_ROLES = frozenset({"client", "reseller"})


def _valid(actor: dict[str, Any]) -> bool:
    return bool(actor.get("id")) and actor.get("role") in STAFF_ROLES | CUSTOMER_ROLES | {"sales"}


def own_customer_ids(session: Session, actor: dict[str, Any]) -> set[str]:
    """The customers whose sales rep is ``actor``."""
    return set(session.scalars(select(Customer.id).where(Customer.sales_rep_id == actor["id"])))


def visible_pages_clause(session: Session, actor: dict[str, Any]) -> ColumnElement[bool]:
    """A WHERE clause selecting the pages ``actor`` may read."""
    if not _valid(actor):
        return false()
    role = actor["role"]
    if role in STAFF_ROLES:
        return true()
    if role == "sales":
        own = select(Customer.id).where(Customer.sales_rep_id == actor["id"]).scalar_subquery()
        return or_(Page.customer_id.is_(None), Page.customer_id.in_(own))
    if not actor.get("customer_id"):
        return false()
    return and_(Page.customer_id == actor["customer_id"], Page.visible_to_customer.is_(True))


def can_read(session: Session, actor: dict[str, Any], page: Page) -> bool:
    if not _valid(actor):
        return False
    role = actor["role"]
    if role in STAFF_ROLES:
        return True
    if role == "sales":
        return page.customer_id is None or page.customer_id in own_customer_ids(session, actor)
    return (
        bool(actor.get("customer_id"))
        and page.customer_id == actor["customer_id"]
        and page.visible_to_customer
    )


def can_write_for(session: Session, actor: dict[str, Any], customer_id: str | None) -> bool:
    """May ``actor`` create or change pages of ``customer_id`` (None = general pages)?"""
    if not _valid(actor):
        return False
    role = actor["role"]
    if role in STAFF_ROLES:
        return True
    if role == "sales":
        return customer_id is not None and customer_id in own_customer_ids(session, actor)
    return False


def can_browse_customer(session: Session, actor: dict[str, Any], customer_id: str) -> bool:
    """May ``actor`` open the wiki of ``customer_id`` at all (even if it shows no page yet)?"""
    if not _valid(actor):
        return False
    role = actor["role"]
    if role in STAFF_ROLES:
        return True
    if role == "sales":
        return customer_id in own_customer_ids(session, actor)
    return actor.get("customer_id") == customer_id


def can_see_history(actor: dict[str, Any]) -> bool:
    """Older revisions may hold what was written before the page was shown to the customer: staff and sales only."""
    return _valid(actor) and actor["role"] in STAFF_ROLES | {"sales"}
