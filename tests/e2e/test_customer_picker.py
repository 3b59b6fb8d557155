"""The customer picker of the ticket pages over real processes (plain HTTP, no JavaScript): suggestions per role from
the customer directory, the typed text resolved by the server, and pages that no longer list every customer."""

from __future__ import annotations

import uuid

from tests.e2e.ticket_helpers import Person, directory_customer, web_login


def suggestions(system, person, query: str):
    with system.client() as http:
        web_login(http, person)
        response = http.get("/clients/recherche", params={"q": query}, headers={"Accept": "application/json"})
        return response.status_code, response.json()


def test_suggestions_follow_the_directory_rights(system):
    tag = uuid.uuid4().hex[:6]
    with system.client() as http:
        admin = Person(system, http, "admin")
        agent = Person(system, http, "agent")
        rep = Person(system, http, "sales")
        client = Person(system, http, "client", customer_id=str(uuid.uuid4()))
        reseller = Person(system, http, "reseller", customer_id=str(uuid.uuid4()))
        north = directory_customer(
            http,
            admin,
            f"Quincaillerie {tag} Nord",
            sales_rep=rep,
            account_number=f"411Q{tag}",
            addresses=[{"city": "Villeurbanne"}],
        )
        south = directory_customer(http, admin, f"Quincaillerie {tag} Sud")

    for person in (admin, agent):
        status, body = suggestions(system, person, f"QUINCAILLÉRIE {tag}")
        assert status == 200
        assert [(c["id"], c["name"]) for c in body["items"]] == [
            (north, f"Quincaillerie {tag} Nord"),
            (south, f"Quincaillerie {tag} Sud"),
        ]
        assert body["items"][0]["detail"] == f"compte 411Q{tag} · Villeurbanne"
    status, body = suggestions(system, rep, f"quincaillerie {tag}")
    assert status == 200 and [c["id"] for c in body["items"]] == [north]
    for person in (client, reseller):
        status, body = suggestions(system, person, "quincaillerie")
        assert status == 403 and "annuaire" in body["detail"]
    with system.client() as http:
        assert http.get("/clients/recherche", params={"q": tag}).status_code == 401


def test_typed_customer_is_resolved_without_javascript(system):
    tag = uuid.uuid4().hex[:6]
    with system.client() as http:
        admin = Person(system, http, "admin")
        agent = Person(system, http, "agent")
        shop = directory_customer(http, admin, f"Pâtisserie {tag}", account_number=f"411P{tag}")
        annex = directory_customer(http, admin, f"Pâtisserie {tag} Annexe", addresses=[{"city": "Bron"}])

        csrf = web_login(http, agent)
        form = http.get("/tickets/new").text
        assert 'name="customer_name"' in form and 'name="customer_id"' in form
        assert f"Pâtisserie {tag}" not in form

        # Several customers contain the text: the form comes back, with the candidates and the text kept.
        ambiguous = http.post(
            "/tickets/new",
            data={
                "title": "Four en panne",
                "message": "Il ne chauffe plus.",
                "customer_name": tag,
                "csrf_token": csrf,
            },
        )
        assert ambiguous.status_code == 422
        assert "Plusieurs clients correspondent" in ambiguous.text and "Annexe (Bron)" in ambiguous.text
        assert f'value="{tag}"' in ambiguous.text and "Il ne chauffe plus." in ambiguous.text

        # The whole name (accents and case aside) designates one of them.
        created = http.post(
            "/tickets/new",
            data={
                "title": "Four en panne",
                "message": "Il ne chauffe plus.",
                "customer_name": f"PATISSERIE {tag}",
                "csrf_token": csrf,
            },
        )
        assert created.status_code == 200 and "a bien été enregistrée" in created.text
        ticket_id = str(created.url).split("?")[0].rsplit("/", 1)[1]
        ticket = http.get(f"/api/v1/tickets/{ticket_id}", headers=agent.headers).json()
        assert ticket["customer_id"] == shop

        # The ticket page shows its customer in the picker; a changed text replaces the id it was shown with.
        page = http.get(f"/tickets/{ticket_id}").text
        assert f'name="customer_name" value="Pâtisserie {tag}"' in page
        edited = http.post(
            f"/tickets/{ticket_id}/edit",
            data={
                "version": str(ticket["version"]),
                "customer_id": shop,
                "customer_label": f"Pâtisserie {tag}",
                "customer_name": f"{tag} annexe",
                "csrf_token": csrf,
            },
        )
        assert edited.status_code == 200 and "a rattaché le ticket au client" in edited.text
        ticket = http.get(f"/api/v1/tickets/{ticket_id}", headers=agent.headers).json()
        assert ticket["customer_id"] == annex
        unknown = http.post(
            f"/tickets/{ticket_id}/edit",
            data={
                "version": str(ticket["version"]),
                "customer_name": f"Nulle part {tag}",
                "csrf_token": csrf,
            },
        )
        assert (
            unknown.status_code == 422
            and f"Aucun client ne correspond à « Nulle part {tag} »" in unknown.text
        )

        # The dashboard filter: by typed text, or by a link carrying the id only (the name is looked up).
        for params in ({"customer_name": f"{tag} annexe"}, {"customer_id": annex}):
            dashboard = http.get("/", params=params).text
            assert f'name="customer_id" value="{annex}"' in dashboard
            assert f'name="customer_name" value="Pâtisserie {tag} Annexe"' in dashboard
            assert "Four en panne" in dashboard
        assert http.get("/", params={"customer_name": f"Pâtisserie {tag}"}).text.count("Four en panne") == 0
        unresolved = http.get("/", params={"customer_name": tag}).text
        assert "Plusieurs clients correspondent" in unresolved


def test_pages_do_not_list_the_customers_of_staff(system):
    tag = uuid.uuid4().hex[:6]
    with system.client() as http:
        admin = Person(system, http, "admin")
        reseller_company = directory_customer(http, admin, f"Revendeur {tag}")
        end_customer = directory_customer(
            http, admin, f"Client final {tag}", parent_customer_id=reseller_company
        )
        ticket = http.post(
            "/api/v1/tickets", json={"title": "t", "message": "m"}, headers=admin.headers
        ).json()
        web_login(http, admin)
        for path in ("/", "/tickets/new", f"/tickets/{ticket['id']}"):
            html = http.get(path).text
            assert f"Revendeur {tag}" not in html and 'class="customer-picker"' in html, path
            assert '<script src="/static/customer-picker.js"' in html, path
    # A reseller cannot search the directory: they keep the short list of their own end customers.
    with system.client() as http:
        reseller = Person(system, http, "reseller", customer_id=reseller_company)
        web_login(http, reseller)
        for path in ("/", "/tickets/new"):
            html = http.get(path).text
            assert f'<option value="{end_customer}"' in html and "customer-picker" not in html, path
