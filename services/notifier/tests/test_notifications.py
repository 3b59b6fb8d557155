"""Mail queueing (at most once) and SMTP delivery against a real SMTP server."""

from __future__ import annotations

import uuid
from datetime import timedelta

from comptoir_common.db import utcnow
from comptoir_common.events import Event, user_actor
from comptoir_notifier import delivery, notifications
from comptoir_notifier.models import OutboxMessage, OutgoingMail, ProcessedEvent
from comptoir_notifier.service import NotifierService
from comptoir_testing.fixtures import WorkerDatabaseDouble
from comptoir_testing.infra import free_port
from nameko.testing.services import worker_factory

CONTEXT = notifications.MailContext(
    public_url="https://support.example",
    mail_domain="support.example",
    support_address="support@support.example",
)


def ticket_created(email: str = "claire@client.example") -> Event:
    ticket_id = str(uuid.uuid4())
    return Event(
        type="ticket.created",
        actor=user_actor({"id": "u1", "role": "client", "name": "Claire"}),
        data={
            "id": ticket_id,
            "number": 42,
            "title": "Ligne coupée",
            "status": "new",
            "requester": {"id": "u1", "email": email, "name": "Claire Martin"},
            "message": {"body": "Plus de tonalité <b>depuis</b> 9 h."},
        },
    )


def test_acknowledgement_is_french_and_threads(session):
    event = ticket_created()
    [mail] = notifications.on_ticket_created(session, event, CONTEXT)
    assert mail.recipient == "claire@client.example"
    assert mail.subject == "[#42] Votre demande a bien été enregistrée : Ligne coupée"
    assert (
        "Bonjour Claire Martin" in mail.body_text and "Plus de tonalité <b>depuis</b> 9 h." in mail.body_text
    )
    assert "&lt;b&gt;depuis&lt;/b&gt;" in mail.body_html  # the client's text is escaped in HTML
    assert f"https://support.example/tickets/{event.data['id']}" in mail.body_html
    assert mail.headers["Auto-Submitted"] == "auto-generated"
    root = notifications.thread_root_id(CONTEXT, event.data["id"])
    assert mail.headers["References"] == root and mail.headers["In-Reply-To"] == root
    assert root.startswith("<t.") and root.endswith("@support.example>")


def test_same_event_twice_queues_one_mail(session):
    event = ticket_created()
    assert len(notifications.on_ticket_created(session, event, CONTEXT)) == 1
    assert notifications.on_ticket_created(session, event, CONTEXT) == []
    assert session.query(OutgoingMail).filter_by(event_id=event.id).count() == 1


def test_ticket_without_requester_address_sends_nothing(session):
    event = ticket_created()
    event.data["requester"]["email"] = None
    assert notifications.on_ticket_created(session, event, CONTEXT) == []


def test_delivery_reaches_the_smtp_server(session, smtp_server):
    [mail] = notifications.on_ticket_created(session, ticket_created(), CONTEXT)
    with delivery.SmtpSender(delivery.SmtpConfig.from_url(smtp_server.url)) as sender:
        delivery.deliver(mail, sender, "Support <support@support.example>", 5)
    assert mail.status == "sent" and mail.sent_at is not None
    received = smtp_server.wait_for(lambda m: mail.message_id in str(m["Message-ID"]))
    assert received["To"] == "claire@client.example"
    assert received.get_body(("plain",)).get_content().startswith("Bonjour Claire Martin")


def test_permanent_refusal_is_recorded_not_retried_and_the_next_mail_still_goes(session, smtp_server):
    refused_mail, next_mail = (
        notifications.on_ticket_created(session, ticket_created(email), CONTEXT)[0]
        for email in ("refused@client.example", "next@client.example")
    )
    with delivery.SmtpSender(delivery.SmtpConfig.from_url(smtp_server.url)) as sender:
        smtp_server.handler.refuse_with = "550 5.1.1 Mailbox unavailable"
        delivery.deliver(refused_mail, sender, "support@support.example", 5)
        smtp_server.handler.refuse_with = None
        delivery.deliver(next_mail, sender, "support@support.example", 5)
    assert refused_mail.status == "failed" and "550" in refused_mail.last_error
    assert next_mail.status == "sent"
    smtp_server.wait_for(lambda m: m["To"] == "next@client.example")


def test_unreachable_server_is_retried_later(session):
    [mail] = notifications.on_ticket_created(session, ticket_created(), CONTEXT)
    before = utcnow()
    nowhere = delivery.SmtpSender(delivery.SmtpConfig.from_url(f"smtp://127.0.0.1:{free_port()}"))
    delivery.deliver(mail, nowhere, "s@s.example", 5)
    assert mail.status == "pending" and mail.attempts == 1
    assert mail.next_attempt_at >= before + timedelta(seconds=delivery.FIRST_RETRY_SECONDS)
    for _ in range(4):
        delivery.deliver(mail, nowhere, "s@s.example", 5)
    assert mail.status == "failed" and mail.attempts == 5


def test_smtp_urls():
    config = delivery.SmtpConfig.from_url("smtp+starttls://user%40x:p%2Fw@mail.example")
    assert (config.host, config.port, config.username, config.password, config.starttls) == (
        "mail.example",
        587,
        "user@x",
        "p/w",
        True,
    )
    assert delivery.SmtpConfig.from_url("smtps://mail.example").port == 465


def test_service_handles_a_redelivered_event_once(session, smtp_server):
    database = WorkerDatabaseDouble(session, OutboxMessage, ProcessedEvent)
    config = {
        "PUBLIC_URL": CONTEXT.public_url,
        "MAIL_DOMAIN": CONTEXT.mail_domain,
        "SUPPORT_ADDRESS": CONTEXT.support_address,
        "SMTP_URL": smtp_server.url,
        "SMTP_TIMEOUT": 5,
        "FROM_ADDRESS": "support@support.example",
        "MAX_ATTEMPTS": 3,
        "THREAD_SECRET": "test-secret",
    }
    service = worker_factory(NotifierService, db=database, config=config)
    envelope = ticket_created("redelivered@client.example").to_envelope()
    service.on_ticket_created(envelope)
    service.on_ticket_created(envelope)
    assert session.query(OutgoingMail).filter_by(recipient="redelivered@client.example").count() == 1
    service.deliver_due_mail()
    smtp_server.wait_for(lambda m: m["To"] == "redelivered@client.example")
    assert len([m for m in smtp_server.messages if m["To"] == "redelivered@client.example"]) == 1
