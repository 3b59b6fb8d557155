"""Reports over the real processes: figures fed by the tickets' events, visibility per role through the API, CSV
export, the reports page, and a rebuild from the tickets' replayed history giving the same figures."""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.ticket_helpers import Person, customer_upserted, wait_until

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
        assert 'name="customer_id"' in html and "Exporter (CSV Excel)" in html
        volume = http.get("/rapports", params={"report": "volume", "granularity": "week"})
        assert volume.status_code == 200 and "<polyline" in volume.text


def _web_login(http, person: Person) -> str:
    """Sign in through the form; returns the CSRF token of the later forms."""
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/login").text).group(1)
    signed_in = http.post(
        "/login", data={"email": person.email, "password": person.password, "csrf_token": csrf}
    )
    assert signed_in.status_code == 200, signed_in.text
    return csrf


def test_rebuild_button_with_a_forged_token_rebuilds_nothing(system, world):
    admin, agent = world["people"]["admin"], world["people"]["agent"]
    as_browser = {"Accept": "text/html"}
    with system.client() as http:
        latest = http.get("/api/v1/reports/rebuild", headers=admin.headers).json()["rebuild"]
        _web_login(http, admin)
        forged = http.post("/rapports/reconstruire", data={"csrf_token": "forged"}, headers=as_browser)
        assert forged.status_code == 400
        assert "Formulaire expiré" in forged.text and "Rechargez la page" in forged.text
        assert http.get("/api/v1/reports/rebuild", headers=admin.headers).json()["rebuild"] == latest
    with system.client() as http:
        csrf = _web_login(http, agent)
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
