"""The customer directory's pages (French): list, customer page, manual customer form, sync status, Quadra upload.

The crm_sync service decides who may see or change what; these routes only render its answers.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.web.rendering import render_page
from comptoir_gateway.web.routes import PostedForm, error_page, require_actor, submit_form

router = APIRouter(prefix="/admin/customers", include_in_schema=False)

PAGE_SIZE = 50
MAX_UPLOAD = 50 * 1024 * 1024
SOURCE_LABELS = {"filemaker": "FileMaker", "quadra": "Quadra", "manual": "Saisi à la main"}


@router.get("")
async def customers_page(
    request: Request,
    services: ServicesDep,
    q: str = "",
    source: str = "",
    active: str = "1",
    sales_rep_id: str = "",
    page: int = 1,
) -> Response:
    actor = require_actor(request)
    page = max(1, page)
    filters = {
        "search": q.strip()[:200] or None,
        "source": source if source in SOURCE_LABELS else None,
        "active": {"1": True, "0": False}.get(active),
        "sales_rep_id": sales_rep_id[:36] or None,
    }
    result = await services.call(
        "crm_sync", "list_customers", actor=actor, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, **filters
    )
    reps = await services.call("crm_sync", "list_sales_reps", actor=actor)
    query = {"q": q, "source": source, "active": active, "sales_rep_id": sales_rep_id}
    pages = max(1, (result["total"] + PAGE_SIZE - 1) // PAGE_SIZE)
    return render_page(
        request,
        "customers.html",
        {
            "result": result,
            "reps": reps,
            "query": query,
            "page": page,
            "pages": pages,
            "prev_url": f"?{urlencode(query | {'page': page - 1})}" if page > 1 else None,
            "next_url": f"?{urlencode(query | {'page': page + 1})}" if page < pages else None,
            "SOURCE_LABELS": SOURCE_LABELS,
        },
    )


class CustomerForm(PostedForm):
    """The manual customer form (new and edit)."""

    name: str = ""
    account_number: str = ""
    phone: str = ""
    street: str = ""
    postal_code: str = ""
    city: str = ""
    domains: str = ""
    contacts: str = ""


def _form_payload(form: CustomerForm) -> dict[str, Any]:
    """The customer from the manual form: contacts one a line, ``Nom ; email[, email] ; téléphone ; fonction``."""
    parsed_contacts = []
    for line in form.contacts.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(";")] + ["", "", "", ""]
        parsed_contacts.append(
            {
                "name": parts[0],
                "emails": [e for e in parts[1].replace(",", " ").split() if e],
                "phone": parts[2] or None,
                "role": parts[3] or None,
            }
        )
    address = {"street": form.street, "postal_code": form.postal_code, "city": form.city}
    return {
        "name": form.name,
        "account_number": form.account_number or None,
        "phone": form.phone or None,
        "addresses": [address] if any(address.values()) else [],
        "email_domains": [d for d in form.domains.replace(",", " ").split() if d],
        "contacts": parsed_contacts,
    }


def _form_from_customer(customer: dict[str, Any]) -> dict[str, str]:
    address = (customer.get("addresses") or [{}])[0]
    return {
        "name": customer["name"],
        "account_number": customer.get("account_number") or "",
        "phone": customer.get("phone") or "",
        "street": address.get("street", ""),
        "postal_code": address.get("postal_code", ""),
        "city": address.get("city", ""),
        "domains": ", ".join(customer.get("email_domains") or []),
        "contacts": "\n".join(
            " ; ".join([c["name"], ", ".join(c["emails"]), c.get("phone") or "", c.get("role") or ""]).rstrip(
                " ;"
            )
            for c in customer.get("contacts") or []
        ),
    }


FormField = Annotated[str, Form()]


@router.get("/new")
async def new_customer_page(request: Request) -> Response:
    require_actor(request)
    return render_page(request, "customer_form.html", {"form": {}, "customer": None})


@router.post("/new")
async def new_customer_submit(
    request: Request, services: ServicesDep, form: Annotated[CustomerForm, Form()]
) -> Response:
    actor = require_actor(request)
    return await submit_form(
        request,
        form.csrf_token,
        lambda: services.call("crm_sync", "create_customer", actor=actor, customer=_form_payload(form)),
        on_error=lambda message, status: render_page(
            request, "customer_form.html", {"form": form.values(), "error": message}, status_code=status
        ),
        on_success=lambda customer: RedirectResponse(
            f"/admin/customers/{customer['id']}?saved=1", status_code=303
        ),
    )


async def _sync_page(
    request: Request, services, actor: dict, status_code: int = 200, **extra: Any
) -> Response:
    status = await services.call("crm_sync", "sync_status", actor=actor)
    return render_page(request, "customers_sync.html", {"status": status, **extra}, status_code=status_code)


@router.get("/sync")
async def sync_page(request: Request, services: ServicesDep, done: str = "") -> Response:
    return await _sync_page(request, services, require_actor(request), done=done)


@router.post("/sync")
async def sync_request(
    request: Request, services: ServicesDep, full: FormField = "", csrf_token: FormField = ""
) -> Response:
    actor = require_actor(request)
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call("crm_sync", "request_sync", actor=actor, full=full == "1"),
        on_error=error_page,
        on_success=lambda _: RedirectResponse("/admin/customers/sync?done=sync", status_code=303),
    )


@router.post("/import/quadra")
async def quadra_upload(
    request: Request,
    services: ServicesDep,
    file: Annotated[UploadFile, File()],
    csrf_token: FormField = "",
) -> Response:
    """The export goes to the blob store (large bytes never travel over AMQP); crm_sync checks it by content."""
    from comptoir_common.blobs import BlobTooLarge, DirectoryBlobStore

    actor = require_actor(request)

    async def import_export() -> dict[str, Any]:
        await services.call("crm_sync", "sync_status", actor=actor)  # admins only, before storing anything
        store = DirectoryBlobStore(request.app.state.settings.blob_root)
        try:
            blob = store.put_stream(file.file, max_size=MAX_UPLOAD)
        except BlobTooLarge as exc:
            raise HTTPException(413, "Fichier trop volumineux (50 Mo au plus).") from exc
        return await services.call(
            "crm_sync", "import_quadra", actor=actor, blob_key=blob.key, filename=(file.filename or "")[:200]
        )

    return await submit_form(
        request,
        csrf_token,
        import_export,
        on_error=lambda message, status: _sync_page(request, services, actor, status, error=message),
        on_success=lambda report: _sync_page(request, services, actor, report=report),
        propagate=(403,),
    )


@router.get("/{customer_id}")
async def customer_page(
    request: Request, customer_id: str, services: ServicesDep, saved: int = 0
) -> Response:
    actor = require_actor(request)
    customer = await services.call("crm_sync", "show_customer", actor=actor, customer_id=customer_id)
    reps = await services.call("crm_sync", "list_sales_reps", actor=actor) if customer["manageable"] else []
    return render_page(
        request,
        "customer.html",
        {"customer": customer, "reps": reps, "saved": bool(saved), "SOURCE_LABELS": SOURCE_LABELS},
    )


@router.get("/{customer_id}/edit")
async def edit_customer_page(request: Request, customer_id: str, services: ServicesDep) -> Response:
    actor = require_actor(request)
    customer = await services.call("crm_sync", "show_customer", actor=actor, customer_id=customer_id)
    if not customer["editable"]:
        raise HTTPException(409, "Ce client vient d'une synchronisation : modifiez-le dans sa source.")
    return render_page(
        request, "customer_form.html", {"form": _form_from_customer(customer), "customer": customer}
    )


@router.post("/{customer_id}/edit")
async def edit_customer_submit(
    request: Request, customer_id: str, services: ServicesDep, form: Annotated[CustomerForm, Form()]
) -> Response:
    actor = require_actor(request)
    customer = await services.call("crm_sync", "show_customer", actor=actor, customer_id=customer_id)
    context = {"form": form.values(), "customer": customer}
    payload = _form_payload(form)
    # Keep existing contacts (their ids) when the same person is still listed.
    by_email = {e: c["id"] for c in customer.get("contacts") or [] for e in c["emails"]}
    for contact in payload["contacts"]:
        contact["id"] = next((by_email[e.lower()] for e in contact["emails"] if e.lower() in by_email), None)
    return await submit_form(
        request,
        form.csrf_token,
        lambda: services.call(
            "crm_sync", "update_customer", actor=actor, customer_id=customer_id, customer=payload
        ),
        on_error=lambda message, status: render_page(
            request, "customer_form.html", context | {"error": message}, status_code=status
        ),
        on_success=lambda _: RedirectResponse(f"/admin/customers/{customer_id}?saved=1", status_code=303),
    )


@router.post("/{customer_id}/active")
async def customer_active(
    request: Request,
    customer_id: str,
    services: ServicesDep,
    active: FormField = "",
    csrf_token: FormField = "",
) -> Response:
    actor = require_actor(request)
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call(
            "crm_sync", "set_customer_active", actor=actor, customer_id=customer_id, active=active == "1"
        ),
        on_error=error_page,
        on_success=lambda _: RedirectResponse(f"/admin/customers/{customer_id}?saved=1", status_code=303),
    )


@router.post("/{customer_id}/sales-rep")
async def customer_sales_rep(
    request: Request,
    customer_id: str,
    services: ServicesDep,
    sales_rep_id: FormField = "",
    csrf_token: FormField = "",
) -> Response:
    actor = require_actor(request)
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call(
            "crm_sync",
            "assign_sales_rep",
            actor=actor,
            customer_id=customer_id,
            sales_rep_id=sales_rep_id or None,
        ),
        on_error=error_page,
        on_success=lambda _: RedirectResponse(f"/admin/customers/{customer_id}?saved=1", status_code=303),
    )
