"""Who may see and change the customer directory: the one place that decides, for every RPC path.

Admins see and change everything; agents see every customer; sales reps see the customers they are the sales rep
of; clients and resellers do not browse the directory (their own company reaches them through other services).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false

from comptoir_crm_sync.models import Customer

READ_ALL_ROLES = frozenset({"admin", "agent"})


def _known(actor: dict[str, Any] | None) -> bool:
    return bool(actor) and bool(actor.get("id")) and actor.get("role") is not None


def can_browse(actor: dict[str, Any]) -> bool:
    return _known(actor) and actor.get("role") in (READ_ALL_ROLES | {"sales"})


def visible_customers_clause(actor: dict[str, Any]) -> ColumnElement[bool] | None:
    """A WHERE clause selecting the customers ``actor`` may see; None means all of them."""
    if not _known(actor):
        return false()
    role = actor.get("role")
    if role in READ_ALL_ROLES:
        return None
    if role == "sales":
        return Customer.sales_rep_id == actor["id"]
    return false()


def can_see(actor: dict[str, Any], customer: Customer) -> bool:
    if not _known(actor):
        return False
    role = actor.get("role")
    if role in READ_ALL_ROLES:
        return True
    return role == "sales" and customer.sales_rep_id == actor["id"]


def can_manage(actor: dict[str, Any]) -> bool:
    """Create, edit, deactivate customers, assign sales reps, run a sync, import Quadra files."""
    return _known(actor) and actor.get("role") == "admin"
