"""The role × action matrix over the API: each role on a ticket of a customer it may and may not see.

Allowed actions succeed; the others get 403 (a forbidden action on a visible ticket) or 404 (an invisible ticket:
the same answer as for a ticket that does not exist). Internal notes never reach a client or reseller, by any path.
"""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.ticket_helpers import Person, customer_upserted, wait_until

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture(scope="module")
def world(system):
    """A reseller company R with end customer A (sales rep S), another company B, and people of each kind."""
    with system.client() as http:
        people = {}
        people["admin"] = Person(system, http, "admin")
        people["agent"] = Person(system, http, "agent", name="Thomas Technicien")
        people["sales_own"] = Person(system, http, "sales")
        people["sales_other"] = Person(system, http, "sales")
        reseller_company = customer_upserted(system.amqp_uri, "Revendeur R")
        customer_a = customer_upserted(
            system.amqp_uri,
            "Client A",
            sales_rep_id=people["sales_own"].id,
            parent_customer_id=reseller_company,
        )
        customer_b = customer_upserted(system.amqp_uri, "Client B", sales_rep_id=people["sales_other"].id)
        people["client_own"] = Person(system, http, "client", customer_id=customer_a)
        people["client_other"] = Person(system, http, "client", customer_id=customer_b)
        people["reseller_own"] = Person(system, http, "reseller", customer_id=reseller_company)
        people["reseller_other"] = Person(system, http, "reseller", customer_id=customer_b)

        def directory_ready() -> bool:
            options = http.get("/api/v1/tickets/options", headers=people["sales_own"].headers).json()
            return any(c["id"] == customer_a for c in options["customers"])

        wait_until(directory_ready, what="customer read model")
        return {"people": people, "customer_a": customer_a, "customer_b": customer_b}


def _ticket_of_a(system, world) -> dict:
    """A fresh ticket of customer A with a public attachment, an internal note and a note attachment."""
    people = world["people"]
    with system.client() as http:
        created = http.post(
            "/api/v1/tickets",
            json={"title": f"Panne {uuid.uuid4().hex[:6]}", "message": "Ligne coupée"},
            headers=people["client_own"].headers,
        )
        assert created.status_code == 201, created.text
        ticket = created.json()
        public = http.post(
            f"/api/v1/tickets/{ticket['id']}/messages",
            data={"body": "capture"},
            files={"files": ("capture.png", PNG, "image/png")},
            headers=people["client_own"].headers,
        )
        assert public.status_code == 201, public.text
        note = http.post(
            f"/api/v1/tickets/{ticket['id']}/messages",
            data={"body": "note secrète du support", "internal": "true"},
            files={"files": ("interne.txt", b"mot de passe du routeur", "text/plain")},
            headers=people["agent"].headers,
        )
        assert note.status_code == 201, note.text
        return {
            "ticket": ticket,
            "public_attachment": public.json()["attachments"][0]["id"],
            "note_attachment": note.json()["attachments"][0]["id"],
        }


SEES = {"admin", "agent", "sales_own", "client_own", "reseller_own"}
STAFF = {"admin", "agent", "sales_own"}
ROLES = [
    "admin",
    "agent",
    "sales_own",
    "sales_other",
    "client_own",
    "client_other",
    "reseller_own",
    "reseller_other",
]


@pytest.mark.parametrize("who", ROLES)
def test_role_action_matrix(system, world, who):
    case = _ticket_of_a(system, world)
    ticket_id = case["ticket"]["id"]
    person = world["people"][who]
    h = person.headers
    sees = who in SEES
    staff = who in STAFF
    hidden = 404
    with system.client() as http:
        # detail, list, search, history, dashboard
        detail = http.get(f"/api/v1/tickets/{ticket_id}", headers=h)
        assert detail.status_code == (200 if sees else hidden)
        listed = http.get("/api/v1/tickets", params={"limit": 200}, headers=h).json()["items"]
        assert (ticket_id in {t["id"] for t in listed}) == sees
        searched = http.get("/api/v1/tickets", params={"q": case["ticket"]["title"]}, headers=h).json()[
            "items"
        ]
        assert (ticket_id in {t["id"] for t in searched}) == sees
        note_search = http.get("/api/v1/tickets", params={"q": "secrète"}, headers=h).json()["items"]
        assert (ticket_id in {t["id"] for t in note_search}) == staff
        history = http.get(f"/api/v1/tickets/{ticket_id}/history", headers=h)
        assert history.status_code == (200 if sees else hidden)
        if sees:
            bodies = [m["body"] for m in detail.json()["messages"]]
            assert ("note secrète du support" in bodies) == staff
            assert any(e["internal"] for e in history.json()) == staff
        # attachments
        public = http.get(f"/api/v1/tickets/{ticket_id}/attachments/{case['public_attachment']}", headers=h)
        assert public.status_code == (200 if sees else hidden)
        if sees:
            assert public.content == PNG and public.headers["x-content-type-options"] == "nosniff"
            assert "sandbox" in public.headers["content-security-policy"]
        note_file = http.get(f"/api/v1/tickets/{ticket_id}/attachments/{case['note_attachment']}", headers=h)
        assert note_file.status_code == (200 if staff else hidden)
        if staff:
            assert note_file.headers["content-disposition"].startswith("attachment")
        # reply and internal note
        reply = http.post(f"/api/v1/tickets/{ticket_id}/messages", json={"body": "Bonjour"}, headers=h)
        assert reply.status_code == (201 if sees else hidden)
        note = http.post(
            f"/api/v1/tickets/{ticket_id}/messages", json={"body": "interne", "internal": True}, headers=h
        )
        assert note.status_code == (201 if staff else 403 if sees else hidden)
        # edit, take, close and reopen
        version = http.get(f"/api/v1/tickets/{ticket_id}", headers=world["people"]["admin"].headers).json()[
            "version"
        ]
        priority = http.patch(
            f"/api/v1/tickets/{ticket_id}", json={"version": version, "priority": "urgent"}, headers=h
        )
        assert priority.status_code == (200 if staff else 403 if sees else hidden)
        take = http.post(f"/api/v1/tickets/{ticket_id}/take", headers=h)
        assert take.status_code == (200 if who in ("admin", "agent") else 403 if sees else hidden)
        version = http.get(f"/api/v1/tickets/{ticket_id}", headers=world["people"]["admin"].headers).json()[
            "version"
        ]
        close = http.patch(
            f"/api/v1/tickets/{ticket_id}", json={"version": version, "status": "closed"}, headers=h
        )
        assert close.status_code == (200 if sees else hidden)
        if sees:
            reopen = http.patch(
                f"/api/v1/tickets/{ticket_id}", json={"version": version + 1, "status": "open"}, headers=h
            )
            assert reopen.status_code == 200, reopen.text
            assert reopen.json()["reopened_count"] == 1


def test_attach_unidentified_ticket_sales_only_to_own_customers(system, world):
    people = world["people"]
    with system.client() as http:
        created = http.post(
            "/api/v1/tickets",
            json={"title": "Mail d'un inconnu", "message": "?"},
            headers=people["agent"].headers,
        )
        assert created.status_code == 201 and created.json()["customer_id"] is None
        ticket = created.json()
        unidentified = http.get(
            "/api/v1/tickets", params={"view": "unidentified"}, headers=people["sales_own"].headers
        )
        assert ticket["id"] in {t["id"] for t in unidentified.json()["items"]}
        refused = http.patch(
            f"/api/v1/tickets/{ticket['id']}",
            json={"version": ticket["version"], "customer_id": world["customer_b"]},
            headers=people["sales_own"].headers,
        )
        assert refused.status_code == 403
        attached = http.patch(
            f"/api/v1/tickets/{ticket['id']}",
            json={"version": ticket["version"], "customer_id": world["customer_a"]},
            headers=people["sales_own"].headers,
        )
        assert attached.status_code == 200 and attached.json()["customer_name"] == "Client A"
        assert (
            http.get(f"/api/v1/tickets/{ticket['id']}", headers=people["client_own"].headers).status_code
            == 200
        )
        history = http.get(f"/api/v1/tickets/{ticket['id']}/history", headers=people["agent"].headers).json()
        assert history[-1]["action"] == "customer_attached" and history[-1]["new"] == world["customer_a"]


def test_conflicting_edits_get_409_with_fresh_state(system, world):
    people = world["people"]
    with system.client() as http:
        ticket = http.post(
            "/api/v1/tickets", json={"title": "Conflit", "message": "m"}, headers=people["agent"].headers
        ).json()
        first = http.patch(
            f"/api/v1/tickets/{ticket['id']}",
            json={"version": ticket["version"], "title": "Premier"},
            headers=people["agent"].headers,
        )
        assert first.status_code == 200
        second = http.patch(
            f"/api/v1/tickets/{ticket['id']}",
            json={"version": ticket["version"], "title": "Second"},
            headers=people["admin"].headers,
        )
        assert second.status_code == 409
        detail = second.json()["detail"]
        assert "modifié" in detail["message"] and detail["ticket"]["title"] == "Premier"


def test_attachment_over_the_limit_is_refused_and_text_kept(system, world):
    people = world["people"]
    admin = people["admin"].headers
    with system.client() as http:
        assert (
            http.put(
                "/api/v1/config/tickets/attachment-limit", json={"bytes": 64 * 1024}, headers=admin
            ).status_code
            == 200
        )
        try:
            ticket = http.post(
                "/api/v1/tickets", json={"title": "Gros fichier", "message": "m"}, headers=admin
            ).json()
            over = http.post(
                f"/api/v1/tickets/{ticket['id']}/messages",
                data={"body": "Voici le journal"},
                files={"files": ("journal.log", b"x" * (64 * 1024 + 1), "text/plain")},
                headers=admin,
            )
            assert over.status_code == 413
            assert "taille maximale" in over.json()["detail"]["message"]
            assert over.json()["detail"]["body"] == "Voici le journal"
            under = http.post(
                f"/api/v1/tickets/{ticket['id']}/messages",
                data={"body": "Voici le journal"},
                files={"files": ("journal.log", b"x" * (64 * 1024), "application/x-msdownload")},
                headers=admin,
            )
            assert under.status_code == 201
            assert under.json()["attachments"][0]["content_type"] == "text/plain"
        finally:
            http.put(
                "/api/v1/config/tickets/attachment-limit", json={"bytes": 25 * 1024 * 1024}, headers=admin
            )
