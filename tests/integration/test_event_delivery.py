"""Events between real processes: duplicates applied once, poison events dead-lettered, never lost."""

from __future__ import annotations

import json
import time
import uuid

import pika
from comptoir_common.events import Event, exchange_name, system_actor


def _publish(amqp_uri: str, envelope: dict, times: int = 1) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for _ in range(times):
            channel.basic_publish(
                exchange_name("tickets"),
                envelope.get("type", "ticket.created"),
                json.dumps(envelope).encode(),
                pika.BasicProperties(content_type="application/json", delivery_mode=2),
            )
    finally:
        connection.close()


def test_the_same_event_delivered_three_times_sends_one_mail(system):
    recipient = f"triple.{uuid.uuid4().hex[:6]}@client.example"
    event = Event(
        type="ticket.created",
        actor=system_actor(),
        data={
            "id": str(uuid.uuid4()),
            "number": 9001,
            "title": "Reçu trois fois",
            "status": "new",
            "requester": {"id": None, "email": recipient, "name": "Triple"},
            "message": {"body": "Bonjour"},
        },
    )
    _publish(system.amqp_uri, event.to_envelope(), times=3)
    system.smtp.wait_for(lambda m: m["To"] == recipient)
    time.sleep(2)  # time enough for a duplicate to be sent, if one were going to be
    assert len([m for m in system.smtp.messages if m["To"] == recipient]) == 1


def test_a_poison_event_ends_in_the_dead_letter_queue_not_lost(system):
    poison = {"id": str(uuid.uuid4()), "type": "ticket.created", "note": "no envelope fields"}
    _publish(system.amqp_uri, poison)
    dead_letter_queue = "dlq.evt-tickets-ticket.created--notifier.on_ticket_created"
    connection = pika.BlockingConnection(pika.URLParameters(system.amqp_uri))
    try:
        channel = connection.channel()
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline and body is None:
            method, _, body = channel.basic_get(dead_letter_queue, auto_ack=True)
            if method is None:
                body = None
                time.sleep(0.5)
        assert body is not None, "the poison event never reached the dead-letter queue"
        assert json.loads(body)["id"] == poison["id"]
    finally:
        connection.close()
    # The notifier kept working for the good events after the poison one.
    assert system.processes["notifier"].poll() is None
