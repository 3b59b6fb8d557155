"""Which emails an event causes, and their queueing (at most once per event, recipient and kind).

Every mail about a ticket threads: a signed Message-ID (``<t.<token>.<id>@domain>``), ``In-Reply-To`` and
``References`` pointing at the ticket's root id and at the client's last mail, a plus-addressed ``Reply-To``
(``support+<token>@…``), a ``[ref:<token>]`` marker in the body and the ``[#n]`` tag in the subject — see
:mod:`comptoir_common.mailthread`. ``Auto-Submitted`` and ``X-Auto-Response-Suppress`` keep auto-responders quiet,
and ``X-Comptoir-Loop`` lets mail-ingest recognise our own mail coming back. Internal notes are never mailed.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from comptoir_common import mailthread
from comptoir_common.db import utcnow
from comptoir_common.events import Event, system_actor
from comptoir_common.outbox import add_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from comptoir_notifier.models import (
    FlaggedAddress,
    OutboxMessage,
    OutgoingMail,
    Preference,
    StaffMember,
    ThreadReference,
)
from comptoir_notifier.rendering import overrides, render

log = logging.getLogger(__name__)

STAFF_ROLES = frozenset({"admin", "agent", "sales"})
# Staff notifications each person can turn off (absent preference = on), with their French labels.
STAFF_KINDS = {
    "staff_assigned": "Un ticket vous est assigné",
    "staff_unidentified": "Nouveau ticket d'un expéditeur non identifié",
    "staff_sla_breached": "Délai de résolution dépassé",
}


@dataclass(frozen=True)
class MailContext:
    """What the notifier knows of its surroundings (from its settings)."""

    public_url: str
    mail_domain: str
    support_address: str
    thread_key: bytes = b""
    templates_dir: str = ""
    ack_limit_per_hour: int = 5


def ticket_url(mail_context: MailContext, ticket_id: str) -> str:
    return f"{mail_context.public_url.rstrip('/')}/tickets/{ticket_id}"


def thread_root_id(mail_context: MailContext, ticket_id: str) -> str:
    """The id every mail about a ticket refers to, so that mail programs keep them in one conversation."""
    return mailthread.message_id(mail_context.thread_key, ticket_id, "root", mail_context.mail_domain)


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
    recipient = (recipient or "").strip().lower()
    if "@" not in recipient:
        return None
    existing = session.scalar(
        select(OutgoingMail.id).where(
            OutgoingMail.event_id == event.id, OutgoingMail.recipient == recipient, OutgoingMail.kind == kind
        )
    )
    if existing is not None:
        return None
    mail_id = str(uuid.uuid4())
    domain = mail_context.mail_domain
    headers: dict[str, str] = {
        "Auto-Submitted": "auto-generated",
        "X-Auto-Response-Suppress": "All",
        mailthread.LOOP_HEADER: domain,
    }
    marker = ""
    if ticket_id:
        token = mailthread.make_token(mail_context.thread_key, ticket_id)
        marker = mailthread.body_marker(token)
        message_id = mailthread.message_id(
            mail_context.thread_key, ticket_id, mail_id.replace("-", ""), domain
        )
        root = thread_root_id(mail_context, ticket_id)
        thread = session.get(ThreadReference, ticket_id)
        last_inbound = (
            f"<{thread.last_inbound_message_id}>" if thread and thread.last_inbound_message_id else None
        )
        headers["Reply-To"] = mailthread.plus_address(mail_context.support_address, token)
        headers["In-Reply-To"] = last_inbound or root
        headers["References"] = " ".join(ref for ref in (root, last_inbound) if ref)
    else:
        message_id = f"<n.{mail_id.replace('-', '')}@{domain}>"
        headers["Reply-To"] = mail_context.support_address
    rendered = render(
        template,
        context | {"reference_marker": marker},
        mail_context.templates_dir,
        overrides(session),
    )
    mail = OutgoingMail(
        id=mail_id,
        event_id=event.id,
        kind=kind,
        recipient=recipient,
        ticket_id=ticket_id,
        subject=rendered.subject[:500],
        body_text=rendered.text,
        body_html=rendered.html,
        message_id=message_id,
        headers=headers,
        next_attempt_at=event.occurred_at,
    )
    session.add(mail)
    session.flush()
    return mail


def _ticket(event: Event) -> dict[str, Any]:
    return event.data.get("ticket") or event.data


def _remember_inbound(session: Session, ticket_id: str, message: dict[str, Any]) -> None:
    """Keep the Message-ID of the client's last mail: our next mail answers it (their mail program threads)."""
    rfc_id = ((message or {}).get("email") or {}).get("message_id")
    if not rfc_id:
        return
    thread = session.get(ThreadReference, ticket_id)
    if thread is None:
        session.add(ThreadReference(ticket_id=ticket_id, last_inbound_message_id=rfc_id[:400]))
    else:
        thread.last_inbound_message_id = rfc_id[:400]
    session.flush()


def _base_context(ticket: dict[str, Any], mail_context: MailContext) -> dict[str, Any]:
    return {"ticket": ticket, "ticket_url": ticket_url(mail_context, ticket["id"])}


def _staff(session: Session, kind: str, user_ids: list[str] | None = None, roles=("admin", "agent")):
    """Active staff who have not turned ``kind`` off (among ``user_ids`` when given, else every ``roles``)."""
    query = select(StaffMember).where(StaffMember.active.is_(True), StaffMember.role.in_(STAFF_ROLES))
    if user_ids is not None:
        if not user_ids:
            return []
        query = query.where(StaffMember.id.in_(user_ids))
    else:
        query = query.where(StaffMember.role.in_(roles))
    people = session.scalars(query).all()
    off = set(
        session.scalars(
            select(Preference.user_id).where(Preference.kind == kind, Preference.enabled.is_(False))
        ).all()
    )
    return [person for person in people if person.id not in off and person.email]


def _ack_allowed(session: Session, recipient: str, mail_context: MailContext) -> bool:
    """At most N acknowledgements per recipient and hour: a loop that detection missed stays small."""
    since = utcnow() - timedelta(hours=1)
    sent = session.scalar(
        select(func.count())
        .select_from(OutgoingMail)
        .where(
            OutgoingMail.recipient == recipient.strip().lower(),
            OutgoingMail.kind == "ticket_created",
            OutgoingMail.created_at >= since,
        )
    )
    return (sent or 0) < mail_context.ack_limit_per_hour


def on_ticket_created(session: Session, event: Event, mail_context: MailContext) -> list[OutgoingMail]:
    """The acknowledgement to the requester; staff hear of tickets whose sender is not identified."""
    ticket = _ticket(event)
    message = event.data.get("message") or {}
    _remember_inbound(session, ticket["id"], message)
    queued = []
    requester = ticket.get("requester") or {}
    automatic = ((message.get("email") or {}).get("automatic")) or None
    if requester.get("email") and not automatic:
        # The rate limit guards against loops with other robots: it applies to tickets opened by mail only.
        if ticket.get("source") != "email" or _ack_allowed(session, requester["email"], mail_context):
            mail = queue_mail(
                session,
                event=event,
                kind="ticket_created",
                recipient=requester["email"],
                template="ticket_created",
                context=_base_context(ticket, mail_context)
                | {
                    "recipient_name": requester.get("name") or requester["email"],
                    "message_body": "" if message.get("internal") else message.get("body", ""),
                },
                ticket_id=ticket["id"],
                mail_context=mail_context,
            )
            queued += [mail] if mail else []
        else:
            log.warning("acknowledgement rate limit reached", extra={"recipient": requester["email"]})
    if not ticket.get("customer_id"):
        for person in _staff(session, "staff_unidentified"):
            mail = queue_mail(
                session,
                event=event,
                kind="staff_unidentified",
                recipient=person.email,
                template="staff_unidentified",
                context=_base_context(ticket, mail_context)
                | {"recipient_name": person.name or person.email, "sender": requester.get("email") or ""},
                ticket_id=ticket["id"],
                mail_context=mail_context,
            )
            queued += [mail] if mail else []
    return queued


def on_status_changed(session: Session, event: Event, mail_context: MailContext) -> list[OutgoingMail]:
    """The requester learns of a status change made by someone else (not of their own, nor of a mail's)."""
    ticket = _ticket(event)
    requester = ticket.get("requester") or {}
    actor = event.actor or {}
    if not requester.get("email") or (actor.get("id") and actor.get("id") == requester.get("id")):
        return []
    if actor.get("kind") == "system" and actor.get("name") == "email":
        return []
    new = event.data.get("new") or {}
    old = event.data.get("old") or {}
    mail = queue_mail(
        session,
        event=event,
        kind="ticket_status_changed",
        recipient=requester["email"],
        template="ticket_status_changed",
        context=_base_context(ticket, mail_context)
        | {
            "recipient_name": requester.get("name") or requester["email"],
            "old_label": old.get("label") or event.data.get("old_status") or "",
            "new_label": new.get("label") or event.data.get("new_status") or ticket.get("status"),
            "new_category": new.get("category") or event.data.get("new_category") or "",
        },
        ticket_id=ticket["id"],
        mail_context=mail_context,
    )
    return [mail] if mail else []


def on_message_added(session: Session, event: Event, mail_context: MailContext) -> list[OutgoingMail]:
    """A staff member's public reply goes to the requester. Never an internal note."""
    ticket = _ticket(event)
    message = event.data.get("message") or {}
    if message.get("internal"):
        return []
    author = message.get("author") or {}
    if author.get("role") not in STAFF_ROLES:
        _remember_inbound(session, ticket["id"], message)
        return []
    requester = ticket.get("requester") or {}
    if not requester.get("email") or (author.get("id") and author.get("id") == requester.get("id")):
        return []
    mail = queue_mail(
        session,
        event=event,
        kind="ticket_reply",
        recipient=requester["email"],
        template="ticket_reply",
        context=_base_context(ticket, mail_context)
        | {
            "recipient_name": requester.get("name") or requester["email"],
            "author_name": author.get("name") or "L'équipe support",
            "message_body": message.get("body", ""),
            "attachments": [a.get("filename") for a in message.get("attachments") or [] if a.get("filename")],
        },
        ticket_id=ticket["id"],
        mail_context=mail_context,
    )
    return [mail] if mail else []


def on_assigned(session: Session, event: Event, mail_context: MailContext) -> list[OutgoingMail]:
    ticket = _ticket(event)
    added = event.data.get("added")
    if added is None:
        added = event.data.get("assignees") or []
    actor_id = (event.actor or {}).get("id")
    ids = [person.get("id") for person in added if person.get("id") and person.get("id") != actor_id]
    queued = []
    for person in _staff(session, "staff_assigned", user_ids=ids):
        mail = queue_mail(
            session,
            event=event,
            kind="staff_assigned",
            recipient=person.email,
            template="staff_assigned",
            context=_base_context(ticket, mail_context)
            | {
                "recipient_name": person.name or person.email,
                "actor_name": (event.actor or {}).get("name") or "",
            },
            ticket_id=ticket["id"],
            mail_context=mail_context,
        )
        queued += [mail] if mail else []
    return queued


def on_sla_breached(session: Session, event: Event, mail_context: MailContext) -> list[OutgoingMail]:
    ticket = _ticket(event)
    ids = [person.get("id") for person in ticket.get("assignees") or [] if person.get("id")]
    people = (
        _staff(session, "staff_sla_breached", user_ids=ids)
        if ids
        else _staff(session, "staff_sla_breached", roles=("admin",))
    )
    queued = []
    for person in people:
        mail = queue_mail(
            session,
            event=event,
            kind="staff_sla_breached",
            recipient=person.email,
            template="staff_sla_breached",
            context=_base_context(ticket, mail_context) | {"recipient_name": person.name or person.email},
            ticket_id=ticket["id"],
            mail_context=mail_context,
        )
        queued += [mail] if mail else []
    return queued


# --- failures ------------------------------------------------------------------------------------------------


def publish_failure(session: Session, mail: OutgoingMail, *, permanent: bool, source: str) -> None:
    """``notification.failed``: the tickets service records it on the ticket, staff see it."""
    add_event(
        session,
        OutboxMessage,
        Event(
            type="notification.failed",
            actor=system_actor("notifier"),
            data={
                "mail_id": mail.id,
                "ticket_id": mail.ticket_id,
                "kind": mail.kind,
                "recipient": mail.recipient,
                "subject": mail.subject,
                "message_id": mail.message_id,
                "reason": mail.last_error or "",
                "permanent": permanent,
                "source": source,
            },
        ),
    )


def flag_address(session: Session, email: str, reason: str) -> None:
    email = email.strip().lower()
    flagged = session.get(FlaggedAddress, email)
    if flagged is None:
        session.add(FlaggedAddress(email=email, reason=reason[:2000], failures=1, flagged_at=utcnow()))
    else:
        flagged.failures += 1
        flagged.reason = reason[:2000]
        flagged.flagged_at = utcnow()


def on_mail_bounced(session: Session, event: Event) -> OutgoingMail | None:
    """A bounce of one of our mails (from mail-ingest): that mail is marked failed; a permanent one flags the
    address."""
    data = event.data
    original = data.get("original_message_id")
    mail = (
        session.scalar(select(OutgoingMail).where(OutgoingMail.message_id == original)) if original else None
    )
    reason = " ".join(
        part
        for part in (
            "Retour en erreur",
            data.get("status") or "",
            f"({data['diagnostic']})" if data.get("diagnostic") else "",
        )
        if part
    )
    permanent = bool(data.get("permanent"))
    recipient = data.get("recipient") or (mail.recipient if mail else None)
    if permanent and recipient:
        flag_address(session, recipient, reason)
    if mail is None:
        return None
    mail.status = "failed"
    mail.last_error = reason[:2000]
    publish_failure(session, mail, permanent=permanent, source="bounce")
    return mail


# --- people and preferences ----------------------------------------------------------------------------------


def apply_user_event(session: Session, data: dict[str, Any], active: bool | None = None) -> None:
    person = session.get(StaffMember, data["id"])
    if person is None:
        person = StaffMember(id=data["id"])
        session.add(person)
    person.email = (data.get("email") or "").strip().lower()
    person.name = data.get("name") or ""
    person.role = data.get("role") or "client"
    person.active = bool(data.get("active", True)) if active is None else active


def preferences(session: Session, user_id: str) -> dict[str, Any]:
    saved = {
        row.kind: row.enabled
        for row in session.scalars(select(Preference).where(Preference.user_id == user_id))
    }
    return {kind: {"label": label, "enabled": saved.get(kind, True)} for kind, label in STAFF_KINDS.items()}


def set_preferences(session: Session, user_id: str, choices: dict[str, bool]) -> dict[str, Any]:
    for kind, enabled in choices.items():
        if kind not in STAFF_KINDS:
            continue
        row = session.get(Preference, (user_id, kind))
        if row is None:
            session.add(Preference(user_id=user_id, kind=kind, enabled=bool(enabled)))
        else:
            row.enabled = bool(enabled)
    session.flush()
    return preferences(session, user_id)


def mail_to_dict(mail: OutgoingMail) -> dict[str, Any]:
    return {
        "id": mail.id,
        "kind": mail.kind,
        "recipient": mail.recipient,
        "ticket_id": mail.ticket_id,
        "subject": mail.subject,
        "status": mail.status,
        "attempts": mail.attempts,
        "last_error": mail.last_error,
        "created_at": mail.created_at.isoformat(),
        "sent_at": mail.sent_at.isoformat() if mail.sent_at else None,
    }
