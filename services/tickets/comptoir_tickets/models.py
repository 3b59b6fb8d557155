"""Tables of the tickets service."""

from __future__ import annotations

import uuid
from datetime import datetime

from comptoir_common.db import declarative_base_for, utcnow
from comptoir_common.outbox import InboxMixin, OutboxMixin
from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

Base = declarative_base_for()


def new_id() -> str:
    return str(uuid.uuid4())


class Counter(Base):
    """Named counters (ticket numbers): one row per counter, incremented under the row's lock."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    number: Mapped[int] = mapped_column(unique=True)
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(50), default="new")
    customer_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    requester_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    requester_email: Mapped[str | None] = mapped_column(String(320), default=None)
    requester_name: Mapped[str | None] = mapped_column(String(200), default=None)
    source: Mapped[str] = mapped_column(String(20), default="web")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[str | None] = mapped_column(String(36), default=None)
    updated_by_name: Mapped[str | None] = mapped_column(String(200), default=None)
    # Optimistic concurrency: every change bumps it; a write based on an older version is refused.
    version: Mapped[int] = mapped_column(default=1)

    messages: Mapped[list[Message]] = relationship(
        back_populates="ticket", order_by="Message.created_at", cascade="all, delete-orphan"
    )

    __table_args__ = (
        # The list's default order (last activity first) with a stable tie-breaker, for keyset pagination.
        Index("ix_tickets_activity", "updated_at", "id"),
    )


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[str | None] = mapped_column(String(36), default=None)
    author_name: Mapped[str | None] = mapped_column(String(200), default=None)
    body: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="messages")


class OutboxMessage(OutboxMixin, Base):
    pass


class ProcessedEvent(InboxMixin, Base):
    pass
