"""Mail: how each mail came into a ticket (staff), moving a mail to another ticket, the quarantine (admins), the
mailboxes' state, and each staff member's notification preferences. The services check the roles."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel

from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.security import CurrentActor

router = APIRouter(tags=["mail"])


class MoveIn(BaseModel):
    target_ticket_id: str | None = None
    target_number: int | None = None


class PreferencesIn(BaseModel):
    preferences: dict[str, bool]


@router.get("/tickets/{ticket_id}/emails")
async def ticket_emails(ticket_id: str, actor: CurrentActor, services: ServicesDep) -> list[dict]:
    """Each mail of the ticket: sender, threading rule and reason, sanitised HTML, attachments (staff only)."""
    return await services.call("tickets", "email_messages", actor=actor, ticket_id=ticket_id)


@router.post("/tickets/messages/{message_id}/move")
async def move_email_message(
    message_id: str, body: MoveIn, actor: CurrentActor, services: ServicesDep
) -> dict:
    return await services.call(
        "tickets",
        "move_email_message",
        actor=actor,
        message_id=message_id,
        target_ticket_id=body.target_ticket_id,
        target_number=body.target_number,
    )


@router.get("/tickets/{ticket_id}/notifications")
async def ticket_notifications(ticket_id: str, actor: CurrentActor, services: ServicesDep) -> list[dict]:
    """The mails sent about the ticket and their fate (sent, pending, failed with the reason)."""
    return await services.call("notifier", "list_mails", actor=actor, ticket_id=ticket_id)


@router.get("/mail/set-aside")
async def set_aside(
    actor: CurrentActor,
    services: ServicesDep,
    status: str | None = Query(None, pattern="^(quarantined|ignored)$"),
    limit: int = Query(100, ge=1, le=500),
) -> list[dict]:
    """Quarantined mails (unreadable, over a limit, refused) and ignored ones (automatic, our own): admins only."""
    return await services.call("mail_ingest", "list_set_aside", actor=actor, status=status, limit=limit)


@router.post("/mail/set-aside/{raw_mail_id}/replay")
async def replay(raw_mail_id: int, actor: CurrentActor, services: ServicesDep) -> dict:
    return await services.call("mail_ingest", "replay", actor=actor, raw_mail_id=raw_mail_id)


@router.get("/mail/mailboxes")
async def mailboxes(actor: CurrentActor, services: ServicesDep) -> list[dict]:
    return await services.call("mail_ingest", "mailbox_status", actor=actor)


@router.get("/mail/flagged-addresses")
async def flagged_addresses(actor: CurrentActor, services: ServicesDep) -> list[dict]:
    return await services.call("notifier", "flagged_addresses", actor=actor)


@router.get("/me/notifications")
async def my_notifications(actor: CurrentActor, services: ServicesDep) -> dict:
    return await services.call("notifier", "get_preferences", actor=actor)


@router.put("/me/notifications")
async def set_my_notifications(body: PreferencesIn, actor: CurrentActor, services: ServicesDep) -> dict:
    return await services.call("notifier", "set_preferences", actor=actor, preferences=body.preferences)
