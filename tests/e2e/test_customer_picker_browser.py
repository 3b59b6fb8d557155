"""The customer picker in a real Chromium: type a few letters, pick a suggestion with the keyboard or the mouse, and
the ticket, the dashboard or a report follows."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.ticket_helpers import Person, directory_customer, sign_in_browser, wait_until


@pytest.fixture(scope="module")
def shops(system):
    # A letter first: a tag starting with digits could also match account numbers by prefix.
    tag = "k" + uuid.uuid4().hex[:5]
    with system.client() as http:
        admin = Person(system, http, "admin")
        agent = Person(system, http, "agent", name="Thomas Technicien")
        dubois = directory_customer(
            http,
            admin,
            f"Cordonnerie {tag} Dubois",
            account_number=f"411C{tag}",
            addresses=[{"city": "Lyon"}],
        )
        martin = directory_customer(http, admin, f"Cordonnerie {tag} Martin")
        unidentified = http.post(
            "/api/v1/tickets",
            json={"title": f"Talon décollé {tag}", "message": "Reçu par téléphone."},
            headers=agent.headers,
        ).json()
        for_dubois = http.post(
            "/api/v1/tickets",
            json={"title": f"Semelle usée {tag}", "message": "À reprendre.", "customer_id": dubois},
            headers=agent.headers,
        ).json()
    return {
        "tag": tag,
        "agent": agent,
        "dubois": dubois,
        "martin": martin,
        "unidentified": unidentified,
        "for_dubois": for_dubois,
    }


def test_attach_an_unidentified_ticket_with_the_keyboard(system, browser, shops):
    tag = shops["tag"]
    context, page = sign_in_browser(browser, system, shops["agent"])
    try:
        page.goto(f"/tickets/{shops['unidentified']['id']}")
        field = page.locator("#edit-customer")
        assert field.get_attribute("role") == "combobox"
        assert field.get_attribute("aria-expanded") == "false"
        field.press_sequentially(tag, delay=50)
        options = page.locator("#edit-customer-suggestions [role=option]")
        options.first.wait_for()
        assert field.get_attribute("aria-expanded") == "true"
        assert options.count() == 2
        assert options.nth(0).inner_text().startswith(f"Cordonnerie {tag} Dubois")
        assert f"compte 411C{tag} · Lyon" in options.nth(0).inner_text()

        field.press("ArrowDown")
        field.press("ArrowDown")
        assert field.get_attribute("aria-activedescendant") == "edit-customer-suggestions-1"
        assert options.nth(1).get_attribute("aria-selected") == "true"
        field.press("Enter")
        assert field.input_value() == f"Cordonnerie {tag} Martin"
        assert field.get_attribute("aria-expanded") == "false"
        assert page.locator("input[name=customer_id]").input_value() == shops["martin"]

        page.click("form[action$='/edit'] button[type=submit]")
        page.wait_for_url("**?saved=1")
        facts = page.locator("dl.facts")
        assert f"Cordonnerie {tag} Martin" in facts.inner_text()
        assert page.locator(".history >> text=a rattaché le ticket au client").count() == 1
        assert page.locator("#edit-customer").input_value() == f"Cordonnerie {tag} Martin"
    finally:
        context.close()


def test_filter_a_report_by_a_customer_picked_by_typing(system, browser, shops):
    tag, dubois = shops["tag"], shops["dubois"]
    with system.client() as http:
        wait_until(
            lambda: (
                http.get(
                    "/api/v1/reports/summary", params={"customer_id": dubois}, headers=shops["agent"].headers
                ).json()["rows"][0]["created"]
                >= 1
            ),
            what="reports projection of Dubois's ticket",
        )
    context, page = sign_in_browser(browser, system, shops["agent"])
    try:
        page.goto("/rapports?report=top_customers")
        field = page.locator("#filter-customer")
        assert field.get_attribute("role") == "combobox"
        field.press_sequentially(f"{tag} dub", delay=50)
        options = page.locator("#filter-customer-suggestions [role=option]")
        options.first.wait_for()
        assert options.count() == 1 and f"compte 411C{tag} · Lyon" in options.first.inner_text()
        field.press("ArrowDown")
        field.press("Enter")
        assert field.input_value() == f"Cordonnerie {tag} Dubois"
        assert page.locator(".filters input[name=customer_id]").input_value() == dubois

        page.click(".filters button[type=submit]")
        page.wait_for_url(f"**customer_id={dubois}**")
        rows = page.locator("table.report-table tbody tr")
        assert (
            rows.count() == 1 and rows.first.locator("td").first.inner_text() == f"Cordonnerie {tag} Dubois"
        )
        assert page.locator("#filter-customer").input_value() == f"Cordonnerie {tag} Dubois"
        export = page.get_by_role("link", name="Exporter (CSV Excel)").get_attribute("href")
        assert f"customer_id={dubois}" in export
        downloaded = page.request.get(export)
        assert downloaded.ok and f"Cordonnerie {tag} Dubois;" in downloaded.text()
        assert f"Cordonnerie {tag} Martin" not in downloaded.text()

        # Another report keeps the customer and shows its name.
        page.get_by_role("link", name="Synthèse").click()
        page.wait_for_url(f"**report=summary**customer_id={dubois}**")
        assert page.locator("#filter-customer").input_value() == f"Cordonnerie {tag} Dubois"
    finally:
        context.close()


def test_filter_the_dashboard_by_a_picked_customer(system, browser, shops):
    tag = shops["tag"]
    context, page = sign_in_browser(browser, system, shops["agent"])
    try:
        field = page.locator("#filter-customer")
        field.press_sequentially(f"cordonnerie {tag}", delay=30)
        option = page.locator("#filter-customer-suggestions [role=option]", has_text="Dubois")
        option.wait_for()
        field.press("Escape")
        assert field.get_attribute("aria-expanded") == "false"
        field.press("ArrowDown")
        page.locator("#filter-customer[aria-expanded=true]").wait_for()
        option.click()
        assert field.input_value() == f"Cordonnerie {tag} Dubois"
        page.click(".ticket-filters button[type=submit]")
        page.wait_for_url(f"**customer_id={shops['dubois']}**")
        live = page.locator("#dashboard-live")
        assert f"Semelle usée {tag}" in live.inner_text()
        assert f"Talon décollé {tag}" not in live.inner_text()
        assert page.locator("#filter-customer").input_value() == f"Cordonnerie {tag} Dubois"
    finally:
        context.close()
