"""The customer directory: upserts from the sources, manual edits by admins, lookups, and the events of each change.

Every change that others must learn about adds ``customer.upserted`` / ``customer.deactivated`` /
``contact.upserted`` / ``contact.removed`` to the outbox in the caller's transaction. An upsert that changes nothing
publishes nothing, so re-running a sync or re-importing a file is silent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from comptoir_common.db import utcnow
from comptoir_common.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from comptoir_common.events import Event, system_actor, user_actor
from comptoir_common.outbox import add_event, add_events
from sqlalchemy import and_, case, false, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from comptoir_crm_sync import policy
from comptoir_crm_sync.models import Contact, ContactEmail, Customer, OutboxMessage, User, new_id

SYSTEM = system_actor("crm_sync")
MAX_PAGE_SIZE = 200
MAX_NAME = 300
# Suggestions a customer picker shows: enough to spot the right one, little enough to send on every keystroke.
PICKER_SIZE = 20
MAX_PICKER_SIZE = 50
EMAIL_RE = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
# Mailbox providers shared by many companies: never a customer's own domain.
PUBLIC_EMAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "hotmail.com",
        "hotmail.fr",
        "outlook.com",
        "outlook.fr",
        "live.fr",
        "live.com",
        "msn.com",
        "yahoo.com",
        "yahoo.fr",
        "orange.fr",
        "wanadoo.fr",
        "free.fr",
        "sfr.fr",
        "neuf.fr",
        "laposte.net",
        "bbox.fr",
        "icloud.com",
        "me.com",
        "aol.com",
        "gmx.fr",
        "protonmail.com",
        "proton.me",
    }
)


# --------------------------------------------------------------------------------------------------- helpers


def fold(text: str | None) -> str:
    """Lower-case without accents: what search compares."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def _like_escaped(text: str) -> str:
    """``text`` for a LIKE pattern with ``escape="\\"``: its own ``%`` and ``_`` match themselves."""
    return text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")


def normalise_email(email: str | None) -> str:
    return (email or "").strip().lower()


def is_valid_email(email: str) -> bool:
    return len(email) <= 320 and bool(EMAIL_RE.match(email))


def split_emails(value: Any) -> list[str]:
    """Addresses from a field that may hold several (separated by spaces, commas, semicolons or new lines)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        parts = [p for item in value for p in split_emails(item)]
    else:
        parts = [p.strip().strip("<>") for p in re.split(r"[\s,;]+", str(value)) if p.strip()]
    seen: list[str] = []
    for part in parts:
        email = normalise_email(part)
        if email and email not in seen:
            seen.append(email)
    return seen


def derive_domains(emails: list[str]) -> list[str]:
    domains: list[str] = []
    for email in emails:
        domain = email.rsplit("@", 1)[-1]
        if "@" in email and domain not in PUBLIC_EMAIL_DOMAINS and domain not in domains:
            domains.append(domain)
    return domains


def _clean(value: Any, limit: int | None = None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if limit is not None and len(text) > limit:
        raise InvalidInput(f"Valeur trop longue ({len(text)} caractères, {limit} au plus) : {text[:40]}…")
    return text


# --------------------------------------------------------------------------------------------------- shapes


@dataclass
class ContactData:
    name: str = ""
    emails: list[str] = field(default_factory=list)
    phone: str | None = None
    role: str | None = None
    external_key: str | None = None

    def key(self) -> str:
        return self.external_key or (self.emails[0] if self.emails else fold(self.name))


@dataclass
class CustomerData:
    """What a source says about one customer, already mapped to directory fields."""

    name: str
    account_number: str | None = None
    addresses: list[dict[str, Any]] = field(default_factory=list)
    phone: str | None = None
    email_domains: list[str] = field(default_factory=list)
    sales_rep_ref: str | None = None
    parent_external_key: str | None = None
    active: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    contacts: list[ContactData] | None = None


def validate_customer_data(data: CustomerData) -> CustomerData:
    """Clean a source's or an admin's data; InvalidInput (French) on what cannot be stored."""
    name = _clean(data.name, MAX_NAME)
    if not name:
        raise InvalidInput("Le nom du client est obligatoire.")
    data.name = name
    data.account_number = _clean(data.account_number, 50)
    data.phone = _clean(data.phone, 50)
    data.sales_rep_ref = _clean(data.sales_rep_ref, 320)
    data.parent_external_key = _clean(data.parent_external_key, 200)
    domains = []
    for domain in data.email_domains or []:
        domain = (domain or "").strip().lower().lstrip("@")
        if not domain:
            continue
        if not re.match(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)+$", domain):
            raise InvalidInput(f"Domaine de messagerie invalide : {domain}")
        if domain not in domains:
            domains.append(domain)
    data.email_domains = domains
    addresses = []
    for address in data.addresses or []:
        cleaned = {k: _clean(v, 300) for k, v in address.items() if _clean(v, 300)}
        if cleaned:
            addresses.append(cleaned)
    data.addresses = addresses
    if data.contacts is not None:
        contacts = []
        keys = set()
        for contact in data.contacts:
            emails = split_emails(contact.emails)
            bad = [e for e in emails if not is_valid_email(e)]
            if bad:
                raise InvalidInput(f"Adresse e-mail invalide : {bad[0]}")
            contact.emails = emails
            contact.name = _clean(contact.name, 200) or (emails[0] if emails else "")
            contact.phone = _clean(contact.phone, 50)
            contact.role = _clean(contact.role, 200)
            contact.external_key = _clean(contact.external_key, 200)
            if not contact.name and not emails:
                continue
            if contact.key() in keys:
                continue
            keys.add(contact.key())
            contacts.append(contact)
        data.contacts = contacts
    return data


def customer_to_dict(customer: Customer) -> dict[str, Any]:
    """The ``customer.upserted`` shape (and the RPC shape, with a few timestamps more)."""
    return {
        "id": customer.id,
        "name": customer.name,
        "source": customer.source,
        "external_key": customer.external_key,
        "account_number": customer.account_number,
        "addresses": list(customer.addresses or []),
        "phone": customer.phone,
        "email_domains": list(customer.email_domains or []),
        "sales_rep_id": customer.sales_rep_id,
        "parent_customer_id": customer.parent_customer_id,
        "active": customer.active,
        "extra": dict(customer.extra or {}),
    }


def customer_details(customer: Customer) -> dict[str, Any]:
    return customer_to_dict(customer) | {
        "sales_rep_ref": customer.sales_rep_ref,
        "last_synced_at": customer.last_synced_at.isoformat() if customer.last_synced_at else None,
        "created_at": customer.created_at.isoformat(),
        "updated_at": customer.updated_at.isoformat(),
        "contacts": [contact_to_dict(contact) for contact in customer.contacts],
    }


def contact_to_dict(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "customer_id": contact.customer_id,
        "name": contact.name,
        "emails": list(contact.emails or []),
        "phone": contact.phone,
        "role": contact.role,
    }


def _emit(session: Session, event_type: str, data: dict, actor: dict) -> None:
    add_event(session, OutboxMessage, Event(type=event_type, actor=actor, data=data))


def _event_actor(actor: dict | None) -> dict:
    if actor and actor.get("kind") == "system":
        return system_actor(actor.get("name") or "crm_sync")
    return user_actor(actor) if actor and actor.get("id") else SYSTEM


# --------------------------------------------------------------------------------------------------- writes

Emit = Callable[[str, dict], None]


def _resolve_sales_reps(session: Session, refs: set[str], match: str = "auto") -> dict[str, str | None]:
    """For each ``ref`` (an email or a full name), the id of the one active sales user it designates (None when
    none or several do). One query for all of them."""
    refs = {ref for ref in refs if ref}
    if not refs:
        return {}

    def by_email(ref: str) -> bool:
        return match == "email" or (match == "auto" and "@" in ref)

    emails = {normalise_email(ref) for ref in refs if by_email(ref)}
    names = {ref.strip().lower() for ref in refs if not by_email(ref)}
    lowered = func.lower(User.name)
    conditions = []
    if emails:
        conditions.append(User.email.in_(emails))
    if names:
        conditions.append(lowered.in_(names))
    rows = session.execute(
        select(User.id, User.email, lowered).where(
            User.active.is_(True), User.role.in_(("sales", "admin")), or_(*conditions)
        )
    ).all()
    found: dict[str, list[str]] = {}
    for user_id, email, name in rows:
        found.setdefault(f"@{email}", []).append(user_id)
        found.setdefault(f"n{name}", []).append(user_id)
    resolved = {}
    for ref in refs:
        ids = found.get(f"@{normalise_email(ref)}" if by_email(ref) else f"n{ref.strip().lower()}", [])
        resolved[ref] = ids[0] if len(ids) == 1 else None
    return resolved


def _resolve_sales_rep(session: Session, ref: str | None, match: str = "auto") -> str | None:
    """The id of the active sales user that ``ref`` (an email or a full name) designates, if exactly one."""
    return _resolve_sales_reps(session, {ref} if ref else set(), match).get(ref) if ref else None


def _set_contacts(customer: Customer, contacts: list[ContactData], emit: Emit) -> bool:
    """Make the customer's contacts equal ``contacts`` (matched on their key); events for what changed.

    Ids are given here (not at flush), so nothing is flushed: a page of a sync writes everything at once."""
    existing = {contact.external_key or contact.id: contact for contact in customer.contacts}
    wanted_keys = set()
    changed = False
    now = utcnow()
    for data in contacts:
        key = data.key()
        wanted_keys.add(key)
        contact = existing.get(key)
        values = {"name": data.name, "emails": data.emails, "phone": data.phone, "role": data.role}
        if contact is None:
            contact = Contact(
                id=new_id(),
                customer_id=customer.id,
                external_key=key,
                created_at=now,
                updated_at=now,
                **values,
            )
            customer.contacts.append(contact)
        elif all(getattr(contact, k) == v for k, v in values.items()):
            continue
        else:
            for k, v in values.items():
                setattr(contact, k, v)
            contact.updated_at = now
        contact.email_rows = [ContactEmail(email=email) for email in data.emails]
        emit("contact.upserted", contact_to_dict(contact))
        changed = True
    for key, contact in existing.items():
        if key not in wanted_keys:
            customer.contacts.remove(contact)
            emit("contact.removed", {"id": contact.id, "customer_id": customer.id})
            changed = True
    return changed


def _session_emitter(session: Session, actor: dict) -> Emit:
    return lambda event_type, data: _emit(session, event_type, data, actor)


@dataclass
class SourceItem:
    """One customer as a source says it is, for :func:`upsert_many_from_source`."""

    external_key: str
    data: CustomerData
    record_id: str | None = None
    mod_id: str | None = None


@dataclass
class UpsertResult:
    outcome: str  # created, updated, unchanged, rejected
    customer_id: str | None = None
    # The customer when it was written (created or updated, or unchanged after comparison); None otherwise.
    customer: Customer | None = None
    error: InvalidInput | None = None


def _creation_order(created: list[Customer]) -> list[Customer]:
    """New customers with the resellers before their end-customers, so that one INSERT never points forward."""
    by_key = {customer.external_key: customer for customer in created}

    def depth(customer: Customer) -> int:
        seen = set()
        level, current = 0, customer
        while current.parent_external_key in by_key and current.external_key not in seen:
            seen.add(current.external_key)
            current = by_key[current.parent_external_key]
            level += 1
        return level

    return sorted(created, key=depth)


def upsert_many_from_source(
    session: Session,
    *,
    source: str,
    items: list[SourceItem],
    sales_rep_match: str = "auto",
    actor: dict | None = None,
    touch: bool = True,
) -> list[UpsertResult]:
    """Create or update the customers ``(source, item.external_key)`` of a whole batch (a sync page, an import
    batch) in a few statements; one :class:`UpsertResult` per item, in order.

    The same rules as one at a time: a FileMaker row whose ``modId`` (and record id) is the one already applied is
    ``unchanged`` without further work (``touch``: its ``last_synced_at`` is stamped, one UPDATE for all); bad
    data is ``rejected`` (InvalidInput in ``error``) and nothing of it is applied; a change publishes
    ``customer.upserted`` (and ``customer.deactivated``), then its contacts' events; end-customers waiting for a new
    reseller are attached to it (and published). Reads: one query for the keys' modIds, one for the customers that
    may change (with their contacts), one each for sales reps and resellers; then one flush, and the events added
    to the outbox in one statement.
    """
    event_actor = actor or SYSTEM
    now = utcnow()
    results: list[UpsertResult | None] = [None] * len(items)
    keys: list[str | None] = []
    for index, item in enumerate(items):
        try:
            key = _clean(item.external_key, 200)
            if not key:
                raise InvalidInput("Clé du client absente.")
            if key in keys:
                raise InvalidInput(f"Clé « {key} » en double.")
            keys.append(key)
        except InvalidInput as exc:
            keys.append(None)
            results[index] = UpsertResult("rejected", error=exc)
    versions = {
        row.external_key: row
        for row in session.execute(
            select(
                Customer.external_key,
                Customer.id,
                Customer.source_mod_id,
                Customer.source_record_id,
                Customer.active,
            ).where(Customer.source == source, Customer.external_key.in_([k for k in keys if k]))
        )
    }
    # Which items change something (the others are unchanged by modId, or rejected).
    work: list[tuple[int, str, CustomerData]] = []
    unchanged: list[str] = []
    for index, (item, key) in enumerate(zip(items, keys, strict=True)):
        if key is None:
            continue
        row = versions.get(key)
        if (
            row is not None
            and item.mod_id is not None
            and row.source_mod_id == item.mod_id
            and row.source_record_id == item.record_id
            and row.active == item.data.active
        ):
            results[index] = UpsertResult("unchanged", row.id)
            unchanged.append(row.id)
            continue
        try:
            data = validate_customer_data(item.data)
        except InvalidInput as exc:
            results[index] = UpsertResult("rejected", error=exc)
            continue
        work.append((index, key, data))
    if touch and unchanged:
        session.execute(update(Customer).where(Customer.id.in_(unchanged)).values(last_synced_at=now))
    if not work:
        return results  # type: ignore[return-value]
    to_load = [versions[key].id for _, key, _ in work if key in versions]
    existing = (
        {
            customer.external_key: customer
            for customer in session.scalars(
                select(Customer)
                .where(Customer.id.in_(to_load))
                .options(selectinload(Customer.contacts).selectinload(Contact.email_rows))
            )
        }
        if to_load
        else {}
    )
    reps = _resolve_sales_reps(session, {data.sales_rep_ref for _, _, data in work}, sales_rep_match)
    parent_keys = {data.parent_external_key for _, _, data in work if data.parent_external_key}
    parents = (
        dict(
            session.execute(
                select(Customer.external_key, Customer.id).where(
                    Customer.source == source, Customer.external_key.in_(parent_keys)
                )
            ).all()
        )
        if parent_keys
        else {}
    )
    befores: dict[int, dict | None] = {}
    created: list[Customer] = []
    for index, key, _data in work:
        customer = existing.get(key)
        if customer is None:
            customer = Customer(
                id=new_id(), source=source, external_key=key, created_at=now, updated_at=now, contacts=[]
            )
            created.append(customer)
            befores[index] = None
        else:
            befores[index] = customer_to_dict(customer)
        parents[key] = customer.id
        results[index] = UpsertResult(
            "created" if befores[index] is None else "updated", customer.id, customer
        )
    for index, _key, data in work:
        customer = results[index].customer
        customer.name = data.name
        customer.search_name = fold(data.name)
        customer.account_number = data.account_number
        customer.addresses = data.addresses
        customer.phone = data.phone
        emails = [email for contact in (data.contacts or []) for email in contact.emails]
        customer.email_domains = data.email_domains or derive_domains(emails)
        customer.sales_rep_ref = data.sales_rep_ref
        rep = reps.get(data.sales_rep_ref) if data.sales_rep_ref else None
        if rep:
            customer.sales_rep_id = rep
        customer.parent_external_key = data.parent_external_key
        if data.parent_external_key:
            parent_id = parents.get(data.parent_external_key)
            if parent_id and parent_id != customer.id:
                customer.parent_customer_id = parent_id
        elif source != "manual":
            customer.parent_customer_id = None
        customer.active = data.active
        customer.extra = data.extra
        customer.source_record_id = items[index].record_id
        customer.source_mod_id = items[index].mod_id
        customer.last_synced_at = now
    session.add_all(_creation_order(created))
    events: list[Event] = []

    def emit(event_type: str, data: dict) -> None:
        events.append(Event(type=event_type, actor=event_actor, data=data))

    for index, _key, data in work:
        customer = results[index].customer
        before = befores[index]
        after = customer_to_dict(customer)
        # The customer's event first, then its contacts': a read model meets the company before its people.
        if before is None or after != before:
            customer.updated_at = now
            emit("customer.upserted", after)
            if before is not None and before["active"] and not after["active"]:
                emit("customer.deactivated", {"id": customer.id})
        contacts_changed = data.contacts is not None and _set_contacts(customer, data.contacts, emit)
        if before is not None and after == before and not contacts_changed:
            results[index].outcome = "unchanged"
    if created:
        # End-customers stored before their reseller: attach them now (those of this batch already are).
        written = {results[index].customer_id for index, *_ in work}
        new_parents = {customer.external_key: customer.id for customer in created}
        for child in session.scalars(
            select(Customer).where(
                Customer.source == source, Customer.parent_external_key.in_(list(new_parents))
            )
        ):
            parent_id = new_parents[child.parent_external_key]
            if child.id in written or child.parent_customer_id == parent_id:
                continue
            child.parent_customer_id = parent_id
            child.updated_at = now
            emit("customer.upserted", customer_to_dict(child))
    session.flush()
    add_events(session, OutboxMessage, events)
    return results  # type: ignore[return-value]


def upsert_from_source(
    session: Session,
    *,
    source: str,
    external_key: str,
    data: CustomerData,
    record_id: str | None = None,
    mod_id: str | None = None,
    sales_rep_match: str = "auto",
    actor: dict | None = None,
) -> tuple[str, Customer]:
    """One customer through :func:`upsert_many_from_source`; returns ``(outcome, customer)``.

    ``outcome`` is ``created``, ``updated`` or ``unchanged``. Raises InvalidInput on bad data (nothing applied).
    """
    [result] = upsert_many_from_source(
        session,
        source=source,
        items=[SourceItem(external_key, data, record_id, mod_id)],
        sales_rep_match=sales_rep_match,
        actor=actor,
    )
    if result.error is not None:
        raise result.error
    return result.outcome, result.customer or session.get(Customer, result.customer_id)


def deactivate(session: Session, customer: Customer, actor: dict | None = None) -> bool:
    """Mark inactive (never deleted: tickets keep pointing at it). False if it already was."""
    if not customer.active:
        return False
    customer.active = False
    customer.updated_at = utcnow()
    event_actor = _event_actor(actor)
    _emit(session, "customer.upserted", customer_to_dict(customer), event_actor)
    _emit(session, "customer.deactivated", {"id": customer.id}, event_actor)
    return True


def deactivate_missing(
    session: Session, *, source: str, present_keys: set[str], actor: dict | None = None
) -> list[str]:
    """Deactivate the active customers of ``source`` whose key is not in ``present_keys``; their ids."""
    gone = session.scalars(select(Customer).where(Customer.source == source, Customer.active.is_(True))).all()
    ids = []
    for customer in gone:
        if customer.external_key not in present_keys and deactivate(session, customer, actor):
            ids.append(customer.id)
    return ids


# --------------------------------------------------------------------------------------------------- admins


def _require_manager(actor: dict) -> None:
    if not policy.can_manage(actor):
        raise PermissionDenied("Seuls les superviseurs peuvent modifier l'annuaire des clients.")


def _load(session: Session, customer_id: str) -> Customer | None:
    if not isinstance(customer_id, str) or len(customer_id) > 36:
        return None
    return session.scalar(
        select(Customer).where(Customer.id == customer_id).options(selectinload(Customer.contacts))
    )


def _parse_form(payload: dict[str, Any]) -> CustomerData:
    if not isinstance(payload, dict):
        raise InvalidInput("Données du client invalides.")
    contacts = None
    if "contacts" in payload and payload["contacts"] is not None:
        if not isinstance(payload["contacts"], list):
            raise InvalidInput("La liste des contacts est invalide.")
        contacts = []
        for item in payload["contacts"]:
            if not isinstance(item, dict):
                raise InvalidInput("Un contact est invalide.")
            contacts.append(
                ContactData(
                    name=item.get("name") or "",
                    emails=split_emails(item.get("emails") or item.get("email")),
                    phone=item.get("phone"),
                    role=item.get("role"),
                    external_key=item.get("id"),
                )
            )
    domains = payload.get("email_domains") or []
    if isinstance(domains, str):
        domains = [d for d in re.split(r"[\s,;]+", domains) if d]
    addresses = payload.get("addresses") or []
    if not isinstance(addresses, list) or not all(isinstance(a, dict) for a in addresses):
        raise InvalidInput("Les adresses sont invalides.")
    return CustomerData(
        name=payload.get("name") or "",
        account_number=payload.get("account_number"),
        addresses=addresses,
        phone=payload.get("phone"),
        email_domains=list(domains),
        contacts=contacts,
    )


def _check_parent(session: Session, customer_id: str | None, parent_id: str | None) -> str | None:
    if not parent_id:
        return None
    if parent_id == customer_id:
        raise InvalidInput("Un client ne peut pas être son propre revendeur.")
    parent = _load(session, parent_id)
    if parent is None:
        raise InvalidInput("Revendeur introuvable.")
    return parent.id


def create_customer(
    session: Session, *, actor: dict, payload: dict[str, Any], customer_id: str | None = None
) -> Customer:
    """An admin adds a customer by hand (source ``manual``); ``customer_id`` is for seeding a known id."""
    _require_manager(actor)
    data = validate_customer_data(_parse_form(payload))
    now = utcnow()
    customer = Customer(
        id=customer_id or new_id(),
        source="manual",
        external_key=None,
        name=data.name,
        search_name=fold(data.name),
        account_number=data.account_number,
        addresses=data.addresses,
        phone=data.phone,
        email_domains=data.email_domains
        or derive_domains([e for c in (data.contacts or []) for e in c.emails]),
        parent_customer_id=_check_parent(session, None, payload.get("parent_customer_id")),
        sales_rep_id=_check_sales_rep(session, payload.get("sales_rep_id")),
        extra={},
        active=True,
        created_at=now,
        updated_at=now,
        contacts=[],
    )
    session.add(customer)
    session.flush()
    event_actor = _event_actor(actor)
    _emit(session, "customer.upserted", customer_to_dict(customer), event_actor)
    _set_contacts(customer, data.contacts or [], _session_emitter(session, event_actor))
    return customer


def update_customer(session: Session, *, actor: dict, customer_id: str, payload: dict[str, Any]) -> Customer:
    """An admin edits a customer entered by hand (synchronised ones are edited in their source)."""
    _require_manager(actor)
    customer = _load(session, customer_id)
    if customer is None:
        raise NotFound("Client introuvable.")
    if customer.source != "manual":
        raise Conflict(
            f"Ce client vient de {customer.source.capitalize()} : modifiez-le dans sa source, "
            "la synchronisation l'écraserait."
        )
    data = validate_customer_data(_parse_form(payload))
    before = customer_to_dict(customer)
    customer.name = data.name
    customer.search_name = fold(data.name)
    customer.account_number = data.account_number
    customer.addresses = data.addresses
    customer.phone = data.phone
    customer.email_domains = data.email_domains
    if "parent_customer_id" in payload:
        customer.parent_customer_id = _check_parent(session, customer.id, payload.get("parent_customer_id"))
    event_actor = _event_actor(actor)
    session.flush()
    if customer_to_dict(customer) != before:
        customer.updated_at = utcnow()
        _emit(session, "customer.upserted", customer_to_dict(customer), event_actor)
    if data.contacts is not None:
        _set_contacts(customer, data.contacts, _session_emitter(session, event_actor))
    return customer


def _check_sales_rep(session: Session, sales_rep_id: str | None) -> str | None:
    if not sales_rep_id:
        return None
    user = (
        session.get(User, sales_rep_id) if isinstance(sales_rep_id, str) and len(sales_rep_id) <= 36 else None
    )
    if user is None or not user.active or user.role not in ("sales", "admin"):
        raise InvalidInput("Ce commercial est inconnu ou inactif.")
    return user.id


def assign_sales_rep(
    session: Session, *, actor: dict, customer_id: str, sales_rep_id: str | None
) -> Customer:
    _require_manager(actor)
    customer = _load(session, customer_id)
    if customer is None:
        raise NotFound("Client introuvable.")
    rep = _check_sales_rep(session, sales_rep_id)
    if customer.sales_rep_id != rep:
        customer.sales_rep_id = rep
        customer.updated_at = utcnow()
        session.flush()
        _emit(session, "customer.upserted", customer_to_dict(customer), _event_actor(actor))
    return customer


def set_active(session: Session, *, actor: dict, customer_id: str, active: bool) -> Customer:
    _require_manager(actor)
    customer = _load(session, customer_id)
    if customer is None:
        raise NotFound("Client introuvable.")
    if not active:
        deactivate(session, customer, actor)
    elif not customer.active:
        customer.active = True
        customer.updated_at = utcnow()
        session.flush()
        _emit(session, "customer.upserted", customer_to_dict(customer), _event_actor(actor))
    return customer


# --------------------------------------------------------------------------------------------------- reads


def get_customer(session: Session, customer_id: str) -> dict[str, Any]:
    """Service-to-service lookup (no actor): the customer with its contacts."""
    customer = _load(session, customer_id)
    if customer is None:
        raise NotFound("Client introuvable.")
    return customer_details(customer)


MAX_EMAILS_PER_LOOKUP = 1000


def find_by_email(session: Session, email: str) -> dict[str, Any] | None:
    """``{contact, customer}`` owning ``email`` (case-insensitive), active customers first; None if nobody."""
    address = normalise_email(email)
    return find_by_emails(session, [address]).get(address) if address else None


def find_by_emails(session: Session, emails: list[str]) -> dict[str, dict[str, Any]]:
    """:func:`find_by_email` for many addresses in one query (an import's requesters): ``{address: {contact,
    customer}}`` for the addresses (normalised) someone owns."""
    if not isinstance(emails, list) or len(emails) > MAX_EMAILS_PER_LOOKUP:
        raise InvalidInput(f"Une liste d'au plus {MAX_EMAILS_PER_LOOKUP} adresses est attendue.")
    addresses = {normalise_email(e) for e in emails if isinstance(e, str)} - {""}
    if not addresses:
        return {}
    rows = session.execute(
        select(ContactEmail.email, Contact, Customer)
        .join(Contact, ContactEmail.contact_id == Contact.id)
        .join(Customer, Customer.id == Contact.customer_id)
        .where(ContactEmail.email.in_(addresses))
        .order_by(ContactEmail.email, Customer.active.desc(), Customer.updated_at.desc())
    ).all()
    found: dict[str, dict[str, Any]] = {}
    for address, contact, customer in rows:
        if address not in found:
            found[address] = {"contact": contact_to_dict(contact), "customer": customer_to_dict(customer)}
    return found


def show_customer(session: Session, *, actor: dict, customer_id: str) -> dict[str, Any]:
    """The customer page: details, contacts, users, parent and end-customers — if ``actor`` may see it."""
    customer = _load(session, customer_id)
    if customer is None or not policy.can_see(actor, customer):
        raise NotFound("Client introuvable.")
    details = customer_details(customer)
    rep = session.get(User, customer.sales_rep_id) if customer.sales_rep_id else None
    details["sales_rep"] = {"id": rep.id, "name": rep.name, "email": rep.email} if rep else None
    parent = session.get(Customer, customer.parent_customer_id) if customer.parent_customer_id else None
    details["parent"] = {"id": parent.id, "name": parent.name} if parent else None
    details["children"] = [
        {"id": c.id, "name": c.name, "active": c.active}
        for c in session.scalars(
            select(Customer).where(Customer.parent_customer_id == customer.id).order_by(Customer.search_name)
        )
    ]
    details["users"] = [
        {"id": u.id, "name": u.name, "email": u.email, "role": u.role, "active": u.active}
        for u in session.scalars(select(User).where(User.customer_id == customer.id).order_by(User.name))
    ]
    details["editable"] = policy.can_manage(actor) and customer.source == "manual"
    details["manageable"] = policy.can_manage(actor)
    return details


def list_customers(
    session: Session,
    *,
    actor: dict,
    search: str | None = None,
    source: str | None = None,
    active: bool | None = None,
    sales_rep_id: str | None = None,
    parent_customer_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """Customers ``actor`` may see, filtered, by name; ``{items, total, limit, offset}``."""
    if not policy.can_browse(actor):
        raise PermissionDenied("Vous n'avez pas accès à l'annuaire des clients.")
    try:
        limit = max(1, min(int(limit), MAX_PAGE_SIZE))
        offset = max(0, int(offset))
    except (TypeError, ValueError) as exc:
        raise InvalidInput("Pagination invalide.") from exc
    conditions = []
    visible = policy.visible_customers_clause(actor)
    if visible is not None:
        conditions.append(visible)
    if source:
        if source not in ("filemaker", "quadra", "manual"):
            raise InvalidInput("Source inconnue.")
        conditions.append(Customer.source == source)
    if active is not None:
        conditions.append(Customer.active.is_(bool(active)))
    if sales_rep_id:
        conditions.append(Customer.sales_rep_id == sales_rep_id)
    if parent_customer_id:
        conditions.append(Customer.parent_customer_id == parent_customer_id)
    if search and search.strip():
        term = search.strip()
        folded = _like_escaped(fold(term))
        email_match = (
            select(Contact.customer_id)
            .join(ContactEmail)
            .where(ContactEmail.email.like(f"%{normalise_email(term)}%"))
        )
        conditions.append(
            or_(
                Customer.search_name.like(f"%{folded}%", escape="\\"),
                Customer.account_number == term,
                Customer.external_key == term,
                Customer.id.in_(email_match),
            )
        )
    where = and_(*conditions) if conditions else None
    query = select(Customer)
    count = select(func.count()).select_from(Customer)
    if where is not None:
        query = query.where(where)
        count = count.where(where)
    total = session.scalar(count) or 0
    rows = session.scalars(
        query.order_by(Customer.search_name, Customer.id).limit(limit).offset(offset)
    ).all()
    reps = {
        u.id: u.name
        for u in session.scalars(
            select(User).where(User.id.in_({c.sales_rep_id for c in rows if c.sales_rep_id}))
        )
    }
    items = [
        customer_to_dict(c)
        | {
            "sales_rep_name": reps.get(c.sales_rep_id),
            "last_synced_at": c.last_synced_at.isoformat() if c.last_synced_at else None,
        }
        for c in rows
    ]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def search_customers(
    session: Session, *, actor: dict, query: str = "", limit: int = PICKER_SIZE
) -> list[dict[str, Any]]:
    """A customer picker's suggestions: active customers ``actor`` may see whose name contains ``query`` (case and
    accents ignored) or whose account number starts with it; ``[{id, name, account_number, city, exact}]``.

    Exact matches (the whole name or account number) come first, then names starting with the text, then names with a
    word starting with it, then the rest, each by name. An empty query lists the first customers by name."""
    if not policy.can_browse(actor):
        raise PermissionDenied("Vous n'avez pas accès à l'annuaire des clients.")
    try:
        limit = max(1, min(int(limit), MAX_PICKER_SIZE))
    except (TypeError, ValueError) as exc:
        raise InvalidInput("Nombre de suggestions invalide.") from exc
    conditions = [Customer.active.is_(True)]
    visible = policy.visible_customers_clause(actor)
    if visible is not None:
        conditions.append(visible)
    term = (query or "").strip()[:MAX_NAME]
    folded = fold(term)
    number = func.lower(Customer.account_number)
    exact = or_(Customer.search_name == folded, number == term.lower()) if folded else false()
    order: list[Any] = [Customer.search_name, Customer.id]
    if folded:
        pattern = _like_escaped(folded)
        number_prefix = number.like(_like_escaped(term.lower()) + "%", escape="\\")
        conditions.append(or_(Customer.search_name.like(f"%{pattern}%", escape="\\"), number_prefix))
        starts = or_(Customer.search_name.like(f"{pattern}%", escape="\\"), number_prefix)
        word_starts = Customer.search_name.like(f"% {pattern}%", escape="\\")
        order.insert(0, case((exact, 0), (starts, 1), (word_starts, 2), else_=3))
    rows = session.execute(
        select(Customer.id, Customer.name, Customer.account_number, Customer.addresses, exact.label("exact"))
        .where(*conditions)
        .order_by(*order)
        .limit(limit)
    ).all()
    return [
        {
            "id": row.id,
            "name": row.name,
            "account_number": row.account_number,
            "city": next((a.get("city") for a in row.addresses or [] if a.get("city")), None),
            "exact": bool(row.exact),
        }
        for row in rows
    ]


def list_sales_reps(session: Session, *, actor: dict) -> list[dict[str, Any]]:
    if not policy.can_browse(actor):
        raise PermissionDenied("Vous n'avez pas accès à l'annuaire des clients.")
    return [
        {"id": u.id, "name": u.name, "email": u.email}
        for u in session.scalars(
            select(User).where(User.role == "sales", User.active.is_(True)).order_by(User.name)
        )
    ]


def republish_all(session: Session, batch_size: int = 500) -> dict[str, int]:
    """Queue ``customer.upserted`` for every customer and ``contact.upserted`` for every contact, so that a
    consumer can rebuild its read model from scratch (deactivated customers come with ``active: false``)."""
    customers = contacts = 0
    for customer in session.scalars(
        select(Customer).order_by(Customer.created_at, Customer.id).options(selectinload(Customer.contacts))
    ).yield_per(batch_size):
        _emit(session, "customer.upserted", customer_to_dict(customer), SYSTEM)
        customers += 1
        for contact in customer.contacts:
            _emit(session, "contact.upserted", contact_to_dict(contact), SYSTEM)
            contacts += 1
    return {"customers": customers, "contacts": contacts}


# --------------------------------------------------------------------------------------------------- users


def apply_user(session: Session, data: dict[str, Any]) -> User:
    """Keep the users read model (auth's ``user.*`` events) and resolve sales reps that were waiting for it."""
    user = session.get(User, data["id"])
    if user is None:
        user = User(id=data["id"])
        session.add(user)
    user.email = normalise_email(data.get("email"))
    user.name = data.get("name") or ""
    user.role = data.get("role") or ""
    user.customer_id = data.get("customer_id")
    user.active = bool(data.get("active", True))
    user.updated_at = utcnow()
    session.flush()
    if user.active and user.role in ("sales", "admin"):
        waiting = session.scalars(
            select(Customer).where(
                Customer.sales_rep_id.is_(None),
                or_(
                    Customer.sales_rep_ref == user.email,
                    func.lower(Customer.sales_rep_ref) == user.name.lower(),
                ),
            )
        ).all()
        for customer in waiting:
            if _resolve_sales_rep(session, customer.sales_rep_ref) == user.id:
                customer.sales_rep_id = user.id
                customer.updated_at = utcnow()
                session.flush()
                _emit(session, "customer.upserted", customer_to_dict(customer), SYSTEM)
    return user
