"""Who sent a mail: the read models of accounts (auth events) and customer contacts (crm_sync events).

Looked up case-insensitively. An active account wins (staff address → staff reply; client account → that client
and their company); then a customer contact; otherwise the sender is *non identifié* and the ticket waits in triage.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from comptoir_mail_ingest.models import ContactAddress, KnownUser

STAFF_ROLES = frozenset({"admin", "agent", "sales"})


def describe(email: str, name: str, user: KnownUser | None, contact: ContactAddress | None) -> dict[str, Any]:
    """The sender as the tickets service takes it, from what the read models know of ``email``."""
    if user is not None:
        return {
            "kind": "staff" if user.role in STAFF_ROLES else "user",
            "email": email,
            "name": user.name or name,
            "user_id": user.id,
            "role": user.role,
            "customer_id": user.customer_id,
        }
    if contact is not None:
        return {
            "kind": "contact",
            "email": email,
            "name": contact.name or name,
            "contact_id": contact.contact_id,
            "role": "contact",
            "customer_id": contact.customer_id,
        }
    return {"kind": "unknown", "email": email, "name": name, "role": "unknown", "customer_id": None}


def lookup(session: Session, emails: set[str]) -> tuple[dict[str, KnownUser], dict[str, ContactAddress]]:
    """Accounts and contacts of many addresses in two queries (a batch of mail at once)."""
    emails = {(email or "").strip().lower() for email in emails if email}
    if not emails:
        return {}, {}
    users: dict[str, KnownUser] = {}
    for user in session.scalars(
        select(KnownUser)
        .where(KnownUser.email.in_(emails), KnownUser.active.is_(True))
        .order_by(KnownUser.id)
    ):
        users.setdefault(user.email, user)
    contacts: dict[str, ContactAddress] = {}
    for contact in session.scalars(
        select(ContactAddress).where(ContactAddress.email.in_(emails)).order_by(ContactAddress.contact_id)
    ):
        contacts.setdefault(contact.email, contact)
    return users, contacts


def identify(session: Session, email: str, name: str = "") -> dict[str, Any]:
    email = (email or "").strip().lower()
    users, contacts = lookup(session, {email})
    return describe(email, name, users.get(email), contacts.get(email))


def apply_user_event(session: Session, data: dict[str, Any]) -> None:
    """user.created / updated / deactivated / reactivated: the account's current state."""
    user = session.get(KnownUser, data["id"])
    if user is None:
        user = KnownUser(id=data["id"])
        session.add(user)
    user.email = (data.get("email") or "").strip().lower()
    user.name = data.get("name")
    user.role = data.get("role") or "client"
    user.customer_id = data.get("customer_id")
    user.active = bool(data.get("active", True))


def apply_contact_upserted(session: Session, data: dict[str, Any]) -> None:
    session.execute(delete(ContactAddress).where(ContactAddress.contact_id == data["id"]))
    session.flush()
    for email in {(e or "").strip().lower() for e in data.get("emails") or []}:
        if "@" in email:
            session.add(
                ContactAddress(
                    email=email,
                    contact_id=data["id"],
                    customer_id=data.get("customer_id"),
                    name=data.get("name"),
                    extra={"role": data.get("role"), "phone": data.get("phone")},
                )
            )


def apply_contact_removed(session: Session, data: dict[str, Any]) -> None:
    session.execute(delete(ContactAddress).where(ContactAddress.contact_id == data["id"]))
