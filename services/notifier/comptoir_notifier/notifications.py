"""Which emails an event causes, and their queueing (at most once per event, recipient and kind)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from comptoir_common.events import Event
from sqlalchemy import select
from sqlalchemy.orm import Session

from comptoir_notifier.models import OutgoingMail
from comptoir_notifier.rendering import render


@dataclass(frozen=True)
class MailContext:
    """What the notifier knows of its surroundings (from its settings)."""

    public_url: str
    mail_domain: str
    support_address: str


def ticket_thread_id(ticket_id: str, mail_domain: str) -> str:
    """The Message-ID every mail about a ticket refers to, so that mail programs keep them in one conversation."""
    return f"<ticket.{ticket_id}@{mail_domain}>"


def queue_mail(
    session: Session,
    *,
    event: Event,
    kind: str,
    recipient: str,
    template: str,
    context: dict[str, Any],
    ticket_id: str | None,
    mail_context: MailContext,
) -> OutgoingMail | None:
    """Queue one mail; None if this (event, recipient, kind) was already queued."""
    recipient = recipient.strip().lower()
    existing = session.scalar(
        select(OutgoingMail.id).where(
            OutgoingMail.event_id == event.id, OutgoingMail.recipient == recipient, OutgoingMail.kind == kind
        )
    )
    if existing is not None:
        return None
    rendered = render(template, context)
    mail_id = str(uuid.uuid4())
    headers: dict[str, str] = {"Auto-Submitted": "auto-generated", "Reply-To": mail_context.support_address}
    if ticket_id:
        thread_id = ticket_thread_id(ticket_id, mail_context.mail_domain)
        headers |= {"In-Reply-To": thread_id, "References": thread_id}
    mail = OutgoingMail(
        id=mail_id,
        event_id=event.id,
        kind=kind,
        recipient=recipient,
        ticket_id=ticket_id,
        subject=rendered.subject,
        body_text=rendered.text,
        body_html=rendered.html,
        message_id=f"<{kind}.{mail_id}@{mail_context.mail_domain}>",
        headers=headers,
        next_attempt_at=event.occurred_at,
    )
    session.add(mail)
    session.flush()
    return mail


def on_ticket_created(session: Session, event: Event, mail_context: MailContext) -> list[OutgoingMail]:
    """The acknowledgement to the requester of a new ticket."""
    ticket = event.data
    requester = ticket.get("requester") or {}
    if not requester.get("email"):
        return []
    mail = queue_mail(
        session,
        event=event,
        kind="ticket_created",
        recipient=requester["email"],
        template="ticket_created",
        context={
            "ticket": ticket,
            "recipient_name": requester.get("name") or requester["email"],
            "message_body": (ticket.get("message") or {}).get("body", ""),
            "ticket_url": f"{mail_context.public_url.rstrip('/')}/tickets/{ticket['id']}",
        },
        ticket_id=ticket["id"],
        mail_context=mail_context,
    )
    return [mail] if mail else []
