"""The full mail loop over real servers: dovecot (IMAP, TLS) in, aiosmtpd out, every Comptoir process in between.

A client mails the support address → a ticket and an acknowledgement that threads; the client answers the
acknowledgement → same ticket; an agent answers on the web → the client gets a mail answering their last mail;
an agent answers by mail → a staff reply, mailed on to the client.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from comptoir_common import mailthread
from comptoir_testing import mails
from comptoir_tickets.models import EmailIntake, Message, Ticket
from sqlalchemy import select

from tests.e2e.mail_helpers import store_query


def _wait_intake(system, message_key: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:

        def look(session):
            intake = session.scalar(select(EmailIntake).where(EmailIntake.message_key == message_key))
            if intake is None:
                return None
            ticket = session.get(Ticket, intake.ticket_id)
            message = session.get(Message, intake.message_id)
            return {
                "ticket_id": ticket.id,
                "number": ticket.number,
                "rule": intake.rule,
                "author_role": message.author_role,
                "internal": message.internal,
            }

        found = store_query(system, look)
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{message_key} not taken in:\n{system.log_tail('mail_ingest_imap')}")


@pytest.fixture
def imap_ingest(system, imap_server):
    """A mail-ingest instance reading a dovecot mailbox over TLS (besides the system's own Maildir one)."""
    user = f"support-{uuid.uuid4().hex[:6]}"
    mailbox = {
        "name": f"imap-{user}",
        "url": imap_server.url(user),
        "address": "support@comptoir.local",
        "processed_folder": "Traités",
        "poll_seconds": 0.5,
        "ca_file": str(imap_server.cert_file),
    }
    saved = system.extra_env
    system.extra_env = saved | {"MAIL_INGEST_MAILBOXES": json.dumps([mailbox])}
    key = system.start_service("mail_ingest", instance="mail_ingest_imap")
    system.extra_env = saved
    system.wait_healthy([key])
    yield user
    system.stop_process(key)


def test_client_mail_ack_reply_staff_replies_all_thread(system, imap_server, imap_ingest):
    user = imap_ingest
    client = f"lea.{uuid.uuid4().hex[:6]}@client.example"
    agent_email = f"agent.{uuid.uuid4().hex[:6]}@comptoir.local"
    agent = system.create_user(agent_email, "agent", name="Hugo Agent")

    first_id = mails.new_message_id()
    imap_server.append(
        user, mails.simple(sender=f"Léa <{client}>", subject="Fibre coupée", message_id=first_id)
    )
    first = _wait_intake(system, first_id.strip("<>"))
    assert first["rule"] == "new_ticket"
    ack = system.smtp.wait_for(
        lambda m: m["To"] == client and "Fibre coupée" in str(m["Subject"]), timeout=90
    )
    key_ticket = first["ticket_id"]
    assert f"[#{first['number']}]" in ack["Subject"]
    assert ack["In-Reply-To"] == first_id
    assert first_id in ack["References"]
    assert ack["Reply-To"].startswith("support+") and ack["Auto-Submitted"] == "auto-generated"

    # The client answers the acknowledgement from their mail program.
    reply_id = mails.new_message_id()
    imap_server.append(
        user,
        mails.simple(
            sender=client,
            subject=f"Re: {ack['Subject']}",
            message_id=reply_id,
            in_reply_to=ack["Message-ID"],
            references=f"{ack['References']} {ack['Message-ID']}",
            to=ack["Reply-To"],
            body="Toujours coupée ce matin.",
        ),
    )
    reply = _wait_intake(system, reply_id.strip("<>"))
    assert reply["ticket_id"] == key_ticket and reply["rule"] == "message_id"

    # An agent answers on the web: the client gets it, answering their last mail.
    with system.client() as http:
        headers = system.login(http, agent_email, agent["password"])
        response = http.post(
            f"/api/v1/tickets/{key_ticket}/messages",
            json={"body": "Un technicien passe demain.", "internal": False},
            headers=headers,
        )
        assert response.status_code == 201, response.text
        note = http.post(
            f"/api/v1/tickets/{key_ticket}/messages",
            json={"body": "Note interne : client difficile", "internal": True},
            headers=headers,
        )
        assert note.status_code == 201, note.text
    staff_mail = system.smtp.wait_for(
        lambda m: m["To"] == client and "technicien" in m.get_body(("plain",)).get_content(), timeout=90
    )
    assert staff_mail["Subject"] == f"Re: [#{first['number']}] Fibre coupée"
    assert staff_mail["In-Reply-To"] == reply_id
    assert staff_mail["References"].split()[-1] == reply_id
    assert mailthread.split_message_ids(staff_mail["References"])[0].startswith("t.")
    assert staff_mail["Message-ID"].startswith("<t.")

    # The agent answers by mail too (from their own address): a staff reply, mailed on to the client.
    staff_id = mails.new_message_id("comptoir.example")
    imap_server.append(
        user,
        mails.simple(
            sender=agent_email,
            subject=f"Re: {ack['Subject']}",
            message_id=staff_id,
            in_reply_to=ack["Message-ID"],
            body="Intervention confirmée pour 9 h.",
        ),
    )
    by_mail = _wait_intake(system, staff_id.strip("<>"))
    assert (
        by_mail["ticket_id"] == key_ticket and by_mail["author_role"] == "agent" and not by_mail["internal"]
    )
    system.smtp.wait_for(
        lambda m: m["To"] == client and "9 h" in m.get_body(("plain",)).get_content(), timeout=90
    )

    # Staff see why each mail went to the ticket; the client may not; admins see the set-aside mails.
    with system.client() as http:
        headers = system.login(http, agent_email, agent["password"])
        emails = http.get(f"/api/v1/tickets/{key_ticket}/emails", headers=headers)
        assert emails.status_code == 200, emails.text
        assert [e["rule"] for e in emails.json()] == ["new_ticket", "message_id", "message_id"]
        assert all(e["reason"] for e in emails.json())
        sent = http.get(f"/api/v1/tickets/{key_ticket}/notifications", headers=headers).json()
        assert {m["kind"] for m in sent} >= {"ticket_created", "ticket_reply"}
        assert http.get("/api/v1/mail/set-aside", headers=headers).status_code == 403
        prefs = http.put(
            "/api/v1/me/notifications", json={"preferences": {"staff_assigned": False}}, headers=headers
        )
        assert prefs.status_code == 200 and prefs.json()["staff_assigned"]["enabled"] is False
    time.sleep(1.0)
    assert not any(
        "client difficile" in m.get_body(("plain",)).get_content()
        for m in system.smtp.messages
        if m.get_body(("plain",)) is not None
    )
    assert imap_server.count(user, "INBOX") == 0 and imap_server.count(user, "Traités") == 3
