"""Tables of the crm_sync service: the customer directory, its contacts, a read model of users, sync state."""

from __future__ import annotations

import uuid
from datetime import datetime

from comptoir_common.db import declarative_base_for, utcnow
from comptoir_common.outbox import InboxMixin, OutboxMixin
from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

Base = declarative_base_for()

SOURCES = ("filemaker", "quadra", "manual")


def new_id() -> str:
    return str(uuid.uuid4())


class Customer(Base):
    """A company that opens tickets (or a reseller, whose end-customers point at it with ``parent_customer_id``)."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(300))
    # Lower-cased, accent-free copy of the name for search.
    search_name: Mapped[str] = mapped_column(String(300), default="", index=True)
    source: Mapped[str] = mapped_column(String(20), default="manual")
    # The business key in the source (FileMaker key field, Quadra account number); null for manual customers.
    external_key: Mapped[str | None] = mapped_column(String(200), default=None)
    account_number: Mapped[str | None] = mapped_column(String(50), default=None)
    addresses: Mapped[list] = mapped_column(JSON, default=list)
    phone: Mapped[str | None] = mapped_column(String(50), default=None)
    email_domains: Mapped[list] = mapped_column(JSON, default=list)
    sales_rep_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    # The source's sales rep value (a name or an email), resolved against the users read model.
    sales_rep_ref: Mapped[str | None] = mapped_column(String(320), default=None)
    parent_customer_id: Mapped[str | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), default=None, index=True
    )
    # The source's parent key, kept until the parent itself arrives (resolved on every upsert).
    parent_external_key: Mapped[str | None] = mapped_column(String(200), default=None)
    active: Mapped[bool] = mapped_column(default=True)
    # Source fields that have no column of their own: kept, not dropped.
    extra: Mapped[dict] = mapped_column(JSON, default=dict)
    # FileMaker's internal record id and modification counter, to skip unchanged rows.
    source_record_id: Mapped[str | None] = mapped_column(String(50), default=None)
    source_mod_id: Mapped[str | None] = mapped_column(String(50), default=None)
    last_synced_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="customer", order_by="Contact.name", cascade="all, delete-orphan"
    )

    __table_args__ = (UniqueConstraint("source", "external_key", name="uq_customers_source_key"),)


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    # The contact's key in the source (portal row key, or its first email when the source has none).
    external_key: Mapped[str | None] = mapped_column(String(200), default=None)
    name: Mapped[str] = mapped_column(String(200), default="")
    emails: Mapped[list] = mapped_column(JSON, default=list)
    phone: Mapped[str | None] = mapped_column(String(50), default=None)
    role: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="contacts")
    email_rows: Mapped[list[ContactEmail]] = relationship(cascade="all, delete-orphan")


class ContactEmail(Base):
    """One row per (contact, lower-cased address): the index behind ``find_by_email``."""

    __tablename__ = "contact_emails"

    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)

    __table_args__ = (Index("ix_contact_emails_email", "email"),)


class User(Base):
    """Read model of the auth service's users (fed by ``user.*`` events): sales reps, and who belongs where."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncState(Base):
    """One row per source (``filemaker``, ``quadra``): progress, lease and the last run's report."""

    __tablename__ = "sync_state"

    source: Mapped[str] = mapped_column(String(20), primary_key=True)
    # FileMaker: the modification timestamp reached (``MM/DD/YYYY HH:MM:SS``, the server's local time).
    watermark: Mapped[str | None] = mapped_column(String(40), default=None)
    # Who runs the sync now, and until when (several instances of the service: one syncs at a time).
    lease_owner: Mapped[str | None] = mapped_column(String(100), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    full_requested: Mapped[bool] = mapped_column(default=False)
    last_full_at: Mapped[datetime | None] = mapped_column(default=None)
    last_run_kind: Mapped[str | None] = mapped_column(String(20), default=None)
    last_run_started_at: Mapped[datetime | None] = mapped_column(default=None)
    last_run_finished_at: Mapped[datetime | None] = mapped_column(default=None)
    last_run_duration: Mapped[float | None] = mapped_column(default=None)
    last_run_ok: Mapped[bool | None] = mapped_column(default=None)
    last_counts: Mapped[dict] = mapped_column(JSON, default=dict)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_error_at: Mapped[datetime | None] = mapped_column(default=None)


class SyncRejection(Base):
    """A source record that could not be applied, with the reason (the sync goes on with the others)."""

    __tablename__ = "sync_rejections"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(20))
    external_key: Mapped[str | None] = mapped_column(String(200), default=None)
    reason: Mapped[str] = mapped_column(Text)
    record: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class OutboxMessage(OutboxMixin, Base):
    pass


class ProcessedEvent(InboxMixin, Base):
    pass
