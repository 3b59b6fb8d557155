"""The wiki over real processes: visibility for every role through the API, the crm_sync read model fed by
contract-shaped events, conflicts, history, attachments, events, and the French pages."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import pika
import pytest
from comptoir_common.events import exchange_name

from tests.e2e.ticket_helpers import form_login

pytestmark = pytest.mark.e2e

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
)


def publish_crm_event(amqp_uri: str, event_type: str, data: dict) -> None:
    """Publish as the crm_sync service does (contract in docs/events.md)."""
    envelope = {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "version": 1,
        "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "actor": {"kind": "system", "id": None, "name": "crm_sync"},
        "data": data,
    }
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.exchange_declare(exchange_name("crm_sync"), exchange_type="topic", durable=True)
        channel.basic_publish(
            exchange_name("crm_sync"),
            event_type,
            json.dumps(envelope).encode(),
            pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id=envelope["id"]),
        )
    finally:
        connection.close()


def customer_upserted(customer_id: str, name: str, sales_rep_id: str | None) -> dict:
    return {
        "id": customer_id,
        "name": name,
        "source": "filemaker",
        "external_key": name.lower(),
        "account_number": "411" + customer_id[-4:],
        "addresses": [],
        "phone": None,
        "email_domains": [],
        "sales_rep_id": sales_rep_id,
        "parent_customer_id": None,
        "active": True,
        "extra": {},
    }


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout}s")


@pytest.fixture(scope="module")
def world(system):
    """Two customers, one person per role, and four pages (general, A internal, A shared, B shared)."""
    suffix = uuid.uuid4().hex[:6]
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    people = {
        "admin": ("admin", None),
        "agent": ("agent", None),
        "sales": ("sales", None),
        "other_sales": ("sales", None),
        "client_a": ("client", a),
        "reseller_a": ("reseller", a),
        "client_b": ("client", b),
    }
    users, headers = {}, {}
    with system.client() as http:
        for key, (role, customer_id) in people.items():
            email = f"{key}.{suffix}@wiki.example"
            users[key] = system.create_user(email, role, customer_id=customer_id, name=f"{key} {suffix}")
            headers[key] = system.login(http, email, users[key]["password"])
        publish_crm_event(
            system.amqp_uri,
            "customer.upserted",
            customer_upserted(a, f"Boulangerie {suffix}", users["sales"]["id"]),
        )
        publish_crm_event(
            system.amqp_uri,
            "customer.upserted",
            customer_upserted(b, f"Garage {suffix}", users["other_sales"]["id"]),
        )
        wait_until(
            lambda: any(
                c["id"] == a for c in http.get("/api/v1/wiki/customers", headers=headers["sales"]).json()
            ),
            what="customer.upserted applied to the wiki's read model",
        )

        def create(body: dict) -> dict:
            response = http.post("/api/v1/wiki/pages", json=body, headers=headers["agent"])
            assert response.status_code == 201, response.text
            return response.json()

        pages = {
            "general": create({"title": f"Astreinte {suffix}", "content": "Numéro d'astreinte interne"}),
            "a_internal": create({"title": "Accès VPN", "content": "Routeur imprimantes", "customer_id": a}),
            "a_shared": create(
                {
                    "title": "Guide",
                    "content": "Transférer un appel",
                    "customer_id": a,
                    "visible_to_customer": True,
                }
            ),
            "b_shared": create(
                {
                    "title": "Guide",
                    "content": "Garage imprimantes",
                    "customer_id": b,
                    "visible_to_customer": True,
                }
            ),
        }
    return {"a": a, "b": b, "users": users, "headers": headers, "pages": pages, "suffix": suffix}


EXPECTED = {
    "admin": {"general", "a_internal", "a_shared", "b_shared"},
    "agent": {"general", "a_internal", "a_shared", "b_shared"},
    "sales": {"general", "a_internal", "a_shared"},
    "other_sales": {"general", "b_shared"},
    "client_a": {"a_shared"},
    "reseller_a": {"a_shared"},
    "client_b": {"b_shared"},
}


@pytest.mark.parametrize("who", sorted(EXPECTED))
def test_each_role_sees_exactly_its_pages_through_the_api(system, world, who):
    headers = world["headers"][who]
    with system.client() as http:
        for key, page in world["pages"].items():
            response = http.get(f"/api/v1/wiki/pages/{page['id']}", headers=headers)
            assert response.status_code == (200 if key in EXPECTED[who] else 404), (key, response.text)
        found = http.get("/api/v1/wiki/pages", params={"limit": 200}, headers=headers).json()["items"]
        ours = {page["id"]: key for key, page in world["pages"].items()}
        assert {ours[item["id"]] for item in found if item["id"] in ours} == EXPECTED[who]


def test_search_is_french_full_text_and_filtered_by_customer(system, world):
    with system.client() as http:
        agent = world["headers"]["agent"]
        found = http.get("/api/v1/wiki/pages", params={"q": "imprimante"}, headers=agent).json()["items"]
        assert {world["pages"]["a_internal"]["id"], world["pages"]["b_shared"]["id"]} <= {
            i["id"] for i in found
        }
        only_b = http.get(
            "/api/v1/wiki/pages", params={"q": "imprimante", "customer_id": world["b"]}, headers=agent
        ).json()["items"]
        assert [item["id"] for item in only_b] == [world["pages"]["b_shared"]["id"]]
        client = http.get(
            "/api/v1/wiki/pages", params={"q": "imprimante"}, headers=world["headers"]["client_a"]
        )
        assert client.json()["items"] == []


def test_customers_and_readers_cannot_write(system, world):
    with system.client() as http:
        page = world["pages"]["a_shared"]
        for who in ("client_a", "reseller_a"):
            headers = world["headers"][who]
            refused = http.put(
                f"/api/v1/wiki/pages/{page['id']}", json={"base_revision": 1, "content": "x"}, headers=headers
            )
            assert refused.status_code == 403 and "modifier" in refused.json()["detail"]
            created = http.post(
                "/api/v1/wiki/pages", json={"title": "x", "customer_id": world["a"]}, headers=headers
            )
            assert created.status_code == 403
        other = http.put(
            f"/api/v1/wiki/pages/{world['pages']['a_internal']['id']}",
            json={"base_revision": 1, "content": "x"},
            headers=world["headers"]["other_sales"],
        )
        assert other.status_code == 404
        assert http.get("/api/v1/wiki/pages").status_code == 401


def test_conflicting_edits_get_409_with_a_merge_and_restore_works(system, world):
    with system.client() as http:
        agent, sales = world["headers"]["agent"], world["headers"]["sales"]
        body = {
            "title": f"Horaires {world['suffix']}",
            "content": "Lundi 9h\nMardi 9h\nMercredi 9h",
            "customer_id": world["a"],
        }
        page = http.post("/api/v1/wiki/pages", json=body, headers=agent).json()
        url = f"/api/v1/wiki/pages/{page['id']}"
        first = http.put(
            url, json={"base_revision": 1, "content": "Lundi 8h\nMardi 9h\nMercredi 9h"}, headers=agent
        )
        assert first.status_code == 200 and first.json()["revision"] == 2
        second = http.put(
            url, json={"base_revision": 1, "content": "Lundi 9h\nMardi 9h\nMercredi 10h"}, headers=sales
        )
        assert second.status_code == 409
        detail = second.json()["detail"]
        assert detail["current_revision"] == 2 and detail["merge"]["conflicts"] == 0
        assert detail["merge"]["text"] == "Lundi 8h\nMardi 9h\nMercredi 10h"
        assert http.get(url, headers=agent).json()["content"] == "Lundi 8h\nMardi 9h\nMercredi 9h"
        merged = http.put(url, json={"base_revision": 2, "content": detail["merge"]["text"]}, headers=sales)
        assert merged.status_code == 200 and merged.json()["revision"] == 3

        diff = http.get(f"{url}/diff", params={"from": 1, "to": 3}, headers=agent).json()
        assert (diff["content"]["added"], diff["content"]["removed"]) == (2, 2)
        history = http.get(f"{url}/revisions", headers=agent).json()["revisions"]
        assert [r["number"] for r in history] == [3, 2, 1]
        restored = http.post(f"{url}/restore", json={"revision": 1, "base_revision": 3}, headers=agent)
        assert restored.status_code == 200
        assert restored.json()["revision"] == 4 and restored.json()["content"] == body["content"]


def test_attachments_are_checked_by_content_and_follow_page_visibility(system, world):
    with system.client() as http:
        agent = world["headers"]["agent"]
        page_id = world["pages"]["a_shared"]["id"]
        uploaded = http.post(
            f"/api/v1/wiki/pages/{page_id}/attachments",
            files={"file": ("schema.bin", PNG, "text/html")},
            headers=agent,
        )
        assert uploaded.status_code == 201, uploaded.text
        attachment = uploaded.json()
        assert attachment["content_type"] == "image/png"
        fetched = http.get(attachment["url"], headers=world["headers"]["client_a"])
        assert fetched.status_code == 200 and fetched.content == PNG
        assert fetched.headers["content-type"] == "image/png"
        assert "sandbox" in fetched.headers["content-security-policy"]
        assert fetched.headers["x-content-type-options"] == "nosniff"
        assert http.get(attachment["url"], headers=world["headers"]["client_b"]).status_code == 404
        disguised = http.post(
            f"/api/v1/wiki/pages/{page_id}/attachments",
            files={"file": ("photo.png", b"<html><script>alert(1)</script></html>", "image/png")},
            headers=agent,
        )
        assert disguised.status_code == 422 and "non accepté" in disguised.json()["detail"]


def test_page_events_reach_an_outside_subscriber(system, world):
    connection = pika.BlockingConnection(pika.URLParameters(system.amqp_uri))
    try:
        channel = connection.channel()
        channel.exchange_declare(exchange_name("wiki"), exchange_type="topic", durable=True)
        queue = channel.queue_declare(queue="", exclusive=True).method.queue
        channel.queue_bind(queue, exchange_name("wiki"), routing_key="wiki.*")
        with system.client() as http:
            agent = world["headers"]["agent"]
            page = http.post(
                "/api/v1/wiki/pages",
                json={"title": f"Événements {world['suffix']}", "content": "v1"},
                headers=agent,
            ).json()
            http.put(
                f"/api/v1/wiki/pages/{page['id']}", json={"base_revision": 1, "content": "v2"}, headers=agent
            )
        received: list[dict] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(received) < 2:
            method, _properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                time.sleep(0.1)
                continue
            envelope = json.loads(body)
            if envelope["data"]["id"] == page["id"]:
                received.append(envelope)
        assert [e["type"] for e in received] == ["wiki.page_created", "wiki.page_updated"]
        assert received[1]["data"]["revision"] == 2 and received[1]["data"]["changes"] == {
            "content": {"changed": True}
        }
    finally:
        connection.close()


def web_login(system, http, who: str, world) -> str:
    """Sign in through the form as ``who``; returns the CSRF token for later forms."""
    user = world["users"][who]
    return form_login(http, user["email"], user["password"])


def test_ticket_links_open_the_customer_wiki_and_prefill_a_new_page(system, world):
    with system.client() as http:
        client_headers = world["headers"]["client_a"]
        ticket = http.post(
            "/api/v1/tickets",
            json={"title": "Imprimante bloquée", "message": "Bourrage papier."},
            headers=client_headers,
        ).json()
        web_login(system, http, "agent", world)
        wiki = http.get(f"/wiki/customers/{world['a']}")
        assert (
            wiki.status_code == 200
            and f"Boulangerie {world['suffix']}" in wiki.text
            and "Accès VPN" in wiki.text
        )
        new = http.get("/wiki/new", params={"customer_id": world["a"], "ticket": ticket["id"]})
        assert new.status_code == 200
        assert f"#{ticket['number']}" in new.text and f"/tickets/{ticket['id']}" in new.text
        assert 'value="Imprimante bloquée"' in new.text


def test_client_portal_shows_only_shared_pages(system, world):
    with system.client() as http:
        web_login(system, http, "client_a", world)
        home = http.get("/wiki")
        assert home.url.path == f"/wiki/customers/{world['a']}"
        assert "Guide" in home.text and "Accès VPN" not in home.text and "Nouvelle page" not in home.text
        assert http.get(f"/wiki/pages/{world['pages']['a_internal']['id']}").status_code == 404
        assert http.get(f"/wiki/customers/{world['b']}").status_code == 404
        # What a page said before it was shared stays internal: no history in the portal.
        assert http.get(f"/wiki/pages/{world['pages']['a_shared']['id']}/history").status_code == 403
        api = world["headers"]["client_a"]
        assert (
            http.get(
                f"/api/v1/wiki/pages/{world['pages']['a_shared']['id']}/revisions", headers=api
            ).status_code
            == 403
        )


def test_second_web_editor_is_shown_the_merge_view(system, world):
    with system.client() as first, system.client() as second:
        csrf_first = web_login(system, first, "agent", world)
        csrf_second = web_login(system, second, "admin", world)
        page = first.post(
            "/api/v1/wiki/pages",
            json={
                "title": f"Matériel {world['suffix']}",
                "content": "Switch 24 ports",
                "customer_id": world["a"],
            },
            headers=world["headers"]["agent"],
        ).json()
        form = {"title": page["title"], "base_revision": "1", "tags": "", "customer_id": world["a"]}
        saved = first.post(
            f"/wiki/pages/{page['id']}/edit",
            data=form | {"content": "Switch 48 ports", "csrf_token": csrf_first},
        )
        assert saved.status_code == 200 and "Page enregistrée" in saved.text
        clash = second.post(
            f"/wiki/pages/{page['id']}/edit",
            data=form | {"content": "Switch 16 ports", "csrf_token": csrf_second},
        )
        assert clash.status_code == 409
        assert (
            "Fusion proposée" in clash.text
            and "Votre version" in clash.text
            and "Switch 48 ports" in clash.text
        )
        assert 'name="base_revision" value="2"' in clash.text
        assert first.get(f"/api/v1/wiki/pages/{page['id']}", headers=world["headers"]["agent"]).json()[
            "content"
        ] == ("Switch 48 ports")


def test_wiki_forms_with_a_forged_token_are_refused_and_change_nothing(system, world):
    with system.client() as http:
        csrf = web_login(system, http, "agent", world)
        agent = world["headers"]["agent"]
        page = http.post(
            "/api/v1/wiki/pages",
            json={"title": f"Routeurs {world['suffix']}", "content": "Version 1", "customer_id": world["a"]},
            headers=agent,
        ).json()
        url = f"/wiki/pages/{page['id']}"
        form = {"title": page["title"], "base_revision": "1", "tags": "", "content": "Texte à garder"}
        edited = http.post(f"{url}/edit", data=form | {"csrf_token": "forged"})
        assert edited.status_code == 400 and "expiré" in edited.text and "Texte à garder" in edited.text
        created = http.post(
            "/wiki/new",
            data={"title": f"Brouillon {world['suffix']}", "customer_id": world["a"], "csrf_token": "forged"},
        )
        assert created.status_code == 400 and "expiré" in created.text and "Brouillon" in created.text
        restored = http.post(
            f"{url}/restore",
            data={"revision": "1", "base_revision": "1", "csrf_token": "forged"},
            headers={"Accept": "text/html"},
        )
        assert restored.status_code == 400 and "expiré" in restored.text
        as_script = {"Accept": "application/json"}
        preview = http.post(
            "/wiki/preview", data={"content": "**gras**", "csrf_token": "x"}, headers=as_script
        )
        assert preview.status_code == 400 and "expiré" in preview.json()["detail"]
        pasted = http.post(
            f"{url}/attachments",
            data={"csrf_token": "forged"},
            files={"file": ("image.png", PNG, "image/png")},
            headers=as_script,
        )
        assert pasted.status_code == 400 and "expiré" in pasted.json()["detail"]
        current = http.get(f"/api/v1/wiki/pages/{page['id']}", headers=agent).json()
        assert (current["revision"], current["content"]) == (1, "Version 1")
        assert "image.png" not in http.get(url).text
        drafts = http.get("/api/v1/wiki/pages", params={"q": "brouillon"}, headers=agent).json()["items"]
        assert f"Brouillon {world['suffix']}" not in [item["title"] for item in drafts]

        # With the real token, the refusals still reach the script (its JSON) or the error page.
        preview = http.post(
            "/wiki/preview", data={"content": "**gras**", "csrf_token": csrf}, headers=as_script
        )
        assert preview.status_code == 200 and "<strong>gras</strong>" in preview.json()["html"]
        disguised = http.post(
            f"{url}/attachments",
            data={"csrf_token": csrf},
            files={"file": ("photo.png", b"<html></html>", "image/png")},
            headers=as_script,
        )
        assert disguised.status_code == 422 and "non accepté" in disguised.json()["detail"]
        stale = http.post(f"{url}/restore", data={"revision": "1", "base_revision": "7", "csrf_token": csrf})
        assert stale.status_code == 409


def test_sales_rep_access_follows_the_real_customer_directory(system, world):
    """Through crm_sync itself: a customer created with a sales rep, then handed to another one."""
    suffix = uuid.uuid4().hex[:6]
    with system.client() as http:
        admin, agent = world["headers"]["admin"], world["headers"]["agent"]
        first, second = world["users"]["sales"], world["users"]["other_sales"]
        created: dict = {}

        def create_customer() -> bool:
            # crm_sync learns of the sales rep from auth's user.created: refused (422) until then.
            response = http.post(
                "/api/v1/customers",
                json={"name": f"Pharmacie {suffix}", "sales_rep_id": first["id"]},
                headers=admin,
            )
            assert response.status_code in (201, 422), response.text
            created["response"] = response
            return response.status_code == 201

        wait_until(create_customer, what="customer created in crm_sync")
        created = created["response"]
        customer_id = created.json()["id"]
        page = http.post(
            "/api/v1/wiki/pages",
            json={"title": "Accès", "content": "x", "customer_id": customer_id},
            headers=agent,
        ).json()
        url = f"/api/v1/wiki/pages/{page['id']}"
        wait_until(
            lambda: http.get(url, headers=world["headers"]["sales"]).status_code == 200, what="rep sees page"
        )
        assert http.get(url, headers=world["headers"]["other_sales"]).status_code == 404
        found = http.get("/api/v1/wiki/customers", params={"q": f"pharmacie {suffix}"}, headers=agent).json()
        assert [(c["id"], c["name"]) for c in found] == [(customer_id, f"Pharmacie {suffix}")]

        moved = http.put(
            f"/api/v1/customers/{customer_id}/sales-rep", json={"sales_rep_id": second["id"]}, headers=admin
        )
        assert moved.status_code == 200, moved.text
        wait_until(
            lambda: http.get(url, headers=world["headers"]["other_sales"]).status_code == 200,
            what="new rep sees page",
        )
        assert http.get(url, headers=world["headers"]["sales"]).status_code == 404
