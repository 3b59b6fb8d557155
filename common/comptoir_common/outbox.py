"""Transactional outbox and idempotent-consumer inbox, shared by every service.

A service adds its events to its own ``outbox`` table in the same transaction as the state change; a relay
publishes pending rows with publisher confirms and marks them published. A crash between commit and publish loses
nothing: the row is still pending and is published on the next pass. A crash between publish and marking means the
event goes out twice, which is why every consumer records the ids it has processed (:func:`claim_event`).

The relay publishes a batch of rows and waits for the broker's confirms once for the whole batch
(:class:`ConfirmedBatchPublisher`), instead of one round trip per event; rows are marked only once every event of
the batch is confirmed, so a failure midway republishes the batch (at least once, never lost).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime

import kombu
from amqp import Message as AmqpMessage
from prometheus_client import Counter, Gauge
from sqlalchemy import JSON, BigInteger, Integer, String, Text, func, insert, select, update
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
        # On the table: an INSERT on the mapped class takes the ORM's bulk path, slower for the same rows.
        session.execute(insert(outbox_model.__table__), rows)
        session.info["outbox_dirty"] = True


def claim_event(session: Session, inbox_model: type, consumer: str, event_id: str) -> bool:
    """Record that ``consumer`` processes ``event_id`` now; False if it already has.

    Call it in the same transaction as the effect. One ``INSERT ... ON CONFLICT DO NOTHING``: a concurrent delivery
    of the same event waits for the first transaction and, once it commits, finds the row and gets False.
    """
    insert = dialect_insert(session)
    statement = (
        insert(inbox_model.__table__)  # the table, not the class: no ORM bulk path for one row on every event
        .values(consumer=consumer, event_id=event_id, processed_at=utcnow())
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
    )
    return session.execute(statement).rowcount == 1


Publish = Callable[[dict], None]
PublishBatch = Callable[[list[dict]], None]


class ConfirmedBatchPublisher:
    """Publishes event envelopes to a topic exchange with publisher confirms, waiting once per batch.

    Every message of the batch is sent, then the broker's acks are awaited together: one round trip per batch
    instead of one per event. Any failure (nack, timeout, lost connection) raises, and the connection is reopened
    on the next call. Used by one thread at a time (the relay).
    """

    def __init__(self, amqp_uri: str, exchange_name: str, confirm_timeout: float = 10.0):
        self.amqp_uri = amqp_uri
        self.exchange_name = exchange_name
        self.confirm_timeout = confirm_timeout
        self._connection: kombu.Connection | None = None
        self._channel = None
        self._tag = 0
        self._unconfirmed: set[int] = set()
        self._nacked = False
        self._lock = threading.Lock()

    def _open(self) -> None:
        connection = kombu.Connection(self.amqp_uri, connect_timeout=5)
        try:
            connection.connect()
            channel = connection.channel()
            channel.exchange_declare(self.exchange_name, "topic", durable=True, auto_delete=False)
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
        except Exception:
            connection.release()
            raise
        self._connection, self._channel = connection, channel
        self._tag, self._unconfirmed, self._nacked = 0, set(), False

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._unconfirmed = {tag for tag in self._unconfirmed if tag > delivery_tag}
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked = True
        self._on_ack(delivery_tag, multiple)

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # closing a broken connection
                log.debug("closing the publisher's connection failed", exc_info=True)
        self._connection = self._channel = None

    def publish_batch(self, envelopes: list[dict]) -> None:
        with self._lock:
            try:
                self._publish_batch(envelopes)
            except Exception:
                self.close()
                raise

    def _publish_batch(self, envelopes: list[dict]) -> None:
        if self._connection is None:
            self._open()
        for envelope in envelopes:
            message = AmqpMessage(
                json.dumps(envelope, default=str).encode(),
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                message_id=envelope["id"],
                application_headers={
                    "comptoir-event-type": envelope["type"],
                    "comptoir-event-version": envelope["version"],
                },
            )
            self._tag += 1
            self._unconfirmed.add(self._tag)
            self._channel.basic_publish(message, exchange=self.exchange_name, routing_key=envelope["type"])
        deadline = time.monotonic() + self.confirm_timeout
        while self._unconfirmed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(self._unconfirmed)} events not confirmed by the broker")
            self._connection.drain_events(timeout=remaining)
        if self._nacked:
            raise RuntimeError("the broker refused (nack) an event of the batch")

    def __call__(self, envelope: dict) -> None:
        """Publish one event (the relay's one-at-a-time interface)."""
        self.publish_batch([envelope])


class OutboxRelay:
    """Publishes pending outbox rows in order; framework-free so tests can drive it directly.

    ``publish_batch`` (preferred) takes a list of envelopes and returns once the broker confirmed them all;
    ``publish`` takes one envelope at a time.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        outbox_model: type,
        publish: Publish | None = None,
        *,
        publish_batch: PublishBatch | None = None,
    ):
        if (publish is None) == (publish_batch is None):
            raise ValueError("give one of publish and publish_batch")
        self.session_factory = session_factory
        self.model = outbox_model
        self.publish = publish
        self.publish_batch = publish_batch

    def publish_pending(self, batch_size: int = 200) -> int:
        """Publish up to ``batch_size`` pending events; return how many went out.

        One statement claims the batch: ``UPDATE … SET published_at WHERE seq IN (SELECT … FOR UPDATE SKIP LOCKED)
        RETURNING …`` — several instances of a service never take the same row, and the mark only commits once the
        broker confirmed the events. If publishing fails, the claim is rolled back; the rows confirmed before the
        failure (one at a time) are marked again, the failed one counts an attempt, and the rest wait for the next
        pass (batch: all of it is published again, consumers drop the duplicates).
        """
        model = self.model
        published = 0
        session = self.session_factory()
        try:
            pending = (
                select(model.seq)
                .where(model.published_at.is_(None))
                .order_by(model.seq)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            rows = session.execute(
                update(model)
                .where(model.seq.in_(pending))
                .values(published_at=utcnow())
                .returning(model.seq, model.event_type, model.payload)
                .execution_options(synchronize_session=False)
            ).all()
            rows.sort(key=lambda row: row.seq)
            if not rows:
                session.commit()
                return 0
            try:
                if self.publish_batch is not None:
                    self.publish_batch([row.payload for row in rows])
                    published = len(rows)
                else:
                    for row in rows:
                        self.publish(row.payload)
                        published += 1
            except Exception as exc:
                OUTBOX_FAILURES.inc()
                session.rollback()
                self._record_failure(session, rows[:published], rows[published].seq, exc)
                raise
            session.commit()
            for row in rows:
                EVENTS_PUBLISHED.labels(row.event_type).inc()
            return published
        finally:
            session.close()

    def _record_failure(self, session: Session, confirmed, failed_seq: int, exc: Exception) -> None:
        model = self.model
        if confirmed:
            session.execute(
                update(model)
                .where(model.seq.in_([row.seq for row in confirmed]))
                .values(published_at=utcnow())
                .execution_options(synchronize_session=False)
            )
        session.execute(
            update(model)
            .where(model.seq == failed_seq)
            .values(attempts=model.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000])
            .execution_options(synchronize_session=False)
        )
        session.commit()

    def pending_count(self) -> int:
        with self.session_factory() as session:
            count = session.scalar(
                select(func.count()).select_from(self.model).where(self.model.published_at.is_(None))
            )
        OUTBOX_PENDING.set(count or 0)
        return count or 0
