"""Tickets from mail: the tickets side of the mail pipeline (``tickets.ingest_email``).

The mail-ingest service parses a mail, identifies its sender and verifies the signed references it carries; this
module decides, inside the tickets store, which ticket the mail belongs to and records the decision:

1. a verified reference to one of our mails (signed Message-ID in ``In-Reply-To``/``References``);
2. the Message-ID of a mail already taken in (a client answering their own mail, a colleague in Cc replying);
3. a verified plus-address or body marker;
4. a reply taken in earlier that names this mail (the original arriving after its reply joins the reply's ticket),
   or that names the same mail as this one (two answers to an original that has not arrived yet);
5. a ``[#1234]`` subject tag — only when the sender may write on that ticket;
6. otherwise a new ticket (never by subject text alone).

Idempotent on (mailbox, message key): a mail taken in again returns the first answer and changes nothing.
Automatic mail (auto-replies, bounces, list mail) is recorded on a ticket it threads to as an internal note, never
reopens it and never opens a ticket.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from comptoir_common.db import utcnow
from comptoir_common.errors import InvalidInput, NotFound, PermissionDenied
from comptoir_common.events import Event, system_actor, user_actor
from comptoir_common.outbox import add_event, add_events
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from comptoir_tickets import configuration, policy, tickets
from comptoir_tickets.models import (
    Attachment,
    Customer,
    EmailIntake,
    EmailReference,
    Message,
    OutboxMessage,
    Ticket,
    new_id,
)

log = logging.getLogger(__name__)

MAX_TITLE = tickets.MAX_TITLE_LENGTH
MAX_BODY = tickets.MAX_MESSAGE_LENGTH

RULE_LABELS = {
    "message_id": "Réponse à un de nos e-mails (Message-ID signé)",
    "known_reference": "Réponse à un e-mail déjà reçu sur ce ticket",
    "plus_address": "Adresse de réponse du ticket (support+…)",
    "body_marker": "Référence du ticket dans le corps du message",
    "replied_to": "Message d'origine d'une réponse déjà reçue",
    "same_thread": "Réponse au même e-mail qu'un message déjà reçu",
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


def _reopen(session: Session, ticket: Ticket, author: dict[str, Any], now) -> list[tuple[str, dict]]:
    """Move a closed ticket back to the first status of category ``open``; the events to publish."""
    config = configuration.cached(session)
    status = next((s for s in config.statuses.values() if s.category == "open"), None)
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


# --- taking a batch in ----------------------------------------------------------------------------------------
#
# A batch is decided in order, in memory, after a handful of queries that load everything it can refer to (the
# mails already taken in, the tickets its signed references name, the mails its references name, the earlier
# replies that name its mails); then its rows are written in one flush. A mail refers to an earlier mail of the
# same batch through the in-memory maps, so an original and its reply in one batch always thread, whatever the
# number of mails. Per-mail statements remain only for the rare paths (subject tag, reopening a closed ticket).

CHUNK = 500
MAX_REFERENCES = 50


def _chunks(values: list, size: int = CHUNK):
    for start in range(0, len(values), size):
        yield values[start : start + size]


class _NewTicket:
    """A ticket the batch creates (written at the end of the decision pass)."""

    def __init__(self, mail: dict[str, Any]):
        self.mail = mail
        self.ticket: Ticket | None = None


class _Batch:
    """What the mails of a batch may refer to, loaded in a few queries, and what the batch has decided so far."""

    def __init__(self, session: Session, mails: list[dict[str, Any]]):
        self.session = session
        self.config = configuration.cached(session)
        self.intakes: dict[tuple[str, str], EmailIntake] = {}
        keys = sorted({m.get("message_key") or "" for m in mails})
        for chunk in _chunks(keys):
            for row in session.scalars(select(EmailIntake).where(EmailIntake.message_key.in_(chunk))):
                self.intakes[(row.mailbox, row.message_key)] = row
        # Mails named in References/In-Reply-To that were taken in before: rfc id -> (created_at, ticket id).
        refs = sorted({r for m in mails for r in (m.get("references") or [])[-MAX_REFERENCES:] if r})
        self.known: dict[str, tuple[Any, str]] = {}
        for chunk in _chunks(refs):
            rows = session.execute(
                select(EmailIntake.rfc_message_id, EmailIntake.created_at, EmailIntake.ticket_id).where(
                    EmailIntake.rfc_message_id.in_(chunk)
                )
            )
            for rfc_id, created_at, ticket_id in rows:
                if rfc_id not in self.known or created_at > self.known[rfc_id][0]:
                    self.known[rfc_id] = (created_at, ticket_id)
        # Replies taken in before their original: the original's rfc id -> the ticket of the reply; and mails
        # that answered the same mail as one of this batch (siblings): referenced id -> the ticket they went to.
        own_ids = sorted({m["rfc_message_id"] for m in mails if m.get("rfc_message_id")} | set(refs))
        self.replied: dict[str, str] = {}
        for chunk in _chunks(own_ids):
            rows = session.execute(
                select(EmailReference.ref, EmailReference.ticket_id)
                .where(EmailReference.ref.in_(chunk))
                .order_by(EmailReference.id)
            )
            for ref, ticket_id in rows:
                self.replied.setdefault(ref, ticket_id)
        ticket_ids = {c["ticket_id"] for m in mails for c in m.get("candidates") or [] if c.get("ticket_id")}
        ticket_ids |= {ticket_id for _, ticket_id in self.known.values()} | set(self.replied.values())
        self.tickets: dict[str, Ticket] = {}
        for chunk in _chunks(sorted(ticket_ids)):
            for ticket in session.scalars(select(Ticket).where(Ticket.id.in_(chunk))):
                self.tickets[ticket.id] = ticket
        # Decided in this batch: rfc id of each mail -> its ticket (or the new ticket it opens), in order.
        self.batch_ids: dict[str, Ticket | _NewTicket] = {}
        self.batch_replied: dict[str, Ticket | _NewTicket] = {}

    def ticket(self, ticket_id: str | None) -> Ticket | None:
        return self.tickets.get(ticket_id) if ticket_id else None

    def find_thread(self, mail: dict[str, Any]) -> tuple[Ticket | _NewTicket | None, str, str]:
        """(ticket, a new ticket of this batch, or None; rule; reason), trying the rules in order of trust."""
        candidates = mail.get("candidates") or []
        for candidate in (c for c in candidates if c.get("rule") == "message_id"):
            ticket = self.ticket(candidate["ticket_id"])
            if ticket is not None:
                return ticket, "message_id", f"{RULE_LABELS['message_id']} : {candidate.get('detail', '')}"
        references = [ref for ref in (mail.get("references") or [])[-MAX_REFERENCES:] if ref]
        in_batch = [ref for ref in references if ref in self.batch_ids]
        if in_batch:  # taken in just now, in this batch: the latest wins, as below
            ref = in_batch[-1]
            return self.batch_ids[ref], "known_reference", f"{RULE_LABELS['known_reference']} : <{ref}>"
        known = [(self.known[ref][0], ref) for ref in references if ref in self.known]
        for _, ref in sorted(known, reverse=True):
            ticket = self.ticket(self.known[ref][1])
            if ticket is not None:
                return ticket, "known_reference", f"{RULE_LABELS['known_reference']} : <{ref}>"
        for candidate in (c for c in candidates if c.get("rule") in ("plus_address", "body_marker")):
            ticket = self.ticket(candidate["ticket_id"])
            if ticket is not None:
                rule = candidate["rule"]
                return ticket, rule, f"{RULE_LABELS[rule]} : {candidate.get('detail', '')}"
        own_id = mail.get("rfc_message_id")
        if own_id:
            target = self.batch_replied.get(own_id) or self.ticket(self.replied.get(own_id))
            if target is not None:
                return target, "replied_to", f"{RULE_LABELS['replied_to']} : <{own_id}>"
        for ref in reversed(references):  # another answer to the same mail, whose original has not come (yet)
            target = self.batch_replied.get(ref) or self.ticket(self.replied.get(ref))
            if target is not None:
                return target, "same_thread", f"{RULE_LABELS['same_thread']} : <{ref}>"
        refused = []
        sender = mail.get("sender") or {}
        for number in mail.get("subject_numbers") or []:
            ticket = self.session.scalar(select(Ticket).where(Ticket.number == int(number)))
            if ticket is None:
                refused.append(f"[#{number}] inconnu")
            elif may_write(self.session, sender, ticket):
                self.tickets[ticket.id] = ticket
                return ticket, "subject_tag", f"{RULE_LABELS['subject_tag']} : [#{number}]"
            else:
                refused.append(f"[#{number}] ignoré (l'expéditeur n'est pas autorisé sur ce ticket)")
        reason = "Aucune référence à un ticket existant"
        if refused:
            reason += " ; " + ", ".join(refused)
        return None, "new_ticket", reason

    def remember(self, mail: dict[str, Any], target: Ticket | _NewTicket) -> None:
        if mail.get("rfc_message_id"):
            self.batch_ids[mail["rfc_message_id"]] = target
        for ref in (mail.get("references") or [])[-MAX_REFERENCES:]:
            if ref:
                self.batch_replied.setdefault(ref, target)


def _check_keys(mail: dict[str, Any]) -> tuple[str, str]:
    mailbox = (mail.get("mailbox") or "").strip()
    message_key = (mail.get("message_key") or "").strip()
    if not mailbox or not message_key:
        raise InvalidInput("Boîte aux lettres et identifiant du message obligatoires.")
    return mailbox, message_key


def _new_ticket(
    session: Session, batch: _Batch, mail: dict[str, Any], author: dict[str, Any], number: int, now, due_dates
) -> Ticket:
    sender = mail.get("sender") or {}
    customer_id = sender.get("customer_id") or None
    customer = session.get(Customer, customer_id) if customer_id else None
    status = batch.config.default_status
    priority = batch.config.default_priority
    ticket = Ticket(
        id=new_id(),
        number=number,
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
        first_response_at=None,
        closed_at=None,
    )
    # The tickets of a batch start their clocks within the same millisecond: one deadline computation per target.
    if priority.target_minutes not in due_dates:
        tickets._start_clock(ticket, batch.config.calendar, now)
        due_dates[priority.target_minutes] = ticket.resolution_due_at
    else:
        ticket.sla_running_since = now
        ticket.resolution_due_at = due_dates[priority.target_minutes]
        tickets._refresh_breach(ticket, now)
    session.add(ticket)
    return ticket


def _take_in(session: Session, mails: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Take a batch in, in order; the caller holds the savepoint. See the comment above ``_Batch``."""
    batch = _Batch(session, mails)
    start = utcnow()
    seen: set[tuple[str, str]] = set()
    # Pass 1: decide, in order.
    decisions: list[dict[str, Any]] = []
    for mail in mails:
        mailbox, message_key = _check_keys(mail)
        existing = batch.intakes.get((mailbox, message_key))
        if existing is not None:
            decisions.append({"result": _result(existing, "duplicate")})
            continue
        if (mailbox, message_key) in seen:  # the same mail twice in one batch: the second is a duplicate
            decisions.append({"duplicate_of": (mailbox, message_key)})
            continue
        seen.add((mailbox, message_key))
        automatic = mail.get("automatic") or None
        target, rule, reason = batch.find_thread(mail)
        if target is None and automatic:
            decisions.append(
                {
                    "result": {
                        "ticket_id": None,
                        "message_id": None,
                        "created": False,
                        "rule": rule,
                        "reason": f"E-mail automatique ({automatic}) sans ticket correspondant : ignoré",
                        "outcome": "ignored",
                    }
                }
            )
            continue
        linked = None
        closed = isinstance(target, Ticket) and target.status_category == "closed"
        if closed and not automatic and mail.get("closed_policy") == "new_ticket":
            linked = target
            reason = f"{reason} ; le ticket n° {target.number} est clôturé : nouveau ticket lié"
            rule = f"{rule}+new"
            target = None
        elif closed and not automatic:
            reason = f"{reason} ; le ticket était clôturé : rouvert"
        created = target is None
        if created:
            target = _NewTicket(mail)
        batch.remember(mail, target)
        decisions.append(
            {
                "mail": mail,
                "target": target,
                "created": created,
                "rule": rule,
                "reason": reason,
                "linked": linked,
            }
        )
    # Pass 2: write. Ticket numbers for the whole batch in one statement.
    new_count = sum(1 for d in decisions if d.get("created"))
    numbers = iter(tickets.next_ticket_numbers(session, new_count) if new_count else [])
    due_dates: dict[int, Any] = {}  # deadline per SLA target, computed from the batch's start
    counts: dict[tuple[str | None, str], int] = {}
    results: list[dict[str, Any]] = []
    intakes_by_key: dict[tuple[str, str], EmailIntake] = {}
    events: list[Event] = []
    # The new tickets first, in one flush: the rows that follow refer to them.
    for index, decision in enumerate(decisions):
        if decision.get("created"):
            target = decision["target"]
            target.ticket = _new_ticket(
                session,
                batch,
                target.mail,
                _author(target.mail.get("sender") or {}),
                next(numbers),
                start + timedelta(microseconds=index),
                due_dates,
            )
            key = (target.ticket.customer_id, target.ticket.status_category)
            counts[key] = counts.get(key, 0) + 1
    if new_count:
        session.flush()
    for index, decision in enumerate(decisions):
        if "result" in decision:
            results.append(decision["result"])
            continue
        if "duplicate_of" in decision:
            results.append(_result(intakes_by_key[decision["duplicate_of"]], "duplicate"))
            continue
        # One instant per mail, in batch order: the messages of a ticket keep the order of the mails.
        now = start + timedelta(microseconds=index)
        mail = decision["mail"]
        mailbox, message_key = _check_keys(mail)
        sender = mail.get("sender") or {}
        author = _author(sender)
        automatic = mail.get("automatic") or None
        target, created, linked = decision["target"], decision["created"], decision["linked"]
        ticket = target.ticket if isinstance(target, _NewTicket) else target
        closed = not created and ticket.status_category == "closed"
        body = _body(mail)
        if linked is not None:
            body = f"[Suite du ticket clôturé n° {linked.number}]\n\n{body}"
        message = tickets._new_message(
            session, ticket, author, body, internal=bool(automatic), source="email", now=now, flush=False
        )
        for item in mail.get("attachments") or []:
            attachment = Attachment(
                id=new_id(),
                ticket_id=ticket.id,
                message_id=message.id,
                filename=(item.get("filename") or "piece-jointe")[:255],
                content_type=(item.get("content_type") or "application/octet-stream")[:100],
                size=int(item.get("size") or 0),
                blob_key=item["blob_key"],
                created_at=now,
            )
            message.attachments.append(attachment)
            session.add(attachment)
        pending_events: list[tuple[str, dict]] = []
        if created:
            tickets._history(session, ticket, author, "created", new=ticket.title, at=now)
        else:
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
        intake = EmailIntake(
            id=new_id(),
            mailbox=mailbox,
            message_key=message_key,
            rfc_message_id=mail.get("rfc_message_id"),
            ticket_id=ticket.id,
            message_id=message.id,
            created_ticket=created,
            rule=decision["rule"],
            reason=decision["reason"],
            sender_email=author["email"],
            sender_kind=sender.get("kind") or "unknown",
            automatic=automatic,
            body_html=mail.get("html") or None,
            attachments=mail.get("attachments") or [],
            raw_blob_key=mail.get("raw_blob_key"),
            linked_ticket_id=linked.id if linked is not None else None,
            created_at=now,
        )
        session.add(intake)
        intakes_by_key[(mailbox, message_key)] = intake
        for ref in dict.fromkeys(r for r in (mail.get("references") or [])[-MAX_REFERENCES:] if r):
            session.add(EmailReference(ref=ref[:400], ticket_id=ticket.id, intake_id=intake.id))
        actor = _event_actor(author)
        snapshot = tickets.snapshot(ticket)
        message_data = tickets.message_to_dict(message) | {
            "email": {"message_id": intake.rfc_message_id, "rule": intake.rule, "automatic": automatic}
        }
        if created:
            data = snapshot | {"ticket": snapshot, "message": message_data}
            if linked is not None:
                data["linked_ticket_id"] = linked.id
            events.append(Event(type="ticket.created", actor=actor, data=data))
        else:
            for event_type, extra in pending_events:
                events.append(Event(type=event_type, actor=actor, data={"ticket": snapshot} | extra))
            events.append(
                Event(
                    type="ticket.message_added",
                    actor=actor,
                    data={"ticket": snapshot, "message": message_data},
                )
            )
        results.append(_result(intake, "created" if created else "added"))
    session.flush()
    add_events(session, OutboxMessage, events)  # one multi-row insert, in order
    for (customer_id, category), delta in counts.items():
        tickets._adjust_count(session, customer_id, category, delta)
    return results


def ingest_email(session: Session, *, mail: dict[str, Any]) -> dict[str, Any]:
    """Take in one parsed mail (see ``docs/email.md`` for the fields); returns
    ``{ticket_id, message_id, created, rule, reason, outcome}`` — ``outcome`` is ``created``, ``added``,
    ``duplicate`` or ``ignored`` (automatic mail that threads to no ticket). The caller commits."""
    return _take_in(session, [mail])[0]


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
            return _take_in(session, mails)
    except Exception:  # noqa: BLE001 - redone one by one below, where each failure is reported
        log.info("a mail of the batch failed; taking the batch in one by one", exc_info=True)
    results = []
    for mail in mails:
        try:
            with session.begin_nested():
                results.append(_take_in(session, [mail])[0])
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
    session.execute(
        update(EmailReference).where(EmailReference.intake_id == intake.id).values(ticket_id=target.id)
    )
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
