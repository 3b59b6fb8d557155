"""Tickets API: list, create, read, edit, take, reply, history, attachments, dashboard, live events.

Routes only translate HTTP to one RPC; the tickets service applies the visibility rules and the role checks.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from comptoir_gateway import uploads
from comptoir_gateway.api.schemas import (
    DashboardOut,
    HistoryEntryOut,
    MessageIn,
    MessageOut,
    TicketDetailOut,
    TicketIn,
    TicketOut,
    TicketPage,
    TicketPatch,
)
from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.security import CurrentActor

router = APIRouter(prefix="/tickets", tags=["tickets"])
dashboard_router = APIRouter(tags=["tickets"])


@router.post("", response_model=TicketDetailOut, status_code=201)
async def create_ticket(
    body: TicketIn,
    actor: CurrentActor,
    services: ServicesDep,
    idempotency_key: str | None = Header(
        None,
        max_length=200,
        description="Clé choisie par le client (un UUID par exemple) : une requête répétée avec la même clé "
        "renvoie le ticket créé la première fois au lieu d'en créer un second (clé propre à chaque utilisateur, "
        "gardée 24 h).",
    ),
) -> dict:
    """Open a ticket; the requester gets an acknowledgement email. Fields beyond title, message and type depend
    on your role (customer, priority, internal note for staff; assignees for admins). Send an
    ``Idempotency-Key`` header to retry safely."""
    return await services.call(
        "tickets",
        "create_ticket",
        actor=actor,
        source="api",
        # Without a key of the caller's, one per request still makes a redelivered RPC harmless.
        idempotency_key=idempotency_key or uuid.uuid4().hex,
        **body.model_dump(exclude_none=True),
    )


@router.get("", response_model=TicketPage)
async def list_tickets(
    actor: CurrentActor,
    services: ServicesDep,
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
    sort: str = Query(
        "-updated_at",
        description="Colonne de tri, `-` pour décroissant : updated_at, created_at, number, title, customer, "
        "status, assignees, updated_by, priority",
    ),
    status: str | None = Query(None, description="Clés de statut, séparées par des virgules"),
    category: str | None = Query(None, description="new, open, pending, closed (virgules)"),
    customer_id: str | None = None,
    assignee: str | None = Query(None, description="Id d'un agent, ou `me`"),
    priority: str | None = None,
    type: str | None = None,
    unidentified: bool = False,
    unassigned: bool = False,
    breached: bool = False,
    q: str | None = Query(None, max_length=200, description="Recherche dans les titres et les messages"),
    view: str | None = Query(None, description="Vue enregistrée : mine, unassigned, unidentified"),
) -> dict:
    """The tickets you may see (last activity first by default); pass ``next_cursor`` back as ``cursor``."""
    filters = {
        "status": status,
        "category": category,
        "customer_id": customer_id,
        "assignee": assignee,
        "priority": priority,
        "type": type,
        "unidentified": unidentified,
        "unassigned": unassigned,
        "breached": breached,
        "q": q,
        "view": view,
    }
    filters = {k: v for k, v in filters.items() if v not in (None, False, "")}
    return await services.call(
        "tickets", "list_tickets", actor=actor, limit=limit, cursor=cursor, sort=sort, filters=filters
    )


@router.get("/options")
async def form_options(actor: CurrentActor, services: ServicesDep) -> dict:
    """What the ticket forms may offer you: statuses, types, priorities, canned responses, customers, agents."""
    return await services.call("tickets", "form_options", actor=actor)


@router.get("/events", response_class=StreamingResponse)
async def live_events(request: Request, actor: CurrentActor, services: ServicesDep) -> StreamingResponse:
    """Server-sent events: `{type, ticket_id}` for each change on a ticket you may see."""
    hub = request.app.state.live
    return StreamingResponse(
        hub.stream(services, actor),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/{ticket_id}", response_model=TicketDetailOut)
async def get_ticket(ticket_id: str, actor: CurrentActor, services: ServicesDep) -> dict:
    return await services.call("tickets", "get_ticket", actor=actor, ticket_id=ticket_id)


@router.patch(
    "/{ticket_id}",
    response_model=TicketDetailOut,
    responses={409: {"description": "Modifié entre-temps : `detail.ticket` porte l'état à jour"}},
)
async def update_ticket(
    ticket_id: str, body: TicketPatch, actor: CurrentActor, services: ServicesDep
) -> dict:
    """Change fields; send the ``version`` you read. A stale version answers 409 with the fresh ticket."""
    changes = body.model_dump(exclude_unset=True)
    version = changes.pop("version")
    return await services.call(
        "tickets", "update_ticket", actor=actor, ticket_id=ticket_id, version=version, changes=changes
    )


@router.post("/{ticket_id}/take", response_model=TicketDetailOut)
async def take_ticket(ticket_id: str, actor: CurrentActor, services: ServicesDep) -> dict:
    """Assign yourself (agents and admins)."""
    return await services.call("tickets", "take_ticket", actor=actor, ticket_id=ticket_id)


@router.post(
    "/{ticket_id}/messages",
    response_model=MessageOut,
    status_code=201,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": MessageIn.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "body": {"type": "string"},
                            "internal": {"type": "boolean"},
                            "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        },
                    }
                },
            }
        }
    },
)
async def add_message(ticket_id: str, request: Request, actor: CurrentActor, services: ServicesDep) -> dict:
    """A reply, or an internal note (staff), as JSON or as multipart with ``files`` (25 Mo each by default)."""
    content_type = request.headers.get("content-type", "")
    attachments: list[dict[str, Any]] = []
    if content_type.startswith("multipart/form-data"):
        limit = await uploads.attachment_limit(services, actor)
        uploads.check_content_length(request, limit)
        form = await request.form(max_files=uploads.MAX_FILES_PER_MESSAGE, max_fields=20)
        try:
            body = str(form.get("body") or "")
            internal = str(form.get("internal") or "").lower() in ("1", "true", "on", "yes")
            try:
                attachments = await uploads.store_uploads(request, uploads.uploaded_files(form), limit)
            except HTTPException as exc:
                # The text comes back with the refusal, so that nothing typed is lost.
                raise HTTPException(exc.status_code, {"message": exc.detail, "body": body}) from exc
        finally:
            await form.close()
    else:
        try:
            payload = MessageIn.model_validate_json(await request.body())
        except ValueError as exc:
            raise HTTPException(422, "Message invalide : « body » est obligatoire.") from exc
        body, internal = payload.body, payload.internal
    return await services.call(
        "tickets",
        "add_message",
        actor=actor,
        ticket_id=ticket_id,
        body=body,
        internal=internal,
        attachments=attachments,
        source="api",
    )


@router.get("/{ticket_id}/history", response_model=list[HistoryEntryOut])
async def ticket_history(ticket_id: str, actor: CurrentActor, services: ServicesDep) -> list:
    """Every action on the ticket, oldest first."""
    return await services.call("tickets", "get_history", actor=actor, ticket_id=ticket_id)


@router.get("/{ticket_id}/attachments/{attachment_id}", response_class=StreamingResponse)
async def download_attachment(
    ticket_id: str,
    attachment_id: str,
    request: Request,
    actor: CurrentActor,
    services: ServicesDep,
    preview: bool = False,
) -> StreamingResponse:
    """The file, after the same visibility check as its ticket (``preview=true``: the image's thumbnail)."""
    attachment = await services.call(
        "tickets", "get_attachment", actor=actor, ticket_id=ticket_id, attachment_id=attachment_id
    )
    return uploads.download_response(request, attachment, preview)


@dashboard_router.get("/dashboard", response_model=DashboardOut)
async def dashboard(actor: CurrentActor, services: ServicesDep) -> dict:
    """Counts of the tickets you may see: new requests, closed, open, pending, breached deadlines."""
    return await services.call("tickets", "dashboard", actor=actor)


__all__ = ["router", "dashboard_router", "TicketOut"]
