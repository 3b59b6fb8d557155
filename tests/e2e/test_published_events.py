"""Events really published by the running services match the catalogue; the gateway serves the catalogue."""

from __future__ import annotations

import json
import time
import uuid

import pika
from comptoir_common import event_catalogue


def _collect(channel, queue: str, until, timeout: float = 30.0) -> list[dict]:
    received: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            if until(received):
                return received
            time.sleep(0.1)
            continue
        envelope = json.loads(body)
        assert properties.message_id == envelope["id"]
        assert properties.headers["comptoir-event-type"] == envelope["type"] == method.routing_key
        assert properties.headers["comptoir-event-version"] == envelope["version"]
        assert method.exchange == event_catalogue.find(envelope["type"], envelope["version"]).exchange
        received.append(envelope)
    raise AssertionError(f"expected events not received; got {[e['type'] for e in received]}")


def test_published_events_match_their_schemas(system):
    connection = pika.BlockingConnection(pika.URLParameters(system.amqp_uri))
    channel = connection.channel()
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    for exchange in event_catalogue.exchanges():
        channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        channel.queue_bind(queue, exchange, routing_key="#")
    try:
        email = f"schema.{uuid.uuid4().hex[:6]}@client.example"
        customer_id = str(uuid.uuid4())
        user = system.create_user(email, "client", customer_id=customer_id, name="Nina Schéma")
        with system.client() as http:
            headers = system.login(http, email, user["password"])
            response = http.post(
                "/api/v1/tickets",
                json={"title": "Schéma", "message": "Vérifier le contrat."},
                headers=headers,
            )
            assert response.status_code == 201, response.text
            ticket_id = response.json()["id"]

        def done(events):
            return any(e["type"] == "user.created" and e["data"]["id"] == user["id"] for e in events) and any(
                e["type"] == "ticket.created" and e["data"]["id"] == ticket_id for e in events
            )

        events = _collect(channel, queue, done)
        # Every event seen (ours and any other test's) must be in the catalogue and match its schema.
        for envelope in events:
            event_catalogue.validate(envelope)
    finally:
        connection.close()


def test_gateway_serves_the_catalogue(system):
    with system.client() as http:
        document = http.get("/api/v1/events/asyncapi.json")
        assert document.status_code == 200
        assert document.json() == event_catalogue.asyncapi_document()
        listing = http.get("/api/v1/events").json()
        created = next(item for item in listing if item["type"] == "ticket.created")
        assert created["exchange"] == "tickets.events" and created["routing_key"] == "ticket.created"
        schema = http.get(created["schema_url"])
        assert schema.status_code == 200 and schema.json()["properties"]["type"] == {
            "const": "ticket.created"
        }
        assert http.get("/api/v1/events/ticket.created/v9/schema.json").status_code == 404
        page = http.get("/evenements", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "Catalogue des événements" in page.text
        assert "tickets.events" in page.text and 'id="ticket-created-v1"' in page.text
