"""Alembic operations every service's first migration shares: the outbox and the idempotent consumer's inbox.

The tables are those of ``comptoir_common.outbox.OutboxMixin`` and ``InboxMixin``; one definition here keeps the
seven stores identical, and a new service's first migration calls these instead of copying the DDL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from comptoir_common.db import UTCDateTime

_PENDING = sa.text("published_at IS NULL")


def create_outbox_table() -> None:
    """Create ``outbox`` and its partial index of pending events."""
    op.create_table(
        "outbox",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_pending", ["seq"], unique=False, postgresql_where=_PENDING, sqlite_where=_PENDING
        )


def drop_outbox_table() -> None:
    """Drop what ``create_outbox_table`` created."""
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_pending", postgresql_where=_PENDING, sqlite_where=_PENDING)
    op.drop_table("outbox")


def create_processed_events_table() -> None:
    """Create ``processed_events``, the (consumer, event id) pairs already applied."""
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(length=150), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("processed_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_processed_events")),
    )


def drop_processed_events_table() -> None:
    """Drop ``processed_events``."""
    op.drop_table("processed_events")
