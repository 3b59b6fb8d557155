"""The customer directory end to end: the API per role, events on the bus for outside subscribers, and a
FileMaker change reaching the directory through a running crm_sync instance."""

from __future__ import annotations

import json
import time
import uuid

import pika
from comptoir_common.events import exchange_name

DEMO_CUSTOMER_ID = "00000000-0000-4000-8000-00000000c001"


def _subscribe(amqp_uri: str, pattern: str):
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    channel = connection.channel()
    channel.exchange_declare(exchange_name("crm_sync"), exchange_type="topic", durable=True)
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(queue, exchange_name("crm_sync"), routing_key=pattern)
    return connection, channel, queue


_BUFFERS: dict[int, list[dict]] = {}


def _wait_event(channel, queue, predicate, timeout=20.0) -> dict:
    """The first event matching ``predicate``; the others are kept for later waits."""
    buffer = _BUFFERS.setdefault(id(channel), [])
    deadline = time.monotonic() + timeout
    while True:
        for envelope in buffer:
            if predicate(envelope):
                buffer.remove(envelope)
                return envelope
        if time.monotonic() > deadline:
            raise AssertionError("event not received in time")
        method, _properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            time.sleep(0.1)
        else:
            buffer.append(json.loads(body))


def _eventually(fn, timeout=30.0, interval=0.3):
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def _people(system):
    tag = uuid.uuid4().hex[:6]
    made = {}
    for role in ("admin", "agent", "sales", "client"):
        user = system.create_user(
            f"{role}.{tag}@a6telecom.example",
            role,
            name=f"{role.title()} {tag}",
            customer_id=DEMO_CUSTOMER_ID if role == "client" else None,
        )
        made[role] = user
    return made


def test_directory_api_per_role_and_events_on_the_bus(system):
    people = _people(system)
    connection, channel, queue = _subscribe(system.amqp_uri, "#")
    try:
        with system.client() as http:
            h = {role: system.login(http, p["email"], p["password"]) for role, p in people.items()}
            body = {
                "name": "Imprimerie Lumière",
                "phone": "04 72 11 22 33",
                "contacts": [
                    {"name": "Léa Lumière", "emails": ["Lea@Imprimerie-Lumiere.fr"], "role": "Gérante"}
                ],
            }
            assert http.post("/api/v1/customers", json=body, headers=h["agent"]).status_code == 403
            assert http.post("/api/v1/customers", json={"name": ""}, headers=h["admin"]).status_code == 422
            created = http.post("/api/v1/customers", json=body, headers=h["admin"])
            assert created.status_code == 201, created.text
            customer = created.json()
            assert customer["source"] == "manual" and customer["email_domains"] == ["imprimerie-lumiere.fr"]

            upserted = _wait_event(
                channel,
                queue,
                lambda e: e["type"] == "customer.upserted" and e["data"]["id"] == customer["id"],
            )
            assert upserted["data"]["name"] == "Imprimerie Lumière" and upserted["actor"]["kind"] == "user"
            contact = _wait_event(
                channel,
                queue,
                lambda e: e["type"] == "contact.upserted" and e["data"]["customer_id"] == customer["id"],
            )
            assert contact["data"]["emails"] == ["lea@imprimerie-lumiere.fr"]

            listing = http.get("/api/v1/customers", params={"search": "lumiere"}, headers=h["agent"])
            assert [c["id"] for c in listing.json()["items"]] == [customer["id"]]
            assert http.get("/api/v1/customers", headers=h["client"]).status_code == 403
            assert http.get(f"/api/v1/customers/{customer['id']}", headers=h["client"]).status_code == 404
            assert http.get(f"/api/v1/customers/{customer['id']}", headers=h["sales"]).status_code == 404

            # The sales rep is known to crm_sync once auth's user.created has arrived.
            rep_id = people["sales"]["id"]
            _eventually(
                lambda: (
                    http.put(
                        f"/api/v1/customers/{customer['id']}/sales-rep",
                        json={"sales_rep_id": rep_id},
                        headers=h["admin"],
                    ).status_code
                    == 200
                )
            )
            seen = http.get(f"/api/v1/customers/{customer['id']}", headers=h["sales"])
            assert seen.status_code == 200 and seen.json()["sales_rep"]["id"] == rep_id
            assert [c["id"] for c in http.get("/api/v1/customers", headers=h["sales"]).json()["items"]] == [
                customer["id"]
            ]

            deactivated = http.post(f"/api/v1/customers/{customer['id']}/deactivate", headers=h["admin"])
            assert deactivated.status_code == 200 and deactivated.json()["active"] is False
            _wait_event(
                channel,
                queue,
                lambda e: e["type"] == "customer.deactivated" and e["data"] == {"id": customer["id"]},
            )
            assert http.get("/api/v1/customers/sync/status", headers=h["agent"]).status_code == 403
            status = http.get("/api/v1/customers/sync/status", headers=h["admin"])
            assert status.status_code == 200 and status.json()["filemaker"]["configured"] is False
    finally:
        connection.close()


def test_a_filemaker_change_reaches_the_directory_within_seconds(system):
    from comptoir_testing.fake_filemaker import FakeFileMaker, add_clients_layout

    fake = FakeFileMaker()
    add_clients_layout(fake)
    fake.start()
    key = f"FM-{uuid.uuid4().hex[:8]}"
    record_id = fake.create("Clients", {"ID_Client": key, "RaisonSociale": "Transports Rapides"})
    people = _people(system)
    saved_env = dict(system.extra_env)
    system.extra_env |= {
        "CRM_SYNC_FILEMAKER_URL": fake.url,
        "CRM_SYNC_FILEMAKER_USER": fake.user,
        "CRM_SYNC_FILEMAKER_PASSWORD": fake.password,
        "CRM_SYNC_FILEMAKER_DATABASE": fake.database,
        "CRM_SYNC_FILEMAKER_VERIFY_SSL": fake.ca_path,
        "CRM_SYNC_SYNC_INTERVAL": "1",
    }
    instance = system.start_service("crm_sync", instance="crm_sync-filemaker")
    system.extra_env = saved_env
    connection, channel, queue = _subscribe(system.amqp_uri, "customer.*")
    try:
        system.wait_healthy([instance])
        with system.client() as http:
            admin = system.login(http, people["admin"]["email"], people["admin"]["password"])

            def lookup():
                items = http.get("/api/v1/customers", params={"search": key}, headers=admin).json()["items"]
                return items[0] if items else None

            customer = _eventually(lookup)
            assert customer["name"] == "Transports Rapides" and customer["source"] == "filemaker"
            fake.update("Clients", record_id, {"RaisonSociale": "Transports Très Rapides"})
            event = _wait_event(
                channel,
                queue,
                lambda e: e["type"] == "customer.upserted" and e["data"]["name"] == "Transports Très Rapides",
            )
            assert event["data"]["external_key"] == key and event["actor"]["kind"] == "system"
            status = http.get("/api/v1/customers/sync/status", headers=admin).json()["filemaker"]
            assert status["configured"] is False or status["last_run_ok"] is True
    finally:
        connection.close()
        system.stop_process(instance)
        fake.stop()


QUADRA_EXPORT = (
    "\r\n".join(
        [
            "C411LUMIECafé Lumière                  LUMIERE" + " " * 52 + "41100000" + " " * 111 + "C",
            "M411LUMIEVE000281126" + " " * 20 + "Facture 1" + " " * 11 + "D+000000012000",
            "C401FOURNFournisseur                   " + " " * 7 + " " * 52 + "40100000" + " " * 111 + "F",
        ]
    )
    + "\r\n"
).encode("cp1252")


def test_admin_pages_and_quadra_upload_per_role(system):
    people = _people(system)
    with system.client() as http:
        h = {role: system.login(http, p["email"], p["password"]) for role, p in people.items()}
        assert http.get("/admin/customers", headers=h["client"]).status_code == 403
        assert http.get("/admin/customers/sync", headers=h["agent"]).status_code == 403
        assert http.get("/admin/customers", headers=h["sales"]).status_code == 200
        page = http.get("/admin/customers/sync", headers=h["admin"])
        assert page.status_code == 200 and "Quadra" in page.text
        csrf = http.cookies.get("comptoir_csrf")
        assert csrf

        def upload(headers):
            return http.post(
                "/admin/customers/import/quadra",
                headers=headers,
                data={"csrf_token": csrf},
                files={"file": ("export.txt", QUADRA_EXPORT, "text/plain")},
            )

        assert upload(h["agent"]).status_code == 403
        first = upload(h["admin"])
        assert first.status_code == 200 and "1 créés" in first.text, first.text[-2000:]
        second = upload(h["admin"])
        assert "0 créés, 0 mis à jour, 1 inchangés" in second.text
        bad = http.post(
            "/admin/customers/import/quadra",
            headers=h["admin"],
            data={"csrf_token": csrf},
            files={"file": ("photo.png", b"\x89PNG\r\n\x1a\n\x00\x00", "image/png")},
        )
        assert bad.status_code == 422 and "pas un export Quadra" in bad.text
        forged = http.post(
            "/admin/customers/import/quadra",
            headers=h["admin"],
            data={"csrf_token": "x"},
            files={"file": ("export.txt", QUADRA_EXPORT, "text/plain")},
        )
        assert forged.status_code == 400 and "expiré" in forged.text and "Quadra" in forged.text
        assert "créés" not in forged.text
        for path in ("/admin/customers/sync", f"/admin/customers/{uuid.uuid4()}/active"):
            refused = http.post(path, headers=h["admin"], data={"csrf_token": "x", "active": "0"})
            assert refused.status_code == 400 and "expiré" in refused.text, path

        listing = http.get(
            "/admin/customers", params={"q": "lumiere", "source": "quadra"}, headers=h["admin"]
        )
        assert "Café Lumière" in listing.text
        created = http.post(
            "/admin/customers/new",
            headers=h["admin"],
            data={
                "csrf_token": csrf,
                "name": "Atelier Vélo",
                "contacts": "Paul Roue ; paul@atelier-velo.fr ; ; Gérant",
            },
            follow_redirects=False,
        )
        assert created.status_code == 303
        customer_page = http.get(created.headers["location"], headers=h["admin"])
        assert customer_page.status_code == 200 and "paul@atelier-velo.fr" in customer_page.text
        refused = http.post("/admin/customers/new", headers=h["admin"], data={"csrf_token": csrf, "name": ""})
        assert refused.status_code == 422 and "obligatoire" in refused.text
