"""Ticket creation is idempotent over real processes: API retries with ``Idempotency-Key``, a form submitted twice,
and the same RPC delivered twice (what RabbitMQ does when the tickets process dies between commit and reply)."""

from __future__ import annotations

import asyncio
import re
import uuid
from concurrent.futures import ThreadPoolExecutor

from comptoir_common.rpc_client import RpcClient

from tests.e2e.ticket_helpers import Person


def _titles(http, person, title: str) -> list[str]:
    page = http.get("/api/v1/tickets", params={"q": title, "limit": 200}, headers=person.headers).json()
    return [t["id"] for t in page["items"] if t["title"] == title]


def test_api_retry_with_the_same_key_returns_the_first_ticket(system):
    customer = str(uuid.uuid4())
    with system.client() as http:
        claire = Person(system, http, "client", customer_id=customer)
        paul = Person(system, http, "client", customer_id=customer)
        title = f"Fax muet {uuid.uuid4().hex[:6]}"
        body = {"title": title, "message": "Plus de tonalité"}
        key = {"Idempotency-Key": str(uuid.uuid4())}
        first = http.post("/api/v1/tickets", json=body, headers=claire.headers | key)
        again = http.post("/api/v1/tickets", json=body, headers=claire.headers | key)
        assert first.status_code == 201 and again.status_code == 201
        assert again.json()["id"] == first.json()["id"] and again.json()["number"] == first.json()["number"]
        assert [m["body"] for m in again.json()["messages"]] == ["Plus de tonalité"]
        assert _titles(http, claire, title) == [first.json()["id"]]

        # The same key from someone else is theirs: a ticket of their own, not Claire's.
        other = http.post("/api/v1/tickets", json=body, headers=paul.headers | key)
        assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
        assert other.json()["requester"]["id"] == paul.id

        # The same key with another request is refused, in French.
        reused = http.post(
            "/api/v1/tickets", json={"title": "Autre", "message": "x"}, headers=claire.headers | key
        )
        assert reused.status_code == 409 and "clé d'idempotence" in reused.json()["detail"]

        # Without a key every request is a new ticket.
        plain = [
            http.post("/api/v1/tickets", json=body, headers=claire.headers).json()["id"] for _ in range(2)
        ]
        assert plain[0] != plain[1]


def test_form_submitted_twice_makes_one_ticket(system):
    with system.client() as http:
        client = Person(system, http, "client", customer_id=str(uuid.uuid4()))
        page = http.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        http.post("/login", data={"email": client.email, "password": client.password, "csrf_token": csrf})
        form = http.get("/tickets/new").text
        token = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', form).group(1)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        title = f"Double clic {uuid.uuid4().hex[:6]}"
        data = {"title": title, "message": "Bonjour", "csrf_token": csrf, "idempotency_key": token}
        first = http.post("/tickets/new", data=data, follow_redirects=False)
        second = http.post("/tickets/new", data=data, follow_redirects=False)
        assert first.status_code == second.status_code == 303
        assert first.headers["location"] == second.headers["location"]
        assert len(_titles(http, client, title)) == 1
        # A new form is a new token.
        assert token not in http.get("/tickets/new").text


def test_redelivered_rpc_creates_one_ticket(system):
    """RabbitMQ redelivers an RPC whose consumer died before acknowledging it (nameko acks after the reply): the
    second delivery carries the same arguments, hence the same key, and answers the first ticket."""
    customer = str(uuid.uuid4())
    with system.client() as http:
        client = Person(system, http, "client", customer_id=customer)
    actor = {"id": client.id, "role": "client", "customer_id": customer, "name": "C", "email": client.email}
    arguments = {
        "actor": actor,
        "title": "Redélivré",
        "message": "Bonjour",
        "source": "api",
        "idempotency_key": uuid.uuid4().hex,
    }

    async def deliver_twice() -> list[dict]:
        rpc = RpcClient(system.amqp_uri, name="test-redelivery")
        await rpc.connect()
        try:
            return [await rpc.call("tickets", "create_ticket", **arguments) for _ in range(2)]
        finally:
            await rpc.close()

    # In a thread of its own: the suite may already run an event loop in this one.
    with ThreadPoolExecutor(1) as executor:
        first, second = executor.submit(asyncio.run, deliver_twice()).result(timeout=120)
    assert first["id"] == second["id"] and first["number"] == second["number"]
    with system.client() as http:
        assert _titles(http, client, "Redélivré") == [first["id"]]
