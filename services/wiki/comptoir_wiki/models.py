"""Tables of the wiki service."""

from __future__ import annotations

import uuid
from datetime import datetime

from comptoir_common.db import declarative_base_for, utcnow
from comptoir_common.outbox import InboxMixin, OutboxMixin
from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

Base = declarative_base_for()


def new_id() -> str:
    return str(uuid.uuid4())


class Page(Base):
    """A page's current state; every change is also kept as a :class:`Revision`."""

    __tablename__ = "pages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # None = a general page, not about one customer.
    customer_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("pages.id", ondelete="SET NULL"), default=None, index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list] = mapped_column(JSON, default=list)
    # Shown to the customer's own contacts (client and reseller accounts of that customer) in their portal.
    visible_to_customer: Mapped[bool] = mapped_column(default=False)
    # Number of the latest revision: the base an editor must name to save (optimistic concurrency).
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[str | None] = mapped_column(String(36), default=None)
    created_by_name: Mapped[str | None] = mapped_column(String(200), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[str | None] = mapped_column(String(36), default=None)
    updated_by_name: Mapped[str | None] = mapped_column(String(200), default=None)

    revisions: Mapped[list[Revision]] = relationship(
        back_populates="page", order_by="Revision.number", cascade="all, delete-orphan"
    )
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="page", order_by="Attachment.created_at", cascade="all, delete-orphan"
    )

    __table_args__ = (Index("ix_pages_customer_title", "customer_id", "title"),)


class PageTag(Base):
    """One tag of a page (lower-cased), for filtering; the page's ``tags`` keeps the spelling shown."""

    __tablename__ = "page_tags"

    page_id: Mapped[str] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(50), primary_key=True, index=True)


class TicketReference(Base):
    """A ticket number cited in a page (``#1234``), so that a ticket can list the pages about it."""

    __tablename__ = "ticket_references"

    page_id: Mapped[str] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"), primary_key=True)
    ticket_number: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)


class Revision(Base):
    """A page as it was after one change, with who made it and when."""

    __tablename__ = "revisions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    page_id: Mapped[str] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list] = mapped_column(JSON, default=list)
    parent_id: Mapped[str | None] = mapped_column(String(36), default=None)
    visible_to_customer: Mapped[bool] = mapped_column(default=False)
    comment: Mapped[str | None] = mapped_column(String(300), default=None)
    author_id: Mapped[str | None] = mapped_column(String(36), default=None)
    author_name: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    page: Mapped[Page] = relationship(back_populates="revisions")

    __table_args__ = (UniqueConstraint("page_id", "number", name="uq_revisions_page_number"),)


class Attachment(Base):
    """A file or pasted image of a page; the bytes are in the blob store under ``blob_key``."""

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    page_id: Mapped[str] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"), index=True)
    blob_key: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    # Decided from the bytes, never from the name or the browser's claim.
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by_id: Mapped[str | None] = mapped_column(String(36), default=None)
    uploaded_by_name: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    page: Mapped[Page] = relationship(back_populates="attachments")


class Customer(Base):
    """Read model of the customer directory (crm_sync events): who the customer is and its sales rep."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), default="")
    sales_rep_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    parent_customer_id: Mapped[str | None] = mapped_column(String(36), default=None)
    active: Mapped[bool] = mapped_column(default=True)
    # occurred_at of the event that last wrote the row: an older event arriving late changes nothing.
    source_updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(OutboxMixin, Base):
    pass


class ProcessedEvent(InboxMixin, Base):
    pass
