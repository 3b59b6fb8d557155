"""Threading decisions shown to staff and moving a mail's message to another ticket (tickets domain, real DB)."""

from __future__ import annotations

import uuid

import pytest
from comptoir_common.errors import InvalidInput, NotFound, PermissionDenied
from comptoir_tickets import email_intake, tickets
from comptoir_tickets.models import EmailIntake, Ticket
from sqlalchemy import select


def _mail(sender: str, subject: str, *, references: list[str] | None = None, customer_id=None) -> dict:
    key = f"{uuid.uuid4().hex}@client.example"
    return {
        "mailbox": "support",
        "message_key": key,
        "rfc_message_id": key,
        "references": references or [],
        "candidates": [],
        "subject_numbers": [],
        "sender": {
            "email": sender,
            "name": None,
            "kind": "contact" if customer_id else "unknown",
            "customer_id": customer_id,
        },
        "subject": subject,
        "title": subject,
        "text": f"Texte de « {subject} »",
        "attachments": [],
        "automatic": None,
    }


def test_staff_move_a_mail_to_another_ticket_and_later_replies_follow(session, world):
    agent = world.person("agent", name="Agathe Agent")
    first = email_intake.ingest_email(session, mail=_mail("paul@client.example", "Ligne coupée"))
    stray = _mail("paul@client.example", "Autre chose")
    second = email_intake.ingest_email(session, mail=stray)
    assert first["outcome"] == second["outcome"] == "created"
    target = session.get(Ticket, first["ticket_id"])

    shown = email_intake.email_messages(session, actor=agent, ticket_id=second["ticket_id"])
    assert [(m["rule"], m["reason"]) for m in shown] == [
        ("new_ticket", "Aucune référence à un ticket existant")
    ]

    moved = email_intake.move_email_message(
        session, actor=agent, message_id=second["message_id"], target_number=f"#{target.number}"
    )
    assert moved["ticket_id"] == target.id and moved["rule"] == "moved"
    assert "déplacé du ticket n°" in moved["reason"] and "Agathe Agent" in moved["reason"]
    assert [
        m["message_id"] for m in email_intake.email_messages(session, actor=agent, ticket_id=target.id)
    ] == [
        first["message_id"],
        second["message_id"],
    ]
    assert email_intake.email_messages(session, actor=agent, ticket_id=second["ticket_id"]) == []
    for ticket_id, action in ((second["ticket_id"], "message_moved_out"), (target.id, "message_moved_in")):
        entries = tickets.history(session, actor=agent, ticket_id=ticket_id)
        assert any(h["action"] == action and h["actor"]["name"] == "Agathe Agent" for h in entries), entries

    # A reply to the moved mail now lands on the ticket it was moved to.
    reply = email_intake.ingest_email(
        session, mail=_mail("paul@client.example", "Re: Autre chose", references=[stray["rfc_message_id"]])
    )
    assert (reply["ticket_id"], reply["rule"]) == (target.id, "known_reference")


def test_move_checks_role_target_and_visibility(session, world):
    customer = world.customer("Boulangerie Martin")
    other = world.customer("Garage Durand")
    client = world.person("client", customer_id=customer)
    sales = world.person("sales")
    admin = world.person("admin")
    mine = email_intake.ingest_email(session, mail=_mail("a@martin.example", "Fax", customer_id=customer))
    theirs = email_intake.ingest_email(session, mail=_mail("b@durand.example", "Box", customer_id=other))
    unidentified = email_intake.ingest_email(session, mail=_mail("x@inconnu.example", "Bonjour"))

    with pytest.raises(PermissionDenied):  # a client never sees threading decisions, even on their own ticket
        email_intake.email_messages(session, actor=client, ticket_id=mine["ticket_id"])
    with pytest.raises(PermissionDenied):
        email_intake.move_email_message(
            session, actor=client, message_id=mine["message_id"], target_ticket_id=theirs["ticket_id"]
        )
    # A sales rep reads the decisions of tickets they see (unidentified ones), not of others; moving is not theirs.
    assert email_intake.email_messages(session, actor=sales, ticket_id=unidentified["ticket_id"])
    with pytest.raises(NotFound):
        email_intake.email_messages(session, actor=sales, ticket_id=theirs["ticket_id"])
    with pytest.raises(PermissionDenied):
        email_intake.move_email_message(
            session, actor=sales, message_id=unidentified["message_id"], target_ticket_id=mine["ticket_id"]
        )

    with pytest.raises(NotFound):
        email_intake.move_email_message(
            session, actor=admin, message_id=mine["message_id"], target_number=999999
        )
    with pytest.raises(InvalidInput):
        email_intake.move_email_message(
            session, actor=admin, message_id=mine["message_id"], target_number="abc"
        )
    with pytest.raises(InvalidInput):
        email_intake.move_email_message(
            session, actor=admin, message_id=mine["message_id"], target_ticket_id=mine["ticket_id"]
        )
    with pytest.raises(NotFound):
        email_intake.move_email_message(
            session, actor=admin, message_id=str(uuid.uuid4()), target_ticket_id=mine["ticket_id"]
        )
    intake = session.scalar(select(EmailIntake).where(EmailIntake.message_id == mine["message_id"]))
    assert intake.ticket_id == mine["ticket_id"] and intake.rule == "new_ticket"  # nothing changed


def test_a_mail_twice_in_one_batch_is_taken_in_once_and_numbers_follow(session):
    first, again, other = email_intake.ingest_emails(
        session,
        mails=[
            (mail := _mail("zoe@client.example", "Wifi")),
            dict(mail),
            _mail("zoe@client.example", "Imprimante"),
        ],
    )
    assert (first["outcome"], again["outcome"], other["outcome"]) == ("created", "duplicate", "created")
    assert again["message_id"] == first["message_id"]
    numbers = [session.get(Ticket, r["ticket_id"]).number for r in (first, other)]
    assert numbers[1] == numbers[0] + 1
