"""The pipeline end to end over a Maildir and real stores: threading, idempotency, loops, quarantine, crashes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from comptoir_common.db import session_scope
from comptoir_mail_ingest.models import OutboxMessage
from comptoir_testing import mails
from comptoir_tickets.models import EmailIntake, Message, Ticket
from sqlalchemy import func, select

CORPUS_DIR = Path(__file__).parent / "corpus" / "cpython"


def _ticket(h, ticket_id):
    with session_scope(h.tickets_factory) as session:
        ticket = session.get(Ticket, ticket_id)
        return {
            "number": ticket.number,
            "status": ticket.status_category,
            "title": ticket.title,
            "customer_id": ticket.customer_id,
            "requester_email": ticket.requester_email,
            "messages": [(m.body, m.internal, m.author_name) for m in ticket.messages],
        }


def _close(session, ticket_id):
    from comptoir_tickets.models import Status

    closed = session.scalar(select(Status).where(Status.category == "closed").limit(1))
    ticket = session.get(Ticket, ticket_id)
    ticket.status, ticket.status_category = closed.key, "closed"


def _sender(tag: str) -> str:
    return f"{tag}.{uuid.uuid4().hex[:6]}@client.example"


def test_original_and_replies_in_one_batch_thread_and_redelivery_creates_nothing(harness):
    h = harness()
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    sender = _sender("claire")
    original_id = mails.new_message_id()
    original = mails.simple(sender=sender, subject="Panne standard", message_id=original_id, date=t0)
    reply = mails.simple(
        sender=sender,
        subject="Re: Panne standard",
        in_reply_to=original_id,
        references=original_id,
        date=t0 + timedelta(minutes=2),
        body="Toujours en panne.",
    )
    colleague = mails.simple(
        sender=_sender("marc"),
        subject="RE: Panne standard",
        references=f"<x@y> {original_id}",
        date=t0 + timedelta(minutes=3),
        body="Chez moi aussi.",
    )
    # Files arrive in the wrong order: replies before the original.
    for name, raw in (("1-colleague.eml", colleague), ("2-reply.eml", reply), ("3-original.eml", original)):
        h.drop(raw, name)
    stats = h.run()
    assert (stats.fetched, stats.done, stats.tickets_created) == (3, 3, 1)
    rows = h.rows()
    assert {row.ticket_id for row in rows} == {rows[0].ticket_id}
    assert sorted(row.rule for row in rows) == ["known_reference", "known_reference", "new_ticket"]
    ticket = _ticket(h, rows[0].ticket_id)
    assert ticket["title"] == "Panne standard" and ticket["requester_email"] == sender
    assert [body for body, _, _ in ticket["messages"]][1:] == ["Toujours en panne.", "Chez moi aussi."]
    assert not list((h.maildir.path / "new").iterdir())
    assert len(list((h.maildir.path / "cur").iterdir())) == 3

    # The same three mails delivered again (e.g. an IMAP server that re-serves them): nothing new.
    for name, raw in (("a.eml", colleague), ("b.eml", reply), ("c.eml", original)):
        h.drop(raw, name)
    stats = h.run()
    assert (stats.fetched, stats.duplicates, stats.tickets_created) == (3, 3, 0)
    assert [row.deliveries for row in h.rows()] == [2, 2, 2]
    assert len(_ticket(h, rows[0].ticket_id)["messages"]) == 3


def test_signed_message_id_plus_address_and_body_marker_thread_but_forgeries_do_not(harness):
    from comptoir_common import mailthread

    h = harness()
    sender = _sender("ana")
    h.drop(mails.simple(sender=sender, subject="Première demande"))
    h.run()
    ticket_id = h.rows()[0].ticket_id
    ours = h.token_message_id(ticket_id)
    token = mailthread.make_token(h.key, ticket_id)
    h.drop(mails.simple(sender=sender, subject="Re: x", in_reply_to=ours, body="réponse 1"))
    h.drop(
        mails.simple(sender=sender, subject="autre", to=f"support+{token}@comptoir.local", body="réponse 2")
    )
    h.drop(mails.simple(sender=sender, subject="encore", body=f"réponse 3\n> [ref:{token}]"))
    forged = mailthread.make_token(mailthread.thread_key("not-our-secret"), ticket_id)
    h.drop(mails.simple(sender=_sender("eve"), subject="x", in_reply_to=f"<t.{forged}.abc@comptoir.local>"))
    h.run()
    rows = h.rows()
    assert [row.rule for row in rows] == [
        "new_ticket",
        "message_id",
        "plus_address",
        "body_marker",
        "new_ticket",
    ]
    assert [row.ticket_id == ticket_id for row in rows] == [True, True, True, True, False]


def test_subject_tag_only_from_someone_who_may_write_on_the_ticket(harness):
    h = harness()
    sender = _sender("bob")
    h.drop(mails.simple(sender=sender, subject="Routeur HS"))
    h.run()
    first = h.rows()[0]
    number = _ticket(h, first.ticket_id)["number"]
    h.drop(mails.simple(sender=sender.upper(), subject=f"Re: [#{number}] Routeur HS", body="photo jointe"))
    h.drop(mails.simple(sender=_sender("stranger"), subject=f"[#{number}] injection", body="spam"))
    h.run()
    own, stranger = h.rows()[1:]
    assert own.ticket_id == first.ticket_id and own.rule == "subject_tag"
    assert stranger.ticket_id != first.ticket_id and stranger.rule == "new_ticket"
    with session_scope(h.tickets_factory) as session:
        intake = session.scalar(
            select(EmailIntake).where(EmailIntake.message_id == stranger.ticket_message_id)
        )
        assert "pas autorisé" in intake.reason and f"[#{number}]" in intake.reason


def test_subject_text_alone_never_threads(harness):
    h = harness()
    h.drop(mails.simple(sender=_sender("a"), subject="Imprimante"))
    h.run()
    h.drop(mails.simple(sender=_sender("a"), subject="Re: Imprimante"))
    h.run()
    first, second = h.rows()
    assert first.ticket_id != second.ticket_id


def test_auto_replies_never_open_tickets_nor_reopen_and_are_recorded_when_they_thread(harness):
    h = harness()
    sender = _sender("olivia")
    h.drop(mails.simple(sender=sender, subject="Question"))
    h.run()
    ticket_id = h.rows()[0].ticket_id
    with session_scope(h.tickets_factory) as session:
        _close(session, ticket_id)
    ours = h.token_message_id(ticket_id)
    h.drop(
        mails.simple(
            sender=sender,
            subject="Absent",
            in_reply_to=ours,
            extra_headers={"Auto-Submitted": "auto-replied"},
        )
    )
    h.drop(mails.simple(sender=_sender("oof"), subject="Absent", extra_headers={"X-Autoreply": "yes"}))
    h.drop(mails.simple(sender=_sender("list"), subject="News", extra_headers={"List-Id": "<l.example>"}))
    h.run()
    threaded, lonely, listed = h.rows()[1:]
    assert threaded.status == "done" and threaded.ticket_id == ticket_id
    assert lonely.status == "ignored" and "automatique" in lonely.reason
    assert listed.status == "ignored"
    ticket = _ticket(h, ticket_id)
    assert ticket["status"] == "closed"
    assert ticket["messages"][-1][1] is True  # recorded as an internal note, never mailed to anyone


def test_reply_to_closed_ticket_reopens_or_opens_a_linked_ticket(harness):
    for policy in ("reopen", "new_ticket"):
        h = harness(closed_policy=policy)
        sender = _sender("rita")
        h.drop(mails.simple(sender=sender, subject="Fax"))
        h.run()
        ticket_id = h.rows()[0].ticket_id
        with session_scope(h.tickets_factory) as session:
            _close(session, ticket_id)
        h.drop(mails.simple(sender=sender, subject="Re: Fax", in_reply_to=h.token_message_id(ticket_id)))
        h.run()
        reply = h.rows()[1]
        if policy == "reopen":
            assert reply.ticket_id == ticket_id and _ticket(h, ticket_id)["status"] == "open"
        else:
            assert reply.ticket_id != ticket_id and _ticket(h, ticket_id)["status"] == "closed"
            assert "Suite du ticket clôturé" in _ticket(h, reply.ticket_id)["messages"][0][0]


def test_bounce_of_our_notification_goes_to_its_ticket_and_is_announced(harness):
    h = harness()
    sender = _sender("dan")
    h.drop(mails.simple(sender=sender, subject="Câble"))
    h.run()
    ticket_id = h.rows()[0].ticket_id
    ours = h.token_message_id(ticket_id)
    h.drop(mails.dsn(original_message_id=ours, recipient=sender))
    h.run()
    bounce = h.rows()[1]
    assert bounce.status == "done" and bounce.ticket_id == ticket_id and bounce.rule == "message_id"
    ticket = _ticket(h, ticket_id)
    assert ticket["status"] == "new" and ticket["messages"][-1][1] is True
    assert "Échec de distribution" in ticket["messages"][-1][0]
    event = h.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.event_type == "mail.bounced")
        .order_by(OutboxMessage.seq.desc())
    ).first()
    assert event.payload["data"]["original_message_id"] == ours
    assert event.payload["data"]["permanent"] is True and event.payload["data"]["recipient"] == sender


def test_our_own_mail_coming_back_is_ignored(harness):
    h = harness()
    h.drop(mails.simple(subject="loop", message_id=h.token_message_id(str(uuid.uuid4()))))
    h.drop(mails.simple(subject="loop 2", extra_headers={"X-Comptoir-Loop": "comptoir.local"}))
    h.run()
    assert [row.status for row in h.rows()] == ["ignored", "ignored"]


def test_identified_senders_staff_replies_and_unknown_senders(harness):
    from comptoir_mail_ingest import directory

    h = harness()
    customer_id = str(uuid.uuid4())
    contact_email, agent_email = _sender("contact"), _sender("agent")
    directory.apply_contact_upserted(
        h.session,
        {
            "id": str(uuid.uuid4()),
            "customer_id": customer_id,
            "name": "Carla Contact",
            "emails": [contact_email.upper()],
        },
    )
    agent_id = str(uuid.uuid4())
    directory.apply_user_event(
        h.session,
        {
            "id": agent_id,
            "email": agent_email,
            "name": "Alex Agent",
            "role": "agent",
            "customer_id": None,
            "active": True,
        },
    )
    h.session.commit()
    h.drop(mails.simple(sender=f"Carla <{contact_email}>", subject="Contact connu"))
    h.drop(mails.simple(sender=_sender("inconnu"), subject="Inconnu"))
    h.run()
    known, unknown = h.rows()
    assert _ticket(h, known.ticket_id)["customer_id"] == customer_id
    assert _ticket(h, unknown.ticket_id)["customer_id"] is None
    assert "non identifié" in _ticket(h, unknown.ticket_id)["messages"][0][2]
    h.drop(
        mails.simple(
            sender=agent_email,
            subject="Re",
            in_reply_to=h.token_message_id(known.ticket_id),
            body="On s'en occupe.",
        )
    )
    h.run()
    with session_scope(h.tickets_factory) as session:
        message = session.get(Message, h.rows()[2].ticket_message_id)
        assert message.author_id == agent_id and message.internal is False


def test_corpus_every_mail_ends_somewhere_with_a_reason_and_none_crashes(harness):
    h = harness(max_attachment_bytes=1024 * 1024)
    cases = {f"cpython/{path.name}": path.read_bytes() for path in sorted(CORPUS_DIR.glob("msg_*.txt"))}
    cases |= mails.corpus()
    names = {}
    for index, (name, raw) in enumerate(cases.items()):
        names[h.drop(raw, f"{index:03d}.eml")] = name
    stats = h.run()
    rows = h.rows()
    assert stats.fetched == len(cases)
    by_subject = {}
    for row in rows:
        assert row.status in ("done", "ignored", "quarantined"), (row.subject, row.status)
        if row.status == "done":
            assert row.ticket_id and row.ticket_message_id and row.rule
        else:
            assert row.reason
        by_subject[row.subject] = row
    assert not list((h.maildir.path / "new").iterdir())
    statuses = {row.status for row in rows}
    assert statuses == {"done", "ignored", "quarantined"}
    # A few shapes checked one by one.
    with session_scope(h.tickets_factory) as session:

        def intake_of(subject):
            row = by_subject[subject]
            return session.scalar(select(EmailIntake).where(EmailIntake.message_id == row.ticket_message_id))

        latin = intake_of("Problème de facturation à régler")
        assert "décembre" in session.get(Message, latin.message_id).body
        inline = intake_of("Capture d'écran")
        assert inline.attachments[0]["filename"] == "capture écran.png" and inline.attachments[0]["inline"]
        assert 'src="cid:capture1@zoe"' in inline.body_html
        outlook = intake_of("RE: Ligne coupée")
        assert "<script>" not in outlook.body_html and "javascript:" not in outlook.body_html
        huge = intake_of("Journal serveur (gros)")
        assert huge.attachments == []
        assert "Pièce jointe refusée" in session.get(Message, huge.message_id).body
        empty = next(row for row in rows if row.sender == "sans.objet@client.example")
        assert session.get(Ticket, empty.ticket_id).title == "Message sans objet de Sans Objet"
    future = by_subject["Date future"]
    assert future.mail_date <= future.arrived_at
    for subject in ("Réponse automatique : absent", "Absence du bureau", "La lettre du mois", "Promo"):
        assert by_subject[subject].status == "ignored"
    reasons = [row.reason for row in rows if row.status == "quarantined"]
    assert any("Expéditeur absent" in reason for reason in reasons)  # no_from
    assert any("Message vide" in reason for reason in reasons)  # empty_file
    assert by_subject["MIME cassé"].status in ("done", "quarantined")


def test_oversized_mail_is_quarantined_then_replayable(harness):
    from comptoir_mail_ingest import pipeline

    h = harness(max_message_bytes=50_000)
    h.drop(mails.with_attachment(size=80_000, sender=_sender("big")))
    h.drop(mails.simple(sender=_sender("small"), subject="Petit"))
    h.run()
    big, small = h.rows()
    assert big.status == "quarantined" and "trop volumineux" in big.reason
    assert small.status == "done"
    assert h.blobs.exists(big.blob_key)  # kept: nothing is dropped
    # The admin raises the limit and replays the mail.
    h.pipeline.config = type(h.config)(**{**h.config.__dict__, "max_message_bytes": 1_000_000})
    pipeline.replay(h.session, big.id)
    h.session.commit()
    h.run()
    assert h.rows()[0].status == "done"
    assert any(row["id"] == big.id for row in pipeline.list_set_aside(h.session)) is False


def test_crash_between_tickets_commit_and_our_commit_loses_and_doubles_nothing(harness):
    h = harness()
    sender = _sender("kim")
    for index in range(5):
        h.drop(mails.simple(sender=sender, subject=f"Demande {index}"))
    real_ingest = h.pipeline.ingest

    def ingest_then_crash(batch):
        real_ingest(batch)
        raise ConnectionError("killed after the tickets commit")

    h.pipeline.ingest = ingest_then_crash
    with pytest.raises(ConnectionError):
        h.run()
    h.session.rollback()
    assert [row.status for row in h.rows()] == ["pending"] * 5
    assert len(list((h.maildir.path / "new").iterdir())) == 5  # nothing acked on the server
    h.pipeline.ingest = real_ingest
    stats = h.run()
    assert stats.done == 5 and stats.tickets_created == 0
    with session_scope(h.tickets_factory) as session:
        count = session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.requester_email == sender)
        )
    assert count == 5


def test_failed_notification_is_recorded_on_its_ticket_as_an_internal_note(harness):
    from comptoir_tickets import email_intake

    h = harness()
    h.drop(mails.simple(sender=_sender("nadia"), subject="Adresse fausse"))
    h.run()
    ticket_id = h.rows()[0].ticket_id
    data = {
        "ticket_id": ticket_id,
        "kind": "ticket_reply",
        "recipient": "nadia@x.example",
        "subject": "Re: x",
        "reason": "550 5.1.1 User unknown",
        "permanent": True,
        "source": "smtp",
        "mail_id": str(uuid.uuid4()),
    }
    with session_scope(h.tickets_factory) as session:
        note = email_intake.record_notification_failure(session, data)
        assert note is not None and note.internal
        assert email_intake.record_notification_failure(session, data | {"source": "bounce"}) is None
    body, internal, _ = _ticket(h, ticket_id)["messages"][-1]
    assert internal and "nadia@x.example" in body and "550 5.1.1" in body


def test_discarded_mail_leaves_the_list_and_stays_recognised_on_redelivery(harness):
    from comptoir_common.errors import InvalidInput
    from comptoir_mail_ingest import pipeline

    h = harness(max_message_bytes=50_000)
    raw = mails.with_attachment(size=80_000, sender=_sender("lourd"), subject="Plans du site")
    h.drop(raw)
    h.run()
    (row,) = h.rows()
    detail = pipeline.set_aside_detail(h.session, h.blobs, row.id)
    assert detail["status"] == "quarantined" and "Subject: Plans du site" in detail["headers"]
    assert "Content-Disposition" not in detail["headers"]  # the header block only, not the body
    pipeline.discard(h.session, row.id, "Alice Admin")
    h.session.commit()
    (row,) = h.rows()
    assert row.status == "discarded" and row.reason.endswith("supprimé par Alice Admin")
    assert all(item["id"] != row.id for item in pipeline.list_set_aside(h.session))
    with pytest.raises(InvalidInput):
        pipeline.discard(h.session, row.id, "Alice Admin")
    h.drop(raw)  # delivered again: recognised, not processed, acked
    stats = h.run()
    assert (stats.fetched, stats.duplicates, stats.quarantined) == (1, 1, 0)
    assert [r.status for r in h.rows()] == ["discarded"]
    assert not list((h.maildir.path / "new").iterdir())


def test_original_arriving_after_its_reply_joins_the_reply_ticket(harness):
    h = harness()
    sender = _sender("lea")
    original_id = mails.new_message_id()
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    # The reply is delivered first (the original was delayed on the way), in an earlier pass.
    h.drop(
        mails.simple(
            sender=sender,
            subject="Re: Badge perdu",
            in_reply_to=original_id,
            references=original_id,
            date=t0 + timedelta(minutes=5),
            body="Je l'ai retrouvé.",
        )
    )
    h.run()
    # A colleague's answer to the same original, also before it.
    h.drop(
        mails.simple(
            sender=_sender("marc"),
            subject="RE: Badge perdu",
            references=f"<autre@x.example> {original_id}",
            date=t0 + timedelta(minutes=6),
        )
    )
    h.run()
    h.drop(mails.simple(sender=sender, subject="Badge perdu", message_id=original_id, date=t0))
    stats = h.run()
    assert stats.tickets_created == 0
    reply, colleague, original = h.rows()
    assert reply.rule == "new_ticket" and colleague.rule == "same_thread" and original.rule == "replied_to"
    assert original.ticket_id == reply.ticket_id == colleague.ticket_id
    with session_scope(h.tickets_factory) as session:
        intake = session.scalar(select(EmailIntake).where(EmailIntake.message_key == original.message_key))
        assert intake.reason == f"Message d'origine d'une réponse déjà reçue : <{original_id.strip('<>')}>"


def test_a_large_batch_threads_every_reply_with_a_few_statements(harness):
    """Originals and replies of one pass in one batch: every reply threads, whatever the arrival order."""
    h = harness(batch_size=500)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    ids = [mails.new_message_id() for _ in range(40)]
    lot = [
        mails.simple(
            sender=_sender("o"), subject=f"Demande {i}", message_id=mid, date=t0 + timedelta(seconds=i)
        )
        for i, mid in enumerate(ids)
    ]
    lot += [
        mails.simple(sender=_sender("r"), subject=f"Re: Demande {i}", in_reply_to=mid, references=mid,
                     date=t0 + timedelta(minutes=5, seconds=i), body=f"Suite {i}")
        for i, mid in enumerate(ids)
    ]  # fmt: skip
    for index in reversed(range(len(lot))):  # files in the worst order
        h.drop(lot[index], f"{index:03d}.eml")
    stats = h.run()
    assert (stats.done, stats.tickets_created) == (80, 40) and h.ingest_calls == 1
    rules = sorted(row.rule for row in h.rows())
    assert rules == ["known_reference"] * 40 + ["new_ticket"] * 40
    with session_scope(h.tickets_factory) as session:
        for row in h.rows():
            if row.rule == "known_reference":
                bodies = [m.body for m in session.get(Ticket, row.ticket_id).messages]
                assert len(bodies) == 2 and bodies[1].startswith("Suite")  # the reply after its original
