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
        spec = event_catalogue.find(envelope["type"], envelope["version"])
        assert spec is not None, (
            f"{envelope['type']} v{envelope['version']} is missing from the event catalogue"
        )
        assert method.exchange == spec.exchange
        received.append(envelope)
    raise AssertionError(f"expected events not received; got {[e['type'] for e in received]}")


def test_published_events_match_their_schemas(system):
    """A ticket's life and a wiki page, through the API; every event seen must match the catalogue."""
    connection = pika.BlockingConnection(pika.URLParameters(system.amqp_uri))
    channel = connection.channel()
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    for exchange in sorted({*event_catalogue.exchanges(), "wiki.events"}):
        channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        channel.queue_bind(queue, exchange, routing_key="#")
    tag = uuid.uuid4().hex[:6]
    try:
        client = system.create_user(f"schema.{tag}@client.example", "client", customer_id=str(uuid.uuid4()))
        agent = system.create_user(f"agent.{tag}@comptoir.local", "agent", name="Hugo Schéma")
        admin = system.create_user(f"admin.{tag}@comptoir.local", "admin", name="Ada Schéma")
        with system.client() as http:
            as_client = system.login(http, client["email"], client["password"])
            as_agent = system.login(http, agent["email"], agent["password"])
            as_admin = system.login(http, admin["email"], admin["password"])
            response = http.post(
                "/api/v1/tickets",
                json={"title": "Schéma", "message": "Vérifier le contrat."},
                headers=as_client,
            )
            assert response.status_code == 201, response.text
            ticket_id = response.json()["id"]
            base = f"/api/v1/tickets/{ticket_id}"
            assert http.post(f"{base}/take", headers=as_agent).status_code == 200
            for body in ({"body": "Nous regardons."}, {"body": "Note interne", "internal": True}):
                assert http.post(f"{base}/messages", json=body, headers=as_agent).status_code == 201
            for change in ({"priority": "high"}, {"status": "closed"}, {"status": "open"}):
                version = http.get(base, headers=as_agent).json()["version"]
                response = http.patch(base, json={"version": version, **change}, headers=as_agent)
                assert response.status_code == 200, response.text
            page = http.post(
                "/api/v1/wiki/pages", json={"title": f"Page {tag}", "content": "Texte"}, headers=as_admin
            )
            assert page.status_code == 201, page.text
            updated = http.put(
                f"/api/v1/wiki/pages/{page.json()['id']}",
                json={"base_revision": 1, "content": "Texte modifié"},
                headers=as_admin,
            )
            assert updated.status_code == 200, updated.text

        expected = {
            "user.created", "ticket.created", "ticket.assigned", "ticket.message_added", "ticket.updated",
            "ticket.status_changed", "ticket.closed", "ticket.reopened", "wiki.page_created", "wiki.page_updated",
        }  # fmt: skip

        def mine(envelope) -> bool:
            data = envelope["data"]
            return (
                data.get("id") in (client["id"], ticket_id, page.json()["id"])
                or (data.get("ticket") or {}).get("id") == ticket_id
            )

        def done(events):
            return expected <= {e["type"] for e in events if mine(e)}

        events = _collect(channel, queue, done)
        # Every event seen (ours and any other test's) must be in the catalogue and match its schema.
        for envelope in events:
            event_catalogue.validate(envelope)
        notes = [e for e in events if e["type"] == "ticket.message_added" and mine(e)]
        assert sorted(e["data"]["message"]["internal"] for e in notes) == [False, True]
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
