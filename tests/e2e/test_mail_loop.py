"""Mail in and out over the real processes: a .eml dropped in the Maildir becomes a ticket and is acknowledged."""

from __future__ import annotations

import time
import uuid

from comptoir_common.db import make_engine, make_session_factory, session_scope
from comptoir_testing import mails
from comptoir_tickets.models import EmailIntake, Ticket
from sqlalchemy import select


def _wait_intake(system, message_key: str, timeout: float = 120.0) -> dict:
    engine = make_engine(system.database_urls["tickets"], pool_size=1)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with session_scope(make_session_factory(engine)) as session:
                intake = session.scalar(select(EmailIntake).where(EmailIntake.message_key == message_key))
                if intake is not None:
                    ticket = session.get(Ticket, intake.ticket_id)
                    return {
                        "ticket_id": ticket.id,
                        "number": ticket.number,
                        "rule": intake.rule,
                        "messages": len(ticket.messages),
                    }
            time.sleep(0.3)
    finally:
        engine.dispose()
    raise AssertionError(
        f"mail {message_key} not taken in within {timeout}s:\n{system.log_tail('mail_ingest')}"
    )


def test_dropped_eml_becomes_a_ticket_and_the_reply_to_the_ack_threads(system):
    sender = f"maud.{uuid.uuid4().hex[:6]}@client.example"
    maildir = system.workdir / "data" / "maildir" / "new"
    maildir.mkdir(parents=True, exist_ok=True)
    message_id = mails.new_message_id()
    (maildir / "first.eml").write_bytes(
        mails.simple(sender=f"Maud <{sender}>", subject="Téléphone muet", message_id=message_id)
    )
    first = _wait_intake(system, message_id.strip("<>"))
    assert first["rule"] == "new_ticket"
    ack = system.smtp.wait_for(lambda m: m["To"] == sender, timeout=90)
    assert f"[#{first['number']}]" in ack["Subject"]
    assert ack["Auto-Submitted"] == "auto-generated"

    reply_id = mails.new_message_id()
    (maildir / "reply.eml").write_bytes(
        mails.simple(
            sender=sender,
            subject=f"Re: {ack['Subject']}",
            message_id=reply_id,
            in_reply_to=ack["Message-ID"],
            references=f"{ack.get('References', '')} {ack['Message-ID']}",
            body="Merci, j'ajoute une précision.",
        )
    )
    reply = _wait_intake(system, reply_id.strip("<>"))
    assert reply["ticket_id"] == first["ticket_id"] and reply["messages"] == 2
