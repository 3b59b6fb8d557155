"""Tables of the notifier service."""

from __future__ import annotations

import uuid
from datetime import datetime

from comptoir_common.db import declarative_base_for, utcnow
from comptoir_common.outbox import InboxMixin, OutboxMixin
from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

Base = declarative_base_for()


class OutgoingMail(Base):
    """One email to one recipient, queued when the event is handled and sent by the delivery loop.

    The unique (event, recipient, kind) key is what makes a notification go out at most once per event and
    recipient, however many times the event is delivered.
    """

    __tablename__ = "outgoing_mails"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    event_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(50))
    recipient: Mapped[str] = mapped_column(String(320))
    ticket_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    subject: Mapped[str] = mapped_column(String(500))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(300), unique=True)
    headers: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        UniqueConstraint("event_id", "recipient", "kind", name="uq_outgoing_mails_event_recipient_kind"),
        Index("ix_outgoing_mails_due", "status", "next_attempt_at"),
    )


class OutboxMessage(OutboxMixin, Base):
    pass


class ProcessedEvent(InboxMixin, Base):
    pass


class StaffMember(Base):
    """Read model of accounts (from ``auth.events``): who is staff, their address, their name."""

    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), default="")
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20), default="client")
    active: Mapped[bool] = mapped_column(default=True)


class Preference(Base):
    """A staff member's choice for one kind of staff notification (absent = on)."""

    __tablename__ = "preferences"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(50), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True)


class FlaggedAddress(Base):
    """An address that bounced for good (a permanent failure): shown to staff next to the ticket's requester."""

    __tablename__ = "flagged_addresses"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    failures: Mapped[int] = mapped_column(default=1)
    flagged_at: Mapped[datetime] = mapped_column(default=utcnow)


class ThreadReference(Base):
    """The Message-ID of the client's last mail on a ticket: our next mail answers it, so it threads for them."""

    __tablename__ = "thread_references"

    ticket_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    last_inbound_message_id: Mapped[str | None] = mapped_column(String(400), default=None)


class TemplateOverride(Base):
    """An admin's adjusted wording of one template file (``<name>.subject.txt``, ``.txt`` or ``.html``)."""

    __tablename__ = "template_overrides"

    filename: Mapped[str] = mapped_column(String(100), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    updated_by_name: Mapped[str | None] = mapped_column(String(200), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
