"""The queues' bindings follow the active subscriptions: never narrower than a pattern, nothing bound without a
subscription, and the former ``#`` binding removed (real RabbitMQ, a committing database)."""

from __future__ import annotations

import json
import uuid
from fnmatch import fnmatchcase

import pika
import pytest
from comptoir_common.nameko_ext import ReliableEventHandler
from comptoir_webhooks import bindings, subscriptions
from comptoir_webhooks.models import BoundRoutingKey, Subscription
from comptoir_webhooks.service import WebhooksService
from sqlalchemy import delete, select


def _topic_matches(key: str, event_type: str) -> bool:
    """RabbitMQ's topic matching: ``*`` one word, ``#`` zero or more."""

    def match(keys: list[str], words: list[str]) -> bool:
        if not keys:
            return not words
        if keys[0] == "#":
            return any(match(keys[1:], words[i:]) for i in range(len(words) + 1))
        return bool(words) and keys[0] in ("*", words[0]) and match(keys[1:], words[1:])

    return match(key.split("."), event_type.split("."))


def test_each_pattern_binds_keys_routing_at_least_its_types():
    types = subscriptions.catalogue_types()
    prefixes = {t.rsplit(".", n)[0] + ".*" for t in types for n in range(1, t.count(".") + 1)}
    for pattern in ["*", *types, *prefixes]:
        keys = bindings.binding_keys([pattern])
        for event_type in types:
            if fnmatchcase(event_type, pattern):
                assert any(_topic_matches(key, event_type) for key in keys), (pattern, event_type, keys)


def test_binding_keys_translate_and_drop_covered_keys():
    assert bindings.binding_keys([]) == set()
    assert bindings.binding_keys(["ticket.created"]) == {"ticket.created"}
    assert bindings.binding_keys(["ticket.*"]) == {"ticket.#"}
    assert bindings.binding_keys(["ticket.*", "ticket.created", "user.created"]) == {
        "ticket.#",
        "user.created",
    }
    assert bindings.binding_keys(["*", "ticket.*", "user.created"]) == {"#"}


def test_the_service_handles_each_source_on_an_unbound_queue():
    handlers = {
        (entrypoint.source_service, name, entrypoint.event_type, entrypoint.declare_binding)
        for name in dir(WebhooksService)
        for entrypoint in getattr(getattr(WebhooksService, name), "nameko_entrypoints", ())
        if isinstance(entrypoint, ReliableEventHandler)
    }
    assert handlers == {(source, f"on_{source}_event", "#", False) for source in bindings.SOURCES}


class Broker:
    """Publishes with confirms (routed when confirmed) and counts what the test service's queues hold."""

    def __init__(self, amqp_uri: str, service_name: str):
        self.service_name = service_name
        self.connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()

    def publish(self, source: str, event_type: str) -> None:
        envelope = {"id": str(uuid.uuid4()), "type": event_type, "version": 1,
                    "occurred_at": "2026-11-28T08:00:00+00:00", "actor": {"kind": "system", "id": None},
                    "data": {}}  # fmt: skip
        self.channel.basic_publish(
            f"{source}.events",
            event_type,
            json.dumps(envelope).encode(),
            pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id=envelope["id"]),
        )

    def queued(self, source: str) -> int:
        name = bindings.handler_queue(source, self.service_name).name
        return self.channel.queue_declare(name, passive=True).method.message_count

    def purge(self) -> None:
        for source in bindings.SOURCES:
            self.channel.queue_purge(bindings.handler_queue(source, self.service_name).name)

    def close(self) -> None:
        for source in bindings.SOURCES:
            self.channel.queue_delete(bindings.handler_queue(source, self.service_name).name)
        self.connection.close()


@pytest.fixture
def service_name() -> str:
    # Queues of this test's own, apart from those of a system running on the same vhost.
    return f"webhooks-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def broker(amqp_uri, service_name):
    broker = Broker(amqp_uri, service_name)
    yield broker
    broker.close()


@pytest.fixture
def committed(webhooks_factory):
    """Subscriptions committed for the test, removed after it with the recorded keys."""
    with webhooks_factory() as session:
        session.execute(delete(BoundRoutingKey))
        session.commit()

    def add(event_types: list[str]) -> str:
        with webhooks_factory() as session:
            subscription = Subscription(name="CRM", url="https://crm.example.com/hook", event_types=event_types,
                                        secret="whsec_test")  # fmt: skip
            session.add(subscription)
            session.commit()
            return subscription.id

    yield add
    with webhooks_factory() as session:
        session.execute(delete(Subscription))
        session.execute(delete(BoundRoutingKey))
        session.commit()


def _recorded(webhooks_factory) -> set[str]:
    with webhooks_factory() as session:
        return set(session.scalars(select(BoundRoutingKey.routing_key)))


def test_without_subscription_nothing_is_bound_not_even_the_former_catch_all(
    amqp_uri, service_name, broker, committed, webhooks_factory
):
    # A queue as it was before: bound with "#".
    legacy = bindings.handler_queue("tickets", service_name).name
    broker.channel.exchange_declare("tickets.events", "topic", durable=True)
    broker.channel.queue_declare(
        legacy, durable=True, arguments=bindings.handler_queue("tickets", service_name).queue_arguments
    )
    broker.channel.queue_bind(legacy, "tickets.events", "#")
    assert bindings.reconcile(webhooks_factory, amqp_uri, service_name) == set()
    broker.publish("tickets", "ticket.bindings_probe")
    broker.publish("auth", "user.bindings_probe")
    assert [broker.queued(source) for source in bindings.SOURCES] == [0] * len(bindings.SOURCES)
    assert _recorded(webhooks_factory) == set()


def test_bindings_follow_the_active_subscriptions(
    amqp_uri, service_name, broker, committed, webhooks_factory
):
    subscription_id = committed(["ticket.*"])
    assert bindings.reconcile(webhooks_factory, amqp_uri, service_name) == {"ticket.#"}
    assert _recorded(webhooks_factory) == {"ticket.#"}
    broker.publish("tickets", "ticket.bindings_probe")
    broker.publish("auth", "user.bindings_probe")
    assert (broker.queued("tickets"), broker.queued("auth")) == (1, 0)

    committed(["user.bindings_probe"])  # a second subscription, for the auth event only
    assert bindings.reconcile(webhooks_factory, amqp_uri, service_name) == {"ticket.#", "user.bindings_probe"}
    broker.publish("auth", "user.bindings_probe")
    assert broker.queued("auth") == 1

    with webhooks_factory() as session:
        session.execute(delete(Subscription).where(Subscription.id != subscription_id))
        session.get(Subscription, subscription_id).active = False
        session.commit()
    broker.purge()
    assert bindings.reconcile(webhooks_factory, amqp_uri, service_name) == set()
    assert _recorded(webhooks_factory) == set()
    broker.publish("tickets", "ticket.bindings_probe")
    broker.publish("auth", "user.bindings_probe")
    assert (broker.queued("tickets"), broker.queued("auth")) == (0, 0)
