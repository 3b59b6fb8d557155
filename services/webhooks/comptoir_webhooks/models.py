"""Tables of the webhooks service."""

from __future__ import annotations

import uuid
from datetime import datetime

from comptoir_common.db import declarative_base_for, utcnow
from comptoir_common.outbox import InboxMixin
from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

Base = declarative_base_for()


def _uuid() -> str:
    return str(uuid.uuid4())


class Subscription(Base):
    """An outside system's URL and the event types it wants (patterns such as ``ticket.*``).

    ``secret`` signs every delivery (HMAC-SHA256); it is shown once, at creation and at each rotation. After a
    rotation the previous secret keeps signing too (a second signature) until ``previous_secret_expires_at``, so the
    receiver can switch without losing deliveries.
    """

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_uuid)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    secret: Mapped[str] = mapped_column(String(200))
    previous_secret: Mapped[str | None] = mapped_column(String(200), default=None)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    secret_rotated_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(Base):
    """One event for one subscription: the exact body sent, and the fate of the attempts.

    The unique (subscription, event) key makes an event reach a subscription at most once however many times the
    bus delivers it. ``status``: ``pending`` (due at ``next_attempt_at``), ``delivered``, ``failed`` (a permanent
    refusal, or retries exhausted). A replay puts a row back to ``pending``.
    """

    __tablename__ = "deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_uuid)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime | None] = mapped_column(default=None)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    replays: Mapped[int] = mapped_column(Integer, default=0)
    # When the row was queued, or last replayed: retries give up max_age_hours after it.
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_response_body: Mapped[str | None] = mapped_column(Text, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_duration_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_deliveries_subscription_event"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_subscription_created", "subscription_id", "created_at"),
    )


class BoundRoutingKey(Base):
    """A routing key the service's event queues are (or may still be) bound to (``bindings.py``).

    Written before the binding is made and removed after it is undone, so every binding on the broker has its row:
    AMQP cannot list a queue's bindings, and the management API is not always enabled.
    """

    __tablename__ = "bound_routing_keys"

    routing_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    bound_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProcessedEvent(InboxMixin, Base):
    pass
