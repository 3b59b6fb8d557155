"""Transactional outbox and idempotent inbox over real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import json
import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pika
import pytest
from amqp.exceptions import AMQPError
from comptoir_common.db import declarative_base_for, make_engine, make_session_factory, session_scope
from comptoir_common.events import Event, system_actor
from comptoir_common.outbox import (
    ConfirmedBatchPublisher,
    InboxMixin,
    OutboxMixin,
    OutboxRelay,
    add_event,
    add_events,
    claim_event,
)
from comptoir_testing.infra import TcpProxy
from kombu import Exchange
from nameko.amqp.publish import Publisher
from sqlalchemy import select

Base = declarative_base_for()


class OutboxMessage(OutboxMixin, Base):
    pass


class ProcessedEvent(InboxMixin, Base):
    pass


@pytest.fixture(scope="module")
def engine(new_database):
    engine = make_engine(new_database("outbox"))
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine):
    factory = make_session_factory(engine)
    yield factory
    with session_scope(factory) as session:
        session.query(OutboxMessage).delete()
        session.query(ProcessedEvent).delete()


@pytest.fixture
def exchange():
    return Exchange(f"test-{uuid.uuid4().hex[:8]}.events", type="topic", durable=True)


def _publisher(amqp_uri: str, exchange: Exchange):
    publisher = Publisher(amqp_uri, use_confirms=True, serializer="json", declare=[exchange], retry=False)

    def publish(envelope: dict) -> None:
        publisher.publish(
            envelope, exchange=exchange, routing_key=envelope["type"], message_id=envelope["id"]
        )

    return publish


def _relay(session_factory, amqp_uri: str, exchange: Exchange, kind: str) -> OutboxRelay:
    """A relay publishing one event per confirm round trip (``one``) or a batch per round trip (``batch``, what
    services use)."""
    if kind == "batch":
        publisher = ConfirmedBatchPublisher(amqp_uri, exchange.name)
        return OutboxRelay(session_factory, OutboxMessage, publish_batch=publisher.publish_batch)
    return OutboxRelay(session_factory, OutboxMessage, _publisher(amqp_uri, exchange))


def _bound_queue(amqp_uri: str, exchange: Exchange):
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    channel = connection.channel()
    channel.exchange_declare(exchange.name, exchange_type="topic", durable=True)
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(queue, exchange.name, routing_key="#")
    return connection, channel, queue


def _drain(channel, queue: str, expected: int, timeout: float = 20.0) -> list[dict]:
    """Everything in the queue once ``expected`` messages came, waiting a little for any duplicate."""
    received = []
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        method, _, body = channel.basic_get(queue, auto_ack=True)
        if method is not None:
            received.append(json.loads(body))
            quiet_since = None
            continue
        if len(received) >= expected:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 0.5:
                break
        time.sleep(0.05)
    return received


def _add_events(session_factory, count: int) -> set[str]:
    ids = set()
    with session_scope(session_factory) as session:
        for index in range(count):
            event = add_event(
                session, OutboxMessage, Event(type="thing.happened", data={"n": index}, actor=system_actor())
            )
            ids.add(event.id)
    return ids


@pytest.mark.parametrize("kind", ["one", "batch"])
def test_two_relays_publish_each_event_exactly_once(session_factory, amqp_uri, exchange, kind):
    ids = _add_events(session_factory, 300)
    connection, channel, queue = _bound_queue(amqp_uri, exchange)
    try:
        relays = [_relay(session_factory, amqp_uri, exchange, kind) for _ in range(2)]

        def run(relay):
            while relay.publish_pending(batch_size=25):
                pass

        threads = [threading.Thread(target=run, args=(relay,)) for relay in relays]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        received = _drain(channel, queue, expected=300)
    finally:
        connection.close()
    assert len(received) == 300
    assert {envelope["id"] for envelope in received} == ids
    assert relays[0].pending_count() == 0


@pytest.mark.parametrize("kind", ["one", "batch"])
def test_event_committed_while_broker_is_down_arrives_when_it_returns(
    session_factory, amqp_uri, exchange, kind
):
    parts = urlsplit(amqp_uri)
    proxy = TcpProxy(parts.hostname, parts.port or 5672)
    proxied_uri = urlunsplit((parts.scheme, f"guest:guest@127.0.0.1:{proxy.port}", parts.path, "", ""))
    relay = _relay(session_factory, proxied_uri, exchange, kind)
    event_ids = _add_events(session_factory, 3)

    with pytest.raises(Exception, match="Connection refused"):  # nothing listens: the broker is "down"
        relay.publish_pending()
    with session_factory() as session:
        rows = session.query(OutboxMessage).order_by(OutboxMessage.seq).all()
        assert all(row.published_at is None for row in rows)
        assert rows[0].attempts == 1 and rows[0].last_error

    connection, channel, queue = _bound_queue(amqp_uri, exchange)
    proxy.start()
    try:
        assert relay.publish_pending() == 3
        received = _drain(channel, queue, expected=3)
        assert {envelope["id"] for envelope in received} == event_ids
        if kind == "batch":
            # The connection drops (a broker restart): the batch fails unmarked and goes out on a new connection.
            proxy.cut()
            later = _add_events(session_factory, 2)
            with pytest.raises((OSError, AMQPError)):
                relay.publish_pending()
            assert relay.pending_count() == 2
            assert relay.publish_pending() == 2
            assert {envelope["id"] for envelope in _drain(channel, queue, expected=2)} == later
    finally:
        proxy.stop()
        connection.close()
    assert relay.pending_count() == 0


def test_inbox_claims_an_event_once(session_factory):
    event_id = str(uuid.uuid4())
    with session_scope(session_factory) as session:
        assert claim_event(session, ProcessedEvent, "notifier.on_ticket_created", event_id) is True
    with session_scope(session_factory) as session:
        assert claim_event(session, ProcessedEvent, "notifier.on_ticket_created", event_id) is False
        # Another consumer of the same event processes it independently.
        assert claim_event(session, ProcessedEvent, "reports.on_ticket_created", event_id) is True


def test_concurrent_deliveries_of_one_event_apply_once(session_factory):
    event_id = str(uuid.uuid4())
    first, second = session_factory(), session_factory()
    try:
        assert claim_event(first, ProcessedEvent, "consumer", event_id)
        outcome = {}

        def claim_concurrently():
            outcome["claimed"] = claim_event(second, ProcessedEvent, "consumer", event_id)

        # The second insert waits on the first transaction's uncommitted key; once the first commits, it loses.
        second_claim = threading.Thread(target=claim_concurrently)
        second_claim.start()
        time.sleep(0.3)
        assert "claimed" not in outcome
        first.commit()
        second_claim.join(timeout=10)
        assert outcome == {"claimed": False}
    finally:
        first.close()
        second.close()


def test_add_events_queues_many_in_order(session_factory):
    events = [Event(type="thing.done", actor=system_actor("test"), data={"n": i}) for i in range(5)]
    with session_scope(session_factory) as session:
        add_events(session, OutboxMessage, events)
        assert session.info["outbox_dirty"]
    with session_factory() as session:
        rows = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.event_id.in_([e.id for e in events]))
            .order_by(OutboxMessage.seq)
        ).all()
    assert [row.payload["data"]["n"] for row in rows] == list(range(5))
    assert all(row.published_at is None and row.attempts == 0 for row in rows)


def test_lingering_pool_keeps_a_burst_s_connections_then_gives_back_all_but_the_idle_ones(
    new_database, monkeypatch
):
    from comptoir_common import db

    engine = make_engine(new_database("pool"), pool_size=4, linger=True)
    try:
        connections = [engine.connect() for _ in range(8)]
        for connection in connections:
            connection.close()
        assert engine.pool.checkedin() == 8  # returned, still open: the next burst reuses them
        assert engine.pool.trim() == 0
        monkeypatch.setattr(db, "LINGER_SECONDS", 0.0)
        assert engine.pool.trim() == 5
        assert engine.pool.checkedin() == db.IDLE_CONNECTIONS
        # The pool still serves its whole capacity afterwards.
        again = [engine.connect() for _ in range(8)]
        assert engine.pool.checkedout() == 8
        for connection in again:
            connection.close()
    finally:
        engine.dispose()


@pytest.mark.parametrize("store", ["postgresql", "sqlite"])
def test_the_database_provider_trims_only_a_lingering_pool(new_database, tmp_path, store):
    """A local run's SQLite store has a plain pool, which has nothing to trim (it logged a failure every 5 s)."""
    from types import SimpleNamespace

    from comptoir_common.nameko_ext import Database

    spawned = []
    provider = Database()
    url = new_database("trim") if store == "postgresql" else f"sqlite:///{tmp_path / 'trim.db'}"
    provider.container = SimpleNamespace(
        config={"DATABASE_URL": url},
        service_name="trim",
        spawn_managed_thread=lambda fn, identifier: spawned.append(identifier),
    )
    provider.setup()
    try:
        provider.start()
        assert ("database-pool-trim" in spawned) is (store == "postgresql")
    finally:
        provider._running = False
        provider.engine.dispose()
