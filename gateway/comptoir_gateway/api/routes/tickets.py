"""Tickets: create, read, list. The tickets service applies the visibility rules."""

from __future__ import annotations

from fastapi import APIRouter, Query

from comptoir_gateway.api.schemas import TicketIn, TicketOut, TicketPage
from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.security import CurrentActor

router = APIRouter(prefix="/tickets", tags=["tickets"])


@router.post("", response_model=TicketOut, status_code=201)
async def create_ticket(body: TicketIn, actor: CurrentActor, services: ServicesDep) -> dict:
    """Open a ticket; the requester gets an acknowledgement email."""
    return await services.call(
        "tickets", "create_ticket", actor=actor, title=body.title, message=body.message, source="api"
    )


@router.get("", response_model=TicketPage)
async def list_tickets(
    actor: CurrentActor,
    services: ServicesDep,
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = None,
) -> dict:
    """The tickets you may see, last activity first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    return await services.call("tickets", "list_tickets", actor=actor, limit=limit, cursor=cursor)


@router.get("/{ticket_id}", response_model=TicketOut)
async def get_ticket(ticket_id: str, actor: CurrentActor, services: ServicesDep) -> dict:
    return await services.call("tickets", "get_ticket", actor=actor, ticket_id=ticket_id)
