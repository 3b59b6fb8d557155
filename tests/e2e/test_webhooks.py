"""Outgoing webhooks through the whole system, to real HTTP receivers: the service's queues bound only to what the
subscriptions want, signed deliveries, once per event even when the bus delivers it twice, retries while the receiver
is down, permanent refusals, replays, the admin pages, and refusals for everyone but admins."""

from __future__ import annotations

import importlib.util
import json
import re
import time
import uuid
from pathlib import Path

import pika
import pytest
from comptoir_testing.webhook_receiver import WebhookReceiver

from tests.e2e.ticket_helpers import form_login

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webhook_receiver.py"
_spec = importlib.util.spec_from_file_location("webhook_receiver_example", EXAMPLE)
example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(example)


@pytest.fixture(scope="module")
def people(system) -> dict[str, dict]:
    people = {}
    with system.client() as http:
        for role in ("admin", "agent", "client"):
            email = f"webhooks.{role}.{uuid.uuid4().hex[:6]}@example.fr"
            customer = str(uuid.uuid4()) if role == "client" else None
            user = system.create_user(email, role, customer_id=customer)
            people[role] = user | {"headers": system.login(http, email, user["password"])}
    return people


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def subscribe(system, people):
    """Create subscriptions through the API; they are deleted after the test (nothing more sent to them)."""
    created = []

    def make(url: str, event_types: list[str]) -> dict:
        with system.client() as http:
            response = http.post(
                "/api/v1/webhooks",
                json={"name": f"Système {uuid.uuid4().hex[:4]}", "url": url, "event_types": event_types},
                headers=people["admin"]["headers"],
            )
        assert response.status_code == 201, response.text
        created.append(response.json())
        return response.json()

    yield make
    with system.client() as http:
        for subscription in created:
            http.delete(f"/api/v1/webhooks/{subscription['id']}", headers=people["admin"]["headers"])


def _create_ticket(system, people, title: str) -> str:
    with system.client() as http:
        response = http.post(
            "/api/v1/tickets",
            json={"title": title, "message": "Bonjour, test des webhooks."},
            headers=people["client"]["headers"],
        )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _for_ticket(event_type: str, ticket_id: str):
    def predicate(request) -> bool:
        event = request.json
        ticket = event["data"].get("ticket") or {}
        return event["type"] == event_type and ticket.get("id") == ticket_id

    return predicate


def _log(system, people, subscription_id: str) -> list[dict]:
    with system.client() as http:
        response = http.get(
            f"/api/v1/webhooks/{subscription_id}/deliveries", headers=people["admin"]["headers"]
        )
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _wait_for_delivery(system, people, subscription_id, predicate, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = [d for d in _log(system, people, subscription_id) if predicate(d)]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no such delivery: {_log(system, people, subscription_id)}"
        time.sleep(0.2)


class Observer:
    """A queue of the test's own bound to ``exchange`` with ``#``: shows when an event has been routed."""

    def __init__(self, amqp_uri: str, exchange: str):
        self.connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        self.queue = self.channel.queue_declare(queue="", exclusive=True).method.queue
        self.channel.queue_bind(self.queue, exchange, routing_key="#")

    def wait_for(self, predicate, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            method, _, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                time.sleep(0.1)
            elif predicate(envelope := json.loads(body)):
                return envelope
        raise AssertionError("event not routed in time")

    def webhooks_queue_depth(self, source: str) -> int:
        name = f"evt-{source}-#--webhooks.on_{source}_event"
        return self.channel.queue_declare(name, passive=True).method.message_count

    def close(self) -> None:
        self.connection.close()


def _handled(system, source: str) -> float:
    return system.metric_value(
        "webhooks", "comptoir_events_handled_total", handler=f"webhooks.on_{source}_event"
    )


def _settled(system, observer: Observer, source: str) -> float:
    """The handled count once the service's queue of ``source`` is empty and the count still for half a second."""
    deadline = time.monotonic() + 30
    while True:
        count = _handled(system, source)
        time.sleep(0.5)
        if observer.webhooks_queue_depth(source) == 0 and _handled(system, source) == count:
            return count
        assert time.monotonic() < deadline, "the webhooks queue does not settle"


def _assert_not_received(system, observer: Observer, source: str, handled_before: float) -> None:
    time.sleep(
        1.0
    )  # the event is routed (the observer has it): a bound queue would have had it consumed by now
    assert observer.webhooks_queue_depth(source) == 0
    assert _handled(system, source) == handled_before


def test_the_service_receives_only_the_events_a_subscription_wants(system, people, receiver, subscribe):
    admin = people["admin"]["headers"]
    with system.client() as http:
        for leftover in http.get("/api/v1/webhooks", headers=admin).json():
            http.delete(f"/api/v1/webhooks/{leftover['id']}", headers=admin)
    tickets, auth = Observer(system.amqp_uri, "tickets.events"), Observer(system.amqp_uri, "auth.events")
    try:
        # No subscription: a ticket's events are routed, but not to the webhooks service.
        handled = _settled(system, tickets, "tickets")
        ticket_id = _create_ticket(system, people, "Webhook sans abonnement")
        tickets.wait_for(lambda e: e["type"] == "ticket.created" and e["data"]["ticket"]["id"] == ticket_id)
        _assert_not_received(system, tickets, "tickets", handled)

        # ticket.*: ticket events are delivered, an auth event is not even consumed.
        subscription = subscribe(receiver.url, ["ticket.*"])
        ticket_id = _create_ticket(system, people, "Webhook abonné")
        receiver.wait_for(_for_ticket("ticket.created", ticket_id))
        handled_auth = _settled(system, auth, "auth")
        email = f"webhooks.bindings.{uuid.uuid4().hex[:6]}@example.fr"
        system.create_user(email, "agent")
        auth.wait_for(lambda e: e["type"] == "user.created" and e["data"].get("email") == email)
        _assert_not_received(system, auth, "auth", handled_auth)

        # Deleted: the binding goes with it.
        with system.client() as http:
            assert http.delete(f"/api/v1/webhooks/{subscription['id']}", headers=admin).status_code == 200
        handled = _settled(system, tickets, "tickets")
        ticket_id = _create_ticket(system, people, "Webhook désabonné")
        tickets.wait_for(lambda e: e["type"] == "ticket.created" and e["data"]["ticket"]["id"] == ticket_id)
        _assert_not_received(system, tickets, "tickets", handled)
    finally:
        tickets.close()
        auth.close()


def test_events_reach_the_receiver_signed(system, people, receiver, subscribe):
    subscription = subscribe(receiver.url, ["ticket.*"])
    secret = subscription["secret"]
    ticket_id = _create_ticket(system, people, "Webhook signé")
    request = receiver.wait_for(_for_ticket("ticket.created", ticket_id))
    # The receiver of docs/webhooks.md (examples/webhook_receiver.py) accepts it; another secret or a stale
    # timestamp is refused.
    headers = {"X-Comptoir-Timestamp": request.headers["x-comptoir-timestamp"],
               "X-Comptoir-Signature": request.headers["x-comptoir-signature"]}  # fmt: skip
    assert example.verify(secret, headers, request.body)
    assert not example.verify("whsec_autre", headers, request.body)
    assert not example.verify(secret, headers, request.body + b" ")
    assert not example.verify(secret, headers, request.body, now=int(headers["X-Comptoir-Timestamp"]) + 3600)
    assert request.headers["x-comptoir-event-id"] == request.json["id"]
    assert request.headers["x-comptoir-event-type"] == "ticket.created"
    assert request.json["data"]["ticket"]["title"] == "Webhook signé"


def _republish(amqp_uri: str, envelope: dict) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.basic_publish(
            "tickets.events",
            envelope["type"],
            json.dumps(envelope).encode(),
            pika.BasicProperties(
                content_type="application/json",
                delivery_mode=2,
                message_id=envelope["id"],
                headers={
                    "comptoir-event-type": envelope["type"],
                    "comptoir-event-version": envelope["version"],
                },
            ),
        )
    finally:
        connection.close()


def test_an_event_delivered_twice_on_the_bus_reaches_the_receiver_once(system, people, receiver, subscribe):
    subscription = subscribe(receiver.url, ["ticket.created"])
    ticket_id = _create_ticket(system, people, "Webhook en double")
    first = receiver.wait_for(_for_ticket("ticket.created", ticket_id))
    duplicates = system.metric_value(
        "webhooks", "comptoir_events_handled_total", handler="webhooks.on_tickets_event", outcome="duplicate"
    )
    _republish(system.amqp_uri, first.json)  # as a relay crash between publish and mark would
    deadline = time.monotonic() + 30
    while (
        system.metric_value(
            "webhooks",
            "comptoir_events_handled_total",
            handler="webhooks.on_tickets_event",
            outcome="duplicate",
        )
        <= duplicates
    ):
        assert time.monotonic() < deadline, "the second copy was never consumed"
        time.sleep(0.1)
    # The second copy has been consumed and queued nothing: one delivery row, one request.
    rows = [d for d in _log(system, people, subscription["id"]) if d["event_id"] == first.json["id"]]
    assert len(rows) == 1 and rows[0]["status"] == "delivered"
    assert len(receiver.accepted(lambda r: r.json["id"] == first.json["id"])) == 1


def test_a_receiver_that_is_down_gets_the_event_when_it_comes_back(system, people, receiver, subscribe):
    subscription = subscribe(receiver.url, ["ticket.created"])
    receiver.stop()
    ticket_id = _create_ticket(system, people, "Webhook en panne")
    retried = _wait_for_delivery(
        system, people, subscription["id"], lambda d: d["attempts"] >= 2 and d["status"] == "pending"
    )
    assert retried["last_status_code"] is None and "Connection" in retried["last_error"]
    assert retried["next_attempt_at"]
    receiver.start()  # same port
    request = receiver.wait_for(_for_ticket("ticket.created", ticket_id), timeout=60)
    done = _wait_for_delivery(
        system,
        people,
        subscription["id"],
        lambda d: d["event_id"] == request.json["id"] and d["status"] == "delivered",
    )
    assert done["attempts"] >= 3 and done["last_status_code"] == 200
    assert len(receiver.accepted(lambda r: r.json["id"] == request.json["id"])) == 1


def test_a_permanent_refusal_is_recorded_and_replay_sends_it_again(system, people, receiver, subscribe):
    subscription = subscribe(receiver.url, ["ticket.created"])
    receiver.respond_with(410, b'{"error": "endpoint gone"}')
    admin = people["admin"]["headers"]
    with system.client() as http:
        queued = http.post(f"/api/v1/webhooks/{subscription['id']}/test", headers=admin)
        assert queued.status_code == 202, queued.text
        test_id = queued.json()["id"]
        failed = _wait_for_delivery(
            system, people, subscription["id"], lambda d: d["id"] == test_id and d["status"] == "failed"
        )
        assert (failed["attempts"], failed["last_status_code"]) == (1, 410)
        assert "endpoint gone" in failed["last_response_body"] and receiver.refused == 1

        receiver.respond_with(200, b"merci")
        replayed = http.post(f"/api/v1/webhooks/deliveries/{test_id}/replay", headers=admin)
        assert replayed.status_code == 202 and replayed.json()["status"] == "pending"
        request = receiver.wait_for(lambda r: r.headers["x-comptoir-delivery-id"] == test_id)
        assert request.json["type"] == "webhook.test"
        assert request.json["data"]["subscription_id"] == subscription["id"]
        done = _wait_for_delivery(
            system, people, subscription["id"], lambda d: d["id"] == test_id and d["status"] == "delivered"
        )
        assert (done["replays"], done["last_status_code"], done["last_response_body"]) == (1, 200, "merci")
        detail = http.get(f"/api/v1/webhooks/deliveries/{test_id}", headers=admin).json()
        assert json.loads(detail["body"]) == request.json


def test_one_instance_sends_several_deliveries_at_once(system, people, receiver, subscribe):
    """A receiver that answers only once two requests are in flight: sequential sending would never get there."""
    subscription = subscribe(receiver.url, ["wiki.*"])
    receiver.gather = 2
    with system.client() as http:
        queued = {
            http.post(
                f"/api/v1/webhooks/{subscription['id']}/test", headers=people["admin"]["headers"]
            ).json()["id"]
            for _ in range(3)
        }
    for delivery_id in queued:
        receiver.wait_for(lambda r, d=delivery_id: r.headers["x-comptoir-delivery-id"] == d, timeout=60)
    assert receiver.peak_in_flight >= 2


def test_admin_pages_create_test_and_replay(system, people, receiver):
    with system.client() as web:
        csrf = form_login(web, people["admin"]["email"], people["admin"]["password"])
        assert "Nouvel abonnement" in web.get("/admin/webhooks").text
        refused = web.post("/admin/webhooks", data={"name": "CRM", "url": "ftp://x", "event_types": "ticket.*",
                                                     "active": "1", "csrf_token": csrf})  # fmt: skip
        assert refused.status_code == 422 and "https://" in refused.text
        forged = web.post("/admin/webhooks", data={"name": "CRM forgé", "url": receiver.url, "event_types": "ticket.*",
                                                    "active": "1", "csrf_token": "forged"})  # fmt: skip
        assert forged.status_code == 400 and "expiré" in forged.text and "CRM forgé" in forged.text
        created = web.post("/admin/webhooks", data={"name": "CRM page", "url": receiver.url,
                                                     "event_types": "ticket.created, wiki.*", "active": "1",
                                                     "csrf_token": csrf})  # fmt: skip
        assert created.status_code == 200
        secret = re.search(r'id="webhook-secret">(whsec_[^<]+)<', created.text).group(1)
        subscription_id = re.search(r'action="/admin/webhooks/([0-9a-f-]{36})/test"', created.text).group(1)
        page = web.get(f"/admin/webhooks/{subscription_id}")
        assert secret not in page.text  # shown once
        sent = web.post(f"/admin/webhooks/{subscription_id}/test", data={"csrf_token": csrf})
        assert sent.status_code == 200 and "événement de test est en file" in sent.text
        request = receiver.wait_for(lambda r: r.json["type"] == "webhook.test")
        assert example.verify(
            secret,
            {"X-Comptoir-Timestamp": request.headers["x-comptoir-timestamp"],
             "X-Comptoir-Signature": request.headers["x-comptoir-signature"]},
            request.body,
        )  # fmt: skip
        delivered = _wait_for_delivery(system, people, subscription_id, lambda d: d["status"] == "delivered")
        page = web.get(f"/admin/webhooks/{subscription_id}")
        assert "Livré" in page.text and delivered["event_id"] in page.text
        replay = web.post(
            f"/admin/webhooks/{subscription_id}/envois/{delivered['id']}/rejouer", data={"csrf_token": csrf}
        )
        assert replay.status_code == 200 and "remis en file" in replay.text
        deadline = time.monotonic() + 30
        while len(receiver.accepted(lambda r: r.headers["x-comptoir-delivery-id"] == delivered["id"])) < 2:
            assert time.monotonic() < deadline, "the replay was not sent"
            time.sleep(0.1)
        form = {
            "name": "CRM renommé",
            "url": receiver.url,
            "event_types": "ticket.inexistant",
            "csrf_token": csrf,
        }
        wrong = web.post(f"/admin/webhooks/{subscription_id}", data=form)
        assert wrong.status_code == 422 and "Type d&#39;événement inconnu" in wrong.text
        expired = web.post(f"/admin/webhooks/{subscription_id}", data=form | {"csrf_token": "périmé"})
        assert expired.status_code == 400 and "expiré" in expired.text and "CRM renommé" in expired.text
        for action in ("secret", "test", "supprimer", f"envois/{delivered['id']}/rejouer"):
            forged = web.post(f"/admin/webhooks/{subscription_id}/{action}", data={"csrf_token": "forged"})
            assert forged.status_code == 400 and "expiré" in forged.text, action
        saved = web.post(f"/admin/webhooks/{subscription_id}", data=form | {"event_types": "ticket.*"})
        assert saved.status_code == 200 and "modifications sont enregistrées" in saved.text
        current = web.get(f"/api/v1/webhooks/{subscription_id}", headers=people["admin"]["headers"]).json()
        assert (current["name"], current["event_types"], current["active"]) == (
            "CRM renommé",
            ["ticket.*"],
            False,
        )
        rotated = web.post(f"/admin/webhooks/{subscription_id}/secret", data={"csrf_token": csrf})
        new_secret = re.search(r'id="webhook-secret">(whsec_[^<]+)<', rotated.text).group(1)
        assert new_secret != secret
        deleted = web.post(f"/admin/webhooks/{subscription_id}/supprimer", data={"csrf_token": csrf})
        assert deleted.status_code == 200 and "supprimé" in deleted.text
        names = [s["name"] for s in web.get("/api/v1/webhooks", headers=people["admin"]["headers"]).json()]
        assert "CRM forgé" not in names


@pytest.mark.parametrize("role", ["agent", "client"])
def test_only_admins_reach_webhooks(system, people, receiver, subscribe, role):
    subscription = subscribe(receiver.url, ["ticket.*"])
    headers = people[role]["headers"]
    some_delivery = str(uuid.uuid4())
    with system.client() as http:
        for method, path, body in [
            ("GET", "/api/v1/webhooks", None),
            ("POST", "/api/v1/webhooks", {"name": "x", "url": receiver.url, "event_types": ["*"]}),
            ("GET", "/api/v1/webhooks/event-types", None),
            ("GET", f"/api/v1/webhooks/{subscription['id']}", None),
            ("PATCH", f"/api/v1/webhooks/{subscription['id']}", {"active": False}),
            ("DELETE", f"/api/v1/webhooks/{subscription['id']}", None),
            ("POST", f"/api/v1/webhooks/{subscription['id']}/rotate-secret", None),
            ("POST", f"/api/v1/webhooks/{subscription['id']}/test", None),
            ("GET", f"/api/v1/webhooks/{subscription['id']}/deliveries", None),
            ("GET", f"/api/v1/webhooks/deliveries/{some_delivery}", None),
            ("POST", f"/api/v1/webhooks/deliveries/{some_delivery}/replay", None),
        ]:
            response = http.request(method, path, json=body, headers=headers)
            assert response.status_code == 403, (method, path, response.status_code)
        assert http.get("/api/v1/webhooks").status_code == 401
    with system.client() as web:
        csrf = form_login(web, people[role]["email"], people[role]["password"])
        assert web.get("/admin/webhooks").status_code == 403
        assert web.get(f"/admin/webhooks/{subscription['id']}").status_code == 403
        assert (
            web.post(f"/admin/webhooks/{subscription['id']}/test", data={"csrf_token": csrf}).status_code
            == 403
        )
        assert "/admin/webhooks" not in web.get("/").text
    with system.client() as http:
        still = http.get(f"/api/v1/webhooks/{subscription['id']}", headers=people["admin"]["headers"])
        assert still.status_code == 200 and still.json()["active"] is True
        assert receiver.accepted(lambda r: r.json["type"] == "webhook.test") == []
