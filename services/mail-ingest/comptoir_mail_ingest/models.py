"""Tables of the mail-ingest service: raw mails and their fate, the mailbox leases, the sender directory."""

from __future__ import annotations

from datetime import datetime

from comptoir_common.db import declarative_base_for, utcnow
from comptoir_common.outbox import InboxMixin, OutboxMixin
from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

Base = declarative_base_for()

_SEQ_TYPE = BigInteger().with_variant(Integer(), "sqlite")


class RawMail(Base):
    """One mail as it arrived (bytes in the blob store) and what became of it.

    ``id`` grows with arrival: with the mail's date it gives the processing order. ``status``: ``pending`` (stored,
    not processed yet), ``done`` (in a ticket), ``ignored`` (automatic mail or our own mail, with the reason),
    ``quarantined`` (unreadable or over a limit, with the reason; replayable), ``discarded`` (an admin gave up on a
    quarantined or ignored mail; kept so that a redelivery is still recognised).
    """

    __tablename__ = "raw_mails"

    id: Mapped[int] = mapped_column(_SEQ_TYPE, primary_key=True, autoincrement=True)
    mailbox: Mapped[str] = mapped_column(String(100))
    message_key: Mapped[str] = mapped_column(String(400))
    rfc_message_id: Mapped[str | None] = mapped_column(String(400), default=None)
    blob_key: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(default=0)
    subject: Mapped[str | None] = mapped_column(String(500), default=None)
    sender: Mapped[str | None] = mapped_column(String(320), default=None)
    arrived_at: Mapped[datetime] = mapped_column(default=utcnow)
    mail_date: Mapped[datetime | None] = mapped_column(default=None)
    sort_date: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    ticket_id: Mapped[str | None] = mapped_column(String(36), default=None)
    ticket_message_id: Mapped[str | None] = mapped_column(String(36), default=None)
    rule: Mapped[str | None] = mapped_column(String(40), default=None)
    deliveries: Mapped[int] = mapped_column(default=1)
    attempts: Mapped[int] = mapped_column(default=0)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        UniqueConstraint("mailbox", "message_key", name="uq_raw_mails_mailbox_key"),
        Index("ix_raw_mails_queue", "mailbox", "status", "sort_date", "id"),
    )


class MailboxLease(Base):
    """Which instance reads a mailbox now: one reader per mailbox, taken over when its lease runs out."""

    __tablename__ = "mailbox_leases"

    mailbox: Mapped[str] = mapped_column(String(100), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(100), default=None)
    until: Mapped[datetime] = mapped_column(default=utcnow)
    last_poll_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class KnownUser(Base):
    """Read model of accounts (from ``auth.events``): staff addresses and client users."""

    __tablename__ = "known_users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    role: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[str | None] = mapped_column(String(36), default=None)
    active: Mapped[bool] = mapped_column(default=True)


class ContactAddress(Base):
    """Read model of customer contacts' addresses (from ``crm_sync.events``), one row per address."""

    __tablename__ = "contact_addresses"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(36), default=None)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    extra: Mapped[dict] = mapped_column(JSON, default=dict)


class OutboxMessage(OutboxMixin, Base):
    pass


class ProcessedEvent(InboxMixin, Base):
    pass
