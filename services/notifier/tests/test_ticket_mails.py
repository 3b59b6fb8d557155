"""Ticket mails: who gets what, threading headers, never an internal note, preferences, rate limit, bounces."""

from __future__ import annotations

import uuid

from comptoir_common import mailthread
from comptoir_common.events import Event, system_actor
from comptoir_notifier import notifications
from comptoir_notifier.models import FlaggedAddress, OutboxMessage, OutgoingMail
from sqlalchemy import select

KEY = mailthread.thread_key("notifier-test-secret")
CONTEXT = notifications.MailContext(
    public_url="https://support.example",
    mail_domain="comptoir.local",
    support_address="support@comptoir.local",
    thread_key=KEY,
    ack_limit_per_hour=3,
)


def _ticket(**overrides):
    ticket = {
        "id": str(uuid.uuid4()),
        "number": 1042,
        "title": "Ligne coupée",
        "status": "new",
        "status_category": "new",
        "customer_id": str(uuid.uuid4()),
        "requester": {"id": str(uuid.uuid4()), "email": "Claire@Client.example", "name": "Claire"},
        "assignees": [],
        "source": "email",
    }
    return ticket | overrides


def _staff(session, role="agent", **prefs):
    person = {
        "id": str(uuid.uuid4()),
        "email": f"{uuid.uuid4().hex[:6]}@comptoir.local",
        "name": "Alex",
        "role": role,
    }
    notifications.apply_user_event(session, person | {"active": True})
    if prefs:
        notifications.set_preferences(session, person["id"], prefs)
    session.flush()
    return person


def _mails(session, kind=None):
    query = select(OutgoingMail).order_by(OutgoingMail.created_at)
    if kind:
        query = query.where(OutgoingMail.kind == kind)
    return session.scalars(query).all()


def test_acknowledgement_threads_and_routes_replies_back(session):
    ticket = _ticket()
    client_id = "CAF123@mail.gmail.com"
    message = {
        "id": str(uuid.uuid4()),
        "author": {"id": None, "role": "unknown"},
        "body": "Plus de tonalité",
        "internal": False,
        "email": {"message_id": client_id, "automatic": None},
    }
    event = Event(
        type="ticket.created",
        actor=system_actor("email"),
        data=ticket | {"ticket": ticket, "message": message},
    )
    notifications.on_ticket_created(session, event, CONTEXT)
    notifications.on_ticket_created(session, event, CONTEXT)  # redelivered event
    [mail] = _mails(session, "ticket_created")
    assert mail.recipient == "claire@client.example"
    assert mailthread.ticket_from_message_id(KEY, mail.message_id, "comptoir.local") == ticket["id"]
    token = mailthread.make_token(KEY, ticket["id"])
    assert mail.headers["Reply-To"] == f"support+{token}@comptoir.local"
    assert mail.headers["In-Reply-To"] == f"<{client_id}>"
    root = notifications.thread_root_id(CONTEXT, ticket["id"])
    assert mail.headers["References"] == f"{root} <{client_id}>"
    assert mail.headers["Auto-Submitted"] == "auto-generated"
    assert mail.headers[mailthread.LOOP_HEADER] == "comptoir.local"
    assert "[#1042]" in mail.subject
    assert f"[ref:{token}]" in mail.body_text and f"[ref:{token}]" in mail.body_html
    assert "Plus de tonalité" in mail.body_text


def test_unidentified_ticket_reaches_staff_who_did_not_turn_it_off(session):
    keen = _staff(session)
    quiet = _staff(session, staff_unidentified=False)
    ticket = _ticket(customer_id=None)
    event = Event(
        type="ticket.created", actor=system_actor("email"), data=ticket | {"ticket": ticket, "message": {}}
    )
    notifications.on_ticket_created(session, event, CONTEXT)
    recipients = {mail.recipient for mail in _mails(session, "staff_unidentified")}
    assert keen["email"] in recipients and quiet["email"] not in recipients
    assert notifications.preferences(session, quiet["id"])["staff_unidentified"]["enabled"] is False


def test_only_staff_public_replies_are_mailed_never_internal_notes(session):
    agent = _staff(session)
    ticket = _ticket()

    def added(message):
        return Event(
            type="ticket.message_added",
            actor={"kind": "user", "id": agent["id"]},
            data={"ticket": ticket, "message": message},
        )

    base = {"id": str(uuid.uuid4()), "body": "Secret interne : mot de passe du routeur", "attachments": []}
    notifications.on_message_added(
        session, added(base | {"internal": True, "author": {"id": agent["id"], "role": "agent"}}), CONTEXT
    )
    notifications.on_message_added(
        session,
        added(base | {"internal": False, "author": {"id": ticket["requester"]["id"], "role": "client"}}),
        CONTEXT,
    )
    assert _mails(session) == []
    reply = base | {
        "id": str(uuid.uuid4()),
        "internal": False,
        "body": "Nous relançons l'opérateur.",
        "author": {"id": agent["id"], "name": "Alex", "role": "agent"},
    }
    notifications.on_message_added(session, added(reply), CONTEXT)
    [mail] = _mails(session)
    assert (
        mail.kind == "ticket_reply" and "Nous relançons" in mail.body_text and "Secret" not in mail.body_text
    )
    assert mail.subject == "Re: [#1042] Ligne coupée"


def test_status_change_assignment_and_deadline_mails(session):
    agent = _staff(session)
    admin = _staff(session, role="admin")
    ticket = _ticket(assignees=[{"id": agent["id"], "name": "Alex"}])
    change = {
        "old": {"status": "new", "label": "Non traité", "category": "new"},
        "new": {"status": "closed", "label": "Clôturé", "category": "closed"},
    }
    by_client = Event(
        type="ticket.status_changed",
        actor={"kind": "user", "id": ticket["requester"]["id"]},
        data={"ticket": ticket} | change,
    )
    notifications.on_status_changed(session, by_client, CONTEXT)
    assert _mails(session) == []
    by_agent = Event(
        type="ticket.status_changed",
        actor={"kind": "user", "id": agent["id"]},
        data={"ticket": ticket} | change,
    )
    notifications.on_status_changed(session, by_agent, CONTEXT)
    [status_mail] = _mails(session, "ticket_status_changed")
    assert "Clôturé" in status_mail.subject and "rouverte" in status_mail.body_text
    assigned = Event(
        type="ticket.assigned",
        actor={"kind": "user", "id": admin["id"], "name": "Admin"},
        data={"ticket": ticket, "added": [{"id": agent["id"], "name": "Alex"}], "removed": []},
    )
    notifications.on_assigned(session, assigned, CONTEXT)
    assert [m.recipient for m in _mails(session, "staff_assigned")] == [agent["email"]]
    notifications.on_sla_breached(
        session, Event(type="ticket.sla_breached", actor=system_actor(), data={"ticket": ticket}), CONTEXT
    )
    assert [m.recipient for m in _mails(session, "staff_sla_breached")] == [agent["email"]]


def test_acknowledgements_are_rate_limited_per_recipient(session):
    for _ in range(5):
        ticket = _ticket()
        event = Event(
            type="ticket.created",
            actor=system_actor("email"),
            data=ticket | {"ticket": ticket, "message": {}},
        )
        notifications.on_ticket_created(session, event, CONTEXT)
    assert len(_mails(session, "ticket_created")) == CONTEXT.ack_limit_per_hour


def test_automatic_mail_is_never_acknowledged(session):
    ticket = _ticket()
    message = {"email": {"message_id": "x@y", "automatic": "auto_reply"}}
    event = Event(
        type="ticket.created",
        actor=system_actor("email"),
        data=ticket | {"ticket": ticket, "message": message},
    )
    notifications.on_ticket_created(session, event, CONTEXT)
    assert _mails(session, "ticket_created") == []


def test_bounce_marks_the_notification_failed_flags_the_address_and_is_announced(session):
    ticket = _ticket()
    event = Event(
        type="ticket.created", actor=system_actor("email"), data=ticket | {"ticket": ticket, "message": {}}
    )
    [mail] = notifications.on_ticket_created(session, event, CONTEXT)
    bounce = Event(
        type="mail.bounced",
        actor=system_actor("mail_ingest"),
        data={
            "original_message_id": mail.message_id,
            "recipient": mail.recipient,
            "status": "5.1.1",
            "diagnostic": "smtp; 550 User unknown",
            "permanent": True,
            "ticket_id": ticket["id"],
            "mailbox": "support",
        },
    )
    notifications.on_mail_bounced(session, bounce)
    session.flush()
    assert mail.status == "failed" and "5.1.1" in mail.last_error
    assert session.get(FlaggedAddress, mail.recipient) is not None
    failed = session.scalars(
        select(OutboxMessage).where(OutboxMessage.event_type == "notification.failed")
    ).all()
    assert (
        failed[-1].payload["data"]["mail_id"] == mail.id and failed[-1].payload["data"]["source"] == "bounce"
    )
