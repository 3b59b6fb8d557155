"""Tickets from mail: the tickets side of the mail pipeline (``tickets.ingest_email``).

The mail-ingest service parses a mail, identifies its sender and verifies the signed references it carries; this
module decides, inside the tickets store, which ticket the mail belongs to and records the decision:

1. a verified reference to one of our mails (signed Message-ID in ``In-Reply-To``/``References``);
2. the Message-ID of a mail already taken in (a client answering their own mail, a colleague in Cc replying);
3. a verified plus-address or body marker;
4. a ``[#1234]`` subject tag — only when the sender may write on that ticket;
5. otherwise a new ticket (never by subject text alone).

Idempotent on (mailbox, message key): a mail taken in again returns the first answer and changes nothing.
Automatic mail (auto-replies, bounces, list mail) is recorded on a ticket it threads to as an internal note, never
reopens it and never opens a ticket.
"""

from __future__ import annotations

import logging
from typing import Any

from comptoir_common.db import utcnow
from comptoir_common.errors import InvalidInput, NotFound, PermissionDenied
from comptoir_common.events import Event, system_actor, user_actor
from comptoir_common.outbox import add_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from comptoir_tickets import configuration, policy, tickets
from comptoir_tickets.models import Attachment, Customer, EmailIntake, Message, OutboxMessage, Status, Ticket

log = logging.getLogger(__name__)

MAX_TITLE = tickets.MAX_TITLE_LENGTH
MAX_BODY = tickets.MAX_MESSAGE_LENGTH

RULE_LABELS = {
    "message_id": "Réponse à un de nos e-mails (Message-ID signé)",
    "known_reference": "Réponse à un e-mail déjà reçu sur ce ticket",
    "plus_address": "Adresse de réponse du ticket (support+…)",
    "body_marker": "Référence du ticket dans le corps du message",
    "subject_tag": "Référence [#n] dans l'objet, expéditeur autorisé",
    "new_ticket": "Nouveau ticket",
    "moved": "Déplacé par un membre de l'équipe",
}


def _author(sender: dict[str, Any]) -> dict[str, Any]:
    """The mail's author as the tickets domain records people (an account, a contact or an unknown address)."""
    name = (sender.get("name") or "").strip()
    email = (sender.get("email") or "").lower() or None
    if sender.get("kind") == "unknown":
        name = f"{name} <{email}> (non identifié)" if name else f"{email} (non identifié)"
    role = (
        sender.get("role")
        if sender.get("user_id")
        else ("contact" if sender.get("kind") == "contact" else "unknown")
    )
    return {
        "id": sender.get("user_id"),
        "name": name or email,
        "role": role,
        "email": email,
        "customer_id": sender.get("customer_id"),
    }


def _event_actor(author: dict[str, Any]) -> dict[str, Any]:
    if author.get("id"):
        return user_actor(author)
    return system_actor("email")


def may_write(session: Session, sender: dict[str, Any], ticket: Ticket) -> bool:
    """Whether the sender of a mail may add to ``ticket`` by quoting its number (the subject-tag rule): someone who
    can see it (staff, its sales rep, its customer's users), its requester, or a contact of its customer."""
    email = (sender.get("email") or "").lower()
    if email and ticket.requester_email and ticket.requester_email.lower() == email:
        return True
    if sender.get("user_id"):
        actor = {
            "id": sender["user_id"],
            "role": sender.get("role"),
            "customer_id": sender.get("customer_id"),
        }
        return policy.can_see(session, actor, ticket)
    return bool(sender.get("customer_id")) and sender["customer_id"] == ticket.customer_id


def _find_thread(session: Session, mail: dict[str, Any]) -> tuple[Ticket | None, str, str]:
    """(ticket or None, rule, reason) for a mail, trying the rules in order of trust."""
    candidates = mail.get("candidates") or []
    for candidate in (c for c in candidates if c.get("rule") == "message_id"):
        ticket = session.get(Ticket, candidate["ticket_id"])
        if ticket is not None:
            return ticket, "message_id", f"{RULE_LABELS['message_id']} : {candidate.get('detail', '')}"
    references = [ref for ref in mail.get("references") or [] if ref]
    if references:
        row = session.execute(
            select(EmailIntake.ticket_id, EmailIntake.rfc_message_id)
            .where(EmailIntake.rfc_message_id.in_(references[-50:]))
            .order_by(EmailIntake.created_at.desc())
            .limit(1)
        ).first()
        if row is not None:
            ticket = session.get(Ticket, row.ticket_id)
            if ticket is not None:
                return ticket, "known_reference", f"{RULE_LABELS['known_reference']} : <{row.rfc_message_id}>"
    for candidate in (c for c in candidates if c.get("rule") in ("plus_address", "body_marker")):
        ticket = session.get(Ticket, candidate["ticket_id"])
        if ticket is not None:
            rule = candidate["rule"]
            return ticket, rule, f"{RULE_LABELS[rule]} : {candidate.get('detail', '')}"
    refused = []
    sender = mail.get("sender") or {}
    for number in mail.get("subject_numbers") or []:
        ticket = session.scalar(select(Ticket).where(Ticket.number == int(number)))
        if ticket is None:
            refused.append(f"[#{number}] inconnu")
        elif may_write(session, sender, ticket):
            return ticket, "subject_tag", f"{RULE_LABELS['subject_tag']} : [#{number}]"
        else:
            refused.append(f"[#{number}] ignoré (l'expéditeur n'est pas autorisé sur ce ticket)")
    reason = "Aucune référence à un ticket existant"
    if refused:
        reason += " ; " + ", ".join(refused)
    return None, "new_ticket", reason


def _title(mail: dict[str, Any]) -> str:
    title = " ".join((mail.get("title") or "").split())
    if not title:
        sender = mail.get("sender") or {}
        title = f"Message sans objet de {sender.get('name') or sender.get('email') or 'expéditeur inconnu'}"
    return title[:MAX_TITLE]


def _body(mail: dict[str, Any]) -> str:
    body = (mail.get("text") or "").strip()
    notes = []
    for refused in mail.get("refused_attachments") or []:
        notes.append(
            f"[Pièce jointe refusée : {refused.get('filename') or 'sans nom'} "
            f"({refused.get('size', 0)} octets) — {refused.get('reason', '')}]"
        )
    if len(body) > MAX_BODY - 2000:
        body = (
            body[: MAX_BODY - 2000] + "\n[… message tronqué : le texte complet est dans l'e-mail d'origine]"
        )
    if notes:
        body = (body + "\n\n" + "\n".join(notes)).strip()
    return body or ("(pièce jointe)" if mail.get("attachments") else "(message vide)")


def _attach(session: Session, ticket: Ticket, message: Message, items: list[dict[str, Any]]) -> None:
    """Attachments already in the blob store (mail-ingest put them there and enforced the size limit)."""
    for item in items:
        attachment = Attachment(
            ticket_id=ticket.id,
            message_id=message.id,
            filename=(item.get("filename") or "piece-jointe")[:255],
            content_type=(item.get("content_type") or "application/octet-stream")[:100],
            size=int(item.get("size") or 0),
            blob_key=item["blob_key"],
        )
        message.attachments.append(attachment)
        session.add(attachment)


def _reopen(session: Session, ticket: Ticket, author: dict[str, Any], now) -> list[tuple[str, dict]]:
    """Move a closed ticket back to the first status of category ``open``; the events to publish."""
    status = session.scalar(
        select(Status).where(Status.category == "open").order_by(Status.position, Status.key).limit(1)
    )
    if status is None:
        return []
    labels = tickets.Labels(session)
    old_key, old_category = ticket.status, ticket.status_category
    ticket.status = status.key
    tickets.apply_category_change(session, ticket, old_category, status.category, now)
    ticket.version += 1
    tickets._history(
        session,
        ticket,
        author,
        "reopened",
        field="status",
        old=labels.status(old_key),
        new=status.label,
        at=now,
    )
    status_data = {
        "old": {"status": old_key, "label": labels.status(old_key), "category": old_category},
        "new": {"status": status.key, "label": status.label, "category": status.category},
    }
    return [
        ("ticket.updated", {"changes": {"status": {"old": old_key, "new": status.key}}}),
        ("ticket.status_changed", tickets._status_event_data(status_data)),
        ("ticket.reopened", {"reopened_count": ticket.reopened_count}),
    ]


class BatchCache:
    """What every mail of a batch needs and does not change within it: defaults, calendar, known keys."""

    def __init__(self, session: Session, mails: list[dict[str, Any]] | None = None):
        self.session = session
        self._status = self._priority = self._calendar = None
        self.intakes: dict[tuple[str, str], EmailIntake] | None = None
        keys = [(m.get("mailbox") or "", m.get("message_key") or "") for m in mails or []]
        if keys:
            self.intakes = {}
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                rows = session.scalars(
                    select(EmailIntake).where(EmailIntake.message_key.in_({key for _, key in chunk}))
                )
                for row in rows:
                    self.intakes[(row.mailbox, row.message_key)] = row

    @property
    def status(self) -> Status:
        if self._status is None:
            self._status = configuration.default_status(self.session)
        return self._status

    @property
    def priority(self):
        if self._priority is None:
            self._priority = configuration.default_priority(self.session)
        return self._priority

    @property
    def calendar(self):
        if self._calendar is None:
            self._calendar = configuration.calendar(self.session)
        return self._calendar

    def existing(self, mailbox: str, message_key: str) -> EmailIntake | None:
        if self.intakes is None:
            return self.session.scalar(
                select(EmailIntake).where(
                    EmailIntake.mailbox == mailbox, EmailIntake.message_key == message_key
                )
            )
        return self.intakes.get((mailbox, message_key))


def ingest_email(
    session: Session, *, mail: dict[str, Any], cache: BatchCache | None = None
) -> dict[str, Any]:
    """Take in one parsed mail (see ``docs/email.md`` for the fields); returns
    ``{ticket_id, message_id, created, rule, reason, outcome}`` — ``outcome`` is ``created``, ``added``,
    ``duplicate`` or ``ignored`` (automatic mail that threads to no ticket). The caller commits."""
    mailbox = (mail.get("mailbox") or "").strip()
    message_key = (mail.get("message_key") or "").strip()
    if not mailbox or not message_key:
        raise InvalidInput("Boîte aux lettres et identifiant du message obligatoires.")
    cache = cache or BatchCache(session)
    existing = cache.existing(mailbox, message_key)
    if existing is not None:
        return _result(existing, "duplicate")

    sender = mail.get("sender") or {}
    author = _author(sender)
    automatic = mail.get("automatic") or None
    ticket, rule, reason = _find_thread(session, mail)
    linked_ticket = None
    if ticket is None and automatic:
        return {
            "ticket_id": None,
            "message_id": None,
            "created": False,
            "rule": rule,
            "reason": f"E-mail automatique ({automatic}) sans ticket correspondant : ignoré",
            "outcome": "ignored",
        }
    closed = ticket is not None and ticket.status_category == "closed"
    if closed and not automatic and mail.get("closed_policy") == "new_ticket":
        linked_ticket = ticket
        reason = f"{reason} ; le ticket n° {ticket.number} est clôturé : nouveau ticket lié"
        rule = f"{rule}+new"
        ticket = None
    elif closed and not automatic:
        reason = f"{reason} ; le ticket était clôturé : rouvert"
    now = utcnow()
    body = _body(mail)
    if linked_ticket is not None:
        body = f"[Suite du ticket clôturé n° {linked_ticket.number}]\n\n{body}"
    created = ticket is None
    pending_events: list[tuple[str, dict]] = []
    if created:
        customer_id = sender.get("customer_id") or None
        customer = session.get(Customer, customer_id) if customer_id else None
        status = cache.status
        priority = cache.priority
        ticket = Ticket(
            number=tickets.next_ticket_number(session),
            title=_title(mail),
            status=status.key,
            status_category=status.category,
            priority=priority.key,
            customer_id=customer_id,
            customer_name=customer.name if customer else "",
            requester_id=author["id"],
            requester_email=author["email"],
            requester_name=(sender.get("name") or None),
            assignees=[],
            assignee_names="",
            followers=[],
            source="email",
            created_at=now,
            created_by_id=author["id"],
            created_by_name=author["name"],
            updated_at=now,
            updated_by_id=author["id"],
            updated_by_name=author["name"],
            sla_target_minutes=priority.target_minutes,
            sla_elapsed_minutes=0,
            reopened_count=0,
            sla_breached=False,
            sla_breach_published=False,
            version=1,
        )
        session.add(ticket)
        session.flush()
        tickets._start_clock(ticket, cache.calendar, now)
        tickets._adjust_count(session, ticket.customer_id, ticket.status_category, +1)
        tickets._history(session, ticket, author, "created", new=ticket.title, at=now)
    message = tickets._new_message(
        session, ticket, author, body, internal=bool(automatic), source="email", now=now
    )
    _attach(session, ticket, message, mail.get("attachments") or [])
    if not created:
        tickets._touch(ticket, author, now)
        if closed and not automatic:
            pending_events = _reopen(session, ticket, author, now)
        if (
            not automatic
            and ticket.first_response_at is None
            and author.get("role") in policy.STAFF_ROLES
            and author.get("id") != ticket.requester_id
        ):
            ticket.first_response_at = now
        tickets._history(
            session,
            ticket,
            author,
            "note_added" if automatic else "message_added",
            internal=bool(automatic),
            at=now,
        )
    session.flush()
    intake = EmailIntake(
        mailbox=mailbox,
        message_key=message_key,
        rfc_message_id=mail.get("rfc_message_id"),
        ticket_id=ticket.id,
        message_id=message.id,
        created_ticket=created,
        rule=rule,
        reason=reason,
        sender_email=author["email"],
        sender_kind=sender.get("kind") or "unknown",
        automatic=automatic,
        body_html=mail.get("html") or None,
        attachments=mail.get("attachments") or [],
        raw_blob_key=mail.get("raw_blob_key"),
        linked_ticket_id=linked_ticket.id if linked_ticket is not None else None,
        created_at=now,
    )
    session.add(intake)
    session.flush()
    if cache.intakes is not None:
        cache.intakes[(mailbox, message_key)] = intake
    actor = _event_actor(author)
    snapshot = tickets.snapshot(ticket)
    message_data = tickets.message_to_dict(message) | {
        "email": {"message_id": intake.rfc_message_id, "rule": rule, "automatic": automatic}
    }
    if created:
        data = snapshot | {"ticket": snapshot, "message": message_data}
        if linked_ticket is not None:
            data["linked_ticket_id"] = linked_ticket.id
        add_event(session, OutboxMessage, Event(type="ticket.created", actor=actor, data=data))
    else:
        for event_type, extra in pending_events:
            add_event(
                session, OutboxMessage, Event(type=event_type, actor=actor, data={"ticket": snapshot} | extra)
            )
        add_event(
            session,
            OutboxMessage,
            Event(
                type="ticket.message_added", actor=actor, data={"ticket": snapshot, "message": message_data}
            ),
        )
    return _result(intake, "created" if created else "added")


def _result(intake: EmailIntake, outcome: str) -> dict[str, Any]:
    return {
        "ticket_id": intake.ticket_id,
        "message_id": intake.message_id,
        "created": intake.created_ticket,
        "rule": intake.rule,
        "reason": intake.reason,
        "outcome": outcome,
    }


def ingest_emails(session: Session, *, mails: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Take in a batch in order. The whole batch goes in one savepoint; if a mail fails, the batch is taken in again
    mail by mail, each in its own savepoint, so that the bad one is reported and the others still go in."""
    try:
        with session.begin_nested():
            cache = BatchCache(session, mails)
            return [ingest_email(session, mail=mail, cache=cache) for mail in mails]
    except Exception:  # noqa: BLE001 - redone one by one below, where each failure is reported
        log.info("a mail of the batch failed; taking the batch in one by one")
    results = []
    cache = BatchCache(session)
    for mail in mails:
        try:
            with session.begin_nested():
                results.append(ingest_email(session, mail=mail, cache=cache))
        except InvalidInput as exc:
            results.append({"outcome": "error", "reason": exc.message})
        except Exception as exc:  # noqa: BLE001 - reported back per mail; the mail is quarantined by the caller
            results.append({"outcome": "error", "reason": f"{type(exc).__name__}: {exc}"[:500]})
    return results


def _visible_ticket(session: Session, actor: dict[str, Any], ticket_id: str | None) -> Ticket:
    """The ticket if ``actor`` may see it; otherwise NotFound, as for a ticket that does not exist."""
    ticket = session.get(Ticket, ticket_id) if ticket_id else None
    if ticket is None or not policy.can_see(session, actor, ticket):
        raise NotFound("Ticket introuvable.")
    return ticket


def intake_to_dict(intake: EmailIntake) -> dict[str, Any]:
    return {
        "id": intake.id,
        "mailbox": intake.mailbox,
        "rfc_message_id": intake.rfc_message_id,
        "ticket_id": intake.ticket_id,
        "message_id": intake.message_id,
        "created_ticket": intake.created_ticket,
        "rule": intake.rule,
        "rule_label": RULE_LABELS.get(intake.rule.split("+")[0], intake.rule),
        "reason": intake.reason,
        "sender_email": intake.sender_email,
        "sender_kind": intake.sender_kind,
        "automatic": intake.automatic,
        "body_html": intake.body_html,
        "attachments": intake.attachments or [],
        "linked_ticket_id": intake.linked_ticket_id,
        "moved_by_name": intake.moved_by_name,
        "created_at": intake.created_at.isoformat(),
    }


def email_messages(session: Session, *, actor: dict[str, Any], ticket_id: str) -> list[dict[str, Any]]:
    """How each mail of a ticket came in and why it went there: staff (admin, agent, sales) on a ticket they see;
    clients and resellers never see threading decisions."""
    if not policy.can_see_internal_notes(actor):
        raise PermissionDenied("Réservé à l'équipe support.")
    _visible_ticket(session, actor, ticket_id)
    rows = session.scalars(
        select(EmailIntake).where(EmailIntake.ticket_id == ticket_id).order_by(EmailIntake.created_at)
    ).all()
    return [intake_to_dict(row) for row in rows]


def move_email_message(
    session: Session,
    *,
    actor: dict[str, Any],
    message_id: str,
    target_ticket_id: str | None = None,
    target_number: int | str | None = None,
) -> dict[str, Any]:
    """Move a mail's message to another ticket (admins and agents correcting a threading decision), named by id or
    by number; both tickets must be visible to the actor. Later replies to that mail follow it (``known_reference``
    now finds the new ticket), and both tickets' histories record the move."""
    if actor.get("role") not in policy.ALL_TICKETS_ROLES or not actor.get("id"):
        raise PermissionDenied("Seuls les techniciens et les superviseurs peuvent déplacer un message.")
    intake = session.scalar(select(EmailIntake).where(EmailIntake.message_id == message_id))
    message = session.get(Message, message_id)
    if intake is None or message is None:
        raise NotFound("Message introuvable.")
    source = _visible_ticket(session, actor, message.ticket_id)
    if target_ticket_id is None and target_number not in (None, ""):
        try:
            number = int(str(target_number).strip().lstrip("#"))
        except ValueError:
            raise InvalidInput("Numéro de ticket invalide.") from None
        target_ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == number))
        if target_ticket_id is None:
            raise NotFound(f"Aucun ticket n° {number}.")
    if not target_ticket_id:
        raise InvalidInput("Indiquez le ticket de destination.")
    target = _visible_ticket(session, actor, target_ticket_id)
    if target.id == message.ticket_id:
        raise InvalidInput("Le message est déjà sur ce ticket.")
    now = utcnow()
    message.ticket_id = target.id
    for attachment in message.attachments:
        attachment.ticket_id = target.id
    intake.reason = (
        f"{intake.reason} ; déplacé du ticket n° {source.number} par {actor.get('name') or 'un agent'}"
    )
    intake.ticket_id = target.id
    intake.rule = "moved"
    intake.moved_by_name = actor.get("name")
    for ticket, action in ((source, "message_moved_out"), (target, "message_moved_in")):
        tickets._touch(ticket, actor, now)
        ticket.version += 1
        tickets._history(
            session,
            ticket,
            actor,
            action,
            internal=True,
            new=f"n° {source.number} → n° {target.number}",
            at=now,
        )
    session.flush()
    session.expire(source, ["messages"])
    session.expire(target, ["messages"])
    add_event(
        session,
        OutboxMessage,
        Event(
            type="ticket.message_moved",
            actor=user_actor(actor),
            data={
                "ticket": tickets.snapshot(target),
                "from_ticket": tickets.snapshot(source),
                "message_id": message.id,
            },
        ),
    )
    return intake_to_dict(intake)


def record_notification_failure(session: Session, data: dict[str, Any]) -> Message | None:
    """``notification.failed`` from the notifier: an internal note on the ticket says which mail did not reach whom
    (a bounce is already on the ticket as the bounce mail itself, so only SMTP refusals add a note)."""
    ticket = session.get(Ticket, data.get("ticket_id")) if data.get("ticket_id") else None
    if ticket is None or data.get("source") == "bounce":
        return None
    now = utcnow()
    author = {"id": None, "name": "Notifications", "role": None, "email": None}
    body = (
        f"L'e-mail « {data.get('subject') or data.get('kind')} » envoyé à {data.get('recipient')} n'a pas pu être "
        f"remis{' (échec définitif)' if data.get('permanent') else ''} : {data.get('reason') or 'raison inconnue'}"
    )
    message = tickets._new_message(session, ticket, author, body, internal=True, source="email", now=now)
    tickets._history(
        session, ticket, None, "notification_failed", new=data.get("recipient"), internal=True, at=now
    )
    session.flush()
    add_event(
        session,
        OutboxMessage,
        Event(
            type="ticket.message_added",
            actor=system_actor("notifier"),
            data={"ticket": tickets.snapshot(ticket), "message": tickets.message_to_dict(message)},
        ),
    )
    return message
