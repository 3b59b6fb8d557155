"""The first end-to-end slice over real processes: sign in, create a ticket, get the mail, see the event."""

from __future__ import annotations

import json
import re
import time
import uuid

import pika
from comptoir_common.events import exchange_name


def _subscribe(amqp_uri: str, event_type: str):
    """A plain pika subscriber, as an outside system would write it: its own queue bound to the event."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    channel = connection.channel()
    channel.exchange_declare(exchange_name("tickets"), exchange_type="topic", durable=True)
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(queue, exchange_name("tickets"), routing_key=event_type)
    return connection, channel, queue


def _next_event(channel, queue: str, predicate, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            time.sleep(0.1)
            continue
        envelope = json.loads(body)
        if predicate(envelope):
            return envelope | {"_properties": properties}
    raise AssertionError("event not received in time")


def test_ticket_created_through_gateway_reaches_smtp_and_outside_subscriber(system):
    customer_id = str(uuid.uuid4())
    email = f"claire.{uuid.uuid4().hex[:6]}@client.example"
    user = system.create_user(email, "client", customer_id=customer_id, name="Claire Martin")
    connection, channel, queue = _subscribe(system.amqp_uri, "ticket.created")
    try:
        with system.client() as http:
            headers = system.login(http, email, user["password"])
            me = http.get("/api/v1/me", headers=headers).json()
            assert me["email"] == email and me["role"] == "client"

            response = http.post(
                "/api/v1/tickets",
                json={"title": "Ligne coupée à l'agence de Lyon", "message": "Plus de tonalité depuis 9 h."},
                headers=headers,
            )
            assert response.status_code == 201, response.text
            ticket = response.json()
            assert ticket["status"] == "new" and ticket["customer_id"] == customer_id

        mail = system.smtp.wait_for(lambda m: m["To"] == email)
        assert f"[#{ticket['number']}]" in mail["Subject"]
        assert mail["Auto-Submitted"] == "auto-generated"
        assert "Ligne coupée" in mail.get_body(("plain",)).get_content()
        assert mail.get_body(("html",)) is not None

        envelope = _next_event(channel, queue, lambda e: e["data"]["id"] == ticket["id"])
        assert set(envelope) - {"_properties"} == {"id", "type", "version", "occurred_at", "actor", "data"}
        assert envelope["type"] == "ticket.created" and envelope["version"] == 1
        assert envelope["actor"] == {
            "kind": "user",
            "id": user["id"],
            "role": "client",
            "name": "Claire Martin",
        }
        assert envelope["data"]["number"] == ticket["number"]
        assert envelope["data"]["message"]["body"] == "Plus de tonalité depuis 9 h."
        assert envelope["_properties"].message_id == envelope["id"]
        assert envelope["_properties"].delivery_mode == 2
    finally:
        connection.close()


def test_web_sign_in_and_ticket_form(system):
    email = f"agent.{uuid.uuid4().hex[:6]}@a6telecom.example"
    user = system.create_user(email, "agent", name="Thomas Technicien")
    with system.client() as http:
        page = http.get("/", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")

        login_page = http.get("/login")
        assert "Connexion" in login_page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login_page.text).group(1)

        refused = http.post("/login", data={"email": email, "password": "mauvais", "csrf_token": csrf})
        assert refused.status_code == 401 and "incorrect" in refused.text

        signed_in = http.post(
            "/login",
            data={"email": email, "password": user["password"], "csrf_token": csrf},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303
        assert "httponly" in signed_in.headers["set-cookie"].lower()

        created = http.post(
            "/tickets/new",
            data={
                "title": "Standard téléphonique en panne",
                "message": "Le standard ne décroche plus.",
                "csrf_token": csrf,
            },
        )
        assert created.status_code == 200 and "a bien été enregistrée" in created.text
        assert "Standard téléphonique en panne" in http.get("/").text


def test_form_without_csrf_token_is_refused(system):
    email = f"agent.{uuid.uuid4().hex[:6]}@a6telecom.example"
    user = system.create_user(email, "agent")
    with system.client() as http:
        http.get("/login")
        response = http.post(
            "/login", data={"email": email, "password": user["password"], "csrf_token": "forged"}
        )
        assert response.status_code == 400 and "expiré" in response.text


def test_api_errors_are_clear(system):
    with system.client() as http:
        assert http.get("/api/v1/tickets").status_code == 401
        wrong = http.post("/api/v1/auth/login", json={"email": "personne@example.com", "password": "x"})
        assert wrong.status_code == 401
        assert wrong.json() == {"detail": "Adresse e-mail ou mot de passe incorrect."}
        email = f"client.{uuid.uuid4().hex[:6]}@client.example"
        user = system.create_user(email, "client", customer_id=str(uuid.uuid4()))
        headers = system.login(http, email, user["password"])
        empty = http.post("/api/v1/tickets", json={"title": "   ", "message": "x"}, headers=headers)
        assert empty.status_code == 422 and empty.json()["detail"] == "Le titre est obligatoire."
        missing = http.get(f"/api/v1/tickets/{uuid.uuid4()}", headers=headers)
        assert missing.status_code == 404


def test_client_cannot_read_another_companys_ticket(system):
    with system.client() as http:
        owner_email = f"a.{uuid.uuid4().hex[:6]}@one.example"
        owner = system.create_user(owner_email, "client", customer_id=str(uuid.uuid4()))
        other_email = f"b.{uuid.uuid4().hex[:6]}@two.example"
        other = system.create_user(other_email, "client", customer_id=str(uuid.uuid4()))
        owner_headers = system.login(http, owner_email, owner["password"])
        ticket = http.post(
            "/api/v1/tickets", json={"title": "Privé", "message": "Rien à voir"}, headers=owner_headers
        )
        other_headers = system.login(http, other_email, other["password"])
        assert http.get(f"/api/v1/tickets/{ticket.json()['id']}", headers=other_headers).status_code == 404
        listed = http.get("/api/v1/tickets", headers=other_headers).json()["items"]
        assert ticket.json()["id"] not in {t["id"] for t in listed}


def test_health_and_metrics(system):
    with system.client() as http:
        assert http.get("/healthz").json()["status"] == "ok"
        assert "comptoir_http_requests_total" in http.get("/metrics").text
        assert http.get("/docs").status_code == 200
        assert "/api/v1/tickets" in http.get("/api/v1/openapi.json").json()["paths"]
    import httpx

    for name in ("auth", "tickets", "notifier"):
        port = system.health_ports[name]
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health == {"service": name, "status": "ok", "checks": {"database": "ok", "amqp": "ok"}}
        assert (
            "comptoir_rpc_calls_total" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
            or name == "notifier"
        )
