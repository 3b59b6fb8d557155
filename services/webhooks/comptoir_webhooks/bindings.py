"""The routing keys the webhooks service's event queues are bound to: those its active subscriptions want, no more.

A queue bound with ``#`` took every event of the system (2.4 ms of CPU per ticket created, with no subscription at
all). Each pattern becomes a topic binding key that matches at least the same types (``*`` → ``#``, ``ticket.*`` →
``ticket.#``, a type → itself); ``subscriptions.matches`` stays the exact filter when an event arrives.

AMQP cannot list a queue's bindings (only the management API can, and it is not always enabled), so every key bound
here is first recorded in ``bound_routing_keys``: a reconcile unbinds each recorded key that no active subscription
wants, and ``#`` (what the queues were bound with before). Reconciles run one at a time (a PostgreSQL advisory lock),
each reading the subscriptions once it holds the lock, so the last one to run binds what the last commit wants.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from comptoir_common.events import exchange_name
from comptoir_common.nameko_ext import event_queues
from kombu import Connection, Exchange, Queue
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from comptoir_webhooks.models import BoundRoutingKey, Subscription

# The exchanges the service listens to; its handler of each is ``on_<source>_event`` (checked by a test).
SOURCES = ("tickets", "auth", "crm_sync", "mail_ingest", "notifier", "wiki")
# Every event type: the binding of the queues before they were bound per subscription, and the name they keep.
ALL_EVENTS = "#"
# Any constant of our own: the webhooks database is the service's alone.
_LOCK_KEY = 7_746_861
# Reconciles of one process (the RPC path and the timer) also wait for each other, on SQLite too.
_local_lock = threading.Lock()
# A subscription change waits for its reconcile: better to answer and leave a broker in trouble to the timer.
CONNECT_TIMEOUT = 10


def binding_keys(patterns: Iterable[str]) -> set[str]:
    """Topic binding keys matching at least the types the patterns match, without keys another one covers."""
    keys = set()
    for pattern in patterns:
        if pattern == "*":
            keys.add(ALL_EVENTS)
        elif pattern.endswith(".*"):
            keys.add(pattern[:-1] + "#")
        else:
            keys.add(pattern)
    return {key for key in keys if not any(_covers(other, key) for other in keys)}


def _covers(wide: str, key: str) -> bool:
    """Whether binding ``wide`` (``#`` or ``<prefix>.#``) routes everything ``key`` does (and is another key)."""
    if wide == key or not wide.endswith("#"):
        return False
    return wide == ALL_EVENTS or key.startswith(wide[:-1])


def wanted_keys(session: Session) -> set[str]:
    """The binding keys the active subscriptions need."""
    patterns = session.scalars(select(Subscription.event_types).where(Subscription.active.is_(True)))
    return binding_keys(pattern for event_types in patterns for pattern in event_types or [])


def handler_queue(source: str, service_name: str = "webhooks") -> Queue:
    """The queue of the service's handler of ``source`` events, declared bound to nothing (as the handler does)."""
    queue, _ = event_queues(source, ALL_EVENTS, service_name, f"on_{source}_event", declare_binding=False)
    return queue


def reconcile(new_session: Callable[[], Session], amqp_uri: str, service_name: str = "webhooks") -> set[str]:
    """Bind every source's queue to the keys the active subscriptions want and unbind the others; the keys bound."""
    with _local_lock:
        lock_session = new_session()
        session = new_session()
        try:
            if lock_session.get_bind().dialect.name == "postgresql":
                # Held until lock_session ends, across the commits of ``session`` below.
                lock_session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            wanted = wanted_keys(session)
            recorded = set(session.scalars(select(BoundRoutingKey.routing_key)))
            session.add_all(BoundRoutingKey(routing_key=key) for key in sorted(wanted - recorded))
            session.commit()  # recorded before bound: whatever the broker has, a later reconcile can undo
            stale = (recorded | {ALL_EVENTS}) - wanted
            _apply(amqp_uri, service_name, wanted, stale)
            session.execute(delete(BoundRoutingKey).where(BoundRoutingKey.routing_key.in_(stale)))
            session.commit()
            return wanted
        finally:
            session.close()
            lock_session.rollback()
            lock_session.close()


def _apply(amqp_uri: str, service_name: str, wanted: set[str], stale: set[str]) -> None:
    with Connection(amqp_uri, connect_timeout=CONNECT_TIMEOUT) as connection:
        channel = connection.default_channel
        for source in SOURCES:
            exchange = Exchange(exchange_name(source), type="topic", durable=True)(channel)
            exchange.declare()  # as its publisher does: binding to an exchange not declared yet would fail
            queue = handler_queue(source, service_name)(channel)
            queue.declare()
            for key in sorted(wanted):
                queue.bind_to(exchange, key)
            for key in sorted(stale):
                queue.unbind_from(exchange, key)  # RabbitMQ accepts unbinding what is not bound
