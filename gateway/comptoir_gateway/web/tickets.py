"""French pages of the ticketing: dashboard (list, counts, live updates), ticket form, ticket page, configuration.

Every page makes the same RPCs as the API; the tickets service applies the visibility rules and role checks.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from comptoir_gateway import uploads
from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.web import customer_picker
from comptoir_gateway.web.rendering import error_text, render_page
from comptoir_gateway.web.routes import ErrorPage, require_actor, submit_form

router = APIRouter(include_in_schema=False)

LIST_FILTERS = (
    "q",
    "status",
    "priority",
    "type",
    "customer_id",
    "assignee",
    "breached",
    "view",
    "unidentified",
)
VIEWS = [
    ("", "Tous les tickets"),
    ("mine", "Mes tickets"),
    ("unassigned", "Non assignés"),
    ("unidentified", "Non identifiés"),
]
COLUMNS = [
    ("number", "N°"),
    ("title", "Titre"),
    ("created_at", "Créé le"),
    ("customer", "Client"),
    ("status", "Statut"),
    ("priority", "Priorité"),
    ("assignees", "Assigné à"),
    ("updated_at", "Dernière mise à jour"),
]
HISTORY_LABELS = {
    "created": "a créé le ticket",
    "field_changed": "a modifié",
    "status_changed": "a changé le statut",
    "assigned": "a modifié l'assignation",
    "customer_attached": "a rattaché le ticket au client",
    "closed": "a clôturé le ticket",
    "reopened": "a rouvert le ticket",
    "message_added": "a répondu",
    "note_added": "a ajouté une note interne",
    "sla_breached": "Délai de résolution dépassé",
    "message_moved_out": "a déplacé un e-mail vers un autre ticket",
    "message_moved_in": "a déplacé un e-mail sur ce ticket",
    "notification_failed": "Échec d'envoi d'un e-mail à",
}
# Who sees how each mail was threaded (the tickets service also refuses the others), and who may move one.
THREADING_ROLES = ("admin", "agent", "sales")
MOVE_ROLES = ("admin", "agent")
FIELD_LABELS = {"title": "le titre", "type": "le type", "priority": "la priorité", "followers": "les abonnés"}


def _list_params(request: Request) -> tuple[dict[str, Any], str, str | None]:
    query = request.query_params
    filters: dict[str, Any] = {}
    for name in LIST_FILTERS:
        value = query.get(name)
        if value:
            filters[name] = value in ("1", "true", "on") if name in ("breached", "unidentified") else value
    return filters, query.get("sort") or "-updated_at", query.get("cursor")


async def _gather(*calls) -> list:
    """Run RPCs concurrently; the first failure (in argument order) is raised once all are done."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


async def _dashboard_context(
    request: Request, services, actor: dict[str, Any], *, fragment: bool = False
) -> dict[str, Any]:
    filters, sort, cursor = _list_params(request)
    customer = await customer_picker.resolve(services, actor, request.query_params)
    filters.pop("customer_id", None)
    if customer.customer_id:
        filters["customer_id"] = customer.customer_id
    page, counts, options = await _gather(
        services.call(
            "tickets", "list_tickets", actor=actor, limit=50, cursor=cursor, sort=sort, filters=filters
        ),
        services.call("tickets", "dashboard", actor=actor),
        services.call("tickets", "form_options", actor=actor, customer_search=True),
    )
    if customer.customer_id and not customer.name and options["customer_search"] and not fragment:
        customer.name = await customer_picker.customer_name(services, actor, customer.customer_id)
    base = {k: v for k, v in request.query_params.items() if k not in ("cursor", "sort") and v}

    def sort_link(column: str) -> str:
        current = sort.lstrip("-")
        descending = sort.startswith("-")
        new = column if (current == column and descending) else "-" + column
        return "?" + urlencode(base | {"sort": new})

    def view_link(view: str) -> str:
        params = {k: v for k, v in base.items() if k != "view"}
        if view:
            params["view"] = view
        return "?" + urlencode(params)

    next_link = (
        "?" + urlencode(base | {"sort": sort, "cursor": page["next_cursor"]}) if page["next_cursor"] else None
    )
    return {
        "tickets": page["items"],
        "counts": counts,
        "options": options,
        "filters": filters,
        "sort": sort,
        "columns": COLUMNS,
        "views": VIEWS,
        "sort_link": sort_link,
        "view_link": view_link,
        "next_link": next_link,
        "first_page": bool(cursor),
        "query_string": request.url.query,
        "customer": customer,
    }


@router.get("/")
async def dashboard(request: Request, services: ServicesDep) -> Response:
    actor = require_actor(request)
    context = await _dashboard_context(request, services, actor)
    return render_page(request, "tickets_dashboard.html", context)


@router.get("/tableau-de-bord/contenu")
async def dashboard_fragment(request: Request, services: ServicesDep) -> Response:
    """The live part of the dashboard, reloaded by the page on a change notice or every minute."""
    actor = require_actor(request)
    context = await _dashboard_context(request, services, actor, fragment=True)
    return render_page(request, "tickets_dashboard_live.html", context)


# --- new ticket ---------------------------------------------------------------------------------------------


async def _form_page(
    request: Request, services, actor, form: dict, error: str | None = None, status: int = 200
):
    options = await services.call("tickets", "form_options", actor=actor, customer_search=True)
    # One token per form shown: submitting it twice (double click, reload, retry) makes one ticket.
    form = form | {"idempotency_key": form.get("idempotency_key") or uuid.uuid4().hex}
    return render_page(
        request,
        "ticket_form.html",
        {"form": form, "options": options, "fields": set(options["create_fields"]), "error": error},
        status_code=status,
    )


@router.get("/tickets/new")
async def new_ticket_page(request: Request, services: ServicesDep) -> Response:
    actor = require_actor(request)
    return await _form_page(request, services, actor, {})


@router.post("/tickets/new")
async def new_ticket_submit(request: Request, services: ServicesDep) -> Response:
    actor = require_actor(request)
    limit = await uploads.attachment_limit(services, actor)
    uploads.check_content_length(request, limit)
    # The form is read before submit_form checks its token: the token is one of its multipart fields.
    form = await request.form(max_files=uploads.MAX_FILES_PER_MESSAGE, max_fields=50)
    try:
        values = {
            "title": str(form.get("title") or ""),
            "message": str(form.get("message") or ""),
            "type": str(form.get("type") or "") or None,
            "priority": str(form.get("priority") or "") or None,
            "customer_id": str(form.get("customer_id") or "") or None,
            "internal_note": str(form.get("internal_note") or "") or None,
            "assignees": [str(a) for a in form.getlist("assignees") if a] or None,
            "idempotency_key": str(form.get("idempotency_key") or "")[:200] or uuid.uuid4().hex,
        }
        # The picker's text, shown again with the form (never sent to the tickets service).
        shown = {
            "customer_name": str(form.get("customer_name") or ""),
            "customer_label": str(form.get("customer_label") or ""),
        }

        async def create() -> dict[str, Any]:
            customer = await customer_picker.resolve(services, actor, form)
            values["customer_id"] = customer.customer_id
            shown.update(
                customer_name=customer.name, customer_label=customer.name if customer.customer_id else ""
            )
            if customer.error:
                raise HTTPException(422, detail=customer.error)
            attachments = await uploads.store_uploads(request, uploads.uploaded_files(form), limit)
            return await services.call(
                "tickets",
                "create_ticket",
                actor=actor,
                source="web",
                attachments=attachments,
                **{k: v for k, v in values.items() if v is not None},
            )

        return await submit_form(
            request,
            str(form.get("csrf_token") or ""),
            create,
            on_error=lambda message, status: _form_page(
                request, services, actor, values | shown, message, status
            ),
            on_success=lambda ticket: RedirectResponse(f"/tickets/{ticket['id']}?created=1", status_code=303),
        )
    finally:
        await form.close()


# --- ticket page --------------------------------------------------------------------------------------------


async def _ticket_page(
    request: Request,
    services,
    actor: dict[str, Any],
    ticket: dict[str, Any],
    *,
    notice: str | None = None,
    error: str | None = None,
    reply: dict | None = None,
    status: int = 200,
    history: list | None = None,
    options: dict | None = None,
) -> Response:
    if history is None or options is None:
        history, options = await _gather(
            services.call("tickets", "get_history", actor=actor, ticket_id=ticket["id"]),
            services.call("tickets", "form_options", actor=actor, customer_search=True),
        )
    emails: dict[str, dict] = {}
    if actor.get("role") in THREADING_ROLES:
        found = await services.call("tickets", "email_messages", actor=actor, ticket_id=ticket["id"])
        emails = {item["message_id"]: item for item in found}
    canned = [
        {
            "title": c["title"],
            "text": c["body"]
            .replace("{client}", ticket.get("customer_name") or ticket["requester"].get("name") or "")
            .replace("{numero}", str(ticket["number"]))
            .replace("{agent}", actor.get("name") or ""),
        }
        for c in options.get("canned_responses", [])
    ]
    return render_page(
        request,
        "ticket_page.html",
        {
            "ticket": ticket,
            "history": history,
            "options": options,
            "canned": canned,
            "notice": notice,
            "error": error,
            "reply": reply or {},
            "history_labels": HISTORY_LABELS,
            "field_labels": FIELD_LABELS,
            "edit_fields": set(ticket["permissions"]["edit_fields"]),
            "emails": emails,
            "may_move": actor.get("role") in MOVE_ROLES,
        },
        status_code=status,
    )


def _ticket_refusal(
    request: Request, services, actor: dict[str, Any], ticket_id: str, reply: dict | None = None
) -> ErrorPage:
    """The ticket page again, as it is now, with the French refusal of a form posted from it."""

    async def show(message: str, status: int) -> Response:
        ticket = await services.call("tickets", "get_ticket", actor=actor, ticket_id=ticket_id)
        return await _ticket_page(request, services, actor, ticket, error=message, reply=reply, status=status)

    return show


@router.get("/tickets/{ticket_id}")
async def ticket_page(
    ticket_id: str, request: Request, services: ServicesDep, created: int = 0, moved: int = 0
) -> Response:
    actor = require_actor(request)
    # The three calls at once: the history and the options check the same visibility as the ticket.
    ticket, history, options = await _gather(
        services.call("tickets", "get_ticket", actor=actor, ticket_id=ticket_id),
        services.call("tickets", "get_history", actor=actor, ticket_id=ticket_id),
        services.call("tickets", "form_options", actor=actor, customer_search=True),
    )
    notice = None
    if created:
        notice = (
            f"Votre demande n° {ticket['number']} a bien été enregistrée. Un accusé de réception vous a été "
            "envoyé par e-mail."
        )
    elif moved:
        notice = "L'e-mail a été déplacé sur ce ticket ; les réponses à cet e-mail y arriveront désormais."
    return await _ticket_page(
        request, services, actor, ticket, notice=notice, history=history, options=options
    )


@router.post("/tickets/{ticket_id}/messages/{message_id}/deplacer")
async def move_message(
    ticket_id: str,
    message_id: str,
    request: Request,
    services: ServicesDep,
    target_number: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Move a mail's message to another ticket (named by its number); the tickets service checks role and
    visibility of both tickets."""
    actor = require_actor(request)
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call(
            "tickets", "move_email_message", actor=actor, message_id=message_id, target_number=target_number
        ),
        on_error=_ticket_refusal(request, services, actor, ticket_id),
        on_success=lambda moved: RedirectResponse(f"/tickets/{moved['ticket_id']}?moved=1", status_code=303),
        propagate=(403,),
    )


@router.post("/tickets/{ticket_id}/reply")
async def ticket_reply(ticket_id: str, request: Request, services: ServicesDep) -> Response:
    actor = require_actor(request)
    limit = await uploads.attachment_limit(services, actor)
    try:
        uploads.check_content_length(request, limit)
    except HTTPException as exc:
        # Outside submit_form: a body that cannot fit is refused unread, so there is neither a token to check nor
        # a typed text to give back.
        return await _ticket_refusal(request, services, actor, ticket_id)(error_text(exc), 413)
    form = await request.form(max_files=uploads.MAX_FILES_PER_MESSAGE, max_fields=20)
    try:
        body = str(form.get("body") or "")
        internal = form.get("internal") == "1"

        async def send() -> None:
            attachments = await uploads.store_uploads(request, uploads.uploaded_files(form), limit)
            await services.call(
                "tickets",
                "add_message",
                actor=actor,
                ticket_id=ticket_id,
                body=body,
                internal=internal,
                attachments=attachments,
                source="web",
            )

        return await submit_form(
            request,
            str(form.get("csrf_token") or ""),
            send,
            # The typed text is put back in the form (a file over the limit included): nothing is lost.
            on_error=_ticket_refusal(
                request, services, actor, ticket_id, reply={"body": body, "internal": internal}
            ),
            on_success=lambda _: RedirectResponse(
                f"/tickets/{ticket_id}?{'note' if internal else 'sent'}=1#messages-end", status_code=303
            ),
            propagate=(404,),
        )
    finally:
        await form.close()


async def _update(
    request: Request,
    services,
    actor,
    ticket_id: str,
    csrf_token: str,
    version: str,
    changes: dict,
    prepare: Callable[[dict], Awaitable[None]] | None = None,
) -> Response:
    """A change posted from the ticket page; a refusal (a conflict too) shows the page again as it is now.
    ``prepare`` completes the changes once the form's token is checked (it may refuse with an HTTPException)."""

    async def update() -> Any:
        if prepare is not None:
            await prepare(changes)
        return await services.call(
            "tickets",
            "update_ticket",
            actor=actor,
            ticket_id=ticket_id,
            version=int(version or 0),
            changes=changes,
        )

    return await submit_form(
        request,
        csrf_token,
        update,
        on_error=_ticket_refusal(request, services, actor, ticket_id),
        on_success=lambda _: RedirectResponse(f"/tickets/{ticket_id}?saved=1", status_code=303),
        propagate=(404,),
    )


@router.post("/tickets/{ticket_id}/edit")
async def ticket_edit(ticket_id: str, request: Request, services: ServicesDep) -> Response:
    actor = require_actor(request)
    # Read whole: which fields are present says what the form changes.
    form = await request.form(max_fields=50)
    changes: dict[str, Any] = {}
    for name in ("title", "type", "priority", "status"):
        if name in form:
            changes[name] = str(form.get(name) or "") or None
    if "assignees_present" in form:
        changes["assignees"] = [str(a) for a in form.getlist("assignees") if a]

    async def choose_customer(changes: dict) -> None:
        if "customer_id" not in form and "customer_name" not in form:
            return
        customer = await customer_picker.resolve(services, actor, form)
        if customer.error:
            raise HTTPException(422, detail=customer.error)
        # No customer chosen leaves the ticket's as it is: a ticket is never detached from its customer here.
        if customer.customer_id:
            changes["customer_id"] = customer.customer_id

    return await _update(
        request,
        services,
        actor,
        ticket_id,
        str(form.get("csrf_token") or ""),
        str(form.get("version") or "0"),
        changes,
        prepare=choose_customer,
    )


@router.post("/tickets/{ticket_id}/status")
async def ticket_status(
    ticket_id: str,
    request: Request,
    services: ServicesDep,
    status: Annotated[str, Form()] = "",
    version: Annotated[str, Form()] = "0",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Close or reopen (the buttons of the ticket page)."""
    actor = require_actor(request)
    return await _update(request, services, actor, ticket_id, csrf_token, version, {"status": status})


@router.post("/tickets/{ticket_id}/take")
async def ticket_take(
    ticket_id: str, request: Request, services: ServicesDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    actor = require_actor(request)
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call("tickets", "take_ticket", actor=actor, ticket_id=ticket_id),
        on_error=_ticket_refusal(request, services, actor, ticket_id),
        on_success=lambda _: RedirectResponse(f"/tickets/{ticket_id}?taken=1", status_code=303),
        propagate=(404,),
    )


# --- configuration (admins) ---------------------------------------------------------------------------------


@router.get("/admin/tickets")
async def config_page(request: Request, services: ServicesDep, saved: int = 0) -> Response:
    actor = require_actor(request)
    config = await services.call("tickets", "get_configuration", actor=actor)
    return render_page(request, "admin_tickets.html", {"config": config, "saved": bool(saved), "error": None})


CONFIG_FIELDS = {
    "statuses": ("label", "category"),
    "types": ("label",),
    "priorities": ("label", "target_hours", "is_default"),
    "canned_responses": ("title", "body"),
}


def _config_params(resource: str, operation: str, form: Any) -> dict[str, Any]:
    """The arguments of ``configure`` from the posted form; ValueError on a malformed number."""
    params: dict[str, Any] = {}
    if resource == "calendar":
        params["config"] = {
            "timezone": str(form.get("timezone") or "Europe/Paris"),
            "opening": str(form.get("opening") or ""),
            "closing": str(form.get("closing") or ""),
            "workdays": [int(d) for d in form.getlist("workdays")],
            "french_holidays": form.get("french_holidays") == "1",
            "extra_holidays": [d.strip() for d in str(form.get("extra_holidays") or "").split() if d.strip()],
        }
    elif resource == "attachment_limit":
        params["limit_bytes"] = int(float(str(form.get("megabytes") or "0").replace(",", ".")) * 1024 * 1024)
    elif resource == "statuses" and operation == "reorder":
        params["keys"] = [k for k in str(form.get("keys") or "").split(",") if k]
    else:
        for name in CONFIG_FIELDS.get(resource, ()):
            value = form.get(name)
            if value is None or value == "":
                continue
            if name == "target_hours":
                params["target_minutes"] = int(round(float(str(value).replace(",", ".")) * 60))
            elif name == "is_default":
                params["is_default"] = value == "1"
            else:
                params[name] = str(value)
        key = str(form.get("key") or "")
        if operation in ("update", "remove"):
            params["canned_id" if resource == "canned_responses" else "key"] = key
        if operation == "remove" and resource != "canned_responses":
            params["replacement"] = str(form.get("replacement") or "") or None
    return params


@router.post("/admin/tickets/{resource}/{operation}")
async def config_submit(resource: str, operation: str, request: Request, services: ServicesDep) -> Response:
    actor = require_actor(request)
    form = await request.form(max_fields=100)

    async def configure() -> None:
        try:
            params = _config_params(resource, operation, form)
        except ValueError as exc:
            raise HTTPException(422, "Valeur numérique invalide.") from exc
        await services.call(
            "tickets", "configure", actor=actor, resource=resource, operation=operation, **params
        )

    async def show_error(message: str, status: int) -> Response:
        config = await services.call("tickets", "get_configuration", actor=actor)
        return render_page(
            request,
            "admin_tickets.html",
            {"config": config, "saved": False, "error": message},
            status_code=status,
        )

    return await submit_form(
        request,
        str(form.get("csrf_token") or ""),
        configure,
        on_error=show_error,
        on_success=lambda _: RedirectResponse("/admin/tickets?saved=1", status_code=303),
        propagate=(403,),
    )
