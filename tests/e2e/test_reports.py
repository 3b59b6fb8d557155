"""Reports over the real processes: figures fed by the tickets' events, visibility per role through the API, CSV
export, the reports page (its customer picker without JavaScript), and a rebuild from the tickets' replayed history
giving the same figures."""

from __future__ import annotations

import html
import re
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.ticket_helpers import Person, customer_upserted, directory_customer, wait_until, web_login

TODAY = datetime.now(ZoneInfo("Europe/Paris")).date().isoformat()


@pytest.fixture(scope="module")
def world(system):
    """Customers A (sales rep S) and B, with their clients; A gets two tickets (one answered and closed), B one."""
    with system.client() as http:
        people = {
            "admin": Person(system, http, "admin", name="Anne Superviseure"),
            "agent": Person(system, http, "agent", name="Thomas Technicien"),
            "sales": Person(system, http, "sales", name="Sophie Commerciale"),
        }
        customer_a = customer_upserted(system.amqp_uri, "Alpha SARL", sales_rep_id=people["sales"].id)
        customer_b = customer_upserted(system.amqp_uri, "Beta SAS")
        people["client_a"] = Person(system, http, "client", customer_id=customer_a, name="Claire Alpha")
        people["client_b"] = Person(system, http, "client", customer_id=customer_b, name="Charles Beta")

        def create(person: Person, title: str) -> dict:
            response = http.post(
                "/api/v1/tickets", json={"title": title, "message": "Bonjour"}, headers=person.headers
            )
            assert response.status_code == 201, response.text
            return response.json()

        first = create(people["client_a"], "Ligne coupée")
        create(people["client_a"], "Facture en double")
        create(people["client_b"], "Box en panne")
        reply = http.post(
            f"/api/v1/tickets/{first['id']}/messages",
            json={"body": "Nous regardons."},
            headers=people["agent"].headers,
        )
        assert reply.status_code == 201, reply.text
        current = http.get(f"/api/v1/tickets/{first['id']}", headers=people["agent"].headers).json()
        closed = http.patch(
            f"/api/v1/tickets/{first['id']}",
            json={"version": current["version"], "status": "closed"},
            headers=people["agent"].headers,
        )
        assert closed.status_code == 200, closed.text

        def summary_of(customer_id: str) -> dict:
            response = http.get(
                "/api/v1/reports/summary",
                params={"start": TODAY, "end": TODAY, "customer_id": customer_id},
                headers=people["admin"].headers,
            )
            assert response.status_code == 200, response.text
            return response.json()["rows"][0]

        wait_until(
            lambda: summary_of(customer_a)["closed"] == 1 and summary_of(customer_b)["created"] == 1,
            timeout=30,
            what="reports projection",
        )
        return {"people": people, "a": customer_a, "b": customer_b}


@pytest.fixture(scope="module")
def shops(system, world):
    """Two customers of the directory (crm_sync, which the picker searches), the North one the sales rep's, with a
    ticket each."""
    people = world["people"]
    # A letter first: a tag starting with digits could also match account numbers by prefix.
    tag = "f" + uuid.uuid4().hex[:5]
    with system.client() as http:
        north = directory_customer(
            http,
            people["admin"],
            f"Fromagerie {tag} Nord",
            sales_rep=people["sales"],
            account_number=f"411F{tag}",
            addresses=[{"city": "Annecy"}],
        )
        south = directory_customer(http, people["admin"], f"Fromagerie {tag} Sud")
        for customer in (north, south):
            created = http.post(
                "/api/v1/tickets",
                json={"title": f"Tomme {tag}", "message": "Croûte abîmée.", "customer_id": customer},
                headers=people["agent"].headers,
            )
            assert created.status_code == 201, created.text

        def projected() -> bool:
            return (
                _summary(http, people["admin"], customer_id=south)[1]["rows"][0]["created"] == 1
                and _summary(http, people["sales"], customer_id=north)[1]["rows"][0]["created"] == 1
            )

        wait_until(projected, timeout=30, what="reports projection of the directory customers")
    return {"tag": tag, "north": north, "south": south}


def _summary(http, person: Person, **params) -> tuple[int, dict]:
    response = http.get(
        "/api/v1/reports/summary", params={"start": TODAY, "end": TODAY, **params}, headers=person.headers
    )
    return response.status_code, response.json()


def test_figures_follow_the_ticket_events(system, world):
    with system.client() as http:
        status, body = _summary(http, world["people"]["agent"], customer_id=world["a"])
    assert status == 200
    row = body["rows"][0]
    assert (row["created"], row["closed"], row["open"]) == (2, 1, 1)
    assert row["mean_resolution_hours"] is not None


def test_each_role_sees_the_figures_it_may(system, world):
    people = world["people"]
    with system.client() as http:
        # Agents and admins: every customer.
        assert _summary(http, people["agent"], customer_id=world["b"])[1]["rows"][0]["created"] == 1
        # The sales rep: only Alpha, whatever the filter asks.
        assert _summary(http, people["sales"])[1]["rows"][0]["created"] == 2
        assert _summary(http, people["sales"], customer_id=world["b"])[1]["rows"][0]["created"] == 0
        # Clients: nothing, until an admin opens their company's summary.
        status, body = _summary(http, people["client_a"])
        assert status == 403 and "pas disponibles" in body["detail"]
        refused = http.put(
            f"/api/v1/reports/client-summaries/{world['a']}",
            json={"enabled": True},
            headers=people["agent"].headers,
        )
        assert refused.status_code == 403
        enabled = http.put(
            f"/api/v1/reports/client-summaries/{world['a']}",
            json={"enabled": True},
            headers=people["admin"].headers,
        )
        assert enabled.status_code == 200, enabled.text
        status, body = _summary(http, people["client_a"])
        assert status == 200 and body["rows"][0]["created"] == 2
        assert http.get("/api/v1/reports/agents", headers=people["client_a"].headers).status_code == 403
        assert _summary(http, people["client_b"])[0] == 403
        assert http.get("/api/v1/reports/summary").status_code == 401


def test_bad_filters_and_unknown_reports_answer_in_french(system, world):
    with system.client() as http:
        headers = world["people"]["admin"].headers
        bad = http.get("/api/v1/reports/summary", params={"start": "28/11/2026"}, headers=headers)
        assert bad.status_code == 422 and "Date invalide" in bad.json()["detail"]
        assert http.get("/api/v1/reports/meteo", headers=headers).status_code == 404


def test_csv_export_opens_in_french_excel(system, world):
    with system.client() as http:
        response = http.get(
            "/api/v1/reports/requests_per_user.csv",
            params={"start": TODAY, "end": TODAY, "customer_id": world["a"]},
            headers=world["people"]["admin"].headers,
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith("\ufeff".encode())
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "Demandeur;Adresse;Client;Demandes"
    assert any(line.startswith("Claire Alpha;") and line.endswith(";Alpha SARL;2") for line in lines)


def test_reports_page_shows_chart_table_and_filters(system, world):
    admin = world["people"]["admin"]
    with system.client() as http:
        login = http.post(
            "/login",
            data={"email": admin.email, "password": admin.password, "csrf_token": "t", "next": "/rapports"},
            cookies={"comptoir_csrf": "t"},
        )
        assert login.status_code == 200, login.text
        page = http.get("/rapports", params={"report": "top_customers", "start": TODAY, "end": TODAY})
        assert page.status_code == 200
        html = page.text
        assert "Clients les plus demandeurs" in html and "<svg" in html and "Alpha SARL" in html
        assert "Exporter (CSV Excel)" in html
        # Staff search the directory: a picker, not a list of every customer.
        assert 'class="customer-picker"' in html and 'name="customer_id" value=""' in html
        assert f'<option value="{world["a"]}"' not in html and "/static/customer-picker.js" in html
        volume = http.get("/rapports", params={"report": "volume", "granularity": "week"})
        assert volume.status_code == 200 and "<polyline" in volume.text


def _page_state(page: str) -> dict:
    """What a reports page's picker holds and where its links lead (entities decoded)."""
    text = html.unescape(page)
    return {
        "customer_id": re.search(r'name="customer_id" value="([^"]*)"', text).group(1),
        "customer_name": re.search(r'name="customer_name" value="([^"]*)"', text).group(1),
        "exports": re.findall(r'href="(/api/v1/reports/[^"]+\.csv\?[^"]*)"', text),
        "summary_link": re.search(r'href="(/rapports\?report=summary&[^"]*)"', text).group(1),
        "alert": (re.search(r'role="alert">([^<]*)<', text) or [None, None])[1],
    }


def test_a_typed_customer_filters_the_report_and_its_export_without_javascript(system, world, shops):
    tag, north, south = shops["tag"], shops["north"], shops["south"]
    with system.client() as http:
        web_login(http, world["people"]["admin"])
        period = {"start": TODAY, "end": TODAY}

        # The whole name (case aside) designates one customer: the report, its exports and its links follow it.
        page = http.get(
            "/rapports",
            params={"report": "top_customers", "customer_name": f"FROMAGERIE {tag} NORD"} | period,
        )
        assert page.status_code == 200
        state = _page_state(page.text)
        assert (state["customer_id"], state["customer_name"]) == (north, f"Fromagerie {tag} Nord")
        assert state["alert"] is None
        assert f"<td>Fromagerie {tag} Nord</td>" in page.text and f"Fromagerie {tag} Sud" not in page.text
        assert len(state["exports"]) == 2 and all(f"customer_id={north}" in link for link in state["exports"])
        export = http.get(state["exports"][0])
        assert export.status_code == 200
        lines = export.content.decode("utf-8-sig").splitlines()
        assert [line.split(";")[0] for line in lines[1:]] == [f"Fromagerie {tag} Nord"]

        # Another report keeps the customer, with its name (the link carries it).
        assert f"customer_id={north}" in state["summary_link"]
        summary = _page_state(http.get(state["summary_link"]).text)
        assert (summary["customer_id"], summary["customer_name"]) == (north, f"Fromagerie {tag} Nord")
        # A link with the id alone shows the customer's name too.
        by_id = _page_state(http.get("/rapports", params={"customer_id": south}).text)
        assert (by_id["customer_id"], by_id["customer_name"]) == (south, f"Fromagerie {tag} Sud")

        # A text that designates several customers: the candidates above the unfiltered report, the text kept.
        page = http.get("/rapports", params={"report": "top_customers", "customer_name": tag} | period)
        assert page.status_code == 200
        state = _page_state(page.text)
        assert "Plusieurs clients correspondent" in state["alert"]
        assert f"Fromagerie {tag} Nord (compte 411F{tag} · Annecy)" in state["alert"]
        assert (state["customer_id"], state["customer_name"]) == ("", tag)
        assert all("customer_id" not in link for link in state["exports"])
        assert "customer_id" not in state["summary_link"]
        unknown = _page_state(http.get("/rapports", params={"customer_name": f"Nulle part {tag}"}).text)
        assert unknown["alert"] == f"Aucun client ne correspond à « Nulle part {tag} »."


def test_a_sales_rep_finds_only_their_customers_in_the_reports_picker(system, world, shops):
    tag, north = shops["tag"], shops["north"]
    with system.client() as http:
        web_login(http, world["people"]["sales"])
        found = http.get("/clients/recherche", params={"q": f"fromagerie {tag}"}).json()["items"]
        assert [item["id"] for item in found] == [north]
        # Their only match: no ambiguity with the other rep's Sud.
        state = _page_state(http.get("/rapports", params={"customer_name": f"fromagerie {tag}"}).text)
        assert (state["customer_id"], state["alert"]) == (north, None)
        state = _page_state(http.get("/rapports", params={"customer_name": f"{tag} sud"}).text)
        assert state["customer_id"] == "" and state["alert"] == f"Aucun client ne correspond à « {tag} sud »."


def test_a_client_with_their_company_summary_keeps_a_short_list(system, world):
    people = world["people"]
    with system.client() as http:
        enabled = http.put(
            f"/api/v1/reports/client-summaries/{world['a']}",
            json={"enabled": True},
            headers=people["admin"].headers,
        )
        assert enabled.status_code == 200, enabled.text
        web_login(http, people["client_a"])
        page = http.get("/rapports", params={"customer_id": world["a"]})
    assert page.status_code == 200
    assert "customer-picker" not in page.text
    assert f'<option value="{world["a"]}" selected>Alpha SARL</option>' in page.text
    assert f'<option value="{world["b"]}"' not in page.text


def test_rebuild_button_with_a_forged_token_rebuilds_nothing(system, world):
    admin, agent = world["people"]["admin"], world["people"]["agent"]
    as_browser = {"Accept": "text/html"}
    with system.client() as http:
        latest = http.get("/api/v1/reports/rebuild", headers=admin.headers).json()["rebuild"]
        web_login(http, admin)
        forged = http.post("/rapports/reconstruire", data={"csrf_token": "forged"}, headers=as_browser)
        assert forged.status_code == 400
        assert "Formulaire expiré" in forged.text and "Rechargez la page" in forged.text
        assert http.get("/api/v1/reports/rebuild", headers=admin.headers).json()["rebuild"] == latest
    with system.client() as http:
        csrf = web_login(http, agent)
        refused = http.post("/rapports/reconstruire", data={"csrf_token": csrf}, headers=as_browser)
        assert refused.status_code == 403 and "Seul un superviseur" in refused.text


def test_rebuild_from_the_tickets_history_gives_the_same_figures(system, world):
    admin = world["people"]["admin"]
    keys = [
        "summary",
        "volume",
        "requests_per_user",
        "resolution_per_customer",
        "resolution",
        "first_response",
        "sla",
        "backlog_status",
        "types",
        "reopen_rate",
        "top_customers",
    ]
    with system.client() as http:

        def figures() -> dict:
            result = {}
            for customer in (world["a"], world["b"]):
                for key in keys:
                    response = http.get(
                        f"/api/v1/reports/{key}",
                        params={"start": TODAY, "end": TODAY, "customer_id": customer},
                        headers=admin.headers,
                    )
                    assert response.status_code == 200, response.text
                    result[(customer, key)] = response.json()["rows"]
            return result

        before = figures()
        assert (
            http.post("/api/v1/reports/rebuild", headers=world["people"]["agent"].headers).status_code == 403
        )
        requested = http.post("/api/v1/reports/rebuild", headers=admin.headers)
        assert requested.status_code == 202, requested.text
        run_id = requested.json()["id"]

        def finished() -> bool:
            status = http.get("/api/v1/reports/rebuild", headers=admin.headers).json()["rebuild"]
            assert status["id"] == run_id and status["status"] != "failed", status
            return status["status"] == "done"

        wait_until(finished, timeout=60, what="rebuild")
        status = http.get("/api/v1/reports/rebuild", headers=admin.headers).json()
        assert status["rebuild"]["events_replayed"] >= 5 and status["tickets"] >= 3
        # Let any event still in flight land, then compare.
        time.sleep(0.5)
        assert figures() == before


def test_unknown_customer_summary_toggle_is_not_found(system, world):
    with system.client() as http:
        response = http.put(
            f"/api/v1/reports/client-summaries/{uuid.uuid4()}",
            json={"enabled": True},
            headers=world["people"]["admin"].headers,
        )
    assert response.status_code == 404
