"""Killing mail-ingest mid-batch (SIGKILL) and starting it again loses and doubles nothing."""

from __future__ import annotations

import signal
import time
import uuid

from comptoir_testing import mails
from comptoir_tickets.models import EmailIntake, Ticket
from sqlalchemy import func, select

from tests.e2e.mail_helpers import store_query, wait_known_sender


def test_killing_mail_ingest_mid_batch_loses_and_doubles_nothing(system):
    maildir = system.workdir / "data" / "maildir" / "new"
    maildir.mkdir(parents=True, exist_ok=True)
    prefix = uuid.uuid4().hex[:8]
    # One known client sends the whole lot: identified (no triage mail to staff) and acknowledged only up to the
    # hourly limit, so the notifier's queue stays short for the tests after this one.
    sender = f"lot.{prefix}@client.example"
    system.create_user(sender, "client", customer_id=str(uuid.uuid4()), name="Client du lot")
    wait_known_sender(system, sender)
    system.stop_process("mail_ingest")
    ids = [mails.new_message_id(f"{prefix}.client.example") for _ in range(300)]
    for index, message_id in enumerate(ids):
        (maildir / f"{prefix}-{index:04d}.eml").write_bytes(
            mails.simple(sender=sender, subject=f"Lot {index}", message_id=message_id)
        )
    keys = [message_id.strip("<>") for message_id in ids]

    def taken_in(session):
        return session.scalar(
            select(func.count()).select_from(EmailIntake).where(EmailIntake.message_key.in_(keys))
        )

    system.start_service("mail_ingest")
    deadline = time.monotonic() + 120
    while store_query(system, taken_in) == 0:
        assert time.monotonic() < deadline, system.log_tail("mail_ingest")
        time.sleep(0.02)
    system.stop_process("mail_ingest", sig=signal.SIGKILL)
    partial = store_query(system, taken_in)
    assert 0 < partial < len(ids), "the kill must land mid-batch"
    system.start_service("mail_ingest")
    system.wait_healthy(["mail_ingest"])
    deadline = time.monotonic() + 180
    while store_query(system, taken_in) < len(ids):
        assert time.monotonic() < deadline, system.log_tail("mail_ingest")
        time.sleep(0.3)

    def tickets_of_batch(session):
        return session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.requester_email == sender)
        )

    assert store_query(system, tickets_of_batch) == len(ids)
    while any(maildir.glob(f"{prefix}-*")):  # acked on the "server" once mail-ingest has committed
        assert time.monotonic() < deadline, system.log_tail("mail_ingest")
        time.sleep(0.2)
