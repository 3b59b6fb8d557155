"""Tables of the tickets service."""

from __future__ import annotations

import uuid
from datetime import datetime

from comptoir_common.db import declarative_base_for, utcnow
from comptoir_common.outbox import InboxMixin, OutboxMixin
from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

Base = declarative_base_for()

STATUS_CATEGORIES = ("new", "open", "pending", "closed")


def new_id() -> str:
    return str(uuid.uuid4())


class Counter(Base):
    """Named counters (ticket numbers): one row per counter, incremented under the row's lock."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


# --- configuration (admins) -----------------------------------------------------------------------------------


class Status(Base):
    """A configurable status; the code reasons on its category (new, open, pending, closed)."""

    __tablename__ = "statuses"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(default=0)


class TicketType(Base):
    __tablename__ = "ticket_types"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(default=0)


class Priority(Base):
    """A priority and its resolution target, in business minutes."""

    __tablename__ = "priorities"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    target_minutes: Mapped[int] = mapped_column()
    position: Mapped[int] = mapped_column(default=0)
    is_default: Mapped[bool] = mapped_column(default=False)


class CannedResponse(Base):
    __tablename__ = "canned_responses"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(default=0)


class Setting(Base):
    """Small JSON settings (the business calendar, the attachment limit)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[dict] = mapped_column(JSON)


# --- read models fed by other services' events ---------------------------------------------------------------


class Customer(Base):
    """The customer directory as the tickets service needs it (from crm_sync's events)."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), default="")
    sales_rep_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    parent_customer_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """People as the tickets service needs them (from auth's events)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    role: Mapped[str] = mapped_column(String(20), default="client")
    customer_id: Mapped[str | None] = mapped_column(String(36), default=None)
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- tickets -------------------------------------------------------------------------------------------------


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    number: Mapped[int] = mapped_column(unique=True)
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(50), default="new")
    # Copied from the status so that lists, counts and the SLA never need a join.
    status_category: Mapped[str] = mapped_column(String(20), default="new")
    type: Mapped[str | None] = mapped_column(String(50), default=None)
    priority: Mapped[str] = mapped_column(String(50), default="normal")
    customer_id: Mapped[str | None] = mapped_column(String(36), default=None)
    # Denormalised for sorting by customer name ("" = not identified).
    customer_name: Mapped[str] = mapped_column(String(300), default="")
    requester_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    requester_email: Mapped[str | None] = mapped_column(String(320), default=None)
    requester_name: Mapped[str | None] = mapped_column(String(200), default=None)
    # [{id, name}] for display, and the names joined for sorting; ticket_assignees is what filters use.
    assignees: Mapped[list] = mapped_column(JSON, default=list)
    assignee_names: Mapped[str] = mapped_column(String(500), default="")
    followers: Mapped[list] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(20), default="web")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[str | None] = mapped_column(String(36), default=None)
    created_by_name: Mapped[str | None] = mapped_column(String(200), default=None)
    # Last activity (field change or message): the list's default order.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[str | None] = mapped_column(String(36), default=None)
    updated_by_name: Mapped[str] = mapped_column(String(200), default="")
    first_response_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    reopened_count: Mapped[int] = mapped_column(default=0)
    # SLA: business minutes allowed, consumed before the running period, start of the running period (None while
    # paused or closed), and the deadline that follows.
    sla_target_minutes: Mapped[int] = mapped_column(default=0)
    sla_elapsed_minutes: Mapped[int] = mapped_column(default=0)
    sla_running_since: Mapped[datetime | None] = mapped_column(default=None)
    resolution_due_at: Mapped[datetime | None] = mapped_column(default=None)
    sla_breached: Mapped[bool] = mapped_column(default=False)
    sla_breach_published: Mapped[bool] = mapped_column(default=False)
    # Optimistic concurrency: every field change bumps it; a write based on an older version is refused.
    version: Mapped[int] = mapped_column(default=1)

    messages: Mapped[list[Message]] = relationship(
        back_populates="ticket", order_by="Message.created_at", cascade="all, delete-orphan"
    )

    __table_args__ = (
        # Keyset pagination: every sortable column with the id as tie-breaker; the visibility key first where a
        # customer-scoped viewer needs it.
        Index("ix_tickets_activity", "updated_at", "id"),
        Index("ix_tickets_customer_activity", "customer_id", "updated_at", "id"),
        Index("ix_tickets_created", "created_at", "id"),
        Index("ix_tickets_title", "title", "id"),
        Index("ix_tickets_customer_name", "customer_name", "id"),
        Index("ix_tickets_status_activity", "status", "updated_at", "id"),
        # Sorting by status or priority: the filter indexes above (value, updated_at, id) do not give (value, id).
        Index("ix_tickets_status", "status", "id"),
        Index("ix_tickets_priority", "priority", "id"),
        Index("ix_tickets_category_activity", "status_category", "updated_at", "id"),
        Index("ix_tickets_priority_activity", "priority", "updated_at", "id"),
        Index("ix_tickets_type_activity", "type", "updated_at", "id"),
        Index("ix_tickets_assignee_names", "assignee_names", "id"),
        Index("ix_tickets_updated_by", "updated_by_name", "id"),
        Index("ix_tickets_due", "resolution_due_at", postgresql_where=text("sla_breach_published = false")),
        # The dashboard's count of breached deadlines (not closed): an index-only count of a few percent of rows,
        # with what the visibility clause of a customer-scoped viewer reads.
        Index(
            "ix_tickets_breached_open",
            "customer_id",
            "requester_id",
            postgresql_where=text("sla_breached = true AND status_category <> 'closed'"),
        ),
    )


class TicketAssignee(Base):
    __tablename__ = "ticket_assignees"

    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)

    __table_args__ = (Index("ix_ticket_assignees_user", "user_id", "ticket_id"),)


class TicketCount(Base):
    """Tickets per (customer, status category), kept in the same transaction as each change: dashboard counts
    are a sum over the viewer's customers instead of a count over a million rows. customer_id "" = unidentified."""

    __tablename__ = "ticket_counts"

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    category: Mapped[str] = mapped_column(String(20), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), default=0)


class CreationKey(Base):
    """An idempotency key of a ticket creation, per creator: a retried or redelivered request with the same key
    gets the ticket it created the first time instead of a second one. ``fingerprint`` is a digest of the request,
    so that the same key with another request is refused rather than answered with an unrelated ticket."""

    __tablename__ = "ticket_creation_keys"

    actor_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(36))
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[str | None] = mapped_column(String(36), default=None)
    author_name: Mapped[str | None] = mapped_column(String(200), default=None)
    author_role: Mapped[str | None] = mapped_column(String(20), default=None)
    author_email: Mapped[str | None] = mapped_column(String(320), default=None)
    body: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str] = mapped_column(String(20), default="web")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", order_by="Attachment.created_at", cascade="all, delete-orphan"
    )


class Attachment(Base):
    """A file of a message; the bytes are in the blob store under ``blob_key`` (its SHA-256)."""

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    blob_key: Mapped[str] = mapped_column(String(64))
    thumbnail_key: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    message: Mapped[Message] = relationship(back_populates="attachments")


class HistoryEntry(Base):
    """One action on a ticket: who, when, what (field old → new). ``internal`` entries are hidden from clients."""

    __tablename__ = "ticket_history"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(40))
    field: Mapped[str | None] = mapped_column(String(40), default=None)
    old_value: Mapped[str | None] = mapped_column(Text, default=None)
    new_value: Mapped[str | None] = mapped_column(Text, default=None)
    internal: Mapped[bool] = mapped_column(default=False)
    actor_id: Mapped[str | None] = mapped_column(String(36), default=None)
    actor_name: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_ticket_history_ticket", "ticket_id", "id"),)


class OutboxMessage(OutboxMixin, Base):
    pass


class ProcessedEvent(InboxMixin, Base):
    pass


class EmailIntake(Base):
    """One mail taken in by the tickets service (see :mod:`comptoir_tickets.email_intake`).

    The unique (mailbox, message_key) is what makes intake idempotent: a mail delivered again finds its row and
    gets the same answer. ``rule`` and ``reason`` say why the mail went to its ticket (shown to staff).
    """

    __tablename__ = "email_intake"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    mailbox: Mapped[str] = mapped_column(String(100))
    message_key: Mapped[str] = mapped_column(String(400))
    rfc_message_id: Mapped[str | None] = mapped_column(String(400), default=None, index=True)
    ticket_id: Mapped[str] = mapped_column(String(36), index=True)
    message_id: Mapped[str] = mapped_column(String(36), index=True)
    created_ticket: Mapped[bool] = mapped_column(default=False)
    rule: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    sender_email: Mapped[str | None] = mapped_column(String(320), default=None)
    sender_kind: Mapped[str] = mapped_column(String(20), default="unknown")
    automatic: Mapped[str | None] = mapped_column(String(30), default=None)
    body_html: Mapped[str | None] = mapped_column(Text, default=None)
    attachments: Mapped[list] = mapped_column(JSON, default=list)
    raw_blob_key: Mapped[str | None] = mapped_column(String(64), default=None)
    linked_ticket_id: Mapped[str | None] = mapped_column(String(36), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    moved_by_name: Mapped[str | None] = mapped_column(String(200), default=None)

    __table_args__ = (UniqueConstraint("mailbox", "message_key", name="uq_email_intake_mailbox_key"),)


class EmailReference(Base):
    """One Message-ID a mail taken in refers to (In-Reply-To, References), with the ticket the mail went to: when
    the original of a reply arrives after the reply, it finds the reply's ticket here (rule ``replied_to``)."""

    __tablename__ = "email_references"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    ref: Mapped[str] = mapped_column(String(400), index=True)
    ticket_id: Mapped[str] = mapped_column(String(36))
    intake_id: Mapped[str] = mapped_column(String(36), index=True)
