"""The French ticket pages over real processes (plain HTTP): form by role, ticket page, conflicts, configuration."""

from __future__ import annotations

import re
import uuid

from tests.e2e.ticket_helpers import Person, customer_upserted, wait_until, web_login

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


def test_form_fields_follow_the_role(system):
    with system.client() as http:
        client = Person(system, http, "client", customer_id=str(uuid.uuid4()))
        web_login(http, client)
        form = http.get("/tickets/new").text
        assert 'name="title"' in form and 'name="type"' in form and 'name="files"' in form
        assert 'name="priority"' not in form and 'name="internal_note"' not in form
        assert 'name="assignees"' not in form and "Réponse prédéfinie" not in form
    with system.client() as http:
        admin = Person(system, http, "admin")
        web_login(http, admin)
        form = http.get("/tickets/new").text
        assert 'name="priority"' in form and 'name="internal_note"' in form and "Réponse prédéfinie" in form
        assert 'name="customer_id"' in form


def test_ticket_page_reply_over_limit_keeps_text_and_conflict_shows_fresh_state(system):
    with system.client() as http:
        agent = Person(system, http, "agent", name="Thomas Technicien")
        csrf = web_login(http, agent)
        created = http.post(
            "/tickets/new",
            data={
                "title": "Routeur HS",
                "message": "Le routeur clignote.",
                "priority": "high",
                "csrf_token": csrf,
            },
            files={"files": ("photo.png", PNG, "image/png")},
        )
        assert created.status_code == 200 and "a bien été enregistrée" in created.text
        ticket_url = str(created.url).split("?")[0]
        ticket_id = ticket_url.rsplit("/", 1)[1]
        assert "photo.png" in created.text and "?preview=true" in created.text
        preview = http.get(
            f"/api/v1/tickets/{ticket_id}/attachments/"
            + re.search(r"attachments/([0-9a-f-]{36})\?preview", created.text).group(1)
            + "?preview=true"
        )
        assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"

        admin = Person(system, http, "admin")
        http.put("/api/v1/config/tickets/attachment-limit", json={"bytes": 2048}, headers=admin.headers)
        try:
            over = http.post(
                f"{ticket_url}/reply",
                data={"body": "Texte important à ne pas perdre", "csrf_token": csrf},
                files={"files": ("gros.bin", b"\x00" * 4096, "application/octet-stream")},
            )
            assert over.status_code == 413
            assert "taille maximale" in over.text and "Texte important à ne pas perdre" in over.text
        finally:
            http.put(
                "/api/v1/config/tickets/attachment-limit",
                json={"bytes": 25 * 1024 * 1024},
                headers=admin.headers,
            )

        version = re.search(r'name="version" value="(\d+)"', http.get(ticket_url).text).group(1)
        http.patch(
            f"/api/v1/tickets/{ticket_id}",
            json={"version": int(version), "title": "Titre changé ailleurs"},
            headers=admin.headers,
        )
        conflict = http.post(
            f"{ticket_url}/edit", data={"version": version, "title": "Mon titre", "csrf_token": csrf}
        )
        assert conflict.status_code == 409
        assert "modifié par quelqu" in conflict.text and "Titre changé ailleurs" in conflict.text

        taken = http.post(f"{ticket_url}/take", data={"csrf_token": csrf})
        assert taken.status_code == 200 and "Thomas Technicien" in taken.text
        page = http.get(ticket_url).text
        assert "a modifié l&#39;assignation" in page or "a modifié l'assignation" in page


def test_admin_configures_statuses_and_canned_responses(system):
    with system.client() as http:
        admin = Person(system, http, "admin")
        csrf = web_login(http, admin)
        page = http.get("/admin/tickets")
        assert page.status_code == 200 and "Non traité" in page.text and "Urgente" in page.text
        label = f"Attente fournisseur {uuid.uuid4().hex[:4]}"
        added = http.post(
            "/admin/tickets/statuses/add", data={"label": label, "category": "pending", "csrf_token": csrf}
        )
        assert added.status_code == 200 and label in added.text
        config = http.get("/api/v1/config/tickets", headers=admin.headers).json()
        key = next(s["key"] for s in config["statuses"] if s["label"] == label)
        ticket = http.post(
            "/api/v1/tickets", json={"title": "t", "message": "m"}, headers=admin.headers
        ).json()
        http.patch(
            f"/api/v1/tickets/{ticket['id']}", json={"version": 1, "status": key}, headers=admin.headers
        )
        refused = http.post("/admin/tickets/statuses/remove", data={"key": key, "csrf_token": csrf})
        assert refused.status_code == 409 and "remplacement" in refused.text
        removed = http.post(
            "/admin/tickets/statuses/remove", data={"key": key, "replacement": "open", "csrf_token": csrf}
        )
        assert removed.status_code == 200
        moved = http.get(f"/api/v1/tickets/{ticket['id']}", headers=admin.headers).json()
        assert moved["status"] == "open" and moved["status_category"] == "open"
        canned = http.post(
            "/admin/tickets/canned_responses/add",
            data={
                "title": "Relance",
                "body": "Bonjour {client}, où en est le n° {numero} ? {agent}",
                "csrf_token": csrf,
            },
        )
        assert canned.status_code == 200 and "Relance" in canned.text
        not_admin = Person(system, http, "agent")
        assert http.get("/api/v1/config/tickets", headers=not_admin.headers).status_code == 403


def test_ticket_page_posts_with_a_forged_token_are_refused_on_the_page(system):
    with system.client() as http:
        agent = Person(system, http, "agent")
        csrf = web_login(http, agent)
        ticket = http.post(
            "/api/v1/tickets", json={"title": "Ligne coupée", "message": "m"}, headers=agent.headers
        ).json()
        ticket_url = f"/tickets/{ticket['id']}"
        reply = http.post(f"{ticket_url}/reply", data={"body": "Texte à garder", "csrf_token": "forged"})
        assert reply.status_code == 400 and "expiré" in reply.text and "Texte à garder" in reply.text
        for path, data in (
            ("edit", {"version": "1", "title": "Autre titre"}),
            ("status", {"version": "1", "status": "closed"}),
            ("take", {}),
        ):
            refused = http.post(f"{ticket_url}/{path}", data=data | {"csrf_token": "forged"})
            assert refused.status_code == 400 and "expiré" in refused.text and "Ligne coupée" in refused.text
        assert http.get(f"/api/v1/tickets/{ticket['id']}", headers=agent.headers).json()["version"] == 1

        admin = Person(system, http, "admin")
        csrf = web_login(http, admin)
        forged = http.post("/admin/tickets/attachment_limit/set", data={"megabytes": "5", "csrf_token": "x"})
        assert forged.status_code == 400 and "expiré" in forged.text
        malformed = http.post(
            "/admin/tickets/attachment_limit/set", data={"megabytes": "cinq", "csrf_token": csrf}
        )
        assert malformed.status_code == 422 and "Valeur numérique invalide." in malformed.text


def test_dashboard_filters_sort_and_views(system):
    with system.client() as http:
        agent = Person(system, http, "agent")
        rep = Person(system, http, "sales")
        customer = customer_upserted(
            system.amqp_uri, f"Pharmacie {uuid.uuid4().hex[:4]}", sales_rep_id=rep.id
        )
        wait_until(
            lambda: any(
                c["id"] == customer
                for c in http.get("/api/v1/tickets/options", headers=rep.headers).json()["customers"]
            ),
            what="customer read model",
        )
        word = uuid.uuid4().hex[:10]
        for i in range(3):
            http.post(
                "/api/v1/tickets",
                json={
                    "title": f"Incident {word} {i}",
                    "message": f"détails {i}",
                    "customer_id": customer,
                    "priority": "urgent" if i == 0 else "low",
                },
                headers=rep.headers,
            )
        by_number = http.get(
            "/api/v1/tickets", params={"q": word, "sort": "number", "limit": 2}, headers=agent.headers
        ).json()
        assert [t["title"][-1] for t in by_number["items"]] == ["0", "1"] and by_number["next_cursor"]
        rest = http.get(
            "/api/v1/tickets",
            params={"q": word, "sort": "number", "limit": 2, "cursor": by_number["next_cursor"]},
            headers=agent.headers,
        ).json()
        assert [t["title"][-1] for t in rest["items"]] == ["2"] and rest["next_cursor"] is None
        urgent = http.get(
            "/api/v1/tickets", params={"q": word, "priority": "urgent"}, headers=agent.headers
        ).json()["items"]
        assert len(urgent) == 1
        for column in (
            "updated_at",
            "created_at",
            "number",
            "title",
            "customer",
            "status",
            "assignees",
            "updated_by",
            "priority",
        ):
            for sort in (column, "-" + column):
                assert (
                    http.get(
                        "/api/v1/tickets",
                        params={"sort": sort, "customer_id": customer},
                        headers=agent.headers,
                    ).status_code
                    == 200
                )
        csrf = web_login(http, rep)
        assert csrf
        page = http.get("/", params={"q": word})
        assert (
            page.status_code == 200
            and f"Incident {word} 2" in page.text
            and "Nouvelles demandes" in page.text
        )
        assert http.get("/", params={"view": "unidentified"}).status_code == 200
        counts = http.get("/api/v1/dashboard", headers=rep.headers).json()
        assert counts["new"] >= 3
