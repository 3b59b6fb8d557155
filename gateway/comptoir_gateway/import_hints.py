"""What crm_sync knows about an import batch's requesters (contacts by email) and customers (by external key).

crm_sync is optional for an import: when it is not running (no queue, no answer), the batch goes on without hints and
the tickets service matches on its own read models only (customers by name, users by email); the answer says
``crm_available: false`` so that the report tells the admin. Answers are cached in the process for a while: an export
names the same requesters and customers over and over.
"""

from __future__ import annotations

import time
import unicodedata
from typing import Any

from fastapi import HTTPException

from comptoir_gateway.rpc import Services

CACHE_SECONDS = 600.0
CACHE_SIZE = 50_000
EMAILS_PER_LOOKUP = 500  # crm_sync answers up to 1,000 addresses per find_by_emails
_cache: dict[tuple[str, str], tuple[float, Any]] = {}
_crm_down_until = 0.0


def _norm(value: Any) -> str:
    text = unicodedata.normalize("NFKD", str(value or ""))
    return " ".join("".join(c for c in text if not unicodedata.combining(c)).lower().split())


def _cached(kind: str, key: str) -> tuple[bool, Any]:
    entry = _cache.get((kind, key))
    if entry is None or entry[0] < time.monotonic():
        return False, None
    return True, entry[1]


def _remember(kind: str, key: str, value: Any) -> None:
    if len(_cache) >= CACHE_SIZE:
        _cache.clear()
    _cache[(kind, key)] = (time.monotonic() + CACHE_SECONDS, value)


def _contact_hint(found: dict[str, Any] | None) -> dict[str, Any] | None:
    if not found:
        return None
    contact = found.get("contact") or {}
    customer = found.get("customer") or {}
    return {"customer_id": customer.get("id"), "name": contact.get("name"), "contact_id": contact.get("id")}


async def _find_customer(services: Services, actor: dict[str, Any], key: str) -> str | None:
    answer = await services.call("crm_sync", "list_customers", actor=actor, search=key, limit=10)
    items = answer.get("items") if isinstance(answer, dict) else answer
    wanted = _norm(key)
    for customer in items or []:
        if _norm(customer.get("external_key")) == wanted or _norm(customer.get("account_number")) == wanted:
            return customer.get("id")
    return None


async def resolve(
    services: Services, actor: dict[str, Any], batch: list[dict[str, Any]]
) -> tuple[dict[str, Any], bool | None]:
    """``({"contacts": {email: {...}}, "customers": {key: id}}, crm_available)``."""
    global _crm_down_until
    hints: dict[str, Any] = {"contacts": {}, "customers": {}}
    emails = {t.get("requester_email") for t in batch if isinstance(t.get("requester_email"), str)}
    keys = {t.get("customer_key") for t in batch if isinstance(t.get("customer_key"), str)}
    if time.monotonic() < _crm_down_until:
        return hints, False
    available: bool | None = None

    async def ask(kind: str, key: str, lookup) -> Any:
        nonlocal available
        hit, value = _cached(kind, key)
        if hit:
            return value
        try:
            value = await lookup()
        except HTTPException as exc:
            if exc.status_code >= 500:
                raise
            value = None  # a look-up crm_sync refuses (odd address): that item stays unmatched
        available = True
        _remember(kind, key, value)
        return value

    try:
        # The requesters not in the cache, in one crm_sync look-up (not one per address).
        contacts: dict[str, Any] = {}
        unknown = []
        for email in sorted({e.strip().lower() for e in emails if e and "@" in e}):
            hit, value = _cached("contact", email)
            if hit:
                contacts[email] = value
            else:
                unknown.append(email)
        for start in range(0, len(unknown), EMAILS_PER_LOOKUP):
            chunk = unknown[start : start + EMAILS_PER_LOOKUP]
            found = await services.call("crm_sync", "find_by_emails", emails=chunk) or {}
            available = True
            for email in chunk:
                contacts[email] = _contact_hint(found.get(email))
                _remember("contact", email, contacts[email])
        hints["contacts"] = {email: value for email, value in contacts.items() if value}
        for key in sorted(k.strip() for k in keys if k and k.strip()):
            value = await ask("customer", key, lambda key=key: _find_customer(services, actor, key))
            if value:
                hints["customers"][key] = value
    except HTTPException:
        # Not running (or not answering): go on without it, and do not wait on it again for a minute.
        _crm_down_until = time.monotonic() + 60.0
        return {"contacts": {}, "customers": {}}, False
    return hints, available if available is not None else True
