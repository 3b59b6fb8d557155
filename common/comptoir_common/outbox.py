"""Transactional outbox and idempotent-consumer inbox, shared by every service.

A service adds its events to its own ``outbox`` table in the same transaction as the state change; a relay
publishes pending rows with publisher confirms and marks them published. A crash between commit and publish loses
nothing: the row is still pending and is published on the next pass. A crash between publish and marking means the
event goes out twice, which is why every consumer records the ids it has processed (:func:`claim_event`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client import Counter, Gauge
from sqlalchemy import JSON, BigInteger, Integer, String, Text, func, insert, select
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column, sessionmaker

from comptoir_common.db import dialect_insert, utcnow
from comptoir_common.events import Event

log = logging.getLogger(__name__)

EVENTS_PUBLISHED = Counter(
    "comptoir_events_published_total", "Events published from the outbox", ["event_type"]
)
OUTBOX_PENDING = Gauge("comptoir_outbox_pending", "Outbox rows not yet published (last relay pass)")
OUTBOX_FAILURES = Counter("comptoir_outbox_publish_failures_total", "Failed outbox relay passes")

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants a BIGINT for a long-lived table.
_SEQ_TYPE = BigInteger().with_variant(Integer(), "sqlite")


class OutboxMixin:
    """Columns of a service's ``outbox`` table: ``class OutboxMessage(OutboxMixin, Base): pass``."""

    __tablename__ = "outbox"

    seq: Mapped[int] = mapped_column(_SEQ_TYPE, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)

    @declared_attr.directive
    def __table_args__(cls):  # noqa: N805 - SQLAlchemy's declared_attr convention
        from sqlalchemy import Index

        # A partial index keeps "what is still pending" cheap however large the published history grows.
        return (
            Index(
                "ix_outbox_pending",
                "seq",
                postgresql_where=cls.published_at.is_(None),
                sqlite_where=cls.published_at.is_(None),
            ),
        )


class InboxMixin:
    """Columns of a service's ``processed_events`` table (the idempotent consumer's memory)."""

    __tablename__ = "processed_events"

    consumer: Mapped[str] = mapped_column(String(150), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)


def add_event(session: Session, outbox_model: type, event: Event) -> Event:
    """Queue ``event`` for publication in the caller's transaction."""
    session.add(
        outbox_model(
            event_id=event.id,
            event_type=event.type,
            payload=event.to_envelope(),
            created_at=event.occurred_at,
        )
    )
    session.info["outbox_dirty"] = True
    return event


def add_events(session: Session, outbox_model: type, events: Iterable[Event]) -> None:
    """Queue many events in the caller's transaction, in order, with one multi-row INSERT (a sync page, an
    import batch: thousands of events without an ORM object each)."""
    rows = [
        {
            "event_id": event.id,
            "event_type": event.type,
            "payload": event.to_envelope(),
            "created_at": event.occurred_at,
        }
        for event in events
    ]
    if rows:
        session.execute(insert(outbox_model), rows)
        session.info["outbox_dirty"] = True


def claim_event(session: Session, inbox_model: type, consumer: str, event_id: str) -> bool:
    """Record that ``consumer`` processes ``event_id`` now; False if it already has.

    Call it in the same transaction as the effect. One ``INSERT ... ON CONFLICT DO NOTHING``: a concurrent delivery
    of the same event waits for the first transaction and, once it commits, finds the row and gets False.
    """
    insert = dialect_insert(session)
    statement = (
        insert(inbox_model)
        .values(consumer=consumer, event_id=event_id, processed_at=utcnow())
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
    )
    return session.execute(statement).rowcount == 1


Publish = Callable[[dict], None]


class OutboxRelay:
    """Publishes pending outbox rows in order; framework-free so tests can drive it directly."""

    def __init__(self, session_factory: sessionmaker[Session], outbox_model: type, publish: Publish):
        self.session_factory = session_factory
        self.model = outbox_model
        self.publish = publish

    def publish_pending(self, batch_size: int = 200) -> int:
        """Publish up to ``batch_size`` pending events; return how many went out.

        Rows are locked with SKIP LOCKED on PostgreSQL so that several instances of a service never publish the
        same row at the same time. If publishing fails midway, the rows already confirmed are still marked.
        """
        published = 0
        session = self.session_factory()
        try:
            rows = session.scalars(
                select(self.model)
                .where(self.model.published_at.is_(None))
                .order_by(self.model.seq)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            try:
                for row in rows:
                    self.publish(row.payload)
                    row.published_at = utcnow()
                    published += 1
                    EVENTS_PUBLISHED.labels(row.event_type).inc()
            except Exception as exc:
                OUTBOX_FAILURES.inc()
                failed = rows[published]
                failed.attempts += 1
                failed.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                session.commit()
                raise
            session.commit()
            return published
        finally:
            session.close()

    def pending_count(self) -> int:
        with self.session_factory() as session:
            count = session.scalar(
                select(func.count()).select_from(self.model).where(self.model.published_at.is_(None))
            )
        OUTBOX_PENDING.set(count or 0)
        return count or 0
