"""The customer picker of the ticket and reports pages: suggestions while one types, and the typed text resolved on
the server.

Staff choose among thousands of customers, so the pages no longer embed them: the picker is a text field
(``customer_name``) beside a hidden ``customer_id``, which ``static/customer-picker.js`` turns into a combobox asking
``GET /clients/recherche`` for suggestions. Without JavaScript (or when a name is typed but no suggestion picked) the
text is sent alone and :func:`resolve` finds the one customer it designates. crm_sync, which owns the directory,
decides who sees which customer: a sales rep only theirs; clients and resellers are refused (they keep a short list
from the tickets or reports service instead).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Query

from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.security import CurrentActor

router = APIRouter(include_in_schema=False)

SUGGESTIONS = 20
# Candidates named in the message when a typed text designates several customers.
NAMED_CANDIDATES = 5


def detail(customer: Mapping[str, Any]) -> str:
    """What tells two customers of the same name apart: account number and city."""
    parts = []
    if customer.get("account_number"):
        parts.append(f"compte {customer['account_number']}")
    if customer.get("city"):
        parts.append(customer["city"])
    return " · ".join(parts)


async def search(services, actor: dict[str, Any], text: str) -> list[dict[str, Any]]:
    """The picker's suggestions for ``text``, each with its ``detail``."""
    found = await services.call("crm_sync", "search_customers", actor=actor, query=text, limit=SUGGESTIONS)
    return [item | {"detail": detail(item)} for item in found]


@router.get("/clients/recherche")
async def customer_suggestions(
    actor: CurrentActor, services: ServicesDep, q: str = Query("", max_length=200)
) -> dict[str, Any]:
    """Suggestions for the picker (JSON, with the session cookie): ``{"items": [{id, name, detail, ...}]}``."""
    return {"items": await search(services, actor, q)}


async def customer_name(services, actor: dict[str, Any], customer_id: str) -> str:
    """The name a filter's customer is shown with, when the address gives only its id (a link); "" if ``actor``
    may not see it."""
    try:
        customer = await services.call("crm_sync", "show_customer", actor=actor, customer_id=customer_id)
    except HTTPException as exc:
        if exc.status_code in (403, 404):
            return ""
        raise
    return customer["name"]


@dataclass
class Choice:
    """What a picker's fields came to: the customer (None: none chosen), the text to show again, or why not."""

    customer_id: str | None
    name: str = ""
    error: str | None = None


async def resolve(services, actor: dict[str, Any], fields: Mapping[str, Any]) -> Choice:
    """The customer a form's ``customer_id`` / ``customer_name`` / ``customer_label`` designate.

    A ``<select>`` (no ``customer_name``) sends the id alone. A picker's id stands while the text still reads the
    name it was shown with (``customer_label``): without JavaScript the id cannot follow a changed text, so a
    changed text is resolved instead — to the customer whose whole name or account number it is, or to the only one
    it matches. An emptied text means no customer."""
    customer_id = str(fields.get("customer_id") or "").strip()
    if "customer_name" not in fields:
        return Choice(customer_id or None)
    # Both cut alike (a name may be longer than a search): the text of a long name still reads its label.
    text = str(fields.get("customer_name") or "").strip()[:300]
    label = str(fields.get("customer_label") or "").strip()[:300]
    if not text:
        return Choice(None)
    if customer_id and text == label:
        return Choice(customer_id, text)
    found = await search(services, actor, text)
    exact = [item for item in found if item["exact"]]
    chosen = exact[0] if len(exact) == 1 else found[0] if len(found) == 1 else None
    if chosen is not None:
        return Choice(chosen["id"], chosen["name"])
    if not found:
        return Choice(None, text, f"Aucun client ne correspond à « {text} ».")
    candidates = exact or found
    named = ", ".join(
        f"{item['name']} ({item['detail']})" if item["detail"] else item["name"]
        for item in candidates[:NAMED_CANDIDATES]
    )
    more = " et d'autres" if len(candidates) > NAMED_CANDIDATES else ""
    return Choice(
        None,
        text,
        f"Plusieurs clients correspondent à « {text} » : {named}{more}. Choisissez-en un dans les suggestions ou "
        "saisissez son nom complet ou son numéro de compte.",
    )
