"""The nameko side of the shared package: database dependency, outbox relay, ``rpc`` and ``event_handler``.

nameko answers an RPC (and acks an event) *before* it calls dependencies' ``worker_result`` hooks, so a commit
there could fail after the caller was told "done". The :func:`rpc` and :func:`event_handler` decorators therefore
commit inside the entrypoint, before the reply or the ack, and roll back on error. Service classes use these two
decorators instead of nameko's own.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import weakref
from pathlib import Path

import eventlet
from kombu import Connection, Exchange, Queue
from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc as nameko_rpc
from prometheus_client import Counter, Histogram
from sqlalchemy import text
from sqlalchemy.orm import Session

from comptoir_common.blobs import DirectoryBlobStore
from comptoir_common.db import (
    IDLE_CONNECTIONS,
    LINGER_SECONDS,
    LingeringQueuePool,
    make_engine,
    make_session_factory,
)
from comptoir_common.errors import ComptoirError
from comptoir_common.events import Event, exchange_name
from comptoir_common.health import register_check
from comptoir_common.outbox import ConfirmedBatchPublisher, OutboxRelay, claim_event

log = logging.getLogger(__name__)

RPC_CALLS = Counter("comptoir_rpc_calls_total", "RPC calls handled", ["method", "outcome"])
RPC_DURATION = Histogram(
    "comptoir_rpc_duration_seconds",
    "RPC handling time",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENTS_HANDLED = Counter("comptoir_events_handled_total", "Events consumed", ["handler", "outcome"])

DEAD_LETTER_EXCHANGE = "comptoir.dead-letter"
# After this many deliveries a failing event goes to the dead-letter queue instead of looping for ever.
EVENT_DELIVERY_LIMIT = 5
RELAY_POLL_SECONDS = 1.0
# After a wake-up the relay waits this long so that commits landing together are published as one batch.
RELAY_COALESCE_SECONDS = 0.02
RELAY_BATCH_SIZE = 200


class WorkerDatabase:
    """What a worker sees as ``self.db``: a lazily opened session, committed by the entrypoint decorators."""

    def __init__(self, provider: Database):
        self._provider = provider
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self._provider.session_factory()
        return self._session

    def new_session(self) -> Session:
        """A session of its own, for green threads the worker spawns (the caller commits and closes it)."""
        return self._provider.session_factory()

    @property
    def outbox_model(self):
        return self._provider.outbox_model

    @property
    def inbox_model(self):
        return self._provider.inbox_model

    def commit(self) -> None:
        if self._session is None:
            return
        dirty = self._session.info.pop("outbox_dirty", False)
        self._session.commit()
        if dirty:
            self._provider.wake_relay()

    def rollback(self) -> None:
        if self._session is not None:
            self._session.info.pop("outbox_dirty", None)
            self._session.rollback()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


class Database(DependencyProvider):
    """A SQLAlchemy session per worker, plus the outbox relay of the service.

    The URL comes from the container config key ``DATABASE_URL``; the pool is sized to ``max_workers``.
    """

    def __init__(self, outbox_model: type | None = None, inbox_model: type | None = None):
        self.outbox_model = outbox_model
        self.inbox_model = inbox_model
        self._workers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._running = False

    def setup(self) -> None:
        config = self.container.config
        self.engine = make_engine(
            config["DATABASE_URL"],
            pool_size=int(config.get("max_workers", 10)) + 2,
            idle_connections=int(config.get("DB_IDLE_CONNECTIONS", IDLE_CONNECTIONS)),
            linger=True,
        )
        self.session_factory = make_session_factory(self.engine)
        register_check("database", self._check)
        if self.outbox_model is not None:
            self.publisher = ConfirmedBatchPublisher(
                config["AMQP_URI"], exchange_name(self.container.service_name)
            )
            self.relay = OutboxRelay(
                self.session_factory, self.outbox_model, publish_batch=self.publisher.publish_batch
            )

    def _check(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def start(self) -> None:
        self._running = True
        if isinstance(self.engine.pool, LingeringQueuePool):  # SQLite stores (a local run) use a plain pool
            self.container.spawn_managed_thread(self._trim_loop, identifier="database-pool-trim")
        if self.outbox_model is not None:
            self.container.spawn_managed_thread(self._relay_loop, identifier="outbox-relay")

    def _trim_loop(self) -> None:
        """Give back the connections a burst opened once it is over (see ``LingeringQueuePool``)."""
        while self._running:
            self._stopping.wait(LINGER_SECONDS / 2)  # returns at once on stop: not left for nameko to kill
            if not self._running:
                return
            try:
                self.engine.pool.trim()
            except Exception:
                log.warning("trimming the database pool failed", exc_info=True)

    def stop(self) -> None:
        self._running = False
        self._wake.set()
        self._stopping.set()
        # Give the relay a moment to finish its batch before the pool goes away.
        eventlet.sleep(0)

    def kill(self) -> None:
        self._running = False
        self._wake.set()
        self._stopping.set()

    def wake_relay(self) -> None:
        self._wake.set()

    def _relay_loop(self) -> None:
        backoff = 0.5
        while self._running:
            self._wake.clear()
            try:
                published = self.relay.publish_pending(batch_size=RELAY_BATCH_SIZE)
                backoff = 0.5
            except Exception:
                log.warning("outbox relay failed; retrying in %.1fs", backoff, exc_info=True)
                self._wake.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if published < RELAY_BATCH_SIZE:
                # Caught up: wait for a commit (or the poll), then a moment more so that the commits landing
                # together go out as one batch, with one confirm round trip.
                self._wake.wait(RELAY_POLL_SECONDS)
                eventlet.sleep(RELAY_COALESCE_SECONDS)
        self.publisher.close()
        log.info("outbox relay stopped")

    def get_dependency(self, worker_ctx) -> WorkerDatabase:
        worker_db = WorkerDatabase(self)
        self._workers[worker_ctx] = worker_db
        return worker_db

    def worker_teardown(self, worker_ctx) -> None:
        worker_db = self._workers.pop(worker_ctx, None)
        if worker_db is not None:
            worker_db.rollback()
            worker_db.close()


class BlobStorage(DependencyProvider):
    """The blob store (``COMPTOIR_BLOB_DIR``, default ``<data dir>/blobs``) as ``self.blobs`` of a service."""

    def setup(self) -> None:
        self.store = DirectoryBlobStore(Path(self.container.config["BLOB_ROOT"]))

    def get_dependency(self, worker_ctx) -> DirectoryBlobStore:
        return self.store


def rpc(fn):
    """nameko's ``@rpc``, committing the worker's transaction before the reply and counting the call."""

    @functools.wraps(fn)
    def entrypoint(self, *args, **kwargs):
        started = time.perf_counter()
        outcome = "ok"
        try:
            result = fn(self, *args, **kwargs)
            self.db.commit()
            return result
        except ComptoirError:
            outcome = "refused"
            self.db.rollback()
            raise
        except Exception:
            outcome = "error"
            self.db.rollback()
            raise
        finally:
            RPC_CALLS.labels(fn.__name__, outcome).inc()
            RPC_DURATION.labels(fn.__name__).observe(time.perf_counter() - started)

    return nameko_rpc(expected_exceptions=ComptoirError)(entrypoint)


def event_queues(
    source_service: str,
    event_type: str,
    service_name: str,
    method_name: str,
    *,
    declare_binding: bool = True,
) -> tuple[Queue, Queue]:
    """The quorum queue of one event handler and its dead-letter queue, as the handler and the topology declare them.

    The name follows nameko's pooled-handler convention, so every instance of a service shares the queue. Without
    ``declare_binding`` the queue is declared bound to nothing: its service binds it itself.
    """
    queue_name = f"evt-{source_service}-{event_type}--{service_name}.{method_name}"
    dead_letter_queue = Queue(
        f"dlq.{queue_name}",
        exchange=Exchange(DEAD_LETTER_EXCHANGE, type="direct", durable=True),
        routing_key=queue_name,
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )
    queue = Queue(
        queue_name,
        # kombu binds a queue declared with an exchange; with none it only declares the queue.
        exchange=Exchange(exchange_name(source_service), type="topic", durable=True)
        if declare_binding
        else None,
        routing_key=event_type if declare_binding else "",
        durable=True,
        auto_delete=False,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": EVENT_DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": queue_name,
        },
    )
    return queue, dead_letter_queue


_declare_lock = threading.Lock()


class ReliableEventHandler(EventHandler):
    """A pooled event handler on a quorum queue that dead-letters an event after repeated failures.

    nameko's default acks (and so loses) an event whose handler raised. Here a failure requeues the event; after
    ``EVENT_DELIVERY_LIMIT`` deliveries RabbitMQ moves it to ``dlq.<queue>`` where operators can inspect and replay it.
    """

    def __init__(self, source_service: str, event_type: str, *, declare_binding: bool = True, **kwargs):
        self.declare_binding = declare_binding
        super().__init__(source_service, event_type, **kwargs)

    def setup(self) -> None:
        super().setup()
        self.queue, dead_letter_queue = event_queues(
            self.source_service,
            self.event_type,
            self.container.service_name,
            self.method_name,
            declare_binding=self.declare_binding,
        )
        # Declared here, before consuming starts, so that the first dead letter has somewhere to go. nameko sets up
        # every handler at once: one handshake at a time, retried, keeps a busy broker from timing them all out.
        with _declare_lock, Connection(self.container.config["AMQP_URI"], connect_timeout=30) as connection:
            connection.ensure_connection(
                max_retries=10, interval_start=0.5, interval_step=0.5, interval_max=3
            )
            dead_letter_queue(connection).declare()


def declare_topology(service_classes, amqp_uri: str) -> list[str]:
    """Declare every event queue of ``service_classes`` (and its bindings) on the broker; return their names.

    Run before any service starts (``comptoir migrate``, the launcher, the deploy's migration job): an event
    published before its consumer's queue exists would otherwise reach no one.
    """
    declared = []
    with Connection(amqp_uri, connect_timeout=30) as connection:
        for service_cls in service_classes:
            for method_name in dir(service_cls):
                for entrypoint in getattr(getattr(service_cls, method_name), "nameko_entrypoints", ()):
                    if isinstance(entrypoint, ReliableEventHandler):
                        for queue in event_queues(
                            entrypoint.source_service,
                            entrypoint.event_type,
                            service_cls.name,
                            method_name,
                            declare_binding=entrypoint.declare_binding,
                        ):
                            queue(connection).declare()
                            declared.append(queue.name)
    return declared


def event_handler(source_service: str, event_type: str, *, declare_binding: bool = True):
    """Handle ``event_type`` events from ``source_service``, at most once per event, in one transaction.

    The method receives an :class:`~comptoir_common.events.Event`. The processed event id is recorded in the same
    transaction as the effect, so a redelivered event is acknowledged without being applied twice. With
    ``declare_binding=False`` the queue (still named after ``event_type``) is bound to nothing at declaration: the
    service manages its bindings itself (the webhooks service binds only what its subscriptions want).
    """

    def decorator(fn):
        @functools.wraps(fn)
        def entrypoint(self, envelope):
            consumer = f"{self.name}.{fn.__name__}"
            outcome = "ok"
            try:
                event = Event.from_envelope(envelope)
                if claim_event(self.db.session, self.db.inbox_model, consumer, event.id):
                    fn(self, event)
                else:
                    outcome = "duplicate"
                self.db.commit()
            except Exception:
                outcome = "error"
                self.db.rollback()
                log.exception("event handler %s failed on %s", consumer, envelope.get("id"))
                # A short pause before the requeue keeps a transient failure (database restarting) from burning
                # through the delivery limit in a few milliseconds.
                eventlet.sleep(1.0)
                raise
            finally:
                EVENTS_HANDLED.labels(consumer, outcome).inc()

        return ReliableEventHandler.decorator(
            source_service, event_type, requeue_on_error=True, declare_binding=declare_binding
        )(entrypoint)

    return decorator
