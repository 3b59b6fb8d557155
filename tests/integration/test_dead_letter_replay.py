"""``comptoir dlq``: dead-lettered events are listed and moved back, over the real broker."""

from __future__ import annotations

import json
import uuid

import pika
import pytest
from comptoir_common.nameko_ext import event_queues
from comptoir_dev import dlq
from kombu import Connection


def _dead_letter_one(amqp_uri: str, source: str, event_type: str, queue: str) -> dict:
    """Publish an event and make its consumer refuse it, as a handler failing past the delivery limit would."""
    envelope = {"id": str(uuid.uuid4()), "type": event_type, "version": 1, "data": {"n": 1}}
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish(
        f"{source}.events", event_type, json.dumps(envelope),
        pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id=envelope["id"]),
    )  # fmt: skip
    for _ in range(100):
        method, _properties, _body = channel.basic_get(queue, auto_ack=False)
        if method is not None:
            channel.basic_nack(method.delivery_tag, requeue=False)  # → comptoir.dead-letter → dlq.<queue>
            break
        connection.sleep(0.05)
    else:
        raise AssertionError("event never reached its queue")
    for _ in range(100):
        if channel.queue_declare(f"dlq.{queue}", passive=True).method.message_count == 1:
            break
        connection.sleep(0.05)
    connection.close()
    return envelope


@pytest.fixture
def handler_queues(amqp_uri):
    source, service = f"src{uuid.uuid4().hex[:6]}", f"svc{uuid.uuid4().hex[:6]}"
    queue, dead = event_queues(source, "thing.happened", service, "on_thing")
    with Connection(amqp_uri, connect_timeout=30) as connection:
        queue(connection).declare()
        dead(connection).declare()
    yield source, queue.name, dead.name
    with Connection(amqp_uri, connect_timeout=30) as connection:
        channel = connection.channel()
        channel.queue_delete(queue.name)
        channel.queue_delete(dead.name)


def test_list_and_replay_into_the_original_queue(amqp_uri, handler_queues):
    source, queue, dead = handler_queues
    envelope = _dead_letter_one(amqp_uri, source, "thing.happened", queue)
    listed = dlq.inspect(amqp_uri, [dead, "dlq.does-not-exist"])
    assert [(q.name, q.messages) for q in listed] == [(dead, 1)]

    assert dlq.replay(amqp_uri, dead) == 1
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    channel = connection.channel()
    method, properties, body = channel.basic_get(queue, auto_ack=True)
    assert method is not None and json.loads(body) == envelope
    assert properties.message_id == envelope["id"] and properties.delivery_mode == 2
    assert properties.headers["x-comptoir-replayed-from"] == dead
    assert channel.queue_declare(dead, passive=True).method.message_count == 0
    connection.close()
    assert dlq.replay(amqp_uri, dead) == 0


def test_replay_via_the_source_exchange_reaches_every_bound_queue(amqp_uri, handler_queues):
    source, queue, dead = handler_queues
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    channel = connection.channel()
    observer = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(observer, f"{source}.events", routing_key="thing.*")
    envelope = _dead_letter_one(amqp_uri, source, "thing.happened", queue)
    channel.queue_purge(observer)  # the original publication

    assert dlq.replay(amqp_uri, dead, via_exchange=True) == 1
    for name in (queue, observer):
        for _ in range(50):
            method, _properties, body = channel.basic_get(name, auto_ack=True)
            if method is not None:
                break
            connection.sleep(0.05)
        assert method is not None and json.loads(body)["id"] == envelope["id"]
        assert method.routing_key == "thing.happened"
    connection.close()


def test_replay_refuses_a_queue_that_is_not_a_dead_letter_queue(amqp_uri):
    with pytest.raises(ValueError, match="dlq."):
        dlq.replay(amqp_uri, "evt-tickets-ticket.created--notifier.on_ticket_created")


def test_known_dead_letter_queues_come_from_the_services():
    names = dlq.known_dead_letter_queues()
    assert "dlq.evt-tickets-ticket.created--notifier.on_ticket_created" in names
